//! Partial FC (An et al., arXiv 2203.15565): margin softmax over class centres that are
//! sharded across ranks and sampled each step, as insightface's `PartialFC_V2` /
//! SwinFace's `PartialFCAdamW`.
//!
//! Each step, every rank all-gathers the embeddings and labels, keeps the positive centres of
//! its shard plus random negatives up to `int(sample_rate · num_local)`, and computes its part
//! of the logits; the softmax is normalised by the all-reduced max and sum. tch has no custom
//! autograd functions, so the forward pass runs the local backward itself (as the older
//! `PartialFC.forward_backward` did), all-reduces the gradient of the gathered embeddings,
//! and returns a surrogate loss whose value is the official loss and whose gradients are the
//! official ones: `∂/∂embeddings` = world_size × the gradient of the global mean loss (the
//! factor the official all-gather applies, undone by data-parallel gradient averaging), and
//! `∂/∂centres` = the gradient of the global mean loss.
//!
//! Differences from the official code (see also crates/loss/README.md):
//! - The sampled centres' optimizer state lives in a table beside the centres (moments and a
//!   per-centre step count) and is written back right after each update, so sampling never
//!   loses it. The official `PartialFCAdamW` sets one global step for every sampled centre
//!   (a centre sampled for the first time gets bias corrections of a late step), and swaps
//!   its parameter into `param_groups[-1]`, which in SwinFace's `train.py` is the output-head
//!   group, so the Gender head's weight silently drops out of training. Here Partial FC is
//!   its own group and every head stays in the optimizer.
//! - Negatives are drawn from a counter-based generator (seed, rank, draw, centre) instead of
//!   `torch.rand`, so that sampling resumes exactly from a checkpoint.
//!
//! With loss scaling, pass [`PartialFc::grad`] to the scaler's `unscale` with the model's
//! gradients, then call [`PartialFc::step`] (or [`PartialFc::skip_step`] on overflow).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::amp::Autocast;
use crate::collectives::Collectives;
use crate::error::{LossError, Result};
use crate::margin::{CombinedMarginLoss, MARGIN_SCALE};
use crate::optim::{adamw_update, adamw_update_rows, sgd_update, StateReader, UpdateRule};

/// Partial FC settings with the official names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartialFcConfig {
    pub embedding_size: i64,
    pub num_classes: i64,
    /// Fraction of each shard's centres used per step; >= 1 uses all of them (no sampling).
    pub sample_rate: f64,
    /// (m1, m2, m3): ArcFace (1, m, 0) or CosFace (·, ·, m).
    pub margin_list: (f64, f64, f64),
    pub interclass_filtering_threshold: f64,
}

impl Default for PartialFcConfig {
    fn default() -> Self {
        Self {
            embedding_size: 512,
            num_classes: 85742,
            sample_rate: 0.3,
            margin_list: (1.0, 0.0, 0.4),
            interclass_filtering_threshold: 0.0,
        }
    }
}

/// How the official code splits `num_classes` over ranks: the first `num_classes % world`
/// ranks hold one extra class. Returns (class_start, num_local).
pub fn shard_of(num_classes: i64, world_size: i64, rank: i64) -> (i64, i64) {
    let (base, extra) = (num_classes / world_size, num_classes % world_size);
    let num_local = base + i64::from(rank < extra);
    let class_start = base * rank + rank.min(extra);
    (class_start, num_local)
}

/// Rows per draw of the initial centres: the whole table at once up to 2^26 values.
const DRAW_VALUES: i64 = 1 << 26;

/// This shard's initial centres ~ N(0, 0.01²): every rank draws the whole table from the
/// same generator state, in chunks of fixed size, and keeps its rows, so that the centres
/// do not depend on the world size (two ranks start from the rows one rank has) and a
/// rank never holds more than one chunk besides its shard.
/// -> [num_local, dim]
fn draw_centres(
    num_classes: i64,
    dim: i64,
    class_start: i64,
    num_local: i64,
    options: (Kind, Device),
) -> Result<Tensor> {
    let chunk_rows = (DRAW_VALUES / dim.max(1)).max(1);
    draw_centres_in_chunks(
        num_classes,
        dim,
        class_start,
        num_local,
        options,
        chunk_rows,
    )
}

