//! The official age loss: a squared error that turns into a bounded Gaussian penalty as
//! training progresses.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{LossError, Result};

/// The age loss's settings (keys of the training config). The official loss has neither key:
/// its σ is 3 and its switch from squared error to the Gaussian penalty spans the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgeLossConfig {
    /// σ of the Gaussian penalty (years).
    pub age_loss_sigma: f64,
    /// Steps over which the loss moves from squared error to the Gaussian penalty (λ rises
    /// from 0 to 1, then stays); unset: the run's `total_step`, as the official loss does.
    /// A short run that is to keep correcting its far-off predictions sets it longer than
    /// the run: the Gaussian penalty hardly pulls at errors beyond 2σ.
    pub age_loss_anneal_step: Option<u64>,
}

impl Default for AgeLossConfig {
    fn default() -> Self {
        Self {
            age_loss_sigma: 3.0,
            age_loss_anneal_step: None,
        }
    }
}

impl AgeLossConfig {
    pub fn validate(&self) -> Result<()> {
        // Written so that NaN fails too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(self.age_loss_sigma > 0.0 && self.age_loss_sigma.is_finite()) {
            return Err(LossError::InvalidConfig {
                field: "age_loss_sigma",
                reason: format!("{} must be finite and > 0", self.age_loss_sigma),
            });
        }
        if self.age_loss_anneal_step == Some(0) {
            return Err(LossError::InvalidConfig {
                field: "age_loss_anneal_step",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `mean((1 − λ)/2 · d² + λ · (1 − exp(−d² / (2σ²))))` with `d = pred − label` and
/// `λ = min(step / total_step, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgeLoss {
    pub total_step: u64,
    pub sigma: f64,
}

impl AgeLoss {
    /// The official loss (σ 3, annealed over the run's `total_step`).
    pub fn new(total_step: u64) -> Self {
        Self::from_config(&AgeLossConfig::default(), total_step)
    }

    /// The loss `config` describes for a run of `run_total_step` steps.
    pub fn from_config(config: &AgeLossConfig, run_total_step: u64) -> Self {
        Self {
            total_step: config.age_loss_anneal_step.unwrap_or(run_total_step),
            sigma: config.age_loss_sigma,
        }
    }

    /// The weight of the Gaussian penalty at `step`.
    pub fn lambda(&self, step: u64) -> f64 {
        (step as f64 / self.total_step.max(1) as f64).min(1.0)
    }

    /// pred: [B, 1] (or [B]), label: same shape -> scalar (float32, as the official casts).
    pub fn forward(&self, pred: &Tensor, label: &Tensor, step: u64) -> Result<Tensor> {
        if pred.size() != label.size() {
            return Err(LossError::Shape {
                what: "age label",
                expected: pred.size(),
                found: label.size(),
            });
        }
        let lambda = self.lambda(step);
        let pred = pred.f_to_kind(Kind::Float)?;
        let label = label.f_to_kind(Kind::Float)?;
        let squared = pred.f_sub(&label)?.f_pow_tensor_scalar(2)?;
        let quadratic = squared.f_mul_scalar((1.0 - lambda) / 2.0)?;
        let gaussian = squared
            .f_neg()?
            .f_div_scalar(2.0 * self.sigma.powi(2))?
            .f_exp()?
            .f_neg()?
            .f_add_scalar(1.0)?
            .f_mul_scalar(lambda)?;
        Ok(quadratic.f_add(&gaussian)?.f_mean(None::<Kind>)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_at(loss: &AgeLoss, pred: f32, label: f32, step: u64) -> f64 {
        let p = Tensor::from_slice(&[pred]);
        let l = Tensor::from_slice(&[label]);
        loss.forward(&p, &l, step).unwrap().double_value(&[])
    }

    #[test]
    fn the_anneal_step_sets_when_the_gaussian_takes_over() {
        let official = AgeLoss::from_config(&AgeLossConfig::default(), 100);
        assert_eq!(official, AgeLoss::new(100));
        let longer = AgeLoss::from_config(
            &AgeLossConfig {
                age_loss_anneal_step: Some(1000),
                ..AgeLossConfig::default()
            },
            100,
        );
        // d = 10: at the run's end the official loss is the bounded penalty, 1 - e^{-100/18};
        // the longer anneal is still mostly the squared error.
        let bounded = 1.0 - (-100.0f64 / 18.0).exp();
        assert!((loss_at(&official, 30.0, 20.0, 100) - bounded).abs() < 1e-6);
        let expected = 0.9 / 2.0 * 100.0 + 0.1 * bounded;
        assert!((loss_at(&longer, 30.0, 20.0, 100) - expected).abs() < 1e-4);
        // Past its anneal, λ stays 1 instead of going negative on the squared error.
        assert_eq!(official.lambda(250), 1.0);
        assert!((loss_at(&official, 30.0, 20.0, 250) - bounded).abs() < 1e-6);
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            AgeLossConfig {
                age_loss_sigma: 0.0,
                ..AgeLossConfig::default()
            },
            AgeLossConfig {
                age_loss_sigma: f64::NAN,
                ..AgeLossConfig::default()
            },
            AgeLossConfig {
                age_loss_anneal_step: Some(0),
                ..AgeLossConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(AgeLossConfig::default().validate().is_ok());
    }
}
