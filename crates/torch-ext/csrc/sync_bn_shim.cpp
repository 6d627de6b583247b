// Synchronised BatchNorm for data-parallel training, with the semantics of
// torch.nn.SyncBatchNorm (torch/nn/modules/_functions.py): a torch::autograd::Function whose
// forward normalises with the statistics of the batch combined over all ranks and whose
// backward reduces the two per-channel gradient sums over the ranks as well.
//
// The collective is the caller's: forward and backward call back into Rust through a C
// function pointer with an opaque context, once each, to sum a small float64 tensor over
// the ranks in place. A failing callback becomes a C++ exception: out of forward it is
// caught here and returned as an error, out of backward it travels through the autograd
// engine to the caller of backward (tch's `f_backward` returns it as an error).
//
// No C++ exception may cross into Rust: every entry point catches everything and returns
// a non-zero status with the message copied into the caller's buffer. Tensors arrive as
// tch's C tensors, which are `at::Tensor*`.

#include "swinface_guarded.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern "C" {
// Sums `tensor` over the ranks in place; non-zero on failure, with a NUL-terminated message
// in `error` (at most `error_length` bytes). `tensor` stays owned by the caller of the
// callback.
typedef int (*swinface_reduce_fn)(void* context, at::Tensor* tensor, char* error,
                                  size_t error_length);
// Frees `context`; called once, when the last forward result or autograd node holding it
// goes (possibly on another thread).
typedef void (*swinface_release_fn)(void* context);
}

namespace {

using swinface::guarded;
using swinface::kError;
using swinface::kOk;
using swinface::write_message;

constexpr size_t kCallbackMessage = 1024;

// The caller's all-reduce-sum, owned by the forward result's autograd node (kept in its
// saved_data as a capsule) so that backward can still call it.
struct SumReducer : torch::CustomClassHolder {
  SumReducer(swinface_reduce_fn reduce, void* context, swinface_release_fn release)
      : reduce_(reduce), context_(context), release_(release) {}
  SumReducer(const SumReducer&) = delete;
  SumReducer& operator=(const SumReducer&) = delete;
  ~SumReducer() override {
    if (release_ != nullptr) {
      release_(context_);
    }
  }

  // Sums `tensor` over the ranks in place; throws when the callback fails.
  void all_reduce_sum(at::Tensor& tensor, const char* what) const {
    char message[kCallbackMessage] = {0};
    const int status = reduce_(context_, &tensor, message, sizeof message);
    if (status != 0) {
      message[sizeof message - 1] = '\0';
      throw std::runtime_error(std::string("sync_batch_norm: the all-reduce of the ") + what +
                               " failed: " + message);
    }
  }

 private:
  swinface_reduce_fn reduce_;
  void* context_;
  swinface_release_fn release_;
};

// Reduction dimensions (all but the channel dimension 1) and the broadcast shape
// [1, C, 1, ...] of a per-channel vector.
std::vector<int64_t> reduce_dims(const at::Tensor& input) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < input.dim(); ++d) {
    dims.push_back(d);
  }
  return dims;
}

std::vector<int64_t> channel_shape(const at::Tensor& input) {
  std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
  shape[1] = input.size(1);
  return shape;
}

// Elementwise work runs in the input's dtype, or in float for half inputs (as batch_norm's
// kernels accumulate); the per-channel sums in float64.
at::ScalarType compute_type(const at::Tensor& input) {
  const auto type = input.scalar_type();
  return at::isReducedFloatingType(type) ? at::kFloat : type;
}

struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& running_mean, const at::Tensor& running_var,
                            double momentum, double eps, c10::intrusive_ptr<SumReducer> reducer) {
    TORCH_CHECK(input.dim() >= 2, "sync_batch_norm: the input must be [B, C, ...], got ",
                input.sizes());
    TORCH_CHECK(at::isFloatingType(input.scalar_type()),
                "sync_batch_norm: the input must be floating point, got ", input.scalar_type());
    const int64_t channels = input.size(1);
    for (const auto* t : {&weight, &bias, &running_mean, &running_var}) {
      TORCH_CHECK(t->defined() && t->dim() == 1 && t->size(0) == channels,
                  "sync_batch_norm: weight, bias and the running statistics must be [", channels,
                  "]");
    }
    const auto dims = reduce_dims(input);
    const auto shape = channel_shape(input);
    const auto type = compute_type(input);

    // Local [sum x, sum x^2, count] -> the combined batch's, on every rank.
    const auto x = input.to(type);
    const auto x64 = input.to(at::kDouble);
    const double local_count = static_cast<double>(channels == 0 ? 0 : input.numel() / channels);
    auto stats = at::cat({x64.sum(dims), (x64 * x64).sum(dims),
                          at::full({1}, local_count, x64.options())});
    reducer->all_reduce_sum(stats, "forward statistics");
    const double count = stats[2 * channels].item<double>();
    // Every rank sees the same count, so every rank throws here alike.
    TORCH_CHECK(count > 1, "sync_batch_norm: expected more than 1 value per channel when "
                           "training, got ", count, " over all ranks");

    const auto mean64 = stats.narrow(0, 0, channels) / count;
    // Biased variance for normalising; summed in float64, so S2/N - mean^2 loses nothing
    // that matters at float32 precision.
    const auto var64 = (stats.narrow(0, channels, channels) / count - mean64 * mean64).clamp_min(0);
    const auto invstd64 = (var64 + eps).rsqrt();

    // Running statistics: the global mean and the unbiased global variance.
    {
      at::NoGradGuard no_grad;
      auto rm = running_mean;
      auto rv = running_var;
      rm.copy_(rm.to(at::kDouble) * (1.0 - momentum) + mean64 * momentum);
      rv.copy_(rv.to(at::kDouble) * (1.0 - momentum) +
               var64 * (count / (count - 1.0)) * momentum);
    }

    const auto mean = mean64.to(type);
    const auto scale = (invstd64 * weight.to(at::kDouble)).to(type);
    const auto output =
        ((x - mean.view(shape)) * scale.view(shape) + bias.to(type).view(shape)).to(
            input.scalar_type());

    ctx->save_for_backward({input, weight, mean, invstd64});
    ctx->saved_data["count"] = count;
    ctx->saved_data["reducer"] = c10::IValue::make_capsule(std::move(reducer));
    return output;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& input = saved[0];
    const auto& weight = saved[1];
    const auto& mean = saved[2];
    const auto& invstd64 = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    const auto reducer =
        c10::static_intrusive_pointer_cast<SumReducer>(ctx->saved_data["reducer"].toCapsule());

    const int64_t channels = input.size(1);
    const auto dims = reduce_dims(input);
    const auto shape = channel_shape(input);
    const auto type = compute_type(input);

    const auto dy = grad_outputs[0].to(type);
    const auto xmu = input.to(type) - mean.view(shape);
    const auto sum_dy = dy.sum(dims, false, at::kDouble);
    const auto sum_dy_xmu = (dy * xmu).sum(dims, false, at::kDouble);

    // Local, as PyTorch's SyncBatchNorm leaves them: DDP averages parameter gradients.
    const auto grad_weight = (sum_dy_xmu * invstd64).to(weight.scalar_type());
    const auto grad_bias = sum_dy.to(weight.scalar_type());

    at::Tensor grad_input;
    // The graph is the same on every rank, so every rank takes this branch alike.
    if (ctx->needs_input_grad(0)) {
      auto sums = at::cat({sum_dy, sum_dy_xmu});
      reducer->all_reduce_sum(sums, "backward gradient sums");
      const auto mean_dy = (sums.narrow(0, 0, channels) / count).to(type);
      const auto mean_dy_xmu = sums.narrow(0, channels, channels) / count;
      const auto k = (mean_dy_xmu * invstd64 * invstd64).to(type);
      const auto scale = (invstd64 * weight.to(at::kDouble)).to(type);
      grad_input = ((dy - mean_dy.view(shape) - xmu * k.view(shape)) * scale.view(shape))
                       .to(input.scalar_type());
    }
    // One entry per forward argument: input, weight, bias, running_mean, running_var,
    // momentum, eps, reducer.
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor(),
            at::Tensor(),  at::Tensor(),  at::Tensor()};
  }
};

}  // namespace

extern "C" {

// Training-mode synchronised BatchNorm of `input` [B, C, ...]: `*out` receives a new
// tensor (the caller frees it). The shim owns `context` from the call on: `release` frees
// it, immediately on failure, otherwise when the result's autograd node (or, without
// autograd, the call) is done with it.
int swinface_sync_batch_norm(const at::Tensor* input, const at::Tensor* weight,
                             const at::Tensor* bias, const at::Tensor* running_mean,
                             const at::Tensor* running_var, double momentum, double eps,
                             swinface_reduce_fn reduce, void* context,
                             swinface_release_fn release, at::Tensor** out, char* error,
                             size_t error_length) {
  c10::intrusive_ptr<SumReducer> reducer;
  try {
    reducer = c10::make_intrusive<SumReducer>(reduce, context, release);
  } catch (...) {
    release(context);
    write_message(error, error_length, "sync_batch_norm: out of memory");
    return kError;
  }
  return guarded(error, error_length, [&] {
    TORCH_CHECK(reduce != nullptr, "sync_batch_norm: no reduce callback");
    auto output = SyncBatchNormFunction::apply(*input, *weight, *bias, *running_mean,
                                               *running_var, momentum, eps, std::move(reducer));
    *out = new at::Tensor(std::move(output));
  });
}

}  // extern "C"
