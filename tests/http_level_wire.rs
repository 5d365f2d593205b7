//! HTTP wire semantics of the codec and the HTTP-level layer: what the layer tells its
//! caller in the headers it writes itself, and what it sends on each attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::RetryAfter;
use tower_jsonrpc_retry::retry::HttpRetryLayer;
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

const BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
const FIRST: &str = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
const AGAIN: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;

fn response(
    status: u16,
    retry_after: Option<String>,
    body: &'static str,
) -> http::Response<Full<Bytes>> {
    let mut builder = http::Response::builder().status(status);
    if let Some(value) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, value);
    }
    builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// The HTTP-level layer with one retry, 100 ms on, for -32005 (the rate limit the
/// answers here give call 2).
fn one_retry_on_limits() -> HttpRetryLayer<Full<Bytes>> {
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]);
    JsonRpcRetryLayer::http(strategy)
}

/// `body` POSTed as the caller sends it.
fn post(body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .body(Full::from(body))
        .unwrap()
}

/// What an inner service answers.
type Answer = http::Response<Full<Bytes>>;

/// An inner service answering its `n`th exchange (from 1) with `answer(n)`, and the
/// count of exchanges it was sent.
fn counting(
    answer: impl Fn(usize) -> Answer + Clone + Send + Sync + 'static,
) -> (
    impl tower::Service<
        http::Request<Full<Bytes>>,
        Response = Answer,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
    Arc<AtomicUsize>,
) {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let svc = tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(Ok(answer(n)))
    });
    (svc, sent)
}

/// The seconds a `Retry-After` header of the layer's answer tells the caller to wait.
fn told(resp: &http::Response<Full<Bytes>>) -> u64 {
    resp.headers()
        .get(http::header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A batch whose first exchange answers call 1 and limits call 2 (retried alone); the
/// re-send is answered by `second`, whose `Retry-After` is an HTTP-date `secs` ahead.
/// Returns the layer's answer and the date the server sent: an HTTP-date has whole
/// seconds, so it is up to a second earlier than now + `secs` (comparing with the
/// latter made the test fail whenever the wall clock turned a second during the call).
async fn batch_then(
    second_status: u16,
    second_body: &'static str,
    secs: u64,
) -> (http::Response<Full<Bytes>>, SystemTime) {
    let date = httpdate::parse_http_date(&httpdate::fmt_http_date(
        SystemTime::now() + Duration::from_secs(secs),
    ))
    .unwrap();
    let (inner, sent) = counting(move |n| {
        if n == 1 {
            response(200, None, FIRST)
        } else {
            let date = Some(httpdate::fmt_http_date(date));
            response(second_status, date, second_body)
        }
    });
    let layer = one_retry_on_limits();
    let req = post(BATCH);
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "the batch, then call 2 alone"
    );
    (resp, date)
}

/// The layer writes the server's hint anew when it builds the answer (a batch gathered
/// from several exchanges, or whose last exchange failed as a whole): an HTTP-date hint
/// is a fractional delay, and telling the caller a whole second less than the server
/// asked makes it come back too early.
#[tokio::test(start_paused = true)]
async fn a_retry_after_the_layer_writes_is_never_shorter_than_the_servers() {
    for (status, body) in [(429, ""), (200, AGAIN)] {
        let (resp, date) = batch_then(status, body, 3).await;
        let secs = told(&resp);
        let wait_until = SystemTime::now() + Duration::from_secs(secs);
        assert!(
            wait_until >= date,
            "{status}: told {secs} s, the server asked until {}",
            httpdate::fmt_http_date(date)
        );
        assert!(secs <= 3, "{status}: told {secs} s");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
        assert_eq!(items.len(), 2, "{status}: {items:?}");
        assert_eq!(items[0]["result"], json!(3));
    }
}

/// Every HTTP request an inner service received: head and body.
type Seen = Arc<Mutex<Vec<(http::request::Parts, Bytes)>>>;

/// An inner service that records each request and answers with `answers` in turn (the
/// last one again when they run out).
fn recording(
    answers: Vec<(u16, &'static str)>,
) -> (
    impl tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<Full<Bytes>>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
    Seen,
) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let svc = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let log = Arc::clone(&log);
        let answers = answers.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let n = {
                let mut log = log.lock().unwrap();
                log.push((parts, body));
                log.len()
            };
            let (status, body) = answers[(n - 1).min(answers.len() - 1)];
            Ok::<_, std::convert::Infallible>(response(status, None, body))
        }
    });
    (svc, seen)
}

