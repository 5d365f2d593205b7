//! The typed client over HTTP/2 (`ClientBuilder::http2_prior_knowledge`), against
//! `FlakyServer`, which speaks HTTP/2 to a client that opens with its preface: every step
//! over one shared connection, and a connection gone silent closed by keep-alive pings so
//! that the retry opens a new one.
#![cfg(feature = "http2")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Version;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{self, JsonRpcCodecLayer};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{Client, ClientError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// Up to `retries` retries, no wait, on the failures a step makes.
fn on_failures(retries: usize) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(retries, Duration::ZERO))
        .codes([2001])
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
        .retry_on(ErrorClass::Reset)
        .retry_on(ErrorClass::Timeout)
}

fn http2_client(uri: http::Uri, strategy: RetryStrategy) -> Client {
    Client::builder(uri)
        .http2_prior_knowledge()
        .attempt_timeout(Duration::from_secs(1))
        .retry(strategy)
        .build()
}

#[tokio::test(start_paused = true)]
async fn calls_share_one_http2_connection() {
    let server = FlakyServer::start().await.unwrap();
    let client = http2_client(server.uri(), RetryStrategy::none());
    let calls = (0..8).map(|i| client.call::<i64>("sum", (i, 1)));
    let sums: Vec<i64> = futures_join_all(calls).await;
    assert_eq!(sums, (1..=8).collect::<Vec<_>>());
    assert_eq!(server.versions(), [Version::HTTP_2; 8]);
    assert_eq!(server.connections(), 1, "eight streams on one connection");
}

/// The transient failures a step makes (an error code, a 503 with `Retry-After`, a
/// dropped connection, a body cut short, a hang), over HTTP/2: each one retried on the
/// same connection, since none of them closes it (a dropped connection or a body cut
/// short is the stream reset, a hung call the stream given up).
#[tokio::test(start_paused = true)]
async fn each_step_is_retried_over_the_same_http2_connection() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [
            Step::error(2001),
            Step::status(503).retry_after("2"),
            Step::drop_connection(),
            Step::truncated(),
            Step::timeout(),
        ],
    );
    let client = http2_client(server.uri(), on_failures(5));
    let start = Instant::now();
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 6);
    assert_eq!(server.versions(), [Version::HTTP_2; 6]);
    assert_eq!(server.connections(), 1);
    // The `Retry-After` wait and the hung attempt's timeout, nothing else.
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

/// A stream reset by a dropped step proves nothing about the call (the server read it),
/// so a non-idempotent method is not sent again.
#[tokio::test(start_paused = true)]
async fn a_reset_stream_is_not_sent_again_for_a_non_idempotent_method() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("send", |_| Ok(json!("0xabc")));
    server.script("send", [Step::drop_connection()]);
    let client = http2_client(server.uri(), on_failures(3).non_idempotent(["send"]));
    let err = client.call::<String>("send", ["0x01"]).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(server.calls("send"), 1);
}

/// `http2` offers HTTP/2 through ALPN, which plain HTTP does not have: such a client
/// speaks HTTP/1.1 to an `http` URI.
#[tokio::test(start_paused = true)]
async fn http2_offered_over_plain_http_stays_http1() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri()).http2().build();
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.versions(), [Version::HTTP_11]);
}

/// A TCP proxy on 127.0.0.1 in front of `backend` that can go silent: `freeze` stops
/// every connection open at that moment from passing anything on, while keeping it open
/// (a network partition, a NAT entry dropped); connections made after it pass as usual.
struct Proxy {
    uri: http::Uri,
    accepted: Arc<AtomicUsize>,
    freeze: Arc<Notify>,
}

impl Proxy {
    async fn start(backend: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let freeze = Arc::new(Notify::new());
        let (count, frozen) = (Arc::clone(&accepted), Arc::clone(&freeze));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let frozen = Arc::clone(&frozen);
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(backend).await else {
                        return;
                    };
                    // HTTP/2 frames pass one write at a time (see `common::http2`).
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                        () = frozen.notified() => {}
                    }
                    // Silent, and open for as long as the test runs.
                    std::future::pending::<()>().await;
                    drop((client, server));
                });
            }
        });
        Self {
            uri,
            accepted,
            freeze,
        }
    }

    fn freeze(&self) {
        self.freeze.notify_waiters();
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Up to 3 retries, no wait, on timeouts and broken connections.
fn transient_now() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Reset)
}

