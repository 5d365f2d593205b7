//! Both layers stacked with the middleware real users put around them: tower-http's
//! decompression, set-header, trace and follow-redirect below them, tower's timeout,
//! rate limit and buffer, `load_shed` and `BoxCloneService` around them.

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// What the server received: method, URI, headers, body.
type Received = (Method, Uri, HeaderMap, Bytes);

/// The answer to the n-th HTTP request (from 0).
type Handler = dyn Fn(usize, &Received) -> http::Response<Full<Bytes>> + Send + Sync;

/// A tiny HTTP/1 server on 127.0.0.1 answering with `handler`, logging every request.
struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    async fn start(
        handler: impl Fn(usize, &Received) -> http::Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let handler = handler.clone();
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let seen = seen.clone();
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = BodyExt::collect(body).await?.to_bytes();
                        let received = (parts.method, parts.uri, parts.headers, body);
                        let n = {
                            let mut log = seen.lock().unwrap();
                            log.push(received.clone());
                            log.len() - 1
                        };
                        Ok::<_, hyper::Error>(handler(n, &received))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { addr, log }
    }

    fn uri(&self, path: &str) -> Uri {
        format!("http://{}{path}", self.addr).parse().unwrap()
    }

    fn requests(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

fn gzip(bytes: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

/// The id of the JSON-RPC call in `body`.
fn id_of(body: &Bytes) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["id"].clone()
}

fn error_body(id: &Value, code: i64) -> Bytes {
    Bytes::from(
        json!({"jsonrpc": "2.0", "error": {"code": code, "message": "busy"}, "id": id}).to_string(),
    )
}

fn result_body(id: &Value, result: Value) -> Bytes {
    Bytes::from(json!({"jsonrpc": "2.0", "result": result, "id": id}).to_string())
}

/// A gzip-encoded JSON answer.
fn gzipped(status: StatusCode, json: &[u8]) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(CONTENT_ENCODING, "gzip")
        .body(Full::new(gzip(json)))
        .unwrap()
}

/// Answers error 2001 first, then 3, each gzip-encoded.
fn busy_then_three_gzipped(n: usize, received: &Received) -> http::Response<Full<Bytes>> {
    let id = id_of(&received.3);
    match n {
        0 => gzipped(StatusCode::OK, &error_body(&id, 2001)),
        _ => gzipped(StatusCode::OK, &result_body(&id, json!(3))),
    }
}

fn busy_strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([2001])
}

/// The JSON body of an answer.
async fn json_of<B>(resp: http::Response<B>) -> Value
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn http_call(uri: Uri, body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7}"#;

fn asked_for_gzip(received: &Received) -> bool {
    received
        .2
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"))
}

#[tokio::test(start_paused = true)]
async fn json_rpc_level_over_decompression_reads_the_decoded_body_and_retries_its_codes() {
    let server = Server::start(busy_then_three_gzipped).await;
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(busy_strategy()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)))
        .service(common::http());
    let resp = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 2, "the gzip-encoded 2001 was retried");
    assert!(server.received().iter().all(asked_for_gzip));
}

#[tokio::test(start_paused = true)]
async fn http_level_over_decompression_reads_the_decoded_body_and_retries_its_codes() {
    let server = Server::start(busy_then_three_gzipped).await;
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let resp = svc.oneshot(http_call(server.uri("/"), CALL)).await.unwrap();
    assert_eq!(server.requests(), 2, "the gzip-encoded 2001 was retried");
    assert_eq!(resp.status(), StatusCode::OK);
    let (head, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"jsonrpc": "2.0", "result": 3, "id": 7})
    );
    // The body handed back is the decoded one: nothing in the head may say otherwise.
    assert!(head.headers.get(CONTENT_ENCODING).is_none(), "{head:?}");
    assert!(
        head.headers
            .get(CONTENT_LENGTH)
            .is_none_or(|len| len.to_str().unwrap() == body.len().to_string()),
        "{head:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn http_level_under_decompression_hands_an_encoded_answer_back_as_it_came() {
    // As documented: an answer the caller asked to have encoded cannot be read by the
    // layer, so no JSON-RPC rule applies; the caller's decompression decodes it.
    let server = Server::start(busy_then_three_gzipped).await;
    let svc = ServiceBuilder::new()
        .layer(tower_http::decompression::DecompressionLayer::new())
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .service(common::http());
    let resp = svc.oneshot(http_call(server.uri("/"), CALL)).await.unwrap();
    assert_eq!(server.requests(), 1);
    assert_eq!(json_of(resp).await["error"]["code"], json!(2001));
}

