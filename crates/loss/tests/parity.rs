//! Parity with the official implementation's recorded outputs
//! (tests/fixtures/parity/misc.safetensors, see the README beside it).

use std::collections::HashMap;
use std::path::PathBuf;

use swinface_loss::{AgeLoss, CombinedMarginLoss, LrName, LrSchedule, ScheduleConfig};
use tch::{Kind, Reduction, Tensor};

fn fixtures() -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/parity/misc.safetensors");
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn margin_losses_match_the_official_outputs() {
    let f = fixtures();
    let logits = &f["margin.logits"];
    let labels = &f["margin.labels"];
    for (name, margins) in [("arcface", (1.0, 0.5, 0.0)), ("cosface", (1.0, 0.0, 0.4))] {
        let loss = CombinedMarginLoss::new(64.0, margins.0, margins.1, margins.2, 0.0).unwrap();
        let out = loss.forward(logits, labels).unwrap();
        let err = max_abs_diff(&out, &f[&format!("margin.{name}.out")]);
        let ce = out.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -1, 0.0);
        let ce_err = max_abs_diff(&ce.view([1]), &f[&format!("margin.{name}.ce")]);
        println!("{name}: max |out - official| = {err:e}, |ce - official| = {ce_err:e}");
        assert!(err < 1e-5, "{name} logits differ by {err}");
        assert!(ce_err < 1e-5, "{name} cross-entropy differs by {ce_err}");
    }
}

#[test]
fn age_loss_matches_the_official_outputs() {
    let f = fixtures();
    let loss = AgeLoss::new(1000);
    let want: Vec<f32> = Vec::try_from(&f["age.loss_at_0_250_500_999"]).unwrap();
    for (step, want) in [0u64, 250, 500, 999].into_iter().zip(want) {
        let got = loss
            .forward(&f["age.pred"], &f["age.label"], step)
            .unwrap()
            .double_value(&[]);
        let rel = (got - want as f64).abs() / (want as f64).abs();
        println!("age loss at {step}: {got} vs official {want} (relative {rel:e})");
        assert!(rel < 1e-6, "step {step}: {got} vs {want}");
    }
}

#[test]
fn cosine_schedule_matches_timm() {
    let f = fixtures();
    let want: Vec<f64> = Vec::try_from(f["lr.cosine.total1000.warmup100"].view([-1])).unwrap();
    let config = ScheduleConfig {
        lr_name: LrName::Cosine,
        warmup_step: 100,
        total_step: 1000,
        warmup_lr: 5e-7,
        min_lr: 5e-6,
        ..ScheduleConfig::default()
    };
    let schedule = LrSchedule::new(config, 5e-4).unwrap();
    let mut worst: f64 = 0.0;
    for t in 0..1000u64 {
        // Group 0: the backbone at lr / 10; group 1: the rest at lr.
        for (group, scale) in [(0usize, 0.1), (1, 1.0)] {
            let got = schedule.value_at(t, scale);
            let official = want[t as usize * 2 + group];
            worst = worst.max((got - official).abs() / official);
        }
    }
    println!("cosine schedule: max relative error {worst:e} over 1000 steps x 2 groups");
    assert!(worst < 1e-12, "{worst}");
}
