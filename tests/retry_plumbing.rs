//! The HTTP-level layer's and the retry layer's plumbing where no other test looked: who
//! hears of a call given up unsent, clones keeping their settings, readiness waits and
//! their deadlines, a failed last exchange's hint.
mod common;

use common::TestBody;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::{BoxError, GiveUpReason, JsonRpcRetryLayer, RetryStrategy};

const CALL: &[u8] = br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const ANSWER: &[u8] = br#"{"jsonrpc":"2.0","result":3,"id":1}"#;

fn retrying() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([2001])
}

/// A POST of `body` to an address no test listens on: the inner services here answer
/// themselves.
fn post(body: TestBody) -> http::Request<TestBody> {
    http::Request::post("http://127.0.0.1:1/")
        .body(body)
        .unwrap()
}

fn answering(
    sends: Arc<AtomicUsize>,
) -> impl Service<
    http::Request<TestBody>,
    Response = http::Response<Full<Bytes>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: http::Request<TestBody>| {
        sends.fetch_add(1, Ordering::SeqCst);
        async {
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(ANSWER))))
        }
    })
}

/// An upload the call's deadline ends is given up for `Deadline`; one only the attempt
/// timeout ends is `NotRetryable` (the docs of `attempt_timeout` say so).
#[tokio::test(start_paused = true)]
async fn a_stalled_upload_is_given_up_for_the_reason_that_ended_it() {
    let second = Duration::from_secs(1);
    // The call's deadline ends it; or only the attempt timeout does, no deadline coming.
    let cases = [
        (retrying().max_elapsed(second), None, GiveUpReason::Deadline),
        (retrying(), Some(second), GiveUpReason::NotRetryable),
    ];
    for (strategy, attempt_timeout, reason) in cases {
        let (strategy, _, give_ups) = common::watched(strategy);
        let mut layer = JsonRpcRetryLayer::http::<TestBody>(strategy);
        if let Some(timeout) = attempt_timeout {
            layer = layer.attempt_timeout(timeout);
        }
        let svc = layer.layer(answering(Arc::default()));
        let err = svc.oneshot(post(TestBody::Stalled)).await.unwrap_err();
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        let reasons: Vec<_> = give_ups.lock().unwrap().iter().map(|g| g.4).collect();
        assert_eq!(reasons, [reason]);
    }
}

/// A JSON-RPC body over the request limit is not sent, and told to `on_give_up` as
/// `NotRetryable` (docs of `attempt_timeout`: "as a body over the request_limit is"),
/// with no method (the call is not known).
#[tokio::test(start_paused = true)]
async fn a_jsonrpc_body_over_the_request_limit_is_told_to_on_give_up() {
    let (strategy, _, give_ups) = common::watched(retrying());
    let sends = Arc::new(AtomicUsize::new(0));
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy)
        .request_limit(16)
        .layer(answering(Arc::clone(&sends)));
    let req = post(TestBody::from(CALL.to_vec()));
    let err = svc.oneshot(req).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("larger than the limit of 16 bytes"),
        "{err}"
    );
    assert_eq!(sends.load(Ordering::SeqCst), 0);
    let got = give_ups.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].4),
        ("", GiveUpReason::NotRetryable)
    );
}

/// Under `max_elapsed(ZERO)` the deadline is the call itself, which "leaves one
/// attempt, cut at once unless its answer is there at once" even when the call's future
/// is first polled later.
#[tokio::test(start_paused = true)]
async fn a_zero_deadline_still_makes_its_one_attempt_when_polled_late() {
    let sends = Arc::new(AtomicUsize::new(0));
    let mut svc = JsonRpcRetryLayer::http::<TestBody>(retrying().max_elapsed(Duration::ZERO))
        .layer(answering(Arc::clone(&sends)));
    let req = post(TestBody::from(CALL.to_vec()));
    let call = svc.ready().await.unwrap().call(req);
    tokio::time::advance(Duration::from_millis(5)).await;
    let res: Result<_, BoxError> = call.await;
    let body = res.expect("the one attempt, answered at once").into_body();
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], ANSWER);
    assert_eq!(sends.load(Ordering::SeqCst), 1);
}

/// An HTTP service that is never ready (a pool or limit that never frees).
#[derive(Clone)]
struct NeverReady;

