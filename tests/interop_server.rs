//! Interoperability with a real JSON-RPC server: jsonrpsee's, started on 127.0.0.1,
//! driven by the typed `Client`, by `JsonRpcRetryLayer::new` over `JsonRpcCodecLayer`,
//! and by jsonrpsee's own `HttpClient` with `JsonRpcRetryLayer::http` in its middleware.
//!
//! The server runs on tokio's real clock (its sockets and hyper's timers need it), so
//! every backoff here is zero and no test sleeps. Attempts are counted on the server:
//! per method (or per key), per HTTP request and per TCP connection.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonrpsee::core::client::{ClientT, Error as JsonrpseeError};
use jsonrpsee::core::http_helpers::HttpError;
use jsonrpsee::core::middleware::layer::RpcLogger;
use jsonrpsee::core::middleware::{
    Batch, BatchEntry, Notification, RpcServiceBuilder, RpcServiceT,
};
use jsonrpsee::core::params::{ArrayParams, BatchRequestBuilder, ObjectParams};
use jsonrpsee::http_client::transport::{Error as TransportError, HttpBackend};
use jsonrpsee::http_client::{HttpBody, HttpClient, HttpClientBuilder, RpcService};
use jsonrpsee::rpc_params;
use jsonrpsee::server::{
    BatchRequestConfig, RpcModule, ServerBuilder, ServerConfig, ServerHandle,
    serve_with_graceful_shutdown, stop_channel,
};
use jsonrpsee::types::ErrorObjectOwned;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::retry::HttpRetry;
use tower_jsonrpc_retry::{Client, ClientError, ErrorClass, JsonRpcRetry, JsonRpcRetryLayer};
use tower_jsonrpc_retry::{RetryEvent, RetryStrategy};

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// Calls seen per key (a method name, or `once:<key>`).
type Seen = Arc<Mutex<HashMap<String, u32>>>;

fn bump(seen: &Seen, key: &str) -> u32 {
    let mut seen = seen.lock().unwrap();
    let n = seen.entry(key.to_owned()).or_default();
    *n += 1;
    *n
}

fn busy() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(2001, "busy", None::<()>)
}

#[derive(Deserialize)]
struct Sum {
    a: i64,
    b: i64,
}

/// The server's methods. `sum` takes `[a, b]` or `{"a": .., "b": ..}`; `value` returns a
/// value of every JSON type by name; `flaky` fails with 2001 its first `n` calls;
/// `once` fails with 2001 the first call for each key; `fail` always fails with the
/// code it is given; `big` returns a string of `n` bytes; `log` does nothing.
fn module(seen: Seen, gate: Gate) -> RpcModule<Seen> {
    let mut m = RpcModule::new(seen);
    m.register_async_method("hold", move |_, seen, _| {
        let gate = Arc::clone(&gate);
        async move {
            bump(&seen, "hold");
            gate.entered.notify_one();
            gate.release.notified().await;
        }
    })
    .unwrap();
    m.register_method("sum", |params, seen, _| {
        bump(seen, "sum");
        let Sum { a, b } = params.parse()?;
        Ok::<_, ErrorObjectOwned>(a + b)
    })
    .unwrap();
    m.register_method("value", |params, seen, _| {
        bump(seen, "value");
        let (kind,): (String,) = params.parse()?;
        Ok::<_, ErrorObjectOwned>(value_of(&kind))
    })
    .unwrap();
    m.register_method("flaky", |params, seen, _| {
        let (fails,): (u32,) = params.parse()?;
        let n = bump(seen, "flaky");
        if n <= fails { Err(busy()) } else { Ok(n) }
    })
    .unwrap();
    m.register_method("once", |params, seen, _| {
        let (key,): (String,) = params.parse()?;
        if bump(seen, &format!("once:{key}")) == 1 {
            Err(busy())
        } else {
            Ok(key)
        }
    })
    .unwrap();
    m.register_method("fail", |params, seen, _| {
        bump(seen, "fail");
        let (code,): (i32,) = params.parse()?;
        Err::<(), _>(ErrorObjectOwned::owned(
            code,
            "failed",
            Some(json!({"why": "asked"})),
        ))
    })
    .unwrap();
    m.register_method("big", |params, seen, _| {
        bump(seen, "big");
        let (n,): (usize,) = params.parse()?;
        Ok::<_, ErrorObjectOwned>("x".repeat(n))
    })
    .unwrap();
    m.register_method("floats", |params, seen, _| {
        bump(seen, "floats");
        let (n, seed): (usize, u64) = params.parse()?;
        Ok::<_, ErrorObjectOwned>(floats(n, seed))
    })
    .unwrap();
    m.register_method("log", |_, seen, _| {
        bump(seen, "log");
    })
    .unwrap();
    m
}

