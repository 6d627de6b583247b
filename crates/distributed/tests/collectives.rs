//! StoreCollectives on loopback: 2 and 3 ranks, one thread and one TCPStore client each
//! (rank 0 hosts the store), against references computed here from every rank's input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use swinface_distributed::{DistError, StoreCollectives, TcpStore};
use swinface_loss::Collectives;
use tch::{Kind, Tensor};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `body` on `world` ranks, each with its own store client; returns results in rank order.
fn on_ranks<T: Send>(
    world: usize,
    timeout: Duration,
    bucket_bytes: usize,
    body: impl Fn(StoreCollectives) -> T + Sync,
) -> Vec<T> {
    let host = Arc::new(TcpStore::host(0, None, TIMEOUT).unwrap());
    let port = host.port();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let host = Arc::clone(&host);
                let body = &body;
                scope.spawn(move || {
                    let store = if rank == 0 {
                        host
                    } else {
                        Arc::new(TcpStore::connect("127.0.0.1", port, TIMEOUT).unwrap())
                    };
                    let c = StoreCollectives::new(store, rank, world, timeout)
                        .unwrap()
                        .with_bucket_bytes(bucket_bytes)
                        .unwrap();
                    body(c)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Rank `r`'s input: values that differ per rank and per element, not exactly representable
/// sums, so that a wrong order or a wrong rank would show. A formula, not torch's global
/// generator, which the rank threads would race for.
fn input(rank: usize, shape: &[i64], salt: u64) -> Tensor {
    let n: i64 = shape.iter().product();
    let phase = (rank as u64 * 1000 + salt) as f64;
    let values: Vec<f32> = (0..n)
        .map(|i| (3.0 * (phase * 0.731 + i as f64 * 1.618).sin()) as f32)
        .collect();
    Tensor::from_slice(&values).reshape(shape)
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).unwrap()
}

#[test]
fn reduce_gather_and_broadcast_match_local_references_on_2_and_3_ranks() {
    for world in [2usize, 3] {
        let shape = [3i64, 5];
        let inputs: Vec<Tensor> = (0..world).map(|r| input(r, &shape, 1)).collect();
        let mut sum_ref = inputs[0].copy();
        let mut max_ref = inputs[0].copy();
        for t in &inputs[1..] {
            sum_ref += t;
            max_ref = max_ref.maximum(t);
        }
        let results = on_ranks(world, TIMEOUT, 1 << 20, |c| {
            let rank = c.rank();
            let mut sum = input(rank, &shape, 1);
            c.all_reduce_sum(&mut sum).unwrap();
            let mut max = input(rank, &shape, 1);
            c.all_reduce_max(&mut max).unwrap();
            let gathered = c
                .all_gather(&Tensor::from_slice(&[rank as i64, 7]))
                .unwrap();
            let mut root = input(rank, &[4], 2);
            c.broadcast(&mut root, world - 1).unwrap();
            (values(&sum), values(&max), gathered, values(&root))
        });
        let root_ref = values(&input(world - 1, &[4], 2));
        for (rank, (sum, max, gathered, root)) in results.iter().enumerate() {
            // Rank-order summation: the same bits as the reference, on every rank.
            assert_eq!(sum, &values(&sum_ref), "world {world} rank {rank}");
            assert_eq!(max, &values(&max_ref));
            assert_eq!(gathered.len(), world);
            for (r, t) in gathered.iter().enumerate() {
                assert_eq!(Vec::<i64>::try_from(t).unwrap(), vec![r as i64, 7]);
            }
            assert_eq!(root, &root_ref);
        }
    }
}

#[test]
fn bucketed_mean_equals_the_mean_of_every_tensor() {
    let world = 3;
    // Sizes chosen so that a 64-byte bucket splits them into several buckets, one tensor
    // larger than a bucket, and a double tensor that must not share a float bucket.
    let shapes: [&[i64]; 5] = [&[4], &[2, 3], &[40], &[1], &[3]];
    let make = |rank: usize| -> Vec<Tensor> {
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = input(rank, s, 10 + i as u64);
                if i == 3 {
                    t.to_kind(Kind::Double)
                } else {
                    t
                }
            })
            .collect()
    };
    let reference: Vec<Tensor> = (0..shapes.len())
        .map(|i| {
            let all: Vec<Tensor> = (0..world).map(|r| make(r)[i].copy()).collect();
            let mut acc = all[0].copy();
            for t in &all[1..] {
                acc += t;
            }
            acc / world as f64
        })
        .collect();
    let results = on_ranks(world, TIMEOUT, 64, |c| {
        let mut tensors = make(c.rank());
        c.all_reduce_mean(&mut tensors).unwrap();
        tensors
    });
    for tensors in &results {
        for (got, want) in tensors.iter().zip(&reference) {
            assert_eq!(got.kind(), want.kind());
            assert_eq!(got.size(), want.size());
            let diff = (got - want).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "mean differs by {diff}");
        }
        // Every rank holds the same bits.
        for (a, b) in tensors.iter().zip(&results[0]) {
            assert!(a.equal(b));
        }
    }
}

