//! Training and evaluation image transforms, equal in distribution to the official
//! PyTorch pipelines (timm 1.0.15 `create_transform` with SwinFace's arguments for the
//! analysis streams, insightface's flip for recognition, torchvision's resize for
//! evaluation), built on Pillow-exact image operations ([`pil`]).
//!
//! Randomness comes from a per-sample stream ([`rng::sample_rng`]), so a sample's
//! augmentation depends only on (seed, epoch, position), not on threads.

pub mod crop;
pub mod pil;
pub mod pipeline;
pub mod rand_augment;
pub mod random_erasing;
pub mod rng;

pub use crop::{CropBox, RandomResizedCropConfig};
pub use pil::Interpolation;
pub use pipeline::{
    AnalysisAugmentConfig, AnalysisTransform, AugmentTrace, EvalTransform, Normalize,
    RecognitionTransform, Transform,
};
pub use rand_augment::{OpArg, OpKind, RandAugment, RandAugmentConfig};
pub use random_erasing::{EraseMode, RandomErasingConfig};
pub use rng::{sample_rng, SampleRng};

/// What can go wrong transforming one image.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    #[error("image is {width}x{height}, the transform expects {expected}x{expected}")]
    WrongSize {
        width: u32,
        height: u32,
        expected: u32,
    },
    #[error("output buffer holds {found} floats, the image needs {expected}")]
    OutputLength { expected: usize, found: usize },
    #[error("bad RandAugment spec '{spec}': {message}")]
    BadRandAugmentSpec { spec: String, message: String },
}
