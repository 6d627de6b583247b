//! Optimizer and Partial FC state: exact save/load/continue, typed load errors, and the
//! Partial FC centre table that keeps optimizer state through sampling.

mod common;

use std::collections::HashMap;

use common::{max_abs_diff, max_rel_diff, seeded};
use swinface_loss::{
    AdamW, AdamWHyper, LossError, Optimizer, OptimizerConfig, OptimizerName, ParamGroup, PartialFc,
    PartialFcConfig, Sgd, SgdHyper, SingleProcess,
};
use tch::{Device, Kind, Tensor};

const SHAPES: [&[i64]; 3] = [&[17, 9], &[33], &[4, 3, 5]];

fn fresh_params() -> Vec<(String, Tensor)> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("layer{i}.weight"),
                seeded(s, 40 + i as u64, Kind::Float).set_requires_grad(true),
            )
        })
        .collect()
}

fn groups(params: &[(String, Tensor)]) -> Vec<ParamGroup> {
    let take = |r: std::ops::Range<usize>| {
        params[r]
            .iter()
            .map(|(n, p)| (n.clone(), p.shallow_clone()))
            .collect()
    };
    vec![
        ParamGroup::new("backbone", take(0..1), 0.1, 0.05),
        ParamGroup::new("heads", take(1..3), 1.0, 0.05),
    ]
}

/// A loss whose gradient depends on the parameters, so the trajectory depends on every
/// piece of optimizer state.
fn backward(params: &[(String, Tensor)], step: usize) {
    for (i, (_, p)) in params.iter().enumerate() {
        let target = seeded(&p.size(), 500 + 10 * step as u64 + i as u64, Kind::Float);
        ((p - target).pow_tensor_scalar(2) * p.sin())
            .sum(Kind::Float)
            .backward();
    }
}

fn train(
    optimizer: &mut dyn Optimizer,
    params: &[(String, Tensor)],
    steps: std::ops::Range<usize>,
) {
    for step in steps {
        optimizer.zero_grad();
        backward(params, step);
        let lrs: Vec<f64> = [1e-3, 1e-2]
            .iter()
            .map(|lr| lr * (1.0 + step as f64 / 5.0))
            .collect();
        optimizer.step(&lrs).unwrap();
    }
}

type Build = fn(Vec<ParamGroup>) -> Box<dyn Optimizer>;

fn adamw(groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    Box::new(AdamW::new(groups, AdamWHyper::default()).unwrap())
}

fn sgd(groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    Box::new(Sgd::new(groups, SgdHyper::default()).unwrap())
}

fn adamw_flat(groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    Box::new(AdamW::with_flat_buffers(groups, AdamWHyper::default()).unwrap())
}

fn sgd_flat(groups: Vec<ParamGroup>) -> Box<dyn Optimizer> {
    Box::new(Sgd::with_flat_buffers(groups, SgdHyper::default()).unwrap())
}

#[test]
fn save_load_continue_is_bit_identical() {
    let builds = [
        ("AdamW", adamw as Build),
        ("SGD", sgd as Build),
        ("AdamW (flat buffers)", adamw_flat as Build),
        ("SGD (flat buffers)", sgd_flat as Build),
    ];
    for (name, build) in builds {
        // The uninterrupted reference always runs per-tensor: flat runs must match it too.
        let uninterrupted = fresh_params();
        let reference_build = if name.starts_with("AdamW") {
            adamw as Build
        } else {
            sgd as Build
        };
        let mut opt = reference_build(groups(&uninterrupted));
        train(opt.as_mut(), &uninterrupted, 0..10);

        // First half, then a checkpoint file with parameters and optimizer state.
        let first = fresh_params();
        let mut opt = build(groups(&first));
        train(opt.as_mut(), &first, 0..5);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoint.safetensors");
        let mut saved: Vec<(String, Tensor)> = first
            .iter()
            .map(|(n, p)| (format!("param.{n}"), p.detach().copy()))
            .collect();
        saved.extend(
            opt.state_tensors()
                .into_iter()
                .map(|(n, t)| (format!("optim.{n}"), t)),
        );
        Tensor::write_safetensors(&saved, &file).unwrap();
        drop((opt, first));

        // A new process: fresh parameters and optimizer, then the checkpoint.
        let loaded: HashMap<String, Tensor> = Tensor::read_safetensors(&file)
            .unwrap()
            .into_iter()
            .collect();
        let resumed = fresh_params();
        for (n, p) in &resumed {
            tch::no_grad(|| p.shallow_clone().copy_(&loaded[&format!("param.{n}")]));
        }
        let mut opt = build(groups(&resumed));
        let state: Vec<(String, Tensor)> = loaded
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix("optim.")
                    .map(|k| (k.to_string(), t.shallow_clone()))
            })
            .collect();
        opt.load_state(&state).unwrap();
        train(opt.as_mut(), &resumed, 5..10);

        let worst = resumed
            .iter()
            .zip(&uninterrupted)
            .map(|((_, a), (_, b))| max_abs_diff(a, b))
            .fold(0.0, f64::max);
        println!("{name}: resumed vs uninterrupted after 10 steps: max abs diff {worst:e}");
        assert_eq!(worst, 0.0, "{name}: resume is not bit-identical");
    }
}

