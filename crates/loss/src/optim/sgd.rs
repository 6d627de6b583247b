//! SGD with momentum and (coupled) weight decay, as `torch.optim.SGD`, with explicit state.

use tch::{Kind, Tensor};

use super::flat::{state_buffer, FlatGroup};
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
    /// Per group, when built with flat buffers: the momentum buffers' flat storage.
    flat: Vec<Option<FlatMomentum>>,
    scratch: Scratch,
}

#[derive(Debug)]
struct FlatMomentum {
    group: FlatGroup,
    buffer: Tensor,
}

impl Sgd {
    /// Updates each parameter with its own in-place kernels.
    pub fn new(groups: Vec<ParamGroup>, hyper: SgdHyper) -> Result<Self> {
        Self::build(groups, hyper, false)
    }

    /// Flat buffers, as [`super::AdamW::with_flat_buffers`]; same results bit for bit.
    pub fn with_flat_buffers(groups: Vec<ParamGroup>, hyper: SgdHyper) -> Result<Self> {
        Self::build(groups, hyper, true)
    }

    fn build(mut groups: Vec<ParamGroup>, hyper: SgdHyper, flat: bool) -> Result<Self> {
        check_unique_names(&groups)?;
        let mut all_momenta = Vec::with_capacity(groups.len());
        let mut all_flat = Vec::with_capacity(groups.len());
        for group in &mut groups {
            let flat_group = if flat {
                FlatGroup::relocate(&mut group.params)?
            } else {
                None
            };
            let (buffer, views) = state_buffer(flat_group.as_ref(), &group.params)?;
            all_momenta.push(
                views
                    .into_iter()
                    .map(|buffer| Momentum { buffer, steps: 0 })
                    .collect(),
            );
            all_flat.push(match (flat_group, buffer) {
                (Some(group), Some(buffer)) => Some(FlatMomentum { group, buffer }),
                _ => None,
            });
        }
        let flat_params = all_flat.iter().flatten().map(|f| &f.group.params);
        let scratch = Scratch::for_params(
            groups
                .iter()
                .flat_map(|g| g.params.iter().map(|(_, p)| p))
                .chain(flat_params),
        )?;
        Ok(Self {
            hyper,
            groups,
            momenta: all_momenta,
            flat: all_flat,
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
        let groups = self
            .groups
            .iter_mut()
            .zip(&mut self.momenta)
            .zip(&mut self.flat);
        for (((group, momenta), flat), &lr) in groups.zip(lrs) {
            if let Some(flat) = flat {
                let common_step = momenta.iter().all(|m| m.steps == momenta[0].steps);
                if common_step && flat.group.attach(&mut group.params)? {
                    let first_step = momenta[0].steps == 0;
                    momenta.iter_mut().for_each(|m| m.steps += 1);
                    let (work, _) = self.scratch.pair(&flat.group.params)?;
                    sgd_update(
                        &mut flat.group.params.shallow_clone(),
                        &flat.group.grads,
                        &mut flat.buffer,
                        first_step,
                        lr,
                        group.weight_decay,
                        self.hyper,
                        &work,
                    )?;
                    continue;
                }
            }
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
    direction.f_copy_(grad)?;
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
