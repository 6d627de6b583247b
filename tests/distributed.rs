//! Data-parallel training on the CPU, several `swinface` processes on loopback: two ranks
//! train exactly what one process trains over the combined batch (BatchNorm on running
//! statistics, or in training mode with `sync_bn`); a data-parallel run resumes exactly and
//! refuses another world size; a killed or hanging rank stops the run with an error naming
//! it, within `dist_timeout_s`, leaving no process behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use swinface_model::checkpoint::read_native;
use tch::Tensor;

const BIN: &str = env!("CARGO_BIN_EXE_swinface");
/// Parameters of the 2-rank run may differ from the 1-process run by summation order only.
const TOLERANCE: f64 = 1e-5;

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

mod common;
use common::{losses, text};

fn data_dir() -> &'static Path {
    common::small_data("distributed_data")
}

/// The tests' tiny multitask model on the small data, with `extra` (YAML) on top. Per-rank
/// batch sizes are `batch` for every stream.
fn write_config(dir: &Path, batch: u32, extra: &str) -> PathBuf {
    const RANKS: &str = "val_targets: []\nfrequent: 1\nverbose: 0\ndist_timeout_s: 30\n";
    common::write_tiny_config(dir, data_dir(), batch, &[RANKS, extra])
}

/// What makes two ranks compute what one process computes: no dropout or drop path,
/// BatchNorm on running statistics, every Partial FC centre used, and SGD at a rate that
/// moves the weights well beyond the tolerance (AdamW would hide a wrong gradient scale).
const EQUIVALENT: &str = "
eval_mode_forward: true
sample_rate: 1.0
optimizer: sgd
lr: 0.2
momentum: 0.9
weight_decay: 0.0
warmup_step: 0
total_step: 3
save_verbose: 1
seed: 5
";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn swinface(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run swinface")
}