#[tokio::test(start_paused = true)]
async fn an_encoded_success_under_decompression_is_a_success_to_every_rule_and_hook() {
    // The layer cannot read an answer the caller asked to have encoded, so no rule may
    // take it for a failure: not a rule on decode errors, not one on statuses (which do
    // see the 200 of a body that is not JSON-RPC), and no hook or record may say the call
    // was given up on.
    const BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7},
        {"jsonrpc":"2.0","method":"sum","params":[3,4],"id":8}]"#;
    let handler = |_: usize, received: &Received| {
        let answer = match serde_json::from_slice::<Value>(&received.3).unwrap() {
            Value::Array(calls) => json!(
                calls
                    .iter()
                    .map(|c| json!({"jsonrpc": "2.0", "result": 3, "id": c["id"]}))
                    .collect::<Vec<_>>()
            ),
            call => json!({"jsonrpc": "2.0", "result": 3, "id": call["id"]}),
        };
        gzipped(StatusCode::OK, answer.to_string().as_bytes())
    };
    let server = Server::start(handler).await;
    let give_ups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heard = give_ups.clone();
    let periodic = || RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)));
    let strategies = [
        RetryStrategy::transient().on_give_up(move |_| {
            heard.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
        periodic().retry_on_error::<tower_jsonrpc_retry::jsonrpc::DecodeError>(),
        periodic().retry_status_if(|_| true),
    ];
    let mut sent = 0;
    for strategy in strategies {
        for body in [CALL, BATCH] {
            let svc = ServiceBuilder::new()
                .layer(tower_http::decompression::DecompressionLayer::new())
                .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy.clone()))
                .service(common::http());
            let resp = svc.oneshot(http_call(server.uri("/"), body)).await.unwrap();
            sent += 1;
            assert_eq!(server.requests(), sent, "{body} was sent again");
            assert_eq!(resp.status(), StatusCode::OK);
            let gave_up = resp.extensions().get::<tower_jsonrpc_retry::GaveUp>();
            assert!(gave_up.is_none(), "{body}: {gave_up:?} on a success");
            let answer = json_of(resp).await;
            let first = answer.get(0).unwrap_or(&answer);
            assert_eq!(first["result"], 3, "{body}: {answer}");
        }
    }
    let heard = give_ups.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(heard, 0, "on_give_up heard of a success");
}

