//! A non-idempotent call whose request hyper reports as never written (hyper-util's
//! `Canceled` kind: the request was handed back unsent, on a fresh connection the
//! server closed before reading anything) is safe to send again, and should be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower_jsonrpc_retry::{Client, RetryEvent, RetryStrategy};

/// Closes its first connection as soon as it accepts it (a server at its connection
/// limit, a balancer with no backend); answers every request on later connections by
/// echoing its params. Counts the requests it read.
async fn closes_first_connection() -> (http::Uri, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut nth = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            nth += 1;
            if nth == 1 {
                drop(stream);
                continue;
            }
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let req: Value = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                    buf.drain(..end + 4 + len);
                    seen.fetch_add(1, Ordering::SeqCst);
                    let body = json!({"jsonrpc": "2.0", "result": req["params"], "id": req["id"]})
                        .to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (uri, requests)
}

fn chain_of(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![];
    let mut cur = Some(e);
    while let Some(c) = cur {
        out.push(format!("{c:?}"));
        cur = c.source();
    }
    out
}

#[tokio::test(start_paused = true)]
async fn an_unsent_non_idempotent_call_is_sent_again() {
    let (uri, requests) = closes_first_connection().await;
    let retries = Arc::new(AtomicUsize::new(0));
    let counted = retries.clone();
    let strategy = RetryStrategy::transient_seeded(1)
        .non_idempotent(["send"])
        .on_retry(move |_: &RetryEvent<'_>| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
    let client = Client::builder(uri)
        .timeout(Duration::from_millis(500))
        .retry(strategy)
        .build();

    match client.call::<Value>("send", ("tx",)).await {
        Ok(v) => {
            assert_eq!(v, json!(["tx"]));
            assert_eq!(retries.load(Ordering::SeqCst), 1);
            assert_eq!(requests.load(Ordering::SeqCst), 1, "sent exactly once");
        }
        Err(e) => panic!(
            "a request hyper reports as never written was not sent again \
             ({} retries, {} requests on the wire): {:#?}",
            retries.load(Ordering::SeqCst),
            requests.load(Ordering::SeqCst),
            chain_of(&e),
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_idempotent_call_is_retried() {
    let (uri, requests) = closes_first_connection().await;
    let client = Client::builder(uri)
        .timeout(Duration::from_millis(500))
        .retry(RetryStrategy::transient_seeded(1))
        .build();
    let v: Value = client.call("send", ("tx",)).await.unwrap();
    assert_eq!(v, json!(["tx"]));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