fn draw_centres_in_chunks(
    num_classes: i64,
    dim: i64,
    class_start: i64,
    num_local: i64,
    options: (Kind, Device),
    chunk_rows: i64,
) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    if num_classes <= chunk_rows && num_local == num_classes {
        let mut all = Tensor::f_empty([num_classes, dim], options)?;
        let _ = all.f_normal_(0.0, 0.01)?;
        return Ok(all);
    }
    let weight = Tensor::f_empty([num_local, dim], options)?;
    let end = class_start + num_local;
    let mut first = 0;
    while first < num_classes {
        let rows = chunk_rows.min(num_classes - first);
        let mut chunk = Tensor::f_empty([rows, dim], options)?;
        let _ = chunk.f_normal_(0.0, 0.01)?;
        let (lo, hi) = (first.max(class_start), (first + rows).min(end));
        if lo < hi {
            weight
                .f_narrow(0, lo - class_start, hi - lo)?
                .f_copy_(&chunk.f_narrow(0, lo - first, hi - lo)?)?;
        }
        first += rows;
    }
    Ok(weight)
}

/// Optimizer state of every local centre; rows are gathered and written back with the centres.
#[derive(Debug)]
enum CentreState {
    /// exp_avg, exp_avg_sq: [num_local, D]; steps: [num_local] int64 (updates per centre).
    AdamW {
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
        steps: Tensor,
    },
    /// momentum_buffer: [num_local, D]; steps: [num_local] int64.
    Sgd {
        momentum_buffer: Tensor,
        steps: Tensor,
    },
}

/// The centres taking part in the current step.
#[derive(Debug)]
struct ActiveCentres {
    /// [S] sorted local indices; None when every centre is used (no sampling).
    index: Option<Tensor>,
    /// [S, D] leaf that receives the gradient (the full table itself without sampling).
    weight: Tensor,
}

pub struct PartialFc {
    margin: CombinedMarginLoss,
    collectives: Box<dyn Collectives>,
    rule: UpdateRule,
    weight_decay: f64,
    embedding_size: i64,
    class_start: i64,
    num_local: i64,
    num_sample: i64,
    sampling: bool,
    /// Mixed precision of the cosine logits (official `fp16` flag); `None`: fp32.
    autocast: Option<Autocast>,
    /// [num_local, D]; requires grad when every centre is used each step.
    weight: Tensor,
    state: CentreState,
    /// The common step count of all centres when they share one (then the update takes
    /// torch's scalar path, bit-identical to a dense AdamW).
    uniform_step: Option<i64>,
    active: Option<ActiveCentres>,
    batch_size: Option<i64>,
    sampler: CentreSampler,
}

