//! The pickle VM: executes the safe opcode subset into an arena of nodes, then turns the
//! node graph into a [`Value`] tree.
//!
//! Objects live in an arena and the stack and memo hold indices into it, so a memo reference
//! (`BINGET`) shares the object exactly as Python does: an item appended after the object was
//! memoised is seen through every reference.

use std::collections::HashMap;

use crate::allow::{AllowList, Limits};
use crate::error::{ReadError, ReadErrorKind};
use crate::opcode as op;
use crate::value::{Construct, Global, Object, Value};

/// Reads one pickle from `data` with the default [`Limits`]. Bytes after `STOP` are ignored.
pub fn read_pickle(data: &[u8], allow: &AllowList) -> Result<Value, ReadError> {
    read_pickle_with_limits(data, allow, &Limits::default())
}

/// Reads one pickle from `data`; every allocation is bounded by `limits` and by `data.len()`.
pub fn read_pickle_with_limits(
    data: &[u8],
    allow: &AllowList,
    limits: &Limits,
) -> Result<Value, ReadError> {
    let mut vm = Vm {
        data,
        pos: 0,
        op_start: 0,
        opcode: None,
        allow,
        limits,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = vm.run()?;
    let stop_offset = vm.op_start;
    let byte_budget = data.len().saturating_add(limits.max_copied_bytes);
    Materializer::new(vm.nodes, root, limits, byte_budget)
        .build(root, 0, true)
        .map_err(|kind| ReadError::new(stop_offset, Some(op::STOP), kind))
}

type NodeId = usize;

/// An arena object. Containers refer to their children by index.
enum Node {
    /// Scalars, strings, bytes and globals: no children.
    Leaf(Value),
    List(Vec<NodeId>),
    Tuple(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    Set(Vec<NodeId>),
    FrozenSet(Vec<NodeId>),
    Object(ObjectNode),
    PersId(NodeId),
    /// Moved into the output tree by its last reference.
    Taken,
}

struct ObjectNode {
    callable: Global,
    args: Vec<NodeId>,
    construct: Construct,
    state: Option<NodeId>,
    list_items: Vec<NodeId>,
    dict_items: Vec<(NodeId, NodeId)>,
}

impl Node {
    fn kind_name(&self) -> &'static str {
        match self {
            Node::Leaf(v) => v.kind_name(),
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Set(_) => "set",
            Node::FrozenSet(_) => "frozenset",
            Node::Object(_) => "object",
            Node::PersId(_) => "persistent id",
            Node::Taken => "moved value",
        }
    }

    fn for_each_child(&self, mut f: impl FnMut(NodeId)) {
        match self {
            Node::Leaf(_) | Node::Taken => {}
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                v.iter().copied().for_each(f)
            }
            Node::Dict(pairs) => pairs.iter().for_each(|&(k, v)| {
                f(k);
                f(v)
            }),
            Node::Object(o) => {
                o.args.iter().copied().for_each(&mut f);
                o.state.into_iter().for_each(&mut f);
                o.list_items.iter().copied().for_each(&mut f);
                o.dict_items.iter().for_each(|&(k, v)| {
                    f(k);
                    f(v)
                });
            }
            Node::PersId(id) => f(*id),
        }
    }
}

type OpResult<T> = Result<T, ReadErrorKind>;

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_start: usize,
    opcode: Option<u8>,
    allow: &'a AllowList,
    limits: &'a Limits,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    /// Stack lengths at each MARK (Python's metastack).
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
}

impl<'a> Vm<'a> {
    fn run(&mut self) -> Result<NodeId, ReadError> {
        loop {
            self.op_start = self.pos;
            self.opcode = None;
            let Some(&code) = self.data.get(self.pos) else {
                return Err(ReadError::new(self.pos, None, ReadErrorKind::MissingStop));
            };
            self.pos += 1;
            self.opcode = Some(code);
            match self.step(code) {
                Ok(Some(root)) => return Ok(root),
                Ok(None) => {}
                Err(kind) => return Err(ReadError::new(self.op_start, self.opcode, kind)),
            }
        }
    }

