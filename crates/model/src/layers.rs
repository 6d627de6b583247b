//! Small layers shared by every block: Linear, LayerNorm, BatchNorm (with
//! `num_batches_tracked`, optionally synchronised over data-parallel ranks), Conv2d, the
//! PyTorch/timm initialisations and stochastic depth.
//!
//! tch's own `nn` layers are not used because the state-dict keys and buffers must match
//! PyTorch exactly (tch's BatchNorm has no `num_batches_tracked`) and the initialisations
//! must be timm's.

use std::sync::{Arc, RwLock};

use swinface_torch_ext::{sync_batch_norm, BatchNormState, SumReducer};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::ModelError;

/// LayerNorm epsilon of `nn.LayerNorm`'s default, used throughout the backbone.
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// Standard deviation of timm's `trunc_normal_` for Linear weights and the bias table.
pub const TRUNC_NORMAL_STD: f64 = 0.02;

/// Fan-in of a weight of shape `[out, in, k...]`, as `torch.nn.init` computes it.
fn fan_in(dims: &[i64]) -> i64 {
    dims.iter().skip(1).product::<i64>().max(1)
}

/// A parameter filled like timm's `trunc_normal_(t, std, a=-2, b=2)`: inverse-CDF
/// sampling of a normal truncated at the ABSOLUTE bounds -2 and 2.
pub fn trunc_normal_param(path: &nn::Path, name: &str, dims: &[i64], std: f64) -> Tensor {
    let (a, b) = (-2.0, 2.0);
    let norm_cdf = |x: f64| (1.0 + erf(x / std::f64::consts::SQRT_2)) / 2.0;
    let low = norm_cdf(a / std);
    let high = norm_cdf(b / std);
    let t = tch::no_grad(|| {
        let mut t = Tensor::empty(dims, (path.kind(), path.device()));
        let _ = t.uniform_(2.0 * low - 1.0, 2.0 * high - 1.0);
        let _ = t.erfinv_();
        let _ = t.g_mul_scalar_(std * std::f64::consts::SQRT_2);
        let _ = t.clamp_(a, b);
        t
    });
    path.add(name, t, true)
}

/// erf through libtorch (Rust's std has none); only used for init bounds.
fn erf(x: f64) -> f64 {
    Tensor::from(x).erf().double_value(&[])
}

/// A parameter with PyTorch's default Conv/Linear weight init,
/// `kaiming_uniform_(a=sqrt(5))`, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub fn default_conv_weight(path: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    let bound = 1.0 / (fan_in(dims) as f64).sqrt();
    path.var(
        name,
        dims,
        Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )
}

/// A non-trainable int64 scalar, the `num_batches_tracked` buffer.
fn counter_buffer(path: &nn::Path, name: &str) -> Tensor {
    path.add(name, Tensor::zeros([], (Kind::Int64, path.device())), false)
}

/// `nn.Linear` with timm's init: weight ~ trunc_normal(0.02), bias 0.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(path: &nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> Self {
        let weight = trunc_normal_param(path, "weight", &[out_dim, in_dim], TRUNC_NORMAL_STD);
        let bias = bias.then(|| path.zeros("bias", &[out_dim]));
        Self { weight, bias }
    }

    /// x: [..., in] -> [..., out]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.LayerNorm(dim)` over the last axis, weight 1, bias 0, eps 1e-5.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    dim: i64,
}

impl LayerNorm {
    pub fn new(path: &nn::Path, dim: i64) -> Self {
        Self {
            weight: path.ones("weight", &[dim]),
            bias: path.zeros("bias", &[dim]),
            dim,
        }
    }

    /// x: [..., dim] -> [..., dim]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            LAYER_NORM_EPS,
            true,
        )
    }
}

/// The switch that makes BatchNorms synchronised: one handle shared by every BatchNorm of
/// a model (clones share it). Unset (the default), or in eval mode, BatchNorm is libtorch's
/// `batch_norm` on the rank's own batch.
#[derive(Clone, Default)]
pub struct BatchNormSync(Arc<RwLock<Option<Arc<dyn SumReducer>>>>);

impl BatchNormSync {
    /// From now on, training-mode BatchNorms use the statistics of the batch combined
    /// through `reducer` (`None`: each rank's own again).
    pub fn set(&self, reducer: Option<Arc<dyn SumReducer>>) {
        // The slot holds a plain value: a panic elsewhere cannot leave it half-written.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = reducer;
    }

    pub fn reducer(&self) -> Option<Arc<dyn SumReducer>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_set(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

impl std::fmt::Debug for BatchNormSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BatchNormSync")
            .field(&if self.is_set() {
                "synchronised"
            } else {
                "local"
            })
            .finish()
    }
}

