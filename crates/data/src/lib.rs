//! swinface-data: reading and preparing face images.

pub mod attributes;
pub mod augment;
pub mod check;
pub mod error;
pub mod formats;
pub mod loader;
pub mod preprocess;
pub mod streams;
pub mod synth;
