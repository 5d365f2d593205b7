//! `ethereum_rate_limits()` against what Ethereum providers send: wait hints in the
//! error's `data`, -32005 answers that are not rate limits, reverts, and the methods
//! never sent twice. Loopback `FlakyServer`, tokio's paused clock, seeded jitter.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Request, Response};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, ClientError, JsonRpcRetryLayer, RetryStrategy};

async fn setup() -> (FlakyServer, Client) {
    let server = FlakyServer::start().await.unwrap();
    server.handle("eth_blockNumber", |_: &Value| Ok(json!("0x10d4f")));
    server.handle("eth_getLogs", |_: &Value| Ok(json!([])));
    server.handle("eth_call", |_: &Value| Ok(json!("0x")));
    let client = Client::builder(server.uri())
        .retry(RetryStrategy::ethereum_rate_limits_seeded(7))
        .build();
    (server, client)
}

fn rpc_code(r: Result<Value, ClientError>) -> Option<i64> {
    r.err().and_then(|e| e.rpc().map(|rpc| rpc.code()))
}

/// Infura's documented throughput answer: HTTP 429, -32005, and
/// `data.backoff_seconds` ("We recommend pausing JSON-RPC activity for the time value in
/// backoff_seconds"). No `Retry-After` header. The preset's first delay is U[0, 1 s).
#[tokio::test(start_paused = true)]
async fn infura_backoff_seconds_in_error_data_is_honoured() {
    let (server, client) = setup().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32005, "message": "project ID request rate exceeded",
        "data": {"see": "https://infura.io/docs/ethereum/jsonrpc/ratelimits",
                 "current_rps": 13.333, "allowed_rps": 10.0, "backoff_seconds": 30.0}}});
    server.script("eth_blockNumber", [Step::raw(429, body.to_string())]);
    let start = Instant::now();
    let block: String = client.call("eth_blockNumber", ()).await.unwrap();
    assert_eq!(block, "0x10d4f");
    assert_eq!(server.calls("eth_blockNumber"), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "retried after {:?}, not the 30 s the provider asked for",
        start.elapsed()
    );
}

/// A wait in the rate-limit message's prose, as alloy reads it ("try again in 4ms"):
/// the preset waits at least that long (its own first delay is under 1 s), and a
/// message whose wait it cannot read leaves the backoff's delay.
#[tokio::test(start_paused = true)]
async fn a_wait_in_the_messages_prose_is_honoured() {
    let (server, client) = setup().await;
    for (message, waited) in [
        ("rate limited, try again in 1500ms", Some(1.5)),
        ("Rate limited. Try again in 2.5 seconds.", Some(2.5)),
        ("rate limited, try again in 3s, please", Some(3.0)),
        ("rate limited (try again in 1500ms)", Some(1.5)),
        (
            "rate limited; try again in 1500ms; upgrade your plan",
            Some(1.5),
        ),
        ("rate limited: \"try again in 1.5s!\"", Some(1.5)),
        (
            "rate limited, try again in 99999999999999999999999s",
            Some(60.0),
        ),
        ("rate limited, try again in 2 sec", Some(2.0)),
        ("rate limited, try again in 2 secs", Some(2.0)),
        ("rate limited, try again in 2 second", Some(2.0)),
        ("rate limited, try again in 1500 millisecond", Some(1.5)),
        ("rate limited, try again in 1500 milliseconds", Some(1.5)),
        ("rate limited, try again in a moment", None),
        // A unit it does not read is no wait at all, not one of another unit.
        ("rate limited, try again in 5000 minutes", None),
    ] {
        server.reset();
        server.script("eth_blockNumber", [Step::error_with(-32005, message, None)]);
        let start = Instant::now();
        let _: String = client.call("eth_blockNumber", ()).await.unwrap();
        assert_eq!(server.calls("eth_blockNumber"), 2, "{message}");
        match waited {
            Some(secs) => assert_eq!(start.elapsed(), Duration::from_secs_f64(secs), "{message}"),
            None => assert!(start.elapsed() < Duration::from_secs(1), "{message}"),
        }
    }
}

