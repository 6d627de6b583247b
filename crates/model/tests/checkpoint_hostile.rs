//! (d) Hostile and broken `.pt` files: code-running pickles are refused without running,
//! lying sizes and truncated archives give errors, never panics or huge allocations.

mod checkpoint_common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use checkpoint_common::{official_keys, run_python, scratch_dir, varstore, zero_varstore};
use swinface_model::checkpoint::{
    load_any, load_official_into, read_official, write_official, CheckpointError,
    OfficialWriteOptions,
};
use swinface_pickle::{write_pickle, Global, Object, Protocol, ReadErrorKind, Value};
use zip::write::SimpleFileOptions;

/// torch.save files whose pickle runs a command; torch.load(weights_only=False) proves each
/// is live on a twin file, then every reader of ours must refuse it, naming the global.
#[test]
fn pickles_that_run_code_are_refused_and_nothing_runs() {
    let dir = scratch_dir("hostile_code");
    let script = r#"
import builtins, os, pathlib, sys, torch
d = pathlib.Path(sys.argv[1])
class System:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, ("touch " + self.marker,))
class Eval:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (builtins.eval, ("open(%r, 'w').close()" % self.marker,))
for name, cls in (("system", System), ("eval", Eval)):
    probe = str(d / (name + ".torch_ran"))
    torch.save({"state_dict_backbone": {}, "x": cls(probe)}, d / (name + "_probe.pt"))
    torch.load(d / (name + "_probe.pt"), weights_only=False)
    assert os.path.exists(probe), name
    sd = {"w": torch.ones(2)}
    torch.save({"state_dict_backbone": sd, "x": cls(str(d / (name + ".rust_ran")))}, d / (name + ".pt"))
"#;
    run_python(script, &[&dir]);
    let keys: Vec<_> = vec![("backbone.w".to_owned(), vec![2], tch::Kind::Float)];
    for (name, global) in [("system", "posix.system"), ("eval", "__builtin__.eval")] {
        assert!(dir.join(format!("{name}.torch_ran")).exists());
        let path = dir.join(format!("{name}.pt"));
        let mut vs = zero_varstore(&keys);
        let results = [
            read_official(&path).map(|_| ()),
            load_official_into(&path, &mut vs).map(|_| ()),
            load_any(&path, &mut vs).map(|_| ()),
        ];
        for result in results {
            match result {
                Err(CheckpointError::Pickle { source, .. }) => {
                    assert_eq!(source.kind, ReadErrorKind::ForbiddenGlobal(global.into()));
                    assert!(source.to_string().contains(global));
                }
                other => panic!("{name}: expected a refused global, got {other:?}"),
            }
        }
        assert!(!dir.join(format!("{name}.rust_ran")).exists(), "{name} ran");
    }
}

fn global(module: &str, name: &str) -> Global {
    Global::new(module, name)
}

/// `_rebuild_tensor_v2` of storage `key` (`numel` elements of `class`) viewed by offset,
/// size and stride.
fn tensor(class: &str, key: &str, numel: i64, offset: i64, size: &[i64], stride: &[i64]) -> Value {
    let ints = |v: &[i64]| Value::Tuple(v.iter().copied().map(Value::Int).collect());
    let storage = Value::PersId(Box::new(Value::Tuple(vec![
        Value::from("storage"),
        Value::Global(global("torch", class)),
        Value::from(key),
        Value::from("cpu"),
        Value::Int(numel),
    ])));
    Value::Object(Box::new(Object::reduce(
        global("torch._utils", "_rebuild_tensor_v2"),
        vec![
            storage,
            Value::Int(offset),
            ints(size),
            ints(stride),
            Value::Bool(false),
            Value::ordered_dict(Vec::new()),
        ],
    )))
}

fn one_tensor_checkpoint(t: Value) -> Value {
    Value::Dict(vec![(
        Value::from("state_dict_backbone"),
        Value::ordered_dict(vec![(Value::from("w"), t)]),
    )])
}

