//! `swinface data check CONFIG` end to end: exit 0 and a table on good data, exit 1 and a
//! message naming the file and line or record on bad data.

use std::path::Path;
use std::process::Command;

use swinface_data::formats::recordio::{write_property, IrHeader, Property, RecordWriter};
use swinface_data::formats::verification_bin::write_bin;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([seed, x as u8 * 9, y as u8 * 13]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A recognition `.rec` with 8 images of 2 identities, an LFW-style `.bin`, an FG-NET list;
/// returns the config.
fn make(root: &Path) -> std::path::PathBuf {
    let _ = std::fs::remove_dir_all(root);
    let rec = root.join("faces");
    std::fs::create_dir_all(&rec).unwrap();
    let mut writer = RecordWriter::create(&rec.join("train.rec"), &rec.join("train.idx")).unwrap();
    writer
        .write_packed(0, &IrHeader::vector(vec![9.0, 11.0], 0), b"")
        .unwrap();
    for i in 0..8u64 {
        writer
            .write_packed(
                i + 1,
                &IrHeader::scalar((i / 4) as f32, i + 1),
                &png(i as u8),
            )
            .unwrap();
    }
    for id in 0..2u64 {
        let start = (1 + 4 * id) as f32;
        writer
            .write_packed(
                9 + id,
                &IrHeader::vector(vec![start, start + 4.0], 9 + id),
                b"",
            )
            .unwrap();
    }
    writer.finish().unwrap();
    write_property(
        &rec.join("property"),
        &Property {
            num_classes: 2,
            height: 112,
            width: 112,
        },
    )
    .unwrap();
    let pairs: Vec<Vec<u8>> = (0..4).map(|i| png(50 + i)).collect();
    write_bin(&rec.join("lfw.bin"), &pairs, &[true, false]).unwrap();
    let fgnet = root.join("FGnet");
    std::fs::create_dir_all(fgnet.join("data")).unwrap();
    std::fs::write(fgnet.join("label.txt"), "name age\nf0.jpg 4\nf1.jpg 30\n").unwrap();
    for i in 0..2 {
        std::fs::write(fgnet.join("data").join(format!("f{i}.jpg")), png(i)).unwrap();
    }
    let config = root.join("train.yaml");
    std::fs::write(
        &config,
        format!(
            "network: swin_t\nrec: {}\nnum_classes: 2\nnum_image: 8\nval_targets: [lfw]\nFGnet_data: {}\nFGnet_label: {}\n",
            rec.display(),
            fgnet.join("data").display(),
            fgnet.join("label.txt").display()
        ),
    )
    .unwrap();
    config
}

fn check(config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swinface"))
        .args(["data", "check"])
        .arg(config)
        .args(["--threads", "2"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passes_on_good_data_and_fails_with_a_message_on_bad_data() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("data_check_cli");
    let config = make(&root);
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for expected in [
        "recognition",
        "8/0",
        "lfw.bin",
        "2 pairs, 1 same",
        "FG-NET",
        "age 4..30",
        "PASSED: 3 datasets checked",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from\n{stdout}"
        );
    }

    std::fs::write(root.join("FGnet/label.txt"), "name age\nf0.jpg 4\nf1.jpg\n").unwrap();
    let (code, stdout, _) = check(&config);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FGnet/label.txt:3: expected `name age`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED: 3 datasets checked, 1 failed"),
        "{stdout}"
    );

    let config = make(&root);
    let idx = root.join("faces/train.idx");
    let text = std::fs::read_to_string(&idx).unwrap();
    std::fs::write(&idx, format!("{text}11\t123456789\n")).unwrap();
    let (code, stdout, _) = check(&config);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("train.idx:12: key 11 points to byte 123456789, past the end"),
        "{stdout}"
    );

    let (code, _, stderr) = check(&root.join("missing.yaml"));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot load the data config") && stderr.contains("missing.yaml"),
        "{stderr}"
    );
    std::fs::write(root.join("bad.yaml"), "recognition_bz: [1, 2]\n").unwrap();
    let (code, _, stderr) = check(&root.join("bad.yaml"));
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid YAML config"), "{stderr}");
}
