//! Brooker's "decorrelated jitter": each delay drawn from the previous one.

use std::time::Duration;

use super::rng::DelayRng;

use super::Backoff;
use super::rng::{RngSource, unit};
use super::saturate::{clamp_secs, secs_to_duration};

/// Retry `i` waits `min(cap, U[base, 3 × previous))`, where `previous` is the delay
/// before it and starts at `base` (Marc Brooker, *Exponential Backoff and Jitter*).
///
/// Delays are whole nanoseconds, and stay in that range when rounded to them; only
/// when `3 × previous` is `base` itself (a zero `base`, or a `cap` a third of `base` or
/// below), and the range holds no whole nanosecond, is the delay that top.
///
/// The delays grow roughly exponentially but each one is random, so clients that failed
/// together spread out quickly. The jitter is built in: there is no `with_jitter`.
/// With `base` zero every delay is zero; with `cap` below `base` every delay is `cap`.
///
/// Each request draws its own random stream; [`seeded`](Self::seeded) makes the
/// streams reproducible (see [`Jitter`'s Randomness section](super::Jitter#randomness)).
///
/// # Default
///
/// | parameter | default | why |
/// |---|---|---|
/// | `attempts` | 3 | as the other backoffs here |
/// | `base` | 1 s | pjrpc's base delays |
/// | `cap` | 20 s | the AWS SDKs' maximum backoff |
/// | seed | none: seeded from the thread's random generator | |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
///
/// const B: DecorrelatedJitterBackoff =
///     DecorrelatedJitterBackoff::new(5, Duration::from_millis(100), Duration::from_secs(2));
///
/// let mut previous = Duration::from_millis(100);
/// for d in B.delays() {
///     assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(2));
///     assert!(d <= previous * 3);
///     previous = d;
/// }
/// ```
#[derive(Debug, Clone)]
pub struct DecorrelatedJitterBackoff {
    attempts: usize,
    base: Duration,
    cap: Duration,
    rng: RngSource,
}

impl DecorrelatedJitterBackoff {
    /// `attempts` retries starting from `base`, none longer than `cap`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
    ///
    /// let b = DecorrelatedJitterBackoff::new(4, Duration::from_secs(1), Duration::from_secs(10));
    /// assert_eq!(b.delays().count(), 4);
    /// ```
    pub const fn new(attempts: usize, base: Duration, cap: Duration) -> Self {
        Self {
            attempts,
            base,
            cap,
            rng: RngSource::unseeded(),
        }
    }

    /// Sets the number of retries (delays yielded).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
    ///
    /// assert_eq!(DecorrelatedJitterBackoff::default().with_attempts(6).delays().count(), 6);
    /// ```
    #[must_use]
    pub const fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the smallest delay, and the starting point of the walk.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
    ///
    /// let b = DecorrelatedJitterBackoff::default().with_base(Duration::ZERO);
    /// assert!(b.delays().all(|d| d == Duration::ZERO));
    /// ```
    #[must_use]
    pub const fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the largest delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
    ///
    /// let b = DecorrelatedJitterBackoff::default().with_max_delay(Duration::from_millis(1500));
    /// assert!(b.delays().all(|d| d <= Duration::from_millis(1500)));
    /// ```
    #[must_use]
    pub const fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.cap = max_delay;
        self
    }

    /// Makes the random streams reproducible: the `n`-th request drawn from this recipe
    /// (clones included) is seeded from `(seed, n)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff};
    ///
    /// let a = DecorrelatedJitterBackoff::default().seeded(3);
    /// let b = DecorrelatedJitterBackoff::default().seeded(3);
    /// assert!(a.delays().eq(b.delays()));
    /// ```
    #[must_use]
    pub fn seeded(mut self, seed: u64) -> Self {
        self.rng = RngSource::seeded(seed);
        self
    }

    /// The number of retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::DecorrelatedJitterBackoff;
    ///
    /// assert_eq!(DecorrelatedJitterBackoff::default().attempts(), 3);
    /// ```
    pub const fn attempts(&self) -> usize {
        self.attempts
    }

    /// The smallest delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::DecorrelatedJitterBackoff;
    ///
    /// assert_eq!(DecorrelatedJitterBackoff::default().base(), Duration::from_secs(1));
    /// ```
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::DecorrelatedJitterBackoff;
    ///
    /// assert_eq!(DecorrelatedJitterBackoff::default().cap(), Duration::from_secs(20));
    /// ```
    pub const fn cap(&self) -> Duration {
        self.cap
    }
}

impl Default for DecorrelatedJitterBackoff {
    fn default() -> Self {
        Self::new(3, Duration::from_secs(1), Duration::from_secs(20))
    }
}

