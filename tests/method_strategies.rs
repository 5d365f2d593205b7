//! Strategies of methods (`RetryStrategy::for_method`) where the shared table of
//! `tests/levels.rs` does not reach: batches at both levels, the HTTP level's deadline
//! before and after the body is read, the typed client, and the strategy's own rules;
//! then how a strategy's parts add up.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::{self, Backoff, BackoffExt, Jitter, PeriodicBackoff};
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request, Response};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    Client, ErrorClass, GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

use common::{TestBody, ended, ended_in, secs};

fn periodic(retries: usize, interval: f64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(retries, secs(interval)))
}

/// A server where `sum`, `write` and `read` each answer -32005 once, then succeed.
async fn server() -> FlakyServer {
    let server = FlakyServer::start().await.unwrap();
    server.handle("write", |_| Ok(json!("written")));
    server.handle("read", |_| Ok(json!("read")));
    for method in ["sum", "write", "read"] {
        server.script(method, [Step::error(-32005)]);
    }
    server
}

fn batch() -> BatchRequest {
    BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("write", json!([])).with_id(2),
        Request::new("read", json!([])).with_id(3),
    ])
}

/// The strategies of `write` that never send it again: none at all, one with no delays
/// (which, unlike `none()`, still reports its give-ups; also through a combinator, over
/// a backoff that knows its length and over a closure's, which does not), or one that
/// marks it non-idempotent.
fn never_again() -> [RetryStrategy; 5] {
    let endless = || backoff::from_fn(|| std::iter::repeat(secs(1.0)));
    [
        RetryStrategy::none(),
        periodic(0, 1.0).codes([-32005]),
        RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)).max_retries(0)).codes([-32005]),
        RetryStrategy::new(endless().max_retries(0)).codes([-32005]),
        periodic(3, 1.0).codes([-32005]).non_idempotent(["write"]),
    ]
}

/// The default retries -32005 a second apart; `read` has a strategy of its own, nine
/// seconds apart, which a batch does not follow; `write` has `write`.
fn strategy(write: RetryStrategy) -> RetryStrategy {
    periodic(3, 1.0)
        .codes([-32005])
        .for_method("write", write)
        .for_method("read", periodic(5, 9.0).codes([-32005]))
}

#[tokio::test(start_paused = true)]
async fn json_rpc_level_a_batch_follows_the_default_and_holds_back_what_its_method_never_retries() {
    for write in never_again() {
        let server = server().await;
        let svc = common::stack(&server, strategy(write));
        let start = Instant::now();
        let resp = svc.oneshot(batch()).await.unwrap();
        assert_eq!(start.elapsed(), secs(1.0), "the default's delay");
        let by_id = |id: i64| resp.items().iter().find(|r| *r.id() == id.into()).unwrap();
        assert_eq!(by_id(1).result(), Some(&json!(3)));
        assert_eq!(by_id(2).error().map(|e| e.code()), Some(-32005));
        assert_eq!(by_id(3).result(), Some(&json!("read")));
        assert_eq!(
            ended_in(&resp, 2).map(|(_, why)| why),
            Some(GiveUpReason::NotIdempotent)
        );
        assert_eq!(
            [
                server.calls("sum"),
                server.calls("write"),
                server.calls("read")
            ],
            [2, 1, 2]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn http_level_a_batch_follows_the_default_and_holds_back_what_its_method_never_retries() {
    for write in never_again() {
        let server = server().await;
        let svc = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::http(strategy(write)))
            .service(common::http());
        let body = serde_json::to_vec(&batch()).unwrap();
        let req = http::Request::post(server.uri())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let start = Instant::now();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(start.elapsed(), secs(1.0), "the default's delay");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        let by_id = |id: i64| items.iter().find(|r| r["id"] == id).unwrap();
        assert_eq!(by_id(1)["result"], 3);
        assert_eq!(by_id(2)["error"]["code"], -32005);
        assert_eq!(by_id(3)["result"], "read");
        assert_eq!(
            [
                server.calls("sum"),
                server.calls("write"),
                server.calls("read")
            ],
            [2, 1, 2]
        );
    }
}

const SUM: &[u8] = br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const BUSY: &[u8] = br#"{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1}"#;

/// What a call through the HTTP-level layer came to: the attempts that reached the
/// service, the time taken, and how the retries ended (`None` for an error).
type Came = (usize, Duration, Option<GiveUpReason>);

/// `body`, arriving 2 s after the call, through the HTTP-level layer over a service
/// that waits `wait` and then answers `answer` every time.
async fn after_a_slow_body(
    strategy: RetryStrategy,
    body: &'static [u8],
    wait: Duration,
    answer: &'static [u8],
) -> Came {
    let sends = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&sends);
    let inner = tower::service_fn(move |_: http::Request<TestBody>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(wait).await;
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(answer))))
        }
    });
    let svc = JsonRpcRetryLayer::http::<TestBody>(strategy).layer(inner);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(TestBody::after(secs(2.0), body))
        .unwrap();
    let start = Instant::now();
    let why = match svc.oneshot(req).await {
        Ok(resp) => ended(resp.extensions().get().copied()).map(|(_, why)| why),
        Err(_) => None,
    };
    (sends.load(Ordering::SeqCst), start.elapsed(), why)
}

