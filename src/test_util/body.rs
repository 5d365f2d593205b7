//! The response body of the server: whole, cut short, or streamed filler.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// Filler chunk for [`ResponseBody::oversized`]: large bodies are streamed from this one
/// static buffer, so they are never held in memory at once.
static FILLER: [u8; 16 * 1024] = [b'x'; 16 * 1024];

/// The body of every response the server sends.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    state: State,
}

#[derive(Debug)]
enum State {
    /// One chunk (possibly none), then the end.
    Full(Option<Bytes>),
    /// `sent` goes out, then the stream fails although `declared` bytes were promised.
    Truncated {
        sent: Option<Bytes>,
        declared: u64,
        /// Set once the stream has returned `Pending` after `sent`, so hyper flushes
        /// what it has buffered before the connection is torn down.
        flushed: bool,
        /// End the stream after `sent` instead of failing it (over HTTP/2).
        ends_short: bool,
    },
    /// `prefix`, then `filler` bytes of `x`, then `suffix`.
    Filler {
        prefix: Option<Bytes>,
        filler: u64,
        suffix: Option<Bytes>,
        /// Whether to hide the length, so hyper sends the body chunked.
        chunked: bool,
    },
    /// `rest`, one byte per `interval`, each after a wait.
    Trickle {
        rest: Bytes,
        interval: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    },
}

