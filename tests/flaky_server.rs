//! `FlakyServer` driven by a real hyper-util client over loopback HTTP.

mod common;

use std::error::Error as _;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{self, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower_jsonrpc_retry::jsonrpc::Id;
use tower_jsonrpc_retry::test_util::{Chaos, Fault, FlakyServer, Step};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn start() -> FlakyServer {
    FlakyServer::start().await.expect("bind 127.0.0.1:0")
}

/// POSTs `body` as JSON and returns the response head, or the client's error.
async fn send(
    client: &HttpClient,
    server: &FlakyServer,
    body: impl Into<Bytes>,
) -> Result<http::Response<Incoming>, legacy::Error> {
    let request = http::Request::post(server.uri())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()))
        .expect("valid request");
    client.request(request).await
}

/// A whole response.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// POSTs `body` on a fresh client and reads the whole response.
async fn post(server: &FlakyServer, body: impl Into<Bytes>) -> Reply {
    let response = send(&client(), server, body).await.expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a whole body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// POSTs a call of `method` with `params` and id 1, and returns the parsed response.
async fn call(server: &FlakyServer, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let reply = post(server, body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    reply.json()
}

fn sum_call(id: Value) -> String {
    json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": id}).to_string()
}

fn find<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

// --- built-in methods ---------------------------------------------------------------

#[tokio::test]
async fn sum_positional_and_named() {
    let server = start().await;
    assert_eq!(
        call(&server, "sum", json!([1, 2, 3])).await,
        json!({"jsonrpc": "2.0", "result": 6, "id": 1})
    );
    assert_eq!(
        call(&server, "sum", json!({"a": 10, "b": -4})).await["result"],
        6
    );
    assert_eq!(call(&server, "sum", json!([0.5, 1])).await["result"], 1.5);
}

#[tokio::test]
async fn sum_of_non_numbers_is_invalid_params() {
    let server = start().await;
    for params in [json!([1, "2"]), json!({"a": [1]})] {
        let response = call(&server, "sum", params).await;
        assert_eq!(response["error"]["code"], -32602, "{response}");
        assert_eq!(response["id"], 1);
        assert!(response.get("result").is_none());
    }
    // No params at all is not an array or an object either.
    let reply = post(&server, r#"{"jsonrpc":"2.0","method":"sum","id":2}"#).await;
    assert_eq!(reply.json()["error"]["code"], -32602);
}

#[tokio::test]
async fn echo_returns_params_and_ids_are_echoed_exactly() {
    let server = start().await;
    let params = json!({"nested": [1, "two", null, {"x": true}]});
    assert_eq!(
        call(&server, "echo", params.clone()).await["result"],
        params
    );

    for id in [
        json!(0),
        json!(-7),
        json!(18446744073709551615_u64),
        json!("abc"),
        json!(null),
    ] {
        let body = json!({"jsonrpc": "2.0", "method": "echo", "params": [id], "id": id});
        let reply = post(&server, body.to_string()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "a null id is a call, not a notification"
        );
        assert_eq!(
            reply.json(),
            json!({"jsonrpc": "2.0", "result": [id], "id": id})
        );
    }
    let reply = post(&server, r#"{"jsonrpc":"2.0","method":"echo","id":1}"#).await;
    assert_eq!(reply.json()["result"], Value::Null);
}

#[tokio::test]
async fn unknown_method_is_method_not_found() {
    let server = start().await;
    let reply = post(
        &server,
        r#"{"jsonrpc":"2.0","method":"nope","params":[],"id":"q"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        r#"{"error":{"code":-32601,"message":"Method not found"},"id":"q","jsonrpc":"2.0"}"#
    );
    assert_eq!(server.calls("nope"), 1);
}

#[tokio::test]
async fn handle_adds_and_replaces_methods() {
    let server = start().await;
    server.handle("mul", |params: &Value| {
        let numbers = params
            .as_array()
            .ok_or((-32602, "expected an array".to_owned()))?;
        Ok(Value::from(
            numbers.iter().filter_map(Value::as_i64).product::<i64>(),
        ))
    });
    assert_eq!(call(&server, "mul", json!([3, 4, 5])).await["result"], 60);
    assert_eq!(
        call(&server, "mul", json!({"a": 1})).await["error"],
        json!({"code": -32602, "message": "expected an array"})
    );

    server.handle("echo", |_: &Value| Err((1234, "echo is off".to_owned())));
    assert_eq!(
        call(&server, "echo", json!([1])).await["error"],
        json!({"code": 1234, "message": "echo is off"})
    );
}

// --- protocol errors ----------------------------------------------------------------

#[tokio::test]
async fn invalid_json_is_parse_error_with_null_id() {
    let server = start().await;
    let reply = post(&server, r#"{"jsonrpc":"2.0","method":"sum","#).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null})
    );
    assert_eq!(server.calls("sum"), 0);
}

#[tokio::test]
async fn invalid_requests_get_invalid_request_with_null_id() {
    let server = start().await;
    server.script("sum", [Step::error(1)]);
    for body in [
        r#"{"method":"sum","params":[1],"id":1}"#,
        r#"{"jsonrpc":"1.0","method":"sum","params":[1],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":5,"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":3,"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":[1]}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":true}"#,
        r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":{"a":1}}"#,
        r#"[]"#,
        r#""sum""#,
    ] {
        let reply = post(&server, body).await;
        assert_eq!(
            reply.json(),
            json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}),
            "{body}"
        );
    }
    assert_eq!(server.calls("sum"), 0, "invalid requests take no step");
    assert_eq!(call(&server, "sum", json!([1])).await["error"]["code"], 1);
}

// --- steps --------------------------------------------------------------------------

#[tokio::test]
async fn error_steps_make_error_objects_with_status_200() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::error(2001),
            Step::error(-32000),
            Step::error_with(-32005, "limit exceeded", Some(json!({"backoff": 2}))),
        ],
    );
    assert_eq!(
        call(&server, "sum", json!([1])).await,
        json!({"jsonrpc": "2.0", "error": {"code": 2001, "message": "Scripted error"}, "id": 1})
    );
    assert_eq!(
        call(&server, "sum", json!([1])).await["error"],
        json!({"code": -32000, "message": "Server error"})
    );
    assert_eq!(
        call(&server, "sum", json!([1])).await["error"],
        json!({"code": -32005, "message": "limit exceeded", "data": {"backoff": 2}})
    );
}

