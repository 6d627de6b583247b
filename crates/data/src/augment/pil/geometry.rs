//! Pillow's affine `Image.transform` and `Image.rotate` on RGB8 (Geometry.c's generic
//! transform), plus the horizontal flip.
//!
//! Output pixel (x, y) samples the input at `(a0 (x+.5) + a1 (y+.5) + a2, a3 (x+.5) +
//! a4 (y+.5) + a5)`. A sample point outside `[0, w) x [0, h)` leaves the fill colour. Inside,
//! - nearest takes pixel `(int(xin), int(yin))`;
//! - bilinear and bicubic shift by half a pixel, take the floor and the fraction, clamp the
//!   column taps to the image and repeat the last valid row for rows past the edge, and
//!   truncate the result to u8 (bicubic clips to [0, 255] first). Pillow's "bicubic" here is
//!   the cubic convolution with a = -1, written as `p1 + d (p2 + d (p3 + d p4))`.
//!
//! Pillow's nearest-neighbour affine path uses 16.16 fixed point; this module evaluates
//! nearest in floating point (it may differ exactly on pixel boundaries). RandAugment uses
//! bicubic, which Pillow computes in double precision as here.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Resampling filter of a geometric transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    Bicubic,
}

/// Pillow's `Image.transform(size, AFFINE, matrix, resample, fillcolor=fill)` with the output
/// the size of the input.
pub fn affine(img: &RgbImage, matrix: [f64; 6], filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    let (width, height) = img.dimensions();
    let mut out = RgbImage::from_pixel(width, height, image::Rgb(fill));
    let sampler = Sampler {
        data: img.as_raw(),
        width: width as i64,
        height: height as i64,
    };
    let [a0, a1, a2, a3, a4, a5] = matrix;
    let dst: &mut [u8] = &mut out;
    for (y, out_row) in dst.chunks_exact_mut(width as usize * 3).enumerate() {
        let yc = y as f64 + 0.5;
        for (x, px) in out_row.chunks_exact_mut(3).enumerate() {
            let xc = x as f64 + 0.5;
            let xin = a0 * xc + a1 * yc + a2;
            let yin = a3 * xc + a4 * yc + a5;
            let value = match filter {
                Interpolation::Nearest => sampler.nearest(xin, yin),
                Interpolation::Bilinear => sampler.bilinear(xin, yin),
                Interpolation::Bicubic => sampler.bicubic(xin, yin),
            };
            if let Some(value) = value {
                px.copy_from_slice(&value);
            }
        }
    }
    out
}

/// `img.rotate(degrees, resample, fillcolor=fill)` (counter-clockwise about the centre, same
/// size). Multiples of 360 and 180 (and 90/270 on square images) are exact copies or
/// transposes, as Pillow's fast paths make them.
pub fn rotate(img: &RgbImage, degrees: f64, filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    let angle = degrees.rem_euclid(360.0);
    let (width, height) = img.dimensions();
    if angle == 0.0 {
        return img.clone();
    }
    if angle == 180.0 {
        return image::imageops::rotate180(img);
    }
    if width == height && angle == 90.0 {
        return image::imageops::rotate270(img); // Pillow's ROTATE_90 is counter-clockwise.
    }
    if width == height && angle == 270.0 {
        return image::imageops::rotate90(img);
    }
    let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    let radians = -angle.to_radians();
    let (cos, sin) = (round15(radians.cos()), round15(radians.sin()));
    let neg_sin = round15(-radians.sin());
    let mut matrix = [cos, sin, 0.0, neg_sin, cos, 0.0];
    // matrix[2], matrix[5] = transform(-cx, -cy), then + centre; as Pillow's Python does.
    matrix[2] = cos * -cx + sin * -cy + 0.0;
    matrix[5] = neg_sin * -cx + cos * -cy + 0.0;
    matrix[2] += cx;
    matrix[5] += cy;
    affine(img, matrix, filter, fill)
}

/// Python's `round(v, 15)`: the double nearest to the correctly rounded 15-decimal value.
fn round15(v: f64) -> f64 {
    format!("{v:.15}").parse().unwrap_or(v)
}

