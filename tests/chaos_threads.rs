//! Chaos on tokio's multi-thread runtime: thousands of concurrent calls through the typed
//! `Client` and through the HTTP level (`JsonRpcRetryLayer::http` over hyper-util's
//! client), against a `FlakyServer` injecting seeded faults, reconciled call by call with
//! the server's log. Here the calls, hyper's connection tasks and the server run in
//! parallel on two worker threads, on real time, which `tests/chaos.rs` (one thread, a
//! paused clock) never does.
//!
//! So no fault here takes time: no delays, `Retry-After: 0`, a zero backoff. The attempt
//! timeout and the timeout around each run are guards only: a call that reaches either
//! fails the test.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::client::ClientBuilder;
use tower_jsonrpc_retry::codec;
use tower_jsonrpc_retry::jsonrpc::{Id, Request};
use tower_jsonrpc_retry::test_util::{Chaos, Fault, FlakyServer, LogEntry};
use tower_jsonrpc_retry::{
    Client, ClientError, ErrorClass, GaveUp, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

const CALLS: i64 = 5_000;
/// Calls in flight per test: with the server's side and three tests at once, some 400
/// sockets, so [`run`] raises the process's open-file limit to [`OPEN_FILES`] (a macOS
/// shell starts at 256).
const CONCURRENCY: usize = 64;
const OPEN_FILES: u64 = 512;
const RETRIES: usize = 3;
/// Every 10th call is a non-idempotent `send`.
const SEND_EVERY: i64 = 10;
/// Guards only: nothing here waits, so a loaded machine is still far from either.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const GUARD: Duration = Duration::from_secs(60);

/// The faults, their rates, and whether the strategy below retries them.
fn faults() -> Vec<(Fault, f64, bool)> {
    vec![
        (Fault::Code(-32005), 0.05, true),
        (Fault::Code(2002), 0.03, false),
        (Fault::Status(503), 0.03, true),
        (Fault::Status(429), 0.02, true),
        (Fault::StatusRetryAfter(429, 0), 0.02, true),
        (Fault::StatusRetryAfter(503, 0), 0.02, true),
        (Fault::DropBeforeRead, 0.03, true),
        (Fault::DropAfterRead, 0.03, true),
        (Fault::Malformed, 0.03, false),
    ]
}

/// Retries per call id, as the strategy's hook saw them.
type Retries = Arc<Mutex<HashMap<i64, usize>>>;

fn strategy(retries: &Retries) -> RetryStrategy {
    let hook = Arc::clone(retries);
    RetryStrategy::new(PeriodicBackoff::new(RETRIES, Duration::ZERO))
        .codes([-32005])
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS))
        .non_idempotent(["send"])
        .on_retry(move |e: &RetryEvent<'_>| {
            let Some(Id::Number(id)) = e.id() else {
                panic!("a retry of no call's id: {:?}", e.id());
            };
            *hook.lock().unwrap().entry(*id).or_default() += 1;
        })
}

fn method_of(id: i64) -> &'static str {
    if id % SEND_EVERY == 0 { "send" } else { "sum" }
}

/// What the caller got for one call.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Success,
    ErrorCode(i64),
    Status(u16),
    Reset,
    Decode,
    Other(String),
}

/// What the caller should get when this was the server's last word on the call.
fn outcome_of(fault: Option<Fault>) -> Outcome {
    match fault {
        None => Outcome::Success,
        Some(Fault::Code(code)) => Outcome::ErrorCode(code),
        Some(Fault::Status(s) | Fault::StatusRetryAfter(s, _)) => Outcome::Status(s),
        Some(Fault::DropBeforeRead | Fault::DropAfterRead) => Outcome::Reset,
        Some(Fault::Malformed) => Outcome::Decode,
        Some(other) => Outcome::Other(format!("{other:?}")),
    }
}

