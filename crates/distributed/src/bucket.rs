//! Gradient buckets, as DDP's `bucket_cap_mb` makes them: consecutive tensors of one kind
//! and device within a byte budget (a larger tensor gets a bucket of its own), flattened
//! into one tensor so that each bucket costs one collective.

use std::ops::Range;

use tch::{Device, Tensor};

use crate::error::Result;

/// Consecutive index ranges of `tensors`, each of one kind and device and within
/// `bucket_bytes` unless it holds a single tensor.
pub(crate) fn buckets(tensors: &[Tensor], bucket_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        let size = tensor_bytes(t);
        let same = i == start
            || (t.kind() == tensors[start].kind() && t.device() == tensors[start].device());
        if i > start && (!same || bytes + size > bucket_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < tensors.len() {
        out.push(start..tensors.len());
    }
    out
}

pub(crate) fn tensor_bytes(t: &Tensor) -> usize {
    t.numel() * t.kind().elt_size_in_bytes()
}

/// The tensors, detached, as one flat tensor on `device`.
pub(crate) fn flatten(tensors: &[Tensor], device: Device) -> Result<Tensor> {
    let flat: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.f_detach()?.f_to_device(device)?.f_reshape([-1]))
        .collect::<std::result::Result<_, _>>()?;
    Ok(Tensor::f_cat(&flat, 0)?)
}

/// Copies consecutive slices of `flat` back into `tensors` (each on its own device).
pub(crate) fn unflatten(flat: &Tensor, tensors: &mut [Tensor]) -> Result<()> {
    let mut offset = 0i64;
    for t in tensors.iter_mut() {
        let n = t.numel() as i64;
        let part = flat
            .f_narrow(0, offset, n)?
            .f_reshape(t.size())?
            .f_to_device(t.device())?;
        tch::no_grad(|| t.f_copy_(&part))?;
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn buckets_split_on_size_and_kind_and_keep_big_tensors_alone() {
        let f = |n: i64| Tensor::zeros([n], (Kind::Float, Device::Cpu));
        let d = |n: i64| Tensor::zeros([n], (Kind::Double, Device::Cpu));
        // 40 bytes budget: 4 + 4 floats fit (32), the next 4 (48) do not; a kind change
        // splits; 20 floats (80 bytes) stand alone.
        let tensors = [f(4), f(4), f(4), d(1), d(1), f(20), f(1)];
        assert_eq!(buckets(&tensors, 40), vec![0..2, 2..3, 3..5, 5..6, 6..7]);
        assert!(buckets(&[], 40).is_empty());
    }

    #[test]
    fn flatten_and_unflatten_round_trip() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[5.0f32]);
        let flat = flatten(&[a.shallow_clone(), b.shallow_clone()], Device::Cpu).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&flat).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0]
        );
        let doubled = &flat * 2.0;
        let mut out = [a.zeros_like(), b.zeros_like()];
        unflatten(&doubled, &mut out).unwrap();
        assert_eq!(out[0].size(), vec![2, 2]);
        assert_eq!(
            Vec::<f32>::try_from(out[0].reshape([-1])).unwrap(),
            vec![2.0, 4.0, 6.0, 8.0]
        );
        assert_eq!(Vec::<f32>::try_from(&out[1]).unwrap(), vec![10.0]);
    }
}