#[tokio::test]
async fn status_steps_have_empty_bodies_and_raw_retry_after() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::status(503),
            Step::status(StatusCode::TOO_MANY_REQUESTS).retry_after("2"),
            Step::status(429).retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Step::status(503).retry_after("soon-ish"),
            Step::status(502).retry_after(7u64).header("x-extra", "yes"),
        ],
    );
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.is_empty());
    assert_eq!(reply.headers.get(CONTENT_TYPE), None);
    assert_eq!(reply.headers.get(RETRY_AFTER), None);

    for (status, retry_after) in [
        (429, "2"),
        (429, "Wed, 21 Oct 2015 07:28:00 GMT"),
        (503, "soon-ish"),
    ] {
        let reply = post(&server, sum_call(json!(1))).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.headers[RETRY_AFTER], retry_after);
        assert!(reply.body.is_empty());
    }
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.headers[RETRY_AFTER], "7");
    assert_eq!(reply.headers["x-extra"], "yes");
    assert_eq!(server.calls("sum"), 5);
}

#[tokio::test]
async fn status_with_error_has_a_json_rpc_body() {
    let server = start().await;
    server.script(
        "sum",
        [Step::status_with_error(429, -32005).retry_after("1")],
    );
    let reply = post(&server, sum_call(json!("r-1"))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert_eq!(reply.headers[RETRY_AFTER], "1");
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "error": {"code": -32005, "message": "Server error"}, "id": "r-1"})
    );
}

#[tokio::test(start_paused = true)]
async fn delay_waits_on_the_paused_clock() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::delay(Duration::from_millis(1500)),
            Step::error(9).after(Duration::from_secs(30)),
            Step::status(503).after(Duration::from_secs(2)),
        ],
    );
    let started = Instant::now();
    assert_eq!(call(&server, "sum", json!([2, 2])).await["result"], 4);
    assert_eq!(started.elapsed(), Duration::from_millis(1500));

    let started = Instant::now();
    assert_eq!(
        call(&server, "sum", json!([2, 2])).await["error"]["code"],
        9
    );
    assert_eq!(started.elapsed(), Duration::from_secs(30));

    let started = Instant::now();
    assert_eq!(post(&server, sum_call(json!(1))).await.status, 503);
    assert_eq!(started.elapsed(), Duration::from_secs(2));

    let started = Instant::now();
    assert_eq!(call(&server, "sum", json!([2, 2])).await["result"], 4);
    assert_eq!(started.elapsed(), Duration::ZERO, "the script is used up");
}

#[tokio::test(start_paused = true)]
async fn timeout_hangs_until_the_client_gives_up() {
    let server = start().await;
    server.script("sum", [Step::timeout()]);
    let started = Instant::now();
    let client = client();
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        send(&client, &server, sum_call(json!(1))),
    );
    assert!(attempt.await.is_err(), "no answer within 10 s");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(server.calls("sum"), 1);

    // The next call is answered at once, while the first still hangs on the server.
    let started = Instant::now();
    assert_eq!(call(&server, "sum", json!([5])).await["result"], 5);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn timeout_waits_one_hour() {
    let server = start().await;
    server.script("sum", [Step::timeout()]);
    let started = Instant::now();
    assert_eq!(call(&server, "sum", json!([1, 1])).await["result"], 2);
    assert_eq!(started.elapsed(), Duration::from_secs(3600));
}

#[tokio::test]
async fn drop_connection_is_an_incomplete_message_not_a_connect_error() {
    let server = start().await;
    server.script("sum", [Step::drop_connection()]);
    let error = send(&client(), &server, sum_call(json!(1)))
        .await
        .expect_err("no response");
    assert!(!error.is_connect());
    let hyper_error = find::<hyper::Error>(&error).expect("a hyper::Error in the chain");
    assert!(hyper_error.is_incomplete_message(), "{hyper_error:?}");
    assert!(!hyper_error.is_canceled() && !hyper_error.is_closed());

    // The request was read and recorded before the connection was closed.
    assert_eq!(server.http_requests(), 1);
    assert_eq!(server.calls("sum"), 1);
    assert_eq!(server.bodies(), [Bytes::from(sum_call(json!(1)))]);
    // The server keeps serving on new connections.
    assert_eq!(call(&server, "sum", json!([1])).await["result"], 1);
}

#[tokio::test]
async fn truncated_closes_the_connection_mid_body() {
    let server = start().await;
    server.script("sum", [Step::truncated()]);
    let response = send(&client(), &server, sum_call(json!(1)))
        .await
        .expect("the head arrives");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let whole = r#"{"id":1,"jsonrpc":"2.0","result":3}"#;
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        whole.len().to_string().as_str()
    );

    let mut body = response.into_body();
    let mut received = Vec::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().expect("data")),
            Some(Err(error)) => break error,
            None => panic!("the body ended without an error"),
        }
    };
    assert_eq!(received, whole.as_bytes()[..whole.len() / 2]);
    assert!(!error.is_incomplete_message() && !error.is_closed() && !error.is_canceled());
    let io_error = error
        .source()
        .and_then(|source| source.downcast_ref::<io::Error>())
        .expect("caused by an io::Error");
    assert_eq!(io_error.kind(), io::ErrorKind::UnexpectedEof);
}

