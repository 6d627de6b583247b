//! Errors of the preprocessing pipeline. Underlying causes are exposed as `source()`, not
//! repeated in the message (print the chain, e.g. anyhow's `{:#}`).

use std::path::PathBuf;

/// Everything that can go wrong between an image file and a model input tensor.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot read image {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "image {} is {width}x{height} pixels, over the limit of {max_width}x{max_height} \
         and {max_pixels} pixels",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
    #[error("image {} has no pixels ({width}x{height})", path.display())]
    Empty {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("cannot decode image {} (JPEG and PNG are supported)", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error(
        "image {} is a truncated JPEG: no end-of-image marker after its last scan",
        path.display()
    )]
    TruncatedJpeg { path: PathBuf },
    #[error("cannot resize an empty {width}x{height} image to {dst_width}x{dst_height}")]
    EmptyResize {
        width: u32,
        height: u32,
        dst_width: u32,
        dst_height: u32,
    },
    #[error("landmarks are not finite numbers: {landmarks:?}")]
    NonFiniteLandmarks { landmarks: [[f32; 2]; 5] },
    #[error("landmarks are degenerate (the five points coincide): {landmarks:?}")]
    DegenerateLandmarks { landmarks: [[f32; 2]; 5] },
    #[error("cannot batch zero images")]
    EmptyBatch,
    #[error(
        "all images of a batch must be {expected_width}x{expected_height}, \
         image {index} is {width}x{height}"
    )]
    BatchSizeMismatch {
        index: usize,
        width: u32,
        height: u32,
        expected_width: u32,
        expected_height: u32,
    },
    #[error("tensor creation failed")]
    Tensor(#[from] tch::TchError),
}
