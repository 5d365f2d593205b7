//! Classifying errors by their `source()` chain: chains of any shape, a broken one
//! included, give a decision.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tower::ServiceExt;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{Request, Response};
use tower_jsonrpc_retry::{BoxError, ErrorClass, GiveUpEvent, JsonRpcRetryLayer, RetryStrategy};

/// An error type whose `source()` is itself: a bug, but one that compiles, in an inner
/// service's error type.
#[derive(Debug)]
struct OwnSource;

impl fmt::Display for OwnSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my source is myself")
    }
}

impl StdError for OwnSource {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self)
    }
}

/// An error `depth` links deep whose last link is `last`.
#[derive(Debug)]
struct Link(Option<Box<Link>>, Option<std::io::Error>);

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("link")
    }
}

impl StdError for Link {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match (&self.0, &self.1) {
            (Some(next), _) => Some(&**next),
            (None, Some(io)) => Some(io),
            (None, None) => None,
        }
    }
}

fn deep(depth: usize, last: std::io::Error) -> Link {
    let mut link = Link(None, Some(last));
    for _ in 1..depth {
        link = Link(Some(Box::new(link)), None);
    }
    link
}

/// Calls `sum` once through the retry layer over a service failing with `make()`:
/// (sends, the class the give-up event saw). Run on a thread of its own, so that a
/// decision that never ends fails the test instead of hanging it.
fn decide(make: fn() -> BoxError) -> (usize, Option<ErrorClass>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let sends = Arc::new(AtomicUsize::new(0));
        let class = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::clone(&class);
        let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(10)))
            .retry_on(ErrorClass::Connect)
            .retry_on(ErrorClass::Timeout)
            .retry_on(ErrorClass::Reset)
            .on_give_up(move |e: &GiveUpEvent<'_>| *seen.lock().unwrap() = Some(e.class()));
        let counter = Arc::clone(&sends);
        let inner = tower::service_fn(move |_: Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Err::<Response, BoxError>(make()) }
        });
        let svc = tower::Layer::layer(&JsonRpcRetryLayer::new(strategy), inner);
        let err = rt
            .block_on(svc.oneshot(Request::new("sum", json!([1, 2])).with_id(1)))
            .unwrap_err();
        assert!(err.to_string().contains("my source") || err.to_string() == "link");
        let class = class.lock().unwrap().take().expect("a give-up event");
        let _ = tx.send((sends.load(Ordering::SeqCst), class));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the retry decision on the error ended")
}

#[test]
fn an_error_that_is_its_own_source_is_not_retried_and_does_not_hang() {
    assert_eq!(decide(|| Box::new(OwnSource)), (1, None));
}

#[test]
fn a_deep_chain_is_read_to_its_end() {
    let reset = || -> BoxError {
        Box::new(deep(
            1_000,
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ))
    };
    assert_eq!(decide(reset), (3, Some(ErrorClass::Reset)));
}

/// `ErrorClass`'s docs, the members no other test reaches: tokio's own `timeout` is a
/// `Timeout`, `BrokenPipe` a `Reset`, an unavailable local address a `Connect`.
#[tokio::test(start_paused = true)]
async fn tokio_elapsed_broken_pipe_and_addr_not_available_are_in_their_classes() {
    for class in [ErrorClass::Timeout, ErrorClass::Reset, ErrorClass::Connect] {
        let calls = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&calls);
        let service = tower::service_fn(move |req: Request| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                if n > 0 {
                    return Ok(Response::success(req.id().unwrap().clone(), json!(1)));
                }
                let err: BoxError = match class {
                    ErrorClass::Timeout => Box::new(
                        tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
                            .await
                            .unwrap_err(),
                    ),
                    ErrorClass::Reset => {
                        Box::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
                    }
                    _ => Box::new(std::io::Error::from(std::io::ErrorKind::AddrNotAvailable)),
                };
                Err(err)
            }
        });
        let strategy =
            RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1))).retry_on(class);
        let svc = tower::Layer::layer(&JsonRpcRetryLayer::new(strategy), service);
        svc.oneshot(Request::new("sum", json!([])).with_id(1))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{class}");
    }
}

/// An error and those below it, by `source()`.
fn below<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e| e.source())
}

