//! The codec at its edges, where no other test looked: a notification's body drained or
//! handed back, a batch answer's limits and hints, an attempt cut to the deadline, a
//! single notification refused under a failure status, a body that breaks off.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{self, JsonRpcCodecLayer};
use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

/// A response body the test shapes: `chunks` data frames of `chunk` bytes each (then the
/// end), or, with `endless`, empty data frames for ever, or, with `stall`, nothing ever.
/// Counts the data bytes it gave.
#[derive(Clone)]
struct Shaped {
    chunk: usize,
    chunks: usize,
    endless: bool,
    stall: bool,
    exact: Option<u64>,
    produced: Arc<AtomicUsize>,
}

impl Shaped {
    fn new(chunk: usize, chunks: usize) -> Self {
        Self {
            chunk,
            chunks,
            endless: false,
            stall: false,
            exact: None,
            produced: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn stalled() -> Self {
        Self {
            stall: true,
            ..Self::new(0, 0)
        }
    }
    fn empty_frames_for_ever() -> Self {
        Self {
            endless: true,
            ..Self::new(0, 0)
        }
    }
    fn produced(&self) -> usize {
        self.produced.load(Ordering::SeqCst)
    }
}

impl Body for Shaped {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.stall {
            return Poll::Pending;
        }
        if this.endless {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::new()))));
        }
        if this.chunks == 0 {
            return Poll::Ready(None);
        }
        this.chunks -= 1;
        this.produced.fetch_add(this.chunk, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; this.chunk])))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// An HTTP service answering every request `status` with a clone of `body`.
fn answering<B: Clone + Send + 'static>(
    status: u16,
    body: B,
) -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<B>,
    Error = Infallible,
    Future = std::future::Ready<Result<http::Response<B>, Infallible>>,
> + Clone {
    tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let mut resp = http::Response::new(body.clone());
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
        std::future::ready(Ok(resp))
    })
}

fn layer() -> JsonRpcCodecLayer {
    JsonRpcCodecLayer::new(Uri::from_static("http://127.0.0.1:9/"))
}

fn notification() -> Request {
    Request::new("log", json!(["line"]))
}

/// One retry, after `delay`.
fn one_retry(delay: Duration) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(1, delay))
}

/// A POST of `body` for the HTTP-level layer (the services below answer in memory: the
/// address is never dialled).
fn post(body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:9/")
        .body(Full::from(body))
        .unwrap()
}

fn delivered(resp: Result<Response, codec::Error>) {
    let resp = resp.expect("the notification is delivered");
    assert_eq!(resp.id(), &Id::Null);
    assert_eq!(resp.result(), Some(&Value::Null));
}

/// A notification's 2xx body of exactly 64 KiB is drained ("up to 64 KiB of it is
/// read"), so that its connection can be used again.
#[tokio::test(start_paused = true)]
async fn a_notification_body_of_exactly_64_kib_is_drained() {
    let mut body = Shaped::new(1024, 64);
    body.exact = Some(64 * 1024);
    let resp = layer()
        .layer(answering(200, body.clone()))
        .oneshot(notification())
        .await;
    delivered(resp);
    assert_eq!(body.produced(), 64 * 1024, "the whole body was read");
}

