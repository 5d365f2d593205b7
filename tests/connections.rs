//! Real-world HTTP connection behaviour through the whole stack, against raw servers on
//! 127.0.0.1 and `FlakyServer`: pooled keep-alive connections that go stale, attempts
//! cut by the codec's timeout mid-body, `Connection: close`, resets, early responses,
//! and many calls over a small pool.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{Client, ErrorClass, JsonRpcRetryLayer, RetryEvent, RetryStrategy};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What a raw server saw: per connection, the request bodies it read.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Vec<Value>>>>);

impl Seen {
    fn new_conn(&self) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push(Vec::new());
        v.len() - 1
    }
    fn push(&self, conn: usize, body: Value) {
        self.0.lock().unwrap()[conn].push(body);
    }
    fn per_conn(&self) -> Vec<usize> {
        self.0.lock().unwrap().iter().map(Vec::len).collect()
    }
    /// Reads the next request on connection `conn` (see [`read_request`]) and records
    /// its body; the body, or `None` at EOF or on an error.
    async fn recv(
        &self,
        stream: &mut TcpStream,
        buf: &mut Vec<u8>,
        conn: usize,
    ) -> Option<Vec<u8>> {
        let (_, body) = read_request(stream, buf).await?;
        self.push(conn, serde_json::from_slice(&body).unwrap_or(Value::Null));
        Some(body)
    }
}

/// What a scripted connection handler returns.
type Served = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Reads one request (head and `Content-Length` body) from `stream`, keeping any
/// extra bytes in `buf`. `None` at EOF or on an error.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some((head, body))
}

/// Reads only a request's head, leaving its body unread.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = stream.read(&mut b).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.push(b[0]);
        if seen.ends_with(b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&seen).into_owned());
        }
    }
}

fn answer_body(req: &[u8], result: Value) -> String {
    let req: Value = serde_json::from_slice(req).unwrap_or(Value::Null);
    json!({"jsonrpc": "2.0", "result": result, "id": req["id"]}).to_string()
}

fn http_ok(body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// The honest answer: `sum` adds its params, anything else echoes them.
fn honest(req: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(req).unwrap_or(Value::Null);
    match v["method"].as_str() {
        Some("sum") => json!(
            v["params"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).sum::<i64>())
                .unwrap_or(0)
        ),
        _ => v["params"].clone(),
    }
}

/// Serves every request on `stream` honestly, keep-alive, until EOF.
async fn serve_honestly(stream: TcpStream, buf: Vec<u8>, seen: Seen, conn: usize) {
    serve_with(stream, buf, seen, conn, |body| {
        answer_body(body, honest(body))
    })
    .await;
}

/// Answers every request on `stream` 200 with the body `answer` makes of its body,
/// keep-alive, until EOF.
async fn serve_with(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    seen: Seen,
    conn: usize,
    answer: impl Fn(&[u8]) -> String,
) {
    while let Some(body) = seen.recv(&mut stream, &mut buf, conn).await {
        if stream
            .write_all(http_ok(&answer(&body), "").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A raw server: connection `n` is handed to `first(stream)` when `n == 0`, and served
/// honestly otherwise.
async fn raw_server<F, Fut>(first: F) -> (http::Uri, Seen)
where
    F: Fn(TcpStream, Seen, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let conn = s.new_conn();
            if conn == 0 {
                tokio::spawn(first(stream, s.clone(), conn));
            } else {
                tokio::spawn(serve_honestly(stream, Vec::new(), s.clone(), conn));
            }
        }
    });
    (uri, seen)
}

/// Closes a connection as soon as it is accepted (a server at its connection limit, a
/// balancer with no backend).
async fn close_at_once(stream: TcpStream, _: Seen, _: usize) {
    drop(stream);
}

/// An error and its sources, for a failure message.
fn chain_of(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(e), |c| c.source())
        .map(|c| format!("{c} / {c:?}"))
        .collect()
}