/// Each error of a chain, as `Display` shows it.
fn shown(e: &(dyn StdError + 'static)) -> Vec<String> {
    below(e).map(ToString::to_string).collect()
}

/// A client that makes one attempt a call.
fn once(uri: http::Uri) -> tower_jsonrpc_retry::client::ClientBuilder {
    tower_jsonrpc_retry::Client::builder(uri).retry(RetryStrategy::none())
}

/// `Debug` (what `unwrap`, `expect` and `tracing`'s `?err` print) cuts what a server
/// wrote in an error object, its message and its `data`, as `Display` cuts the message.
#[tokio::test(start_paused = true)]
async fn an_error_objects_debug_cuts_what_the_server_wrote() {
    use tower_jsonrpc_retry::test_util::{FlakyServer, Step};

    let server = FlakyServer::start().await.unwrap();
    let client = once(server.uri()).build();
    let huge = "y".repeat(1 << 20);
    let data = json!({ "blob": huge });
    server.script(
        "sum",
        [Step::error_with(-32000, huge.clone(), Some(data.clone()))],
    );
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let debugged = format!("{err:?}");
    assert!(debugged.len() < 4 * 1024, "{} bytes", debugged.len());
    assert!(
        debugged.contains("-32000") && debugged.contains("yyy"),
        "{debugged}"
    );
    // All of it is still there to read.
    let object = err.rpc().unwrap();
    assert_eq!(object.message(), huge);
    assert_eq!(object.data(), Some(&data));
}

/// A scalar given as params fails unsent, naming what was given, not its value (often
/// a token, or a signed transaction given as `hash` for `(hash,)`).
#[tokio::test(start_paused = true)]
async fn params_that_are_a_scalar_are_named_not_quoted() {
    let server = tower_jsonrpc_retry::test_util::FlakyServer::start()
        .await
        .unwrap();
    let client = once(server.uri()).build();
    let err = client.call::<i64>("auth", "s3cret").await.unwrap_err();
    let text = shown(&err).join(": ");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("got a string"), "{text}");
    assert!(!format!("{err:?}").contains("s3cret"));
    let err = client.call::<i64>("sum", 7).await.unwrap_err();
    assert!(shown(&err).join(": ").contains("got a number"));
    assert_eq!(server.http_requests(), 0, "neither was sent");
}

/// A body over the limit has http-body-util's `LengthLimitError` in its chain whether
/// its length was declared (refused unread) or found while streaming.
#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_has_the_same_source_however_it_is_framed() {
    use tower_jsonrpc_retry::test_util::{FlakyServer, Step};

    let server = FlakyServer::start().await.unwrap();
    let client = once(server.uri()).response_limit(1000).build();
    for step in [Step::oversized_chunked(5000), Step::oversized(5000)] {
        server.script("sum", [step]);
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        assert!(err.transport().unwrap().is_body_too_large(), "{err:?}");
        let found = below(&err).any(|e| e.is::<http_body_util::LengthLimitError>());
        assert!(found, "{err:?}");
    }
}

/// A status without a standard reason (a CDN's 522, nginx's 499) reads as its code, not
/// as "522 <unknown status code>"; one with a reason keeps it.
#[tokio::test(start_paused = true)]
async fn a_status_without_a_standard_reason_reads_as_its_code() {
    use tower_jsonrpc_retry::test_util::{FlakyServer, Step};

    let server = FlakyServer::start().await.unwrap();
    let client = once(server.uri()).build();
    server.script("sum", [Step::status(522), Step::status(503)]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(err.transport().unwrap().to_string(), "HTTP status 522");
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(
        err.transport().unwrap().to_string(),
        "HTTP status 503 Service Unavailable"
    );
}

/// Three errors in a loop, each the next one's source.
#[derive(Debug)]
struct Looped(usize);

static LOOP: [Looped; 3] = [Looped(0), Looped(1), Looped(2)];

impl fmt::Display for Looped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

impl StdError for Looped {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        LOOP.get((self.0 + 1) % 3).map(|e| e as _)
    }
}

/// `error_chain` over a chain that comes back on itself shows every error, some twice,
/// and ends, as its docs say.
#[test]
fn error_chain_over_a_loop_shows_every_error_and_ends() {
    let seen: Vec<String> = tower_jsonrpc_retry::retry::error_chain(&LOOP[0])
        .map(|e| e.to_string())
        .collect();
    assert!(seen.len() <= 2 * LOOP.len(), "{seen:?}");
    for e in ["e0", "e1", "e2"] {
        assert!(seen.iter().any(|s| s == e), "{e} missing: {seen:?}");
    }
}
