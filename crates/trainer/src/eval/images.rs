//! Images of an evaluation set, decoded and transformed batch by batch on a producer thread
//! (rayon inside a batch) while the model runs on the previous batch: at most two batches are
//! held, however large the set.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;
use swinface_data::augment::{sample_rng, EvalTransform, Transform};
use swinface_data::formats::LabelList;
use swinface_data::preprocess::{
    align_to_arcface, decode_rgb8, decode_rgb8_bytes, DecodeLimits, RgbImage,
};
use tch::Tensor;

use super::error::EvalError;
use super::shard::Shard;

/// A set of images addressed by index.
pub trait ImageSet: Sync {
    fn len(&self) -> usize;

    /// Image `index`, decoded (any size: the evaluation transform resizes it).
    fn load(&self, index: usize) -> Result<RgbImage, EvalError>;
}

/// The images of a label list (RAF-DB, CelebA, CLAP2015, FG-NET).
pub struct ListImages {
    pub label_file: PathBuf,
    /// (1-based line of the label file, image path) per sample.
    pub items: Vec<(usize, PathBuf)>,
    pub limits: DecodeLimits,
}

impl ListImages {
    pub fn new<L>(list: &LabelList<L>, limits: DecodeLimits) -> Self {
        Self {
            label_file: list.label_file.clone(),
            items: list
                .entries
                .iter()
                .map(|e| (e.line, e.image.clone()))
                .collect(),
            limits,
        }
    }

    /// The first image of `shard` that does not exist, as an error naming the label file and
    /// line; checked before any model work so that a bad list fails at once.
    pub fn check_exist(&self, shard: Shard) -> Result<(), EvalError> {
        for i in shard.indices(self.items.len()) {
            let (line, image) = &self.items[i];
            if !image.is_file() {
                return Err(EvalError::MissingImage {
                    label_file: self.label_file.clone(),
                    line: *line,
                    image: image.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ImageSet for ListImages {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn load(&self, index: usize) -> Result<RgbImage, EvalError> {
        let (line, image) = &self.items[index];
        decode_rgb8(image, &self.limits).map_err(|source| EvalError::Image {
            label_file: self.label_file.clone(),
            line: *line,
            image: image.clone(),
            source: Box::new(source),
        })
    }
}

/// The encoded images of a verification `.bin`.
pub struct BinImages<'a> {
    pub path: &'a Path,
    pub images: &'a [Vec<u8>],
    pub limits: DecodeLimits,
}

impl ImageSet for BinImages<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn load(&self, index: usize) -> Result<RgbImage, EvalError> {
        let name = PathBuf::from(format!("{}#{index}", self.path.display()));
        decode_rgb8_bytes(&self.images[index], &name, &self.limits).map_err(|source| {
            EvalError::BinImage {
                path: self.path.to_path_buf(),
                index,
                source: Box::new(source),
            }
        })
    }
}

/// Images aligned by five landmarks onto the ArcFace template (IJB-C's loose crops).
pub struct AlignedImages<'a> {
    /// The file listing them (named in errors).
    pub list_file: &'a Path,
    /// (line, image path, landmarks) per image.
    pub items: &'a [(usize, PathBuf, [[f32; 2]; 5])],
    pub limits: DecodeLimits,
}

impl ImageSet for AlignedImages<'_> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn load(&self, index: usize) -> Result<RgbImage, EvalError> {
        let (line, image, landmarks) = &self.items[index];
        let error = |source| EvalError::Image {
            label_file: self.list_file.to_path_buf(),
            line: *line,
            image: image.clone(),
            source: Box::new(source),
        };
        let img = decode_rgb8(image, &self.limits).map_err(error)?;
        align_to_arcface(&img, *landmarks).map_err(error)
    }
}

/// One batch: the dataset indices and the normalised input, [B, 3, S, S] float32 on the CPU.
pub struct Batch {
    pub indices: Vec<usize>,
    pub input: Tensor,
}

/// Runs `consume` on the batches of this shard's images in order: decoding and transforming
/// the next batch overlaps with `consume` on the current one.
pub fn for_each_batch(
    set: &dyn ImageSet,
    shard: Shard,
    batch_size: usize,
    transform: &EvalTransform,
    mut consume: impl FnMut(Batch) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    let indices: Vec<usize> = shard.indices(set.len()).collect();
    let size = transform.output_size() as usize;
    let per_image = 3 * size * size;
    let batch_size = batch_size.max(1);
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Result<(Vec<usize>, Vec<f32>), EvalError>>(1);
        scope.spawn(move || {
            for chunk in indices.chunks(batch_size) {
                let mut values = vec![0f32; chunk.len() * per_image];
                let result = values
                    .par_chunks_mut(per_image)
                    .zip(chunk.par_iter())
                    .try_for_each(|(out, &i)| {
                        let img = set.load(i)?;
                        // The evaluation transform draws no random numbers.
                        let mut rng = sample_rng(0, 0, 0, 0);
                        transform
                            .apply_into(img, &mut rng, out)
                            .map_err(|e| EvalError::Config {
                                message: format!("evaluation transform: {e}"),
                            })
                    });
                let failed = result.is_err();
                if sender
                    .send(result.map(|()| (chunk.to_vec(), values)))
                    .is_err()
                    || failed
                {
                    return;
                }
            }
        });
        for message in receiver {
            let (indices, values) = message?;
            let input = Tensor::from_slice(&values).view([
                indices.len() as i64,
                3,
                size as i64,
                size as i64,
            ]);
            consume(Batch { indices, input })?;
        }
        Ok(())
    })
}
