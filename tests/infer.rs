//! End-to-end tests of `swinface infer`: the built binary is run on the fixture images with an
//! official-layout checkpoint holding the deterministic formula weights, and its JSON is checked
//! against an independent reference: OpenCV (venv python) preprocesses the same pixels, the model
//! is run in-process on that tensor, and the raw outputs must agree to 1e-4.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use swinface_model::checkpoint::{write_official, OfficialWriteOptions};
use swinface_model::formula::fill_by_formula;
use swinface_model::{SwinFace, SwinFaceConfig, EXPRESSION_LABELS, GENDER_LABELS, TASK_NAMES};
use tch::{nn, Device, Kind, Tensor};

/// Raw outputs may differ from the reference by this much (relative to max(1, |value|)).
const TOLERANCE: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/images")
        .join(name)
}

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup",
        python.display()
    );
    python
}

/// The formula-weight model as an official checkpoint, written once per test run.
fn official_checkpoint() -> &'static Path {
    static CHECKPOINT: OnceLock<PathBuf> = OnceLock::new();
    CHECKPOINT.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("infer_formula_official.pt");
        let (vs, _model) = formula_model();
        write_official(&path, &vs, &OfficialWriteOptions::default())
            .expect("write the official checkpoint");
        path
    })
}

fn formula_model() -> (nn::VarStore, SwinFace) {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = SwinFace::new(&vs.root(), &SwinFaceConfig::default()).expect("build the model");
    fill_by_formula(&vs).expect("formula weights");
    (vs, model)
}

