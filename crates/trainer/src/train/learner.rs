//! The model with everything that trains it, and one optimisation step as the official
//! `train.py` runs it: one batch from each stream concatenated (recognition, age-gender,
//! CelebA, expression) into one forward pass, so BatchNorm statistics span all of them; the
//! outputs sliced per stream into the task losses; their weighted sum; backward; the
//! backbone's gradient norm clipped at 5; optimizer step, then the schedule moves on.

use std::sync::Arc;

use anyhow::{Context, Result};
use swinface_distributed::DataParallel;
use swinface_loss::{
    clip_grad_norm, AgeLoss, ClassificationLoss, Collectives, GradScaler, LossWeights, LrSchedule,
    Optimizer, OptimizerConfig, ParamGroup, PartialFc, BACKBONE_MAX_NORM,
};
use swinface_model::{
    head_specs, SwinFace, AGE_HEAD_PREFIX, BACKBONE_GROUP, HEADS_GROUP, TASK_NAMES,
};
use swinface_torch_ext::SumReducer;
use tch::{nn, Device, Kind, Tensor};

use super::config::{Stage, TrainConfig};

/// Position of the Gender attribute among the 40 (SwinFace order), and of its head.
const GENDER_ATTRIBUTE: usize = 4;
/// Heads in [`TASK_NAMES`]: 0 age, 1..=40 attributes, 41 expression, 42 recognition.
const AGE_HEAD: usize = 0;
const EXPRESSION_HEAD: usize = 41;
const RECOGNITION_HEAD: usize = 42;

/// One step's inputs on the CPU: images of every stream, concatenated in stream order.
pub struct StepBatch {
    /// [R + A + C + E, 3, S, S]
    pub images: Tensor,
    /// [R] int64 class ids.
    pub identities: Tensor,
    /// The analysis streams' labels (multitask stage only).
    pub analysis: Option<AnalysisLabels>,
}

pub struct AnalysisLabels {
    /// [A, 1] float ages of the age-gender stream.
    pub ages: Tensor,
    /// [A] int64 genders of the age-gender stream.
    pub genders: Tensor,
    /// [C, 40] int64 attributes of the CelebA stream (SwinFace order).
    pub attributes: Tensor,
    /// [E] int64 expression classes.
    pub expressions: Tensor,
}

/// What one step did. Loss values are read back once per step (one device sync).
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The weighted total.
    pub total: f64,
    /// The recognition (Partial FC) loss.
    pub recognition: f64,
    /// The 42 analysis losses in task order (empty in the recognition stage).
    pub analysis: Vec<f64>,
    pub finite: bool,
    /// False when the update was skipped (non-finite loss, or the fp16 scaler found
    /// inf/NaN gradients).
    pub stepped: bool,
    /// The backbone's gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of each optimizer group, then Partial FC's.
    pub learning_rates: Vec<f64>,
}

pub struct Learner {
    pub vs: nn::VarStore,
    pub model: SwinFace,
    pub partial_fc: PartialFc,
    pub optimizer: Box<dyn Optimizer>,
    pub scaler: GradScaler,
    pub schedule: LrSchedule,
    age_loss: AgeLoss,
    weights: LossWeights,
    classification: ClassificationLoss,
    backbone_params: Vec<Tensor>,
    stage: Stage,
    device: Device,
    batch_sizes: [i64; 4],
    /// False with `eval_mode_forward`.
    train_mode: bool,
    /// The other ranks of a data-parallel run: gradients and logged losses are averaged
    /// over them.
    data_parallel: Option<Arc<dyn DataParallel>>,
    /// `sync_bn`: BatchNorm statistics over all ranks once there are several.
    sync_bn: bool,
}

/// Synchronised BatchNorm's collective: the sum over the run's data-parallel group.
struct GroupSum(Arc<dyn DataParallel>);

impl SumReducer for GroupSum {
    fn all_reduce_sum(&self, tensor: &mut Tensor) -> std::result::Result<(), String> {
        self.0.all_reduce_sum(tensor).map_err(|e| e.to_string())
    }
}