/// A method's deadline counts from the call, as the default's does, not from when its
/// body was read: 3.5 s from the call leaves the attempts at 2 s and 3 s. It replaces
/// the default's, later or earlier, once the body says the method.
#[tokio::test(start_paused = true)]
async fn http_level_a_methods_deadline_counts_from_the_call() {
    let sum = periodic(10, 1.0).codes([2001]).max_elapsed(secs(3.5));
    for default in [
        RetryStrategy::none(),
        periodic(10, 1.0).codes([2001]).max_elapsed(secs(2.5)),
        periodic(10, 1.0).codes([2001]).max_elapsed(secs(8.0)),
    ] {
        let strategy = default.for_method("sum", sum.clone());
        let came = after_a_slow_body(strategy, SUM, Duration::ZERO, BUSY).await;
        assert_eq!(came, (2, secs(3.0), Some(GiveUpReason::Deadline)));
    }
}

/// Until the body says which method it calls, the default's deadline bounds the call:
/// a method with a later deadline, or none, does not lift it while the body is read.
#[tokio::test(start_paused = true)]
async fn http_level_the_defaults_deadline_bounds_the_read_whatever_the_methods() {
    let default = periodic(10, 1.0).codes([2001]).max_elapsed(secs(1.0));
    for sum in [
        RetryStrategy::none(),
        periodic(10, 1.0).max_elapsed(secs(60.0)),
    ] {
        let strategy = default.clone().for_method("sum", sum);
        let came = after_a_slow_body(strategy, SUM, Duration::ZERO, BUSY).await;
        assert_eq!(came, (0, secs(1.0), None), "cut while the body was read");
    }
}

/// A batch, and a body that is not JSON-RPC, keep the default's deadline from the call
/// when the default has strategies for methods, whatever their deadlines.
#[tokio::test(start_paused = true)]
async fn http_level_a_batch_and_a_body_not_json_rpc_keep_the_defaults_deadline() {
    let default = periodic(10, 1.0).codes([2001]).max_elapsed(secs(3.5));
    let batch: &[u8] = br#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}]"#;
    let busy: &[u8] = br#"[{"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":1}]"#;
    for strategy in [
        default.clone(),
        default.clone().for_method(
            "sum",
            periodic(10, 1.0).codes([2001]).max_elapsed(secs(60.0)),
        ),
        default.clone().for_method("other", RetryStrategy::none()),
    ] {
        let came = after_a_slow_body(strategy.clone(), batch, Duration::ZERO, busy).await;
        assert_eq!(
            came,
            (2, secs(3.0), Some(GiveUpReason::Deadline)),
            "a batch"
        );
        // Sent once, as it came, and cut at the deadline: 1.5 s after the body came.
        let came = after_a_slow_body(strategy, b"not json", secs(50.0), b"ok").await;
        assert_eq!(came, (1, secs(3.5), None), "not JSON-RPC");
    }
}