    /// Executes one opcode; returns the root at `STOP`.
    fn step(&mut self, code: u8) -> OpResult<Option<NodeId>> {
        match code {
            op::PROTO => {
                let version = self.read_u8()?;
                if version > 5 {
                    return Err(ReadErrorKind::UnsupportedProtocol(version));
                }
            }
            op::FRAME => {
                // Frames only group opcodes for buffered reading; the content follows inline.
                self.take(8)?;
            }
            op::STOP => return self.pop().map(Some),
            op::MARK => {
                self.check_stack_room()?;
                self.marks.push(self.stack.len());
            }
            op::EMPTY_DICT => self.push_new(Node::Dict(Vec::new()))?,
            op::EMPTY_LIST => self.push_new(Node::List(Vec::new()))?,
            op::EMPTY_TUPLE => self.push_new(Node::Tuple(Vec::new()))?,
            op::EMPTY_SET => self.push_new(Node::Set(Vec::new()))?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(code - op::TUPLE1) + 1;
                let items = self.pop_n(n)?;
                self.push_new(Node::Tuple(items))?;
            }
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push_new(Node::Tuple(items))?;
            }
            op::LIST => {
                let items = self.pop_mark()?;
                self.push_new(Node::List(items))?;
            }
            op::FROZENSET => {
                let items = self.pop_mark()?;
                self.push_new(Node::FrozenSet(items))?;
            }
            op::DICT => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.push_new(Node::Dict(pairs))?;
            }
            op::APPEND => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            op::SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.extend_dict(vec![(key, value)])?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.extend_dict(pairs)?;
            }
            op::ADDITEMS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                match &mut self.nodes[target] {
                    Node::Set(v) => v.extend(items),
                    other => return Err(wrong_type("set", other)),
                }
            }
            op::BININT => {
                let v = i32::from_le_bytes(self.take_array()?);
                self.push_leaf(Value::Int(v.into()))?;
            }
            op::BININT1 => {
                let v = self.read_u8()?;
                self.push_leaf(Value::Int(v.into()))?;
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(self.take_array()?);
                self.push_leaf(Value::Int(v.into()))?;
            }
            op::LONG1 => {
                let n = self.read_u8()?;
                let bytes = self.take(n.into())?;
                self.push_leaf(decode_long(bytes))?;
            }
            op::LONG4 => {
                let n = i32::from_le_bytes(self.take_array()?);
                let n = u64::try_from(n).map_err(|_| ReadErrorKind::NegativeLength(n.into()))?;
                let bytes = self.take(n)?;
                self.push_leaf(decode_long(bytes))?;
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.take_array()?);
                self.push_leaf(Value::Float(v))?;
            }
            op::NEWTRUE => self.push_leaf(Value::Bool(true))?,
            op::NEWFALSE => self.push_leaf(Value::Bool(false))?,
            op::NONE => self.push_leaf(Value::None)?,
            op::SHORT_BINUNICODE => {
                let n = self.read_u8()?;
                self.push_str(n.into())?;
            }
            op::BINUNICODE => {
                let n = u32::from_le_bytes(self.take_array()?);
                self.push_str(n.into())?;
            }
            op::BINUNICODE8 => {
                let n = u64::from_le_bytes(self.take_array()?);
                self.push_str(n)?;
            }
            op::SHORT_BINSTRING => {
                let n = self.read_u8()?;
                self.push_bytes(n.into())?;
            }
            op::BINSTRING => {
                let n = i32::from_le_bytes(self.take_array()?);
                let n = u64::try_from(n).map_err(|_| ReadErrorKind::NegativeLength(n.into()))?;
                self.push_bytes(n)?;
            }
            op::SHORT_BINBYTES => {
                let n = self.read_u8()?;
                self.push_bytes(n.into())?;
            }
            op::BINBYTES => {
                let n = u32::from_le_bytes(self.take_array()?);
                self.push_bytes(n.into())?;
            }
            op::BINBYTES8 => {
                let n = u64::from_le_bytes(self.take_array()?);
                self.push_bytes(n)?;
            }
            op::BINPUT => {
                let index = self.read_u8()?;
                self.memo_put(index.into())?;
            }
            op::LONG_BINPUT => {
                let index = u32::from_le_bytes(self.take_array()?);
                self.memo_put(index.into())?;
            }
            op::MEMOIZE => {
                let index = self.memo.len() as u64;
                self.memo_put(index)?;
            }
            op::BINGET => {
                let index = self.read_u8()?;
                self.memo_get(index.into())?;
            }
            op::LONG_BINGET => {
                let index = u32::from_le_bytes(self.take_array()?);
                self.memo_get(index.into())?;
            }
            op::GLOBAL => {
                let module = self.read_line()?;
                let name = self.read_line()?;
                self.push_global(module, name)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let module = self.string_of(module)?;
                let name = self.string_of(name)?;
                self.push_global(module, name)?;
            }
            op::REDUCE | op::NEWOBJ => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let callable = match &self.nodes[callable] {
                    Node::Leaf(Value::Global(g)) => g.clone(),
                    other => return Err(wrong_type("global", other)),
                };
                let args = match &self.nodes[args] {
                    Node::Tuple(items) => items.clone(),
                    other => return Err(wrong_type("tuple of arguments", other)),
                };
                let construct = if code == op::REDUCE {
                    Construct::Reduce
                } else {
                    Construct::NewObj
                };
                self.push_new(Node::Object(ObjectNode {
                    callable,
                    args,
                    construct,
                    state: None,
                    list_items: Vec::new(),
                    dict_items: Vec::new(),
                }))?;
            }
            op::BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                match &mut self.nodes[target] {
                    Node::Object(o) => o.state = Some(state),
                    other => return Err(wrong_type("object", other)),
                }
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                self.push_new(Node::PersId(pid))?;
            }
            _ => return Err(ReadErrorKind::UnsupportedOpcode),
        }
        Ok(None)
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The next `n` bytes; `n` is checked against what is left before anything is allocated.
    fn take(&mut self, n: u64) -> OpResult<&'a [u8]> {
        let available = self.remaining();
        match usize::try_from(n) {
            Ok(len) if len <= available => {
                let bytes = &self.data[self.pos..self.pos + len];
                self.pos += len;
                Ok(bytes)
            }
            _ => Err(ReadErrorKind::Truncated {
                needed: n,
                available,
            }),
        }
    }

    fn take_array<const N: usize>(&mut self) -> OpResult<[u8; N]> {
        let bytes = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn read_u8(&mut self) -> OpResult<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    /// A `\n`-terminated UTF-8 line (the operands of `GLOBAL`).
    fn read_line(&mut self) -> OpResult<String> {
        let rest = &self.data[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(ReadErrorKind::Truncated {
                needed: rest.len() as u64 + 1,
                available: rest.len(),
            });
        };
        let line = std::str::from_utf8(&rest[..len]).map_err(|_| ReadErrorKind::InvalidUtf8)?;
        self.pos += len + 1;
        Ok(line.to_owned())
    }

    fn check_stack_room(&self) -> OpResult<()> {
        if self.stack.len() + self.marks.len() >= self.limits.max_stack {
            return Err(ReadErrorKind::StackTooDeep(self.limits.max_stack));
        }
        Ok(())
    }

    fn alloc(&mut self, node: Node) -> OpResult<NodeId> {
        if self.nodes.len() >= self.limits.max_objects {
            return Err(ReadErrorKind::TooManyObjects(self.limits.max_objects));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push_id(&mut self, id: NodeId) -> OpResult<()> {
        self.check_stack_room()?;
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, node: Node) -> OpResult<()> {
        self.check_stack_room()?;
        let id = self.alloc(node)?;
        self.stack.push(id);
        Ok(())
    }

    fn push_leaf(&mut self, value: Value) -> OpResult<()> {
        self.push_new(Node::Leaf(value))
    }

    fn push_str(&mut self, len: u64) -> OpResult<()> {
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| ReadErrorKind::InvalidUtf8)?;
        self.push_leaf(Value::Str(s.to_owned()))
    }

    fn push_bytes(&mut self, len: u64) -> OpResult<()> {
        let bytes = self.take(len)?;
        self.push_leaf(Value::Bytes(bytes.to_vec()))
    }

    fn push_global(&mut self, module: String, name: String) -> OpResult<()> {
        if !self.allow.allows(&module, &name) {
            return Err(ReadErrorKind::ForbiddenGlobal(format!("{module}.{name}")));
        }
        self.push_leaf(Value::Global(Global { module, name }))
    }

    fn string_of(&self, id: NodeId) -> OpResult<String> {
        match &self.nodes[id] {
            Node::Leaf(Value::Str(s)) => Ok(s.clone()),
            other => Err(wrong_type("str", other)),
        }
    }

    fn top(&self) -> OpResult<NodeId> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => Err(ReadErrorKind::StackUnderflow),
        }
    }

    fn pop(&mut self) -> OpResult<NodeId> {
        self.top()?;
        self.stack.pop().ok_or(ReadErrorKind::StackUnderflow)
    }

    fn pop_n(&mut self, n: usize) -> OpResult<Vec<NodeId>> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err(ReadErrorKind::StackUnderflow);
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    /// Everything above the last MARK, removing the mark.
    fn pop_mark(&mut self) -> OpResult<Vec<NodeId>> {
        let mark = self.marks.pop().ok_or(ReadErrorKind::MissingMark)?;
        Ok(self.stack.split_off(mark))
    }

    fn extend_list(&mut self, items: Vec<NodeId>) -> OpResult<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(v) => v.extend(items),
            Node::Object(o) => o.list_items.extend(items),
            other => return Err(wrong_type("list", other)),
        }
        Ok(())
    }

    fn extend_dict(&mut self, pairs: Vec<(NodeId, NodeId)>) -> OpResult<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(v) => v.extend(pairs),
            Node::Object(o) => o.dict_items.extend(pairs),
            other => return Err(wrong_type("dict", other)),
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> OpResult<()> {
        let id = self.top()?;
        if !self.memo.contains_key(&index) && self.memo.len() >= self.limits.max_memo {
            return Err(ReadErrorKind::MemoTooLarge(self.limits.max_memo));
        }
        self.memo.insert(index, id);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> OpResult<()> {
        let id = *self
            .memo
            .get(&index)
            .ok_or(ReadErrorKind::MemoMissing(index))?;
        self.push_id(id)
    }
}

