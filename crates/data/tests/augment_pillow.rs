//! Per-op parity of the augmentation's image operations with timm 1.0.15's RandAugment ops
//! and Pillow 11 (the project's virtualenv), on random images at fixed arguments.
//!
//! Point and enhance ops must match exactly; geometric ops (double-precision sample
//! positions in both) and resizing (fixed point in both) are held to exact equality too,
//! and the report prints the largest difference per op either way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use swinface_data::augment::pil::{geometry, resample, Interpolation};
use swinface_data::augment::rand_augment::{apply_op, OpArg, OpKind, RandAugmentConfig};
use swinface_data::preprocess::RgbImage;

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup (scripts/) to create the virtualenv",
        python.display()
    );
    python
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
}

/// Smooth structure plus noise within [lo, hi], so that interpolation, rounding and the
/// histogram ops all have something to do.
fn test_image(rng: &mut Rng, width: u32, height: u32, lo: f64, hi: f64, noise: f64) -> RgbImage {
    let (fx, fy) = (rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3));
    let mut img = RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        for c in 0..3 {
            let wave = (x as f64 * fx + c as f64).sin() * (y as f64 * fy - c as f64).cos();
            let v = (lo + hi) / 2.0 + (hi - lo) / 2.0 * 0.8 * wave + noise * rng.uniform(-1.0, 1.0);
            px.0[c] = v.round().clamp(lo, hi) as u8;
        }
    }
    img
}

/// A few-level image (equalize's and autocontrast's corner cases).
fn levels_image(rng: &mut Rng, width: u32, height: u32) -> RgbImage {
    let levels = [3u8, 40, 41, 200, 201, 202];
    RgbImage::from_fn(width, height, |_, _| {
        image::Rgb([0, 1, 2].map(|_| levels[(rng.next() % 6) as usize]))
    })
}

struct Case {
    name: String,
    input: usize,
    op: String,
    arg: String,
    ours: RgbImage,
}

fn filter_name(f: Interpolation) -> &'static str {
    match f {
        Interpolation::Nearest => "nearest",
        Interpolation::Bilinear => "bilinear",
        Interpolation::Bicubic => "bicubic",
    }
}

fn ra_config(filter: Interpolation) -> RandAugmentConfig {
    RandAugmentConfig {
        interpolation: filter,
        ..RandAugmentConfig::default()
    }
}