#[test]
fn load_state_rejects_mismatches_and_changes_nothing() {
    let params = fresh_params();
    let mut opt = AdamW::new(groups(&params), AdamWHyper::default()).unwrap();
    train(&mut opt, &params, 0..2);
    let good = opt
        .state_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect::<Vec<_>>();
    let before: Vec<Tensor> = opt
        .state_tensors()
        .into_iter()
        .map(|(_, t)| t.copy())
        .collect();

    let mut missing = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    missing.retain(|(n, _)| n != "heads.layer1.weight.exp_avg");
    assert!(
        matches!(opt.load_state(&missing), Err(LossError::StateMissing { name }) if name == "heads.layer1.weight.exp_avg")
    );

    let mut extra = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    extra.push((
        "heads.stray.exp_avg".into(),
        Tensor::zeros([1], tch::kind::FLOAT_CPU),
    ));
    assert!(matches!(
        opt.load_state(&extra),
        Err(LossError::StateUnexpected { .. })
    ));

    let mut reshaped = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    reshaped[0].1 = Tensor::zeros([2, 2], tch::kind::FLOAT_CPU);
    assert!(matches!(
        opt.load_state(&reshaped),
        Err(LossError::StateShape { .. })
    ));

    let mut retyped = good
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect::<Vec<_>>();
    retyped[0].1 = retyped[0].1.to_kind(Kind::Double);
    assert!(matches!(
        opt.load_state(&retyped),
        Err(LossError::StateKind { .. })
    ));

    let after: Vec<Tensor> = opt.state_tensors().into_iter().map(|(_, t)| t).collect();
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(max_abs_diff(a, b), 0.0, "a failed load changed the state");
    }
    // An SGD state cannot be loaded into AdamW.
    let mut sgd = Sgd::new(groups(&params), SgdHyper::default()).unwrap();
    train(&mut sgd, &params, 0..1);
    assert!(opt.load_state(&sgd.state_tensors()).is_err());
}

const DIM: i64 = 6;

fn pfc_config(classes: i64, sample_rate: f64) -> PartialFcConfig {
    PartialFcConfig {
        embedding_size: DIM,
        num_classes: classes,
        sample_rate,
        margin_list: (1.0, 0.0, 0.4),
        interclass_filtering_threshold: 0.0,
    }
}

fn new_pfc(config: &PartialFcConfig, optimizer: OptimizerName) -> PartialFc {
    let cfg = OptimizerConfig {
        optimizer,
        ..OptimizerConfig::default()
    };
    let mut pfc = PartialFc::new(
        config,
        cfg.update_rule(),
        cfg.weight_decay,
        Box::new(SingleProcess),
        Device::Cpu,
        Kind::Float,
    )
    .unwrap();
    pfc.load_weight(&seeded(&[config.num_classes, DIM], 9, Kind::Float))
        .unwrap();
    pfc
}