/// The same hint nested under `data.rate`, as Infura's answers have come on the wire
/// (INFURA/infura#201) and as alloy and ethers-rs read it.
#[tokio::test(start_paused = true)]
async fn infura_nested_rate_backoff_seconds_is_honoured() {
    let (server, client) = setup().await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32005, "message": "project ID request rate exceeded",
        "data": {"rate": {"allowed_rps": 50, "backoff_seconds": 5, "current_rps": 52.3},
                 "see": "https://infura.io/docs/ethereum/json-rpc/ratelimits"}}});
    server.script("eth_blockNumber", [Step::raw(429, body.to_string())]);
    let start = Instant::now();
    let _: String = client.call("eth_blockNumber", ()).await.unwrap();
    assert_eq!(server.calls("eth_blockNumber"), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Infura answers an `eth_getLogs` over its 10,000-result cap with -32005 too
/// (ethers-io/ethers.js#4703). The same query can never succeed: the caller must split
/// the range, so it gets the answer at once.
#[tokio::test(start_paused = true)]
async fn getlogs_result_cap_under_32005_is_not_retried() {
    let (server, client) = setup().await;
    let step = || {
        Step::error_with(
            -32005,
            "query returned more than 10000 results. Try with this block range [0xBDE5F8, 0x102DBCC].",
            Some(json!({"from": "0xBDE5F8", "limit": 10000, "to": "0x102DBCC"})),
        )
    };
    server.script("eth_getLogs", std::iter::repeat_with(step).take(6));
    let r = client
        .call::<Value>(
            "eth_getLogs",
            (json!({"fromBlock": "0x0", "toBlock": "latest"}),),
        )
        .await;
    assert_eq!(rpc_code(r), Some(-32005));
    assert_eq!(
        server.calls("eth_getLogs"),
        1,
        "a result cap is not a rate limit"
    );
}

/// A contract's revert reason is the chain's answer, whatever words it uses and however
/// the node phrases the revert: geth and anvil (code 3, "execution reverted"), Hardhat,
/// Ganache, Nethermind.
#[tokio::test(start_paused = true)]
async fn revert_reason_mentioning_a_rate_limit_is_not_retried() {
    let (server, client) = setup().await;
    for (code, message) in [
        (3, "execution reverted: rate limit exceeded"),
        (-32000, "Execution reverted: too many requests"),
        (
            -32603,
            "Error: VM Exception while processing transaction: reverted with reason string 'rate limit exceeded'",
        ),
        (
            -32000,
            "VM Exception while processing transaction: revert too many requests",
        ),
        (-32015, "VM execution error: rate limit"),
    ] {
        server.reset();
        server.script(
            "eth_call",
            std::iter::repeat_with(|| Step::error_with(code, message, Some(json!("0x08c379a0"))))
                .take(6),
        );
        let r = client
            .call::<Value>("eth_call", (json!({"to": "0x00"}), "latest"))
            .await;
        assert_eq!(rpc_code(r), Some(code), "{message}");
        assert_eq!(server.calls("eth_call"), 1, "{message}");
    }
}

/// A revert is the chain's answer under any status: a gateway's 429 or 503 over it does
/// not make the preset retry it, at either level, and neither does a rule a user adds
/// that its reason happens to match ("credits").
#[tokio::test(start_paused = true)]
async fn a_revert_under_a_listed_status_or_a_widened_rule_is_not_retried() {
    use bytes::Bytes;
    use http_body_util::Full;
    let server = FlakyServer::start().await.unwrap();
    server.handle("eth_call", |_: &Value| Ok(json!("0x")));
    let revert = |message: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 3, "message": message, "data": "0x08c379a0"}})
            .to_string()
    };
    let widened = RetryStrategy::ethereum_rate_limits_seeded(7)
        .retry_response_if(|e| e.message().contains("credits"));
    for (status, message) in [
        (429, "execution reverted: nope"),
        (503, "execution reverted: nope"),
        (200, "execution reverted: out of credits"),
    ] {
        server.reset();
        server.script(
            "eth_call",
            std::iter::repeat_with(|| Step::raw(status, revert(message))).take(7),
        );
        let client = Client::builder(server.uri()).retry(widened.clone()).build();
        let r = client
            .request("eth_call")
            .params(((),))
            .id(1)
            .send::<Value>()
            .await;
        assert!(r.is_err(), "{status} {message}");
        assert_eq!(server.calls("eth_call"), 1, "{status} {message}");

        server.reset();
        server.script(
            "eth_call",
            std::iter::repeat_with(|| Step::raw(status, revert(message))).take(7),
        );
        let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(widened.clone()).layer(common::http());
        let body = r#"{"jsonrpc":"2.0","method":"eth_call","params":[null],"id":1}"#;
        let req = http::Request::post(server.uri())
            .body(Full::from(body))
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), status, "{message}");
        assert_eq!(
            server.calls("eth_call"),
            1,
            "HTTP level: {status} {message}"
        );
    }
}

