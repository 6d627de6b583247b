//! Writes [`Value`] trees as protocol-2 (what torch.save uses) or protocol-3 pickles.

use std::collections::HashMap;

use crate::error::WriteError;
use crate::opcode as op;
use crate::value::{Construct, Global, Object, Value};

/// Pickle protocol to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// What `torch.save` writes; `bytes` become `_codecs.encode(str, 'latin1')` as in Python 3.
    V2,
    /// Adds `BINBYTES` for `bytes`.
    V3,
}

impl Protocol {
    fn number(self) -> u8 {
        match self {
            Protocol::V2 => 2,
            Protocol::V3 => 3,
        }
    }
}

/// Deepest nesting the writer follows before refusing the value.
const MAX_DEPTH: usize = 512;
/// Python writes `APPENDS`/`SETITEMS` in batches of this many items.
const BATCH: usize = 1000;

/// Serialises `value` into a complete pickle (`PROTO` ... `STOP`). Globals are memoised so a
/// global named many times (e.g. torch's tensor rebuild function) is written once.
pub fn write_pickle(value: &Value, protocol: Protocol) -> Result<Vec<u8>, WriteError> {
    let mut writer = Writer {
        out: vec![op::PROTO, protocol.number()],
        protocol,
        memo: HashMap::new(),
    };
    writer.value(value, 0)?;
    writer.out.push(op::STOP);
    Ok(writer.out)
}

struct Writer {
    out: Vec<u8>,
    protocol: Protocol,
    /// Memo index of each global already written.
    memo: HashMap<Global, u32>,
}

