//! Whether a result warrants a retry: the one place that reads responses and errors.

use std::error::Error as StdError;
use std::time::Duration;

use http::StatusCode;

use super::event::{GiveUpReason, RetryReason};
use super::inspect::InspectError;
use super::strategy::{ErrorClass, ErrorMatcher, RetryStrategy};
use crate::jsonrpc::{ErrorObject, Response, ResultUnbuilt};

/// What the rules say of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Retried, for this reason.
    Retry(RetryReason),
    /// A rule retries it, but the method is non-idempotent and the server may have run
    /// it: not retried ([`GiveUpReason::NotIdempotent`]).
    HeldBack,
    /// No rule retries it (or nothing failed).
    Unmatched,
}

impl Verdict {
    /// Why it is retried, if it is.
    pub(crate) fn retry(self) -> Option<RetryReason> {
        match self {
            Verdict::Retry(reason) => Some(reason),
            Verdict::HeldBack | Verdict::Unmatched => None,
        }
    }

    /// Why it is not retried when no limit stops it: the idempotency rule, or no rule.
    pub(crate) fn unretried(self) -> GiveUpReason {
        match self {
            Verdict::HeldBack => GiveUpReason::NotIdempotent,
            Verdict::Retry(_) | Verdict::Unmatched => GiveUpReason::NotRetryable,
        }
    }

    /// A batch's verdict with one more call's: the first call's reason to retry, else
    /// held back if any call is.
    pub(crate) fn join(self, next: Verdict) -> Verdict {
        match (self, next) {
            (Verdict::Retry(_), _) => self,
            (_, Verdict::Retry(_)) => next,
            (Verdict::HeldBack, _) | (_, Verdict::HeldBack) => Verdict::HeldBack,
            (Verdict::Unmatched, Verdict::Unmatched) => Verdict::Unmatched,
        }
    }

    /// A rule's reason, held back when `held` (the method is non-idempotent and the
    /// failure does not prove the server never ran it).
    fn of(reason: Option<RetryReason>, held: bool) -> Self {
        match reason {
            None => Verdict::Unmatched,
            Some(_) if held => Verdict::HeldBack,
            Some(reason) => Verdict::Retry(reason),
        }
    }
}

/// What the rules say of a JSON-RPC response.
///
/// An error response is retried when its code is listed or a response predicate
/// matches; any response is retried when it came with an HTTP status the strategy lists;
/// an error response a veto matches (`never_retry_response_if`) is not, whatever else
/// holds; a successful answer is retried when a result rule matches it.
/// A non-idempotent method's answer is never retried: the server has seen the call.
pub(crate) fn response(strategy: &RetryStrategy, method: &str, response: &Response) -> Verdict {
    let rules = &strategy.inner.result_predicates;
    // A result the HTTP level could not build (it passes on the bytes) is read by no rule.
    let built = || response.extensions().get::<ResultUnbuilt>().is_none();
    let result = response.result().filter(|_| !rules.is_empty() && built());
    if result.is_some_and(|result| rules.iter().any(|p| p(method, result))) {
        return Verdict::of(
            Some(RetryReason::Result),
            strategy.is_non_idempotent(method),
        );
    }
    answer_verdict(strategy, method, response, response.error())
}

/// What the rules say of what came back for a notification: decided by its status
/// only. A notification has no answer of its own, so codes and response rules never
/// apply (an error object is about something else: the server could not read it).
pub(crate) fn notification(strategy: &RetryStrategy, method: &str, response: &Response) -> Verdict {
    answer_verdict(strategy, method, response, None)
}

/// Whether any rule of `strategy` could retry this answer: an error, or a failure
/// status, or a success when a rule reads results. A success over 2xx, the happy path,
/// otherwise never is.
pub(crate) fn may_retry(strategy: &RetryStrategy, response: &Response) -> bool {
    response.is_error()
        || response.extensions().get::<StatusCode>().is_some()
        || !strategy.inner.result_predicates.is_empty()
}

fn answer_verdict(
    strategy: &RetryStrategy,
    method: &str,
    response: &Response,
    error: Option<&ErrorObject>,
) -> Verdict {
    let status = response.extensions().get::<StatusCode>().copied();
    if error.is_none() && status.is_none() {
        return Verdict::Unmatched; // the happy path: a success over 2xx
    }
    let inner = &strategy.inner;
    if error.is_some_and(|error| inner.response_vetoes.iter().any(|p| p(error))) {
        return Verdict::Unmatched;
    }
    let reason = error
        .and_then(|error| {
            if inner.codes.binary_search(&error.code()).is_ok() {
                Some(RetryReason::Code(error.code()))
            } else if inner.response_predicates.iter().any(|p| p(error)) {
                Some(RetryReason::ResponsePredicate(error.code()))
            } else {
                None
            }
        })
        .or_else(|| {
            let status = status?;
            inner.matchers.iter().find_map(|m| status_rule(m, status))
        });
    Verdict::of(
        reason,
        reason.is_some() && strategy.is_non_idempotent(method),
    )
}

/// Why a status is retried by this rule, if the rule is one on statuses
/// ([`ErrorClass::Status`], a status predicate) and holds for it.
fn status_rule(matcher: &ErrorMatcher, status: StatusCode) -> Option<RetryReason> {
    let holds = match matcher {
        ErrorMatcher::Class(ErrorClass::Status(s)) => *s == status,
        ErrorMatcher::Status(p) => p(status),
        _ => false,
    };
    holds.then_some(RetryReason::Class(ErrorClass::Status(status)))
}

