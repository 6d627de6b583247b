//! Measures the per-tensor AdamW step against the flat-buffer one (and checks they agree). Run with
//! `cargo test -p swinface-loss --test optimizer_speed -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::seeded;
use swinface_loss::{AdamW, AdamWHyper, Optimizer, ParamGroup};
use tch::{Kind, Tensor};

/// Swin-T-like tensor count and size mix, scaled down to ~7M parameters: many small vectors
/// (norms, biases), relative-position tables, and large linear weights.
fn shapes() -> Vec<Vec<i64>> {
    let mut shapes = Vec::new();
    for (dim, blocks) in [(96i64, 2), (192, 2), (384, 6), (768, 2)] {
        for _ in 0..blocks {
            let hidden = dim * 4 / 2; // halved to keep the test quick on two cores
            shapes.extend([
                vec![dim],
                vec![dim],
                vec![3 * dim, dim / 2],
                vec![3 * dim],
                vec![169, dim / 32],
                vec![dim, dim / 2],
                vec![dim],
                vec![dim],
                vec![dim],
                vec![hidden, dim / 2],
                vec![hidden],
                vec![dim, hidden / 2],
                vec![dim],
            ]);
        }
    }
    shapes
}

#[test]
#[ignore]
fn per_tensor_versus_flat_adamw() {
    let threads = tch::get_num_threads();
    measure();
    // Without OpenMP contention from other processes.
    tch::set_num_threads(1);
    measure();
    tch::set_num_threads(threads);
}

fn measure() {
    let shapes = shapes();
    let params: Vec<(String, Tensor)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("p{i}"),
                seeded(s, i as u64, Kind::Float).set_requires_grad(true),
            )
        })
        .collect();
    let numel: i64 = shapes.iter().map(|s| s.iter().product::<i64>()).sum();
    for (_, p) in &params {
        (p * 1.0).sum(Kind::Float).backward();
    }
    let mut opt = AdamW::new(
        vec![ParamGroup::new(
            "all",
            params
                .iter()
                .map(|(n, p)| (n.clone(), p.shallow_clone()))
                .collect(),
            1.0,
            0.05,
        )],
        AdamWHyper::default(),
    )
    .unwrap();
    let steps = 20;
    opt.step(&[1e-3]).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        opt.step(&[1e-3]).unwrap();
    }
    let per_tensor = start.elapsed().as_secs_f64() / steps as f64;

    // The same parameters moved into flat buffers.
    let flat_params: Vec<(String, Tensor)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("p{i}"),
                seeded(s, i as u64, Kind::Float).set_requires_grad(true),
            )
        })
        .collect();
    for (_, p) in &flat_params {
        (p * 1.0).sum(Kind::Float).backward();
    }
    let mut flat_opt = AdamW::with_flat_buffers(
        vec![ParamGroup::new(
            "all",
            flat_params
                .iter()
                .map(|(n, p)| (n.clone(), p.shallow_clone()))
                .collect(),
            1.0,
            0.05,
        )],
        AdamWHyper::default(),
    )
    .unwrap();
    flat_opt.step(&[1e-3]).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        flat_opt.step(&[1e-3]).unwrap();
    }
    let flat_time = start.elapsed().as_secs_f64() / steps as f64;
    for ((_, a), (_, b)) in params.iter().zip(&flat_params) {
        assert_eq!(
            common::max_abs_diff(a, b),
            0.0,
            "flat and per-tensor updates differ"
        );
    }
    println!(
        "AdamW step over {} tensors, {numel} parameters, {} threads: per-tensor {:.2} ms, flat buffers {:.2} ms",
        shapes.len(),
        tch::get_num_threads(),
        per_tensor * 1e3,
        flat_time * 1e3
    );
}