impl ResponseBody {
    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self {
            state: State::Full(None),
        }
    }

    /// A body of exactly these bytes.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        Self {
            state: State::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// The first half of `whole`, announced with the length of all of `whole`, then an error:
    /// hyper closes the connection in the middle of the body.
    pub(crate) fn truncated(whole: Bytes) -> Self {
        let declared = u64::try_from(whole.len()).unwrap_or(u64::MAX);
        let sent = whole.slice(..whole.len() / 2);
        Self {
            state: State::Truncated {
                sent: (!sent.is_empty()).then_some(sent),
                declared,
                flushed: false,
                ends_short: false,
            },
        }
    }

    /// Over HTTP/2, a truncated body ends (`END_STREAM`) short of the length it
    /// announced instead of failing: the client finds the mismatch and resets the stream
    /// itself. A body that failed would make hyper reset the stream from here, and h2
    /// drops the frames of a stream it resets that are not written yet: on a runtime with
    /// several threads, the response head was sometimes among them. Ending short sends
    /// the head and the first half in order, whatever the scheduling.
    pub(crate) fn for_http2(mut self) -> Self {
        if let State::Truncated { ends_short, .. } = &mut self.state {
            *ends_short = true;
        }
        self
    }

    /// Exactly `len` bytes: `prefix`, as many `x` as fit, then `suffix`. When `len` is too
    /// small for both, the body is the first `len` bytes of `prefix` followed by `suffix`.
    pub(crate) fn oversized(len: u64, prefix: Bytes, suffix: Bytes) -> Self {
        let skeleton = Bytes::from([prefix.as_ref(), suffix.as_ref()].concat());
        let skeleton_len = u64::try_from(skeleton.len()).unwrap_or(u64::MAX);
        let state = if len < skeleton_len {
            let cut = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(skeleton.len());
            // The skeleton cut short, as filler with nothing to fill, so that it can
            // still go out chunked.
            State::Filler {
                prefix: Some(skeleton.slice(..cut)).filter(|b| !b.is_empty()),
                filler: 0,
                suffix: None,
                chunked: false,
            }
        } else {
            State::Filler {
                prefix: Some(prefix).filter(|b| !b.is_empty()),
                filler: len - skeleton_len,
                suffix: Some(suffix).filter(|b| !b.is_empty()),
                chunked: false,
            }
        };
        Self { state }
    }

    /// Whether to hide the length of an [`oversized`](Self::oversized) body, so it goes
    /// out chunked. No effect on other bodies.
    pub(crate) fn chunked(mut self, hide: bool) -> Self {
        if let State::Filler { chunked, .. } = &mut self.state {
            *chunked = hide;
        }
        self
    }

    /// `whole`, with its length announced, one byte per `interval`.
    pub(crate) fn trickle(whole: Bytes, interval: Duration) -> Self {
        Self {
            state: State::Trickle {
                rest: whole,
                interval,
                sleep: None,
            },
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.state {
            State::Full(chunk) => Poll::Ready(chunk.take().map(|b| Ok(Frame::data(b)))),
            State::Truncated {
                sent,
                flushed,
                ends_short,
                ..
            } => {
                if let Some(chunk) = sent.take() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                if *ends_short {
                    return Poll::Ready(None);
                }
                if !*flushed {
                    // hyper flushes its write buffer when the body is not ready.
                    *flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "response body truncated on purpose",
                ))))
            }
            State::Trickle {
                rest,
                interval,
                sleep,
            } => {
                if rest.is_empty() {
                    return Poll::Ready(None);
                }
                let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(*interval)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *sleep = None;
                Poll::Ready(Some(Ok(Frame::data(rest.split_to(1)))))
            }
            State::Filler {
                prefix,
                filler,
                suffix,
                ..
            } => {
                if let Some(chunk) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                if *filler > 0 {
                    let n = usize::try_from(*filler)
                        .unwrap_or(usize::MAX)
                        .min(FILLER.len());
                    *filler -= u64::try_from(n).unwrap_or(0);
                    let chunk = Bytes::from_static(&FILLER).slice(..n);
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(suffix.take().map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Full(chunk) => chunk.is_none(),
            State::Truncated { .. } => false,
            State::Trickle { rest, .. } => rest.is_empty(),
            // A body already at its end would go out with `content-length: 0`.
            State::Filler { chunked: true, .. } => false,
            State::Filler {
                prefix,
                filler,
                suffix,
                ..
            } => prefix.is_none() && *filler == 0 && suffix.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let len = |b: &Option<Bytes>| {
            b.as_ref()
                .map_or(0, |b| u64::try_from(b.len()).unwrap_or(u64::MAX))
        };
        match &self.state {
            State::Full(chunk) => SizeHint::with_exact(len(chunk)),
            State::Truncated { declared, .. } => SizeHint::with_exact(*declared),
            State::Trickle { rest, .. } => {
                SizeHint::with_exact(u64::try_from(rest.len()).unwrap_or(u64::MAX))
            }
            State::Filler { chunked: true, .. } => SizeHint::default(),
            State::Filler {
                prefix,
                filler,
                suffix,
                ..
            } => SizeHint::with_exact(
                len(prefix)
                    .saturating_add(*filler)
                    .saturating_add(len(suffix)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(body: ResponseBody) -> Result<Bytes, io::Error> {
        body.collect().await.map(|c| c.to_bytes())
    }

    #[tokio::test]
    async fn oversized_has_exact_length_and_skeleton() {
        let body = ResponseBody::oversized(40_000, Bytes::from("[\""), Bytes::from("\"]"));
        assert_eq!(body.size_hint().exact(), Some(40_000));
        let bytes = collect(body).await.unwrap();
        assert_eq!(bytes.len(), 40_000);
        assert!(bytes.starts_with(b"[\"xxx"));
        assert!(bytes.ends_with(b"xx\"]"));
    }

    #[tokio::test]
    async fn oversized_smaller_than_skeleton_is_cut() {
        let body = ResponseBody::oversized(3, Bytes::from("[\""), Bytes::from("\"]"));
        assert_eq!(collect(body).await.unwrap(), Bytes::from("[\"\""));
        let body = ResponseBody::oversized(0, Bytes::from("[\""), Bytes::from("\"]"));
        assert!(body.is_end_stream());
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_sends_one_byte_per_interval() {
        let start = tokio::time::Instant::now();
        let mut body = ResponseBody::trickle(Bytes::from("abc"), Duration::from_secs(1));
        assert_eq!(body.size_hint().exact(), Some(3));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(
            (first, start.elapsed()),
            (Bytes::from("a"), Duration::from_secs(1))
        );
        assert_eq!(collect(body).await.unwrap(), Bytes::from("bc"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn chunked_oversized_hides_its_length() {
        let body =
            ResponseBody::oversized(40_000, Bytes::from("[\""), Bytes::from("\"]")).chunked(true);
        assert_eq!(body.size_hint().exact(), None);
        assert_eq!(collect(body).await.unwrap().len(), 40_000);
    }

    #[tokio::test]
    async fn truncated_sends_half_then_fails() {
        let mut body = ResponseBody::truncated(Bytes::from("0123456789"));
        assert_eq!(body.size_hint().exact(), Some(10));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, Bytes::from("01234"));
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);

        // Over HTTP/2: the same half, announced as the whole, then the end.
        let mut body = ResponseBody::truncated(Bytes::from("0123456789")).for_http2();
        assert_eq!(body.size_hint().exact(), Some(10));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, Bytes::from("01234"));
        assert!(body.frame().await.is_none());
    }
}
