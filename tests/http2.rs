//! HTTP/2: hyper-util's client speaking HTTP/2 (prior knowledge) to an h2 server started
//! on 127.0.0.1 that answers, resets streams or sends `GOAWAY` as each test scripts it.
//!
//! On tokio's paused clock, with `TCP_NODELAY` on both ends: HTTP/2 writes a request or
//! an answer as several frames, and with Nagle's algorithm the kernel holds a later write
//! back until the peer acknowledges the first, which Linux delays by 40 ms or more; the paused
//! clock would run the timers meanwhile. Every backoff is zero and no call has a
//! timeout; a guard only ends a call that hangs.
//!
//! With the `http2` feature off (CI runs this file that way too), h2's errors are no
//! error class, and the tests whose outcome that changes expect so.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{self, JsonRpcCodecLayer};
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::{ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// What the server does with a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `{"result": 3}`.
    Sum,
    /// Resets the request's stream (`RST_STREAM`) with this reason.
    Reset(Reason),
    /// Sends `GOAWAY` with this reason and closes the connection.
    GoAway(Reason),
}

struct H2Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl H2Server {
    /// Serves `script` in order, then [`Answer::Sum`].
    async fn start(script: impl IntoIterator<Item = Answer>) -> H2Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (script, seen) = (Arc::clone(&script), Arc::clone(&seen));
                tokio::spawn(async move {
                    let _ = socket.set_nodelay(true);
                    let Ok(mut conn) = h2::server::handshake(socket).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = conn.accept().await {
                        seen.fetch_add(1, Ordering::SeqCst);
                        let answer = script.lock().unwrap().pop_front().unwrap_or(Answer::Sum);
                        match answer {
                            Answer::GoAway(reason) => conn.abrupt_shutdown(reason),
                            // The connection must go on being polled while a stream is
                            // answered: each answer is a task of its own.
                            answer => {
                                tokio::spawn(answer_one(request, respond, answer));
                            }
                        }
                    }
                });
            }
        });
        H2Server { addr, requests }
    }

    fn uri(&self) -> http::Uri {
        format!("http://{}/", self.addr).parse().unwrap()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer_one(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    answer: Answer,
) {
    let call = common::h2_body(request).await;
    match answer {
        Answer::Reset(reason) => respond.send_reset(reason),
        _ => common::h2_answer_3(&mut respond, &call).unwrap(),
    }
}

/// Whether this build reads h2's errors.
const HTTP2: bool = cfg!(feature = "http2");

/// The attempts a call makes whose failures are retried only when h2's errors are read:
/// `with` when they are, 1 when not.
fn attempts_if_read(with: usize) -> usize {
    if HTTP2 { with } else { 1 }
}

/// Up to 3 retries, no wait, on broken connections only.
fn on_reset() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)).retry_on(ErrorClass::Reset)
}

