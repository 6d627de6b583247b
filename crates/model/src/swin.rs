//! Swin Transformer backbone, as SwinFace modifies it: besides the embedding it returns
//! the multi-level local features and the last stage's global feature map.
//!
//! Variable names follow the official state dict (`backbone.layers.0.blocks.1.attn.qkv.weight`,
//! buffers `relative_position_index` and `attn_mask` included).
//!
//! Mixed precision ([`SwinTransformer::set_autocast`]) follows the official blocks: autocast
//! on for the qkv projection, the output projection and `norm2` + MLP (with its residual
//! add), off for the attention core, which runs in fp32; everything outside the blocks runs
//! with autocast off.

use serde::{Deserialize, Serialize};
use swinface_torch_ext::{autocast_region, Autocast};
use tch::{nn, Device, Kind, Tensor};

use crate::config::ConfigError;
use crate::layers::{
    drop_path, dropout, trunc_normal_param, BatchNorm, BatchNormSync, Conv2d, LayerNorm, Linear,
    TRUNC_NORMAL_STD,
};

/// BatchNorm1d settings of the embedding head (`backbone.feature.1/3`).
const FEATURE_BN_EPS: f64 = 2e-5;
const BN_MOMENTUM: f64 = 0.1;
/// Logit added to attention between tokens from different regions of a shifted window.
const SHIFT_MASK_VALUE: f32 = -100.0;
/// Sanity bound on `mlp_ratio` (Swin uses 4).
const MAX_MLP_RATIO: f64 = 64.0;

/// How window attention is computed. Both match the official outputs to float round-off
/// (tests/parity.rs: max abs diff 1e-6 for `math`, 8e-6 for `sdpa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKernel {
    /// The official sequence: `softmax(q * scale @ k^T + bias + mask) @ v`.
    Math,
    /// `scaled_dot_product_attention` with bias and shift mask as one additive mask.
    Sdpa,
    /// `sdpa` where no gradient is recorded (eval, inference) and on the GPU; `math` when
    /// training on the CPU. There SDPA's forward without grad is up to 2x faster than
    /// `math` (stage 1, batch 32), but with a mask that needs its gradient (the bias table
    /// is a parameter) its forward + backward is 20-35% slower (BENCHMARKS.md).
    #[default]
    Auto,
}

impl AttentionKernel {
    /// Whether attention over `q` runs through SDPA (`Auto` resolved for `q`).
    pub fn uses_sdpa(self, q: &Tensor) -> bool {
        match self {
            Self::Math => false,
            Self::Sdpa => true,
            Self::Auto => !(q.requires_grad() && q.device() == Device::Cpu),
        }
    }
}

/// Hyper-parameters of the Swin backbone. Default: Swin-T as SwinFace builds it
/// (112x112 input, patch 2, window 7, depths 2-2-6-2, heads 3-6-12-24).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwinConfig {
    /// Input side length in pixels (square images).
    pub img_size: i64,
    pub patch_size: i64,
    pub in_chans: i64,
    /// Channels of the first stage; stage i has `embed_dim * 2^i`.
    pub embed_dim: i64,
    /// Blocks per stage.
    pub depths: Vec<i64>,
    /// Attention heads per stage.
    pub num_heads: Vec<i64>,
    /// Window side; clamped to a stage's resolution when that is not larger (then no shift).
    pub window_size: i64,
    pub mlp_ratio: f64,
    pub qkv_bias: bool,
    /// Overrides `head_dim^-0.5` when set (and non-zero, as in the official `or`).
    pub qk_scale: Option<f64>,
    pub drop_rate: f64,
    pub attn_drop_rate: f64,
    /// Stochastic depth rate of the last block; block k of n gets `rate * k / (n - 1)`.
    pub drop_path_rate: f64,
    /// Absolute position embedding.
    pub ape: bool,
    /// LayerNorm after the patch embedding.
    pub patch_norm: bool,
    pub attention: AttentionKernel,
}

impl Default for SwinConfig {
    fn default() -> Self {
        Self {
            img_size: 112,
            patch_size: 2,
            in_chans: 3,
            embed_dim: 96,
            depths: vec![2, 2, 6, 2],
            num_heads: vec![3, 6, 12, 24],
            window_size: 7,
            mlp_ratio: 4.0,
            qkv_bias: true,
            qk_scale: None,
            drop_rate: 0.0,
            attn_drop_rate: 0.0,
            drop_path_rate: 0.1,
            ape: false,
            patch_norm: true,
            attention: AttentionKernel::Auto,
        }
    }
}

impl SwinConfig {
    pub fn num_stages(&self) -> usize {
        self.depths.len()
    }

    /// Channels of stage `i`'s blocks.
    pub fn stage_dim(&self, stage: usize) -> i64 {
        self.embed_dim << stage
    }

    /// Token grid side of stage `i`'s blocks.
    pub fn stage_resolution(&self, stage: usize) -> i64 {
        (self.img_size / self.patch_size) >> stage
    }

    /// Channels of the last stage (the global features and the pooled embedding input).
    pub fn num_features(&self) -> i64 {
        self.stage_dim(self.num_stages().saturating_sub(1))
    }

    /// Side of the local and global feature maps (the last stage's resolution).
    pub fn feature_resolution(&self) -> i64 {
        self.stage_resolution(self.num_stages().saturating_sub(1))
    }

