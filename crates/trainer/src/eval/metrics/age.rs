//! Age metrics. The official callbacks compute them per batch in float64 (float32 predictions
//! promoted by the float64 labels) and average the batch means over rank 0's shard only; these
//! take the whole set, with numpy's summation order.

use serde::Serialize;

use super::numpy::{pairwise_sum, python_sum};
use super::MetricError;

/// FG-NET / CLAP2015 mean absolute error and the signed errors behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeMetrics {
    pub samples: usize,
    /// Mean |prediction - label| in years.
    pub mae: f64,
    /// CLAP2015's epsilon-error `1 - mean(exp(-(x - mu)^2 / (2 sigma^2)))` (CLAP only).
    pub epsilon_error: Option<f64>,
    /// Mean signed error (prediction - label): the bias.
    pub mean_error: f64,
}

fn check_lengths(pred: &[f64], labels: &[f64]) -> Result<(), MetricError> {
    if pred.len() != labels.len() {
        return Err(MetricError::Shape {
            what: "age predictions",
            message: format!("{} predictions for {} labels", pred.len(), labels.len()),
        });
    }
    if pred.is_empty() {
        return Err(MetricError::TooFewSamples {
            what: "age samples",
            found: 0,
            needed: 1,
        });
    }
    if let Some(i) = pred.iter().position(|p| !p.is_finite()) {
        return Err(MetricError::NotFinite {
            what: format!("age prediction {i}"),
        });
    }
    Ok(())
}

/// Mean absolute error over all images (FG-NET).
pub fn mae(pred: &[f64], labels: &[f64]) -> Result<AgeMetrics, MetricError> {
    check_lengths(pred, labels)?;
    let errors: Vec<f64> = pred.iter().zip(labels).map(|(p, y)| p - y).collect();
    let abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    let n = pred.len() as f64;
    Ok(AgeMetrics {
        samples: pred.len(),
        mae: pairwise_sum(&abs) / n,
        epsilon_error: None,
        mean_error: python_sum(&errors) / n,
    })
}

/// CLAP2015: MAE against the apparent-age mean and the epsilon-error with the annotators'
/// standard deviation, `1 - sum(exp(-(x - mu)^2 / (2 * sigma^2))) / N` in the official operation
/// order. A zero sigma gives a zero term (or NaN when the prediction is exact), as in the
/// official code.
pub fn clap(pred: &[f64], mean: &[f64], std: &[f64]) -> Result<AgeMetrics, MetricError> {
    check_lengths(pred, mean)?;
    check_lengths(pred, std)?;
    let mut metrics = mae(pred, mean)?;
    let terms: Vec<f64> = pred
        .iter()
        .zip(mean)
        .zip(std)
        .map(|((x, mu), sigma)| {
            let d = x - mu;
            (-(d * d) / (2.0 * (sigma * sigma))).exp()
        })
        .collect();
    metrics.epsilon_error = Some(1.0 - pairwise_sum(&terms) / pred.len() as f64);
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mae_and_epsilon_by_hand() {
        let m = mae(&[10.0, 20.0, 33.0], &[12.0, 20.0, 30.0]).unwrap();
        assert_eq!(m.mae, 5.0 / 3.0);
        assert_eq!(m.mean_error, 1.0 / 3.0);
        // One exact prediction (term 1) and one a sigma off (term exp(-1/2)).
        let c = clap(&[30.0, 42.0], &[30.0, 40.0], &[3.0, 2.0]).unwrap();
        assert_eq!(c.mae, 1.0);
        let expected = 1.0 - (1.0 + (-0.5f64).exp()) / 2.0;
        assert!((c.epsilon_error.unwrap() - expected).abs() < 1e-15);
        assert!(mae(&[], &[]).is_err());
        assert!(mae(&[f64::NAN], &[1.0]).is_err());
    }
}
