//! Errors of the evaluation: every variant that comes from a file names it, and the line where
//! there is one.

use std::path::PathBuf;

use swinface_data::error::DataError;
use swinface_data::preprocess::PreprocessError;

use super::metrics::MetricError;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Data(Box<DataError>),
    #[error("{}:{line}: image {} does not exist", label_file.display(), image.display())]
    MissingImage {
        label_file: PathBuf,
        line: usize,
        image: PathBuf,
    },
    #[error("{}:{line}: cannot use image {}", label_file.display(), image.display())]
    Image {
        label_file: PathBuf,
        line: usize,
        image: PathBuf,
        #[source]
        source: Box<PreprocessError>,
    },
    #[error("{}: image {index} of the pairs", path.display())]
    BinImage {
        path: PathBuf,
        index: usize,
        #[source]
        source: Box<PreprocessError>,
    },
    #[error("{}:{line}: {message}", path.display())]
    Meta {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dataset}: {source}")]
    Metric {
        dataset: String,
        #[source]
        source: MetricError,
    },
    #[error("the model failed on {dataset}")]
    Model {
        dataset: String,
        #[source]
        source: tch::TchError,
    },
    #[error("{dataset}: the model gave {message}")]
    ModelOutput { dataset: String, message: String },
    #[error("invalid evaluation config: {message}")]
    Config { message: String },
    #[error("gathering results across ranks: {message}")]
    Gather { message: String },
    #[error("cannot draw {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

impl From<DataError> for EvalError {
    fn from(e: DataError) -> Self {
        EvalError::Data(Box::new(e))
    }
}

impl EvalError {
    pub(crate) fn metric(dataset: &str) -> impl FnOnce(MetricError) -> Self + '_ {
        move |source| EvalError::Metric {
            dataset: dataset.to_owned(),
            source,
        }
    }

    pub(crate) fn model(dataset: &str) -> impl FnOnce(tch::TchError) -> Self + '_ {
        move |source| EvalError::Model {
            dataset: dataset.to_owned(),
            source,
        }
    }
}
