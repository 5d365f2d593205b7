//! What a retry tells the world: one `tracing` event per retry, one when retries end,
//! and the same facts through the `on_retry` hook.
// The events are the `tracing` feature's; with it off there are none to read.
#![cfg(feature = "tracing")]

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use common::{Recorder, secs, stack};
use serde_json::json;
use tower::ServiceExt;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{ErrorClass, GiveUpEvent, GiveUpReason, RetryStrategy};

thread_local! {
    /// What the subscriber wrote for events emitted on this thread. Each test runs on its
    /// own thread (a current-thread runtime), so each reads only its own events.
    static WRITTEN: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes into the emitting thread's buffer.
struct ThreadBuffer;

impl Write for ThreadBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        WRITTEN.with(|w| w.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The events of this thread, as the fmt subscriber prints them.
///
/// One global subscriber for the whole test binary, installed before any event: a
/// per-thread default races with other threads registering the same call sites.
struct Logs;

impl Logs {
    fn capture() -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .without_time()
                .with_writer(|| ThreadBuffer)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        WRITTEN.with(|w| w.borrow_mut().clear());
        Logs
    }

    fn lines(&self) -> Vec<String> {
        WRITTEN.with(|w| {
            String::from_utf8(w.borrow().clone())
                .unwrap()
                .lines()
                .filter(|l| l.contains("tower_jsonrpc_retry"))
                .map(str::to_owned)
                .collect()
        })
    }
}

fn periodic(attempts: usize) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, Duration::from_secs(1)))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn one_event_per_retry_and_one_when_retries_run_out() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::error(2001), 3));
    let resp = stack(&server, periodic(2).codes([2001]))
        .oneshot(Request::new("sum", json!([1, 2])).with_id(7))
        .await
        .unwrap();
    assert!(resp.is_error());
    let lines = logs.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, retry) in lines.iter().take(2).zip(1..) {
        assert!(line.contains("DEBUG"), "{line}");
        assert!(line.contains("retrying JSON-RPC request"), "{line}");
        assert!(line.contains("method=\"sum\""), "{line}");
        assert!(line.contains("id=7"), "{line}");
        assert!(line.contains(&format!("retry={retry}")), "{line}");
        assert!(line.contains("reason=code 2001"), "{line}");
        assert!(line.contains("delay_ms=1000"), "{line}");
    }
    let last = &lines[2];
    assert!(last.contains("not retrying JSON-RPC request"), "{last}");
    assert!(last.contains("reason=attempts exhausted"), "{last}");
    assert!(last.contains("retries=2"), "{last}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_final_event_names_why() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let call = |id: i64| Request::new("busy", json!([])).with_id(id);

    stack(&server, periodic(5).codes([2002]))
        .oneshot(call(1))
        .await
        .unwrap();
    stack(&server, periodic(5).codes([2001]).max_elapsed(secs(1.5)))
        .oneshot(call(2))
        .await
        .unwrap();
    let budget = Arc::new(tower::retry::budget::TpsBudget::new(
        Duration::from_secs(1),
        0,
        0.0,
    ));
    stack(&server, periodic(5).codes([2001]).budget(budget))
        .oneshot(call(3))
        .await
        .unwrap();

    let reasons: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("not retrying"))
        .map(|l| {
            l.split("reason=")
                .nth(1)
                .unwrap()
                .split(" retries")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Field order is the call site's: id, retries, reason. Normalise by matching words.
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("not retryable"), "{reasons:?}");
    assert!(reasons[1].starts_with("deadline"), "{reasons:?}");
    assert!(reasons[2].starts_with("budget exhausted"), "{reasons:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_give_up_hook_names_why_without_tracing() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    server.handle("fine", |_| Ok(json!(1)));
    /// Method, id, batch size, retries, reason.
    type Seen = (String, Option<String>, Option<usize>, u32, GiveUpReason);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let watch = |strategy: RetryStrategy| {
        let seen = Arc::clone(&seen);
        strategy.on_give_up(move |e: &GiveUpEvent<'_>| {
            seen.lock().unwrap().push((
                e.method().to_owned(),
                e.id().map(ToString::to_string),
                e.batch_len(),
                e.retries(),
                e.reason(),
            ));
        })
    };
    let call = |method: &'static str, id: i64| Request::new(method, json!([])).with_id(id);

    // A success makes no event.
    stack(&server, watch(periodic(5).codes([2001])))
        .oneshot(call("fine", 1))
        .await
        .unwrap();
    stack(&server, watch(periodic(5).codes([2002])))
        .oneshot(call("busy", 2))
        .await
        .unwrap();
    stack(&server, watch(periodic(2).codes([2001])))
        .oneshot(call("busy", 3))
        .await
        .unwrap();
    stack(
        &server,
        watch(periodic(5).codes([2001]).max_elapsed(secs(1.5))),
    )
    .oneshot(call("busy", 4))
    .await
    .unwrap();
    let budget = Arc::new(tower::retry::budget::TpsBudget::new(
        Duration::from_secs(1),
        0,
        0.0,
    ));
    stack(&server, watch(periodic(5).codes([2001]).budget(budget)))
        .oneshot(call("busy", 5))
        .await
        .unwrap();
    let batch =
        tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![call("fine", 6), call("busy", 7)]);
    stack(&server, watch(periodic(1).codes([2001])))
        .oneshot(batch)
        .await
        .unwrap();

    let busy = |id: &str, batch_len, retries, reason| {
        (
            "busy".to_owned(),
            Some(id.to_owned()),
            batch_len,
            retries,
            reason,
        )
    };
    assert_eq!(
        *seen.lock().unwrap(),
        [
            busy("2", None, 0, GiveUpReason::NotRetryable),
            busy("3", None, 2, GiveUpReason::Exhausted),
            busy("4", None, 1, GiveUpReason::Deadline),
            busy("5", None, 0, GiveUpReason::Budget),
            busy("7", Some(1), 1, GiveUpReason::Exhausted),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_hook_gets_the_same_facts() {
    let _logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(503).retry_after("3"), Step::timeout()]);
    let rec = Recorder::default();
    let strategy = rec.attach(
        periodic(3)
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
            .retry_on(ErrorClass::Timeout),
    );
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id("a"))
        .await
        .unwrap();
    let seen = rec.events.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (1, "status 503".to_owned(), secs(3.0), Duration::ZERO),
            (
                2,
                "timeout".to_owned(),
                secs(1.0),
                secs(3.0) + common::ATTEMPT_TIMEOUT
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn batch_events_count_the_items_resent() {
    let _logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::ok(), Step::error(2001)]);
    let counts = Arc::new(Mutex::new(Vec::new()));
    let seen = counts.clone();
    let strategy = periodic(2).codes([2001]).on_retry(move |e| {
        seen.lock()
            .unwrap()
            .push((e.method().to_owned(), e.id().cloned(), e.batch_len()));
    });
    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("sum", json!([1])).with_id(1),
        Request::new("sum", json!([2])).with_id(2),
    ]);
    stack(&server, strategy).oneshot(batch).await.unwrap();
    assert_eq!(
        *counts.lock().unwrap(),
        [(
            "sum".to_owned(),
            Some(tower_jsonrpc_retry::jsonrpc::Id::Number(2)),
            Some(1)
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn the_hook_tells_a_server_hint_from_the_backoff() {
    let _logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [Step::status(503).retry_after("4"), Step::status(503)],
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let strategy = periodic(3)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .on_retry(move |e| log.lock().unwrap().push((e.delay(), e.retry_after())));
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(secs(4.0), Some(secs(4.0))), (secs(1.0), None)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_preset_can_be_scaled_without_restating_it() {
    let _logs = Logs::capture();
    use tower_jsonrpc_retry::backoff::BackoffExt;
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005), Step::error(-32005)]);
    let rec = Recorder::default();
    let strategy = rec.attach(
        RetryStrategy::ethereum_rate_limits().map_backoff(|b| b.map(|_| Duration::from_millis(7))),
    );
    let start = tokio::time::Instant::now();
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(rec.delays(), [Duration::from_millis(7); 2]);
    assert_eq!(start.elapsed(), Duration::from_millis(14));
    assert!(!RetryStrategy::none().map_backoff(|b| b).can_retry());
}

#[tokio::test(start_paused = true)]
async fn a_seeded_preset_waits_the_same_on_every_run() {
    let server = FlakyServer::start().await.unwrap();
    let run = |strategy: RetryStrategy| {
        let server = &server;
        async move {
            server.script(
                "sum",
                [Step::status(503), Step::status(503), Step::status(503)],
            );
            let rec = Recorder::default();
            let _ = stack(server, rec.attach(strategy))
                .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
                .await;
            rec.delays()
        }
    };
    let first = run(RetryStrategy::transient_seeded(7)).await;
    assert_eq!(first.len(), 3);
    assert_eq!(run(RetryStrategy::transient_seeded(7)).await, first);
    assert_ne!(run(RetryStrategy::transient_seeded(8)).await, first);

    server.script("sum", [Step::error(-32005)]);
    let ethereum = |seed| {
        let rec = Recorder::default();
        let strategy = rec.attach(RetryStrategy::ethereum_rate_limits_seeded(seed));
        (rec, strategy)
    };
    let (rec, strategy) = ethereum(7);
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    server.script("sum", [Step::error(-32005)]);
    let (again, strategy) = ethereum(7);
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(rec.delays().len(), 1);
    assert_eq!(rec.delays(), again.delays());
}

/// The "not retrying" events of this thread.
fn give_ups(logs: &Logs) -> Vec<String> {
    logs.lines()
        .into_iter()
        .filter(|l| l.contains("not retrying"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_batch_gives_up_naming_the_call_that_failed() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    // `echo` fails for good at once; `sum` fails, is retried alone, then succeeds.
    server.script("echo", [Step::error(2002)]);
    server.script("sum", [Step::error(2001)]);
    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("echo", json!(["x"])).with_id(1),
        Request::new("sum", json!([1, 2])).with_id(2),
    ]);
    let resp = stack(&server, periodic(2).codes([2001]))
        .oneshot(batch)
        .await
        .unwrap();
    assert!(resp.items().first().is_some_and(|r| r.is_error()));
    let ends = give_ups(&logs);
    assert_eq!(ends.len(), 1, "{:#?}", logs.lines());
    let end = ends.first().unwrap();
    assert!(
        end.contains(r#"method="echo""#) && end.contains("id=1") && end.contains("batch_len=1"),
        "{end}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_retries_run_out_on_a_status_says_so() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    let answer = r#"[{"jsonrpc":"2.0","result":3,"id":1}]"#;
    server.script("sum", std::iter::repeat_n(Step::raw(503, answer), 3));
    let strategy = periodic(2).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
    ]);
    let _ = stack(&server, strategy).oneshot(batch).await;
    assert_eq!(server.calls("sum"), 3);
    let ends = give_ups(&logs);
    assert_eq!(ends.len(), 1, "{:#?}", logs.lines());
    assert!(
        ends.first().unwrap().contains("attempts exhausted"),
        "{ends:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_by_the_deadline_gives_up_on_the_deadline() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    // Answers after 150 ms (within the attempt timeout); the call's deadline is 50 ms,
    // and this strategy retries codes only.
    server.script("slow", [Step::ok().after(Duration::from_millis(150))]);
    let err = stack(&server, periodic(3).codes([2001]).max_elapsed(secs(0.05)))
        .oneshot(Request::new("slow", json!([])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(server.calls("slow"), 1);
    let ends = give_ups(&logs);
    assert_eq!(ends.len(), 1, "{:#?}", logs.lines());
    assert!(
        ends.first().unwrap().contains("reason=deadline"),
        "{ends:?}"
    );

    // The same for a batch.
    let logs = Logs::capture();
    server.script("slow", [Step::ok().after(Duration::from_millis(150))]);
    let batch = tower_jsonrpc_retry::jsonrpc::BatchRequest::new(vec![
        Request::new("slow", json!([])).with_id(1),
    ]);
    let _ = stack(&server, periodic(3).codes([2001]).max_elapsed(secs(0.05)))
        .oneshot(batch)
        .await
        .unwrap_err();
    let ends = give_ups(&logs);
    assert_eq!(ends.len(), 1, "{:#?}", logs.lines());
    assert!(
        ends.first().unwrap().contains("reason=deadline"),
        "{ends:?}"
    );
}

/// Over a service other than the codec, a failure of another kind that comes at the
/// deadline (before the layer's cut, a millisecond after it) is not retryable, not a
/// deadline.
#[tokio::test(start_paused = true)]
async fn a_slow_failure_of_another_kind_is_not_a_deadline() {
    use tower::Layer;
    use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, Response};
    use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer};

    let seen: Arc<Mutex<Vec<GiveUpReason>>> = Arc::default();
    let strategy = {
        let seen = Arc::clone(&seen);
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
            .retry_on(ErrorClass::Timeout)
            .max_elapsed(secs(1.0))
            .on_give_up(move |e: &GiveUpEvent<'_>| seen.lock().unwrap().push(e.reason()))
    };
    let refused = || -> BoxError { "invalid params: the server refused the call".into() };
    let single = tower::service_fn(move |_: Request| async move {
        tokio::time::sleep(secs(1.0)).await;
        Err::<Response, BoxError>(refused())
    });
    let err = JsonRpcRetryLayer::new(strategy.clone())
        .layer(single)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid params: the server refused the call"
    );
    let batch = tower::service_fn(move |_: BatchRequest| async move {
        tokio::time::sleep(secs(1.0)).await;
        Err::<BatchResponse, BoxError>(refused())
    });
    JsonRpcRetryLayer::new(strategy)
        .layer(batch)
        .oneshot(BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
        ]))
        .await
        .unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        [GiveUpReason::NotRetryable, GiveUpReason::NotRetryable]
    );
}

