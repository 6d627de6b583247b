//! AdamW with explicit, checkpointable state; the arithmetic of `torch.optim.AdamW`'s
//! single-tensor path (amsgrad off), operation for operation.

use tch::{Kind, Tensor};

use super::flat::{state_buffer, FlatGroup};
use super::groups::{check_unique_names, ParamGroup};
use super::scratch::Scratch;
use super::state::{check_lr_count, StateReader};
use super::Optimizer;
use crate::error::Result;

/// AdamW's hyper-parameters besides learning rate and weight decay (torch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWHyper {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWHyper {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Moments and step count of one parameter.
#[derive(Debug)]
struct Moments {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: i64,
}

/// AdamW over parameter groups; state is allocated up front (zeros, step 0), which updates
/// exactly as torch's lazily created state does.
#[derive(Debug)]
pub struct AdamW {
    hyper: AdamWHyper,
    groups: Vec<ParamGroup>,
    moments: Vec<Vec<Moments>>,
    /// Per group, when built with flat buffers: the moments' flat storage.
    flat: Vec<Option<FlatMoments>>,
    scratch: Scratch,
}

/// A flat group and the flat buffers behind its parameters' moments.
#[derive(Debug)]
struct FlatMoments {
    group: FlatGroup,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

impl AdamW {
    /// Updates each parameter with its own in-place kernels.
    pub fn new(groups: Vec<ParamGroup>, hyper: AdamWHyper) -> Result<Self> {
        Self::build(groups, hyper, false)
    }

    /// Moves each group's parameters, gradients and moments into flat buffers (see
    /// [`super::flat`]); a step whose group has every gradient and one common step count is
    /// then one update over the whole buffer, else it falls back to per-tensor updates.
    /// Same results as [`AdamW::new`], bit for bit.
    pub fn with_flat_buffers(groups: Vec<ParamGroup>, hyper: AdamWHyper) -> Result<Self> {
        Self::build(groups, hyper, true)
    }