/// A request's own strategy governs its call, its strategies for methods included only
/// as the default's are in a batch: a method whose strategy never retries it is held
/// back. So a strategy cloned from the default for one request keeps its writes safe.
#[tokio::test(start_paused = true)]
async fn a_requests_own_strategy_holds_back_what_its_methods_never_retry() {
    let server = FlakyServer::start().await.unwrap();
    let own = periodic(3, 1.0)
        .codes([2001])
        .for_method("sum", RetryStrategy::none());
    let svc = common::stack(&server, periodic(3, 1.0).codes([2001]));
    server.script("sum", [Step::error(2001)]);
    let mut req = Request::new("sum", json!([1, 2])).with_id(1);
    req.extensions_mut().insert(own.clone());
    let resp = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(2001));
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::NotIdempotent))
    );
    assert_eq!(server.calls("sum"), 1);

    // Another method goes by the request's strategy itself.
    server.script("echo", [Step::error(2001)]);
    let mut req = Request::new("echo", json!([7])).with_id(2);
    req.extensions_mut().insert(own);
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.result(), Some(&json!([7])));
    assert_eq!(server.calls("echo"), 2);
}

/// `RetryStrategy`'s docs: a clone of the default given to one request governs the call
/// by its own rules and backoff, not by its strategy for the call's method, which
/// governs the call under the default.
#[tokio::test(start_paused = true)]
async fn a_clone_of_the_default_as_a_requests_own_governs_by_its_own_rules() {
    let server = FlakyServer::start().await.unwrap();
    let default = periodic(3, 1.0)
        .codes([2001])
        .for_method("sum", periodic(1, 5.0).codes([2002]));
    let client = Client::builder(server.uri()).retry(default.clone()).build();

    // Under the default, `sum` follows its own strategy: 2002 is retried once.
    server.script("sum", [Step::error(2002), Step::error(2002)]);
    let err = client.call::<i64>("sum", [1, 2]).await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::Exhausted)));
    assert_eq!(server.calls("sum"), 2);

    // Under a clone of the default as the request's own, the clone's rules decide:
    // 2002 is not among them, and 2001 is retried three times, a second apart.
    server.script("sum", [Step::error(2002)]);
    let own = || client.request("sum").params([1, 2]).retry(default.clone());
    let err = own().send::<i64>().await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotRetryable)));
    assert_eq!(server.calls("sum"), 3);
    server.script("sum", std::iter::repeat_n(Step::error(2001), 4));
    let start = Instant::now();
    let err = own().send::<i64>().await.unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((3, GiveUpReason::Exhausted)));
    assert_eq!((server.calls("sum"), start.elapsed()), (7, secs(3.0)));
}

/// The crate's "Batches": a batch that failed in transport (here a bare 503) goes again
/// whole, unless a call in it must not go again, as one whose method's strategy never
/// retries it: then it ends as it failed, held back, and its calls are sent once; but
/// after a refused connection it goes again.
#[tokio::test(start_paused = true)]
async fn a_batch_failed_in_transport_with_a_call_never_retried_is_held_back_whole() {
    let server = FlakyServer::start().await.unwrap();
    let default =
        periodic(3, 1.0).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let batch = || {
        BatchRequest::new(vec![
            Request::new("sum", json!([1, 2])).with_id(1),
            Request::new("echo", json!([3])).with_id(2),
        ])
    };

    server.script("sum", [Step::status(503)]);
    let resp = common::stack(&server, default.clone())
        .oneshot(batch())
        .await
        .unwrap();
    assert_eq!(server.http_requests(), 2, "sent again whole, then answered");
    assert_eq!(resp.items().len(), 2);

    server.script("sum", [Step::status(503)]);
    let never_echo = default.for_method("echo", RetryStrategy::none());
    let err = common::stack(&server, never_echo)
        .oneshot(batch())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(ended(err.gave_up()), Some((0, GiveUpReason::NotIdempotent)));
    assert_eq!(server.http_requests(), 3, "sent once");

    // A failure that proves the server never got it (a refused connection) sends it again.
    let (_bound, closed) = common::refusing();
    let never_echo = periodic(2, 1.0)
        .retry_on(ErrorClass::Connect)
        .for_method("echo", RetryStrategy::none());
    let err = common::stack_to(format!("http://{closed}/").parse().unwrap(), never_echo)
        .oneshot(batch())
        .await
        .unwrap_err();
    assert_eq!(ended(err.gave_up()), Some((2, GiveUpReason::Exhausted)));
}