/// `nn.BatchNorm1d` / `nn.BatchNorm2d` with PyTorch's buffers
/// (`running_mean`, `running_var`, `num_batches_tracked`); `nn.SyncBatchNorm` in training
/// when its [`BatchNormSync`] is set.
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    eps: f64,
    momentum: f64,
    sync: BatchNormSync,
}

impl BatchNorm {
    /// A BatchNorm with its own (unset) [`BatchNormSync`].
    pub fn new(path: &nn::Path, dim: i64, eps: f64, momentum: f64) -> Self {
        Self {
            weight: path.ones("weight", &[dim]),
            bias: path.zeros("bias", &[dim]),
            running_mean: path.zeros_no_train("running_mean", &[dim]),
            running_var: path.ones_no_train("running_var", &[dim]),
            num_batches_tracked: counter_buffer(path, "num_batches_tracked"),
            eps,
            momentum,
            sync: BatchNormSync::default(),
        }
    }

    /// Shares `sync` (the model's handle) instead of its own.
    pub fn with_sync(mut self, sync: &BatchNormSync) -> Self {
        self.sync = sync.clone();
        self
    }

    /// x: [B, C] or [B, C, H, W]. In training, normalises with the batch statistics,
    /// updates the running statistics (unbiased variance, like PyTorch) and counts the batch.
    ///
    /// # Panics
    /// Where [`Self::f_forward_t`] fails: on a libtorch error, or when synchronised and the
    /// collective fails.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(x, train)
            .unwrap_or_else(|e| panic!("BatchNorm: {e}"))
    }

    /// [`Self::forward_t`]; a failing collective of a synchronised BatchNorm is an error.
    /// In training with the sync handle set, the statistics are the batch's combined over
    /// the ranks (one collective here and one in backward): every rank must run the same
    /// BatchNorms in the same order.
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        if train {
            let mut counter = self.num_batches_tracked.shallow_clone();
            let _ = tch::no_grad(|| counter.f_add_scalar_(1))?;
            if let Some(reducer) = self.sync.reducer() {
                let state = BatchNormState {
                    weight: &self.weight,
                    bias: &self.bias,
                    running_mean: &self.running_mean,
                    running_var: &self.running_var,
                    momentum: self.momentum,
                    eps: self.eps,
                };
                return sync_batch_norm(x, &state, reducer).map_err(ModelError::SyncBatchNorm);
            }
        }
        Ok(x.f_batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            self.eps,
            true,
        )?)
    }
}

