//! The crate's error type: one enum, structured variants.

use std::time::Duration;

use swinface_loss::LossError;
use tch::TchError;

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// torchrun sets its variables together; one without the others is a launch mistake.
    #[error(
        "{var} is not set, but {set} is: a distributed launch sets RANK, LOCAL_RANK, \
         WORLD_SIZE, MASTER_ADDR and MASTER_PORT together (as torchrun does)"
    )]
    MissingVar {
        var: &'static str,
        set: &'static str,
    },

    #[error("{var}={value:?}: {reason}")]
    InvalidVar {
        var: &'static str,
        value: String,
        reason: String,
    },

    /// A TCPStore call failed (the C++ exception's message).
    #[error("TCPStore {op} {key:?} failed: {message}")]
    Store {
        op: &'static str,
        key: String,
        message: String,
    },

    /// A ProcessGroupNCCL call failed (the C++ exception's message).
    #[error("NCCL {op} failed: {message}")]
    Nccl { op: &'static str, message: String },

    #[error("a store key or address must not contain a NUL byte: {0:?}")]
    NulByte(String),

    #[error(
        "{op} (collective #{round}) on rank {rank}: timed out after {waited:?} waiting for \
         rank(s) {missing:?} (dist_timeout_s); a rank died, hangs, or runs different \
         collectives"
    )]
    Timeout {
        op: String,
        round: u64,
        rank: usize,
        waited: Duration,
        missing: Vec<usize>,
    },

    /// Another rank failed and said so through the store.
    #[error("{op} on rank {rank}: the run was aborted by {message}")]
    Aborted {
        op: String,
        rank: usize,
        message: String,
    },

    #[error("{op} on rank {rank}: {reason}")]
    Mismatch {
        op: &'static str,
        rank: usize,
        reason: String,
    },

    #[error("invalid setting {what}: {reason}")]
    Config { what: &'static str, reason: String },

    #[error(transparent)]
    Tch(#[from] TchError),
}

impl DistError {
    /// The same failure as Partial FC's error type sees it.
    pub fn into_loss_error(self, op: &'static str, rank: usize) -> LossError {
        match self {
            DistError::Tch(e) => LossError::Tch(e),
            other => LossError::Collective {
                op,
                rank,
                reason: other.to_string(),
            },
        }
    }
}

pub type Result<T, E = DistError> = std::result::Result<T, E>;
