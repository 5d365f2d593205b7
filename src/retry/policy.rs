use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tower::retry::Policy;

use super::decide::{self, Verdict};
use super::event::{
    AttemptFailure, GaveUp, GiveUpEvent, GiveUpReason, RetryEvent, RetryReason, announce_give_up,
    announce_retry, named_call,
};
use super::future::Delay;
use super::inspect::InspectError;
use super::strategy::RetryStrategy;
use crate::backoff::rng::RngSource;
use crate::backoff::{Backoff, BoxDelays};
use crate::codec::{
    Deadline, Gathering, LatestHint, RawAnswer, RawItem, RetriedInPart, RetryAfter,
};
use crate::jsonrpc::{BatchRequest, BatchResponse, ErrorObject, Id, Request, Response};

/// A [`tower::retry::Policy`] for JSON-RPC [`Request`]s and [`BatchRequest`]s.
///
/// It holds the default [`RetryStrategy`]; a strategy in a request's extensions replaces
/// it for that request. [`JsonRpcRetryLayer`](crate::JsonRpcRetryLayer) wraps a service
/// in tower's `Retry` with this policy ([`JsonRpcRetry`](crate::JsonRpcRetry)). Used
/// under a plain tower `Retry`, as below, the policy decides the same way, but only the
/// retries carry a [`max_elapsed`](RetryStrategy::max_elapsed) deadline down to the
/// codec: tower gives a policy no way to mark the request that goes first.
///
/// Per-request state (the delay iterator, the retry count, the answers
/// a batch has gathered) starts fresh for every request: tower calls `clone_request`
/// for a request's first attempt on the service's own policy and then clones the policy
/// into the response future, so cloning a policy keeps its configuration and resets
/// the rest. The delay iterator is drawn lazily, at the first retry, so a call that
/// succeeds first time costs no allocation here.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower::retry::Retry;
/// use tower_jsonrpc_retry::{JsonRpcRetryPolicy, RetryStrategy};
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
///
/// let policy = JsonRpcRetryPolicy::new(
///     RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([-32005]),
/// );
/// # let inner = tower::service_fn(|_: tower_jsonrpc_retry::jsonrpc::Request| async {
/// #     Ok::<_, tower_jsonrpc_retry::BoxError>(tower_jsonrpc_retry::jsonrpc::Response::success(1, serde_json::json!(1)))
/// # });
/// let svc = Retry::new(policy, inner);
/// # let _ = svc;
/// ```
pub struct JsonRpcRetryPolicy {
    default: RetryStrategy,
    state: State,
}

#[derive(Default)]
struct State {
    retries: u32,
    delays: Option<BoxDelays>,
    /// Boxed: only a partially retried batch fills it, and inline it would make every
    /// policy, and so every call's response future, about 120 bytes larger.
    gathered: Option<Box<Gathered>>,
}

/// What a partially retried batch has so far: every answer, and the calls that are
/// settled (not sent again), so that a final failure can name its call.
struct Gathered {
    answers: BatchResponse,
    settled: Vec<Request>,
    /// The batch's refusal, kept when a retry leaves a refused notification unsent (a
    /// non-idempotent one). Once a later exchange answers without a batch error, the
    /// merged answers no longer show the refusal, so it is added back as an answer no
    /// call took ([`refusal`]). While the batch is refused again, or after a final
    /// transport failure, the batch's own error still says it, once.
    refusal: Option<Response>,
    /// Whether an exchange answered without a refusal of the whole batch carried a
    /// notification, which the server then ran: a later refusal of a re-send of every
    /// call is no longer one of the whole batch.
    delivered: bool,
    /// The server's latest word on time: when it came (the latest answer, or a later
    /// exchange that failed as a whole with a `Retry-After`; taken when the policy is
    /// handed it, before the retry's wait is decided), and that failure's hint
    /// (`None`: the answers' own hints are the word). When a last re-send fails without
    /// a hint of its own, what is left of that word is what the calls are told.
    word: (Instant, Option<Duration>),
}

/// Marks a batch's `answers` as retried in part once some item was left unsent
/// (`settled`): a merge takes the newer exchange's extensions, so each merge marks
/// them again.
fn mark_in_part(settled: &[Request], answers: &mut BatchResponse) {
    if !settled.is_empty() {
        answers.extensions_mut().insert(RetriedInPart);
    }
}

/// Whether a batch's failed exchange is its first, answered content-encoded: the server's
/// answer to every call, which the HTTP level hands back for the caller to read (no rule
/// reads it, and it is no failure). An encoded answer to a re-send is a failure like any
/// other: it cannot be gathered with the answers kept.
fn unread_first_answer<E: InspectError>(gathered: Option<&Gathered>, err: &E) -> bool {
    gathered.is_none() && decide::is_unread_answer(err)
}

impl JsonRpcRetryPolicy {
    /// A policy with this default strategy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{JsonRpcRetryPolicy, RetryStrategy};
    ///
    /// // Calls are sent once, unless they carry a strategy of their own.
    /// let policy = JsonRpcRetryPolicy::new(RetryStrategy::none());
    /// assert!(!policy.strategy().can_retry());
    /// ```
    #[must_use]
    pub fn new(default: RetryStrategy) -> Self {
        Self {
            default,
            state: State::default(),
        }
    }

