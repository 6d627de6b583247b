//! The project's own checkpoint format: a safetensors file holding every VarStore variable
//! under its full name, with string metadata (`__metadata__`): the format name and version
//! plus whatever the caller passes (the model configuration as JSON, the training step, ...).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::SafeTensors;
use tch::{nn, Tensor};

use super::atomic::write_atomically;
use super::dtype::{dtype_of, kind_of_dtype, tensor_bytes};
use super::load::{load_tensors, LoadReport, Scope};
use super::official::natural_order;
use super::CheckpointError;

/// Metadata key naming the format, and its value.
pub const FORMAT_KEY: &str = "format";
pub const FORMAT_NAME: &str = "swinface-native";
/// Metadata key of the format version, and the version this code writes and reads.
pub const FORMAT_VERSION_KEY: &str = "format_version";
pub const FORMAT_VERSION: u32 = 1;

/// String metadata of a native checkpoint.
pub type NativeMetadata = BTreeMap<String, String>;
/// Tensors under their full variable names.
pub type NamedTensors = Vec<(String, Tensor)>;

fn metadata_error(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Metadata {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Saves every variable of `vs` with `metadata` (which may not use the keys `format` and
/// `format_version`, set here). Tensors are written in natural name order, one at a time;
/// the file is replaced atomically.
pub fn save_native(
    path: &Path,
    vs: &nn::VarStore,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|(a, _), (b, _)| natural_order(a, b));
    save_tensors(path, &variables, metadata)
}

/// Saves `tensors` (any device; written as they are, in the given order) with `metadata`
/// in the native format, replacing `path` atomically. [`read_native`] reads them back.
pub fn save_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    for reserved in [FORMAT_KEY, FORMAT_VERSION_KEY] {
        if metadata.contains_key(reserved) {
            return Err(metadata_error(
                path,
                format!("key `{reserved}` is reserved"),
            ));
        }
    }
    let mut info: HashMap<String, String> = metadata.clone().into_iter().collect();
    info.insert(FORMAT_KEY.into(), FORMAT_NAME.into());
    info.insert(FORMAT_VERSION_KEY.into(), FORMAT_VERSION.to_string());

    let variables = tensors;
    let mut entries = Vec::with_capacity(variables.len());
    let mut offset = 0usize;
    for (name, tensor) in variables {
        let dtype = dtype_of(tensor.kind()).ok_or_else(|| CheckpointError::UnsupportedDtype {
            at: name.clone(),
            dtype: format!("{:?}", tensor.kind()),
        })?;
        let shape: Vec<usize> = tensor.size().iter().map(|&d| d as usize).collect();
        let len = tensor.numel() * tensor.kind().elt_size_in_bytes();
        entries.push((
            name.clone(),
            TensorInfo {
                dtype,
                shape,
                data_offsets: (offset, offset + len),
            },
        ));
        offset += len;
    }
    let header = Metadata::new(Some(info), entries)
        .map_err(|e| metadata_error(path, format!("building the header: {e}")))?;
    let mut header = serde_json::to_vec(&header)
        .map_err(|e| metadata_error(path, format!("encoding the header: {e}")))?;
    // safetensors pads the header with spaces to a multiple of 8 bytes.
    header.resize(header.len().next_multiple_of(8), b' ');

    write_atomically(path, |temp| {
        let io = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let mut out = BufWriter::new(File::create(temp).map_err(io)?);
        out.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        out.write_all(&header).map_err(io)?;
        for (_, tensor) in variables {
            out.write_all(&tensor_bytes(tensor)?).map_err(io)?;
        }
        out.flush().map_err(io)
    })
}

/// Reads all tensors (CPU, in file order) and the metadata. Also reads safetensors files
/// written elsewhere (without our metadata); refuses a newer format version.
pub fn read_native(path: &Path) -> Result<(NamedTensors, NativeMetadata), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    let safetensors_error = |source| CheckpointError::SafeTensors {
        path: path.to_owned(),
        source,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(safetensors_error)?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(format) = metadata.get(FORMAT_KEY) {
        if format != FORMAT_NAME {
            return Err(metadata_error(
                path,
                format!("format `{format}`, expected `{FORMAT_NAME}`"),
            ));
        }
    }
    if let Some(version) = metadata.get(FORMAT_VERSION_KEY) {
        match version.parse::<u32>() {
            Ok(v) if v <= FORMAT_VERSION => {}
            _ => {
                return Err(metadata_error(
                    path,
                    format!("format version `{version}`; this build reads up to {FORMAT_VERSION}"),
                ))
            }
        }
    }
    let file = SafeTensors::deserialize(&bytes).map_err(safetensors_error)?;
    let mut tensors = Vec::with_capacity(file.len());
    for name in header.offset_keys() {
        let view = file.tensor(&name).map_err(safetensors_error)?;
        let kind =
            kind_of_dtype(view.dtype()).ok_or_else(|| CheckpointError::UnsupportedDtype {
                at: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        // safetensors has checked that the data holds exactly shape x dtype bytes.
        let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)?;
        tensors.push((name, tensor));
    }
    Ok((tensors, metadata))
}

/// Loads a native checkpoint into `vs`, strictly (see
/// [`super::official::load_official_into`]); returns the report and the metadata.
pub fn load_native_into(
    path: &Path,
    vs: &mut nn::VarStore,
) -> Result<(LoadReport, NativeMetadata), CheckpointError> {
    let (tensors, metadata) = read_native(path)?;
    let report = load_tensors(vs, tensors, Scope::All, true)?;
    Ok((report, metadata))
}