impl Service<http::Request<TestBody>> for NeverReady {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Pending
    }
    fn call(&mut self, _: http::Request<TestBody>) -> Self::Future {
        panic!("called while not ready")
    }
}

/// A call made without `poll_ready` whose inner service is never ready ends at its
/// deadline, unsent, and `on_give_up` hears of it for that call (method, id,
/// `Deadline`), as the docs of `give_up_at_deadline` say.
#[tokio::test(start_paused = true)]
async fn a_readiness_wait_ended_by_the_deadline_is_told_to_on_give_up() {
    let (strategy, _, give_ups) = common::watched(retrying().max_elapsed(Duration::from_secs(1)));
    let mut svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(NeverReady);
    let req = post(TestBody::from(CALL.to_vec()));
    let start = tokio::time::Instant::now();
    let err = Service::call(&mut svc, req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    let got = give_ups.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            "sum".to_owned(),
            Some("1".to_owned()),
            None,
            0,
            GiveUpReason::Deadline
        )]
    );
}

/// A strategy that cannot retry hears of no give-up, as over the policy ("for the
/// strategy that governs it, if that strategy can retry at all"), also for a JSON-RPC
/// body over the request limit.
#[tokio::test(start_paused = true)]
async fn a_strategy_that_cannot_retry_hears_of_no_unsent_give_up() {
    let (strategy, _, give_ups) = common::watched(RetryStrategy::none());
    assert!(!strategy.can_retry());
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy)
        .request_limit(16)
        .layer(answering(Arc::default()));
    let req = post(TestBody::from(CALL.to_vec()));
    assert!(svc.oneshot(req).await.is_err());
    assert_eq!(*give_ups.lock().unwrap(), []);
}

/// A single call ended unsent at its deadline is told to its method's strategy's hook
/// (`RetryStrategy::for_method`), not the default's.
#[tokio::test(start_paused = true)]
async fn an_unsent_give_up_goes_to_the_methods_own_hook() {
    let (default, _, default_give_ups) = common::watched(retrying());
    let (own, _, own_give_ups) = common::watched(retrying().max_elapsed(Duration::from_secs(1)));
    let strategy = default.for_method("sum", own);
    let mut svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(NeverReady);
    let req = post(TestBody::from(CALL.to_vec()));
    let err = Service::call(&mut svc, req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(
        own_give_ups.lock().unwrap().len(),
        1,
        "the method's own hook"
    );
    assert_eq!(
        default_give_ups.lock().unwrap().len(),
        0,
        "not the default's"
    );
}

/// A batch ended unsent at its deadline is told as a batch, with its length.
#[tokio::test(start_paused = true)]
async fn an_unsent_batch_give_up_says_the_batch_length() {
    let (strategy, _, give_ups) = common::watched(retrying().max_elapsed(Duration::from_secs(1)));
    let mut svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(NeverReady);
    let batch = br#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
    let req = post(TestBody::from(batch.to_vec()));
    let err = Service::call(&mut svc, req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    let got: Vec<_> = give_ups
        .lock()
        .unwrap()
        .iter()
        .map(|g| (g.2, g.4))
        .collect();
    assert_eq!(got, [(Some(2), GiveUpReason::Deadline)]);
}

/// A clone of the layer keeps its attempt timeout (as `ServiceBuilder` and any code
/// that reuses a configured layer clone it).
#[tokio::test(start_paused = true)]
async fn a_cloned_layer_keeps_its_attempt_timeout() {
    let layer =
        JsonRpcRetryLayer::http::<TestBody>(retrying()).attempt_timeout(Duration::from_secs(1));
    let inner = tower::service_fn(|_: http::Request<TestBody>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(ANSWER))))
    });
    let svc = layer.clone().layer(inner);
    let req = post(TestBody::from(CALL.to_vec()));
    let start = tokio::time::Instant::now();
    let res: Result<_, BoxError> = svc.oneshot(req).await;
    assert!(res.is_err(), "cut by the attempt timeout");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

/// A clone of the service keeps its request limit.
#[tokio::test(start_paused = true)]
async fn a_cloned_service_keeps_its_request_limit() {
    let sends = Arc::new(AtomicUsize::new(0));
    let svc = JsonRpcRetryLayer::http::<TestBody>(retrying())
        .request_limit(16)
        .layer(answering(Arc::clone(&sends)));
    let req = post(TestBody::from(CALL.to_vec()));
    let res: Result<_, BoxError> = svc.clone().oneshot(req).await;
    let err = res.unwrap_err();
    assert!(
        err.to_string()
            .contains("larger than the limit of 16 bytes"),
        "{err}"
    );
    assert_eq!(sends.load(Ordering::SeqCst), 0);
}

