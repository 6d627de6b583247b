//! Shared by the checkpoint tests: VarStores built by hand from the official key list,
//! the project's Python (tests only), scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{nn, Device, Kind, Tensor};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/parity/official_keys.tsv`: every official key with shape and dtype, in
/// state-dict order.
pub fn official_keys() -> Vec<(String, Vec<i64>, Kind)> {
    let path = repo_root().join("tests/fixtures/parity/official_keys.tsv");
    let text = std::fs::read_to_string(&path).expect("official_keys.tsv");
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "bad line {line:?}");
            let shape = if cols[1] == "scalar" {
                Vec::new()
            } else {
                cols[1].split('x').map(|d| d.parse().unwrap()).collect()
            };
            let kind = match cols[2] {
                "float32" => Kind::Float,
                "int64" => Kind::Int64,
                other => panic!("dtype {other}"),
            };
            (cols[0].to_owned(), shape, kind)
        })
        .collect()
}

/// Adds `tensor` under the dotted `key` (tch forbids dots inside one name).
pub fn add_var(vs: &nn::VarStore, key: &str, tensor: Tensor) {
    let (head, last) = key.rsplit_once('.').unwrap_or(("", key));
    let mut path = vs.root();
    if !head.is_empty() {
        for part in head.split('.') {
            path = path / part;
        }
    }
    let _ = path.add(last, tensor, false);
}

/// Random values of the given kind (normal floats, integers in [0, 1000)).
pub fn random(shape: &[i64], kind: Kind) -> Tensor {
    match kind {
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16 => {
            Tensor::randn(shape, (Kind::Float, Device::Cpu)).to_kind(kind)
        }
        Kind::Bool => Tensor::randint(2, shape, (Kind::Int64, Device::Cpu)).to_kind(Kind::Bool),
        _ => Tensor::randint(1000, shape, (Kind::Int64, Device::Cpu)).to_kind(kind),
    }
}

/// A VarStore with the given keys filled by `random` after seeding.
pub fn varstore(keys: &[(String, Vec<i64>, Kind)], seed: i64) -> nn::VarStore {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    for (key, shape, kind) in keys {
        add_var(&vs, key, random(shape, *kind));
    }
    vs
}

/// A VarStore with the given keys, all zeros.
pub fn zero_varstore(keys: &[(String, Vec<i64>, Kind)]) -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    for (key, shape, kind) in keys {
        add_var(
            &vs,
            key,
            Tensor::zeros(shape.as_slice(), (*kind, Device::Cpu)),
        );
    }
    vs
}

/// Bitwise equality (same kind, shape and bytes).
pub fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.kind() == b.kind() && a.size() == b.size() && {
        let n = a.numel() * a.kind().elt_size_in_bytes();
        let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
        a.contiguous().copy_data_u8(&mut x, a.numel());
        b.contiguous().copy_data_u8(&mut y, b.numel());
        x == y
    }
}

pub fn python() -> PathBuf {
    let path = repo_root().join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} missing: run scripts/setup.sh",
        path.display()
    );
    path
}

/// Runs `script` with `args`; panics with stderr on failure; returns stdout.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("start python");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
