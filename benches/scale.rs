//! Memory at scale: the size of the response futures, and what each call costs while it
//! waits in backoff, with 100,000 calls (10,000 with `BENCH_QUICK=1`) waiting at once.
//! Time at scale: a batch retried in part, per item, large against small (linear work
//! keeps the ratio near 1; a lookup by scanning would grow it with the size).
//!
//! Live heap bytes come from a counting global allocator (exact); resident memory from
//! `/proc/self/status` (what the system sees, allocator slack included).

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/live_heap.rs"]
mod live_heap;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

use common::{CloneNoRetry, InnerError, answering, proc_status_kib, quick, sum_request};
use live_heap::live;
use serde_json::json;
use tower::retry::Retry;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, ErrorObject, Request, Response};
use tower_jsonrpc_retry::{JsonRpcRetryLayer, JsonRpcRetryPolicy, RetryStrategy};
use tower_layer::Layer;

fn rss() -> u64 {
    proc_status_kib("VmRSS").unwrap_or(0)
}

fn sizes() {
    println!("sizes (bytes)");
    println!(
        "  Request                            {:>5}",
        size_of::<Request>()
    );
    println!(
        "  Response                           {:>5}",
        size_of::<Response>()
    );
    println!(
        "  JsonRpcRetryPolicy                 {:>5}",
        size_of::<JsonRpcRetryPolicy>()
    );
    println!(
        "  tokio Sleep                        {:>5}",
        size_of::<tokio::time::Sleep>()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let response = Response::success(1, json!(3));

    // In memory.
    let mut bare = answering(response.clone());
    let mut tower_min = Retry::new(CloneNoRetry, answering(response.clone()));
    let mut layer = JsonRpcRetryLayer::new(common::default_strategy()).layer(answering(response));
    let b = size_of_val(&bare.call(sum_request()));
    let t = size_of_val(&tower_min.call(sum_request()));
    let l = size_of_val(&layer.call(sum_request()));
    println!("  in-memory service_fn future        {b:>5}");
    println!(
        "  tower_min (CloneNoRetry) future    {t:>5}  (+{} over the inner future)",
        t - b
    );
    println!(
        "  layer future (in memory)           {l:>5}  (+{} over the inner future, +{} over tower_min)",
        l - b,
        l - t
    );

    // The real stack: hyper-util client, codec, layer.
    let uri: http::Uri = "http://127.0.0.1:9/".parse().expect("uri");
    let mut hyper = common_http();
    let hyper_req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
    let h = size_of_val(&hyper.call(hyper_req));
    let mut codec = ServiceBuilder::new()
        .layer(JsonRpcCodecLayer::new(uri.clone()))
        .service(common_http());
    let c = size_of_val(&Service::<Request>::call(&mut codec, sum_request()));
    let mut stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(common::default_strategy()))
        .layer(JsonRpcCodecLayer::new(uri))
        .service(common_http());
    let s = size_of_val(&Service::<Request>::call(&mut stack, sum_request()));
    println!("  hyper-util client future           {h:>5}");
    println!(
        "  codec future (over hyper-util)     {c:>5}  (+{} over hyper-util's)",
        c - h
    );
    println!(
        "  layer future (over codec)          {s:>5}  (+{} over the codec's)",
        s - c
    );
}

fn common_http() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// An in-memory service that answers every call with a retryable -32005, counting calls.
fn rate_limited(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request,
    Response = Response,
    Error = InnerError,
    Future = impl Future<Output = Result<Response, InnerError>> + Send,
> + Clone
+ Send {
    service_fn(move |req: Request| {
        calls.fetch_add(1, Ordering::Relaxed);
        let id = req
            .id()
            .cloned()
            .unwrap_or(tower_jsonrpc_retry::jsonrpc::Id::Null);
        async move {
            Ok::<_, InnerError>(Response::failure(
                id,
                ErrorObject::new(-32005, "limit exceeded"),
            ))
        }
    })
}

/// A strategy whose one retry waits an hour: every call parks in backoff.
fn parked() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(3600))).codes([-32005])
}

fn requests(n: usize) -> Vec<Request> {
    (0..n)
        .map(|i| Request::new("sum", json!([i, 1])).with_id(i as i64))
        .collect()
}

