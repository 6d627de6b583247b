//! Errors of the reader and the writer.

use crate::opcode;

/// A pickle that could not be read: where, on which opcode, and why.
#[derive(Debug, thiserror::Error)]
#[error("pickle: {kind} (at byte {offset}{})", OpcodeSuffix(*.opcode))]
pub struct ReadError {
    /// Byte offset of the opcode being executed (or of the end of input).
    pub offset: usize,
    /// The opcode being executed, when there was one.
    pub opcode: Option<u8>,
    pub kind: ReadErrorKind,
}

struct OpcodeSuffix(Option<u8>);

impl std::fmt::Display for OpcodeSuffix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(op) => write!(f, ", opcode {} 0x{op:02x}", opcode::name(op)),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadErrorKind {
    #[error("truncated input: needed {needed} more bytes, {available} left")]
    Truncated { needed: u64, available: usize },
    #[error("input ended without STOP")]
    MissingStop,
    #[error("opcode not supported by this safe reader")]
    UnsupportedOpcode,
    #[error("unsupported pickle protocol {0}")]
    UnsupportedProtocol(u8),
    #[error("global `{0}` is not allowed")]
    ForbiddenGlobal(String),
    #[error("stack underflow")]
    StackUnderflow,
    #[error("no MARK on the stack")]
    MissingMark,
    #[error("stack deeper than the limit of {0} entries")]
    StackTooDeep(usize),
    #[error("more than {0} objects")]
    TooManyObjects(usize),
    #[error("memo index {0} was never stored")]
    MemoMissing(u64),
    #[error("memo holds more than {0} entries")]
    MemoTooLarge(usize),
    #[error("nesting deeper than {0} levels (or a reference cycle)")]
    NestingTooDeep(usize),
    #[error("decoded strings and bytes exceed the budget of {0} bytes")]
    TooManyBytes(usize),
    #[error("invalid UTF-8 in a string")]
    InvalidUtf8,
    #[error("negative length {0}")]
    NegativeLength(i64),
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("`_codecs.encode` with arguments other than (latin-1 str, 'latin1')")]
    BadCodecsEncode,
}

impl ReadError {
    pub(crate) fn new(offset: usize, opcode: Option<u8>, kind: ReadErrorKind) -> Self {
        Self {
            offset,
            opcode,
            kind,
        }
    }
}

/// A value that cannot be written as a pickle of the requested protocol.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WriteError {
    #[error("cannot write {what} in pickle protocol {protocol}")]
    Unsupported { what: &'static str, protocol: u8 },
    #[error("global `{0}` has a name that GLOBAL cannot carry (empty or containing a newline)")]
    BadGlobalName(String),
    #[error("value nested deeper than {0} levels")]
    NestingTooDeep(usize),
    #[error("bytes or string of {0} bytes is too long for protocol 2/3 (max 4 GiB)")]
    TooLong(usize),
}
