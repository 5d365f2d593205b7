//! The give-up event against what happened, where it is easiest to get wrong: a failed
//! batch led by a notification, an attempt cut at the deadline under a strategy that
//! retries timeouts, a call ended by the deadline while its body was read, and the code
//! and status the event reports as the cause.

mod common;

use common::{TestBody, watched};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    ErrorClass, GaveUp, GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryStrategy,
};

/// V1. A batch whose transport failure is final names a *call* of those sent last
/// (event.rs: "the call named is one whose latest answer failed: the first among the
/// calls sent last"); a notification has no answer and is no call.
#[tokio::test(start_paused = true)]
async fn batch_give_up_names_a_call_not_a_notification() {
    let (strategy, retries, give_ups) = watched(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).retry_if(|_| true),
    );
    let sends = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&sends);
    let svc = tower::service_fn(move |_: BatchRequest| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Err::<BatchResponse, std::io::Error>(std::io::Error::other("connection reset")) }
    });
    let batch = BatchRequest::new(vec![
        Request::new("log", json!([])), // a notification
        Request::new("sum", json!([1, 2])).with_id(1),
    ]);
    JsonRpcRetryLayer::new(strategy)
        .layer(svc)
        .oneshot(batch)
        .await
        .unwrap_err();
    assert_eq!(sends.load(Ordering::SeqCst), 2);
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert_eq!(
        *give_ups.lock().unwrap(),
        [(
            "sum".to_owned(),
            Some("1".to_owned()),
            Some(2),
            1,
            GiveUpReason::Exhausted
        )]
    );
}

/// V2. An attempt cut short at the deadline gives up on `Deadline` "whatever rules the
/// strategy has" (policy.rs `unretried`; event.rs: Deadline = "... or the attempt was
/// cut short at it"). Adding `retry_on(Timeout)` turns the same event into `Exhausted`.
#[tokio::test(start_paused = true)]
async fn attempt_cut_at_deadline_is_deadline_even_if_timeouts_are_retried() {
    let server = FlakyServer::start().await.unwrap();
    let mut reasons = Vec::new();
    for retry_timeouts in [false, true] {
        server.script("busy", [Step::error(2001), Step::timeout()]);
        let mut strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1)))
            .codes([2001])
            .max_elapsed(Duration::from_millis(1_100));
        if retry_timeouts {
            strategy = strategy.retry_on(ErrorClass::Timeout);
        }
        let (strategy, retries, give_ups) = watched(strategy);
        let start = tokio::time::Instant::now();
        let err = common::stack(&server, strategy)
            .oneshot(Request::new("busy", json!([])).with_id(1))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        // The second attempt was cut at the deadline, 1.1 s after the call.
        assert_eq!(start.elapsed(), Duration::from_millis(1_100));
        assert_eq!(retries.load(Ordering::SeqCst), 1);
        let give_ups = give_ups.lock().unwrap().clone();
        assert_eq!(give_ups.len(), 1);
        reasons.push(give_ups[0].4);
    }
    assert_eq!(server.calls("busy"), 4);
    assert_eq!(reasons, [GiveUpReason::Deadline, GiveUpReason::Deadline]);
}

#[tokio::test(start_paused = true)]
async fn http_level_deadline_during_upload_gives_up_once() {
    let (strategy, retries, give_ups) = watched(
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
            .codes([2001])
            .max_elapsed(Duration::from_secs(1)),
    );
    let sends = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&sends);
    let inner = tower::service_fn(move |_: http::Request<TestBody>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async {
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","result":3,"id":1}"#,
            ))))
        }
    });
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(inner);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::Stalled)
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert_eq!(sends.load(Ordering::SeqCst), 0);
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    let give_ups = give_ups.lock().unwrap().clone();
    assert_eq!(give_ups.len(), 1, "a failed call with no give-up event");
    assert_eq!(give_ups[0].4, GiveUpReason::Deadline);
}