/// The client's pings close a connection that went silent, within half the attempt
/// timeout (a ping after a quarter of it, as long again for the answer, at most 15 s
/// each), and the retry opens a new connection.
#[tokio::test(start_paused = true)]
async fn a_silent_http2_connection_is_closed_and_the_retry_takes_a_new_one() {
    for (attempt_timeout, closed_after) in [
        (None, 5),       // the default 10 s
        (Some(60), 30),  // a quarter each
        (Some(3), 2),    // at least 1 s each
        (Some(600), 30), // at most 15 s each
    ] {
        let server = FlakyServer::start().await.unwrap();
        let proxy = Proxy::start(server.addr()).await;
        let mut client = Client::builder(proxy.uri.clone())
            .http2_prior_knowledge()
            .retry(transient_now());
        if let Some(secs) = attempt_timeout {
            client = client.attempt_timeout(Duration::from_secs(secs));
        }
        let client = client.build();
        assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
        proxy.freeze();

        let start = Instant::now();
        assert_eq!(client.call::<i64>("sum", (2, 2)).await.unwrap(), 4);
        assert_eq!(
            proxy.accepted(),
            2,
            "{attempt_timeout:?}: the retry took a new connection"
        );
        assert_eq!(
            server.calls("sum"),
            2,
            "the silent attempt never reached the server"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(closed_after),
            "{attempt_timeout:?}"
        );
    }
}

/// Why the client pings: without pings (hyper's default), a retry after a timeout goes
/// out on the same silent connection, and so does every other.
#[tokio::test(start_paused = true)]
async fn without_pings_every_retry_waits_on_the_silent_connection() {
    let server = FlakyServer::start().await.unwrap();
    let proxy = Proxy::start(server.addr()).await;
    let stack = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(transient_now()))
        .layer(JsonRpcCodecLayer::new(proxy.uri.clone()).attempt_timeout(Duration::from_secs(1)))
        .service(common::http2());
    let client = Client::new(stack);
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    proxy.freeze();

    let start = Instant::now();
    let err = client.call::<i64>("sum", (2, 2)).await.unwrap_err();
    assert!(
        err.transport().is_some_and(codec::Error::is_timeout),
        "{err:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(4),
        "four attempts timed out"
    );
    assert_eq!(proxy.accepted(), 1, "all four on the silent connection");
}

/// `join_all` without a dependency on `futures`: the calls run together, in order.
async fn futures_join_all<F, T>(calls: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = Result<T, ClientError>> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap().unwrap());
    }
    out
}

/// What `ClientBuilder::http2` warns of: with every stream of the connection busy, a
/// call waits for one; the first in line may already be in h2's hands, so when it gives
/// up (here, at its deadline), recent hyper and h2 still send it once a stream frees,
/// after its caller got the timeout (earlier releases drop it). Never more than once:
/// the layer does not send a non-idempotent call again after a timeout.
#[tokio::test(start_paused = true)]
async fn a_call_given_up_while_waiting_for_a_stream_is_sent_at_most_once_later() {
    let server = FlakyServer::start().await.unwrap();
    // hyper's server allows 200 concurrent streams: 200 hung calls take them all.
    server.script("sum", std::iter::repeat_with(Step::timeout).take(200));
    server.handle("send", |_| Ok(json!("0xabc")));
    let client = Client::builder(server.uri())
        .http2_prior_knowledge()
        .attempt_timeout(Duration::from_secs(3600))
        .retry(RetryStrategy::none())
        .build();
    let hung: Vec<_> = (0..200i64)
        .map(|i| tokio::spawn(client.call::<i64>("sum", (i, 1))))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.in_flight(), 200, "every stream busy");

    let strategy = on_failures(3)
        .non_idempotent(["send"])
        .max_elapsed(Duration::from_millis(500));
    let err = client
        .request("send")
        .params(["0x01"])
        .retry(strategy)
        .send::<String>()
        .await
        .unwrap_err();
    assert!(
        err.transport().is_some_and(codec::Error::is_timeout),
        "{err:?}"
    );
    assert_eq!(
        server.calls("send"),
        0,
        "not sent when its caller got the timeout"
    );

    for call in hung {
        call.abort();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.calls("send") <= 1, "sent at most once");
}