fn per_call(what: &str, n: usize, heap0: i64, rss0: u64) {
    let heap = (live() - heap0).max(0) as f64 / n as f64;
    let rss_per = rss().saturating_sub(rss0) as f64 * 1024.0 / n as f64;
    println!(
        "  {what:<40} heap {heap:>7.1} B/call, RSS {rss_per:>7.1} B/call  (target < 1024 B: {})",
        if heap.max(rss_per) < 1024.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// `n` calls polled once each and kept, as `join_all` keeps them: the call's own footprint.
fn waiting_futures(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut svc = JsonRpcRetryLayer::new(parked()).layer(rate_limited(Arc::clone(&calls)));
        let reqs = requests(n);
        let (heap0, rss0) = (live(), rss());
        let mut waiting = Vec::with_capacity(n);
        let mut cx = Context::from_waker(Waker::noop());
        for req in reqs {
            let mut fut = Box::pin(svc.call(req));
            assert!(fut.as_mut().poll(&mut cx).is_pending(), "the call waits");
            waiting.push(fut);
        }
        assert_eq!(calls.load(Ordering::Relaxed), n);
        per_call("boxed futures, polled once (join_all)", n, heap0, rss0);
        drop(waiting);
    });
}

/// `n` spawned tasks, each a call: adds tokio's task header and scheduling state.
fn waiting_tasks(n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = JsonRpcRetryLayer::new(parked()).layer(rate_limited(Arc::clone(&calls)));
        let reqs = requests(n);
        let (heap0, rss0) = (live(), rss());
        let mut handles = Vec::with_capacity(n);
        for req in reqs {
            handles.push(tokio::spawn(svc.clone().oneshot(req)));
        }
        while calls.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        per_call("spawned tasks, all in backoff", n, heap0, rss0);
        for h in &handles {
            h.abort();
        }
    });
}

/// An in-memory service that answers a batch's every call, failing the even ids with a
/// retryable -32005 the first time it sees a batch and answering everything after.
fn half_failing_once() -> impl Service<
    BatchRequest,
    Response = BatchResponse,
    Error = InnerError,
    Future = impl Future<Output = Result<BatchResponse, InnerError>> + Send,
> + Clone
+ Send {
    let first = Arc::new(AtomicUsize::new(0));
    service_fn(move |batch: BatchRequest| {
        let failing = first.fetch_add(1, Ordering::Relaxed) == 0;
        let items = batch
            .requests()
            .iter()
            .filter_map(|r| r.id().cloned())
            .map(|id| match id {
                tower_jsonrpc_retry::jsonrpc::Id::Number(n) if failing && n % 2 == 0 => {
                    Response::failure(id, ErrorObject::new(-32005, "limit exceeded"))
                }
                id => Response::success(id, json!(1)),
            })
            .collect();
        async move { Ok::<_, InnerError>(BatchResponse::new(items)) }
    })
}

/// Nanoseconds per item of a batch of `n` calls whose even half is retried once (zero
/// delay), through the retry layer alone: the median of `rounds` runs.
fn batch_ns_per_item(n: usize, rounds: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::ZERO)).codes([-32005]);
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let svc = JsonRpcRetryLayer::new(strategy.clone()).layer(half_failing_once());
            let batch = BatchRequest::new(requests(n));
            let start = std::time::Instant::now();
            let answers = rt.block_on(svc.oneshot(batch)).expect("batch");
            let took = start.elapsed().as_nanos() as f64;
            assert!(answers.items().iter().all(|r| !r.is_error()));
            took / n as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times.get(rounds / 2).copied().unwrap_or(f64::NAN)
}

fn batch_scaling() {
    let (small, large, rounds) = (1_000, 16_000, if quick() { 3 } else { 11 });
    let per_small = batch_ns_per_item(small, rounds);
    let per_large = batch_ns_per_item(large, rounds);
    println!(
        "a batch with its even half retried once, per item: {small} items {per_small:.0} ns, \
         {large} items {per_large:.0} ns, ratio {:.2}x (linear: about 1x; a lookup by \
         scanning: about {}x)",
        per_large / per_small,
        large / small
    );
}

fn main() {
    sizes();
    batch_scaling();
    let n = if quick() { 10_000 } else { 100_000 };
    println!("{n} calls waiting in backoff at once (per call, beyond the request itself)");
    waiting_futures(n);
    waiting_tasks(n);
    println!(
        "  peak RSS of this process (VmHWM)         {} KiB",
        proc_status_kib("VmHWM").unwrap_or(0)
    );
}
