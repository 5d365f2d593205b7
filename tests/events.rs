//! What the operator is told, field by field: the `tracing` events (their level, target,
//! fields and the caller's span around them) and the hooks' events, at both levels and
//! through the typed client.
// The events are the `tracing` feature's; with it off there are none to read.
#![cfg(feature = "tracing")]

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use common::stack;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    Client, ErrorClass, GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

/// One `tracing` event: level, target, message, fields, and the names of the spans it
/// was emitted in (outermost first).
#[derive(Clone, Debug)]
struct Traced {
    level: tracing::Level,
    target: String,
    message: String,
    fields: BTreeMap<String, String>,
    spans: Vec<String>,
}

thread_local! {
    static TRACED: RefCell<Vec<Traced>> = const { RefCell::new(Vec::new()) };
}

struct Fields(BTreeMap<String, String>, String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.1 = format!("{value:?}");
        } else {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.1 = value.to_owned();
        } else {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }
}

struct Record;

impl<S> tracing_subscriber::Layer<S> for Record
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("tower_jsonrpc_retry") {
            return;
        }
        let mut fields = Fields(BTreeMap::new(), String::new());
        event.record(&mut fields);
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
            .unwrap_or_default();
        TRACED.with(|t| {
            t.borrow_mut().push(Traced {
                level: *meta.level(),
                target: meta.target().to_owned(),
                message: fields.1,
                fields: fields.0,
                spans,
            })
        });
    }
}

/// Starts recording this thread's events (one global subscriber for the binary, each
/// test on its own current-thread runtime reads its own thread's events).
fn record() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Record);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    TRACED.with(|t| t.borrow_mut().clear());
}

fn traced() -> Vec<Traced> {
    TRACED.with(|t| t.borrow().clone())
}

/// What a retry hook saw: (method, id, batch_len, retry, reason, delay, retry_after).
type Retried = (
    String,
    Option<String>,
    Option<usize>,
    u32,
    String,
    Duration,
    Option<Duration>,
);
/// What a give-up hook saw: (method, id, batch_len, retries, reason, code, status).
type GaveUp = (
    String,
    Option<String>,
    Option<usize>,
    u32,
    GiveUpReason,
    Option<i64>,
    Option<u16>,
);

#[derive(Clone, Default)]
struct Hooks {
    retries: Arc<Mutex<Vec<Retried>>>,
    give_ups: Arc<Mutex<Vec<GaveUp>>>,
}

impl Hooks {
    fn attach(&self, strategy: RetryStrategy) -> RetryStrategy {
        let (r, g) = (self.retries.clone(), self.give_ups.clone());
        strategy
            .on_retry(move |e: &RetryEvent<'_>| {
                r.lock().unwrap().push((
                    e.method().to_owned(),
                    e.id().map(ToString::to_string),
                    e.batch_len(),
                    e.retry(),
                    e.reason().to_string(),
                    e.delay(),
                    e.retry_after(),
                ))
            })
            .on_give_up(move |e: &GiveUpEvent<'_>| {
                g.lock().unwrap().push((
                    e.method().to_owned(),
                    e.id().map(ToString::to_string),
                    e.batch_len(),
                    e.retries(),
                    e.reason(),
                    e.code(),
                    e.status().map(|s| s.as_u16()),
                ))
            })
    }
    fn retries(&self) -> Vec<Retried> {
        self.retries.lock().unwrap().clone()
    }
    fn give_ups(&self) -> Vec<GaveUp> {
        self.give_ups.lock().unwrap().clone()
    }
}

fn periodic(attempts: usize, ms: u64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, Duration::from_millis(ms)))
}

