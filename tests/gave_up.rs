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
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    BoxError, Client, ErrorClass, GaveUp, GiveUpReason, JsonRpcRetryLayer, RetryStrategy,
};

use common::{ended, ended_in, secs};

fn periodic(retries: usize, interval: f64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(retries, secs(interval)))
}

fn client(server: &FlakyServer, strategy: RetryStrategy) -> Client {
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
    let c = client(&server, periodic(2, 1.0).codes([2001]));
    server.script("a", std::iter::repeat_n(Step::error(2001), 3));
    let err = c.call::<i64>("a", ()).await.unwrap_err();
    assert_eq!(err.rpc().map(|e| e.code()), Some(2001));
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
    assert_eq!(server.calls("a"), 3);
    assert_eq!(
        err.to_string(),
        "JSON-RPC error 2001: Scripted error; gave up after 2 retries: attempts exhausted"
    );

    // A code nothing retries, after a retry.
    server.script("b", [Step::error(2001), Step::error(-32602)]);
    let err = c.call::<i64>("b", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::NotRetryable)));

    // The deadline: the third wait would end past it.
    let c = client(
        &server,
        periodic(5, 1.0).codes([2001]).max_elapsed(secs(2.5)),
    );
    server.script("c", std::iter::repeat_n(Step::error(2001), 5));
    let err = c.call::<i64>("c", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Deadline)));
    assert_eq!(server.calls("c"), 3);

    // The budget: empty, it refuses the first retry.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let strategy = periodic(3, 1.0)
        .retry_on(ErrorClass::Timeout)
        .budget(budget);
    let c = client(&server, strategy);
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
    let c = client(&server, periodic(1, 1.0).retry_on(status503));
    server.script("e", std::iter::repeat_n(Step::status(503), 2));
    let err = c.call::<i64>("e", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "HTTP status 503 Service Unavailable; gave up after 1 retry: attempts exhausted"
    );

    // A backoff with no delays counts as able to retry (`can_retry` draws none): a
    // listed code ends the call at once, out of attempts.
    let strategy = periodic(0, 1.0).codes([2001]);
    assert!(strategy.can_retry());
    server.script("f", [Step::error(2001)]);
    let err = client(&server, strategy)
        .call::<i64>("f", ())
        .await
        .unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::Exhausted)));
    assert_eq!(server.calls("f"), 1);
}

/// README, "In code": a transport failure's chain starts with what failed and how the
/// retries ended, under `ClientError`'s own message, which names the variant only.
#[tokio::test(start_paused = true)]
async fn a_refused_connection_reads_as_one_in_the_chain() {
    let (_held, refusing) = common::refusing();
    let uri = format!("http://{refusing}/").parse().unwrap();
    let strategy = periodic(2, 1.0).retry_on(ErrorClass::Connect);
    let client = Client::builder(uri).retry(strategy).build();
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(err.to_string(), "the service stack failed the call");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "HTTP request failed: could not connect; gave up after 2 retries: attempts exhausted"
    );
}