    fn build(mut groups: Vec<ParamGroup>, hyper: AdamWHyper, flat: bool) -> Result<Self> {
        check_unique_names(&groups)?;
        let mut all_moments = Vec::with_capacity(groups.len());
        let mut all_flat = Vec::with_capacity(groups.len());
        for group in &mut groups {
            let flat_group = if flat {
                FlatGroup::relocate(&mut group.params)?
            } else {
                None
            };
            let (exp_avg, exp_avg_views) = state_buffer(flat_group.as_ref(), &group.params)?;
            let (exp_avg_sq, exp_avg_sq_views) = state_buffer(flat_group.as_ref(), &group.params)?;
            all_moments.push(
                exp_avg_views
                    .into_iter()
                    .zip(exp_avg_sq_views)
                    .map(|(exp_avg, exp_avg_sq)| Moments {
                        exp_avg,
                        exp_avg_sq,
                        step: 0,
                    })
                    .collect(),
            );
            all_flat.push(match (flat_group, exp_avg, exp_avg_sq) {
                (Some(group), Some(exp_avg), Some(exp_avg_sq)) => Some(FlatMoments {
                    group,
                    exp_avg,
                    exp_avg_sq,
                }),
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
            moments: all_moments,
            flat: all_flat,
            scratch,
        })
    }

    pub fn hyper(&self) -> AdamWHyper {
        self.hyper
    }
}

impl Optimizer for AdamW {
    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn step(&mut self, lrs: &[f64]) -> Result<()> {
        check_lr_count(lrs, self.groups.len())?;
        let _guard = tch::no_grad_guard();
        let groups = self
            .groups
            .iter_mut()
            .zip(&mut self.moments)
            .zip(&mut self.flat);
        for (((group, moments), flat), &lr) in groups.zip(lrs) {
            if let Some(flat) = flat {
                let common_step = moments.iter().all(|m| m.step == moments[0].step);
                if common_step && flat.group.attach(&mut group.params)? {
                    let step = moments[0].step + 1;
                    moments.iter_mut().for_each(|m| m.step = step);
                    let (work, denom) = self.scratch.pair(&flat.group.params)?;
                    adamw_update(
                        &mut flat.group.params.shallow_clone(),
                        &flat.group.grads,
                        &mut flat.exp_avg,
                        &mut flat.exp_avg_sq,
                        step,
                        lr,
                        group.weight_decay,
                        self.hyper,
                        &work,
                        &denom,
                    )?;
                    continue;
                }
            }
            for ((_, param), state) in group.params.iter_mut().zip(moments.iter_mut()) {
                let grad = param.f_grad()?;
                if !grad.defined() {
                    continue; // torch skips parameters without a gradient
                }
                state.step += 1;
                let (work, denom) = self.scratch.pair(param)?;
                adamw_update(
                    param,
                    &grad,
                    &mut state.exp_avg,
                    &mut state.exp_avg_sq,
                    state.step,
                    lr,
                    group.weight_decay,
                    self.hyper,
                    &work,
                    &denom,
                )?;
            }
        }
        Ok(())
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (group, moments) in self.groups.iter().zip(&self.moments) {
            for ((name, _), m) in group.params.iter().zip(moments) {
                let key = format!("{}.{}", group.name, name);
                out.push((format!("{key}.exp_avg"), m.exp_avg.shallow_clone()));
                out.push((format!("{key}.exp_avg_sq"), m.exp_avg_sq.shallow_clone()));
                out.push((format!("{key}.step"), Tensor::from(m.step)));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state)?;
        // Validate everything before touching anything, so a failed load changes nothing.
        for (group, moments) in self.groups.iter().zip(&self.moments) {
            for ((name, _), m) in group.params.iter().zip(moments) {
                let key = format!("{}.{}", group.name, name);
                reader.check_like(&format!("{key}.exp_avg"), &m.exp_avg)?;
                reader.check_like(&format!("{key}.exp_avg_sq"), &m.exp_avg_sq)?;
                reader.check_scalar(&format!("{key}.step"), Kind::Int64)?;
            }
        }
        reader.check_no_extra()?;
        for (group, moments) in self.groups.iter().zip(&mut self.moments) {
            for ((name, _), m) in group.params.iter().zip(moments.iter_mut()) {
                let key = format!("{}.{}", group.name, name);
                reader.copy_into(&format!("{key}.exp_avg"), &mut m.exp_avg)?;
                reader.copy_into(&format!("{key}.exp_avg_sq"), &mut m.exp_avg_sq)?;
                m.step = reader.int64(&format!("{key}.step"))?;
            }
        }
        Ok(())
    }
}

/// One AdamW update of `param`, as torch's `_single_tensor_adam` with decoupled decay:
/// `p *= 1 - lr·wd; m.lerp_(g, 1 - β1); v = β2·v + (1 - β2)·g²;
///  p += -lr/(1 - β1^t) · m / (√v / √(1 - β2^t) + ε)`.
///
/// `step` is the count after this update. `work` and `denom` are scratch tensors shaped like
/// `param`. tch's `addcmul_`/`addcdiv_` have no `value` argument, so the scalar is folded
/// into `work` first; the kernels compute `self + value·t1·t2` as `self + (value·t1)·t2`, so
/// the result is the same bit for bit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adamw_update(
    param: &mut Tensor,
    grad: &Tensor,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    step: i64,
    lr: f64,
    weight_decay: f64,
    hyper: AdamWHyper,
    work: &Tensor,
    denom: &Tensor,
) -> Result<()> {
    if weight_decay != 0.0 {
        let _ = param.f_mul_scalar_(1.0 - lr * weight_decay)?;
    }
    let _ = exp_avg.f_lerp_(grad, 1.0 - hyper.beta1)?;
    let _ = exp_avg_sq.f_mul_scalar_(hyper.beta2)?;
    let _ = grad.f_mul_scalar_out(work, 1.0 - hyper.beta2)?;
    let _ = exp_avg_sq.f_addcmul_(work, grad)?;

    let step = step as f64;
    let bias_correction1 = 1.0 - hyper.beta1.powf(step);
    let bias_correction2 = 1.0 - hyper.beta2.powf(step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);

    let _ = exp_avg_sq.f_sqrt_out(denom)?;
    let mut denom = denom.shallow_clone();
    let _ = denom.f_div_scalar_(bias_correction2_sqrt)?;
    let _ = denom.f_add_scalar_(hyper.eps)?;
    let _ = exp_avg.f_mul_scalar_out(work, -step_size)?;
    let _ = param.f_addcdiv_(work, &denom)?;
    Ok(())
}

/// The same update for rows that each have their own step count (Partial FC's sampled
/// centres): param, grad, exp_avg, exp_avg_sq: [S, D]; steps: [S] int64, counts after this
/// update. Bias corrections are per-row tensors here, so results can differ from the scalar
/// path in the last bit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adamw_update_rows(
    param: &mut Tensor,
    grad: &Tensor,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    steps: &Tensor,
    lr: f64,
    weight_decay: f64,
    hyper: AdamWHyper,
) -> Result<()> {
    if weight_decay != 0.0 {
        let _ = param.f_mul_scalar_(1.0 - lr * weight_decay)?;
    }
    let _ = exp_avg.f_lerp_(grad, 1.0 - hyper.beta1)?;
    let _ = exp_avg_sq.f_mul_scalar_(hyper.beta2)?;
    let _ = exp_avg_sq.f_addcmul_(&grad.f_mul_scalar(1.0 - hyper.beta2)?, grad)?;

    let steps = steps.f_to_kind(Kind::Double)?;
    let bias_correction1 = Tensor::f_pow_scalar(hyper.beta1, &steps)?
        .f_neg()?
        .f_add_scalar(1.0)?;
    let bias_correction2 = Tensor::f_pow_scalar(hyper.beta2, &steps)?
        .f_neg()?
        .f_add_scalar(1.0)?;
    let neg_step_size = bias_correction1.f_reciprocal()?.f_mul_scalar(-lr)?;
    let bias_correction2_sqrt = bias_correction2.f_sqrt()?;
    let column = |t: Tensor| -> Result<Tensor> { Ok(t.f_to_kind(param.kind())?.f_unsqueeze(1)?) };

    let mut denom = exp_avg_sq.f_sqrt()?;
    let _ = denom.f_div_(&column(bias_correction2_sqrt)?)?;
    let _ = denom.f_add_scalar_(hyper.eps)?;
    let scaled = exp_avg.f_mul(&column(neg_step_size)?)?;
    let _ = param.f_addcdiv_(&scaled, &denom)?;
    Ok(())
}
