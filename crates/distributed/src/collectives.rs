//! Collectives over the TCPStore, for CPU runs (PyTorch's wheels ship no Gloo headers) and
//! as a fallback: each collective is one exchange in which every rank writes its bytes under
//! `{op}/{round}/{rank}` and reads the others'. Reductions add the ranks' contributions in
//! rank order 0..n on every rank, so that every rank gets bit-identical results.
//!
//! Every exchange is a full round (broadcast included: the other ranks write an empty
//! acknowledgement), which makes deletion safe: a rank that finished round k-1 knows that
//! every rank finished reading round k-2, so it deletes its own key of round k-2 and the
//! store holds at most two keys per rank.
//!
//! Throughput is that of one TCP server relaying every byte: fine for the small models of
//! CPU runs and tests; GPUs use NCCL.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swinface_loss::{Collectives, LossError};
use tch::{Device, Kind, Tensor};

use crate::bucket::{buckets, flatten, unflatten};
use crate::data_parallel::DataParallel;
use crate::error::{DistError, Result};
use crate::store::TcpStore;

/// The key a failing rank sets so that the others stop waiting for it.
const ABORT_KEY: &str = "swinface/abort";
/// How long one blocking wait lasts before the abort key is looked at again.
const WAIT_SLICE: Duration = Duration::from_millis(500);
/// Default gradient bucket (DDP's default `bucket_cap_mb` is 25).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// One rank's handle on the collectives of a group; clones share the round counter, so any
/// mix of clones must still call the same collectives in the same order on every rank.
#[derive(Clone)]
pub struct StoreCollectives {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<TcpStore>,
    rank: usize,
    world_size: usize,
    timeout: Duration,
    bucket_bytes: usize,
    rounds: Mutex<Rounds>,
}

#[derive(Default)]
struct Rounds {
    next: u64,
    /// This rank's keys of the last rounds, oldest first.
    own_keys: VecDeque<String>,
}

impl StoreCollectives {
    /// Rank `rank` of `world_size` over `store`; every wait gives up after `timeout`.
    pub fn new(
        store: Arc<TcpStore>,
        rank: usize,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Self> {
        if world_size == 0 || rank >= world_size {
            return Err(DistError::Config {
                what: "rank",
                reason: format!("rank {rank} is not in a world of {world_size}"),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                rank,
                world_size,
                timeout,
                bucket_bytes: DEFAULT_BUCKET_BYTES,
                rounds: Mutex::new(Rounds::default()),
            }),
        })
    }

    /// Gradient buckets of at most `bytes` (at least one tensor per bucket). Call before
    /// cloning.
    pub fn with_bucket_bytes(mut self, bytes: usize) -> Result<Self> {
        let inner = Arc::get_mut(&mut self.inner).ok_or(DistError::Config {
            what: "bucket_bytes",
            reason: "set it before cloning the handle".into(),
        })?;
        inner.bucket_bytes = bytes.max(1);
        Ok(self)
    }

    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    pub fn world_size(&self) -> usize {
        self.inner.world_size
    }

