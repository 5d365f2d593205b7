//! `BackoffExt::max_total_delay`.

use std::time::Duration;

use crate::backoff::Backoff;

/// Stops before the sum of the delays would exceed a budget; made by
/// [`BackoffExt::max_total_delay`](crate::backoff::BackoffExt::max_total_delay).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, MaxTotalDelay};
///
/// // 1 + 2 + 4 = 7 s fits in 10 s; adding 8 s would not.
/// let b: MaxTotalDelay<ExponentialBackoff> =
///     ExponentialBackoff::doubling(10, Duration::from_secs(1)).max_total_delay(Duration::from_secs(10));
/// assert!(b.delays().eq([1, 2, 4].map(Duration::from_secs)));
/// ```
#[derive(Debug, Clone)]
pub struct MaxTotalDelay<B> {
    inner: B,
    budget: Duration,
}

impl<B> MaxTotalDelay<B> {
    pub(crate) const fn new(inner: B, budget: Duration) -> Self {
        Self { inner, budget }
    }
}

impl<B: Backoff> Backoff for MaxTotalDelay<B> {
    type Delays = MaxTotalDelayDelays<B::Delays>;

    fn delays(&self) -> Self::Delays {
        MaxTotalDelayDelays {
            inner: Some(self.inner.delays()),
            remaining: self.budget,
        }
    }

    /// At most the inner backoff's: the budget may stop it at any delay.
    fn delays_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.delays_hint().1)
    }
}

/// The delays of one request drawn from a [`MaxTotalDelay`] backoff.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, MaxTotalDelayDelays, PeriodicBackoff, PeriodicDelays};
///
/// let d: MaxTotalDelayDelays<PeriodicDelays> =
///     PeriodicBackoff::default().max_total_delay(Duration::from_secs(2)).delays();
/// assert_eq!(d.count(), 2);
/// ```
#[derive(Debug)]
pub struct MaxTotalDelayDelays<D> {
    /// `None` once the budget stopped the sequence, so it stays stopped.
    inner: Option<D>,
    remaining: Duration,
}

impl<D: Iterator<Item = Duration>> Iterator for MaxTotalDelayDelays<D> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // Stopped for good once it stops, whatever the inner iterator would do next.
        let delay = self.inner.as_mut()?.next();
        match delay.and_then(|delay| self.remaining.checked_sub(delay).map(|left| (delay, left))) {
            Some((delay, remaining)) => {
                self.remaining = remaining;
                Some(delay)
            }
            None => {
                self.inner = None;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Some(inner) => (0, inner.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

impl<D: Iterator<Item = Duration>> std::iter::FusedIterator for MaxTotalDelayDelays<D> {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{self, Backoff, BackoffExt, PeriodicBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn size_hint_is_at_most_the_inner_ones_and_nothing_once_stopped() {
        // The budget may stop it at any delay: none is promised, the inner count bounds it.
        let b = PeriodicBackoff::new(3, S(2)).max_total_delay(S(3));
        let mut d = b.delays();
        assert_eq!(d.size_hint(), (0, Some(3)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.size_hint(), (0, Some(2)));
        assert_eq!(d.next(), None);
        assert_eq!(d.size_hint(), (0, Some(0)));
    }

    #[test]
    fn exact_fit_is_yielded() {
        let b = PeriodicBackoff::new(5, S(2)).max_total_delay(S(6));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn crossing_delay_is_not_yielded_and_stays_stopped() {
        // 3 + 5 > 7: stops at the 5 even though a 1 follows.
        let b = backoff::from_iter([S(3), S(5), S(1)]).max_total_delay(S(7));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), None);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn zero_budget_and_huge_delays() {
        let b = backoff::from_iter([Duration::ZERO, Duration::ZERO, S(1)])
            .max_total_delay(Duration::ZERO);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::ZERO));
        assert_eq!(d.next(), Some(Duration::ZERO));
        assert_eq!(d.next(), None);
        let b = backoff::from_iter([Duration::MAX, Duration::MAX]).max_total_delay(Duration::MAX);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::MAX));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn stays_stopped_after_the_inner_iterator_stops_once() {
        /// `Some`, `None`, `Some`, ...: an iterator that is not fused.
        #[derive(Clone, Debug)]
        struct Flicker(u32);
        impl Iterator for Flicker {
            type Item = Duration;
            fn next(&mut self) -> Option<Duration> {
                self.0 += 1;
                (self.0 % 2 == 1).then_some(S(1))
            }
        }
        let b = backoff::from_iter(Flicker(0)).max_total_delay(S(100));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), None);
        assert_eq!(d.next(), None, "a FusedIterator yields nothing after None");
    }
}
