//! The Pillow 11 image operations that timm's augmentations call, reimplemented on RGB8 with
//! Pillow's arithmetic (fixed-point weights, float32 blends, truncations), so that one call
//! with the same arguments gives the same pixels. Each function's doc names the Pillow call.

pub mod enhance;
pub mod geometry;
pub mod point;
pub mod resample;

pub use geometry::Interpolation;