impl PartialFc {
    /// Centres ~ N(0, 0.01²) of `kind` on `device`; `rule` and `weight_decay` drive the
    /// centre update (the same rule as the model's optimizer).
    pub fn new(
        config: &PartialFcConfig,
        rule: UpdateRule,
        weight_decay: f64,
        collectives: Box<dyn Collectives>,
        device: Device,
        kind: Kind,
    ) -> Result<Self> {
        let world_size = collectives.world_size() as i64;
        let rank = collectives.rank() as i64;
        if config.num_classes < world_size || world_size < 1 {
            return Err(LossError::InvalidConfig {
                field: "num_classes",
                reason: format!(
                    "{} classes cannot be split over {world_size} ranks",
                    config.num_classes
                ),
            });
        }
        if config.embedding_size < 1 {
            return Err(LossError::InvalidConfig {
                field: "embedding_size",
                reason: "must be >= 1".into(),
            });
        }
        if config.sample_rate.is_nan() || config.sample_rate <= 0.0 {
            return Err(LossError::InvalidConfig {
                field: "sample_rate",
                reason: "must be > 0".into(),
            });
        }
        let (m1, m2, m3) = config.margin_list;
        let margin = CombinedMarginLoss::new(
            MARGIN_SCALE,
            m1,
            m2,
            m3,
            config.interclass_filtering_threshold,
        )?;
        let (class_start, num_local) = shard_of(config.num_classes, world_size, rank);
        let sampling = config.sample_rate < 1.0;
        // Python's int(): truncation.
        let num_sample = (config.sample_rate * num_local as f64) as i64;
        if sampling && num_sample < 1 {
            return Err(LossError::InvalidConfig {
                field: "sample_rate",
                reason: format!("samples no centre from a shard of {num_local} classes"),
            });
        }

        let shape = [num_local, config.embedding_size];
        let mut weight = draw_centres(
            config.num_classes,
            config.embedding_size,
            class_start,
            num_local,
            (kind, device),
        )?;
        if !sampling {
            weight = weight.f_set_requires_grad(true)?;
        }
        let steps = Tensor::f_zeros([num_local], (Kind::Int64, device))?;
        let state = match rule {
            UpdateRule::AdamW(_) => CentreState::AdamW {
                exp_avg: Tensor::f_zeros(shape, (kind, device))?,
                exp_avg_sq: Tensor::f_zeros(shape, (kind, device))?,
                steps,
            },
            UpdateRule::Sgd(_) => CentreState::Sgd {
                momentum_buffer: Tensor::f_zeros(shape, (kind, device))?,
                steps,
            },
        };
        Ok(Self {
            margin,
            collectives,
            rule,
            weight_decay,
            embedding_size: config.embedding_size,
            class_start,
            num_local,
            num_sample,
            sampling,
            autocast: None,
            weight,
            state,
            uniform_step: Some(0),
            sampler: CentreSampler::new(0, rank as u64),
            active: None,
            batch_size: None,
        })
    }

    /// Seeds the negative-centre sampling (each rank derives its own stream from it).
    pub fn with_sampling_seed(mut self, seed: u64) -> Self {
        self.sampler = CentreSampler::new(seed, self.sampler.rank);
        self
    }

    /// Computes the cosine logits under `autocast` (the official
    /// `with torch.cuda.amp.autocast(self.fp16)`), then in the centres' precision again;
    /// `None`: no autocast region.
    pub fn with_autocast(mut self, autocast: Option<Autocast>) -> Self {
        self.autocast = autocast;
        self
    }

    /// This rank's centres: [num_local, D].
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// (first class of this rank's shard, number of classes in it).
    pub fn shard(&self) -> (i64, i64) {
        (self.class_start, self.num_local)
    }

    pub fn num_sample(&self) -> i64 {
        self.num_sample
    }

    /// Replaces this rank's centres (e.g. with a slice of a known matrix).
    pub fn load_weight(&mut self, weight: &Tensor) -> Result<()> {
        if weight.size() != self.weight.size() {
            return Err(LossError::Shape {
                what: "Partial FC weight",
                expected: self.weight.size(),
                found: weight.size(),
            });
        }
        tch::no_grad(|| self.weight.f_copy_(weight))?;
        Ok(())
    }

    /// The centres of the last forward pass: (sorted local indices or None for all, [S, D]).
    pub fn active_centres(&self) -> Option<(Option<&Tensor>, &Tensor)> {
        self.active.as_ref().map(|a| (a.index.as_ref(), &a.weight))
    }

    /// The gradient of the active centres, if the backward pass produced one (for loss
    /// unscaling and overflow checks).
    pub fn grad(&self) -> Result<Option<Tensor>> {
        let Some(active) = &self.active else {
            return Ok(None);
        };
        let grad = active.weight.f_grad()?;
        Ok(grad.defined().then_some(grad))
    }

