//! The stack every whole-stack test drives: retry over codec over timeout over hyper-util.
#![allow(dead_code, unreachable_pub, clippy::type_complexity)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceBuilder;
use tower::timeout::{Timeout, TimeoutLayer};
use tower_jsonrpc_retry::codec::{JsonRpcCodec, JsonRpcCodecLayer};
use tower_jsonrpc_retry::retry::JsonRpcRetry;
use tower_jsonrpc_retry::test_util::FlakyServer;

use tower_jsonrpc_retry::{
    GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

pub type Http = Client<HttpConnector, Full<Bytes>>;
pub type Stack = JsonRpcRetry<JsonRpcCodec<Timeout<Http>>>;

/// The per-attempt timeout of [`stack`].
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);

/// An address on 127.0.0.1 that refuses connections for as long as the returned socket
/// lives: bound there, never listening. (A port bound and let go at once could be taken
/// meanwhile by a server another test starts.)
pub fn refusing() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind((std::net::Ipv4Addr::LOCALHOST, 0).into())
        .expect("a port on 127.0.0.1");
    let addr = socket.local_addr().expect("its address");
    (socket, addr)
}

/// Raises this process's open-file limit to at least `needed`, within its hard limit, for
/// a test that holds that many sockets at once (a macOS shell starts at 256); where the
/// hard limit is lower, fails saying so rather than with the sockets' errors.
pub fn open_files_at_least(needed: u64) {
    let limit = rlimit::increase_nofile_limit(needed).expect("the open-file limit");
    assert!(
        limit >= needed,
        "this test holds up to {needed} files open at once, and this process may open \
         {limit}: raise the hard limit (`ulimit -Hn`)"
    );
}

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// hyper-util's client over HTTP/2 with prior knowledge, with `TCP_NODELAY`: HTTP/2
/// writes a request as several frames, and with Nagle's algorithm a later one waits for
/// the server's delayed acknowledgement of the first (40 ms or more), while a paused
/// clock runs the timers.
pub fn http2() -> Http {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(tcp)
}

pub fn stack_to(uri: http::Uri, strategy: RetryStrategy) -> Stack {
    ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(uri))
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(http())
}

pub fn stack(server: &FlakyServer, strategy: RetryStrategy) -> Stack {
    stack_to(server.uri(), strategy)
}

/// One retry as the hook saw it: (attempt, reason, delay, instant since the start).
pub type Seen = (u32, String, Duration, Duration);

/// What the `on_retry` hook saw, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn attach(&self, strategy: RetryStrategy) -> RetryStrategy {
        let events = self.events.clone();
        let start = tokio::time::Instant::now();
        strategy.on_retry(move |e: &RetryEvent<'_>| {
            events.lock().unwrap().push((
                e.retry(),
                e.reason().to_string(),
                e.delay(),
                start.elapsed(),
            ));
        })
    }

    pub fn reasons(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.1.clone())
            .collect()
    }

    pub fn delays(&self) -> Vec<Duration> {
        self.events.lock().unwrap().iter().map(|e| e.2).collect()
    }

    pub fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