#[tokio::test(start_paused = true)]
async fn every_attempt_of_a_batch_has_the_callers_head_and_a_true_length() {
    let (inner, seen) = recording(vec![
        (200, FIRST),
        (200, r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#),
    ]);
    let layer = one_retry_on_limits();
    let spaced = format!("  {}  ", BATCH.replace(",{", " , {"));
    let req = http::Request::post("http://rpc.example/v1?key=k")
        .header(http::header::HOST, "rpc.example")
        .header(http::header::CONTENT_LENGTH, spaced.len())
        .header("x-tag", "a")
        .header(http::header::AUTHORIZATION, "Bearer t")
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(Full::from(spaced))
        .unwrap();
    let mut req = req;
    req.headers_mut().append("x-tag", "b".parse().unwrap());
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (parts, body) in seen.iter() {
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(parts.uri, "http://rpc.example/v1?key=k");
        assert_eq!(parts.headers[http::header::HOST], "rpc.example");
        assert_eq!(parts.headers[http::header::AUTHORIZATION], "Bearer t");
        assert_eq!(
            parts.headers[http::header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let tags: Vec<_> = parts.headers.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
        if let Some(len) = parts.headers.get(http::header::CONTENT_LENGTH) {
            assert_eq!(len.to_str().unwrap(), body.len().to_string(), "{body:?}");
        }
    }
    let second: Vec<Value> = serde_json::from_slice(&seen[1].1).unwrap();
    assert_eq!(second.len(), 1, "only call 2 again");
}

/// A batch goes as the caller's bytes, whitespace and all, with the caller's
/// `Content-Length` (so a signature of the body in a header still holds), on the first
/// attempt and on a retry of every item; a retry that sends only some items sends a new
/// array of their own bytes, framed afresh.
#[tokio::test(start_paused = true)]
async fn a_batch_goes_as_the_callers_bytes_until_a_retry_narrows_it() {
    const BOTH_LIMITED: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
    const BOTH: &str =
        r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":7,"id":2}]"#;
    const SECOND: &str = r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#;
    let pretty = "[\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1, 2], \"id\": 1},\n  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [3, 4], \"id\": 2}\n]\n";
    let item_2 = r#"{"jsonrpc": "2.0", "method": "sum", "params": [3, 4], "id": 2}"#;
    for (first, second, resent) in [
        (FIRST, SECOND, format!("[{item_2}]")),
        (BOTH_LIMITED, BOTH, pretty.to_owned()),
    ] {
        let (inner, seen) = recording(vec![(200, first), (200, second)]);
        let req = http::Request::post("http://rpc.example/")
            .header(http::header::CONTENT_LENGTH, pretty.len())
            .header("content-digest", "sha-256=:c2VudCBhcyBpdCBjYW1l:")
            .body(Full::from(pretty))
            .unwrap();
        let resp = tower::Layer::layer(&one_retry_on_limits(), inner)
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let seen = seen.lock().unwrap();
        let sent: Vec<&[u8]> = seen.iter().map(|(_, body)| body.as_ref()).collect();
        assert_eq!(sent, [pretty.as_bytes(), resent.as_bytes()]);
        let lengths: Vec<Option<String>> = seen
            .iter()
            .map(|(parts, _)| {
                let len = parts.headers.get(http::header::CONTENT_LENGTH)?;
                Some(len.to_str().unwrap().to_owned())
            })
            .collect();
        let callers = Some(pretty.len().to_string());
        let expected = if resent == pretty {
            callers.clone()
        } else {
            None
        };
        assert_eq!(lengths, [callers, expected]);
        // A digest of the caller's bytes goes with them, not with a narrowed batch.
        let digests: Vec<bool> = seen
            .iter()
            .map(|(parts, _)| parts.headers.contains_key("content-digest"))
            .collect();
        assert_eq!(digests, [true, resent == pretty]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_response_exactly_at_the_limit_is_read_and_one_byte_over_is_not() {
    const ANSWER: &str = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
    const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    for (limit, fits) in [(ANSWER.len(), true), (ANSWER.len() - 1, false)] {
        for status in [200u16, 503] {
            let (inner, seen) = recording(vec![(status, ANSWER)]);
            let layer =
                JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none()).response_limit(limit);
            let req = post(CALL);
            let res = tower::Layer::layer(&layer, inner).oneshot(req).await;
            assert_eq!(seen.lock().unwrap().len(), 1);
            match (fits, status) {
                (true, _) => {
                    let resp = res.unwrap();
                    assert_eq!(resp.status(), status);
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(body, ANSWER.as_bytes());
                }
                (false, 200) => {
                    let err = res.unwrap_err();
                    assert!(err.to_string().contains("limit"), "{err}");
                }
                (false, _) => {
                    let resp = res.unwrap();
                    assert_eq!(resp.status(), status);
                    assert_eq!(resp.headers().get(http::header::CONTENT_LENGTH), None);
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    assert!(body.is_empty());
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_exactly_at_the_limit_is_sent_and_one_byte_over_is_not() {
    const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    const ANSWER: &str = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
    for (limit, fits) in [(CALL.len(), true), (CALL.len() - 1, false)] {
        let (inner, seen) = recording(vec![(200, ANSWER)]);
        let layer =
            JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none()).request_limit(limit);
        let req = post(CALL);
        let res = tower::Layer::layer(&layer, inner).oneshot(req).await;
        assert_eq!(res.is_ok(), fits, "limit {limit}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), usize::from(fits), "limit {limit}");
        if fits {
            assert_eq!(seen[0].1, CALL.as_bytes());
        }
    }
}

/// An answer gathered from several exchanges is the layer's own: every call's latest
/// answer, in the body. It goes back as a 200 whatever the status of the last
/// exchange, so that a caller that refuses a non-2xx batch answer as a whole (jsonrpsee
/// does) still gets the calls that succeeded.
#[tokio::test(start_paused = true)]
async fn a_gathered_batch_answer_is_a_200_whatever_the_last_status() {
    for status in [503, 429, 200] {
        let (inner, seen) = recording(vec![(200, FIRST), (status, AGAIN)]);
        let layer = one_retry_on_limits();
        let req = post(BATCH);
        let resp = tower::Layer::layer(&layer, inner)
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "{status}: the batch, then call 2"
        );
        assert_eq!(resp.status(), 200, "{status}");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
        assert_eq!(items[0]["result"], json!(3), "{status}");
        assert_eq!(items[1]["error"]["code"], json!(-32005), "{status}");
    }
}

/// A gathered batch answer goes back under the head of the last exchange (its version,
/// and headers such as a request id or a rate-limit count), less the headers that
/// describe that exchange's own body (its length, framing and digest) and the reason
/// phrase of its status, which the layer's 200 replaces.
#[tokio::test(start_paused = true)]
async fn a_gathered_batch_answer_has_the_last_exchanges_head_but_not_its_bodys_headers() {
    let (inner, sent) = counting(|n| {
        let (status, body) = if n == 1 { (200, FIRST) } else { (503, AGAIN) };
        http::Response::builder()
            .status(status)
            .extension(hyper::ext::ReasonPhrase::from_static(b"Slow Down"))
            .version(http::Version::HTTP_2)
            .header("x-request-id", format!("exchange-{n}"))
            .header(http::header::CONTENT_LENGTH, body.len())
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header("content-digest", "sha-256=:AAAA:")
            .header(http::header::ETAG, "\"v1\"")
            .header("signature", "sig1=:AAAA:")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    });
    let layer = one_retry_on_limits();
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(post(BATCH))
        .await
        .unwrap();
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "the batch, then call 2 alone"
    );
    assert_eq!(resp.status(), 200);
    assert!(
        resp.extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_none(),
        "the 503's reason phrase goes with its status"
    );
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let headers = resp.headers();
    assert_eq!(headers["x-request-id"], "exchange-2", "the last exchange's");
    assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
    for gone in [
        "content-length",
        "content-digest",
        "etag",
        "signature",
        "retry-after",
    ] {
        assert!(!headers.contains_key(gone), "{gone}: {headers:?}");
    }
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
    assert_eq!(items[0]["result"], json!(3));
    assert_eq!(items[1]["error"]["code"], json!(-32005));
}

/// A later exchange that failed as a whole without a hint (a bare 429) has the last
/// word on time: the answer handed back, whether one exchange's or gathered from two,
/// carries no `Retry-After`, and not the hint a service below put in the extensions of
/// the earlier exchanges (a codec above would read it beside the header).
#[tokio::test(start_paused = true)]
async fn a_hint_in_an_earlier_answers_extensions_gives_way_to_a_later_failure() {
    for answered in [1, 2] {
        let (inner, sent) = counting(move |n| {
            let mut resp = match n {
                1 => response(200, None, FIRST),
                n if n <= answered => response(200, None, AGAIN),
                _ => response(429, None, ""),
            };
            if n <= answered {
                let hint = RetryAfter::new(Duration::from_secs(30));
                resp.extensions_mut().insert(hint);
            }
            resp
        });
        let strategy =
            RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100))).codes([-32005]);
        let resp = tower::Layer::layer(&JsonRpcRetryLayer::http(strategy), inner)
            .oneshot(post(BATCH))
            .await
            .unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), answered + 1, "{answered}");
        assert_eq!(resp.status(), 200, "{answered}");
        assert_eq!(
            resp.headers().get(http::header::RETRY_AFTER),
            None,
            "{answered}"
        );
        assert_eq!(resp.extensions().get::<RetryAfter>(), None, "{answered}");
    }
}

/// A later exchange that failed as a whole without a word of the server's on time (an
/// answer that is not JSON-RPC) leaves the last word to the earlier answer: what is left
/// of its `Retry-After` (25 s of 30 s, after a wait cut to a ceiling of 5 s).
#[tokio::test(start_paused = true)]
async fn after_a_last_failure_the_answer_tells_what_is_left_of_an_earlier_hint() {
    let (inner, sent) = counting(|n| match n {
        1 => response(200, Some("30".into()), FIRST),
        _ => response(200, None, "[{\"jsonrpc\""),
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .codes([-32005])
        .retry_after_ceiling(Duration::from_secs(5));
    let resp = tower::Layer::layer(&JsonRpcRetryLayer::http(strategy), inner)
        .oneshot(post(BATCH))
        .await
        .unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 2);
    assert_eq!(resp.status(), 200);
    assert_eq!(told(&resp), 25);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        got,
        FIRST.as_bytes(),
        "the first exchange's answer, as it came"
    );
}

/// `response_limit`'s doc: a partly retried batch whose re-send is answered over the
/// limit comes back as the answers gathered before (call 1's result, call 2's error),
/// not as an error that would lose call 1's answer.
#[tokio::test(start_paused = true)]
async fn a_partly_retried_batch_whose_re_send_is_over_the_limit_keeps_its_answers() {
    let huge: &'static str = Box::leak(
        format!(
            r#"[{{"jsonrpc":"2.0","result":"{}","id":2}}]"#,
            "x".repeat(200)
        )
        .into_boxed_str(),
    );
    assert!(huge.len() > FIRST.len());
    for status in [200u16, 503] {
        let (inner, seen) = recording(vec![(200, FIRST), (status, huge)]);
        let layer = one_retry_on_limits().response_limit(FIRST.len());
        let req = post(BATCH);
        let resp = tower::Layer::layer(&layer, inner)
            .oneshot(req)
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "{status}: the batch, then call 2"
        );
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
        assert_eq!(items.len(), 2, "{status}: {items:?}");
        assert_eq!(items[0]["result"], json!(3), "{status}");
        assert_eq!(items[1]["error"]["code"], json!(-32005), "{status}");
    }
}

/// A JSON-RPC 1.0 server (Bitcoin Core before 28) answers a batch's notification too,
/// with a null id, and writes `"error": null` beside a result: the call's code is read
/// and retried alone, and the answer handed back has the call's result.
#[tokio::test(start_paused = true)]
async fn a_json_rpc_1_0_servers_batch_answer_with_a_notification_is_read() {
    const SENT: &str = r#"[{"jsonrpc":"2.0","method":"getblockcount","params":[],"id":1},{"jsonrpc":"2.0","method":"ping","params":[]}]"#;
    const WARMING_UP: &str = r#"[{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":1},{"result":null,"error":null,"id":null}]"#;
    const COUNT: &str = r#"[{"result":840000,"error":null,"id":1}]"#;
    let (inner, seen) = recording(vec![(200, WARMING_UP), (200, COUNT)]);
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-28]);
    let layer: HttpRetryLayer<Full<Bytes>> = JsonRpcRetryLayer::http(strategy);
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(post(SENT))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer[0]["result"], json!(840000), "{answer}");
    let sent: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).unwrap())
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].as_array().map(Vec::len),
        Some(1),
        "the call alone: {}",
        sent[1]
    );
}