/// A partly retried batch whose last exchange failed as a whole without a `Retry-After`
/// comes back with the answers gathered before, and without the first exchange's stale
/// `Retry-After` (the docs: "with that exchange's Retry-After").
#[tokio::test(start_paused = true)]
async fn a_failed_last_exchange_without_a_hint_drops_the_earlier_hint() {
    let sends = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&sends);
    let inner = tower::service_fn(move |_: http::Request<TestBody>| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let res = if n == 0 {
            http::Response::builder()
                .header(http::header::RETRY_AFTER, "7")
                .body(Full::new(Bytes::from_static(
                    br#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"busy"},"id":2}]"#,
                )))
        } else {
            http::Response::builder()
                .status(503)
                .body(Full::new(Bytes::new()))
        };
        async move { Ok::<_, std::io::Error>(res.unwrap()) }
    });
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]);
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(inner);
    let batch = br#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
    let req = post(TestBody::from(batch.to_vec()));
    let res: Result<_, BoxError> = svc.oneshot(req).await;
    let res = res.unwrap();
    assert_eq!(sends.load(Ordering::SeqCst), 2);
    assert_eq!(res.status(), http::StatusCode::OK);
    assert_eq!(
        res.headers().get(http::header::RETRY_AFTER),
        None,
        "{:?}",
        res.headers()
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(items.len(), 2);
}

/// A JSON-RPC service ready from a time the test moves, answering every call at once;
/// counts its readiness polls.
struct ReadyFrom {
    at: Arc<std::sync::Mutex<tokio::time::Instant>>,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    sends: Arc<AtomicUsize>,
}

impl Clone for ReadyFrom {
    fn clone(&self) -> Self {
        Self {
            at: Arc::clone(&self.at),
            sleep: None,
            sends: Arc::clone(&self.sends),
        }
    }
}

impl Service<tower_jsonrpc_retry::jsonrpc::Request> for ReadyFrom {
    type Response = tower_jsonrpc_retry::jsonrpc::Response;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let at = *self.at.lock().unwrap();
        if tokio::time::Instant::now() >= at {
            self.sleep = None;
            return Poll::Ready(Ok(()));
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        let _ = std::future::Future::poll(sleep.as_mut(), cx);
        Poll::Pending
    }
    fn call(&mut self, req: tower_jsonrpc_retry::jsonrpc::Request) -> Self::Future {
        self.sends.fetch_add(1, Ordering::SeqCst);
        let id = req.id().cloned().unwrap();
        std::future::ready(Ok(tower_jsonrpc_retry::jsonrpc::Response::success(
            id,
            serde_json::json!(3),
        )))
    }
}

/// A call's deadline is cleared off the shared service when the call is made, so the
/// next call's readiness wait, before that call has a deadline of its own, does not end
/// at the earlier call's deadline and fail unsent.
#[tokio::test(start_paused = true)]
async fn a_later_readiness_wait_does_not_end_at_an_earlier_calls_deadline() {
    let at = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
    let sends = Arc::new(AtomicUsize::new(0));
    let inner = ReadyFrom {
        at: Arc::clone(&at),
        sleep: None,
        sends: Arc::clone(&sends),
    };
    let mut svc =
        JsonRpcRetryLayer::new(retrying().max_elapsed(Duration::from_secs(1))).layer(inner);
    type Req = tower_jsonrpc_retry::jsonrpc::Request;
    let first = Req::new("sum", serde_json::json!([1, 2])).with_id(1);
    ServiceExt::<Req>::ready(&mut svc)
        .await
        .unwrap()
        .call(first)
        .await
        .unwrap();
    // The first call is long over; the service is busy for 5 s.
    *at.lock().unwrap() = tokio::time::Instant::now() + Duration::from_secs(5);
    tokio::time::advance(Duration::from_secs(2)).await;
    let second = Req::new("sum", serde_json::json!([1, 2])).with_id(2);
    let ready = ServiceExt::<Req>::ready(&mut svc).await.unwrap();
    let res = ready.call(second).await;
    assert!(
        res.is_ok(),
        "the second call failed at the first call's deadline: {res:?}"
    );
    assert_eq!(sends.load(Ordering::SeqCst), 2);
}

