//! One table of retry semantics, run at both levels: `JsonRpcRetryLayer::new` over the
//! codec, and `JsonRpcRetryLayer::http` over a raw HTTP client. Each case states the
//! server's script, the strategy, and what the caller must see: the outcome, the number
//! of attempts, and the time taken on tokio's paused clock. The table runs over HTTP/1.1
//! and over HTTP/2 (prior knowledge, which `FlakyServer` speaks): the same outcomes,
//! attempts and times, a dropped connection being a reset stream over HTTP/2.
//!
//! In every case, what the caller's failure records of the retries' end ([`GaveUp`]) is
//! what the `on_give_up` hook heard, and a success records nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower::ServiceExt;
use tower::timeout::TimeoutLayer;
use tower::timeout::error::Elapsed;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    BoxError, ErrorClass, GaveUp, GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryStrategy,
};

use common::{ATTEMPT_TIMEOUT, ended, secs, try_again_in};

#[derive(Clone, Copy, Debug)]
enum Level {
    JsonRpc,
    Http,
}

/// What a caller sees, the same way at both levels.
#[derive(Debug, PartialEq)]
enum Outcome {
    Result(Value),
    Code(i64),
    /// A notification went through.
    Delivered,
    Status(u16),
    Timeout,
    Other(String),
}

struct Case {
    name: &'static str,
    method: &'static str,
    notification: bool,
    steps: Vec<Step>,
    strategy: RetryStrategy,
    per_request: Option<RetryStrategy>,
    /// The default's strategy for the case's method (`RetryStrategy::for_method`).
    method_strategy: Option<RetryStrategy>,
    outcome: Outcome,
    calls: usize,
    elapsed: Duration,
    /// Why the retries ended, when the case is about it.
    reason: Option<GiveUpReason>,
}

/// A node behind a balancer that has not seen what was asked for yet.
fn null_result() -> Step {
    Step::raw(200, r#"{"jsonrpc":"2.0","result":null,"id":1}"#)
}

fn is_null(_method: &str, result: &Value) -> bool {
    result.is_null()
}

fn periodic(attempts: usize, interval: f64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, secs(interval)))
}

fn case(name: &'static str, steps: Vec<Step>, strategy: RetryStrategy) -> Case {
    Case {
        name,
        method: "sum",
        notification: false,
        steps,
        strategy,
        per_request: None,
        method_strategy: None,
        outcome: Outcome::Result(json!(3)),
        calls: 1,
        elapsed: Duration::ZERO,
        reason: None,
    }
}

impl Case {
    fn expect(mut self, outcome: Outcome, calls: usize, elapsed: Duration) -> Self {
        self.outcome = outcome;
        self.calls = calls;
        self.elapsed = elapsed;
        self
    }

    fn given_up(mut self, reason: GiveUpReason) -> Self {
        self.reason = Some(reason);
        self
    }
}

