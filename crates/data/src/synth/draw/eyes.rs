//! Eyes (with makeup and bags), eyebrows and eyeglasses.

use super::super::geom::{catmull_rom, quadratic, v2, Vec2};
use super::super::raster::{
    mix, shade, Canvas, Ellipse, Intersect, Outline, Polygon, Shape, Stroke,
};
use super::super::rng::SynthRng;
use super::super::spec::FaceSpec;
use super::{expression_face, Layout};

/// A point given in an eye's own frame (x outwards from the nose, y down) in the canonical
/// frame, for the eye on side `s` (-1 left, +1 right of the image).
fn eye_point(l: &Layout, s: f32, local: Vec2) -> Vec2 {
    let r = local.rotated(-l.eye_tilt);
    v2(l.cx + s * (l.eye_dx + r.x), l.eye_y + r.y)
}

fn eye_curve(l: &Layout, s: f32, control_y: f32) -> Vec<Vec2> {
    quadratic(
        v2(-l.eye_rx, 0.0),
        v2(0.0, control_y),
        v2(l.eye_rx, 0.0),
        10,
    )
    .into_iter()
    .map(|p| eye_point(l, s, p))
    .collect()
}

pub fn eyes(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let look = &spec.look;
    let p = &spec.identity;
    for s in [-1.0f32, 1.0] {
        let upper = eye_curve(l, s, -2.0 * l.eye_up);
        let lower = eye_curve(l, s, 2.0 * l.eye_down);
        if let Some(shadow) = look.makeup {
            let lid = Ellipse::new(
                eye_point(l, s, v2(0.5, -l.eye_up - 1.5)),
                l.eye_rx * 1.25,
                l.eye_up + 2.5,
            );
            canvas.fill(&lid, shadow, 0.6, 2.5);
        }
        if look.bags {
            let bag = Stroke::tapered(eye_curve(l, s, 2.0 * l.eye_down + 5.5), 2.2, 2.2, 0.3);
            canvas.fill(&bag, shade(l.skin, 0.7), 0.6, 1.6);
            let line = Stroke::tapered(eye_curve(l, s, 2.0 * l.eye_down + 8.5), 0.9, 0.9, 0.3);
            canvas.fill(&line, shade(l.skin, 0.62), 0.5, 1.0);
        }
        let mut almond = upper.clone();
        almond.extend(lower.iter().rev().skip(1).take(lower.len() - 2).copied());
        let sclera = Polygon::new(almond);
        canvas.fill(&sclera, mix([0.94, 0.93, 0.9], l.skin, 0.12), 1.0, 1.0);
        let iris_r = l.eye_rx * 0.5;
        let centre = eye_point(l, s, v2(-0.3, -0.15 * l.eye_up));
        let iris = Ellipse::circle(centre, iris_r);
        canvas.fill(&Intersect(&iris, &sclera), p.iris, 1.0, 1.0);
        let pupil = Ellipse::circle(centre, iris_r * 0.45);
        canvas.fill(&Intersect(&pupil, &sclera), [0.03, 0.03, 0.03], 1.0, 1.0);
        let glint = Ellipse::circle(centre + v2(iris_r * 0.3, -iris_r * 0.35), 0.65);
        canvas.fill(&Intersect(&glint, &sclera), [1.0, 1.0, 1.0], 0.9, 1.0);
        let liner = if look.makeup.is_some() { 1.9 } else { 1.2 };
        let lid_line = Stroke::tapered(upper.clone(), liner, liner * 0.9, 0.12);
        canvas.fill(&lid_line, [0.09, 0.07, 0.07], 0.95, 1.0);
        let crease = Stroke::tapered(eye_curve(l, s, -2.0 * l.eye_up - 4.5), 0.8, 0.8, 0.3);
        canvas.fill(&crease, shade(l.skin, 0.72), 0.6, 1.2);
        let lower_line = Stroke::tapered(lower, 0.7, 0.7, 0.3);
        canvas.fill(&lower_line, shade(l.skin, 0.6), 0.5, 1.0);
    }
}

