//! Every reader against data written by our writers, by CPython (struct-packed RecordIO,
//! pickled `.bin` files) or by hand, including the malformed inputs each must refuse with a
//! message naming the file and the line or record.

mod formats_support;

use std::path::Path;

use formats_support::{message, png, run_python, scratch_dir, write, write_png};
use swinface_data::attributes::{CELEBA_ATTRIBUTES, SWINFACE_ATTRIBUTES};
use swinface_data::error::{DataError, RecordProblem};
use swinface_data::formats::affectnet::read_affectnet;
use swinface_data::formats::age_gender::read_age_gender;
use swinface_data::formats::celeba::{
    read_celeba_attr, read_celeba_split, read_swinface_label, Partition,
};
use swinface_data::formats::fgnet::{read_fgnet, FgnetSplit};
use swinface_data::formats::image_folder::ImageFolder;
use swinface_data::formats::lap::read_lap;
use swinface_data::formats::raf::{read_raf, RafSplit};
use swinface_data::formats::recordio::{
    read_property, write_property, IndexedRecordReader, IrHeader, MxFaceDataset, Property,
    RecordLabel, RecordWriter, MAGIC,
};
use swinface_data::formats::verification_bin::{read_bin, write_bin};

const MAGIC_BYTES: [u8; 4] = MAGIC.to_le_bytes();

/// Payloads of an MS1MV2-like set: PNGs, plus payloads holding the magic word at aligned and
/// unaligned positions (the IRHeader is 24 bytes, so payload offset p is aligned when p % 4 == 0).
fn payloads() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..6).map(|i| png(i * 40, 6 + u32::from(i))).collect();
    // Magic at payload offsets 0 and 8 (aligned) and 13 (not aligned); odd length.
    let mut tricky = MAGIC_BYTES.to_vec();
    tricky.extend_from_slice(b"abcd");
    tricky.extend_from_slice(&MAGIC_BYTES);
    tricky.push(b'x');
    tricky.extend_from_slice(&MAGIC_BYTES);
    tricky.extend_from_slice(b"yz");
    out.push(tricky);
    // The payload ends with an aligned magic word: the last part is empty.
    let mut ends = b"0123".to_vec();
    ends.extend_from_slice(&MAGIC_BYTES);
    out.push(ends);
    // Only the unaligned magic: a single frame.
    let mut unaligned = b"a".to_vec();
    unaligned.extend_from_slice(&MAGIC_BYTES);
    out.push(unaligned);
    out
}

/// Identity of image `i` (images 1..=9 in three identities).
fn identity_of(i: usize) -> usize {
    i / 3
}

/// Writes the MS1MV2 layout with our writer: record 0 `[n+1, n+1+ids]`, images 1..=n with
/// scalar labels, identity records with `[first, end)` image ranges.
fn write_ms1m_like(dir: &Path) -> (usize, usize) {
    let images = payloads();
    let n = images.len();
    let ids = identity_of(n - 1) + 1;
    let mut writer = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx")).unwrap();
    let first_id = (n + 1) as f32;
    writer
        .write_packed(
            0,
            &IrHeader::vector(vec![first_id, first_id + ids as f32], 0),
            b"",
        )
        .unwrap();
    for (i, payload) in images.iter().enumerate() {
        let label = identity_of(i) as f32;
        writer
            .write_packed(
                i as u64 + 1,
                &IrHeader::scalar(label, i as u64 + 1),
                payload,
            )
            .unwrap();
    }
    for id in 0..ids {
        let start = (1 + 3 * id) as f32;
        let key = (n + 1 + id) as u64;
        writer
            .write_packed(key, &IrHeader::vector(vec![start, start + 3.0], key), b"")
            .unwrap();
    }
    // Records 7 and 8 (payloads 6 and 7) hold aligned magic words.
    assert_eq!(writer.split_records(), 2);
    writer.finish().unwrap();
    write_property(
        &dir.join("property"),
        &Property {
            num_classes: ids as u64,
            height: 112,
            width: 112,
        },
    )
    .unwrap();
    (n, ids)
}

