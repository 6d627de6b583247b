//! The insightface verification protocol (`eval/verification.py` of arcface_torch, which
//! SwinFace's callbacks call) on pair embeddings: squared L2 distance, accuracy with the best
//! of 400 thresholds chosen on nine folds and measured on the tenth, the ROC averaged over
//! folds, and VAL at FAR 1e-3 with the threshold interpolated from the training folds' FAR.
//! Every floating-point step rounds as numpy / scipy / sklearn round it.

use std::ops::Range;

use serde::Serialize;

use super::numpy::{arange, mean, mean_of_rows, pairwise_sum, python_sum, std};
use super::MetricError;

/// Folds of the official protocol.
pub const FOLDS: usize = 10;
/// `np.arange(0, 4, 0.01)`: the accuracy / ROC thresholds.
pub const ROC_THRESHOLD_STEP: f64 = 0.01;
/// `np.arange(0, 4, 0.001)`: the VAL thresholds.
pub const VAL_THRESHOLD_STEP: f64 = 0.001;
/// Largest threshold (exclusive) of both grids: squared distances of unit vectors are <= 4.
pub const THRESHOLD_STOP: f64 = 4.0;
/// FAR at which VAL is read.
pub const VAL_FAR_TARGET: f64 = 1e-3;

/// sklearn's `KFold(n_splits, shuffle=False)`: contiguous test folds, the first `n % k` one
/// element longer; insightface's `LFold` with one split tests on the training set.
pub fn kfold_test_ranges(n: usize, folds: usize) -> Result<Vec<Range<usize>>, MetricError> {
    if folds == 0 || (folds > 1 && n < folds) {
        return Err(MetricError::TooFewSamples {
            what: "pairs",
            found: n,
            needed: folds.max(1),
        });
    }
    if folds == 1 {
        return Ok(std::iter::once(0..n).collect());
    }
    let mut start = 0;
    Ok((0..folds)
        .map(|k| {
            let len = n / folds + usize::from(k < n % folds);
            let range = start..start + len;
            start += len;
            range
        })
        .collect())
}

/// A fold's pairs split by label, distances sorted, so that counting `dist < t` is a binary
/// search; the counts are the ones `calculate_accuracy` sums.
struct Split {
    same: Vec<f64>,
    diff: Vec<f64>,
}

/// The four counts of `calculate_accuracy` / `calculate_val_far` at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
}

impl Split {
    fn new(dist: &[f64], issame: &[bool], indices: impl Iterator<Item = usize>) -> Self {
        let mut same = Vec::new();
        let mut diff = Vec::new();
        for i in indices {
            if issame[i] {
                same.push(dist[i]);
            } else {
                diff.push(dist[i]);
            }
        }
        same.sort_by(f64::total_cmp);
        diff.sort_by(f64::total_cmp);
        Self { same, diff }
    }

    fn len(&self) -> usize {
        self.same.len() + self.diff.len()
    }

    /// Predicted same = `dist < threshold` (`np.less`; NaN distances are never below).
    fn counts(&self, threshold: f64) -> Counts {
        let below = |sorted: &[f64]| sorted.partition_point(|&d| d < threshold);
        let tp = below(&self.same);
        let fp = below(&self.diff);
        Counts {
            tp,
            fp,
            tn: self.diff.len() - fp,
            fn_: self.same.len() - tp,
        }
    }

    /// `calculate_accuracy`: (tpr, fpr, acc).
    fn accuracy(&self, threshold: f64) -> (f64, f64, f64) {
        let c = self.counts(threshold);
        let tpr = if c.tp + c.fn_ == 0 {
            0.0
        } else {
            c.tp as f64 / (c.tp + c.fn_) as f64
        };
        let fpr = if c.fp + c.tn == 0 {
            0.0
        } else {
            c.fp as f64 / (c.fp + c.tn) as f64
        };
        let acc = (c.tp + c.tn) as f64 / self.len() as f64;
        (tpr, fpr, acc)
    }