/// What a failure of the stack is, and the retries it says were made: the outermost
/// `codec::Error` in its chain says, or else hyper-util's, a broken connection.
fn outcome_of_error(err: &(dyn std::error::Error + 'static)) -> Got {
    let mut chain = std::iter::successors(Some(err), |e| e.source());
    let outcome = match chain.find_map(|e| e.downcast_ref::<codec::Error>()) {
        Some(e) if e.is_status() => Outcome::Status(e.status().unwrap().as_u16()),
        Some(e) if e.is_decode() => Outcome::Decode,
        Some(e) if e.is_transport() || e.is_body() => Outcome::Reset,
        None if err.is::<hyper_util::client::legacy::Error>() => Outcome::Reset,
        _ => Outcome::Other(err.to_string()),
    };
    (outcome, GaveUp::find(err).map(|g| g.retries()))
}

/// Each call's params are its own (`[id, 1]`), and so is its result.
fn outcome_of_result(id: i64, result: &Value) -> Outcome {
    let sum = method_of(id) == "sum";
    let expected = if sum { json!(id + 1) } else { json!([id, 1]) };
    if *result == expected {
        Outcome::Success
    } else {
        Outcome::Other(format!("answered {result}, another call's result"))
    }
}

/// A call's outcome, and the retries its error says were made, if it says.
type Got = (Outcome, Option<u32>);

/// Sends calls `0..CALLS` with `call`, `CONCURRENCY` at a time, each on its own task:
/// every call's outcome, once each, within `GUARD`.
async fn run<F, Fut>(call: F) -> HashMap<i64, Got>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Got> + Send + 'static,
{
    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut calls = JoinSet::new();
    for id in 0..CALLS {
        let permits = Arc::clone(&permits);
        let call = call(id);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            (id, call.await)
        });
    }
    let settle = async {
        let mut outcomes = HashMap::new();
        while let Some(joined) = calls.join_next().await {
            let (id, got) = joined.expect("a call task panicked");
            let again = outcomes.insert(id, got);
            assert!(again.is_none(), "call {id} answered twice");
        }
        outcomes
    };
    let outcomes = tokio::time::timeout(GUARD, settle)
        .await
        .unwrap_or_else(|_| panic!("calls still running after {GUARD:?}: hung"));
    assert_eq!(outcomes.len(), CALLS as usize, "calls lost");
    outcomes
}

/// Reconciles every call's outcome with the attempts the hook counted and the server's
/// log of them, every request having spoken `version`.
fn reconcile(
    name: &str,
    wall: std::time::Instant,
    version: http::Version,
    server: &FlakyServer,
    outcomes: &HashMap<i64, Got>,
    retries: &Retries,
) {
    let mut per_call: HashMap<i64, Vec<Option<Fault>>> = HashMap::new();
    let mut unread = 0;
    for LogEntry {
        method, id, fault, ..
    } in server.log()
    {
        match (method, id) {
            (Some(m), Some(Id::Number(id))) => {
                assert_eq!(m, method_of(id), "call {id} logged as {m}");
                per_call.entry(id).or_default().push(fault);
            }
            (None, None) if fault == Some(Fault::DropBeforeRead) => unread += 1,
            other => panic!("unexpected log entry {other:?} {fault:?}"),
        }
    }
    let retries = retries.lock().unwrap().clone();
    let sent = |id: i64| 1 + retries.get(&id).copied().unwrap_or(0);
    let retryable = |f: &Option<Fault>| faults().iter().any(|(g, _, r)| Some(*g) == *f && *r);
    let mut client_unread = 0;
    let mut by_outcome: BTreeMap<&Outcome, usize> = BTreeMap::new();
    for id in 0..CALLS {
        let (outcome, gave_up) = &outcomes[&id];
        *by_outcome.entry(outcome).or_default() += 1;
        let seen = per_call.remove(&id).unwrap_or_default();
        let sent = sent(id);
        let last = seen.last().copied();
        let ctx = format!("{name}: call {id}: {outcome:?}, {sent} attempts, read {seen:?}");
        assert!(sent <= 1 + RETRIES, "over 1 + retries: {ctx}");
        assert!(seen.len() <= sent, "the server read more: {ctx}");
        let told = gave_up.is_none_or(|g| g as usize == sent - 1);
        assert!(told, "its error tells other retries: {ctx}");
        // Only the last attempt read may have been answered or failed for good.
        let earlier = &seen[..seen.len().saturating_sub(1)];
        assert!(earlier.iter().all(retryable), "retried a final: {ctx}");
        let once = method_of(id) != "send" || sent == 1;
        assert!(once, "non-idempotent call retried: {ctx}");
        let retried = faults()
            .iter()
            .any(|(f, _, r)| *r && outcome_of(Some(*f)) == *outcome);
        let early = method_of(id) == "sum" && sent <= RETRIES && retried;
        assert!(!early, "gave up early: {ctx}");
        if seen.len() == sent {
            assert_eq!(*outcome, last.map_or(Outcome::Reset, outcome_of), "{ctx}");
        } else {
            // Some attempt was dropped before the server read it: the last one, or an
            // earlier one.
            let last_answer = last.is_some_and(|f| *outcome == outcome_of(f));
            assert!(*outcome == Outcome::Reset || last_answer, "{ctx}");
        }
        client_unread += sent - seen.len();
    }
    assert!(per_call.is_empty(), "{name}: no such calls: {per_call:?}");
    let total: usize = (0..CALLS).map(sent).sum();
    println!("{name}: {total} attempts ({unread} unread), outcomes {by_outcome:?}");
    println!("{name}: wall time {:?}", wall.elapsed());
    assert_eq!(client_unread, unread, "{name}: unread, of no call");
    assert!(total > CALLS as usize + 300, "{name}: few retries");
    let versions = server.versions();
    assert!(
        versions.iter().all(|v| *v == version),
        "{name}: {version:?}"
    );
}