    /// Channels of each local feature map: the output of every non-final stage after
    /// its patch merging, i.e. the next stage's width.
    pub fn local_feature_dims(&self) -> Vec<i64> {
        (1..self.num_stages()).map(|i| self.stage_dim(i)).collect()
    }

    /// Per-block stochastic depth rates, `torch.linspace(0, drop_path_rate, sum(depths))`.
    pub fn drop_path_rates(&self) -> Vec<f64> {
        let total: i64 = self.depths.iter().sum();
        let n = total.max(0) as usize;
        (0..n)
            .map(|k| {
                if n > 1 {
                    self.drop_path_rate * k as f64 / (n - 1) as f64
                } else {
                    0.0
                }
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("img_size", self.img_size),
            ("patch_size", self.patch_size),
            ("in_chans", self.in_chans),
            ("embed_dim", self.embed_dim),
            ("window_size", self.window_size),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ConfigError::NotPositive { name, value });
            }
        }
        if self.depths.len() != self.num_heads.len() {
            return Err(ConfigError::StageCountMismatch {
                depths: self.depths.len(),
                num_heads: self.num_heads.len(),
            });
        }
        // Local features need at least one non-final stage.
        if self.num_stages() < 2 || self.num_stages() > 8 {
            return Err(ConfigError::StageCount(self.num_stages()));
        }
        for (stage, (&depth, &heads)) in self.depths.iter().zip(&self.num_heads).enumerate() {
            if depth <= 0 {
                return Err(ConfigError::NotPositive {
                    name: "depths[i]",
                    value: depth,
                });
            }
            if heads <= 0 {
                return Err(ConfigError::NotPositive {
                    name: "num_heads[i]",
                    value: heads,
                });
            }
            let dim = self.stage_dim(stage);
            if dim % heads != 0 {
                return Err(ConfigError::HeadsDoNotDivide { stage, dim, heads });
            }
        }
        let required = self.patch_size << (self.num_stages() - 1);
        if self.img_size % required != 0 {
            return Err(ConfigError::ImageNotDivisible {
                img_size: self.img_size,
                required,
            });
        }
        for stage in 0..self.num_stages() {
            let resolution = self.stage_resolution(stage);
            if resolution > self.window_size && resolution % self.window_size != 0 {
                return Err(ConfigError::WindowDoesNotTile {
                    stage,
                    resolution,
                    window_size: self.window_size,
                });
            }
        }
        // NaN and infinity fail `is_finite`; the upper bound keeps the MLP allocatable.
        let hidden = self.stage_dim(0) as f64 * self.mlp_ratio;
        if !hidden.is_finite() || hidden < 1.0 || self.mlp_ratio > MAX_MLP_RATIO {
            return Err(ConfigError::BadMlpRatio(self.mlp_ratio));
        }
        let rates = [
            ("drop_rate", self.drop_rate),
            ("attn_drop_rate", self.attn_drop_rate),
            ("drop_path_rate", self.drop_path_rate),
        ];
        for (name, value) in rates {
            if !(0.0..1.0).contains(&value) {
                return Err(ConfigError::BadRate { name, value });
            }
        }
        Ok(())
    }
}

/// Splits a map into non-overlapping windows.
///
/// x: [B, H, W, C] -> [B * H/ws * W/ws, ws, ws, C] (windows in row-major order per image)
pub fn window_partition(x: &Tensor, window_size: i64) -> Tensor {
    let (b, h, w, c) = dims4(x);
    x.view([
        b,
        h / window_size,
        window_size,
        w / window_size,
        window_size,
        c,
    ])
    .permute([0, 1, 3, 2, 4, 5])
    .reshape([-1, window_size, window_size, c])
}

/// Inverse of [`window_partition`].
///
/// windows: [B * nW, ws, ws, C] -> [B, H, W, C]
pub fn window_reverse(windows: &Tensor, window_size: i64, height: i64, width: i64) -> Tensor {
    let num_windows = (height / window_size) * (width / window_size);
    let b = windows.size()[0] / num_windows;
    windows
        .view([
            b,
            height / window_size,
            width / window_size,
            window_size,
            window_size,
            -1,
        ])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, height, width, -1])
}

/// Attention mask of shifted windows on a `resolution x resolution` map: 0 between tokens
/// of the same region of the cyclically shifted map, -100 otherwise.
///
/// Returns [nW, ws*ws, ws*ws] float.
pub fn shifted_window_mask(resolution: i64, window_size: i64, shift_size: i64) -> Tensor {
    // Region of a coordinate along one axis: the three slices [0, R-ws), [R-ws, R-shift),
    // [R-shift, R) of the official code.
    let region = |p: i64| {
        if p < resolution - window_size {
            0
        } else if p < resolution - shift_size {
            1
        } else {
            2
        }
    };
    let windows_per_side = resolution / window_size;
    let tokens = window_size * window_size;
    let mut mask = Vec::with_capacity((windows_per_side.pow(2) * tokens * tokens) as usize);
    for wy in 0..windows_per_side {
        for wx in 0..windows_per_side {
            let ids: Vec<i64> = (0..tokens)
                .map(|t| {
                    let (y, x) = (
                        wy * window_size + t / window_size,
                        wx * window_size + t % window_size,
                    );
                    3 * region(y) + region(x)
                })
                .collect();
            for &a in &ids {
                mask.extend(
                    ids.iter()
                        .map(|&b| if a == b { 0.0 } else { SHIFT_MASK_VALUE }),
                );
            }
        }
    }
    Tensor::from_slice(&mask).view([windows_per_side * windows_per_side, tokens, tokens])
}

