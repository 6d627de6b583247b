//! A person: everything about a face that stays the same from one photo to the next.
//!
//! Drawn from an identity-keyed stream, so every image of one identity shares its face
//! geometry, skin tone, eye spacing and size, nose, mouth, brows, ears and hair. Identity-level
//! attributes (Big Nose, Narrow Eyes, ...) are drawn first and the trait they control is then
//! drawn from a range that does not overlap the other value's range, so the attribute is
//! visible; age-dependent ones (baldness, greying, bags) are stored as dispositions and
//! resolved per image from its age.

use super::raster::{mix, Rgb};
use super::rng::SynthRng;

/// Hair colour family (greying is applied per image from the age).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairColour {
    Black,
    Brown,
    Blond,
    Red,
}

/// Hair texture: CelebA's Straight Hair, Wavy Hair, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairTexture {
    Straight,
    Wavy,
    Curly,
}

/// Ranges [`Identity::greying_rate`] and [`Identity::greying_onset`] are drawn from.
pub const GREYING_RATES: (f32, f32) = (0.6, 1.3);
pub const GREYING_ONSETS: (f32, f32) = (30.0, 48.0);

/// Range the base age of identities is drawn from (years).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgeRange {
    pub min: f32,
    pub max: f32,
}

impl Default for AgeRange {
    fn default() -> Self {
        Self {
            min: 1.0,
            max: 80.0,
        }
    }
}

/// The stable traits of one person. Lengths are in canonical 112x112 pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub male: bool,
    pub base_age: f32,

    // Face outline.
    pub face_half_width: f32,
    pub skull_top: f32,
    pub jaw_ratio: f32,
    pub chin_ratio: f32,
    pub skin: Rgb,

    // Vertical layout, each below the previous.
    pub eye_y: f32,
    pub nose_length: f32,
    pub mouth_below_nose: f32,
    pub chin_below_mouth: f32,

    // Eyes and brows.
    pub eye_half_spacing: f32,
    pub eye_half_width: f32,
    /// Eye opening height over half width.
    pub eye_openness: f32,
    pub eye_tilt: f32,
    pub iris: Rgb,
    pub brow_thickness: f32,
    pub brow_arch: f32,
    pub brow_gap: f32,
    pub brow_length: f32,

    // Nose and mouth.
    pub nose_width: f32,
    pub mouth_half_width: f32,
    pub upper_lip: f32,
    pub lower_lip: f32,
    pub lip_colour: Rgb,

    pub ear_half_width: f32,
    pub ear_half_height: f32,

    // Hair.
    pub hair_colour: HairColour,
    pub hair_rgb: Rgb,
    pub hair_long: bool,
    pub hair_volume: f32,
    /// How far below the chin long hair reaches.
    pub hair_length: f32,
    /// Hairline height above the eye line.
    pub hairline_height: f32,
    pub parting: f32,
    pub texture: HairTexture,
    pub bangs: bool,
    /// Multiplies the age-driven greying.
    pub greying_rate: f32,
    /// Age at which greying starts (it is complete about 35 years later).
    pub greying_onset: f32,
    /// The colour grey hair takes (silver to white, cooler or warmer).
    pub grey_shade: Rgb,

    // Identity-level attributes.
    pub pale_skin: bool,
    pub chubby: bool,
    pub oval_face: bool,
    pub high_cheekbones: bool,
    pub big_lips: bool,
    pub narrow_eyes: bool,
    pub arched_eyebrows: bool,
    pub bushy_eyebrows: bool,
    pub big_nose: bool,
    pub pointy_nose: bool,

    // Facial hair (men, adults).
    pub beard: bool,
    pub mustache: bool,
    pub goatee: bool,
    pub sideburns: bool,
    pub stubble_prone: bool,

    // Age-dependent dispositions, uniform in [0, 1): smaller means earlier / more likely.
    pub bald_disposition: f32,
    pub receding_disposition: f32,
    pub double_chin_disposition: f32,
    pub bags_disposition: f32,

    // Habits: per-image probability of each accessory.
    pub wears_glasses: f32,
    pub wears_hat: f32,
    pub wears_makeup: f32,
    pub wears_lipstick: f32,
    pub wears_earrings: f32,
    pub wears_necklace: f32,
    pub wears_necktie: f32,
    pub rosy_cheeks: f32,
}

const SKIN_PALETTE: [Rgb; 5] = [
    [0.30, 0.20, 0.14],
    [0.47, 0.32, 0.22],
    [0.66, 0.48, 0.36],
    [0.82, 0.64, 0.52],
    [0.93, 0.78, 0.67],
];

const IRIS_COLOURS: [Rgb; 6] = [
    [0.20, 0.12, 0.07],
    [0.38, 0.24, 0.12],
    [0.45, 0.40, 0.20],
    [0.28, 0.45, 0.30],
    [0.28, 0.45, 0.72],
    [0.50, 0.55, 0.60],
];

