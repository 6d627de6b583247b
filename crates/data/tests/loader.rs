//! The data loader: determinism across thread counts, resume equality, torch
//! `DistributedSampler` semantics (index lists checked against torch itself for
//! shuffle=False), bad-sample substitution and the bad fraction limit, and the prefetch bound.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use swinface_data::augment::{
    AnalysisAugmentConfig, AnalysisTransform, RecognitionTransform, SampleRng,
};
use swinface_data::error::DataError;
use swinface_data::loader::{
    DataLoader, Dataset, DistributedSampler, LoaderConfig, LoaderError, Sample, SampleImage,
    SamplerConfig,
};
use swinface_data::preprocess::RgbImage;

/// Images drawn from the index; some indices give undecodable bytes, the rest PNG bytes or
/// decoded images. Counts loads.
struct Synthetic {
    len: usize,
    bad: HashSet<usize>,
    encode: bool,
    loads: AtomicUsize,
}

impl Synthetic {
    fn new(len: usize) -> Self {
        Self {
            len,
            bad: HashSet::new(),
            encode: false,
            loads: AtomicUsize::new(0),
        }
    }

    fn image(index: usize) -> RgbImage {
        RgbImage::from_fn(112, 112, |x, y| {
            let v = (x as usize * 3 + y as usize * 5 + index * 37) % 251;
            image::Rgb([v as u8, (index % 256) as u8, (x ^ y) as u8])
        })
    }
}

impl Dataset for Synthetic {
    type Label = usize;

    fn len(&self) -> usize {
        self.len
    }

    fn load(&self, index: usize, _rng: &mut SampleRng) -> Result<Sample<usize>, DataError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let image = if self.bad.contains(&index) {
            SampleImage::Encoded(b"\xff\xd8\xff truncated jpeg".to_vec())
        } else if self.encode {
            let mut bytes = Vec::new();
            Self::image(index)
                .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
                .unwrap();
            SampleImage::Encoded(bytes)
        } else {
            SampleImage::Decoded(Self::image(index))
        };
        Ok(Sample {
            image,
            label: index,
        })
    }

    fn describe(&self, index: usize) -> String {
        format!("synthetic/{index:05}.jpg")
    }
}

fn config(batch_size: usize, threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        sampler: SamplerConfig {
            shuffle: true,
            seed: 11,
            drop_last: false,
        },
        num_threads: threads,
        ..LoaderConfig::default()
    }
}

fn collect<L>(
    batches: impl Iterator<Item = Result<swinface_data::loader::Batch<L>, LoaderError>>,
) -> Vec<swinface_data::loader::Batch<L>> {
    batches.map(|b| b.unwrap()).collect()
}

fn assert_same_batches(
    a: &[swinface_data::loader::Batch<usize>],
    b: &[swinface_data::loader::Batch<usize>],
) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.position, y.position);
        assert_eq!(x.labels, y.labels, "batch {}", x.position);
        assert_eq!(x.indices, y.indices, "batch {}", x.position);
        assert!(
            x.images.equal(&y.images),
            "images of batch {} differ",
            x.position
        );
    }
}

#[test]
fn deterministic_across_thread_counts_and_in_flight() {
    let run = |threads: usize, in_flight: usize| {
        let mut cfg = config(6, threads);
        cfg.batches_in_flight = in_flight;
        let mut dataset = Synthetic::new(75);
        dataset.encode = true;
        let loader = DataLoader::new(
            dataset,
            AnalysisTransform::new(AnalysisAugmentConfig::default()),
            1,
            2,
            cfg,
        )
        .unwrap();
        collect(loader.epoch(3).unwrap())
    };
    let one = run(1, 1);
    // 75 samples over 2 ranks: 38 each, 6 full batches of 6 (the last 2 are dropped).
    assert_eq!(one.len(), 6);
    assert_eq!(one[0].images.size(), vec![6, 3, 112, 112]);
    assert_eq!(one[0].images.kind(), tch::Kind::Float);
    assert_same_batches(&one, &run(3, 3));
    assert_same_batches(&one, &run(2, 1));
}

