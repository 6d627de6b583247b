//! Decoding JPEG/PNG files to 8-bit RGB, refusing absurd sizes before any pixel is decoded.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use super::PreprocessError;

/// Bounds on what [`decode_rgb8`] accepts; checked against the header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted width x height.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_width: 16384,
            max_height: 16384,
            max_pixels: 256 * 1024 * 1024,
        }
    }
}

impl DecodeLimits {
    /// The decoder may hold the image at up to 16 bits x 4 channels while converting to RGB8.
    fn max_decoder_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8)
    }

    fn check(&self, path: &Path, width: u32, height: u32) -> Result<(), PreprocessError> {
        if width == 0 || height == 0 {
            return Err(PreprocessError::Empty {
                path: path.to_path_buf(),
                width,
                height,
            });
        }
        if width > self.max_width
            || height > self.max_height
            || u64::from(width) * u64::from(height) > self.max_pixels
        {
            return Err(PreprocessError::TooLarge {
                path: path.to_path_buf(),
                width,
                height,
                max_width: self.max_width,
                max_height: self.max_height,
                max_pixels: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// Reads a JPEG or PNG file (format taken from its content, else its extension) as 8-bit RGB.
///
/// Like `cv2.imread(path, IMREAD_COLOR)`: the EXIF orientation is applied, grey is replicated to
/// three channels and alpha is dropped. The header's dimensions are checked against `limits`
/// before any pixel data is decoded. Differences from OpenCV: 16-bit PNGs are scaled to 8 bits
/// with rounding (OpenCV truncates), and JPEG pixels may differ by a level or two from
/// libjpeg-turbo's (different IDCT and chroma upsampling).
pub fn decode_rgb8(path: &Path, limits: &DecodeLimits) -> Result<RgbImage, PreprocessError> {
    let bytes = std::fs::read(path).map_err(|source| PreprocessError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb8_bytes(&bytes, path, limits)
}

/// [`decode_rgb8`] of an encoded image already in memory (a RecordIO payload, a `.bin`
/// entry); `name` stands for it in errors (e.g. `train.rec#1234`).
pub fn decode_rgb8_bytes(
    bytes: &[u8],
    name: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, PreprocessError> {
    // The JPEG decoder fills a cut-off scan with grey and reports success (libjpeg warns
    // "premature end of JPEG file"); a file cut short is a bad sample, not a face.
    if is_truncated_jpeg(bytes) {
        return Err(PreprocessError::TruncatedJpeg {
            path: name.to_path_buf(),
        });
    }
    decode_reader(ImageReader::new(Cursor::new(bytes)), name, limits)
}

/// A JPEG (starts with SOI) with no EOI marker after its last start-of-scan. Entropy-coded
/// data never holds `FF DA` or `FF D9` (a data 0xFF is followed by 0x00 or a restart
/// marker), and embedded thumbnails come before the main image's scans.
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    if !bytes.starts_with(&SOI) {
        return false;
    }
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == SOS) else {
        return false; // no scan at all: the decoder reports that itself
    };
    !bytes[last_scan..].windows(2).any(|w| w == EOI)
}

fn decode_reader<R: BufRead + Seek>(
    reader: ImageReader<R>,
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, PreprocessError> {
    let decode_err = |source| PreprocessError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let io_err = |source| PreprocessError::Io {
        path: path.to_path_buf(),
        source,
    };

    let mut reader = reader.with_guessed_format().map_err(io_err)?;
    // Width and height are checked below (with an error that says what they are); the
    // allocation cap also bounds what a decoder may reserve while reading the header.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_decoder_bytes());
    reader.limits(decoder_limits);

    // Building the decoder reads only the header.
    let mut decoder = reader.into_decoder().map_err(|err| match err {
        image::ImageError::IoError(source) => io_err(source),
        other => decode_err(other),
    })?;
    let (width, height) = decoder.dimensions();
    limits.check(path, width, height)?;
    let orientation = decoder.orientation().map_err(decode_err)?;

    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}
