//! The random parts of the analysis transform, against timm 1.0.15's semantics:
//! - draw by draw, from the traces (flip rate, ops drawn per image and their uniformity, the
//!   apply probability, the clipped magnitude distribution, signs, erasing rate and boxes),
//!   with binomial / normal 4-sigma bounds;
//! - as a whole, against timm's own `create_transform` run in the virtualenv on the same
//!   image: two-sample Kolmogorov-Smirnov tests on seven image statistics, with negative
//!   controls (a changed transform must fail the same test).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use swinface_data::augment::rand_augment::{OpArg, OpKind, RAND_INCREASING_TRANSFORMS};
use swinface_data::augment::{
    sample_rng, AnalysisAugmentConfig, AnalysisTransform, RandAugmentConfig, RandomErasingConfig,
};
use swinface_data::preprocess::RgbImage;

const SIZE: usize = 112;

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup (scripts/) to create the virtualenv",
        python.display()
    );
    python
}

/// An asymmetric face-sized test image: a left-to-right ramp, a vertical wave, a bright
/// top-left block and fine texture.
fn test_image() -> RgbImage {
    RgbImage::from_fn(SIZE as u32, SIZE as u32, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let ramp = 30.0 + 1.5 * xf;
        let wave = 40.0 * (yf * 0.15).sin();
        let block = if x < 40 && y < 30 { 60.0 } else { 0.0 };
        let texture = f64::from((x * 7 + y * 13) % 17) - 8.0;
        let r = ramp + wave + block + texture;
        let g = 0.8 * ramp - wave + 20.0 + texture;
        let b = 200.0 - ramp + 0.5 * wave + block;
        image::Rgb([r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// Bound for a binomial count: |count - n p| < 4 sigma.
fn assert_binomial(count: usize, n: usize, p: f64, what: &str) {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    let z = (count as f64 - mean) / sigma;
    assert!(
        z.abs() < 4.0,
        "{what}: {count} of {n}, expected {mean:.1} (z = {z:.2})"
    );
}

#[test]
fn random_draws_follow_timm() {
    let transform = AnalysisTransform::new(AnalysisAugmentConfig::default());
    let img = test_image();
    let n = 12_000;
    let mut out = vec![0f32; 3 * SIZE * SIZE];
    let (mut flips, mut erased) = (0, 0);
    let mut op_counts: HashMap<OpKind, usize> = HashMap::new();
    let (mut drawn, mut applied) = (0, 0);
    let mut magnitudes = Vec::new();
    let (mut signed, mut negative) = (0, 0);
    let (mut posterize, mut posterize_black) = (0, 0);
    for i in 0..n {
        let mut rng = sample_rng(42, 3, i as u64, 0);
        let trace = transform
            .apply_traced(img.clone(), &mut rng, &mut out)
            .unwrap();
        flips += usize::from(trace.flipped);
        assert_eq!(trace.ops.len(), 2, "two ops drawn per image");
        for op in &trace.ops {
            drawn += 1;
            *op_counts.entry(op.kind).or_default() += 1;
            let Some(a) = op.applied else { continue };
            applied += 1;
            magnitudes.push(a.magnitude);
            let sign = match a.arg {
                OpArg::Degrees(v) | OpArg::Shear(v) | OpArg::TranslatePct(v) => Some(v < 0.0),
                OpArg::Factor(f) => Some(f < 1.0),
                _ => None,
            };
            if let Some(neg) = sign {
                signed += 1;
                negative += usize::from(neg);
            }
            if op.kind == OpKind::PosterizeIncreasing {
                posterize += 1;
                posterize_black += usize::from(a.arg == OpArg::Bits(0));
            }
        }
        if let Some(b) = trace.erased.first() {
            erased += 1;
            let area = (b.height * b.width) as f64 / (SIZE * SIZE) as f64;
            // Rounded sides of a box of area 0.02..1/3 and aspect 0.3..3.33.
            assert!((0.015..0.36).contains(&area), "erased area {area}");
            assert!(b.height < SIZE && b.width < SIZE);
        }
    }
    assert_binomial(flips, n, 0.5, "flips");
    assert_binomial(erased, n, 0.25, "erasing");
    assert_eq!(
        op_counts.len(),
        15,
        "all 15 increasing ops drawn: {op_counts:?}"
    );
    for kind in RAND_INCREASING_TRANSFORMS {
        assert_binomial(
            op_counts[&kind],
            drawn,
            1.0 / 15.0,
            &format!("{kind:?} drawn"),
        );
    }
    assert_binomial(applied, drawn, 0.5, "ops applied");
    assert_binomial(negative, signed, 0.5, "negative arguments");

    // Magnitude: N(9, 0.5) clipped to [0, 10]; 10 itself has P(X >= 10) = 1 - Phi(2).
    let m = magnitudes.len() as f64;
    let at_max = magnitudes.iter().filter(|&&v| v == 10.0).count();
    assert_binomial(
        at_max,
        magnitudes.len(),
        0.022_750,
        "magnitude clipped at 10",
    );
    assert!(magnitudes.iter().all(|&v| (0.0..=10.0).contains(&v)));
    // E[min(X, 10)] = 9 - 0.5 (phi(2) - 2 (1 - Phi(2))) = 8.995754; sd < 0.5.
    let mean = magnitudes.iter().sum::<f64>() / m;
    assert!(
        (mean - 8.995_754).abs() < 4.0 * 0.5 / m.sqrt(),
        "magnitude mean {mean}"
    );
    let below = magnitudes.iter().filter(|&&v| v < 8.5).count();
    assert_binomial(
        below,
        magnitudes.len(),
        0.158_655,
        "magnitude below 8.5 (1 sigma)",
    );
    // Posterize keeps 0 bits (a black image) exactly when the magnitude is clipped to 10,
    // and 1 bit otherwise (magnitudes in [7.5, 10)), bar a 5-sigma tail.
    assert!(posterize > 300, "{posterize}");
    assert!(posterize_black > 0, "posterize to 0 bits never happened");
    assert_binomial(posterize_black, posterize, 0.022_750, "posterize to 0 bits");
}

/// Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b| (ties handled by stepping over
/// equal values together).
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] == v {
            i += 1;
        }
        while j < b.len() && b[j] == v {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// The statistics of timm_distribution.py's `stats()`, from a [3, 112, 112] output.
fn stats(x: &[f32]) -> [f64; 7] {
    let plane = SIZE * SIZE;
    let half = SIZE / 2;
    let levels: Vec<f32> = (0..256).map(|v| (v as f32 / 255.0 - 0.5) / 0.5).collect();
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let region_mean =
        |c: std::ops::Range<usize>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            let mut sum = 0.0;
            let mut count = 0usize;
            for ch in c {
                for y in rows.clone() {
                    for xx in cols.clone() {
                        sum += f64::from(x[ch * plane + y * SIZE + xx]);
                        count += 1;
                    }
                }
            }
            sum / count as f64
        };
    let fill = levels[128];
    let on_grid = x
        .iter()
        .filter(|&&v| {
            let k = ((f64::from(v) + 1.0) / 2.0 * 255.0)
                .round_ties_even()
                .clamp(0.0, 255.0) as usize;
            levels[k] == v
        })
        .count();
    [
        mean,
        var.sqrt(),
        region_mean(0..1, 0..SIZE, 0..half) - region_mean(0..1, 0..SIZE, half..SIZE),
        region_mean(0..3, 0..half, 0..SIZE) - region_mean(0..3, half..SIZE, 0..SIZE),
        region_mean(1..2, 0..SIZE, 0..SIZE) - region_mean(2..3, 0..SIZE, 0..SIZE),
        x.iter().filter(|&&v| v == fill).count() as f64 / n,
        1.0 - on_grid as f64 / n,
    ]
}

fn our_stats(config: AnalysisAugmentConfig, img: &RgbImage, n: usize, seed: u64) -> Vec<[f64; 7]> {
    let transform = AnalysisTransform::new(config);
    let mut out = vec![0f32; 3 * SIZE * SIZE];
    (0..n)
        .map(|i| {
            let mut rng = sample_rng(seed, 0, i as u64, 0);
            transform
                .apply_traced(img.clone(), &mut rng, &mut out)
                .unwrap();
            stats(&out)
        })
        .collect()
}

/// Column k, rounded to 1e-6: numpy's pairwise sums and ours differ around 1e-9, which
/// would split the atoms of the distribution (e.g. the untouched image) in two.
fn column(rows: &[[f64; 7]], k: usize) -> Vec<f64> {
    rows.iter().map(|r| (r[k] * 1e6).round() / 1e6).collect()
}

const STAT_NAMES: [&str; 7] = [
    "mean",
    "std",
    "left-right (red)",
    "top-bottom",
    "green-blue",
    "fill-grey fraction",
    "erased fraction",
];

#[test]
fn whole_transform_matches_timm_in_distribution() {
    let n = 2000;
    let img = test_image();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.rgb"), img.as_raw()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/timm_distribution.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .arg(dir.path())
        .arg(n.to_string())
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "timm script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("stats.txt")).unwrap();
    let timm: Vec<[f64; 7]> = text
        .lines()
        .map(|line| {
            let v: Vec<f64> = line.split(' ').map(|s| s.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3], v[4], v[5], v[6]]
        })
        .collect();
    assert_eq!(timm.len(), n);

    // KS critical value at alpha = 1e-3 for two samples of n: 1.95 sqrt(2 / n) = 0.0617.
    let critical = 1.95 * (2.0 / n as f64).sqrt();
    let ours = our_stats(AnalysisAugmentConfig::default(), &img, n, 7);
    let mut report = Vec::new();
    let mut worst = 0f64;
    for (k, name) in STAT_NAMES.iter().enumerate() {
        let d = ks_statistic(&column(&ours, k), &column(&timm, k));
        worst = worst.max(d);
        report.push(format!("{name}: D = {d:.4}"));
    }
    eprintln!("KS vs timm (critical {critical:.4}): {}", report.join(", "));
    assert!(
        worst < critical,
        "ours differs from timm in distribution: {report:?}"
    );

    // Erased areas of RandomErasing alone (probability 1) against timm's.
    let timm_areas: Vec<f64> = std::fs::read_to_string(dir.path().join("erase.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let erasing = RandomErasingConfig {
        probability: 1.0,
        ..RandomErasingConfig::default()
    };
    let our_areas: Vec<f64> = (0..n)
        .map(|i| {
            let mut t = vec![0f32; 3 * SIZE * SIZE];
            let boxes = erasing.apply(&mut t, 3, SIZE, SIZE, &mut sample_rng(5, 0, i as u64, 0));
            boxes.iter().map(|b| (b.height * b.width) as f64).sum()
        })
        .collect();
    let d = ks_statistic(&our_areas, &timm_areas);
    eprintln!("KS of erased areas: D = {d:.4}");
    assert!(d < critical, "erased areas differ from timm's: D = {d}");

    // Negative controls: each change must be caught by the same test.
    let controls: [(&str, AnalysisAugmentConfig); 4] = [
        (
            "no flip",
            AnalysisAugmentConfig {
                hflip: 0.0,
                ..AnalysisAugmentConfig::default()
            },
        ),
        (
            "erasing p = 0.4",
            AnalysisAugmentConfig {
                random_erasing: Some(RandomErasingConfig {
                    probability: 0.4,
                    ..RandomErasingConfig::default()
                }),
                ..AnalysisAugmentConfig::default()
            },
        ),
        (
            "ops always applied",
            AnalysisAugmentConfig {
                rand_augment: Some(RandAugmentConfig {
                    prob: 1.0,
                    ..RandAugmentConfig::default()
                }),
                ..AnalysisAugmentConfig::default()
            },
        ),
        (
            "magnitude 5",
            AnalysisAugmentConfig {
                rand_augment: Some(RandAugmentConfig {
                    magnitude: 5.0,
                    ..RandAugmentConfig::default()
                }),
                ..AnalysisAugmentConfig::default()
            },
        ),
    ];
    for (name, config) in controls {
        let changed = our_stats(config, &img, n, 7);
        let d = (0..7)
            .map(|k| ks_statistic(&column(&changed, k), &column(&timm, k)))
            .fold(0f64, f64::max);
        eprintln!("control '{name}': largest D = {d:.4}");
        assert!(d > critical, "control '{name}' was not detected (D = {d})");
    }
}