/// The same on a running clock, with and without an attempt timeout further off: the
/// reason was found by comparing two readings of the clock, equal only while it is
/// paused, so every real call cut by its deadline in the upload was told as
/// `NotRetryable`. (A 5 ms deadline, waited for on the real clock: the paused one cannot
/// show it.)
#[tokio::test]
async fn http_level_deadline_during_upload_is_the_reason_on_a_running_clock() {
    let mut reasons = Vec::new();
    for attempt_timeout in [None, Some(Duration::from_secs(10))] {
        for _ in 0..3 {
            let (strategy, _, give_ups) = watched(
                RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
                    .codes([2001])
                    .max_elapsed(Duration::from_millis(5)),
            );
            let inner = tower::service_fn(|_: http::Request<TestBody>| async {
                Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::new())))
            });
            let mut layer = JsonRpcRetryLayer::http::<TestBody>(strategy);
            if let Some(timeout) = attempt_timeout {
                layer = layer.attempt_timeout(timeout);
            }
            let req = http::Request::post("http://127.0.0.1:1/")
                .body(TestBody::Stalled)
                .unwrap();
            let err = layer.layer(inner).oneshot(req).await.unwrap_err();
            assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
            let give_ups = give_ups.lock().unwrap().clone();
            assert_eq!(give_ups.len(), 1, "{attempt_timeout:?}");
            reasons.push(give_ups[0].4);
        }
    }
    assert_eq!(reasons, [GiveUpReason::Deadline; 6]);
}

/// The attempt's timeout ending the upload (the call's deadline further off, or none)
/// and a body over the request limit end the call as surely: each is told once, as not
/// retryable, with the error the caller gets.
#[tokio::test(start_paused = true)]
async fn http_level_upload_failures_give_up_once_as_not_retryable() {
    let strategy =
        || RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([2001]);
    let inner = || {
        tower::service_fn(|_: http::Request<TestBody>| async {
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::new())))
        })
    };
    for deadline in [None, Some(Duration::from_secs(10))] {
        let with = match deadline {
            Some(d) => strategy().max_elapsed(d),
            None => strategy(),
        };
        let (with, _, give_ups) = watched(with);
        let svc = JsonRpcRetryLayer::http::<TestBody>(with)
            .attempt_timeout(Duration::from_secs(1))
            .layer(inner());
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(TestBody::PartThenStall(Some(Bytes::from_static(
                br#"{"jsonrpc":"2.0","method":"sum","#,
            ))))
            .unwrap();
        let err = svc.oneshot(req).await.unwrap_err();
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
        let give_ups = give_ups.lock().unwrap().clone();
        assert_eq!(give_ups.len(), 1, "{deadline:?}");
        assert_eq!(give_ups[0].4, GiveUpReason::NotRetryable, "{deadline:?}");
    }
    let (limited, _, give_ups) = watched(strategy());
    let svc = JsonRpcRetryLayer::http::<TestBody>(limited)
        .request_limit(16)
        .layer(inner());
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::from(
            br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#.to_vec(),
        ))
        .unwrap();
    assert!(svc.oneshot(req).await.is_err());
    let give_ups = give_ups.lock().unwrap().clone();
    assert_eq!(give_ups.len(), 1, "over the limit");
    assert_eq!(give_ups[0].4, GiveUpReason::NotRetryable);
    // The body was never read whole: no method, id or batch is known (as documented).
    assert_eq!(
        (give_ups[0].0.as_str(), &give_ups[0].1, give_ups[0].2),
        ("", &None, None)
    );
}

/// The (code, status) of every give-up, in order.
type Causes = Arc<Mutex<Vec<(Option<i64>, Option<u16>)>>>;

fn causes_of(strategy: RetryStrategy) -> (RetryStrategy, Causes) {
    let causes: Causes = Arc::default();
    let seen = Arc::clone(&causes);
    let strategy = strategy.on_give_up(move |e: &GiveUpEvent<'_>| {
        seen.lock()
            .unwrap()
            .push((e.code(), e.status().map(|s| s.as_u16())));
    });
    (strategy, causes)
}

