//! The loss scaler's skip / backoff / growth behaviour (CPU tensors; libtorch's `_amp_*`
//! kernels have CPU implementations), its state, the precision-mode switch, and Partial FC's
//! logits under autocast (CPU bf16, the code path CUDA fp16 takes).

mod common;

use common::{max_abs_diff, seeded};
use swinface_loss::{
    AmpConfig, AmpMode, Autocast, AutocastDevice, CombinedMarginLoss, GradScaler, GradScalerConfig,
    LossError, OptimizerConfig, PartialFc, PartialFcConfig, SingleProcess,
};
use tch::{Device, Kind, Reduction, Tensor};

/// A parameter whose gradient after `scaler.scale(loss).backward()` is `scale · g`.
fn backward_with(scaler: &GradScaler, param: &Tensor, g: &[f32]) {
    let mut p = param.shallow_clone();
    p.zero_grad();
    let loss = (param * Tensor::from_slice(g)).sum(Kind::Float);
    scaler.scale(&loss).unwrap().backward();
}

fn scaler(growth_interval: i64) -> GradScaler {
    let config = GradScalerConfig {
        growth_interval,
        ..GradScalerConfig::default()
    };
    GradScaler::new(config, true, Device::Cpu).unwrap()
}

fn tracker(scaler: &GradScaler) -> i64 {
    scaler.state_tensors()[1].1.int64_value(&[0])
}

#[test]
fn scaling_and_unscaling_round_trip() {
    let mut s = scaler(100);
    assert_eq!(s.scale_value().unwrap(), 65536.0);
    let p = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    backward_with(&s, &p, &[1.0, -2.5, 0.125]);
    assert_eq!(
        Vec::<f32>::try_from(p.grad()).unwrap(),
        vec![65536.0, -163840.0, 8192.0]
    );
    s.unscale(&[p.grad()]).unwrap();
    // A second unscale in the same step is a no-op, as in torch (which raises instead).
    s.unscale(&[p.grad()]).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(p.grad()).unwrap(),
        vec![1.0, -2.5, 0.125]
    );
    assert!(s.should_step().unwrap());
    s.update().unwrap();
    assert_eq!(s.scale_value().unwrap(), 65536.0);
    assert_eq!(tracker(&s), 1);
}

