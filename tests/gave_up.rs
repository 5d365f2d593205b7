//! How a call's retries ended, as its caller finds it on the failure ([`GaveUp`]): for
//! each reason, through the typed client, on a batch, on a boxed error, at the HTTP
//! level, and nowhere on a success. (`tests/levels.rs` checks it against the hook in
//! every case of its table, at both levels.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use tower::retry::budget::TpsBudget;
use tower::timeout::TimeoutLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    BoxError, Client, ErrorClass, GaveUp, GiveUpReason, JsonRpcRetryLayer, RetryStrategy,
};

use common::secs;

fn periodic(retries: usize, interval: f64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(retries, secs(interval)))
}

fn ended(gave_up: Option<GaveUp>) -> Option<(u32, GiveUpReason)> {
    gave_up.map(|g| (g.retries(), g.reason()))
}

async fn client(server: &FlakyServer, strategy: RetryStrategy) -> Client {
    Client::builder(server.uri())
        .attempt_timeout(Duration::from_secs(1))
        .retry(strategy)
        .build()
}

/// Each reason, through the typed client: on the server's answer (`RpcError`) and on
/// the stack's error, whose message says it.
#[tokio::test(start_paused = true)]
async fn each_reason_reaches_the_caller() {
    let server = FlakyServer::start().await.unwrap();

    // Out of delays, on an error answer.
    let c = client(&server, periodic(2, 1.0).codes([2001])).await;
    server.script("a", std::iter::repeat_n(Step::error(2001), 3));
    let err = c.call::<i64>("a", ()).await.unwrap_err();
    assert_eq!(err.rpc().map(|e| e.code()), Some(2001));
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
    assert_eq!(server.calls("a"), 3);

    // A code nothing retries, after a retry.
    server.script("b", [Step::error(2001), Step::error(-32602)]);
    let err = c.call::<i64>("b", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::NotRetryable)));

    // The deadline: the third wait would end past it.
    let c = client(
        &server,
        periodic(5, 1.0).codes([2001]).max_elapsed(secs(2.5)),
    )
    .await;
    server.script("c", std::iter::repeat_n(Step::error(2001), 5));
    let err = c.call::<i64>("c", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Deadline)));
    assert_eq!(server.calls("c"), 3);

    // The budget: empty, it refuses the first retry.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let strategy = periodic(3, 1.0)
        .retry_on(ErrorClass::Timeout)
        .budget(budget);
    let c = client(&server, strategy).await;
    server.script("d", [Step::timeout()]);
    let err = c.call::<i64>("d", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::Budget)));
    assert_eq!(server.calls("d"), 1);
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "JSON-RPC exchange timed out; gave up at the first attempt: budget exhausted"
    );

    // A status error after retries: the message says how many.
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let c = client(&server, periodic(1, 1.0).retry_on(status503)).await;
    server.script("e", std::iter::repeat_n(Step::status(503), 2));
    let err = c.call::<i64>("e", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "HTTP status 503 Service Unavailable; gave up after 1 retry: attempts exhausted"
    );
}

/// A failure nothing retries, at the first attempt, is recorded, but its message says
/// nothing more than the failure: there is no news in it.
#[tokio::test(start_paused = true)]
async fn a_failure_nothing_retries_keeps_its_message() {
    let server = FlakyServer::start().await.unwrap();
    let c = client(&server, periodic(3, 1.0).codes([2001])).await;
    server.script("m", [Step::status(502)]);
    let err = c.call::<i64>("m", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "HTTP status 502 Bad Gateway"
    );
}

/// A success records nothing, whether it took retries or not; nor does a failure under
/// a strategy that never retries (the layer made no decision).
#[tokio::test(start_paused = true)]
async fn nothing_is_recorded_without_a_give_up() {
    let server = FlakyServer::start().await.unwrap();
    let stack = |strategy| common::stack(&server, strategy);
    server.script("sum", [Step::error(2001)]);
    let resp = stack(periodic(3, 1.0).codes([2001]))
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2);
    assert!(resp.extensions().get::<GaveUp>().is_none());

    server.script("sum", [Step::error(2001)]);
    let resp = stack(RetryStrategy::none())
        .oneshot(Request::new("sum", json!([1, 2])).with_id(2))
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert!(resp.extensions().get::<GaveUp>().is_none());
}

