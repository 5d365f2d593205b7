//! The JSON-RPC codec over a real hyper-util client against `FlakyServer`: every decode
//! rule of the codec's table, and every kind of `codec::Error`, from real errors.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::timeout::TimeoutLayer;
use tower::timeout::error::Elapsed;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::codec::{self, DEFAULT_BODY_LIMIT, JsonRpcCodecLayer, RetryAfter};
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, DecodeError, Id, Request, Response,
};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};

type Http = Client<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn server() -> FlakyServer {
    FlakyServer::start().await.expect("bind 127.0.0.1")
}

fn sum(id: impl Into<Id>) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

/// The server's URI with `user_info` before its host.
fn with_user_info(server: &FlakyServer, user_info: &str) -> Uri {
    format!("http://{user_info}@{}/", server.addr())
        .parse()
        .unwrap()
}

/// One single call through a fresh codec over a fresh client.
async fn call(server: &FlakyServer, req: Request) -> Result<Response, codec::Error> {
    JsonRpcCodecLayer::new(server.uri())
        .layer(http())
        .oneshot(req)
        .await
}

async fn batch(server: &FlakyServer, batch: BatchRequest) -> Result<BatchResponse, codec::Error> {
    JsonRpcCodecLayer::new(server.uri())
        .layer(http())
        .oneshot(batch)
        .await
}

/// The first error of type `E` in the `source()` chain of `err` (`err` itself included).
fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn decode_error(result: Result<Response, codec::Error>) -> (codec::Error, String) {
    let err = result.expect_err("a decode error");
    assert!(err.is_decode(), "{err:?}");
    assert!(
        !err.is_transport() && !err.is_status() && !err.is_body(),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert_eq!(err.to_string(), "invalid JSON-RPC response");
    let debug = format!("{err:?}");
    assert!(debug.contains("kind: Decode"), "{debug}");
    (err, debug)
}

// --- the HTTP request the codec sends ---------------------------------------------------

/// The head of every HTTP request the codec handed to the client, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<http::request::Parts>>>);

impl Seen {
    fn take(&self) -> Vec<http::request::Parts> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The hyper-util client, behind a wrapper that records each request's head.
/// The head a codec to `uri` with `Authorization: Bearer t0ken` of its own sends for
/// one call.
async fn sent_with_token(uri: Uri) -> http::request::Parts {
    let seen = Seen::default();
    JsonRpcCodecLayer::new(uri)
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"))
        .layer(capturing(seen.clone()))
        .oneshot(sum(1))
        .await
        .unwrap();
    seen.take().remove(0)
}

fn capturing(
    seen: Seen,
) -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future = hyper_util::client::legacy::ResponseFuture,
> + Clone {
    let client = http();
    tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let (parts, body) = req.into_parts();
        seen.0.lock().unwrap().push(parts.clone());
        client.request(http::Request::from_parts(parts, body))
    })
}

#[tokio::test]
async fn call_returns_the_result_and_the_numeric_id() {
    let server = server().await;
    let resp = call(&server, sum(1)).await.unwrap();
    assert_eq!(resp.id(), &Id::Number(1));
    assert_eq!(resp.result(), Some(&json!(3)));
    assert!(
        resp.extensions().get::<StatusCode>().is_none(),
        "200 is not recorded"
    );
    assert!(resp.extensions().get::<RetryAfter>().is_none());
    assert_eq!(
        server.bodies_json(),
        [json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1})]
    );
    assert_eq!(server.http_requests(), 1);
}

#[tokio::test]
async fn call_echoes_a_string_id() {
    let server = server().await;
    let resp = call(
        &server,
        Request::new("echo", json!({"a": [1, "two"]})).with_id("x-1"),
    )
    .await
    .unwrap();
    assert_eq!(resp.id(), &Id::from("x-1"));
    assert_eq!(resp.result(), Some(&json!({"a": [1, "two"]})));
    assert_eq!(
        server.bodies_json(),
        [json!({"jsonrpc": "2.0", "method": "echo", "params": {"a": [1, "two"]}, "id": "x-1"})]
    );
}

#[tokio::test]
async fn the_http_request_is_a_json_post_with_the_configured_headers() {
    let server = server().await;
    let seen = Seen::default();
    let mut extra = HeaderMap::new();
    extra.insert("x-api-key", HeaderValue::from_static("k3y"));
    let svc = JsonRpcCodecLayer::new(server.uri())
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"))
        .headers(extra)
        .layer(capturing(seen.clone()));
    let resp = svc.oneshot(sum(5)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));

    let heads = seen.take();
    assert_eq!(heads.len(), 1);
    let head = &heads[0];
    assert_eq!(head.method, Method::POST);
    assert_eq!(head.uri, server.uri());
    assert_eq!(head.headers[CONTENT_TYPE], "application/json");
    assert_eq!(head.headers[ACCEPT], "application/json");
    assert_eq!(head.headers[AUTHORIZATION], "Bearer t0ken");
    assert_eq!(head.headers["x-api-key"], "k3y");
    assert_eq!(head.headers.len(), 4, "{:?}", head.headers);
    // And it went over the wire as sent.
    assert_eq!(
        server.bodies_json(),
        [json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 5})]
    );
}

/// User information in the URI is sent as `Authorization: Basic` (percent-escapes
/// decoded, marked sensitive) and taken out of the URI; hyper would send neither, and the
/// server would refuse every call with 401. A header set afterwards replaces it.
#[tokio::test]
async fn credentials_in_the_uri_become_a_basic_authorization_header() {
    let server = server().await;
    let with = |user_info: &str| with_user_info(&server, user_info);
    let cases = [
        ("alice:s%40cret", Some("Basic YWxpY2U6c0BjcmV0")),
        ("k3y", Some("Basic azN5Og==")),
        (":p", Some("Basic OnA=")),
        ("", None),
    ];
    for (user_info, expected) in cases {
        let seen = Seen::default();
        let layer = JsonRpcCodecLayer::new(with(user_info));
        let shown = format!("{layer:?}");
        assert!(
            !shown.contains("cret") && !shown.contains("YWxp"),
            "{shown}"
        );
        let resp = layer.layer(capturing(seen.clone())).oneshot(sum(1)).await;
        assert_eq!(resp.unwrap().result(), Some(&json!(3)));
        let head = &seen.take()[0];
        assert_eq!(
            head.uri,
            server.uri(),
            "{user_info:?}: no user information left"
        );
        let sent = head.headers.get(AUTHORIZATION);
        assert_eq!(sent.map(|v| v.to_str().unwrap()), expected, "{user_info:?}");
        assert!(sent.is_none_or(HeaderValue::is_sensitive));
    }
    let values: Vec<_> = sent_with_token(with("alice:secret"))
        .await
        .headers
        .get_all(AUTHORIZATION)
        .iter()
        .cloned()
        .collect();
    assert_eq!(values, ["Bearer t0ken"]);
}