/// `swinface launch --nproc_per_node N -- train CONFIG MORE...`
fn launch(nproc: usize, config: &Path, more: &[&str]) -> Output {
    let port = free_port().to_string();
    let nproc = nproc.to_string();
    let mut args = vec![
        "launch",
        "--nproc_per_node",
        &nproc,
        "--master_port",
        &port,
        "--",
        "train",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    swinface(&args)
}

fn tensors(path: &Path) -> BTreeMap<String, Tensor> {
    read_native(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
        .into_iter()
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// The largest difference over every tensor the two files share (they must share all).
fn max_model_diff(a: &Path, b: &Path) -> f64 {
    max_model_diff_of(a, b, |_| true)
}

/// [`max_model_diff`] over the tensors whose names `select` picks.
fn max_model_diff_of(a: &Path, b: &Path, select: impl Fn(&str) -> bool) -> f64 {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    ta.iter()
        .filter(|(name, _)| select(name))
        .map(|(name, t)| {
            let d = max_diff(t, &tb[name]);
            assert!(d.is_finite(), "{name}");
            d
        })
        .fold(0.0, f64::max)
}

/// Partial FC's whole centre table of a checkpoint: rank 0's rows, then the other ranks'.
fn centres(checkpoint: &Path, world: usize) -> Tensor {
    let mut parts =
        vec![tensors(&checkpoint.join("state.safetensors"))["partial_fc.weight"].shallow_clone()];
    for rank in 1..world {
        let shard = checkpoint.join(format!("state.rank_{rank}.safetensors"));
        parts.push(tensors(&shard)["partial_fc.weight"].shallow_clone());
    }
    Tensor::cat(&parts, 0)
}

#[test]
fn two_ranks_train_what_one_process_trains_on_the_combined_batch() {
    let root = tmp("dist_equivalence");
    let one = write_config(&root.join("one"), 8, EQUIVALENT);
    let out = swinface(&["train", one.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let two = write_config(&root.join("two"), 4, EQUIVALENT);
    let out = launch(2, &two, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("data parallel: 2 ranks"),
        "{}",
        text(&out)
    );

    let (one_out, two_out) = (root.join("one/out"), root.join("two/out"));
    // Training moved the weights far beyond the tolerance...
    let moved = max_model_diff(
        &one_out.join("checkpoints/step_0/model.safetensors"),
        &one_out.join("checkpoints/step_2/model.safetensors"),
    );
    assert!(
        moved > 1000.0 * TOLERANCE,
        "the weights barely moved: {moved}"
    );
    let centres_moved = max_diff(
        &centres(&one_out.join("checkpoints/step_0"), 1),
        &centres(&one_out.join("checkpoints/step_2"), 1),
    );
    assert!(centres_moved > 1000.0 * TOLERANCE, "{centres_moved}");
    eprintln!("largest change over training: model {moved}, centres {centres_moved}");
    // ...and the two runs agree within it, after every step.
    let mut largest = 0.0f64;
    for step in 0..3 {
        let ckpt = |out: &Path| out.join(format!("checkpoints/step_{step}"));
        let model = max_model_diff(
            &ckpt(&one_out).join("model.safetensors"),
            &ckpt(&two_out).join("model.safetensors"),
        );
        assert!(
            model < TOLERANCE,
            "step {step}: the models differ by {model}"
        );
        let pfc = max_diff(&centres(&ckpt(&one_out), 1), &centres(&ckpt(&two_out), 2));
        assert!(pfc < TOLERANCE, "step {step}: the centres differ by {pfc}");
        largest = largest.max(model).max(pfc);
    }
    eprintln!("largest difference between 1 and 2 ranks: {largest}");
    let final_diff = max_model_diff(
        &one_out.join("model.safetensors"),
        &two_out.join("model.safetensors"),
    );
    assert!(final_diff < TOLERANCE, "{final_diff}");
    // The logged losses are the combined batch's.
    let (a, b) = (losses(&one_out), losses(&two_out));
    assert_eq!(a.len(), 3);
    for (step, va) in &a {
        for key in ["total", "recognition", "grad_norm"] {
            let (x, y) = (va[key].as_f64().unwrap(), b[step][key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "step {step} {key}: {x} vs {y}"
            );
        }
    }
    // Only rank 0 wrote the shared outputs; rank 1 wrote its shard of each checkpoint.
    let ckpt = two_out.join("checkpoints/step_2");
    assert!(ckpt.join("state.rank_1.safetensors").is_file());
    assert!(!ckpt.join("state.rank_0.safetensors").exists());
    let events: Vec<_> = std::fs::read_dir(two_out.join("tensorboard"))
        .unwrap()
        .collect();
    assert_eq!(events.len(), 1, "one TensorBoard file, rank 0's");
}

/// [`EQUIVALENT`] with BatchNorm in training mode: dropout and drop path off instead, and
/// CBAM's spatial gate on, so that a 2-d BatchNorm ([B, 1, H, W]) trains beside the 1-d
/// ones of the embedding head and the FAM branches.
const TRAIN_MODE_BATCH_NORM: &str = "
eval_mode_forward: false
tss_drop_rate: 0.0
fam_spatial_attention: CBAM
swin:
  patch_size: 4
  embed_dim: 16
  depths: [2, 2, 2]
  num_heads: [1, 2, 4]
  drop_rate: 0.0
  attn_drop_rate: 0.0
  drop_path_rate: 0.0
";

fn is_running_stat(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

#[test]
fn sync_bn_ranks_train_what_one_process_trains_with_batch_norm_in_training_mode() {
    let root = tmp("dist_sync_bn");
    let config = |name: &str, batch: u32, sync: bool| {
        let sync = format!("sync_bn: {sync}\n");
        common::write_tiny_config(
            &root.join(name),
            data_dir(),
            batch,
            &[
                "val_targets: []\nfrequent: 1\nverbose: 0\ndist_timeout_s: 30\n",
                EQUIVALENT,
                TRAIN_MODE_BATCH_NORM,
                &sync,
            ],
        )
    };
    let one = config("one", 8, false);
    let out = swinface(&["train", one.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let synced = config("synced", 4, true);
    let out = launch(2, &synced, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("BatchNorm synchronised over the 2 ranks"),
        "{}",
        text(&out)
    );
    let local = config("local", 4, false);
    let out = launch(2, &local, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("BatchNorm synchronised"),
        "{}",
        text(&out)
    );

    let out = |name: &str| root.join(name).join("out");
    let model = |name: &str, step: u64| {
        out(name).join(format!("checkpoints/step_{step}/model.safetensors"))
    };
    // Training moved the running statistics and the weights far beyond the tolerance.
    let stats_moved = max_model_diff_of(&model("one", 0), &model("one", 2), is_running_stat);
    let moved = max_model_diff(&model("one", 0), &model("one", 2));
    assert!(stats_moved > 1000.0 * TOLERANCE, "{stats_moved}");
    assert!(moved > 1000.0 * TOLERANCE, "{moved}");
    let (mut synced_all, mut synced_stats, mut local_all, mut local_stats) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for step in 0..3 {
        let all = max_model_diff(&model("one", step), &model("synced", step));
        let stats = max_model_diff_of(&model("one", step), &model("synced", step), is_running_stat);
        assert!(all < TOLERANCE, "step {step}: sync_bn differs by {all}");
        let ckpt = |name: &str| out(name).join(format!("checkpoints/step_{step}"));
        let pfc = max_diff(&centres(&ckpt("one"), 1), &centres(&ckpt("synced"), 2));
        assert!(pfc < TOLERANCE, "step {step}: the centres differ by {pfc}");
        synced_all = synced_all.max(all).max(pfc);
        synced_stats = synced_stats.max(stats);
        local_all = local_all.max(max_model_diff(&model("one", step), &model("local", step)));
        local_stats = local_stats.max(max_model_diff_of(
            &model("one", step),
            &model("local", step),
            is_running_stat,
        ));
    }
    eprintln!(
        "largest change over training: model {moved}, running statistics {stats_moved}; \
         largest difference from one process: sync_bn {synced_all} (running statistics \
         {synced_stats}), without sync_bn {local_all} (running statistics {local_stats})"
    );
    // Teeth: with per-rank statistics the same run is another one.
    assert!(local_stats > 10.0 * TOLERANCE, "{local_stats}");
    assert!(local_all > 10.0 * TOLERANCE, "{local_all}");
    // The logged losses are the combined batch's.
    let (a, b) = (losses(&out("one")), losses(&out("synced")));
    for (step, va) in &a {
        for key in ["total", "recognition", "grad_norm"] {
            let (x, y) = (va[key].as_f64().unwrap(), b[step][key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "step {step} {key}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn a_data_parallel_run_resumes_exactly_and_refuses_another_world_size() {
    let root = tmp("dist_resume");
    let extra = "total_step: 4\nsave_verbose: 2\nseed: 3\nsample_rate: 0.5\n";
    let whole = write_config(&root.join("whole"), 4, extra);
    let out = launch(2, &whole, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let parts = write_config(&root.join("parts"), 4, extra);
    let out = launch(2, &parts, &["--stop-after", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("--stop-after reached"),
        "{}",
        text(&out)
    );

    // One process, or three, cannot continue a 2-rank checkpoint: Partial FC is sharded.
    let refused = swinface(&["train", parts.to_str().unwrap(), "--resume", "auto"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("saved by 2 ranks; this run has 1"),
        "{}",
        text(&refused)
    );
    let refused = launch(3, &parts, &["--resume", "auto"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("saved by 2 ranks; this run has 3"),
        "{}",
        text(&refused)
    );

    let out = launch(2, &parts, &["--resume", "auto"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resumed from"), "{}", text(&out));
    let (w, p) = (root.join("whole/out"), root.join("parts/out"));
    // Bit-identical: the same ranks did the same arithmetic, sampling included.
    assert_eq!(
        max_model_diff(&w.join("model.safetensors"), &p.join("model.safetensors")),
        0.0
    );
    let ckpt = |out: &Path| out.join("checkpoints/step_3");
    assert_eq!(
        max_diff(&centres(&ckpt(&w), 2), &centres(&ckpt(&p), 2)),
        0.0
    );
    let (a, b) = (losses(&w), losses(&p));
    for step in 0..4u64 {
        assert_eq!(a[&step]["total"], b[&step]["total"], "step {step}");
    }
}

/// Starts rank `rank` of 2 by hand, as torchrun would.
fn start_rank(rank: usize, port: u16, config: &Path) -> Child {
    Command::new(BIN)
        .args(["train", config.to_str().unwrap()])
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads `child`'s stdout until a line contains `needle` (the rest is drained on a thread).
fn wait_for_line(child: &mut Child, needle: &str) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains(needle) {
            std::thread::spawn(move || lines.for_each(drop));
            return;
        }
    }
    panic!("the process ended before printing {needle:?}");
}

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

fn stderr_of(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts ranks 0 and 1 by hand (torchrun's variables), kills rank 1 once rank 0 logged
/// step 2, and returns rank 0's exit status, stderr and how long it took to stop after that.
fn kill_rank_1_after_step_2(config: &Path) -> (std::process::ExitStatus, String, Duration) {
    let port = free_port();
    let mut rank0 = start_rank(0, port, config);
    let mut rank1 = start_rank(1, port, config);
    wait_for_line(&mut rank0, "step 2/");
    let started = Instant::now();
    rank1.kill().unwrap();
    let _ = rank1.wait();
    let (status, stderr) = stderr_of(rank0);
    (status, stderr, started.elapsed())
}

#[test]
fn a_killed_or_hanging_rank_stops_the_others_within_the_timeout() {
    let root = tmp("dist_failure");
    let timeout = 4u64;
    let config = write_config(
        &root,
        4,
        &format!("total_step: 100000\nsave_verbose: 100000\ndist_timeout_s: {timeout}\n"),
    );
    // Killed: rank 1 disappears mid-run; rank 0 names it.
    let (status, stderr, took) = kill_rank_1_after_step_2(&config);
    assert!(!status.success());
    assert!(stderr.contains("rank(s) [1]"), "{stderr}");
    assert!(stderr.contains("dist_timeout_s"), "{stderr}");
    assert!(
        took < Duration::from_secs(timeout + 10),
        "rank 0 took {took:?} to give up"
    );

    // Hanging, under the launcher: rank 1 stops (SIGSTOP); rank 0 times out naming it, the
    // launcher kills rank 1 and exits non-zero.
    let _ = std::fs::remove_dir_all(root.join("out"));
    let port = free_port().to_string();
    let mut launcher = Command::new(BIN)
        .args([
            "launch",
            "--nproc_per_node",
            "2",
            "--master_port",
            &port,
            "--",
        ])
        .args(["train", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(&mut launcher, "step 2/");
    let children = children_of(launcher.id());
    assert_eq!(children.len(), 2, "{children:?}");
    let rank1 = children
        .iter()
        .copied()
        .find(|&pid| environ(pid).contains(&"RANK=1".to_owned()))
        .expect("rank 1's process");
    let started = Instant::now();
    signal(rank1, "STOP");
    let (status, stderr) = stderr_of(launcher);
    let took = started.elapsed();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("rank(s) [1]"), "{stderr}");
    assert!(stderr.contains("launch: rank 0 failed"), "{stderr}");
    assert!(took < Duration::from_secs(timeout + 15), "{took:?}");
    for pid in children {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "rank process {pid} was left behind"
        );
    }
}

#[test]
fn a_killed_rank_stops_a_sync_bn_run_with_an_error_not_a_panic() {
    let root = tmp("dist_sync_bn_failure");
    let timeout = 4u64;
    let config = write_config(
        &root,
        4,
        &format!(
            "total_step: 100000\nsave_verbose: 100000\ndist_timeout_s: {timeout}\nsync_bn: true\n"
        ),
    );
    let (status, stderr, took) = kill_rank_1_after_step_2(&config);
    assert!(!status.success());
    // Whichever collective rank 0 was in (a BatchNorm's, forward or backward, or another),
    // the failure comes back as an error naming rank 1, not a panic. (Where it is exactly a
    // BatchNorm's: the learner's unit tests.)
    assert!(stderr.contains("rank(s) [1]"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        took < Duration::from_secs(timeout + 10),
        "rank 0 took {took:?} to give up"
    );
    eprintln!("rank 0's error: {}", stderr.lines().last().unwrap_or(""));
}

fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}