async fn chaos_server(seed: u64) -> FlakyServer {
    let server = FlakyServer::start().await.unwrap();
    server.handle("send", |params| Ok(params.clone()));
    let mut chaos = Chaos::new(seed);
    for (fault, rate, _) in faults() {
        chaos = chaos.rate(fault, rate);
    }
    server.chaos(chaos);
    server
}

/// Every call through the typed client `build` makes, each request speaking `version`.
async fn through_the_client(
    name: &str,
    version: http::Version,
    build: impl FnOnce(ClientBuilder) -> Client,
) {
    let wall = std::time::Instant::now();
    let server = chaos_server(0x7ead).await;
    let retries = Retries::default();
    let client = build(
        Client::builder(server.uri())
            .attempt_timeout(ATTEMPT_TIMEOUT)
            .retry(strategy(&retries)),
    );
    let outcomes = run(|id| {
        let call = client
            .request(method_of(id))
            .params((id, 1))
            .id(id)
            .send::<Value>();
        async move {
            match call.await {
                Ok(result) => (outcome_of_result(id, &result), None),
                Err(ClientError::Rpc(e)) => {
                    let gave_up = e.gave_up().map(|g| g.retries());
                    (Outcome::ErrorCode(e.code()), gave_up)
                }
                Err(e) => outcome_of_error(&e),
            }
        }
    })
    .await;
    reconcile(name, wall, version, &server, &outcomes, &retries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_threads_through_the_typed_client_reconciles_with_the_server_log() {
    let version = http::Version::HTTP_11;
    through_the_client("chaos threads client", version, ClientBuilder::build).await;
}

/// Over HTTP/2 every call shares one connection, and a drop resets one stream only.
#[cfg(feature = "http2")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_threads_through_the_typed_client_over_http2_reconciles_with_the_server_log() {
    through_the_client("chaos threads client h2", http::Version::HTTP_2, |b| {
        b.http2_prior_knowledge().build()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_threads_at_the_http_level_reconciles_with_the_server_log() {
    let wall = std::time::Instant::now();
    let server = chaos_server(0x4779).await;
    let retries = Retries::default();
    let svc = tower::ServiceBuilder::new()
        .layer(
            JsonRpcRetryLayer::http::<Full<Bytes>>(strategy(&retries))
                .attempt_timeout(ATTEMPT_TIMEOUT),
        )
        .service(common::http());
    let outcomes = run(|id| {
        let body = Request::new(method_of(id), json!([id, 1])).with_id(id);
        let req = http::Request::post(server.uri())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
            .unwrap();
        let call = svc.clone().oneshot(req);
        async move {
            let resp = match call.await {
                Ok(resp) => resp,
                Err(e) => return outcome_of_error(&*e),
            };
            // A status comes back as the server's answer (empty), an answer as it came.
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let answer = serde_json::from_slice::<Value>(&body).unwrap_or_default();
            let outcome = if !status.is_success() && body.is_empty() {
                Outcome::Status(status.as_u16())
            } else if answer["id"] != json!(id) {
                Outcome::Other(format!("answered {answer}, another call's answer"))
            } else if let Some(code) = answer["error"]["code"].as_i64() {
                Outcome::ErrorCode(code)
            } else {
                outcome_of_result(id, &answer["result"])
            };
            (outcome, None)
        }
    })
    .await;
    let (name, version) = ("chaos threads http", http::Version::HTTP_11);
    reconcile(name, wall, version, &server, &outcomes, &retries);
}
