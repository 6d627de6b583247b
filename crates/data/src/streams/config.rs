//! `DataConfig`: the data part of a training config, with the official config names
//! (`configs/config_train.py`) and the official recipe as defaults. Stream composition
//! (sources and shares), which the official code hard-codes, is set here too.
//!
//! A full training YAML also holds model and training keys. [`DataConfig::from_yaml_str`]
//! takes only the keys this struct names ([`DataConfig::keys`]) from the top-level map, so the
//! trainer can keep its own keys beside them, or embed this struct with `#[serde(flatten)]`
//! (its `deny_unknown_fields` then only applies when it is deserialized on its own; call
//! [`DataConfig::validate`] after deserializing it that way).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::preprocess::DecodeLimits;

/// One phase of a composed stream: its sources are cycled through, a full pass over each in
/// turn, until the phase's own count reaches `share * N` (`>=`), or, without a share, until the
/// stream's total count is exactly `N` (`==`), as the official loops test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

impl Phase {
    fn share(sources: &[&str], share: f64) -> Self {
        Self {
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            share: Some(share),
        }
    }

    fn fill(sources: &[&str]) -> Self {
        Self {
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            share: None,
        }
    }
}

/// The data settings of a SwinFace training run. Paths left out are datasets not configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Recognition data: a directory with `train.rec`, `train.idx`, `property` and the
    /// verification `.bin` files, or an image folder.
    pub rec: Option<PathBuf>,
    pub num_classes: u64,
    pub num_image: u64,
    /// Verification sets, `REC/NAME.bin`.
    pub val_targets: Vec<String>,

    /// Root of the age-gender sources: `ROOT/NAME/label.txt` and `ROOT/NAME/data/`.
    pub age_gender_data_path: Option<PathBuf>,
    /// Which age-gender sources are used (phases naming others skip them).
    pub age_gender_data_list: Vec<String>,

    #[serde(rename = "CelebA_train_data")]
    pub celeba_train_data: Option<PathBuf>,
    #[serde(rename = "CelebA_train_label")]
    pub celeba_train_label: Option<PathBuf>,
    #[serde(rename = "CelebA_val_data")]
    pub celeba_val_data: Option<PathBuf>,
    #[serde(rename = "CelebA_val_label")]
    pub celeba_val_label: Option<PathBuf>,
    #[serde(rename = "CelebA_test_data")]
    pub celeba_test_data: Option<PathBuf>,
    #[serde(rename = "CelebA_test_label")]
    pub celeba_test_label: Option<PathBuf>,
    /// `list_eval_partition.txt`, needed when the CelebA labels are CelebA's own
    /// `list_attr_celeba.txt` (then train/val/test are its partitions 0/1/2).
    #[serde(rename = "CelebA_partition")]
    pub celeba_partition: Option<PathBuf>,

    #[serde(rename = "FGnet_data")]
    pub fgnet_data: Option<PathBuf>,
    #[serde(rename = "FGnet_label")]
    pub fgnet_label: Option<PathBuf>,

    #[serde(rename = "RAF_data")]
    pub raf_data: Option<PathBuf>,
    #[serde(rename = "RAF_label")]
    pub raf_label: Option<PathBuf>,
    #[serde(rename = "AffectNet_data")]
    pub affectnet_data: Option<PathBuf>,
    #[serde(rename = "AffectNet_label")]
    pub affectnet_label: Option<PathBuf>,

    #[serde(rename = "LAP_train_data")]
    pub lap_train_data: Option<PathBuf>,
    #[serde(rename = "LAP_train_label")]
    pub lap_train_label: Option<PathBuf>,
    #[serde(rename = "LAP_test_data")]
    pub lap_test_data: Option<PathBuf>,
    #[serde(rename = "LAP_test_label")]
    pub lap_test_label: Option<PathBuf>,
    #[serde(rename = "CLAP_train_data")]
    pub clap_train_data: Option<PathBuf>,
    #[serde(rename = "CLAP_train_label")]
    pub clap_train_label: Option<PathBuf>,
    #[serde(rename = "CLAP_val_data")]
    pub clap_val_data: Option<PathBuf>,
    #[serde(rename = "CLAP_val_label")]
    pub clap_val_label: Option<PathBuf>,
    #[serde(rename = "CLAP_test_data")]
    pub clap_test_data: Option<PathBuf>,
    #[serde(rename = "CLAP_test_label")]
    pub clap_test_label: Option<PathBuf>,

    pub img_size: u32,
    pub recognition_bz: u64,
    pub age_gender_bz: u64,
    #[serde(rename = "CelebA_bz")]
    pub celeba_bz: u64,
    pub expression_bz: u64,
    /// Seeds the CelebA row selection (`random.seed(config.seed)`); the trainer's seed too.
    pub seed: i64,

    /// Age-gender composition; official: Adience to 0.25 N, MORPH to 0.25 N, WIKI and IMDB to N.
    pub age_gender_phases: Vec<Phase>,
    /// Expression composition; official: AffectNet to 0.5 N, RAF-DB train rows to N.
    pub expression_phases: Vec<Phase>,
    /// Probability that a CelebA train row is kept on each pass (official 0.5).
    #[serde(rename = "CelebA_keep_probability")]
    pub celeba_keep_probability: f64,

    /// Fraction of a dataset's images that may fail to decode (each skipped with a warning)
    /// before loading stops with an error.
    pub max_bad_image_fraction: f64,
    /// Images larger than this are refused before decoding.
    pub decode_limits: DecodeLimits,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            rec: None,
            num_classes: 85742,
            num_image: 5_822_653,
            val_targets: ["lfw", "cfp_fp", "agedb_30", "calfw", "cplfw"]
                .map(String::from)
                .to_vec(),
            age_gender_data_path: None,
            age_gender_data_list: ["IMDB", "WIKI", "Adience", "MORPH"]
                .map(String::from)
                .to_vec(),
            celeba_train_data: None,
            celeba_train_label: None,
            celeba_val_data: None,
            celeba_val_label: None,
            celeba_test_data: None,
            celeba_test_label: None,
            celeba_partition: None,
            fgnet_data: None,
            fgnet_label: None,
            raf_data: None,
            raf_label: None,
            affectnet_data: None,
            affectnet_label: None,
            lap_train_data: None,
            lap_train_label: None,
            lap_test_data: None,
            lap_test_label: None,
            clap_train_data: None,
            clap_train_label: None,
            clap_val_data: None,
            clap_val_label: None,
            clap_test_data: None,
            clap_test_label: None,
            img_size: 112,
            recognition_bz: 32,
            age_gender_bz: 32,
            celeba_bz: 32,
            expression_bz: 32,
            seed: 2048,
            age_gender_phases: vec![
                Phase::share(&["Adience"], 0.25),
                Phase::share(&["MORPH"], 0.25),
                Phase::fill(&["WIKI", "IMDB"]),
            ],
            expression_phases: vec![Phase::share(&["AffectNet"], 0.5), Phase::fill(&["RAF"])],
            celeba_keep_probability: 0.5,
            max_bad_image_fraction: 0.001,
            decode_limits: DecodeLimits::default(),
        }
    }
}