/// A torch.save-shaped zip with `root` as its pickle and the given storage entries.
fn craft(path: &Path, root: &Value, storages: &[(&str, Vec<u8>)], byteorder: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("weird_top/data.pkl", opts).unwrap();
    zip.write_all(&write_pickle(root, Protocol::V2).unwrap())
        .unwrap();
    zip.start_file("weird_top/byteorder", opts).unwrap();
    zip.write_all(byteorder).unwrap();
    for (key, bytes) in storages {
        zip.start_file(format!("weird_top/data/{key}"), opts)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file("weird_top/version", opts).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap();
}

/// Named storage entries of a crafted archive.
type Storages<'a> = Vec<(&'a str, Vec<u8>)>;

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

#[test]
fn lying_sizes_and_strides_are_errors() {
    let dir = scratch_dir("hostile_sizes");
    let path = dir.join("crafted.pt");
    let read = |root: Value, storages: &[(&str, Vec<u8>)]| {
        craft(&path, &root, storages, b"little");
        let started = Instant::now();
        let result = read_official(&path);
        assert!(started.elapsed() < Duration::from_secs(5));
        result
    };

    // A sane crafted file reads, under any top folder name, including a strided view.
    let ok = read(
        one_tensor_checkpoint(tensor("FloatStorage", "0", 12, 2, &[2, 3], &[1, 2])),
        &[("0", f32_bytes(12))],
    )
    .unwrap();
    let w = &ok.section("state_dict_backbone").unwrap()[0].1;
    let values: Vec<f32> = Vec::try_from(w.flatten(0, -1)).unwrap();
    assert_eq!(values, [2.0, 4.0, 6.0, 3.0, 5.0, 7.0]);

    let cases: Vec<(&str, Value, Storages, &str)> = vec![
        (
            "view beyond its storage",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 50, 0, &[10, 10], &[10, 1])),
            vec![("0", f32_bytes(50))],
            "reaches element 99 of a storage of 50",
        ),
        (
            "storage entry shorter than claimed",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 100, 0, &[100], &[1])),
            vec![("0", f32_bytes(50))],
            "entry holds 200 bytes, the pickle claims 400",
        ),
        (
            "absurd sizes",
            one_tensor_checkpoint(tensor(
                "FloatStorage",
                "0",
                4,
                0,
                &[1 << 20, 1 << 20],
                &[1, 1],
            )),
            vec![("0", f32_bytes(4))],
            "reaches element",
        ),
        (
            "size product overflows",
            one_tensor_checkpoint(tensor(
                "FloatStorage",
                "0",
                4,
                0,
                &[1 << 62, 1 << 62],
                &[0, 0],
            )),
            vec![("0", f32_bytes(4))],
            "overflows",
        ),
        (
            "absurd storage element count",
            one_tensor_checkpoint(tensor("DoubleStorage", "0", 1 << 62, 0, &[1], &[1])),
            vec![("0", f32_bytes(4))],
            "overflows",
        ),
        (
            "storage larger than the file",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 1 << 40, 0, &[1], &[1])),
            vec![("0", f32_bytes(4))],
            "more than the whole file",
        ),
        (
            "negative stride",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 4, 3, &[4], &[-1])),
            vec![("0", f32_bytes(4))],
            "negative offset, size or stride",
        ),
        (
            "stride-0 expansion to a huge view",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 1, 0, &[1 << 30], &[0])),
            vec![("0", f32_bytes(1))],
            "repeats a storage",
        ),
        (
            "sizes and strides of different lengths",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 4, 0, &[2, 2], &[1])),
            vec![("0", f32_bytes(4))],
            "2 sizes but 1 strides",
        ),
        (
            "one storage described twice differently",
            Value::Dict(vec![(
                Value::from("state_dict_backbone"),
                Value::ordered_dict(vec![
                    (
                        Value::from("a"),
                        tensor("FloatStorage", "0", 4, 0, &[4], &[1]),
                    ),
                    (
                        Value::from("b"),
                        tensor("IntStorage", "0", 4, 0, &[4], &[1]),
                    ),
                ]),
            )]),
            vec![("0", f32_bytes(4))],
            "described as",
        ),
    ];
    for (what, root, storages, needle) in cases {
        let err = read(root, &storages).expect_err(what);
        assert!(
            matches!(err, CheckpointError::BadTensor { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(needle), "{what}: {err}");
        assert!(
            err.to_string().contains("state_dict_backbone[\""),
            "{what}: {err}"
        );
    }

    let structural: Vec<(&str, Value, Storages, &[u8], &str)> = vec![
        (
            "missing storage entry",
            one_tensor_checkpoint(tensor("FloatStorage", "7", 4, 0, &[4], &[1])),
            vec![],
            b"little",
            "weird_top/data/7",
        ),
        (
            "big-endian storages",
            one_tensor_checkpoint(tensor("FloatStorage", "0", 4, 0, &[4], &[1])),
            vec![("0", f32_bytes(4))],
            b"big",
            "byteorder",
        ),
        (
            "a list at the top level",
            Value::List(vec![]),
            vec![],
            b"little",
            "a dict at the top level",
        ),
        (
            "a non-tensor in a state dict",
            Value::Dict(vec![(
                Value::from("state_dict_backbone"),
                Value::ordered_dict(vec![(Value::from("w"), Value::Int(3))]),
            )]),
            vec![],
            b"little",
            "state_dict_backbone[\"w\"]: expected a tensor, found int",
        ),
        (
            "a storage key that is a path",
            one_tensor_checkpoint(tensor("FloatStorage", "../0", 4, 0, &[4], &[1])),
            vec![("0", f32_bytes(4))],
            b"little",
            "storage key",
        ),
    ];
    for (what, root, storages, order, needle) in structural {
        craft(&path, &root, &storages, order);
        let err = read_official(&path).expect_err(what);
        assert!(
            matches!(err, CheckpointError::Structure { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(needle), "{what}: {err}");
    }

    // A storage class outside the allow-list is refused by the pickle reader itself.
    craft(
        &path,
        &one_tensor_checkpoint(tensor("ComplexFloatStorage", "0", 2, 0, &[2], &[1])),
        &[("0", f32_bytes(4))],
        b"little",
    );
    match read_official(&path) {
        Err(CheckpointError::Pickle { source, .. }) => assert_eq!(
            source.kind,
            ReadErrorKind::ForbiddenGlobal("torch.ComplexFloatStorage".into())
        ),
        other => panic!("expected a refused storage class, got {other:?}"),
    }
}

/// A small valid checkpoint, truncated and randomly corrupted: errors, not panics.
#[test]
fn truncated_and_corrupted_archives_are_errors() {
    let dir = scratch_dir("hostile_truncated");
    let keys: Vec<_> = official_keys()
        .into_iter()
        .filter(|(k, _, _)| k.starts_with("om.output_fcs.4"))
        .collect();
    let vs = varstore(&keys, 11);
    let good = dir.join("good.pt");
    write_official(&good, &vs, &OfficialWriteOptions::default()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(
        read_official(&good).unwrap().into_full_keys().len(),
        keys.len()
    );

    let bad = dir.join("bad.pt");
    let len = bytes.len();
    for cut in [0, 4, 30, len / 4, len / 2, len - 200, len - 22, len - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert!(
            read_official(&bad).is_err(),
            "cut at {cut} of {len} read fine"
        );
    }

    // Deterministic corruption: flip / overwrite bytes anywhere, including the pickle, the
    // storages and the central directory. Must never panic.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..300 {
        let mut data = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % len as u64) as usize;
            data[at] = match next() % 3 {
                0 => data[at] ^ (1 << (next() % 8)),
                1 => 0xff,
                _ => next() as u8,
            };
        }
        std::fs::write(&bad, &data).unwrap();
        let mut target = zero_varstore(&keys);
        match load_any(&bad, &mut target) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    // Every entry carries a CRC-32 that the reader checks, so most corruptions must fail;
    // the rest hit bytes nobody reads (timestamps, unused header fields).
    eprintln!("corrupted archives: {failed} errors, {ok} loaded");
    assert!(failed > 250, "{failed} failed, {ok} loaded");
}
