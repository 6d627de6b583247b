//! Deterministic weights from a formula of each variable's full name, the recipe of
//! `tests/fixtures/parity/README.md`: the parity fixtures were produced by the official
//! PyTorch model filled this way, so no weight file is needed to check parity.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::ModelError;

/// Buffers the model computes itself; the formula leaves them alone.
pub const SKIPPED_LEAVES: [&str; 3] = [
    "num_batches_tracked",
    "relative_position_index",
    "attn_mask",
];

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// FNV-1a 64-bit hash of the key's UTF-8 bytes.
pub fn fnv1a64(key: &str) -> u64 {
    key.bytes()
        .fold(FNV_OFFSET, |h, b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

/// `n` values in [-1, 1): splitmix64's finaliser over `seed + (i+1) * golden`.
pub fn uniform_pm1(key: &str, n: usize) -> Vec<f64> {
    let seed = fnv1a64(key);
    (1..=n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(GOLDEN));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / 9_007_199_254_740_992.0;
            2.0 * u - 1.0
        })
        .collect()
}

/// The formula value of variable `key` with `shape`, as f32 (computed in f64), or an
/// error if no rule covers it.
pub fn formula_values(key: &str, shape: &[i64]) -> Result<Vec<f32>, ModelError> {
    let n: i64 = shape.iter().product();
    let base = uniform_pm1(key, n.max(0) as usize);
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let map = |f: &dyn Fn(f64) -> f64| base.iter().map(|&b| f(b) as f32).collect();
    let values = match leaf {
        "running_var" => map(&|b| 1.0 + 0.5 * b.abs()),
        "running_mean" => map(&|b| 0.1 * b),
        "relative_position_bias_table" => map(&|b| 0.5 * b),
        "weight" if shape.len() == 1 => map(&|b| 1.0 + 0.1 * b),
        "bias" if shape.len() == 1 => map(&|b| 0.1 * b),
        _ if shape.len() >= 2 && shape[0] > 0 => {
            let fan_in = (n / shape[0]) as f64;
            let scale = (3.0 / fan_in).sqrt();
            map(&|b| b * scale)
        }
        _ => {
            return Err(ModelError::NoFormula {
                name: key.to_string(),
                shape: shape.to_vec(),
            })
        }
    };
    Ok(values)
}

/// Overwrites every variable of `vs` (but the [`SKIPPED_LEAVES`] buffers) with its formula
/// value. Variable names must be the official full keys (`backbone.…`, `fam.…`).
pub fn fill_by_formula(vs: &VarStore) -> Result<(), ModelError> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut tensor) in variables {
        let leaf = name.rsplit('.').next().unwrap_or(&name);
        if SKIPPED_LEAVES.contains(&leaf) {
            continue;
        }
        let shape = tensor.size();
        let values = formula_values(&name, &shape)?;
        let source = Tensor::from_slice(&values).view(shape.as_slice());
        tch::no_grad(|| tensor.f_copy_(&source))?;
    }
    Ok(())
}

/// The parity input images: the formula with key `input`, used directly as normalised
/// pixels. Returns [n, 3, 112, 112] float on the CPU.
pub fn formula_input(n: i64) -> Tensor {
    let shape = [n.max(0), 3, 112, 112];
    let values: Vec<f32> = uniform_pm1("input", shape.iter().product::<i64>() as usize)
        .iter()
        .map(|&v| v as f32)
        .collect();
    Tensor::from_slice(&values).view(shape).to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_generator_match_reference_values() {
        // FNV-1a test vectors.
        assert_eq!(fnv1a64(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64("foobar"), 0x85944171f73967e8);
        // Values from formula.py (numpy) for key "input".
        let v = uniform_pm1("input", 3);
        let reference = [-0.80436331, 0.30472086, -0.59275145];
        for (a, b) in v.iter().zip(reference) {
            assert!((a - b).abs() < 1e-8, "{v:?}");
        }
    }

    #[test]
    fn rules_by_leaf_and_shape() {
        let w = formula_values("x.weight", &[4, 2, 3, 3]).unwrap();
        let bound = (3.0f64 / 18.0).sqrt() as f32;
        assert!(w.iter().all(|v| v.abs() <= bound));
        let var = formula_values("bn.running_var", &[8]).unwrap();
        assert!(var.iter().all(|&v| (1.0..=1.5).contains(&v)));
        let ln = formula_values("ln.weight", &[8]).unwrap();
        assert!(ln.iter().all(|&v| (0.9..=1.1).contains(&v)));
        assert!(formula_values("x.weight", &[]).is_err());
    }
}
