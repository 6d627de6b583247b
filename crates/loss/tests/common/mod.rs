//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Kind, Tensor};

/// The project's PyTorch virtualenv interpreter.
pub fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// Runs `script` with the venv's python, passing `dir` as its only argument.
pub fn run_python(script: &str, dir: &Path) {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .expect("running the venv python");
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// max |a − b| / max(|b|, floor) over elements.
pub fn max_rel_diff(a: &Tensor, b: &Tensor, floor: f64) -> f64 {
    assert_eq!(a.size(), b.size());
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    ((&a - &b).abs() / b.abs().clamp_min(floor))
        .max()
        .double_value(&[])
}

/// Deterministic pseudo-random tensor (independent of torch's global generator).
pub fn seeded(shape: &[i64], seed: u64, kind: Kind) -> Tensor {
    let n: i64 = shape.iter().product();
    let values: Vec<f64> = (0..n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E3779B97F4A7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64) - 1.0
        })
        .collect();
    Tensor::from_slice(&values).view(shape).to_kind(kind)
}
