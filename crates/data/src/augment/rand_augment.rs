//! timm 1.0.15's RandAugment (`rand_augment_transform`, `RandAugment`, `AugmentOp`).
//!
//! Per image: draw `num_ops` ops uniformly *with replacement* from the op list (15 ops; the
//! "increasing" list for `inc1`). Each drawn op is applied with probability `prob`; only when
//! applied does it draw its magnitude, `N(magnitude, magnitude_std)` (or `U(0, magnitude)` for
//! an infinite std) clipped to `[0, magnitude_max]`, and then its argument (`LEVEL_TO_ARG`,
//! which draws a fair sign for the signed ops). Geometric ops fill with `fill` and resample
//! with `interpolation` (timm sets both from `create_transform`'s mean and interpolation:
//! grey 128 and bicubic for SwinFace).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::pil::{enhance, geometry, point, Interpolation};
use super::rng::PyRandom;
use super::AugmentError;

/// timm's level denominator: magnitudes are on a 0..10 scale.
const LEVEL_DENOM: f64 = 10.0;

/// One RandAugment operation (timm's `NAME_TO_OP` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    PosterizeIncreasing,
    Solarize,
    SolarizeIncreasing,
    SolarizeAdd,
    Color,
    ColorIncreasing,
    Contrast,
    ContrastIncreasing,
    Brightness,
    BrightnessIncreasing,
    Sharpness,
    SharpnessIncreasing,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
}

/// timm's `_RAND_TRANSFORMS` (severity not monotone in the magnitude for some ops).
pub const RAND_TRANSFORMS: [OpKind; 15] = [
    OpKind::AutoContrast,
    OpKind::Equalize,
    OpKind::Invert,
    OpKind::Rotate,
    OpKind::Posterize,
    OpKind::Solarize,
    OpKind::SolarizeAdd,
    OpKind::Color,
    OpKind::Contrast,
    OpKind::Brightness,
    OpKind::Sharpness,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateXRel,
    OpKind::TranslateYRel,
];

/// timm's `_RAND_INCREASING_TRANSFORMS` (what `inc1` selects; SwinFace's choice).
pub const RAND_INCREASING_TRANSFORMS: [OpKind; 15] = [
    OpKind::AutoContrast,
    OpKind::Equalize,
    OpKind::Invert,
    OpKind::Rotate,
    OpKind::PosterizeIncreasing,
    OpKind::SolarizeIncreasing,
    OpKind::SolarizeAdd,
    OpKind::ColorIncreasing,
    OpKind::ContrastIncreasing,
    OpKind::BrightnessIncreasing,
    OpKind::SharpnessIncreasing,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateXRel,
    OpKind::TranslateYRel,
];

/// The argument an op is called with (timm's `level_fn` output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpArg {
    /// AutoContrast, Equalize, Invert.
    None,
    /// Rotate: degrees counter-clockwise.
    Degrees(f64),
    /// Posterize: bits kept.
    Bits(u32),
    /// Solarize: threshold.
    Threshold(i64),
    /// SolarizeAdd: amount added below 128.
    Add(i64),
    /// Color, Contrast, Brightness, Sharpness: blend factor.
    Factor(f64),
    /// ShearX/Y: shear factor.
    Shear(f64),
    /// TranslateX/YRel: fraction of the image side.
    TranslatePct(f64),
}

/// Configuration of RandAugment; the defaults are SwinFace's `rand-m9-mstd0.5-inc1` with
/// timm's hparams for a 112-pixel image and mean 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandAugmentConfig {
    /// Ops drawn per image (timm `n`).
    pub num_ops: usize,
    /// Probability that a drawn op is applied (timm `p`).
    pub prob: f64,
    /// Mean magnitude on timm's 0..10 scale (timm `m`).
    pub magnitude: f64,
    /// Std of the magnitude draw (timm `mstd`); infinite means uniform on [0, magnitude].
    pub magnitude_std: f64,
    /// Upper clip of the magnitude (timm `mmax`, default 10).
    pub magnitude_max: f64,
    /// Use the "increasing severity" op list (timm `inc1`).
    pub increasing: bool,
    /// Largest translation as a fraction of the side (timm's `translate_pct`).
    pub translate_pct: f64,
    /// Colour where geometric ops uncover the image (timm's `img_mean`).
    pub fill: [u8; 3],
    /// Resampling of the geometric ops (timm's hparams `interpolation`).
    pub interpolation: Interpolation,
}

impl Default for RandAugmentConfig {
    fn default() -> Self {
        Self {
            num_ops: 2,
            prob: 0.5,
            magnitude: 9.0,
            magnitude_std: 0.5,
            magnitude_max: LEVEL_DENOM,
            increasing: true,
            translate_pct: 0.45,
            fill: [128, 128, 128],
            interpolation: Interpolation::Bicubic,
        }
    }
}

