//! End-to-end tests of `swinface train` on small synthetic data: exact resume, TensorBoard
//! files that TensorBoard itself reads, learning, the official-recipe configs' first steps,
//! and the bad situations (non-finite loss, too little data, unwritable output, bad keys).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use swinface_model::checkpoint::read_native;

const BIN: &str = env!("CARGO_BIN_EXE_swinface");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

mod common;
use common::{losses, text};

/// The small synthetic dataset, written once per test binary.
fn data_dir() -> &'static Path {
    common::small_data("train_e2e_data")
}

/// A small model (the demo's shape) on the small data, four images per stream, with
/// `extra` (YAML) merged on top.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    common::write_tiny_config(dir, data_dir(), 4, &["val_targets: [lfw]", extra])
}

fn swinface(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run swinface")
}

fn train(config: &Path, more: &[&str]) -> Output {
    let mut args = vec!["train", config.to_str().unwrap()];
    args.extend_from_slice(more);
    let out = swinface(&args);
    assert!(
        out.status.success(),
        "swinface train failed:\n{}",
        text(&out)
    );
    out
}

fn venv_python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}

#[test]
fn resume_continues_bit_identically() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_resume");
    let _ = std::fs::remove_dir_all(&root);
    // Dropout, drop path, Partial FC sampling and the official RandAugment all draw random
    // numbers: all must continue exactly.
    let whole = write_config(&root.join("whole"), "");
    let sets = [
        "total_step=9",
        "warmup_step=2",
        "save_verbose=4",
        "frequent=1",
        "verbose=0",
        "sample_rate=0.5",
        "tss_drop_rate=0.5",
        "seed=11",
        "swin.drop_path_rate=0.2",
    ];
    let mut args: Vec<&str> = Vec::new();
    for s in &sets {
        args.push("--set");
        args.push(s);
    }
    train(&whole, &args);
    let whole_out = root.join("whole/out");

    let parts = write_config(&root.join("parts"), "");
    let mut first = args.clone();
    first.extend_from_slice(&["--stop-after", "6"]);
    let out = train(&parts, &first);
    assert!(
        text(&out).contains("--stop-after reached"),
        "{}",
        text(&out)
    );
    let parts_out = root.join("parts/out");
    assert!(parts_out.join("checkpoints/step_5").is_dir());
    // A second start without --resume refuses to overwrite.
    let refused = swinface(&["train", parts.to_str().unwrap(), "--set", "total_step=9"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("--resume auto"),
        "{}",
        text(&refused)
    );
    let mut second = args.clone();
    second.extend_from_slice(&["--resume", "auto"]);
    let out = train(&parts, &second);
    assert!(text(&out).contains("resumed from"), "{}", text(&out));

    let (a, b) = (losses(&whole_out), losses(&parts_out));
    assert_eq!(a.len(), 9);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (step, va) in &a {
        let vb = &b[step];
        for key in [
            "total",
            "recognition",
            "analysis",
            "learning_rates",
            "grad_norm",
        ] {
            assert_eq!(va[key], vb[key], "step {step}: {key} differs after resume");
        }
    }
    // The losses moved (the test would pass trivially on a constant).
    assert_ne!(a[&0]["total"], a[&8]["total"]);
    assert_same_tensors(
        &whole_out.join("checkpoints/step_8/model.safetensors"),
        &parts_out.join("checkpoints/step_8/model.safetensors"),
    );
    // keep_checkpoints (3 by default) bounds what is kept.
    let kept: Vec<_> = std::fs::read_dir(parts_out.join("checkpoints"))
        .unwrap()
        .collect();
    assert!(kept.len() <= 3, "{} checkpoints kept", kept.len());

    // A checkpoint's model loads in `swinface eval` as it is.
    let eval_out = root.join("eval");
    let out = swinface(&[
        "eval",
        "--checkpoint",
        whole_out
            .join("checkpoints/step_8/model.safetensors")
            .to_str()
            .unwrap(),
        "--config",
        whole_out.join("config.yaml").to_str().unwrap(),
        "--only",
        "raf",
        "--out",
        eval_out.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn bf16_on_the_cpu_trains_differently_from_fp32_and_resumes_bit_identically() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_bf16");
    let _ = std::fs::remove_dir_all(&root);
    let args = set_args(&[
        "total_step=6",
        "warmup_step=1",
        "save_verbose=3",
        "frequent=1",
        "verbose=0",
        "seed=5",
    ]);
    let whole = write_config(&root.join("whole"), "amp_mode: bf16");
    let out = train(&whole, &args);
    let log = text(&out);
    assert!(
        log.contains("bf16 autocast on the CPU") || log.contains("without bf16 instructions"),
        "{log}"
    );
    let fp32 = write_config(&root.join("fp32"), "amp_mode: fp32");
    train(&fp32, &args);

    let parts = write_config(&root.join("parts"), "amp_mode: bf16");
    let mut first = args.clone();
    first.extend_from_slice(&["--stop-after", "3"]);
    train(&parts, &first);
    let mut second = args.clone();
    second.extend_from_slice(&["--resume", "auto"]);
    train(&parts, &second);

    let whole = losses(&root.join("whole/out"));
    let parts = losses(&root.join("parts/out"));
    let fp32 = losses(&root.join("fp32/out"));
    assert_eq!(whole.len(), 6);
    for (step, value) in &whole {
        let total = value["total"].as_f64().unwrap();
        assert!(total.is_finite(), "step {step}: loss {total}");
        assert_eq!(
            value["total"], parts[step]["total"],
            "step {step} after resume"
        );
        assert_eq!(
            value["analysis"], parts[step]["analysis"],
            "step {step} after resume"
        );
    }
    // The same weights and batches: bf16 matmuls round differently from the first step.
    assert_ne!(
        whole[&0]["total"], fp32[&0]["total"],
        "bf16 changed nothing"
    );
    let (a, b) = (
        whole[&0]["total"].as_f64().unwrap(),
        fp32[&0]["total"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 0.05 * b.abs(), "bf16 {a} against fp32 {b}");
}

#[test]
fn tensorboard_reads_the_event_files_and_training_learns() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_learns");
    let _ = std::fs::remove_dir_all(&root);
    let config = write_config(
        &root,
        "total_step: 60
warmup_step: 5
lr: 0.02
backbone_lr_scale: 1.0
tss_drop_rate: 0.0
sample_rate: 1.0
verbose: 30
save_verbose: 30
frequent: 5
initial_eval: true
init_age_bias: true
analysis_augment:
  rand_augment: null
  random_erasing: null
",
    );
    let out = train(&config, &[]);
    let stdout = text(&out);
    assert!(
        stdout.contains("before training:") && stdout.contains("after training:"),
        "{stdout}"
    );
    let output = root.join("out");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(output.join("summary.json")).unwrap())
            .unwrap();
    let before = &summary["before"];
    let after = &summary["after"];
    // Learning happened: training-set losses fell and held-out numbers improved.
    let l = losses(&output);
    let mean = |steps: std::ops::Range<u64>| {
        steps
            .clone()
            .map(|s| l[&s]["total"].as_f64().unwrap())
            .sum::<f64>()
            / steps.count() as f64
    };
    let (early, late) = (mean(0..5), mean(55..60));
    assert!(late < 0.7 * early, "loss {early} -> {late}");
    let attr = |s: &Value| s["attribute_mean_accuracy"].as_f64().unwrap();
    let expr = |s: &Value| s["expression_accuracy"].as_f64().unwrap();
    assert!(
        attr(after) > attr(before) + 0.08,
        "attributes {} -> {}",
        attr(before),
        attr(after)
    );
    assert!(
        expr(after) > expr(before) + 0.1,
        "expression {} -> {}",
        expr(before),
        expr(after)
    );
    assert!(output.join("best.safetensors").is_file());
    assert!(std::fs::read_to_string(output.join("train.log"))
        .unwrap()
        .contains("eval step 29"));

    // TensorBoard's own reader sees the scalars, the evaluation metrics and the image.
    let script = r#"
import sys, json
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'images': 0})
acc.Reload()
tags = acc.Tags()
out = {t: [e.value for e in acc.Scalars(t)] for t in tags['scalars']}
out['__images__'] = {t: [(e.width, e.height, len(e.encoded_image_string)) for e in acc.Images(t)] for t in tags['images']}
print(json.dumps(out))
"#;
    let py = Command::new(venv_python())
        .args(["-c", script, output.join("tensorboard").to_str().unwrap()])
        .stderr(Stdio::inherit())
        .output()
        .expect("python");
    assert!(py.status.success());
    let tb: Value = serde_json::from_slice(&py.stdout).unwrap();
    let series = |tag: &str| {
        tb[tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag} in {tb}"))
            .clone()
    };
    assert_eq!(series("loss/total").len(), 12, "every 5th step is logged");
    assert_eq!(series("loss/Expression").len(), 12);
    assert_eq!(series("loss/Wearing Necktie").len(), 12);
    assert_eq!(series("lr/backbone").len(), 12);
    assert_eq!(series("lr/partial_fc").len(), 12);
    assert!(series("train/images_per_second")
        .iter()
        .all(|v| v.as_f64().unwrap() > 0.0));
    assert_eq!(series("eval/raf_top1").len(), 2);
    assert_eq!(series("eval/lfw_accuracy").len(), 2);
    assert_eq!(series("eval/celeba/Smiling").len(), 2);
    let first_loss = series("loss/total")[0].as_f64().unwrap();
    let logged = l[&4]["total"].as_f64().unwrap();
    assert!(
        (first_loss - logged).abs() <= 1e-4 * logged.abs(),
        "{first_loss} vs {logged}"
    );
    let images = &tb["__images__"]["eval/raf_confusion"];
    assert_eq!(images.as_array().map(Vec::len), Some(2), "{tb}");
    assert!(images[0][0].as_u64().unwrap() > 100);
}