/// Over HTTP/2, the head and the first half arrive, then the stream ends short of its
/// `Content-Length` and the client resets it: every time, on a runtime with several
/// threads and many calls at once too. (When the server reset the stream itself, h2
/// sometimes dropped the head still queued, and the request failed instead.)
#[cfg(feature = "http2")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_over_http2_always_sends_the_head() {
    let server = start().await;
    server.script("sum", std::iter::repeat_n(Step::truncated(), 100));
    // `TCP_NODELAY`, as an HTTP/2 client needs (see `ClientBuilder::http2`): without it,
    // each stream's last frames wait for the peer's delayed acknowledgement.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    let calls = (0..100).map(|_| {
        let (h2, request) = (h2.clone(), sum_call(json!(1)));
        let uri = server.uri();
        tokio::spawn(async move {
            let request = http::Request::post(uri)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(request)))
                .expect("valid request");
            let response = h2.request(request).await.expect("the head arrives");
            assert_eq!(response.status(), StatusCode::OK);
            response.into_body().collect().await.expect_err("cut short")
        })
    });
    for call in calls {
        let error = call.await.unwrap();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut reason = None;
        while let Some(e) = cause {
            if let Some(h2) = e.downcast_ref::<h2::Error>() {
                reason = h2.reason();
                break;
            }
            cause = e.source();
        }
        assert_eq!(reason, Some(h2::Reason::PROTOCOL_ERROR), "{error:?}");
    }
    assert_eq!(server.calls("sum"), 100);
}

#[tokio::test]
async fn malformed_is_json_typed_but_not_json() {
    let server = start().await;
    server.script("sum", [Step::malformed()]);
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert_eq!(reply.body, r#"{"jsonrpc": "2.0", "resu"#);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[tokio::test]
async fn oversized_has_exactly_the_requested_length() {
    let server = start().await;
    let len: usize = 3 * 1024 * 1024 + 17;
    server.script("sum", [Step::oversized(len as u64), Step::oversized(10)]);
    let reply = post(&server, sum_call(json!(42))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert_eq!(reply.headers[CONTENT_LENGTH], len.to_string().as_str());
    assert_eq!(reply.body.len(), len);
    let response = reply.json();
    assert_eq!(response["id"], 42);
    let result = response["result"].as_str().expect("a string result");
    let skeleton = r#"{"jsonrpc":"2.0","result":"","id":42}"#;
    assert_eq!(result.len(), len - skeleton.len());
    assert!(result.bytes().all(|b| b == b'x'));

    let reply = post(&server, sum_call(json!(42))).await;
    assert_eq!(reply.body, r#"{"jsonrpc""#);
}

#[tokio::test]
async fn raw_sends_exactly_what_it_is_given() {
    let server = start().await;
    let not_utf8: &'static [u8] = b"\xff\xfe{\"jsonrpc\":\"2.0\"}";
    server.script(
        "sum",
        [
            Step::raw(200, r#"{"jsonrpc":"1.0","result":3,"id":1}"#)
                .header(CONTENT_TYPE, "application/json"),
            Step::raw(
                StatusCode::OK,
                r#"{"jsonrpc":"2.0","result":3,"error":{"code":1,"message":"m"},"id":99}"#,
            ),
            Step::raw(418, not_utf8)
                .header("x-a", "1")
                .header("x-a", "2"),
        ],
    );
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.body, r#"{"jsonrpc":"1.0","result":3,"id":1}"#);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");

    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.json()["id"], 99);
    assert_eq!(
        reply.headers.get(CONTENT_TYPE),
        None,
        "raw adds no headers of its own"
    );

    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(reply.body, not_utf8);
    let values: Vec<_> = reply.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
}

#[tokio::test]
async fn unusable_step_arguments_answer_500_with_an_explanation() {
    let server = start().await;
    server.script(
        "sum",
        [Step::status(1000u16), Step::ok().retry_after("a\r\nb")],
    );
    for why in ["invalid HTTP status code", "invalid header value"] {
        let text = refused(&server).await;
        assert!(text.ends_with(why), "{text}");
    }
}

/// `Step::oversized`: a `Content-Length` h2 does not read (10^19 and more, 20 digits)
/// would fail the head over HTTP/2 before any body limit is met, so the step answers 500
/// and names `oversized_chunked`, over HTTP/1.1 too (whose client would read it).
#[tokio::test]
async fn an_oversized_length_h2_does_not_read_answers_500() {
    let server = start().await;
    for len in [10_000_000_000_000_000_000, u64::MAX] {
        server.script("sum", [Step::oversized(len)]);
        let text = refused(&server).await;
        assert!(text.contains(&len.to_string()), "{text}");
        assert!(text.contains("oversized_chunked"), "{text}");
    }
    // One less is read: its head comes, with that length.
    server.script("sum", [Step::oversized(9_999_999_999_999_999_999)]);
    let resp = send(&client(), &server, sum_call(json!(1))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_LENGTH], "9999999999999999999");
}

/// Over HTTP/2 the bound is where h2 stops: 19 digits come as a head, 20 as the step's
/// 500.
#[cfg(feature = "http2")]
#[tokio::test]
async fn over_http2_the_longest_oversized_length_is_read() {
    let server = start().await;
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    server.script(
        "sum",
        [
            Step::oversized(9_999_999_999_999_999_999),
            Step::oversized(10_000_000_000_000_000_000),
        ],
    );
    let resp = send(&h2, &server, sum_call(json!(1))).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_LENGTH], "9999999999999999999");
    let resp = send(&h2, &server, sum_call(json!(1))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&text).contains("oversized_chunked"),
        "{text:?}"
    );
}

/// Sends a call that the next step refuses: a 500 whose plain-text body says why.
async fn refused(server: &FlakyServer) -> String {
    let reply = post(server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}");
    String::from_utf8(reply.body.to_vec()).expect("plain text")
}