    /// The store the collectives run over.
    pub fn store(&self) -> &TcpStore {
        &self.inner.store
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Tells the other ranks that this one failed, so that their next wait fails at once
    /// with `message` instead of timing out. Best effort: the store may be gone already.
    pub fn abort(&self, message: &str) {
        let text = format!("rank {}: {message}", self.inner.rank);
        let _ = self.inner.store.set(ABORT_KEY, text.as_bytes());
    }

    /// Every rank's `payload`, in rank order.
    pub fn exchange_bytes(&self, op: &'static str, payload: &[u8]) -> Result<Vec<Vec<u8>>> {
        let inner = &self.inner;
        let mut rounds = inner.rounds.lock().map_err(|_| DistError::Mismatch {
            op,
            rank: inner.rank,
            reason: "a thread panicked during a collective".into(),
        })?;
        let round = rounds.next;
        rounds.next += 1;
        let key = |rank: usize| format!("{op}/{round}/{rank}");
        inner.store.set(&key(inner.rank), payload)?;
        rounds.own_keys.push_back(key(inner.rank));
        while rounds.own_keys.len() > 2 {
            if let Some(old) = rounds.own_keys.pop_front() {
                inner.store.delete(&old)?;
            }
        }
        let others: Vec<usize> = (0..inner.world_size).filter(|&r| r != inner.rank).collect();
        let keys: Vec<String> = others.iter().map(|&r| key(r)).collect();
        self.wait_all(op, round, &others, &keys)?;
        let mut all = Vec::with_capacity(inner.world_size);
        for r in 0..inner.world_size {
            if r == inner.rank {
                all.push(payload.to_vec());
            } else {
                all.push(inner.store.get(&key(r))?);
            }
        }
        Ok(all)
    }

    /// Waits for `keys` (of `ranks`) in slices, looking for an abort between them.
    fn wait_all(
        &self,
        op: &'static str,
        round: u64,
        ranks: &[usize],
        keys: &[String],
    ) -> Result<()> {
        let inner = &self.inner;
        if keys.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        loop {
            let left = inner.timeout.saturating_sub(started.elapsed());
            match inner.store.wait(keys, left.min(WAIT_SLICE)) {
                Ok(()) => return Ok(()),
                Err(wait_error) => {
                    // A store that cannot answer a check is gone (rank 0 died): report that.
                    if inner
                        .store
                        .check(&[ABORT_KEY.to_owned()])
                        .map_err(|_| wait_error)?
                    {
                        let message = inner.store.get(ABORT_KEY)?;
                        return Err(DistError::Aborted {
                            op: op.to_owned(),
                            rank: inner.rank,
                            message: String::from_utf8_lossy(&message).into_owned(),
                        });
                    }
                    if started.elapsed() >= inner.timeout {
                        let mut missing = Vec::new();
                        for (rank, key) in ranks.iter().zip(keys) {
                            if !inner.store.check(std::slice::from_ref(key))? {
                                missing.push(*rank);
                            }
                        }
                        if missing.is_empty() {
                            continue;
                        }
                        return Err(DistError::Timeout {
                            op: op.to_owned(),
                            round,
                            rank: inner.rank,
                            waited: started.elapsed(),
                            missing,
                        });
                    }
                }
            }
        }
    }

    /// Rank 0 hosts the store, so it must outlive every other rank's last read: the others
    /// say they are done, rank 0 waits for all of them (up to the timeout). Call once, last.
    pub fn shutdown(&self) -> Result<()> {
        let inner = &self.inner;
        let key = |rank: usize| format!("swinface/done/{rank}");
        if inner.rank != 0 {
            return inner.store.set(&key(inner.rank), b"");
        }
        let ranks: Vec<usize> = (1..inner.world_size).collect();
        let keys: Vec<String> = ranks.iter().map(|&r| key(r)).collect();
        let round = inner.rounds.lock().map(|r| r.next).unwrap_or(0);
        self.wait_all("shutdown", round, &ranks, &keys)
    }

    /// Waits until every rank arrived here.
    pub fn barrier(&self) -> Result<()> {
        self.exchange_bytes("barrier", &[]).map(|_| ())
    }

    /// `root`'s `payload` on every rank (the others' `payload` is ignored).
    pub fn broadcast_bytes(&self, payload: &[u8], root: usize) -> Result<Vec<u8>> {
        self.check_root("broadcast", root)?;
        let mine: &[u8] = if self.rank() == root { payload } else { &[] };
        let mut all = self.exchange_bytes("broadcast", mine)?;
        Ok(std::mem::take(&mut all[root]))
    }

    /// True on every rank when `flag` is true on any.
    pub fn any(&self, flag: bool) -> Result<bool> {
        let all = self.exchange_bytes("any", &[u8::from(flag)])?;
        Ok(all.iter().any(|b| b.first() == Some(&1)))
    }

    fn check_root(&self, op: &'static str, root: usize) -> Result<()> {
        if root >= self.world_size() {
            return Err(DistError::Mismatch {
                op,
                rank: self.rank(),
                reason: format!("root {root} is not in a world of {}", self.world_size()),
            });
        }
        Ok(())
    }

    /// Overwrites `tensor` (any device) with `root`'s.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        self.check_root("broadcast", root)?;
        let bytes = if self.rank() == root {
            encode(tensor)?
        } else {
            Vec::new()
        };
        let received = self.broadcast_bytes(&bytes, root)?;
        let value = decode("broadcast", self.rank(), &received)?;
        if value.size() != tensor.size() || value.kind() != tensor.kind() {
            return Err(DistError::Mismatch {
                op: "broadcast",
                rank: self.rank(),
                reason: format!(
                    "rank {root} sent {:?} {:?}, this rank has {:?} {:?}",
                    value.size(),
                    value.kind(),
                    tensor.size(),
                    tensor.kind()
                ),
            });
        }
        tch::no_grad(|| tensor.f_copy_(&value))?;
        Ok(())
    }

