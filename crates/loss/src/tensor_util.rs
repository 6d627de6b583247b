//! Small tensor helpers shared by the modules.

use tch::Tensor;

use crate::error::Result;

/// A detached copy of `tensor` in fresh storage.
pub(crate) fn deep_copy(tensor: &Tensor) -> Result<Tensor> {
    let source = tensor.f_detach()?;
    let mut copy = source.f_empty_like()?;
    tch::no_grad(|| copy.f_copy_(&source))?;
    Ok(copy)
}

/// `tensor`'s first `numel` elements of a flat buffer, viewed as `shape`.
pub(crate) fn view_prefix(buffer: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let numel: i64 = shape.iter().product();
    Ok(buffer.f_narrow(0, 0, numel)?.f_view(shape)?)
}