impl Backoff for DecorrelatedJitterBackoff {
    type Delays = DecorrelatedJitterDelays;

    fn delays(&self) -> DecorrelatedJitterDelays {
        let base = clamp_secs(self.base.as_secs_f64());
        DecorrelatedJitterDelays {
            remaining: self.attempts,
            base,
            cap: clamp_secs(self.cap.as_secs_f64()),
            cap_delay: self.cap,
            previous: base,
            base_delay: self.base,
            previous_delay: self.base,
            rng: self.rng.rng(),
        }
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        (self.attempts, Some(self.attempts))
    }
}

/// The delays of one request drawn from a [`DecorrelatedJitterBackoff`].
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::backoff::{Backoff, DecorrelatedJitterBackoff, DecorrelatedJitterDelays};
///
/// let delays: DecorrelatedJitterDelays = DecorrelatedJitterBackoff::default().delays();
/// assert_eq!(delays.len(), 3);
/// ```
#[derive(Debug)]
pub struct DecorrelatedJitterDelays {
    remaining: usize,
    base: f64,
    cap: f64,
    /// The cap again, exact: `f64` seconds may round above it.
    cap_delay: Duration,
    previous: f64,
    /// The base again, exact: no delay is shorter, unless the cap is.
    base_delay: Duration,
    /// The previous delay as handed out, exact: a delay is less than three times it.
    previous_delay: Duration,
    rng: DelayRng,
}

impl Iterator for DecorrelatedJitterDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.remaining = self.remaining.checked_sub(1)?;
        let high = clamp_secs(3.0 * self.previous);
        let drawn = self.base + (high - self.base) * unit(&mut self.rng);
        self.previous = drawn.min(self.cap);
        // Rounding to whole nanoseconds must not take a delay past either bound: the top
        // one is left out of the range, unless it holds no whole nanosecond below it.
        let three = self.previous_delay.saturating_mul(3);
        let top = if three > self.base_delay {
            three.saturating_sub(Duration::from_nanos(1))
        } else {
            three
        };
        let delay = secs_to_duration(self.previous)
            .max(self.base_delay)
            .min(top)
            .min(self.cap_delay);
        self.previous_delay = delay;
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for DecorrelatedJitterDelays {}
impl std::iter::FusedIterator for DecorrelatedJitterDelays {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The top of `[base, 3 × previous)` is left out at any scale: a draw within half a
    /// nanosecond of it rounded up to it once (28 times in 100,000 from a 1 µs base).
    #[test]
    fn a_delay_never_reaches_three_times_the_previous() {
        let base = Duration::from_micros(1);
        let b = DecorrelatedJitterBackoff::new(4, base, Duration::from_secs(1)).seeded(1);
        for _ in 0..100_000 {
            let mut previous = base;
            for delay in b.delays() {
                assert!(
                    base <= delay && delay < previous * 3,
                    "{delay:?} {previous:?}"
                );
                previous = delay;
            }
        }
        // A range with no whole nanosecond below its top: the top.
        let one = DecorrelatedJitterBackoff::new(2, Duration::ZERO, Duration::from_secs(1));
        assert!(one.delays().all(|d| d.is_zero()));
    }

    #[test]
    fn bounds_follow_the_previous_delay() {
        let b = DecorrelatedJitterBackoff::new(
            1_000,
            Duration::from_millis(10),
            Duration::from_secs(5),
        )
        .seeded(11);
        let mut previous = Duration::from_millis(10);
        let mut n = 0;
        for d in b.delays() {
            assert!(d >= Duration::from_millis(10), "{d:?}");
            assert!(d <= Duration::from_secs(5));
            assert!(d <= previous * 3);
            previous = d;
            n += 1;
        }
        assert_eq!(n, 1_000);
        // It does reach the cap on a long run.
        assert!(b.delays().any(|d| d == Duration::from_secs(5)));
    }

    /// The first delay is drawn from all of `[base, 3 × base)`: over 1,000 requests
    /// some land in the bottom and some in the top 5% of it, and none on `3 × base`
    /// itself. (For any seed, a correct draw fails this with probability below
    /// 2 × 0.95^1000 + 1,000 × 2.5e-10 < 1e-6: the last term for a draw within half a
    /// nanosecond of 3 s, which would round onto it.)
    #[test]
    fn first_delay_spreads_over_base_to_three_times_base() {
        let b = DecorrelatedJitterBackoff::new(1, Duration::from_secs(1), Duration::from_secs(60))
            .seeded(13);
        let firsts: Vec<Duration> = (0..1_000).filter_map(|_| b.delays().next()).collect();
        assert_eq!(firsts.len(), 1_000);
        let min = *firsts.iter().min().unwrap();
        let max = *firsts.iter().max().unwrap();
        assert!(
            min >= Duration::from_secs(1) && min < Duration::from_millis(1100),
            "{min:?}"
        );
        assert!(
            max >= Duration::from_millis(2900) && max < Duration::from_secs(3),
            "{max:?}"
        );
    }

