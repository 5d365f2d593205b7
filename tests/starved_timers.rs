//! Bodies that are always ready cannot keep a timer from ending the call. A body read
//! from a tokio resource that always has a frame (a channel whose producer is faster
//! than the reader) returns `Pending` only when the task's tokio budget runs out, and a
//! timer polled then, with no budget left, says `Pending` too; a body that is not
//! tokio's and never returns `Pending` (empty frames, which no size limit counts) would
//! keep one poll running for ever. The attempt timeout, a notification's drain wait and
//! the call's deadline end each of them, at both levels.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::Full;
use serde_json::json;
use tower::{Layer, Service, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer, RetryStrategy};

/// A body read from a tokio channel that always has empty chunks ready: three make a
/// frame, so that fewer frames than the task's tokio budget spend it.
struct FromChannel {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl Default for FromChannel {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        Self { tx, rx }
    }
}

impl Body for FromChannel {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        for _ in 0..3 {
            let _ = self.tx.try_send(Bytes::new());
            if std::task::ready!(self.rx.poll_recv(cx)).is_none() {
                return Poll::Ready(None);
            }
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

/// How many frames a [`Spinning`] body gives before it ends: far more than a timer
/// checked between them lets through.
const SPIN: usize = 1_000_000;

/// A body that is never `Pending`: [`SPIN`] empty frames, then its end. Counts frames.
#[derive(Clone, Default)]
struct Spinning(Arc<AtomicUsize>);

/// As a request body for the HTTP-level layer (its retries are sent from the bytes).
impl From<Vec<u8>> for Spinning {
    fn from(_: Vec<u8>) -> Self {
        Self::default()
    }
}

impl Body for Spinning {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.fetch_add(1, Ordering::Relaxed) >= SPIN {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

/// Runs `call` on its own task, moving the paused clock on by 100 ms steps for up to
/// 60 s: its output, or `None` if it was still running.
async fn within_a_minute<T: Send + 'static>(
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let task = tokio::spawn(call);
    for _ in 0..600 {
        tokio::time::advance(Duration::from_millis(100)).await;
        tokio::task::yield_now().await;
        if task.is_finished() {
            return task.await.ok();
        }
    }
    task.abort();
    None
}

fn answering_with<B: Body + Send + 'static>(
    body: impl Fn() -> B + Clone + Send + 'static,
) -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<B>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<http::Response<B>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let body = body.clone();
        async move { Ok(http::Response::new(body())) }
    })
}

/// `svc`'s call of `req`, made once it is ready, not yet polled.
async fn call_of<S: Service<Request>>(svc: &mut S, req: Request) -> S::Future {
    match ServiceExt::<Request>::ready(svc).await {
        Ok(svc) => svc.call(req),
        Err(_) => panic!("not ready"),
    }
}

