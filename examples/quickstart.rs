//! The main job: a JSON-RPC stack that survives timeouts and error codes, against an
//! embedded loopback server. The first call times out once, then succeeds; the second,
//! with its own strategy, times out, then is answered 2001, then succeeds; the third
//! runs out of retries, and its error says so.
//!
//! The stack is built by hand here, layer by layer (pjrpc's strategy on tower's
//! `ServiceBuilder`). The typed client assembles the same stack in one line, with the
//! `RetryStrategy::transient()` preset: `Client::builder(uri).build()`, then
//! `client.call::<i64>("sum", (1, 2))` (the crate docs' quick start).
//!
//! `cargo run --example quickstart` waits as a real client would (a few seconds);
//! `cargo run --example quickstart -- --fast` divides every delay by 100.

mod common;

use std::time::Duration;

use common::{check, print_and_record_retry, retries};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::timeout::error::Elapsed;
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::{BackoffExt, ExponentialBackoff, Jitter, PeriodicBackoff};
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, GiveUpReason, JsonRpcRetryLayer, RetryReason, RetryStrategy};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let scale = common::time_scale();
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    // The stack's default: 3 retries, 1 s apart plus a gaussian jitter (mu 0.5 s,
    // sigma 0.1 s), on timeouts.
    let (on_default_retry, default_retries) = print_and_record_retry("default");
    // (`.map(..)` only scales the delays for `--fast`: leave it out.)
    let default = RetryStrategy::new(
        PeriodicBackoff::new(3, Duration::from_secs(1))
            .with_jitter(Jitter::gauss(0.5, 0.1)?)
            .map(move |d| d.mul_f64(scale)),
    )
    .retry_on_error::<Elapsed>()
    .on_retry(on_default_retry);

    // Each attempt gets 200 ms, response body included: the codec's `attempt_timeout`
    // (tower's `TimeoutLayer` under the codec would stop at the response head, and a body
    // that trickles in would hang the call). Its error has tower's `Elapsed` as its source.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(default))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(Duration::from_millis(200)))
        .service(Client::builder(TokioExecutor::new()).build_http());

    // 1. A call on the default strategy: the server times out once.
    server.script("sum", [Step::timeout()]);
    println!("sum(1, 2) on the stack's default strategy; the server times out once:");
    let resp = svc
        .clone()
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await?;
    let sum = resp.into_result()?;
    println!("  1 + 2 = {sum}");
    check(sum == json!(3), "1 + 2 = 3")?;
    check(server.calls("sum") == 2, "a timeout, then a result")?;
    // A wait is its nominal delay plus the jitter (mean 0.5 s, sigma 0.1 s): checked to
    // 4.5 sigmas either side of the mean, so a wait without the jitter fails too.
    let within =
        |d: Duration, nominal: f64| (d.as_secs_f64() / scale - (nominal + 0.5)).abs() <= 0.45;
    let timed_out = RetryReason::Error(std::any::type_name::<Elapsed>());
    let seen = retries(&default_retries);
    check(
        matches!(seen.as_slice(), [(1, reason, d)] if *reason == timed_out && within(*d, 1.0)),
        format_args!("one retry, on the timeout, after 1 s plus the jitter: {seen:?}"),
    )?;

    // 2. A call with its own strategy, in its extensions: exponential backoff (1 s, 2 s,
    // 4 s) with jitter, on timeouts and on the server's error code 2001. The server
    // times out, then answers 2001, then succeeds.
    server.script("sum", [Step::timeout(), Step::error(2001)]);
    let (on_own_retry, own_retries) = print_and_record_retry("own");
    let own = RetryStrategy::new(
        ExponentialBackoff::new(3, Duration::from_secs(1), 2.0)?
            .with_jitter(Jitter::gauss(0.5, 0.1)?)
            .map(move |d| d.mul_f64(scale)), // for `--fast`, as above
    )
    .codes([2001])
    .retry_on_error::<Elapsed>()
    .on_retry(on_own_retry);
    let mut req = Request::new("sum", json!([1, 2])).with_id(2);
    req.extensions_mut().insert(own);
    println!("sum(1, 2) with its own strategy; the server times out, then answers 2001:");
    let resp = svc.clone().oneshot(req).await?;
    let sum = resp.into_result()?;
    println!("  1 + 2 = {sum}");
    check(sum == json!(3), "1 + 2 = 3")?;
    let seen = retries(&own_retries);
    check(
        matches!(
            seen.as_slice(),
            [(1, first, d1), (2, RetryReason::Code(2001), d2)]
                if *first == timed_out && within(*d1, 1.0) && within(*d2, 2.0)
        ),
        format_args!(
            "a retry on the timeout after 1 s, then one on code 2001 after 2 s, each plus the jitter: {seen:?}"
        ),
    )?;
    check(
        retries(&default_retries).len() == 1,
        "the call's own strategy replaced the default's hook",
    )?;

    // 3. When retries run out: one retry, 100 ms after a timeout, and the server times
    // out twice. The caller gets the last error, which says how the retries ended
    // (`GaveUp`, also on an error answer's extensions).
    server.script("sum", [Step::timeout(), Step::timeout()]);
    let (on_once_retry, once_retries) = print_and_record_retry("once");
    let once = RetryStrategy::new(PeriodicBackoff::new(
        1,
        Duration::from_millis(100).mul_f64(scale), // for `--fast`, as above
    ))
    .retry_on_error::<Elapsed>()
    .on_retry(on_once_retry);
    let mut req = Request::new("sum", json!([1, 2])).with_id(3);
    req.extensions_mut().insert(once);
    println!("sum(1, 2) with one retry; the server times out twice, so this call fails:");
    let err = svc.oneshot(req).await.expect_err("two timeouts");
    println!("  error, as expected: {err}");
    let seen = retries(&once_retries);
    check(
        matches!(seen.as_slice(), [(1, reason, d)] if *reason == timed_out
            && (d.as_secs_f64() / scale - 0.1).abs() < 1e-6),
        format_args!("one retry, on the timeout, after 100 ms: {seen:?}"),
    )?;
    let gave_up = err.gave_up().map(|g| (g.retries(), g.reason()));
    check(
        gave_up == Some((1, GiveUpReason::Exhausted)),
        format_args!("given up after 1 retry, the backoff exhausted: {gave_up:?}"),
    )?;

    println!(
        "the server saw {} calls of sum; waits {}",
        server.calls("sum"),
        if scale < 1.0 {
            "divided by 100 (--fast)"
        } else {
            "in real time (--fast divides them by 100)"
        },
    );
    check(
        server.calls("sum") == 7,
        "2 attempts on the default strategy, 3 on the second call's own, 2 on the third's",
    )?;
    println!("every check passed");
    Ok(())
}
