//! `cv2.resize(img, (w, h))` (INTER_LINEAR) on 8-bit images, reproduced bit for bit.
//!
//! OpenCV (4.x, checked against 4.11) computes linear resizing of `uint8` images in fixed point:
//! - source coordinate of destination pixel `d`: `f = (float)((d + 0.5) * scale - 0.5)` with
//!   `scale = 1 / (dst / src)` in double, `s = floor(f)`, fraction `f - s` in float; a source
//!   coordinate left of 0 or right of the last pixel is clamped (weight on the edge pixel);
//! - weights `round((1 - frac) * 2048)`, `round(frac * 2048)` (INTER_RESIZE_COEF_BITS = 11,
//!   round half to even);
//! - horizontal pass: exact integer sums `p0 * a0 + p1 * a1`;
//! - vertical pass as in its SIMD kernel (`VResizeLinearVec_32s8u`):
//!   `((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1 >> 16)`, then `(sum + 2) >> 2`, saturated;
//! - an exact 2x downscale is an area average, `(a + b + c + d + 2) >> 2`;
//! - an equal size is a copy.

use image::RgbImage;

use super::PreprocessError;

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Resizes like `cv2.resize(img, (dst_width, dst_height))` with its default INTER_LINEAR.
pub fn resize_bilinear_cv2(
    img: &RgbImage,
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
    let src = Plane {
        data: img.as_raw(),
        width: width as usize,
        height: height as usize,
        channels: 3,
    };
    let data = resize_plane(&src, dst_width as usize, dst_height as usize);
    // ok: resize_plane returns exactly dst_width * dst_height * 3 bytes.
    Ok(RgbImage::from_raw(dst_width, dst_height, data).expect("buffer size matches"))
}

/// An interleaved 8-bit image borrowed as a slice.
struct Plane<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    channels: usize,
}

impl Plane<'_> {
    fn row(&self, y: usize) -> &[u8] {
        let stride = self.width * self.channels;
        &self.data[y * stride..(y + 1) * stride]
    }
}