/// `hold` tells `entered` when it runs, and answers once `release` is notified.
#[derive(Default)]
struct Gates {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

type Gate = Arc<Gates>;

/// Counts the notifications the server receives, as `notify:<method>`: jsonrpsee's
/// server acknowledges a notification without running its method.
#[derive(Clone)]
struct Notes<S> {
    inner: S,
    seen: Seen,
}

impl<S> RpcServiceT for Notes<S>
where
    S: RpcServiceT + Send + Sync + Clone + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        req: jsonrpsee::types::Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(req)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter().flatten() {
            if let BatchEntry::Notification(n) = entry {
                bump(&self.seen, &format!("notify:{}", n.method_name()));
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        bump(&self.seen, &format!("notify:{}", n.method_name()));
        self.inner.notification(n)
    }
}

const KINDS: [&str; 14] = [
    "null",
    "true",
    "false",
    "zero",
    "neg",
    "u64max",
    "i64min",
    "float",
    "string",
    "empty_array",
    "array",
    "empty_object",
    "object",
    "nested",
];

fn value_of(kind: &str) -> Value {
    match kind {
        "null" => Value::Null,
        "true" => json!(true),
        "false" => json!(false),
        "zero" => json!(0),
        "neg" => json!(-17),
        "u64max" => json!(u64::MAX),
        "i64min" => json!(i64::MIN),
        "float" => json!(1.5e-7),
        "string" => json!("a \"quoted\" \\ line\n with ünïcödé 😀 and \u{0001}"),
        "empty_array" => json!([]),
        "array" => json!([1, "two", null, false, 3.5]),
        "empty_object" => json!({}),
        "object" => json!({"a": 1, "b": [true], "c": {"d": null}}),
        "nested" => json!([[[[{"deep": [[[]]]}]]]]),
        other => panic!("no kind {other}"),
    }
}

/// `n` floats of every magnitude, from a seed: what a server's serde_json writes.
fn floats(n: usize, seed: u64) -> Vec<f64> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut out = vec![
        94.329_361_684_086_45,
        0.1,
        1.0 / 3.0,
        2.2e-308,
        f64::MAX,
        f64::MIN_POSITIVE,
    ];
    while out.len() < n {
        let f = f64::from_bits(rng.random::<u64>());
        if f.is_finite() {
            out.push(f);
        }
        out.push(rng.random::<f64>() * 1000.0);
    }
    out
}

/// A jsonrpsee server on 127.0.0.1, served connection by connection through jsonrpsee's
/// own tower service, so that connections and HTTP requests can be counted.
struct Rpc {
    addr: SocketAddr,
    gate: Gate,
    seen: Seen,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    handle: ServerHandle,
    accept: tokio::task::JoinHandle<()>,
}

impl Rpc {
    async fn start() -> Rpc {
        Self::start_with(ServerConfig::default()).await
    }

    async fn start_with(config: ServerConfig) -> Rpc {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::serve(listener, config, Seen::default())
    }

    /// Serves on `listener` (needs a tokio runtime), counting into `seen`.
    fn serve(listener: std::net::TcpListener, config: ServerConfig, seen: Seen) -> Rpc {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (stop, handle) = stop_channel();
        let notes = Arc::clone(&seen);
        let builder = ServerBuilder::with_config(config)
            .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(move |inner| Notes {
                inner,
                seen: Arc::clone(&notes),
            }))
            .to_service_builder();
        let gate = Gate::default();
        let methods = module(Arc::clone(&seen), Arc::clone(&gate));
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (req_count, conn_count) = (Arc::clone(&requests), Arc::clone(&connections));
        let accept = tokio::spawn(async move {
            loop {
                let sock = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((sock, _)) => sock,
                        // Out of descriptors, say: retrying at once would spin, and on a
                        // paused clock keep every timer from firing.
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                    () = stop.clone().shutdown() => break,
                };
                conn_count.fetch_add(1, Ordering::SeqCst);
                let svc = builder.clone().build(methods.clone(), stop.clone());
                let req_count = Arc::clone(&req_count);
                let svc = ServiceBuilder::new()
                    .map_request(move |req: http::Request<hyper::body::Incoming>| {
                        req_count.fetch_add(1, Ordering::SeqCst);
                        req
                    })
                    .service(svc);
                tokio::spawn(serve_with_graceful_shutdown(
                    sock,
                    svc,
                    stop.clone().shutdown(),
                ));
            }
        });
        Rpc {
            addr,
            gate,
            seen,
            requests,
            connections,
            handle,
            accept,
        }
    }

    fn uri(&self) -> http::Uri {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    fn calls(&self, key: &str) -> u32 {
        self.seen.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// HTTP requests received.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting (the port is free once this returns) and ends every connection.
    async fn stop(self) -> SocketAddr {
        self.handle.stop().unwrap();
        self.accept.await.unwrap();
        self.addr
    }

    /// Stops, and holds the port at once: see [`held_port`].
    async fn stop_and_hold(self) -> (tokio::net::TcpSocket, SocketAddr) {
        let addr = self.stop().await;
        (held_port(addr), addr)
    }
}

/// `addr`'s port, bound and not listening: connections to it are refused, and no server
/// another test starts can take it, until [`serve_on`] listens on it. (Bound again the
/// moment the server that had it let it go: the kernel hands out a random free port to
/// each `bind` to port 0, so another test taking it in between is next to impossible.)
fn held_port(addr: SocketAddr) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket
}

/// A server listening on a port [`held_port`] held (needs a tokio runtime).
fn serve_on(port: tokio::net::TcpSocket, seen: Seen) -> Rpc {
    let listener = port.listen(1024).unwrap().into_std().unwrap();
    Rpc::serve(listener, ServerConfig::default(), seen)
}

