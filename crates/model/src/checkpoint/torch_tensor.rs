//! How torch.save describes a tensor inside its pickle, read and written as data:
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
//! with `storage` a persistent id `('storage', torch.<Type>Storage, key, location, numel)`
//! naming the archive entry `data/<key>`.

use swinface_pickle::{Global, Object, Value};
use tch::{Kind, Tensor};

use super::dtype::{kind_of_storage_class, storage_class_of};

/// Largest element count a tensor view may have beyond its storage's (views with stride 0,
/// e.g. `expand`, repeat elements); bounds the memory a crafted view can demand.
const MAX_EXPANDED_NUMEL: u64 = 1 << 24;

/// A storage entry of the archive as the pickle names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub kind: Kind,
    /// Elements (not bytes) in the storage.
    pub numel: u64,
}

impl StorageRef {
    /// Bytes the storage entry must hold; `None` on overflow.
    pub fn byte_len(&self) -> Option<u64> {
        self.numel.checked_mul(self.kind.elt_size_in_bytes() as u64)
    }
}

/// A tensor view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// What was expected and what the pickle held instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unexpected {
    pub expected: String,
    pub found: String,
}

fn unexpected(expected: &str, found: impl Into<String>) -> Unexpected {
    Unexpected {
        expected: expected.to_owned(),
        found: found.into(),
    }
}

fn is_rebuild_tensor(o: &Object) -> bool {
    o.callable.is("torch._utils", "_rebuild_tensor_v2")
}

fn is_rebuild_parameter(o: &Object) -> bool {
    o.callable.is("torch._utils", "_rebuild_parameter")
}

/// True for values torch.save wrote for a tensor or a parameter.
pub(crate) fn is_tensor(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| is_rebuild_tensor(o) || is_rebuild_parameter(o))
}

fn int_of(value: &Value, what: &str) -> Result<i64, Unexpected> {
    value
        .as_i64()
        .ok_or_else(|| unexpected(what, value.kind_name()))
}

fn ints_of(value: &Value, what: &str) -> Result<Vec<i64>, Unexpected> {
    match value {
        Value::Tuple(items) => items.iter().map(|v| int_of(v, what)).collect(),
        other => Err(unexpected(what, other.kind_name())),
    }
}

/// Reads the tensor reference out of a `_rebuild_tensor_v2` / `_rebuild_parameter` value.
pub(crate) fn parse_tensor(value: &Value) -> Result<TensorRef, Unexpected> {
    let object = value
        .as_object()
        .ok_or_else(|| unexpected("a tensor", value.kind_name()))?;
    if is_rebuild_parameter(object) {
        // _rebuild_parameter(data, requires_grad, backward_hooks): the data is the tensor.
        return match object.args.first() {
            Some(inner) if !is_rebuild_parameter_value(inner) => parse_tensor(inner),
            _ => Err(unexpected(
                "a tensor inside the parameter",
                "something else",
            )),
        };
    }
    if !is_rebuild_tensor(object) {
        return Err(unexpected(
            "a tensor",
            format!("a call of {}", object.callable),
        ));
    }
    // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    let [storage, offset, size, stride, ..] = object.args.as_slice() else {
        return Err(unexpected(
            "_rebuild_tensor_v2 with 6 or 7 arguments",
            format!("{} arguments", object.args.len()),
        ));
    };
    if !(6..=7).contains(&object.args.len()) {
        return Err(unexpected(
            "_rebuild_tensor_v2 with 6 or 7 arguments",
            format!("{} arguments", object.args.len()),
        ));
    }
    let storage = parse_storage(storage)?;
    let offset = int_of(offset, "an integer storage offset")?;
    let size = ints_of(size, "a tuple of integer sizes")?;
    let stride = ints_of(stride, "a tuple of integer strides")?;
    Ok(TensorRef {
        storage,
        offset,
        size,
        stride,
    })
}

fn is_rebuild_parameter_value(value: &Value) -> bool {
    value.as_object().is_some_and(is_rebuild_parameter)
}

