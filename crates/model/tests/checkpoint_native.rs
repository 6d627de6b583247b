//! (e) The native safetensors format: bit-exact round trip with metadata, atomic writes,
//! format detection, and the file read by Python's safetensors.

mod checkpoint_common;

use std::collections::BTreeMap;

use checkpoint_common::{add_var, random, run_python, same_bits, scratch_dir, zero_varstore};
use swinface_model::checkpoint::{
    detect_format, load_any, load_native_into, read_native, save_native, write_official,
    CheckpointError, CheckpointFormat, OfficialWriteOptions,
};
use tch::{nn, Device, Kind};

type Spec = (String, Vec<i64>, Kind);

fn specs() -> Vec<Spec> {
    [
        (
            "backbone.layers.0.blocks.1.attn.qkv.weight",
            vec![6, 4],
            Kind::Float,
        ),
        ("backbone.layers.10.norm.weight", vec![4], Kind::Half),
        ("backbone.layers.2.norm.weight", vec![4], Kind::BFloat16),
        (
            "fam.nets.3.conv.convs.2.weight",
            vec![2, 1, 3, 3],
            Kind::Double,
        ),
        ("fam.nets.0.norm.num_batches_tracked", vec![], Kind::Int64),
        (
            "backbone.layers.0.blocks.0.attn.relative_position_index",
            vec![49, 49],
            Kind::Int64,
        ),
        ("tss.a", vec![3], Kind::Int),
        ("tss.b", vec![3], Kind::Int16),
        ("om.c", vec![5], Kind::Int8),
        ("om.d", vec![5], Kind::Uint8),
        ("om.e", vec![5], Kind::Bool),
        ("om.output_fcs.41.bias", vec![0], Kind::Float),
    ]
    .into_iter()
    .map(|(k, s, d)| (k.to_owned(), s, d))
    .collect()
}

fn filled(specs: &[Spec], seed: i64) -> nn::VarStore {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    for (key, shape, kind) in specs {
        add_var(&vs, key, random(shape, *kind));
    }
    vs
}

fn metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "model_config".to_owned(),
            r#"{"network":"swin_t","embedding_size":512}"#.to_owned(),
        ),
        ("global_step".to_owned(), "79999".to_owned()),
    ])
}

#[test]
fn native_round_trip_is_bit_exact_with_metadata() {
    let dir = scratch_dir("native_roundtrip");
    let specs = specs();
    let vs = filled(&specs, 5);
    let path = dir.join("model.safetensors");
    save_native(&path, &vs, &metadata()).unwrap();
    // Saving again over the file replaces it atomically and leaves no temp file.
    save_native(&path, &vs, &metadata()).unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["model.safetensors"]);

    let (tensors, meta) = read_native(&path).unwrap();
    let mut expected = metadata();
    expected.insert("format".into(), "swinface-native".into());
    expected.insert("format_version".into(), "1".into());
    assert_eq!(meta, expected);
    let vars = vs.variables();
    assert_eq!(tensors.len(), specs.len());
    for (key, tensor) in &tensors {
        assert!(same_bits(tensor, &vars[key]), "{key}");
    }
    // Natural order: layers.2 before layers.10.
    let order: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    let two = order.iter().position(|k| k.contains("layers.2.")).unwrap();
    let ten = order.iter().position(|k| k.contains("layers.10.")).unwrap();
    assert!(two < ten, "{order:?}");

    let mut target = zero_varstore(&specs);
    let (report, meta) = load_native_into(&path, &mut target).unwrap();
    assert!(
        report.is_complete() && report.converted.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.loaded.len(), specs.len());
    assert_eq!(meta["model_config"], metadata()["model_config"]);
    let loaded = target.variables();
    for (key, _, _) in &specs {
        assert!(same_bits(&loaded[key], &vars[key]), "{key}");
    }

    // A strict native load names what does not fit, like the official one.
    let mut fewer = zero_varstore(&specs[1..]);
    match load_native_into(&path, &mut fewer) {
        Err(CheckpointError::Incompatible {
            unexpected,
            missing,
            mismatched,
        }) => {
            assert_eq!(unexpected, [specs[0].0.clone()]);
            assert!(missing.is_empty() && mismatched.is_empty());
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
}

#[test]
fn reserved_metadata_keys_are_refused() {
    let dir = scratch_dir("native_reserved");
    let vs = filled(&specs(), 1);
    let mut meta = metadata();
    meta.insert("format_version".into(), "9".into());
    let err = save_native(&dir.join("x.safetensors"), &vs, &meta).unwrap_err();
    assert!(matches!(err, CheckpointError::Metadata { .. }), "{err}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing may be left behind"
    );
}

#[test]
fn python_safetensors_reads_native_files_and_load_any_tells_formats_apart() {
    let dir = scratch_dir("native_python");
    let specs = specs();
    let vs = filled(&specs, 9);
    let native = dir.join("model.safetensors");
    save_native(&native, &vs, &metadata()).unwrap();
    let script = r#"
import json, sys, torch
from safetensors import safe_open
with safe_open(sys.argv[1], "pt") as f:
    meta = f.metadata()
    sums = {k: float(f.get_tensor(k).double().sum()) for k in f.keys()}
    dtypes = {k: str(f.get_tensor(k).dtype)[len("torch."):] for k in f.keys()}
print(json.dumps({"meta": meta, "sums": sums, "dtypes": dtypes}))
"#;
    let out: serde_json::Value =
        serde_json::from_str(run_python(script, &[&native]).trim()).unwrap();
    assert_eq!(
        out["meta"]["model_config"],
        metadata()["model_config"].as_str()
    );
    assert_eq!(out["meta"]["format"], "swinface-native");
    let vars = vs.variables();
    for (key, _, kind) in &specs {
        let ours = vars[key]
            .to_kind(Kind::Double)
            .sum(Kind::Double)
            .double_value(&[]);
        let theirs = out["sums"][key].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-9 * ours.abs().max(1.0),
            "{key}: {ours} vs {theirs}"
        );
        assert_eq!(
            out["dtypes"][key],
            swinface_model::checkpoint::kind_name(*kind)
        );
    }

    let official = dir.join("model.pt");
    write_official(&official, &vs, &OfficialWriteOptions::default()).unwrap();
    assert_eq!(detect_format(&native).unwrap(), CheckpointFormat::Native);
    assert_eq!(
        detect_format(&official).unwrap(),
        CheckpointFormat::Official
    );
    for path in [&native, &official] {
        let mut target = zero_varstore(&specs);
        let report = load_any(path, &mut target).unwrap();
        assert_eq!(report.loaded.len(), specs.len(), "{}", path.display());
        let loaded = target.variables();
        for (key, _, _) in &specs {
            assert!(
                same_bits(&loaded[key], &vars[key]),
                "{key} via {}",
                path.display()
            );
        }
    }
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    assert!(matches!(
        detect_format(&junk),
        Err(CheckpointError::UnknownFormat { .. })
    ));
    // A safetensors header that lies about its length is an error, not a panic.
    let mut lying = std::fs::read(&native).unwrap();
    lying[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&junk, &lying).unwrap();
    assert!(read_native(&junk).is_err());
}
