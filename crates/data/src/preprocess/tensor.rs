//! Batching RGB images into the model's normalised input.

use image::RgbImage;
use tch::Tensor;

use super::PreprocessError;

/// images (each H x W RGB8, all the same size) -> [B, 3, H, W] float32 on the CPU with
/// `(x / 255 - 0.5) / 0.5`, computed in float32 in that order as the official inference does.
pub fn to_normalised_tensor(images: &[RgbImage]) -> Result<Tensor, PreprocessError> {
    let first = images.first().ok_or(PreprocessError::EmptyBatch)?;
    let (width, height) = first.dimensions();
    for (index, img) in images.iter().enumerate() {
        if img.dimensions() != (width, height) {
            return Err(PreprocessError::BatchSizeMismatch {
                index,
                width: img.width(),
                height: img.height(),
                expected_width: width,
                expected_height: height,
            });
        }
    }
    let plane = width as usize * height as usize;
    let mut values = vec![0f32; images.len() * 3 * plane];
    for (img, chw) in images.iter().zip(values.chunks_exact_mut(3 * plane)) {
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                chw[c * plane + i] = (f32::from(v) / 255.0 - 0.5) / 0.5;
            }
        }
    }
    let shape = [images.len() as i64, 3, i64::from(height), i64::from(width)];
    Ok(Tensor::f_from_slice(&values)?.f_view(shape)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_values() {
        let a = RgbImage::from_fn(3, 2, |x, y| image::Rgb([(x + 3 * y) as u8, 255, 0]));
        let b = RgbImage::from_pixel(3, 2, image::Rgb([128, 0, 51]));
        let t = to_normalised_tensor(&[a, b]).unwrap();
        assert_eq!(t.size(), vec![2, 3, 2, 3]);
        assert_eq!(t.kind(), tch::Kind::Float);
        // Image 0, red channel, pixel (x=2, y=1) holds 5.
        let v = t.double_value(&[0, 0, 1, 2]);
        assert!((v - (5.0 / 255.0 - 0.5) / 0.5).abs() < 1e-7);
        assert_eq!(t.double_value(&[0, 1, 0, 0]), 1.0);
        assert_eq!(t.double_value(&[0, 2, 1, 1]), -1.0);
        let v = t.double_value(&[1, 0, 0, 0]);
        assert!((v - (128.0 / 255.0 - 0.5) / 0.5).abs() < 1e-7);
    }

    #[test]
    fn rejects_empty_and_mixed_batches() {
        assert!(matches!(
            to_normalised_tensor(&[]),
            Err(PreprocessError::EmptyBatch)
        ));
        let mixed = [RgbImage::new(2, 2), RgbImage::new(2, 3)];
        assert!(matches!(
            to_normalised_tensor(&mixed),
            Err(PreprocessError::BatchSizeMismatch { index: 1, .. })
        ));
    }
}
