//! IJB-C (and IJB-B) 1:1 verification as insightface's `eval_ijbc.py`: the meta files, the
//! loose crops aligned by their five landmarks, image + flip embeddings, template features,
//! cosine scores and TAR at FAR 1e-6 ... 1e-1 read off sklearn's ROC.
//!
//! Layout under the root (`--image-path` there, `IJBC_path` here), for target `IJBC`:
//! - `meta/ijbc_face_tid_mid.txt`: `image_name template_id media_id` per image;
//! - `meta/ijbc_name_5pts_score.txt`: `image_name x1 y1 ... x5 y5 detector_score`, the same
//!   images in the same order;
//! - `meta/ijbc_template_pair_label.txt`: `template_1 template_2 label` per pair;
//! - `loose_crop/IMAGE_NAME`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::EvalError;
use super::images::{for_each_batch, AlignedImages};
use super::metrics::roc::{auc, roc_curve, tar_at_far, RocCurve, IJB_FARS};
use super::metrics::template::{image_features, template_features};
use super::runner::Runner;
use super::shard::{gather_in_order, Row};

/// One image of the meta files.
#[derive(Debug, Clone, PartialEq)]
pub struct IjbImage {
    pub name: String,
    pub template: i64,
    pub media: i64,
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
}

/// The meta files of one IJB target.
#[derive(Debug, Clone, PartialEq)]
pub struct IjbMeta {
    pub root: PathBuf,
    pub target: String,
    pub images: Vec<IjbImage>,
    /// (line in the 5-point file, image path, landmarks) for the aligner.
    pub crops: Vec<(usize, PathBuf, [[f32; 2]; 5])>,
    pub pairs: Vec<(i64, i64)>,
    pub labels: Vec<bool>,
}

fn meta_file(root: &Path, target: &str, suffix: &str) -> PathBuf {
    root.join("meta")
        .join(format!("{}_{suffix}.txt", target.to_lowercase()))
}

/// Lines of a meta file split into exactly `columns` whitespace-separated fields (blank lines
/// skipped), with their 1-based line numbers.
fn read_columns(path: &Path, columns: usize) -> Result<Vec<(usize, Vec<String>)>, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| EvalError::File {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != columns {
            return Err(EvalError::Meta {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!("expected {columns} columns, found {}", fields.len()),
            });
        }
        rows.push((i + 1, fields));
    }
    Ok(rows)
}

fn parse<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    what: &str,
    token: &str,
) -> Result<T, EvalError> {
    token.parse().map_err(|_| EvalError::Meta {
        path: path.to_path_buf(),
        line,
        message: format!("{what} {token:?} is not a valid number"),
    })
}

impl IjbMeta {
    /// Reads the three meta files of `target` (`IJBC` or `IJBB`) under `root`.
    pub fn read(root: &Path, target: &str) -> Result<Self, EvalError> {
        let tid_mid_path = meta_file(root, target, "face_tid_mid");
        let points_path = meta_file(root, target, "name_5pts_score");
        let pairs_path = meta_file(root, target, "template_pair_label");
        let tid_mid = read_columns(&tid_mid_path, 3)?;
        let points = read_columns(&points_path, 12)?;
        let pair_rows = read_columns(&pairs_path, 3)?;
        if tid_mid.len() != points.len() {
            return Err(EvalError::File {
                path: points_path,
                message: format!(
                    "lists {} images but {} lists {}",
                    points.len(),
                    tid_mid_path.display(),
                    tid_mid.len()
                ),
            });
        }
        let mut images = Vec::with_capacity(points.len());
        let mut crops = Vec::with_capacity(points.len());
        for ((t_line, t), (p_line, p)) in tid_mid.iter().zip(&points) {
            if t[0] != p[0] {
                return Err(EvalError::Meta {
                    path: points_path.clone(),
                    line: *p_line,
                    message: format!(
                        "image {:?} where {}:{t_line} has {:?} (the files must list the same images in the same order)",
                        p[0],
                        tid_mid_path.display(),
                        t[0]
                    ),
                });
            }
            let template = parse(&tid_mid_path, *t_line, "template id", &t[1])?;
            let media = parse(&tid_mid_path, *t_line, "media id", &t[2])?;
            let mut landmarks = [[0f32; 2]; 5];
            for k in 0..10 {
                let v: f64 = parse(&points_path, *p_line, "landmark", &p[1 + k])?;
                landmarks[k / 2][k % 2] = v as f32;
            }
            let score: f64 = parse(&points_path, *p_line, "detector score", &p[11])?;
            crops.push((*p_line, root.join("loose_crop").join(&p[0]), landmarks));
            images.push(IjbImage {
                name: p[0].clone(),
                template,
                media,
                landmarks,
                score: score as f32,
            });
        }
        let mut pairs = Vec::with_capacity(pair_rows.len());
        let mut labels = Vec::with_capacity(pair_rows.len());
        for (line, fields) in &pair_rows {
            let a = parse(&pairs_path, *line, "template id", &fields[0])?;
            let b = parse(&pairs_path, *line, "template id", &fields[1])?;
            let label: i64 = parse(&pairs_path, *line, "label", &fields[2])?;
            if label != 0 && label != 1 {
                return Err(EvalError::Meta {
                    path: pairs_path.clone(),
                    line: *line,
                    message: format!("label {label} is not 0 or 1"),
                });
            }
            pairs.push((a, b));
            labels.push(label == 1);
        }
        Ok(Self {
            root: root.to_path_buf(),
            target: target.to_owned(),
            images,
            crops,
            pairs,
            labels,
        })
    }