/// At the HTTP level, a body whose answer could not be matched to each call is sent
/// once, as it came, whatever the strategy says; a debug event says why. A call the
/// layer can read is retried, with no such event.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_http_level_says_why_a_body_went_once() {
    use bytes::Bytes;
    use http_body_util::Full;
    use tower_jsonrpc_retry::JsonRpcRetryLayer;

    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            periodic(2).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE)),
        ))
        .service(common::http());
    let post = |body: &'static str| {
        http::Request::post(server.uri())
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let went_once = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("not a JSON-RPC message the layer can retry"))
            .cloned()
            .collect::<Vec<_>>()
    };

    for (body, why) in [
        (
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1.5}"#,
            "why=invalid id",
        ),
        (
            r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},
                {"jsonrpc":"2.0","method":"sum","params":[3,4],"id":1}]"#,
            "why=two calls of the batch have the id 1",
        ),
        (
            r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}, 5]"#,
            "why=message is not a JSON object",
        ),
        ("[]", "why=an empty batch"),
    ] {
        server.reset();
        server.script("sum", [Step::status(503), Step::ok()]);
        let before = logs.lines().len();
        let resp = svc.clone().oneshot(post(body)).await.unwrap();
        assert_eq!(server.http_requests(), 1, "{body}");
        let lines = logs.lines().split_off(before);
        let once = went_once(&lines);
        assert_eq!(once.len(), 1, "{lines:#?}");
        assert!(once[0].contains(why), "{}", once[0]);
        if body != "[]" {
            assert_eq!(resp.status(), 503, "{body}");
        }
    }

    server.reset();
    server.script("sum", [Step::status(503), Step::ok()]);
    let before = logs.lines().len();
    let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    let resp = svc.clone().oneshot(post(body)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.http_requests(), 2);
    assert_eq!(
        went_once(&logs.lines().split_off(before)),
        Vec::<String>::new()
    );

    // The event quotes nothing the caller wrote in an invalid id or version.
    for body in [
        r#"{"jsonrpc":"2.0","method":"sum","params":[],"id":{"api_key":"SECRETPW"}}"#,
        r#"{"jsonrpc":"SECRETPW","method":"sum","params":[],"id":1}"#,
    ] {
        let before = logs.lines().len();
        svc.clone().oneshot(post(body)).await.unwrap();
        let once = went_once(&logs.lines().split_off(before));
        assert_eq!(once.len(), 1, "{body}");
        assert!(!once[0].contains("SECRETPW"), "{}", once[0]);
    }

    // A strategy that can never retry watches nothing: no event.
    let none = tower::ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            tower_jsonrpc_retry::RetryStrategy::none(),
        ))
        .service(common::http());
    let before = logs.lines().len();
    none.oneshot(post("[]")).await.unwrap();
    assert_eq!(
        went_once(&logs.lines().split_off(before)),
        Vec::<String>::new()
    );
}