fn counting(strategy: RetryStrategy) -> (RetryStrategy, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    (
        strategy.on_retry(move |_: &RetryEvent<'_>| {
            c.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

// ---------------------------------------------------------------------------------------
// (1) A pooled keep-alive connection the server closes: the request goes out on it and
// the server closes without answering (its idle timeout fired as the request arrived).
// ---------------------------------------------------------------------------------------

/// Connection 0 answers its first request, then reads the next one and closes.
async fn stale_after_one(mut stream: TcpStream, seen: Seen, conn: usize) {
    let mut buf = Vec::new();
    let Some(body) = seen.recv(&mut stream, &mut buf, conn).await else {
        return;
    };
    let ans = answer_body(&body, honest(&body));
    stream
        .write_all(http_ok(&ans, "").as_bytes())
        .await
        .unwrap();
    let _ = seen.recv(&mut stream, &mut buf, conn).await;
    drop(stream);
}

#[tokio::test(start_paused = true)]
async fn stale_pooled_connection_is_retried_for_an_idempotent_call() {
    let (uri, seen) = raw_server(stale_after_one).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    let a: i64 = client.call("sum", (1, 2)).await.unwrap();
    let b: i64 = client.call("sum", (3, 4)).await.unwrap();
    assert_eq!((a, b), (3, 7));
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert_eq!(seen.per_conn(), [2, 1]);
}

#[tokio::test(start_paused = true)]
async fn stale_pooled_connection_does_not_resend_a_non_idempotent_call() {
    let (uri, seen) = raw_server(stale_after_one).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1).non_idempotent(["send"]));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    let a: Value = client.call("send", ("a",)).await.unwrap();
    assert_eq!(a, json!(["a"]));
    let err = client.call::<Value>("send", ("b",)).await.unwrap_err();
    let t = err.transport().expect("a transport error");
    assert!(t.is_transport() && !t.is_connect(), "{t:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    assert_eq!(seen.per_conn(), [2]);
    // The client works again afterwards, on a fresh connection.
    let c: Value = client.call("send", ("c",)).await.unwrap();
    assert_eq!(c, json!(["c"]));
    assert_eq!(seen.per_conn(), [2, 1]);
}

/// The server closes its idle keep-alive connection (FIN) right after its first answer;
/// the client calls again a moment later: the pool must not hand out the dead connection
/// (or, if it does before noticing, the call is retried). Non-idempotent: hyper-util
/// resends an unwritten request itself; the call must succeed.
#[tokio::test(start_paused = true)]
async fn idle_close_between_calls_is_invisible() {
    async fn close_after_one(mut stream: TcpStream, seen: Seen, conn: usize) {
        let mut buf = Vec::new();
        if let Some(body) = seen.recv(&mut stream, &mut buf, conn).await {
            let ans = answer_body(&body, honest(&body));
            stream
                .write_all(http_ok(&ans, "").as_bytes())
                .await
                .unwrap();
        }
        let _ = stream.shutdown().await;
    }
    let (uri, seen) = raw_server(close_after_one).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1).non_idempotent(["send"]));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    let a: Value = client.call("send", ("a",)).await.unwrap();
    tokio::time::sleep(ms(50)).await;
    let b: Value = client.call("send", ("b",)).await.unwrap();
    assert_eq!((a, b), (json!(["a"]), json!(["b"])));
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    assert_eq!(seen.per_conn(), [1, 1]);
}

// ---------------------------------------------------------------------------------------
// (2) An attempt cut by the codec's timeout: the retry goes on a fresh connection, and
// nothing of the abandoned exchange leaks into it.
// ---------------------------------------------------------------------------------------

