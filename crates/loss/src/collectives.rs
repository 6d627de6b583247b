//! Collective operations over the ranks that share Partial FC's class centres.
//!
//! `Collectives` is the seam where a real backend (NCCL, a store-based CPU backend) plugs in.
//! This module provides the single-process backend and an in-process simulation of several
//! ranks (one thread per rank) used to test the sharded code paths.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tch::Tensor;

use crate::error::{LossError, Result};
use crate::tensor_util::deep_copy;

/// Blocking collectives; every rank must call the same operations in the same order.
pub trait Collectives: Send {
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Element-wise maximum over ranks, written back into `tensor`.
    fn all_reduce_max(&self, tensor: &mut Tensor) -> Result<()>;
    /// Element-wise sum over ranks, written back into `tensor`.
    fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<()>;
    /// Every rank's `tensor`, in rank order (all of the same shape).
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>>;
}

/// World size 1: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

impl Collectives for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_max(&self, _tensor: &mut Tensor) -> Result<()> {
        Ok(())
    }
    fn all_reduce_sum(&self, _tensor: &mut Tensor) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        Ok(vec![tensor.shallow_clone()])
    }
}

/// A shared group (one process group serving Partial FC and the gradients alike).
impl<T: Collectives + Sync + ?Sized> Collectives for Arc<T> {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn world_size(&self) -> usize {
        (**self).world_size()
    }
    fn all_reduce_max(&self, tensor: &mut Tensor) -> Result<()> {
        (**self).all_reduce_max(tensor)
    }
    fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<()> {
        (**self).all_reduce_sum(tensor)
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        (**self).all_gather(tensor)
    }
}

/// One rank of an in-process group; run each rank on its own thread.
///
/// Every rank reduces the same rank-ordered contributions in the same order, so all ranks get
/// bit-identical results, as NCCL guarantees.
pub struct SimulatedCollectives {
    rank: usize,
    world_size: usize,
    hub: Arc<Hub>,
}

struct Hub {
    state: Mutex<Round>,
    changed: Condvar,
    timeout: Duration,
}

/// One exchange: ranks deposit, then (once all arrived) each takes a copy of everything.
struct Round {
    slots: Vec<Option<Tensor>>,
    arrived: usize,
    departed: usize,
    draining: bool,
    generation: u64,
}

impl SimulatedCollectives {
    /// The `world_size` ranks of a new group. A rank that waits longer than `timeout` for the
    /// others (one of them failed before the collective) gets an error instead of hanging.
    pub fn group(world_size: usize, timeout: Duration) -> Vec<Self> {
        let hub = Arc::new(Hub {
            state: Mutex::new(Round {
                slots: (0..world_size).map(|_| None).collect(),
                arrived: 0,
                departed: 0,
                draining: false,
                generation: 0,
            }),
            changed: Condvar::new(),
            timeout,
        });
        (0..world_size)
            .map(|rank| Self {
                rank,
                world_size,
                hub: Arc::clone(&hub),
            })
            .collect()
    }

    fn error(&self, op: &'static str, reason: impl Into<String>) -> LossError {
        LossError::Collective {
            op,
            rank: self.rank,
            reason: reason.into(),
        }
    }

