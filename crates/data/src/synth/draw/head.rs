//! Ears, the face itself with its shading, cheeks, the lines of age, and facial hair.

use super::super::geom::{quadratic, v2, Vec2};
use super::super::labels::Expression;
use super::super::raster::{
    mix, shade, Canvas, Ellipse, Intersect, Polygon, Rgb, Stroke, Subtract, Union,
};
use super::super::rng::SynthRng;
use super::super::spec::FaceSpec;
use super::mouth::MouthGeometry;
use super::{cell_noise, Layout};

pub fn ears(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let p = &spec.identity;
    for s in [-1.0f32, 1.0] {
        let centre = v2(
            l.cx + s * (l.face_w - 0.8 + p.ear_half_width * 0.55),
            l.eye_y + 5.0,
        );
        let ear = Ellipse::new(centre, p.ear_half_width, p.ear_half_height).rotated(s * 0.12);
        canvas.fill(&ear, shade(l.skin, 0.93), 1.0, 1.0);
        let fold = Stroke::tapered(
            quadratic(
                centre + v2(-s * 0.5, -p.ear_half_height * 0.6),
                centre + v2(s * p.ear_half_width * 0.9, 0.0),
                centre + v2(-s * 0.3, p.ear_half_height * 0.55),
                8,
            ),
            1.0,
            1.0,
            0.25,
        );
        canvas.fill(&fold, shade(l.skin, 0.65), 0.7, 1.0);
    }
}

pub fn face(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let skin = l.skin;
    let (cx, w, bald) = (l.cx, l.face_w, spec.look.bald);
    let top = l.cheek_y - l.skull_ry;
    canvas.paint(&l.outline, 1.0, |q| {
        // Rounder look: darker towards the sides and under the jaw.
        let dx = (q.x - cx) / w;
        let k = 1.0 - 0.14 * dx * dx - 0.06 * ((q.y - l.jaw_y) / 10.0).max(0.0);
        (shade(skin, k), 1.0)
    });
    if bald {
        // Shine on the bald scalp.
        canvas.fill(
            &Ellipse::new(v2(cx - 3.0, top + 7.0), w * 0.35, 4.0),
            mix(skin, [1.0, 1.0, 1.0], 0.3),
            0.5,
            4.0,
        );
    }
}

pub fn cheeks(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let p = &spec.identity;
    let look = &spec.look;
    let (cx, w) = (l.cx, l.face_w);
    for s in [-1.0f32, 1.0] {
        if p.chubby {
            canvas.fill(
                &Ellipse::circle(v2(cx + s * w * 0.55, l.mouth_y - 4.0), 7.0),
                shade(l.skin, 1.07),
                0.6,
                6.0,
            );
        }
        if p.high_cheekbones {
            canvas.fill(
                &Ellipse::new(v2(cx + s * w * 0.6, l.eye_y + 8.5), 6.5, 2.6).rotated(-s * 0.3),
                shade(l.skin, 1.14),
                0.7,
                3.0,
            );
            let hollow = Stroke::tapered(
                quadratic(
                    v2(cx + s * w * 0.95, l.eye_y + 11.0),
                    v2(cx + s * w * 0.7, l.eye_y + 15.0),
                    v2(cx + s * w * 0.45, l.mouth_y - 1.5),
                    8,
                ),
                3.2,
                2.0,
                0.2,
            );
            canvas.fill(&hollow, shade(l.skin, 0.74), 0.75, 3.5);
        }
        if look.rosy_cheeks {
            canvas.fill(
                &Ellipse::new(v2(cx + s * w * 0.56, l.eye_y + 14.0), 6.5, 4.5),
                [0.92, 0.36, 0.42],
                0.5,
                5.0,
            );
        }
    }
    if look.double_chin {
        canvas.fill(
            &Ellipse::new(v2(cx, l.chin_y + 1.5), l.chin_w * 1.5 + 3.0, 4.0),
            shade(l.skin, 0.95),
            1.0,
            1.5,
        );
        let fold = Stroke::tapered(
            quadratic(
                v2(cx - l.chin_w * 1.3 - 2.0, l.chin_y - 0.5),
                v2(cx, l.chin_y + 5.5),
                v2(cx + l.chin_w * 1.3 + 2.0, l.chin_y - 0.5),
                10,
            ),
            1.3,
            1.3,
            0.25,
        );
        canvas.fill(&fold, shade(l.skin, 0.6), 0.9, 1.0);
    }
}