impl Learner {
    /// Builds the model (fresh weights from the current torch seed), Partial FC over
    /// `collectives`, the optimizer and the schedule scaled for `world_size` ranks.
    pub fn new(
        config: &TrainConfig,
        device: Device,
        collectives: Box<dyn Collectives>,
        world_size: usize,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let mut model =
            SwinFace::new(&vs.root(), &config.model).context("cannot build the model")?;
        let autocast = config
            .amp
            .autocast(device)
            .context("mixed precision setting")?;
        model.set_autocast(autocast);
        let opt = &config.optimizer;
        let backbone = ParamGroup::from_var_store(&vs, BACKBONE_GROUP, "backbone", 1.0, 0.0)?;
        let backbone_params: Vec<Tensor> = backbone
            .params
            .iter()
            .map(|(_, t)| t.shallow_clone())
            .collect();
        let groups = match config.train.stage {
            Stage::Multitask => {
                let heads = ParamGroup::from_var_store(&vs, HEADS_GROUP, "heads", 1.0, 0.0)?;
                opt.official_groups(backbone.params, heads.params, AGE_HEAD_PREFIX)
            }
            // arcface_torch trains the backbone alone at the full rate.
            Stage::Recognition => OptimizerConfig {
                backbone_lr_scale: 1.0,
                ..opt.clone()
            }
            .official_groups(backbone.params, Vec::new(), AGE_HEAD_PREFIX)
            .into_iter()
            .filter(|g| !g.params.is_empty())
            .collect(),
        };
        let optimizer = opt.build(groups).context("cannot build the optimizer")?;
        let partial_fc = PartialFc::new(
            &config.partial_fc,
            opt.update_rule(),
            opt.weight_decay,
            collectives,
            device,
            Kind::Float,
        )
        .context("cannot build Partial FC")?
        .with_sampling_seed(config.data.seed as u64)
        .with_autocast(autocast);
        let scaler = config.amp.grad_scaler(device).context("loss scaler")?;
        let mut schedule = LrSchedule::new(config.schedule.clone(), opt.lr).context("schedule")?;
        if config.train.lr_batch_scaling {
            schedule = schedule.scaled_for_batch(config.batch_per_rank() as usize * world_size);
        }
        let d = &config.data;
        let batch_sizes = match config.train.stage {
            Stage::Multitask => [
                d.recognition_bz,
                d.age_gender_bz,
                d.celeba_bz,
                d.expression_bz,
            ],
            Stage::Recognition => [d.recognition_bz, 0, 0, 0],
        }
        .map(|b| b as i64);
        Ok(Self {
            vs,
            model,
            partial_fc,
            optimizer,
            scaler,
            schedule,
            age_loss: AgeLoss::from_config(&config.age_loss, config.schedule.total_step),
            weights: config.loss_weights.clone(),
            classification: ClassificationLoss::default(),
            backbone_params,
            stage: config.train.stage,
            device,
            batch_sizes,
            train_mode: !config.train.eval_mode_forward,
            data_parallel: None,
            sync_bn: config.train.sync_bn,
        })
    }

    /// Averages gradients (and the logged losses) over `ranks` from now on, as DDP does;
    /// with `sync_bn`, the model's BatchNorms use the statistics of the batch combined over
    /// `ranks` too.
    pub fn with_data_parallel(mut self, ranks: Option<Arc<dyn DataParallel>>) -> Self {
        let reducer = ranks
            .as_ref()
            .filter(|group| self.sync_bn && group.world_size() > 1)
            .map(|group| Arc::new(GroupSum(Arc::clone(group))) as Arc<dyn SumReducer>);
        self.model.set_sync_batch_norm(reducer);
        self.data_parallel = ranks;
        self
    }

    /// Whether the model's training BatchNorms are synchronised over the ranks.
    pub fn sync_batch_norm(&self) -> bool {
        self.model.sync_batch_norm()
    }

    /// Sets the Age head's bias to `value`.
    pub fn set_age_bias(&mut self, value: f64) -> Result<()> {
        let fc = head_specs()[AGE_HEAD]
            .fc_index
            .context("the Age output has no head")?;
        let name = format!("om.output_fcs.{fc}.bias");
        let mut bias = self
            .vs
            .variables()
            .remove(&name)
            .with_context(|| format!("the model has no variable {name}"))?;
        let _ = tch::no_grad(|| bias.f_fill_(value))?;
        Ok(())
    }

