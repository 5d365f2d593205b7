//! Memory stays flat: after a warm-up, live heap does not grow with the number of calls,
//! on every path a call can take (retried, given up, cut by a deadline, dropped while
//! it waits or while it is in flight, a strategy of its own, a shared budget, hooks, a
//! batch retried in part, at both levels and through the typed client over loopback).
//!
//! Live bytes come from a counting global allocator, so they are exact. This file holds
//! one test, so nothing else runs in the process while it counts.

#[path = "common/live_heap.rs"]
mod live_heap;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tower::retry::budget::TpsBudget;
use tower::{Layer, ServiceExt, service_fn};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, ErrorObject, Request, Response};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// Calls in the warm-up, and again in the block measured after it.
const CALLS: usize = 500;

/// The growth allowed over the measured block: a leak of a single 16-byte allocation per
/// call would be 8,000 bytes. (Each in-memory path measured exactly 0 over 2,000 calls;
/// over loopback, hyper's pool and the server's connection tasks move a few bytes.)
const SLACK: i64 = 1_024;

/// Live heap growth over `CALLS` calls made after `CALLS` calls of warm-up.
async fn growth<F, Fut>(mut call: F) -> i64
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..CALLS {
        call(i).await;
    }
    let before = live_heap::live();
    for i in CALLS..2 * CALLS {
        call(i).await;
    }
    live_heap::live() - before
}

fn periodic(retries: usize, ms: u64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(retries, Duration::from_millis(ms))).codes([-32005])
}

fn call(i: usize) -> Request {
    Request::new("sum", json!([i, 1])).with_id(i as i64)
}

fn answer(req: &Request, busy: bool) -> Response {
    let id = req
        .id()
        .cloned()
        .unwrap_or(tower_jsonrpc_retry::jsonrpc::Id::Null);
    if busy {
        Response::failure(id, ErrorObject::new(-32005, "busy"))
    } else {
        Response::success(id, json!(3))
    }
}

/// An inner service whose answers are busy, busy, then a success, over and over.
fn busy_twice() -> impl tower::Service<
    Request,
    Response = Response,
    Error = BoxError,
    Future = impl Future<Output = Result<Response, BoxError>> + Send,
> + Clone
+ Send {
    let seen = Arc::new(AtomicUsize::new(0));
    service_fn(move |req: Request| {
        let busy = seen.fetch_add(1, Ordering::Relaxed) % 3 != 2;
        async move { Ok::<_, BoxError>(answer(&req, busy)) }
    })
}

fn always_busy(req: Request) -> std::future::Ready<Result<Response, BoxError>> {
    std::future::ready(Ok(answer(&req, true)))
}

