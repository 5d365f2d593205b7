//! Delays that grow by a constant factor.

use std::time::Duration;

use super::error::finite_non_negative;
use super::jitter::JitterState;
use super::saturate::{cap, clamp_secs};
use super::{Backoff, InvalidBackoff, Jitter};

/// Retry `i` waits `base × factor^i + jitter(i)`, then `min(max_delay, ·)` when a cap is
/// set: pjrpc's `ExponentialBackoff`.
///
/// The arithmetic saturates: a huge factor or number of attempts yields delays bounded
/// by the cap, or by `Duration::MAX` without one; it never panics or overflows.
///
/// # Default
///
/// | parameter | default | why |
/// |---|---|---|
/// | `attempts` | 3 | retries, not counting the first try (4 attempts in all), as pjrpc counts; pjrpc has no default; gRPC and the AWS SDKs default to 3 attempts with the first included |
/// | `base` | 1 s | pjrpc's `base=1.0` |
/// | `factor` | 2.0 | pjrpc's `factor=2.0` |
/// | `max_delay` | none | pjrpc's `max_value=None` |
/// | `jitter` | [`Jitter::none()`] | pjrpc's `jitter=lambda attempt: 0.0` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
///
/// // pjrpc: ExponentialBackoff(attempts=3, base=1.0, factor=2.0)
/// let b = ExponentialBackoff::new(3, Duration::from_secs(1), 2.0)?;
/// assert!(b.delays().eq([1, 2, 4].map(Duration::from_secs)));
///
/// // The same without a `Result`, as a `const` item, capped at 3 s.
/// const B: ExponentialBackoff =
///     ExponentialBackoff::doubling(4, Duration::from_secs(1)).with_max_delay(Duration::from_secs(3));
/// assert!(B.delays().eq([1, 2, 3, 3].map(Duration::from_secs)));
/// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExponentialBackoff {
    attempts: usize,
    base: Duration,
    factor: f64,
    max_delay: Option<Duration>,
    jitter: Jitter,
}

impl ExponentialBackoff {
    /// `attempts` retries, starting at `base` and multiplied by `factor` each time.
    ///
    /// A factor below 1 gives shrinking delays (0: `base` once, then no wait at all); 1
    /// gives a constant one.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] if `factor` is negative, NaN or infinite.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::new(3, Duration::from_millis(100), 3.0)?;
    /// assert!(b.delays().eq([100, 300, 900].map(Duration::from_millis)));
    /// assert!(ExponentialBackoff::new(3, Duration::from_secs(1), -1.0).is_err());
    /// let once = ExponentialBackoff::new(3, Duration::from_millis(100), 0.0)?;
    /// assert!(once.delays().eq([100, 0, 0].map(Duration::from_millis)));
    /// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
    /// ```
    pub fn new(attempts: usize, base: Duration, factor: f64) -> Result<Self, InvalidBackoff> {
        Self::doubling(attempts, base).with_factor(factor)
    }

    /// `attempts` retries, starting at `base` and doubling: `new(attempts, base, 2.0)`
    /// without the `Result`, usable in a `const`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::doubling(5, Duration::from_secs(1));
    /// assert!(b.delays().eq([1, 2, 4, 8, 16].map(Duration::from_secs)));
    /// ```
    pub const fn doubling(attempts: usize, base: Duration) -> Self {
        Self {
            attempts,
            base,
            factor: 2.0,
            max_delay: None,
            jitter: Jitter::none(),
        }
    }

    /// Sets the number of retries (delays yielded).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// assert_eq!(ExponentialBackoff::default().with_attempts(5).delays().count(), 5);
    /// ```
    #[must_use]
    pub const fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the first delay.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::default().with_base(Duration::from_millis(10));
    /// assert!(b.delays().eq([10, 20, 40].map(Duration::from_millis)));
    /// ```
    #[must_use]
    pub const fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the growth factor.
    ///
    /// # Errors
    ///
    /// [`InvalidBackoff`] if `factor` is negative, NaN or infinite.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::default().with_factor(1.5)?;
    /// assert!(b.delays().eq([1000, 1500, 2250].map(Duration::from_millis)));
    /// assert_eq!(ExponentialBackoff::default().with_factor(f64::INFINITY).unwrap_err().parameter(), "factor");
    /// # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
    /// ```
    pub fn with_factor(mut self, factor: f64) -> Result<Self, InvalidBackoff> {
        self.factor = finite_non_negative("factor", factor)?;
        Ok(self)
    }

    /// Caps each delay, after jitter (pjrpc's `max_value`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::default().with_attempts(4).with_max_delay(Duration::from_secs(3));
    /// assert!(b.delays().eq([1, 2, 3, 3].map(Duration::from_secs)));
    /// ```
    #[must_use]
    pub const fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// Removes the cap (the default).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// let b = ExponentialBackoff::default().with_max_delay(Duration::from_secs(1)).without_max_delay();
    /// assert_eq!(b.cap(), None);
    /// ```
    #[must_use]
    pub const fn without_max_delay(mut self) -> Self {
        self.max_delay = None;
        self
    }

