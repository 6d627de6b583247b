//! All selected evaluations in one pass, with their timings: what `swinface eval` reports and
//! the trainer's periodic evaluation logs.

use std::time::Instant;

use serde::Serialize;

use super::analysis::{
    evaluate_attributes, evaluate_clap, evaluate_expression, evaluate_fgnet, AgeResult,
    AttributeResult, ExpressionResult,
};
use super::bins::{evaluate_bin, VerificationResult};
use super::datasets::{EvalData, Task};
use super::error::EvalError;
use super::ijbc::{evaluate_ijb, IjbResult};
use super::runner::Runner;
use super::shard::Shard;

/// How long one evaluation took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub dataset: String,
    pub images: usize,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Every number of one evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalResults {
    pub shard: Shard,
    pub raf: Option<ExpressionResult>,
    pub clap: Option<AgeResult>,
    pub celeba: Option<AttributeResult>,
    pub verification: Vec<VerificationResult>,
    pub fgnet: Option<AgeResult>,
    pub ijbc: Option<IjbResult>,
    /// Tasks not run and why.
    pub skipped: Vec<(Task, String)>,
    pub timings: Vec<Timing>,
}

fn timed<T>(
    timings: &mut Vec<Timing>,
    dataset: &str,
    images: usize,
    run: impl FnOnce() -> Result<T, EvalError>,
) -> Result<T, EvalError> {
    let start = Instant::now();
    let result = run()?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!("{dataset}: {images} images in {seconds:.1} s");
    timings.push(Timing {
        dataset: dataset.to_owned(),
        images,
        seconds,
        images_per_second: images as f64 / seconds.max(1e-9),
    });
    Ok(result)
}

/// Runs every evaluation `data` holds.
pub fn run_all(runner: &Runner, data: &EvalData) -> Result<EvalResults, EvalError> {
    let mut timings = Vec::new();
    let t = &mut timings;
    let raf = data
        .raf
        .as_ref()
        .map(|l| timed(t, "RAF-DB", l.len(), || evaluate_expression(runner, l)))
        .transpose()?;
    let clap = data
        .clap
        .as_ref()
        .map(|l| timed(t, "CLAP2015", l.len(), || evaluate_clap(runner, l)))
        .transpose()?;
    let celeba = data
        .celeba
        .as_ref()
        .map(|l| timed(t, "CelebA", l.len(), || evaluate_attributes(runner, l)))
        .transpose()?;
    let verification = data
        .bins
        .iter()
        .map(|b| timed(t, &b.name, b.set.images.len(), || evaluate_bin(runner, b)))
        .collect::<Result<Vec<_>, _>>()?;
    let fgnet = data
        .fgnet
        .as_ref()
        .map(|l| timed(t, "FG-NET", l.len(), || evaluate_fgnet(runner, l)))
        .transpose()?;
    let ijbc = data
        .ijbc
        .as_ref()
        .map(|m| {
            m.check_exist()?;
            timed(t, &m.target, m.images.len(), || evaluate_ijb(runner, m))
        })
        .transpose()?;
    Ok(EvalResults {
        shard: runner.gather.shard(),
        raf,
        clap,
        celeba,
        verification,
        fgnet,
        ijbc,
        skipped: data.skipped.clone(),
        timings,
    })
}
