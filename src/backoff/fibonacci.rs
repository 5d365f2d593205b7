//! Delays that follow the Fibonacci sequence.

use std::time::Duration;

use super::jitter::JitterState;
use super::saturate::{cap, clamp_secs};
use super::{Backoff, Jitter};

/// pjrpc's cap for [`FibonacciBackoff`]: `max_value=1.0`.
const PJRPC_MAX_DELAY: Duration = Duration::from_secs(1);

/// Retry `i` waits `multiplier × fib(i) + jitter(i)`, with fib = 1, 2, 3, 5, 8, …, then
/// `min(max_delay, ·)`: pjrpc's `FibonacciBackoff`.
///
/// **The cap defaults to 1 s**, as in pjrpc, so with the default multiplier every delay
/// is 1 s. Remove it with [`without_max_delay`](Self::without_max_delay), or move it with
/// [`with_max_delay`](Self::with_max_delay).
///
/// # Default
///
/// | parameter | default | why |
/// |---|---|---|
/// | `attempts` | 3 | retries, not counting the first try (4 attempts in all), as pjrpc counts; pjrpc has no default; gRPC and the AWS SDKs default to 3 attempts with the first included |
/// | `multiplier` | 1 s | pjrpc's `multiplier=1.0` |
/// | `max_delay` | **1 s** | pjrpc's `max_value=1.0` |
/// | `jitter` | [`Jitter::none()`] | pjrpc's `jitter=lambda attempt: 0.0` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
///
/// // pjrpc: FibonacciBackoff(attempts=5, multiplier=1.0): the 1 s cap flattens it.
/// let b = FibonacciBackoff::new(5, Duration::from_secs(1));
/// assert!(b.delays().eq([1, 1, 1, 1, 1].map(Duration::from_secs)));
///
/// // pjrpc: FibonacciBackoff(attempts=5, multiplier=1.0, max_value=None)
/// const FIB: FibonacciBackoff = FibonacciBackoff::new(5, Duration::from_secs(1)).without_max_delay();
/// assert!(FIB.delays().eq([1, 2, 3, 5, 8].map(Duration::from_secs)));
/// ```
#[derive(Debug, Clone)]
pub struct FibonacciBackoff {
    attempts: usize,
    multiplier: Duration,
    max_delay: Option<Duration>,
    jitter: Jitter,
}

impl FibonacciBackoff {
    /// `attempts` retries of `multiplier × fib(i)`, capped at 1 s (see the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::FibonacciBackoff;
    ///
    /// let b = FibonacciBackoff::new(5, Duration::from_millis(100));
    /// assert_eq!(b.cap(), Some(Duration::from_secs(1)));
    /// ```
    pub const fn new(attempts: usize, multiplier: Duration) -> Self {
        Self {
            attempts,
            multiplier,
            max_delay: Some(PJRPC_MAX_DELAY),
            jitter: Jitter::none(),
        }
    }

    /// Sets the number of retries (delays yielded).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
    ///
    /// assert_eq!(FibonacciBackoff::default().with_attempts(7).delays().count(), 7);
    /// ```
    #[must_use]
    pub const fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the unit the Fibonacci numbers are multiplied by.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
    ///
    /// let b = FibonacciBackoff::default().with_multiplier(Duration::from_millis(100));
    /// assert!(b.delays().eq([100, 200, 300].map(Duration::from_millis)));
    /// ```
    #[must_use]
    pub const fn with_multiplier(mut self, multiplier: Duration) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Caps each delay, after jitter (pjrpc's `max_value`; 1 s unless changed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
    ///
    /// // pjrpc: FibonacciBackoff(attempts=7, max_value=100)
    /// let b = FibonacciBackoff::default().with_attempts(7).with_max_delay(Duration::from_secs(100));
    /// assert!(b.delays().eq([1, 2, 3, 5, 8, 13, 21].map(Duration::from_secs)));
    /// ```
    #[must_use]
    pub const fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// Removes the cap, which otherwise defaults to 1 s (pjrpc's `max_value=None`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff};
    ///
    /// let b = FibonacciBackoff::default().without_max_delay();
    /// assert!(b.delays().eq([1, 2, 3].map(Duration::from_secs)));
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
    /// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff, Jitter};
    ///
    /// let b = FibonacciBackoff::default().with_jitter(Jitter::from_fn(|_| -0.5));
    /// assert!(b.delays().eq([500, 1000, 1000].map(Duration::from_millis)));
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
    /// use tower_jsonrpc_retry::backoff::FibonacciBackoff;
    ///
    /// assert_eq!(FibonacciBackoff::default().attempts(), 3);
    /// ```
    pub const fn attempts(&self) -> usize {
        self.attempts
    }

    /// The unit the Fibonacci numbers are multiplied by.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::FibonacciBackoff;
    ///
    /// assert_eq!(FibonacciBackoff::default().multiplier(), Duration::from_secs(1));
    /// ```
    pub const fn multiplier(&self) -> Duration {
        self.multiplier
    }

    /// The cap on each delay, if any: `Some(1 s)` unless changed. (Named apart from
    /// [`BackoffExt::max_delay`](super::BackoffExt::max_delay), the combinator that caps
    /// any backoff, which would otherwise shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::FibonacciBackoff;
    ///
    /// assert_eq!(FibonacciBackoff::default().cap(), Some(Duration::from_secs(1)));
    /// ```
    pub const fn cap(&self) -> Option<Duration> {
        self.max_delay
    }
}

impl Default for FibonacciBackoff {
    fn default() -> Self {
        Self::new(3, Duration::from_secs(1))
    }
}

impl Backoff for FibonacciBackoff {
    type Delays = FibonacciDelays;

