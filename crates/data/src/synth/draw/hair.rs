//! Hair: the mass behind the head (long hair), the cap in front with its hairline (receding
//! or not), bangs, and a texture of strands that tells straight from wavy from curly. The
//! colour is the identity's, mixed towards grey with age.

use super::super::geom::{catmull_rom, quadratic, v2, Vec2};
use super::super::identity::HairTexture;
use super::super::raster::{shade, Canvas, Ellipse, Outline, Polygon, Shape, Stroke};
use super::super::rng::SynthRng;
use super::super::spec::FaceSpec;
use super::Layout;

/// Radii of the hair's outer ellipse (around the skull, centred at `(cx, cheek_y)`).
fn outer_radii(l: &Layout, spec: &FaceSpec) -> (f32, f32) {
    let volume = spec.identity.hair_volume * (1.0 - 0.5 * spec.look.child);
    (l.skull_rx + volume, l.skull_ry + volume)
}

fn outer_point(l: &Layout, rx: f32, ry: f32, theta: f32) -> Vec2 {
    v2(l.cx + rx * theta.cos(), l.cheek_y - ry * theta.sin())
}

/// Outward offset of the hair's outline: smooth for straight hair, rippled for wavy hair,
/// bumpy for curly hair (a cue that survives downscaling, unlike single strands).
fn ripple(texture: HairTexture, phase: f32) -> f32 {
    match texture {
        HairTexture::Straight => 0.0,
        HairTexture::Wavy => 1.8 * phase.sin(),
        HairTexture::Curly => 2.2 * phase.sin().abs() - 0.8,
    }
}

/// A point of the hair's outer edge at angle `theta`, rippled by the texture.
fn outline_point(l: &Layout, spec: &FaceSpec, rx: f32, ry: f32, theta: f32) -> Vec2 {
    let frequency = match spec.identity.texture {
        HairTexture::Curly => 22.0,
        _ => 14.0,
    };
    let r = ripple(spec.identity.texture, theta * frequency);
    outer_point(l, rx + r, ry + r, theta)
}

/// Points down the outer side of long hair, from `top` to `bottom` at `x` (rippled).
fn long_side(spec: &FaceSpec, x: f32, side: f32, top: f32, bottom: f32) -> Vec<Vec2> {
    (0..=8)
        .map(|k| {
            let y = top + (bottom - top) * k as f32 / 8.0;
            v2(x + side * ripple(spec.identity.texture, y * 0.8), y)
        })
        .collect()
}

/// Bottom of long hair.
fn long_end(l: &Layout, spec: &FaceSpec) -> f32 {
    l.chin_y + spec.identity.hair_length * (1.0 - 0.4 * spec.look.child)
}

pub fn back(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    if spec.look.bald || !spec.identity.hair_long {
        return;
    }
    let (rx, ry) = outer_radii(l, spec);
    let end = long_end(l, spec);
    let mut pts = long_side(spec, l.cx - rx - 2.5, -1.0, end, l.cheek_y);
    for k in 0..=36 {
        let theta = std::f32::consts::PI * (1.0 - k as f32 / 36.0);
        pts.push(outline_point(l, spec, rx, ry, theta));
    }
    pts.extend(long_side(spec, l.cx + rx + 2.5, 1.0, l.cheek_y, end));
    canvas.fill(&Polygon::new(pts), shade(l.hair, 0.8), 1.0, 1.2);
}

/// The hairline from the left temple to the right one.
fn hairline(l: &Layout, spec: &FaceSpec) -> Vec<Vec2> {
    let (cx, w) = (l.cx, l.face_w);
    let rec = if spec.look.receding { 1.0 } else { 0.0 };
    let part = spec.identity.parting * 0.25;
    let temple = l.temple_y - 10.0 * rec;
    let pts = [
        v2(cx - w - 0.8, temple),
        v2(cx - w * 0.62, l.hairline_y + 2.5 - 10.0 * rec),
        v2(cx + part, l.hairline_y - 3.5 * rec),
        v2(cx + w * 0.62, l.hairline_y + 2.5 - 10.0 * rec),
        v2(cx + w + 0.8, temple),
    ];
    catmull_rom(&pts, 4, false)
}