/// Connection 0 reads a request and, after `head_after`, sends a head and half a body;
/// after `rest_after` more it sends the rest with a poisoned result (999), then a second
/// complete poisoned answer to the same id, and keeps answering every later request on
/// this connection with 999.
fn poisoned(
    head_after: Duration,
    rest_after: Duration,
) -> impl Fn(TcpStream, Seen, usize) -> Served + Send + Sync + 'static {
    move |mut stream, seen, conn| {
        Box::pin(async move {
            let mut buf = Vec::new();
            let Some(body) = seen.recv(&mut stream, &mut buf, conn).await else {
                return;
            };
            let ans = answer_body(&body, json!(999));
            let full = http_ok(&ans, "");
            let (a, b) = full.split_at(full.len() - ans.len() / 2);
            tokio::time::sleep(head_after).await;
            if stream.write_all(a.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(rest_after).await;
            let _ = stream.write_all(b.as_bytes()).await;
            let _ = stream.write_all(full.as_bytes()).await;
            while let Some(body) = seen.recv(&mut stream, &mut buf, conn).await {
                let ans = answer_body(&body, json!(999));
                if stream
                    .write_all(http_ok(&ans, "").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    }
}

/// An attempt cut by the codec's timeout mid-body (head at 10 ms, body at 300 ms) or
/// before the head (at 300 ms): the retry goes out on a fresh connection, and the
/// leftovers of the abandoned one never reach a later call.
#[tokio::test(start_paused = true)]
async fn an_attempt_cut_by_the_codec_timeout_retries_on_a_fresh_connection() {
    for (head, body) in [(ms(10), ms(300)), (ms(300), ms(1))] {
        let (uri, seen) = raw_server(poisoned(head, body)).await;
        let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
        let client = Client::builder(uri)
            .attempt_timeout(ms(200))
            .retry(strategy)
            .build();
        let a: i64 = client.call("sum", (1, 2)).await.unwrap();
        assert_eq!(a, 3);
        assert_eq!(retries.load(Ordering::SeqCst), 1);
        // Later calls, after the poisoned connection sent its leftovers, are clean too.
        tokio::time::sleep(ms(1000)).await;
        for i in 0..5 {
            let s: i64 = client.call("sum", (i, 1)).await.unwrap();
            assert_eq!(s, i + 1);
        }
        assert_eq!(seen.per_conn()[0], 1, "{:?}", seen.per_conn());
    }
}

/// The same with `FlakyServer`'s trickle, and a notification, whose 2xx body the codec
/// reads only to throw it away: the connection must still come back clean, and a body
/// still trickling at the attempt timeout leaves the notification delivered, not timed
/// out (and sent again).
#[tokio::test(start_paused = true)]
async fn trickled_answers_and_unread_notification_bodies_do_not_poison_the_pool() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::trickle(ms(50))]);
    server.script(
        "log",
        [
            Step::trickle(ms(50)),
            Step::raw(200, "{\"jsonrpc\":\"2.0\",\"result\":42,\"id\":1}"),
        ],
    );
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
    let client = Client::builder(server.uri())
        .attempt_timeout(ms(200))
        .retry(strategy)
        .build();
    let a: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(a, 3);
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    client.notify("log", ("x",)).await.unwrap();
    client.notify("log", ("y",)).await.unwrap();
    for i in 0..10 {
        let s: i64 = client.call("sum", (i, 1)).await.unwrap();
        assert_eq!(s, i + 1);
    }
    assert_eq!(server.calls("sum"), 12);
    assert_eq!(server.calls("log"), 2);
}

// ---------------------------------------------------------------------------------------
// (3) `Connection: close` on every answer.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn connection_close_on_every_answer() {
    async fn close_each(mut stream: TcpStream, seen: Seen, conn: usize) {
        let mut buf = Vec::new();
        if let Some(body) = seen.recv(&mut stream, &mut buf, conn).await {
            let ans = answer_body(&body, honest(&body));
            let _ = stream
                .write_all(http_ok(&ans, "connection: close\r\n").as_bytes())
                .await;
        }
        drop(stream);
    }
    // Every connection behaves so: route them all to `close_each`.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: http::Uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = s.new_conn();
            tokio::spawn(close_each(stream, s.clone(), conn));
        }
    });
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1).non_idempotent(["send"]));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    for i in 0..50 {
        let s: i64 = client.call("sum", (i, 1)).await.unwrap();
        assert_eq!(s, i + 1);
        let v: Value = client.call("send", (i,)).await.unwrap();
        assert_eq!(v, json!([i]));
    }
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move { client.call::<i64>("sum", (i, 2)).await.unwrap() == i + 2 }
    });
    assert!(futures_all(calls).await);
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    assert!(seen.per_conn().iter().all(|&n| n == 1));
    assert_eq!(seen.per_conn().len(), 150);
}

async fn futures_all<F: Future<Output = bool> + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> bool {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut all = true;
    for h in handles {
        all &= h.await.unwrap();
    }
    all
}

// ---------------------------------------------------------------------------------------
// (4) A reset (RST) mid-response.
// ---------------------------------------------------------------------------------------

fn rst_after(
    prefix_of_answer: usize,
) -> impl Fn(TcpStream, Seen, usize) -> Served + Send + Sync + 'static {
    move |mut stream, seen, conn| {
        Box::pin(async move {
            let mut buf = Vec::new();
            let Some(body) = seen.recv(&mut stream, &mut buf, conn).await else {
                return;
            };
            let ans = http_ok(&answer_body(&body, honest(&body)), "");
            let _ = stream
                .write_all(&ans.as_bytes()[..prefix_of_answer.min(ans.len())])
                .await;
            let _ = stream.flush().await;
            tokio::task::yield_now().await;
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO)).unwrap();
            drop(stream);
        })
    }
}