#[tokio::test(start_paused = true)]
async fn the_typed_client_follows_a_methods_strategy() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri())
        .retry(
            periodic(3, 1.0)
                .codes([2001])
                .for_method("sum", periodic(1, 5.0).codes([2002])),
        )
        .build();
    server.script("sum", [Step::error(2002), Step::error(2002)]);
    server.script("echo", [Step::error(2001), Step::error(2001)]);
    let start = Instant::now();
    let err = client.call::<i64>("sum", [1, 2]).await.unwrap_err();
    assert_eq!(err.rpc().map(|e| e.code()), Some(2002));
    assert_eq!(ended(err.gave_up()), Some((1, GiveUpReason::Exhausted)));
    assert_eq!((server.calls("sum"), start.elapsed()), (2, secs(5.0)));

    // Other methods follow the default.
    let start = Instant::now();
    let echoed: Vec<i64> = client.call("echo", [1]).await.unwrap();
    assert_eq!(echoed, [1]);
    assert_eq!((server.calls("echo"), start.elapsed()), (3, secs(2.0)));
}

/// A method the default marks non-idempotent stays marked under its own strategy,
/// whichever comes first; `idempotent` on the default lifts that mark there too, and
/// never a mark of the method's own strategy, whichever comes first.
#[tokio::test(start_paused = true)]
async fn the_defaults_non_idempotent_marks_hold_under_a_methods_strategy() {
    let server = server().await;
    let write = || periodic(3, 1.0).codes([-32005]);
    let marked_first = periodic(3, 1.0)
        .non_idempotent(["write"])
        .for_method("write", write());
    let marked_after = periodic(3, 1.0)
        .for_method("write", write())
        .non_idempotent(["write"]);
    let unmarked = marked_first.clone().idempotent(["write"]);
    // The method's own strategy marks it too (built from the same preset, say): that
    // mark stays, whether the default's `idempotent` comes before `for_method` or after.
    let own = || write().non_idempotent(["write"]);
    let unmarked_first = periodic(3, 1.0)
        .non_idempotent(["write"])
        .idempotent(["write"])
        .for_method("write", own());
    let unmarked_after = periodic(3, 1.0)
        .non_idempotent(["write"])
        .for_method("write", own())
        .idempotent(["write"]);
    let lifted_there = periodic(3, 1.0)
        .non_idempotent(["write"])
        .idempotent(["write"])
        .for_method("write", own().idempotent(["write"]));
    // Marked again after the unmark: marked.
    let marked_again = periodic(3, 1.0)
        .idempotent(["write"])
        .non_idempotent(["write"])
        .for_method("write", own());
    for (strategy, calls, why) in [
        (marked_first, 1, GiveUpReason::NotIdempotent),
        (marked_after, 1, GiveUpReason::NotIdempotent),
        (unmarked, 4, GiveUpReason::Exhausted),
        (unmarked_first, 1, GiveUpReason::NotIdempotent),
        (unmarked_after, 1, GiveUpReason::NotIdempotent),
        (marked_again, 1, GiveUpReason::NotIdempotent),
        // Lifted on the method's own strategy and on the default: retried.
        (lifted_there, 4, GiveUpReason::Exhausted),
    ] {
        server.reset();
        server.script("write", std::iter::repeat_n(Step::error(-32005), 4));
        let svc = common::stack(&server, strategy);
        let req = Request::new("write", json!([])).with_id(1);
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
        let ended = ended(resp.extensions().get().copied()).map(|(_, why)| why);
        assert_eq!((server.calls("write"), ended), (calls, Some(why)));
    }
}

