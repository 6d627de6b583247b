//! ChaLearn LAP / CLAP2015-2016 apparent-age csv: `name;mean;std` per line, no header.

use std::path::Path;

use super::age_gender::AGE_RANGE;
use super::list::{Entry, LabelList, Visited};
use super::text::{parse_finite, TextFile};
use crate::error::DataError;

/// The apparent age: mean and standard deviation of the annotators' votes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApparentAge {
    pub mean: f32,
    pub std: f32,
}

pub fn read_lap(label_file: &Path, data_dir: &Path) -> Result<LabelList<ApparentAge>, DataError> {
    let file = TextFile::read(label_file)?;
    let mut entries = Vec::new();
    for (line, text) in file.lines() {
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(';').collect();
        let [name, mean, std, ..] = fields.as_slice() else {
            return Err(file.error(line, format!("expected `name;mean;std`, found {text:?}")));
        };
        let mean = parse_finite(&file, line, "mean age", mean)?;
        let std = parse_finite(&file, line, "age std", std)?;
        if !(AGE_RANGE.0..=AGE_RANGE.1).contains(&mean) || std < 0.0 {
            return Err(file.error(
                line,
                format!(
                    "mean {mean} outside [{}, {}] or negative std {std}",
                    AGE_RANGE.0, AGE_RANGE.1
                ),
            ));
        }
        entries.push(Entry {
            line,
            image: data_dir.join(name),
            label: ApparentAge { mean, std },
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
