//! The training config: one flat YAML map with the official key names, split into the parts
//! each crate owns (model, data, optimizer, schedule, Partial FC, precision, loss weights,
//! evaluation) plus the trainer's own settings ([`TrainSettings`]). A key no part owns is an
//! error that lists the valid ones; `--set key=value` overrides a key (dotted keys reach into
//! nested maps: `swin.embed_dim=48`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swinface_data::augment::{AnalysisAugmentConfig, RecognitionTransform};
use swinface_data::streams::DataConfig;
use swinface_loss::{
    AgeLossConfig, AmpConfig, LossWeights, OptimizerConfig, PartialFcConfig, ScheduleConfig,
};
use swinface_model::SwinFaceConfig;

use crate::cli::DeviceChoice;
use crate::eval::config::{keys_of, EvalConfig, EvalSettings};

/// Which stage of the official recipe a config trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The paper's joint stage: recognition, age-gender, CelebA and expression streams.
    #[default]
    Multitask,
    /// Recognition only (insightface arcface_torch): the backbone pretraining.
    Recognition,
}

/// Which evaluation result picks the best checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    /// The first configured of: RAF-DB top-1, mean verification accuracy, CelebA mean, CLAP MAE.
    #[default]
    Auto,
    RafTop1,
    Verification,
    CelebaMean,
    ClapMae,
    FgnetMae,
}

/// The trainer's own settings (official names where the official code has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    pub stage: Stage,
    /// Output directory: checkpoints, logs, TensorBoard events, the resolved config.
    pub output: PathBuf,
    /// Initialise the backbone from `init_model` (official multi-task stage).
    pub init: bool,
    /// A recognition-pretrained checkpoint: ours, an official `.pt` or arcface_torch's.
    pub init_model: Option<PathBuf>,
    /// Evaluate every `verbose` steps and after the last one (0: only after the last).
    pub verbose: u64,
    /// Save a checkpoint when `(step + 1)` is a multiple of this, and after the last step.
    pub save_verbose: u64,
    /// Log (bar, log file, TensorBoard) every `frequent` steps.
    pub frequent: u64,
    /// arcface_torch's epoch-based length: when set, `total_step` and `warmup_step` are
    /// `num_epoch` and `warmup_epoch` times the steps of one epoch.
    pub num_epoch: Option<u64>,
    pub warmup_epoch: Option<u64>,
    /// Step checkpoints kept besides the best one (older ones are deleted).
    pub keep_checkpoints: usize,
    pub best_metric: BestMetric,
    /// Decode/augment threads per stream loader (0: one per core).
    pub num_workers: usize,
    /// libtorch intra-op threads (0: libtorch's default).
    pub torch_threads: usize,
    pub device: DeviceChoice,
    /// Steps in a row with a non-finite loss after which training stops.
    pub max_nonfinite_steps: u64,
    /// The analysis streams' training transform (timm's, as the official code sets it).
    pub analysis_augment: AnalysisAugmentConfig,
    /// The recognition stream's transform (flip + normalise).
    pub recognition_augment: RecognitionTransform,
    /// Evaluate the untrained model before the first step (the summary's "before").
    pub initial_eval: bool,
    /// Start the Age head's bias at the stream's mean age (fresh starts only). Off in the
    /// official recipe; it saves a short run the many steps the bias needs to reach ~35.
    pub init_age_bias: bool,
    /// The official linear scaling: learning rates times (images per step over all ranks) / 512.
    pub lr_batch_scaling: bool,
    /// Data-parallel runs: how long any rank waits for the others (rendezvous, every
    /// collective) before it stops with an error naming the ranks that did not arrive.
    pub dist_timeout_s: u64,
    /// Data-parallel runs: gradients are averaged in buckets of at most this many MiB
    /// (DDP's `bucket_cap_mb`).
    pub dist_bucket_mb: u64,
    /// Run the training forward pass in evaluation mode: BatchNorm normalises with (and no
    /// longer updates) its running statistics, and dropout and drop path are off. Off in the
    /// official recipe; with it, a data-parallel run computes exactly what one process
    /// computes over the combined batch (BatchNorm statistics are otherwise per rank).
    pub eval_mode_forward: bool,
    /// Data-parallel runs: synchronised BatchNorm (`torch.nn.SyncBatchNorm`): training
    /// batches are normalised with the statistics of the batch combined over all ranks
    /// (and the running statistics follow those), instead of each rank's own. Off in the
    /// official recipe; no effect with one process, nor with `eval_mode_forward` (which
    /// uses no batch statistics).
    pub sync_bn: bool,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            stage: Stage::Multitask,
            output: PathBuf::from("runs/swinface"),
            init: false,
            init_model: None,
            verbose: 2000,
            save_verbose: 4000,
            frequent: 10,
            num_epoch: None,
            warmup_epoch: None,
            keep_checkpoints: 3,
            best_metric: BestMetric::Auto,
            num_workers: 0,
            torch_threads: 0,
            device: DeviceChoice::Auto,
            max_nonfinite_steps: 10,
            analysis_augment: AnalysisAugmentConfig::default(),
            recognition_augment: RecognitionTransform::default(),
            initial_eval: false,
            init_age_bias: false,
            lr_batch_scaling: true,
            dist_timeout_s: 1800,
            dist_bucket_mb: 25,
            eval_mode_forward: false,
            sync_bn: false,
        }
    }
}