/// `http2_prior_knowledge`'s docs: a plain-HTTP server that speaks HTTP/1.1 only closes
/// the connection on the preface; the call fails as a broken connection (a reset, in
/// the message too), retried to no avail on a new connection each time.
#[tokio::test(start_paused = true)]
async fn prior_knowledge_against_an_http1_only_server_fails_as_a_broken_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            let service = hyper::service::service_fn(|_req: http::Request<_>| async {
                Ok::<_, hyper::Error>(http::Response::new(String::from("{}")))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    let uri = format!("http://{addr}/").parse().unwrap();
    let client = http2_client(uri, transient_now());
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert!(transport.is_reset(), "{err:?}");
    assert!(
        !transport.is_timeout() && !transport.is_connect(),
        "{err:?}"
    );
    assert_eq!(
        transport.to_string(),
        "HTTP request failed: the connection broke; gave up after 3 retries: attempts exhausted"
    );
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        4,
        "a new connection each time"
    );
}

/// Over HTTP/2 the calls waiting for a connection wait on the call opening it, and
/// hyper-util cancels them when that call is dropped (hyperium/hyper#3199): they are
/// sent again at once, not retried after a backoff delay as connect failures (with
/// `transient()`), nor failed (with a strategy that does not retry connect failures).
#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_it_opens_the_connection_fails_no_other() {
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Waker};

    for strategy in [
        RetryStrategy::transient(),
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1))).codes([-32005]),
    ] {
        let server = FlakyServer::start().await.unwrap();
        let retries = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&retries);
        let client = Client::builder(server.uri())
            .retry(strategy.on_retry(move |e| seen.lock().unwrap().push(e.reason().to_string())))
            .http2_prior_knowledge()
            .build();
        // Call A starts opening the one HTTP/2 connection...
        let mut a = Box::pin(client.call::<i64>("sum", (1, 2)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(a.as_mut().poll(&mut cx).is_pending());
        // ...calls B and C wait for it...
        let b = tokio::spawn(client.call::<i64>("sum", (2, 3)));
        let c = tokio::spawn(client.call::<i64>("sum", (3, 4)));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // ...and A is dropped.
        drop(a);
        let start = Instant::now();
        assert_eq!(b.await.unwrap().unwrap(), 5);
        assert_eq!(c.await.unwrap().unwrap(), 7);
        assert_eq!(start.elapsed(), Duration::ZERO, "no backoff waited");
        assert!(
            retries.lock().unwrap().is_empty(),
            "{:?}",
            retries.lock().unwrap()
        );
        assert_eq!(server.calls("sum"), 2);
        assert_eq!(server.connections(), 1);
    }
}

/// As `a_call_given_up_while_waiting_for_a_stream_is_sent_at_most_once_later`, but with
/// an attempt timeout and no deadline, so that only the idempotency rule can stop a
/// retry after the timeout (there, the deadline ends the call as the attempt times out).
#[tokio::test(start_paused = true)]
async fn a_non_idempotent_call_timed_out_waiting_for_a_stream_is_not_sent_again() {
    use tower::ServiceExt;
    use tower_jsonrpc_retry::jsonrpc::Request;
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", std::iter::repeat_with(Step::timeout).take(200));
    server.handle("send", |_| Ok(json!("0xabc")));
    // One hyper client, so one pool and one HTTP/2 connection, under two stacks.
    let http = common::http2();
    let hold = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(RetryStrategy::none()))
        .layer(JsonRpcCodecLayer::new(server.uri()))
        .service(http.clone());
    let hung: Vec<_> = (0..200i64)
        .map(|i| {
            let req = Request::new("sum", json!([i, 1])).with_id(i);
            tokio::spawn(hold.clone().oneshot(req))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.in_flight(), 200, "every stream busy");

    let send = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(
            on_failures(3).non_idempotent(["send"]),
        ))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(Duration::from_millis(500)))
        .service(http.clone());
    let err = send
        .oneshot(Request::new("send", json!(["0x01"])).with_id(1000))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let gave_up = err.gave_up().expect("a record");
    assert_eq!(
        (gave_up.retries(), gave_up.reason()),
        (0, tower_jsonrpc_retry::GiveUpReason::NotIdempotent)
    );
    for call in hung {
        call.abort();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.calls("send") <= 1, "sent at most once");
}