fn line(canvas: &mut Canvas, points: Vec<Vec2>, width: f32, colour: Rgb, opacity: f32) {
    if opacity <= 0.01 {
        return;
    }
    canvas.fill(
        &Stroke::tapered(points, width, width, 0.3),
        colour,
        opacity.min(1.0),
        1.0,
    );
}

pub fn age_lines(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec, detail: &mut SynthRng) {
    let look = &spec.look;
    let w = look.wrinkles;
    let (cx, fw) = (l.cx, l.face_w);
    // Deeper marks are darker, not more opaque: opacity, which grows with age, stays short
    // of 1 and keeps telling ages apart.
    let crease = shade(l.skin, 1.0 - 0.45 * look.age_marks);
    // Wider too: at the demo's patch 8 a one-pixel crease is an eighth of a patch column.
    let wide = look.crease_width;
    if w > 0.12 && !look.bangs {
        let count = 1 + (w * 3.2) as usize;
        for k in 0..count.min(4) {
            let y = l.brow_y - 5.0 - 3.3 * k as f32;
            if y < l.hairline_y + 1.5 {
                break;
            }
            let half = fw * (0.55 - 0.06 * k as f32);
            line(
                canvas,
                quadratic(
                    v2(cx - half, y + 1.0),
                    v2(cx, y - 1.3),
                    v2(cx + half, y + 1.0),
                    10,
                ),
                (1.0 + 0.7 * w) * wide,
                crease,
                0.25 + 0.65 * w,
            );
        }
    }
    let smile_fold = if look.expression == Expression::Happiness {
        0.3
    } else {
        0.0
    };
    let g = MouthGeometry::new(l, spec);
    for s in [-1.0f32, 1.0] {
        // Nasolabial folds deepen steadily from the twenties.
        let corner = v2(g.x(s), g.parting_top(s));
        line(
            canvas,
            quadratic(
                v2(cx + s * (l.nose_w + 1.5), l.tip_y - 1.0),
                v2(cx + s * (l.mouth_hw + 4.0), l.mouth_y - 4.0),
                corner + v2(s * 2.5, 3.0),
                10,
            ),
            1.4 * wide,
            crease,
            0.08 + 0.65 * w + smile_fold,
        );
        let eye_corner = v2(cx + s * (l.eye_dx + l.eye_rx + 1.2), l.eye_y);
        let crows = look.crows;
        for angle in [-0.5f32, 0.0, 0.5] {
            let dir = v2(s * angle.cos(), angle.sin());
            line(
                canvas,
                vec![eye_corner, eye_corner + dir * (3.0 + 1.5 * crows)],
                0.9 * wide,
                crease,
                0.75 * crows,
            );
        }
        let marionette = look.marionette;
        line(
            canvas,
            vec![corner + v2(s * 0.5, 1.0), corner + v2(s * 1.5, 6.5)],
            1.0 * wide,
            crease,
            0.7 * marionette,
        );
    }
    let spots = ((look.age - 58.0) / 5.0).max(0.0) as usize;
    for _ in 0..spots.min(6) {
        let at = v2(
            cx + detail.symmetric(fw * 0.7),
            l.brow_y - detail.range(-14.0, 6.0),
        );
        canvas.fill(
            &Ellipse::circle(at, detail.range(0.7, 1.3)),
            mix(l.skin, [0.45, 0.3, 0.18], 0.6),
            0.45,
            1.2,
        );
    }
}

/// The lower face below `top_y` (inside the face outline, slightly beyond it).
fn lower_face(l: &Layout, top_y: f32) -> Polygon {
    let (cx, fw) = (l.cx, l.face_w);
    Polygon::new(vec![
        v2(cx - fw - 2.0, top_y),
        v2(cx + fw + 2.0, top_y),
        v2(cx + fw + 2.0, l.chin_y + 6.0),
        v2(cx - fw - 2.0, l.chin_y + 6.0),
    ])
}

