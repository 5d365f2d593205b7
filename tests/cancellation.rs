//! Cancellation and shutdown: dropped calls leave nothing running, send nothing more, and
//! take no more from a retry budget than the retries they made.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Recorder, secs, stack};
use serde_json::json;
use tokio::runtime::Handle;
use tower::ServiceExt;
use tower::retry::budget::{Budget, TpsBudget};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{ErrorClass, RetryStrategy};

/// A `TpsBudget` that counts what goes in and out.
#[derive(Debug)]
struct CountingBudget {
    inner: TpsBudget,
    deposits: AtomicUsize,
    withdrawals: AtomicUsize,
    refusals: AtomicUsize,
}

impl CountingBudget {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: TpsBudget::new(Duration::from_secs(10), 10, 0.2),
            deposits: AtomicUsize::new(0),
            withdrawals: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
        })
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.deposits.load(Ordering::SeqCst),
            self.withdrawals.load(Ordering::SeqCst),
            self.refusals.load(Ordering::SeqCst),
        )
    }
}

impl Budget for CountingBudget {
    fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::SeqCst);
        self.inner.deposit();
    }

    fn withdraw(&self) -> bool {
        let ok = self.inner.withdraw();
        let counter = if ok {
            &self.withdrawals
        } else {
            &self.refusals
        };
        counter.fetch_add(1, Ordering::SeqCst);
        ok
    }
}

fn sum(id: i64) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

fn strategy(budget: Arc<CountingBudget>) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, secs(10.0)))
        .codes([2001])
        .retry_on(ErrorClass::Timeout)
        .budget(budget)
}

fn alive_tasks() -> usize {
    Handle::current().metrics().num_alive_tasks()
}

/// Lets spawned tasks and connection closes run to their end.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(secs(0.01)).await;
}

#[tokio::test(start_paused = true)]
async fn calls_dropped_mid_wait_and_mid_flight_leave_nothing_behind() {
    let server = FlakyServer::start().await.unwrap();
    // Calls 0..8 fail once with a code, then wait 10 s; calls 8..16 hang on the server.
    server.script("sum", std::iter::repeat_n(Step::error(2001), 8));
    server.script("sum", std::iter::repeat_n(Step::timeout(), 8));
    let budget = CountingBudget::new();
    let rec = Recorder::default();
    let svc = stack(&server, rec.attach(strategy(Arc::clone(&budget))));
    let baseline = alive_tasks();

    let mut waiting = Vec::new();
    for id in 0..8 {
        waiting.push(tokio::spawn(svc.clone().oneshot(sum(id))));
        // One at a time, so they take the error steps in order.
        tokio::time::sleep(secs(0.001)).await;
    }
    let mut in_flight = Vec::new();
    for id in 8..16 {
        in_flight.push(tokio::spawn(svc.clone().oneshot(sum(id))));
    }
    tokio::time::sleep(secs(0.1)).await;
    assert_eq!(server.calls("sum"), 16);
    assert_eq!(rec.count(), 8, "calls 0..8 are in their first wait");
    assert_eq!(server.in_flight(), 8, "calls 8..16 are on the server");

    for call in waiting.into_iter().chain(in_flight) {
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
    }
    settle().await;
    assert_eq!(
        server.in_flight(),
        0,
        "the server dropped the pending answers"
    );
    assert_eq!(
        alive_tasks(),
        baseline,
        "no call task, no connection task left"
    );

    // An hour later, nothing more was sent and nothing more was taken from the budget.
    tokio::time::sleep(secs(3600.0)).await;
    assert_eq!(server.calls("sum"), 16);
    let (deposits, withdrawals, refusals) = budget.counts();
    assert_eq!(deposits, 16, "one per call");
    assert_eq!(withdrawals, 8, "one per retry scheduled, none leaked");
    assert_eq!(refusals, 0);
    assert_eq!(rec.count(), 8);

    // The budget still serves new calls: a retry is allowed and made.
    server.script("sum", [Step::error(2001)]);
    let resp = svc.oneshot(sum(99)).await.unwrap();
    assert_eq!(resp.result(), Some(&json!(3)));
    assert_eq!(budget.counts(), (17, 9, 0));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_service_lets_its_calls_in_flight_finish() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [
            Step::delay(secs(0.1)),
            Step::error(2001),
            Step::timeout(),
            Step::delay(secs(0.15)),
        ],
    );
    let budget = CountingBudget::new();
    let svc = stack(&server, strategy(Arc::clone(&budget)));
    let baseline = alive_tasks();
    let calls: Vec<_> = (0..4)
        .map(|id| tokio::spawn(svc.clone().oneshot(sum(id))))
        .collect();
    tokio::task::yield_now().await;
    drop(svc);
    let start = tokio::time::Instant::now();
    for (id, call) in calls.into_iter().enumerate() {
        let resp = tokio::time::timeout(secs(60.0), call)
            .await
            .expect("a call of a dropped service still ends")
            .unwrap()
            .unwrap();
        assert_eq!(resp.result(), Some(&json!(3)), "call {id}");
    }
    // The error and the timeout were retried after one 10 s wait, the timeout's after
    // its 200 ms attempt.
    assert_eq!(start.elapsed(), secs(10.2));
    assert_eq!(server.calls("sum"), 6);
    assert_eq!(budget.counts(), (4, 2, 0));
    settle().await;
    assert_eq!(server.in_flight(), 0);
    assert_eq!(
        alive_tasks(),
        baseline,
        "with the service and its calls gone, the client's connections closed"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_server_ends_calls_in_flight() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 4));
    // No retry on what a vanished server causes: the calls must end, not loop.
    let svc = stack(
        &server,
        RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0))).codes([2001]),
    );
    let calls: Vec<_> = (0..4)
        .map(|id| tokio::spawn(svc.clone().oneshot(sum(id))))
        .collect();
    tokio::time::sleep(secs(0.05)).await;
    assert_eq!(server.in_flight(), 4);
    server.shutdown().await;
    for call in calls {
        let err = tokio::time::timeout(secs(1.0), call)
            .await
            .expect("the call ends with its connection")
            .unwrap()
            .unwrap_err();
        assert!(err.is_transport() && !err.is_timeout(), "{err:?}");
    }
}
