//! Helpers shared by the integration tests: the project's Python, temp dirs, a tiny RNG.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use swinface_pickle::{Global, Value};

/// The project virtualenv's interpreter (tests only; the library never runs Python).
pub fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        path.exists(),
        "{} missing: run scripts/setup.sh to create the virtualenv",
        path.display()
    );
    path
}

/// Runs `script` with `args`, panicking with its stderr on failure; returns stdout.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("failed to start python");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A fresh empty directory under the target dir's tmp (removed first if present).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

pub fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

pub fn int(i: i64) -> Value {
    Value::Int(i)
}

/// Python source of the object both sides agree on (`make(with_sets)`).
pub const PY_OBJECT: &str = r#"
import collections
def make(with_sets):
    shared = [1, 2]
    obj = {
        "name": "swin",
        "unicode": "h\u00e9llo \u2713",
        "ints": [0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31, 2**63 - 1, -2**63, 2**64, -2**70],
        "floats": [0.0, -1.5, 1e300, float("inf"), 5e-324],
        "flags": [True, False, None],
        "bytes": b"\x00\xff\x80abc",
        "empty": (b"", "", [], {}, ()),
        "tuple": (1, (2, 3), [4, {"k": "v"}], (5, 6, 7, 8)),
        "od": collections.OrderedDict([("b", 1), ("a", 2)]),
        "big_list": list(range(2500)),
        "shared": [shared, shared],
        7: "int key",
    }
    if with_sets:
        obj["set"] = {3, 1, 2}
        obj["frozen"] = frozenset([5])
    return obj
"#;

/// The Rust side of `make(with_sets)`.
pub fn expected_object(with_sets: bool) -> Value {
    let ints = [
        0i64,
        1,
        255,
        256,
        65535,
        65536,
        -1,
        -(1 << 31),
        (1 << 31) - 1,
        1 << 31,
        i64::MAX,
        i64::MIN,
    ]
    .into_iter()
    .map(Value::Int)
    .chain([
        Value::Long(vec![0, 0, 0, 0, 0, 0, 0, 0, 1]),
        Value::Long(vec![0, 0, 0, 0, 0, 0, 0, 0, 0xc0]),
    ])
    .collect();
    let shared = Value::List(vec![int(1), int(2)]);
    let mut entries = vec![
        (s("name"), s("swin")),
        (s("unicode"), s("h\u{e9}llo \u{2713}")),
        (s("ints"), Value::List(ints)),
        (
            s("floats"),
            Value::List(
                [0.0, -1.5, 1e300, f64::INFINITY, 5e-324]
                    .into_iter()
                    .map(Value::Float)
                    .collect(),
            ),
        ),
        (
            s("flags"),
            Value::List(vec![Value::Bool(true), Value::Bool(false), Value::None]),
        ),
        (s("bytes"), Value::Bytes(b"\x00\xff\x80abc".to_vec())),
        (
            s("empty"),
            Value::Tuple(vec![
                Value::Bytes(Vec::new()),
                s(""),
                Value::List(Vec::new()),
                Value::Dict(Vec::new()),
                Value::Tuple(Vec::new()),
            ]),
        ),
        (
            s("tuple"),
            Value::Tuple(vec![
                int(1),
                Value::Tuple(vec![int(2), int(3)]),
                Value::List(vec![int(4), Value::Dict(vec![(s("k"), s("v"))])]),
                Value::Tuple(vec![int(5), int(6), int(7), int(8)]),
            ]),
        ),
        (
            s("od"),
            Value::ordered_dict(vec![(s("b"), int(1)), (s("a"), int(2))]),
        ),
        (
            s("big_list"),
            Value::List((0..2500).map(Value::Int).collect()),
        ),
        (s("shared"), Value::List(vec![shared.clone(), shared])),
        (int(7), s("int key")),
    ];
    if with_sets {
        entries.push((s("set"), Value::Set(vec![int(1), int(2), int(3)])));
        entries.push((s("frozen"), Value::FrozenSet(vec![int(5)])));
    }
    Value::Dict(entries)
}

pub fn global(module: &str, name: &str) -> Global {
    Global::new(module, name)
}
