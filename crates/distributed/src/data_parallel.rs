//! What data-parallel training asks of a process group besides Partial FC's collectives:
//! the start-up broadcast of the model and DDP's bucketed gradient averaging. Implemented
//! by [`crate::StoreCollectives`] (CPU runs, and GPUs without the `nccl` feature) and by
//! `ProcessGroupNccl` (GPUs).

use swinface_loss::Collectives;
use tch::Tensor;

use crate::error::Result;

pub trait DataParallel: Collectives + Sync {
    /// Replaces each tensor with its mean over ranks, one collective per bucket.
    fn all_reduce_mean(&self, tensors: &mut [Tensor]) -> Result<()>;
    /// Overwrites each tensor with `root`'s, one collective per bucket.
    fn broadcast_all(&self, tensors: &mut [Tensor], root: usize) -> Result<()>;
    /// The backend's name, for the log: `tcp-store` or `nccl`.
    fn backend(&self) -> &'static str;
}
