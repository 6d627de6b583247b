//! A small anti-aliased rasteriser over signed distance functions.
//!
//! Shapes live in the canonical face frame; the [`Canvas`] carries the similarity transform
//! to image pixels, so rotating, scaling and shifting a face costs nothing extra: every pixel
//! centre is mapped back into the canonical frame, its signed distance to the shape is turned
//! into pixel units, and a linear ramp `softness` pixels wide gives the coverage (1 pixel:
//! a crisp anti-aliased edge; more: a soft one).

use super::geom::{v2, Bounds, Similarity, Vec2};

/// Linear RGB-ish colour, each channel nominally in [0, 1].
pub type Rgb = [f32; 3];

/// A region of the plane given by its signed distance (negative inside).
pub trait Shape: Sync {
    /// Signed distance of `p` to the boundary, canonical units; needs to be accurate only
    /// near the boundary (within a few pixels).
    fn distance(&self, p: Vec2) -> f32;
    /// Like [`Shape::distance`], but any value above `limit` may be returned once the point
    /// is known to be further out than `limit` (lets intersections skip work).
    fn distance_within(&self, p: Vec2, limit: f32) -> f32 {
        let _ = limit;
        self.distance(p)
    }
    /// Bounds of the inside, canonical units.
    fn bounds(&self) -> Bounds;
    /// A cheaper stand-in for points of `region`: where this shape's distance is within
    /// `reach` of 0 the stand-in's is the same, elsewhere it lies beyond `reach` on the same
    /// side. `None` when there is nothing to save (the shape is used as it is).
    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        let _ = (region, reach);
        None
    }
}

/// Extra room when deciding from boxes that an edge cannot matter inside a region, so that
/// rounding in the per-point formulas never makes a dropped edge count.
const CULL_MARGIN: f32 = 1e-2;