#[tokio::test(start_paused = true)]
async fn reset_mid_body_is_retried_and_not_for_non_idempotent() {
    for cut in [0usize, 10, 90] {
        let (uri, seen) = raw_server(rst_after(cut)).await;
        let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
        let client = Client::builder(uri)
            .attempt_timeout(ms(500))
            .retry(strategy)
            .build();
        let a: i64 = client.call("sum", (1, 2)).await.unwrap();
        assert_eq!(a, 3, "cut {cut}");
        assert_eq!(retries.load(Ordering::SeqCst), 1, "cut {cut}");
        assert_eq!(seen.per_conn(), [1, 1], "cut {cut}");

        let (uri, seen) = raw_server(rst_after(cut)).await;
        let (strategy, retries) =
            counting(RetryStrategy::transient_seeded(1).non_idempotent(["send"]));
        let client = Client::builder(uri)
            .attempt_timeout(ms(500))
            .retry(strategy)
            .build();
        let err = client.call::<Value>("send", (1,)).await.unwrap_err();
        assert!(!err.transport().unwrap().is_connect(), "cut {cut}: {err:?}");
        assert_eq!(retries.load(Ordering::SeqCst), 0, "cut {cut}");
        assert_eq!(seen.per_conn(), [1], "cut {cut}");
    }
}

// ---------------------------------------------------------------------------------------
// (5) A server that answers before reading the request body.
// ---------------------------------------------------------------------------------------

/// Connection 0 reads only the head, answers 503 (keep-alive, or closing), then, when it
/// keeps the connection, reads and discards the body and serves honestly.
fn early(close: bool) -> impl Fn(TcpStream, Seen, usize) -> Served + Send + Sync + 'static {
    move |mut stream, seen, conn| {
        Box::pin(async move {
            let Some(head) = read_head(&mut stream).await else {
                return;
            };
            seen.push(conn, Value::Null);
            let extra = if close { "connection: close\r\n" } else { "" };
            let busy =
                format!("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n{extra}\r\n");
            let _ = stream.write_all(busy.as_bytes()).await;
            if close {
                drop(stream); // with the body unread: an RST
                return;
            }
            let len = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            serve_honestly(stream, Vec::new(), seen, conn).await;
        })
    }
}

