//! The data-parallel side of a run: the place of this process from torchrun's variables,
//! the rendezvous through rank 0's TCPStore, and the few collectives the loop needs besides
//! Partial FC's and the gradients' (agreement on stopping and on errors, the start-up
//! broadcast of the model, sharded evaluation). One process: every call is a no-op.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use swinface_distributed::{DataParallel, DistEnv, StoreCollectives, TcpStore};
use swinface_loss::{Collectives, SingleProcess};
use tch::{nn, Device, Tensor};

use crate::eval::error::EvalError;
use crate::eval::shard::{self, Gather, Row, Shard};

pub struct Dist {
    pub env: DistEnv,
    /// Agreement, errors and evaluation rows: small messages through the store.
    comm: Option<StoreCollectives>,
    /// The model broadcast, the gradients and Partial FC: NCCL on GPUs (with the `nccl`
    /// feature), otherwise the store.
    group: Option<Arc<dyn DataParallel>>,
    gather: Option<StoreGather>,
    /// Rank 0's process id: names the checkpoint directory being written, the same on
    /// every rank.
    run_id: u32,
}

impl Dist {
    /// Reads RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (none set: one process)
    /// and, with more than one rank, meets the others at rank 0's store. Every wait gives up
    /// after `timeout`. Ranks training on `device` = CUDA join an NCCL group as well.
    pub fn init(timeout: Duration, bucket_bytes: usize, device: Device) -> Result<Self> {
        let env = DistEnv::from_env()
            .context("the distributed launch variables")?
            .unwrap_or_else(DistEnv::single);
        if !env.is_distributed() {
            return Ok(Self {
                env,
                comm: None,
                group: None,
                gather: None,
                run_id: std::process::id(),
            });
        }
        let store = TcpStore::rendezvous(&env, timeout).with_context(|| {
            format!(
                "rank {} of {}: rendezvous at {}:{} (rank 0 hosts it) failed within {timeout:?}",
                env.rank, env.world_size, env.master_addr, env.master_port
            )
        })?;
        let comm = StoreCollectives::new(Arc::new(store), env.rank, env.world_size, timeout)?
            .with_bucket_bytes(bucket_bytes)?;
        let id = comm.broadcast_bytes(&std::process::id().to_le_bytes(), 0)?;
        let run_id = u32::from_le_bytes(
            id.as_slice()
                .try_into()
                .context("rank 0 sent a malformed run id")?,
        );
        let group = data_plane(&env, &comm, device, timeout, bucket_bytes)?;
        tracing::info!(
            "rank {} of {}: gradients through {}",
            env.rank,
            env.world_size,
            group.backend()
        );
        Ok(Self {
            gather: Some(StoreGather(comm.clone())),
            group: Some(group),
            comm: Some(comm),
            env,
            run_id,
        })
    }

    pub fn rank(&self) -> usize {
        self.env.rank
    }

    pub fn world_size(&self) -> usize {
        self.env.world_size
    }

    /// Rank 0 writes the shared outputs (logs, TensorBoard, checkpoints, summary).
    pub fn is_main(&self) -> bool {
        self.env.rank == 0
    }

    pub fn run_id(&self) -> u32 {
        self.run_id
    }

    /// The group that averages gradients, when there is more than one rank.
    pub fn data_parallel(&self) -> Option<Arc<dyn DataParallel>> {
        self.group.clone()
    }

    /// Partial FC's collectives.
    pub fn collectives(&self) -> Box<dyn Collectives> {
        match &self.group {
            Some(g) => Box::new(g.clone()),
            None => Box::new(SingleProcess),
        }
    }

    /// How evaluation shares its samples.
    pub fn gather(&self) -> &dyn Gather {
        match &self.gather {
            Some(g) => g,
            None => &shard::SingleProcess,
        }
    }

    /// The GPU of this rank (its LOCAL_RANK), or `device` unchanged.
    pub fn device(&self, device: Device) -> Result<Device> {
        match device {
            Device::Cuda(_) if self.env.is_distributed() => {
                let count = tch::Cuda::device_count() as usize;
                if self.env.local_rank >= count {
                    bail!(
                        "LOCAL_RANK {} needs GPU {}, this node has {count}",
                        self.env.local_rank,
                        self.env.local_rank
                    );
                }
                Ok(Device::Cuda(self.env.local_rank))
            }
            other => Ok(other),
        }
    }

