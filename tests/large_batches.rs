//! Large batches through the retry policy, the HTTP-level layer and the typed client,
//! retried over several rounds with a different set of items failing each time: every
//! answer kept once, matched by id. (At this size a lookup by scanning, which these paths
//! once made, takes seconds more; `cargo bench --bench scale` measures it.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Id, Request};
use tower_jsonrpc_retry::test_util::FlakyServer;
use tower_jsonrpc_retry::{Client, JsonRpcRetryLayer, RetryStrategy};

/// Large enough that a lookup by scanning (n²/2 id comparisons per pass) shows.
const N: i64 = 6_000;

/// Three retries on 2001, no wait worth the name (the clock is paused anyway).
fn three_retries() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10))).codes([2001])
}

/// `work(x)` answers `10 * x`, except that the k-th time (from 0) it sees `x` it fails
/// with 2001 when `x % (k + 2) == 0`: every attempt fails a different set of items
/// (even ones, then multiples of 3, of 4, of 5), and multiples of 60 fail all four.
fn install_work(server: &FlakyServer) {
    let seen: Arc<Mutex<HashMap<i64, i64>>> = Arc::default();
    server.handle("work", move |params: &Value| {
        let x = params[0].as_i64().unwrap();
        let mut seen = seen.lock().unwrap();
        let k = seen.entry(x).or_insert(0);
        let attempt = *k;
        *k += 1;
        if x % (attempt + 2) == 0 {
            Err((2001, "busy".to_owned()))
        } else {
            Ok(json!(x * 10))
        }
    });
}

/// Which items attempt `k` (from 0) sends: those that failed every attempt before.
fn sent_in(k: i64) -> usize {
    (0..N).filter(|x| (0..k).all(|j| x % (j + 2) == 0)).count()
}

/// The server saw four batches, each of the items that had failed every round before.
fn assert_rounds(server: &FlakyServer) {
    let sizes: Vec<usize> = server
        .bodies_json()
        .iter()
        .map(|b| b.as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, (0..4).map(sent_in).collect::<Vec<_>>());
}

fn expect_final(x: i64) -> Result<i64, i64> {
    if x % 60 == 0 { Err(2001) } else { Ok(x * 10) }
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_retried_over_several_rounds_keeps_every_answer_once() {
    let server = FlakyServer::start().await.unwrap();
    server.reverse_batches(true); // answers in reverse: matched by id, not by place
    install_work(&server);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(three_retries()))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(Duration::from_secs(600)))
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        );
    let batch: BatchRequest = (0..N)
        .map(|x| Request::new("work", json!([x])).with_id(x))
        .collect();
    let resp = svc.oneshot(batch).await.unwrap();

    assert_rounds(&server);
    assert_eq!(resp.items().len(), N as usize, "one answer per call");
    for (x, item) in (0..N).zip(resp.items()) {
        assert_eq!(item.id(), &Id::Number(x), "in call order, each once");
        let got = match (item.result(), item.error()) {
            (Some(v), None) => Ok(v.as_i64().unwrap()),
            (None, Some(e)) => Err(e.code()),
            other => panic!("{other:?}"),
        };
        assert_eq!(got, expect_final(x), "item {x}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_retried_over_several_rounds_at_the_http_level_keeps_every_answer_once() {
    let server = FlakyServer::start().await.unwrap();
    server.reverse_batches(true);
    install_work(&server);
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(three_retries()))
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>(),
        );
    let body: Vec<Value> = (0..N)
        .map(|x| json!({"jsonrpc": "2.0", "method": "work", "params": [x], "id": x}))
        .collect();
    let req = http::Request::post(server.uri())
        .header("content-type", "application/json")
        .body(Full::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    let answer: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();

    assert_rounds(&server);
    let items = answer.as_array().unwrap();
    assert_eq!(items.len(), N as usize, "one answer per call, none twice");
    let mut by_id: HashMap<i64, &Value> = HashMap::new();
    for item in items {
        assert!(by_id.insert(item["id"].as_i64().unwrap(), item).is_none());
    }
    for x in 0..N {
        let item = by_id[&x];
        let got = match item.get("result") {
            Some(v) => Ok(v.as_i64().unwrap()),
            None => Err(item["error"]["code"].as_i64().unwrap()),
        };
        assert_eq!(got, expect_final(x), "item {x}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_typed_client_takes_every_result_of_a_large_batch() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri())
        .attempt_timeout(Duration::from_secs(600))
        .retry(RetryStrategy::none())
        .build();
    let mut batch = client.batch();
    let handles: Vec<_> = (0..N)
        .map(|x| (x, batch.call::<i64>("sum", (x, 1))))
        .collect();
    let mut results = batch.send().await.unwrap();
    for (x, handle) in handles {
        assert_eq!(results.take(handle).unwrap(), x + 1);
    }
    assert!(results.into_responses().is_empty());
}

/// A batch's successes a result rule retries are the only calls sent again, at both
/// levels: a node behind a balancer answers `null` for receipts it has not seen yet.
#[tokio::test(start_paused = true)]
async fn only_the_results_a_rule_retries_are_sent_again_in_a_batch() {
    for http_level in [false, true] {
        let server = FlakyServer::start().await.unwrap();
        let seen: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
        server.handle("receipt", move |params: &Value| {
            let x = params[0].as_i64().unwrap();
            let mut seen = seen.lock().unwrap();
            let times = seen.entry(x).or_insert(0);
            *times += 1;
            // Receipt 2 is not there the first time it is asked for.
            Ok(if x == 2 && *times == 1 {
                Value::Null
            } else {
                json!(x * 10)
            })
        });
        server.handle("balance", |_: &Value| Ok(Value::Null));
        let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
            .retry_result_if(|method, result| method == "receipt" && result.is_null());
        let calls = [("receipt", 1), ("receipt", 2), ("balance", 3)];
        let answers: Vec<(i64, Value)> = if http_level {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
                .service(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build_http::<Full<Bytes>>(),
                );
            let body: Vec<Value> = calls
                .iter()
                .map(|(m, x)| json!({"jsonrpc": "2.0", "method": m, "params": [x], "id": x}))
                .collect();
            let req = http::Request::post(server.uri())
                .body(Full::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            let resp = svc.oneshot(req).await.unwrap();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            let mut items: Vec<_> = answer
                .as_array()
                .unwrap()
                .iter()
                .map(|i| (i["id"].as_i64().unwrap(), i["result"].clone()))
                .collect();
            items.sort_by_key(|(id, _)| *id);
            items
        } else {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy))
                .layer(JsonRpcCodecLayer::new(server.uri()))
                .service(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build_http(),
                );
            let batch: BatchRequest = calls
                .iter()
                .map(|(m, x)| Request::new(*m, json!([x])).with_id(*x))
                .collect();
            let resp = svc.oneshot(batch).await.unwrap();
            resp.items()
                .iter()
                .map(|r| match r.id() {
                    Id::Number(id) => (*id, r.result().cloned().unwrap()),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            answers,
            [(1, json!(10)), (2, json!(20)), (3, Value::Null)],
            "HTTP level: {http_level}"
        );
        let bodies = server.bodies_json();
        assert_eq!(bodies.len(), 2, "HTTP level: {http_level}");
        assert_eq!(
            bodies[1],
            json!([{"jsonrpc": "2.0", "method": "receipt", "params": [2], "id": 2}]),
            "HTTP level: {http_level}: only the null receipt is asked for again"
        );
    }
}
