//! DESIGN.md's semantics, line by line, over loopback HTTP on tokio's paused clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ATTEMPT_TIMEOUT, Recorder, secs, stack, stack_to, try_again_in};
use serde_json::json;
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;
use tower::timeout::error::Elapsed;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::RetryAfter;
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, DecodeError, ErrorObject, Id, Request, Response,
};
use tower_jsonrpc_retry::retry::error_chain;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, ErrorClass, GiveUpReason, JsonRpcRetryLayer, RetryStrategy};

fn periodic(attempts: usize, interval: Duration) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, interval))
}

fn sum(id: i64) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

async fn server() -> FlakyServer {
    FlakyServer::start().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn listed_code_is_retried_while_delays_remain() {
    let server = server().await;
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    let rec = Recorder::default();
    let svc = stack(&server, rec.attach(periodic(3, secs(1.0)).codes([2001])));
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), secs(2.0));
    let events = rec.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            (1, "code 2001".to_owned(), secs(1.0), Duration::ZERO),
            (2, "code 2001".to_owned(), secs(1.0), secs(1.0)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn last_error_response_is_returned_when_delays_run_out() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::error(2001), 5));
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.expect("an error response is Ok");
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(resp.id(), &Id::Number(1));
    assert_eq!(server.calls("sum"), 4, "1 + attempts sends");
    assert_eq!(start.elapsed(), secs(3.0));
}

/// A status rule retries a bare status and a JSON-RPC answer under it alike (error
/// object or result), with the status's class as the reason; other statuses are not.
#[tokio::test(start_paused = true)]
async fn a_status_predicate_retries_every_status_it_holds_for() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::status(500),
            Step::status_with_error(502, -32603),
            Step::raw(503, r#"{"jsonrpc":"2.0","result":9,"id":1}"#),
        ],
    );
    let rec = Recorder::default();
    let strategy = periodic(5, secs(1.0)).retry_status_if(|s| s.is_server_error());
    let svc = stack(&server, rec.attach(strategy.clone()));
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 4);
    assert_eq!(rec.reasons(), ["status 500", "status 502", "status 503"]);

    server.script("sum", [Step::status(404)]);
    let err = stack(&server, strategy.clone())
        .oneshot(sum(2))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
    assert_eq!(server.calls("sum"), 5, "a 4xx the rule does not hold for");
    server.script("sum", [Step::status_with_error(429, -32005)]);
    let resp = stack(&server, strategy).oneshot(sum(3)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(server.calls("sum"), 6, "nor an answer under such a status");
}

/// `idempotent` undoes `non_idempotent` for the methods named, a preset's included.
#[tokio::test(start_paused = true)]
async fn idempotent_unmarks_a_non_idempotent_method() {
    let server = server().await;
    let marked = periodic(2, secs(1.0))
        .codes([2001])
        .non_idempotent(["sum", "sub"]);
    server.script("sum", [Step::error(2001)]);
    let resp = stack(&server, marked.clone())
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 1, "marked: not retried");

    let unmarked = marked.idempotent(["sum"]);
    server.script("sum", [Step::error(2001)]);
    let resp = stack(&server, unmarked.clone())
        .oneshot(sum(2))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3, "unmarked: retried");
    let sub = Request::new("sub", json!([1, 2])).with_id(3);
    server.script("sub", [Step::error(2001)]);
    let resp = stack(&server, unmarked).oneshot(sub).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sub"), 1, "the other method stays marked");

    let preset = RetryStrategy::ethereum_rate_limits_seeded(1);
    assert!(format!("{preset:?}").contains("\"eth_sendRawTransaction\""));
    let unmarked = preset.idempotent(["eth_sendRawTransaction"]);
    assert!(!format!("{unmarked:?}").contains("\"eth_sendRawTransaction\""));
    assert!(format!("{unmarked:?}").contains("\"eth_sendTransaction\""));
}

#[tokio::test(start_paused = true)]
async fn empty_code_set_retries_no_code() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    let svc = stack(
        &server,
        periodic(3, secs(1.0)).retry_on(ErrorClass::Timeout),
    );
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn unlisted_code_is_not_retried() {
    let server = server().await;
    server.script("sum", [Step::error(2002)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2002));
    assert_eq!(server.calls("sum"), 1);
}

/// A veto (`never_retry_response_if`) overrides a listed code and a listed status alike:
/// the answer it names is final at once, "not retryable", with delays left.
#[tokio::test(start_paused = true)]
async fn a_veto_overrides_a_listed_code_and_a_listed_status() {
    let server = server().await;
    server.script(
        "sum",
        [Step::error(2001), Step::status_with_error(503, 2002)],
    );
    let strategy = periodic(3, secs(1.0))
        .codes([2001, 2002])
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .never_retry_response_if(|e| e.code() == 2001 || e.code() == 2002);
    let svc = stack(&server, strategy);
    for code in [2001, 2002] {
        let resp = svc.clone().oneshot(sum(1)).await.unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(code));
        let gave_up = resp.extensions().get().copied();
        assert_eq!(
            common::ended(gave_up),
            Some((0, GiveUpReason::NotRetryable))
        );
    }
    assert_eq!(server.calls("sum"), 2, "each answer final at once");
}

#[tokio::test(start_paused = true)]
async fn matched_error_is_retried_while_delays_remain() {
    let server = server().await;
    server.script("sum", [Step::timeout(), Step::timeout()]);
    let rec = Recorder::default();
    let svc = stack(
        &server,
        rec.attach(periodic(3, secs(1.0)).retry_on_error::<Elapsed>()),
    );
    let start = Instant::now();
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), ATTEMPT_TIMEOUT * 2 + secs(2.0));
    assert_eq!(rec.reasons(), ["error tower::timeout::error::Elapsed"; 2]);
}

#[tokio::test(start_paused = true)]
async fn last_error_is_returned_unchanged_when_delays_run_out() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::timeout(), 5));
    let svc = stack(&server, periodic(2, secs(1.0)).retry_on_error::<Elapsed>());
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert_eq!(server.calls("sum"), 3);
    assert!(err.is_transport() && err.is_timeout(), "{err:?}");
    let source = std::error::Error::source(&err).expect("the inner error is kept");
    assert!(
        source.is::<Elapsed>(),
        "the timeout's own error type, not a string: {source:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn unmatched_error_is_not_retried() {
    let server = server().await;
    server.script("sum", [Step::timeout()]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn codes_and_errors_share_one_delay_iterator() {
    let server = server().await;
    server.script(
        "sum",
        [Step::timeout(), Step::error(2001), Step::error(2001)],
    );
    let strategy = periodic(2, secs(1.0))
        .codes([2001])
        .retry_on(ErrorClass::Timeout);
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(
        resp.error().map(|e| e.code()),
        Some(2001),
        "two delays for three failures"
    );
    assert_eq!(server.calls("sum"), 3);
}

#[tokio::test(start_paused = true)]
async fn every_call_starts_with_fresh_state() {
    let server = server().await;
    server.script("sum", [Step::error(2001), Step::error(2001), Step::ok()]);
    server.script("sum", [Step::error(2001), Step::error(2001), Step::ok()]);
    let mut svc = stack(
        &server,
        periodic(2, secs(1.0)).codes([2001]).max_elapsed(secs(2.5)),
    );
    for round in 1..=2 {
        let start = Instant::now();
        let resp = common::call(&mut svc, sum(round)).await.unwrap();
        assert_eq!(resp.result(), Some(&json!(3)), "round {round}");
        assert_eq!(server.calls("sum"), 3 * round as usize);
        assert_eq!(start.elapsed(), secs(2.0));
    }
}

#[tokio::test(start_paused = true)]
async fn per_request_strategy_replaces_the_default() {
    let server = server().await;
    server.script(
        "sum",
        [Step::error(2001), Step::error(2002), Step::error(2002)],
    );
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let mut req = sum(1);
    req.extensions_mut()
        .insert(periodic(1, secs(5.0)).codes([2002]));
    let start = Instant::now();
    let resp = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(
        resp.error().map(|e| e.code()),
        Some(2001),
        "the default's code is not the request's"
    );
    assert_eq!(server.calls("sum"), 1);

    let mut req = sum(2);
    req.extensions_mut()
        .insert(periodic(1, secs(5.0)).codes([2002]));
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(
        resp.error().map(|e| e.code()),
        Some(2002),
        "one retry, then the last response"
    );
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), secs(5.0));
}