/// The front hair region: hairline, the side (temples, or locks for long hair), outer arc.
fn cap(l: &Layout, spec: &FaceSpec) -> Polygon {
    let (rx, ry) = outer_radii(l, spec);
    let (cx, w) = (l.cx, l.face_w);
    let mut right: Vec<Vec2> = if spec.identity.hair_long {
        let end = long_end(l, spec);
        let mut side = vec![
            v2(cx + w - 2.2, l.cheek_y - 2.0),
            v2(cx + w - 0.8, l.chin_y - 5.0),
            v2(cx + w + 1.0, end),
        ];
        side.extend(long_side(spec, cx + rx + 2.5, 1.0, end, l.cheek_y));
        side
    } else {
        vec![
            v2(cx + w - 0.6, l.eye_y + 1.0),
            v2(cx + w + 0.4 * (rx - w), l.eye_y + 1.0),
        ]
    };
    let end_y = right.last().map_or(l.cheek_y, |p| p.y);
    let start = ((l.cheek_y - end_y) / ry).clamp(-1.0, 1.0).asin().max(0.0);
    let mut pts = hairline(l, spec);
    pts.append(&mut right.clone());
    let steps = 36;
    for k in 0..=steps {
        let theta = start + (std::f32::consts::PI - 2.0 * start) * k as f32 / steps as f32;
        pts.push(outline_point(l, spec, rx, ry, theta));
    }
    right.reverse();
    pts.extend(right.iter().map(|p| p.mirror_x(cx)));
    Polygon::new(pts)
}

fn bangs(l: &Layout, spec: &FaceSpec) -> Polygon {
    let (cx, w) = (l.cx, l.face_w);
    let fringe = l.brow_y.min(l.eye_y - l.eye_up - 5.0) - 2.5;
    let half = w * 0.92;
    let mut pts = vec![v2(cx - w - 0.5, l.temple_y - 1.0)];
    let teeth = 9;
    for k in 0..=teeth {
        let x = cx - half + 2.0 * half * k as f32 / teeth as f32;
        let dip = if k % 2 == 0 { 0.0 } else { 2.2 };
        let sweep = (k as f32 / teeth as f32 - 0.5) * spec.identity.parting * 0.25;
        pts.push(v2(x, fringe + dip - sweep.abs()));
    }
    pts.push(v2(cx + w + 0.5, l.temple_y - 1.0));
    pts.push(v2(cx + w * 0.5, l.hairline_y - 3.0));
    pts.push(v2(cx - w * 0.5, l.hairline_y - 3.0));
    Polygon::new(pts)
}

pub fn front(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec, detail: &mut SynthRng) {
    let look = &spec.look;
    if look.bald {
        // A fringe of short hair above the ears.
        for s in [-1.0f32, 1.0] {
            let x = l.cx + s * l.face_w;
            let fringe = Polygon::new(vec![
                v2(x - s * 1.5, l.eye_y - 7.0),
                v2(x + s * 2.5, l.eye_y - 9.0),
                v2(x + s * 2.8, l.eye_y + 2.0),
                v2(x - s * 0.8, l.eye_y + 2.0),
            ]);
            canvas.fill(&fringe, l.hair, 0.9, 1.5);
        }
        return;
    }
    let region = cap(l, spec);
    canvas.fill(&region, l.hair, 1.0, 1.1);
    let fringe = look.bangs.then(|| bangs(l, spec));
    if let Some(b) = &fringe {
        canvas.fill(b, l.hair, 1.0, 1.1);
    }
    strands(canvas, l, spec, &region, detail);
    if let Some(b) = &fringe {
        fringe_strands(canvas, l, spec, b, detail);
    }
}

fn strand_colour(l: &Layout, spec: &FaceSpec, k: usize, detail: &mut SynthRng) -> [f32; 3] {
    if detail.chance(spec.look.grey * 0.6) {
        shade(spec.identity.grey_shade, 1.08).map(|c| c.min(1.0))
    } else if k.is_multiple_of(2) {
        shade(l.hair, 0.5)
    } else {
        shade(l.hair, 1.5).map(|c| c.min(1.0))
    }
}

