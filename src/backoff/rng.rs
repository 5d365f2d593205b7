//! Where the random numbers of one request come from.
//!
//! A recipe holds an [`RngSource`]; each call to `delays()` asks it for a fresh
//! [`DelayRng`] that the delay iterator owns, so drawing a delay never allocates and
//! never touches shared state.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{Rng, SeedableRng};

/// The generator a delay iterator owns: xoshiro256++ (32 bytes), named rather than
/// rand's `SmallRng`, whose algorithm depends on the target and may change between rand
/// versions. A seed gives the same delays on every target (but see `Jitter`'s
/// Randomness section for `gauss`, whose `ln` and `sin_cos` may differ in their last bit).
pub(crate) type DelayRng = rand::rngs::Xoshiro256PlusPlus;

/// Seeds one generator per request: from the thread's rng when unseeded, from
/// `(seed, request counter)` when seeded.
#[derive(Clone, Default)]
pub(crate) struct RngSource {
    seeded: Option<Seeded>,
}

#[derive(Clone)]
struct Seeded {
    seed: u64,
    /// Shared by clones of the recipe, so every request drawn from any of them gets
    /// its own stream.
    counter: Arc<AtomicU64>,
}

impl RngSource {
    pub(crate) const fn unseeded() -> Self {
        Self { seeded: None }
    }

    pub(crate) fn seeded(seed: u64) -> Self {
        Self {
            seeded: Some(Seeded {
                seed,
                counter: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    pub(crate) fn seed(&self) -> Option<u64> {
        self.seeded.as_ref().map(|s| s.seed)
    }

    /// A generator for one request.
    pub(crate) fn rng(&self) -> DelayRng {
        match &self.seeded {
            Some(seeded) => {
                let n = seeded.counter.fetch_add(1, Ordering::Relaxed);
                DelayRng::seed_from_u64(splitmix64(seeded.seed ^ splitmix64(n)))
            }
            None => DelayRng::from_rng(&mut rand::rng()),
        }
    }
}

impl fmt::Debug for RngSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.seeded {
            Some(seeded) => f
                .debug_struct("Seeded")
                .field("seed", &seeded.seed)
                .field("requests", &seeded.counter.load(Ordering::Relaxed))
                .finish(),
            None => f.write_str("ThreadRng"),
        }
    }
}

/// A uniform sample in `[0, 1)`: the top 53 bits of one 64-bit draw, scaled. Computed
/// here, not by rand's `StandardUniform`, whose values rand may change in a minor
/// release: a seed's delays then depend on xoshiro256++'s stream alone.
pub(crate) fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    /// 2^-53: every value below 2^53 converts to `f64` exactly.
    const SCALE: f64 = 1.0 / 9_007_199_254_740_992.0;
    // Below 2^53: exact.
    let top = (rng.next_u64() >> 11) as f64;
    top * SCALE
}

/// Two independent standard normal samples (the Box–Muller transform).
pub(crate) fn standard_normal_pair(rng: &mut DelayRng) -> (f64, f64) {
    // 1 - U[0, 1) lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    let r = (-2.0 * u1.ln()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
    (r * cos, r * sin)
}

/// A 64-bit finaliser (Steele, Lea and Flood's SplitMix64), to spread nearby
/// `(seed, counter)` pairs over unrelated seeds.
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_streams_repeat_across_sources_and_differ_across_requests() {
        let a = RngSource::seeded(7);
        let b = RngSource::seeded(7);
        let (mut a1, mut a2) = (a.rng(), a.rng());
        let (mut b1, mut b2) = (b.rng(), b.rng());
        let (x1, x2) = (unit(&mut a1), unit(&mut a2));
        assert_eq!(x1, unit(&mut b1));
        assert_eq!(x2, unit(&mut b2));
        assert_ne!(x1, x2);
    }

    #[test]
    fn unseeded_streams_differ() {
        let s = RngSource::unseeded();
        assert_ne!(unit(&mut s.rng()), unit(&mut s.rng()));
    }

    #[test]
    fn normal_samples_are_finite_and_centred() {
        let mut rng = DelayRng::seed_from_u64(1);
        let n = 10_000;
        let (mut sum, mut squares, mut product) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let (a, b) = standard_normal_pair(&mut rng);
            assert!(a.is_finite() && b.is_finite());
            sum += a + b;
            squares += a * a + b * b;
            product += a * b;
        }
        let n = f64::from(2 * n);
        assert!((sum / n).abs() < 0.05);
        assert!((squares / n - 1.0).abs() < 0.05);
        assert!((product / n).abs() < 0.05, "the pair is uncorrelated");
    }
}
