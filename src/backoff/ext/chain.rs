//! `BackoffExt::chain`.

use crate::backoff::Backoff;

/// The delays of one backoff, then those of another; made by
/// [`BackoffExt::chain`](crate::backoff::BackoffExt::chain).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, Chain, ExponentialBackoff, PeriodicBackoff};
///
/// // Two quick retries, then slower ones.
/// let b: Chain<PeriodicBackoff, ExponentialBackoff> = PeriodicBackoff::new(2, Duration::from_millis(50))
///     .chain(ExponentialBackoff::doubling(2, Duration::from_secs(1)));
/// assert!(b.delays().eq([50, 50, 1000, 2000].map(Duration::from_millis)));
/// ```
#[derive(Debug, Clone)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A, B> Chain<A, B> {
    pub(crate) const fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: Backoff, B: Backoff> Backoff for Chain<A, B> {
    type Delays = std::iter::Chain<A::Delays, B::Delays>;

    fn delays(&self) -> Self::Delays {
        self.first.delays().chain(self.second.delays())
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        let (first, second) = (self.first.delays_hint(), self.second.delays_hint());
        let upper = first.1.zip(second.1).and_then(|(a, b)| a.checked_add(b));
        (first.0.saturating_add(second.0), upper)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{self, Backoff, BackoffExt, FibonacciBackoff, PeriodicBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn first_then_second() {
        let b =
            PeriodicBackoff::new(1, S(7)).chain(FibonacciBackoff::new(3, S(1)).without_max_delay());
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(7)));
        assert_eq!(d.next(), Some(S(1)));
        assert_eq!(d.next(), Some(S(2)));
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn empty_sides() {
        let b = PeriodicBackoff::new(0, S(1)).chain(backoff::from_iter([S(4)]));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), None);
        let b = backoff::from_iter([S(4)]).chain(PeriodicBackoff::new(0, S(1)));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), None);
    }
}
