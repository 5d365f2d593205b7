//! What tower's `Retry` sends each attempt through, inside [`JsonRpcRetry`]: the inner
//! service, with its readiness made part of the attempt.
//!
//! [`JsonRpcRetry`]: super::JsonRpcRetry

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::inspect::InspectError;
use crate::codec::{Deadline, DeadlineVoucher};
use crate::jsonrpc::{BatchRequest, Request};

/// The inner service of [`JsonRpcRetry`](super::JsonRpcRetry)'s tower `Retry`.
///
/// tower's `Retry` waits for its inner service's readiness before each retry and returns
/// a readiness error as it is, without asking its policy; and nothing bounds that wait.
/// This service makes readiness part of the attempt instead, so the policy decides on
/// it like on any failed attempt (a partly retried batch keeps the answers it gathered,
/// a deadline gives up with its reason):
///
/// - a readiness error is kept, and returned by the next call, after which the instance
///   that failed is let go for a fresh clone (tower's contract: it may not be polled
///   again);
/// - a retry that waits for readiness past the call's deadline
///   ([`max_elapsed`](crate::RetryStrategy::max_elapsed)) is ready at the deadline, and
///   its call fails at once with the error type's
///   [`deadline_error`](InspectError::deadline_error);
/// - so does a retry that starts after the deadline (its wait ended late: the runtime
///   was held up, a hook took longer than the time left): it is not sent, where the
///   codec's cut, a timer that fires on the next millisecond, came after the request
///   had gone out. The first attempt is always made (under a zero `max_elapsed` it
///   starts at its deadline, and is cut at once unless its answer is there at once);
/// - an attempt still unanswered a millisecond after the deadline (and after giving
///   way once to the tasks that moment woke: an answer another task fills) is dropped,
///   and fails with the error type's
///   [`deadline_cut_error`](InspectError::deadline_cut_error):
///   whatever is below, a `Buffer` holding it in its queue behind a rate limit, or a
///   service that does not read the deadline, the call ends at it. (The codec cuts its
///   own exchange at the deadline, knowing whether the request went out; the
///   millisecond leaves that to it.)
pub(crate) struct Attempts<S> {
    inner: S,
    /// The call's deadline: set on the service a call's future is made from, so only
    /// that call's retries have it.
    pub(super) deadline: Option<Instant>,
    /// The timer for `deadline`, made when a readiness wait first has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// What the next call returns instead of calling the inner service.
    failed: Option<Failed>,
    /// Whether this instance made the call's first attempt: so the clone tower's `Retry`
    /// keeps for the call's retries (made right after the first attempt) tells a retry
    /// from it. Cleared on the service after each call.
    pub(super) sent: bool,
}

enum Failed {
    /// The inner service's readiness error (of its `Error` type).
    NotReady(Box<dyn Any + Send + Sync>),
    /// The deadline passed while waiting for readiness.
    Deadline,
}

impl<S> Attempts<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            deadline: None,
            sleep: None,
            failed: None,
            sent: false,
        }
    }

    pub(super) fn get_ref(&self) -> &S {
        &self.inner
    }

    pub(super) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub(super) fn into_inner(self) -> S {
        self.inner
    }

    /// Whether the deadline, if any, has passed; registers for its wake-up if not.
    fn deadline_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        crate::codec::future::fired(sleep.as_mut(), cx)
    }
}

impl<S: Clone> Clone for Attempts<S> {
    /// The inner service cloned; the deadline kept (the clone tower's `Retry` makes for
    /// a call's future carries that call's deadline); readiness starts afresh.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            deadline: self.deadline,
            sleep: None,
            failed: None,
            sent: self.sent,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Attempts<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempts")
            .field("inner", &self.inner)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What a request going below the layer says of the call's `deadline`, found by type
/// (this service takes any request type tower's `Retry` hands it; only the crate's two
/// carry a deadline). Before the deadline, the [`DeadlineVoucher`] is taken off: a
/// request kept below (a recorder, a dead-letter queue) and sent again later must not
/// pass its old deadline off as the new call's. Once it has come, the deadline goes
/// down vouched for: a retry layer below, which looks at the clock a moment later,
/// would find it past and could not tell it from a stale one, so it dropped it and
/// retried on its own strategy, unbounded (the first attempt under a zero
/// `max_elapsed`, on a clock that moved since the call). It keeps it now, as this
/// call's, and makes one attempt, cut at once.
fn mark_deadline<R: Any>(req: &mut R, deadline: Instant, now: Instant) {
    let any: &mut dyn Any = req;
    let extensions = if let Some(req) = any.downcast_mut::<Request>() {
        req.extensions_mut()
    } else if let Some(batch) = any.downcast_mut::<BatchRequest>() {
        batch.extensions_mut()
    } else {
        return;
    };
    if deadline <= now {
        extensions.insert(Deadline(deadline));
        extensions.insert(DeadlineVoucher);
    } else {
        extensions.remove::<DeadlineVoucher>();
    }
}

impl<S, R> Service<R> for Attempts<S>
where
    S: Service<R> + Clone,
    S::Error: InspectError + Send + Sync + 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AttemptFuture<S::Future, S::Error>;

