//! Reusable work buffers so that optimizer steps allocate no tensor storage.

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::tensor_util::view_prefix;

/// Two flat buffers per (kind, device), each as large as the largest parameter of that kind.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffers: Vec<ScratchBuffers>,
}

#[derive(Debug)]
struct ScratchBuffers {
    kind: Kind,
    device: Device,
    first: Tensor,
    second: Tensor,
}

impl Scratch {
    /// Sizes the buffers for every tensor in `params`.
    pub(crate) fn for_params<'a>(params: impl Iterator<Item = &'a Tensor>) -> Result<Self> {
        let mut largest: Vec<(Kind, Device, i64)> = Vec::new();
        for p in params {
            let (kind, device, numel) = (p.kind(), p.device(), p.numel() as i64);
            match largest
                .iter_mut()
                .find(|(k, d, _)| *k == kind && *d == device)
            {
                Some(entry) => entry.2 = entry.2.max(numel),
                None => largest.push((kind, device, numel)),
            }
        }
        let buffers = largest
            .into_iter()
            .map(|(kind, device, numel)| {
                Ok(ScratchBuffers {
                    kind,
                    device,
                    first: Tensor::f_empty([numel], (kind, device))?,
                    second: Tensor::f_empty([numel], (kind, device))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { buffers })
    }

    /// Two work tensors shaped like `like` (views of the shared buffers).
    pub(crate) fn pair(&self, like: &Tensor) -> Result<(Tensor, Tensor)> {
        let shape = like.size();
        let entry = self
            .buffers
            .iter()
            .find(|b| b.kind == like.kind() && b.device == like.device())
            .filter(|b| b.first.numel() >= like.numel());
        match entry {
            Some(b) => Ok((
                view_prefix(&b.first, &shape)?,
                view_prefix(&b.second, &shape)?,
            )),
            // A parameter the buffers were not sized for: fall back to fresh storage.
            None => Ok((like.f_empty_like()?, like.f_empty_like()?)),
        }
    }
}
