//! jsonrpsee's HTTP client with the HTTP-level retry layer in its middleware slot.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonrpsee::core::client::{BatchResponse, ClientT, Error as ClientError};
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::core::middleware::layer::RpcLogger;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::transport::{Error as TransportError, HttpBackend};
use jsonrpsee::http_client::{HttpBody, HttpClient, HttpClientBuilder, RpcService};
use jsonrpsee::rpc_params;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::retry::HttpRetry;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{ErrorClass, JsonRpcRetryLayer, RetryStrategy};

fn strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .codes([-32005])
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
}

type Retried = HttpClient<RpcLogger<RpcService<HttpRetry<HttpBackend, HttpBody, TransportError>>>>;

/// The HTTP-level layer straight on hyper-util's client, no jsonrpsee.
fn raw_http() -> HttpRetry<Client<HttpConnector, Full<Bytes>>, Full<Bytes>> {
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy()))
        .service(http)
}

/// One POST of `body` to `server` through [`raw_http`].
async fn raw_call(server: &FlakyServer, body: &str) -> http::Response<Full<Bytes>> {
    let req = http::Request::post(server.uri())
        .body(Full::from(body.to_owned()))
        .unwrap();
    raw_http().oneshot(req).await.unwrap()
}

/// The error jsonrpsee's transport holds as a stream error: what the layer's `map_err`
/// made, or the backend's own error handed on.
fn stream_error(err: &ClientError) -> &(dyn std::error::Error + Send + Sync + 'static) {
    match err {
        ClientError::Transport(e) => match e.downcast_ref::<TransportError>() {
            Some(TransportError::Http(HttpError::Stream(inner))) => inner.as_ref(),
            _ => panic!("{err:?}"),
        },
        _ => panic!("{err:?}"),
    }
}

fn client(server: &FlakyServer) -> Retried {
    client_with_request_timeout(server, Duration::from_secs(60))
}

/// The same, with jsonrpsee's own `request_timeout` over the whole call.
fn client_with_request_timeout(server: &FlakyServer, request_timeout: Duration) -> Retried {
    let layer = JsonRpcRetryLayer::http(strategy())
        .attempt_timeout(Duration::from_millis(500))
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    HttpClientBuilder::default()
        .request_timeout(request_timeout)
        .set_http_middleware(ServiceBuilder::new().layer(layer))
        .build(server.uri().to_string())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retryable_code_then_success() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005)]);
    let sum: i64 = client(&server)
        .request("sum", rpc_params![1, 2])
        .await
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 2);
}

/// jsonrpsee writes a notification without params as `"params": null` (its server
/// takes it): retried as a notification, not sent once as a body that is not JSON-RPC.
#[tokio::test(start_paused = true)]
async fn a_notification_without_params_is_retried() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("ping", |_| Ok(serde_json::Value::Null));
    server.script("ping", [Step::status(503)]);
    client(&server)
        .notification("ping", rpc_params![])
        .await
        .unwrap();
    assert_eq!(server.calls("ping"), 2);
    let bodies = server.bodies();
    assert!(
        bodies
            .iter()
            .all(|b| b.as_ref() == br#"{"jsonrpc":"2.0","method":"ping","params":null}"#),
        "{bodies:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn status_with_retry_after_then_success() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(503).retry_after("2")]);
    let start = Instant::now();
    let sum: i64 = client(&server)
        .request("sum", rpc_params![1, 2])
        .await
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn timeout_then_success() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::timeout()]);
    let start = Instant::now();
    let sum: i64 = client(&server)
        .request("sum", rpc_params![1, 2])
        .await
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn non_retryable_code_reaches_jsonrpsee_unchanged() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error_with(2002, "no such block", None)]);
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    match err {
        ClientError::Call(obj) => {
            assert_eq!(obj.code(), 2002);
            assert_eq!(obj.message(), "no such block");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn exhausted_status_reaches_jsonrpsee_as_a_rejection() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::status(503), 4));
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(server.calls("sum"), 4);
}

