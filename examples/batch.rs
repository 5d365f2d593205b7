//! Partial batch retry: a typed batch of three calls and a notification, where one call
//! fails with a retryable code. Only that call is sent again; the final results hold
//! every call, matched by id, including one whose error is not retryable.
//!
//! `cargo run --example batch` waits as a real client would (half a second);
//! `cargo run --example batch -- --fast` divides every delay by 100.

mod common;

use common::{check, print_and_record_retry, retries, secs};
use serde_json::json;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, RetryReason, RetryStrategy};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    // The server answers a batch's items in reverse order, so that only matching by id
    // gives each call its own result.
    server.reverse_batches(true);
    println!("JSON-RPC server on {}", server.uri());

    // Retry the server's "busy" code 2001: 2 retries, 0.5 s apart.
    let (on_retry, seen) = print_and_record_retry("batch");
    let client = Client::builder(server.uri())
        .retry(
            RetryStrategy::new(PeriodicBackoff::new(2, secs(0.5)))
                .codes([2001])
                .on_retry(on_retry),
        )
        .build();

    // `echo` is busy once; `mul` does not exist on the server (-32601, not retryable).
    server.script("echo", [Step::error(2001)]);

    let mut batch = client.batch();
    let three = batch.call::<i64>("sum", (1, 2));
    let echoed = batch.call::<Vec<String>>("echo", ("hello", "batch"));
    let product = batch.call::<i64>("mul", (6, 7));
    batch.notify("log", ("batch sent",));
    println!("a batch of sum(1, 2), echo(\"hello\", \"batch\"), mul(6, 7) and a notification:");
    let mut results = batch.send().await?;

    let bodies = server.bodies_json();
    println!(
        "the server saw {} HTTP requests for one batch:",
        server.http_requests()
    );
    for (n, body) in bodies.iter().enumerate() {
        let items = body.as_array().map_or(1, Vec::len);
        println!("  exchange {}: {items} item(s): {body}", n + 1);
    }
    println!("  -> only the busy echo call was re-sent, with its own id");
    let resent = bodies.get(1).and_then(|b| b.as_array());
    check(
        bodies.len() == 2
            && resent.is_some_and(|items| {
                items.len() == 1 && items.first().and_then(|i| i.get("id")) == Some(&json!(2))
            }),
        "two exchanges, the second only the echo call (id 2)",
    )?;

    let seen = retries(&seen);
    check(
        matches!(seen.as_slice(), [(1, RetryReason::Code(2001), d)] if *d == secs(0.5)),
        format_args!("one retry, on code 2001, after 0.5 s: {seen:?}"),
    )?;

    println!("the final results, one per call:");
    let sum = results.take(three)?;
    println!("  sum:  {sum}");
    check(sum == 3, "sum(1, 2) = 3")?;
    let echo = results.take(echoed)?;
    println!("  echo: {echo:?}");
    check(echo == ["hello", "batch"], "echo gives back its params")?;
    match results.take(product) {
        Ok(value) => return Err(format!("mul is not on the server, yet answered {value}").into()),
        Err(e) => match e.rpc() {
            Some(rpc) => {
                println!(
                    "  mul:  error {} ({}), kept as the server answered: that code is not retried",
                    rpc.code(),
                    rpc.message()
                );
                check(rpc.code() == -32601, "mul answered -32601")?;
            }
            None => return Err(e.into()),
        },
    }
    Ok(())
}
