//! Mixed precision: the mode switch, its autocast setting, and a loss scaler equivalent to
//! `torch.amp.GradScaler` (built on libtorch's own `_amp_*` kernels).
//!
//! As in the official code, autocast is never enabled globally: the model's Swin blocks and
//! Partial FC's logits open their own regions from the [`Autocast`] setting that
//! [`AmpMode::autocast`] gives (see crates/loss/README.md, "Mixed precision").

use serde::{Deserialize, Serialize};
use swinface_torch_ext::{cuda_capability, BF16_MIN_CAPABILITY};
pub use swinface_torch_ext::{Autocast, AutocastDevice};
use tch::{Device, Kind, Tensor};

use crate::collectives::Collectives;
use crate::error::{LossError, Result};
use crate::optim::StateReader;

/// Training precision. The official `fp16: True` is [`AmpMode::Fp16`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmpMode {
    #[default]
    Fp32,
    /// fp16 autocast with a [`GradScaler`].
    Fp16,
    /// bf16 autocast, no scaler (bf16 has fp32's exponent range); needs compute
    /// capability 8.0+.
    Bf16,
}

impl AmpMode {
    /// The official boolean `fp16` config.
    pub fn from_fp16(fp16: bool) -> Self {
        if fp16 {
            Self::Fp16
        } else {
            Self::Fp32
        }
    }

    /// The mode on `device`. Off the GPU fp16 is fp32, as the official `torch.cuda.amp`
    /// regions are there; bf16 stays bf16 on the CPU (CPU autocast, the same regions),
    /// which runs the Swin blocks' matmuls about 1.7x faster where the CPU has bf16
    /// instructions (AVX512-BF16, AMX).
    pub fn for_device(self, device: Device) -> Self {
        match (device, self) {
            (Device::Cuda(_), mode) | (Device::Cpu, mode @ Self::Bf16) => mode,
            _ => Self::Fp32,
        }
    }

    /// The autocast setting for the model and Partial FC when training on `device`: `None`
    /// in fp32; CUDA Half for fp16 on a GPU (fp32 elsewhere); for bf16, CPU BFloat16 on the
    /// CPU and CUDA BFloat16 on a GPU of compute capability 8.0+ (an error naming the GPU's
    /// capability otherwise).
    pub fn autocast(self, device: Device) -> Result<Option<Autocast>> {
        let (autocast_device, dtype) = match (device, self.for_device(device)) {
            (Device::Cuda(_), Self::Fp16) => (AutocastDevice::Cuda, Kind::Half),
            (Device::Cuda(index), Self::Bf16) => {
                require_bf16(index, cuda_capability(index)?)?;
                (AutocastDevice::Cuda, Kind::BFloat16)
            }
            (Device::Cpu, Self::Bf16) => (AutocastDevice::Cpu, Kind::BFloat16),
            _ => return Ok(None),
        };
        Ok(Some(Autocast::new(autocast_device, dtype)?))
    }

    /// Only fp16 needs loss scaling.
    pub fn uses_grad_scaler(self) -> bool {
        self == Self::Fp16
    }
}

/// Precision settings: the official `fp16` switch, an optional explicit mode, the scaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmpConfig {
    /// Official name; `true` selects [`AmpMode::Fp16`] unless `amp_mode` says otherwise.
    pub fp16: bool,
    pub amp_mode: Option<AmpMode>,
    pub grad_scaler: GradScalerConfig,
}

impl Default for AmpConfig {
    /// The official configuration trains with `fp16 = True`.
    fn default() -> Self {
        Self {
            fp16: true,
            amp_mode: None,
            grad_scaler: GradScalerConfig::default(),
        }
    }
}

impl AmpConfig {
    /// The mode to train in on `device` (on the CPU: bf16 if asked for, else fp32).
    pub fn mode(&self, device: Device) -> AmpMode {
        self.amp_mode
            .unwrap_or(AmpMode::from_fp16(self.fp16))
            .for_device(device)
    }

    /// The autocast setting for `device` (see [`AmpMode::autocast`]).
    pub fn autocast(&self, device: Device) -> Result<Option<Autocast>> {
        self.mode(device).autocast(device)
    }

    /// A scaler, enabled only in fp16 mode on `device` (bf16 and fp32 need none).
    pub fn grad_scaler(&self, device: Device) -> Result<GradScaler> {
        GradScaler::new(
            self.grad_scaler.clone(),
            self.mode(device).uses_grad_scaler(),
            device,
        )
    }
}

/// bf16 needs compute capability 8.0+ on GPU `index`.
fn require_bf16(index: usize, (major, minor): (i32, i32)) -> Result<()> {
    if (major, minor) >= BF16_MIN_CAPABILITY {
        Ok(())
    } else {
        Err(LossError::Bf16Unsupported {
            index,
            major,
            minor,
        })
    }
}

/// `torch.amp.GradScaler`'s settings; the official loop sets `growth_interval=100`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradScalerConfig {
    pub init_scale: f64,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        Self {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 100,
        }
    }
}

