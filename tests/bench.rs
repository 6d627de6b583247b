//! `swinface bench train` and its PyTorch baseline: our JSON line carries the spec that
//! `scripts/baseline/bench_train.py` builds the same step from, and both run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `swinface bench train` on the demo config with four streams of 2, one timed step.
fn bench_train(extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = ["bench", "train", "--config", "configs/demo.yaml"]
        .into_iter()
        .chain(["--reps", "1", "--warmup", "0"])
        .map(String::from)
        .collect();
    for stream in [
        "recognition_bz",
        "age_gender_bz",
        "CelebA_bz",
        "expression_bz",
    ] {
        args.extend(["--set".to_owned(), format!("{stream}=2")]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    Command::new(env!("CARGO_BIN_EXE_swinface"))
        .args(&args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The JSON line of a run that must have succeeded (its stderr shown when not).
fn json_of_success(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_line(&out.stdout)
}

fn json_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().find(|l| l.starts_with('{'));
    serde_json::from_str(line.unwrap_or_else(|| panic!("no JSON line in {text:?}"))).unwrap()
}

#[test]
fn bench_train_reports_a_spec_that_the_pytorch_baseline_trains() {
    let ours = json_of_success(&bench_train(&[]));
    assert_eq!(ours["impl"], "rust");
    assert_eq!(ours["batch"], 8);
    assert_eq!(ours["batches"], serde_json::json!([2, 2, 2, 2]));
    assert_eq!(ours["model"]["patch_size"], 8);
    assert_eq!(ours["model"]["depths"], serde_json::json!([2, 2]));
    assert_eq!(ours["num_classes"], 200);
    assert_eq!(ours["analysis_loss_weights"].as_array().unwrap().len(), 42);
    let rate = ours["images_per_s"].as_f64().unwrap();
    let step = ours["step_s"].as_f64().unwrap();
    assert!(
        rate > 0.0 && (rate * step - 8.0).abs() < 1e-6,
        "{rate} img/s, {step} s"
    );
    assert!(ours["peak_rss_mib"].as_f64().unwrap() > 50.0);

    let python = root().join(".venv/bin/python");
    let base = Command::new(&python)
        .args(["bench_train.py", "--reps", "1", "--warmup", "0", "--spec"])
        .arg(ours.to_string())
        .current_dir(root().join("scripts/baseline"))
        .output()
        .unwrap();
    let base = json_of_success(&base);
    assert_eq!(base["impl"], "pytorch");
    assert_eq!(base["batch"], 8);
    assert!(base["images_per_s"].as_f64().unwrap() > 0.0);
    assert!(base["peak_rss_mib"].as_f64().unwrap() > 50.0);
}

#[test]
fn bench_train_refuses_a_structure_the_baseline_cannot_build() {
    let out = bench_train(&["--set", "swin.mlp_ratio=2.0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mlp_ratio 4"), "{stderr}");
    assert!(out.stdout.is_empty(), "no result line on failure");
}