#[test]
fn recordio_round_trip_with_multi_part_records() {
    let dir = scratch_dir("rec_round_trip");
    let (n, ids) = write_ms1m_like(&dir);
    let dataset = MxFaceDataset::open(&dir).unwrap();
    assert_eq!(
        dataset.header0,
        Some(((n + 1) as i64, (n + 1 + ids) as i64))
    );
    assert_eq!(dataset.len(), n);
    assert_eq!(
        dataset.image_keys(),
        (1..=n as u64).collect::<Vec<_>>().as_slice()
    );
    for (i, payload) in payloads().iter().enumerate() {
        let sample = dataset.get(i, Some(ids as u64)).unwrap();
        assert_eq!(sample.key, i as u64 + 1);
        assert_eq!(sample.label, identity_of(i) as i64);
        assert_eq!(sample.image.as_ref(), payload.as_slice(), "payload {i}");
    }
    let reader = dataset.reader();
    let (header, _) = reader.read_unpacked((n + 2) as u64).unwrap();
    assert_eq!(header.label, RecordLabel::Vector(vec![4.0, 7.0]));
    assert_eq!(
        read_property(&dir.join("property")).unwrap(),
        Property {
            num_classes: ids as u64,
            height: 112,
            width: 112
        }
    );

    // The tricky payload (key 7) is stored as three frames: flags 1, 2, 3.
    let rec = std::fs::read(dir.join("train.rec")).unwrap();
    let mut pos = reader.offset_of(7).unwrap() as usize;
    let mut flags = Vec::new();
    loop {
        assert_eq!(rec[pos..pos + 4], MAGIC_BYTES);
        let lrec = u32::from_le_bytes(rec[pos + 4..pos + 8].try_into().unwrap());
        let (flag, len) = (lrec >> 29, (lrec & ((1 << 29) - 1)) as usize);
        flags.push(flag);
        pos += 8 + (len + 3) / 4 * 4;
        if flag == 3 || flag == 0 {
            break;
        }
    }
    assert_eq!(flags, [1, 2, 3]);
    // Key 9 (magic only at an unaligned position) is one frame.
    let pos = reader.offset_of(9).unwrap() as usize;
    assert_eq!(
        u32::from_le_bytes(rec[pos + 4..pos + 8].try_into().unwrap()) >> 29,
        0
    );
}

