//! Official `.pt` checkpoints against PyTorch: files we write load in `torch.load
//! (weights_only=True)` and in the baseline model's `load_state_dict`; files torch.save writes
//! the way the official train.py does read back with the same values; strict and partial
//! loads name what does not fit.

mod checkpoint_common;

use std::collections::HashMap;

use checkpoint_common::{
    add_var, official_keys, random, repo_root, run_python, same_bits, scratch_dir, varstore,
    zero_varstore,
};
use swinface_model::checkpoint::{
    load_official_into, load_partial, read_native, read_official, write_official, CheckpointError,
    OfficialWriteOptions, MODEL_SECTIONS,
};
use swinface_pickle::Value;
use tch::{nn, Kind, Tensor};

fn variables_of(vs: &nn::VarStore) -> HashMap<String, Tensor> {
    vs.variables()
}

/// (a) Our writer's file, with the full official key set, read by torch 2.11 with
/// `weights_only=True` and loaded strictly into the PyTorch baseline model; values dumped
/// back by Python match bit for bit.
#[test]
fn written_checkpoint_loads_in_torch_with_official_keys_and_values() {
    let dir = scratch_dir("official_write");
    let keys = official_keys();
    let vs = varstore(&keys, 1);
    let path = dir.join("checkpoint_step_79999_gpu_0.pt");
    let options = OfficialWriteOptions {
        extras: vec![
            ("global_step".into(), Value::Int(79999)),
            ("epoch".into(), Value::Int(3)),
        ],
        key_order: Some(keys.iter().map(|(k, _, _)| k.clone()).collect()),
    };
    write_official(&path, &vs, &options).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");

    let dump = dir.join("torch_view.safetensors");
    let tsv = repo_root().join("tests/fixtures/parity/official_keys.tsv");
    let baseline = repo_root().join("scripts/baseline");
    let script = r#"
import collections, sys, torch
from safetensors.torch import save_file
path, tsv, dump, baseline = sys.argv[1:5]
ck = torch.load(path, weights_only=True)
assert list(ck) == ["state_dict_backbone", "state_dict_fam", "state_dict_tss", "state_dict_om",
                    "global_step", "epoch"], list(ck)
assert ck["global_step"] == 79999 and ck["epoch"] == 3
expected = collections.OrderedDict()
for line in open(tsv).read().splitlines()[1:]:
    key, shape, dtype = line.split("\t")
    section, rest = key.split(".", 1)
    shape = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
    expected.setdefault("state_dict_" + section, []).append((rest, shape, dtype))
flat = {}
for section, entries in expected.items():
    sd = ck[section]
    assert type(sd) is collections.OrderedDict, type(sd)
    # Same keys, no prefixes, in the official state-dict order (we passed it as key_order).
    assert list(sd) == [e[0] for e in entries], section
    for rest, shape, dtype in entries:
        t = sd[rest]
        assert tuple(t.shape) == shape and str(t.dtype) == "torch." + dtype, (rest, t.shape, t.dtype)
        assert not t.requires_grad
        flat[section[len("state_dict_"):] + "." + rest] = t.contiguous()
# Storages are 64-byte aligned, so torch can also memory-map the file.
mapped = torch.load(path, weights_only=True, mmap=True)
for section in expected:
    for rest, value in mapped[section].items():
        assert torch.equal(value, ck[section][rest]), (section, rest)
# The official inference path: strict load_state_dict per module.
sys.path.insert(0, baseline)
from swinface_torch import SwinFace
model = SwinFace()
for name in ("backbone", "fam", "tss", "om"):
    getattr(model, name).load_state_dict(ck["state_dict_" + name], strict=True)
for key, value in model.state_dict().items():
    assert torch.equal(value, flat[key]), key
save_file(flat, dump)
print(len(flat))
"#;
    let out = run_python(script, &[&path, &tsv, &dump, &baseline]);
    assert_eq!(out.trim(), keys.len().to_string());

    let (dumped, _) = read_native(&dump).unwrap();
    assert_eq!(dumped.len(), keys.len());
    let vars = variables_of(&vs);
    for (key, tensor) in &dumped {
        assert!(
            same_bits(tensor, &vars[key]),
            "{key} differs after torch.load"
        );
    }
}

