//! The tower contracts around a call: time spent outside an attempt (reading the request
//! body at the HTTP level, waiting for readiness) counts against the call's deadline,
//! back-pressure reaches the layers above, retries without a wait still yield to the
//! executor, and a readiness error below the retry is decided on like any failed attempt.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{Recorder, TestBody, secs};
use http_body_util::Full;
use serde_json::json;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::{self, PeriodicBackoff};
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request, Response};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

/// An HTTP service that never answers, and counts the requests it got.
#[derive(Clone, Default)]
struct Hung {
    calls: Arc<AtomicUsize>,
}

impl<B: Send + 'static> Service<http::Request<B>> for Hung {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

/// A timeout, found by the layer (`Elapsed`) or by the codec (a timed-out attempt).
fn is_timeout(err: &BoxError) -> bool {
    err.is::<tower::timeout::error::Elapsed>()
        || err
            .downcast_ref::<tower_jsonrpc_retry::codec::Error>()
            .is_some_and(|e| e.is_timeout())
}

fn deadline_strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, secs(0.1)))
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(secs(1.0))
}

/// A call whose body arrives `after` this long, through the HTTP-level layer with a
/// 1 s deadline over a service that never answers: its error, how long it took, and how
/// many attempts reached the service.
async fn body_arriving_after(after: Duration) -> (BoxError, Duration, usize) {
    let hung = Hung::default();
    let svc = JsonRpcRetryLayer::http::<TestBody>(deadline_strategy()).layer(hung.clone());
    let start = Instant::now();
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::after(after, CALL.as_bytes()))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    (err, start.elapsed(), hung.calls.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn http_level_a_body_slower_than_the_deadline_ends_the_call_at_it() {
    let (err, elapsed, attempts) = body_arriving_after(secs(2.0)).await;
    assert!(is_timeout(&err), "{err}");
    assert_eq!(elapsed, secs(1.0));
    assert_eq!(attempts, 0, "nothing is sent");
}

#[tokio::test(start_paused = true)]
async fn http_level_a_body_that_ends_at_the_deadline_leaves_one_attempt_cut_at_once() {
    // As over the codec: an attempt that starts at its deadline is made, and cut.
    let (err, elapsed, attempts) = body_arriving_after(secs(1.0)).await;
    assert!(is_timeout(&err), "{err}");
    assert_eq!(elapsed, secs(1.0));
    assert_eq!(attempts, 1, "one attempt");
}

/// A body that never ends is cut at the attempt's timeout (a whole one for the upload,
/// before the first attempt's) or at the deadline, whichever comes first.
#[tokio::test(start_paused = true)]
async fn http_level_a_body_that_never_ends_is_cut_at_the_attempt_timeout_or_the_deadline() {
    for (attempt_timeout, cut) in [(secs(0.5), secs(0.5)), (secs(2.0), secs(1.0))] {
        let svc = JsonRpcRetryLayer::http::<TestBody>(deadline_strategy())
            .attempt_timeout(attempt_timeout)
            .layer(Hung::default());
        let start = Instant::now();
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(TestBody::Stalled)
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert_eq!(start.elapsed(), cut, "attempt timeout {attempt_timeout:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn http_level_a_body_within_the_deadline_leaves_the_rest_to_the_attempts() {
    // The body takes 0.2 s of the 1 s; the attempts (0.5 s each, 0.1 s apart) get the
    // rest: one whole attempt, then one cut at the deadline.
    let hung = Hung::default();
    let svc = JsonRpcRetryLayer::http::<TestBody>(deadline_strategy())
        .attempt_timeout(secs(0.5))
        .layer(hung.clone());
    let start = Instant::now();
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::after(secs(0.2), CALL.as_bytes()))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert!(is_timeout(&err), "{err}");
    assert_eq!(start.elapsed(), secs(1.0));
    assert_eq!(hung.calls.load(Ordering::SeqCst), 2);
}

/// Whether `svc` can take a request now (what `load_shed` asks).
fn ready_now<S: Service<R>, R>(svc: &mut S) -> bool
where
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(result) => {
            result.unwrap();
            true
        }
        Poll::Pending => false,
    }
}

fn http_call() -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .body(Full::new(Bytes::from_static(CALL.as_bytes())))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn back_pressure_reaches_the_layers_above_at_both_levels() {
    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .concurrency_limit(1)
        .service(Hung::default());
    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::transient(),
        ))
        .concurrency_limit(1)
        .service(Hung::default());

    let mut first = json_rpc.clone();
    assert!(ready_now::<_, Request>(&mut first));
    let _busy = tokio::spawn(first.call(Request::new("sum", json!([1, 2])).with_id(1)));
    assert!(!ready_now::<_, Request>(&mut json_rpc.clone()));
    // So `load_shed` above the layer refuses the call at once.
    let shed = ServiceBuilder::new()
        .load_shed()
        .service(json_rpc.clone())
        .oneshot(Request::new("sum", json!([1, 2])).with_id(2))
        .await
        .unwrap_err();
    assert!(shed.is::<tower::load_shed::error::Overloaded>(), "{shed}");

    let mut first = http_level.clone();
    assert!(ready_now(&mut first));
    let _busy = tokio::spawn(first.call(http_call()));
    assert!(
        !ready_now(&mut http_level.clone()),
        "the only connection is taken: the HTTP level must not say it is ready"
    );
    let shed = ServiceBuilder::new()
        .load_shed()
        .service(http_level.clone())
        .oneshot(http_call())
        .await
        .unwrap_err();
    assert!(shed.is::<tower::load_shed::error::Overloaded>(), "{shed}");
}

