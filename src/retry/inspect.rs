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
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static);

    /// The HTTP status the server answered with, if the error carries one.
    fn status(&self) -> Option<StatusCode> {
        find_codec_error(self.as_error()).and_then(codec::Error::status)
    }

    /// The server's `Retry-After` hint, if the error carries one.
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
