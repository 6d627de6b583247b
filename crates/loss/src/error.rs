//! The crate's error type: one enum, structured variants.

use swinface_torch_ext::TorchExtError;
use tch::{Kind, TchError};

/// Everything that can go wrong in losses, Partial FC, optimisers, schedules and scaling.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error(transparent)]
    Tch(#[from] TchError),

    /// Autocast switching or a CUDA query through the C++ shim.
    #[error(transparent)]
    TorchExt(#[from] TorchExtError),

    /// The official code supports ArcFace (`m1 = 1, m3 = 0`) and CosFace (`m3 > 0`) only.
    #[error(
        "margin_list ({m1}, {m2}, {m3}) is neither ArcFace (m1 = 1, m3 = 0) nor CosFace (m3 > 0)"
    )]
    UnsupportedMargin { m1: f64, m2: f64, m3: f64 },

    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },

    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    Shape {
        what: &'static str,
        expected: Vec<i64>,
        found: Vec<i64>,
    },

    #[error("{what}: expected {expected:?}, found {found:?}")]
    Kind {
        what: &'static str,
        expected: Kind,
        found: Kind,
    },

    /// Partial FC all-gathers equal-sized batches, as the official code asserts.
    #[error("batch size changed from {expected} to {found}; Partial FC needs a fixed batch size")]
    BatchSizeChanged { expected: i64, found: i64 },

    #[error("{count} learning rates given for {groups} parameter groups")]
    LearningRateCount { count: usize, groups: usize },

    #[error("optimizer state entry {name:?} is missing")]
    StateMissing { name: String },

    #[error("optimizer state entry {name:?} does not belong to this optimizer")]
    StateUnexpected { name: String },

    #[error("optimizer state entry {name:?}: expected shape {expected:?}, found {found:?}")]
    StateShape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },

    #[error("optimizer state entry {name:?}: expected {expected:?}, found {found:?}")]
    StateKind {
        name: String,
        expected: Kind,
        found: Kind,
    },

    #[error("parameter {name:?} appears twice in the optimizer's groups")]
    DuplicateParameter { name: String },

    #[error("Partial FC step called without a forward pass since the last step")]
    NoActiveCentres,

    #[error("collective {op} failed on rank {rank}: {reason}")]
    Collective {
        op: &'static str,
        rank: usize,
        reason: String,
    },

    /// bf16 autocast needs compute capability 8.0 (Ampere) or newer.
    #[error(
        "amp_mode bf16 needs a GPU of compute capability 8.0 or newer; cuda:{index} has \
         {major}.{minor} (use fp16)"
    )]
    Bf16Unsupported {
        index: usize,
        major: i32,
        minor: i32,
    },

    #[error("the VarStore lock is poisoned")]
    VarStorePoisoned,
}

pub type Result<T, E = LossError> = std::result::Result<T, E>;