fn http_post(body: &str) -> http::Request<Full<Bytes>> {
    http::Request::post("/")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// The HTTP-level layer over hyper-util, sending to `server` (the URI set on each request).
async fn http_call(
    server: &FlakyServer,
    strategy: RetryStrategy,
    body: &str,
) -> http::Response<Full<Bytes>> {
    let client: HttpClient = common::http();
    let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(client);
    let mut req = http_post(body);
    *req.uri_mut() = server.uri();
    svc.oneshot(req).await.unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn codec_level_events_are_debug_in_the_callers_span() {
    record();
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [Step::error(2001), Step::error(2001), Step::error(2001)],
    );
    let hooks = Hooks::default();
    let resp = stack(&server, hooks.attach(periodic(2, 100).codes([2001])))
        .oneshot(Request::new("sum", json!([1, 2])).with_id(7))
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();
    assert!(resp.is_error());
    let events = traced();
    assert_eq!(events.len(), 3, "{events:#?}");
    for (e, retry) in events.iter().take(2).zip(1..) {
        assert_eq!(e.level, tracing::Level::DEBUG);
        assert_eq!(e.target, "tower_jsonrpc_retry");
        assert_eq!(e.message, "retrying JSON-RPC request");
        assert_eq!(e.spans, ["caller"], "{e:?}");
        assert_eq!(e.fields["method"], "sum");
        assert_eq!(e.fields["id"], "7");
        assert_eq!(e.fields["retry"], retry.to_string());
        assert_eq!(e.fields["reason"], "code 2001");
        assert_eq!(e.fields["delay_ms"], "100");
        assert!(!e.fields.contains_key("batch_len"), "{e:?}");
    }
    let last = &events[2];
    assert_eq!(last.level, tracing::Level::DEBUG);
    assert_eq!(last.message, "not retrying JSON-RPC request");
    assert_eq!(last.spans, ["caller"]);
    assert_eq!(last.fields["retries"], "2");
    assert_eq!(last.fields["reason"], "attempts exhausted");
    assert_eq!(last.fields["code"], "2001");
    assert!(!last.fields.contains_key("status"), "{last:?}");
    assert_eq!(
        hooks.give_ups(),
        [(
            "sum".to_owned(),
            Some("7".to_owned()),
            None,
            2,
            GiveUpReason::Exhausted,
            Some(2001),
            None
        )]
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn http_level_events_are_in_the_callers_span_with_the_same_fields() {
    record();
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [
            Step::status(503).retry_after("2"),
            Step::error(2001),
            Step::error(2001),
        ],
    );
    let hooks = Hooks::default();
    let strategy = hooks.attach(
        periodic(2, 100)
            .codes([2001])
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE)),
    );
    let start = Instant::now();
    let resp = http_call(
        &server,
        strategy,
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"x"}"#,
    )
    .instrument(tracing::info_span!("caller"))
    .await;
    assert_eq!(start.elapsed(), Duration::from_millis(2100));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("2001"));
    assert_eq!(
        hooks.retries(),
        [
            (
                "sum".to_owned(),
                Some("\"x\"".to_owned()),
                None,
                1,
                "status 503".to_owned(),
                Duration::from_secs(2),
                Some(Duration::from_secs(2))
            ),
            (
                "sum".to_owned(),
                Some("\"x\"".to_owned()),
                None,
                2,
                "code 2001".to_owned(),
                Duration::from_millis(100),
                None
            ),
        ]
    );
    assert_eq!(
        hooks.give_ups(),
        [(
            "sum".to_owned(),
            Some("\"x\"".to_owned()),
            None,
            2,
            GiveUpReason::Exhausted,
            Some(2001),
            None
        )]
    );
    let events = traced();
    assert_eq!(events.len(), 3, "{events:#?}");
    for e in &events {
        assert_eq!(e.level, tracing::Level::DEBUG);
        assert_eq!(e.spans, ["caller"], "{e:?}");
    }
    assert_eq!(events[0].fields["retry_after_ms"], "2000");
    assert_eq!(events[0].fields["delay_ms"], "2000");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn client_events_are_in_the_callers_span() {
    record();
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(2001)]);
    let hooks = Hooks::default();
    let client = Client::builder(server.uri())
        .retry(hooks.attach(periodic(2, 100).codes([2001])))
        .build();
    let sum: i64 = client
        .call("sum", (1, 2))
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();
    assert_eq!(sum, 3);
    assert_eq!(hooks.retries().len(), 1);
    assert_eq!(hooks.give_ups(), []);
    let events = traced();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].spans, ["caller"]);
    assert_eq!(events[0].fields["id"], "1");
}