    /// The default strategy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::JsonRpcRetryPolicy;
    ///
    /// let policy = JsonRpcRetryPolicy::default(); // `RetryStrategy::transient()`
    /// assert!(policy.strategy().can_retry());
    /// ```
    pub fn strategy(&self) -> &RetryStrategy {
        &self.default
    }
}

impl Default for JsonRpcRetryPolicy {
    /// A policy with [`RetryStrategy::default()`], the [`transient()`](RetryStrategy::transient) preset.
    fn default() -> Self {
        Self::new(RetryStrategy::default())
    }
}

impl Clone for JsonRpcRetryPolicy {
    /// Keeps the configuration; the delays, the retry count and a batch's answers start
    /// fresh.
    fn clone(&self) -> Self {
        Self {
            default: self.default.clone(),
            state: State::default(),
        }
    }
}

impl fmt::Debug for JsonRpcRetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonRpcRetryPolicy")
            .field("default", &self.default)
            .field("retries", &self.state.retries)
            .finish_non_exhaustive()
    }
}

impl JsonRpcRetryPolicy {
    /// The copy of a request kept for a retry. On a request's first attempt this sets
    /// up its state, and keeps nothing when its strategy can never retry.
    ///
    /// With a deadline ([`RetryStrategy::max_elapsed`]), the copy carries it, so that the
    /// codec cuts each retry short at the deadline too.
    fn keep<R: Clone + HasExtensions>(&mut self, req: &R) -> Option<R> {
        let first = self.state.retries == 0;
        if !first {
            return Some(req.clone());
        }
        let strategy = RetryStrategy::for_request(req.extensions(), req.method(), &self.default);
        if !self.state.begin(strategy) {
            return None;
        }
        let mut kept = req.clone();
        // A deadline already past is left over from an earlier call of the same request
        // (as `JsonRpcRetry` drops it before the first attempt; under a plain tower
        // `Retry` nothing else would): it must not end this call's retries.
        Deadline::drop_stale(kept.extensions_mut());
        if let Some(limit) = strategy.inner.max_elapsed {
            // `JsonRpcRetry` has usually given the request its deadline already; under a
            // plain tower `Retry`, the retries get it here.
            Deadline::set(kept.extensions_mut(), limit);
        }
        Some(kept)
    }
}

/// What the policy needs of a request type: its extensions, and a single call's method
/// (which may have a strategy of its own, [`RetryStrategy::for_method`]).
trait HasExtensions {
    fn extensions(&self) -> &http::Extensions;
    fn extensions_mut(&mut self) -> &mut http::Extensions;
    fn method(&self) -> Option<&str>;
}

impl HasExtensions for Request {
    fn extensions(&self) -> &http::Extensions {
        Request::extensions(self)
    }
    fn extensions_mut(&mut self) -> &mut http::Extensions {
        Request::extensions_mut(self)
    }
    fn method(&self) -> Option<&str> {
        Some(Request::method(self))
    }
}

impl HasExtensions for BatchRequest {
    fn extensions(&self) -> &http::Extensions {
        BatchRequest::extensions(self)
    }
    fn extensions_mut(&mut self) -> &mut http::Extensions {
        BatchRequest::extensions_mut(self)
    }
    fn method(&self) -> Option<&str> {
        None
    }
}

/// The give-up reason for a failure not retried, with what the rules say of it
/// (`verdict`). A timeout at or after the call's deadline is the attempt cut short at
/// it: `Deadline`, whatever the rules say (the call ran out of time). Anything else, a
/// slow failure of another kind included, is `NotIdempotent` when a rule retries it but
/// the method is non-idempotent, else `NotRetryable`.
fn unretried<E: InspectError>(
    verdict: Verdict,
    err: Option<&E>,
    deadline: Option<&Deadline>,
) -> GiveUpReason {
    match (err, deadline) {
        (Some(err), Some(deadline))
            if deadline.reached(Instant::now()) && crate::classify::is_timeout(err.as_error()) =>
        {
            GiveUpReason::Deadline
        }
        _ => verdict.unretried(),
    }
}

/// The most tokio's timer rounds a sleep's end up by: it fires on whole milliseconds.
const TIMER_ROUNDING: Duration = Duration::from_nanos(999_999);

/// What an attempt ended in: its answer's error object and failure status, or its
/// error.
fn failure_of<R: Answer, E: InspectError>(result: &Result<R, E>) -> AttemptFailure<'_> {
    match result {
        Ok(answer) => failure_of_answer(answer),
        Err(err) => failure_of_error(err),
    }
}

/// An answer's error object, and the failure status it came under.
fn failure_of_answer<R: Answer>(answer: &R) -> AttemptFailure<'_> {
    AttemptFailure {
        error_object: answer.error_object(),
        status: answer.extensions().get::<http::StatusCode>().copied(),
        error: None,
    }
}

/// An attempt's error, with its failure status: a decode or body error keeps its 2xx
/// status, which is no failure status.
fn failure_of_error<E: InspectError>(err: &E) -> AttemptFailure<'_> {
    AttemptFailure {
        error_object: None,
        status: err.status().filter(|s| !s.is_success()),
        error: Some(err.as_error()),
    }
}

/// A single answer or a batch's, for [`failure_of`]: the error object it failed with.
trait Answer {
    fn error_object(&self) -> Option<&ErrorObject>;
    fn extensions(&self) -> &http::Extensions;
}

impl Answer for Response {
    fn error_object(&self) -> Option<&ErrorObject> {
        self.error()
    }

    fn extensions(&self) -> &http::Extensions {
        Response::extensions(self)
    }
}