#[test]
fn official_recipe_configs_run_their_first_steps() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_official");
    let _ = std::fs::remove_dir_all(&root);
    let data = data_dir();
    let at = |rel: &str| format!("{}", data.join(rel).display());
    // The recognition pretraining stage (arcface_torch) on the full model, then the
    // multi-task stage initialised from its backbone.
    let pre_out = root.join("pretrain");
    let pretrain = repo_root().join("configs/pretrain.yaml");
    let out = train(
        &pretrain,
        &[
            "--output",
            pre_out.to_str().unwrap(),
            "--set",
            &format!("rec={}", at("faces_emore")),
            "--set",
            "num_classes=24",
            "--set",
            "num_image=144",
            "--set",
            "recognition_bz=4",
            "--set",
            "val_targets=[]",
            "--set",
            "device=cpu",
            "--set",
            "frequent=1",
            "--stop-after",
            "2",
        ],
    );
    assert!(text(&out).contains("recognition stage"), "{}", text(&out));
    let backbone = pre_out.join("checkpoints/step_1/model.safetensors");
    assert!(backbone.is_file());

    let multi_out = root.join("multitask");
    let official = repo_root().join("configs/swinface.yaml");
    let mut sets = vec![
        format!("rec={}", at("faces_emore")),
        "num_classes=24".into(),
        "num_image=144".into(),
        format!("age_gender_data_path={}", at("AIO_train")),
        format!("CelebA_train_data={}", at("CelebA/data")),
        format!("CelebA_train_label={}", at("AIO_train/CelebA/label.txt")),
        format!("AffectNet_data={}", at("AffectNet/data")),
        format!("AffectNet_label={}", at("AffectNet/label.txt")),
        format!("RAF_data={}", at("RAF/basic")),
        format!("RAF_label={}", at("RAF/basic/list_patition_label.txt")),
        "CelebA_test_data=null".into(),
        "CelebA_test_label=null".into(),
        "CLAP_test_data=null".into(),
        "CLAP_test_label=null".into(),
        "FGnet_data=null".into(),
        "FGnet_label=null".into(),
        "val_targets=[]".into(),
        "recognition_bz=2".into(),
        "age_gender_bz=2".into(),
        "CelebA_bz=2".into(),
        "expression_bz=2".into(),
        format!("init_model={}", backbone.display()),
        "device=cpu".into(),
        "frequent=1".into(),
    ];
    let mut args: Vec<String> = vec!["--output".into(), multi_out.display().to_string()];
    for s in sets.drain(..) {
        args.push("--set".into());
        args.push(s);
    }
    args.extend(["--stop-after".into(), "2".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = train(&official, &refs);
    let t = text(&out);
    assert!(
        t.contains("multitask stage") && t.contains("backbone initialised from"),
        "{t}"
    );
    assert!(
        t.contains("0 missing"),
        "every backbone tensor comes from the pretrained model: {t}"
    );
    let l = losses(&multi_out);
    assert_eq!(l.len(), 2);
    assert!(l.values().all(|v| v["total"].as_f64().unwrap().is_finite()));
    // The official recipe's resolved numbers.
    let resolved = std::fs::read_to_string(multi_out.join("config.yaml")).unwrap();
    for line in [
        "lr: 0.0005",
        "weight_decay: 0.05",
        "warmup_step: 8000",
        "total_step: 80000",
        "sample_rate: 0.3",
        "fp16: true",
        "seed: 2048",
        "verbose: 2000",
        "save_verbose: 4000",
        "backbone_lr_scale: 0.1",
    ] {
        assert!(
            resolved.lines().any(|l| l.trim() == line),
            "resolved config lacks `{line}`:\n{resolved}"
        );
    }
}

#[test]
fn bad_situations_are_reported_before_or_during_training() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_bad");
    let _ = std::fs::remove_dir_all(&root);
    let config = write_config(
        &root,
        "total_step: 20\nverbose: 0\nfrequent: 1\nmax_nonfinite_steps: 2\n",
    );
    let run = |more: &[&str]| {
        let mut args = vec!["train", config.to_str().unwrap()];
        args.extend_from_slice(more);
        swinface(&args)
    };
    // Each bad run fails, and its output holds every one of `needles`; returns the output.
    let fails_with = |more: &[&str], needles: &[&str]| {
        let out = run(more);
        let t = text(&out);
        assert!(!out.status.success(), "{more:?} succeeded:\n{t}");
        for needle in needles {
            assert!(t.contains(needle), "{more:?}: no `{needle}` in\n{t}");
        }
        t
    };
    // An exploding learning rate: non-finite losses, skipped steps, then a clear stop.
    fails_with(
        &["--set", "lr=1e30", "--set", "warmup_step=0"],
        &["non-finite loss", "2 steps in a row"],
    );
    // Too little data for one batch: reported before training, naming the stream.
    let t = fails_with(
        &["--set", "recognition_bz=500"],
        &["recognition stream", "fewer than one batch"],
    );
    assert!(!t.contains("step 1/"), "{t}");
    // An output directory that cannot be created.
    let blocker = root.join("a_file");
    std::fs::write(&blocker, b"x").unwrap();
    let sub = blocker.join("sub");
    fails_with(
        &["--output", sub.to_str().unwrap()],
        &["cannot create the output directory"],
    );
    // Missing inputs are named before any work starts.
    fails_with(
        &["--set", "RAF_label=/nonexistent/list.txt"],
        &["RAF_label: /nonexistent/list.txt"],
    );
    // Unknown keys list the valid ones; wrong types name the part.
    fails_with(
        &["--set", "learning_rate=0.1"],
        &["unknown key learning_rate", "valid keys:"],
    );
    fails_with(&["--set", "lr=fast"], &["optimizer"]);
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_cleanly() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_sigint");
    let _ = std::fs::remove_dir_all(&root);
    let config = write_config(
        &root,
        "total_step: 100000\nverbose: 0\nfrequent: 1\nsave_verbose: 100000\n",
    );
    let child = Command::new(BIN)
        .args(["train", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let losses_file = root.join("out/losses.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&losses_file).map_or(0, |t| t.lines().count()) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("interrupted"), "{t}");
    let checkpoints: Vec<_> = std::fs::read_dir(root.join("out/checkpoints"))
        .unwrap()
        .collect();
    assert_eq!(checkpoints.len(), 1, "one checkpoint at the interruption");
}

/// Every tensor of two native safetensors files, compared exactly.
fn assert_same_tensors(a: &Path, b: &Path) {
    let (ta, tb) = (read_native(a).unwrap().0, read_native(b).unwrap().0);
    assert_eq!(ta.len(), tb.len());
    for ((ka, va), (kb, vb)) in ta.iter().zip(&tb) {
        assert_eq!(ka, kb);
        assert!(
            va.equal(vb),
            "{ka} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// `--set` arguments for each of `sets`.
fn set_args<'a>(sets: &[&'a str]) -> Vec<&'a str> {
    sets.iter().flat_map(|s| ["--set", *s]).collect()
}

/// Whether a checkpoint write is under way (or was cut off) in `output`.
fn partial_exists(output: &Path) -> bool {
    std::fs::read_dir(output.join("checkpoints"))
        .into_iter()
        .flatten()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".partial-")
        })
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_resumes_exactly() {
    const KILLS: usize = 20;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_sigkill");
    let _ = std::fs::remove_dir_all(&root);
    // A checkpoint after every step, so that many kills land inside a checkpoint write.
    let sets = set_args(&[
        "total_step=60",
        "warmup_step=2",
        "save_verbose=1",
        "keep_checkpoints=2",
        "frequent=1",
        "verbose=0",
        "tss_drop_rate=0.5",
        "sample_rate=0.5",
    ]);
    let whole = write_config(&root.join("whole"), "");
    train(&whole, &sets);

    let killed = write_config(&root.join("killed"), "");
    let out_dir = root.join("killed/out");
    let mut resume_args: Vec<&str> = vec!["train", killed.to_str().unwrap()];
    resume_args.extend_from_slice(&sets);
    resume_args.extend_from_slice(&["--resume", "auto"]);
    // Deterministic "random" moments: 0.3 s to 2.3 s after the start (start-up included, so
    // some kills hit start-up, most hit steps and checkpoint writes).
    let mut lcg = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    let mut kills_mid_write = 0;
    let mut newest_steps = Vec::new();
    while kills < KILLS {
        lcg = lcg
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(300 + (lcg >> 33) % 2000);
        let mut child = Command::new(BIN)
            .args(&resume_args)
            .current_dir(repo_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every other kill waits for a checkpoint write to be under way (its hidden
        // `.partial` directory exists); the rest land wherever the moment falls.
        let aim_at_a_write = kills % 2 == 1;
        let started = Instant::now();
        loop {
            let elapsed = started.elapsed();
            let due = if aim_at_a_write {
                partial_exists(&out_dir) || elapsed > 4 * wait
            } else {
                elapsed >= wait
            };
            if due || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_some() {
            break; // finished before this kill: nothing left to interrupt
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let checkpoints = out_dir.join("checkpoints");
        kills_mid_write += usize::from(partial_exists(&out_dir));
        // The newest complete checkpoint reads back whole (the next start loads it).
        let newest = std::fs::read_dir(&checkpoints)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_prefix("step_")?.parse::<u64>().ok()
            })
            .max();
        if let Some(step) = newest {
            let dir = checkpoints.join(format!("step_{step}"));
            let state: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap())
                    .unwrap();
            assert_eq!(state["global_step"].as_u64(), Some(step));
            read_native(&dir.join("model.safetensors")).unwrap();
            read_native(&dir.join("state.safetensors")).unwrap();
            newest_steps.push(step);
        }
    }
    assert!(
        kills >= KILLS / 2,
        "only {kills} kills landed before the run ended"
    );
    assert!(
        kills_mid_write > 0,
        "no kill landed inside a checkpoint write: {newest_steps:?}"
    );
    assert!(
        newest_steps.windows(2).all(|w| w[0] <= w[1]),
        "a kill lost progress: {newest_steps:?}"
    );
    let out = swinface(&resume_args);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "sigkill: {kills} kills ({kills_mid_write} inside a checkpoint write), newest \
         checkpoint after each: {newest_steps:?}"
    );

    // The same final parameters as the uninterrupted run, and the same losses at every step
    // (the last record of a step re-run after a kill).
    assert_same_tensors(
        &root.join("whole/out/model.safetensors"),
        &out_dir.join("model.safetensors"),
    );
    let (a, b) = (losses(&root.join("whole/out")), losses(&out_dir));
    assert_eq!(a.len(), 60);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (step, va) in &a {
        assert_eq!(va["total"], b[step]["total"], "step {step}");
    }
    // No half-written directory is left behind.
    let hidden: Vec<String> = std::fs::read_dir(out_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn a_full_disk_during_a_checkpoint_is_an_error_that_keeps_the_previous_one() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train_disk_full");
    let _ = std::fs::remove_dir_all(&root);
    let config = write_config(&root, "");
    let sets = set_args(&["total_step=6", "save_verbose=2", "verbose=0", "frequent=1"]);
    let mut first = sets.clone();
    first.extend_from_slice(&["--stop-after", "2"]);
    train(&config, &first);
    let previous = root.join("out/checkpoints/step_1");
    let size = |name: &str| std::fs::metadata(previous.join(name)).unwrap().len();
    let (model, state) = (size("model.safetensors"), size("state.safetensors"));
    assert!(state > model + 4096, "state {state} vs model {model} bytes");
    // A file-size limit between the two: the next checkpoint's model file fits, its state
    // file does not (EFBIG, as ENOSPC would be on a full disk). SIGXFSZ is ignored so that
    // the write fails instead of killing the process.
    let limit_kib = (model + state) / 2 / 1024;
    let mut command = format!(
        "trap '' XFSZ; ulimit -f {limit_kib}; exec '{BIN}' train '{}'",
        config.display()
    );
    for s in &sets {
        command.push_str(&format!(" '{s}'"));
    }
    command.push_str(" --resume auto");
    let out = Command::new("bash")
        .args(["-c", &command])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("step_3 was not written"), "{t}");
    assert!(t.contains("File too large"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    eprintln!(
        "disk full: {}",
        t.trim_end().lines().last().unwrap_or_default()
    );
    // The previous checkpoint is intact: nothing half-written beside it, and a run without
    // the limit resumes from it and finishes.
    let names: Vec<String> = std::fs::read_dir(root.join("out/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["step_1"]);
    let mut resume = sets.clone();
    resume.extend_from_slice(&["--resume", "auto"]);
    let out = train(&config, &resume);
    assert!(text(&out).contains("resumed from"), "{}", text(&out));
    assert!(root.join("out/model.safetensors").is_file());
}