#[tokio::test(start_paused = true)]
async fn batch_retries_only_failed_items() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::ok(), Step::error(-32005)]);
    let mut batch = BatchRequestBuilder::new();
    batch.insert("sum", rpc_params![1, 2]).unwrap();
    batch.insert("sum", rpc_params![3, 4]).unwrap();
    let resp: BatchResponse<i64> = client(&server).batch_request(batch).await.unwrap();
    let values: Vec<i64> = resp.into_ok().unwrap().collect();
    assert_eq!(values, [3, 7]);
    let bodies = server.bodies_json();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[1].as_array().unwrap().len(),
        1,
        "only the failed item is re-sent"
    );
}

#[tokio::test(start_paused = true)]
async fn per_request_strategy_in_http_extensions() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005), Step::error(-32005)]);
    let svc = raw_http();
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7}"#;
    let mut req = http::Request::post(server.uri())
        .body(Full::from(body))
        .unwrap();
    req.extensions_mut().insert(RetryStrategy::none());
    let resp = svc.clone().oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["error"]["code"], -32005);
    assert_eq!(server.calls("sum"), 1, "none() in the extensions: no retry");

    let req = http::Request::post(server.uri())
        .body(Full::from(body))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"jsonrpc": "2.0", "result": 3, "id": 7})
    );
    assert_eq!(server.calls("sum"), 3);
}

/// jsonrpsee gives its requests no extensions of the caller's: a strategy for a method
/// is how its calls get rules of their own.
#[tokio::test(start_paused = true)]
async fn a_methods_strategy_governs_its_calls_inside_jsonrpsee() {
    let server = FlakyServer::start().await.unwrap();
    let strategy = strategy()
        .for_method("sum", RetryStrategy::none())
        .for_method(
            "echo",
            RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(5))).codes([2002]),
        );
    let layer =
        JsonRpcRetryLayer::http(strategy).map_err(|e| TransportError::Http(HttpError::Stream(e)));
    let client = HttpClientBuilder::default()
        .set_http_middleware(ServiceBuilder::new().layer(layer))
        .build(server.uri().to_string())
        .unwrap();

    server.script("sum", [Step::error(-32005)]);
    let err = client
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Call(obj) if obj.code() == -32005),
        "{err:?}"
    );
    assert_eq!(server.calls("sum"), 1, "never retried");

    server.script("echo", [Step::error(2002)]);
    let start = Instant::now();
    let echoed: Vec<i64> = client.request("echo", rpc_params![7]).await.unwrap();
    assert_eq!(echoed, [7]);
    assert_eq!(server.calls("echo"), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(5), "echo's own delay");
}

#[tokio::test(start_paused = true)]
async fn a_declared_content_length_stays_true_on_every_attempt() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005)]);
    let svc = raw_http();
    // Spaces a re-encoding would drop: every attempt sends these very bytes, so the
    // declared length stays true.
    let body = r#"{ "jsonrpc" : "2.0", "method" : "sum", "params" : [1, 2], "id" : 7 }"#;
    let req = http::Request::post(server.uri())
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Full::from(body))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["result"], 3);
    assert_eq!(server.calls("sum"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_is_not_json_rpc_is_sent_once_within_the_response_limit() {
    #[derive(Debug)]
    struct Never;
    impl std::fmt::Display for Never {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("never")
        }
    }
    impl std::error::Error for Never {}

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let inner = tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async {
            Ok::<_, Never>(http::Response::new(Full::new(Bytes::from(vec![
                b'x';
                5_000_000
            ]))))
        }
    });
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy()).response_limit(1024))
        .service(inner);
    let req = http::Request::new(Full::new(Bytes::from_static(b"not json")));
    let err = svc.oneshot(req).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 1024 bytes"
    );
    assert!(
        std::iter::successors(Some(&*err as &(dyn std::error::Error + 'static)), |e| e
            .source())
        .any(|e| e.is::<http_body_util::LengthLimitError>()),
        "{err:?}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_survives_on_a_json_rpc_answer() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [Step::status_with_error(429, 2002).retry_after("30")],
    );
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7}"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(
        resp.status(),
        429,
        "2002 is not retried: the answer as it came"
    );
    assert_eq!(resp.headers()[http::header::RETRY_AFTER], "30");
}

