//! Hostile or broken servers: every answer gives a typed error (or a clamped wait), never
//! a panic, and no retry unless the strategy asks for one.

mod common;

use common::{Recorder, secs, stack};
use serde_json::json;
use tokio::time::Instant;
use tower::timeout::TimeoutLayer;
use tower::timeout::error::Elapsed;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{self, DEFAULT_BODY_LIMIT, JsonRpcCodecLayer};
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, DecodeError, Id, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// Retries everything a transient failure looks like, and nothing else.
fn eager() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, secs(0.1)))
        .codes([-32005])
        .retry_on(ErrorClass::Connect)
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS))
}

fn sum(id: i64) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

async fn server() -> FlakyServer {
    FlakyServer::start().await.unwrap()
}

fn json_raw(body: impl Into<bytes::Bytes>) -> Step {
    Step::raw(200, body).header("content-type", "application/json")
}

/// One call of `sum` against a server answering `body`: the decode error it gives.
async fn decode_failure(body: impl Into<bytes::Bytes>) -> (DecodeError, usize) {
    let server = server().await;
    server.script("sum", [json_raw(body)]);
    let err = stack(&server, eager()).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::OK));
    let calls = server.calls("sum");
    assert!(err.decode_error().is_some());
    let source = err.into_source().expect("the decode error is the source");
    let decode = source.downcast::<DecodeError>().expect("a DecodeError");
    (*decode, calls)
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_billion_seconds_is_clamped_to_the_ceiling() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::status(503).retry_after("1000000000"),
            Step::status(429).retry_after("99999999999999999999999999"),
        ],
    );
    let rec = Recorder::default();
    let svc = stack(&server, rec.attach(eager().retry_after_ceiling(secs(7.0))));
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(rec.delays(), [secs(7.0), secs(7.0)]);
    assert_eq!(start.elapsed(), secs(14.0));
}

#[tokio::test(start_paused = true)]
async fn negative_or_garbage_retry_after_is_ignored() {
    let garbage = [
        "-1",
        "-1.5e3",
        "1.5",
        "0x10",
        "+5",
        "soon",
        "",
        "Wed, 32 Foo 2015 99:00:00 GMT",
        "1 2",
    ];
    for value in garbage {
        let server = server().await;
        server.script("sum", [Step::status(503).retry_after(value)]);
        let rec = Recorder::default();
        let start = Instant::now();
        let resp = stack(&server, rec.attach(eager()))
            .oneshot(sum(1))
            .await
            .unwrap();
        assert_eq!(resp.result(), Some(&json!(3)), "{value:?}");
        assert_eq!(server.calls("sum"), 2, "{value:?}");
        assert_eq!(
            rec.delays(),
            [secs(0.1)],
            "{value:?}: the backoff's own delay"
        );
        assert_eq!(start.elapsed(), secs(0.1), "{value:?}");
    }
}

/// Peak resident memory of this process so far (`VmHWM`), in bytes: on Linux, which
/// keeps it in `/proc`; `None` elsewhere, where the test checks the refusal alone.
fn peak_rss() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    Some(kib * 1024)
}

#[tokio::test(start_paused = true)]
async fn a_one_gib_body_is_refused_at_the_size_limit_with_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let before = peak_rss();
    for step in [Step::oversized(GIB), Step::oversized_chunked(GIB)] {
        let server = server().await;
        server.script("sum", [step.clone()]);
        let err = stack(&server, eager()).oneshot(sum(1)).await.unwrap_err();
        assert!(err.is_body_too_large(), "{step:?}: {err:?}");
        assert!(
            err.to_string().contains(&DEFAULT_BODY_LIMIT.to_string()),
            "{err}"
        );
        assert_eq!(
            server.calls("sum"),
            1,
            "{step:?}: a refused body is not retried"
        );
    }
    let (Some(before), Some(after)) = (before, peak_rss()) else {
        return; // not Linux: no peak to read
    };
    let growth = after.saturating_sub(before);
    println!(
        "hostile: largest body refused {GIB} bytes (limit {DEFAULT_BODY_LIMIT}), peak RSS growth {:.1} MiB",
        growth as f64 / (1024.0 * 1024.0)
    );
    assert!(
        growth < 64 * 1024 * 1024,
        "peak RSS grew by {growth} bytes reading a 1 GiB body"
    );
}

