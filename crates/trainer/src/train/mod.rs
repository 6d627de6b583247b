//! `swinface train CONFIG`: SwinFace's joint multi-task training (or the recognition-only
//! pretraining stage), with exact resume, TensorBoard, periodic evaluation and a summary.
//!
//! - [`config`]: the YAML config (official names) and `--set` overrides.
//! - [`datasets`], [`streams`]: the four training streams and their loaders, walked together.
//! - [`learner`]: the model, Partial FC, optimizer, schedule and one step.
//! - [`checkpoint`]: what a checkpoint holds and how it is written atomically.
//! - [`dist`]: data-parallel runs (torchrun's variables, rendezvous, agreement).
//! - [`progress`]: bar, log file, TensorBoard; [`summary`]: evaluation results for people.

pub mod checkpoint;
pub mod config;
pub mod datasets;
pub mod dist;
pub mod learner;
pub mod progress;
pub mod streams;
pub mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use swinface_data::augment::EvalTransform;
use swinface_loss::AmpMode;
use tch::Device;

use self::checkpoint::{BestRecord, CheckpointStore, TrainState, STATE_FORMAT, STATE_VERSION};
use self::config::{Stage, TrainConfig};
use self::dist::Dist;
use self::learner::{Learner, StepOutcome};
use self::progress::Progress;
use self::streams::Streams;
use self::summary::{best_value, log_evaluation, RunSummary, Scores};
use crate::eval::datasets::{EvalData, Task};
use crate::eval::periodic::{is_due, PeriodicEvaluator, Trackers};
use crate::eval::runner::Runner;
use crate::eval::shard::Gather;
use crate::eval::suite::run_all;

/// How the periodic evaluation runs the model.
struct EvalSetup {
    device: Device,
    batch_size: usize,
    transform: EvalTransform,
    limits: swinface_data::preprocess::DecodeLimits,
}

impl EvalSetup {
    fn runner<'a>(
        &self,
        model: &'a swinface_model::SwinFace,
        gather: &'a dyn Gather,
    ) -> Runner<'a> {
        Runner {
            model,
            device: self.device,
            batch_size: self.batch_size,
            transform: self.transform.clone(),
            limits: self.limits,
            gather,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training config (YAML, official key names).
    #[arg(value_name = "CONFIG.yaml")]
    pub config: PathBuf,

    /// Override a config key: `--set lr=0.001 --set swin.embed_dim=48` (values are YAML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,

    /// Continue a run: `auto` (the newest checkpoint in the output directory, or a fresh
    /// start when there is none) or a checkpoint directory (`.../checkpoints/step_N`).
    #[arg(long, value_name = "auto|PATH")]
    pub resume: Option<String>,

    /// Output directory (overrides the config's `output`).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Stop after this many steps of this invocation, saving a checkpoint (as Ctrl-C does).
    #[arg(long, value_name = "N")]
    pub stop_after: Option<u64>,
}