fn run_infer(args: &[&str], images: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swinface"))
        .arg("infer")
        .args(args)
        .args(images)
        .output()
        .expect("run swinface")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One image for the OpenCV reference: its pixels (decoded by us; JPEG decoders differ
/// slightly, which is not what is tested here) and optionally landmarks to align with.
struct ReferenceCase {
    image: PathBuf,
    landmarks: Option<[f32; 10]>,
}

const REFERENCE_SCRIPT: &str = r#"
import json, sys
import cv2
import numpy as np

ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)

def umeyama(src, dst):
    src, dst = src.astype(np.float64), dst.astype(np.float64)
    n, dim = src.shape
    sm, dm = src.mean(0), dst.mean(0)
    sd, dd = src - sm, dst - dm
    a = dd.T @ sd / n
    d = np.ones(dim)
    if np.linalg.det(a) < 0:
        d[-1] = -1
    u, s, v = np.linalg.svd(a)
    t = np.eye(dim + 1)
    t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / sd.var(0).sum() * (s @ d)
    t[:dim, dim] = dm - scale * (t[:dim, :dim] @ sm)
    t[:dim, :dim] *= scale
    return t[:2]

faces = []
for case in json.load(open(sys.argv[1])):
    img = np.fromfile(case["rgb"], np.uint8).reshape(case["height"], case["width"], 3)
    if case["landmarks"] is None:
        face = cv2.resize(img, (112, 112))  # what the official inference.py does
    else:
        lmk = np.array(case["landmarks"], dtype=np.float32).reshape(5, 2)
        face = cv2.warpAffine(img, umeyama(lmk, ARCFACE), (112, 112), borderValue=0.0)
    x = np.transpose(face, (2, 0, 1)).astype(np.float32)
    faces.append((x / np.float32(255) - np.float32(0.5)) / np.float32(0.5))
np.stack(faces).astype(np.float32).tofile(sys.argv[2])
"#;

/// [N, 3, 112, 112] input computed by OpenCV in the venv.
fn opencv_reference_input(cases: &[ReferenceCase]) -> Tensor {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let rgb = image::open(&case.image).expect("decode fixture").to_rgb8();
        let raw = dir.path().join(format!("{i}.rgb"));
        std::fs::write(&raw, rgb.as_raw()).unwrap();
        spec.push(serde_json::json!({
            "rgb": raw,
            "width": rgb.width(),
            "height": rgb.height(),
            "landmarks": case.landmarks.map(|l| l.to_vec()),
        }));
    }
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out_path = dir.path().join("input.f32");
    let out = Command::new(venv_python())
        .args(["-c", REFERENCE_SCRIPT])
        .arg(&spec_path)
        .arg(&out_path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reference script failed: {}",
        stderr_of(&out)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_slice(&values).view([cases.len() as i64, 3, 112, 112])
}

/// Raw outputs of the in-process model: per image, per output name, the values.
fn reference_outputs(input: &Tensor) -> Vec<Vec<Vec<f32>>> {
    let (_vs, model) = formula_model();
    let out = tch::no_grad(|| model.forward_t(input, false));
    let batch = input.size()[0];
    (0..batch)
        .map(|b| {
            out.heads
                .iter()
                .map(|h| Vec::<f32>::try_from(h.get(b).to_kind(Kind::Float).view([-1])).unwrap())
                .collect()
        })
        .collect()
}

fn as_f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Checks the shape and the internal consistency of one JSON object; returns its raw outputs.
fn check_prediction(p: &Value, image: &Path) -> Vec<Vec<f64>> {
    assert_eq!(p["image"].as_str().unwrap(), image.to_str().unwrap());
    let raw = p["raw"].as_object().expect("--raw gives a raw object");
    assert_eq!(raw.len(), 43);
    let raw: Vec<Vec<f64>> = TASK_NAMES.iter().map(|n| as_f64s(&raw[*n])).collect();
    for (name, values) in TASK_NAMES.iter().zip(&raw) {
        let expected = match *name {
            "Age" => 1,
            "Expression" => 7,
            "Recognition" => 512,
            _ => 2,
        };
        assert_eq!(values.len(), expected, "{name}");
    }
    let by_name = |n: &str| &raw[TASK_NAMES.iter().position(|t| *t == n).unwrap()];

    assert!((p["age"].as_f64().unwrap() - by_name("Age")[0]).abs() < 1e-6);

    let gender_p = softmax(by_name("Gender"));
    let label = p["gender"]["label"].as_str().unwrap();
    let index = GENDER_LABELS
        .iter()
        .position(|l| *l == label)
        .expect("gender label");
    assert!((p["gender"]["probability"].as_f64().unwrap() - gender_p[index]).abs() < 1e-6);
    assert!(gender_p[index] >= 0.5);

    let probs = p["expression"]["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 7);
    let expected = softmax(by_name("Expression"));
    let mut sum = 0.0;
    for (label, want) in EXPRESSION_LABELS.iter().zip(&expected) {
        let got = probs[*label].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "{label}: {got} vs {want}");
        sum += got;
    }
    assert!(
        (sum - 1.0).abs() < 1e-6,
        "expression probabilities sum to {sum}"
    );
    let top = p["expression"]["label"].as_str().unwrap();
    let top_p = probs[top].as_f64().unwrap();
    assert!(probs.values().all(|v| v.as_f64().unwrap() <= top_p));

    let attributes = p["attributes"].as_object().unwrap();
    assert_eq!(attributes.len(), 40);
    for name in TASK_NAMES {
        if ["Age", "Expression", "Recognition"].contains(&name) {
            assert!(!attributes.contains_key(name));
            continue;
        }
        let got = attributes[name].as_f64().unwrap();
        let want = softmax(by_name(name))[1];
        assert!((got - want).abs() < 1e-6, "{name}: {got} vs {want}");
        assert!((0.0..=1.0).contains(&got));
    }

    let embedding = as_f64s(&p["embedding"]);
    let recognition = by_name("Recognition");
    let norm = recognition.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert_eq!(embedding.len(), 512);
    for (e, r) in embedding.iter().zip(recognition) {
        assert!((e - r / norm).abs() < 1e-6);
    }
    raw
}

/// Max over images and outputs of |ours - reference| / max(1, |reference|).
fn max_relative_error(ours: &[Vec<Vec<f64>>], reference: &[Vec<Vec<f32>>]) -> f64 {
    let mut worst: f64 = 0.0;
    for (image_ours, image_ref) in ours.iter().zip(reference) {
        for (name, (a, b)) in TASK_NAMES.iter().zip(image_ours.iter().zip(image_ref)) {
            assert_eq!(a.len(), b.len(), "{name}");
            for (x, y) in a.iter().zip(b) {
                let y = f64::from(*y);
                worst = worst.max((x - y).abs() / y.abs().max(1.0));
            }
        }
    }
    worst
}

#[test]
fn json_matches_the_model_on_opencv_preprocessed_input() {
    let images = [fixture("face.png"), fixture("face.jpg")];
    let ckpt = official_checkpoint().to_str().unwrap();
    let out = run_infer(
        &[
            "--checkpoint",
            ckpt,
            "--format",
            "json",
            "--raw",
            "--embedding",
            "--device",
            "cpu",
        ],
        &[&images[0], &images[1]],
    );
    assert!(out.status.success(), "swinface failed: {}", stderr_of(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let predictions = json.as_array().expect("a JSON array");
    assert_eq!(predictions.len(), 2);
    let ours: Vec<Vec<Vec<f64>>> = predictions
        .iter()
        .zip(&images)
        .map(|(p, image)| check_prediction(p, image))
        .collect();

    let cases: Vec<ReferenceCase> = images
        .iter()
        .map(|image| ReferenceCase {
            image: image.clone(),
            landmarks: None,
        })
        .collect();
    let reference = reference_outputs(&opencv_reference_input(&cases));
    let error = max_relative_error(&ours, &reference);
    eprintln!("resize path: max relative error of raw outputs vs reference = {error:e}");
    assert!(error <= TOLERANCE);
}

#[test]
fn landmarks_align_like_insightface_and_missing_entries_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let face = fixture("face.png");
    let unlisted = fixture("face.jpg");
    let points = [
        60.0, 65.0, 100.0, 65.0, 80.0, 90.0, 62.0, 108.0, 98.0, 108.0,
    ];
    let line: Vec<String> = points.iter().map(|v: &f32| v.to_string()).collect();
    let landmarks = dir.path().join("landmarks.txt");
    std::fs::write(
        &landmarks,
        format!("# five points\n{} {}\n", face.display(), line.join(" ")),
    )
    .unwrap();

    let ckpt = official_checkpoint().to_str().unwrap();
    let out = run_infer(
        &[
            "--checkpoint",
            ckpt,
            "--format",
            "json",
            "--raw",
            "--embedding",
            "--landmarks",
            landmarks.to_str().unwrap(),
        ],
        &[&face, &unlisted],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("face.jpg") && stderr.contains("no landmarks"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let predictions = json.as_array().unwrap();
    assert_eq!(predictions.len(), 1);
    let ours = vec![check_prediction(&predictions[0], &face)];

    let reference = reference_outputs(&opencv_reference_input(&[ReferenceCase {
        image: face.clone(),
        landmarks: Some(points),
    }]));
    let error = max_relative_error(&ours, &reference);
    eprintln!("alignment path: max relative error of raw outputs vs reference = {error:e}");
    assert!(error <= TOLERANCE);
}

#[test]
fn a_broken_image_is_reported_and_the_others_are_still_printed() {
    let good = [fixture("face.png"), fixture("face.jpg")];
    let broken = fixture("truncated.png");
    let missing = fixture("does-not-exist.jpg");
    let ckpt = official_checkpoint().to_str().unwrap();
    let out = run_infer(
        &["--checkpoint", ckpt, "--batch-size", "2"],
        &[&good[0], &broken, &missing, &good[1]],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("truncated.png"), "{stderr}");
    assert!(stderr.contains("does-not-exist.jpg"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for image in &good {
        assert!(stdout.contains(image.to_str().unwrap()), "{stdout}");
    }
    assert!(!stdout.contains("truncated.png"));
    assert_eq!(stdout.matches("Attributes (probability of yes)").count(), 2);
    assert!(stdout.contains("Gender") && stdout.contains("Expression"));
}

#[test]
fn a_missing_or_garbage_checkpoint_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.pt");
    let garbage = dir.path().join("garbage.pt");
    std::fs::write(&garbage, b"PK\x03\x04 this is not a checkpoint at all").unwrap();
    let image = fixture("face.png");
    for ckpt in [&missing, &garbage] {
        let out = run_infer(&["--checkpoint", ckpt.to_str().unwrap()], &[&image]);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        assert!(stderr.contains(ckpt.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains("checkpoint"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_training_config_serves_as_the_model_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = SwinFaceConfig::tiny_demo();
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = SwinFace::new(&vs.root(), &config).unwrap();
    let checkpoint = dir.path().join("tiny.safetensors");
    swinface_model::checkpoint::save_native(&checkpoint, &vs, &Default::default()).unwrap();
    // The model keys among training keys, as in the config.yaml saved beside checkpoints.
    let model_yaml = serde_yaml::to_string(&config).unwrap();
    let train = dir.path().join("train.yaml");
    std::fs::write(
        &train,
        format!("{model_yaml}lr: 0.001\nrecognition_bz: 4\nverbose: 7\n"),
    )
    .unwrap();
    let image = fixture("face.jpg");
    let args = |cfg: &Path| {
        vec![
            "--checkpoint".to_owned(),
            checkpoint.to_str().unwrap().to_owned(),
            "--config".to_owned(),
            cfg.to_str().unwrap().to_owned(),
        ]
    };
    let a = args(&train);
    let out = run_infer(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[&image]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Expression"));
    // A key neither config knows is still an error naming the file.
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, format!("{model_yaml}lerning_rate: 0.001\n")).unwrap();
    let a = args(&typo);
    let out = run_infer(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[&image]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("typo.yaml") && stderr.contains("lerning_rate"),
        "{stderr}"
    );
}