/// The layer's response future, polled again after its output, stays pending: tower's
/// `Retry` future would poll the last attempt's future again, which panics for an
/// `async` block and gives a second output for a `Timeout` between the layers.
#[tokio::test(start_paused = true)]
async fn the_response_future_polled_after_its_output_is_pending() {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let answer = tower::service_fn(|req: Request| async move {
        Ok::<_, BoxError>(Response::success(req.id().cloned().unwrap(), json!(3)))
    });
    let mut svc = JsonRpcRetryLayer::new(RetryStrategy::transient()).layer(answer);
    let ready = ServiceExt::<Request>::ready(&mut svc).await.unwrap();
    let mut call = Box::pin(ready.call(Request::new("sum", json!([])).with_id(1)));
    assert_eq!(call.as_mut().await.unwrap().result(), Some(&json!(3)));
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        call.as_mut().poll(&mut cx).is_pending()
    }));
    assert!(matches!(again, Ok(true)), "over an async block: {again:?}");

    let server = FlakyServer::start().await.unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
        .timeout(secs(1.0))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let ready = ServiceExt::<BatchRequest>::ready(&mut svc).await.unwrap();
    let batch = BatchRequest::new(vec![Request::new("sum", json!([1])).with_id(1)]);
    let mut call = Box::pin(ready.call(batch));
    assert!(call.as_mut().await.is_ok());
    tokio::time::sleep(secs(2.0)).await;
    let again = call.as_mut().poll(&mut cx);
    assert!(again.is_pending(), "over a Timeout: {again:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_without_a_wait_still_yield_to_the_executor() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let inner = tower::service_fn(move |_: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err::<Response, BoxError>("refused at once".into()) }
    });
    let strategy = RetryStrategy::new(backoff::from_iter(std::iter::repeat_n(
        Duration::ZERO,
        1_000,
    )))
    .retry_if(|_| true);
    let svc = JsonRpcRetryLayer::new(strategy).layer(inner);
    let mut call = std::pin::pin!(svc.oneshot(Request::new("sum", json!([])).with_id(1)));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(call.as_mut().poll(&mut cx).is_pending());
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "one attempt per poll");
    assert!(call.as_mut().poll(&mut cx).is_pending());
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let err = call.await.unwrap_err();
    assert_eq!(err.to_string(), "refused at once");
    assert_eq!(attempts.load(Ordering::SeqCst), 1_001);
}

#[tokio::test(start_paused = true)]
async fn a_readiness_error_below_the_retry_is_decided_on_and_keeps_a_batchs_answers() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::ok(), Step::error(2001)]);
    let recorder = Recorder::default();
    let strategy =
        recorder.attach(RetryStrategy::new(PeriodicBackoff::new(1, secs(1.0))).codes([2001]));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        // A circuit breaker between the retry and the codec, open at the second check.
        .layer_fn(fails_at(1, Arc::default()))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("sum", json!([1, 2])).with_id(2),
    ]);
    // The retry of call 2 meets the open breaker: the batch still comes back with
    // every call's latest answer, as after any failed re-send.
    let resp = svc.oneshot(batch).await.unwrap();
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(recorder.count(), 1);
    let items = resp.items();
    assert_eq!(items.len(), 2);
    assert_eq!(items.first().and_then(|r| r.result()), Some(&json!(3)));
    assert_eq!(
        items.get(1).and_then(|r| r.error()).map(|e| e.code()),
        Some(2001)
    );
}

/// A server whose `sum` fails once with 2001 and whose `hog` answers after 100 s, and a
/// strategy that retries 2001 10 ms apart under a 1 s deadline.
async fn held_up() -> (FlakyServer, RetryStrategy) {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(2001)]);
    server.script("hog", [Step::ok().after(secs(100.0))]);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.01)))
        .codes([2001])
        .max_elapsed(secs(1.0));
    (server, strategy)
}

/// A `hog` call with no retries and no deadline, sent through `svc` in a task of its own.
fn hog<S>(svc: &S) -> tokio::task::JoinHandle<Result<Response, S::Error>>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
{
    let mut hog = Request::new("hog", json!([])).with_id(2);
    hog.extensions_mut().insert(RetryStrategy::none());
    tokio::spawn(svc.clone().oneshot(hog))
}

#[tokio::test(start_paused = true)]
async fn a_retry_waiting_for_readiness_ends_at_the_deadline() {
    // Call 1 fails with 2001; while it waits 10 ms to retry, a call with no deadline of
    // its own takes the only connection for 100 s.
    let (server, strategy) = held_up().await;
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .concurrency_limit(1)
        .service(common::http());
    let start = Instant::now();
    let call = tokio::spawn(
        svc.clone()
            .oneshot(Request::new("sum", json!([1, 2])).with_id(1)),
    );
    while server.calls("sum") == 0 {
        tokio::task::yield_now().await;
    }
    let _hog = hog(&svc);

    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), secs(1.0));
    assert_eq!(server.calls("sum"), 1);
}

