//! `sync_batch_norm` over one rank (the identity reducer) is `Tensor::batch_norm` in
//! training mode: output, running statistics and the gradients of input, weight and bias;
//! a failing reducer is an error out of forward and out of backward, never a panic; the
//! reducer handle is released with the graph.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use swinface_torch_ext::{sync_batch_norm, BatchNormState, IdentityReducer, SumReducer};
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-6;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// [`max_diff`] relative to the reference's scale (at least 1): float32 sums of a hundred
/// O(1) terms differ in their last bits, whichever order or precision sums them.
fn scaled_diff(a: &Tensor, reference: &Tensor) -> f64 {
    let scale = reference
        .to_kind(Kind::Double)
        .abs()
        .max()
        .double_value(&[])
        .max(1.0);
    max_diff(a, reference) / scale
}

/// A BatchNorm's parameters and buffers; `requires_grad` on weight and bias.
struct Bn {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl Bn {
    /// Deterministic, not-trivial values (weights away from 1, buffers away from 0 and 1).
    fn new(channels: i64) -> Self {
        Self::of_kind(channels, Kind::Float)
    }

    fn of_kind(channels: i64, kind: Kind) -> Self {
        let c = Tensor::arange(channels, (kind, Device::Cpu));
        Self {
            weight: (&c * 0.3 + 0.5).set_requires_grad(true),
            bias: (&c * -0.2 + 0.1).set_requires_grad(true),
            running_mean: &c * 0.05 - 0.1,
            running_var: &c * 0.1 + 0.7,
        }
    }

    fn state(&self, momentum: f64, eps: f64) -> BatchNormState<'_> {
        BatchNormState {
            weight: &self.weight,
            bias: &self.bias,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            momentum,
            eps,
        }
    }
}

/// x: a fixed input of `shape` with per-channel offsets and spreads, requiring grad.
fn input(shape: &[i64]) -> Tensor {
    input_of_kind(shape, Kind::Float)
}

fn input_of_kind(shape: &[i64], kind: Kind) -> Tensor {
    tch::manual_seed(7);
    let mut channel_shape = vec![1i64; shape.len()];
    channel_shape[1] = shape[1];
    let c = Tensor::arange(shape[1], (kind, Device::Cpu)).view(channel_shape.as_slice());
    let x = Tensor::randn(shape, (kind, Device::Cpu)) * (&c * 0.5 + 1.0) + &c * 2.0 - 1.0;
    x.set_requires_grad(true)
}

/// A loss that weighs every output element differently, so no gradient sum is trivially 0.
fn loss(y: &Tensor) -> Tensor {
    let g = Tensor::linspace(-1.0, 2.0, y.numel() as i64, (y.kind(), Device::Cpu))
        .view(y.size().as_slice());
    (y * y * 0.1 + y * g).sum(y.kind())
}

#[test]
fn identity_reducer_is_batch_norm_forward_and_backward() {
    for (shape, momentum, eps, kind) in [
        (vec![6i64, 5], 0.1, 1e-5, Kind::Float),
        (vec![4, 3, 5, 7], 0.01, 2e-5, Kind::Float),
        (vec![3, 4, 6], 0.1, 1e-3, Kind::Float),
        (vec![4, 3, 5, 7], 0.1, 1e-5, Kind::Double),
    ] {
        let channels = shape[1];
        let (reference, synced) = (Bn::of_kind(channels, kind), Bn::of_kind(channels, kind));
        let (x_ref, x_sync) = (input_of_kind(&shape, kind), input_of_kind(&shape, kind));
        // Two steps, so the running statistics move twice.
        let mut worst = [0.0f64; 6];
        for _ in 0..2 {
            let y_ref = x_ref.batch_norm(
                Some(&reference.weight),
                Some(&reference.bias),
                Some(&reference.running_mean),
                Some(&reference.running_var),
                true,
                momentum,
                eps,
                false,
            );
            let y_sync = sync_batch_norm(
                &x_sync,
                &synced.state(momentum, eps),
                Arc::new(IdentityReducer),
            )
            .unwrap();
            assert_eq!(y_sync.kind(), kind);
            loss(&y_ref).backward();
            loss(&y_sync).f_backward().unwrap();
            let pairs = [
                (&y_ref, &y_sync),
                (&reference.running_mean, &synced.running_mean),
                (&reference.running_var, &synced.running_var),
                (&x_ref.grad(), &x_sync.grad()),
                (&reference.weight.grad(), &synced.weight.grad()),
                (&reference.bias.grad(), &synced.bias.grad()),
            ];
            for (i, (a, b)) in pairs.into_iter().enumerate() {
                worst[i] = worst[i].max(scaled_diff(b, a));
            }
        }
        eprintln!(
            "{shape:?} {kind:?}: largest |sync - batch_norm| / max(1, |batch_norm|) of output, \
             running mean, running var, dx, dweight, dbias: {:?}",
            worst.map(|d| format!("{d:.1e}"))
        );
        for (what, d) in ["output", "running_mean", "running_var", "dx", "dw", "db"]
            .iter()
            .zip(worst)
        {
            assert!(d < TOLERANCE, "{shape:?} {what}: {d}");
        }
        // The statistics did move: the comparison above is not of untouched buffers.
        assert!(
            max_diff(
                &synced.running_mean,
                &Bn::of_kind(channels, kind).running_mean
            ) > 1e-3
        );
    }
}

