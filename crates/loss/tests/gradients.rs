//! Finite-difference gradient checks (float64) for the margin loss and Partial FC, and
//! Partial FC against a direct single-process formula.

mod common;

use common::{max_abs_diff, seeded};
use swinface_loss::{
    CombinedMarginLoss, OptimizerConfig, PartialFc, PartialFcConfig, SingleProcess,
};
use tch::{Device, Kind, Reduction, Tensor};

const H: f64 = 1e-6;

/// Central differences of `f` at every element of `x` (float64).
fn numeric_grad(x: &Tensor, mut f: impl FnMut(&Tensor) -> f64) -> Tensor {
    let flat: Vec<f64> = Vec::try_from(x.view([-1])).unwrap();
    let mut grad = vec![0.0; flat.len()];
    for i in 0..flat.len() {
        let mut plus = flat.clone();
        plus[i] += H;
        let mut minus = flat.clone();
        minus[i] -= H;
        let at = |v: Vec<f64>| Tensor::from_slice(&v).view(x.size().as_slice());
        grad[i] = (f(&at(plus)) - f(&at(minus))) / (2.0 * H);
    }
    Tensor::from_slice(&grad).view(x.size().as_slice())
}

/// Cosines away from ±1 and from the ArcFace switch point cos(π − m).
fn cosines() -> Tensor {
    seeded(&[6, 9], 5, Kind::Double) * 0.8
}

#[test]
fn margin_gradients_match_finite_differences() {
    let labels = Tensor::from_slice(&[3i64, -1, 0, 8, 4, -1]);
    let weights = seeded(&[6, 9], 77, Kind::Double);
    for (name, m, threshold) in [
        ("arcface", (1.0, 0.5, 0.0), 0.0),
        ("cosface", (1.0, 0.0, 0.4), 0.0),
        ("cosface+filter", (1.0, 0.0, 0.4), 0.5),
    ] {
        let loss = CombinedMarginLoss::new(4.0, m.0, m.1, m.2, threshold).unwrap();
        // A generic scalar of the output exercises the whole Jacobian.
        let objective =
            |c: &Tensor| (loss.forward(c, &labels).unwrap() * &weights).sum(Kind::Double);
        let x = cosines().set_requires_grad(true);
        objective(&x).backward();
        let numeric = numeric_grad(&cosines(), |c| objective(c).double_value(&[]));
        let err = max_abs_diff(&x.grad(), &numeric);
        println!("{name}: max |autograd - finite difference| = {err:e}");
        assert!(err < 1e-6, "{name}: {err}");
    }
}

struct Setup {
    embeddings: Tensor,
    labels: Tensor,
    weight: Tensor,
}

/// Embeddings pulled towards their class centres: target probabilities between about 1e-6
/// and 1 (no underflow below 1e-30, gradients far from zero).
fn setup(batch: i64, dim: i64, classes: i64, labels: &[i64]) -> Setup {
    let weight = seeded(&[classes, dim], 3, Kind::Double);
    let labels = Tensor::from_slice(labels);
    let embeddings = weight.index_select(0, &labels) + seeded(&[batch, dim], 4, Kind::Double) * 0.5;
    Setup {
        embeddings,
        labels,
        weight,
    }
}

fn partial_fc(config: &PartialFcConfig, weight: &Tensor) -> PartialFc {
    let rule = OptimizerConfig::default().update_rule();
    let mut pfc = PartialFc::new(
        config,
        rule,
        0.0,
        Box::new(SingleProcess),
        Device::Cpu,
        Kind::Double,
    )
    .unwrap();
    pfc.load_weight(weight).unwrap();
    pfc
}

/// The unsharded loss written directly: mean cross-entropy of the margin logits of
/// normalised embeddings against normalised centres.
fn direct_loss(
    config: &PartialFcConfig,
    embeddings: &Tensor,
    weight: &Tensor,
    labels: &Tensor,
) -> Tensor {
    let normalize = |x: &Tensor| x / x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true);
    let cosines = normalize(embeddings)
        .matmul(&normalize(weight).tr())
        .clamp(-1.0, 1.0);
    let (m1, m2, m3) = config.margin_list;
    let logits = CombinedMarginLoss::new(64.0, m1, m2, m3, 0.0)
        .unwrap()
        .forward(&cosines, labels)
        .unwrap();
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0)
}

