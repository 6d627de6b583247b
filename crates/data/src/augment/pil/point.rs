//! Pillow's per-pixel operations on RGB8 (`ImageOps.autocontrast`, `equalize`, `invert`,
//! `posterize`, `solarize`, and timm's `solarize_add`), all as per-channel lookup tables.
//! `Image.point` clips table values to 0..=255, which matters only for `equalize`.

use image::RgbImage;

/// A lookup table for one channel.
pub type Lut = [u8; 256];

/// Applies one table per channel in place.
pub fn apply_luts(img: &mut RgbImage, luts: &[Lut; 3]) {
    for px in img.chunks_exact_mut(3) {
        px[0] = luts[0][usize::from(px[0])];
        px[1] = luts[1][usize::from(px[1])];
        px[2] = luts[2][usize::from(px[2])];
    }
}

/// Applies the same table to every channel in place.
pub fn apply_lut(img: &mut RgbImage, lut: &Lut) {
    for v in img.iter_mut() {
        *v = lut[usize::from(*v)];
    }
}

/// `Image.histogram()` of an RGB image, one 256-bin histogram per channel.
pub fn histograms(img: &RgbImage) -> [[u32; 256]; 3] {
    let mut hist = [[0u32; 256]; 3];
    for px in img.chunks_exact(3) {
        hist[0][usize::from(px[0])] += 1;
        hist[1][usize::from(px[1])] += 1;
        hist[2][usize::from(px[2])] += 1;
    }
    hist
}

fn lut_from(f: impl Fn(i64) -> i64) -> Lut {
    std::array::from_fn(|i| f(i as i64).clamp(0, 255) as u8)
}

/// `ImageOps.autocontrast(img)` (cutoff 0): per channel, stretch [lo, hi] to [0, 255] with
/// `int(i * scale + offset)`, `scale = 255 / (hi - lo)`, `offset = -lo * scale`; a channel with
/// a single value is left alone.
pub fn autocontrast(img: &mut RgbImage) {
    let hist = histograms(img);
    let luts = hist.map(|h| {
        let lo = h.iter().position(|&c| c > 0);
        let hi = h.iter().rposition(|&c| c > 0);
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi > lo => {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                // `as i64` truncates toward zero, as Python's int() does.
                lut_from(|i| (i as f64 * scale + offset) as i64)
            }
            _ => lut_from(|i| i),
        }
    });
    apply_luts(img, &luts);
}

/// `ImageOps.equalize(img)`: per channel, `step = (sum of counts - count of the last used
/// level) // 255`; level i maps to `(step // 2 + count below i) // step`, clipped to 255.
pub fn equalize(img: &mut RgbImage) {
    let hist = histograms(img);
    let luts = hist.map(|h| {
        let used: Vec<u64> = h
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| u64::from(c))
            .collect();
        let identity = lut_from(|i| i);
        let Some(&last) = used.last() else {
            return identity;
        };
        if used.len() <= 1 {
            return identity;
        }
        let step = (used.iter().sum::<u64>() - last) / 255;
        if step == 0 {
            return identity;
        }
        let mut n = step / 2;
        let mut lut = [0u8; 256];
        for (entry, &count) in lut.iter_mut().zip(&h) {
            *entry = (n / step).min(255) as u8;
            n += u64::from(count);
        }
        lut
    });
    apply_luts(img, &luts);
}

/// `ImageOps.invert(img)`: 255 - v.
pub fn invert(img: &mut RgbImage) {
    apply_lut(img, &lut_from(|i| 255 - i));
}

/// timm's `posterize`: keep the top `bits` bits (8 or more: unchanged, 0: black).
pub fn posterize(img: &mut RgbImage, bits: u32) {
    if bits >= 8 {
        return;
    }
    let mask = !((1i64 << (8 - bits)) - 1);
    apply_lut(img, &lut_from(|i| i & mask));
}

/// `ImageOps.solarize(img, threshold)`: values at or above `threshold` are inverted
/// (threshold 256 leaves the image unchanged).
pub fn solarize(img: &mut RgbImage, threshold: i64) {
    apply_lut(img, &lut_from(|i| if i < threshold { i } else { 255 - i }));
}