    /// Copies rank 0's parameters and buffers to every rank (DDP does the same at start).
    pub fn broadcast_variables(&self, vs: &nn::VarStore) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tensors: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
        group
            .broadcast_all(&mut tensors, 0)
            .context("cannot broadcast the model from rank 0")
    }

    /// True on every rank when `flag` is true on any.
    pub fn any(&self, flag: bool) -> Result<bool> {
        match &self.comm {
            Some(c) => c.any(flag).context("cannot agree with the other ranks"),
            None => Ok(flag),
        }
    }

    /// Succeeds on every rank when `local` succeeded on every rank; otherwise every rank
    /// gets an error (its own, or the first failing rank's message).
    pub fn all_ok<T>(&self, what: &str, local: Result<T>) -> Result<T> {
        let Some(comm) = &self.comm else {
            return local;
        };
        let message = match &local {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        };
        let all = comm
            .exchange_bytes("all_ok", message.as_bytes())
            .with_context(|| format!("{what}: cannot reach the other ranks"))?;
        let value = local?;
        if let Some((rank, text)) = all.iter().enumerate().find(|(_, m)| !m.is_empty()) {
            bail!(
                "{what} failed on rank {rank}: {}",
                String::from_utf8_lossy(text)
            );
        }
        Ok(value)
    }

    /// Tells the other ranks this one failed, so that they stop at their next collective.
    pub fn abort(&self, err: &anyhow::Error) {
        if let Some(c) = &self.comm {
            c.abort(&format!("{err:#}"));
        }
    }

    /// Rank 0 waits until the others are done with its store.
    pub fn shutdown(&self) -> Result<()> {
        match &self.comm {
            Some(c) => c
                .shutdown()
                .context("the other ranks did not finish after rank 0"),
            None => Ok(()),
        }
    }
}

/// The gradients' group: NCCL for CUDA ranks when built with the `nccl` feature (through
/// the same store), otherwise the store itself.
fn data_plane(
    env: &DistEnv,
    comm: &StoreCollectives,
    device: Device,
    timeout: Duration,
    bucket_bytes: usize,
) -> Result<Arc<dyn DataParallel>> {
    if !matches!(device, Device::Cuda(_)) {
        return Ok(Arc::new(comm.clone()));
    }
    #[cfg(feature = "nccl")]
    {
        let group = swinface_distributed::nccl::ProcessGroupNccl::new(
            comm.store(),
            env.rank,
            env.world_size,
            timeout,
        )
        .with_context(|| format!("rank {}: cannot join the NCCL group", env.rank))?
        .with_bucket_bytes(bucket_bytes);
        Ok(Arc::new(group))
    }
    #[cfg(not(feature = "nccl"))]
    {
        let _ = (timeout, bucket_bytes);
        if env.rank == 0 {
            tracing::warn!(
                "this binary was built without the nccl feature: the GPU ranks average their \
                 gradients through rank 0's TCPStore on the CPU, which is slow; build with \
                 SWINFACE_NCCL=1 ./train.sh (cargo's --features nccl)"
            );
        }
        Ok(Arc::new(comm.clone()))
    }
}

/// Evaluation rows exchanged as JSON through the store.
struct StoreGather(StoreCollectives);

impl Gather for StoreGather {
    fn shard(&self) -> Shard {
        Shard {
            rank: self.0.rank(),
            world_size: self.0.world_size(),
        }
    }

    fn all_gather(&self, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
        let failed = |message: String| EvalError::Gather { message };
        let bytes = serde_json::to_vec(&rows).map_err(|e| failed(e.to_string()))?;
        let all = self
            .0
            .exchange_bytes("eval_gather", &bytes)
            .map_err(|e| failed(e.to_string()))?;
        let mut out = Vec::new();
        for part in all {
            let rows: Vec<Row> = serde_json::from_slice(&part)
                .map_err(|e| failed(format!("a rank sent malformed rows: {e}")))?;
            out.extend(rows);
        }
        Ok(out)
    }
}