const TRAIN_PY_STYLE: &str = r#"
import collections, json, sys, torch
from safetensors.torch import save_file
from timm.scheduler.cosine_lr import CosineLRScheduler
path, expected_path, baseline = sys.argv[1:4]
sys.path.insert(0, baseline)
from swinface_torch import SwinFace
torch.manual_seed(0)
model = SwinFace()
# Real module state dicts: OrderedDicts carrying `_metadata` (pickled with BUILD).
sd = {name: getattr(model, name).state_dict() for name in ("backbone", "fam", "tss", "om")}
for s in sd.values():
    for k, v in s.items():
        if v.is_floating_point():
            v.normal_()
        elif k.endswith("num_batches_tracked"):
            v.fill_(12345)
# A float16 tensor, as a half-precision save would hold.
sd["om"]["output_fcs.0.weight"] = sd["om"]["output_fcs.0.weight"].half()
# A transposed view with a storage offset: torch.save keeps the whole storage.
qkv = sd["backbone"]["layers.0.blocks.0.attn.qkv.weight"]
base = torch.randn(qkv.shape[1] + 1, qkv.shape[0])
sd["backbone"]["layers.0.blocks.0.attn.qkv.weight"] = base[1:].t()
assert not sd["backbone"]["layers.0.blocks.0.attn.qkv.weight"].is_contiguous()
# Two entries viewing one storage at different offsets.
shared = torch.randn(2, 512)
sd["tss"]["nets.0.feature.0.bias"], sd["tss"]["nets.0.feature.3.bias"] = shared[0], shared[1]
# Optimizer and scheduler after one real AdamW step on a small module (as train.py saves).
small = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
opt = torch.optim.AdamW([{"params": small[0].parameters(), "lr": 5e-5},
                         {"params": small[1].parameters()}], lr=5e-4, weight_decay=0.05)
small(torch.randn(8, 4)).square().sum().backward()
opt.step()
sched = CosineLRScheduler(opt, t_initial=80000, lr_min=5e-6, warmup_t=1000,
                          warmup_lr_init=5e-7, t_in_epochs=False)
sched.step_update(79999)
checkpoint = {
    "epoch": 0,
    "global_step": 79999,
    "local_step": 4,
    "state_dict_backbone": sd["backbone"],
    "state_dict_softmax_fc": collections.OrderedDict(weight=torch.randn(10, 512)),
    "state_dict_fam": sd["fam"],
    "state_dict_tss": sd["tss"],
    "state_dict_om": sd["om"],
    "state_optimizer": opt.state_dict(),
    "state_lr_scheduler": sched.state_dict(),
}
torch.save(checkpoint, path)
expected = {}
for section, s in checkpoint.items():
    if section.startswith("state_dict_"):
        for k, v in s.items():
            expected[section[len("state_dict_"):] + "." + k] = v.contiguous()
save_file(expected, expected_path)
print(json.dumps({
    "lrs": [g["lr"] for g in opt.state_dict()["param_groups"]],
    "exp_avg_sum": float(sum(s["exp_avg"].double().sum() for s in opt.state_dict()["state"].values())),
    "base_values": sched.state_dict()["base_values"],
}))
"#;