/// A failure nothing retries, at the first attempt, is recorded, but its message says
/// nothing more than the failure: there is no news in it.
#[tokio::test(start_paused = true)]
async fn a_failure_nothing_retries_keeps_its_message() {
    let server = FlakyServer::start().await.unwrap();
    let c = client(&server, periodic(3, 1.0).codes([2001]));
    server.script("m", [Step::status(502)]);
    let err = c.call::<i64>("m", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "HTTP status 502 Bad Gateway"
    );
    server.script("m", [Step::error(-32602)]);
    let err = c.call::<i64>("m", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(err.to_string(), "JSON-RPC error -32602: Invalid params");
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

/// A batch's answer records the batch's retries, and each failed call its own: one
/// that went out in the last exchange went through all of them; one settled earlier on
/// an answer not retried, through those made before it.
#[tokio::test(start_paused = true)]
async fn a_batch_records_its_retries_on_the_calls_that_went_through_them() {
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
    assert_eq!(ended_in(&resp, 1), Some((2, GiveUpReason::Exhausted)));
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotRetryable)));

    // Through the client, the same.
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    server.script("wrong", [Step::error(-32602)]);
    let c = client(&server, periodic(2, 1.0).codes([2001]));
    let mut batch = c.batch();
    let busy = batch.call::<i64>("busy", ());
    let wrong = batch.call::<i64>("wrong", ());
    let mut results = batch.send().await.unwrap();
    let busy = results.take(busy).unwrap_err();
    assert_eq!(ended(busy.gave_up()), Some((2, GiveUpReason::Exhausted)));
    let wrong = results.take(wrong).unwrap_err();
    assert_eq!(wrong.rpc().map(|e| e.code()), Some(-32602));
    assert_eq!(
        ended(wrong.gave_up()),
        Some((0, GiveUpReason::NotRetryable))
    );
    assert_eq!(wrong.to_string(), "JSON-RPC error -32602: Invalid params");

    // A call that went out last but whose own answer then was not retried ended on
    // that, after the batch's retries; the other call ran out of them.
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    server.script(
        "flaky",
        [Step::error(2001), Step::error(2001), Step::error(-32602)],
    );
    let mut batch = c.batch();
    let busy = batch.call::<i64>("busy", ());
    let flaky = batch.call::<i64>("flaky", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!((server.calls("busy"), server.calls("flaky")), (9, 3));
    let busy = results.take(busy).unwrap_err();
    assert_eq!(ended(busy.gave_up()), Some((2, GiveUpReason::Exhausted)));
    let flaky = results.take(flaky).unwrap_err();
    assert_eq!(flaky.rpc().map(|e| e.code()), Some(-32602));
    assert_eq!(
        ended(flaky.gave_up()),
        Some((2, GiveUpReason::NotRetryable))
    );

    // A batch refused as a whole with one error object, each time: every call went
    // through every retry.
    server.script(
        "a",
        std::iter::repeat_n(Step::status_with_error(429, -32005), 3),
    );
    let c = client(&server, periodic(2, 1.0).codes([-32005]));
    let mut batch = c.batch();
    let a = batch.call::<i64>("a", ());
    let b = batch.call::<i64>("b", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(server.calls("a"), 3);
    for call in [results.take(a).unwrap_err(), results.take(b).unwrap_err()] {
        assert_eq!(call.rpc().map(|e| e.code()), Some(-32005));
        assert_eq!(call.status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(ended(call.gave_up()), Some((2, GiveUpReason::Exhausted)));
    }

    // A batch that fails as a whole: its error has the batch's.
    server.script("busy", std::iter::repeat_n(Step::status(503), 3));
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let c = client(&server, periodic(2, 1.0).retry_on(status503));
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

/// A record a service below the codec put on its answer (an HTTP-level retry layer
/// does) is kept on the codec's error whatever the answer's flaw: an id mismatch lost it.
#[tokio::test]
async fn a_record_from_below_stays_on_every_decode_failure() {
    let answers = [
        "not JSON",
        r#"{"jsonrpc": "2.0", "id": 99, "result": 3}"#,
        r#"{"jsonrpc": "1.0", "id": 1, "result": 3}"#,
    ];
    for body in answers {
        let http = tower::service_fn(move |_: http::Request<Full<Bytes>>| async move {
            let mut answer = http::Response::new(body.to_owned());
            answer
                .extensions_mut()
                .insert(GaveUp::new(2, GiveUpReason::Exhausted));
            Ok::<_, std::convert::Infallible>(answer)
        });
        let codec = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse().unwrap()).layer(http);
        let call = Request::new("sum", json!([1, 2])).with_id(1);
        let err = codec.oneshot(call).await.unwrap_err();
        assert!(err.is_decode(), "{body}: {err:?}");
        assert_eq!(
            ended(err.gave_up()),
            Some((2, GiveUpReason::Exhausted)),
            "{body}: {err}"
        );
    }
}

/// `GaveUp::find` looks past a `codec::Error` that holds no record: a codec over the
/// HTTP-level layer, whose own error wraps the one the layer gave up on.
#[tokio::test(start_paused = true)]
async fn find_looks_past_a_codec_error_without_a_record() {
    let server = FlakyServer::start().await.unwrap();
    let strategy = periodic(2, 1.0).retry_on(ErrorClass::Timeout);
    let stack = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).attempt_timeout(secs(5.0)))
        .service(common::http());
    server.script("a", std::iter::repeat_n(Step::timeout(), 3));
    let err = Client::new(stack).call::<i64>("a", ()).await.unwrap_err();
    assert_eq!(server.calls("a"), 3);
    let outer = err.transport().unwrap();
    assert_eq!(outer.gave_up(), None);
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
}