    /// `calculate_val_far`: (val, far); `None` where Python divides by zero.
    fn val_far(&self, threshold: f64) -> Option<(f64, f64)> {
        if self.same.is_empty() || self.diff.is_empty() {
            return None;
        }
        let c = self.counts(threshold);
        Some((
            c.tp as f64 / self.same.len() as f64,
            c.fp as f64 / self.diff.len() as f64,
        ))
    }
}

/// Splits of every fold: (train, test).
fn fold_splits(
    dist: &[f64],
    issame: &[bool],
    folds: usize,
) -> Result<Vec<(Split, Split)>, MetricError> {
    let n = dist.len().min(issame.len());
    let ranges = kfold_test_ranges(n, folds)?;
    Ok(ranges
        .into_iter()
        .map(|test| {
            let train = if folds == 1 {
                Split::new(dist, issame, 0..n)
            } else {
                Split::new(dist, issame, (0..test.start).chain(test.end..n))
            };
            (train, Split::new(dist, issame, test))
        })
        .collect())
}

/// `np.sum(np.square(e1 - e2), 1)` for pairs stored as rows `2k` and `2k + 1`.
/// embeddings: [2P, dim] row-major -> [P].
pub fn pair_squared_distances(embeddings: &[f64], dim: usize) -> Result<Vec<f64>, MetricError> {
    if dim == 0 || !embeddings.len().is_multiple_of(2 * dim) {
        return Err(MetricError::Shape {
            what: "pair embeddings",
            message: format!(
                "{} values do not make pairs of {dim}-dimensional rows",
                embeddings.len()
            ),
        });
    }
    let mut squares = vec![0.0; dim];
    Ok(embeddings
        .chunks_exact(2 * dim)
        .map(|pair| {
            let (a, b) = pair.split_at(dim);
            for ((s, x), y) in squares.iter_mut().zip(a).zip(b) {
                let d = x - y;
                *s = d * d;
            }
            pairwise_sum(&squares)
        })
        .collect())
}

/// What `calculate_roc` returns, and the thresholds it picked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocFolds {
    /// The threshold grid.
    pub thresholds: Vec<f64>,
    /// Mean over folds of each fold's test TPR, per threshold.
    pub tpr: Vec<f64>,
    /// Mean over folds of each fold's test FPR, per threshold.
    pub fpr: Vec<f64>,
    /// Test accuracy of each fold at the threshold best on its training folds.
    pub fold_accuracy: Vec<f64>,
    /// That threshold, per fold.
    pub best_thresholds: Vec<f64>,
}

/// `calculate_roc(thresholds, e1, e2, issame, nrof_folds, pca=0)` on precomputed distances.
pub fn calculate_roc(
    thresholds: &[f64],
    dist: &[f64],
    issame: &[bool],
    folds: usize,
) -> Result<RocFolds, MetricError> {
    let splits = fold_splits(dist, issame, folds)?;
    let mut tprs = Vec::with_capacity(folds);
    let mut fprs = Vec::with_capacity(folds);
    let mut fold_accuracy = Vec::with_capacity(folds);
    let mut best_thresholds = Vec::with_capacity(folds);
    for (train, test) in &splits {
        // np.argmax: the first maximum.
        let mut best = 0;
        let mut best_acc = f64::NEG_INFINITY;
        for (i, &t) in thresholds.iter().enumerate() {
            let (_, _, acc) = train.accuracy(t);
            if acc > best_acc {
                best_acc = acc;
                best = i;
            }
        }
        let (tpr, fpr): (Vec<f64>, Vec<f64>) = thresholds
            .iter()
            .map(|&t| {
                let (tpr, fpr, _) = test.accuracy(t);
                (tpr, fpr)
            })
            .unzip();
        tprs.push(tpr);
        fprs.push(fpr);
        fold_accuracy.push(test.accuracy(thresholds[best]).2);
        best_thresholds.push(thresholds[best]);
    }
    Ok(RocFolds {
        thresholds: thresholds.to_vec(),
        tpr: mean_of_rows(&tprs),
        fpr: mean_of_rows(&fprs),
        fold_accuracy,
        best_thresholds,
    })
}