impl Answer for BatchResponse {
    fn error_object(&self) -> Option<&ErrorObject> {
        self.batch_error()
    }

    fn extensions(&self) -> &http::Extensions {
        BatchResponse::extensions(self)
    }
}

/// Announces a retry, then returns its wait on tokio's clock (a zero delay only yields
/// once). The wait ends `event.delay` after `decided`, the moment [`State::next_delay`]
/// checked it against the deadline, not after now: time the budget, the `tracing` event
/// or the hook takes comes out of the wait, so a wait checked to end before the deadline
/// still does.
fn wait(strategy: &RetryStrategy, event: &RetryEvent<'_>, decided: Instant) -> Delay {
    announce_retry(strategy, event);
    Delay::counted_from(decided, event.delay)
}

impl State {
    /// How the retries ended, given up for this reason.
    fn gave_up(&self, reason: GiveUpReason) -> GaveUp {
        GaveUp::new(self.retries, reason)
    }

    /// Sets up a request's first attempt (every call deposits in the budget, if there
    /// is one); `false` when its strategy can never retry, so the request need not be
    /// kept.
    fn begin(&mut self, strategy: &RetryStrategy) -> bool {
        if let Some(budget) = &strategy.inner.budget {
            budget.deposit();
        }
        strategy.can_retry()
    }

    /// The retry a result gets, given what the rules say of it: the reason, the wait and
    /// the moment it counts from; or why there is none.
    fn schedule<E: InspectError>(
        &mut self,
        strategy: &RetryStrategy,
        verdict: Verdict,
        hint: Option<Duration>,
        err: Option<&E>,
        deadline: Option<&Deadline>,
    ) -> Result<(RetryReason, Duration, Instant), GiveUpReason> {
        match verdict.retry() {
            None => Err(unretried(verdict, err, deadline)),
            Some(reason) => self
                .next_delay(strategy, hint, deadline)
                .map(|(delay, decided)| (reason, delay, decided)),
        }
    }

    /// The wait before the next retry and the moment it counts from, or why there is
    /// none. The one place delays are decided: the backoff's next delay, raised to a
    /// server's hint (up to the ceiling), checked against the call's deadline (its
    /// strategy's, or an earlier one a retry layer further out set), then paid for from
    /// the budget.
    fn next_delay(
        &mut self,
        strategy: &RetryStrategy,
        hint: Option<Duration>,
        deadline: Option<&Deadline>,
    ) -> Result<(Duration, Instant), GiveUpReason> {
        let inner = &strategy.inner;
        let backoff = inner.backoff.as_ref().ok_or(GiveUpReason::NotRetryable)?;
        let now = Instant::now();
        // A deadline already come ended the call, whatever delays are left.
        if deadline.is_some_and(|deadline| deadline.reached(now)) {
            return Err(GiveUpReason::Deadline);
        }
        let delays = self.delays.get_or_insert_with(|| backoff.delays());
        let mut delay = delays.next().ok_or(GiveUpReason::Exhausted)?;
        // When the server's hint decides the wait (a hint the ceiling lets count, as
        // long as the backoff's delay or longer), the strategy's spread may add to it.
        let mut spread = false;
        if let Some(hint) = hint.filter(|_| !inner.retry_after_ceiling.is_zero()) {
            let hint = hint.min(inner.retry_after_ceiling);
            if hint >= delay {
                delay = hint;
                spread = !inner.retry_after_spread.is_zero();
            }
        }
        // A retry that would start at the deadline has no time left to run. tokio's
        // timer fires on whole milliseconds, rounding a sleep's end up by under one (a
        // zero delay does not sleep): the wait ends by then. What is left is the room
        // between the wait's end and the deadline (unbounded without one).
        let mut room = Duration::MAX;
        if let Some(Deadline(deadline)) = deadline {
            let rounding = if delay.is_zero() {
                Duration::ZERO
            } else {
                TIMER_ROUNDING
            };
            match now.checked_add(delay) {
                Some(ends)
                    if ends
                        .checked_add(rounding)
                        .is_some_and(|end| end < *deadline) =>
                {
                    room = *deadline - ends;
                }
                _ => return Err(GiveUpReason::Deadline),
            }
        }
        if spread {
            // Drawn below the room less the timer's rounding of the spread-out wait, so
            // the retry still starts before the deadline.
            let top = inner
                .retry_after_spread
                .min(room.saturating_sub(TIMER_ROUNDING));
            delay = delay.saturating_add(spread_over(&inner.spread_source, top));
        }
        if let Some(budget) = &inner.budget {
            if !budget.withdraw() {
                return Err(GiveUpReason::Budget);
            }
        }
        self.retries = self.retries.saturating_add(1);
        Ok((delay, now))
    }
}

