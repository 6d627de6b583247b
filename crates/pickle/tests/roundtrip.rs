//! Writer -> reader round trips.

mod common;

use common::{expected_object, global, int, s};
use swinface_pickle::{
    opcode, read_pickle, write_pickle, AllowList, Construct, Object, Protocol, Value, WriteError,
};

fn torch_like_state() -> Value {
    let storage = Value::PersId(Box::new(Value::Tuple(vec![
        s("storage"),
        Value::Global(global("torch", "FloatStorage")),
        s("0"),
        s("cpu"),
        int(6),
    ])));
    let tensor = Value::Object(Box::new(Object::reduce(
        global("torch._utils", "_rebuild_tensor_v2"),
        vec![
            storage,
            int(0),
            Value::Tuple(vec![int(2), int(3)]),
            Value::Tuple(vec![int(3), int(1)]),
            Value::Bool(false),
            Value::ordered_dict(Vec::new()),
        ],
    )));
    let mut with_state = Object::reduce(global("collections", "OrderedDict"), Vec::new());
    with_state.dict_items = vec![(s("w"), tensor.clone())];
    with_state.state = Some(Value::Dict(vec![(
        s("_metadata"),
        Value::ordered_dict(Vec::new()),
    )]));
    let mut new_obj = Object::reduce(global("collections", "OrderedDict"), vec![int(1)]);
    new_obj.construct = Construct::NewObj;
    new_obj.list_items = vec![int(4)];
    Value::Dict(vec![
        (
            s("state_dict_backbone"),
            Value::ordered_dict(vec![(s("a"), tensor)]),
        ),
        (s("with_state"), Value::Object(Box::new(with_state))),
        (s("new_obj"), Value::Object(Box::new(new_obj))),
        (s("global_step"), int(79999)),
    ])
}

#[test]
fn round_trips_plain_data_in_protocols_2_and_3() {
    let value = expected_object(false);
    for protocol in [Protocol::V2, Protocol::V3] {
        let bytes = write_pickle(&value, protocol).unwrap();
        let back = read_pickle(
            &bytes,
            &AllowList::plain_data().with("collections", "OrderedDict"),
        )
        .unwrap();
        assert_eq!(back, value, "{protocol:?}");
    }
}

#[test]
fn round_trips_torch_like_objects_and_memoises_globals() {
    let value = torch_like_state();
    let bytes = write_pickle(&value, Protocol::V2).unwrap();
    assert_eq!(&bytes[..2], &[opcode::PROTO, 2]);
    let back = read_pickle(&bytes, &AllowList::torch_checkpoint()).unwrap();
    assert_eq!(back, value);
    // OrderedDict appears four times but is spelled out once.
    let spelled = bytes.windows(11).filter(|w| w == b"OrderedDict").count();
    assert_eq!(spelled, 1);
}

#[test]
fn integers_use_the_smallest_encoding_and_survive() {
    let ints: Vec<i64> = vec![
        0,
        255,
        256,
        65535,
        65536,
        -1,
        -128,
        -129,
        i32::MIN as i64,
        i32::MAX as i64,
        i32::MAX as i64 + 1,
        i32::MIN as i64 - 1,
        1 << 40,
        -(1 << 40),
        0x7f_ffff_ffff,
        0x80_0000_0000,
        i64::MAX,
        i64::MIN,
    ];
    let value = Value::List(ints.iter().copied().map(Value::Int).collect());
    let bytes = write_pickle(&value, Protocol::V2).unwrap();
    assert_eq!(read_pickle(&bytes, &AllowList::empty()).unwrap(), value);
    let one = write_pickle(&Value::Int(255), Protocol::V2).unwrap();
    assert_eq!(
        one,
        vec![opcode::PROTO, 2, opcode::BININT1, 255, opcode::STOP]
    );
    let long = write_pickle(&Value::Int(1 << 40), Protocol::V2).unwrap();
    assert_eq!(
        long,
        vec![
            opcode::PROTO,
            2,
            opcode::LONG1,
            6,
            0,
            0,
            0,
            0,
            0,
            1,
            opcode::STOP
        ]
    );
}

#[test]
fn writer_refuses_what_it_cannot_express() {
    assert_eq!(
        write_pickle(&Value::Set(vec![]), Protocol::V2),
        Err(WriteError::Unsupported {
            what: "a set",
            protocol: 2
        })
    );
    let bad = Value::Global(global("os\nsystem", "x"));
    assert!(matches!(
        write_pickle(&bad, Protocol::V2),
        Err(WriteError::BadGlobalName(_))
    ));
    let mut deep = Value::None;
    for _ in 0..600 {
        deep = Value::List(vec![deep]);
    }
    assert_eq!(
        write_pickle(&deep, Protocol::V2),
        Err(WriteError::NestingTooDeep(512))
    );
}

#[test]
fn dict_helpers_read_dicts_and_ordered_dicts() {
    let value = torch_like_state();
    assert_eq!(
        value.get("global_step").and_then(Value::as_i64),
        Some(79999)
    );
    let backbone = value.get("state_dict_backbone").unwrap();
    assert_eq!(backbone.dict_items().map(|d| d.len()), Some(1));
    // An OrderedDict with BUILD state still exposes its items.
    assert_eq!(
        value
            .get("with_state")
            .and_then(|v| v.dict_items())
            .map(|d| d.len()),
        Some(1)
    );
    // NEWOBJ with args is not a plain OrderedDict.
    assert!(value.get("new_obj").unwrap().dict_items().is_none());
}
