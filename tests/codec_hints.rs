//! The codec keeps what an answer says beyond its body: a refusal of a batch of
//! notifications under a failure status, and `Retry-After` on any answer (also on a
//! 2xx that fails to decode, and on a 2xx answer to a notification).
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{self, JsonRpcCodecLayer, RetryAfter};
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// An in-memory HTTP service answering with `answers` in turn (the last one repeated);
/// `count` counts the HTTP requests.
fn http_svc(
    answers: Vec<Answer>,
    count: Arc<AtomicUsize>,
) -> impl tower::Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send {
    let answers = Arc::new(Mutex::new(answers));
    tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
        let answers = answers.clone();
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            let a = answers.lock().unwrap();
            let (status, headers, body) = a[n.min(a.len() - 1)].clone();
            let mut resp = http::Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            Ok::<_, Infallible>(
                resp.body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap(),
            )
        }
    })
}

fn codec_layer() -> JsonRpcCodecLayer {
    JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap())
}

fn notifications() -> BatchRequest {
    BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("log", json!(["b"])),
    ])
}

// --- a batch of notifications refused under a failure status ---------------------------

/// `[]` is not a JSON-RPC answer (the specification forbids an empty array), so a 503
/// with `[]` is a status error, as a 503 with an empty body is.
#[tokio::test]
async fn all_notification_batch_refused_with_503_and_empty_array_is_a_status_error() {
    // Control: an empty body under 503 is a status error (passes).
    let c = Arc::new(AtomicUsize::new(0));
    let err = codec_layer()
        .layer(http_svc(vec![(503, vec![], "")], c))
        .oneshot(notifications())
        .await
        .expect_err("503, empty body");
    assert!(err.is_status());

    // `[]` under the same 503: Ok, with the 503 hidden in the extensions.
    let c = Arc::new(AtomicUsize::new(0));
    let result = codec_layer()
        .layer(http_svc(vec![(503, vec![], "[]")], c))
        .oneshot(notifications())
        .await;
    match result {
        Err(err) => assert!(err.is_status(), "{err:?}"),
        Ok(resp) => panic!(
            "a 503 refusal decoded as Ok: {resp:?}, status in extensions {:?}",
            resp.extensions().get::<http::StatusCode>()
        ),
    }
}

/// Under `RetryStrategy::transient()` (503 is retried) the refused notifications are sent
/// again.
#[tokio::test(start_paused = true)]
async fn all_notification_batch_refused_with_503_and_empty_array_is_retried_under_transient() {
    let count = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(RetryStrategy::transient_seeded(1)))
        .layer(codec_layer())
        .service(http_svc(
            vec![(503, vec![], "[]"), (204, vec![], "")],
            count.clone(),
        ));
    let resp = svc.oneshot(notifications()).await.unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "the 503 was not retried; the caller got Ok with status {:?}",
        resp.extensions().get::<http::StatusCode>()
    );
}

// --- `Retry-After` on a 2xx answer that fails ---------------------------------------

/// A `Retry-After` header, on any answer, is recorded (module docs): also in the error
/// of a 2xx answer that fails to decode.
#[tokio::test]
async fn retry_after_on_a_2xx_decode_error_is_kept_in_the_error() {
    for body in [
        "<html>busy</html>",
        r#"{"jsonrpc":"2.0","result":3,"id":2}"#,
        "",
    ] {
        let c = Arc::new(AtomicUsize::new(0));
        let err = codec_layer()
            .layer(http_svc(vec![(200, vec![("retry-after", "5")], body)], c))
            .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
            .await
            .expect_err("not an answer to id 1");
        assert!(err.is_decode());
        assert_eq!(
            err.retry_after(),
            Some(Duration::from_secs(5)),
            "body {body:?}: {err:?}"
        );
    }
}

/// Sends `sum(1, 2)` through `svc`, whose first answer asks for a 30 s wait, and asserts
/// that the second attempt answered it, 30 s later.
async fn answered_after_the_hint<S>(svc: S, count: &AtomicUsize)
where
    S: tower::Service<Request, Response = tower_jsonrpc_retry::jsonrpc::Response>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    let resp = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .expect("the first answer was retried");
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "the hint was ignored"
    );
}

/// [`answered_after_the_hint`] at the HTTP level: `sum(1, 2)` POSTed through `svc` is
/// answered 200 by the second attempt, 30 s later.
async fn answered_over_http_after_the_hint<S>(svc: S, count: &AtomicUsize, ctx: &str)
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let resp = svc
        .oneshot(http::Request::new(Full::new(Bytes::from_static(
            body.as_bytes(),
        ))))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{ctx}");
    assert_eq!(count.load(Ordering::SeqCst), 2, "{ctx}");
    assert_eq!(start.elapsed(), Duration::from_secs(30), "{ctx}");
}