/// A batch partly retried: the re-send asks for no encoding, as its answer must be
/// gathered with the ones kept. A server that encodes it anyway sends an answer the layer
/// cannot gather, so it is a failure like any other (a rule on decode errors retries
/// it), not the server's answer handed back as it came.
#[tokio::test(start_paused = true)]
async fn an_encoded_answer_to_a_batch_s_re_send_is_a_failure_the_rules_decide_on() {
    const BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7},
        {"jsonrpc":"2.0","method":"sum","params":[3,4],"id":8}]"#;
    let handler = |n: usize, received: &Received| {
        if n == 0 {
            let answer = json!([
                {"jsonrpc": "2.0", "error": {"code": 2001, "message": "busy"}, "id": 7},
                {"jsonrpc": "2.0", "result": 7, "id": 8},
            ]);
            return http::Response::new(Full::new(Bytes::from(answer.to_string())));
        }
        let calls: Vec<Value> = serde_json::from_slice(&received.3).unwrap();
        let answer: Vec<Value> = calls
            .iter()
            .map(|c| json!({"jsonrpc": "2.0", "result": 3, "id": c["id"]}))
            .collect();
        gzipped(StatusCode::OK, json!(answer).to_string().as_bytes())
    };
    let server = Server::start(handler).await;
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .codes([2001])
        .retry_on_error::<tower_jsonrpc_retry::jsonrpc::DecodeError>();
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(common::http());
    let mut req = http_call(server.uri("/"), BATCH);
    req.headers_mut()
        .insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let resp = svc.oneshot(req).await.unwrap();
    let received = server.received();
    let asked: Vec<_> = received
        .iter()
        .map(|r| r.2.get(ACCEPT_ENCODING).cloned())
        .collect();
    assert_eq!(
        asked[1].as_ref().map(|v| v.as_bytes()),
        Some(&b"identity"[..])
    );
    assert_eq!(received.len(), 4, "the re-send, then its three retries");
    let gave_up = resp
        .extensions()
        .get::<tower_jsonrpc_retry::GaveUp>()
        .copied();
    assert_eq!(
        gave_up.map(|g| g.reason()),
        Some(tower_jsonrpc_retry::GiveUpReason::Exhausted)
    );
}

#[tokio::test(start_paused = true)]
async fn gzip_encoded_failure_statuses_are_retried_by_status_at_both_levels() {
    let handler = |n: usize, received: &Received| {
        let id = id_of(&received.3);
        match n % 2 {
            0 => gzipped(StatusCode::SERVICE_UNAVAILABLE, b"<html>busy</html>"),
            _ => gzipped(StatusCode::OK, &result_body(&id, json!(3))),
        }
    };
    let server = Server::start(handler).await;
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .retry_on(ErrorClass::Status(StatusCode::SERVICE_UNAVAILABLE));
    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy.clone()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let resp = json_rpc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 2);

    // The caller's own decompression above the HTTP level: the status still decides.
    let http_level = ServiceBuilder::new()
        .layer(tower_http::decompression::DecompressionLayer::new())
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
        .service(common::http());
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.requests(), 4);
    assert_eq!(json_of(resp).await["result"], 3);
}

/// Answers error 2001 to every other request (from the first), 3 otherwise.
fn busy_every_other(n: usize, received: &Received) -> http::Response<Full<Bytes>> {
    let id = id_of(&received.3);
    let body = match n % 2 {
        0 => error_body(&id, 2001),
        _ => result_body(&id, json!(3)),
    };
    http::Response::new(Full::new(body))
}

#[tokio::test(start_paused = true)]
async fn set_header_and_trace_below_both_levels_go_with_every_attempt() {
    let server = Server::start(busy_every_other).await;
    let strategy = busy_strategy();
    let auth = HeaderValue::from_static("Bearer t0ken");

    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy.clone()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::set_header::SetRequestHeaderLayer::overriding(
            AUTHORIZATION,
            auth.clone(),
        ))
        .service(common::http());
    let resp = json_rpc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 2);

    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::set_header::SetRequestHeaderLayer::overriding(
            AUTHORIZATION,
            auth.clone(),
        ))
        .service(common::http());
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 4);
    assert!(
        server
            .received()
            .iter()
            .all(|received| received.2.get(AUTHORIZATION) == Some(&auth)),
        "every attempt carries the header"
    );
}

/// A 307 from `/` to `/v2`; at `/v2`, error 2001 to every other request, 3 otherwise.
fn redirecting(n: usize, received: &Received) -> http::Response<Full<Bytes>> {
    if received.1.path() == "/" {
        return http::Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(LOCATION, "/v2")
            .body(Full::default())
            .unwrap();
    }
    // Requests 1, 3, 5, ... reach `/v2`.
    busy_every_other(n / 2, received)
}

