//! The metrics against the official code's own results on the parity fixture
//! (`tests/fixtures/parity/misc.safetensors`, see the README beside it): the verification
//! protocol (`ver.*`) and the CLAP2015 metrics (`lap.*`).

use std::collections::HashMap;
use std::path::Path;

use tch::{Kind, Tensor};

use super::age::clap;
use super::numpy::arange;
use super::verification::{
    calculate_roc, evaluate, pair_squared_distances, FOLDS, ROC_THRESHOLD_STEP, THRESHOLD_STOP,
};

fn fixture() -> HashMap<String, Tensor> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parity/misc.safetensors");
    Tensor::read_safetensors(&path)
        .expect("read the parity fixture")
        .into_iter()
        .collect()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn verification_protocol_matches_the_official_results() {
    let f = fixture();
    let embeddings = f64s(&f["ver.embeddings"]);
    let issame: Vec<bool> = f64s(&f["ver.issame"]).iter().map(|&v| v != 0.0).collect();
    assert_eq!((embeddings.len(), issame.len()), (1200 * 64, 600));
    let dist = pair_squared_distances(&embeddings, 64).unwrap();
    let roc = calculate_roc(
        &arange(THRESHOLD_STOP, ROC_THRESHOLD_STEP),
        &dist,
        &issame,
        FOLDS,
    )
    .unwrap();
    let expected_acc = f64s(&f["ver.fold_accuracy"]);
    let expected_tpr = f64s(&f["ver.tpr"]);
    let expected_fpr = f64s(&f["ver.fpr"]);
    assert_eq!(roc.tpr.len(), 400);
    let errors = [
        max_abs_diff(&roc.fold_accuracy, &expected_acc),
        max_abs_diff(&roc.tpr, &expected_tpr),
        max_abs_diff(&roc.fpr, &expected_fpr),
    ];
    eprintln!("ver max abs errors (fold_accuracy, tpr, fpr): {errors:?}");
    assert!(errors.iter().all(|&e| e <= 1e-12), "{errors:?}");
    // The ROC is not trivial: it rises through the grid.
    assert!(expected_tpr.iter().any(|&v| v > 0.0 && v < 1.0));
    // The full protocol reports the same folds; mean and std as numpy's.
    let m = evaluate(&embeddings, 64, &issame, FOLDS, 1.0).unwrap();
    assert_eq!(m.roc.fold_accuracy, roc.fold_accuracy);
    let mean = expected_acc.iter().sum::<f64>() / 10.0;
    assert!((m.accuracy - mean).abs() < 1e-15);
    assert!(m.val.is_ok());
}

#[test]
fn clap_metrics_match_the_official_results() {
    let f = fixture();
    let pred = f64s(&f["lap.pred"]);
    let mean = f64s(&f["lap.mean"]);
    let std = f64s(&f["lap.std"]);
    let expected = f64s(&f["lap.mae_eps"]);
    let m = clap(&pred, &mean, &std).unwrap();
    let ours = [m.mae, m.epsilon_error.unwrap()];
    // The fixture holds float32 results: ours, rounded to float32 as the fixture was, must be
    // the same numbers.
    let rounded: Vec<f64> = ours.iter().map(|&v| f64::from(v as f32)).collect();
    let error = max_abs_diff(&rounded, &expected);
    eprintln!("lap max abs error (float32-rounded): {error:e}; unrounded {ours:?}");
    assert!(error <= 1e-12, "{rounded:?} vs {expected:?}");
    // And in float64 they equal numpy's float64 computation on the same inputs
    // (np.sum(np.abs(p - m)) / 50 and 1 - np.sum(np.exp(-(p - m)**2 / (2 * s**2))) / 50,
    // inputs promoted from float32), printed with repr.
    let numpy_f64 = [4.468856353759765, 0.5108310739308731];
    let error = max_abs_diff(&ours, &numpy_f64);
    assert!(error <= 1e-12, "{ours:?} vs {numpy_f64:?}");
}