fn batch(step: usize, labels: &[i64]) -> (Tensor, Tensor) {
    let embeddings =
        seeded(&[labels.len() as i64, DIM], 300 + step as u64, Kind::Float).set_requires_grad(true);
    (embeddings, Tensor::from_slice(labels))
}

fn table(pfc: &PartialFc, name: &str) -> Tensor {
    pfc.state_tensors()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
        .copy()
}

#[test]
fn dense_partial_fc_equals_dense_adamw() {
    let config = pfc_config(5, 1.0);
    let mut pfc = new_pfc(&config, OptimizerName::Adamw);
    let reference = pfc.weight().detach().copy().set_requires_grad(true);
    let mut opt = AdamW::new(
        vec![ParamGroup::new(
            "pfc",
            vec![("w".into(), reference.shallow_clone())],
            1.0,
            0.05,
        )],
        AdamWHyper::default(),
    )
    .unwrap();
    for step in 0..6 {
        let (embeddings, labels) = batch(step, &[0, 3, 4, 3]);
        pfc.forward(&embeddings, &labels).unwrap().backward();
        let grad = pfc.grad().unwrap().unwrap().copy();
        opt.zero_grad();
        (&reference * &grad).sum(Kind::Float).backward();
        let lr = 1e-2 * (step + 1) as f64;
        pfc.step(lr).unwrap();
        opt.step(&[lr]).unwrap();
    }
    let diff = max_abs_diff(pfc.weight(), &reference);
    println!("dense Partial FC vs AdamW on the full matrix after 6 steps: max abs diff {diff:e}");
    assert_eq!(diff, 0.0);
}

#[test]
fn sampled_centres_keep_their_adamw_state() {
    // 8 classes, 4 sampled per step; batches cover different classes so centres drop out of
    // the sample and come back.
    let config = pfc_config(8, 0.5);
    let mut pfc = new_pfc(&config, OptimizerName::Adamw);
    let start = pfc.weight().copy();
    // Reference: one AdamW per centre, stepped only when that centre is sampled, which is
    // exactly the per-centre state the table must carry.
    let rows: Vec<Tensor> = (0..8)
        .map(|r| start.get(r).unsqueeze(0).set_requires_grad(true))
        .collect();
    let mut row_opts: Vec<AdamW> = rows
        .iter()
        .map(|r| {
            AdamW::new(
                vec![ParamGroup::new(
                    "row",
                    vec![("w".into(), r.shallow_clone())],
                    1.0,
                    0.05,
                )],
                AdamWHyper::default(),
            )
            .unwrap()
        })
        .collect();
    let batches: [&[i64]; 6] = [
        &[0, 1, 0, 1],
        &[2, 3, 2, 2],
        &[0, 2, 0, 2],
        &[5, 6, 7, 5],
        &[0, 1, 1, 0],
        &[3, 4, 4, 3],
    ];
    let mut sampled_history: Vec<Vec<i64>> = Vec::new();
    for (step, labels) in batches.iter().enumerate() {
        let exp_avg_before = table(&pfc, "partial_fc.exp_avg");
        let steps_before: Vec<i64> = Vec::try_from(table(&pfc, "partial_fc.step")).unwrap();
        let (embeddings, labels) = batch(step, labels);
        pfc.forward(&embeddings, &labels).unwrap().backward();
        let (index, active) = pfc.active_centres().unwrap();
        let index: Vec<i64> = Vec::try_from(index.unwrap()).unwrap();
        let grad = active.grad().copy();
        let lr = 1e-2;
        for (k, &r) in index.iter().enumerate() {
            let opt = &mut row_opts[r as usize];
            opt.zero_grad();
            (&rows[r as usize] * grad.get(k as i64).unsqueeze(0))
                .sum(Kind::Float)
                .backward();
            opt.step(&[lr]).unwrap();
        }
        pfc.step(lr).unwrap();

        let exp_avg_after = table(&pfc, "partial_fc.exp_avg");
        let steps_after: Vec<i64> = Vec::try_from(table(&pfc, "partial_fc.step")).unwrap();
        for r in 0..8i64 {
            let was_sampled = index.contains(&r);
            let changed = max_abs_diff(&exp_avg_before.get(r), &exp_avg_after.get(r)) > 0.0;
            assert_eq!(
                changed, was_sampled,
                "step {step}: centre {r} moments changed = {changed}"
            );
            assert_eq!(
                steps_after[r as usize],
                steps_before[r as usize] + i64::from(was_sampled)
            );
        }
        sampled_history.push(index);
    }
    // Some centre must have left the sample and come back for the test to mean anything.
    let returned = (0..8i64).any(|r| {
        let seen: Vec<bool> = sampled_history.iter().map(|s| s.contains(&r)).collect();
        seen.windows(3).any(|w| w[0] && !w[1]) && seen.iter().filter(|&&s| s).count() >= 2
    });
    assert!(
        returned,
        "no centre was sampled, dropped and sampled again: {sampled_history:?}"
    );

    let reference = Tensor::cat(&rows, 0);
    let diff = max_rel_diff(pfc.weight(), &reference, 1e-3);
    let steps: Vec<i64> = Vec::try_from(table(&pfc, "partial_fc.step")).unwrap();
    println!("sampled Partial FC vs per-centre AdamW after 6 steps: max rel diff {diff:e}; per-centre steps {steps:?}");
    assert!(diff < 1e-6, "{diff}");
}