/// A transport failure's retry event has its class, as the give-up event does; and a
/// batch's retry event names the same call as its give-up event: the first call, not a
/// notification before it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_batch_retry_names_its_first_call_with_the_failures_class() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;

    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 2));
    let batch = BatchRequest::new(vec![
        Request::new("note", json!([])),
        Request::new("sum", json!([1, 2])).with_id(5),
    ]);
    let strategy = periodic(1).retry_on(ErrorClass::Timeout);
    let err = stack(&server, strategy).oneshot(batch).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let lines = logs.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(line.contains("method=\"sum\""), "{line}");
        assert!(line.contains("id=5"), "{line}");
        assert!(line.contains("class=timeout"), "{line}");
    }
    assert!(
        lines[0].contains("retrying JSON-RPC request"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("not retrying JSON-RPC request"),
        "{}",
        lines[1]
    );
}

/// The events carry what a log reader needs to act on a failure: the server's error
/// message for an error answer, and the error with its sources for a transport failure
/// (the fmt subscriber prints `error.sources`), not only its code or class.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_events_say_what_the_server_or_the_transport_said() {
    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    server.handle("busy", |_| Err((2001, "node is syncing".to_owned())));
    stack(&server, periodic(1).codes([2001]))
        .oneshot(Request::new("busy", json!([])).with_id(1))
        .await
        .unwrap();
    let lines = logs.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(line.contains("error_message=\"node is syncing\""), "{line}");
        assert!(!line.contains(" error="), "{line}");
    }

    // A hostile server's megabyte message is cut, as `Display` cuts it.
    server.handle("long", |_| Err((2001, "m".repeat(100_000))));
    let before = logs.lines().len();
    stack(&server, periodic(1).codes([2001]))
        .oneshot(Request::new("long", json!([])).with_id(1))
        .await
        .unwrap();
    for line in logs.lines().split_off(before) {
        let shown = line.split("error_message=\"").nth(1).unwrap();
        let kept = shown.chars().take_while(|&c| c == 'm').count();
        assert_eq!(kept, 1024, "{line:.300}");
    }

    let (_held, refusing) = common::refusing();
    let uri = format!("http://{refusing}/").parse().unwrap();
    let before = logs.lines().len();
    let err = common::stack_to(uri, periodic(1).retry_on(ErrorClass::Connect))
        .oneshot(Request::new("sum", json!([1, 2])).with_id(2))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let lines = logs.lines().split_off(before);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(line.contains(" error="), "{line}");
        assert!(line.contains("error.sources="), "{line}");
        assert!(line.contains("onnection refused"), "{line}");
        assert!(!line.contains("error_message="), "{line}");
    }
}