/// How the first connection of [`one_stream_server`] ends, 300 ms after its first call.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// A graceful shutdown: a `GOAWAY` that lets the open stream finish.
    Goaway,
    /// The connection closed, as by a server that crashed.
    Close,
}

/// The calls a server saw, by method.
type Seen = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

/// An HTTP/2 server on 127.0.0.1 whose first connection allows one stream at a time,
/// answers `hold` after 1 s, and ends as `ending` says 300 ms after its first call came
/// (told by `held`); later connections answer every call at once. Answers `3`.
async fn one_stream_server(ending: Ending, held: Arc<Notify>) -> (http::Uri, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Seen::default();
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((socket, _)) = listener.accept().await {
            let (limited, counts, held) = (first, Arc::clone(&counts), Arc::clone(&held));
            first = false;
            tokio::spawn(async move {
                let mut builder = h2::server::Builder::new();
                if limited {
                    builder.max_concurrent_streams(1);
                }
                let Ok(mut conn) = builder.handshake::<_, bytes::Bytes>(socket).await else {
                    return;
                };
                let mut ends_at = None;
                loop {
                    let end = async {
                        match ends_at {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        next = conn.accept() => {
                            let Some(Ok((req, respond))) = next else { return };
                            if limited && ends_at.is_none() {
                                ends_at = Some(Instant::now() + Duration::from_millis(300));
                            }
                            let (counts, held) = (Arc::clone(&counts), Arc::clone(&held));
                            tokio::spawn(h2_answer(req, respond, counts, limited.then_some(held)));
                        }
                        () = end => match ending {
                            Ending::Goaway => {
                                conn.graceful_shutdown();
                                ends_at = Some(Instant::now() + Duration::from_secs(3600));
                            }
                            Ending::Close => return,
                        },
                    }
                }
            });
        }
    });
    (uri.parse().unwrap(), seen)
}

/// Answers one call with `3`, counting it; `hold` after 1 s when `held` is given (told).
async fn h2_answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    seen: Seen,
    held: Option<Arc<Notify>>,
) {
    let bytes = common::h2_body(req).await;
    let call: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let method = call["method"].as_str().unwrap().to_owned();
    *seen.lock().unwrap().entry(method.clone()).or_default() += 1;
    if let (Some(held), "hold") = (held, method.as_str()) {
        held.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The stream may be gone with its connection by now.
    let _ = common::h2_answer_3(&mut respond, &bytes);
}

/// A call waiting for a free stream (the server allows one, taken) when its connection
/// ends, by a `GOAWAY` or a close, never reached the server; hyper fails it as its
/// connection's task gone, a broken connection (`ErrorClass::Reset`), which the
/// transient preset retries on a new connection. It was no class, and not retried.
#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_a_stream_when_its_connection_ends_is_retried() {
    for ending in [Ending::Goaway, Ending::Close] {
        let held = Arc::new(Notify::new());
        let (uri, seen) = one_stream_server(ending, Arc::clone(&held)).await;
        let client = Client::builder(uri)
            .http2_prior_knowledge()
            .retry(RetryStrategy::transient())
            .build();
        let hold = tokio::spawn({
            let client = client.clone();
            async move { client.call::<i64>("hold", ()).await }
        });
        held.notified().await;
        let waiting = client.call::<i64>("sum", (1, 2)).await;
        assert_eq!(waiting.unwrap(), 3, "{ending:?}");
        assert_eq!(hold.await.unwrap().unwrap(), 3, "{ending:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.get("sum"),
            Some(&1),
            "{ending:?}: sent once, unsent before"
        );
    }
}
