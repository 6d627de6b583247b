//! The analysis evaluators (the official `RAFVerification`, `CelebAVerification`,
//! `LAPVerification`, `FGNetVerification`): a label list, the matching heads of the model, and
//! the metric over the whole set (gathered from every rank, in list order).

use std::path::PathBuf;

use serde::Serialize;
use swinface_data::attributes::SWINFACE_ATTRIBUTES;
use swinface_data::formats::celeba::Attributes;
use swinface_data::formats::lap::ApparentAge;
use swinface_data::formats::LabelList;
use swinface_model::{task_index, EXPRESSION_LABELS};

use super::error::EvalError;
use super::images::{for_each_batch, ListImages};
use super::metrics::age::{self, AgeMetrics};
use super::metrics::classification::{
    argmax, attribute_metrics, expression_metrics, AttributeMetrics, ExpressionMetrics,
    ExpressionSample,
};
use super::runner::Runner;
use super::shard::{gather_in_order, Row};

/// Runs the model over a label list's images and returns, per image in list order, the
/// values `extract` keeps from the outputs at `heads` (one slice per head).
fn per_image_rows<L>(
    runner: &Runner,
    dataset: &str,
    list: &LabelList<L>,
    heads: &[usize],
    extract: impl Fn(&[&[f32]]) -> Vec<f32>,
) -> Result<Vec<Row>, EvalError> {
    let images = ListImages::new(list, runner.limits);
    let shard = runner.gather.shard();
    images.check_exist(shard)?;
    let mut rows = Vec::new();
    for_each_batch(
        &images,
        shard,
        runner.batch_size,
        &runner.transform,
        |batch| {
            let outputs = runner.heads(dataset, &batch.input, heads)?;
            let n = batch.indices.len();
            for (k, &index) in batch.indices.iter().enumerate() {
                let per_head: Vec<&[f32]> = outputs
                    .iter()
                    .map(|o| {
                        let width = o.len() / n;
                        &o[k * width..(k + 1) * width]
                    })
                    .collect();
                rows.push(Row {
                    index,
                    values: extract(&per_head),
                });
            }
            Ok(())
        },
    )?;
    gather_in_order(runner.gather, rows, list.len())
}

fn head(dataset: &str, name: &str) -> Result<usize, EvalError> {
    task_index(name).ok_or_else(|| EvalError::ModelOutput {
        dataset: dataset.to_owned(),
        message: format!("no output named {name:?}"),
    })
}

/// RAF-DB test results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpressionResult {
    pub label_file: PathBuf,
    pub classes: Vec<&'static str>,
    pub metrics: ExpressionMetrics,
}

pub fn evaluate_expression(
    runner: &Runner,
    list: &LabelList<u8>,
) -> Result<ExpressionResult, EvalError> {
    const DATASET: &str = "RAF-DB";
    let rows = per_image_rows(
        runner,
        DATASET,
        list,
        &[head(DATASET, "Expression")?],
        |o| o[0].to_vec(),
    )?;
    let samples = rows
        .iter()
        .zip(&list.entries)
        .map(|(row, entry)| ExpressionSample::from_logits(&row.values, usize::from(entry.label)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EvalError::metric(DATASET))?;
    Ok(ExpressionResult {
        label_file: list.label_file.clone(),
        classes: EXPRESSION_LABELS.to_vec(),
        metrics: expression_metrics(&samples, EXPRESSION_LABELS.len())
            .map_err(EvalError::metric(DATASET))?,
    })
}

/// CelebA test results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeResult {
    pub label_file: PathBuf,
    /// In SwinFace's task order.
    pub attributes: Vec<&'static str>,
    pub metrics: AttributeMetrics,
}

pub fn evaluate_attributes(
    runner: &Runner,
    list: &LabelList<Attributes>,
) -> Result<AttributeResult, EvalError> {
    const DATASET: &str = "CelebA";
    let heads = SWINFACE_ATTRIBUTES
        .iter()
        .map(|name| head(DATASET, name))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = per_image_rows(runner, DATASET, list, &heads, |o| {
        o.iter().map(|logits| argmax(logits) as f32).collect()
    })?;
    let predictions: Vec<Attributes> = rows
        .iter()
        .map(|r| std::array::from_fn(|a| u8::from(r.values[a] != 0.0)))
        .collect();
    let labels: Vec<Attributes> = list.entries.iter().map(|e| e.label).collect();
    Ok(AttributeResult {
        label_file: list.label_file.clone(),
        attributes: SWINFACE_ATTRIBUTES.to_vec(),
        metrics: attribute_metrics(&predictions, &labels).map_err(EvalError::metric(DATASET))?,
    })
}

/// FG-NET or CLAP2015 results, with the signed errors for the histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeResult {
    pub label_file: PathBuf,
    pub metrics: AgeMetrics,
    /// prediction - label per image (kept for the plot, not written to the JSON).
    #[serde(skip)]
    pub errors: Vec<f64>,
}

