//! Training checkpoints: *what* is saved ([`TrainState`] plus the tensors) apart from *when*
//! (the loop) and *which are kept* ([`CheckpointStore::prune`]).
//!
//! A checkpoint is a directory `checkpoints/step_N` (N: the 0-based step just completed):
//! - `model.safetensors`: the model in the native format, loadable by `swinface infer/eval`;
//! - `state.safetensors`: optimizer state, Partial FC centres with their optimizer table and
//!   sampler position, the loss scaler;
//! - `state.json`: step, data position, RNG rule, evaluation trackers, resolved config;
//! - data-parallel runs: `state.rank_R.safetensors`, rank R's Partial FC shard, for every
//!   rank R > 0 (rank 0's shard is in `state.safetensors`). Rank 0 writes everything else.
//!
//! The directory is written under a temporary name, every file fsynced, then renamed into
//! place and the parent fsynced: a checkpoint directory either exists complete or not at all.
//! The best model (by `best_metric`) is kept as `best.safetensors`, one atomic file whose
//! metadata names its step and score.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use swinface_model::checkpoint::{load_native_into, read_native, save_native, save_tensors};

use super::dist::Dist;
use super::learner::Learner;
use super::streams::DataPosition;
use crate::eval::periodic::Trackers;

/// Name of the state file's format, and its version.
pub const STATE_FORMAT: &str = "swinface-train-state";
pub const STATE_VERSION: u32 = 1;

const MODEL_FILE: &str = "model.safetensors";
const TENSORS_FILE: &str = "state.safetensors";
const STATE_FILE: &str = "state.json";

/// Rank `rank`'s Partial FC shard in a data-parallel checkpoint.
fn shard_file(rank: usize) -> String {
    format!("state.rank_{rank}.safetensors")
}
const STEP_PREFIX: &str = "step_";
/// Infixes of the hidden directories of a save in progress (`.step_N.partial-PID`) and of
/// the checkpoint it replaces (`.step_N.replaced-PID`).
const PARTIAL_MARK: &str = ".partial-";
const REPLACED_MARK: &str = ".replaced-";

/// The best evaluation so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestRecord {
    pub metric: String,
    pub value: f64,
    pub global_step: u64,
}

/// Everything of a checkpoint that is not a tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: String,
    pub format_version: u32,
    /// The step just completed (0-based, the official `global_step`).
    pub global_step: u64,
    /// The step a resume runs next.
    pub next_step: u64,
    /// Where the data of `next_step` comes from.
    pub data_position: DataPosition,
    pub steps_per_epoch: usize,
    pub world_size: usize,
    pub rank: usize,
    /// Torch's generator is reseeded before every step from (seed, step), so this and the
    /// step are its whole state; data augmentation and Partial FC sampling draw from
    /// counter-based streams keyed the same way.
    pub rng_seed: u64,
    pub rng_rule: String,
    /// Non-finite steps in a row at the time of saving.
    pub nonfinite_in_a_row: u64,
    pub trackers: Trackers,
    pub best: Option<BestRecord>,
    /// The resolved config (YAML) the run trained with.
    pub config: String,
    pub saved_at_unix: u64,
}

/// The checkpoints of one output directory.
pub struct CheckpointStore {
    dir: PathBuf,
    keep: usize,
}

fn sync_dir(dir: &Path) {
    // Directory fsync makes renames durable; not every file system supports it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn step_of(name: &str) -> Option<u64> {
    name.strip_prefix(STEP_PREFIX)?.parse().ok()
}

