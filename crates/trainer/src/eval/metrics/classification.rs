//! RAF-DB expression and CelebA attribute metrics. The official callbacks average timm's
//! per-batch `accuracy` weighted by batch size after an all-reduce of per-rank means; these
//! count correct predictions over the whole set instead, which is the same number on one
//! rank with equal batches and the true one otherwise.

use serde::Serialize;

use super::numpy::python_sum;
use super::MetricError;

/// What one expression prediction contributes; kept instead of the logits so that memory
/// grows by a few bytes per image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExpressionSample {
    pub label: u8,
    /// argmax of the logits (the first on ties).
    pub predicted: u8,
    /// Position of the label in the logits sorted high to low (ties: lower class first).
    pub label_rank: u8,
    /// Cross-entropy of this sample (natural log).
    pub loss: f64,
}

impl ExpressionSample {
    /// logits: [classes] -> the sample's summary.
    pub fn from_logits(logits: &[f32], label: usize) -> Result<Self, MetricError> {
        let classes = logits.len();
        if label >= classes || classes > usize::from(u8::MAX) {
            return Err(MetricError::BadLabel {
                index: 0,
                label: label as i64,
                classes,
            });
        }
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(MetricError::NotFinite {
                what: "an expression logit".into(),
            });
        }
        let own = logits[label];
        let label_rank = logits
            .iter()
            .enumerate()
            .filter(|&(c, &v)| v > own || (v == own && c < label))
            .count();
        let predicted = argmax(logits);
        let max = f64::from(logits[predicted]);
        let log_sum_exp = max
            + logits
                .iter()
                .map(|&v| (f64::from(v) - max).exp())
                .sum::<f64>()
                .ln();
        Ok(Self {
            label: label as u8,
            predicted: predicted as u8,
            label_rank: label_rank as u8,
            loss: log_sum_exp - f64::from(own),
        })
    }
}

/// Index of the first maximum (torch.argmax).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// RAF-DB test metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpressionMetrics {
    pub samples: usize,
    /// Fraction of samples whose argmax is the label.
    pub top1: f64,
    /// Fraction whose label is among the five highest logits.
    pub top5: f64,
    /// Accuracy of each class (recall); `None` for a class without test samples.
    pub per_class: Vec<Option<f64>>,
    /// Mean of the per-class accuracies over the classes present.
    pub mean_class_accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Mean cross-entropy.
    pub loss: f64,
}

pub fn expression_metrics(
    samples: &[ExpressionSample],
    classes: usize,
) -> Result<ExpressionMetrics, MetricError> {
    if samples.is_empty() {
        return Err(MetricError::TooFewSamples {
            what: "expression samples",
            found: 0,
            needed: 1,
        });
    }
    let mut confusion = vec![vec![0u64; classes]; classes];
    let mut top5 = 0u64;
    let mut losses = Vec::with_capacity(samples.len());
    for (index, s) in samples.iter().enumerate() {
        let (label, predicted) = (usize::from(s.label), usize::from(s.predicted));
        if label >= classes || predicted >= classes {
            return Err(MetricError::BadLabel {
                index,
                label: i64::from(s.label.max(s.predicted)),
                classes,
            });
        }
        confusion[label][predicted] += 1;
        top5 += u64::from(s.label_rank < 5);
        losses.push(s.loss);
    }
    let n = samples.len() as f64;
    let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class: Vec<Option<f64>> = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: u64 = row.iter().sum();
            (total > 0).then(|| row[c] as f64 / total as f64)
        })
        .collect();
    let present: Vec<f64> = per_class.iter().flatten().copied().collect();
    Ok(ExpressionMetrics {
        samples: samples.len(),
        top1: correct as f64 / n,
        top5: top5 as f64 / n,
        mean_class_accuracy: python_sum(&present) / present.len() as f64,
        per_class,
        confusion,
        loss: python_sum(&losses) / n,
    })
}