fn age_predictions<L>(
    runner: &Runner,
    dataset: &str,
    list: &LabelList<L>,
) -> Result<Vec<f64>, EvalError> {
    let rows = per_image_rows(runner, dataset, list, &[head(dataset, "Age")?], |o| {
        o[0].to_vec()
    })?;
    Ok(rows
        .iter()
        .map(|r| r.values.first().map_or(f64::NAN, |&v| f64::from(v)))
        .collect())
}

/// FG-NET: MAE over all images (the official callback logs rank 0's shard).
pub fn evaluate_fgnet(runner: &Runner, list: &LabelList<f32>) -> Result<AgeResult, EvalError> {
    const DATASET: &str = "FG-NET";
    let pred = age_predictions(runner, DATASET, list)?;
    let labels: Vec<f64> = list.entries.iter().map(|e| f64::from(e.label)).collect();
    let metrics = age::mae(&pred, &labels).map_err(EvalError::metric(DATASET))?;
    Ok(AgeResult {
        label_file: list.label_file.clone(),
        errors: pred.iter().zip(&labels).map(|(p, y)| p - y).collect(),
        metrics,
    })
}

/// CLAP2015: MAE and epsilon-error over all images.
pub fn evaluate_clap(
    runner: &Runner,
    list: &LabelList<ApparentAge>,
) -> Result<AgeResult, EvalError> {
    const DATASET: &str = "CLAP2015";
    let pred = age_predictions(runner, DATASET, list)?;
    let mean: Vec<f64> = list
        .entries
        .iter()
        .map(|e| f64::from(e.label.mean))
        .collect();
    let std: Vec<f64> = list
        .entries
        .iter()
        .map(|e| f64::from(e.label.std))
        .collect();
    let metrics = age::clap(&pred, &mean, &std).map_err(EvalError::metric(DATASET))?;
    Ok(AgeResult {
        label_file: list.label_file.clone(),
        errors: pred.iter().zip(&mean).map(|(p, y)| p - y).collect(),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use swinface_data::formats::raf::{read_raf, RafSplit};
    use swinface_model::{SwinFace, SwinFaceConfig};
    use tch::{nn, Device};

    use super::*;
    use crate::eval::shard::{Gather, Shard, SingleProcess};

    /// Rank `shard` of a simulated run: `all_gather` stores this rank's rows in `pool` and
    /// returns everything stored so far (the last rank to run sees every row).
    struct Simulated<'a> {
        shard: Shard,
        pool: &'a Mutex<Vec<Row>>,
    }

    impl Gather for Simulated<'_> {
        fn shard(&self) -> Shard {
            self.shard
        }
        fn all_gather(&self, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
            let mut pool = self.pool.lock().unwrap();
            pool.extend(rows);
            Ok(pool.clone())
        }
    }

    #[test]
    fn sharded_evaluation_equals_the_single_process_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut labels = String::new();
        for i in 0..11u32 {
            let img = image::RgbImage::from_fn(112, 112, |x, y| {
                image::Rgb([
                    (x * 2 + i * 20) as u8,
                    (y * 2) as u8,
                    ((x + y + i * 7) % 256) as u8,
                ])
            });
            let name = format!("test_{i:05}.png");
            img.save(dir.path().join(&name)).unwrap();
            labels.push_str(&format!("{name} {}\n", 1 + i % 7));
        }
        let label_file = dir.path().join("list_patition_label.txt");
        std::fs::write(&label_file, labels).unwrap();
        let list = read_raf(&label_file, dir.path(), RafSplit::Test).unwrap();
        assert_eq!(list.len(), 11);

        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = SwinFace::new(&vs.root(), &SwinFaceConfig::tiny_demo()).unwrap();
        let runner = |gather: &'static dyn Gather| Runner {
            model: &model,
            device: Device::Cpu,
            batch_size: 4,
            transform: Default::default(),
            limits: Default::default(),
            gather,
        };
        let single = evaluate_expression(&runner(&SingleProcess), &list).unwrap();

        let pool: &'static Mutex<Vec<Row>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let rank = |r| -> &'static Simulated<'static> {
            Box::leak(Box::new(Simulated {
                shard: Shard::new(r, 3).unwrap(),
                pool,
            }))
        };
        // Ranks 2 and 1 gather incomplete sets (an error); rank 0, last, sees every row.
        assert!(evaluate_expression(&runner(rank(2)), &list).is_err());
        assert!(evaluate_expression(&runner(rank(1)), &list).is_err());
        let sharded = evaluate_expression(&runner(rank(0)), &list).unwrap();
        // Batches differ between the runs (a shard's batch holds other images), so float
        // kernels may round differently: counts must agree, the loss to float32 noise.
        assert_eq!(sharded.metrics.confusion, single.metrics.confusion);
        assert_eq!(sharded.metrics.top5, single.metrics.top5);
        assert!((sharded.metrics.loss - single.metrics.loss).abs() < 1e-5);
        assert_eq!(single.metrics.samples, 11);
    }
}
