//! `swinface data check CONFIG`: reads every dataset the config names, composes the training
//! streams, decodes every image, prints a table, and exits non-zero when anything is wrong.
//!
//! Only the data keys of the YAML are read ([`DataConfig::keys`]); model and training keys
//! beside them are left to the trainer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use swinface_data::check::{check_data, CheckOptions};
use swinface_data::streams::DataConfig;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Check the configured datasets: counts, classes, label ranges, decode failures, stream
    /// composition. Exits with 1 when any dataset fails.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Training config (YAML with the official key names); only its data keys are read.
    #[arg(value_name = "CONFIG")]
    pub config: PathBuf,

    /// Decode at most this many images per dataset, evenly spread (default: every image).
    #[arg(long, value_name = "N")]
    pub max_images: Option<usize>,

    /// Decoding threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
}

pub fn run(command: &DataCommand) -> anyhow::Result<ExitCode> {
    match command {
        DataCommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let config = DataConfig::from_yaml_file(&args.config)
        .with_context(|| format!("cannot load the data config {}", args.config.display()))?;
    let options = CheckOptions {
        max_images: args.max_images,
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        pool = pool.num_threads(threads as usize);
    }
    let pool = pool.build().context("cannot start the decoding threads")?;
    let report = pool.install(|| check_data(&config, &options));
    print!("{}", report.render());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