#[test]
fn the_store_stays_small_over_many_collectives() {
    let counts = on_ranks(2, TIMEOUT, 1 << 20, |c| {
        let mut counts = Vec::new();
        for i in 0..200 {
            let mut t = Tensor::from_slice(&[i as f32]);
            c.all_reduce_sum(&mut t).unwrap();
            assert_eq!(values(&t), vec![2.0 * i as f32]);
            if i == 5 || i == 199 {
                // Both ranks are past round i-1 here; count after the next barrier.
                c.barrier().unwrap();
                counts.push(c.store().num_keys().unwrap());
                c.barrier().unwrap();
            }
        }
        counts
    });
    for counts in counts {
        assert_eq!(counts[0], counts[1], "the store grows: {counts:?}");
        assert!(counts[1] <= 8, "{counts:?}");
    }
}

#[test]
fn a_missing_rank_times_out_naming_it_and_an_aborting_rank_stops_the_others() {
    let timeout = Duration::from_millis(1500);
    let results = on_ranks(3, timeout, 1 << 20, |c| {
        if c.rank() == 2 {
            return None;
        }
        let started = Instant::now();
        let err = c.barrier().unwrap_err();
        Some((err, started.elapsed()))
    });
    for (err, waited) in results.into_iter().flatten() {
        match &err {
            DistError::Timeout { op, missing, .. } => {
                assert_eq!(op, "barrier");
                assert_eq!(missing, &vec![2]);
            }
            other => panic!("expected a timeout, got {other}"),
        }
        assert!(err.to_string().contains("[2]"), "{err}");
        assert!(waited >= timeout && waited < timeout * 4, "{waited:?}");
    }

    let results = on_ranks(2, Duration::from_secs(60), 1 << 20, |c| {
        let started = Instant::now();
        if c.rank() == 1 {
            c.abort("data loader failed");
            return None;
        }
        let err = c.barrier().unwrap_err();
        Some((err, started.elapsed()))
    });
    let (err, waited) = results.into_iter().flatten().next().unwrap();
    assert!(
        matches!(&err, DistError::Aborted { message, .. } if message.contains("rank 1: data loader failed")),
        "{err}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[test]
fn rendezvous_waits_for_every_rank_of_a_torchrun_style_launch() {
    use swinface_distributed::DistEnv;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let world = 3;
    let ranks: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                scope.spawn(move || {
                    // Rank 0 arrives last: the others retry until its store is up.
                    if rank == 0 {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    let env = DistEnv {
                        rank,
                        local_rank: rank,
                        world_size: world,
                        master_addr: "127.0.0.1".into(),
                        master_port: port,
                    };
                    let store = Arc::new(TcpStore::rendezvous(&env, TIMEOUT).unwrap());
                    let c = StoreCollectives::new(store, rank, world, TIMEOUT).unwrap();
                    let all = c.exchange_bytes("ids", &[rank as u8]).unwrap();
                    c.shutdown().unwrap();
                    all.iter().map(|b| b[0] as usize).sum()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(ranks, vec![3, 3, 3]);
}
