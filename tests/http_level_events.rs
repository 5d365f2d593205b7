//! HTTP level: a body that is not JSON-RPC never makes a give-up event, whether its
//! deadline came before it was first polled or while it was read.
mod common;

use common::TestBody;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::{GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryStrategy};

type GiveUps = Arc<Mutex<Vec<(String, GiveUpReason)>>>;

fn watched() -> (RetryStrategy, GiveUps) {
    let g: GiveUps = Arc::default();
    let g2 = Arc::clone(&g);
    let s = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .codes([2001])
        .max_elapsed(Duration::from_secs(1))
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            g2.lock().unwrap().push((e.method().to_owned(), e.reason()))
        });
    (s, g)
}

fn layered(
    strategy: RetryStrategy,
    sends: Arc<AtomicUsize>,
) -> impl Service<
    http::Request<TestBody>,
    Response = http::Response<Full<Bytes>>,
    Error = tower_jsonrpc_retry::BoxError,
> + Clone {
    let inner = tower::service_fn(move |_: http::Request<TestBody>| {
        sends.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(b"ok")))) }
    });
    JsonRpcRetryLayer::http::<TestBody>(strategy).layer(inner)
}

const NOT_JSONRPC: &[u8] = b"PUT /coffee HTTP/1.1 -- plainly not JSON-RPC";

#[tokio::test(start_paused = true)]
async fn a_non_jsonrpc_body_makes_no_give_up_event_however_the_deadline_ends_it() {
    // (a) Whole body, first polled after the deadline: ended unsent, no event.
    let (strategy, give_ups) = watched();
    let sends = Arc::new(AtomicUsize::new(0));
    let mut svc = layered(strategy, Arc::clone(&sends));
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::from(NOT_JSONRPC.to_vec()))
        .unwrap();
    let call = svc.ready().await.unwrap().call(req);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        call.await
            .unwrap_err()
            .is::<tower::timeout::error::Elapsed>()
    );
    assert_eq!(sends.load(Ordering::SeqCst), 0);
    assert_eq!(*give_ups.lock().unwrap(), []);

    // (b) The same bytes, the upload stalled after them past the deadline: also ended
    // unsent, and it must not be reported as a JSON-RPC call given up either.
    let (strategy, give_ups) = watched();
    let sends = Arc::new(AtomicUsize::new(0));
    let svc = layered(strategy, Arc::clone(&sends));
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::PartThenStall(Some(Bytes::from_static(
            NOT_JSONRPC,
        ))))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>());
    assert_eq!(sends.load(Ordering::SeqCst), 0);
    assert_eq!(
        *give_ups.lock().unwrap(),
        [],
        "a body that is not JSON-RPC reported as a JSON-RPC call given up"
    );
}

/// lib.rs "Per-request strategies": at the HTTP level too, a request's own strategy
/// replaces the default's hooks, for the give-up its deadline makes while the request
/// body is still being read as well.
#[tokio::test(start_paused = true)]
async fn a_deadline_during_the_upload_is_told_to_the_requests_own_hook() {
    let (default, _, default_give_ups) = common::watched(
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([2001]),
    );
    let (own, _, own_give_ups) = common::watched(
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
            .codes([2001])
            .max_elapsed(Duration::from_secs(1)),
    );
    let inner = tower::service_fn(|_: http::Request<TestBody>| async {
        Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        ))))
    });
    let svc = JsonRpcRetryLayer::http::<TestBody>(default).layer(inner);
    let mut req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::Stalled)
        .unwrap();
    req.extensions_mut().insert(own);
    assert!(svc.oneshot(req).await.is_err());
    assert_eq!(
        own_give_ups.lock().unwrap().len(),
        1,
        "the request's own hook"
    );
    assert_eq!(
        default_give_ups.lock().unwrap().len(),
        0,
        "not the default's"
    );
}

/// `attempt_timeout` bounds the upload of the caller's body too: without a deadline, a
/// body that stalls would otherwise hold the call for ever. It ends at the timeout,
/// unsent and not retried (there were never whole bytes to send again).
#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_bounds_a_stalled_upload_without_a_deadline() {
    let sends = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sends);
    let inner = tower::service_fn(move |_: http::Request<TestBody>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::new()))) }
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .retry_on(tower_jsonrpc_retry::ErrorClass::Timeout);
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy)
        .attempt_timeout(Duration::from_secs(1))
        .layer(inner);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::Stalled)
        .unwrap();
    let start = tokio::time::Instant::now();
    // A guard an hour long, so that a call the timeout does not end fails the test.
    let err = tokio::time::timeout(Duration::from_secs(3600), svc.oneshot(req))
        .await
        .expect("the attempt timeout ends the upload")
        .unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(sends.load(Ordering::SeqCst), 0);
}

/// A body that is not JSON-RPC and over the request limit in its first frame (which
/// `Limited` drops) makes no give-up event either: its first byte is noted before.
#[tokio::test(start_paused = true)]
async fn a_non_jsonrpc_body_over_the_limit_makes_no_give_up_event() {
    let (strategy, give_ups) = watched();
    let inner = tower::service_fn(|_: http::Request<TestBody>| async {
        Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::new())))
    });
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy)
        .request_limit(16)
        .layer(inner);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::from(NOT_JSONRPC.to_vec()))
        .unwrap();
    assert!(svc.oneshot(req).await.is_err());
    assert_eq!(*give_ups.lock().unwrap(), []);
}
