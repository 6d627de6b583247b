//! timm 1.0.15's `RandomErasing`, applied to one normalised CHW float image.
//!
//! With probability `probability` the image gets `count` boxes (`count` uniform in
//! `min_count..=max_count`); each box tries up to 10 times: area `U(min_area, max_area) *
//! H * W / count`, aspect `exp(U(ln min_aspect, ln max_aspect))`, `h = round(sqrt(area *
//! aspect))`, `w = round(sqrt(area / aspect))`, accepted when `w < W` and `h < H`, placed at
//! a uniform top-left corner, and filled with per-pixel standard normal noise ('pixel'),
//! one normal colour per channel ('rand') or zeros ('const').

use serde::{Deserialize, Serialize};

use super::rng::{fill_standard_normal, standard_normal, PyRandom, SampleRng};

/// What an erased box is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EraseMode {
    /// Zeros (timm 'const').
    Const,
    /// One standard normal value per channel (timm 'rand').
    Rand,
    /// Standard normal noise per pixel and channel (timm 'pixel').
    Pixel,
}

/// Random erasing settings; the defaults are SwinFace's (`re_prob=0.25`, `re_mode='pixel'`,
/// `re_count=1`) with timm's area and aspect ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomErasingConfig {
    pub probability: f64,
    pub min_area: f64,
    pub max_area: f64,
    pub min_aspect: f64,
    /// None: 1 / min_aspect.
    pub max_aspect: Option<f64>,
    pub mode: EraseMode,
    pub min_count: u32,
    pub max_count: u32,
}

impl Default for RandomErasingConfig {
    fn default() -> Self {
        Self {
            probability: 0.25,
            min_area: 0.02,
            max_area: 1.0 / 3.0,
            min_aspect: 0.3,
            max_aspect: None,
            mode: EraseMode::Pixel,
            min_count: 1,
            max_count: 1,
        }
    }
}

/// An erased box in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl RandomErasingConfig {
    /// Erases boxes of `chw` (`channels` planes of `height x width`) and returns them.
    pub fn apply(
        &self,
        chw: &mut [f32],
        channels: usize,
        height: usize,
        width: usize,
        rng: &mut SampleRng,
    ) -> Vec<EraseBox> {
        let mut boxes = Vec::new();
        if self.probability <= 0.0 || rng.random01() > self.probability {
            return boxes;
        }
        let area = (height * width) as f64;
        let count = if self.min_count >= self.max_count {
            self.min_count
        } else {
            rng.randint(i64::from(self.min_count), i64::from(self.max_count)) as u32
        };
        let max_aspect = self.max_aspect.unwrap_or(1.0 / self.min_aspect);
        let (log_lo, log_hi) = (self.min_aspect.ln(), max_aspect.ln());
        for _ in 0..count {
            for _attempt in 0..10 {
                let target_area =
                    rng.uniform(self.min_area, self.max_area) * area / f64::from(count);
                let aspect = rng.uniform(log_lo, log_hi).exp();
                let h = (target_area * aspect).sqrt().round_ties_even() as usize;
                let w = (target_area / aspect).sqrt().round_ties_even() as usize;
                if w < width && h < height {
                    let top = rng.randint(0, (height - h) as i64) as usize;
                    let left = rng.randint(0, (width - w) as i64) as usize;
                    let erase = EraseBox {
                        top,
                        left,
                        height: h,
                        width: w,
                    };
                    self.fill(chw, channels, height, width, erase, rng);
                    boxes.push(erase);
                    break;
                }
            }
        }
        boxes
    }

    fn fill(
        &self,
        chw: &mut [f32],
        channels: usize,
        height: usize,
        width: usize,
        erase: EraseBox,
        rng: &mut SampleRng,
    ) {
        if erase.height == 0 || erase.width == 0 {
            return;
        }
        let plane = height * width;
        let rows = |c: usize| {
            (0..erase.height).map(move |dy| {
                let start = c * plane + (erase.top + dy) * width + erase.left;
                start..start + erase.width
            })
        };
        if self.mode == EraseMode::Pixel {
            let mut noise = vec![0f32; channels * erase.height * erase.width];
            fill_standard_normal(rng, &mut noise);
            let mut values = noise.chunks_exact(erase.width);
            for c in 0..channels {
                for (row, value) in rows(c).zip(values.by_ref()) {
                    chw[row].copy_from_slice(value);
                }
            }
            return;
        }
        for c in 0..channels {
            let value = match self.mode {
                EraseMode::Rand => standard_normal(rng) as f32,
                _ => 0.0,
            };
            for row in rows(c) {
                chw[row].fill(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::rng::sample_rng;

    #[test]
    fn boxes_stay_inside_and_only_they_change() {
        let config = RandomErasingConfig {
            probability: 1.0,
            ..RandomErasingConfig::default()
        };
        for i in 0..200 {
            let mut rng = sample_rng(3, 0, i, 0);
            let mut chw = vec![7.0f32; 3 * 20 * 30];
            let boxes = config.apply(&mut chw, 3, 20, 30, &mut rng);
            assert_eq!(boxes.len(), 1);
            let b = boxes[0];
            assert!(b.top + b.height <= 20 && b.left + b.width <= 30, "{b:?}");
            assert!(b.height < 20 && b.width < 30);
            for c in 0..3 {
                for y in 0..20 {
                    for x in 0..30 {
                        let inside = (b.top..b.top + b.height).contains(&y)
                            && (b.left..b.left + b.width).contains(&x);
                        let v = chw[c * 600 + y * 30 + x];
                        assert_eq!(v == 7.0, !inside, "({c}, {y}, {x}) in {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn const_and_rand_modes() {
        let mut rng = sample_rng(4, 0, 0, 0);
        let config = RandomErasingConfig {
            probability: 1.0,
            mode: EraseMode::Const,
            ..RandomErasingConfig::default()
        };
        let mut chw = vec![1.0f32; 3 * 16 * 16];
        let b = config.apply(&mut chw, 3, 16, 16, &mut rng)[0];
        assert_eq!(chw[b.top * 16 + b.left], 0.0);
        let config = RandomErasingConfig {
            mode: EraseMode::Rand,
            ..config
        };
        let mut chw = vec![100.0f32; 3 * 16 * 16];
        let b = config.apply(&mut chw, 3, 16, 16, &mut rng)[0];
        for c in 0..3 {
            let first = chw[c * 256 + b.top * 16 + b.left];
            let last = chw[c * 256 + (b.top + b.height - 1) * 16 + b.left + b.width - 1];
            assert_eq!(first, last);
            assert!(first.abs() < 10.0);
        }
    }

    #[test]
    fn zero_probability_never_draws() {
        let config = RandomErasingConfig {
            probability: 0.0,
            ..RandomErasingConfig::default()
        };
        let mut rng = sample_rng(5, 0, 0, 0);
        let mut chw = vec![1.0f32; 3 * 8 * 8];
        assert!(config.apply(&mut chw, 3, 8, 8, &mut rng).is_empty());
        assert!(chw.iter().all(|&v| v == 1.0));
    }
}
