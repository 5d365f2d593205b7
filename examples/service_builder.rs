//! A stack of your own with `ServiceBuilder`: the retry layer over the JSON-RPC codec,
//! over HTTP-level layers — tower's `TimeoutLayer` and `ConcurrencyLimitLayer`, and
//! tower-http's `SetRequestHeaderLayer` adding `Authorization` and `User-Agent` — over
//! hyper-util's client, then wrapped in [`Client::new`].
//!
//! A small `service_fn` at the bottom of the stack prints the headers of every HTTP
//! request as it leaves, and the server's record of them (`FlakyServer::headers`) checks
//! that they arrived.
//! The server first hangs (the per-attempt timeout ends the attempt and the strategy
//! retries it), then answers. The `TimeoutLayer` among the HTTP layers ends an attempt
//! whose response head is late; the codec's own `attempt_timeout` bounds the body as well.
//!
//! `cargo run --example service_builder` waits as a real client would (under a second);
//! `cargo run --example service_builder -- --fast` divides the retry delays by 100.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{check, print_retry, secs};
use http::HeaderValue;
use http::header::{AUTHORIZATION, USER_AGENT};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower_http::set_header::SetRequestHeaderLayer;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    // The bottom of the stack: hyper-util's client, behind a logger that shows which
    // headers the layers above have set.
    let hyper = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let logged = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let show = |name: http::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
                .to_owned()
        };
        println!(
            "  HTTP {} {}: authorization {:?}, user-agent {:?}, content-type {:?}",
            req.method(),
            req.uri(),
            show(AUTHORIZATION),
            show(USER_AGENT),
            show(http::header::CONTENT_TYPE),
        );
        hyper.request(req)
    });

    // Retry on timeouts: 3 retries, 0.1 s apart.
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, secs(0.1)))
        .retry_on(ErrorClass::Timeout)
        .on_retry(print_retry("stack"));

    // The two timeouts, apart: the HTTP-level one must be what ends the hanging attempt.
    let head_timeout = Duration::from_millis(200);
    let codec_timeout = Duration::from_secs(2);

    let stack = ServiceBuilder::new()
        // JSON-RPC: retries, then messages to and from HTTP. The codec's
        // `attempt_timeout` bounds a whole attempt, response body included.
        .layer(JsonRpcRetryLayer::new(strategy))
        .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(codec_timeout))
        // HTTP: each attempt gets 200 ms until the response head (a retry gets a fresh
        // timeout; a timeout down here cannot stop a body that trickles in, the codec's
        // can), at most 8 requests in flight from all clones of the stack, and two
        // headers.
        .layer(TimeoutLayer::new(head_timeout))
        .layer(ConcurrencyLimitLayer::new(8))
        .layer(SetRequestHeaderLayer::overriding(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer example-token"),
        ))
        .layer(SetRequestHeaderLayer::if_not_present(
            USER_AGENT,
            HeaderValue::from_static(concat!(
                "tower-jsonrpc-retry-example/",
                env!("CARGO_PKG_VERSION")
            )),
        ))
        .service(logged);
    let client = Client::new(stack);

    server.script("sum", [Step::timeout()]);
    println!("sum(1, 2); the server hangs on the first attempt:");
    let start = Instant::now();
    let sum: i64 = client.call("sum", (1, 2)).await?;
    let elapsed = start.elapsed();
    println!(
        "  1 + 2 = {sum}, after {} attempts and {elapsed:.2?}; both carried the headers set by the tower-http layers",
        server.calls("sum")
    );
    // The hanging attempt was ended by the TimeoutLayer's 200 ms, not by the codec's 2 s
    // (which would also have made it a retried timeout).
    check(
        head_timeout <= elapsed && elapsed < codec_timeout,
        format_args!(
            "the hanging attempt ended at the TimeoutLayer's {head_timeout:?}, before the codec's {codec_timeout:?}"
        ),
    )?;
    let with_headers = server
        .headers()
        .iter()
        .filter(|h| h.contains_key(AUTHORIZATION) && h.contains_key(USER_AGENT))
        .count();
    check(
        sum == 3 && server.calls("sum") == 2 && with_headers == 2,
        "3, after 2 attempts, both with the headers",
    )?;
    Ok(())
}
