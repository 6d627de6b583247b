//! One image's worth of choices: the person, what this photo shows of them (age, expression,
//! accessories), the nuisance (pose, background, light, noise) and the labels that follow.

use super::geom::{v2, Similarity, Vec2};
use super::identity::{HairColour, HairTexture, Identity, GREYING_ONSETS, GREYING_RATES};
use super::labels::{attr, Expression, FaceLabels, ATTRIBUTE_COUNT};
use super::raster::Rgb;
use super::rng::SynthRng;

/// How a dataset draws its images' ages, expressions and poses.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePolicy {
    /// Standard deviation of an image's age around its identity's base age (years).
    pub age_jitter: f32,
    /// Relative frequency of each expression (RAF-DB order).
    pub expression_weights: [f32; 7],
    /// Largest in-plane rotation, degrees.
    pub max_rotation_deg: f32,
    /// Largest relative change of scale.
    pub max_scale: f32,
    /// Largest shift along each axis, pixels.
    pub max_shift: f32,
    /// How much of the photographic nuisance is applied, 0..=1: pose jitter, background
    /// contrast, lighting, exposure, colour cast, sensor noise, the slight blur of sharp
    /// photos and weak expressions (below 1 expressions are also exaggerated, up to 1.5x at
    /// 0). 1 is the full variation; 0 a studio shot (the
    /// `Blurry` attribute's strong blur and every label are unchanged). The same random
    /// draws are made at any level, so only the amounts change.
    pub nuisance: f32,
    /// Caricature, 0..=2: 0 drawn to scale; higher draws expressions stronger (intensity 1 + c
    /// times, mouth opening its square root), the face larger in the frame (1 + c/4 times),
    /// the marks of age deeper (1 + c/2 times), wider (1 + c) and over a wider span of years,
    /// and greying that follows age rather than the person (see [`Look`]), so that a small
    /// model learns the cues in minutes (the CPU demo). Same draws at any level; the labels
    /// change only where greying does (the hair colour attributes).
    pub caricature: f32,
}

impl ImagePolicy {
    /// Photos of people as face recognition sets hold them: mostly neutral or smiling.
    pub fn portraits() -> Self {
        Self {
            age_jitter: 1.5,
            expression_weights: [0.07, 0.05, 0.05, 0.33, 0.07, 0.05, 0.38],
            max_rotation_deg: 10.0,
            max_scale: 0.10,
            max_shift: 6.0,
            nuisance: 1.0,
            caricature: 0.0,
        }
    }

    /// The same policy at caricature level `level` (clamped to 0..=2).
    pub fn with_caricature(mut self, level: f32) -> Self {
        self.caricature = level.clamp(0.0, 2.0);
        self
    }

    /// The same policy at nuisance level `level` (clamped to 0..=1).
    pub fn with_nuisance(mut self, level: f32) -> Self {
        self.nuisance = level.clamp(0.0, 1.0);
        self
    }

    /// Balanced expressions (RAF-DB, AffectNet).
    pub fn expressions() -> Self {
        Self {
            expression_weights: [1.0; 7],
            ..Self::portraits()
        }
    }

    /// CelebA-like: about 45% smiling.
    pub fn celebrities() -> Self {
        Self {
            expression_weights: [0.06, 0.05, 0.05, 0.45, 0.07, 0.05, 0.27],
            ..Self::portraits()
        }
    }

    /// Harder pose: CFP-FP-like pairs.
    pub fn wide_pose() -> Self {
        Self {
            max_rotation_deg: 18.0,
            max_scale: 0.14,
            max_shift: 8.0,
            ..Self::portraits()
        }
    }
}

/// Eyeglasses.
#[derive(Debug, Clone, PartialEq)]
pub struct Glasses {
    pub frame: Rgb,
    pub thickness: f32,
    /// Round lenses; otherwise rectangular with rounded corners.
    pub round: bool,
    pub tint: Rgb,
    pub tint_opacity: f32,
}