/// Dynamic loss scaling. Per step: `scale(loss).backward()`, `unscale(grads)` (once, before
/// clipping), `should_step()` (false when a gradient was inf/NaN: skip the optimizer step),
/// `update()` (×backoff on overflow; ×growth after `growth_interval` clean steps).
/// A disabled scaler passes everything through.
#[derive(Debug)]
pub struct GradScaler {
    config: GradScalerConfig,
    enabled: bool,
    /// [1] f32
    scale: Tensor,
    /// [1] i32: clean steps since the last change of scale.
    growth_tracker: Tensor,
    /// [1] f32: > 0 once an unscaled gradient was not finite.
    found_inf: Tensor,
    unscaled: bool,
}

impl GradScaler {
    pub fn new(config: GradScalerConfig, enabled: bool, device: Device) -> Result<Self> {
        Ok(Self {
            scale: Tensor::f_full([1], config.init_scale, (Kind::Float, device))?,
            growth_tracker: Tensor::f_zeros([1], (Kind::Int, device))?,
            found_inf: Tensor::f_zeros([1], (Kind::Float, device))?,
            config,
            enabled,
            unscaled: false,
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current scale (a device sync).
    pub fn scale_value(&self) -> Result<f64> {
        Ok(self.scale.f_double_value(&[0])?)
    }

    /// loss × scale.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        if !self.enabled {
            return Ok(loss.shallow_clone());
        }
        // Type promotion as in torch: an fp16 loss times the fp32 scale is fp32 (no overflow).
        Ok(loss.f_mul(&self.scale.f_to_device(loss.device())?)?)
    }

    /// Divides the gradients by the scale in place and records whether any is inf/NaN.
    /// Call once per step, over every gradient the optimizers will use (Partial FC's too).
    pub fn unscale(&mut self, grads: &[Tensor]) -> Result<()> {
        if !self.enabled || self.unscaled {
            return Ok(());
        }
        // As torch: the reciprocal in double, then rounded to float.
        let inv_scale = self
            .scale
            .f_to_kind(Kind::Double)?
            .f_reciprocal()?
            .f_to_kind(Kind::Float)?;
        for grad in grads {
            let mut found_here = self.found_inf.f_to_device(grad.device())?;
            let inv_here = inv_scale.f_to_device(grad.device())?;
            let mut grad = grad.shallow_clone();
            grad.f_internal_amp_non_finite_check_and_unscale(&mut found_here, &inv_here)?;
            if found_here.device() != self.found_inf.device() {
                let found_back = found_here.f_to_device(self.found_inf.device())?;
                let _ = self.found_inf.f_add_(&found_back)?;
            }
        }
        self.unscaled = true;
        Ok(())
    }

    /// Makes data-parallel ranks agree on an overflow (their Partial FC gradients differ):
    /// the flag becomes the maximum over `collectives`. Call after [`Self::unscale`].
    pub fn sync_found_inf(&mut self, collectives: &dyn Collectives) -> Result<()> {
        if !self.enabled || collectives.world_size() == 1 {
            return Ok(());
        }
        collectives.all_reduce_max(&mut self.found_inf)
    }

    /// False when the unscaled gradients held inf or NaN: the optimizer step must be skipped.
    pub fn should_step(&self) -> Result<bool> {
        if !self.enabled {
            return Ok(true);
        }
        Ok(self.found_inf.f_double_value(&[0])? == 0.0)
    }

    /// Adjusts the scale after a step (taken or skipped) and resets the overflow flag.
    pub fn update(&mut self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let _ = self.scale.f_internal_amp_update_scale_(
            &self.growth_tracker,
            &self.found_inf,
            self.config.growth_factor,
            self.config.backoff_factor,
            self.config.growth_interval,
        )?;
        let _ = self.found_inf.f_zero_()?;
        self.unscaled = false;
        Ok(())
    }

    /// `scale` ([1] f32) and `growth_tracker` ([1] i32).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("grad_scaler.scale".into(), self.scale.shallow_clone()),
            (
                "grad_scaler.growth_tracker".into(),
                self.growth_tracker.shallow_clone(),
            ),
        ]
    }

    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state)?;
        reader.check_like("grad_scaler.scale", &self.scale)?;
        reader.check_like("grad_scaler.growth_tracker", &self.growth_tracker)?;
        reader.check_no_extra()?;
        reader.copy_into("grad_scaler.scale", &mut self.scale)?;
        reader.copy_into("grad_scaler.growth_tracker", &mut self.growth_tracker)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_needs_compute_capability_8() {
        for capability in [(8, 0), (8, 6), (9, 0), (10, 0)] {
            assert!(require_bf16(0, capability).is_ok(), "{capability:?}");
        }
        for (major, minor) in [(7, 5), (7, 0), (6, 1)] {
            let error = require_bf16(1, (major, minor)).unwrap_err();
            assert!(matches!(
                error,
                LossError::Bf16Unsupported { index: 1, major: a, minor: b } if (a, b) == (major, minor)
            ));
            let message = error.to_string();
            assert!(
                message.contains(&format!("cuda:1 has {major}.{minor}")) && message.contains("8.0"),
                "{message}"
            );
        }
    }
}
