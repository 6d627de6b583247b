//! Checkpoint I/O without Python at run time.
//!
//! - [`official`]: the released SwinFace `.pt` files (`torch.save` zip + pickle), read through
//!   a pickle decoder that never runs code, and written so that `torch.load(weights_only=True)`
//!   reads them.
//! - [`native`]: the project's own format, safetensors with metadata.
//! - [`load_any`]: either, told apart by the file's first bytes.
//!
//! The model's VarStore names every variable by its full official key
//! (`backbone.layers.0.blocks.1.attn.qkv.weight`), so section `state_dict_backbone` of an
//! official file maps to prefix `backbone.`, and so on.

mod atomic;
mod backbone;
mod dtype;
mod load;
pub mod native;
pub mod official;
mod torch_tensor;
mod torch_zip;

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::nn;

pub use backbone::{load_pretrained_backbone, BACKBONE_PREFIX};
pub use dtype::kind_name;
pub use load::{LoadReport, Mismatch};
pub use native::{
    load_native_into, read_native, save_native, save_tensors, NamedTensors, NativeMetadata,
};
pub use official::{
    load_official_into, load_partial, natural_order, read_official, section_prefix, write_official,
    OfficialCheckpoint, OfficialWriteOptions, MODEL_SECTIONS,
};

/// Everything that can go wrong reading, writing or loading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: zip archive: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    /// The pickle could not be decoded; `source` carries the byte offset and opcode.
    #[error("{}: {entry}: {source}", path.display())]
    Pickle {
        path: PathBuf,
        entry: String,
        #[source]
        source: swinface_pickle::ReadError,
    },

    #[error("writing the pickle: {0}")]
    PickleWrite(#[from] swinface_pickle::WriteError),

    #[error("{}: safetensors: {source}", path.display())]
    SafeTensors {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },

    #[error("{}: {at}: expected {expected}, found {found}", path.display())]
    Structure {
        path: PathBuf,
        at: String,
        expected: String,
        found: String,
    },

    /// A tensor whose description does not fit its storage (or a storage its entry).
    #[error("{}: {at}: {reason}", path.display())]
    BadTensor {
        path: PathBuf,
        at: String,
        reason: String,
    },

    #[error("{at}: unsupported dtype {dtype}")]
    UnsupportedDtype { at: String, dtype: String },

    /// A strict load found keys that do not fit; nothing was copied.
    #[error("{}", load::describe_incompatible(missing, unexpected, mismatched))]
    Incompatible {
        /// Model variables the checkpoint lacks.
        missing: Vec<String>,
        /// Checkpoint keys the model lacks.
        unexpected: Vec<String>,
        /// Keys whose shape or type differ, with both shapes.
        mismatched: Vec<Mismatch>,
    },

    #[error("variable `{0}` has no `<section>.` prefix such as `backbone.`")]
    UnprefixedVariable(String),

    #[error("{}: metadata: {reason}", path.display())]
    Metadata { path: PathBuf, reason: String },

    #[error("{}: neither a torch.save zip nor a safetensors file", path.display())]
    UnknownFormat { path: PathBuf },

    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// The two checkpoint formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// torch.save zip (official SwinFace `.pt`).
    Official,
    /// safetensors (our own format, or any safetensors file).
    Native,
}

/// Tells the format from the first bytes: a zip local header, or safetensors' 8-byte header
/// length followed by `{`.
pub fn detect_format(path: &Path) -> Result<CheckpointFormat, CheckpointError> {
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    if filled >= 4 && head[..4] == *b"PK\x03\x04" {
        Ok(CheckpointFormat::Official)
    } else if filled == 9 && head[8] == b'{' {
        Ok(CheckpointFormat::Native)
    } else {
        Err(CheckpointError::UnknownFormat {
            path: path.to_owned(),
        })
    }
}

/// Loads either format into `vs`, strictly: an official file's four model sections, or a
/// native file's variables.
pub fn load_any(path: &Path, vs: &mut nn::VarStore) -> Result<LoadReport, CheckpointError> {
    match detect_format(path)? {
        CheckpointFormat::Official => load_official_into(path, vs),
        CheckpointFormat::Native => load_native_into(path, vs).map(|(report, _)| report),
    }
}