/// Hooks and a budget a method's strategy has none of its own, it shares with the
/// default, set before or after (a hook replaced on the default is replaced where it
/// was shared); one of its own it keeps, one from a clone of the default included,
/// whichever is set first.
#[tokio::test(start_paused = true)]
async fn a_methods_strategy_shares_the_defaults_hooks_and_budget() {
    let heard: Arc<Mutex<Vec<String>>> = Arc::default();
    let hear = |tag: &'static str| {
        let heard = Arc::clone(&heard);
        move |e: &GiveUpEvent<'_>| heard.lock().unwrap().push(format!("{tag} {}", e.method()))
    };
    let write = || periodic(1, 1.0).codes([-32005]);
    // An empty budget refuses every retry: a call under it ends `Budget` at once.
    let empty = || Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    // A strategy for the method cloned from a default that had a hook: its own.
    let cloned = periodic(1, 1.0).codes([-32005]).on_give_up(hear("cloned"));
    let cases: [(&str, RetryStrategy, &[&str], GiveUpReason); 7] = [
        (
            "a clone's hook, the default's replaced before",
            cloned
                .clone()
                .on_give_up(hear("f"))
                .for_method("write", cloned.clone()),
            &["cloned write"],
            GiveUpReason::Exhausted,
        ),
        (
            "a clone's hook, the default's replaced after",
            cloned
                .clone()
                .for_method("write", cloned.clone())
                .on_give_up(hear("g")),
            &["cloned write"],
            GiveUpReason::Exhausted,
        ),
        (
            "hook set before",
            periodic(1, 1.0)
                .codes([-32005])
                .on_give_up(hear("a"))
                .for_method("write", write()),
            &["a write"],
            GiveUpReason::Exhausted,
        ),
        (
            "hook set after",
            periodic(1, 1.0)
                .codes([-32005])
                .for_method("write", write())
                .on_give_up(hear("b")),
            &["b write"],
            GiveUpReason::Exhausted,
        ),
        (
            "hook replaced on the default",
            periodic(1, 1.0)
                .on_give_up(hear("old"))
                .for_method("write", write())
                .on_give_up(hear("c")),
            &["c write"],
            GiveUpReason::Exhausted,
        ),
        (
            "a hook of its own",
            periodic(1, 1.0)
                .for_method("write", write().on_give_up(hear("own")))
                .on_give_up(hear("d")),
            &["own write"],
            GiveUpReason::Exhausted,
        ),
        (
            "budget set after",
            periodic(1, 1.0)
                .for_method("write", write())
                .on_give_up(hear("e"))
                .budget(empty()),
            &["e write"],
            GiveUpReason::Budget,
        ),
    ];
    for (name, strategy, want, why) in cases {
        heard.lock().unwrap().clear();
        let server = FlakyServer::start().await.unwrap();
        server.handle("write", |_| Ok(json!("written")));
        server.script("write", std::iter::repeat_n(Step::error(-32005), 3));
        let svc = common::stack(&server, strategy);
        let resp = svc
            .oneshot(Request::new("write", json!([])).with_id(1))
            .await
            .unwrap();
        let ended = ended(resp.extensions().get().copied()).map(|(_, why)| why);
        assert_eq!(ended, Some(why), "{name}");
        assert_eq!(*heard.lock().unwrap(), want, "{name}");
    }
}

/// Giving a strategy to `for_method` draws nothing from its backoff: a seeded jitter's
/// first stream is still the first call's (before, `for_method` drew it to learn whether
/// the backoff had delays, and every clone of the recipe started at the second), and a
/// `from_fn` closure runs at a call's first failure, not when the strategy is built.
#[tokio::test(start_paused = true)]
async fn for_method_draws_nothing_from_the_backoff() {
    let seeded = || PeriodicBackoff::new(3, secs(1.0)).with_jitter(Jitter::full().seeded(42));
    let first_stream: Vec<Duration> = seeded().delays().collect();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&waits);
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let default = RetryStrategy::none()
        .for_method(
            "sum",
            RetryStrategy::new(seeded())
                .codes([2001])
                .on_retry(move |e| {
                    seen.lock().unwrap().push(e.delay());
                }),
        )
        .for_method(
            "echo",
            RetryStrategy::new(backoff::from_fn(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                [secs(1.0)]
            }))
            .codes([2001]),
        );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "no call has failed yet");

    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::error(2001), 3));
    let client = Client::builder(server.uri()).retry(default).build();
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    assert_eq!(
        *waits.lock().unwrap(),
        first_stream,
        "the first stream of seed 42"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn a_second_strategy_for_a_method_replaces_the_first_and_chains_are_cut() {
    let strategy = RetryStrategy::none()
        .for_method("b", periodic(1, 1.0))
        .for_method("a", periodic(2, 1.0).for_method("c", periodic(3, 1.0)))
        .for_method("b", RetryStrategy::none());
    let shown = format!("{strategy:?}");
    let methods = &shown[shown.find("methods: {").unwrap()..];
    // Two methods, in order, the second `b` in place of the first; `a`'s own strategy
    // for `c` is dropped.
    assert_eq!(methods.matches("backoff: Some").count(), 1, "{methods}");
    assert_eq!(methods.matches("backoff: None").count(), 1, "{methods}");
    assert!(
        methods.find("\"a\"").unwrap() < methods.find("\"b\"").unwrap(),
        "{methods}"
    );
    assert!(!methods.contains("\"c\""), "{methods}");
    assert_eq!(methods.matches("methods: {}").count(), 2, "{methods}");
}

// How a strategy's parts add up: rules, presets, and what the default lends the
// strategies it gives its methods.

/// One call through the JSON-RPC-level stack to `server` under `strategy`.
async fn call(server: &FlakyServer, strategy: RetryStrategy, call: Request) -> Response {
    common::stack(server, strategy).oneshot(call).await.unwrap()
}

/// A call of `write`, id 1.
fn write() -> Request {
    Request::new("write", json!([])).with_id(1)
}

/// `none()` has no backoff: rules added to it retry nothing, so it cannot retry, its
/// calls are not watched and its `on_give_up` hears nothing.
#[tokio::test(start_paused = true)]
async fn none_with_rules_still_cannot_retry_and_makes_no_event() {
    let heard = Arc::new(AtomicUsize::new(0));
    let hear = Arc::clone(&heard);
    let strategy = RetryStrategy::none()
        .codes([-32005])
        .on_give_up(move |_: &GiveUpEvent<'_>| {
            hear.fetch_add(1, Ordering::SeqCst);
        });
    assert!(!strategy.can_retry(), "no backoff, no retry");
    let server = server().await;
    let resp = call(
        &server,
        strategy,
        Request::new("sum", json!([1, 2])).with_id(1),
    )
    .await;
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(server.calls("sum"), 1);
    assert_eq!(
        heard.load(Ordering::SeqCst),
        0,
        "an unwatched call makes no event"
    );
    assert_eq!(ended(resp.extensions().get().copied()), None);
}

