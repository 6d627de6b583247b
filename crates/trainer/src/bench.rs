//! `swinface bench ...`: benchmarks that print JSON lines for the scripts in `scripts/`,
//! which run the PyTorch baselines beside them and print the ratios.

use anyhow::Result;

use crate::bench_forward::{self, ForwardBenchArgs};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Images/s of the full model's eval forward pass.
    Forward(ForwardBenchArgs),
}

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Forward(args) => bench_forward::run(args),
    }
}
