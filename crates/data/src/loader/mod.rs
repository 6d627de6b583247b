//! The training data loader: one rank's shard of a dataset ([`sampler`]), decoded and
//! transformed in parallel on a rayon pool, assembled into `[B, 3, S, S]` float tensors
//! (pinned for CUDA when asked), and handed over in order through a bounded queue.
//!
//! Determinism: a batch's content depends only on (seed, epoch, rank, world size, batch
//! position). Each sample draws from its own random stream, keyed by its position in the
//! epoch's padded order, so neither the number of threads nor the scheduling changes
//! anything, and [`DataLoader::resume`] at (epoch, position) yields exactly the batches an
//! uninterrupted run would from there.
//!
//! Bad samples: a sample that cannot be read, decoded or transformed is logged (naming it)
//! and counted, and its slot is filled by the next dataset index that loads (index plus 1,
//! 2, ..., each with its own stream), so that batches keep their size (ranks exchange
//! fixed-size batches). When the bad samples of an epoch exceed `max_bad_fraction` of its
//! samples, the iterator returns [`LoaderError::TooManyBadSamples`] and stops.
//! Incomplete final batches are dropped, as torch's `drop_last=True`.

mod dataset;
mod decode;
pub mod sampler;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub use dataset::{Dataset, Sample, SampleImage};
pub use decode::decode_rgb8_bytes;
pub use sampler::{DistributedSampler, SamplerConfig};

use crate::augment::{sample_rng, Transform};
use crate::preprocess::DecodeLimits;

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoaderConfig {
    /// Samples per batch (per rank).
    pub batch_size: usize,
    pub sampler: SamplerConfig,
    /// Decode/augment threads; 0 uses every core.
    pub num_threads: usize,
    /// Finished batches that may wait in the queue for the consumer.
    pub prefetch_batches: usize,
    /// Batches built at the same time (more hides the tail of each batch).
    pub batches_in_flight: usize,
    /// Put batches in page-locked memory for fast, asynchronous copies to CUDA.
    pub pin_memory: bool,
    /// Largest fraction of an epoch's samples that may fail before the loader stops.
    pub max_bad_fraction: f64,
    /// How many following indices are tried in place of a bad sample.
    pub max_substitutes: usize,
    pub decode_limits: DecodeLimits,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 128,
            sampler: SamplerConfig::default(),
            num_threads: 0,
            prefetch_batches: 4,
            batches_in_flight: 2,
            pin_memory: false,
            max_bad_fraction: 0.001,
            max_substitutes: 16,
            decode_limits: DecodeLimits::default(),
        }
    }
}

/// Errors of the loader. Per-sample failures are not errors unless too many.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("invalid loader configuration: {message}")]
    Config { message: String },
    #[error("cannot start the loader's thread pool")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    #[error("cannot start the loader thread")]
    Spawn(#[source] std::io::Error),
    #[error(
        "{bad} samples of epoch {epoch} could not be loaded, over the limit of {allowed} \
         ({fraction} of {samples}; see the warnings above; the last was {last})"
    )]
    TooManyBadSamples {
        epoch: u64,
        bad: usize,
        allowed: usize,
        fraction: f64,
        samples: usize,
        last: String,
    },
    #[error(
        "batch {position} of epoch {epoch}: {attempts} samples in a row from dataset index \
         {index} could not be loaded (the last was {last})"
    )]
    NoLoadableSample {
        epoch: u64,
        position: usize,
        index: usize,
        attempts: usize,
        last: String,
    },
    #[error("cannot resume at batch {position}: an epoch has {batches} batches")]
    ResumeOutOfRange { position: usize, batches: usize },
    #[error("batch {position} of epoch {epoch}: a loader thread panicked: {message}")]
    Panicked {
        epoch: u64,
        position: usize,
        message: String,
    },
    #[error("cannot allocate or pin the batch tensor")]
    Tensor(#[from] tch::TchError),
}

/// One batch, ready for the device.
#[derive(Debug)]
pub struct Batch<L> {
    /// [B, 3, S, S] float32 on the CPU (pinned when configured).
    pub images: Tensor,
    pub labels: Vec<L>,
    /// Dataset index each row came from (after any substitution).
    pub indices: Vec<usize>,
    pub epoch: u64,
    /// Position of this batch in the epoch; resume at `position + 1` to continue after it.
    pub position: usize,
    /// Samples of this batch that failed and were replaced.
    pub bad_samples: usize,
}

