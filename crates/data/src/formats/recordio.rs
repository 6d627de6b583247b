//! MXNet RecordIO, as insightface's MS1MV2 (`train.rec` + `train.idx` + `property`) stores it.
//!
//! A `.rec` file is a sequence of frames: magic `0xced7230a` (u32 LE), `lrecord` (u32 LE: low
//! 29 bits = length, top 3 bits = continuation flag), the bytes, zero padding to 4 bytes.
//! dmlc's writer splits a record wherever the magic word appears at a 4-byte-aligned position
//! of the record (flags 1 = first part, 2 = middle, 3 = last; 0 = whole record) and drops that
//! magic word; the reader re-inserts it between parts. The `.idx` file has `key\toffset` lines,
//! the offset being where the record's first frame starts.
//!
//! A record is an IRHeader (flag u32, label f32, id u64, id2 u64: 24 bytes, little-endian)
//! followed by `flag` f32 labels when `flag > 0`, then the payload (an encoded image).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::atomic::AtomicFile;
use crate::error::{DataError, RecordProblem};

/// The word that starts every frame (and that the writer never leaves aligned inside one).
pub const MAGIC: u32 = 0xced7_230a;
/// Bytes of the packed IRHeader (`struct.calcsize('IfQQ')`).
pub const IR_HEADER_SIZE: usize = 24;
/// A frame's length field has 29 bits; dmlc refuses records of `2^29` bytes or more.
pub const MAX_RECORD_LEN: usize = (1 << 29) - 1;

const FLAG_WHOLE: u32 = 0;
const FLAG_FIRST: u32 = 1;
const FLAG_MIDDLE: u32 = 2;
const FLAG_LAST: u32 = 3;

/// The label part of an IRHeader: one number (`flag == 0`) or a vector of `flag` floats.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordLabel {
    Scalar(f32),
    Vector(Vec<f32>),
}

impl RecordLabel {
    /// The class label as insightface takes it: the number, or the first element of a vector.
    pub fn first(&self) -> Option<f32> {
        match self {
            RecordLabel::Scalar(x) => Some(*x),
            RecordLabel::Vector(v) => v.first().copied(),
        }
    }
}

/// MXNet's `IRHeader(flag, label, id, id2)` with the label vector folded into `label`.
#[derive(Debug, Clone, PartialEq)]
pub struct IrHeader {
    pub label: RecordLabel,
    pub id: u64,
    pub id2: u64,
}

impl IrHeader {
    pub fn scalar(label: f32, id: u64) -> Self {
        Self {
            label: RecordLabel::Scalar(label),
            id,
            id2: 0,
        }
    }

    pub fn vector(labels: Vec<f32>, id: u64) -> Self {
        Self {
            label: RecordLabel::Vector(labels),
            id,
            id2: 0,
        }
    }
}

