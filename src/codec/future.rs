//! The codec's response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::{Awaited, Error, Expected, RawAnswer};
use crate::BoxError;

/// The most of a notification's 2xx answer body that is read (and thrown away) so that
/// its connection can be used again: a server that answers a notification with a body
/// at all sends a short one (an empty result, an acknowledgement). A longer body is
/// left unread, and its connection closed, rather than read in full for nothing.
const NOTIFICATION_DRAIN_LIMIT: usize = 64 * 1024;

/// The longest a notification, delivered once its 2xx head has come, waits for the rest
/// of a body it does not need: a few round trips of a distant server, for a short body
/// that comes right behind its head. What it would save is one new connection (a round
/// trip, three with TLS); a body that takes longer is left unread, and its connection
/// closed, rather than holding up the call.
const NOTIFICATION_DRAIN_WAIT: Duration = Duration::from_millis(100);

/// The most frames in a row that carry no data (empty data frames, trailers) read in one
/// poll. The size limit bounds a body's data, not these: a body that gives them for
/// ever, always ready (from a tokio channel whose writer is ahead, say), would hold the
/// poll, and its thread, for as long as it went on. After this many the task gives way,
/// and its timers are looked at. Frames with data do not count: an answer there whole,
/// however many frames it comes in, is read whole (its size is the limit's business),
/// from a body that does not spend tokio's budget, as hyper's does not (one that does
/// says `Pending` when the budget is spent, and a timer that has fired is heard then).
const IDLE_FRAMES: usize = 64;

/// Counts frames in a row that carry no data ([`IDLE_FRAMES`]).
#[derive(Default)]
struct Idle(usize);

impl Idle {
    /// Counts a frame of `len` data bytes: whether the task is to give way now (the
    /// count starts again).
    fn give_way_after(&mut self, len: usize) -> bool {
        if len > 0 {
            self.0 = 0;
            return false;
        }
        self.0 += 1;
        if self.0 < IDLE_FRAMES {
            return false;
        }
        self.0 = 0;
        true
    }
}

/// Whether `timer` has fired, its wake-up registered if not. The clock is asked first:
/// a timer polled when the task's tokio budget has run out (a body from a tokio resource
/// spent it) says `Pending` whatever the time, without even registering, and a call
/// whose exchange spends the budget on every poll would never end.
pub(crate) fn fired(mut timer: Pin<&mut Sleep>, cx: &mut Context<'_>) -> bool {
    timer.deadline() <= tokio::time::Instant::now() || timer.as_mut().poll(cx).is_ready()
}

