//! Initialising the backbone from a recognition-pretrained checkpoint, as the official
//! multi-task stage does with `load_state_dict(..., strict=False)`.

use std::path::Path;

use tch::nn;

use super::load::{load_tensors, LoadReport, Scope};
use super::native::read_native;
use super::official::read_official;
use super::{detect_format, CheckpointError, CheckpointFormat};

/// Prefix of the backbone's variables.
pub const BACKBONE_PREFIX: &str = "backbone.";

/// Loads the backbone part of `path` into `vs`, skipping (and reporting) keys the model
/// lacks or whose shapes differ; everything outside `backbone.` keeps its initial values.
///
/// Accepted: an official or arcface_torch `.pt` with `state_dict_backbone`, a `.pt` that is
/// the backbone's flat state dict (arcface_torch's `model.pt`, keys without the prefix), or
/// a native checkpoint (keys under `backbone.` are used, the rest ignored).
pub fn load_pretrained_backbone(
    path: &Path,
    vs: &mut nn::VarStore,
) -> Result<LoadReport, CheckpointError> {
    let tensors = match detect_format(path)? {
        CheckpointFormat::Official => {
            let checkpoint = read_official(path)?;
            let section = |name: &str| {
                checkpoint
                    .state_dicts
                    .iter()
                    .find(|(s, _)| s == name)
                    .map(|(_, t)| t.iter().map(|(k, v)| (k.clone(), v.shallow_clone())))
            };
            if let Some(backbone) = section("state_dict_backbone") {
                backbone
                    .map(|(k, v)| (format!("{BACKBONE_PREFIX}{k}"), v))
                    .collect()
            } else if let Some(flat) = section("") {
                flat.map(|(k, v)| {
                    let key = if k.starts_with(BACKBONE_PREFIX) {
                        k
                    } else {
                        format!("{BACKBONE_PREFIX}{k}")
                    };
                    (key, v)
                })
                .collect()
            } else {
                return Err(CheckpointError::Metadata {
                    path: path.to_owned(),
                    reason: "no state_dict_backbone and no flat state dict to take the \
                             backbone from"
                        .into(),
                });
            }
        }
        CheckpointFormat::Native => read_native(path)?
            .0
            .into_iter()
            .filter(|(k, _)| k.starts_with(BACKBONE_PREFIX))
            .collect::<Vec<_>>(),
    };
    let prefixes = [BACKBONE_PREFIX.to_owned()];
    load_tensors(vs, tensors, Scope::Prefixes(&prefixes), false)
}
