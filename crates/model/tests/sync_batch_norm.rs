//! Synchronised BatchNorm over two in-process ranks (one thread each, Partial FC's
//! `SimulatedCollectives` as the reducer) computes what one process computes with plain
//! BatchNorm over the combined batch: outputs, running statistics, and the gradients of
//! the input slices, weight and bias averaged over the ranks as DDP averages them. Without
//! synchronisation the same comparison fails. And the model's switch reaches every
//! BatchNorm: the SwinFace forward with a failing reducer is an error in training only.

use std::sync::Arc;
use std::time::Duration;

use swinface_loss::collectives::{Collectives, SimulatedCollectives};
use swinface_model::layers::{BatchNorm, BatchNormSync};
use swinface_model::{ModelError, SwinFace, SwinFaceConfig};
use swinface_torch_ext::SumReducer;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const WORLD: usize = 2;
const TOLERANCE: f64 = 1e-5;

/// One rank of the simulated group as BatchNorm's reducer.
struct Rank(SimulatedCollectives);

impl SumReducer for Rank {
    fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<(), String> {
        self.0.all_reduce_sum(tensor).map_err(|e| e.to_string())
    }
}

/// The combined batch of `shape` ([B, C, ...]) from a formula (the rank threads must not
/// race for torch's generator): per-channel offsets and spreads, no two elements alike.
fn combined_input(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    let i = Tensor::arange(n, (Kind::Double, Device::Cpu));
    let wave = (&i * 0.37).sin() * 1.5 + (&i * 0.011).cos();
    let mut channel_shape = vec![1i64; shape.len()];
    channel_shape[1] = shape[1];
    let c = Tensor::arange(shape[1], (Kind::Double, Device::Cpu)).view(channel_shape.as_slice());
    (wave.view(shape) * (&c * 0.4 + 0.8) + &c * 1.5 - 2.0).to_kind(Kind::Float)
}

/// Per-sample weights of the loss, for the combined batch.
fn loss_weights(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    Tensor::linspace(-1.0, 1.5, n, (Kind::Float, Device::Cpu)).view(shape)
}

/// The mean over the samples of `y` ([b, ...]) of a per-sample loss that is not linear in y.
fn loss(y: &Tensor, weights: &Tensor) -> Tensor {
    let b = y.size()[0] as f64;
    (y * y * 0.2 + y * weights).sum(Kind::Float) / b
}

/// What one BatchNorm training step leaves: output, running statistics, gradients.
struct Step {
    output: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    grad_input: Tensor,
    grad_weight: Tensor,
    grad_bias: Tensor,
}

/// A BatchNorm with non-trivial affine parameters and buffers.
fn batch_norm(vs: &VarStore, channels: i64, sync: &BatchNormSync) -> BatchNorm {
    let bn = BatchNorm::new(&(vs.root() / "bn"), channels, 1e-5, 0.1).with_sync(sync);
    tch::no_grad(|| {
        let c = Tensor::arange(channels, (Kind::Float, Device::Cpu));
        bn.weight.shallow_clone().copy_(&(&c * 0.25 + 0.6));
        bn.bias.shallow_clone().copy_(&(&c * -0.3 + 0.2));
        bn.running_mean.shallow_clone().copy_(&(&c * 0.1));
        bn.running_var.shallow_clone().copy_(&(&c * 0.2 + 0.9));
    });
    bn
}