/// The delay reported is the wait made, jitter and all.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_delay_reported_is_the_wait_made() {
    use tower_jsonrpc_retry::backoff::{BackoffExt, ExponentialBackoff, Jitter};
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = sent.clone();
    let svc = tower::service_fn(move |req: Request| {
        seen.lock().unwrap().push(Instant::now());
        let id = req.id().cloned().unwrap();
        async move {
            Ok::<_, std::io::Error>(tower_jsonrpc_retry::jsonrpc::Response::failure(
                id,
                tower_jsonrpc_retry::jsonrpc::ErrorObject::new(2001, "busy"),
            ))
        }
    });
    let hooks = Hooks::default();
    let strategy = hooks.attach(
        RetryStrategy::new(
            ExponentialBackoff::doubling(5, Duration::from_millis(100))
                .jitter(Jitter::full().seeded(7)),
        )
        .codes([2001]),
    );
    JsonRpcRetryLayer::new(strategy)
        .layer(svc)
        .oneshot(Request::new("m", json!([])).with_id(1))
        .await
        .unwrap();
    let sent = sent.lock().unwrap().clone();
    let waits: Vec<Duration> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    let delays: Vec<Duration> = hooks.retries().iter().map(|r| r.5).collect();
    assert_eq!(delays.len(), 5);
    // tokio's timer fires on whole milliseconds: the wait is the delay rounded up.
    for (wait, delay) in waits.iter().zip(&delays) {
        assert!(
            *wait >= *delay && *wait - *delay < Duration::from_millis(1),
            "{waits:?} {delays:?}"
        );
    }
}

/// A hint over the ceiling: the delay is the ceiling, the hint is reported as given.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hint_over_the_ceiling_is_reported_and_the_ceiling_waited() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(429).retry_after("100")]);
    let hooks = Hooks::default();
    let strategy = hooks.attach(
        periodic(2, 100)
            .retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS))
            .retry_after_ceiling(Duration::from_secs(2)),
    );
    let start = Instant::now();
    stack(&server, strategy)
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let r = hooks.retries();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].5, Duration::from_secs(2));
    assert_eq!(r[0].6, Some(Duration::from_secs(100)));
}

/// A batch: each retry names the first call re-sent and counts those re-sent; the
/// give-up names the call that failed last, and its code.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn batch_events_at_both_levels() {
    for http_level in [false, true] {
        let server = FlakyServer::start().await.unwrap();
        server.handle("ok", |_| Ok(json!(1)));
        server.handle("busy", |_| Err((2001, "busy".to_owned())));
        server.script("late", [Step::error(2001)]);
        let hooks = Hooks::default();
        let strategy = hooks.attach(periodic(2, 100).codes([2001]));
        if http_level {
            http_call(
                &server,
                strategy,
                r#"[{"jsonrpc":"2.0","method":"ok","id":1},{"jsonrpc":"2.0","method":"late","id":2},{"jsonrpc":"2.0","method":"busy","id":3}]"#,
            )
            .await;
        } else {
            let batch = BatchRequest::new(vec![
                Request::new("ok", json!([])).with_id(1),
                Request::new("late", json!([])).with_id(2),
                Request::new("busy", json!([])).with_id(3),
            ]);
            stack(&server, strategy).oneshot(batch).await.unwrap();
        }
        let retried: Vec<_> = hooks
            .retries()
            .into_iter()
            .map(|r| (r.0, r.1, r.2, r.3))
            .collect();
        assert_eq!(
            retried,
            [
                ("late".to_owned(), Some("2".to_owned()), Some(2), 1),
                ("busy".to_owned(), Some("3".to_owned()), Some(1), 2),
            ],
            "http level: {http_level}"
        );
        assert_eq!(
            hooks.give_ups(),
            [(
                "busy".to_owned(),
                Some("3".to_owned()),
                Some(1),
                2,
                GiveUpReason::Exhausted,
                Some(2001),
                None
            )],
            "http level: {http_level}"
        );
    }
}

