//! Per-request strategies: a [`RetryStrategy`] in a request's extensions replaces the
//! stack's default for that request only, entirely (the default's codes no longer
//! apply, nor its `on_retry` / `on_give_up` hooks, budget, deadline or non-idempotent
//! methods: build the request's strategy from `default.clone()` to keep them, as step 2
//! does), and
//! [`RetryStrategy::none()`] there turns retries off. The typed [`Client`]
//! does the same with `client.request(..).retry(strategy)`.
//!
//! `cargo run --example per_request` waits as a real client would (about a second);
//! `cargo run --example per_request -- --fast` divides every delay by 100.

mod common;

use std::time::Duration;

use common::{check, print_and_record_retry, print_retry, retries, secs};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::{ExponentialBackoff, PeriodicBackoff};
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{Request, Response};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, JsonRpcRetryLayer, RetryStrategy};

/// "3" or "error 2001 (...)": what a response says, in a few words.
fn outcome(resp: &Response) -> String {
    match resp.payload() {
        Ok(value) => value.to_string(),
        Err(e) => format!("error {} ({})", e.code(), e.message()),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    // The stack's default: 3 retries, 0.2 s apart, on the server's "busy" code 2001.
    // Its hook records what it sees: it must see the default's retries only.
    let (on_default_retry, default_retries) = print_and_record_retry("default");
    let default = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.2)))
        .codes([2001])
        .on_retry(on_default_retry);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(default.clone()))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(Duration::from_secs(5)))
        .service(HttpClient::builder(TokioExecutor::new()).build_http());
    let sum = |id: i64| Request::new("sum", json!([1, 2])).with_id(id);

    // 1. The default applies: 2001 is retried.
    server.script("sum", [Step::error(2001)]);
    println!("\n1. sum(1, 2) on the stack's default strategy; the server answers 2001 once:");
    let resp = svc.clone().oneshot(sum(1)).await?;
    println!(
        "   result {}, after {} attempts",
        outcome(&resp),
        server.calls("sum")
    );
    check(
        outcome(&resp) == "3" && server.calls("sum") == 2,
        "the default retried the 2001",
    )?;
    check(
        retries(&default_retries).len() == 1,
        "the default's hook saw its one retry",
    )?;

    // 2. A strategy of its own, in the request's extensions: it retries -32000 with an
    // exponential backoff, and nothing else. It replaces the default entirely, so a
    // 2001 is now final.
    let own = || {
        Ok::<_, BoxError>(
            RetryStrategy::new(ExponentialBackoff::new(3, secs(0.1), 2.0)?)
                .codes([-32000])
                .on_retry(print_retry("own")),
        )
    };
    server.reset();
    server.script("sum", [Step::error(-32000), Step::error(-32000)]);
    println!(
        "\n2. the same call with its own strategy (codes [-32000]); the server answers -32000 twice:"
    );
    let mut req = sum(2);
    req.extensions_mut().insert(own()?);
    let resp = svc.clone().oneshot(req).await?;
    println!(
        "   result {}, after {} attempts",
        outcome(&resp),
        server.calls("sum")
    );
    check(
        outcome(&resp) == "3" && server.calls("sum") == 3,
        "the request's strategy retried -32000 twice",
    )?;

    server.reset();
    server.script("sum", [Step::error(2001)]);
    println!("   again, but the server answers 2001, a code only the default lists:");
    let mut req = sum(3);
    req.extensions_mut().insert(own()?);
    let resp = svc.clone().oneshot(req).await?;
    println!(
        "   result {}, after {} attempt: the request's strategy replaced the default, codes included",
        outcome(&resp),
        server.calls("sum")
    );
    check(
        resp.error().map(|e| e.code()) == Some(2001) && server.calls("sum") == 1,
        "the default's code 2001 no longer applies",
    )?;

    // Built from the default, a request's strategy keeps what the default has (its
    // codes, its hook, its non-idempotent methods) and adds to it.
    server.reset();
    server.script("sum", [Step::error(2001), Step::error(-32000)]);
    println!(
        "   built from the default, default.clone().codes([-32000]); the server answers 2001, then -32000:"
    );
    let mut req = sum(5);
    req.extensions_mut().insert(default.clone().codes([-32000]));
    let resp = svc.clone().oneshot(req).await?;
    println!(
        "   result {}, after {} attempts: both codes retried, by the default's hook",
        outcome(&resp),
        server.calls("sum")
    );
    check(
        outcome(&resp) == "3" && server.calls("sum") == 3,
        "a strategy built from the default retried 2001 and -32000",
    )?;
    check(
        retries(&default_retries).len() == 3,
        "the default's hook saw those two retries too",
    )?;

    // 3. `RetryStrategy::none()` in the extensions: no retry at all.
    server.reset();
    server.script("sum", [Step::error(2001)]);
    println!("\n3. with RetryStrategy::none() in its extensions; the server answers 2001 once:");
    let mut req = sum(4);
    req.extensions_mut().insert(RetryStrategy::none());
    let resp = svc.clone().oneshot(req).await?;
    println!(
        "   result {}, after {} attempt: retries are off for this request",
        outcome(&resp),
        server.calls("sum")
    );
    check(
        resp.error().map(|e| e.code()) == Some(2001) && server.calls("sum") == 1,
        "no retry with RetryStrategy::none()",
    )?;

    // 4. The same with the typed client over the same stack.
    let client = Client::new(svc);
    server.reset();
    server.script("sum", [Step::error(-32000)]);
    println!("\n4. the typed Client: request(\"sum\").params((1, 2)).retry(own strategy):");
    let three = client
        .request("sum")
        .params((1, 2))
        .retry(own()?)
        .send::<i64>()
        .await?;
    println!("   1 + 2 = {three}, after {} attempts", server.calls("sum"));
    check(
        three == 3 && server.calls("sum") == 2,
        "the request's strategy retried -32000",
    )?;

    server.reset();
    server.script("sum", [Step::error(2001)]);
    println!("   and .retry(RetryStrategy::none()) while the server answers 2001:");
    match client
        .request("sum")
        .params((1, 2))
        .retry(RetryStrategy::none())
        .send::<i64>()
        .await
    {
        Ok(value) => return Err(format!("retried to {value} with retries off").into()),
        Err(e) => match e.rpc() {
            Some(rpc) => {
                println!(
                    "   the call fails with the server's error {} ({}), after {} attempt",
                    rpc.code(),
                    rpc.message(),
                    server.calls("sum")
                );
                check(
                    rpc.code() == 2001 && server.calls("sum") == 1,
                    "no retry with .retry(RetryStrategy::none())",
                )?;
            }
            None => return Err(e.into()),
        },
    }
    // Three retries were made on requests' own strategies made afresh (two in 2, one in
    // 4); the default's hook saw only the default's one, of 1, and the two of the
    // strategy built from it.
    let seen = retries(&default_retries);
    check(
        seen.len() == 3,
        format_args!("a request's own strategy drops the default's on_retry hook: {seen:?}"),
    )?;
    Ok(())
}