impl Writer {
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), WriteError> {
        if depth > MAX_DEPTH {
            return Err(WriteError::NestingTooDeep(MAX_DEPTH));
        }
        let next = depth + 1;
        match value {
            Value::None => self.out.push(op::NONE),
            Value::Bool(true) => self.out.push(op::NEWTRUE),
            Value::Bool(false) => self.out.push(op::NEWFALSE),
            Value::Int(i) => self.int(*i),
            Value::Long(bytes) => self.long(bytes)?,
            Value::Float(x) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&x.to_be_bytes());
            }
            Value::Str(s) => self.str(s)?,
            Value::Bytes(b) => self.bytes(b)?,
            Value::List(items) => {
                self.out.push(op::EMPTY_LIST);
                self.appends(items, next)?;
            }
            Value::Tuple(items) => self.tuple(items, next)?,
            Value::Dict(pairs) => {
                self.out.push(op::EMPTY_DICT);
                self.setitems(pairs, next)?;
            }
            Value::Set(_) => return Err(self.unsupported("a set")),
            Value::FrozenSet(_) => return Err(self.unsupported("a frozenset")),
            Value::Global(g) => self.global(g)?,
            Value::Object(o) => self.object(o, next)?,
            Value::PersId(pid) => {
                self.value(pid, next)?;
                self.out.push(op::BINPERSID);
            }
        }
        Ok(())
    }

    fn unsupported(&self, what: &'static str) -> WriteError {
        WriteError::Unsupported {
            what,
            protocol: self.protocol.number(),
        }
    }

    fn int(&mut self, i: i64) {
        if let Ok(v) = u8::try_from(i) {
            self.out.extend_from_slice(&[op::BININT1, v]);
        } else if let Ok(v) = u16::try_from(i) {
            self.out.push(op::BININT2);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(i) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            let bytes = i.to_le_bytes();
            // Shortest two's complement: drop high bytes that only repeat the sign.
            let mut len = 8;
            while len > 1 {
                let (high, below) = (bytes[len - 1], bytes[len - 2]);
                let sign_only =
                    (high == 0x00 && below & 0x80 == 0) || (high == 0xff && below & 0x80 != 0);
                if !sign_only {
                    break;
                }
                len -= 1;
            }
            self.out.extend_from_slice(&[op::LONG1, len as u8]);
            self.out.extend_from_slice(&bytes[..len]);
        }
    }

    fn long(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if let Ok(len) = u8::try_from(bytes.len()) {
            self.out.extend_from_slice(&[op::LONG1, len]);
        } else {
            let len = i32::try_from(bytes.len()).map_err(|_| WriteError::TooLong(bytes.len()))?;
            self.out.push(op::LONG4);
            self.out.extend_from_slice(&len.to_le_bytes());
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), WriteError> {
        let len = u32::try_from(s.len()).map_err(|_| WriteError::TooLong(s.len()))?;
        self.out.push(op::BINUNICODE);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), WriteError> {
        match self.protocol {
            Protocol::V3 => {
                if let Ok(len) = u8::try_from(b.len()) {
                    self.out.extend_from_slice(&[op::SHORT_BINBYTES, len]);
                } else {
                    let len = u32::try_from(b.len()).map_err(|_| WriteError::TooLong(b.len()))?;
                    self.out.push(op::BINBYTES);
                    self.out.extend_from_slice(&len.to_le_bytes());
                }
                self.out.extend_from_slice(b);
            }
            Protocol::V2 => {
                let latin1: String = b.iter().map(|&byte| char::from(byte)).collect();
                self.global(&Global::new("_codecs", "encode"))?;
                self.str(&latin1)?;
                self.str("latin1")?;
                self.out.extend_from_slice(&[op::TUPLE2, op::REDUCE]);
            }
        }
        Ok(())
    }

    fn tuple(&mut self, items: &[Value], depth: usize) -> Result<(), WriteError> {
        match items.len() {
            0 => self.out.push(op::EMPTY_TUPLE),
            n @ 1..=3 => {
                for item in items {
                    self.value(item, depth)?;
                }
                self.out.push(op::TUPLE1 + (n as u8 - 1));
            }
            _ => {
                self.out.push(op::MARK);
                for item in items {
                    self.value(item, depth)?;
                }
                self.out.push(op::TUPLE);
            }
        }
        Ok(())
    }

    /// Appends `items` to the list (or object) on top of the stack.
    fn appends(&mut self, items: &[Value], depth: usize) -> Result<(), WriteError> {
        for batch in items.chunks(BATCH) {
            if let [single] = batch {
                self.value(single, depth)?;
                self.out.push(op::APPEND);
                continue;
            }
            self.out.push(op::MARK);
            for item in batch {
                self.value(item, depth)?;
            }
            self.out.push(op::APPENDS);
        }
        Ok(())
    }

    /// Sets `pairs` on the dict (or object) on top of the stack.
    fn setitems(&mut self, pairs: &[(Value, Value)], depth: usize) -> Result<(), WriteError> {
        for batch in pairs.chunks(BATCH) {
            if let [(key, value)] = batch {
                self.value(key, depth)?;
                self.value(value, depth)?;
                self.out.push(op::SETITEM);
                continue;
            }
            self.out.push(op::MARK);
            for (key, value) in batch {
                self.value(key, depth)?;
                self.value(value, depth)?;
            }
            self.out.push(op::SETITEMS);
        }
        Ok(())
    }

    fn global(&mut self, global: &Global) -> Result<(), WriteError> {
        if let Some(&index) = self.memo.get(global) {
            self.get(index);
            return Ok(());
        }
        let valid = |s: &str| !s.is_empty() && !s.contains('\n');
        if !valid(&global.module) || !valid(&global.name) {
            return Err(WriteError::BadGlobalName(global.to_string()));
        }
        self.out.push(op::GLOBAL);
        for part in [&global.module, &global.name] {
            self.out.extend_from_slice(part.as_bytes());
            self.out.push(b'\n');
        }
        let index = self.memo.len() as u32;
        self.put(index);
        self.memo.insert(global.clone(), index);
        Ok(())
    }

    fn put(&mut self, index: u32) {
        if let Ok(i) = u8::try_from(index) {
            self.out.extend_from_slice(&[op::BINPUT, i]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
    }

    fn get(&mut self, index: u32) {
        if let Ok(i) = u8::try_from(index) {
            self.out.extend_from_slice(&[op::BINGET, i]);
        } else {
            self.out.push(op::LONG_BINGET);
            self.out.extend_from_slice(&index.to_le_bytes());
        }
    }

    fn object(&mut self, object: &Object, depth: usize) -> Result<(), WriteError> {
        self.global(&object.callable)?;
        self.tuple(&object.args, depth)?;
        self.out.push(match object.construct {
            Construct::Reduce => op::REDUCE,
            Construct::NewObj => op::NEWOBJ,
        });
        if !object.list_items.is_empty() {
            self.appends(&object.list_items, depth)?;
        }
        if !object.dict_items.is_empty() {
            self.setitems(&object.dict_items, depth)?;
        }
        if let Some(state) = &object.state {
            self.value(state, depth)?;
            self.out.push(op::BUILD);
        }
        Ok(())
    }
}
