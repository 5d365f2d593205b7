//! Chaos and retry storms: many concurrent calls through the whole stack against a
//! `FlakyServer` injecting seeded random faults, reconciled with the server's log:
//! single calls at the JSON-RPC level, batches at the JSON-RPC level, single calls,
//! batches and notifications as raw bodies at the HTTP level, and the same through
//! jsonrpsee's `HttpClient` with the HTTP level in its middleware.
//!
//! Runs on tokio's paused clock: the per-attempt timeout and `Retry-After` waits cost no
//! real time, and the retry backoff is zero.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tower::retry::budget::TpsBudget;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{Id, Request};
use tower_jsonrpc_retry::test_util::{Chaos, Fault, FlakyServer, LogEntry};
use tower_jsonrpc_retry::{ErrorClass, RetryEvent, RetryStrategy};

const CALLS: i64 = 10_000;
const CONCURRENCY: usize = 64;
/// With the server's side, a test holds up to twice its calls in flight in sockets, and
/// the harness runs as many tests at once as the machine has cores: the open-file limit
/// this binary raises itself to (a macOS shell starts at 256; four tests at once need
/// more).
const OPEN_FILES: u64 = 1024;
const RETRIES: usize = 3;
/// Every 10th call is a non-idempotent `send`.
const SEND_EVERY: i64 = 10;
/// Long past any legitimate call (4 attempts of 200 ms and at most 3 waits of 2 s):
/// a call still running by then is hung.
const GUARD: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The faults, their rates, and whether the strategy below retries them.
fn faults() -> Vec<(Fault, f64, bool)> {
    vec![
        (Fault::Code(-32005), 0.05, true),
        (Fault::Code(2002), 0.03, false),
        (Fault::Status(503), 0.03, true),
        (Fault::Status(429), 0.02, true),
        (Fault::StatusRetryAfter(429, 1), 0.02, true),
        (Fault::StatusRetryAfter(503, 2), 0.02, true),
        (Fault::DropBeforeRead, 0.03, true),
        (Fault::DropAfterRead, 0.03, true),
        (Fault::Delay(HOUR), 0.04, true),
        (Fault::Malformed, 0.03, false),
    ]
}

fn strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(RETRIES, Duration::ZERO))
        .codes([-32005])
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS))
        .non_idempotent(["send"])
}

/// What the client got for one call.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Success,
    ErrorCode(i64),
    Status(u16),
    Timeout,
    Reset,
    Decode,
    Hung,
    Other(String),
}

/// What the client should get when this was the server's last word on the call.
fn outcome_of(fault: Option<Fault>) -> Outcome {
    match fault {
        None => Outcome::Success,
        Some(Fault::Code(code)) => Outcome::ErrorCode(code),
        Some(Fault::Status(s) | Fault::StatusRetryAfter(s, _)) => Outcome::Status(s),
        Some(Fault::DropBeforeRead | Fault::DropAfterRead) => Outcome::Reset,
        Some(Fault::Delay(_)) => Outcome::Timeout,
        Some(Fault::Malformed) => Outcome::Decode,
        Some(other) => Outcome::Other(format!("{other:?}")),
    }
}

fn is_retryable(fault: Fault) -> bool {
    faults()
        .iter()
        .find(|(f, _, _)| *f == fault)
        .is_some_and(|(_, _, retryable)| *retryable)
}

fn method_of(id: i64) -> &'static str {
    if id % SEND_EVERY == 0 { "send" } else { "sum" }
}

