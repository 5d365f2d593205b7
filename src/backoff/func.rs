//! Backoffs made from a closure or from a clonable iterator.

use std::fmt;
use std::time::Duration;

use super::Backoff;

/// Turns a closure that returns delays into a [`Backoff`]: each request gets the
/// iterator of a fresh call.
///
/// This is the quickest way to write your own backoff. pjrpc users' `RandomBackoff`
/// (`attempts` delays, each uniformly random within `[min, max]`) is a few lines. The
/// delay iterator must be `Send + Sync`, so it cannot hold a `ThreadRng`: seed a small
/// generator per request from it instead. Check its parameters when it is made, as the
/// built-in backoffs do: the closure runs at a request's first failure, so a panic there
/// (`random_range` on an empty range) would end the call's task.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rand::{RngExt, SeedableRng, rngs::SmallRng};
/// use tower_jsonrpc_retry::BoxError;
/// use tower_jsonrpc_retry::backoff::{self, Backoff};
///
/// fn random_backoff(attempts: usize, min: Duration, max: Duration) -> Result<impl Backoff, BoxError> {
///     if min > max {
///         return Err(format!("RandomBackoff: min {min:?} is over max {max:?}").into());
///     }
///     Ok(backoff::from_fn(move || {
///         let mut rng = SmallRng::from_rng(&mut rand::rng());
///         (0..attempts).map(move |_| rng.random_range(min..=max))
///     }))
/// }
///
/// let b = random_backoff(3, Duration::from_millis(100), Duration::from_millis(500))?;
/// let delays: Vec<Duration> = b.delays().collect();
/// assert_eq!(delays.len(), 3);
/// assert!(delays.iter().all(|d| (100..=500).contains(&d.as_millis())));
/// assert!(random_backoff(3, Duration::from_millis(500), Duration::from_millis(100)).is_err());
/// # Ok::<(), BoxError>(())
/// ```
pub fn from_fn<F, I>(f: F) -> FromFn<F>
where
    F: Fn() -> I + Send + Sync + 'static,
    I: IntoIterator<Item = Duration>,
    I::IntoIter: Send + Sync + 'static,
{
    FromFn { f }
}

/// A [`Backoff`] made from a closure, by [`from_fn`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{self, Backoff, FromFn};
///
/// let b = backoff::from_fn(|| [Duration::from_millis(10), Duration::from_millis(20)]);
/// assert!(b.delays().eq([10, 20].map(Duration::from_millis)));
/// ```
#[derive(Clone, Copy)]
pub struct FromFn<F> {
    f: F,
}

impl<F, I> Backoff for FromFn<F>
where
    F: Fn() -> I + Send + Sync + 'static,
    I: IntoIterator<Item = Duration>,
    I::IntoIter: Send + Sync + 'static,
{
    type Delays = I::IntoIter;

    fn delays(&self) -> I::IntoIter {
        (self.f)().into_iter()
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn")
            .field("f", &format_args!("{}", std::any::type_name::<F>()))
            .finish()
    }
}

/// Turns a clonable iterator of delays into a [`Backoff`]: each request gets a clone of
/// it, from its start.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{self, Backoff};
///
/// let b = backoff::from_iter([1, 2, 3].map(Duration::from_secs));
/// assert!(b.delays().eq([1, 2, 3].map(Duration::from_secs)));
/// assert!(b.delays().eq([1, 2, 3].map(Duration::from_secs)));
///
/// // Any iterator adapter chain works, as long as it is `Clone`.
/// let b = backoff::from_iter((1..=4).map(|n| Duration::from_millis(n * 100)));
/// assert_eq!(b.delays().last(), Some(Duration::from_millis(400)));
/// ```
pub fn from_iter<I>(iter: I) -> FromIter<I::IntoIter>
where
    I: IntoIterator<Item = Duration>,
    I::IntoIter: Clone + Send + Sync + 'static,
{
    FromIter {
        iter: iter.into_iter(),
    }
}

/// A [`Backoff`] made from a clonable iterator, by [`from_iter`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{self, Backoff, FromIter};
///
/// let b: FromIter<_> = backoff::from_iter(std::iter::repeat_n(Duration::from_secs(1), 2));
/// assert_eq!(b.delays().count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct FromIter<I> {
    iter: I,
}

impl<I> Backoff for FromIter<I>
where
    I: Iterator<Item = Duration> + Clone + Send + Sync + 'static,
{
    type Delays = I;

    fn delays(&self) -> I {
        self.iter.clone()
    }

    /// The iterator's own: each request's is a clone of it.
    fn delays_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_fn_calls_once_per_request() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let b = from_fn(move || {
            let n = c.fetch_add(1, Ordering::Relaxed);
            vec![Duration::from_secs(n); 2]
        });
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_secs(0)));
        assert_eq!(d.next(), Some(Duration::from_secs(0)));
        assert_eq!(d.next(), None);
        let mut d = b.delays();
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), None);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn from_iter_restarts_each_request() {
        let b = from_iter([Duration::from_millis(5), Duration::from_millis(7)]);
        for _ in 0..2 {
            let mut d = b.delays();
            assert_eq!(d.next(), Some(Duration::from_millis(5)));
            assert_eq!(d.next(), Some(Duration::from_millis(7)));
            assert_eq!(d.next(), None);
        }
        let empty = from_iter(std::iter::empty());
        assert_eq!(empty.delays().next(), None);
    }
}
