//! End-to-end throughput over loopback HTTP: the layer against no layer, the retry path
//! against a clean call, this crate's `Client` against jsonrpsee's HTTP client, and the
//! `Client` over HTTP/2 against itself over HTTP/1.1.
//!
//! Everything runs against one `FlakyServer` in this process, on a tokio runtime with two
//! workers. The machine may be shared, so absolute numbers drift: each comparison runs its
//! variants in alternating rounds (A B, B A, ...) and reports the median of the per-round
//! throughput ratios, which drift affects far less than it affects each figure alone.

#[path = "common/mod.rs"]
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{BufferOnly, default_strategy, median, quick, zero_delay_strategy};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::http_client::transport::Error as TransportError;
use jsonrpsee::rpc_params;
use serde_json::{Value, json};
use tower::layer::layer_fn;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{Request, Response};
use tower_jsonrpc_retry::test_util::FlakyServer;
use tower_jsonrpc_retry::{Client, JsonRpcRetryLayer};

type CallFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// One caller of a variant: each call makes one call (the boxed future costs every variant
/// the same).
type Caller = Box<dyn FnMut() -> CallFuture + Send>;
/// Makes a caller with its own clone of the variant's client or service (the layered
/// service is `Send` but not `Sync`, so callers cannot share one).
type Call = Box<dyn Fn() -> Caller>;

struct Settings {
    /// Runs only the sections whose name contains this (the first argument that is not a
    /// flag: `cargo bench --bench loopback -- jsonrpsee`; the sections are `e2e`,
    /// `retry`, `peers`, `http2`, `sensitivity`, `jsonrpsee` and `latency`).
    only: Option<String>,
    rounds: usize,
    /// Calls per sample with one caller.
    calls_single: usize,
    /// Calls per caller per sample with 64 callers.
    calls_each_64: usize,
}

impl Settings {
    fn wants(&self, section: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| section.contains(only))
    }
}

fn settings() -> Settings {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if quick() {
        Settings {
            only,
            rounds: 3,
            calls_single: 200,
            calls_each_64: 8,
        }
    } else {
        Settings {
            only,
            rounds: 31,
            calls_single: 1_000,
            calls_each_64: 40,
        }
    }
}