#[tokio::test(start_paused = true)]
async fn chaos_10k_calls_reconcile_with_the_server_log() {
    let wall = std::time::Instant::now();
    let server = FlakyServer::start().await.unwrap();
    server.handle("send", |params| Ok(params.clone()));
    let mut chaos = Chaos::new(0x5eed);
    for (fault, rate, _) in faults() {
        chaos = chaos.rate(fault, rate);
    }
    let fault_rate = chaos.total_rate();
    assert!((fault_rate - 0.30).abs() < 1e-9);
    server.chaos(chaos);

    // Retries per call id, as the client saw them.
    let retries: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let hook = Arc::clone(&retries);
    let strategy = strategy().on_retry(move |e: &RetryEvent<'_>| {
        if let Some(Id::Number(id)) = e.id() {
            *hook.lock().unwrap().entry(*id).or_default() += 1;
        }
    });
    let svc = common::stack(&server, strategy);

    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut calls = JoinSet::new();
    for id in 0..CALLS {
        let svc = svc.clone();
        let permits = Arc::clone(&permits);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let req = Request::new(method_of(id), json!([id, 1])).with_id(id);
            let outcome = match tokio::time::timeout(GUARD, svc.oneshot(req)).await {
                Err(_) => Outcome::Hung,
                Ok(Ok(resp)) => {
                    assert_eq!(
                        resp.id(),
                        &Id::Number(id),
                        "answered with another call's id"
                    );
                    match resp.error() {
                        Some(e) => Outcome::ErrorCode(e.code()),
                        None => {
                            let expected = if method_of(id) == "send" {
                                json!([id, 1])
                            } else {
                                json!(id + 1)
                            };
                            assert_eq!(resp.result(), Some(&expected), "call {id}");
                            Outcome::Success
                        }
                    }
                }
                Ok(Err(e)) if e.is_timeout() => Outcome::Timeout,
                Ok(Err(e)) if e.is_status() => Outcome::Status(e.status().unwrap().as_u16()),
                Ok(Err(e)) if e.is_decode() => Outcome::Decode,
                Ok(Err(e)) if e.is_transport() || e.is_body() => Outcome::Reset,
                Ok(Err(e)) => Outcome::Other(e.to_string()),
            };
            (id, outcome)
        });
    }
    let mut outcomes: HashMap<i64, Outcome> = HashMap::new();
    let mut answered_twice = 0;
    while let Some(joined) = calls.join_next().await {
        let (id, outcome) = joined.expect("a call task panicked");
        if outcomes.insert(id, outcome).is_some() {
            answered_twice += 1;
        }
    }
    let lost = (0..CALLS).filter(|id| !outcomes.contains_key(id)).count();
    let hung = outcomes.values().filter(|o| **o == Outcome::Hung).count();

    // The server's side, grouped per call.
    let log = server.log();
    let mut per_call: HashMap<i64, Vec<Option<Fault>>> = HashMap::new();
    let mut unread = 0;
    let mut injected: BTreeMap<String, usize> = BTreeMap::new();
    for LogEntry {
        method, id, fault, ..
    } in &log
    {
        if let Some(fault) = fault {
            *injected.entry(format!("{fault:?}")).or_default() += 1;
        }
        match (method, id) {
            (Some(_), Some(Id::Number(id))) => per_call.entry(*id).or_default().push(*fault),
            (None, None) if *fault == Some(Fault::DropBeforeRead) => unread += 1,
            other => panic!("unexpected log entry {other:?}"),
        }
    }
    let retries = retries.lock().unwrap().clone();
    let attempts = |id: i64| 1 + retries.get(&id).copied().unwrap_or(0);
    let client_attempts: usize = (0..CALLS).map(attempts).sum();
    let server_attempts: usize = per_call.values().map(Vec::len).sum::<usize>() + unread;

    for id in 0..CALLS {
        let outcome = &outcomes[&id];
        let seen = per_call.get(&id).map(Vec::as_slice).unwrap_or_default();
        let sent = attempts(id);
        assert!(sent <= 1 + RETRIES, "call {id}: {sent} attempts");
        assert!(
            seen.len() <= sent,
            "call {id}: server saw {seen:?}, client sent {sent}"
        );
        // An answer (or a non-retryable fault) ends the call: only the last entry may be one.
        if let Some((_, earlier)) = seen.split_last() {
            for fault in earlier {
                assert!(
                    fault.is_some_and(is_retryable),
                    "call {id}: retried after {fault:?} ({seen:?})"
                );
            }
        }
        if method_of(id) == "send" {
            assert!(
                seen.len() <= 1,
                "non-idempotent call {id} re-sent: {seen:?}"
            );
            assert_eq!(sent, 1, "non-idempotent call {id} retried");
        }
        let last = seen.last().copied();
        if seen.len() == sent {
            let expected = last.map_or(Outcome::Reset, outcome_of);
            assert_eq!(outcome, &expected, "call {id}: {seen:?}");
        } else {
            // Some attempt was dropped before the server read it: the last one, or an
            // earlier one.
            assert!(
                *outcome == Outcome::Reset || last.is_some_and(|f| *outcome == outcome_of(f)),
                "call {id}: {outcome:?} after {seen:?} and {} unread",
                sent - seen.len()
            );
        }
        if *outcome == Outcome::Success {
            assert_eq!(
                last,
                Some(None),
                "call {id}: success must be the server's last answer"
            );
        }
    }

    // What the rates predict: per attempt, p_ok answers, p_retry fails in a way the
    // strategy retries; an idempotent call gets 1 + RETRIES tries, a `send` one.
    let p_retry: f64 = faults().iter().filter(|f| f.2).map(|f| f.1).sum();
    let p_ok = 1.0 - fault_rate;
    let p_idempotent = p_ok * (0..=RETRIES).map(|k| p_retry.powi(k as i32)).sum::<f64>();
    let sends = (0..CALLS).filter(|id| method_of(*id) == "send").count() as f64;
    let expected = (p_idempotent * (CALLS as f64 - sends) + p_ok * sends) / CALLS as f64;
    let successes = outcomes
        .values()
        .filter(|o| **o == Outcome::Success)
        .count();
    let observed = successes as f64 / CALLS as f64;
    let mut by_outcome: BTreeMap<&Outcome, usize> = BTreeMap::new();
    for o in outcomes.values() {
        *by_outcome.entry(o).or_default() += 1;
    }

    println!(
        "chaos: {CALLS} calls, concurrency {CONCURRENCY}, {RETRIES} retries, fault rate {fault_rate:.2}"
    );
    println!("chaos: faults injected by kind: {injected:?}");
    println!(
        "chaos: attempts {client_attempts} (client) = {server_attempts} (server: {} read + {unread} unread), retries {}",
        server_attempts - unread,
        client_attempts - CALLS as usize
    );
    println!("chaos: outcomes {by_outcome:?}");
    println!("chaos: lost {lost}, hung {hung}, answered twice {answered_twice}");
    println!(
        "chaos: success rate expected {:.4}, observed {observed:.4} (tolerance ±0.015)",
        expected
    );
    println!("chaos: wall time {:?}", wall.elapsed());

    assert_eq!(lost, 0);
    assert_eq!(hung, 0);
    assert_eq!(answered_twice, 0);
    assert_eq!(
        client_attempts, server_attempts,
        "every attempt reached the server once"
    );
    assert!(
        (observed - expected).abs() < 0.015,
        "success rate {observed:.4}, predicted {expected:.4}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_storm_is_bounded_by_a_shared_budget() {
    const STORM_CALLS: usize = 2_000;
    let server = FlakyServer::start().await.unwrap();
    // Every call fails, half with a retryable code, half with a retryable status.
    server.chaos(
        Chaos::new(11)
            .rate(Fault::Code(-32005), 0.5)
            .rate(Fault::Status(503), 0.5),
    );
    // 10 % of calls, plus a reserve of 1 retry per second over a 10 s window.
    let (ttl, min_per_sec, ratio) = (Duration::from_secs(10), 1, 0.1);
    let budget = Arc::new(TpsBudget::new(ttl, min_per_sec, ratio));
    let strategy = RetryStrategy::new(PeriodicBackoff::new(RETRIES, Duration::ZERO))
        .codes([-32005])
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .budget(budget);
    let svc = common::stack(&server, strategy);
    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut calls = JoinSet::new();
    for id in 0..STORM_CALLS {
        let svc = svc.clone();
        let permits = Arc::clone(&permits);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let req = Request::new("sum", json!([1])).with_id(id as i64);
            tokio::time::timeout(GUARD, svc.oneshot(req)).await
        });
    }
    let mut failed = 0;
    while let Some(joined) = calls.join_next().await {
        let result = joined.unwrap().expect("no call hangs");
        match result {
            Ok(resp) => assert_eq!(resp.error().map(|e| e.code()), Some(-32005)),
            Err(e) => assert_eq!(e.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE)),
        }
        failed += 1;
    }
    assert_eq!(failed, STORM_CALLS);
    let attempts = server.calls("sum");
    let reserve = min_per_sec as usize * ttl.as_secs() as usize;
    let bound = STORM_CALLS + reserve + (STORM_CALLS as f64 * f64::from(ratio)).round() as usize;
    let unbudgeted = STORM_CALLS * (1 + RETRIES);
    println!(
        "storm: {STORM_CALLS} calls, {attempts} attempts (bound {bound}, {unbudgeted} without a budget), amplification {:.3}",
        attempts as f64 / STORM_CALLS as f64
    );
    assert!(attempts <= bound, "{attempts} attempts > bound {bound}");
    assert!(
        attempts >= bound - 1,
        "the budget is spent, not hoarded: {attempts} of {bound}"
    );
}

