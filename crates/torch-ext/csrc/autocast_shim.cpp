// C ABI over ATen's thread-local autocast state (the calls torch.autocast's __enter__ and
// __exit__ make) and over the CUDA runtime's device capability query.
//
// No C++ exception may cross into Rust: every entry point catches everything and returns
// a non-zero status with the message copied into the caller's buffer.

#include "swinface_guarded.h"

#include <ATen/autocast_mode.h>

#include <dlfcn.h>

#include <cstddef>
#include <cstring>
#include <exception>

namespace {

using swinface::guarded;
using swinface::kError;
using swinface::kOk;
using swinface::write_message;

// cudaDeviceAttr values from the CUDA runtime's driver_types.h (stable since CUDA 2).
constexpr int kComputeCapabilityMajor = 75;
constexpr int kComputeCapabilityMinor = 76;

c10::DeviceType device_type(int value) {
  return static_cast<c10::DeviceType>(static_cast<int8_t>(value));
}

// A CUDA runtime function, looked up in the already loaded libcudart (a dependency of
// libtorch_cuda) so that this file needs no CUDA headers and links no CUDA library.
template <typename Function>
Function cuda_runtime_function(const char* name) {
  return reinterpret_cast<Function>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

extern "C" {

// Reads the autocast state of `device` (a c10::DeviceType): enabled flag and dtype
// (a c10::ScalarType).
int swinface_autocast_state(int device, int* enabled, int* dtype, char* error,
                            size_t error_length) {
  return guarded(error, error_length, [&] {
    const auto type = device_type(device);
    *enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(type));
  });
}

// torch.autocast.__enter__: remembers the previous flag and dtype, sets the new ones, and
// increments the nesting depth. On failure nothing is left changed.
int swinface_autocast_enter(int device, int dtype, int enabled, int* previous_enabled,
                            int* previous_dtype, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    const auto type = device_type(device);
    const bool was_enabled = at::autocast::is_autocast_enabled(type);
    const auto was_dtype = at::autocast::get_autocast_dtype(type);
    try {
      at::autocast::set_autocast_enabled(type, enabled != 0);
      at::autocast::set_autocast_dtype(type, static_cast<c10::ScalarType>(dtype));
    } catch (...) {
      at::autocast::set_autocast_enabled(type, was_enabled);
      at::autocast::set_autocast_dtype(type, was_dtype);
      throw;
    }
    at::autocast::increment_nesting();
    *previous_enabled = was_enabled ? 1 : 0;
    *previous_dtype = static_cast<int>(was_dtype);
  });
}

// torch.autocast.__exit__: decrements the nesting depth, clears the cast cache when the
// outermost region closes, and restores the previous flag and dtype.
int swinface_autocast_exit(int device, int previous_enabled, int previous_dtype, char* error,
                           size_t error_length) {
  return guarded(error, error_length, [&] {
    const auto type = device_type(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(type, previous_enabled != 0);
    at::autocast::set_autocast_dtype(type, static_cast<c10::ScalarType>(previous_dtype));
  });
}

// The calling thread's current CUDA device.
int swinface_cuda_current_device(int* index, char* error, size_t error_length) {
  using GetDevice = int (*)(int*);
  const auto get_device = cuda_runtime_function<GetDevice>("cudaGetDevice");
  if (get_device == nullptr) {
    write_message(error, error_length, "the CUDA runtime is not loaded (CPU-only libtorch?)");
    return kError;
  }
  const int status = get_device(index);
  if (status != 0) {
    write_message(error, error_length, "cudaGetDevice failed");
    return status;
  }
  return kOk;
}

// Compute capability (major, minor) of CUDA device `index`.
int swinface_cuda_capability(int index, int* major, int* minor, char* error,
                             size_t error_length) {
  using GetAttribute = int (*)(int*, int, int);
  const auto get_attribute = cuda_runtime_function<GetAttribute>("cudaDeviceGetAttribute");
  if (get_attribute == nullptr) {
    write_message(error, error_length, "the CUDA runtime is not loaded (CPU-only libtorch?)");
    return kError;
  }
  int status = get_attribute(major, kComputeCapabilityMajor, index);
  if (status == 0) {
    status = get_attribute(minor, kComputeCapabilityMinor, index);
  }
  if (status != 0) {
    write_message(error, error_length, "cudaDeviceGetAttribute failed (no such device?)");
    return status;
  }
  return kOk;
}

// Free and total bytes of the current CUDA device (cudaMemGetInfo).
int swinface_cuda_mem_info(size_t* free_bytes, size_t* total_bytes, char* error,
                           size_t error_length) {
  using MemGetInfo = int (*)(size_t*, size_t*);
  const auto mem_get_info = cuda_runtime_function<MemGetInfo>("cudaMemGetInfo");
  if (mem_get_info == nullptr) {
    write_message(error, error_length, "the CUDA runtime is not loaded (CPU-only libtorch?)");
    return kError;
  }
  const int status = mem_get_info(free_bytes, total_bytes);
  if (status != 0) {
    write_message(error, error_length, "cudaMemGetInfo failed");
    return status;
  }
  return kOk;
}

}  // extern "C"