/// hyper sends no body with a 204 or a 304, whatever the step gives it: a body scripted
/// for one would vanish without a word, so the step answers 500 and says why. An empty
/// `raw` 204 stays usable.
#[tokio::test]
async fn a_body_on_a_status_that_cannot_have_one_answers_500() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::raw(204, "abc"),
            Step::raw(StatusCode::NOT_MODIFIED, "abc"),
            Step::status_with_error(204, -32005),
            Step::status_with_error(304, -32005),
            Step::raw(204, ""),
            Step::status(304),
        ],
    );
    for _ in 0..4 {
        let text = refused(&server).await;
        assert!(text.contains("cannot have a body"), "{text}");
    }
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(
        (reply.status, reply.body.len()),
        (StatusCode::NO_CONTENT, 0)
    );
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(
        (reply.status, reply.body.len()),
        (StatusCode::NOT_MODIFIED, 0)
    );
}

/// hyper sets `content-length` from the body and, in debug builds (as tests run),
/// panics in the connection's task when a step's own header disagrees: the client saw
/// a dropped connection and the test a panic message. Such a step now answers 500 and
/// says why; a `content-length` that agrees still goes out. A length beside a
/// `transfer-encoding` is refused too: hyper sends no head with both, and the client got
/// no answer at all. So is a length hyper would send as written but clients refuse.
#[tokio::test]
async fn a_content_length_header_that_disagrees_with_the_body_answers_500() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::ok().header(CONTENT_LENGTH, "3"),
            Step::raw(200, "abc").header(CONTENT_LENGTH, "1000"),
            // A body sent chunked has no length for any header to agree with.
            Step::oversized_chunked(100).header(CONTENT_LENGTH, "10"),
            Step::oversized_chunked(100).header(CONTENT_LENGTH, "1000"),
            Step::raw(200, "abc").header(CONTENT_LENGTH, "+3"),
            // Spaces around the number: HTTP/1.1 clients trim them, but an HTTP/2 client
            // resets the stream (RFC 9113 forbids them), so the step would mean two
            // things.
            Step::raw(200, "abc").header(CONTENT_LENGTH, " 3"),
            Step::status(503).header(CONTENT_LENGTH, "0 "),
            Step::raw(200, "abc")
                .header(TRANSFER_ENCODING, "chunked")
                .header(CONTENT_LENGTH, "3"),
            Step::raw(200, "abc")
                .header(CONTENT_LENGTH, "3")
                .header(TRANSFER_ENCODING, "chunked"),
            Step::raw(200, "abc").header(CONTENT_LENGTH, "3"),
        ],
    );
    for _ in 0..7 {
        let text = refused(&server).await;
        assert!(text.contains("content-length"), "{text}");
    }
    for _ in 0..2 {
        let text = refused(&server).await;
        assert!(text.contains("transfer-encoding"), "{text}");
    }
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"abc"[..])
    );
    assert_eq!(reply.headers[CONTENT_LENGTH], "3");
}

// --- scripts, counters and records ----------------------------------------------------

#[tokio::test]
async fn scripts_run_in_order_per_method_then_fall_back_to_ok() {
    let server = start().await;
    server.script("sum", [Step::error(1), Step::status(502)]);
    server.script("sum", [Step::error(3)]);
    server.script("echo", [Step::error(100)]);

    assert_eq!(call(&server, "sum", json!([1])).await["error"]["code"], 1);
    assert_eq!(
        call(&server, "echo", json!([1])).await["error"]["code"],
        100
    );
    assert_eq!(post(&server, sum_call(json!(1))).await.status, 502);
    assert_eq!(call(&server, "sum", json!([1])).await["error"]["code"], 3);
    assert_eq!(call(&server, "sum", json!([1])).await["result"], 1);
    assert_eq!(call(&server, "sum", json!([1])).await["result"], 1);
    assert_eq!(
        call(&server, "echo", json!([1])).await["result"],
        json!([1])
    );
    assert_eq!(server.calls("sum"), 5);
    assert_eq!(server.calls("echo"), 2);
    assert_eq!(server.calls("mul"), 0);
}

#[tokio::test]
async fn counters_and_records_then_reset() {
    let server = start().await;
    server.reverse_batches(true);
    let bodies = [
        sum_call(json!(1)),
        "not json".to_owned(),
        json!([
            {"jsonrpc": "2.0", "method": "sum", "params": [1], "id": 2},
            {"jsonrpc": "2.0", "method": "echo", "params": [1]},
        ])
        .to_string(),
    ];
    for body in &bodies {
        post(&server, body.clone()).await;
    }
    assert_eq!(server.http_requests(), 3);
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(server.calls("echo"), 1);
    let expected: Vec<Bytes> = bodies.iter().cloned().map(Bytes::from).collect();
    assert_eq!(server.bodies(), expected);
    let json = server.bodies_json();
    assert_eq!(json.len(), 3);
    assert_eq!(json[0]["id"], 1);
    assert_eq!(json[1], Value::Null);
    assert_eq!(json[2][1]["method"], "echo");

    server.script("sum", [Step::error(5)]);
    server.reset();
    assert_eq!(server.http_requests(), 0);
    assert_eq!(server.calls("sum"), 0);
    assert!(server.bodies().is_empty() && server.bodies_json().is_empty());
    assert_eq!(
        call(&server, "sum", json!([1])).await["result"],
        1,
        "scripts are cleared"
    );
    assert_eq!(server.http_requests(), 1);

    // Methods and the batch order survive a reset.
    let reply = post(&server, bodies[2].clone()).await;
    assert_eq!(reply.json()[0]["id"], 2);
}

// --- notifications and batches --------------------------------------------------------

#[tokio::test]
async fn notifications_get_204_and_take_steps() {
    let server = start().await;
    server.script("echo", [Step::error(7)]);
    let notification = r#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#;
    for _ in 0..2 {
        let reply = post(&server, notification).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.body.is_empty());
        assert_eq!(reply.headers.get(CONTENT_TYPE), None);
    }
    assert_eq!(server.calls("echo"), 2);
    // The error step was taken by the first notification, not left for this call.
    assert_eq!(
        call(&server, "echo", json!([1])).await["result"],
        json!([1])
    );
}