/// VAL at a target FAR (`calculate_val`): mean and population std of the folds' VAL, mean FAR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValAtFar {
    pub far_target: f64,
    pub val: f64,
    pub val_std: f64,
    pub far: f64,
    /// The interpolated threshold of each fold.
    pub fold_thresholds: Vec<f64>,
}

/// `calculate_val(thresholds, e1, e2, issame, far_target, nrof_folds)`. Fails where the
/// official code divides by zero: a fold whose training or test pairs lack one label.
pub fn calculate_val(
    thresholds: &[f64],
    dist: &[f64],
    issame: &[bool],
    far_target: f64,
    folds: usize,
) -> Result<ValAtFar, MetricError> {
    let splits = fold_splits(dist, issame, folds)?;
    let mut vals = Vec::with_capacity(folds);
    let mut fars = Vec::with_capacity(folds);
    let mut fold_thresholds = Vec::with_capacity(folds);
    for (k, (train, test)) in splits.iter().enumerate() {
        let one_label = || MetricError::OneLabel {
            what: format!("fold {k} of the VAL protocol"),
        };
        let far_train = thresholds
            .iter()
            .map(|&t| train.val_far(t).map(|(_, far)| far))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(one_label)?;
        let max_far = far_train.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let threshold = if max_far >= far_target {
            interp1d_slinear(&far_train, thresholds, far_target)?
        } else {
            0.0
        };
        let (val, far) = test.val_far(threshold).ok_or_else(one_label)?;
        vals.push(val);
        fars.push(far);
        fold_thresholds.push(threshold);
    }
    Ok(ValAtFar {
        far_target,
        val: mean(&vals),
        val_std: std(&vals),
        far: mean(&fars),
        fold_thresholds,
    })
}

/// `scipy.interpolate.interp1d(x, y, kind='slinear')(at)`: a degree-1 B-spline with knots
/// `[x0, x0, x1, ..., xn, xn]` (`make_interp_spline(x, y, k=1)`), evaluated as scipy's
/// `evaluate_spline`: the interval found as `find_interval` does (the last knot `<= at`, so
/// among repeated x the last one), then de Boor's recursion in scipy's operation order. `x` is
/// sorted stably first, as interp1d does; `at` outside `[x0, xn]` is the error interp1d raises.
pub fn interp1d_slinear(x: &[f64], y: &[f64], at: f64) -> Result<f64, MetricError> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(MetricError::Shape {
            what: "interp1d",
            message: format!(
                "needs at least 2 points and equal lengths, got {} and {}",
                x.len(),
                y.len()
            ),
        });
    }
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let c: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    let n = xs.len();
    if !(at >= xs[0] && at <= xs[n - 1]) {
        return Err(MetricError::OutOfRange {
            value: at,
            low: xs[0],
            high: xs[n - 1],
        });
    }
    // Knots t[0] = x0, t[i + 1] = x[i], t[n + 1] = x[n - 1]; k = 1, so find_interval's upper
    // index is len(t) - k - 1 = n.
    let t = |i: usize| xs[(i.max(1) - 1).min(n - 1)];
    let mut l = 2;
    while l != n && at >= t(l) {
        l += 1;
    }
    let ell = l - 1;
    let (xa, xb) = (t(ell), t(ell + 1));
    let (h0, h1) = if xb == xa {
        (0.0, 0.0)
    } else {
        let w = 1.0 / (xb - xa);
        (0.0 + w * (xb - at), w * (at - xa))
    };
    let mut out = 0.0;
    out += c[ell - 1] * h0;
    out += c[ell] * h1;
    Ok(out)
}