/// `mx.recordio.pack(header, payload)`: a vector label sets `flag = len` and `label = 0` and
/// puts the floats before the payload; an empty vector packs as the scalar 0.
pub fn pack(header: &IrHeader, payload: &[u8]) -> Vec<u8> {
    let (flag, label, extra): (u32, f32, &[f32]) = match &header.label {
        RecordLabel::Scalar(x) => (0, *x, &[]),
        RecordLabel::Vector(v) => (v.len() as u32, 0.0, v.as_slice()),
    };
    let mut out = Vec::with_capacity(IR_HEADER_SIZE + 4 * extra.len() + payload.len());
    out.extend_from_slice(&flag.to_le_bytes());
    out.extend_from_slice(&label.to_le_bytes());
    out.extend_from_slice(&header.id.to_le_bytes());
    out.extend_from_slice(&header.id2.to_le_bytes());
    for x in extra {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// `mx.recordio.unpack(record)`: the header and the payload after it.
pub fn unpack(record: &[u8]) -> Result<(IrHeader, &[u8]), RecordProblem> {
    if record.len() < IR_HEADER_SIZE {
        return Err(RecordProblem::ShortHeader { len: record.len() });
    }
    let flag = read_u32(record, 0);
    let label = f32::from_le_bytes([record[4], record[5], record[6], record[7]]);
    let id = read_u64(record, 8);
    let id2 = read_u64(record, 16);
    let rest = &record[IR_HEADER_SIZE..];
    if flag == 0 {
        return Ok((
            IrHeader {
                label: RecordLabel::Scalar(label),
                id,
                id2,
            },
            rest,
        ));
    }
    let needed = 4 * u64::from(flag);
    if needed > rest.len() as u64 {
        return Err(RecordProblem::LabelsPastEnd {
            flag,
            needed,
            available: rest.len(),
        });
    }
    let (floats, payload) = rest.split_at(needed as usize);
    let labels = floats
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((
        IrHeader {
            label: RecordLabel::Vector(labels),
            id,
            id2,
        },
        payload,
    ))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn encode_lrec(flag: u32, len: usize) -> u32 {
    (flag << 29) | len as u32
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends `record` as dmlc's `RecordIOWriter::WriteRecord` frames it: split at every
/// 4-byte-aligned magic word, each part behind its own magic + `lrecord`, the last part padded
/// with zeros to 4 bytes. Returns how many extra parts the magic words caused.
pub fn encode_frames(record: &[u8], out: &mut Vec<u8>) -> Result<usize, RecordProblem> {
    if record.len() > MAX_RECORD_LEN {
        return Err(RecordProblem::TooLong { len: record.len() });
    }
    let magic = MAGIC.to_le_bytes();
    let mut part_start = 0;
    let mut splits = 0;
    for i in (0..record.len() / 4 * 4).step_by(4) {
        if record[i..i + 4] == magic {
            let flag = if part_start == 0 {
                FLAG_FIRST
            } else {
                FLAG_MIDDLE
            };
            out.extend_from_slice(&magic);
            out.extend_from_slice(&encode_lrec(flag, i - part_start).to_le_bytes());
            out.extend_from_slice(&record[part_start..i]);
            part_start = i + 4;
            splits += 1;
        }
    }
    let flag = if part_start == 0 {
        FLAG_WHOLE
    } else {
        FLAG_LAST
    };
    out.extend_from_slice(&magic);
    out.extend_from_slice(&encode_lrec(flag, record.len() - part_start).to_le_bytes());
    out.extend_from_slice(&record[part_start..]);
    out.resize(out.len() + align4(record.len()) - record.len(), 0);
    Ok(splits)
}

/// Writes a `.rec` and its `.idx` as MXNet's `MXIndexedRecordIO(idx, rec, 'w').write_idx` does.
/// Both files appear under their names only on [`RecordWriter::finish`].
pub struct RecordWriter {
    rec: AtomicFile,
    idx: AtomicFile,
    position: u64,
    frame: Vec<u8>,
    split_records: usize,
}

impl RecordWriter {
    pub fn create(rec_path: &Path, idx_path: &Path) -> Result<Self, DataError> {
        Ok(Self {
            rec: AtomicFile::create(rec_path)?,
            idx: AtomicFile::create(idx_path)?,
            position: 0,
            frame: Vec::new(),
            split_records: 0,
        })
    }

    /// Byte offset the next record will start at.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many records so far contained an aligned magic word and were written in parts.
    pub fn split_records(&self) -> usize {
        self.split_records
    }

    /// Appends one raw record under `key` (`write_idx(key, buf)`).
    pub fn write_idx(&mut self, key: u64, record: &[u8]) -> Result<(), DataError> {
        self.frame.clear();
        let splits =
            encode_frames(record, &mut self.frame).map_err(|problem| DataError::Record {
                path: self.rec.path().to_path_buf(),
                offset: self.position,
                problem,
            })?;
        if splits > 0 {
            self.split_records += 1;
        }
        self.rec.write_all(&self.frame)?;
        self.idx
            .write_all(format!("{key}\t{}\n", self.position).as_bytes())?;
        self.position += self.frame.len() as u64;
        Ok(())
    }

    /// Packs `header` + `payload` and appends it under `key`.
    pub fn write_packed(
        &mut self,
        key: u64,
        header: &IrHeader,
        payload: &[u8],
    ) -> Result<(), DataError> {
        self.write_idx(key, &pack(header, payload))
    }

    pub fn finish(self) -> Result<(), DataError> {
        self.rec.commit()?;
        self.idx.commit()
    }
}

/// A memory-mapped `.rec` file; reads records at byte offsets.
pub struct RecordFile {
    path: PathBuf,
    /// `None` for an empty file (which cannot be mapped).
    map: Option<Mmap>,
}

impl RecordFile {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the map is read-only; a dataset file changed underneath a training run
            // is outside what this reader can defend against (as for any mmap reader).
            Some(unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(path, e))?)
        };
        Ok(Self {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The record whose first frame starts at `offset`, parts rejoined with the magic word
    /// (borrowed from the map when it is a single frame), and the offset after it.
    pub fn read_at(&self, offset: u64) -> Result<(Cow<'_, [u8]>, u64), DataError> {
        let err = |at: u64, problem| DataError::Record {
            path: self.path.clone(),
            offset: at,
            problem,
        };
        let data = self.bytes();
        let file_len = data.len() as u64;
        if offset >= file_len {
            return Err(err(offset, RecordProblem::OffsetPastEnd { file_len }));
        }
        // Parts of a multi-part record, joined with the magic word between them.
        let mut joined: Vec<u8> = Vec::new();
        let mut pos = offset;
        loop {
            let available = file_len - pos;
            if available < 8 {
                return Err(err(
                    pos,
                    RecordProblem::Truncated {
                        needed: 8,
                        available,
                    },
                ));
            }
            let at = pos as usize;
            let magic = read_u32(data, at);
            if magic != MAGIC {
                return Err(err(pos, RecordProblem::BadMagic { found: magic }));
            }
            let lrec = read_u32(data, at + 4);
            let flag = lrec >> 29;
            let len = (lrec & ((1 << 29) - 1)) as usize;
            if (len as u64) > available - 8 {
                return Err(err(
                    pos,
                    RecordProblem::Truncated {
                        needed: 8 + len as u64,
                        available,
                    },
                ));
            }
            let body = &data[at + 8..at + 8 + len];
            // A missing zero padding after the very last frame of the file is tolerated.
            let next = (pos + 8 + align4(len) as u64).min(file_len);
            let first = pos == offset;
            match (first, flag) {
                (true, FLAG_WHOLE) => return Ok((Cow::Borrowed(body), next)),
                (true, FLAG_FIRST) => joined.extend_from_slice(body),
                (false, FLAG_MIDDLE | FLAG_LAST) => {
                    joined.extend_from_slice(&MAGIC.to_le_bytes());
                    joined.extend_from_slice(body);
                    if flag == FLAG_LAST {
                        return Ok((Cow::Owned(joined), next));
                    }
                }
                (true, _) => {
                    return Err(err(
                        pos,
                        RecordProblem::BadContinuation {
                            flag,
                            expected: "a record starts (0 or 1)",
                        },
                    ))
                }
                (false, _) => {
                    return Err(err(
                        pos,
                        RecordProblem::BadContinuation {
                            flag,
                            expected: "a multi-part record continues (2 or 3)",
                        },
                    ))
                }
            }
            pos = next;
            if pos >= file_len {
                return Err(err(
                    pos,
                    RecordProblem::Truncated {
                        needed: 8,
                        available: 0,
                    },
                ));
            }
        }
    }
}

/// One `key\toffset` line of a `.idx` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub key: u64,
    pub offset: u64,
}

/// Parses a `.idx` file; every offset must lie inside a file of `rec_len` bytes.
pub fn read_index(idx_path: &Path, rec_len: u64) -> Result<Vec<IndexEntry>, DataError> {
    let text = std::fs::read(idx_path).map_err(|e| DataError::io(idx_path, e))?;
    let mut entries = Vec::new();
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = n + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| DataError::line(idx_path, line_no, "not UTF-8 text"))?
            .trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(key), Some(offset), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(DataError::line(
                idx_path,
                line_no,
                format!("expected `key<TAB>offset`, found {line:?}"),
            ));
        };
        let key: u64 = key.trim().parse().map_err(|_| {
            DataError::line(idx_path, line_no, format!("key {key:?} is not an integer"))
        })?;
        let offset: u64 = offset.trim().parse().map_err(|_| {
            DataError::line(
                idx_path,
                line_no,
                format!("offset {offset:?} is not an integer"),
            )
        })?;
        if offset >= rec_len {
            return Err(DataError::line(
                idx_path,
                line_no,
                format!(
                    "key {key} points to byte {offset}, past the end of the .rec ({rec_len} bytes)"
                ),
            ));
        }
        entries.push(IndexEntry { key, offset });
    }
    Ok(entries)
}