#[test]
fn overflow_skips_and_backs_off_then_growth_doubles() {
    let mut s = scaler(3);
    let p = Tensor::zeros([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let mut history = Vec::new();
    // clean, inf, clean, clean, nan, clean, clean, clean (-> growth), clean
    let grads: [[f32; 2]; 9] = [
        [1.0, 2.0],
        [f32::INFINITY, 1.0],
        [1.0, 1.0],
        [0.5, 1.0],
        [f32::NAN, 0.0],
        [1.0, 1.0],
        [1.0, 1.0],
        [1.0, 1.0],
        [1.0, 1.0],
    ];
    for g in grads {
        backward_with(&s, &p, &g);
        s.unscale(&[p.grad()]).unwrap();
        let step = s.should_step().unwrap();
        s.update().unwrap();
        history.push((step, s.scale_value().unwrap(), tracker(&s)));
    }
    println!("(step taken, scale after update, growth tracker): {history:?}");
    let want = [
        (true, 65536.0, 1),
        (false, 32768.0, 0), // inf: skip, ×0.5, tracker reset
        (true, 32768.0, 1),
        (true, 32768.0, 2),
        (false, 16384.0, 0), // NaN counts as overflow too
        (true, 16384.0, 1),
        (true, 16384.0, 2),
        (true, 32768.0, 0), // third clean step in a row: ×2, tracker reset
        (true, 32768.0, 1),
    ];
    assert_eq!(history, want);
}

#[test]
fn state_round_trips_and_disabled_scaler_passes_through() {
    let mut s = scaler(100);
    let p = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    backward_with(&s, &p, &[f32::INFINITY]);
    s.unscale(&[p.grad()]).unwrap();
    s.update().unwrap();
    let saved: Vec<(String, Tensor)> = s
        .state_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let mut restored = scaler(100);
    restored.load_state(&saved).unwrap();
    assert_eq!(restored.scale_value().unwrap(), 32768.0);
    assert_eq!(tracker(&restored), 0);
    assert!(matches!(
        restored.load_state(&saved[..1]),
        Err(LossError::StateMissing { .. })
    ));

    let mut off = GradScaler::new(GradScalerConfig::default(), false, Device::Cpu).unwrap();
    let loss = Tensor::from(3.0f32);
    assert_eq!(off.scale(&loss).unwrap().double_value(&[]), 3.0);
    off.unscale(&[Tensor::from_slice(&[f32::NAN])]).unwrap();
    assert!(off.should_step().unwrap(), "a disabled scaler never skips");
}

#[test]
fn precision_modes() {
    assert_eq!(AmpMode::from_fp16(true), AmpMode::Fp16);
    assert_eq!(AmpMode::Fp16.for_device(Device::Cpu), AmpMode::Fp32);
    assert_eq!(AmpMode::Fp16.for_device(Device::Cuda(0)), AmpMode::Fp16);
    assert!(AmpMode::Fp16.uses_grad_scaler() && !AmpMode::Bf16.uses_grad_scaler());

    // On the CPU fp16 runs fp32 (the official CUDA-only regions); bf16 asks for CPU
    // autocast in bf16 over the same regions.
    for mode in [AmpMode::Fp32, AmpMode::Fp16] {
        assert_eq!(mode.autocast(Device::Cpu).unwrap(), None, "{mode:?}");
    }
    assert_eq!(AmpMode::Bf16.for_device(Device::Cpu), AmpMode::Bf16);
    let cpu_bf16 = AmpMode::Bf16.autocast(Device::Cpu).unwrap().unwrap();
    assert_eq!(
        (cpu_bf16.device(), cpu_bf16.dtype()),
        (AutocastDevice::Cpu, Kind::BFloat16)
    );
    assert_eq!(AmpMode::Fp32.autocast(Device::Cuda(0)).unwrap(), None);
    // CUDA autocast flags are thread-local switches: settable without a GPU.
    let fp16 = AmpMode::Fp16.autocast(Device::Cuda(0)).unwrap().unwrap();
    assert_eq!(
        (fp16.device(), fp16.dtype()),
        (AutocastDevice::Cuda, Kind::Half)
    );

    let bf16 = AmpMode::Bf16.autocast(Device::Cuda(0));
    if tch::Cuda::is_available() {
        let (major, _) = swinface_torch_ext::cuda_capability(0).unwrap();
        match bf16 {
            Ok(Some(setting)) => {
                assert!(major >= 8);
                assert_eq!(setting.dtype(), Kind::BFloat16);
            }
            Err(LossError::Bf16Unsupported { major: m, .. }) => assert!(m == major && m < 8),
            other => panic!("unexpected {other:?}"),
        }
    } else {
        // No GPU to ask for its capability: an error, never a silent fp16 or fp32.
        assert!(matches!(bf16, Err(LossError::TorchExt(_))), "{bf16:?}");
    }

    // The official `fp16: True` config: fp16 + scaler on the GPU, fp32 without either on the CPU.
    let config = AmpConfig::default();
    assert_eq!(config.autocast(Device::Cpu).unwrap(), None);
    assert!(!config.grad_scaler(Device::Cpu).unwrap().is_enabled());
    assert_eq!(config.autocast(Device::Cuda(0)).unwrap(), Some(fp16));
    let bf16_config = AmpConfig {
        amp_mode: Some(AmpMode::Bf16),
        ..AmpConfig::default()
    };
    assert_eq!(bf16_config.mode(Device::Cuda(0)), AmpMode::Bf16);
    assert!(
        !bf16_config.grad_scaler(Device::Cpu).unwrap().is_enabled(),
        "bf16 trains without loss scaling"
    );
}

/// Partial FC's loss and gradients with the logits under autocast (`Some(cpu bf16)`) or not.
fn partial_fc_run(
    config: &PartialFcConfig,
    weight: &Tensor,
    embeddings: &Tensor,
    labels: &Tensor,
    autocast: Option<Autocast>,
) -> (f64, Tensor, Tensor) {
    let rule = OptimizerConfig::default().update_rule();
    let mut pfc = PartialFc::new(
        config,
        rule,
        0.0,
        Box::new(SingleProcess),
        Device::Cpu,
        Kind::Float,
    )
    .unwrap()
    .with_autocast(autocast);
    pfc.load_weight(weight).unwrap();
    let embeddings = embeddings.copy().set_requires_grad(true);
    let loss = pfc.forward(&embeddings, labels).unwrap();
    assert_eq!(loss.kind(), Kind::Float);
    loss.backward();
    (
        loss.double_value(&[]),
        embeddings.grad(),
        pfc.grad().unwrap().expect("centre gradient"),
    )
}

#[test]
fn partial_fc_logits_under_bf16_autocast() {
    let (batch, dim, classes) = (16, 32, 40);
    let weight = seeded(&[classes, dim], 31, Kind::Float);
    let label_list: Vec<i64> = (0..batch).map(|i| (i * 7) % classes).collect();
    let labels = Tensor::from_slice(&label_list);
    // Embeddings near their centres: moderate losses and gradients.
    let embeddings = weight.index_select(0, &labels) + seeded(&[batch, dim], 32, Kind::Float);
    let config = PartialFcConfig {
        embedding_size: dim,
        num_classes: classes,
        sample_rate: 1.0,
        margin_list: (1.0, 0.0, 0.4),
        interclass_filtering_threshold: 0.0,
    };
    let bf16 = Autocast::new(AutocastDevice::Cpu, Kind::BFloat16).unwrap();
    let (loss32, emb_grad32, centre_grad32) =
        partial_fc_run(&config, &weight, &embeddings, &labels, None);
    let (loss16, emb_grad16, centre_grad16) =
        partial_fc_run(&config, &weight, &embeddings, &labels, Some(bf16));
    assert!(!swinface_torch_ext::is_enabled(AutocastDevice::Cpu).unwrap());

    // The official sequence written out with explicit casts: normalise in fp32, the cosine
    // matmul in bf16, back to fp32, clamp, CosFace margin, mean cross-entropy.
    let normalize = |x: &Tensor| x / x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true);
    let bf = |x: Tensor| x.to_kind(Kind::BFloat16);
    let cosines = bf(normalize(&embeddings))
        .linear::<Tensor>(&bf(normalize(&weight)), None)
        .to_kind(Kind::Float)
        .clamp(-1.0, 1.0);
    let logits = CombinedMarginLoss::new(64.0, 1.0, 0.0, 0.4, 0.0)
        .unwrap()
        .forward(&cosines, &labels)
        .unwrap();
    let explicit = logits
        .cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0)
        .double_value(&[]);

    let emb_rel = max_abs_diff(&emb_grad16, &emb_grad32) / emb_grad32.abs().max().double_value(&[]);
    let centre_rel =
        max_abs_diff(&centre_grad16, &centre_grad32) / centre_grad32.abs().max().double_value(&[]);
    println!(
        "Partial FC loss: fp32 {loss32:.6}, bf16 logits {loss16:.6} (explicit casts {explicit:.6}); \
         gradient max rel diff: embeddings {emb_rel:.3e}, centres {centre_rel:.3e}"
    );
    // Same casts as the explicit sequence (up to fp32 summation order in the softmax).
    assert!(
        (loss16 - explicit).abs() < 1e-5 * explicit.abs(),
        "{loss16} vs {explicit}"
    );
    // bf16 cosines (8 significant bits) times the scale 64 move the loss a little.
    assert!(loss16 != loss32);
    assert!(
        (loss16 - loss32).abs() < 2e-2 * loss32.abs(),
        "{loss16} vs {loss32}"
    );
    for grad in [&emb_grad16, &centre_grad16] {
        assert_eq!(grad.kind(), Kind::Float);
        assert_eq!(
            grad.isfinite().all().int64_value(&[]),
            1,
            "finite gradients"
        );
    }
    assert!(
        emb_rel < 5e-2 && centre_rel < 5e-2,
        "{emb_rel} {centre_rel}"
    );
}

#[test]
fn an_fp16_loss_is_scaled_in_fp32() {
    let s = scaler(100);
    let scaled = s.scale(&Tensor::from(2.0f32).to_kind(Kind::Half)).unwrap();
    assert_eq!(scaled.kind(), Kind::Float);
    assert_eq!(
        scaled.double_value(&[0]),
        131072.0,
        "65536 × 2 would overflow fp16"
    );
}
