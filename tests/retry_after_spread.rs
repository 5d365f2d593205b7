//! `RetryStrategy::retry_after_spread`: a wait a server's hint decides is spread over
//! `[hint, hint + spread)`, at both levels; the backoff's own longer delay is not; under
//! a deadline the draw is held below the room the hint leaves; seeded, the waits repeat.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::{Recorder, secs, stack};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::{Jitter, PeriodicBackoff};
use tower_jsonrpc_retry::jsonrpc::Request;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// Calls made one after another, each told `Retry-After: 2` once.
const CALLS: usize = 20;

fn on_503(interval: f64) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(1, secs(interval)))
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
}

async fn hinting_server() -> FlakyServer {
    let server = FlakyServer::start().await.expect("bind 127.0.0.1");
    let script = (0..CALLS).flat_map(|_| [Step::status(503).retry_after("2"), Step::ok()]);
    server.script("sum", script);
    server
}

fn sum(id: i64) -> Request {
    Request::new("sum", json!([1, 2])).with_id(id)
}

/// Each call's wait as the event told it, checked against the paused clock (a sleep
/// ends on a whole millisecond).
async fn waits_through_the_codec(strategy: RetryStrategy) -> Vec<Duration> {
    waits_over(hinting_server().await, strategy).await
}

/// [`waits_through_the_codec`] over a server scripted for [`CALLS`] calls of one retry.
async fn waits_over(server: FlakyServer, strategy: RetryStrategy) -> Vec<Duration> {
    let rec = Recorder::default();
    let svc = stack(&server, rec.attach(strategy));
    for id in 0..CALLS {
        let start = Instant::now();
        let resp = svc.clone().oneshot(sum(id as i64)).await.unwrap();
        assert_eq!(resp.result(), Some(&json!(3)));
        let waited = start.elapsed();
        let told = rec.delays()[id];
        assert!(
            told <= waited && waited < told + secs(0.001),
            "{told:?} {waited:?}"
        );
    }
    assert_eq!(server.calls("sum"), 2 * CALLS);
    rec.delays()
}

