//! Which globals a pickle may name, and the resource limits of the reader.

use std::collections::BTreeSet;

/// The globals (`module.name`) a pickle may name with `GLOBAL` / `STACK_GLOBAL`. Any other
/// global is an error. Allowed globals are still never called: they become [`crate::Value`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: BTreeSet<(String, String)>,
}

/// Typed storage classes torch.save names for the dtypes this project reads.
pub const TORCH_STORAGE_CLASSES: [&str; 10] = [
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
];

impl AllowList {
    /// Allows no global at all: plain data only.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds `module.name`.
    pub fn with(mut self, module: &str, name: &str) -> Self {
        self.entries.insert((module.to_owned(), name.to_owned()));
        self
    }

    pub fn allows(&self, module: &str, name: &str) -> bool {
        self.entries.iter().any(|(m, n)| m == module && n == name)
    }

    /// Plain data plus what protocol-2 pickles from Python 3 use for `bytes`:
    /// `_codecs.encode(str, 'latin1')`, and `bytes()` (named `__builtin__.bytes`) for `b""`.
    /// The reader decodes both to [`crate::Value::Bytes`].
    pub fn plain_data() -> Self {
        Self::empty()
            .with("_codecs", "encode")
            .with("__builtin__", "bytes")
            .with("builtins", "bytes")
    }

    /// What `torch.save` of state dicts, optimizer and scheduler states writes: `OrderedDict`,
    /// the tensor and parameter rebuild functions and the typed storage classes.
    pub fn torch_checkpoint() -> Self {
        let mut list = Self::plain_data()
            .with("collections", "OrderedDict")
            .with("torch._utils", "_rebuild_tensor_v2")
            .with("torch._utils", "_rebuild_parameter");
        for class in TORCH_STORAGE_CLASSES {
            list = list.with("torch", class);
        }
        list
    }
}

/// Bounds on what one pickle may make the reader allocate or do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Entries on the VM stack (MARKs included).
    pub max_stack: usize,
    /// Objects created by opcodes, and objects in the decoded tree (shared ones count per copy).
    pub max_objects: usize,
    /// Entries in the memo.
    pub max_memo: usize,
    /// Nesting depth of the decoded tree; also what stops reference cycles.
    pub max_depth: usize,
    /// Bytes of strings and bytes that sharing (memo references) may copy beyond the input size.
    pub max_copied_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_stack: 1 << 20,
            max_objects: 1 << 22,
            max_memo: 1 << 22,
            max_depth: 256,
            max_copied_bytes: 64 << 20,
        }
    }
}