#[tokio::test(start_paused = true)]
async fn early_answer_before_the_body_is_read() {
    for close in [false, true] {
        for size in [10usize, 1 << 20] {
            let (uri, seen) = raw_server(early(close)).await;
            let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
            let client = Client::builder(uri)
                .attempt_timeout(ms(2000))
                .retry(strategy)
                .build();
            let big = "x".repeat(size);
            let v: Value = client.call("echo", (&big,)).await.unwrap();
            assert_eq!(v, json!([big]), "close {close} size {size}");
            assert_eq!(
                retries.load(Ordering::SeqCst),
                1,
                "close {close} size {size}"
            );
            for i in 0..3 {
                let s: i64 = client.call("sum", (i, 1)).await.unwrap();
                assert_eq!(s, i + 1);
            }
            let per = seen.per_conn();
            assert_eq!(
                per.iter().sum::<usize>(),
                5,
                "close {close} size {size}: {per:?}"
            );
            if close {
                assert_eq!(per[0], 1, "close {close} size {size}: {per:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (6) Hundreds of calls over a small pool, with dropped connections sprinkled in.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn hundreds_of_calls_over_a_small_pool_with_drops() {
    const CALLS: usize = 400;
    let server = FlakyServer::start().await.unwrap();
    let mut steps = Vec::new();
    let mut drops = 0;
    for i in 0..(CALLS + 200) {
        if i % 7 == 3 {
            steps.push(Step::drop_connection());
            drops += 1;
        } else if i % 11 == 5 {
            steps.push(Step::delay(ms(30)));
        } else {
            steps.push(Step::ok());
        }
    }
    server.script("echo", steps);
    let http = HyperClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(2)
        .build_http::<Full<Bytes>>();
    let (strategy, retries) = counting(
        RetryStrategy::new(PeriodicBackoff::new(20, Duration::ZERO)).retry_on(ErrorClass::Reset),
    );
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(ms(1000)))
        .service(http);
    let client = Client::new(svc);
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut handles = Vec::new();
    for i in 0..CALLS {
        let client = client.clone();
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let v: Value = client.call("echo", (i, format!("call-{i}"))).await.unwrap();
            assert_eq!(v, json!([i, format!("call-{i}")]));
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let attempts = server.calls("echo");
    let retried = retries.load(Ordering::SeqCst);
    assert_eq!(attempts, CALLS + retried);
    // Steps taken: every drop among the first `attempts` steps caused one retry.
    let drops_taken = (0..attempts).filter(|i| i % 7 == 3).count();
    assert_eq!(retried, drops_taken, "drops in script {drops}");
}

// ---------------------------------------------------------------------------------------
// (1b) A fresh connection the server closes (FIN) as soon as it accepts it: a server at
// its connection limit, a balancer with no backend. Nothing was sent.
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_connection_closed_on_accept_is_retried() {
    let (uri, seen) = raw_server(close_at_once).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    let res = client.call::<i64>("sum", (1, 2)).await;
    if let Err(e) = &res {
        panic!(
            "not retried ({} retries): {:#?}",
            retries.load(Ordering::SeqCst),
            chain_of(e)
        );
    }
    assert_eq!(res.unwrap(), 3);
    assert_eq!(seen.per_conn(), [0, 1]);
}

/// The request of a non-idempotent call on a connection the server closed at once was
/// handed back unwritten by hyper: it never left the client, so it is sent again, once.
#[tokio::test(start_paused = true)]
async fn an_unsent_non_idempotent_call_is_sent_again() {
    let (uri, seen) = raw_server(close_at_once).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1).non_idempotent(["send"]));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    match client.call::<Value>("send", ("tx",)).await {
        Ok(v) => assert_eq!(v, json!(["tx"])),
        Err(e) => panic!(
            "a request hyper reports as never written was not sent again \
             ({} retries, {:?} requests per connection): {:#?}",
            retries.load(Ordering::SeqCst),
            seen.per_conn(),
            chain_of(&e),
        ),
    }
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert_eq!(seen.per_conn(), [0, 1], "sent exactly once");
}

/// The request hyper hands back unwritten is of [`ErrorClass::Reset`], as its docs
/// say: a strategy with that class alone sends the non-idempotent call again.
#[tokio::test(start_paused = true)]
async fn an_unsent_request_is_of_the_reset_class() {
    let (uri, seen) = raw_server(close_at_once).await;
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&reasons);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, ms(10)))
        .retry_on(ErrorClass::Reset)
        .non_idempotent(["send"])
        .on_retry(move |e: &RetryEvent<'_>| r.lock().unwrap().push(e.reason().to_string()));
    let client = Client::builder(uri)
        .attempt_timeout(ms(500))
        .retry(strategy)
        .build();
    let v: Value = client.call("send", ("tx",)).await.unwrap();
    assert_eq!(v, json!(["tx"]));
    assert_eq!(*reasons.lock().unwrap(), ["reset"]);
    assert_eq!(seen.per_conn(), [0, 1]);
}

/// A connector that takes a moment after the TCP handshake (a TLS handshake, a busy
/// runtime), so that a server closing on accept is seen closed before any request.
fn slow_connector()
-> impl hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static {
    tower::service_fn(|uri: http::Uri| {
        Box::pin(async move {
            let addr = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap());
            let stream = TcpStream::connect(addr).await?;
            tokio::time::sleep(ms(1)).await;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        })
    })
}

#[tokio::test(start_paused = true)]
async fn a_connection_closed_on_accept_before_the_first_request_is_retried() {
    let (uri, seen) = raw_server(close_at_once).await;
    let (strategy, retries) = counting(RetryStrategy::transient_seeded(1));
    let http = HyperClient::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(slow_connector());
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(uri).attempt_timeout(ms(500)))
        .service(http);
    let res = Client::new(svc).call::<i64>("sum", (1, 2)).await;
    match res {
        Ok(v) => assert_eq!(v, 3),
        Err(e) => panic!(
            "not retried ({} retries): {:#?}",
            retries.load(Ordering::SeqCst),
            chain_of(&e)
        ),
    }
    assert_eq!(seen.per_conn(), [0, 1]);
}

