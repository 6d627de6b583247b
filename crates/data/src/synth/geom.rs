//! Plane geometry for the rasteriser: points, similarity transforms and Bézier flattening.

use std::ops::{Add, Mul, Neg, Sub};

/// A point or vector in the plane (x right, y down, pixel units).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vec2 {
    pub x: f32,
    pub y: f32,
}

/// Shorthand constructor.
pub const fn v2(x: f32, y: f32) -> Vec2 {
    Vec2 { x, y }
}

impl Vec2 {
    pub fn dot(self, o: Vec2) -> f32 {
        self.x * o.x + self.y * o.y
    }

    pub fn length(self) -> f32 {
        self.dot(self).sqrt()
    }

    /// Rotated by `angle` radians (clockwise on screen, since y points down).
    pub fn rotated(self, angle: f32) -> Vec2 {
        let (s, c) = angle.sin_cos();
        v2(c * self.x - s * self.y, s * self.x + c * self.y)
    }

    pub fn lerp(self, o: Vec2, t: f32) -> Vec2 {
        self + (o - self) * t
    }

    /// Mirrored about the vertical line x = `axis`.
    pub fn mirror_x(self, axis: f32) -> Vec2 {
        v2(2.0 * axis - self.x, self.y)
    }
}

impl Add for Vec2 {
    type Output = Vec2;
    fn add(self, o: Vec2) -> Vec2 {
        v2(self.x + o.x, self.y + o.y)
    }
}

impl Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, o: Vec2) -> Vec2 {
        v2(self.x - o.x, self.y - o.y)
    }
}

impl Mul<f32> for Vec2 {
    type Output = Vec2;
    fn mul(self, k: f32) -> Vec2 {
        v2(self.x * k, self.y * k)
    }
}

impl Neg for Vec2 {
    type Output = Vec2;
    fn neg(self) -> Vec2 {
        v2(-self.x, -self.y)
    }
}

/// Axis-aligned bounds `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub min: Vec2,
    pub max: Vec2,
}

impl Bounds {
    /// The empty bounds (union identity).
    pub const EMPTY: Bounds = Bounds {
        min: v2(f32::INFINITY, f32::INFINITY),
        max: v2(f32::NEG_INFINITY, f32::NEG_INFINITY),
    };

    pub fn of_points(points: &[Vec2]) -> Bounds {
        points.iter().fold(Bounds::EMPTY, |b, &p| b.including(p))
    }

    pub fn including(self, p: Vec2) -> Bounds {
        Bounds {
            min: v2(self.min.x.min(p.x), self.min.y.min(p.y)),
            max: v2(self.max.x.max(p.x), self.max.y.max(p.y)),
        }
    }

    pub fn union(self, o: Bounds) -> Bounds {
        self.including(o.min).including(o.max)
    }

    pub fn intersection(self, o: Bounds) -> Bounds {
        Bounds {
            min: v2(self.min.x.max(o.min.x), self.min.y.max(o.min.y)),
            max: v2(self.max.x.min(o.max.x), self.max.y.min(o.max.y)),
        }
    }

    /// Whether the two boxes share a point (edges included).
    pub fn overlaps(self, o: Bounds) -> bool {
        self.min.x <= o.max.x
            && o.min.x <= self.max.x
            && self.min.y <= o.max.y
            && o.min.y <= self.max.y
    }

    pub fn grown(self, by: f32) -> Bounds {
        Bounds {
            min: self.min - v2(by, by),
            max: self.max + v2(by, by),
        }
    }

    pub fn corners(self) -> [Vec2; 4] {
        [
            self.min,
            v2(self.max.x, self.min.y),
            self.max,
            v2(self.min.x, self.max.y),
        ]
    }
}

