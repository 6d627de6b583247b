//! Readers (and writers, for the generator and tests) of the datasets' on-disk formats. Each
//! reader returns plain records (image paths or record offsets plus labels), never decoded
//! images; malformed input is a [`crate::error::DataError`] naming the file and line or record.

pub mod affectnet;
pub mod age_gender;
pub mod atomic;
pub mod celeba;
pub mod fgnet;
pub mod image_folder;
pub mod lap;
pub mod list;
pub mod raf;
pub mod recordio;
pub mod text;
pub mod verification_bin;

pub use list::{Entry, LabelList, Visited};