/// What give-up events told: why the retries ended, and the server's last wait hint.
type Heard = Arc<Mutex<Vec<(GiveUpReason, Option<Duration>)>>>;

/// `strategy` with a give-up hook that records what each event told.
fn hearing_give_ups(strategy: RetryStrategy) -> (RetryStrategy, Heard) {
    let heard = Heard::default();
    let hook = heard.clone();
    let strategy = strategy.on_give_up(move |e: &GiveUpEvent<'_>| {
        hook.lock().unwrap().push((e.reason(), e.retry_after()));
    });
    (strategy, heard)
}

/// The give-up event tells the server's last wait hint: when it is what would have
/// passed the deadline, the hook and the log can say so.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_give_up_event_tells_the_servers_last_hint() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;

    let logs = Logs::capture();
    let server = FlakyServer::start().await.unwrap();
    let (strategy, heard) = hearing_give_ups(
        periodic(3)
            .codes([2001])
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
            .max_elapsed(secs(5.0)),
    );

    server.script("sum", [Step::status(503).retry_after("10")]);
    stack(&server, strategy.clone())
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    let hinted = || Some(json!({"backoff_seconds": 8}));
    server.script(
        "sum",
        [Step::ok(), Step::error_with(2001, "busy", hinted())],
    );
    stack(&server, strategy.clone())
        .oneshot(BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("sum", json!([3, 4])).with_id(2),
        ]))
        .await
        .unwrap();
    server.script("sum", std::iter::repeat_n(Step::error(2001), 4));
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(3))
        .await
        .unwrap();

    assert_eq!(
        *heard.lock().unwrap(),
        [
            (GiveUpReason::Deadline, Some(secs(10.0))),
            (GiveUpReason::Deadline, Some(secs(8.0))),
            (GiveUpReason::Exhausted, None),
        ]
    );
    let lines = give_ups(&logs);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("retry_after_ms=10000"), "{}", lines[0]);
    assert!(lines[1].contains("retry_after_ms=8000"), "{}", lines[1]);
    assert!(!lines[2].contains("retry_after_ms"), "{}", lines[2]);
}

