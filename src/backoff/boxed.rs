//! A backoff behind a pointer, for when its type cannot be named.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Backoff;

/// Any [`Backoff`], type-erased and cheap to clone (an `Arc` inside).
///
/// Drawing the delays of a request costs one allocation, for the boxed iterator; drawing
/// each delay costs none. Wrapping a `BoxBackoff` again does not add a layer.
///
/// (There is no `From<B: Backoff>` impl: `BoxBackoff` is itself a backoff, and such an
/// impl would overlap with `From<T> for T`. Use [`BoxBackoff::new`] or
/// [`BackoffExt::boxed`](super::BackoffExt::boxed).)
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, BoxBackoff, ExponentialBackoff, PeriodicBackoff};
///
/// let fast = true;
/// let backoff: BoxBackoff = if fast {
///     PeriodicBackoff::new(2, Duration::from_millis(10)).boxed()
/// } else {
///     BoxBackoff::new(ExponentialBackoff::default())
/// };
/// assert!(backoff.delays().eq([Duration::from_millis(10); 2]));
/// ```
#[derive(Clone)]
pub struct BoxBackoff {
    inner: Arc<dyn ErasedBackoff>,
    type_name: &'static str,
}

impl BoxBackoff {
    /// Erases the type of `backoff`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::{Backoff, BoxBackoff, FibonacciBackoff};
    ///
    /// let b = BoxBackoff::new(FibonacciBackoff::default());
    /// assert_eq!(b.delays().count(), 3);
    /// ```
    pub fn new<B: Backoff>(backoff: B) -> Self {
        if let Some(boxed) = (&backoff as &dyn Any).downcast_ref::<Self>() {
            return boxed.clone();
        }
        Self {
            inner: Arc::new(backoff),
            type_name: std::any::type_name::<B>(),
        }
    }
}

impl Backoff for BoxBackoff {
    type Delays = BoxDelays;

    fn delays(&self) -> BoxDelays {
        self.inner.boxed_delays()
    }

    fn delays_hint(&self) -> (usize, Option<usize>) {
        self.inner.erased_delays_hint()
    }
}

impl fmt::Debug for BoxBackoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxBackoff")
            .field(&format_args!("{}", self.type_name))
            .finish()
    }
}

/// The delays of one request drawn from a [`BoxBackoff`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, BoxDelays, PeriodicBackoff};
///
/// let mut delays: BoxDelays = PeriodicBackoff::new(1, Duration::from_secs(1)).boxed().delays();
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), None);
/// ```
pub struct BoxDelays(Box<dyn Iterator<Item = Duration> + Send + Sync>);

impl Iterator for BoxDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl fmt::Debug for BoxDelays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxDelays").finish_non_exhaustive()
    }
}

/// The object-safe face of [`Backoff`].
trait ErasedBackoff: Send + Sync {
    fn boxed_delays(&self) -> BoxDelays;
    fn erased_delays_hint(&self) -> (usize, Option<usize>);
}

impl<B: Backoff> ErasedBackoff for B {
    fn boxed_delays(&self) -> BoxDelays {
        BoxDelays(Box::new(self.delays()))
    }

    fn erased_delays_hint(&self) -> (usize, Option<usize>) {
        self.delays_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{BackoffExt, ExponentialBackoff, PeriodicBackoff};

    #[test]
    fn yields_the_inner_sequence() {
        let b = BoxBackoff::new(ExponentialBackoff::doubling(3, Duration::from_secs(1)));
        let mut d = b.delays();
        assert_eq!(d.size_hint(), (3, Some(3)));
        assert_eq!(d.next(), Some(Duration::from_secs(1)));
        assert_eq!(d.next(), Some(Duration::from_secs(2)));
        assert_eq!(d.next(), Some(Duration::from_secs(4)));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn reboxing_does_not_nest() {
        let b = PeriodicBackoff::default().boxed();
        let again = b.clone().boxed();
        assert!(Arc::ptr_eq(&b.inner, &again.inner));
        assert_eq!(
            format!("{again:?}"),
            "BoxBackoff(tower_jsonrpc_retry::backoff::periodic::PeriodicBackoff)"
        );
    }

    #[test]
    fn is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + fmt::Debug + 'static>() {}
        fn check_iter<T: Iterator<Item = Duration> + Send + fmt::Debug + 'static>() {}
        check::<BoxBackoff>();
        check_iter::<BoxDelays>();
    }

    /// Every combinator's `delays_hint` bounds what its iterator yields, and equals a
    /// fresh iterator's `size_hint`, without making one; boxing keeps it.
    #[test]
    fn delays_hints_are_known_without_drawing() {
        use crate::backoff::{BackoffExt, PeriodicBackoff, from_fn, from_iter};
        let p = |n| PeriodicBackoff::new(n, Duration::from_secs(1));
        let hints = [
            (BoxBackoff::new(p(3)), (3, Some(3))),
            (BoxBackoff::new(p(3).chain(p(2))), (5, Some(5))),
            (BoxBackoff::new(p(3).max_retries(1)), (1, Some(1))),
            (BoxBackoff::new(p(3).max_retries(9)), (3, Some(3))),
            (BoxBackoff::new(p(0).max_retries(9)), (0, Some(0))),
            (
                BoxBackoff::new(p(3).max_delay(Duration::ZERO)),
                (3, Some(3)),
            ),
            (BoxBackoff::new(p(3).map(|d| d * 2)), (3, Some(3))),
            (
                BoxBackoff::new(p(3).max_total_delay(Duration::from_secs(2))),
                (0, Some(3)),
            ),
            (
                BoxBackoff::new(from_iter([Duration::from_secs(1); 2])),
                (2, Some(2)),
            ),
            (
                BoxBackoff::new(from_fn(|| [Duration::from_secs(1)])),
                (0, None),
            ),
        ];
        for (i, (backoff, hint)) in hints.into_iter().enumerate() {
            assert_eq!(backoff.delays_hint(), hint, "{i}");
            let delays = backoff.delays();
            let count = delays.count();
            assert!(
                hint.0 <= count && hint.1.is_none_or(|most| count <= most),
                "{i}"
            );
        }
        // The upper bounds of a chain add up, and an unknown one stays unknown.
        let unknown = from_fn(|| [Duration::from_secs(1)]);
        assert_eq!(p(3).chain(unknown).delays_hint(), (3, None));
    }
}