/// timm's `shear_x`: matrix (1, factor, 0, 0, 1, 0).
pub fn shear_x(img: &RgbImage, factor: f64, filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, factor, 0.0, 0.0, 1.0, 0.0], filter, fill)
}

/// timm's `shear_y`: matrix (1, 0, 0, factor, 1, 0).
pub fn shear_y(img: &RgbImage, factor: f64, filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, 0.0, factor, 1.0, 0.0], filter, fill)
}

/// timm's `translate_x_*`: matrix (1, 0, pixels, 0, 1, 0); positive pixels move the content
/// left (the output samples further right).
pub fn translate_x(img: &RgbImage, pixels: f64, filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, pixels, 0.0, 1.0, 0.0], filter, fill)
}

/// timm's `translate_y_*`: matrix (1, 0, 0, 0, 1, pixels).
pub fn translate_y(img: &RgbImage, pixels: f64, filter: Interpolation, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, 0.0, 0.0, 1.0, pixels], filter, fill)
}

/// Mirrors the image left to right in place.
pub fn flip_horizontal(img: &mut RgbImage) {
    let width = img.width() as usize;
    let raw: &mut [u8] = img;
    for row in raw.chunks_exact_mut(width * 3) {
        let (mut left, mut right) = (0, width.saturating_sub(1));
        while left < right {
            for c in 0..3 {
                row.swap(left * 3 + c, right * 3 + c);
            }
            left += 1;
            right -= 1;
        }
    }
}

/// Reads from the source image with Pillow's boundary rules.
struct Sampler<'a> {
    data: &'a [u8],
    width: i64,
    height: i64,
}

/// C's `FLOOR`: floor for negatives, truncation otherwise (the same for finite values).
fn floor_i64(v: f64) -> i64 {
    v.floor() as i64
}

/// Pillow's bicubic polynomial through v1..v4 at fraction d of the way from v2 to v3.
#[inline]
fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