async fn json_rpc_level() -> Vec<(&'static str, i64)> {
    let mut grown = Vec::new();

    let svc = JsonRpcRetryLayer::new(periodic(3, 10)).layer(busy_twice());
    let g = growth(|i| {
        let svc = svc.clone();
        async move { assert!(!svc.oneshot(call(i)).await.unwrap().is_error()) }
    });
    grown.push(("JSON-RPC level: two retries, then a success", g.await));

    let hooks = Arc::new(AtomicUsize::new(0));
    let (on_retry, on_give_up) = (hooks.clone(), hooks.clone());
    let strategy = periodic(2, 10)
        .on_retry(move |_| {
            on_retry.fetch_add(1, Ordering::Relaxed);
        })
        .on_give_up(move |_| {
            on_give_up.fetch_add(1, Ordering::Relaxed);
        });
    let svc = JsonRpcRetryLayer::new(strategy).layer(service_fn(always_busy));
    let g = growth(|i| {
        let svc = svc.clone();
        async move { assert!(svc.oneshot(call(i)).await.unwrap().is_error()) }
    });
    grown.push(("JSON-RPC level: retries run out, with hooks", g.await));
    assert_eq!(
        hooks.load(Ordering::Relaxed),
        2 * CALLS * 3,
        "two retries and a give-up each"
    );

    let strategy = periodic(10, 10).max_elapsed(Duration::from_millis(25));
    let svc = JsonRpcRetryLayer::new(strategy).layer(service_fn(always_busy));
    let g = growth(|i| {
        let svc = svc.clone();
        async move { assert!(svc.oneshot(call(i)).await.unwrap().is_error()) }
    });
    grown.push(("JSON-RPC level: the deadline passes", g.await));

    let svc = JsonRpcRetryLayer::new(periodic(1, 3_600_000)).layer(service_fn(always_busy));
    let g = growth(|i| {
        let svc = svc.clone();
        async move {
            let waiting = tokio::time::timeout(Duration::from_millis(5), svc.oneshot(call(i)));
            assert!(waiting.await.is_err(), "dropped while it waits to retry");
        }
    });
    grown.push(("JSON-RPC level: dropped in its backoff", g.await));

    let svc = JsonRpcRetryLayer::new(RetryStrategy::none()).layer(busy_twice());
    let g = growth(|i| {
        let svc = svc.clone();
        async move {
            let mut req = call(i);
            req.extensions_mut()
                .insert(periodic(3, 10).on_retry(|_| {}));
            assert!(!svc.oneshot(req).await.unwrap().is_error());
        }
    });
    grown.push(("JSON-RPC level: a strategy of its own", g.await));

    // Each call's deposit pays for one retry, and its second is refused: both paths, every
    // call.
    let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 1.0));
    let svc = JsonRpcRetryLayer::new(periodic(3, 10).budget(budget)).layer(service_fn(always_busy));
    let g = growth(|i| {
        let svc = svc.clone();
        async move { assert!(svc.oneshot(call(i)).await.unwrap().is_error()) }
    });
    grown.push(("JSON-RPC level: a shared budget", g.await));

    // The second of three calls is busy when sent with the others, and answers alone.
    let svc = JsonRpcRetryLayer::new(periodic(3, 10)).layer(service_fn(|batch: BatchRequest| {
        let whole = batch.len() == 3;
        let answers = batch
            .requests()
            .iter()
            .enumerate()
            .map(|(at, req)| answer(req, whole && at == 1));
        std::future::ready(Ok::<_, BoxError>(BatchResponse::new(answers.collect())))
    }));
    let g = growth(|i| {
        let svc = svc.clone();
        async move {
            let batch = BatchRequest::new((0..3).map(|k| call(3 * i + k)).collect());
            let answers = svc.oneshot(batch).await.unwrap();
            assert!(answers.iter().all(|answer| !answer.is_error()));
        }
    });
    grown.push(("JSON-RPC level: a batch retried in part", g.await));

    grown
}

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const OK: &str = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
const BUSY: &str = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"busy"},"id":1}"#;

fn post() -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(CALL.as_bytes())))
        .unwrap()
}

fn http_answer(status: u16, body: &'static str) -> http::Response<Full<Bytes>> {
    let mut answer = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *answer.status_mut() = http::StatusCode::from_u16(status).unwrap();
    answer
}