fn http() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// A call of `method` through a service stack kept across calls (cloned per call, as
/// `Client` does).
fn stack_call<S>(svc: S, method: &'static str) -> Call
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
{
    Box::new(move || {
        let svc = svc.clone();
        Box::new(move || {
            let svc = svc.clone();
            Box::pin(async move {
                let req = Request::new(method, json!([1, 2])).with_id(1);
                let resp = svc.oneshot(req).await.expect("call over loopback");
                assert_eq!(resp.result(), Some(&json!(3)), "{resp:?}");
            })
        })
    })
}

/// A call of `sum` through the typed client (cloned per caller and per call).
fn client_call(client: Client) -> Call {
    Box::new(move || {
        let client = client.clone();
        Box::new(move || {
            let client = client.clone();
            Box::pin(async move {
                let sum: i64 = client.call("sum", (1, 2)).await.expect("client call");
                assert_eq!(sum, 3);
            })
        })
    })
}

/// Seconds taken by `callers` tasks each making `each` calls.
async fn sample(call: &Call, callers: usize, each: usize) -> f64 {
    let start = Instant::now();
    if callers == 1 {
        let mut caller = call();
        for _ in 0..each {
            caller().await;
        }
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let mut caller = call();
            tasks.spawn(async move {
                for _ in 0..each {
                    caller().await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("caller task");
        }
    }
    start.elapsed().as_secs_f64()
}

struct Outcome {
    /// Median calls per second of the baseline and of the candidate.
    base_rate: f64,
    cand_rate: f64,
    /// Median over rounds of candidate time / baseline time.
    time_ratio: f64,
}

/// Runs `base` and `cand` in alternating rounds after one warm-up round.
async fn compare(
    server: &FlakyServer,
    base: &Call,
    cand: &Call,
    callers: usize,
    each: usize,
    rounds: usize,
) -> Outcome {
    let calls = (callers * each) as f64;
    sample(base, callers, each).await;
    sample(cand, callers, each).await;
    let (mut b, mut c, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // The server records every body; forget them so memory stays flat.
        server.reset();
        let (tb, tc) = if round % 2 == 0 {
            let tb = sample(base, callers, each).await;
            (tb, sample(cand, callers, each).await)
        } else {
            let tc = sample(cand, callers, each).await;
            (sample(base, callers, each).await, tc)
        };
        b.push(calls / tb);
        c.push(calls / tc);
        ratios.push(tc / tb);
    }
    Outcome {
        base_rate: median(&mut b),
        cand_rate: median(&mut c),
        time_ratio: median(&mut ratios),
    }
}

/// What a comparison is held to: a floor on the candidate's throughput against the
/// baseline's, a ceiling on its time, or none (with what the figure is for).
#[derive(Clone, Copy)]
enum Target {
    Floor(f64),
    TimeCeiling(f64),
    None(&'static str),
}

fn report(what: &str, base: &str, cand: &str, o: &Outcome, target: Target) {
    let throughput = 1.0 / o.time_ratio;
    let (target, verdict) = match target {
        Target::Floor(floor) => (
            format!(">= {floor:?}x throughput"),
            if throughput >= floor { "met" } else { "MISSED" },
        ),
        Target::TimeCeiling(ceiling) => (
            format!("<= {ceiling:?}x time"),
            if o.time_ratio <= ceiling {
                "met"
            } else {
                "MISSED"
            },
        ),
        Target::None(why) => (format!("none ({why})"), "-"),
    };
    println!(
        "{what:<26} {base} {:>9.0} calls/s | {cand} {:>9.0} calls/s | time ratio {:.3}x, throughput ratio {:.3}x | target {target}: {verdict}",
        o.base_rate, o.cand_rate, o.time_ratio, throughput,
    );
}

async fn run(s: Settings) {
    let server = FlakyServer::start().await.expect("server");
    let uri = server.uri();

    // The retry path: every call's first attempt answers -32005, the second succeeds.
    let fail_next = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&fail_next);
    server.handle("flaky_sum", move |params: &Value| {
        if flag.fetch_xor(true, Ordering::Relaxed) {
            Err((-32005, "limit exceeded".to_owned()))
        } else {
            Ok(Value::from(params.as_array().map_or(0, |a| {
                a.iter().filter_map(Value::as_i64).sum::<i64>()
            })))
        }
    });

    if s.wants("e2e") {
        // 3. The layer over the codec against the codec alone.
        let codec = ServiceBuilder::new()
            .layer(JsonRpcCodecLayer::new(uri.clone()))
            .service(http());
        let layered = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(default_strategy()))
            .layer(JsonRpcCodecLayer::new(uri.clone()))
            .service(http());
        let codec_twin = ServiceBuilder::new()
            .layer(JsonRpcCodecLayer::new(uri.clone()))
            .service(http());
        let (base, cand) = (stack_call(codec, "sum"), stack_call(layered, "sum"));
        // The noise floor: two identical stacks compared the same way.
        let twin = stack_call(codec_twin, "sum");
        for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
            let o = compare(&server, &base, &twin, callers, each, s.rounds).await;
            report(
                &format!("A/A noise, {callers} caller(s)"),
                "codec",
                "codec twin",
                &o,
                Target::None("noise floor"),
            );
        }
        for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
            let o = compare(&server, &base, &cand, callers, each, s.rounds).await;
            report(
                &format!("e2e, {callers} caller(s)"),
                "codec",
                "layer+codec",
                &o,
                Target::Floor(0.98),
            );
        }
    }

    if s.wants("retry") {
        // 4. The retry path: one zero-delay retry against a clean call, same stack.
        let zero = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(zero_delay_strategy()))
            .layer(JsonRpcCodecLayer::new(uri.clone()))
            .service(http());
        let clean = stack_call(zero.clone(), "sum");
        let retried = stack_call(zero, "flaky_sum");
        fail_next.store(true, Ordering::Relaxed);
        let o = compare(&server, &clean, &retried, 1, s.calls_single / 2, s.rounds).await;
        assert!(
            server.calls("flaky_sum") >= 2 * (s.calls_single / 2),
            "every flaky call took two attempts"
        );
        report(
            "retry path, 1 caller",
            "clean",
            "retried once",
            &o,
            Target::TimeCeiling(2.1),
        );
    }

    let peer = jsonrpsee_plain(&uri.to_string());

    if s.wants("peers") {
        // 6. Peers: jsonrpsee's HTTP client (no retry) against `Client` with a retry strategy.
        let ours = client_call(
            Client::builder(uri.clone())
                .retry(default_strategy())
                .build(),
        );
        for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
            let o = compare(&server, &peer, &ours, callers, each, s.rounds).await;
            report(
                &format!("peers, {callers} caller(s)"),
                "jsonrpsee",
                "Client",
                &o,
                Target::Floor(1.0),
            );
        }
    }

    #[cfg(feature = "http2")]
    if s.wants("http2") {
        // The typed client over HTTP/2 (prior knowledge: every call on one connection)
        // against the same client over HTTP/1.1 (a pool of connections, one per caller).
        let http1 = client_call(
            Client::builder(uri.clone())
                .retry(default_strategy())
                .build(),
        );
        let http2 = client_call(
            Client::builder(uri.clone())
                .retry(default_strategy())
                .http2_prior_knowledge()
                .build(),
        );
        for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
            let o = compare(&server, &http1, &http2, callers, each, s.rounds).await;
            report(
                &format!("http2, {callers} caller(s)"),
                "Client HTTP/1.1",
                "Client HTTP/2",
                &o,
                Target::None("the protocols compared"),
            );
        }
    }

    if s.wants("sensitivity") {
        // 9. What a fixed amount of work per call costs on this bench: the buffering
        // pass-through that also busy-waits a set time on every call, against no
        // middleware. Read beside row 7: it tells how much time per call a layer may
        // spend on the caller's path for a given throughput ratio.
        for busy_us in [1u64, 2, 4] {
            let busy = jsonrpsee_call(
                HttpClientBuilder::default()
                    .max_concurrent_requests(1024)
                    .set_http_middleware(ServiceBuilder::new().layer(layer_fn(move |inner| Busy {
                        inner: buffering(inner, None),
                        busy: Duration::from_micros(busy_us),
                    })))
                    .build(uri.to_string())
                    .expect("jsonrpsee client with a busy pass-through"),
            );
            for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
                let o = compare(&server, &peer, &busy, callers, each, s.rounds).await;
                report(
                    &format!("busy {busy_us} us, {callers}"),
                    "jsonrpsee",
                    "jsonrpsee+buffering+busy",
                    &o,
                    Target::None("sensitivity"),
                );
            }
        }
    }

    if s.wants("jsonrpsee") {
        // 7. jsonrpsee's client with the HTTP-level layer in its middleware slot, against the
        // same client without it: the request body is buffered and decoded once per call.
        // Beside it, the floor of any layer that buffers both bodies (as the HTTP-level
        // layer must, to replay requests and read error codes): a pass-through that only
        // buffers; one that also reads both messages the least a layer deciding on
        // JSON-RPC answers must; and the layer against the first.
        let layered_peer = jsonrpsee_layered(&uri.to_string());
        let buffering = jsonrpsee_buffering(&uri.to_string(), None);
        let reading = jsonrpsee_buffering(&uri.to_string(), Some(common::least_reading));
        for (callers, each) in [(1, s.calls_single), (64, s.calls_each_64)] {
            let o = compare(&server, &peer, &layered_peer, callers, each, s.rounds).await;
            report(
                &format!("jsonrpsee+layer, {callers}"),
                "jsonrpsee",
                "jsonrpsee+http layer",
                &o,
                Target::Floor(0.97),
            );
            let o = compare(&server, &peer, &buffering, callers, each, s.rounds).await;
            report(
                &format!("buffering only, {callers}"),
                "jsonrpsee",
                "jsonrpsee+buffering",
                &o,
                Target::None("the floor"),
            );
            let o = compare(&server, &peer, &reading, callers, each, s.rounds).await;
            report(
                &format!("least reading, {callers}"),
                "jsonrpsee",
                "jsonrpsee+buffering+reading",
                &o,
                Target::None("what any JSON-RPC-aware layer pays"),
            );
            let o = compare(&server, &buffering, &layered_peer, callers, each, s.rounds).await;
            report(
                &format!("layer vs floor, {callers}"),
                "jsonrpsee+buffering",
                "jsonrpsee+http layer",
                &o,
                Target::None("what decisions cost"),
            );
        }
    }
    if s.wants("latency") {
        with_latency(&s).await;
    }
}