/// A `Buffer` between the layer and the codec (for a layer that is not `Clone`, as
/// the crate docs advise) is ready while its queue has room, and the codec sees the
/// deadline only once the buffer's worker hands it the attempt: a retry held in the
/// queue behind a rate limit, or the first attempt behind a concurrency limit another
/// call holds, still ends the call at its deadline (the layer's cut, a millisecond
/// after it).
#[tokio::test(start_paused = true)]
async fn an_attempt_held_in_a_buffer_ends_at_the_deadline() {
    use tower::buffer::BufferLayer;
    let (server, strategy) = held_up().await;
    // A retry behind a rate limit of one request in 10 s.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy.clone()))
        .layer(BufferLayer::<Request>::new(8))
        .rate_limit(1, secs(10.0))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let start = Instant::now();
    let err = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(1.001), "{err}");
    let codec = tower_jsonrpc_retry::retry::error_chain(&*err)
        .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::codec::Error>())
        .expect("the codec's timeout");
    assert!(codec.is_timeout(), "{err}");
    let gave_up = codec.gave_up().expect("the give-up is recorded");
    assert_eq!(
        gave_up.reason(),
        tower_jsonrpc_retry::GiveUpReason::Deadline
    );
    assert_eq!(gave_up.retries(), 1, "{err}");
    assert_eq!(server.calls("sum"), 1);

    // The first attempt behind a concurrency limit that a call of 100 s holds.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(BufferLayer::<Request>::new(8))
        .concurrency_limit(1)
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let _hog = hog(&svc);
    while server.calls("hog") == 0 {
        tokio::task::yield_now().await;
    }
    let start = Instant::now();
    let err = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(3))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(1.001), "{err}");
    assert_eq!(server.calls("sum"), 1, "{err}");
}

/// Over a service whose answer another task fills (a connection's reader task, as an
/// actor-style client has), an answer that comes after the deadline but before the
/// layer's cut, a millisecond after it, is the answer: the same timer tick wakes both
/// tasks, and the cut gives way once for the other to run.
#[tokio::test(start_paused = true)]
async fn an_answer_another_task_gives_just_before_the_cut_is_the_answer() {
    let start = Instant::now();
    let inner = tower::service_fn(move |_: Request| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + secs(1.0005)).await;
            drop(tx.send(Response::success(1, json!(3))));
        });
        async move { rx.await.map_err(BoxError::from) }
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.01)))
        .codes([2001])
        .max_elapsed(secs(1.0));
    let resp = JsonRpcRetryLayer::new(strategy)
        .layer(inner)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await;
    assert_eq!(resp.unwrap().result(), Some(&json!(3)));
    assert_eq!(start.elapsed(), secs(1.001));
}

/// The typed client's futures own what they need: spawnable over a stack that is `Send`
/// but not `Sync` (tower's `BoxCloneService`), calls and batches alike.
#[tokio::test(start_paused = true)]
async fn client_calls_over_a_boxed_stack_can_be_spawned() {
    use tower::util::BoxCloneService;
    use tower_jsonrpc_retry::Client;
    use tower_jsonrpc_retry::jsonrpc::BatchResponse;

    /// Both request types, erased: what a user stores in a struct.
    #[derive(Clone)]
    struct Erased {
        single: BoxCloneService<Request, Response, BoxError>,
        batch: BoxCloneService<BatchRequest, BatchResponse, BoxError>,
    }
    impl Service<Request> for Erased {
        type Response = Response;
        type Error = BoxError;
        type Future = <BoxCloneService<Request, Response, BoxError> as Service<Request>>::Future;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.single.poll_ready(cx)
        }
        fn call(&mut self, req: Request) -> Self::Future {
            self.single.call(req)
        }
    }
    impl Service<BatchRequest> for Erased {
        type Response = BatchResponse;
        type Error = BoxError;
        type Future = <BoxCloneService<BatchRequest, BatchResponse, BoxError> as Service<
            BatchRequest,
        >>::Future;
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            self.batch.poll_ready(cx)
        }
        fn call(&mut self, req: BatchRequest) -> Self::Future {
            self.batch.call(req)
        }
    }

    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(2001)]);
    let stack = || {
        ServiceBuilder::new()
            .map_err(BoxError::from)
            .layer(JsonRpcRetryLayer::new(
                RetryStrategy::new(PeriodicBackoff::new(2, secs(0.1))).codes([2001]),
            ))
            .layer(JsonRpcCodecLayer::new(server.uri()))
            .service(common::http())
    };
    let client = Client::new(Erased {
        single: BoxCloneService::new(stack()),
        batch: BoxCloneService::new(stack()),
    });
    let c = client.clone();
    let sum: i64 = tokio::spawn(async move { c.call("sum", (1, 2)).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 2);
    let c = client.clone();
    let results = tokio::spawn(async move {
        let mut batch = c.batch();
        let item = batch.call::<i64>("sum", (2, 3));
        batch.send().await.map(|mut r| r.take(item))
    });
    assert_eq!(results.await.unwrap().unwrap().unwrap(), 5);
    let c = client.clone();
    tokio::spawn(async move { c.notify("log", ("x",)).await })
        .await
        .unwrap()
        .unwrap();
}