/// A batch's answer records the batch's retries; the answer to one call of it does not
/// (a call settled at the first exchange was not retried with the others).
#[tokio::test(start_paused = true)]
async fn a_batch_records_its_own_retries_not_each_calls() {
    let server = FlakyServer::start().await.unwrap();
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    server.script("wrong", [Step::error(-32602)]);
    let batch = BatchRequest::new(vec![
        Request::new("busy", json!([])).with_id(1),
        Request::new("wrong", json!([])).with_id(2),
    ]);
    let resp = common::stack(&server, periodic(2, 1.0).codes([2001]))
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(server.calls("busy"), 3);
    assert_eq!(server.calls("wrong"), 1);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );
    assert!(
        resp.items()
            .iter()
            .all(|r| r.extensions().get::<GaveUp>().is_none())
    );

    // Through the client: each call's error has none.
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    server.script("wrong", [Step::error(-32602)]);
    let c = client(&server, periodic(2, 1.0).codes([2001])).await;
    let mut batch = c.batch();
    let busy = batch.call::<i64>("busy", ());
    let wrong = batch.call::<i64>("wrong", ());
    let mut results = batch.send().await.unwrap();
    for err in [
        results.take(busy).unwrap_err(),
        results.take(wrong).unwrap_err(),
    ] {
        assert!(err.rpc().is_some());
        assert_eq!(err.gave_up(), None);
    }

    // A batch that fails as a whole: its error has the batch's.
    server.script("busy", std::iter::repeat_n(Step::status(503), 3));
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let c = client(&server, periodic(2, 1.0).retry_on(status503)).await;
    let mut batch = c.batch();
    let _ = batch.call::<i64>("busy", ());
    let err = batch.send().await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
}

/// A `codec::Error` boxed by a layer between the retry layer and the codec keeps the
/// record (`BoxError`'s `record_give_up`); tower's own `Elapsed` cannot hold it.
#[tokio::test(start_paused = true)]
async fn a_boxed_codec_error_keeps_it() {
    let server = FlakyServer::start().await.unwrap();
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let strategy = periodic(1, 1.0)
        .retry_on(status503)
        .retry_on(ErrorClass::Timeout);
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(TimeoutLayer::new(secs(5.0)))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());

    server.script("a", std::iter::repeat_n(Step::status(503), 2));
    let req = Request::new("a", json!([])).with_id(1);
    let err: BoxError = stack.clone().oneshot(req).await.unwrap_err();
    assert!(err.is::<tower_jsonrpc_retry::codec::Error>());
    assert_eq!(
        ended(GaveUp::find(&*err)),
        Some((1, GiveUpReason::Exhausted))
    );

    server.script("b", std::iter::repeat_n(Step::ok().after(secs(10.0)), 2));
    let req = Request::new("b", json!([])).with_id(2);
    let err: BoxError = stack.oneshot(req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>());
    assert_eq!(server.calls("b"), 2);
    assert_eq!(GaveUp::find(&*err), None);
}

/// At the HTTP level: in the extensions of the answer handed back (a JSON-RPC error, a
/// bare status), on the layer's own error (a timeout), and on no success.
#[tokio::test(start_paused = true)]
async fn the_http_level_records_it_on_the_answer() {
    let server = FlakyServer::start().await.unwrap();
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let strategy = periodic(2, 1.0)
        .codes([2001])
        .retry_on(status503)
        .retry_on(ErrorClass::Timeout);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).attempt_timeout(secs(5.0)))
        .service(common::http());
    let post = |method: &str| {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": [1, 2], "id": 1});
        http::Request::post(server.uri())
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };

    server.script("a", std::iter::repeat_n(Step::error(2001), 3));
    let resp = svc.clone().oneshot(post("a")).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );

    server.script("b", [Step::status(503), Step::error(-32602)]);
    let resp = svc.clone().oneshot(post("b")).await.unwrap();
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((1, GiveUpReason::NotRetryable))
    );

    server.script("c", std::iter::repeat_n(Step::status(503), 3));
    let resp = svc.clone().oneshot(post("c")).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );

    server.script("d", std::iter::repeat_n(Step::timeout(), 3));
    let err: BoxError = svc.clone().oneshot(post("d")).await.unwrap_err();
    assert_eq!(server.calls("d"), 3);
    assert_eq!(
        ended(GaveUp::find(&*err)),
        Some((2, GiveUpReason::Exhausted))
    );
    assert!(
        err.to_string()
            .ends_with("; gave up after 2 retries: attempts exhausted")
    );

    server.script("sum", [Step::error(2001)]);
    let resp = svc.oneshot(post("sum")).await.unwrap();
    assert_eq!(server.calls("sum"), 2);
    assert!(resp.extensions().get::<GaveUp>().is_none());
}
