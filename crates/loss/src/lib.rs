//! swinface-loss: SwinFace's training objective and optimisation.
//!
//! - [`margin`]: CombinedMarginLoss (ArcFace / CosFace logits).
//! - [`partial_fc`]: Partial FC over sharded, sampled class centres, with the centres'
//!   optimizer state kept in a table; [`collectives`] is the rank-communication seam.
//! - [`age`], [`classification`]: the analysis losses and per-task weights.
//! - [`optim`]: AdamW and SGD over parameter groups with checkpointable state.
//! - [`schedule`]: timm-compatible learning-rate schedules as the official loop drives them.
//! - [`clip`]: global-norm gradient clipping; [`amp`]: precision mode and loss scaling.

pub mod age;
pub mod amp;
pub mod classification;
pub mod clip;
pub mod collectives;
pub mod error;
pub mod margin;
pub mod optim;
pub mod partial_fc;
pub mod schedule;
mod tensor_util;

pub use age::{AgeLoss, AgeLossConfig};
pub use amp::{AmpConfig, AmpMode, Autocast, AutocastDevice, GradScaler, GradScalerConfig};
pub use classification::{ClassificationLoss, LossWeights, ANALYSIS_TASKS};
pub use clip::{clip_grad_norm, clip_grads, BACKBONE_MAX_NORM};
pub use collectives::{Collectives, SimulatedCollectives, SingleProcess};
pub use error::{LossError, Result};
pub use margin::{CombinedMarginLoss, MarginKind, MARGIN_SCALE};
pub use optim::{
    AdamW, AdamWHyper, Optimizer, OptimizerConfig, OptimizerName, ParamGroup, Sgd, SgdHyper,
    UpdateRule,
};
pub use partial_fc::{shard_of, PartialFc, PartialFcConfig};
pub use schedule::{LrName, LrSchedule, ScheduleConfig};