/// Index into the relative position bias table for every (query, key) token pair of a
/// window: `(dy + ws - 1) * (2 ws - 1) + (dx + ws - 1)`.
///
/// Returns [ws*ws, ws*ws] int64.
pub fn relative_position_index(window_size: i64) -> Tensor {
    let tokens = window_size * window_size;
    let side = 2 * window_size - 1;
    let mut index = Vec::with_capacity((tokens * tokens) as usize);
    for a in 0..tokens {
        for b in 0..tokens {
            let dy = a / window_size - b / window_size + window_size - 1;
            let dx = a % window_size - b % window_size + window_size - 1;
            index.push(dy * side + dx);
        }
    }
    Tensor::from_slice(&index).view([tokens, tokens])
}

fn dims3(x: &Tensor) -> (i64, i64, i64) {
    let s = x.size();
    (s[0], s[1], s[2])
}

fn dims4(x: &Tensor) -> (i64, i64, i64, i64) {
    let s = x.size();
    (s[0], s[1], s[2], s[3])
}

/// Multi-head self-attention inside windows, with relative position bias.
#[derive(Debug)]
struct WindowAttention {
    qkv: Linear,
    proj: Linear,
    relative_position_bias_table: Tensor,
    relative_position_index: Tensor,
    num_heads: i64,
    tokens: i64,
    scale: f64,
    attn_drop: f64,
    proj_drop: f64,
    kernel: AttentionKernel,
}

impl WindowAttention {
    fn new(path: &nn::Path, dim: i64, window_size: i64, num_heads: i64, cfg: &SwinConfig) -> Self {
        let head_dim = dim / num_heads;
        let scale = cfg
            .qk_scale
            .filter(|s| *s != 0.0)
            .unwrap_or((head_dim as f64).powf(-0.5));
        let table_len = (2 * window_size - 1) * (2 * window_size - 1);
        let relative_position_bias_table = trunc_normal_param(
            path,
            "relative_position_bias_table",
            &[table_len, num_heads],
            TRUNC_NORMAL_STD,
        );
        let index = relative_position_index(window_size).to_device(path.device());
        Self {
            qkv: Linear::new(&(path / "qkv"), dim, 3 * dim, cfg.qkv_bias),
            proj: Linear::new(&(path / "proj"), dim, dim, true),
            relative_position_bias_table,
            relative_position_index: path.add("relative_position_index", index, false),
            num_heads,
            tokens: window_size * window_size,
            scale,
            attn_drop: cfg.attn_drop_rate,
            proj_drop: cfg.drop_rate,
            kernel: cfg.attention,
        }
    }

    /// [nH, N, N] bias gathered from the table.
    fn relative_position_bias(&self) -> Tensor {
        let n = self.tokens;
        self.relative_position_bias_table
            .index_select(0, &self.relative_position_index.view([-1]))
            .view([n, n, self.num_heads])
            .permute([2, 0, 1])
    }

    /// q, k, v: [B*nW, nH, N, d], mask: [nW, N, N] -> [B*nW, nH, N, d]
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let (batch_windows, heads, n) = dims3(q);
        let bias = self.relative_position_bias().unsqueeze(0);
        if self.kernel.uses_sdpa(q) {
            let additive = match mask {
                // The 4-D kernels need one mask per window of the batch: merging the
                // batch and window axes of a broadcast mask costs one copy.
                Some(mask) => {
                    let nw = mask.size()[0];
                    (bias + mask.unsqueeze(1))
                        .unsqueeze(0)
                        .expand([batch_windows / nw, nw, heads, n, n], false)
                        .reshape([batch_windows, heads, n, n])
                }
                None => bias,
            };
            // SDPA wants the float mask in the query's dtype.
            let additive = additive.to_kind(q.kind());
            let p = if train { self.attn_drop } else { 0.0 };
            Tensor::scaled_dot_product_attention(
                q,
                k,
                v,
                Some(&additive),
                p,
                false,
                self.scale,
                false,
            )
        } else {
            let attn = (q * self.scale).matmul(&k.transpose(-2, -1)) + bias;
            let attn = match mask {
                Some(mask) => {
                    let nw = mask.size()[0];
                    (attn.view([batch_windows / nw, nw, heads, n, n])
                        + mask.unsqueeze(1).unsqueeze(0))
                    .view([-1, heads, n, n])
                }
                None => attn,
            };
            let attn = attn.softmax(-1, attn.kind());
            dropout(&attn, self.attn_drop, train).matmul(v)
        }
    }

    /// x: [B*nW, N, C], mask: [nW, N, N] -> [B*nW, N, C]. With `autocast`, the projections
    /// run in its half dtype and the attention core in fp32 (official `WindowAttention`).
    fn forward_t(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
        autocast: Option<Autocast>,
    ) -> Tensor {
        let (batch_windows, n, c) = dims3(x);
        let heads = self.num_heads;
        let qkv = {
            let _half = autocast_region(autocast, true);
            self.qkv
                .forward(x)
                .reshape([batch_windows, n, 3, heads, c / heads])
                .permute([2, 0, 3, 1, 4])
        };
        let context = {
            let _fp32 = autocast_region(autocast, false);
            // Official `.float()`, except that a double model stays double.
            let upcast = |t: Tensor| match t.kind() {
                Kind::Half | Kind::BFloat16 => t.to_kind(Kind::Float),
                _ => t,
            };
            let (q, k, v) = (upcast(qkv.get(0)), upcast(qkv.get(1)), upcast(qkv.get(2)));
            #[cfg(test)]
            tests::probe::record(&qkv, &q, autocast);
            self.attend(&q, &k, &v, mask, train)
        };
        let x = context.transpose(1, 2).reshape([batch_windows, n, c]);
        let _half = autocast_region(autocast, true);
        dropout(&self.proj.forward(&x), self.proj_drop, train)
    }
}

