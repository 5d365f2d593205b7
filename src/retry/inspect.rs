use std::error::Error as StdError;
use std::time::Duration;

use http::StatusCode;

use super::event::GaveUp;
use crate::BoxError;
use crate::codec;

/// What the retry policy needs to know about an inner service's error.
///
/// The policy decides synchronously, from the error alone, so everything a decision
/// needs must be readable from it: its `source()` chain (for
/// [`retry_on_error`](crate::RetryStrategy::retry_on_error) and
/// [`ErrorClass`](crate::ErrorClass)), the HTTP status and the server's `Retry-After`.
///
/// It is implemented for [`codec::Error`] (what [`JsonRpcCodec`](crate::codec::JsonRpcCodec)
/// fails with), for [`BoxError`] (what tower layers such as `TimeoutLayer` turn errors
/// into), and for `std::io::Error` and `Infallible` (test doubles). For any other error
/// type, implement [`as_error`](Self::as_error); the provided
/// methods find a [`codec::Error`] anywhere in the chain and read its status and hint.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::InspectError;
///
/// #[derive(Debug)]
/// struct MyTransportError(std::io::Error);
/// # impl std::fmt::Display for MyTransportError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("transport") }
/// # }
/// impl std::error::Error for MyTransportError {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// impl InspectError for MyTransportError {
///     fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
///         self
///     }
/// }
/// ```
pub trait InspectError {
    /// The error as a `std::error::Error`, whose `source()` chain is searched (and which
    /// [`GiveUpEvent::error`](crate::GiveUpEvent::error) hands to hooks).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tower_jsonrpc_retry::InspectError;
    /// use tower_jsonrpc_retry::retry::error_chain;
    ///
    /// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "node down");
    /// let err = io::Error::other(refused); // as a connector might wrap it
    /// let kinds: Vec<_> = error_chain(err.as_error())
    ///     .filter_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
    ///     .collect();
    /// assert!(kinds.contains(&io::ErrorKind::ConnectionRefused));
    /// ```
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static);

    /// The HTTP status the server answered with, if the error carries one.
    ///
    /// # Examples
    ///
    /// The provided method finds a [`codec::Error`] anywhere in the chain, here inside an
    /// error type of your own:
    ///
    /// ```
    /// # use std::fmt;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::codec::{self, JsonRpcCodec};
    /// use tower_jsonrpc_retry::{InspectError, http, jsonrpc::Request};
    ///
    /// #[derive(Debug)]
    /// struct NodeError(codec::Error);
    /// # impl fmt::Display for NodeError {
    /// #     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("node") }
    /// # }
    /// impl std::error::Error for NodeError {
    ///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
    ///         Some(&self.0)
    ///     }
    /// }
    /// impl InspectError for NodeError {
    ///     fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
    ///         self
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let limited = service_fn(|_: http::Request<_>| async {
    ///     http::Response::builder().status(429).body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(limited, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let err = NodeError(codec.oneshot(call).await.unwrap_err());
    /// assert_eq!(err.status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
    /// # Ok(())
    /// # }
    /// ```
    fn status(&self) -> Option<StatusCode> {
        find_codec_error(self.as_error()).and_then(codec::Error::status)
    }

    /// The server's `Retry-After` hint, if the error carries one.
    ///
    /// # Examples
    ///
    /// A [`BoxError`], as tower's `TimeoutLayer` hands errors on, still gives the hint of
    /// the codec's error inside it:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{BoxError, InspectError, http, jsonrpc::Request};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// let busy = service_fn(|_: http::Request<_>| async {
    ///     http::Response::builder().status(503).header("retry-after", "7").body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(busy, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let err: BoxError = codec.oneshot(call).await.unwrap_err().into();
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    /// # Ok(())
    /// # }
    /// ```
    fn retry_after(&self) -> Option<Duration> {
        find_codec_error(self.as_error()).and_then(codec::Error::retry_after)
    }

    /// An error of this type saying that the call's deadline
    /// ([`max_elapsed`](crate::RetryStrategy::max_elapsed)) passed while a retry waited
    /// for the inner service to be ready (a concurrency limit, a full `Buffer`), so that
    /// [`JsonRpcRetry`](crate::JsonRpcRetry) can end that wait at the deadline. Its
    /// `source()` chain should hold tower's `Elapsed`, as a timeout's does.
    ///
    /// The default is `None`: the type cannot say it, and such a wait is not cut short.
    /// [`codec::Error`], [`BoxError`] and `std::io::Error` give the codec's timeout
    /// (boxed, or in an `io::Error` of kind `TimedOut`), marked as not sent: the
    /// give-up it ends in does not say the last attempt may have run
    /// ([`GaveUp::last_attempt_unanswered`](crate::GaveUp::last_attempt_unanswered)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tower_jsonrpc_retry::{BoxError, InspectError};
    ///
    /// let err = io::Error::deadline_error().expect("io::Error can say it");
    /// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    /// assert!(BoxError::deadline_error().is_some());
    /// // A type that cannot say it keeps the default.
    /// assert!(std::convert::Infallible::deadline_error().is_none());
    /// ```
    fn deadline_error() -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// An error of this type saying that the call's deadline
    /// ([`max_elapsed`](crate::RetryStrategy::max_elapsed)) came while an attempt was
    /// in the inner service's hands, unanswered, so that
    /// [`JsonRpcRetry`](crate::JsonRpcRetry) can end the call at its deadline whatever
    /// is below: a `Buffer` whose queue holds the attempt behind a rate limit, a service
    /// that does not read the deadline. The attempt may have been sent. Its `source()`
    /// chain should hold tower's `Elapsed`, as a timeout's does.
    ///
    /// The default is `None`: the type cannot say it, and such an attempt runs until the
    /// inner service answers. [`codec::Error`], [`BoxError`] and `std::io::Error` give
    /// the codec's timeout (boxed, or in an `io::Error` of kind `TimedOut`), not marked
    /// as unsent. (Over the codec it is a backstop: the codec cuts its exchange at the
    /// deadline itself, a millisecond earlier, knowing whether it sent the request.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{InspectError, codec};
    ///
    /// let err = codec::Error::deadline_cut_error().expect("the codec's error can say it");
    /// assert!(err.is_timeout());
    /// ```
    fn deadline_cut_error() -> Option<Self>
    where
        Self: Sized,
    {
        None
    }

    /// Records on the error how the retries of its call ended, when the retry policy
    /// gives up on it and hands it to the caller ([`GaveUp`]).
    ///
    /// The default records nothing. [`codec::Error`] keeps it (its
    /// [`gave_up`](codec::Error::gave_up), and its message says it), and so do a
    /// [`BoxError`] and a `std::io::Error` that are a boxed `codec::Error` (not one deeper
    /// in the chain: it cannot be reached mutably). An error type of your own that holds
    /// a `codec::Error` can pass it on.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{GaveUp, GiveUpReason, InspectError, codec};
    ///
    /// // An error the retry policy is about to hand back: here, the codec's timeout.
    /// let mut err = codec::Error::deadline_error().expect("the codec's error can say it");
    /// err.record_give_up(GaveUp::new(3, GiveUpReason::Exhausted));
    /// assert_eq!(err.gave_up().map(|g| g.retries()), Some(3));
    /// ```
    fn record_give_up(&mut self, gave_up: GaveUp) {
        let _ = gave_up;
    }
}

fn find_codec_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a codec::Error> {
    crate::classify::chain(err).find_map(|e| e.downcast_ref::<codec::Error>())
}

impl InspectError for codec::Error {
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn status(&self) -> Option<StatusCode> {
        codec::Error::status(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        codec::Error::retry_after(self)
    }

    fn deadline_error() -> Option<Self> {
        Some(codec::Error::deadline())
    }

    fn deadline_cut_error() -> Option<Self> {
        Some(codec::Error::timeout())
    }

    fn record_give_up(&mut self, gave_up: GaveUp) {
        self.set_gave_up(gave_up);
    }
}

impl InspectError for BoxError {
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &**self
    }

    fn deadline_error() -> Option<Self> {
        Some(Box::new(codec::Error::deadline()))
    }

    fn deadline_cut_error() -> Option<Self> {
        Some(Box::new(codec::Error::timeout()))
    }

    fn record_give_up(&mut self, gave_up: GaveUp) {
        if let Some(err) = self.downcast_mut::<codec::Error>() {
            err.set_gave_up(gave_up);
        }
    }
}

impl InspectError for std::io::Error {
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn deadline_error() -> Option<Self> {
        Some(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            codec::Error::deadline(),
        ))
    }

    fn deadline_cut_error() -> Option<Self> {
        Some(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            codec::Error::timeout(),
        ))
    }

    fn record_give_up(&mut self, gave_up: GaveUp) {
        if let Some(err) = self
            .get_mut()
            .and_then(|e| e.downcast_mut::<codec::Error>())
        {
            err.set_gave_up(gave_up);
        }
    }
}

impl InspectError for std::convert::Infallible {
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        match *self {}
    }
}