/// A rate limit under -32005 is still retried (the guard of the test above).
#[tokio::test(start_paused = true)]
async fn a_rate_limit_under_32005_is_still_retried() {
    let (server, client) = setup().await;
    server.script(
        "eth_blockNumber",
        [Step::error_with(
            -32005,
            "project ID request rate exceeded",
            None,
        )],
    );
    let _: String = client.call("eth_blockNumber", ()).await.unwrap();
    assert_eq!(server.calls("eth_blockNumber"), 2);
}

/// A hint beyond the ceiling waits the ceiling (as `Retry-After` does); a negative one
/// is no hint.
#[tokio::test(start_paused = true)]
async fn a_data_hint_is_held_to_the_ceiling_and_a_negative_one_ignored() {
    let (server, client) = setup().await;
    for (backoff_seconds, at_least, below) in [(1e30, 60.0, 61.0), (-5.0, 0.0, 1.0)] {
        server.reset();
        server.handle("eth_blockNumber", |_: &Value| Ok(json!("0x10d4f")));
        server.script(
            "eth_blockNumber",
            [Step::error_with(
                -32005,
                "project ID request rate exceeded",
                Some(json!({ "backoff_seconds": backoff_seconds })),
            )],
        );
        let start = Instant::now();
        let _: String = client.call("eth_blockNumber", ()).await.unwrap();
        let took = start.elapsed();
        assert_eq!(server.calls("eth_blockNumber"), 2);
        assert!(
            took >= Duration::from_secs_f64(at_least) && took < Duration::from_secs_f64(below),
            "hint {backoff_seconds}: waited {took:?}"
        );
    }
}

/// The sends a provider may have taken are not sent again after a rate limit.
#[tokio::test(start_paused = true)]
async fn transaction_sends_are_not_sent_twice() {
    let (server, client) = setup().await;
    for method in [
        "eth_sendRawTransaction",
        "eth_sendRawTransactionConditional",
        "eth_sendRawTransactionSync",
        "eth_sendPrivateTransaction",
        "eth_sendPrivateRawTransaction",
        "eth_sendUserOperation",
        "eth_sendTransaction",
        "personal_sendTransaction",
    ] {
        server.handle(method, |_: &Value| Ok(json!("0xabc")));
        server.script(
            method,
            [Step::error_with(-32005, "rate limit exceeded", None)],
        );
        let r = client.call::<Value>(method, ("0x00",)).await;
        assert_eq!(rpc_code(r), Some(-32005), "{method}");
        assert_eq!(server.calls(method), 1, "{method}");
    }
}

