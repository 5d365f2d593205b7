//! Retries that understand JSON-RPC: the strategy, the tower policy and the layer.
//!
//! A result goes through one decision, in this order:
//!
//! 1. **Classify.** A success is final, unless a result rule matches it
//!    ([`RetryStrategy::retry_result_if`]). An error response is retryable when its code is
//!    listed ([`RetryStrategy::codes`]) or a response rule matches; any response that came
//!    with a listed HTTP status is too; but an error response a veto names
//!    ([`RetryStrategy::never_retry_response_if`]) is final, whatever its code or status. A
//!    transport error is retryable when a matcher finds it: by type in its `source()`
//!    chain, by [`ErrorClass`], or by predicate (not a request the codec refused unsent,
//!    nor one to a URI whose scheme the connector does not speak: every attempt would be
//!    refused the same way). A non-idempotent method is retried only
//!    after an error that proves the request was never run (a connect failure, a request
//!    hyper handed back unwritten, an HTTP/2 stream the server refused (with the `http2`
//!    feature), a readiness error of the codec's HTTP service or a `LoadShed` refusal below
//!    the layer).
//! 2. **Delay.** The request's backoff yields the next delay (none left: give up); a
//!    server's `Retry-After` (or a `backoff_seconds` in the error's `data`, as Infura
//!    sends, or a hint a [`retry_after_from`](RetryStrategy::retry_after_from) rule
//!    reads) raises it, up to the ceiling.
//! 3. **Limits.** A wait that would end at or past
//!    [`max_elapsed`](RetryStrategy::max_elapsed) is not started (and over the codec
//!    every attempt is cut short at the deadline); a retry the budget refuses is not
//!    made.
//! 4. **Wait and resend.** The hook and a `tracing` event report the retry, the policy
//!    sleeps on tokio's clock, and tower's `Retry` sends the request again (for a batch,
//!    only the items to retry).
//!
//! When retries end, the last error *response* is returned as `Ok`, the last transport
//! *error* as `Err`, of the same type and with the same source chain, except for a
//! partly retried batch whose re-send fails: it is returned as `Ok` with every call's
//! latest answer. Either records how the retries ended ([`GaveUp`]).

mod attempts;
mod decide;
mod event;
pub mod future;
mod http;
mod inspect;
mod layer;
mod policy;
mod strategy;

pub use event::{GaveUp, GiveUpEvent, GiveUpReason, RetryEvent, RetryReason};
pub use http::{HttpRetry, HttpRetryLayer};
pub use inspect::InspectError;
pub use layer::{JsonRpcRetry, JsonRpcRetryLayer};
pub use policy::JsonRpcRetryPolicy;
pub use strategy::{DEFAULT_RETRY_AFTER_CEILING, ErrorClass, RetryStrategy};

pub(crate) use decide::data_hint;

/// `err` and every error below it, outermost first.
///
/// It is the walk that [`retry_on_error`](RetryStrategy::retry_on_error) and
/// [`ErrorClass`] make, for a [`retry_if`](RetryStrategy::retry_if) predicate that looks
/// down the chain.
///
/// It differs from following `source()` in two ways. A `std::io::Error` that wraps
/// another error is followed into it: its own `source()` skips the wrapped error, so
/// tower's `Elapsed` behind `io::Error::other`, or tokio's behind hyper-util's connect
/// timeout, would be missed. And a chain that comes back on itself ends: the walk stops,
/// without allocating, once it has yielded every error in the loop; before it notices,
/// it may go round the loop more than once, so an error in the loop may be yielded
/// several times.
///
/// # Examples
///
/// ```
/// use tower::timeout::error::Elapsed;
/// use tower_jsonrpc_retry::BoxError;
/// use tower_jsonrpc_retry::retry::error_chain;
///
/// let err = std::io::Error::other(Elapsed::new());
/// assert!(error_chain(&err).any(|e| e.is::<Elapsed>()));
/// // `source()` alone goes past it:
/// let by_source = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| e.source());
/// assert!(!by_source.into_iter().any(|e| e.is::<Elapsed>()));
/// ```
pub fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    crate::classify::chain(err)
}