    /// Overwrites each tensor with `root`'s, in buckets.
    pub fn broadcast_all(&self, tensors: &mut [Tensor], root: usize) -> Result<()> {
        for range in buckets(tensors, self.inner.bucket_bytes) {
            let bucket = &mut tensors[range];
            let mut flat = flatten(bucket, Device::Cpu)?;
            self.broadcast(&mut flat, root)?;
            unflatten(&flat, bucket)?;
        }
        Ok(())
    }

    /// Replaces each tensor with the mean over ranks, exchanging buckets of at most the
    /// configured size (tensors of one kind per bucket): DDP's gradient averaging.
    pub fn all_reduce_mean(&self, tensors: &mut [Tensor]) -> Result<()> {
        let world = self.world_size() as f64;
        for range in buckets(tensors, self.inner.bucket_bytes) {
            let bucket = &mut tensors[range];
            let mut flat = flatten(bucket, Device::Cpu)?;
            self.reduce("all_reduce_mean", &mut flat, |a, b| a.f_add(b))?;
            let flat = flat.f_div_scalar(world)?;
            unflatten(&flat, bucket)?;
        }
        Ok(())
    }

    /// Exchanges `tensor` and folds the contributions in rank order with `op`.
    fn reduce(
        &self,
        name: &'static str,
        tensor: &mut Tensor,
        op: impl Fn(&Tensor, &Tensor) -> std::result::Result<Tensor, tch::TchError>,
    ) -> Result<()> {
        let all = self.gather_tensors(name, tensor)?;
        let mut acc = all[0].shallow_clone();
        for t in &all[1..] {
            acc = op(&acc, t)?;
        }
        tch::no_grad(|| tensor.f_copy_(&acc))?;
        Ok(())
    }

    /// Every rank's tensor (on the CPU), checked to share `tensor`'s shape and kind.
    fn gather_tensors(&self, op: &'static str, tensor: &Tensor) -> Result<Vec<Tensor>> {
        let all = self.exchange_bytes(op, &encode(tensor)?)?;
        let mut out = Vec::with_capacity(all.len());
        for (rank, bytes) in all.iter().enumerate() {
            let t = decode(op, self.rank(), bytes)?;
            if t.size() != tensor.size() || t.kind() != tensor.kind() {
                return Err(DistError::Mismatch {
                    op,
                    rank: self.rank(),
                    reason: format!(
                        "rank {rank} contributed {:?} {:?}, this rank {:?} {:?}",
                        t.size(),
                        t.kind(),
                        tensor.size(),
                        tensor.kind()
                    ),
                });
            }
            out.push(t);
        }
        Ok(out)
    }
}

impl Collectives for StoreCollectives {
    fn rank(&self) -> usize {
        self.inner.rank
    }

    fn world_size(&self) -> usize {
        self.inner.world_size
    }

    fn all_reduce_max(&self, tensor: &mut Tensor) -> swinface_loss::Result<()> {
        self.reduce("all_reduce_max", tensor, |a, b| a.f_maximum(b))
            .map_err(|e| e.into_loss_error("all_reduce_max", self.rank()))
    }

    fn all_reduce_sum(&self, tensor: &mut Tensor) -> swinface_loss::Result<()> {
        self.reduce("all_reduce_sum", tensor, |a, b| a.f_add(b))
            .map_err(|e| e.into_loss_error("all_reduce_sum", self.rank()))
    }

