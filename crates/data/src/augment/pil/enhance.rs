//! Pillow's `ImageEnhance` on RGB8: each enhancer blends a "degenerate" image with the
//! original by `Image.blend(degenerate, img, factor)`.
//!
//! - Color: degenerate = the image converted to L and back to RGB;
//! - Contrast: degenerate = uniform grey at the rounded mean of the L image;
//! - Brightness: degenerate = black;
//! - Sharpness: degenerate = the image under the 3x3 SMOOTH filter.
//!
//! `ImagingBlend` takes the factor as a C `float` and computes
//! `(float)in1 + alpha * (float)(in2 - in1)` in single precision, truncating to u8; outside
//! [0, 1] it clips to [0, 255] first. The L conversion is ITU-R 601-2 in 16-bit fixed point:
//! `(r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16`.

use image::RgbImage;

/// `Image.blend(degenerate, img, factor)` written into `img` (both the same size).
pub fn blend_into(degenerate: &[u8], img: &mut [u8], factor: f64) {
    let alpha = factor as f32;
    if alpha == 0.0 {
        img.copy_from_slice(degenerate);
        return;
    }
    if alpha == 1.0 {
        return;
    }
    let interpolate = (0.0..=1.0).contains(&alpha);
    for (out, &d) in img.iter_mut().zip(degenerate) {
        let value = f32::from(d) + alpha * (i32::from(*out) - i32::from(d)) as f32;
        *out = if interpolate {
            value as u8
        } else if value <= 0.0 {
            0
        } else if value >= 255.0 {
            255
        } else {
            value as u8
        };
    }
}

/// Blends every pixel with one constant colour value (Contrast and Brightness).
fn blend_with_constant(img: &mut RgbImage, value: u8, factor: f64) {
    let alpha = factor as f32;
    if alpha == 1.0 {
        return;
    }
    let interpolate = (0.0..=1.0).contains(&alpha);
    let d = f32::from(value);
    let lut: [u8; 256] = std::array::from_fn(|v| {
        let out = d + alpha * (v as i32 - i32::from(value)) as f32;
        if interpolate {
            out as u8
        } else {
            out.clamp(0.0, 255.0) as u8
        }
    });
    for v in img.iter_mut() {
        *v = lut[usize::from(*v)];
    }
}

/// Pillow's RGB -> L conversion of one pixel.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.Color(img).enhance(factor)`.
pub fn color(img: &mut RgbImage, factor: f64) {
    let grey: Vec<u8> = img
        .chunks_exact(3)
        .flat_map(|p| {
            let l = luma(p[0], p[1], p[2]);
            [l, l, l]
        })
        .collect();
    blend_into(&grey, img, factor);
}

/// `int(mean + 0.5)` of the L image, as `ImageEnhance.Contrast` computes its grey level.
pub fn contrast_mean(img: &RgbImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in img.chunks_exact(3) {
        hist[usize::from(luma(p[0], p[1], p[2]))] += 1;
    }
    let count: u64 = hist.iter().sum();
    if count == 0 {
        return 0;
    }
    let sum: u64 = hist.iter().enumerate().map(|(i, &c)| i as u64 * c).sum();
    (sum as f64 / count as f64 + 0.5) as u8
}

/// `ImageEnhance.Contrast(img).enhance(factor)`.
pub fn contrast(img: &mut RgbImage, factor: f64) {
    let mean = contrast_mean(img);
    blend_with_constant(img, mean, factor);
}

/// `ImageEnhance.Brightness(img).enhance(factor)`.
pub fn brightness(img: &mut RgbImage, factor: f64) {
    blend_with_constant(img, 0, factor);
}

/// `ImageEnhance.Sharpness(img).enhance(factor)`.
pub fn sharpness(img: &mut RgbImage, factor: f64) {
    let smoothed = smooth(img);
    blend_into(smoothed.as_raw(), img, factor);
}

