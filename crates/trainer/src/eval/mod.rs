//! Evaluation on the standard protocols, exactly as the official code computes each metric:
//! `swinface eval` ([`command`]) and the trainer's periodic evaluation ([`periodic`]) run the
//! same evaluators.
//!
//! - [`metrics`]: pure metric code (no I/O), parity-tested against the official results.
//! - [`config`]: the model, data and evaluation parts of a YAML config.
//! - [`datasets`]: which evaluations run and their label lists / `.bin` sets / IJB meta.
//! - [`images`], [`runner`], [`shard`]: streaming batches, the model in eval mode, sharding
//!   over ranks with a pluggable gather.
//! - [`analysis`] (RAF-DB, CelebA, CLAP2015, FG-NET), [`bins`] (LFW-style `.bin`), [`ijbc`]:
//!   the evaluators; [`suite`] runs them all.
//! - [`report`], [`plots`]: results.json, report.md, PNG plots.

pub mod analysis;
pub mod bench;
pub mod bins;
pub mod command;
pub mod config;
pub mod datasets;
pub mod error;
pub mod ijbc;
pub mod images;
pub mod metrics;
pub mod periodic;
pub mod plots;
pub mod report;
pub mod runner;
pub mod shard;
pub mod suite;

pub use command::{run, EvalArgs};