    /// Sets the jitter, applied to each delay before the cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff, Jitter};
    ///
    /// // pjrpc: ExponentialBackoff(attempts=4, max_value=3, jitter=lambda i: 0.5)
    /// let b = ExponentialBackoff::default()
    ///     .with_attempts(4)
    ///     .with_max_delay(Duration::from_secs(3))
    ///     .with_jitter(Jitter::from_fn(|_| 0.5));
    /// assert!(b.delays().eq([1500, 2500, 3000, 3000].map(Duration::from_millis)));
    /// ```
    #[must_use]
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The number of retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// assert_eq!(ExponentialBackoff::default().attempts(), 3);
    /// ```
    pub const fn attempts(&self) -> usize {
        self.attempts
    }

    /// The first delay, before jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// assert_eq!(ExponentialBackoff::default().base(), Duration::from_secs(1));
    /// ```
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The growth factor.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// assert_eq!(ExponentialBackoff::default().factor(), 2.0);
    /// ```
    pub const fn factor(&self) -> f64 {
        self.factor
    }

    /// The cap on each delay, if any ([`with_max_delay`](Self::with_max_delay)). (Named
    /// apart from [`BackoffExt::max_delay`](super::BackoffExt::max_delay), the combinator
    /// that caps any backoff, which would otherwise shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// assert_eq!(ExponentialBackoff::default().cap(), None);
    /// ```
    pub const fn cap(&self) -> Option<Duration> {
        self.max_delay
    }
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        Self::doubling(3, Duration::from_secs(1))
    }
}

impl Backoff for ExponentialBackoff {
    type Delays = ExponentialDelays;

    fn delays(&self) -> ExponentialDelays {
        ExponentialDelays {
            index: 0,
            attempts: self.attempts,
            current: clamp_secs(self.base.as_secs_f64()),
            factor: self.factor,
            max_delay: self.max_delay,
            jitter: self.jitter.start(),
        }
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        (self.attempts, Some(self.attempts))
    }
}

/// The delays of one request drawn from an [`ExponentialBackoff`].
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::backoff::{Backoff, ExponentialBackoff, ExponentialDelays};
///
/// let delays: ExponentialDelays = ExponentialBackoff::default().delays();
/// assert_eq!(delays.len(), 3);
/// ```
#[derive(Debug)]
pub struct ExponentialDelays {
    index: usize,
    attempts: usize,
    /// `base × factor^index` in seconds, kept finite and not negative (not cut at
    /// `Duration::MAX`: the jitter is added to the value itself).
    current: f64,
    factor: f64,
    max_delay: Option<Duration>,
    jitter: JitterState,
}

impl Iterator for ExponentialDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.index >= self.attempts {
            return None;
        }
        let delay = self.jitter.apply_to_secs(self.index, self.current);
        self.index += 1;
        self.current = clamp_secs(self.current * self.factor);
        Some(cap(delay, self.max_delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.attempts.saturating_sub(self.index);
        (n, Some(n))
    }
}

impl ExactSizeIterator for ExponentialDelays {}
impl std::iter::FusedIterator for ExponentialDelays {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn its_cap_is_read_back() {
        let b = ExponentialBackoff::doubling(3, Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(2));
        assert_eq!(b.cap(), Some(Duration::from_secs(2)));
        assert_eq!(b.attempts(), 3);
    }