/// A notification's 2xx body of empty frames for ever is cut by the drain's own wait,
/// and the notification is delivered, not timed out.
#[tokio::test(start_paused = true)]
async fn a_notification_body_of_endless_empty_frames_is_delivered_when_the_wait_ends() {
    let call = tokio::spawn(
        layer()
            .attempt_timeout(Duration::from_secs(5))
            .layer(answering(200, Shaped::empty_frames_for_ever()))
            .oneshot(notification()),
    );
    // The call's task gives way every 64 frames; the clock moves meanwhile (the runtime
    // is never idle, so a paused clock moves only so).
    for _ in 0..100 {
        if call.is_finished() {
            break;
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert!(call.is_finished(), "still draining a second later");
    delivered(call.await.expect("no panic"));
}

/// A non-2xx answer to a notification comes back through the HTTP-level layer with its
/// body, as the server wrote it: only a 2xx answer's body is left out.
#[tokio::test(start_paused = true)]
async fn a_refused_notification_comes_back_with_its_body_at_the_http_level() {
    const PAGE: &str = "<html>503: overloaded, try later</html>";
    let strategy = one_retry(Duration::from_millis(100));
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy)
        .layer(answering(503, Full::<Bytes>::from(PAGE)));
    let req = post(r#"{"jsonrpc":"2.0","method":"log","params":["line"]}"#);
    let resp = svc.oneshot(req).await.expect("the server's answer");
    assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, PAGE, "the refusal's body, as the server wrote it");
}

/// The answer to a call under a failure status whose body passes the limit comes back
/// from the HTTP-level layer as that status with the server's headers, without its
/// body (`HttpRetryLayer::response_limit`).
#[tokio::test(start_paused = true)]
async fn a_failure_status_over_the_limit_comes_back_as_that_status_at_the_http_level() {
    let strategy = one_retry(Duration::from_millis(100));
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy)
        .response_limit(100)
        .layer(tower::service_fn(|_: http::Request<Full<Bytes>>| {
            let resp = http::Response::builder()
                .status(503)
                .header("x-ratelimit-reset", "30")
                .body(Full::new(Bytes::from(vec![b'x'; 4096])))
                .unwrap();
            std::future::ready(Ok::<_, Infallible>(resp))
        }));
    let req = post(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#);
    let resp = svc.oneshot(req).await.expect("the status, not an error");
    assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    // Its head as it came: the server's headers (a rate limit's, here) with it.
    assert_eq!(
        resp.headers()
            .get("x-ratelimit-reset")
            .map(|v| v.as_bytes()),
        Some(b"30".as_slice()),
        "{:?}",
        resp.headers()
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "{body:?}");
}

/// A 2xx answer to a batch with calls whose body passes the limit, or runs out of time,
/// is that error (body too large, timeout), which the rules on them see: not an empty
/// answer delivered, as for notifications only.
#[tokio::test(start_paused = true)]
async fn a_batch_with_calls_whose_body_passes_the_limit_or_stalls_is_that_error() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;
    let calls = || {
        BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("sum", json!([3, 4])).with_id(2),
        ])
    };
    let err = layer()
        .response_limit(100)
        .layer(answering(200, Shaped::new(1024, 4)))
        .oneshot(calls())
        .await
        .unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");

    let err = layer()
        .attempt_timeout(Duration::from_secs(1))
        .layer(answering(200, Shaped::stalled()))
        .oneshot(calls())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

/// A batch of two notifications sent through the codec to a server answering `status`
/// with `body`.
async fn two_notifications_answered(
    status: u16,
    body: &'static str,
) -> Result<tower_jsonrpc_retry::jsonrpc::BatchResponse, tower_jsonrpc_retry::codec::Error> {
    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("log", json!(["b"])),
    ]);
    layer()
        .layer(answering(status, Full::<Bytes>::from(body)))
        .oneshot(batch)
        .await
}

/// Null-id errors in an array answering a batch of notifications only are kept in
/// `unmatched` (the codec's docs: a refusal is the batch's error or kept there), with
/// the answer's `Retry-After`, as in a batch with calls.
#[tokio::test(start_paused = true)]
async fn null_id_errors_answering_notifications_only_are_kept_in_unmatched() {
    use tower_jsonrpc_retry::codec::RetryAfter;
    const BODY: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad"},"id":null}]"#;
    let batch = two_notifications_answered(200, BODY)
        .await
        .expect("delivered");
    assert!(batch.items().is_empty());
    assert_eq!(batch.unmatched().len(), 1, "{batch:?}");
    assert_eq!(batch.unmatched()[0].error().map(|e| e.code()), Some(-32600));

    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("log", json!(["b"])),
    ]);
    let told = layer()
        .layer(tower::service_fn(|_: http::Request<Full<Bytes>>| {
            let resp = http::Response::builder()
                .header(http::header::RETRY_AFTER, "30")
                .body(text(BODY))
                .unwrap();
            std::future::ready(Ok::<_, Infallible>(resp))
        }))
        .oneshot(batch)
        .await
        .expect("delivered");
    let hint = told.unmatched()[0].extensions().get::<RetryAfter>();
    assert_eq!(hint.map(RetryAfter::delay), Some(Duration::from_secs(30)));
}

/// A 429 refusing a batch of notifications only with a null-id error is that JSON-RPC
/// answer (the batch's error, with the status), not a bare status error.
#[tokio::test(start_paused = true)]
async fn a_failure_status_refusing_notifications_only_with_a_batch_error_is_that_answer() {
    const BODY: &str = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":null}"#;
    let batch = two_notifications_answered(429, BODY)
        .await
        .expect("the server's JSON-RPC answer, not a status error");
    assert_eq!(batch.batch_error().map(|e| e.code()), Some(-32005));
    assert_eq!(
        batch.extensions().get::<http::StatusCode>(),
        Some(&http::StatusCode::TOO_MANY_REQUESTS)
    );
}