    /// Runs training step `step` (0-based) on `batch`.
    pub fn step(&mut self, batch: &StepBatch, step: u64) -> Result<StepOutcome> {
        let images = batch
            .images
            .to_device_(self.device, Kind::Float, true, false);
        let identities = batch.identities.to_device(self.device);
        let [r, a, c, e] = self.batch_sizes;
        let (recognition, analysis) = match self.stage {
            Stage::Recognition => {
                let embedding = self
                    .model
                    .backbone()
                    .f_forward_t(&images, self.train_mode)
                    .context("the forward pass")?
                    .embedding;
                (
                    self.partial_fc.forward(&embedding, &identities)?,
                    Vec::new(),
                )
            }
            Stage::Multitask => {
                let labels = batch
                    .analysis
                    .as_ref()
                    .context("the multitask step needs the analysis labels")?;
                let out = self
                    .model
                    .f_forward_t(&images, self.train_mode)
                    .context("the forward pass")?;
                let heads = &out.heads;
                let recognition = self
                    .partial_fc
                    .forward(&heads[RECOGNITION_HEAD].narrow(0, 0, r), &identities)?;
                let ages = labels.ages.to_device(self.device);
                let genders = Tensor::cat(
                    &[
                        labels.genders.shallow_clone(),
                        labels.attributes.select(1, GENDER_ATTRIBUTE as i64),
                    ],
                    0,
                )
                .to_device(self.device);
                let attributes = labels.attributes.to_device(self.device);
                let expressions = labels.expressions.to_device(self.device);
                let mut analysis = Vec::with_capacity(42);
                analysis.push(self.age_loss.forward(
                    &heads[AGE_HEAD].narrow(0, r, a),
                    &ages,
                    step,
                )?);
                for attribute in 0..40 {
                    let head = &heads[1 + attribute];
                    let loss = if attribute == GENDER_ATTRIBUTE {
                        // Gender learns from the age-gender and the CelebA streams.
                        self.classification
                            .forward(&head.narrow(0, r, a + c), &genders)?
                    } else {
                        self.classification.forward(
                            &head.narrow(0, r + a, c),
                            &attributes.select(1, attribute as i64),
                        )?
                    };
                    analysis.push(loss);
                }
                analysis.push(self.classification.forward(
                    &heads[EXPRESSION_HEAD].narrow(0, r + a + c, e),
                    &expressions,
                )?);
                (recognition, analysis)
            }
        };
        let total = if analysis.is_empty() {
            recognition.f_mul_scalar(self.weights.recognition_loss_weight)?
        } else {
            self.weights.combine(&recognition, &analysis)?
        };
        // One read-back for every value logged.
        let mut parts = vec![total.detach(), recognition.detach()];
        parts.extend(analysis.iter().map(|l| l.detach().to_kind(Kind::Float)));
        let mut values = Tensor::stack(
            &parts
                .iter()
                .map(|t| t.to_kind(Kind::Double))
                .collect::<Vec<_>>(),
            0,
        );
        if let Some(ranks) = &self.data_parallel {
            // The analysis losses are each rank's own: log their mean over ranks (the loss
            // of the combined batch), and let a non-finite loss anywhere skip the step on
            // every rank, so that all ranks keep taking the same steps.
            ranks
                .all_reduce_mean(std::slice::from_mut(&mut values))
                .context("cannot average the losses over ranks")?;
        }
        let values = Vec::<f64>::try_from(values.to_device(Device::Cpu))?;
        let finite = values.iter().all(|v| v.is_finite());
        let learning_rates = self.learning_rates(step);
        let mut outcome = StepOutcome {
            total: values[0],
            recognition: values[1],
            analysis: values[2..].to_vec(),
            finite,
            stepped: false,
            grad_norm: f64::NAN,
            learning_rates,
        };
        if !finite {
            self.partial_fc.skip_step();
            self.optimizer.zero_grad();
            return Ok(outcome);
        }
        // With sync_bn every BatchNorm's backward is a collective: the ranks run the same
        // graph, and libtorch's engine runs a graph's nodes in the same order every time
        // (on the CPU on this thread; on a GPU on that device's one worker thread), so
        // every rank calls them in the same order.
        self.scaler
            .scale(&total)?
            .f_backward()
            .context("the backward pass")?;
        let mut grads = self.optimizer.grads()?;
        if let Some(ranks) = &self.data_parallel {
            // DDP's averaging, before unscaling and clipping. Partial FC's centres are
            // sharded: each rank's gradient is already the whole batch's for its rows.
            ranks
                .all_reduce_mean(&mut grads)
                .context("cannot average the gradients over ranks")?;
        }
        grads.extend(self.partial_fc.grad()?);
        self.scaler.unscale(&grads)?;
        if let Some(ranks) = &self.data_parallel {
            self.scaler.sync_found_inf(ranks)?;
        }
        if let Some(norm) = clip_grad_norm(&self.backbone_params, BACKBONE_MAX_NORM)? {
            outcome.grad_norm = norm.double_value(&[]);
        }
        if self.scaler.should_step()? {
            let (model_lrs, pfc_lr) = outcome
                .learning_rates
                .split_at(outcome.learning_rates.len() - 1);
            self.optimizer.step(model_lrs)?;
            self.partial_fc.step(pfc_lr[0])?;
            outcome.stepped = true;
        } else {
            self.partial_fc.skip_step();
        }
        self.scaler.update()?;
        self.optimizer.zero_grad();
        Ok(outcome)
    }