/// Everything insightface's `test` / `evaluate` report for one verification set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationMetrics {
    pub pairs: usize,
    /// Mean of the fold accuracies (the number in the paper's tables).
    pub accuracy: f64,
    /// Their population standard deviation.
    pub accuracy_std: f64,
    pub roc: RocFolds,
    /// VAL at FAR 1e-3, or why the protocol has none for this set.
    pub val: Result<ValAtFar, String>,
    /// Mean L2 norm of the unnormalised embeddings (images and flips), insightface's XNorm.
    pub xnorm: f64,
}

/// The protocol on L2-normalised pair embeddings ([2P, dim], pairs as rows 2k, 2k+1).
pub fn evaluate(
    embeddings: &[f64],
    dim: usize,
    issame: &[bool],
    folds: usize,
    xnorm: f64,
) -> Result<VerificationMetrics, MetricError> {
    let dist = pair_squared_distances(embeddings, dim)?;
    if let Some(k) = dist.iter().position(|d| !d.is_finite()) {
        return Err(MetricError::NotFinite {
            what: format!("squared distance of pair {k}"),
        });
    }
    if dist.len() != issame.len() {
        return Err(MetricError::Shape {
            what: "verification pairs",
            message: format!("{} embedding pairs for {} labels", dist.len(), issame.len()),
        });
    }
    let roc = calculate_roc(
        &arange(THRESHOLD_STOP, ROC_THRESHOLD_STEP),
        &dist,
        issame,
        folds,
    )?;
    let val = calculate_val(
        &arange(THRESHOLD_STOP, VAL_THRESHOLD_STEP),
        &dist,
        issame,
        VAL_FAR_TARGET,
        folds,
    )
    .map_err(|e| e.to_string());
    Ok(VerificationMetrics {
        pairs: issame.len(),
        accuracy: mean(&roc.fold_accuracy),
        accuracy_std: std(&roc.fold_accuracy),
        roc,
        val,
        xnorm,
    })
}

