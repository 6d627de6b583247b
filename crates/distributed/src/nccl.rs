//! c10d's `ProcessGroupNCCL` (the `nccl` feature): GPU collectives, rendezvousing through
//! the run's [`TcpStore`]. Tensors stay on their GPU. Each call waits on its work, which
//! (as in torch.distributed) makes the current CUDA stream wait for NCCL's stream, so the
//! collectives are ordered with the computation around them without blocking the host.
//! Compiled and linked against the pip wheel's headers and libtorch_cuda; not yet run on a
//! GPU (none was lent where it was written).

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use swinface_loss::Collectives;
use tch::Tensor;

use crate::bucket::{buckets, flatten, unflatten};
use crate::data_parallel::DataParallel;
use crate::error::{DistError, Result};
use crate::store::{ffi as store_ffi, TcpStore};

mod ffi {
    use std::ffi::{c_char, c_int};

    use super::store_ffi::Store;

    #[repr(C)]
    pub struct Nccl {
        _private: [u8; 0],
    }

    extern "C" {
        pub fn swinface_nccl_new(
            store: *mut Store,
            rank: c_int,
            world_size: c_int,
            timeout_ms: i64,
            out: *mut *mut Nccl,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_nccl_free(group: *mut Nccl);
        pub fn swinface_nccl_all_reduce(
            group: *mut Nccl,
            tensor: *mut torch_sys::C_tensor,
            op: c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_nccl_broadcast(
            group: *mut Nccl,
            tensor: *mut torch_sys::C_tensor,
            root: c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_nccl_all_gather(
            group: *mut Nccl,
            input: *mut torch_sys::C_tensor,
            outputs: *const *mut torch_sys::C_tensor,
            count: usize,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
    }
}

const ERROR_BUFFER: usize = 2048;

#[derive(Debug, Clone, Copy)]
enum ReduceOp {
    Sum = 0,
    Max = 1,
    Avg = 2,
}

fn call(op: &'static str, body: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut buffer = vec![0 as c_char; ERROR_BUFFER];
    if body(buffer.as_mut_ptr(), buffer.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within the buffer.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(DistError::Nccl { op, message })
}

/// The shim's process group, freed when the last clone of its [`ProcessGroupNccl`] goes.
struct Handle(NonNull<ffi::Nccl>);

// SAFETY: ProcessGroupNCCL is thread-safe (torch.distributed calls it from any thread).
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once.
        unsafe { ffi::swinface_nccl_free(self.0.as_ptr()) };
    }
}

/// One rank of an NCCL process group; clones share it.
#[derive(Clone)]
pub struct ProcessGroupNccl {
    raw: Arc<Handle>,
    rank: usize,
    world_size: usize,
    bucket_bytes: usize,
}

impl ProcessGroupNccl {
    /// Joins the group through `store` (every rank calls it); collectives that take longer
    /// than `timeout` abort the communicator.
    pub fn new(
        store: &TcpStore,
        rank: usize,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let to_int = |v: usize, what: &'static str| {
            c_int::try_from(v).map_err(|_| DistError::Config {
                what,
                reason: format!("{v} is too large"),
            })
        };
        let mut raw: *mut ffi::Nccl = std::ptr::null_mut();
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        call("init", |error, length| unsafe {
            // SAFETY: a live store, a valid out-pointer and error buffer.
            ffi::swinface_nccl_new(
                store.raw(),
                to_int(rank, "rank").unwrap_or(-1),
                to_int(world_size, "world_size").unwrap_or(-1),
                timeout_ms,
                &mut raw,
                error,
                length,
            )
        })?;
        let raw = NonNull::new(raw).ok_or_else(|| DistError::Nccl {
            op: "init",
            message: "the shim returned no process group".into(),
        })?;
        Ok(Self {
            raw: Arc::new(Handle(raw)),
            rank,
            world_size,
            bucket_bytes: crate::DEFAULT_BUCKET_BYTES,
        })
    }

    /// Gradient buckets of at most `bytes`.
    pub fn with_bucket_bytes(mut self, bytes: usize) -> Self {
        self.bucket_bytes = bytes.max(1);
        self
    }

    fn all_reduce(&self, tensor: &mut Tensor, op: ReduceOp) -> Result<()> {
        call("all_reduce", |error, length| unsafe {
            // SAFETY: the tensor is live for the call (tch's C tensor is an at::Tensor*).
            ffi::swinface_nccl_all_reduce(
                self.raw.0.as_ptr(),
                tensor.as_mut_ptr(),
                op as c_int,
                error,
                length,
            )
        })
    }

    /// Overwrites `tensor` with `root`'s.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        let root = c_int::try_from(root).map_err(|_| DistError::Config {
            what: "root",
            reason: format!("{root} is too large"),
        })?;
        call("broadcast", |error, length| unsafe {
            // SAFETY: as in all_reduce.
            ffi::swinface_nccl_broadcast(
                self.raw.0.as_ptr(),
                tensor.as_mut_ptr(),
                root,
                error,
                length,
            )
        })
    }

    /// Replaces each tensor with its mean over ranks (NCCL's average), one all-reduce per
    /// bucket flattened on the tensors' GPU.
    pub fn all_reduce_mean(&self, tensors: &mut [Tensor]) -> Result<()> {
        for range in buckets(tensors, self.bucket_bytes) {
            let bucket = &mut tensors[range];
            let mut flat = flatten(bucket, bucket[0].device())?;
            self.all_reduce(&mut flat, ReduceOp::Avg)?;
            unflatten(&flat, bucket)?;
        }
        Ok(())
    }

    /// Overwrites each tensor with `root`'s, one broadcast per bucket.
    pub fn broadcast_all(&self, tensors: &mut [Tensor], root: usize) -> Result<()> {
        for range in buckets(tensors, self.bucket_bytes) {
            let bucket = &mut tensors[range];
            let mut flat = flatten(bucket, bucket[0].device())?;
            self.broadcast(&mut flat, root)?;
            unflatten(&flat, bucket)?;
        }
        Ok(())
    }

    fn gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        let mut input = tensor.f_contiguous()?;
        let mut outputs: Vec<Tensor> = (0..self.world_size)
            .map(|_| input.f_empty_like())
            .collect::<std::result::Result<_, _>>()?;
        let pointers: Vec<*mut torch_sys::C_tensor> =
            outputs.iter_mut().map(|t| t.as_mut_ptr()).collect();
        call("all_gather", |error, length| unsafe {
            // SAFETY: the input and outputs are live for the call.
            ffi::swinface_nccl_all_gather(
                self.raw.0.as_ptr(),
                input.as_mut_ptr(),
                pointers.as_ptr(),
                pointers.len(),
                error,
                length,
            )
        })?;
        Ok(outputs)
    }
}