#[tokio::test(start_paused = true)]
async fn a_single_call_goes_through_byte_for_byte() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005)]);
    let body = "{\"id\": 9, \"method\": \"sum\", \"params\": [1, 2], \"jsonrpc\": \"2.0\"}";
    let resp = raw_call(&server, body).await;
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    let sent = server.bodies();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|b| b == body.as_bytes()),
        "every attempt sends the caller's bytes"
    );
    assert_eq!(
        answer, r#"{"id":9,"jsonrpc":"2.0","result":3}"#,
        "the server's bytes, as they came"
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_call_answer_keeps_the_servers_headers() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [
            Step::error(-32005).header("x-attempt", "first"),
            Step::ok().header("x-ratelimit-remaining", "41"),
        ],
    );
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":3}"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(
        headers["x-ratelimit-remaining"], "41",
        "the last answer's own headers"
    );
    assert_eq!(
        headers.get("x-attempt"),
        None,
        "nothing of an earlier attempt"
    );
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        headers[http::header::CONTENT_LENGTH],
        answer.len().to_string(),
        "the length still tells the body's"
    );
    assert_eq!(answer, r#"{"id":3,"jsonrpc":"2.0","result":3}"#);
}

/// A notification's 2xx answer comes back with its status and headers, and without its
/// body: so also without the headers that describe that body (its length, a digest of
/// it).
#[tokio::test(start_paused = true)]
async fn a_notification_answer_keeps_its_status_and_headers() {
    let server = FlakyServer::start().await.unwrap();
    let with_body = Step::raw(200, r#"{"jsonrpc":"2.0","result":null,"id":null}"#)
        .header("content-digest", "sha-256=:c2VydmVyJ3MgYm9keQ==:");
    for (step, status) in [(Step::ok(), 204), (with_body, 200)] {
        server.script("log", [step.header("x-request-id", "abc")]);
        let body = r#"{"jsonrpc":"2.0","method":"log","params":["note"]}"#;
        let resp = raw_call(&server, body).await;
        assert_eq!(resp.status(), status, "the server's own status");
        assert_eq!(resp.headers()["x-request-id"], "abc");
        assert_eq!(resp.headers().get(http::header::CONTENT_LENGTH), None);
        assert_eq!(resp.headers().get("content-digest"), None);
        let answer = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(answer.is_empty());
    }
    assert_eq!(server.calls("log"), 2);
}

/// An integer beyond 64 bits: serde_json's `Value` would turn it into a float.
const BIG: &str = "340282366920938463463374607431768211455";

#[tokio::test(start_paused = true)]
async fn a_batch_goes_and_comes_back_byte_for_byte() {
    let server = FlakyServer::start().await.unwrap();
    let answer = format!(r#"[{{"jsonrpc":"2.0","result":{BIG},"id":1}}]"#);
    server.script(
        "big",
        [Step::raw(200, answer.clone()).header("x-request-id", "abc")],
    );
    let body =
        r#"[{"jsonrpc":"2.0","method":"big","params":[123456789012345678901234567890],"id":1}]"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(server.bodies(), [Bytes::from_static(body.as_bytes())]);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-request-id"],
        "abc",
        "one exchange: as it came"
    );
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, answer);
}