/// What each retry's event says failed: the answer's error object (its message too),
/// its failure status, or the error and its class; the give-up's error object; the
/// `tracing` fields `code` and `status`. At both levels, for a call and a batch.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retry_events_say_what_failed() {
    type Seen = (
        Option<i64>,
        Option<String>,
        Option<u16>,
        Option<String>,
        bool,
    );
    fn seen(
        object: Option<&tower_jsonrpc_retry::jsonrpc::ErrorObject>,
        status: Option<http::StatusCode>,
        class: Option<ErrorClass>,
        error: bool,
    ) -> Seen {
        (
            object.map(|o| o.code()),
            object.map(|o| o.message().to_owned()),
            status.map(|s| s.as_u16()),
            class.map(|c| c.to_string()),
            error,
        )
    }
    for http_level in [false, true] {
        record();
        let server = FlakyServer::start().await.unwrap();
        server.script(
            "sum",
            [
                Step::error_with(2001, "node is syncing", None),
                Step::status_with_error(429, -32005),
                Step::status(503),
                Step::drop_connection(),
                Step::error_with(2001, "still syncing", None),
            ],
        );
        let (retried, gave_up) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(None)));
        let (r, g) = (retried.clone(), gave_up.clone());
        let strategy = periodic(4, 100)
            .codes([2001, -32005])
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
            .retry_on(ErrorClass::Reset)
            .on_retry(move |e: &RetryEvent<'_>| {
                let seen = seen(e.error_object(), e.status(), e.class(), e.error().is_some());
                assert_eq!(e.code(), seen.0);
                r.lock().unwrap().push(seen);
            })
            .on_give_up(move |e: &GiveUpEvent<'_>| {
                *g.lock().unwrap() = e.error_object().map(|o| o.message().to_owned());
            });
        let body = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
        if http_level {
            http_call(&server, strategy.clone(), body).await;
        } else {
            let call = Request::new("sum", json!([1, 2])).with_id(1);
            stack(&server, strategy.clone())
                .oneshot(call)
                .await
                .unwrap();
        }
        let syncing = Some("node is syncing".to_owned());
        let limited = Some("Server error".to_owned());
        assert_eq!(
            *retried.lock().unwrap(),
            [
                (Some(2001), syncing, None, None, false),
                (Some(-32005), limited, Some(429), None, false),
                (None, None, Some(503), Some("status 503".to_owned()), true),
                (None, None, None, Some("reset".to_owned()), true),
            ],
            "http level: {http_level}"
        );
        assert_eq!(*gave_up.lock().unwrap(), Some("still syncing".to_owned()));
        let fields: Vec<_> = traced()
            .into_iter()
            .filter(|e| e.message == "retrying JSON-RPC request")
            .map(|e| {
                (
                    e.fields.get("code").cloned(),
                    e.fields.get("status").cloned(),
                )
            })
            .collect();
        let text = |s: &str| Some(s.to_owned());
        assert_eq!(
            fields,
            [
                (text("2001"), None),
                (text("-32005"), text("429")),
                (None, text("503")),
                (None, None),
            ],
            "http level: {http_level}"
        );

        // A batch: the first call re-sent's answer.
        retried.lock().unwrap().clear();
        server.handle("ok", |_| Ok(json!(1)));
        server.script("late", [Step::error_with(2001, "late", None)]);
        let batch =
            r#"[{"jsonrpc":"2.0","method":"ok","id":1},{"jsonrpc":"2.0","method":"late","id":2}]"#;
        if http_level {
            http_call(&server, strategy, batch).await;
        } else {
            let batch = BatchRequest::new(vec![
                Request::new("ok", json!([])).with_id(1),
                Request::new("late", json!([])).with_id(2),
            ]);
            stack(&server, strategy).oneshot(batch).await.unwrap();
        }
        assert_eq!(
            *retried.lock().unwrap(),
            [(Some(2001), Some("late".to_owned()), None, None, false)],
            "http level: {http_level}"
        );
    }
}