/// `img.filter(ImageFilter.SMOOTH)`: the 3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13 in float32
/// (`ImagingFilter3x3`: sum of rows y+1, y, y-1 onto 0.5, truncated and clipped), with the
/// one-pixel border copied unchanged.
pub fn smooth(img: &RgbImage) -> RgbImage {
    let (width, height) = (img.width() as usize, img.height() as usize);
    let mut out = img.clone();
    if width < 3 || height < 3 {
        return out;
    }
    let side = 1.0f32 / 13.0;
    let centre = 5.0f32 / 13.0;
    let kernel = [[side, side, side], [side, centre, side], [side, side, side]];
    let src = img.as_raw();
    let stride = width * 3;
    let dst: &mut [u8] = &mut out;
    for y in 1..height - 1 {
        // Pillow's order: kernel row 0 on the row below, row 2 on the row above.
        let rows = [
            &src[(y + 1) * stride..(y + 2) * stride],
            &src[y * stride..(y + 1) * stride],
            &src[(y - 1) * stride..y * stride],
        ];
        let out_row = &mut dst[y * stride..(y + 1) * stride];
        for x in 1..width - 1 {
            for c in 0..3 {
                let at = x * 3 + c;
                let mut sum = 0.5f32;
                for (row, k) in rows.iter().zip(&kernel) {
                    sum += f32::from(row[at - 3]) * k[0]
                        + f32::from(row[at]) * k[1]
                        + f32::from(row[at + 3]) * k[2];
                }
                out_row[at] = sum.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[[u8; 3]]) -> RgbImage {
        let raw: Vec<u8> = values.iter().flatten().copied().collect();
        RgbImage::from_raw(values.len() as u32, 1, raw).unwrap()
    }

    #[test]
    fn luma_uses_601_weights() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        // 255 * 19595 + 0x8000 = 5029493 -> >> 16 = 76 (0.299 * 255 = 76.2).
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
    }

    #[test]
    fn brightness_scales_and_truncates() {
        // factor 0.5: 0 + 0.5 * v, truncated: 255 -> 127, 101 -> 50.
        let mut img = row(&[[255, 101, 0]]);
        brightness(&mut img, 0.5);
        assert_eq!(img.as_raw(), &vec![127, 50, 0]);
        // factor 1.81 extrapolates and clips: 100 -> 181, 200 -> 255.
        let mut img = row(&[[100, 200, 1]]);
        brightness(&mut img, 1.81);
        assert_eq!(img.as_raw(), &vec![181, 255, 1]);
    }

    #[test]
    fn contrast_blends_towards_rounded_luma_mean() {
        // L values: 76 (red) and 150 (green): mean 113 exactly.
        let mut img = row(&[[255, 0, 0], [0, 255, 0]]);
        assert_eq!(contrast_mean(&img), 113);
        contrast(&mut img, 0.5);
        // 113 + 0.5 * (255 - 113) = 184, 113 + 0.5 * (0 - 113) = 56.5 -> 56.
        assert_eq!(img.as_raw(), &vec![184, 56, 56, 56, 184, 56]);
        // A mean ending in .5 rounds up: L values 0 and 1 -> 0.5 -> 1.
        let img = row(&[[0, 0, 0], [1, 1, 1]]);
        assert_eq!(contrast_mean(&img), 1);
    }

    #[test]
    fn color_zero_is_grey_and_two_extrapolates() {
        let mut img = row(&[[255, 0, 0]]);
        color(&mut img, 0.0);
        assert_eq!(img.as_raw(), &vec![76, 76, 76]);
        // factor 1.5: 76 + 1.5 * (255 - 76) = 344.5 -> 255; 76 + 1.5 * (0 - 76) = -38 -> 0.
        let mut img = row(&[[255, 0, 0]]);
        color(&mut img, 1.5);
        assert_eq!(img.as_raw(), &vec![255, 0, 0]);
    }

    #[test]
    fn smooth_averages_interior_and_keeps_border() {
        // A single bright pixel in the middle of a 3x3 black image: centre becomes
        // 0.5 + 255 * 5/13 = 98.57 -> 98; the border is copied.
        let mut img = RgbImage::new(3, 3);
        img.put_pixel(1, 1, image::Rgb([255, 13, 0]));
        let out = smooth(&img);
        assert_eq!(out.get_pixel(1, 1).0, [98, 5, 0]);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        // A constant image stays constant (13 * v / 13 + 0.5 truncates back to v).
        let flat = RgbImage::from_pixel(5, 4, image::Rgb([200, 1, 255]));
        assert_eq!(smooth(&flat), flat);
    }

    #[test]
    fn sharpness_extrapolates_away_from_smooth() {
        let mut img = RgbImage::new(3, 3);
        img.put_pixel(1, 1, image::Rgb([100, 100, 100]));
        // smooth centre = int(0.5 + 100 * 5/13) = 38; factor 2: 38 + 2 * (100 - 38) = 162.
        sharpness(&mut img, 2.0);
        assert_eq!(img.get_pixel(1, 1).0, [162, 162, 162]);
        assert_eq!(img.get_pixel(0, 1).0, [0, 0, 0]);
    }
}
