//! End-to-end tests of `swinface eval`: a small synthetic dataset in every format
//! (`swinface_data::synth`, the generator behind `swinface synth`), a tiny IJB-C layout built
//! from its faces, a tiny model saved as a native checkpoint; the binary must write the JSON,
//! the Markdown report and the plots with numbers in range, and fail with file:line errors on
//! bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use swinface_data::preprocess::ARCFACE_TEMPLATE;
use swinface_data::synth::{write_all, SynthConfig};
use swinface_model::checkpoint::save_native;
use swinface_model::{SwinFace, SwinFaceConfig};
use tch::{nn, Device};

struct Fixture {
    root: PathBuf,
    config: PathBuf,
    checkpoint: PathBuf,
}

/// IJB-C meta for the faces under `loose_crop/`: 12 images, 4 templates of 3 images in 2
/// media, 6 pairs (every face is another synthetic person: the scores are a random model's).
fn write_ijbc(root: &Path, faces: &[PathBuf]) {
    let crop = root.join("loose_crop");
    let meta = root.join("meta");
    std::fs::create_dir_all(&crop).unwrap();
    std::fs::create_dir_all(&meta).unwrap();
    let mut tid_mid = String::new();
    let mut points = String::new();
    // The faces are already aligned 112x112 crops: their landmarks are the template's.
    let lmk: Vec<String> = ARCFACE_TEMPLATE
        .iter()
        .flat_map(|p| p.iter().map(|v| format!("{v}")))
        .collect();
    for (i, face) in faces.iter().take(12).enumerate() {
        let name = format!("{}.jpg", i + 1);
        std::fs::copy(face, crop.join(&name)).unwrap();
        let template = i / 3 + 1;
        let media = 100 + i / 2;
        tid_mid.push_str(&format!("{name} {template} {media}\n"));
        let score = 0.5 + 0.04 * i as f64;
        points.push_str(&format!("{name} {} {score}\n", lmk.join(" ")));
    }
    std::fs::write(meta.join("ijbc_face_tid_mid.txt"), tid_mid).unwrap();
    std::fs::write(meta.join("ijbc_name_5pts_score.txt"), points).unwrap();
    std::fs::write(
        meta.join("ijbc_template_pair_label.txt"),
        "1 2 1\n3 4 1\n2 3 1\n1 3 0\n2 4 0\n1 4 0\n",
    )
    .unwrap();
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval_e2e");
        let data = root.join("data");
        write_all(&data, &SynthConfig::small()).expect("synthetic dataset");
        let mut faces: Vec<PathBuf> = std::fs::read_dir(data.join("LAP_test/test"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        faces.sort();
        let ijbc = root.join("IJBC");
        write_ijbc(&ijbc, &faces);

        let model_cfg = SwinFaceConfig::tiny_demo();
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        SwinFace::new(&vs.root(), &model_cfg).expect("model");
        let checkpoint = root.join("tiny.safetensors");
        save_native(&checkpoint, &vs, &Default::default()).expect("checkpoint");

        let data_yaml =
            std::fs::read_to_string(data.join("swinface_data.yaml")).expect("synth data config");
        let model_yaml = serde_yaml::to_string(&model_cfg).unwrap();
        let config = root.join("eval.yaml");
        let settings = format!("val_batch_size: 16\nIJBC_path: {}\n", ijbc.display());
        std::fs::write(&config, format!("{model_yaml}\n{data_yaml}\n{settings}")).unwrap();
        Fixture {
            root,
            config,
            checkpoint,
        }
    })
}

fn run_eval(config: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swinface"))
        .arg("eval")
        .arg("--checkpoint")
        .arg(&fixture().checkpoint)
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"])
        .args(extra)
        .output()
        .expect("run swinface")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fraction(v: &Value) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((0.0..=1.0).contains(&x), "{x} is not a fraction");
    x
}

#[test]
fn writes_json_report_and_plots_with_numbers_in_range() {
    let f = fixture();
    let out = f.root.join("out_all");
    let _ = std::fs::remove_dir_all(&out);
    let run = run_eval(&f.config, &out, &[]);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("RAF-DB: top-1") && stdout.contains("lfw: accuracy"),
        "{stdout}"
    );

    let json: Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap())
        .expect("results.json");
    let r = &json["results"];
    let synth = SynthConfig::small();

    let raf = &r["raf"]["metrics"];
    assert_eq!(raf["samples"], synth.raf_test);
    let (top1, top5) = (fraction(&raf["top1"]), fraction(&raf["top5"]));
    assert!(top5 >= top1);
    let confusion_total: u64 = raf["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion_total as usize, synth.raf_test);
    fraction(&raf["mean_class_accuracy"]);

    let celeba = &r["celeba"]["metrics"];
    assert_eq!(celeba["samples"], synth.celeba_test);
    assert_eq!(celeba["per_attribute"].as_array().unwrap().len(), 40);
    fraction(&celeba["mean"]);

    let clap = &r["clap"]["metrics"];
    assert_eq!(clap["samples"], synth.lap_test);
    assert!(clap["mae"].as_f64().unwrap() >= 0.0);
    fraction(&clap["epsilon_error"]);
    let fgnet = &r["fgnet"]["metrics"];
    assert_eq!(
        fgnet["samples"],
        synth.fgnet_subjects * synth.fgnet_images_per_subject
    );
    assert!(fgnet["mae"].as_f64().unwrap() >= 0.0);

    let verification = r["verification"].as_array().unwrap();
    assert_eq!(verification.len(), synth.verification_sets.len());
    for v in verification {
        let m = &v["metrics"];
        assert_eq!(m["pairs"], synth.verification_pairs);
        fraction(&m["accuracy"]);
        assert_eq!(m["roc"]["tpr"].as_array().unwrap().len(), 400);
        assert_eq!(m["roc"]["fold_accuracy"].as_array().unwrap().len(), 10);
        assert!(m["xnorm"].as_f64().unwrap() > 0.0);
    }

    let ijbc = &r["ijbc"];
    assert_eq!(ijbc["images"], 12);
    assert_eq!(ijbc["templates"], 4);
    let tars = ijbc["tar_at_far"].as_array().unwrap();
    assert_eq!(tars.len(), 6);
    for pair in tars {
        fraction(&pair[1]);
    }
    fraction(&ijbc["auc"]);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Summary against the paper",
        "## Verification (10-fold)",
        "## IJBC 1:1 verification",
        "## RAF-DB test",
        "## CelebA test",
        "## CLAP2015",
        "## FG-NET",
        "![roc_verification.png](roc_verification.png)",
    ] {
        assert!(md.contains(section), "report.md lacks {section}");
    }
    for (png, min_side) in [
        ("roc_verification.png", 500),
        ("roc_ijbc.png", 500),
        ("raf_confusion.png", 500),
        ("age_errors.png", 400),
        ("celeba_attributes.png", 800),
    ] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(
            img.width().max(img.height()) >= min_side,
            "{png} is too small"
        );
        // Something was drawn: not a blank canvas.
        let rgb = img.to_rgb8();
        let dark = rgb
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 128))
            .count();
        assert!(dark > 100, "{png} looks empty");
    }
}