/// One call of `method` through the retry layer over the codec over HTTP/2.
async fn call(
    server: &H2Server,
    strategy: RetryStrategy,
    method: &'static str,
) -> Result<Value, codec::Error> {
    let svc = JsonRpcRetryLayer::new(strategy)
        .layer(JsonRpcCodecLayer::new(server.uri()).layer(common::http2()));
    let call = svc.oneshot(Request::new(method, json!([1, 2])).with_id(1));
    let resp = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call ended")?;
    Ok(resp.result().cloned().unwrap_or(Value::Null))
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_server_resets_is_a_reset() {
    for reason in [
        Reason::INTERNAL_ERROR,
        Reason::CANCEL,
        Reason::PROTOCOL_ERROR,
    ] {
        let server = H2Server::start([Answer::Reset(reason)]).await;
        let result = call(&server, on_reset(), "sum").await;
        assert_eq!(result.is_ok(), HTTP2, "{reason:?}: {result:?}");
        assert_eq!(server.requests(), attempts_if_read(2), "{reason:?}");
    }
}

/// A `GOAWAY` whose last stream id covers the call: the server may have run it, and
/// closing the connection breaks it like any other (h2 reports a broken pipe, a reset
/// with the feature or without): retried, but not for a non-idempotent call.
#[tokio::test(start_paused = true)]
async fn a_goaway_after_the_server_took_the_stream_is_a_broken_connection() {
    let server = H2Server::start([Answer::GoAway(Reason::INTERNAL_ERROR)]).await;
    assert_eq!(call(&server, on_reset(), "sum").await.ok(), Some(json!(3)));
    assert_eq!(server.requests(), 2);

    let server = H2Server::start([Answer::GoAway(Reason::INTERNAL_ERROR)]).await;
    let send = on_reset().non_idempotent(["send"]);
    assert!(call(&server, send, "send").await.is_err());
    assert_eq!(server.requests(), 1);
}

/// A `GOAWAY` whose last stream id is below the call's reaches it as h2's `GOAWAY`
/// error (not a broken pipe): a reset, retried with the feature (this server refuses
/// every request so, and the call ends when its 3 retries do). Not for a non-idempotent
/// call: the error does not say whether the `GOAWAY` covered the stream (hyper also
/// hands it to a stream h2 had queued to send when it came).
#[tokio::test(start_paused = true)]
async fn a_goaway_before_the_stream_is_a_reset_but_no_proof_it_was_not_run() {
    let strategy = || on_reset().non_idempotent(["send"]);
    let server = goaway_server().await;
    let err = call(&server, strategy(), "sum").await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert_eq!(server.requests(), attempts_if_read(4));

    let server = goaway_server().await;
    assert!(call(&server, strategy(), "send").await.is_err());
    assert_eq!(server.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_preset_for_transient_failures_retries_a_reset_stream() {
    let server = H2Server::start([Answer::Reset(Reason::INTERNAL_ERROR)]).await;
    let transient = RetryStrategy::transient().max_elapsed(Duration::from_secs(60));
    assert_eq!(call(&server, transient, "sum").await.is_ok(), HTTP2);
    assert_eq!(server.requests(), attempts_if_read(2));
}

/// `REFUSED_STREAM` says the server did not process the request: even a non-idempotent
/// call is sent again. Any other reset may come after the server ran it: not sent again.
#[tokio::test(start_paused = true)]
async fn only_a_refused_stream_is_sent_again_for_a_non_idempotent_call() {
    let send = || on_reset().non_idempotent(["send"]);

    let server = H2Server::start([Answer::Reset(Reason::REFUSED_STREAM)]).await;
    assert_eq!(call(&server, send(), "send").await.is_ok(), HTTP2);
    assert_eq!(server.requests(), attempts_if_read(2));

    let server = H2Server::start([Answer::Reset(Reason::INTERNAL_ERROR)]).await;
    let err = call(&server, send(), "send").await.unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    assert_eq!(server.requests(), 1);
}

/// A server that began to answer (a head, part of a body) had the request, whatever its
/// reset then claims: `REFUSED_STREAM` in the middle of the body is a reset like any
/// other, retried for an idempotent call, and a non-idempotent call is not sent again.
#[tokio::test(start_paused = true)]
async fn a_stream_refused_after_its_answer_began_is_no_proof_it_was_not_run() {
    let server = raw_server(RawAnswer::HeadThenRefused).await;
    let err = call(&server, on_reset(), "sum").await.unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert_eq!(server.requests(), attempts_if_read(4));

    let server = raw_server(RawAnswer::HeadThenRefused).await;
    let send = on_reset().non_idempotent(["send"]);
    let err = call(&server, send, "send").await.unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert_eq!(
        server.requests(),
        1,
        "a write the server began to answer, sent again"
    );
}

/// A connection that breaks in the middle of an answer's body (the server closed it,
/// with no `GOAWAY`) is a broken connection, as over HTTP/1.1: retried for an idempotent
/// call, not sent again for a non-idempotent one. (h2 holds the I/O error without
/// giving it as its source.)
#[tokio::test(start_paused = true)]
async fn a_connection_that_breaks_mid_body_is_a_reset() {
    let server = raw_server(RawAnswer::HeadThenClose).await;
    let err = call(&server, on_reset(), "sum").await.unwrap_err();
    assert!(err.is_body(), "{err:?}");
    assert_eq!(server.requests(), attempts_if_read(4));

    let server = raw_server(RawAnswer::HeadThenClose).await;
    let send = on_reset().non_idempotent(["send"]);
    assert!(call(&server, send, "send").await.is_err());
    assert_eq!(server.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_stream_is_no_timeout_or_connect_failure() {
    let server = H2Server::start([Answer::Reset(Reason::INTERNAL_ERROR)]).await;
    let others = RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Connect);
    assert!(call(&server, others, "sum").await.is_err());
    assert_eq!(server.requests(), 1);
}

/// A server that speaks just enough HTTP/2 to refuse every request: its preface, an
/// acknowledgement of the client's settings, and for each request (a `HEADERS` frame) a
/// `GOAWAY` whose last stream id is 0, so that no stream of the connection was processed;
/// then it closes the connection.
async fn goaway_server() -> H2Server {
    raw_server(RawAnswer::GoAway).await
}

/// What the hand-written HTTP/2 server answers each request with.
#[derive(Clone, Copy)]
enum RawAnswer {
    /// `GOAWAY` with last stream id 0, then the connection closes.
    GoAway,
    /// A `200` head and half a body, then `RST_STREAM` with `REFUSED_STREAM`, written
    /// at once: the server began to answer, then claims it did not process the request.
    HeadThenRefused,
    /// A `200` head and half a body, then the connection closes, with no `GOAWAY`: a
    /// server that went away mid-answer.
    HeadThenClose,
}

async fn raw_server(answer: RawAnswer) -> H2Server {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const RST_STREAM: u8 = 0x3;
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const ACK: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    /// A frame's header: its length (24 bits), type, flags and stream.
    fn frame_on(stream: [u8; 4], len: u32, kind: u8, flags: u8) -> Vec<u8> {
        let len = len.to_be_bytes();
        let mut head = vec![len[1], len[2], len[3], kind, flags];
        head.extend_from_slice(&stream);
        head
    }
    /// The same on stream 0.
    fn frame(len: u32, kind: u8, flags: u8) -> Vec<u8> {
        frame_on([0; 4], len, kind, flags)
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut preface = [0u8; 24];
                if socket.read_exact(&mut preface).await.is_err() {
                    return;
                }
                let _ = socket.write_all(&frame(0, SETTINGS, 0)).await;
                let mut head = [0u8; 9];
                while socket.read_exact(&mut head).await.is_ok() {
                    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
                    let mut payload = vec![0u8; len as usize];
                    if socket.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    match (head[3], head[4] & ACK) {
                        (SETTINGS, 0) => {
                            let _ = socket.write_all(&frame(0, SETTINGS, ACK)).await;
                        }
                        (HEADERS, _) if !matches!(answer, RawAnswer::GoAway) => {
                            seen.fetch_add(1, Ordering::SeqCst);
                            let stream = [head[5] & 0x7f, head[6], head[7], head[8]];
                            // HPACK: the static table's entry 8, `:status: 200`.
                            let mut out = frame_on(stream, 1, HEADERS, END_HEADERS);
                            out.push(0x88);
                            let half = br#"{"jsonrpc":"2.0","res"#;
                            out.extend(frame_on(stream, half.len() as u32, DATA, 0));
                            out.extend_from_slice(half);
                            if matches!(answer, RawAnswer::HeadThenRefused) {
                                out.extend(frame_on(stream, 4, RST_STREAM, 0));
                                out.extend_from_slice(&7u32.to_be_bytes()); // REFUSED_STREAM
                            }
                            let _ = socket.write_all(&out).await;
                            if matches!(answer, RawAnswer::HeadThenClose) {
                                let _ = socket.shutdown().await;
                                let mut rest = Vec::new();
                                let _ = socket.read_to_end(&mut rest).await;
                                return;
                            }
                        }
                        (HEADERS, _) => {
                            seen.fetch_add(1, Ordering::SeqCst);
                            let mut goaway = frame(8, GOAWAY, 0);
                            goaway.extend_from_slice(&0u32.to_be_bytes()); // last stream id
                            goaway.extend_from_slice(&2u32.to_be_bytes()); // INTERNAL_ERROR
                            let _ = socket.write_all(&goaway).await;
                            // Close the writing half and read on to the end, so the
                            // GOAWAY is not lost to a reset for unread bytes.
                            let _ = socket.shutdown().await;
                            let mut rest = Vec::new();
                            let _ = socket.read_to_end(&mut rest).await;
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    H2Server { addr, requests }
}
