//! Learning-rate schedules with timm's semantics, as SwinFace's `lr_scheduler.py` builds them
//! (`t_in_epochs=False`, driven per optimizer update).
//!
//! The official loop calls `step_update(t)` *after* the optimizer step of training step `t`, and
//! every group starts at `warmup_lr`; so training step `t` runs at the rate computed for
//! `t − 1` ([`LrSchedule::lr_for_step`]). Each group warms up linearly from the shared
//! `warmup_lr` towards its own base rate and decays to the shared `min_lr` (the backbone group's
//! base is `lr / 10`; its warmup and minimum rates are not divided).
//!
//! A schedule is a pure function of the step: its checkpoint state is the step number alone.

use serde::{Deserialize, Serialize};

use crate::error::{LossError, Result};

/// The official `lr_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrName {
    /// timm `CosineLRScheduler`: one cycle over `total_step`, then `min_lr`.
    Cosine,
    /// SwinFace's `LinearLRScheduler`: after warmup, linear to 1 % of the base; ignores `min_lr`.
    Linear,
    /// timm `StepLRScheduler`: ×`decay_rate` every `decay_steps` steps after the warmup.
    Step,
}

/// Schedule settings with the official names (`configs/config_train.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    #[serde(alias = "scheduler")]
    pub lr_name: LrName,
    pub warmup_step: u64,
    pub total_step: u64,
    pub warmup_lr: f64,
    pub min_lr: f64,
    /// `build_scheduler`'s `decay_steps` (the config's `decay_epoch` is not passed to it).
    pub decay_steps: u64,
    pub decay_rate: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            lr_name: LrName::Cosine,
            warmup_step: 8000,
            total_step: 80000,
            warmup_lr: 5e-7,
            min_lr: 5e-6,
            decay_steps: 100,
            decay_rate: 0.1,
        }
    }
}

/// The lower end of the linear schedule, as a fraction of the base rate.
const LINEAR_MIN_RATE: f64 = 0.01;

/// A schedule bound to its base learning rate.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    config: ScheduleConfig,
    base_lr: f64,
}

impl LrSchedule {
    pub fn new(config: ScheduleConfig, base_lr: f64) -> Result<Self> {
        if config.total_step == 0 {
            return Err(LossError::InvalidConfig {
                field: "total_step",
                reason: "must be > 0".into(),
            });
        }
        if config.lr_name == LrName::Linear && config.warmup_step >= config.total_step {
            return Err(LossError::InvalidConfig {
                field: "warmup_step",
                reason: "the linear schedule needs warmup_step < total_step".into(),
            });
        }
        if config.lr_name == LrName::Step && config.decay_steps == 0 {
            return Err(LossError::InvalidConfig {
                field: "decay_steps",
                reason: "must be > 0".into(),
            });
        }
        Ok(Self { config, base_lr })
    }

    /// The official linear scaling rule: `lr`, `warmup_lr` and `min_lr` times
    /// `total_batch / 512`, where `total_batch` sums all task batches over all ranks.
    pub fn scaled_for_batch(mut self, total_batch: usize) -> Self {
        let factor = total_batch as f64 / 512.0;
        self.base_lr *= factor;
        self.config.warmup_lr *= factor;
        self.config.min_lr *= factor;
        self
    }

    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The rate timm's `step_update(t)` sets for a group whose base rate is
    /// `base_lr · lr_scale` (timm's `_get_lr(t)`, same operation order).
    pub fn value_at(&self, t: u64, lr_scale: f64) -> f64 {
        let c = &self.config;
        let base = self.base_lr * lr_scale;
        if t < c.warmup_step {
            let warmup_increment = (base - c.warmup_lr) / c.warmup_step as f64;
            return c.warmup_lr + t as f64 * warmup_increment;
        }
        match c.lr_name {
            // warmup_prefix=False: the cosine runs over absolute steps, so it starts just
            // below the base rate when the warmup ends.
            LrName::Cosine => {
                let cycle = t / c.total_step;
                if cycle >= 1 {
                    return c.min_lr;
                }
                let t_curr = (t - cycle * c.total_step) as f64;
                let t_i = c.total_step as f64;
                c.min_lr
                    + 0.5 * (base - c.min_lr) * (1.0 + (std::f64::consts::PI * t_curr / t_i).cos())
            }
            LrName::Linear => {
                let t = (t - c.warmup_step) as f64;
                let total_t = (c.total_step - c.warmup_step) as f64;
                base - ((base - base * LINEAR_MIN_RATE) * (t / total_t))
            }
            // timm's StepLRScheduler counts the decay after the warmup (warmup_prefix=True).
            LrName::Step => {
                let decays = (t - c.warmup_step) / c.decay_steps;
                base * c.decay_rate.powf(decays as f64)
            }
        }
    }