/// A wait in the message's prose, as some providers write it: "try again in 1500ms" (a
/// rule for `RetryStrategy::retry_after_from`).
pub fn try_again_in(e: &tower_jsonrpc_retry::jsonrpc::ErrorObject) -> Option<Duration> {
    let (_, after) = e.message().split_once("try again in ")?;
    Some(Duration::from_millis(
        after.strip_suffix("ms")?.parse().ok()?,
    ))
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One call on a service kept across calls (`ready` needs the request type named, since
/// the stack serves both single and batch requests).
pub async fn call(
    svc: &mut Stack,
    req: tower_jsonrpc_retry::jsonrpc::Request,
) -> Result<tower_jsonrpc_retry::jsonrpc::Response, tower_jsonrpc_retry::codec::Error> {
    use tower::{Service, ServiceExt};
    ServiceExt::<tower_jsonrpc_retry::jsonrpc::Request>::ready(svc)
        .await?
        .call(req)
        .await
}

/// A request body for the HTTP-level tests, which the layer reads before sending: all
/// of it at once (also what the layer rebuilds each attempt from), its bytes after a
/// delay, a first chunk and then nothing more, or nothing ever.
pub enum TestBody {
    Full(Full<Bytes>),
    After(std::pin::Pin<Box<tokio::time::Sleep>>, Option<Bytes>),
    PartThenStall(Option<Bytes>),
    Stalled,
}

impl TestBody {
    /// `data`, after `delay`.
    pub fn after(delay: Duration, data: &'static [u8]) -> Self {
        TestBody::After(
            Box::pin(tokio::time::sleep(delay)),
            Some(Bytes::from_static(data)),
        )
    }
}

impl From<Vec<u8>> for TestBody {
    fn from(bytes: Vec<u8>) -> Self {
        TestBody::Full(Full::new(Bytes::from(bytes)))
    }
}

impl http_body::Body for TestBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        match self.get_mut() {
            TestBody::Full(full) => std::pin::Pin::new(full).poll_frame(cx),
            TestBody::After(sleep, data) => {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(data.take().map(|d| Ok(http_body::Frame::data(d))))
            }
            TestBody::PartThenStall(part) => match part.take() {
                Some(b) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
                None => Poll::Pending,
            },
            TestBody::Stalled => Poll::Pending,
        }
    }
}

/// (method, id, batch_len, retries, reason) of every give-up.
pub type GiveUps = Arc<Mutex<Vec<(String, Option<String>, Option<usize>, u32, GiveUpReason)>>>;

/// `strategy` with hooks that count its retries and record its give-ups.
pub fn watched(strategy: RetryStrategy) -> (RetryStrategy, Arc<AtomicUsize>, GiveUps) {
    let retries = Arc::new(AtomicUsize::new(0));
    let give_ups: GiveUps = Arc::default();
    let (r, g) = (Arc::clone(&retries), Arc::clone(&give_ups));
    let strategy = strategy
        .on_retry(move |_: &RetryEvent<'_>| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            g.lock().unwrap().push((
                e.method().to_owned(),
                e.id().map(ToString::to_string),
                e.batch_len(),
                e.retries(),
                e.reason(),
            ));
        });
    (strategy, retries, give_ups)
}

/// A boxed error in a wrapper whose `source()` is that error: a concrete
/// `std::error::Error` that takes hyper-util's error, for the HTTP-level layer's
/// `map_err` (a stack of two HTTP-level layers, `Buffer` over one in a spawned task), or
/// to keep an error in the chain under another error type.
#[derive(Debug)]
pub struct CallError(pub tower_jsonrpc_retry::BoxError);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl From<hyper_util::client::legacy::Error> for CallError {
    fn from(err: hyper_util::client::legacy::Error) -> Self {
        Self(Box::new(err))
    }
}

/// How a call's retries ended, as the record says it (`GaveUp`), for comparisons.
pub fn ended(gave_up: Option<tower_jsonrpc_retry::GaveUp>) -> Option<(u32, GiveUpReason)> {
    gave_up.map(|g| (g.retries(), g.reason()))
}

/// How the retries of the call with this id ended, as its answer in a batch records it.
pub fn ended_in(
    batch: &tower_jsonrpc_retry::jsonrpc::BatchResponse,
    id: i64,
) -> Option<(u32, GiveUpReason)> {
    let item = batch.items().iter().find(|r| *r.id() == id.into());
    ended(
        item.expect("an answer for the id")
            .extensions()
            .get()
            .copied(),
    )
}

/// The body of a request an h2 server of the test's own took, read whole (its
/// flow-control capacity given back as it comes).
pub async fn h2_body(request: http::Request<h2::RecvStream>) -> Vec<u8> {
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// Answers, over h2, the call whose bytes are `call` with the result `3` under its id.
pub fn h2_answer_3(
    respond: &mut h2::server::SendResponse<Bytes>,
    call: &[u8],
) -> Result<(), h2::Error> {
    let id = serde_json::from_slice::<serde_json::Value>(call).unwrap()["id"].clone();
    let body = serde_json::json!({"jsonrpc": "2.0", "result": 3, "id": id}).to_string();
    let head = http::Response::builder()
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let mut send = respond.send_response(head, false)?;
    send.send_data(Bytes::from(body), true)
}
