//! `swinface bench data`: images/s of decoding and the analysis streams' training
//! augmentation (timm's `rand-m9-mstd0.5-inc1` pipeline), through the real loader, from
//! 112x112 JPEG files.
//!
//! Prints one JSON line in the shape of `scripts/baseline/bench_data.py`'s, so that
//! `scripts/bench_data.sh` can run both and print the ratio. The clock starts when the
//! first batch arrives (thread start-up and the first fill of the pipeline are excluded, as
//! the baseline excludes its worker start-up) and stops at the last batch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use swinface_data::augment::{AnalysisAugmentConfig, AnalysisTransform, SampleRng, Transform};
use swinface_data::error::DataError;
use swinface_data::loader::{
    decode_rgb8_bytes, DataLoader, Dataset, LoaderConfig, Sample, SampleImage, SamplerConfig,
};
use swinface_data::preprocess::{DecodeLimits, RgbImage};

#[derive(Debug, clap::Args)]
pub struct DataBenchArgs {
    /// JPEG files to write and read per epoch.
    #[arg(long, default_value_t = 4096)]
    pub images: usize,
    /// Decode/augment threads (the per-core figure divides by this).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed epochs (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Folder for the JPEGs (kept, and reused when they are there); default: a temporary
    /// folder removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Only write the JPEGs into --dir and exit.
    #[arg(long, requires = "dir")]
    pub prepare_only: bool,
}

/// JPEG files read whole per sample, as a dataset of encoded images.
struct JpegFiles {
    paths: Vec<PathBuf>,
}

impl Dataset for JpegFiles {
    type Label = ();

    fn len(&self) -> usize {
        self.paths.len()
    }

    fn load(&self, index: usize, _rng: &mut SampleRng) -> Result<Sample<()>, DataError> {
        let path = &self.paths[index];
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Sample {
            image: SampleImage::Encoded(bytes),
            label: (),
        })
    }

    fn describe(&self, index: usize) -> String {
        self.paths[index].display().to_string()
    }
}

/// A face-sized test picture: smooth shading, edges and noise, so that JPEG has the
/// entropy of a real crop.
fn picture(index: usize) -> RgbImage {
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 41) as f32 - 20.0
    };
    let phase = index as f32 * 0.37;
    RgbImage::from_fn(112, 112, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let dx = (xf - 56.0) / 40.0;
        let dy = (yf - 60.0) / 52.0;
        let face = if dx * dx + dy * dy < 1.0 { 60.0 } else { 0.0 };
        let shade = 90.0 + 50.0 * (xf * 0.05 + phase).sin() * (yf * 0.04).cos() + face;
        let rgb =
            [shade + 20.0, shade, shade - 25.0].map(|v| (v + noise()).clamp(0.0, 255.0) as u8);
        image::Rgb(rgb)
    })
}

fn write_pictures(dir: &Path, count: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    (0..count)
        .map(|i| {
            let path = dir.join(format!("{i:06}.jpg"));
            if !path.exists() {
                let mut bytes = Vec::new();
                let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
                picture(i)
                    .write_with_encoder(encoder)
                    .context("cannot encode a JPEG")?;
                swinface_data::formats::atomic::write_atomic(&path, &bytes)?;
            }
            Ok(path)
        })
        .collect()
}

/// One epoch through the loader: (images after the first batch, seconds since it).
fn timed_epoch(
    loader: &DataLoader<JpegFiles, AnalysisTransform>,
    epoch: u64,
) -> Result<(usize, f64)> {
    let mut batches = loader.epoch(epoch)?;
    let first = batches.next().context("no batch")??;
    let start = Instant::now();
    let mut images = 0;
    drop(first);
    for batch in batches {
        images += batch?.labels.len();
    }
    Ok((images, start.elapsed().as_secs_f64()))
}

/// Single-threaded rates of decoding alone and of the augmentation alone.
fn stage_rates(paths: &[PathBuf]) -> Result<(f64, f64)> {
    let sample = &paths[..paths.len().min(512)];
    let bytes: Vec<Vec<u8>> = sample
        .iter()
        .map(std::fs::read)
        .collect::<std::io::Result<_>>()?;
    let limits = DecodeLimits::default();
    let start = Instant::now();
    let images: Vec<RgbImage> = bytes
        .iter()
        .zip(sample)
        .map(|(b, p)| decode_rgb8_bytes(b, p, &limits))
        .collect::<Result<_, _>>()?;
    let decode = images.len() as f64 / start.elapsed().as_secs_f64();
    let transform = AnalysisTransform::new(AnalysisAugmentConfig::default());
    let mut out = vec![0f32; 3 * 112 * 112];
    let start = Instant::now();
    for (i, img) in images.into_iter().enumerate() {
        let mut rng = swinface_data::augment::sample_rng(1, 0, i as u64, 0);
        transform.apply_into(img, &mut rng, &mut out)?;
    }
    let augment = sample.len() as f64 / start.elapsed().as_secs_f64();
    Ok((decode, augment))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(args: &DataBenchArgs) -> Result<()> {
    anyhow::ensure!(
        args.images >= 2 * args.batch,
        "--images must hold at least two batches"
    );
    anyhow::ensure!(
        args.threads >= 1 && args.reps >= 1,
        "--threads and --reps must be at least 1"
    );
    let temp = std::env::temp_dir().join(format!("swinface-bench-data-{}", std::process::id()));
    let dir = args.dir.clone().unwrap_or_else(|| temp.clone());
    let paths = write_pictures(&dir, args.images)?;
    if args.prepare_only {
        return Ok(());
    }
    let config = LoaderConfig {
        batch_size: args.batch,
        sampler: SamplerConfig {
            shuffle: true,
            seed: 0,
            drop_last: false,
        },
        num_threads: args.threads,
        ..LoaderConfig::default()
    };
    let transform = AnalysisTransform::new(AnalysisAugmentConfig::default());
    let loader = DataLoader::new(
        JpegFiles {
            paths: paths.clone(),
        },
        transform,
        0,
        1,
        config,
    )?;
    let mut rates = Vec::with_capacity(args.reps);
    // One untimed epoch warms the page cache.
    timed_epoch(&loader, 0)?;
    for rep in 0..args.reps {
        let (images, seconds) = timed_epoch(&loader, rep as u64 + 1)?;
        rates.push(images as f64 / seconds);
    }
    let (decode, augment) = stage_rates(&paths)?;
    let per_s = median(&mut rates.clone());
    println!(
        "{}",
        json!({
            "impl": "rust",
            "threads": args.threads,
            "batch": args.batch,
            "images": args.images,
            "images_per_s": per_s,
            "images_per_s_per_core": per_s / args.threads as f64,
            "reps_images_per_s": rates,
            "single_thread_decode_per_s": decode,
            "single_thread_augment_per_s": augment,
        })
    );
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(())
}
