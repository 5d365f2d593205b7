//! `FlakyServer` when the process runs out of file descriptors: it must neither spin nor
//! stop accepting. This file holds one test because the test lowers its own process's
//! open-file limit.
#![cfg(unix)]

use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tokio::time::Instant;
use tower_jsonrpc_retry::test_util::FlakyServer;
use tower_jsonrpc_retry::{Client, RetryStrategy};

/// The process's open-file limit during the test: room for the harness, the runtime and
/// the server's listener, and a few dozen connections to exhaust it with.
const OPEN_FILES: u64 = 64;

/// "Too many open files" (`EMFILE`): 24 on Linux, macOS and the BSDs.
const EMFILE: i32 = 24;

/// How long the test may take in real time before it counts as hung.
const WATCHDOG: Duration = Duration::from_secs(60);

/// With every descriptor taken, connections wait in the listener's backlog and each
/// `accept` fails with "too many open files". An accept loop that retried at once would
/// keep a paused clock's runtime from ever idling, so no timer would fire and the test
/// would hang: a watchdog in real time turns that into a failure. Once descriptors are
/// free again, the server must serve as before.
#[test]
fn the_server_waits_out_too_many_open_files_then_serves_again() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, OPEN_FILES, hard).unwrap();

    let (done, finished) = mpsc::channel();
    let test = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(exhaust_then_call());
        let _ = done.send(());
    });
    match finished.recv_timeout(WATCHDOG) {
        Ok(()) => test.join().unwrap(),
        // The test panicked: report its own message.
        Err(RecvTimeoutError::Disconnected) => std::panic::resume_unwind(test.join().unwrap_err()),
        Err(RecvTimeoutError::Timeout) => panic!(
            "no timer fired in {WATCHDOG:?} of real time: the server's accept loop keeps \
             the runtime busy while it is out of file descriptors"
        ),
    }
}

async fn exhaust_then_call() {
    let server = FlakyServer::start().await.unwrap();

    // Blocking connects, so the server's accept loop does not run in between: every
    // connection waits in the backlog until no descriptor is left for another socket.
    let mut streams = Vec::new();
    let exhausted = loop {
        match TcpStream::connect(server.addr()) {
            Ok(stream) => streams.push(stream),
            Err(e) => break e,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(EMFILE), "{exhausted}");
    assert!(streams.len() > 10, "only {} connections", streams.len());

    // The server now fails to accept any of them. Time must still pass.
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(server.connections(), 0);

    // With the callers gone, the server takes what waited and serves a call.
    let waiting = streams.len();
    drop(streams);
    let client = Client::builder(server.uri())
        .attempt_timeout(Duration::from_secs(5))
        .retry(RetryStrategy::none())
        .build();
    let sum: i64 = client.call("sum", (2, 3)).await.unwrap();
    assert_eq!(sum, 5);
    let log = server.log();
    assert_eq!(
        log.len(),
        1,
        "one request, from the call ({waiting} connections waited)"
    );
}
