//! Which evaluations to run and their data, read once from the config (the periodic
//! evaluation keeps them loaded, as the official callbacks do).

use std::path::{Path, PathBuf};

use serde::Serialize;
use swinface_data::formats::celeba::Attributes;
use swinface_data::formats::fgnet::{read_fgnet, FgnetSplit};
use swinface_data::formats::lap::{read_lap, ApparentAge};
use swinface_data::formats::raf::{read_raf, RafSplit};
use swinface_data::formats::verification_bin::read_bin;
use swinface_data::formats::LabelList;
use swinface_data::streams::{celeba_list, CelebaSplit, DataConfig};

use super::bins::NamedBin;
use super::config::EvalConfig;
use super::error::EvalError;
use super::ijbc::IjbMeta;

/// The evaluations `--only` selects from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// RAF-DB test: expression accuracy.
    Raf,
    /// CLAP2015 test: apparent age MAE and epsilon-error.
    Clap,
    /// CelebA test: 40 attribute accuracies.
    Celeba,
    /// The `.bin` verification sets named by `val_targets`.
    Verification,
    /// FG-NET: age MAE over all images.
    Fgnet,
    /// IJB-C 1:1 verification.
    Ijbc,
}

impl Task {
    pub const ALL: [Task; 6] = [
        Task::Raf,
        Task::Clap,
        Task::Celeba,
        Task::Verification,
        Task::Fgnet,
        Task::Ijbc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::Raf => "raf",
            Task::Clap => "clap",
            Task::Celeba => "celeba",
            Task::Verification => "verification",
            Task::Fgnet => "fgnet",
            Task::Ijbc => "ijbc",
        }
    }
}

/// The loaded evaluation data; `None` / empty for tasks not run.
#[derive(Debug, Default)]
pub struct EvalData {
    pub raf: Option<LabelList<u8>>,
    pub clap: Option<LabelList<ApparentAge>>,
    pub celeba: Option<LabelList<Attributes>>,
    pub bins: Vec<NamedBin>,
    pub fgnet: Option<LabelList<f32>>,
    pub ijbc: Option<IjbMeta>,
    /// Tasks left out and why (not configured, files missing).
    pub skipped: Vec<(Task, String)>,
}

fn both<'a>(data: &'a Option<PathBuf>, label: &'a Option<PathBuf>) -> Option<(&'a Path, &'a Path)> {
    Some((data.as_deref()?, label.as_deref()?))
}

/// The CLAP2015 test set: `CLAP_test_*`, else the `LAP_test_*` keys the official training
/// script evaluates on.
fn clap_paths(data: &DataConfig) -> Option<(&Path, &Path)> {
    both(&data.clap_test_data, &data.clap_test_label)
        .or_else(|| both(&data.lap_test_data, &data.lap_test_label))
}

impl EvalData {
    /// Loads `tasks`. A task asked for by name (`required`) must be configured; otherwise an
    /// unconfigured one is skipped and listed in [`EvalData::skipped`].
    pub fn load(cfg: &EvalConfig, tasks: &[Task], required: bool) -> Result<Self, EvalError> {
        let mut out = EvalData::default();
        let data = &cfg.data;
        let skip = |skipped: &mut Vec<(Task, String)>, task: Task, why: &str| {
            if required {
                return Err(EvalError::Config {
                    message: format!("--only {}: {why}", task.name()),
                });
            }
            tracing::info!("skipping {}: {why}", task.name());
            skipped.push((task, why.to_owned()));
            Ok(())
        };
        for &task in tasks {
            match task {
                Task::Raf => match both(&data.raf_data, &data.raf_label) {
                    Some((dir, label)) => out.raf = Some(read_raf(label, dir, RafSplit::Test)?),
                    None => skip(&mut out.skipped, task, "RAF_data / RAF_label are not set")?,
                },
                Task::Clap => match clap_paths(data) {
                    Some((dir, label)) => out.clap = Some(read_lap(label, dir)?),
                    None => skip(
                        &mut out.skipped,
                        task,
                        "CLAP_test_data / CLAP_test_label are not set",
                    )?,
                },
                Task::Celeba => {
                    if data.celeba_test_data.is_some() && data.celeba_test_label.is_some() {
                        out.celeba = Some(celeba_list(data, CelebaSplit::Test)?);
                    } else {
                        skip(
                            &mut out.skipped,
                            task,
                            "CelebA_test_data / CelebA_test_label are not set",
                        )?;
                    }
                }
                Task::Fgnet => match both(&data.fgnet_data, &data.fgnet_label) {
                    Some((dir, label)) => {
                        out.fgnet = Some(read_fgnet(label, dir, FgnetSplit::All)?)
                    }
                    None => skip(
                        &mut out.skipped,
                        task,
                        "FGnet_data / FGnet_label are not set",
                    )?,
                },
                Task::Verification => {
                    let Some(rec) = data.rec.as_deref() else {
                        skip(
                            &mut out.skipped,
                            task,
                            "rec (the folder of the .bin files) is not set",
                        )?;
                        continue;
                    };
                    let mut missing = Vec::new();
                    for name in &data.val_targets {
                        let path = rec.join(format!("{name}.bin"));
                        // As the official callback: a target without its file is left out.
                        if path.is_file() {
                            let set = read_bin(&path)?;
                            out.bins.push(NamedBin {
                                name: name.clone(),
                                path,
                                set,
                            });
                        } else {
                            missing.push(path.display().to_string());
                        }
                    }
                    if !missing.is_empty() {
                        tracing::warn!("verification sets not found: {}", missing.join(", "));
                        out.skipped
                            .push((task, format!("not found: {}", missing.join(", "))));
                    }
                    if out.bins.is_empty() && required {
                        return Err(EvalError::Config {
                            message: format!(
                                "--only verification: none of val_targets {:?} exists under {}",
                                data.val_targets,
                                rec.display()
                            ),
                        });
                    }
                }
                Task::Ijbc => match &cfg.settings.ijbc_path {
                    Some(root) => out.ijbc = Some(IjbMeta::read(root, &cfg.settings.ijbc_target)?),
                    None => skip(&mut out.skipped, task, "IJBC_path is not set")?,
                },
            }
        }
        Ok(out)
    }

    /// Images the selected evaluations read (a `.bin` pair counts two).
    pub fn image_count(&self) -> usize {
        self.raf.as_ref().map_or(0, LabelList::len)
            + self.clap.as_ref().map_or(0, LabelList::len)
            + self.celeba.as_ref().map_or(0, LabelList::len)
            + self.bins.iter().map(|b| b.set.images.len()).sum::<usize>()
            + self.fgnet.as_ref().map_or(0, LabelList::len)
            + self.ijbc.as_ref().map_or(0, |m| m.images.len())
    }
}
