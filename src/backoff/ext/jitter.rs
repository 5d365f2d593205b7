//! `BackoffExt::jitter`.

use std::time::Duration;

use crate::backoff::jitter::JitterState;
use crate::backoff::{Backoff, Jitter};

/// Jitters every delay of the inner backoff; made by
/// [`BackoffExt::jitter`](crate::backoff::BackoffExt::jitter).
///
/// The jitter sees the delay the inner backoff yields, so it applies *after* any cap
/// inside it: see [`BackoffExt::jitter`](crate::backoff::BackoffExt::jitter).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, Jitter, Jittered, PeriodicBackoff};
///
/// let b: Jittered<PeriodicBackoff> = PeriodicBackoff::new(2, Duration::from_secs(1)).jitter(Jitter::from_fn(|i| f64::from(i)));
/// assert!(b.delays().eq([1, 2].map(Duration::from_secs)));
/// ```
#[derive(Debug, Clone)]
pub struct Jittered<B> {
    inner: B,
    jitter: Jitter,
}

impl<B> Jittered<B> {
    pub(crate) const fn new(inner: B, jitter: Jitter) -> Self {
        Self { inner, jitter }
    }
}

impl<B: Backoff> Backoff for Jittered<B> {
    type Delays = JitteredDelays<B::Delays>;

    fn delays(&self) -> Self::Delays {
        JitteredDelays {
            inner: self.inner.delays(),
            index: 0,
            jitter: self.jitter.start(),
        }
    }

    /// The inner backoff's: one delay out for each delay in.
    fn delays_hint(&self) -> (usize, Option<usize>) {
        self.inner.delays_hint()
    }
}

/// The delays of one request drawn from a [`Jittered`] backoff.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, Jitter, JitteredDelays, PeriodicBackoff, PeriodicDelays};
///
/// let d: JitteredDelays<PeriodicDelays> = PeriodicBackoff::default().jitter(Jitter::full()).delays();
/// assert_eq!(d.count(), 3);
/// ```
#[derive(Debug)]
pub struct JitteredDelays<D> {
    inner: D,
    index: usize,
    jitter: JitterState,
}

impl<D: Iterator<Item = Duration>> Iterator for JitteredDelays<D> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.inner.next()?;
        let delay = self.jitter.apply(self.index, delay);
        self.index = self.index.saturating_add(1);
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// One delay for each of the inner iterator's, so its exact length is this one's.
impl<D: ExactSizeIterator<Item = Duration>> ExactSizeIterator for JitteredDelays<D> {}
impl<D: std::iter::FusedIterator<Item = Duration>> std::iter::FusedIterator for JitteredDelays<D> {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter, PeriodicBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn exact_size_and_fused_as_the_inner_iterator() {
        fn fused(_: &impl std::iter::FusedIterator) {}
        let mut d = PeriodicBackoff::new(2, S(1))
            .jitter(Jitter::full())
            .delays();
        fused(&d);
        assert_eq!(d.len(), 2);
        d.next();
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn size_hint_is_the_inner_ones() {
        // One delay per retry left, exactly as the inner iterator says.
        crate::backoff::assert_size_hint_counts_down(
            &PeriodicBackoff::new(3, S(1)).jitter(Jitter::from_fn(|_| 0.5)),
            3,
        );
    }

    #[test]
    fn same_as_with_jitter_without_a_cap() {
        let j = Jitter::from_fn(|i| 0.25 * f64::from(i) - 0.5);
        let a = ExponentialBackoff::doubling(4, S(1)).jitter(j.clone());
        let b = ExponentialBackoff::doubling(4, S(1)).with_jitter(j);
        assert!(a.delays().eq(b.delays()));
        let mut d = a.delays();
        assert_eq!(d.next(), Some(Duration::from_millis(500)));
        assert_eq!(d.next(), Some(Duration::from_millis(1750)));
        assert_eq!(d.next(), Some(S(4)));
        assert_eq!(d.next(), Some(Duration::from_millis(8250)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn jitters_the_capped_value_of_a_capped_backoff() {
        let capped = ExponentialBackoff::doubling(4, S(1)).with_max_delay(S(3));
        let mut d = capped.clone().jitter(Jitter::from_fn(|_| 0.5)).delays();
        assert_eq!(d.next(), Some(Duration::from_millis(1500)));
        assert_eq!(d.next(), Some(Duration::from_millis(2500)));
        assert_eq!(d.next(), Some(Duration::from_millis(3500)));
        assert_eq!(d.next(), Some(Duration::from_millis(3500)));
        assert_eq!(d.next(), None);
        // `.jitter(j).max_delay(d)` restores pjrpc's order.
        let mut d = ExponentialBackoff::doubling(4, S(1))
            .jitter(Jitter::from_fn(|_| 0.5))
            .max_delay(S(3))
            .delays();
        assert_eq!(d.next(), Some(Duration::from_millis(1500)));
        assert_eq!(d.next(), Some(Duration::from_millis(2500)));
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), Some(S(3)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn seeded_random_jitter_matches_with_jitter() {
        let a = PeriodicBackoff::new(5, S(1)).jitter(Jitter::proportional(0.2).unwrap().seeded(8));
        let b =
            PeriodicBackoff::new(5, S(1)).with_jitter(Jitter::proportional(0.2).unwrap().seeded(8));
        let a1: Vec<_> = a.delays().collect();
        assert_eq!(a1, b.delays().collect::<Vec<_>>());
        assert!(
            a1.iter()
                .all(|d| *d >= Duration::from_millis(800) && *d < Duration::from_millis(1200))
        );
        assert_eq!(a1.len(), 5);
    }
}