#[tokio::test(start_paused = true)]
async fn none_in_extensions_disables_retry() {
    let server = server().await;
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let mut req = sum(1);
    req.extensions_mut().insert(RetryStrategy::none());
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn notifications_retry_errors_only() {
    let server = server().await;
    server.script("log", [Step::error(2001), Step::status(503), Step::ok()]);
    let strategy = periodic(3, secs(1.0))
        .codes([2001])
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let svc = stack(&server, strategy);
    // The 2001 step gives a notification no answer (204): nothing to retry.
    let resp = svc
        .clone()
        .oneshot(Request::new("log", json!(["a"])))
        .await
        .unwrap();
    assert_eq!(resp.id(), &Id::Null);
    assert_eq!(server.calls("log"), 1);
    // A 503 is a transport error: retried.
    svc.oneshot(Request::new("log", json!(["b"])))
        .await
        .unwrap();
    assert_eq!(server.calls("log"), 3);
}

#[tokio::test(start_paused = true)]
async fn codes_never_apply_to_a_notification_over_any_service() {
    // An inner service other than the codec that answers a notification with an error
    // object: that object is not the notification's answer, so no code applies to it.
    let sends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sends.clone();
    let inner = tower::service_fn(move |_: Request| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async {
            Ok::<_, tower_jsonrpc_retry::BoxError>(tower_jsonrpc_retry::jsonrpc::Response::failure(
                Id::Null,
                tower_jsonrpc_retry::jsonrpc::ErrorObject::new(2001, "busy"),
            ))
        }
    });
    let svc = tower_jsonrpc_retry::JsonRpcRetryLayer::new(periodic(3, secs(1.0)).codes([2001]));
    let svc = tower::Layer::layer(&svc, inner);
    let start = Instant::now();
    let resp = svc
        .oneshot(Request::new("log", json!(["x"])))
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_status_rule_applies_to_a_notification_over_any_service() {
    // An inner service other than the codec that records a failure status on its answer
    // to a notification: the status rule retries it, as it would a call's answer.
    let sends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sends.clone();
    let inner = tower::service_fn(move |_: Request| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let mut resp = tower_jsonrpc_retry::jsonrpc::Response::success(Id::Null, json!(null));
            if n == 0 {
                resp.extensions_mut()
                    .insert(http::StatusCode::SERVICE_UNAVAILABLE);
            }
            Ok::<_, tower_jsonrpc_retry::BoxError>(resp)
        }
    });
    let strategy =
        periodic(3, secs(1.0)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let svc = tower::Layer::layer(
        &tower_jsonrpc_retry::JsonRpcRetryLayer::new(strategy),
        inner,
    );
    let start = Instant::now();
    let resp = svc
        .oneshot(Request::new("log", json!(["x"])))
        .await
        .unwrap();
    assert_eq!(resp.extensions().get::<http::StatusCode>(), None);
    assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), secs(1.0));
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_method_is_not_retried_once_sent() {
    let server = server().await;
    server.script(
        "send",
        [
            Step::drop_connection(),
            Step::status(503),
            Step::error(-32005),
        ],
    );
    server.handle("send", |_| Ok(json!("0xhash")));
    let strategy = periodic(3, secs(1.0))
        .codes([-32005])
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Connect)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .non_idempotent(["send"]);
    let svc = stack(&server, strategy.clone());
    let send = |id| Request::new("send", json!(["0x01"])).with_id(id);
    assert!(svc.clone().oneshot(send(1)).await.is_err());
    assert_eq!(
        server.calls("send"),
        1,
        "dropped after reading: not retried"
    );
    assert!(svc.clone().oneshot(send(2)).await.unwrap_err().is_status());
    assert_eq!(server.calls("send"), 2, "a status proves the server saw it");
    let resp = svc.oneshot(send(3)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(
        server.calls("send"),
        3,
        "an error response proves the server saw it"
    );
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_method_is_retried_on_connect_failure() {
    // A port with no listener: every attempt is refused before anything is sent.
    let (_held, closed) = common::refusing();
    let rec = Recorder::default();
    let strategy = rec.attach(
        periodic(3, secs(1.0))
            .retry_on(ErrorClass::Connect)
            .non_idempotent(["send"]),
    );
    let svc = stack_to(format!("http://{closed}/").parse().unwrap(), strategy);
    let err = svc
        .oneshot(Request::new("send", json!([])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(rec.reasons(), ["connect"; 3]);
}

#[tokio::test(start_paused = true)]
async fn batch_resends_only_the_failed_retryable_items() {
    let server = server().await;
    server.script("sum", [Step::ok(), Step::error(2001), Step::ok()]);
    server.script("echo", [Step::error(2002)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([2001]));
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("sum", json!([3, 4])).with_id(2),
        Request::new("echo", json!(["x"])).with_id(3),
        Request::new("log", json!(["note"])),
    ]);
    let resp = svc.oneshot(batch).await.unwrap();
    let bodies = server.bodies_json();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].as_array().unwrap().len(), 4);
    assert_eq!(
        bodies[1],
        json!([{"jsonrpc": "2.0", "method": "sum", "params": [3, 4], "id": 2}]),
        "only the retryable failed item is re-sent"
    );
    let items: Vec<_> = resp
        .items()
        .iter()
        .map(|r| {
            (
                r.id().clone(),
                r.result().cloned(),
                r.error().map(|e| e.code()),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (Id::Number(1), Some(json!(3)), None),
            (Id::Number(2), Some(json!(7)), None),
            (Id::Number(3), None, Some(2002)),
        ]
    );
}

/// A batch waits for the longest hint read from the answers it retries
/// (`retry_after_from`): not from an answer it does not retry, and from the refusal of
/// the whole batch.
#[tokio::test(start_paused = true)]
async fn a_batch_waits_the_longest_hint_read_from_the_answers_it_retries() {
    let server = server().await;
    let busy = |ms: u64| Step::error_with(2001, format!("try again in {ms}ms"), None);
    server.script("sum", [busy(1500), busy(2500), Step::ok(), Step::ok()]);
    server.script(
        "echo",
        [Step::error_with(2002, "try again in 9000ms", None)],
    );
    let strategy = periodic(3, secs(0.1))
        .codes([2001])
        .retry_after_from(try_again_in);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("sum", json!([3, 4])).with_id(2),
        Request::new("echo", json!(["x"])).with_id(3),
    ]);
    let start = Instant::now();
    let resp = stack(&server, strategy.clone())
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(2.5), "the longer of the retried two");
    assert_eq!(server.http_requests(), 2);
    assert_eq!(resp.items()[2].error().map(|e| e.code()), Some(2002));

    server.reset();
    let whole = r#"{"jsonrpc": "2.0", "error": {"code": 2001, "message": "try again in 700ms"}, "id": null}"#;
    server.script("sum", [Step::raw(200, whole), Step::ok()]);
    let start = Instant::now();
    stack(&server, strategy)
        .oneshot(BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
        ]))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(0.7), "the refusal's hint");
}

#[tokio::test(start_paused = true)]
async fn batch_level_error_retries_the_whole_batch() {
    let server = server().await;
    let whole =
        r#"{"jsonrpc": "2.0", "error": {"code": -32005, "message": "limit exceeded"}, "id": null}"#;
    server.script("sum", [Step::raw(200, whole)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([-32005]));
    let batch = BatchRequest::new(vec![sum(1), Request::new("echo", json!([5])).with_id(2)]);
    let resp = svc.oneshot(batch).await.unwrap();
    let bodies = server.bodies_json();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1], "the whole batch is sent again");
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(resp.items()[1].result(), Some(&json!([5])));
}

#[tokio::test(start_paused = true)]
async fn batch_keeps_answers_when_a_resend_fails_in_transport() {
    let server = server().await;
    server.script("sum", [Step::ok(), Step::error(2001), Step::timeout()]);
    let svc = stack(
        &server,
        periodic(1, secs(1.0))
            .codes([2001])
            .retry_on(ErrorClass::Timeout),
    );
    let batch = BatchRequest::new(vec![sum(1), sum(2)]);
    let resp = svc.oneshot(batch).await.expect("nothing answered is lost");
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(
        resp.items()[1].error().map(|e| e.code()),
        Some(2001),
        "its last answer"
    );
    assert_eq!(server.calls("sum"), 3);
}

/// An HTTP service whose readiness fails on the polls `fails` picks (counted across its
/// clones), with `why`, and is its inner service's otherwise.
#[derive(Clone)]
struct FailingReadiness<S> {
    inner: S,
    polls: Arc<AtomicUsize>,
    fails: fn(usize) -> bool,
    why: &'static str,
}

impl<S> FailingReadiness<S> {
    /// Ready once, then failing: a `Buffer` whose worker died, say.
    fn ready_once(inner: S) -> Self {
        let fails = |poll| poll > 0;
        let polls = Arc::default();
        Self {
            inner,
            polls,
            fails,
            why: "the service closed",
        }
    }

    /// Failing once, then ready.
    fn failing_once(inner: S) -> Self {
        let fails = |poll| poll == 0;
        let polls = Arc::default();
        Self {
            inner,
            polls,
            fails,
            why: "not yet",
        }
    }
}