/// Forward, loss, backward of `x` (a leaf) through a fresh BatchNorm on `sync`.
fn step(x: Tensor, weights: &Tensor, sync: &BatchNormSync) -> Step {
    let vs = VarStore::new(Device::Cpu);
    let bn = batch_norm(&vs, x.size()[1], sync);
    let x = x.set_requires_grad(true);
    let output = bn.f_forward_t(&x, true).unwrap();
    loss(&output, weights).f_backward().unwrap();
    assert_eq!(i64::try_from(&bn.num_batches_tracked).unwrap(), 1);
    Step {
        output: output.detach(),
        running_mean: bn.running_mean.copy(),
        running_var: bn.running_var.copy(),
        grad_input: x.grad(),
        grad_weight: bn.weight.grad(),
        grad_bias: bn.bias.grad(),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// The largest difference of each quantity between the two ranks (synchronised or not)
/// and one process over the combined batch, in the order of [`Step`]'s fields.
fn compare_with_one_process(shape: &[i64], synchronised: bool) -> [f64; 6] {
    let (x, weights) = (combined_input(shape), loss_weights(shape));
    let one = step(x.copy(), &weights, &BatchNormSync::default());

    let per_rank = shape[0] / WORLD as i64;
    let ranks: Vec<Step> = std::thread::scope(|scope| {
        let handles: Vec<_> = SimulatedCollectives::group(WORLD, Duration::from_secs(30))
            .into_iter()
            .map(|c| {
                let start = c.rank() as i64 * per_rank;
                let x = x.narrow(0, start, per_rank).copy();
                let weights = weights.narrow(0, start, per_rank).copy();
                scope.spawn(move || {
                    let sync = BatchNormSync::default();
                    if synchronised {
                        sync.set(Some(Arc::new(Rank(c))));
                    }
                    step(x, &weights, &sync)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let cat = |f: fn(&Step) -> &Tensor| {
        Tensor::cat(
            &ranks
                .iter()
                .map(|s| f(s).shallow_clone())
                .collect::<Vec<_>>(),
            0,
        )
    };
    let mean = |f: fn(&Step) -> &Tensor| {
        ranks
            .iter()
            .map(|s| f(s).shallow_clone())
            .reduce(|a, b| a + b)
            .unwrap()
            / WORLD as f64
    };
    // Each rank's own statistics: the worse rank counts.
    let worst = |f: fn(&Step) -> &Tensor| {
        ranks
            .iter()
            .map(|s| max_diff(f(s), f(&one)))
            .fold(0.0, f64::max)
    };
    [
        max_diff(&cat(|s| &s.output), &one.output),
        worst(|s| &s.running_mean),
        worst(|s| &s.running_var),
        // Each rank's input gradient is that of the sum of the ranks' losses; DDP's mean
        // over ranks divides what flows on into the parameters by the world size.
        max_diff(&(cat(|s| &s.grad_input) / WORLD as f64), &one.grad_input),
        max_diff(&mean(|s| &s.grad_weight), &one.grad_weight),
        max_diff(&mean(|s| &s.grad_bias), &one.grad_bias),
    ]
}

const NAMES: [&str; 6] = [
    "output",
    "running_mean",
    "running_var",
    "grad_input",
    "grad_weight",
    "grad_bias",
];

#[test]
fn two_synchronised_ranks_compute_one_process_over_the_combined_batch() {
    for shape in [vec![8i64, 6], vec![8, 3, 4, 5]] {
        let synced = compare_with_one_process(&shape, true);
        let local = compare_with_one_process(&shape, false);
        eprintln!("{shape:?} largest differences from one process ({NAMES:?}):");
        let show = |d: [f64; 6]| d.map(|d| format!("{d:.1e}"));
        eprintln!("  synchronised:   {:?}", show(synced));
        eprintln!("  unsynchronised: {:?}", show(local));
        for (name, d) in NAMES.iter().zip(synced) {
            assert!(d < TOLERANCE, "{shape:?} synchronised {name}: {d}");
        }
        // Teeth: per-rank statistics give other outputs, buffers and gradients (the bias
        // gradient, sum dy, does not depend on the statistics).
        for (name, d) in NAMES.iter().zip(local).take(5) {
            assert!(
                d > 100.0 * TOLERANCE,
                "{shape:?} unsynchronised {name}: {d}"
            );
        }
    }
}

/// Fails every call.
struct Unreachable;

impl SumReducer for Unreachable {
    fn all_reduce_sum(&self, _tensor: &mut Tensor) -> Result<(), String> {
        Err("no other ranks here".into())
    }
}

/// Counts its calls, summing over one rank.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl SumReducer for Counting {
    fn all_reduce_sum(&self, _tensor: &mut Tensor) -> Result<(), String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn the_model_switch_reaches_every_batch_norm_in_training_only() {
    tch::manual_seed(3);
    let vs = VarStore::new(Device::Cpu);
    let mut cfg = SwinFaceConfig::tiny_demo();
    // CBAM's spatial gate adds a 2-d BatchNorm to each branch.
    cfg.fam_spatial_attention = swinface_model::SpatialAttention::Cbam;
    let mut model = SwinFace::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::randn([4, 3, 112, 112], (Kind::Float, Device::Cpu));
    let reference = tch::no_grad(|| model.f_forward_t(&x, false)).unwrap();

    model.set_sync_batch_norm(Some(Arc::new(Unreachable)));
    assert!(model.sync_batch_norm());
    // Eval mode uses the running statistics: no collective, bit-identical output.
    let eval = tch::no_grad(|| model.f_forward_t(&x, false)).unwrap();
    assert_eq!(max_diff(&eval.embedding, &reference.embedding), 0.0);
    assert_eq!(max_diff(&eval.heads[0], &reference.heads[0]), 0.0);
    // Training: the first BatchNorm's collective fails, as an error.
    match model.f_forward_t(&x, true) {
        Err(ModelError::SyncBatchNorm(e)) => {
            assert!(e.to_string().contains("no other ranks here"), "{e}")
        }
        other => panic!("expected a SyncBatchNorm error, got {other:?}"),
    }

    // One collective per BatchNorm forward and one per backward: 2 in the embedding head,
    // and per FAM branch the spatial gate's and the branch norm's.
    let counting = Arc::new(Counting::default());
    model.set_sync_batch_norm(Some(counting.clone()));
    let out = model.f_forward_t(&x, true).unwrap();
    let batch_norms = 2 + 2 * cfg.fam_config().branch_num;
    assert_eq!(
        counting.0.load(std::sync::atomic::Ordering::SeqCst),
        batch_norms
    );
    let total = out
        .heads
        .iter()
        .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |acc, t| {
            acc + t.square().mean(Kind::Float)
        });
    total.f_backward().unwrap();
    assert_eq!(
        counting.0.load(std::sync::atomic::Ordering::SeqCst),
        2 * batch_norms
    );

    // Unset again: the plain path, no collective.
    model.set_sync_batch_norm(None);
    assert!(!model.sync_batch_norm());
    let _ = model.f_forward_t(&x, true).unwrap();
    assert_eq!(
        counting.0.load(std::sync::atomic::Ordering::SeqCst),
        2 * batch_norms
    );
}
