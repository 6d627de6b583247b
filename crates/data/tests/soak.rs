//! Soak test of the loader: 100,000 samples read from JPEG files on disk, decoded, flipped
//! and batched over many epochs. Memory (RSS) stays flat and no file descriptor is left
//! open after an epoch.

use std::path::{Path, PathBuf};

use swinface_data::augment::{RecognitionTransform, SampleRng};
use swinface_data::error::DataError;
use swinface_data::loader::{
    DataLoader, Dataset, LoaderConfig, Sample, SampleImage, SamplerConfig,
};
use swinface_data::synth::{write_all, SynthConfig};

/// The RAF-DB training images `swinface synth` wrote, read from disk on every load.
struct JpegFiles(Vec<PathBuf>);

impl Dataset for JpegFiles {
    type Label = usize;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn load(&self, index: usize, _rng: &mut SampleRng) -> Result<Sample<usize>, DataError> {
        let path = &self.0[index];
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Ok(Sample {
            image: SampleImage::Encoded(bytes),
            label: index,
        })
    }
}

/// Resident size after handing the allocator's free pages back to the system: without the
/// trim, glibc's per-thread arenas keep freed batches resident for a while, and when one
/// more arena happens to hold a spare batch the size steps up by tens of MiB without any
/// leak (seen once in CI: +40 MiB between the middle and the last third).
fn resident_bytes() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free memory to the system; it is safe to call
        // at any time from any thread.
        unsafe { malloc_trim(0) };
    }
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn a_hundred_thousand_samples_keep_memory_flat_and_close_every_file() {
    const SAMPLES: usize = 100_000;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak_data");
    let _ = std::fs::remove_dir_all(&root);
    let synth = SynthConfig {
        raf_train: 1000,
        ..SynthConfig::small()
    };
    write_all(&root, &synth).expect("synthetic dataset");
    let raf = root.join("RAF/basic");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&raf)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("train_"))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 1000);
    let len = files.len();

    let config = LoaderConfig {
        batch_size: 50,
        sampler: SamplerConfig {
            shuffle: true,
            seed: 3,
            drop_last: true,
        },
        num_threads: 2,
        ..LoaderConfig::default()
    };
    let loader = DataLoader::new(
        JpegFiles(files),
        RecognitionTransform::default(),
        0,
        1,
        config,
    )
    .unwrap();
    let epochs = SAMPLES.div_ceil(len);
    let (mut rss, mut fds) = (Vec::new(), Vec::new());
    let mut seen = 0usize;
    let mut checksum = 0f64;
    for epoch in 0..epochs as u64 {
        for batch in loader.epoch(epoch).unwrap() {
            let batch = batch.unwrap();
            assert_eq!(batch.bad_samples, 0);
            seen += batch.labels.len();
            checksum += batch.images.mean(tch::Kind::Float).double_value(&[]);
        }
        rss.push(resident_bytes());
        fds.push(open_files());
    }
    assert!(seen >= SAMPLES, "{seen} samples");
    assert!(checksum.is_finite() && checksum != 0.0);
    // Descriptors: the same count after every epoch (the loader's threads and files are
    // gone when an epoch's iterator is).
    assert!(
        fds.iter().all(|&n| n == fds[0]),
        "open files per epoch: {fds:?}"
    );
    // Memory: after a warm-up the resident size (trimmed, see `resident_bytes`) wobbles by a
    // few batches' worth but has no trend: the last third of the run sits where the middle third did. A leak of 1 KiB
    // per sample would add 33 MiB over a third.
    let mib: Vec<u64> = rss.iter().step_by(5).map(|b| b >> 20).collect();
    let mean = |s: &[u64]| s.iter().sum::<u64>() / s.len() as u64;
    let third = rss.len() / 3;
    let (first, second) = rss[third..].split_at(third);
    eprintln!(
        "soak: {seen} samples in {epochs} epochs, {} fds; RSS every 5 epochs (MiB): {mib:?}",
        fds[0]
    );
    assert!(
        mean(second) <= mean(first) + (16 << 20),
        "RSS mean grew from {} MiB to {} MiB: {mib:?}",
        mean(first) >> 20,
        mean(second) >> 20
    );
    assert!(
        second.iter().max() <= Some(&(first.iter().max().unwrap() + (32 << 20))),
        "RSS peak grew: {mib:?}"
    );
}
