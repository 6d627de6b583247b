//! The loss scaler's skip / backoff / growth behaviour (CPU tensors; libtorch's `_amp_*`
//! kernels have CPU implementations), its state, and the precision-mode switch.

use swinface_loss::{AmpMode, GradScaler, GradScalerConfig, LossError};
use tch::{Device, Kind, Tensor};

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
    assert!(AmpMode::Fp16.autocast_enabled().unwrap());
    assert!(!AmpMode::Fp32.autocast_enabled().unwrap());
    assert!(matches!(
        AmpMode::Bf16.autocast_enabled(),
        Err(LossError::Bf16AutocastUnsupported)
    ));
    assert!(AmpMode::Fp16.uses_grad_scaler() && !AmpMode::Bf16.uses_grad_scaler());
    // Without CUDA the autocast helper just runs the closure.
    let x = swinface_loss::with_autocast(true, || {
        Tensor::ones([2, 2], (Kind::Float, Device::Cpu))
            .matmul(&Tensor::ones([2, 2], (Kind::Float, Device::Cpu)))
    });
    assert_eq!(x.kind(), Kind::Float);
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
