//! The autocast guard on the CPU: which precision matmul / linear run in inside and after
//! regions, nesting, the dtype switch. (Each test runs on its own thread, and libtorch's
//! autocast flags, dtypes and nesting depth are per thread; the cast cache is not, see
//! tests/cast_cache.rs.)

use swinface_torch_ext::{
    autocast_region, cuda_capability, cuda_mem_info, cuda_supports_bf16, dtype, is_enabled,
    Autocast, AutocastDevice, AutocastGuard, TorchExtError,
};
use tch::{Device, Kind, Tensor};

const CPU: AutocastDevice = AutocastDevice::Cpu;

fn operands() -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(7);
    let opts = (Kind::Float, Device::Cpu);
    (
        Tensor::randn([5, 8], opts),
        Tensor::randn([3, 8], opts),
        Tensor::randn([3], opts),
    )
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn cpu_bf16_region_runs_matmul_and_linear_in_bf16_and_only_inside() {
    let (x, w, b) = operands();
    assert!(!is_enabled(CPU).unwrap());
    {
        let _region = AutocastGuard::enter(CPU, Kind::BFloat16, true).unwrap();
        assert!(is_enabled(CPU).unwrap());
        assert_eq!(dtype(CPU).unwrap(), Kind::BFloat16);
        let product = x.matmul(&w.tr());
        let projected = x.linear(&w, Some(&b));
        assert_eq!(product.kind(), Kind::BFloat16);
        assert_eq!(projected.kind(), Kind::BFloat16);
        // Exactly the explicit casts autocast stands for.
        let bf = |t: &Tensor| t.to_kind(Kind::BFloat16);
        let explicit = bf(&x).linear(&bf(&w), Some(&bf(&b)));
        assert_eq!(max_abs_diff(&projected, &explicit), 0.0);
        // Ops outside the lower-precision list keep their input precision.
        assert_eq!((&x + 1.0).kind(), Kind::Float);
    }
    assert!(!is_enabled(CPU).unwrap());
    assert_eq!(x.matmul(&w.tr()).kind(), Kind::Float);
    assert_eq!(x.linear(&w, Some(&b)).kind(), Kind::Float);
}

#[test]
fn cpu_fp16_autocast_works_too() {
    let (x, w, b) = operands();
    let region = AutocastGuard::enter(CPU, Kind::Half, true).unwrap();
    assert_eq!(dtype(CPU).unwrap(), Kind::Half);
    let projected = x.linear(&w, Some(&b));
    assert_eq!(projected.kind(), Kind::Half);
    drop(region);
    let reference_fp32 = x.linear(&w, Some(&b));
    assert_eq!(reference_fp32.kind(), Kind::Float);
    // fp16 has an 11-bit significand: results agree with fp32 to ~1e-3 relative.
    let diff = max_abs_diff(&projected, &reference_fp32);
    assert!(
        diff > 0.0 && diff < 1e-2,
        "fp16 vs fp32 max abs diff {diff}"
    );
}

#[test]
fn nested_regions_restore_the_outer_state() {
    let (x, w, _) = operands();
    let kind = |t: Tensor| t.kind();
    {
        let _outer = AutocastGuard::enter(CPU, Kind::BFloat16, true).unwrap();
        {
            let _off = AutocastGuard::enter(CPU, Kind::BFloat16, false).unwrap();
            assert!(!is_enabled(CPU).unwrap());
            assert_eq!(kind(x.matmul(&w.tr())), Kind::Float);
            {
                let _half = AutocastGuard::enter(CPU, Kind::Half, true).unwrap();
                assert_eq!(kind(x.matmul(&w.tr())), Kind::Half);
            }
            assert!(!is_enabled(CPU).unwrap());
            assert_eq!(dtype(CPU).unwrap(), Kind::BFloat16);
            assert_eq!(kind(x.matmul(&w.tr())), Kind::Float);
        }
        assert!(is_enabled(CPU).unwrap());
        assert_eq!(kind(x.matmul(&w.tr())), Kind::BFloat16);
        {
            let _half = AutocastGuard::enter(CPU, Kind::Half, true).unwrap();
            assert_eq!(kind(x.matmul(&w.tr())), Kind::Half);
        }
        assert_eq!(dtype(CPU).unwrap(), Kind::BFloat16);
        assert_eq!(kind(x.matmul(&w.tr())), Kind::BFloat16);
    }
    assert!(!is_enabled(CPU).unwrap());
    assert_eq!(kind(x.matmul(&w.tr())), Kind::Float);
}

#[test]
fn the_previous_dtype_comes_back_after_a_region() {
    let before = dtype(CPU).unwrap();
    let other = if before == Kind::Half {
        Kind::BFloat16
    } else {
        Kind::Half
    };
    {
        let _region = AutocastGuard::enter(CPU, other, false).unwrap();
        assert_eq!(dtype(CPU).unwrap(), other);
    }
    assert_eq!(dtype(CPU).unwrap(), before);
}

#[test]
fn checked_settings_and_optional_regions() {
    let (x, w, _) = operands();
    assert_eq!(
        Autocast::new(CPU, Kind::Float),
        Err(TorchExtError::UnsupportedAutocastDtype(Kind::Float))
    );
    assert!(matches!(
        AutocastGuard::enter(CPU, Kind::Double, true),
        Err(TorchExtError::UnsupportedAutocastDtype(Kind::Double))
    ));
    let bf16 = Autocast::new(CPU, Kind::BFloat16).unwrap();
    assert_eq!((bf16.device(), bf16.dtype()), (CPU, Kind::BFloat16));
    assert!(
        !is_enabled(CPU).unwrap(),
        "checking a setting leaves no state"
    );
    {
        let _on = autocast_region(Some(bf16), true);
        assert_eq!(x.matmul(&w.tr()).kind(), Kind::BFloat16);
        let _off = autocast_region(Some(bf16), false);
        assert_eq!(x.matmul(&w.tr()).kind(), Kind::Float);
    }
    {
        let none = autocast_region(None, true);
        assert!(none.is_none());
        assert_eq!(x.matmul(&w.tr()).kind(), Kind::Float);
    }
    assert_eq!(
        AutocastDevice::of(Device::Cuda(1)),
        Some(AutocastDevice::Cuda)
    );
    assert_eq!(AutocastDevice::of(Device::Mps), None);
}

#[test]
fn cuda_queries_without_a_gpu() {
    if tch::Cuda::is_available() {
        let (major, _) = cuda_capability(0).unwrap();
        assert_eq!(cuda_supports_bf16(), major >= 8);
        let (free, total) = cuda_mem_info().unwrap();
        assert!(total > 0 && free <= total, "free {free} of {total}");
        return;
    }
    assert!(!cuda_supports_bf16());
    assert!(cuda_capability(0).is_err());
    let error = cuda_mem_info().unwrap_err().to_string();
    assert!(error.contains("cudaMemGetInfo"), "{error}");
    // CUDA autocast state can be switched without a GPU (it is only thread-local flags).
    let _region = AutocastGuard::enter(AutocastDevice::Cuda, Kind::BFloat16, true).unwrap();
    assert!(is_enabled(AutocastDevice::Cuda).unwrap());
    assert!(!is_enabled(CPU).unwrap());
}
