//! The four training streams as loader datasets: recognition (RecordIO or an image folder)
//! and the composed analysis streams (age-gender, CelebA, expression).

use std::path::Path;

use anyhow::{bail, Context, Result};
use swinface_data::augment::SampleRng;
use swinface_data::error::DataError;
use swinface_data::formats::age_gender::AgeGender;
use swinface_data::formats::celeba::Attributes;
use swinface_data::formats::image_folder::ImageFolder;
use swinface_data::formats::recordio::MxFaceDataset;
use swinface_data::loader::{Dataset, Sample, SampleImage};
use swinface_data::streams::{
    age_gender_stream, celeba_train_stream, expression_stream, ComposedStream, DataConfig,
};

/// The recognition training set.
pub enum RecognitionData {
    Record {
        dataset: MxFaceDataset,
        num_classes: u64,
    },
    Folder(ImageFolder),
}

impl RecognitionData {
    /// `rec` is a directory with `train.rec` + `train.idx`, or an image folder of identities.
    pub fn open(config: &DataConfig) -> Result<Self> {
        let Some(rec) = &config.rec else {
            bail!("`rec` (the recognition training data) is not set");
        };
        if rec.join("train.rec").is_file() {
            let dataset = MxFaceDataset::open(rec)
                .with_context(|| format!("cannot open the recognition data {}", rec.display()))?;
            Ok(Self::Record {
                dataset,
                num_classes: config.num_classes,
            })
        } else if rec.is_dir() {
            let folder = ImageFolder::read(rec)
                .with_context(|| format!("cannot read the image folder {}", rec.display()))?;
            if folder.classes.len() as u64 > config.num_classes {
                bail!(
                    "{} has {} identities but num_classes is {}",
                    rec.display(),
                    folder.classes.len(),
                    config.num_classes
                );
            }
            Ok(Self::Folder(folder))
        } else {
            bail!(
                "{}: neither a directory with train.rec/train.idx nor an image folder",
                rec.display()
            );
        }
    }
}

impl Dataset for RecognitionData {
    type Label = i64;

    fn len(&self) -> usize {
        match self {
            Self::Record { dataset, .. } => dataset.len(),
            Self::Folder(folder) => folder.samples.len(),
        }
    }

    fn load(&self, index: usize, _rng: &mut SampleRng) -> Result<Sample<i64>, DataError> {
        match self {
            Self::Record {
                dataset,
                num_classes,
            } => {
                let sample = dataset.get(index, Some(*num_classes))?;
                Ok(Sample {
                    image: SampleImage::Encoded(sample.image.into_owned()),
                    label: sample.label,
                })
            }
            Self::Folder(folder) => {
                let (path, class) = folder
                    .samples
                    .get(index)
                    .ok_or_else(|| DataError::file(&folder.root, format!("no sample {index}")))?;
                Ok(Sample {
                    image: SampleImage::Encoded(read_image(path)?),
                    label: *class as i64,
                })
            }
        }
    }

    fn describe(&self, index: usize) -> String {
        match self {
            Self::Record { dataset, .. } => match dataset.image_keys().get(index) {
                Some(key) => format!(
                    "record {key} of {}",
                    dataset.reader().rec().path().display()
                ),
                None => format!("recognition sample {index}"),
            },
            Self::Folder(folder) => folder.samples.get(index).map_or_else(
                || format!("sample {index}"),
                |(p, _)| p.display().to_string(),
            ),
        }
    }
}

fn read_image(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// A composed analysis stream: images read from the listed files, labels as listed.
pub struct StreamData<L> {
    pub stream: ComposedStream<L>,
}

impl<L: Clone + Send + Sync + 'static> Dataset for StreamData<L> {
    type Label = L;

    fn len(&self) -> usize {
        self.stream.len()
    }

    fn load(&self, index: usize, _rng: &mut SampleRng) -> Result<Sample<L>, DataError> {
        let (path, label) = self.stream.get(index).ok_or_else(|| DataError::Config {
            message: format!("{} stream has no sample {index}", self.stream.stream),
        })?;
        Ok(Sample {
            image: SampleImage::Encoded(read_image(path)?),
            label: label.clone(),
        })
    }

    fn describe(&self, index: usize) -> String {
        self.stream.get(index).map_or_else(
            || format!("{} sample {index}", self.stream.stream),
            |(p, _)| p.display().to_string(),
        )
    }
}

/// The three analysis streams of the multi-task stage.
pub struct AnalysisData {
    pub age_gender: StreamData<AgeGender>,
    pub celeba: StreamData<Attributes>,
    pub expression: StreamData<u8>,
}

impl AnalysisData {
    pub fn open(config: &DataConfig) -> Result<Self> {
        let age_gender =
            age_gender_stream(config).context("cannot compose the age-gender stream")?;
        let celeba = celeba_train_stream(config).context("cannot compose the CelebA stream")?;
        let expression =
            expression_stream(config).context("cannot compose the expression stream")?;
        Ok(Self {
            age_gender: StreamData { stream: age_gender },
            celeba: StreamData { stream: celeba },
            expression: StreamData { stream: expression },
        })
    }
}