/// timm's `solarize_add`: values below `threshold` get `add` added, capped at 255.
pub fn solarize_add(img: &mut RgbImage, add: i64, threshold: i64) {
    apply_lut(
        img,
        &lut_from(|i| if i < threshold { (i + add).min(255) } else { i }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[[u8; 3]]) -> RgbImage {
        let raw: Vec<u8> = values.iter().flatten().copied().collect();
        RgbImage::from_raw(values.len() as u32, 1, raw).unwrap()
    }

    fn pixels(img: &RgbImage) -> Vec<[u8; 3]> {
        img.pixels().map(|p| p.0).collect()
    }

    #[test]
    fn posterize_keeps_top_bits() {
        let mut img = row(&[[0b1011_0111, 255, 0b0111_1111]]);
        posterize(&mut img, 1);
        assert_eq!(pixels(&img), vec![[0b1000_0000, 0b1000_0000, 0]]);
        let mut img = row(&[[0b1011_0111, 255, 0b0111_1111]]);
        posterize(&mut img, 3);
        assert_eq!(pixels(&img), vec![[0b1010_0000, 0b1110_0000, 0b0110_0000]]);
        // 0 bits: black, as old Pillow (and 11.x) give.
        let mut img = row(&[[200, 255, 1]]);
        posterize(&mut img, 0);
        assert_eq!(pixels(&img), vec![[0, 0, 0]]);
        let mut img = row(&[[200, 255, 1]]);
        posterize(&mut img, 8);
        assert_eq!(pixels(&img), vec![[200, 255, 1]]);
    }

    #[test]
    fn solarize_threshold_is_inclusive() {
        let mut img = row(&[[25, 26, 27], [0, 255, 128]]);
        solarize(&mut img, 26);
        assert_eq!(pixels(&img), vec![[25, 229, 228], [0, 0, 127]]);
        let mut img = row(&[[0, 255, 128]]);
        solarize(&mut img, 256);
        assert_eq!(pixels(&img), vec![[0, 255, 128]]);
        let mut img = row(&[[0, 255, 128]]);
        solarize(&mut img, 0);
        assert_eq!(pixels(&img), vec![[255, 0, 127]]);
    }

    #[test]
    fn solarize_add_caps_and_skips_bright() {
        let mut img = row(&[[10, 127, 128], [200, 100, 0]]);
        solarize_add(&mut img, 99, 128);
        assert_eq!(pixels(&img), vec![[109, 226, 128], [200, 199, 99]]);
        let mut img = row(&[[120, 127, 128]]);
        solarize_add(&mut img, 200, 128);
        assert_eq!(pixels(&img), vec![[255, 255, 128]]);
    }

    #[test]
    fn invert_negates() {
        let mut img = row(&[[0, 255, 100]]);
        invert(&mut img);
        assert_eq!(pixels(&img), vec![[255, 0, 155]]);
    }

    #[test]
    fn autocontrast_stretches_each_channel() {
        // Red spans 50..=150: scale 2.55, offset -127.5; 100 -> int(127.5) = 127.
        // Green is constant: unchanged. Blue spans 0..=255 already: unchanged.
        let mut img = row(&[[50, 7, 0], [100, 7, 128], [150, 7, 255]]);
        autocontrast(&mut img);
        assert_eq!(pixels(&img), vec![[0, 7, 0], [127, 7, 128], [255, 7, 255]]);
        // Red spans 10..=13: scale 85; 11 -> 85, 12 -> 170.
        let mut img = row(&[[10, 0, 0], [11, 0, 0], [12, 0, 0], [13, 0, 0]]);
        autocontrast(&mut img);
        let reds: Vec<u8> = pixels(&img).iter().map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 85, 170, 255]);
    }

    #[test]
    fn equalize_follows_the_cumulative_histogram() {
        // Red: 300 pixels at 10, 200 at 20, 10 at 30. Counts without the last level:
        // 300 + 200 = 500, step = 500 // 255 = 1, n starts at 0:
        // lut[10] = count below 10 = 0, lut[20] = 300 -> 255 (clipped), lut[30] = 500 -> 255.
        // Green: 255 pixels at 0 and 255 at 100: step = 1, lut[0] = 0, lut[100] = 255.
        // Blue: one value only: unchanged.
        let mut values = vec![[10u8, 0, 77]; 300];
        values.extend(vec![[20, 0, 77]; 200]);
        values.extend(vec![[30, 100, 77]; 10]);
        let mut img = row(&values);
        // Make green 255 at 0 and 255 at 100.
        for (i, px) in img.pixels_mut().enumerate() {
            px.0[1] = if i < 255 { 0 } else { 100 };
        }
        equalize(&mut img);
        let out = pixels(&img);
        assert_eq!(out[0], [0, 0, 77]);
        assert_eq!(out[299], [0, 255, 77]);
        assert_eq!(out[300], [255, 255, 77]);
        assert_eq!(out[509], [255, 255, 77]);

        // A gentler case: 4 levels, 600 pixels each (2400 in all). step = 1800 // 255 = 7,
        // n = 3: lut = [3 // 7, 603 // 7, 1203 // 7, 1803 // 7] = [0, 86, 171, 257 -> 255].
        let mut values = Vec::new();
        for level in [40u8, 80, 120, 160] {
            values.extend(vec![[level, level, level]; 600]);
        }
        let mut img = row(&values);
        equalize(&mut img);
        let reds: Vec<u8> = pixels(&img).iter().step_by(600).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 86, 171, 255]);
    }
}