/// A strategy whose only rule is `retry_response_if` can retry, and does: its calls are
/// watched.
#[tokio::test(start_paused = true)]
async fn a_strategy_with_only_a_response_rule_retries() {
    let strategy = periodic(2, 1.0).retry_response_if(|e| e.code() == -32005);
    assert!(strategy.can_retry());
    let server = server().await;
    server.handle("sum", |_| Ok(json!(3)));
    let svc = common::stack(&server, strategy);
    let start = Instant::now();
    let resp = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2);
    assert_eq!(start.elapsed(), secs(1.0));
}

/// A method's strategy with one retry to make is not one that never sends a call again:
/// in a batch, its calls are re-sent on the default's rules.
#[tokio::test(start_paused = true)]
async fn a_methods_strategy_with_one_retry_does_not_hold_its_calls_back() {
    let server = server().await;
    let strategy = periodic(3, 1.0)
        .codes([-32005])
        .for_method("write", periodic(1, 1.0).codes([-32005]));
    let svc = common::stack(&server, strategy);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1, 2])).with_id(1),
        Request::new("write", json!([])).with_id(2),
    ]);
    let resp = svc.oneshot(batch).await.unwrap();
    let by_id = |id: i64| resp.items().iter().find(|r| *r.id() == id.into()).unwrap();
    assert_eq!(by_id(1).result(), Some(&json!(3)));
    assert_eq!(by_id(2).result(), Some(&json!("written")));
    assert_eq!([server.calls("sum"), server.calls("write")], [2, 2]);
}

/// A budget set on the default before `for_method` serves the method's strategy that
/// has none of its own, as one set after does.
#[tokio::test(start_paused = true)]
async fn a_budget_set_before_for_method_serves_the_methods_strategy() {
    // An empty budget refuses every retry: a call under it ends `Budget` at once.
    let empty = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    let strategy = periodic(1, 1.0)
        .codes([-32005])
        .budget(empty)
        .for_method("write", periodic(1, 1.0).codes([-32005]));
    let server = server().await;
    let resp = call(&server, strategy, write()).await;
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    assert_eq!(
        ended(resp.extensions().get().copied()),
        Some((0, GiveUpReason::Budget))
    );
    assert_eq!(server.calls("write"), 1);
}

