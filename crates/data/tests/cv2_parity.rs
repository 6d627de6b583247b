//! Bit-level parity of the preprocessing with OpenCV (opencv-python-headless in the project's
//! virtualenv): cv2.resize INTER_LINEAR, cv2.warpAffine after a numpy Umeyama estimate, and
//! cv2.imread against our PNG/JPEG decoding.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use swinface_data::preprocess::{
    align_to_arcface, decode_rgb8, resize_bilinear_cv2, DecodeLimits, RgbImage, ARCFACE_TEMPLATE,
};

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup (scripts/) to create the virtualenv",
        python.display()
    );
    python
}

fn run_reference(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cv2_reference.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .arg(dir)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic test pixels (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Smooth structure plus noise, so that both interpolation and rounding are exercised.
fn test_image(rng: &mut Rng, width: u32, height: u32) -> RgbImage {
    let noise_amp = rng.below(80) as f64;
    let (fx, fy) = (rng.uniform(0.01, 0.3), rng.uniform(0.01, 0.3));
    let mut img = RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        for c in 0..3 {
            let base = 127.5
                + 120.0 * ((x as f64 * fx + c as f64).sin() * (y as f64 * fy - c as f64).cos());
            let v = base + noise_amp * (rng.uniform(-1.0, 1.0));
            px.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    img
}

struct Diff {
    max: u8,
    mean: f64,
    differing: usize,
}

fn diff(ours: &[u8], reference: &[u8]) -> Diff {
    assert_eq!(ours.len(), reference.len(), "output sizes differ");
    let mut d = Diff {
        max: 0,
        mean: 0.0,
        differing: 0,
    };
    let mut sum = 0u64;
    for (a, b) in ours.iter().zip(reference) {
        let e = a.abs_diff(*b);
        d.max = d.max.max(e);
        sum += u64::from(e);
        d.differing += usize::from(e > 0);
    }
    d.mean = sum as f64 / ours.len() as f64;
    d
}

fn read_reference(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("{name}.cv2"))).expect("reference output")
}

#[test]
fn resize_matches_cv2_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let mut cases: Vec<(u32, u32, u32, u32)> = vec![
        (250, 250, 112, 112), // downscale
        (53, 37, 112, 112),   // upscale, odd sizes
        (224, 224, 112, 112), // exact 2x: OpenCV's area path
        (112, 112, 112, 112), // identity
        (90, 60, 112, 112),
        (111, 113, 112, 112),
        (333, 500, 112, 112),
        (1, 1, 112, 112),
        (7, 3, 112, 112),
        (1000, 20, 112, 112),
        (640, 480, 112, 112),
        (250, 250, 5, 3), // narrow rows: the vector kernel's tail handling
        (53, 37, 13, 7),
        (112, 112, 200, 150),
    ];
    for _ in 0..12 {
        cases.push((1 + rng.below(700), 1 + rng.below(700), 112, 112));
    }
    let mut manifest = String::new();
    let mut ours = Vec::new();
    for (i, &(w, h, dw, dh)) in cases.iter().enumerate() {
        let img = test_image(&mut rng, w, h);
        let name = format!("resize{i}");
        std::fs::write(dir.path().join(format!("{name}.rgb")), img.as_raw()).unwrap();
        writeln!(manifest, "resize {name} {w} {h} {dw} {dh}").unwrap();
        ours.push((name, resize_bilinear_cv2(&img, dw, dh).unwrap()));
    }
    std::fs::write(dir.path().join("manifest.txt"), manifest).unwrap();
    run_reference(dir.path());

    let mut worst = 0;
    for ((name, out), &(w, h, dw, dh)) in ours.iter().zip(&cases) {
        let d = diff(out.as_raw(), &read_reference(dir.path(), name));
        eprintln!(
            "resize {w}x{h} -> {dw}x{dh}: max diff {}, mean {:.5}, {} values differ",
            d.max, d.mean, d.differing
        );
        worst = worst.max(d.max);
    }
    eprintln!(
        "resize: worst max diff over {} cases = {worst}",
        cases.len()
    );
    assert_eq!(worst, 0, "resize must match cv2.resize bit for bit");
}

/// Landmarks: the template under a random similarity, plus jitter so that the fit is not exact.
fn random_landmarks(rng: &mut Rng, width: u32, height: u32) -> [[f32; 2]; 5] {
    let scale = rng.uniform(0.6, 3.0);
    let angle = rng.uniform(-0.7, 0.7);
    let (cx, cy) = (
        rng.uniform(0.2, 0.8) * f64::from(width),
        rng.uniform(0.2, 0.8) * f64::from(height),
    );
    ARCFACE_TEMPLATE.map(|p| {
        let (x, y) = (f64::from(p[0]) - 56.0, f64::from(p[1]) - 72.0);
        [
            (cx + scale * (angle.cos() * x - angle.sin() * y) + rng.uniform(-2.0, 2.0)) as f32,
            (cy + scale * (angle.sin() * x + angle.cos() * y) + rng.uniform(-2.0, 2.0)) as f32,
        ]
    })
}