/// Every part of a training config.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub model: SwinFaceConfig,
    pub data: DataConfig,
    pub optimizer: OptimizerConfig,
    pub schedule: ScheduleConfig,
    pub partial_fc: PartialFcConfig,
    pub amp: AmpConfig,
    pub loss_weights: LossWeights,
    pub age_loss: AgeLossConfig,
    pub eval: EvalSettings,
    pub train: TrainSettings,
}

/// A config that cannot be used, naming the file (and the key where one is at fault).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: unknown key{} {}; valid keys: {}", path.display(),
        if unknown.len() == 1 { "" } else { "s" }, unknown.join(", "), valid.join(", "))]
    UnknownKeys {
        path: PathBuf,
        unknown: Vec<String>,
        valid: Vec<String>,
    },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
}

/// Every top-level key of a training config, sorted.
pub fn valid_keys() -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    keys.extend(keys_of::<SwinFaceConfig>());
    keys.extend(DataConfig::keys());
    keys.extend(keys_of::<OptimizerConfig>());
    keys.extend(keys_of::<ScheduleConfig>());
    keys.extend(keys_of::<PartialFcConfig>());
    keys.extend(keys_of::<AmpConfig>());
    keys.extend(keys_of::<LossWeights>());
    keys.extend(keys_of::<AgeLossConfig>());
    keys.extend(keys_of::<EvalSettings>());
    keys.extend(keys_of::<TrainSettings>());
    // serde aliases the schedule accepts.
    keys.insert("scheduler".into());
    keys.into_iter().collect()
}