impl<S, R> tower::Service<R> for FailingReadiness<S>
where
    S: tower::Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        if (self.fails)(self.polls.fetch_add(1, Ordering::SeqCst)) {
            return std::task::Poll::Ready(Err(self.why.into()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let answer = self.inner.call(req);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

#[tokio::test(start_paused = true)]
async fn batch_keeps_answers_when_the_service_fails_readiness_for_a_resend() {
    let server = server().await;
    server.script("sum", [Step::ok(), Step::error(2001)]);
    let svc = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(
            periodic(1, secs(1.0)).codes([2001]),
        ))
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .service(FailingReadiness::ready_once(common::http()));
    let batch = BatchRequest::new(vec![sum(1), sum(2)]);
    let resp = svc.oneshot(batch).await.expect("nothing answered is lost");
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(resp.items()[1].error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 2, "the re-send never went out");
    // So the answer is still the server's last word on that call.
    let record = resp.items()[1]
        .extensions()
        .get::<tower_jsonrpc_retry::GaveUp>();
    assert_eq!(record.map(|g| g.last_attempt_unanswered()), Some(false));
}

#[tokio::test(start_paused = true)]
async fn retry_after_raises_the_next_delay() {
    let server = server().await;
    server.script("sum", [Step::status(503).retry_after("2")]);
    let rec = Recorder::default();
    let strategy = rec.attach(
        periodic(3, secs(0.1)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE)),
    );
    let start = Instant::now();
    stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(start.elapsed(), secs(2.0));
    assert_eq!(rec.delays(), [secs(2.0)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_clamped_to_the_ceiling() {
    let server = server().await;
    server.script(
        "sum",
        [
            Step::status(429).retry_after("999999999"),
            Step::status(429).retry_after("999999999"),
        ],
    );
    let strategy =
        periodic(3, secs(0.1)).retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS));
    let start = Instant::now();
    stack(&server, strategy.clone())
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        secs(120.0),
        "two waits of the 60 s default ceiling"
    );

    server.script("sum", [Step::status(429).retry_after("999999999")]);
    let start = Instant::now();
    stack(&server, strategy.retry_after_ceiling(secs(5.0)))
        .oneshot(sum(2))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(5.0));
}

#[tokio::test(start_paused = true)]
async fn retry_after_date_in_the_past_adds_nothing() {
    let server = server().await;
    server.script(
        "sum",
        [Step::status(503).retry_after("Wed, 21 Oct 2015 07:28:00 GMT")],
    );
    let strategy =
        periodic(3, secs(0.1)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let start = Instant::now();
    stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(start.elapsed(), secs(0.1));
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_a_json_rpc_error_response() {
    let server = server().await;
    server.script(
        "sum",
        [Step::status_with_error(429, -32005).retry_after("3")],
    );
    let start = Instant::now();
    let resp = stack(&server, periodic(3, secs(0.1)).codes([-32005]))
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(start.elapsed(), secs(3.0));
}

#[tokio::test(start_paused = true)]
async fn no_retry_is_scheduled_past_the_deadline() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let strategy = periodic(10, secs(1.0)).codes([2001]).max_elapsed(secs(2.5));
    let start = Instant::now();
    let resp = stack(&server, strategy)
        .oneshot(Request::new("busy", json!([])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(
        server.calls("busy"),
        3,
        "sends at 0 s, 1 s, 2 s; a wait to 3 s would pass 2.5 s"
    );
    assert_eq!(start.elapsed(), secs(2.0));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_beyond_what_an_instant_holds_bounds_nothing() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    // 500 days: more than a year, within what tokio's timer holds.
    let long = Duration::from_secs(500 * 86_400);
    let strategy = periodic(1, long).codes([2001]).max_elapsed(Duration::MAX);
    let start = Instant::now();
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(start.elapsed(), long);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_starts_at_its_deadline_is_cut_at_once() {
    let server = server().await;
    server.script("sum", [Step::delay(secs(1.0)), Step::delay(secs(1.0))]);
    let zero = || RetryStrategy::none().max_elapsed(Duration::ZERO);
    // The layer's own deadline, and one an outer layer gave the call: a deadline that
    // is now, not yet past, is the call's and is kept by the inner layer.
    let own = stack(&server, zero());
    let outer = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(zero()))
        .service(stack(&server, RetryStrategy::none()));
    let start = Instant::now();
    let own = own.oneshot(sum(1)).await;
    let outer = outer.oneshot(sum(2)).await;
    for (name, result) in [("own", own), ("outer", outer)] {
        let err = result.unwrap_err();
        assert!(err.is_timeout(), "{name}: {err:?}");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "{name}: cut by the deadline, not by the attempt timeout"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn budget_bounds_a_retry_storm() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    // 10 % of calls, plus a reserve of 1 retry per second over a 10 s window.
    // Chosen at run time: a `dyn Budget` is taken as a concrete one is.
    let budget: Arc<dyn tower::retry::budget::Budget + Send + Sync> =
        Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 0.1));
    let strategy = periodic(3, Duration::ZERO).codes([2001]).budget(budget);
    let mut svc = stack(&server, strategy);
    let calls = 100;
    for id in 0..calls {
        let req = Request::new("busy", json!([])).with_id(id);
        common::call(&mut svc, req).await.unwrap();
    }
    let attempts = server.calls("busy");
    // Without a budget: 400 attempts. With it: 100 calls + 10 (reserve) + 100 / 10.
    assert_eq!(
        attempts,
        120,
        "amplification {:.2}",
        attempts as f64 / calls as f64
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_during_a_wait_sends_nothing_more() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::error(2001), 3));
    let svc = stack(&server, periodic(3, secs(10.0)).codes([2001]));
    let call = tokio::spawn(svc.oneshot(sum(1)));
    tokio::time::sleep(secs(5.0)).await;
    assert_eq!(server.calls("sum"), 1, "first attempt made, now waiting");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(server.calls("sum"), 1);
}

#[tokio::test(start_paused = true)]
async fn status_class_applies_to_responses_with_a_json_rpc_body() {
    let server = server().await;
    server.script("sum", [Step::status_with_error(503, -32603)]);
    let strategy =
        periodic(3, secs(1.0)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2);
}

#[tokio::test(start_paused = true)]
async fn status_class_leaves_a_response_under_another_status_alone() {
    // A JSON-RPC body under 500: a rule on 503 is not a rule on every failure status.
    let server = server().await;
    server.script("sum", [Step::status_with_error(500, -32603)]);
    let strategy =
        periodic(3, secs(1.0)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(-32603));
    assert_eq!(
        resp.extensions().get::<http::StatusCode>(),
        Some(&http::StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(server.calls("sum"), 1);
}

const WHOLE_BATCH_LIMITED: &str =
    r#"{"jsonrpc": "2.0", "error": {"code": -32005, "message": "limit exceeded"}, "id": null}"#;

#[tokio::test(start_paused = true)]
async fn batch_level_error_resends_the_notifications_too() {
    let server = server().await;
    server.script("sum", [Step::raw(200, WHOLE_BATCH_LIMITED)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([-32005]));
    let batch = BatchRequest::new(vec![sum(1), Request::new("log", json!(["note"]))]);
    svc.oneshot(batch).await.unwrap();
    let bodies = server.bodies_json();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0], bodies[1],
        "the server processed nothing: all of it again"
    );
}

#[tokio::test(start_paused = true)]
async fn batch_level_error_does_not_resend_a_non_idempotent_notification() {
    let server = server().await;
    server.script(
        "sum",
        [Step::raw(200, WHOLE_BATCH_LIMITED).retry_after("2")],
    );
    let strategy = periodic(3, secs(1.0))
        .codes([-32005])
        .non_idempotent(["send"]);
    let svc = stack(&server, strategy);
    let batch = BatchRequest::new(vec![
        sum(1),
        Request::new("send", json!(["tx"])),
        Request::new("log", json!(["note"])),
    ]);
    let resp = svc.oneshot(batch).await.unwrap();
    assert_eq!(
        resp.get(&Id::Number(1)).and_then(|r| r.result()),
        Some(&json!(3))
    );
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(
        server.calls("log"),
        2,
        "an idempotent notification goes again"
    );
    assert_eq!(
        server.calls("send"),
        1,
        "the server saw the batch: sent once"
    );
    // The call's later answer does not hide that the server refused, and never ran,
    // the notification that did not go again.
    assert_eq!(resp.batch_error(), None, "the retry was answered");
    let kept: Vec<_> = resp
        .unmatched()
        .iter()
        .map(|r| {
            let hint = r.extensions().get::<RetryAfter>().map(|h| h.delay());
            (r.id().clone(), r.error().map(|e| e.code()), hint)
        })
        .collect();
    assert_eq!(kept, [(Id::Null, Some(-32005), Some(secs(2.0)))]);
}

/// The same refusal, when the calls' re-send then fails in transport and retries end:
/// the batch comes back as refused, with the refusal once (as the batch's error), not
/// again among the answers no call took; the same when the re-send is refused again
/// before the failure, or refused until the attempts run out. Refused twice and then
/// answered, the notification's refusal is kept once.
#[tokio::test(start_paused = true)]
async fn a_refusal_whose_re_send_fails_is_the_batchs_error_once() {
    let refused = || Step::raw(200, WHOLE_BATCH_LIMITED);
    // Refused, then failing; refused twice, then failing; refused to the end.
    let cases = [
        vec![refused(), Step::timeout()],
        vec![refused(), refused(), Step::timeout()],
        vec![refused(), refused(), refused()],
    ];
    for steps in cases {
        let server = server().await;
        let exchanges = steps.len();
        server.script("sum", steps);
        let strategy = periodic(exchanges - 1, secs(1.0))
            .codes([-32005])
            .retry_on(ErrorClass::Timeout)
            .non_idempotent(["send"]);
        let svc = stack(&server, strategy);
        let batch = BatchRequest::new(vec![sum(1), Request::new("send", json!(["tx"]))]);
        let resp = svc.oneshot(batch).await.unwrap();
        let sent = (server.calls("sum"), server.calls("send"));
        assert_eq!(sent, (exchanges, 1), "{exchanges} exchanges");
        assert_eq!(resp.batch_error().map(|e| e.code()), Some(-32005));
        assert!(
            resp.unmatched().is_empty(),
            "{exchanges} exchanges: {resp:?}"
        );
    }

    let server = server().await;
    server.script("sum", [refused(), refused()]);
    let strategy = periodic(2, secs(1.0))
        .codes([-32005])
        .non_idempotent(["send"]);
    let svc = stack(&server, strategy);
    let batch = BatchRequest::new(vec![sum(1), Request::new("send", json!(["tx"]))]);
    let resp = svc.oneshot(batch).await.unwrap();
    assert_eq!((server.calls("sum"), server.calls("send")), (3, 1));
    assert_eq!(
        resp.get(&Id::Number(1)).and_then(|r| r.result()),
        Some(&json!(3))
    );
    assert_eq!(resp.batch_error(), None, "the last re-send was answered");
    let kept: Vec<_> = resp
        .unmatched()
        .iter()
        .map(|r| r.error().map(|e| e.code()))
        .collect();
    assert_eq!(kept, [Some(-32005)], "{resp:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_status_answering_another_call_is_a_status_for_a_batch_too() {
    let server = server().await;
    let other_id = r#"{"jsonrpc":"2.0","error":{"code":-32029,"message":"rate limited"},"id":0}"#;
    server.script("sum", [Step::raw(429, other_id).retry_after("7")]);
    // The gateway's code is listed, but the answer is not to these calls: not retried.
    let svc = stack(&server, periodic(3, secs(0.1)).codes([-32029]));
    let err = svc
        .oneshot(BatchRequest::new(vec![sum(1), sum(2)]))
        .await
        .expect_err("a status error");
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.retry_after(), Some(secs(7.0)));
    assert_eq!(server.calls("sum"), 2, "one exchange");
}

#[tokio::test(start_paused = true)]
async fn batch_error_is_the_last_exchanges() {
    let server = server().await;
    server.script("sum", [Step::raw(200, WHOLE_BATCH_LIMITED)]);
    let svc = stack(&server, periodic(3, secs(1.0)).codes([-32005]));
    let resp = svc
        .oneshot(BatchRequest::new(vec![sum(1), sum(2)]))
        .await
        .unwrap();
    assert!(resp.items().iter().all(|r| r.result() == Some(&json!(3))));
    assert_eq!(resp.batch_error(), None, "the retry succeeded");
}

/// Answers no call took (null-id errors) are kept from every exchange of a partly
/// retried batch, in the order they came: a re-send adds to them, it does not replace them.
#[tokio::test(start_paused = true)]
async fn a_partly_retried_batch_keeps_every_exchanges_answers_no_call_took() {
    let server = server().await;
    let unread = |message: &str| {
        format!(r#"{{"jsonrpc":"2.0","error":{{"code":-32600,"message":"{message}"}},"id":null}}"#)
    };
    let first = format!(
        r#"[{{"jsonrpc":"2.0","error":{{"code":-32005,"message":"limited"}},"id":1}},{{"jsonrpc":"2.0","result":7,"id":2}},{}]"#,
        unread("first")
    );
    let second = format!(
        r#"[{{"jsonrpc":"2.0","result":3,"id":1}},{}]"#,
        unread("second")
    );
    server.script(
        "sum",
        [Step::raw(200, first), Step::ok(), Step::raw(200, second)],
    );
    let svc = stack(&server, periodic(3, secs(1.0)).codes([-32005]));
    let resp = svc
        .oneshot(BatchRequest::new(vec![sum(1), sum(2)]))
        .await
        .unwrap();
    assert_eq!(server.bodies().len(), 2);
    let results: Vec<_> = resp.items().iter().map(|r| r.result().cloned()).collect();
    assert_eq!(results, [Some(json!(3)), Some(json!(7))]);
    let unmatched: Vec<_> = resp
        .unmatched()
        .iter()
        .map(|r| r.error().map(|e| e.message().to_owned()))
        .collect();
    assert_eq!(
        unmatched,
        [Some("first".to_owned()), Some("second".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn status_class_applies_to_batches_with_a_json_rpc_body() {
    let server = server().await;
    server.script("sum", [Step::status_with_error(503, -32000)]);
    let strategy =
        periodic(3, secs(1.0)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let resp = stack(&server, strategy)
        .oneshot(BatchRequest::new(vec![sum(1), sum(2)]))
        .await
        .unwrap();
    assert_eq!(
        server.http_requests(),
        2,
        "retried, as a single call would be"
    );
    assert!(resp.items().iter().all(|r| r.result() == Some(&json!(3))));
    assert_eq!(resp.batch_error(), None);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_retry_short() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::timeout(), 5));
    // Attempts time out after 200 ms; the whole call may take 250 ms.
    let strategy = periodic(5, Duration::ZERO)
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(Duration::from_millis(250));
    let start = Instant::now();
    let err = stack(&server, strategy).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(250),
        "the retry ends at the deadline"
    );
    assert_eq!(
        server.calls("sum"),
        2,
        "and no retry starts with no time left"
    );
}

/// A call of `busy` through a retry layer with `outer` over the stack with `inner`: the
/// answer, and how long it took.
async fn busy_through_two_layers(
    server: &FlakyServer,
    outer: RetryStrategy,
    inner: RetryStrategy,
) -> (tower_jsonrpc_retry::jsonrpc::Response, Duration) {
    let svc = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(outer))
        .service(stack(server, inner));
    let start = Instant::now();
    let resp = svc
        .oneshot(Request::new("busy", json!([])).with_id(1))
        .await
        .unwrap();
    (resp, start.elapsed())
}

/// Under two retry layers, each reads a request's own strategy, as the crate docs say:
/// its retries multiply (2 retries: 3 attempts of the outer layer, each 3 of the inner
/// one's), and `RetryStrategy::none()` there turns both off.
#[tokio::test(start_paused = true)]
async fn under_two_retry_layers_each_follows_the_requests_own_strategy() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let svc = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(
            RetryStrategy::none(),
        ))
        .service(stack(&server, RetryStrategy::none()));
    for (own, attempts) in [
        (periodic(2, Duration::ZERO).codes([2001]), 9),
        (RetryStrategy::none(), 1),
    ] {
        let before = server.calls("busy");
        let mut req = Request::new("busy", json!([])).with_id(1);
        req.extensions_mut().insert(own);
        let resp = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(2001));
        assert_eq!(server.calls("busy") - before, attempts);
    }
}

#[tokio::test(start_paused = true)]
async fn an_outer_deadline_also_bounds_an_inner_retry_layer() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    // The inner layer has no deadline of its own and would wait 3 × 500 ms; the outer
    // one gives the call 1 s, which the inner layer's waits must respect too.
    let inner = periodic(3, Duration::from_millis(500)).codes([2001]);
    let outer = periodic(3, Duration::from_millis(100))
        .codes([2001])
        .max_elapsed(secs(1.0));
    let (resp, elapsed) = busy_through_two_layers(&server, outer, inner).await;
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    // Inner: 0 s, 0.5 s, then a wait to 1 s would reach the deadline. Outer, after
    // 100 ms each: 0.6 s (the inner layer's next wait would end past 1 s), 0.7 s, 0.8 s.
    assert_eq!(server.calls("busy"), 5);
    assert_eq!(elapsed, Duration::from_millis(800));
}