/// The layer's answer to `batch` over an inner service answering its `n`th exchange
/// (from 1) with `answers(n)` (a 200), with `strategy`, as text, and as items once
/// `unreadable` (what serde_json's values cannot hold) is taken out; and the exchanges
/// sent.
async fn gathered(
    strategy: RetryStrategy,
    batch: &'static str,
    answers: fn(usize) -> &'static str,
    unreadable: &str,
) -> (String, Vec<Value>, usize) {
    let (inner, sent) = counting(move |n| response(200, None, answers(n)));
    let layer = JsonRpcRetryLayer::http(strategy);
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(post(batch))
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let items = serde_json::from_str(&body.replace(unreadable, ""))
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    (body, items, sent.load(Ordering::SeqCst))
}

/// geth refuses a batch over its size limit with an array of one error under the first
/// call's id. Kept for a non-idempotent notification the retry leaves unsent, the refusal
/// is one item of the gathered answer, its error object under a null id, not the
/// server's whole array nested in it nor a second answer to call 1; and the calls it
/// refused carry that error object as the server wrote it.
#[tokio::test(start_paused = true)]
async fn a_geth_refusal_in_a_gathered_answer_is_one_item_under_a_null_id() {
    const TOO_LARGE: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32600,"message":"batch too large","data":1e400},"id":1}]"#;
    let batch = r#"[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b","id":2},{"jsonrpc":"2.0","method":"log"}]"#;
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .codes([-32600])
        .non_idempotent(["log"]);
    let (body, items, sent) = gathered(
        strategy.clone(),
        batch,
        |n| match n {
            1 => TOO_LARGE,
            _ => r#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":2,"id":2}]"#,
        },
        r#","data":1e400"#,
    )
    .await;
    assert_eq!(
        sent, 2,
        "the batch, then its calls without the notification"
    );
    let ids: Vec<&Value> = items.iter().map(|item| &item["id"]).collect();
    assert_eq!(ids, [&json!(1), &json!(2), &Value::Null], "{body}");
    assert!(
        body.ends_with(r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"batch too large","data":1e400},"id":null}]"#),
        "the server's error object as it wrote it: {body}"
    );

    // A re-send of calls 2 and 3 refused so (under call 2's id), the last retry: each
    // carries the error object as the server wrote it, its `data` beyond serde_json's
    // numbers included, call 2 in the server's own item, call 3 around the same object.
    let (body, items, sent) = gathered(
        strategy.codes([-32005]),
        r#"[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b","id":2},{"jsonrpc":"2.0","method":"c","id":3}]"#,
        |n| match n {
            1 => r#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":3}]"#,
            _ => r#"[{"jsonrpc":"2.0","error":{"code":-32600,"message":"batch too large","data":1e400},"id":2}]"#,
        },
        r#","data":1e400"#,
    )
    .await;
    assert_eq!(sent, 2);
    assert_eq!(body.matches("1e400").count(), 2, "{body}");
    let ids: Vec<&Value> = items.iter().map(|item| &item["id"]).collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!(3)], "{body}");
}

