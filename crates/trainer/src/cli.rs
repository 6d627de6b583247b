//! Command line of the `swinface` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// SwinFace: face recognition and facial attribute analysis with one Swin transformer.
#[derive(Debug, Parser)]
#[command(name = "swinface", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train SwinFace from a YAML config (multi-task, or the recognition pretraining stage).
    Train(crate::train::TrainArgs),
    /// Start this node's ranks of a data-parallel run, as torchrun does:
    /// `launch --nproc_per_node 2 -- train CONFIG.yaml`.
    Launch(crate::launch::LaunchArgs),
    /// Predict age, gender, expression and 40 attributes (and the embedding) for face images.
    Infer(InferArgs),
    /// Dataset tools: `data check CONFIG` reads, composes and decodes every configured dataset.
    #[command(subcommand)]
    Data(crate::data_check::DataCommand),
    /// Evaluate a checkpoint on the standard protocols (RAF-DB, CLAP2015, CelebA, the
    /// verification .bin sets, FG-NET, IJB-C); writes results.json, report.md and PNG plots.
    Eval(crate::eval::EvalArgs),
    /// Write a procedurally drawn face dataset in every format the trainer reads.
    Synth(crate::synth::SynthArgs),
    /// Benchmarks (JSON lines; scripts/bench_*.sh put PyTorch beside them).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable aligned table per image.
    Table,
    /// A JSON array with one object per image.
    Json,
}

/// Where the model runs (a flag, and the training config's `device`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    /// The device, or an error when CUDA is asked for and missing.
    pub fn device(self) -> anyhow::Result<tch::Device> {
        Ok(match self {
            DeviceChoice::Auto => tch::Device::cuda_if_available(),
            DeviceChoice::Cpu => tch::Device::Cpu,
            DeviceChoice::Cuda if tch::Cuda::is_available() => tch::Device::Cuda(0),
            DeviceChoice::Cuda => {
                anyhow::bail!("device cuda was requested but CUDA is not available")
            }
        })
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = LANDMARKS_HELP)]
pub struct InferArgs {
    /// Checkpoint: the official release (`.pt` with state_dict_backbone/fam/tss/om) or one
    /// written by this program.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,

    /// Model configuration (YAML, official field names); default: the released model.
    #[arg(long, value_name = "CFG.yaml")]
    pub config: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Also print every raw model output (all 43, by official name).
    #[arg(long)]
    pub raw: bool,

    /// Also print the L2-normalised recognition embedding.
    #[arg(long)]
    pub embedding: bool,

    /// Five facial landmarks per image; the face is aligned onto the ArcFace template
    /// instead of resizing the whole image (format below).
    #[arg(long, value_name = "FILE")]
    pub landmarks: Option<PathBuf>,

    /// Images per forward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,

    /// Device to run on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,

    /// Refuse images wider or taller than this (checked before decoding).
    #[arg(long, default_value_t = 16384, value_name = "PIXELS")]
    pub max_image_side: u32,

    /// Refuse images with more pixels than this many millions (checked before decoding).
    #[arg(long, default_value_t = 256, value_name = "MEGAPIXELS")]
    pub max_image_megapixels: u64,

    /// Face images (JPEG or PNG). Without --landmarks each is taken to be a face crop and is
    /// resized to 112x112 as the official inference does (cv2 bilinear).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

const LANDMARKS_HELP: &str = "\
Landmarks file (--landmarks): one line per image,
    IMAGE_PATH x1 y1 x2 y2 x3 y3 x4 y4 x5 y5
the path exactly as given on the command line (it may contain spaces; the last ten fields are
the numbers), then the pixel coordinates of the left eye, right eye, nose tip, left and right
mouth corners (as insightface's detectors report them). Blank lines and lines starting with
'#' are ignored.

Exit status: 0 when every image was processed; 1 when an image could not be processed (the
others are still printed) or the run failed; 2 for a usage error.";