/// A retry of the outer layer that starts after the deadline (its wait ended late: the
/// runtime was held up, or the service below became ready in the deadline's timer tick
/// but after it) still bounds the inner layer. Such a retry went down to the inner
/// layer, which took the past deadline for one left over from an earlier call and
/// dropped it: its own strategy then ran unbounded, five more sends over 5 s past a
/// 1.5 s deadline. It is not sent at all now (`a_retry_starting_past_the_deadline_is_not_sent`);
/// a first attempt whose deadline has come goes down with it as the call's
/// (`tests/zero_deadline.rs`).
#[tokio::test(start_paused = true)]
async fn an_outer_retry_starting_past_the_deadline_still_bounds_an_inner_layer() {
    for batch in [false, true] {
        let server = server().await;
        let mut steps = vec![Step::error(2001)];
        steps.extend(std::iter::repeat_n(Step::error(2002), 5));
        server.script("sum", steps);
        let inner = periodic(5, Duration::from_secs(1)).codes([2002]);
        let outer = periodic(1, Duration::from_secs(1))
            .codes([2001])
            .max_elapsed(secs(1.5));
        let svc = JsonRpcRetryLayer::new(outer).layer(stack(&server, inner));
        let start = Instant::now();
        let call = Request::new("sum", json!([1, 2])).with_id(1);
        let call = if batch {
            // A partly retried batch's re-send cut by its deadline gives back the answers
            // gathered before: the first attempt's 2001.
            let call = svc.oneshot(BatchRequest::new(vec![call]));
            tokio::spawn(async move {
                let resp = call.await?;
                Ok(resp
                    .get(&Id::from(1))
                    .and_then(|r| r.error())
                    .map(|e| e.code()))
            })
        } else {
            let call = svc.oneshot(call);
            tokio::spawn(async move { call.await.map(|_| None) })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The runtime held up for 1.2 s: the outer wait, due at 1 s, ends at 1.7 s.
        tokio::time::advance(Duration::from_millis(1200)).await;
        let out = call.await.unwrap();
        if batch {
            assert_eq!(out.unwrap(), Some(2001));
        } else {
            let err = out.expect_err("the late attempt is cut at once");
            assert!(err.is_timeout(), "{err}");
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(1700),
            "batch {batch}"
        );
        assert_eq!(
            server.calls("sum"),
            1,
            "batch {batch}: nothing sent past the deadline"
        );
    }
}

/// An HTTP service answering every request at once with error 2001 (to a single call
/// with id 1, or a batch of one such call), counting the requests it was sent.
fn busy_http(
    sent: Arc<AtomicUsize>,
) -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<http_body_util::Full<bytes::Bytes>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(
        move |req: http::Request<http_body_util::Full<bytes::Bytes>>| {
            sent.fetch_add(1, Ordering::SeqCst);
            let answer = r#"{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1}"#;
            let batch = req.headers().get("x-batch").is_some();
            let body = if batch {
                format!("[{answer}]")
            } else {
                answer.to_owned()
            };
            std::future::ready(Ok(http::Response::new(http_body_util::Full::from(body))))
        },
    )
}