/// The expression sources [`DataConfig::expression_phases`] may name.
pub const EXPRESSION_SOURCES: [&str; 2] = ["AffectNet", "RAF"];

impl DataConfig {
    /// The top-level YAML keys this struct owns.
    pub fn keys() -> Vec<String> {
        match serde_yaml::to_value(DataConfig::default()) {
            Ok(serde_yaml::Value::Mapping(map)) => map
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Reads the data keys of a YAML config file (other top-level keys are left alone).
    pub fn from_yaml_file(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            DataError::Yaml { source, .. } => DataError::Yaml {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })
    }

    /// Reads the data keys of a YAML document whose top level is a map.
    pub fn from_yaml_str(text: &str) -> Result<Self, DataError> {
        let yaml_err = |source| DataError::Yaml {
            path: PathBuf::from("<config>"),
            source,
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_err)?;
        let map = match value {
            serde_yaml::Value::Mapping(map) => map,
            serde_yaml::Value::Null => serde_yaml::Mapping::new(),
            _ => {
                return Err(DataError::Config {
                    message: "the config's top level must be a map of keys".into(),
                })
            }
        };
        let keys = Self::keys();
        let data: serde_yaml::Mapping = map
            .into_iter()
            .filter(|(k, _)| k.as_str().is_some_and(|k| keys.iter().any(|d| d == k)))
            .collect();
        let config: DataConfig =
            serde_yaml::from_value(serde_yaml::Value::Mapping(data)).map_err(yaml_err)?;
        config.validate()?;
        Ok(config)
    }

    /// `num_image // recognition_bz * stream_bz`: samples per epoch of an analysis stream.
    pub fn stream_samples(&self, stream_bz: u64) -> u64 {
        if self.recognition_bz == 0 {
            return 0;
        }
        self.num_image / self.recognition_bz * stream_bz
    }

    /// Checks what serde cannot: batch sizes, shares, phases.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |message: String| Err(DataError::Config { message });
        if self.recognition_bz == 0 {
            return bad("recognition_bz must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.celeba_keep_probability) {
            return bad(format!(
                "CelebA_keep_probability {} is outside [0, 1]",
                self.celeba_keep_probability
            ));
        }
        if !(0.0..=1.0).contains(&self.max_bad_image_fraction) {
            return bad(format!(
                "max_bad_image_fraction {} is outside [0, 1]",
                self.max_bad_image_fraction
            ));
        }
        validate_phases("age_gender_phases", &self.age_gender_phases, None)?;
        validate_phases(
            "expression_phases",
            &self.expression_phases,
            Some(&EXPRESSION_SOURCES),
        )?;
        Ok(())
    }
}

fn validate_phases(key: &str, phases: &[Phase], known: Option<&[&str]>) -> Result<(), DataError> {
    let bad = |message: String| {
        Err(DataError::Config {
            message: format!("{key}: {message}"),
        })
    };
    let Some((last, shared)) = phases.split_last() else {
        return bad("no phases".into());
    };
    if last.share.is_some() {
        return bad("the last phase must have no share (it fills the stream to N)".into());
    }
    let mut total = 0.0;
    for phase in shared {
        let Some(share) = phase.share else {
            return bad("only the last phase may go without a share".into());
        };
        if !(0.0..=1.0).contains(&share) {
            return bad(format!("share {share} is outside [0, 1]"));
        }
        total += share;
    }
    if total > 1.0 {
        return bad(format!("shares add up to {total}, over 1"));
    }
    for phase in phases {
        if phase.sources.is_empty() {
            return bad("a phase lists no sources".into());
        }
        if let Some(known) = known {
            if let Some(s) = phase.sources.iter().find(|s| !known.contains(&s.as_str())) {
                return bad(format!("unknown source {s:?} (known: {known:?})"));
            }
        }
    }
    Ok(())
}
