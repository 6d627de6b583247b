//! Top-level model configuration. Field names follow the official config
//! (`configs/config_train.py`) where it has them; the backbone's settings, which the official
//! code hard-codes, sit under `swin:`.

use serde::{Deserialize, Serialize};

use crate::fam::{
    null_as_none, ChannelAttention, ConvMode, FamConfig, FamFeature, Pooling, SpatialAttention,
};
use crate::heads::BRANCH_NUM;
use crate::subnets::TSS_DROP_RATE;
use crate::swin::SwinConfig;

/// Why a configuration cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be positive, got {value}")]
    NotPositive { name: &'static str, value: i64 },
    #[error("depths has {depths} stages but num_heads has {num_heads}")]
    StageCountMismatch { depths: usize, num_heads: usize },
    #[error(
        "the backbone needs 2 to 8 stages (local features come from the non-final ones), got {0}"
    )]
    StageCount(usize),
    #[error("stage {stage}: width {dim} is not divisible by {heads} heads")]
    HeadsDoNotDivide { stage: usize, dim: i64, heads: i64 },
    #[error("img_size {img_size} is not divisible by patch_size * 2^(stages-1) = {required}")]
    ImageNotDivisible { img_size: i64, required: i64 },
    #[error(
        "stage {stage}: resolution {resolution} is not a multiple of window_size {window_size}"
    )]
    WindowDoesNotTile {
        stage: usize,
        resolution: i64,
        window_size: i64,
    },
    #[error("mlp_ratio {0} must give an MLP of at least 1 and at most 64x the width")]
    BadMlpRatio(f64),
    #[error("{name} must be in [0, 1), got {value}")]
    BadRate { name: &'static str, value: f64 },
    #[error("fam_in_chans is {actual} but fam_feature `{feature:?}` gives {expected} channels")]
    FamInChansMismatch {
        feature: FamFeature,
        expected: i64,
        actual: i64,
    },
    #[error(
        "fam_conv_mode split cuts the input at the feature levels and needs fam_feature all \
         (fam_in_chans {expected}; 2112 for the released backbone), got fam_feature `{feature:?}`"
    )]
    SplitNeedsAllFeatures { feature: FamFeature, expected: i64 },
    #[error("fam_feature_dim {dim} is too small: needs at least {needed} for {reason}")]
    FeatureDimTooSmall {
        dim: i64,
        needed: i64,
        reason: &'static str,
    },
    #[error("split conv levels {levels:?} do not add up to fam_in_chans {in_chans}")]
    SplitLevelsMismatch { levels: Vec<i64>, in_chans: i64 },
    #[error("fam_la_num_list has {actual} entries, needs one per branch ({expected})")]
    LaNumListLength { expected: usize, actual: usize },
}

/// Backbone family; the official code knows only Swin-T.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    #[default]
    #[serde(rename = "swin_t")]
    SwinT,
}

/// The whole SwinFace model. `Default` is the released configuration
/// (`configs/config_train.py` and `inference.py`'s `SwinFaceCfg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwinFaceConfig {
    pub network: Network,
    /// Width of the recognition embedding (the backbone's `num_classes`).
    pub embedding_size: i64,
    pub swin: SwinConfig,
    pub fam_kernel_size: i64,
    /// Channels of the FAM input; must equal what `fam_feature` selects (2112 for `all`).
    pub fam_in_chans: i64,
    /// Width of the FAM branches, subnets and head inputs (fixed 512 in the official code).
    pub fam_feature_dim: i64,
    pub fam_conv_shared: bool,
    pub fam_conv_mode: ConvMode,
    #[serde(deserialize_with = "null_as_none")]
    pub fam_channel_attention: ChannelAttention,
    #[serde(deserialize_with = "null_as_none")]
    pub fam_spatial_attention: SpatialAttention,
    pub fam_pooling: Pooling,
    /// LANet heads per branch (11 entries).
    pub fam_la_num_list: Vec<i64>,
    pub fam_feature: FamFeature,
    /// Dropout of the task-specific subnets (fixed 0.5 in the official code).
    pub tss_drop_rate: f64,
}

impl Default for SwinFaceConfig {
    fn default() -> Self {
        Self {
            network: Network::SwinT,
            embedding_size: 512,
            swin: SwinConfig::default(),
            fam_kernel_size: 3,
            fam_in_chans: 2112,
            fam_feature_dim: 512,
            fam_conv_shared: false,
            fam_conv_mode: ConvMode::Split,
            fam_channel_attention: ChannelAttention::Cbam,
            fam_spatial_attention: SpatialAttention::None,
            fam_pooling: Pooling::Max,
            fam_la_num_list: vec![2; BRANCH_NUM],
            fam_feature: FamFeature::All,
            tss_drop_rate: TSS_DROP_RATE,
        }
    }
}