impl CheckpointStore {
    pub fn new(output: &Path, keep: usize) -> Self {
        Self {
            dir: output.join("checkpoints"),
            keep: keep.max(1),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Cleans up after a save that did not finish: removes half-written directories, and
    /// puts a checkpoint that was being replaced back if its replacement never arrived.
    pub fn remove_partial(&self) -> Result<()> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(hidden) = name.strip_prefix('.') else {
                continue;
            };
            let path = entry.path();
            if hidden.starts_with(STEP_PREFIX) && hidden.contains(PARTIAL_MARK) {
                fs::remove_dir_all(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            } else if let Some((step_name, _)) = hidden.split_once(REPLACED_MARK) {
                let original = self.dir.join(step_name);
                if original.join(STATE_FILE).is_file() {
                    fs::remove_dir_all(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                } else {
                    if original.exists() {
                        fs::remove_dir_all(&original)
                            .with_context(|| format!("cannot remove {}", original.display()))?;
                    }
                    fs::rename(&path, &original)
                        .with_context(|| format!("cannot restore {}", original.display()))?;
                }
            }
        }
        sync_dir(&self.dir);
        Ok(())
    }

    /// Complete checkpoints, oldest first.
    pub fn list(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut found = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(step) = step_of(&name) {
                if entry.path().join(STATE_FILE).is_file() {
                    found.push((step, entry.path()));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn latest(&self) -> Result<Option<PathBuf>> {
        Ok(self.list()?.pop().map(|(_, p)| p))
    }

    /// Writes checkpoint `state.global_step` and prunes old ones; returns its directory.
    /// Every rank calls it: rank 0 prepares the temporary directory, each rank writes its
    /// part into it, and rank 0 moves it into place once every part is there.
    pub fn save(&self, learner: &Learner, state: &TrainState, dist: &Dist) -> Result<PathBuf> {
        let name = format!("{STEP_PREFIX}{}", state.global_step);
        let target = self.dir.join(&name);
        let temp = self
            .dir
            .join(format!(".{name}{PARTIAL_MARK}{}", dist.run_id()));
        let prepared = if dist.is_main() {
            (|| -> Result<()> {
                fs::create_dir_all(&self.dir)
                    .with_context(|| format!("cannot create {}", self.dir.display()))?;
                if temp.exists() {
                    fs::remove_dir_all(&temp).ok();
                }
                fs::create_dir(&temp).with_context(|| format!("cannot create {}", temp.display()))
            })()
        } else {
            Ok(())
        };
        dist.all_ok("preparing the checkpoint", prepared)?;
        let written = if dist.is_main() {
            self.write_main(learner, state, &temp)
        } else {
            let mut meta = BTreeMap::new();
            meta.insert("global_step".to_owned(), state.global_step.to_string());
            meta.insert("rank".to_owned(), dist.rank().to_string());
            save_tensors(
                &temp.join(shard_file(dist.rank())),
                &learner.partial_fc_state(),
                &meta,
            )
            .context("cannot save this rank's Partial FC shard")
        };
        let written = dist.all_ok("writing the checkpoint", written);
        let committed = match written {
            Ok(()) if dist.is_main() => self.commit(&temp, &target, &name),
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        };
        if committed.is_err() && dist.is_main() {
            let _ = fs::remove_dir_all(&temp);
        }
        let committed = committed.map_err(|e| {
            e.context(format!(
                "checkpoint {} was not written (earlier checkpoints are untouched)",
                target.display()
            ))
        });
        dist.all_ok("saving the checkpoint", committed)?;
        if dist.is_main() {
            self.prune()?;
        }
        Ok(target)
    }

    /// Rank 0's files of a checkpoint, into `temp`.
    fn write_main(&self, learner: &Learner, state: &TrainState, temp: &Path) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert("global_step".to_owned(), state.global_step.to_string());
        save_native(&temp.join(MODEL_FILE), &learner.vs, &meta).context("cannot save the model")?;
        save_tensors(&temp.join(TENSORS_FILE), &learner.state_tensors(), &meta)
            .context("cannot save the training state")?;
        let json = serde_json::to_vec_pretty(state)?;
        write_synced(&temp.join(STATE_FILE), &json)?;
        Ok(())
    }

    /// Moves the complete `temp` into place as `target`.
    fn commit(&self, temp: &Path, target: &Path, name: &str) -> Result<()> {
        sync_dir(temp);
        // A rerun of the same step replaces its checkpoint: set the old one aside first, so
        // that a crash between the renames leaves it for `remove_partial` to put back.
        let replaced = self
            .dir
            .join(format!(".{name}{REPLACED_MARK}{}", std::process::id()));
        let replacing = target.exists();
        if replacing {
            fs::rename(target, &replaced)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        fs::rename(temp, target)
            .with_context(|| format!("cannot move the checkpoint to {}", target.display()))?;
        sync_dir(&self.dir);
        if replacing {
            fs::remove_dir_all(&replaced)
                .with_context(|| format!("cannot remove {}", replaced.display()))?;
        }
        Ok(())
    }

    /// Deletes all but the newest `keep` checkpoints.
    pub fn prune(&self) -> Result<()> {
        let all = self.list()?;
        let excess = all.len().saturating_sub(self.keep);
        for (_, path) in all.into_iter().take(excess) {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes the best model to `best.safetensors` beside the checkpoints, atomically.
    pub fn save_best(
        &self,
        output: &Path,
        learner: &Learner,
        best: &BestRecord,
    ) -> Result<PathBuf> {
        let path = output.join("best.safetensors");
        let mut meta = BTreeMap::new();
        meta.insert("global_step".to_owned(), best.global_step.to_string());
        meta.insert("best_metric".to_owned(), best.metric.clone());
        meta.insert("best_value".to_owned(), best.value.to_string());
        save_native(&path, &learner.vs, &meta).context("cannot save the best model")?;
        Ok(path)
    }
}

/// A checkpoint given by the user: a `step_N` directory or its `state.json`.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let dir = if path.is_file() && path.file_name().is_some_and(|n| n == STATE_FILE) {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    };
    if !dir.join(STATE_FILE).is_file() {
        bail!(
            "{} is not a training checkpoint (a checkpoints/step_N directory with {STATE_FILE})",
            path.display()
        );
    }
    Ok(dir)
}

/// Reads `dir`'s `state.json`.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let state_path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&state_path)
        .with_context(|| format!("cannot read {}", state_path.display()))?;
    let state: TrainState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a training state", state_path.display()))?;
    if state.format != STATE_FORMAT || state.format_version > STATE_VERSION {
        bail!(
            "{}: format {} version {}, this build reads {STATE_FORMAT} up to {STATE_VERSION}",
            state_path.display(),
            state.format,
            state.format_version
        );
    }
    Ok(state)
}

/// Loads `dir`'s tensors into `learner`: the model and the training state, with rank
/// `rank`'s Partial FC shard in place of rank 0's.
pub fn load_tensors(dir: &Path, learner: &mut Learner, rank: usize) -> Result<()> {
    let model_path = dir.join(MODEL_FILE);
    load_native_into(&model_path, &mut learner.vs)
        .with_context(|| format!("cannot load {}", model_path.display()))?;
    let tensors_path = dir.join(TENSORS_FILE);
    let (mut tensors, _) = read_native(&tensors_path)
        .with_context(|| format!("cannot read {}", tensors_path.display()))?;
    if rank > 0 {
        let shard_path = dir.join(shard_file(rank));
        let (shard, _) = read_native(&shard_path)
            .with_context(|| format!("cannot read rank {rank}'s shard {}", shard_path.display()))?;
        tensors.retain(|(name, _)| !name.starts_with("partial_fc."));
        tensors.extend(shard);
    }
    learner
        .load_state(tensors)
        .with_context(|| format!("cannot restore {}", tensors_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_checkpoint(dir: &Path, tag: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(STATE_FILE), tag).unwrap();
    }

    #[test]
    fn cleanup_removes_partial_saves_and_restores_an_interrupted_replacement() {
        let out = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(out.path(), 3);
        let dir = store.dir().to_path_buf();
        // Killed while writing step 2: only a partial directory.
        fake_checkpoint(&dir.join(".step_2.partial-11"), "half");
        // Killed between setting step 4 aside and renaming its replacement in.
        fake_checkpoint(&dir.join(".step_4.replaced-12"), "old 4");
        fake_checkpoint(&dir.join(".step_4.partial-12"), "new 4");
        // Killed after the replacement arrived, before the old copy was removed.
        fake_checkpoint(&dir.join(".step_6.replaced-13"), "old 6");
        fake_checkpoint(&dir.join("step_6"), "new 6");

        store.remove_partial().unwrap();
        let steps: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(steps, [4, 6]);
        let tag = |name: &str| fs::read_to_string(dir.join(name).join(STATE_FILE)).unwrap();
        assert_eq!(tag("step_4"), "old 4");
        assert_eq!(tag("step_6"), "new 6");
        let left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
