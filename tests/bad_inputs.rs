//! The bad-input corpus under tests/bad_inputs/ (written by its make.py), one test per file:
//! each goes through the command a user would run on it (`swinface data check`, `infer` or
//! `train`) and must end in a clear message naming the file (and its line, byte or key),
//! never a panic, never a code execution, never a half-written output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use swinface_data::synth::{write_all, SynthConfig};
use swinface_model::checkpoint::save_native;
use swinface_model::{SwinFace, SwinFaceConfig};
use tch::{nn, Device};

const BIN: &str = env!("CARGO_BIN_EXE_swinface");
/// What the corpus's malicious pickles would create if anything executed them.
const PWNED: &str = "/tmp/swinface_bad_input_pwned";

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/bad_inputs")
        .join(name)
}

fn scratch(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bad_inputs")
        .join(case);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small valid dataset the broken file is swapped into.
fn data_dir() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_inputs_data");
        write_all(&dir, &SynthConfig::small()).expect("synthetic dataset");
        dir
    })
}

fn run(args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN).args(args).output().expect("run swinface");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Failed (exit 1) with every `expected` piece in its output and no panic.
fn assert_clean_failure(out: &Output, text: &str, expected: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    for piece in expected {
        assert!(text.contains(piece), "{piece:?} missing from:\n{text}");
    }
}

/// The synthetic dataset's data config with `edits` (YAML values) applied, written to `dir`.
fn data_config(dir: &Path, edits: &[(&str, String)]) -> PathBuf {
    let text = std::fs::read_to_string(data_dir().join("swinface_data.yaml")).unwrap();
    let mut map: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap();
    for (key, value) in edits {
        map.insert((*key).into(), serde_yaml::from_str(value).unwrap());
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_yaml::to_string(&map).unwrap()).unwrap();
    path
}

/// `swinface data check` with `key` pointed at the corpus file `name` (plus `more` edits).
fn check_with(name: &str, key: &str, more: &[(&str, &str)], expected: &[&str]) {
    let dir = scratch(name);
    let file = corpus(name);
    let mut edits = vec![(key, format!("'{}'", file.display()))];
    edits.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let config = data_config(&dir, &edits);
    let (out, text) = run(&[
        "data",
        "check",
        config.to_str().unwrap(),
        "--max-images",
        "4",
        "--threads",
        "1",
    ]);
    let mut all = vec![name];
    all.extend_from_slice(expected);
    assert_clean_failure(&out, &text, &all);
}

/// One `data check` test per corpus file under `$dir`, the file given to config key `$key`,
/// with the group's other config edits.
macro_rules! data_check_cases {
    ($dir:literal, $edits:expr, {
        $($test:ident: $file:literal via $key:literal => [$($expected:literal),+];)+
    }) => {$(
        #[test]
        fn $test() {
            check_with(concat!($dir, "/", $file), $key, $edits, &[$($expected),+]);
        }
    )+};
}

data_check_cases!("labels", &[], {
    raf_row_without_a_label: "raf_missing_label.txt" via "RAF_label" =>
        [".txt:2", "expected `name label`"];
    raf_label_out_of_range: "raf_label_out_of_range.txt" via "RAF_label" =>
        [".txt:2", "label 9 is outside 1..=7"];
    raf_negative_label: "raf_label_negative.txt" via "RAF_label" =>
        [".txt:1", "label -1 is outside 1..=7"];
    raf_nan_label: "raf_label_nan.txt" via "RAF_label" =>
        [".txt:2", "\"nan\" is not an integer"];
    raf_name_that_is_not_utf8: "raf_non_utf8_name.txt" via "RAF_label" =>
        [".txt:2", "not UTF-8"];
    celeba_row_with_39_values: "celeba_wrong_columns.txt" via "CelebA_train_label" =>
        [".txt:2", "expected a name and 40 values, found 40 fields"];
    celeba_nan_value: "celeba_label_nan.txt" via "CelebA_train_label" =>
        [".txt:2", "attribute 21 \"nan\" is not an integer"];
    celeba_value_out_of_range: "celeba_label_out_of_range.txt" via "CelebA_train_label" =>
        [".txt:2", "attribute 21 is 7, expected 1, 0 or -1"];
    affectnet_row_without_a_label: "affectnet_wrong_columns.txt" via "AffectNet_label" =>
        [".txt:2", "expected at least 3 columns"];
    affectnet_label_out_of_range: "affectnet_label_out_of_range.txt" via "AffectNet_label" =>
        [".txt:2", "label 12 is outside"];
});

data_check_cases!("labels", &[("age_gender_data_list", "[IMDB]")], {
    age_gender_negative_age: "age_gender_negative_age" via "age_gender_data_path" =>
        ["IMDB/label.txt:3", "age -4"];
    age_gender_row_without_gender: "age_gender_wrong_columns" via "age_gender_data_path" =>
        ["IMDB/label.txt:2", "columns"];
});

data_check_cases!("recordio", &[("val_targets", "[]"), ("num_classes", "2")], {
    recordio_bad_magic: "bad_magic" via "rec" =>
        ["train.rec: record at byte 4432: bad magic 0x0df0ad0b"];
    recordio_truncated_record: "truncated" via "rec" =>
        ["train.rec: record at byte 4432: record header claims 2214 bytes but only 1108 remain"];
    recordio_index_past_the_end: "idx_past_end" via "rec" =>
        ["train.idx:3: key 2 points to byte 10000000, past the end of the .rec (6648 bytes)"];
    recordio_length_past_the_end: "length_past_end" via "rec" =>
        ["record header claims 536870919 bytes but only 2216 remain"];
});

