//! Synchronised BatchNorm (`torch.nn.SyncBatchNorm`'s training forward and backward) through
//! csrc/sync_bn_shim.cpp, a C++ `torch::autograd::Function` that calls back into Rust for
//! the all-reduce-sum over the ranks.
//!
//! Forward: per channel, `[sum x, sum x², count]` is summed over the ranks (in float64);
//! mean = S1/N and the biased variance S2/N − mean² normalise; the running statistics move
//! by `momentum` towards the global mean and the unbiased global variance (N/(N−1)).
//! Backward: `sum dy` and `sum dy·(x−mean)` are summed over the ranks, then
//! `dx = (dy − sum_dy/N − (x−mean)·invstd²·sum_dy_xmu/N)·invstd·weight`; the weight and
//! bias gradients stay the rank's own (`sum dy·x̂`, `sum dy`), for DDP to average.
//!
//! Every rank must run the same BatchNorms in the same order, forward and backward: each
//! call is one collective. A rank running the same graph as the others gets the same
//! autograd order.

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tch::Tensor;
use torch_sys::C_tensor;

use crate::{call_shim, torch_error, Result};

/// The collective synchronised BatchNorm needs: sums `tensor` (a small contiguous float64
/// vector on the input's device) over all ranks, in place. Every rank must get the same
/// result. Called from forward and from backward, possibly on libtorch's autograd threads.
pub trait SumReducer: Send + Sync {
    fn all_reduce_sum(&self, tensor: &mut Tensor) -> std::result::Result<(), String>;
}

/// World size 1: the sum over one rank is the tensor itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityReducer;

impl SumReducer for IdentityReducer {
    fn all_reduce_sum(&self, _tensor: &mut Tensor) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// The affine parameters and running statistics of one BatchNorm, all `[C]`.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormState<'a> {
    pub weight: &'a Tensor,
    pub bias: &'a Tensor,
    /// Updated in place.
    pub running_mean: &'a Tensor,
    /// Updated in place.
    pub running_var: &'a Tensor,
    pub momentum: f64,
    pub eps: f64,
}

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    use torch_sys::C_tensor;

    pub type ReduceFn = extern "C" fn(
        context: *mut c_void,
        tensor: *mut C_tensor,
        error: *mut c_char,
        error_length: usize,
    ) -> c_int;
    pub type ReleaseFn = extern "C" fn(context: *mut c_void);

    extern "C" {
        #[allow(clippy::too_many_arguments)]
        pub fn swinface_sync_batch_norm(
            input: *const C_tensor,
            weight: *const C_tensor,
            bias: *const C_tensor,
            running_mean: *const C_tensor,
            running_var: *const C_tensor,
            momentum: f64,
            eps: f64,
            reduce: ReduceFn,
            context: *mut c_void,
            release: ReleaseFn,
            out: *mut *mut C_tensor,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
    }
}

/// What the shim's `context` points to.
type Context = Arc<dyn SumReducer>;

/// Copies `message` into the shim's buffer, truncated and NUL-terminated.
fn write_message(buffer: *mut c_char, length: usize, message: &str) {
    if buffer.is_null() || length == 0 {
        return;
    }
    let bytes = message.as_bytes();
    let n = bytes.len().min(length - 1);
    // SAFETY: the shim's buffer holds `length` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buffer, n);
        *buffer.add(n) = 0;
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// The shim's callback: runs the reducer on the shim's tensor. Never unwinds into C++.
extern "C" fn reduce_callback(
    context: *mut c_void,
    tensor: *mut C_tensor,
    error: *mut c_char,
    error_length: usize,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<(), String> {
        // SAFETY: `context` is the `Box<Context>` handed to the shim, alive until `release`.
        let reducer = unsafe { &*context.cast::<Context>() };
        // SAFETY: the shim's tensor outlives the call and stays the shim's: never dropped here.
        let mut target = ManuallyDrop::new(unsafe { Tensor::from_ptr(tensor) });
        // The reducer gets its own handle on the same storage; one that assigns a new tensor
        // instead of writing in place still gets its result copied back.
        let mut reduced = target.shallow_clone();
        reducer.all_reduce_sum(&mut reduced)?;
        if reduced.data_ptr() != target.data_ptr() {
            tch::no_grad(|| target.f_copy_(&reduced)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }));
    let message = match outcome {
        Ok(Ok(())) => return 0,
        Ok(Err(message)) => message,
        Err(payload) => format!("the reducer panicked: {}", panic_message(payload.as_ref())),
    };
    write_message(error, error_length, &message);
    1
}

/// The shim's release: drops the reducer handle. Never unwinds into C++.
extern "C" fn release_callback(context: *mut c_void) {
    let _ = catch_unwind(|| {
        // SAFETY: `context` came from `Box::into_raw` and the shim releases it once.
        drop(unsafe { Box::from_raw(context.cast::<Context>()) });
    });
}

/// Training-mode BatchNorm of `input` ([B, C] or [B, C, ...]) over the batch combined over
/// every rank of `reducer`, updating `state`'s running statistics in place and
/// differentiable in `input`, weight and bias. The caller counts `num_batches_tracked`.
///
/// A failing `reducer` in forward is an error here; in backward, an error of
/// `Tensor::f_backward`.
pub fn sync_batch_norm(
    input: &Tensor,
    state: &BatchNormState<'_>,
    reducer: Arc<dyn SumReducer>,
) -> Result<Tensor> {
    let context = Box::into_raw(Box::new(reducer)).cast::<c_void>();
    let mut out: *mut C_tensor = std::ptr::null_mut();
    call_shim(
        // SAFETY: the tensors live across the call; the shim owns `context` from here on
        // and releases it through `release_callback`; `out` is written on success only.
        |error, length| unsafe {
            ffi::swinface_sync_batch_norm(
                input.as_ptr(),
                state.weight.as_ptr(),
                state.bias.as_ptr(),
                state.running_mean.as_ptr(),
                state.running_var.as_ptr(),
                state.momentum,
                state.eps,
                reduce_callback,
                context,
                release_callback,
                &mut out,
                error,
                length,
            )
        },
        torch_error,
    )?;
    // SAFETY: on success the shim handed over a new tensor.
    Ok(unsafe { Tensor::from_ptr(out) })
}
