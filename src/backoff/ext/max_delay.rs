//! `BackoffExt::max_delay`.

use std::time::Duration;

use crate::backoff::Backoff;

/// Caps every delay of the inner backoff; made by
/// [`BackoffExt::max_delay`](crate::backoff::BackoffExt::max_delay).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, MaxDelay};
///
/// let b: MaxDelay<ExponentialBackoff> = ExponentialBackoff::doubling(4, Duration::from_secs(1)).max_delay(Duration::from_secs(3));
/// assert!(b.delays().eq([1, 2, 3, 3].map(Duration::from_secs)));
/// ```
#[derive(Debug, Clone)]
pub struct MaxDelay<B> {
    inner: B,
    max: Duration,
}

impl<B> MaxDelay<B> {
    pub(crate) const fn new(inner: B, max: Duration) -> Self {
        Self { inner, max }
    }
}

impl<B: Backoff> Backoff for MaxDelay<B> {
    type Delays = MaxDelayDelays<B::Delays>;

    fn delays(&self) -> Self::Delays {
        MaxDelayDelays {
            inner: self.inner.delays(),
            max: self.max,
        }
    }

    /// The inner backoff's: one delay out for each delay in.
    fn delays_hint(&self) -> (usize, Option<usize>) {
        self.inner.delays_hint()
    }
}

/// The delays of one request drawn from a [`MaxDelay`] backoff.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, MaxDelayDelays, PeriodicBackoff, PeriodicDelays};
///
/// let d: MaxDelayDelays<PeriodicDelays> = PeriodicBackoff::default().max_delay(Duration::ZERO).delays();
/// assert!(d.eq([Duration::ZERO; 3]));
/// ```
#[derive(Debug)]
pub struct MaxDelayDelays<D> {
    inner: D,
    max: Duration,
}

impl<D: Iterator<Item = Duration>> Iterator for MaxDelayDelays<D> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.inner.next().map(|d| d.min(self.max))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// One delay for each of the inner iterator's, so its exact length is this one's.
impl<D: ExactSizeIterator<Item = Duration>> ExactSizeIterator for MaxDelayDelays<D> {}
impl<D: std::iter::FusedIterator<Item = Duration>> std::iter::FusedIterator for MaxDelayDelays<D> {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{self, Backoff, BackoffExt, FibonacciBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn exact_size_and_fused_as_the_inner_iterator() {
        fn fused(_: &impl std::iter::FusedIterator) {}
        let mut d = FibonacciBackoff::new(2, S(1)).max_delay(S(1)).delays();
        fused(&d);
        assert_eq!(d.len(), 2);
        d.next();
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn size_hint_is_the_inner_ones() {
        // One delay per retry left, exactly as the inner iterator says.
        crate::backoff::assert_size_hint_counts_down(
            &FibonacciBackoff::new(3, S(1)).max_delay(S(2)),
            3,
        );
    }

    #[test]
    fn caps_each_delay() {
        let b = FibonacciBackoff::new(6, S(1))
            .without_max_delay()
            .max_delay(S(4));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn tighter_cap_wins() {
        let b = backoff::from_iter([S(9), S(1), Duration::MAX])
            .max_delay(S(5))
            .max_delay(S(2));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), None);
    }
}
