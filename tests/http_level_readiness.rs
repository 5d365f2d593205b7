//! At the HTTP level, a call made without `poll_ready` (or on a clone while a readied
//! service holds the only permit) waits for readiness inside its future: that wait
//! counts against the call's deadline, and ends at it with nothing sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const OK: &str = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;

/// Answers after `delays[n]` seconds (then at once); records when each request is sent.
#[derive(Clone, Default)]
struct Mem {
    sent: Arc<Mutex<Vec<Instant>>>,
    delays: Arc<Mutex<Vec<f64>>>,
}

impl Service<http::Request<Full<Bytes>>> for Mem {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<Full<Bytes>>) -> Self::Future {
        self.sent.lock().unwrap().push(Instant::now());
        let mut delays = self.delays.lock().unwrap();
        let delay = if delays.is_empty() {
            0.0
        } else {
            delays.remove(0)
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(delay)).await;
            Ok(http::Response::new(Full::new(Bytes::from_static(
                OK.as_bytes(),
            ))))
        })
    }
}

fn req() -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .body(Full::new(Bytes::from_static(CALL.as_bytes())))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_call_without_poll_ready_is_bounded_by_its_deadline() {
    let mem = Mem::default();
    mem.delays.lock().unwrap().push(3.0); // the hog holds the only connection 3 s
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(10)))
                .codes([2001])
                .max_elapsed(Duration::from_secs(1)),
        ))
        .concurrency_limit(1)
        .service(mem.clone());
    let mut hog = req();
    hog.extensions_mut().insert(RetryStrategy::none()); // no deadline of its own
    let hog = tokio::spawn(svc.clone().oneshot(hog));
    tokio::task::yield_now().await;
    assert_eq!(mem.sent.lock().unwrap().len(), 1);

    let start = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(60), svc.clone().call(req()))
        .await
        .expect("ends");
    let sent: Vec<_> = mem
        .sent
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|at| *at - start)
        .collect();
    let status = out.as_ref().map(|r| r.status()).map_err(|e| e.to_string());
    assert!(
        start.elapsed() <= Duration::from_secs(1) && sent.is_empty(),
        "1 s deadline, yet: {status:?} after {:?}, sent at {sent:?}",
        start.elapsed()
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(out.unwrap_err().is::<tower::timeout::error::Elapsed>());
    let _ = hog.await;
}