struct Shared<D, T> {
    dataset: D,
    transform: T,
    config: LoaderConfig,
    rank: usize,
    world_size: usize,
}

/// A rank's loader over `dataset` with `transform`.
pub struct DataLoader<D: Dataset, T: Transform> {
    shared: Arc<Shared<D, T>>,
    sampler: DistributedSampler,
    pool: Arc<rayon::ThreadPool>,
}

impl<D, T> DataLoader<D, T>
where
    D: Dataset + 'static,
    T: Transform + 'static,
{
    pub fn new(
        dataset: D,
        transform: T,
        rank: usize,
        world_size: usize,
        config: LoaderConfig,
    ) -> Result<Self, LoaderError> {
        let bad = |message: String| Err(LoaderError::Config { message });
        if config.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if config.prefetch_batches == 0 || config.batches_in_flight == 0 {
            return bad("prefetch_batches and batches_in_flight must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&config.max_bad_fraction) {
            return bad(format!(
                "max_bad_fraction {} is not in [0, 1]",
                config.max_bad_fraction
            ));
        }
        if config.pin_memory && !tch::Cuda::is_available() {
            return bad("pin_memory needs CUDA, which is not available".into());
        }
        let sampler =
            DistributedSampler::new(dataset.len(), rank, world_size, config.sampler.clone())?;
        let threads = if config.num_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.num_threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("swinface-data-{i}"))
            .build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                dataset,
                transform,
                config,
                rank,
                world_size,
            }),
            sampler,
            pool: Arc::new(pool),
        })
    }

    pub fn sampler(&self) -> &DistributedSampler {
        &self.sampler
    }

    pub fn dataset(&self) -> &D {
        &self.shared.dataset
    }

    /// Full batches per epoch (the incomplete last one is dropped).
    pub fn batches_per_epoch(&self) -> usize {
        self.sampler.num_samples() / self.shared.config.batch_size
    }

    /// The batches of `epoch` from the start.
    pub fn epoch(&self, epoch: u64) -> Result<Batches<D::Label>, LoaderError> {
        self.resume(epoch, 0)
    }

    /// The batches of `epoch` from batch `position` on, exactly as an uninterrupted
    /// iteration would give them (`position == batches_per_epoch()` gives none).
    pub fn resume(&self, epoch: u64, position: usize) -> Result<Batches<D::Label>, LoaderError> {
        let batches = self.batches_per_epoch();
        if position > batches {
            return Err(LoaderError::ResumeOutOfRange { position, batches });
        }
        let config = &self.shared.config;
        let samples = batches * config.batch_size;
        let allowed = (config.max_bad_fraction * samples as f64).floor() as usize;
        let (sender, receiver) = mpsc::sync_channel(config.prefetch_batches);
        let stop = Arc::new(AtomicBool::new(false));
        let bad_total = Arc::new(AtomicUsize::new(0));
        let producer = Producer {
            shared: Arc::clone(&self.shared),
            pool: Arc::clone(&self.pool),
            order: Arc::new(self.sampler.indices(epoch)),
            epoch,
            start: position,
            end: batches,
            allowed,
            samples,
            stop: Arc::clone(&stop),
            bad_total: Arc::clone(&bad_total),
        };
        let handle = std::thread::Builder::new()
            .name("swinface-loader".into())
            .spawn(move || producer.run(sender))
            .map_err(LoaderError::Spawn)?;
        Ok(Batches {
            receiver: Some(receiver),
            stop,
            producer: Some(handle),
            bad_total,
            next_position: position,
        })
    }
}

/// The batches of one epoch, in order; the producer runs ahead by at most
/// `prefetch_batches + batches_in_flight` batches.
pub struct Batches<L> {
    receiver: Option<Receiver<Result<Batch<L>, LoaderError>>>,
    stop: Arc<AtomicBool>,
    producer: Option<JoinHandle<()>>,
    bad_total: Arc<AtomicUsize>,
    next_position: usize,
}