    fn lock(&self, op: &'static str) -> Result<MutexGuard<'_, Round>> {
        self.hub
            .state
            .lock()
            .map_err(|_| self.error(op, "a rank panicked during a collective"))
    }

    fn wait<'a>(
        &self,
        op: &'static str,
        guard: MutexGuard<'a, Round>,
        until: impl Fn(&Round) -> bool,
    ) -> Result<MutexGuard<'a, Round>> {
        let (guard, timeout) = self
            .hub
            .changed
            .wait_timeout_while(guard, self.hub.timeout, |round| !until(round))
            .map_err(|_| self.error(op, "a rank panicked during a collective"))?;
        if timeout.timed_out() {
            return Err(self.error(op, "timed out waiting for the other ranks"));
        }
        Ok(guard)
    }

    /// Deposits a copy of `tensor` and returns copies of all ranks' deposits, in rank order.
    fn exchange(&self, op: &'static str, tensor: &Tensor) -> Result<Vec<Tensor>> {
        let contribution = deep_copy(tensor)?;
        let mut round = self.lock(op)?;
        // A previous exchange may still be handing out its results.
        round = self.wait(op, round, |r| !r.draining)?;
        let generation = round.generation;
        round.slots[self.rank] = Some(contribution);
        round.arrived += 1;
        if round.arrived == self.world_size {
            round.draining = true;
            self.hub.changed.notify_all();
        } else {
            round = self.wait(op, round, |r| r.draining && r.generation == generation)?;
        }
        let mut all = Vec::with_capacity(self.world_size);
        for slot in &round.slots {
            let tensor = slot
                .as_ref()
                .ok_or_else(|| self.error(op, "a rank's contribution is missing"))?;
            all.push(deep_copy(tensor)?);
        }
        round.departed += 1;
        if round.departed == self.world_size {
            round.slots.iter_mut().for_each(|slot| *slot = None);
            round.arrived = 0;
            round.departed = 0;
            round.draining = false;
            round.generation += 1;
            self.hub.changed.notify_all();
        }
        Ok(all)
    }

    fn check_shapes(&self, op: &'static str, all: &[Tensor]) -> Result<()> {
        let first = all.first().map(Tensor::size).unwrap_or_default();
        if all.iter().any(|t| t.size() != first) {
            return Err(self.error(op, "ranks contributed tensors of different shapes"));
        }
        Ok(())
    }
}

impl Collectives for SimulatedCollectives {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_max(&self, tensor: &mut Tensor) -> Result<()> {
        let all = self.exchange("all_reduce_max", tensor)?;
        self.check_shapes("all_reduce_max", &all)?;
        let mut acc = all[0].shallow_clone();
        for t in &all[1..] {
            acc = acc.f_maximum(t)?;
        }
        tch::no_grad(|| tensor.f_copy_(&acc))?;
        Ok(())
    }

    fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<()> {
        let all = self.exchange("all_reduce_sum", tensor)?;
        self.check_shapes("all_reduce_sum", &all)?;
        let mut acc = all[0].shallow_clone();
        for t in &all[1..] {
            acc = acc.f_add(t)?;
        }
        tch::no_grad(|| tensor.f_copy_(&acc))?;
        Ok(())
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Vec<Tensor>> {
        let all = self.exchange("all_gather", tensor)?;
        self.check_shapes("all_gather", &all)?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_ranks_reduce_and_gather() {
        let ranks = SimulatedCollectives::group(3, Duration::from_secs(30));
        let results: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranks
                .into_iter()
                .map(|c| {
                    scope.spawn(move || {
                        let r = c.rank() as f64;
                        let mut max = Tensor::from_slice(&[r, -r]);
                        let mut sum = Tensor::from_slice(&[r, 1.0]);
                        c.all_reduce_max(&mut max).unwrap();
                        c.all_reduce_sum(&mut sum).unwrap();
                        let gathered =
                            Tensor::cat(&c.all_gather(&Tensor::from_slice(&[r])).unwrap(), 0);
                        (
                            Vec::<f64>::try_from(max).unwrap(),
                            Vec::<f64>::try_from(sum).unwrap(),
                            Vec::<f64>::try_from(gathered).unwrap(),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (max, sum, gathered) in results {
            assert_eq!(max, vec![2.0, 0.0]);
            assert_eq!(sum, vec![3.0, 3.0]);
            assert_eq!(gathered, vec![0.0, 1.0, 2.0]);
        }
    }

    #[test]
    fn a_missing_rank_times_out_instead_of_hanging() {
        let mut ranks = SimulatedCollectives::group(2, Duration::from_millis(200));
        let lone = ranks.remove(0);
        let mut t = Tensor::from_slice(&[1.0f32]);
        assert!(matches!(
            lone.all_reduce_sum(&mut t),
            Err(LossError::Collective { .. })
        ));
    }
}
