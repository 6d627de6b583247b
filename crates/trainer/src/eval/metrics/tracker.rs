//! The official callbacks' bookkeeping across periodic evaluations: the best value seen and
//! `LimitedAvgMeter`, the mean of the last ten evaluations and the best of that mean.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::numpy::python_sum;

/// Whether higher or lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// Evaluations in the moving average (`LimitedAvgMeter(max_num=10)`).
pub const MOVING_AVERAGE_WINDOW: usize = 10;

/// The best value and the moving average of one metric. The starting "best" values are the
/// official ones: 0 when higher is better, 100 when lower is (so an error above 100 never
/// becomes the best, as there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTracker {
    pub better: Better,
    /// Best single evaluation.
    pub best: f64,
    /// Mean of the last (up to) ten evaluations.
    pub moving_average: f64,
    /// Best moving average so far.
    pub best_moving_average: f64,
    pub evaluations: usize,
    /// The evaluations in the moving average (kept in checkpoints so a resume continues it).
    window: VecDeque<f64>,
}

impl BestTracker {
    pub fn new(better: Better) -> Self {
        let start = match better {
            Better::Higher => 0.0,
            Better::Lower => 100.0,
        };
        Self {
            better,
            best: start,
            moving_average: 0.0,
            best_moving_average: start,
            evaluations: 0,
            window: VecDeque::with_capacity(MOVING_AVERAGE_WINDOW),
        }
    }

    fn improves(&self, value: f64, on: f64) -> bool {
        match self.better {
            Better::Higher => value > on,
            Better::Lower => value < on,
        }
    }

    /// Records one evaluation; returns whether it is a new best.
    pub fn update(&mut self, value: f64) -> bool {
        self.evaluations += 1;
        if self.window.len() == MOVING_AVERAGE_WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(value);
        let window: Vec<f64> = self.window.iter().copied().collect();
        self.moving_average = python_sum(&window) / window.len() as f64;
        if self.improves(self.moving_average, self.best_moving_average) {
            self.best_moving_average = self.moving_average;
        }
        let new_best = self.improves(value, self.best);
        if new_best {
            self.best = value;
        }
        new_best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_and_ten_evaluation_average() {
        let mut t = BestTracker::new(Better::Higher);
        for v in 1..=12 {
            t.update(f64::from(v));
        }
        assert_eq!(t.best, 12.0);
        // Mean of 3..=12.
        assert_eq!(t.moving_average, 7.5);
        assert!(!t.update(0.0));
        // Window 4..=12, 0: 72 / 10.
        assert_eq!(t.moving_average, 7.2);
        assert_eq!(t.best_moving_average, 7.5);

        let mut mae = BestTracker::new(Better::Lower);
        assert!(mae.update(5.0));
        assert!(!mae.update(6.0));
        assert_eq!(mae.best, 5.0);
        assert_eq!(mae.moving_average, 5.5);
        assert_eq!(mae.best_moving_average, 5.0);
        let mut huge = BestTracker::new(Better::Lower);
        assert!(!huge.update(150.0));
        assert_eq!(huge.best, 100.0);
    }
}