// ---------------------------------------------------------------------------------------
// The three clients
// ---------------------------------------------------------------------------------------

/// Up to 3 retries, no wait; retries 2001 and whatever `codes` lists, and refused
/// connections.
fn strategy(codes: impl IntoIterator<Item = i64>) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
        .codes([2001])
        .codes(codes)
        .retry_on(ErrorClass::Connect)
}

fn typed(rpc: &Rpc, strategy: RetryStrategy) -> Client {
    Client::builder(rpc.uri())
        .attempt_timeout(Duration::from_secs(5))
        .retry(strategy)
        .build()
}

type Stack =
    JsonRpcRetry<tower_jsonrpc_retry::codec::JsonRpcCodec<HyperClient<HttpConnector, Full<Bytes>>>>;

fn stack(uri: http::Uri, strategy: RetryStrategy) -> Stack {
    ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(uri).attempt_timeout(Duration::from_secs(5)))
        .service(HyperClient::builder(TokioExecutor::new()).build_http())
}

type Retried = HttpClient<RpcLogger<RpcService<HttpRetry<HttpBackend, HttpBody, TransportError>>>>;

fn jsonrpsee(uri: http::Uri, strategy: RetryStrategy) -> Retried {
    let layer = JsonRpcRetryLayer::http(strategy)
        .attempt_timeout(Duration::from_secs(5))
        .map_err(|e| TransportError::Http(HttpError::Stream(e)));
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .set_http_middleware(ServiceBuilder::new().layer(layer))
        .build(uri.to_string())
        .unwrap()
}

fn error_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> i32 {
    match result {
        Err(ClientError::Rpc(e)) => i32::try_from(e.code()).unwrap(),
        other => panic!("expected an error object, got {other:?}"),
    }
}

fn jsonrpsee_code<T: std::fmt::Debug>(result: Result<T, JsonrpseeError>) -> i32 {
    match result {
        Err(JsonrpseeError::Call(e)) => e.code(),
        other => panic!("expected an error object, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Single calls
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn positional_and_named_params_reach_the_server() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    assert_eq!(
        client
            .call::<i64>("sum", json!({"a": 5, "b": -2}))
            .await
            .unwrap(),
        3
    );
    #[derive(serde::Serialize)]
    struct Named {
        a: i64,
        b: i64,
    }
    assert_eq!(
        client
            .call::<i64>("sum", Named { a: 40, b: 2 })
            .await
            .unwrap(),
        42
    );

    let svc = stack(rpc.uri(), strategy([]));
    let resp = svc
        .clone()
        .oneshot(Request::new("sum", json!({"b": 7, "a": 1})).with_id("named"))
        .await
        .unwrap();
    assert_eq!(resp.result(), Some(&json!(8)));

    let client = jsonrpsee(rpc.uri(), strategy([]));
    let positional: i64 = client.request("sum", rpc_params![2, 3]).await.unwrap();
    let mut named = ObjectParams::new();
    named.insert("a", 10).unwrap();
    named.insert("b", 11).unwrap();
    let named: i64 = client.request("sum", named).await.unwrap();
    assert_eq!((positional, named), (5, 21));
    assert_eq!(rpc.calls("sum"), 6);
    assert_eq!(rpc.requests(), 6, "one HTTP request per call");
}

#[tokio::test]
async fn results_of_every_json_type_come_back_whole() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    let svc = stack(rpc.uri(), strategy([]));
    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    for (i, kind) in KINDS.into_iter().enumerate() {
        let expected = value_of(kind);
        let got: Value = client.call("value", (kind,)).await.unwrap();
        assert_eq!(got, expected, "typed client, {kind}");
        let resp = svc
            .clone()
            .oneshot(Request::new("value", json!([kind])).with_id(i as i64))
            .await
            .unwrap();
        assert_eq!(resp.result(), Some(&expected), "codec stack, {kind}");
        let got: Value = via_jsonrpsee
            .request("value", rpc_params![kind])
            .await
            .unwrap();
        assert_eq!(got, expected, "jsonrpsee with the HTTP layer, {kind}");
    }
    // Typed results.
    assert_eq!(
        client.call::<u64>("value", ("u64max",)).await.unwrap(),
        u64::MAX
    );
    assert_eq!(
        client.call::<i64>("value", ("i64min",)).await.unwrap(),
        i64::MIN
    );
    assert!(client.call::<bool>("value", ("true",)).await.unwrap());
    client.call::<()>("value", ("null",)).await.unwrap();
    assert_eq!(
        client
            .call::<Option<i64>>("value", ("null",))
            .await
            .unwrap(),
        None
    );
    assert_eq!(rpc.calls("value"), 3 * KINDS.len() as u32 + 5);
}

#[tokio::test]
async fn floats_come_back_as_the_server_wrote_them() {
    let rpc = Rpc::start().await;
    let expected = floats(2000, 7);
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();

    let client = typed(&rpc, strategy([]));
    let got: Vec<f64> = client.call("floats", (2000, 7)).await.unwrap();
    assert_eq!(bits(&got), bits(&expected), "typed client");

    let resp = stack(rpc.uri(), strategy([]))
        .oneshot(Request::new("floats", json!([2000, 7])).with_id(1))
        .await
        .unwrap();
    let got: Vec<f64> = serde_json::from_value(resp.result().unwrap().clone()).unwrap();
    assert_eq!(bits(&got), bits(&expected), "codec stack");

    // In a batch, and in a partly retried one.
    let mut batch = client.batch();
    let once = batch.call::<String>("once", ("floats",));
    let f = batch.call::<Vec<f64>>("floats", (2000, 7));
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(once).unwrap(), "floats");
    assert_eq!(bits(&results.take(f).unwrap()), bits(&expected), "batch");
}

