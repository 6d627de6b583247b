//! SGD with momentum and (coupled) weight decay, as `torch.optim.SGD`, with explicit state.

use tch::{Kind, Tensor};

use super::groups::{check_unique_names, ParamGroup};
use super::scratch::Scratch;
use super::state::{check_lr_count, StateReader};
use super::Optimizer;
use crate::error::Result;

/// SGD's hyper-parameters besides learning rate and weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdHyper {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
}

impl Default for SgdHyper {
    /// The official SwinFace SGD: momentum 0.9.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }
    }
}

/// Momentum buffer of one parameter; `steps == 0` means torch would not have created it yet
/// (its first step copies the gradient instead of blending).
#[derive(Debug)]
struct Momentum {
    buffer: Tensor,
    steps: i64,
}

#[derive(Debug)]
pub struct Sgd {
    hyper: SgdHyper,
    groups: Vec<ParamGroup>,
    momenta: Vec<Vec<Momentum>>,
    scratch: Scratch,
}

impl Sgd {
    pub fn new(groups: Vec<ParamGroup>, hyper: SgdHyper) -> Result<Self> {
        check_unique_names(&groups)?;
        let momenta = groups
            .iter()
            .map(|g| {
                g.params
                    .iter()
                    .map(|(_, p)| {
                        Ok(Momentum {
                            buffer: p.f_zeros_like()?,
                            steps: 0,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let scratch =
            Scratch::for_params(groups.iter().flat_map(|g| g.params.iter().map(|(_, p)| p)))?;
        Ok(Self {
            hyper,
            groups,
            momenta,
            scratch,
        })
    }

    pub fn hyper(&self) -> SgdHyper {
        self.hyper
    }
}

impl Optimizer for Sgd {
    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn step(&mut self, lrs: &[f64]) -> Result<()> {
        check_lr_count(lrs, self.groups.len())?;
        let _guard = tch::no_grad_guard();
        for ((group, momenta), &lr) in self.groups.iter_mut().zip(&mut self.momenta).zip(lrs) {
            for ((_, param), state) in group.params.iter_mut().zip(momenta.iter_mut()) {
                let grad = param.f_grad()?;
                if !grad.defined() {
                    continue;
                }
                let (work, _) = self.scratch.pair(param)?;
                sgd_update(
                    param,
                    &grad,
                    &mut state.buffer,
                    state.steps == 0,
                    lr,
                    group.weight_decay,
                    self.hyper,
                    &work,
                )?;
                state.steps += 1;
            }
        }
        Ok(())
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (group, momenta) in self.groups.iter().zip(&self.momenta) {
            for ((name, _), m) in group.params.iter().zip(momenta) {
                let key = format!("{}.{}", group.name, name);
                out.push((format!("{key}.momentum_buffer"), m.buffer.shallow_clone()));
                out.push((format!("{key}.step"), Tensor::from(m.steps)));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state)?;
        for (group, momenta) in self.groups.iter().zip(&self.momenta) {
            for ((name, _), m) in group.params.iter().zip(momenta) {
                let key = format!("{}.{}", group.name, name);
                reader.check_like(&format!("{key}.momentum_buffer"), &m.buffer)?;
                reader.check_scalar(&format!("{key}.step"), Kind::Int64)?;
            }
        }
        reader.check_no_extra()?;
        for (group, momenta) in self.groups.iter().zip(&mut self.momenta) {
            for ((name, _), m) in group.params.iter().zip(momenta.iter_mut()) {
                let key = format!("{}.{}", group.name, name);
                reader.copy_into(&format!("{key}.momentum_buffer"), &mut m.buffer)?;
                m.steps = reader.int64(&format!("{key}.step"))?;
            }
        }
        Ok(())
    }
}

/// One SGD update as torch's `_single_tensor_sgd`: `d = g + wd·p`; `buf = d` on the first step,
/// else `buf = momentum·buf + (1 - dampening)·d`; `d = buf` (or `d + momentum·buf` for
/// Nesterov); `p -= lr·d`. `work` is a scratch tensor shaped like `param`.
///
/// torch's `add(other, alpha)` is a fused multiply-add in its kernels and tch exposes no
/// `alpha`; `addcmul_` with the scalar as a 0-d tensor compiles to the same fused operation,
/// so the result is the same bit for bit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_update(
    param: &mut Tensor,
    grad: &Tensor,
    buffer: &mut Tensor,
    first_step: bool,
    lr: f64,
    weight_decay: f64,
    hyper: SgdHyper,
    work: &Tensor,
) -> Result<()> {
    let scalar = |value: f64| Tensor::f_full([], value, (param.kind(), param.device()));
    let mut direction = work.shallow_clone();
    let _ = direction.f_copy_(grad)?;
    if weight_decay != 0.0 {
        let _ = direction.f_addcmul_(param, &scalar(weight_decay)?)?;
    }
    if hyper.momentum != 0.0 {
        if first_step {
            buffer.f_copy_(&direction)?;
        } else {
            let _ = buffer.f_mul_scalar_(hyper.momentum)?;
            if hyper.dampening == 0.0 {
                let _ = buffer.f_add_(&direction)?;
            } else {
                let _ = buffer.f_addcmul_(&direction, &scalar(1.0 - hyper.dampening)?)?;
            }
        }
        if hyper.nesterov {
            let _ = direction.f_addcmul_(buffer, &scalar(hyper.momentum)?)?;
        } else {
            direction.f_copy_(buffer)?;
        }
    }
    let _ = param.f_addcmul_(&direction, &scalar(-lr)?)?;
    Ok(())
}