#[test]
fn partial_fc_matches_direct_formula_and_finite_differences() {
    let (batch, dim, classes) = (6, 5, 7);
    let s = setup(batch, dim, classes, &[0, 2, 5, 2, 0, 6]);
    for (name, margin_list) in [("arcface", (1.0, 0.5, 0.0)), ("cosface", (1.0, 0.0, 0.4))] {
        let config = PartialFcConfig {
            embedding_size: dim,
            num_classes: classes,
            sample_rate: 1.0,
            margin_list,
            interclass_filtering_threshold: 0.0,
        };
        let mut pfc = partial_fc(&config, &s.weight);
        let embeddings = s.embeddings.copy().set_requires_grad(true);
        let loss = pfc.forward(&embeddings, &s.labels).unwrap();
        loss.backward();
        let weight_grad = pfc.weight().grad();

        // Independent formula with plain autograd.
        let e = s.embeddings.copy().set_requires_grad(true);
        let w = s.weight.copy().set_requires_grad(true);
        let direct = direct_loss(&config, &e, &w, &s.labels);
        direct.backward();
        let loss_err = (loss.double_value(&[]) - direct.double_value(&[])).abs();
        let emb_err = max_abs_diff(&embeddings.grad(), &e.grad());
        let w_err = max_abs_diff(&weight_grad, &w.grad());
        let scale = embeddings
            .grad()
            .abs()
            .max()
            .double_value(&[])
            .min(weight_grad.abs().max().double_value(&[]));
        println!(
            "{name}: loss {:.4}, gradients up to {scale:.3e}; vs direct formula: loss {loss_err:e}, \
             d/dembeddings {emb_err:e}, d/dcentres {w_err:e}",
            loss.double_value(&[])
        );
        assert!(
            scale > 1e-2,
            "gradients too small for a meaningful check: {scale}"
        );
        assert!(loss_err < 1e-12 && emb_err < 1e-12 && w_err < 1e-12);

        // Finite differences through the Partial FC forward itself.
        let numeric_emb = numeric_grad(&s.embeddings, |x| {
            pfc.forward(x, &s.labels).unwrap().double_value(&[])
        });
        let mut probe = partial_fc(&config, &s.weight);
        let numeric_w = numeric_grad(&s.weight, |w| {
            probe.load_weight(w).unwrap();
            probe
                .forward(&s.embeddings, &s.labels)
                .unwrap()
                .double_value(&[])
        });
        let fd_emb = max_abs_diff(&embeddings.grad(), &numeric_emb);
        let fd_w = max_abs_diff(&weight_grad, &numeric_w);
        println!("{name}: vs finite differences: d/dembeddings {fd_emb:e}, d/dcentres {fd_w:e}");
        assert!(fd_emb < 1e-6 && fd_w < 1e-6, "{fd_emb} {fd_w}");
    }
}

#[test]
fn sampled_partial_fc_gradients_match_finite_differences() {
    let (batch, dim, classes) = (6, 5, 8);
    // Three positive classes; sample_rate 0.5 keeps them and one random negative.
    let s = setup(batch, dim, classes, &[1, 4, 6, 4, 1, 6]);
    let config = PartialFcConfig {
        embedding_size: dim,
        num_classes: classes,
        sample_rate: 0.5,
        margin_list: (1.0, 0.0, 0.4),
        interclass_filtering_threshold: 0.0,
    };
    let mut pfc = partial_fc(&config, &s.weight);
    let embeddings = s.embeddings.copy().set_requires_grad(true);
    pfc.forward(&embeddings, &s.labels).unwrap().backward();
    let (index, active) = pfc.active_centres().unwrap();
    let index = index.unwrap().copy();
    assert_eq!(index.size(), [4]);
    for positive in [1i64, 4, 6] {
        assert!(
            Vec::<i64>::try_from(&index).unwrap().contains(&positive),
            "positives are always sampled"
        );
    }
    let full_grad = Tensor::zeros([classes, dim], (Kind::Double, Device::Cpu)).index_copy(
        0,
        &index,
        &active.grad(),
    );

    // A fresh module (same sampling seed) per evaluation draws the same sample.
    let loss_at = |e: &Tensor, w: &Tensor| {
        partial_fc(&config, w)
            .forward(e, &s.labels)
            .unwrap()
            .double_value(&[])
    };
    let numeric_emb = numeric_grad(&s.embeddings, |e| loss_at(e, &s.weight));
    let numeric_w = numeric_grad(&s.weight, |w| loss_at(&s.embeddings, w));
    let fd_emb = max_abs_diff(&embeddings.grad(), &numeric_emb);
    let fd_w = max_abs_diff(&full_grad, &numeric_w);
    let scale = embeddings
        .grad()
        .abs()
        .max()
        .double_value(&[])
        .min(full_grad.abs().max().double_value(&[]));
    assert!(
        scale > 1e-2,
        "gradients too small for a meaningful check: {scale}"
    );
    println!("sampled (gradients up to {scale:.3e}): vs finite differences: d/dembeddings {fd_emb:e}, d/dcentres {fd_w:e}");
    assert!(fd_emb < 1e-6 && fd_w < 1e-6, "{fd_emb} {fd_w}");
}
