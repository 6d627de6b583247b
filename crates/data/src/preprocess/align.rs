//! Five-point face alignment onto the ArcFace 112x112 template, as insightface does it:
//! a least-squares similarity transform (Umeyama, like skimage's
//! `SimilarityTransform.estimate`) followed by `cv2.warpAffine(img, M, (112, 112),
//! borderValue=0.0)`.
//!
//! The warp reproduces OpenCV's fixed-point `warpAffine` for 8-bit images (checked against
//! 4.11): the inverse map is evaluated at 1/1024 pixel (`AB_BITS = 10`, rounded half to even),
//! truncated to 1/32 pixel (`INTER_BITS = 5`), and the four neighbours are blended with integer
//! weights `32 (32 - fx)(32 - fy)`, ... (they sum to 2^15), rounded with `(sum + 2^14) >> 15`.
//! Neighbours outside the image count as the border value 0.

use image::RgbImage;

use super::PreprocessError;

/// Side of the aligned crop.
pub const ALIGNED_SIZE: u32 = 112;

/// Where the eyes, nose tip and mouth corners land in the 112x112 crop (insightface's
/// `arcface_dst`; stored as `float32` there, hence `f32` here).
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2x3 affine map `[x', y'] = M [x, y, 1]`.
pub type Affine = [[f64; 3]; 2];

/// Warps `img` so that `landmarks` (left eye, right eye, nose, left mouth corner, right mouth
/// corner, in `img`'s pixel coordinates) land on [`ARCFACE_TEMPLATE`]; returns 112x112 RGB.
pub fn align_to_arcface(
    img: &RgbImage,
    landmarks: [[f32; 2]; 5],
) -> Result<RgbImage, PreprocessError> {
    let transform = similarity_transform(&landmarks, &ARCFACE_TEMPLATE)?;
    warp_affine_cv2(img, &transform, ALIGNED_SIZE, ALIGNED_SIZE)
}

/// Least-squares similarity transform (rotation, uniform scale, translation) mapping `src`
/// onto `dst`, i.e. Umeyama's estimate with scaling and without reflection.
///
/// In 2-D Umeyama's SVD solution has a closed form: with centred points,
/// `a = sum(s . d)`, `b = sum(s x d)`, the rotation angle is `atan2(b, a)` and the scale is
/// `sqrt(a^2 + b^2) / sum(|s|^2)` (the sign fix-up for `det < 0` is what makes
/// `s1 - s2 = sqrt(a^2 + b^2)` there).
pub fn similarity_transform(
    src: &[[f32; 2]; 5],
    dst: &[[f32; 2]; 5],
) -> Result<Affine, PreprocessError> {
    if src.iter().flatten().any(|v| !v.is_finite()) {
        return Err(PreprocessError::NonFiniteLandmarks { landmarks: *src });
    }
    let to_f64 = |p: &[f32; 2]| [f64::from(p[0]), f64::from(p[1])];
    let src: Vec<[f64; 2]> = src.iter().map(to_f64).collect();
    let dst: Vec<[f64; 2]> = dst.iter().map(to_f64).collect();
    let mean = |pts: &[[f64; 2]]| {
        let n = pts.len() as f64;
        let sum = pts
            .iter()
            .fold([0.0, 0.0], |acc, p| [acc[0] + p[0], acc[1] + p[1]]);
        [sum[0] / n, sum[1] / n]
    };
    let (src_mean, dst_mean) = (mean(&src), mean(&dst));

    let (mut dot, mut cross, mut spread) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(&dst) {
        let (sx, sy) = (s[0] - src_mean[0], s[1] - src_mean[1]);
        let (dx, dy) = (d[0] - dst_mean[0], d[1] - dst_mean[1]);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        spread += sx * sx + sy * sy;
    }
    let norm = dot.hypot(cross);
    if !(spread > 1e-12 && norm > 1e-12 * spread) {
        let landmarks = [0, 1, 2, 3, 4].map(|i| [src[i][0] as f32, src[i][1] as f32]);
        return Err(PreprocessError::DegenerateLandmarks { landmarks });
    }
    let scale = norm / spread;
    let (cos, sin) = (scale * dot / norm, scale * cross / norm);
    Ok([
        [
            cos,
            -sin,
            dst_mean[0] - (cos * src_mean[0] - sin * src_mean[1]),
        ],
        [
            sin,
            cos,
            dst_mean[1] - (sin * src_mean[0] + cos * src_mean[1]),
        ],
    ])
}

