//! `swinface bench forward`: images/s of the full model's eval forward pass.
//!
//! Prints one JSON line in the same shape as `scripts/baseline/bench_forward.py`, so that
//! `scripts/bench_forward.sh` can run both in one go and print the ratio.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use swinface_model::{SwinFace, SwinFaceConfig};
use tch::{nn, Device, Kind, Tensor};

#[derive(Debug, clap::Args)]
pub struct ForwardBenchArgs {
    /// Batch sizes to measure.
    #[arg(long, num_args = 1.., default_values_t = [1, 32])]
    pub batch: Vec<i64>,
    /// Timed repetitions per batch size (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Model configuration (YAML); default: the released model.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

pub fn run(args: &ForwardBenchArgs) -> Result<()> {
    let device = match args.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => anyhow::bail!("unknown device {other:?} (cpu or cuda)"),
    };
    let cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_yaml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?
        }
        None => SwinFaceConfig::default(),
    };
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = SwinFace::new(&vs.root(), &cfg).context("cannot build the model")?;
    let mut images_per_s = serde_json::Map::new();
    for &batch in &args.batch {
        let x = Tensor::randn([batch, 3, 112, 112], (Kind::Float, device));
        let mut times = Vec::with_capacity(args.reps);
        for i in 0..args.warmup + args.reps {
            let start = Instant::now();
            let out = tch::no_grad(|| model.forward_t(&x, false));
            // Reading one value waits for the device, like torch.cuda.synchronize.
            let _ = out.embedding.double_value(&[0, 0]);
            if i >= args.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        images_per_s.insert(batch.to_string(), json!(batch as f64 / median));
    }
    let result = json!({
        "impl": "rust",
        "threads": tch::get_num_threads(),
        "images_per_s": images_per_s,
        "peak_rss_mib": crate::bench_train::peak_rss_mib()?,
    });
    println!("{result}");
    Ok(())
}
