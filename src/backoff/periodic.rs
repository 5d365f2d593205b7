//! The same delay before every retry.

use std::time::Duration;

use super::jitter::JitterState;
use super::saturate::cap;
use super::{Backoff, Jitter};

/// A fixed `interval` before each of `attempts` retries: retry `i` waits
/// `interval + jitter(i)`, then the optional cap. pjrpc's `PeriodicBackoff`.
///
/// # Default
///
/// | parameter | default | why |
/// |---|---|---|
/// | `attempts` | 3 | retries, not counting the first try (4 attempts in all), as pjrpc counts; pjrpc has no default; gRPC and the AWS SDKs default to 3 attempts with the first included |
/// | `interval` | 1 s | pjrpc's `interval=1.0` |
/// | `max_delay` | none | pjrpc's periodic backoff has no cap |
/// | `jitter` | [`Jitter::none()`] | pjrpc's `jitter=lambda attempt: 0.0` |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, PeriodicBackoff};
///
/// // A `const` recipe: pjrpc's PeriodicBackoff(attempts=3, interval=1.0).
/// const EVERY_SECOND: PeriodicBackoff = PeriodicBackoff::new(3, Duration::from_secs(1));
///
/// let mut delays = EVERY_SECOND.delays();
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), None);
/// ```
#[derive(Debug, Clone)]
pub struct PeriodicBackoff {
    attempts: usize,
    interval: Duration,
    max_delay: Option<Duration>,
    jitter: Jitter,
}

impl PeriodicBackoff {
    /// `attempts` retries, `interval` before each.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, PeriodicBackoff};
    ///
    /// assert_eq!(PeriodicBackoff::new(0, Duration::from_secs(1)).delays().next(), None);
    /// ```
    pub const fn new(attempts: usize, interval: Duration) -> Self {
        Self {
            attempts,
            interval,
            max_delay: None,
            jitter: Jitter::none(),
        }
    }

    /// Sets the number of retries (delays yielded).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, PeriodicBackoff};
    ///
    /// assert_eq!(PeriodicBackoff::default().with_attempts(5).delays().count(), 5);
    /// ```
    #[must_use]
    pub const fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts;
        self
    }

    /// Sets the delay before each retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::default().with_interval(Duration::from_millis(250));
    /// assert!(b.delays().all(|d| d == Duration::from_millis(250)));
    /// ```
    #[must_use]
    pub const fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Caps each delay, after jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(2, Duration::from_secs(1))
    ///     .with_jitter(Jitter::from_fn(|_| 5.0))
    ///     .with_max_delay(Duration::from_secs(2));
    /// assert!(b.delays().eq([Duration::from_secs(2); 2]));
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
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// let b = PeriodicBackoff::default().with_max_delay(Duration::from_secs(1)).without_max_delay();
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
    /// use tower_jsonrpc_retry::backoff::{Backoff, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::from_fn(|i| f64::from(i)));
    /// assert!(b.delays().eq([1, 2, 3].map(Duration::from_secs)));
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
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// assert_eq!(PeriodicBackoff::default().attempts(), 3);
    /// ```
    pub const fn attempts(&self) -> usize {
        self.attempts
    }

    /// The delay before each retry, before jitter.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// assert_eq!(PeriodicBackoff::default().interval(), Duration::from_secs(1));
    /// ```
    pub const fn interval(&self) -> Duration {
        self.interval
    }

    /// The cap on each delay, if any ([`with_max_delay`](Self::with_max_delay)). (Named
    /// apart from [`BackoffExt::max_delay`](super::BackoffExt::max_delay), the combinator
    /// that caps any backoff, which would otherwise shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// assert_eq!(PeriodicBackoff::default().cap(), None);
    /// ```
    pub const fn cap(&self) -> Option<Duration> {
        self.max_delay
    }
}

impl Default for PeriodicBackoff {
    fn default() -> Self {
        Self::new(3, Duration::from_secs(1))
    }
}

impl Backoff for PeriodicBackoff {
    type Delays = PeriodicDelays;

