//! Chaos and retry storms: many concurrent calls through the whole stack against a
//! `FlakyServer` injecting seeded random faults, reconciled with the server's log.
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
