//! Pillow's `Image.resize(size, BILINEAR | BICUBIC)` on RGB8 (Resample.c): a separable
//! convolution whose support grows with the downscale factor (so downscaling is
//! antialiased), horizontal pass first, each pass in 22-bit fixed point and rounded to u8.
//!
//! For output index `i` the filter is centred on `(i + 0.5) * scale` with
//! `scale = in / out`; taps run over `[int(centre - support + .5), int(centre + support + .5))`
//! clipped to the image, with weights `filter((j - centre + .5) / max(scale, 1))` normalised
//! to sum 1 and then converted to integers as `int(w * 2^22 +- .5)`. Pillow's resampling
//! bicubic uses a = -0.5 (unlike its affine transforms).

use image::RgbImage;

use super::geometry::Interpolation;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Taps of one output index: first source index and integer weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Resampling taps for `in_size -> out_size` (Pillow's `precompute_coeffs` over the whole
/// axis, then `normalize_coeffs_8bpc`).
fn axis_taps(in_size: usize, out_size: usize, filter: Interpolation) -> Vec<Taps> {
    let (kernel, support): (fn(f64) -> f64, f64) = match filter {
        Interpolation::Bicubic => (bicubic_filter, 2.0),
        // Pillow has no nearest *resampling* filter here; callers never ask for it.
        Interpolation::Bilinear | Interpolation::Nearest => (bilinear_filter, 1.0),
    };
    // Pillow passes the box edges as C floats.
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let inv = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let count = xmax.saturating_sub(xmin);
            let raw: Vec<f64> = (0..count)
                .map(|x| kernel((x as f64 + xmin as f64 - center + 0.5) * inv))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    if w < 0.0 {
                        (-0.5 + scaled) as i32
                    } else {
                        (0.5 + scaled) as i32
                    }
                })
                .collect();
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `img.resize((width, height), filter)`; the same size returns a copy, as Pillow does.
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Interpolation) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    if (in_w, in_h) == (width, height) || in_w == 0 || in_h == 0 || width == 0 || height == 0 {
        return if (in_w, in_h) == (width, height) {
            img.clone()
        } else {
            RgbImage::new(width, height)
        };
    }
    let horizontal = if in_w != width {
        let taps = axis_taps(in_w as usize, width as usize, filter);
        resample_rows(img, &taps, width)
    } else {
        img.clone()
    };
    if in_h != height {
        let taps = axis_taps(in_h as usize, height as usize, filter);
        resample_columns(&horizontal, &taps, height)
    } else {
        horizontal
    }
}

fn resample_rows(img: &RgbImage, taps: &[Taps], out_w: u32) -> RgbImage {
    let (in_w, h) = img.dimensions();
    let mut out = RgbImage::new(out_w, h);
    let src = img.as_raw();
    let in_stride = in_w as usize * 3;
    let dst: &mut [u8] = &mut out;
    for (src_row, dst_row) in src
        .chunks_exact(in_stride)
        .zip(dst.chunks_exact_mut(out_w as usize * 3))
    {
        for (tap, px) in taps.iter().zip(dst_row.chunks_exact_mut(3)) {
            let mut sums = [1i32 << (PRECISION_BITS - 1); 3];
            for (k, &w) in tap.weights.iter().enumerate() {
                let at = (tap.start + k) * 3;
                for c in 0..3 {
                    sums[c] += i32::from(src_row[at + c]) * w;
                }
            }
            for c in 0..3 {
                px[c] = clip8(sums[c]);
            }
        }
    }
    out
}

fn resample_columns(img: &RgbImage, taps: &[Taps], out_h: u32) -> RgbImage {
    let w = img.width();
    let mut out = RgbImage::new(w, out_h);
    let src = img.as_raw();
    let stride = w as usize * 3;
    let dst: &mut [u8] = &mut out;
    for (tap, dst_row) in taps.iter().zip(dst.chunks_exact_mut(stride)) {
        for (i, o) in dst_row.iter_mut().enumerate() {
            let mut sum = 1i32 << (PRECISION_BITS - 1);
            for (k, &weight) in tap.weights.iter().enumerate() {
                sum += i32::from(src[(tap.start + k) * stride + i]) * weight;
            }
            *o = clip8(sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy_and_constant_stays_constant() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 30) as u8, (y * 50) as u8, 3]));
        assert_eq!(resize(&img, 7, 5, Interpolation::Bicubic), img);
        let flat = RgbImage::from_pixel(37, 91, image::Rgb([200, 0, 255]));
        for filter in [Interpolation::Bilinear, Interpolation::Bicubic] {
            for (w, h) in [(112, 112), (10, 200), (3, 3)] {
                let out = resize(&flat, w, h, filter);
                assert!(
                    out.pixels().all(|p| p.0 == [200, 0, 255]),
                    "{filter:?} {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn exact_halving_averages_pairs_with_bilinear() {
        // 4 -> 2 with bilinear: scale 2, support 2, centre 1.0 for output 0: taps at 0..=2
        // (xmin = int(-0.5) = 0, xmax = int(3.5) = 3) with weights filter((j - 1 + .5) / 2):
        // j=0: 0.75, j=1: 0.75, j=2: 0.25, normalised 3/7, 3/7, 1/7.
        let img = RgbImage::from_fn(4, 1, |x, _| {
            image::Rgb([[0, 70, 140, 210][x as usize], 0, 0])
        });
        let out = resize(&img, 2, 1, Interpolation::Bilinear);
        // (0 * 3 + 70 * 3 + 140) / 7 = 50.
        assert_eq!(out.get_pixel(0, 0).0[0], 50);
        // Output 1: centre 3.0, taps 1..4 (xmax clipped to 4): weights 0.25, 0.75, 0.75 ->
        // (70 + 140 * 3 + 210 * 3) / 7 = 160.
        assert_eq!(out.get_pixel(1, 0).0[0], 160);
    }

    #[test]
    fn upscaling_bicubic_overshoots_and_clips() {
        // A step edge upscaled with a = -0.5 rings: values just past the edge exceed the
        // range and are clipped; the flat parts stay exact.
        let img = RgbImage::from_fn(4, 1, |x, _| {
            let v = if x < 2 { 0 } else { 255 };
            image::Rgb([v, v, v])
        });
        let out = resize(&img, 16, 1, Interpolation::Bicubic);
        let reds: Vec<u8> = (0..16).map(|x| out.get_pixel(x, 0).0[0]).collect();
        assert_eq!(reds[0], 0);
        assert_eq!(reds[15], 255);
        assert!(reds.windows(2).all(|w| w[0] <= w[1]), "{reds:?}");
    }
}
