//! From an image file to the model's input: decode ([`decode_rgb8`]), bring the face to
//! 112x112 either by OpenCV-exact bilinear resizing ([`resize_bilinear_cv2`], what the
//! official inference does) or by five-point alignment ([`align_to_arcface`]), then normalise
//! and batch ([`to_normalised_tensor`]).

mod align;
mod decode;
mod error;
mod resize;
mod tensor;

pub use align::{
    align_to_arcface, similarity_transform, warp_affine_cv2, Affine, ALIGNED_SIZE, ARCFACE_TEMPLATE,
};
pub use decode::{decode_rgb8, decode_rgb8_bytes, DecodeLimits};
pub use error::PreprocessError;
pub use image::RgbImage;
pub use resize::resize_bilinear_cv2;
pub use tensor::to_normalised_tensor;

/// Side of the model's square input.
pub const INPUT_SIZE: u32 = 112;

/// How a decoded image is brought to the model's 112x112 input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaceCrop {
    /// Resize the whole image (the image is taken to be a face crop already).
    Resize,
    /// Align five landmarks (image pixel coordinates) onto the ArcFace template.
    Align([[f32; 2]; 5]),
}

/// Decodes `path` and brings it to a 112x112 RGB face.
pub fn load_face(
    path: &std::path::Path,
    crop: FaceCrop,
    limits: &DecodeLimits,
) -> Result<RgbImage, PreprocessError> {
    let img = decode_rgb8(path, limits)?;
    match crop {
        FaceCrop::Resize => resize_bilinear_cv2(&img, INPUT_SIZE, INPUT_SIZE),
        FaceCrop::Align(landmarks) => align_to_arcface(&img, landmarks),
    }
}