/// The give-up carries what it gave up on, for metrics labelled by cause: the error
/// code of an error answer, the status of a failure status, neither for a timeout; for
/// a batch, the named call's code.
#[tokio::test(start_paused = true)]
async fn give_up_carries_the_code_and_status_it_gave_up_on() {
    let (strategy, causes) = causes_of(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10)))
            .codes([-32005])
            .retry_on(ErrorClass::Timeout)
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE)),
    );
    let server = FlakyServer::start().await.unwrap();
    let svc = common::stack(&server, strategy);
    let sum = || Request::new("sum", json!([1, 2])).with_id(1);

    server.script("sum", std::iter::repeat_n(Step::error(-32005), 2));
    let _ = svc.clone().oneshot(sum()).await;
    server.script("sum", std::iter::repeat_n(Step::status(503), 2));
    let _ = svc.clone().oneshot(sum()).await;
    server.script("sum", [Step::error(2002)]);
    let _ = svc.clone().oneshot(sum()).await;
    server.script("sum", std::iter::repeat_n(Step::timeout(), 2));
    let _ = svc.clone().oneshot(sum()).await;
    server.script(
        "sum",
        [Step::ok(), Step::error(-32005), Step::error(-32005)],
    );
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("sum", json!([1, 2])).with_id(2),
    ]);
    let _ = svc.clone().oneshot(batch).await;

    assert_eq!(
        *causes.lock().unwrap(),
        [
            (Some(-32005), None),
            (None, Some(503)),
            (Some(2002), None),
            (None, None),
            (Some(-32005), None),
        ]
    );
}

/// An answer that came under a 2xx but could not be read (not JSON-RPC, cut short) is
/// given up on with no status: a 2xx is no failure status, whatever error kept it.
#[tokio::test(start_paused = true)]
async fn give_up_on_an_unreadable_2xx_answer_has_no_status() {
    let (strategy, causes) = causes_of(
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10)))
            .retry_on(ErrorClass::Reset),
    );
    let server = FlakyServer::start().await.unwrap();
    let svc = common::stack(&server, strategy);
    let sum = || Request::new("sum", json!([1, 2])).with_id(1);

    // Not JSON under a 200: a decode error, not retried.
    server.script("sum", [Step::malformed()]);
    assert!(svc.clone().oneshot(sum()).await.is_err());
    assert_eq!(server.calls("sum"), 1);
    // Cut short under a 200, twice: a body error, retried, then exhausted.
    server.script("sum", [Step::truncated(), Step::truncated()]);
    assert!(svc.clone().oneshot(sum()).await.is_err());
    assert_eq!(server.calls("sum"), 3);
    // The same for a batch.
    server.script("sum", [Step::malformed()]);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("sum", json!([1, 2])).with_id(2),
    ]);
    assert!(svc.clone().oneshot(batch).await.is_err());

    assert_eq!(
        *causes.lock().unwrap(),
        [(None, None), (None, None), (None, None)],
        "a 2xx is reported as a status"
    );
}

/// lib.rs "Observability": a batch's give-up names the first call whose answer failed
/// among those sent last, else the first settled earlier.
#[tokio::test(start_paused = true)]
async fn batch_give_up_names_a_call_sent_last_else_one_settled_earlier() {
    let server = FlakyServer::start().await.unwrap();
    let (strategy, retries, give_ups) =
        watched(RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1))).codes([2001]));
    let svc = common::stack(&server, strategy);
    let batch = || {
        BatchRequest::new(vec![
            Request::new("bad", json!([])).with_id(1),
            Request::new("sum", json!([1, 2])).with_id(2),
        ])
    };

    // `bad` is settled after the first exchange; `sum` is sent again and fails again.
    server.script("bad", [Step::error(2002)]);
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    svc.clone().oneshot(batch()).await.unwrap();
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::mem::take(&mut *give_ups.lock().unwrap()),
        [(
            "sum".to_owned(),
            Some("2".to_owned()),
            Some(1),
            1,
            GiveUpReason::Exhausted
        )]
    );

    // `sum` succeeds on its re-send: the failure left is the settled `bad`.
    server.script("bad", [Step::error(2002)]);
    server.script("sum", [Step::error(2001)]);
    let resp = svc.oneshot(batch()).await.unwrap();
    assert_eq!(
        *give_ups.lock().unwrap(),
        [(
            "bad".to_owned(),
            Some("1".to_owned()),
            Some(1),
            1,
            GiveUpReason::NotRetryable
        )]
    );
    // The event's retries are the batch's, as on the whole answer; `bad`'s own record
    // says it failed for good at the first attempt (`GiveUpEvent::retries`).
    let retries_of = |e: &http::Extensions| e.get::<GaveUp>().map(GaveUp::retries);
    assert_eq!(retries_of(resp.extensions()), Some(1));
    assert_eq!(retries_of(resp.items()[0].extensions()), Some(0));
}

