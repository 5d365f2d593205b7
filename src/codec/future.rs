//! The codec's response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::combinators::Collect;
use http_body_util::{BodyExt, Limited};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::{Error, Expected, RawAnswer};
use crate::BoxError;

/// Turns the HTTP answer into the codec's response type.
pub(super) type Decode<T> = fn(Expected, http::response::Parts, Bytes) -> Result<T, Error>;

pin_project! {
    /// The response future of [`JsonRpcCodec`](super::JsonRpcCodec): awaits the HTTP
    /// response, reads its body within the limit, and decodes it.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F, B, T>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<F, B>,
        #[pin]
        deadline: Option<Sleep>,
        expected: Option<Expected>,
        limit: usize,
        decode: Decode<T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Call { #[pin] fut: F },
        Body { #[pin] collect: Collect<Limited<B>>, parts: Option<http::response::Parts> },
        Failed { error: Option<Error> },
        Done,
    }
}

impl<F, B, T> ResponseFuture<F, B, T>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// A future that fails at once, without calling the inner service.
    pub(super) fn failed(error: Error, decode: Decode<T>) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
            deadline: None,
            expected: None,
            limit: 0,
            decode,
        }
    }

    pub(super) fn new(
        fut: F,
        expected: Expected,
        limit: usize,
        timeout: Option<Duration>,
        decode: Decode<T>,
    ) -> Self {
        Self {
            state: State::Call { fut },
            deadline: timeout.map(tokio::time::sleep),
            expected: Some(expected),
            limit,
            decode,
        }
    }
}

impl<F, B, T, E> Future for ResponseFuture<F, B, T>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(deadline) = this.deadline.as_mut().as_pin_mut() {
            if deadline.poll(cx).is_ready() && !matches!(*this.state, State::Done) {
                // Ended while the body was still coming: what the head said stays.
                let err = match this.state.as_mut().project() {
                    StateProj::Body { parts, .. } => match parts.take() {
                        Some(parts) => unread(parts, None, Error::timeout()),
                        None => Error::timeout(),
                    },
                    _ => Error::timeout(),
                };
                this.state.set(State::Done);
                return Poll::Ready(Err(err));
            }
        }
        loop {
            match this.state.as_mut().project() {
                StateProj::Call { fut } => {
                    let response = match ready!(fut.poll(cx)) {
                        Ok(response) => response,
                        Err(e) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(Error::transport(e)));
                        }
                    };
                    let (parts, body) = response.into_parts();
                    // A notification gets no response: a 2xx answer's body is not read
                    // (nor limited, nor decoded), as the module docs promise.
                    let notification = if parts.status.is_success() {
                        this.expected
                            .take_if(|expected| matches!(expected, Expected::Notification(_)))
                    } else {
                        None
                    };
                    if let Some(expected) = notification {
                        this.state.set(State::Done);
                        return Poll::Ready((this.decode)(expected, parts, Bytes::new()));
                    }
                    let declared = body.size_hint().exact();
                    if declared.is_some_and(|len| len > *this.limit as u64) {
                        this.state.set(State::Done);
                        let err = Error::body_too_large(*this.limit);
                        return Poll::Ready(Err(unread(parts, this.expected.as_ref(), err)));
                    }
                    let collect = Limited::new(body, *this.limit).collect();
                    this.state.set(State::Body {
                        collect,
                        parts: Some(parts),
                    });
                }
                StateProj::Body { collect, parts } => {
                    let result = ready!(collect.poll(cx));
                    let parts = parts.take();
                    this.state.set(State::Done);
                    let (Some(parts), Some(expected)) = (parts, this.expected.take()) else {
                        return Poll::Pending;
                    };
                    return Poll::Ready(match result {
                        Ok(collected) => (this.decode)(expected, parts, collected.to_bytes()),
                        Err(e) => Err(unread(parts, Some(&expected), Error::body(e, *this.limit))),
                    });
                }
                StateProj::Failed { error } => {
                    let error = error.take();
                    this.state.set(State::Done);
                    if let Some(error) = error {
                        return Poll::Ready(Err(error));
                    }
                }
                StateProj::Done => return Poll::Pending,
            }
        }
    }
}

impl<F, B, T> fmt::Debug for ResponseFuture<F, B, T>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("expected", &self.expected)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// The error for an answer whose body was not read whole. Over the limit under a
/// failure status, the status is the answer (a 503 with a large error page is a 503),
/// its head kept without the body when the codec keeps raw answers; under a success
/// status, the body was needed, so `err`. A body that breaks off or runs out of time
/// stays that error, whatever the status. Either error keeps the answer's status and
/// `Retry-After`: the rules on the status and the server's hint still decide.
fn unread(parts: http::response::Parts, expected: Option<&Expected>, err: Error) -> Error {
    let hint = super::RetryAfter::from_headers(&parts.headers).map(|hint| hint.delay());
    if parts.status.is_success() || !err.is_body_too_large() {
        return err.with_status(parts.status, hint);
    }
    let status = super::status_error(&parts);
    if expected.is_some_and(Expected::keeps_raw) {
        status.with_raw(RawAnswer {
            head: super::without_body(parts),
            body: Bytes::new(),
        })
    } else {
        status
    }
}