/// A batch of notifications only, refused as a whole (a null-id error under 503): the
/// retry's event and the give-up's carry the refusal and its status, at both levels.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn events_of_a_refused_batch_of_notifications_carry_the_refusal() {
    for http_level in [false, true] {
        let server = FlakyServer::start().await.unwrap();
        // Each notification of a batch takes a step: two attempts of two.
        server.script(
            "log",
            std::iter::repeat_n(Step::status_with_error(503, -32005), 4),
        );
        type Seen = (Option<i64>, Option<u16>);
        let (retried, gave_up) = (
            Arc::new(Mutex::new(Vec::<Seen>::new())),
            Arc::new(Mutex::new(Vec::<Seen>::new())),
        );
        let (r, g) = (retried.clone(), gave_up.clone());
        let strategy = periodic(1, 100)
            .codes([-32005])
            .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
            .on_retry(move |e: &RetryEvent<'_>| {
                let seen = (
                    e.error_object().map(|o| o.code()),
                    e.status().map(|s| s.as_u16()),
                );
                r.lock().unwrap().push(seen);
            })
            .on_give_up(move |e: &GiveUpEvent<'_>| {
                let seen = (
                    e.error_object().map(|o| o.code()),
                    e.status().map(|s| s.as_u16()),
                );
                g.lock().unwrap().push(seen);
            });
        if http_level {
            let body = r#"[{"jsonrpc":"2.0","method":"log","params":["a"]},{"jsonrpc":"2.0","method":"log","params":["b"]}]"#;
            http_call(&server, strategy, body).await;
        } else {
            let batch = BatchRequest::new(vec![
                Request::new("log", json!(["a"])),
                Request::new("log", json!(["b"])),
            ]);
            stack(&server, strategy).oneshot(batch).await.unwrap();
        }
        let refusal = (Some(-32005), Some(503));
        assert_eq!(
            *retried.lock().unwrap(),
            [refusal],
            "http level: {http_level}"
        );
        assert_eq!(
            *gave_up.lock().unwrap(),
            [refusal],
            "http level: {http_level}"
        );
    }
}

/// No event for a success, none for a strategy that cannot retry.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn no_event_for_a_success_or_a_strategy_that_cannot_retry() {
    record();
    let server = FlakyServer::start().await.unwrap();
    server.handle("busy", |_| Err((2001, "busy".to_owned())));
    let hooks = Hooks::default();
    // A strategy that can retry, on a call that succeeds: no event.
    stack(&server, hooks.attach(periodic(2, 100).codes([2001])))
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    // Delays but nothing to retry on (`can_retry` is false), on a call that fails: none.
    let none = hooks.attach(RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)));
    stack(&server, none.clone())
        .oneshot(Request::new("busy", json!([])).with_id(2))
        .await
        .unwrap();
    http_call(
        &server,
        none,
        r#"{"jsonrpc":"2.0","method":"busy","params":[],"id":3}"#,
    )
    .await;
    assert_eq!(hooks.retries(), []);
    assert_eq!(hooks.give_ups(), []);
    // Only the warning each layer gives when made with the strategy that retries
    // nothing (at both levels): no event of a call.
    let traced = traced();
    assert_eq!(traced.len(), 2, "{traced:#?}");
    assert!(
        traced
            .iter()
            .all(|t| t.level == tracing::Level::WARN && t.message.contains("nothing to retry on")),
        "{traced:#?}"
    );
}

