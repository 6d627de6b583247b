//! `swinface synth --out DIR`: writes a procedurally drawn face dataset in every format the
//! trainer reads (MS1MV2-like RecordIO, verification `.bin` pairs, age-gender lists, CelebA,
//! RAF-DB, AffectNet, CLAP2015, FG-NET) plus a data config pointing at it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use swinface_data::synth::{write_all, SynthConfig, DATA_CONFIG_NAME, MANIFEST_NAME};

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output directory; replaced when it is empty or holds an earlier `swinface synth` output.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Recognition (training) identities.
    #[arg(long, value_name = "N")]
    pub identities: Option<usize>,

    /// Images of each recognition identity.
    #[arg(long, value_name = "K")]
    pub images_per_identity: Option<usize>,

    /// Seed: the same seed writes byte-identical files.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Test-sized preset (a few hundred images of each kind) instead of the demo size.
    #[arg(long)]
    pub small: bool,

    /// Every size as YAML (the fields of the manifest's `config`); the other flags override it.
    #[arg(long, value_name = "FILE", conflicts_with = "small")]
    pub config: Option<PathBuf>,

    /// JPEG quality of the written images (1..=100).
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: Option<u8>,

    /// Drawing threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
}

fn config_of(args: &SynthArgs) -> anyhow::Result<SynthConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_yaml::from_str(&text)
                .with_context(|| format!("{} is not a synth configuration", path.display()))?
        }
        None if args.small => SynthConfig::small(),
        None => SynthConfig::default(),
    };
    if let Some(n) = args.identities {
        config.identities = n;
    }
    if let Some(k) = args.images_per_identity {
        config.images_per_identity = k;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(q) = args.jpeg_quality {
        config.jpeg_quality = q;
    }
    Ok(config)
}

pub fn run(args: &SynthArgs) -> anyhow::Result<ExitCode> {
    let config = config_of(args)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        pool = pool.num_threads(threads as usize);
    }
    let pool = pool.build().context("cannot start the drawing threads")?;
    let start = Instant::now();
    let manifest = pool
        .install(|| write_all(&args.out, &config))
        .with_context(|| format!("cannot write the dataset to {}", args.out.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let total = manifest.counts.get("total_images").copied().unwrap_or(0);
    println!(
        "wrote {total} images to {} in {seconds:.1} s ({:.0} images/s, seed {})",
        args.out.display(),
        total as f64 / seconds.max(1e-9),
        manifest.seed
    );
    for (name, count) in &manifest.counts {
        println!("  {name:<24} {count}");
    }
    println!(
        "manifest: {}\ndata config: {}",
        args.out.join(MANIFEST_NAME).display(),
        args.out.join(DATA_CONFIG_NAME).display()
    );
    Ok(ExitCode::SUCCESS)
}