/// A retry whose wait ended after the deadline (the runtime held up, as here, or a hook
/// that took longer than the time left) is not sent: the codec's cut, a timer firing on
/// the next millisecond, came after the inner service had been handed the request, so
/// a late retry reached the server (and could even succeed) past `max_elapsed`. At both
/// levels, for a call and a batch.
#[tokio::test(start_paused = true)]
async fn a_retry_starting_past_the_deadline_is_not_sent() {
    let strategy = || {
        periodic(1, Duration::from_secs(1))
            .codes([2001])
            .max_elapsed(secs(1.5))
    };
    for case in ["call", "batch", "http level"] {
        let sent = Arc::new(AtomicUsize::new(0));
        let http = busy_http(sent.clone());
        let start = Instant::now();
        let call: tokio::task::JoinHandle<Result<String, BoxError>> = match case {
            "http level" => {
                let svc = JsonRpcRetryLayer::http::<http_body_util::Full<bytes::Bytes>>(strategy())
                    .layer(http);
                let req = http::Request::post("http://127.0.0.1:1/")
                    .body(http_body_util::Full::from(
                        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#,
                    ))
                    .unwrap();
                tokio::spawn(async move {
                    let resp = svc.oneshot(req).await?;
                    Ok(format!("{:?}", resp.into_body()))
                })
            }
            _ => {
                let codec = tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
                    "http://127.0.0.1:1/".parse().unwrap(),
                );
                let codec = if case == "batch" {
                    codec.header(
                        http::HeaderName::from_static("x-batch"),
                        http::HeaderValue::from_static("1"),
                    )
                } else {
                    codec
                };
                let svc = JsonRpcRetryLayer::new(strategy()).layer(codec.layer(http));
                if case == "batch" {
                    let call = svc.oneshot(BatchRequest::new(vec![sum(1)]));
                    tokio::spawn(async move { Ok(format!("{:?}", call.await?)) })
                } else {
                    let call = svc.oneshot(sum(1));
                    tokio::spawn(async move { Ok(format!("{:?}", call.await?)) })
                }
            }
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The runtime held up for 1.2 s: the wait, due to end at 1 s, ends at 1.7 s.
        tokio::time::advance(Duration::from_millis(1200)).await;
        let out = call.await.unwrap();
        assert_eq!(
            sent.load(Ordering::SeqCst),
            1,
            "{case}: the late retry was sent: {out:?}"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(1700), "{case}");
        match case {
            // A partly retried batch gives back the answers gathered before.
            "batch" => assert!(out.as_ref().unwrap().contains("2001"), "{case}: {out:?}"),
            _ => {
                let err = out.expect_err(case);
                assert!(err.to_string().contains("timed out"), "{case}: {err}");
                assert!(err.to_string().contains("deadline"), "{case}: {err}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_inner_layers_earlier_deadline_wins_over_an_outer_ones() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let inner = periodic(10, Duration::from_millis(500))
        .codes([2001])
        .max_elapsed(secs(1.0));
    let outer = RetryStrategy::none().max_elapsed(secs(10.0));
    let (resp, elapsed) = busy_through_two_layers(&server, outer, inner).await;
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    // Sent at 0 s and 0.5 s; a wait to 1 s would reach the inner layer's deadline.
    assert_eq!(server.calls("busy"), 2);
    assert_eq!(elapsed, Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_batch_of_notifications_refused_as_a_whole_is_sent_again() {
    let server = server().await;
    // 503 with an error object for the whole batch: nothing was processed.
    server.script("log", [Step::status_with_error(503, -32005)]);
    let batch = BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("log", json!(["b"])),
    ]);
    stack(&server, RetryStrategy::transient())
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(server.http_requests(), 2, "refused, then sent again");
    assert_eq!(server.calls("log"), 4);
}

#[tokio::test(start_paused = true)]
async fn every_call_deposits_even_under_a_strategy_that_cannot_retry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::retry::budget::Budget;

    #[derive(Debug, Default)]
    struct Deposits(AtomicUsize);
    impl Budget for Deposits {
        fn deposit(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn withdraw(&self) -> bool {
            true
        }
    }

    let server = server().await;
    let deposits = Arc::new(Deposits::default());
    // A backoff and a budget, but nothing to retry on: the call still counts.
    let strategy = periodic(3, secs(1.0)).budget(deposits.clone());
    assert!(!strategy.can_retry());
    stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(deposits.0.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_batch_of_notifications_refused_under_200_with_a_listed_code_is_sent_again() {
    let server = server().await;
    // How a rate limiter may answer a whole batch: 200, one error with a null id.
    let refusal = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limit"},"id":null}"#;
    server.script("log", [Step::raw(200, refusal)]);
    let batch = BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("log", json!(["b"])),
    ]);
    let resp = stack(&server, periodic(3, secs(0.1)).codes([-32005]))
        .oneshot(batch)
        .await
        .unwrap();
    assert_eq!(server.http_requests(), 2, "refused, then sent again");
    assert_eq!(resp.batch_error(), None, "the second answer stands");
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_with_a_non_idempotent_notification_keeps_the_refusal() {
    let server = server().await;
    server.script("log", [Step::status_with_error(503, -32005)]);
    let strategy = RetryStrategy::transient().non_idempotent(["send"]);
    let batch = BatchRequest::new(vec![
        Request::new("log", json!(["a"])),
        Request::new("send", json!(["tx"])),
    ]);
    let resp = stack(&server, strategy).oneshot(batch).await.unwrap();
    // `send` would not go again: the batch is not retried, and the caller sees why.
    assert_eq!(server.http_requests(), 1);
    assert!(resp.batch_error().is_some(), "{resp:?}");
}

/// A request as a layer below the retry kept it (a recorder, a dead-letter queue), taken
/// up again long after the deadline of the call that sent it.
async fn a_request_kept_past_its_deadline() -> Request {
    use std::sync::Mutex;
    use tower::{Layer, Service};
    use tower_jsonrpc_retry::jsonrpc::Response;

    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let kept = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: Request| {
        kept.lock().unwrap().push(req.clone());
        async { Ok::<_, tower_jsonrpc_retry::BoxError>(Response::success(1, json!("ok"))) }
    });
    let strategy = periodic(3, secs(0.1))
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(secs(1.0));
    let mut svc = tower_jsonrpc_retry::JsonRpcRetryLayer::new(strategy).layer(inner);
    ServiceExt::<Request>::ready(&mut svc).await.unwrap();
    svc.call(sum(1)).await.unwrap();
    tokio::time::advance(secs(10.0)).await;
    seen.lock().unwrap().first().cloned().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_request_sent_again_later_gets_a_fresh_deadline() {
    // It goes through again over a codec that would cut it at a stale deadline: it is a
    // new call.
    let again = a_request_kept_past_its_deadline().await;
    let server = server().await;
    let strategy = periodic(3, secs(0.1)).max_elapsed(secs(1.0));
    let resp = stack(&server, strategy).oneshot(again).await;
    assert!(resp.is_ok_and(|r| r.result() == Some(&json!(3))));
}

/// Sent again before its first call's deadline, a kept request keeps that deadline (it
/// cannot be told from an attempt of a retry layer further out, as `max_elapsed` says);
/// rebuilt from its method, params and id, as the docs advise, it has time of its own.
#[tokio::test(start_paused = true)]
async fn a_request_sent_again_before_its_deadline_keeps_it_unless_rebuilt() {
    use std::sync::Mutex;
    use tower::Service;

    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let kept = Arc::clone(&seen);
    let inner = tower::service_fn(move |req: Request| {
        kept.lock().unwrap().push(req.clone());
        async { Ok::<_, BoxError>(Response::success(1, json!("ok"))) }
    });
    let strategy = periodic(3, secs(0.5)).codes([2001]).max_elapsed(secs(1.0));
    let mut svc = JsonRpcRetryLayer::new(strategy.clone()).layer(inner);
    ServiceExt::<Request>::ready(&mut svc).await.unwrap();
    svc.call(sum(1)).await.unwrap();
    tokio::time::advance(secs(0.8)).await;
    let again = seen.lock().unwrap().first().cloned().unwrap();
    let rebuilt = Request::new(again.method().to_owned(), again.params().cloned().unwrap())
        .with_id(again.id().cloned().unwrap());

    let server = server().await;
    // 0.2 s of the first call's second are left: the 0.5 s wait would end past it.
    server.script("sum", [Step::error(2001)]);
    let resp = stack(&server, strategy.clone())
        .oneshot(again)
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001), "{resp:?}");
    assert_eq!(server.calls("sum"), 1);
    // A second of its own: the wait fits, and the retry is answered.
    server.script("sum", [Step::error(2001)]);
    let resp = stack(&server, strategy).oneshot(rebuilt).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)), "{resp:?}");
    assert_eq!(server.calls("sum"), 3);
}

