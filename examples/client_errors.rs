//! The typed client on the default `transient()` preset, with a deadline for the whole
//! call, and what a caller gets when the retries end: a 503 retried to success; a
//! server that hangs, its last attempt cut short at the deadline; a 429 whose
//! `Retry-After` reaches past the deadline, handed back at once with its hint; an error
//! object the preset does not retry. An `on_give_up` hook counts the calls that failed,
//! by why the retries ended, as a metric would.
//!
//! `cargo run --example client_errors` waits as a real client would (under three
//! seconds); `cargo run --example client_errors -- --fast` divides the backoff's delays
//! by 100 (the timeouts and the deadline stay as they are, so it takes about two
//! seconds too).

mod common;

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{check, print_retry};
use tokio::time::Instant;
use tower_jsonrpc_retry::backoff::BackoffExt;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{
    BoxError, Client, ClientError, GiveUpEvent, GiveUpReason, RetryStrategy, http,
};

/// How long one attempt may take, and the whole call: not scaled by `--fast`, so that
/// the example holds on a busy machine.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);
const DEADLINE: Duration = Duration::from_secs(2);

/// The error of a call the example expects to fail.
fn failure<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Result<ClientError, BoxError> {
    match result {
        Err(err) => Ok(err),
        Ok(value) => {
            Err(format!("the example's claim does not hold: the call returned {value:?}").into())
        }
    }
}

/// What a caller would log: the variant, then every cause in the error's chain.
fn describe(err: &ClientError) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    // The preset (connect failures, timeouts, resets, 429/502/503/504; 3 retries from
    // 100 ms doubling, with jitter), bounded to 2 s for the whole call, each attempt to
    // 0.8 s. The hook counts the failures by reason. (`map_backoff` only scales the
    // backoff's delays for `--fast`: leave it out.)
    let gave_up: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let count = Arc::clone(&gave_up);
    let scale = common::time_scale();
    let strategy = RetryStrategy::transient()
        .map_backoff(|b| b.map(move |d| d.mul_f64(scale)))
        .max_elapsed(DEADLINE)
        .on_retry(print_retry("transient"))
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            if let Ok(mut count) = count.lock() {
                *count.entry(e.reason().to_string()).or_default() += 1;
            }
        });
    let client = Client::builder(server.uri())
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .retry(strategy)
        .build();

    // 1. Three 503s, then the answer: retried to success.
    server.script("sum", std::iter::repeat_n(Step::status(503), 3));
    println!("sum(1, 2); the server answers 503 three times:");
    let sum: i64 = client.call("sum", (1, 2)).await?;
    println!("  1 + 2 = {sum}, after {} attempts", server.calls("sum"));
    check(sum == 3 && server.calls("sum") == 4, "3, after 4 attempts")?;

    // 2. A server that never answers: the first two attempts time out at 0.8 s each, and
    // the third, started before the deadline, is cut short at it (2 s after the call).
    server.reset();
    server.script("sum", std::iter::repeat_n(Step::timeout(), 10));
    println!("sum(1, 2); the server hangs on every attempt:");
    let start = Instant::now();
    let err = failure(client.call::<i64>("sum", (1, 2)).await)?;
    let took = start.elapsed();
    println!("  after {took:.2?}: {}", describe(&err));
    let timed_out = matches!(&err, ClientError::Transport(e) if e.is_timeout());
    let ended = err.gave_up().map(|g| (g.retries(), g.reason()));
    check(
        timed_out
            && ended == Some((2, GiveUpReason::Deadline))
            && DEADLINE <= took
            && took < DEADLINE + ATTEMPT_TIMEOUT / 2,
        format_args!(
            "a timeout, the third attempt cut at the 2 s deadline: {ended:?} after {took:.2?}"
        ),
    )?;

    // 3. A 429 asking for 30 s, past the deadline: no wait is started; the caller gets
    // the status and the hint at once, to schedule the call again itself.
    server.reset();
    server.script("sum", [Step::status(429).retry_after("30")]);
    println!("sum(1, 2); the server answers 429 with Retry-After: 30:");
    let err = failure(client.call::<i64>("sum", (1, 2)).await)?;
    let status = err.status().map_or("none".into(), |s| s.to_string());
    let hint = err
        .retry_after()
        .map_or("none".into(), |d| format!("{d:?}"));
    println!("  {}; status {status}, try again in {hint}", describe(&err));
    check(
        err.status() == Some(http::StatusCode::TOO_MANY_REQUESTS)
            && err.retry_after() == Some(Duration::from_secs(30))
            && err.gave_up().map(|g| (g.retries(), g.reason()))
                == Some((0, GiveUpReason::Deadline))
            && server.calls("sum") == 1,
        "the 429 and its hint, at once, after 1 attempt",
    )?;

    // 4. An error object: the server's answer, which the preset does not retry.
    server.reset();
    server.script("sum", [Step::error_with(-32602, "invalid params", None)]);
    println!("sum(1, 2); the server answers -32602:");
    match client.call::<i64>("sum", (1, 2)).await {
        Err(ClientError::Rpc(e)) => {
            println!(
                "  the server said {} ({}), after 1 attempt",
                e.code(),
                e.message()
            );
            check(
                e.code() == -32602 && server.calls("sum") == 1,
                "the error object, not retried",
            )?;
        }
        other => return Err(format!("expected the server's error object: {other:?}").into()),
    }

    let counted = gave_up.lock().map(|c| c.clone()).unwrap_or_default();
    println!("the give-up hook counted: {counted:?}");
    check(
        counted.get("deadline") == Some(&2) && counted.get("not retryable") == Some(&1),
        "two calls ended at the deadline, one not retryable",
    )?;
    Ok(())
}