/// A `.rec` with its `.idx`: random access by key, as `MXIndexedRecordIO(idx, rec, 'r')`.
pub struct IndexedRecordReader {
    rec: RecordFile,
    idx_path: PathBuf,
    entries: Vec<IndexEntry>,
    position_of_key: HashMap<u64, usize>,
}

impl IndexedRecordReader {
    pub fn open(rec_path: &Path, idx_path: &Path) -> Result<Self, DataError> {
        let rec = RecordFile::open(rec_path)?;
        let entries = read_index(idx_path, rec.len())?;
        let mut position_of_key = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if position_of_key.insert(e.key, i).is_some() {
                return Err(DataError::file(
                    idx_path,
                    format!("key {} appears more than once", e.key),
                ));
            }
        }
        Ok(Self {
            rec,
            idx_path: idx_path.to_path_buf(),
            entries,
            position_of_key,
        })
    }

    pub fn rec(&self) -> &RecordFile {
        &self.rec
    }

    pub fn idx_path(&self) -> &Path {
        &self.idx_path
    }

    /// Index lines in file order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub fn contains(&self, key: u64) -> bool {
        self.position_of_key.contains_key(&key)
    }

    pub fn offset_of(&self, key: u64) -> Option<u64> {
        self.position_of_key
            .get(&key)
            .map(|&i| self.entries[i].offset)
    }

    /// The raw record stored under `key` (`read_idx(key)`).
    pub fn read_key(&self, key: u64) -> Result<Cow<'_, [u8]>, DataError> {
        let offset = self.offset_of(key).ok_or_else(|| DataError::Record {
            path: self.idx_path.clone(),
            offset: 0,
            problem: RecordProblem::MissingKey { key },
        })?;
        Ok(self.rec.read_at(offset)?.0)
    }

    /// The record under `key`, unpacked.
    pub fn read_unpacked(&self, key: u64) -> Result<(IrHeader, Cow<'_, [u8]>), DataError> {
        let offset = self.offset_of(key).ok_or_else(|| DataError::Record {
            path: self.idx_path.clone(),
            offset: 0,
            problem: RecordProblem::MissingKey { key },
        })?;
        let record = self.rec.read_at(offset)?.0;
        let to_err = |problem| DataError::Record {
            path: self.rec.path.clone(),
            offset,
            problem,
        };
        match record {
            Cow::Borrowed(bytes) => {
                let (header, payload) = unpack(bytes).map_err(to_err)?;
                Ok((header, Cow::Borrowed(payload)))
            }
            Cow::Owned(bytes) => {
                let (header, payload) = unpack(&bytes).map_err(to_err)?;
                Ok((header, Cow::Owned(payload.to_vec())))
            }
        }
    }
}

