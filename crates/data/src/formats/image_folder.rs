//! A folder of identities, one sub-folder each, as torchvision's `ImageFolder` reads it:
//! classes are the sub-folder names sorted, their ids the positions in that order; images are
//! found recursively (directories in sorted path order, files sorted within each) and kept
//! when their extension is one of torchvision's image extensions.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// torchvision's `IMG_EXTENSIONS` (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    pub root: PathBuf,
    /// Class names; a sample's label is an index into this.
    pub classes: Vec<String>,
    /// `(image, class id)` in torchvision's order.
    pub samples: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    pub fn read(root: &Path) -> Result<Self, DataError> {
        let mut classes = Vec::new();
        for entry in read_dir_sorted(root)? {
            if entry.is_dir() {
                let name = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                classes.push((name, entry));
            }
        }
        if classes.is_empty() {
            return Err(DataError::file(root, "no class sub-folders"));
        }
        let mut samples = Vec::new();
        for (id, (name, dir)) in classes.iter().enumerate() {
            let before = samples.len();
            let mut dirs = Vec::new();
            collect_dirs(dir, 0, &mut dirs)?;
            // `sorted(os.walk(dir))` orders directories by their path string.
            dirs.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
            for d in dirs {
                for file in read_dir_sorted(&d)? {
                    if file.is_file() && has_image_extension(&file) {
                        samples.push((file, id));
                    }
                }
            }
            if samples.len() == before {
                return Err(DataError::file(
                    dir,
                    format!("class {name:?} has no image files"),
                ));
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes: classes.into_iter().map(|(n, _)| n).collect(),
            samples,
        })
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut paths = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(paths)
}

/// Deepest nesting followed inside a class folder; also what stops symlink cycles.
const MAX_DEPTH: usize = 32;

fn collect_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if depth > MAX_DEPTH {
        return Err(DataError::file(
            dir,
            format!("folders nested deeper than {MAX_DEPTH} levels (a symlink cycle?)"),
        ));
    }
    out.push(dir.to_path_buf());
    for entry in read_dir_sorted(dir)? {
        if entry.is_dir() {
            collect_dirs(&entry, depth + 1, out)?;
        }
    }
    Ok(())
}