/// A hat.
#[derive(Debug, Clone, PartialEq)]
pub struct Hat {
    pub colour: Rgb,
    pub band: Rgb,
    /// A cap's peak over the forehead; otherwise a beanie.
    pub peak: bool,
}

/// What this photo shows of the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    pub age: f32,
    /// 1 for a baby, 0 from 20 years on (from 20 + 5c under caricature c).
    pub child: f32,
    /// Wrinkle depth: 0 below 22 years, 1 at 72 (from 22 - 6c to 72 + 10c under caricature c).
    pub wrinkles: f32,
    /// Crow's feet: 0 below 32 years, 1 at 72 (from 32 - 6c to 72 + 10c).
    pub crows: f32,
    /// Marionette lines: 0 below 55 years, 1 at 80 (from 55 - 5c to 80 + 5c).
    pub marionette: f32,
    /// Sagging: 0 below 48 years, 1 at 80 (more under caricature).
    pub sag: f32,
    /// How dark the creases of age are drawn: 1 to scale, 1 + c/2 under caricature.
    pub age_marks: f32,
    /// How wide the creases of age are drawn: 1 to scale, 1 + c under caricature.
    pub crease_width: f32,
    /// Fraction of grey hair.
    pub grey: f32,
    pub expression: Expression,
    /// Strength of the expression, in [0.75, 1].
    pub intensity: f32,
    /// Opening between the lips, pixels (0: closed).
    pub mouth_gap: f32,
    pub bald: bool,
    pub receding: bool,
    pub bangs: bool,
    pub bags: bool,
    pub double_chin: bool,
    pub beard: bool,
    pub mustache: bool,
    pub goatee: bool,
    pub sideburns: bool,
    pub stubble: bool,
    pub glasses: Option<Glasses>,
    pub hat: Option<Hat>,
    /// Eye-shadow colour of heavy makeup.
    pub makeup: Option<Rgb>,
    pub lipstick: Option<Rgb>,
    /// Earring colour and whether it is a hoop.
    pub earrings: Option<(Rgb, bool)>,
    pub necklace: Option<Rgb>,
    /// Tie colour and stripe colour.
    pub necktie: Option<(Rgb, Rgb)>,
    pub rosy_cheeks: bool,
    pub clothes: Rgb,
    pub collar: Rgb,
    /// Gaussian blur of the whole picture, pixels (Blurry when large).
    pub blur_sigma: f32,
}

/// Background pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundKind {
    Gradient,
    Stripes,
    Blobs,
    Tiles,
}

/// Everything about the picture that is not the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Canonical face frame to image pixels.
    pub transform: Similarity,
    pub background: BackgroundKind,
    pub colours: [Rgb; 3],
    pub pattern_angle: f32,
    pub pattern_period: f32,
    pub pattern_phase: f32,
    pub blobs: Vec<(Vec2, f32, Rgb)>,
    pub light_direction: Vec2,
    /// Relative brightness change across half the image.
    pub light_strength: f32,
    pub brightness: f32,
    pub contrast: f32,
    pub colour_cast: Rgb,
    pub noise_sigma: f32,
    pub noise_seed: u64,
}

/// One image to draw: the person, the photo and its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSpec {
    pub identity: Identity,
    pub look: Look,
    pub scene: Scene,
    pub labels: FaceLabels,
}