    #[test]
    fn pjrpc_attempts_3_base_1_factor_2() {
        let mut d = ExponentialBackoff::new(3, Duration::from_secs(1), 2.0)
            .unwrap()
            .delays();
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(2)));
        assert_eq!(d.next(), Some(Duration::from_secs(4)));
        assert_eq!(d.next(), None);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn pjrpc_attempts_5_defaults() {
        let b = ExponentialBackoff::default().with_attempts(5);
        assert_eq!(b.base(), Duration::from_secs(1));
        assert_eq!(b.factor(), 2.0);
        assert_eq!(b.cap(), None);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(2)));
        assert_eq!(d.next(), Some(Duration::from_secs(4)));
        assert_eq!(d.next(), Some(Duration::from_secs(8)));
        assert_eq!(d.next(), Some(Duration::from_secs(16)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn pjrpc_jitter_before_cap() {
        let b = ExponentialBackoff::default()
            .with_attempts(4)
            .with_max_delay(Duration::from_secs(3))
            .with_jitter(Jitter::from_fn(|_| 0.5));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_millis(1500)));
        assert_eq!(d.next(), Some(Duration::from_millis(2500)));
        assert_eq!(d.next(), Some(Duration::from_secs(3)));
        assert_eq!(d.next(), Some(Duration::from_secs(3)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn jitter_sees_the_index() {
        let b = ExponentialBackoff::doubling(3, Duration::from_secs(1))
            .with_jitter(Jitter::from_fn(|i| -f64::from(i)));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(2)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn huge_inputs_saturate() {
        let b = ExponentialBackoff::new(10_000, Duration::from_secs(1), 1e300).unwrap();
        let d: Vec<_> = b.delays().collect();
        assert_eq!(d.len(), 10_000);
        assert_eq!(d[0], Duration::from_secs(1));
        assert!(d[1..].iter().all(|&d| d == Duration::MAX));

        let capped = b.with_max_delay(Duration::from_secs(60));
        assert!(
            capped
                .delays()
                .skip(1)
                .all(|d| d == Duration::from_secs(60))
        );

        let b = ExponentialBackoff::new(3, Duration::MAX, 2.0)
            .unwrap()
            .with_jitter(Jitter::full().seeded(1));
        assert_eq!(b.delays().count(), 3);
    }

    /// The jitter is added to `base × factor^i` itself, not to it cut at
    /// `Duration::MAX`: 1e301 s − 1e300 s is still past it, not zero.
    #[test]
    fn the_jitter_is_added_before_saturating() {
        let b = ExponentialBackoff::new(3, Duration::from_secs(1), 1e301)
            .unwrap()
            .with_jitter(Jitter::from_fn(|i| if i == 0 { 0.0 } else { -1e300 }));
        let d: Vec<_> = b.delays().collect();
        assert_eq!(d, [Duration::from_secs(1), Duration::MAX, Duration::MAX]);
        // Past `f64::MAX` the value stays the largest finite one, never infinity or NaN.
        let b = ExponentialBackoff::new(5, Duration::MAX, 1e300)
            .unwrap()
            .with_jitter(Jitter::full().seeded(3));
        assert_eq!(b.delays().count(), 5);
        // A draw past `Duration::MAX` is `Duration::MAX`, whatever the jitter's range
        // (keeping to the nanoseconds inside one, its excluded end is not one below it).
        let jitters = [0.5, 1.0].map(|p| Jitter::proportional(p).unwrap());
        for jitter in [Jitter::full(), Jitter::equal()].into_iter().chain(jitters) {
            let b = ExponentialBackoff::new(5, Duration::MAX, 1e300)
                .unwrap()
                .with_jitter(jitter.clone().seeded(3));
            let d: Vec<_> = b.delays().skip(1).collect();
            assert!(d.iter().all(|d| *d == Duration::MAX), "{jitter:?}: {d:?}");
        }
    }

    #[test]
    fn factor_zero_and_base_zero() {
        let b = ExponentialBackoff::new(3, Duration::from_secs(1), 0.0).unwrap();
        assert!(
            b.delays()
                .eq([Duration::from_secs(1), Duration::ZERO, Duration::ZERO])
        );
        let b = ExponentialBackoff::new(2000, Duration::ZERO, 1e300).unwrap();
        assert!(b.delays().all(|d| d == Duration::ZERO));
    }

    #[test]
    fn rejects_bad_factor() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
            let err = ExponentialBackoff::new(3, Duration::from_secs(1), f).unwrap_err();
            assert_eq!(err.parameter(), "factor");
        }
        assert_eq!(
            ExponentialBackoff::new(3, Duration::from_secs(1), f64::NAN)
                .unwrap_err()
                .to_string(),
            "invalid backoff: factor must be finite and non-negative, got NaN"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics_and_respects_length_and_cap(
            attempts in 0usize..300,
            base_ns in any::<u64>(),
            base_s in any::<u64>(),
            factor in any::<f64>(),
            cap_ns in any::<u64>(),
            j in any::<f64>(),
        ) {
            let base = Duration::new(base_s, (base_ns % 1_000_000_000) as u32);
            let Ok(b) = ExponentialBackoff::new(attempts, base, factor) else {
                prop_assert!(!(factor.is_finite() && factor >= 0.0));
                return Ok(());
            };
            let cap = Duration::from_nanos(cap_ns);
            let b = b.with_max_delay(cap).with_jitter(Jitter::from_fn(move |_| j));
            let d: Vec<_> = b.delays().collect();
            prop_assert_eq!(d.len(), attempts);
            prop_assert!(d.iter().all(|&d| d <= cap));
        }

        #[test]
        fn non_decreasing_without_jitter(
            attempts in 0usize..300,
            base_ms in crate::backoff::arb::magnitude(),
            factor in crate::backoff::arb::factor(1.0),
            cap_ms in proptest::option::of(crate::backoff::arb::magnitude()),
        ) {
            let mut b = ExponentialBackoff::new(attempts, Duration::from_millis(base_ms), factor).unwrap();
            if let Some(ms) = cap_ms {
                b = b.with_max_delay(Duration::from_millis(ms));
            }
            let d: Vec<_> = b.delays().collect();
            prop_assert_eq!(d.len(), attempts);
            prop_assert!(d.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
