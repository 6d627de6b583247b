//! FG-NET as SwinFace lists it: a header line, then `name age`.

use std::path::Path;

use super::age_gender::AGE_RANGE;
use super::list::{Entry, LabelList, Visited};
use super::text::{parse_finite, TextFile};
use crate::error::DataError;

/// The official `FGnetDataset` selections of rows (line numbers are 1-based, line 1 the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FgnetSplit {
    /// Every row.
    All,
    /// Rows before `cut = lines // 10 * 9` (0-based), the nine folds.
    NineFold,
    /// Rows from `cut` on.
    OneFold,
    /// Every row but the `id`-th (0-based over `readlines()`, so `id >= 1`).
    RemoveOne(usize),
}

pub fn read_fgnet(
    label_file: &Path,
    data_dir: &Path,
    split: FgnetSplit,
) -> Result<LabelList<f32>, DataError> {
    let file = TextFile::read(label_file)?;
    let lines = file.line_count();
    let cut = lines / 10 * 9;
    let mut entries = Vec::new();
    for (line, text) in file.lines().skip(1) {
        // `i` is the official 0-based index into `readlines()`.
        let i = line - 1;
        let selected = match split {
            FgnetSplit::All => true,
            FgnetSplit::NineFold => i < cut,
            FgnetSplit::OneFold => i >= cut,
            FgnetSplit::RemoveOne(id) => i != id,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if !selected || fields.is_empty() {
            continue;
        }
        let [name, age, ..] = fields.as_slice() else {
            return Err(file.error(line, format!("expected `name age`, found {text:?}")));
        };
        let age = parse_finite(&file, line, "age", age)?;
        if !(AGE_RANGE.0..=AGE_RANGE.1).contains(&age) {
            return Err(file.error(
                line,
                format!("age {age} is outside [{}, {}]", AGE_RANGE.0, AGE_RANGE.1),
            ));
        }
        entries.push(Entry {
            line,
            image: data_dir.join(name),
            label: age,
        });
    }
    Ok(LabelList {
        label_file: label_file.to_path_buf(),
        visited: Visited::Lines {
            first: 2,
            last: lines,
        },
        entries,
    })
}