/// CelebA test metrics: accuracy of each of the 40 binary heads and their mean (the official
/// `sum(acc_list) / len(acc_list)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeMetrics {
    pub samples: usize,
    /// In SwinFace's task order.
    pub per_attribute: Vec<f64>,
    pub mean: f64,
}

/// predictions, labels: per sample, one 0/1 value per attribute.
pub fn attribute_metrics<const A: usize>(
    predictions: &[[u8; A]],
    labels: &[[u8; A]],
) -> Result<AttributeMetrics, MetricError> {
    if predictions.len() != labels.len() {
        return Err(MetricError::Shape {
            what: "attribute predictions",
            message: format!(
                "{} predictions for {} labels",
                predictions.len(),
                labels.len()
            ),
        });
    }
    if predictions.is_empty() {
        return Err(MetricError::TooFewSamples {
            what: "attribute samples",
            found: 0,
            needed: 1,
        });
    }
    let mut correct = [0u64; A];
    for (p, l) in predictions.iter().zip(labels) {
        for a in 0..A {
            correct[a] += u64::from(p[a] == l[a]);
        }
    }
    let n = predictions.len() as f64;
    let per_attribute: Vec<f64> = correct.iter().map(|&c| c as f64 / n).collect();
    Ok(AttributeMetrics {
        samples: predictions.len(),
        mean: python_sum(&per_attribute) / A as f64,
        per_attribute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_sample_by_hand() {
        let logits = [0.0f32, 2.0, 1.0, 2.0, -1.0, -2.0, -3.0];
        let s = ExpressionSample::from_logits(&logits, 3).unwrap();
        // Class 1 ties class 3 and comes first: argmax 1, label rank 1.
        assert_eq!((s.predicted, s.label_rank), (1, 1));
        let lse = (0f64.exp()
            + 2f64.exp() * 2.0
            + 1f64.exp()
            + (-1f64).exp()
            + (-2f64).exp()
            + (-3f64).exp())
        .ln();
        assert!((s.loss - (lse - 2.0)).abs() < 1e-12);
        let last = ExpressionSample::from_logits(&logits, 6).unwrap();
        assert_eq!(last.label_rank, 6);
        assert!(ExpressionSample::from_logits(&logits, 7).is_err());
    }

    #[test]
    fn expression_metrics_by_hand() {
        let s = |label, predicted, label_rank| ExpressionSample {
            label,
            predicted,
            label_rank,
            loss: 1.0,
        };
        // Class 0: 2 of 3 right; class 1: 0 of 1; class 2: 1 of 1; class 3: none.
        let samples = [s(0, 0, 0), s(0, 0, 0), s(0, 2, 5), s(1, 0, 3), s(2, 2, 0)];
        let m = expression_metrics(&samples, 4).unwrap();
        assert_eq!(m.top1, 3.0 / 5.0);
        assert_eq!(m.top5, 4.0 / 5.0);
        assert_eq!(
            m.per_class,
            vec![Some(2.0 / 3.0), Some(0.0), Some(1.0), None]
        );
        assert_eq!(m.mean_class_accuracy, (2.0 / 3.0 + 0.0 + 1.0) / 3.0);
        assert_eq!(m.confusion[0], vec![2, 0, 1, 0]);
        assert_eq!(m.confusion[1], vec![1, 0, 0, 0]);
        assert_eq!(m.loss, 1.0);
    }

    #[test]
    fn attribute_metrics_by_hand() {
        let predictions = [[1u8, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]];
        let labels = [[1u8, 0, 0], [0, 1, 1], [1, 1, 0], [1, 1, 0]];
        let m = attribute_metrics(&predictions, &labels).unwrap();
        assert_eq!(m.per_attribute, vec![0.75, 0.75, 0.5]);
        assert_eq!(m.mean, (0.75 + 0.75 + 0.5) / 3.0);
        assert!(attribute_metrics(&predictions[..1], &labels).is_err());
    }
}
