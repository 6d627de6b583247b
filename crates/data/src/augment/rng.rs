//! Per-sample random streams, and the few draws Python's `random` module makes in timm.
//!
//! Every sample gets its own ChaCha8 stream seeded from `(seed, epoch, position)`, so what a
//! sample sees depends only on where it is in the epoch, never on which thread ran it or on
//! how many samples ran before it. ChaCha8 is value-stable across `rand_chacha` releases.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random stream one sample's loading and augmentation draw from.
pub type SampleRng = ChaCha8Rng;

/// The stream of sample `position` (its place in the rank's epoch order) in `epoch`;
/// `stream` separates independent uses of the same position (e.g. retries after a bad sample).
pub fn sample_rng(seed: u64, epoch: u64, position: u64, stream: u64) -> SampleRng {
    let mut state = splitmix64(seed ^ 0x5357_494E_4641_4345); // "SWINFACE"
    let mut key = [0u8; 32];
    for (chunk, word) in key
        .chunks_exact_mut(8)
        .zip([epoch, position, stream, 0x6461_7461])
    {
        state = splitmix64(state ^ word);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// One step of SplitMix64: a bijective 64-bit mixer, used to spread seeds over the key.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The draws of Python's `random` module that timm and torchvision use, with their ranges.
pub trait PyRandom {
    /// `random.random()`: uniform on [0, 1).
    fn random01(&mut self) -> f64;
    /// `random.uniform(a, b)`: `a + (b - a) * random()`.
    fn uniform(&mut self, a: f64, b: f64) -> f64;
    /// `random.randint(a, b)`: uniform on the integers a..=b.
    fn randint(&mut self, a: i64, b: i64) -> i64;
    /// `random.gauss(mu, sigma)`: normal (Box-Muller here; equal in distribution).
    fn gauss(&mut self, mu: f64, sigma: f64) -> f64;
}

impl<R: Rng + ?Sized> PyRandom for R {
    fn random01(&mut self) -> f64 {
        Rng::random::<f64>(self)
    }

    fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random01()
    }

    fn randint(&mut self, a: i64, b: i64) -> i64 {
        if b <= a {
            return a;
        }
        self.random_range(a..=b)
    }

    fn gauss(&mut self, mu: f64, sigma: f64) -> f64 {
        mu + sigma * standard_normal(self)
    }
}

/// One standard normal draw (Box-Muller, the cosine branch).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - Rng::random::<f64>(rng);
    let u2 = Rng::random::<f64>(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fills `out` with standard normal draws in float32, two per Box-Muller pair (as
/// `torch.Tensor.normal_` does on the CPU).
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        let u1 = 1.0 - Rng::random::<f64>(rng);
        let u2 = Rng::random::<f64>(rng);
        let radius = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        pair[0] = (radius * cos) as f32;
        pair[1] = (radius * sin) as f32;
    }
    if let [last] = pairs.into_remainder() {
        *last = standard_normal(rng) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |s: u64, e: u64, p: u64, k: u64| {
            let mut rng = sample_rng(s, e, p, k);
            (0..4).map(|_| rng.random01()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 2, 3, 0), draw(1, 2, 3, 0));
        let base = draw(1, 2, 3, 0);
        for other in [
            draw(2, 2, 3, 0),
            draw(1, 3, 3, 0),
            draw(1, 2, 4, 0),
            draw(1, 2, 3, 1),
        ] {
            assert_ne!(base, other);
        }
        // Swapping epoch and position must not give the same stream.
        assert_ne!(draw(0, 5, 7, 0), draw(0, 7, 5, 0));
    }

    #[test]
    fn randint_is_inclusive_and_uniform() {
        let mut rng = sample_rng(7, 0, 0, 0);
        let mut counts = [0u32; 3];
        let n = 30_000;
        for _ in 0..n {
            let v = rng.randint(2, 4);
            counts[(v - 2) as usize] += 1;
        }
        // Each bin ~ Binomial(n, 1/3): 4 sigma = 4 * sqrt(n * 2/9) ~ 326.
        for c in counts {
            assert!(
                (f64::from(c) - f64::from(n) / 3.0).abs() < 330.0,
                "{counts:?}"
            );
        }
        assert_eq!(rng.randint(5, 5), 5);
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = sample_rng(11, 0, 0, 0);
        let mut values = vec![0f32; 200_001];
        fill_standard_normal(&mut rng, &mut values);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let kurt = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(4))
            .sum::<f64>()
            / n
            / (var * var);
        // Standard errors: mean 1/sqrt(n) ~ 0.0022, variance sqrt(2/n) ~ 0.0032, kurtosis
        // sqrt(24/n) ~ 0.011; bounds are about 4 of them.
        assert!(mean.abs() < 0.009, "mean {mean}");
        assert!((var - 1.0).abs() < 0.013, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        let within_one = values.iter().filter(|v| v.abs() < 1.0).count() as f64 / n;
        assert!((within_one - 0.682_689).abs() < 0.005, "{within_one}");
    }
}