#[tokio::test(start_paused = true)]
async fn chaos_log_records_scripted_calls_unread_requests_and_batches() {
    use tower_jsonrpc_retry::jsonrpc::BatchRequest;
    use tower_jsonrpc_retry::test_util::Step;
    let server = FlakyServer::start().await.unwrap();
    server.chaos(Chaos::new(1).rate(Fault::Code(7), 1.0));
    // A scripted step wins over chaos, and is logged with no fault.
    server.script("sum", [Step::ok()]);
    let svc = common::stack(&server, RetryStrategy::none());
    let sum = |id: i64| Request::new("sum", json!([1, 2])).with_id(id);
    let resp = svc.clone().oneshot(sum(1)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    let resp = svc.clone().oneshot(sum(2)).await.unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(7));
    // Each item of a batch draws.
    let batch = BatchRequest::new(vec![sum(3), Request::new("note", json!([]))]);
    let resp = svc.clone().oneshot(batch).await.unwrap();
    assert_eq!(resp.items()[0].error().map(|e| e.code()), Some(7));
    // A drop before the read comes before any script: the server has not read the method.
    server.chaos(Chaos::new(1).rate(Fault::DropBeforeRead, 1.0));
    server.script("sum", [Step::ok()]);
    let err = svc.clone().oneshot(sum(4)).await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert_eq!(server.calls("sum"), 3, "the unread request took no step");
    let log: Vec<_> = server
        .log()
        .into_iter()
        .map(|e| (e.method, e.id, e.fault))
        .collect();
    let sum_call = |id: i64, fault| (Some("sum".to_owned()), Some(Id::Number(id)), fault);
    assert_eq!(
        log,
        [
            sum_call(1, None),
            sum_call(2, Some(Fault::Code(7))),
            sum_call(3, Some(Fault::Code(7))),
            (Some("note".to_owned()), None, Some(Fault::Code(7))),
            (None, None, Some(Fault::DropBeforeRead)),
        ]
    );
    server.reset();
    assert!(server.log().is_empty());
    let resp = svc.oneshot(sum(5)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)), "reset turns chaos off");
    assert_eq!(server.log().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Batches, and the HTTP level: every attempt recorded below the retry layer, every
// attempt the server read reconciled with it, every final answer with the attempts.
// ---------------------------------------------------------------------------------------

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower_jsonrpc_retry::JsonRpcRetryLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse};

/// A unit of work (a single call or a batch) is numbered `u`; its items are `u * 10 + k`.
/// The key of an item is also the first of its params, so the server's bodies name it.
const ITEMS_PER_UNIT: i64 = 10;
const UNIT_CONCURRENCY: usize = 32;

fn unit_of(key: i64) -> i64 {
    key / ITEMS_PER_UNIT
}

/// A non-idempotent `send` now and then; otherwise `sum`.
fn item_method(key: i64) -> &'static str {
    if key % 7 == 3 { "send" } else { "sum" }
}

/// Some later items of a batch are notifications (the first never is), and items 8 and
/// 9 always are: the units of notifications alone.
fn is_notification(key: i64) -> bool {
    let k = key % ITEMS_PER_UNIT;
    k != 0 && (key % 9 == 4 || k >= 8)
}

/// The keys of a unit of notifications only: a single one, or a batch of two.
fn notification_keys(u: i64, batch: bool) -> Vec<i64> {
    let first = if batch { 8 } else { 9 };
    (first..ITEMS_PER_UNIT)
        .map(|k| u * ITEMS_PER_UNIT + k)
        .collect()
}

fn item_request(key: i64) -> Request {
    let req = Request::new(item_method(key), json!([key, 1]));
    if is_notification(key) {
        req
    } else {
        req.with_id(key)
    }
}

fn expected_result(key: i64) -> serde_json::Value {
    if item_method(key) == "send" {
        json!([key, 1])
    } else {
        json!(key + 1)
    }
}

/// The keys of batch `u`: 1 to 6 items.
fn batch_keys(u: i64) -> Vec<i64> {
    let len = 1 + (u * 7 + u / 3) % 6;
    (0..len).map(|k| u * ITEMS_PER_UNIT + k).collect()
}

/// One call's answer inside a JSON-RPC response.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Result(serde_json::Value),
    Code(i64),
}

/// What one attempt got: answers by call key, or a failure of the whole exchange.
#[derive(Clone, Debug, PartialEq)]
enum Got {
    Answers(BTreeMap<i64, Answer>),
    Status(u16),
    Timeout,
    Reset,
    Decode,
    Hung,
    Other(String),
}

/// The attempts of one unit, as the service under the retry layer saw them: the keys
/// sent, and what came back (`Timeout` until something does: a dropped attempt).
type Sent = Arc<Mutex<HashMap<i64, Vec<(Vec<i64>, Got)>>>>;

fn record_sent(sent: &Sent, keys: Vec<i64>) -> (i64, usize) {
    let unit = unit_of(keys[0]);
    let mut sent = sent.lock().unwrap();
    let attempts = sent.entry(unit).or_default();
    attempts.push((keys, Got::Timeout));
    (unit, attempts.len() - 1)
}

fn record_got(sent: &Sent, (unit, at): (i64, usize), got: Got) {
    sent.lock().unwrap().get_mut(&unit).unwrap()[at].1 = got;
}

fn key_of_params(item: &serde_json::Value) -> i64 {
    item["params"][0]
        .as_i64()
        .expect("every item's first param is its key")
}

