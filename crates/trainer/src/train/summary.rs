//! Evaluation results as the trainer reports them: TensorBoard scalars and the confusion
//! matrix image, log lines, the best-checkpoint score, and `summary.json` at the end.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::checkpoint::BestRecord;
use super::config::{BestMetric, Stage, TrainConfig};
use super::progress::Progress;
use crate::eval::periodic::PeriodicReport;
use crate::eval::plots;
use crate::eval::suite::EvalResults;

/// The headline numbers of one evaluation (absent: not evaluated).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Mean accuracy over the verification `.bin` sets.
    pub verification_accuracy: Option<f64>,
    /// RAF-DB top-1.
    pub expression_accuracy: Option<f64>,
    /// CLAP2015 MAE (FG-NET's when CLAP is not configured).
    pub age_mae: Option<f64>,
    /// CelebA mean accuracy over the 40 attributes.
    pub attribute_mean_accuracy: Option<f64>,
}

impl Scores {
    pub fn of(r: &EvalResults) -> Self {
        let verification = (!r.verification.is_empty()).then(|| {
            r.verification
                .iter()
                .map(|v| v.metrics.accuracy)
                .sum::<f64>()
                / r.verification.len() as f64
        });
        Self {
            verification_accuracy: verification,
            expression_accuracy: r.raf.as_ref().map(|x| x.metrics.top1),
            age_mae: r.clap.as_ref().or(r.fgnet.as_ref()).map(|x| x.metrics.mae),
            attribute_mean_accuracy: r.celeba.as_ref().map(|x| x.metrics.mean),
        }
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.verification_accuracy {
            parts.push(format!("verification accuracy {v:.4}"));
        }
        if let Some(v) = self.expression_accuracy {
            parts.push(format!("expression accuracy {v:.4}"));
        }
        if let Some(v) = self.age_mae {
            parts.push(format!("age MAE {v:.2}"));
        }
        if let Some(v) = self.attribute_mean_accuracy {
            parts.push(format!("attribute mean accuracy {v:.4}"));
        }
        if parts.is_empty() {
            "nothing evaluated".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The value `metric` selects from `r`, its name and whether higher is better.
pub fn best_value(metric: BestMetric, r: &EvalResults) -> Option<(&'static str, f64, bool)> {
    let scores = Scores::of(r);
    let pick = |m: BestMetric| -> Option<(&'static str, f64, bool)> {
        match m {
            BestMetric::RafTop1 => scores.expression_accuracy.map(|v| ("raf_top1", v, true)),
            BestMetric::Verification => scores
                .verification_accuracy
                .map(|v| ("verification", v, true)),
            BestMetric::CelebaMean => scores
                .attribute_mean_accuracy
                .map(|v| ("celeba_mean", v, true)),
            BestMetric::ClapMae => r.clap.as_ref().map(|c| ("clap_mae", c.metrics.mae, false)),
            BestMetric::FgnetMae => r
                .fgnet
                .as_ref()
                .map(|c| ("fgnet_mae", c.metrics.mae, false)),
            BestMetric::Auto => None,
        }
    };
    match metric {
        BestMetric::Auto => [
            BestMetric::RafTop1,
            BestMetric::Verification,
            BestMetric::CelebaMean,
            BestMetric::ClapMae,
        ]
        .into_iter()
        .find_map(pick),
        m => pick(m),
    }
}

/// Logs one periodic evaluation: a line per protocol, TensorBoard scalars for every metric
/// and the RAF-DB confusion matrix as an image.
pub fn log_evaluation(progress: &mut Progress, report: &PeriodicReport, step: i64) -> Result<()> {
    let r = &report.results;
    let t = &report.trackers;
    let mut lines = Vec::new();
    let Some(tb) = progress.events.as_mut() else {
        return Ok(());
    };
    if let Some(raf) = &r.raf {
        let m = &raf.metrics;
        tb.add_scalar("eval/raf_top1", m.top1, step)?;
        tb.add_scalar("eval/raf_top5", m.top5, step)?;
        tb.add_scalar("eval/raf_mean_class_accuracy", m.mean_class_accuracy, step)?;
        tb.add_scalar("eval/raf_top1_best", t.raf_top1.best, step)?;
        lines.push(format!(
            "RAF-DB top-1 {:.4} (best {:.4}, moving average {:.4}), top-5 {:.4}",
            m.top1, t.raf_top1.best, t.raf_top1.moving_average, m.top5
        ));
        let dir = std::env::temp_dir().join(format!("swinface-confusion-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let png = dir.join("confusion.png");
        if plots::confusion_matrix(&png, raf).is_ok() {
            if let (Ok(bytes), Ok((w, h))) = (std::fs::read(&png), image::image_dimensions(&png)) {
                tb.add_png("eval/raf_confusion", bytes, w, h, 3, step)?;
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    if let Some(clap) = &r.clap {
        tb.add_scalar("eval/clap_mae", clap.metrics.mae, step)?;
        if let Some(eps) = clap.metrics.epsilon_error {
            tb.add_scalar("eval/clap_epsilon_error", eps, step)?;
        }
        lines.push(format!(
            "CLAP2015 MAE {:.3} (best {:.3}), epsilon-error {:.4}",
            clap.metrics.mae,
            t.clap_best_mae,
            clap.metrics.epsilon_error.unwrap_or(f64::NAN)
        ));
    }
    if let Some(c) = &r.celeba {
        tb.add_scalar("eval/celeba_mean", c.metrics.mean, step)?;
        for (name, acc) in c.attributes.iter().zip(&c.metrics.per_attribute) {
            tb.add_scalar(&format!("eval/celeba/{name}"), *acc, step)?;
        }
        lines.push(format!(
            "CelebA mean accuracy {:.4} (best {:.4})",
            c.metrics.mean, t.celeba_mean.best
        ));
    }
    for v in &r.verification {
        tb.add_scalar(
            &format!("eval/{}_accuracy", v.name),
            v.metrics.accuracy,
            step,
        )?;
        lines.push(format!(
            "{} accuracy {:.4} +- {:.4} (best {:.4})",
            v.name,
            v.metrics.accuracy,
            v.metrics.accuracy_std,
            t.verification_best.get(&v.name).copied().unwrap_or(0.0)
        ));
    }
    if let Some(f) = &r.fgnet {
        tb.add_scalar("eval/fgnet_mae", f.metrics.mae, step)?;
        lines.push(format!(
            "FG-NET MAE {:.3} (best {:.3})",
            f.metrics.mae, t.fgnet_mae.best
        ));
    }
    tb.flush()?;
    for line in lines {
        progress.line(&format!("eval step {step}: {line}"));
    }
    Ok(())
}

/// `summary.json`: what the run did and how well the model does.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub stage: &'static str,
    pub total_steps: u64,
    pub steps_run: u64,
    pub images_per_step: u64,
    pub train_seconds: f64,
    pub images_per_second: f64,
    pub final_loss: Option<f64>,
    /// The untrained model (when `initial_eval` is set).
    pub before: Option<Scores>,
    /// After the last step.
    pub after: Option<Scores>,
    pub best: Option<BestRecord>,
}

impl RunSummary {
    pub fn new(config: &TrainConfig, total_steps: u64) -> Self {
        Self {
            stage: match config.train.stage {
                Stage::Multitask => "multitask",
                Stage::Recognition => "recognition",
            },
            total_steps,
            steps_run: 0,
            images_per_step: config.batch_per_rank(),
            train_seconds: 0.0,
            images_per_second: 0.0,
            final_loss: None,
            before: None,
            after: None,
            best: None,
        }
    }

    pub fn write(&mut self, output: &Path) -> Result<PathBuf> {
        self.images_per_second =
            (self.steps_run * self.images_per_step) as f64 / self.train_seconds.max(1e-9);
        let path = output.join("summary.json");
        let json = serde_json::to_vec_pretty(self)?;
        super::write_file_atomic(&path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    pub fn print(&self) {
        println!(
            "trained {} steps in {:.0} s ({:.1} images/s)",
            self.steps_run, self.train_seconds, self.images_per_second
        );
        if let Some(before) = &self.before {
            println!("before training: {}", before.describe());
        }
        if let Some(after) = &self.after {
            println!("after training:  {}", after.describe());
        }
    }
}
