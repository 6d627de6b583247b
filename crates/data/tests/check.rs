//! `check_data` on a small dataset in every format (written with our writers), and on copies
//! with each kind of bad input: the failing dataset and a message naming the file and line or
//! record.

mod formats_support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use formats_support::{png, scratch_dir, write, write_png};
use swinface_data::check::{check_data, CheckOptions, CheckReport, DatasetReport, Status};
use swinface_data::formats::recordio::{write_property, IrHeader, Property, RecordWriter};
use swinface_data::formats::verification_bin::write_bin;
use swinface_data::streams::DataConfig;

/// Writes every format under `root` and returns the config YAML naming them.
fn make_dataset(root: &Path) -> String {
    let rec = root.join("faces");
    std::fs::create_dir_all(&rec).unwrap();
    let mut writer = RecordWriter::create(&rec.join("train.rec"), &rec.join("train.idx")).unwrap();
    writer
        .write_packed(0, &IrHeader::vector(vec![13.0, 16.0], 0), b"")
        .unwrap();
    for i in 0..12u64 {
        writer
            .write_packed(
                i + 1,
                &IrHeader::scalar((i / 4) as f32, i + 1),
                &png(i as u8, 8),
            )
            .unwrap();
    }
    for id in 0..3u64 {
        let start = (1 + 4 * id) as f32;
        writer
            .write_packed(
                13 + id,
                &IrHeader::vector(vec![start, start + 4.0], 13 + id),
                b"",
            )
            .unwrap();
    }
    writer.finish().unwrap();
    write_property(
        &rec.join("property"),
        &Property {
            num_classes: 3,
            height: 112,
            width: 112,
        },
    )
    .unwrap();
    let pairs: Vec<Vec<u8>> = (0..4).map(|i| png(100 + i, 8)).collect();
    write_bin(&rec.join("lfw.bin"), &pairs, &[true, false]).unwrap();

    let ag = root.join("AIO_train");
    for (s, name) in ["Adience", "MORPH", "WIKI", "IMDB"].iter().enumerate() {
        let mut text = String::from("name age gender\n");
        for i in 0..3 {
            writeln!(
                text,
                "{name}{i}.jpg {} {}",
                10 + 20 * i + s,
                ["1.0", "0.0"][i % 2]
            )
            .unwrap();
            write_png(
                &ag.join(name).join("data").join(format!("{name}{i}.jpg")),
                i as u8,
            );
        }
        writeln!(text, "skip.jpg nan 1.0").unwrap();
        write(&ag.join(name).join("label.txt"), &text);
    }
    let mut celeba = String::from("header\n");
    for i in 0..5 {
        let values: Vec<&str> = (0..40)
            .map(|j| if (i + j) % 3 == 0 { "1" } else { "-1" })
            .collect();
        writeln!(celeba, "{i:06}.jpg {}", values.join(" ")).unwrap();
        write_png(
            &root.join("CelebA/data").join(format!("{i:06}.jpg")),
            i as u8,
        );
    }
    write(&root.join("CelebA/label.txt"), &celeba);
    let mut raf = String::new();
    for i in 0..6 {
        let name = format!("{}_{i:05}.jpg", if i < 4 { "train" } else { "test" });
        writeln!(raf, "{name} {}", 1 + i).unwrap();
        write_png(&root.join("RAF/data").join(&name), i as u8);
    }
    write(&root.join("RAF/list_patition_label.txt"), &raf);
    let mut affect = String::from("name x label\n");
    for i in 0..3 {
        writeln!(affect, "a{i}.jpg 0 {i}").unwrap();
        write_png(
            &root.join("AffectNet/data").join(format!("a{i}.jpg")),
            i as u8,
        );
    }
    write(&root.join("AffectNet/label.txt"), &affect);
    let mut fgnet = String::from("name age\n");
    for i in 0..4 {
        writeln!(fgnet, "f{i}.jpg {}", 3 + 10 * i).unwrap();
        write_png(&root.join("FGnet/data").join(format!("f{i}.jpg")), i as u8);
    }
    write(&root.join("FGnet/label.txt"), &fgnet);
    let mut lap = String::new();
    for i in 0..3 {
        writeln!(lap, "l{i}.jpg;{}.5;{}.25", 20 + i, i).unwrap();
        write_png(&root.join("LAP/data").join(format!("l{i}.jpg")), i as u8);
    }
    write(&root.join("LAP/test.csv"), &lap);

    let p = |rel: &str| root.join(rel).display().to_string();
    format!(
        "network: swin_t\nlr: 0.0005\nrec: {}\nnum_classes: 3\nnum_image: 12\nval_targets: [lfw]\n\
         recognition_bz: 4\nage_gender_bz: 2\nCelebA_bz: 2\nexpression_bz: 2\n\
         age_gender_data_path: {}\nCelebA_train_data: {}\nCelebA_train_label: {}\n\
         CelebA_test_data: {}\nCelebA_test_label: {}\nRAF_data: {}\nRAF_label: {}\n\
         AffectNet_data: {}\nAffectNet_label: {}\nFGnet_data: {}\nFGnet_label: {}\n\
         CLAP_test_data: {}\nCLAP_test_label: {}\n",
        p("faces"),
        p("AIO_train"),
        p("CelebA/data"),
        p("CelebA/label.txt"),
        p("CelebA/data"),
        p("CelebA/label.txt"),
        p("RAF/data"),
        p("RAF/list_patition_label.txt"),
        p("AffectNet/data"),
        p("AffectNet/label.txt"),
        p("FGnet/data"),
        p("FGnet/label.txt"),
        p("LAP/data"),
        p("LAP/test.csv"),
    )
}