/// Offsets a path sideways by a sine wave (wavy hair).
fn wave(path: &[Vec2], amplitude: f32, wavelength: f32, phase: f32) -> Vec<Vec2> {
    let mut travelled = 0.0;
    path.iter()
        .enumerate()
        .map(|(i, p)| {
            if i > 0 {
                travelled += (*p - path[i - 1]).length();
            }
            let next = path[(i + 1).min(path.len() - 1)];
            let prev = path[i.saturating_sub(1)];
            let dir = next - prev;
            let len = dir.length().max(1e-4);
            let normal = v2(-dir.y / len, dir.x / len);
            *p + normal
                * (amplitude * (std::f32::consts::TAU * travelled / wavelength + phase).sin())
        })
        .collect()
}

fn strands(
    canvas: &mut Canvas,
    l: &Layout,
    spec: &FaceSpec,
    region: &Polygon,
    detail: &mut SynthRng,
) {
    let texture = spec.identity.texture;
    let mask = &canvas.mask(region, 1.0);
    let (rx, ry) = outer_radii(l, spec);
    let bounds = region.bounds();
    if texture == HairTexture::Curly {
        for k in 0..70 {
            let at = v2(
                detail.range(bounds.min.x, bounds.max.x),
                detail.range(bounds.min.y, bounds.max.y),
            );
            let ring = Ellipse::circle(at, detail.range(1.2, 2.0));
            let curl = Outline {
                shape: &ring,
                width: 0.8,
            };
            let colour = strand_colour(l, spec, k, detail);
            canvas.paint_masked(&curl, mask, 1.0, |_| (colour, 0.7));
        }
        return;
    }
    let crown = v2(l.cx + spec.identity.parting, l.cheek_y - ry + 2.0);
    let long_end = if spec.identity.hair_long {
        Some(long_end(l, spec))
    } else {
        None
    };
    let count = 34;
    for k in 0..count {
        // Strands fan out from the crown to the hairline and, for long hair, down the sides.
        let t = (k as f32 + detail.range(0.2, 0.8)) / count as f32;
        let theta = std::f32::consts::PI * (1.0 - t);
        let edge = outer_point(l, rx, ry, theta);
        let end = match long_end {
            Some(end_y) if theta.cos().abs() > 0.55 => v2(
                edge.x + theta.cos().signum() * detail.range(-2.0, 1.0),
                end_y - detail.range(0.0, 6.0),
            ),
            _ => {
                let inner = v2(l.cx + (edge.x - l.cx) * 0.92, l.hairline_y + 6.0);
                inner.lerp(edge, detail.range(0.0, 0.35))
            }
        };
        let bulge = edge + (edge - crown) * 0.05;
        let path = quadratic(crown, bulge, end, 16);
        let path = match texture {
            HairTexture::Wavy => wave(&path, 2.2, 8.0, detail.range(0.0, std::f32::consts::TAU)),
            _ => path,
        };
        let colour = strand_colour(l, spec, k, detail);
        canvas.paint_masked(&Stroke::new(path, 1.1), mask, 1.0, |_| (colour, 0.7));
    }
}

fn fringe_strands(
    canvas: &mut Canvas,
    l: &Layout,
    spec: &FaceSpec,
    fringe: &Polygon,
    detail: &mut SynthRng,
) {
    let b = fringe.bounds();
    let mask = canvas.mask(fringe, 1.0);
    for k in 0..12 {
        let x = b.min.x + (b.max.x - b.min.x) * (k as f32 + 0.5) / 12.0;
        let path = vec![v2(x - 1.0, b.min.y), v2(x + 0.5, b.max.y + 1.0)];
        let path = if spec.identity.texture == HairTexture::Wavy {
            wave(
                &quadratic(path[0], path[0].lerp(path[1], 0.5), path[1], 8),
                1.2,
                7.0,
                0.0,
            )
        } else {
            path
        };
        let colour = strand_colour(l, spec, k, detail);
        canvas.paint_masked(&Stroke::new(path, 0.8), &mask, 1.0, |_| (colour, 0.5));
    }
}
