//! CelebA attributes in both layouts, mapped onto SwinFace's 40 attribute heads by name.
//!
//! - CelebA's own `list_attr_celeba.txt`: a count line, a line of the 40 attribute names (in
//!   CelebA's alphabetical order, `Male` the 21st), then `000001.jpg -1  1 ...` rows of ±1
//!   separated by variable spaces; with `list_eval_partition.txt` (`000001.jpg 0`, 0/1/2 =
//!   train/val/test).
//! - The `label.txt` SwinFace's code reads: a header line, then `name` and 40 values already
//!   in SwinFace's task order (`Gender` 5th); `1` is positive, `0` or `-1` negative.

use std::collections::HashMap;
use std::path::Path;

use super::list::{Entry, LabelList, Visited};
use super::text::{parse_int, TextFile};
use crate::attributes::{swinface_index, swinface_name_of_celeba, CELEBA_ATTRIBUTES};
use crate::error::DataError;

/// 40 binary attributes in SwinFace's task order (1 = present).
pub type Attributes = [u8; 40];

/// CelebA's three partitions (`list_eval_partition.txt` values 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    Train,
    Val,
    Test,
}

/// Reads SwinFace's `label.txt` variant.
pub fn read_swinface_label(
    label_file: &Path,
    data_dir: &Path,
) -> Result<LabelList<Attributes>, DataError> {
    let file = TextFile::read(label_file)?;
    let mut entries = Vec::new();
    for (line, text) in file.lines().skip(1) {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 41 {
            return Err(file.error(
                line,
                format!(
                    "expected a name and 40 values, found {} fields",
                    fields.len()
                ),
            ));
        }
        let mut label = [0u8; 40];
        for (j, token) in fields[1..41].iter().enumerate() {
            let value = parse_int(&file, line, &format!("attribute {}", j + 1), token)?;
            // The official reader takes 1 as positive and anything else as negative; values
            // other than -1, 0 and 1 are a damaged file, not a label.
            if !(-1..=1).contains(&value) {
                return Err(file.error(
                    line,
                    format!("attribute {} is {value}, expected 1, 0 or -1", j + 1),
                ));
            }
            label[j] = u8::from(value == 1);
        }
        entries.push(Entry {
            line,
            image: data_dir.join(fields[0]),
            label,
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

/// Reads CelebA's `list_attr_celeba.txt`, every row, its columns reordered into SwinFace's
/// task order by their names.
pub fn read_celeba_attr(
    attr_file: &Path,
    data_dir: &Path,
) -> Result<LabelList<Attributes>, DataError> {
    let file = TextFile::read(attr_file)?;
    let mut lines = file.lines();
    let (count_line, count_text) = lines
        .next()
        .ok_or_else(|| DataError::file(attr_file, "empty file (expected a count line)"))?;
    let count: usize = count_text.trim().parse().map_err(|_| {
        file.error(
            count_line,
            format!("expected the image count, found {count_text:?}"),
        )
    })?;
    let (names_line, names_text) = lines
        .next()
        .ok_or_else(|| DataError::file(attr_file, "no attribute-names line"))?;
    let column_to_head = columns_to_heads(&file, names_line, names_text)?;

    let mut entries = Vec::new();
    for (line, text) in lines {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 41 {
            return Err(file.error(
                line,
                format!(
                    "expected a name and 40 values of 1 or -1, found {} fields",
                    fields.len()
                ),
            ));
        }
        let mut label = [0u8; 40];
        for (column, token) in fields[1..].iter().enumerate() {
            label[column_to_head[column]] = match *token {
                "1" => 1,
                "-1" => 0,
                other => {
                    return Err(file.error(
                        line,
                        format!(
                            "{} is {other:?}, expected 1 or -1",
                            CELEBA_ATTRIBUTES[column]
                        ),
                    ))
                }
            };
        }
        entries.push(Entry {
            line,
            image: data_dir.join(fields[0]),
            label,
        });
    }
    if entries.len() != count {
        return Err(file.error(
            count_line,
            format!(
                "the count line says {count} images but {} rows follow",
                entries.len()
            ),
        ));
    }
    Ok(LabelList {
        label_file: attr_file.to_path_buf(),
        visited: Visited::Lines {
            first: 3,
            last: file.line_count(),
        },
        entries,
    })
}

/// For each column of the names line, the SwinFace head it feeds.
fn columns_to_heads(file: &TextFile, line: usize, text: &str) -> Result<[usize; 40], DataError> {
    let names: Vec<&str> = text.split_whitespace().collect();
    if names.len() != 40 {
        return Err(file.error(
            line,
            format!("expected 40 attribute names, found {}", names.len()),
        ));
    }
    let mut map = [0usize; 40];
    let mut seen = [false; 40];
    for (column, name) in names.iter().enumerate() {
        let head = swinface_name_of_celeba(name)
            .and_then(swinface_index)
            .ok_or_else(|| file.error(line, format!("unknown CelebA attribute {name:?}")))?;
        if std::mem::replace(&mut seen[head], true) {
            return Err(file.error(line, format!("attribute {name:?} named twice")));
        }
        map[column] = head;
    }
    Ok(map)
}

/// Reads `list_eval_partition.txt`: image name -> partition.
pub fn read_partition(path: &Path) -> Result<HashMap<String, Partition>, DataError> {
    let file = TextFile::read(path)?;
    let mut partition = HashMap::new();
    for (line, text) in file.lines() {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [name, value] = fields.as_slice() else {
            return Err(file.error(line, format!("expected `name partition`, found {text:?}")));
        };
        let value = match *value {
            "0" => Partition::Train,
            "1" => Partition::Val,
            "2" => Partition::Test,
            other => return Err(file.error(line, format!("partition {other:?} is not 0, 1 or 2"))),
        };
        if partition.insert((*name).to_owned(), value).is_some() {
            return Err(file.error(line, format!("{name} listed twice")));
        }
    }
    Ok(partition)
}

/// CelebA's attribute list restricted to one partition; a row without a partition is an error.
pub fn read_celeba_split(
    attr_file: &Path,
    partition_file: &Path,
    data_dir: &Path,
    wanted: Partition,
) -> Result<LabelList<Attributes>, DataError> {
    let mut list = read_celeba_attr(attr_file, data_dir)?;
    let partition = read_partition(partition_file)?;
    for entry in &list.entries {
        let name = entry
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !partition.contains_key(&name) {
            return Err(DataError::line(
                attr_file,
                entry.line,
                format!("{name} is not in {}", partition_file.display()),
            ));
        }
    }
    list.retain(|e| {
        let name = e
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        partition.get(&name) == Some(&wanted)
    });
    // A pass visits this partition's rows only, as over SwinFace's per-split `label.txt`.
    list.visited = Visited::Entries;
    Ok(list)
}