/// `nn.Conv2d` with square kernel, stride and padding, PyTorch's default init.
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    pub fn new(
        path: &nn::Path,
        in_chans: i64,
        out_chans: i64,
        kernel_size: i64,
        stride: i64,
        padding: i64,
        bias: bool,
    ) -> Self {
        let dims = [out_chans, in_chans, kernel_size, kernel_size];
        let weight = default_conv_weight(path, "weight", &dims);
        let bias = bias.then(|| {
            let bound = 1.0 / (fan_in(&dims) as f64).sqrt();
            path.var(
                "bias",
                &[out_chans],
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )
        });
        Self {
            weight,
            bias,
            stride,
            padding,
        }
    }

    /// x: [B, in, H, W] -> [B, out, H', W']
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, &self.weight, self.bias.as_ref())
    }

    /// Several convs of the same input as one: their weights (and biases) concatenated
    /// along the output channels, so one large kernel runs instead of many small ones.
    /// The convs must share kernel size, stride and padding (and all have a bias or none);
    /// `None` when they do not or when there are none.
    ///
    /// x: [B, in, H, W] -> [B, Σ out, H', W']
    pub fn forward_concatenated(convs: &[&Conv2d], x: &Tensor) -> Option<Tensor> {
        let first = convs.first()?;
        let alike = convs.iter().all(|c| {
            c.stride == first.stride
                && c.padding == first.padding
                && c.weight.size()[1..] == first.weight.size()[1..]
                && c.bias.is_some() == first.bias.is_some()
        });
        if !alike {
            return None;
        }
        let weight = Tensor::cat(&convs.iter().map(|c| &c.weight).collect::<Vec<_>>(), 0);
        let bias = first.bias.is_some().then(|| {
            Tensor::cat(
                &convs
                    .iter()
                    .filter_map(|c| c.bias.as_ref())
                    .collect::<Vec<_>>(),
                0,
            )
        });
        Some(first.forward_with(x, &weight, bias.as_ref()))
    }

    fn forward_with(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        x.conv2d(
            weight,
            bias,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// Stochastic depth (timm's `DropPath`): in training, zeroes whole samples with
/// probability `p` and scales the kept ones by `1 / (1 - p)`; identity in eval.
///
/// x: [B, ...] -> [B, ...]
pub fn drop_path(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return x.shallow_clone();
    }
    let keep = 1.0 - p;
    let mut mask_shape = vec![1i64; x.dim()];
    mask_shape[0] = x.size()[0];
    let mut mask = Tensor::empty(mask_shape.as_slice(), (x.kind(), x.device()));
    let _ = mask.bernoulli_float_(keep);
    if keep > 0.0 {
        let _ = mask.g_div_scalar_(keep);
    }
    x * mask
}

/// `nn.Dropout(p)`, skipped entirely when it cannot change anything.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        x.shallow_clone()
    } else {
        x.dropout(p, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::VarStore;
    use tch::Device;

    #[test]
    fn drop_path_scales_kept_samples_in_train_and_is_identity_in_eval() {
        let x = Tensor::ones([4000, 3, 5], (Kind::Float, Device::Cpu));
        let eval = drop_path(&x, 0.25, false);
        assert_eq!(f64::try_from((&eval - &x).abs().max()).unwrap(), 0.0);

        let train = drop_path(&x, 0.25, true);
        // Every sample is either all 0 or all 1/0.75.
        let per_sample_min = train.amin([1, 2], false);
        let per_sample_max = train.amax([1, 2], false);
        assert_eq!(
            f64::try_from((&per_sample_max - &per_sample_min).abs().max()).unwrap(),
            0.0
        );
        let values: Vec<f32> = Vec::try_from(&per_sample_max).unwrap();
        let scale = 1.0 / 0.75;
        assert!(values
            .iter()
            .all(|&v| v == 0.0 || (v as f64 - scale).abs() < 1e-6));
        let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64 / values.len() as f64;
        // Binomial(4000, 0.25): sd ~ 0.0068, so 0.03 is > 4 sd.
        assert!((dropped - 0.25).abs() < 0.03, "dropped fraction {dropped}");
        // The expectation is preserved.
        let mean = f64::try_from(train.mean(Kind::Float)).unwrap();
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn batch_norm_counts_batches_and_updates_running_stats_like_pytorch() {
        let vs = VarStore::new(Device::Cpu);
        let bn = BatchNorm::new(&(vs.root() / "bn"), 2, 1e-5, 0.1);
        let x = Tensor::from_slice(&[1.0f32, 10.0, 3.0, 20.0, 5.0, 30.0]).view([3, 2]);
        let _ = bn.forward_t(&x, true);
        let _ = bn.forward_t(&x, true);
        assert_eq!(i64::try_from(&bn.num_batches_tracked).unwrap(), 2);
        let _ = bn.forward_t(&x, false);
        assert_eq!(i64::try_from(&bn.num_batches_tracked).unwrap(), 2);

        // Column 0: mean 3, unbiased var 4; column 1: mean 20, unbiased var 100.
        // Two updates with momentum 0.1: m = 0.19 * batch, v = 0.81 + 0.19 * batch.
        let mean: Vec<f32> = Vec::try_from(&bn.running_mean).unwrap();
        let var: Vec<f32> = Vec::try_from(&bn.running_var).unwrap();
        let expect_mean = [0.19 * 3.0, 0.19 * 20.0];
        let expect_var = [0.81 + 0.19 * 4.0, 0.81 + 0.19 * 100.0];
        for c in 0..2 {
            assert!((mean[c] as f64 - expect_mean[c]).abs() < 1e-5, "{mean:?}");
            assert!((var[c] as f64 - expect_var[c]).abs() < 1e-4, "{var:?}");
        }
    }

    #[test]
    fn trunc_normal_has_requested_spread_and_cut() {
        let vs = VarStore::new(Device::Cpu);
        let w = trunc_normal_param(&vs.root(), "w", &[256, 256], 0.02);
        let std = f64::try_from(w.std(true)).unwrap();
        let mean = f64::try_from(w.mean(Kind::Float)).unwrap();
        assert!((std - 0.02).abs() < 0.001, "std {std}");
        assert!(mean.abs() < 0.001, "mean {mean}");
        // With std 1 the absolute cut at +-2 is visible.
        let wide = trunc_normal_param(&vs.root(), "wide", &[100_000], 1.0);
        let max_abs = f64::try_from(wide.abs().max()).unwrap();
        assert!(max_abs <= 2.0 && max_abs > 1.9, "max |x| {max_abs}");
        assert!(w.requires_grad());
    }

    #[test]
    fn default_conv_init_is_bounded_by_one_over_sqrt_fan_in() {
        let vs = VarStore::new(Device::Cpu);
        let conv = Conv2d::new(&vs.root(), 16, 8, 3, 1, 1, true);
        let bound = 1.0 / (16.0f64 * 9.0).sqrt();
        let max_w = f64::try_from(conv.weight.abs().max()).unwrap();
        assert!(max_w <= bound && max_w > 0.9 * bound, "{max_w} vs {bound}");
        let x = Tensor::ones([2, 16, 5, 5], (Kind::Float, Device::Cpu));
        assert_eq!(conv.forward(&x).size(), [2, 8, 5, 5]);
    }
}