/// A URI without a scheme and host is sent as it is, for an inner service that takes
/// one (an in-memory service, a router); only `Client`'s stacks, over hyper-util's
/// client, refuse it (`tests/client.rs`).
#[tokio::test]
async fn a_uri_without_a_scheme_is_sent_as_it_is() {
    let seen = Seen::default();
    let recorded = seen.clone();
    let in_memory = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        recorded.0.lock().unwrap().push(req.into_parts().0);
        std::future::ready(Ok::<_, Infallible>(http::Response::new(Full::new(
            Bytes::from_static(br#"{"jsonrpc":"2.0","result":3,"id":1}"#),
        ))))
    });
    let resp = JsonRpcCodecLayer::new("/rpc".parse().unwrap())
        .layer(in_memory)
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(seen.take()[0].uri, "/rpc");
}

/// A JSON-RPC 1.0 server (Bitcoin Core before 28) answers a batch's notification too,
/// with a null id: passed over, the call's answer read.
#[tokio::test]
async fn a_json_rpc_1_0_servers_answer_to_a_batch_with_a_notification_is_read() {
    let server = server().await;
    server.script(
        "sum",
        [Step::raw(
            200,
            r#"[{"result":3,"error":null,"id":1},{"result":null,"error":null,"id":null}]"#,
        )],
    );
    let answer = batch(
        &server,
        BatchRequest::new(vec![sum(1), Request::new("ping", json!([]))]),
    )
    .await
    .unwrap();
    assert_eq!(answer.items().len(), 1);
    assert_eq!(answer.items()[0].result(), Some(&json!(3)));
    assert!(answer.unmatched().is_empty());
}

/// A port out of range or an empty host fails unsent over any inner service, not only
/// `Client`'s: hyper-util's client would connect to port 80 instead.
#[tokio::test]
async fn a_port_out_of_range_or_an_empty_host_is_not_sent() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sent);
    let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<_, Infallible>(http::Response::new(Full::new(
            Bytes::from_static(br#"{"jsonrpc":"2.0","result":3,"id":1}"#),
        ))))
    });
    for uri in [
        "http://127.0.0.1:85450/",
        "http://127.0.0.1:-1/",
        "http://:8545/",
    ] {
        let err = JsonRpcCodecLayer::new(uri.parse().unwrap())
            .layer(inner.clone())
            .oneshot(sum(1))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{uri}: {err:?}");
        let why = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(why.starts_with("the URI"), "{uri}: {why}");
    }
    assert_eq!(sent.load(Ordering::SeqCst), 0);
}

/// The module docs' "A header for one call": the call's extensions reach the HTTP
/// request, so a layer below the codec writes a header from them, on every attempt of
/// a retry layer above.
#[tokio::test(start_paused = true)]
async fn a_layer_below_the_codec_writes_a_header_from_the_calls_extensions() {
    use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    #[derive(Clone)]
    struct TraceId(HeaderValue);

    let server = server().await;
    server.script("sum", [Step::error(-32005), Step::ok()]);
    let seen = Seen::default();
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10))).codes([-32005]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .map_request(|mut req: http::Request<Full<Bytes>>| {
            if let Some(TraceId(id)) = req.extensions().get::<TraceId>().cloned() {
                req.headers_mut().insert("x-trace-id", id);
            }
            req
        })
        .service(capturing(seen.clone()));
    let mut call = sum(1);
    call.extensions_mut()
        .insert(TraceId(HeaderValue::from_static("4bf92f35")));
    let resp = svc.oneshot(call).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let sent: Vec<_> = seen
        .take()
        .iter()
        .map(|head| head.headers.get("x-trace-id").cloned())
        .collect();
    let trace = Some(HeaderValue::from_static("4bf92f35"));
    assert_eq!(sent, [trace.clone(), trace], "on both attempts");
}

