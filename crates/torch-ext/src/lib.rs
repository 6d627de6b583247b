//! swinface-torch-ext: the few libtorch calls that tch does not expose, through small C++
//! shims (csrc/autocast_shim.cpp, csrc/sync_bn_shim.cpp).
//!
//! - Autocast on a chosen device type with a chosen dtype: tch's `autocast` only toggles
//!   CUDA autocast in its default fp16. [`AutocastGuard`] does what `torch.autocast`'s
//!   `__enter__`/`__exit__` do, for the CPU or CUDA, in fp16 or bf16. [`Autocast`] is a
//!   checked (device, dtype) setting that enters such regions.
//! - [`cuda_capability`] / [`cuda_supports_bf16`]: the GPU's compute capability.
//! - [`sync_batch_norm`]: `torch.nn.SyncBatchNorm`'s training forward and backward, a C++
//!   autograd function that sums its statistics over the ranks through a [`SumReducer`].
//!
//! libtorch keeps the autocast flags, dtypes and nesting depth per thread, so a guard is
//! neither `Send` nor `Sync`. Its cache of low-precision weight copies is one per process:
//! any thread that closes its outermost region clears it (costing re-casts, never
//! correctness, as long as weights are not changed in place inside a region).

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;

use tch::{Device, Kind};

mod sync_bn;

pub use sync_bn::{sync_batch_norm, BatchNormState, IdentityReducer, SumReducer};

mod ffi {
    use std::ffi::{c_char, c_int};