/// Every message of an error's `source()` chain, outermost first.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(err), |e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// A codec over an in-memory server that answers every request with `body` (200).
fn answering(
    body: String,
) -> tower_jsonrpc_retry::codec::JsonRpcCodec<
    impl tower::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<Full<Bytes>>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone,
> {
    let body = Bytes::from(body);
    tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(http::Uri::from_static("http://127.0.0.1/"))
        .layer(tower::service_fn(move |_: http::Request<Full<Bytes>>| {
            let body = body.clone();
            async move { Ok::<_, std::io::Error>(http::Response::new(Full::new(body))) }
        }))
}

/// An error message quotes what the server sent (an id, a version) only in part: a
/// server that answers with a megabyte id must not make a megabyte log line.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn messages_quote_a_servers_values_in_part() {
    let huge = "x".repeat(1 << 20);
    let answers = [
        (
            format!(r#"{{"jsonrpc":"2.0","id":"{huge}","result":1}}"#),
            "response id \"xxx",
        ),
        (
            format!(r#"{{"jsonrpc":"{huge}","id":1,"result":1}}"#),
            "unsupported \"jsonrpc\" version \"xxx",
        ),
        (
            format!(r#"{{"jsonrpc":"2.0","id":["{huge}"],"result":1}}"#),
            "invalid id [\"xxx",
        ),
    ];
    for (body, starts) in answers {
        let client = Client::new(answering(body));
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        let messages = chain(&err);
        let said = messages.last().unwrap();
        assert!(said.starts_with(starts), "{:.200}", said);
        assert!(
            said.len() < 300,
            "a message of {} bytes: {:.200}",
            said.len(),
            said
        );
    }

    // A batch answered for none of its calls but one: the ids are the caller's, but
    // there may be a hundred thousand of them.
    let batch = BatchRequest::new(
        (0..100_000)
            .map(|i| Request::new("sum", json!([])).with_id(i))
            .collect(),
    );
    let err = answering(r#"[{"jsonrpc":"2.0","id":0,"result":3}]"#.to_owned())
        .oneshot(batch)
        .await
        .unwrap_err();
    let messages = chain(&err);
    let said = messages.last().unwrap();
    assert!(
        said.starts_with("batch response misses ids 1 2 3"),
        "{:.200}",
        said
    );
    assert!(said.contains("99999 in all"), "{:.200}", said);
    assert!(
        said.len() < 300,
        "a message of {} bytes: {:.200}",
        said.len(),
        said
    );
}

/// Give-ups counted by cause, as a metrics hook would: the class of a transport
/// failure (connect, timeout, reset), the code of an error answer, the status of a
/// failure status, and the error itself for anything else. Without `class`, a timeout,
/// a refused connection and an unreadable answer were one label: "no code, no status".
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn give_ups_can_be_labelled_by_cause() {
    record();
    let labels: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = labels.clone();
    let strategy = periodic(1, 10)
        .codes([2001])
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Connect)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            let label = match (e.class(), e.code()) {
                (Some(class), _) => class.to_string(),
                (None, Some(code)) => format!("code {code}"),
                (None, None) => {
                    let err = e.error().expect("neither an answer nor a class: an error");
                    let codec = err
                        .downcast_ref::<tower_jsonrpc_retry::codec::Error>()
                        .expect("the codec's error");
                    assert!(codec.is_decode(), "{codec:?}");
                    "decode".to_owned()
                }
            };
            seen.lock().unwrap().push(label);
        });
    let server = FlakyServer::start().await.unwrap();
    let svc = stack(&server, strategy.clone());
    let sum = || Request::new("sum", json!([1, 2])).with_id(1);
    for steps in [
        [Step::timeout(), Step::timeout()],
        [Step::drop_connection(), Step::drop_connection()],
        [Step::status(503), Step::status(503)],
        [Step::error(2001), Step::error(2001)],
        [Step::malformed(), Step::ok()],
    ] {
        server.script("sum", steps);
        let _ = svc.clone().oneshot(sum()).await;
    }
    // Nothing listens there: refused.
    let (_held, refusing) = common::refusing();
    let uri: http::Uri = format!("http://{refusing}/").parse().unwrap();
    let _ = common::stack_to(uri.clone(), strategy.clone())
        .oneshot(sum())
        .await;
    // The same at the HTTP level.
    let http_level = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(common::http());
    let mut req = http_post(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#);
    *req.uri_mut() = uri;
    let _ = http_level.oneshot(req).await;
    assert_eq!(
        *labels.lock().unwrap(),
        [
            "timeout",
            "reset",
            "status 503",
            "code 2001",
            "decode",
            "connect",
            "connect"
        ]
    );
    // The log line says it too.
    let classes: Vec<Option<String>> = traced()
        .into_iter()
        .filter(|e| e.message == "not retrying JSON-RPC request")
        .map(|e| e.fields.get("class").cloned())
        .collect();
    assert_eq!(
        classes,
        [
            Some("timeout"),
            Some("reset"),
            Some("status 503"),
            None,
            None,
            Some("connect"),
            Some("connect")
        ]
        .map(|c| c.map(str::to_owned))
    );
}

/// At the HTTP level, a body over a limit says which body and which limit: the
/// caller's request, or a server's answer that is not JSON-RPC (as one that is says
/// already). Both said "length limit exceeded".
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn http_level_limits_say_which_body() {
    let inner = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from(vec![b'x'; 64]))))
    });
    let call = |layer: tower_jsonrpc_retry::retry::HttpRetryLayer<Full<Bytes>>, body: &str| {
        layer.layer(inner).oneshot(http_post(body))
    };
    let limits = || JsonRpcRetryLayer::http::<Full<Bytes>>(periodic(1, 10).codes([2001]));
    let is_limit = |err: &tower_jsonrpc_retry::BoxError| {
        std::iter::successors(Some(&**err as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .any(|e| e.is::<http_body_util::LengthLimitError>())
    };

    let err = call(
        limits().request_limit(10),
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "request body larger than the limit of 10 bytes"
    );
    assert!(is_limit(&err), "{err:?}");

    let err = call(limits().response_limit(10), "not JSON-RPC")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 10 bytes"
    );
    assert!(is_limit(&err), "{err:?}");

    let err = call(
        limits().response_limit(10),
        r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 10 bytes"
    );
}