impl Collectives for ProcessGroupNccl {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_max(&self, tensor: &mut Tensor) -> swinface_loss::Result<()> {
        self.all_reduce(tensor, ReduceOp::Max)
            .map_err(|e| e.into_loss_error("all_reduce_max", self.rank))
    }

    fn all_reduce_sum(&self, tensor: &mut Tensor) -> swinface_loss::Result<()> {
        self.all_reduce(tensor, ReduceOp::Sum)
            .map_err(|e| e.into_loss_error("all_reduce_sum", self.rank))
    }

    fn all_gather(&self, tensor: &Tensor) -> swinface_loss::Result<Vec<Tensor>> {
        self.gather(tensor)
            .map_err(|e| e.into_loss_error("all_gather", self.rank))
    }
}

impl DataParallel for ProcessGroupNccl {
    fn all_reduce_mean(&self, tensors: &mut [Tensor]) -> Result<()> {
        ProcessGroupNccl::all_reduce_mean(self, tensors)
    }

    fn broadcast_all(&self, tensors: &mut [Tensor], root: usize) -> Result<()> {
        ProcessGroupNccl::broadcast_all(self, tensors, root)
    }

    fn backend(&self) -> &'static str {
        "nccl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a GPU, joining fails with c10d's message instead of crashing; with one, a
    /// 1-rank group reduces, gathers and broadcasts.
    #[test]
    fn a_one_rank_group_works_on_a_gpu_and_fails_cleanly_without() {
        let store = TcpStore::host(0, None, Duration::from_secs(20)).unwrap();
        match ProcessGroupNccl::new(&store, 0, 1, Duration::from_secs(20)) {
            Err(e) => {
                eprintln!("without a GPU: {e}");
                assert!(!tch::Cuda::is_available(), "{e}");
                assert!(matches!(e, DistError::Nccl { .. }), "{e}");
            }
            Ok(group) => {
                let device = tch::Device::Cuda(0);
                let mut t = Tensor::from_slice(&[1.0f32, 2.0]).to_device(device);
                group.all_reduce_sum(&mut t).unwrap();
                group.broadcast(&mut t, 0).unwrap();
                let all = group.all_gather(&t).unwrap();
                assert_eq!(all.len(), 1);
                assert_eq!(
                    Vec::<f32>::try_from(all[0].to_device(tch::Device::Cpu)).unwrap(),
                    vec![1.0, 2.0]
                );
            }
        }
    }
}