fn run(yaml: &str) -> CheckReport {
    let config = DataConfig::from_yaml_str(yaml).unwrap();
    check_data(&config, &CheckOptions::default())
}

fn dataset<'a>(report: &'a CheckReport, name: &str) -> &'a DatasetReport {
    report
        .datasets
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

/// Asserts that exactly the datasets `failed` fail, each with a message containing `expected`.
fn assert_fails(report: &CheckReport, failed: &[&str], expected: &str) {
    assert!(!report.passed(), "{}", report.render());
    let names: Vec<&str> = report
        .datasets
        .iter()
        .filter(|d| d.status == Status::Failed)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, failed, "{}", report.render());
    for name in failed {
        let errors = dataset(report, name).errors.join("\n");
        assert!(errors.contains(expected), "{name}: {errors}");
    }
    assert!(report.render().contains(expected));
}

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn fresh(name: &str) -> (PathBuf, String) {
    let root = scratch_dir(name);
    let yaml = make_dataset(&root);
    (root, yaml)
}

#[test]
fn a_good_dataset_passes_with_counts_and_labels() {
    let (_root, yaml) = fresh("check_good");
    let report = run(&yaml);
    let table = report.render();
    assert!(report.passed(), "{table}");
    let rec = dataset(&report, "recognition");
    assert_eq!(
        (rec.count, rec.classes.as_str(), rec.labels.as_str()),
        (12, "3", "label 0..2")
    );
    assert_eq!(
        rec.decode.as_ref().map(|t| (t.checked, t.bad)),
        Some((12, 0))
    );
    let lfw = dataset(&report, "lfw.bin");
    assert_eq!((lfw.count, lfw.labels.as_str()), (4, "2 pairs, 1 same"));
    // N = 12 // 4 * 2 = 6 per analysis stream.
    let ag = dataset(&report, "age_gender stream");
    assert_eq!(ag.count, 6);
    assert!(
        ag.notes[0].contains("Adience 2, MORPH 2, WIKI 2, IMDB 0"),
        "{:?}",
        ag.notes
    );
    assert_eq!(dataset(&report, "expression stream").count, 6);
    assert_eq!(dataset(&report, "CelebA train stream").count, 6);
    assert_eq!(dataset(&report, "CelebA test").count, 5);
    let raf = dataset(&report, "RAF-DB test");
    assert_eq!(
        (raf.count, raf.labels.as_str()),
        (2, "per class [0, 0, 0, 0, 1, 1, 0]")
    );
    assert_eq!(dataset(&report, "FG-NET").labels, "age 3..33");
    assert_eq!(dataset(&report, "CLAP test").count, 3);
    assert_eq!(dataset(&report, "CelebA val").status, Status::NotConfigured);
    assert!(
        table.contains("PASSED: 9 datasets checked, 0 failed"),
        "{table}"
    );
}

#[test]
fn missing_files_fail_with_their_path() {
    let (root, yaml) = fresh("check_missing");
    std::fs::remove_file(root.join("RAF/list_patition_label.txt")).unwrap();
    assert_fails(
        &run(&yaml),
        &["expression stream", "RAF-DB test"],
        "list_patition_label.txt does not exist",
    );
    let (root, yaml) = fresh("check_missing_bin");
    std::fs::remove_file(root.join("faces/lfw.bin")).unwrap();
    assert_fails(&run(&yaml), &["lfw.bin"], "lfw.bin does not exist");
}

