//! End-to-end tests of `swinface synth`: the binary writes the test-sized dataset, and every
//! dataset is read back through the data crate's readers (counts, label ranges, identity
//! counts, every image decoded), `swinface data check` passes on the data config it writes,
//! pixel statistics are sane, no label can be read from a single pixel or the mean colour,
//! and the same seed writes byte-identical files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use image::RgbImage;
use swinface_data::formats::affectnet::read_affectnet;
use swinface_data::formats::age_gender::read_age_gender_source;
use swinface_data::formats::celeba::{
    read_celeba_attr, read_celeba_split, read_swinface_label, Partition,
};
use swinface_data::formats::fgnet::{read_fgnet, FgnetSplit};
use swinface_data::formats::lap::read_lap;
use swinface_data::formats::raf::{read_raf, RafLayout, RafSplit};
use swinface_data::formats::recordio::{read_property, MxFaceDataset, RecordLabel};
use swinface_data::formats::verification_bin::read_bin;
use swinface_data::preprocess::{decode_rgb8, DecodeLimits};
use swinface_data::synth::{
    attr, person, photo, population, render, AgeRange, ImagePolicy, SynthConfig, SynthManifest,
    DATA_CONFIG_NAME, MANIFEST_NAME,
};

fn swinface() -> Command {
    Command::new(env!("CARGO_BIN_EXE_swinface"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run swinface");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SEED: u64 = 7;

/// The `--small` dataset, written once per test run.
fn small_dataset() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth_small");
        let stdout = run_ok(
            swinface()
                .args(["synth", "--small", "--seed", &SEED.to_string(), "--out"])
                .arg(&dir),
        );
        eprintln!("{stdout}");
        dir
    })
}