#[tokio::test]
async fn notification_with_an_http_level_step_gets_it() {
    let server = start().await;
    server.script("echo", [Step::status(503).retry_after("4")]);
    let reply = post(&server, r#"{"jsonrpc":"2.0","method":"echo"}"#).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers[RETRY_AFTER], "4");
}

#[tokio::test]
async fn batch_with_item_level_steps() {
    let server = start().await;
    server.script("sum", [Step::ok(), Step::error(7)]);
    server.script("echo", [Step::error(8)]);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "sum", "params": [3], "id": "two"},
        {"jsonrpc": "2.0", "method": "echo", "params": ["note"]},
        5,
        {"jsonrpc": "2.0", "method": "nope", "id": 4},
        {"jsonrpc": "2.0", "method": "echo", "params": ["e"], "id": null},
    ])
    .to_string();
    let expected = json!([
        {"jsonrpc": "2.0", "result": 3, "id": 1},
        {"jsonrpc": "2.0", "error": {"code": 7, "message": "Scripted error"}, "id": "two"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 4},
        {"jsonrpc": "2.0", "result": ["e"], "id": null},
    ]);
    let reply = post(&server, batch.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
    assert_eq!(reply.json(), expected);
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(
        server.calls("echo"),
        2,
        "the notification took the error step"
    );
    assert_eq!(server.calls("nope"), 1);
    assert_eq!(server.http_requests(), 1);

    server.reverse_batches(true);
    let reply = post(&server, batch).await;
    let mut reversed = expected.as_array().expect("an array").clone();
    reversed.reverse();
    reversed[4] = json!({"jsonrpc": "2.0", "result": 3, "id": 1});
    reversed[3] = json!({"jsonrpc": "2.0", "result": 3, "id": "two"});
    assert_eq!(reply.json(), Value::Array(reversed));
}

#[tokio::test]
async fn batch_first_http_level_step_decides_the_response() {
    let server = start().await;
    server.script("sum", [Step::error(1), Step::drop_connection()]);
    server.script("echo", [Step::status(503).retry_after("3")]);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "sum", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": [2], "id": 2},
        {"jsonrpc": "2.0", "method": "sum", "params": [3], "id": 3},
    ])
    .to_string();
    let reply = post(&server, batch.clone()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers[RETRY_AFTER], "3");
    assert!(reply.body.is_empty());
    assert_eq!(
        (server.calls("sum"), server.calls("echo")),
        (2, 1),
        "every item took a step"
    );

    // All steps were used up: the same batch now succeeds.
    let reply = post(&server, batch).await;
    assert_eq!(
        reply.json()[2],
        json!({"jsonrpc": "2.0", "result": 3, "id": 3})
    );
}

#[tokio::test]
async fn batch_http_level_bodies() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::status_with_error(429, -32005),
            Step::oversized(100),
            Step::drop_connection(),
        ],
    );
    let batch = || {
        json!([
            {"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1},
            {"jsonrpc": "2.0", "method": "sum", "params": [2], "id": 2},
        ])
        .to_string()
    };
    let reply = post(&server, batch()).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "error": {"code": -32005, "message": "Server error"}, "id": null}),
        "a batch-level error"
    );

    let reply = post(&server, batch()).await;
    assert_eq!(reply.body.len(), 100);
    let response = reply.json();
    assert_eq!(
        response[0]["id"], 2,
        "an array, with the id of the deciding item"
    );

    let error = send(&client(), &server, batch())
        .await
        .expect_err("dropped");
    assert!(!error.is_connect());
}

/// `Step::header`: in a batch an HTTP-level step decides, the headers of the other
/// items' steps go with it when its body carries their answers (`truncated`, `trickle`),
/// and not when it does not (`status`).
#[tokio::test(start_paused = true)]
async fn batch_item_headers_go_with_a_body_that_carries_their_answers() {
    let server = start().await;
    let batch = json!([
        {"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "method": "sum", "params": [2], "id": 2},
    ])
    .to_string();
    for (decider, carried) in [
        (Step::trickle(Duration::from_millis(1)), true),
        (Step::truncated(), true),
        (Step::status(503), false),
    ] {
        server.script("echo", [Step::error(7).header("x-item", "echo")]);
        server.script("sum", [decider.header("x-decider", "sum")]);
        let resp = send(&client(), &server, batch.clone()).await.unwrap();
        let headers = resp.headers();
        assert_eq!(headers["x-decider"], "sum");
        assert_eq!(headers.contains_key("x-item"), carried, "{headers:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn batch_waits_for_the_longest_delay() {
    let server = start().await;
    server.script(
        "sum",
        [
            Step::delay(Duration::from_secs(1)),
            Step::error(2).after(Duration::from_secs(3)),
        ],
    );
    server.script("echo", [Step::delay(Duration::from_secs(2))]);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "sum", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "method": "sum", "params": [2], "id": 2},
        {"jsonrpc": "2.0", "method": "echo", "params": [3], "id": 3},
    ])
    .to_string();
    let started = Instant::now();
    let reply = post(&server, batch).await;
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(reply.json()[1]["error"]["code"], 2);
}

#[tokio::test]
async fn all_notification_batch_gets_204() {
    let server = start().await;
    server.script("sum", [Step::error(1)]);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "sum", "params": [1]},
        {"jsonrpc": "2.0", "method": "echo", "params": [2]},
    ])
    .to_string();
    let reply = post(&server, batch).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    assert_eq!((server.calls("sum"), server.calls("echo")), (1, 1));
}

