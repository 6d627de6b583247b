//! timm's `RandomResizedCropAndInterpolation`: pick a crop box, then Pillow-resize it.
//!
//! With SwinFace's `scale = ratio = (1, 1)` the first attempt always has side
//! `round(sqrt(W H))`: it fits only when the image is square or nearly so (then the side is
//! `min(W, H)` and the offset along the longer side is uniform over the slack); otherwise
//! every attempt fails the same way and the fallback takes the centred `min(W, H)` square.
//! A 112x112 input is therefore returned unchanged.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::pil::{resample, Interpolation};
use super::rng::PyRandom;

/// A crop rectangle: top row, left column, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: u32,
    pub left: u32,
    pub height: u32,
    pub width: u32,
}

/// Settings of the random resized crop; the defaults are SwinFace's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomResizedCropConfig {
    /// Range of the crop's area as a fraction of the image.
    pub scale: (f64, f64),
    /// Range of the crop's aspect ratio (width / height), drawn log-uniformly.
    pub ratio: (f64, f64),
    /// Resampling of the resize to the output size.
    pub interpolation: Interpolation,
}

impl Default for RandomResizedCropConfig {
    fn default() -> Self {
        Self {
            scale: (1.0, 1.0),
            ratio: (1.0, 1.0),
            interpolation: Interpolation::Bicubic,
        }
    }
}

impl RandomResizedCropConfig {
    /// `RandomResizedCropAndInterpolation.get_params(img, scale, ratio)`.
    pub fn crop_box<R: PyRandom + ?Sized>(&self, width: u32, height: u32, rng: &mut R) -> CropBox {
        let (img_w, img_h) = (i64::from(width), i64::from(height));
        let area = (img_w * img_h) as f64;
        let log_ratio = (self.ratio.0.ln(), self.ratio.1.ln());
        for _attempt in 0..10 {
            let target_area = rng.uniform(self.scale.0, self.scale.1) * area;
            let aspect = rng.uniform(log_ratio.0, log_ratio.1).exp();
            let w = (target_area * aspect).sqrt().round_ties_even() as i64;
            let h = (target_area / aspect).sqrt().round_ties_even() as i64;
            if w <= img_w && h <= img_h {
                let top = rng.randint(0, img_h - h);
                let left = rng.randint(0, img_w - w);
                return CropBox {
                    top: top as u32,
                    left: left as u32,
                    height: h as u32,
                    width: w as u32,
                };
            }
        }
        let in_ratio = img_w as f64 / img_h as f64;
        let (min_ratio, max_ratio) = (
            self.ratio.0.min(self.ratio.1),
            self.ratio.0.max(self.ratio.1),
        );
        let (w, h) = if in_ratio < min_ratio {
            (img_w, (img_w as f64 / min_ratio).round_ties_even() as i64)
        } else if in_ratio > max_ratio {
            ((img_h as f64 * max_ratio).round_ties_even() as i64, img_h)
        } else {
            (img_w, img_h)
        };
        CropBox {
            top: ((img_h - h) / 2) as u32,
            left: ((img_w - w) / 2) as u32,
            height: h as u32,
            width: w as u32,
        }
    }

    /// Draws a box; returns `img` cropped to it and resized to `size x size`, and the box.
    pub fn apply<R: PyRandom + ?Sized>(
        &self,
        img: RgbImage,
        size: u32,
        rng: &mut R,
    ) -> (RgbImage, CropBox) {
        let b = self.crop_box(img.width(), img.height(), rng);
        let full = b.top == 0 && b.left == 0 && (b.width, b.height) == img.dimensions();
        let cropped = if full {
            img
        } else {
            image::imageops::crop_imm(&img, b.left, b.top, b.width, b.height).to_image()
        };
        if cropped.dimensions() == (size, size) {
            return (cropped, b);
        }
        (
            resample::resize(&cropped, size, size, self.interpolation),
            b,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::rng::sample_rng;

    #[test]
    fn swinface_crop_is_the_centre_square_or_whole_image() {
        let config = RandomResizedCropConfig::default();
        let mut rng = sample_rng(0, 0, 0, 0);
        let whole = CropBox {
            top: 0,
            left: 0,
            height: 112,
            width: 112,
        };
        assert_eq!(config.crop_box(112, 112, &mut rng), whole);
        // 150 x 100: round(sqrt(15000)) = 122 > 100: fallback, centre square of 100.
        assert_eq!(
            config.crop_box(150, 100, &mut rng),
            CropBox {
                top: 0,
                left: 25,
                height: 100,
                width: 100
            }
        );
        assert_eq!(
            config.crop_box(100, 151, &mut rng),
            CropBox {
                top: 25,
                left: 0,
                height: 100,
                width: 100
            }
        );
    }

    #[test]
    fn nearly_square_images_get_a_random_offset() {
        // 100 x 101: round(sqrt(10100)) = round(100.499) = 100 fits; top is 0 or 1.
        let config = RandomResizedCropConfig::default();
        let mut tops = [0u32; 2];
        for i in 0..400 {
            let mut rng = sample_rng(1, 0, i, 0);
            let b = config.crop_box(100, 101, &mut rng);
            assert_eq!((b.left, b.width, b.height), (0, 100, 100));
            tops[b.top as usize] += 1;
        }
        // Binomial(400, 1/2): 4 sigma = 40.
        assert!((i64::from(tops[0]) - 200).abs() < 40, "{tops:?}");
    }

    #[test]
    fn apply_keeps_112_inputs_and_resizes_others() {
        let config = RandomResizedCropConfig::default();
        let mut rng = sample_rng(2, 0, 0, 0);
        let img = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 0]));
        assert_eq!(config.apply(img.clone(), 112, &mut rng).0, img);
        let wide = RgbImage::from_pixel(200, 120, image::Rgb([9, 8, 7]));
        let (out, b) = config.apply(wide, 112, &mut rng);
        assert_eq!((b.left, b.width), (40, 120));
        assert_eq!(out.dimensions(), (112, 112));
        assert!(out.pixels().all(|p| p.0 == [9, 8, 7]));
    }
}
