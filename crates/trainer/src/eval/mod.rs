//! Evaluation on the standard protocols (`swinface eval` and the trainer's periodic
//! evaluation).

pub mod metrics;
