//! Happy-path overhead of the retry layer on an in-memory service, and the cost of drawing delays.
//!
//! Every variant calls the same `tower::service_fn` that answers a prepared response, so the
//! figures are the layers' own cost. The ratios printed at the end compare medians measured
//! in this run: the layer against tower's smallest retry policy (clone, never retry), and
//! the HTTP-level layer against a pass-through that only buffers both bodies (what any layer
//! that replays requests and reads answers pays at least).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use common::{
    BufferOnly, CloneNoRetry, CloneNoRetryArc, HttpBody, answering, call_now, default_strategy,
    http_answering, http_call_now, quick, sum_request,
};
use criterion::Criterion;
use serde_json::json;
use tower::retry::Retry;
use tower_jsonrpc_retry::backoff::PeriodicBackoff as Periodic;
use tower_jsonrpc_retry::backoff::{Backoff, BoxBackoff, PeriodicBackoff};
use tower_jsonrpc_retry::jsonrpc::{Request, Response};
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
use tower_layer::Layer;

const GROUP: &str = "happy_path";
const HTTP_GROUP: &str = "http_level";

fn config() -> Criterion {
    let c = Criterion::default().without_plots().configure_from_args();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
            .nresamples(1000)
    } else {
        c.warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(5))
    }
}

fn happy_path(c: &mut Criterion) {
    let response = Response::success(1, json!(3));
    let plain = sum_request();
    let own = common::sum_request_with_strategy();
    let mut group = c.benchmark_group(GROUP);

    // (name, request) pairs: each stack is measured with a plain request and with one
    // carrying its own strategy, so every ratio compares like with like.
    for (suffix, req) in [("", &plain), ("_own_strategy", &own)] {
        let req: &Request = req;
        let mut bare = answering(response.clone());
        group.bench_function(format!("bare{suffix}"), |b| {
            b.iter(|| black_box(call_now(&mut bare, req.clone())))
        });
        let mut tower_min = Retry::new(CloneNoRetry, answering(response.clone()));
        group.bench_function(format!("tower_min{suffix}"), |b| {
            b.iter(|| black_box(call_now(&mut tower_min, req.clone())))
        });
        let mut tower_min_arc = Retry::new(CloneNoRetryArc::default(), answering(response.clone()));
        group.bench_function(format!("tower_min_arc{suffix}"), |b| {
            b.iter(|| black_box(call_now(&mut tower_min_arc, req.clone())))
        });
        let mut layer =
            JsonRpcRetryLayer::new(default_strategy()).layer(answering(response.clone()));
        group.bench_function(format!("layer{suffix}"), |b| {
            b.iter(|| black_box(call_now(&mut layer, req.clone())))
        });
    }
    group.finish();
}

fn http_level(c: &mut Criterion) {
    let mut group = c.benchmark_group(HTTP_GROUP);
    let mut bare = http_answering();
    group.bench_function("http_bare", |b| {
        b.iter(|| black_box(http_call_now(&mut bare)))
    });
    let mut buffering = BufferOnly {
        inner: http_answering(),
        stream_err: std::io::Error::other,
        read: None,
    };
    group.bench_function("http_buffering", |b| {
        b.iter(|| black_box(http_call_now(&mut buffering)))
    });
    let strategy = RetryStrategy::new(Periodic::new(3, Duration::from_secs(1))).codes([-32005]);
    let mut layer = JsonRpcRetryLayer::http::<HttpBody>(strategy).layer(http_answering());
    group.bench_function("http_layer", |b| {
        b.iter(|| black_box(http_call_now(&mut layer)))
    });
    group.finish();
}

fn delay_draw(c: &mut Criterion) {
    let mut group = c.benchmark_group("delay_draw");
    let periodic = PeriodicBackoff::new(3, Duration::from_secs(1));
    let boxed = BoxBackoff::new(periodic.clone());
    // What the policy does at a request's first retry: draw a fresh iterator, take a delay.
    group.bench_function("periodic_direct", |b| {
        b.iter(|| black_box(black_box(&periodic).delays().next()))
    });
    group.bench_function("box_backoff", |b| {
        b.iter(|| black_box(black_box(&boxed).delays().next()))
    });
    group.finish();
}

/// Criterion's median estimate for one benchmark of this run, in ns.
fn median_ns(group: &str, bench: &str) -> Option<f64> {
    let dir = match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        // The bench binary is `<target>/release/deps/overhead-<hash>`.
        None => std::env::current_exe()
            .ok()?
            .parent()?
            .parent()?
            .parent()?
            .join("criterion"),
    };
    let path = dir.join(group).join(bench).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn summary() {
    println!("\nsummary (criterion medians of this run)");
    let rows = [
        ("bare", "tower_min", None),
        ("layer", "tower_min", Some(1.10)),
        ("layer", "tower_min_arc", None),
        ("tower_min_arc", "tower_min", None),
        ("layer", "bare", None),
        ("bare_own_strategy", "tower_min_own_strategy", None),
        ("layer_own_strategy", "tower_min_own_strategy", Some(1.10)),
        ("layer_own_strategy", "bare_own_strategy", None),
    ];
    for (name, base, target) in rows {
        let (Some(a), Some(b)) = (median_ns(GROUP, name), median_ns(GROUP, base)) else {
            println!("  {name}: no estimate (filtered out?)");
            continue;
        };
        let verdict = match target {
            Some(t) if a / b <= t => format!("target <= {t:.2}x: met"),
            Some(t) => format!("target <= {t:.2}x: MISSED"),
            None => String::new(),
        };
        println!(
            "  {name:<20} {a:>8.1} ns  vs {base:<22} {b:>8.1} ns  ratio {:.3}x  {verdict}",
            a / b
        );
    }
    for (name, base) in [
        ("http_buffering", "http_bare"),
        ("http_layer", "http_buffering"),
        ("http_layer", "http_bare"),
    ] {
        if let (Some(a), Some(b)) = (median_ns(HTTP_GROUP, name), median_ns(HTTP_GROUP, base)) {
            println!(
                "  {name:<20} {a:>8.1} ns  vs {base:<22} {b:>8.1} ns  ratio {:.3}x, {:+.0} ns",
                a / b,
                a - b
            );
        }
    }
    if let (Some(d), Some(b)) = (
        median_ns("delay_draw", "periodic_direct"),
        median_ns("delay_draw", "box_backoff"),
    ) {
        println!(
            "  delay draw: BoxBackoff {b:.1} ns, PeriodicBackoff directly {d:.1} ns ({:.2}x)",
            b / d
        );
    }
}

fn main() {
    let mut c = config();
    happy_path(&mut c);
    http_level(&mut c);
    delay_draw(&mut c);
    c.final_summary();
    summary();
}