    /// The rate before any `step_update`: `warmup_lr` when there is a warmup, else the base.
    pub fn initial(&self, lr_scale: f64) -> f64 {
        if self.config.warmup_step > 0 {
            self.config.warmup_lr
        } else {
            self.base_lr * lr_scale
        }
    }

    /// The rate that training step `step` (0-based) uses in the official loop.
    pub fn lr_for_step(&self, step: u64, lr_scale: f64) -> f64 {
        match step.checked_sub(1) {
            None => self.initial(lr_scale),
            Some(previous) => self.value_at(previous, lr_scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(lr_name: LrName) -> LrSchedule {
        let config = ScheduleConfig {
            lr_name,
            warmup_step: 10,
            total_step: 100,
            warmup_lr: 1e-6,
            min_lr: 1e-5,
            ..ScheduleConfig::default()
        };
        LrSchedule::new(config, 1e-3).unwrap()
    }

    #[test]
    fn training_step_uses_the_previous_update() {
        let s = schedule(LrName::Cosine);
        assert_eq!(s.lr_for_step(0, 1.0), 1e-6);
        assert_eq!(s.lr_for_step(1, 1.0), s.value_at(0, 1.0));
        assert_eq!(s.lr_for_step(11, 1.0), s.value_at(10, 1.0));
        // Warmup is linear from warmup_lr: half-way at t = 5.
        assert!((s.value_at(5, 1.0) - (1e-6 + 5.0 * (1e-3 - 1e-6) / 10.0)).abs() < 1e-18);
        // warmup_prefix=False: at the end of warmup the cosine is already at t = 10 of 100.
        let want = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1.0 + (std::f64::consts::PI * 0.1).cos());
        assert_eq!(s.value_at(10, 1.0), want);
        assert_eq!(s.value_at(100, 1.0), 1e-5);
        assert_eq!(s.value_at(1000, 1.0), 1e-5);
    }

    #[test]
    fn linear_and_step_shapes() {
        let linear = schedule(LrName::Linear);
        assert_eq!(linear.value_at(10, 1.0), 1e-3);
        assert!((linear.value_at(55, 1.0) - (1e-3 - 0.99e-3 * 0.5)).abs() < 1e-18);
        assert!(
            (linear.value_at(100, 1.0) - 1e-5).abs() < 1e-18,
            "1 % of the base, not min_lr"
        );
        let step = LrSchedule::new(
            ScheduleConfig {
                lr_name: LrName::Step,
                warmup_step: 10,
                total_step: 1000,
                ..ScheduleConfig::default()
            },
            1e-3,
        )
        .unwrap();
        assert_eq!(step.value_at(109, 1.0), 1e-3);
        assert!((step.value_at(110, 1.0) - 1e-4).abs() < 1e-18);
        assert!((step.value_at(310, 1.0) - 1e-6).abs() < 1e-20);
    }

    #[test]
    fn batch_scaling_scales_all_three_rates() {
        let s = schedule(LrName::Cosine).scaled_for_batch(1024);
        assert_eq!(s.base_lr(), 2e-3);
        assert_eq!(s.initial(1.0), 2e-6);
        assert_eq!(s.value_at(100, 1.0), 2e-5);
    }
}
