//! AdamW, SGD and gradient clipping against the venv's PyTorch (CPU, float32).

mod common;

use common::{max_abs_diff, max_rel_diff, run_python, seeded};
use swinface_loss::{clip_grad_norm, AdamW, AdamWHyper, Optimizer, ParamGroup, Sgd, SgdHyper};
use tch::{Kind, Tensor};

const STEPS: usize = 20;
/// Shapes with vector bodies and scalar tails, a 1-D and a 3-D tensor.
const SHAPES: [&[i64]; 4] = [&[37, 23], &[129], &[5, 7, 3], &[64, 16]];

fn params() -> Vec<(String, Tensor)> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let p = seeded(shape, 100 + i as u64, Kind::Float).set_requires_grad(true);
            (format!("p{i}"), p)
        })
        .collect()
}

fn grad(step: usize, i: usize) -> Tensor {
    // Gradients of varying scale, some tiny, so that eps matters.
    let scale = [1.0, 1e-3, 10.0, 1e-6][i] * (1.0 + step as f64 / 10.0);
    seeded(SHAPES[i], 1000 * step as u64 + i as u64, Kind::Float) * scale
}

/// Group lrs per step: a warmup-like ramp so that the lr changes every step.
fn lrs(step: usize) -> [f64; 2] {
    let ramp = (step + 1) as f64 / STEPS as f64;
    [1e-3 * ramp, 1e-2 * ramp]
}

fn groups(params: &[(String, Tensor)], weight_decay: [f64; 2]) -> Vec<ParamGroup> {
    let take = |range: std::ops::Range<usize>| -> Vec<(String, Tensor)> {
        params[range]
            .iter()
            .map(|(n, p)| (n.clone(), p.shallow_clone()))
            .collect()
    };
    vec![
        ParamGroup::new("backbone", take(0..2), 0.1, weight_decay[0]),
        ParamGroup::new("heads", take(2..4), 1.0, weight_decay[1]),
    ]
}

/// Writes initial parameters and all gradients for the python side.
fn write_inputs(dir: &std::path::Path, params: &[(String, Tensor)]) {
    let mut named: Vec<(String, Tensor)> = params
        .iter()
        .map(|(n, p)| (n.clone(), p.detach().copy()))
        .collect();
    for step in 0..STEPS {
        for i in 0..SHAPES.len() {
            named.push((format!("grad.{step}.{i}"), grad(step, i)));
        }
        let [a, b] = lrs(step);
        named.push((format!("lr.{step}"), Tensor::from_slice(&[a, b])));
    }
    Tensor::write_safetensors(&named, dir.join("inputs.safetensors")).unwrap();
}

/// The python side: same groups, same gradients, torch's optimizer; writes final params.
fn python_optimizer(optimizer: &str) -> String {
    format!(
        r#"
import sys, torch
from safetensors.torch import load_file, save_file
d = sys.argv[1]
x = load_file(d + "/inputs.safetensors")
n = {n}
ps = [x[f"p{{i}}"].clone().requires_grad_(True) for i in range(n)]
groups = [dict(params=ps[0:2], lr=0.0, weight_decay=WD0), dict(params=ps[2:4], lr=0.0, weight_decay=WD1)]
opt = {optimizer}
for step in range({steps}):
    lr = x[f"lr.{{step}}"]
    for g, l in zip(opt.param_groups, lr.tolist()):
        g["lr"] = l
    for i, p in enumerate(ps):
        p.grad = x[f"grad.{{step}}.{{i}}"].clone()
    opt.step()
save_file({{f"p{{i}}": p.detach() for i, p in enumerate(ps)}}, d + "/torch.safetensors")
"#,
        n = SHAPES.len(),
        steps = STEPS,
        optimizer = optimizer
    )
}

fn run_rust(optimizer: &mut dyn Optimizer, params: &[(String, Tensor)]) {
    for step in 0..STEPS {
        for (i, (_, p)) in params.iter().enumerate() {
            let mut g = p.grad();
            if g.defined() {
                g.copy_(&grad(step, i));
            } else {
                // First step: create the gradient through autograd.
                (p * grad(step, i)).sum(Kind::Float).backward();
            }
        }
        optimizer.step(&lrs(step)).unwrap();
    }
}

