//! The official age loss: a squared error that turns into a bounded Gaussian penalty as
//! training progresses.

use tch::{Kind, Tensor};

use crate::error::{LossError, Result};

/// `mean((1 − λ)/2 · d² + λ · (1 − exp(−d² / (2σ²))))` with `d = pred − label` and
/// `λ = step / total_step`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgeLoss {
    pub total_step: u64,
    pub sigma: f64,
}

impl AgeLoss {
    /// The official σ is 3.
    pub fn new(total_step: u64) -> Self {
        Self {
            total_step,
            sigma: 3.0,
        }
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
        let lambda = step as f64 / self.total_step as f64;
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