/// A verification `.bin` from the corpus as `lfw.bin` beside the good recognition data.
fn check_verification_bin(name: &str, expected: &[&str]) {
    let dir = scratch(name);
    let rec = dir.join("faces_emore");
    std::fs::create_dir_all(&rec).unwrap();
    for file in ["train.rec", "train.idx"] {
        std::fs::copy(data_dir().join("faces_emore").join(file), rec.join(file)).unwrap();
    }
    std::fs::copy(corpus(name), rec.join("lfw.bin")).unwrap();
    let config = data_config(
        &dir,
        &[
            ("rec", format!("'{}'", rec.display())),
            ("val_targets", "[lfw]".into()),
        ],
    );
    let (out, text) = run(&[
        "data",
        "check",
        config.to_str().unwrap(),
        "--max-images",
        "4",
    ]);
    let mut all = vec!["lfw.bin"];
    all.extend_from_slice(expected);
    assert_clean_failure(&out, &text, &all);
}

#[test]
fn verification_bin_of_the_wrong_structure() {
    check_verification_bin(
        "pickles/lfw_wrong_structure.bin",
        &["expected a (images, issame) tuple, found a dict"],
    );
}

#[test]
fn verification_bin_with_too_few_images() {
    check_verification_bin(
        "pickles/lfw_too_few_images.bin",
        &["3 pairs need 6 images but the file has 2"],
    );
}

#[test]
fn verification_bin_naming_os_system_is_refused_and_runs_nothing() {
    let _ = std::fs::remove_file(PWNED);
    check_verification_bin(
        "pickles/lfw_evil_global.bin",
        &["global `os.system` is not allowed", "opcode GLOBAL"],
    );
    assert!(!Path::new(PWNED).exists(), "the pickle ran code");
}

/// `swinface infer` on the fixture face with the corpus checkpoint `name`.
fn infer_with_checkpoint(name: &str) -> (Output, String) {
    let pt = corpus(name);
    let face = corpus("../fixtures/images/face.jpg");
    run(&[
        "infer",
        "--checkpoint",
        pt.to_str().unwrap(),
        face.to_str().unwrap(),
    ])
}

#[test]
fn checkpoint_naming_os_system_is_refused_and_runs_nothing() {
    let _ = std::fs::remove_file(PWNED);
    let (out, text) = infer_with_checkpoint("pickles/evil_global.pt");
    assert_clean_failure(
        &out,
        &text,
        &["evil_global.pt", "global `os.system` is not allowed"],
    );
    assert!(!Path::new(PWNED).exists(), "the pickle ran code");
}

#[test]
fn checkpoint_of_the_wrong_structure() {
    let (out, text) = infer_with_checkpoint("pickles/wrong_structure.pt");
    assert_clean_failure(&out, &text, &["wrong_structure.pt", "missing keys"]);
}

/// A small model's checkpoint and config for `swinface infer`.
fn tiny_model() -> &'static (PathBuf, PathBuf) {
    static MODEL: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_inputs_model");
        std::fs::create_dir_all(&dir).unwrap();
        let config = SwinFaceConfig::tiny_demo();
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = SwinFace::new(&vs.root(), &config).unwrap();
        let checkpoint = dir.join("tiny.safetensors");
        save_native(&checkpoint, &vs, &Default::default()).unwrap();
        let yaml = dir.join("tiny.yaml");
        std::fs::write(&yaml, serde_yaml::to_string(&config).unwrap()).unwrap();
        (checkpoint, yaml)
    })
}

macro_rules! image_cases {
    ($($test:ident: $file:literal;)+) => {$(
        /// Reported by name; the good image beside it is still analysed.
        #[test]
        fn $test() {
            let (checkpoint, config) = tiny_model();
            let bad = corpus(concat!("images/", $file));
            let good = corpus("../fixtures/images/face.jpg");
            let (out, text) = run(&[
                "infer",
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--format",
                "json",
                bad.to_str().unwrap(),
                good.to_str().unwrap(),
            ]);
            assert_clean_failure(&out, &text, &[$file]);
            let results: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"));
            let results = results.as_array().expect("a JSON array");
            assert_eq!(results.len(), 1, "{text}");
            assert!(results[0].to_string().contains("face.jpg"), "{text}");
        }
    )+};
}

image_cases! {
    zero_byte_jpeg: "empty.jpg";
    truncated_jpeg: "truncated.jpg";
    garbage_jpeg: "garbage.jpg";
    garbage_png: "garbage.png";
    png_claiming_100000_by_100000_pixels: "huge_dimensions.png";
    jpeg_claiming_65000_by_65000_pixels: "huge_dimensions.jpg";
}

macro_rules! yaml_cases {
    ($($test:ident: $file:literal => [$($expected:literal),+];)+) => {$(
        /// Refused before anything is written.
        #[test]
        fn $test() {
            let out_dir = scratch(concat!("yaml_", $file)).join("out");
            let config = corpus(concat!("yaml/", $file));
            let (out, text) = run(&[
                "train",
                config.to_str().unwrap(),
                "--output",
                out_dir.to_str().unwrap(),
            ]);
            assert_clean_failure(&out, &text, &[$file, $($expected),+]);
            assert!(!out_dir.exists(), "{} was written", out_dir.display());
        }
    )+};
}

yaml_cases! {
    yaml_unknown_key: "unknown_key.yaml" => ["unknown key lerning_rate", "valid keys"];
    yaml_wrong_type: "wrong_type.yaml" => ["lr: invalid type: string \"fast\", expected f64"];
    yaml_wrong_nesting: "wrong_nesting.yaml" => ["swin.depths: invalid type: string \"two\""];
    yaml_not_a_mapping: "not_a_mapping.yaml" => ["mapping"];
}
