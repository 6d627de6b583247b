//! Multi-Level Channel Attention (the official `FeatureAttentionModule`, state-dict prefix
//! `fam.`): one branch per task group, each conv -> CBAM channel gate -> spatial gate
//! (none, CBAM or LANet) -> ReLU -> global pooling -> BatchNorm1d.

use serde::{Deserialize, Deserializer, Serialize};
use tch::{nn, Kind, Tensor};

use crate::config::ConfigError;
use crate::layers::{BatchNorm, BatchNormSync, Conv2d, Linear};
use crate::ModelError;

/// Branch BatchNorm1d: eps 2e-5, PyTorch's default momentum 0.1.
const BRANCH_BN_EPS: f64 = 2e-5;
const BRANCH_BN_MOMENTUM: f64 = 0.1;
/// CBAM spatial gate: 7x7 conv, BatchNorm2d(eps 1e-5, momentum 0.01).
const SPATIAL_KERNEL: i64 = 7;
const SPATIAL_BN_EPS: f64 = 1e-5;
const SPATIAL_BN_MOMENTUM: f64 = 0.01;
/// CBAM channel gate bottleneck ratio.
pub const CHANNEL_REDUCTION: i64 = 16;
/// LANet bottleneck ratio (`int(in / 2.0)`) and the MAD drop probability.
const LANET_REDUCTION: i64 = 2;
pub const MAD_P: f64 = 0.6;

/// How the branch conv sees its input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvMode {
    /// One conv over all input channels.
    Normal,
    /// One conv per feature level (each local stage and the global map), outputs concatenated.
    Split,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelAttention {
    #[serde(rename = "none", alias = "None")]
    None,
    #[serde(rename = "CBAM", alias = "cbam")]
    Cbam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpatialAttention {
    #[serde(rename = "none", alias = "None")]
    None,
    #[serde(rename = "CBAM", alias = "cbam")]
    Cbam,
    #[serde(rename = "LANet", alias = "lanet")]
    LaNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Max,
    Avg,
}

/// Which backbone features feed the FAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FamFeature {
    /// Local and global features concatenated (2112 channels in the released model).
    All,
    Global,
    Local,
}

/// Lets YAML write the official `None` as `null` as well as `none`.
pub(crate) fn null_as_none<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + NoneVariant,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_else(T::none))
}

pub(crate) trait NoneVariant {
    fn none() -> Self;
}

impl NoneVariant for ChannelAttention {
    fn none() -> Self {
        Self::None
    }
}

impl NoneVariant for SpatialAttention {
    fn none() -> Self {
        Self::None
    }
}

/// Resolved FAM settings (built from `SwinFaceConfig::fam_config`, which derives the
/// channel widths from the backbone). Default: the released SwinFace FAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamConfig {
    /// Number of branches (one per task group).
    pub branch_num: usize,
    /// Channels of the FAM input.
    pub in_chans: i64,
    /// Channels of each feature level, in input order (split mode cuts the input there).
    pub level_chans: Vec<i64>,
    /// Width of every branch (512 in the official code).
    pub feature_dim: i64,
    pub kernel_size: i64,
    /// One conv shared by all branches (`fam.conv.*`) instead of one per branch.
    pub conv_shared: bool,
    pub conv_mode: ConvMode,
    pub channel_attention: ChannelAttention,
    pub spatial_attention: SpatialAttention,
    pub pooling: Pooling,
    /// LANet heads per branch (used only with LANet spatial attention).
    pub la_num_list: Vec<i64>,
}

impl Default for FamConfig {
    fn default() -> Self {
        Self {
            branch_num: crate::heads::BRANCH_NUM,
            in_chans: 2112,
            level_chans: vec![192, 384, 768, 768],
            feature_dim: 512,
            kernel_size: 3,
            conv_shared: false,
            conv_mode: ConvMode::Split,
            channel_attention: ChannelAttention::Cbam,
            spatial_attention: SpatialAttention::None,
            pooling: Pooling::Max,
            la_num_list: vec![2; crate::heads::BRANCH_NUM],
        }
    }
}

