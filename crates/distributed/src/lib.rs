//! swinface-distributed: what data-parallel training needs beyond one process.
//!
//! - [`DistEnv`]: rank, local rank, world size and rendezvous address from the variables
//!   torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
//! - [`TcpStore`]: PyTorch's own c10d TCPStore through a C++ shim (csrc/store_shim.cpp);
//!   rank 0 hosts it.
//! - [`StoreCollectives`]: reductions, gathers and broadcasts over the store, for CPU runs;
//!   it implements Partial FC's [`swinface_loss::Collectives`] and adds bucketed gradient
//!   averaging.
//! - [`DataParallel`]: the model broadcast and bucketed gradient averaging, over either
//!   backend.
//! - `nccl` (cargo feature, off by default): `ProcessGroupNccl`, c10d's NCCL process group
//!   rendezvousing through the same store, for GPUs.

mod bucket;
mod collectives;
mod data_parallel;
mod env;
mod error;
#[cfg(feature = "nccl")]
pub mod nccl;
mod store;

pub use collectives::{StoreCollectives, DEFAULT_BUCKET_BYTES};
pub use data_parallel::DataParallel;
pub use env::{DistEnv, VARIABLES};
pub use error::{DistError, Result};
pub use store::TcpStore;