    fn all_gather(&self, tensor: &Tensor) -> swinface_loss::Result<Vec<Tensor>> {
        let device = tensor.device();
        let all = self
            .gather_tensors("all_gather", tensor)
            .map_err(|e| e.into_loss_error("all_gather", self.rank()))?;
        all.into_iter()
            .map(|t| t.f_to_device(device).map_err(LossError::from))
            .collect()
    }
}

impl DataParallel for StoreCollectives {
    fn all_reduce_mean(&self, tensors: &mut [Tensor]) -> Result<()> {
        StoreCollectives::all_reduce_mean(self, tensors)
    }

    fn broadcast_all(&self, tensors: &mut [Tensor], root: usize) -> Result<()> {
        StoreCollectives::broadcast_all(self, tensors, root)
    }

    fn backend(&self) -> &'static str {
        "tcp-store"
    }
}

const KINDS: [Kind; 10] = [
    Kind::Uint8,
    Kind::Int8,
    Kind::Int16,
    Kind::Int,
    Kind::Int64,
    Kind::Half,
    Kind::Float,
    Kind::Double,
    Kind::Bool,
    Kind::BFloat16,
];

/// [kind code][rank][dims as i64 LE][bytes of the contiguous CPU tensor].
fn encode(tensor: &Tensor) -> Result<Vec<u8>> {
    let kind = tensor.kind();
    let code = KINDS
        .iter()
        .position(|k| *k == kind)
        .ok_or_else(|| DistError::Config {
            what: "tensor kind",
            reason: format!("{kind:?} cannot be exchanged"),
        })?;
    let cpu = tensor
        .f_detach()?
        .f_to_device(Device::Cpu)?
        .f_contiguous()?;
    let dims = cpu.size();
    let numel = cpu.numel();
    let header = 2 + 8 * dims.len();
    let mut bytes = vec![0u8; header + numel * kind.elt_size_in_bytes()];
    bytes[0] = code as u8;
    bytes[1] = u8::try_from(dims.len()).map_err(|_| DistError::Config {
        what: "tensor rank",
        reason: format!("{} dimensions", dims.len()),
    })?;
    for (i, d) in dims.iter().enumerate() {
        bytes[2 + 8 * i..10 + 8 * i].copy_from_slice(&d.to_le_bytes());
    }
    if numel > 0 {
        cpu.f_copy_data_u8(&mut bytes[header..], numel)?;
    }
    Ok(bytes)
}

fn decode(op: &'static str, rank: usize, bytes: &[u8]) -> Result<Tensor> {
    let bad = |reason: &str| DistError::Mismatch {
        op,
        rank,
        reason: format!("received a malformed tensor: {reason}"),
    };
    let (&code, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    let kind = *KINDS
        .get(code as usize)
        .ok_or_else(|| bad("unknown kind"))?;
    let (&ndim, rest) = rest.split_first().ok_or_else(|| bad("no rank"))?;
    let ndim = ndim as usize;
    if rest.len() < 8 * ndim {
        return Err(bad("truncated shape"));
    }
    let dims: Vec<i64> = rest[..8 * ndim]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if dims.iter().any(|&d| d < 0) {
        return Err(bad("negative dimension"));
    }
    let data = &rest[8 * ndim..];
    let numel: i64 = dims.iter().product();
    if data.len() as i64 != numel * kind.elt_size_in_bytes() as i64 {
        return Err(bad("size does not match the shape"));
    }
    if numel == 0 {
        return Ok(Tensor::f_zeros(&dims, (kind, Device::Cpu))?);
    }
    Ok(Tensor::f_from_data_size(data, &dims, kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_survive_encoding() {
        for t in [
            Tensor::from_slice(&[1.5f32, -2.0, 3.25]).reshape([3, 1]),
            Tensor::from_slice(&[7i64, -9]),
            Tensor::from_slice(&[0.1f64]).reshape([1, 1, 1]),
            Tensor::zeros([0, 4], (Kind::Float, Device::Cpu)),
            Tensor::from(3.0f32),
        ] {
            let back = decode("test", 0, &encode(&t).unwrap()).unwrap();
            assert_eq!(back.size(), t.size());
            assert_eq!(back.kind(), t.kind());
            assert!(back.equal(&t));
        }
        assert!(decode("test", 0, &[6, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2]).is_err());
        assert!(decode("test", 0, &[]).is_err());
    }
}
