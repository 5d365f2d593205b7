//! The HTTP-level layer for jsonrpsee: `JsonRpcRetryLayer::http(strategy)` in jsonrpsee's
//! `HttpClientBuilder::set_http_middleware`, so jsonrpsee's own `HttpClient` retries by
//! JSON-RPC error code, HTTP status and `Retry-After`, with nothing else changed.
//!
//! Four calls: one answered with the retryable code -32005 and then a result, one
//! answered `503 Service Unavailable` with `Retry-After: 1` and then a result, one
//! answered with a code the strategy does not list, which jsonrpsee returns as the
//! server's call error after one attempt, and one of a method with a strategy of its own
//! that retries that code. The ceiling on `Retry-After` is set to 1 s
//! (scaled by `--fast`), so the hint is honoured in full in real time and shortened with
//! `--fast`.
//!
//! jsonrpsee's calls carry no `http::Request` extensions, so every call follows the
//! layer's strategy: mark the methods that must not run twice with `non_idempotent`, and
//! give a method that needs other rules a strategy of its own with `for_method`, as
//! below.
//!
//! `cargo run --example jsonrpsee` waits as a real client would (a little over a second);
//! `cargo run --example jsonrpsee -- --fast` divides every delay by 100.

mod common;

use std::time::Duration;

use common::{check, print_and_record_retry, retries, secs};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::http_client::transport::Error as TransportError;
use jsonrpsee::rpc_params;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy, http};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    let (on_retry, seen) = print_and_record_retry("jsonrpsee");
    let ceiling = secs(1.0);
    // jsonrpsee's `request_timeout` bounds the whole call too, and ends it as its own
    // timeout: the strategy's deadline comes first, so that the layer gives up instead,
    // with the server's last answer when the deadline falls in a wait.
    let request_timeout = Duration::from_secs(30);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.1)))
        .codes([-32005])
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .retry_after_ceiling(ceiling)
        .max_elapsed(request_timeout - Duration::from_secs(5))
        // Writes: retried only after errors that prove they never reached the server.
        .non_idempotent(["eth_sendRawTransaction"])
        .on_retry(on_retry);
    // `echo` (a stand-in for a slow query) also retries 2002, with more room.
    let strategy = strategy.clone().for_method(
        "echo",
        strategy
            .codes([2002])
            .backoff(PeriodicBackoff::new(5, secs(0.2))),
    );

    // The layer's own errors (a body over its limit, say) become jsonrpsee's transport
    // error; the backend's errors pass through as they are.
    let layer = JsonRpcRetryLayer::http(strategy)
        .attempt_timeout(Duration::from_millis(500))
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    let client = HttpClientBuilder::default()
        .request_timeout(request_timeout)
        .set_http_middleware(ServiceBuilder::new().layer(layer))
        .build(server.uri().to_string())?;

    // 1. A retryable JSON-RPC error code, then a result.
    server.script("sum", [Step::error(-32005)]);
    println!("sum(1, 2); the server answers -32005 once:");
    let sum: i64 = client.request("sum", rpc_params![1, 2]).await?;
    println!(
        "  jsonrpsee returned {sum}; the server saw {} attempts",
        server.calls("sum")
    );
    check(sum == 3 && server.calls("sum") == 2, "3, after 2 attempts")?;

    // 2. 503 with Retry-After: 1, then a result.
    server.reset();
    let before = retries(&seen).len();
    server.script("sum", [Step::status(503).retry_after("1")]);
    println!("sum(3, 4); the server answers 503 with Retry-After: 1 once:");
    let start = Instant::now();
    let sum: i64 = client.request("sum", rpc_params![3, 4]).await?;
    println!(
        "  jsonrpsee returned {sum} after {:.2?}; the server saw {} attempts",
        start.elapsed(),
        server.calls("sum")
    );
    check(sum == 7 && server.calls("sum") == 2, "7, after 2 attempts")?;
    // The wait was the hint (1 s) held to the ceiling: 1 s in real time, the ceiling's
    // 10 ms with `--fast`; never the backoff's 100 ms (or 1 ms).
    let hint = Duration::from_secs(1);
    let waits: Vec<Duration> = retries(&seen)
        .iter()
        .skip(before)
        .map(|&(_, _, d)| d)
        .collect();
    check(
        waits == [hint.min(ceiling)] && start.elapsed() >= hint.min(ceiling),
        format_args!(
            "one wait, the hint of {hint:?} held to the ceiling of {ceiling:?}: {waits:?}"
        ),
    )?;
    println!(
        "  (the {:.2?} delay was raised to the hint of {hint:.2?}, clamped by the ceiling of {ceiling:.2?})",
        secs(0.1),
    );

    // 3. A code the strategy does not list reaches jsonrpsee as the server sent it.
    server.reset();
    server.script("sum", [Step::error_with(2002, "no such block", None)]);
    println!("sum(5, 6); the server answers 2002, which the strategy does not retry:");
    match client.request::<i64, _>("sum", rpc_params![5, 6]).await {
        Ok(sum) => return Err(format!("a 2002 was retried to {sum}").into()),
        Err(jsonrpsee::core::client::Error::Call(obj)) => {
            println!(
                "  jsonrpsee returned the call error {} ({}); the server saw {} attempt",
                obj.code(),
                obj.message(),
                server.calls("sum")
            );
            check(
                obj.code() == 2002 && server.calls("sum") == 1,
                "the server's 2002, after 1 attempt",
            )?;
        }
        Err(e) => return Err(e.into()),
    }

    // 4. The same code, for a method whose own strategy retries it.
    server.reset();
    server.script("echo", [Step::error_with(2002, "no such block", None)]);
    println!("echo(8); the server answers 2002 once, which echo's own strategy retries:");
    let echoed: Vec<i64> = client.request("echo", rpc_params![8]).await?;
    println!(
        "  jsonrpsee returned {echoed:?}; the server saw {} attempts",
        server.calls("echo")
    );
    check(
        echoed == [8] && server.calls("echo") == 2,
        "[8], after 2 attempts",
    )?;
    Ok(())
}