/// Piecewise-linear lookup in a palette at `t` in [0, 1].
fn palette(colours: &[Rgb], t: f32) -> Rgb {
    let x = t.clamp(0.0, 1.0) * (colours.len() - 1) as f32;
    let i = (x.floor() as usize).min(colours.len() - 2);
    mix(colours[i], colours[i + 1], x - i as f32)
}

/// A habit: most people never show it, those who have it show it in most photos; the overall
/// rate is about `rate`.
fn habit(rng: &mut SynthRng, rate: f32) -> f32 {
    let habitual = ((rate - 0.03) / 0.82).clamp(0.0, 1.0);
    if rng.chance(habitual) {
        0.85
    } else {
        0.03
    }
}

/// Base colour of a hair family, with a per-person shade.
pub fn hair_base_colour(family: HairColour, rng: &mut SynthRng) -> Rgb {
    let (base, spread): (Rgb, f32) = match family {
        HairColour::Black => ([0.07, 0.06, 0.06], 0.35),
        HairColour::Brown => ([0.34, 0.21, 0.12], 0.25),
        HairColour::Blond => {
            // From golden to platinum.
            let platinum = rng.unit();
            (mix([0.84, 0.70, 0.42], [0.93, 0.89, 0.80], platinum), 0.1)
        }
        HairColour::Red => ([0.62, 0.26, 0.12], 0.18),
    };
    let k = 1.0 + rng.symmetric(spread);
    let warm = rng.symmetric(0.03);
    [
        (base[0] * k + warm).clamp(0.0, 1.0),
        (base[1] * k).clamp(0.0, 1.0),
        (base[2] * k - warm).clamp(0.0, 1.0),
    ]
}

