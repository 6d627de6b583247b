//! What the end-to-end trainer tests share: the small synthetic dataset and the tiny
//! multitask model's config over it.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;
use swinface_data::synth::{write_all, SynthConfig};

/// The small synthetic dataset (24 identities of 6 images), written once per test binary
/// under `CARGO_TARGET_TMPDIR/name`.
pub fn small_data(name: &str) -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let config = SynthConfig {
            identities: 24,
            images_per_identity: 6,
            ..SynthConfig::small()
        };
        write_all(&dir, &config).expect("synthetic dataset");
        dir
    })
}

/// A tiny model (the demo's structure, smaller) on `data`, `batch` images per stream, output
/// under `dir/out`: the dataset's own data config, then the model, then each of `layers`
/// (YAML mappings) merged on top in order. Returns the written `dir/config.yaml`.
pub fn write_tiny_config(dir: &Path, data: &Path, batch: u32, layers: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(data.join("swinface_data.yaml")).unwrap();
    let mut map: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap();
    map.retain(|_, v| !v.is_null());
    let base = format!(
        "output: {out}
device: cpu
torch_threads: 1
num_workers: 1
embedding_size: 32
swin:
  patch_size: 4
  embed_dim: 16
  depths: [2, 2, 2]
  num_heads: [1, 2, 4]
fam_feature_dim: 16
fam_in_chans: 160
recognition_bz: {batch}
age_gender_bz: {batch}
CelebA_bz: {batch}
expression_bz: {batch}
val_batch_size: 32
fp16: false
",
        out = dir.join("out").display()
    );
    for layer in std::iter::once(base.as_str()).chain(layers.iter().copied()) {
        let over: serde_yaml::Mapping = serde_yaml::from_str(layer).unwrap_or_default();
        for (k, v) in over {
            map.insert(k, v);
        }
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_yaml::to_string(&map).unwrap()).unwrap();
    path
}

/// A finished process's stdout then stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The last recorded losses of each step in `output/losses.jsonl`.
pub fn losses(output: &Path) -> BTreeMap<u64, Value> {
    let text = std::fs::read_to_string(output.join("losses.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["step"].as_u64().unwrap(), v)
        })
        .collect()
}
