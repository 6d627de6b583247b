//! Decoding encoded image bytes (a RecordIO payload, a `.bin` entry, a file read by a
//! dataset) to RGB8, with the same rules as [`crate::preprocess::decode_rgb8`]: the header's
//! size is checked against the limits before any pixel is decoded, EXIF orientation is
//! applied, grey is replicated and alpha dropped.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::preprocess::{DecodeLimits, PreprocessError};

/// Decodes `bytes` (JPEG or PNG, told apart by content); `name` says where the bytes came
/// from in error messages.
pub fn decode_rgb8_bytes(
    bytes: &[u8],
    name: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage, PreprocessError> {
    let decode_err = |source| PreprocessError::Decode {
        path: name.to_path_buf(),
        source,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| PreprocessError::Io {
            path: name.to_path_buf(),
            source,
        })?;
    let mut decoder_limits = image::Limits::default();
    // The decoder may hold up to 16 bits x 4 channels per pixel while converting.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty {
            path: name.to_path_buf(),
            width,
            height,
        });
    }
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(PreprocessError::TooLarge {
            path: name.to_path_buf(),
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
        });
    }
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png_and_jpeg_bytes() {
        let img = RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 20) as u8, (y * 30) as u8, 5]));
        let name = Path::new("mem.png");
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_rgb8_bytes(&png_bytes(&img), name, &limits).unwrap(),
            img
        );
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let out = decode_rgb8_bytes(&jpeg, name, &limits).unwrap();
        assert_eq!(out.dimensions(), (9, 7));
    }

    #[test]
    fn refuses_garbage_truncation_and_oversize() {
        let limits = DecodeLimits::default();
        let name = Path::new("record 17");
        let err = decode_rgb8_bytes(b"not an image at all", name, &limits).unwrap_err();
        assert!(err.to_string().contains("record 17"), "{err}");
        let img = RgbImage::from_pixel(40, 30, image::Rgb([1, 2, 3]));
        let bytes = png_bytes(&img);
        assert!(decode_rgb8_bytes(&bytes[..bytes.len() / 2], name, &limits).is_err());
        let small = DecodeLimits {
            max_width: 39,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_rgb8_bytes(&bytes, name, &small),
            Err(PreprocessError::TooLarge { width: 40, .. })
        ));
    }
}