/// Follows redirects, re-sending the body (a 307 keeps method and body).
fn follow_redirect_layer<E>() -> tower_http::follow_redirect::FollowRedirectLayer<
    impl tower_http::follow_redirect::policy::Policy<Full<Bytes>, E> + Clone,
> {
    use tower_http::follow_redirect::policy::{self, PolicyExt};
    tower_http::follow_redirect::FollowRedirectLayer::with_policy(
        policy::Limited::default().and::<_, _, E>(policy::clone_body_fn(|body: &Full<Bytes>| {
            Some(body.clone())
        })),
    )
}

#[tokio::test(start_paused = true)]
async fn a_307_followed_below_either_level_is_retried_on_the_target_s_codes() {
    let server = Server::start(redirecting).await;
    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(busy_strategy()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(follow_redirect_layer())
        .service(common::http());
    let resp = json_rpc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 4, "two attempts, each redirected once");

    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .layer(follow_redirect_layer())
        .service(common::http());
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 8);
    let received = server.received();
    for (method, uri, _, body) in &received[4..] {
        assert_eq!(method, Method::POST);
        assert_eq!(body, CALL, "{uri}: the caller's bytes, redirect or not");
    }
}

#[tokio::test(start_paused = true)]
async fn a_307_comes_back_to_a_follow_redirect_above_the_http_level() {
    let server = Server::start(redirecting).await;
    let svc = ServiceBuilder::new()
        .layer(follow_redirect_layer())
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .service(common::http());
    let resp = svc.oneshot(http_call(server.uri("/"), CALL)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_of(resp).await["result"], 3);
    // `/` answers 307, handed back as it came; `/v2` answers 2001 (retried by the
    // layer), then 3.
    let paths: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.1.path().to_owned())
        .collect();
    assert_eq!(paths, ["/", "/v2", "/v2"]);
}

#[tokio::test(start_paused = true)]
async fn http_level_over_a_timeout_made_an_io_error_retries_timeouts_as_documented() {
    // The docs: "turn the boxed error into one below the layer
    // (`.map_err(std::io::Error::other)`; timeouts are still recognised".
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::timeout(), Step::timeout()]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
                .retry_on(ErrorClass::Timeout),
        ))
        .map_err(std::io::Error::other)
        .timeout(Duration::from_millis(500))
        .service(common::http());
    let start = tokio::time::Instant::now();
    let resp = svc.oneshot(http_call(server.uri(), CALL)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(1200));

    // And when every attempt times out, the last timeout comes back, recognisable.
    server.script("sum", std::iter::repeat_with(Step::timeout).take(4));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
                .retry_on(ErrorClass::Timeout),
        ))
        .map_err(std::io::Error::other)
        .timeout(Duration::from_millis(500))
        .service(common::http());
    let err = svc
        .oneshot(http_call(server.uri(), CALL))
        .await
        .unwrap_err();
    let io = err
        .downcast_ref::<std::io::Error>()
        .expect("the inner error, as it was");
    assert!(
        io.get_ref()
            .is_some_and(|e| e.is::<tower::timeout::error::Elapsed>()),
        "{err:?}"
    );
    assert_eq!(server.calls("sum"), 5);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_behind_a_buffer_below_either_level_paces_the_retries() {
    let server = Server::start(busy_every_other).await;
    // One request per second; `RateLimit` is not `Clone`, so a `Buffer` shares it.
    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)).codes([2001]),
        ))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .buffer(8)
        .rate_limit(1, Duration::from_secs(1))
        .service(common::http());
    let start = tokio::time::Instant::now();
    let resp = json_rpc
        .clone()
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the retry waited for the limit"
    );

    // At the HTTP level, `Buffer`'s boxed error is made an `io::Error` (the docs).
    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)).codes([2001]),
        ))
        .map_err(std::io::Error::other)
        .buffer(8)
        .rate_limit(1, Duration::from_secs(1))
        .service(common::http());
    let start = tokio::time::Instant::now();
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 4);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_buffer_above_either_level_and_a_boxed_clone_service_of_the_whole_stack() {
    use tower::util::{BoxCloneService, BoxCloneSyncService};
    let server = Server::start(busy_every_other).await;

    let json_rpc = ServiceBuilder::new()
        .buffer(8)
        .layer(JsonRpcRetryLayer::new(busy_strategy()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .concurrency_limit(4)
        .service(common::http());
    let erased: BoxCloneService<Request, tower_jsonrpc_retry::jsonrpc::Response, BoxError> =
        BoxCloneService::new(json_rpc);
    let resp = erased
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.requests(), 2);

    type HttpResponse = http::Response<Full<Bytes>>;
    let http_level = ServiceBuilder::new()
        .buffer(8)
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .concurrency_limit(4)
        .service(common::http());
    let erased: BoxCloneSyncService<http::Request<Full<Bytes>>, HttpResponse, BoxError> =
        BoxCloneSyncService::new(http_level);
    let resp = erased
        .clone()
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 4);

    // The whole HTTP-level stack boxed, with the inner service boxed too.
    type Inner = BoxCloneService<
        http::Request<Full<Bytes>>,
        http::Response<hyper::body::Incoming>,
        hyper_util::client::legacy::Error,
    >;
    let inner: Inner = BoxCloneService::new(common::http());
    let erased: BoxCloneService<http::Request<Full<Bytes>>, HttpResponse, BoxError> =
        BoxCloneService::new(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()).layer(inner));
    let resp = erased
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 6);
}