    fn delays(&self) -> FibonacciDelays {
        FibonacciDelays {
            index: 0,
            attempts: self.attempts,
            multiplier: clamp_secs(self.multiplier.as_secs_f64()),
            previous: 1.0,
            current: 1.0,
            max_delay: self.max_delay,
            jitter: self.jitter.start(),
        }
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        (self.attempts, Some(self.attempts))
    }
}

/// The delays of one request drawn from a [`FibonacciBackoff`].
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::backoff::{Backoff, FibonacciBackoff, FibonacciDelays};
///
/// let delays: FibonacciDelays = FibonacciBackoff::default().delays();
/// assert_eq!(delays.len(), 3);
/// ```
#[derive(Debug)]
pub struct FibonacciDelays {
    index: usize,
    attempts: usize,
    multiplier: f64,
    /// The Fibonacci pair, each kept finite and not negative (not cut at `Duration::MAX`,
    /// so a small multiplier still takes the delay past it).
    previous: f64,
    current: f64,
    max_delay: Option<Duration>,
    jitter: JitterState,
}

impl Iterator for FibonacciDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.index >= self.attempts {
            return None;
        }
        let secs = clamp_secs(self.multiplier * self.current);
        let delay = self.jitter.apply_to_secs(self.index, secs);
        self.index += 1;
        let next = clamp_secs(self.previous + self.current);
        self.previous = self.current;
        self.current = next;
        Some(cap(delay, self.max_delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.attempts.saturating_sub(self.index);
        (n, Some(n))
    }
}

impl ExactSizeIterator for FibonacciDelays {}
impl std::iter::FusedIterator for FibonacciDelays {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn pjrpc_attempts_5_default_cap() {
        let mut d = FibonacciBackoff::new(5, S(1)).delays();
        for _ in 0..5 {
            assert_eq!(d.next(), Some(S(1)));
        }
        assert_eq!(d.next(), None);
    }

    #[test]
    fn pjrpc_attempts_5_no_cap() {
        let mut d = FibonacciBackoff::new(5, S(1)).without_max_delay().delays();
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), Some(S(5)));
        assert_eq!(d.next(), Some(S(8)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn pjrpc_attempts_7_cap_100() {
        let mut d = FibonacciBackoff::default()
            .with_attempts(7)
            .with_max_delay(S(100))
            .delays();
        for s in [1, 2, 3, 5, 8, 13, 21] {
            assert_eq!(d.next(), Some(S(s)));
        }
        assert_eq!(d.next(), None);
    }

    #[test]
    fn defaults() {
        let b = FibonacciBackoff::default();
        assert_eq!(
            (b.attempts(), b.multiplier(), b.cap()),
            (3, S(1), Some(S(1)))
        );
    }

    #[test]
    fn jitter_before_cap() {
        let b = FibonacciBackoff::new(4, Duration::from_millis(100))
            .with_jitter(Jitter::from_fn(|i| 0.3 * f64::from(i)));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_millis(100)));
        assert_eq!(d.next(), Some(Duration::from_millis(500)));
        assert_eq!(d.next(), Some(Duration::from_millis(900)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn long_runs_saturate() {
        let b = FibonacciBackoff::new(5_000, S(1)).without_max_delay();
        let d: Vec<_> = b.delays().collect();
        assert_eq!(d.len(), 5_000);
        assert_eq!(*d.last().unwrap(), Duration::MAX);
        let b = FibonacciBackoff::new(5_000, Duration::ZERO).without_max_delay();
        assert!(b.delays().all(|d| d == Duration::ZERO));
    }

    /// The Fibonacci number is not cut at `Duration::MAX` before the multiplier: with a
    /// multiplier under a second, fib(199) × it (about 4.5e32 s for 1 ns) is past it.
    #[test]
    fn a_small_multiplier_saturates_too() {
        for multiplier in [Duration::from_nanos(1), Duration::from_millis(500)] {
            let b = FibonacciBackoff::new(200, multiplier).without_max_delay();
            assert_eq!(b.delays().last(), Some(Duration::MAX), "{multiplier:?}");
            let b = FibonacciBackoff::new(5_000, multiplier).without_max_delay();
            assert_eq!(b.delays().last(), Some(Duration::MAX), "{multiplier:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn length_cap_and_order(
            attempts in 0usize..2_000,
            mult_ns in any::<u64>(),
            cap_ns in proptest::option::of(any::<u64>()),
        ) {
            let mut b = FibonacciBackoff::new(attempts, Duration::from_nanos(mult_ns)).without_max_delay();
            if let Some(ns) = cap_ns {
                b = b.with_max_delay(Duration::from_nanos(ns));
            }
            let d: Vec<_> = b.delays().collect();
            prop_assert_eq!(d.len(), attempts);
            prop_assert!(d.windows(2).all(|w| w[0] <= w[1]));
            if let Some(ns) = cap_ns {
                prop_assert!(d.iter().all(|&d| d <= Duration::from_nanos(ns)));
            }
        }

        #[test]
        fn jitter_never_breaks_cap(attempts in 0usize..100, j in any::<f64>(), seed in any::<u64>()) {
            let cap = Duration::from_millis(1500);
            let a = FibonacciBackoff::new(attempts, S(1)).with_max_delay(cap).with_jitter(Jitter::from_fn(move |_| j));
            let b = FibonacciBackoff::new(attempts, S(1)).with_max_delay(cap).with_jitter(Jitter::full().seeded(seed));
            prop_assert!(a.delays().all(|d| d <= cap));
            prop_assert_eq!(b.delays().filter(|&d| d <= cap).count(), attempts);
        }
    }
}