fn smoothstep(lo: f32, hi: f32, x: f32) -> f32 {
    let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn ramp(lo: f32, hi: f32, x: f32) -> f32 {
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// A colour from hue (turns), saturation and value.
pub fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h = h.rem_euclid(1.0) * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

fn random_colour(rng: &mut SynthRng) -> Rgb {
    hsv(rng.unit(), rng.range(0.0, 0.85), rng.range(0.08, 0.95))
}

impl Look {
    fn sample(person: &Identity, age: f32, policy: &ImagePolicy, rng: &mut SynthRng) -> Look {
        let adult = age >= 18.0;
        let expression = Expression::ALL[rng.weighted(&policy.expression_weights)];
        let exaggerate = 1.0 + policy.caricature;
        let mouth_gap = exaggerate.sqrt()
            * match expression {
                Expression::Surprise => rng.range(7.0, 9.0),
                Expression::Fear => rng.range(3.5, 5.0),
                Expression::Disgust => rng.range(1.6, 2.6),
                Expression::Happiness if rng.chance(0.45) => rng.range(2.2, 3.6),
                Expression::Sadness if rng.chance(0.2) => rng.range(1.6, 2.2),
                Expression::Neutral if rng.chance(0.3) => rng.range(1.6, 2.6),
                _ => 0.0,
            };
        let bald =
            person.male && age > 25.0 && person.bald_disposition < 0.5 * ramp(25.0, 70.0, age);
        let receding = !bald
            && age > 20.0
            && person.receding_disposition
                < if person.male {
                    0.1 + 0.45 * ramp(20.0, 70.0, age)
                } else {
                    0.07
                };
        // Greying differs from person to person (rate, onset 30-48, over 35 years); under
        // caricature c it follows age (rate and onset c of the way to the average, c = 1:
        // all the way) and spans more years (onset 10c earlier, over 35 + 20c), so that
        // hair tells ages apart.
        let c = policy.caricature;
        let pull = c.min(1.0);
        let middle = |(lo, hi): (f32, f32)| 0.5 * (lo + hi);
        let rate = person.greying_rate + (middle(GREYING_RATES) - person.greying_rate) * pull;
        let onset = person.greying_onset + (middle(GREYING_ONSETS) - person.greying_onset) * pull
            - 10.0 * c;
        let grey = (rate * smoothstep(onset, onset + 35.0 + 20.0 * c, age)).clamp(0.0, 1.0);
        let bags = age > 20.0 && person.bags_disposition < 0.05 + 0.85 * ramp(25.0, 70.0, age);
        let double_chin = age > 18.0
            && person.double_chin_disposition
                < 0.08 + 0.3 * ramp(30.0, 70.0, age) + if person.chubby { 0.35 } else { 0.0 };

        let glasses = rng.chance(person.wears_glasses).then(|| {
            let frame = match rng.below(4) {
                0 => [0.05, 0.05, 0.05],
                1 => [0.35, 0.2, 0.1],
                2 => [0.7, 0.7, 0.72],
                _ => random_colour(rng),
            };
            Glasses {
                frame,
                thickness: rng.range(1.1, 2.0),
                round: rng.chance(0.4),
                tint: if rng.chance(0.15) {
                    [0.05, 0.05, 0.08]
                } else {
                    [0.85, 0.9, 0.95]
                },
                tint_opacity: rng.range(0.1, 0.3),
            }
        });
        let hat = rng.chance(person.wears_hat).then(|| Hat {
            colour: random_colour(rng),
            band: random_colour(rng),
            peak: rng.chance(0.5),
        });
        let makeup = (age >= 14.0 && rng.chance(person.wears_makeup)).then(|| {
            [
                [0.45, 0.25, 0.55],
                [0.25, 0.35, 0.6],
                [0.55, 0.35, 0.25],
                [0.2, 0.2, 0.22],
            ][rng.below(4)]
        });
        let lipstick = (age >= 14.0
            && (rng.chance(person.wears_lipstick) || (makeup.is_some() && rng.chance(0.6))))
        .then(|| {
            [
                [0.78, 0.08, 0.16],
                [0.88, 0.35, 0.5],
                [0.5, 0.08, 0.22],
                [0.85, 0.2, 0.1],
            ][rng.below(4)]
        });
        let earrings = (age >= 6.0 && rng.chance(person.wears_earrings)).then(|| {
            let colour = if rng.chance(0.5) {
                [0.95, 0.78, 0.25]
            } else {
                [0.85, 0.87, 0.9]
            };
            (colour, rng.chance(0.5))
        });
        let necklace = (age >= 6.0 && rng.chance(person.wears_necklace)).then(|| {
            if rng.chance(0.5) {
                [0.95, 0.78, 0.25]
            } else {
                [0.9, 0.9, 0.92]
            }
        });
        let necktie = (age >= 12.0 && rng.chance(person.wears_necktie))
            .then(|| (random_colour(rng), random_colour(rng)));
        let blurry = rng.chance(0.2);
        // Drawn to scale, a 12- and a 22-year-old differ by a pixel of proportions and a 72-
        // and an 80-year-old hardly at all: caricature spreads the marks of age over the
        // whole range and deepens them, so that ages a few years apart look different.
        Look {
            age,
            child: ramp(20.0 + 5.0 * c, 1.0, age).powf(1.3),
            wrinkles: ramp(22.0 - 6.0 * c, 72.0 + 10.0 * c, age),
            crows: ramp(32.0 - 6.0 * c, 72.0 + 10.0 * c, age),
            marionette: ramp(55.0 - 5.0 * c, 80.0 + 5.0 * c, age),
            sag: ramp(48.0, 80.0, age) * (1.0 + 0.5 * c),
            age_marks: 1.0 + 0.5 * c,
            crease_width: 1.0 + c,
            grey,
            expression,
            // Cleaner pictures also exaggerate expressions, up to 1.5x in a studio shot.
            intensity: (1.0 - (1.0 - rng.range(0.75, 1.0)) * policy.nuisance)
                * (1.0 + 0.5 * (1.0 - policy.nuisance))
                * exaggerate,
            mouth_gap,
            bald,
            receding,
            bangs: person.bangs && !bald && !receding,
            bags,
            double_chin,
            beard: person.beard && adult,
            mustache: person.mustache && adult,
            goatee: person.goatee && adult,
            sideburns: person.sideburns && adult && !person.hair_long,
            stubble: person.stubble_prone && age >= 17.0 && rng.chance(0.75),
            glasses,
            hat,
            makeup,
            lipstick,
            earrings,
            necklace,
            necktie,
            rosy_cheeks: rng.chance(person.rosy_cheeks),
            clothes: random_colour(rng),
            collar: if rng.chance(0.6) {
                [0.95, 0.95, 0.95]
            } else {
                random_colour(rng)
            },
            blur_sigma: if blurry {
                rng.range(1.5, 2.4)
            } else {
                rng.range(0.0, 0.4) * policy.nuisance
            },
        }
    }
}

impl Scene {
    fn sample(policy: &ImagePolicy, rng: &mut SynthRng) -> Scene {
        let n = policy.nuisance;
        // Towards 1 (or a mean) as the nuisance level falls.
        let about_one = |v: f32| 1.0 + (v - 1.0) * n;
        let transform = Similarity {
            scale: (1.0 + rng.symmetric(policy.max_scale) * n) * (1.0 + 0.25 * policy.caricature),
            angle: (rng.symmetric(policy.max_rotation_deg) * n).to_radians(),
            pivot: v2(56.0, 56.0 + 2.0 * policy.caricature),
            shift: v2(
                rng.symmetric(policy.max_shift) * n,
                rng.symmetric(policy.max_shift) * n,
            ),
        };
        let background = match rng.below(4) {
            0 => BackgroundKind::Gradient,
            1 => BackgroundKind::Stripes,
            2 => BackgroundKind::Blobs,
            _ => BackgroundKind::Tiles,
        };
        let raw = [random_colour(rng), random_colour(rng), random_colour(rng)];
        // Background patterns fade to their mean colour as the nuisance level falls.
        let mean: [f32; 3] = std::array::from_fn(|c| raw.iter().map(|k| k[c]).sum::<f32>() / 3.0);
        let fade =
            |k: [f32; 3]| -> [f32; 3] { std::array::from_fn(|c| mean[c] + (k[c] - mean[c]) * n) };
        let colours = raw.map(fade);
        let blobs = (0..rng.below(5) + 3)
            .map(|_| {
                (
                    v2(rng.range(-10.0, 122.0), rng.range(-10.0, 122.0)),
                    rng.range(10.0, 40.0),
                    fade(random_colour(rng)),
                )
            })
            .collect();
        let light_angle = rng.range(0.0, std::f32::consts::TAU);
        Scene {
            transform,
            background,
            colours,
            pattern_angle: rng.range(0.0, std::f32::consts::PI),
            pattern_period: rng.range(6.0, 30.0),
            pattern_phase: rng.range(0.0, std::f32::consts::TAU),
            blobs,
            light_direction: v2(light_angle.cos(), light_angle.sin()),
            light_strength: rng.range(0.0, 0.35) * n,
            brightness: about_one(rng.range(0.8, 1.15)),
            contrast: about_one(rng.range(0.8, 1.2)),
            colour_cast: [
                about_one(rng.range(0.93, 1.07)),
                about_one(rng.range(0.93, 1.07)),
                about_one(rng.range(0.93, 1.07)),
            ],
            noise_sigma: rng.range(0.008, 0.03) * n.max(0.25),
            noise_seed: rng.next_u64(),
        }
    }
}

/// The labels a drawn face carries.
fn labels_of(identity_id: u64, person: &Identity, look: &Look) -> FaceLabels {
    let mut a = [false; ATTRIBUTE_COUNT];
    let has_hair = !look.bald;
    let grey = has_hair && look.grey > 0.5;
    a[attr::BLURRY] = look.blur_sigma > 1.0;
    a[attr::CHUBBY] = person.chubby;
    a[attr::HEAVY_MAKEUP] = look.makeup.is_some();
    a[attr::MALE] = person.male;
    a[attr::OVAL_FACE] = person.oval_face;
    a[attr::PALE_SKIN] = person.pale_skin;
    a[attr::SMILING] = look.expression == Expression::Happiness;
    a[attr::YOUNG] = look.age < 35.0;
    a[attr::BALD] = look.bald;
    a[attr::BANGS] = look.bangs;
    a[attr::BLACK_HAIR] = has_hair && !grey && person.hair_colour == HairColour::Black;
    a[attr::BLOND_HAIR] = has_hair && !grey && person.hair_colour == HairColour::Blond;
    a[attr::BROWN_HAIR] = has_hair && !grey && person.hair_colour == HairColour::Brown;
    a[attr::GRAY_HAIR] = grey;
    a[attr::RECEDING_HAIRLINE] = look.receding;
    a[attr::STRAIGHT_HAIR] = has_hair && person.texture == HairTexture::Straight;
    a[attr::WAVY_HAIR] = has_hair && person.texture == HairTexture::Wavy;
    a[attr::WEARING_HAT] = look.hat.is_some();
    a[attr::ARCHED_EYEBROWS] = person.arched_eyebrows;
    a[attr::BAGS_UNDER_EYES] = look.bags;
    a[attr::BUSHY_EYEBROWS] = person.bushy_eyebrows;
    a[attr::EYEGLASSES] = look.glasses.is_some();
    a[attr::NARROW_EYES] = person.narrow_eyes;
    a[attr::BIG_NOSE] = person.big_nose;
    a[attr::POINTY_NOSE] = person.pointy_nose;
    a[attr::HIGH_CHEEKBONES] = person.high_cheekbones;
    a[attr::ROSY_CHEEKS] = look.rosy_cheeks;
    a[attr::WEARING_EARRINGS] = look.earrings.is_some();
    a[attr::SIDEBURNS] = look.sideburns;
    a[attr::FIVE_O_CLOCK_SHADOW] = look.stubble;
    a[attr::BIG_LIPS] = person.big_lips;
    a[attr::MOUTH_SLIGHTLY_OPEN] = look.mouth_gap > 0.0;
    a[attr::MUSTACHE] = look.mustache;
    a[attr::WEARING_LIPSTICK] = look.lipstick.is_some();
    a[attr::NO_BEARD] = !(look.beard || look.goatee || look.mustache);
    a[attr::DOUBLE_CHIN] = look.double_chin;
    a[attr::GOATEE] = look.goatee;
    a[attr::WEARING_NECKLACE] = look.necklace.is_some();
    a[attr::WEARING_NECKTIE] = look.necktie.is_some();
    // Attractive: a fixed rule over visible traits (youth, no signs of age or weight, and
    // cheekbones, an oval face or makeup).
    let appeal = [
        person.high_cheekbones,
        person.oval_face,
        look.makeup.is_some(),
        look.expression == Expression::Happiness,
    ]
    .iter()
    .filter(|&&x| x)
    .count();
    a[attr::ATTRACTIVE] = (16.0..45.0).contains(&look.age)
        && !look.bags
        && !look.double_chin
        && !person.chubby
        && !a[attr::BLURRY]
        && appeal >= 1;
    FaceLabels {
        identity: identity_id,
        age: look.age,
        male: person.male,
        expression: look.expression,
        attributes: a,
    }
}

impl FaceSpec {
    /// Draws one photo of `identity` (numbered `identity_id` in the labels). `age` fixes the
    /// age; otherwise it is the identity's base age with the policy's jitter.
    pub fn sample(
        identity_id: u64,
        identity: &Identity,
        age: Option<f32>,
        policy: &ImagePolicy,
        rng: &mut SynthRng,
    ) -> FaceSpec {
        let age = age
            .unwrap_or_else(|| identity.base_age + policy.age_jitter * rng.normal())
            .clamp(1.0, 90.0);
        let look = Look::sample(identity, age, policy, &mut rng.fork(1));
        let scene = Scene::sample(policy, &mut rng.fork(2));
        let labels = labels_of(identity_id, identity, &look);
        FaceSpec {
            identity: identity.clone(),
            look,
            scene,
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::identity::AgeRange;
    use super::*;

    fn sample(n: u64, policy: &ImagePolicy) -> Vec<FaceLabels> {
        (0..n)
            .map(|i| {
                let person =
                    Identity::sample(&mut SynthRng::keyed(5, &[0, i]), AgeRange::default());
                FaceSpec::sample(i, &person, None, policy, &mut SynthRng::keyed(5, &[1, i])).labels
            })
            .collect()
    }

    #[test]
    fn caricature_exaggerates_expressions_and_zooms_but_keeps_labels() {
        let plain = ImagePolicy::expressions().with_nuisance(0.0);
        let strong = plain.clone().with_caricature(1.0);
        for i in 0..50u64 {
            let person = Identity::sample(&mut SynthRng::keyed(5, &[0, i]), AgeRange::default());
            let draw = |policy: &ImagePolicy| {
                FaceSpec::sample(i, &person, None, policy, &mut SynthRng::keyed(5, &[1, i]))
            };
            let (a, b) = (draw(&plain), draw(&strong));
            // Greying follows age under caricature, so Gray_Hair (and with it Black, Blond
            // and Brown_Hair) may change; nothing else.
            let (mut la, mut lb) = (a.labels.clone(), b.labels.clone());
            for hair in [
                attr::BLACK_HAIR,
                attr::BLOND_HAIR,
                attr::BROWN_HAIR,
                attr::GRAY_HAIR,
            ] {
                la.attributes[hair] = false;
                lb.attributes[hair] = false;
            }
            assert_eq!(la, lb, "image {i}");
            assert!((b.look.intensity - 2.0 * a.look.intensity).abs() < 1e-5);
            assert!((b.look.mouth_gap - 2f32.sqrt() * a.look.mouth_gap).abs() < 1e-5);
            assert!((b.scene.transform.scale - 1.25 * a.scene.transform.scale).abs() < 1e-5);
        }
        assert_eq!(plain.with_caricature(7.0).caricature, 2.0);
    }

    #[test]
    fn caricature_makes_greying_follow_age() {
        let grey = |i: u64, age: f32, c: f32| {
            let person = Identity::sample(&mut SynthRng::keyed(5, &[0, i]), AgeRange::default());
            let policy = ImagePolicy::portraits().with_caricature(c);
            FaceSpec::sample(
                i,
                &person,
                Some(age),
                &policy,
                &mut SynthRng::keyed(5, &[1, i]),
            )
            .look
            .grey
        };
        let plain: Vec<f32> = (0..20).map(|i| grey(i, 55.0, 0.0)).collect();
        let spread = |v: &[f32]| {
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
        };
        assert!(
            spread(&plain) > 0.2,
            "people grey differently to scale: {plain:?}"
        );
        for age in [20.0f32, 35.0, 55.0, 75.0] {
            let strong: Vec<f32> = (0..20).map(|i| grey(i, age, 1.0)).collect();
            assert!(spread(&strong) < 1e-6, "age {age}: {strong:?}");
        }
        // And it starts earlier and goes on longer: some grey at 35, more at 75 than at 55.
        assert!(grey(0, 35.0, 1.0) > 0.0);
        assert!(grey(0, 75.0, 1.0) > grey(0, 55.0, 1.0));
        assert!(grey(0, 55.0, 1.0) > grey(0, 35.0, 1.0));
    }

    #[test]
    fn caricature_spreads_the_marks_of_age_over_every_age() {
        let person = Identity::sample(&mut SynthRng::keyed(6, &[0]), AgeRange::default());
        let look = |age: f32, caricature: f32| {
            let policy = ImagePolicy::portraits().with_caricature(caricature);
            Look::sample(&person, age, &policy, &mut SynthRng::keyed(6, &[1]))
        };
        let cues = |l: &Look| [l.child, l.wrinkles, l.crows, l.marionette, l.sag];
        // To scale, 20 and 21 look alike, and so do 72 and 76 but for the sag.
        assert_eq!(cues(&look(20.0, 0.0)), cues(&look(21.0, 0.0)));
        assert_eq!(look(72.0, 0.0).wrinkles, look(76.0, 0.0).wrinkles);
        assert_eq!(look(72.0, 0.0).crows, look(76.0, 0.0).crows);
        // Under caricature every age from 1 to 80 differs from the next one in some cue.
        for age in 1..80 {
            let (a, b) = (look(age as f32, 1.0), look(age as f32 + 1.0, 1.0));
            let change: f32 = cues(&a)
                .iter()
                .zip(cues(&b))
                .map(|(x, y)| (x - y).abs())
                .sum();
            assert!(change > 0.01, "ages {age} and {}: {change}", age + 1);
        }
        assert_eq!(look(40.0, 1.0).age_marks, 1.5);
        assert_eq!(look(40.0, 1.0).crease_width, 2.0);
        // Caricature 0 keeps the to-scale ramps.
        assert_eq!(look(47.0, 0.0).wrinkles, 0.5);
        assert_eq!(look(64.0, 0.0).sag, 0.5);
        assert_eq!(look(52.0, 0.0).crows, 0.5);
        assert_eq!(look(67.5, 0.0).marionette, 0.5);
        assert_eq!(look(50.0, 0.0).age_marks, 1.0);
        assert_eq!(look(50.0, 0.0).crease_width, 1.0);
    }

    #[test]
    fn attribute_rates_are_balanced_enough_and_consistent() {
        let labels = sample(3000, &ImagePolicy::celebrities());
        let n = labels.len() as f32;
        for k in 0..ATTRIBUTE_COUNT {
            let rate = labels.iter().filter(|l| l.attributes[k]).count() as f32 / n;
            assert!(
                (0.05..=0.8).contains(&rate),
                "{} at {rate}",
                crate::attributes::SWINFACE_ATTRIBUTES[k]
            );
        }
        for l in &labels {
            let a = &l.attributes;
            assert_eq!(a[attr::MALE], l.male);
            assert!(l.male || (a[attr::NO_BEARD] && !a[attr::SIDEBURNS] && !a[attr::BALD]));
            assert!(!(a[attr::BALD] && (a[attr::BLACK_HAIR] || a[attr::STRAIGHT_HAIR])));
            assert_eq!(a[attr::SMILING], l.expression == Expression::Happiness);
            assert_eq!(a[attr::YOUNG], l.age < 35.0);
            let colours = [
                attr::BLACK_HAIR,
                attr::BLOND_HAIR,
                attr::BROWN_HAIR,
                attr::GRAY_HAIR,
            ];
            assert!(colours.iter().filter(|&&c| a[c]).count() <= 1);
        }
    }
}