#[tokio::test]
async fn method_not_found_and_invalid_params_are_not_retried() {
    let rpc = Rpc::start().await;
    // Even the transient preset, plus 2001, does not retry either.
    let client = typed(&rpc, strategy([]));
    assert_eq!(error_code(client.call::<i64>("nope", (1,)).await), -32601);
    assert_eq!(rpc.requests(), 1);
    assert_eq!(
        error_code(client.call::<i64>("sum", ("x", 2)).await),
        -32602
    );
    assert_eq!(rpc.requests(), 2);
    assert_eq!(rpc.calls("sum"), 1);

    let svc = stack(rpc.uri(), strategy([]));
    let resp = svc
        .oneshot(Request::new("sum", json!([1])).with_id(1))
        .await
        .unwrap();
    assert_eq!(resp.error().map(|e| e.code()), Some(-32602));
    assert_eq!(rpc.requests(), 3);

    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    let r = via_jsonrpsee.request::<i64, _>("nope", rpc_params![]).await;
    assert_eq!(jsonrpsee_code(r), -32601);
    let r = via_jsonrpsee
        .request::<i64, _>("sum", rpc_params!["x"])
        .await;
    assert_eq!(jsonrpsee_code(r), -32602);
    assert_eq!(rpc.requests(), 5);

    // Listed, the same codes are retried: the count above could fail.
    let listed = typed(&rpc, strategy([-32601, -32602]));
    assert_eq!(error_code(listed.call::<i64>("nope", ()).await), -32601);
    assert_eq!(rpc.requests(), 9, "1 + 3 retries");
}

#[tokio::test]
async fn a_custom_code_is_retried_until_the_server_succeeds() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    // Two failures, then the third call succeeds (it returns its own count).
    assert_eq!(client.call::<u32>("flaky", (2,)).await.unwrap(), 3);
    assert_eq!(rpc.calls("flaky"), 3);

    let svc = stack(rpc.uri(), strategy([]));
    let resp = svc
        .clone()
        .oneshot(Request::new("flaky", json!([5])).with_id(7))
        .await
        .unwrap();
    // Calls 4 and 5 fail, the 6th succeeds.
    assert_eq!(resp.result(), Some(&json!(6)));
    assert_eq!(rpc.calls("flaky"), 6);

    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    let n: u32 = via_jsonrpsee
        .request("flaky", rpc_params![8])
        .await
        .unwrap();
    assert_eq!((n, rpc.calls("flaky")), (9, 9));

    // More failures than retries: 1 + 3 attempts, the last error comes back.
    let r = client.call::<u32>("flaky", (100,)).await;
    assert_eq!(error_code(r), 2001);
    assert_eq!(rpc.calls("flaky"), 13);
    let r = via_jsonrpsee
        .request::<u32, _>("flaky", rpc_params![100])
        .await;
    assert_eq!(jsonrpsee_code(r), 2001);
    assert_eq!(rpc.calls("flaky"), 17);
    assert_eq!(rpc.requests(), 17);
}

#[tokio::test]
async fn an_error_object_comes_back_with_its_data() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    let err = client
        .call::<()>("fail", (-32000,))
        .await
        .unwrap_err()
        .into_rpc()
        .unwrap();
    assert_eq!(err.code(), -32000);
    assert_eq!(err.message(), "failed");
    assert_eq!(err.data(), Some(&json!({"why": "asked"})));
    assert_eq!(rpc.calls("fail"), 1);
}

// ---------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_notification_is_acknowledged_and_run_once() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    client.notify("log", ("hi",)).await.unwrap();
    assert_eq!(rpc.calls("notify:log"), 1);
    // jsonrpsee acknowledges a notification to a method it does not have too.
    client.notify("nope", ()).await.unwrap();
    // And one whose params the method cannot take: a notification gets no answer.
    client.notify("sum", ("x",)).await.unwrap();
    assert_eq!(rpc.requests(), 3);

    let svc = stack(rpc.uri(), strategy([]));
    let resp = svc.oneshot(Request::new("log", json!([]))).await.unwrap();
    assert_eq!(resp.result(), Some(&Value::Null));
    assert_eq!(rpc.calls("notify:log"), 2);

    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    via_jsonrpsee
        .notification("log", rpc_params![1])
        .await
        .unwrap();
    assert_eq!(rpc.calls("notify:log"), 3);
    assert_eq!(rpc.requests(), 5);
}