    /// local_embeddings: [B, D] (differentiable), local_labels: [B] int64 global class ids
    /// -> scalar loss, the same value on every rank: −mean over the gathered batch of
    /// log(max(p_target, 1e-30)). Its gradient flows into `local_embeddings` and into the
    /// active centres (see the module doc for the scaling). Call [`PartialFc::step`] (or
    /// [`PartialFc::skip_step`]) before the next forward: with sampling, each forward draws
    /// a new set of centres and the previous set's gradient is dropped.
    pub fn forward(&mut self, local_embeddings: &Tensor, local_labels: &Tensor) -> Result<Tensor> {
        let (batch, dim) = local_embeddings.size2().map_err(|_| LossError::Shape {
            what: "Partial FC embeddings",
            expected: vec![-1, self.embedding_size],
            found: local_embeddings.size(),
        })?;
        if dim != self.embedding_size {
            return Err(LossError::Shape {
                what: "Partial FC embeddings",
                expected: vec![batch, self.embedding_size],
                found: local_embeddings.size(),
            });
        }
        let labels = local_labels.f_reshape([-1])?;
        if labels.size() != [batch] {
            return Err(LossError::Shape {
                what: "Partial FC labels",
                expected: vec![batch],
                found: local_labels.size(),
            });
        }
        if labels.kind() != Kind::Int64 {
            return Err(LossError::Kind {
                what: "Partial FC labels",
                expected: Kind::Int64,
                found: labels.kind(),
            });
        }
        match self.batch_size {
            Some(expected) if expected != batch => {
                return Err(LossError::BatchSizeChanged {
                    expected,
                    found: batch,
                })
            }
            _ => self.batch_size = Some(batch),
        }

        let device = self.weight.device();
        let embeddings = local_embeddings
            .f_detach()?
            .f_to_kind(self.weight.kind())?
            .f_to_device(device)?;
        let gathered = Tensor::f_cat(&self.collectives.all_gather(&embeddings)?, 0)?;
        let all_labels = Tensor::f_cat(
            &self.collectives.all_gather(&labels.f_to_device(device)?)?,
            0,
        )?;

        let (active, shard_labels) = self.select_centres(&all_labels)?;
        let (loss, embedding_grad, centre_grad) =
            self.local_forward_backward(&gathered, &active, &shard_labels)?;

        let world_size = self.collectives.world_size() as i64;
        let rank = self.collectives.rank() as i64;
        let mut embedding_grad = embedding_grad;
        self.collectives.all_reduce_sum(&mut embedding_grad)?;
        // The official all-gather's backward: this rank's rows, times the world size.
        let local_grad = embedding_grad
            .f_narrow(0, rank * batch, batch)?
            .f_mul_scalar(world_size as f64)?
            .f_to_device(local_embeddings.device())?;

        // d/dx Σ x·g = g: a surrogate that carries the gradients, with the loss as value
        // (float32 at least, so that fp16 embeddings cannot overflow it).
        let kind = if self.weight.kind() == Kind::Double {
            Kind::Double
        } else {
            Kind::Float
        };
        let out_device = local_embeddings.device();
        let surrogate = local_embeddings
            .f_to_kind(kind)?
            .f_mul(&local_grad.f_to_kind(kind)?)?
            .f_sum(kind)?
            .f_add(
                &active
                    .weight
                    .f_to_kind(kind)?
                    .f_mul(&centre_grad.f_to_kind(kind)?)?
                    .f_sum(kind)?
                    .f_to_device(out_device)?,
            )?;
        let loss = surrogate
            .f_sub(&surrogate.f_detach()?)?
            .f_add(&loss.f_to_kind(kind)?.f_to_device(out_device)?)?;
        self.active = Some(active);
        Ok(loss)
    }