/// One training sample of a recognition `.rec`: the key, its class, the encoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct RecSample<'a> {
    pub key: u64,
    pub label: i64,
    pub image: Cow<'a, [u8]>,
}

/// insightface's `MXFaceDataset`: `train.rec` + `train.idx` in a directory. When record 0's
/// header has `flag > 0`, its label `[a, b]` says images are keys `1..a` (identity records
/// follow from `a` to `b`); otherwise every key of the index is an image.
pub struct MxFaceDataset {
    reader: IndexedRecordReader,
    image_keys: Vec<u64>,
    /// `(int(label[0]), int(label[1]))` of record 0 when it has a vector label.
    pub header0: Option<(i64, i64)>,
}

impl MxFaceDataset {
    /// Opens `root/train.rec` and `root/train.idx`.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        Self::open_files(&root.join("train.rec"), &root.join("train.idx"))
    }

    pub fn open_files(rec_path: &Path, idx_path: &Path) -> Result<Self, DataError> {
        let reader = IndexedRecordReader::open(rec_path, idx_path)?;
        if reader.entries().is_empty() {
            return Err(DataError::file(idx_path, "the index lists no records"));
        }
        let (header, _) = reader.read_unpacked(0)?;
        let (image_keys, header0) = match &header.label {
            RecordLabel::Vector(v) if !v.is_empty() => {
                let a = f64::from(v[0]);
                let b = v.get(1).map_or(a, |&b| f64::from(b));
                let keys = reader.entries().len();
                // `range(1, int(a))` must hold an image, and every key must be in the index (Python
                // would fail later with a KeyError).
                if !(a.is_finite() && a >= 2.0 && a.trunc() <= keys as f64) {
                    return Err(DataError::Record {
                        path: rec_path.to_path_buf(),
                        offset: reader.offset_of(0).unwrap_or(0),
                        problem: RecordProblem::BadHeader0 { end: a, keys },
                    });
                }
                let end = a.trunc() as u64;
                if let Some(key) = (1..end).find(|k| !reader.contains(*k)) {
                    return Err(DataError::Record {
                        path: idx_path.to_path_buf(),
                        offset: 0,
                        problem: RecordProblem::MissingKey { key },
                    });
                }
                let b = if b.is_finite() { b.trunc() as i64 } else { 0 };
                ((1..end).collect(), Some((end as i64, b)))
            }
            _ => (reader.entries().iter().map(|e| e.key).collect(), None),
        };
        Ok(Self {
            reader,
            image_keys,
            header0,
        })
    }

    pub fn reader(&self) -> &IndexedRecordReader {
        &self.reader
    }

    pub fn len(&self) -> usize {
        self.image_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.image_keys.is_empty()
    }

    /// The record keys of the images, in dataset order (`imgidx`).
    pub fn image_keys(&self) -> &[u64] {
        &self.image_keys
    }

    /// Sample `index` (`__getitem__` without decoding). `num_classes`, when given, bounds the
    /// label; a NaN, negative or too large label is an error naming the record.
    pub fn get(&self, index: usize, num_classes: Option<u64>) -> Result<RecSample<'_>, DataError> {
        let key = *self
            .image_keys
            .get(index)
            .ok_or_else(|| DataError::Record {
                path: self.reader.idx_path.clone(),
                offset: 0,
                problem: RecordProblem::MissingKey { key: index as u64 },
            })?;
        let (header, image) = self.reader.read_unpacked(key)?;
        let offset = self.reader.offset_of(key).unwrap_or(0);
        let value = header.label.first().unwrap_or(f32::NAN);
        let label = class_id(value, num_classes).ok_or_else(|| DataError::Record {
            path: self.reader.rec.path.clone(),
            offset,
            problem: RecordProblem::BadLabel {
                value,
                num_classes: num_classes.unwrap_or(u64::MAX),
            },
        })?;
        Ok(RecSample { key, label, image })
    }
}