/// The output directory must be writable before any work starts.
fn check_output(output: &Path) -> Result<()> {
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create the output directory {}", output.display()))?;
    let probe = output.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the output directory {} is not writable", output.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Every configured input path must exist before any work starts.
fn check_paths(config: &TrainConfig) -> Result<()> {
    let d = &config.data;
    let mut paths: Vec<(&str, &Option<PathBuf>)> = vec![("rec", &d.rec)];
    if config.train.stage == Stage::Multitask {
        paths.extend([
            ("age_gender_data_path", &d.age_gender_data_path),
            ("CelebA_train_data", &d.celeba_train_data),
            ("CelebA_train_label", &d.celeba_train_label),
        ]);
    }
    paths.extend([
        ("RAF_data", &d.raf_data),
        ("RAF_label", &d.raf_label),
        ("AffectNet_data", &d.affectnet_data),
        ("AffectNet_label", &d.affectnet_label),
        ("CelebA_test_data", &d.celeba_test_data),
        ("CelebA_test_label", &d.celeba_test_label),
        ("CLAP_test_data", &d.clap_test_data),
        ("CLAP_test_label", &d.clap_test_label),
        ("LAP_test_data", &d.lap_test_data),
        ("LAP_test_label", &d.lap_test_label),
        ("FGnet_data", &d.fgnet_data),
        ("FGnet_label", &d.fgnet_label),
        ("init_model", &config.train.init_model),
    ]);
    let mut missing = Vec::new();
    for (key, path) in paths {
        if let Some(p) = path {
            if key == "init_model" && !config.train.init {
                continue;
            }
            if !p.exists() {
                missing.push(format!("{key}: {}", p.display()));
            }
        }
    }
    if config.train.stage == Stage::Multitask && d.rec.is_none() {
        missing.push("rec: not set".into());
    }
    if !missing.is_empty() {
        bail!("missing input paths:\n  {}", missing.join("\n  "));
    }
    Ok(())
}

/// The seed torch's generator gets before step `step` (dropout, drop path).
fn step_seed(seed: u64, step: u64) -> i64 {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_add(1)) as i64 & i64::MAX
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where to start: a fresh model, or a checkpoint to resume.
fn resume_dir(args: &TrainArgs, store: &CheckpointStore) -> Result<Option<PathBuf>> {
    match args.resume.as_deref() {
        None => {
            if let Some(latest) = store.latest()? {
                bail!(
                    "{} already holds checkpoints (newest {}): pass --resume auto to continue, \
                     or choose another output directory",
                    store.dir().display(),
                    latest.display()
                );
            }
            Ok(None)
        }
        Some("auto") => store.latest(),
        Some(path) => checkpoint::resolve(Path::new(path)).map(Some),
    }
}

pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    let mut config = TrainConfig::load(&args.config, &args.overrides)?;
    if let Some(output) = &args.output {
        config.train.output = output.clone();
    }
    let dist = Dist::init(
        Duration::from_secs(config.train.dist_timeout_s.max(1)),
        (config.train.dist_bucket_mb.max(1) as usize) << 20,
        config.train.device.device()?,
    )?;
    let result = train(args, config, &dist).and_then(|code| {
        dist.shutdown()?;
        Ok(code)
    });
    match result {
        Err(err) if dist.world_size() > 1 => {
            dist.abort(&err);
            Err(err.context(format!("rank {} of {}", dist.rank(), dist.world_size())))
        }
        other => other,
    }
}