const AB_BITS: u32 = 10;
const INTER_BITS: u32 = 5;
const INTER_TAB_SIZE: i32 = 1 << INTER_BITS;
const REMAP_COEF_BITS: u32 = 15;

/// `cv2.warpAffine(img, m, (dst_width, dst_height), flags=INTER_LINEAR,
/// borderMode=BORDER_CONSTANT, borderValue=0)`; `m` maps source to destination coordinates.
/// A singular `m` gives an all-black image, as in OpenCV.
pub fn warp_affine_cv2(
    img: &RgbImage,
    m: &Affine,
    dst_width: u32,
    dst_height: u32,
) -> Result<RgbImage, PreprocessError> {
    let (width, height) = img.dimensions();
    if width == 0 || height == 0 || dst_width == 0 || dst_height == 0 {
        return Err(PreprocessError::EmptyResize {
            width,
            height,
            dst_width,
            dst_height,
        });
    }
    let inv = invert_affine(m);
    let ab_scale = f64::from(1u32 << AB_BITS);
    let round_delta = (1 << AB_BITS) / INTER_TAB_SIZE / 2;
    let adelta: Vec<i32> = (0..dst_width)
        .map(|x| cv_round(inv[0][0] * f64::from(x) * ab_scale))
        .collect();
    let bdelta: Vec<i32> = (0..dst_width)
        .map(|x| cv_round(inv[1][0] * f64::from(x) * ab_scale))
        .collect();

    let (w, h) = (width as i32, height as i32);
    let src = img.as_raw();
    let stride = width as usize * 3;
    let pixel = |x: i32, y: i32| -> [i32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0; 3];
        }
        let at = y as usize * stride + x as usize * 3;
        [src[at], src[at + 1], src[at + 2]].map(i32::from)
    };

    let mut out = RgbImage::new(dst_width, dst_height);
    for y in 0..dst_height {
        let fy = f64::from(y);
        let x0 = cv_round((inv[0][1] * fy + inv[0][2]) * ab_scale).wrapping_add(round_delta);
        let y0 = cv_round((inv[1][1] * fy + inv[1][2]) * ab_scale).wrapping_add(round_delta);
        for x in 0..dst_width {
            let sx = x0.wrapping_add(adelta[x as usize]) >> (AB_BITS - INTER_BITS);
            let sy = y0.wrapping_add(bdelta[x as usize]) >> (AB_BITS - INTER_BITS);
            // OpenCV stores the integer part in an i16 map.
            let ix = i32::from(saturate_i16(sx >> INTER_BITS));
            let iy = i32::from(saturate_i16(sy >> INTER_BITS));
            if ix >= w || ix + 1 < 0 || iy >= h || iy + 1 < 0 {
                continue; // wholly outside: border value 0
            }
            let (ax, ay) = (sx & (INTER_TAB_SIZE - 1), sy & (INTER_TAB_SIZE - 1));
            let weights = [
                (INTER_TAB_SIZE - ax) * (INTER_TAB_SIZE - ay),
                ax * (INTER_TAB_SIZE - ay),
                (INTER_TAB_SIZE - ax) * ay,
                ax * ay,
            ]
            .map(|v| v * (1 << (REMAP_COEF_BITS - 2 * INTER_BITS)));
            let taps = [
                pixel(ix, iy),
                pixel(ix + 1, iy),
                pixel(ix, iy + 1),
                pixel(ix + 1, iy + 1),
            ];
            let mut value = [0u8; 3];
            for (c, v) in value.iter_mut().enumerate() {
                let sum: i32 = taps.iter().zip(&weights).map(|(p, w)| p[c] * w).sum();
                *v = ((sum + (1 << (REMAP_COEF_BITS - 1))) >> REMAP_COEF_BITS).clamp(0, 255) as u8;
            }
            out.put_pixel(x, y, image::Rgb(value));
        }
    }
    Ok(out)
}

