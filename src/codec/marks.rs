//! What the layers put in a request's or a response's extensions for each other: who
//! sets each mark, and who reads it, is in its docs.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

/// Set by the policy on a retried batch's final answer when its last exchange failed as
/// a whole: that exchange's `Retry-After`, or else what is left now of the server's
/// latest word on time before it (`None`: nothing). The HTTP-level layer writes it over
/// the `Retry-After` in the head of the earlier answer it hands back as it came.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LatestHint(pub(crate) Option<Duration>);

/// Set by the policy on a batch's answers once a retry has left some of its items unsent
/// (the batch is retried in part): the HTTP-level layer answers it 200 whatever status
/// its last answer came under, as its body holds each call's last word. A batch sent
/// again whole keeps the status of the answer it hands back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetriedInPart;

/// The HTTP answer a response was decoded from: kept by the codec, when
/// [`keep_raw`](super::Config::keep_raw) is set, in the response's extensions or on its
/// error, for the HTTP-level layer, which hands it back as it came (the policy also
/// reads a refused batch's, to keep the refusal as the server wrote it).
#[derive(Clone, Debug)]
pub(crate) struct RawAnswer {
    pub(crate) head: http::response::Parts,
    pub(crate) body: Bytes,
}

/// The head of the latest exchange a batch's answers were gathered from, kept by the
/// merge that makes its [`RawAnswer`] only part of the answer: the HTTP-level layer hands
/// the gathered answer back under it (its version and headers, less those that describe
/// the body it no longer goes with), the server's last word on the exchange.
#[derive(Clone, Debug)]
pub(crate) struct GatheredHead(pub(crate) http::response::Parts);

/// A batch item's own bytes, as the caller sent it or as the server answered it. The
/// HTTP-level layer puts them in each request's extensions, and a codec that keeps raw
/// answers in each answered item's, so that an item goes on byte for byte even when the
/// batch around it is made anew (serde_json would, for one, turn an integer beyond 64
/// bits into a float).
#[derive(Clone, Debug)]
pub(crate) struct RawItem(pub(crate) Bytes);

/// The head of an HTTP request that the HTTP-level retry layer took apart, set on the
/// codec that serves it (each call has its own clone of the stack): every attempt is
/// sent with this head instead of the codec's own and, while it sends the whole message,
/// with the caller's bytes instead of a fresh encoding.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: http::Version,
    pub(crate) headers: HeaderMap,
    /// The caller's bytes: every attempt of a single call sends them as they are, and so
    /// does every attempt of a batch that sends all its [`items`](Self::items); a retry
    /// that narrows a batch sends those items' own bytes in a new array.
    pub(crate) body: Bytes,
    /// For a batch, how many items the caller's bytes hold; `None` for a single call.
    pub(crate) items: Option<usize>,
}

/// Marks a batch attempt whose answer will be gathered with answers already kept (a
/// re-send after an answered exchange), set by the policy. The HTTP-level layer must read
/// that answer to merge it, so such an attempt asks for it unencoded
/// (`Accept-Encoding: identity`) when the caller's head asked for an encoding: an answer
/// the layer cannot read could not be merged, and the server's answers in it would be
/// lost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gathering;

/// When the whole call must be over: set by [`JsonRpcRetry`](crate::retry::JsonRpcRetry)
/// on a call whose strategy has [`max_elapsed`](crate::RetryStrategy::max_elapsed) (and
/// by the policy on the copies it keeps for retries), read by the codec to bound each
/// attempt to what is left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(pub(crate) tokio::time::Instant);

/// Vouches that a request's [`Deadline`] is the call's under way: set by the retry layer
/// that stamped it, for the next look at it in the same call (the policy's copy for
/// retries, or the JSON-RPC stack under the HTTP-level layer), and taken off before the
/// request goes below the layer, unless the deadline has come by then (a first attempt
/// under a zero `max_elapsed`, say; a retry that late is not sent at all): a retry layer
/// below must keep it. A deadline found past without it is left over from an earlier
/// call; with it, it is this call's, reached a moment ago (on a clock that moved
/// between the two looks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadlineVoucher;

