//! Errors of the dataset readers, writers and stream composition. Every variant names the
//! file and, where there is one, the line (1-based) or the record (byte offset in the `.rec`).

use std::path::PathBuf;

/// What is wrong with one RecordIO record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordProblem {
    #[error("bad magic 0x{found:08x} (expected 0xced7230a)")]
    BadMagic { found: u32 },
    #[error("record header claims {needed} bytes but only {available} remain in the file")]
    Truncated { needed: u64, available: u64 },
    #[error("offset is past the end of the file ({file_len} bytes)")]
    OffsetPastEnd { file_len: u64 },
    #[error("continuation flag {flag} where {expected}")]
    BadContinuation { flag: u32, expected: &'static str },
    #[error("record is {len} bytes, shorter than the 24-byte IRHeader")]
    ShortHeader { len: usize },
    #[error("IRHeader flag {flag} asks for {flag} float labels ({needed} bytes) but the record has {available} bytes after the header")]
    LabelsPastEnd {
        flag: u32,
        needed: u64,
        available: usize,
    },
    #[error("label {value} is not a valid class id (0 <= id < {num_classes})")]
    BadLabel { value: f32, num_classes: u64 },
    #[error(
        "record 0 gives image range [1, {end}) which does not fit the {keys} keys of the index"
    )]
    BadHeader0 { end: f64, keys: usize },
    #[error("key {key} is not in the index")]
    MissingKey { key: u64 },
    #[error("record of {len} bytes is over RecordIO's 2^29-byte limit")]
    TooLong { len: usize },
}

/// Everything that can go wrong reading or writing a dataset in one of its on-disk formats.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} does not exist ({what})", path.display())]
    Missing { path: PathBuf, what: &'static str },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{}: record at byte {offset}: {problem}", path.display())]
    Record {
        path: PathBuf,
        offset: u64,
        problem: RecordProblem,
    },
    #[error("{}: not a readable pickle", path.display())]
    Pickle {
        path: PathBuf,
        #[source]
        source: swinface_pickle::ReadError,
    },
    #[error("cannot pickle {}", path.display())]
    PickleWrite {
        path: PathBuf,
        #[source]
        source: swinface_pickle::WriteError,
    },
    #[error("invalid data config: {message}")]
    Config { message: String },
    #[error("{}: invalid YAML config", path.display())]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{stream} stream: {message}")]
    Composition {
        stream: &'static str,
        message: String,
    },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            return DataError::Missing {
                path,
                what: "file not found",
            };
        }
        DataError::Io { path, source }
    }

    pub(crate) fn line(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        DataError::Line {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}