/// A refusal of a whole batch carries its hint too: with a call in the batch (the call
/// takes the refusal) and without one (only notifications, the batch's error decides).
#[tokio::test(start_paused = true)]
async fn a_batch_refused_with_a_data_hint_waits_for_it() {
    let refusal = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,
        "message":"project ID request rate exceeded","data":{"backoff_seconds":30}}}"#;
    for with_call in [true, false] {
        let (server, client) = setup().await;
        server.script("log", [Step::raw(429, refusal)]);
        let mut batch = client.batch();
        batch.notify("log", ("a",));
        if with_call {
            let _ = batch.call::<Value>("log", ("b",));
        }
        let start = Instant::now();
        batch.send().await.unwrap();
        assert_eq!(server.http_requests(), 2, "with a call: {with_call}");
        assert!(
            start.elapsed() >= Duration::from_secs(30),
            "with a call: {with_call}: retried after {:?}",
            start.elapsed()
        );
    }
}

/// A wait that is not a whole number of milliseconds (Infura's `backoff_seconds: 0.2495`)
/// before a 250 ms deadline: tokio's timer rounds its end up to 250 ms, so it is not
/// started (a retry sent at the deadline would be cut at once, and the caller would get
/// a timeout instead of the server's answer).
#[tokio::test(start_paused = true)]
async fn a_fractional_ms_wait_that_ends_at_the_deadline_is_not_started() {
    let start = Instant::now();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    let inner = tower::service_fn(move |req: Request| {
        log.lock().unwrap().push(start.elapsed());
        let error =
            ErrorObject::new(-32005, "slow down").with_data(json!({"backoff_seconds": 0.2495}));
        async move { Ok::<_, BoxError>(Response::failure(req.id().unwrap().clone(), error)) }
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::ZERO))
        .codes([-32005])
        .max_elapsed(Duration::from_millis(250));
    let resp = JsonRpcRetryLayer::new(strategy)
        .layer(inner)
        .oneshot(Request::new("sum", json!([1])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.error().map(ErrorObject::code), Some(-32005));
    assert_eq!(*sent.lock().unwrap(), [Duration::ZERO], "retries sent");
}

/// The preset's table, row "codes by message" and the -32005 row, one answer each: a
/// code retried only with its words, a -32005 that is a cap or a refusal not retried,
/// and the messages retried under any code.
#[tokio::test(start_paused = true)]
async fn the_presets_codes_and_messages_row_by_row() {
    let (server, client) = setup().await;
    for (code, message, retried) in [
        // EIP-1474's own words for -32005 name no rate: the code alone is enough.
        (-32005, "limit exceeded", true),
        (-32005, "request entity too large", false),
        (-32005, "Response is too big", false),
        // Nethermind's and Besu's batch limits, Besu's block range cap.
        (-32005, "Batch size limit exceeded", false),
        (
            -32005,
            "MaxBatchResponseBodySize of 32768KB exceeded",
            false,
        ),
        (-32005, "Number of requests exceeds max batch size", false),
        (
            -32005,
            "Requested range exceeds maximum RPC range limit",
            false,
        ),
        (
            -32005,
            "Batched requests are not supported by this server",
            false,
        ),
        (-32012, "exceeded the credits of this plan", true),
        (-32012, "insufficient funds", false),
        (-32007, "100/second request limit reached", true),
        (-32007, "invalid block range", false),
        (-32000, "rate limit exceeded", true),
        (-32000, "header not found", true),
        (
            -32000,
            "You have exceeded the maximum number of concurrent requests",
            true,
        ),
        (-32000, "nonce too low", false),
    ] {
        server.reset();
        server.script("eth_blockNumber", [Step::error_with(code, message, None)]);
        let r = client.call::<Value>("eth_blockNumber", ()).await;
        if retried {
            assert_eq!(r.unwrap(), json!("0x10d4f"), "{code} {message}");
            assert_eq!(server.calls("eth_blockNumber"), 2, "{code} {message}");
        } else {
            assert_eq!(rpc_code(r), Some(code), "{message}");
            assert_eq!(server.calls("eth_blockNumber"), 1, "{code} {message}");
        }
    }
}

/// The unseeded preset is the same preset: it retries a provider's -32005 (which
/// `transient()` does not) and never sends a transaction twice.
#[tokio::test(start_paused = true)]
async fn the_unseeded_preset_retries_what_the_seeded_one_does() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("eth_blockNumber", |_: &Value| Ok(json!("0x10d4f")));
    let client = Client::builder(server.uri())
        .retry(RetryStrategy::ethereum_rate_limits())
        .build();
    server.script(
        "eth_blockNumber",
        [Step::error_with(-32005, "limit exceeded", None)],
    );
    let block: String = client.call("eth_blockNumber", ()).await.unwrap();
    assert_eq!(block, "0x10d4f");
    assert_eq!(server.calls("eth_blockNumber"), 2);
    server.script("eth_sendRawTransaction", [Step::status(503)]);
    let r = client
        .call::<Value>("eth_sendRawTransaction", ("0x02",))
        .await;
    assert!(r.is_err());
    assert_eq!(server.calls("eth_sendRawTransaction"), 1);
}

