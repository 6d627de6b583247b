//! Atomic file creation: write to a temporary file beside the target, fsync, rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// A file being written; it appears under its final name only on [`AtomicFile::commit`].
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<Self, DataError> {
        let name = target
            .file_name()
            .ok_or_else(|| DataError::file(target, "not a file path"))?;
        let temp = target.with_file_name(format!(
            ".{}.tmp{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&temp).map_err(|e| DataError::Write {
            path: temp.clone(),
            source: e,
        })?;
        Ok(Self {
            target: target.to_path_buf(),
            temp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        let result = match self.writer.as_mut() {
            Some(w) => w.write_all(bytes),
            None => Ok(()),
        };
        result.map_err(|e| self.write_err(e))
    }

    /// Flushes, fsyncs and renames the file to its final name.
    pub fn commit(mut self) -> Result<(), DataError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let file = writer.into_inner().map_err(|e| DataError::Write {
            path: self.target.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|e| self.write_err(e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(|e| self.write_err(e))?;
        Ok(())
    }

    fn write_err(&self, source: std::io::Error) -> DataError {
        DataError::Write {
            path: self.target.clone(),
            source,
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}
