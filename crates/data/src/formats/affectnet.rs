//! AffectNet lists as SwinFace prepares them: a header line, then `name x label ...` rows
//! (whitespace separated, label in the third column, already in RAF-DB's class order 0..6).

use std::path::Path;

use super::list::{Entry, LabelList, Visited};
use super::raf::RAF_CLASSES;
use super::text::{parse_int, TextFile};
use crate::error::DataError;

pub fn read_affectnet(label_file: &Path, data_dir: &Path) -> Result<LabelList<u8>, DataError> {
    let file = TextFile::read(label_file)?;
    let mut entries = Vec::new();
    for (line, text) in file.lines().skip(1) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [name, _, label, ..] = fields.as_slice() else {
            return Err(file.error(
                line,
                format!("expected at least 3 columns (label in the third), found {text:?}"),
            ));
        };
        let label = parse_int(&file, line, "label", label)?;
        if !(0..i64::from(RAF_CLASSES)).contains(&label) {
            return Err(file.error(
                line,
                format!("label {label} is outside 0..{RAF_CLASSES} (RAF-DB's classes)"),
            ));
        }
        entries.push(Entry {
            line,
            image: data_dir.join(name),
            label: label as u8,
        });
    }
    Ok(LabelList {
        label_file: label_file.to_path_buf(),
        visited: Visited::Lines {
            first: 2,
            last: file.line_count(),
        },
        entries,
    })
}