/// `tests/fixtures/eval/sklearn_scipy_reference.json`, written by `make_reference.py` beside
/// it with the real scipy and scikit-learn.
fn reference() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/eval/sklearn_scipy_reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("read the reference")).expect("json")
}

fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| match x.as_str() {
            Some("inf") => f64::INFINITY,
            _ => x.as_f64().expect("number"),
        })
        .collect()
}

fn check_val(val: &super::verification::ValAtFar, expected: &serde_json::Value) -> f64 {
    let ours = [val.val, val.val_std, val.far];
    let theirs = [
        expected["val"].as_f64().unwrap(),
        expected["val_std"].as_f64().unwrap(),
        expected["far"].as_f64().unwrap(),
    ];
    max_abs_diff(&ours, &theirs).max(max_abs_diff(
        &val.fold_thresholds,
        &json_f64s(&expected["fold_thresholds"]),
    ))
}

#[test]
fn val_at_far_matches_scipy_interpolation() {
    use super::verification::{calculate_val, VAL_FAR_TARGET, VAL_THRESHOLD_STEP};
    let reference = reference();
    let thresholds = arange(THRESHOLD_STOP, VAL_THRESHOLD_STEP);

    let f = fixture();
    let embeddings = f64s(&f["ver.embeddings"]);
    let issame: Vec<bool> = f64s(&f["ver.issame"]).iter().map(|&v| v != 0.0).collect();
    let dist = pair_squared_distances(&embeddings, 64).unwrap();
    let val = calculate_val(&thresholds, &dist, &issame, VAL_FAR_TARGET, FOLDS).unwrap();
    let e1 = check_val(&val, &reference["val_fixture"]);

    let random = &reference["val_random"];
    let dist = json_f64s(&random["dist"]);
    let issame: Vec<bool> = json_f64s(&random["issame"])
        .iter()
        .map(|&v| v != 0.0)
        .collect();
    let val = calculate_val(&thresholds, &dist, &issame, VAL_FAR_TARGET, FOLDS).unwrap();
    let e2 = check_val(&val, random);
    eprintln!("VAL max abs errors vs scipy: fixture {e1:e}, random set {e2:e}");
    assert!(e1 <= 1e-12 && e2 <= 1e-12, "{e1} {e2}");
}

#[test]
fn roc_curve_auc_and_tar_match_sklearn() {
    use super::roc::{auc, roc_curve, tar_at_far};
    let reference = reference();
    let r = &reference["roc"];
    let labels: Vec<bool> = json_f64s(&r["labels"]).iter().map(|&v| v != 0.0).collect();
    let scores = json_f64s(&r["scores"]);
    let curve = roc_curve(&labels, &scores).unwrap();
    // The scores are rounded to 0.01: many ties, and collinear runs to drop.
    assert_eq!(curve.fpr.len(), json_f64s(&r["fpr"]).len());
    let errors = [
        max_abs_diff(&curve.fpr, &json_f64s(&r["fpr"])),
        max_abs_diff(&curve.tpr, &json_f64s(&r["tpr"])),
        max_abs_diff(&curve.thresholds[1..], &json_f64s(&r["thresholds"])[1..]),
        (auc(&curve.fpr, &curve.tpr).unwrap() - r["auc"].as_f64().unwrap()).abs(),
        max_abs_diff(
            &tar_at_far(&curve, &json_f64s(&r["fars"])),
            &json_f64s(&r["tar"]),
        ),
    ];
    eprintln!("roc max abs errors vs sklearn (fpr, tpr, thresholds, auc, tar): {errors:?}");
    assert!(errors.iter().all(|&e| e <= 1e-12), "{errors:?}");
    assert_eq!(curve.thresholds[0], f64::INFINITY);
}