impl FamConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("fam branch count", self.branch_num as i64),
            ("fam_in_chans", self.in_chans),
            ("fam_kernel_size", self.kernel_size),
            ("fam_feature_dim", self.feature_dim),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ConfigError::NotPositive { name, value });
            }
        }
        let dim = self.feature_dim;
        if self.conv_mode == ConvMode::Split {
            if let Some(&bad) = self.level_chans.iter().find(|&&c| c <= 0) {
                return Err(ConfigError::NotPositive {
                    name: "split level channels",
                    value: bad,
                });
            }
            if self.level_chans.iter().sum::<i64>() != self.in_chans {
                return Err(ConfigError::SplitLevelsMismatch {
                    levels: self.level_chans.clone(),
                    in_chans: self.in_chans,
                });
            }
            let levels = self.level_chans.len() as i64;
            if dim < levels {
                return Err(ConfigError::FeatureDimTooSmall {
                    dim,
                    needed: levels,
                    reason: "one split conv output channel per feature level",
                });
            }
        }
        if self.channel_attention == ChannelAttention::Cbam && dim < CHANNEL_REDUCTION {
            return Err(ConfigError::FeatureDimTooSmall {
                dim,
                needed: CHANNEL_REDUCTION,
                reason: "the CBAM channel gate's 16x bottleneck",
            });
        }
        if self.spatial_attention == SpatialAttention::LaNet {
            if self.la_num_list.len() != self.branch_num {
                return Err(ConfigError::LaNumListLength {
                    expected: self.branch_num,
                    actual: self.la_num_list.len(),
                });
            }
            if let Some(&bad) = self.la_num_list.iter().find(|&&n| n <= 0) {
                return Err(ConfigError::NotPositive {
                    name: "fam_la_num_list[i]",
                    value: bad,
                });
            }
            if dim < LANET_REDUCTION {
                return Err(ConfigError::FeatureDimTooSmall {
                    dim,
                    needed: LANET_REDUCTION,
                    reason: "the LANet bottleneck",
                });
            }
        }
        Ok(())
    }

    /// Output widths of the split convs: `feature_dim` shared out in proportion to the
    /// level widths (largest remainder), which gives the official [47, 93, 186, 186] for
    /// [192, 384, 768, 768] -> 512.
    pub fn split_out_chans(&self) -> Vec<i64> {
        proportional_split(self.feature_dim, &self.level_chans)
    }
}

/// Shares `total` out in proportion to `weights`, rounding by largest remainder (ties to
/// the earlier entry), so that the parts sum to `total`.
pub fn proportional_split(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    if sum <= 0 {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<i64> = weights.iter().map(|w| total * w / sum).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Remainders compared exactly as fractions over `sum`.
    order.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    let missing = total - parts.iter().sum::<i64>();
    for &i in order.iter().take(missing.max(0) as usize) {
        parts[i] += 1;
    }
    parts
}

/// The branch conv (official `ConvLayer`): 'same'-padded, no bias.
#[derive(Debug)]
enum ConvLayer {
    /// Key `conv.weight`.
    Normal(Conv2d),
    /// Keys `convs.j.weight`; `cuts` are the input channel widths.
    Split { convs: Vec<Conv2d>, cuts: Vec<i64> },
}

impl ConvLayer {
    fn new(path: &nn::Path, cfg: &FamConfig) -> Self {
        let k = cfg.kernel_size;
        let pad = (k - 1) / 2;
        match cfg.conv_mode {
            ConvMode::Normal => ConvLayer::Normal(Conv2d::new(
                &(path / "conv"),
                cfg.in_chans,
                cfg.feature_dim,
                k,
                1,
                pad,
                false,
            )),
            ConvMode::Split => {
                let convs = cfg
                    .level_chans
                    .iter()
                    .zip(cfg.split_out_chans())
                    .enumerate()
                    .map(|(j, (&cin, cout))| {
                        Conv2d::new(&(path / "convs" / j), cin, cout, k, 1, pad, false)
                    })
                    .collect();
                ConvLayer::Split {
                    convs,
                    cuts: cfg.level_chans.clone(),
                }
            }
        }
    }

    /// x: [B, in_chans, H, W] -> [B, feature_dim, H', W']
    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            ConvLayer::Normal(conv) => conv.forward(x),
            ConvLayer::Split { convs, cuts } => {
                let mut start = 0;
                let outputs: Vec<Tensor> = convs
                    .iter()
                    .zip(cuts)
                    .map(|(conv, &width)| {
                        let out = conv.forward(&x.narrow(1, start, width));
                        start += width;
                        out
                    })
                    .collect();
                Tensor::cat(&outputs, 1)
            }
        }
    }
}