/// A JSON-RPC service whose readiness fails; counts its readiness polls.
#[derive(Clone)]
struct FailsReady(Arc<AtomicUsize>);

impl Service<tower_jsonrpc_retry::jsonrpc::Request> for FailsReady {
    type Response = tower_jsonrpc_retry::jsonrpc::Response;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Err(std::io::Error::other("closed")))
    }
    fn call(&mut self, _: tower_jsonrpc_retry::jsonrpc::Request) -> Self::Future {
        panic!("called after its readiness failed")
    }
}

/// Readiness asked again before the call (allowed by tower) does not poll an inner
/// service whose readiness already failed (tower: it may not be polled again); the call
/// gets that error.
#[tokio::test(start_paused = true)]
async fn a_failed_inner_readiness_is_not_polled_again() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut svc =
        JsonRpcRetryLayer::new(RetryStrategy::none()).layer(FailsReady(Arc::clone(&polls)));
    type Req = tower_jsonrpc_retry::jsonrpc::Request;
    for _ in 0..2 {
        std::future::poll_fn(|cx| Service::<Req>::poll_ready(&mut svc, cx))
            .await
            .unwrap();
    }
    let err = svc
        .call(Req::new("sum", serde_json::json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "closed");
    assert_eq!(polls.load(Ordering::SeqCst), 1);
}

/// An HTTP service ready for its first request only, then never again; answers every
/// request with a retryable error.
#[derive(Clone)]
struct ReadyOnce(Arc<AtomicUsize>);

impl Service<http::Request<Full<Bytes>>> for ReadyOnce {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.0.load(Ordering::SeqCst) == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
    fn call(&mut self, _: http::Request<Full<Bytes>>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(http::Response::new(Full::new(Bytes::from_static(
            br#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"busy"},"id":2}]"#,
        )))))
    }
}

/// A retry still waiting for readiness at the deadline was never sent, so the give-up
/// recorded on the error does not say the last attempt may have run
/// (`GaveUp::last_attempt_unanswered`, docs of `InspectError::deadline_error`: "marked
/// as not sent").
#[tokio::test(start_paused = true)]
async fn a_retry_never_ready_by_the_deadline_is_recorded_as_unsent() {
    let sends = Arc::new(AtomicUsize::new(0));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .codes([-32005])
        .max_elapsed(Duration::from_secs(1));
    let svc = JsonRpcRetryLayer::new(strategy).layer(
        tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
            .layer(ReadyOnce(Arc::clone(&sends))),
    );
    let start = tokio::time::Instant::now();
    use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    let req = BatchRequest::new(vec![
        Request::new("sum", serde_json::json!([1, 2])).with_id(1),
        Request::new("sum", serde_json::json!([3, 4])).with_id(2),
    ]);
    let resp = svc.oneshot(req).await.expect("the answers gathered");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(sends.load(Ordering::SeqCst), 1, "the retry was never sent");
    assert_eq!(resp.items().len(), 2);
    let gave_up = *resp
        .extensions()
        .get::<tower_jsonrpc_retry::GaveUp>()
        .expect("recorded");
    assert_eq!(gave_up.reason(), GiveUpReason::Deadline);
    assert!(!gave_up.last_attempt_unanswered(), "{gave_up:?}");
}

/// Retries a 429 three times, 10 ms apart (the server's `Retry-After` decides the wait);
/// with `deadline`, within that `max_elapsed`.
fn on_429(deadline: Option<Duration>) -> RetryStrategy {
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10))).retry_on(
        tower_jsonrpc_retry::ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS),
    );
    match deadline {
        Some(limit) => strategy.max_elapsed(limit),
        None => strategy,
    }
}

/// An HTTP service under test.
type Inner = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<Full<Bytes>>,
    std::io::Error,
>;

/// An inner HTTP service answering every exchange with a 429 and `Retry-After: 10`, and
/// the count of its exchanges.
fn slow_down() -> (Inner, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let svc = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let answer = http::Response::builder()
            .status(429)
            .header(http::header::RETRY_AFTER, "10")
            .body(Full::new(Bytes::from_static(b"slow down")))
            .unwrap();
        std::future::ready(Ok::<_, std::io::Error>(answer))
    });
    (Inner::new(svc), sent)
}