fn parse_storage(value: &Value) -> Result<StorageRef, Unexpected> {
    let Value::PersId(pid) = value else {
        return Err(unexpected("a persistent storage id", value.kind_name()));
    };
    let fields = match pid.as_ref() {
        Value::Tuple(fields) => fields.as_slice(),
        other => return Err(unexpected("a storage tuple", other.kind_name())),
    };
    let [tag, class, key, _location, numel] = fields else {
        return Err(unexpected(
            "('storage', class, key, location, numel)",
            format!("a tuple of {} items", fields.len()),
        ));
    };
    if tag.as_str() != Some("storage") {
        return Err(unexpected("the tag 'storage'", format!("{tag:?}")));
    }
    let kind = match class {
        Value::Global(g) if g.module == "torch" => kind_of_storage_class(&g.name)
            .ok_or_else(|| unexpected("a supported storage type", g.to_string()))?,
        other => return Err(unexpected("a torch storage class", other.kind_name())),
    };
    let key = key
        .as_str()
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            unexpected(
                "a storage key of letters, digits or '_'",
                format!("{key:?}"),
            )
        })?;
    let numel = int_of(numel, "an integer element count")?;
    let numel = u64::try_from(numel)
        .map_err(|_| unexpected("a non-negative element count", numel.to_string()))?;
    Ok(StorageRef {
        key: key.to_owned(),
        kind,
        numel,
    })
}

impl TensorRef {
    /// Checks that the view stays inside its storage, with checked arithmetic; returns the
    /// view's element count.
    pub fn validate(&self) -> Result<u64, String> {
        if self.size.len() != self.stride.len() {
            return Err(format!(
                "{} sizes but {} strides",
                self.size.len(),
                self.stride.len()
            ));
        }
        if self.offset < 0 || self.size.iter().chain(&self.stride).any(|&v| v < 0) {
            return Err(format!(
                "negative offset, size or stride (offset {}, size {:?}, stride {:?})",
                self.offset, self.size, self.stride
            ));
        }
        let overflow = || format!("size {:?} overflows", self.size);
        let numel = self
            .size
            .iter()
            .try_fold(1u64, |acc, &s| acc.checked_mul(s as u64))
            .ok_or_else(overflow)?;
        let storage_numel = self.storage.numel;
        let offset = self.offset as u64;
        if numel == 0 {
            return if offset <= storage_numel {
                Ok(0)
            } else {
                Err(format!(
                    "offset {offset} beyond the storage's {storage_numel} elements"
                ))
            };
        }
        // Largest element index the view touches.
        let last = self
            .size
            .iter()
            .zip(&self.stride)
            .try_fold(offset, |acc, (&s, &st)| {
                (s as u64 - 1)
                    .checked_mul(st as u64)
                    .and_then(|span| acc.checked_add(span))
            })
            .ok_or_else(overflow)?;
        if last >= storage_numel {
            return Err(format!(
                "view (offset {offset}, size {:?}, stride {:?}) reaches element {last} of a \
                 storage of {storage_numel}",
                self.size, self.stride
            ));
        }
        if numel > storage_numel.max(MAX_EXPANDED_NUMEL) {
            return Err(format!(
                "view of {numel} elements repeats a storage of {storage_numel} elements too often"
            ));
        }
        Ok(numel)
    }

    /// The view as a new contiguous tensor, given the whole storage as a 1-D tensor.
    /// `validate` must have passed.
    pub fn materialize(&self, storage: &Tensor) -> Result<Tensor, tch::TchError> {
        storage
            .f_as_strided(
                self.size.as_slice(),
                self.stride.as_slice(),
                Some(self.offset),
            )?
            .f_contiguous()
    }
}

/// The pickle value torch.save writes for a contiguous tensor of `kind` and `size` whose
/// storage is archive entry `data/<key>`. `None` for element types torch storages lack here.
pub(crate) fn tensor_value(key: &str, kind: Kind, size: &[i64]) -> Option<Value> {
    let class = storage_class_of(kind)?;
    let numel: i64 = size.iter().product();
    let mut stride = vec![1i64; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        stride[i] = stride[i + 1] * size[i + 1].max(1);
    }
    let ints = |v: &[i64]| Value::Tuple(v.iter().copied().map(Value::Int).collect());
    let storage = Value::PersId(Box::new(Value::Tuple(vec![
        Value::from("storage"),
        Value::Global(Global::new("torch", class)),
        Value::from(key),
        Value::from("cpu"),
        Value::Int(numel),
    ])));
    Some(Value::Object(Box::new(Object::reduce(
        Global::new("torch._utils", "_rebuild_tensor_v2"),
        vec![
            storage,
            Value::Int(0),
            ints(size),
            ints(&stride),
            Value::Bool(false),
            Value::ordered_dict(Vec::new()),
        ],
    ))))
}