/// A batch answer's `Retry-After` and failure status are recorded on the batch and on
/// each of its items, a null-id error no call took (in `unmatched`) included.
#[tokio::test(start_paused = true)]
async fn a_batch_answers_retry_after_is_on_each_item() {
    use tower_jsonrpc_retry::codec::RetryAfter;
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;
    const BODY: &str = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2},{"jsonrpc":"2.0","error":{"code":-32600,"message":"unread"},"id":null}]"#;
    let svc = layer().layer(tower::service_fn(|_: http::Request<Full<Bytes>>| {
        let resp = http::Response::builder()
            .status(429)
            .header(http::header::RETRY_AFTER, "7")
            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
            .unwrap();
        std::future::ready(Ok::<_, Infallible>(resp))
    }));
    let batch = svc
        .oneshot(BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("sum", json!([3, 4])).with_id(2),
        ]))
        .await
        .unwrap();
    let seven = RetryAfter::new(Duration::from_secs(7));
    let hint = Some(&seven);
    assert_eq!(batch.extensions().get::<RetryAfter>(), hint);
    assert_eq!((batch.items().len(), batch.unmatched().len()), (2, 1));
    for item in batch.items().iter().chain(batch.unmatched()) {
        assert_eq!(
            item.extensions().get::<RetryAfter>(),
            hint,
            "{:?}",
            item.id()
        );
        assert_eq!(
            item.extensions().get::<http::StatusCode>(),
            Some(&http::StatusCode::TOO_MANY_REQUESTS)
        );
    }
}

/// An attempt's timeout is cut to the call's deadline: under `max_elapsed(1 s)`, an
/// attempt with a 5 s timeout ends 1 s on, to the millisecond.
#[tokio::test(start_paused = true)]
async fn an_attempt_is_cut_to_the_calls_deadline() {
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
        .max_elapsed(Duration::from_secs(1));
    let svc = JsonRpcRetryLayer::new(strategy).layer(
        layer()
            .attempt_timeout(Duration::from_secs(5))
            .layer(answering(200, Shaped::stalled())),
    );
    let start = Instant::now();
    let _ = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

/// A 2xx answer to a notification comes back from the HTTP-level layer without its
/// body, and so without the header that says how that body was encoded (a
/// decompressing caller would fail on an empty "gzip" body).
#[tokio::test(start_paused = true)]
async fn a_notifications_answer_without_its_body_has_no_content_encoding() {
    let inner = tower::service_fn(|_: http::Request<Full<Bytes>>| {
        let resp = http::Response::builder()
            .header(http::header::CONTENT_ENCODING, "gzip")
            .body(Full::new(Bytes::from_static(b"\x1f\x8b not really")))
            .unwrap();
        std::future::ready(Ok::<_, Infallible>(resp))
    });
    let strategy = one_retry(Duration::from_millis(10));
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(inner);
    let req = post(r#"{"jsonrpc":"2.0","method":"log","params":["line"]}"#);
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert!(
        !resp.headers().contains_key(http::header::CONTENT_ENCODING),
        "{:?}",
        resp.headers()
    );
}

/// The codec's table: a single notification's non-2xx answer is a status error whatever
/// its body, a JSON-RPC refusal with a null id included (a batch of notifications only
/// takes such an answer as its error: above).
#[tokio::test(start_paused = true)]
async fn a_single_notification_under_a_failure_status_is_a_status_error_whatever_its_body() {
    const BODY: &str = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":null}"#;
    let err = layer()
        .layer(answering(
            429,
            Full::new(Bytes::from_static(BODY.as_bytes())),
        ))
        .oneshot(notification())
        .await
        .unwrap_err();
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
}

/// A body that fails at its first frame.
#[derive(Clone)]
struct Broken;

impl Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())))
    }
}

/// The codec's table: a body that breaks off is a body error whatever the status, with
/// the status kept, for a call and for a batch.
#[tokio::test(start_paused = true)]
async fn a_body_that_breaks_off_is_a_body_error_with_its_status() {
    for status in [200, 503] {
        let svc = layer().layer(answering(status, Broken));
        let call = Request::new("sum", json!([1, 2])).with_id(1);
        let err = svc.clone().oneshot(call).await.unwrap_err();
        assert!(err.is_body() && !err.is_status(), "{status}: {err:?}");
        let kept = err.status().map(|s| s.as_u16());
        assert_eq!(kept, Some(status), "{err:?}");
        let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("sum", json!([3, 4])).with_id(2),
        ]);
        let err = svc.oneshot(batch).await.unwrap_err();
        assert!(err.is_body(), "{status}, batch: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err:?}");
    }
}

/// A body of `text`, for the services that answer.
fn text(text: &'static str) -> Full<Bytes> {
    Full::new(Bytes::from_static(text.as_bytes()))
}