/// The preset's table, row by row for what `the_presets_codes_and_messages_row_by_row`
/// leaves out: a bare 429 and a bare 503 (no JSON-RPC body), code 429, a dropped
/// connection and a refused one are retried; a timeout is not (a read that timed out may
/// be slow for a reason another try will not mend, and the preset gives up at once).
#[tokio::test(start_paused = true)]
async fn the_presets_statuses_code_429_and_error_classes() {
    let (server, _) = setup().await;
    let client = Client::builder(server.uri())
        .attempt_timeout(Duration::from_millis(200))
        .retry(RetryStrategy::ethereum_rate_limits_seeded(7))
        .build();
    let mut calls = 0;
    for (step, what) in [
        (Step::status(429), "a bare 429"),
        (Step::status(503), "a bare 503"),
        (Step::error_with(429, "busy", None), "code 429"),
        (Step::drop_connection(), "a dropped connection"),
    ] {
        server.script("eth_blockNumber", [step]);
        let block: String = client.call("eth_blockNumber", ()).await.unwrap();
        assert_eq!(block, "0x10d4f", "{what}");
        calls += 2;
        assert_eq!(
            server.calls("eth_blockNumber"),
            calls,
            "{what}: retried once"
        );
    }

    server.script("eth_blockNumber", [Step::timeout()]);
    let err = client
        .call::<String>("eth_blockNumber", ())
        .await
        .unwrap_err();
    assert!(err.transport().is_some_and(|e| e.is_timeout()), "{err:?}");
    assert_eq!(
        server.calls("eth_blockNumber"),
        calls + 1,
        "a timeout: not retried"
    );

    let (_held, closed) = common::refusing();
    let rec = common::Recorder::default();
    let svc = common::stack_to(
        format!("http://{closed}/").parse().unwrap(),
        rec.attach(RetryStrategy::ethereum_rate_limits_seeded(7)),
    );
    let err = svc
        .oneshot(Request::new("eth_blockNumber", json!([])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(rec.reasons(), ["connect"; 5]);
}

/// geth refuses a batch over `--rpc.batch-request-limit` with one `-32600` "batch too
/// large" under the first call's id: every call gets that refusal (not a decode error
/// naming the calls left unanswered), and it is not retried.
#[tokio::test(start_paused = true)]
async fn a_batch_geth_finds_too_large_is_refused_for_every_call() {
    let (server, client) = setup().await;
    let body = r#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"batch too large"}}]"#;
    server.script("eth_blockNumber", [Step::raw(200, body)]);
    let mut batch = client.batch();
    let a = batch.call::<Value>("eth_blockNumber", ());
    let b = batch.call::<Value>("eth_call", ());
    let mut results = batch.send().await.unwrap();
    for item in [a, b] {
        let err = results.take(item).unwrap_err();
        let rpc = err.rpc().unwrap();
        assert_eq!((rpc.code(), rpc.message()), (-32600, "batch too large"));
    }
    assert_eq!(server.http_requests(), 1);
}