/// A body that fails at once.
struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        ))))
    }
}

/// A timeout or a broken body after a failure status says the status too: it is kept
/// (`status()`, and the rules on it decide), and the log line of `{err}` should not
/// hide that the server had answered 503.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_error_after_a_failure_status_says_the_status() {
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    let uri = http::Uri::from_static("http://127.0.0.1/");
    let call = || Request::new("sum", json!([1, 2])).with_id(1);

    let stalled = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        let mut resp = http::Response::new(common::TestBody::PartThenStall(Some(
            Bytes::from_static(b"{\"jsonrpc\""),
        )));
        *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, std::io::Error>(resp)
    });
    let err = JsonRpcCodecLayer::new(uri.clone())
        .attempt_timeout(Duration::from_secs(1))
        .layer(stalled)
        .oneshot(call())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        err.to_string(),
        "JSON-RPC exchange timed out (HTTP status 503 Service Unavailable)"
    );

    let broken = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        let mut resp = http::Response::new(Broken);
        *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
        Ok::<_, std::io::Error>(resp)
    });
    let err = JsonRpcCodecLayer::new(uri.clone())
        .layer(broken)
        .oneshot(call())
        .await
        .unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "response body could not be read: the connection broke (HTTP status 502 Bad Gateway)"
    );

    // Under a 2xx, the status is no news.
    let broken = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        Ok::<_, std::io::Error>(http::Response::new(Broken))
    });
    let err = JsonRpcCodecLayer::new(uri)
        .layer(broken)
        .oneshot(call())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "response body could not be read: the connection broke"
    );
}

