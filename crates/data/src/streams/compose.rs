//! Fixed compositions of the analysis streams, step for step as the official loops build
//! them (`analysis/datasets.py`): sources cycled in a fixed order, one full pass at a time,
//! each row checked against the phase's stop condition right after it is visited.

use std::path::Path;

use super::config::{DataConfig, Phase};
use super::py_random::PyRandom;
use crate::error::DataError;
use crate::formats::affectnet::read_affectnet;
use crate::formats::age_gender::{read_age_gender_source, AgeGender};
use crate::formats::celeba::{read_celeba_split, read_swinface_label, Attributes, Partition};
use crate::formats::list::LabelList;
use crate::formats::raf::{read_raf, RafSplit};

/// One sample of a composed stream: entry `entry` of source `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    pub source: u16,
    pub entry: u32,
}

/// A label list under the name the config gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSource<L> {
    pub name: String,
    pub list: LabelList<L>,
}

/// A stream's epoch: the sources and the samples drawn from them, in order (duplicates are
/// the repetitions the composition makes).
#[derive(Debug, Clone, PartialEq)]
pub struct ComposedStream<L> {
    pub stream: &'static str,
    pub sources: Vec<NamedSource<L>>,
    pub samples: Vec<SampleRef>,
}

impl<L> ComposedStream<L> {
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Image path and label of sample `i`.
    pub fn get(&self, i: usize) -> Option<(&Path, &L)> {
        let r = self.samples.get(i)?;
        let entry = self
            .sources
            .get(usize::from(r.source))?
            .list
            .entries
            .get(r.entry as usize)?;
        Some((&entry.image, &entry.label))
    }

    /// How many samples each source contributes, in source order.
    pub fn counts_per_source(&self) -> Vec<(&str, usize)> {
        let mut counts = vec![0usize; self.sources.len()];
        for r in &self.samples {
            counts[usize::from(r.source)] += 1;
        }
        self.sources
            .iter()
            .zip(counts)
            .map(|(s, c)| (s.name.as_str(), c))
            .collect()
    }
}

/// A phase with its sources resolved to indices into the stream's sources.
struct ResolvedPhase {
    sources: Vec<usize>,
    share: Option<f64>,
}

/// Builds the samples: each phase cycles through its sources until its stop condition holds.
fn compose_phases<L>(
    stream: &'static str,
    sources: &[NamedSource<L>],
    phases: &[ResolvedPhase],
    n: usize,
) -> Result<Vec<SampleRef>, DataError> {
    let err = |message: String| DataError::Composition { stream, message };
    let rows: Vec<Vec<Option<u32>>> = sources.iter().map(|s| s.list.row_entries()).collect();
    let mut samples = Vec::with_capacity(n);
    for phase in phases {
        let names = || {
            phase
                .sources
                .iter()
                .map(|&s| sources[s].name.as_str())
                .collect::<Vec<_>>()
        };
        let mut phase_count = 0usize;
        'cycle: loop {
            let mut appended = false;
            for &s in &phase.sources {
                for row in &rows[s] {
                    if let Some(entry) = row {
                        samples.push(SampleRef {
                            source: s as u16,
                            entry: *entry,
                        });
                        phase_count += 1;
                        appended = true;
                    }
                    let done = match phase.share {
                        // `len(phase_list) >= sample_num * share`, a float comparison.
                        Some(share) => phase_count as f64 >= n as f64 * share,
                        // `len(all) == sample_num`.
                        None => samples.len() == n,
                    };
                    if done {
                        break 'cycle;
                    }
                    if phase.share.is_none() && samples.len() > n {
                        return Err(err(format!(
                            "the phases before {:?} already hold {} samples, more than N = {n}; \
                             the official loop would never stop",
                            names(),
                            samples.len()
                        )));
                    }
                }
            }
            if !appended {
                return Err(err(format!(
                    "sources {:?} have no usable rows, so the phase can never reach its count",
                    names()
                )));
            }
        }
    }
    Ok(samples)
}