#[tokio::test(start_paused = true)]
async fn http_level_over_boxed_response_bodies_and_under_a_boxed_request_body() {
    use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
    let server = Server::start(busy_every_other).await;

    // The inner service answers with a boxed body.
    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .map_response(|resp: http::Response<hyper::body::Incoming>| resp.map(BoxBody::new))
        .service(common::http());
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 2);

    // A client that sends boxed bodies: the layer's body is a `Full` turned into one
    // below it.
    type Boxed = UnsyncBoxBody<Bytes, Infallible>;
    let client: hyper_util::client::legacy::Client<_, Boxed> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .map_request(|req: http::Request<Full<Bytes>>| req.map(UnsyncBoxBody::new))
        .service(client);
    let resp = http_level
        .oneshot(http_call(server.uri("/"), CALL))
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["result"], 3);
    assert_eq!(server.requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn jsonrpsee_with_decompression_and_trace_below_the_http_level() {
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::core::http_helpers::HttpError;
    use jsonrpsee::http_client::HttpClientBuilder;
    use jsonrpsee::http_client::transport::Error as TransportError;

    let server = Server::start(busy_then_three_gzipped).await;
    let layer = JsonRpcRetryLayer::http(busy_strategy())
        .attempt_timeout(Duration::from_secs(2))
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    let client = HttpClientBuilder::default()
        .set_http_middleware(
            ServiceBuilder::new()
                .layer(layer)
                .layer(tower_http::trace::TraceLayer::new_for_http())
                .layer(tower_http::decompression::DecompressionLayer::new()),
        )
        .build(server.uri("/").to_string())
        .unwrap();
    let sum: i64 = client
        .request("sum", jsonrpsee::rpc_params![1, 2])
        .await
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.requests(), 2, "the gzip-encoded 2001 was retried");
    assert!(server.received().iter().all(asked_for_gzip));
}