/// `torch.tensor(label, dtype=torch.long)` (truncation toward zero), refusing NaN, infinities,
/// negatives and ids at or over `num_classes`.
pub fn class_id(value: f32, num_classes: Option<u64>) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let id = value.trunc() as i64;
    match num_classes {
        Some(n) if id as u64 >= n => None,
        _ => Some(id),
    }
}

/// insightface's `property` file: `num_classes,height,width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    pub num_classes: u64,
    pub height: u32,
    pub width: u32,
}

pub fn read_property(path: &Path) -> Result<Property, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let line = text.lines().next().unwrap_or("").trim();
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let bad = || {
        DataError::line(
            path,
            1,
            format!("expected `num_classes,height,width`, found {line:?}"),
        )
    };
    let [n, h, w] = fields.as_slice() else {
        return Err(bad());
    };
    let property = Property {
        num_classes: n.parse().map_err(|_| bad())?,
        height: h.parse().map_err(|_| bad())?,
        width: w.parse().map_err(|_| bad())?,
    };
    if property.num_classes == 0 || property.height == 0 || property.width == 0 {
        return Err(bad());
    }
    Ok(property)
}

pub fn write_property(path: &Path, property: &Property) -> Result<(), DataError> {
    let text = format!(
        "{},{},{}\n",
        property.num_classes, property.height, property.width
    );
    super::atomic::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_layout_matches_struct_ifqq() {
        let packed = pack(&IrHeader::scalar(3.0, 7), b"xy");
        assert_eq!(&packed[0..4], &0u32.to_le_bytes());
        assert_eq!(&packed[4..8], &3.0f32.to_le_bytes());
        assert_eq!(&packed[8..16], &7u64.to_le_bytes());
        assert_eq!(&packed[24..], b"xy");
        let packed = pack(&IrHeader::vector(vec![5.0, 9.0], 0), b"");
        assert_eq!(&packed[0..4], &2u32.to_le_bytes());
        assert_eq!(&packed[4..8], &0.0f32.to_le_bytes());
        let (header, payload) = unpack(&packed).unwrap();
        assert_eq!(header.label, RecordLabel::Vector(vec![5.0, 9.0]));
        assert!(payload.is_empty());
    }

    #[test]
    fn frames_split_at_aligned_magic_only() {
        let magic = MAGIC.to_le_bytes();
        // Magic at offset 4 (aligned) and at offset 9 (not aligned).
        let mut record = vec![1u8, 2, 3, 4];
        record.extend_from_slice(&magic);
        record.push(5);
        record.extend_from_slice(&magic);
        let mut out = Vec::new();
        assert_eq!(encode_frames(&record, &mut out).unwrap(), 1);
        // Part 1: magic, lrec(1, 4), 4 bytes; part 2: magic, lrec(3, 5), 5 bytes + 3 padding.
        assert_eq!(read_u32(&out, 0), MAGIC);
        assert_eq!(read_u32(&out, 4), (1 << 29) | 4);
        assert_eq!(read_u32(&out, 12), MAGIC);
        assert_eq!(read_u32(&out, 16), (3 << 29) | 5);
        assert_eq!(out.len(), 12 + 8 + 8);
    }

    #[test]
    fn class_id_truncates_and_refuses() {
        assert_eq!(class_id(3.9, Some(10)), Some(3));
        assert_eq!(class_id(10.0, Some(10)), None);
        assert_eq!(class_id(f32::NAN, None), None);
        assert_eq!(class_id(-1.0, None), None);
    }
}
