//! The safe pickle reader under both allow lists, and the verification `.bin` parser on top.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use swinface_data::formats::verification_bin::parse_bin;
use swinface_pickle::{read_pickle, AllowList};

fuzz_target!(|data: &[u8]| {
    let _ = read_pickle(data, &AllowList::plain_data());
    let _ = read_pickle(data, &AllowList::torch_checkpoint());
    let _ = parse_bin(Path::new("fuzz.bin"), data);
});