#[tokio::test(start_paused = true)]
async fn a_partly_retried_batch_keeps_every_items_bytes() {
    let server = FlakyServer::start().await.unwrap();
    // The first exchange answers the big call and limits the other; only that one goes
    // again, as the caller wrote it, and the answer gathers both as the server wrote them.
    let first = format!(
        r#"[{{"jsonrpc":"2.0","result":{BIG},"id":1}},{{"jsonrpc":"2.0","error":{{"code":-32005,"message":"limited"}},"id":2}}]"#
    );
    server.script("big", [Step::raw(200, first)]);
    let item2 =
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2,123456789012345678901234567890],"id":2}"#;
    let body = format!(r#"[{{"jsonrpc":"2.0","method":"big","params":[],"id":1}}, {item2}]"#);
    let resp = raw_call(&server, &body).await;
    let sent = server.bodies();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1],
        format!("[{item2}]"),
        "the retry sends the item's own bytes"
    );
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let got = std::str::from_utf8(&got).unwrap();
    assert!(got.contains(&format!(r#""result":{BIG},"id":1"#)), "{got}");
    assert!(
        got.contains(r#""id":2"#) && !got.contains("-32005"),
        "{got}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_gathered_batch_answer_keeps_answers_no_call_took() {
    let server = FlakyServer::start().await.unwrap();
    let first = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
    let unread = r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"unread"},"id":null}"#;
    let second = format!(r#"[{{"jsonrpc":"2.0","result":7,"id":2}},{unread}]"#);
    server.script(
        "sum",
        [Step::raw(200, first), Step::ok(), Step::raw(200, second)],
    );
    assert_eq!(
        two_sums_in_two_exchanges(&server).await,
        two_sums_and_unread()
    );
}

/// Sends a batch of two `sum` calls (ids 1 and 2), checks that it took two exchanges,
/// and returns the answer the caller got.
async fn two_sums_in_two_exchanges(server: &FlakyServer) -> serde_json::Value {
    let body = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
    let resp = raw_call(server, body).await;
    assert_eq!(server.bodies().len(), 2);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&got).unwrap()
}

/// Both calls answered, then the error with a null id that no call took.
fn two_sums_and_unread() -> serde_json::Value {
    serde_json::json!([
        {"jsonrpc": "2.0", "result": 3, "id": 1},
        {"jsonrpc": "2.0", "result": 7, "id": 2},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "unread"}, "id": null},
    ])
}

/// An answer no call took in an earlier exchange is kept when a later exchange answers
/// every call again: the caller gets both exchanges' words, not the last one's bytes.
#[tokio::test(start_paused = true)]
async fn an_earlier_exchanges_answer_no_call_took_outlives_a_whole_re_send() {
    let server = FlakyServer::start().await.unwrap();
    let unread = r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"unread"},"id":null}"#;
    let limited = r#"{"code":-32005,"message":"limited"}"#;
    let first = format!(
        r#"[{{"jsonrpc":"2.0","error":{limited},"id":1}},{{"jsonrpc":"2.0","error":{limited},"id":2}},{unread}]"#
    );
    let second = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":7,"id":2}]"#;
    server.script(
        "sum",
        [
            Step::raw(200, first),
            Step::ok(),
            Step::raw(200, second),
            Step::ok(),
        ],
    );
    assert_eq!(
        two_sums_in_two_exchanges(&server).await,
        two_sums_and_unread()
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_the_last_exchange_answered_whole_comes_back_as_it_came() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [
            Step::error(-32005),
            Step::error(-32005),
            Step::ok().header("x-exchange", "2"),
            Step::ok(),
        ],
    );
    let body = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(server.bodies().len(), 2, "both calls went again");
    assert_eq!(
        resp.headers()["x-exchange"],
        "2",
        "the second answer, as it came"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_page_over_the_limit_keeps_its_status_and_headers() {
    let server = FlakyServer::start().await.unwrap();
    let page = format!("<html>{}</html>", "x".repeat(500));
    server.script(
        "sum",
        [Step::raw(400, page)
            .header("x-request-id", "abc")
            .header("content-type", "text/html")],
    );
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy()).response_limit(100))
        .service(http);
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let req = http::Request::post(server.uri())
        .body(Full::from(body))
        .unwrap();
    let resp = svc.oneshot(req).await.expect("the server's answer");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "abc");
    assert_eq!(resp.headers().get(http::header::CONTENT_LENGTH), None);
    let page = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(page.is_empty(), "a body over the limit is not handed on");
}

