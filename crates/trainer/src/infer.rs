//! `swinface infer`: predictions for face images from a checkpoint.

mod landmarks;
mod report;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use swinface_data::preprocess::{load_face, to_normalised_tensor, DecodeLimits, FaceCrop};
use swinface_model::{SwinFace, SwinFaceConfig, TASK_NAMES};
use tch::{nn, Device, Kind, Tensor};

use crate::cli::{InferArgs, OutputFormat};
use landmarks::LandmarkTable;
use report::{predict, write_table, Extras, Prediction};

pub fn run(args: &InferArgs) -> Result<ExitCode> {
    let device = args.device.device()?;
    let cfg = load_config(args.config.as_deref())?;
    let landmarks = args.landmarks.as_deref().map(read_landmarks).transpose()?;
    let (model, _vs) = load_model(&args.checkpoint, &cfg, device)?;
    let limits = DecodeLimits {
        max_width: args.max_image_side,
        max_height: args.max_image_side,
        max_pixels: args.max_image_megapixels.saturating_mul(1_000_000),
    };
    let extras = Extras {
        raw: args.raw,
        embedding: args.embedding,
    };

    let mut stdout = std::io::stdout().lock();
    let mut collected = Vec::new();
    let mut failures = 0usize;
    for chunk in args.images.chunks(args.batch_size as usize) {
        let mut faces = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        for path in chunk {
            match prepare_face(path, landmarks.as_ref(), &limits) {
                Ok(face) => {
                    faces.push(face);
                    names.push(path.display().to_string());
                }
                Err(err) => {
                    tracing::error!("{}", crate::render_error(&err));
                    failures += 1;
                }
            }
        }
        if faces.is_empty() {
            continue;
        }
        let input = to_normalised_tensor(&faces)?.f_to_device(device)?;
        let predictions = predict_batch(&model, &input, names, extras)?;
        match args.format {
            OutputFormat::Table => {
                for p in &predictions {
                    write_table(&mut stdout, p)?;
                }
                stdout.flush()?;
            }
            OutputFormat::Json => collected.extend(predictions),
        }
    }
    if args.format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut stdout, &collected)?;
        writeln!(stdout)?;
    }
    stdout.flush()?;

    if failures > 0 {
        tracing::error!(
            "{failures} of {} images could not be processed",
            args.images.len()
        );
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn load_config(path: Option<&Path>) -> Result<SwinFaceConfig> {
    let Some(path) = path else {
        return Ok(SwinFaceConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model config {}", path.display()))?;
    let cfg: SwinFaceConfig = match serde_yaml::from_str(&text) {
        Ok(cfg) => cfg,
        // A whole training config (the `config.yaml` saved beside checkpoints) holds the
        // model keys among the others: take its model part.
        Err(model_only) => match crate::train::config::TrainConfig::load(path, &[]) {
            Ok(train) => train.model,
            Err(_) => {
                return Err(model_only)
                    .with_context(|| format!("invalid model config {}", path.display()))
            }
        },
    };
    cfg.validate()
        .with_context(|| format!("invalid model config {}", path.display()))?;
    Ok(cfg)
}

fn read_landmarks(path: &Path) -> Result<LandmarkTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read landmarks file {}", path.display()))?;
    let table = LandmarkTable::parse(&text)
        .with_context(|| format!("invalid landmarks file {}", path.display()))?;
    tracing::info!("landmarks for {} images in {}", table.len(), path.display());
    Ok(table)
}

/// Builds the model for `cfg` on `device` and fills it from `checkpoint`. The VarStore is
/// returned because it owns the weights.
fn load_model(
    checkpoint: &Path,
    cfg: &SwinFaceConfig,
    device: Device,
) -> Result<(SwinFace, nn::VarStore)> {
    let mut vs = nn::VarStore::new(device);
    let model = SwinFace::new(&vs.root(), cfg).context("cannot build the model")?;
    let report = swinface_model::checkpoint::load_any(checkpoint, &mut vs)
        .with_context(|| format!("cannot load checkpoint {}", checkpoint.display()))?;
    tracing::info!(
        "loaded {} tensors from {} ({} converted to the model's type)",
        report.loaded.len(),
        checkpoint.display(),
        report.converted.len()
    );
    Ok((model, vs))
}

/// Decodes one image and brings it to 112x112: aligned when landmarks are given, else
/// resized.
fn prepare_face(
    path: &Path,
    landmarks: Option<&LandmarkTable>,
    limits: &DecodeLimits,
) -> Result<swinface_data::preprocess::RgbImage> {
    let crop = match landmarks {
        None => FaceCrop::Resize,
        Some(table) => match table.get(path) {
            Some(points) => FaceCrop::Align(points),
            None => bail!("no landmarks for image {}", path.display()),
        },
    };
    Ok(load_face(path, crop, limits)?)
}

/// input: [B, 3, 112, 112] -> one prediction per image, in order.
fn predict_batch(
    model: &SwinFace,
    input: &Tensor,
    names: Vec<String>,
    extras: Extras,
) -> Result<Vec<Prediction>> {
    let output = tch::no_grad(|| model.f_forward_t(input, false))?;
    if output.heads.len() != TASK_NAMES.len() {
        bail!(
            "the model returned {} outputs, expected {}",
            output.heads.len(),
            TASK_NAMES.len()
        );
    }
    let batch = names.len();
    // Each head as [B, width] on the CPU, flattened.
    let mut heads = Vec::with_capacity(output.heads.len());
    for head in &output.heads {
        let flat = head
            .f_to_kind(Kind::Float)?
            .f_to_device(Device::Cpu)?
            .f_contiguous()?
            .f_view([-1])?;
        let values = Vec::<f32>::try_from(&flat)?;
        if values.len() % batch != 0 {
            bail!(
                "a model output has {} values for {batch} images",
                values.len()
            );
        }
        heads.push(values);
    }
    names
        .into_iter()
        .enumerate()
        .map(|(b, name)| {
            let per_image: Vec<&[f32]> = heads
                .iter()
                .map(|values| {
                    let width = values.len() / batch;
                    &values[b * width..(b + 1) * width]
                })
                .collect();
            Ok(predict(name, &per_image, extras)?)
        })
        .collect()
}