impl<L> Batches<L> {
    /// Bad samples met so far in this iteration (including in batches still queued).
    pub fn bad_samples(&self) -> usize {
        self.bad_total.load(Ordering::Relaxed)
    }

    /// Position of the next batch this iterator will return.
    pub fn next_position(&self) -> usize {
        self.next_position
    }
}

impl<L> Iterator for Batches<L> {
    type Item = Result<Batch<L>, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.receiver.as_ref()?.recv().ok()?;
        match &item {
            Ok(batch) => self.next_position = batch.position + 1,
            Err(_) => self.receiver = None,
        }
        Some(item)
    }
}

impl<L> Drop for Batches<L> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver unblocks a producer waiting on a full queue.
        self.receiver = None;
        if let Some(handle) = self.producer.take() {
            let _ = handle.join();
        }
    }
}

/// A batch as built by a worker, before the in-order bookkeeping.
struct Built<L> {
    batch: Batch<L>,
    last_bad: Option<String>,
}

/// A finished (or failed) batch build, by position.
type Done<L> = (usize, Result<Built<L>, LoaderError>);

struct Producer<D, T> {
    shared: Arc<Shared<D, T>>,
    pool: Arc<rayon::ThreadPool>,
    order: Arc<Vec<usize>>,
    epoch: u64,
    start: usize,
    end: usize,
    allowed: usize,
    samples: usize,
    stop: Arc<AtomicBool>,
    bad_total: Arc<AtomicUsize>,
}

impl<D, T> Producer<D, T>
where
    D: Dataset + 'static,
    T: Transform + 'static,
{
    /// Launches up to `batches_in_flight` batch builds on the pool, and forwards finished
    /// batches in order into the bounded queue (whose `send` blocks while it is full).
    fn run(self, sender: SyncSender<Result<Batch<D::Label>, LoaderError>>) {
        let in_flight = self.shared.config.batches_in_flight;
        let (done_sender, done) = mpsc::channel::<Done<D::Label>>();
        let mut pending = BTreeMap::new();
        let (mut next_launch, mut next_send) = (self.start, self.start);
        let mut outstanding = 0usize;
        let mut bad_so_far = 0usize;
        loop {
            while next_launch < self.end
                && next_launch - next_send < in_flight
                && !self.stop.load(Ordering::Relaxed)
            {
                self.launch(next_launch, done_sender.clone());
                next_launch += 1;
                outstanding += 1;
            }
            // Nothing outstanding: every batch was sent, or the consumer has gone.
            if outstanding == 0 {
                return;
            }
            let Ok((position, result)) = done.recv() else {
                return;
            };
            outstanding -= 1;
            pending.insert(position, result);
            while let Some(result) = pending.remove(&next_send) {
                let item = result.and_then(|built| {
                    bad_so_far += built.batch.bad_samples;
                    self.bad_total.store(bad_so_far, Ordering::Relaxed);
                    if bad_so_far > self.allowed {
                        return Err(LoaderError::TooManyBadSamples {
                            epoch: self.epoch,
                            bad: bad_so_far,
                            allowed: self.allowed,
                            fraction: self.shared.config.max_bad_fraction,
                            samples: self.samples,
                            last: built.last_bad.unwrap_or_default(),
                        });
                    }
                    Ok(built.batch)
                });
                let failed = item.is_err();
                if sender.send(item).is_err() || failed {
                    self.stop.store(true, Ordering::Relaxed);
                    // Let launched builds finish, so that none outlives the iteration.
                    for _ in 0..outstanding {
                        if done.recv().is_err() {
                            break;
                        }
                    }
                    return;
                }
                next_send += 1;
            }
        }
    }

    /// Starts building batch `position` on the pool; the result goes to `done`.
    fn launch(&self, position: usize, done: mpsc::Sender<Done<D::Label>>) {
        let job = BatchJob {
            shared: Arc::clone(&self.shared),
            order: Arc::clone(&self.order),
            epoch: self.epoch,
            position,
        };
        self.pool.spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.build()))
                .unwrap_or_else(|panic| {
                    Err(LoaderError::Panicked {
                        epoch: job.epoch,
                        position,
                        message: panic_message(&panic),
                    })
                });
            let _ = done.send((position, result));
        });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Building one batch on the pool.
