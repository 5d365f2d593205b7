//! The future the retry policy waits on between attempts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

pin_project! {
    /// The wait before a retry: a tokio [`Sleep`] for the delay, or nothing at all for a
    /// zero delay.
    ///
    /// A zero delay is ready at once. A `Sleep` of zero would not be: tokio's timer
    /// rounds deadlines up to its next millisecond tick, so a "retry at once" would wait
    /// for the timer to turn (up to a millisecond or more on a busy runtime, many times
    /// the length of a loopback call).
    ///
    /// It is the [`Future`](tower::retry::Policy::Future) of
    /// [`JsonRpcRetryPolicy`](crate::JsonRpcRetryPolicy)'s `tower::retry::Policy`
    /// implementations; tower's `Retry` awaits it before sending the request again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::retry::future::Delay;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// Delay::new(Duration::ZERO).await; // ready at once, no timer
    /// Delay::new(Duration::from_millis(100)).await; // a tokio sleep
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct Delay {
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl Delay {
    /// Waits for `delay` on tokio's clock; a zero delay does not wait.
    ///
    /// # Panics
    ///
    /// For a non-zero delay, outside a tokio runtime with the time driver enabled, as
    /// [`tokio::time::sleep`] does.
    pub fn new(delay: Duration) -> Self {
        Self {
            sleep: (!delay.is_zero()).then(|| tokio::time::sleep(delay)),
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Ready(()),
        }
    }
}