#[tokio::test(start_paused = true)]
async fn a_trickling_body_is_ended_by_a_timeout_around_the_codec() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::trickle(secs(1.0)), 3));
    // The timeout sits above the codec, so it bounds reading the body too.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            RetryStrategy::new(PeriodicBackoff::new(2, secs(0.1))).retry_on(ErrorClass::Timeout),
        ))
        .layer(TimeoutLayer::new(secs(1.5)))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(common::http());
    let start = Instant::now();
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err:?}");
    assert_eq!(
        server.calls("sum"),
        3,
        "1 + 2 retries, each ended by the timeout"
    );
    assert_eq!(start.elapsed(), secs(3.0 * 1.5 + 2.0 * 0.1));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_below_the_codec_does_not_bound_the_body_read() {
    // Documents a limit of the stack: tower's `TimeoutLayer` under the codec ends when the
    // response head arrives, so a body that trickles is read to its end however slow it
    // is. Put a timeout above the codec, or use the codec's own `attempt_timeout`, to bound it.
    let server = server().await;
    server.script("sum", [Step::trickle(secs(1.0))]);
    let start = Instant::now();
    let resp = stack(&server, eager()).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let body_len = r#"{"id":1,"jsonrpc":"2.0","result":3}"#.len() as f64;
    assert_eq!(start.elapsed(), secs(body_len), "one byte per second");
}