/// A draw of whole nanoseconds from `[0, top)` (zero for a zero `top`; a `top` past
/// 2^64 ns, 584 years, is held to it): a 64-bit word scaled by multiplying, whose bias
/// is below 2^-64, written here rather than taken from rand's distributions, so that a
/// seed gives the same draws with every rand release.
fn spread_over(source: &RngSource, top: Duration) -> Duration {
    let nanos = u128::from(u64::try_from(top.as_nanos()).unwrap_or(u64::MAX));
    let word = u128::from(source.rng().next_u64());
    // Below 2^128: both factors are below 2^64. The result is below `nanos`.
    let drawn = (word * nanos) >> 64;
    let secs = u64::try_from(drawn / 1_000_000_000).unwrap_or(0);
    let sub = u32::try_from(drawn % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

impl<E: InspectError> Policy<Request, Response, E> for JsonRpcRetryPolicy {
    type Future = Delay;

    fn retry(
        &mut self,
        req: &mut Request,
        result: &mut Result<Response, E>,
    ) -> Option<Self::Future> {
        let strategy =
            RetryStrategy::for_request(req.extensions(), Some(req.method()), &self.default);
        // An answer the HTTP level could not read (encoded): no rule reads it.
        let unread = result.as_ref().err().is_some_and(decide::is_unread_answer);
        let (verdict, hint) = match result {
            Ok(response) => {
                let verdict = if req.is_notification() {
                    decide::notification(strategy, req.method(), response)
                } else {
                    decide::response(strategy, req.method(), response)
                };
                let header = response
                    .extensions()
                    .get::<RetryAfter>()
                    .map(RetryAfter::delay);
                (
                    verdict,
                    header.max(
                        response
                            .error()
                            .and_then(|e| decide::answer_hint(strategy, e)),
                    ),
                )
            }
            Err(err) if unread => (Verdict::Unmatched, err.retry_after()),
            Err(err) => {
                let non_idempotent = strategy.is_non_idempotent(req.method());
                (
                    decide::error(strategy, non_idempotent, err),
                    err.retry_after(),
                )
            }
        };
        // A result a rule retries is a failure even when it is a success body (under a
        // listed status), held back or not; a result nothing retries is one when it is
        // an error, unless it is an answer the HTTP level could not read (encoded).
        let failed =
            verdict != Verdict::Unmatched || result.as_ref().map_or(!unread, Response::is_error);
        let deadline = req.extensions().get::<Deadline>();
        match (self.state).schedule(strategy, verdict, hint, result.as_ref().err(), deadline) {
            Ok((reason, delay, decided)) => {
                let event = RetryEvent {
                    method: req.method(),
                    id: req.id(),
                    batch_len: None,
                    retry: self.state.retries,
                    reason,
                    delay,
                    retry_after: hint,
                    failure: failure_of(result),
                };
                Some(wait(strategy, &event, decided))
            }
            Err(why) => {
                if failed {
                    let event = GiveUpEvent {
                        method: req.method(),
                        id: req.id(),
                        batch_len: None,
                        retries: self.state.retries,
                        reason: why,
                        retry_after: hint,
                        failure: failure_of(result),
                    };
                    announce_give_up(strategy, &event);
                    record_gave_up(result, self.state.gave_up(why), Response::extensions_mut);
                }
                None
            }
        }
    }

    fn clone_request(&mut self, req: &Request) -> Option<Request> {
        self.keep(req)
    }
}

impl<E: InspectError> Policy<BatchRequest, BatchResponse, E> for JsonRpcRetryPolicy {
    type Future = Delay;

    fn retry(
        &mut self,
        req: &mut BatchRequest,
        result: &mut Result<BatchResponse, E>,
    ) -> Option<Self::Future> {
        // When this exchange's word on time came, as far as the layer can tell: before
        // the retry's wait is decided, which counts from after this.
        let came = Instant::now();
        // Owned, because the request is narrowed below.
        let strategy = RetryStrategy::for_request(req.extensions(), None, &self.default).clone();
        let strategy = &strategy;
        // A batch-level error means the server processed nothing, notifications
        // included: a retry re-sends them too.
        let whole_batch_failed = result.as_ref().is_ok_and(|r| r.batch_error().is_some());
        let (verdict, hint, retry_ids) = match result {
            Err(err) if unread_first_answer(self.state.gathered.as_deref(), err) => {
                (Verdict::Unmatched, err.retry_after(), None)
            }
            Err(err) => {
                if let (Some(gathered), Some(hint)) =
                    (self.state.gathered.as_mut(), err.retry_after())
                {
                    gathered.word = (came, Some(hint));
                }
                let non_idempotent = req
                    .requests()
                    .iter()
                    .any(|r| strategy.is_non_idempotent(r.method()));
                (
                    decide::error(strategy, non_idempotent, err),
                    err.retry_after(),
                    None,
                )
            }
            Ok(response) => {
                let gathered = self.state.gather(std::mem::take(response), came);
                let (verdict, hint, retry_ids) =
                    decide_items(strategy, req, &gathered, whole_batch_failed);
                *response = gathered;
                (verdict, hint, Some(retry_ids))
            }
        };
        let deadline = req.extensions().get::<Deadline>();
        match (self.state).schedule(strategy, verdict, hint, result.as_ref().err(), deadline) {
            Ok((reason, delay, decided)) => {
                // An answer came (a transport failure re-sends the batch as it is).
                if let (Some(ids), Ok(response)) = (retry_ids, &mut *result) {
                    let answers = std::mem::take(response);
                    (self.state).narrow(strategy, req, answers, &ids, whole_batch_failed, came);
                }
                // The first call re-sent, as a give-up names a call before a
                // notification (a notification when only notifications are re-sent).
                let first = named_call(req.requests());
                let event = RetryEvent {
                    method: first.map_or("", Request::method),
                    id: first.and_then(Request::id),
                    batch_len: Some(req.len()),
                    retry: self.state.retries,
                    reason,
                    delay,
                    retry_after: hint,
                    failure: retried_failure(result, self.state.gathered.as_deref(), first),
                };
                Some(wait(strategy, &event, decided))
            }
            Err(why) => {
                self.give_up_batch(strategy, why, verdict, hint, req, result);
                None
            }
        }
    }

    fn clone_request(&mut self, req: &BatchRequest) -> Option<BatchRequest> {
        self.keep(req)
    }
}

impl JsonRpcRetryPolicy {
    /// Ends a batch's retries for `why`: reports the failure (if the batch failed),
    /// makes every answer gathered the result when the last re-send failed in transport,
    /// and records how the retries ended, on the whole and on each call sent last (after
    /// such a failure, with its last attempt unanswered). `verdict`: what the rules said
    /// of the last result (a rule that retries it makes it a failure, held back or not).
    ///
    /// The call the report names is the one the reason is about: a call held back
    /// (a failure a rule retries, on a non-idempotent method) makes the reason
    /// `NotIdempotent` when nothing else ended the retries; with no answer of its own to
    /// name (a transport failure, a refusal, a status), the first non-idempotent call is
    /// named.
    fn give_up_batch<E: InspectError>(
        &mut self,
        strategy: &RetryStrategy,
        why: GiveUpReason,
        verdict: Verdict,
        hint: Option<Duration>,
        req: &BatchRequest,
        result: &mut Result<BatchResponse, E>,
    ) {
        let gathered = self.state.gathered.take();
        // The refusal kept for a notification held back (non-idempotent) beside calls
        // sent again: the server never ran it, a final failure whatever their answers.
        let kept_refusal = result.as_ref().ok().and_then(|response| {
            (response.unmatched().iter())
                .find(|kept| kept.extensions().get::<KeptRefusal>().is_some())
        });
        let (failed, failed_call) = match &*result {
            Ok(response) => {
                let call = failed_call(strategy, why, req, gathered.as_deref(), response);
                let failed = verdict != Verdict::Unmatched
                    || call.is_some()
                    || response.batch_error().is_some()
                    || kept_refusal.is_some();
                (failed, call)
            }
            Err(err) if unread_first_answer(gathered.as_deref(), err) => (false, None),
            // A call held back by an earlier exchange of a partly retried batch, when no
            // limit ended the retries.
            Err(_) => match (why, gathered.as_deref()) {
                (GiveUpReason::NotRetryable | GiveUpReason::NotIdempotent, Some(g)) => {
                    let call = failed_call(strategy, why, req, Some(g), &g.answers);
                    (true, call.filter(|(_, _, its)| *its == Verdict::HeldBack))
                }
                _ => (true, None),
            },
        };
        // How the batch's retries ended, for the calls sent last, which went through
        // them all; the whole batch's record and report have the named call's reason.
        let ended = why;
        let why = match failed_call {
            Some((_, _, Verdict::HeldBack)) if why == GiveUpReason::NotRetryable => {
                GiveUpReason::NotIdempotent
            }
            None if why == GiveUpReason::NotRetryable && kept_refusal.is_some() => {
                GiveUpReason::NotIdempotent
            }
            _ => why,
        };
        // The call named, with its answer if it has one to show.
        let named = match failed_call {
            Some((call, item, its))
                if why != GiveUpReason::NotIdempotent || its == Verdict::HeldBack =>
            {
                Some((call, Some(item)))
            }
            _ if why == GiveUpReason::NotIdempotent => {
                let requests = req.requests().iter();
                let held = requests.filter(|r| strategy.is_non_idempotent(r.method()));
                // A notification has no answer of its own: the refusal it keeps, if any
                // (under a retry layer further in, which held it back, it is among the
                // requests still).
                let kept = |r: &Request| kept_refusal.filter(|_| r.id().is_none());
                named_call(held).map(|r| (r, kept(r))).or_else(|| {
                    // A notification held back by an earlier exchange, with the refusal
                    // it keeps.
                    let settled = gathered.as_deref().map_or(&[][..], |g| &g.settled[..]);
                    let held = settled
                        .iter()
                        .find(|r| r.id().is_none() && strategy.is_non_idempotent(r.method()));
                    held.map(|r| (r, kept_refusal))
                })
            }
            _ => None,
        };
        if failed {
            // After a transport failure, the first call sent last (a notification only
            // when the batch has no call).
            let call = named
                .map(|(call, _)| call)
                .or_else(|| named_call(req.requests()));
            let failure = match (&*result, named.and_then(|(_, item)| item)) {
                // The named call's answer, with the status it came under (it may be
                // from an earlier exchange than the last).
                (_, Some(item)) => failure_of_answer(item),
                (Ok(response), None) => failure_of_answer(response),
                (Err(err), None) => failure_of_error(err),
            };
            let event = GiveUpEvent {
                method: call.map_or("", Request::method),
                id: call.and_then(Request::id),
                batch_len: Some(req.len()),
                retries: self.state.retries,
                reason: why,
                retry_after: hint,
                failure,
            };
            announce_give_up(strategy, &event);
        }
        let mut gave_up = self.state.gave_up(why);
        let mut sent_last = self.state.gave_up(ended);
        if let (Err(err), Some(gathered)) = (&*result, gathered) {
            // The calls sent last keep earlier answers, which do not tell what the
            // failed re-send did, unless it never reached the server.
            gave_up.unanswered = !crate::classify::provably_not_run(err.as_error());
            sent_last.unanswered = gave_up.unanswered;
            *result = Ok(after_transport_failure(
                gathered.answers,
                req,
                err.retry_after(),
                gathered.word,
            ));
        }
        if failed {
            if let Ok(response) = result {
                record_sent_last(strategy, req, response, sent_last);
            }
            record_gave_up(result, gave_up, BatchResponse::extensions_mut);
        }
    }
}

impl State {
    /// Every answer a batch has so far: this exchange's merged over those gathered
    /// (the newer answer wins). The batch's refusal kept for an unsent notification
    /// ([`Gathered::refusal`]) goes back among the answers no call took once this
    /// exchange was not refused; refused again, the batch's error still says it (the
    /// merge keeps the newer refusal). A refusal of a re-send of every call is not the
    /// whole batch's once an exchange that was not refused carried a notification, which
    /// the server then ran ([`Gathered::delivered`]).
    fn gather(&mut self, response: BatchResponse, came: Instant) -> BatchResponse {
        let Some(gathered) = self.gathered.as_mut() else {
            return response;
        };
        let mut answers = std::mem::take(&mut gathered.answers);
        gathered.word = (came, None);
        if response.batch_error().is_none() {
            if let Some(refusal) = gathered.refusal.take() {
                answers.push_unmatched(refusal);
            }
        }
        answers.merge(response);
        if gathered.delivered {
            answers.not_refused_whole();
        }
        mark_in_part(&gathered.settled, &mut answers);
        answers
    }

    /// Keeps a batch's `answers` (which `came` then) and narrows `req` to the calls in
    /// `retry_ids`, with, after a batch-level error, the notifications that may go
    /// again. The rest are settled: not sent again, and a call settled on an error is
    /// given up on now.
    fn narrow(
        &mut self,
        strategy: &RetryStrategy,
        req: &mut BatchRequest,
        answers: BatchResponse,
        retry_ids: &HashSet<Id>,
        whole_batch_failed: bool,
        came: Instant,
    ) {
        // After the retries made so far: the count already includes the one about to
        // be made.
        let made = self.retries.saturating_sub(1);
        let gathered = self.gathered.get_or_insert_with(|| {
            Box::new(Gathered {
                answers: BatchResponse::default(),
                settled: Vec::new(),
                refusal: None,
                delivered: false,
                word: (came, None),
            })
        });
        gathered.answers = answers;
        // A notification goes again only after a batch-level error, and not if its
        // method is non-idempotent: the server saw the batch.
        let (again, settled) =
            std::mem::take(req.requests_mut())
                .into_iter()
                .partition(|r: &Request| match r.id() {
                    Some(id) => retry_ids.contains(id),
                    None => whole_batch_failed && !strategy.is_non_idempotent(r.method()),
                });
        *req.requests_mut() = again;
        if settled.iter().any(|r| r.id().is_none()) {
            match whole_batch_failed {
                // Unless the answers already hold one (a retry layer further in kept it).
                true => {
                    gathered.refusal = refusal(&gathered.answers).filter(|_| {
                        !gathered
                            .answers
                            .unmatched()
                            .iter()
                            .any(|kept| kept.extensions().get::<KeptRefusal>().is_some())
                    });
                }
                false => gathered.delivered = true,
            }
        }
        record_settled(strategy, &mut gathered.answers, &settled, made);
        gathered.settled.extend(settled);
        mark_in_part(&gathered.settled, &mut gathered.answers);
        // The next answer is merged with these: it must be readable.
        req.extensions_mut().insert(Gathering);
    }
}

/// What a batch's answers (all gathered so far) decide: whether to retry (the first
/// call's reason; else held back if a call's answer is, [`Verdict::join`]), the server's
/// wait hint (the larger of the answer's `Retry-After` and a retried call's hint in its
/// error; with no call retried, a held-back call's, which only the give-up reports), and
/// the calls whose latest answer warrants a retry.
fn decide_items(
    strategy: &RetryStrategy,
    req: &BatchRequest,
    gathered: &BatchResponse,
    whole_batch_failed: bool,
) -> (Verdict, Option<Duration>, HashSet<Id>) {
    let mut verdict = Verdict::Unmatched;
    let mut answers_hint = None;
    let mut held_back_hint = None;
    // Only an error or a failure status can be retried, or a result when a rule reads
    // results: a batch answered without either (the happy path) needs no index.
    let answers = if gathered
        .items()
        .iter()
        .any(|item| decide::may_retry(strategy, item))
    {
        gathered.by_id()
    } else {
        HashMap::new()
    };
    let retry_ids: HashSet<Id> = req
        .requests()
        .iter()
        .filter_map(|r| {
            let id = r.id()?;
            let item = *answers.get(id)?;
            let its = decide::response(strategy, r.method(), item);
            verdict = verdict.join(its);
            let hint = || item.error().and_then(|e| decide::answer_hint(strategy, e));
            if its == Verdict::HeldBack {
                held_back_hint = held_back_hint.max(hint());
            }
            its.retry()?;
            answers_hint = answers_hint.max(hint());
            Some(id.clone())
        })
        .collect();
    if verdict == Verdict::HeldBack {
        // Nothing is sent again, so no wait is lengthened: the hint is only reported, as
        // a single call's held-back answer reports its own.
        answers_hint = held_back_hint;
    }
    if whole_batch_failed && req.requests().iter().all(|r| r.id().is_none()) {
        // Only notifications, refused as a whole: no call's answer decides, the batch's
        // error does (with its status), for the notifications a retry would send again.
        verdict = refused_notifications(strategy, req, gathered);
        answers_hint = gathered
            .batch_error()
            .and_then(|e| decide::answer_hint(strategy, e));
    } else if whole_batch_failed && verdict.retry().is_none() {
        // Refused as a whole, and no call goes again (each held back, or not retried):
        // the server ran nothing, so the notifications that may go again are decided on
        // by the refusal, as a batch of them alone would be.
        let again = (req.requests().iter())
            .find(|r| r.id().is_none() && !strategy.is_non_idempotent(r.method()));
        let refused = again.zip(refusal(gathered));
        if let Some(retry) = refused
            .map(|(again, refusal)| decide::response(strategy, again.method(), &refusal))
            .filter(|verdict| verdict.retry().is_some())
        {
            verdict = retry;
            answers_hint = gathered
                .batch_error()
                .and_then(|e| decide::answer_hint(strategy, e));
        }
    }
    if verdict.retry().is_some() && crate::codec::repeated_id(req).is_some() {
        // Two calls share an id (a service without the codec, which refuses such a
        // batch): which call an answer is for cannot be told, so no answer decides a
        // retry. A re-send could run a call that succeeded again, and its answers could
        // not be gathered with these.
        verdict = Verdict::Unmatched;
    }
    let hint = gathered
        .extensions()
        .get::<RetryAfter>()
        .map(RetryAfter::delay)
        .max(answers_hint);
    (verdict, hint, retry_ids)
}

/// What a batch's retry event shows failed: the attempt's error, or its answer; once
/// answers are gathered, the answer of the first call re-sent, else (only notifications
/// re-sent) the batch's refusal.
fn retried_failure<'a, E: InspectError>(
    result: &'a Result<BatchResponse, E>,
    gathered: Option<&'a Gathered>,
    first: Option<&Request>,
) -> AttemptFailure<'a> {
    match (result, gathered) {
        (Err(_), _) | (Ok(_), None) => failure_of(result),
        (Ok(_), Some(gathered)) => {
            let answers = &gathered.answers;
            match first.and_then(Request::id).and_then(|id| answers.get(id)) {
                Some(item) => failure_of_answer(item),
                None => failure_of_answer(answers),
            }
        }
    }
}