#[tokio::test(start_paused = true)]
async fn a_batch_giving_two_calls_one_id_goes_once_as_it_came() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005), Step::ok()]);
    let body = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":1}]"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(server.bodies(), [Bytes::from_static(body.as_bytes())]);
    assert_eq!(server.calls("sum"), 2, "once each, not retried");
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer.as_array().map(Vec::len),
        Some(2),
        "the server's answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bare_status_answer_comes_back_as_it_came() {
    let server = FlakyServer::start().await.unwrap();
    // 503 is retried: the answer handed back is the last attempt's, headers and all.
    server.script(
        "sum",
        [
            Step::status(503).header("x-attempt", "1"),
            Step::status(503).header("x-attempt", "2"),
            Step::status(503).header("x-attempt", "3"),
            Step::status(503)
                .header("x-attempt", "4")
                .header("x-ratelimit-remaining", "0")
                .retry_after(2u64),
        ],
    );
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":5}"#;
    let resp = raw_call(&server, body).await;
    assert_eq!(server.calls("sum"), 4);
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["x-attempt"], "4");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(resp.headers()[http::header::RETRY_AFTER], "2");
}

/// What `raw_call` of `request` gets back when the server answers `answer` (200, JSON).
async fn answered(request: &str, answer: &str) -> Bytes {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::raw(200, answer.to_owned())]);
    let resp = raw_call(&server, request).await;
    assert_eq!(server.calls("sum"), 1);
    resp.into_body().collect().await.unwrap().to_bytes()
}

const SUM: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

/// JSON nested `depth` arrays deep.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(start_paused = true)]
async fn batch_results_serde_json_cannot_build_come_back_as_they_came() {
    // A number beyond f64 and nesting past serde_json's depth limit are JSON all the
    // same: the layer checks them, it does not build them.
    let batch = format!("[{SUM}]");
    for result in ["1e400".to_owned(), nested(200)] {
        let answer = format!(r#"[{{"jsonrpc":"2.0","result":{result},"id":1}}]"#);
        assert_eq!(answered(&batch, &answer).await, answer);
    }
}

#[tokio::test(start_paused = true)]
async fn error_data_serde_json_cannot_build_comes_back_as_it_came() {
    for data in ["1e400".to_owned(), nested(200)] {
        let answer = format!(
            r#"{{"jsonrpc":"2.0","error":{{"code":-32005,"message":"m","data":{data}}},"id":1}}"#
        );
        let server = FlakyServer::start().await.unwrap();
        server.script("sum", vec![Step::raw(200, answer.clone()); 4]);
        // The code is still read (and retried on): only `data` is left unbuilt.
        let resp = raw_call(&server, SUM).await;
        assert_eq!(
            server.calls("sum"),
            4,
            "1 + 3 retries, then the last answer"
        );
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), answer);
    }
}