/// Gives way to the other tasks once: the task is woken at once, to be polled again.
fn give_way<T>(cx: &mut Context<'_>) -> Poll<T> {
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// Turns the HTTP answer into the codec's response type.
pub(super) type Decode<T> = fn(Expected, http::response::Parts, Bytes) -> Result<T, Error>;

pin_project! {
    /// The response future of [`JsonRpcCodec`](super::JsonRpcCodec): awaits the HTTP
    /// response, reads its body within the limit, and decodes it.
    ///
    /// It is not `Unpin` (it may hold a tokio timer): pin it (`Box::pin`,
    /// `std::pin::pin!`) to poll it by hand.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F, B, T>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        state: State<F, B>,
        // The attempt's timer: its timeout (cut to the call's deadline), brought forward
        // while a notification's answer is drained.
        #[pin]
        timer: Option<Sleep>,
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
        Body { #[pin] body: Limited<B>, read: Read, parts: Option<http::response::Parts> },
        Drain { #[pin] body: B, left: usize, parts: Option<http::response::Parts> },
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
            timer: None,
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
            timer: timeout.map(tokio::time::sleep),
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
        // The exchange first, then the timer, as tower's `Timeout` does: an answer that
        // is there when the timer has fired too (the task polled late, on a busy runtime)
        // is the answer, not a timeout and a needless retry.
        let exchange = (|| -> Poll<Self::Output> {
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
                        // A notification gets no response: a 2xx answer's body is not kept
                        // (nor limited, nor decoded), as the module docs promise. A body
                        // there is drained, up to a small limit, so that the connection
                        // goes back to the pool: a body dropped unread closes it.
                        let notification = parts.status.is_success()
                            && matches!(
                                this.expected,
                                Some(Expected {
                                    awaited: Awaited::Notification,
                                    ..
                                })
                            );
                        if notification {
                            let left = NOTIFICATION_DRAIN_LIMIT.min(*this.limit);
                            // Nothing to drain, or more than is worth it: delivered now.
                            if body.is_end_stream() || body.size_hint().lower() > left as u64 {
                                this.state.set(State::Done);
                                return delivered(Some(parts), this.expected, *this.decode);
                            }
                            // The attempt's own timer, brought forward: when it fires
                            // during the drain, the notification is delivered (above).
                            let until = tokio::time::Instant::now() + NOTIFICATION_DRAIN_WAIT;
                            match this.timer.as_mut().as_pin_mut() {
                                Some(timer) if timer.deadline() <= until => {}
                                Some(timer) => timer.reset(until),
                                None => this.timer.set(Some(tokio::time::sleep_until(until))),
                            }
                            this.state.set(State::Drain {
                                body,
                                left,
                                parts: Some(parts),
                            });
                            continue;
                        }
                        let declared = body.size_hint().exact();
                        if declared.is_some_and(|len| len > *this.limit as u64) {
                            this.state.set(State::Done);
                            if accepted_notifications(Some(&parts), this.expected.as_ref()) {
                                let parts = super::without_body(parts);
                                return delivered(Some(parts), this.expected, *this.decode);
                            }
                            let err = Error::body_too_large(*this.limit);
                            return Poll::Ready(Err(unread(parts, this.expected.as_ref(), err)));
                        }
                        let read = Read::new(body.size_hint().lower(), *this.limit);
                        this.state.set(State::Body {
                            body: Limited::new(body, *this.limit),
                            read,
                            parts: Some(parts),
                        });
                    }
                    StateProj::Body {
                        mut body,
                        read,
                        parts,
                    } => {
                        let mut idle = Idle::default();
                        let result = loop {
                            match ready!(body.as_mut().poll_frame(cx)) {
                                Some(Ok(frame)) => {
                                    if idle.give_way_after(read.push_frame(frame)) {
                                        return give_way(cx);
                                    }
                                }
                                Some(Err(e)) => break Err(e),
                                None => break Ok(read.take()),
                            }
                        };
                        let parts = parts.take();
                        this.state.set(State::Done);
                        let (Some(parts), Some(expected)) = (parts, this.expected.take()) else {
                            return Poll::Pending;
                        };
                        return Poll::Ready(match result {
                            Ok(bytes) => (this.decode)(expected, parts, bytes),
                            // A batch of notifications only, accepted: its body broke (or
                            // passed the limit) before a refusal came whole, and the
                            // notifications were delivered.
                            Err(_) if accepted_notifications(Some(&parts), Some(&expected)) => {
                                (this.decode)(expected, super::without_body(parts), Bytes::new())
                            }
                            Err(e) => {
                                Err(unread(parts, Some(&expected), Error::body(e, *this.limit)))
                            }
                        });
                    }
                    StateProj::Drain {
                        mut body,
                        left,
                        parts,
                    } => {
                        // Until the body ends, fails, passes the limit or outlasts the wait
                        // (then the connection is closed, as for any body left unread).
                        let mut idle = Idle::default();
                        loop {
                            match body.as_mut().poll_frame(cx) {
                                Poll::Ready(Some(Ok(frame))) => {
                                    let len = frame.data_ref().map_or(0, Buf::remaining);
                                    match left.checked_sub(len) {
                                        Some(still) => *left = still,
                                        None => break,
                                    }
                                    if idle.give_way_after(len) {
                                        return give_way(cx);
                                    }
                                }
                                Poll::Ready(Some(Err(_)) | None) => break,
                                Poll::Pending => {
                                    // The timer may have moved since it was last polled: its
                                    // wake-up is registered here.
                                    let timer = this.timer.as_mut().as_pin_mut();
                                    if timer.is_some_and(|timer| fired(timer, cx)) {
                                        break;
                                    }
                                    return Poll::Pending;
                                }
                            }
                        }
                        let parts = parts.take();
                        this.state.set(State::Done);
                        return delivered(parts, this.expected, *this.decode);
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
        })();
        if exchange.is_ready() {
            return exchange;
        }
        if let Some(timer) = this.timer.as_mut().as_pin_mut() {
            if fired(timer, cx) && !matches!(*this.state, State::Done) {
                // A notification's answer came: the body left unread is not the call's.
                // So it is for a batch of notifications only that the server accepted:
                // its body is read for a refusal, and none came whole.
                let accepted = match this.state.as_mut().project() {
                    StateProj::Drain { parts, .. } => Some(parts.take()),
                    StateProj::Body { parts, .. }
                        if accepted_notifications(parts.as_ref(), this.expected.as_ref()) =>
                    {
                        Some(parts.take().map(super::without_body))
                    }
                    _ => None,
                };
                if let Some(parts) = accepted {
                    this.state.set(State::Done);
                    return delivered(parts, this.expected, *this.decode);
                }
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
        Poll::Pending
    }
}

/// Whether this is a 2xx answer to a batch of notifications only: the server took them.
/// Its body is read for a refusal (an error with a null id), but one that breaks off,
/// stalls or passes the limit holds none, and the batch is delivered as a single
/// notification would be (its head without the headers of the body left out): not an
/// error, and not sent again.
fn accepted_notifications(
    parts: Option<&http::response::Parts>,
    expected: Option<&Expected>,
) -> bool {
    parts.is_some_and(|parts| parts.status.is_success())
        && matches!(expected, Some(Expected { awaited: Awaited::Batch(ids), .. }) if ids.is_empty())
}

/// A notification's 2xx answer, delivered: decoded from its head alone (its body is not
/// the call's). Pending if it was already given (a future polled after it was ready).
fn delivered<T>(
    parts: Option<http::response::Parts>,
    expected: &mut Option<Expected>,
    decode: Decode<T>,
) -> Poll<Result<T, Error>> {
    match (parts, expected.take()) {
        (Some(parts), Some(expected)) => Poll::Ready(decode(expected, parts, Bytes::new())),
        _ => Poll::Pending,
    }
}

/// Reads a whole body within `limit` as the codec reads an answer ([`Read`]): for the
/// HTTP-level layer's caller's request body, and an answer it hands on without decoding
/// it.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut read = Read::new(body.size_hint().lower(), limit);
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let mut idle = Idle::default();
    while let Some(frame) = body.frame().await {
        // Frames without data, always ready, give way now and then, so that a timeout
        // around the read is looked at.
        if idle.give_way_after(read.push_frame(frame?)) {
            let mut gave_way = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut gave_way, true) {
                    Poll::Ready(())
                } else {
                    give_way(cx)
                }
            })
            .await;
        }
    }
    Ok(read.take())
}