/// A boxing layer below the HTTP-level layer, its error turned back into a
/// `std::error::Error` as the layer's docs say: its timeouts are still timeouts.
#[tokio::test(start_paused = true)]
async fn http_level_over_a_boxing_timeout_layer_mapped_to_io_errors() {
    let hung = Hung::default();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::new(PeriodicBackoff::new(2, secs(0.1))).retry_on(ErrorClass::Timeout),
        ))
        .map_err(std::io::Error::other)
        .timeout(secs(1.0))
        .service(hung.clone());
    let start = Instant::now();
    let err = svc.oneshot(http_call()).await.unwrap_err();
    // The last attempt's error, as the inner service gave it.
    let io = err
        .downcast_ref::<std::io::Error>()
        .expect("the inner io::Error");
    assert!(
        io.get_ref()
            .is_some_and(|e| e.is::<tower::timeout::error::Elapsed>()),
        "{io}"
    );
    assert_eq!(hung.calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), secs(3.2));
}

/// The futures of `Client::send` and `request(..).send()` borrow nothing: they outlive the
/// client.
#[tokio::test(start_paused = true)]
async fn client_futures_that_borrow_nothing_outlive_the_client() {
    let inner = tower::service_fn(|req: Request| async move {
        Ok::<_, BoxError>(Response::success(req.id().cloned().unwrap(), json!(3)))
    });
    let client = tower_jsonrpc_retry::Client::new(inner);
    let by_builder = client.request("sum").params((1, 2)).send::<i64>();
    let by_send = client.send(Request::new("sum", json!([1, 2])).with_id(9));
    drop(client);
    assert_eq!(by_builder.await.unwrap(), 3);
    assert_eq!(by_send.await.unwrap().result(), Some(&json!(3)));
}

/// Like tower's own wrappers, both levels hand back what they wrap, and the layers have
/// a default (the `transient()` preset).
#[test]
fn services_hand_back_what_they_wrap_and_layers_have_a_default() {
    let hung = Hung::default();
    let mut http_level =
        tower_jsonrpc_retry::retry::HttpRetryLayer::<Full<Bytes>>::new(RetryStrategy::transient())
            .layer(hung.clone());
    assert!(Arc::ptr_eq(&http_level.get_ref().calls, &hung.calls));
    assert!(Arc::ptr_eq(&http_level.get_mut().calls, &hung.calls));
    assert!(Arc::ptr_eq(&http_level.into_inner().calls, &hung.calls));

    let layer = JsonRpcRetryLayer::default();
    assert_eq!(
        format!("{:?}", layer.strategy()),
        format!("{:?}", RetryStrategy::transient())
    );
    let http_layer = tower_jsonrpc_retry::retry::HttpRetryLayer::<Full<Bytes>>::default();
    assert_eq!(
        format!("{:?}", http_layer.strategy()),
        format!("{:?}", RetryStrategy::transient())
    );
    let policy = tower_jsonrpc_retry::JsonRpcRetryPolicy::default();
    assert!(policy.strategy().can_retry());
    // And the strategy given, when one is.
    let none = format!("{:?}", RetryStrategy::none());
    assert_ne!(none, format!("{:?}", RetryStrategy::transient()));
    assert_eq!(
        format!(
            "{:?}",
            JsonRpcRetryLayer::new(RetryStrategy::none()).strategy()
        ),
        none
    );
    let http_layer = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none());
    assert_eq!(format!("{:?}", http_layer.strategy()), none);
}

/// Ready for one call, then never again: the retry waits for readiness until the call's
/// deadline ends the wait.
struct ReadyOnce<E> {
    calls: Arc<AtomicUsize>,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<E> Clone for ReadyOnce<E> {
    fn clone(&self) -> Self {
        Self {
            calls: Arc::clone(&self.calls),
            error: std::marker::PhantomData,
        }
    }
}

impl<E> Service<Request> for ReadyOnce<E> {
    type Response = Response;
    type Error = E;
    type Future = std::future::Ready<Result<Response, E>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        if self.calls.load(Ordering::SeqCst) == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let error = tower_jsonrpc_retry::jsonrpc::ErrorObject::new(2001, "busy");
        std::future::ready(Ok(Response::failure(req.id().cloned().unwrap(), error)))
    }
}

/// Calls once over a [`ReadyOnce`] failing with 2001, deadline 1 s: the error, the time
/// taken and the sends. Bounded at 100 s, so a wait the deadline does not end fails
/// instead of hanging.
async fn wait_for_readiness_past_the_deadline<E>() -> (E, Duration, usize)
where
    E: tower_jsonrpc_retry::InspectError + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.01)))
        .codes([2001])
        .max_elapsed(secs(1.0));
    let svc = JsonRpcRetryLayer::new(strategy).layer(ReadyOnce::<E> {
        calls: Arc::clone(&calls),
        error: std::marker::PhantomData,
    });
    let start = Instant::now();
    let call = svc.oneshot(Request::new("sum", json!([1, 2])).with_id(1));
    let Ok(Err(err)) = tokio::time::timeout(secs(100.0), call).await else {
        panic!("the wait for readiness did not end at the deadline");
    };
    (err, start.elapsed(), calls.load(Ordering::SeqCst))
}