fn manifest(root: &Path) -> SynthManifest {
    let text = std::fs::read_to_string(root.join(MANIFEST_NAME)).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

fn decode(path: &Path) -> RgbImage {
    let img = decode_rgb8(path, &DecodeLimits::default())
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    assert_eq!(
        (img.width(), img.height()),
        (112, 112),
        "{}",
        path.display()
    );
    img
}

fn decode_bytes(bytes: &[u8]) -> RgbImage {
    let img = image::load_from_memory(bytes).expect("decode").to_rgb8();
    assert_eq!((img.width(), img.height()), (112, 112));
    img
}

#[test]
fn every_dataset_reads_back_through_its_reader() {
    let root = small_dataset();
    let m = manifest(root);
    let c = SynthConfig::small();
    assert_eq!(
        m.config,
        SynthConfig {
            seed: SEED,
            ..c.clone()
        }
    );

    // Recognition: MS1MV2 layout.
    let emore = root.join("faces_emore");
    let property = read_property(&emore.join("property")).unwrap();
    assert_eq!(property.num_classes, c.identities as u64);
    assert_eq!((property.height, property.width), (112, 112));
    let rec = MxFaceDataset::open(&emore).unwrap();
    let n = c.identities * c.images_per_identity;
    assert_eq!(rec.len(), n);
    assert_eq!(
        rec.header0,
        Some((n as i64 + 1, (n + 1 + c.identities) as i64))
    );
    let mut per_identity: BTreeMap<i64, usize> = BTreeMap::new();
    let mut recognition_images = Vec::new();
    for i in 0..rec.len() {
        let sample = rec.get(i, Some(property.num_classes)).unwrap();
        *per_identity.entry(sample.label).or_default() += 1;
        recognition_images.push((sample.label, decode_bytes(&sample.image)));
    }
    assert_eq!(per_identity.len(), c.identities);
    assert!(per_identity.values().all(|&k| k == c.images_per_identity));
    for id in 0..c.identities {
        let key = (n + 1 + id) as u64;
        let (header, payload) = rec.reader().read_unpacked(key).unwrap();
        let start = (1 + id * c.images_per_identity) as f32;
        assert_eq!(
            header.label,
            RecordLabel::Vector(vec![start, start + c.images_per_identity as f32])
        );
        assert!(payload.is_empty());
    }
    pixel_statistics(&recognition_images);
    identities_are_consistent(&recognition_images);

    // Verification pairs.
    for name in &c.verification_sets {
        let set = read_bin(&emore.join(format!("{name}.bin"))).unwrap();
        assert_eq!(set.pairs(), c.verification_pairs, "{name}");
        assert_eq!(
            set.issame.iter().filter(|&&s| s).count(),
            c.verification_pairs / 2,
            "{name}"
        );
        for bytes in &set.images {
            decode_bytes(bytes);
        }
    }

    // Age and gender.
    let aio = root.join("AIO_train");
    for (name, rows) in [
        ("Adience", c.adience),
        ("MORPH", c.morph),
        ("WIKI", c.wiki),
        ("IMDB", c.imdb),
    ] {
        let list = read_age_gender_source(&aio, name).unwrap();
        assert_eq!(list.len(), rows - c.nan_rows, "{name}: nan rows skipped");
        assert!(list
            .entries
            .iter()
            .all(|e| (1.0..=90.0).contains(&e.label.age)));
        let males = list.entries.iter().filter(|e| e.label.gender == 1).count();
        assert!(males > 0 && males < list.len(), "{name}: both genders");
        for e in &list.entries {
            decode(&e.image);
        }
    }

    // CelebA: SwinFace's label.txt files and CelebA's own lists agree row by row.
    let data = root.join("CelebA/data");
    let own = read_celeba_attr(&root.join("CelebA/list_attr_celeba.txt"), &data).unwrap();
    assert_eq!(own.len(), c.celeba_train + c.celeba_val + c.celeba_test);
    let by_image: HashMap<PathBuf, [u8; 40]> = own
        .entries
        .iter()
        .map(|e| (e.image.clone(), e.label))
        .collect();
    for (split, partition, rows) in [
        ("AIO_train", Partition::Train, c.celeba_train),
        ("AIO_val", Partition::Val, c.celeba_val),
        ("AIO_test", Partition::Test, c.celeba_test),
    ] {
        let list = read_swinface_label(&root.join(split).join("CelebA/label.txt"), &data).unwrap();
        assert_eq!(list.len(), rows, "{split}");
        let part = read_celeba_split(
            &root.join("CelebA/list_attr_celeba.txt"),
            &root.join("CelebA/list_eval_partition.txt"),
            &data,
            partition,
        )
        .unwrap();
        assert_eq!(part.len(), rows, "{split} partition");
        for e in &list.entries {
            assert_eq!(by_image[&e.image], e.label, "{}", e.image.display());
            decode(&e.image);
        }
    }
    let positives: Vec<usize> = (0..40)
        .map(|a| own.entries.iter().filter(|e| e.label[a] == 1).count())
        .collect();
    assert!(
        positives.iter().all(|&p| p > 0 && p < own.len()),
        "every attribute has both values: {positives:?}"
    );

    // Expression: RAF-DB (both layouts) and AffectNet.
    let raf_dir = root.join("RAF/basic");
    let raf_list = raf_dir.join("list_patition_label.txt");
    for (split, rows) in [(RafSplit::Train, c.raf_train), (RafSplit::Test, c.raf_test)] {
        let list = read_raf(&raf_list, &raf_dir, split).unwrap();
        assert_eq!(list.len(), rows);
        assert!(list.entries.iter().all(|e| e.label < 7));
        for e in &list.entries {
            let name = e.image.file_name().unwrap().to_string_lossy().into_owned();
            let a = decode(&RafLayout::AsListed.path(&raf_dir, &name));
            let b = decode(&RafLayout::ImageAligned.path(&raf_dir, &name));
            assert_eq!(a, b);
        }
    }
    let affect = read_affectnet(
        &root.join("AffectNet/label.txt"),
        &root.join("AffectNet/data"),
    )
    .unwrap();
    assert_eq!(affect.len(), c.affectnet);
    let mut classes = [0usize; 7];
    for e in &affect.entries {
        classes[usize::from(e.label)] += 1;
        decode(&e.image);
    }
    assert!(
        classes.iter().all(|&k| k > 0),
        "all 7 expressions: {classes:?}"
    );

    // Apparent and real age test sets.
    let lap = read_lap(&root.join("LAP_test/test.csv"), &root.join("LAP_test/test")).unwrap();
    assert_eq!(lap.len(), c.lap_test);
    for e in &lap.entries {
        assert!(e.label.mean >= 1.0 && e.label.mean <= 95.0 && e.label.std > 1.0);
        decode(&e.image);
    }
    let fgnet_dir = root.join("AIO_val/FGnet");
    let fg = read_fgnet(
        &fgnet_dir.join("label.txt"),
        &fgnet_dir.join("data"),
        FgnetSplit::All,
    )
    .unwrap();
    assert_eq!(fg.len(), c.fgnet_subjects * c.fgnet_images_per_subject);
    for e in &fg.entries {
        let name = e.image.file_name().unwrap().to_string_lossy().into_owned();
        let age: f32 = name[4..6].parse().unwrap();
        assert_eq!(age, e.label, "FG-NET names carry the age");
        decode(&e.image);
    }

    let total: usize = m.counts["total_images"];
    assert_eq!(total, c.total_images());
}

#[test]
fn data_check_passes_on_the_written_config() {
    let root = small_dataset();
    let config = root.join(DATA_CONFIG_NAME);
    let stdout = run_ok(swinface().args(["data", "check"]).arg(&config));
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

/// Mean and spread of the pixels: neither blank nor saturated, and no two images alike.
fn pixel_statistics(images: &[(i64, RgbImage)]) {
    let mut means = Vec::new();
    for (_, img) in images {
        let px: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v) / 255.0).collect();
        let mean = px.iter().sum::<f64>() / px.len() as f64;
        let std = (px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64).sqrt();
        assert!((0.12..=0.88).contains(&mean), "image mean {mean}");
        assert!(std > 0.05, "image std {std}: nearly flat");
        means.push(mean);
    }
    let overall = means.iter().sum::<f64>() / means.len() as f64;
    let spread =
        (means.iter().map(|m| (m - overall).powi(2)).sum::<f64>() / means.len() as f64).sqrt();
    eprintln!("pixel mean {overall:.3}, spread of image means {spread:.3}");
    assert!((0.3..=0.7).contains(&overall), "mean over images {overall}");
    assert!(spread > 0.03, "image means barely vary ({spread})");
}

