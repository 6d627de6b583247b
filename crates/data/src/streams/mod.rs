//! The analysis streams' epochs, composed from their sources as the official code does, and
//! the YAML [`DataConfig`] that names the sources, shares and batch sizes.

mod compose;
mod config;
mod py_random;

pub use compose::{
    age_gender_stream, celeba_list, celeba_train_stream, expression_stream, CelebaSplit,
    ComposedStream, NamedSource, SampleRef,
};
pub use config::{DataConfig, Phase, EXPRESSION_SOURCES};
pub use py_random::PyRandom;
