//! `max_elapsed(Duration::ZERO)` on a real clock (it moves by itself between `call` and
//! the first poll): both levels make the one attempt, cut at once, as the deadline
//! bounds the whole call and an attempt that starts at its deadline is made. And a
//! call that panicked below leaves its deadline to no later call.
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

/// Ready only while `ready` is set; its next call panics while `panic_next` is set;
/// counts the calls answered.
#[derive(Clone, Default)]
struct Gate {
    ready: Arc<std::sync::atomic::AtomicBool>,
    panic_next: Arc<std::sync::atomic::AtomicBool>,
    answered: Arc<AtomicUsize>,
}

impl Service<Request> for Gate {
    type Response = tower_jsonrpc_retry::jsonrpc::Response;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Self::Response, BoxError>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.ready.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
    fn call(&mut self, _req: Request) -> Self::Future {
        assert!(
            !self.panic_next.swap(false, Ordering::SeqCst),
            "the inner service panicked"
        );
        self.answered.fetch_add(1, Ordering::SeqCst);
        let answer = tower_jsonrpc_retry::jsonrpc::Response::success(1, serde_json::json!(3));
        std::future::ready(Ok(answer))
    }
}

/// A call that panicked below (caught by the caller) leaves no deadline on the layer:
/// once that deadline has passed, the layer is not ready while the service below is
/// not, and the next call is sent and answered, not cut at the old deadline.
#[tokio::test(start_paused = true)]
async fn a_panic_below_leaves_no_deadline_for_the_next_call() {
    let gate = Gate::default();
    gate.ready.store(true, Ordering::SeqCst);
    let strategy = RetryStrategy::none().max_elapsed(Duration::from_secs(1));
    let mut svc = tower::Layer::layer(&JsonRpcRetryLayer::new(strategy), gate.clone());
    let req = || Request::new("sum", serde_json::json!([1, 2])).with_id(1);
    ServiceExt::<Request>::ready(&mut svc).await.unwrap();
    gate.panic_next.store(true, Ordering::SeqCst);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(svc.call(req()));
    }));
    assert!(panicked.is_err());
    tokio::time::advance(Duration::from_secs(2)).await;
    gate.ready.store(false, Ordering::SeqCst);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let ready = Service::<Request>::poll_ready(&mut svc, &mut cx);
    assert!(ready.is_pending(), "ready while the service below is not");
    gate.ready.store(true, Ordering::SeqCst);
    let out = ServiceExt::<Request>::ready(&mut svc)
        .await
        .unwrap()
        .call(req())
        .await;
    assert_eq!(out.unwrap().result(), Some(&serde_json::json!(3)));
    assert_eq!(gate.answered.load(Ordering::SeqCst), 1);
}
