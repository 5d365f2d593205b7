//! Heap allocations per happy-path call, counted by a counting global allocator.
//!
//! In memory: the bare service, tower's smallest retry policy and the layer, each with a
//! plain request and with one that carries its own strategy; and at the HTTP level, the
//! bare HTTP service, a pass-through that only buffers both bodies, and the HTTP-level
//! layer. Over loopback: the whole
//! stack (client and server in this process) with and without the layer, so the
//! difference is what the layer adds there.

// A counting global allocator needs `unsafe impl GlobalAlloc`; the library forbids unsafe code.
#![allow(unsafe_code)]

#[path = "common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{CloneNoRetry, answering, call_now, default_strategy, quick, sum_request};
use serde_json::json;
use tower::retry::Retry;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::JsonRpcRetryLayer;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{Request, Response};
use tower_jsonrpc_retry::test_util::FlakyServer;
use tower_layer::Layer;

/// Counts allocations (and reallocations) and the bytes they ask for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

/// Allocations and bytes per call of `f`, over `n` calls after a warm-up.
fn per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..100 {
        f();
    }
    let (a0, b0) = snapshot();
    for _ in 0..n {
        f();
    }
    let (a1, b1) = snapshot();
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

fn row(name: &str, (allocs, bytes): (f64, f64), base: Option<(&str, (f64, f64))>) {
    let extra = match base {
        Some((base_name, (ba, bb))) => {
            format!(
                "  {:+.2} allocs, {:+.0} B vs {base_name}",
                allocs - ba,
                bytes - bb
            )
        }
        None => String::new(),
    };
    println!("  {name:<24} {allocs:>7.2} allocs/call {bytes:>8.1} B/call{extra}");
}

fn in_memory(n: u64) {
    println!("in memory ({n} calls each)");
    let response = Response::success(1, json!(3));
    for (suffix, req) in [
        ("", sum_request()),
        (" (own strategy)", common::sum_request_with_strategy()),
    ] {
        let mut bare = answering(response.clone());
        let b = per_call(n, || drop(call_now(&mut bare, req.clone())));
        let mut tower_min = Retry::new(CloneNoRetry, answering(response.clone()));
        let t = per_call(n, || drop(call_now(&mut tower_min, req.clone())));
        let mut layer =
            JsonRpcRetryLayer::new(default_strategy()).layer(answering(response.clone()));
        let l = per_call(n, || drop(call_now(&mut layer, req.clone())));
        row(&format!("bare{suffix}"), b, None);
        row(&format!("tower_min{suffix}"), t, Some(("bare", b)));
        row(&format!("layer{suffix}"), l, Some(("bare", b)));
        row(&format!("layer{suffix}"), l, Some(("tower_min", t)));
    }
}

fn http_level(n: u64) {
    println!("in memory, HTTP level ({n} calls each)");
    let mut bare = common::http_answering();
    let b = per_call(n, || {
        std::hint::black_box(common::http_call_now(&mut bare));
    });
    let mut buffering = common::BufferOnly {
        inner: common::http_answering(),
        stream_err: std::io::Error::other,
        read: None,
    };
    let f = per_call(n, || {
        std::hint::black_box(common::http_call_now(&mut buffering));
    });
    let mut layer = JsonRpcRetryLayer::http::<common::HttpBody>(default_strategy())
        .layer(common::http_answering());
    let l = per_call(n, || {
        std::hint::black_box(common::http_call_now(&mut layer));
    });
    row("http bare", b, None);
    row("http buffering", f, Some(("http bare", b)));
    row("http layer", l, Some(("http buffering", f)));
}

/// Allocations per call of a `sum` over loopback; client and server both count, so only
/// the difference between two stacks means anything.
async fn loopback_per_call<S>(svc: S, n: u64) -> (f64, f64)
where
    S: Service<Request, Response = Response> + Clone,
    S::Error: std::fmt::Debug,
{
    let call = || {
        let svc = svc.clone();
        async move { svc.oneshot(sum_request()).await.expect("sum over loopback") }
    };
    for _ in 0..200 {
        call().await;
    }
    let (a0, b0) = snapshot();
    for _ in 0..n {
        call().await;
    }
    let (a1, b1) = snapshot();
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

fn loopback(n: u64) {
    println!("over loopback, one caller, client and server counted together ({n} calls each)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = FlakyServer::start().await.expect("server");
        let http = || {
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>()
        };
        let codec = ServiceBuilder::new()
            .layer(JsonRpcCodecLayer::new(server.uri()))
            .service(http());
        let layered = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(default_strategy()))
            .layer(JsonRpcCodecLayer::new(server.uri()))
            .service(http());
        // Interleave, so drift in the server's state (recorded bodies grow) hits both.
        let mut c = Vec::new();
        let mut l = Vec::new();
        for _ in 0..4 {
            c.push(loopback_per_call(codec.clone(), n / 4).await);
            l.push(loopback_per_call(layered.clone(), n / 4).await);
        }
        let avg = |v: &[(f64, f64)]| {
            let k = v.len() as f64;
            (
                v.iter().map(|x| x.0).sum::<f64>() / k,
                v.iter().map(|x| x.1).sum::<f64>() / k,
            )
        };
        let (c, l) = (avg(&c), avg(&l));
        row("codec", c, None);
        row("layer + codec", l, Some(("codec", c)));
    });
}

fn main() {
    let n = if quick() { 10_000 } else { 1_000_000 };
    in_memory(n);
    http_level(n);
    loopback(if quick() { 400 } else { 4_000 });
}