/// An `on_retry` hook set on the default after `for_method` serves the method's
/// strategy that has none of its own.
#[tokio::test(start_paused = true)]
async fn an_on_retry_set_after_for_method_serves_the_methods_strategy() {
    let heard: Arc<Mutex<Vec<String>>> = Arc::default();
    let hear = Arc::clone(&heard);
    let strategy = periodic(1, 1.0)
        .codes([-32005])
        .for_method("write", periodic(1, 1.0).codes([-32005]))
        .on_retry(move |e: &RetryEvent<'_>| hear.lock().unwrap().push(e.method().to_owned()));
    let server = server().await;
    let resp = call(&server, strategy, write()).await;
    assert_eq!(resp.result(), Some(&json!("written")));
    assert_eq!(*heard.lock().unwrap(), ["write"]);
}

/// A mark the default puts on a method after giving it a strategy is lifted by the
/// default's `idempotent`.
#[tokio::test(start_paused = true)]
async fn idempotent_lifts_a_mark_made_after_for_method() {
    let server = FlakyServer::start().await.unwrap();
    server.script("write", std::iter::repeat_n(Step::error(-32005), 4));
    let strategy = periodic(3, 1.0)
        .for_method("write", periodic(3, 1.0).codes([-32005]))
        .non_idempotent(["write"])
        .idempotent(["write"]);
    let resp = call(&server, strategy, write()).await;
    assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
    let why = ended(resp.extensions().get().copied()).map(|(_, why)| why);
    assert_eq!(
        (server.calls("write"), why),
        (4, Some(GiveUpReason::Exhausted))
    );
}

/// A second `retry_result_if` adds a rule: both hold.
#[tokio::test(start_paused = true)]
async fn result_rules_add_up() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("a", |_| Ok(json!(1)));
    server.script(
        "a",
        [Step::raw(200, r#"{"jsonrpc":"2.0","id":1,"result":null}"#)],
    );
    let strategy = periodic(2, 1.0)
        .retry_result_if(|method, result| method == "a" && result.is_null())
        .retry_result_if(|method, result| method == "b" && result.is_null());
    let resp = call(&server, strategy, Request::new("a", json!([])).with_id(1)).await;
    assert_eq!(resp.result(), Some(&json!(1)));
    assert_eq!(server.calls("a"), 2);
}

/// A wait hint reader added to `ethereum_rate_limits()` adds to the preset's own reader
/// of "try again in …".
#[tokio::test(start_paused = true)]
async fn a_hint_reader_added_to_the_ethereum_preset_keeps_the_presets() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("eth_blockNumber", |_| Ok(json!("0x1")));
    server.script(
        "eth_blockNumber",
        [Step::error_with(
            -32005,
            "rate limited, try again in 2.5s",
            None,
        )],
    );
    let strategy = RetryStrategy::ethereum_rate_limits_seeded(7).retry_after_from(|e| {
        let millis = e.data()?.get("retry_in_ms")?.as_u64()?;
        Some(Duration::from_millis(millis))
    });
    let client = Client::builder(server.uri()).retry(strategy).build();
    let start = Instant::now();
    let block: String = client.call("eth_blockNumber", ()).await.unwrap();
    assert_eq!(block, "0x1");
    assert_eq!(server.calls("eth_blockNumber"), 2);
    assert_eq!(start.elapsed(), secs(2.5));
}

/// `RetryStrategy::default()` is `transient()`: it retries a 503.
#[tokio::test(start_paused = true)]
async fn the_default_strategy_is_transient() {
    assert!(RetryStrategy::default().can_retry());
    let server = FlakyServer::start().await.unwrap();
    server.handle("sum", |_| Ok(json!(3)));
    server.script("sum", [Step::status(503)]);
    let resp = call(
        &server,
        RetryStrategy::default(),
        Request::new("sum", json!([1, 2])).with_id(1),
    )
    .await;
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(server.calls("sum"), 2);
}

/// `transient_seeded` draws by its seed: two seeds, two sets of delays.
#[tokio::test(start_paused = true)]
async fn transient_seeded_draws_by_its_seed() {
    async fn delays(strategy: RetryStrategy) -> Vec<Duration> {
        let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let record = Arc::clone(&seen);
        let strategy =
            strategy.on_retry(move |e: &RetryEvent<'_>| record.lock().unwrap().push(e.delay()));
        let inner = tower::service_fn(|_: Request| async {
            Err::<tower_jsonrpc_retry::jsonrpc::Response, _>(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))
        });
        let svc = tower::Layer::layer(&JsonRpcRetryLayer::new(strategy), inner);
        svc.oneshot(Request::new("sum", json!([1, 2])).with_id(1))
            .await
            .unwrap_err();
        seen.lock().unwrap().clone()
    }
    let seven = delays(RetryStrategy::transient_seeded(7)).await;
    let eight = delays(RetryStrategy::transient_seeded(8)).await;
    assert_eq!((seven.len(), eight.len()), (3, 3));
    assert_ne!(seven, eight);
}