impl Sampler<'_> {
    fn inside(&self, xin: f64, yin: f64) -> bool {
        xin >= 0.0 && xin < self.width as f64 && yin >= 0.0 && yin < self.height as f64
    }

    fn pixel(&self, x: i64, y: i64) -> &[u8] {
        let at = ((y * self.width + x) * 3) as usize;
        &self.data[at..at + 3]
    }

    fn clip_x(&self, x: i64) -> i64 {
        x.clamp(0, self.width - 1)
    }

    fn nearest(&self, xin: f64, yin: f64) -> Option<[u8; 3]> {
        let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
        let (x, y) = (coord(xin), coord(yin));
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return None;
        }
        let p = self.pixel(x, y);
        Some([p[0], p[1], p[2]])
    }

    fn bilinear(&self, xin: f64, yin: f64) -> Option<[u8; 3]> {
        if !self.inside(xin, yin) {
            return None;
        }
        let (xin, yin) = (xin - 0.5, yin - 0.5);
        let (x, y) = (floor_i64(xin), floor_i64(yin));
        let (dx, dy) = (xin - x as f64, yin - y as f64);
        let (x0, x1) = (self.clip_x(x), self.clip_x(x + 1));
        let row_y = y.clamp(0, self.height - 1);
        let next_valid = y + 1 >= 0 && y + 1 < self.height;
        let mut out = [0u8; 3];
        for (c, o) in out.iter_mut().enumerate() {
            let lerp = |row: i64| {
                let a = i32::from(self.pixel(x0, row)[c]);
                let b = i32::from(self.pixel(x1, row)[c]);
                f64::from(a) + f64::from(b - a) * dx
            };
            let v1 = lerp(row_y);
            let v2 = if next_valid { lerp(y + 1) } else { v1 };
            *o = (v1 + (v2 - v1) * dy) as u8;
        }
        Some(out)
    }

    fn bicubic(&self, xin: f64, yin: f64) -> Option<[u8; 3]> {
        if !self.inside(xin, yin) {
            return None;
        }
        let (xin, yin) = (xin - 0.5, yin - 0.5);
        let (x, y) = (floor_i64(xin), floor_i64(yin));
        let (dx, dy) = (xin - x as f64, yin - y as f64);
        let cols = [x - 1, x, x + 1, x + 2].map(|col| self.clip_x(col) as usize * 3);
        let stride = self.width as usize * 3;
        // The cubic through one row at dx. At dx = 0 Pillow's polynomial is exactly the
        // pixel under x (p1 + 0 * (...)), which translations and vertical shears hit on
        // every pixel.
        let row_cubic = |row: i64| -> [f64; 3] {
            let start = row as usize * stride;
            let line = &self.data[start..start + stride];
            if dx == 0.0 {
                return [0, 1, 2].map(|c| f64::from(line[cols[1] + c]));
            }
            [0, 1, 2].map(|c| {
                // Integer differences first, as the C macro does with UINT8 operands.
                let [a, b, cc, d] = cols.map(|col| i32::from(line[col + c]));
                let p1 = f64::from(b);
                let p2 = f64::from(-a + cc);
                let p3 = f64::from(2 * (a - b) + cc - d);
                let p4 = f64::from(-a + b - cc + d);
                p1 + dx * (p2 + dx * (p3 + dx * p4))
            })
        };
        let v = if dy == 0.0 {
            // Likewise the vertical polynomial at dy = 0 is the row under y, which is
            // inside the image whenever yin is.
            row_cubic(y)
        } else {
            // Rows y-1..y+2: the first clipped, the others repeating the previous row past
            // the edges, as Pillow's BICUBIC_BODY does.
            let valid = |row: i64| row >= 0 && row < self.height;
            let v1 = row_cubic((y - 1).clamp(0, self.height - 1));
            let v2 = if valid(y) { row_cubic(y) } else { v1 };
            let v3 = if valid(y + 1) { row_cubic(y + 1) } else { v2 };
            let v4 = if valid(y + 2) { row_cubic(y + 2) } else { v3 };
            [0, 1, 2].map(|c| cubic(v1[c], v2[c], v3[c], v4[c], dy))
        };
        Some(v.map(|v| {
            if v <= 0.0 {
                0
            } else if v >= 255.0 {
                255
            } else {
                v as u8
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8x8 checkerboard of 1-pixel squares: white where x + y is even.
    fn checkerboard() -> RgbImage {
        RgbImage::from_fn(8, 8, |x, y| {
            let v = if (x + y) % 2 == 0 { 255 } else { 0 };
            image::Rgb([v, v, 100])
        })
    }

    fn red(img: &RgbImage, x: u32, y: u32) -> u8 {
        img.get_pixel(x, y).0[0]
    }

    #[test]
    fn nearest_translation_shifts_and_fills() {
        let img = RgbImage::from_fn(6, 2, |x, y| image::Rgb([(10 * x + y) as u8, 0, 0]));
        // +2 pixels: output x samples input x + 2; the last two columns fall outside.
        let out = translate_x(&img, 2.0, Interpolation::Nearest, [128, 128, 128]);
        let reds: Vec<u8> = (0..6).map(|x| red(&out, x, 1)).collect();
        assert_eq!(reds, vec![21, 31, 41, 51, 128, 128]);
        // -1 pixel on y: row 0 is fill, row 1 comes from row 0.
        let out = translate_y(&img, -1.0, Interpolation::Nearest, [7, 7, 7]);
        assert_eq!(out.get_pixel(3, 0).0, [7, 7, 7]);
        assert_eq!(red(&out, 3, 1), 30);
    }

    #[test]
    fn nearest_shear_moves_rows_by_their_height() {
        // ShearX with factor 1: output (x, y) samples x + (y + .5) + .5 -> column x + y + 1,
        // so the checkerboard's parity flips relative to x + y (it samples x + y + 1).
        let img = checkerboard();
        let out = shear_x(&img, 1.0, Interpolation::Nearest, [128, 128, 128]);
        for y in 0..8u32 {
            for x in 0..8u32 {
                let src = x + y + 1;
                let expected = if src >= 8 {
                    128
                } else if (src + y) % 2 == 0 {
                    255
                } else {
                    0
                };
                assert_eq!(red(&out, x, y), expected, "({x}, {y})");
            }
        }
        // ShearY with factor -0.5: output (x, y) samples row y + .5 - .5 (x + .5).
        let out = shear_y(&img, -0.5, Interpolation::Nearest, [128, 128, 128]);
        for y in 0..8u32 {
            for x in 0..8u32 {
                let yin = y as f64 + 0.5 - 0.5 * (x as f64 + 0.5);
                let expected = if yin < 0.0 {
                    128
                } else if (x + yin as u32).is_multiple_of(2) {
                    255
                } else {
                    0
                };
                assert_eq!(red(&out, x, y), expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn integer_translation_is_exact_for_every_filter() {
        let img = RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 25) as u8, (y * 30) as u8, 9]));
        for filter in [Interpolation::Bilinear, Interpolation::Bicubic] {
            let out = translate_x(&img, -3.0, filter, [1, 2, 3]);
            for y in 0..7 {
                for x in 0..9 {
                    let expected = if x < 3 {
                        [1, 2, 3]
                    } else {
                        img.get_pixel(x - 3, y).0
                    };
                    assert_eq!(out.get_pixel(x, y).0, expected, "{filter:?} ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn half_pixel_shift_interpolates() {
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([(x * 10) as u8, 0, 0]));
        // Output x samples input x + 1 (pixel centre x + .5 plus .5): bilinear gives
        // (v[x] + v[x+1]) / 2; the last column samples x = 4, outside: fill.
        let out = translate_x(&img, 0.5, Interpolation::Bilinear, [0, 0, 0]);
        let reds: Vec<u8> = (0..4).map(|x| red(&out, x, 0)).collect();
        assert_eq!(reds, vec![5, 15, 25, 0]);
        // Bicubic (a = -1) at d = 0.5 between 10 and 20 with neighbours 0 and 30:
        // p1 = 10, p2 = 20, p3 = 2 (0 - 10) + 20 - 30 = -30, p4 = 0 + 10 - 20 + 30 = 20
        // -> 10 + .5 (20 + .5 (-30 + .5 * 20)) = 15.
        let out = translate_x(&img, 0.5, Interpolation::Bicubic, [0, 0, 0]);
        assert_eq!(red(&out, 1, 0), 15);
    }

    #[test]
    fn rotation_fast_paths_and_quarter_turn() {
        let img = RgbImage::from_fn(3, 3, |x, y| image::Rgb([(x + 3 * y) as u8, 0, 0]));
        assert_eq!(rotate(&img, 360.0, Interpolation::Bicubic, [0; 3]), img);
        let half = rotate(&img, 180.0, Interpolation::Bicubic, [0; 3]);
        assert_eq!(red(&half, 0, 0), 8);
        // 90 degrees counter-clockwise: the top-right corner goes to the top-left.
        let quarter = rotate(&img, 90.0, Interpolation::Bicubic, [0; 3]);
        assert_eq!(red(&quarter, 0, 0), 2);
        assert_eq!(red(&quarter, 0, 2), 0);
        // On a non-square image the general path gives the same mapping for interior pixels.
        let wide = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x + 5 * y) as u8, 0, 0]));
        let out = rotate(&wide, 90.0, Interpolation::Nearest, [99; 3]);
        // Centre (2.5, 1.5); output (2, 1) centre (2.5, 1.5) maps to itself.
        assert_eq!(red(&out, 2, 1), 7);
        assert_eq!(out.get_pixel(0, 0).0, [99; 3]);
    }

    #[test]
    fn flip_mirrors_columns() {
        let mut img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0]));
        flip_horizontal(&mut img);
        assert_eq!(img.get_pixel(0, 1).0, [2, 1, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [1, 0, 0]);
        assert_eq!(img.get_pixel(2, 0).0, [0, 0, 0]);
    }

    #[test]
    fn round15_matches_python() {
        // round(math.cos(-math.radians(27.0)), 15) in CPython.
        let v = round15((-27.0f64).to_radians().cos());
        assert_eq!(v, 0.891_006_524_188_368);
        assert_eq!(round15(0.5), 0.5);
        assert_eq!(round15(-1e-17), -0.0);
    }
}