fn compare(dir: &std::path::Path, params: &[(String, Tensor)], what: &str, rel_tolerance: f64) {
    let torch: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("torch.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let mut worst_abs: f64 = 0.0;
    let mut worst_rel: f64 = 0.0;
    let mut identical = 0;
    for (name, p) in params {
        let reference = &torch[name];
        let abs = max_abs_diff(p, reference);
        worst_abs = worst_abs.max(abs);
        worst_rel = worst_rel.max(max_rel_diff(p, reference, 1e-6));
        if abs == 0.0 {
            identical += 1;
        }
    }
    println!(
        "{what} after {STEPS} steps: {identical}/{} tensors bit-identical, max abs diff {worst_abs:e}, max rel diff {worst_rel:e}",
        params.len()
    );
    assert!(
        worst_rel <= rel_tolerance,
        "{what}: relative difference {worst_rel}"
    );
}

#[test]
fn adamw_matches_torch() {
    for flat in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let params = params();
        write_inputs(dir.path(), &params);
        let groups = groups(&params, [0.05, 0.05]);
        let mut opt = if flat {
            AdamW::with_flat_buffers(groups, AdamWHyper::default()).unwrap()
        } else {
            AdamW::new(groups, AdamWHyper::default()).unwrap()
        };
        run_rust(&mut opt, &params);
        let script = python_optimizer("torch.optim.AdamW(groups, foreach=False)")
            .replace("WD0", "0.05")
            .replace("WD1", "0.05");
        run_python(&script, dir.path());
        compare(
            dir.path(),
            &params,
            if flat {
                "AdamW (flat buffers)"
            } else {
                "AdamW"
            },
            1e-7,
        );
    }
}

#[test]
fn sgd_matches_torch() {
    for flat in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let params = params();
        write_inputs(dir.path(), &params);
        let groups = groups(&params, [5e-4, 0.0]);
        let mut opt = if flat {
            Sgd::with_flat_buffers(groups, SgdHyper::default()).unwrap()
        } else {
            Sgd::new(groups, SgdHyper::default()).unwrap()
        };
        run_rust(&mut opt, &params);
        let script =
            python_optimizer("torch.optim.SGD(groups, lr=0.1, momentum=0.9, foreach=False)")
                .replace("WD0", "5e-4")
                .replace("WD1", "0.0");
        run_python(&script, dir.path());
        compare(
            dir.path(),
            &params,
            if flat { "SGD (flat buffers)" } else { "SGD" },
            1e-7,
        );
    }
}

#[test]
fn clipping_matches_torch() {
    let dir = tempfile::tempdir().unwrap();
    let mut named = Vec::new();
    // Case 0 exceeds the max norm (clipped), case 1 stays below it (coefficient clamped to 1).
    for (case, scale) in [(0, 3.0), (1, 0.01)] {
        for (i, shape) in SHAPES.iter().enumerate() {
            named.push((
                format!("g.{case}.{i}"),
                seeded(shape, 7 + (case * 10 + i) as u64, Kind::Float) * scale,
            ));
        }
    }
    Tensor::write_safetensors(&named, dir.path().join("inputs.safetensors")).unwrap();
    let script = format!(
        r#"
import sys, torch
from safetensors.torch import load_file, save_file
d = sys.argv[1]
x = load_file(d + "/inputs.safetensors")
out = {{}}
for case in range(2):
    ps = []
    for i in range({n}):
        p = torch.zeros_like(x[f"g.{{case}}.{{i}}"], requires_grad=True)
        p.grad = x[f"g.{{case}}.{{i}}"].clone()
        ps.append(p)
    total = torch.nn.utils.clip_grad_norm_(ps, 5.0)
    out[f"total.{{case}}"] = total.reshape(1)
    for i, p in enumerate(ps):
        out[f"g.{{case}}.{{i}}"] = p.grad
save_file(out, d + "/torch.safetensors")
"#,
        n = SHAPES.len()
    );
    run_python(&script, dir.path());
    let torch: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("torch.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for case in 0..2 {
        let params: Vec<Tensor> = SHAPES
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let p = named[case * SHAPES.len() + i]
                    .1
                    .zeros_like()
                    .set_requires_grad(true);
                (&p * &named[case * SHAPES.len() + i].1)
                    .sum(Kind::Float)
                    .backward();
                p
            })
            .collect();
        let total = clip_grad_norm(&params, 5.0).unwrap().unwrap();
        let total_diff = max_abs_diff(&total.view([1]), &torch[&format!("total.{case}")]);
        let mut worst: f64 = 0.0;
        for (i, p) in params.iter().enumerate() {
            worst = worst.max(max_abs_diff(&p.grad(), &torch[&format!("g.{case}.{i}")]));
        }
        println!(
            "clip case {case}: total norm {} (diff {total_diff:e}), max grad diff {worst:e}",
            total.double_value(&[])
        );
        assert!(total_diff <= 1e-6 * total.double_value(&[]), "{total_diff}");
        assert!(worst <= 1e-7, "{worst}");
    }
}
