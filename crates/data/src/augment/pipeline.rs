//! The three image pipelines of SwinFace, from a decoded RGB8 image to a normalised CHW
//! float image:
//!
//! - [`AnalysisTransform`]: timm's training transform for the analysis streams, in timm's
//!   order: random resized crop, horizontal flip, RandAugment, to-tensor + normalise, random
//!   erasing (timm drops the colour jitter when an auto-augment policy is set);
//! - [`RecognitionTransform`]: horizontal flip and normalise (insightface's training set);
//! - [`EvalTransform`]: Pillow bilinear resize when the size differs, then normalise.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::crop::{CropBox, RandomResizedCropConfig};
use super::pil::{geometry, resample, Interpolation};
use super::rand_augment::{OpTrace, RandAugment, RandAugmentConfig};
use super::random_erasing::{EraseBox, RandomErasingConfig};
use super::rng::{PyRandom, SampleRng};
use super::AugmentError;

/// One image pipeline: a decoded image in, `3 x size x size` normalised floats out.
pub trait Transform: Send + Sync {
    /// Side of the square output.
    fn output_size(&self) -> u32;

    /// Transforms `img` into `out` (`3 * size * size` floats, CHW).
    fn apply_into(
        &self,
        img: RgbImage,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> Result<(), AugmentError>;
}

/// `ToTensor` + `Normalize(mean, std)`: `(v / 255 - mean) / std` in float32, CHW.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Normalize {
    fn default() -> Self {
        Self {
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

impl Normalize {
    /// img (H x W RGB8) -> out (3 x H x W).
    pub fn write(&self, img: &RgbImage, out: &mut [f32]) -> Result<(), AugmentError> {
        let plane = img.width() as usize * img.height() as usize;
        if out.len() != 3 * plane {
            return Err(AugmentError::OutputLength {
                expected: 3 * plane,
                found: out.len(),
            });
        }
        let tables: [[f32; 256]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|v| (v as f32 / 255.0 - self.mean[c]) / self.std[c])
        });
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            r[i] = tables[0][usize::from(px[0])];
            g[i] = tables[1][usize::from(px[1])];
            b[i] = tables[2][usize::from(px[2])];
        }
        Ok(())
    }
}

/// timm `create_transform(is_training=True, ...)` settings of the analysis streams; the
/// defaults are SwinFace's: `input_size=112, scale=(1, 1), ratio=(1, 1),
/// interpolation='bicubic', auto_augment='rand-m9-mstd0.5-inc1', re_prob=0.25,
/// re_mode='pixel', re_count=1, mean=std=0.5`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisAugmentConfig {
    /// Output side.
    pub img_size: u32,
    pub crop: RandomResizedCropConfig,
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// RandAugment; None disables it.
    pub rand_augment: Option<RandAugmentConfig>,
    pub normalize: Normalize,
    /// Random erasing; None disables it.
    pub random_erasing: Option<RandomErasingConfig>,
}

impl Default for AnalysisAugmentConfig {
    fn default() -> Self {
        Self {
            img_size: 112,
            crop: RandomResizedCropConfig::default(),
            hflip: 0.5,
            rand_augment: Some(RandAugmentConfig::default()),
            normalize: Normalize::default(),
            random_erasing: Some(RandomErasingConfig::default()),
        }
    }
}

/// What the random parts of [`AnalysisTransform`] drew for one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AugmentTrace {
    pub crop: Option<CropBox>,
    pub flipped: bool,
    pub ops: Vec<OpTrace>,
    pub erased: Vec<EraseBox>,
}

/// timm's training transform for the analysis streams.
#[derive(Debug, Clone)]
pub struct AnalysisTransform {
    config: AnalysisAugmentConfig,
    rand_augment: Option<RandAugment>,
}

impl AnalysisTransform {
    pub fn new(config: AnalysisAugmentConfig) -> Self {
        let rand_augment = config.rand_augment.clone().map(RandAugment::new);
        Self {
            config,
            rand_augment,
        }
    }

    pub fn config(&self) -> &AnalysisAugmentConfig {
        &self.config
    }

    /// Like [`Transform::apply_into`], also returning what was drawn.
    pub fn apply_traced(
        &self,
        img: RgbImage,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> Result<AugmentTrace, AugmentError> {
        let size = self.config.img_size;
        let (mut img, crop) = self.config.crop.apply(img, size, rng);
        let mut trace = AugmentTrace {
            crop: Some(crop),
            ..AugmentTrace::default()
        };
        if self.config.hflip > 0.0 && rng.random01() < self.config.hflip {
            geometry::flip_horizontal(&mut img);
            trace.flipped = true;
        }
        if let Some(ra) = &self.rand_augment {
            img = ra.apply(img, rng, Some(&mut trace.ops));
        }
        self.config.normalize.write(&img, out)?;
        if let Some(erasing) = &self.config.random_erasing {
            let side = size as usize;
            trace.erased = erasing.apply(out, 3, side, side, rng);
        }
        Ok(trace)
    }
}

impl Transform for AnalysisTransform {
    fn output_size(&self) -> u32 {
        self.config.img_size
    }