fn wrong_type(expected: &'static str, found: &Node) -> ReadErrorKind {
    ReadErrorKind::WrongType {
        expected,
        found: found.kind_name(),
    }
}

fn pairs(items: Vec<NodeId>) -> OpResult<Vec<(NodeId, NodeId)>> {
    let chunks = items.chunks_exact(2);
    if !chunks.remainder().is_empty() {
        return Err(ReadErrorKind::WrongType {
            expected: "key/value pairs",
            found: "an odd number of items",
        });
    }
    Ok(chunks.map(|kv| (kv[0], kv[1])).collect())
}

/// `LONG1`/`LONG4` payload: little-endian two's complement of any length.
fn decode_long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::Long(bytes.to_vec());
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(buf))
}

/// Turns the node graph into a tree, copying shared nodes, within the object, depth and byte
/// budgets. A node's last reference moves it instead of copying.
struct Materializer<'l> {
    nodes: Vec<Node>,
    /// Edges into each node not yet used up (see [`Materializer::visit`]).
    refs: Vec<u32>,
    limits: &'l Limits,
    objects: usize,
    bytes_left: usize,
}

impl<'l> Materializer<'l> {
    fn new(nodes: Vec<Node>, root: NodeId, limits: &'l Limits, byte_budget: usize) -> Self {
        let mut refs = vec![0u32; nodes.len()];
        refs[root] = 1;
        for node in &nodes {
            node.for_each_child(|child| refs[child] = refs[child].saturating_add(1));
        }
        Self {
            nodes,
            refs,
            limits,
            objects: 0,
            bytes_left: byte_budget,
        }
    }