/// `RequestHeaders` in a call's extensions: written over the codec's own headers (each
/// name's values replace those there, the URI's credentials included), every value of
/// a name kept, the body's framing left out, credentials hidden from `Debug`; on every
/// attempt a retry layer above sends.
#[tokio::test(start_paused = true)]
async fn a_calls_own_headers_go_on_every_attempt_over_the_codecs() {
    use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    use tower_jsonrpc_retry::codec::RequestHeaders;
    use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

    let server = server().await;
    server.script("sum", [Step::error(-32005), Step::ok()]);
    let seen = Seen::default();
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10))).codes([-32005]);
    let uri = with_user_info(&server, "alice:s3cret");
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(
            JsonRpcCodecLayer::new(uri)
                .header(ACCEPT, HeaderValue::from_static("application/json-rpc")),
        )
        .service(capturing(seen.clone()));
    let mut given = HeaderMap::new();
    given.append("x-tenant", HeaderValue::from_static("a"));
    given.append("x-tenant", HeaderValue::from_static("b"));
    given.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    let own = RequestHeaders::from(given)
        .with(
            http::HeaderName::from_static("x-tenant"),
            HeaderValue::from_static("c"),
        )
        .with(ACCEPT, HeaderValue::from_static("application/json"))
        .with(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"))
        .with(
            http::header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    // Names only: a credential under a name no rule knows stays out of the logs.
    let own = own.with(
        http::HeaderName::from_static("cf-access-jwt-assertion"),
        HeaderValue::from_static("eyJ0"),
    );
    assert_eq!(
        format!("{own:?}"),
        r#"RequestHeaders(["x-tenant", "accept", "authorization", "cf-access-jwt-assertion"])"#
    );
    let mut call = sum(1);
    call.extensions_mut().insert(own);
    let resp = svc.oneshot(call).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let heads = seen.take();
    assert_eq!(heads.len(), 2, "two attempts");
    for head in &heads {
        let all = |name| -> Vec<_> { head.headers.get_all(name).iter().cloned().collect() };
        assert_eq!(all("x-tenant"), ["a", "b", "c"], "`with` adds a value");
        assert_eq!(all("accept"), ["application/json"]);
        assert_eq!(all("authorization"), ["Bearer t0ken"]);
        assert!(head.headers[AUTHORIZATION].is_sensitive());
        assert!(head.headers["cf-access-jwt-assertion"].is_sensitive());
        assert!(!head.headers.contains_key(http::header::TRANSFER_ENCODING));
        assert_ne!(
            head.headers.get(http::header::CONTENT_LENGTH),
            Some(&HeaderValue::from_static("1"))
        );
    }
    // A call without them gets the codec's own.
    server.script("sum", [Step::ok()]);
    let strategy = RetryStrategy::none();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(capturing(seen.clone()));
    svc.oneshot(sum(2)).await.unwrap();
    assert!(!seen.take()[0].headers.contains_key("x-tenant"));
}

/// A call's own `Authorization` lifts the refusal of a URI user name with a colon, for
/// that call.
#[tokio::test]
async fn a_calls_own_authorization_sends_a_uri_whose_user_name_has_a_colon() {
    use tower_jsonrpc_retry::codec::RequestHeaders;
    let server = server().await;
    let seen = Seen::default();
    let uri = with_user_info(&server, "a%3Ab:pw");
    let svc = JsonRpcCodecLayer::new(uri).layer(capturing(seen.clone()));
    let mut call = sum(1);
    call.extensions_mut().insert(
        RequestHeaders::new().with(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken")),
    );
    let resp = svc.clone().oneshot(call).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(seen.take()[0].headers[AUTHORIZATION], "Bearer t0ken");
    let err = svc.oneshot(sum(2)).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    assert!(seen.take().is_empty());
}

/// A user name that decodes to one with a colon (`a%3Ab`) cannot go in `Authorization:
/// Basic` (RFC 7617): the server would split it at the colon and read `b:pw` as the
/// password; nor can a control character in either. Every call fails unsent, saying
/// why, unless a header of the caller's gives the credentials instead. A colon in the
/// password is sent, as RFC 7617 allows.
#[tokio::test]
async fn a_user_name_with_a_colon_is_not_sent_as_basic_credentials() {
    let server = server().await;
    let uri = |user_info: &str| with_user_info(&server, user_info);
    // Each refused unsent, saying why, and the password never quoted.
    let refused = async |user_info: &str, why_words: &str| {
        let seen = Seen::default();
        let err = JsonRpcCodecLayer::new(uri(user_info))
            .layer(capturing(seen.clone()))
            .oneshot(sum(1))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{user_info}: {err:?}");
        let why = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(why.contains(why_words), "{user_info}: {why}");
        assert!(!why.contains("pw"), "{why}");
        assert!(seen.take().is_empty(), "{user_info}: sent");
    };
    for user_info in ["a%3Ab:pw", "a%3ab", "%3A:"] {
        refused(user_info, "user name holds a colon").await;
    }
    let seen = Seen::default();
    let resp = JsonRpcCodecLayer::new(uri("a%3Ab:pw"))
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"))
        .layer(capturing(seen.clone()))
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let head = &seen.take()[0];
    assert_eq!(head.headers[AUTHORIZATION], "Bearer t0ken");
    assert_eq!(head.uri, server.uri(), "no user information left");
    // A control character in either is refused too (RFC 7617), unless `Authorization`
    // is given.
    for user_info in ["a%0Ab:pw", "a:pw%0D", "a:pw%7F", "a:%00"] {
        refused(user_info, "control character").await;
    }
    let head = sent_with_token(uri("a:p%0Aw")).await;
    assert_eq!(head.headers[AUTHORIZATION], "Bearer t0ken");
    // `a:p:w`, which a server reads as user `a`, password `p:w`.
    let seen = Seen::default();
    JsonRpcCodecLayer::new(uri("a:p%3Aw"))
        .layer(capturing(seen.clone()))
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(seen.take()[0].headers[AUTHORIZATION], "Basic YTpwOnc=");
}

#[tokio::test]
async fn a_configured_header_replaces_the_default_of_the_same_name() {
    let server = server().await;
    let seen = Seen::default();
    let svc = JsonRpcCodecLayer::new(server.uri())
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json-rpc"),
        )
        .layer(capturing(seen.clone()));
    svc.oneshot(sum(1)).await.unwrap();
    let heads = seen.take();
    let values: Vec<_> = heads[0].headers.get_all(CONTENT_TYPE).iter().collect();
    assert_eq!(values, ["application/json-rpc"]);
}

#[derive(Clone, Debug, PartialEq)]
struct Marker(u32);

#[tokio::test]
async fn request_extensions_reach_the_http_request() {
    let server = server().await;
    let seen = Seen::default();
    let mut svc = JsonRpcCodecLayer::new(server.uri()).layer(capturing(seen.clone()));

    let mut req = sum(1);
    req.extensions_mut().insert(Marker(7));
    ServiceExt::<Request>::ready(&mut svc)
        .await
        .unwrap()
        .call(req)
        .await
        .unwrap();

    let mut note = Request::new("sum", json!([1]));
    note.extensions_mut().insert(Marker(8));
    ServiceExt::<Request>::ready(&mut svc)
        .await
        .unwrap()
        .call(note)
        .await
        .unwrap();

    let mut b = BatchRequest::new(vec![sum(1), sum(2)]);
    b.extensions_mut().insert(Marker(9));
    ServiceExt::<BatchRequest>::ready(&mut svc)
        .await
        .unwrap()
        .call(b)
        .await
        .unwrap();

    let markers: Vec<_> = seen
        .take()
        .iter()
        .map(|head| head.extensions.get::<Marker>().cloned())
        .collect();
    assert_eq!(markers, [Some(Marker(7)), Some(Marker(8)), Some(Marker(9))]);
}

// --- single calls: decoding -------------------------------------------------------------

#[tokio::test]
async fn another_id_is_an_id_mismatch() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::raw(200, r#"{"jsonrpc":"2.0","result":3,"id":2}"#),
            // Same digits, other type: a string is not the number.
            Step::raw(200, r#"{"jsonrpc":"2.0","result":3,"id":"1"}"#),
            // A null id is only for errors.
            Step::raw(200, r#"{"jsonrpc":"2.0","result":3,"id":null}"#),
        ],
    );
    for found in [Id::Number(2), Id::from("1"), Id::Null] {
        let (err, _) = decode_error(call(&server, sum(1)).await);
        match err.decode_error() {
            Some(DecodeError::IdMismatch {
                expected, found: f, ..
            }) => {
                assert_eq!(expected, &Id::Number(1));
                assert_eq!(f, &found);
            }
            other => panic!("expected IdMismatch, got {other:?}"),
        }
    }
    assert_eq!(server.calls("sum"), 3);
}

#[tokio::test]
async fn a_null_id_error_answers_a_call() {
    let server = server().await;
    server.script(
        "sum",
        [Step::raw(
            200,
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#,
        )],
    );
    let resp = call(&server, sum(1)).await.expect("the spec allows it");
    assert_eq!(resp.id(), &Id::Null);
    let error = resp.error().expect("an error response");
    assert_eq!(error.code(), -32700);
    assert_eq!(error.message(), "Parse error");
}

#[tokio::test]
async fn an_error_response_with_the_id_is_ok() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    let resp = call(&server, sum(4)).await.unwrap();
    assert_eq!(resp.id(), &Id::Number(4));
    assert_eq!(
        resp.error().map(|e| (e.code(), e.message())),
        Some((2001, "Scripted error"))
    );
    assert!(resp.extensions().get::<StatusCode>().is_none());
}