/// The mean colour of the face centre (skin, eyes, nose) differs less between photos of one
/// person than between people, despite pose, light and background changes.
fn identities_are_consistent(images: &[(i64, RgbImage)]) {
    let centre = |img: &RgbImage| -> [f64; 3] {
        let mut m = [0.0; 3];
        for y in 44..68 {
            for x in 44..68 {
                let p = img.get_pixel(x, y);
                for c in 0..3 {
                    m[c] += f64::from(p[c]) / (24.0 * 24.0 * 255.0);
                }
            }
        }
        m
    };
    let desc: Vec<(i64, [f64; 3])> = images.iter().map(|(id, img)| (*id, centre(img))).collect();
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for i in 0..desc.len() {
        for j in i + 1..desc.len() {
            let d: f64 = (0..3)
                .map(|c| (desc[i].1[c] - desc[j].1[c]).powi(2))
                .sum::<f64>()
                .sqrt();
            if desc[i].0 == desc[j].0 {
                same.push(d);
            } else {
                other.push(d);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, o) = (median(&mut same), median(&mut other));
    eprintln!("centre colour distance: same person {s:.4}, different people {o:.4}");
    assert!(s < 0.6 * o, "same {s} vs different {o}");
}

/// The best single-feature threshold, chosen on one half of the samples (any feature, any
/// threshold, either direction, by balanced accuracy) and scored on the other half.
/// `features[f][i]` is feature `f` of sample `i`, quantised to 0..=255.
fn held_out_threshold_accuracy(features: &[Vec<u8>], labels: &[bool]) -> f64 {
    let n = labels.len();
    let fit: Vec<usize> = (0..n).filter(|i| i % 2 == 0).collect();
    let test: Vec<usize> = (0..n).filter(|i| i % 2 == 1).collect();
    let (pos, neg) = (
        fit.iter().filter(|&&i| labels[i]).count() as f64,
        fit.iter().filter(|&&i| !labels[i]).count() as f64,
    );
    let mut best = (0.0, 0, 0u8, true);
    for (f, values) in features.iter().enumerate() {
        let mut hist = [[0u32; 2]; 256];
        for &i in &fit {
            hist[values[i] as usize][usize::from(labels[i])] += 1;
        }
        // Predict positive when value > t: accuracy on positives is the share above t.
        let (mut neg_below, mut pos_below) = (0.0, 0.0);
        for (t, [neg_at, pos_at]) in hist.iter().enumerate() {
            neg_below += f64::from(*neg_at);
            pos_below += f64::from(*pos_at);
            let above = ((pos - pos_below) / pos + neg_below / neg) / 2.0;
            for (acc, greater) in [(above, true), (1.0 - above, false)] {
                if acc > best.0 {
                    best = (acc, f, t as u8, greater);
                }
            }
        }
    }
    let (_, f, t, greater) = best;
    let (mut hit_pos, mut n_pos, mut hit_neg, mut n_neg) = (0.0, 0.0, 0.0, 0.0);
    for &i in &test {
        let predicted = (features[f][i] > t) == greater;
        if labels[i] {
            n_pos += 1.0;
            hit_pos += f64::from(u8::from(predicted));
        } else {
            n_neg += 1.0;
            hit_neg += f64::from(u8::from(!predicted));
        }
    }
    (hit_pos / n_pos + hit_neg / n_neg) / 2.0
}

#[test]
fn no_label_is_readable_from_one_pixel_or_the_mean_colour() {
    let n = 600u64;
    let policy = ImagePolicy::expressions();
    let samples: Vec<(RgbImage, swinface_data::synth::FaceLabels)> = {
        use rayon::prelude::*;
        (0..n)
            .into_par_iter()
            .map(|k| {
                let who = person(11, population::PREVIEW, k, AgeRange::default());
                let spec = photo(11, population::PREVIEW, k, 0, &who, None, &policy);
                (render(&spec), spec.labels)
            })
            .collect()
    };
    let pixels = 112 * 112 * 3;
    let per_pixel: Vec<Vec<u8>> = (0..pixels)
        .map(|p| samples.iter().map(|(img, _)| img.as_raw()[p]).collect())
        .collect();
    let mean_colour: Vec<Vec<u8>> = (0..3)
        .map(|c| {
            samples
                .iter()
                .map(|(img, _)| {
                    let sum: u64 = img
                        .as_raw()
                        .iter()
                        .skip(c)
                        .step_by(3)
                        .map(|&v| u64::from(v))
                        .sum();
                    (sum / (112 * 112)) as u8
                })
                .collect()
        })
        .collect();

    // Teeth: a label that is one pixel's value must be found.
    let planted: Vec<bool> = samples
        .iter()
        .map(|(img, _)| img.as_raw()[5000] > 128)
        .collect();
    let found = held_out_threshold_accuracy(&per_pixel, &planted);
    assert!(
        found > 0.97,
        "the check misses a planted pixel label ({found})"
    );

    let mut checks: Vec<(String, Vec<bool>)> = vec![(
        "gender".into(),
        samples.iter().map(|(_, l)| l.male).collect(),
    )];
    for k in 0..7 {
        checks.push((
            format!("expression {k} vs rest"),
            samples
                .iter()
                .map(|(_, l)| l.expression.index() == k)
                .collect(),
        ));
    }
    for (name, labels) in &checks {
        let pixel = held_out_threshold_accuracy(&per_pixel, labels);
        let colour = held_out_threshold_accuracy(&mean_colour, labels);
        eprintln!("{name:<24} best single pixel {pixel:.3}, mean colour {colour:.3}");
        assert!(pixel < 0.65, "{name} is readable from one pixel ({pixel})");
        assert!(
            colour < 0.65,
            "{name} is readable from the mean colour ({colour})"
        );
    }
    // Age shows partly in the colour of the crown (grey hair, bald scalp), as it does in
    // photographs: one pixel there is a weak cue, not a readout.
    let young: Vec<bool> = samples.iter().map(|(_, l)| l.has(attr::YOUNG)).collect();
    let pixel = held_out_threshold_accuracy(&per_pixel, &young);
    let colour = held_out_threshold_accuracy(&mean_colour, &young);
    eprintln!(
        "{:<24} best single pixel {pixel:.3}, mean colour {colour:.3}",
        "young"
    );
    assert!(
        pixel < 0.8 && colour < 0.65,
        "young: pixel {pixel}, colour {colour}"
    );
}

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

#[test]
fn the_same_seed_writes_identical_files() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth_determinism");
    let tiny = SynthConfig {
        identities: 3,
        images_per_identity: 2,
        verification_identities: 3,
        verification_pairs: 4,
        adience: 4,
        morph: 4,
        wiki: 4,
        imdb: 4,
        celeba_train: 4,
        celeba_val: 2,
        celeba_test: 2,
        raf_train: 3,
        raf_test: 2,
        affectnet: 3,
        lap_test: 2,
        fgnet_subjects: 2,
        fgnet_images_per_subject: 2,
        ..SynthConfig::small()
    };
    std::fs::create_dir_all(&base).unwrap();
    let config = base.join("tiny.yaml");
    std::fs::write(&config, serde_yaml::to_string(&tiny).unwrap()).unwrap();
    let write = |name: &str, seed: &str| {
        let out = base.join(name);
        run_ok(
            swinface()
                .args(["synth", "--seed", seed, "--threads", "2", "--config"])
                .arg(&config)
                .arg("--out")
                .arg(&out),
        );
        let mut files = files_under(&out);
        // The only file that names its directory.
        let yaml = files
            .remove(Path::new(DATA_CONFIG_NAME))
            .expect("data config");
        let yaml = String::from_utf8(yaml).unwrap();
        (
            files,
            yaml.replace(
                &*std::path::absolute(&out).unwrap().to_string_lossy(),
                "ROOT",
            ),
        )
    };
    let (a, yaml_a) = write("a", "5");
    let (b, yaml_b) = write("b", "5");
    let (c, _) = write("c", "6");
    assert_eq!(a.len(), b.len());
    assert!(a.len() > 50, "{} files", a.len());
    for (path, bytes) in &a {
        assert!(
            b.get(path) == Some(bytes),
            "{} differs between runs",
            path.display()
        );
    }
    assert_eq!(yaml_a, yaml_b);
    let rec = Path::new("faces_emore/train.rec");
    assert_ne!(a[rec], c[rec], "another seed draws other faces");
    // Writing again over an earlier output replaces it.
    let (again, _) = write("a", "5");
    assert_eq!(again, a);
}