/// A held-back answer's hint (a rule retries it, its method is non-idempotent) is told
/// on the give-up, in a batch as alone; beside a call that is retried, it lengthens no
/// wait, since that call is not sent again.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_held_back_answers_hint_is_told_in_a_batch_as_alone() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;

    let server = FlakyServer::start().await.unwrap();
    let (strategy, heard) = hearing_give_ups(periodic(3).codes([2001]).non_idempotent(["write"]));
    let busy = || Step::error_with(2001, "busy", Some(json!({"backoff_seconds": 8})));
    let write = |id: i64| Request::new("write", json!([])).with_id(id);

    server.script("write", [busy(), busy(), busy()]);
    stack(&server, strategy.clone())
        .oneshot(write(1))
        .await
        .unwrap();
    stack(&server, strategy.clone())
        .oneshot(BatchRequest::new(vec![
            write(2),
            Request::new("sum", json!([1, 2])).with_id(3),
        ]))
        .await
        .unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [
            (GiveUpReason::NotIdempotent, Some(secs(8.0))),
            (GiveUpReason::NotIdempotent, Some(secs(8.0))),
        ]
    );

    // Beside it, a call retried for a code without a hint waits the backoff's second.
    server.script("sum", [Step::error(2001)]);
    let start = tokio::time::Instant::now();
    let answers = stack(&server, strategy)
        .oneshot(BatchRequest::new(vec![
            write(4),
            Request::new("sum", json!([1, 2])).with_id(5),
        ]))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(1.0));
    assert_eq!(answers.items()[1].result(), Some(&json!(3)));
    assert_eq!(server.calls("write"), 3, "never sent again");
}

