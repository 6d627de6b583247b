//! The evaluation's view of a YAML config: the model part ([`SwinFaceConfig`]: `network`,
//! `embedding_size`, `swin:`, the `fam_*` keys), the data part ([`DataConfig`], official key
//! names) and the evaluation settings below, all at the top level of one file. The trainer's
//! full config will replace this one function.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use swinface_data::streams::DataConfig;
use swinface_model::SwinFaceConfig;

use super::error::EvalError;

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSettings {
    /// Images per forward pass (official `val_batch_size`).
    pub val_batch_size: usize,
    /// IJB-C root: `meta/ijbc_face_tid_mid.txt`, `meta/ijbc_template_pair_label.txt`,
    /// `meta/ijbc_name_5pts_score.txt` and `loose_crop/` (insightface's `--image-path`).
    #[serde(rename = "IJBC_path")]
    pub ijbc_path: Option<PathBuf>,
    /// `IJBC` or `IJBB`: the meta files' prefix (insightface's `--target`).
    #[serde(rename = "IJBC_target")]
    pub ijbc_target: String,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            val_batch_size: 128,
            ijbc_path: None,
            ijbc_target: "IJBC".into(),
        }
    }
}

/// Everything `swinface eval` reads from the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    pub model: SwinFaceConfig,
    pub data: DataConfig,
    pub settings: EvalSettings,
}

/// The top-level keys a serde struct owns (from its default value).
pub(crate) fn keys_of<T: Serialize + Default>() -> Vec<String> {
    match serde_yaml::to_value(T::default()) {
        Ok(serde_yaml::Value::Mapping(map)) => map
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Deserializes the part of `map` whose keys `T` owns.
fn part<T: for<'de> Deserialize<'de> + Serialize + Default>(
    map: &serde_yaml::Mapping,
    path: &Path,
    what: &str,
) -> Result<T, EvalError> {
    let keys = keys_of::<T>();
    let sub: serde_yaml::Mapping = map
        .iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| keys.iter().any(|o| o == k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_yaml::from_value(serde_yaml::Value::Mapping(sub)).map_err(|e| EvalError::File {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    })
}

/// Reads the model, data and evaluation parts of a YAML config; keys none of them owns are
/// ignored (a training config holds more).
pub fn load_eval_config(path: &Path) -> Result<EvalConfig, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_eval_config(&text, path)
}

/// [`load_eval_config`] on text (`path` names it in errors).
pub fn parse_eval_config(text: &str, path: &Path) -> Result<EvalConfig, EvalError> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| EvalError::File {
        path: path.to_path_buf(),
        message: format!("invalid YAML: {e}"),
    })?;
    let map = match value {
        serde_yaml::Value::Mapping(map) => map,
        serde_yaml::Value::Null => serde_yaml::Mapping::new(),
        _ => {
            return Err(EvalError::File {
                path: path.to_path_buf(),
                message: "the top level must be a map of keys".into(),
            })
        }
    };
    let model: SwinFaceConfig = part(&map, path, "model config")?;
    model.validate().map_err(|e| EvalError::File {
        path: path.to_path_buf(),
        message: format!("model config: {e}"),
    })?;
    let data = DataConfig::from_yaml_str(text).map_err(|e| EvalError::File {
        path: path.to_path_buf(),
        message: format!("data config: {e}"),
    })?;
    let settings: EvalSettings = part(&map, path, "evaluation settings")?;
    if settings.val_batch_size == 0 {
        return Err(EvalError::Config {
            message: "val_batch_size must be at least 1".into(),
        });
    }
    if !["IJBC", "IJBB"].contains(&settings.ijbc_target.as_str()) {
        return Err(EvalError::Config {
            message: format!("IJBC_target {:?} is not IJBC or IJBB", settings.ijbc_target),
        });
    }
    Ok(EvalConfig {
        model,
        data,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_one_file_into_model_data_and_settings() {
        let text = "\
embedding_size: 128
swin:
  embed_dim: 32
  depths: [2, 2, 2, 2]
  num_heads: [1, 2, 4, 8]
fam_feature_dim: 64
fam_in_chans: 704
RAF_data: /data/RAF
RAF_label: /data/RAF/list_patition_label.txt
val_targets: [lfw]
val_batch_size: 16
IJBC_path: /data/IJB_release/IJBC
lr: 0.1
";
        let cfg = parse_eval_config(text, Path::new("cfg.yaml")).unwrap();
        assert_eq!(cfg.model, SwinFaceConfig::tiny_demo());
        assert_eq!(cfg.data.raf_data, Some(PathBuf::from("/data/RAF")));
        assert_eq!(cfg.data.val_targets, vec!["lfw".to_string()]);
        assert_eq!(cfg.settings.val_batch_size, 16);
        assert_eq!(cfg.settings.ijbc_target, "IJBC");
        assert!(cfg.settings.ijbc_path.is_some());

        let bad = parse_eval_config("fam_feature_dim: -3\n", Path::new("bad.yaml"));
        assert!(bad.unwrap_err().to_string().contains("bad.yaml"));
        let bad = parse_eval_config("val_batch_size: 0\n", Path::new("bad.yaml"));
        assert!(bad.is_err());
    }
}
