//! Nose and mouth. The mouth is where the expression shows most: an open O (Surprise), a
//! wide flat opening with teeth (Fear), a lopsided curl (Disgust), corners up (Happiness),
//! corners down (Sadness), pressed thin lips (Anger), relaxed (Neutral).

use super::super::geom::{quadratic, v2, Vec2};
use super::super::labels::Expression;
use super::super::raster::{shade, Canvas, Ellipse, Intersect, Polygon, Stroke};
use super::super::rng::SynthRng;
use super::super::spec::FaceSpec;
use super::Layout;

/// The mouth's curves as functions of `u` in [-1, 1] (left corner to right corner).
pub(crate) struct MouthGeometry {
    pub cx: f32,
    pub mouth_y: f32,
    pub hw: f32,
    lift_left: f32,
    lift_right: f32,
    sag: f32,
    open_top: f32,
    open_bottom: f32,
    /// Exponent of the opening profile: 1 a lens, 0.5 an ellipse, smaller a flat slot.
    profile: f32,
    /// Lopsidedness of the opening (Disgust's snarl): positive opens the right side more.
    skew: f32,
    pub upper_lip: f32,
    pub lower_lip: f32,
}

impl MouthGeometry {
    pub fn new(layout: &Layout, spec: &FaceSpec) -> MouthGeometry {
        let look = &spec.look;
        let i = look.intensity;
        let gap = look.mouth_gap;
        let hw = layout.mouth_hw;
        // The raised side of a disgusted curl is the photo's choice.
        let side = if spec.scene.noise_seed & 1 == 0 {
            1.0
        } else {
            -1.0
        };
        let (width, lift_l, lift_r, sag, top, profile, lips) = match look.expression {
            Expression::Surprise => (0.55, 0.0, 0.0, 0.0, 0.4, 0.5, 0.85),
            Expression::Fear => (1.22, -1.4 * i, -1.4 * i, 0.0, 0.3, 0.3, 0.8),
            Expression::Disgust => {
                let (l, r) = if side > 0.0 { (-1.8, 4.2) } else { (4.2, -1.8) };
                (0.95, l * i, r * i, -0.8, 0.6, 1.0, 1.15)
            }
            Expression::Happiness => (1.18, 4.6 * i, 4.6 * i, 1.3 * i, 0.0, 1.0, 0.85),
            Expression::Sadness => (0.95, -3.6 * i, -3.6 * i, -1.3 * i, 0.0, 1.0, 1.05),
            Expression::Anger => (0.86, -0.8 * i, -0.8 * i, 0.0, 0.0, 1.0, 0.38),
            Expression::Neutral => (1.0, 0.0, 0.0, 0.4, 0.0, 1.0, 1.0),
        };
        MouthGeometry {
            cx: layout.cx,
            mouth_y: layout.mouth_y,
            hw: hw * width,
            lift_left: lift_l,
            lift_right: lift_r,
            sag,
            open_top: gap * top,
            open_bottom: gap * (1.0 - top),
            profile,
            skew: if look.expression == Expression::Disgust {
                0.9 * side
            } else {
                0.0
            },
            upper_lip: layout.upper_lip * lips,
            lower_lip: layout.lower_lip * lips,
        }
    }

    pub fn x(&self, u: f32) -> f32 {
        self.cx + u * self.hw
    }

    fn centre_line(&self, u: f32) -> f32 {
        let lift = self.lift_left + (self.lift_right - self.lift_left) * (u + 1.0) * 0.5;
        self.mouth_y - lift * u * u + self.sag * (1.0 - u * u)
    }

    fn opening(&self, u: f32) -> f32 {
        (1.0 - u * u).max(0.0).powf(self.profile) * (1.0 + self.skew * u).max(0.0)
    }

    /// Lower edge of the upper lip.
    pub fn parting_top(&self, u: f32) -> f32 {
        self.centre_line(u) - self.open_top * self.opening(u)
    }

    /// Upper edge of the lower lip.
    pub fn parting_bottom(&self, u: f32) -> f32 {
        self.centre_line(u) + self.open_bottom * self.opening(u)
    }

    /// Upper edge of the upper lip, with a cupid's bow.
    pub fn upper_lip_top(&self, u: f32) -> f32 {
        let body = (1.0 - u * u).max(0.0).powf(0.6);
        let bow = 1.0 - 0.3 * (-(u / 0.16).powi(2)).exp();
        self.parting_top(u) - self.upper_lip * body * bow
    }

