//! Readers (and writers, for the generator and tests) of the datasets' on-disk formats. Each
//! reader returns plain records (paths or record offsets plus labels), never decoded images.

pub mod atomic;
pub mod recordio;
pub mod verification_bin;
