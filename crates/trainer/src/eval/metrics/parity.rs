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
