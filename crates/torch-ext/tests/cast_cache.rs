//! The weight-cast cache's lifetime. libtorch keeps ONE cache for the process (its nesting
//! depth is per thread), so any thread closing its outermost region clears it: this test
//! lives alone in its test binary.

use swinface_torch_ext::{AutocastDevice, AutocastGuard};
use tch::{Device, Kind, Tensor};

const CPU: AutocastDevice = AutocastDevice::Cpu;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Autocast caches the low-precision copy of each leaf weight while any region is open and
/// drops the cache when the outermost closes (torch.autocast.__exit__ clears it at depth 0).
#[test]
fn the_cast_cache_lives_until_the_outermost_region_closes() {
    tch::manual_seed(7);
    let x = Tensor::randn([5, 8], (Kind::Float, Device::Cpu));
    let weight = Tensor::randn([3, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let change_weight = || {
        tch::no_grad(|| {
            let mut alias = weight.shallow_clone();
            let _ = alias.g_mul_scalar_(2.0);
        })
    };
    let outer = AutocastGuard::enter(CPU, Kind::BFloat16, true).unwrap();
    let first = tch::no_grad(|| x.linear::<Tensor>(&weight, None));
    {
        let inner = AutocastGuard::enter(CPU, Kind::BFloat16, true).unwrap();
        drop(inner);
    }
    change_weight();
    // Still inside the outer region: the cached bf16 copy of the old weight is used.
    let cached = tch::no_grad(|| x.linear::<Tensor>(&weight, None));
    assert_eq!(max_abs_diff(&first, &cached), 0.0);
    drop(outer);
    let fresh_region = AutocastGuard::enter(CPU, Kind::BFloat16, true).unwrap();
    let fresh = tch::no_grad(|| x.linear::<Tensor>(&weight, None));
    drop(fresh_region);
    // A new region casts the changed weight: the output doubled.
    assert_eq!(max_abs_diff(&fresh, &(&first * 2.0)), 0.0);
    assert!(max_abs_diff(&first, &fresh) > 0.1);
}
