//! Mixed precision with CPU bf16 autocast, the same code path CUDA fp16 takes on a GPU:
//! the released configuration against the PyTorch baseline run with the same autocast regions
//! (scripts/baseline/swinface_torch.py, its regions routed to CPU bf16) and against the fp32
//! parity fixtures; a training step's gradients; and the setting switched off again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use swinface_model::formula::{fill_by_formula, formula_input};
use swinface_model::{AttentionKernel, SwinFace, SwinFaceConfig, SwinFaceOutput, TASK_NAMES};
use swinface_torch_ext::{is_enabled, Autocast, AutocastDevice};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Runs the baseline with every autocast region on the CPU in bf16; writes the embedding and
/// the 43 outputs. argv: repository root, output file.
const PYTORCH_BF16_REFERENCE: &str = r#"
import sys
from pathlib import Path
import torch
from safetensors.torch import save_file
root, out_path = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(root / "scripts/baseline"))
sys.path.insert(0, str(root / "tests/fixtures/parity"))
import swinface_torch as st
from formula import formula_input
# The baseline autocasts on CUDA only; the same regions, on the CPU in bf16.
st.autocast = lambda enabled, dtype: torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
model = st.SwinFace(amp_dtype=torch.bfloat16).eval()
st.load_formula(model, root / "tests/fixtures/parity")
model.set_amp(True)
x = torch.from_numpy(formula_input(2))
with torch.no_grad():
    emb = model.backbone(x)[2]
    out = model(x)
tensors = {"backbone.embedding": emb}
tensors.update({"out." + n: out[n] for n in st.TASK_NAMES})
save_file({k: v.float().contiguous() for k, v in tensors.items()}, out_path)
"#;

/// Ours against PyTorch, both bf16 with the same regions: with the math attention core the
/// same kernels run in the same order (measured: bit-identical); `sdpa` differs from the math
/// core by fp32 round-off, which bf16 rounding can amplify by one bf16 step here and there.
const VS_PYTORCH_MATH_ABS: f64 = 1e-6;
const VS_PYTORCH_SDPA_ABS: f64 = 2e-2;
/// Against the fp32 official outputs: bf16 keeps 8 significant bits (measured: embedding
/// 6e-3 of its largest magnitude, analysis logits 7e-3 absolute).
const VS_FP32_EMBEDDING_REL: f64 = 2e-2;
const VS_FP32_HEADS_ABS: f64 = 2e-2;

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_tensors(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn pytorch_bf16_reference() -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference.safetensors");
    let root = repository_root();
    let output = Command::new(root.join(".venv/bin/python"))
        .arg("-c")
        .arg(PYTORCH_BF16_REFERENCE)
        .arg(&root)
        .arg(&out)
        .output()
        .expect("running the venv python");
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    read_tensors(&out)
}