/// (b) A checkpoint torch.save wrote the way the official train.py does (real module state
/// dicts, optimizer and scheduler state, an fp16 and a strided view) reads back exactly.
#[test]
fn reads_a_train_py_style_checkpoint_with_the_same_values() {
    let dir = scratch_dir("official_read");
    let path = dir.join("checkpoint_step_79999_gpu_0.pt");
    let expected_path = dir.join("expected.safetensors");
    let baseline = repo_root().join("scripts/baseline");
    let out = run_python(TRAIN_PY_STYLE, &[&path, &expected_path, &baseline]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let (expected, _) = read_native(&expected_path).unwrap();
    let expected: HashMap<String, Tensor> = expected.into_iter().collect();

    let checkpoint = read_official(&path).unwrap();
    let names: Vec<&str> = checkpoint
        .state_dicts
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "state_dict_backbone",
            "state_dict_softmax_fc",
            "state_dict_fam",
            "state_dict_tss",
            "state_dict_om"
        ]
    );
    let mut compared = 0;
    for (section, tensors) in &checkpoint.state_dicts {
        let prefix = &section["state_dict_".len()..];
        for (key, tensor) in tensors {
            let want = &expected[&format!("{prefix}.{key}")];
            assert!(same_bits(tensor, want), "{section}[{key}] differs");
            compared += 1;
        }
    }
    assert_eq!(compared, expected.len());
    assert_eq!(compared, official_keys().len() + 1);
    let om = checkpoint.section("state_dict_om").unwrap();
    assert_eq!(
        om.iter()
            .find(|(k, _)| k == "output_fcs.0.weight")
            .unwrap()
            .1
            .kind(),
        Kind::Half
    );

    // Extras stay as data; tensors inside them are placeholders.
    assert_eq!(checkpoint.extra("global_step"), Some(&Value::Int(79999)));
    assert_eq!(checkpoint.extra("local_step"), Some(&Value::Int(4)));
    let optimizer = checkpoint.extra("state_optimizer").unwrap();
    let groups = optimizer
        .get("param_groups")
        .unwrap()
        .as_sequence()
        .unwrap();
    let lrs: Vec<f64> = groups
        .iter()
        .map(|g| g.get("lr").unwrap().as_f64().unwrap())
        .collect();
    let want_lrs: Vec<f64> = summary["lrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(lrs, want_lrs);
    let state = optimizer.get("state").unwrap().dict_items().unwrap();
    assert_eq!(state.len(), 4, "AdamW state for 4 parameters");
    let exp_avg = state[0].1.get("exp_avg").unwrap().as_object().unwrap();
    assert_eq!(
        exp_avg.callable.to_string(),
        "torch._utils._rebuild_tensor_v2"
    );
    let scheduler = checkpoint.extra("state_lr_scheduler").unwrap();
    assert_eq!(scheduler.get("t_initial"), Some(&Value::Int(80000)));
    let base: Vec<f64> = scheduler
        .get("base_values")
        .unwrap()
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want_base: Vec<f64> = summary["base_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(base, want_base);

    // Strict load of the four model sections into an fp32 model; softmax_fc is not a model
    // section and is ignored; the fp16 tensor is converted.
    let keys = official_keys();
    let mut vs = zero_varstore(&keys);
    let report = load_official_into(&path, &mut vs).unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.loaded.len(), keys.len());
    assert_eq!(report.converted, ["om.output_fcs.0.weight"]);
    let vars = variables_of(&vs);
    for (key, _, kind) in &keys {
        let want = expected[key].to_kind(*kind);
        assert!(same_bits(&vars[key], &want), "{key} loaded wrongly");
    }

    // Only the backbone, as when starting from a recognition-pretrained checkpoint.
    let mut vs = zero_varstore(&keys);
    let report = load_partial(&path, &mut vs, &["state_dict_backbone"]).unwrap();
    let backbone = keys
        .iter()
        .filter(|(k, _, _)| k.starts_with("backbone."))
        .count();
    assert_eq!((report.loaded.len(), backbone), (202, 202));
    assert!(report.is_complete(), "{report:?}");
    let vars = variables_of(&vs);
    assert!(same_bits(
        &vars["backbone.patch_embed.proj.weight"],
        &expected["backbone.patch_embed.proj.weight"]
    ));
    assert_eq!(
        vars["fam.nets.0.norm.weight"]
            .abs()
            .sum(Kind::Double)
            .double_value(&[]),
        0.0
    );
    let _ = MODEL_SECTIONS;
}

