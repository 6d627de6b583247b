//! swinface-model: the SwinFace network (Swin-T backbone, multi-level channel attention,
//! task-specific subnets and 42 analysis heads) in tch, with variable names equal to the
//! official PyTorch state-dict keys and outputs that match the official code to float
//! round-off (see `tests/parity.rs`).
//!
//! Modules in data-flow order: [`swin`] -> [`fam`] -> [`subnets`] -> [`heads`], assembled
//! in [`swinface`]; [`config`] holds the top-level configuration, [`layers`] the shared
//! small layers and [`formula`] the deterministic parity weights.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod fam;
pub mod formula;
pub mod heads;
pub mod layers;
pub mod subnets;
pub mod swin;
pub mod swinface;

pub use checkpoint::{load_any, CheckpointError, LoadReport};
pub use config::{ConfigError, Network, SwinFaceConfig};
pub use error::ModelError;
pub use fam::{
    ChannelAttention, ConvMode, FamConfig, FamFeature, FeatureAttentionModule, Pooling,
    SpatialAttention,
};
pub use heads::{
    head_specs, task_index, HeadSpec, OutputModule, AGE_HEAD_PREFIX, BRANCH_HEADS, BRANCH_NUM,
    EXPRESSION_LABELS, GENDER_LABELS, TASK_NAMES,
};
pub use subnets::TaskSpecificSubnets;
pub use swin::{AttentionKernel, BackboneOutput, SwinConfig, SwinTransformer};
pub use swinface::{SwinFace, SwinFaceOutput, BACKBONE_GROUP, HEADS_GROUP};
