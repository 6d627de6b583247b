//! numpy's floating-point reductions, operation for operation, so that metrics computed here
//! round exactly as the official (numpy) code rounds them.
//!
//! - `np.sum` / `add.reduce` over a contiguous axis is a pairwise sum: blocks of at most 128
//!   elements are summed with eight interleaved accumulators, larger runs are split in two at
//!   a multiple of 8 (numpy's `pairwise_sum`).
//! - A reduction over a strided axis (`np.mean(a, 0)` of a C-ordered matrix) adds the rows one
//!   after another.
//! - `np.mean` is that sum divided by the count; `np.std` (population) is
//!   `sqrt(sum((x - mean)^2) / n)` with both sums pairwise.

/// numpy's block size below which the eight-accumulator loop runs unsplit.
const PAIRWISE_BLOCK: usize = 128;

/// `np.sum(a)` of a contiguous f64 array.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        // numpy starts from -0.0 so that a sum of -0.0 stays -0.0.
        return a.iter().fold(-0.0, |acc, &v| acc + v);
    }
    if n <= PAIRWISE_BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}

/// `np.mean(a)`; NaN for an empty array, as numpy.
pub fn mean(a: &[f64]) -> f64 {
    pairwise_sum(a) / a.len() as f64
}

/// `np.std(a)` (population, `ddof=0`).
pub fn std(a: &[f64]) -> f64 {
    let m = mean(a);
    let squares: Vec<f64> = a
        .iter()
        .map(|&x| {
            let d = x - m;
            d * d
        })
        .collect();
    (pairwise_sum(&squares) / a.len() as f64).sqrt()
}

/// `np.mean(rows, 0)` of a C-ordered matrix: the rows added in order, then divided.
pub fn mean_of_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let Some((first, rest)) = rows.split_first() else {
        return Vec::new();
    };
    let mut sum = first.clone();
    for row in rest {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    let n = rows.len() as f64;
    sum.iter().map(|s| s / n).collect()
}

/// `np.arange(0, stop, step)` for a positive step: `i * step` for `i < ceil(stop / step)`.
pub fn arange(stop: f64, step: f64) -> Vec<f64> {
    let len = (stop / step).ceil().max(0.0) as usize;
    (0..len).map(|i| i as f64 * step).collect()
}

/// Python's `sum(list)`: left to right from 0.
pub fn python_sum(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |acc, &v| acc + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_orders_as_numpy() {
        // Hand-derived: for 9 elements the eight accumulators take a[0..8], the ninth is added
        // after the tree ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)).
        let a = [1e16, 1.0, -1e16, 1.0, 3.0, 5.0, 7.0, 11.0, 0.5];
        let tree = ((1e16 + 1.0) + (-1e16 + 1.0)) + ((3.0 + 5.0) + (7.0 + 11.0));
        assert_eq!(pairwise_sum(&a), tree + 0.5);
        // Sequential summation would give a different value here.
        let sequential: f64 = a.iter().sum();
        assert_ne!(pairwise_sum(&a), sequential);
        // Under 8 elements: sequential from -0.0.
        assert_eq!(pairwise_sum(&[1e16, 1.0, -1e16]), (1e16 + 1.0) - 1e16);
        assert!(pairwise_sum(&[]).is_sign_negative());
        // Over 128: split at n/2 rounded down to a multiple of 8.
        let big: Vec<f64> = (0..300).map(|i| 1.0 / f64::from(i + 1)).collect();
        assert_eq!(
            pairwise_sum(&big),
            pairwise_sum(&big[..144]) + pairwise_sum(&big[144..])
        );
    }

    #[test]
    fn mean_std_and_arange() {
        let a = [0.9, 0.95, 1.0, 0.85];
        assert!((mean(&a) - 0.925).abs() < 1e-15);
        // Population std: sqrt(mean of squared deviations) = sqrt(0.003125).
        assert!((std(&a) - 0.003125f64.sqrt()).abs() < 1e-15);
        assert!(mean(&[]).is_nan());
        assert_eq!(arange(4.0, 0.01).len(), 400);
        assert_eq!(arange(4.0, 0.001).len(), 4000);
        assert_eq!(arange(4.0, 0.01)[3], 3.0 * 0.01);
        let rows = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 9.0]];
        assert_eq!(mean_of_rows(&rows), vec![3.0, 5.0]);
    }
}