/// Deserializes the part of `map` whose keys `T` owns.
fn part<T: for<'de> Deserialize<'de> + Serialize + Default>(
    map: &serde_yaml::Mapping,
    path: &Path,
    what: &str,
    extra_keys: &[&str],
) -> Result<T, ConfigError> {
    let keys = keys_of::<T>();
    let sub: serde_yaml::Mapping = map
        .iter()
        .filter(|(k, _)| {
            k.as_str()
                .is_some_and(|k| keys.iter().any(|o| o == k) || extra_keys.contains(&k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The failing key's path (`lr`, `swin.depths`) leads the message.
    serde_path_to_error::deserialize(serde_yaml::Value::Mapping(sub)).map_err(|e| {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{what}: {}: {}", e.path(), e.inner()),
        }
    })
}

/// Applies one `key=value` override (value parsed as YAML) to the top-level map.
pub fn apply_override(map: &mut serde_yaml::Mapping, arg: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Override {
        arg: arg.to_owned(),
        message,
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key=value".into()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("empty key".into()));
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(value).map_err(|e| bad(format!("value is not YAML: {e}")))?;
    let mut parts = key.split('.').peekable();
    let mut current = map;
    while let Some(part) = parts.next() {
        let k = serde_yaml::Value::String(part.to_owned());
        if parts.peek().is_none() {
            current.insert(k, value);
            return Ok(());
        }
        let entry = current
            .entry(k)
            .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        current = match entry {
            serde_yaml::Value::Mapping(m) => m,
            _ => return Err(bad(format!("`{part}` is not a map"))),
        };
    }
    Ok(())
}

/// Reads `path` and applies `overrides`; the map is what [`TrainConfig::from_map`] takes.
pub fn read_config_map(
    path: &Path,
    overrides: &[String],
) -> Result<serde_yaml::Mapping, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("invalid YAML: {e}"),
        })?;
    let mut map = match value {
        serde_yaml::Value::Mapping(map) => map,
        serde_yaml::Value::Null => serde_yaml::Mapping::new(),
        _ => {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: "the top level must be a map of keys".into(),
            })
        }
    };
    for arg in overrides {
        apply_override(&mut map, arg)?;
    }
    Ok(map)
}