pub fn facial_hair(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let look = &spec.look;
    let (cx, fw) = (l.cx, l.face_w);
    let seed = spec.scene.noise_seed;
    let beard_colour = l.beard_colour;
    if look.stubble || look.beard {
        let grown = Polygon::new(
            l.outline
                .points()
                .iter()
                .map(|p| *p + (*p - v2(cx, l.cheek_y)) * 0.03)
                .collect(),
        );
        let top = if look.beard && !look.mustache {
            l.mouth_y - 2.0
        } else {
            l.tip_y + 2.5
        };
        let cut = lower_face(l, top);
        // Leave the cheeks above the jaw line bare.
        let cheeks = Polygon::new(vec![
            v2(cx - fw - 3.0, top - 1.0),
            v2(cx - fw * 0.45, top - 1.0),
            v2(cx - fw * 0.6, l.mouth_y),
            v2(cx - fw - 3.0, l.jaw_y - 1.0),
        ]);
        let cheeks_r = Polygon::new(cheeks.points().iter().map(|p| p.mirror_x(cx)).collect());
        let lower = Intersect(&cut, &grown);
        let bare = Union(&cheeks, &cheeks_r);
        let region = Subtract(&lower, &bare);
        let stubble = shade(mix(beard_colour, [0.25, 0.27, 0.3], 0.4), 0.8);
        canvas.paint(&region, if look.beard { 2.0 } else { 2.5 }, |q| {
            let n = cell_noise(q.x * 1.3, q.y * 1.3, seed);
            if look.beard {
                let a = if n < 0.75 { 0.95 } else { 0.7 };
                (shade(beard_colour, 0.75 + 0.45 * n), a)
            } else {
                (stubble, if n < 0.5 { 0.6 } else { 0.25 })
            }
        });
    }
    if look.sideburns {
        for s in [-1.0f32, 1.0] {
            let strip = Polygon::new(vec![
                v2(cx + s * (fw + 0.5), l.temple_y + 1.0),
                v2(cx + s * (fw - 4.8), l.temple_y + 2.0),
                v2(cx + s * (fw - 4.2), l.eye_y + 18.0),
                v2(cx + s * (fw + 0.3), l.eye_y + 19.0),
            ]);
            canvas.fill(&strip, l.hair, 0.95, 1.3);
        }
    }
}

pub fn mustache_and_goatee(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let look = &spec.look;
    let g = MouthGeometry::new(l, spec);
    let seed = spec.scene.noise_seed;
    let colour = l.beard_colour;
    let texture = |q: Vec2| {
        let n = cell_noise(q.x * 1.6, q.y * 1.1, seed ^ 0xABCD);
        (shade(colour, 0.75 + 0.5 * n), 0.97)
    };
    if look.mustache {
        let thick = 3.8;
        let n = 14;
        let mut pts: Vec<Vec2> = (0..=n)
            .map(|k| {
                let u = -1.15 + 2.3 * k as f32 / n as f32;
                let droop = (u.abs() - 0.8).max(0.0) * 6.0;
                v2(g.x(u), g.upper_lip_top(u.clamp(-1.0, 1.0)) - 0.2 + droop)
            })
            .collect();
        let upper: Vec<Vec2> = (0..=n)
            .rev()
            .map(|k| {
                let u = -1.15 + 2.3 * k as f32 / n as f32;
                let body = thick * (0.55 + 0.45 * (1.0 - u * u).max(0.0));
                let droop = (u.abs() - 0.8).max(0.0) * 6.0;
                v2(
                    g.x(u),
                    g.upper_lip_top(u.clamp(-1.0, 1.0)) - 0.2 - body + droop,
                )
            })
            .collect();
        pts.extend(upper);
        canvas.paint(&Polygon::new(pts), 1.3, texture);
    }
    if look.goatee {
        let top = g.lower_lip_bottom(0.0) + 0.6;
        let shield = Polygon::new(super::super::geom::catmull_rom(
            &[
                v2(g.cx - g.hw * 0.75, g.lower_lip_bottom(-0.75) + 0.5),
                v2(g.cx, top),
                v2(g.cx + g.hw * 0.75, g.lower_lip_bottom(0.75) + 0.5),
                v2(g.cx + l.chin_w * 0.9, l.chin_y - 2.0),
                v2(g.cx, l.chin_y + 1.5),
                v2(g.cx - l.chin_w * 0.9, l.chin_y - 2.0),
            ],
            4,
            true,
        ));
        canvas.paint(&shield, 1.3, texture);
    }
}