/// An answer whose body starts with a UTF-8 byte order mark (a PHP server whose source
/// file has one sends it first), which RFC 8259 lets a reader pass over, is read as the
/// JSON after it: a call's, a batch's, and a batch's refusal; a mark alone is an empty
/// body.
#[tokio::test(start_paused = true)]
async fn an_answer_after_a_byte_order_mark_is_read() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;
    let call = Request::new("sum", json!([1, 2])).with_id(1);
    let resp = layer()
        .layer(answering(
            200,
            text("\u{feff}{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":1}"),
        ))
        .oneshot(call.clone())
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));

    let calls = BatchRequest::new(vec![call.clone(), call.clone().with_id(2)]);
    let answer = "\u{feff}[{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":1},{\"jsonrpc\":\"2.0\",\"result\":4,\"id\":2}]";
    let batch = layer()
        .layer(answering(200, text(answer)))
        .oneshot(calls.clone())
        .await
        .unwrap();
    assert_eq!(batch.get(&Id::Number(2)).unwrap().result(), Some(&json!(4)));

    let refusal = "\u{feff}{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32005,\"message\":\"limited\"},\"id\":null}";
    let batch = layer()
        .layer(answering(429, text(refusal)))
        .oneshot(calls)
        .await
        .unwrap();
    assert_eq!(batch.batch_error().unwrap().code(), -32005);

    let err = layer()
        .layer(answering(200, text("\u{feff}")))
        .oneshot(call)
        .await
        .unwrap_err();
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("empty response body"), "{err:?}");
}

/// At the HTTP level, a batch answered after a byte order mark is read (retried in part,
/// as its rules say), its items keep their own bytes in the gathered answer, and an
/// answer handed back as it came keeps the mark.
#[tokio::test(start_paused = true)]
async fn a_batch_answered_after_a_byte_order_mark_is_gathered_at_the_http_level() {
    let calls =
        r#"[{"jsonrpc":"2.0","method":"sum","id":1},{"jsonrpc":"2.0","method":"sum","id":2}]"#;
    let sent = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&sent);
    let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let body = match count.fetch_add(1, Ordering::SeqCst) {
            0 => {
                "\u{feff}[{\"jsonrpc\":\"2.0\",\"result\":\"0x2a\",\"id\":1},{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32005,\"message\":\"limited\"},\"id\":2}]"
            }
            _ => "\u{feff}[{\"jsonrpc\":\"2.0\",\"result\":1e400,\"id\":2}]",
        };
        std::future::ready(Ok::<_, Infallible>(http::Response::new(text(body))))
    });
    let strategy = one_retry(Duration::from_millis(100)).codes([-32005]);
    let resp = JsonRpcRetryLayer::http(strategy)
        .layer(inner)
        .oneshot(post(calls))
        .await
        .unwrap();
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "the batch, then call 2 alone"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        r#"[{"jsonrpc":"2.0","result":"0x2a","id":1},{"jsonrpc":"2.0","result":1e400,"id":2}]"#
    );

    let single = answering(
        200,
        text("\u{feff}{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":1}"),
    );
    let resp = JsonRpcRetryLayer::http(RetryStrategy::none())
        .layer(single)
        .oneshot(post(r#"{"jsonrpc":"2.0","method":"sum","id":1}"#))
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "{body:?}");
}

/// At the HTTP level, a refusal after a byte order mark, kept in a gathered answer for a
/// non-idempotent notification a retry did not send again, goes in without the mark
/// (which would not be JSON inside the array), in either form: a null-id error object,
/// and geth's array of one error under the first call's id, as that error object under a
/// null id.
#[tokio::test(start_paused = true)]
async fn a_refusal_after_a_byte_order_mark_kept_in_a_gathered_answer_is_json() {
    let calls = r#"[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b","id":2},{"jsonrpc":"2.0","method":"log"}]"#;
    let refusals = [
        "\u{feff}{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32005,\"message\":\"limited\"},\"id\":null}",
        "\u{feff}[{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":\"batch too large\"},\"id\":1}]",
    ];
    for refusal in refusals {
        let sent = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&sent);
        let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
            let body = match count.fetch_add(1, Ordering::SeqCst) {
                0 => refusal,
                _ => r#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":2,"id":2}]"#,
            };
            std::future::ready(Ok::<_, Infallible>(http::Response::new(text(body))))
        });
        let strategy = one_retry(Duration::from_millis(100))
            .codes([-32005, -32600])
            .non_idempotent(["log"]);
        let resp = JsonRpcRetryLayer::http(strategy)
            .layer(inner)
            .oneshot(post(calls))
            .await
            .unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 2, "{refusal}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        let ids: Vec<&Value> = items.iter().map(|item| &item["id"]).collect();
        assert_eq!(ids, [&json!(1), &json!(2), &Value::Null], "{refusal}");
        assert!(items[2]["error"]["code"].is_i64(), "{items:?}");
    }
}