#[tokio::test]
async fn bodies_that_are_not_a_response_are_decode_errors() {
    type Check = fn(&DecodeError) -> bool;
    let cases: Vec<(&str, Step, Check)> = vec![
        ("malformed", Step::malformed(), |e| {
            matches!(e, DecodeError::Json(_))
        }),
        (
            "version 1.0",
            Step::raw(200, r#"{"jsonrpc":"1.0","result":3,"id":1}"#),
            |e| matches!(e, DecodeError::Version(Some(v)) if v.contains("1.0")),
        ),
        (
            "version missing, and no id (a proxy's error)",
            Step::raw(200, r#"{"error":"rate limited"}"#),
            |e| matches!(e, DecodeError::Invalid(_)),
        ),
        (
            "result and error",
            Step::raw(
                200,
                r#"{"jsonrpc":"2.0","result":3,"error":{"code":1,"message":"m"},"id":1}"#,
            ),
            |e| matches!(e, DecodeError::ResultAndError),
        ),
        (
            "neither result nor error",
            Step::raw(200, r#"{"jsonrpc":"2.0","id":1}"#),
            |e| matches!(e, DecodeError::MissingResult),
        ),
        (
            "non-UTF-8 bytes",
            Step::raw(
                200,
                &b"{\"jsonrpc\":\"2.0\",\"result\":\"\xff\xfe\",\"id\":1}"[..],
            ),
            |e| matches!(e, DecodeError::Json(_)),
        ),
        ("empty body", Step::raw(200, ""), |e| {
            matches!(e, DecodeError::EmptyBody)
        }),
        ("whitespace body", Step::raw(200, " \r\n\t"), |e| {
            matches!(e, DecodeError::EmptyBody)
        }),
        // A form feed is ASCII whitespace but not JSON's: the body is not JSON.
        ("form feed body", Step::raw(200, " \x0c "), |e| {
            matches!(e, DecodeError::Json(_))
        }),
        (
            "batch-shaped answer",
            Step::raw(200, r#"[{"jsonrpc":"2.0","result":3,"id":1}]"#),
            |e| matches!(e, DecodeError::ShapeMismatch),
        ),
        ("a bare number", Step::raw(200, "3"), |e| {
            matches!(e, DecodeError::NotAnObject)
        }),
    ];
    let server = server().await;
    server.script("sum", cases.iter().map(|(_, step, _)| step.clone()));
    for (name, _, check) in &cases {
        let (err, debug) = decode_error(call(&server, sum(1)).await);
        let decoded = err.decode_error().expect("a DecodeError in source()");
        assert!(check(decoded), "{name}: {decoded:?}");
        assert!(
            err.source().is_some_and(|s| s.is::<DecodeError>()),
            "{name}: {debug}"
        );
    }
    assert_eq!(server.calls("sum"), cases.len());
}

// --- notifications ----------------------------------------------------------------------

#[tokio::test]
async fn a_notification_gets_a_null_response_on_204() {
    let server = server().await;
    let resp = call(&server, Request::new("sum", json!([1, 2])))
        .await
        .unwrap();
    assert_eq!(resp.id(), &Id::Null);
    assert_eq!(resp.result(), Some(&Value::Null));
    assert_eq!(server.calls("sum"), 1);
    assert_eq!(
        server.bodies_json(),
        [json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2]})]
    );
}

#[tokio::test]
async fn a_notification_answered_with_a_body_does_not_read_it() {
    let server = server().await;
    server.script(
        "log",
        [
            Step::raw(200, "not json at all"),
            Step::oversized(4096),
            Step::truncated(),
        ],
    );
    for what in ["garbage", "over the limit", "truncated"] {
        let resp = JsonRpcCodecLayer::new(server.uri())
            .response_limit(1024)
            .layer(http())
            .oneshot(Request::new("log", json!(["line"])))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(resp.id(), &Id::Null, "{what}");
        assert_eq!(resp.result(), Some(&Value::Null), "{what}");
    }
    assert_eq!(server.calls("log"), 3);
}

#[tokio::test]
async fn a_notification_refused_by_status_is_a_status_error() {
    let server = server().await;
    server.script("log", [Step::status(503).retry_after("4")]);
    let err = call(&server, Request::new("log", json!(["line"])))
        .await
        .unwrap_err();
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
}

// --- batches ----------------------------------------------------------------------------

#[tokio::test]
async fn batch_items_are_matched_by_id_in_any_order() {
    let server = server().await;
    server.reverse_batches(true);
    let req = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("echo", json!(["note"])),
        Request::new("sum", json!([3, 4])).with_id("b"),
        Request::new("echo", json!({"k": "v"})).with_id(3),
    ]);
    let resp = batch(&server, req).await.unwrap();
    let items: Vec<_> = resp
        .items()
        .iter()
        .map(|r| (r.id().clone(), r.result().cloned()))
        .collect();
    assert_eq!(
        items,
        [
            (Id::Number(1), Some(json!(3))),
            (Id::from("b"), Some(json!(7))),
            (Id::Number(3), Some(json!({"k": "v"}))),
        ]
    );
    assert!(resp.batch_error().is_none());
    assert!(resp.unmatched().is_empty());
    assert_eq!(server.http_requests(), 1);
    assert_eq!(
        server.bodies_json(),
        [json!([
            {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1},
            {"jsonrpc": "2.0", "method": "echo", "params": ["note"]},
            {"jsonrpc": "2.0", "method": "sum", "params": [3, 4], "id": "b"},
            {"jsonrpc": "2.0", "method": "echo", "params": {"k": "v"}, "id": 3},
        ])]
    );
}

fn two_sums() -> BatchRequest {
    BatchRequest::new(vec![sum(1), sum(2)])
}

