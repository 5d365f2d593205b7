//! `BackoffExt::map`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;

/// Transforms every delay of the inner backoff with a function; made by
/// [`BackoffExt::map`](crate::backoff::BackoffExt::map).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
///
/// let b = PeriodicBackoff::new(2, Duration::from_secs(1)).map(|d| d / 2);
/// assert!(b.delays().eq([Duration::from_millis(500); 2]));
/// ```
pub struct Map<B, F> {
    inner: B,
    f: Arc<F>,
}

impl<B, F> Map<B, F> {
    pub(crate) fn new(inner: B, f: F) -> Self {
        Self {
            inner,
            f: Arc::new(f),
        }
    }
}

impl<B: Clone, F> Clone for Map<B, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            f: Arc::clone(&self.f),
        }
    }
}

impl<B: fmt::Debug, F> fmt::Debug for Map<B, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("inner", &self.inner)
            .field("f", &format_args!("{}", std::any::type_name::<F>()))
            .finish()
    }
}

impl<B, F> Backoff for Map<B, F>
where
    B: Backoff,
    F: Fn(Duration) -> Duration + Send + Sync + 'static,
{
    type Delays = MapDelays<B::Delays, F>;

    fn delays(&self) -> Self::Delays {
        MapDelays {
            inner: self.inner.delays(),
            f: Arc::clone(&self.f),
        }
    }

    /// The inner backoff's: one delay out for each delay in.
    fn delays_hint(&self) -> (usize, Option<usize>) {
        self.inner.delays_hint()
    }
}

/// The delays of one request drawn from a [`Map`] backoff.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
///
/// let mut d = PeriodicBackoff::new(1, Duration::from_secs(1)).map(|d| d * 3).delays();
/// assert_eq!(d.next(), Some(Duration::from_secs(3)));
/// assert_eq!(d.next(), None);
/// ```
pub struct MapDelays<D, F> {
    inner: D,
    f: Arc<F>,
}

impl<D, F> Iterator for MapDelays<D, F>
where
    D: Iterator<Item = Duration>,
    F: Fn(Duration) -> Duration,
{
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.inner.next().map(|d| (self.f)(d))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// One delay for each of the inner iterator's, so its exact length is this one's.
impl<D, F> ExactSizeIterator for MapDelays<D, F>
where
    D: ExactSizeIterator<Item = Duration>,
    F: Fn(Duration) -> Duration,
{
}
impl<D, F> std::iter::FusedIterator for MapDelays<D, F>
where
    D: std::iter::FusedIterator<Item = Duration>,
    F: Fn(Duration) -> Duration,
{
}

impl<D: fmt::Debug, F> fmt::Debug for MapDelays<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapDelays")
            .field("inner", &self.inner)
            .field("f", &format_args!("{}", std::any::type_name::<F>()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backoff::{Backoff, BackoffExt, ExponentialBackoff};

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn exact_size_and_fused_as_the_inner_iterator() {
        fn fused(_: &impl std::iter::FusedIterator) {}
        let mut d = ExponentialBackoff::doubling(2, S(1))
            .map(|d| d / 2)
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
            &ExponentialBackoff::doubling(3, S(1)).map(|d| d / 2),
            3,
        );
    }

    #[test]
    fn applies_to_each_delay() {
        let b = ExponentialBackoff::doubling(3, S(1)).map(|d| d + Duration::from_millis(1));
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_millis(1001)));
        assert_eq!(d.next(), Some(Duration::from_millis(2001)));
        assert_eq!(d.next(), Some(Duration::from_millis(4001)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn clones_share_the_function() {
        let b = ExponentialBackoff::doubling(2, S(1)).map(|d| d.saturating_mul(10));
        let c = b.clone();
        let mut d = c.delays();
        assert_eq!(d.next(), Some(S(10)));
        assert_eq!(d.next(), Some(S(20)));
        assert_eq!(d.next(), None);
        assert!(format!("{b:?}").starts_with("Map { inner: ExponentialBackoff"));
    }
}
