//! HTTP wire semantics of the codec and the HTTP-level layer: what the layer tells its
//! caller in the headers it writes itself, and what it sends on each attempt.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};

const BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;
const FIRST: &str = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
const AGAIN: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;

fn response(
    status: u16,
    retry_after: Option<String>,
    body: &'static str,
) -> http::Response<Full<Bytes>> {
    let mut builder = http::Response::builder().status(status);
    if let Some(value) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, value);
    }
    builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// The seconds a `Retry-After` header of the layer's answer tells the caller to wait.
fn told(resp: &http::Response<Full<Bytes>>) -> u64 {
    resp.headers()
        .get(http::header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A batch whose first exchange answers call 1 and limits call 2 (retried alone); the
/// re-send is answered by `second`, whose `Retry-After` is an HTTP-date `secs` ahead.
async fn batch_then(
    second_status: u16,
    second_body: &'static str,
    secs: u64,
) -> (http::Response<Full<Bytes>>, SystemTime) {
    let date = SystemTime::now() + Duration::from_secs(secs);
    let sent = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&sent);
    let inner = tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
        let n = {
            let mut n = counter.lock().unwrap();
            *n += 1;
            *n
        };
        async move {
            Ok::<_, std::convert::Infallible>(if n == 1 {
                response(200, None, FIRST)
            } else {
                response(
                    second_status,
                    Some(httpdate::fmt_http_date(date)),
                    second_body,
                )
            })
        }
    });
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]);
    let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(Full::from(BATCH))
        .unwrap();
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(*sent.lock().unwrap(), 2, "the batch, then call 2 alone");
    (resp, date)
}

/// The layer writes the server's hint anew when it builds the answer (a batch gathered
/// from several exchanges, or whose last exchange failed as a whole): an HTTP-date hint
/// is a fractional delay, and telling the caller a whole second less than the server
/// asked makes it come back too early.
#[tokio::test(start_paused = true)]
async fn a_retry_after_the_layer_writes_is_never_shorter_than_the_servers() {
    for (status, body) in [(429, ""), (200, AGAIN)] {
        let (resp, date) = batch_then(status, body, 3).await;
        let secs = told(&resp);
        let wait_until = SystemTime::now() + Duration::from_secs(secs);
        assert!(
            wait_until >= date,
            "{status}: told {secs} s, the server asked until {}",
            httpdate::fmt_http_date(date)
        );
        assert!(secs <= 3, "{status}: told {secs} s");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
        assert_eq!(items.len(), 2, "{status}: {items:?}");
        assert_eq!(items[0]["result"], json!(3));
    }
}