/// `p -> scale * R(angle) * (p - pivot) + pivot + shift`: rotation and scaling about a pivot,
/// then a shift. Maps the canonical face frame to image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub scale: f32,
    pub angle: f32,
    pub pivot: Vec2,
    pub shift: Vec2,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        scale: 1.0,
        angle: 0.0,
        pivot: v2(0.0, 0.0),
        shift: v2(0.0, 0.0),
    };

    pub fn apply(&self, p: Vec2) -> Vec2 {
        (p - self.pivot).rotated(self.angle) * self.scale + self.pivot + self.shift
    }

    pub fn inverse_apply(&self, q: Vec2) -> Vec2 {
        (q - self.pivot - self.shift).rotated(-self.angle) * (1.0 / self.scale) + self.pivot
    }
}

/// Points of the quadratic Bézier `p0 -> p2` with control `p1`, `segments + 1` of them.
pub fn quadratic(p0: Vec2, p1: Vec2, p2: Vec2, segments: usize) -> Vec<Vec2> {
    let n = segments.max(1);
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            p0 * (u * u) + p1 * (2.0 * u * t) + p2 * (t * t)
        })
        .collect()
}

/// Points of the cubic Bézier `p0 -> p3` with controls `p1`, `p2`, `segments + 1` of them.
pub fn cubic(p0: Vec2, p1: Vec2, p2: Vec2, p3: Vec2, segments: usize) -> Vec<Vec2> {
    let n = segments.max(1);
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            p0 * (u * u * u) + p1 * (3.0 * u * u * t) + p2 * (3.0 * u * t * t) + p3 * (t * t * t)
        })
        .collect()
}

/// A smooth closed or open curve through `points` (centripetal-free uniform Catmull-Rom),
/// `per_span` segments between consecutive points.
pub fn catmull_rom(points: &[Vec2], per_span: usize, closed: bool) -> Vec<Vec2> {
    let n = points.len();
    if n < 3 {
        return points.to_vec();
    }
    let at = |i: isize| -> Vec2 {
        if closed {
            points[i.rem_euclid(n as isize) as usize]
        } else {
            points[i.clamp(0, n as isize - 1) as usize]
        }
    };
    let spans = if closed { n } else { n - 1 };
    let mut out = Vec::with_capacity(spans * per_span + 1);
    for s in 0..spans as isize {
        let (p0, p1, p2, p3) = (at(s - 1), at(s), at(s + 1), at(s + 2));
        for k in 0..per_span {
            let t = k as f32 / per_span as f32;
            let t2 = t * t;
            let t3 = t2 * t;
            let p = (p1 * 2.0
                + (p2 - p0) * t
                + (p0 * 2.0 - p1 * 5.0 + p2 * 4.0 - p3) * t2
                + (-p0 + p1 * 3.0 - p2 * 3.0 + p3) * t3)
                * 0.5;
            out.push(p);
        }
    }
    if !closed {
        out.push(points[n - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_round_trips() {
        let t = Similarity {
            scale: 1.1,
            angle: 0.15,
            pivot: v2(56.0, 56.0),
            shift: v2(3.0, -4.0),
        };
        let p = v2(20.0, 90.0);
        let q = t.inverse_apply(t.apply(p));
        assert!((q - p).length() < 1e-4);
        // The pivot only moves by the shift.
        assert!((t.apply(t.pivot) - v2(59.0, 52.0)).length() < 1e-5);
    }

    #[test]
    fn curves_hit_their_end_points() {
        let q = quadratic(v2(0.0, 0.0), v2(5.0, 10.0), v2(10.0, 0.0), 8);
        assert_eq!(q.len(), 9);
        assert_eq!(q[0], v2(0.0, 0.0));
        assert!((q[4] - v2(5.0, 5.0)).length() < 1e-5);
        let c = cubic(v2(0.0, 0.0), v2(0.0, 1.0), v2(1.0, 1.0), v2(1.0, 0.0), 4);
        assert!((c[4] - v2(1.0, 0.0)).length() < 1e-6);
        let pts = [v2(0.0, 0.0), v2(10.0, 0.0), v2(10.0, 10.0), v2(0.0, 10.0)];
        let ring = catmull_rom(&pts, 4, true);
        assert_eq!(ring.len(), 16);
        assert_eq!(ring[4], pts[1]);
    }
}
