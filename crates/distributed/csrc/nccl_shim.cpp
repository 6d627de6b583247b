// C ABI over c10d::ProcessGroupNCCL (the `nccl` cargo feature): the process group
// torch.distributed uses on GPUs, rendezvousing through the same TCPStore as the rest.
//
// No C++ exception may cross into Rust: every entry point catches everything and returns
// a non-zero status with the message copied into the caller's buffer. Tensors arrive as
// tch's C tensors, which are `at::Tensor*`.

#include "swinface_guarded.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <vector>

#include "store_shim.h"

namespace {

using swinface::guarded;
using swinface::kError;
using swinface::kOk;
using swinface::write_message;

// 0: sum, 1: max, 2: average (NCCL >= 2.10).
c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 0:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
    case 1:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case 2:
      return c10d::ReduceOp(c10d::ReduceOp::AVG);
    default:
      throw std::invalid_argument("unknown reduce op code");
  }
}

}  // namespace

struct swinface_nccl {
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> group;
};

extern "C" {

int swinface_nccl_new(swinface_store* store, int rank, int world_size, int64_t timeout_ms,
                      swinface_nccl** out, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    // Its own key space in the store, apart from the store collectives' keys.
    c10::intrusive_ptr<c10d::Store> base = store->store;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("swinface_nccl", base);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = std::chrono::milliseconds(timeout_ms);
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world_size,
                                                             options);
    *out = new swinface_nccl{std::move(group)};
  });
}

void swinface_nccl_free(swinface_nccl* handle) {
  try {
    handle->group->shutdown();
  } catch (...) {
    // Shutting down a group whose peers are gone may throw; the handle goes anyway.
  }
  try {
    delete handle;
  } catch (...) {
  }
}

int swinface_nccl_all_reduce(swinface_nccl* handle, at::Tensor* tensor, int op, char* error,
                             size_t error_length) {
  return guarded(error, error_length, [&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = reduce_op(op);
    handle->group->allreduce(tensors, options)->wait();
  });
}

int swinface_nccl_broadcast(swinface_nccl* handle, at::Tensor* tensor, int root, char* error,
                            size_t error_length) {
  return guarded(error, error_length, [&] {
    std::vector<at::Tensor> tensors{*tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.rootTensor = 0;
    handle->group->broadcast(tensors, options)->wait();
  });
}

// outputs: world_size tensors shaped like input, filled in rank order.
int swinface_nccl_all_gather(swinface_nccl* handle, at::Tensor* input, at::Tensor** outputs,
                             size_t count, char* error, size_t error_length) {
  return guarded(error, error_length, [&] {
    std::vector<std::vector<at::Tensor>> out(1);
    for (size_t i = 0; i < count; ++i) {
      out[0].push_back(*outputs[i]);
    }
    std::vector<at::Tensor> in{*input};
    handle->group->allgather(out, in)->wait();
  });
}

}  // extern "C"
