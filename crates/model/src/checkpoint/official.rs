//! The released SwinFace checkpoint format (`checkpoint_step_79999_gpu_0.pt`): `torch.save`
//! (zip, pickle protocol 2) of a dict holding `state_dict_backbone`, `state_dict_fam`,
//! `state_dict_tss` and `state_dict_om` (keys without the `backbone.`/... prefix) and, from
//! the training loop, extras such as `state_optimizer` and `global_step`.
//!
//! Read and written without Python: the pickle is decoded by `swinface_pickle` with an
//! allow-list of globals and never runs code.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

use swinface_pickle::{read_pickle, write_pickle, AllowList, Protocol, Value};
use tch::{nn, Tensor};

use super::atomic::write_atomically;
use super::dtype::{kind_name, tensor_bytes};
use super::load::{load_tensors, LoadReport, Scope};
use super::torch_tensor::{is_tensor, parse_tensor, tensor_value, StorageRef};
use super::torch_zip::{write_archive, TorchArchive};
use super::CheckpointError;

/// The sections holding the SwinFace model, in the official module order.
pub const MODEL_SECTIONS: [&str; 4] = [
    "state_dict_backbone",
    "state_dict_fam",
    "state_dict_tss",
    "state_dict_om",
];

const SECTION_TAG: &str = "state_dict_";

/// A decoded official checkpoint.
#[derive(Debug)]
pub struct OfficialCheckpoint {
    /// Each `state_dict_*` entry (e.g. `"state_dict_backbone"`) with its tensors under their
    /// un-prefixed keys, in file order. A file that is one flat state dict appears as a single
    /// section named `""` with the keys as they are.
    pub state_dicts: Vec<(String, Vec<(String, Tensor)>)>,
    /// Every other top-level entry (`global_step`, `state_optimizer`, ...), undecoded: tensors
    /// inside them stay as their `_rebuild_tensor_v2` values and their storages are not read.
    pub extras: Vec<(String, Value)>,
}

impl OfficialCheckpoint {
    /// The tensors of section `name`.
    pub fn section(&self, name: &str) -> Option<&[(String, Tensor)]> {
        self.state_dicts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_slice())
    }

    /// An extra entry by name.
    pub fn extra(&self, name: &str) -> Option<&Value> {
        self.extras.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All section tensors under their full model names (`backbone.` + key).
    pub fn into_full_keys(self) -> Vec<(String, Tensor)> {
        self.state_dicts
            .into_iter()
            .flat_map(|(section, tensors)| {
                let prefix = section_prefix(&section).unwrap_or_default();
                tensors
                    .into_iter()
                    .map(move |(key, t)| (format!("{prefix}{key}"), t))
            })
            .collect()
    }
}

/// The variable-name prefix of a section: `state_dict_backbone` -> `backbone.`, the flat
/// section `""` -> `""`; `None` for names that are not sections.
pub fn section_prefix(section: &str) -> Option<String> {
    if section.is_empty() {
        return Some(String::new());
    }
    let head = section.strip_prefix(SECTION_TAG)?;
    (!head.is_empty()).then(|| format!("{head}."))
}

/// Reads every section (tensors on the CPU, in the file's dtypes) and the extras.
pub fn read_official(path: &Path) -> Result<OfficialCheckpoint, CheckpointError> {
    read_sections(path, &|_| true)
}

/// Loads the four model sections into `vs` (variables named by full key, e.g.
/// `backbone.layers.0.blocks.1.attn.qkv.weight`). Strict: a variable the checkpoint lacks,
/// a checkpoint key the model lacks, or a tensor of another shape is an error naming each,
/// and then nothing is copied. Float16/bfloat16 tensors are converted to the variable's type.
/// Other sections (`state_dict_softmax_fc`, ...) are ignored.
pub fn load_official_into(
    path: &Path,
    vs: &mut nn::VarStore,
) -> Result<LoadReport, CheckpointError> {
    let checkpoint = read_sections(path, &|s| MODEL_SECTIONS.contains(&s))?;
    load_tensors(vs, checkpoint.into_full_keys(), Scope::All, true)
}

/// Loads only `sections` (e.g. `&["state_dict_backbone"]` from a recognition-pretrained
/// checkpoint) like PyTorch's `strict=False`: keys the model lacks are skipped, mis-shaped
/// ones too, and the report lists them with the model variables under those sections'
/// prefixes that stayed unloaded.
pub fn load_partial(
    path: &Path,
    vs: &mut nn::VarStore,
    sections: &[&str],
) -> Result<LoadReport, CheckpointError> {
    let checkpoint = read_sections(path, &|s| sections.contains(&s))?;
    let prefixes: Vec<String> = sections.iter().filter_map(|s| section_prefix(s)).collect();
    load_tensors(
        vs,
        checkpoint.into_full_keys(),
        Scope::Prefixes(&prefixes),
        false,
    )
}