/// fc1 -> exact GELU -> dropout -> fc2 -> dropout.
#[derive(Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    drop: f64,
}

impl Mlp {
    fn new(path: &nn::Path, dim: i64, hidden: i64, drop: f64) -> Self {
        Self {
            fc1: Linear::new(&(path / "fc1"), dim, hidden, true),
            fc2: Linear::new(&(path / "fc2"), hidden, dim, true),
            drop,
        }
    }

    /// x: [..., C] -> [..., C]
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = dropout(&self.fc1.forward(x).gelu("none"), self.drop, train);
        dropout(&self.fc2.forward(&x), self.drop, train)
    }
}

/// One Swin block: (shifted) window attention and MLP, each pre-norm and residual.
#[derive(Debug)]
struct SwinBlock {
    norm1: LayerNorm,
    attn: WindowAttention,
    norm2: LayerNorm,
    mlp: Mlp,
    attn_mask: Option<Tensor>,
    resolution: i64,
    window_size: i64,
    shift_size: i64,
    drop_path: f64,
    /// Mixed precision of the projections and the MLP; `None`: fp32 throughout.
    autocast: Option<Autocast>,
}

impl SwinBlock {
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: &nn::Path,
        cfg: &SwinConfig,
        dim: i64,
        resolution: i64,
        num_heads: i64,
        shift_size: i64,
        drop_path: f64,
    ) -> Self {
        // A window covering the whole map needs no shifting (official rule).
        let (window_size, shift_size) = if resolution <= cfg.window_size {
            (resolution, 0)
        } else {
            (cfg.window_size, shift_size)
        };
        let attn_mask = (shift_size > 0).then(|| {
            let mask = shifted_window_mask(resolution, window_size, shift_size);
            path.add("attn_mask", mask.to_device(path.device()), false)
        });
        let hidden = (dim as f64 * cfg.mlp_ratio) as i64;
        Self {
            norm1: LayerNorm::new(&(path / "norm1"), dim),
            attn: WindowAttention::new(&(path / "attn"), dim, window_size, num_heads, cfg),
            norm2: LayerNorm::new(&(path / "norm2"), dim),
            mlp: Mlp::new(&(path / "mlp"), dim, hidden, cfg.drop_rate),
            attn_mask,
            resolution,
            window_size,
            shift_size,
            drop_path,
            autocast: None,
        }
    }

    /// x: [B, L, C] -> [B, L, C], L = resolution^2
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (b, l, c) = dims3(x);
        let (res, ws, shift) = (self.resolution, self.window_size, self.shift_size);
        let h = self.norm1.forward(x).view([b, res, res, c]);
        let h = if shift > 0 {
            h.roll([-shift, -shift], [1, 2])
        } else {
            h
        };
        let windows = window_partition(&h, ws).view([-1, ws * ws, c]);
        let attended = self
            .attn
            .forward_t(&windows, self.attn_mask.as_ref(), train, self.autocast);
        let h = window_reverse(&attended.view([-1, ws, ws, c]), ws, res, res);
        let h = if shift > 0 {
            h.roll([shift, shift], [1, 2])
        } else {
            h
        };
        // The attention residual is added outside autocast, the MLP's inside (official);
        // fp32 + half promotes to fp32 either way.
        let x = x + drop_path(&h.reshape([b, l, c]), self.drop_path, train);
        let _half = autocast_region(self.autocast, true);
        let mlp = self.mlp.forward_t(&self.norm2.forward(&x), train);
        &x + drop_path(&mlp, self.drop_path, train)
    }
}

/// Halves the resolution and doubles the channels: 2x2 neighbours concatenated,
/// LayerNorm(4C), Linear(4C -> 2C, no bias).
#[derive(Debug)]
struct PatchMerging {
    norm: LayerNorm,
    reduction: Linear,
    resolution: i64,
}

impl PatchMerging {
    fn new(path: &nn::Path, dim: i64, resolution: i64) -> Self {
        Self {
            norm: LayerNorm::new(&(path / "norm"), 4 * dim),
            reduction: Linear::new(&(path / "reduction"), 4 * dim, 2 * dim, false),
            resolution,
        }
    }

    /// x: [B, L, C] -> [B, L/4, 2C]
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, l, c) = dims3(x);
        let half = self.resolution / 2;
        // Official order of the four neighbours: (0,0), (1,0), (0,1), (1,1) as (dy, dx),
        // i.e. dy varies fastest: axes (dx, dy) before C.
        let merged = x
            .view([b, half, 2, half, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([b, l / 4, 4 * c]);
        self.reduction.forward(&self.norm.forward(&merged))
    }
}