/// A shape, or a [`Shape::localised`] stand-in for it.
enum Local<'a> {
    Borrowed(&'a dyn Shape),
    Owned(Box<dyn Shape + 'a>),
}

impl<'a> Local<'a> {
    fn of(shape: &'a dyn Shape, region: Bounds, reach: f32) -> Self {
        shape
            .localised(region, reach)
            .map_or(Local::Borrowed(shape), Local::Owned)
    }

    fn get(&self) -> &dyn Shape {
        match self {
            Local::Borrowed(shape) => *shape,
            Local::Owned(shape) => shape.as_ref(),
        }
    }

    fn is_owned(&self) -> bool {
        matches!(self, Local::Owned(_))
    }
}

/// A rotated ellipse.
#[derive(Debug, Clone, Copy)]
pub struct Ellipse {
    pub centre: Vec2,
    pub radii: Vec2,
    pub angle: f32,
}

impl Ellipse {
    pub fn new(centre: Vec2, rx: f32, ry: f32) -> Self {
        Self {
            centre,
            radii: v2(rx.max(1e-3), ry.max(1e-3)),
            angle: 0.0,
        }
    }

    pub fn circle(centre: Vec2, r: f32) -> Self {
        Self::new(centre, r, r)
    }

    pub fn rotated(mut self, angle: f32) -> Self {
        self.angle = angle;
        self
    }
}

impl Shape for Ellipse {
    fn distance(&self, p: Vec2) -> f32 {
        let q = (p - self.centre).rotated(-self.angle);
        let r = self.radii;
        // First-order distance estimate f / |grad f| of f = |q / r| - 1.
        let k0 = v2(q.x / r.x, q.y / r.y).length();
        let k1 = v2(q.x / (r.x * r.x), q.y / (r.y * r.y)).length();
        if k1 < 1e-9 {
            -r.x.min(r.y)
        } else {
            k0 * (k0 - 1.0) / k1
        }
    }

    fn bounds(&self) -> Bounds {
        let (s, c) = self.angle.sin_cos();
        let (a, b) = (self.radii.x, self.radii.y);
        let hx = ((a * c).powi(2) + (b * s).powi(2)).sqrt();
        let hy = ((a * s).powi(2) + (b * c).powi(2)).sqrt();
        Bounds {
            min: self.centre - v2(hx, hy),
            max: self.centre + v2(hx, hy),
        }
    }
}

/// A simple polygon (even-odd rule), exact signed distance.
#[derive(Debug, Clone)]
pub struct Polygon {
    points: Vec<Vec2>,
    /// The edges the distance is taken over: all of them, or those near a region
    /// ([`Shape::localised`]).
    edges: Vec<Edge>,
    /// Edges that only count for the inside test: too far from the region to be the nearest,
    /// but possibly crossed by the rays cast from its points.
    crossed_only: Vec<Edge>,
    bounds: Bounds,
}

/// Edge `a -> b` of a polygon (point `i - 1` to point `i`, cyclically), with its bounds, so
/// distant edges are skipped with a few comparisons.
#[derive(Debug, Clone, Copy)]
struct Edge {
    a: Vec2,
    b: Vec2,
    bounds: Bounds,
}

impl Polygon {
    pub fn new(points: Vec<Vec2>) -> Self {
        let bounds = Bounds::of_points(&points);
        let n = points.len();
        let edges = if n < 3 {
            Vec::new()
        } else {
            (0..n)
                .map(|i| {
                    let (a, b) = (points[(i + n - 1) % n], points[i]);
                    Edge {
                        a,
                        b,
                        bounds: Bounds::of_points(&[a, b]),
                    }
                })
                .collect()
        };
        Self {
            points,
            edges,
            crossed_only: Vec::new(),
            bounds,
        }
    }

    pub fn points(&self) -> &[Vec2] {
        &self.points
    }
}

/// Whether the ray from `p` towards +x crosses edge `a -> b` (the even-odd rule's count).
fn ray_crosses(p: Vec2, a: Vec2, b: Vec2) -> bool {
    (b.y > p.y) != (a.y > p.y) && p.x < (a.x - b.x) * (p.y - b.y) / (a.y - b.y) + b.x
}

/// Squared distance from `p` to the box `b` (0 inside).
fn box_distance_sq(p: Vec2, b: &Bounds) -> f32 {
    let dx = (b.min.x - p.x).max(p.x - b.max.x).max(0.0);
    let dy = (b.min.y - p.y).max(p.y - b.max.y).max(0.0);
    dx * dx + dy * dy
}

impl Shape for Polygon {
    fn distance(&self, p: Vec2) -> f32 {
        let mut best = f32::INFINITY;
        let mut inside = false;
        for e in &self.edges {
            inside ^= ray_crosses(p, e.a, e.b);
            if box_distance_sq(p, &e.bounds) < best {
                best = best.min(segment_distance_sq(p, e.a, e.b).0);
            }
        }
        for e in &self.crossed_only {
            inside ^= ray_crosses(p, e.a, e.b);
        }
        let d = best.sqrt();
        if inside {
            -d
        } else {
            d
        }
    }

    fn bounds(&self) -> Bounds {
        self.bounds
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        let near = region.grown(reach + CULL_MARGIN);
        // A ray from a point of the region can only cross edges that span one of its rows and
        // reach to the right of its left side.
        let may_cross = |e: &Bounds| {
            e.min.y <= region.max.y + CULL_MARGIN
                && e.max.y >= region.min.y - CULL_MARGIN
                && e.max.x >= region.min.x - CULL_MARGIN
        };
        let mut edges = Vec::new();
        let mut crossed_only = Vec::new();
        for e in &self.edges {
            if e.bounds.overlaps(near) {
                edges.push(*e);
            } else if may_cross(&e.bounds) {
                crossed_only.push(*e);
            }
        }
        crossed_only.extend(self.crossed_only.iter().filter(|e| may_cross(&e.bounds)));
        // No edges at all: every point of the region is outside (a point inside would cross
        // an edge of its row), which the infinite distance says.
        Some(Box::new(Polygon {
            points: Vec::new(),
            edges,
            crossed_only,
            bounds: self.bounds,
        }))
    }
}

/// Squared distance from `p` to segment `ab` and the projection parameter in [0, 1].
fn segment_distance_sq(p: Vec2, a: Vec2, b: Vec2) -> (f32, f32) {
    let ab = b - a;
    let len_sq = ab.dot(ab);
    let t = if len_sq > 0.0 {
        ((p - a).dot(ab) / len_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let d = p - (a + ab * t);
    (d.dot(d), t)
}

/// A stroked polyline whose width goes linearly from `start_width` to `end_width`, tapering
/// to a point over the first and last `taper` fraction of its length (0: round caps).
#[derive(Debug, Clone)]
pub struct Stroke {
    /// The polyline's segments in order, or those near a region ([`Shape::localised`]).
    segments: Vec<Segment>,
    /// A one-point polyline: a dot.
    dot: Option<Vec2>,
    start_width: f32,
    end_width: f32,
    taper: f32,
    bounds: Bounds,
}

/// Segment `a -> b` of a stroke, with where its ends sit along the whole polyline
/// (cumulative length normalised to [0, 1]) and its bounds.
#[derive(Debug, Clone, Copy)]
struct Segment {
    a: Vec2,
    b: Vec2,
    along: (f32, f32),
    bounds: Bounds,
}

impl Stroke {
    pub fn new(points: Vec<Vec2>, width: f32) -> Self {
        Self::tapered(points, width, width, 0.0)
    }

    pub fn tapered(points: Vec<Vec2>, start_width: f32, end_width: f32, taper: f32) -> Self {
        let mut along = Vec::with_capacity(points.len());
        let mut total = 0.0;
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                total += (*p - points[i - 1]).length();
            }
            along.push(total);
        }
        if total > 0.0 {
            along.iter_mut().for_each(|a| *a /= total);
        }
        let half = start_width.max(end_width) * 0.5;
        let bounds = Bounds::of_points(&points).grown(half);
        let segments = (1..points.len())
            .map(|i| Segment {
                a: points[i - 1],
                b: points[i],
                along: (along[i - 1], along[i]),
                bounds: Bounds::of_points(&points[i - 1..=i]),
            })
            .collect();
        Self {
            segments,
            dot: (points.len() == 1).then(|| points[0]),
            start_width,
            end_width,
            taper: taper.clamp(0.0, 0.5),
            bounds,
        }
    }

    fn width_at(&self, s: f32) -> f32 {
        let w = self.start_width + (self.end_width - self.start_width) * s;
        if self.taper > 0.0 {
            w * (s.min(1.0 - s) / self.taper).clamp(0.0, 1.0).sqrt()
        } else {
            w
        }
    }
}

impl Shape for Stroke {
    fn distance(&self, p: Vec2) -> f32 {
        if let Some(dot) = self.dot {
            return (p - dot).length() - self.width_at(0.5) * 0.5;
        }
        if self.taper == 0.0 && self.start_width == self.end_width {
            // Constant width: one square root, distant segments skipped by their bounds.
            let mut nearest = f32::INFINITY;
            for s in &self.segments {
                if box_distance_sq(p, &s.bounds) < nearest {
                    nearest = nearest.min(segment_distance_sq(p, s.a, s.b).0);
                }
            }
            return nearest.sqrt() - self.start_width * 0.5;
        }
        let half = self.start_width.max(self.end_width) * 0.5;
        let mut best = f32::INFINITY;
        for s in &self.segments {
            // No point of this segment can beat `best` if even its box is further away.
            let reach = best + half;
            if reach > 0.0 && box_distance_sq(p, &s.bounds) >= reach * reach {
                continue;
            }
            let (d_sq, t) = segment_distance_sq(p, s.a, s.b);
            let along = s.along.0 + (s.along.1 - s.along.0) * t;
            best = best.min(d_sq.sqrt() - self.width_at(along) * 0.5);
        }
        best
    }

    fn bounds(&self) -> Bounds {
        self.bounds
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        if self.dot.is_some() {
            return None;
        }
        // A segment further than `reach` plus the widest half-width from the region cannot
        // bring any of its points within `reach` of the stroke's edge.
        let half = self.start_width.max(self.end_width) * 0.5;
        let near = region.grown(reach + half + CULL_MARGIN);
        let segments = self
            .segments
            .iter()
            .filter(|s| s.bounds.overlaps(near))
            .copied()
            .collect();
        Some(Box::new(Stroke {
            segments,
            dot: None,
            start_width: self.start_width,
            end_width: self.end_width,
            taper: self.taper,
            bounds: self.bounds,
        }))
    }
}

/// The band of width `width` centred on another shape's boundary (a ring, a frame).
pub struct Outline<'a> {
    pub shape: &'a dyn Shape,
    pub width: f32,
}