/// `BoxError` and `io::Error` give a timeout for the deadline, as `codec::Error` does
/// (`InspectError::deadline_error`): a retry waiting for readiness ends at it. Each is
/// the codec's timeout, tower's `Elapsed` in its chain, marked unsent: the give-up it
/// records does not say the last attempt may have run, as nothing was sent.
#[tokio::test(start_paused = true)]
async fn a_retry_waiting_for_readiness_ends_at_the_deadline_over_boxed_and_io_errors() {
    use tower_jsonrpc_retry::retry::error_chain;
    let unsent = |err: &(dyn std::error::Error + 'static)| {
        assert!(
            error_chain(err).any(|e| e.is::<tower::timeout::error::Elapsed>()),
            "{err}: no Elapsed in the chain"
        );
        let codec = error_chain(err)
            .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::codec::Error>())
            .expect("the codec's timeout");
        assert!(codec.is_timeout(), "{err}");
        let gave_up = codec.gave_up().expect("the give-up is recorded");
        assert!(!gave_up.last_attempt_unanswered(), "{err}");
    };
    let (err, elapsed, calls) = wait_for_readiness_past_the_deadline::<BoxError>().await;
    unsent(&*err);
    assert_eq!((elapsed, calls), (secs(1.0), 1));

    let (err, elapsed, calls) = wait_for_readiness_past_the_deadline::<std::io::Error>().await;
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    unsent(&err);
    assert_eq!((elapsed, calls), (secs(1.0), 1));

    let (err, elapsed, calls) =
        wait_for_readiness_past_the_deadline::<tower_jsonrpc_retry::codec::Error>().await;
    unsent(&err);
    assert_eq!((elapsed, calls), (secs(1.0), 1));
}

/// An HTTP service whose `n`-th readiness check (counted over all its clones, from 0)
/// fails, and which holds tower's contract to the letter, as tower's `SpawnReady` does:
/// an instance whose `poll_ready` failed is to be let go, never polled again.
struct FailsAt<S> {
    inner: S,
    polls: Arc<AtomicUsize>,
    fail_at: usize,
    failed: bool,
}

impl<S: Clone> Clone for FailsAt<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            polls: Arc::clone(&self.polls),
            fail_at: self.fail_at,
            failed: false,
        }
    }
}

impl<S, R> Service<R> for FailsAt<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        assert!(!self.failed, "polled again after its readiness failed");
        if self.polls.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            self.failed = true;
            return Poll::Ready(Err(std::io::Error::other("circuit open")));
        }
        self.inner.poll_ready(cx).map_err(std::io::Error::other)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(std::io::Error::other) })
    }
}

/// A layer of [`FailsAt`]s failing the `fail_at`-th readiness check, counted in `polls`.
fn fails_at<S>(fail_at: usize, polls: Arc<AtomicUsize>) -> impl Fn(S) -> FailsAt<S> + Clone {
    move |inner| FailsAt {
        inner,
        polls: Arc::clone(&polls),
        fail_at,
        failed: false,
    }
}

/// Retries answers with status 503 and failed readiness checks, a second apart.
fn on_503_or_anything() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
        .retry_if(|_| true)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
}

/// A retry whose readiness failed lets that instance go: it holds what it reserved (the
/// `ConcurrencyLimit` permit above it) and may not be polled again. Call A is answered
/// 503 at 0 s; its retry at 1 s meets the readiness error; its next retry, at 2 s, goes
/// through a fresh clone and is answered. Call B, at 1.1 s, finds the only slot free.
#[tokio::test(start_paused = true)]
async fn a_retry_whose_readiness_failed_lets_that_instance_go() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(503)]);
    let strategy = on_503_or_anything();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .concurrency_limit(1)
        .layer_fn(fails_at(1, Arc::default()))
        .service(common::http());
    let start = Instant::now();
    let a = svc
        .clone()
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1));
    let a = tokio::spawn(async move { (a.await.unwrap(), start.elapsed()) });
    tokio::time::sleep(secs(1.1)).await;
    let b = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(2))
        .await
        .unwrap();
    assert_eq!(b.result(), Some(&json!(3)));
    assert!(
        start.elapsed() < secs(1.2),
        "B waited for A's backoff: {:?}",
        start.elapsed()
    );
    let (a, a_took) = a.await.unwrap();
    assert_eq!(a.result(), Some(&json!(3)));
    assert_eq!(a_took, secs(2.0));
    assert_eq!(server.calls("sum"), 3);
}

/// The same at the HTTP level, whose attempts go through the same retry machinery.
#[tokio::test(start_paused = true)]
async fn http_level_a_retry_whose_readiness_failed_lets_that_instance_go() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(503)]);
    let strategy = on_503_or_anything();
    let polls = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
        .concurrency_limit(1)
        .layer_fn(fails_at(FAIL_AT, Arc::clone(&polls)))
        .service(common::http());
    let post = |id: u64| {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":{id}}}"#);
        http::Request::post(server.uri())
            .body(Full::from(body))
            .unwrap()
    };
    let start = Instant::now();
    let a = svc.clone().oneshot(post(1));
    let a = tokio::spawn(async move { (a.await.unwrap(), start.elapsed()) });
    tokio::time::sleep(secs(0.5)).await;
    // A's first attempt made three readiness checks (the layer's, and the attempt's
    // below it): the next is its retry's, at 1 s, which fails.
    assert_eq!(polls.load(Ordering::SeqCst), FAIL_AT);
    tokio::time::sleep(secs(0.6)).await;
    let b = svc.oneshot(post(2)).await.unwrap();
    assert_eq!(b.status(), 200);
    assert!(
        start.elapsed() < secs(1.2),
        "B waited for A's backoff: {:?}",
        start.elapsed()
    );
    let (a, a_took) = a.await.unwrap();
    assert_eq!(a.status(), 200);
    assert_eq!(a_took, secs(2.0));
    assert_eq!(server.calls("sum"), 3);
}