/// (c) Missing, unexpected, mis-shaped and wrongly typed keys are each named; a strict load
/// copies nothing, a partial load copies the rest.
#[test]
fn strict_load_names_missing_unexpected_and_misshaped_keys() {
    let dir = scratch_dir("official_incompatible");
    let keys: Vec<_> = official_keys()
        .into_iter()
        .filter(|(k, _, _)| k.starts_with("tss.") || k.starts_with("om."))
        .collect();
    let source = varstore(&keys, 7);
    let path = dir.join("small.pt");
    write_official(&path, &source, &OfficialWriteOptions::default()).unwrap();

    let removed = "om.output_fcs.41.bias";
    let reshaped = "tss.nets.0.feature.0.weight";
    let retyped = "tss.nets.0.feature.0.bias";
    let added = "om.extra.weight";
    let target_keys: Vec<_> = keys
        .iter()
        .filter(|(k, _, _)| k != removed)
        .map(|(k, shape, kind)| match k.as_str() {
            k if k == reshaped => (k.to_owned(), vec![512, 256], *kind),
            k if k == retyped => (k.to_owned(), shape.clone(), Kind::Int64),
            _ => (k.clone(), shape.clone(), *kind),
        })
        .collect();
    let build = || {
        let vs = zero_varstore(&target_keys);
        add_var(&vs, added, random(&[3], Kind::Float));
        vs
    };

    let mut vs = build();
    let err = load_official_into(&path, &mut vs).unwrap_err();
    let message = err.to_string();
    let CheckpointError::Incompatible {
        missing,
        unexpected,
        mismatched,
    } = err
    else {
        panic!("wrong error: {message}");
    };
    assert_eq!(missing, [added]);
    assert_eq!(unexpected, [removed]);
    let mut mismatched_keys: Vec<_> = mismatched.iter().map(|m| m.key.as_str()).collect();
    mismatched_keys.sort();
    assert_eq!(mismatched_keys, [retyped, reshaped]);
    let shape = mismatched.iter().find(|m| m.key == reshaped).unwrap();
    assert_eq!(
        (shape.expected_shape.clone(), shape.found_shape.clone()),
        (vec![512, 256], vec![512, 512])
    );
    let dtype = mismatched.iter().find(|m| m.key == retyped).unwrap();
    assert_eq!(
        (dtype.expected_dtype.as_str(), dtype.found_dtype.as_str()),
        ("int64", "float32")
    );
    for needle in [
        added,
        removed,
        reshaped,
        retyped,
        "[512, 256]",
        "[512, 512]",
    ] {
        assert!(message.contains(needle), "{needle} not in: {message}");
    }
    // Nothing was copied.
    let vars = variables_of(&vs);
    assert_eq!(
        vars["om.output_fcs.0.weight"]
            .abs()
            .sum(Kind::Double)
            .double_value(&[]),
        0.0
    );

    let mut vs = build();
    let report = load_partial(&path, &mut vs, &["state_dict_tss", "state_dict_om"]).unwrap();
    assert_eq!(report.missing, [added]);
    assert_eq!(report.unexpected, [removed]);
    assert_eq!(report.mismatched.len(), 2);
    assert_eq!(report.loaded.len(), keys.len() - 3);
    let vars = variables_of(&vs);
    let source_vars = variables_of(&source);
    assert!(same_bits(
        &vars["om.output_fcs.0.weight"],
        &source_vars["om.output_fcs.0.weight"]
    ));
    assert_eq!(
        vars[reshaped].abs().sum(Kind::Double).double_value(&[]),
        0.0
    );
}

/// Our own writer and reader agree on every dtype, including scalars and empty tensors.
#[test]
fn official_round_trip_keeps_every_dtype_bit_exact() {
    let dir = scratch_dir("official_roundtrip");
    tch::manual_seed(3);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let specs: [(&str, &[i64], Kind); 11] = [
        ("backbone.a.weight", &[4, 3], Kind::Float),
        ("backbone.b", &[5], Kind::Half),
        ("backbone.c", &[2, 2], Kind::BFloat16),
        ("fam.d", &[3], Kind::Double),
        ("fam.e", &[], Kind::Int64),
        ("tss.f", &[2, 3], Kind::Int),
        ("tss.g", &[7], Kind::Int16),
        ("om.h", &[7], Kind::Int8),
        ("om.i", &[9], Kind::Uint8),
        ("om.j", &[4], Kind::Bool),
        ("softmax_fc.weight", &[0, 4], Kind::Float),
    ];
    for (key, shape, kind) in specs {
        add_var(&vs, key, random(shape, kind));
    }
    let path = dir.join("all_dtypes.pt");
    write_official(&path, &vs, &OfficialWriteOptions::default()).unwrap();
    let checkpoint = read_official(&path).unwrap();
    let names: Vec<&str> = checkpoint
        .state_dicts
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "state_dict_backbone",
            "state_dict_fam",
            "state_dict_tss",
            "state_dict_om",
            "state_dict_softmax_fc"
        ]
    );
    let vars = variables_of(&vs);
    let back = checkpoint.into_full_keys();
    assert_eq!(back.len(), specs.len());
    for (key, tensor) in &back {
        assert!(same_bits(tensor, &vars[key]), "{key}");
    }
}
