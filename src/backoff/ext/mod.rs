//! Combinators on any backoff, one per file.

use std::time::Duration;

use super::{Backoff, BoxBackoff, Jitter};

mod chain;
mod jitter;
mod map;
mod max_delay;
mod max_retries;
mod max_total_delay;

pub use chain::Chain;
pub use jitter::{Jittered, JitteredDelays};
pub use map::{Map, MapDelays};
pub use max_delay::{MaxDelay, MaxDelayDelays};
pub use max_retries::MaxRetries;
pub use max_total_delay::{MaxTotalDelay, MaxTotalDelayDelays};

/// Combinators for every [`Backoff`], through a blanket impl.
///
/// Each returns a new recipe; the delays of a request are still drawn lazily, one at a
/// time, without allocating (but for [`boxed`](BackoffExt::boxed): one allocation per
/// request, for its boxed iterator).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter};
///
/// let b = ExponentialBackoff::doubling(usize::MAX, Duration::from_millis(100))
///     .jitter(Jitter::equal())
///     .max_delay(Duration::from_secs(5))
///     .max_retries(8)
///     .max_total_delay(Duration::from_secs(20));
/// let delays: Vec<Duration> = b.delays().collect();
/// assert!(delays.len() <= 8);
/// assert!(delays.iter().sum::<Duration>() <= Duration::from_secs(20));
/// ```
pub trait BackoffExt: Backoff + Sized {
    /// Perturbs each delay with `jitter`, retry index counted from 0.
    ///
    /// This is the same as a built-in's `with_jitter` except for the order with a cap:
    /// a built-in applies its own cap *after* its jitter (pjrpc's order), while this
    /// combinator jitters whatever the inner backoff yields, a capped value included.
    /// Write `.jitter(j).max_delay(d)` to cap after jitter. (They differ past
    /// `Duration::MAX` too: a built-in jitters its delay's exact value, this combinator
    /// the `Duration::MAX` it was saturated to.)
    ///
    /// Which order: capping first, `.max_delay(d).jitter(j)`, keeps delays at the cap
    /// spread (AWS's "full jitter" is `min(cap, d) × U[0, 1)`), so that callers failing
    /// together do not retry together, at the price of delays up to the jitter's top
    /// above the cap; capping last holds the cap exactly, but once the nominal delay
    /// passes it, every draw above the cap lands on it, the same for every caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter};
    ///
    /// let half = || Jitter::from_fn(|_| 0.5);
    /// let base = ExponentialBackoff::doubling(4, Duration::from_secs(1));
    /// let secs = |b: &dyn Fn() -> Vec<Duration>| b().iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
    ///
    /// // Built-in: jitter, then cap.
    /// let b = base.clone().with_max_delay(Duration::from_secs(3)).with_jitter(half());
    /// assert_eq!(secs(&|| b.delays().collect()), [1.5, 2.5, 3.0, 3.0]);
    ///
    /// // Combinator on a capped backoff: cap, then jitter.
    /// let b = base.clone().with_max_delay(Duration::from_secs(3)).jitter(half());
    /// assert_eq!(secs(&|| b.delays().collect()), [1.5, 2.5, 3.5, 3.5]);
    ///
    /// // Combinator, then cap: pjrpc's order again.
    /// let b = base.jitter(half()).max_delay(Duration::from_secs(3));
    /// assert_eq!(secs(&|| b.delays().collect()), [1.5, 2.5, 3.0, 3.0]);
    /// ```
    #[must_use]
    fn jitter(self, jitter: Jitter) -> Jittered<Self> {
        Jittered::new(self, jitter)
    }

    /// Caps each delay at `max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff};
    ///
    /// let b = ExponentialBackoff::doubling(3, Duration::from_secs(1)).max_delay(Duration::from_secs(2));
    /// assert!(b.delays().eq([1, 2, 2].map(Duration::from_secs)));
    /// ```
    #[must_use]
    fn max_delay(self, max: Duration) -> MaxDelay<Self> {
        MaxDelay::new(self, max)
    }

    /// Yields at most `n` delays: at most `n` retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
    ///
    /// assert_eq!(PeriodicBackoff::new(5, Duration::from_secs(1)).max_retries(1).delays().count(), 1);
    /// ```
    #[must_use]
    fn max_retries(self, n: usize) -> MaxRetries<Self> {
        MaxRetries::new(self, n)
    }

    /// Stops before the sum of the delays would exceed `budget`: the delay that would
    /// cross it is not yielded, nor any after it. This bounds the backoff's own delays,
    /// not the wall time of the attempts, nor the waits a server's `Retry-After` raises
    /// beyond them; to bound the whole call, use
    /// [`max_elapsed`](crate::RetryStrategy::max_elapsed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(10, Duration::from_secs(1)).max_total_delay(Duration::from_millis(2500));
    /// assert_eq!(b.delays().count(), 2);
    /// ```
    #[must_use]
    fn max_total_delay(self, budget: Duration) -> MaxTotalDelay<Self> {
        MaxTotalDelay::new(self, budget)
    }

    /// The delays of `self`, then those of `other`. `other`'s are its own, as if they
    /// were a request's first: its growth starts at its first delay, and a jitter in it
    /// counts retries from 0 ([`Jitter::from_fn`](super::Jitter::from_fn) is told 0 for
    /// `other`'s first delay, not the request's retry number).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, Jitter, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(1, Duration::ZERO).chain(PeriodicBackoff::new(1, Duration::from_secs(1)));
    /// assert!(b.delays().eq([Duration::ZERO, Duration::from_secs(1)]));
    ///
    /// // The second backoff's jitter is told 0, then 1: its own retries.
    /// let jittered = PeriodicBackoff::new(2, Duration::from_secs(1))
    ///     .with_jitter(Jitter::from_fn(|i| f64::from(i)));
    /// let b = PeriodicBackoff::new(1, Duration::from_secs(1)).chain(jittered);
    /// let secs: Vec<u64> = b.delays().map(|d| d.as_secs()).collect();
    /// assert_eq!(secs, [1, 1, 2]);
    /// ```
    #[must_use]
    fn chain<B: Backoff>(self, other: B) -> Chain<Self, B> {
        Chain::new(self, other)
    }

    /// Transforms each delay with `f`.
    ///
    /// `f` is yours, and so is its arithmetic: a delay may be as long as `Duration::MAX`
    /// (where a long exponential run saturates), on which `Duration`'s operators and
    /// `mul_f64` panic. Use the saturating forms (`saturating_add`, `saturating_mul`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, PeriodicBackoff};
    ///
    /// let b = PeriodicBackoff::new(1, Duration::from_secs(1)).map(|d| d + Duration::from_millis(5));
    /// assert!(b.delays().eq([Duration::from_millis(1005)]));
    /// ```
    #[must_use]
    fn map<F>(self, f: F) -> Map<Self, F>
    where
        F: Fn(Duration) -> Duration + Send + Sync + 'static,
    {
        Map::new(self, f)
    }

    /// Erases the type: [`BoxBackoff::new(self)`](BoxBackoff::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, BoxBackoff, FibonacciBackoff, PeriodicBackoff};
    ///
    /// let all: Vec<BoxBackoff> = vec![PeriodicBackoff::default().boxed(), FibonacciBackoff::default().boxed()];
    /// assert!(all.iter().all(|b| b.delays().count() == 3));
    /// ```
    #[must_use]
    fn boxed(self) -> BoxBackoff {
        BoxBackoff::new(self)
    }
}

impl<B: Backoff> BackoffExt for B {}
