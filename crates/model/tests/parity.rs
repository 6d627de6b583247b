//! Parity with the official PyTorch SwinFace: variable names, shapes and dtypes equal the
//! official state dict, and an eval forward with the formula weights reproduces the
//! recorded official outputs (tests/fixtures/parity/, see its README.md).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use swinface_model::formula::{fill_by_formula, formula_input};
use swinface_model::{
    AttentionKernel, SwinFace, SwinFaceConfig, SwinFaceOutput, BACKBONE_GROUP, HEADS_GROUP,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Max abs difference allowed on every output (README: the official model meets far less).
const TOLERANCE: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/parity")
        .join(name)
}

fn expected_outputs() -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(fixture("expected.safetensors"))
        .expect("read expected.safetensors")
        .into_iter()
        .collect()
}

fn build_filled(cfg: &SwinFaceConfig) -> (VarStore, SwinFace) {
    let vs = VarStore::new(Device::Cpu);
    let model = SwinFace::new(&vs.root(), cfg).expect("build model");
    fill_by_formula(&vs).expect("fill by formula");
    (vs, model)
}

/// The model output that an expected.safetensors entry records.
fn output_for<'a>(out: &'a SwinFaceOutput, key: &str) -> Option<&'a Tensor> {
    match key {
        "backbone.local_features" => Some(&out.local_features),
        "backbone.global_features" => Some(&out.global_features),
        "backbone.embedding" => Some(&out.embedding),
        "fam" => Some(&out.fam),
        "tss" => Some(&out.tss),
        _ => key.strip_prefix("out.").and_then(|name| out.get(name)),
    }
}

/// Compares every recorded output; prints the per-tensor max abs difference.
fn assert_matches_official(cfg: &SwinFaceConfig, label: &str) {
    let expected = expected_outputs();
    let (_vs, model) = build_filled(cfg);
    let input = &expected["input"];
    let out = tch::no_grad(|| model.forward_t(input, false));
    assert_eq!(out.heads.len(), 43);

    let mut worst = (String::new(), 0.0f64);
    let mut compared = 0;
    for (key, want) in &expected {
        if key == "input" {
            continue;
        }
        let got = output_for(&out, key).unwrap_or_else(|| panic!("no model output for `{key}`"));
        assert_eq!(got.size(), want.size(), "shape of {key}");
        let diff = f64::try_from((got - want).abs().max()).unwrap();
        println!("[{label}] {key:<28} max|diff| = {diff:.3e}");
        if diff > worst.1 || diff.is_nan() {
            worst = (key.clone(), diff);
        }
        assert!(
            diff < TOLERANCE,
            "[{label}] {key}: max abs diff {diff:e} >= {TOLERANCE:e}"
        );
        compared += 1;
    }
    // 5 intermediate tensors + 43 outputs.
    assert_eq!(compared, 48, "expected.safetensors entries compared");
    println!(
        "[{label}] worst: {} {:.3e} over {compared} tensors",
        worst.0, worst.1
    );
}

#[test]
fn formula_input_equals_the_recorded_input() {
    let expected = expected_outputs();
    let input = formula_input(2);
    assert_eq!(input.size(), expected["input"].size());
    assert_eq!(input.kind(), Kind::Float);
    let diff = f64::try_from((&input - &expected["input"]).abs().max()).unwrap();
    assert_eq!(
        diff, 0.0,
        "formula_input(2) must equal the recorded input bit for bit"
    );
}