pub fn brows(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec, detail: &mut SynthRng) {
    let p = &spec.identity;
    let look = &spec.look;
    let (_, _, inner_raise, arch_gain) = expression_face(look.expression);
    let inner_raise = inner_raise * look.intensity;
    // Additive, so an arched brow stays more arched than a flat one under any expression.
    let arch = (p.brow_arch + 1.2 * (arch_gain - 1.0) * look.intensity).max(0.0);
    let half_len = l.eye_rx * p.brow_length;
    for s in [-1.0f32, 1.0] {
        let inner = v2(
            l.cx + s * (l.eye_dx - half_len * 0.95),
            l.brow_y - inner_raise,
        );
        let outer = v2(
            l.cx + s * (l.eye_dx + half_len * 1.05),
            l.brow_y + 0.35 * inner_raise + 1.0,
        );
        let peak = inner.lerp(outer, 0.62) - v2(0.0, arch);
        let path = if p.arched_eyebrows {
            // An arch with a marked peak: two curves meeting at an angle.
            let mut rise = quadratic(inner, inner.lerp(peak, 0.5) - v2(0.0, 0.6), peak, 7);
            rise.pop();
            rise.extend(quadratic(
                peak,
                peak.lerp(outer, 0.5) - v2(0.0, 0.3),
                outer,
                5,
            ));
            rise
        } else {
            // Control point that makes the quadratic pass through the peak at t = 0.5.
            let control = peak * 2.0 - inner.lerp(outer, 0.5);
            quadratic(inner, control, outer, 12)
        };
        let t = l.brow_thickness;
        let brow = Stroke::tapered(path.clone(), t * 1.1, t * 0.55, 0.12);
        let soft = if p.bushy_eyebrows { 1.8 } else { 1.2 };
        canvas.fill(&brow, l.brow_colour, 0.95, soft);
        if p.bushy_eyebrows {
            // Stray hairs above and below.
            for _ in 0..16 {
                let k = detail.below(path.len());
                let at = path[k] + v2(detail.symmetric(1.0), detail.symmetric(t * 0.9));
                let hair = Stroke::new(vec![at, at + v2(s * 1.6, -0.6)], 0.7);
                canvas.fill(&hair, l.brow_colour, 0.8, 1.0);
            }
        }
    }
}

/// One lens outline (canonical) for the eye on side `s`.
fn lens(l: &Layout, s: f32, round: bool) -> Box<dyn Shape> {
    let centre = v2(l.cx + s * l.eye_dx, l.eye_y + 0.8);
    let rx = l.eye_rx + 3.4;
    let ry = l.eye_rx * 0.72 + 2.6;
    if round {
        Box::new(Ellipse::new(centre, rx, ry))
    } else {
        let corners = [
            v2(-rx, -ry),
            v2(0.0, -ry - 0.3),
            v2(rx, -ry),
            v2(rx + 0.2, 0.0),
            v2(rx * 0.9, ry),
            v2(0.0, ry + 0.4),
            v2(-rx * 0.9, ry),
            v2(-rx - 0.2, 0.0),
        ];
        let pts: Vec<Vec2> = corners.iter().map(|c| centre + *c).collect();
        Box::new(Polygon::new(catmull_rom(&pts, 4, true)))
    }
}

pub fn glasses(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let Some(g) = &spec.look.glasses else {
        return;
    };
    let rx = l.eye_rx + 3.4;
    for s in [-1.0f32, 1.0] {
        let shape = lens(l, s, g.round);
        canvas.fill(shape.as_ref(), g.tint, g.tint_opacity, 1.0);
        let frame = Outline {
            shape: shape.as_ref(),
            width: g.thickness,
        };
        canvas.fill(&frame, g.frame, 1.0, 1.0);
        let arm = Stroke::new(
            vec![
                v2(l.cx + s * (l.eye_dx + rx - 0.3), l.eye_y - 0.5),
                v2(l.cx + s * (l.face_w + 1.5), l.eye_y + 0.5),
            ],
            g.thickness * 0.9,
        );
        canvas.fill(&arm, g.frame, 1.0, 1.0);
    }
    let bridge = Stroke::new(
        quadratic(
            v2(l.cx - (l.eye_dx - rx + 0.3), l.eye_y - 0.5),
            v2(l.cx, l.eye_y - 3.0),
            v2(l.cx + (l.eye_dx - rx + 0.3), l.eye_y - 0.5),
            8,
        ),
        g.thickness,
    );
    canvas.fill(&bridge, g.frame, 1.0, 1.0);
}
