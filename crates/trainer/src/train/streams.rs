//! The training streams' loaders, walked together: an epoch ends when the shortest stream
//! ends, and all streams then start their next epoch together (the official loop zips the
//! loaders). A step's batches depend only on (seed, epoch, position, rank), so a resume at a
//! step yields exactly the batches an uninterrupted run would.

use anyhow::{bail, Context, Result};
use swinface_data::augment::{AnalysisTransform, RecognitionTransform, Transform};
use swinface_data::formats::age_gender::AgeGender;
use swinface_data::formats::celeba::Attributes;
use swinface_data::loader::{Batch, Batches, DataLoader, Dataset, LoaderConfig, SamplerConfig};
use tch::Tensor;

use super::config::{Stage, TrainConfig};
use super::datasets::{AnalysisData, RecognitionData, StreamData};
use super::learner::{AnalysisLabels, StepBatch};

/// Where the data of a step comes from: epoch and batch position within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataPosition {
    pub epoch: u64,
    pub position: usize,
}

struct AnalysisLoaders {
    age_gender: DataLoader<StreamData<AgeGender>, AnalysisTransform>,
    celeba: DataLoader<StreamData<Attributes>, AnalysisTransform>,
    expression: DataLoader<StreamData<u8>, AnalysisTransform>,
}

/// Every stream's loader for one rank.
pub struct Streams {
    recognition: DataLoader<RecognitionData, RecognitionTransform>,
    analysis: Option<AnalysisLoaders>,
    steps_per_epoch: usize,
    info: Vec<StreamInfo>,
}

/// Per-stream sizes, for the start-up report.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: &'static str,
    pub samples: usize,
    pub batch_size: usize,
    pub batches_per_epoch: usize,
}

fn loader_config(config: &TrainConfig, batch_size: u64, pin_memory: bool) -> LoaderConfig {
    LoaderConfig {
        batch_size: batch_size as usize,
        sampler: SamplerConfig {
            shuffle: true,
            seed: config.data.seed as u64,
            drop_last: false,
        },
        num_threads: config.train.num_workers,
        max_bad_fraction: config.data.max_bad_image_fraction,
        decode_limits: config.data.decode_limits,
        pin_memory,
        ..LoaderConfig::default()
    }
}

fn stream_info<D: Dataset + 'static, T: Transform + 'static>(
    name: &'static str,
    loader: &DataLoader<D, T>,
    batch_size: u64,
) -> StreamInfo {
    StreamInfo {
        name,
        samples: loader.dataset().len(),
        batch_size: batch_size as usize,
        batches_per_epoch: loader.batches_per_epoch(),
    }
}

fn check_size<D: Dataset>(name: &str, dataset: &D, batch: u64, world_size: usize) -> Result<()> {
    let per_rank = dataset.len() / world_size.max(1);
    if (per_rank as u64) < batch {
        bail!(
            "the {name} stream has {} samples ({per_rank} per rank), fewer than one batch of \
             {batch}: add data or lower its batch size",
            dataset.len()
        );
    }
    Ok(())
}