/// Takes apart a dict or `OrderedDict` value without copying.
fn into_dict_items(value: Value) -> Result<Vec<(Value, Value)>, Value> {
    if value.dict_items().is_none() {
        return Err(value);
    }
    match value {
        Value::Dict(items) => Ok(items),
        Value::Object(object) => Ok(object.dict_items),
        other => Err(other),
    }
}

/// Reads the sections for which `wanted` is true (a flat state dict is always read).
fn read_sections(
    path: &Path,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<OfficialCheckpoint, CheckpointError> {
    let mut archive = TorchArchive::open(path)?;
    archive.check_byteorder()?;
    let root = {
        let bytes = archive.pickle()?;
        read_pickle(&bytes, &AllowList::torch_checkpoint()).map_err(|source| {
            CheckpointError::Pickle {
                path: path.to_owned(),
                entry: "data.pkl".into(),
                source,
            }
        })?
    };
    let structure = |at: &str, expected: &str, found: &str| CheckpointError::Structure {
        path: path.to_owned(),
        at: at.to_owned(),
        expected: expected.to_owned(),
        found: found.to_owned(),
    };
    let items = into_dict_items(root)
        .map_err(|v| structure("data.pkl", "a dict at the top level", v.kind_name()))?;
    let mut rebuilder = Rebuilder {
        archive,
        storages: HashMap::new(),
    };
    if !items.is_empty() && items.iter().all(|(_, v)| is_tensor(v)) {
        let tensors = rebuilder.section("", items)?;
        return Ok(OfficialCheckpoint {
            state_dicts: vec![(String::new(), tensors)],
            extras: Vec::new(),
        });
    }
    let mut checkpoint = OfficialCheckpoint {
        state_dicts: Vec::new(),
        extras: Vec::new(),
    };
    for (key, value) in items {
        let Value::Str(name) = key else {
            return Err(structure("data.pkl", "string keys", key.kind_name()));
        };
        if name.starts_with(SECTION_TAG) && value.dict_items().is_some() {
            if wanted(&name) {
                let entries = into_dict_items(value).unwrap_or_default();
                let tensors = rebuilder.section(&name, entries)?;
                checkpoint.state_dicts.push((name, tensors));
            }
        } else {
            checkpoint.extras.push((name, value));
        }
    }
    Ok(checkpoint)
}

/// Rebuilds tensors from their pickle descriptions, reading each storage once.
struct Rebuilder {
    archive: TorchArchive,
    /// Storages read so far (views of one storage share it).
    storages: HashMap<String, (StorageRef, Tensor)>,
}

impl Rebuilder {
    fn section(
        &mut self,
        section: &str,
        entries: Vec<(Value, Value)>,
    ) -> Result<Vec<(String, Tensor)>, CheckpointError> {
        entries
            .into_iter()
            .map(|(key, value)| {
                let Value::Str(key) = key else {
                    return Err(CheckpointError::Structure {
                        path: self.archive.path().to_owned(),
                        at: section.to_owned(),
                        expected: "string keys".into(),
                        found: key.kind_name().into(),
                    });
                };
                let at = format!("{section}[{key:?}]");
                let tensor = self.tensor(&value, &at)?;
                Ok((key, tensor))
            })
            .collect()
    }

    fn tensor(&mut self, value: &Value, at: &str) -> Result<Tensor, CheckpointError> {
        let path = self.archive.path().to_owned();
        let view = parse_tensor(value).map_err(|u| CheckpointError::Structure {
            path: path.clone(),
            at: at.to_owned(),
            expected: u.expected,
            found: u.found,
        })?;
        let bad = |reason: String| CheckpointError::BadTensor {
            path: path.clone(),
            at: at.to_owned(),
            reason,
        };
        view.validate().map_err(bad)?;
        let storage = self.storage(&view.storage, at)?;
        Ok(view.materialize(&storage)?)
    }

    fn storage(&mut self, wanted: &StorageRef, at: &str) -> Result<Tensor, CheckpointError> {
        if let Some((known, tensor)) = self.storages.get(&wanted.key) {
            if known != wanted {
                return Err(CheckpointError::BadTensor {
                    path: self.archive.path().to_owned(),
                    at: at.to_owned(),
                    reason: format!(
                        "storage {} described as {} x {} and as {} x {}",
                        wanted.key,
                        known.numel,
                        kind_name(known.kind),
                        wanted.numel,
                        kind_name(wanted.kind)
                    ),
                });
            }
            return Ok(tensor.shallow_clone());
        }
        let byte_len = wanted
            .byte_len()
            .ok_or_else(|| CheckpointError::BadTensor {
                path: self.archive.path().to_owned(),
                at: at.to_owned(),
                reason: format!("storage of {} elements overflows", wanted.numel),
            })?;
        let bytes = self.archive.storage(&wanted.key, byte_len, at)?;
        // The cast cannot wrap: numel <= byte_len <= the file's length.
        let numel = wanted.numel as i64;
        let tensor = Tensor::f_from_data_size(&bytes, &[numel], wanted.kind)?;
        self.storages
            .insert(wanted.key.clone(), (wanted.clone(), tensor.shallow_clone()));
        Ok(tensor)
    }
}

/// What [`write_official`] adds to the model's state dicts.
#[derive(Debug, Clone, Default)]
pub struct OfficialWriteOptions {
    /// Other top-level entries (e.g. `("global_step", Value::Int(79999))`), after the sections.
    /// They may not contain tensors.
    pub extras: Vec<(String, Value)>,
    /// Full variable names in the order to write them (the official order is module
    /// definition order); names not listed follow in [`natural_order`].
    pub key_order: Option<Vec<String>>,
}

/// Compares dotted names component by component, numeric components as numbers:
/// `layers.2.x` < `layers.10.x`.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(i), Ok(j)) => i.cmp(&j).then_with(|| x.cmp(y)),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Writes every variable of `vs` as an official checkpoint that `torch.load(path,
/// weights_only=True)` reads: variable `backbone.x.y` becomes key `x.y` of the OrderedDict
/// `state_dict_backbone` (likewise for any `<name>.` prefix); the model sections come first
/// in official order. Written atomically.
pub fn write_official(
    path: &Path,
    vs: &nn::VarStore,
    options: &OfficialWriteOptions,
) -> Result<(), CheckpointError> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let rank: HashMap<&str, usize> = options
        .key_order
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    variables.sort_by(
        |(a, _), (b, _)| match (rank.get(a.as_str()), rank.get(b.as_str())) {
            (Some(i), Some(j)) => i.cmp(j),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => natural_order(a, b),
        },
    );

    // Group by section, model sections first, others alphabetically.
    let mut sections: Vec<(String, Vec<(String, Tensor)>)> = Vec::new();
    for (name, tensor) in variables {
        let (head, rest) = name
            .split_once('.')
            .filter(|(h, r)| !h.is_empty() && !r.is_empty())
            .ok_or_else(|| CheckpointError::UnprefixedVariable(name.clone()))?;
        let section = format!("{SECTION_TAG}{head}");
        let rest = rest.to_owned();
        match sections.iter_mut().find(|(s, _)| *s == section) {
            Some((_, list)) => list.push((rest, tensor)),
            None => sections.push((section, vec![(rest, tensor)])),
        }
    }
    let section_rank = |s: &str| {
        MODEL_SECTIONS
            .iter()
            .position(|m| *m == s)
            .unwrap_or(MODEL_SECTIONS.len())
    };
    sections.sort_by(|(a, _), (b, _)| section_rank(a).cmp(&section_rank(b)).then(a.cmp(b)));

    let mut top = Vec::new();
    let mut tensors = Vec::new();
    for (section, entries) in sections {
        let mut dict = Vec::with_capacity(entries.len());
        for (key, tensor) in entries {
            let storage_key = tensors.len().to_string();
            let value =
                tensor_value(&storage_key, tensor.kind(), &tensor.size()).ok_or_else(|| {
                    CheckpointError::UnsupportedDtype {
                        at: format!("{section}[{key:?}]"),
                        dtype: format!("{:?}", tensor.kind()),
                    }
                })?;
            dict.push((Value::Str(key), value));
            tensors.push(tensor);
        }
        top.push((Value::Str(section), Value::ordered_dict(dict)));
    }
    for (name, value) in &options.extras {
        if top.iter().any(|(k, _)| k.as_str() == Some(name)) {
            return Err(CheckpointError::Structure {
                path: path.to_owned(),
                at: format!("extras[{name:?}]"),
                expected: "a name other than the state_dict_* sections".into(),
                found: "a section name".into(),
            });
        }
        top.push((Value::Str(name.clone()), value.clone()));
    }
    let pickle = write_pickle(&Value::Dict(top), Protocol::V2)?;
    write_atomically(path, |temp| {
        write_archive(temp, &pickle, tensors.iter().map(tensor_bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut keys = vec![
            "om.output_fcs.10.bias",
            "om.output_fcs.2.weight",
            "om.output_fcs.2.bias",
            "backbone.layers.1.x",
            "backbone.layers.0.x",
        ];
        keys.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            keys,
            [
                "backbone.layers.0.x",
                "backbone.layers.1.x",
                "om.output_fcs.2.bias",
                "om.output_fcs.2.weight",
                "om.output_fcs.10.bias",
            ]
        );
    }

    #[test]
    fn section_names_map_to_prefixes() {
        assert_eq!(
            section_prefix("state_dict_backbone").as_deref(),
            Some("backbone.")
        );
        assert_eq!(section_prefix("").as_deref(), Some(""));
        assert_eq!(section_prefix("state_dict_"), None);
        assert_eq!(section_prefix("global_step"), None);
    }
}
