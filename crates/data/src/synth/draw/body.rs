//! Clothes and neck at the bottom of the picture (with necklace and necktie), the hat, and
//! earrings.

use super::super::geom::{quadratic, v2};
use super::super::raster::{shade, Canvas, Ellipse, Outline, Polygon, Stroke};
use super::super::spec::FaceSpec;
use super::Layout;

pub fn clothes(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let look = &spec.look;
    let (cx, nw, sy) = (l.cx, l.neck_w, l.shoulder_y);
    let shoulders = Polygon::new(vec![
        v2(cx - nw - 1.0, sy - 2.0),
        v2(cx - 26.0, sy + 1.0),
        v2(cx - 40.0, sy + 8.0),
        v2(-20.0, sy + 24.0),
        v2(-20.0, 150.0),
        v2(132.0, 150.0),
        v2(132.0, sy + 24.0),
        v2(cx + 40.0, sy + 8.0),
        v2(cx + 26.0, sy + 1.0),
        v2(cx + nw + 1.0, sy - 2.0),
    ]);
    canvas.fill(&shoulders, look.clothes, 1.0, 1.0);
    let neck = Polygon::new(vec![
        v2(cx - nw, l.jaw_y),
        v2(cx + nw, l.jaw_y),
        v2(cx + nw + 0.5, sy),
        v2(cx, sy + 9.0),
        v2(cx - nw - 0.5, sy),
    ]);
    canvas.paint(&neck, 1.0, |q| {
        // Shadow under the chin.
        let k = if q.y < l.chin_y + 4.0 { 0.72 } else { 0.84 };
        (shade(l.skin, k), 1.0)
    });
    if let Some((tie, stripe)) = look.necktie {
        for s in [-1.0f32, 1.0] {
            let collar = Polygon::new(vec![
                v2(cx + s * (nw + 1.5), sy - 3.0),
                v2(cx + s * 0.5, sy + 4.5),
                v2(cx + s * (nw + 5.0), sy + 8.0),
            ]);
            canvas.fill(&collar, look.collar, 1.0, 1.0);
        }
        let knot = Polygon::new(vec![
            v2(cx - 2.8, sy + 0.5),
            v2(cx + 2.8, sy + 0.5),
            v2(cx + 2.0, sy + 4.5),
            v2(cx - 2.0, sy + 4.5),
        ]);
        canvas.fill(&knot, tie, 1.0, 1.0);
        let blade = Polygon::new(vec![
            v2(cx - 2.0, sy + 4.5),
            v2(cx + 2.0, sy + 4.5),
            v2(cx + 4.8, sy + 24.0),
            v2(cx, sy + 28.0),
            v2(cx - 4.8, sy + 24.0),
        ]);
        canvas.paint(&blade, 1.0, |q| {
            let band = ((q.x + q.y) * 0.5).rem_euclid(3.0) < 1.0;
            (if band { stripe } else { tie }, 1.0)
        });
    }
    if let Some(metal) = look.necklace {
        let chain = Stroke::new(
            quadratic(
                v2(cx - nw * 0.95, l.chin_y + 2.5),
                v2(cx, sy + 7.0),
                v2(cx + nw * 0.95, l.chin_y + 2.5),
                14,
            ),
            1.3,
        );
        canvas.fill(&chain, metal, 1.0, 1.0);
        canvas.fill(
            &Ellipse::circle(v2(cx, (l.chin_y + 2.5) * 0.5 + (sy + 7.0) * 0.5 + 1.8), 1.9),
            metal,
            1.0,
            1.0,
        );
    }
}

pub fn hat(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let Some(hat) = &spec.look.hat else {
        return;
    };
    let (cx, w) = (l.cx, l.face_w);
    let rx = l.skull_rx + spec.identity.hair_volume + 2.0;
    let ry = l.skull_ry + spec.identity.hair_volume + 2.0;
    let rim = (l.hairline_y + 1.0).min(l.brow_y - 5.0);
    let start = ((l.cheek_y - rim) / ry).clamp(-1.0, 1.0).asin();
    let mut pts = Vec::new();
    for k in 0..=18 {
        let theta = start + (std::f32::consts::PI - 2.0 * start) * k as f32 / 18.0;
        pts.push(v2(cx + rx * theta.cos(), l.cheek_y - ry * theta.sin()));
    }
    let crown = Polygon::new(pts);
    canvas.paint(&crown, 1.0, |q| {
        // Knit ribs.
        let rib = ((q.x - cx) * 0.7).rem_euclid(2.0) < 1.0;
        (shade(hat.colour, if rib { 0.9 } else { 1.05 }), 1.0)
    });
    let band = Polygon::new(vec![
        v2(cx - rx - 0.5, rim - 4.0),
        v2(cx + rx + 0.5, rim - 4.0),
        v2(cx + rx + 0.5, rim + 0.5),
        v2(cx - rx - 0.5, rim + 0.5),
    ]);
    canvas.fill(&band, hat.band, 1.0, 1.0);
    if hat.peak {
        let peak = Ellipse::new(v2(cx, rim + 1.0), w * 0.95, 3.2);
        canvas.fill(&peak, shade(hat.colour, 0.7), 1.0, 1.0);
    }
}

pub fn earrings(canvas: &mut Canvas, l: &Layout, spec: &FaceSpec) {
    let Some((metal, hoop)) = spec.look.earrings else {
        return;
    };
    let p = &spec.identity;
    for s in [-1.0f32, 1.0] {
        let lobe = v2(
            l.cx + s * (l.face_w - 0.8 + p.ear_half_width * 0.55),
            l.eye_y + 5.0 + p.ear_half_height * 0.85,
        );
        if hoop {
            let ring = Ellipse::circle(lobe + v2(0.0, 2.8), 2.8);
            canvas.fill(
                &Outline {
                    shape: &ring,
                    width: 1.1,
                },
                metal,
                1.0,
                1.0,
            );
        } else {
            canvas.fill(&Ellipse::circle(lobe + v2(0.0, 0.8), 1.5), metal, 1.0, 1.0);
            canvas.fill(
                &Ellipse::new(lobe + v2(0.0, 3.6), 1.2, 1.9),
                metal,
                1.0,
                1.0,
            );
        }
    }
}