/// Row 7 again against a server 1 ms away: what the layer costs once answers take a
/// network round trip (a node on the same network), not a loopback hop.
async fn with_latency(s: &Settings) {
    let server = FlakyServer::start().await.expect("server");
    server.latency(Duration::from_millis(1));
    let uri = server.uri().to_string();
    let (peer, layered) = (jsonrpsee_plain(&uri), jsonrpsee_layered(&uri));
    // A call takes a millisecond or two: fewer calls per sample keep the section short.
    let (single, each_64) = (s.calls_single / 5, s.calls_each_64 / 2);
    for (callers, each) in [(1, single), (64, each_64)] {
        let o = compare(&server, &peer, &layered, callers, each, s.rounds).await;
        report(
            &format!("1 ms away, {callers}"),
            "jsonrpsee",
            "jsonrpsee+http layer",
            &o,
            Target::None("context for row 7"),
        );
    }
}

/// Callers of jsonrpsee's HTTP client with no middleware: the baseline of sections 6, 7
/// and `latency`.
fn jsonrpsee_plain(uri: &str) -> Call {
    jsonrpsee_call(
        HttpClientBuilder::default()
            .max_concurrent_requests(1024)
            .build(uri)
            .expect("jsonrpsee client"),
    )
}

/// Callers of jsonrpsee's HTTP client with the HTTP-level layer in its middleware slot.
fn jsonrpsee_layered(uri: &str) -> Call {
    let layer = JsonRpcRetryLayer::http(default_strategy())
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    jsonrpsee_call(
        HttpClientBuilder::default()
            .max_concurrent_requests(1024)
            .set_http_middleware(ServiceBuilder::new().layer(layer))
            .build(uri)
            .expect("jsonrpsee client with the layer"),
    )
}

