//! Cloning a `jsonrpc::Request` is O(1): a request with ~1 KiB of params clones as fast as
//! one with ~10 bytes, because the method and the params are shared, not copied. A deep
//! `serde_json::Value::clone` of the same 1 KiB params is measured alongside as a baseline.
//!
//! `BENCH_QUICK=1 cargo bench --bench request_clone` runs a short version (a few seconds).

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::{Value, json};
use tower_jsonrpc_retry::jsonrpc::Request;

/// ~10 bytes of params, serialized.
fn small_params() -> Value {
    json!(["abcdef"])
}

/// ~1 KiB of params, serialized: an `eth_call`-like object plus a list of log filters.
fn large_params() -> Value {
    let topics: Vec<Value> = (0..12)
        .map(|i| json!({"address": format!("0x{i:040x}"), "topic": i, "ok": true}))
        .collect();
    json!([{"to": format!("0x{:040x}", 0xdead_beef_u64), "data": "0x70a08231"}, topics])
}

fn request(params: Value) -> Request {
    // An owned method name, as read from configuration: the shared (`Arc`) path.
    Request::new(String::from("eth_call"), params).with_id(1)
}

/// Total (iterations, time) measured per case, to compute the ratio after the run.
#[derive(Default)]
struct Totals {
    cases: Vec<(&'static str, u64, Duration)>,
}

impl Totals {
    fn add(&mut self, name: &'static str, iters: u64, elapsed: Duration) {
        match self.cases.iter_mut().find(|c| c.0 == name) {
            Some(case) => {
                case.1 += iters;
                case.2 += elapsed;
            }
            None => self.cases.push((name, iters, elapsed)),
        }
    }

    fn ns_per_iter(&self, name: &str) -> f64 {
        self.cases
            .iter()
            .find(|c| c.0 == name)
            .map_or(f64::NAN, |c| c.2.as_nanos() as f64 / c.1.max(1) as f64)
    }
}

/// Times `iters` runs of `f`, records them under `name`, and hands the time to criterion.
fn timed<T>(
    totals: &RefCell<Totals>,
    name: &'static str,
    iters: u64,
    mut f: impl FnMut() -> T,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    let elapsed = start.elapsed();
    totals.borrow_mut().add(name, iters, elapsed);
    elapsed
}

const SMALL: &str = "Request::clone, 10 B params";
const LARGE: &str = "Request::clone, 1 KiB params";
const DEEP: &str = "Value::clone, 1 KiB params (baseline)";

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v == "1");
    let mut criterion = Criterion::default();
    if quick {
        criterion = criterion
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(20);
    }
    let mut criterion = criterion.configure_from_args();

    let small = request(small_params());
    let large = request(large_params());
    let large_value = large_params();
    let small_len = serde_json::to_vec(&small_params()).map_or(0, |v| v.len());
    let large_len = serde_json::to_vec(&large_value).map_or(0, |v| v.len());
    println!("params: small {small_len} bytes, large {large_len} bytes (serialized)");

    let totals = RefCell::new(Totals::default());
    {
        let mut group = criterion.benchmark_group("request_clone");
        group.bench_function(SMALL, |b| {
            b.iter_custom(|iters| timed(&totals, SMALL, iters, || small.clone()));
        });
        group.bench_function(LARGE, |b| {
            b.iter_custom(|iters| timed(&totals, LARGE, iters, || large.clone()));
        });
        group.bench_function(DEEP, |b| {
            b.iter_custom(|iters| timed(&totals, DEEP, iters, || large_value.clone()));
        });
        group.finish();
    }
    criterion.final_summary();

    // Warm-up and measurement iterations together: a mean over everything that ran.
    let totals = totals.into_inner();
    let (s, l, d) = (
        totals.ns_per_iter(SMALL),
        totals.ns_per_iter(LARGE),
        totals.ns_per_iter(DEEP),
    );
    println!();
    println!("mean ns per clone (clone + drop):");
    println!("  {SMALL:<40} {s:>9.2} ns");
    println!("  {LARGE:<40} {l:>9.2} ns");
    println!("  {DEEP:<40} {d:>9.2} ns");
    println!("ratio clone(1 KiB) / clone(10 B) = {:.2}", l / s);
    println!(
        "ratio deep Value::clone(1 KiB) / Request::clone(1 KiB) = {:.1}",
        d / l
    );
}
