//! swinface-model
