//! Atomic file replacement: write a temp file beside the target, fsync, rename.

use std::fs::File;
use std::path::Path;

use super::CheckpointError;

/// Writes `path` through `fill`, which must create the file at the temp path it is given, so
/// that readers see either the old file or the complete new one. The temp file lives in the
/// same directory (so the rename stays on one file system) and is removed if anything fails.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".swinface-ckpt-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    fill(temp.path())?;
    File::open(temp.path())
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
