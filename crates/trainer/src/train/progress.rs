//! What a run shows and records: an indicatif bar on a terminal (plain lines otherwise), a
//! log file in the output directory, and TensorBoard event files.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::learner::StepOutcome;
use crate::tensorboard::EventWriter;

/// The run's outputs for people and for TensorBoard.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// None on the ranks of a data-parallel run other than 0: they write nothing.
    log: Option<File>,
    losses: Option<File>,
    pub events: Option<EventWriter>,
    total_steps: u64,
    window_start: Instant,
    window_images: u64,
    started: Instant,
    first_step: u64,
}

impl Progress {
    /// `first_step`: where this run starts (non-zero on resume). With `write` false (ranks
    /// other than 0), nothing is written or shown.
    pub fn new(output: &Path, total_steps: u64, first_step: u64, write: bool) -> Result<Self> {
        if !write {
            return Ok(Self {
                bar: None,
                log: None,
                losses: None,
                events: None,
                total_steps,
                window_start: Instant::now(),
                window_images: 0,
                started: Instant::now(),
                first_step,
            });
        }
        let log_path = output.join("train.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let losses_path = output.join("losses.jsonl");
        let losses = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&losses_path)
            .with_context(|| format!("cannot open {}", losses_path.display()))?;
        let tb_dir = output.join("tensorboard");
        let events = EventWriter::create(&tb_dir)
            .with_context(|| format!("cannot create TensorBoard events in {}", tb_dir.display()))?;
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(first_step);
            bar
        });
        Ok(Self {
            bar,
            log: Some(log),
            losses: Some(losses),
            events: Some(events),
            total_steps,
            window_start: Instant::now(),
            window_images: 0,
            started: Instant::now(),
            first_step,
        })
    }

    /// Where this invocation starts (after a resume), for the bar and the ETA.
    pub fn set_first_step(&mut self, step: u64) {
        self.first_step = step;
        self.started = Instant::now();
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    pub fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// A line for the log file only (the bar shows the same).
    pub fn log_only(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            let _ = writeln!(log, "{text}");
            let _ = log.flush();
        }
    }

    /// Appends the step's losses and rates to `losses.jsonl` (full precision, one object a
    /// line; after a resume, steps past the checkpoint may appear twice: the later line counts).
    pub fn record_losses(&mut self, step: u64, outcome: &StepOutcome) -> Result<()> {
        let Some(losses) = &mut self.losses else {
            return Ok(());
        };
        let line = serde_json::json!({
            "step": step,
            "total": outcome.total,
            "recognition": outcome.recognition,
            "analysis": outcome.analysis,
            "learning_rates": outcome.learning_rates,
            "grad_norm": outcome.grad_norm,
            "stepped": outcome.stepped,
        });
        writeln!(losses, "{line}").context("cannot write losses.jsonl")?;
        losses.flush().context("cannot write losses.jsonl")?;
        Ok(())
    }

    /// A line for the log file and, above the bar or on stdout, for the person watching.
    pub fn line(&mut self, text: &str) {
        let Some(log) = &mut self.log else {
            return;
        };
        let _ = writeln!(log, "{text}");
        let _ = log.flush();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    /// Counts a step's images toward the throughput.
    pub fn step_done(&mut self, step: u64, images: u64) {
        self.window_images += images;
        if let Some(bar) = &self.bar {
            bar.set_position(step + 1);
        }
    }

    /// Images per second since the last call, and restarts the window.
    pub fn take_throughput(&mut self) -> f64 {
        let seconds = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.window_images as f64 / seconds;
        self.window_start = Instant::now();
        self.window_images = 0;
        rate
    }

    /// Seconds left at the rate of this run so far.
    pub fn eta_seconds(&self, step: u64) -> f64 {
        let done = (step + 1).saturating_sub(self.first_step).max(1) as f64;
        let left = self.total_steps.saturating_sub(step + 1) as f64;
        self.started.elapsed().as_secs_f64() / done * left
    }

    /// Updates the bar's message (loss, lr, throughput).
    pub fn status(&mut self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(events) = &mut self.events {
            let _ = events.flush();
        }
    }
}