/// Branch convs of the same input side by side: one conv per level (weights concatenated)
/// where the weights are smaller than what the conv writes, else each branch's conv in turn
/// (copying large weights every step costs more than the one larger kernel saves).
///
/// x: [B, in, H, W] -> [B, N·D, H', W'], branch i's D channels at i·D..(i + 1)·D
fn convs_side_by_side(layers: &[&ConvLayer], x: &Tensor) -> Option<Tensor> {
    let (b, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let level = |convs: &[&Conv2d], x: &Tensor| -> Tensor {
        let fan_in: i64 = convs[0].weight.size()[1..].iter().product();
        if fan_in <= b * h * w {
            if let Some(y) = Conv2d::forward_concatenated(convs, x) {
                return y;
            }
        }
        Tensor::cat(&convs.iter().map(|c| c.forward(x)).collect::<Vec<_>>(), 1)
    };
    match layers.first()? {
        ConvLayer::Normal(_) => {
            let convs = layers
                .iter()
                .map(|l| match l {
                    ConvLayer::Normal(conv) => Some(conv),
                    ConvLayer::Split { .. } => None,
                })
                .collect::<Option<Vec<&Conv2d>>>()?;
            Some(level(&convs, x))
        }
        ConvLayer::Split { cuts, .. } => {
            let branches = layers
                .iter()
                .map(|l| match l {
                    ConvLayer::Split { convs, cuts: c } if c == cuts => Some(convs),
                    _ => None,
                })
                .collect::<Option<Vec<&Vec<Conv2d>>>>()?;
            let n = branches.len() as i64;
            let outputs: Vec<Tensor> = x
                .split_with_sizes(cuts.as_slice(), 1)
                .iter()
                .enumerate()
                .map(|(j, input)| {
                    let convs: Vec<&Conv2d> = branches.iter().map(|c| &c[j]).collect();
                    let y = level(&convs, input);
                    let size = y.size();
                    y.view([b, n, -1, size[2], size[3]])
                })
                .collect();
            let y = Tensor::cat(&outputs, 2);
            let size = y.size();
            Some(y.view([b, -1, size[3], size[4]]))
        }
    }
}

/// Global max pooling over H, W. Max pooling (not `amax`) so that the gradient goes to
/// one element per channel, as `AdaptiveMaxPool2d` / `max_pool2d` do.
///
/// x: [B, C, H, W] -> [B, C]
fn global_max_pool(x: &Tensor) -> Tensor {
    let (b, c) = (x.size()[0], x.size()[1]);
    x.adaptive_max_pool2d([1, 1]).0.view([b, c])
}

/// x: [B, C, H, W] -> [B, C]
fn global_avg_pool(x: &Tensor) -> Tensor {
    x.mean_dim([2i64, 3].as_slice(), false, x.kind())
}

/// CBAM channel gate: `x * sigmoid(mlp(avgpool x) + mlp(maxpool x))`,
/// mlp = Linear(C, C/16), ReLU, Linear(C/16, C) (keys `mlp.1`, `mlp.3`).
#[derive(Debug)]
struct ChannelGate {
    fc1: Linear,
    fc2: Linear,
}

impl ChannelGate {
    fn new(path: &nn::Path, channels: i64) -> Self {
        let hidden = channels / CHANNEL_REDUCTION;
        let mlp = path / "mlp";
        Self {
            fc1: Linear::new(&(&mlp / "1"), channels, hidden, true),
            fc2: Linear::new(&(&mlp / "3"), hidden, channels, true),
        }
    }

    fn mlp(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).relu())
    }

    /// x: [B, C, H, W] -> [B, C, H, W]
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, c) = (x.size()[0], x.size()[1]);
        let logits = self.mlp(&global_avg_pool(x)) + self.mlp(&global_max_pool(x));
        x * logits.sigmoid().view([b, c, 1, 1])
    }

    /// N gates at once, gate i on channels i·C..(i + 1)·C: their MLPs as batched matmuls.
    ///
    /// x: [B, N·C, H, W] -> [B, N·C, H, W]
    fn forward_side_by_side(gates: &[&ChannelGate], x: &Tensor) -> Tensor {
        let n = gates.len() as i64;
        let (b, channels) = (x.size()[0], x.size()[1]);
        // [N, out, in] -> [N, in, out], and the biases as [N, 1, out].
        let stacked = |layer: fn(&ChannelGate) -> &Linear| {
            let weight = Tensor::stack(
                &gates.iter().map(|g| &layer(g).weight).collect::<Vec<_>>(),
                0,
            )
            .transpose(1, 2);
            let biases: Vec<&Tensor> = gates
                .iter()
                .filter_map(|g| layer(g).bias.as_ref())
                .collect();
            let bias =
                (biases.len() == gates.len()).then(|| Tensor::stack(&biases, 0).unsqueeze(1));
            (weight, bias)
        };
        let (w1, b1) = stacked(|g| &g.fc1);
        let (w2, b2) = stacked(|g| &g.fc2);
        let affine = |x: Tensor, w: &Tensor, bias: &Option<Tensor>| match bias {
            Some(bias) => bias.baddbmm(&x, w, 1.0, 1.0),
            None => x.bmm(w),
        };
        // [B, N·C] -> [N, B, C] -> MLP -> [N, B, C]
        let mlp = |pooled: Tensor| {
            let pooled = pooled.view([b, n, -1]).transpose(0, 1);
            affine(affine(pooled, &w1, &b1).relu(), &w2, &b2)
        };
        let logits = mlp(global_avg_pool(x)) + mlp(global_max_pool(x));
        x * logits
            .sigmoid()
            .transpose(0, 1)
            .reshape([b, channels, 1, 1])
    }
}