    /// The node behind one edge. The edge is used up when its parent was moved (`via_owned`):
    /// then the node is moved out once all its edges are used up. Otherwise the parent will
    /// be visited again, so the node is cloned shallowly (its child ids).
    fn visit(&mut self, id: NodeId, via_owned: bool) -> (Node, bool) {
        let owned = via_owned && {
            self.refs[id] = self.refs[id].saturating_sub(1);
            self.refs[id] == 0
        };
        let node = if owned {
            std::mem::replace(&mut self.nodes[id], Node::Taken)
        } else {
            shallow_clone(&self.nodes[id])
        };
        (node, owned)
    }

    fn build(&mut self, id: NodeId, depth: usize, via_owned: bool) -> OpResult<Value> {
        if depth > self.limits.max_depth {
            return Err(ReadErrorKind::NestingTooDeep(self.limits.max_depth));
        }
        self.objects += 1;
        if self.objects > self.limits.max_objects {
            return Err(ReadErrorKind::TooManyObjects(self.limits.max_objects));
        }
        let next = depth + 1;
        let (node, owned) = self.visit(id, via_owned);
        Ok(match node {
            Node::Leaf(value) => {
                self.charge_bytes(&value)?;
                value
            }
            // A taken node is reached again only through a reference cycle.
            Node::Taken => return Err(ReadErrorKind::NestingTooDeep(self.limits.max_depth)),
            Node::List(items) => Value::List(self.build_all(&items, next, owned)?),
            Node::Tuple(items) => Value::Tuple(self.build_all(&items, next, owned)?),
            Node::Set(items) => Value::Set(self.build_all(&items, next, owned)?),
            Node::FrozenSet(items) => Value::FrozenSet(self.build_all(&items, next, owned)?),
            Node::Dict(pairs) => Value::Dict(self.build_pairs(&pairs, next, owned)?),
            Node::PersId(pid) => Value::PersId(Box::new(self.build(pid, next, owned)?)),
            Node::Object(o) => {
                let object = Object {
                    callable: o.callable,
                    args: self.build_all(&o.args, next, owned)?,
                    construct: o.construct,
                    state: match o.state {
                        Some(s) => Some(self.build(s, next, owned)?),
                        None => None,
                    },
                    list_items: self.build_all(&o.list_items, next, owned)?,
                    dict_items: self.build_pairs(&o.dict_items, next, owned)?,
                };
                if object.callable.is("_codecs", "encode") {
                    codecs_encode(object)?
                } else if is_empty_bytes_call(&object) {
                    Value::Bytes(Vec::new())
                } else {
                    Value::Object(Box::new(object))
                }
            }
        })
    }

