//! Hostile or broken servers against the HTTP-level layer (`JsonRpcRetryLayer::http`)
//! and the typed `Client`: every call ends, once, with the server's answer or a typed
//! error, never a panic, and within bounded memory.

// A peak-counting global allocator needs `unsafe impl GlobalAlloc`; the library forbids
// unsafe code.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::codec::{self, DEFAULT_BODY_LIMIT};
use tower_jsonrpc_retry::jsonrpc::DecodeError;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{Client, JsonRpcRetryLayer, RetryStrategy};

/// Counts the bytes allocated and not yet freed, and their highest mark.
struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a new block before the old one goes, as a moving realloc holds both.
        grow(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// The tests of this file one at a time: the peak is the whole process's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The highest number of bytes live at once while `f` ran, over those live before it.
async fn peak_growth<T>(f: impl std::future::Future<Output = T>) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f.await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

const SINGLE: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;

/// An inner HTTP service answering every request 200 with `body`.
fn answering(
    body: Bytes,
) -> impl tower::Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_req: http::Request<Full<Bytes>>| {
        let body = body.clone();
        async move { Ok::<_, std::io::Error>(http::Response::new(Full::new(body))) }
    })
}

fn post(body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .body(Full::from(body))
        .unwrap()
}

/// A JSON array of `item` repeated to `len` bytes at most.
fn array_of(item: &str, len: usize) -> Bytes {
    let mut body = Vec::with_capacity(len);
    body.push(b'[');
    body.extend_from_slice(item.as_bytes());
    while body.len() + item.len() + 2 <= len {
        body.push(b',');
        body.extend_from_slice(item.as_bytes());
    }
    body.push(b']');
    Bytes::from(body)
}

/// The bodies of small items a hostile server can fill the body limit with: the
/// decoders once kept every item (about 100 bytes each, whatever its size in the body)
/// before refusing the first, then built a JSON tree of them all to refuse it again:
/// 832 MiB at the peak for a 10 MiB body of `1,`.
fn hostile_arrays() -> Vec<(&'static str, Bytes)> {
    let limit = DEFAULT_BODY_LIMIT;
    vec![
        ("ones", array_of("1", limit)),
        ("empty objects", array_of("{}", limit)),
        ("empty arrays", array_of("[]", limit)),
        (
            "answers to another call",
            array_of(r#"{"jsonrpc":"2.0","result":0,"id":7}"#, limit),
        ),
    ]
}

/// What a hostile array may cost a call at most, over the body itself: the body
/// collected once more (hyper's chunks into one buffer) and some change.
const ARRAY_BUDGET: usize = 2 * DEFAULT_BODY_LIMIT + (1 << 20);

#[tokio::test(start_paused = true)]
async fn a_body_of_millions_of_small_items_costs_no_more_than_its_size_at_the_http_level() {
    let _serial = SERIAL.lock().await;
    for (name, body) in hostile_arrays() {
        for request in [SINGLE, BATCH] {
            let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none());
            let svc = layer.layer(answering(body.clone()));
            let (out, peak) = peak_growth(svc.oneshot(post(request))).await;
            let err = out.expect_err(name);
            let err = err
                .downcast_ref::<codec::Error>()
                .unwrap_or_else(|| panic!("{name}: {err:?}"));
            assert!(err.is_decode(), "{name}: {err:?}");
            assert!(
                peak < ARRAY_BUDGET,
                "{name}, {request}: {peak} bytes at the peak for a body of {}",
                body.len()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_of_millions_of_small_items_costs_no_more_than_its_size_through_the_client() {
    let _serial = SERIAL.lock().await;
    for (name, body) in hostile_arrays() {
        let server = FlakyServer::start().await.unwrap();
        server.script("sum", [Step::raw(200, body.clone()), Step::raw(200, body)]);
        let client = Client::builder(server.uri())
            .retry(RetryStrategy::none())
            .build();
        let (out, peak) = peak_growth(client.call::<i64>("sum", (1, 2))).await;
        let err = out.expect_err(name);
        let err = err.transport().expect("the codec's error");
        assert!(err.is_decode(), "{name}: {err:?}");
        assert!(peak < ARRAY_BUDGET, "{name}: {peak} bytes at the peak");

        let mut batch = client.batch();
        let _ = batch.call::<i64>("sum", (1, 2));
        let _ = batch.call::<i64>("sum", (3, 4));
        let (out, peak) = peak_growth(batch.send()).await;
        let err = out.expect_err(name);
        assert!(
            err.transport().is_some_and(codec::Error::is_decode),
            "{name}: {err:?}"
        );
        assert!(
            peak < ARRAY_BUDGET,
            "{name}, batch: {peak} bytes at the peak"
        );
    }
}

#[test]
fn a_refusal_of_a_hostile_array_is_still_the_tree_decoders() {
    // Refused at its first item, without reading on: the refusal is the one the tree
    // decoder gives.
    use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Id, Response};
    let ids = [Id::Number(1), Id::Number(2)];
    for bytes in [
        br#"[1,{"jsonrpc":"2.0","result":1,"id":1}]"#.as_slice(),
        br#"[{"jsonrpc":"2.0","result":1,"id":3},1e400]"#,
        br#"[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","result":1,"id":1},"#,
    ] {
        let tree = serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(DecodeError::from)
            .and_then(|v| BatchResponse::from_value(v, &ids));
        let fast = BatchResponse::from_slice(bytes, &ids);
        assert_eq!(
            format!("{:?}", fast.map(|b| b.items().to_vec())),
            format!("{:?}", tree.map(|b| b.items().to_vec())),
            "{}",
            String::from_utf8_lossy(bytes)
        );
        let fast = Response::from_slice(bytes);
        assert!(matches!(
            fast,
            Err(DecodeError::Json(_) | DecodeError::NotAnObject)
        ));
    }
}
