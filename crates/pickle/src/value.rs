//! The data a pickle decodes to: a tree of plain values; nothing in it can run.

use std::fmt;

/// A Python global named by a pickle (`GLOBAL` / `STACK_GLOBAL`), e.g. `collections.OrderedDict`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Global {
    pub module: String,
    pub name: String,
}

impl Global {
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            name: name.into(),
        }
    }

    /// True when this is `module.name`.
    pub fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }
}

impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// How the pickle asked for an object to be constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Construct {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `NEWOBJ`: `cls.__new__(cls, *args)`.
    NewObj,
}

/// An object the pickle describes but this crate never builds: Python's `__reduce__` tuple
/// `(callable, args, state, listitems, dictitems)`. The caller decides what it means.
///
/// `list_items` and `dict_items` collect what `APPEND(S)` / `SETITEM(S)` added to the object
/// (an `OrderedDict` receives its entries this way); `state` is what `BUILD` passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub callable: Global,
    pub args: Vec<Value>,
    pub construct: Construct,
    pub state: Option<Value>,
    pub list_items: Vec<Value>,
    pub dict_items: Vec<(Value, Value)>,
}

impl Object {
    /// An object made by `REDUCE` with no state or items yet.
    pub fn reduce(callable: Global, args: Vec<Value>) -> Self {
        Self {
            callable,
            args,
            construct: Construct::Reduce,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }
}

/// A decoded pickle value. Dicts keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside `i64`, as `LONG1`/`LONG4` store it: little-endian two's complement.
    Long(Vec<u8>),
    Float(f64),
    Str(String),
    /// `bytes`, and Python 2 `str` (`BINSTRING`), which holds bytes.
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    FrozenSet(Vec<Value>),
    /// A global pushed but never called.
    Global(Global),
    /// A `REDUCE` / `NEWOBJ` / `BUILD` result, uninterpreted.
    Object(Box<Object>),
    /// A persistent id (`BINPERSID`): torch.save stores tensor storages this way.
    PersId(Box<Value>),
}

impl Value {
    /// Short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::Long(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
            Value::PersId(_) => "persistent id",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Elements of a list or a tuple.
    pub fn as_sequence(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Entries of a dict, or of a `collections.OrderedDict(...)` built with no arguments
    /// (how torch pickles state dicts); any `BUILD` state such as `_metadata` is ignored.
    pub fn dict_items(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            Value::Object(o)
                if o.callable.is("collections", "OrderedDict")
                    && o.args.is_empty()
                    && o.list_items.is_empty() =>
            {
                Some(&o.dict_items)
            }
            _ => None,
        }
    }

    /// The value stored under string key `key` in a dict (see [`Value::dict_items`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.dict_items()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// `collections.OrderedDict()` holding `items`, as torch pickles state dicts.
    pub fn ordered_dict(items: Vec<(Value, Value)>) -> Value {
        let mut object = Object::reduce(Global::new("collections", "OrderedDict"), Vec::new());
        object.dict_items = items;
        Value::Object(Box::new(object))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