    /// Keeps this shard's labels (others -1) and, when sampling, picks the positive centres
    /// plus random negatives and remaps the labels into the sample.
    /// all_labels: [N] -> (active centres, [N] labels into them or -1)
    fn select_centres(&mut self, all_labels: &Tensor) -> Result<(ActiveCentres, Tensor)> {
        let in_shard = all_labels
            .f_ge(self.class_start)?
            .f_logical_and(&all_labels.f_lt(self.class_start + self.num_local)?)?;
        let outside = all_labels.f_full_like(-1)?;
        let local = all_labels
            .f_sub_scalar(self.class_start)?
            .f_where_self(&in_shard, &outside)?;
        if !self.sampling {
            let active = ActiveCentres {
                index: None,
                weight: self.weight.shallow_clone(),
            };
            return Ok((active, local));
        }
        let (positive, _) = local
            .f_masked_select(&in_shard)?
            .f_internal_unique(true, false)?;
        let index = if self.num_sample >= positive.numel() as i64 {
            let mut priority = self
                .sampler
                .next_priorities(self.num_local)?
                .f_to_device(self.weight.device())?;
            // Positives first: priorities < 1 < 2.
            let _ = priority.f_index_fill_(0, &positive, 2.0)?;
            let (_, top) = priority.f_topk(self.num_sample, 0, true, true)?;
            top.f_sort(0, false)?.0
        } else {
            positive
        };
        let remapped = local
            .f_clamp_min(0)?
            .f_searchsorted::<Tensor>(&index, false, false, "left", None)?;
        let labels = remapped.f_where_self(&in_shard, &outside)?;
        let weight = self
            .weight
            .f_index_select(0, &index)?
            .f_set_requires_grad(true)?;
        Ok((
            ActiveCentres {
                index: Some(index),
                weight,
            },
            labels,
        ))
    }

    /// The local part of the official forward and backward on detached copies:
    /// gathered: [N, D], labels: [N] into the active centres -> (loss: 0-d, ∂loss/∂gathered:
    /// [N, D] from this shard's logits only, ∂loss/∂centres: [S, D]).
    fn local_forward_backward(
        &self,
        gathered: &Tensor,
        active: &ActiveCentres,
        labels: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let embeddings = gathered.f_detach()?.f_set_requires_grad(true)?;
        let centres = active.weight.f_detach()?.f_set_requires_grad(true)?;
        let cosines = {
            let _region = self.autocast.map(|a| a.f_enter(true)).transpose()?;
            normalize_rows(&embeddings)?.f_linear::<Tensor>(&normalize_rows(&centres)?, None)?
        };
        // Official `logits.float()` (the centres' kind here) before the clamp.
        let cosines = cosines.f_to_kind(self.weight.kind())?.f_clamp(-1.0, 1.0)?;
        let logits = self.margin.forward(&cosines, labels)?;
        let (loss, logit_grad) =
            tch::no_grad(|| distributed_softmax_ce(&logits, labels, self.collectives.as_ref()))?;
        let grads = Tensor::f_run_backward(
            &[logits.f_mul(&logit_grad)?.f_sum(logits.kind())?],
            &[&embeddings, &centres],
            false,
            false,
        )?;
        let mut grads = grads.into_iter();
        match (grads.next(), grads.next()) {
            (Some(embedding_grad), Some(centre_grad)) => Ok((loss, embedding_grad, centre_grad)),
            _ => Err(LossError::InvalidConfig {
                field: "autograd",
                reason: "run_backward returned fewer gradients than inputs".into(),
            }),
        }
    }

