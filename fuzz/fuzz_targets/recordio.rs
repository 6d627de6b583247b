//! RecordIO: one record's header, and a whole `.rec` + `.idx` pair read key by key. The input
//! is split at its first 0xff byte run: index text before it, record bytes after.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use swinface_data::formats::recordio::{unpack, IndexedRecordReader, MxFaceDataset};

thread_local! {
    static DIR: RefCell<tempfile::TempDir> = RefCell::new(tempfile::tempdir().unwrap());
}

fuzz_target!(|data: &[u8]| {
    let _ = unpack(data);
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (idx, rec) = (&data[..split], &data[split.min(data.len())..]);
    DIR.with(|dir| {
        let dir = dir.borrow();
        let (rec_path, idx_path) = (dir.path().join("train.rec"), dir.path().join("train.idx"));
        std::fs::write(&rec_path, rec).unwrap();
        std::fs::write(&idx_path, idx).unwrap();
        if let Ok(reader) = IndexedRecordReader::open(&rec_path, &idx_path) {
            let keys: Vec<u64> = reader.entries().iter().map(|e| e.key).collect();
            for key in keys {
                let _ = reader.read_unpacked(key);
            }
        }
        if let Ok(dataset) = MxFaceDataset::open_files(&rec_path, &idx_path) {
            for i in 0..dataset.len().min(64) {
                let _ = dataset.get(i, Some(10));
            }
        }
    });
});