/// The call a batch's final failure is about, with its answer and what the rules say of
/// it: among the calls sent last and those settled before whose latest answer failed
/// (an error, or an answer under a status a rule retries), the first that wanted
/// another retry when a limit or the backoff ended them, or else the first held back (a
/// failure a rule retries, on a non-idempotent method), else the first. `None` when no
/// answer failed.
fn failed_call<'a>(
    strategy: &RetryStrategy,
    why: GiveUpReason,
    req: &'a BatchRequest,
    gathered: Option<&'a Gathered>,
    response: &'a BatchResponse,
) -> Option<(&'a Request, &'a Response, Verdict)> {
    // A batch that succeeded: no lookups.
    if !response
        .items()
        .iter()
        .any(|item| decide::may_retry(strategy, item))
    {
        return None;
    }
    let answers = response.by_id();
    let errors = || {
        let settled = gathered.into_iter().flat_map(|g| g.settled.iter());
        req.requests().iter().chain(settled).filter_map(|r| {
            let item = *answers.get(r.id()?)?;
            let verdict = decide::response(strategy, r.method(), item);
            (item.is_error() || verdict != Verdict::Unmatched).then_some((r, item, verdict))
        })
    };
    let wanted = match why {
        GiveUpReason::NotRetryable | GiveUpReason::NotIdempotent => {
            errors().find(|(_, _, v)| *v == Verdict::HeldBack)
        }
        _ => errors().find(|(_, _, v)| v.retry().is_some()),
    };
    wanted.or_else(|| errors().next())
}

