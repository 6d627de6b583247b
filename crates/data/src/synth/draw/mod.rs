//! Drawing a [`FaceSpec`] in the canonical 112x112 face frame, back to front: hair behind the
//! head, clothes and neck, ears, the face, its shading and lines, eyes and brows, nose, mouth,
//! facial hair, the hair in front, hat, glasses and earrings.

mod body;
mod eyes;
mod hair;
mod head;
mod mouth;

use super::geom::{catmull_rom, v2};
use super::labels::Expression;
use super::raster::{mix, shade, Canvas, Polygon, Rgb};
use super::rng::SynthRng;
use super::spec::FaceSpec;

/// Key positions and sizes of one face after age and expression are applied (canonical
/// pixels); every part is placed from these.
pub(crate) struct Layout {
    pub cx: f32,
    pub face_w: f32,
    pub cheek_y: f32,
    pub jaw_y: f32,
    pub chin_y: f32,
    pub chin_w: f32,
    /// Skull (and forehead) ellipse: centre y is `cheek_y`.
    pub skull_rx: f32,
    pub skull_ry: f32,
    pub outline: Polygon,

    pub eye_y: f32,
    pub eye_dx: f32,
    pub eye_rx: f32,
    /// Opening above / below the eye line.
    pub eye_up: f32,
    pub eye_down: f32,
    pub eye_tilt: f32,
    pub brow_y: f32,
    pub brow_thickness: f32,

    pub tip_y: f32,
    pub nose_w: f32,

    pub mouth_y: f32,
    pub mouth_hw: f32,
    pub upper_lip: f32,
    pub lower_lip: f32,

    pub hairline_y: f32,
    pub temple_y: f32,
    pub neck_w: f32,
    pub shoulder_y: f32,

    pub skin: Rgb,
    pub hair: Rgb,
    pub brow_colour: Rgb,
    pub beard_colour: Rgb,
}

/// How an expression moves the eyes and brows: eye opening factor, brow raise, inner-end
/// raise (positive: inner ends up), arch gain.
fn expression_face(expression: Expression) -> (f32, f32, f32, f32) {
    match expression {
        Expression::Surprise => (1.45, 4.0, 0.0, 1.8),
        Expression::Fear => (1.35, 2.6, 3.2, 0.5),
        Expression::Disgust => (0.68, -2.0, -1.5, 0.7),
        Expression::Happiness => (0.72, 0.6, 0.0, 1.0),
        Expression::Sadness => (0.85, 0.3, 3.6, 0.4),
        Expression::Anger => (0.75, -2.6, -4.0, 0.5),
        Expression::Neutral => (1.0, 0.0, 0.0, 1.0),
    }
}

fn grey_of(c: Rgb) -> Rgb {
    let l = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];
    [l, l, l]
}

