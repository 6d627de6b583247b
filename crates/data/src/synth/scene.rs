//! The photograph around the face: a textured, coloured background before drawing, and
//! after it the lighting gradient, brightness, contrast, colour cast, blur and sensor noise.

use super::geom::v2;
use super::raster::{mix, Canvas};
use super::rng::SynthRng;
use super::spec::{BackgroundKind, Scene};

fn smooth(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Fills the canvas with the scene's background pattern (pixel space).
pub fn background(canvas: &mut Canvas, scene: &Scene) {
    let [c0, c1, c2] = scene.colours;
    let dir = v2(scene.pattern_angle.cos(), scene.pattern_angle.sin());
    let w = canvas.width() as f32;
    let period = scene.pattern_period;
    let phase = scene.pattern_phase;
    match scene.background {
        BackgroundKind::Gradient => canvas.fill_pixels(|x, y| {
            let t = (v2(x - w * 0.5, y - w * 0.5).dot(dir)) / w + 0.5;
            let ripple = 0.5 + 0.5 * (x / period + phase).sin() * (y / (period * 1.3)).cos();
            mix(mix(c0, c1, smooth(t)), c2, 0.3 * ripple)
        }),
        BackgroundKind::Stripes => canvas.fill_pixels(|x, y| {
            let s = 0.5 + 0.5 * (std::f32::consts::TAU * v2(x, y).dot(dir) / period + phase).sin();
            mix(mix(c0, c1, smooth(s * 1.6 - 0.3)), c2, y / w * 0.3)
        }),
        BackgroundKind::Blobs => {
            canvas.fill_pixels(|x, y| mix(c0, c1, 0.5 * (x + y) / w));
            let width = canvas.width();
            for &(centre, radius, colour) in &scene.blobs {
                for (i, px) in canvas.pixels_mut().iter_mut().enumerate() {
                    let p = v2((i % width) as f32 + 0.5, (i / width) as f32 + 0.5) - centre;
                    let k = (-(p.dot(p)) / (radius * radius) * 1.5).exp();
                    if k > 0.004 {
                        *px = mix(*px, colour, k * 0.9);
                    }
                }
            }
        }
        BackgroundKind::Tiles => canvas.fill_pixels(|x, y| {
            let u = v2(x, y).dot(dir) / period + phase;
            let v = v2(-y, x).dot(dir) / period;
            let checker = (u.floor() + v.floor()).rem_euclid(2.0);
            mix(mix(c0, c1, checker), c2, 0.25 * (y / w))
        }),
    }
}

/// Separable Gaussian blur with clamped edges.
fn blur(canvas: &mut Canvas, sigma: f32) {
    if sigma < 0.05 {
        return;
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let weights: Vec<f32> = weights.iter().map(|w| w / total).collect();
    let (w, h) = (canvas.width() as isize, canvas.height() as isize);
    for horizontal in [true, false] {
        let src = canvas.pixels().to_vec();
        let dst = canvas.pixels_mut();
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0f32; 3];
                for (k, weight) in weights.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) = if horizontal {
                        ((x + d).clamp(0, w - 1), y)
                    } else {
                        (x, (y + d).clamp(0, h - 1))
                    };
                    let p = src[(sy * w + sx) as usize];
                    for c in 0..3 {
                        acc[c] += p[c] * weight;
                    }
                }
                dst[(y * w + x) as usize] = acc;
            }
        }
    }
}

/// Approximately standard normal from one 64-bit draw (sum of four 16-bit uniforms).
fn quick_normal(rng: &mut SynthRng) -> f32 {
    let bits = rng.next_u64();
    let sum: f32 = (0..4)
        .map(|k| ((bits >> (16 * k)) & 0xFFFF) as f32 / 65536.0)
        .sum();
    (sum - 2.0) * 3.0f32.sqrt()
}

/// Lighting, exposure, colour cast, blur and noise, in that order of a camera's pipeline
/// (blur before noise: noise is added by the sensor after the optics).
pub fn develop(canvas: &mut Canvas, scene: &Scene, blur_sigma: f32) {
    let w = canvas.width();
    let half = w as f32 * 0.5;
    let dir = scene.light_direction;
    for (i, px) in canvas.pixels_mut().iter_mut().enumerate() {
        let p = v2((i % w) as f32 + 0.5 - half, (i / w) as f32 + 0.5 - half);
        let light = 1.0 + scene.light_strength * p.dot(dir) / half;
        for (v, cast) in px.iter_mut().zip(scene.colour_cast) {
            let lit = *v * light * scene.brightness;
            *v = ((lit - 0.5) * scene.contrast + 0.5) * cast;
        }
    }
    blur(canvas, blur_sigma);
    let mut rng = SynthRng::keyed(scene.noise_seed, &[0x4015E]);
    for px in canvas.pixels_mut() {
        for c in px.iter_mut() {
            *c += scene.noise_sigma * quick_normal(&mut rng);
        }
    }
}

/// Quantises to 8-bit RGB.
pub fn to_rgb8(canvas: &Canvas) -> image::RgbImage {
    let mut out = image::RgbImage::new(canvas.width() as u32, canvas.height() as u32);
    for (dst, src) in out.pixels_mut().zip(canvas.pixels()) {
        let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        *dst = image::Rgb([q(src[0]), q(src[1]), q(src[2])]);
    }
    out
}

/// Mean colour of a canvas (tests).
#[cfg(test)]
pub fn mean_colour(canvas: &Canvas) -> super::raster::Rgb {
    let n = canvas.pixels().len() as f32;
    let mut m = [0.0; 3];
    for p in canvas.pixels() {
        for c in 0..3 {
            m[c] += p[c] / n;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::geom::Similarity;
    use super::*;

    #[test]
    fn blur_preserves_the_mean_and_spreads_a_point() {
        let mut c = Canvas::new(112, 112, Similarity::IDENTITY);
        c.pixels_mut()[56 * 112 + 56] = [1.0, 1.0, 1.0];
        blur(&mut c, 2.0);
        let m = mean_colour(&c);
        assert!((m[0] * 112.0 * 112.0 - 1.0).abs() < 1e-3);
        let centre = c.pixels()[56 * 112 + 56][0];
        // Peak of a 2-D Gaussian of sigma 2 on a unit grid: about 1 / (2 pi 4).
        assert!(
            (centre - 1.0 / (std::f32::consts::TAU * 4.0)).abs() < 0.003,
            "{centre}"
        );
    }

    #[test]
    fn quick_normal_has_unit_variance() {
        let mut rng = SynthRng::keyed(2, &[]);
        let n = 20_000;
        let xs: Vec<f32> = (0..n).map(|_| quick_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
