//! The model in evaluation mode: its heads or its recognition embedding for a batch, brought
//! back to the CPU as float32.

use swinface_data::augment::EvalTransform;
use swinface_data::preprocess::DecodeLimits;
use swinface_model::{SwinFace, TASK_NAMES};
use tch::{Device, Kind, Tensor};

use super::error::EvalError;
use super::shard::Gather;

/// What every evaluator needs: the model, where it runs, how images are prepared and how
/// ranks share the work.
pub struct Runner<'a> {
    pub model: &'a SwinFace,
    pub device: Device,
    /// Images per forward pass (`val_batch_size`).
    pub batch_size: usize,
    pub transform: EvalTransform,
    pub limits: DecodeLimits,
    pub gather: &'a dyn Gather,
}

impl Runner<'_> {
    /// input: [B, 3, S, S] -> the outputs at `heads` (positions in [`TASK_NAMES`]), each
    /// [B, width] flattened row-major.
    pub fn heads(
        &self,
        dataset: &str,
        input: &Tensor,
        heads: &[usize],
    ) -> Result<Vec<Vec<f32>>, EvalError> {
        let input = input
            .f_to_device(self.device)
            .map_err(EvalError::model(dataset))?;
        let output = tch::no_grad(|| self.model.f_forward_t(&input, false)).map_err(|e| {
            EvalError::ModelOutput {
                dataset: dataset.to_owned(),
                message: e.to_string(),
            }
        })?;
        if output.heads.len() != TASK_NAMES.len() {
            return Err(EvalError::ModelOutput {
                dataset: dataset.to_owned(),
                message: format!(
                    "{} outputs, expected {}",
                    output.heads.len(),
                    TASK_NAMES.len()
                ),
            });
        }
        heads
            .iter()
            .map(|&h| to_cpu_f32(dataset, &output.heads[h]))
            .collect()
    }

    /// input: [B, 3, S, S] -> the recognition embeddings of the images and of their
    /// horizontal flips, each [B, dim] flattened, and dim.
    pub fn embeddings_with_flip(
        &self,
        dataset: &str,
        input: &Tensor,
    ) -> Result<(Vec<f32>, Vec<f32>, usize), EvalError> {
        let input = input
            .f_to_device(self.device)
            .map_err(EvalError::model(dataset))?;
        let flipped = input.f_flip([3]).map_err(EvalError::model(dataset))?;
        // One forward pass over [images; flips]: in eval mode each row is independent.
        let both = Tensor::f_cat(&[&input, &flipped], 0).map_err(EvalError::model(dataset))?;
        self.model
            .check_input(&both)
            .map_err(|e| EvalError::ModelOutput {
                dataset: dataset.to_owned(),
                message: e.to_string(),
            })?;
        let embedding = tch::no_grad(|| self.model.backbone().forward_t(&both, false).embedding);
        let dim = embedding.size().last().copied().unwrap_or(0) as usize;
        let values = to_cpu_f32(dataset, &embedding)?;
        let (plain, flipped) = values.split_at(values.len() / 2);
        let (plain, flipped) = (plain.to_vec(), flipped.to_vec());
        Ok((plain, flipped, dim))
    }
}

fn to_cpu_f32(dataset: &str, t: &Tensor) -> Result<Vec<f32>, EvalError> {
    let flat = t
        .f_to_kind(Kind::Float)
        .and_then(|t| t.f_to_device(Device::Cpu))
        .and_then(|t| t.f_contiguous())
        .and_then(|t| t.f_view([-1]))
        .map_err(EvalError::model(dataset))?;
    Vec::<f32>::try_from(&flat).map_err(EvalError::model(dataset))
}