impl SwinFaceConfig {
    /// A small model with the same structure (4 stages, shifted windows, split FAM with
    /// CBAM) that trains quickly on a CPU: embed 32, depths 2-2-2-2, heads 1-2-4-8,
    /// FAM width 64, embedding 128.
    pub fn tiny_demo() -> Self {
        let swin = SwinConfig {
            embed_dim: 32,
            depths: vec![2, 2, 2, 2],
            num_heads: vec![1, 2, 4, 8],
            ..SwinConfig::default()
        };
        let mut cfg = Self {
            embedding_size: 128,
            fam_feature_dim: 64,
            swin,
            ..Self::default()
        };
        cfg.fam_in_chans = cfg.feature_chans(cfg.fam_feature);
        cfg
    }

    /// Channels of each backbone feature level: the local stages, then the global map.
    pub fn level_chans(&self) -> Vec<i64> {
        let mut levels = self.swin.local_feature_dims();
        levels.push(self.swin.num_features());
        levels
    }

    /// Channels that `feature` selects from this backbone.
    pub fn feature_chans(&self, feature: FamFeature) -> i64 {
        let local: i64 = self.swin.local_feature_dims().iter().sum();
        let global = self.swin.num_features();
        match feature {
            FamFeature::All => local + global,
            FamFeature::Global => global,
            FamFeature::Local => local,
        }
    }