#[tokio::test]
async fn notifications_keep_the_connection_alive() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    for _ in 0..5 {
        client.notify("log", ()).await.unwrap();
        assert_eq!(client.call::<i64>("sum", (1, 1)).await.unwrap(), 2);
    }
    assert_eq!(rpc.requests(), 10);
    assert_eq!(
        rpc.connections(),
        1,
        "one keep-alive connection for every request"
    );

    let rpc = Rpc::start().await;
    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    for _ in 0..5 {
        via_jsonrpsee
            .notification("log", rpc_params![])
            .await
            .unwrap();
        let two: i64 = via_jsonrpsee
            .request("sum", rpc_params![1, 1])
            .await
            .unwrap();
        assert_eq!(two, 2);
    }
    assert_eq!(rpc.requests(), 10);
    assert_eq!(
        rpc.connections(),
        1,
        "one keep-alive connection for every request"
    );
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_mixing_calls_and_notifications() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    let mut batch = client.batch();
    let three = batch.call::<i64>("sum", (1, 2));
    batch.notify("log", ());
    let named = batch.call::<i64>("sum", json!({"a": 2, "b": 2}));
    let missing = batch.call::<i64>("nope", ());
    let s = batch.call::<String>("value", ("string",));
    batch.notify("log", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(three).unwrap(), 3);
    assert_eq!(results.take(named).unwrap(), 4);
    assert_eq!(error_code(results.take(missing)), -32601);
    assert_eq!(json!(results.take(s).unwrap()), value_of("string"));
    assert_eq!(rpc.calls("notify:log"), 2);
    assert_eq!(rpc.requests(), 1);

    // Only notifications: jsonrpsee answers an empty body.
    let mut batch = client.batch();
    batch.notify("log", ());
    batch.notify("log", ());
    let results = batch.send().await.unwrap();
    assert!(results.into_responses().is_empty());
    assert_eq!(rpc.calls("notify:log"), 4);
    assert_eq!(rpc.requests(), 2);

    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    let mut b = BatchRequestBuilder::new();
    b.insert("sum", rpc_params![1, 2]).unwrap();
    b.insert("nope", rpc_params![]).unwrap();
    let resp = via_jsonrpsee.batch_request::<i64>(b).await.unwrap();
    assert_eq!(resp.num_successful_calls(), 1);
    assert_eq!(resp.num_failed_calls(), 1);
    assert_eq!(rpc.requests(), 3);
}

#[tokio::test]
async fn only_the_failed_calls_of_a_batch_are_sent_again() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    let mut batch = client.batch();
    let a = batch.call::<String>("once", ("a",));
    let sum = batch.call::<i64>("sum", (1, 2));
    batch.notify("log", ());
    let b = batch.call::<String>("once", ("b",));
    let missing = batch.call::<i64>("nope", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(a).unwrap(), "a");
    assert_eq!(results.take(sum).unwrap(), 3);
    assert_eq!(results.take(b).unwrap(), "b");
    assert_eq!(error_code(results.take(missing)), -32601);
    assert_eq!(rpc.calls("once:a"), 2);
    assert_eq!(rpc.calls("once:b"), 2);
    assert_eq!(
        rpc.calls("sum"),
        1,
        "a call that succeeded is not sent again"
    );
    assert_eq!(rpc.calls("notify:log"), 1, "nor is a notification");
    assert_eq!(rpc.requests(), 2);

    // Over the codec, raw.
    let svc = stack(rpc.uri(), strategy([]));
    let batch = BatchRequest::new(vec![
        Request::new("once", json!(["c"])).with_id(1),
        Request::new("log", json!([])),
        Request::new("sum", json!([2, 2])).with_id(2),
    ]);
    let resp = svc.oneshot(batch).await.unwrap();
    assert_eq!(resp.items()[0].result(), Some(&json!("c")));
    assert_eq!(resp.items()[1].result(), Some(&json!(4)));
    assert_eq!(
        (
            rpc.calls("once:c"),
            rpc.calls("sum"),
            rpc.calls("notify:log")
        ),
        (2, 2, 2)
    );
    assert_eq!(rpc.requests(), 4);

    // Through jsonrpsee's client.
    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    let mut b = BatchRequestBuilder::new();
    b.insert("once", rpc_params!["d"]).unwrap();
    b.insert("value", rpc_params!["string"]).unwrap();
    b.insert("once", rpc_params!["e"]).unwrap();
    let resp = via_jsonrpsee.batch_request::<Value>(b).await.unwrap();
    let oks: Vec<Value> = resp.into_ok().unwrap().collect();
    assert_eq!(oks, [json!("d"), value_of("string"), json!("e")]);
    assert_eq!((rpc.calls("once:d"), rpc.calls("once:e")), (2, 2));
    assert_eq!(rpc.calls("value"), 1);
    assert_eq!(rpc.requests(), 6);
}

fn batch_limit(limit: BatchRequestConfig) -> ServerConfig {
    ServerConfig::builder()
        .set_batch_request_config(limit)
        .build()
}