/// Answers each id's first request with error 2001, its second with the id doubled,
/// gzip-encoded.
fn busy_once_per_id() -> impl Fn(usize, &Received) -> http::Response<Full<Bytes>> + Send + Sync {
    let seen = Mutex::new(std::collections::HashSet::new());
    move |_, received: &Received| {
        let id = id_of(&received.3);
        let first = seen.lock().unwrap().insert(id.to_string());
        match first {
            true => gzipped(StatusCode::OK, &error_body(&id, 2001)),
            false => {
                let doubled = id.as_i64().unwrap() * 2;
                gzipped(StatusCode::OK, &result_body(&id, json!(doubled)))
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn many_calls_through_buffer_limit_and_decompression_each_get_their_own_answer() {
    let server = Server::start(busy_once_per_id()).await;
    let json_rpc = ServiceBuilder::new()
        .buffer(8)
        .layer(JsonRpcRetryLayer::new(busy_strategy()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .concurrency_limit(2)
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let client = tower_jsonrpc_retry::Client::new(json_rpc);
    let calls = (1..=64i64).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request("double")
                .id(i)
                .params((i,))
                .send::<i64>()
                .await
                .map(|doubled| (i, doubled))
        })
    });
    for call in futures_join(calls).await {
        let (i, doubled) = call.unwrap();
        assert_eq!(doubled, 2 * i);
    }
    assert_eq!(server.requests(), 128);

    let server = Server::start(busy_once_per_id()).await;
    let http_level = ServiceBuilder::new()
        .buffer(8)
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .concurrency_limit(2)
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let uri = server.uri("/");
    // Not spawned: rustc cannot prove a task awaiting any `Buffer` whose inner error is
    // a `BoxError` `Send` ("implementation of `From` is not general enough"), a limit of
    // tower's `Buffer`, not of this layer; with the layer's `map_err` to a concrete
    // type, it can be (`tests/auto_traits.rs`). Joined in place instead.
    let calls = (1..=64i64).map(|i| {
        let svc = http_level.clone();
        let uri = uri.clone();
        Box::pin(async move {
            let body = json!({"jsonrpc": "2.0", "method": "double", "params": [i], "id": i});
            let req = http::Request::post(uri)
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let resp = svc.oneshot(req).await.unwrap();
            (i, json_of(resp).await)
        })
    });
    for (i, answer) in join_in_place(calls).await {
        assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 2 * i, "id": i}));
    }
    assert_eq!(server.requests(), 128);
}

/// Awaits every task, in order.
async fn futures_join<T>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let tasks: Vec<_> = tasks.into_iter().collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// Polls every future until all are done; their outputs in order.
async fn join_in_place<F: std::future::Future + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<Option<F>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match std::pin::Pin::new(future).poll(cx) {
                    std::task::Poll::Ready(out) => {
                        *output = Some(out);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(start_paused = true)]
async fn a_gzip_encoded_batch_is_partly_retried_at_both_levels() {
    // Each call's first answer is 2001, its next its id doubled; the whole batch answer
    // gzip-encoded.
    let handler = {
        let seen = Mutex::new(std::collections::HashSet::new());
        move |_: usize, received: &Received| {
            let items = serde_json::from_slice::<Vec<Value>>(&received.3).unwrap();
            let answers: Vec<Value> = items
                .iter()
                .map(|item| {
                    let id = item["id"].clone();
                    let odd = id.as_i64().unwrap() % 2 == 1;
                    let body = if odd && seen.lock().unwrap().insert(id.to_string()) {
                        error_body(&id, 2001)
                    } else {
                        result_body(&id, json!(id.as_i64().unwrap() * 2))
                    };
                    serde_json::from_slice::<Value>(&body).unwrap()
                })
                .collect();
            gzipped(StatusCode::OK, json!(answers).to_string().as_bytes())
        }
    };
    let server = Server::start(handler).await;
    let json_rpc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(busy_strategy()))
        .layer(JsonRpcCodecLayer::new(server.uri("/")))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let batch = BatchRequest::new(
        (1..=4)
            .map(|i| Request::new("double", json!([i])).with_id(i))
            .collect(),
    );
    let resp = json_rpc.oneshot(batch).await.unwrap();
    let results: Vec<Option<Value>> = resp.items().iter().map(|r| r.result().cloned()).collect();
    assert_eq!(
        results,
        [2, 4, 6, 8].map(|n| Some(json!(n))),
        "every call answered"
    );
    let sizes: Vec<usize> = server
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Vec<Value>>(&r.3).unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 2], "only the two busy calls were sent again");

    let http_level = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .layer(tower_http::decompression::DecompressionLayer::new())
        .service(common::http());
    let batch = (5..=8)
        .map(|i| json!({"jsonrpc": "2.0", "method": "double", "params": [i], "id": i}))
        .collect::<Vec<_>>();
    let req = http::Request::post(server.uri("/"))
        .body(Full::new(Bytes::from(json!(batch).to_string())))
        .unwrap();
    let resp = http_level.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get(CONTENT_ENCODING).is_none());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let mut answers = serde_json::from_slice::<Vec<Value>>(&body).unwrap();
    answers.sort_by_key(|a| a["id"].as_i64());
    let results: Vec<Value> = answers.iter().map(|a| a["result"].clone()).collect();
    assert_eq!(results, [10, 12, 14, 16].map(|n| json!(n)));
    assert_eq!(server.requests(), 4);
}

