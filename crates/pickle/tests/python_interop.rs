//! Reading pickles written by CPython, and CPython reading ours.

mod common;

use common::{expected_object, run_python, scratch_dir, PY_OBJECT};
use swinface_pickle::{read_pickle, write_pickle, AllowList, Protocol, ReadErrorKind, Value};

#[test]
fn reads_python_pickles_of_protocols_2_to_4() {
    let dir = scratch_dir("python_pickles");
    let script = format!(
        "{PY_OBJECT}\nimport pickle, sys, pathlib\nd = pathlib.Path(sys.argv[1])\n\
         for p in (2, 3, 4):\n    (d / f'p{{p}}.pkl').write_bytes(pickle.dumps(make(p == 4), protocol=p))\n"
    );
    run_python(&script, &[&dir]);
    for protocol in [2, 3, 4] {
        let data = std::fs::read(dir.join(format!("p{protocol}.pkl"))).unwrap();
        let allow = AllowList::plain_data().with("collections", "OrderedDict");
        let value =
            read_pickle(&data, &allow).unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        assert_eq!(value, expected_object(protocol == 4), "protocol {protocol}");
    }
}

#[test]
fn python_reads_what_we_write() {
    let dir = scratch_dir("python_reads_ours");
    for (protocol, name) in [(Protocol::V2, "w2.pkl"), (Protocol::V3, "w3.pkl")] {
        let bytes = write_pickle(&expected_object(false), protocol).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let script = format!(
        "{PY_OBJECT}\nimport pickle, sys, pathlib, collections\n\
         for name in ('w2.pkl', 'w3.pkl'):\n\
         \x20   data = (pathlib.Path(sys.argv[1]) / name).read_bytes()\n\
         \x20   got = pickle.loads(data)\n\
         \x20   assert got == make(False), (name, got)\n\
         \x20   assert type(got['od']) is collections.OrderedDict\n\
         \x20   assert type(got['bytes']) is bytes and type(got['empty'][0]) is bytes\n\
         \x20   print(name, data[1], 'EQUAL')\n"
    );
    let out = run_python(&script, &[&dir]);
    assert_eq!(out, "w2.pkl 2 EQUAL\nw3.pkl 3 EQUAL\n");
}

/// Python pickles whose loading runs a command (checked by letting Python load them once);
/// our reader must refuse each, naming the global, without running anything.
#[test]
fn malicious_pickles_are_refused_and_nothing_runs() {
    let dir = scratch_dir("malicious");
    let script = r#"
import os, pickle, sys, pathlib, builtins
d = pathlib.Path(sys.argv[1])
class System:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, ("touch " + self.marker,))
class Eval:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (builtins.eval, ("open(%r, 'w').close()" % self.marker,))
def write(name, make, protocol):
    probe = str(d / (name + ".python_ran"))
    # Python itself runs the payload: proves the pickle is live.
    pickle.loads(pickle.dumps(make(probe), protocol=protocol))
    assert os.path.exists(probe), name
    target = str(d / (name + ".rust_ran"))
    payload = {"ok": [1, 2], "evil": make(target)}
    (d / (name + ".pkl")).write_bytes(pickle.dumps(payload, protocol=protocol))
write("system_p2", System, 2)
write("system_p4", System, 4)
write("eval_p2", Eval, 2)
write("eval_p4", Eval, 4)
# Hand-written: `os.system` by its portable name.
def os_system(marker):
    command = ("touch " + marker).encode()
    return b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
probe = str(d / "os_p2.python_ran")
pickle.loads(os_system(probe))
assert os.path.exists(probe)
(d / "os_p2.pkl").write_bytes(os_system(str(d / "os_p2.rust_ran")))
"#;
    run_python(script, &[&dir]);
    let cases = [
        ("system_p2", "posix.system"),
        ("system_p4", "posix.system"),
        ("eval_p2", "__builtin__.eval"),
        ("eval_p4", "builtins.eval"),
        ("os_p2", "os.system"),
    ];
    for (name, global) in cases {
        let data = std::fs::read(dir.join(format!("{name}.pkl"))).unwrap();
        for allow in [AllowList::empty(), AllowList::torch_checkpoint()] {
            let err = read_pickle(&data, &allow).expect_err(name);
            assert_eq!(
                err.kind,
                ReadErrorKind::ForbiddenGlobal(global.to_owned()),
                "{name}"
            );
            assert!(err.to_string().contains(global), "{err}");
        }
        assert!(
            dir.join(format!("{name}.python_ran")).exists(),
            "{name}: the payload never worked in Python"
        );
        assert!(
            !dir.join(format!("{name}.rust_ran")).exists(),
            "{name}: payload ran"
        );
    }
}

/// insightface verification `.bin` files: `(list of encoded images, list of bools)`.
#[test]
fn reads_verification_bin_layouts() {
    let dir = scratch_dir("bin_layouts");
    let script = r#"
import pickle, random, sys, pathlib
d = pathlib.Path(sys.argv[1])
rng = random.Random(3)
bins = [bytes(rng.randrange(256) for _ in range(rng.randrange(3000, 6000))) for _ in range(12)]
issame = [rng.random() < 0.5 for _ in range(6)]
for p in (2, 3, 4):
    with open(d / f"v{p}.bin", "wb") as f:
        pickle.dump((bins, issame), f, protocol=p)
(d / "expected.raw").write_bytes(b"".join(len(b).to_bytes(4, "little") + b for b in bins)
                                 + bytes(issame))
"#;
    run_python(script, &[&dir]);
    let raw = std::fs::read(dir.join("expected.raw")).unwrap();
    let (mut bins, mut at) = (Vec::new(), 0);
    for _ in 0..12 {
        let len = u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) as usize;
        bins.push(Value::Bytes(raw[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    let issame = raw[at..].iter().map(|&b| Value::Bool(b == 1)).collect();
    let expected = Value::Tuple(vec![Value::List(bins), Value::List(issame)]);
    for p in [2, 3, 4] {
        let data = std::fs::read(dir.join(format!("v{p}.bin"))).unwrap();
        assert_eq!(
            read_pickle(&data, &AllowList::plain_data()).unwrap(),
            expected,
            "protocol {p}"
        );
    }
}

#[test]
fn reads_python2_str_as_bytes() {
    // Python 2's `pickle.dumps(("ab\xff", [True]), 2)`: SHORT_BINSTRING holds bytes.
    let data = b"\x80\x02U\x03ab\xffq\x00]q\x01\x88a\x86q\x02.";
    let value = read_pickle(data, &AllowList::empty()).unwrap();
    assert_eq!(
        value,
        Value::Tuple(vec![
            Value::Bytes(b"ab\xff".to_vec()),
            Value::List(vec![Value::Bool(true)])
        ])
    );
    // BINSTRING (4-byte length) for longer Python 2 strings.
    let long: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let mut data = vec![0x80, 2, b'T'];
    data.extend_from_slice(&300i32.to_le_bytes());
    data.extend_from_slice(&long);
    data.push(b'.');
    assert_eq!(
        read_pickle(&data, &AllowList::empty()).unwrap(),
        Value::Bytes(long)
    );
}