#[test]
fn alignment_matches_numpy_umeyama_and_cv2_warp_affine() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(11);
    let sizes = [
        (250, 250),
        (640, 480),
        (120, 160),
        (90, 70), // face larger than the image: border filled with 0
        (1000, 800),
        (300, 200),
        (200, 300),
        (112, 112),
    ];
    let mut manifest = String::new();
    let mut ours = Vec::new();
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let img = test_image(&mut rng, w, h);
        let landmarks = random_landmarks(&mut rng, w, h);
        let name = format!("align{i}");
        std::fs::write(dir.path().join(format!("{name}.rgb")), img.as_raw()).unwrap();
        let coords: Vec<String> = landmarks.iter().flatten().map(|v| v.to_string()).collect();
        writeln!(manifest, "align {name} {w} {h} {}", coords.join(" ")).unwrap();
        ours.push((name, align_to_arcface(&img, landmarks).unwrap()));
    }
    std::fs::write(dir.path().join("manifest.txt"), manifest).unwrap();
    run_reference(dir.path());

    let mut worst = 0;
    for ((name, out), &(w, h)) in ours.iter().zip(&sizes) {
        let d = diff(out.as_raw(), &read_reference(dir.path(), name));
        eprintln!(
            "align {w}x{h}: max diff {}, mean {:.5}, {} values differ",
            d.max, d.mean, d.differing
        );
        worst = worst.max(d.max);
    }
    eprintln!("align: worst max diff over {} cases = {worst}", sizes.len());
    assert!(worst <= 1, "alignment must be within 1 level of cv2");
}

#[test]
fn decoding_matches_cv2_imread() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(5);
    let img = test_image(&mut rng, 97, 61);
    let png = dir.path().join("pic.png");
    let jpg = dir.path().join("pic.jpg");
    img.save(&png).unwrap();
    img.save(&jpg).unwrap();
    let manifest = format!(
        "decode png {}\ndecode jpg {}\n",
        png.display(),
        jpg.display()
    );
    std::fs::write(dir.path().join("manifest.txt"), manifest).unwrap();
    run_reference(dir.path());

    let limits = DecodeLimits::default();
    let ours_png = decode_rgb8(&png, &limits).unwrap();
    assert_eq!(ours_png, img, "PNG is lossless");
    let d = diff(ours_png.as_raw(), &read_reference(dir.path(), "png"));
    eprintln!("decode PNG vs cv2.imread: max diff {}", d.max);
    assert_eq!(d.max, 0);

    // JPEG decoders may legitimately differ (IDCT, chroma upsampling); measure how much.
    let ours_jpg = decode_rgb8(&jpg, &limits).unwrap();
    let d = diff(ours_jpg.as_raw(), &read_reference(dir.path(), "jpg"));
    eprintln!(
        "decode JPEG vs cv2.imread (libjpeg-turbo): max diff {}, mean {:.4}, {} of {} differ",
        d.max,
        d.mean,
        d.differing,
        ours_jpg.as_raw().len()
    );
    assert!(
        d.max <= 4 && d.mean < 0.5,
        "JPEG decoding drifted from libjpeg-turbo"
    );
}

#[test]
fn oversized_and_broken_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("wide.png");
    RgbImage::new(300, 2).save(&big).unwrap();
    let limits = DecodeLimits {
        max_width: 256,
        ..DecodeLimits::default()
    };
    let err = decode_rgb8(&big, &limits).unwrap_err().to_string();
    assert!(err.contains("wide.png") && err.contains("300x2"), "{err}");

    let pixels = DecodeLimits {
        max_pixels: 599,
        ..DecodeLimits::default()
    };
    assert!(decode_rgb8(&big, &pixels).is_err());
    assert!(decode_rgb8(&big, &DecodeLimits::default()).is_ok());

    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 this is not a jpeg").unwrap();
    let err = decode_rgb8(&broken, &limits).unwrap_err().to_string();
    assert!(err.contains("broken.jpg"), "{err}");

    let missing = dir.path().join("missing.png");
    let err = decode_rgb8(&missing, &limits).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
}

#[test]
fn a_jpeg_cut_short_is_refused_but_trailing_bytes_after_its_end_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let whole = dir.path().join("whole.jpg");
    test_image(&mut rng, 64, 48).save(&whole).unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    let limits = DecodeLimits::default();
    assert!(decode_rgb8(&whole, &limits).is_ok());
    // Cut anywhere inside the scan (the image crate alone would decode these, grey-filled).
    for keep in [bytes.len() / 2, bytes.len() * 9 / 10, bytes.len() - 2] {
        let cut = dir.path().join(format!("cut_{keep}.jpg"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = decode_rgb8(&cut, &limits).unwrap_err().to_string();
        assert!(
            err.contains("truncated JPEG") && err.contains("cut_"),
            "{err}"
        );
    }
    // Bytes appended after the end-of-image marker (camera trailers) are ignored.
    let trailer = dir.path().join("trailer.jpg");
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"\x00\x00trailer data \xff\xd8 more");
    std::fs::write(&trailer, &longer).unwrap();
    assert!(decode_rgb8(&trailer, &limits).is_ok());
}
