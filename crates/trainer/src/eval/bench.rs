//! `swinface bench eval`: images/s of the verification evaluation (decode, resize-if-needed,
//! normalise, embed image and flip, 10-fold protocol) on an LFW-style `.bin`, and the time
//! that implies for a 12,000-image LFW set. Prints one JSON line in the shape of
//! `scripts/baseline/bench_eval.py`'s, for `scripts/bench_eval.sh`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use swinface_data::augment::EvalTransform;
use swinface_data::formats::verification_bin::{read_bin, write_bin};
use swinface_data::preprocess::DecodeLimits;
use swinface_data::synth::{encode_jpeg, person, photo, population, render, AgeRange, ImagePolicy};
use swinface_model::{SwinFace, SwinFaceConfig};
use tch::{nn, Device};

use super::bins::{evaluate_bin, NamedBin};
use super::metrics::verification::{evaluate, FOLDS};
use super::runner::Runner;
use super::shard::SingleProcess;

/// Images of insightface's LFW set (6,000 pairs).
const LFW_IMAGES: usize = 12_000;

#[derive(Debug, clap::Args)]
pub struct EvalBenchArgs {
    /// The `.bin` to evaluate; written first (synthetic faces) when it does not exist.
    #[arg(long, value_name = "FILE")]
    pub bin: PathBuf,
    /// Pairs of the synthetic `.bin` when it has to be written.
    #[arg(long, default_value_t = 300)]
    pub pairs: usize,
    /// `tiny` (SwinFaceConfig::tiny_demo) or `full` (the released architecture).
    #[arg(long, default_value = "tiny")]
    pub model: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed repetitions (the median is reported) after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Writes `pairs` pairs of synthetic faces (half the same person) as a `.bin`.
pub fn write_synthetic_bin(path: &Path, pairs: usize) -> Result<()> {
    const SEED: u64 = 12_000;
    let policy = ImagePolicy::portraits();
    let mut images = Vec::with_capacity(2 * pairs);
    let mut issame = Vec::with_capacity(pairs);
    for k in 0..pairs as u64 {
        let same = k % 2 == 0;
        let (a, b) = (2 * k, if same { 2 * k } else { 2 * k + 1 });
        for (id, shot) in [(a, 0), (b, 1)] {
            let who = person(SEED, population::VERIFICATION, id, AgeRange::default());
            let spec = photo(
                SEED,
                population::VERIFICATION,
                id,
                shot,
                &who,
                None,
                &policy,
            );
            images.push(encode_jpeg(&render(&spec), 92)?);
        }
        issame.push(same);
    }
    write_bin(path, &images, &issame)?;
    Ok(())
}

pub fn run(args: &EvalBenchArgs) -> Result<()> {
    let device = match args.device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => anyhow::bail!("unknown device {other:?} (cpu or cuda)"),
    };
    let cfg = match args.model.as_str() {
        "tiny" => SwinFaceConfig::tiny_demo(),
        "full" => SwinFaceConfig::default(),
        other => anyhow::bail!("unknown model {other:?} (tiny or full)"),
    };
    if !args.bin.is_file() {
        write_synthetic_bin(&args.bin, args.pairs)
            .with_context(|| format!("cannot write {}", args.bin.display()))?;
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = SwinFace::new(&vs.root(), &cfg).context("cannot build the model")?;
    let runner = Runner {
        model: &model,
        device,
        batch_size: args.batch.max(1),
        transform: EvalTransform::default(),
        limits: DecodeLimits::default(),
        gather: &SingleProcess,
    };
    // Timed: reading and parsing the file, decoding, both forward passes, the protocol.
    let mut times = Vec::with_capacity(args.reps);
    let mut images = 0;
    let mut accuracy = 0.0;
    for i in 0..=args.reps {
        let start = Instant::now();
        let set = read_bin(&args.bin)?;
        let bin = NamedBin {
            name: "bench".into(),
            path: args.bin.clone(),
            set,
        };
        let result = evaluate_bin(&runner, &bin)?;
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
        images = result.images;
        accuracy = result.metrics.accuracy;
    }
    times.sort_by(f64::total_cmp);
    let seconds = times[times.len() / 2];

    // The protocol alone at LFW's size (6,000 pairs of random unit embeddings), so that the
    // extrapolation scales only the per-image work.
    let dim = usize::try_from(cfg.embedding_size)?;
    let lfw_pairs = LFW_IMAGES / 2;
    let embeddings = random_unit_rows(LFW_IMAGES, dim);
    let issame: Vec<bool> = (0..lfw_pairs).map(|k| k % 2 == 0).collect();
    let start = Instant::now();
    evaluate(&embeddings, dim, &issame, FOLDS, 1.0)?;
    let protocol_lfw = start.elapsed().as_secs_f64();
    let start = Instant::now();
    evaluate(
        &embeddings[..images * dim],
        dim,
        &issame[..images / 2],
        FOLDS,
        1.0,
    )?;
    let protocol_here = start.elapsed().as_secs_f64();
    let per_image = (seconds - protocol_here).max(0.0) / images as f64;
    let result = json!({
        "impl": "rust",
        "model": args.model,
        "threads": tch::get_num_threads(),
        "images": images,
        "seconds": seconds,
        "images_per_s": images as f64 / seconds,
        "protocol_seconds_lfw": protocol_lfw,
        "extrapolated_lfw_12000_s": per_image * LFW_IMAGES as f64 + protocol_lfw,
        "accuracy": accuracy,
    });
    println!("{result}");
    Ok(())
}

/// `rows` random unit vectors (splitmix64 -> uniform(-1, 1), normalised).
fn random_unit_rows(rows: usize, dim: usize) -> Vec<f64> {
    let mut state = 0x5EED_u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64) - 1.0
    };
    let mut out = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let row: Vec<f64> = (0..dim).map(|_| next()).collect();
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        out.extend(row.iter().map(|v| v / norm));
    }
    out
}
