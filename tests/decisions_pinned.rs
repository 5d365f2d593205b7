//! Decisions pinned one by one: the reason a retry reports (a listed code before a
//! response rule, a batch's first call), the longest of two wait hints, a zero delay
//! with under a millisecond left, null ids in a batch answer, and what a partly retried
//! batch keeps of earlier exchanges (a hint, a refusal) once later ones answer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Recorder, secs, stack, try_again_in};
use serde_json::json;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::RetryAfter;
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, DecodeError, ErrorObject, Id, Request, Response,
};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

fn periodic(attempts: usize, interval: Duration) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, interval))
}

fn sum(id: i64) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

async fn server() -> FlakyServer {
    FlakyServer::start().await.unwrap()
}

/// decide.rs: a listed code is the reason (`RetryReason::ResponsePredicate` is "its
/// code not listed"), even when a response rule holds too.
#[tokio::test(start_paused = true)]
async fn a_listed_code_is_the_reason_when_a_response_rule_holds_too() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    let rec = Recorder::default();
    let strategy = periodic(1, secs(1.0))
        .codes([2001])
        .retry_response_if(|e| e.code() == 2001);
    let resp = stack(&server, rec.attach(strategy))
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(rec.reasons(), ["code 2001"]);
}

/// decide.rs `answer_hint`: "the largest hint wins (a reader added to others, and to
/// the header and `backoff_seconds`)": a reader's shorter hint does not hide the
/// longer `backoff_seconds`.
#[tokio::test(start_paused = true)]
async fn the_longer_of_a_readers_hint_and_backoff_seconds_is_waited() {
    let server = server().await;
    server.script(
        "sum",
        [Step::error_with(
            -32005,
            "limited: try again in 100ms",
            Some(json!({"backoff_seconds": 2})),
        )],
    );
    let rec = Recorder::default();
    let strategy = periodic(1, Duration::from_millis(10))
        .codes([-32005])
        .retry_after_from(try_again_in);
    let resp = stack(&server, rec.attach(strategy))
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(rec.delays(), [secs(2.0)]);
}

/// policy.rs/decide.rs `join`: a batch is retried for its first call's reason.
#[tokio::test(start_paused = true)]
async fn a_batch_is_retried_for_its_first_calls_reason() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    server.script("echo", [Step::error(2002)]);
    let rec = Recorder::default();
    let strategy = periodic(1, secs(1.0)).codes([2001, 2002]);
    let batch = BatchRequest::new(vec![sum(1), Request::new("echo", json!([7])).with_id(2)]);
    let resp = stack(&server, rec.attach(strategy))
        .oneshot(batch)
        .await
        .unwrap();
    assert!(resp.items().iter().all(|r| !r.is_error()), "{resp:?}");
    assert_eq!(rec.reasons(), ["code 2001"]);
}

/// policy.rs `next_delay`: a zero delay does not sleep, so no timer rounding is added
/// to it: a zero-delay retry with half a millisecond left before the deadline is made.
#[tokio::test(start_paused = true)]
async fn a_zero_delay_retry_with_under_a_millisecond_left_is_made() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let svc = tower::service_fn(move |req: Request| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let id = req.id().cloned().unwrap();
        async move {
            if n == 0 {
                tokio::time::advance(Duration::from_micros(9_500)).await;
                Ok::<_, std::io::Error>(Response::failure(id, ErrorObject::new(2001, "busy")))
            } else {
                Ok(Response::success(id, json!(3)))
            }
        }
    });
    let strategy = periodic(1, Duration::ZERO)
        .codes([2001])
        .max_elapsed(Duration::from_millis(10));
    let resp = JsonRpcRetryLayer::new(strategy)
        .layer(svc)
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the retry is made");
    assert_eq!(resp.result(), Some(&json!(3)));
}

/// batch.rs `Matcher::push`: a call sent with a null id is answered by a success with a
/// null id (only when no call has that id is such a success passed over).
#[test]
fn a_call_with_a_null_id_takes_a_success_with_a_null_id() {
    let body = br#"[{"jsonrpc":"2.0","result":5,"id":null},{"jsonrpc":"2.0","result":6,"id":1}]"#;
    let answer = BatchResponse::from_slice(body, &[Id::Null, Id::Number(1)]).unwrap();
    assert_eq!(answer.items()[0].result(), Some(&json!(5)));
    assert_eq!(answer.items()[1].result(), Some(&json!(6)));
}

/// batch.rs `Matcher::finish`: null-id errors answer the unanswered calls "when there
/// are exactly as many"; more of them than unanswered calls is a `MissingItems`.
#[test]
fn more_null_id_errors_than_unanswered_calls_is_missing_items() {
    let body = br#"[{"jsonrpc":"2.0","result":1,"id":1},
        {"jsonrpc":"2.0","error":{"code":-32600,"message":"a"},"id":null},
        {"jsonrpc":"2.0","error":{"code":-32600,"message":"b"},"id":null}]"#;
    let read = BatchResponse::from_slice(body, &[Id::Number(1), Id::Number(2)]);
    assert!(
        matches!(read, Err(DecodeError::MissingItems(ref ids)) if ids == &[Id::Number(2)]),
        "{read:?}"
    );
}

/// policy.rs `after_transport_failure`: when a partly retried batch's last re-send
/// fails in transport without a hint, the earlier exchange's `Retry-After` is not left
/// on the batch or on the call re-sent.
#[tokio::test(start_paused = true)]
async fn a_transport_failure_without_a_hint_clears_the_earlier_hint() {
    let server = server().await;
    let first = r#"[{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1},
        {"jsonrpc":"2.0","result":[7],"id":2}]"#;
    server.script(
        "sum",
        [
            Step::raw(200, first).retry_after("1"),
            Step::drop_connection(),
        ],
    );
    let batch = BatchRequest::new(vec![sum(1), Request::new("echo", json!([7])).with_id(2)]);
    let resp = stack(&server, periodic(3, secs(0.1)).codes([2001]))
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(server.http_requests(), 2);
    assert_eq!(resp.items()[0].error().map(ErrorObject::code), Some(2001));
    assert_eq!(resp.extensions().get::<RetryAfter>(), None);
    assert_eq!(resp.items()[0].extensions().get::<RetryAfter>(), None);
}

/// policy.rs `narrow`: a batch refused as a whole and then answered in full keeps no
/// refusal among the answers no call took: no notification was left unsent.
#[tokio::test(start_paused = true)]
async fn a_refusal_answered_in_full_on_retry_leaves_nothing_unmatched() {
    let server = server().await;
    let refused = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":null}"#;
    server.script("sum", [Step::raw(200, refused)]);
    let batch = BatchRequest::new(vec![sum(1), Request::new("echo", json!([7])).with_id(2)]);
    let resp = stack(&server, periodic(3, secs(0.1)).codes([-32005]))
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(server.http_requests(), 2);
    assert_eq!(resp.batch_error(), None);
    assert!(resp.items().iter().all(|r| !r.is_error()), "{resp:?}");
    assert_eq!(resp.unmatched(), [], "{resp:?}");
}
