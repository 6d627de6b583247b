//! Evaluation sharded over ranks: rank `r` of `w` takes samples `r, r + w, r + 2w, ...` (the
//! official `np.arange(rank, len, world_size)`), and per-sample results are gathered back
//! through a [`Gather`], then put in dataset order so that every metric is computed over the
//! whole set exactly as on one process. The distributed backend implements [`Gather`]; this
//! module has the single-process one.

use serde::{Deserialize, Serialize};

use super::error::EvalError;

/// This process's share of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub rank: usize,
    pub world_size: usize,
}

impl Shard {
    pub const SINGLE: Shard = Shard {
        rank: 0,
        world_size: 1,
    };

    // The distributed backend (a later issue) builds shards; tests do now.
    #[allow(dead_code)]
    pub fn new(rank: usize, world_size: usize) -> Result<Self, EvalError> {
        if world_size == 0 || rank >= world_size {
            return Err(EvalError::Config {
                message: format!("rank {rank} is not in a world of {world_size}"),
            });
        }
        Ok(Self { rank, world_size })
    }

    /// The sample indices of this shard, in order.
    pub fn indices(&self, len: usize) -> impl Iterator<Item = usize> {
        (self.rank..len).step_by(self.world_size.max(1))
    }
}

/// One sample's result: its index in the dataset and the numbers the metric needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub index: usize,
    pub values: Vec<f32>,
}

/// How ranks exchange per-sample results.
pub trait Gather: Send + Sync {
    fn shard(&self) -> Shard;

    /// Every rank's rows, from all ranks (each rank receives all of them).
    fn all_gather(&self, rows: Vec<Row>) -> Result<Vec<Row>, EvalError>;
}

/// One process holds every sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Gather for SingleProcess {
    fn shard(&self) -> Shard {
        Shard::SINGLE
    }

    fn all_gather(&self, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
        Ok(rows)
    }
}

/// Gathers `rows` from all ranks and returns them in dataset order, checking that each of the
/// `len` samples came back exactly once.
pub fn gather_in_order(
    gather: &dyn Gather,
    rows: Vec<Row>,
    len: usize,
) -> Result<Vec<Row>, EvalError> {
    let mut all = gather.all_gather(rows)?;
    all.sort_by_key(|r| r.index);
    let complete = all.len() == len && all.iter().enumerate().all(|(i, r)| r.index == i);
    if !complete {
        return Err(EvalError::Gather {
            message: format!(
                "expected one result for each of {len} samples, got {} results",
                all.len()
            ),
        });
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Ranks simulated in one process: each shard's rows are collected, and `all_gather`
    /// returns everything once every rank has contributed.
    struct Simulated {
        shard: Shard,
        pool: std::sync::Arc<Mutex<Vec<Row>>>,
    }

    impl Gather for Simulated {
        fn shard(&self) -> Shard {
            self.shard
        }
        fn all_gather(&self, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
            let mut pool = self.pool.lock().unwrap();
            pool.extend(rows);
            Ok(pool.clone())
        }
    }

    #[test]
    fn shards_cover_every_sample_once_and_come_back_in_order() {
        let len = 11;
        let shards: Vec<Shard> = (0..3).map(|r| Shard::new(r, 3).unwrap()).collect();
        assert_eq!(
            shards[1].indices(len).collect::<Vec<_>>(),
            vec![1, 4, 7, 10]
        );
        let pool = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut last = Vec::new();
        // Ranks contribute in reverse order; the last call sees every row.
        for shard in shards.iter().rev() {
            let g = Simulated {
                shard: *shard,
                pool: pool.clone(),
            };
            let rows = shard
                .indices(len)
                .map(|i| Row {
                    index: i,
                    values: vec![i as f32],
                })
                .collect();
            last = g.all_gather(rows).unwrap();
        }
        let g = Simulated {
            shard: shards[0],
            pool: std::sync::Arc::new(Mutex::new(Vec::new())),
        };
        let ordered = gather_in_order(&g, last, len).unwrap();
        assert!(ordered
            .iter()
            .enumerate()
            .all(|(i, r)| r.values == vec![i as f32]));
        assert!(gather_in_order(&SingleProcess, vec![], 1).is_err());
        assert!(Shard::new(3, 3).is_err());
    }
}
