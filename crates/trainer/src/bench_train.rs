//! `swinface bench train`: images/s of the full multi-task train step (the trainer's
//! [`Learner::step`]: forward of the four concatenated streams, Partial FC and the 42
//! analysis losses, backward, clipping, optimizer) on fixed random batches, and peak memory.
//!
//! Prints one JSON line whose `model`, `batches`, Partial FC and optimizer fields are what
//! `scripts/baseline/bench_train.py --spec` builds the PyTorch side from, so that both train
//! the same configuration; `scripts/bench.sh` runs both and prints the ratios.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use swinface_loss::SingleProcess;
use tch::{Device, Kind, Tensor};

use crate::cli::DeviceChoice;
use crate::train::config::TrainConfig;
use crate::train::learner::{AnalysisLabels, Learner, StepBatch};

#[derive(Debug, clap::Args)]
pub struct TrainBenchArgs {
    /// Training config (YAML); its data paths are not read.
    #[arg(long, default_value = "configs/swinface.yaml")]
    pub config: PathBuf,
    /// `key=value` overrides, as `swinface train --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

pub fn run(args: &TrainBenchArgs) -> Result<()> {
    let mut overrides = vec!["init=false".to_owned()];
    overrides.extend(args.overrides.iter().cloned());
    let config = TrainConfig::load(&args.config, &overrides)?;
    let device = args.device.device()?;
    let spec = spec(&config, device)?;

    tch::manual_seed(0);
    let mut learner = Learner::new(&config, device, Box::new(SingleProcess), 1)?;
    let batch = random_batch(&config);
    let images = batch.images.size()[0];
    let mut times = Vec::with_capacity(args.reps);
    for step in 0..args.warmup + args.reps {
        let start = Instant::now();
        // The step reads its losses back: that waits for the device.
        let outcome = learner.step(&batch, step as u64)?;
        anyhow::ensure!(outcome.finite, "step {step} gave a non-finite loss");
        if step >= args.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let step_s = times
        .get(times.len() / 2)
        .copied()
        .context("--reps must be at least 1")?;
    let mut result = spec;
    let fields = result.as_object_mut().context("spec is an object")?;
    fields.insert("impl".into(), json!("rust"));
    fields.insert("threads".into(), json!(tch::get_num_threads()));
    fields.insert("batch".into(), json!(images));
    fields.insert("step_s".into(), json!(step_s));
    fields.insert("images_per_s".into(), json!(images as f64 / step_s));
    fields.insert("peak_rss_mib".into(), json!(peak_rss_mib()?));
    if device.is_cuda() {
        // No allocator statistics through tch: the device's used memory after the run is
        // the caching allocator's peak reservation plus the context (the baseline reports
        // the same figure beside torch.cuda.max_memory_allocated).
        let (free, total) = swinface_torch_ext::cuda_mem_info()?;
        fields.insert(
            "device_used_mib".into(),
            json!((total - free) as f64 / (1u64 << 20) as f64),
        );
    }
    println!("{result}");
    Ok(())
}

/// The settings the PyTorch baseline needs to build the same step.
fn spec(config: &TrainConfig, device: Device) -> Result<serde_json::Value> {
    let m = &config.model;
    let d = &config.data;
    let pfc = &config.partial_fc;
    let opt = &config.optimizer;
    // What the baseline does not take from the spec must be the official structure.
    let official_swin = swinface_model::SwinConfig {
        img_size: m.swin.img_size,
        patch_size: m.swin.patch_size,
        embed_dim: m.swin.embed_dim,
        depths: m.swin.depths.clone(),
        num_heads: m.swin.num_heads.clone(),
        window_size: m.swin.window_size,
        drop_path_rate: m.swin.drop_path_rate,
        attention: m.swin.attention,
        ..Default::default()
    };
    anyhow::ensure!(
        m.swin == official_swin
            && m.fam_in_chans == m.feature_chans(swinface_model::FamFeature::All),
        "the PyTorch baseline builds the official structure (every FAM feature level, \
         mlp_ratio 4, qkv bias, no dropout or absolute position embedding): keep to it"
    );
    Ok(json!({
        "device": if device.is_cuda() { "cuda" } else { "cpu" },
        "amp": config.amp.mode(device),
        "model": {
            "img_size": m.swin.img_size,
            "patch_size": m.swin.patch_size,
            "embed_dim": m.swin.embed_dim,
            "depths": m.swin.depths,
            "num_heads": m.swin.num_heads,
            "window_size": m.swin.window_size,
            "drop_path_rate": m.swin.drop_path_rate,
            "embedding_size": m.embedding_size,
            "fam_feature_dim": m.fam_feature_dim,
            "tss_drop_rate": m.tss_drop_rate,
            "attention": m.swin.attention,
        },
        "batches": [d.recognition_bz, d.age_gender_bz, d.celeba_bz, d.expression_bz],
        "num_classes": pfc.num_classes,
        "sample_rate": pfc.sample_rate,
        "margin_list": [pfc.margin_list.0, pfc.margin_list.1, pfc.margin_list.2],
        "lr": opt.lr,
        "weight_decay": opt.weight_decay,
        "backbone_lr_scale": opt.backbone_lr_scale,
        "flat_buffers": opt.flat_buffers,
        "recognition_loss_weight": config.loss_weights.recognition_loss_weight,
        "analysis_loss_weights": config.loss_weights.analysis_loss_weights,
    }))
}

/// Fixed random images and labels of every stream (the data pipeline is measured apart).
fn random_batch(config: &TrainConfig) -> StepBatch {
    let d = &config.data;
    let [r, a, c, e] = [
        d.recognition_bz,
        d.age_gender_bz,
        d.celeba_bz,
        d.expression_bz,
    ]
    .map(|b| b as i64);
    let size = config.model.swin.img_size;
    tch::manual_seed(1);
    let cpu_float = (Kind::Float, Device::Cpu);
    let cpu_int = (Kind::Int64, Device::Cpu);
    StepBatch {
        images: Tensor::randn([r + a + c + e, 3, size, size], cpu_float),
        identities: Tensor::randint(config.partial_fc.num_classes, [r], cpu_int),
        analysis: Some(AnalysisLabels {
            ages: Tensor::rand([a, 1], cpu_float) * 100.0,
            genders: Tensor::randint(2, [a], cpu_int),
            attributes: Tensor::randint(2, [c, 40], cpu_int),
            expressions: Tensor::randint(7, [e], cpu_int),
        }),
    }
}

/// The process's peak resident set (VmHWM), in MiB.
pub fn peak_rss_mib() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line in /proc/self/status")?;
    Ok(kib / 1024.0)
}