/// A retried batch's final answer when its last re-send failed in transport: every
/// answer gathered, the calls sent last keeping their last error answer. The server's
/// last word on time replaces the earlier one on the whole and on the answers to the
/// calls sent last, which are older than that word: the failure's own hint (a 429's
/// `Retry-After`); without one, what is left now of the latest `word` (a failed
/// exchange's hint, or the answers' own), none when it has run out (the layer waits a
/// hint out before a retry, up to the ceiling).
fn after_transport_failure(
    mut answers: BatchResponse,
    req: &BatchRequest,
    hint: Option<Duration>,
    word: (Instant, Option<Duration>),
) -> BatchResponse {
    let (since, failed_hint) = word;
    let elapsed = since.elapsed();
    let latest = |extensions: &mut http::Extensions| {
        let left = hint.or_else(|| {
            let told = failed_hint.or_else(|| Some(extensions.get::<RetryAfter>()?.delay()))?;
            Some(told.saturating_sub(elapsed)).filter(|left| !left.is_zero())
        });
        match left {
            Some(left) => extensions.insert(RetryAfter::new(left)),
            None => extensions.remove::<RetryAfter>(),
        };
        left
    };
    let position = answers.positions();
    for id in req.requests().iter().filter_map(Request::id) {
        if let Some(item) = position
            .get(id)
            .and_then(|&i| answers.items_mut().get_mut(i))
        {
            latest(item.extensions_mut());
        }
    }
    let extensions = answers.extensions_mut();
    let left = latest(extensions);
    extensions.insert(LatestHint(left));
    answers
}