/// One stage: blocks alternating plain and shifted windows, then optional patch merging.
#[derive(Debug)]
struct BasicLayer {
    blocks: Vec<SwinBlock>,
    downsample: Option<PatchMerging>,
}

impl BasicLayer {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        match &self.downsample {
            Some(merge) => merge.forward(&x),
            None => x,
        }
    }
}

/// Patch embedding: strided conv, then optional LayerNorm.
#[derive(Debug)]
struct PatchEmbed {
    proj: Conv2d,
    norm: Option<LayerNorm>,
}

impl PatchEmbed {
    /// x: [B, 3, H, W] -> [B, H/p * W/p, C]
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self.proj.forward(x).flatten(2, -1).transpose(1, 2);
        match &self.norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }
}

/// The embedding head `backbone.feature`: Linear(no bias), BN1d, Linear(no bias), BN1d.
#[derive(Debug)]
struct FeatureHead {
    fc1: Linear,
    bn1: BatchNorm,
    fc2: Linear,
    bn2: BatchNorm,
}

impl FeatureHead {
    fn new(path: &nn::Path, dim: i64, embedding_size: i64, sync: &BatchNormSync) -> Self {
        Self {
            fc1: Linear::new(&(path / "0"), dim, dim, false),
            bn1: BatchNorm::new(&(path / "1"), dim, FEATURE_BN_EPS, BN_MOMENTUM).with_sync(sync),
            fc2: Linear::new(&(path / "2"), dim, embedding_size, false),
            bn2: BatchNorm::new(&(path / "3"), embedding_size, FEATURE_BN_EPS, BN_MOMENTUM)
                .with_sync(sync),
        }
    }

    /// x: [B, C] -> [B, E]
    fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, crate::ModelError> {
        let x = self.bn1.f_forward_t(&self.fc1.forward(x), train)?;
        self.bn2.f_forward_t(&self.fc2.forward(&x), train)
    }
}

/// The three backbone outputs SwinFace uses.
#[derive(Debug)]
pub struct BackboneOutput {
    /// [B, sum(local dims), r, r]: every non-final stage's output average-pooled to the
    /// last stage's resolution r (released model: [B, 1344, 7, 7]).
    pub local_features: Tensor,
    /// [B, C, r, r]: the last stage's output before the final LayerNorm ([B, 768, 7, 7]).
    pub global_features: Tensor,
    /// [B, E]: the face recognition embedding ([B, 512]).
    pub embedding: Tensor,
}

/// Swin Transformer backbone (`backbone.*` in the official state dict).
#[derive(Debug)]
pub struct SwinTransformer {
    patch_embed: PatchEmbed,
    absolute_pos_embed: Option<Tensor>,
    layers: Vec<BasicLayer>,
    norm: LayerNorm,
    /// Kept only so that checkpoints round-trip: the official model builds it but never
    /// calls it.
    #[allow(dead_code)]
    head: Linear,
    feature: FeatureHead,
    cfg: SwinConfig,
    autocast: Option<Autocast>,
}

impl SwinTransformer {
    /// Builds the backbone under `path` (normally `root / "backbone"`). `embedding_size` is
    /// the official `num_classes`: the width of `head` and of the embedding.
    pub fn new(
        path: &nn::Path,
        cfg: &SwinConfig,
        embedding_size: i64,
    ) -> Result<Self, crate::ModelError> {
        Self::with_batch_norm_sync(path, cfg, embedding_size, &BatchNormSync::default())
    }

    /// [`Self::new`] with the embedding head's BatchNorms on `sync` (the model's handle).
    pub fn with_batch_norm_sync(
        path: &nn::Path,
        cfg: &SwinConfig,
        embedding_size: i64,
        sync: &BatchNormSync,
    ) -> Result<Self, crate::ModelError> {
        cfg.validate()?;
        if embedding_size <= 0 {
            return Err(ConfigError::NotPositive {
                name: "embedding_size",
                value: embedding_size,
            }
            .into());
        }
        let embed = path / "patch_embed";
        let patch_embed = PatchEmbed {
            proj: Conv2d::new(
                &(&embed / "proj"),
                cfg.in_chans,
                cfg.embed_dim,
                cfg.patch_size,
                cfg.patch_size,
                0,
                true,
            ),
            norm: cfg
                .patch_norm
                .then(|| LayerNorm::new(&(&embed / "norm"), cfg.embed_dim)),
        };
        let num_patches = cfg.stage_resolution(0).pow(2);
        let absolute_pos_embed = cfg.ape.then(|| {
            trunc_normal_param(
                path,
                "absolute_pos_embed",
                &[1, num_patches, cfg.embed_dim],
                TRUNC_NORMAL_STD,
            )
        });

        let rates = cfg.drop_path_rates();
        let mut next_rate = rates.iter().copied();
        let mut layers = Vec::with_capacity(cfg.num_stages());
        for stage in 0..cfg.num_stages() {
            let layer_path = path / "layers" / stage;
            let dim = cfg.stage_dim(stage);
            let resolution = cfg.stage_resolution(stage);
            let blocks = (0..cfg.depths[stage])
                .map(|i| {
                    let shift = if i % 2 == 0 { 0 } else { cfg.window_size / 2 };
                    SwinBlock::new(
                        &(&layer_path / "blocks" / i),
                        cfg,
                        dim,
                        resolution,
                        cfg.num_heads[stage],
                        shift,
                        next_rate.next().unwrap_or(0.0),
                    )
                })
                .collect();
            let downsample = (stage + 1 < cfg.num_stages())
                .then(|| PatchMerging::new(&(&layer_path / "downsample"), dim, resolution));
            layers.push(BasicLayer { blocks, downsample });
        }

        let num_features = cfg.num_features();
        Ok(Self {
            patch_embed,
            absolute_pos_embed,
            layers,
            norm: LayerNorm::new(&(path / "norm"), num_features),
            head: Linear::new(&(path / "head"), num_features, embedding_size, true),
            feature: FeatureHead::new(&(path / "feature"), num_features, embedding_size, sync),
            cfg: cfg.clone(),
            autocast: None,
        })
    }

