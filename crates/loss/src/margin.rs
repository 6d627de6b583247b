//! CombinedMarginLoss: the ArcFace and CosFace margins of insightface's `arcface_torch`.
//!
//! Only the two cases the official code implements are accepted: ArcFace (`m1 = 1`, `m3 = 0`,
//! additive angular margin `m2`) and CosFace (`m3 > 0`, additive cosine margin; `m1` and `m2`
//! ignored). Anything else is a configuration error, where the official code raises.

use tch::{Kind, Tensor};

use crate::error::{LossError, Result};

/// The logit scale `s` that SwinFace's `train.py` passes to `CombinedMarginLoss`.
pub const MARGIN_SCALE: f64 = 64.0;

/// Which margin the `margin_list` selects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MarginKind {
    /// `cos(θ + m)` for the target class (easy margin off).
    ArcFace { m: f64 },
    /// `cos θ − m` for the target class.
    CosFace { m: f64 },
}

impl MarginKind {
    /// Chooses the margin from the official `margin_list = (m1, m2, m3)`.
    pub fn from_margin_list(m1: f64, m2: f64, m3: f64) -> Result<Self> {
        if m1 == 1.0 && m3 == 0.0 {
            Ok(Self::ArcFace { m: m2 })
        } else if m3 > 0.0 {
            Ok(Self::CosFace { m: m3 })
        } else {
            Err(LossError::UnsupportedMargin { m1, m2, m3 })
        }
    }
}

/// Margin-adjusted, scaled logits for a margin softmax.
#[derive(Debug, Clone)]
pub struct CombinedMarginLoss {
    scale: f64,
    kind: MarginKind,
    interclass_filtering_threshold: f64,
}

impl CombinedMarginLoss {
    /// `s`: logit scale; `(m1, m2, m3)`: the official margin list;
    /// `interclass_filtering_threshold`: when > 0, non-target cosines above it are zeroed.
    pub fn new(
        s: f64,
        m1: f64,
        m2: f64,
        m3: f64,
        interclass_filtering_threshold: f64,
    ) -> Result<Self> {
        Ok(Self {
            scale: s,
            kind: MarginKind::from_margin_list(m1, m2, m3)?,
            interclass_filtering_threshold,
        })
    }

