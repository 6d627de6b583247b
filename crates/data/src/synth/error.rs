//! Errors of the dataset generator.

use std::path::PathBuf;

use crate::error::DataError;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid synth configuration: {message}")]
    Config { message: String },
    #[error(
        "{} exists and was not written by `swinface synth` (no swinface_synth.json); \
         choose another --out or remove it",
        path.display()
    )]
    OutputExists { path: PathBuf },
    #[error("cannot create or move {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode a generated image as JPEG")]
    Encode(#[source] image::ImageError),
    #[error("cannot write the manifest")]
    Manifest(#[source] serde_json::Error),
    #[error(transparent)]
    Data(#[from] DataError),
}

impl SynthError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SynthError::Io {
            path: path.into(),
            source,
        }
    }
}