/// Embeddings of the images and of their flips ([N, dim] each, float32 as the network gives
/// them) -> `sklearn.preprocessing.normalize(e0 + e1)` in f64 ([N, dim]), and insightface's
/// XNorm (the mean L2 norm of all 2N unnormalised embeddings).
///
/// The row norms use numpy's pairwise sum; sklearn takes them from `np.einsum`, whose
/// summation order may differ in the last bit.
pub fn flip_sum_normalise(
    plain: &[f32],
    flipped: &[f32],
    dim: usize,
) -> Result<(Vec<f64>, f64), MetricError> {
    if dim == 0 || plain.len() != flipped.len() || !plain.len().is_multiple_of(dim) {
        return Err(MetricError::Shape {
            what: "flip embeddings",
            message: format!(
                "{} and {} values for rows of {dim}",
                plain.len(),
                flipped.len()
            ),
        });
    }
    let norm = |row: &[f64]| {
        let squares: Vec<f64> = row.iter().map(|v| v * v).collect();
        pairwise_sum(&squares).sqrt()
    };
    let mut norms = Vec::with_capacity(2 * plain.len() / dim);
    for list in [plain, flipped] {
        for row in list.chunks_exact(dim) {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            norms.push(norm(&row));
        }
    }
    let xnorm = python_sum(&norms) / norms.len() as f64;
    let mut out = Vec::with_capacity(plain.len());
    for (a, b) in plain.chunks_exact(dim).zip(flipped.chunks_exact(dim)) {
        let row: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) + f64::from(y))
            .collect();
        let n = norm(&row);
        let n = if n == 0.0 { 1.0 } else { n };
        out.extend(row.iter().map(|v| v / n));
    }
    Ok((out, xnorm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfold_matches_sklearn() {
        // KFold(10).split(range(23)): fold sizes 3,3,3,2,...
        let r = kfold_test_ranges(23, 10).unwrap();
        assert_eq!(r[0], 0..3);
        assert_eq!(r[2], 6..9);
        assert_eq!(r[3], 9..11);
        assert_eq!(r[9], 21..23);
        assert_eq!(kfold_test_ranges(5, 1).unwrap(), vec![0..5]);
        assert!(kfold_test_ranges(9, 10).is_err());
    }

    #[test]
    fn accuracy_counts_by_hand() {
        // Pairs: same at distances 0.5, 1.5; different at 1.0, 3.0.
        let dist = [0.5, 1.0, 1.5, 3.0];
        let issame = [true, false, true, false];
        let s = Split::new(&dist, &issame, 0..4);
        // t = 1.0: 0.5 < 1 accepted (tp), 1.0 is not < 1 (tn), 1.5 rejected (fn), 3.0 tn.
        assert_eq!(s.accuracy(1.0), (0.5, 0.0, 0.75));
        // t = 2.0: tp 2, fp 1, tn 1.
        assert_eq!(s.accuracy(2.0), (1.0, 0.5, 0.75));
        assert_eq!(s.accuracy(0.0), (0.0, 0.0, 0.5));
        assert_eq!(s.val_far(2.0), Some((1.0, 0.5)));
        let only_same = Split::new(&dist, &[true; 4], 0..4);
        assert_eq!(only_same.val_far(2.0), None);
        // tpr is 0 (not NaN) without positives, as the official code.
        assert_eq!(only_same.accuracy(2.0).1, 0.0);
    }

    #[test]
    fn roc_picks_the_first_best_threshold_on_the_training_folds() {
        // Two folds of 4 pairs each; LFold(2) trains on the other fold.
        let dist = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.35, 0.5];
        let issame = [true, false, true, false, true, false, true, false];
        let thresholds = [0.0, 0.4, 0.6, 1.0];
        let roc = calculate_roc(&thresholds, &dist, &issame, 2).unwrap();
        // Fold 0 trains on pairs 4..8: 0.4 separates them (acc 1), first best index 1.
        // Fold 1 trains on 0..4: 0.4 and 0.6 both give 1.0; argmax takes 0.4.
        assert_eq!(roc.best_thresholds, vec![0.4, 0.4]);
        assert_eq!(roc.fold_accuracy, vec![1.0, 1.0]);
        // At t = 0.6 fold 1's negative 0.5 is accepted: fpr 0.5 there, 0 in fold 0.
        assert_eq!(roc.fpr, vec![0.0, 0.0, 0.25, 1.0]);
        assert_eq!(roc.tpr, vec![0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn slinear_interpolation_takes_the_last_repeated_x() {
        let x = [0.0, 0.0, 0.0, 0.5, 1.0];
        let y = [0.0, 1.0, 2.0, 3.0, 4.0];
        // Between (0.0 [last of the repeats], 2.0) and (0.5, 3.0).
        assert_eq!(interp1d_slinear(&x, &y, 0.25).unwrap(), 2.5);
        assert_eq!(interp1d_slinear(&x, &y, 0.0).unwrap(), 2.0);
        // At the last x: the last interval's right end.
        assert_eq!(interp1d_slinear(&x, &y, 1.0).unwrap(), 4.0);
        assert!(interp1d_slinear(&x, &y, 1.5).is_err());
        assert!(interp1d_slinear(&x, &y, -0.1).is_err());
        // scipy quirk kept: at the last x, when the last two x are equal, the basis vanishes.
        assert_eq!(
            interp1d_slinear(&[0.0, 1.0, 1.0], &[0.0, 1.0, 2.0], 1.0).unwrap(),
            0.0
        );
    }

    #[test]
    fn flip_sum_normalises_rows_and_reports_xnorm() {
        let plain = [3.0f32, 0.0, 0.0, 1.0];
        let flipped = [0.0f32, 4.0, 0.0, 1.0];
        let (e, xnorm) = flip_sum_normalise(&plain, &flipped, 2).unwrap();
        assert_eq!(e, vec![0.6, 0.8, 0.0, 1.0]);
        // Norms 3, 1, 4, 1.
        assert_eq!(xnorm, 9.0 / 4.0);
    }
}