/// A small deterministic generator for test data (splitmix64 -> [0, 1)).
fn uniform(seed: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn ijb_templates_scores_and_tar_match_a_numpy_run_of_eval_ijbc() {
    use super::roc::{auc, roc_curve, tar_at_far, IJB_FARS};
    use super::template::{image_features, template_features};
    use std::io::Write;
    use std::process::{Command, Stdio};

    // 60 images of 12 templates (ids 3, 6, ..., 36), several media each, 8-dim features.
    let (n, dim) = (60usize, 8usize);
    let u = uniform(11, 2 * n * dim + 3 * n);
    let plain: Vec<f32> = u[..n * dim]
        .iter()
        .map(|v| (2.0 * v - 1.0) as f32)
        .collect();
    let flipped: Vec<f32> = u[n * dim..2 * n * dim]
        .iter()
        .map(|v| (2.0 * v - 1.0) as f32)
        .collect();
    let rest = &u[2 * n * dim..];
    // Detector scores as the meta file's text, parsed as the official code does.
    let score_text: Vec<String> = rest[..n]
        .iter()
        .map(|v| format!("{:.6}", 0.3 + 0.7 * v))
        .collect();
    let scores: Vec<f32> = score_text
        .iter()
        .map(|t| t.parse::<f64>().unwrap() as f32)
        .collect();
    let templates: Vec<i64> = rest[n..2 * n]
        .iter()
        .map(|v| 3 * (1 + (v * 12.0) as i64))
        .collect();
    let medias: Vec<i64> = rest[2 * n..]
        .iter()
        .map(|v| 1000 + (v * 20.0) as i64)
        .collect();
    let ids: Vec<i64> = {
        let mut t = templates.clone();
        t.sort();
        t.dedup();
        t
    };
    let pu = uniform(12, 3 * 200);
    let mut pairs = Vec::new();
    let mut labels = Vec::new();
    for k in 0..200 {
        let a = ids[(pu[3 * k] * ids.len() as f64) as usize];
        let b = ids[(pu[3 * k + 1] * ids.len() as f64) as usize];
        pairs.push((a, b));
        labels.push(a == b || pu[3 * k + 2] < 0.2);
    }

    let features = image_features(&plain, &flipped, &scores, dim).unwrap();
    let t = template_features(&features, dim, &templates, &medias).unwrap();
    let ours = t.pair_scores(&pairs).unwrap();
    let curve = roc_curve(&labels, &ours).unwrap();
    let tars = tar_at_far(&curve, &IJB_FARS);
    let our_auc = auc(&curve.fpr, &curve.tpr).unwrap();

    let rows = |v: &[f32]| -> Vec<Vec<f32>> { v.chunks(dim).map(<[f32]>::to_vec).collect() };
    let input = serde_json::json!({
        "plain": rows(&plain),
        "flipped": rows(&flipped),
        "scores": score_text,
        "templates": templates,
        "medias": medias,
        "p1": pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        "p2": pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        "label": labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(),
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/eval_ijbc_reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = [
        max_abs_diff(&ours, &json_f64s(&reference["scores"])),
        max_abs_diff(&curve.fpr, &json_f64s(&reference["fpr"])),
        max_abs_diff(&curve.tpr, &json_f64s(&reference["tpr"])),
        max_abs_diff(&tars, &json_f64s(&reference["tar"])),
        (our_auc - reference["auc"].as_f64().unwrap()).abs(),
    ];
    eprintln!("IJB max abs errors vs numpy (scores, fpr, tpr, tar, auc): {errors:?}");
    // Scores: the L2 norm's sum order (einsum vs pairwise) may differ in the last bit.
    assert!(errors[0] <= 1e-14, "{errors:?}");
    assert!(errors[1..].iter().all(|&e| e <= 1e-12), "{errors:?}");
    // The set is not degenerate: both labels, and TAR varies with FAR.
    assert!(labels.iter().any(|&l| l) && labels.iter().any(|&l| !l));
}