#[tokio::test(start_paused = true)]
async fn a_hint_that_decides_the_wait_is_spread_and_never_shortened() {
    let delays = waits_through_the_codec(on_503(0.1).retry_after_spread(secs(0.5))).await;
    assert_eq!(delays.len(), CALLS, "one retry each");
    for delay in &delays {
        assert!(secs(2.0) <= *delay && *delay < secs(2.5), "{delay:?}");
    }
    let distinct: HashSet<_> = delays.iter().collect();
    assert!(
        distinct.len() > CALLS / 2,
        "callers come back apart: {delays:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_spread_every_caller_waits_the_hint_exactly() {
    let delays = waits_through_the_codec(on_503(0.1)).await;
    assert_eq!(delays, [secs(2.0); CALLS]);
}

/// The backoff's delay, longer than the hint, is the backoff's: no spread on it.
#[tokio::test(start_paused = true)]
async fn a_backoff_delay_longer_than_the_hint_is_not_spread() {
    let delays = waits_through_the_codec(on_503(3.0).retry_after_spread(secs(5.0))).await;
    assert_eq!(delays, [secs(3.0); CALLS]);
}

/// A hint the deadline leaves time for is retried whatever the draw, still spread: a
/// spread of 10 s with 0.5 s to spare draws below what is left (less the timer's
/// millisecond), so the retry starts before the deadline.
#[tokio::test(start_paused = true)]
async fn under_a_deadline_the_spread_is_drawn_below_the_room_left() {
    let strategy = on_503(0.1)
        .retry_after_spread(secs(10.0))
        .max_elapsed(secs(2.5));
    let delays = waits_through_the_codec(strategy).await;
    assert_eq!(delays.len(), CALLS, "every call retried once");
    // 2.5 s less the timer's rounding, 999,999 ns.
    let room_ends = Duration::from_nanos(2_499_000_001);
    for delay in &delays {
        assert!(secs(2.0) <= *delay && *delay < room_ends, "{delay:?}");
    }
    let distinct: HashSet<_> = delays.iter().collect();
    assert!(distinct.len() > CALLS / 2, "still spread: {delays:?}");
}

/// A hint as long as the backoff's delay decides the wait as well: spread.
#[tokio::test(start_paused = true)]
async fn a_hint_as_long_as_the_backoffs_delay_is_spread() {
    let delays = waits_through_the_codec(on_503(2.0).retry_after_spread(secs(0.5))).await;
    assert!(
        delays.iter().all(|d| secs(2.0) <= *d && *d < secs(2.5)),
        "{delays:?}"
    );
    assert!(delays.iter().any(|d| *d > secs(2.0)), "{delays:?}");
}

/// Whole nanoseconds below the spread: a spread of 1 ns adds nothing, ever.
#[tokio::test(start_paused = true)]
async fn the_spread_never_reaches_its_top() {
    let delays =
        waits_through_the_codec(on_503(0.1).retry_after_spread(Duration::from_nanos(1))).await;
    assert_eq!(delays, [secs(2.0); CALLS]);
}

/// Seeded (by `retry_after_spread_seeded`, or by a seeded preset), the same waits on
/// every run; two seeds, other waits.
#[tokio::test(start_paused = true)]
async fn a_seeded_spread_draws_the_same_waits_on_every_run() {
    let seeded = |seed| on_503(0.1).retry_after_spread_seeded(secs(0.5), seed);
    let first = waits_through_the_codec(seeded(7)).await;
    assert_eq!(waits_through_the_codec(seeded(7)).await, first);
    assert_ne!(waits_through_the_codec(seeded(8)).await, first);
    let preset = |seed| {
        RetryStrategy::transient_seeded(seed)
            .backoff(PeriodicBackoff::new(1, secs(0.1)))
            .retry_after_spread(secs(0.5))
    };
    let first = waits_through_the_codec(preset(7)).await;
    assert_eq!(waits_through_the_codec(preset(7)).await, first);
    let distinct: HashSet<_> = first.iter().collect();
    assert!(distinct.len() > CALLS / 2, "{first:?}");
}

/// A seeded spread draws another stream than a jitter seeded with the same number: the
/// `n`-th call's spread and the `n`-th call's jitter do not move together.
#[tokio::test(start_paused = true)]
async fn a_spread_and_a_jitter_seeded_alike_draw_apart() {
    let spread = on_503(0.1).retry_after_spread_seeded(secs(1.0), 7);
    let spread = waits_through_the_codec(spread).await;
    let unhinted = FlakyServer::start().await.expect("bind 127.0.0.1");
    unhinted.script(
        "sum",
        (0..CALLS).flat_map(|_| [Step::status(503), Step::ok()]),
    );
    let backoff = PeriodicBackoff::new(1, secs(1.0)).with_jitter(Jitter::full().seeded(7));
    let jittered = waits_over(unhinted, on_503(0.1).backoff(backoff)).await;
    // Both draw a fraction of 1 s: the spread's over the hint of 2 s, the jitter's of
    // the backoff's delay.
    // `Debug` shows the seed as given.
    for strategy in [
        RetryStrategy::transient_seeded(7),
        on_503(0.1).retry_after_spread_seeded(secs(1.0), 7),
    ] {
        let shown = format!("{strategy:?}");
        assert!(shown.contains("spread_seed: Some(7)"), "{shown}");
    }
    let micros = |d: Duration| d.as_micros();
    let alike = spread
        .iter()
        .zip(&jittered)
        .filter(|&(s, j)| micros(*s - secs(2.0)) == micros(*j))
        .count();
    assert!(alike < CALLS / 2, "{spread:?} {jittered:?}");
}

/// The HTTP-level layer decides its waits in the same place.
#[tokio::test(start_paused = true)]
async fn the_http_level_layer_spreads_a_hint_too() {
    let server = hinting_server().await;
    let rec = Recorder::default();
    let strategy = rec.attach(on_503(0.1).retry_after_spread(secs(0.5)));
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy))
        .service(common::http());
    for id in 0..CALLS {
        let body = format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":{id}}}"#);
        let req = http::Request::post(server.uri())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = svc.clone().oneshot(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["result"], json!(3));
    }
    let delays = rec.delays();
    assert_eq!(delays.len(), CALLS);
    for delay in &delays {
        assert!(secs(2.0) <= *delay && *delay < secs(2.5), "{delay:?}");
    }
    let distinct: HashSet<_> = delays.iter().collect();
    assert!(distinct.len() > CALLS / 2, "{delays:?}");
}
