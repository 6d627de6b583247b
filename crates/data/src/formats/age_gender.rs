//! Age-gender lists (IMDB, WIKI, Adience, MORPH as SwinFace prepares them):
//! `ROOT/NAME/label.txt` with a header line, then `name age gender`; images in
//! `ROOT/NAME/data/`. Rows whose age or gender is the string `nan` are skipped; gender is male
//! (1) only when the token is exactly `1.0`, as the official code tests it.

use std::path::Path;

use super::list::{Entry, LabelList, Visited};
use super::text::{parse_finite, TextFile};
use crate::error::DataError;

/// Ages outside this range are refused as label errors.
pub const AGE_RANGE: (f32, f32) = (0.0, 150.0);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgeGender {
    pub age: f32,
    /// 1 = male, 0 = female.
    pub gender: u8,
}

/// Reads `root/name/label.txt` with images under `root/name/data`.
pub fn read_age_gender_source(root: &Path, name: &str) -> Result<LabelList<AgeGender>, DataError> {
    let dir = root.join(name);
    read_age_gender(&dir.join("label.txt"), &dir.join("data"))
}

/// Reads one age-gender label file.
pub fn read_age_gender(
    label_file: &Path,
    data_dir: &Path,
) -> Result<LabelList<AgeGender>, DataError> {
    let file = TextFile::read(label_file)?;
    let mut entries = Vec::new();
    for (line, text) in file.lines().skip(1) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [name, age, gender, ..] = fields.as_slice() else {
            return Err(file.error(line, format!("expected `name age gender`, found {text:?}")));
        };
        if *age == "nan" || *gender == "nan" {
            continue;
        }
        let age_value = parse_finite(&file, line, "age", age)?;
        if !(AGE_RANGE.0..=AGE_RANGE.1).contains(&age_value) {
            return Err(file.error(
                line,
                format!("age {age} is outside [{}, {}]", AGE_RANGE.0, AGE_RANGE.1),
            ));
        }
        entries.push(Entry {
            line,
            image: data_dir.join(name),
            label: AgeGender {
                age: age_value,
                gender: u8::from(*gender == "1.0"),
            },
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