/// CBAM spatial gate: `x * sigmoid(bn(conv7x7([max_c x, mean_c x])))`
/// (keys `spatial.conv.weight`, `spatial.bn.*`).
#[derive(Debug)]
struct SpatialGate {
    conv: Conv2d,
    bn: BatchNorm,
}

impl SpatialGate {
    fn new(path: &nn::Path, sync: &BatchNormSync) -> Self {
        let spatial = path / "spatial";
        let pad = (SPATIAL_KERNEL - 1) / 2;
        Self {
            conv: Conv2d::new(&(&spatial / "conv"), 2, 1, SPATIAL_KERNEL, 1, pad, false),
            bn: BatchNorm::new(&(&spatial / "bn"), 1, SPATIAL_BN_EPS, SPATIAL_BN_MOMENTUM)
                .with_sync(sync),
        }
    }

    /// x: [B, C, H, W] -> [B, C, H, W]
    fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let pooled = Tensor::cat(
            &[
                x.amax([1i64].as_slice(), true),
                x.mean_dim([1i64].as_slice(), true, x.kind()),
            ],
            1,
        );
        let scale = self
            .bn
            .f_forward_t(&self.conv.forward(&pooled), train)?
            .sigmoid();
        Ok(x * scale)
    }
}

/// Multi-head LANet: each head Conv1x1(C -> C/2) -> ReLU -> Conv1x1(-> 1) -> sigmoid; the
/// head maps go through MAD (when there is more than one head) and their maximum masks x
/// (keys `LANets.i.conv1.weight`, `LANets.i.conv2.weight`).
#[derive(Debug)]
struct LaNets {
    heads: Vec<(Conv2d, Conv2d)>,
}

impl LaNets {
    fn new(path: &nn::Path, channels: i64, head_num: i64) -> Self {
        let mid = channels / LANET_REDUCTION;
        let heads = (0..head_num)
            .map(|i| {
                let p = path / "LANets" / i;
                (
                    Conv2d::new(&(&p / "conv1"), channels, mid, 1, 1, 0, false),
                    Conv2d::new(&(&p / "conv2"), mid, 1, 1, 1, 0, false),
                )
            })
            .collect();
        Self { heads }
    }

    /// x: [B, C, H, W] -> [B, C, H, W]
    ///
    /// MAD runs in eval too: the official `LANets.forward` applies it whenever there is more
    /// than one head, whatever the mode.
    fn forward(&self, x: &Tensor) -> Tensor {
        let maps: Vec<Tensor> = self
            .heads
            .iter()
            .map(|(conv1, conv2)| conv2.forward(&conv1.forward(x).relu()).sigmoid())
            .collect();
        let maps = Tensor::cat(&maps, 1);
        let maps = if self.heads.len() != 1 {
            mad(&maps, MAD_P)
        } else {
            maps
        };
        x * maps.amax([1i64].as_slice(), true)
    }
}