#[tokio::test(start_paused = true)]
async fn invalid_json_is_a_decode_error_and_not_retried() {
    let (err, calls) = decode_failure(r#"{"jsonrpc": "2.0", "result": 3, "id": 1"#).await;
    assert!(matches!(err, DecodeError::Json(_)), "{err:?}");
    assert_eq!(calls, 1);
}

#[tokio::test(start_paused = true)]
async fn wrong_jsonrpc_version_is_a_decode_error() {
    let (err, calls) = decode_failure(r#"{"jsonrpc":"1.0","result":3,"id":1}"#).await;
    assert!(
        matches!(&err, DecodeError::Version(Some(v)) if v == "1.0"),
        "{err:?}"
    );
    assert_eq!(calls, 1);
    assert_eq!(err.to_string(), r#"unsupported "jsonrpc" version "1.0""#);
    // The number 2.0 is not "version 2.0, unsupported": it is not a string at all.
    let (err, _) = decode_failure(r#"{"jsonrpc":2.0,"result":3,"id":1}"#).await;
    assert!(matches!(&err, DecodeError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"invalid message: "jsonrpc" is not the string "2.0""#
    );
}

#[tokio::test(start_paused = true)]
async fn mismatched_id_is_a_decode_error() {
    let (err, calls) = decode_failure(r#"{"jsonrpc":"2.0","result":3,"id":2}"#).await;
    match err {
        DecodeError::IdMismatch {
            expected, found, ..
        } => {
            assert_eq!((expected, found), (Id::Number(1), Id::Number(2)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls, 1);
    let (err, _) = decode_failure(r#"{"jsonrpc":"2.0","result":3,"id":"1"}"#).await;
    assert!(
        matches!(err, DecodeError::IdMismatch { .. }),
        "a string is not a number"
    );
}

#[tokio::test(start_paused = true)]
async fn both_result_and_error_is_a_decode_error() {
    let body = r#"{"jsonrpc":"2.0","result":3,"error":{"code":1,"message":"m"},"id":1}"#;
    let (err, calls) = decode_failure(body).await;
    assert!(matches!(err, DecodeError::ResultAndError), "{err:?}");
    assert_eq!(calls, 1);
}

#[tokio::test(start_paused = true)]
async fn non_utf8_bytes_are_a_decode_error() {
    let bodies: [&'static [u8]; 3] = [
        b"{\"jsonrpc\":\"2.0\",\"result\":\"\xff\xfe\",\"id\":1}",
        // One byte order mark is passed over (`tests/codec_edges.rs`); a second is not.
        b"\xef\xbb\xbf\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":1}",
        b"\xff\xfe\x00\x00",
    ];
    for body in bodies {
        let (err, calls) = decode_failure(body).await;
        assert!(matches!(err, DecodeError::Json(_)), "{err:?}");
        assert_eq!(calls, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_ids_in_a_batch_are_a_decode_error() {
    let server = server().await;
    let body = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":4,"id":1}]"#;
    server.script("sum", [json_raw(body)]);
    let batch = BatchRequest::new(vec![sum(1), sum(2)]);
    let err = stack(&server, eager()).oneshot(batch).await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert!(
        matches!(
            err.decode_error(),
            Some(DecodeError::UnexpectedItem(Id::Number(1)))
        ),
        "{err:?}"
    );
    assert_eq!(
        server.calls("sum"),
        2,
        "two items, one HTTP request, no retry"
    );
    assert_eq!(server.http_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_response_to_a_notification_is_ignored() {
    let server = server().await;
    server.script(
        "log",
        [json_raw(r#"{"jsonrpc":"2.0","result":"surprise","id":1}"#)],
    );
    let mut svc = stack(&server, eager());
    let resp = common::call(&mut svc, Request::new("log", json!(["x"])))
        .await
        .unwrap();
    assert_eq!(resp.id(), &Id::Null);
    assert_eq!(resp.result(), Some(&json!(null)), "the body is not decoded");
    assert_eq!(server.calls("log"), 1);
    // The service (and its connection pool) still works.
    let resp = common::call(&mut svc, sum(2)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
}

#[tokio::test(start_paused = true)]
async fn a_decode_error_is_retried_when_the_strategy_asks() {
    let server = server().await;
    server.script(
        "sum",
        [json_raw("not json"), json_raw(r#"{"jsonrpc":"1.0"}"#)],
    );
    let rec = Recorder::default();
    let strategy = rec.attach(eager().retry_if(|e| {
        e.downcast_ref::<codec::Error>()
            .is_some_and(codec::Error::is_decode)
    }));
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(rec.reasons(), ["predicate", "predicate"]);
}

#[tokio::test(start_paused = true)]
async fn an_empty_or_html_body_is_a_typed_error() {
    let server = server().await;
    server.script(
        "sum",
        [
            json_raw(""),
            Step::raw(200, "<html>gateway</html>").header("content-type", "text/html"),
            Step::raw(502, "<html>bad gateway</html>"),
        ],
    );
    let mut svc = stack(&server, eager());
    let err = common::call(&mut svc, sum(1)).await.unwrap_err();
    assert!(
        matches!(err.decode_error(), Some(DecodeError::EmptyBody)),
        "{err:?}"
    );
    let err = common::call(&mut svc, sum(2)).await.unwrap_err();
    assert!(
        matches!(err.decode_error(), Some(DecodeError::Json(_))),
        "{err:?}"
    );
    let err = common::call(&mut svc, sum(3)).await.unwrap_err();
    assert!(
        err.is_status() && err.status() == Some(http::StatusCode::BAD_GATEWAY),
        "{err:?}"
    );
    assert_eq!(
        server.calls("sum"),
        3,
        "502 is not in the strategy: no retry"
    );
}

#[tokio::test(start_paused = true)]
async fn the_codec_timeout_bounds_a_trickling_body() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::trickle(secs(1.0)), 2));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            RetryStrategy::new(PeriodicBackoff::new(2, secs(0.1))).retry_on_error::<Elapsed>(),
        ))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(secs(1.5)))
        .service(common::http());
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(
        resp.result(),
        Some(&json!(3)),
        "the third attempt is not trickled"
    );
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), secs(2.0 * 1.5 + 2.0 * 0.1));
}

#[tokio::test(start_paused = true)]
async fn the_client_builder_timeout_bounds_a_trickling_body() {
    let server = server().await;
    server.script("sum", [Step::trickle(secs(1.0))]);
    let client = tower_jsonrpc_retry::Client::builder(server.uri())
        .attempt_timeout(secs(2.0))
        .retry(RetryStrategy::none())
        .build();
    let start = Instant::now();
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert!(transport.is_timeout(), "{transport:?}");
    assert_eq!(start.elapsed(), secs(2.0));
}

/// A server on 127.0.0.1 whose first answer is `first` (a head promising more body than
/// it sends), after which it closes the connection or, with `hold`, keeps it open an
/// hour; every later answer is `1 + 2 = 3`.
async fn breaks_off_first(first: &'static str, hold: bool) -> http::Uri {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move {
        for nth in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // Read the whole request: its head, then as many bytes as it declares.
                let mut seen = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    seen.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let whole = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                        head.lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .is_some_and(|len| body.len() >= len)
                    });
                    if n == 0 || whole {
                        break;
                    }
                }
                let answer = if nth == 0 {
                    first.to_owned()
                } else {
                    let body = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = stream.write_all(answer.as_bytes()).await;
                if hold && nth == 0 {
                    tokio::time::sleep(secs(3600.0)).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    uri
}

#[tokio::test(start_paused = true)]
async fn a_failure_status_whose_body_breaks_off_keeps_its_status_and_hint() {
    let busy =
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\ncontent-length: 100\r\n\r\n<html>bu";
    let codec = JsonRpcCodecLayer::new(breaks_off_first(busy, false).await).layer(common::http());
    let err = codec.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_body(), "still a body error: {err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(secs(5.0)));

    // So the status rule retries it, after the server's hint.
    let only_503 = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.1)))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(only_503))
        .layer(JsonRpcCodecLayer::new(breaks_off_first(busy, false).await))
        .service(common::http());
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(start.elapsed(), secs(5.0));
}

#[tokio::test(start_paused = true)]
async fn a_failure_status_whose_body_runs_out_of_time_keeps_its_status_and_hint() {
    let busy =
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 100\r\n\r\n<html>sl";
    let codec = JsonRpcCodecLayer::new(breaks_off_first(busy, true).await)
        .attempt_timeout(secs(0.2))
        .layer(common::http());
    let err = codec.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_timeout(), "still a timeout: {err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(secs(7.0)));
}