/// An answer item with a lone UTF-16 surrogate escape in a member name reads as the
/// decoder reads it (mended), so a gathered answer still carries its own bytes: its
/// result is not written anew as `null` (results at the HTTP level are checked, not
/// built).
#[tokio::test(start_paused = true)]
async fn a_gathered_answer_keeps_an_item_with_a_lone_surrogate_in_a_name() {
    let (body, items, sent) = gathered(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]),
        BATCH,
        |n| match n {
            1 => {
                r#"[{"jsonrpc":"2.0","result":"0x2a","id":1,"x\ud83d":0},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#
            }
            _ => r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#,
        },
        r#","x\ud83d":0"#,
    )
    .await;
    assert_eq!(sent, 2);
    assert!(
        body.contains(r#""x\ud83d":0"#),
        "the item as the server wrote it: {body}"
    );
    assert_eq!(items[0]["result"], "0x2a", "{body}");
    assert_eq!(items[1]["result"], 7);
}

/// The same for an answer whose string id holds a lone surrogate escape: the decoder
/// reads it mended (U+FFFD) and matches it to the call whose id that is, and a gathered
/// answer keeps that item's own bytes, its result included.
#[tokio::test(start_paused = true)]
async fn a_gathered_answer_keeps_an_item_with_a_lone_surrogate_in_its_id() {
    let (body, items, sent) = gathered(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]),
        r#"[{"jsonrpc":"2.0","method":"sum","id":"\ufffd"},{"jsonrpc":"2.0","method":"sum","id":2}]"#,
        |n| match n {
            1 => {
                r#"[{"jsonrpc":"2.0","result":"0x2a","id":"\ud83d"},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#
            }
            _ => r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#,
        },
        r#"\ud83d"#,
    )
    .await;
    assert_eq!(sent, 2);
    assert!(body.contains(r#""result":"0x2a","id":"\ud83d""#), "{body}");
    assert_eq!(items[1]["result"], 7);
}

/// A batch whose first exchange ran its notification and whose re-send of its one call
/// is refused as a whole: the layer hands back an array with the call's answer (the
/// refusal's error object under its id), not the refusal as it came, which says the
/// whole batch was refused and would have a retry layer above send the notification
/// again.
#[tokio::test(start_paused = true)]
async fn a_refused_re_send_after_a_notification_ran_comes_back_as_the_calls_answer() {
    let (body, items, sent) = gathered(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]),
        r#"[{"jsonrpc":"2.0","method":"sum","id":1},{"jsonrpc":"2.0","method":"log"}]"#,
        |n| match n {
            1 => r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}]"#,
            _ => r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"again"},"id":null}"#,
        },
        "",
    )
    .await;
    assert_eq!(sent, 2);
    assert_eq!(
        body,
        r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"again"},"id":1}]"#
    );
    assert_eq!(items.len(), 1);
}

/// A re-send narrowed to one call goes as a batch of one; a server that unwraps its
/// answer array of one item answers with a bare object under the call's id. That is the
/// call's answer: the caller gets an array with both calls' results, after one re-send.
#[tokio::test(start_paused = true)]
async fn an_unwrapped_answer_to_a_re_send_of_one_call_is_gathered_into_the_batch() {
    const UNWRAPPED: &str = r#"{"jsonrpc":"2.0","result":7,"id":2}"#;
    let (inner, seen) = recording(vec![(200, FIRST), (200, UNWRAPPED)]);
    let resp = tower::Layer::layer(&one_retry_on_limits(), inner)
        .oneshot(post(BATCH))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2, "the batch, then call 2");
    assert_eq!(resp.status(), http::StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
    let results: Vec<&Value> = items.iter().map(|item| &item["result"]).collect();
    assert_eq!(results, [&json!(3), &json!(7)]);
}