/// The buffering pass-through over jsonrpsee's HTTP transport, reading both messages
/// with `read` if given.
fn buffering<S>(inner: S, read: Option<common::Read>) -> BufferOnly<S, TransportError> {
    BufferOnly {
        inner,
        stream_err: |e| TransportError::Http(HttpError::Stream(e)),
        read,
    }
}

/// Callers of jsonrpsee's HTTP client with the buffering pass-through in its middleware
/// slot: the floor of row 7 and, with [`common::least_reading`], its yardstick.
fn jsonrpsee_buffering(uri: &str, read: Option<common::Read>) -> Call {
    jsonrpsee_call(
        HttpClientBuilder::default()
            .max_concurrent_requests(1024)
            .set_http_middleware(
                ServiceBuilder::new().layer(layer_fn(move |inner| buffering(inner, read))),
            )
            .build(uri)
            .expect("jsonrpsee client with a buffering pass-through"),
    )
}

/// A middleware that busy-waits a set time on every call before passing it on: a
/// stand-in for a layer that spends that much time on the caller's path.
#[derive(Clone)]
struct Busy<S> {
    inner: S,
    busy: Duration,
}

impl<S: Service<R>, R> Service<R> for Busy<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        let start = Instant::now();
        while start.elapsed() < self.busy {
            std::hint::spin_loop();
        }
        self.inner.call(req)
    }
}

/// Callers of `sum(1, 2)` on a jsonrpsee client, whatever its middleware.
fn jsonrpsee_call<C>(client: C) -> Call
where
    C: ClientT + Clone + Send + Sync + 'static,
{
    Box::new(move || {
        let client = client.clone();
        Box::new(move || {
            let client = client.clone();
            Box::pin(async move {
                let sum: i64 = client
                    .request("sum", rpc_params![1, 2])
                    .await
                    .expect("jsonrpsee call");
                assert_eq!(sum, 3);
            })
        })
    })
}

fn main() {
    let s = settings();
    println!(
        "loopback: {} rounds, {} calls per sample with 1 caller, 64 x {} with 64 callers",
        s.rounds, s.calls_single, s.calls_each_64
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(s));
}