#[tokio::test]
async fn a_batch_over_the_servers_limit_is_refused_for_every_call() {
    let rpc = Rpc::start_with(batch_limit(BatchRequestConfig::Limit(2))).await;
    let client = typed(&rpc, strategy([]));
    let mut batch = client.batch();
    let one = batch.call::<i64>("sum", (1, 2));
    let two = batch.call::<i64>("sum", (1, 2));
    let three = batch.call::<i64>("sum", (1, 2));
    let mut results = batch.send().await.unwrap();
    for item in [one, two, three] {
        assert_eq!(error_code(results.take(item)), -32010);
    }
    assert_eq!(rpc.requests(), 1, "not retried: -32010 is not listed");
    assert_eq!(rpc.calls("sum"), 0);

    // Within the limit.
    let mut batch = client.batch();
    let one = batch.call::<i64>("sum", (1, 2));
    let two = batch.call::<i64>("sum", (3, 4));
    let mut results = batch.send().await.unwrap();
    assert_eq!(
        (results.take(one).unwrap(), results.take(two).unwrap()),
        (3, 7)
    );

    let via_jsonrpsee = jsonrpsee(rpc.uri(), strategy([]));
    let mut b = BatchRequestBuilder::new();
    for _ in 0..3 {
        b.insert("sum", rpc_params![1, 2]).unwrap();
    }
    let err = via_jsonrpsee
        .batch_request::<i64>(b.clone())
        .await
        .unwrap_err();
    // jsonrpsee's client cannot read its server's refusal of a whole batch (one error
    // object, not an array), with or without the layer: the layer hands it on as it came.
    let plain = HttpClientBuilder::default()
        .build(rpc.uri().to_string())
        .unwrap();
    let without = plain.batch_request::<i64>(b).await.unwrap_err();
    assert!(matches!(err, JsonrpseeError::ParseError(_)), "{err:?}");
    assert_eq!(err.to_string(), without.to_string());
    assert_eq!(rpc.requests(), 4, "not retried");
}

#[tokio::test]
async fn a_batch_the_server_does_not_take_is_refused_for_every_call() {
    let rpc = Rpc::start_with(batch_limit(BatchRequestConfig::Disabled)).await;
    let client = typed(&rpc, strategy([]));
    let mut batch = client.batch();
    let one = batch.call::<i64>("sum", (1, 2));
    batch.notify("log", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(error_code(results.take(one)), -32005);
    // Only notifications: the refusal is the batch's error.
    let mut batch = client.batch();
    batch.notify("log", ());
    assert_eq!(error_code(batch.send().await.map(drop)), -32005);
    assert_eq!(rpc.requests(), 2);
    assert_eq!(rpc.calls("notify:log"), 0);
}

#[tokio::test]
async fn the_ethereum_preset_does_not_retry_a_batch_the_server_does_not_take() {
    // jsonrpsee (and so reth, Substrate, ...) refuses batches it does not take with
    // -32005 "Batched requests are not supported by this server": the same answer on
    // every attempt, not a rate limit.
    let rpc = Rpc::start_with(batch_limit(BatchRequestConfig::Disabled)).await;
    let preset =
        RetryStrategy::ethereum_rate_limits().backoff(PeriodicBackoff::new(5, Duration::ZERO));
    let client = typed(&rpc, preset.clone());
    let mut batch = client.batch();
    let one = batch.call::<String>("eth_blockNumber", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(error_code(results.take(one)), -32005);
    assert_eq!(rpc.requests(), 1);

    // A batch of notifications only, and a batch through jsonrpsee's client.
    let mut batch = client.batch();
    batch.notify("log", ());
    assert_eq!(error_code(batch.send().await.map(drop)), -32005);
    assert_eq!(rpc.requests(), 2);
    let via_jsonrpsee = jsonrpsee(rpc.uri(), preset.clone());
    let mut b = BatchRequestBuilder::new();
    b.insert("eth_blockNumber", rpc_params![]).unwrap();
    via_jsonrpsee.batch_request::<String>(b).await.unwrap_err();
    assert_eq!(rpc.requests(), 3);

    // Another -32005 from the same server is still a rate limit, retried five times.
    assert_eq!(
        error_code(client.call::<()>("fail", (-32005,)).await),
        -32005
    );
    assert_eq!(rpc.calls("fail"), 6);
}

// ---------------------------------------------------------------------------------------
// Size limits
// ---------------------------------------------------------------------------------------

fn request_limit(bytes: u32) -> ServerConfig {
    ServerConfig::builder().max_request_body_size(bytes).build()
}

#[tokio::test]
async fn a_request_over_the_servers_body_limit() {
    let rpc = Rpc::start_with(request_limit(200)).await;
    let big = "y".repeat(300);
    // The transient preset retries 429, 502, 503, 504: not jsonrpsee's 413.
    let client = typed(&rpc, RetryStrategy::transient());
    let err = client.call::<i64>("value", (&big,)).await.unwrap_err();
    // jsonrpsee answers 413 with a JSON-RPC error, id null: the codec hands it on as the
    // call's error object.
    assert_eq!(error_code(Err::<(), _>(err)), -32007);
    assert_eq!(rpc.requests(), 1);

    // A batch over the limit: the same answer for every call.
    let mut batch = client.batch();
    let one = batch.call::<i64>("value", (&big,));
    let two = batch.call::<i64>("sum", (1, 2));
    let mut results = batch.send().await.unwrap();
    assert_eq!(error_code(results.take(one)), -32007);
    assert_eq!(error_code(results.take(two)), -32007);
    assert_eq!(rpc.requests(), 2);

    // Notifications over the limit: as documented, one alone is refused by its status,
    // a batch of them by the error object for the whole batch.
    let err = client.notify("log", (&big,)).await.unwrap_err();
    let status = err.transport().and_then(|e| e.status());
    assert_eq!(status, Some(http::StatusCode::PAYLOAD_TOO_LARGE), "{err:?}");
    let mut batch = client.batch();
    batch.notify("log", (&big,));
    assert_eq!(error_code(batch.send().await.map(drop)), -32007);
    assert_eq!(rpc.requests(), 4);
    assert_eq!(rpc.calls("notify:log"), 0);

    // Through jsonrpsee: a rejection with the status, as documented.
    let via_jsonrpsee = jsonrpsee(rpc.uri(), RetryStrategy::transient());
    let err = via_jsonrpsee
        .request::<i64, _>("value", rpc_params![big.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, JsonrpseeError::Transport(ref e) if e.to_string().contains("413")),
        "{err:?}"
    );
    assert_eq!(rpc.requests(), 5);
    assert_eq!(rpc.calls("value"), 0);
}

#[tokio::test]
async fn a_response_over_the_servers_limit() {
    let config = ServerConfig::builder().max_response_body_size(300).build();
    let rpc = Rpc::start_with(config).await;
    let client = typed(&rpc, strategy([]));
    assert_eq!(
        error_code(client.call::<String>("big", (1000,)).await),
        -32008
    );
    assert_eq!(rpc.calls("big"), 1);

    // A batch whose answers together are over the limit.
    let mut batch = client.batch();
    let items: Vec<_> = (0..3)
        .map(|_| batch.call::<String>("big", (200,)))
        .collect();
    let mut results = batch.send().await.unwrap();
    for item in items {
        assert_eq!(error_code(results.take(item)), -32011);
    }
    assert_eq!(rpc.requests(), 2);
}

#[tokio::test]
async fn a_response_over_the_clients_body_limit() {
    let rpc = Rpc::start().await;
    let client = Client::builder(rpc.uri())
        .retry(RetryStrategy::transient())
        .response_limit(500)
        .build();
    let err = client.call::<String>("big", (1000,)).await.unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert!(transport.is_body_too_large(), "{transport:?}");
    assert_eq!(rpc.calls("big"), 1);
    // The connection is not reused after a body left unread, but calls go on.
    assert_eq!(client.call::<String>("big", (10,)).await.unwrap().len(), 10);
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_servers_http_refusals_are_status_errors() {
    let rpc = Rpc::start().await;
    // jsonrpsee takes only JSON: another content type is a 415 with a text body.
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
        .layer(JsonRpcCodecLayer::new(rpc.uri()).header(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        ))
        .service(HyperClient::builder(TokioExecutor::new()).build_http());
    let err = svc
        .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap_err();
    assert!(err.is_status(), "{err:?}");
    assert_eq!(err.status(), Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE));
    assert_eq!(rpc.requests(), 1);
}

#[tokio::test]
async fn the_servers_answer_keeps_its_headers_at_the_http_level() {
    let rpc = Rpc::start().await;
    let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy([])))
        .service(http);
    let req = http::Request::post(rpc.uri())
        .header("content-type", "application/json")
        .body(Full::from(
            r#"{"jsonrpc":"2.0","method":"flaky","params":[1],"id":1}"#,
        ))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    assert_eq!(rpc.calls("flaky"), 2);
}