/// Destination-to-source map, computed as `cv::warpAffine` does (a singular map gives zeros).
fn invert_affine(m: &Affine) -> Affine {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let inv_det = if det != 0.0 { 1.0 / det } else { 0.0 };
    let a11 = m[1][1] * inv_det;
    let a22 = m[0][0] * inv_det;
    let a12 = -m[0][1] * inv_det;
    let a21 = -m[1][0] * inv_det;
    let b1 = -a11 * m[0][2] - a12 * m[1][2];
    let b2 = -a21 * m[0][2] - a22 * m[1][2];
    [[a11, a12, b1], [a21, a22, b2]]
}

/// `saturate_cast<int>(double)`: round half to even, clamp to the i32 range.
fn cv_round(v: f64) -> i32 {
    let r = v.round_ties_even();
    if r.is_nan() {
        0
    } else {
        r.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }
}

fn saturate_i16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &Affine, p: [f32; 2]) -> [f64; 2] {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        [
            m[0][0] * x + m[0][1] * y + m[0][2],
            m[1][0] * x + m[1][1] * y + m[1][2],
        ]
    }

    #[test]
    fn recovers_an_exact_similarity() {
        // Template rotated by 30 degrees, scaled by 2.5 and shifted: the estimate must invert it.
        let (angle, scale, shift) = (30f64.to_radians(), 2.5, [40.0, -12.0]);
        let src = ARCFACE_TEMPLATE.map(|p| {
            let (x, y) = (f64::from(p[0]), f64::from(p[1]));
            [
                (scale * (angle.cos() * x - angle.sin() * y) + shift[0]) as f32,
                (scale * (angle.sin() * x + angle.cos() * y) + shift[1]) as f32,
            ]
        });
        let m = similarity_transform(&src, &ARCFACE_TEMPLATE).unwrap();
        for (s, d) in src.iter().zip(&ARCFACE_TEMPLATE) {
            let p = apply(&m, *s);
            assert!((p[0] - f64::from(d[0])).abs() < 1e-4, "{p:?} vs {d:?}");
            assert!((p[1] - f64::from(d[1])).abs() < 1e-4, "{p:?} vs {d:?}");
        }
        assert!((m[0][0] - (-angle).cos() / scale).abs() < 1e-6);
    }

    #[test]
    fn identity_landmarks_give_identity_warp() {
        let m = similarity_transform(&ARCFACE_TEMPLATE, &ARCFACE_TEMPLATE).unwrap();
        let expected = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        for (row, want) in m.iter().zip(&expected) {
            for (v, w) in row.iter().zip(want) {
                assert!((v - w).abs() < 1e-9, "{m:?}");
            }
        }
        let img = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 7]));
        assert_eq!(align_to_arcface(&img, ARCFACE_TEMPLATE).unwrap(), img);
    }

    #[test]
    fn half_pixel_shift_averages_neighbours_and_fills_border_with_zero() {
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([(x * 10) as u8, 100, 255]));
        // Move everything right by half a pixel: dst(x) = (src(x - 1) + src(x - 0.5)) / 2.
        let m = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]];
        let out = warp_affine_cv2(&img, &m, 4, 1).unwrap();
        let reds: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        // x = 0 blends border 0 with 0; then (0+10)/2, (10+20)/2, (20+30)/2 -> 5, 15, 25.
        assert_eq!(reds, vec![0, 5, 15, 25]);
        assert_eq!(out.get_pixel(0, 0).0, [0, 50, 128]);
    }

    #[test]
    fn degenerate_and_non_finite_landmarks_are_errors() {
        assert!(matches!(
            similarity_transform(&[[3.0, 3.0]; 5], &ARCFACE_TEMPLATE),
            Err(PreprocessError::DegenerateLandmarks { .. })
        ));
        let mut bad = ARCFACE_TEMPLATE;
        bad[2][1] = f32::NAN;
        assert!(matches!(
            similarity_transform(&bad, &ARCFACE_TEMPLATE),
            Err(PreprocessError::NonFiniteLandmarks { .. })
        ));
    }
}
