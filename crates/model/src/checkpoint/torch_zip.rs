//! The zip container of `torch.save`: `<top>/data.pkl`, `<top>/data/<key>` storages,
//! `<top>/byteorder`, `<top>/version`. Entry sizes are checked before anything is allocated.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::CheckpointError;

/// Largest `data.pkl` accepted: state dicts with optimizer state pickle to a few MB.
const MAX_PICKLE_BYTES: u64 = 1 << 30;
/// torch.save aligns storages to 64 bytes (`.storage_alignment`) so they can be memory-mapped.
const STORAGE_ALIGNMENT: u16 = 64;
/// Top folder name used when writing; torch takes it from whatever the archive holds.
const WRITE_TOP: &str = "archive";

/// An opened torch.save archive.
pub(crate) struct TorchArchive {
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    /// `<top>/`, taken from the entry holding `data.pkl`.
    prefix: String,
    file_len: u64,
}

impl TorchArchive {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let archive =
            ZipArchive::new(BufReader::new(file)).map_err(|source| CheckpointError::Zip {
                path: path.to_owned(),
                source,
            })?;
        let prefix = archive
            .file_names()
            .filter_map(Result::ok)
            .find_map(|name| {
                let top = name.strip_suffix("data.pkl")?;
                (top.ends_with('/') && top.matches('/').count() == 1).then(|| top.to_owned())
            })
            .ok_or_else(|| CheckpointError::Structure {
                path: path.to_owned(),
                at: "archive".into(),
                expected: "an entry `<folder>/data.pkl`".into(),
                found: "none".into(),
            })?;
        Ok(Self {
            path: path.to_owned(),
            archive,
            prefix,
            file_len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entry `<top>/<name>`, at most `max` bytes; when `exact` is given the entry must hold
    /// exactly that many bytes. Memory grows only with bytes actually read. `context` names
    /// what needs the entry, for errors.
    fn read_entry(
        &mut self,
        name: &str,
        max: u64,
        exact: Option<u64>,
        context: &str,
    ) -> Result<Option<Vec<u8>>, CheckpointError> {
        let full = format!("{}{name}", self.prefix);
        let at = if context.is_empty() {
            full.clone()
        } else {
            format!("{context}, entry {full}")
        };
        let Some(index) = self.archive.index_for_name(&full) else {
            return Ok(None);
        };
        let path = self.path.clone();
        let file_len = self.file_len;
        let mut entry = self
            .archive
            .by_index(index)
            .map_err(|source| CheckpointError::Zip {
                path: path.clone(),
                source,
            })?;
        let declared = entry.size();
        let bad = |reason: String| CheckpointError::BadTensor {
            path: path.clone(),
            at: at.clone(),
            reason,
        };
        if let Some(want) = exact {
            if declared != want {
                return Err(bad(format!(
                    "entry holds {declared} bytes, the pickle claims {want}"
                )));
            }
        }
        if declared > max {
            return Err(bad(format!("entry of {declared} bytes exceeds {max}")));
        }
        // Pre-allocate only what an uncompressed entry can really hold.
        let capacity = if entry.compression() == CompressionMethod::Stored {
            declared.min(file_len)
        } else {
            0
        };
        let mut bytes = Vec::with_capacity(capacity as usize);
        (&mut entry)
            .take(declared)
            .read_to_end(&mut bytes)
            .map_err(|source| CheckpointError::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 != declared {
            return Err(bad(format!(
                "entry ended after {} of {declared} bytes",
                bytes.len()
            )));
        }
        // Reading on to the end makes the zip reader check the entry's CRC-32.
        let mut probe = [0u8; 1];
        let extra = entry
            .read(&mut probe)
            .map_err(|source| CheckpointError::Io {
                path: path.clone(),
                source,
            })?;
        if extra != 0 {
            return Err(bad(format!(
                "entry holds more than its declared {declared} bytes"
            )));
        }
        Ok(Some(bytes))
    }

    /// The pickle bytes of `data.pkl`.
    pub fn pickle(&mut self) -> Result<Vec<u8>, CheckpointError> {
        self.read_entry("data.pkl", MAX_PICKLE_BYTES, None, "")?
            .ok_or_else(|| self.missing("data.pkl", ""))
    }

    fn missing(&self, name: &str, context: &str) -> CheckpointError {
        let entry = format!("{}{name}", self.prefix);
        CheckpointError::Structure {
            path: self.path.clone(),
            at: if context.is_empty() {
                entry
            } else {
                format!("{context}, entry {entry}")
            },
            expected: "an archive entry".into(),
            found: "none".into(),
        }
    }

    /// Fails unless storages are little-endian (files without `byteorder` predate it and are).
    pub fn check_byteorder(&mut self) -> Result<(), CheckpointError> {
        let order = self.read_entry("byteorder", 16, None, "")?;
        match order.as_deref() {
            None | Some(b"little") if cfg!(target_endian = "little") => Ok(()),
            found => Err(CheckpointError::Structure {
                path: self.path.clone(),
                at: format!("{}byteorder", self.prefix),
                expected: "little-endian storages on a little-endian machine".into(),
                found: found
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|| "no byteorder entry".into()),
            }),
        }
    }

    /// Storage `data/<key>`, which must hold exactly `byte_len` bytes; `tensor` names the
    /// tensor that needs it, for errors.
    pub fn storage(
        &mut self,
        key: &str,
        byte_len: u64,
        tensor: &str,
    ) -> Result<Vec<u8>, CheckpointError> {
        let name = format!("data/{key}");
        if byte_len > self.file_len {
            return Err(CheckpointError::BadTensor {
                path: self.path.clone(),
                at: format!("{tensor}, entry {}{name}", self.prefix),
                reason: format!(
                    "the pickle claims {byte_len} bytes, more than the whole file ({})",
                    self.file_len
                ),
            });
        }
        self.read_entry(&name, byte_len, Some(byte_len), tensor)?
            .ok_or_else(|| self.missing(&name, tensor))
    }
}

/// Writes a torch.save archive to `path` (which the caller makes atomic): `data.pkl`,
/// the version records, then storage `data/<i>` for each item of `storages` in order.
pub(crate) fn write_archive(
    path: &Path,
    pickle: &[u8],
    storages: impl Iterator<Item = Result<Vec<u8>, CheckpointError>>,
) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let zip_err = |source| CheckpointError::Zip {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let options = |len: usize| {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(len as u64 >= u32::MAX as u64)
    };
    let entry = |zip: &mut ZipWriter<_>, name: String, bytes: &[u8], aligned: bool| {
        let mut opts = options(bytes.len());
        if aligned {
            opts = opts.with_alignment(STORAGE_ALIGNMENT);
        }
        zip.start_file(name, opts).map_err(zip_err)?;
        zip.write_all(bytes).map_err(io)
    };
    entry(&mut zip, format!("{WRITE_TOP}/data.pkl"), pickle, false)?;
    entry(
        &mut zip,
        format!("{WRITE_TOP}/.format_version"),
        b"1",
        false,
    )?;
    let alignment = STORAGE_ALIGNMENT.to_string();
    entry(
        &mut zip,
        format!("{WRITE_TOP}/.storage_alignment"),
        alignment.as_bytes(),
        false,
    )?;
    entry(&mut zip, format!("{WRITE_TOP}/byteorder"), b"little", false)?;
    for (i, bytes) in storages.enumerate() {
        entry(&mut zip, format!("{WRITE_TOP}/data/{i}"), &bytes?, true)?;
    }
    entry(&mut zip, format!("{WRITE_TOP}/version"), b"3\n", false)?;
    let mut writer = zip.finish().map_err(zip_err)?;
    writer.flush().map_err(io)?;
    Ok(())
}
