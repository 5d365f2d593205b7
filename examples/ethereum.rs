//! The `ethereum_rate_limits()` preset against a provider that rate-limits: a read
//! (`eth_blockNumber`) answered with -32005 "limit exceeded" twice, then `429 Too Many
//! Requests` with `Retry-After: 1`, then a block number, is retried to success; a write
//! (`eth_sendRawTransaction`) given the same answer is not retried, because the preset
//! marks it non-idempotent: the caller decides whether to send it again (a send the
//! provider took and answered late would come back as "already known"); and a receipt
//! that a node behind the provider's balancer has not seen yet (`null`) is asked for
//! again, by a rule on results.
//!
//! The preset's backoff (1 s doubling, 5 retries, full jitter) and its `Retry-After`
//! ceiling are replaced by the same shapes scaled by `--fast`.
//!
//! `cargo run --example ethereum` waits as a real client would (a few seconds);
//! `cargo run --example ethereum -- --fast` divides every delay by 100.

mod common;

use common::{check, print_and_record_retry, retries, secs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tower_jsonrpc_retry::backoff::{ExponentialBackoff, Jitter};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, ErrorClass, RetryReason, RetryStrategy, http};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    server.handle("eth_blockNumber", |_: &Value| Ok(json!("0x10d4f")));
    server.handle("eth_sendRawTransaction", |_: &Value| {
        Ok(json!(
            "0xe670ec64341771606e55d6b4ca35a1a6b75ee3d5145a99d05921026d15273310"
        ))
    });
    // The first time it is asked for, the receipt is not there yet.
    let asked = AtomicUsize::new(0);
    server.handle("eth_getTransactionReceipt", move |_: &Value| {
        Ok(match asked.fetch_add(1, Ordering::Relaxed) {
            0 => Value::Null,
            _ => json!({"status": "0x1", "blockNumber": "0x10d4f"}),
        })
    });
    println!("Ethereum-like JSON-RPC server on {}", server.uri());

    let (on_retry, log) = print_and_record_retry("eth");
    let ceiling = secs(60.0);
    let strategy = RetryStrategy::ethereum_rate_limits()
        .backoff(ExponentialBackoff::doubling(5, secs(1.0)).with_jitter(Jitter::full()))
        .retry_after_ceiling(ceiling)
        // A node that has not seen the transaction's block answers `null`: ask again.
        .retry_result_if(|method, result| method == "eth_getTransactionReceipt" && result.is_null())
        .on_retry(on_retry);
    let client = Client::builder(server.uri()).retry(strategy).build();

    let rate_limited = || {
        [
            Step::error_with(-32005, "limit exceeded", None),
            Step::error_with(-32005, "limit exceeded", None),
            Step::status(429).retry_after("1"),
        ]
    };

    // A read: safe to repeat.
    server.script("eth_blockNumber", rate_limited());
    println!("eth_blockNumber; the provider answers -32005 twice, then 429 with Retry-After: 1:");
    let start = Instant::now();
    let block: String = client.call("eth_blockNumber", ()).await?;
    println!(
        "  block {block} after {:.2?} and {} attempts",
        start.elapsed(),
        server.calls("eth_blockNumber")
    );
    check(
        block == "0x10d4f" && server.calls("eth_blockNumber") == 4,
        "the block number, after 4 attempts",
    )?;
    // The last wait: the backoff's third delay (full jitter, under 4 s) raised to the
    // hint (1 s), the hint held to the ceiling (600 ms with `--fast`, where the jitter
    // stays under 40 ms: exactly the ceiling then).
    let hint = Duration::from_secs(1);
    let floor = hint.min(ceiling);
    let seen = retries(&log);
    // The preset retries -32005 by a response rule (it leaves out the -32005s that are
    // caps, not limits), so that is the reason given.
    let limited = RetryReason::ResponsePredicate(-32005);
    let too_many = RetryReason::Class(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS));
    check(
        matches!(
            seen.as_slice(),
            [(1, r1, _), (2, r2, _), (3, r3, last)]
                if *r1 == limited && *r2 == limited && *r3 == too_many
                    && floor <= *last && *last <= floor.max(secs(4.0))
        ) && start.elapsed() >= floor,
        format_args!(
            "retries on -32005, -32005 and 429, the last waiting at least the hint of {hint:?} \
             (at most the ceiling of {ceiling:?}): {seen:?}"
        ),
    )?;
    if let Some((_, _, last)) = seen.last() {
        let won = match (*last == floor, hint > ceiling) {
            (true, true) => "the hint, held to the ceiling, longer than the backoff's own delay",
            (true, false) => "the hint, longer than the backoff's own delay",
            (false, _) => "the backoff's own delay, longer than the hint",
        };
        println!("  the last wait, {last:.2?}: {won}");
    }
    println!(
        "  (a Retry-After hint raises the next delay, never shortens it, and is clamped by the \
         ceiling, here {ceiling:.2?})"
    );

    // A write: never sent twice once the provider has seen it.
    server.script("eth_sendRawTransaction", rate_limited());
    println!("eth_sendRawTransaction with the same answers:");
    match client
        .call::<String>("eth_sendRawTransaction", ("0xf86c0a8502540be400",))
        .await
    {
        Ok(hash) => return Err(format!("the send was retried to {hash}").into()),
        Err(e) => match e.rpc() {
            Some(rpc) => {
                println!(
                    "  not retried: error {} ({}) after {} attempt; sends are the caller's \
                     to repeat (one the provider took would come back \"already known\")",
                    rpc.code(),
                    rpc.message(),
                    server.calls("eth_sendRawTransaction")
                );
                check(
                    rpc.code() == -32005 && server.calls("eth_sendRawTransaction") == 1,
                    "the send's -32005, after 1 attempt",
                )?;
            }
            None => return Err(e.into()),
        },
    }

    // A receipt a lagging node has not seen: a success, `null`, retried by the rule.
    println!("eth_getTransactionReceipt; the first node asked has not seen it (null):");
    let receipt: Value = client
        .call("eth_getTransactionReceipt", ("0xe670ec64",))
        .await?;
    println!(
        "  receipt {receipt} after {} attempts",
        server.calls("eth_getTransactionReceipt")
    );
    let last = retries(&log).last().map(|(_, reason, _)| *reason);
    check(
        receipt["status"] == "0x1"
            && server.calls("eth_getTransactionReceipt") == 2
            && last == Some(RetryReason::Result),
        format_args!("the receipt after 2 attempts, retried on its null result: {last:?}"),
    )?;
    Ok(())
}