#[test]
fn batches_follow_the_sampler_and_epochs_differ() {
    let loader = DataLoader::new(
        Synthetic::new(50),
        RecognitionTransform::default(),
        2,
        3,
        config(4, 2),
    )
    .unwrap();
    // 50 over 3 ranks: 17 per rank, 4 batches of 4.
    assert_eq!(loader.batches_per_epoch(), 4);
    let batches = collect(loader.epoch(0).unwrap());
    let seen: Vec<usize> = batches.iter().flat_map(|b| b.labels.clone()).collect();
    let expected = loader.sampler().indices(0);
    assert_eq!(seen, expected[..16].to_vec());
    let next: Vec<usize> = collect(loader.epoch(1).unwrap())
        .iter()
        .flat_map(|b| b.labels.clone())
        .collect();
    assert_ne!(seen, next, "a new epoch reshuffles");
    // The images are the dataset's, flipped or not, normalised.
    let first = &batches[0];
    let label = first.labels[0];
    let img = Synthetic::image(label);
    let v = first.images.double_value(&[0, 1, 0, 0]);
    assert!((v - (f64::from(img.get_pixel(0, 0).0[1]) / 255.0 - 0.5) / 0.5).abs() < 1e-6);
}

#[test]
fn resume_yields_the_remaining_batches_exactly() {
    let make = || {
        DataLoader::new(
            Synthetic::new(90),
            AnalysisTransform::new(AnalysisAugmentConfig::default()),
            0,
            1,
            config(8, 2),
        )
        .unwrap()
    };
    let loader = make();
    let full = collect(loader.epoch(4).unwrap());
    assert_eq!(full.len(), 11);
    // Interrupt after batch 3: a fresh loader (as after a restart) resumes at 4.
    let mut it = loader.epoch(4).unwrap();
    let taken: Vec<_> = (0..4).map(|_| it.next().unwrap().unwrap()).collect();
    assert_eq!(it.next_position(), 4);
    drop(it);
    let resumed = collect(make().resume(4, 4).unwrap());
    assert_same_batches(&taken, &full[..4]);
    assert_same_batches(&resumed, &full[4..]);
    assert_eq!(collect(loader.resume(4, 11).unwrap()).len(), 0);
    assert!(matches!(
        loader.resume(4, 12),
        Err(LoaderError::ResumeOutOfRange { batches: 11, .. })
    ));
}

#[test]
fn bad_samples_are_replaced_counted_and_limited() {
    let mut dataset = Synthetic::new(40);
    dataset.bad = [3usize, 17, 18].into_iter().collect();
    let mut cfg = config(5, 2);
    cfg.sampler.shuffle = false;
    cfg.max_bad_fraction = 0.1; // 4 of 40
    let loader =
        DataLoader::new(dataset, RecognitionTransform::default(), 0, 1, cfg.clone()).unwrap();
    let mut it = loader.epoch(0).unwrap();
    let batches: Vec<_> = it.by_ref().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 8);
    assert!(batches.iter().all(|b| b.labels.len() == 5));
    // Slot 3 takes index 4; slots 17 and 18 both end at 19 (18 fails as a substitute too).
    assert_eq!(batches[0].indices, vec![0, 1, 2, 4, 4]);
    assert_eq!(batches[3].indices, vec![15, 16, 19, 19, 19]);
    assert_eq!(batches[0].bad_samples, 1);
    assert_eq!(batches[3].bad_samples, 3); // 17, then 18 for slot 17; 18 for slot 18
    assert_eq!(it.bad_samples(), 4);

    // A limit of 3 (0.08 * 40, floored) is exceeded at batch 3: an error naming a bad file, then
    // nothing more.
    cfg.max_bad_fraction = 0.08;
    let mut dataset = Synthetic::new(40);
    dataset.bad = [3usize, 17, 18].into_iter().collect();
    let loader = DataLoader::new(dataset, RecognitionTransform::default(), 0, 1, cfg).unwrap();
    let mut it = loader.epoch(0).unwrap();
    for _ in 0..3 {
        it.next().unwrap().unwrap();
    }
    let err = it.next().unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            LoaderError::TooManyBadSamples {
                bad: 4,
                allowed: 3,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("synthetic/00018.jpg"), "{text}");
    assert!(it.next().is_none());
}

#[test]
fn a_run_of_failures_longer_than_the_substitutes_is_an_error() {
    let mut dataset = Synthetic::new(30);
    dataset.bad = (5..30).collect();
    let mut cfg = config(10, 1);
    cfg.sampler.shuffle = false;
    cfg.max_bad_fraction = 1.0;
    cfg.max_substitutes = 3;
    let loader = DataLoader::new(dataset, RecognitionTransform::default(), 0, 1, cfg).unwrap();
    let mut it = loader.epoch(0).unwrap();
    let err = it.next().unwrap().unwrap_err();
    assert!(
        matches!(err, LoaderError::NoLoadableSample { attempts: 4, .. }),
        "{err}"
    );
}