#[tokio::test]
async fn batch_decoding_errors() {
    let server = server().await;
    server.script(
        "sum",
        [
            // Missing item: only id 1 is answered.
            Step::raw(200, r#"[{"jsonrpc":"2.0","result":3,"id":1}]"#),
            Step::ok(),
            // Duplicate id.
            Step::raw(
                200,
                r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":3,"id":1}]"#,
            ),
            Step::ok(),
            // An id that was not sent.
            Step::raw(
                200,
                r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":3,"id":9}]"#,
            ),
            Step::ok(),
            // A single success object.
            Step::raw(200, r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
            Step::ok(),
        ],
    );
    let mut errors = Vec::new();
    for _ in 0..4 {
        let err = batch(&server, two_sums())
            .await
            .expect_err("a decode error");
        assert!(err.is_decode() && !err.is_status(), "{err:?}");
        assert_eq!(err.status(), Some(StatusCode::OK));
        errors.push(format!("{:?}", err.decode_error().expect("a DecodeError")));
    }
    assert_eq!(
        errors,
        [
            format!("{:?}", DecodeError::MissingItems(vec![Id::Number(2)])),
            format!("{:?}", DecodeError::UnexpectedItem(Id::Number(1))),
            format!("{:?}", DecodeError::UnexpectedItem(Id::Number(9))),
            format!("{:?}", DecodeError::ShapeMismatch),
        ]
    );
}

#[tokio::test]
async fn an_all_notification_batch_gets_no_items_on_204() {
    let server = server().await;
    let req = BatchRequest::new(vec![
        Request::new("sum", json!([1])),
        Request::new("echo", json!([2])),
    ]);
    let resp = batch(&server, req).await.unwrap();
    assert!(resp.items().is_empty());
    assert!(resp.batch_error().is_none());
    assert_eq!(server.calls("sum") + server.calls("echo"), 2);
    assert_eq!(server.http_requests(), 1);
}

#[tokio::test]
async fn an_all_notification_batch_refused_by_status_is_a_status_error() {
    let server = server().await;
    server.script("sum", [Step::status(503).retry_after("2")]);
    let req = BatchRequest::new(vec![
        Request::new("sum", json!([1])),
        Request::new("echo", json!([2])),
    ]);
    let err = batch(&server, req).await.expect_err("503 with no body");
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn a_batch_level_error_is_kept_and_copied_to_every_item() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::raw(
                200,
                r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#,
            ),
            Step::ok(),
            Step::status_with_error(429, -32005).retry_after("7"),
            Step::ok(),
        ],
    );

    let resp = batch(&server, two_sums()).await.unwrap();
    let error = resp.batch_error().expect("a batch-level error");
    assert_eq!((error.code(), error.message()), (-32600, "Invalid Request"));
    let items: Vec<_> = resp
        .items()
        .iter()
        .map(|r| (r.id().clone(), r.error().map(|e| e.code())))
        .collect();
    assert_eq!(
        items,
        [(Id::Number(1), Some(-32600)), (Id::Number(2), Some(-32600))]
    );
    assert!(resp.extensions().get::<StatusCode>().is_none());

    let resp = batch(&server, two_sums()).await.unwrap();
    assert_eq!(resp.batch_error().map(|e| e.code()), Some(-32005));
    let items: Vec<_> = resp
        .items()
        .iter()
        .map(|r| (r.id().clone(), r.error().map(|e| e.code())))
        .collect();
    assert_eq!(
        items,
        [(Id::Number(1), Some(-32005)), (Id::Number(2), Some(-32005))]
    );
    assert_eq!(
        resp.extensions().get::<StatusCode>(),
        Some(&StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(
        resp.extensions().get::<RetryAfter>(),
        Some(&RetryAfter::new(Duration::from_secs(7)))
    );
}

#[tokio::test]
async fn a_batch_refused_by_status_is_a_status_error() {
    let server = server().await;
    server.script("sum", [Step::status(502)]);
    let err = batch(&server, two_sums()).await.unwrap_err();
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn a_batch_giving_two_calls_one_id_is_never_sent() {
    let server = server().await;
    let batch = BatchRequest::new(vec![sum(1), sum(2), sum(1)]);
    let svc = JsonRpcCodecLayer::new(server.uri()).layer(http());
    let err = svc.oneshot(batch).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    assert!(
        matches!(
            err.decode_error(),
            Some(DecodeError::DuplicateId(Id::Number(1)))
        ),
        "{err:?}"
    );
    assert_eq!(server.calls("sum"), 0, "nothing was sent");
}

#[tokio::test]
async fn params_that_are_not_an_array_or_an_object_are_never_sent() {
    let server = server().await;
    for params in [json!(5), json!("text"), json!(true)] {
        let err = call(&server, Request::new("sum", params.clone()).with_id(1))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{params}: {err:?}");
        let batch = BatchRequest::new(vec![sum(1), Request::new("sum", params).with_id(2)]);
        let svc = JsonRpcCodecLayer::new(server.uri()).layer(http());
        let err = svc.oneshot(batch).await.unwrap_err();
        assert!(err.is_invalid_request(), "{err:?}");
    }
    assert_eq!(server.calls("sum"), 0, "nothing was sent");
}

/// A request the codec refuses unsent is retried by no rule, not even one matching the
/// refusal's source (`DecodeError`, for garbled answers) or every error: each attempt
/// would be refused the same way, after the backoff's waits.
#[tokio::test(start_paused = true)]
async fn a_request_refused_unsent_is_retried_by_no_rule() {
    use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    use tower_jsonrpc_retry::{GiveUpReason, RetryStrategy};

    let server = server().await;
    let out_of_range: Uri = "http://127.0.0.1:85450/".parse().unwrap();
    let cases = [
        (server.uri(), json!(5), true),
        (server.uri(), json!(5), false),
        (out_of_range.clone(), json!([1, 2]), true),
        (out_of_range, json!([1, 2]), false),
    ];
    for (uri, params, by_type) in cases {
        let retries = Arc::new(AtomicUsize::new(0));
        let counted = retries.clone();
        let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(10)));
        let strategy = if by_type {
            strategy.retry_on_error::<DecodeError>()
        } else {
            strategy.retry_if(|_| true)
        }
        .on_retry(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let start = Instant::now();
        let err = common::stack_to(uri.clone(), strategy)
            .oneshot(Request::new("sum", params).with_id(1))
            .await
            .unwrap_err();
        assert!(err.is_invalid_request(), "{uri}: {err:?}");
        assert_eq!(
            (retries.load(Ordering::SeqCst), start.elapsed()),
            (0, Duration::ZERO),
            "{uri} {by_type}: {err}"
        );
        let gave_up = err.gave_up().unwrap();
        assert_eq!(
            (gave_up.retries(), gave_up.reason()),
            (0, GiveUpReason::NotRetryable)
        );
    }
    assert_eq!(server.http_requests(), 0, "nothing was sent");
}

// --- HTTP status ------------------------------------------------------------------------

#[tokio::test]
async fn non_2xx_with_a_json_rpc_body_is_that_response() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::status_with_error(429, -32005),
            Step::status_with_error(429, -32005).retry_after("7"),
        ],
    );

    let resp = call(&server, sum(1)).await.expect("a JSON-RPC response");
    assert_eq!(resp.id(), &Id::Number(1));
    assert_eq!(
        resp.error().map(|e| (e.code(), e.message())),
        Some((-32005, "Server error"))
    );
    assert_eq!(
        resp.extensions().get::<StatusCode>(),
        Some(&StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(resp.extensions().get::<RetryAfter>(), None);

    let resp = call(&server, sum(2)).await.expect("a JSON-RPC response");
    assert_eq!(resp.id(), &Id::Number(2));
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(
        resp.extensions().get::<StatusCode>(),
        Some(&StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(
        resp.extensions().get::<RetryAfter>(),
        Some(&RetryAfter::new(Duration::from_secs(7)))
    );
}

#[tokio::test]
async fn retry_after_on_a_200_is_recorded_too() {
    let server = server().await;
    server.script("sum", [Step::ok().retry_after("3")]);
    let resp = call(&server, sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(
        resp.extensions().get::<RetryAfter>(),
        Some(&RetryAfter::new(Duration::from_secs(3)))
    );
    assert_eq!(resp.extensions().get::<StatusCode>(), None);
}

#[tokio::test]
async fn non_2xx_without_a_json_rpc_body_is_a_status_error() {
    let server = server().await;
    server.script("sum", [Step::status(503).retry_after("2")]);
    let err = call(&server, sum(1)).await.unwrap_err();
    assert!(err.is_status(), "{err:?}");
    assert!(!err.is_transport() && !err.is_decode() && !err.is_timeout() && !err.is_connect());
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(err.decode_error().is_none());
    assert!(err.source().is_none(), "nothing below a status");
    assert_eq!(err.to_string(), "HTTP status 503 Service Unavailable");
    let debug = format!("{err:?}");
    assert!(
        debug.contains("kind: Status") && debug.contains("503") && debug.contains("2s"),
        "{debug}"
    );
}

#[tokio::test]
async fn non_2xx_with_a_json_rpc_answer_to_another_id_is_a_status_error() {
    let server = server().await;
    let other_id = r#"{"jsonrpc":"2.0","error":{"code":-32029,"message":"rate limited"},"id":0}"#;
    server.script("sum", [Step::raw(429, other_id).retry_after("7")]);
    let err = call(&server, sum(1)).await.unwrap_err();
    assert!(err.is_status() && !err.is_decode(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn non_2xx_with_a_body_that_is_not_json_rpc_is_a_status_error() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::raw(502, "<html>bad gateway</html>"),
            Step::raw(500, r#"{"jsonrpc":"2.0","result":3}"#),
        ],
    );
    for expected in [StatusCode::BAD_GATEWAY, StatusCode::INTERNAL_SERVER_ERROR] {
        let err = call(&server, sum(1)).await.unwrap_err();
        assert!(err.is_status() && !err.is_decode(), "{err:?}");
        assert_eq!(err.status(), Some(expected));
        assert_eq!(err.retry_after(), None);
    }
}

#[tokio::test]
async fn retry_after_as_an_http_date() {
    let server = server().await;
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let past = "Wed, 21 Oct 2015 07:28:00 GMT";
    server.script(
        "sum",
        [
            Step::status(503).retry_after(future.as_str()),
            Step::status(429).retry_after(past),
        ],
    );
    let err = call(&server, sum(1)).await.unwrap_err();
    let delay = err.retry_after().expect("an HTTP-date is read");
    // The date has a resolution of one second, and some time passes on the real clock.
    assert!(
        (Duration::from_secs(110)..=Duration::from_secs(120)).contains(&delay),
        "{delay:?}"
    );
    let err = call(&server, sum(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(Duration::ZERO), "a past date");
}

#[tokio::test]
async fn garbage_retry_after_is_none() {
    let server = server().await;
    let garbage = ["soon", "-1.5e3", "1.5", ""];
    server.script(
        "sum",
        garbage.iter().map(|g| Step::status(503).retry_after(*g)),
    );
    for g in garbage {
        let err = call(&server, sum(1)).await.unwrap_err();
        assert!(err.is_status(), "{g:?}: {err:?}");
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{g:?}");
        assert_eq!(err.retry_after(), None, "{g:?}");
    }
}

// --- body size limit --------------------------------------------------------------------

/// The length of `Step::oversized`'s body around its string of `x` for id 1.
const SKELETON: usize = r#"{"jsonrpc":"2.0","result":""#.len() + r#"","id":1}"#.len();

#[tokio::test]
async fn a_declared_length_over_the_limit_is_too_large() {
    let server = server().await;
    server.script("sum", [Step::oversized(101), Step::oversized(100)]);
    let codec = JsonRpcCodecLayer::new(server.uri()).response_limit(100);

    let err = codec.layer(http()).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");
    assert!(!err.is_body() && !err.is_decode() && !err.is_transport());
    // The answer's status is kept, as for a decode error.
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 100 bytes"
    );
    assert!(
        format!("{err:?}").contains("kind: BodyTooLarge(100)"),
        "{err:?}"
    );

    // Exactly at the limit is fine.
    let resp = codec.layer(http()).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!("x".repeat(100 - SKELETON))));
}

/// A response body of unknown length: these chunks, then (when `cycle`) the same again,
/// forever. Counts the bytes it produced.
struct Streamed {
    chunks: VecDeque<Bytes>,
    cycle: bool,
    produced: Arc<AtomicUsize>,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(chunk) = this.chunks.pop_front() else {
            return Poll::Ready(None);
        };
        if this.cycle {
            this.chunks.push_back(chunk.clone());
        }
        this.produced.fetch_add(chunk.len(), Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

/// An HTTP service answering every request with a [`Streamed`] body.
fn streaming(
    chunks: Vec<&'static str>,
    cycle: bool,
    produced: Arc<AtomicUsize>,
) -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Streamed>,
    Error = Infallible,
    Future = std::future::Ready<Result<http::Response<Streamed>, Infallible>>,
> + Clone {
    tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let body = Streamed {
            chunks: chunks
                .iter()
                .map(|c| Bytes::from_static(c.as_bytes()))
                .collect(),
            cycle,
            produced: produced.clone(),
        };
        assert_eq!(body.size_hint().exact(), None, "no length is known");
        std::future::ready(Ok(http::Response::new(body)))
    })
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_found_while_streaming() {
    let produced = Arc::new(AtomicUsize::new(0));
    const CHUNK: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; // 64 bytes
    let svc = JsonRpcCodecLayer::new(Uri::from_static("http://127.0.0.1:9/"))
        .response_limit(1000)
        .layer(streaming(vec![CHUNK], true, produced.clone()));
    // The body never ends: only the limit can end the read.
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");
    assert!(!err.is_body());
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 1000 bytes"
    );
    assert!(
        find::<http_body_util::LengthLimitError>(&err).is_some(),
        "{err:?}"
    );
    let produced = produced.load(Ordering::SeqCst);
    assert!(
        (1000..=1000 + CHUNK.len()).contains(&produced),
        "read {produced} bytes"
    );
}

#[tokio::test]
async fn a_failure_status_with_a_body_over_the_limit_is_a_status_error() {
    // A gateway's large error page: the status is the answer, its body is not needed,
    // whether its length is declared or found while streaming.
    let server = server().await;
    let page = format!("<html>{}</html>", "x".repeat(500));
    server.script("sum", [Step::raw(503, page).retry_after("2")]);
    let codec = JsonRpcCodecLayer::new(server.uri()).response_limit(100);
    let err = codec.layer(http()).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_status() && !err.is_body_too_large(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));

    const CHUNK: &str = "<html>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    let endless = streaming(vec![CHUNK], true, Arc::default()).map_response(|mut resp| {
        *resp.status_mut() = StatusCode::BAD_GATEWAY;
        resp
    });
    let err = codec.layer(endless).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_status() && !err.is_body_too_large(), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
}