#[tokio::test]
async fn the_servers_connection_limit_is_a_retryable_429() {
    let config = ServerConfig::builder().max_connections(1).build();
    let rpc = Rpc::start_with(config).await;
    // A call holds the server's only permit until released.
    let holder = typed(&rpc, RetryStrategy::none());
    let held = tokio::spawn(holder.call::<()>("hold", ()));
    rpc.gate.entered.notified().await;

    let retry_429 = RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
        .retry_on(ErrorClass::Status(http::StatusCode::TOO_MANY_REQUESTS));
    let err = typed(&rpc, retry_429.clone())
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err();
    let status = err.transport().and_then(|e| e.status());
    assert_eq!(status, Some(http::StatusCode::TOO_MANY_REQUESTS), "{err:?}");
    assert_eq!(rpc.requests(), 1 + 4, "the holder's, then 1 + 3 retries");

    // Through jsonrpsee: the last 429 as it came, a rejection to jsonrpsee.
    let err = jsonrpsee(rpc.uri(), retry_429.clone())
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JsonrpseeError::Transport(e) if e.to_string().contains("429")),
        "{err:?}"
    );
    assert_eq!(rpc.requests(), 1 + 4 + 4);
    assert_eq!(rpc.calls("sum"), 0);

    rpc.gate.release.notify_one();
    held.await.unwrap().unwrap();
    assert_eq!(
        typed(&rpc, retry_429)
            .call::<i64>("sum", (1, 2))
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn the_deadline_ends_a_call_the_server_holds() {
    let rpc = Rpc::start().await;
    // On the server's real clock: long enough for a request to reach the server on a
    // loaded machine, short enough to keep the test quick.
    let deadline = RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(Duration::from_millis(250));
    // Only a guard against a hang (the server holds the call until released): the
    // deadline, not this, must end each call.
    let guard = Duration::from_secs(30);
    let err = tokio::time::timeout(guard, typed(&rpc, deadline.clone()).call::<()>("hold", ()))
        .await
        .expect("the deadline ended the call")
        .unwrap_err();
    assert!(err.transport().unwrap().is_timeout(), "{err:?}");
    let err = tokio::time::timeout(
        guard,
        jsonrpsee(rpc.uri(), deadline).request::<(), _>("hold", rpc_params![]),
    )
    .await
    .expect("the deadline ended the call")
    .unwrap_err();
    assert!(matches!(err, JsonrpseeError::Transport(_)), "{err:?}");
    // One attempt each: the deadline came during the first, and nothing was sent after.
    assert_eq!(rpc.requests(), 2);
}

// ---------------------------------------------------------------------------------------
// The server stopped and started again on the same port
// ---------------------------------------------------------------------------------------

/// A strategy whose first retry starts the server again on the held `port`, counting
/// into `seen`: the first attempt finds the port closed, the retry finds the server.
fn restarting(
    base: RetryStrategy,
    port: tokio::net::TcpSocket,
    seen: Seen,
    started: Arc<Mutex<Option<Rpc>>>,
) -> RetryStrategy {
    let port = Mutex::new(Some(port));
    base.on_retry(move |_: &RetryEvent<'_>| {
        let mut started = started.lock().unwrap();
        if let Some(port) = port.lock().unwrap().take() {
            *started = Some(serve_on(port, Arc::clone(&seen)));
        }
    })
}