impl Shape for Outline<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        self.shape.distance(p).abs() - self.width * 0.5
    }

    fn bounds(&self) -> Bounds {
        self.shape.bounds().grown(self.width * 0.5)
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        let shape = self.shape.localised(region, reach + self.width * 0.5)?;
        Some(Box::new(LocalOutline {
            shape,
            width: self.width,
        }))
    }
}

/// [`Outline`] over a localised shape.
struct LocalOutline<'a> {
    shape: Box<dyn Shape + 'a>,
    width: f32,
}

impl Shape for LocalOutline<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        Outline {
            shape: self.shape.as_ref(),
            width: self.width,
        }
        .distance(p)
    }

    fn bounds(&self) -> Bounds {
        self.shape.bounds().grown(self.width * 0.5)
    }
}

/// Points inside both shapes.
pub struct Intersect<'a>(pub &'a dyn Shape, pub &'a dyn Shape);

impl Shape for Intersect<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        self.0.distance(p).max(self.1.distance(p))
    }

    fn distance_within(&self, p: Vec2, limit: f32) -> f32 {
        let first = self.0.distance_within(p, limit);
        if first > limit {
            return first;
        }
        first.max(self.1.distance_within(p, limit))
    }

    fn bounds(&self) -> Bounds {
        self.0.bounds().intersection(self.1.bounds())
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        LocalPair::of(Pair::Intersect, self.0, self.1, region, reach)
    }
}