/// Max Attention Drop: for each sample, with probability `p`, zero one head map chosen
/// uniformly at random (the official mask from `randperm(C) == 0` and `rand < p`).
///
/// x: [B, C, H, W] -> [B, C, H, W]
pub fn mad(x: &Tensor, p: f64) -> Tensor {
    let (b, c) = (x.size()[0], x.size()[1]);
    let options = (x.kind(), x.device());
    let chosen = Tensor::randint(c, [b], (Kind::Int64, x.device()))
        .one_hot(c)
        .to_kind(x.kind());
    let apply = Tensor::rand([b, 1], options).lt(p).to_kind(x.kind());
    let keep = Tensor::ones([b, c], options) - chosen * apply;
    x * keep.view([b, c, 1, 1])
}

#[derive(Debug)]
enum SpatialGateKind {
    None,
    Cbam(SpatialGate),
    LaNet(LaNets),
}

/// One FAM branch (official `FeatureAttentionNet`, keys `fam.nets.i.*`).
#[derive(Debug)]
struct FeatureAttentionNet {
    conv: Option<ConvLayer>,
    channel_attention: Option<ChannelGate>,
    spatial_attention: SpatialGateKind,
    pooling: Pooling,
    norm: BatchNorm,
}

impl FeatureAttentionNet {
    fn new(path: &nn::Path, cfg: &FamConfig, la_num: i64, sync: &BatchNormSync) -> Self {
        let d = cfg.feature_dim;
        let spatial_path = path / "spatial_attention";
        Self {
            conv: (!cfg.conv_shared).then(|| ConvLayer::new(&(path / "conv"), cfg)),
            channel_attention: (cfg.channel_attention == ChannelAttention::Cbam)
                .then(|| ChannelGate::new(&(path / "channel_attention"), d)),
            spatial_attention: match cfg.spatial_attention {
                SpatialAttention::None => SpatialGateKind::None,
                SpatialAttention::Cbam => {
                    SpatialGateKind::Cbam(SpatialGate::new(&spatial_path, sync))
                }
                SpatialAttention::LaNet => {
                    SpatialGateKind::LaNet(LaNets::new(&spatial_path, d, la_num))
                }
            },
            pooling: cfg.pooling,
            norm: BatchNorm::new(&(path / "norm"), d, BRANCH_BN_EPS, BRANCH_BN_MOMENTUM)
                .with_sync(sync),
        }
    }

    /// x: [B, in, H, W] (or [B, D, H, W] after a shared conv) -> [B, D]
    fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let mut x = match &self.conv {
            Some(conv) => conv.forward(x),
            None => x.shallow_clone(),
        };
        if let Some(gate) = &self.channel_attention {
            x = gate.forward(&x);
        }
        x = match &self.spatial_attention {
            SpatialGateKind::None => x,
            SpatialGateKind::Cbam(gate) => gate.f_forward_t(&x, train)?,
            SpatialGateKind::LaNet(lanets) => lanets.forward(&x),
        };
        let x = x.relu();
        let pooled = match self.pooling {
            Pooling::Max => global_max_pool(&x),
            Pooling::Avg => global_avg_pool(&x),
        };
        self.norm.f_forward_t(&pooled, train)
    }
}

/// The whole FAM (official `FeatureAttentionModule`).
#[derive(Debug)]
pub struct FeatureAttentionModule {
    conv: Option<ConvLayer>,
    nets: Vec<FeatureAttentionNet>,
}

impl FeatureAttentionModule {
    /// Builds the FAM under `path` (normally `root / "fam"`).
    pub fn new(path: &nn::Path, cfg: &FamConfig) -> Result<Self, ModelError> {
        Self::with_batch_norm_sync(path, cfg, &BatchNormSync::default())
    }

    /// [`Self::new`] with the branches' BatchNorms on `sync` (the model's handle).
    pub fn with_batch_norm_sync(
        path: &nn::Path,
        cfg: &FamConfig,
        sync: &BatchNormSync,
    ) -> Result<Self, ModelError> {
        cfg.validate()?;
        let conv = cfg
            .conv_shared
            .then(|| ConvLayer::new(&(path / "conv"), cfg));
        let nets = (0..cfg.branch_num)
            .map(|i| {
                let la_num = cfg.la_num_list.get(i).copied().unwrap_or(1);
                FeatureAttentionNet::new(&(path / "nets" / i), cfg, la_num, sync)
            })
            .collect();
        Ok(Self { conv, nets })
    }