/// The readiness check of call A's retry, in the test above.
const FAIL_AT: usize = 3;

/// A stack whose first readiness check fails, under a `ConcurrencyLimit(1)`, retrying
/// that failure once a second later.
fn failing_first(
    server: &FlakyServer,
) -> impl Service<
    Request,
    Response = Response,
    Error = tower_jsonrpc_retry::codec::Error,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0))).retry_if(|_| true);
    ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .concurrency_limit(1)
        .layer_fn(fails_at(0, Arc::default()))
        .service(common::http())
}

/// A first attempt's readiness error lets that instance go too, where the caller's
/// instance lives on after the call: in a `Buffer`'s worker, the permit it held kept the
/// call's own retry waiting for ever.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_whose_readiness_failed_lets_that_instance_go_under_a_buffer() {
    let server = FlakyServer::start().await.unwrap();
    let buffered = tower::buffer::Buffer::<Request, _>::new(failing_first(&server), 8);
    // The handle kept keeps the worker, and the instance it holds, alive.
    let call = buffered
        .clone()
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1));
    let resp = tokio::time::timeout(secs(30.0), call).await;
    let resp = resp.expect("the retry waited for a permit held by the failed instance");
    assert_eq!(resp.unwrap().result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 1);
    drop(buffered);
}

/// And with `ready().call()` on one instance: the call's retry is not kept waiting, and
/// the next `ready()` polls a fresh instance, not the one that failed.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_whose_readiness_failed_lets_that_instance_go_on_ready_call() {
    let server = FlakyServer::start().await.unwrap();
    let mut svc = failing_first(&server);
    let start = Instant::now();
    let a = ServiceExt::<Request>::ready(&mut svc)
        .await
        .unwrap()
        .call(Request::new("sum", json!([1, 2])).with_id(1));
    let a = tokio::spawn(async move { (a.await, start.elapsed()) });
    let b = ServiceExt::<Request>::ready(&mut svc)
        .await
        .unwrap()
        .call(Request::new("sum", json!([1, 2])).with_id(2))
        .await;
    assert_eq!(b.unwrap().result(), Some(&json!(3)));
    let (a, took) = a.await.unwrap();
    assert_eq!(a.unwrap().result(), Some(&json!(3)));
    assert_eq!(took, secs(1.0));
    assert_eq!(server.calls("sum"), 2);
}

/// An in-memory HTTP service behind one `ConcurrencyLimit` slot, answering `3` to id 1
/// (for the first call) and then `2001` busy to id 1 once, counting what it was sent.
fn one_slot(
    hits: &Arc<AtomicUsize>,
) -> tower::limit::ConcurrencyLimit<
    impl Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<Full<Bytes>>,
        Error = std::io::Error,
        Future: Send,
    > + Clone
    + Send
    + 'static,
> {
    let hits = Arc::clone(hits);
    let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let body: &'static [u8] = match hits.fetch_add(1, Ordering::SeqCst) {
            1 => br#"{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1}"#,
            _ => br#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        };
        async move { Ok(http::Response::new(Full::new(Bytes::from_static(body)))) }
    });
    tower::limit::ConcurrencyLimit::new(inner, 1)
}

/// What the codec refuses unsent.
enum Refused {
    Call(Request),
    Batch(BatchRequest),
}

/// Every message the codec refuses unsent lets go the instance made ready for it, as a
/// readiness error does. Kept (as `ready().call()` on a service kept for later keeps
/// it), that instance held the only slot of the `ConcurrencyLimit` below the codec, and
/// another call through the same limit waited for it as long as the instance lived.
#[tokio::test(start_paused = true)]
async fn a_message_refused_unsent_holds_no_slot_below_the_codec() {
    let sum = |id: i64| Request::new("sum", json!([1, 2])).with_id(id);
    let cases = [
        (
            "scalar params",
            "http://127.0.0.1:1/",
            Refused::Call(Request::new("sum", json!(5)).with_id(1)),
        ),
        (
            "a port out of range",
            "http://127.0.0.1:85450/",
            Refused::Call(sum(1)),
        ),
        ("no host", "http://:80/", Refused::Call(sum(1))),
        (
            "an empty batch",
            "http://127.0.0.1:1/",
            Refused::Batch(BatchRequest::new(vec![])),
        ),
        (
            "a batch call's scalar params",
            "http://127.0.0.1:1/",
            Refused::Batch(BatchRequest::new(vec![
                sum(1),
                Request::new("sum", json!(5)).with_id(2),
            ])),
        ),
        (
            "a batch's repeated id",
            "http://127.0.0.1:1/",
            Refused::Batch(BatchRequest::new(vec![sum(1), sum(1)])),
        ),
    ];
    for (case, uri, refused) in cases {
        let hits = Arc::new(AtomicUsize::new(0));
        let limited = one_slot(&hits);
        let stack = |uri: &str| {
            ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(RetryStrategy::default()))
                .layer(JsonRpcCodecLayer::new(uri.parse().unwrap()))
                .service(limited.clone())
        };
        let mut kept = stack(uri);
        let err = match refused {
            Refused::Call(call) => ServiceExt::<Request>::ready(&mut kept)
                .await
                .unwrap()
                .call(call)
                .await
                .map(drop),
            Refused::Batch(batch) => ServiceExt::<BatchRequest>::ready(&mut kept)
                .await
                .unwrap()
                .call(batch)
                .await
                .map(drop),
        };
        let err = err.expect_err(case);
        assert!(err.is_invalid_request(), "{case}: {err:?}");
        let other = tokio::time::timeout(secs(5.0), stack("http://127.0.0.1:1/").oneshot(sum(1)));
        let other = other
            .await
            .unwrap_or_else(|_| panic!("{case}: the slot is still held"));
        assert_eq!(other.unwrap().result(), Some(&json!(3)), "{case}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "{case}: only the other call sent"
        );
        drop(kept);
    }
}