async fn http_level() -> Vec<(&'static str, i64)> {
    let mut grown = Vec::new();
    type Body = Full<Bytes>;

    // A 429 with `Retry-After`, then a success.
    let seen = Arc::new(AtomicUsize::new(0));
    let strategy =
        periodic(3, 10).retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS));
    let svc = JsonRpcRetryLayer::http::<Body>(strategy).layer(service_fn(
        move |_: http::Request<Body>| {
            let mut answer = http_answer(200, OK);
            if seen.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                answer = http_answer(429, BUSY);
                let hint = http::HeaderValue::from_static("1");
                answer.headers_mut().insert(http::header::RETRY_AFTER, hint);
            }
            std::future::ready(Ok::<_, std::io::Error>(answer))
        },
    ));
    let g = growth(|_| {
        let svc = svc.clone();
        async move {
            let answer = svc.oneshot(post()).await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.into_body().collect().await.unwrap();
        }
    });
    grown.push((
        "HTTP level: a 429 with Retry-After, then a success",
        g.await,
    ));

    let svc = JsonRpcRetryLayer::http::<Body>(periodic(2, 10).retry_on(ErrorClass::Reset)).layer(
        service_fn(|_: http::Request<Body>| {
            let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
            std::future::ready(Err::<http::Response<Body>, _>(reset))
        }),
    );
    let g = growth(|_| {
        let svc = svc.clone();
        async move { assert!(svc.oneshot(post()).await.is_err()) }
    });
    grown.push(("HTTP level: resets until retries run out", g.await));

    let svc = JsonRpcRetryLayer::http::<Body>(periodic(1, 10)).layer(service_fn(
        |_: http::Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            Ok::<_, std::io::Error>(http_answer(200, OK))
        },
    ));
    let g = growth(|_| {
        let svc = svc.clone();
        async move {
            let in_flight = tokio::time::timeout(Duration::from_millis(5), svc.oneshot(post()));
            assert!(in_flight.await.is_err(), "dropped in flight");
        }
    });
    grown.push(("HTTP level: dropped in flight", g.await));

    let svc = JsonRpcRetryLayer::http::<Body>(periodic(3, 10))
        .response_limit(16)
        .layer(service_fn(|_: http::Request<Body>| {
            std::future::ready(Ok::<_, std::io::Error>(http_answer(200, OK)))
        }));
    let g = growth(|_| {
        let svc = svc.clone();
        async move { assert!(svc.oneshot(post()).await.is_err(), "over the limit") }
    });
    grown.push(("HTTP level: an answer refused for its size", g.await));

    // The second of three calls is busy when sent with the others, and answers alone:
    // the layer gathers the answer from two exchanges.
    let svc = JsonRpcRetryLayer::http::<Body>(periodic(3, 10)).layer(service_fn(
        |req: http::Request<Body>| async move {
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            let calls: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
            let whole = calls.len() == 3;
            let answers: Vec<serde_json::Value> = calls
                .iter()
                .enumerate()
                .map(|(at, call)| {
                    if whole && at == 1 {
                        json!({"jsonrpc": "2.0", "error": {"code": -32005, "message": "busy"}, "id": call["id"]})
                    } else {
                        json!({"jsonrpc": "2.0", "result": 3, "id": call["id"]})
                    }
                })
                .collect();
            let body = Full::new(Bytes::from(serde_json::to_vec(&answers).unwrap()));
            Ok::<_, std::io::Error>(http::Response::new(body))
        },
    ));
    let g = growth(|i| {
        let svc = svc.clone();
        async move {
            let batch: Vec<_> = (0..3).map(|k| call(3 * i + k)).collect();
            let req = http::Request::post("http://127.0.0.1:1/")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&batch).unwrap())))
                .unwrap();
            let answer = svc.oneshot(req).await.unwrap();
            assert_eq!(answer.status(), 200);
            let body = answer.into_body().collect().await.unwrap().to_bytes();
            let answers: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
            assert_eq!(answers.len(), 3);
            assert!(
                answers.iter().all(|a| a["result"] == json!(3)),
                "{answers:?}"
            );
        }
    });
    grown.push(("HTTP level: a batch retried in part", g.await));

    grown
}

async fn client_over_loopback() -> Vec<(&'static str, i64)> {
    let server = FlakyServer::start().await.unwrap();
    let strategy =
        periodic(3, 10).retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let client = Client::builder(server.uri()).retry(strategy).build();
    let g = growth(|i| {
        let (client, server) = (&client, &server);
        async move {
            match i % 3 {
                0 => server.script("sum", [Step::status(503)]),
                1 => server.script("sum", [Step::error(-32005), Step::error(-32005)]),
                _ => {}
            }
            let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
            assert_eq!(sum, 3);
            // The server's own log of what it saw is not the client's memory.
            server.reset();
        }
    });
    vec![(
        "typed client over loopback: 503s and codes retried",
        g.await,
    )]
}

#[test]
fn live_heap_does_not_grow_with_the_number_of_calls() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let grown = runtime.block_on(async {
        let mut grown = json_rpc_level().await;
        grown.extend(http_level().await);
        grown.extend(client_over_loopback().await);
        grown
    });
    for (path, bytes) in &grown {
        println!("{path}: {bytes:+} bytes over {CALLS} calls");
    }
    let growing: Vec<_> = grown.iter().filter(|(_, bytes)| *bytes > SLACK).collect();
    assert!(growing.is_empty(), "live heap grew: {growing:?}");
}