fn sum() -> Request {
    Request::new("sum", json!([1, 2])).with_id(1)
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_ends_an_answer_from_a_channel_always_ready() {
    let mut codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
        .attempt_timeout(Duration::from_secs(1))
        .layer(answering_with(FromChannel::default));
    let call = call_of(&mut codec, sum()).await;
    let res = within_a_minute(call)
        .await
        .expect("the attempt timeout never fired");
    assert!(res.unwrap_err().is_timeout());

    // A notification's answer is drained for a short while only, then delivered.
    let mut codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
        .layer(answering_with(FromChannel::default));
    let note = Request::new("log", json!([1]));
    let call = call_of(&mut codec, note).await;
    let res = within_a_minute(call).await.expect("the drain never ended");
    assert!(res.is_ok(), "{res:?}");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_call_whose_answer_comes_from_a_channel_always_ready() {
    let codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
        .layer(answering_with(FromChannel::default));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
        .max_elapsed(Duration::from_secs(1));
    let mut svc = JsonRpcRetryLayer::new(strategy).layer(codec);
    let call = call_of(&mut svc, sum()).await;
    let res = within_a_minute(call)
        .await
        .expect("the deadline never ended the call");
    assert!(res.unwrap_err().is_timeout());
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_ends_an_answer_never_pending() {
    for notification in [false, true] {
        let frames = Spinning::default();
        let body = frames.clone();
        let mut codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
            .attempt_timeout(Duration::from_secs(1))
            .layer(answering_with(move || body.clone()));
        let req = if notification {
            Request::new("log", json!([1]))
        } else {
            sum()
        };
        let call = call_of(&mut codec, req).await;
        let res = within_a_minute(call).await.expect("still running");
        let read = frames.0.load(Ordering::Relaxed);
        assert!(read < SPIN, "{notification}: read to its end, {res:?}");
        match res {
            Ok(_) => assert!(notification, "a call's answer never came"),
            Err(err) => assert!(!notification && err.is_timeout(), "{err:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_ends_a_request_body_never_pending_at_the_http_level() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    let inner = tower::service_fn(move |_: http::Request<Spinning>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(http::Response::new(Full::<Bytes>::default())) }
    });
    let caller = Spinning::default();
    let frames = caller.clone();
    let svc = JsonRpcRetryLayer::http::<Spinning>(RetryStrategy::transient())
        .attempt_timeout(Duration::from_secs(1))
        .layer(inner);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(caller)
        .unwrap();
    let res: Result<_, BoxError> = within_a_minute(svc.oneshot(req))
        .await
        .expect("still running");
    assert!(frames.0.load(Ordering::Relaxed) < SPIN, "read to its end");
    let err = res.unwrap_err();
    assert!(
        err.downcast_ref::<tower::timeout::error::Elapsed>()
            .is_some(),
        "{err:?}"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 0, "nothing was sent");
}

/// A whole answer, there at once, in `frames` frames.
struct InFrames(std::collections::VecDeque<Bytes>);

impl InFrames {
    fn new(frames: usize) -> Self {
        let text = json!({"jsonrpc": "2.0", "result": "x".repeat(frames), "id": 1}).to_string();
        let bytes = Bytes::from(text);
        let cut = |i: usize| i * bytes.len() / frames;
        Self(
            (0..frames)
                .map(|i| bytes.slice(cut(i)..cut(i + 1)))
                .collect(),
        )
    }
}

impl Body for InFrames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// The other side of giving way: an answer there whole when its call is polled late,
/// after its timer fired (a busy runtime; over HTTP/2, h2 holds a stream's frames until
/// they are read), is the answer however many frames it comes in, and is not sent again.
#[tokio::test(start_paused = true)]
async fn an_answer_there_whole_in_many_frames_when_polled_late_is_the_answer() {
    for frames in [1, 63, 64, 65, 200, 5_000] {
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Infallible>(http::Response::new(InFrames::new(frames))) }
        });
        let codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
            .attempt_timeout(Duration::from_secs(1))
            .layer(inner);
        let mut svc = JsonRpcRetryLayer::new(RetryStrategy::transient()).layer(codec);
        let call = call_of(&mut svc, sum()).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        let resp = call
            .await
            .unwrap_or_else(|e| panic!("{frames} frames: {e}"));
        assert_eq!(resp.result(), Some(&json!("x".repeat(frames))));
        assert_eq!(
            sent.load(Ordering::SeqCst),
            1,
            "{frames} frames: sent again"
        );
    }
}

/// The retry layer's own deadline, over a service with no timer of its own whose attempt
/// spends the task's tokio budget on every poll and never ends: the call still ends at
/// its deadline (a millisecond after it).
#[tokio::test(start_paused = true)]
async fn the_layers_deadline_ends_an_attempt_spending_the_budget_below() {
    use tower_jsonrpc_retry::jsonrpc::Response;
    let inner = tower::service_fn(|_: Request| async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(4);
        loop {
            let _ = tx.try_send(());
            let _ = rx.recv().await;
        }
        #[allow(unreachable_code)]
        Ok::<Response, BoxError>(Response::success(
            tower_jsonrpc_retry::jsonrpc::Id::from(1),
            json!(null),
        ))
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
        .max_elapsed(Duration::from_secs(1));
    let mut svc = JsonRpcRetryLayer::new(strategy).layer(inner);
    let call = call_of(&mut svc, sum()).await;
    let started = tokio::time::Instant::now();
    let res = within_a_minute(call)
        .await
        .expect("the deadline never ended the call");
    let err = res.unwrap_err();
    assert!(
        tower_jsonrpc_retry::retry::error_chain(&*err)
            .any(|e| e.is::<tower::timeout::error::Elapsed>()),
        "{err:?}"
    );
    assert!(
        started.elapsed() <= Duration::from_millis(1_100),
        "{:?}",
        started.elapsed()
    );
}
