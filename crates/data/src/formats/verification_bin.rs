//! insightface verification sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, `calfw.bin`,
//! `cplfw.bin`): a pickle of `(list of encoded images, list of bools)`, image `2i` and `2i+1`
//! forming pair `i`. Images are `bytes`, or `str` in files written by Python 2 (read here as
//! latin-1, i.e. one byte per character). Protocols 2 to 4; no global but the two that
//! Python 3 uses to pickle `bytes` in protocol 2 is accepted, and nothing is ever called.

use std::path::Path;

use swinface_pickle::{read_pickle, write_pickle, AllowList, Protocol, Value};

use super::atomic::write_atomic;
use crate::error::DataError;

/// A verification set: `images.len() == 2 * issame.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationSet {
    /// Encoded images (JPEG/PNG bytes), two per pair.
    pub images: Vec<Vec<u8>>,
    /// Whether pair `i` (images `2i`, `2i+1`) shows one person.
    pub issame: Vec<bool>,
}

impl VerificationSet {
    pub fn pairs(&self) -> usize {
        self.issame.len()
    }
}

/// Reads a `.bin` file. As insightface's `load_bin`, only the first `2 * len(issame)` images
/// are used; fewer is an error.
pub fn read_bin(path: &Path) -> Result<VerificationSet, DataError> {
    let data = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_bin(path, &data)
}

/// [`read_bin`] on bytes already in memory (`path` names them in errors).
pub fn parse_bin(path: &Path, data: &[u8]) -> Result<VerificationSet, DataError> {
    let value =
        read_pickle(data, &AllowList::plain_data()).map_err(|source| DataError::Pickle {
            path: path.to_path_buf(),
            source,
        })?;
    let layout = |message: String| DataError::file(path, message);
    let top = value.as_sequence().ok_or_else(|| {
        layout(format!(
            "expected a (images, issame) tuple, found a {}",
            value.kind_name()
        ))
    })?;
    let [bins, issame] = top else {
        return Err(layout(format!(
            "expected a 2-element (images, issame) tuple, found {} elements",
            top.len()
        )));
    };
    let bins = bins.as_sequence().ok_or_else(|| {
        layout(format!(
            "images: expected a list, found a {}",
            bins.kind_name()
        ))
    })?;
    let issame_values = issame.as_sequence().ok_or_else(|| {
        layout(format!(
            "issame: expected a list, found a {}",
            issame.kind_name()
        ))
    })?;
    let issame = issame_values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bool(b) => Ok(*b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            other => Err(layout(format!(
                "issame[{i}]: expected a bool, found a {}",
                other.kind_name()
            ))),
        })
        .collect::<Result<Vec<bool>, _>>()?;
    let needed = 2 * issame.len();
    if bins.len() < needed {
        return Err(layout(format!(
            "{} pairs need {needed} images but the file has {}",
            issame.len(),
            bins.len()
        )));
    }
    let images = bins[..needed]
        .iter()
        .enumerate()
        .map(|(i, v)| image_bytes(v).map_err(|m| layout(format!("images[{i}]: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerificationSet { images, issame })
}

/// `bytes` as they are; a `str` as latin-1 (what Python 2's byte strings become when
/// unpickled as text).
fn image_bytes(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::Bytes(b) => Ok(b.clone()),
        Value::Str(s) => s
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c)).map_err(|_| format!("str holds {c:?}, not latin-1"))
            })
            .collect(),
        other => Err(format!(
            "expected bytes or str, found a {}",
            other.kind_name()
        )),
    }
}

/// Writes `(images, issame)` as a protocol-2 pickle, the layout insightface writes.
pub fn write_bin(path: &Path, images: &[Vec<u8>], issame: &[bool]) -> Result<(), DataError> {
    write_bin_with_protocol(path, images, issame, Protocol::V2)
}

/// [`write_bin`] with a chosen pickle protocol.
pub fn write_bin_with_protocol(
    path: &Path,
    images: &[Vec<u8>],
    issame: &[bool],
    protocol: Protocol,
) -> Result<(), DataError> {
    if images.len() != 2 * issame.len() {
        return Err(DataError::file(
            path,
            format!(
                "{} pairs need {} images, {} given",
                issame.len(),
                2 * issame.len(),
                images.len()
            ),
        ));
    }
    let value = Value::Tuple(vec![
        Value::List(images.iter().map(|b| Value::Bytes(b.clone())).collect()),
        Value::List(issame.iter().map(|&b| Value::Bool(b)).collect()),
    ]);
    let bytes = write_pickle(&value, protocol).map_err(|source| DataError::PickleWrite {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}