/// Under two retry layers, the outer layer's record when it made retries; when it made
/// none and gave up at once on a failure it does not retry, the inner layer's.
#[tokio::test(start_paused = true)]
async fn under_two_layers_the_record_with_news_wins() {
    let server = FlakyServer::start().await.unwrap();
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let stacked = |outer: RetryStrategy, inner: RetryStrategy| {
        ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(outer))
            .layer(JsonRpcRetryLayer::new(inner))
            .layer(JsonRpcCodecLayer::new(server.uri()))
            .service(common::http())
    };
    let sum = |id: i64| Request::new("sum", json!([1, 2])).with_id(id);

    // The outer layer retries only code 2001; the inner one ran out on 503s.
    server.script("sum", std::iter::repeat_n(Step::status(503), 3));
    let svc = stacked(
        periodic(2, 1.0).codes([2001]),
        periodic(2, 1.0).retry_on(status503),
    );
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
    assert!(
        err.to_string()
            .ends_with("; gave up after 2 retries: attempts exhausted")
    );

    // The same on an error answer.
    server.script("sum", std::iter::repeat_n(Step::error(2002), 3));
    let svc = stacked(
        periodic(2, 1.0).codes([2001]),
        periodic(2, 1.0).codes([2002]),
    );
    let resp = svc.oneshot(sum(2)).await.unwrap();
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );

    // The outer layer retried too: its record. Each of its 2 attempts took the inner
    // layer's 2.
    server.script("sum", std::iter::repeat_n(Step::status(503), 4));
    let svc = stacked(
        periodic(1, 1.0).retry_on(status503),
        periodic(1, 1.0).retry_on(status503),
    );
    let err = svc.oneshot(sum(3)).await.unwrap_err();
    assert_eq!(server.calls("sum"), 3 + 3 + 4);
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::Exhausted)));
}