/// Points inside the first shape but not the second.
pub struct Subtract<'a>(pub &'a dyn Shape, pub &'a dyn Shape);

impl Shape for Subtract<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        self.0.distance(p).max(-self.1.distance(p))
    }

    fn distance_within(&self, p: Vec2, limit: f32) -> f32 {
        let first = self.0.distance_within(p, limit);
        if first > limit {
            return first;
        }
        first.max(-self.1.distance(p))
    }

    fn bounds(&self) -> Bounds {
        self.0.bounds()
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        LocalPair::of(Pair::Subtract, self.0, self.1, region, reach)
    }
}

/// Points inside either shape.
pub struct Union<'a>(pub &'a dyn Shape, pub &'a dyn Shape);

impl Shape for Union<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        self.0.distance(p).min(self.1.distance(p))
    }

    fn bounds(&self) -> Bounds {
        self.0.bounds().union(self.1.bounds())
    }

    fn localised(&self, region: Bounds, reach: f32) -> Option<Box<dyn Shape + '_>> {
        LocalPair::of(Pair::Union, self.0, self.1, region, reach)
    }
}

/// Which combinator a [`LocalPair`] stands in for.
#[derive(Clone, Copy)]
enum Pair {
    Intersect,
    Subtract,
    Union,
}

/// [`Intersect`], [`Subtract`] or [`Union`] over localised shapes: taking the larger or
/// smaller of two distances keeps "exact within `reach`, beyond it on the same side".
struct LocalPair<'a> {
    pair: Pair,
    first: Local<'a>,
    second: Local<'a>,
}

impl<'a> LocalPair<'a> {
    fn of(
        pair: Pair,
        first: &'a dyn Shape,
        second: &'a dyn Shape,
        region: Bounds,
        reach: f32,
    ) -> Option<Box<dyn Shape + 'a>> {
        let (first, second) = (
            Local::of(first, region, reach),
            Local::of(second, region, reach),
        );
        if !first.is_owned() && !second.is_owned() {
            return None;
        }
        Some(Box::new(LocalPair {
            pair,
            first,
            second,
        }))
    }

    fn with<R>(&self, f: impl FnOnce(&dyn Shape) -> R) -> R {
        let (a, b) = (self.first.get(), self.second.get());
        match self.pair {
            Pair::Intersect => f(&Intersect(a, b)),
            Pair::Subtract => f(&Subtract(a, b)),
            Pair::Union => f(&Union(a, b)),
        }
    }
}

impl Shape for LocalPair<'_> {
    fn distance(&self, p: Vec2) -> f32 {
        self.with(|s| s.distance(p))
    }

    fn distance_within(&self, p: Vec2, limit: f32) -> f32 {
        self.with(|s| s.distance_within(p, limit))
    }

    fn bounds(&self) -> Bounds {
        self.with(|s| s.bounds())
    }
}

/// Side of the pixel tiles [`Canvas::paint`] classifies as a whole.
const TILE: usize = 4;
/// Side of the blocks of tiles that share one localised shape (a multiple of [`TILE`]).
const BLOCK: usize = 16;

/// An RGB image being drawn, with the canonical-frame-to-pixel transform of the face on it.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
    transform: Similarity,
    /// Pixel-to-canonical map as `[a, b, c, d, tx, ty]`: `x' = a x + b y + tx`,
    /// `y' = c x + d y + ty` (precomputed: no trigonometry per pixel).
    inverse: [f32; 6],
}