/// A strategy that retries decode errors waits as the hint a decode error carries asks.
#[tokio::test(start_paused = true)]
async fn a_retried_2xx_decode_error_honours_retry_after() {
    let count = Arc::new(AtomicUsize::new(0));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .retry_if(|e| {
            e.downcast_ref::<codec::Error>()
                .is_some_and(codec::Error::is_decode)
        });
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(codec_layer())
        .service(http_svc(
            vec![
                (200, vec![("retry-after", "30")], "<html>overloaded</html>"),
                (200, vec![], r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
            ],
            count.clone(),
        ));
    answered_after_the_hint(svc, &count).await;
}

// --- `Retry-After` on a 2xx answer to a notification --------------------------------

/// The same for a notification answered 202 with a hint.
#[tokio::test]
async fn retry_after_on_a_2xx_answer_to_a_notification_is_recorded() {
    let c = Arc::new(AtomicUsize::new(0));
    let resp = codec_layer()
        .layer(http_svc(vec![(202, vec![("retry-after", "5")], "")], c))
        .oneshot(Request::new("log", json!(["x"])))
        .await
        .unwrap();
    assert_eq!(
        resp.extensions().get::<RetryAfter>(),
        Some(&RetryAfter::new(Duration::from_secs(5)))
    );
}

// --- Through a layer that boxes the codec's errors ------------------------------------

/// Under a layer that boxes the codec's errors (a `map_err`, a `TimeoutLayer`), the
/// retry still reads the status and the `Retry-After` hint of the `codec::Error` in the
/// chain (`InspectError`'s provided methods, which `BoxError` uses).
#[tokio::test(start_paused = true)]
async fn status_and_retry_after_are_read_through_a_boxed_error() {
    let count = Arc::new(AtomicUsize::new(0));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .map_err(BoxError::from)
        .layer(codec_layer())
        .service(http_svc(
            vec![
                (503, vec![("retry-after", "30")], ""),
                (200, vec![], r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
            ],
            count.clone(),
        ));
    answered_after_the_hint(svc, &count).await;
}

// --- `Retry-After` given twice ------------------------------------------------------

/// A proxy and the origin each add `Retry-After`: the longest readable wait counts, at
/// both levels, whether the first line is unreadable or shorter.
#[tokio::test(start_paused = true)]
async fn a_retry_after_given_twice_waits_the_longest_readable_hint() {
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    for first in ["soon", "5"] {
        let answers = || {
            vec![
                (503, vec![("retry-after", first), ("retry-after", "30")], ""),
                (200, vec![], r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
            ]
        };
        let count = Arc::new(AtomicUsize::new(0));
        let svc = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(strategy.clone()))
            .layer(codec_layer())
            .service(http_svc(answers(), count.clone()));
        answered_after_the_hint(svc, &count).await;

        let count = Arc::new(AtomicUsize::new(0));
        let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy.clone())
            .layer(http_svc(answers(), count.clone()));
        answered_over_http_after_the_hint(svc, &count, &format!("{first}, then 30")).await;
    }
}

// --- A hint a service below puts in the answer's extensions -----------------------

/// `RetryAfter::new`'s doc: a service below the codec (or below the HTTP-level layer)
/// that learns the server's wait some other way puts it in the answer's extensions, and
/// it is honoured as the server's own; beside a `Retry-After` header, the longer counts.
/// Both on a bare 503 and on a JSON-RPC error answer a rule retries.
#[tokio::test(start_paused = true)]
async fn a_hint_a_service_below_puts_in_the_extensions_is_honoured_at_both_levels() {
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .codes([-32005]);
    let limited = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}"#;
    for (status, body) in [(503, ""), (200, limited)] {
        for (header, given) in [(None, 30), (Some("5"), 30), (Some("30"), 5)] {
            let ctx = format!("{status}, header {header:?}, extension {given} s");
            let answers = || {
                let headers = header.map(|v| ("retry-after", v)).into_iter().collect();
                vec![
                    (status, headers, body),
                    (200, vec![], r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
                ]
            };
            // The first answer's hint, from the service below.
            let hinting = move |count: Arc<AtomicUsize>| {
                let seen = Arc::clone(&count);
                ServiceBuilder::new()
                    .map_response(move |mut resp: http::Response<Full<Bytes>>| {
                        if seen.load(Ordering::SeqCst) == 1 {
                            let hint = RetryAfter::new(Duration::from_secs(given));
                            resp.extensions_mut().insert(hint);
                        }
                        resp
                    })
                    .service(http_svc(answers(), count))
            };

            let count = Arc::new(AtomicUsize::new(0));
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy.clone()))
                .layer(codec_layer())
                .service(hinting(count.clone()));
            answered_after_the_hint(svc, &count).await;

            let count = Arc::new(AtomicUsize::new(0));
            let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy.clone())
                .layer(hinting(count.clone()));
            answered_over_http_after_the_hint(svc, &count, &ctx).await;
        }
    }
}

/// `RetryAfter`'s doc: an HTTP-date in the past is a delay of zero, from 1970 on; a date
/// before 1970 is ignored, as httpdate reads none.
#[test]
fn a_past_retry_after_date_is_zero_from_1970_and_ignored_before() {
    use std::time::SystemTime;
    use tower_jsonrpc_retry::codec::RetryAfter;
    let now = SystemTime::now();
    let zero = Some(RetryAfter::new(Duration::ZERO));
    assert_eq!(
        RetryAfter::parse("Thu, 01 Jan 1970 00:00:00 GMT", now),
        zero
    );
    assert_eq!(
        RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT", now),
        zero
    );
    assert_eq!(
        RetryAfter::parse("Wed, 31 Dec 1969 23:59:59 GMT", now),
        None
    );
}

/// `Delay::new`'s doc: tokio waits no longer than its far future, about 30 years.
#[tokio::test(start_paused = true)]
async fn a_delay_past_tokios_far_future_waits_about_30_years() {
    let year = Duration::from_secs(365 * 86_400);
    let start = Instant::now();
    tower_jsonrpc_retry::retry::future::Delay::new(40 * year).await;
    let waited = start.elapsed();
    assert!(waited >= 29 * year && waited <= 31 * year, "{waited:?}");
}