#[test]
fn without_autograd_it_is_the_same_forward() {
    let bn = Bn::new(3);
    let reference = Bn::new(3);
    let x = input(&[5, 3, 2, 2]).detach();
    let y = tch::no_grad(|| sync_batch_norm(&x, &bn.state(0.1, 1e-5), Arc::new(IdentityReducer)))
        .unwrap();
    let expected = tch::no_grad(|| {
        x.batch_norm(
            Some(&reference.weight),
            Some(&reference.bias),
            Some(&reference.running_mean),
            Some(&reference.running_var),
            true,
            0.1,
            1e-5,
            false,
        )
    });
    assert!(max_diff(&y, &expected) < TOLERANCE);
    assert!(!y.requires_grad());
    assert!(max_diff(&bn.running_var, &reference.running_var) < TOLERANCE);
}

/// Succeeds for the first `ok_calls` calls, then fails (or panics).
struct Failing {
    ok_calls: usize,
    calls: AtomicUsize,
    panic: bool,
}

impl Failing {
    fn new(ok_calls: usize, panic: bool) -> Arc<Self> {
        Arc::new(Self {
            ok_calls,
            calls: AtomicUsize::new(0),
            panic,
        })
    }
}

impl SumReducer for Failing {
    fn all_reduce_sum(&self, _tensor: &mut Tensor) -> Result<(), String> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.ok_calls {
            return Ok(());
        }
        if self.panic {
            panic!("reducer exploded on call {call}");
        }
        Err(format!("rank 1 went away (call {call})"))
    }
}

#[test]
fn a_failing_reducer_is_an_error_from_forward_and_from_backward() {
    for panic in [false, true] {
        let bn = Bn::new(4);
        let x = input(&[8, 4]);
        let before = bn.running_mean.copy();

        // Forward: its one call fails.
        let reducer = Failing::new(0, panic);
        let err = sync_batch_norm(&x, &bn.state(0.1, 1e-5), reducer.clone()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("forward statistics"), "{text}");
        let cause = if panic {
            "the reducer panicked: reducer exploded on call 0"
        } else {
            "rank 1 went away (call 0)"
        };
        assert!(text.contains(cause), "{text}");
        // Nothing was updated, and the shim let go of the reducer.
        assert_eq!(max_diff(&bn.running_mean, &before), 0.0);
        assert_eq!(Arc::strong_count(&reducer), 1);

        // Backward: forward's call succeeds, backward's fails.
        let reducer = Failing::new(1, panic);
        let y = sync_batch_norm(&x, &bn.state(0.1, 1e-5), reducer.clone()).unwrap();
        // The graph holds the reducer until it goes.
        assert_eq!(Arc::strong_count(&reducer), 2);
        let err = loss(&y).f_backward().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("backward gradient sums"), "{text}");
        let cause = if panic {
            "reducer exploded on call 1"
        } else {
            "rank 1 went away (call 1)"
        };
        assert!(text.contains(cause), "{text}");
        drop(y);
        assert_eq!(Arc::strong_count(&reducer), 1);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let bn = Bn::new(4);
    let x = input(&[8, 3]);
    let err = sync_batch_norm(&x, &bn.state(0.1, 1e-5), Arc::new(IdentityReducer)).unwrap_err();
    assert!(err.to_string().contains("must be [3]"), "{err}");
    // One value per channel over all ranks: no variance to normalise with.
    let one = Bn::new(3);
    let err = sync_batch_norm(
        &input(&[1, 3]),
        &one.state(0.1, 1e-5),
        Arc::new(IdentityReducer),
    )
    .unwrap_err();
    assert!(err.to_string().contains("more than 1 value"), "{err}");
}