/// What the rules say of a transport error.
///
/// A non-idempotent request (`non_idempotent`: for a batch, whether any of its methods
/// is) is retried only when the error proves the server did not run it
/// (`classify::provably_not_run`: it never left the client, or the server refused its
/// HTTP/2 stream), and the strategy retries that error. A request the codec refused
/// unsent ([`is_invalid_request`](crate::codec::Error::is_invalid_request)), or one to a
/// URI whose scheme the connector does not speak (`UnsupportedScheme` in the chain, or
/// hyper-util's `HttpConnector`'s refusal), is
/// retried by no rule, a catch-all predicate's included: every attempt would be refused
/// the same way.
pub(crate) fn error<E: InspectError>(
    strategy: &RetryStrategy,
    non_idempotent: bool,
    err: &E,
) -> Verdict {
    let dyn_err: &(dyn StdError + 'static) = err.as_error();
    if any_codec_error(dyn_err, crate::codec::Error::is_invalid_request)
        || crate::classify::is_unsupported_scheme(dyn_err)
    {
        return Verdict::Unmatched;
    }
    let status = err.status();
    let reason = strategy.inner.matchers.iter().find_map(|m| match m {
        ErrorMatcher::Type(is, name) => is(dyn_err).then_some(RetryReason::Error(name)),
        ErrorMatcher::Status(_) => status.and_then(|s| status_rule(m, s)),
        // A status class holds for the error's status, if it has one.
        ErrorMatcher::Class(class) => class
            .matches(dyn_err, status)
            .then_some(RetryReason::Class(*class)),
        ErrorMatcher::Predicate(p) => p(dyn_err).then_some(RetryReason::Predicate),
    });
    let held = reason.is_some() && non_idempotent && !crate::classify::provably_not_run(dyn_err);
    Verdict::of(reason, held)
}

/// Whether `err` is a content-encoded answer the HTTP-level layer could not read, kept to
/// be handed back as it came: the server's answer, for the caller to read, which no rule
/// reads and which is no failure. (Except as the answer to a batch's re-send, which must
/// be gathered with the answers kept: the policy asks this only where it is not.)
pub(crate) fn is_unread_answer<E: InspectError>(err: &E) -> bool {
    any_codec_error(err.as_error(), crate::codec::Error::is_unread_answer)
}

/// Whether a [`codec::Error`](crate::codec::Error) anywhere in `err`'s chain is `is`.
fn any_codec_error(err: &(dyn StdError + 'static), is: fn(&crate::codec::Error) -> bool) -> bool {
    crate::classify::chain(err).any(|e| e.downcast_ref::<crate::codec::Error>().is_some_and(is))
}

/// The wait hint of an error answer: in its `data` ([`data_hint`]), or read by the
/// strategy's own rules ([`retry_after_from`](RetryStrategy::retry_after_from)); the
/// largest.
pub(crate) fn answer_hint(strategy: &RetryStrategy, error: &ErrorObject) -> Option<Duration> {
    let read = strategy
        .inner
        .hint_readers
        .iter()
        .filter_map(|read| read(error));
    read.max().max(data_hint(error))
}

/// A provider's wait hint in an error's `data`: Infura's `backoff_seconds`, at the top
/// (as documented) or under `rate` (as sent). Clamped like `Retry-After`, by the
/// ceiling: a number too large for a `Duration` waits the ceiling, a negative one (or a
/// string) is no hint, and leaves the other place to be read.
pub(crate) fn data_hint(error: &ErrorObject) -> Option<Duration> {
    let data = error.data()?;
    let top = data.get("backoff_seconds");
    let nested = data
        .get("rate")
        .and_then(|rate| rate.get("backoff_seconds"));
    let secs = [top, nested]
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_f64)
        .find(|secs| !secs.is_sign_negative())?;
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hint(data: serde_json::Value) -> Option<Duration> {
        data_hint(&ErrorObject::new(-32005, "limited").with_data(data))
    }

    #[test]
    fn a_wait_hint_is_read_at_the_top_or_under_rate() {
        let secs = Duration::from_secs;
        assert_eq!(hint(json!({"backoff_seconds": 30})), Some(secs(30)));
        assert_eq!(hint(json!({"rate": {"backoff_seconds": 2}})), Some(secs(2)));
        // The top wins when both are numbers.
        let both = json!({"backoff_seconds": 1, "rate": {"backoff_seconds": 2}});
        assert_eq!(hint(both), Some(secs(1)));
        // A top that is no hint leaves the nested one to be read.
        let string = json!({"backoff_seconds": "soon", "rate": {"backoff_seconds": 2}});
        assert_eq!(hint(string), Some(secs(2)));
        let negative = json!({"backoff_seconds": -1, "rate": {"backoff_seconds": 2}});
        assert_eq!(hint(negative), Some(secs(2)));
        assert_eq!(hint(json!({"backoff_seconds": -1})), None);
        assert_eq!(hint(json!({"backoff_seconds": 1e300})), Some(Duration::MAX));
        assert_eq!(hint(json!("backoff_seconds")), None);
    }
}