/// The same request sent again later, under the policy alone (a plain tower `Retry`):
/// the deadline its earlier call left in its extensions is over, and must not stop the
/// new call's retries (nor count as this call's deadline).
#[tokio::test(start_paused = true)]
async fn a_request_sent_again_later_under_a_plain_retry_is_retried() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    use tower_jsonrpc_retry::{GiveUpEvent, JsonRpcRetryPolicy};

    // It goes through a plain tower `Retry` whose strategy retries code 2001 (no
    // deadline of its own).
    let again = a_request_kept_past_its_deadline().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let flaky = tower::service_fn(move |req: Request| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let id = req.id().cloned().unwrap();
            Ok::<_, tower_jsonrpc_retry::BoxError>(if n == 0 {
                Response::failure(id, ErrorObject::new(2001, "busy"))
            } else {
                Response::success(id, json!(3))
            })
        }
    });
    let gave_up: Arc<Mutex<Vec<String>>> = Arc::default();
    let reasons = Arc::clone(&gave_up);
    let strategy = periodic(3, secs(0.1))
        .codes([2001])
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            reasons.lock().unwrap().push(e.reason().to_string())
        });
    let plain = tower::retry::Retry::new(JsonRpcRetryPolicy::new(strategy), flaky);
    let resp = plain.oneshot(again).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)), "{resp:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        gave_up.lock().unwrap().is_empty(),
        "{:?}",
        gave_up.lock().unwrap()
    );
}

/// `JsonRpcRetryPolicy`'s doc: under a plain tower `Retry`, the retries carry the
/// strategy's deadline down to the codec, a batch's as a single call's: the retry is cut
/// short at the deadline, not at the attempt timeout after it.
#[tokio::test(start_paused = true)]
async fn a_batch_retry_under_a_plain_retry_is_cut_at_the_deadline() {
    use tower::ServiceBuilder;
    use tower::timeout::TimeoutLayer;
    use tower_jsonrpc_retry::JsonRpcRetryPolicy;
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;

    let server = server().await;
    server.script("sum", [Step::error(2001), Step::timeout()]);
    let strategy = periodic(3, secs(1.0))
        .codes([2001])
        .max_elapsed(Duration::from_millis(1_050));
    let plain = ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(JsonRpcRetryPolicy::new(
            strategy,
        )))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(common::http());
    let start = Instant::now();
    // The retry's transport failure leaves the item with its last answer.
    let resp = plain
        .oneshot(BatchRequest::new(vec![sum(1)]))
        .await
        .unwrap();
    assert_eq!(resp.items()[0].error().map(|e| e.code()), Some(2001));
    assert_eq!(server.http_requests(), 2);
    // Cut at 1.05 s (the deadline), not at 1.2 s (the attempt timeout).
    assert!(
        start.elapsed() >= Duration::from_millis(1_050),
        "{:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_millis(1_060),
        "{:?}",
        start.elapsed()
    );
}

/// lib.rs "Per-request strategies": a strategy built from the default's clone keeps
/// its hooks; one built afresh replaces them, so the default's hook hears nothing.
#[tokio::test(start_paused = true)]
async fn a_request_strategy_keeps_the_defaults_hooks_only_when_cloned_from_it() {
    let server = server().await;
    let rec = Recorder::default();
    let default = rec.attach(periodic(3, secs(1.0)).codes([2001]));
    let svc = stack(&server, default.clone());

    server.script("sum", [Step::error(2001)]);
    let mut req = sum(1);
    req.extensions_mut().insert(default.clone().codes([2002]));
    svc.clone().oneshot(req).await.unwrap();
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(rec.reasons(), ["code 2001"], "a clone shares the hook");

    server.script("sum", [Step::error(2001)]);
    let mut req = sum(2);
    req.extensions_mut()
        .insert(periodic(3, secs(1.0)).codes([2001]));
    svc.oneshot(req).await.unwrap();
    assert_eq!(
        server.calls("sum"),
        4,
        "retried by the request's own strategy"
    );
    assert_eq!(rec.count(), 1, "the default's hook is not the request's");
}

/// lib.rs "Batches": one strategy decides for the whole batch; a strategy in the
/// extensions of a request inside it is not read.
#[tokio::test(start_paused = true)]
async fn a_strategy_inside_a_batch_item_is_not_read() {
    let server = server().await;
    server.script("sum", [Step::error(2001)]);
    let mut item = sum(1);
    item.extensions_mut().insert(RetryStrategy::none());
    let resp = stack(&server, periodic(3, secs(1.0)).codes([2001]))
        .oneshot(BatchRequest::new(vec![item]))
        .await
        .unwrap();
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2, "the stack's default retried it");
}

/// README "How a retry is decided": a wait ending *at* `max_elapsed` is not started. With
/// a whole second the policy's allowance for tokio's millisecond rounding puts the end
/// past the deadline; with 1 s - 999 999 ns it ends exactly at it (the comparison at
/// equality).
#[tokio::test(start_paused = true)]
async fn a_wait_ending_exactly_at_the_deadline_is_not_started() {
    for wait in [secs(1.0), Duration::from_nanos(1_000_000_000 - 999_999)] {
        let server = server().await;
        server.script("sum", [Step::error(2001)]);
        let start = Instant::now();
        let resp = stack(
            &server,
            periodic(3, wait).codes([2001]).max_elapsed(secs(1.0)),
        )
        .oneshot(sum(1))
        .await
        .unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(2001), "{wait:?}");
        assert_eq!(server.calls("sum"), 1, "{wait:?}");
        assert_eq!(start.elapsed(), Duration::ZERO, "{wait:?}");
    }
}

/// What a hook that takes `d` to run (a blocking log write, say) does to tokio's paused
/// clock: time passes while it runs.
fn hook_takes(d: Duration) {
    let mut advance = std::pin::pin!(tokio::time::advance(d));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while advance.as_mut().poll(&mut cx).is_pending() {}
}

