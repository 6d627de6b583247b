//! The trainer's periodic evaluation: the same evaluators, run when `(step + 1)` is a multiple
//! of `verbose` and once after the last step, with the official callbacks' bookkeeping:
//! RAF-DB keeps the best top-1 and top-5 and the 10-evaluation moving average of top-1; CelebA
//! the best accuracy of each attribute, the best mean (with the accuracies at that
//! evaluation) and the moving average of the mean; FG-NET the best MAE and its moving
//! average; CLAP2015 the best MAE, the best epsilon-error and the moving average of the
//! epsilon-error; each verification set only its best accuracy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::datasets::EvalData;
use super::error::EvalError;
use super::metrics::tracker::{BestTracker, Better};
use super::runner::Runner;
use super::suite::{run_all, EvalResults};

/// Whether the official loop evaluates after `global_step` (0-based): every `verbose` steps
/// and after the last one.
pub fn is_due(global_step: u64, verbose: u64, total_steps: u64) -> bool {
    (verbose > 0 && (global_step + 1).is_multiple_of(verbose)) || global_step + 1 == total_steps
}

/// What is kept across evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trackers {
    pub raf_top1: BestTracker,
    pub raf_best_top5: f64,
    pub celeba_mean: BestTracker,
    pub celeba_best_per_attribute: Vec<f64>,
    /// The attribute accuracies of the evaluation with the best mean.
    pub celeba_at_best_mean: Vec<f64>,
    pub fgnet_mae: BestTracker,
    pub clap_best_mae: f64,
    pub clap_epsilon: BestTracker,
    /// Best accuracy per verification set.
    pub verification_best: BTreeMap<String, f64>,
}

impl Default for Trackers {
    fn default() -> Self {
        Self {
            raf_top1: BestTracker::new(Better::Higher),
            raf_best_top5: 0.0,
            celeba_mean: BestTracker::new(Better::Higher),
            celeba_best_per_attribute: Vec::new(),
            celeba_at_best_mean: Vec::new(),
            fgnet_mae: BestTracker::new(Better::Lower),
            clap_best_mae: 100.0,
            clap_epsilon: BestTracker::new(Better::Lower),
            verification_best: BTreeMap::new(),
        }
    }
}

impl Trackers {
    pub fn update(&mut self, r: &EvalResults) {
        if let Some(raf) = &r.raf {
            self.raf_top1.update(raf.metrics.top1);
            self.raf_best_top5 = self.raf_best_top5.max(raf.metrics.top5);
        }
        if let Some(celeba) = &r.celeba {
            let acc = &celeba.metrics.per_attribute;
            if self.celeba_best_per_attribute.len() != acc.len() {
                self.celeba_best_per_attribute = vec![0.0; acc.len()];
            }
            for (best, &a) in self.celeba_best_per_attribute.iter_mut().zip(acc) {
                if a > *best {
                    *best = a;
                }
            }
            if self.celeba_mean.update(celeba.metrics.mean) {
                self.celeba_at_best_mean = acc.clone();
            }
        }
        if let Some(fgnet) = &r.fgnet {
            self.fgnet_mae.update(fgnet.metrics.mae);
        }
        if let Some(clap) = &r.clap {
            if clap.metrics.mae < self.clap_best_mae {
                self.clap_best_mae = clap.metrics.mae;
            }
            if let Some(eps) = clap.metrics.epsilon_error {
                self.clap_epsilon.update(eps);
            }
        }
        for v in &r.verification {
            let best = self.verification_best.entry(v.name.clone()).or_insert(0.0);
            if v.metrics.accuracy > *best {
                *best = v.metrics.accuracy;
            }
        }
    }
}

/// One periodic evaluation: the step, this evaluation's results and the trackers after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodicReport {
    pub global_step: u64,
    pub results: EvalResults,
    pub trackers: Trackers,
}

/// The evaluation data, loaded once, and the trackers.
pub struct PeriodicEvaluator {
    pub data: EvalData,
    pub trackers: Trackers,
}

impl PeriodicEvaluator {
    pub fn new(data: EvalData) -> Self {
        Self {
            data,
            trackers: Trackers::default(),
        }
    }

    /// Evaluates the model (which the caller has put in eval mode semantics by running the
    /// runner's `forward_t(train = false)`) and updates the trackers.
    pub fn evaluate(
        &mut self,
        runner: &Runner,
        global_step: u64,
    ) -> Result<PeriodicReport, EvalError> {
        let results = run_all(runner, &self.data)?;
        self.trackers.update(&results);
        Ok(PeriodicReport {
            global_step,
            results,
            trackers: self.trackers.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_on_the_official_schedule() {
        // verbose 2000, 80000 steps: after steps 1999, 3999, ..., and the last (79999).
        assert!(!is_due(0, 2000, 80_000));
        assert!(is_due(1999, 2000, 80_000));
        assert!(!is_due(2000, 2000, 80_000));
        assert!(is_due(79_999, 2000, 80_000));
        // A run whose length is not a multiple of verbose still ends with one.
        assert!(is_due(4, 2000, 5));
    }
}