fn resolve_phases<L>(
    stream: &'static str,
    phases: &[Phase],
    sources: &[NamedSource<L>],
    enabled: impl Fn(&str) -> bool,
) -> Result<Vec<ResolvedPhase>, DataError> {
    phases
        .iter()
        .map(|phase| {
            let indices: Vec<usize> = phase
                .sources
                .iter()
                .filter(|name| enabled(name))
                .filter_map(|name| sources.iter().position(|s| &s.name == name))
                .collect();
            if indices.is_empty() {
                return Err(DataError::Composition {
                    stream,
                    message: format!(
                        "phase {:?} has no enabled source; remove the phase or enable a source",
                        phase.sources
                    ),
                });
            }
            Ok(ResolvedPhase {
                sources: indices,
                share: phase.share,
            })
        })
        .collect()
}

fn stream_size(stream: &'static str, config: &DataConfig, bz: u64) -> Result<usize, DataError> {
    let n = config.stream_samples(bz);
    if n == 0 {
        return Err(DataError::Composition {
            stream,
            message: format!(
                "num_image // recognition_bz * batch size is 0 ({} // {} * {bz})",
                config.num_image, config.recognition_bz
            ),
        });
    }
    usize::try_from(n).map_err(|_| DataError::Composition {
        stream,
        message: format!("{n} samples do not fit in memory"),
    })
}

fn required<'a>(key: &str, value: &'a Option<std::path::PathBuf>) -> Result<&'a Path, DataError> {
    value.as_deref().ok_or_else(|| DataError::Config {
        message: format!("{key} is not set"),
    })
}

/// The age-gender stream (`AgeGenderDataset`): Adience to 0.25 N, MORPH to 0.25 N, then WIKI
/// and IMDB passes alternately until exactly N, with the official config.
pub fn age_gender_stream(config: &DataConfig) -> Result<ComposedStream<AgeGender>, DataError> {
    const STREAM: &str = "age_gender";
    let n = stream_size(STREAM, config, config.age_gender_bz)?;
    let root = required("age_gender_data_path", &config.age_gender_data_path)?;
    let enabled = |name: &str| config.age_gender_data_list.iter().any(|d| d == name);
    let mut sources: Vec<NamedSource<AgeGender>> = Vec::new();
    for phase in &config.age_gender_phases {
        for name in &phase.sources {
            if enabled(name) && !sources.iter().any(|s| &s.name == name) {
                sources.push(NamedSource {
                    name: name.clone(),
                    list: read_age_gender_source(root, name)?,
                });
            }
        }
    }
    let phases = resolve_phases(STREAM, &config.age_gender_phases, &sources, enabled)?;
    let samples = compose_phases(STREAM, &sources, &phases, n)?;
    Ok(ComposedStream {
        stream: STREAM,
        sources,
        samples,
    })
}

/// The expression stream (`ExpressionDataset`): AffectNet to 0.5 N, then RAF-DB train rows
/// until exactly N, with the official config.
pub fn expression_stream(config: &DataConfig) -> Result<ComposedStream<u8>, DataError> {
    const STREAM: &str = "expression";
    let n = stream_size(STREAM, config, config.expression_bz)?;
    let mut sources: Vec<NamedSource<u8>> = Vec::new();
    for phase in &config.expression_phases {
        for name in &phase.sources {
            if sources.iter().any(|s| &s.name == name) {
                continue;
            }
            let list = match name.as_str() {
                "AffectNet" => read_affectnet(
                    required("AffectNet_label", &config.affectnet_label)?,
                    required("AffectNet_data", &config.affectnet_data)?,
                )?,
                _ => read_raf(
                    required("RAF_label", &config.raf_label)?,
                    required("RAF_data", &config.raf_data)?,
                    RafSplit::Train,
                )?,
            };
            sources.push(NamedSource {
                name: name.clone(),
                list,
            });
        }
    }
    let phases = resolve_phases(STREAM, &config.expression_phases, &sources, |_| true)?;
    let samples = compose_phases(STREAM, &sources, &phases, n)?;
    Ok(ComposedStream {
        stream: STREAM,
        sources,
        samples,
    })
}