/// At the HTTP level, an answer to a body that is not JSON-RPC, over the limit or broken
/// off under a failure status, is a `codec::Error` as one to a JSON-RPC call is: it
/// keeps the status (`status()`, the message) and the server's `Retry-After`. It kept
/// neither: "response body larger than the limit of 10 bytes" for a 503.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn http_level_an_unreadable_answer_to_a_body_not_json_rpc_says_its_status() {
    let too_large = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        let resp = http::Response::builder()
            .status(503)
            .header(http::header::RETRY_AFTER, "7")
            .body(Full::new(Bytes::from(vec![b'x'; 64])))
            .unwrap();
        Ok::<_, std::io::Error>(resp)
    });
    let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(periodic(1, 10).codes([2001]));
    let err = layer
        .clone()
        .response_limit(10)
        .layer(too_large)
        .oneshot(http_post("not JSON-RPC"))
        .await
        .unwrap_err();
    let codec = err
        .downcast_ref::<tower_jsonrpc_retry::codec::Error>()
        .expect("the codec's error");
    assert!(codec.is_body_too_large(), "{codec:?}");
    assert_eq!(codec.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(codec.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        err.to_string(),
        "response body larger than the limit of 10 bytes (HTTP status 503 Service Unavailable)"
    );

    let broken = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        let mut resp = http::Response::new(Broken);
        *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
        Ok::<_, std::io::Error>(resp)
    });
    let err = layer
        .layer(broken)
        .oneshot(http_post("not JSON-RPC"))
        .await
        .unwrap_err();
    let codec = err
        .downcast_ref::<tower_jsonrpc_retry::codec::Error>()
        .expect("the codec's error");
    assert!(codec.is_body(), "{codec:?}");
    assert_eq!(codec.status(), Some(http::StatusCode::BAD_GATEWAY));
    assert_eq!(
        err.to_string(),
        "response body could not be read: the connection broke (HTTP status 502 Bad Gateway)"
    );
}

/// A connect timeout is of two classes, `Connect` and `Timeout` (hyper-util's connector
/// reports one as a connect error around an `io::Error` of kind `TimedOut`): the events
/// name `Connect`, the classes being asked in the documented order, and the error's
/// message says it could not connect.
#[tokio::test(start_paused = true)]
async fn a_connect_timeout_is_of_the_connect_class_in_the_events() {
    use hyper_util::client::legacy::Client as HyperClient;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceBuilder;
    use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;

    let connector = tower::service_fn(|_: http::Uri| {
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout");
        std::future::ready(Err::<TokioIo<tokio::net::TcpStream>, _>(timed_out))
    });
    let http = HyperClient::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector);
    let classes = Arc::new(Mutex::new(Vec::new()));
    let (retried, gave_up) = (Arc::clone(&classes), Arc::clone(&classes));
    let strategy = periodic(1, 10)
        .retry_on(ErrorClass::Connect)
        .on_retry(move |e: &RetryEvent<'_>| retried.lock().unwrap().push(e.class()))
        .on_give_up(move |e: &GiveUpEvent<'_>| gave_up.lock().unwrap().push(e.class()));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(
            "http://127.0.0.1:1/".parse().unwrap(),
        ))
        .service(http);
    let err = Client::new(svc)
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert!(
        transport.is_connect() && transport.is_timeout(),
        "{transport}"
    );
    // Its message says so too.
    let message = transport.to_string();
    assert!(
        message.starts_with("HTTP request failed: could not connect"),
        "{message}"
    );
    assert_eq!(
        *classes.lock().unwrap(),
        [Some(ErrorClass::Connect), Some(ErrorClass::Connect)]
    );
}