    /// Updates the active centres with their gradient and writes centres and optimizer
    /// state back into the tables. A step without a gradient changes nothing.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        let active = self.active.take().ok_or(LossError::NoActiveCentres)?;
        let grad = active.weight.f_grad()?;
        if !grad.defined() {
            return Ok(());
        }
        let grad = grad.f_detach()?;
        let _guard = tch::no_grad_guard();
        match &active.index {
            None => self.step_all(&grad, lr)?,
            Some(index) => self.step_rows(index, &active.weight, &grad, lr)?,
        }
        self.weight.zero_grad();
        Ok(())
    }

    /// Drops the current step's gradient without updating (the loss scaler found inf/NaN).
    pub fn skip_step(&mut self) {
        self.active = None;
        self.weight.zero_grad();
    }

    /// Every centre is active: update the tables in place.
    fn step_all(&mut self, grad: &Tensor, lr: f64) -> Result<()> {
        let mut weight = self.weight.f_detach()?;
        let work = weight.f_empty_like()?;
        let spare = weight.f_empty_like()?;
        match (&mut self.state, self.rule) {
            (
                CentreState::AdamW {
                    exp_avg,
                    exp_avg_sq,
                    steps,
                },
                UpdateRule::AdamW(hyper),
            ) => {
                let _ = steps.f_add_scalar_(1)?;
                match self.uniform_step.as_mut() {
                    Some(step) => {
                        *step += 1;
                        adamw_update(
                            &mut weight,
                            grad,
                            exp_avg,
                            exp_avg_sq,
                            *step,
                            lr,
                            self.weight_decay,
                            hyper,
                            &work,
                            &spare,
                        )?
                    }
                    None => adamw_update_rows(
                        &mut weight,
                        grad,
                        exp_avg,
                        exp_avg_sq,
                        steps,
                        lr,
                        self.weight_decay,
                        hyper,
                    )?,
                }
            }
            (
                CentreState::Sgd {
                    momentum_buffer,
                    steps,
                },
                UpdateRule::Sgd(hyper),
            ) => {
                let _ = steps.f_add_scalar_(1)?;
                if let Some(step) = self.uniform_step.as_mut() {
                    *step += 1;
                }
                // The official table starts at zero and is always blended (never copied).
                sgd_update(
                    &mut weight,
                    grad,
                    momentum_buffer,
                    false,
                    lr,
                    self.weight_decay,
                    hyper,
                    &work,
                )?;
            }
            _ => return Err(rule_mismatch()),
        }
        Ok(())
    }

    /// Sampled centres: gather their rows, update, write rows back.
    fn step_rows(
        &mut self,
        index: &Tensor,
        active_weight: &Tensor,
        grad: &Tensor,
        lr: f64,
    ) -> Result<()> {
        let mut rows = active_weight.f_detach()?;
        match (&mut self.state, self.rule) {
            (
                CentreState::AdamW {
                    exp_avg,
                    exp_avg_sq,
                    steps,
                },
                UpdateRule::AdamW(hyper),
            ) => {
                let mut m = exp_avg.f_index_select(0, index)?;
                let mut v = exp_avg_sq.f_index_select(0, index)?;
                let row_steps = steps.f_index_select(0, index)?.f_add_scalar(1)?;
                adamw_update_rows(
                    &mut rows,
                    grad,
                    &mut m,
                    &mut v,
                    &row_steps,
                    lr,
                    self.weight_decay,
                    hyper,
                )?;
                let _ = exp_avg.f_index_copy_(0, index, &m)?;
                let _ = exp_avg_sq.f_index_copy_(0, index, &v)?;
                let _ = steps.f_index_copy_(0, index, &row_steps)?;
            }
            (
                CentreState::Sgd {
                    momentum_buffer,
                    steps,
                },
                UpdateRule::Sgd(hyper),
            ) => {
                let mut buffer = momentum_buffer.f_index_select(0, index)?;
                let work = rows.f_empty_like()?;
                sgd_update(
                    &mut rows,
                    grad,
                    &mut buffer,
                    false,
                    lr,
                    self.weight_decay,
                    hyper,
                    &work,
                )?;
                let _ = momentum_buffer.f_index_copy_(0, index, &buffer)?;
                let row_steps = steps.f_index_select(0, index)?.f_add_scalar(1)?;
                let _ = steps.f_index_copy_(0, index, &row_steps)?;
            }
            _ => return Err(rule_mismatch()),
        }
        self.uniform_step = None;
        let _ = self.weight.f_index_copy_(0, index, &rows)?;
        Ok(())
    }

    /// `partial_fc.weight`, the sampler position and the optimizer table (`exp_avg`, `exp_avg_sq` or
    /// `momentum_buffer`, and `step` per centre). Shares storage: save before the next step.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "partial_fc.weight".to_string(),
            self.weight
                .f_detach()
                .unwrap_or_else(|_| self.weight.shallow_clone()),
        )];
        out.push(("partial_fc.sampler".into(), self.sampler.state()));
        match &self.state {
            CentreState::AdamW {
                exp_avg,
                exp_avg_sq,
                steps,
            } => {
                out.push(("partial_fc.exp_avg".into(), exp_avg.shallow_clone()));
                out.push(("partial_fc.exp_avg_sq".into(), exp_avg_sq.shallow_clone()));
                out.push(("partial_fc.step".into(), steps.shallow_clone()));
            }
            CentreState::Sgd {
                momentum_buffer,
                steps,
            } => {
                out.push((
                    "partial_fc.momentum_buffer".into(),
                    momentum_buffer.shallow_clone(),
                ));
                out.push(("partial_fc.step".into(), steps.shallow_clone()));
            }
        }
        out
    }

    /// Restores `state_tensors` output; nothing changes when an entry does not match.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state)?;
        reader.check_like("partial_fc.weight", &self.weight)?;
        let mut sampler_state = self.sampler.state();
        reader.check_like("partial_fc.sampler", &sampler_state)?;
        let tables: Vec<(&str, &mut Tensor)> = match &mut self.state {
            CentreState::AdamW {
                exp_avg,
                exp_avg_sq,
                steps,
            } => vec![
                ("partial_fc.exp_avg", exp_avg),
                ("partial_fc.exp_avg_sq", exp_avg_sq),
                ("partial_fc.step", steps),
            ],
            CentreState::Sgd {
                momentum_buffer,
                steps,
            } => {
                vec![
                    ("partial_fc.momentum_buffer", momentum_buffer),
                    ("partial_fc.step", steps),
                ]
            }
        };
        for (name, table) in &tables {
            reader.check_like(name, table)?;
        }
        reader.check_no_extra()?;
        for (name, table) in tables {
            reader.copy_into(name, table)?;
        }
        reader.copy_into("partial_fc.weight", &mut self.weight)?;
        reader.copy_into("partial_fc.sampler", &mut sampler_state)?;
        self.sampler = CentreSampler::from_state(&sampler_state, self.sampler.rank)?;
        self.active = None;
        self.uniform_step = if self.sampling {
            None
        } else {
            self.common_step()?
        };
        Ok(())
    }

    fn common_step(&self) -> Result<Option<i64>> {
        let steps = match &self.state {
            CentreState::AdamW { steps, .. } | CentreState::Sgd { steps, .. } => steps,
        };
        let (min, max) = (
            steps.f_min()?.f_int64_value(&[])?,
            steps.f_max()?.f_int64_value(&[])?,
        );
        Ok((min == max).then_some(min))
    }
}