/// A failure a rule retries, on a method marked non-idempotent, ends at once as
/// `NotIdempotent`, and the message says why; one no rule retries stays `NotRetryable`.
/// In a batch each call's record says its own, and the batch's names the held-back
/// call. Under two layers, an outer layer that holds the call back keeps the inner
/// layer's record: it is no limit.
#[tokio::test(start_paused = true)]
async fn a_non_idempotent_call_held_back_says_so() {
    let server = FlakyServer::start().await.unwrap();
    let strategy = periodic(2, 1.0)
        .codes([-32005])
        .retry_on(ErrorClass::Timeout)
        .non_idempotent(["send"]);
    let c = client(&server, strategy.clone());

    // An answer a rule retries, and a timeout: held back, with the reason in the message.
    server.script("send", [Step::error(-32005)]);
    let err = c.call::<String>("send", ()).await.unwrap_err();
    assert_eq!(server.calls("send"), 1);
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(
        err.to_string(),
        "JSON-RPC error -32005: Server error; gave up at the first attempt: \
         non-idempotent method"
    );
    server.script("send", [Step::timeout()]);
    let err = c.call::<String>("send", ()).await.unwrap_err();
    assert_eq!(server.calls("send"), 2);
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "JSON-RPC exchange timed out; gave up at the first attempt: non-idempotent method"
    );
    // A code no rule retries: the idempotency rule had nothing to hold back.
    server.script("send", [Step::error(-32602)]);
    let err = c.call::<String>("send", ()).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(err.to_string(), "JSON-RPC error -32602: Invalid params");

    // A batch: the idempotent call is retried, the other settled at once, held back.
    server.script("send", [Step::error(-32005)]);
    server.script("sum", [Step::error(-32005)]);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("send", json!([])).with_id(2),
    ]);
    let resp = common::stack(&server, strategy.clone())
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!((server.calls("sum"), server.calls("send")), (2, 4));
    assert_eq!(ended_in(&resp, 1), None, "a success");
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotIdempotent)));
    // Nothing retried: the batch's record says the call was held back, and the hook
    // names that call, not the first that failed.
    server.script("wrong", [Step::error(-32602)]);
    server.script("send", [Step::error(-32005)]);
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hear = Arc::clone(&heard);
    let hooked = strategy.clone().on_give_up(move |e| {
        hear.lock()
            .unwrap()
            .push((e.method().to_owned(), e.reason()));
    });
    let batch = BatchRequest::new(vec![
        Request::new("wrong", json!([])).with_id(1),
        Request::new("send", json!([])).with_id(2),
    ]);
    let resp = common::stack(&server, hooked).oneshot(batch).await.unwrap();
    assert_eq!(ended_in(&resp, 1), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(server.calls("send"), 5);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::NotIdempotent))
    );
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(
        *heard.lock().unwrap(),
        [("send".to_owned(), GiveUpReason::NotIdempotent)]
    );

    // Two layers: the inner one retries `send` until out of delays; the outer one, which
    // holds it back, keeps that record.
    server.script("send", std::iter::repeat_n(Step::error(-32005), 3));
    let strategy_again = strategy.clone();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([-32005])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let resp = svc
        .oneshot(Request::new("send", json!([])).with_id(3))
        .await
        .unwrap();
    assert_eq!(server.calls("send"), 8);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );

    // The inner layer does not list the code, and gave up at once: the outer layer's
    // reason is the more telling.
    server.script("send", [Step::error(-32005)]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy_again))
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([2001])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let resp = svc
        .oneshot(Request::new("send", json!([])).with_id(4))
        .await
        .unwrap();
    assert_eq!(server.calls("send"), 9);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::NotIdempotent))
    );
}