fn cpu_bf16() -> Autocast {
    Autocast::new(AutocastDevice::Cpu, Kind::BFloat16).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Max abs diff relative to the reference's largest magnitude.
fn max_rel_diff(a: &Tensor, reference: &Tensor) -> f64 {
    max_abs_diff(a, reference) / reference.abs().max().double_value(&[]).max(1e-12)
}

fn outputs_by_key(out: &SwinFaceOutput) -> BTreeMap<String, Tensor> {
    let mut map = BTreeMap::new();
    map.insert(
        "backbone.embedding".to_owned(),
        out.embedding.shallow_clone(),
    );
    for (name, head) in TASK_NAMES.iter().zip(&out.heads) {
        map.insert(format!("out.{name}"), head.shallow_clone());
    }
    map
}

/// (worst key, worst value) of `diff` over the keys of `reference`.
fn worst(
    ours: &BTreeMap<String, Tensor>,
    reference: &BTreeMap<String, Tensor>,
    diff: fn(&Tensor, &Tensor) -> f64,
) -> (String, f64) {
    let mut worst = (String::new(), 0.0f64);
    for (key, want) in reference {
        let got = ours.get(key).unwrap_or_else(|| panic!("no output `{key}`"));
        let d = diff(got, want);
        if d > worst.1 || d.is_nan() {
            worst = (key.clone(), d);
        }
    }
    worst
}

#[test]
fn released_model_in_bf16_matches_pytorch_and_stays_close_to_fp32() {
    let reference = pytorch_bf16_reference();
    assert_eq!(reference.len(), 44);
    let fp32_official: BTreeMap<String, Tensor> =
        read_tensors(&repository_root().join("tests/fixtures/parity/expected.safetensors"))
            .into_iter()
            .filter(|(key, _)| reference.contains_key(key))
            .collect();
    assert_eq!(fp32_official.len(), 44);
    let input = formula_input(2);

    for kernel in [AttentionKernel::Math, AttentionKernel::Sdpa] {
        let mut cfg = SwinFaceConfig::default();
        cfg.swin.attention = kernel;
        let vs = VarStore::new(Device::Cpu);
        let mut model = SwinFace::new(&vs.root(), &cfg).unwrap();
        fill_by_formula(&vs).unwrap();
        let fp32 = tch::no_grad(|| model.forward_t(&input, false));

        model.set_autocast(Some(cpu_bf16()));
        let mixed = tch::no_grad(|| model.forward_t(&input, false));
        assert!(!is_enabled(AutocastDevice::Cpu).unwrap(), "state restored");
        assert!(mixed.heads.iter().all(|h| h.kind() == Kind::Float));
        assert_eq!(mixed.embedding.kind(), Kind::Float);
        let ours = outputs_by_key(&mixed);

        let (key, abs) = worst(&ours, &reference, max_abs_diff);
        println!("[{kernel:?}] bf16 ours vs PyTorch bf16: max abs diff {abs:.3e} ({key})");
        let (emb_abs, emb_rel) = (
            max_abs_diff(&mixed.embedding, &fp32_official["backbone.embedding"]),
            max_rel_diff(&mixed.embedding, &fp32_official["backbone.embedding"]),
        );
        println!(
            "[{kernel:?}] bf16 vs fp32 official: embedding max abs {emb_abs:.3e}, rel {emb_rel:.3e}"
        );
        let heads_official: BTreeMap<String, Tensor> = fp32_official
            .iter()
            .filter(|(k, _)| k.starts_with("out.") && k.as_str() != "out.Recognition")
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect();
        let (head_key, head_abs) = worst(&ours, &heads_official, max_abs_diff);
        let (rel_key, head_rel) = worst(&ours, &heads_official, max_rel_diff);
        println!(
            "[{kernel:?}] bf16 vs fp32 official: 42 analysis heads max abs {head_abs:.3e} \
             ({head_key}), max rel {head_rel:.3e} ({rel_key})"
        );
        let tolerance = match kernel {
            AttentionKernel::Math => VS_PYTORCH_MATH_ABS,
            AttentionKernel::Sdpa | AttentionKernel::Auto => VS_PYTORCH_SDPA_ABS,
        };
        assert!(abs <= tolerance, "[{kernel:?}] vs PyTorch bf16: {abs}");
        // Mixed precision must change something, and not much.
        assert!(emb_abs > 0.0);
        assert!(emb_rel < VS_FP32_EMBEDDING_REL, "embedding rel {emb_rel}");
        assert!(
            head_abs < VS_FP32_HEADS_ABS,
            "heads abs {head_abs} ({head_key})"
        );

        model.set_autocast(None);
        let back = tch::no_grad(|| model.forward_t(&input, false));
        for (a, b) in fp32.heads.iter().zip(&back.heads) {
            assert!(
                a.equal(b),
                "switching autocast off restores fp32 bit for bit"
            );
        }
    }
}

#[test]
fn bf16_training_step_has_finite_gradients_close_to_fp32() {
    let mut cfg = SwinFaceConfig::tiny_demo();
    // No random masks, so that both runs see the same network.
    cfg.swin.drop_path_rate = 0.0;
    cfg.tss_drop_rate = 0.0;
    tch::manual_seed(21);
    let vs = VarStore::new(Device::Cpu);
    let mut model = SwinFace::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::randn([4, 3, 112, 112], (Kind::Float, Device::Cpu));
    let gradients = |model: &SwinFace| -> BTreeMap<String, Tensor> {
        for mut t in vs.trainable_variables() {
            t.zero_grad();
        }
        let out = model.forward_t(&x, true);
        let loss = out
            .heads
            .iter()
            .map(|h| h.square().mean(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        assert_eq!(loss.kind(), Kind::Float);
        loss.backward();
        // `backbone.head` is built for checkpoints only and gets no gradient.
        vs.variables()
            .into_iter()
            .filter(|(_, v)| v.requires_grad() && v.grad().defined())
            .map(|(k, v)| (k, v.grad().copy()))
            .collect()
    };
    let fp32 = gradients(&model);
    model.set_autocast(Some(cpu_bf16()));
    let mixed = gradients(&model);

    assert_eq!(
        mixed.keys().collect::<Vec<_>>(),
        fp32.keys().collect::<Vec<_>>(),
        "the same parameters get gradients"
    );
    // Per parameter: ||mixed - fp32|| / ||fp32||. Parameters whose fp32 gradient is
    // (theoretically) zero, like a BatchNorm bias right before another train-mode BatchNorm,
    // hold only round-off and are left out; the FAM and subnet gradients depend on max pools
    // and gates whose choices flip under small feature changes (in fp32, 1e-3 relative noise
    // on the input moves them by 25%), so their worst case is reported and the bound applies
    // to the backbone, where the autocast regions are.
    let l2 = |t: &Tensor| t.to_kind(Kind::Double).norm().double_value(&[]);
    let mut worst_backbone = (String::new(), 0.0f64);
    let mut worst_rest = (String::new(), 0.0f64);
    let (mut dot, mut norm_mixed, mut norm_fp32) = (0.0, 0.0, 0.0);
    let mut checked = 0;
    for (name, grad) in &mixed {
        assert_eq!(grad.kind(), Kind::Float, "{name}: gradient kind");
        assert!(
            grad.isfinite().all().int64_value(&[]) == 1,
            "{name}: non-finite gradient"
        );
        let reference = &fp32[name];
        let (a, b) = (grad.to_kind(Kind::Double), reference.to_kind(Kind::Double));
        dot += (&a * &b).sum(Kind::Double).double_value(&[]);
        norm_mixed += l2(&a).powi(2);
        norm_fp32 += l2(&b).powi(2);
        if l2(reference) < 1e-7 {
            continue;
        }
        let rel = l2(&(&a - &b)) / l2(&b);
        let worst = if name.starts_with("backbone.") {
            &mut worst_backbone
        } else {
            &mut worst_rest
        };
        if rel > worst.1 {
            *worst = (name.clone(), rel);
        }
        checked += 1;
    }
    let cosine = dot / (norm_mixed.sqrt() * norm_fp32.sqrt());
    println!(
        "bf16 vs fp32 gradients, {checked} parameters: cosine of all gradients {cosine:.6}; \
         worst relative L2 difference: backbone {:.3e} ({}), FAM/subnets/heads {:.3e} ({})",
        worst_backbone.1, worst_backbone.0, worst_rest.1, worst_rest.0
    );
    assert!(checked > 200, "only {checked} parameters with a gradient");
    assert!(worst_backbone.1 > 0.0, "mixed precision changed nothing");
    assert!(cosine > 0.999, "cosine {cosine}");
    assert!(
        worst_backbone.1 < 0.05,
        "{}: {}",
        worst_backbone.0,
        worst_backbone.1
    );
}
