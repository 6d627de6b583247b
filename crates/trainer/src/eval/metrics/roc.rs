//! sklearn's `roc_curve` (with its default `drop_intermediate=True`) and `auc`, and how
//! insightface's `eval_ijbc.py` reads TAR at a FAR off that curve.

use serde::Serialize;

use super::numpy::pairwise_sum;
use super::MetricError;

/// FARs of insightface's IJB-C table.
pub const IJB_FARS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// An ROC curve as `sklearn.metrics.roc_curve` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    /// Increasing false positive rates, starting at 0.
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    /// Decreasing score thresholds, the first `+inf`.
    pub thresholds: Vec<f64>,
}

/// `roc_curve(labels, scores)` with positive label 1: scores sorted high to low, one point
/// per distinct score, collinear points dropped (`drop_intermediate`), `(0, 0)` prepended at
/// threshold `inf`.
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Result<RocCurve, MetricError> {
    if labels.len() != scores.len() {
        return Err(MetricError::Shape {
            what: "roc_curve",
            message: format!("{} labels for {} scores", labels.len(), scores.len()),
        });
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(MetricError::NotFinite {
            what: format!("score {i}"),
        });
    }
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || positives == labels.len() {
        return Err(MetricError::OneLabel {
            what: "the ROC's pairs".into(),
        });
    }
    // _binary_clf_curve: a stable descending order (ties in any order: only the counts at the
    // end of a run of equal scores are kept).
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut fps = Vec::new();
    let mut tps = Vec::new();
    let mut thresholds = Vec::new();
    let mut tp = 0usize;
    for (k, &i) in order.iter().enumerate() {
        tp += usize::from(labels[i]);
        let last_of_run = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_run {
            tps.push(tp as f64);
            fps.push((k + 1 - tp) as f64);
            thresholds.push(scores[i]);
        }
    }
    if fps.len() > 2 {
        // Keep the ends and every point where the second difference of fps or tps is nonzero.
        let n = fps.len();
        let keep: Vec<usize> = (0..n)
            .filter(|&i| {
                i == 0
                    || i == n - 1
                    || (fps[i + 1] - fps[i]) - (fps[i] - fps[i - 1]) != 0.0
                    || (tps[i + 1] - tps[i]) - (tps[i] - tps[i - 1]) != 0.0
            })
            .collect();
        fps = keep.iter().map(|&i| fps[i]).collect();
        tps = keep.iter().map(|&i| tps[i]).collect();
        thresholds = keep.iter().map(|&i| thresholds[i]).collect();
    }
    let (fp_total, tp_total) = (fps[fps.len() - 1], tps[tps.len() - 1]);
    let fpr = std::iter::once(0.0)
        .chain(fps.iter().map(|f| f / fp_total))
        .collect();
    let tpr = std::iter::once(0.0)
        .chain(tps.iter().map(|t| t / tp_total))
        .collect();
    let thresholds = std::iter::once(f64::INFINITY).chain(thresholds).collect();
    Ok(RocCurve {
        fpr,
        tpr,
        thresholds,
    })
}

/// `sklearn.metrics.auc(fpr, tpr)`: the trapezoidal rule (`np.trapz`) along increasing x.
pub fn auc(x: &[f64], y: &[f64]) -> Result<f64, MetricError> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(MetricError::Shape {
            what: "auc",
            message: format!("needs at least 2 points, got {} and {}", x.len(), y.len()),
        });
    }
    let dx: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    let direction = if dx.iter().all(|&d| d >= 0.0) {
        1.0
    } else if dx.iter().all(|&d| d <= 0.0) {
        -1.0
    } else {
        return Err(MetricError::Shape {
            what: "auc",
            message: "x is neither increasing nor decreasing".into(),
        });
    };
    let areas: Vec<f64> = dx
        .iter()
        .zip(y.windows(2))
        .map(|(d, w)| d * (w[1] + w[0]) / 2.0)
        .collect();
    Ok(direction * pairwise_sum(&areas))
}

/// TAR at each FAR as `eval_ijbc.py` reads it: the curve is flipped (highest FPR first) and,
/// for each target, the point minimising `|fpr - far|` is taken, ties going to the earlier
/// point of the flipped curve (Python's `min` over `(distance, index)` tuples).
pub fn tar_at_far(curve: &RocCurve, fars: &[f64]) -> Vec<f64> {
    let fpr: Vec<f64> = curve.fpr.iter().rev().copied().collect();
    let tpr: Vec<f64> = curve.tpr.iter().rev().copied().collect();
    fars.iter()
        .map(|&far| {
            let mut best = 0;
            for i in 1..fpr.len() {
                if (fpr[i] - far).abs() < (fpr[best] - far).abs() {
                    best = i;
                }
            }
            tpr[best]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_curve_by_hand() {
        // Scores high to low: 0.9 P, 0.8 N, 0.7 P, 0.7 N (tie), 0.4 P, 0.2 N.
        let labels = [true, false, true, false, true, false];
        let scores = [0.9, 0.8, 0.7, 0.7, 0.4, 0.2];
        let r = roc_curve(&labels, &scores).unwrap();
        // Points before dropping: (fp, tp) = (0,1) (1,1) (2,2) (2,3) (3,3); every interior
        // point is a corner, so none is dropped.
        assert_eq!(r.fpr, vec![0.0, 0.0, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 1.0]);
        assert_eq!(r.tpr, vec![0.0, 1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 1.0, 1.0]);
        assert_eq!(r.thresholds[0], f64::INFINITY);
        assert_eq!(&r.thresholds[1..], &[0.9, 0.8, 0.7, 0.4, 0.2]);

        // Collinear points are dropped: three negatives in a row.
        let labels = [true, false, false, false, true];
        let scores = [5.0, 4.0, 3.0, 2.0, 1.0];
        let r = roc_curve(&labels, &scores).unwrap();
        // (0,1) (1,1) (2,1) (3,1) (3,2): (1,1) and (2,1) lie on a straight run and go.
        assert_eq!(r.fpr, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(r.tpr, vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(r.thresholds, vec![f64::INFINITY, 5.0, 2.0, 1.0]);
        assert!(roc_curve(&[true, true], &[0.1, 0.2]).is_err());
    }

    #[test]
    fn auc_and_tar_reading() {
        let r = RocCurve {
            fpr: vec![0.0, 0.0, 0.5, 1.0],
            tpr: vec![0.0, 0.5, 1.0, 1.0],
            thresholds: vec![f64::INFINITY, 0.9, 0.5, 0.1],
        };
        assert_eq!(auc(&r.fpr, &r.tpr).unwrap(), 0.5 * 0.75 + 0.5);
        // far 0.3: closest fpr 0.5 (distance 0.2) over 0.0 (0.3).
        // far 0.25: 0.5 and 0.0 tie at 0.25; the flipped curve meets fpr 0.5 first.
        // far 1e-6: fpr 0.0 twice; flipped, the later original point (tpr 0.5) comes first.
        assert_eq!(tar_at_far(&r, &[0.3, 0.25, 1e-6]), vec![1.0, 1.0, 0.5]);
    }
}
