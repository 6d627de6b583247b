//! The crate's error type.

use crate::config::ConfigError;

/// Everything that can go wrong while building, filling or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(#[from] ConfigError),

    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),

    #[error("input must be [B, {channels}, {height}, {width}] float, got {actual:?} ({kind})")]
    InputShape {
        channels: i64,
        height: i64,
        width: i64,
        actual: Vec<i64>,
        kind: String,
    },

    #[error("synchronised BatchNorm: {0}")]
    SyncBatchNorm(swinface_torch_ext::TorchExtError),

    #[error("variable `{name}` of shape {shape:?} has no formula rule")]
    NoFormula { name: String, shape: Vec<i64> },
}