/// The body read so far. A body of one chunk is kept as it came; from the second chunk
/// on, each chunk is copied into one buffer as it comes and let go at once. Collecting
/// the chunks and joining them at the end held the body twice at the peak, and more:
/// hyper cuts the chunks it reads off a read buffer, and each keeps its whole buffer
/// alive (22 MB for a 10 MiB body read from a socket, under load).
#[derive(Debug)]
struct Read {
    first: Bytes,
    rest: Vec<u8>,
    /// The size the body declared, at most the limit and [`TRUSTED_LENGTH`]: the buffer's
    /// first capacity.
    declared: usize,
    limit: usize,
}

/// The most of a body's declared length the buffer reserves before the bytes arrive.
/// A length is the sender's word, not its bytes: a server declaring 2^62 bytes and
/// sending two chunks, under a limit raised to `usize::MAX`, made the client ask for
/// 2^62 bytes at once, and the process abort. Up to 16 MiB, more than the default limit,
/// an answer is still copied into one allocation of its declared size; past that, the
/// buffer doubles as the bytes come, so a raised limit lets a server's word cost no more
/// than the default limit's own.
const TRUSTED_LENGTH: usize = 16 << 20;

impl Read {
    fn new(declared: u64, limit: usize) -> Self {
        let declared = usize::try_from(declared)
            .unwrap_or(usize::MAX)
            .min(limit)
            .min(TRUSTED_LENGTH);
        Self {
            first: Bytes::new(),
            rest: Vec::new(),
            declared,
            limit,
        }
    }