/// The same at the HTTP level: the held-back answer's hint is told on the give-up, and
/// lengthens no wait of a call retried beside it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_held_back_answers_hint_is_told_at_the_http_level_too() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tower::Layer;
    use tower_jsonrpc_retry::JsonRpcRetryLayer;

    let server = FlakyServer::start().await.unwrap();
    let (strategy, heard) = hearing_give_ups(periodic(3).codes([2001]).non_idempotent(["write"]));
    let busy = || Step::error_with(2001, "busy", Some(json!({"backoff_seconds": 8})));
    server.script("write", [busy(), busy()]);
    let batch = |first: i64| {
        let body = json!([
            {"jsonrpc": "2.0", "method": "write", "params": [], "id": first},
            {"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": first + 1},
        ]);
        http::Request::post(server.uri())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(common::http());

    svc.clone().oneshot(batch(1)).await.unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [(GiveUpReason::NotIdempotent, Some(secs(8.0)))]
    );

    server.script("sum", [Step::error(2001)]);
    let start = tokio::time::Instant::now();
    let answer = svc.oneshot(batch(3)).await.unwrap();
    assert_eq!(start.elapsed(), secs(1.0));
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let items: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sum = items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == 4)
        .unwrap();
    assert_eq!(sum["result"], 3, "{items}");
    assert_eq!(server.calls("write"), 2, "never sent again");
}

/// A layer given a strategy that waits for delays yet retries nothing warns of it once,
/// when made, at both levels; not for a strategy with a rule, one that never retries
/// (`none()`), or one whose methods have strategies of their own.
#[test]
fn a_strategy_that_retries_nothing_is_warned_of_when_a_layer_is_made() {
    use tower_jsonrpc_retry::JsonRpcRetryLayer;
    let logs = Logs::capture();
    let _ = JsonRpcRetryLayer::new(periodic(3));
    let _ = JsonRpcRetryLayer::http::<http_body_util::Full<bytes::Bytes>>(periodic(3));
    let lines = logs.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for line in &lines {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("nothing to retry on"), "{line}");
    }
    let logs = Logs::capture();
    let _ = JsonRpcRetryLayer::new(periodic(3).codes([-32005]));
    let _ = JsonRpcRetryLayer::new(periodic(3).retry_on(ErrorClass::Timeout));
    let _ = JsonRpcRetryLayer::new(RetryStrategy::none());
    let _ = JsonRpcRetryLayer::new(periodic(3).for_method("sum", periodic(1).codes([1])));
    assert_eq!(logs.lines(), Vec::<String>::new());
}