#[test]
fn only_runs_the_named_evaluations() {
    let f = fixture();
    let out = f.root.join("out_only");
    let _ = std::fs::remove_dir_all(&out);
    let run = run_eval(
        &f.config,
        &out,
        &["--only", "raf,fgnet", "--batch-size", "5"],
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let r = &json["results"];
    assert!(r["raf"].is_object() && r["fgnet"].is_object());
    assert!(r["celeba"].is_null() && r["clap"].is_null() && r["ijbc"].is_null());
    assert_eq!(r["verification"].as_array().unwrap().len(), 0);
}

/// A copy of the config with `key` replaced.
fn config_with(name: &str, key: &str, value: &Path) -> PathBuf {
    let f = fixture();
    let text = std::fs::read_to_string(&f.config).unwrap();
    let prefix = format!("{key}:");
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                replaced = true;
                format!("{key}: {}", value.display())
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(replaced, "{key} not in the config");
    let path = f.root.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn a_missing_image_is_named_with_its_label_file_and_line() {
    let f = fixture();
    let original = f.root.join("data/RAF/basic/list_patition_label.txt");
    let mut labels = std::fs::read_to_string(&original).unwrap();
    let lines = labels.lines().count();
    labels.push_str("test_99999.jpg 3\n");
    let bad = f.root.join("bad_raf_labels.txt");
    std::fs::write(&bad, labels).unwrap();
    let config = config_with("bad_raf.yaml", "RAF_label", &bad);
    let run = run_eval(&config, &f.root.join("out_bad_raf"), &["--only", "raf"]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains(&format!("bad_raf_labels.txt:{}", lines + 1))
            && stderr.contains("test_99999")
            && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bin_with_fewer_images_than_pairs_is_a_clear_error() {
    let f = fixture();
    let rec = f.root.join("bad_rec");
    std::fs::create_dir_all(&rec).unwrap();
    // Protocol 3 pickle of ([b"abc", b"def", b"ghi"], [True, False]): 2 pairs, 3 images.
    let mut pickle = b"\x80\x03(](".to_vec();
    for img in [b"abc", b"def", b"ghi"] {
        pickle.extend_from_slice(b"C\x03");
        pickle.extend_from_slice(img);
    }
    pickle.extend_from_slice(b"e](\x88\x89et.");
    std::fs::write(rec.join("lfw.bin"), pickle).unwrap();
    let config = config_with("bad_bin.yaml", "rec", &rec);
    let run = run_eval(
        &config,
        &f.root.join("out_bad_bin"),
        &["--only", "verification"],
    );
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("lfw.bin") && stderr.contains("2 pairs need 4 images but the file has 3"),
        "{stderr}"
    );
}

#[test]
fn an_ijbc_meta_file_with_a_wrong_column_count_is_named_with_its_line() {
    let f = fixture();
    let root = f.root.join("bad_ijbc");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("meta")).unwrap();
    for name in ["ijbc_face_tid_mid.txt", "ijbc_name_5pts_score.txt"] {
        std::fs::copy(
            f.root.join("IJBC/meta").join(name),
            root.join("meta").join(name),
        )
        .unwrap();
    }
    std::fs::write(
        root.join("meta/ijbc_template_pair_label.txt"),
        "1 1 1\n1 2\n",
    )
    .unwrap();
    let root_arg = root.display().to_string();
    let run = run_eval(
        &f.config,
        &f.root.join("out_bad_ijbc"),
        &["--only", "ijbc", "--ijbc", &root_arg],
    );
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("ijbc_template_pair_label.txt:2") && stderr.contains("expected 3 columns"),
        "{stderr}"
    );
}

#[test]
fn asking_for_an_unconfigured_evaluation_fails() {
    let f = fixture();
    let config = f.root.join("raf_only.yaml");
    std::fs::write(&config, "RAF_data: /nonexistent\n").unwrap();
    let run = run_eval(
        &config,
        &f.root.join("out_unconfigured"),
        &["--only", "celeba"],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("--only celeba"),
        "{}",
        text(&run.stderr)
    );
}