/// A wait checked against the deadline counts from that check: the time the `on_retry`
/// hook takes comes out of it, so the retry still starts before `max_elapsed`, for a
/// single call and a batch alike.
#[tokio::test(start_paused = true)]
async fn a_slow_on_retry_hook_does_not_push_the_retry_past_the_deadline() {
    let server = server().await;
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let strategy = periodic(3, secs(1.0))
        .codes([2001])
        .max_elapsed(secs(1.5))
        .on_retry(|_| hook_takes(secs(0.6)));
    let svc = stack(&server, strategy);
    let busy = |id| Request::new("busy", json!([])).with_id(id);

    let start = Instant::now();
    let resp = svc.clone().oneshot(busy(1)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(
        server.calls("busy"),
        2,
        "sends at 0 s and 1 s; a wait to 2 s is not"
    );
    assert_eq!(start.elapsed(), secs(1.0), "the retry went at 1.6 s");

    let start = Instant::now();
    let resp = svc
        .oneshot(BatchRequest::new(vec![busy(2), busy(3)]))
        .await
        .unwrap();
    assert_eq!(resp.items()[1].error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("busy"), 6);
    assert_eq!(start.elapsed(), secs(1.0), "the re-send went at 1.6 s");
}

/// lib.rs "Idempotency": never after a timeout, whatever the strategy's rules say.
#[tokio::test(start_paused = true)]
async fn non_idempotent_method_is_not_retried_after_a_timeout() {
    let server = server().await;
    server.script("send", [Step::timeout()]);
    let strategy = periodic(3, secs(1.0))
        .retry_on(ErrorClass::Timeout)
        .retry_on_error::<Elapsed>()
        .retry_if(|_| true)
        .non_idempotent(["send"]);
    let start = Instant::now();
    let err = stack(&server, strategy)
        .oneshot(Request::new("send", json!([])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.calls("send"), 1);
    assert_eq!(start.elapsed(), ATTEMPT_TIMEOUT);
}

/// README "How a retry is decided": a connect failure proves a batch never left, so a
/// batch holding a non-idempotent call is sent again.
#[tokio::test(start_paused = true)]
async fn a_batch_with_a_non_idempotent_call_is_retried_on_connect_failure() {
    let (_held, closed) = common::refusing();
    let rec = Recorder::default();
    let strategy = rec.attach(
        periodic(2, secs(1.0))
            .retry_on(ErrorClass::Connect)
            .non_idempotent(["send"]),
    );
    let svc = stack_to(format!("http://{closed}/").parse().unwrap(), strategy);
    let batch = BatchRequest::new(vec![Request::new("send", json!([])).with_id(1), sum(2)]);
    let err = svc.oneshot(batch).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(rec.reasons(), ["connect"; 2]);
}

/// README feature table: `Retry-After` as an HTTP-date in the future raises the delay to
/// it (the date has whole seconds, so the wait is within the last second before it).
#[tokio::test(start_paused = true)]
async fn retry_after_date_in_the_future_raises_the_next_delay() {
    let server = server().await;
    let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
    server.script("sum", [Step::status(503).retry_after(when)]);
    let strategy =
        periodic(3, secs(0.1)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let start = Instant::now();
    stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    let waited = start.elapsed();
    assert!(waited > secs(28.0) && waited <= secs(30.0), "{waited:?}");
    assert_eq!(server.calls("sum"), 2);
}

/// `RetryStrategy::transient()`'s table: 429/502/503/504, reset and timeout retried, 3
/// times, 100 ms × 2ⁱ ±20 %; a 500 and JSON-RPC codes not.
#[tokio::test(start_paused = true)]
async fn transient_retries_what_its_table_says() {
    let server = server().await;
    let svc = stack(&server, RetryStrategy::transient());
    server.script(
        "sum",
        [Step::status(429), Step::status(502), Step::status(503)],
    );
    let start = Instant::now();
    assert_eq!(
        svc.clone().oneshot(sum(1)).await.unwrap().result(),
        Some(&json!(3))
    );
    let waited = start.elapsed();
    assert_eq!(server.calls("sum"), 4);
    // 100 + 200 + 400 ms, each within ±20 %.
    assert!(waited >= secs(0.56) && waited <= secs(0.84), "{waited:?}");

    server.script("sum", std::iter::repeat_n(Step::status(504), 4));
    let err = svc.clone().oneshot(sum(2)).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::GATEWAY_TIMEOUT));
    assert_eq!(server.calls("sum"), 8, "3 retries, 4 attempts");

    server.script("sum", [Step::status(500)]);
    assert!(svc.clone().oneshot(sum(3)).await.is_err());
    server.script("sum", [Step::error(-32005)]);
    let resp = svc.clone().oneshot(sum(4)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(server.calls("sum"), 10, "neither was retried");

    server.script("sum", [Step::drop_connection(), Step::timeout()]);
    assert!(svc.oneshot(sum(5)).await.is_ok());
    assert_eq!(server.calls("sum"), 13);
}

/// README feature table, "seedable, independent per request": through the layer, each
/// request of a seeded recipe draws its own delays, and the same seed repeats them.
#[tokio::test(start_paused = true)]
async fn seeded_jitter_differs_per_request_and_repeats_per_seed() {
    use tower_jsonrpc_retry::backoff::{BackoffExt, Jitter};
    let server = server().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let rec = Recorder::default();
        let backoff = PeriodicBackoff::new(2, secs(1.0)).jitter(Jitter::full().seeded(9));
        let svc = stack(
            &server,
            rec.attach(RetryStrategy::new(backoff).codes([2001])),
        );
        for id in 0..2 {
            server.script("sum", [Step::error(2001), Step::error(2001)]);
            svc.clone().oneshot(sum(id)).await.unwrap();
        }
        runs.push(rec.delays());
    }
    assert_eq!(runs[0].len(), 4);
    assert_eq!(runs[0], runs[1], "the same seed, the same delays");
    assert_ne!(runs[0][..2], runs[0][2..], "each request its own delays");
}

/// `RetryStrategy::none()` never retries, whatever the failure: in a request's
/// extensions it turns off what the layer's default (or a preset) would retry.
#[tokio::test(start_paused = true)]
async fn none_in_extensions_disables_retry_of_a_status_too() {
    let server = server().await;
    server.script("sum", [Step::status(503), Step::status(503)]);
    let strategy =
        periodic(3, secs(1.0)).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let mut req = sum(1);
    req.extensions_mut().insert(RetryStrategy::none());
    let err = stack(&server, strategy).oneshot(req).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.calls("sum"), 1);
    assert!(!RetryStrategy::none().can_retry());
}

/// `backoff` replaces the backoff only: the codes stay, the new delays are waited.
#[tokio::test(start_paused = true)]
async fn backoff_replaces_the_delays_and_keeps_the_rules() {
    let server = server().await;
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    let strategy = periodic(1, secs(1.0))
        .codes([2001])
        .backoff(PeriodicBackoff::new(2, secs(3.0)));
    let start = Instant::now();
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), secs(6.0));
}

/// `map_backoff` rebuilds the delays from the current ones and keeps the rules; on a
/// strategy without a backoff it changes nothing.
#[tokio::test(start_paused = true)]
async fn map_backoff_rebuilds_the_delays_and_keeps_the_rules() {
    use tower_jsonrpc_retry::backoff::BackoffExt;

    let server = server().await;
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    let strategy = periodic(2, secs(1.0))
        .codes([2001])
        .map_backoff(|b| b.map(|d| d * 3));
    let start = Instant::now();
    let resp = stack(&server, strategy).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
    assert_eq!(start.elapsed(), secs(6.0));
    let none = RetryStrategy::none().map_backoff(|b| b.map(|d| d * 3));
    assert!(!none.can_retry());
}

/// `transient_seeded`: the same delays on every run, within the preset's ±20 % of
/// 100 ms × 2ⁱ.
#[tokio::test(start_paused = true)]
async fn transient_seeded_draws_the_same_delays_on_every_run() {
    use std::sync::Mutex;

    async fn delays(strategy: RetryStrategy) -> Vec<Duration> {
        let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let record = Arc::clone(&seen);
        let strategy = strategy.on_retry(move |e: &tower_jsonrpc_retry::RetryEvent<'_>| {
            record.lock().unwrap().push(e.delay())
        });
        let inner = tower::service_fn(|_: Request| async {
            Err::<tower_jsonrpc_retry::jsonrpc::Response, _>(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))
        });
        let svc = tower::Layer::layer(
            &tower_jsonrpc_retry::JsonRpcRetryLayer::new(strategy),
            inner,
        );
        svc.oneshot(sum(1)).await.unwrap_err();
        seen.lock().unwrap().clone()
    }
    let first = delays(RetryStrategy::transient_seeded(7)).await;
    assert_eq!(first.len(), 3);
    for (d, nominal) in first.iter().zip([100, 200, 400]) {
        let nominal = Duration::from_millis(nominal);
        assert!(
            *d >= nominal * 8 / 10 && *d <= nominal * 12 / 10,
            "{first:?}"
        );
    }
    assert_eq!(delays(RetryStrategy::transient_seeded(7)).await, first);
}

/// `retry_on_error::<E>()` retries an error with an `E` in its chain, and no other.
#[tokio::test(start_paused = true)]
async fn retry_on_error_leaves_errors_of_other_types_alone() {
    let server = server().await;
    server.script("sum", [Step::status(503), Step::status(503)]);
    let svc = stack(&server, periodic(3, secs(1.0)).retry_on_error::<Elapsed>());
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.calls("sum"), 1);
}

/// `transient()`'s table: a refused connection is retried, to the end of its delays.
#[tokio::test(start_paused = true)]
async fn transient_retries_a_refused_connection() {
    let (_held, closed) = common::refusing();
    let rec = Recorder::default();
    let svc = stack_to(
        format!("http://{closed}/").parse().unwrap(),
        rec.attach(RetryStrategy::transient_seeded(1)),
    );
    let err = svc.oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(rec.reasons(), ["connect"; 3]);
}

/// lib.rs "Server hints": with a `Retry-After` and a `backoff_seconds` in the error's
/// data, the larger of the two is waited.
#[tokio::test(start_paused = true)]
async fn the_larger_of_a_header_and_a_data_hint_is_waited() {
    let server = server().await;
    let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"slow down","data":{"backoff_seconds":5}}}"#;
    let header = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"slow down","data":{"backoff_seconds":1}}}"#;
    for (body, retry_after, waited) in [(body, "1", 5.0), (header, "4", 4.0)] {
        server.script("sum", [Step::raw(200, body).retry_after(retry_after)]);
        let start = Instant::now();
        let resp = stack(&server, periodic(1, secs(0.1)).codes([-32005]))
            .oneshot(sum(1))
            .await
            .unwrap();
        assert_eq!(resp.result(), Some(&json!(3)));
        assert_eq!(start.elapsed(), secs(waited), "Retry-After {retry_after}");
    }
}

/// DESIGN "Semantics": a notification of a non-idempotent method is retried only on a
/// connect failure: not on a failure status, whatever the strategy's rules.
#[tokio::test(start_paused = true)]
async fn a_non_idempotent_notification_is_not_retried_on_a_status() {
    let server = server().await;
    server.script("log", [Step::status(503)]);
    let strategy = periodic(3, secs(1.0))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .non_idempotent(["log"]);
    let result = stack(&server, strategy.clone())
        .oneshot(Request::new("log", json!(["note"])))
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(server.calls("log"), 1);
    // The same notification of a method not marked is retried.
    server.script("note", [Step::status(503)]);
    stack(&server, strategy)
        .oneshot(Request::new("note", json!([])))
        .await
        .unwrap();
    assert_eq!(server.calls("note"), 2);
}