/// The keys a request body names, in order.
fn keys_of_body(body: &[u8]) -> Vec<i64> {
    items_of_body(body)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// The items of a request body, in order: each one's key and the id it was sent with
/// (`None` for a notification).
fn items_of_body(body: &[u8]) -> Vec<(i64, Option<Id>)> {
    let item = |item: &serde_json::Value| {
        let id = item.get("id").map(|id| {
            Id::Number(
                id.as_i64()
                    .unwrap_or_else(|| panic!("a numeric id: {item}")),
            )
        });
        (key_of_params(item), id)
    };
    match serde_json::from_slice::<serde_json::Value>(body).expect("a JSON body") {
        serde_json::Value::Array(items) => items.iter().map(item).collect(),
        single => vec![item(&single)],
    }
}

fn answers_of_batch(resp: &BatchResponse) -> Got {
    let mut answers = BTreeMap::new();
    for item in resp.items() {
        let Id::Number(key) = item.id() else {
            return Got::Other(format!("an answer with id {:?}", item.id()));
        };
        let answer = match item.error() {
            Some(e) => Answer::Code(e.code()),
            None => Answer::Result(item.result().cloned().unwrap_or_default()),
        };
        if answers.insert(*key, answer).is_some() {
            return Got::Other(format!("call {key} answered twice"));
        }
    }
    Got::Answers(answers)
}

fn got_of_codec_error(e: &tower_jsonrpc_retry::codec::Error) -> Got {
    if e.is_timeout() {
        Got::Timeout
    } else if e.is_status() {
        Got::Status(e.status().unwrap().as_u16())
    } else if e.is_decode() {
        Got::Decode
    } else if e.is_transport() || e.is_body() {
        Got::Reset
    } else {
        Got::Other(e.to_string())
    }
}

/// The answers in an HTTP response body: a JSON-RPC response or an array of them; `None`
/// if it is neither.
fn answers_of_body(body: &[u8]) -> Option<Got> {
    answers_of_body_by(body, Some)
}

/// [`answers_of_body`], each answer's id turned into its call's key by `key_of_id`.
fn answers_of_body_by(body: &[u8], key_of_id: impl Fn(i64) -> Option<i64>) -> Option<Got> {
    if body.is_empty() {
        return Some(Got::Answers(BTreeMap::new()));
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        single @ serde_json::Value::Object(_) => vec![single],
        _ => return None,
    };
    let mut answers = BTreeMap::new();
    for item in &items {
        let Some(key) = item["id"].as_i64().and_then(&key_of_id) else {
            return Some(Got::Other(format!("an answer without a call's id: {item}")));
        };
        let answer = match item.get("error") {
            Some(e) => Answer::Code(e["code"].as_i64()?),
            None => Answer::Result(item.get("result")?.clone()),
        };
        if answers.insert(key, answer).is_some() {
            return Some(Got::Other(format!("call {key} answered twice")));
        }
    }
    Some(Got::Answers(answers))
}

/// Records every batch the retry layer sends and what comes back, at the JSON-RPC level.
#[derive(Clone)]
struct Tap<S> {
    inner: S,
    sent: Sent,
}

impl<S> tower::Service<BatchRequest> for Tap<S>
where
    S: tower::Service<
            BatchRequest,
            Response = BatchResponse,
            Error = tower_jsonrpc_retry::codec::Error,
        >,
    S::Future: Send + 'static,
{
    type Response = BatchResponse;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<BatchResponse, S::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, batch: BatchRequest) -> Self::Future {
        let keys = batch
            .requests()
            .iter()
            .map(|r| r.params().expect("params")[0].as_i64().unwrap())
            .collect();
        let at = record_sent(&self.sent, keys);
        let sent = Arc::clone(&self.sent);
        let call = self.inner.call(batch);
        Box::pin(async move {
            let result = call.await;
            let got = match &result {
                Ok(resp) => answers_of_batch(resp),
                Err(e) => got_of_codec_error(e),
            };
            record_got(&sent, at, got);
            result
        })
    }
}

/// Records every HTTP request the layer sends and what comes back, under the HTTP level.
#[derive(Clone)]
struct HttpTap<S> {
    inner: S,
    sent: Sent,
}

impl<S, RB> tower::Service<http::Request<Full<Bytes>>> for HttpTap<S>
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: std::fmt::Debug,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::Response<Full<Bytes>>, S::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Full<Bytes>>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let bytes = futures_bytes(body);
        let keys = keys_of_body(&bytes);
        let at = record_sent(&self.sent, keys.clone());
        let sent = Arc::clone(&self.sent);
        let call = self
            .inner
            .call(http::Request::from_parts(parts, Full::new(bytes)));
        Box::pin(async move {
            let (head, body) = match call.await {
                Ok(resp) => resp.into_parts(),
                Err(e) => {
                    record_got(&sent, at, Got::Reset);
                    return Err(e);
                }
            };
            // No fault of `faults()` breaks a body off after its head; one that did would
            // need the tap to hand the layer a body that fails, not an empty one.
            let body = match body.collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => panic!("a body broke off after its head ({e:?}): not a fault here"),
            };
            let got = if !head.status.is_success() {
                Got::Status(head.status.as_u16())
            } else if keys.iter().all(|k| is_notification(*k)) {
                // Its body is not read.
                Got::Answers(BTreeMap::new())
            } else {
                answers_of_body(&body).unwrap_or(Got::Decode)
            };
            record_got(&sent, at, got);
            Ok(http::Response::from_parts(head, Full::new(body)))
        })
    }
}