impl RandAugmentConfig {
    /// Parses timm's config string (`rand-m9-mstd0.5-inc1`, sections `m`, `n`, `p`, `mstd`,
    /// `mmax`, `inc`), starting from the defaults of `rand_augment_transform` (m 10, n 2,
    /// p 0.5, mstd 0, not increasing) and keeping this config's fill and interpolation.
    pub fn from_timm(
        spec: &str,
        fill: [u8; 3],
        interpolation: Interpolation,
    ) -> Result<Self, AugmentError> {
        let bad = |message: String| AugmentError::BadRandAugmentSpec {
            spec: spec.to_string(),
            message,
        };
        let mut sections = spec.split('-');
        if sections.next() != Some("rand") {
            return Err(bad("it must start with 'rand'".into()));
        }
        let mut config = Self {
            magnitude: LEVEL_DENOM,
            magnitude_std: 0.0,
            increasing: false,
            fill,
            interpolation,
            ..Self::default()
        };
        for section in sections {
            let split = section
                .find(|c: char| c.is_ascii_digit())
                .ok_or_else(|| bad(format!("section '{section}' has no value")))?;
            let (key, value) = section.split_at(split);
            let number = |what: &str| {
                value
                    .parse::<f64>()
                    .map_err(|_| bad(format!("'{value}' is not a number for {what}")))
            };
            match key {
                "m" => config.magnitude = number("m")?.trunc(),
                "n" => config.num_ops = number("n")? as usize,
                "p" => config.prob = number("p")?,
                "mstd" => {
                    let std = number("mstd")?;
                    config.magnitude_std = if std > 100.0 { f64::INFINITY } else { std };
                }
                "mmax" => config.magnitude_max = number("mmax")?.trunc(),
                "inc" => config.increasing = number("inc")? != 0.0,
                other => return Err(bad(format!("unknown section '{other}'"))),
            }
        }
        Ok(config)
    }

    /// The op list this config draws from.
    pub fn ops(&self) -> &'static [OpKind; 15] {
        if self.increasing {
            &RAND_INCREASING_TRANSFORMS
        } else {
            &RAND_TRANSFORMS
        }
    }
}

/// What one drawn op did to an image (for tests and debugging).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpTrace {
    pub kind: OpKind,
    /// None when the op was drawn but not applied.
    pub applied: Option<AppliedOp>,
}

/// Magnitude and argument of an applied op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppliedOp {
    pub magnitude: f64,
    pub arg: OpArg,
}

/// RandAugment over RGB8 images.
#[derive(Debug, Clone)]
pub struct RandAugment {
    config: RandAugmentConfig,
}