    fn build_all(&mut self, ids: &[NodeId], depth: usize, owned: bool) -> OpResult<Vec<Value>> {
        ids.iter().map(|&id| self.build(id, depth, owned)).collect()
    }

    fn build_pairs(
        &mut self,
        ids: &[(NodeId, NodeId)],
        depth: usize,
        owned: bool,
    ) -> OpResult<Vec<(Value, Value)>> {
        let pairs = ids
            .iter()
            .map(|&(k, v)| Ok((self.build(k, depth, owned)?, self.build(v, depth, owned)?)))
            .collect::<OpResult<Vec<_>>>()?;
        Ok(dedupe_keys(pairs))
    }

    fn charge_bytes(&mut self, value: &Value) -> OpResult<()> {
        let len = match value {
            Value::Str(s) => s.len(),
            Value::Bytes(b) | Value::Long(b) => b.len(),
            _ => 0,
        };
        self.bytes_left = self
            .bytes_left
            .checked_sub(len)
            .ok_or(ReadErrorKind::TooManyBytes(self.limits.max_copied_bytes))?;
        Ok(())
    }
}

fn shallow_clone(node: &Node) -> Node {
    match node {
        Node::Leaf(v) => Node::Leaf(v.clone()),
        Node::List(v) => Node::List(v.clone()),
        Node::Tuple(v) => Node::Tuple(v.clone()),
        Node::Dict(v) => Node::Dict(v.clone()),
        Node::Set(v) => Node::Set(v.clone()),
        Node::FrozenSet(v) => Node::FrozenSet(v.clone()),
        Node::Object(o) => Node::Object(ObjectNode {
            callable: o.callable.clone(),
            args: o.args.clone(),
            construct: o.construct,
            state: o.state,
            list_items: o.list_items.clone(),
            dict_items: o.dict_items.clone(),
        }),
        Node::PersId(id) => Node::PersId(*id),
        Node::Taken => Node::Taken,
    }
}

