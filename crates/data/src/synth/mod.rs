//! Procedural face datasets: 112x112 RGB faces drawn from scratch, labelled with what the
//! drawing shows, and written in every on-disk format SwinFace reads ([`write_all`]).
//!
//! - identity: face outline and jaw, skin tone, eye spacing, size and colour, nose, mouth and
//!   lips, brows, ears, hair colour, style and hairline, all drawn from an identity-keyed
//!   stream ([`Identity`]);
//! - expression (RAF-DB order): mouth shape, brow height and slant, eye opening;
//! - age: child proportions, wrinkles (forehead, nasolabial, crow's feet, marionette), greying,
//!   eye bags, sagging, age spots;
//! - gender: hair length, beards, jaw, brows, and habits (makeup, ties, earrings);
//! - the 40 attributes, each bound to something drawn ([`labels::attr`]);
//! - nuisance on every image: rotation, scale, shift, background, lighting, exposure, colour
//!   cast, noise.
//!
//! Everything is a pure function of `(seed, key)`: any image can be drawn alone, in parallel,
//! and is identical on every run.

mod config;
mod draw;
mod error;
pub mod geom;
mod identity;
pub mod labels;
pub mod raster;
mod rng;
mod scene;
mod spec;
mod write;

pub use config::SynthConfig;
pub use error::SynthError;
pub use identity::{AgeRange, HairColour, HairTexture, Identity};
pub use labels::{attr, Expression, FaceLabels, ATTRIBUTE_COUNT};
pub use rng::SynthRng;
pub use spec::{FaceSpec, ImagePolicy, Look, Scene};
pub use write::{data_config, write_all, SynthManifest, DATA_CONFIG_NAME, MANIFEST_NAME};

use image::RgbImage;

use raster::Canvas;

/// Side of a generated image.
pub const IMAGE_SIZE: usize = 112;

/// Disjoint populations of people: identities are keyed by population and number, so the
/// verification people are never the training people, and every analysis dataset has its own.
pub mod population {
    pub const RECOGNITION: u64 = 1;
    pub const VERIFICATION: u64 = 2;
    pub const ADIENCE: u64 = 10;
    pub const MORPH: u64 = 11;
    pub const WIKI: u64 = 12;
    pub const IMDB: u64 = 13;
    pub const CELEBA: u64 = 20;
    pub const RAF: u64 = 30;
    pub const AFFECTNET: u64 = 31;
    pub const LAP: u64 = 40;
    pub const FGNET: u64 = 41;
    /// For tests and previews.
    pub const PREVIEW: u64 = 99;
}

const IDENTITY_STREAM: u64 = 0x1D;
const PHOTO_STREAM: u64 = 0x9407;

/// Person `id` of `population`.
pub fn person(seed: u64, population: u64, id: u64, ages: AgeRange) -> Identity {
    Identity::sample(
        &mut SynthRng::keyed(seed, &[IDENTITY_STREAM, population, id]),
        ages,
    )
}

/// Photo number `photo` of a person (`id` of `population`); `age` fixes the age.
pub fn photo(
    seed: u64,
    population: u64,
    id: u64,
    photo: u64,
    person: &Identity,
    age: Option<f32>,
    policy: &ImagePolicy,
) -> FaceSpec {
    let mut rng = SynthRng::keyed(seed, &[PHOTO_STREAM, population, id, photo]);
    FaceSpec::sample(id, person, age, policy, &mut rng)
}

/// Draws the picture.
pub fn render(spec: &FaceSpec) -> RgbImage {
    let mut canvas = Canvas::new(IMAGE_SIZE, IMAGE_SIZE, spec.scene.transform);
    scene::background(&mut canvas, &spec.scene);
    draw::draw_face(&mut canvas, spec);
    scene::develop(&mut canvas, &spec.scene, spec.look.blur_sigma);
    scene::to_rgb8(&canvas)
}

/// Encodes as baseline JPEG at `quality` (1..=100).
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, SynthError> {
    let mut out = Vec::with_capacity(8 * 1024);
    let encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    image
        .write_with_encoder(encoder)
        .map_err(SynthError::Encode)?;
    Ok(out)
}