impl Identity {
    /// Draws a person; the base age is uniform in `ages`.
    pub fn sample(rng: &mut SynthRng, ages: AgeRange) -> Identity {
        let male = rng.chance(0.5);
        let base_age = rng.range(ages.min, ages.max.max(ages.min));
        let sex = |m: f32, f: f32| if male { m } else { f };

        // Attributes first, then the traits they control.
        let pale_skin = rng.chance(0.22);
        let chubby = rng.chance(0.22);
        let oval_face = !chubby && rng.chance(0.42);
        let high_cheekbones = rng.chance(sex(0.3, 0.5));
        let big_lips = rng.chance(sex(0.25, 0.42));
        let narrow_eyes = rng.chance(0.28);
        let arched_eyebrows = rng.chance(sex(0.18, 0.55));
        let bushy_eyebrows = rng.chance(sex(0.45, 0.12));
        let big_nose = rng.chance(sex(0.45, 0.2));
        let pointy_nose = rng.chance(0.3);

        let skin = if pale_skin {
            mix(
                palette(&SKIN_PALETTE, rng.range(0.8, 1.0)),
                [0.98, 0.93, 0.90],
                rng.range(0.55, 0.75),
            )
        } else {
            let base = palette(&SKIN_PALETTE, rng.range(0.0, 0.88));
            let hue = rng.symmetric(0.035);
            [base[0] + hue, base[1], base[2] - hue]
        };

        let face_half_width =
            rng.range(24.5, 29.5) + sex(1.5, 0.0) + if chubby { 3.0 } else { 0.0 };
        let jaw_ratio = rng.range(0.66, 0.84) + sex(0.05, 0.0) - if oval_face { 0.12 } else { 0.0 }
            + if chubby { 0.08 } else { 0.0 };
        let chin_ratio = rng.range(0.22, 0.36) + sex(0.06, 0.0);

        let eye_y = rng.range(45.0, 50.0);
        let nose_length = rng.range(14.0, 18.0) + if big_nose { 3.5 } else { 0.0 };
        let mouth_below_nose = rng.range(9.0, 12.0);
        let chin_below_mouth =
            rng.range(14.0, 18.0) + sex(1.0, 0.0) + if oval_face { 3.0 } else { 0.0 };

        let iris = IRIS_COLOURS[rng.below(IRIS_COLOURS.len())];
        let eye_openness = if narrow_eyes {
            rng.range(0.26, 0.34)
        } else {
            rng.range(0.46, 0.64)
        };
        let brow_thickness = if bushy_eyebrows {
            rng.range(3.2, 4.0)
        } else {
            rng.range(1.2, 1.9)
        } + sex(0.2, 0.0);
        let brow_arch = if arched_eyebrows {
            rng.range(3.3, 4.6)
        } else {
            rng.range(0.0, 1.1)
        };

        let nose_width = if big_nose {
            rng.range(7.0, 8.6)
        } else {
            rng.range(3.8, 5.2)
        };
        let (upper_lip, lower_lip) = if big_lips {
            (rng.range(3.3, 4.1), rng.range(4.3, 5.3))
        } else {
            (rng.range(1.4, 2.1), rng.range(1.8, 2.6))
        };
        let lip_colour = mix(
            [skin[0] * 0.85, skin[1] * 0.62, skin[2] * 0.62],
            [0.62, 0.28, 0.30],
            rng.range(0.15, 0.4),
        );

        let hair_colour = match rng.weighted(&[0.34, 0.30, 0.22, 0.14]) {
            0 => HairColour::Black,
            1 => HairColour::Brown,
            2 => HairColour::Blond,
            _ => HairColour::Red,
        };
        let hair_rgb = hair_base_colour(hair_colour, rng);
        let hair_long = rng.chance(sex(0.12, 0.78));
        let texture = match rng.weighted(&[0.45, 0.35, 0.2]) {
            0 => HairTexture::Straight,
            1 => HairTexture::Wavy,
            _ => HairTexture::Curly,
        };

        let beard = male && rng.chance(0.24);
        let goatee = male && !beard && rng.chance(0.34);
        let mustache = male && rng.chance(if beard { 0.7 } else { 0.28 });

        Identity {
            male,
            base_age,
            face_half_width,
            skull_top: rng.range(10.0, 15.0),
            jaw_ratio,
            chin_ratio,
            skin,
            eye_y,
            nose_length,
            mouth_below_nose,
            chin_below_mouth,
            eye_half_spacing: rng.range(12.5, 16.5),
            eye_half_width: rng.range(4.6, 6.2),
            eye_openness,
            eye_tilt: rng.symmetric(0.12),
            iris,
            brow_thickness,
            brow_arch,
            brow_gap: rng.range(5.5, 8.0),
            brow_length: rng.range(1.15, 1.45),
            nose_width,
            mouth_half_width: rng.range(8.0, 11.0) + if big_lips { 1.0 } else { 0.0 },
            upper_lip,
            lower_lip,
            lip_colour,
            ear_half_width: rng.range(3.2, 4.6),
            ear_half_height: rng.range(7.0, 9.5),
            hair_colour,
            hair_rgb,
            hair_long,
            hair_volume: rng.range(2.0, 6.0),
            hair_length: rng.range(4.0, 30.0),
            hairline_height: rng.range(17.0, 22.0),
            parting: rng.symmetric(9.0),
            texture,
            bangs: rng.chance(sex(0.18, 0.38)),
            greying_rate: rng.range(GREYING_RATES.0, GREYING_RATES.1),
            greying_onset: rng.range(GREYING_ONSETS.0, GREYING_ONSETS.1),
            grey_shade: {
                let level = rng.range(0.58, 0.92);
                let tint = rng.symmetric(0.03);
                [level + tint, level, level - tint + 0.01]
            },
            pale_skin,
            chubby,
            oval_face,
            high_cheekbones,
            big_lips,
            narrow_eyes,
            arched_eyebrows,
            bushy_eyebrows,
            big_nose,
            pointy_nose,
            beard,
            mustache,
            goatee,
            sideburns: male && rng.chance(0.36),
            stubble_prone: male && !beard && rng.chance(0.5),
            bald_disposition: rng.unit(),
            receding_disposition: rng.unit(),
            double_chin_disposition: rng.unit(),
            bags_disposition: rng.unit(),
            wears_glasses: habit(rng, 0.25),
            wears_hat: if rng.chance(0.4) { 0.45 } else { 0.02 },
            wears_makeup: if male { 0.02 } else { habit(rng, 0.55) },
            wears_lipstick: if male { 0.02 } else { habit(rng, 0.7) },
            wears_earrings: if male { 0.05 } else { habit(rng, 0.5) },
            wears_necklace: if male { 0.05 } else { habit(rng, 0.4) },
            wears_necktie: if male { habit(rng, 0.4) } else { 0.03 },
            rosy_cheeks: habit(rng, sex(0.15, 0.35)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_reproducible_and_varied() {
        let a = Identity::sample(&mut SynthRng::keyed(3, &[1]), AgeRange::default());
        let b = Identity::sample(&mut SynthRng::keyed(3, &[1]), AgeRange::default());
        let c = Identity::sample(&mut SynthRng::keyed(3, &[2]), AgeRange::default());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn attribute_controlled_traits_do_not_overlap() {
        let mut narrow = (f32::MAX, f32::MIN);
        let mut open = (f32::MAX, f32::MIN);
        for i in 0..400 {
            let p = Identity::sample(&mut SynthRng::keyed(9, &[i]), AgeRange::default());
            let r = if p.narrow_eyes {
                &mut narrow
            } else {
                &mut open
            };
            r.0 = r.0.min(p.eye_openness);
            r.1 = r.1.max(p.eye_openness);
            assert!(p.male || !(p.beard || p.goatee || p.mustache || p.sideburns));
        }
        assert!(narrow.1 < open.0, "narrow {narrow:?} open {open:?}");
    }
}