/// `_codecs.encode(s, 'latin1')`, which Python 3 writes for `bytes` in protocol 2, decoded as
/// data: every char of `s` is one byte.
fn codecs_encode(object: Object) -> OpResult<Value> {
    let plain = object.construct == Construct::Reduce
        && object.state.is_none()
        && object.list_items.is_empty()
        && object.dict_items.is_empty();
    match (plain, object.args.as_slice()) {
        (true, [Value::Str(text), Value::Str(encoding)])
            if encoding == "latin1" || encoding == "latin-1" =>
        {
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| ReadErrorKind::BadCodecsEncode))
                .collect::<OpResult<Vec<u8>>>()
                .map(Value::Bytes)
        }
        _ => Err(ReadErrorKind::BadCodecsEncode),
    }
}

/// `bytes()`: how Python 3 writes `b""` in protocol 2.
fn is_empty_bytes_call(object: &Object) -> bool {
    (object.callable.is("__builtin__", "bytes") || object.callable.is("builtins", "bytes"))
        && object.construct == Construct::Reduce
        && object.args.is_empty()
        && object.state.is_none()
        && object.list_items.is_empty()
        && object.dict_items.is_empty()
}

/// Hashable view of the key types Python dicts commonly use (`True == 1` as in Python).
#[derive(PartialEq, Eq, Hash)]
enum KeyRepr<'a> {
    None,
    Int(i64),
    Str(&'a str),
    Bytes(&'a [u8]),
}

fn key_repr(key: &Value) -> Option<KeyRepr<'_>> {
    match key {
        Value::None => Some(KeyRepr::None),
        Value::Bool(b) => Some(KeyRepr::Int(i64::from(*b))),
        Value::Int(i) => Some(KeyRepr::Int(*i)),
        Value::Str(s) => Some(KeyRepr::Str(s)),
        Value::Bytes(b) => Some(KeyRepr::Bytes(b)),
        _ => None,
    }
}

/// Python dict semantics for repeated keys: the first key keeps its place, the last value wins.
fn dedupe_keys(pairs: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    let mut duplicates = Vec::new();
    {
        let mut first_index = HashMap::with_capacity(pairs.len());
        for (i, (key, _)) in pairs.iter().enumerate() {
            if let Some(repr) = key_repr(key) {
                match first_index.entry(repr) {
                    std::collections::hash_map::Entry::Occupied(e) => {
                        duplicates.push((*e.get(), i))
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(i);
                    }
                }
            }
        }
    }
    if duplicates.is_empty() {
        return pairs;
    }
    let mut slots: Vec<Option<(Value, Value)>> = pairs.into_iter().map(Some).collect();
    for (first, dup) in duplicates {
        if let Some((_, value)) = slots[dup].take() {
            if let Some(slot) = slots[first].as_mut() {
                slot.1 = value;
            }
        }
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payloads_decode_as_python_does() {
        assert_eq!(decode_long(&[]), Value::Int(0));
        assert_eq!(decode_long(&[0xff]), Value::Int(-1));
        assert_eq!(decode_long(&[0x80, 0x00]), Value::Int(128));
        assert_eq!(
            decode_long(&[0, 0, 0, 0, 0, 0, 0, 0x80]),
            Value::Int(i64::MIN)
        );
        assert_eq!(decode_long(&[1; 9]), Value::Long(vec![1; 9]));
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value() {
        // Python: {1: 'a', 'k': 'x', True: 'b'} == {1: 'b', 'k': 'x'}
        let pairs = vec![
            (Value::Int(1), Value::from("a")),
            (Value::from("k"), Value::from("x")),
            (Value::Bool(true), Value::from("b")),
        ];
        assert_eq!(
            dedupe_keys(pairs),
            vec![
                (Value::Int(1), Value::from("b")),
                (Value::from("k"), Value::from("x"))
            ]
        );
    }
}