/// An attempt timeout the strategy does not retry, long before the call's deadline, is
/// `NotRetryable`: `Deadline` is for an attempt cut short *at* the deadline (event.rs),
/// not for every timeout of a call that has one.
#[tokio::test(start_paused = true)]
async fn a_timeout_not_retried_before_the_deadline_is_not_retryable() {
    let server = FlakyServer::start().await.unwrap();
    server.script("slow", [Step::timeout()]);
    let (strategy, retries, give_ups) = watched(
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
            .codes([2001])
            .max_elapsed(Duration::from_secs(10)),
    );
    let start = tokio::time::Instant::now();
    let err = common::stack(&server, strategy)
        .oneshot(Request::new("slow", json!([])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(start.elapsed(), common::ATTEMPT_TIMEOUT);
    assert_eq!(server.calls("slow"), 1);
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    let give_ups = give_ups.lock().unwrap().clone();
    assert_eq!(give_ups.len(), 1);
    assert_eq!(give_ups[0].4, GiveUpReason::NotRetryable);
}

/// A batch whose backoff ran out names the call that wanted another retry, not one
/// that went out as long but whose last answer was not retried: the hook's reason is
/// about that call, and agrees with its record (`GaveUp`).
#[tokio::test(start_paused = true)]
async fn batch_give_up_names_the_call_the_reason_is_about() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "flaky",
        [Step::error(2001), Step::error(2001), Step::error(-32602)],
    );
    server.script("busy", std::iter::repeat_n(Step::error(2001), 3));
    let (strategy, _retries, give_ups) =
        watched(RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_secs(1))).codes([2001]));
    let batch = BatchRequest::new(vec![
        Request::new("flaky", json!([])).with_id(1),
        Request::new("busy", json!([])).with_id(2),
    ]);
    let resp = common::stack(&server, strategy)
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!((server.calls("flaky"), server.calls("busy")), (3, 3));
    assert_eq!(
        *give_ups.lock().unwrap(),
        [(
            "busy".to_owned(),
            Some("2".to_owned()),
            Some(2),
            2,
            GiveUpReason::Exhausted
        )]
    );
    assert_eq!(
        common::ended_in(&resp, 2),
        Some((2, GiveUpReason::Exhausted))
    );
    assert_eq!(
        common::ended_in(&resp, 1),
        Some((2, GiveUpReason::NotRetryable))
    );
}

/// (method, id, reason, code, status) of a give-up.
type HeardOne = (
    String,
    Option<String>,
    GiveUpReason,
    Option<i64>,
    Option<u16>,
);
/// Every give-up heard.
type Heard = Arc<Mutex<Vec<HeardOne>>>;

/// Retries -32005 twice, 100 ms apart; the notification `n` is non-idempotent. Every
/// give-up goes to `heard`.
fn holding_n(heard: &Heard) -> RetryStrategy {
    let heard = Arc::clone(heard);
    RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
        .codes([-32005])
        .non_idempotent(["n"])
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            heard.lock().unwrap().push((
                e.method().to_owned(),
                e.id().map(ToString::to_string),
                e.reason(),
                e.code(),
                e.status().map(|s| s.as_u16()),
            ));
        })
}

/// The one give-up a batch refused as a whole (a 429 with one -32005 under a null id:
/// the server ran nothing) must report when `method` (with `id`), held back, keeps the
/// refusal: a final failure given up on as non-idempotent, the refusal's code and
/// status with it.
fn held_back(method: &str, id: Option<&str>) -> Vec<HeardOne> {
    let reason = GiveUpReason::NotIdempotent;
    let id = id.map(str::to_owned);
    vec![(method.to_owned(), id, reason, Some(-32005), Some(429))]
}

/// event.rs: "When the batch failed as a whole (a transport failure, a refusal) and was
/// held back, the first non-idempotent call is named (a notification only if no call is
/// one)": also when the refusal held back only that notification, and the call beside
/// it was sent again and answered.
#[tokio::test(start_paused = true)]
async fn a_refused_notification_held_back_beside_a_call_sent_again_is_given_up_on() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("a", |_| Ok(json!("a")));
    server.script("a", [Step::status_with_error(429, -32005)]);
    let heard = Heard::default();
    let client = tower_jsonrpc_retry::Client::builder(server.uri())
        .retry(holding_n(&heard))
        .build();
    let mut batch = client.batch();
    let a = batch.call::<String>("a", ());
    batch.notify("n", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(a).unwrap(), "a");
    assert_eq!(results.unmatched().len(), 1, "the refusal `n` keeps");
    assert_eq!(results.batch_error(), None, "`a` has an answer of its own");
    assert_eq!(server.http_requests(), 2, "the batch, then `a` alone");
    assert_eq!(*heard.lock().unwrap(), held_back("n", None));
}