/// The bytes of a `Full` body, which are there at once.
fn futures_bytes(mut body: Full<Bytes>) -> Bytes {
    use http_body::Body;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// What the server's answer to one request should have been, from the faults it drew
/// for its items (`(key, fault)`, in the body's order): a delay holds the whole answer
/// past the attempt timeout; else the first item with an HTTP-level fault decides the
/// whole answer; else each call is answered.
fn predicted(items: &[(i64, Option<Fault>)]) -> Got {
    let got = predicted_exchange(items);
    // A 2xx answer to notifications alone is not read.
    if got == Got::Decode && items.iter().all(|(k, _)| is_notification(*k)) {
        return Got::Answers(BTreeMap::new());
    }
    got
}

fn predicted_exchange(items: &[(i64, Option<Fault>)]) -> Got {
    if items
        .iter()
        .any(|(_, f)| matches!(f, Some(Fault::Delay(_))))
    {
        return Got::Timeout;
    }
    for (_, fault) in items {
        match fault {
            Some(Fault::Status(s) | Fault::StatusRetryAfter(s, _)) => return Got::Status(*s),
            Some(Fault::DropAfterRead) => return Got::Reset,
            Some(Fault::Malformed) => return Got::Decode,
            _ => {}
        }
    }
    let mut answers = BTreeMap::new();
    for (key, fault) in items {
        if is_notification(*key) {
            continue;
        }
        let answer = match fault {
            None => Answer::Result(expected_result(*key)),
            Some(Fault::Code(c)) => Answer::Code(*c),
            other => panic!("item {key}: unexpected fault {other:?}"),
        };
        answers.insert(*key, answer);
    }
    Got::Answers(answers)
}

/// The keys the policy must send next after an attempt of `keys` got `got`, or `None`
/// when it must not retry.
fn next_keys(keys: &[i64], got: &Got) -> Option<Vec<i64>> {
    match got {
        Got::Answers(answers) => {
            let again: Vec<i64> = keys
                .iter()
                .copied()
                .filter(|k| {
                    item_method(*k) != "send"
                        && answers.get(k).is_some_and(|a| *a == Answer::Code(-32005))
                })
                .collect();
            (!again.is_empty()).then_some(again)
        }
        Got::Timeout | Got::Reset | Got::Status(503 | 429) => {
            let non_idempotent = keys.iter().any(|k| item_method(*k) == "send");
            (!non_idempotent).then(|| keys.to_vec())
        }
        _ => None,
    }
}

/// How the final answer is made from the attempts.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    /// A batch through `JsonRpcRetryLayer::new`: gathered answers after any answer.
    Batch,
    /// A single call's bytes through the HTTP level: the last exchange, as it came.
    HttpSingle,
    /// A batch's bytes through the HTTP level: gathered answers after any answer, or the
    /// last exchange's status.
    HttpBatch,
    /// A single call of jsonrpsee's `HttpClient` over the HTTP level: as `HttpSingle`,
    /// with jsonrpsee's own ids.
    JsonrpseeSingle,
    /// A batch of jsonrpsee's `HttpClient` over the HTTP level: as `HttpBatch`, with
    /// jsonrpsee's own ids.
    JsonrpseeBatch,
}

impl Level {
    /// Whether the caller numbers its calls itself (else each call's id is its key).
    fn own_ids(self) -> bool {
        matches!(self, Level::JsonrpseeSingle | Level::JsonrpseeBatch)
    }
}

/// What the caller must get, from the attempts as the service under the layer saw them.
fn expected_final(level: Level, attempts: &[(Vec<i64>, Got)]) -> Got {
    let (_, last) = attempts.last().expect("at least one attempt");
    let mut gathered = BTreeMap::new();
    let mut answered = false;
    for (_, got) in attempts {
        if let Got::Answers(answers) = got {
            answered = true;
            gathered.extend(answers.iter().map(|(k, a)| (*k, a.clone())));
        }
    }
    match (level, last) {
        (Level::HttpSingle | Level::JsonrpseeSingle, last) => last.clone(),
        (_, Got::Answers(_)) => Got::Answers(gathered),
        (_, _) if answered => Got::Answers(gathered),
        (_, last) => last.clone(),
    }
}

/// What [`reconcile`] counted.
struct Tally {
    attempts: usize,
    retries: usize,
    /// Retries that re-sent only some of a batch's items.
    partial: usize,
    /// Attempts the server never read.
    unread: usize,
}

/// Reconciles every unit: the caller's answers with the attempts, the attempts with the
/// policy's rules and with the server's log. Returns (attempts, retries, unread).
fn reconcile(
    server: &FlakyServer,
    sent: &Sent,
    units: &BTreeMap<i64, (Level, Vec<i64>)>,
    finals: &HashMap<i64, Got>,
) -> Tally {
    // The server's side: the log, split by the bodies it read (one group per request,
    // in the order they were read); the requests it did not read apart.
    let log = server.log();
    let bodies = server.bodies();
    let mut entries = log.iter().filter(|e| {
        let unread = e.method.is_none();
        if unread {
            assert_eq!(e.fault, Some(Fault::DropBeforeRead), "{e:?}");
        }
        !unread
    });
    let unread = log.iter().filter(|e| e.method.is_none()).count();
    // Per unit: the keys of each request read, the answer its faults call for, and the
    // faults.
    type Read = (Vec<i64>, Got, Vec<(i64, Option<Fault>)>);
    let mut groups: HashMap<i64, Vec<Read>> = HashMap::new();
    for body in &bodies {
        let sent_items = items_of_body(body);
        let keys: Vec<i64> = sent_items.iter().map(|(key, _)| *key).collect();
        let unit = unit_of(keys[0]);
        // jsonrpsee numbers its calls itself; every other caller here uses the keys.
        let own_ids = units.get(&unit).is_some_and(|(level, _)| level.own_ids());
        let items: Vec<(i64, Option<Fault>)> = sent_items
            .iter()
            .map(|(key, sent_id)| {
                let entry = entries.next().expect("a log entry per item read");
                assert_eq!(
                    entry.method.as_deref(),
                    Some(item_method(*key)),
                    "{entry:?}"
                );
                if !own_ids {
                    let id = (!is_notification(*key)).then_some(Id::Number(*key));
                    assert_eq!(sent_id, &id, "item {key} sent with another id");
                }
                assert_eq!(&entry.id, sent_id, "{entry:?}");
                (*key, entry.fault)
            })
            .collect();
        assert!(keys.iter().all(|k| unit_of(*k) == unit), "{keys:?}");
        groups
            .entry(unit)
            .or_default()
            .push((keys, predicted(&items), items));
    }
    assert!(entries.next().is_none(), "a log entry for no body");

    let sent = sent.lock().unwrap();
    let mut client_unread = 0;
    let mut attempts_total = 0;
    let mut partial = 0;
    for (unit, (level, keys)) in units {
        let attempts = sent.get(unit).map(Vec::as_slice).unwrap_or_default();
        let read = groups.remove(unit).unwrap_or_default();
        attempts_total += attempts.len();
        let context = || format!("unit {unit} ({keys:?}): sent {attempts:?}, server read {read:?}");
        assert!(!attempts.is_empty(), "{}", context());
        assert!(
            attempts.len() <= 1 + RETRIES,
            "over 1 + retries: {}",
            context()
        );
        assert_eq!(&attempts[0].0, keys, "{}", context());
        // Each attempt after the first is the one the rules call for; the last is one
        // they would not retry, or the last allowed.
        for pair in attempts.windows(2) {
            let (keys, got) = &pair[0];
            let next = next_keys(keys, got);
            // A reset request may go again even with a `send` in it when it never left
            // (hyper handed it back unwritten); the check below still refuses a `send`
            // re-sent after the server read it.
            if next.as_ref() == Some(&pair[1].0) && pair[1].0.len() < keys.len() {
                partial += 1;
            }
            if next.as_ref() != Some(&pair[1].0) && !(*got == Got::Reset && pair[1].0 == *keys) {
                panic!("retried against the rules ({next:?}): {}", context());
            }
        }
        let (last_keys, last) = attempts.last().unwrap();
        if attempts.len() < 1 + RETRIES {
            assert!(
                next_keys(last_keys, last).is_none(),
                "gave up early: {}",
                context()
            );
        }
        // The server read a subsequence of the attempts, each as predicted; the others
        // are resets it never read.
        let mut groups = read.iter().peekable();
        let mut read_at = Vec::new();
        for (i, (keys, got)) in attempts.iter().enumerate() {
            match groups.peek() {
                Some((read_keys, predicted, _)) if read_keys == keys && predicted == got => {
                    groups.next();
                    read_at.push(i);
                }
                _ => {
                    assert_eq!(
                        got,
                        &Got::Reset,
                        "attempt {i} unlike the server's: {}",
                        context()
                    );
                    client_unread += 1;
                }
            }
        }
        assert!(groups.next().is_none(), "server read more: {}", context());
        // A `send` the server read is never sent again.
        for &i in &read_at {
            for key in attempts[i].0.iter().filter(|k| item_method(**k) == "send") {
                assert!(
                    attempts[i + 1..]
                        .iter()
                        .all(|(keys, _)| !keys.contains(key)),
                    "non-idempotent {key} re-sent after the server read it: {}",
                    context()
                );
            }
        }
        let expected = expected_final(*level, attempts);
        let got = finals
            .get(unit)
            .unwrap_or_else(|| panic!("lost: {}", context()));
        assert_eq!(got, &expected, "final answer: {}", context());
        if let Got::Answers(answers) = got {
            let calls: Vec<i64> = keys
                .iter()
                .copied()
                .filter(|k| !is_notification(*k))
                .collect();
            assert_eq!(
                answers.keys().copied().collect::<Vec<_>>(),
                calls,
                "every call answered once: {}",
                context()
            );
            for (key, answer) in answers {
                if let Answer::Result(result) = answer {
                    assert_eq!(result, &expected_result(*key), "{}", context());
                }
            }
        }
    }
    assert!(groups.is_empty(), "the server read requests of no unit");
    assert_eq!(client_unread, unread, "every unread request was an attempt");
    Tally {
        attempts: attempts_total,
        retries: attempts_total - units.len(),
        partial,
        unread,
    }
}