/// Records on the failed answer of each call settled by this exchange (not sent again;
/// an error, or a success under a status a rule retries) how its retries ended: after
/// the `retries` made so far, on an answer not retried (held back, if its method is
/// non-idempotent and a rule retries the answer).
fn record_settled(
    strategy: &RetryStrategy,
    answers: &mut BatchResponse,
    settled: &[Request],
    retries: u32,
) {
    let methods = methods_by_id(settled);
    if methods.is_empty() {
        return;
    }
    for item in answers.items_mut() {
        let Some(&method) = methods.get(item.id()) else {
            continue;
        };
        // A success body under a status a rule retries is a failure, held back or not.
        let verdict = decide::response(strategy, method, item);
        if item.is_error() || verdict != Verdict::Unmatched {
            let gave_up = GaveUp::new(retries, verdict.unretried());
            insert_gave_up(item.extensions_mut(), gave_up);
        }
    }
}

/// Each call's method, by its id.
fn methods_by_id(requests: &[Request]) -> HashMap<&Id, &str> {
    requests
        .iter()
        .filter_map(|r| Some((r.id()?, r.method())))
        .collect()
}

/// Records how the retries ended on the answer to each call sent in the batch's last
/// exchange that failed: a call once answered is never sent again, so those went
/// through all of the batch's retries. One whose own answer is not retried ended on
/// that (not retryable, or held back); the others on the batch's reason. (A call
/// settled by an earlier exchange has its record already: [`record_settled`].)
fn record_sent_last(
    strategy: &RetryStrategy,
    req: &BatchRequest,
    response: &mut BatchResponse,
    gave_up: GaveUp,
) {
    let sent_last = methods_by_id(req.requests());
    for item in response.items_mut() {
        let Some(&method) = sent_last.get(item.id()) else {
            continue;
        };
        let verdict = decide::response(strategy, method, item);
        let retried = verdict.retry().is_some();
        // A success body under a status a rule retries is a failure, held back or not.
        if !item.is_error() && verdict == Verdict::Unmatched {
            continue;
        }
        let own = if retried {
            gave_up
        } else {
            GaveUp {
                reason: verdict.unretried(),
                ..gave_up
            }
        };
        insert_gave_up(item.extensions_mut(), own);
    }
}