// --- lifetime -----------------------------------------------------------------------

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = start().await;
    let addr = server.addr();
    let client = client();
    // Leaves an idle keep-alive connection in the client's pool.
    let response = send(&client, &server, sum_call(json!(1)))
        .await
        .expect("a response");
    response.into_body().collect().await.expect("a body");
    let uri = server.uri();
    drop(server);

    // The aborted tasks close the listener and the connections when the runtime runs them.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let refused = tokio::net::TcpStream::connect(addr)
        .await
        .expect_err("nothing listens");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);

    let request = http::Request::post(uri)
        .body(Full::from(sum_call(json!(2))))
        .expect("valid request");
    assert!(
        client.request(request).await.is_err(),
        "the pooled connection is gone too"
    );
}

#[tokio::test]
async fn shutdown_waits_until_nothing_listens() {
    let server = start().await;
    let addr = server.addr();
    assert_eq!(call(&server, "sum", json!([1])).await["result"], 1);
    server.shutdown().await;
    let refused = tokio::net::TcpStream::connect(addr)
        .await
        .expect_err("nothing listens");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let body = sum_call(json!(1));
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    let mut buf = vec![0; 4096];
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).await.expect("write");
        let n = stream.read(&mut buf).await.expect("read");
        let text = std::str::from_utf8(&buf[..n]).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with(r#"{"id":1,"jsonrpc":"2.0","result":3}"#),
            "{text}"
        );
    }
    assert_eq!(server.http_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_gives_up_cancels_the_pending_answer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = start().await;
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    server.handle("slow", move |_: &Value| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Value::Null)
    });
    server.script("slow", [Step::timeout()]);
    let body = r#"{"jsonrpc":"2.0","method":"slow","id":1}"#;
    {
        let client = client();
        let attempt = tokio::time::timeout(Duration::from_secs(1), send(&client, &server, body));
        assert!(attempt.await.is_err());
    }
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert_eq!(answered.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(server.calls("slow"), 1);
}

#[test]
fn handles_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn clone_debug<T: Clone + std::fmt::Debug>() {}
    send_sync::<FlakyServer>();
    send_sync::<Step>();
    clone_debug::<Step>();
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_answer_and_survives_reset() {
    let server = start().await;
    server.latency(Duration::from_millis(5));
    server.script("sum", [Step::ok().after(Duration::from_millis(10))]);
    let start = Instant::now();
    assert_eq!(call(&server, "sum", json!([1, 2])).await["result"], 3);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(15),
        "the step's delay, then 5 ms"
    );
    server.reset();
    let start = Instant::now();
    assert_eq!(call(&server, "sum", json!([1, 2])).await["result"], 3);
    assert_eq!(start.elapsed(), Duration::from_millis(5), "kept by reset");
    server.latency(Duration::ZERO);
    let start = Instant::now();
    call(&server, "sum", json!([1, 2])).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn a_small_oversized_chunked_body_still_goes_out_chunked() {
    let server = start().await;
    // Empty too: an empty chunked body (`0\r\n\r\n`) is still not `content-length: 0`.
    for len in [10, 0] {
        server.script("sum", [Step::oversized_chunked(len)]);
        let reply = post(
            &server,
            r#"{"jsonrpc":"2.0","method":"sum","params":[1],"id":1}"#,
        )
        .await;
        assert_eq!(reply.body.len() as u64, len);
        assert_eq!(
            reply.headers.get(CONTENT_LENGTH),
            None,
            "{len}: {:?}",
            reply.headers
        );
        assert_eq!(
            reply
                .headers
                .get(http::header::TRANSFER_ENCODING)
                .map(|v| v.as_bytes()),
            Some(&b"chunked"[..]),
            "{len}: {:?}",
            reply.headers
        );
    }
}

/// `unused` counts the steps no call has taken: down by one per call, zero for a method
/// never scripted, zero after `reset`.
#[tokio::test]
async fn unused_counts_the_steps_left() {
    let server = start().await;
    server.script("sum", [Step::error(2001), Step::status(503)]);
    assert_eq!((server.unused("sum"), server.unused("other")), (2, 0));
    call(&server, "sum", json!([1, 2])).await;
    assert_eq!(server.unused("sum"), 1);
    server.reset();
    assert_eq!(server.unused("sum"), 0);
}

/// `reset` while a request's body is still being read: the request counts after the
/// reset in full (its headers and HTTP request as well as its body and call), so the
/// records agree.
#[tokio::test]
async fn a_reset_while_a_body_is_read_leaves_records_that_agree() {
    let server = start().await;
    let answer = across(&server, || server.reset()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(server.http_requests(), 1);
    assert_eq!(server.headers().len(), 1);
    assert_eq!(server.headers()[0]["x-mark"], "1");
    assert_eq!(server.bodies().len(), 1);
    assert_eq!(server.calls("sum"), 1);
}

/// Sends a `sum` call (with the header `x-mark: 1`) over a connection of its own in two
/// parts, runs `between` once the server is reading the body, and returns the answer.
async fn across(server: &FlakyServer, between: impl FnOnce()) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let call = sum_call(json!(1));
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\nx-mark: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        call.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&call.as_bytes()[..5]).await.unwrap();
    while server.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    between();
    stream.write_all(&call.as_bytes()[5..]).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8(answer).unwrap()
}

