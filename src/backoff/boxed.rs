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
}

impl<B: Backoff> ErasedBackoff for B {
    fn boxed_delays(&self) -> BoxDelays {
        BoxDelays(Box::new(self.delays()))
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
}