fn chaos_server_faults(server: &FlakyServer, seed: u64) {
    server.handle("send", |params| Ok(params.clone()));
    let mut chaos = Chaos::new(seed);
    for (fault, rate, _) in faults() {
        chaos = chaos.rate(fault, rate);
    }
    server.chaos(chaos);
    // Batch answers come in reverse order: matched by id, never by position.
    server.reverse_batches(true);
}

/// Waits for every unit's final answer (each exactly once), reconciles them with the
/// server's log and prints the tally.
async fn settle(
    mut calls: JoinSet<(i64, Got)>,
    server: &FlakyServer,
    sent: &Sent,
    units: &BTreeMap<i64, (Level, Vec<i64>)>,
    name: &str,
) -> Tally {
    let mut finals = HashMap::new();
    while let Some(joined) = calls.join_next().await {
        let (u, got) = joined.expect("a task panicked");
        assert!(finals.insert(u, got).is_none(), "unit {u} answered twice");
    }
    let tally = reconcile(server, sent, units, &finals);
    summary(name, &finals, &tally);
    tally
}

fn summary(name: &str, finals: &HashMap<i64, Got>, tally: &Tally) {
    let Tally {
        attempts,
        retries,
        partial,
        unread,
    } = tally;
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for got in finals.values() {
        let kind = match got {
            Got::Answers(a) if a.values().all(|a| matches!(a, Answer::Result(_))) => {
                "answers (all results)".to_owned()
            }
            Got::Answers(_) => "answers (some errors)".to_owned(),
            other => format!("{other:?}"),
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    println!(
        "{name}: {} units, {attempts} attempts ({unread} unread by the server), {retries} retries ({partial} of part of a batch)",
        finals.len()
    );
    println!("{name}: final answers {by_kind:?}");
}

#[tokio::test(start_paused = true)]
async fn chaos_batches_reconcile_item_by_item_with_the_server_log() {
    const BATCHES: i64 = 500;
    let wall = std::time::Instant::now();
    let server = FlakyServer::start().await.unwrap();
    chaos_server_faults(&server, 0xba7c);
    let sent: Sent = Arc::default();
    let tap_sent = Arc::clone(&sent);
    let svc = tower::ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy()))
        .layer_fn(move |inner| Tap {
            inner,
            sent: Arc::clone(&tap_sent),
        })
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .layer(tower::timeout::TimeoutLayer::new(common::ATTEMPT_TIMEOUT))
        .service(common::http());

    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(UNIT_CONCURRENCY));
    let mut calls = JoinSet::new();
    let mut units = BTreeMap::new();
    for u in 0..BATCHES {
        let keys = if u % 10 == 7 {
            notification_keys(u, true)
        } else {
            batch_keys(u)
        };
        units.insert(u, (Level::Batch, keys.clone()));
        let svc = svc.clone();
        let permits = Arc::clone(&permits);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let batch = BatchRequest::new(keys.iter().map(|k| item_request(*k)).collect());
            let got = match tokio::time::timeout(GUARD, svc.oneshot(batch)).await {
                Err(_) => Got::Hung,
                Ok(Ok(resp)) => {
                    let ids: Vec<Id> = keys
                        .iter()
                        .filter(|k| !is_notification(**k))
                        .map(|k| Id::Number(*k))
                        .collect();
                    let answered: Vec<Id> = resp.items().iter().map(|r| r.id().clone()).collect();
                    assert_eq!(answered, ids, "batch {u}: the answers in the calls' order");
                    answers_of_batch(&resp)
                }
                Ok(Err(e)) => got_of_codec_error(&e),
            };
            (u, got)
        });
    }
    let tally = settle(calls, &server, &sent, &units, "chaos batches").await;
    println!("chaos batches: wall time {:?}", wall.elapsed());
    assert!(
        tally.retries > 100,
        "the faults made retries: {}",
        tally.retries
    );
    assert!(tally.partial > 20, "partial retries: {}", tally.partial);
}