#[tokio::test(start_paused = true)]
async fn a_content_encoded_answer_comes_back_as_it_came() {
    // The caller asked for gzip; the layer cannot read the body, the caller can.
    let server = FlakyServer::start().await.unwrap();
    let gzipped: &[u8] = &[
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    server.script(
        "sum",
        [Step::raw(200, gzipped.to_vec()).header("content-encoding", "gzip")],
    );
    let req = http::Request::post(server.uri())
        .header("accept-encoding", "gzip")
        .body(Full::from(SUM))
        .unwrap();
    let resp = raw_http()
        .oneshot(req)
        .await
        .expect("the answer, not an error");
    assert_eq!(server.calls("sum"), 1);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        gzipped
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_member_the_specification_does_not_define_need_not_build() {
    let answer = r#"{"jsonrpc":"2.0","error":{"code":2002,"message":"m","extra":1e400},"id":1}"#;
    assert_eq!(answered(SUM, answer).await, answer);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_a_body_sent_as_it_came() {
    // A batch giving two calls one id goes once, untouched: still within the deadline,
    // the layer's or the request's own.
    let twice = format!("[{SUM},{SUM}]");
    let deadline = Duration::from_millis(150);
    for own in [false, true] {
        let server = FlakyServer::start().await.unwrap();
        server.script("sum", vec![Step::ok().after(Duration::from_secs(10)); 2]);
        let (layer, mine) = if own {
            (
                RetryStrategy::none(),
                RetryStrategy::none().max_elapsed(deadline),
            )
        } else {
            (strategy().max_elapsed(deadline), RetryStrategy::none())
        };
        let svc = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::http(layer))
            .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
        let mut req = http::Request::post(server.uri())
            .body(Full::from(twice.clone()))
            .unwrap();
        if own {
            req.extensions_mut().insert(mine);
        }
        let start = Instant::now();
        let err = svc.oneshot(req).await.unwrap_err();
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        assert_eq!(start.elapsed(), deadline, "own strategy: {own}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_gathered_batch_keeps_the_answer_to_a_call_with_a_null_id() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("a", |_| Ok(serde_json::json!({"value": 42})));
    server.script("sum", [Step::error(-32005)]);
    // `a` (id null) is answered at once; `sum` is retried alone.
    let body = format!(r#"[{{"jsonrpc":"2.0","method":"a","id":null}},{SUM}]"#);
    let resp = raw_call(&server, &body).await;
    assert_eq!(server.calls("sum"), 2);
    let answer: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let a = answer
        .as_array()
        .and_then(|items| items.iter().find(|item| item["id"].is_null()))
        .cloned();
    assert_eq!(
        a.map(|a| a["result"].clone()),
        Some(serde_json::json!({"value": 42})),
        "{answer}"
    );
}

/// What jsonrpsee returns when the retries end, case by case (the table in the crate
/// docs' HTTP-level section).
#[tokio::test(start_paused = true)]
async fn what_jsonrpsee_returns_when_retries_end() {
    let server = FlakyServer::start().await.unwrap();

    // A retried JSON-RPC error, to the last: jsonrpsee's `Call`, with the server's object.
    server.script("sum", std::iter::repeat_n(Step::error(-32005), 4));
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Call(obj) if obj.code() == -32005),
        "{err:?}"
    );

    // A retried status whose body is a JSON-RPC error: jsonrpsee reads the status first,
    // so a rejection with that status (the error object is not seen).
    server.reset();
    server.script(
        "sum",
        std::iter::repeat_n(Step::status_with_error(503, -32005), 4),
    );
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Transport(e) if e.to_string().contains("503")),
        "{err:?}"
    );

    // Every attempt timed out (`attempt_timeout`): a transport error whose `source()`
    // chain holds tower's `Elapsed` (jsonrpsee's boxed stream error hides the codec's
    // error itself from `downcast_ref`, not its cause).
    server.reset();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 4));
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    let ClientError::Transport(transport) = &err else {
        panic!("{err:?}")
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(transport.as_ref());
    let mut timed_out = false;
    while let Some(e) = source {
        timed_out |= e.is::<tower::timeout::error::Elapsed>();
        source = e.source();
    }
    assert!(timed_out, "{err:?}");
    assert_eq!(server.calls("sum"), 4);

    // A broken connection (not retried by this strategy, or the last of the retries):
    // a transport error holding jsonrpsee's own backend error, as it was.
    server.reset();
    server.script("sum", [Step::drop_connection()]);
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    let backend = stream_error(&err);
    assert!(
        backend.is::<hyper_util::client::legacy::Error>(),
        "{backend:?}"
    );
    assert_eq!(server.calls("sum"), 1);

    // A 2xx answer that is not JSON-RPC: a transport error holding the layer's own
    // error, as `map_err` made it.
    server.reset();
    server.script("sum", [Step::malformed()]);
    let err = client(&server)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    let layer = stream_error(&err);
    assert!(
        layer
            .downcast_ref::<tower_jsonrpc_retry::codec::Error>()
            .is_some_and(tower_jsonrpc_retry::codec::Error::is_decode),
        "{layer:?}"
    );
    assert_eq!(server.calls("sum"), 1);

    // jsonrpsee's own `request_timeout` shorter than the retries: `RequestTimeout`, and
    // the call is dropped: nothing more is sent.
    server.reset();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 4));
    let impatient = client_with_request_timeout(&server, Duration::from_millis(800));
    let err = impatient
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::RequestTimeout), "{err:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(server.calls("sum"), 2);
}

