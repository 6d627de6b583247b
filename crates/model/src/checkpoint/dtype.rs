//! Tensor element types as libtorch, torch.save storages and safetensors name them.

use safetensors::Dtype;
use tch::{Device, Kind, Tensor};

use super::CheckpointError;

/// The element types checkpoints may hold, with their three spellings.
const TABLE: [(Kind, &str, Dtype, &str); 10] = [
    (Kind::Float, "FloatStorage", Dtype::F32, "float32"),
    (Kind::Double, "DoubleStorage", Dtype::F64, "float64"),
    (Kind::Half, "HalfStorage", Dtype::F16, "float16"),
    (Kind::BFloat16, "BFloat16Storage", Dtype::BF16, "bfloat16"),
    (Kind::Int64, "LongStorage", Dtype::I64, "int64"),
    (Kind::Int, "IntStorage", Dtype::I32, "int32"),
    (Kind::Int16, "ShortStorage", Dtype::I16, "int16"),
    (Kind::Int8, "CharStorage", Dtype::I8, "int8"),
    (Kind::Uint8, "ByteStorage", Dtype::U8, "uint8"),
    (Kind::Bool, "BoolStorage", Dtype::BOOL, "bool"),
];

/// The kind stored by torch's typed storage class `torch.<class>`.
pub(crate) fn kind_of_storage_class(class: &str) -> Option<Kind> {
    TABLE.iter().find(|row| row.1 == class).map(|row| row.0)
}

/// The typed storage class torch.save names for `kind`.
pub(crate) fn storage_class_of(kind: Kind) -> Option<&'static str> {
    TABLE.iter().find(|row| row.0 == kind).map(|row| row.1)
}

pub(crate) fn kind_of_dtype(dtype: Dtype) -> Option<Kind> {
    TABLE.iter().find(|row| row.2 == dtype).map(|row| row.0)
}

pub(crate) fn dtype_of(kind: Kind) -> Option<Dtype> {
    TABLE.iter().find(|row| row.0 == kind).map(|row| row.2)
}

/// Python-style name (`float32`), for messages.
pub fn kind_name(kind: Kind) -> String {
    TABLE
        .iter()
        .find(|row| row.0 == kind)
        .map(|row| row.3.to_owned())
        .unwrap_or_else(|| format!("{kind:?}"))
}

fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
    )
}

/// Whether a checkpoint tensor of kind `found` may be copied into a variable of kind
/// `expected`: same kind, or a conversion within floats (fp16 checkpoint into fp32 model)
/// or within integers.
pub(crate) fn convertible(found: Kind, expected: Kind) -> bool {
    found == expected
        || (is_float(found) && is_float(expected))
        || (is_integer(found) && is_integer(expected))
}

/// The raw little-endian bytes of `tensor`, contiguous, from the CPU.
pub(crate) fn tensor_bytes(tensor: &Tensor) -> Result<Vec<u8>, CheckpointError> {
    let cpu = tch::no_grad(|| tensor.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous())?;
    let numel = cpu.numel();
    let mut bytes = vec![0u8; numel * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut bytes, numel)?;
    Ok(bytes)
}
