//! Evaluation metrics as pure functions of model outputs and labels (no I/O, no tensors), each
//! computed as the official code computes it; where the official distributed code reports a
//! shard or a mean of per-batch means, these compute the metric over the whole set.
//!
//! - [`verification`]: insightface's 10-fold protocol (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW).
//! - [`roc`]: sklearn's `roc_curve` / `auc` and insightface's TAR@FAR reading (IJB-C).
//! - [`template`]: IJB-C image -> media -> template feature aggregation and pair scores.
//! - [`classification`]: RAF-DB expression (top-1/5, per class, confusion) and CelebA
//!   attributes.
//! - [`age`]: FG-NET MAE, CLAP2015 MAE and epsilon-error.
//! - [`tracker`]: the callbacks' best value and 10-evaluation moving average.
//! - [`numpy`]: numpy's reduction order, which the others use.

pub mod age;
pub mod classification;
pub mod numpy;
pub mod roc;
pub mod template;
// Used by the periodic evaluation, which the trainer (next issue) calls.
#[allow(dead_code)]
pub mod tracker;
pub mod verification;

/// Why a metric cannot be computed from the given values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("{what}: {message}")]
    Shape { what: &'static str, message: String },
    #[error("{found} {what}, at least {needed} needed")]
    TooFewSamples {
        what: &'static str,
        found: usize,
        needed: usize,
    },
    #[error("{what} has pairs of only one label")]
    OneLabel { what: String },
    #[error("{value} is outside the interpolation range [{low}, {high}]")]
    OutOfRange { value: f64, low: f64, high: f64 },
    #[error("{what} is not finite")]
    NotFinite { what: String },
    #[error("label {label} of sample {index} is not one of the {classes} classes")]
    BadLabel {
        index: usize,
        label: i64,
        classes: usize,
    },
}

#[cfg(test)]
mod parity;