/// MXNet's writer re-done in CPython (struct 'IfQQ' packing, dmlc's split at aligned magic
/// words, `key\toffset` index lines) must give the very bytes ours gives, and we read it.
#[test]
fn recordio_matches_a_python_writer_byte_for_byte() {
    let dir = scratch_dir("rec_python");
    let ours = dir.join("ours");
    std::fs::create_dir_all(&ours).unwrap();
    let (n, ids) = write_ms1m_like(&ours);
    let payload_dir = dir.join("payloads");
    std::fs::create_dir_all(&payload_dir).unwrap();
    for (i, p) in payloads().iter().enumerate() {
        std::fs::write(payload_dir.join(format!("{i}.bin")), p).unwrap();
    }
    let script = r#"
import struct, sys, pathlib
d = pathlib.Path(sys.argv[1]); n = int(sys.argv[2]); ids = int(sys.argv[3])
MAGIC = struct.pack('<I', 0xced7230a)
def pack(label, id_, payload):
    if isinstance(label, list):
        return struct.pack('IfQQ', len(label), 0.0, id_, 0) + struct.pack('%df' % len(label), *label) + payload
    return struct.pack('IfQQ', 0, label, id_, 0) + payload
def frames(rec):
    out, start = bytearray(), 0
    for i in range(0, len(rec) // 4 * 4, 4):
        if rec[i:i + 4] == MAGIC:
            out += MAGIC + struct.pack('<I', ((1 if start == 0 else 2) << 29) | (i - start)) + rec[start:i]
            start = i + 4
    out += MAGIC + struct.pack('<I', ((3 if start else 0) << 29) | (len(rec) - start)) + rec[start:]
    out += b'\0' * ((len(rec) + 3) // 4 * 4 - len(rec))
    return bytes(out)
(d / 'py').mkdir(exist_ok=True)
with open(d / 'py' / 'train.rec', 'wb') as rec, open(d / 'py' / 'train.idx', 'w') as idx:
    def write_idx(key, buf):
        idx.write('%s\t%d\n' % (str(key), rec.tell()))
        rec.write(frames(buf))
    write_idx(0, pack([float(n + 1), float(n + 1 + ids)], 0, b''))
    for i in range(n):
        write_idx(i + 1, pack(float(i // 3), i + 1, (d / 'payloads' / ('%d.bin' % i)).read_bytes()))
    for k in range(ids):
        write_idx(n + 1 + k, pack([float(1 + 3 * k), float(4 + 3 * k)], n + 1 + k, b''))
"#;
    run_python(
        script,
        &[&dir, Path::new(&n.to_string()), Path::new(&ids.to_string())],
    );
    for file in ["train.rec", "train.idx"] {
        let theirs = std::fs::read(dir.join("py").join(file)).unwrap();
        let mine = std::fs::read(ours.join(file)).unwrap();
        assert_eq!(theirs.len(), mine.len(), "{file} length");
        assert!(theirs == mine, "{file} differs from the Python writer's");
    }
    let dataset = MxFaceDataset::open(&dir.join("py")).unwrap();
    assert_eq!(dataset.len(), n);
    for (i, payload) in payloads().iter().enumerate() {
        assert_eq!(
            dataset.get(i, None).unwrap().image.as_ref(),
            payload.as_slice()
        );
    }
}

#[test]
fn record_zero_without_ranges_uses_every_index_key() {
    let dir = scratch_dir("rec_flat");
    let mut writer = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx")).unwrap();
    for key in [5u64, 3, 9] {
        writer
            .write_packed(
                key,
                &IrHeader::vector(vec![key as f32 * 2.0, 1.0], key),
                b"img",
            )
            .unwrap();
    }
    // MXFaceDataset reads record 0 first; an index without key 0 cannot be opened.
    writer.finish().unwrap();
    assert!(matches!(
        MxFaceDataset::open(&dir),
        Err(DataError::Record {
            problem: RecordProblem::MissingKey { key: 0 },
            ..
        })
    ));
    let mut writer = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx")).unwrap();
    for key in [0u64, 5, 3] {
        writer
            .write_packed(
                key,
                &IrHeader::vector(vec![key as f32 * 2.0, 1.0], key),
                b"img",
            )
            .unwrap();
    }
    writer.finish().unwrap();
    // A vector label on record 0 is taken as the ranges; `range(1, 0)` would be an empty
    // dataset, which is refused.
    let err = MxFaceDataset::open(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::Record {
                problem: RecordProblem::BadHeader0 { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let mut writer = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx")).unwrap();
    for key in [0u64, 5, 3] {
        writer
            .write_packed(key, &IrHeader::scalar(key as f32, key), b"img")
            .unwrap();
    }
    writer.finish().unwrap();
    let dataset = MxFaceDataset::open(&dir).unwrap();
    assert_eq!(dataset.header0, None);
    assert_eq!(dataset.image_keys(), &[0, 5, 3]);
    assert_eq!(dataset.get(1, None).unwrap().label, 5);
}

/// A `.rec` of three images with scalar labels (keys 0..3; no header record).
fn small_rec(dir: &Path, labels: &[f32]) {
    let mut writer = RecordWriter::create(&dir.join("train.rec"), &dir.join("train.idx")).unwrap();
    for (key, &label) in labels.iter().enumerate() {
        writer
            .write_packed(
                key as u64,
                &IrHeader::scalar(label, key as u64),
                &png(key as u8, 4),
            )
            .unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn truncated_rec_is_an_error_naming_the_record() {
    let dir = scratch_dir("rec_truncated");
    small_rec(&dir, &[0.0, 1.0, 2.0]);
    let rec_path = dir.join("train.rec");
    let bytes = std::fs::read(&rec_path).unwrap();
    std::fs::write(&rec_path, &bytes[..bytes.len() - 10]).unwrap();
    let dataset = MxFaceDataset::open(&dir).unwrap();
    assert!(dataset.get(1, None).is_ok());
    let offset = dataset.reader().offset_of(2).unwrap();
    let err = dataset.get(2, None).unwrap_err();
    match &err {
        DataError::Record {
            path,
            offset: at,
            problem: RecordProblem::Truncated { needed, available },
        } => {
            assert_eq!(path, &rec_path);
            assert_eq!(*at, offset);
            assert!(needed > available);
        }
        other => panic!("expected a truncation error, got {other:?}"),
    }
    let text = message(&err);
    assert!(
        text.contains("train.rec") && text.contains(&format!("record at byte {offset}")),
        "{text}"
    );
}

#[test]
fn index_past_the_end_and_malformed_index_lines_name_the_line() {
    let dir = scratch_dir("rec_idx");
    small_rec(&dir, &[0.0, 1.0, 2.0]);
    let idx = dir.join("train.idx");
    let rec_len = std::fs::metadata(dir.join("train.rec")).unwrap().len();
    let good = std::fs::read_to_string(&idx).unwrap();
    std::fs::write(&idx, format!("{good}3\t{}\n", rec_len + 100)).unwrap();
    let err = MxFaceDataset::open(&dir)
        .err()
        .expect("an index past the end must fail");
    let text = message(&err);
    assert!(matches!(err, DataError::Line { line: 4, .. }), "{text}");
    assert!(
        text.contains("train.idx:4:") && text.contains("past the end"),
        "{text}"
    );

    std::fs::write(&idx, format!("{good}3 {}\n", 8)).unwrap();
    let text = message(&MxFaceDataset::open(&dir).err().unwrap());
    assert!(
        text.contains("train.idx:4:") && text.contains("key<TAB>offset"),
        "{text}"
    );
    std::fs::write(&idx, format!("{good}x\t8\n")).unwrap();
    assert!(message(&MxFaceDataset::open(&dir).err().unwrap()).contains("train.idx:4: key \"x\""));
    std::fs::write(&idx, format!("{good}0\t8\n")).unwrap();
    assert!(
        message(&MxFaceDataset::open(&dir).err().unwrap()).contains("key 0 appears more than once")
    );
}

#[test]
fn bad_magic_and_bad_headers_are_refused() {
    let dir = scratch_dir("rec_magic");
    small_rec(&dir, &[0.0, 1.0, 2.0]);
    let rec_path = dir.join("train.rec");
    let reader = IndexedRecordReader::open(&rec_path, &dir.join("train.idx")).unwrap();
    let offset = reader.offset_of(1).unwrap() as usize;
    drop(reader);
    let mut bytes = std::fs::read(&rec_path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(&rec_path, &bytes).unwrap();
    let dataset = MxFaceDataset::open(&dir).unwrap();
    let err = dataset.get(1, None).unwrap_err();
    assert!(
        matches!(err, DataError::Record { offset: o, problem: RecordProblem::BadMagic { .. }, .. } if o == offset as u64),
        "{err:?}"
    );
    assert!(message(&err).contains("bad magic"));

    // A record whose flag asks for more float labels than it holds.
    let mut writer = RecordWriter::create(&rec_path, &dir.join("train.idx")).unwrap();
    let mut record = 1000u32.to_le_bytes().to_vec();
    record.extend_from_slice(&[0u8; 20]);
    record.extend_from_slice(b"tiny");
    writer.write_idx(0, &record).unwrap();
    writer.write_idx(1, &record[..10]).unwrap();
    writer.finish().unwrap();
    let err = MxFaceDataset::open(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::Record {
                problem: RecordProblem::LabelsPastEnd { flag: 1000, .. },
                ..
            }
        ),
        "{err:?}"
    );
    let reader = IndexedRecordReader::open(&rec_path, &dir.join("train.idx")).unwrap();
    assert!(matches!(
        reader.read_unpacked(1),
        Err(DataError::Record {
            problem: RecordProblem::ShortHeader { len: 10 },
            ..
        })
    ));

    // Record 0 claiming more images than the index has.
    let mut writer = RecordWriter::create(&rec_path, &dir.join("train.idx")).unwrap();
    writer
        .write_packed(0, &IrHeader::vector(vec![50.0, 60.0], 0), b"")
        .unwrap();
    writer
        .write_packed(1, &IrHeader::scalar(0.0, 1), b"x")
        .unwrap();
    writer.finish().unwrap();
    let err = MxFaceDataset::open(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::Record {
                problem: RecordProblem::BadHeader0 { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn nan_negative_and_out_of_range_record_labels_are_errors() {
    let dir = scratch_dir("rec_labels");
    small_rec(&dir, &[1.9, f32::NAN, -1.0]);
    let dataset = MxFaceDataset::open(&dir).unwrap();
    // insightface's `torch.tensor(label, dtype=torch.long)` truncates 1.9 to 1.
    assert_eq!(dataset.get(0, Some(2)).unwrap().label, 1);
    assert!(matches!(
        dataset.get(0, Some(1)),
        Err(DataError::Record {
            problem: RecordProblem::BadLabel { .. },
            ..
        })
    ));
    for i in [1, 2] {
        let err = dataset.get(i, None).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Record {
                    problem: RecordProblem::BadLabel { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(message(&err).contains("train.rec: record at byte"));
    }
}

#[test]
fn empty_or_missing_rec_files_are_clear_errors() {
    let dir = scratch_dir("rec_missing");
    let err = MxFaceDataset::open(&dir).err().unwrap();
    assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
    assert!(message(&err).contains("train.rec does not exist"));
    std::fs::write(dir.join("train.rec"), b"").unwrap();
    std::fs::write(dir.join("train.idx"), b"").unwrap();
    assert!(message(&MxFaceDataset::open(&dir).err().unwrap()).contains("lists no records"));
    std::fs::write(dir.join("property"), "12,112\n").unwrap();
    assert!(message(&read_property(&dir.join("property")).unwrap_err()).contains("property:1:"));
}

fn bin_images() -> Vec<Vec<u8>> {
    // Byte values over 0x7f test the latin-1 mapping of `str` images.
    (0..6).map(|i| png(200 + i as u8, 5)).collect()
}

#[test]
fn verification_bin_from_python_protocols_2_to_4_bytes_and_str() {
    let dir = scratch_dir("bin_python");
    for (i, img) in bin_images().iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.png")), img).unwrap();
    }
    let script = r#"
import pickle, sys, pathlib
d = pathlib.Path(sys.argv[1])
imgs = [(d / ('%d.png' % i)).read_bytes() for i in range(6)]
issame = [True, False, True]
for p in (2, 3, 4):
    (d / ('bytes%d.bin' % p)).write_bytes(pickle.dumps((imgs, issame), protocol=p))
    # Python 2's byte strings come back as latin-1 text.
    (d / ('str%d.bin' % p)).write_bytes(pickle.dumps(([b.decode('latin-1') for b in imgs], issame), protocol=p))
    (d / ('list%d.bin' % p)).write_bytes(pickle.dumps([imgs, issame], protocol=p))
"#;
    run_python(script, &[&dir]);
    for kind in ["bytes", "str", "list"] {
        for p in [2, 3, 4] {
            let set = read_bin(&dir.join(format!("{kind}{p}.bin")))
                .unwrap_or_else(|e| panic!("{kind}{p}: {}", message(&e)));
            assert_eq!(set.images, bin_images(), "{kind}{p}");
            assert_eq!(set.issame, [true, false, true], "{kind}{p}");
        }
    }
}

/// Python 2's `pickle.dumps((imgs, issame), 2)` with `str` images: SHORT_BINSTRING and
/// BINSTRING hold the bytes (assembled by hand: Python 3 cannot write them).
#[test]
fn verification_bin_from_python2_binstrings() {
    let images = [b"\xff\xd8short".to_vec(), vec![0xab; 300]];
    let mut p = vec![0x80, 2, b']', b'q', 0, b'(', b'U', images[0].len() as u8];
    p.extend_from_slice(&images[0]);
    p.push(b'T');
    p.extend_from_slice(&(images[1].len() as u32).to_le_bytes());
    p.extend_from_slice(&images[1]);
    p.extend_from_slice(&[b'e', b']', b'q', 1, 0x89, b'a', 0x86, b'q', 2, b'.']);
    let dir = scratch_dir("bin_py2");
    let path = dir.join("lfw.bin");
    std::fs::write(&path, &p).unwrap();
    let set = read_bin(&path).unwrap();
    assert_eq!(set.images, images);
    assert_eq!(set.issame, [false]);
}

#[test]
fn python_reads_our_bin_as_insightface_does() {
    let dir = scratch_dir("bin_ours");
    let images = bin_images();
    write_bin(&dir.join("lfw.bin"), &images, &[true, false, false]).unwrap();
    for (i, img) in images.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.png")), img).unwrap();
    }
    let script = r#"
import pickle, sys, pathlib
d = pathlib.Path(sys.argv[1])
data = (d / 'lfw.bin').read_bytes()
for enc in ('bytes', 'ASCII'):
    bins, issame = pickle.loads(data, encoding=enc)
    assert [type(b) for b in bins] == [bytes] * 6
    assert bins == [(d / ('%d.png' % i)).read_bytes() for i in range(6)]
    assert issame == [True, False, False]
print(data[1], type(pickle.loads(data)).__name__)
"#;
    assert_eq!(run_python(script, &[&dir]), "2 tuple\n");
    assert_eq!(read_bin(&dir.join("lfw.bin")).unwrap().images, images);
    assert!(write_bin(&dir.join("x.bin"), &images, &[true]).is_err());
}

#[test]
fn malformed_and_hostile_bin_files_are_refused() {
    let dir = scratch_dir("bin_bad");
    let script = r#"
import pickle, sys, pathlib, os
d = pathlib.Path(sys.argv[1])
(d / 'dict.bin').write_bytes(pickle.dumps({'a': 1}, protocol=2))
(d / 'short.bin').write_bytes(pickle.dumps(([b'x'], [True]), protocol=3))
(d / 'ints.bin').write_bytes(pickle.dumps(([b'x', b'y'], [2]), protocol=4))
class Evil:
    def __reduce__(self): return (os.system, ('touch ' + str(d / 'pwned'),))
(d / 'evil.bin').write_bytes(pickle.dumps(([Evil(), b'y'], [True]), protocol=2))
"#;
    run_python(script, &[&dir]);
    let cases = [
        ("dict.bin", "expected a (images, issame) tuple"),
        ("short.bin", "1 pairs need 2 images but the file has 1"),
        ("ints.bin", "issame[0]: expected a bool"),
        ("evil.bin", "not a readable pickle"),
    ];
    for (name, expected) in cases {
        let err = read_bin(&dir.join(name)).unwrap_err();
        let text = message(&err);
        assert!(
            text.contains(name) && text.contains(expected),
            "{name}: {text}"
        );
    }
    assert!(!dir.join("pwned").exists());
    std::fs::write(
        dir.join("trunc.bin"),
        &std::fs::read(dir.join("short.bin")).unwrap()[..10],
    )
    .unwrap();
    assert!(matches!(
        read_bin(&dir.join("trunc.bin")),
        Err(DataError::Pickle { .. })
    ));
}

#[test]
fn age_gender_lists() {
    let dir = scratch_dir("age_gender");
    let label = dir.join("label.txt");
    write(&label, "name age gender\na.jpg 23.0 1.0\nb.jpg nan 0.0\n\nc.jpg 40 0.0\nd.jpg 7.5 nan\ne.jpg 61 1\n");
    let list = read_age_gender(&label, &dir.join("data")).unwrap();
    let got: Vec<(String, f32, u8, usize)> = list
        .entries
        .iter()
        .map(|e| {
            (
                e.image.file_name().unwrap().to_string_lossy().into_owned(),
                e.label.age,
                e.label.gender,
                e.line,
            )
        })
        .collect();
    // `nan` rows skipped; gender is male only for the exact token `1.0`.
    assert_eq!(
        got,
        [
            ("a.jpg".into(), 23.0, 1, 2),
            ("c.jpg".into(), 40.0, 0, 5),
            ("e.jpg".into(), 61.0, 0, 7)
        ]
    );
    assert_eq!(list.entries[0].image, dir.join("data").join("a.jpg"));
    assert_eq!(list.rows(), 6);
    assert_eq!(
        list.row_entries(),
        [Some(0), None, None, Some(1), None, Some(2)]
    );

    for (text, expected) in [
        ("h\na.jpg 23\n", "label.txt:2: expected `name age gender`"),
        (
            "h\na.jpg 23 1.0\nb.jpg NaN 1.0\n",
            "label.txt:3: age \"NaN\" is not a finite number",
        ),
        (
            "h\na.jpg twenty 1.0\n",
            "label.txt:2: age \"twenty\" is not a number",
        ),
        (
            "h\na.jpg 200 1.0\n",
            "label.txt:2: age 200 is outside [0, 150]",
        ),
        ("h\na.jpg -3 1.0\n", "label.txt:2: age -3 is outside"),
    ] {
        write(&label, text);
        let err = message(&read_age_gender(&label, &dir).unwrap_err());
        assert!(err.contains(expected), "{err}");
    }
    let err = read_age_gender(&dir.join("nope.txt"), &dir).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }));
    std::fs::write(&label, b"h\na.jpg 2\xff 1.0\n").unwrap();
    assert!(message(&read_age_gender(&label, &dir).unwrap_err()).contains("label.txt:2: not UTF-8"));
}

#[test]
fn raf_db_lists_and_image_layouts() {
    let dir = scratch_dir("raf");
    let label = dir.join("list_patition_label.txt");
    write(
        &label,
        "train_00001.jpg 5\ntest_0001.jpg 1\ntrain_00002.jpg 7\n\ntest_0002.jpg 3\n",
    );
    let train = read_raf(&label, &dir.join("data"), RafSplit::Train).unwrap();
    assert_eq!(
        train.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [4, 6]
    );
    assert_eq!(
        train.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(train.rows(), 5);
    let test = read_raf(&label, &dir.join("data"), RafSplit::Test).unwrap();
    assert_eq!(
        test.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [0, 2]
    );
    // No file anywhere: the listed name under the data directory.
    assert_eq!(test.entries[0].image, dir.join("data/test_0001.jpg"));
    // RAF-DB's aligned faces.
    write_png(&dir.join("data/aligned/test_0001_aligned.jpg"), 1);
    let test = read_raf(&label, &dir.join("data"), RafSplit::Test).unwrap();
    assert_eq!(
        test.entries[1].image,
        dir.join("data/aligned/test_0002_aligned.jpg")
    );

    for (text, expected) in [
        (
            "train_1.jpg 8\n",
            "list_patition_label.txt:1: label 8 is outside 1..=7",
        ),
        ("test_1.jpg 1\ntrain_1.jpg 0\n", ":2: label 0 is outside"),
        ("train_1.jpg x\n", ":1: label \"x\" is not an integer"),
        ("train_1.jpg\n", ":1: expected `name label`"),
    ] {
        write(&label, text);
        let err = message(&read_raf(&label, &dir, RafSplit::Train).unwrap_err());
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn affectnet_lists() {
    let dir = scratch_dir("affectnet");
    let label = dir.join("label.txt");
    write(&label, "name x label\na.jpg 0 3\nb.jpg 1 0 extra\n\n");
    let list = read_affectnet(&label, &dir).unwrap();
    assert_eq!(
        list.entries.iter().map(|e| e.label).collect::<Vec<_>>(),
        [3, 0]
    );
    assert_eq!(list.rows(), 3);
    for (text, expected) in [
        ("h\na.jpg 0 7\n", "label.txt:2: label 7 is outside 0..7"),
        ("h\na.jpg 0\n", "label.txt:2: expected at least 3 columns"),
        ("h\na.jpg 0 -1\n", "label -1 is outside"),
    ] {
        write(&label, text);
        let err = message(&read_affectnet(&label, &dir).unwrap_err());
        assert!(err.contains(expected), "{err}");
    }
}

/// CelebA's own file: count line, names line, ±1 rows with variable spaces.
fn celeba_attr_text(rows: &[(&str, [i8; 40])]) -> String {
    let mut text = format!("{}\n{} \n", rows.len(), CELEBA_ATTRIBUTES.join(" "));
    for (name, values) in rows {
        text.push_str(name);
        for v in values {
            text.push_str(if *v > 0 { "  1" } else { " -1" });
        }
        text.push('\n');
    }
    text
}

#[test]
fn celeba_official_layout_maps_columns_by_name() {
    let dir = scratch_dir("celeba");
    let attr = dir.join("list_attr_celeba.txt");
    let mut male = [-1i8; 40];
    male[20] = 1; // Male
    let mut shadow_young = [-1i8; 40];
    shadow_young[0] = 1; // 5_o_Clock_Shadow
    shadow_young[39] = 1; // Young
    write(
        &attr,
        &celeba_attr_text(&[
            ("000001.jpg", male),
            ("000002.jpg", shadow_young),
            ("000003.jpg", [1; 40]),
        ]),
    );
    let list = read_celeba_attr(&attr, &dir.join("img")).unwrap();
    assert_eq!(list.len(), 3);
    let gender = SWINFACE_ATTRIBUTES
        .iter()
        .position(|&n| n == "Gender")
        .unwrap();
    let shadow = SWINFACE_ATTRIBUTES
        .iter()
        .position(|&n| n == "Five O'Clock Shadow")
        .unwrap();
    let young = SWINFACE_ATTRIBUTES
        .iter()
        .position(|&n| n == "Young")
        .unwrap();
    assert_eq!(gender, 4);
    let mut expected = [0u8; 40];
    expected[gender] = 1;
    assert_eq!(list.entries[0].label, expected);
    let mut expected = [0u8; 40];
    expected[shadow] = 1;
    expected[young] = 1;
    assert_eq!(list.entries[1].label, expected);
    assert_eq!(list.entries[2].label, [1; 40]);

    let partition = dir.join("list_eval_partition.txt");
    write(&partition, "000001.jpg 0\n000002.jpg 2\n000003.jpg 0\n");
    let train = read_celeba_split(&attr, &partition, &dir, Partition::Train).unwrap();
    assert_eq!(
        train.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [3, 5]
    );
    assert_eq!(train.rows(), 2, "a pass visits the partition's rows only");
    let test = read_celeba_split(&attr, &partition, &dir, Partition::Test).unwrap();
    assert_eq!(test.len(), 1);
    assert!(read_celeba_split(&attr, &partition, &dir, Partition::Val)
        .unwrap()
        .is_empty());

    write(&partition, "000001.jpg 0\n000002.jpg 3\n");
    let err = message(&read_celeba_split(&attr, &partition, &dir, Partition::Train).unwrap_err());
    assert!(
        err.contains("list_eval_partition.txt:2: partition \"3\""),
        "{err}"
    );
    write(&partition, "000001.jpg 0\n000002.jpg 1\n");
    let err = message(&read_celeba_split(&attr, &partition, &dir, Partition::Train).unwrap_err());
    assert!(
        err.contains("list_attr_celeba.txt:5: 000003.jpg is not in"),
        "{err}"
    );

    let good = celeba_attr_text(&[("000001.jpg", male)]);
    for (text, expected) in [
        (
            good.replacen("1\n", "2\n", 1),
            "list_attr_celeba.txt:1: the count line says 2 images but 1 rows follow",
        ),
        (
            good.replace("Male", "Mal"),
            ":2: unknown CelebA attribute \"Mal\"",
        ),
        (
            good.replace("Young", "Male"),
            ":2: attribute \"Male\" named twice",
        ),
        (
            good.replacen("  1", "  0", 1),
            ":3: Male is \"0\", expected 1 or -1",
        ),
        (
            good.replacen(" -1", "", 1),
            ":3: expected a name and 40 values",
        ),
    ] {
        write(&attr, &text);
        let err = message(&read_celeba_attr(&attr, &dir).unwrap_err());
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn celeba_swinface_label_variant() {
    let dir = scratch_dir("celeba_swinface");
    let label = dir.join("label.txt");
    let mut row: Vec<&str> = vec!["-1"; 40];
    row[4] = "1";
    row[7] = "0";
    row[39] = "1";
    write(&label, &format!("header\na.jpg {}\n\n", row.join(" ")));
    let list = read_swinface_label(&label, &dir).unwrap();
    let mut expected = [0u8; 40];
    expected[4] = 1;
    expected[39] = 1;
    assert_eq!(list.entries[0].label, expected);
    assert_eq!(list.rows(), 2);
    row[3] = "yes";
    write(&label, &format!("header\na.jpg {}\n", row.join(" ")));
    assert!(message(&read_swinface_label(&label, &dir).unwrap_err())
        .contains("label.txt:2: attribute 4 \"yes\""));
    write(&label, "header\na.jpg 1 1\n");
    assert!(message(&read_swinface_label(&label, &dir).unwrap_err())
        .contains("label.txt:2: expected a name and 40 values"));
}

#[test]
fn lap_csv_and_fgnet_lists() {
    let dir = scratch_dir("lap_fgnet");
    let csv = dir.join("test.csv");
    write(&csv, "image_1.jpg;25.5;3.25\n\nimage_2.jpg;61;0\n");
    let list = read_lap(&csv, &dir).unwrap();
    assert_eq!(
        list.entries
            .iter()
            .map(|e| (e.label.mean, e.label.std))
            .collect::<Vec<_>>(),
        [(25.5, 3.25), (61.0, 0.0)]
    );
    for (text, expected) in [
        ("a.jpg;25.5\n", "test.csv:1: expected `name;mean;std`"),
        (
            "a.jpg;25;-1\n",
            "test.csv:1: mean 25 outside [0, 150] or negative std -1",
        ),
        (
            "a.jpg;nan;1\n",
            "test.csv:1: mean age \"nan\" is not a finite number",
        ),
    ] {
        write(&csv, text);
        let err = message(&read_lap(&csv, &dir).unwrap_err());
        assert!(err.contains(expected), "{err}");
    }

    let label = dir.join("fgnet.txt");
    let mut text = String::from("name age\n");
    for i in 1..=20 {
        text.push_str(&format!("{i:03}A{i}.JPG {i}\n"));
    }
    write(&label, &text);
    // 21 lines: cut = 21 // 10 * 9 = 18; rows are readlines() indices 1..=20.
    let ages = |split| {
        read_fgnet(&label, &dir, split)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.label as usize)
            .collect::<Vec<_>>()
    };
    assert_eq!(ages(FgnetSplit::All), (1..=20).collect::<Vec<_>>());
    assert_eq!(ages(FgnetSplit::NineFold), (1..18).collect::<Vec<_>>());
    assert_eq!(ages(FgnetSplit::OneFold), (18..=20).collect::<Vec<_>>());
    assert_eq!(ages(FgnetSplit::RemoveOne(5)).len(), 19);
    assert!(!ages(FgnetSplit::RemoveOne(5)).contains(&5));
    write(&label, "name age\na.jpg\n");
    assert!(
        message(&read_fgnet(&label, &dir, FgnetSplit::All).unwrap_err())
            .contains("fgnet.txt:2: expected `name age`")
    );
}

#[test]
fn image_folder_order_matches_torchvision() {
    let dir = scratch_dir("folder");
    for path in [
        "b/2.jpg",
        "b/1.png",
        "a/x.JPG",
        "a/sub/0.png",
        "a/notes.txt",
        "c10/z.webp",
        "c2/y.bmp",
    ] {
        write_png(&dir.join(path), 1);
    }
    let folder = ImageFolder::read(&dir).unwrap();
    assert_eq!(folder.classes, ["a", "b", "c10", "c2"]);
    let got: Vec<(String, usize)> = folder
        .samples
        .iter()
        .map(|(p, c)| {
            (
                p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned(),
                *c,
            )
        })
        .collect();
    let expected = [
        ("a/x.JPG", 0),
        ("a/sub/0.png", 0),
        ("b/1.png", 1),
        ("b/2.jpg", 1),
        ("c10/z.webp", 2),
        ("c2/y.bmp", 3),
    ];
    assert_eq!(got, expected.map(|(p, c)| (p.to_owned(), c)));
    std::fs::create_dir_all(dir.join("d_empty")).unwrap();
    assert!(message(&ImageFolder::read(&dir).unwrap_err())
        .contains("class \"d_empty\" has no image files"));
}

#[test]
fn broken_multi_part_records_are_refused() {
    let dir = scratch_dir("rec_parts");
    let rec_path = dir.join("train.rec");
    let idx_path = dir.join("train.idx");
    let mut record = b"abcd".to_vec();
    record.extend_from_slice(&MAGIC_BYTES);
    record.extend_from_slice(b"efgh");
    let mut writer = RecordWriter::create(&rec_path, &idx_path).unwrap();
    writer.write_idx(0, &record).unwrap();
    writer.finish().unwrap();
    let reader = IndexedRecordReader::open(&rec_path, &idx_path).unwrap();
    assert_eq!(reader.read_key(0).unwrap().as_ref(), record.as_slice());
    drop(reader);
    // The first part is 8 + 4 bytes; an index pointing at the second part (flag 3).
    std::fs::write(&idx_path, "0\t12\n").unwrap();
    let reader = IndexedRecordReader::open(&rec_path, &idx_path).unwrap();
    let err = reader.read_key(0).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Record {
                offset: 12,
                problem: RecordProblem::BadContinuation { flag: 3, .. },
                ..
            }
        ),
        "{err:?}"
    );
    drop(reader);
    // The file ends after the first part.
    let bytes = std::fs::read(&rec_path).unwrap();
    std::fs::write(&rec_path, &bytes[..12]).unwrap();
    std::fs::write(&idx_path, "0\t0\n").unwrap();
    let reader = IndexedRecordReader::open(&rec_path, &idx_path).unwrap();
    let err = reader.read_key(0).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Record {
                offset: 12,
                problem: RecordProblem::Truncated {
                    needed: 8,
                    available: 0
                },
                ..
            }
        ),
        "{err:?}"
    );
    // A first frame flagged as a middle part cannot start a record.
    let mut bytes = bytes.clone();
    bytes[4..8].copy_from_slice(&(2u32 << 29 | 4).to_le_bytes());
    std::fs::write(&rec_path, &bytes).unwrap();
    let reader = IndexedRecordReader::open(&rec_path, &idx_path).unwrap();
    assert!(message(&reader.read_key(0).unwrap_err())
        .contains("continuation flag 2 where a record starts"));
}
