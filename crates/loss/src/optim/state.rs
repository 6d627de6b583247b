//! Checked reading of named state tensors (optimizer checkpoints).

use std::collections::{HashMap, HashSet};

use tch::{Kind, Tensor};

use crate::error::{LossError, Result};

/// Looks up state entries by name, checks them against what the owner expects, and reports
/// entries nobody asked for.
pub(crate) struct StateReader<'a> {
    entries: HashMap<&'a str, &'a Tensor>,
    used: HashSet<String>,
}

impl<'a> StateReader<'a> {
    pub(crate) fn new(state: &'a [(String, Tensor)]) -> Result<Self> {
        let mut entries = HashMap::new();
        for (name, tensor) in state {
            if entries.insert(name.as_str(), tensor).is_some() {
                return Err(LossError::StateUnexpected {
                    name: format!("{name} (given twice)"),
                });
            }
        }
        Ok(Self {
            entries,
            used: HashSet::new(),
        })
    }

    fn get(&mut self, name: &str) -> Result<&'a Tensor> {
        let tensor = self
            .entries
            .get(name)
            .copied()
            .ok_or_else(|| LossError::StateMissing { name: name.into() })?;
        self.used.insert(name.to_owned());
        Ok(tensor)
    }

    /// The entry must exist with `like`'s shape and kind.
    pub(crate) fn check_like(&mut self, name: &str, like: &Tensor) -> Result<()> {
        let tensor = self.get(name)?;
        if tensor.size() != like.size() {
            return Err(LossError::StateShape {
                name: name.into(),
                expected: like.size(),
                found: tensor.size(),
            });
        }
        if tensor.kind() != like.kind() {
            return Err(LossError::StateKind {
                name: name.into(),
                expected: like.kind(),
                found: tensor.kind(),
            });
        }
        Ok(())
    }

    /// The entry must be a 0-dimensional tensor of `kind`.
    pub(crate) fn check_scalar(&mut self, name: &str, kind: Kind) -> Result<()> {
        let tensor = self.get(name)?;
        if !tensor.size().is_empty() {
            return Err(LossError::StateShape {
                name: name.into(),
                expected: vec![],
                found: tensor.size(),
            });
        }
        if tensor.kind() != kind {
            return Err(LossError::StateKind {
                name: name.into(),
                expected: kind,
                found: tensor.kind(),
            });
        }
        Ok(())
    }

    pub(crate) fn check_no_extra(&self) -> Result<()> {
        let mut extra: Vec<&&str> = self
            .entries
            .keys()
            .filter(|k| !self.used.contains(**k))
            .collect();
        extra.sort();
        match extra.first() {
            Some(name) => Err(LossError::StateUnexpected {
                name: (**name).into(),
            }),
            None => Ok(()),
        }
    }

    /// Copies a checked entry into `destination` (any device).
    pub(crate) fn copy_into(&mut self, name: &str, destination: &mut Tensor) -> Result<()> {
        let source = self.get(name)?;
        tch::no_grad(|| destination.f_copy_(source))?;
        Ok(())
    }

    pub(crate) fn int64(&mut self, name: &str) -> Result<i64> {
        Ok(self.get(name)?.f_int64_value(&[])?)
    }
}

/// One learning rate per group.
pub(crate) fn check_lr_count(lrs: &[f64], groups: usize) -> Result<()> {
    if lrs.len() != groups {
        return Err(LossError::LearningRateCount {
            count: lrs.len(),
            groups,
        });
    }
    Ok(())
}
