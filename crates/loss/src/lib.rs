//! swinface-loss