    /// The rate of each optimizer group at `step`, then Partial FC's (scale 1).
    pub fn learning_rates(&self, step: u64) -> Vec<f64> {
        let mut lrs = self.optimizer.learning_rates(&self.schedule, step);
        lrs.push(self.schedule.lr_for_step(step, 1.0));
        lrs
    }

    /// Names of [`Self::learning_rates`]' entries.
    pub fn learning_rate_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .optimizer
            .groups()
            .iter()
            .map(|g| g.name.clone())
            .collect();
        names.push("partial_fc".into());
        names
    }

    /// Names of [`StepOutcome::analysis`]' entries.
    pub fn analysis_names(&self) -> Vec<&'static str> {
        match self.stage {
            Stage::Recognition => Vec::new(),
            Stage::Multitask => TASK_NAMES[..42].to_vec(),
        }
    }

    /// Everything a resume needs besides the model: optimizer, Partial FC (centres, their
    /// optimizer table, sampler) and the loss scaler, under `optimizer.`, `partial_fc.` and
    /// `grad_scaler.`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .optimizer
            .state_tensors()
            .into_iter()
            .map(|(k, t)| (format!("optimizer.{k}"), t))
            .collect();
        out.extend(self.partial_fc.state_tensors());
        out.extend(self.scaler.state_tensors());
        out
    }

    /// This rank's Partial FC shard (centres, their optimizer table, sampler): what each
    /// rank other than 0 saves of a data-parallel checkpoint.
    pub fn partial_fc_state(&self) -> Vec<(String, Tensor)> {
        self.partial_fc.state_tensors()
    }

    /// Restores [`Self::state_tensors`] output.
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let mut optimizer = Vec::new();
        let mut partial_fc = Vec::new();
        let mut scaler = Vec::new();
        for (name, tensor) in state {
            let tensor = tensor.to_device(self.device);
            if let Some(rest) = name.strip_prefix("optimizer.") {
                optimizer.push((rest.to_owned(), tensor));
            } else if name.starts_with("partial_fc.") {
                partial_fc.push((name, tensor));
            } else if name.starts_with("grad_scaler.") {
                scaler.push((name, tensor));
            } else {
                anyhow::bail!("unexpected training-state tensor `{name}`");
            }
        }
        self.optimizer
            .load_state(&optimizer)
            .context("optimizer state")?;
        self.partial_fc
            .load_state(&partial_fc)
            .context("Partial FC state")?;
        self.scaler
            .load_state(&scaler)
            .context("loss scaler state")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use swinface_loss::{LossError, SingleProcess};

    use super::*;

    /// The tiny multitask model, two images per stream.
    fn config(sync_bn: bool) -> TrainConfig {
        let text = format!(
            "device: cpu
fp16: false
num_classes: 10
sample_rate: 1.0
embedding_size: 32
swin:
  patch_size: 4
  embed_dim: 16
  depths: [2, 2, 2]
  num_heads: [1, 2, 4]
fam_feature_dim: 16
fam_in_chans: 160
recognition_bz: 2
age_gender_bz: 2
CelebA_bz: 2
expression_bz: 2
sync_bn: {sync_bn}
"
        );
        let map: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap();
        TrainConfig::from_map(&map, std::path::Path::new("t.yaml")).unwrap()
    }

    fn batch() -> StepBatch {
        let cpu_float = (Kind::Float, Device::Cpu);
        let cpu_int = (Kind::Int64, Device::Cpu);
        let n = Tensor::arange(8 * 3 * 112 * 112, cpu_float);
        StepBatch {
            images: (n * 0.001).sin().view([8, 3, 112, 112]),
            identities: Tensor::from_slice(&[1i64, 7]),
            analysis: Some(AnalysisLabels {
                ages: Tensor::from_slice(&[23.0f32, 61.0]).view([2, 1]),
                genders: Tensor::from_slice(&[0i64, 1]),
                attributes: Tensor::arange(80, cpu_int).remainder(2).view([2, 40]),
                expressions: Tensor::from_slice(&[3i64, 5]),
            }),
        }
    }

    /// Rank 0 of two whose sums work for `ok` calls and then fail, as when rank 1 dies;
    /// every other collective is the identity.
    struct Group {
        world_size: usize,
        ok: usize,
        sums: AtomicUsize,
    }

    impl Group {
        fn new(world_size: usize, ok: usize) -> Arc<Self> {
            Arc::new(Self {
                world_size,
                ok,
                sums: AtomicUsize::new(0),
            })
        }

        fn sums(&self) -> usize {
            self.sums.load(Ordering::SeqCst)
        }
    }

    impl Collectives for Group {
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            self.world_size
        }
        fn all_reduce_max(&self, _tensor: &mut Tensor) -> swinface_loss::Result<()> {
            Ok(())
        }
        fn all_reduce_sum(&self, _tensor: &mut Tensor) -> swinface_loss::Result<()> {
            if self.sums.fetch_add(1, Ordering::SeqCst) < self.ok {
                return Ok(());
            }
            Err(LossError::Collective {
                op: "all_reduce_sum",
                rank: 0,
                reason: "rank 1 is gone".into(),
            })
        }
        fn all_gather(&self, tensor: &Tensor) -> swinface_loss::Result<Vec<Tensor>> {
            Ok((0..self.world_size)
                .map(|_| tensor.shallow_clone())
                .collect())
        }
    }

    impl DataParallel for Group {
        fn all_reduce_mean(&self, _tensors: &mut [Tensor]) -> swinface_distributed::Result<()> {
            Ok(())
        }
        fn broadcast_all(
            &self,
            _tensors: &mut [Tensor],
            _root: usize,
        ) -> swinface_distributed::Result<()> {
            Ok(())
        }
        fn backend(&self) -> &'static str {
            "test"
        }
    }

    fn build(sync_bn: bool, group: &Arc<Group>) -> Learner {
        tch::manual_seed(0);
        let group: Arc<dyn DataParallel> = group.clone();
        Learner::new(&config(sync_bn), Device::Cpu, Box::new(SingleProcess), 2)
            .unwrap()
            .with_data_parallel(Some(group))
    }

    #[test]
    fn sync_bn_sums_through_the_group_and_its_failures_are_step_errors() {
        // Working group: one sum per BatchNorm forward and one per backward.
        let group = Group::new(2, usize::MAX);
        let mut learner = build(true, &group);
        assert!(learner.sync_batch_norm());
        assert!(learner.step(&batch(), 0).unwrap().stepped);
        let per_step = group.sums();
        // The embedding head's 2 and the 11 FAM branch norms, forward and backward.
        assert_eq!(per_step, 2 * 13);

        // Rank 1 gone before the step: the forward pass fails, as an error.
        let group = Group::new(2, 0);
        let err = learner_step_error(&group);
        assert!(err.contains("the forward pass"), "{err}");
        assert!(err.contains("forward statistics"), "{err}");
        assert!(err.contains("rank 1 is gone"), "{err}");

        // Rank 1 gone after the forward pass: the backward pass fails, as an error.
        let group = Group::new(2, per_step / 2);
        let err = learner_step_error(&group);
        assert!(err.contains("the backward pass"), "{err}");
        assert!(err.contains("backward gradient sums"), "{err}");
        assert!(err.contains("rank 1 is gone"), "{err}");
    }

    fn learner_step_error(group: &Arc<Group>) -> String {
        let mut learner = build(true, group);
        let err = learner.step(&batch(), 0).expect_err("the step must fail");
        eprintln!("{err:#}");
        format!("{err:#}")
    }

    #[test]
    fn without_sync_bn_or_with_one_rank_batch_norm_stays_local() {
        let group = Group::new(2, usize::MAX);
        let mut learner = build(false, &group);
        assert!(!learner.sync_batch_norm());
        learner.step(&batch(), 0).unwrap();
        assert_eq!(group.sums(), 0);

        let single = Group::new(1, usize::MAX);
        let learner = build(true, &single);
        assert!(!learner.sync_batch_norm());
    }
}