    /// The first image that does not exist, as an error naming the 5-point file's line.
    pub fn check_exist(&self) -> Result<(), EvalError> {
        let list = meta_file(&self.root, &self.target, "name_5pts_score");
        for (line, image, _) in &self.crops {
            if !image.is_file() {
                return Err(EvalError::MissingImage {
                    label_file: list,
                    line: *line,
                    image: image.clone(),
                });
            }
        }
        Ok(())
    }
}

/// IJB 1:1 verification results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IjbResult {
    pub target: String,
    pub images: usize,
    pub templates: usize,
    pub pairs: usize,
    /// (FAR, TAR) for FAR 1e-6 ... 1e-1.
    pub tar_at_far: Vec<(f64, f64)>,
    pub auc: f64,
    /// The ROC (not written to the JSON: it has a point per distinct score).
    #[serde(skip)]
    pub roc: RocCurve,
}

/// Embeds every image (and its flip), aggregates templates and scores the pairs.
pub fn evaluate_ijb(runner: &Runner, meta: &IjbMeta) -> Result<IjbResult, EvalError> {
    let dataset = meta.target.as_str();
    let list = meta_file(&meta.root, &meta.target, "name_5pts_score");
    let set = AlignedImages {
        list_file: &list,
        items: &meta.crops,
        limits: runner.limits,
    };
    let shard = runner.gather.shard();
    let mut rows = Vec::new();
    let mut dim = 0;
    for_each_batch(&set, shard, runner.batch_size, &runner.transform, |batch| {
        let (plain, flipped, d) = runner.embeddings_with_flip(dataset, &batch.input)?;
        dim = d;
        for (k, &index) in batch.indices.iter().enumerate() {
            let mut values = plain[k * d..(k + 1) * d].to_vec();
            values.extend_from_slice(&flipped[k * d..(k + 1) * d]);
            rows.push(Row { index, values });
        }
        Ok(())
    })?;
    let rows = gather_in_order(runner.gather, rows, meta.images.len())?;
    let dim = rows.first().map_or(dim, |r| r.values.len() / 2);
    let mut plain = Vec::with_capacity(rows.len() * dim);
    let mut flipped = Vec::with_capacity(rows.len() * dim);
    for r in &rows {
        plain.extend_from_slice(&r.values[..dim]);
        flipped.extend_from_slice(&r.values[dim..]);
    }
    let scores: Vec<f32> = meta.images.iter().map(|i| i.score).collect();
    let templates: Vec<i64> = meta.images.iter().map(|i| i.template).collect();
    let medias: Vec<i64> = meta.images.iter().map(|i| i.media).collect();
    let metric = EvalError::metric;
    let features = image_features(&plain, &flipped, &scores, dim).map_err(metric(dataset))?;
    let template =
        template_features(&features, dim, &templates, &medias).map_err(metric(dataset))?;
    let pair_scores = template.pair_scores(&meta.pairs).map_err(metric(dataset))?;
    let roc = roc_curve(&meta.labels, &pair_scores).map_err(metric(dataset))?;
    let tars = tar_at_far(&roc, &IJB_FARS);
    Ok(IjbResult {
        target: meta.target.clone(),
        images: meta.images.len(),
        templates: template.ids.len(),
        pairs: meta.pairs.len(),
        tar_at_far: IJB_FARS.iter().copied().zip(tars).collect(),
        auc: auc(&roc.fpr, &roc.tpr).map_err(metric(dataset))?,
        roc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        std::fs::write(dir.join("meta").join(name), text).unwrap();
    }

    #[test]
    fn reads_meta_and_names_the_line_of_a_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "ijbc_face_tid_mid.txt",
            "1.jpg 1 10\n2.jpg 1 11\n3.jpg 2 12\n",
        );
        let pts = "1 2 3 4 5 6 7 8 9 10";
        write(
            root,
            "ijbc_name_5pts_score.txt",
            &format!("1.jpg {pts} 0.9\n2.jpg {pts} 0.5\n3.jpg {pts} 1.0\n"),
        );
        write(root, "ijbc_template_pair_label.txt", "1 2 0\n1 1 1\n");
        let meta = IjbMeta::read(root, "IJBC").unwrap();
        assert_eq!(meta.images.len(), 3);
        assert_eq!(meta.images[2].template, 2);
        assert_eq!(meta.images[1].landmarks[4], [9.0, 10.0]);
        assert_eq!(meta.images[1].score, 0.5);
        assert_eq!(meta.labels, vec![false, true]);
        let missing = meta.check_exist().unwrap_err().to_string();
        assert!(missing.contains("ijbc_name_5pts_score.txt:1"), "{missing}");

        write(root, "ijbc_template_pair_label.txt", "1 2 0\n1 1\n");
        let err = IjbMeta::read(root, "IJBC").unwrap_err().to_string();
        assert!(
            err.contains("ijbc_template_pair_label.txt:2") && err.contains("3 columns"),
            "{err}"
        );
        write(root, "ijbc_template_pair_label.txt", "1 2 0\n");
        write(
            root,
            "ijbc_face_tid_mid.txt",
            "1.jpg 1 10\n2.jpg x 11\n3.jpg 2 12\n",
        );
        let err = IjbMeta::read(root, "IJBC").unwrap_err().to_string();
        assert!(
            err.contains("ijbc_face_tid_mid.txt:2") && err.contains("\"x\""),
            "{err}"
        );
        write(
            root,
            "ijbc_face_tid_mid.txt",
            "1.jpg 1 10\n3.jpg 2 12\n2.jpg 1 11\n",
        );
        let err = IjbMeta::read(root, "IJBC").unwrap_err().to_string();
        assert!(err.contains("ijbc_name_5pts_score.txt:2"), "{err}");
    }
}
