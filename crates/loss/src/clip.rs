//! Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` (norm type 2).

use tch::Tensor;

use crate::error::Result;

/// The max norm the official loop clips the backbone's gradients to (after unscaling).
pub const BACKBONE_MAX_NORM: f64 = 5.0;

/// Scales the gradients of `params` in place so that their global L2 norm is at most
/// `max_norm`: total = ‖(‖g₁‖, …, ‖gₙ‖)‖₂, coef = min(max_norm / (total + 1e-6), 1), g *= coef
/// (always multiplied, as torch does, to avoid a device sync). Parameters without a gradient
/// are skipped. Returns the total norm before clipping: a 0-d tensor on the first gradient's
/// device (inf or NaN when a gradient is not finite, as in torch).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<Option<Tensor>> {
    let mut grads = Vec::new();
    for param in params {
        let grad = param.f_grad()?;
        if grad.defined() {
            grads.push(grad);
        }
    }
    clip_grads(&mut grads, max_norm)
}

/// [`clip_grad_norm`] on the gradient tensors themselves. Returns `None` when there are none.
pub fn clip_grads(grads: &mut [Tensor], max_norm: f64) -> Result<Option<Tensor>> {
    let Some(first) = grads.first() else {
        return Ok(None);
    };
    let device = first.device();
    let _guard = tch::no_grad_guard();
    let norms = grads
        .iter()
        .map(|g| Ok(g.f_norm()?.f_to_device(device)?))
        .collect::<Result<Vec<_>>>()?;
    let total = Tensor::f_stack(&norms, 0)?.f_norm()?;
    // Python's `max_norm / tensor` is `tensor.reciprocal() * max_norm`.
    let coef = total
        .f_add_scalar(1e-6)?
        .f_reciprocal()?
        .f_mul_scalar(max_norm)?
        .f_clamp_max(1.0)?;
    for grad in grads.iter_mut() {
        let coef = coef.f_to_device(grad.device())?;
        let _ = grad.f_mul_(&coef)?;
    }
    Ok(Some(total))
}
