//! The response future of [`HttpRetry`](super::HttpRetry), and the errors a call ends in
//! before they become the caller's type.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;

use crate::BoxError;
use crate::fused::Fused;

/// The error of a call the layer ends on time: the call's deadline came, or the attempt's
/// timeout.
pub(super) fn elapsed<SE>() -> Failure<SE> {
    Failure::Layer(Box::new(tower::timeout::error::Elapsed::new()))
}

/// Why a call of [`HttpRetry`](super::HttpRetry) failed, before it becomes the caller's
/// error type.
pub(super) enum Failure<SE> {
    /// The inner service's own error, returned as it was (`E::from`).
    Inner(SE),
    /// An error the layer found (through `map_err`).
    Layer(BoxError),
}

/// A call of [`HttpRetry`](super::HttpRetry), boxed, before its error becomes the
/// caller's.
pub(super) type BoxedCall<SE> =
    Pin<Box<dyn Future<Output = Result<http::Response<Full<Bytes>>, Failure<SE>>> + Send>>;

/// The response future of [`HttpRetry`](super::HttpRetry): the call, boxed.
///
/// Its error is turned into the caller's type `E` (the inner service's error `SE` by
/// `From`, the layer's own by [`map_err`](super::HttpRetryLayer::map_err)).
///
/// `Send`. It asks nothing of `E` (not even `'static`): a task that awaits a call
/// with the default error type, `BoxError`, can be spawned.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct HttpRetryFuture<SE, E> {
    /// Pending once the call has given its result (the boxed `async` block would panic
    /// if resumed).
    pub(super) call: Fused<BoxedCall<SE>>,
    pub(super) from_inner: fn(SE) -> E,
    pub(super) map_err: fn(BoxError) -> E,
}

impl<SE, E> Future for HttpRetryFuture<SE, E> {
    type Output = Result<http::Response<Full<Bytes>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.call).poll(cx));
        Poll::Ready(result.map_err(|failure| match failure {
            Failure::Inner(err) => (self.from_inner)(err),
            Failure::Layer(err) => (self.map_err)(err),
        }))
    }
}

impl<SE, E> fmt::Debug for HttpRetryFuture<SE, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRetryFuture").finish_non_exhaustive()
    }
}
