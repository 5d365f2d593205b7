//! `BackoffExt::max_retries`.

use crate::backoff::Backoff;

/// Yields at most `n` delays of the inner backoff; made by
/// [`BackoffExt::max_retries`](crate::backoff::BackoffExt::max_retries).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, MaxRetries, PeriodicBackoff};
///
/// let b: MaxRetries<PeriodicBackoff> = PeriodicBackoff::new(10, Duration::from_secs(1)).max_retries(2);
/// assert_eq!(b.delays().count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct MaxRetries<B> {
    inner: B,
    n: usize,
}

impl<B> MaxRetries<B> {
    pub(crate) const fn new(inner: B, n: usize) -> Self {
        Self { inner, n }
    }
}

impl<B: Backoff> Backoff for MaxRetries<B> {
    type Delays = std::iter::Take<B::Delays>;

    fn delays(&self) -> Self::Delays {
        self.inner.delays().take(self.n)
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        let (lower, upper) = self.inner.delays_hint();
        (
            lower.min(self.n),
            Some(upper.map_or(self.n, |upper| upper.min(self.n))),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{self, Backoff, BackoffExt, ExponentialBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn truncates() {
        let b = ExponentialBackoff::doubling(usize::MAX, S(1)).max_retries(3);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn does_not_extend() {
        let b = backoff::from_iter([S(1)]).max_retries(5);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), None);
        assert_eq!(
            backoff::from_iter([S(1)]).max_retries(0).delays().next(),
            None
        );
    }

    /// The cut bounds the hint of a backoff that does not know its own length (a
    /// closure's): `RetryStrategy::for_method` reads that bound to hold a method whose
    /// strategy never retries back from a batch's re-sends.
    #[test]
    fn bounds_a_hint_the_source_leaves_open() {
        let endless = || backoff::from_fn(|| std::iter::repeat(S(1)));
        assert_eq!(endless().delays_hint(), (0, None));
        assert_eq!(endless().max_retries(0).delays_hint(), (0, Some(0)));
        assert_eq!(endless().max_retries(2).delays_hint(), (0, Some(2)));
    }

    #[test]
    fn infinite_source() {
        let b = backoff::from_iter(std::iter::repeat(S(2))).max_retries(2);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), None);
    }
}