/// Records how the retries ended on the failure the caller gets: in the answer's
/// extensions, or on the error (over a record a retry layer further in made).
fn record_gave_up<T, E: InspectError>(
    result: &mut Result<T, E>,
    gave_up: GaveUp,
    extensions: fn(&mut T) -> &mut http::Extensions,
) {
    match result {
        Ok(answer) => insert_gave_up(extensions(answer), gave_up),
        Err(err) => err.record_give_up(gave_up),
    }
}

/// Records `gave_up` in an answer's extensions, over a record a retry layer further in
/// made ([`GaveUp::over`]), as [`codec::Error`](crate::codec::Error) keeps its own.
fn insert_gave_up(extensions: &mut http::Extensions, gave_up: GaveUp) {
    let inner = extensions.get::<GaveUp>().copied();
    extensions.insert(gave_up.over(inner));
}

/// Marks the refusal [`refusal`] keeps: a retry layer further out, reading the answers
/// of one further in, keeps no second one for the same unsent notifications (the
/// server's refusals may differ, a rate limiter's count in `data`, say).
#[derive(Clone, Copy, Debug)]
struct KeptRefusal;

/// The refusal of a whole batch, as an answer no call took, for when a retry leaves some
/// notification it refused unsent (its method is non-idempotent): the calls' later
/// answers replace the refusal, and would hide that the server never ran that
/// notification. At the HTTP level it goes on as the server wrote it (geth's, one error
/// under the first call's id, as its error object under a null id).
fn refusal(answers: &BatchResponse) -> Option<Response> {
    let mut refusal = Response::failure(Id::Null, answers.batch_error()?.clone());
    refusal.extensions_mut().insert(KeptRefusal);
    if let Some(raw) = answers.extensions().get::<RawAnswer>() {
        if let Some(own) = crate::codec::refusal_item(&raw.body) {
            refusal.extensions_mut().insert(RawItem(own));
        }
    }
    if let Some(status) = answers.extensions().get::<http::StatusCode>() {
        refusal.extensions_mut().insert(*status);
    }
    if let Some(hint) = answers.extensions().get::<RetryAfter>() {
        refusal.extensions_mut().insert(*hint);
    }
    Some(refusal)
}

/// What the rules say of a batch of notifications refused as a whole (its error object,
/// its status): decided as the answer to its first notification. Held back when one of
/// them is non-idempotent: it would not be sent again, and a retry's clean answer would
/// hide that it was refused.
fn refused_notifications(
    strategy: &RetryStrategy,
    req: &BatchRequest,
    answers: &BatchResponse,
) -> Verdict {
    let (Some(again), Some(refusal)) = (req.requests().first(), refusal(answers)) else {
        return Verdict::Unmatched;
    };
    match decide::response(strategy, again.method(), &refusal) {
        Verdict::Retry(_)
            if req
                .requests()
                .iter()
                .any(|r| strategy.is_non_idempotent(r.method())) =>
        {
            Verdict::HeldBack
        }
        verdict => verdict,
    }
}

#[cfg(test)]
mod send_sync {
    use super::JsonRpcRetryPolicy;

    /// A client shared between tasks (in an `Arc`, or borrowed by a handler) needs a
    /// `Sync` stack, and so a `Sync` policy.
    #[test]
    fn policy_is_send_and_sync() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<JsonRpcRetryPolicy>();
        send_sync::<crate::Client>();
    }
}