impl TrainConfig {
    /// Reads `path`, applies `overrides` and resolves the config.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let map = read_config_map(path, overrides)?;
        Self::from_map(&map, path)
    }

    /// Resolves a config map (`path` names it in errors).
    pub fn from_map(map: &serde_yaml::Mapping, path: &Path) -> Result<Self, ConfigError> {
        let valid = valid_keys();
        let unknown: Vec<String> = map
            .keys()
            .map(|k| match k.as_str() {
                Some(s) => s.to_owned(),
                None => format!("{k:?}"),
            })
            .filter(|k| !valid.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys {
                path: path.to_path_buf(),
                unknown,
                valid,
            });
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let model: SwinFaceConfig = part(map, path, "model", &[])?;
        model
            .validate()
            .map_err(|e| invalid(format!("model: {e}")))?;
        let data: DataConfig = part(map, path, "data", &[])?;
        data.validate().map_err(|e| invalid(format!("data: {e}")))?;
        let optimizer: OptimizerConfig = part(map, path, "optimizer", &[])?;
        optimizer
            .validate()
            .map_err(|e| invalid(format!("optimizer: {e}")))?;
        let schedule: ScheduleConfig = part(map, path, "schedule", &["scheduler"])?;
        let mut partial_fc: PartialFcConfig = part(map, path, "Partial FC", &[])?;
        // One source of truth for the shared names.
        partial_fc.embedding_size = model.embedding_size;
        partial_fc.num_classes = i64::try_from(data.num_classes)
            .map_err(|_| invalid(format!("num_classes {} is too large", data.num_classes)))?;
        let amp: AmpConfig = part(map, path, "precision", &[])?;
        let loss_weights: LossWeights = part(map, path, "loss weights", &[])?;
        loss_weights
            .validate()
            .map_err(|e| invalid(format!("loss weights: {e}")))?;
        let age_loss: AgeLossConfig = part(map, path, "age loss", &[])?;
        age_loss
            .validate()
            .map_err(|e| invalid(format!("age loss: {e}")))?;
        let eval: EvalSettings = part(map, path, "evaluation", &[])?;
        let train: TrainSettings = part(map, path, "trainer", &[])?;
        let config = Self {
            model,
            data,
            optimizer,
            schedule,
            partial_fc,
            amp,
            loss_weights,
            age_loss,
            eval,
            train,
        };
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// Checks across parts that serde cannot.
    fn check(&self) -> Result<(), String> {
        let t = &self.train;
        if t.frequent == 0 {
            return Err("frequent must be at least 1".into());
        }
        if t.save_verbose == 0 {
            return Err("save_verbose must be at least 1".into());
        }
        if t.keep_checkpoints == 0 {
            return Err("keep_checkpoints must be at least 1".into());
        }
        if t.init && t.init_model.is_none() {
            return Err("init is true but init_model is not set".into());
        }
        if self.partial_fc.num_classes <= 0 {
            return Err("num_classes must be at least 1".into());
        }
        // Written so that NaN fails too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(self.partial_fc.sample_rate > 0.0) {
            return Err(format!(
                "sample_rate {} must be > 0",
                self.partial_fc.sample_rate
            ));
        }
        if self.eval.val_batch_size == 0 {
            return Err("val_batch_size must be at least 1".into());
        }
        let img = self.model.swin.img_size;
        if i64::from(self.data.img_size) != img
            || i64::from(t.analysis_augment.img_size) != img
            || i64::from(t.recognition_augment.img_size) != img
        {
            return Err(format!(
                "img_size {} and the augmentations' img_size ({}, {}) must equal the model's \
                 swin.img_size {img}",
                self.data.img_size, t.analysis_augment.img_size, t.recognition_augment.img_size
            ));
        }
        if self.train.stage == Stage::Multitask {
            for (name, bz) in [
                ("age_gender_bz", self.data.age_gender_bz),
                ("CelebA_bz", self.data.celeba_bz),
                ("expression_bz", self.data.expression_bz),
            ] {
                if bz == 0 {
                    return Err(format!("{name} must be at least 1 in the multitask stage"));
                }
            }
        }
        Ok(())
    }

    /// Images of one step on this rank (all streams).
    pub fn batch_per_rank(&self) -> u64 {
        let d = &self.data;
        match self.train.stage {
            Stage::Multitask => d.recognition_bz + d.age_gender_bz + d.celeba_bz + d.expression_bz,
            Stage::Recognition => d.recognition_bz,
        }
    }

    /// The evaluation's view.
    pub fn eval_config(&self) -> EvalConfig {
        EvalConfig {
            model: self.model.clone(),
            data: self.data.clone(),
            settings: self.eval.clone(),
        }
    }

    /// The resolved config as one flat map (every key with its value), as saved beside the
    /// checkpoints; [`TrainConfig::from_map`] reads it back to the same config.
    pub fn to_map(&self) -> Result<serde_yaml::Mapping, serde_yaml::Error> {
        let mut map = serde_yaml::Mapping::new();
        let parts = [
            serde_yaml::to_value(&self.model)?,
            serde_yaml::to_value(&self.data)?,
            serde_yaml::to_value(&self.optimizer)?,
            serde_yaml::to_value(&self.schedule)?,
            serde_yaml::to_value(&self.partial_fc)?,
            serde_yaml::to_value(&self.amp)?,
            serde_yaml::to_value(&self.loss_weights)?,
            serde_yaml::to_value(&self.age_loss)?,
            serde_yaml::to_value(&self.eval)?,
            serde_yaml::to_value(&self.train)?,
        ];
        for value in parts {
            if let serde_yaml::Value::Mapping(m) = value {
                for (k, v) in m {
                    // Optional settings left unset are written as absent, not null.
                    if !v.is_null() {
                        map.insert(k, v);
                    }
                }
            }
        }
        Ok(map)
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(&serde_yaml::Value::Mapping(self.to_map()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TrainConfig, ConfigError> {
        let value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let map = value.as_mapping().cloned().unwrap_or_default();
        TrainConfig::from_map(&map, Path::new("t.yaml"))
    }

    #[test]
    fn defaults_are_the_official_recipe() {
        let cfg = parse("{}").unwrap();
        assert_eq!(cfg.model, SwinFaceConfig::default());
        assert_eq!(cfg.optimizer.lr, 5e-4);
        assert_eq!(cfg.optimizer.weight_decay, 0.05);
        assert_eq!(cfg.schedule.warmup_step, 8000);
        assert_eq!(cfg.schedule.total_step, 80000);
        assert_eq!(cfg.partial_fc.margin_list, (1.0, 0.0, 0.4));
        assert_eq!(cfg.partial_fc.sample_rate, 0.3);
        assert!(cfg.amp.fp16);
        assert_eq!(cfg.data.seed, 2048);
        assert_eq!(cfg.train.verbose, 2000);
        assert_eq!(cfg.train.save_verbose, 4000);
        assert_eq!(cfg.train.frequent, 10);
        assert!(!cfg.train.sync_bn);
    }

    #[test]
    fn sync_bn_is_a_train_key() {
        assert!(valid_keys().contains(&"sync_bn".to_owned()));
        let cfg = parse("sync_bn: true\neval_mode_forward: true\n").unwrap();
        assert!(cfg.train.sync_bn && cfg.train.eval_mode_forward);
        let again = TrainConfig::from_map(&cfg.to_map().unwrap(), Path::new("r.yaml")).unwrap();
        assert!(again.train.sync_bn);
        let err = parse("sync_bn: 2\n").unwrap_err().to_string();
        assert!(err.contains("sync_bn"), "{err}");
        let err = parse("sync_batch_norm: true\n").unwrap_err().to_string();
        assert!(
            err.contains("unknown key sync_batch_norm") && err.contains("sync_bn"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_valid_ones() {
        let err = parse("lr: 0.1\nlearning_rate: 0.1\nfoo: 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown keys learning_rate, foo"), "{text}");
        assert!(
            text.contains("valid keys:") && text.contains("warmup_step"),
            "{text}"
        );
        assert!(text.contains("t.yaml"), "{text}");
    }

    #[test]
    fn wrong_types_name_the_part_and_file() {
        let err = parse("lr: fast\n").unwrap_err().to_string();
        assert!(err.contains("t.yaml") && err.contains("optimizer"), "{err}");
        let err = parse("frequent: 0\n").unwrap_err().to_string();
        assert!(err.contains("frequent"), "{err}");
        let err = parse("init: true\n").unwrap_err().to_string();
        assert!(err.contains("init_model"), "{err}");
    }

    #[test]
    fn overrides_reach_nested_keys_and_parse_yaml_values() {
        let mut map: serde_yaml::Mapping =
            serde_yaml::from_str("lr: 0.1\nswin:\n  embed_dim: 32\n").unwrap();
        apply_override(&mut map, "lr=0.25").unwrap();
        apply_override(&mut map, "swin.depths=[2, 2, 2, 2]").unwrap();
        apply_override(&mut map, "swin.num_heads=[1,2,4,8]").unwrap();
        apply_override(&mut map, "fam_feature_dim=64").unwrap();
        apply_override(&mut map, "embedding_size=128").unwrap();
        apply_override(&mut map, "fam_in_chans=704").unwrap();
        let cfg = TrainConfig::from_map(&map, Path::new("t.yaml")).unwrap();
        assert_eq!(cfg.optimizer.lr, 0.25);
        assert_eq!(cfg.model, SwinFaceConfig::tiny_demo());
        assert_eq!(cfg.partial_fc.embedding_size, 128);
        assert!(apply_override(&mut map, "novalue").is_err());
        assert!(apply_override(&mut map, "lr.x=1").is_err());
    }

    #[test]
    fn resolved_map_reads_back_to_the_same_config() {
        let cfg = parse("lr: 0.002\nnum_classes: 20\ninit: true\ninit_model: /x.pt\n").unwrap();
        let map = cfg.to_map().unwrap();
        let again = TrainConfig::from_map(&map, Path::new("resolved.yaml")).unwrap();
        assert_eq!(cfg, again);
    }
}