#[test]
fn partial_fc_state_resumes_exactly() {
    for optimizer in [OptimizerName::Adamw, OptimizerName::Sgd] {
        let config = pfc_config(8, 0.5);
        let labels: [&[i64]; 6] = [
            &[0, 1, 0, 1],
            &[2, 3, 2, 2],
            &[0, 2, 0, 2],
            &[5, 6, 7, 5],
            &[0, 1, 1, 0],
            &[3, 4, 4, 3],
        ];
        let run = |pfc: &mut PartialFc, steps: std::ops::Range<usize>| {
            for step in steps {
                let (embeddings, labels) = batch(step, labels[step]);
                pfc.forward(&embeddings, &labels).unwrap().backward();
                pfc.step(1e-2).unwrap();
            }
        };
        let mut uninterrupted = new_pfc(&config, optimizer);
        run(&mut uninterrupted, 0..6);

        let mut first = new_pfc(&config, optimizer);
        run(&mut first, 0..3);
        let saved: Vec<(String, Tensor)> = first
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.copy()))
            .collect();
        let mut resumed = PartialFc::new(
            &config,
            OptimizerConfig {
                optimizer,
                ..OptimizerConfig::default()
            }
            .update_rule(),
            0.05,
            Box::new(SingleProcess),
            Device::Cpu,
            Kind::Float,
        )
        .unwrap();
        resumed.load_state(&saved).unwrap();
        run(&mut resumed, 3..6);
        let diff = max_abs_diff(resumed.weight(), uninterrupted.weight());
        println!("{optimizer:?} Partial FC resumed vs uninterrupted: max abs diff {diff:e}");
        assert_eq!(diff, 0.0);
    }
}

#[test]
fn flat_buffers_hold_parameters_and_gradients_contiguously() {
    let params = fresh_params();
    let mut opt = AdamW::with_flat_buffers(groups(&params), AdamWHyper::default()).unwrap();
    train(&mut opt, &params, 0..2);
    // Group "heads" holds layer1 and layer2: adjacent in one buffer, gradients too.
    let (a, b) = (&params[1].1, &params[2].1);
    let bytes = a.numel() * 4;
    assert_eq!(
        b.data_ptr() as usize,
        a.data_ptr() as usize + bytes,
        "parameters are not adjacent"
    );
    assert_eq!(
        b.grad().data_ptr() as usize,
        a.grad().data_ptr() as usize + bytes,
        "gradients are not adjacent"
    );
    // Storage replaced behind the optimizer's back is moved back in at the next step.
    let mut stray = params[2].1.shallow_clone();
    stray.set_data(&params[2].1.detach().copy());
    train(&mut opt, &params, 2..3);
    assert_eq!(
        params[2].1.data_ptr() as usize,
        a.data_ptr() as usize + bytes
    );
}