fn train(args: &TrainArgs, mut config: TrainConfig, dist: &Dist) -> Result<ExitCode> {
    let output = config.train.output.clone();
    check_output(&output)?;
    check_paths(&config)?;
    if config.train.torch_threads > 0 {
        tch::set_num_threads(config.train.torch_threads as i32);
    }
    let device = dist.device(config.train.device.device()?)?;
    let (rank, world_size) = (dist.rank(), dist.world_size());
    let main = dist.is_main();

    let streams = Streams::open(&config, rank, world_size, device.is_cuda())?;
    let steps_per_epoch = streams.steps_per_epoch() as u64;
    if let Some(epochs) = config.train.num_epoch {
        config.schedule.total_step = epochs * steps_per_epoch;
        config.schedule.warmup_step = config.train.warmup_epoch.unwrap_or(0) * steps_per_epoch;
    }
    let total_steps = config.schedule.total_step;
    if total_steps == 0 {
        bail!("total_step is 0: nothing to train");
    }
    let store = CheckpointStore::new(&output, config.train.keep_checkpoints);
    let cleaned = if main { store.remove_partial() } else { Ok(()) };
    dist.all_ok("cleaning up the checkpoints", cleaned)?;
    let resume = dist.all_ok("finding the checkpoint to resume", resume_dir(args, &store))?;

    let resolved = config
        .to_yaml()
        .context("cannot write the resolved config")?;
    if main {
        write_file_atomic(&output.join("config.yaml"), resolved.as_bytes())?;
    }

    let seed = config.data.seed as u64;
    tch::manual_seed(seed as i64);
    let mut learner = Learner::new(&config, device, dist.collectives(), world_size)?
        .with_data_parallel(dist.data_parallel());

    let mut progress = Progress::new(&output, total_steps, 0, main)?;
    progress.line(&format!(
        "swinface {}: {} stage on {device:?}, {total_steps} steps of {} images ({} per epoch), \
         output {}",
        env!("CARGO_PKG_VERSION"),
        match config.train.stage {
            Stage::Multitask => "multitask",
            Stage::Recognition => "recognition",
        },
        config.batch_per_rank(),
        steps_per_epoch,
        output.display()
    ));
    if device == Device::Cpu && config.amp.mode(device) == AmpMode::Bf16 {
        progress.line(&if cpu_has_bf16_instructions() == Some(false) {
            "warning: amp_mode bf16 on a CPU without bf16 instructions (AVX512-BF16, AMX): \
             libtorch emulates them, slower than fp32 (--set amp_mode=fp32)"
                .to_owned()
        } else {
            "  mixed precision: bf16 autocast on the CPU (the official regions)".to_owned()
        });
    }
    if world_size > 1 {
        progress.line(&format!(
            "  data parallel: {world_size} ranks, {} images per step in all",
            config.batch_per_rank() * world_size as u64
        ));
        if learner.sync_batch_norm() {
            progress.line(&if config.train.eval_mode_forward {
                "  BatchNorm synchronised over the ranks (sync_bn), which changes nothing \
                 here: eval_mode_forward normalises with the running statistics"
                    .to_owned()
            } else {
                format!(
                    "  BatchNorm synchronised over the {world_size} ranks (sync_bn): \
                     training batches are normalised with the statistics of all {} images",
                    config.batch_per_rank() * world_size as u64
                )
            });
        }
    }
    if let Some(events) = &progress.events {
        let events = events.path().display().to_string();
        progress.line(&format!("  TensorBoard events: {events}"));
    }
    for s in streams.info() {
        progress.line(&format!(
            "  stream {:<12} {:>8} samples, batch {:>4}, {:>6} batches per epoch",
            s.name, s.samples, s.batch_size, s.batches_per_epoch
        ));
    }

    let mut trackers = Trackers::default();
    let mut best: Option<BestRecord> = None;
    let mut nonfinite_in_a_row = 0u64;
    let mut first_step = 0u64;
    if let Some(dir) = &resume {
        let state = checkpoint::read_state(dir)?;
        if state.world_size != world_size {
            bail!(
                "{} was saved by {} ranks; this run has {world_size} (resharding Partial FC \
                 is not supported: resume with the same world size)",
                dir.display(),
                state.world_size
            );
        }
        checkpoint::load_tensors(dir, &mut learner, rank)?;
        if state.steps_per_epoch != streams.steps_per_epoch() {
            bail!(
                "{} was saved with {} steps per epoch, the data now gives {}: the datasets or \
                 batch sizes changed",
                dir.display(),
                state.steps_per_epoch,
                streams.steps_per_epoch()
            );
        }
        if state.config != resolved {
            progress.line(&format!(
                "warning: the config differs from the one {} was trained with",
                dir.display()
            ));
        }
        first_step = state.next_step;
        trackers = state.trackers;
        best = state.best;
        nonfinite_in_a_row = state.nonfinite_in_a_row;
        progress.line(&format!(
            "resumed from {} at step {first_step}",
            dir.display()
        ));
    } else if config.train.init {
        let path = config
            .train
            .init_model
            .as_deref()
            .context("init_model is not set")?;
        let report = swinface_model::checkpoint::load_pretrained_backbone(path, &mut learner.vs)
            .with_context(|| format!("cannot initialise the backbone from {}", path.display()))?;
        progress.line(&format!(
            "backbone initialised from {}: {} tensors loaded, {} missing, {} ignored, {} mis-shaped",
            path.display(),
            report.loaded.len(),
            report.missing.len(),
            report.unexpected.len(),
            report.mismatched.len()
        ));
        if report.loaded.is_empty() {
            bail!("{} holds no tensor the backbone can use", path.display());
        }
    }
    if resume.is_none() && config.train.init_age_bias {
        if let Some(mean) = streams.mean_age() {
            learner.set_age_bias(mean)?;
            progress.line(&format!(
                "Age head bias set to the mean training age {mean:.2}"
            ));
        }
    }
    // Every rank starts from rank 0's weights (DDP broadcasts them the same way).
    dist.broadcast_variables(&learner.vs)?;
    progress.set_first_step(first_step);

    let eval_data = EvalData::load(&config.eval_config(), &Task::ALL, false)?;
    let mut evaluator = PeriodicEvaluator::new(eval_data);
    evaluator.trackers = trackers;
    let eval_setup = EvalSetup {
        device,
        batch_size: config.eval.val_batch_size,
        transform: EvalTransform {
            img_size: config.data.img_size,
            ..EvalTransform::default()
        },
        limits: config.data.decode_limits,
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
    }

    let mut summary = RunSummary::new(&config, total_steps);
    if config.train.initial_eval && first_step == 0 && evaluator.data.image_count() > 0 {
        let before = run_all(
            &eval_setup.runner(&learner.model, dist.gather()),
            &evaluator.data,
        )?;
        let scores = Scores::of(&before);
        progress.line(&format!("before training: {}", scores.describe()));
        summary.before = Some(scores);
    }

    let started = Instant::now();
    let mut step = first_step;
    let mut run_steps = 0u64;
    let mut last_outcome: Option<StepOutcome> = None;
    let mut stop_reason: Option<&str> = None;
    let lr_names = learner.learning_rate_names();
    let analysis_names = learner.analysis_names();
    'epochs: while step < total_steps {
        let mut epoch = streams.epoch_from(streams.position_of(step))?;
        while step < total_steps {
            let Some((batch, bad)) = epoch.next_step()? else {
                continue 'epochs;
            };
            if bad > 0 {
                progress.line(&format!("step {step}: {bad} bad samples replaced"));
            }
            tch::manual_seed(step_seed(seed, step));
            let images = batch.images.size()[0] as u64;
            let outcome = learner.step(&batch, step)?;
            progress.step_done(step, images);
            if outcome.finite {
                nonfinite_in_a_row = 0;
            } else {
                nonfinite_in_a_row += 1;
                progress.line(&format!(
                    "step {step}: non-finite loss {} (recognition {}), update skipped ({nonfinite_in_a_row} in a row)",
                    outcome.total, outcome.recognition
                ));
                if nonfinite_in_a_row >= config.train.max_nonfinite_steps {
                    bail!(
                        "{nonfinite_in_a_row} steps in a row had a non-finite loss (last at step \
                         {step}); stopping. Lower the learning rate, or check the data; the last \
                         checkpoint in {} is intact",
                        store.dir().display()
                    );
                }
            }
            progress.record_losses(step, &outcome)?;
            if main && ((step + 1).is_multiple_of(config.train.frequent) || step + 1 == total_steps)
            {
                log_step(
                    &mut progress,
                    &learner,
                    &outcome,
                    step,
                    &lr_names,
                    &analysis_names,
                )?;
            }
            let global_step = step;
            step += 1;
            run_steps += 1;
            last_outcome = Some(outcome);

            let last = step == total_steps;
            if is_due(global_step, config.train.verbose, total_steps)
                && evaluator.data.image_count() > 0
            {
                let report = evaluator.evaluate(
                    &eval_setup.runner(&learner.model, dist.gather()),
                    global_step,
                )?;
                log_evaluation(&mut progress, &report, global_step as i64)?;
                if let Some((metric, value, higher)) =
                    best_value(config.train.best_metric, &report.results)
                {
                    let improved = match &best {
                        None => true,
                        Some(b) => {
                            if higher {
                                value > b.value
                            } else {
                                value < b.value
                            }
                        }
                    };
                    if improved {
                        let record = BestRecord {
                            metric: metric.into(),
                            value,
                            global_step,
                        };
                        let saved = if main {
                            store.save_best(&output, &learner, &record).map(Some)
                        } else {
                            Ok(None)
                        };
                        if let Some(path) = dist.all_ok("saving the best model", saved)? {
                            progress
                                .line(&format!("new best {metric} {value:.4}: {}", path.display()));
                        }
                        best = Some(record);
                    }
                }
                if last {
                    summary.after = Some(Scores::of(&report.results));
                }
            }
            // Ranks see Ctrl-C at different moments: they stop together, at the first step
            // any of them saw it.
            let interrupted_here = interrupted.load(Ordering::SeqCst);
            let interrupted_any = dist.any(interrupted_here)?;
            let stop_now = interrupted_any || args.stop_after.is_some_and(|n| run_steps >= n);
            if (global_step + 1).is_multiple_of(config.train.save_verbose) || last || stop_now {
                let state = TrainState {
                    format: STATE_FORMAT.into(),
                    format_version: STATE_VERSION,
                    global_step,
                    next_step: step,
                    data_position: streams.position_of(step),
                    steps_per_epoch: streams.steps_per_epoch(),
                    world_size,
                    rank,
                    rng_seed: seed,
                    rng_rule: "torch manual_seed(step_seed(rng_seed, step)) before each step"
                        .into(),
                    nonfinite_in_a_row,
                    trackers: evaluator.trackers.clone(),
                    best: best.clone(),
                    config: resolved.clone(),
                    saved_at_unix: unix_now(),
                };
                let dir = store.save(&learner, &state, dist)?;
                progress.line(&format!("saved {}", dir.display()));
            }
            if stop_now && !last {
                stop_reason = Some(if interrupted_any {
                    "interrupted"
                } else {
                    "--stop-after reached"
                });
                break 'epochs;
            }
        }
    }
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(reason) = stop_reason {
        if !main {
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{reason}: stopped after step {} ({run_steps} steps in {seconds:.0} s); resume with --resume auto",
            step.saturating_sub(1)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !main {
        return Ok(ExitCode::SUCCESS);
    }
    let final_model = output.join("model.safetensors");
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("global_step".to_owned(), step.saturating_sub(1).to_string());
    swinface_model::checkpoint::save_native(&final_model, &learner.vs, &meta)
        .context("cannot save the final model")?;
    println!("wrote {}", final_model.display());
    summary.steps_run = run_steps;
    summary.train_seconds = seconds;
    summary.final_loss = last_outcome.map(|o| o.total);
    summary.best = best;
    let path = summary.write(&output)?;
    summary.print();
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn log_step(
    progress: &mut Progress,
    learner: &Learner,
    outcome: &StepOutcome,
    step: u64,
    lr_names: &[String],
    analysis_names: &[&str],
) -> Result<()> {
    let rate = progress.take_throughput();
    let eta = progress.eta_seconds(step);
    let lr = outcome.learning_rates.first().copied().unwrap_or(0.0);
    let s = step as i64;
    let Some(tb) = progress.events.as_mut() else {
        return Ok(());
    };
    tb.add_scalar("loss/total", outcome.total, s)?;
    tb.add_scalar("loss/recognition", outcome.recognition, s)?;
    for (name, value) in analysis_names.iter().zip(&outcome.analysis) {
        tb.add_scalar(&format!("loss/{name}"), *value, s)?;
    }
    for (name, value) in lr_names.iter().zip(&outcome.learning_rates) {
        tb.add_scalar(&format!("lr/{name}"), *value, s)?;
    }
    if learner.scaler.is_enabled() {
        tb.add_scalar("amp/loss_scale", learner.scaler.scale_value()?, s)?;
    }
    tb.add_scalar("train/images_per_second", rate, s)?;
    tb.add_scalar("train/grad_norm", outcome.grad_norm, s)?;
    tb.flush()?;
    let message = format!(
        "loss {:.4}  lr {:.2e}  {:.1} img/s",
        outcome.total, lr, rate
    );
    progress.status(message.clone());
    let line = format!(
        "step {}/{}  {message}  recognition {:.4}  eta {:.0} s",
        step + 1,
        progress.total_steps(),
        outcome.recognition,
        eta
    );
    if !progress.has_bar() {
        progress.line(&line);
    } else {
        progress.log_only(&line);
    }
    Ok(())
}

/// Whether this CPU has native bf16 instructions (Linux's `/proc/cpuinfo` flags
/// `avx512_bf16` or `amx_bf16`); `None` where that file cannot be read.
fn cpu_has_bf16_instructions() -> Option<bool> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let flags = info.lines().find(|l| l.starts_with("flags"))?;
    Some(
        flags
            .split_whitespace()
            .any(|f| f == "avx512_bf16" || f == "amx_bf16"),
    )
}

/// Writes `path` through a temporary file, fsync and rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = swinface_data::formats::atomic::AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()?;
    Ok(())
}
