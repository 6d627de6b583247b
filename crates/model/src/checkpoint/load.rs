//! Copying named tensors into a VarStore, strictly or partially, with a report of what did
//! not fit.

use std::collections::HashSet;
use std::fmt;

use tch::{nn, Tensor};

use super::dtype::{convertible, kind_name};
use super::CheckpointError;

/// A checkpoint tensor whose shape or element type does not fit the model's variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: String,
    pub expected_shape: Vec<i64>,
    pub expected_dtype: String,
    pub found_shape: Vec<i64>,
    pub found_dtype: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {:?} {}, found {:?} {}",
            self.key, self.expected_shape, self.expected_dtype, self.found_shape, self.found_dtype
        )
    }
}

/// What a load did. Keys are full VarStore names (`backbone.patch_embed.proj.weight`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Copied into the model, in checkpoint order.
    pub loaded: Vec<String>,
    /// Among `loaded`, those whose element type was converted (e.g. float16 -> float32).
    pub converted: Vec<String>,
    /// Model variables (in the loaded scope) the checkpoint lacks; sorted.
    pub missing: Vec<String>,
    /// Checkpoint tensors the model has no variable for, in checkpoint order.
    pub unexpected: Vec<String>,
    /// Present in both but with a different shape or an incompatible type; not copied.
    pub mismatched: Vec<Mismatch>,
}

impl LoadReport {
    /// True when every variable in scope was loaded and nothing was left over.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

/// Message listing at most a few names of a long list.
pub(crate) fn describe_incompatible(
    missing: &[String],
    unexpected: &[String],
    mismatched: &[Mismatch],
) -> String {
    fn list<T: fmt::Display>(items: &[T]) -> String {
        const SHOWN: usize = 10;
        let mut text = items
            .iter()
            .take(SHOWN)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if items.len() > SHOWN {
            text.push_str(&format!(", ... and {} more", items.len() - SHOWN));
        }
        text
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing keys: {}", missing.len(), list(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected keys: {}",
            unexpected.len(),
            list(unexpected)
        ));
    }
    if !mismatched.is_empty() {
        parts.push(format!(
            "{} mis-shaped keys: {}",
            mismatched.len(),
            list(mismatched)
        ));
    }
    format!("checkpoint does not fit the model: {}", parts.join("; "))
}

/// Which model variables a load is expected to cover.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    All,
    /// Only variables whose names start with one of these prefixes (`backbone.`).
    Prefixes(&'a [String]),
}

impl Scope<'_> {
    fn contains(&self, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Prefixes(prefixes) => prefixes.iter().any(|p| name.starts_with(p.as_str())),
        }
    }
}

/// Copies `tensors` into the matching variables of `vs` under `no_grad`, converting the
/// element type where allowed. `strict`: any missing, unexpected or mis-shaped key is an
/// error and nothing is copied; otherwise those keys are skipped and reported.
pub(crate) fn load_tensors(
    vs: &mut nn::VarStore,
    tensors: Vec<(String, Tensor)>,
    scope: Scope<'_>,
    strict: bool,
) -> Result<LoadReport, CheckpointError> {
    let variables = vs.variables();
    let mut report = LoadReport::default();
    let mut copies = Vec::new();
    let mut seen = HashSet::new();
    for (key, source) in tensors {
        seen.insert(key.clone());
        let Some(target) = variables.get(&key) else {
            report.unexpected.push(key);
            continue;
        };
        let (expected_kind, found_kind) = (target.kind(), source.kind());
        if target.size() != source.size() || !convertible(found_kind, expected_kind) {
            report.mismatched.push(Mismatch {
                expected_shape: target.size(),
                expected_dtype: kind_name(expected_kind),
                found_shape: source.size(),
                found_dtype: kind_name(found_kind),
                key,
            });
            continue;
        }
        if expected_kind != found_kind {
            report.converted.push(key.clone());
        }
        report.loaded.push(key);
        copies.push((target.shallow_clone(), source));
    }
    report.missing = variables
        .keys()
        .filter(|name| scope.contains(name) && !seen.contains(*name))
        .cloned()
        .collect();
    report.missing.sort();
    if strict && !report.is_complete() {
        return Err(CheckpointError::Incompatible {
            missing: report.missing,
            unexpected: report.unexpected,
            mismatched: report.mismatched,
        });
    }
    tch::no_grad(|| {
        copies
            .into_iter()
            .try_for_each(|(mut target, source)| target.f_copy_(&source))
    })?;
    Ok(report)
}