/// `max_elapsed`: "A deadline set by a retry layer further out bounds the waits and
/// attempts of the layers inside it as well", also for an HTTP-level layer below the
/// codec. Its wait of 10 s would end past the outer layer's deadline of 5 s: it starts
/// none, and the server's 429 comes back at once, not a timeout at the deadline.
#[tokio::test(start_paused = true)]
async fn an_outer_deadline_bounds_the_waits_of_an_http_level_layer_below_the_codec() {
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    use tower_jsonrpc_retry::jsonrpc::Request;
    let (svc, sent) = slow_down();
    let below = JsonRpcRetryLayer::http::<Full<Bytes>>(on_429(None)).layer(svc);
    let codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap()).layer(below);
    let outer = JsonRpcRetryLayer::new(on_429(Some(Duration::from_secs(5)))).layer(codec);
    let start = tokio::time::Instant::now();
    let call = Request::new("sum", serde_json::json!([1, 2])).with_id(1);
    let err = outer.oneshot(call).await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(http::StatusCode::TOO_MANY_REQUESTS),
        "{err}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(sent.load(Ordering::SeqCst), 1);
}

/// The same with two HTTP-level layers, one inside the other (one in jsonrpsee's
/// middleware, say, and one of the caller's own around it).
#[tokio::test(start_paused = true)]
async fn an_outer_deadline_bounds_the_waits_of_an_http_level_layer_inside_another() {
    let (svc, sent) = slow_down();
    let below = JsonRpcRetryLayer::http::<Full<Bytes>>(on_429(None))
        .map_err(std::io::Error::other)
        .layer(svc);
    let outer =
        JsonRpcRetryLayer::http::<Full<Bytes>>(on_429(Some(Duration::from_secs(5)))).layer(below);
    let start = tokio::time::Instant::now();
    let answer = outer
        .oneshot(http::Request::post("/").body(Full::from(CALL)).unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(sent.load(Ordering::SeqCst), 1);
}

/// `max_elapsed`: "A request that a layer below the retry layer keeps (a recorder, a
/// dead-letter queue) and sends through the stack again is a new call once its first
/// call's deadline has passed", also when a recorder below the codec keeps the HTTP
/// request of a call under `max_elapsed(ZERO)` (whose first attempt goes down with its
/// deadline already come) and sends it through an HTTP-level layer 10 s later: that
/// layer retries it as a call of its own, not cut at the old deadline.
#[tokio::test(start_paused = true)]
async fn an_http_request_kept_below_the_codec_and_sent_later_is_a_new_call() {
    use std::sync::Mutex;
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    use tower_jsonrpc_retry::jsonrpc::Request;
    let kept: Arc<Mutex<Vec<http::Request<Full<Bytes>>>>> = Arc::default();
    let keep = Arc::clone(&kept);
    let recorder = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        keep.lock().unwrap().push(req);
        let answer = http::Response::new(Full::new(Bytes::from_static(ANSWER)));
        std::future::ready(Ok::<_, std::io::Error>(answer))
    });
    let limited =
        || RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10))).codes([-32005]);
    let codec = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap()).layer(recorder);
    let first = JsonRpcRetryLayer::new(limited().max_elapsed(Duration::ZERO))
        .layer(codec)
        .oneshot(Request::new("sum", serde_json::json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(first.result(), Some(&serde_json::json!(3)));
    tokio::time::sleep(Duration::from_secs(10)).await;

    let replay = kept.lock().unwrap().pop().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&sent);
    let server = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let limited: &[u8] =
            br#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}"#;
        let body = if count.fetch_add(1, Ordering::SeqCst) < 2 {
            limited
        } else {
            ANSWER
        };
        let answer = http::Response::new(Full::new(Bytes::from_static(body)));
        std::future::ready(Ok::<_, std::io::Error>(answer))
    });
    let answer = JsonRpcRetryLayer::http::<Full<Bytes>>(limited())
        .layer(server)
        .oneshot(replay)
        .await
        .unwrap();
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], ANSWER);
    assert_eq!(
        sent.load(Ordering::SeqCst),
        3,
        "two -32005s, then the answer"
    );
}