#[tokio::test(start_paused = true)]
async fn chaos_at_the_http_level_reconciles_calls_and_batches_with_the_server_log() {
    const UNITS: i64 = 2_000;
    let wall = std::time::Instant::now();
    let server = FlakyServer::start().await.unwrap();
    chaos_server_faults(&server, 0x4779);
    let sent: Sent = Arc::default();
    let tap_sent = Arc::clone(&sent);
    let svc = tower::ServiceBuilder::new()
        .layer(
            JsonRpcRetryLayer::http::<Full<Bytes>>(strategy())
                .attempt_timeout(common::ATTEMPT_TIMEOUT),
        )
        .layer_fn(move |inner| HttpTap {
            inner,
            sent: Arc::clone(&tap_sent),
        })
        .service(common::http());

    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(UNIT_CONCURRENCY));
    let mut calls = JoinSet::new();
    let mut units = BTreeMap::new();
    for u in 0..UNITS {
        // Every fourth unit is a batch.
        let (level, keys) = if u % 16 == 4 {
            (Level::HttpBatch, notification_keys(u, true))
        } else if u % 4 == 0 {
            (Level::HttpBatch, batch_keys(u))
        } else if u % 8 == 2 {
            (Level::HttpSingle, notification_keys(u, false))
        } else {
            (Level::HttpSingle, vec![u * ITEMS_PER_UNIT])
        };
        units.insert(u, (level, keys.clone()));
        let body = if level == Level::HttpBatch {
            let items: Vec<Request> = keys.iter().map(|k| item_request(*k)).collect();
            serde_json::to_vec(&items).unwrap()
        } else {
            serde_json::to_vec(&item_request(keys[0])).unwrap()
        };
        let svc = svc.clone();
        let uri = server.uri();
        let keys = keys.clone();
        let permits = Arc::clone(&permits);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let req = http::Request::post(uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let got = match tokio::time::timeout(GUARD, svc.oneshot(req)).await {
                Err(_) => Got::Hung,
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    if status.is_success() && keys.iter().all(|k| is_notification(*k)) {
                        Got::Answers(BTreeMap::new())
                    } else if status.is_success() {
                        answers_of_body(&body).unwrap_or_else(|| {
                            Got::Other(format!("{status}: {}", String::from_utf8_lossy(&body)))
                        })
                    } else {
                        assert!(body.is_empty(), "unit {u}: {status} with {body:?}");
                        Got::Status(status.as_u16())
                    }
                }
                Ok(Err(e)) => {
                    if let Some(e) = e.downcast_ref::<tower_jsonrpc_retry::codec::Error>() {
                        got_of_codec_error(e)
                    } else if e.is::<hyper_util::client::legacy::Error>() {
                        Got::Reset
                    } else {
                        Got::Other(e.to_string())
                    }
                }
            };
            (u, got)
        });
    }
    let tally = settle(calls, &server, &sent, &units, "chaos http").await;
    println!("chaos http: wall time {:?}", wall.elapsed());
    assert!(
        tally.retries > 300,
        "the faults made retries: {}",
        tally.retries
    );
    assert!(tally.partial > 10, "partial retries: {}", tally.partial);
}

// ---------------------------------------------------------------------------------------
// jsonrpsee's `HttpClient` with the HTTP-level layer in its middleware slot: jsonrpsee
// numbers the calls itself, so every call is known by its key (its first param).
// ---------------------------------------------------------------------------------------

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::core::params::BatchRequestBuilder;
use jsonrpsee::http_client::HttpBody;
use jsonrpsee::http_client::transport::Error as TransportError;

/// Records every HTTP request the layer sends below jsonrpsee and what comes back, each
/// answer known by the key of the call whose id it carries.
#[derive(Clone)]
struct JsonrpseeTap<S> {
    inner: S,
    sent: Sent,
}

impl<S, RB> tower::Service<http::Request<HttpBody>> for JsonrpseeTap<S>
where
    S: tower::Service<
            http::Request<HttpBody>,
            Response = http::Response<RB>,
            Error = TransportError,
        >,
    S::Future: Send + 'static,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<tower_jsonrpc_retry::BoxError>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = TransportError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<http::Response<Full<Bytes>>, TransportError>>
                + Send,
        >,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<HttpBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let bytes = body_bytes(body);
        let items = items_of_body(&bytes);
        let keys: Vec<i64> = items.iter().map(|(key, _)| *key).collect();
        let key_of_id: HashMap<i64, i64> = items
            .iter()
            .filter_map(|(key, id)| match id {
                Some(Id::Number(id)) => Some((*id, *key)),
                None => None,
                other => panic!("jsonrpsee sent item {key} with id {other:?}"),
            })
            .collect();
        let calls = items.iter().filter(|(_, id)| id.is_some()).count();
        assert_eq!(key_of_id.len(), calls, "one id per call: {items:?}");
        let notifications_only = calls == 0;
        let at = record_sent(&self.sent, keys);
        let sent = Arc::clone(&self.sent);
        let call = self.inner.call(http::Request::from_parts(
            parts,
            HttpBody::from(bytes.to_vec()),
        ));
        Box::pin(async move {
            let (head, body) = match call.await {
                Ok(resp) => resp.into_parts(),
                Err(e) => {
                    record_got(&sent, at, Got::Reset);
                    return Err(e);
                }
            };
            let body = match body.collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => {
                    // Cut short: the layer retries it as a reset.
                    record_got(&sent, at, Got::Reset);
                    return Err(TransportError::Http(HttpError::Stream(e.into())));
                }
            };
            let got = if head.status.is_success() && notifications_only {
                // Its body is not read.
                Got::Answers(BTreeMap::new())
            } else if head.status.is_success() {
                answers_of_body_by(&body, |id| key_of_id.get(&id).copied()).unwrap_or(Got::Decode)
            } else {
                Got::Status(head.status.as_u16())
            };
            record_got(&sent, at, got);
            Ok(http::Response::from_parts(head, Full::new(body)))
        })
    }
}