    /// The resolved FAM settings.
    pub fn fam_config(&self) -> FamConfig {
        let level_chans = match self.fam_feature {
            FamFeature::All => self.level_chans(),
            FamFeature::Global => vec![self.swin.num_features()],
            FamFeature::Local => self.swin.local_feature_dims(),
        };
        FamConfig {
            branch_num: BRANCH_NUM,
            in_chans: self.fam_in_chans,
            level_chans,
            feature_dim: self.fam_feature_dim,
            kernel_size: self.fam_kernel_size,
            conv_shared: self.fam_conv_shared,
            conv_mode: self.fam_conv_mode,
            channel_attention: self.fam_channel_attention,
            spatial_attention: self.fam_spatial_attention,
            pooling: self.fam_pooling,
            la_num_list: self.fam_la_num_list.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.swin.validate()?;
        if self.embedding_size <= 0 {
            return Err(ConfigError::NotPositive {
                name: "embedding_size",
                value: self.embedding_size,
            });
        }
        let expected = self.feature_chans(self.fam_feature);
        if self.fam_in_chans != expected {
            return Err(ConfigError::FamInChansMismatch {
                feature: self.fam_feature,
                expected,
                actual: self.fam_in_chans,
            });
        }
        if self.fam_conv_mode == ConvMode::Split && self.fam_feature != FamFeature::All {
            return Err(ConfigError::SplitNeedsAllFeatures {
                feature: self.fam_feature,
                expected: self.feature_chans(FamFeature::All),
            });
        }
        self.fam_config().validate()?;
        if !(0.0..1.0).contains(&self.tss_drop_rate) {
            return Err(ConfigError::BadRate {
                name: "tss_drop_rate",
                value: self.tss_drop_rate,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_released_configuration() {
        let cfg = SwinFaceConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.level_chans(), [192, 384, 768, 768]);
        assert_eq!(cfg.feature_chans(FamFeature::All), 2112);
        assert_eq!(cfg.fam_config(), FamConfig::default());
        assert_eq!(cfg.fam_config().split_out_chans(), [47, 93, 186, 186]);
    }

    #[test]
    fn tiny_demo_is_valid_with_proportional_split() {
        let cfg = SwinFaceConfig::tiny_demo();
        cfg.validate().unwrap();
        assert_eq!(cfg.fam_in_chans, 64 + 128 + 256 + 256);
        let widths = cfg.fam_config().split_out_chans();
        assert_eq!(widths.iter().sum::<i64>(), cfg.fam_feature_dim);
    }

    #[test]
    fn validation_reports_typed_errors() {
        let base = SwinFaceConfig::default();
        let with_swin = |f: &dyn Fn(&mut SwinConfig)| {
            let mut cfg = base.clone();
            f(&mut cfg.swin);
            cfg.validate().unwrap_err()
        };
        assert_eq!(
            with_swin(&|s| s.num_heads = vec![3, 6, 12, 25]),
            ConfigError::HeadsDoNotDivide {
                stage: 3,
                dim: 768,
                heads: 25
            }
        );
        assert_eq!(
            with_swin(&|s| s.embed_dim = 100),
            ConfigError::HeadsDoNotDivide {
                stage: 0,
                dim: 100,
                heads: 3
            }
        );
        assert_eq!(
            with_swin(&|s| s.img_size = 120),
            ConfigError::ImageNotDivisible {
                img_size: 120,
                required: 16
            }
        );
        assert_eq!(
            with_swin(&|s| s.num_heads = vec![3, 6, 12]),
            ConfigError::StageCountMismatch {
                depths: 4,
                num_heads: 3
            }
        );
        assert_eq!(
            with_swin(&|s| s.window_size = 6),
            ConfigError::WindowDoesNotTile {
                stage: 0,
                resolution: 56,
                window_size: 6
            }
        );
        assert!(matches!(
            with_swin(&|s| s.mlp_ratio = f64::NAN),
            ConfigError::BadMlpRatio(_)
        ));
        assert!(matches!(
            with_swin(&|s| s.mlp_ratio = 1e9),
            ConfigError::BadMlpRatio(_)
        ));
        assert_eq!(
            with_swin(&|s| s.drop_path_rate = 1.0),
            ConfigError::BadRate {
                name: "drop_path_rate",
                value: 1.0
            }
        );
        assert_eq!(
            with_swin(&|s| {
                s.depths = vec![2];
                s.num_heads = vec![3];
            }),
            ConfigError::StageCount(1)
        );

        let cfg = SwinFaceConfig {
            fam_in_chans: 2000,
            ..base.clone()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::FamInChansMismatch {
                feature: FamFeature::All,
                expected: 2112,
                actual: 2000
            }
        );
        let cfg = SwinFaceConfig {
            fam_feature: FamFeature::Global,
            fam_in_chans: 768,
            ..base.clone()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::SplitNeedsAllFeatures {
                feature: FamFeature::Global,
                expected: 2112
            }
        );
        let cfg = SwinFaceConfig {
            fam_feature: FamFeature::Global,
            fam_in_chans: 768,
            fam_conv_mode: ConvMode::Normal,
            ..base.clone()
        };
        cfg.validate().unwrap();
        let cfg = SwinFaceConfig {
            fam_spatial_attention: SpatialAttention::LaNet,
            fam_la_num_list: vec![2; 10],
            ..base.clone()
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::LaNumListLength {
                expected: 11,
                actual: 10
            }
        );
        let cfg = SwinFaceConfig {
            fam_feature_dim: 8,
            ..base.clone()
        };
        assert!(matches!(
            cfg.validate().unwrap_err(),
            ConfigError::FeatureDimTooSmall { needed: 16, .. }
        ));
        let cfg = SwinFaceConfig {
            embedding_size: 0,
            ..base
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ConfigError::NotPositive {
                name: "embedding_size",
                value: 0
            }
        );
    }

    #[test]
    fn yaml_uses_official_names_and_rejects_unknown_fields() {
        let yaml = "network: swin_t\nembedding_size: 512\nfam_kernel_size: 3\nfam_in_chans: 2112\n\
                    fam_conv_shared: false\nfam_conv_mode: split\nfam_channel_attention: CBAM\n\
                    fam_spatial_attention: null\nfam_pooling: max\nfam_la_num_list: [2,2,2,2,2,2,2,2,2,2,2]\n\
                    fam_feature: all\n";
        let cfg: SwinFaceConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(cfg, SwinFaceConfig::default());

        let partial: SwinFaceConfig =
            serde_yaml::from_str("fam_spatial_attention: LANet\nswin:\n  attention: math\n")
                .unwrap();
        assert_eq!(partial.fam_spatial_attention, SpatialAttention::LaNet);
        assert_eq!(partial.swin.attention, crate::swin::AttentionKernel::Math);
        assert_eq!(partial.swin.depths, [2, 2, 6, 2]);

        assert!(serde_yaml::from_str::<SwinFaceConfig>("fam_kernal_size: 3\n").is_err());
        assert!(serde_yaml::from_str::<SwinFaceConfig>("swin:\n  depth: [2]\n").is_err());
        assert!(serde_yaml::from_str::<SwinFaceConfig>("network: swin_b\n").is_err());

        let round_trip: SwinFaceConfig =
            serde_yaml::from_str(&serde_yaml::to_string(&SwinFaceConfig::tiny_demo()).unwrap())
                .unwrap();
        assert_eq!(round_trip, SwinFaceConfig::tiny_demo());
    }
}