    pub fn kind(&self) -> MarginKind {
        self.kind
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// cosines: [N, C] in [-1, 1], labels: [N] (int64, -1 = row without a target here) -> [N, C]
    ///
    /// Rows labelled -1 are only scaled. Differentiable with respect to `cosines`.
    pub fn forward(&self, cosines: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let (rows, classes) = cosines.size2().map_err(|_| LossError::Shape {
            what: "margin cosines",
            expected: vec![-1, -1],
            found: cosines.size(),
        })?;
        let labels = labels.f_reshape([-1])?;
        if labels.size() != [rows] {
            return Err(LossError::Shape {
                what: "margin labels",
                expected: vec![rows],
                found: labels.size(),
            });
        }
        if labels.kind() != Kind::Int64 {
            return Err(LossError::Kind {
                what: "margin labels",
                expected: Kind::Int64,
                found: labels.kind(),
            });
        }
        check_label_range(&labels, classes)?;

        // target[i, c] is true exactly at (i, labels[i]) for rows with a label.
        let class_ids = Tensor::f_arange(classes, (Kind::Int64, cosines.device()))?;
        let target = labels
            .f_unsqueeze(1)?
            .f_eq_tensor(&class_ids.f_unsqueeze(0)?)?;

        let mut logits = cosines.shallow_clone();
        if self.interclass_filtering_threshold > 0.0 {
            // Official: non-target cosines above the threshold count as label noise and are zeroed.
            let dirty = logits
                .f_gt(self.interclass_filtering_threshold)?
                .f_logical_and(&target.f_logical_not()?)?;
            let keep = dirty.f_logical_not()?.f_to_kind(logits.kind())?;
            logits = keep.f_mul(&logits)?;
        }

        let safe_labels = labels.f_clamp_min(0)?.f_unsqueeze(1)?;
        let target_cos = logits.f_gather(1, &safe_labels, false)?;
        let adjusted = match self.kind {
            MarginKind::ArcFace { m } => arcface_target(&target_cos, m)?,
            MarginKind::CosFace { m } => target_cos.f_sub_scalar(m)?,
        };
        let with_margin = adjusted
            .f_expand_as(&logits)?
            .f_where_self(&target, &logits)?;
        Ok(with_margin.f_mul_scalar(self.scale)?)
    }
}

/// t: [N, 1] target cosines -> cos(θ + m), or `cos θ − sin(π − m)·m` where θ + m would pass π.
fn arcface_target(t: &Tensor, m: f64) -> Result<Tensor> {
    let (cos_m, sin_m) = (m.cos(), m.sin());
    let theta = (std::f64::consts::PI - m).cos();
    let sinmm = (std::f64::consts::PI - m).sin() * m;
    let sin_theta = t
        .f_pow_tensor_scalar(2)?
        .f_neg()?
        .f_add_scalar(1.0)?
        .f_sqrt()?;
    let cos_theta_m = t
        .f_mul_scalar(cos_m)?
        .f_sub(&sin_theta.f_mul_scalar(sin_m)?)?;
    let fallback = t.f_sub_scalar(sinmm)?;
    Ok(cos_theta_m.f_where_self(&t.f_gt(theta)?, &fallback)?)
}

/// Labels must be -1 or a class index; the official code would fail on an index error.
fn check_label_range(labels: &Tensor, classes: i64) -> Result<()> {
    if labels.numel() == 0 {
        return Ok(());
    }
    let min = labels.f_min()?.f_int64_value(&[])?;
    let max = labels.f_max()?.f_int64_value(&[])?;
    if min < -1 || max >= classes {
        return Err(LossError::InvalidConfig {
            field: "labels",
            reason: format!("labels span [{min}, {max}], allowed are -1 and 0..{classes}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_list_selects_the_official_cases() {
        assert_eq!(
            MarginKind::from_margin_list(1.0, 0.5, 0.0).unwrap(),
            MarginKind::ArcFace { m: 0.5 }
        );
        assert_eq!(
            MarginKind::from_margin_list(1.0, 0.0, 0.4).unwrap(),
            MarginKind::CosFace { m: 0.4 }
        );
        // CosFace ignores m1 and m2.
        assert_eq!(
            MarginKind::from_margin_list(0.9, 0.3, 0.35).unwrap(),
            MarginKind::CosFace { m: 0.35 }
        );
        assert!(matches!(
            MarginKind::from_margin_list(0.9, 0.4, 0.0),
            Err(LossError::UnsupportedMargin { .. })
        ));
    }

    #[test]
    fn arcface_and_cosface_hand_values() {
        use std::f64::consts::{FRAC_PI_3, PI};
        // Row 0: cos 60° with m = 0.5 gives cos(π/3 + 0.5). Row 1: -0.95 < cos(π − 0.5), so
        // the fallback cos θ − sin(π − m)·m applies. Row 2 (label -1) is only scaled.
        let cosines = Tensor::from_slice(&[0.5f64, 0.1, -0.95, 0.2, 0.3, 0.4]).view([3, 2]);
        let labels = Tensor::from_slice(&[0i64, 0, -1]);
        let arc = CombinedMarginLoss::new(2.0, 1.0, 0.5, 0.0, 0.0).unwrap();
        let got: Vec<f64> =
            Vec::try_from(arc.forward(&cosines, &labels).unwrap().view([-1])).unwrap();
        let want = [
            2.0 * (FRAC_PI_3 + 0.5).cos(),
            0.2,
            2.0 * (-0.95 - (PI - 0.5).sin() * 0.5),
            0.4,
            0.6,
            0.8,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "arcface {got:?} vs {want:?}");
        }
        let cos = CombinedMarginLoss::new(2.0, 1.0, 0.0, 0.4, 0.0).unwrap();
        let got: Vec<f64> =
            Vec::try_from(cos.forward(&cosines, &labels).unwrap().view([-1])).unwrap();
        let want = [0.2, 0.2, -2.7, 0.4, 0.6, 0.8];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "cosface {got:?} vs {want:?}");
        }
    }

    #[test]
    fn interclass_filtering_zeroes_noisy_negatives() {
        let cosines = Tensor::from_slice(&[0.5f64, 0.6, 0.1, 0.7, 0.2, 0.9]).view([2, 3]);
        let labels = Tensor::from_slice(&[1i64, -1]);
        let loss = CombinedMarginLoss::new(1.0, 1.0, 0.0, 0.4, 0.4).unwrap();
        let got: Vec<f64> =
            Vec::try_from(loss.forward(&cosines, &labels).unwrap().view([-1])).unwrap();
        // Row 0: 0.5 > 0.4 is a non-target -> 0; the target 0.6 keeps its value, minus m.
        // Row 1 has no target: every cosine above 0.4 is zeroed.
        let want = [0.0, 0.2, 0.1, 0.0, 0.2, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn out_of_range_labels_are_rejected() {
        let loss = CombinedMarginLoss::new(64.0, 1.0, 0.0, 0.4, 0.0).unwrap();
        let cosines = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 3]);
        assert!(loss.forward(&cosines, &labels).is_err());
    }
}