/// A batch's report names the call the reason is about: a call held back, and
/// `NotIdempotent`, when nothing else ended the retries, whether the batch ends after a
/// partial retry or at once, and, when the failure is the whole batch's (a timeout, a
/// refusal), the first non-idempotent call rather than the first call.
#[tokio::test(start_paused = true)]
async fn a_batch_names_the_call_held_back() {
    type Heard = Arc<std::sync::Mutex<Vec<(String, GiveUpReason)>>>;
    let server = FlakyServer::start().await.unwrap();
    let heard: Heard = Arc::default();
    let hear = Arc::clone(&heard);
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let strategy = periodic(2, 1.0)
        .codes([-32005])
        .retry_on(ErrorClass::Timeout)
        .retry_on(status503)
        .non_idempotent(["send"])
        .on_give_up(move |e| {
            hear.lock()
                .unwrap()
                .push((e.method().to_owned(), e.reason()));
        });
    let batch = |first: &'static str, second: &'static str| {
        BatchRequest::new(vec![
            Request::new(first, json!([1, 2])).with_id(1),
            Request::new(second, json!([])).with_id(2),
        ])
    };
    let take = |heard: &Heard| std::mem::take(&mut *heard.lock().unwrap());

    // `sum` is retried and answered; `send`, held back at the first exchange, is the
    // failure the batch ends on.
    server.script("sum", [Step::error(-32005)]);
    server.script("send", [Step::error(-32005)]);
    let resp = common::stack(&server, strategy.clone())
        .oneshot(batch("sum", "send"))
        .await
        .unwrap();
    assert_eq!((server.calls("sum"), server.calls("send")), (2, 1));
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((1, GiveUpReason::NotIdempotent))
    );
    assert_eq!(take(&heard), [("send".into(), GiveUpReason::NotIdempotent)]);

    // The whole batch timed out: held back for `send`, which the report names.
    server.script("sum", [Step::timeout()]);
    let err = common::stack(&server, strategy.clone())
        .oneshot(batch("sum", "send"))
        .await
        .unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(take(&heard), [("send".into(), GiveUpReason::NotIdempotent)]);

    // A batch of notifications refused as a whole, the second non-idempotent.
    server.script("note", [Step::status_with_error(503, -32005)]);
    let notes = BatchRequest::new(vec![
        Request::new("note", json!([])),
        Request::new("send", json!([])),
    ]);
    let _ = common::stack(&server, strategy.clone())
        .oneshot(notes)
        .await;
    assert_eq!(server.calls("note"), 1);
    assert_eq!(take(&heard), [("send".into(), GiveUpReason::NotIdempotent)]);

    // A call rather than a notification is named, when both are non-idempotent.
    let strategy_pay = strategy.clone().non_idempotent(["pay"]);
    server.script("sum", [Step::timeout()]);
    let mixed = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("send", json!([])),
        Request::new("pay", json!([])).with_id(2),
    ]);
    let _ = common::stack(&server, strategy_pay).oneshot(mixed).await;
    assert_eq!(take(&heard), [("pay".into(), GiveUpReason::NotIdempotent)]);

    // The re-send of `sum` fails in transport (an answer cut short, which no rule
    // retries): `send`, held back by the first exchange, is what the batch ends on;
    // `sum` keeps its earlier answer, unanswered since, with the retries' own end.
    server.script("sum", [Step::error(-32005), Step::malformed()]);
    server.script("send", [Step::error(-32005)]);
    let resp = common::stack(&server, strategy.clone())
        .oneshot(batch("sum", "send"))
        .await
        .unwrap();
    let whole = resp.extensions().get::<GaveUp>().copied();
    assert_eq!(ended(whole), Some((1, GiveUpReason::NotIdempotent)));
    assert_eq!(unanswered(whole), Some(true));
    assert_eq!(ended_in(&resp, 1), Some((1, GiveUpReason::NotRetryable)));
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(take(&heard), [("send".into(), GiveUpReason::NotIdempotent)]);

    // `send`'s answer is a success under a status a rule retries: held back after
    // `sum` is re-sent and answered.
    let both = r#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":2,"id":2}]"#;
    server.script("sum", [Step::raw(503, both)]);
    let resp = common::stack(&server, strategy)
        .oneshot(batch("sum", "send"))
        .await
        .unwrap();
    assert_eq!(ended_in(&resp, 1), None, "a success at the retry");
    assert_eq!(ended_in(&resp, 2), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((1, GiveUpReason::NotIdempotent))
    );
    assert_eq!(take(&heard), [("send".into(), GiveUpReason::NotIdempotent)]);
}

/// A success body under a status a rule retries is a failure: for a non-idempotent
/// method, held back and reported as such, at both levels.
#[tokio::test(start_paused = true)]
async fn a_success_under_a_retried_status_held_back_is_reported() {
    let server = FlakyServer::start().await.unwrap();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hear = Arc::clone(&heard);
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let strategy = periodic(2, 1.0)
        .retry_on(status503)
        .non_idempotent(["send"])
        .on_give_up(move |e| hear.lock().unwrap().push((e.retries(), e.reason())));
    let success = r#"{"jsonrpc":"2.0","result":1,"id":1}"#;

    server.script("send", [Step::raw(503, success)]);
    let resp = common::stack(&server, strategy.clone())
        .oneshot(Request::new("send", json!([])).with_id(1))
        .await
        .unwrap();
    assert_eq!(server.calls("send"), 1);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::NotIdempotent))
    );

    server.script("send", [Step::raw(503, success)]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy))
        .service(common::http());
    let body = r#"{"jsonrpc":"2.0","method":"send","params":[],"id":1}"#;
    let req = http::Request::post(server.uri())
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(server.calls("send"), 2);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::NotIdempotent))
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (0, GiveUpReason::NotIdempotent),
            (0, GiveUpReason::NotIdempotent)
        ]
    );
}