#[test]
fn wrong_sized_images_are_bad_samples_for_recognition() {
    struct Small;
    impl Dataset for Small {
        type Label = ();
        fn len(&self) -> usize {
            8
        }
        fn load(&self, _: usize, _: &mut SampleRng) -> Result<Sample<()>, DataError> {
            Ok(Sample {
                image: SampleImage::Decoded(RgbImage::new(100, 112)),
                label: (),
            })
        }
    }
    let loader =
        DataLoader::new(Small, RecognitionTransform::default(), 0, 1, config(4, 1)).unwrap();
    let err = loader.epoch(0).unwrap().next().unwrap().unwrap_err();
    assert!(err.to_string().contains("100x112"), "{err}");
}

#[test]
fn the_producer_runs_at_most_prefetch_plus_in_flight_ahead() {
    let dataset = Arc::new(Synthetic::new(400));
    let mut cfg = config(4, 2);
    cfg.prefetch_batches = 2;
    cfg.batches_in_flight = 1;
    let loader = DataLoader::new(
        Arc::clone(&dataset),
        RecognitionTransform::default(),
        0,
        1,
        cfg,
    )
    .unwrap();
    let mut it = loader.epoch(0).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // Two batches queued and one waiting to be queued.
    let bound = (2 + 1) * 4;
    assert_eq!(dataset.loads.load(Ordering::SeqCst), bound);
    it.next().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dataset.loads.load(Ordering::SeqCst), bound + 4);
    // Dropping mid-epoch stops the producer.
    drop(it);
    let after = dataset.loads.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(dataset.loads.load(Ordering::SeqCst), after);
}

#[test]
fn invalid_configurations_are_errors() {
    let t = RecognitionTransform::default;
    assert!(DataLoader::new(Synthetic::new(10), t(), 0, 1, config(0, 1)).is_err());
    assert!(DataLoader::new(Synthetic::new(10), t(), 1, 1, config(2, 1)).is_err());
    assert!(DataLoader::new(Synthetic::new(0), t(), 0, 1, config(2, 1)).is_err());
    let mut cfg = config(2, 1);
    cfg.max_bad_fraction = 1.5;
    assert!(DataLoader::new(Synthetic::new(10), t(), 0, 1, cfg).is_err());
    if !tch::Cuda::is_available() {
        let mut cfg = config(2, 1);
        cfg.pin_memory = true;
        assert!(DataLoader::new(Synthetic::new(10), t(), 0, 1, cfg).is_err());
    }
}

/// Batches come out pinned when CUDA is there (runs only on a machine with a GPU).
#[test]
fn pinned_batches_on_cuda() {
    if !tch::Cuda::is_available() {
        eprintln!("no CUDA: pinned-memory check skipped");
        return;
    }
    let mut cfg = config(4, 2);
    cfg.pin_memory = true;
    let loader = DataLoader::new(
        Synthetic::new(16),
        RecognitionTransform::default(),
        0,
        1,
        cfg,
    )
    .unwrap();
    for batch in loader.epoch(0).unwrap() {
        let batch = batch.unwrap();
        assert!(batch.images.is_pinned(tch::Device::Cuda(0)));
        let on_gpu = batch
            .images
            .to_device_(tch::Device::Cuda(0), tch::Kind::Float, true, false);
        assert!(on_gpu.to_device(tch::Device::Cpu).equal(&batch.images));
    }
}

fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the project setup",
        python.display()
    );
    python
}

#[test]
fn sampler_matches_torch_without_shuffle() {
    let cases: Vec<(usize, usize, bool)> = vec![
        (10, 4, false),
        (10, 4, true),
        (2, 5, false),
        (3, 4, true),
        (17, 1, false),
        (100, 8, false),
        (101, 8, true),
        (64, 8, true),
    ];
    let spec: Vec<String> = cases
        .iter()
        .map(|(n, w, d)| format!("({n}, {w}, {})", if *d { "True" } else { "False" }))
        .collect();
    let script = format!(
        "from torch.utils.data.distributed import DistributedSampler\n\
         for n, w, d in [{}]:\n\
         \x20   for r in range(w):\n\
         \x20       s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=d)\n\
         \x20       print(' '.join(map(str, list(s))))\n",
        spec.join(", ")
    );
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(&script)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    for (n, w, drop_last) in cases {
        for r in 0..w {
            let torch: Vec<usize> = lines
                .next()
                .unwrap()
                .split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect();
            let config = SamplerConfig {
                shuffle: false,
                seed: 0,
                drop_last,
            };
            let ours = DistributedSampler::new(n, r, w, config).unwrap();
            assert_eq!(
                ours.indices(0),
                torch,
                "n={n} world={w} rank={r} drop_last={drop_last}"
            );
            assert_eq!(ours.num_samples(), torch.len());
        }
    }
}