/// Answers a batch as a server that compresses only large answers (Express's
/// `compression` and Go's gzip handlers skip small ones): the first answer to call 1 is
/// error 2001, the next its result; an answer with no error counts as large and is
/// gzip-encoded when the request accepts gzip.
fn compressing_large_answers()
-> impl Fn(usize, &Received) -> http::Response<Full<Bytes>> + Send + Sync {
    let busy_once = Mutex::new(true);
    move |_, received: &Received| {
        let items = serde_json::from_slice::<Vec<Value>>(&received.3).unwrap();
        let answers: Vec<Value> = items
            .iter()
            .map(|item| {
                let id = item["id"].clone();
                let body = if id == json!(1) && std::mem::take(&mut *busy_once.lock().unwrap()) {
                    error_body(&id, 2001)
                } else {
                    result_body(&id, json!(format!("logs of call {id}")))
                };
                serde_json::from_slice::<Value>(&body).unwrap()
            })
            .collect();
        let large = answers.iter().all(|a| a.get("error").is_none());
        let body = json!(answers).to_string();
        if large && asked_for_gzip(received) {
            gzipped(StatusCode::OK, body.as_bytes())
        } else {
            http::Response::new(Full::new(Bytes::from(body)))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn http_level_a_partly_retried_batch_keeps_a_re_send_s_answer_when_the_caller_accepts_gzip() {
    let server = Server::start(compressing_large_answers()).await;
    // The caller's own decompression, above the layer, asks for gzip.
    let svc = ServiceBuilder::new()
        .layer(tower_http::decompression::DecompressionLayer::new())
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(busy_strategy()))
        .service(common::http());
    let batch = r#"[{"jsonrpc":"2.0","method":"getLogs","params":[],"id":1},{"jsonrpc":"2.0","method":"getLogs","params":[],"id":2}]"#;
    let resp = svc
        .oneshot(http_call(server.uri("/"), batch))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let mut answers = serde_json::from_slice::<Vec<Value>>(&body).unwrap();
    answers.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(
        answers,
        [
            json!({"jsonrpc": "2.0", "result": "logs of call 1", "id": 1}),
            json!({"jsonrpc": "2.0", "result": "logs of call 2", "id": 2}),
        ],
        "the server answered call 1 on the re-send: that answer must not be lost"
    );
    let sizes: Vec<usize> = server
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Vec<Value>>(&r.3).unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 1], "only call 1 was sent again");
    let accepted: Vec<Option<HeaderValue>> = server
        .received()
        .iter()
        .map(|r| r.2.get(ACCEPT_ENCODING).cloned())
        .collect();
    assert_eq!(
        accepted,
        [
            Some(HeaderValue::from_static("gzip")),
            // The layer merges this answer with the first: it asks for one it can read.
            Some(HeaderValue::from_static("identity")),
        ]
    );
}
