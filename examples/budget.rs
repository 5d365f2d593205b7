//! Retry budgets: a server that fails every call, and 200 calls that each may retry 3
//! times. Without a budget every call retries to the end and the server takes four
//! times the load; with one shared [`TpsBudget`] (retries up to 10 % of calls, plus a
//! reserve of 1 retry per second over a 10 s window) the retry storm stays small, and
//! the give-up hook counts the calls it stopped.
//!
//! The retries here do not wait (a zero interval), so the run is quick either way;
//! `--fast` is accepted and changes nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::check;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tower::retry::budget::TpsBudget;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::test_util::FlakyServer;
use tower_jsonrpc_retry::{BoxError, Client, GiveUpEvent, GiveUpReason, RetryStrategy};

const CALLS: usize = 200;
/// Calls in flight at once.
const WORKERS: usize = 8;

/// Makes `CALLS` calls of `busy` (each answered with error 2001), `WORKERS` at a time,
/// and returns how many attempts the server saw.
async fn storm(server: &FlakyServer, strategy: RetryStrategy) -> Result<usize, BoxError> {
    server.reset();
    let client = Client::builder(server.uri()).retry(strategy).build();
    let mut workers = JoinSet::new();
    for _ in 0..WORKERS {
        let client = client.clone();
        workers.spawn(async move {
            for _ in 0..CALLS / WORKERS {
                match client.call::<Value>("busy", json!([])).await {
                    Ok(_) => return Err::<(), BoxError>("the server was meant to fail".into()),
                    // When retries end, a call returns the last error response.
                    Err(e) if e.rpc().is_some() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(server.calls("busy"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    server.handle("busy", |_: &Value| Err((2001, "busy".to_owned())));
    println!(
        "JSON-RPC server on {}; every call of busy answers 2001",
        server.uri()
    );

    // No wait between retries, only to keep the demonstration quick: a real strategy
    // waits (a budget bounds how many retries, a backoff how soon).
    let strategy = || RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)).codes([2001]);

    let without = storm(&server, strategy()).await?;
    println!(
        "without a budget: {CALLS} calls made {without} attempts (amplification {:.2}x): every call retried 3 times",
        without as f64 / CALLS as f64
    );
    check(without == 4 * CALLS, "every call retried 3 times")?;

    // One budget, shared by every request of the client (and by any other client
    // given the same Arc): every call deposits, every retry withdraws.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 0.1));
    // Counted with the give-up hook: the calls whose retries the budget refused.
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&refused);
    let strategy = strategy()
        .budget(budget)
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            if e.reason() == GiveUpReason::Budget {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    let with = storm(&server, strategy).await?;
    println!(
        "with a shared TpsBudget(10 s, 1 retry/s reserve, 10 %): {CALLS} calls made {with} attempts (amplification {:.2}x)",
        with as f64 / CALLS as f64
    );
    println!(
        "  that is {CALLS} first tries and {} retries, at most what the budget allows: its reserve (10) plus 10 % of the calls ({}); every other failure was final at once",
        with - CALLS,
        CALLS / 10
    );
    println!(
        "  the give-up hook: {} of the {CALLS} calls ended because the budget refused their next retry",
        refused.load(Ordering::Relaxed)
    );
    // The budget's bound: its reserve (10 s x 1 retry/s) and 10 % of the calls.
    let bound = CALLS + 10 + CALLS / 10;
    check(
        CALLS < with && with <= bound,
        format_args!("some retries, and no more attempts than the budget's {bound}"),
    )?;
    check(
        refused.load(Ordering::Relaxed) > 0,
        "the give-up hook saw the budget refuse retries",
    )?;
    Ok(())
}