/// Chaos draws a request's fault as its head arrives (a drop before the body is read
/// needs it then). When the chaos changes while the body is read, the call takes its
/// fault from the chaos of its answer's time: none after a `reset`, the new chaos's after
/// `chaos`. Before, it kept the draw of the chaos turned off.
#[tokio::test]
async fn a_chaos_changed_while_a_body_is_read_is_the_one_the_call_draws_from() {
    let server = start().await;
    server.chaos(Chaos::new(1).rate(Fault::Code(-32005), 1.0));
    let answer = across(&server, || server.reset()).await;
    assert!(
        answer.ends_with(r#"{"id":1,"jsonrpc":"2.0","result":3}"#),
        "{answer}"
    );
    assert_eq!(server.log()[0].fault, None);

    server.chaos(Chaos::new(1).rate(Fault::Code(-32005), 1.0));
    let answer = across(&server, || {
        server.chaos(Chaos::new(2).rate(Fault::Status(503), 1.0));
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(server.log()[1].fault, Some(Fault::Status(503)));
}

/// Over HTTP/1.1 a client that shuts down its writing half is gone to hyper: an answer
/// that waits is dropped (as the server's docs say). On Linux one that does not wait
/// goes out, and both calls count; under Wine the shutdown comes before the request is
/// read, so neither call is served.
#[tokio::test(start_paused = true)]
async fn a_half_closed_client_gets_only_an_answer_that_does_not_wait() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    server.script(
        "sum",
        [Step::ok(), Step::ok().after(Duration::from_millis(10))],
    );
    let mut answers = Vec::new();
    for _ in 0..2 {
        let call = sum_call(json!(1));
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{call}",
            call.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answers.push(String::from_utf8(answer).unwrap());
    }
    assert_eq!(answers[1], "");
    if cfg!(target_os = "linux") {
        assert!(answers[0].starts_with("HTTP/1.1 200"), "{answers:?}");
        assert_eq!(server.calls("sum"), 2);
    }
}

/// Many callers at once, each on a connection of its own (HTTP/1.1): the server takes
/// every connection as it comes. With tokio's default backlog of 128 pending connections
/// the kernel dropped the rest, whose clients tried again a second later, while tokio's
/// paused clock ran their timeouts out. (300, not more: each call holds two sockets, and
/// a machine may allow a process 1,024. Where it allows fewer, as a macOS shell's 256,
/// the test raises its limit. Where the kernel caps a backlog lower, as macOS and Linux
/// before 5.4 do at 128, the test sends only as many callers as it holds.)
#[tokio::test(start_paused = true)]
async fn hundreds_of_callers_at_once_each_get_a_connection_at_once() {
    common::open_files_at_least(700);
    let callers = backlog_cap().map_or(300, |cap| cap.min(300));
    let server = start().await;
    // Each answer takes 300 ms, so no connection is free for another call meanwhile.
    server.script(
        "sum",
        std::iter::repeat_n(Step::delay(Duration::from_millis(300)), callers),
    );
    let client = tower_jsonrpc_retry::Client::builder(server.uri())
        .attempt_timeout(Duration::from_secs(1))
        .retry(tower_jsonrpc_retry::RetryStrategy::none())
        .build();
    let calls: Vec<_> = (0..callers)
        .map(|i| tokio::spawn(client.call::<usize>("sum", (i, 1))))
        .collect();
    let start = Instant::now();
    for (i, call) in (0..callers).zip(calls) {
        assert_eq!(call.await.unwrap().unwrap(), i + 1);
    }
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(server.connections(), callers);
}

/// The kernel's cap on a listener's backlog, where it can be read: Linux's
/// `net.core.somaxconn`, the BSDs' and macOS's `kern.ipc.somaxconn`.
fn backlog_cap() -> Option<usize> {
    let text = if cfg!(target_os = "linux") {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok()?
    } else if cfg!(any(target_os = "macos", target_os = "freebsd")) {
        let out = std::process::Command::new("sysctl")
            .args(["-n", "kern.ipc.somaxconn"])
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?
    } else {
        return None;
    };
    text.trim().parse().ok()
}

/// A handler that panics ends its exchange without an answer, as a dropped connection
/// does, and the server goes on serving.
#[tokio::test]
async fn a_panicking_handler_drops_its_exchange_only() {
    let server = start().await;
    server.handle("boom", |_| panic!("a handler's own bug"));
    let body = json!({"jsonrpc": "2.0", "method": "boom", "params": [], "id": 1});
    let error = send(&client(), &server, body.to_string())
        .await
        .expect_err("no answer");
    assert!(!error.is_connect(), "{error:?}");
    assert_eq!(call(&server, "sum", json!([1, 2])).await["result"], 3);
}

// --- promises of the docs each pinned once more --------------------------------------

/// `Step::after` waits its delay, replacing any earlier one.
#[tokio::test(start_paused = true)]
async fn after_replaces_an_earlier_delay() {
    let server = start().await;
    server.script(
        "sum",
        [Step::delay(Duration::from_secs(10)).after(Duration::from_secs(1))],
    );
    let start = Instant::now();
    assert_eq!(post(&server, sum_call(json!(1))).await.json()["result"], 3);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

/// The log has an entry for every request, and every batch item, that was not a valid
/// request: no method, no id, no fault.
#[tokio::test]
async fn invalid_requests_and_batch_items_are_logged() {
    let server = start().await;
    post(&server, r#"{"jsonrpc":"2.0","method":5,"id":1}"#).await;
    let batch = json!([{"jsonrpc": "1.0", "method": "sum", "id": 2}, {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 3}]);
    post(&server, batch.to_string()).await;
    let log = server.log();
    let seen: Vec<_> = log
        .iter()
        .map(|entry| (entry.method.as_deref(), entry.id.clone(), entry.fault))
        .collect();
    assert_eq!(
        seen,
        [
            (None, None, None),
            (None, None, None),
            (Some("sum"), Some(Id::Number(3)), None)
        ]
    );
}

/// In a batch, the headers of every item-level step go on the one response.
#[tokio::test]
async fn item_level_headers_of_every_batch_item_go_on_the_response() {
    let server = start().await;
    server.script("sum", [Step::ok().header("x-first", "1")]);
    server.script("echo", [Step::error(5).header("x-second", "2")]);
    let batch = json!([
        {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": [], "id": 2},
    ]);
    let reply = post(&server, batch.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-first"], "1");
    assert_eq!(reply.headers["x-second"], "2");
}

/// `trickle` and `truncated` answer a notification with a null result under a null id,
/// whole or cut short (its `Content-Length` that of the whole answer).
#[tokio::test(start_paused = true)]
async fn a_notification_trickles_and_truncates_a_null_result() {
    let server = start().await;
    let notification = json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2]}).to_string();
    let whole = json!({"jsonrpc": "2.0", "result": null, "id": null});

    server.script("sum", [Step::trickle(Duration::from_millis(1))]);
    let reply = post(&server, notification.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), whole);

    server.script("sum", [Step::truncated()]);
    let response = send(&client(), &server, notification)
        .await
        .expect("the head arrives");
    assert_eq!(
        response.headers()[CONTENT_LENGTH],
        whole.to_string().len().to_string().as_str()
    );
    assert!(response.into_body().collect().await.is_err(), "cut short");
}

/// A step with an unusable argument answers 500 in plain text in a batch too.
#[tokio::test]
async fn an_unusable_step_in_a_batch_answers_500() {
    let server = start().await;
    server.script("sum", [Step::ok().header("bad name", "v")]);
    let batch = format!("[{},{}]", sum_call(json!(1)), sum_call(json!(2)));
    let reply = post(&server, batch).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    let text = String::from_utf8(reply.body.to_vec()).expect("plain text");
    assert!(text.contains("invalid header name"), "{text}");
}

/// `Fault::StatusRetryAfter` is the status with `Retry-After` and an empty body.
#[tokio::test]
async fn chaos_status_retry_after_sends_the_header() {
    let server = start().await;
    server.chaos(Chaos::new(1).rate(Fault::StatusRetryAfter(429, 7), 1.0));
    let reply = post(&server, sum_call(json!(1))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers[RETRY_AFTER], "7");
    assert!(reply.body.is_empty());
}

/// `Chaos::total_rate` is the sum of the rates, at most 1; a NaN rate counts as 0 and
/// draws no fault.
#[tokio::test]
async fn chaos_rates_add_up_to_at_most_one_and_nan_is_zero() {
    let over = Chaos::new(1)
        .rate(Fault::Malformed, 0.7)
        .rate(Fault::Status(503), 0.6);
    assert_eq!(over.total_rate(), 1.0);
    let nan = Chaos::new(1).rate(Fault::Malformed, f64::NAN);
    assert_eq!(nan.total_rate(), 0.0);
    let server = start().await;
    server.chaos(nan);
    for id in 0..8 {
        assert_eq!(post(&server, sum_call(json!(id))).await.json()["result"], 3);
    }
    assert!(server.log().iter().all(|entry| entry.fault.is_none()));
}

/// Rates that add up to more than 1 leave the faults added last only what is left.
#[tokio::test]
async fn chaos_faults_added_last_get_only_what_is_left() {
    let server = start().await;
    server.chaos(
        Chaos::new(1)
            .rate(Fault::Code(2001), 1.0)
            .rate(Fault::Status(503), 1.0),
    );
    for id in 0..4 {
        let reply = post(&server, sum_call(json!(id))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["error"]["code"], 2001);
    }
    let log = server.log();
    assert!(
        log.iter().all(|e| e.fault == Some(Fault::Code(2001))),
        "{log:?}"
    );
}

/// A seed gives the same sequence of faults on every target: this one, recorded on
/// x86_64 Linux, must hold on every target CI and `.ci/wine-tests` run.
#[tokio::test]
async fn a_seed_gives_a_fixed_sequence_of_faults() {
    let server = start().await;
    server.chaos(Chaos::new(12345).rate(Fault::Code(2001), 0.5));
    for id in 0..24 {
        post(&server, sum_call(json!(id))).await;
    }
    let pattern: String = server
        .log()
        .iter()
        .map(|e| if e.fault.is_some() { 'F' } else { '.' })
        .collect();
    assert_eq!(pattern, ".FFFF.F.F.FFFF..F.....FF");
}

/// A request chaos drops before reading it is counted, with its headers and version,
/// and logged with its fault; it has no body and takes no call.
#[tokio::test]
async fn a_request_dropped_before_it_is_read_is_counted_with_its_headers() {
    let server = start().await;
    server.chaos(Chaos::new(1).rate(Fault::DropBeforeRead, 1.0));
    assert!(send(&client(), &server, sum_call(json!(1))).await.is_err());
    assert_eq!(server.http_requests(), 1);
    assert_eq!(server.headers().len(), 1);
    assert_eq!(server.versions().len(), 1);
    assert!(server.bodies().is_empty());
    let log = server.log();
    let seen: Vec<_> = log.iter().map(|e| (e.method.as_deref(), e.fault)).collect();
    assert_eq!(seen, [(None, Some(Fault::DropBeforeRead))]);
    assert_eq!(server.calls("sum"), 0);
}

/// `reset` keeps `reverse_batches` as it is.
#[tokio::test]
async fn reset_keeps_reverse_batches() {
    let server = start().await;
    server.reverse_batches(true);
    server.reset();
    let batch = format!("[{},{}]", sum_call(json!(1)), sum_call(json!(2)));
    let answers = post(&server, batch).await.json();
    let ids: Vec<&Value> = answers
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!(2), &json!(1)]);
}

/// The draw made before a request is read goes to its first call: with rates adding up
/// to 1, every call gets a fault, never a normal answer.
#[tokio::test]
async fn chaos_draw_made_before_the_read_goes_to_the_first_call() {
    let server = start().await;
    server.chaos(
        Chaos::new(3)
            .rate(Fault::DropBeforeRead, 0.5)
            .rate(Fault::Code(-32005), 0.5),
    );
    for id in 0..40 {
        if let Ok(response) = send(&client(), &server, sum_call(json!(id))).await {
            let body = response.into_body().collect().await.expect("a body");
            let answer: Value = serde_json::from_slice(&body.to_bytes()).expect("JSON");
            assert_eq!(answer["error"]["code"], -32005, "call {id}: {answer}");
        }
    }
    let log = server.log();
    assert_eq!(log.len(), 40);
    assert!(log.iter().all(|e| e.fault.is_some()), "{log:?}");
}
