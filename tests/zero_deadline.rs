//! `max_elapsed(Duration::ZERO)` on a real clock (it moves by itself between `call` and
//! the first poll): both levels make the one attempt, cut at once, as the deadline
//! bounds the whole call and an attempt that starts at its deadline is made.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer, RetryStrategy};

/// Answers every request at once with `body` (by default `{"result":3,"id":1}`);
/// counts requests.
#[derive(Clone)]
struct Answers {
    calls: Arc<AtomicUsize>,
    body: &'static str,
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            body: r#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        }
    }
}

impl Service<http::Request<Full<Bytes>>> for Answers {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, std::io::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<Full<Bytes>>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(http::Response::new(Full::from(self.body))))
    }
}

#[tokio::test]
async fn zero_max_elapsed_makes_the_attempt_at_both_levels() {
    let strategy = || RetryStrategy::none().max_elapsed(Duration::ZERO);

    // Codec level: the attempt is made and answered.
    let codec_inner = Answers::default();
    let codec_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy()))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .service(codec_inner.clone());
    let res = codec_level
        .oneshot(Request::new("sum", serde_json::json!([1, 2])).with_id(1))
        .await;
    assert!(res.is_ok(), "codec level: {res:?}");
    assert_eq!(codec_inner.calls.load(Ordering::SeqCst), 1);

    // HTTP level, same strategy, same inner answer: should be the same.
    let http_inner = Answers::default();
    let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy());
    let http_level = tower::Layer::layer(&layer, http_inner.clone());
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(Full::from(
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#,
        ))
        .unwrap();
    let res: Result<_, BoxError> = http_level.oneshot(req).await;
    let calls = http_inner.calls.load(Ordering::SeqCst);
    assert!(
        res.is_ok(),
        "http level: {:?} after {calls} requests",
        res.err()
    );
    assert_eq!(calls, 1);
}

/// On a real clock the outer layer's zero deadline has passed by the time its attempt
/// goes below it: a retry layer inside took it for a deadline left over from an earlier
/// call, dropped it, and made all its retries. It keeps it now, as the call's.
#[tokio::test]
async fn zero_max_elapsed_bounds_a_retry_layer_inside() {
    let busy = Answers {
        body: r#"{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1}"#,
        ..Answers::default()
    };
    let inner = RetryStrategy::new(tower_jsonrpc_retry::backoff::PeriodicBackoff::new(
        3,
        Duration::from_millis(1),
    ))
    .codes([2001]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            RetryStrategy::none().max_elapsed(Duration::ZERO),
        ))
        .layer(JsonRpcRetryLayer::new(inner))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .service(busy.clone());
    let res = svc
        .oneshot(Request::new("sum", serde_json::json!([1, 2])).with_id(1))
        .await;
    assert_eq!(busy.calls.load(Ordering::SeqCst), 1, "{res:?}");
}

/// A call that panicked in the service below (caught by the caller) leaves the layer as
/// it was: the next call's first attempt is made, even with its zero deadline passed by
/// the time it goes below (a retry would not be).
#[tokio::test]
async fn a_panic_below_does_not_turn_the_next_first_attempt_into_a_retry() {
    use tower_jsonrpc_retry::jsonrpc::Response;
    let calls = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&calls);
    let mut svc = tower::Layer::layer(
        &JsonRpcRetryLayer::new(RetryStrategy::none().max_elapsed(Duration::ZERO)),
        tower::service_fn(move |_req: Request| {
            assert!(
                count.fetch_add(1, Ordering::SeqCst) > 0,
                "the first call panics"
            );
            async { Ok::<_, BoxError>(Response::success(1, serde_json::json!(3))) }
        }),
    );
    let req = || Request::new("sum", serde_json::json!([1, 2])).with_id(1);
    ServiceExt::<Request>::ready(&mut svc).await.unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(svc.call(req()));
    }));
    assert!(panicked.is_err());
    let out = ServiceExt::<Request>::oneshot(svc.clone(), req()).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "{out:?}");
}
