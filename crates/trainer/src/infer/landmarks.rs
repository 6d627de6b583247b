//! The `--landmarks` file: `IMAGE_PATH x1 y1 ... x5 y5` per line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Five (x, y) points: left eye, right eye, nose tip, left and right mouth corners.
pub type Landmarks = [[f32; 2]; 5];

const NUMBERS_PER_LINE: usize = 10;

/// A malformed landmarks file.
#[derive(Debug, thiserror::Error)]
pub enum LandmarksError {
    #[error("line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("line {line}: {} already has landmarks (line {first_line})", path.display())]
    Duplicate {
        path: PathBuf,
        line: usize,
        first_line: usize,
    },
}

/// Landmarks by image path (compared component-wise, so `a//b.jpg` finds `a/b.jpg`).
#[derive(Debug, Default)]
pub struct LandmarkTable {
    by_path: HashMap<PathBuf, (Landmarks, usize)>,
}

impl LandmarkTable {
    /// Parses the whole file; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, LandmarksError> {
        let mut table = Self::default();
        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw_line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let (path, landmarks) = parse_line(content)
                .map_err(|message| LandmarksError::Malformed { line, message })?;
            if let Some(&(_, first_line)) = table.by_path.get(&path) {
                return Err(LandmarksError::Duplicate {
                    path,
                    line,
                    first_line,
                });
            }
            table.by_path.insert(path, (landmarks, line));
        }
        Ok(table)
    }

    pub fn get(&self, image: &Path) -> Option<Landmarks> {
        self.by_path.get(image).map(|&(landmarks, _)| landmarks)
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }
}

/// Splits off the last ten whitespace-separated numbers; the rest is the path.
fn parse_line(content: &str) -> Result<(PathBuf, Landmarks), String> {
    let mut rest = content;
    let mut numbers = [0f32; NUMBERS_PER_LINE];
    for slot in numbers.iter_mut().rev() {
        let split = rest.rfind(char::is_whitespace).ok_or_else(|| {
            format!("expected an image path and {NUMBERS_PER_LINE} numbers, got `{content}`")
        })?;
        let token = rest[split..].trim_start();
        *slot = token
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{token}` is not a finite number (in `{content}`)"))?;
        rest = rest[..split].trim_end();
    }
    if rest.is_empty() {
        return Err(format!("no image path before the numbers in `{content}`"));
    }
    let landmarks = [0, 1, 2, 3, 4].map(|i| [numbers[2 * i], numbers[2 * i + 1]]);
    Ok((PathBuf::from(rest), landmarks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_with_spaces_comments_and_blank_lines() {
        let text = "# detector output\n\n\
                    faces/a.jpg 1 2 3 4 5 6 7 8 9 10\n\
                    my photos/b c.png\t38.5 51.7 73.5 51.5 56 71.7 41.5 92.4 70.7 92.2  \n";
        let table = LandmarkTable::parse(text).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.get(Path::new("faces/a.jpg")).unwrap(),
            [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]
        );
        assert_eq!(
            table.get(Path::new("faces//a.jpg")).unwrap()[4],
            [9.0, 10.0]
        );
        assert_eq!(
            table.get(Path::new("my photos/b c.png")).unwrap()[2],
            [56.0, 71.7]
        );
        assert!(table.get(Path::new("a.jpg")).is_none());
    }

    #[test]
    fn reports_malformed_and_duplicate_lines() {
        let err = LandmarkTable::parse("a.jpg 1 2 3 4 5 6 7 8 9\n").unwrap_err();
        assert!(
            matches!(err, LandmarksError::Malformed { line: 1, .. }),
            "{err}"
        );
        let err = LandmarkTable::parse("\na.jpg 1 2 3 4 5 6 7 8 9 x\n").unwrap_err();
        assert!(err.to_string().contains("line 2") && err.to_string().contains("`x`"));
        let err = LandmarkTable::parse("a.jpg 1 2 3 4 5 6 7 8 9 NaN\n").unwrap_err();
        assert!(matches!(err, LandmarksError::Malformed { .. }));
        let err = LandmarkTable::parse("1 2 3 4 5 6 7 8 9 10\n").unwrap_err();
        assert!(matches!(err, LandmarksError::Malformed { .. }));
        let err = LandmarkTable::parse("a.jpg 1 2 3 4 5 6 7 8 9 10\na.jpg 1 2 3 4 5 6 7 8 9 10\n")
            .unwrap_err();
        assert!(matches!(
            err,
            LandmarksError::Duplicate {
                line: 2,
                first_line: 1,
                ..
            }
        ));
    }
}