/// Which CelebA list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CelebaSplit {
    Train,
    Val,
    Test,
}

/// Reads the CelebA labels of `split`: SwinFace's `label.txt`, or CelebA's own
/// `list_attr_celeba.txt` (recognised by its count line) restricted to the split's partition
/// through `CelebA_partition`.
pub fn celeba_list(
    config: &DataConfig,
    split: CelebaSplit,
) -> Result<LabelList<Attributes>, DataError> {
    let (data, label, data_key, label_key, partition) = match split {
        CelebaSplit::Train => (
            &config.celeba_train_data,
            &config.celeba_train_label,
            "CelebA_train_data",
            "CelebA_train_label",
            Partition::Train,
        ),
        CelebaSplit::Val => (
            &config.celeba_val_data,
            &config.celeba_val_label,
            "CelebA_val_data",
            "CelebA_val_label",
            Partition::Val,
        ),
        CelebaSplit::Test => (
            &config.celeba_test_data,
            &config.celeba_test_label,
            "CelebA_test_data",
            "CelebA_test_label",
            Partition::Test,
        ),
    };
    let label = required(label_key, label)?;
    let data = required(data_key, data)?;
    if is_celeba_attr_file(label)? {
        let partition_file = required("CelebA_partition", &config.celeba_partition)?;
        read_celeba_split(label, partition_file, data, partition)
    } else {
        read_swinface_label(label, data)
    }
}

/// True when the file's first line is a lone count, as in CelebA's `list_attr_celeba.txt`.
fn is_celeba_attr_file(path: &Path) -> Result<bool, DataError> {
    let text = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let first = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let first = String::from_utf8_lossy(first);
    let first = first.trim();
    Ok(!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()))
}

/// The CelebA train stream (`CelebADataset(choose="train")`): under `random.seed(seed)`, each
/// row is kept when `random.random() < p`, passes repeated until exactly N rows are kept.
pub fn celeba_train_stream(config: &DataConfig) -> Result<ComposedStream<Attributes>, DataError> {
    const STREAM: &str = "CelebA";
    let n = stream_size(STREAM, config, config.celeba_bz)?;
    let list = celeba_list(config, CelebaSplit::Train)?;
    let samples = compose_random_keep(
        STREAM,
        &list,
        n,
        config.seed,
        config.celeba_keep_probability,
    )?;
    Ok(ComposedStream {
        stream: STREAM,
        sources: vec![NamedSource {
            name: "CelebA".into(),
            list,
        }],
        samples,
    })
}

fn compose_random_keep<L>(
    stream: &'static str,
    list: &LabelList<L>,
    n: usize,
    seed: i64,
    keep: f64,
) -> Result<Vec<SampleRef>, DataError> {
    let rows = list.row_entries();
    let mut rng = PyRandom::new(i128::from(seed));
    let mut samples = Vec::with_capacity(n);
    loop {
        let mut appended = false;
        for row in &rows {
            if rng.random() < keep {
                // The official loop would fail on a kept blank row; a blank row is skipped.
                if let Some(entry) = row {
                    samples.push(SampleRef {
                        source: 0,
                        entry: *entry,
                    });
                    appended = true;
                }
                if samples.len() == n {
                    return Ok(samples);
                }
            }
        }
        if !appended && (keep <= 0.0 || list.is_empty()) {
            return Err(DataError::Composition {
                stream,
                message: format!(
                    "{} has no rows to keep (keep probability {keep}), the stream can never fill",
                    list.label_file.display()
                ),
            });
        }
    }
}
