//! A safe subset of Python's pickle format.
//!
//! The reader accepts only the opcodes that `torch.save` (protocol 2) and insightface's
//! verification `.bin` files (protocols 2 to 4) use. It never imports or calls anything:
//! `GLOBAL` may name only what the caller's [`AllowList`] lists, and `REDUCE`, `NEWOBJ` and
//! `BUILD` produce [`Object`] values that the caller interprets. Every length is checked
//! against the bytes left before allocating, and [`Limits`] bound the stack, the memo, the
//! object count, the nesting depth and the bytes that shared references may copy.
//!
//! The writer emits protocol-2 (or 3) pickles of the same [`Value`] subset.

mod allow;
mod error;
pub mod opcode;
mod reader;
mod value;
mod writer;

pub use allow::{AllowList, Limits, TORCH_STORAGE_CLASSES};
pub use error::{ReadError, ReadErrorKind, WriteError};
pub use reader::{read_pickle, read_pickle_with_limits};
pub use value::{Construct, Global, Object, Value};
pub use writer::{write_pickle, Protocol};
