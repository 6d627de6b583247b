//! What the loader needs from a dataset: its length and, per index, an image (encoded or
//! already decoded) and a label of the caller's type.

use std::sync::Arc;

use image::RgbImage;

use crate::augment::SampleRng;
use crate::error::DataError;

/// A sample's image as the dataset hands it over.
#[derive(Debug, Clone)]
pub enum SampleImage {
    /// Encoded JPEG/PNG bytes; the loader decodes them (in parallel, with size limits).
    Encoded(Vec<u8>),
    /// An image the dataset decoded or drew itself.
    Decoded(RgbImage),
}

/// One loaded sample.
#[derive(Debug, Clone)]
pub struct Sample<L> {
    pub image: SampleImage,
    pub label: L,
}

/// A random-access dataset. `load` is called from many threads at once.
pub trait Dataset: Send + Sync {
    type Label: Send + 'static;

    /// Number of samples.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads sample `index` (< len). `rng` is the sample's own stream, for datasets that
    /// draw something per sample.
    fn load(&self, index: usize, rng: &mut SampleRng) -> Result<Sample<Self::Label>, DataError>;

    /// Where sample `index` comes from (file path, record), for warnings.
    fn describe(&self, index: usize) -> String {
        format!("sample {index}")
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    type Label = D::Label;

    fn len(&self) -> usize {
        (**self).len()
    }

    fn load(&self, index: usize, rng: &mut SampleRng) -> Result<Sample<Self::Label>, DataError> {
        (**self).load(index, rng)
    }

    fn describe(&self, index: usize) -> String {
        (**self).describe(index)
    }
}