    /// Never fails: what would is returned by the next call.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.failed.is_some() {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(err)) => self.failed = Some(Failed::NotReady(Box::new(err))),
            Poll::Pending => {
                // Only when the error type can say so: otherwise the wait goes on.
                if !self.deadline_passed(cx) || S::Error::deadline_error().is_none() {
                    return Poll::Pending;
                }
                self.failed = Some(Failed::Deadline);
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: R) -> Self::Future {
        // Only a call with a deadline is vouched for; one read of the clock serves both.
        let late = self.deadline.is_some_and(|deadline| {
            let now = Instant::now();
            mark_deadline(&mut req, deadline, now);
            self.sent && deadline < now
        });
        self.sent = true;
        let failed = self.failed.take();
        // The instance called is let go after every attempt, and the next call goes
        // through a fresh clone. One whose readiness failed must be, as tower asks (it
        // may hold what it reserved, a `ConcurrencyLimit` permit, and may not be polled
        // again; the codec lets its own inner service go in the same way). Any other may
        // still wait in line for what it did not get: a `LoadShed` that refused the
        // call while its `ConcurrencyLimit` was full left that limit queued for a
        // permit, which the limit, once free, gave to that instance, and no call could
        // use until it was polled again: by this call's future after its wait for a
        // retry, by the caller (a `Buffer`'s worker, a kept service) only at its next
        // call. Meanwhile the call's own retries were refused with nothing in flight.
        let err = match failed {
            None if late => S::Error::deadline_error(),
            None => None,
            Some(Failed::NotReady(err)) => err.downcast::<S::Error>().map(|err| *err).ok(),
            Some(Failed::Deadline) => S::Error::deadline_error(),
        };
        let future = match err {
            Some(err) => AttemptFuture::Failed { error: Some(err) },
            // Ready, or an error kept for another request type than this call's
            // (readiness asked for one type, the call made with another): the inner
            // service is called as it is.
            None => AttemptFuture::Sent {
                future: self.inner.call(req),
                cut_at: self.deadline.and_then(|d| d.checked_add(CUT_GRACE)),
                cut: None,
                yielded: false,
            },
        };
        self.inner = self.inner.clone();
        future
    }
}

/// How long after the call's deadline an attempt still unanswered is dropped: time for
/// the codec's own cut at the deadline, which says whether the request went out, to
/// come first (tokio's timers fire by the millisecond).
const CUT_GRACE: std::time::Duration = std::time::Duration::from_millis(1);

pin_project! {
    /// An attempt of [`Attempts`]: the inner service's future, or the error kept for it.
    #[project = AttemptProj]
    #[derive(Debug)]
    pub(crate) enum AttemptFuture<F, E> {
        /// Sent to the inner service; dropped if still unanswered at `cut_at`.
        Sent {
            #[pin] future: F,
            cut_at: Option<Instant>,
            // Made when the attempt first has to wait: an answer ready at once costs no
            // timer.
            cut: Option<Pin<Box<Sleep>>>,
            // Whether the task gave way once after the cut's timer fired, so that a task
            // woken by the same tick (one that fills the answer, as a connection's
            // reader does) runs before the cut.
            yielded: bool,
        },
        /// Not sent: the readiness error, or the deadline's.
        Failed { error: Option<E> },
    }
}

impl<F, T, E> Future for AttemptFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
    E: InspectError,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AttemptProj::Sent {
                future,
                cut_at,
                cut,
                yielded,
            } => {
                // The answer first: one that came with the deadline is the answer.
                if let Poll::Ready(out) = future.poll(cx) {
                    return Poll::Ready(out);
                }
                let Some(at) = *cut_at else {
                    return Poll::Pending;
                };
                let sleep = cut.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if !crate::codec::future::fired(sleep.as_mut(), cx) {
                    return Poll::Pending;
                }
                // tokio fires timers by the millisecond: an answer due within the last one
                // may be another task's, woken by the same tick and queued before this
                // one. Give way once, and poll the attempt again before cutting it.
                if !*yielded {
                    *yielded = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // Once: an error type that cannot say it lets the attempt run on.
                *cut_at = None;
                *cut = None;
                match E::deadline_cut_error() {
                    Some(error) => Poll::Ready(Err(error)),
                    None => Poll::Pending,
                }
            }
            AttemptProj::Failed { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after it was ready: there is nothing more to give.
                None => Poll::Pending,
            },
        }
    }
}