    fn delays(&self) -> PeriodicDelays {
        PeriodicDelays {
            index: 0,
            attempts: self.attempts,
            interval: self.interval,
            max_delay: self.max_delay,
            jitter: self.jitter.start(),
        }
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        (self.attempts, Some(self.attempts))
    }
}

/// The delays of one request drawn from a [`PeriodicBackoff`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, PeriodicBackoff, PeriodicDelays};
///
/// let delays: PeriodicDelays = PeriodicBackoff::new(2, Duration::from_secs(1)).delays();
/// assert_eq!(delays.len(), 2);
/// ```
#[derive(Debug)]
pub struct PeriodicDelays {
    index: usize,
    attempts: usize,
    interval: Duration,
    max_delay: Option<Duration>,
    jitter: JitterState,
}

impl Iterator for PeriodicDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.index >= self.attempts {
            return None;
        }
        let delay = self.jitter.apply(self.index, self.interval);
        self.index += 1;
        Some(cap(delay, self.max_delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.attempts.saturating_sub(self.index);
        (n, Some(n))
    }
}

impl ExactSizeIterator for PeriodicDelays {}
impl std::iter::FusedIterator for PeriodicDelays {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(b: &impl Backoff) -> Vec<f64> {
        b.delays().map(|d| d.as_secs_f64()).collect()
    }

    #[test]
    fn its_delays_know_how_many_are_left_and_its_cap_is_read_back() {
        // `ExactSizeIterator`: `len` is the retries left.
        let b = PeriodicBackoff::new(3, Duration::from_secs(1));
        let mut d = b.delays();
        assert_eq!((d.len(), d.size_hint()), (3, (3, Some(3))));
        d.next();
        assert_eq!((d.len(), d.size_hint()), (2, (2, Some(2))));
        d.by_ref().for_each(drop);
        assert_eq!((d.len(), d.size_hint()), (0, (0, Some(0))));
        let capped = b.with_max_delay(Duration::from_millis(500));
        assert_eq!(capped.cap(), Some(Duration::from_millis(500)));
    }

    #[test]
    fn pjrpc_attempts_3_interval_1() {
        let mut d = PeriodicBackoff::new(3, Duration::from_secs(1)).delays();
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), None);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn pjrpc_attempts_0() {
        let mut d = PeriodicBackoff::default().with_attempts(0).delays();
        assert_eq!(d.next(), None);
    }

    #[test]
    fn defaults() {
        let b = PeriodicBackoff::default();
        assert_eq!(b.attempts(), 3);
        assert_eq!(b.interval(), Duration::from_secs(1));
        assert_eq!(b.cap(), None);
        assert_eq!(secs(&b), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn jitter_then_cap_then_clamp() {
        let b = PeriodicBackoff::new(4, Duration::from_secs(1))
            .with_jitter(Jitter::from_fn(|i| [0.5, -2.0, 3.0, f64::NAN][i as usize]))
            .with_max_delay(Duration::from_secs(2));
        assert_eq!(secs(&b), [1.5, 0.0, 2.0, 1.0]);
    }

    #[test]
    fn jitter_from_fn_no_index() {
        let b = PeriodicBackoff::new(2, Duration::from_millis(100))
            .with_jitter(Jitter::from_fn_no_index(|| 0.05));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_millis(150)));
        assert_eq!(d.next(), Some(Duration::from_millis(150)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn const_item() {
        const B: PeriodicBackoff = PeriodicBackoff::new(1, Duration::ZERO)
            .with_attempts(2)
            .with_interval(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(3));
        assert!(B.delays().eq([Duration::from_millis(3); 2]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn length_and_cap(attempts in 0usize..200, ms in any::<u64>(), cap_ms in any::<u64>(), j in any::<f64>()) {
            let cap = Duration::from_millis(cap_ms);
            let b = PeriodicBackoff::new(attempts, Duration::from_millis(ms))
                .with_jitter(Jitter::from_fn(move |_| j))
                .with_max_delay(cap);
            let d: Vec<_> = b.delays().collect();
            prop_assert_eq!(d.len(), attempts);
            prop_assert!(d.iter().all(|&d| d <= cap));
        }
    }
}