/// A record can be made by hand, for tests of the code that handles failures.
#[test]
fn a_record_made_by_hand() {
    let gave_up = GaveUp::new(0, GiveUpReason::Budget);
    assert_eq!(ended(Some(gave_up)), Some((0, GiveUpReason::Budget)));
    assert_eq!(
        gave_up.to_string(),
        "gave up at the first attempt: budget exhausted"
    );
    assert_eq!(
        GaveUp::new(3, GiveUpReason::Deadline).to_string(),
        "gave up after 3 retries: deadline"
    );
    assert!(!gave_up.last_attempt_unanswered());
    let unanswered = GaveUp::new(1, GiveUpReason::Exhausted).with_last_attempt_unanswered();
    assert!(unanswered.last_attempt_unanswered());
    assert_eq!(ended(Some(unanswered)), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(
        unanswered.to_string(),
        "gave up after 1 retry: attempts exhausted; \
         the last attempt got no answer, this one is from an earlier attempt"
    );
}

/// Whether a record says its call's last attempt went unanswered.
fn unanswered(gave_up: Option<GaveUp>) -> Option<bool> {
    gave_up.map(|g| g.last_attempt_unanswered())
}

/// A partly retried batch whose last re-send fails in transport: each call sent in it
/// keeps its earlier answer, and its record, like the whole batch's, says that its last
/// attempt went unanswered (the server may have run it). A call settled by an earlier
/// answer, and a batch whose last exchange was answered, have no such record.
#[tokio::test(start_paused = true)]
async fn a_batch_call_whose_last_attempt_went_unanswered_says_so() {
    let server = FlakyServer::start().await.unwrap();
    let batch = || {
        BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("busy", json!([])).with_id(2),
            Request::new("wrong", json!([])).with_id(3),
        ])
    };
    let record = |resp: &tower_jsonrpc_retry::jsonrpc::BatchResponse, i: usize| {
        resp.items()[i].extensions().get::<GaveUp>().copied()
    };

    // The re-send's connection breaks, which nothing retries.
    server.script("busy", [Step::error(2001), Step::drop_connection()]);
    server.script("wrong", [Step::error(-32602)]);
    let stack = common::stack(&server, periodic(2, 1.0).codes([2001]));
    let resp = stack.oneshot(batch()).await.unwrap();
    assert_eq!((server.calls("busy"), server.calls("wrong")), (2, 1));
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(record(&resp, 0), None, "a success");
    assert_eq!(resp.items()[1].error().map(|e| e.code()), Some(2001));
    assert_eq!(
        ended(record(&resp, 1)),
        Some((1, GiveUpReason::NotRetryable))
    );
    assert_eq!(unanswered(record(&resp, 1)), Some(true));
    assert_eq!(
        ended(record(&resp, 2)),
        Some((0, GiveUpReason::NotRetryable))
    );
    assert_eq!(
        unanswered(record(&resp, 2)),
        Some(false),
        "its answer is its last"
    );
    let whole = resp.extensions().get::<GaveUp>().copied();
    assert_eq!(ended(whole), Some((1, GiveUpReason::NotRetryable)));
    assert_eq!(unanswered(whole), Some(true));

    // The re-send times out, which is retried, but the backoff has no delay left.
    server.script("busy", [Step::error(2001), Step::timeout()]);
    let strategy = periodic(1, 1.0).codes([2001]).retry_on(ErrorClass::Timeout);
    let resp = common::stack(&server, strategy)
        .oneshot(batch())
        .await
        .unwrap();
    assert_eq!(ended(record(&resp, 1)), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(unanswered(record(&resp, 1)), Some(true));

    // Answered to the end: the record is the last attempt's.
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    let stack = common::stack(&server, periodic(2, 1.0).codes([2001]));
    let resp = stack.oneshot(batch()).await.unwrap();
    assert_eq!(ended(record(&resp, 1)), Some((2, GiveUpReason::Exhausted)));
    assert_eq!(unanswered(record(&resp, 1)), Some(false));
    assert_eq!(unanswered(resp.extensions().get().copied()), Some(false));

    // Through the client: the message says it.
    server.script("busy", [Step::error(2001), Step::truncated()]);
    let c = client(&server, periodic(2, 1.0).codes([2001]));
    let mut typed = c.batch();
    let sum = typed.call::<i64>("sum", (1, 2));
    let busy = typed.call::<i64>("busy", ());
    let mut results = typed.send().await.unwrap();
    assert_eq!(results.take(sum).unwrap(), 3);
    let busy = results.take(busy).unwrap_err();
    assert_eq!(unanswered(busy.gave_up()), Some(true));
    assert_eq!(
        busy.to_string(),
        "JSON-RPC error 2001: Scripted error; gave up after 1 retry: not retryable; \
         the last attempt got no answer, this one is from an earlier attempt"
    );

    // At the HTTP level, the answer's record.
    server.script("busy", [Step::error(2001), Step::drop_connection()]);
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(periodic(2, 1.0).codes([2001]))
        .attempt_timeout(secs(5.0));
    let svc = ServiceBuilder::new().layer(svc).service(common::http());
    let body = serde_json::to_vec(&batch()).unwrap();
    let req = http::Request::post(server.uri())
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    let whole = resp.extensions().get::<GaveUp>().copied();
    assert_eq!(ended(whole), Some((1, GiveUpReason::NotRetryable)));
    assert_eq!(unanswered(whole), Some(true));

    // Under a second retry layer that retries nothing of it: the inner layer's record.
    server.script("busy", [Step::error(2001), Step::drop_connection()]);
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([2002])))
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([2001])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let resp = stack.oneshot(batch()).await.unwrap();
    assert_eq!(
        ended(record(&resp, 1)),
        Some((1, GiveUpReason::NotRetryable))
    );
    assert_eq!(unanswered(record(&resp, 1)), Some(true));

    // Under a second retry layer that retries the call too: its record, still saying
    // that the answer is not the last attempt's.
    server.script(
        "busy",
        [
            Step::error(2001),
            Step::drop_connection(),
            Step::error(2001),
            Step::drop_connection(),
        ],
    );
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(periodic(1, 1.0).codes([2001])))
        .layer(JsonRpcRetryLayer::new(periodic(1, 1.0).codes([2001])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let calls = server.calls("busy");
    let resp = stack.oneshot(batch()).await.unwrap();
    assert_eq!(server.calls("busy") - calls, 4);
    assert_eq!(ended(record(&resp, 1)), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(unanswered(record(&resp, 1)), Some(true));
}

/// A call settled by a later exchange records the retries made before it; each call's
/// record matches what the server saw of it.
#[tokio::test(start_paused = true)]
async fn a_call_settled_later_records_the_retries_before_it() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "a",
        [Step::error(2001), Step::error(2001), Step::error(-32602)],
    );
    server.script("b", [Step::error(2001), Step::error(-32602)]);
    server.script("c", std::iter::repeat_n(Step::error(2001), 4));
    let batch = BatchRequest::new(
        ["a", "b", "c"]
            .into_iter()
            .zip(1..)
            .map(|(m, id)| Request::new(m, json!([])).with_id(id))
            .collect(),
    );
    let resp = common::stack(&server, periodic(3, 1.0).codes([2001]))
        .oneshot(batch)
        .await
        .unwrap();
    let calls = (server.calls("a"), server.calls("b"), server.calls("c"));
    assert_eq!(calls, (3, 2, 4));
    assert_eq!(ended_in(&resp, 1), Some((2, GiveUpReason::NotRetryable)));
    assert_eq!(ended_in(&resp, 2), Some((1, GiveUpReason::NotRetryable)));
    assert_eq!(ended_in(&resp, 3), Some((3, GiveUpReason::Exhausted)));
}

