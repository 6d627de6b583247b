//! Verification sets (insightface `.bin`: LFW, CFP-FP, AgeDB-30, CALFW, CPLFW) as the official
//! `CallBackVerification` tests them: every image and its horizontal flip embedded, the two
//! embeddings added and L2-normalised, then the 10-fold protocol.

use std::path::PathBuf;

use serde::Serialize;
use swinface_data::formats::verification_bin::VerificationSet;

use super::error::EvalError;
use super::images::{for_each_batch, BinImages};
use super::metrics::verification::{evaluate, flip_sum_normalise, VerificationMetrics, FOLDS};
use super::runner::Runner;
use super::shard::{gather_in_order, Row};

/// A loaded `.bin` and its name (`lfw`, `cfp_fp`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedBin {
    pub name: String,
    pub path: PathBuf,
    pub set: VerificationSet,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationResult {
    pub name: String,
    pub path: PathBuf,
    pub images: usize,
    pub metrics: VerificationMetrics,
}

pub fn evaluate_bin(runner: &Runner, bin: &NamedBin) -> Result<VerificationResult, EvalError> {
    let dataset = bin.name.as_str();
    let set = BinImages {
        path: &bin.path,
        images: &bin.set.images,
        limits: runner.limits,
    };
    let shard = runner.gather.shard();
    let mut rows = Vec::new();
    for_each_batch(&set, shard, runner.batch_size, &runner.transform, |batch| {
        let (plain, flipped, d) = runner.embeddings_with_flip(dataset, &batch.input)?;
        for (k, &index) in batch.indices.iter().enumerate() {
            let mut values = plain[k * d..(k + 1) * d].to_vec();
            values.extend_from_slice(&flipped[k * d..(k + 1) * d]);
            rows.push(Row { index, values });
        }
        Ok(())
    })?;
    let rows = gather_in_order(runner.gather, rows, bin.set.images.len())?;
    let dim = rows.first().map_or(0, |r| r.values.len() / 2);
    let mut plain = Vec::with_capacity(rows.len() * dim);
    let mut flipped = Vec::with_capacity(rows.len() * dim);
    for r in &rows {
        plain.extend_from_slice(&r.values[..dim]);
        flipped.extend_from_slice(&r.values[dim..]);
    }
    let metric = EvalError::metric(dataset);
    let (embeddings, xnorm) = flip_sum_normalise(&plain, &flipped, dim).map_err(metric)?;
    let metrics = evaluate(&embeddings, dim, &bin.set.issame, FOLDS, xnorm)
        .map_err(EvalError::metric(dataset))?;
    Ok(VerificationResult {
        name: bin.name.clone(),
        path: bin.path.clone(),
        images: bin.set.images.len(),
        metrics,
    })
}