#[tokio::test]
async fn a_server_started_again_between_attempts_answers_the_retry() {
    for level in ["typed", "codec", "jsonrpsee"] {
        let (port, addr) = Rpc::start().await.stop_and_hold().await;
        let seen = Seen::default();
        let started = Arc::new(Mutex::new(None));
        let s = restarting(strategy([]), port, Arc::clone(&seen), Arc::clone(&started))
            .non_idempotent(["sum"]);
        let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
        let sum = match level {
            "typed" => Client::builder(uri)
                .retry(s)
                .build()
                .call::<i64>("sum", (1, 2))
                .await
                .unwrap(),
            "codec" => {
                let resp = stack(uri, s)
                    .oneshot(Request::new("sum", json!([1, 2])).with_id(1))
                    .await
                    .unwrap();
                resp.result().unwrap().as_i64().unwrap()
            }
            _ => jsonrpsee(uri, s)
                .request("sum", rpc_params![1, 2])
                .await
                .unwrap(),
        };
        assert_eq!(sum, 3, "{level}");
        let rpc = started
            .lock()
            .unwrap()
            .take()
            .expect("the retry started the server");
        assert_eq!(rpc.calls("sum"), 1, "{level}");
        assert_eq!(rpc.requests(), 1, "{level}");
        rpc.stop().await;
    }
}

#[tokio::test]
async fn a_notification_and_a_batch_reach_a_server_started_again() {
    let (port, addr) = Rpc::start().await.stop_and_hold().await;
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let seen = Seen::default();
    let started = Arc::new(Mutex::new(None));
    let s = restarting(strategy([]), port, Arc::clone(&seen), Arc::clone(&started))
        .non_idempotent(["log"]);
    let client = Client::builder(uri.clone()).retry(s).build();
    client.notify("log", ()).await.unwrap();
    let rpc = started
        .lock()
        .unwrap()
        .take()
        .expect("the retry started the server");
    assert_eq!((rpc.calls("notify:log"), rpc.requests()), (1, 1));
    let (port, _) = rpc.stop_and_hold().await;

    let started = Arc::new(Mutex::new(None));
    let s = restarting(strategy([]), port, Arc::clone(&seen), Arc::clone(&started));
    let client = Client::builder(uri).retry(s).build();
    let mut batch = client.batch();
    let a = batch.call::<String>("once", ("restart",));
    let sum = batch.call::<i64>("sum", (2, 3));
    batch.notify("log", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(a).unwrap(), "restart");
    assert_eq!(results.take(sum).unwrap(), 5);
    let rpc = started
        .lock()
        .unwrap()
        .take()
        .expect("the retry started the server");
    // Refused, then the whole batch, then only the call that answered 2001.
    assert_eq!(rpc.requests(), 2);
    assert_eq!(rpc.calls("once:restart"), 2);
    assert_eq!((rpc.calls("sum"), rpc.calls("notify:log")), (1, 2));
}

#[tokio::test]
async fn a_pooled_connection_to_a_stopped_server_is_not_an_answer() {
    let rpc = Rpc::start().await;
    let client = typed(&rpc, strategy([]));
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    let (port, _) = rpc.stop_and_hold().await;

    let rpc = serve_on(port, Seen::default());
    // The same client, its pool holding a connection the old server closed.
    assert_eq!(client.call::<i64>("sum", (3, 4)).await.unwrap(), 7);
    assert_eq!(rpc.calls("sum"), 1);
}

#[tokio::test]
async fn a_server_that_stays_down_gives_the_connect_error_after_every_retry() {
    let (_port, addr) = Rpc::start().await.stop_and_hold().await;
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let retries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&retries);
    let s = strategy([]).on_retry(move |_: &RetryEvent<'_>| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let err = Client::builder(uri.clone())
        .retry(s.clone())
        .build()
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err();
    assert!(err.transport().unwrap().is_connect(), "{err:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 3);

    let err = jsonrpsee(uri, s)
        .request::<i64, _>("sum", rpc_params![1, 2])
        .await
        .unwrap_err();
    assert!(matches!(err, JsonrpseeError::Transport(_)), "{err:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 6);
}

#[allow(dead_code)]
fn unused(_: ArrayParams) {}