impl Deadline {
    /// Drops a deadline already past, unless a [`DeadlineVoucher`] vouches for it (and
    /// takes the voucher off): it is left over from an earlier call (a request a layer
    /// below kept and sends again), as a live call's deadline is never past when one of
    /// its attempts starts.
    pub(crate) fn drop_stale(extensions: &mut http::Extensions) {
        let vouched = extensions.remove::<DeadlineVoucher>().is_some();
        if !vouched && Self::passed(extensions) {
            extensions.remove::<Deadline>();
        }
    }

    /// Whether the call's deadline, if it has one, is already past (not merely now: an
    /// attempt that starts at its deadline is made, and cut at once).
    pub(crate) fn passed(extensions: &http::Extensions) -> bool {
        extensions
            .get::<Deadline>()
            .is_some_and(|deadline| deadline.0 < tokio::time::Instant::now())
    }

    /// Whether the deadline has come by `now`: at it or past it, so that no retry
    /// starts then (it would have no time to run), where an attempt already starting
    /// is made until the deadline is [`passed`](Self::passed).
    pub(crate) fn reached(&self, now: tokio::time::Instant) -> bool {
        self.0 <= now
    }

    /// Gives a call this deadline, `limit` from now, unless it already has one as early
    /// (set by a retry layer further out, or for the same call a moment ago); returns
    /// the deadline the call has now.
    pub(crate) fn set(extensions: &mut http::Extensions, limit: Duration) -> Deadline {
        let Deadline(at) = Self::after(tokio::time::Instant::now(), limit);
        match extensions.get::<Deadline>() {
            Some(earlier) if earlier.0 <= at => *earlier,
            _ => {
                extensions.insert(Deadline(at));
                Deadline(at)
            }
        }
    }

    /// The deadline `limit` after `start`.
    pub(crate) fn after(start: tokio::time::Instant, limit: Duration) -> Deadline {
        // Beyond tokio's far future (about 30 years), where a deadline near what an
        // `Instant` holds would overflow in tokio's timer: a time no deadline reaches.
        Deadline(start + limit.min(crate::FAR_FUTURE))
    }

    /// What is left before the call's deadline, if it has one.
    pub(crate) fn left(extensions: &http::Extensions) -> Option<Duration> {
        Self::bound(extensions, None)
    }

    /// How long an attempt may take: `timeout`, cut to what is left before the call's
    /// deadline, if it has one.
    pub(crate) fn bound(
        extensions: &http::Extensions,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        match extensions.get::<Deadline>() {
            Some(Deadline(at)) => {
                let left = at.saturating_duration_since(tokio::time::Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline further out than tokio's far future is put there: one near the last
    /// `Instant` would make tokio's timer overflow, and the call panic, when a retry
    /// waits for readiness up to it.
    #[tokio::test(start_paused = true)]
    async fn a_deadline_past_tokios_far_future_is_put_there() {
        let now = tokio::time::Instant::now();
        // An end an `Instant` just holds, but not tokio's timer.
        let near_the_end = crate::retry::future::tests::longest_from(now)
            .saturating_sub(Duration::from_micros(500));
        for limit in [
            crate::FAR_FUTURE,
            near_the_end,
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ] {
            let mut extensions = http::Extensions::new();
            let Deadline(at) = Deadline::set(&mut extensions, limit);
            assert_eq!(at, now + crate::FAR_FUTURE, "{limit:?}");
            // Its timer can be set and polled.
            let mut timer = std::pin::pin!(tokio::time::sleep_until(at));
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(timer.as_mut(), cx).is_pending())
            })
            .await;
            assert!(polled);
        }
        let mut extensions = http::Extensions::new();
        let Deadline(at) = Deadline::set(&mut extensions, Duration::from_secs(1));
        assert_eq!(at, now + Duration::from_secs(1));
    }
}