fn resize_plane(src: &Plane, dst_width: usize, dst_height: usize) -> Vec<u8> {
    if src.width == dst_width && src.height == dst_height {
        return src.data.to_vec();
    }
    let scale_x = 1.0 / (dst_width as f64 / src.width as f64);
    let scale_y = 1.0 / (dst_height as f64 / src.height as f64);
    if is_exact_half(scale_x) && is_exact_half(scale_y) {
        return average_2x2(src, dst_width, dst_height);
    }
    let columns = axis_taps(dst_width, scale_x);
    let rows = axis_taps(dst_height, scale_y);

    let cn = src.channels;
    let row_len = dst_width * cn;
    let mut out = vec![0u8; dst_height * row_len];
    let mut upper = vec![0i32; row_len];
    let mut lower = vec![0i32; row_len];
    for (dy, tap) in rows.iter().enumerate() {
        // Rows above/below the image repeat the edge row, as OpenCV clips row indices.
        let y0 = tap.index.clamp(0, src.height as i64 - 1) as usize;
        let y1 = (tap.index + 1).clamp(0, src.height as i64 - 1) as usize;
        horizontal_pass(src.row(y0), cn, &columns, &mut upper);
        horizontal_pass(src.row(y1), cn, &columns, &mut lower);
        let out_row = &mut out[dy * row_len..(dy + 1) * row_len];
        for ((o, &h0), &h1) in out_row.iter_mut().zip(&upper).zip(&lower) {
            let sum = (((h0 >> 4) * tap.w0) >> 16) + (((h1 >> 4) * tap.w1) >> 16);
            *o = ((sum + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// OpenCV switches INTER_LINEAR to its fast area path when both scales are exactly 2.
fn is_exact_half(scale: f64) -> bool {
    (scale - 2.0).abs() < f64::EPSILON
}

fn average_2x2(src: &Plane, dst_width: usize, dst_height: usize) -> Vec<u8> {
    let cn = src.channels;
    let mut out = Vec::with_capacity(dst_width * dst_height * cn);
    for dy in 0..dst_height {
        let (r0, r1) = (src.row(2 * dy), src.row(2 * dy + 1));
        for dx in 0..dst_width {
            for c in 0..cn {
                let (a, b) = (2 * dx * cn + c, (2 * dx + 1) * cn + c);
                let sum = u32::from(r0[a]) + u32::from(r0[b]) + u32::from(r1[a]) + u32::from(r1[b]);
                out.push(((sum + 2) >> 2) as u8);
            }
        }
    }
    out
}

/// Source index of the first of two taps and their fixed-point weights (sum about 2048).
#[derive(Debug, Clone, Copy)]
struct Tap {
    index: i64,
    w0: i32,
    w1: i32,
}

/// The taps of one axis, computed with OpenCV's float arithmetic. Indices are not clamped
/// here: columns are clamped (with weight moved to the edge pixel) in the horizontal pass,
/// rows are clipped when read while keeping their weights, as OpenCV does.
fn axis_taps(dst_len: usize, scale: f64) -> Vec<Tap> {
    (0..dst_len)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let index = f.floor() as i64;
            let frac = f - index as f32;
            Tap {
                index,
                w0: weight(1.0 - frac),
                w1: weight(frac),
            }
        })
        .collect()
}

fn weight(fraction: f32) -> i32 {
    (fraction * COEF_SCALE).round_ties_even() as i32
}

/// out[dx * cn + c] = row[x0] * w0 + row[x0 + 1] * w1 (source pixels, channel c).
fn horizontal_pass(row: &[u8], cn: usize, columns: &[Tap], out: &mut [i32]) {
    let src_width = row.len() / cn;
    for (dx, tap) in columns.iter().enumerate() {
        let (x0, w0, w1) = if tap.index < 0 {
            (0, 1 << COEF_BITS, 0)
        } else if tap.index as usize >= src_width - 1 {
            (src_width - 1, 1 << COEF_BITS, 0)
        } else {
            (tap.index as usize, tap.w0, tap.w1)
        };
        let x1 = (x0 + 1).min(src_width - 1);
        for c in 0..cn {
            out[dx * cn + c] = i32::from(row[x0 * cn + c]) * w0 + i32::from(row[x1 * cn + c]) * w1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x - y) as u8])
        })
    }

    #[test]
    fn same_size_is_a_copy() {
        let img = gradient(112, 112);
        assert_eq!(resize_bilinear_cv2(&img, 112, 112).unwrap(), img);
    }

    #[test]
    fn constant_image_stays_constant() {
        // Weights that sum to 2048 and the vertical rounding must reproduce a flat colour.
        for &(w, h) in &[(37, 91), (250, 250), (5, 3), (500, 77)] {
            let img = RgbImage::from_pixel(w, h, image::Rgb([200, 17, 255]));
            let out = resize_bilinear_cv2(&img, 112, 112).unwrap();
            assert!(out.pixels().all(|p| p.0 == [200, 17, 255]), "{w}x{h}");
        }
    }

    #[test]
    fn exact_half_is_a_rounded_2x2_mean() {
        let img = RgbImage::from_fn(4, 2, |x, _| image::Rgb([x as u8, 0, 255]));
        let out = resize_bilinear_cv2(&img, 2, 1).unwrap();
        // (0 + 1 + 0 + 1 + 2) >> 2 = 1, (2 + 3 + 2 + 3 + 2) >> 2 = 3
        assert_eq!(out.as_raw(), &vec![1, 0, 255, 3, 0, 255]);
    }

    #[test]
    fn upscaling_a_single_pixel_replicates_it() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([9, 99, 199]));
        let out = resize_bilinear_cv2(&img, 112, 112).unwrap();
        assert!(out.pixels().all(|p| p.0 == [9, 99, 199]));
    }

    #[test]
    fn empty_sizes_are_errors() {
        let img = gradient(4, 4);
        assert!(resize_bilinear_cv2(&img, 0, 4).is_err());
        assert!(resize_bilinear_cv2(&RgbImage::new(0, 3), 4, 4).is_err());
    }
}