    /// Lower edge of the lower lip.
    pub fn lower_lip_bottom(&self, u: f32) -> f32 {
        self.parting_bottom(u) + self.lower_lip * (1.0 - u * u).max(0.0).powf(0.7)
    }

    /// Points of `f` from `u0` to `u1`.
    pub fn curve(&self, f: impl Fn(&Self, f32) -> f32, u0: f32, u1: f32, n: usize) -> Vec<Vec2> {
        (0..=n)
            .map(|k| {
                let u = u0 + (u1 - u0) * k as f32 / n as f32;
                v2(self.x(u), f(self, u))
            })
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.open_top + self.open_bottom > 0.0
    }
}

pub fn nose(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let p = &spec.identity;
    let (cx, tip, w) = (l.cx, l.tip_y, l.nose_w);
    let skin = l.skin;
    // Side of the bridge in shadow, tip highlight, shadow under the tip.
    let bridge = Stroke::tapered(
        quadratic(
            v2(cx - 2.4, l.eye_y + 2.0),
            v2(cx - 3.2, (l.eye_y + tip) * 0.5),
            v2(cx - w * 0.6, tip - 3.0),
            8,
        ),
        1.2,
        2.2,
        0.15,
    );
    canvas.fill(&bridge, shade(skin, 0.8), 0.55, 2.5);
    canvas.fill(
        &Ellipse::new(v2(cx, tip + 2.0), w * 0.62, 1.4),
        shade(skin, 0.72),
        0.6,
        1.6,
    );
    let tip_size = if p.big_nose { 1.3 } else { 1.0 };
    if p.pointy_nose {
        // A narrow tip pointing down: a deep V outline, a dark wedge under it and a long thin
        // highlight down the ridge.
        let v = Stroke::tapered(
            vec![
                v2(cx - 3.0 * tip_size, tip - 3.5),
                v2(cx, tip + 1.6),
                v2(cx + 3.0 * tip_size, tip - 3.5),
            ],
            1.3,
            1.3,
            0.15,
        );
        canvas.fill(&v, shade(skin, 0.5), 0.95, 1.0);
        let wedge = Polygon::new(vec![
            v2(cx - 2.2, tip + 1.0),
            v2(cx + 2.2, tip + 1.0),
            v2(cx, tip + 3.4),
        ]);
        canvas.fill(&wedge, shade(skin, 0.45), 0.8, 1.0);
        let ridge = Polygon::new(vec![
            v2(cx - 0.9, tip - 10.0),
            v2(cx + 0.9, tip - 10.0),
            v2(cx + 1.4, tip - 2.5),
            v2(cx, tip + 0.2),
            v2(cx - 1.4, tip - 2.5),
        ]);
        canvas.fill(&ridge, shade(skin, 1.22), 0.75, 1.0);
    } else {
        // A round, bulbous tip: a ball of light and a wide U under it.
        canvas.fill(
            &Ellipse::circle(v2(cx, tip - 0.8), w * 0.45 * tip_size),
            shade(skin, 1.16),
            0.65,
            1.8,
        );
        let round = Stroke::tapered(
            quadratic(
                v2(cx - w * 0.55, tip - 0.2),
                v2(cx, tip + 4.0 * tip_size),
                v2(cx + w * 0.55, tip - 0.2),
                8,
            ),
            1.2,
            1.2,
            0.25,
        );
        canvas.fill(&round, shade(skin, 0.62), 0.7, 1.2);
    }
    let nostril = if p.big_nose { 2.0 } else { 1.35 };
    for s in [-1.0f32, 1.0] {
        canvas.fill(
            &Ellipse::new(v2(cx + s * w * 0.42, tip + 1.4), nostril, 0.9).rotated(s * 0.35),
            shade(skin, 0.32),
            0.9,
            1.0,
        );
        let wing = Stroke::tapered(
            quadratic(
                v2(cx + s * w * 0.55, tip - 3.2),
                v2(cx + s * w * 1.08, tip + 0.2),
                v2(cx + s * w * 0.45, tip + 2.6),
                8,
            ),
            1.0,
            1.0,
            0.25,
        );
        canvas.fill(&wing, shade(skin, 0.6), 0.8, 1.0);
    }
    if spec.look.expression == Expression::Disgust {
        // Wrinkled nose.
        let k = spec.look.intensity;
        for s in [-1.0f32, 1.0] {
            let crease = Stroke::tapered(
                vec![
                    v2(cx + s * 1.2, l.eye_y + 3.5),
                    v2(cx + s * 4.2, l.eye_y + 6.5),
                ],
                1.0,
                1.0,
                0.3,
            );
            canvas.fill(&crease, shade(skin, 0.55), 0.85 * k, 1.0);
        }
        let across = Stroke::tapered(
            quadratic(
                v2(cx - 3.0, l.eye_y + 5.5),
                v2(cx, l.eye_y + 4.0),
                v2(cx + 3.0, l.eye_y + 5.5),
                6,
            ),
            0.9,
            0.9,
            0.3,
        );
        canvas.fill(&across, shade(skin, 0.6), 0.8 * k, 1.0);
    }
}