impl Layout {
    pub fn new(spec: &FaceSpec) -> Layout {
        let p = &spec.identity;
        let look = &spec.look;
        let child = look.child;
        let sag = look.sag;
        let cx = 56.0;

        let eye_y = p.eye_y + 5.5 * child;
        let tip_y = eye_y + p.nose_length * (1.0 - 0.3 * child);
        let mouth_y = tip_y + p.mouth_below_nose * (1.0 - 0.2 * child);
        let chin_y = mouth_y + p.chin_below_mouth * (1.0 - 0.35 * child) + 1.5 * sag;
        let cheek_y = eye_y + 7.0;
        let face_w = p.face_half_width * (1.0 - 0.07 * child);
        let jaw_y = chin_y - (chin_y - cheek_y) * 0.4 + 2.0 * sag;
        let jaw_w = face_w * (p.jaw_ratio + 0.1 * child + 0.05 * sag).min(0.97);
        let chin_w = face_w * (p.chin_ratio + 0.08 * child);
        let skull_rx = face_w;
        let skull_ry = cheek_y - p.skull_top;

        let mut ring = Vec::with_capacity(28);
        ring.push(v2(cx + face_w, cheek_y));
        let bulge = if p.chubby { 1.04 } else { 1.0 } + 0.03 * child;
        ring.push(v2(cx + face_w * bulge, cheek_y + 0.45 * (jaw_y - cheek_y)));
        ring.push(v2(cx + jaw_w, jaw_y));
        ring.push(v2(cx + chin_w, chin_y - 1.5));
        ring.push(v2(cx, chin_y));
        ring.push(v2(cx - chin_w, chin_y - 1.5));
        ring.push(v2(cx - jaw_w, jaw_y));
        ring.push(v2(cx - face_w * bulge, cheek_y + 0.45 * (jaw_y - cheek_y)));
        for k in 0..=16 {
            let theta = std::f32::consts::PI * (1.0 - k as f32 / 16.0);
            ring.push(v2(
                cx + skull_rx * theta.cos(),
                cheek_y - skull_ry * theta.sin(),
            ));
        }
        ring.pop();
        let outline = Polygon::new(catmull_rom(&ring, 3, true));

        let (open, raise, _, _) = expression_face(look.expression);
        let open = 1.0 + (open - 1.0) * look.intensity;
        let eye_rx = p.eye_half_width * (1.0 + 0.3 * child);
        let eye_up = eye_rx * p.eye_openness * open * (1.0 - 0.15 * sag);
        let squint = match look.expression {
            Expression::Happiness => 0.55,
            _ => 1.0,
        };
        let eye_down = eye_rx * p.eye_openness * 0.8 * open.min(1.15) * squint;
        let brow_y = eye_y - eye_up - p.brow_gap + 1.5 * child - raise * look.intensity + 1.0 * sag;

        let skin = mix(p.skin, grey_of(p.skin), 0.15 * look.wrinkles);
        let grey_target = p.grey_shade;
        let hair = mix(p.hair_rgb, grey_target, 0.8 * look.grey);
        let brow_base = match p.hair_colour {
            super::identity::HairColour::Blond => shade(p.hair_rgb, 0.6),
            _ => shade(p.hair_rgb, 0.8),
        };
        let brow_colour = mix(
            mix(brow_base, grey_target, 0.6 * look.grey),
            skin,
            0.4 * child,
        );
        let beard_colour = mix(shade(p.hair_rgb, 0.85), grey_target, 0.8 * look.grey);

        Layout {
            cx,
            face_w,
            cheek_y,
            jaw_y,
            chin_y,
            chin_w,
            skull_rx,
            skull_ry,
            outline,
            eye_y,
            eye_dx: p.eye_half_spacing * (1.0 - 0.06 * child),
            eye_rx,
            eye_up,
            eye_down,
            eye_tilt: p.eye_tilt,
            brow_y,
            brow_thickness: p.brow_thickness * (1.0 - 0.45 * child),
            tip_y,
            nose_w: p.nose_width * (1.0 - 0.3 * child),
            mouth_y,
            mouth_hw: p.mouth_half_width * (1.0 - 0.2 * child),
            upper_lip: p.upper_lip * (1.0 - 0.25 * sag),
            lower_lip: p.lower_lip * (1.0 - 0.25 * sag),
            hairline_y: eye_y - p.hairline_height * (1.0 - 0.1 * child),
            temple_y: eye_y - p.hairline_height * 0.5,
            neck_w: face_w * if p.male { 0.58 } else { 0.5 },
            shoulder_y: chin_y + 7.0,
            skin,
            hair,
            brow_colour,
            beard_colour,
        }
    }
}

/// A hash of a cell and a seed in [0, 1), for speckle textures (stubble, beards).
pub(crate) fn cell_noise(x: f32, y: f32, seed: u64) -> f32 {
    let xi = x.floor() as i64 as u64;
    let yi = y.floor() as i64 as u64;
    let mut h =
        seed ^ xi.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ yi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Draws the face of `spec` onto `canvas` (whose transform places the canonical frame).
pub fn draw_face(canvas: &mut Canvas, spec: &FaceSpec) {
    let layout = Layout::new(spec);
    let mut detail = SynthRng::keyed(spec.scene.noise_seed, &[0x5EED]);
    hair::back(canvas, &layout, spec);
    body::clothes(canvas, &layout, spec);
    head::ears(canvas, &layout, spec);
    head::face(canvas, &layout, spec);
    head::cheeks(canvas, &layout, spec);
    head::age_lines(canvas, &layout, spec, &mut detail);
    head::facial_hair(canvas, &layout, spec);
    eyes::eyes(canvas, &layout, spec);
    eyes::brows(canvas, &layout, spec, &mut detail);
    mouth::nose(canvas, &layout, spec);
    mouth::mouth(canvas, &layout, spec, &mut detail);
    head::mustache_and_goatee(canvas, &layout, spec);
    hair::front(canvas, &layout, spec, &mut detail);
    body::hat(canvas, &layout, spec);
    eyes::glasses(canvas, &layout, spec);
    body::earrings(canvas, &layout, spec);
}