fn table() -> Vec<Case> {
    let e = |code| Step::error(code);
    let status503 = ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE);
    let status429 = ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS);
    // A gateway's rate-limit answer: a JSON-RPC error, but not to this call (id 0).
    let foreign_429 = || {
        Step::raw(
            429,
            r#"{"jsonrpc":"2.0","error":{"code":-32029,"message":"rate limited"},"id":0}"#,
        )
        .retry_after("7")
    };
    // A string cut in the middle of an emoji, as JavaScript's `JSON.stringify` writes it:
    // a lone surrogate, valid JSON that serde_json cannot hold in a `String`.
    let cut = |member: &str| {
        let error = match member {
            "message" => r#"{"code":2001,"message":"busy \ud83d"}"#,
            _ => r#"{"code":2001,"message":"busy","data":"try later \ud83d"}"#,
        };
        Step::raw(
            200,
            format!(r#"{{"jsonrpc":"2.0","error":{error},"id":1}}"#),
        )
    };
    vec![
        case(
            "a JSON-RPC 1.0 server's answers (Bitcoin Core before 28): a listed code under 500, then a result",
            vec![
                Step::raw(
                    500,
                    r#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":1}"#,
                ),
                Step::raw(200, r#"{"result":3,"error":null,"id":1}"#),
            ],
            periodic(3, 1.0).codes([-28]),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(1.0)),
        case(
            "listed code retried while delays remain",
            vec![e(2001), e(2001)],
            periodic(3, 1.0).codes([2001]),
        )
        .expect(Outcome::Result(json!(3)), 3, secs(2.0)),
        case(
            "a listed code whose message or data holds a lone surrogate retried",
            vec![cut("message"), cut("data")],
            periodic(3, 1.0).codes([2001]),
        )
        .expect(Outcome::Result(json!(3)), 3, secs(2.0)),
        case(
            "an error whose message holds a lone surrogate returned as the server's answer",
            vec![cut("message")],
            periodic(3, 1.0).retry_on(ErrorClass::Timeout),
        )
        .expect(Outcome::Code(2001), 1, Duration::ZERO),
        case(
            "last error response returned when delays run out",
            std::iter::repeat_n(e(2001), 5).collect(),
            periodic(3, 1.0).codes([2001]),
        )
        .expect(Outcome::Code(2001), 4, secs(3.0)),
        case(
            "empty code set retries no code",
            vec![e(2001)],
            periodic(3, 1.0).retry_on(ErrorClass::Timeout),
        )
        .expect(Outcome::Code(2001), 1, Duration::ZERO),
        case(
            "matched error retried",
            vec![Step::timeout(), Step::timeout()],
            periodic(3, 1.0).retry_on_error::<Elapsed>(),
        )
        .expect(
            Outcome::Result(json!(3)),
            3,
            ATTEMPT_TIMEOUT * 2 + secs(2.0),
        ),
        case(
            "last error returned when delays run out",
            std::iter::repeat_n(Step::timeout(), 5).collect(),
            periodic(2, 1.0).retry_on_error::<Elapsed>(),
        )
        .expect(Outcome::Timeout, 3, ATTEMPT_TIMEOUT * 3 + secs(2.0)),
        case(
            "codes and errors share one delay iterator",
            vec![Step::timeout(), e(2001), e(2001)],
            periodic(2, 1.0).codes([2001]).retry_on(ErrorClass::Timeout),
        )
        .expect(Outcome::Code(2001), 3, ATTEMPT_TIMEOUT + secs(2.0)),
        Case {
            per_request: Some(periodic(1, 5.0).codes([2002])),
            ..case(
                "per-request strategy replaces the default",
                vec![e(2001)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Code(2001), 1, Duration::ZERO),
        Case {
            per_request: Some(RetryStrategy::none()),
            ..case(
                "none() in the extensions disables retry",
                vec![e(2001)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Code(2001), 1, Duration::ZERO),
        Case {
            method_strategy: Some(periodic(1, 5.0).codes([2002])),
            ..case(
                "a method's strategy replaces the default for its calls",
                vec![e(2002), e(2002)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Code(2002), 2, secs(5.0)),
        Case {
            notification: true,
            method_strategy: Some(periodic(1, 5.0).codes([2001])),
            ..case(
                "a method's strategy governs its notifications too",
                vec![Step::status(503), Step::status(503)],
                periodic(1, 1.0).retry_on(status503),
            )
        }
        .expect(Outcome::Status(503), 1, Duration::ZERO),
        Case {
            method_strategy: Some(RetryStrategy::none()),
            ..case(
                "a method's none() sends its calls once",
                vec![e(2001)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Code(2001), 1, Duration::ZERO),
        Case {
            per_request: Some(periodic(1, 2.0).codes([2002])),
            method_strategy: Some(periodic(3, 1.0).codes([2002])),
            ..case(
                "a call's own strategy outranks its method's",
                vec![e(2002), e(2002), e(2002)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Code(2002), 2, secs(2.0)),
        Case {
            method_strategy: Some(periodic(10, 1.0).codes([2001]).max_elapsed(secs(4.5))),
            ..case(
                "a method's deadline may be later than the default's",
                std::iter::repeat_n(e(2001), 10).collect(),
                periodic(10, 1.0).codes([2001]).max_elapsed(secs(2.5)),
            )
        }
        .expect(Outcome::Code(2001), 5, secs(4.0)),
        Case {
            method_strategy: Some(
                periodic(3, 0.0)
                    .retry_on(ErrorClass::Timeout)
                    .max_elapsed(Duration::from_millis(150)),
            ),
            ..case(
                "a method's deadline bounds the first attempt",
                vec![Step::ok().after(secs(10.0))],
                periodic(3, 0.0)
                    .retry_on(ErrorClass::Timeout)
                    .max_elapsed(secs(5.0)),
            )
        }
        .expect(Outcome::Timeout, 1, Duration::from_millis(150)),
        Case {
            method_strategy: Some(RetryStrategy::none().max_elapsed(Duration::from_millis(150))),
            ..case(
                "a method's none() with a deadline sends once, cut at it",
                vec![Step::ok().after(secs(10.0))],
                periodic(3, 0.0).retry_on(ErrorClass::Timeout),
            )
        }
        .expect(Outcome::Timeout, 1, Duration::from_millis(150)),
        Case {
            method_strategy: Some(periodic(3, 0.0).retry_on(ErrorClass::Timeout)),
            ..case(
                "a method's strategy without a deadline has none",
                vec![Step::timeout(), Step::timeout()],
                periodic(3, 0.0)
                    .retry_on(ErrorClass::Timeout)
                    .max_elapsed(Duration::from_millis(150)),
            )
        }
        .expect(Outcome::Result(json!(3)), 3, ATTEMPT_TIMEOUT * 2),
        case(
            "Retry-After raises the next delay",
            vec![Step::status(503).retry_after("2")],
            periodic(3, 0.1).retry_on(status503),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(2.0)),
        case(
            "Retry-After is clamped to the ceiling",
            vec![Step::status(503).retry_after("999999999")],
            periodic(3, 0.1)
                .retry_on(status503)
                .retry_after_ceiling(secs(5.0)),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(5.0)),
        case(
            "a wait in the error's data (backoff_seconds, at the top or under rate) raises the next delay",
            vec![
                Step::error_with(2001, "busy", Some(json!({"backoff_seconds": 1.25}))),
                Step::error_with(
                    2001,
                    "busy",
                    Some(json!({"rate": {"backoff_seconds": 2}})),
                ),
            ],
            periodic(3, 0.1).codes([2001]),
        )
        .expect(Outcome::Result(json!(3)), 3, secs(3.25)),
        case(
            "a hint ending at or past the deadline gives up at once",
            vec![Step::status(503).retry_after("10")],
            periodic(3, 0.1).retry_on(status503).max_elapsed(secs(5.0)),
        )
        .expect(Outcome::Status(503), 1, secs(0.0))
        .given_up(GiveUpReason::Deadline),
        case(
            "a hint makes no retry once the backoff has no delay left",
            vec![
                Step::status(503).retry_after("1"),
                Step::status(503).retry_after("1"),
            ],
            periodic(1, 0.1).retry_on(status503),
        )
        .expect(Outcome::Status(503), 2, secs(1.0)),
        case(
            "a result a rule retries is asked for again",
            vec![null_result()],
            periodic(3, 0.1).retry_result_if(is_null),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(0.1)),
        case(
            "a result retried until the backoff runs out comes back as it is",
            vec![null_result(), null_result(), null_result()],
            periodic(2, 0.1).retry_result_if(is_null),
        )
        .expect(Outcome::Result(json!(null)), 3, secs(0.2)),
        case(
            "a result rule reads results only: another result is the answer",
            vec![Step::ok()],
            periodic(3, 0.1).retry_result_if(is_null),
        )
        .expect(Outcome::Result(json!(3)), 1, secs(0.0)),
        case(
            "a result rule never retries a non-idempotent method",
            vec![null_result()],
            periodic(3, 0.1)
                .retry_result_if(is_null)
                .non_idempotent(["sum"]),
        )
        .expect(Outcome::Result(json!(null)), 1, secs(0.0))
        .given_up(GiveUpReason::NotIdempotent),
        Case {
            per_request: Some(periodic(3, 0.1).retry_result_if(is_null)),
            ..case(
                "a request's own result rule reads its result, the default having none",
                vec![null_result()],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Result(json!(3)), 2, secs(0.1)),
        Case {
            method_strategy: Some(periodic(3, 0.1).retry_result_if(is_null)),
            ..case(
                "a method's result rule reads its calls' results, the default having none",
                vec![null_result()],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Result(json!(3)), 2, secs(0.1)),
        case(
            "a hint read from the answer raises the next delay",
            vec![Step::error_with(2001, "busy, try again in 1500ms", None)],
            periodic(3, 0.1).codes([2001]).retry_after_from(try_again_in),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(1.5)),
        case(
            "a hint read from the answer never shortens a delay, and is held to the ceiling",
            vec![
                Step::error_with(2001, "busy, try again in 10ms", None),
                Step::error_with(2001, "busy, try again in 99999999ms", None),
            ],
            periodic(3, 1.0)
                .codes([2001])
                .retry_after_from(try_again_in)
                .retry_after_ceiling(secs(5.0)),
        )
        .expect(Outcome::Result(json!(3)), 3, secs(6.0)),
        case(
            "a hint read from the answer makes nothing retryable",
            vec![Step::error_with(2001, "busy, try again in 1500ms", None)],
            periodic(3, 0.1).retry_after_from(try_again_in),
        )
        .expect(Outcome::Code(2001), 1, secs(0.0)),
        case(
            "an exhausted status comes back as that status",
            std::iter::repeat_n(Step::status(503), 3).collect(),
            periodic(2, 0.1).retry_on(status503),
        )
        .expect(Outcome::Status(503), 3, secs(0.2)),
        case(
            "no retry scheduled past the deadline",
            std::iter::repeat_n(e(2001), 10).collect(),
            periodic(10, 1.0).codes([2001]).max_elapsed(secs(2.5)),
        )
        .expect(Outcome::Code(2001), 3, secs(2.0)),
        case(
            "the deadline bounds the first attempt too",
            vec![Step::ok().after(secs(10.0))],
            periodic(3, 0.0)
                .retry_on(ErrorClass::Timeout)
                .max_elapsed(Duration::from_millis(150)),
        )
        .expect(Outcome::Timeout, 1, Duration::from_millis(150)),
        Case {
            per_request: Some(
                periodic(3, 0.0)
                    .retry_on(ErrorClass::Timeout)
                    .max_elapsed(Duration::from_millis(150)),
            ),
            ..case(
                "a per-request deadline bounds the first attempt",
                vec![Step::ok().after(secs(10.0))],
                periodic(3, 0.0).retry_on(ErrorClass::Timeout),
            )
        }
        .expect(Outcome::Timeout, 1, Duration::from_millis(150)),
        case(
            "status class applies to a JSON-RPC body",
            vec![Step::status_with_error(503, -32603)],
            periodic(3, 1.0).retry_on(status503),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(1.0)),
        case(
            "a non-2xx answer to another id is its status: Retry-After honoured",
            vec![foreign_429()],
            periodic(3, 0.1).retry_on(status429),
        )
        .expect(Outcome::Result(json!(3)), 2, secs(7.0)),
        case(
            "a non-2xx answer to another id comes back as that status",
            vec![foreign_429()],
            periodic(3, 0.1).codes([-32029]),
        )
        .expect(Outcome::Status(429), 1, Duration::ZERO),
        Case {
            method: "send",
            ..case(
                "non-idempotent: an error response is final",
                vec![e(-32005)],
                periodic(3, 1.0).codes([-32005]).non_idempotent(["send"]),
            )
        }
        .expect(Outcome::Code(-32005), 1, Duration::ZERO)
        .given_up(GiveUpReason::NotIdempotent),
        Case {
            method: "send",
            ..case(
                "non-idempotent: a retried status is final",
                vec![Step::status(503)],
                periodic(3, 1.0)
                    .retry_on(status503)
                    .non_idempotent(["send"]),
            )
        }
        .expect(Outcome::Status(503), 1, Duration::ZERO)
        .given_up(GiveUpReason::NotIdempotent),
        Case {
            method: "send",
            ..case(
                "non-idempotent: a code no rule retries is not retryable",
                vec![e(-32602)],
                periodic(3, 1.0).codes([-32005]).non_idempotent(["send"]),
            )
        }
        .expect(Outcome::Code(-32602), 1, Duration::ZERO)
        .given_up(GiveUpReason::NotRetryable),
        Case {
            method: "send",
            ..case(
                "non-idempotent: a dropped connection is final",
                vec![Step::drop_connection()],
                periodic(3, 1.0)
                    .retry_on(ErrorClass::Reset)
                    .non_idempotent(["send"]),
            )
        }
        .expect(Outcome::Other("reset".to_owned()), 1, Duration::ZERO)
        .given_up(GiveUpReason::NotIdempotent),
        Case {
            method: "send",
            method_strategy: Some(periodic(3, 1.0).codes([-32005])),
            ..case(
                "non-idempotent: the mark holds under the method's own strategy",
                vec![e(-32005)],
                periodic(3, 1.0).non_idempotent(["send"]),
            )
        }
        .expect(Outcome::Code(-32005), 1, Duration::ZERO)
        .given_up(GiveUpReason::NotIdempotent),
        Case {
            notification: true,
            ..case(
                "notification: codes never apply",
                vec![e(2001)],
                periodic(3, 1.0).codes([2001]),
            )
        }
        .expect(Outcome::Delivered, 1, Duration::ZERO),
        Case {
            notification: true,
            ..case(
                "notification: errors follow the strategy",
                vec![Step::status(503)],
                periodic(3, 1.0).retry_on(status503),
            )
        }
        .expect(Outcome::Delivered, 2, secs(1.0)),
    ]
}

fn request(case: &Case) -> Request {
    let req = Request::new(case.method, json!([1, 2]));
    if case.notification {
        req
    } else {
        req.with_id(1)
    }
}

fn from_response(resp: &tower_jsonrpc_retry::jsonrpc::Response, notification: bool) -> Outcome {
    if notification {
        return Outcome::Delivered;
    }
    match resp.payload() {
        Ok(v) => Outcome::Result(v.clone()),
        Err(e) => Outcome::Code(e.code()),
    }
}

fn from_error(err: &(dyn std::error::Error + 'static)) -> Outcome {
    let chain = || std::iter::successors(Some(err), |e| e.source());
    if chain().any(|e| e.is::<Elapsed>()) {
        return Outcome::Timeout;
    }
    if let Some(status) = chain()
        .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::codec::Error>())
        .and_then(|e| e.status())
    {
        return Outcome::Status(status.as_u16());
    }
    if chain().any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || e.downcast_ref::<h2::Error>()
                .is_some_and(h2::Error::is_reset)
    }) {
        return Outcome::Other("reset".to_owned());
    }
    Outcome::Other(err.to_string())
}

/// hyper-util's client over HTTP/1.1, or over HTTP/2 with prior knowledge.
fn client(http2: bool) -> common::Http {
    if http2 {
        common::http2()
    } else {
        common::http()
    }
}

/// How a call's retries ended: what the hook heard last, or what the caller's failure
/// records.
type Ended = Option<(u32, GiveUpReason)>;

/// What a run saw: the outcome, the attempts, the time taken, what the caller's result
/// records of the retries' end, and what the hook heard last.
struct Run {
    outcome: Outcome,
    calls: usize,
    elapsed: Duration,
    recorded: Ended,
    heard: Ended,
}

async fn run(level: Level, http2: bool, case: &Case) -> Run {
    let server = FlakyServer::start().await.unwrap();
    server.handle("send", |_| Ok(json!("sent")));
    server.script(case.method, case.steps.iter().cloned());
    let heard: Arc<Mutex<Ended>> = Arc::default();
    let hear = |strategy: &RetryStrategy| {
        let heard = Arc::clone(&heard);
        strategy.clone().on_give_up(move |e: &GiveUpEvent<'_>| {
            *heard.lock().unwrap() = Some((e.retries(), e.reason()));
        })
    };
    let mut strategy = hear(&case.strategy);
    if let Some(own) = &case.method_strategy {
        strategy = strategy.for_method(case.method, hear(own));
    }
    let per_request = case.per_request.as_ref().map(hear);
    let mut req = request(case);
    let start = Instant::now();
    let (outcome, recorded) = match level {
        Level::JsonRpc => {
            if let Some(s) = per_request {
                req.extensions_mut().insert(s);
            }
            let stack = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy))
                .layer(JsonRpcCodecLayer::new(server.uri()))
                .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
                .service(client(http2));
            match stack.oneshot(req).await {
                Ok(resp) => (
                    from_response(&resp, case.notification),
                    ended(resp.extensions().get().copied()),
                ),
                Err(err) => (from_error(&err), ended(GaveUp::find(&err))),
            }
        }
        Level::Http => {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::http(strategy).attempt_timeout(ATTEMPT_TIMEOUT))
                .service(client(http2));
            let body = serde_json::to_vec(&req).unwrap();
            let mut http_req = http::Request::post(server.uri())
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            if let Some(s) = per_request {
                http_req.extensions_mut().insert(s);
            }
            let result: Result<_, BoxError> = svc.oneshot(http_req).await;
            match result {
                Err(err) => (from_error(&*err), ended(GaveUp::find(&*err))),
                Ok(resp) => {
                    let recorded = ended(resp.extensions().get().copied());
                    if !resp.status().is_success() {
                        (Outcome::Status(resp.status().as_u16()), recorded)
                    } else {
                        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                        if case.notification {
                            assert!(bytes.is_empty(), "a notification gets no body");
                            (Outcome::Delivered, recorded)
                        } else {
                            let resp =
                                tower_jsonrpc_retry::jsonrpc::Response::from_slice(&bytes).unwrap();
                            (from_response(&resp, false), recorded)
                        }
                    }
                }
            }
        }
    };
    let heard = *heard.lock().unwrap();
    Run {
        outcome,
        calls: server.calls(case.method),
        elapsed: start.elapsed(),
        recorded,
        heard,
    }
}

async fn check(level: Level, http2: bool) {
    for case in table() {
        let run = run(level, http2, &case).await;
        let at = format!("{level:?}, HTTP/2 {http2}: {}", case.name);
        assert_eq!(run.outcome, case.outcome, "{at}");
        assert_eq!(run.calls, case.calls, "{at}: attempts");
        assert_eq!(run.elapsed, case.elapsed, "{at}: time taken");
        // At the HTTP level, the inner service's own error comes back as it was: it
        // cannot carry the record (the hook still hears it).
        let inner_error = matches!((level, &run.outcome), (Level::Http, Outcome::Other(_)));
        let expected = if inner_error { None } else { run.heard };
        assert_eq!(run.recorded, expected, "{at}: how the retries ended");
        if let Some(reason) = case.reason {
            assert_eq!(run.heard, Some((0, reason)), "{at}: why the retries ended");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn json_rpc_level() {
    check(Level::JsonRpc, false).await;
}

#[tokio::test(start_paused = true)]
async fn http_level() {
    check(Level::Http, false).await;
}

/// Over HTTP/2 a dropped connection is a stream reset, an error class only with the
/// `http2` feature.
#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn json_rpc_level_over_http2() {
    check(Level::JsonRpc, true).await;
}

#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn http_level_over_http2() {
    check(Level::Http, true).await;
}