#[tokio::test]
async fn a_streamed_body_within_the_limit_is_decoded() {
    let produced = Arc::new(AtomicUsize::new(0));
    let chunks = vec![
        r#"{"jsonrpc":"#,
        r#""2.0","res"#,
        r#"ult":[1,2,3],"#,
        r#""id":1}"#,
    ];
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let svc = JsonRpcCodecLayer::new(Uri::from_static("http://127.0.0.1:9/"))
        .response_limit(total)
        .layer(streaming(chunks, false, produced.clone()));
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!([1, 2, 3])));
    assert_eq!(produced.load(Ordering::SeqCst), total);
}

#[tokio::test]
async fn the_default_limit_is_ten_mib() {
    assert_eq!(DEFAULT_BODY_LIMIT, 10 * 1024 * 1024);
    let limit = u64::try_from(DEFAULT_BODY_LIMIT).unwrap();
    let server = server().await;
    server.script("sum", [Step::oversized(limit + 1), Step::oversized(limit)]);

    let err = call(&server, sum(1)).await.unwrap_err();
    assert!(err.is_body_too_large(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 10485760 bytes"
    );

    let resp = call(&server, sum(1)).await.expect("exactly the limit");
    let result = resp.result().and_then(Value::as_str).expect("a string");
    assert_eq!(result.len(), DEFAULT_BODY_LIMIT - SKELETON);
}

// --- transport errors, from real hyper-util errors --------------------------------------

#[tokio::test]
async fn a_refused_port_is_a_connect_error() {
    let (_held, refusing) = common::refusing();
    let uri: Uri = format!("http://{refusing}/").parse().unwrap();
    let err = JsonRpcCodecLayer::new(uri)
        .layer(http())
        .oneshot(sum(1))
        .await
        .unwrap_err();
    assert!(err.is_transport() && err.is_connect(), "{err:?}");
    assert!(!err.is_timeout() && !err.is_status() && !err.is_decode() && !err.is_body());
    assert!(!err.is_reset(), "{err:?}");
    assert_eq!(err.status(), None);
    assert_eq!(err.retry_after(), None);
    let hyper_util_error =
        find::<hyper_util::client::legacy::Error>(&err).expect("hyper-util's error in the chain");
    assert!(hyper_util_error.is_connect());
    assert_eq!(err.to_string(), "HTTP request failed: could not connect");
    assert!(format!("{err:?}").contains("kind: Transport"), "{err:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_not_a_connect_error() {
    let server = server().await;
    server.script("sum", [Step::drop_connection()]);
    let err = call(&server, sum(1)).await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert!(
        !err.is_connect() && !err.is_timeout() && !err.is_body(),
        "{err:?}"
    );
    assert!(err.is_reset(), "{err:?}");
    let hyper_error = find::<hyper::Error>(&err).expect("a hyper::Error in the chain");
    assert!(hyper_error.is_incomplete_message(), "{hyper_error:?}");
    assert_eq!(err.to_string(), "HTTP request failed: the connection broke");
    assert_eq!(server.calls("sum"), 1, "the request was read");
}

#[tokio::test]
async fn a_truncated_body_is_a_body_error() {
    let server = server().await;
    server.script("sum", [Step::truncated()]);
    let err = call(&server, sum(1)).await.unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert!(err.is_reset(), "a body cut short: {err:?}");
    assert!(!err.is_transport() && !err.is_connect() && !err.is_body_too_large());
    assert!(!err.is_decode() && !err.is_timeout());
    let io_error = find::<io::Error>(&err).expect("an io::Error in the chain");
    assert_eq!(io_error.kind(), io::ErrorKind::UnexpectedEof);
    assert!(find::<hyper::Error>(&err).is_some(), "{err:?}");
    // The class in the message too, for a log line that prints only it.
    assert_eq!(
        err.to_string(),
        "response body could not be read: the connection broke"
    );
    assert!(format!("{err:?}").contains("kind: Body"), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_below_the_codec_is_a_timeout() {
    let server = server().await;
    server.script("sum", [Step::timeout()]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .layer(TimeoutLayer::new(Duration::from_millis(200)))
        .service(http());
    let start = Instant::now();
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert!(err.is_timeout() && err.is_transport(), "{err:?}");
    assert!(!err.is_connect() && !err.is_status() && !err.is_reset());
    assert!(find::<Elapsed>(&err).is_some(), "{err:?}");
    assert_eq!(err.to_string(), "HTTP request failed: timed out");
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_that_does_not_fire_changes_nothing() {
    let server = server().await;
    server.script("sum", [Step::delay(Duration::from_millis(150))]);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .layer(TimeoutLayer::new(Duration::from_millis(200)))
        .service(http());
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(start.elapsed(), Duration::from_millis(150));
}

// --- the error type ---------------------------------------------------------------------

/// `codec::Error` is `Send + Sync + 'static` (so it boxes into a `BoxError`); this fails
/// to compile otherwise.
const _: () = {
    const fn assert_bounds<T: StdError + Send + Sync + 'static>() {}
    assert_bounds::<codec::Error>();
};

#[tokio::test]
async fn an_empty_batch_is_refused_unsent() {
    use tower::ServiceExt;
    let server = FlakyServer::start().await.unwrap();
    let svc = JsonRpcCodecLayer::new(server.uri()).layer(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Full<bytes::Bytes>>(),
    );
    let err = svc.oneshot(BatchRequest::default()).await.unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    assert!(matches!(err.decode_error(), Some(DecodeError::EmptyBatch)));
    assert_eq!(err.to_string(), "invalid request, not sent");
    assert_eq!(server.http_requests(), 0);
}

#[test]
fn debug_output_never_shows_credentials() {
    let uri: Uri = "https://user:pw-secret@mainnet.example:8443/v3/key-secret?apikey=q-secret"
        .parse()
        .unwrap();
    let mut more = HeaderMap::new();
    more.insert(http::header::COOKIE, HeaderValue::from_static("c-secret"));
    more.append("x-trace", HeaderValue::from_static("one"));
    more.append("x-trace", HeaderValue::from_static("two"));
    let layer = JsonRpcCodecLayer::new(uri.clone())
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer a-secret"))
        .header(
            http::HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("k-secret"),
        )
        .header(
            http::HeaderName::from_static("x-apikey"),
            HeaderValue::from_static("k2-secret"),
        )
        .headers(more);
    let client = tower_jsonrpc_retry::Client::builder(uri)
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer a-secret"));
    let codec = layer.layer(http());
    for shown in [
        format!("{layer:?}"),
        format!("{client:?}"),
        format!("{codec:?}"),
    ] {
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("https://mainnet.example:8443/…"), "{shown}");
    }
    // Values that are not credentials stay readable, and every value of a repeated
    // header is kept.
    let shown = format!("{layer:?}");
    assert!(
        shown.contains("\"one\"") && shown.contains("\"two\""),
        "{shown}"
    );
    assert!(shown.contains("application/json"), "{shown}");
}

#[tokio::test]
async fn headers_replace_the_defaults_and_keep_repeated_values() {
    let server = server().await;
    let seen = Seen::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json-rpc"),
    );
    headers.append("x-trace", HeaderValue::from_static("one"));
    headers.append("x-trace", HeaderValue::from_static("two"));
    let svc = JsonRpcCodecLayer::new(server.uri())
        .headers(headers)
        .layer(capturing(seen.clone()));
    svc.oneshot(sum(1)).await.unwrap();
    let heads = seen.take();
    let content_types: Vec<_> = heads[0].headers.get_all(CONTENT_TYPE).iter().collect();
    assert_eq!(content_types, ["application/json-rpc"]);
    let traces: Vec<_> = heads[0].headers.get_all("x-trace").iter().collect();
    assert_eq!(traces, ["one", "two"]);
}

#[test]
fn the_codec_tells_the_uri_it_sends_to() {
    let uri: http::Uri = "http://127.0.0.1:8545/rpc".parse().unwrap();
    let codec = tower::Layer::layer(
        &JsonRpcCodecLayer::new(uri.clone()),
        tower::service_fn(|_: http::Request<Full<Bytes>>| async {
            Ok::<_, std::io::Error>(http::Response::new(Full::<Bytes>::default()))
        }),
    );
    assert_eq!(codec.uri(), &uri);
}

/// An answer in a content coding (a server may use any when the request names none)
/// fails to decode with an error that names the coding and what to do, not only where
/// the bytes stopped being JSON; one in `identity` says nothing of it.
#[tokio::test]
async fn a_content_encoded_answer_is_a_decode_error_that_names_the_coding() {
    let server = server().await;
    let gzip_magic: &[u8] = &[0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00];
    server.script(
        "sum",
        [
            Step::raw(200, gzip_magic).header("content-encoding", "gzip"),
            Step::raw(200, "not json").header("content-encoding", "identity"),
        ],
    );
    let err = call(&server, Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("content-encoded (gzip)"), "{shown}");
    assert!(shown.contains("DecompressionLayer"), "{shown}");
    let err = call(&server, Request::new("sum", json!([1, 2])).with_id(2))
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(err.to_string(), "invalid JSON-RPC response");
}

/// The body's framing is the HTTP client's: a `Content-Length` or `Transfer-Encoding`
/// given to the codec is not sent (hyper would trust the length and cut the body short,
/// or wait for bytes that never come), and the call goes through whole.
#[tokio::test]
async fn framing_headers_given_to_the_codec_are_not_sent() {
    use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

    let server = server().await;
    let mut extra = HeaderMap::new();
    extra.insert(TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    extra.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    extra.insert("x-kept", HeaderValue::from_static("yes"));
    let svc = JsonRpcCodecLayer::new(server.uri())
        .header(CONTENT_LENGTH, HeaderValue::from_static("2"))
        .headers(extra)
        .layer(http());
    let resp = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let sent = server.headers();
    let sent = sent.first().unwrap();
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    assert_eq!(sent[CONTENT_LENGTH], body.len().to_string().as_str());
    assert_eq!(sent.get(TRANSFER_ENCODING), None);
    assert_eq!(sent["x-kept"], "yes");
}

/// Never ready: with `fails`, a readiness error; without, pending for ever (so that
/// `LoadShed` over it sheds every call).
#[derive(Clone)]
struct NeverReady {
    fails: bool,
}

impl Service<http::Request<Full<Bytes>>> for NeverReady {
    type Response = http::Response<Full<Bytes>>;
    type Error = tower_jsonrpc_retry::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.fails {
            Poll::Ready(Err("the pool is closed".into()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, _: http::Request<Full<Bytes>>) -> Self::Future {
        unreachable!("never ready, never called")
    }
}

/// A request the service below the codec never took says so in the message: its
/// readiness error, or `LoadShed`'s refusal.
#[tokio::test]
async fn a_request_never_taken_below_the_codec_says_not_sent() {
    let uri: Uri = "http://127.0.0.1:1/".parse().unwrap();
    let refused = JsonRpcCodecLayer::new(uri.clone())
        .layer(NeverReady { fails: true })
        .oneshot(sum(1))
        .await
        .unwrap_err();
    assert!(refused.is_transport(), "{refused:?}");
    assert_eq!(refused.to_string(), "HTTP request failed: not sent");
    let shed = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(uri))
        .load_shed()
        .service(NeverReady { fails: false })
        .oneshot(sum(1))
        .await
        .unwrap_err();
    assert!(
        find::<tower::load_shed::error::Overloaded>(&shed).is_some(),
        "{shed:?}"
    );
    assert_eq!(shed.to_string(), "HTTP request failed: not sent");
}

/// Answers every request at once with the answer `{"result":3}` to call 1.
fn answering_at_once() -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<http::Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send {
    tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        Ok(http::Response::new(Full::from(
            r#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        )))
    })
}

/// A call's future first polled after its attempt timeout (or deadline) has passed, its
/// answer there all along (a task polled late on a busy runtime): the answer, as tower's
/// `Timeout` gives it, not a timeout (and, under a retry rule on timeouts, the call sent
/// again): at the codec, and through the retry layer to its deadline. (The HTTP-level
/// layer sends nothing before its future is polled, and reads its answers through the
/// same codec.)
#[tokio::test(start_paused = true)]
async fn an_answer_there_when_the_timer_has_fired_too_is_the_answer() {
    use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    use tower_jsonrpc_retry::{ErrorClass, JsonRpcRetryLayer, RetryStrategy};

    let late = Duration::from_secs(2);
    let mut timeout = tower::timeout::Timeout::new(answering_at_once(), Duration::from_secs(1));
    let call = timeout
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(Full::from("")));
    tokio::time::advance(late).await;
    assert!(call.await.is_ok(), "tower's Timeout gives the answer");

    let codec = || {
        JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
            .attempt_timeout(Duration::from_secs(1))
            .layer(answering_at_once())
    };
    let sum = || Request::new("sum", json!([1, 2])).with_id(1);
    let mut alone = codec();
    let call = ServiceExt::<Request>::ready(&mut alone)
        .await
        .unwrap()
        .call(sum());
    tokio::time::advance(late).await;
    assert_eq!(call.await.unwrap().result(), Some(&json!(3)));

    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(Duration::from_secs(1));
    // A zero attempt timeout too: the answer is there at the first poll.
    let mut zero = JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
        .attempt_timeout(Duration::ZERO)
        .layer(answering_at_once());
    let call = ServiceExt::<Request>::ready(&mut zero)
        .await
        .unwrap()
        .call(sum());
    assert_eq!(call.await.unwrap().result(), Some(&json!(3)));

    let mut retried = JsonRpcRetryLayer::new(strategy).layer(codec());
    let call = ServiceExt::<Request>::ready(&mut retried)
        .await
        .unwrap()
        .call(sum());
    tokio::time::advance(late).await;
    assert_eq!(call.await.unwrap().result(), Some(&json!(3)));
}