/// The same at the HTTP level: the refusal comes back in the body, the hook hears it,
/// and the answer records why the retries ended.
#[tokio::test(start_paused = true)]
async fn a_refused_notification_held_back_beside_a_call_sent_again_is_given_up_on_over_http() {
    use http_body_util::BodyExt;
    let server = FlakyServer::start().await.unwrap();
    server.handle("a", |_| Ok(json!("a")));
    server.script("a", [Step::status_with_error(429, -32005)]);
    let heard = Heard::default();
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(holding_n(&heard)).layer(common::http());
    let body = r#"[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"n"}]"#;
    let request = http::Request::post(server.uri())
        .body(Full::from(body))
        .unwrap();
    let answer = svc.oneshot(request).await.unwrap();
    let record = answer.extensions().get::<GaveUp>().copied();
    assert_eq!(
        record.map(|g| g.reason()),
        Some(GiveUpReason::NotIdempotent)
    );
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body[0]["result"], "a");
    assert_eq!(
        body[1]["error"]["code"], -32005,
        "the refusal comes back: {body}"
    );
    assert_eq!(server.http_requests(), 2, "the batch, then `a` alone");
    assert_eq!(*heard.lock().unwrap(), held_back("n", None));
}

/// A batch refused as a whole runs nothing: when its only call is held back (its method
/// non-idempotent), a notification beside it whose method may go again is sent again
/// alone, as it would be in a batch of notifications only (and as it is beside a call
/// that goes again). The call keeps the refusal, given up on as non-idempotent.
#[tokio::test(start_paused = true)]
async fn a_notification_beside_a_held_back_call_goes_again_after_a_refusal() {
    let server = FlakyServer::start().await.unwrap();
    server.script("w", [Step::status_with_error(429, -32005)]);
    let heard = Heard::default();
    let strategy = holding_n(&heard).non_idempotent(["w"]).idempotent(["n"]);
    let client = tower_jsonrpc_retry::Client::builder(server.uri())
        .retry(strategy)
        .build();
    let mut batch = client.batch();
    let w = batch.call::<String>("w", ());
    batch.notify("n", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(server.http_requests(), 2, "the batch, then `n` alone");
    assert_eq!((server.calls("w"), server.calls("n")), (1, 2));
    let refused = results.take(w).unwrap_err();
    assert_eq!(refused.rpc().map(|e| e.code()), Some(-32005));
    assert_eq!(
        refused.gave_up().map(|g| g.reason()),
        Some(GiveUpReason::NotIdempotent)
    );
    assert_eq!(*heard.lock().unwrap(), held_back("w", Some("1")));
}

/// Under two retry layers, one inside the other, the held-back notification's give-up
/// is heard by each (as every give-up is, each layer reporting its own), and the outer
/// layer, which still holds the notification among its requests, tells the refusal's
/// code and status too.
#[tokio::test(start_paused = true)]
async fn a_refused_notification_held_back_is_told_alike_by_nested_layers() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("a", |_| Ok(json!("a")));
    server.script("a", [Step::status_with_error(429, -32005)]);
    let (inner_heard, outer_heard) = (Heard::default(), Heard::default());
    let codec =
        tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(server.uri()).layer(common::http());
    let inner = JsonRpcRetryLayer::new(holding_n(&inner_heard)).layer(codec);
    let outer = JsonRpcRetryLayer::new(holding_n(&outer_heard)).layer(inner);
    let batch = BatchRequest::new(vec![
        Request::new("a", json!([])).with_id(1),
        Request::new("n", json!([])),
    ]);
    outer.oneshot(batch).await.unwrap();
    assert_eq!(server.http_requests(), 2, "the batch, then `a` alone");
    assert_eq!(*inner_heard.lock().unwrap(), held_back("n", None));
    assert_eq!(*outer_heard.lock().unwrap(), held_back("n", None));
}
