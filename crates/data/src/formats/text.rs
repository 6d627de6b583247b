//! Label files as the official code reads them: `f.readlines()` then `line.split()`.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// A label file's lines, numbered from 1.
pub struct TextFile {
    pub path: PathBuf,
    text: String,
}

impl TextFile {
    /// Reads `path` as UTF-8 (an invalid byte is an error naming its line).
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            DataError::line(path, line, "not UTF-8 text")
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// `(line number, line)` for every line, as many as `readlines()` returns (a final
    /// newline does not start an extra line), without the line ending.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text.lines().enumerate().map(|(i, l)| (i + 1, l))
    }

    pub fn line_count(&self) -> usize {
        self.text.lines().count()
    }

    pub fn error(&self, line: usize, message: impl Into<String>) -> DataError {
        DataError::line(&self.path, line, message)
    }
}

/// Parses a float as Python's `float()` does for the forms label files use, refusing
/// non-finite values (`nan`, `inf`), which no label may be.
pub fn parse_finite(
    file: &TextFile,
    line: usize,
    what: &str,
    token: &str,
) -> Result<f32, DataError> {
    let value: f64 = token
        .trim()
        .parse()
        .map_err(|_| file.error(line, format!("{what} {token:?} is not a number")))?;
    if !value.is_finite() {
        return Err(file.error(line, format!("{what} {token:?} is not a finite number")));
    }
    Ok(value as f32)
}

/// Parses an integer as Python's `int()` does for plain decimal tokens.
pub fn parse_int(file: &TextFile, line: usize, what: &str, token: &str) -> Result<i64, DataError> {
    token
        .trim()
        .parse()
        .map_err(|_| file.error(line, format!("{what} {token:?} is not an integer")))
}