    /// Keeps a frame's data, if it is a data frame: how many bytes it had.
    fn push_frame<D: Buf>(&mut self, frame: http_body::Frame<D>) -> usize {
        let Ok(mut data) = frame.into_data() else {
            return 0;
        };
        let len = data.remaining();
        self.push(data.copy_to_bytes(len));
        len
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.first.is_empty() && self.rest.is_empty() {
            self.first = chunk;
            return;
        }
        let first = std::mem::take(&mut self.first);
        let needed = self.rest.len() + first.len() + chunk.len();
        if needed > self.rest.capacity() {
            // Grows to the declared size at once, else doubles, never past the limit
            // (`Limited` ends the body before it passes it).
            let grown = self.rest.capacity().saturating_mul(2).min(self.limit);
            let capacity = needed.max(self.declared).max(grown);
            self.rest.reserve_exact(capacity - self.rest.len());
        }
        self.rest.extend_from_slice(&first);
        self.rest.extend_from_slice(&chunk);
    }

    fn take(&mut self) -> Bytes {
        if self.rest.is_empty() {
            std::mem::take(&mut self.first)
        } else {
            Bytes::from(std::mem::take(&mut self.rest))
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
    let hint = super::RetryAfter::of_answer(&parts).map(|hint| hint.delay());
    if parts.status.is_success() || !err.is_body_too_large() {
        return err.with_status(parts.status, hint);
    }
    let status = super::status_error(&parts);
    if expected.is_some_and(|expected| expected.keep_raw) {
        status.with_raw(RawAnswer {
            head: super::without_body(parts),
            body: Bytes::new(),
        })
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer's capacity after `chunks`, and the body read.
    fn pushed(declared: u64, limit: usize, chunks: &[&'static [u8]]) -> (usize, Bytes) {
        let mut read = Read::new(declared, limit);
        for chunk in chunks {
            read.push(Bytes::from_static(chunk));
        }
        (read.rest.capacity(), read.take())
    }

    #[test]
    fn one_chunk_is_kept_as_it_came() {
        let (capacity, body) = pushed(0, 64, &[b"".as_slice(), b"{}", b""]);
        assert_eq!(body, "{}");
        assert_eq!(capacity, 0, "nothing copied");
    }

    #[test]
    fn the_buffer_is_the_declared_size_at_once() {
        let (capacity, body) = pushed(12, 64, &[b"abcd".as_slice(), b"efgh", b"ijkl"]);
        assert_eq!(body, "abcdefghijkl");
        assert_eq!(capacity, 12, "one allocation, no slack");
    }

    #[test]
    fn a_declared_size_is_trusted_up_to_16_mib() {
        // Under no limit, a length of 2^64 - 1 reserved 2^64 - 1 bytes (a panic), and 2^62
        // an allocation that aborted the process.
        for declared in [u64::MAX, 1 << 62, 1 << 40] {
            let (capacity, body) = pushed(declared, usize::MAX, &[b"ab".as_slice(), b"cd"]);
            assert_eq!(body, "abcd");
            assert_eq!(capacity, TRUSTED_LENGTH, "declared {declared}");
        }
        // Below it, one allocation of the declared size, under a raised limit too.
        let (capacity, _) = pushed(12 << 20, usize::MAX, &[b"ab".as_slice(), b"cd"]);
        assert_eq!(capacity, 12 << 20);
    }

    #[test]
    fn without_a_declared_size_the_buffer_doubles_up_to_the_limit() {
        // 4 + 4 bytes: the first copy reserves what it needs, 8.
        let (capacity, _) = pushed(0, 20, &[b"abcd".as_slice(), b"efgh"]);
        assert_eq!(capacity, 8);
        // Then 8 → 16 (doubled), then 16 → 20 (doubling would pass the limit).
        let (capacity, body) = pushed(
            0,
            20,
            &[b"abcd".as_slice(), b"efgh", b"ijkl", b"mnop", b"qrst"],
        );
        assert_eq!(body, "abcdefghijklmnopqrst");
        assert_eq!(capacity, 20);
        // A buffer with room takes a chunk without growing.
        let (capacity, _) = pushed(12, 64, &[b"abcd".as_slice(), b"efgh", b"ij"]);
        assert_eq!(capacity, 12);
    }
}