    pub fn config(&self) -> &SwinConfig {
        &self.cfg
    }

    /// Mixed precision as the official blocks do it (see the module doc); `None` (the
    /// default) runs everything in the parameters' precision without touching autocast.
    pub fn set_autocast(&mut self, autocast: Option<Autocast>) {
        self.autocast = autocast;
        for block in self.layers.iter_mut().flat_map(|layer| &mut layer.blocks) {
            block.autocast = autocast;
        }
    }

    pub fn autocast(&self) -> Option<Autocast> {
        self.autocast
    }

    /// x: [B, in_chans, img, img] (normalised) -> local, global features and embedding.
    ///
    /// # Panics
    /// Where [`Self::f_forward_t`] fails.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> BackboneOutput {
        self.f_forward_t(x, train)
            .unwrap_or_else(|e| panic!("backbone forward: {e}"))
    }

    /// [`Self::forward_t`]; a synchronised BatchNorm's failing collective is an error.
    pub fn f_forward_t(
        &self,
        x: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, crate::ModelError> {
        // Under mixed precision only the blocks' own regions autocast.
        let _fp32 = autocast_region(self.autocast, false);
        let mut x = self.patch_embed.forward(x);
        if let Some(pos) = &self.absolute_pos_embed {
            x += pos;
        }
        x = dropout(&x, self.cfg.drop_rate, train);

        let feature_res = self.cfg.feature_resolution();
        let last = self.layers.len() - 1;
        let mut local = Vec::with_capacity(last);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward_t(&x, train);
            if i < last {
                // Output of stage i after merging: resolution of stage i+1.
                let (b, _, c) = dims3(&x);
                let res = self.cfg.stage_resolution(i + 1);
                let map = x.transpose(1, 2).reshape([b, c, res, res]);
                let window = res / feature_res;
                local.push(if window == 1 {
                    map
                } else {
                    map.avg_pool2d(
                        [window, window],
                        [window, window],
                        [0, 0],
                        false,
                        true,
                        None,
                    )
                });
            }
        }
        let local_features = Tensor::cat(&local, 1);
        let (b, _, c) = dims3(&x);
        let global_features = x.transpose(1, 2).reshape([b, c, feature_res, feature_res]);
        let normed = self.norm.forward(&x);
        let pooled = normed.mean_dim(1, false, normed.kind());
        let embedding = self.feature.f_forward_t(&pooled, train)?;
        Ok(BackboneOutput {
            local_features,
            global_features,
            embedding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swinface_torch_ext::AutocastDevice;
    use tch::Device;

    /// What the attention core saw on this thread: (kind of the qkv projection, kind of q at
    /// the core, whether autocast was on at the core).
    pub(super) mod probe {
        use std::cell::RefCell;

        use swinface_torch_ext::{is_enabled, Autocast};
        use tch::{Kind, Tensor};

        thread_local! {
            static SEEN: RefCell<Vec<(Kind, Kind, bool)>> = const { RefCell::new(Vec::new()) };
        }

        pub fn record(qkv: &Tensor, q: &Tensor, autocast: Option<Autocast>) {
            let enabled = autocast.is_some_and(|a| is_enabled(a.device()).unwrap_or(true));
            SEEN.with(|seen| seen.borrow_mut().push((qkv.kind(), q.kind(), enabled)));
        }

        pub fn take() -> Vec<(Kind, Kind, bool)> {
            SEEN.with(|seen| seen.take())
        }
    }

    fn cpu_bf16() -> Autocast {
        Autocast::new(AutocastDevice::Cpu, Kind::BFloat16).unwrap()
    }

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        max_abs_diff(a, b) / f64::try_from(b.abs().max()).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    #[test]
    fn window_partition_and_reverse_round_trip_and_order() {
        let x = Tensor::arange(2 * 8 * 8 * 3, (Kind::Float, Device::Cpu)).view([2, 8, 8, 3]);
        let windows = window_partition(&x, 4);
        assert_eq!(windows.size(), [8, 4, 4, 3]);
        // Window 1 of image 0 is rows 0..4, columns 4..8.
        let expected = x.get(0).narrow(0, 0, 4).narrow(1, 4, 4);
        assert_eq!(max_abs_diff(&windows.get(1), &expected), 0.0);
        // Window 2 of image 1 (index 6) is rows 4..8, columns 0..4.
        let expected = x.get(1).narrow(0, 4, 4).narrow(1, 0, 4);
        assert_eq!(max_abs_diff(&windows.get(6), &expected), 0.0);
        let back = window_reverse(&windows, 4, 8, 8);
        assert_eq!(max_abs_diff(&back, &x), 0.0);
    }

    #[test]
    fn shift_mask_matches_hand_derived_regions() {
        // 4x4 map, window 2, shift 1. Region ids (3 * row region + column region):
        //   rows/cols 0,1 -> 0; 2 -> 1; 3 -> 2.
        // Window (0,0): ids [0,0,0,0]; (0,1): [1,2,1,2]; (1,0): [3,3,6,6]; (1,1): [4,5,7,8].
        let mask = shifted_window_mask(4, 2, 1);
        assert_eq!(mask.size(), [4, 4, 4]);
        let m = -100.0f32;
        let expected: [[[f32; 4]; 4]; 4] = [
            [[0.0; 4]; 4],
            [
                [0.0, m, 0.0, m],
                [m, 0.0, m, 0.0],
                [0.0, m, 0.0, m],
                [m, 0.0, m, 0.0],
            ],
            [
                [0.0, 0.0, m, m],
                [0.0, 0.0, m, m],
                [m, m, 0.0, 0.0],
                [m, m, 0.0, 0.0],
            ],
            [
                [0.0, m, m, m],
                [m, 0.0, m, m],
                [m, m, 0.0, m],
                [m, m, m, 0.0],
            ],
        ];
        let flat: Vec<f32> = expected.iter().flatten().flatten().copied().collect();
        let expected = Tensor::from_slice(&flat).view([4, 4, 4]);
        assert_eq!(max_abs_diff(&mask, &expected), 0.0);
    }

    #[test]
    fn relative_position_index_for_window_2() {
        // Tokens (0,0),(0,1),(1,0),(1,1); index = (dy+1)*3 + (dx+1).
        let index: Vec<i64> = Vec::try_from(relative_position_index(2).view([-1])).unwrap();
        assert_eq!(index, [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
    }

    #[test]
    fn drop_path_rates_follow_linspace() {
        let cfg = SwinConfig::default();
        let rates = cfg.drop_path_rates();
        assert_eq!(rates.len(), 12);
        assert_eq!(rates[0], 0.0);
        assert!((rates[11] - 0.1).abs() < 1e-12);
        assert!((rates[5] - 0.1 * 5.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn window_is_clamped_to_small_resolutions() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinConfig::default();
        let block = SwinBlock::new(&vs.root(), &cfg, 768, 7, 24, 3, 0.0);
        assert_eq!((block.window_size, block.shift_size), (7, 0));
        assert!(block.attn_mask.is_none());
        let block = SwinBlock::new(&(vs.root() / "s"), &cfg, 96, 56, 3, 3, 0.0);
        assert_eq!((block.window_size, block.shift_size), (7, 3));
        assert_eq!(
            block.attn_mask.as_ref().map(|m| m.size()),
            Some(vec![64, 49, 49])
        );
    }

    #[test]
    fn patch_merging_orders_neighbours_like_the_official_slices() {
        let vs = nn::VarStore::new(Device::Cpu);
        let merge = PatchMerging::new(&vs.root(), 2, 4);
        let x = Tensor::randn([3, 16, 2], (Kind::Float, Device::Cpu));
        let grid = x.view([3, 4, 4, 2]);
        let pick = |dy: i64, dx: i64| grid.slice(1, dy, None, 2).slice(2, dx, None, 2);
        let reference =
            Tensor::cat(&[pick(0, 0), pick(1, 0), pick(0, 1), pick(1, 1)], -1).view([3, 4, 8]);
        let reference = merge.reduction.forward(&merge.norm.forward(&reference));
        assert!(max_abs_diff(&merge.forward(&x), &reference) < 1e-6);
    }

    #[test]
    fn sdpa_and_math_attention_agree_with_mask() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinConfig {
            attention: AttentionKernel::Math,
            ..SwinConfig::default()
        };
        let mut block = SwinBlock::new(&vs.root(), &cfg, 96, 14, 3, 3, 0.0);
        tch::no_grad(|| {
            let mut table = block.attn.relative_position_bias_table.shallow_clone();
            let _ = table.normal_(0.0, 0.5);
        });
        let x = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        let math = block.forward_t(&x, false);
        block.attn.kernel = AttentionKernel::Sdpa;
        let sdpa = block.forward_t(&x, false);
        let diff = max_abs_diff(&math, &sdpa);
        assert!(diff < 1e-5, "max abs diff {diff}");
        // The mask matters: without it the outputs differ clearly.
        block.attn_mask = None;
        assert!(max_abs_diff(&math, &block.forward_t(&x, false)) > 1e-3);
    }

    #[test]
    fn auto_attention_is_sdpa_without_grad_and_math_when_training_on_the_cpu() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinConfig::default();
        assert_eq!(cfg.attention, AttentionKernel::Auto);
        let mut block = SwinBlock::new(&vs.root(), &cfg, 96, 14, 3, 3, 0.0);
        let x = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        let run = |block: &SwinBlock, grad: bool| {
            if grad {
                block.forward_t(&x, false)
            } else {
                tch::no_grad(|| block.forward_t(&x, false))
            }
        };
        let auto = [run(&block, false), run(&block, true)];
        block.attn.kernel = AttentionKernel::Sdpa;
        let sdpa = run(&block, false);
        block.attn.kernel = AttentionKernel::Math;
        let math = run(&block, true);
        // Bit for bit the kernel it resolves to, and the two kernels differ in round-off.
        assert!(auto[0].equal(&sdpa));
        assert!(auto[1].equal(&math));
        assert!(!sdpa.equal(&math));
        let q = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        assert!(AttentionKernel::Auto.uses_sdpa(&q));
        assert!(!AttentionKernel::Auto.uses_sdpa(&q.set_requires_grad(true)));
        assert!(!AttentionKernel::Math.uses_sdpa(&q));
    }

    #[test]
    fn sdpa_and_math_attention_give_the_same_gradients() {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinConfig {
            attention: AttentionKernel::Math,
            ..SwinConfig::default()
        };
        let mut block = SwinBlock::new(&vs.root(), &cfg, 96, 14, 3, 3, 0.0);
        let x = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        let weights = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        let grads = |block: &SwinBlock| {
            for mut t in vs.trainable_variables() {
                t.zero_grad();
            }
            (block.forward_t(&x, true) * &weights)
                .sum(Kind::Float)
                .backward();
            (
                block.attn.relative_position_bias_table.grad().copy(),
                block.attn.qkv.weight.grad().copy(),
            )
        };
        let (table_math, qkv_math) = grads(&block);
        block.attn.kernel = AttentionKernel::Sdpa;
        let (table_sdpa, qkv_sdpa) = grads(&block);
        assert!(f64::try_from(table_math.abs().max()).unwrap() > 1e-3);
        let rel = |a: &Tensor, b: &Tensor| {
            f64::try_from((a - b).abs().max()).unwrap() / f64::try_from(a.abs().max()).unwrap()
        };
        assert!(
            rel(&table_math, &table_sdpa) < 1e-4,
            "table {}",
            rel(&table_math, &table_sdpa)
        );
        assert!(
            rel(&qkv_math, &qkv_sdpa) < 1e-4,
            "qkv {}",
            rel(&qkv_math, &qkv_sdpa)
        );
    }

    /// A shifted-window block with a non-trivial bias table, the input and its fp32 output.
    fn block_under_test(kernel: AttentionKernel) -> (nn::VarStore, SwinBlock, Tensor) {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SwinConfig {
            attention: kernel,
            ..SwinConfig::default()
        };
        let block = SwinBlock::new(&vs.root(), &cfg, 96, 14, 3, 3, 0.0);
        tch::no_grad(|| {
            let mut table = block.attn.relative_position_bias_table.shallow_clone();
            let _ = table.normal_(0.0, 0.5);
        });
        let x = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        (vs, block, x)
    }

    #[test]
    fn autocast_runs_the_projections_in_half_and_the_attention_core_in_fp32() {
        for kernel in [AttentionKernel::Math, AttentionKernel::Sdpa] {
            let (_vs, mut block, x) = block_under_test(kernel);
            let fp32 = tch::no_grad(|| block.forward_t(&x, false));
            assert_eq!(probe::take(), [(Kind::Float, Kind::Float, false)]);

            block.autocast = Some(cpu_bf16());
            let mixed = tch::no_grad(|| block.forward_t(&x, false));
            // qkv came out of autocast in bf16; the core got fp32 q, k, v with autocast off.
            assert_eq!(probe::take(), [(Kind::BFloat16, Kind::Float, false)]);
            assert_eq!(mixed.kind(), Kind::Float, "the residual stream stays fp32");
            let (abs, rel) = (max_abs_diff(&mixed, &fp32), max_rel_diff(&mixed, &fp32));
            println!("{kernel:?}: bf16 block vs fp32 max abs {abs:.3e}, rel {rel:.3e}");
            // bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3 per op).
            assert!(abs > 0.0 && rel < 2e-3, "{kernel:?}: abs {abs}, rel {rel}");
            assert!(!swinface_torch_ext::is_enabled(AutocastDevice::Cpu).unwrap());
        }
    }

    #[test]
    fn autocast_block_backward_gives_finite_gradients_close_to_fp32() {
        let (vs, mut block, x) = block_under_test(AttentionKernel::Sdpa);
        let weights = Tensor::randn([2, 196, 96], (Kind::Float, Device::Cpu));
        let grads = |block: &SwinBlock| {
            for mut t in vs.trainable_variables() {
                t.zero_grad();
            }
            (block.forward_t(&x, true) * &weights)
                .sum(Kind::Float)
                .backward();
            [
                block.attn.qkv.weight.grad().copy(),
                block.attn.relative_position_bias_table.grad().copy(),
                block.mlp.fc1.weight.grad().copy(),
                block.norm1.weight.grad().copy(),
            ]
        };
        let fp32 = grads(&block);
        block.autocast = Some(cpu_bf16());
        let mixed = grads(&block);
        for (name, (a, b)) in ["qkv", "bias table", "fc1", "norm1"]
            .iter()
            .zip(mixed.iter().zip(&fp32))
        {
            assert_eq!(a.kind(), Kind::Float, "{name}: parameters' grads stay fp32");
            assert!(
                f64::try_from(a.isfinite().all()).unwrap() == 1.0,
                "{name}: non-finite grad"
            );
            let rel = max_rel_diff(a, b);
            println!("{name}: bf16 vs fp32 grad max rel diff {rel:.3e}");
            assert!(rel < 2e-2, "{name}: grad max rel diff {rel}");
        }
    }
}