fn cases(images: &[RgbImage]) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |input: usize, op: &str, arg: String, ours: RgbImage| {
        cases.push(Case {
            name: format!("{op}({arg})"),
            input,
            op: op.to_string(),
            arg,
            ours,
        });
    };
    let bicubic = ra_config(Interpolation::Bicubic);
    for (i, img) in images.iter().enumerate() {
        let op = |kind, arg, config: &RandAugmentConfig| apply_op(img.clone(), kind, arg, config);
        for (kind, name) in [
            (OpKind::AutoContrast, "AutoContrast"),
            (OpKind::Equalize, "Equalize"),
            (OpKind::Invert, "Invert"),
        ] {
            add(i, name, "-".into(), op(kind, OpArg::None, &bicubic));
        }
        for bits in 0..=4u32 {
            add(
                i,
                "PosterizeIncreasing",
                bits.to_string(),
                op(OpKind::PosterizeIncreasing, OpArg::Bits(bits), &bicubic),
            );
        }
        for t in [0i64, 26, 128, 200, 256] {
            add(
                i,
                "SolarizeIncreasing",
                t.to_string(),
                op(OpKind::SolarizeIncreasing, OpArg::Threshold(t), &bicubic),
            );
        }
        for a in [0i64, 99, 110] {
            add(
                i,
                "SolarizeAdd",
                a.to_string(),
                op(OpKind::SolarizeAdd, OpArg::Add(a), &bicubic),
            );
        }
        for (kind, name) in [
            (OpKind::ColorIncreasing, "ColorIncreasing"),
            (OpKind::ContrastIncreasing, "ContrastIncreasing"),
            (OpKind::BrightnessIncreasing, "BrightnessIncreasing"),
            (OpKind::SharpnessIncreasing, "SharpnessIncreasing"),
        ] {
            // 1 +- 0.9 * m / 10 for m around 9, the 0.1 floor, identity, and a plain value.
            for f in [0.1, 0.19, 0.2350001, 0.5, 1.0, 1.77, 1.81, 1.9, 1.8372] {
                add(
                    i,
                    name,
                    format!("{f}"),
                    op(kind, OpArg::Factor(f), &bicubic),
                );
            }
        }
        for filter in [Interpolation::Bicubic, Interpolation::Bilinear] {
            let config = ra_config(filter);
            let fname = filter_name(filter);
            for d in [27.0, -27.0, 13.37, -3.2, 90.0, 29.999] {
                add(
                    i,
                    "Rotate",
                    format!("{d}:{fname}"),
                    op(OpKind::Rotate, OpArg::Degrees(d), &config),
                );
            }
            for s in [0.27, -0.27, 0.1, -0.2999] {
                add(
                    i,
                    "ShearX",
                    format!("{s}:{fname}"),
                    op(OpKind::ShearX, OpArg::Shear(s), &config),
                );
                add(
                    i,
                    "ShearY",
                    format!("{s}:{fname}"),
                    op(OpKind::ShearY, OpArg::Shear(s), &config),
                );
            }
            for p in [0.405, -0.405, 0.123, -0.44] {
                add(
                    i,
                    "TranslateXRel",
                    format!("{p}:{fname}"),
                    op(OpKind::TranslateXRel, OpArg::TranslatePct(p), &config),
                );
                add(
                    i,
                    "TranslateYRel",
                    format!("{p}:{fname}"),
                    op(OpKind::TranslateYRel, OpArg::TranslatePct(p), &config),
                );
            }
        }
        for (w, h) in [(112u32, 112u32), (50, 80), (150, 131)] {
            for filter in [Interpolation::Bicubic, Interpolation::Bilinear] {
                add(
                    i,
                    "Resize",
                    format!("{w}x{h}:{}", filter_name(filter)),
                    resample::resize(img, w, h, filter),
                );
            }
        }
        let mut flipped = img.clone();
        geometry::flip_horizontal(&mut flipped);
        add(i, "Flip", "-".into(), flipped);
    }
    cases
}

#[test]
fn ops_match_timm_and_pillow() {
    let mut rng = Rng(20250607);
    let images = vec![
        test_image(&mut rng, 112, 112, 0.0, 255.0, 40.0),
        test_image(&mut rng, 112, 112, 60.0, 180.0, 10.0),
        test_image(&mut rng, 57, 43, 0.0, 255.0, 120.0),
        test_image(&mut rng, 200, 160, 20.0, 240.0, 5.0),
        levels_image(&mut rng, 31, 29),
    ];
    let cases = cases(&images);
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = String::new();
    for (i, img) in images.iter().enumerate() {
        std::fs::write(dir.path().join(format!("in{i}.rgb")), img.as_raw()).unwrap();
    }
    for (k, case) in cases.iter().enumerate() {
        let img = &images[case.input];
        writeln!(
            manifest,
            "in{}.rgb {} {} {} {} out{k}.rgb",
            case.input,
            img.width(),
            img.height(),
            case.op,
            case.arg
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("cases.txt"), manifest).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pil_reference.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Largest difference and count of differing bytes per op, over all images and args.
    let mut report: BTreeMap<String, (u8, usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let reference = std::fs::read(dir.path().join(format!("out{k}.rgb"))).unwrap();
        assert_eq!(
            reference.len(),
            case.ours.as_raw().len(),
            "{} size",
            case.name
        );
        let (mut max, mut differing) = (0u8, 0usize);
        for (a, b) in case.ours.as_raw().iter().zip(&reference) {
            let d = a.abs_diff(*b);
            max = max.max(d);
            differing += usize::from(d > 0);
        }
        let entry = report.entry(case.op.clone()).or_default();
        entry.0 = entry.0.max(max);
        entry.1 += differing;
        entry.2 += reference.len();
        if max > 0 {
            failures.push(format!(
                "{} on image {}: max diff {max}, {differing} bytes differ",
                case.name, case.input
            ));
        }
    }
    eprintln!("op: max |ours - Pillow|, differing bytes / bytes");
    for (op, (max, differing, total)) in &report {
        eprintln!("  {op:22} {max:3}  {differing}/{total}");
    }
    assert!(
        failures.is_empty(),
        "differences from Pillow:\n{}",
        failures.join("\n")
    );
}