/// A notification's error comes from jsonrpsee 0.26 wrapped once more: `Error::Transport`
/// holding jsonrpsee's `Error` (as the crate docs say under their table).
#[tokio::test(start_paused = true)]
async fn what_jsonrpsee_returns_for_a_notification_when_retries_end() {
    let server = FlakyServer::start().await.unwrap();
    let wrapped = |err: &ClientError| match err {
        ClientError::Transport(e) => match e.downcast_ref::<ClientError>() {
            Some(ClientError::Transport(inner)) => inner.to_string(),
            Some(other) => format!("{other:?}"),
            None => panic!("not wrapped: {err:?}"),
        },
        other => panic!("{other:?}"),
    };

    // A retried status, to the last: the rejection, one level down.
    server.script("sum", std::iter::repeat_n(Step::status(503), 4));
    let err = client(&server)
        .notification("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(wrapped(&err).contains("503"), "{err:?}");
    assert_eq!(server.calls("sum"), 4);

    // jsonrpsee's own `request_timeout`: not `Error::RequestTimeout` itself, but a
    // transport error holding it.
    server.reset();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 4));
    let impatient = client_with_request_timeout(&server, Duration::from_millis(800));
    let err = impatient
        .notification("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Transport(e)
            if matches!(e.downcast_ref::<ClientError>(), Some(ClientError::RequestTimeout))),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(server.calls("sum"), 2);
}

/// A connection refused below jsonrpsee's transport error (which hides hyper-util's own
/// error from the chain) is still a connect failure: a non-idempotent call is sent again.
#[tokio::test(start_paused = true)]
async fn a_refused_connection_below_jsonrpsee_is_a_connect_failure() {
    let (_held, refusing) = common_refusing();
    let retries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&retries);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
        .retry_on(ErrorClass::Connect)
        .non_idempotent(["send"])
        .on_retry(move |e: &tower_jsonrpc_retry::RetryEvent<'_>| {
            assert_eq!(e.reason().to_string(), "connect");
            counter.fetch_add(1, Ordering::SeqCst);
        });
    let layer =
        JsonRpcRetryLayer::http(strategy).map_err(|e| TransportError::Http(HttpError::Stream(e)));
    let client = HttpClientBuilder::default()
        .set_http_middleware(ServiceBuilder::new().layer(layer))
        .build(format!("http://{refusing}/"))
        .unwrap();
    let err = client
        .request::<serde_json::Value, _>("send", rpc_params!["tx"])
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 2);
}

fn common_refusing() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::LOCALHOST, 0).into())
        .unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// tower's `TimeoutLayer` below the layer, inside jsonrpsee: its `Elapsed` put straight
/// into `HttpError::Stream` drops out of the chain (jsonrpsee's variants are transparent),
/// so the attempt's timeout is not retried; put in a wrapper that shows it, it is.
#[tokio::test(start_paused = true)]
async fn a_tower_timeout_below_the_layer_is_seen_only_through_a_wrapper() {
    let server = FlakyServer::start().await.unwrap();
    let to_transport =
        |e: tower_jsonrpc_retry::BoxError| TransportError::Http(HttpError::Stream(e));
    let retry = || JsonRpcRetryLayer::http(strategy()).map_err(to_transport);

    server.script("sum", [Step::timeout()]);
    let straight = HttpClientBuilder::default()
        .set_http_middleware(
            ServiceBuilder::new()
                .layer(retry())
                .map_err(to_transport)
                .timeout(Duration::from_millis(500)),
        )
        .build(server.uri().to_string())
        .unwrap();
    let err = straight
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(
        server.calls("sum"),
        1,
        "not retried: the timeout is not in the chain"
    );

    server.script("sum", [Step::timeout()]);
    let wrapped = HttpClientBuilder::default()
        .set_http_middleware(
            ServiceBuilder::new()
                .layer(retry())
                // In a wrapper whose `source()` is the boxed error, so that it stays in
                // the chain under jsonrpsee's transparent `transport::Error` (the layer's
                // docs: "What the inner service must be").
                .map_err(|e| {
                    TransportError::Http(HttpError::Stream(Box::new(common::CallError(e))))
                })
                .timeout(Duration::from_millis(500)),
        )
        .build(server.uri().to_string())
        .unwrap();
    let sum: i64 = wrapped.request("sum", rpc_params![1, 2]).await.unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 3, "the timeout, then its retry");
}
