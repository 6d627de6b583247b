//! `swinface eval`: every configured protocol for one checkpoint, written as JSON, Markdown
//! and PNG plots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use swinface_data::augment::EvalTransform;
use swinface_model::SwinFace;
use tch::{nn, Device};

use super::config::load_eval_config;
use super::datasets::{EvalData, Task};
use super::report::{write_report, ReportHeader};
use super::runner::Runner;
use super::shard::SingleProcess;
use super::suite::{run_all, EvalResults};
use crate::cli::DeviceChoice;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Checkpoint: the official release (`.pt`) or one written by this program.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,

    /// YAML config with the model keys and the dataset paths (official names: RAF_data,
    /// RAF_label, CLAP_test_data, CLAP_test_label, CelebA_test_data, CelebA_test_label,
    /// FGnet_data, FGnet_label, rec + val_targets for the .bin sets, IJBC_path, val_batch_size).
    #[arg(long, value_name = "CFG.yaml")]
    pub config: PathBuf,

    /// Evaluations to run (comma-separated); default: every one the config sets up.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "TASKS")]
    pub only: Vec<Task>,

    /// Folder for results.json, report.md and the plots.
    #[arg(long, value_name = "DIR", default_value = "eval")]
    pub out: PathBuf,

    /// Images per forward pass; default: the config's val_batch_size.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: Option<u32>,

    /// IJB-C root (meta/ and loose_crop/); overrides IJBC_path.
    #[arg(long, value_name = "DIR")]
    pub ijbc: Option<PathBuf>,

    /// Device to run on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// Builds the model of `cfg` on `device` and loads `checkpoint` into it; the VarStore owns
/// the weights.
pub fn load_model(
    checkpoint: &Path,
    cfg: &swinface_model::SwinFaceConfig,
    device: Device,
) -> Result<(SwinFace, nn::VarStore)> {
    let mut vs = nn::VarStore::new(device);
    let model = SwinFace::new(&vs.root(), cfg).context("cannot build the model")?;
    swinface_model::checkpoint::load_any(checkpoint, &mut vs)
        .with_context(|| format!("cannot load checkpoint {}", checkpoint.display()))?;
    Ok((model, vs))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let mut cfg = load_eval_config(&args.config)?;
    if let Some(root) = &args.ijbc {
        cfg.settings.ijbc_path = Some(root.clone());
    }
    let (tasks, required) = if args.only.is_empty() {
        (Task::ALL.to_vec(), false)
    } else {
        (args.only.clone(), true)
    };
    let data = EvalData::load(&cfg, &tasks, required)?;
    if data.image_count() == 0 {
        bail!(
            "nothing to evaluate: {} sets up none of {}",
            args.config.display(),
            tasks
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let device = args.device.device()?;
    let (model, _vs) = load_model(&args.checkpoint, &cfg.model, device)?;
    let img_size = u32::try_from(cfg.model.swin.img_size).context("model img_size")?;
    if img_size != cfg.data.img_size {
        tracing::warn!(
            "img_size {} differs from the model's {img_size}: images are resized to {img_size}",
            cfg.data.img_size
        );
    }
    let batch_size = args
        .batch_size
        .map_or(cfg.settings.val_batch_size, |b| b as usize);
    let runner = Runner {
        model: &model,
        device,
        batch_size,
        transform: EvalTransform {
            img_size,
            ..EvalTransform::default()
        },
        limits: cfg.data.decode_limits,
        gather: &SingleProcess,
    };
    let results = run_all(&runner, &data)?;
    let header = ReportHeader {
        checkpoint: args.checkpoint.clone(),
        config: args.config.clone(),
        device: format!("{device:?}"),
        version: env!("CARGO_PKG_VERSION"),
    };
    let written = write_report(&args.out, &header, &results)?;
    print_summary(&results);
    println!("wrote {}", written.json.display());
    println!("wrote {}", written.markdown.display());
    for p in &written.plots {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// One line per benchmark on stdout.
fn print_summary(r: &EvalResults) {
    if let Some(raf) = &r.raf {
        let m = &raf.metrics;
        println!(
            "RAF-DB: top-1 {:.2} %, top-5 {:.2} %, mean class accuracy {:.2} %",
            100.0 * m.top1,
            100.0 * m.top5,
            100.0 * m.mean_class_accuracy
        );
    }
    if let Some(clap) = &r.clap {
        println!(
            "CLAP2015: MAE {:.3}, epsilon-error {:.4}",
            clap.metrics.mae,
            clap.metrics.epsilon_error.unwrap_or(f64::NAN)
        );
    }
    if let Some(c) = &r.celeba {
        println!("CelebA: mean accuracy {:.2} %", 100.0 * c.metrics.mean);
    }
    for v in &r.verification {
        println!(
            "{}: accuracy {:.5} +- {:.5}",
            v.name, v.metrics.accuracy, v.metrics.accuracy_std
        );
    }
    if let Some(f) = &r.fgnet {
        println!("FG-NET: MAE {:.3}", f.metrics.mae);
    }
    if let Some(i) = &r.ijbc {
        let row: Vec<String> = i
            .tar_at_far
            .iter()
            .map(|(far, tar)| format!("{far:e}: {:.2} %", 100.0 * tar))
            .collect();
        println!("{}: TAR at FAR {}", i.target, row.join(", "));
    }
}