/// Two layers sharing a deadline: the inner one retries up to it, the outer one then
/// stops at its first attempt. The record keeps the retries the server saw.
#[tokio::test(start_paused = true)]
async fn two_layers_at_one_deadline_keep_the_inner_retries() {
    let server = FlakyServer::start().await.unwrap();
    server.script("m", std::iter::repeat_n(Step::error(2001), 3));
    let strategy = periodic(5, 1.0).codes([2001]).max_elapsed(secs(2.5));
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy.clone()))
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let err = Client::new(stack).call::<i64>("m", ()).await.unwrap_err();
    assert_eq!(server.calls("m"), 3);
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Deadline)));
    assert!(
        err.to_string()
            .ends_with("; gave up after 2 retries: deadline"),
        "{err}"
    );
}

/// Two layers over a batch: a call the inner layer retried and then settled keeps the
/// inner record; the outer layer, which retried nothing, does not say "0 retries".
#[tokio::test(start_paused = true)]
async fn two_layers_over_a_batch_keep_a_settled_calls_record() {
    let server = FlakyServer::start().await.unwrap();
    server.script("a", [Step::error(-32005), Step::error(-32602)]);
    server.script("b", std::iter::repeat_n(Step::error(-32005), 3));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([2001])))
        .layer(JsonRpcRetryLayer::new(periodic(2, 1.0).codes([-32005])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let batch = BatchRequest::new(vec![
        Request::new("a", json!([])).with_id(1),
        Request::new("b", json!([])).with_id(2),
    ]);
    let resp = svc.oneshot(batch).await.unwrap();
    assert_eq!((server.calls("a"), server.calls("b")), (2, 3));
    assert_eq!(ended_in(&resp, 1), Some((1, GiveUpReason::NotRetryable)));
    assert_eq!(ended_in(&resp, 2), Some((2, GiveUpReason::Exhausted)));
}

/// A codec over the HTTP-level layer reads the layer's record off the answers it hands
/// back (an error answer, a bare status), and so does a second HTTP-level layer.
#[tokio::test(start_paused = true)]
async fn the_codec_reads_the_record_of_an_http_level_layer_below() {
    let server = FlakyServer::start().await.unwrap();
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let strategy = periodic(2, 1.0).codes([2001]).retry_on(status503);
    let stack = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy.clone()))
        .service(common::http());
    let client = Client::new(stack);
    server.script("a", std::iter::repeat_n(Step::error(2001), 3));
    let err = client.call::<i64>("a", ()).await.unwrap_err();
    assert_eq!(server.calls("a"), 3);
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
    server.script("b", std::iter::repeat_n(Step::status(503), 3));
    let err = client.call::<i64>("b", ()).await.unwrap_err();
    assert_eq!(server.calls("b"), 3);
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));

    // Two HTTP-level layers; the outer one retries nothing of this. (Each needs an
    // error type that is a `std::error::Error` and takes hyper-util's.)
    use common::CallError;
    let outer = JsonRpcRetryLayer::http::<Full<Bytes>>(periodic(2, 1.0).codes([2002]));
    let svc = ServiceBuilder::new()
        .layer(outer.map_err(CallError))
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).map_err(CallError))
        .service(common::http());
    server.script("c", std::iter::repeat_n(Step::status(503), 3));
    let body = json!({"jsonrpc": "2.0", "method": "c", "params": [], "id": 1}).to_string();
    let req = http::Request::post(server.uri())
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(server.calls("c"), 3);
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((2, GiveUpReason::Exhausted))
    );
}

/// Under two retry layers, an outer layer whose empty budget refused its first retry
/// gives the budget as the reason, with the inner layer's retries (`GaveUp`: the outer
/// layer's reason if that is a limit).
#[tokio::test(start_paused = true)]
async fn an_outer_layers_empty_budget_is_the_reason_over_an_inner_layers_retries() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::error(2001), 3));
    let empty = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            periodic(2, 0.01).codes([2001]).budget(empty),
        ))
        .layer(JsonRpcRetryLayer::new(periodic(2, 0.01).codes([2001])))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>(),
        );
    let err = Client::new(svc)
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err();
    assert_eq!(server.calls("sum"), 3, "the inner layer's attempts alone");
    let gave_up = err.gave_up().expect("a record");
    assert_eq!(
        (gave_up.retries(), gave_up.reason()),
        (2, GiveUpReason::Budget)
    );
    assert!(
        err.to_string()
            .ends_with("; gave up after 2 retries: budget exhausted"),
        "{err}"
    );
}