/// Counter-based random priorities for choosing negative centres: a pure function of
/// (seed, rank, draw, centre), so that sampling resumes exactly from a checkpoint and does not
/// depend on (or disturb) torch's global generator. The official code uses `torch.rand`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CentreSampler {
    seed: u64,
    rank: u64,
    draws: u64,
}

impl CentreSampler {
    fn new(seed: u64, rank: u64) -> Self {
        Self {
            seed,
            rank,
            draws: 0,
        }
    }

    /// [n] float32 uniform in [0, 1), a fresh set per call.
    fn next_priorities(&mut self, n: i64) -> Result<Tensor> {
        let stream = splitmix64(splitmix64(self.seed ^ splitmix64(self.rank)) ^ self.draws);
        self.draws += 1;
        let values: Vec<f32> = (0..n as u64)
            .map(|i| {
                let bits =
                    splitmix64(stream.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                // 24 random bits: exactly representable, strictly below 1.
                (bits >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect();
        Ok(Tensor::f_from_slice(&values)?)
    }

    /// [seed, draws] as int64 (bit patterns), on the CPU.
    fn state(&self) -> Tensor {
        Tensor::from_slice(&[self.seed as i64, self.draws as i64])
    }

    fn from_state(state: &Tensor, rank: u64) -> Result<Self> {
        Ok(Self {
            seed: state.f_int64_value(&[0])? as u64,
            rank,
            draws: state.f_int64_value(&[1])? as u64,
        })
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rule_mismatch() -> LossError {
    LossError::InvalidConfig {
        field: "optimizer",
        reason: "Partial FC state does not match its update rule".into(),
    }
}

/// x: [N, D] -> x / max(‖x‖₂, 1e-12) per row (`F.normalize`).
fn normalize_rows(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .f_norm_scalaropt_dim(2.0, [1i64].as_slice(), true)?
        .f_clamp_min(1e-12)?;
    Ok(x.f_div(&norm.f_expand_as(x)?)?)
}

/// Softmax cross-entropy over logits split across ranks by class.
/// logits: [N, S_local], labels: [N] into the local classes or -1
/// -> (loss: 0-d = −mean log(max(p_target, 1e-30)), ∂loss/∂logits: [N, S_local] = (p − onehot)/N)
fn distributed_softmax_ce(
    logits: &Tensor,
    labels: &Tensor,
    collectives: &dyn Collectives,
) -> Result<(Tensor, Tensor)> {
    let rows = logits.size()[0];
    let mut max = logits.f_amax([1i64].as_slice(), true)?;
    collectives.all_reduce_max(&mut max)?;
    let mut probs = logits.f_sub(&max)?.f_exp()?;
    let mut sum = probs.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?;
    collectives.all_reduce_sum(&mut sum)?;
    let _ = probs.f_div_(&sum)?;

    let has_target = labels.f_ne(-1)?;
    let safe_labels = labels.f_clamp_min(0)?.f_unsqueeze(1)?;
    let zeros = probs.f_zeros_like()?;
    let mut target_prob = probs
        .f_gather(1, &safe_labels, false)?
        .f_squeeze_dim(1)?
        .f_where_self(&has_target, &zeros.f_select(1, 0)?)?;
    collectives.all_reduce_sum(&mut target_prob)?;
    let loss = target_prob
        .f_clamp_min(1e-30)?
        .f_log()?
        .f_mean(None::<Kind>)?
        .f_neg()?;

    let one_hot = zeros
        .f_scatter_value(1, &safe_labels, 1.0)?
        .f_mul(&has_target.f_unsqueeze(1)?.f_to_kind(probs.kind())?)?;
    let grad = probs.f_sub(&one_hot)?.f_div_scalar(rows as f64)?;
    Ok((loss, grad))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shards of `world` ranks, each drawn from the same seed, stacked in rank order.
    fn stacked_shards(world: i64, chunk_rows: i64) -> Tensor {
        let shards: Vec<Tensor> = (0..world)
            .map(|rank| {
                let (start, local) = shard_of(10, world, rank);
                tch::manual_seed(42);
                let opts = (Kind::Float, Device::Cpu);
                draw_centres_in_chunks(10, 3, start, local, opts, chunk_rows).unwrap()
            })
            .collect();
        Tensor::cat(&shards, 0)
    }

    #[test]
    fn initial_centres_do_not_depend_on_the_world_size() {
        tch::manual_seed(42);
        let mut reference = Tensor::empty([10, 3], (Kind::Float, Device::Cpu));
        let _ = reference.normal_(0.0, 0.01);
        for chunk_rows in [100, 4, 1] {
            let one = stacked_shards(1, chunk_rows);
            if chunk_rows >= 10 {
                // One chunk: the plain draw of the whole table.
                assert!(one.equal(&reference));
            }
            for world in [2, 3, 4] {
                assert!(
                    stacked_shards(world, chunk_rows).equal(&one),
                    "world {world}"
                );
            }
        }
    }

    #[test]
    fn shards_follow_the_official_split() {
        // 10 classes over 4 ranks: 3, 3, 2, 2.
        let shards: Vec<_> = (0..4).map(|r| shard_of(10, 4, r)).collect();
        assert_eq!(shards, vec![(0, 3), (3, 3), (6, 2), (8, 2)]);
        assert_eq!(shard_of(85742, 1, 0), (0, 85742));
    }
}