/// The bytes of a jsonrpsee request body, which are there at once.
fn body_bytes(mut body: HttpBody) -> Bytes {
    use http_body::Body;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => panic!("a jsonrpsee body is whole at once"),
    }
}

/// What jsonrpsee returned for a call or a batch that did not get its answers, checked
/// against the crate docs' table (what jsonrpsee returns when retries end) and the
/// layer's (the inner service's error as it was, the layer's own through `map_err`).
fn got_of_jsonrpsee_error(err: &ClientError) -> Got {
    let ClientError::Transport(transport) = err else {
        return Got::Other(format!("{err:?}"));
    };
    // jsonrpsee 0.26 wraps a notification's error once more.
    if let Some(inner @ ClientError::Transport(_)) = transport.downcast_ref::<ClientError>() {
        return got_of_jsonrpsee_error(inner);
    }
    let Some(transport) = transport.downcast_ref::<TransportError>() else {
        return Got::Other(format!("not jsonrpsee's transport error: {transport:?}"));
    };
    match transport {
        // A failure status: a rejection with that status.
        TransportError::Rejected { status_code } => Got::Status(*status_code),
        TransportError::Http(HttpError::Stream(inner)) => {
            if let Some(e) = inner.downcast_ref::<tower_jsonrpc_retry::codec::Error>() {
                // The layer's own error, through `map_err`: a timeout, or an answer
                // that is not JSON-RPC (a status comes back as the server's answer,
                // which jsonrpsee rejects, a broken connection as the backend's error).
                let got = got_of_codec_error(e);
                if !matches!(got, Got::Timeout | Got::Decode) {
                    return Got::Other(format!("the layer's error for {got:?}: {e:?}"));
                }
                if got == Got::Timeout {
                    // Docs: tower's `Elapsed` is in the `source()` chain.
                    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(transport);
                    let mut elapsed = false;
                    while let Some(e) = source {
                        elapsed |= e.is::<tower::timeout::error::Elapsed>();
                        source = e.source();
                    }
                    assert!(elapsed, "no Elapsed in the chain of {err:?}");
                }
                got
            } else if inner.is::<hyper_util::client::legacy::Error>() {
                // The backend's own error, as it was.
                Got::Reset
            } else {
                Got::Other(format!("{inner:?}"))
            }
        }
        other => Got::Other(format!("{other:?}")),
    }
}

#[tokio::test(start_paused = true)]
async fn chaos_through_jsonrpsee_reconciles_calls_and_batches_with_the_server_log() {
    const UNITS: i64 = 1_000;
    let wall = std::time::Instant::now();
    let server = FlakyServer::start().await.unwrap();
    chaos_server_faults(&server, 0x75ee);
    let sent: Sent = Arc::default();
    let tap_sent = Arc::clone(&sent);
    let layer = JsonRpcRetryLayer::http(strategy())
        .attempt_timeout(common::ATTEMPT_TIMEOUT)
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    let client = jsonrpsee::http_client::HttpClientBuilder::default()
        // Never the one to end a call: the guard below tells a hang.
        .request_timeout(HOUR)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(layer)
                .layer_fn(move |inner| JsonrpseeTap {
                    inner,
                    sent: Arc::clone(&tap_sent),
                }),
        )
        .build(server.uri().to_string())
        .unwrap();
    let client = Arc::new(client);

    common::open_files_at_least(OPEN_FILES);
    let permits = Arc::new(Semaphore::new(UNIT_CONCURRENCY));
    let mut calls = JoinSet::new();
    let mut units = BTreeMap::new();
    for u in 0..UNITS {
        // Every fourth unit is a batch (jsonrpsee's batches hold calls only), every
        // eighth a notification.
        let (level, keys) = if u % 4 == 0 {
            let keys: Vec<i64> = batch_keys(u)
                .into_iter()
                .filter(|k| !is_notification(*k))
                .collect();
            (Level::JsonrpseeBatch, keys)
        } else if u % 8 == 2 {
            (Level::JsonrpseeSingle, notification_keys(u, false))
        } else {
            (Level::JsonrpseeSingle, vec![u * ITEMS_PER_UNIT])
        };
        units.insert(u, (level, keys.clone()));
        let client = Arc::clone(&client);
        let permits = Arc::clone(&permits);
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let call = async {
                if level == Level::JsonrpseeBatch {
                    let mut batch = BatchRequestBuilder::new();
                    for key in &keys {
                        batch
                            .insert(item_method(*key), jsonrpsee::rpc_params![*key, 1])
                            .unwrap();
                    }
                    match client.batch_request::<serde_json::Value>(batch).await {
                        Ok(resp) => {
                            assert_eq!(resp.len(), keys.len(), "unit {u}: {resp:?}");
                            let answers = keys.iter().zip(resp).map(|(key, entry)| {
                                let answer = match entry {
                                    Ok(result) => Answer::Result(result),
                                    Err(e) => Answer::Code(e.code().into()),
                                };
                                (*key, answer)
                            });
                            Got::Answers(answers.collect())
                        }
                        Err(e) => got_of_jsonrpsee_error(&e),
                    }
                } else if is_notification(keys[0]) {
                    let params = jsonrpsee::rpc_params![keys[0], 1];
                    match client.notification(item_method(keys[0]), params).await {
                        Ok(()) => Got::Answers(BTreeMap::new()),
                        Err(e) => got_of_jsonrpsee_error(&e),
                    }
                } else {
                    let key = keys[0];
                    let params = jsonrpsee::rpc_params![key, 1];
                    match client
                        .request::<serde_json::Value, _>(item_method(key), params)
                        .await
                    {
                        Ok(result) => Got::Answers(BTreeMap::from([(key, Answer::Result(result))])),
                        Err(ClientError::Call(e)) => {
                            Got::Answers(BTreeMap::from([(key, Answer::Code(e.code().into()))]))
                        }
                        Err(e) => got_of_jsonrpsee_error(&e),
                    }
                }
            };
            let got = tokio::time::timeout(GUARD, call).await.unwrap_or(Got::Hung);
            (u, got)
        });
    }
    let tally = settle(calls, &server, &sent, &units, "chaos jsonrpsee").await;
    println!("chaos jsonrpsee: wall time {:?}", wall.elapsed());
    assert!(
        tally.retries > 150,
        "the faults made retries: {}",
        tally.retries
    );
    assert!(tally.partial > 5, "partial retries: {}", tally.partial);
}
