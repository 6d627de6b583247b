//! The order in which one rank visits a dataset in one epoch, with the semantics of
//! `torch.utils.data.distributed.DistributedSampler`:
//!
//! - shuffle: a seeded permutation per epoch (here a Fisher-Yates shuffle driven by ChaCha8
//!   seeded from (seed, epoch): the same for every rank, different from `torch.randperm`'s
//!   values but with the same properties); no shuffle: 0, 1, 2, ...;
//! - `drop_last = false` (torch's default): the order is extended by wrapping around to a
//!   multiple of the world size; `drop_last = true`: the tail is cut to a multiple instead;
//! - rank r takes positions r, r + W, r + 2W, ...

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::LoaderError;
use crate::augment::rng::splitmix64;

/// Sampler settings (torch's `DistributedSampler` arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    pub shuffle: bool,
    pub seed: u64,
    pub drop_last: bool,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            shuffle: true,
            seed: 0,
            drop_last: false,
        }
    }
}

/// One rank's share of a dataset of `len` samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedSampler {
    len: usize,
    rank: usize,
    world_size: usize,
    config: SamplerConfig,
}

impl DistributedSampler {
    pub fn new(
        len: usize,
        rank: usize,
        world_size: usize,
        config: SamplerConfig,
    ) -> Result<Self, LoaderError> {
        if world_size == 0 || rank >= world_size {
            return Err(LoaderError::Config {
                message: format!("rank {rank} is not in a world of {world_size}"),
            });
        }
        if len == 0 {
            return Err(LoaderError::Config {
                message: "the dataset is empty".into(),
            });
        }
        Ok(Self {
            len,
            rank,
            world_size,
            config,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Samples per rank per epoch (torch's `num_samples`).
    pub fn num_samples(&self) -> usize {
        if self.config.drop_last && !self.len.is_multiple_of(self.world_size) {
            // ceil((len - W) / W) in torch, which is len // W here (0 when len < W).
            self.len / self.world_size
        } else {
            self.len.div_ceil(self.world_size)
        }
    }

    /// Positions over all ranks (torch's `total_size`).
    pub fn total_size(&self) -> usize {
        self.num_samples() * self.world_size
    }

    /// This rank's dataset indices for `epoch`, in visiting order.
    pub fn indices(&self, epoch: u64) -> Vec<usize> {
        let order = if self.config.shuffle {
            permutation(self.len, self.config.seed, epoch)
        } else {
            (0..self.len).collect()
        };
        (self.rank..self.total_size())
            .step_by(self.world_size)
            .map(|position| order[position % self.len])
            .collect()
    }
}

/// A uniformly random permutation of 0..len determined by (seed, epoch).
pub fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut key = [0u8; 32];
    let mut state = splitmix64(seed ^ 0x5045_524D); // "PERM"
    for (chunk, word) in key.chunks_exact_mut(8).zip([epoch, 1, 2, 3]) {
        state = splitmix64(state ^ word);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(
        len: usize,
        rank: usize,
        world: usize,
        shuffle: bool,
        drop_last: bool,
    ) -> DistributedSampler {
        let config = SamplerConfig {
            shuffle,
            seed: 5,
            drop_last,
        };
        DistributedSampler::new(len, rank, world, config).unwrap()
    }

    #[test]
    fn pads_by_wrapping_and_strides_by_rank() {
        // 10 samples over 4 ranks: total 12, order 0..9 then 0, 1.
        let shards: Vec<Vec<usize>> = (0..4)
            .map(|r| sampler(10, r, 4, false, false).indices(0))
            .collect();
        assert_eq!(shards[0], vec![0, 4, 8]);
        assert_eq!(shards[1], vec![1, 5, 9]);
        assert_eq!(shards[2], vec![2, 6, 0]);
        assert_eq!(shards[3], vec![3, 7, 1]);
        // Padding longer than the dataset repeats it: 2 samples over 5 ranks.
        let shards: Vec<Vec<usize>> = (0..5)
            .map(|r| sampler(2, r, 5, false, false).indices(0))
            .collect();
        assert_eq!(shards, vec![vec![0], vec![1], vec![0], vec![1], vec![0]]);
    }

    #[test]
    fn drop_last_cuts_the_tail() {
        let s = sampler(10, 1, 4, false, true);
        assert_eq!(s.num_samples(), 2);
        assert_eq!(s.indices(0), vec![1, 5]);
        assert_eq!(sampler(3, 0, 4, false, true).num_samples(), 0);
        assert_eq!(sampler(8, 3, 4, false, true).indices(0), vec![3, 7]);
    }

    #[test]
    fn shuffled_epochs_are_permutations_shared_by_ranks() {
        let world = 3;
        let len = 100;
        let mut union: Vec<usize> = (0..world)
            .flat_map(|r| sampler(len, r, world, true, false).indices(7))
            .collect();
        assert_eq!(union.len(), 102);
        union.sort_unstable();
        union.dedup();
        assert_eq!(union, (0..len).collect::<Vec<_>>());
        let a = sampler(len, 0, world, true, false);
        assert_eq!(a.indices(7), a.indices(7));
        assert_ne!(a.indices(7), a.indices(8));
        assert_ne!(a.indices(0), (0..len).step_by(world).collect::<Vec<_>>());
    }

    #[test]
    fn permutation_is_uniform_enough() {
        // Where index 0 lands over 6000 epochs of a 6-element permutation: each slot
        // ~ Binomial(6000, 1/6), 4 sigma = 115.
        let mut counts = [0usize; 6];
        for epoch in 0..6000 {
            let p = permutation(6, 1, epoch);
            counts[p.iter().position(|&v| v == 0).unwrap()] += 1;
        }
        for c in counts {
            assert!((c as f64 - 1000.0).abs() < 115.0, "{counts:?}");
        }
    }

    #[test]
    fn rejects_bad_rank_and_empty_dataset() {
        assert!(DistributedSampler::new(10, 2, 2, SamplerConfig::default()).is_err());
        assert!(DistributedSampler::new(10, 0, 0, SamplerConfig::default()).is_err());
        assert!(DistributedSampler::new(0, 0, 1, SamplerConfig::default()).is_err());
    }
}