#[test]
fn malformed_label_lines_name_file_and_line() {
    let (root, yaml) = fresh("check_malformed");
    write(
        &root.join("FGnet/label.txt"),
        "name age\nf0.jpg 3\nf1.jpg\n",
    );
    assert_fails(
        &run(&yaml),
        &["FG-NET"],
        "FGnet/label.txt:3: expected `name age`",
    );
    let (root, yaml) = fresh("check_malformed_ag");
    write(
        &root.join("AIO_train/WIKI/label.txt"),
        "h\nWIKI0.jpg NaN 1.0\n",
    );
    assert_fails(
        &run(&yaml),
        &["age_gender stream"],
        "WIKI/label.txt:2: age \"NaN\" is not a finite number",
    );
}

#[test]
fn truncated_rec_and_index_past_end_are_named() {
    let (root, yaml) = fresh("check_truncated");
    let rec = root.join("faces/train.rec");
    let bytes = std::fs::read(&rec).unwrap();
    // Cut into the last record (an identity record, which image reads never touch).
    std::fs::write(&rec, &bytes[..bytes.len() - 4]).unwrap();
    let report = run(&yaml);
    assert_fails(&report, &["recognition"], "train.rec: record at byte");
    let errors = &dataset(&report, "recognition").errors;
    assert!(
        errors[0].contains("1 unreadable records") && errors[0].contains("remain in the file"),
        "{errors:?}"
    );

    let (root, yaml) = fresh("check_idx");
    let idx = root.join("faces/train.idx");
    let text = std::fs::read_to_string(&idx).unwrap();
    std::fs::write(&idx, format!("{text}16\t99999999\n")).unwrap();
    assert_fails(
        &run(&yaml),
        &["recognition"],
        "train.idx:17: key 16 points to byte 99999999, past the end",
    );
}

#[test]
fn corrupt_images_count_against_the_allowed_fraction() {
    let (root, yaml) = fresh("check_corrupt");
    std::fs::write(
        root.join("FGnet/data/f1.jpg"),
        b"\xff\xd8\xff\xe0 truncated",
    )
    .unwrap();
    // A PNG header claiming 100000 x 100000 pixels: refused before decoding.
    let mut huge = png(1, 8);
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // The IHDR chunk's CRC covers its type and data (bytes 12..29).
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(root.join("FGnet/data/f2.jpg"), &huge).unwrap();
    let report = run(&yaml);
    assert_fails(
        &report,
        &["FG-NET"],
        "2 of 4 images (50.000%) failed to decode, over the allowed fraction",
    );
    let fg = dataset(&report, "FG-NET");
    let tally = fg.decode.as_ref().unwrap();
    assert_eq!((tally.checked, tally.bad), (4, 2));
    assert!(
        tally.examples[0].0.ends_with("f1.jpg") && tally.examples[0].1.contains("cannot decode"),
        "{:?}",
        tally.examples
    );
    assert!(
        tally.examples[1]
            .1
            .contains("100000x100000 pixels, over the limit"),
        "{:?}",
        tally.examples
    );
    let table = report.render();
    assert!(
        table.contains("bad image: ") && table.contains("f2.jpg"),
        "{table}"
    );

    // Within the allowed fraction the images are only noted.
    let lenient = run(&format!("{yaml}max_bad_image_fraction: 0.5\n"));
    assert!(lenient.passed(), "{}", lenient.render());
    assert!(dataset(&lenient, "FG-NET").notes[0].contains("they will be skipped"));
}

#[test]
fn max_images_spreads_the_decoding() {
    let (_root, yaml) = fresh("check_sample");
    let config = DataConfig::from_yaml_str(&yaml).unwrap();
    let report = check_data(
        &config,
        &CheckOptions {
            max_images: Some(3),
        },
    );
    assert!(report.passed());
    assert_eq!(
        dataset(&report, "recognition")
            .decode
            .as_ref()
            .unwrap()
            .checked,
        3
    );
    assert_eq!(dataset(&report, "recognition").count, 12);
}

#[test]
fn a_config_without_datasets_fails() {
    let report = run("lr: 0.1\n");
    assert!(!report.passed());
    assert!(report.render().contains("no dataset is configured"));
}
