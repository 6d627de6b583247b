//! RAF-DB basic: `list_patition_label.txt` (sic), no header, lines `train_00001.jpg 5` with
//! labels 1..7 (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) taken to 0..6.
//! A row's split is the part of its name before the first `_`. Images are under the data
//! directory as listed, or as RAF-DB ships the aligned faces: `aligned/train_00001_aligned.jpg`
//! (also looked for under `Image/aligned/`).

use std::path::{Path, PathBuf};

use super::list::{Entry, LabelList, Visited};
use super::text::{parse_int, TextFile};
use crate::error::DataError;

/// RAF-DB's seven basic expressions.
pub const RAF_CLASSES: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RafSplit {
    Train,
    Test,
}

impl RafSplit {
    fn prefix(self) -> &'static str {
        match self {
            RafSplit::Train => "train",
            RafSplit::Test => "test",
        }
    }
}

/// How listed names map to files under the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RafLayout {
    /// `DATA/train_00001.jpg`
    AsListed,
    /// `DATA/aligned/train_00001_aligned.jpg`
    Aligned,
    /// `DATA/Image/aligned/train_00001_aligned.jpg`
    ImageAligned,
}

impl RafLayout {
    pub fn path(self, data_dir: &Path, name: &str) -> PathBuf {
        let aligned = || {
            let stem = Path::new(name)
                .file_stem()
                .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
            format!("{stem}_aligned.jpg")
        };
        match self {
            RafLayout::AsListed => data_dir.join(name),
            RafLayout::Aligned => data_dir.join("aligned").join(aligned()),
            RafLayout::ImageAligned => data_dir.join("Image").join("aligned").join(aligned()),
        }
    }

    /// The first layout under which `name` exists; `AsListed` when none does.
    pub fn detect(data_dir: &Path, name: &str) -> Self {
        [
            RafLayout::AsListed,
            RafLayout::Aligned,
            RafLayout::ImageAligned,
        ]
        .into_iter()
        .find(|l| l.path(data_dir, name).is_file())
        .unwrap_or(RafLayout::AsListed)
    }
}

/// Reads the rows of `split` (the label file has no header: every line is a row). The image
/// layout is detected from the first row of the split.
pub fn read_raf(
    label_file: &Path,
    data_dir: &Path,
    split: RafSplit,
) -> Result<LabelList<u8>, DataError> {
    let file = TextFile::read(label_file)?;
    let mut layout = None;
    let mut entries = Vec::new();
    for (line, text) in file.lines() {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let Some(name) = fields.first() else {
            continue;
        };
        if name.split('_').next() != Some(split.prefix()) {
            continue;
        }
        let [_, label, ..] = fields.as_slice() else {
            return Err(file.error(line, format!("expected `name label`, found {text:?}")));
        };
        let label = parse_int(&file, line, "label", label)?;
        if !(1..=i64::from(RAF_CLASSES)).contains(&label) {
            return Err(file.error(line, format!("label {label} is outside 1..={RAF_CLASSES}")));
        }
        let layout = *layout.get_or_insert_with(|| RafLayout::detect(data_dir, name));
        entries.push(Entry {
            line,
            image: layout.path(data_dir, name),
            label: (label - 1) as u8,
        });
    }
    Ok(LabelList {
        label_file: label_file.to_path_buf(),
        visited: Visited::Lines {
            first: 1,
            last: file.line_count(),
        },
        entries,
    })
}