    /// A seed's delays are the same on every target and with every `rand` release
    /// (README), as for [`Jitter`](super::super::Jitter).
    #[test]
    fn a_seed_gives_these_delays_everywhere() {
        let b = DecorrelatedJitterBackoff::new(4, Duration::from_secs(1), Duration::from_secs(20))
            .seeded(42);
        let nanos: Vec<u128> = b.delays().map(|d| d.as_nanos()).collect();
        // 1 s + 2 s × u, then 1 s + (3 × previous − 1 s) × u, with the same draws u as
        // `Jitter::full().seeded(42)`'s first request.
        assert_eq!(
            nanos,
            [2_737_137_207, 5_688_235_667, 13_124_204_078, 2_714_916_692]
        );
    }

    /// The walk's state is the capped delay: after a delay at the cap (1.5 s) the next
    /// is drawn from `[1 s, 4.5 s)`, below the cap about one time in seven, however
    /// long the run. A walk whose state outgrew the cap would sit on it for ever, and
    /// the spread that keeps clients apart would be gone.
    #[test]
    fn late_delays_still_spread_below_the_cap() {
        let cap = Duration::from_millis(1500);
        let b = DecorrelatedJitterBackoff::new(200, Duration::from_secs(1), cap).seeded(7);
        let below: usize = (0..10)
            .map(|_| b.delays().skip(20).filter(|d| *d < cap).count())
            .sum();
        // 1,800 late delays, about 260 of them expected below the cap.
        assert!(below > 100, "{below} of 1,800 below the cap");
    }

    /// `d < previous * 3` holds in whole nanoseconds too, where the walk's `f64` state
    /// can round (1.4 ns is handed out as 1 ns, and a draw up to 4.2 ns would follow).
    #[test]
    fn never_three_times_the_previous_delay_even_in_nanoseconds() {
        let b = DecorrelatedJitterBackoff::new(4, Duration::from_nanos(1), Duration::from_secs(1))
            .seeded(3);
        for _ in 0..2_000 {
            let mut previous = Duration::from_nanos(1);
            for d in b.delays() {
                assert!(d < previous * 3, "{d:?} after {previous:?}");
                previous = d;
            }
        }
    }

    #[test]
    fn size_hint_counts_down_exactly() {
        let b = DecorrelatedJitterBackoff::default().with_attempts(2);
        crate::backoff::assert_size_hint_counts_down(&b, 2);
    }

    #[test]
    fn degenerate_parameters() {
        let b = DecorrelatedJitterBackoff::new(5, Duration::from_secs(2), Duration::from_secs(1));
        assert!(b.delays().eq([Duration::from_secs(1); 5]));
        let b = DecorrelatedJitterBackoff::new(5, Duration::ZERO, Duration::from_secs(1));
        assert!(b.delays().eq([Duration::ZERO; 5]));
        let b = DecorrelatedJitterBackoff::new(0, Duration::ZERO, Duration::ZERO);
        assert_eq!(b.delays().next(), None);
        let b = DecorrelatedJitterBackoff::new(2_000, Duration::MAX, Duration::MAX);
        assert!(b.delays().all(|d| d == Duration::MAX));
    }

    #[test]
    fn seeded_reproducible_yet_distinct_per_request() {
        let a = DecorrelatedJitterBackoff::default().seeded(5);
        let b = a.clone();
        let c = DecorrelatedJitterBackoff::default().seeded(5);
        let a1: Vec<_> = a.delays().collect();
        let b1: Vec<_> = b.delays().collect();
        assert_ne!(a1, b1, "clones share the request counter");
        assert_eq!(a1, c.delays().collect::<Vec<_>>());
        assert_eq!(b1, c.delays().collect::<Vec<_>>());
    }

    #[test]
    fn unseeded_requests_differ() {
        let b = DecorrelatedJitterBackoff::default();
        assert!(!b.delays().eq(b.delays()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn length_and_cap(attempts in 0usize..500, base in any::<u64>(), cap in any::<u64>(), seed in any::<u64>()) {
            let cap = Duration::from_nanos(cap);
            let b = DecorrelatedJitterBackoff::new(attempts, Duration::from_nanos(base), cap).seeded(seed);
            let d: Vec<_> = b.delays().collect();
            prop_assert_eq!(d.len(), attempts);
            prop_assert!(d.iter().all(|&d| d <= cap));
        }
    }
}
