//! How much of each dataset `swinface synth` writes.

use serde::{Deserialize, Serialize};

use super::error::SynthError;

/// Sizes of every generated dataset and the seed. [`SynthConfig::default`] is demo-sized
/// (about 25k images); [`SynthConfig::small`] is test-sized (under a thousand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SynthConfig {
    pub seed: u64,
    /// Recognition (training) identities in `faces_emore/train.rec`.
    pub identities: usize,
    /// Images of each recognition identity.
    pub images_per_identity: usize,
    /// Held-out people the verification pairs are drawn from.
    pub verification_identities: usize,
    /// Pairs in each verification `.bin` (half same person, half different).
    pub verification_pairs: usize,
    /// Verification sets to write: any of `lfw`, `cfp_fp`, `agedb_30`, `calfw`, `cplfw`.
    pub verification_sets: Vec<String>,
    /// Rows of each age-gender list (`AIO_train/{Adience,MORPH,WIKI,IMDB}`).
    pub adience: usize,
    pub morph: usize,
    pub wiki: usize,
    pub imdb: usize,
    /// Rows with a `nan` age or gender in each age-gender list (the readers skip them).
    pub nan_rows: usize,
    pub celeba_train: usize,
    pub celeba_val: usize,
    pub celeba_test: usize,
    pub raf_train: usize,
    pub raf_test: usize,
    pub affectnet: usize,
    /// Images of the CLAP2015 test set (`LAP_test`).
    pub lap_test: usize,
    /// FG-NET: people, each photographed at several ages.
    pub fgnet_subjects: usize,
    pub fgnet_images_per_subject: usize,
    /// JPEG quality of every written image.
    pub jpeg_quality: u8,
    /// Photographic nuisance, 0..=1 (see `ImagePolicy::nuisance`): 1 the full variation,
    /// lower for cleaner pictures with the same labels.
    pub nuisance: f32,
    /// Caricature, 0..=2 (see `ImagePolicy::caricature`): 0 drawn to scale, higher for
    /// stronger expressions, larger faces and deeper marks of age over a wider span of years
    /// (the CPU demo).
    pub caricature: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 2048,
            identities: 500,
            images_per_identity: 16,
            verification_identities: 200,
            verification_pairs: 600,
            verification_sets: vec!["lfw".into(), "cfp_fp".into(), "agedb_30".into()],
            adience: 800,
            morph: 800,
            wiki: 800,
            imdb: 800,
            nan_rows: 2,
            celeba_train: 3000,
            celeba_val: 500,
            celeba_test: 500,
            raf_train: 2400,
            raf_test: 700,
            affectnet: 2000,
            lap_test: 400,
            fgnet_subjects: 30,
            fgnet_images_per_subject: 10,
            jpeg_quality: 92,
            nuisance: 1.0,
            caricature: 0.0,
        }
    }
}

/// Names the verification sets may have (insightface's `val_targets`).
pub const VERIFICATION_SET_NAMES: [&str; 5] = ["lfw", "cfp_fp", "agedb_30", "calfw", "cplfw"];

impl SynthConfig {
    /// A few hundred images of each kind: enough for every reader and statistic in tests.
    pub fn small() -> Self {
        Self {
            identities: 20,
            images_per_identity: 5,
            verification_identities: 12,
            verification_pairs: 20,
            adience: 24,
            morph: 24,
            wiki: 24,
            imdb: 24,
            celeba_train: 60,
            celeba_val: 16,
            celeba_test: 16,
            raf_train: 56,
            raf_test: 21,
            affectnet: 42,
            lap_test: 16,
            fgnet_subjects: 4,
            fgnet_images_per_subject: 5,
            ..Self::default()
        }
    }

    pub fn recognition_images(&self) -> usize {
        self.identities * self.images_per_identity
    }

    pub fn validate(&self) -> Result<(), SynthError> {
        let bad = |message: String| Err(SynthError::Config { message });
        if self.identities == 0 || self.images_per_identity == 0 {
            return bad("identities and images per identity must be at least 1".into());
        }
        // Identity ids and record keys go through f32 labels in RecordIO: keep them exact.
        if self.recognition_images() + self.identities + 1 >= 1 << 24 {
            return bad("too many recognition images for exact float labels (2^24)".into());
        }
        if self.verification_pairs > 0 && self.verification_identities < 2 {
            return bad("verification pairs need at least 2 verification identities".into());
        }
        if !self.verification_pairs.is_multiple_of(2) {
            return bad("verification pairs must be even (half same, half different)".into());
        }
        if let Some(name) = self
            .verification_sets
            .iter()
            .find(|n| !VERIFICATION_SET_NAMES.contains(&n.as_str()))
        {
            return bad(format!(
                "unknown verification set {name:?} (expected one of {VERIFICATION_SET_NAMES:?})"
            ));
        }
        for (name, rows) in [
            ("adience", self.adience),
            ("morph", self.morph),
            ("wiki", self.wiki),
            ("imdb", self.imdb),
        ] {
            if rows > 0 && self.nan_rows >= rows {
                return bad(format!(
                    "{name}: {} nan rows leave no labelled row of {rows}",
                    self.nan_rows
                ));
            }
        }
        if self.fgnet_images_per_subject > 60 {
            return bad("FG-NET subjects have at most 60 images (one name per age)".into());
        }
        if !(0.0..=1.0).contains(&self.nuisance) {
            return bad(format!("nuisance {} is outside [0, 1]", self.nuisance));
        }
        if !(0.0..=2.0).contains(&self.caricature) {
            return bad(format!("caricature {} is outside [0, 2]", self.caricature));
        }
        if self.jpeg_quality == 0 || self.jpeg_quality > 100 {
            return bad(format!(
                "jpeg quality {} is not in 1..=100",
                self.jpeg_quality
            ));
        }
        Ok(())
    }

    /// Every image the configuration writes (RAF-DB's aligned copies and verification pairs
    /// counted once per stored image).
    pub fn total_images(&self) -> usize {
        self.recognition_images()
            + 2 * self.verification_pairs * self.verification_sets.len()
            + self.adience
            + self.morph
            + self.wiki
            + self.imdb
            + self.celeba_train
            + self.celeba_val
            + self.celeba_test
            + self.raf_train
            + self.raf_test
            + self.affectnet
            + self.lap_test
            + self.fgnet_subjects * self.fgnet_images_per_subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_outside_their_range_are_refused_by_name() {
        assert!(SynthConfig::small().validate().is_ok());
        for (config, name) in [
            (
                SynthConfig {
                    nuisance: 1.5,
                    ..SynthConfig::small()
                },
                "nuisance",
            ),
            (
                SynthConfig {
                    caricature: -0.1,
                    ..SynthConfig::small()
                },
                "caricature",
            ),
            (
                SynthConfig {
                    caricature: 2.5,
                    ..SynthConfig::small()
                },
                "caricature",
            ),
        ] {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
        }
    }
}