impl Canvas {
    pub fn new(width: usize, height: usize, transform: Similarity) -> Self {
        let origin = transform.inverse_apply(v2(0.0, 0.0));
        let ex = transform.inverse_apply(v2(1.0, 0.0)) - origin;
        let ey = transform.inverse_apply(v2(0.0, 1.0)) - origin;
        Self {
            width,
            height,
            pixels: vec![[0.0; 3]; width * height],
            transform,
            inverse: [ex.x, ey.x, ex.y, ey.y, origin.x, origin.y],
        }
    }

    fn to_canonical(&self, x: f32, y: f32) -> Vec2 {
        let [a, b, c, d, tx, ty] = self.inverse;
        v2(a * x + b * y + tx, c * x + d * y + ty)
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn pixels(&self) -> &[Rgb] {
        &self.pixels
    }

    pub fn pixels_mut(&mut self) -> &mut [Rgb] {
        &mut self.pixels
    }

    /// Sets every pixel from its pixel-space centre (backgrounds).
    pub fn fill_pixels(&mut self, mut colour_at: impl FnMut(f32, f32) -> Rgb) {
        for y in 0..self.height {
            for x in 0..self.width {
                self.pixels[y * self.width + x] = colour_at(x as f32 + 0.5, y as f32 + 0.5);
            }
        }
    }

    /// Blends a solid colour over `shape` with the given opacity and edge softness (pixels).
    pub fn fill(&mut self, shape: &dyn Shape, colour: Rgb, opacity: f32, softness: f32) {
        self.paint(shape, softness, |_| (colour, opacity));
    }

    /// Blends `paint(p) = (colour, opacity)` over `shape`, `p` in canonical units.
    pub fn paint(&mut self, shape: &dyn Shape, softness: f32, paint: impl Fn(Vec2) -> (Rgb, f32)) {
        self.paint_within(shape, None, softness, paint);
    }

    /// [`Canvas::paint`] limited to a mask's coverage (strands clipped to the hair).
    pub fn paint_masked(
        &mut self,
        shape: &dyn Shape,
        mask: &Mask,
        softness: f32,
        paint: impl Fn(Vec2) -> (Rgb, f32),
    ) {
        self.paint_within(shape, Some(mask), softness, paint);
    }

    /// The coverage of `shape` at every pixel, to clip later drawing to it cheaply.
    pub fn mask(&self, shape: &dyn Shape, softness: f32) -> Mask {
        let mut coverage = vec![0.0; self.pixels.len()];
        self.visit(shape, softness, |i, _, c| coverage[i] = c);
        Mask { coverage }
    }

    fn paint_within(
        &mut self,
        shape: &dyn Shape,
        mask: Option<&Mask>,
        softness: f32,
        paint: impl Fn(Vec2) -> (Rgb, f32),
    ) {
        let mut pixels = std::mem::take(&mut self.pixels);
        self.visit(shape, softness, |i, q, coverage| {
            let coverage = coverage * mask.map_or(1.0, |m| m.coverage[i]);
            if coverage <= 0.0 {
                return;
            }
            let (colour, opacity) = paint(q);
            let a = (coverage * opacity).clamp(0.0, 1.0);
            let px = &mut pixels[i];
            for c in 0..3 {
                px[c] += (colour[c] - px[c]) * a;
            }
        });
        self.pixels = pixels;
    }

    /// Calls `visit(pixel index, canonical point, coverage)` for every pixel `shape` covers
    /// (coverage in (0, 1]), `softness` pixels of edge ramp.
    fn visit(&self, shape: &dyn Shape, softness: f32, mut visit: impl FnMut(usize, Vec2, f32)) {
        let softness = softness.max(0.5);
        let scale = self.transform.scale;
        let grow = softness / scale;
        let canonical = shape.bounds().grown(grow);
        if !(canonical.min.x <= canonical.max.x && canonical.min.y <= canonical.max.y) {
            return;
        }
        let corners = canonical.corners().map(|c| self.transform.apply(c));
        let pixel = Bounds::of_points(&corners);
        let x0 = (pixel.min.x.floor().max(0.0)) as usize;
        let y0 = (pixel.min.y.floor().max(0.0)) as usize;
        let x1 = (pixel.max.x.ceil().min(self.width as f32)).max(0.0) as usize;
        let y1 = (pixel.max.y.ceil().min(self.height as f32)).max(0.0) as usize;
        // Beyond this canonical distance a pixel gets no coverage.
        let limit = 0.5 * softness / scale;
        // Tiles whose centre is far enough from the edge are wholly outside (skipped) or
        // wholly inside (coverage 1) without evaluating the shape at every pixel; the slack
        // allows for distance estimates that are not exactly 1-Lipschitz (ellipses). Each
        // block of tiles, and then each tile evaluated per pixel, sees the shape localised to
        // it (only the polygon edges and stroke segments that can matter there), which gives
        // the same coverage for less work.
        let widest = std::f32::consts::SQRT_2 * (TILE - 1) as f32 * 0.5;
        let tile_slack = |radius: f32| 1.25 * radius + 0.5 * softness + 0.5;
        for by in (y0..y1).step_by(BLOCK) {
            for bx in (x0..x1).step_by(BLOCK) {
                let (bxe, bye) = ((bx + BLOCK).min(x1), (by + BLOCK).min(y1));
                let block = self.pixel_centre_bounds(bx, by, bxe, bye);
                let coarse = Local::of(shape, block, tile_slack(widest) / scale);
                let coarse = coarse.get();
                for ty in (by..bye).step_by(TILE) {
                    for tx in (bx..bxe).step_by(TILE) {
                        let (xe, ye) = ((tx + TILE).min(bxe), (ty + TILE).min(bye));
                        let centre =
                            self.to_canonical((tx + xe) as f32 * 0.5, (ty + ye) as f32 * 0.5);
                        let radius = v2((xe - tx - 1) as f32, (ye - ty - 1) as f32).length() * 0.5;
                        let slack = tile_slack(radius);
                        let dc = coarse.distance_within(centre, slack / scale) * scale;
                        if dc > slack {
                            continue;
                        }
                        let inside = dc < -slack;
                        let fine = if inside {
                            None
                        } else {
                            let tile = self.pixel_centre_bounds(tx, ty, xe, ye);
                            Some(Local::of(coarse, tile, limit))
                        };
                        for y in ty..ye {
                            for x in tx..xe {
                                let q = self.to_canonical(x as f32 + 0.5, y as f32 + 0.5);
                                let coverage = match &fine {
                                    None => 1.0,
                                    Some(fine) => {
                                        let d = fine.get().distance_within(q, limit) * scale;
                                        (0.5 - d / softness).clamp(0.0, 1.0)
                                    }
                                };
                                if coverage > 0.0 {
                                    visit(y * self.width + x, q, coverage);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Canonical-frame bounds of the centres of pixels `[x0, x1) x [y0, y1)`.
    fn pixel_centre_bounds(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Bounds {
        let (a, b) = (x0 as f32 + 0.5, y0 as f32 + 0.5);
        let (c, d) = (x1 as f32 - 0.5, y1 as f32 - 0.5);
        Bounds::of_points(&[
            self.to_canonical(a, b),
            self.to_canonical(c, b),
            self.to_canonical(c, d),
            self.to_canonical(a, d),
        ])
    }
}

/// Per-pixel coverage of a shape on one canvas ([`Canvas::mask`]).
#[derive(Debug, Clone)]
pub struct Mask {
    coverage: Vec<f32>,
}

/// `a + (b - a) * t` per channel.
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Every channel times `k`.
pub fn shade(a: Rgb, k: f32) -> Rgb {
    [a[0] * k, a[1] * k, a[2] * k]
}

#[cfg(test)]
mod tests {
    use super::super::rng::SynthRng;
    use super::*;

    fn canvas() -> Canvas {
        Canvas::new(32, 32, Similarity::IDENTITY)
    }

    #[test]
    fn ellipse_distance_is_exact_on_the_axes() {
        let e = Ellipse::new(v2(10.0, 10.0), 6.0, 3.0);
        assert!((e.distance(v2(18.0, 10.0)) - 2.0).abs() < 1e-4);
        assert!((e.distance(v2(10.0, 12.0)) + 1.0).abs() < 0.2);
        assert!(e.distance(v2(10.0, 10.0)) < 0.0);
        let r = Ellipse::new(v2(0.0, 0.0), 6.0, 3.0).rotated(std::f32::consts::FRAC_PI_2);
        assert!((r.distance(v2(0.0, 8.0)) - 2.0).abs() < 1e-4);
        let b = r.bounds();
        assert!((b.max.y - 6.0).abs() < 1e-4 && (b.max.x - 3.0).abs() < 1e-4);
    }

    #[test]
    fn polygon_distance_is_signed_and_exact() {
        let square = Polygon::new(vec![
            v2(0.0, 0.0),
            v2(10.0, 0.0),
            v2(10.0, 10.0),
            v2(0.0, 10.0),
        ]);
        assert!((square.distance(v2(5.0, 5.0)) + 5.0).abs() < 1e-5);
        assert!((square.distance(v2(13.0, 5.0)) - 3.0).abs() < 1e-5);
        assert!((square.distance(v2(13.0, 14.0)) - 5.0).abs() < 1e-5);
    }

    #[test]
    fn stroke_width_and_taper() {
        let s = Stroke::new(vec![v2(0.0, 0.0), v2(10.0, 0.0)], 4.0);
        assert!((s.distance(v2(5.0, 3.0)) - 1.0).abs() < 1e-5);
        let t = Stroke::tapered(vec![v2(0.0, 0.0), v2(10.0, 0.0)], 4.0, 4.0, 0.5);
        // Widest in the middle, a point at the ends.
        assert!((t.distance(v2(5.0, 2.0))).abs() < 1e-5);
        assert!((t.distance(v2(0.0, 1.0)) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn fill_covers_the_area_of_the_shape() {
        let mut c = canvas();
        let disc = Ellipse::circle(v2(16.0, 16.0), 8.0);
        c.fill(&disc, [1.0, 1.0, 1.0], 1.0, 1.0);
        let area: f32 = c.pixels().iter().map(|p| p[0]).sum();
        let expected = std::f32::consts::PI * 64.0;
        assert!(
            (area - expected).abs() / expected < 0.01,
            "{area} vs {expected}"
        );
        // Anti-aliased: some partially covered pixels on the rim.
        assert!(c.pixels().iter().any(|p| p[0] > 0.1 && p[0] < 0.9));
    }

    #[test]
    fn transform_moves_and_scales_the_shape() {
        let t = Similarity {
            scale: 2.0,
            angle: 0.0,
            pivot: v2(0.0, 0.0),
            shift: v2(4.0, 0.0),
        };
        let mut c = Canvas::new(32, 32, t);
        c.fill(&Ellipse::circle(v2(6.0, 8.0), 3.0), [1.0; 3], 1.0, 1.0);
        // Canonical centre (6, 8) lands on pixel (16, 16); radius 3 becomes 6.
        assert!(c.pixels()[16 * 32 + 16][0] > 0.99);
        assert!(c.pixels()[16 * 32 + 20][0] > 0.99);
        assert!(c.pixels()[16 * 32 + 23][0] < 0.01);
        let area: f32 = c.pixels().iter().map(|p| p[0]).sum();
        assert!((area - std::f32::consts::PI * 36.0).abs() < 2.0);
    }

    /// Per-pixel coverage without tiles, for comparison with [`Canvas::paint`].
    fn brute_force(shape: &dyn Shape, t: Similarity, softness: f32) -> Vec<f32> {
        let c = Canvas::new(48, 48, t);
        (0..48 * 48)
            .map(|i| {
                let q = c.to_canonical((i % 48) as f32 + 0.5, (i / 48) as f32 + 0.5);
                (0.5 - shape.distance(q) * t.scale / softness).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// Checks the [`Shape::localised`] contract of `shape` over random regions: the same
    /// distance where it is within `reach`, the same side beyond `reach` elsewhere.
    fn check_localised(name: &str, shape: &dyn Shape, rng: &mut SynthRng) -> usize {
        let mut exact = 0;
        for _ in 0..300 {
            let corner = v2(rng.range(-4.0, 48.0), rng.range(-4.0, 48.0));
            let size = v2(rng.range(0.5, 16.0), rng.range(0.5, 16.0));
            let region = Bounds::of_points(&[corner, corner + size]);
            let reach = rng.range(0.3, 4.0);
            let Some(local) = shape.localised(region, reach) else {
                continue;
            };
            for _ in 0..20 {
                let p = v2(
                    rng.range(region.min.x, region.max.x),
                    rng.range(region.min.y, region.max.y),
                );
                let (full, near) = (shape.distance(p), local.distance(p));
                if full.abs() <= reach {
                    assert_eq!(
                        full, near,
                        "{name} at {p:?}, region {region:?}, reach {reach}"
                    );
                    exact += 1;
                } else {
                    assert!(
                        near.signum() == full.signum() && near.abs() > reach,
                        "{name} at {p:?}: {near} stands in for {full} (reach {reach})"
                    );
                }
            }
        }
        exact
    }

    #[test]
    fn localised_shapes_keep_the_distance_near_the_edge() {
        let mut rng = SynthRng::keyed(77, &[0]);
        // A concave polygon (a star), a bent tapered stroke, a constant-width one, and
        // combinations of them.
        let star = Polygon::new(
            (0..14)
                .map(|i| {
                    let angle = i as f32 * std::f32::consts::TAU / 14.0;
                    let r = if i % 2 == 0 { 20.0 } else { 9.0 };
                    v2(22.0 + r * angle.cos(), 22.0 + r * angle.sin())
                })
                .collect(),
        );
        let bent = Stroke::tapered(
            vec![v2(2.0, 40.0), v2(14.0, 8.0), v2(30.0, 30.0), v2(44.0, 4.0)],
            5.0,
            1.0,
            0.25,
        );
        let line = Stroke::new(vec![v2(0.0, 20.0), v2(20.0, 24.0), v2(46.0, 18.0)], 2.0);
        let disc = Ellipse::circle(v2(30.0, 26.0), 10.0);
        let ring = Outline {
            shape: &star,
            width: 3.0,
        };
        let shapes: Vec<(&str, Box<dyn Shape + '_>)> = vec![
            ("star", Box::new(star.clone())),
            ("bent", Box::new(bent.clone())),
            ("line", Box::new(line.clone())),
            ("ring", Box::new(ring)),
            ("star and disc", Box::new(Intersect(&star, &disc))),
            ("star less bent", Box::new(Subtract(&star, &bent))),
            ("line or disc", Box::new(Union(&line, &disc))),
        ];
        for (name, shape) in &shapes {
            let exact = check_localised(name, shape.as_ref(), &mut rng);
            assert!(
                exact > 100,
                "{name}: only {exact} points near the edge were checked"
            );
        }
        // An ellipse is cheap as it is.
        assert!(disc.localised(disc.bounds(), 1.0).is_none());
    }

    #[test]
    fn tiled_painting_equals_per_pixel_coverage() {
        let t = Similarity {
            scale: 1.1,
            angle: 0.2,
            pivot: v2(24.0, 24.0),
            shift: v2(1.5, -2.0),
        };
        let ring = Ellipse::new(v2(24.0, 22.0), 15.0, 6.0).rotated(0.4);
        let shapes: Vec<Box<dyn Shape>> = vec![
            Box::new(Polygon::new(vec![
                v2(5.0, 5.0),
                v2(40.0, 9.0),
                v2(30.0, 44.0),
                v2(12.0, 30.0),
            ])),
            Box::new(Stroke::tapered(
                vec![v2(4.0, 40.0), v2(20.0, 10.0), v2(44.0, 30.0)],
                3.0,
                1.0,
                0.2,
            )),
            Box::new(ring),
        ];
        for (k, shape) in shapes.iter().enumerate() {
            for softness in [1.0, 4.0] {
                let mut c = Canvas::new(48, 48, t);
                c.fill(shape.as_ref(), [1.0; 3], 1.0, softness);
                let expected = brute_force(shape.as_ref(), t, softness);
                let worst = c
                    .pixels()
                    .iter()
                    .zip(&expected)
                    .map(|(p, e)| (p[0] - e).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-5,
                    "shape {k} softness {softness}: off by {worst}"
                );
            }
        }
    }

    #[test]
    fn combinators() {
        let a = Ellipse::circle(v2(10.0, 16.0), 8.0);
        let b = Ellipse::circle(v2(20.0, 16.0), 8.0);
        let mut c = canvas();
        c.fill(&Intersect(&a, &b), [1.0; 3], 1.0, 1.0);
        assert!(c.pixels()[16 * 32 + 15][0] > 0.99);
        assert!(c.pixels()[16 * 32 + 5][0] < 0.01);
        let mut c = canvas();
        c.fill(&Subtract(&a, &b), [1.0; 3], 1.0, 1.0);
        assert!(c.pixels()[16 * 32 + 5][0] > 0.99);
        assert!(c.pixels()[16 * 32 + 15][0] < 0.01);
        let ring = Outline {
            shape: &a,
            width: 2.0,
        };
        assert!(ring.distance(v2(18.0, 16.0)) < 0.0);
        assert!(ring.distance(v2(10.0, 16.0)) > 0.0);
    }
}