// ---------------------------------------------------------------------------------------
// (8) A server that answers notifications with a body.
// ---------------------------------------------------------------------------------------

/// Answers every request on its connection 200 with a body of `len` bytes, keep-alive:
/// more than hyper reads along with the head, so a client that drops the body unread
/// must close the connection.
async fn answered_at_length(stream: TcpStream, seen: Seen, conn: usize, len: usize) {
    let body = json!({"jsonrpc": "2.0", "result": "x".repeat(len), "id": null}).to_string();
    serve_with(stream, Vec::new(), seen, conn, |_| body.clone()).await;
}

/// The body of a notification's 2xx answer is read and thrown away, so every
/// notification goes over the one pooled connection. Dropped unread, it closed the
/// connection each time (unless hyper happened to have all of it already): a new TCP
/// connection per notification.
#[tokio::test(start_paused = true)]
async fn a_notifications_answer_with_a_body_keeps_its_connection() {
    let serve = |stream, seen, conn| answered_at_length(stream, seen, conn, 48 * 1024);
    let (uri, seen) = raw_server(serve).await;
    let client = Client::builder(uri).retry(RetryStrategy::none()).build();
    for n in 0..5 {
        client.notify("log", (n,)).await.unwrap();
    }
    assert_eq!(seen.per_conn(), [5]);
}

/// Answers the first request 200 with a head that declares `declared` bytes (`None`:
/// a chunked body) and `sent` of them, then sends nothing more (the connection stays
/// open until the client closes it).
async fn stalls_after(
    mut stream: TcpStream,
    seen: Seen,
    conn: usize,
    declared: Option<usize>,
    sent: usize,
) {
    let mut buf = Vec::new();
    if seen.recv(&mut stream, &mut buf, conn).await.is_none() {
        return;
    }
    let (framing, part) = match declared {
        Some(len) => (format!("content-length: {len}"), vec![b' '; sent]),
        None => {
            let mut chunk = format!("{sent:x}\r\n").into_bytes();
            chunk.resize(chunk.len() + sent, b' ');
            chunk.extend_from_slice(b"\r\n");
            ("transfer-encoding: chunked".to_owned(), chunk)
        }
    };
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&part).await.is_err() {
        return;
    }
    let mut rest = [0u8; 1024];
    while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
}

/// A notification's answer body is drained up to 64 KiB, not to its end: one that
/// declares more is not waited for at all, and one that has sent more is not waited for
/// any longer (its connection is closed either way), whatever the attempt timeout.
#[tokio::test(start_paused = true)]
async fn a_notifications_answer_body_past_the_drain_limit_is_not_waited_for() {
    for (declared, sent) in [(Some(1 << 20), 10), (None, 100 * 1024)] {
        let serve = move |stream, seen, conn| stalls_after(stream, seen, conn, declared, sent);
        let (uri, _seen) = raw_server(serve).await;
        let client = Client::builder(uri)
            .attempt_timeout(ms(500))
            .retry(RetryStrategy::none())
            .build();
        let start = tokio::time::Instant::now();
        client.notify("log", ("x",)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "{declared:?}");
    }
}

/// A short body that stalls holds the notification up 100 ms at most, then it is
/// delivered, sent once: not until the attempt times out, and with no timeout at all,
/// not forever (a timeout above the codec that fired while it waited would have the
/// notification sent again). An attempt timeout that comes first ends the wait as
/// delivered too, not as a timeout.
#[tokio::test(start_paused = true)]
async fn a_notifications_answer_body_that_stalls_is_waited_for_briefly() {
    for (attempt_timeout, waited) in [(None, ms(100)), (Some(ms(50)), ms(50))] {
        let serve = |stream, seen, conn| stalls_after(stream, seen, conn, Some(1000), 10);
        let (uri, seen) = raw_server(serve).await;
        let http = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let codec = JsonRpcCodecLayer::new(uri);
        let codec = match attempt_timeout {
            Some(timeout) => codec.attempt_timeout(timeout),
            None => codec,
        };
        let svc = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
            .layer(codec)
            .service(http);
        let client = Client::new(svc);
        let start = tokio::time::Instant::now();
        client.notify("log", ("x",)).await.unwrap();
        assert_eq!(start.elapsed(), waited, "{attempt_timeout:?}");
        assert_eq!(seen.per_conn(), [1], "{attempt_timeout:?}");
    }
}