pub fn mouth(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec, _detail: &mut SynthRng) {
    let g = MouthGeometry::new(l, spec);
    let look = &spec.look;
    let lips = look.lipstick.unwrap_or(spec.identity.lip_colour);
    let lip_opacity = if look.lipstick.is_some() { 0.95 } else { 0.85 };
    let n = 16;
    if g.is_open() {
        let mut inside = g.curve(MouthGeometry::parting_top, -1.0, 1.0, n);
        inside.extend(g.curve(MouthGeometry::parting_bottom, 1.0, -1.0, n));
        let interior = Polygon::new(inside);
        canvas.fill(&interior, [0.26, 0.07, 0.08], 1.0, 1.0);
        let teeth = [0.93, 0.91, 0.86];
        let shows_upper = matches!(
            look.expression,
            Expression::Happiness | Expression::Fear | Expression::Disgust | Expression::Surprise
        );
        if shows_upper {
            let depth = match look.expression {
                Expression::Surprise => 1.6,
                _ => 0.5 * (g.parting_bottom(0.0) - g.parting_top(0.0)),
            };
            let mut band = g.curve(MouthGeometry::parting_top, -1.2, 1.2, n);
            band.extend(
                g.curve(MouthGeometry::parting_top, 1.2, -1.2, n)
                    .into_iter()
                    .map(|p| v2(p.x, p.y + depth)),
            );
            let band = Polygon::new(band);
            canvas.fill(&Intersect(&interior, &band), teeth, 1.0, 1.0);
        }
        if look.expression == Expression::Fear {
            let depth = 0.3 * (g.parting_bottom(0.0) - g.parting_top(0.0));
            let mut band = g.curve(MouthGeometry::parting_bottom, -1.2, 1.2, n);
            band.extend(
                g.curve(MouthGeometry::parting_bottom, 1.2, -1.2, n)
                    .into_iter()
                    .map(|p| v2(p.x, p.y - depth)),
            );
            let band = Polygon::new(band);
            canvas.fill(&Intersect(&interior, &band), teeth, 0.9, 1.0);
        }
    }
    let mut upper = g.curve(MouthGeometry::upper_lip_top, -1.0, 1.0, n);
    upper.extend(g.curve(MouthGeometry::parting_top, 1.0, -1.0, n));
    canvas.fill(&Polygon::new(upper), lips, lip_opacity, 1.0);
    let mut lower = g.curve(MouthGeometry::parting_bottom, -1.0, 1.0, n);
    lower.extend(g.curve(MouthGeometry::lower_lip_bottom, 1.0, -1.0, n));
    canvas.fill(&Polygon::new(lower), lips, lip_opacity, 1.0);
    if !g.is_open() {
        let line = Stroke::tapered(
            g.curve(MouthGeometry::parting_top, -1.05, 1.05, n),
            1.1,
            1.1,
            0.1,
        );
        canvas.fill(&line, shade(lips, 0.4), 0.9, 1.0);
    }
    canvas.fill(
        &Ellipse::new(
            v2(g.cx, g.parting_bottom(0.0) + g.lower_lip * 0.45),
            g.hw * 0.3,
            g.lower_lip * 0.22,
        ),
        [1.0, 1.0, 1.0],
        0.15,
        1.5,
    );
    if look.expression == Expression::Happiness {
        // Dimples at the raised corners.
        for s in [-1.0f32, 1.0] {
            let corner = v2(g.x(s), g.parting_top(s));
            let dimple = Stroke::tapered(
                quadratic(
                    corner + v2(s * 0.8, -1.5),
                    corner + v2(s * 2.2, 0.5),
                    corner + v2(s * 1.2, 2.5),
                    6,
                ),
                1.0,
                1.0,
                0.3,
            );
            canvas.fill(&dimple, shade(l.skin, 0.6), 0.7, 1.0);
        }
    }
}