/// `retry_if`'s predicate is asked about the outermost error, and walks its `source()`
/// chain itself where it wants to: here to find tower's `Elapsed` under the codec's error.
/// (Asked about each error of the chain in turn, a predicate that says no to one kind of
/// error, `|e| !e.is::<Fatal>()`, would say yes to whatever that error wraps.)
#[tokio::test(start_paused = true)]
async fn a_predicate_sees_the_outermost_error_and_can_walk_its_chain() {
    let server = server().await;
    server.script("sum", [Step::timeout(), Step::timeout()]);
    let outermost = periodic(1, secs(1.0)).retry_if(|e| e.is::<Elapsed>());
    assert!(stack(&server, outermost).oneshot(sum(1)).await.is_err());
    assert_eq!(server.calls("sum"), 1, "the outermost error is the codec's");

    let walking = periodic(1, secs(1.0)).retry_if(|e| error_chain(e).any(|e| e.is::<Elapsed>()));
    let resp = stack(&server, walking).oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 3);
}

/// `error_chain` walks into a `std::io::Error` as the crate's own matchers do (its
/// `source()` skips the error it wraps), so a predicate sees what `retry_on_error` sees.
#[tokio::test(start_paused = true)]
async fn error_chain_sees_inside_an_io_error_as_the_matchers_do() {
    let err = || std::io::Error::other(std::io::Error::other(Elapsed::new()));
    let found: Vec<bool> = error_chain(&err()).map(|e| e.is::<Elapsed>()).collect();
    assert_eq!(found, [false, false, true]);
    let by_type = periodic(1, secs(1.0)).retry_on_error::<Elapsed>();
    let by_predicate =
        periodic(1, secs(1.0)).retry_if(|e| error_chain(e).any(|e| e.is::<Elapsed>()));
    for strategy in [by_type, by_predicate] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let failing = tower::service_fn(move |_: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<Response, BoxError>(Box::new(err())))
        });
        let result = JsonRpcRetryLayer::new(strategy)
            .layer(failing)
            .oneshot(sum(1))
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "retried once");
    }
}

/// DESIGN "Semantics": a non-idempotent method is retried after an error that proves the
/// request never left the client. The codec's HTTP service failing its readiness is one:
/// the codec keeps that error for the call, and hands nothing on.
#[tokio::test(start_paused = true)]
async fn a_non_idempotent_call_is_retried_after_a_readiness_error_below_the_codec() {
    let server = server().await;
    let strategy = periodic(2, secs(1.0))
        .retry_if(|e| error_chain(e).any(|e| e.to_string() == "not yet"))
        .non_idempotent(["sum"]);
    let svc = tower::ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .layer_fn(FailingReadiness::failing_once)
        .service(common::http());
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 1, "sent once, after the refusal");
}

/// The same for tower's `LoadShed` below the retry layer: its `Overloaded` is returned
/// without calling the service below, so a non-idempotent call may go again.
#[tokio::test(start_paused = true)]
async fn a_non_idempotent_call_is_retried_after_load_shed_refused_it() {
    use tower::load_shed::error::Overloaded;
    // Not ready on its first poll (so `LoadShed` sheds the call), ready after.
    #[derive(Clone, Default)]
    struct BusyOnce {
        polled: Arc<std::sync::atomic::AtomicBool>,
        calls: Arc<AtomicUsize>,
    }
    impl tower::Service<Request> for BusyOnce {
        type Response = Response;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Response, BoxError>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), BoxError>> {
            if self.polled.swap(true, Ordering::SeqCst) {
                std::task::Poll::Ready(Ok(()))
            } else {
                std::task::Poll::Pending
            }
        }
        fn call(&mut self, req: Request) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let id = req.id().cloned().unwrap_or(Id::Null);
            std::future::ready(Ok(Response::success(id, json!(3))))
        }
    }
    let inner = BusyOnce::default();
    let calls = Arc::clone(&inner.calls);
    let strategy = periodic(2, secs(1.0))
        .retry_on_error::<Overloaded>()
        .non_idempotent(["sum"]);
    let svc = tower::ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .load_shed()
        .service(inner);
    let resp = svc.oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A retry that a `retry_response_if` rule decided says so (`ResponsePredicate`), apart
/// from one on a listed code (`Code`): logs and metrics tell the two rules apart.
#[tokio::test(start_paused = true)]
async fn a_response_rule_and_a_listed_code_are_different_reasons() {
    use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    use tower_jsonrpc_retry::{RetryEvent, RetryReason};
    let reasons: Arc<std::sync::Mutex<Vec<RetryReason>>> = Arc::default();
    let log = Arc::clone(&reasons);
    let strategy = periodic(2, secs(0.01))
        .codes([2001])
        .retry_response_if(|e| e.message().contains("try again"))
        .on_retry(move |e: &RetryEvent<'_>| log.lock().unwrap().push(e.reason()));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let inner = tower::service_fn(move |req: Request| {
        let id = req.id().cloned().unwrap_or(Id::Null);
        let answer = match counted.fetch_add(1, Ordering::SeqCst) {
            0 => Response::failure(id, ErrorObject::new(-32000, "busy, try again")),
            1 => Response::failure(id, ErrorObject::new(2001, "busy")),
            _ => Response::success(id, json!(3)),
        };
        std::future::ready(Ok::<_, BoxError>(answer))
    });
    let resp = JsonRpcRetryLayer::new(strategy)
        .layer(inner)
        .oneshot(sum(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let reasons = reasons.lock().unwrap().clone();
    assert_eq!(
        reasons,
        [
            RetryReason::ResponsePredicate(-32000),
            RetryReason::Code(2001)
        ]
    );
    assert_eq!(reasons[0].to_string(), "response rule, code -32000");
}

/// A batch of notifications only that the server accepted (200) is delivered, as a
/// single notification is, when the body it is read for (a refusal) breaks off, stalls
/// or passes the limit (declared or found while reading): not an error, and not sent
/// again, under a strategy that retries broken bodies and timeouts.
#[tokio::test(start_paused = true)]
async fn an_accepted_batch_of_notifications_whose_body_breaks_or_stalls_is_not_sent_again() {
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;

    let steps = [
        Step::truncated(),
        Step::trickle(secs(1.0)),
        Step::oversized(4096),
        Step::oversized_chunked(4096),
    ];
    for step in steps {
        let server = server().await;
        server.script("log", [step.clone()]);
        let svc = tower::ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(RetryStrategy::transient_seeded(1)))
            .layer(
                JsonRpcCodecLayer::new(server.uri())
                    .attempt_timeout(secs(0.5))
                    .response_limit(1024),
            )
            .service(common::http());
        let batch = BatchRequest::new(vec![
            Request::new("log", json!(["a"])),
            Request::new("log", json!(["b"])),
        ]);
        let resp = svc.oneshot(batch).await;
        let resp = resp.unwrap_or_else(|e| panic!("{step:?}: {e:?}"));
        assert!(resp.items().is_empty(), "{step:?}: {resp:?}");
        assert!(resp.batch_error().is_none(), "{step:?}: {resp:?}");
        assert_eq!(server.http_requests(), 1, "{step:?}");
    }
}

/// `the_deadline_cuts_a_retry_short`, asserting that no retry is made at the deadline
/// (hooks, budget): the codec's cut of an attempt started there hides one from
/// `server.calls`.
#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_retry_short_and_makes_no_retry_at_it() {
    let server = server().await;
    server.script("sum", std::iter::repeat_n(Step::timeout(), 5));
    let rec = Recorder::default();
    let strategy = rec.attach(
        periodic(5, Duration::ZERO)
            .retry_on(ErrorClass::Timeout)
            .max_elapsed(Duration::from_millis(250)),
    );
    let err = stack(&server, strategy).oneshot(sum(1)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(rec.count(), 1, "retries made: {:?}", rec.reasons());
    let gave_up = err.gave_up().expect("a record");
    assert_eq!(
        (gave_up.retries(), gave_up.reason()),
        (1, tower_jsonrpc_retry::GiveUpReason::Deadline)
    );
}

/// `batch_keeps_answers_when_the_service_fails_readiness_for_a_resend`, asserting that
/// the re-send was decided (a retry after 1 s) and then failed readiness: with no retry
/// at all, the answers would be the same.
#[tokio::test(start_paused = true)]
async fn a_batch_re_send_decided_then_refused_by_readiness_keeps_the_answers() {
    let server = server().await;
    server.script("sum", [Step::ok(), Step::error(2001)]);
    let rec = Recorder::default();
    let svc = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(
            rec.attach(periodic(1, secs(1.0)).codes([2001])),
        ))
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .service(FailingReadiness::ready_once(common::http()));
    let start = Instant::now();
    let batch = BatchRequest::new(vec![sum(1), sum(2)]);
    let resp = svc.oneshot(batch).await.expect("nothing answered is lost");
    assert_eq!(rec.count(), 1, "the re-send was decided");
    assert_eq!(start.elapsed(), secs(1.0), "and waited for");
    assert_eq!(resp.items()[0].result(), Some(&json!(3)));
    assert_eq!(resp.items()[1].error().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 2, "the re-send never went out");
    let record = resp.items()[1]
        .extensions()
        .get::<tower_jsonrpc_retry::GaveUp>()
        .copied()
        .expect("a record");
    assert!(!record.last_attempt_unanswered());
    assert_eq!(record.retries(), 1);
}

// Decisions pinned one by one: the reason a retry reports (a listed code before a
// response rule, a batch's first call), the longest of two wait hints, a zero delay
// with under a millisecond left, null ids in a batch answer, and what a partly retried
// batch keeps of earlier exchanges (a hint, a refusal) once later ones answer.

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