impl RandAugment {
    pub fn new(config: RandAugmentConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &RandAugmentConfig {
        &self.config
    }

    /// Applies RandAugment to `img`; when `trace` is given, records each drawn op.
    pub fn apply<R: PyRandom + ?Sized>(
        &self,
        mut img: RgbImage,
        rng: &mut R,
        mut trace: Option<&mut Vec<OpTrace>>,
    ) -> RgbImage {
        let ops = self.config.ops();
        let chosen: Vec<OpKind> = (0..self.config.num_ops)
            .map(|_| ops[rng.randint(0, ops.len() as i64 - 1) as usize])
            .collect();
        for kind in chosen {
            let applied = self.draw_applied(kind, rng);
            if let Some(op) = applied {
                img = apply_op(img, kind, op.arg, &self.config);
            }
            if let Some(trace) = trace.as_deref_mut() {
                trace.push(OpTrace { kind, applied });
            }
        }
        img
    }

    /// `AugmentOp.__call__`'s random part: the apply coin, then magnitude and argument.
    fn draw_applied<R: PyRandom + ?Sized>(&self, kind: OpKind, rng: &mut R) -> Option<AppliedOp> {
        let c = &self.config;
        if c.prob < 1.0 && rng.random01() > c.prob {
            return None;
        }
        let mut magnitude = c.magnitude;
        if c.magnitude_std == f64::INFINITY {
            magnitude = rng.uniform(0.0, magnitude);
        } else if c.magnitude_std > 0.0 {
            magnitude = rng.gauss(magnitude, c.magnitude_std);
        }
        let magnitude = magnitude.min(c.magnitude_max).max(0.0);
        let arg = level_to_arg(kind, magnitude, c.translate_pct, rng);
        Some(AppliedOp { magnitude, arg })
    }
}

/// timm's `_randomly_negate`: negative with probability 1/2.
fn randomly_negate<R: PyRandom + ?Sized>(v: f64, rng: &mut R) -> f64 {
    if rng.random01() > 0.5 {
        -v
    } else {
        v
    }
}

/// timm's `LEVEL_TO_ARG[kind](magnitude, hparams)`.
pub fn level_to_arg<R: PyRandom + ?Sized>(
    kind: OpKind,
    level: f64,
    translate_pct: f64,
    rng: &mut R,
) -> OpArg {
    let fraction = level / LEVEL_DENOM;
    let posterize_level = (fraction * 4.0) as u32;
    let solarize_level = ((fraction * 256.0) as i64).min(256);
    match kind {
        OpKind::AutoContrast | OpKind::Equalize | OpKind::Invert => OpArg::None,
        OpKind::Rotate => OpArg::Degrees(randomly_negate(fraction * 30.0, rng)),
        OpKind::Posterize => OpArg::Bits(posterize_level),
        OpKind::PosterizeIncreasing => OpArg::Bits(4u32.saturating_sub(posterize_level)),
        OpKind::Solarize => OpArg::Threshold(solarize_level),
        OpKind::SolarizeIncreasing => OpArg::Threshold(256 - solarize_level),
        OpKind::SolarizeAdd => OpArg::Add(((fraction * 110.0) as i64).min(128)),
        OpKind::Color | OpKind::Contrast | OpKind::Brightness | OpKind::Sharpness => {
            OpArg::Factor(fraction * 1.8 + 0.1)
        }
        OpKind::ColorIncreasing
        | OpKind::ContrastIncreasing
        | OpKind::BrightnessIncreasing
        | OpKind::SharpnessIncreasing => {
            let delta = randomly_negate(fraction * 0.9, rng);
            OpArg::Factor((1.0 + delta).max(0.1))
        }
        OpKind::ShearX | OpKind::ShearY => OpArg::Shear(randomly_negate(fraction * 0.3, rng)),
        OpKind::TranslateXRel | OpKind::TranslateYRel => {
            OpArg::TranslatePct(randomly_negate(fraction * translate_pct, rng))
        }
    }
}

/// Applies one op with a fixed argument (timm's `NAME_TO_OP[kind](img, arg, fillcolor=...,
/// resample=...)`). An argument of the wrong kind leaves the image unchanged.
pub fn apply_op(
    mut img: RgbImage,
    kind: OpKind,
    arg: OpArg,
    config: &RandAugmentConfig,
) -> RgbImage {
    let (fill, filter) = (config.fill, config.interpolation);
    match (kind, arg) {
        (OpKind::AutoContrast, _) => point::autocontrast(&mut img),
        (OpKind::Equalize, _) => point::equalize(&mut img),
        (OpKind::Invert, _) => point::invert(&mut img),
        (OpKind::Rotate, OpArg::Degrees(d)) => img = geometry::rotate(&img, d, filter, fill),
        (OpKind::Posterize | OpKind::PosterizeIncreasing, OpArg::Bits(b)) => {
            point::posterize(&mut img, b)
        }
        (OpKind::Solarize | OpKind::SolarizeIncreasing, OpArg::Threshold(t)) => {
            point::solarize(&mut img, t)
        }
        (OpKind::SolarizeAdd, OpArg::Add(a)) => point::solarize_add(&mut img, a, 128),
        (OpKind::Color | OpKind::ColorIncreasing, OpArg::Factor(f)) => enhance::color(&mut img, f),
        (OpKind::Contrast | OpKind::ContrastIncreasing, OpArg::Factor(f)) => {
            enhance::contrast(&mut img, f)
        }
        (OpKind::Brightness | OpKind::BrightnessIncreasing, OpArg::Factor(f)) => {
            enhance::brightness(&mut img, f)
        }
        (OpKind::Sharpness | OpKind::SharpnessIncreasing, OpArg::Factor(f)) => {
            enhance::sharpness(&mut img, f)
        }
        (OpKind::ShearX, OpArg::Shear(s)) => img = geometry::shear_x(&img, s, filter, fill),
        (OpKind::ShearY, OpArg::Shear(s)) => img = geometry::shear_y(&img, s, filter, fill),
        (OpKind::TranslateXRel, OpArg::TranslatePct(p)) => {
            let pixels = p * f64::from(img.width());
            img = geometry::translate_x(&img, pixels, filter, fill);
        }
        (OpKind::TranslateYRel, OpArg::TranslatePct(p)) => {
            let pixels = p * f64::from(img.height());
            img = geometry::translate_y(&img, pixels, filter, fill);
        }
        _ => {}
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::rng::sample_rng;

    #[test]
    fn parses_swinface_spec() {
        let c =
            RandAugmentConfig::from_timm("rand-m9-mstd0.5-inc1", [128; 3], Interpolation::Bicubic)
                .unwrap();
        assert_eq!(c, RandAugmentConfig::default());
        let c = RandAugmentConfig::from_timm(
            "rand-m7-n3-p0.8-mstd101-mmax12",
            [0; 3],
            Interpolation::Bilinear,
        )
        .unwrap();
        assert_eq!(
            (c.magnitude, c.num_ops, c.prob, c.magnitude_max),
            (7.0, 3, 0.8, 12.0)
        );
        assert!(c.magnitude_std.is_infinite());
        assert!(!c.increasing);
        assert!(RandAugmentConfig::from_timm("augmix-m9", [0; 3], Interpolation::Bicubic).is_err());
        assert!(RandAugmentConfig::from_timm("rand-q9", [0; 3], Interpolation::Bicubic).is_err());
        assert!(RandAugmentConfig::from_timm("rand-mx", [0; 3], Interpolation::Bicubic).is_err());
    }

    #[test]
    fn level_to_arg_matches_timm_formulas() {
        let mut rng = sample_rng(0, 0, 0, 0);
        let mut arg = |kind| level_to_arg(kind, 9.0, 0.45, &mut rng);
        assert_eq!(arg(OpKind::PosterizeIncreasing), OpArg::Bits(1)); // 4 - int(3.6)
        assert_eq!(arg(OpKind::Posterize), OpArg::Bits(3));
        assert_eq!(arg(OpKind::SolarizeIncreasing), OpArg::Threshold(26)); // 256 - int(230.4)
        assert_eq!(arg(OpKind::Solarize), OpArg::Threshold(230));
        assert_eq!(arg(OpKind::SolarizeAdd), OpArg::Add(99)); // int(99.0)
        assert_eq!(arg(OpKind::Color), OpArg::Factor(0.9 * 1.8 + 0.1));
        match arg(OpKind::Rotate) {
            OpArg::Degrees(d) => assert!((d.abs() - 27.0).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
        match arg(OpKind::ContrastIncreasing) {
            OpArg::Factor(f) => {
                assert!((f - 1.81).abs() < 1e-12 || (f - 0.19).abs() < 1e-12, "{f}")
            }
            other => panic!("{other:?}"),
        }
        match arg(OpKind::TranslateXRel) {
            OpArg::TranslatePct(p) => assert!((p.abs() - 0.405).abs() < 1e-12),
            other => panic!("{other:?}"),
        }
        // Magnitude 10 (the clip) posterizes to 0 bits: a black image.
        let mut rng = sample_rng(0, 0, 0, 0);
        assert_eq!(
            level_to_arg(OpKind::PosterizeIncreasing, 10.0, 0.45, &mut rng),
            OpArg::Bits(0)
        );
        assert_eq!(
            level_to_arg(OpKind::SolarizeIncreasing, 10.0, 0.45, &mut rng),
            OpArg::Threshold(0)
        );
        // The increasing enhancers never go below 0.1.
        assert_eq!(
            level_to_arg(
                OpKind::BrightnessIncreasing,
                10.0,
                0.45,
                &mut FixedDraws(vec![0.0])
            ),
            OpArg::Factor(1.9)
        );
        assert_eq!(
            level_to_arg(
                OpKind::BrightnessIncreasing,
                10.0,
                0.45,
                &mut FixedDraws(vec![0.9])
            ),
            OpArg::Factor(0.1)
        );
    }

    /// Replays fixed `random()` values.
    struct FixedDraws(Vec<f64>);

    impl PyRandom for FixedDraws {
        fn random01(&mut self) -> f64 {
            self.0.remove(0)
        }
        fn uniform(&mut self, a: f64, b: f64) -> f64 {
            a + (b - a) * self.random01()
        }
        fn randint(&mut self, a: i64, b: i64) -> i64 {
            a + ((b - a + 1) as f64 * self.random01()) as i64
        }
        fn gauss(&mut self, mu: f64, _sigma: f64) -> f64 {
            mu
        }
    }

    #[test]
    fn op_is_skipped_above_prob_and_magnitude_is_drawn_only_when_applied() {
        let ra = RandAugment::new(RandAugmentConfig::default());
        let img = RgbImage::from_pixel(4, 4, image::Rgb([10, 20, 30]));
        // Draws: both op indices first (Invert is 2 of 15), then per op its coin: 0.6 > 0.5
        // skips the first, 0.5 applies the second (timm skips when `random() > p`).
        let mut draws = FixedDraws(vec![2.5 / 15.0, 2.5 / 15.0, 0.6, 0.5]);
        let mut trace = Vec::new();
        let out = ra.apply(img, &mut draws, Some(&mut trace));
        assert!(draws.0.is_empty(), "all draws used: {:?}", draws.0);
        assert_eq!(trace.len(), 2);
        assert_eq!(
            trace[0],
            OpTrace {
                kind: OpKind::Invert,
                applied: None
            }
        );
        assert_eq!(trace[1].kind, OpKind::Invert);
        assert_eq!(trace[1].applied.map(|a| a.magnitude), Some(9.0));
        assert_eq!(out.get_pixel(0, 0).0, [245, 235, 225]);
    }
}