    /// x: [B, in_chans, r, r] -> [branches, B, feature_dim]
    ///
    /// # Panics
    /// Where [`Self::f_forward_t`] fails.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(x, train)
            .unwrap_or_else(|e| panic!("FAM forward: {e}"))
    }

    /// [`Self::forward_t`]; a synchronised BatchNorm's failing collective is an error.
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let x = match &self.conv {
            Some(conv) => conv.forward(x),
            None => x.shallow_clone(),
        };
        match self.side_by_side(&x, train)? {
            Some(y) => Ok(y),
            None => self.one_by_one(&x, train),
        }
    }

    /// x (after the shared conv, if any) -> [branches, B, feature_dim]
    fn one_by_one(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let outputs = self
            .nets
            .iter()
            .map(|net| net.f_forward_t(x, train))
            .collect::<Result<Vec<Tensor>, ModelError>>()?;
        Ok(Tensor::stack(&outputs, 0))
    }

    /// The same function as [`Self::one_by_one`] (up to float rounding), with the branches
    /// side by side in one [B, N·D, H, W] tensor: the channel gate, ReLU and pooling act
    /// per channel, so each runs once for all branches instead of N times on small
    /// tensors; then each branch's BatchNorm normalises its own D channels. `None` where a
    /// branch has a spatial gate (it mixes channels) or the branches' convs differ in shape.
    fn side_by_side(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>, ModelError> {
        let Some(first) = self.nets.first() else {
            return Ok(None);
        };
        let alike = self.nets.iter().all(|net| {
            matches!(net.spatial_attention, SpatialGateKind::None)
                && net.channel_attention.is_some() == first.channel_attention.is_some()
                && net.conv.is_some() == first.conv.is_some()
                && net.pooling == first.pooling
        });
        if !alike {
            return Ok(None);
        }
        let n = self.nets.len() as i64;
        let mut y = if first.conv.is_some() {
            let convs: Vec<&ConvLayer> = self.nets.iter().filter_map(|n| n.conv.as_ref()).collect();
            match convs_side_by_side(&convs, x) {
                Some(y) => y,
                None => return Ok(None),
            }
        } else {
            x.repeat([1, n, 1, 1])
        };
        let gates: Vec<&ChannelGate> = self
            .nets
            .iter()
            .filter_map(|n| n.channel_attention.as_ref())
            .collect();
        if !gates.is_empty() {
            y = ChannelGate::forward_side_by_side(&gates, &y);
        }
        let y = y.relu();
        let pooled = match first.pooling {
            Pooling::Max => global_max_pool(&y),
            Pooling::Avg => global_avg_pool(&y),
        };
        let dim = pooled.size()[1] / n;
        let outputs = pooled
            .split(dim, 1)
            .iter()
            .zip(&self.nets)
            .map(|(part, net)| net.norm.f_forward_t(part, train))
            .collect::<Result<Vec<Tensor>, ModelError>>()?;
        Ok(Some(Tensor::stack(&outputs, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn proportional_split_gives_the_released_widths() {
        assert_eq!(
            proportional_split(512, &[192, 384, 768, 768]),
            [47, 93, 186, 186]
        );
        assert_eq!(FamConfig::default().split_out_chans(), [47, 93, 186, 186]);
        let tiny = proportional_split(64, &[64, 128, 256, 256]);
        assert_eq!(tiny.iter().sum::<i64>(), 64);
        assert_eq!(tiny, [6, 12, 23, 23]);
    }

    #[test]
    fn fam_config_validation_reports_typed_errors() {
        FamConfig::default().validate().unwrap();
        let cfg = FamConfig {
            in_chans: 2000,
            ..FamConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::SplitLevelsMismatch {
                levels: vec![192, 384, 768, 768],
                in_chans: 2000
            }
        );
        let cfg = FamConfig {
            feature_dim: 3,
            channel_attention: ChannelAttention::None,
            ..FamConfig::default()
        };
        assert!(matches!(
            cfg.validate().unwrap_err(),
            ConfigError::FeatureDimTooSmall { needed: 4, .. }
        ));
        let cfg = FamConfig {
            spatial_attention: SpatialAttention::LaNet,
            la_num_list: vec![2, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2],
            ..FamConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::NotPositive {
                name: "fam_la_num_list[i]",
                value: 0
            }
        );
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FamConfig {
            kernel_size: 0,
            ..FamConfig::default()
        };
        assert!(FeatureAttentionModule::new(&vs.root(), &cfg).is_err());
        assert!(
            vs.variables().is_empty(),
            "nothing is built from an invalid config"
        );
    }

    #[test]
    fn mad_drops_at_most_one_head_per_sample_with_probability_p() {
        tch::manual_seed(0);
        let (b, c) = (20_000, 4);
        let x = Tensor::ones([b, c, 2, 3], (Kind::Float, Device::Cpu));
        let y = mad(&x, MAD_P);
        // Each head map is kept or zeroed as a whole.
        let per_map_min = y.amin([2i64, 3].as_slice(), false);
        let per_map_max = y.amax([2i64, 3].as_slice(), false);
        assert_eq!(
            f64::try_from((&per_map_max - &per_map_min).abs().max()).unwrap(),
            0.0
        );
        let dropped = per_map_max.ones_like() - &per_map_max;
        let dropped_per_sample = dropped.sum_dim_intlist(1, false, Kind::Float);
        let counts: Vec<f32> = Vec::try_from(&dropped_per_sample).unwrap();
        assert!(counts.iter().all(|&n| n == 0.0 || n == 1.0));
        let fraction = counts.iter().sum::<f32>() as f64 / b as f64;
        // Binomial(20000, 0.6): sd ~ 0.0035.
        assert!(
            (fraction - MAD_P).abs() < 0.02,
            "fraction with a dropped head {fraction}"
        );
        // The dropped head is uniform: each head dropped in ~p/c of the samples.
        let per_head: Vec<f32> = Vec::try_from(dropped.mean_dim(0, false, Kind::Float)).unwrap();
        for share in per_head {
            assert!(
                (share as f64 - MAD_P / c as f64).abs() < 0.015,
                "head share {share}"
            );
        }
    }

    #[test]
    fn lanet_branch_output_is_random_in_eval_as_official() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FamConfig {
            in_chans: 32,
            level_chans: vec![32],
            feature_dim: 32,
            conv_mode: ConvMode::Normal,
            spatial_attention: SpatialAttention::LaNet,
            la_num_list: vec![3],
            branch_num: 1,
            ..FamConfig::default()
        };
        let fam = FeatureAttentionModule::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::randn([64, 32, 5, 5], (Kind::Float, Device::Cpu));
        let runs: Vec<Tensor> = (0..4).map(|_| fam.forward_t(&x, false)).collect();
        let differs = runs
            .windows(2)
            .any(|w| f64::try_from((&w[0] - &w[1]).abs().max()).unwrap() > 0.0);
        assert!(differs, "MAD should act in eval with 3 LANet heads");
        assert_eq!(runs[0].size(), [1, 64, 32]);
    }

    #[test]
    fn fam_variants_build_with_official_keys_and_shapes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FamConfig {
            conv_shared: true,
            conv_mode: ConvMode::Normal,
            spatial_attention: SpatialAttention::Cbam,
            pooling: Pooling::Avg,
            in_chans: 40,
            level_chans: vec![8, 16, 16],
            feature_dim: 32,
            ..FamConfig::default()
        };
        let fam = FeatureAttentionModule::new(&(vs.root() / "fam"), &cfg).unwrap();
        let vars = vs.variables();
        assert_eq!(vars["fam.conv.conv.weight"].size(), [32, 40, 3, 3]);
        assert_eq!(
            vars["fam.nets.10.spatial_attention.spatial.conv.weight"].size(),
            [1, 2, 7, 7]
        );
        assert_eq!(
            vars["fam.nets.0.spatial_attention.spatial.bn.running_var"].size(),
            [1]
        );
        assert_eq!(
            vars["fam.nets.3.channel_attention.mlp.1.weight"].size(),
            [2, 32]
        );
        assert!(!vars.keys().any(|k| k.starts_with("fam.nets.0.conv")));
        let x = Tensor::randn([2, 40, 7, 7], (Kind::Float, Device::Cpu));
        assert_eq!(fam.forward_t(&x, true).size(), [11, 2, 32]);
        let spatial_bn = &vars["fam.nets.0.spatial_attention.spatial.bn.num_batches_tracked"];
        assert_eq!(i64::try_from(spatial_bn).unwrap(), 1);
    }

    /// Output and gradients (input, a conv weight, a gate weight) of the branches one by
    /// one and side by side, in training mode.
    fn one_by_one_and_side_by_side(cfg: &FamConfig, x_size: [i64; 4]) -> (f64, f64) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let fam = FeatureAttentionModule::new(&(vs.root() / "fam"), cfg).unwrap();
        let vars = vs.variables();
        let x = Tensor::randn(x_size, (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let conv = if cfg.conv_shared {
            "fam.conv"
        } else {
            "fam.nets.4.conv"
        };
        let conv_key = match cfg.conv_mode {
            ConvMode::Normal => format!("{conv}.conv.weight"),
            ConvMode::Split => format!("{conv}.convs.1.weight"),
        };
        let mut watched = vec![&x, &vars[&conv_key]];
        if cfg.channel_attention == ChannelAttention::Cbam {
            watched.push(&vars["fam.nets.7.channel_attention.mlp.3.weight"]);
        }
        let run = |side_by_side: bool| {
            let input = match &fam.conv {
                Some(conv) => conv.forward(&x),
                None => x.shallow_clone(),
            };
            let y = if side_by_side {
                fam.side_by_side(&input, true)
                    .unwrap()
                    .expect("the side-by-side path")
            } else {
                fam.one_by_one(&input, true).unwrap()
            };
            // A fixed random projection, so that every output element has its own weight.
            tch::manual_seed(4);
            let loss = (&y * Tensor::randn(y.size(), (Kind::Float, Device::Cpu))).sum(Kind::Float);
            let grads = Tensor::run_backward(&[loss], &watched, false, false);
            (y, grads)
        };
        let (y1, g1) = run(false);
        let (y2, g2) = run(true);
        assert_eq!(
            y1.size(),
            [cfg.branch_num as i64, x_size[0], cfg.feature_dim]
        );
        let output_diff = f64::try_from((&y1 - &y2).abs().max()).unwrap();
        let grad_diff = g1
            .iter()
            .zip(&g2)
            .map(|(a, b)| {
                assert!(
                    f64::try_from(a.abs().max()).unwrap() > 0.0,
                    "a gradient is zero"
                );
                f64::try_from((a - b).abs().max() / a.abs().max()).unwrap()
            })
            .fold(0.0, f64::max);
        (output_diff, grad_diff)
    }

    #[test]
    fn side_by_side_branches_compute_what_the_branches_one_by_one_do() {
        let split = FamConfig {
            in_chans: 24,
            level_chans: vec![8, 16],
            feature_dim: 32,
            ..FamConfig::default()
        };
        let cases = [
            // Small weights: one conv per level with the branches' weights concatenated.
            ("split, concatenated weights", split.clone(), [8, 24, 5, 5]),
            // 16·9 weights per output channel against 2·3·3 outputs: conv by conv.
            ("split, conv by conv", split.clone(), [2, 24, 3, 3]),
            (
                "normal conv, no channel gate, average pooling",
                FamConfig {
                    conv_mode: ConvMode::Normal,
                    channel_attention: ChannelAttention::None,
                    pooling: Pooling::Avg,
                    ..split.clone()
                },
                [4, 24, 5, 5],
            ),
            (
                "shared conv",
                FamConfig {
                    conv_shared: true,
                    ..split.clone()
                },
                [4, 24, 5, 5],
            ),
        ];
        for (name, cfg, x_size) in cases {
            let (output_diff, grad_diff) = one_by_one_and_side_by_side(&cfg, x_size);
            assert!(
                output_diff < 1e-5,
                "{name}: outputs differ by {output_diff}"
            );
            assert!(
                grad_diff < 1e-5,
                "{name}: gradients differ by {grad_diff} (relative)"
            );
        }
        // A spatial gate mixes channels: those branches run one by one.
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FamConfig {
            spatial_attention: SpatialAttention::Cbam,
            ..split
        };
        let fam = FeatureAttentionModule::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::randn([2, 24, 5, 5], (Kind::Float, Device::Cpu));
        assert!(fam.side_by_side(&x, false).unwrap().is_none());
    }

    #[test]
    fn split_conv_cuts_the_input_by_level() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FamConfig {
            in_chans: 6,
            level_chans: vec![2, 4],
            feature_dim: 3,
            kernel_size: 1,
            ..FamConfig::default()
        };
        let conv = ConvLayer::new(&vs.root(), &cfg);
        let vars = vs.variables();
        assert_eq!(vars["convs.0.weight"].size(), [1, 2, 1, 1]);
        assert_eq!(vars["convs.1.weight"].size(), [2, 4, 1, 1]);
        let x = Tensor::randn([1, 6, 2, 2], (Kind::Float, Device::Cpu));
        let y = conv.forward(&x);
        let first = x.narrow(1, 0, 2).conv2d(
            &vars["convs.0.weight"],
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        );
        let diff = f64::try_from((y.narrow(1, 0, 1) - first).abs().max()).unwrap();
        assert!(diff < 1e-6);
    }
}