    extern "C" {
        pub fn swinface_autocast_state(
            device: c_int,
            enabled: *mut c_int,
            dtype: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_autocast_enter(
            device: c_int,
            dtype: c_int,
            enabled: c_int,
            previous_enabled: *mut c_int,
            previous_dtype: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_autocast_exit(
            device: c_int,
            previous_enabled: c_int,
            previous_dtype: c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_cuda_current_device(
            index: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_cuda_capability(
            index: c_int,
            major: *mut c_int,
            minor: *mut c_int,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
        pub fn swinface_cuda_mem_info(
            free_bytes: *mut usize,
            total_bytes: *mut usize,
            error: *mut c_char,
            error_length: usize,
        ) -> c_int;
    }
}

/// Room for the message of a caught C++ exception.
const ERROR_BUFFER: usize = 1024;

/// The compute capability from which CUDA GPUs have bf16 tensor cores (Ampere).
pub const BF16_MIN_CAPABILITY: (i32, i32) = (8, 0);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TorchExtError {
    #[error("autocast runs in Half or BFloat16, not {0:?}")]
    UnsupportedAutocastDtype(Kind),

    #[error("libtorch reported autocast dtype code {0}, which has no tch Kind here")]
    UnknownDtypeCode(i32),

    #[error("libtorch: {0}")]
    Torch(String),

    #[error("CUDA ({call}, status {status}): {reason}")]
    Cuda {
        call: &'static str,
        status: i32,
        reason: String,
    },

    #[error("CUDA device index {0} is out of range")]
    CudaIndex(usize),
}

pub type Result<T, E = TorchExtError> = std::result::Result<T, E>;

/// The device types whose autocast state this crate switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutocastDevice {
    Cpu,
    Cuda,
}

impl AutocastDevice {
    /// The autocast device type of `device`; `None` for devices without autocast here.
    pub fn of(device: Device) -> Option<Self> {
        match device {
            Device::Cpu => Some(Self::Cpu),
            Device::Cuda(_) => Some(Self::Cuda),
            _ => None,
        }
    }

    /// The `c10::DeviceType` value.
    fn code(self) -> c_int {
        match self {
            Self::Cpu => 0,
            Self::Cuda => 1,
        }
    }
}

/// `c10::ScalarType` values of the dtypes autocast can run in.
fn autocast_dtype_code(kind: Kind) -> Result<c_int> {
    match kind {
        Kind::Half => Ok(5),
        Kind::BFloat16 => Ok(15),
        other => Err(TorchExtError::UnsupportedAutocastDtype(other)),
    }
}

/// A `c10::ScalarType` value as a tch `Kind` (the floating kinds autocast can report).
fn kind_of_code(code: c_int) -> Result<Kind> {
    match code {
        5 => Ok(Kind::Half),
        6 => Ok(Kind::Float),
        7 => Ok(Kind::Double),
        15 => Ok(Kind::BFloat16),
        other => Err(TorchExtError::UnknownDtypeCode(other)),
    }
}

/// Calls a shim function with an error buffer; a non-zero status becomes `wrap(status, message)`.
fn call_shim(
    shim: impl FnOnce(*mut c_char, usize) -> c_int,
    wrap: impl FnOnce(i32, String) -> TorchExtError,
) -> Result<()> {
    let mut buffer = [0 as c_char; ERROR_BUFFER];
    let status = shim(buffer.as_mut_ptr(), buffer.len());
    if status == 0 {
        return Ok(());
    }
    // The shim NUL-terminates what it writes; the zeroed buffer ends in NUL regardless.
    let bytes: Vec<u8> = buffer.iter().map(|&c| c as u8).collect();
    let message = CStr::from_bytes_until_nul(&bytes)
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(wrap(status, message))
}

fn torch_error(_status: i32, message: String) -> TorchExtError {
    TorchExtError::Torch(message)
}

/// (enabled, dtype code) of `device`'s autocast state on this thread.
fn state(device: AutocastDevice) -> Result<(bool, c_int)> {
    let (mut enabled, mut dtype) = (0, 0);
    call_shim(
        // SAFETY: the out-pointers and the buffer live across the call.
        |error, length| unsafe {
            ffi::swinface_autocast_state(device.code(), &mut enabled, &mut dtype, error, length)
        },
        torch_error,
    )?;
    Ok((enabled != 0, dtype))
}

/// Whether autocast is enabled for `device` on this thread (`torch.is_autocast_enabled`).
pub fn is_enabled(device: AutocastDevice) -> Result<bool> {
    Ok(state(device)?.0)
}

/// The dtype `device`'s autocast casts to on this thread (`torch.get_autocast_dtype`).
pub fn dtype(device: AutocastDevice) -> Result<Kind> {
    kind_of_code(state(device)?.1)
}

/// An autocast region, like `with torch.autocast(device, dtype, enabled):`. Entering sets
/// the device's autocast flag and dtype and increments libtorch's nesting depth; dropping
/// restores the previous flag and dtype, decrements the depth and clears the cast cache when
/// the outermost region closes. Guards must be dropped in reverse order of entering (as
/// scopes do) and on the thread that entered them.
#[must_use = "the region ends when the guard is dropped"]
#[derive(Debug)]
pub struct AutocastGuard {
    device: AutocastDevice,
    previous_enabled: c_int,
    previous_dtype: c_int,
    /// Autocast state is thread-local: the guard must stay on its thread.
    _thread_bound: PhantomData<*const ()>,
}

impl AutocastGuard {
    /// Enters a region on `device` running eligible ops in `dtype` (Half or BFloat16) when
    /// `enabled`, or in their own precision when not.
    pub fn enter(device: AutocastDevice, dtype: Kind, enabled: bool) -> Result<Self> {
        let code = autocast_dtype_code(dtype)?;
        let (mut previous_enabled, mut previous_dtype) = (0, 0);
        call_shim(
            // SAFETY: the out-pointers and the buffer live across the call.
            |error, length| unsafe {
                ffi::swinface_autocast_enter(
                    device.code(),
                    code,
                    c_int::from(enabled),
                    &mut previous_enabled,
                    &mut previous_dtype,
                    error,
                    length,
                )
            },
            torch_error,
        )?;
        Ok(Self {
            device,
            previous_enabled,
            previous_dtype,
            _thread_bound: PhantomData,
        })
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // Restoring values libtorch handed out on enter, for a device type it accepted then:
        // libtorch has no failure path here, and a destructor could not report one.
        let _ = call_shim(
            // SAFETY: the buffer lives across the call.
            |error, length| unsafe {
                ffi::swinface_autocast_exit(
                    self.device.code(),
                    self.previous_enabled,
                    self.previous_dtype,
                    error,
                    length,
                )
            },
            torch_error,
        );
    }
}

/// A checked mixed-precision setting: the device type and the half dtype that autocast
/// regions use. Build one with [`Autocast::new`], then open regions with [`Autocast::enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autocast {
    device: AutocastDevice,
    dtype: Kind,
}

impl Autocast {
    /// Checks that libtorch accepts `dtype` autocast on `device` (by entering and leaving a
    /// disabled region).
    pub fn new(device: AutocastDevice, dtype: Kind) -> Result<Self> {
        drop(AutocastGuard::enter(device, dtype, false)?);
        Ok(Self { device, dtype })
    }

    pub fn device(self) -> AutocastDevice {
        self.device
    }

    pub fn dtype(self) -> Kind {
        self.dtype
    }

    /// Opens a region in which autocast is `enabled` (in this setting's dtype) or disabled.
    pub fn f_enter(self, enabled: bool) -> Result<AutocastGuard> {
        AutocastGuard::enter(self.device, self.dtype, enabled)
    }

    /// [`Self::f_enter`] for code that, like tch's non-`f_` tensor methods, treats a libtorch
    /// exception as a bug.
    ///
    /// # Panics
    /// If libtorch throws, which [`Autocast::new`] has ruled out for this device and dtype.
    pub fn enter(self, enabled: bool) -> AutocastGuard {
        match self.f_enter(enabled) {
            Ok(guard) => guard,
            Err(error) => panic!("entering a checked autocast region failed: {error}"),
        }
    }
}

/// Opens a region of `setting` (enabled or disabled) when there is a setting; `None` leaves
/// the thread's autocast state alone. The one way this project enters autocast regions.
pub fn autocast_region(setting: Option<Autocast>, enabled: bool) -> Option<AutocastGuard> {
    setting.map(|autocast| autocast.enter(enabled))
}

/// Compute capability (major, minor) of CUDA device `index`; an error without a usable GPU
/// (or with a CPU-only libtorch).
pub fn cuda_capability(index: usize) -> Result<(i32, i32)> {
    let device = c_int::try_from(index).map_err(|_| TorchExtError::CudaIndex(index))?;
    let (mut major, mut minor) = (0, 0);
    call_shim(
        // SAFETY: the out-pointers and the buffer live across the call.
        |error, length| unsafe {
            ffi::swinface_cuda_capability(device, &mut major, &mut minor, error, length)
        },
        |status, reason| TorchExtError::Cuda {
            call: "cudaDeviceGetAttribute",
            status,
            reason,
        },
    )?;
    Ok((major, minor))
}

/// The calling thread's current CUDA device.
pub fn cuda_current_device() -> Result<usize> {
    let mut index = 0;
    call_shim(
        // SAFETY: the out-pointer and the buffer live across the call.
        |error, length| unsafe { ffi::swinface_cuda_current_device(&mut index, error, length) },
        |status, reason| TorchExtError::Cuda {
            call: "cudaGetDevice",
            status,
            reason,
        },
    )?;
    usize::try_from(index).map_err(|_| TorchExtError::Cuda {
        call: "cudaGetDevice",
        status: 0,
        reason: format!("negative device index {index}"),
    })
}

/// (free, total) bytes of the current CUDA device (`cudaMemGetInfo`). What libtorch's
/// caching allocator holds counts as used, freed blocks included, so `total - free` after
/// a run is its peak reservation plus the CUDA context.
pub fn cuda_mem_info() -> Result<(usize, usize)> {
    let (mut free, mut total) = (0usize, 0usize);
    call_shim(
        // SAFETY: the out-pointers and the buffer live across the call.
        |error, length| unsafe {
            ffi::swinface_cuda_mem_info(&mut free, &mut total, error, length)
        },
        |status, reason| TorchExtError::Cuda {
            call: "cudaMemGetInfo",
            status,
            reason,
        },
    )?;
    Ok((free, total))
}

/// Whether CUDA device `index` has bf16 support (compute capability >= 8.0).
pub fn cuda_device_supports_bf16(index: usize) -> bool {
    tch::Cuda::is_available()
        && cuda_capability(index).is_ok_and(|capability| capability >= BF16_MIN_CAPABILITY)
}

/// Whether the current CUDA device has bf16 support (compute capability >= 8.0); false
/// without CUDA.
pub fn cuda_supports_bf16() -> bool {
    tch::Cuda::is_available() && cuda_current_device().is_ok_and(cuda_device_supports_bf16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpp_exception_comes_back_as_an_error() {
        // Device type 2 (MKLDNN) has no autocast: libtorch throws inside the shim.
        let (mut enabled, mut dtype) = (0, 0);
        let result = call_shim(
            |error, length| unsafe {
                ffi::swinface_autocast_state(2, &mut enabled, &mut dtype, error, length)
            },
            torch_error,
        );
        match result {
            Err(TorchExtError::Torch(message)) => {
                assert!(message.contains("autocast"), "message: {message}")
            }
            other => panic!("expected a libtorch error, got {other:?}"),
        }
    }

    #[test]
    fn dtype_codes_round_trip() {
        for kind in [Kind::Half, Kind::BFloat16] {
            assert_eq!(kind_of_code(autocast_dtype_code(kind).unwrap()), Ok(kind));
        }
        assert_eq!(
            autocast_dtype_code(Kind::Float),
            Err(TorchExtError::UnsupportedAutocastDtype(Kind::Float))
        );
        assert_eq!(kind_of_code(3), Err(TorchExtError::UnknownDtypeCode(3)));
    }
}
