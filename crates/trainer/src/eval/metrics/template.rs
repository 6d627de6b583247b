//! IJB-C 1:1 verification features as insightface's `eval_ijbc.py` builds them with its
//! defaults (`use_flip_test`, `use_norm_score`, `use_detector_score` all on): the embeddings of
//! an image and of its flip added (float32), no per-image normalisation, each image weighted
//! by its detector score; within a template, images of one media averaged (float32), media
//! features summed (float32), the sum L2-normalised (float64); pair score = cosine.

use std::collections::BTreeMap;

use super::numpy::pairwise_sum;
use super::MetricError;

/// Template features: `ids` sorted ascending (`np.unique`), `features` [T, dim] L2-normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFeatures {
    pub ids: Vec<i64>,
    pub dim: usize,
    pub features: Vec<f64>,
}

/// Per-image input features: [N, dim] = (image + flip) * faceness score, in float32 as numpy
/// computes `img_feats[:, :D] + img_feats[:, D:]` then `* faceness_scores[:, None]`.
pub fn image_features(
    plain: &[f32],
    flipped: &[f32],
    scores: &[f32],
    dim: usize,
) -> Result<Vec<f32>, MetricError> {
    if dim == 0 || plain.len() != flipped.len() || plain.len() != scores.len() * dim {
        return Err(MetricError::Shape {
            what: "IJB image features",
            message: format!(
                "{} + {} values and {} scores for rows of {dim}",
                plain.len(),
                flipped.len(),
                scores.len()
            ),
        });
    }
    Ok(plain
        .chunks_exact(dim)
        .zip(flipped.chunks_exact(dim))
        .zip(scores)
        .flat_map(|((a, b), &s)| a.iter().zip(b).map(move |(x, y)| (x + y) * s))
        .collect())
}

/// `image2template_feature(img_feats, templates, medias)`.
pub fn template_features(
    features: &[f32],
    dim: usize,
    templates: &[i64],
    medias: &[i64],
) -> Result<TemplateFeatures, MetricError> {
    if dim == 0 || features.len() != templates.len() * dim || templates.len() != medias.len() {
        return Err(MetricError::Shape {
            what: "IJB template input",
            message: format!(
                "{} feature values, {} template ids, {} media ids for rows of {dim}",
                features.len(),
                templates.len(),
                medias.len()
            ),
        });
    }
    // template -> media -> image rows, each in ascending id order (np.unique) and the rows in
    // file order (np.where).
    let mut groups: BTreeMap<i64, BTreeMap<i64, Vec<usize>>> = BTreeMap::new();
    for (row, (&t, &m)) in templates.iter().zip(medias).enumerate() {
        groups.entry(t).or_default().entry(m).or_default().push(row);
    }
    let mut ids = Vec::with_capacity(groups.len());
    let mut out = Vec::with_capacity(groups.len() * dim);
    for (template, media) in &groups {
        let mut sum: Option<Vec<f32>> = None;
        for rows in media.values() {
            let feature = media_feature(features, dim, rows);
            match &mut sum {
                None => sum = Some(feature),
                Some(s) => s.iter_mut().zip(&feature).for_each(|(a, b)| *a += b),
            }
        }
        let sum: Vec<f64> = sum.unwrap_or_default().into_iter().map(f64::from).collect();
        out.extend(normalise(&sum));
        ids.push(*template);
    }
    Ok(TemplateFeatures {
        ids,
        dim,
        features: out,
    })
}

/// A media's feature: its single image's, or `np.mean(rows, axis=0)` in float32 (rows added
/// in order, then divided by the count).
fn media_feature(features: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    let row = |r: usize| &features[r * dim..(r + 1) * dim];
    let mut acc = row(rows[0]).to_vec();
    if rows.len() == 1 {
        return acc;
    }
    for &r in &rows[1..] {
        acc.iter_mut().zip(row(r)).for_each(|(a, b)| *a += b);
    }
    let n = rows.len() as f32;
    acc.iter().map(|a| a / n).collect()
}

/// `sklearn.preprocessing.normalize` of one row (a zero row stays zero). The norm's sum is
/// numpy's pairwise sum; sklearn's einsum may differ in the last bit.
fn normalise(row: &[f64]) -> Vec<f64> {
    let squares: Vec<f64> = row.iter().map(|v| v * v).collect();
    let norm = pairwise_sum(&squares).sqrt();
    let norm = if norm == 0.0 { 1.0 } else { norm };
    row.iter().map(|v| v / norm).collect()
}

impl TemplateFeatures {
    fn row(&self, id: i64) -> Option<&[f64]> {
        let k = self.ids.binary_search(&id).ok()?;
        Some(&self.features[k * self.dim..(k + 1) * self.dim])
    }

    /// Cosine score of each pair, `np.sum(feat1 * feat2, -1)`. A pair naming a template that
    /// has no image is an error (the official code would silently score template 0).
    pub fn pair_scores(&self, pairs: &[(i64, i64)]) -> Result<Vec<f64>, MetricError> {
        let mut products = vec![0.0; self.dim];
        pairs
            .iter()
            .enumerate()
            .map(|(k, &(a, b))| {
                let missing = |id| MetricError::Shape {
                    what: "IJB pairs",
                    message: format!("pair {k} names template {id}, which has no image"),
                };
                let fa = self.row(a).ok_or_else(|| missing(a))?;
                let fb = self.row(b).ok_or_else(|| missing(b))?;
                for ((p, x), y) in products.iter_mut().zip(fa).zip(fb) {
                    *p = x * y;
                }
                Ok(pairwise_sum(&products))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_by_hand() {
        // Three images of template 7: media 1 has two images (averaged), media 2 one; then
        // the two media features are summed. Template 3 has one image.
        let plain = [1.0f32, 0.0, 3.0, 0.0, 0.0, 2.0, 0.0, 5.0];
        let flipped = [1.0f32, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 1.0];
        let scores = [1.0f32, 0.5, 1.0, 2.0];
        let f = image_features(&plain, &flipped, &scores, 2).unwrap();
        assert_eq!(f, vec![2.0, 0.0, 2.0, 0.0, 0.0, 4.0, 0.0, 12.0]);
        let t = template_features(&f, 2, &[7, 7, 7, 3], &[1, 1, 2, 9]).unwrap();
        assert_eq!(t.ids, vec![3, 7]);
        // Template 7: mean(media 1) = (2, 0), plus media 2 (0, 4) -> (2, 4) / sqrt(20).
        let s = 20f64.sqrt();
        assert_eq!(t.features, vec![0.0, 1.0, 2.0 / s, 4.0 / s]);
        let scores = t.pair_scores(&[(3, 7), (7, 7)]).unwrap();
        assert_eq!(scores[0], 4.0 / s);
        assert!((scores[1] - 1.0).abs() < 1e-15);
        assert!(t.pair_scores(&[(3, 4)]).is_err());
    }
}