struct BatchJob<D, T> {
    shared: Arc<Shared<D, T>>,
    order: Arc<Vec<usize>>,
    epoch: u64,
    position: usize,
}

/// A sample's outcome: its label and dataset index, and the samples that failed first.
struct Loaded<L> {
    label: L,
    index: usize,
    failures: Vec<String>,
}

impl<D: Dataset, T: Transform> BatchJob<D, T> {
    fn build(&self) -> Result<Built<D::Label>, LoaderError> {
        let config = &self.shared.config;
        let batch_size = config.batch_size;
        let side = i64::from(self.shared.transform.output_size());
        let per_image = 3 * (side * side) as usize;
        let first = self.position * batch_size;
        let indices = &self.order[first..first + batch_size];

        let mut images = Tensor::f_empty(
            [batch_size as i64, 3, side, side],
            (Kind::Float, Device::Cpu),
        )?;
        let loaded: Vec<Result<Loaded<D::Label>, LoaderError>> = {
            // SAFETY: `images` was just allocated as a contiguous float32 tensor of
            // batch_size * per_image elements; nothing else refers to it until this slice,
            // confined to this block, is gone.
            let buffer = unsafe {
                std::slice::from_raw_parts_mut(
                    images.data_ptr() as *mut f32,
                    batch_size * per_image,
                )
            };
            buffer
                .par_chunks_mut(per_image)
                .zip(indices.par_iter())
                .enumerate()
                .map(|(k, (out, &index))| self.load_sample(first + k, index, out))
                .collect()
        };
        let mut labels = Vec::with_capacity(batch_size);
        let mut used = Vec::with_capacity(batch_size);
        let mut bad_samples = 0;
        let mut last_bad = None;
        for sample in loaded {
            let sample = sample?;
            bad_samples += sample.failures.len();
            if let Some(last) = sample.failures.last() {
                last_bad = Some(last.clone());
            }
            labels.push(sample.label);
            used.push(sample.index);
        }
        if config.pin_memory {
            images = images.f_pin_memory(Device::Cuda(0))?;
        }
        Ok(Built {
            batch: Batch {
                images,
                labels,
                indices: used,
                epoch: self.epoch,
                position: self.position,
                bad_samples,
            },
            last_bad,
        })
    }

    /// Loads the sample at `slot` of the rank's epoch order (dataset `index`), or the next
    /// indices in its place when it fails.
    fn load_sample(
        &self,
        slot: usize,
        index: usize,
        out: &mut [f32],
    ) -> Result<Loaded<D::Label>, LoaderError> {
        let shared = &self.shared;
        let len = shared.dataset.len();
        // Position in the padded order over all ranks: unique per sample of the epoch.
        let global = (slot * shared.world_size + shared.rank) as u64;
        let seed = shared.config.sampler.seed;
        let mut failures = Vec::new();
        for attempt in 0..=shared.config.max_substitutes {
            let candidate = (index + attempt) % len;
            let mut rng = sample_rng(seed, self.epoch, global, attempt as u64);
            let result = shared
                .dataset
                .load(candidate, &mut rng)
                .map_err(|e| error_chain(&e))
                .and_then(|sample| {
                    let image = match sample.image {
                        SampleImage::Decoded(image) => image,
                        SampleImage::Encoded(bytes) => {
                            let name = shared.dataset.describe(candidate);
                            decode_rgb8_bytes(
                                &bytes,
                                Path::new(&name),
                                &shared.config.decode_limits,
                            )
                            .map_err(|e| error_chain(&e))?
                        }
                    };
                    shared
                        .transform
                        .apply_into(image, &mut rng, out)
                        .map_err(|e| {
                            format!(
                                "{}: {}",
                                shared.dataset.describe(candidate),
                                error_chain(&e)
                            )
                        })?;
                    Ok(sample.label)
                });
            match result {
                Ok(label) => {
                    return Ok(Loaded {
                        label,
                        index: candidate,
                        failures,
                    })
                }
                Err(message) => {
                    tracing::warn!("skipping bad sample: {message}");
                    failures.push(message);
                }
            }
        }
        Err(LoaderError::NoLoadableSample {
            epoch: self.epoch,
            position: self.position,
            index,
            attempts: failures.len(),
            last: failures.pop().unwrap_or_default(),
        })
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
