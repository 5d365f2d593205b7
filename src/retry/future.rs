//! The futures of the retry layer: the call's at both levels, and the wait between
//! attempts.

pub use super::http::HttpRetryFuture;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::retry::Policy;
use tower_service::Service;

use super::attempts::Attempts;
use super::{InspectError, JsonRpcRetryPolicy};
use crate::fused::Fused;

pin_project! {
    /// The wait before a retry: a tokio [`Sleep`] for the delay, or nothing at all for a
    /// zero delay.
    ///
    /// A zero delay sets no timer: it yields to the executor once and is then ready. A
    /// `Sleep` of zero would wait longer: tokio's timer rounds deadlines up to its next
    /// millisecond tick, so a "retry at once" would wait for the timer to turn (up to a
    /// millisecond or more on a busy runtime, many times the length of a loopback call).
    /// Not waiting at all would be worse: attempts that fail at once (an in-memory
    /// service, a closed `Buffer`) would be retried in one `poll`, holding the worker
    /// thread for as long as the backoff has delays.
    ///
    /// It is the [`Future`](tower::retry::Policy::Future) of
    /// [`JsonRpcRetryPolicy`](crate::JsonRpcRetryPolicy)'s `tower::retry::Policy`
    /// implementations; tower's `Retry` awaits it before sending the request again. It is
    /// not `Unpin` (it may hold a tokio `Sleep`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::retry::future::Delay;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// Delay::new(Duration::ZERO).await; // no timer: yields once
    /// Delay::new(Duration::from_millis(100)).await; // a tokio sleep
    /// # }
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Delay {
        #[pin]
        sleep: Option<Sleep>,
        // For a zero delay: whether it has yielded once.
        yielded: bool,
    }
}

impl Delay {
    /// Waits for `delay` on tokio's clock; a zero delay sets no timer and only yields
    /// to the executor once. Tokio waits no longer than its far future, about 30 years:
    /// a longer delay waits that long.
    ///
    /// # Panics
    ///
    /// For a non-zero delay, outside a tokio runtime with the time driver enabled, as
    /// [`tokio::time::sleep`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::pin;
    /// use std::task::{Context, Waker};
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::retry::future::Delay;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// // A zero delay sets no timer, so it needs no runtime: it is ready on its second poll.
    /// let mut zero = pin!(Delay::new(Duration::ZERO));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(zero.as_mut().poll(&mut cx).is_pending());
    /// assert!(zero.as_mut().poll(&mut cx).is_ready());
    ///
    /// # let mut rt = tokio::runtime::Builder::new_current_thread();
    /// # let rt = rt.enable_time().start_paused(true).build()?;
    /// # rt.block_on(async {
    /// // Any other delay waits on tokio's clock (here paused, so at once).
    /// let start = tokio::time::Instant::now();
    /// Delay::new(Duration::from_millis(100)).await;
    /// assert!(start.elapsed() >= Duration::from_millis(100));
    /// # });
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(delay: Duration) -> Self {
        Self::counted_from(Instant::now(), delay)
    }

    /// Waits until `delay` after `start`, not after now: the time spent since `start`
    /// (a retry's hook, say) comes out of the wait. A zero delay only yields once.
    pub(crate) fn counted_from(start: Instant, delay: Duration) -> Self {
        let sleep = match start.checked_add(delay) {
            _ if delay.is_zero() => None,
            Some(end) if delay <= crate::FAR_FUTURE => Some(tokio::time::sleep_until(end)),
            // Beyond tokio's own far future, which `sleep` waits instead: an end near
            // what an `Instant` can hold overflows in tokio's timer, which rounds it up.
            _ => Some(tokio::time::sleep(delay)),
        };
        Self {
            sleep,
            yielded: false,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None if *this.yielded => Poll::Ready(()),
            None => {
                *this.yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

pin_project! {
    /// The response future of [`JsonRpcRetry`](super::JsonRpcRetry): tower's `Retry`
    /// future, for a call of request type `R` (a [`Request`](crate::jsonrpc::Request) or a
    /// [`BatchRequest`](crate::jsonrpc::BatchRequest)) over the inner service `S`. Polled
    /// again after its output, it stays pending. It is not `Unpin` (its waits are tokio
    /// timers): pin it to poll it by hand.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<S, R>
    where
        S: Service<R>,
        S: Clone,
        S::Error: InspectError,
        S::Error: Send,
        S::Error: Sync,
        S::Error: 'static,
        R: 'static,
        JsonRpcRetryPolicy: Policy<R, S::Response, S::Error>,
    {
        #[pin]
        pub(super) inner: Fused<tower::retry::future::ResponseFuture<JsonRpcRetryPolicy, Attempts<S>, R>>,
    }
}

impl<S, R> Future for ResponseFuture<S, R>
where
    S: Service<R> + Clone,
    S::Error: InspectError + Send + Sync + 'static,
    JsonRpcRetryPolicy: Policy<R, S::Response, S::Error>,
    R: Clone + 'static,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S, R> fmt::Debug for ResponseFuture<S, R>
where
    S: Service<R> + Clone,
    S::Error: InspectError + Send + Sync + 'static,
    R: 'static,
    JsonRpcRetryPolicy: Policy<R, S::Response, S::Error>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The longest delay an `Instant` holds from `now`, found by halving.
    pub(crate) fn longest_from(now: Instant) -> Duration {
        let (mut fits, mut over) = (Duration::ZERO, Duration::MAX);
        while over - fits > Duration::from_nanos(1) {
            let mid = fits + (over - fits) / 2;
            if now.checked_add(mid).is_some() {
                fits = mid;
            } else {
                over = mid;
            }
        }
        fits
    }

    /// A delay whose end an `Instant` just holds, but tokio's timer (which rounds a
    /// deadline up to the next millisecond) would not: it waits tokio's far future, as
    /// `sleep` does, and polling it does not panic.
    #[tokio::test(start_paused = true)]
    async fn a_delay_ending_near_the_end_of_time_waits_without_panicking() {
        let now = Instant::now();
        let delay = longest_from(now).saturating_sub(Duration::from_micros(500));
        for wait in [Delay::counted_from(now, delay), Delay::new(delay)] {
            let mut wait = std::pin::pin!(wait);
            let pending =
                std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await;
            assert!(pending);
        }
    }
}
