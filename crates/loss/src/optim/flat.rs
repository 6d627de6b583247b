//! Flat buffers: a group's parameters (and, from the first step on, their gradients) become
//! views of one contiguous buffer, so that an update is a handful of large kernels instead of a
//! handful per tensor.
//!
//! Relocation uses `set_data` on the parameters and on their gradient tensors. Autograd then
//! keeps accumulating into the relocated gradients in place, and `zero_grad` zeroes them in
//! place. Code that replaces a parameter's storage later (`set_data`, moving a VarStore) is
//! detected at the next step and the parameter is relocated again.

use tch::{Device, Kind, Tensor};

use crate::error::{LossError, Result};

/// Where each parameter lives in the flat buffers of its group.
#[derive(Debug)]
pub(crate) struct FlatLayout {
    /// (offset, shape) per parameter.
    spans: Vec<(i64, Vec<i64>)>,
    numel: i64,
    kind: Kind,
    device: Device,
}

impl FlatLayout {
    /// None when the group is empty or mixes kinds or devices (then it stays per-tensor).
    fn of(params: &[(String, Tensor)]) -> Option<Self> {
        let (_, first) = params.first()?;
        let (kind, device) = (first.kind(), first.device());
        if params
            .iter()
            .any(|(_, p)| p.kind() != kind || p.device() != device)
        {
            return None;
        }
        let mut spans = Vec::with_capacity(params.len());
        let mut numel = 0;
        for (_, p) in params {
            spans.push((numel, p.size()));
            numel += p.numel() as i64;
        }
        Some(Self {
            spans,
            numel,
            kind,
            device,
        })
    }

    /// Parameter `i`'s view of `flat`.
    pub(crate) fn view(&self, flat: &Tensor, i: usize) -> Result<Tensor> {
        let (offset, shape) = &self.spans[i];
        let numel: i64 = shape.iter().product();
        Ok(flat.f_narrow(0, *offset, numel)?.f_view(shape.as_slice())?)
    }

    pub(crate) fn zeros(&self) -> Result<Tensor> {
        Ok(Tensor::f_zeros([self.numel], (self.kind, self.device))?)
    }
}

/// A group's parameters and gradients as views of two flat buffers.
#[derive(Debug)]
pub(crate) struct FlatGroup {
    pub(crate) layout: FlatLayout,
    pub(crate) params: Tensor,
    pub(crate) grads: Tensor,
}

impl FlatGroup {
    /// Copies the parameters into a new flat buffer and makes them views of it.
    pub(crate) fn relocate(params: &mut [(String, Tensor)]) -> Result<Option<Self>> {
        let Some(layout) = FlatLayout::of(params) else {
            return Ok(None);
        };
        let group = Self {
            params: layout.zeros()?,
            grads: layout.zeros()?,
            layout,
        };
        for (i, (_, param)) in params.iter_mut().enumerate() {
            let view = group.layout.view(&group.params, i)?;
            move_into(param, view)?;
        }
        Ok(Some(group))
    }

    /// Makes sure every parameter and gradient is a view of the flat buffers (relocating
    /// gradients the first time they exist). False when a parameter has no gradient.
    pub(crate) fn attach(&mut self, params: &mut [(String, Tensor)]) -> Result<bool> {
        for (i, (name, param)) in params.iter_mut().enumerate() {
            if param.kind() != self.layout.kind || param.device() != self.layout.device {
                return Err(LossError::InvalidConfig {
                    field: "flat_buffers",
                    reason: format!(
                        "parameter {name} changed kind or device after the optimizer was built"
                    ),
                });
            }
            let view = self.layout.view(&self.params, i)?;
            if param.data_ptr() != view.data_ptr() {
                move_into(param, view)?;
            }
            let mut grad = param.f_grad()?;
            if !grad.defined() {
                return Ok(false);
            }
            let grad_view = self.layout.view(&self.grads, i)?;
            if grad.data_ptr() != grad_view.data_ptr() {
                move_into(&mut grad, grad_view)?;
            }
        }
        Ok(true)
    }
}

/// Copies `tensor`'s values into `view` and points `tensor` at it.
fn move_into(tensor: &mut Tensor, mut view: Tensor) -> Result<()> {
    tch::no_grad(|| view.f_copy_(tensor))?;
    tensor.set_data(&view);
    Ok(())
}

/// Per-parameter views of a fresh flat state buffer, or per-parameter zeros without a layout.
pub(crate) fn state_buffer(
    flat: Option<&FlatGroup>,
    params: &[(String, Tensor)],
) -> Result<(Option<Tensor>, Vec<Tensor>)> {
    match flat {
        Some(group) => {
            let buffer = group.layout.zeros()?;
            let views = (0..params.len())
                .map(|i| group.layout.view(&buffer, i))
                .collect::<Result<_>>()?;
            Ok((Some(buffer), views))
        }
        None => Ok((
            None,
            params
                .iter()
                .map(|(_, p)| p.f_zeros_like())
                .collect::<Result<_, _>>()?,
        )),
    }
}
