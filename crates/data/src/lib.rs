//! swinface-data: reading and preparing face images.

pub mod preprocess;