#[test]
fn variables_equal_the_official_state_dict() {
    let tsv =
        std::fs::read_to_string(fixture("official_keys.tsv")).expect("read official_keys.tsv");
    let official: BTreeMap<String, (Vec<i64>, Kind)> = tsv
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "bad tsv line {line:?}");
            let shape = if fields[1] == "scalar" {
                vec![]
            } else {
                fields[1].split('x').map(|d| d.parse().unwrap()).collect()
            };
            let kind = match fields[2] {
                "float32" => Kind::Float,
                "int64" => Kind::Int64,
                other => panic!("unexpected dtype {other}"),
            };
            (fields[0].to_string(), (shape, kind))
        })
        .collect();
    assert_eq!(official.len(), 473);

    let vs = VarStore::new(Device::Cpu);
    let _model = SwinFace::new(&vs.root(), &SwinFaceConfig::default()).unwrap();
    let ours: BTreeMap<String, (Vec<i64>, Kind)> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, (t.size(), t.kind())))
        .collect();

    let missing: Vec<&String> = official.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<&String> = ours.keys().filter(|k| !official.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    for (key, want) in &official {
        assert_eq!(&ours[key], want, "shape/dtype of {key}");
    }

    // Buffers are not trainable; parameters are, in the right optimizer group.
    let variables = vs.variables_.lock().unwrap();
    let name_of: HashMap<usize, &String> = variables
        .named_variables
        .iter()
        .map(|(name, t)| (t.data_ptr() as usize, name))
        .collect();
    let buffer_leaves = [
        "running_mean",
        "running_var",
        "num_batches_tracked",
        "relative_position_index",
        "attn_mask",
    ];
    let is_buffer = |name: &str| buffer_leaves.iter().any(|leaf| name.ends_with(leaf));
    let parameter_count = official.keys().filter(|k| !is_buffer(k)).count();
    assert_eq!(variables.trainable_variables.len(), parameter_count);
    let mut per_group = [0usize; 2];
    for var in &variables.trainable_variables {
        let name = name_of[&(var.tensor.data_ptr() as usize)];
        assert!(!is_buffer(name), "buffer {name} is trainable");
        let want = if name.starts_with("backbone.") {
            BACKBONE_GROUP
        } else {
            HEADS_GROUP
        };
        assert_eq!(var.group, want, "group of {name}");
        per_group[var.group] += 1;
    }
    println!(
        "trainable parameters: backbone group {}, heads group {}",
        per_group[0], per_group[1]
    );
}

#[test]
fn default_config_matches_official_outputs() {
    let cfg = SwinFaceConfig::default();
    // `auto`: SDPA in this no-grad forward.
    assert_eq!(cfg.swin.attention, AttentionKernel::Auto);
    assert_matches_official(&cfg, "auto");
}

#[test]
fn official_math_attention_matches_official_outputs() {
    let mut cfg = SwinFaceConfig::default();
    cfg.swin.attention = AttentionKernel::Math;
    assert_matches_official(&cfg, "math");
}

/// Forward time of batch 8 for both attention kernels: whole model and backbone alone in
/// eval, and a training forward+backward of the backbone (run with `--ignored --nocapture`).
/// Rounds alternate the kernels and each number is the minimum over rounds, so that other
/// processes sharing the CPU distort it less. `SWINFACE_BENCH_THREADS` sets libtorch's threads.
#[test]
#[ignore]
fn bench_forward_batch8_math_vs_sdpa() {
    if let Some(threads) = std::env::var("SWINFACE_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        tch::set_num_threads(threads);
    }
    let input = formula_input(8);
    let kernels = [AttentionKernel::Math, AttentionKernel::Sdpa];
    let models: Vec<(VarStore, SwinFace)> = kernels
        .iter()
        .map(|&kernel| {
            let mut cfg = SwinFaceConfig::default();
            cfg.swin.attention = kernel;
            build_filled(&cfg)
        })
        .collect();
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64()
    };
    // [kernel][eval model, eval backbone, train backbone]
    let mut best = [[f64::INFINITY; 3]; 2];
    for round in 0..6 {
        for (k, (_vs, model)) in models.iter().enumerate() {
            let times = [
                time(&|| {
                    let _ = tch::no_grad(|| model.forward_t(&input, false));
                }),
                time(&|| {
                    let _ = tch::no_grad(|| model.backbone().forward_t(&input, false));
                }),
                time(&|| {
                    let out = model.backbone().forward_t(&input, true);
                    (out.embedding.sum(Kind::Float) + out.global_features.sum(Kind::Float))
                        .backward();
                }),
            ];
            // Round 0 is the warm-up.
            if round > 0 {
                for (b, t) in best[k].iter_mut().zip(times) {
                    *b = b.min(t);
                }
            }
        }
    }
    for (kernel, [model, backbone, train]) in kernels.iter().zip(best) {
        println!(
            "{kernel:?}: eval model {model:.3} s / batch 8 ({:.1} img/s), eval backbone {backbone:.3} s, \
             train backbone forward+backward {train:.3} s",
            8.0 / model
        );
    }
}
