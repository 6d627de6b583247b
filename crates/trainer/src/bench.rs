//! `swinface bench ...`: benchmarks that print JSON lines for the scripts in `scripts/`,
//! which run the PyTorch baselines beside them and print the ratios.

use anyhow::Result;

use crate::bench_data::{self, DataBenchArgs};
use crate::bench_forward::{self, ForwardBenchArgs};
use crate::bench_train::{self, TrainBenchArgs};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Images/s of the full model's eval forward pass.
    Forward(ForwardBenchArgs),
    /// Images/s (and per core) of JPEG decoding plus the analysis training augmentation.
    Data(DataBenchArgs),
    /// Images/s of the verification evaluation on an LFW-style .bin (and the time for 12,000).
    Eval(crate::eval::bench::EvalBenchArgs),
    /// Images/s and peak memory of the multi-task train step on fixed random batches.
    Train(TrainBenchArgs),
}

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Forward(args) => bench_forward::run(args),
        BenchCommand::Data(args) => bench_data::run(args),
        BenchCommand::Eval(args) => crate::eval::bench::run(args),
        BenchCommand::Train(args) => bench_train::run(args),
    }
}