/// Where it mattered most: under a `Buffer`, whose worker keeps its instance until the
/// next call comes. Call A is answered `2001` at 0 s and waits a second for its retry;
/// at 0.5 s call B, whose params the codec refuses, passes through the worker, which
/// reserved the only slot for it. A's retry, on a clone of its own, then waited for that
/// slot until some later call reached the worker; it goes at 1 s now.
#[tokio::test(start_paused = true)]
async fn a_call_refused_unsent_under_a_buffer_leaves_another_calls_retry_its_slot() {
    let hits = Arc::new(AtomicUsize::new(0));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0))).codes([2001]);
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .service(one_slot(&hits));
    let buffered = tower::buffer::Buffer::<Request, _>::new(stack, 8);
    // One call answered first, so that A's first answer is the busy one.
    let warm = buffered
        .clone()
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1));
    assert_eq!(warm.await.unwrap().result(), Some(&json!(3)));
    let start = Instant::now();
    let a = tokio::spawn(
        buffered
            .clone()
            .oneshot(Request::new("sum", json!([1, 2])).with_id(1)),
    );
    tokio::time::sleep(secs(0.5)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "A's first attempt, answered busy"
    );
    let b = buffered
        .clone()
        .oneshot(Request::new("sum", json!(5)).with_id(2))
        .await;
    assert!(b.is_err(), "B refused unsent");
    let a = tokio::time::timeout(secs(30.0), a).await;
    let a = a.expect("A's retry waited for the slot the worker's instance held");
    assert_eq!(a.unwrap().unwrap().result(), Some(&json!(3)));
    assert_eq!(start.elapsed(), secs(1.0));
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    drop(buffered);
}

/// Over a service of the caller's own (no codec between), the retry layer lets an
/// instance whose readiness failed go itself: the next retry polls a fresh clone.
#[tokio::test(start_paused = true)]
async fn a_retry_over_a_service_of_ones_own_lets_a_failed_instance_go() {
    use tower_jsonrpc_retry::jsonrpc::ErrorObject;

    let answered = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&answered);
    let inner = tower::service_fn(move |req: Request| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let id = req.id().cloned().unwrap();
        async move {
            Ok::<_, std::io::Error>(if n == 0 {
                Response::failure(id, ErrorObject::new(2001, "busy"))
            } else {
                Response::success(id, json!(3))
            })
        }
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
        .codes([2001])
        .retry_if(|_| true);
    // The first check passes; the retry's fails; the next retry's must be a fresh one's.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer_fn(fails_at(1, Arc::default()))
        .service(inner);
    let resp = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(answered.load(Ordering::SeqCst), 2);
}

/// What each attempt of the shed-retry tests reached the server at, from the start.
type SentAt = Arc<std::sync::Mutex<Vec<Duration>>>;

/// A server that answers every call with 3, `hog` after 1.5 s, and notes when each
/// request reached it.
fn noting(
    sent: SentAt,
    start: Instant,
) -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let sent = Arc::clone(&sent);
        async move {
            sent.lock().unwrap().push(start.elapsed());
            let body = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let call: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if call["method"] == "hog" {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let answer = json!({"jsonrpc": "2.0", "result": 3, "id": call["id"]});
            Ok(http::Response::new(Full::from(answer.to_string())))
        }
    })
}

/// Retries what `LoadShed` refuses, a second apart.
fn shed_retried() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
        .retry_on_error::<tower::load_shed::error::Overloaded>()
}

