//! Hostile and broken input: errors, never panics, never unbounded allocation.

mod common;

use std::time::{Duration, Instant};

use common::{expected_object, run_python, scratch_dir, Rng, PY_OBJECT};
use swinface_pickle::{
    opcode as op, read_pickle, read_pickle_with_limits, write_pickle, AllowList, Limits, Protocol,
    ReadErrorKind,
};

fn permissive() -> AllowList {
    AllowList::torch_checkpoint()
}

fn kind(data: &[u8]) -> ReadErrorKind {
    read_pickle(data, &permissive())
        .expect_err("should fail")
        .kind
}

/// Valid pickles to mutate: ours in protocols 2 and 3 and Python's protocol 4.
fn seeds() -> Vec<Vec<u8>> {
    let dir = scratch_dir("fuzz_seeds");
    let script = format!(
        "{PY_OBJECT}\nimport pickle, sys, pathlib\n\
         (pathlib.Path(sys.argv[1]) / 'p4.pkl').write_bytes(pickle.dumps(make(True), protocol=4))\n"
    );
    run_python(&script, &[&dir]);
    let mut small = expected_object(false);
    if let swinface_pickle::Value::Dict(items) = &mut small {
        // Keep seeds short so mutations hit structure, not only the 2500-element list.
        items.retain(|(k, _)| k.as_str() != Some("big_list"));
    }
    vec![
        write_pickle(&small, Protocol::V2).unwrap(),
        write_pickle(&small, Protocol::V3).unwrap(),
        std::fs::read(dir.join("p4.pkl")).unwrap(),
    ]
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    let count = 1 + rng.below(4);
    for _ in 0..count {
        if data.is_empty() {
            data.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(data.len());
        match rng.below(7) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next_u64() as u8,
            // An opcode byte in a random place.
            2 => {
                data[at] = [
                    op::BINGET,
                    op::LONG_BINGET,
                    op::REDUCE,
                    op::BUILD,
                    op::APPENDS,
                    op::SETITEMS,
                    op::TUPLE,
                    op::MARK,
                    op::STOP,
                    op::BINPERSID,
                ][rng.below(10)]
            }
            3 => data.truncate(at),
            4 => data.insert(at, rng.next_u64() as u8),
            // Absurd lengths and indices.
            5 => {
                let pattern = [0xff, 0x7f, 0x80, 0x00][rng.below(4)];
                let end = (at + 1 + rng.below(8)).min(data.len());
                data[at..end].fill(pattern);
            }
            _ => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let chunk = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, chunk);
            }
        }
    }
    data
}

#[test]
fn random_mutations_give_errors_not_panics() {
    let seeds = seeds();
    for seed in &seeds {
        assert!(read_pickle(seed, &permissive()).is_ok());
    }
    let mut rng = Rng::new(0x5eed_cafe);
    let (mut ok, mut err) = (0, 0);
    let started = Instant::now();
    for i in 0..3000 {
        let data = mutate(&mut rng, &seeds[i % seeds.len()]);
        match read_pickle(&data, &permissive()) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(
                    e.offset <= data.len(),
                    "offset {} beyond {} bytes",
                    e.offset,
                    data.len()
                );
                err += 1;
            }
        }
    }
    // Mutations must mostly break the pickle, or they tested nothing.
    assert!(
        err > 1500,
        "only {err} of 3000 mutations failed ({ok} read fine)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "fuzz loop too slow"
    );
}

#[test]
fn every_strict_prefix_is_an_error() {
    let data = write_pickle(&expected_object(false), Protocol::V2).unwrap();
    for len in 0..data.len() {
        assert!(
            read_pickle(&data[..len], &permissive()).is_err(),
            "prefix of {len} bytes read"
        );
    }
}

#[test]
fn absurd_lengths_are_checked_before_allocating() {
    let mut unicode8 = vec![op::PROTO, 4, op::BINUNICODE8];
    unicode8.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert_eq!(
        kind(&unicode8),
        ReadErrorKind::Truncated {
            needed: 1 << 62,
            available: 0
        }
    );

    let mut bytes8 = vec![op::PROTO, 4, op::BINBYTES8];
    bytes8.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes8.extend_from_slice(b"abc.");
    assert_eq!(
        kind(&bytes8),
        ReadErrorKind::Truncated {
            needed: u64::MAX,
            available: 4
        }
    );

    let negative = [
        op::PROTO,
        2,
        op::BINSTRING,
        0xff,
        0xff,
        0xff,
        0xff,
        op::STOP,
    ];
    assert_eq!(kind(&negative), ReadErrorKind::NegativeLength(-1));
    let negative_long = [op::PROTO, 2, op::LONG4, 0, 0, 0, 0x80, op::STOP];
    assert_eq!(
        kind(&negative_long),
        ReadErrorKind::NegativeLength(i32::MIN.into())
    );

    let missing = [
        op::PROTO,
        2,
        op::LONG_BINGET,
        0xff,
        0xff,
        0xff,
        0xff,
        op::STOP,
    ];
    assert_eq!(kind(&missing), ReadErrorKind::MemoMissing(0xffff_ffff));

    let err = read_pickle(
        &[op::PROTO, 2, op::BINUNICODE, 0xff, 0xff, 0xff, 0x7f],
        &permissive(),
    )
    .unwrap_err();
    assert_eq!((err.offset, err.opcode), (2, Some(op::BINUNICODE)));
    assert!(err.to_string().contains("BINUNICODE"), "{err}");
}