impl Streams {
    /// Opens every stream the stage needs; a stream too small for one batch is an error.
    pub fn open(
        config: &TrainConfig,
        rank: usize,
        world_size: usize,
        pin_memory: bool,
    ) -> Result<Self> {
        let d = &config.data;
        let recognition_data = RecognitionData::open(d)?;
        check_size(
            "recognition",
            &recognition_data,
            d.recognition_bz,
            world_size,
        )?;
        let recognition = DataLoader::new(
            recognition_data,
            config.train.recognition_augment.clone(),
            rank,
            world_size,
            loader_config(config, d.recognition_bz, pin_memory),
        )
        .context("recognition loader")?;
        let analysis = match config.train.stage {
            Stage::Recognition => None,
            Stage::Multitask => {
                let data = AnalysisData::open(d)?;
                check_size("age-gender", &data.age_gender, d.age_gender_bz, world_size)?;
                check_size("CelebA", &data.celeba, d.celeba_bz, world_size)?;
                check_size("expression", &data.expression, d.expression_bz, world_size)?;
                let transform = || AnalysisTransform::new(config.train.analysis_augment.clone());
                let loader = |bz| loader_config(config, bz, pin_memory);
                Some(AnalysisLoaders {
                    age_gender: DataLoader::new(
                        data.age_gender,
                        transform(),
                        rank,
                        world_size,
                        loader(d.age_gender_bz),
                    )
                    .context("age-gender loader")?,
                    celeba: DataLoader::new(
                        data.celeba,
                        transform(),
                        rank,
                        world_size,
                        loader(d.celeba_bz),
                    )
                    .context("CelebA loader")?,
                    expression: DataLoader::new(
                        data.expression,
                        transform(),
                        rank,
                        world_size,
                        loader(d.expression_bz),
                    )
                    .context("expression loader")?,
                })
            }
        };
        let mut info = vec![stream_info("recognition", &recognition, d.recognition_bz)];
        if let Some(a) = &analysis {
            info.push(stream_info("age-gender", &a.age_gender, d.age_gender_bz));
            info.push(stream_info("CelebA", &a.celeba, d.celeba_bz));
            info.push(stream_info("expression", &a.expression, d.expression_bz));
        }
        let steps_per_epoch = info.iter().map(|s| s.batches_per_epoch).min().unwrap_or(0);
        if steps_per_epoch == 0 {
            bail!("a training stream has no full batch");
        }
        Ok(Self {
            recognition,
            analysis,
            steps_per_epoch,
            info,
        })
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// Mean age label of the age-gender stream's epoch (None in the recognition stage).
    pub fn mean_age(&self) -> Option<f64> {
        let stream = &self.analysis.as_ref()?.age_gender.dataset().stream;
        let ages: Vec<f64> = (0..stream.len())
            .filter_map(|i| stream.get(i).map(|(_, l)| f64::from(l.age)))
            .collect();
        (!ages.is_empty()).then(|| ages.iter().sum::<f64>() / ages.len() as f64)
    }

    pub fn info(&self) -> &[StreamInfo] {
        &self.info
    }

    /// The data position of global step `step`.
    pub fn position_of(&self, step: u64) -> DataPosition {
        let per = self.steps_per_epoch as u64;
        DataPosition {
            epoch: step / per,
            position: (step % per) as usize,
        }
    }

    /// The batches of `at.epoch` from `at.position` to the epoch's end.
    pub fn epoch_from(&self, at: DataPosition) -> Result<EpochBatches> {
        let analysis = match &self.analysis {
            None => None,
            Some(a) => Some((
                a.age_gender.resume(at.epoch, at.position)?,
                a.celeba.resume(at.epoch, at.position)?,
                a.expression.resume(at.epoch, at.position)?,
            )),
        };
        Ok(EpochBatches {
            recognition: self.recognition.resume(at.epoch, at.position)?,
            analysis,
            remaining: self.steps_per_epoch - at.position,
        })
    }
}

type AnalysisBatches = (Batches<AgeGender>, Batches<Attributes>, Batches<u8>);

/// One epoch's steps, each a [`StepBatch`] of every stream.
pub struct EpochBatches {
    recognition: Batches<i64>,
    analysis: Option<AnalysisBatches>,
    remaining: usize,
}

fn next_of<L>(batches: &mut Batches<L>, name: &str) -> Result<Batch<L>> {
    match batches.next() {
        Some(batch) => batch.with_context(|| format!("{name} stream")),
        None => bail!("the {name} stream ended before the epoch's last step"),
    }
}

impl EpochBatches {
    /// The next step's batches, or `None` at the end of the epoch. Also returns the number
    /// of samples that were bad and replaced.
    pub fn next_step(&mut self) -> Result<Option<(StepBatch, usize)>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let rec = next_of(&mut self.recognition, "recognition")?;
        let identities = Tensor::from_slice(&rec.labels);
        let mut bad = rec.bad_samples;
        let Some((ag, ce, ex)) = &mut self.analysis else {
            return Ok(Some((
                StepBatch {
                    images: rec.images,
                    identities,
                    analysis: None,
                },
                bad,
            )));
        };
        let ag = next_of(ag, "age-gender")?;
        let ce = next_of(ce, "CelebA")?;
        let ex = next_of(ex, "expression")?;
        bad += ag.bad_samples + ce.bad_samples + ex.bad_samples;
        let ages: Vec<f32> = ag.labels.iter().map(|l| l.age).collect();
        let genders: Vec<i64> = ag.labels.iter().map(|l| i64::from(l.gender)).collect();
        let attributes: Vec<i64> = ce
            .labels
            .iter()
            .flat_map(|row| row.iter().map(|&v| i64::from(v)))
            .collect();
        let expressions: Vec<i64> = ex.labels.iter().map(|&e| i64::from(e)).collect();
        let labels = AnalysisLabels {
            ages: Tensor::from_slice(&ages).view([-1, 1]),
            genders: Tensor::from_slice(&genders),
            attributes: Tensor::from_slice(&attributes).view([-1, 40]),
            expressions: Tensor::from_slice(&expressions),
        };
        let images = Tensor::cat(&[rec.images, ag.images, ce.images, ex.images], 0);
        Ok(Some((
            StepBatch {
                images,
                identities,
                analysis: Some(labels),
            },
            bad,
        )))
    }
}