    fn apply_into(
        &self,
        img: RgbImage,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> Result<(), AugmentError> {
        self.apply_traced(img, rng, out).map(|_| ())
    }
}

/// The recognition stream's training transform (insightface's `MXFaceDataset`):
/// `RandomHorizontalFlip`, `ToTensor`, `Normalize`. Images must already be `img_size` square.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecognitionTransform {
    pub img_size: u32,
    pub hflip: f64,
    pub normalize: Normalize,
}

impl Default for RecognitionTransform {
    fn default() -> Self {
        Self {
            img_size: 112,
            hflip: 0.5,
            normalize: Normalize::default(),
        }
    }
}

impl Transform for RecognitionTransform {
    fn output_size(&self) -> u32 {
        self.img_size
    }

    fn apply_into(
        &self,
        mut img: RgbImage,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> Result<(), AugmentError> {
        if img.dimensions() != (self.img_size, self.img_size) {
            return Err(AugmentError::WrongSize {
                width: img.width(),
                height: img.height(),
                expected: self.img_size,
            });
        }
        if self.hflip > 0.0 && rng.random01() < self.hflip {
            geometry::flip_horizontal(&mut img);
        }
        self.normalize.write(&img, out)
    }
}

/// The evaluation transform of the official datasets: `Resize([size, size])` (Pillow
/// bilinear, antialiased; skipped at the same size), `ToTensor`, `Normalize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalTransform {
    pub img_size: u32,
    pub normalize: Normalize,
}

impl Default for EvalTransform {
    fn default() -> Self {
        Self {
            img_size: 112,
            normalize: Normalize::default(),
        }
    }
}

impl Transform for EvalTransform {
    fn output_size(&self) -> u32 {
        self.img_size
    }

    fn apply_into(
        &self,
        img: RgbImage,
        _rng: &mut SampleRng,
        out: &mut [f32],
    ) -> Result<(), AugmentError> {
        let img = resample::resize(&img, self.img_size, self.img_size, Interpolation::Bilinear);
        self.normalize.write(&img, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::rng::sample_rng;

    #[test]
    fn normalize_matches_the_official_formula() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8 * 255, 128, 1]));
        let mut out = vec![0f32; 6];
        Normalize::default().write(&img, &mut out).unwrap();
        let expect = |v: u8| (f32::from(v) / 255.0 - 0.5) / 0.5;
        assert_eq!(
            out,
            vec![-1.0, 1.0, expect(128), expect(128), expect(1), expect(1)]
        );
        assert!(Normalize::default().write(&img, &mut [0f32; 5]).is_err());
    }

    #[test]
    fn recognition_flips_or_not_and_rejects_other_sizes() {
        let t = RecognitionTransform {
            img_size: 4,
            ..RecognitionTransform::default()
        };
        let img = RgbImage::from_fn(4, 4, |x, _| image::Rgb([x as u8 * 80, 0, 0]));
        let mut seen = [false; 2];
        for i in 0..20 {
            let mut out = vec![0f32; 48];
            t.apply_into(img.clone(), &mut sample_rng(0, 0, i, 0), &mut out)
                .unwrap();
            let first_red = out[0];
            assert!(first_red == -1.0 || first_red == (240.0 / 255.0 - 0.5) / 0.5);
            seen[usize::from(first_red != -1.0)] = true;
        }
        assert_eq!(seen, [true, true]);
        let wrong = RgbImage::new(5, 4);
        assert!(matches!(
            t.apply_into(wrong, &mut sample_rng(0, 0, 0, 0), &mut [0f32; 48]),
            Err(AugmentError::WrongSize { .. })
        ));
    }

    #[test]
    fn eval_resizes_only_when_needed() {
        let t = EvalTransform {
            img_size: 3,
            ..EvalTransform::default()
        };
        let img = RgbImage::from_fn(3, 3, |x, y| {
            image::Rgb([(x * 100) as u8, (y * 100) as u8, 0])
        });
        let mut out = vec![0f32; 27];
        t.apply_into(img.clone(), &mut sample_rng(0, 0, 0, 0), &mut out)
            .unwrap();
        let mut direct = vec![0f32; 27];
        Normalize::default().write(&img, &mut direct).unwrap();
        assert_eq!(out, direct);
        let big = RgbImage::from_pixel(7, 5, image::Rgb([10, 20, 30]));
        t.apply_into(big, &mut sample_rng(0, 0, 0, 0), &mut out)
            .unwrap();
        assert_eq!(out[0], (10.0 / 255.0 - 0.5) / 0.5);
    }

    #[test]
    fn analysis_transform_is_deterministic_per_stream() {
        let t = AnalysisTransform::new(AnalysisAugmentConfig::default());
        let img = RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let run = |position| {
            let mut out = vec![0f32; 3 * 112 * 112];
            let trace = t
                .apply_traced(img.clone(), &mut sample_rng(9, 1, position, 0), &mut out)
                .unwrap();
            (out, trace)
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5).0, run(6).0);
        let (_, trace) = run(5);
        assert_eq!(trace.ops.len(), 2);
        assert_eq!(
            trace.crop,
            Some(CropBox {
                top: 0,
                left: 0,
                height: 112,
                width: 112
            })
        );
    }
}
