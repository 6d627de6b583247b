//! Partial FC sharded over 2 and 4 simulated ranks (sample_rate 1) against the unsharded run.

mod common;

use std::time::Duration;

use common::{max_abs_diff, seeded};
use swinface_loss::{
    shard_of, Collectives, OptimizerConfig, PartialFc, PartialFcConfig, SimulatedCollectives,
    SingleProcess,
};
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 3;
const DIM: i64 = 8;
/// 10 classes: uneven shards over 4 ranks (3, 3, 2, 2), as the official split gives.
const CLASSES: i64 = 10;
const LR: f64 = 1e-2;

fn config(margin_list: (f64, f64, f64)) -> PartialFcConfig {
    PartialFcConfig {
        embedding_size: DIM,
        num_classes: CLASSES,
        sample_rate: 1.0,
        margin_list,
        interclass_filtering_threshold: 0.0,
    }
}

/// What one rank (or the unsharded run) produces: loss, embedding gradient, centre gradient,
/// and centres after one AdamW step.
struct RankResult {
    loss: f64,
    embedding_grad: Tensor,
    centre_grad: Tensor,
    centres_after_step: Tensor,
}

fn run_rank(
    kind: Kind,
    collectives: Box<dyn Collectives>,
    config: &PartialFcConfig,
    weight: &Tensor,
    embeddings: &Tensor,
    labels: &Tensor,
) -> RankResult {
    let rule = OptimizerConfig::default().update_rule();
    let mut pfc = PartialFc::new(config, rule, 0.05, collectives, Device::Cpu, kind).unwrap();
    pfc.load_weight(weight).unwrap();
    let embeddings = embeddings.copy().set_requires_grad(true);
    let loss = pfc.forward(&embeddings, labels).unwrap();
    loss.backward();
    let centre_grad = pfc.grad().unwrap().unwrap().copy();
    pfc.step(LR).unwrap();
    RankResult {
        loss: loss.double_value(&[]),
        embedding_grad: embeddings.grad(),
        centre_grad,
        centres_after_step: pfc.weight().detach().copy(),
    }
}

/// Errors are relative to the largest reference value of each quantity; the embedding
/// gradient is compared after dividing out the world-size factor of the official all-gather.
fn check_world_size(world_size: i64, margin_list: (f64, f64, f64), kind: Kind, tolerance: f64) {
    let config = config(margin_list);
    let weight = seeded(&[CLASSES, DIM], 21, kind);
    let total = world_size * BATCH;
    let labels: Vec<i64> = (0..total).map(|i| (i * 7 + 3) % CLASSES).collect();
    let labels = Tensor::from_slice(&labels);
    let embeddings = weight.index_select(0, &labels) + seeded(&[total, DIM], 22, kind) * 0.5;

    let reference = run_rank(
        kind,
        Box::new(SingleProcess),
        &config,
        &weight,
        &embeddings,
        &labels,
    );

    let ranks = SimulatedCollectives::group(world_size as usize, Duration::from_secs(60));
    let results: Vec<RankResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranks
            .into_iter()
            .map(|collectives| {
                let rank = collectives.rank() as i64;
                let (start, count) = shard_of(CLASSES, world_size, rank);
                let shard = weight.narrow(0, start, count).copy();
                let local_embeddings = embeddings.narrow(0, rank * BATCH, BATCH).copy();
                let local_labels = labels.narrow(0, rank * BATCH, BATCH).copy();
                let config = &config;
                scope.spawn(move || {
                    run_rank(
                        kind,
                        Box::new(collectives),
                        config,
                        &shard,
                        &local_embeddings,
                        &local_labels,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let largest = |t: &Tensor| t.abs().max().double_value(&[]);
    let (emb_scale, centre_scale) = (
        largest(&reference.embedding_grad),
        largest(&reference.centre_grad),
    );
    let (mut loss_err, mut emb_err, mut centre_err, mut step_err) = (0f64, 0f64, 0f64, 0f64);
    for (rank, result) in results.iter().enumerate() {
        let rank = rank as i64;
        let (start, count) = shard_of(CLASSES, world_size, rank);
        loss_err = loss_err.max((result.loss - reference.loss).abs() / reference.loss);
        let local = &result.embedding_grad / world_size as f64;
        emb_err = emb_err.max(
            max_abs_diff(
                &local,
                &reference.embedding_grad.narrow(0, rank * BATCH, BATCH),
            ) / emb_scale,
        );
        centre_err = centre_err.max(
            max_abs_diff(
                &result.centre_grad,
                &reference.centre_grad.narrow(0, start, count),
            ) / centre_scale,
        );
        step_err = step_err.max(max_abs_diff(
            &result.centres_after_step,
            &reference.centres_after_step.narrow(0, start, count),
        ));
    }
    println!(
        "world size {world_size}, {kind:?}, margin {margin_list:?}: loss {:.5} (rel diff {loss_err:.1e}), \
         d/dembeddings up to {emb_scale:.2} (rel diff {emb_err:.1e}), d/dcentres up to {centre_scale:.2} \
         (rel diff {centre_err:.1e}), centres after an AdamW step (abs diff {step_err:.1e})",
        reference.loss
    );
    for err in [loss_err, emb_err, centre_err, step_err] {
        assert!(err < tolerance, "world size {world_size}, {kind:?}: {err}");
    }
}

#[test]
fn two_ranks_match_the_unsharded_run() {
    for margin_list in [(1.0, 0.0, 0.4), (1.0, 0.5, 0.0)] {
        check_world_size(2, margin_list, Kind::Float, 1e-5);
        check_world_size(2, margin_list, Kind::Double, 1e-12);
    }
}

#[test]
fn four_ranks_match_the_unsharded_run() {
    for margin_list in [(1.0, 0.0, 0.4), (1.0, 0.5, 0.0)] {
        check_world_size(4, margin_list, Kind::Float, 1e-5);
        check_world_size(4, margin_list, Kind::Double, 1e-12);
    }
}