#[test]
fn structural_errors_are_named() {
    assert_eq!(kind(&[op::PROTO, 2]), ReadErrorKind::MissingStop);
    assert_eq!(
        kind(&[op::PROTO, 2, op::STOP]),
        ReadErrorKind::StackUnderflow
    );
    assert_eq!(
        kind(&[op::PROTO, 9, op::NONE, op::STOP]),
        ReadErrorKind::UnsupportedProtocol(9)
    );
    assert_eq!(
        kind(&[op::PROTO, 2, op::NONE, op::TUPLE, op::STOP]),
        ReadErrorKind::MissingMark
    );
    // INST (text protocol 0) is not in the safe subset.
    assert_eq!(
        kind(b"\x80\x02iposix\nsystem\n."),
        ReadErrorKind::UnsupportedOpcode
    );
    // REDUCE of something that is not a global.
    assert!(matches!(
        kind(&[
            op::PROTO,
            2,
            op::NONE,
            op::EMPTY_TUPLE,
            op::REDUCE,
            op::STOP
        ]),
        ReadErrorKind::WrongType {
            expected: "global",
            found: "None"
        }
    ));
    // APPEND to an int.
    assert!(matches!(
        kind(&[op::PROTO, 2, op::BININT1, 1, op::NONE, op::APPEND, op::STOP]),
        ReadErrorKind::WrongType {
            expected: "list",
            ..
        }
    ));
    // A mark cannot be stepped over: the list below it is not reachable by APPEND.
    assert_eq!(
        kind(&[
            op::PROTO,
            2,
            op::EMPTY_LIST,
            op::MARK,
            op::NONE,
            op::APPEND,
            op::STOP
        ]),
        ReadErrorKind::StackUnderflow
    );
}

#[test]
fn reference_cycles_are_refused() {
    // Python: l = []; l.append(l); pickle.dumps(l, 2)
    let data = [
        op::PROTO,
        2,
        op::EMPTY_LIST,
        op::BINPUT,
        0,
        op::BINGET,
        0,
        op::APPEND,
        op::STOP,
    ];
    assert_eq!(kind(&data), ReadErrorKind::NestingTooDeep(256));
}

#[test]
fn exponential_sharing_hits_the_budget_quickly() {
    // memo[0] = 1 MiB of bytes; memo[i] = [memo[i-1], memo[i-1]]: 2^40 copies if expanded.
    let mut data = vec![op::PROTO, 3, op::BINBYTES];
    data.extend_from_slice(&(1u32 << 20).to_le_bytes());
    data.extend(std::iter::repeat_n(b'x', 1 << 20));
    data.extend_from_slice(&[op::LONG_BINPUT, 0, 0, 0, 0]);
    for i in 1u32..=40 {
        data.extend_from_slice(&[op::MARK, op::LONG_BINGET]);
        data.extend_from_slice(&(i - 1).to_le_bytes());
        data.push(op::LONG_BINGET);
        data.extend_from_slice(&(i - 1).to_le_bytes());
        data.extend_from_slice(&[op::LIST, op::LONG_BINPUT]);
        data.extend_from_slice(&i.to_le_bytes());
    }
    data.push(op::STOP);
    let started = Instant::now();
    assert!(matches!(
        kind(&data),
        ReadErrorKind::TooManyBytes(_) | ReadErrorKind::TooManyObjects(_)
    ));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn limits_bound_depth_stack_and_objects() {
    let mut nested = vec![op::PROTO, 2];
    nested.extend(std::iter::repeat_n(op::EMPTY_LIST, 300));
    nested.extend(std::iter::repeat_n(op::APPEND, 299));
    nested.push(op::STOP);
    assert_eq!(kind(&nested), ReadErrorKind::NestingTooDeep(256));

    let limits = Limits {
        max_stack: 100,
        ..Limits::default()
    };
    let mut wide = vec![op::PROTO, 2];
    wide.extend(std::iter::repeat_n(op::NONE, 200));
    wide.push(op::STOP);
    let err = read_pickle_with_limits(&wide, &permissive(), &limits).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::StackTooDeep(100));

    let limits = Limits {
        max_objects: 50,
        ..Limits::default()
    };
    let mut many = vec![op::PROTO, 2, op::EMPTY_LIST];
    for _ in 0..60 {
        many.extend_from_slice(&[op::NONE, op::APPEND]);
    }
    many.push(op::STOP);
    let err = read_pickle_with_limits(&many, &permissive(), &limits).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::TooManyObjects(50));
}