/// `.load_shed().concurrency_limit(1)` below the layer: `hog` holds the limit from 0 to
/// 1.5 s; `a` is shed at 0 s and 1 s and sent at 2 s; `b`, at 1.7 s, finds nothing in
/// flight and goes through. Before, the retry of `a` shed at 1 s left the limit waiting
/// in line for a permit through its wait, and the limit, free at 1.5 s, gave the permit
/// to it: `b` was shed though nothing was in flight. At both levels.
#[tokio::test(start_paused = true)]
async fn a_shed_retry_holds_no_permit_through_its_wait() {
    let call = |method: &str, id: i64| {
        let body = json!({"jsonrpc": "2.0", "method": method, "id": id});
        http::Request::post("http://127.0.0.1:1/")
            .body(Full::from(body.to_string()))
            .unwrap()
    };
    // The HTTP level.
    let (sent, start) = (SentAt::default(), Instant::now());
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(shed_retried()))
        .map_err(std::io::Error::other)
        .load_shed()
        .concurrency_limit(1)
        .service(noting(Arc::clone(&sent), start));
    let mut hog = call("hog", 9);
    hog.extensions_mut().insert(RetryStrategy::none());
    let hog = tokio::spawn(svc.clone().oneshot(hog));
    tokio::task::yield_now().await;
    let a = tokio::spawn(svc.clone().oneshot(call("a", 1)));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let mut b = call("b", 2);
    b.extensions_mut().insert(RetryStrategy::none());
    let b = svc.clone().oneshot(b).await.map(|r| r.status());
    assert_eq!(
        b.map_err(|e| e.to_string()),
        Ok(http::StatusCode::OK),
        "HTTP level: {:?}",
        sent.lock().unwrap()
    );
    assert!(a.await.unwrap().is_ok() && hog.await.unwrap().is_ok());
    assert_eq!(*sent.lock().unwrap(), [secs(0.0), secs(1.7), secs(2.0)]);

    // The JSON-RPC level, through the typed client.
    let (sent, start) = (SentAt::default(), Instant::now());
    let stack = shed_below_the_codec(Arc::clone(&sent), start);
    let client = tower_jsonrpc_retry::Client::new(stack);
    let hog = client
        .request("hog")
        .retry(RetryStrategy::none())
        .send::<i64>();
    let hog = tokio::spawn(hog);
    tokio::task::yield_now().await;
    let a = tokio::spawn(client.call::<i64>("a", ()));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let b = client
        .request("b")
        .retry(RetryStrategy::none())
        .send::<i64>()
        .await;
    assert_eq!(
        b.map_err(|e| format!("{e:#}")),
        Ok(3),
        "JSON-RPC level: {:?}",
        sent.lock().unwrap()
    );
    assert_eq!(a.await.unwrap().unwrap(), 3);
    assert_eq!(hog.await.unwrap().unwrap(), 3);
    assert_eq!(*sent.lock().unwrap(), [secs(0.0), secs(1.7), secs(2.0)]);
}

/// The JSON-RPC stack of the tests below: the retry layer retrying what `LoadShed`
/// refuses, over the codec, over `.load_shed().concurrency_limit(1)`.
fn shed_below_the_codec(
    sent: SentAt,
    start: Instant,
) -> impl Service<Request, Response = Response, Error = tower_jsonrpc_retry::codec::Error, Future: Send>
+ Service<
    tower_jsonrpc_retry::jsonrpc::BatchRequest,
    Response = tower_jsonrpc_retry::jsonrpc::BatchResponse,
    Error = tower_jsonrpc_retry::codec::Error,
    Future: Send,
> + Clone
+ Send
+ Sync
+ 'static {
    ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(shed_retried()))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .map_err(std::io::Error::other)
        .load_shed()
        .concurrency_limit(1)
        .service(noting(sent, start))
}

/// `hog`, which holds the limit from 0 to 1.5 s, without retries.
fn hog_call() -> Request {
    let mut hog = Request::new("hog", json!([])).with_id(9);
    hog.extensions_mut().insert(RetryStrategy::none());
    hog
}

/// A first attempt that `LoadShed` refuses leaves nothing waiting in line for the
/// limit: `a`, shed at 0 s by the instance a `Buffer`'s worker keeps, and at 1 s, is
/// sent at 2 s, when nothing is in flight. Before, that instance stayed queued for a
/// permit, the limit gave it the permit at 1.5 s, and the worker polled it again only
/// at its next request: every retry of `a` was shed.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_shed_under_a_buffer_leaves_no_queued_permit() {
    let (sent, start) = (SentAt::default(), Instant::now());
    let stack = shed_below_the_codec(Arc::clone(&sent), start);
    let buffered = tower::buffer::Buffer::<Request, _>::new(stack, 8);
    let hog = tokio::spawn(buffered.clone().oneshot(hog_call()));
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let a = buffered
        .clone()
        .oneshot(Request::new("a", json!([])).with_id(1));
    let a = a.await.map_err(|e| e.to_string());
    assert_eq!(a.map(|r| r.result().cloned()), Ok(Some(json!(3))));
    assert!(hog.await.unwrap().is_ok());
    assert_eq!(*sent.lock().unwrap(), [secs(0.0), secs(2.0)]);
}

/// The same on one instance the caller keeps and calls with `ready().call()`.
#[tokio::test(start_paused = true)]
async fn a_first_attempt_shed_on_a_kept_instance_leaves_no_queued_permit() {
    let (sent, start) = (SentAt::default(), Instant::now());
    let mut kept = shed_below_the_codec(Arc::clone(&sent), start);
    let hog = ServiceExt::<Request>::ready(&mut kept)
        .await
        .unwrap()
        .call(hog_call());
    let hog = tokio::spawn(hog);
    tokio::task::yield_now().await;
    let a = ServiceExt::<Request>::ready(&mut kept)
        .await
        .unwrap()
        .call(Request::new("a", json!([])).with_id(1));
    let a = a.await.map_err(|e| e.to_string());
    assert_eq!(a.map(|r| r.result().cloned()), Ok(Some(json!(3))));
    assert!(hog.await.unwrap().is_ok());
    assert_eq!(*sent.lock().unwrap(), [secs(0.0), secs(2.0)]);
}
