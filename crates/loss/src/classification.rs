//! The 41 classification heads' cross-entropy and the per-task loss weights.

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::error::{LossError, Result};

/// Number of analysis tasks: age, 40 CelebA attributes (gender among them), expression.
pub const ANALYSIS_TASKS: usize = 42;

/// `torch.nn.CrossEntropyLoss()` (mean over the batch); optional label smoothing, off by
/// default as in the official loop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClassificationLoss {
    pub label_smoothing: f64,
}

impl ClassificationLoss {
    /// logits: [B, K], labels: [B] (int64) -> scalar
    pub fn forward(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let labels = labels.f_to_kind(Kind::Int64)?;
        Ok(logits.f_cross_entropy_loss::<Tensor>(
            &labels,
            None,
            Reduction::Mean,
            -100,
            self.label_smoothing,
        )?)
    }
}

/// Per-task loss weights (official names): total = w_rec · L_rec + Σ_j w_j · L_j, where
/// j = 0 is age, 1..=40 the CelebA attributes, 41 expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub recognition_loss_weight: f64,
    pub analysis_loss_weights: Vec<f64>,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            recognition_loss_weight: 1.0,
            analysis_loss_weights: vec![1.0; ANALYSIS_TASKS],
        }
    }
}

impl LossWeights {
    pub fn validate(&self) -> Result<()> {
        if self.analysis_loss_weights.len() != ANALYSIS_TASKS {
            return Err(LossError::InvalidConfig {
                field: "analysis_loss_weights",
                reason: format!(
                    "needs {ANALYSIS_TASKS} weights, found {}",
                    self.analysis_loss_weights.len()
                ),
            });
        }
        let all = std::iter::once(&self.recognition_loss_weight).chain(&self.analysis_loss_weights);
        if all.into_iter().any(|w| !w.is_finite()) {
            return Err(LossError::InvalidConfig {
                field: "analysis_loss_weights",
                reason: "weights must be finite".into(),
            });
        }
        Ok(())
    }

    /// recognition: scalar, analysis: 42 scalars in task order -> weighted sum.
    pub fn combine(&self, recognition: &Tensor, analysis: &[Tensor]) -> Result<Tensor> {
        self.validate()?;
        if analysis.len() != ANALYSIS_TASKS {
            return Err(LossError::InvalidConfig {
                field: "analysis losses",
                reason: format!("needs {ANALYSIS_TASKS} losses, found {}", analysis.len()),
            });
        }
        let mut total = recognition.f_mul_scalar(self.recognition_loss_weight)?;
        for (loss, &weight) in analysis.iter().zip(&self.analysis_loss_weights) {
            total = total.f_add(&loss.f_mul_scalar(weight)?)?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_matches_the_formula() {
        let logits = Tensor::from_slice(&[1.0f64, 2.0, 0.5, -1.0, 0.0, 3.0]).view([2, 3]);
        let labels = Tensor::from_slice(&[1i64, 2]);
        let got = ClassificationLoss::default()
            .forward(&logits, &labels)
            .unwrap()
            .double_value(&[]);
        let row = |l: [f64; 3], y: usize| -(l[y] - l.iter().map(|v| v.exp()).sum::<f64>().ln());
        let want = (row([1.0, 2.0, 0.5], 1) + row([-1.0, 0.0, 3.0], 2)) / 2.0;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn weights_combine_and_validate() {
        let mut weights = LossWeights {
            recognition_loss_weight: 2.0,
            ..LossWeights::default()
        };
        weights.analysis_loss_weights[41] = 0.5;
        let analysis: Vec<Tensor> = (0..ANALYSIS_TASKS)
            .map(|j| Tensor::from(j as f64))
            .collect();
        let got = weights
            .combine(&Tensor::from(10.0f64), &analysis)
            .unwrap()
            .double_value(&[]);
        let want = 20.0 + (0..41).map(|j| j as f64).sum::<f64>() + 41.0 * 0.5;
        assert_eq!(got, want);
        weights.analysis_loss_weights.pop();
        assert!(weights.validate().is_err());
    }
}
