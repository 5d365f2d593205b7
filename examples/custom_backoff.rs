//! Backoffs of your own: pjrpc users' `RandomBackoff` (`attempts` delays, each drawn
//! uniformly from `[min, max]`) written with [`backoff::from_fn`] in a few lines and used
//! in a strategy; then a built-in backoff shaped by combinators (`.max_delay(..)`,
//! `.jitter(..)`, `.max_total_delay(..)`), with the delays it draws for three requests.
//!
//! `cargo run --example custom_backoff` waits as a real client would (about a second);
//! `cargo run --example custom_backoff -- --fast` divides every delay by 100.

mod common;

use std::time::Duration;

use common::{check, print_and_record_retry, print_retry, retries, secs};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tower_jsonrpc_retry::backoff::{self, Backoff, BackoffExt, ExponentialBackoff, Jitter};
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, Client, RetryStrategy};

/// pjrpc users' `RandomBackoff(attempts, min, max)`: each request gets `attempts` delays,
/// each uniform in `[min, max]`. The delay iterator must be `Send + Sync`, so it owns a
/// small generator seeded from the thread's.
///
/// `min` over `max` is refused here, as the crate's own backoffs refuse parameters no
/// delay can come from: `random_range` panics on an empty range, and it would panic at
/// the first retry, inside the call's future.
fn random_backoff(attempts: usize, min: Duration, max: Duration) -> Result<impl Backoff, BoxError> {
    if min > max {
        return Err(format!("RandomBackoff: min {min:?} is over max {max:?}").into());
    }
    Ok(backoff::from_fn(move || {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        (0..attempts).map(move |_| rng.random_range(min..=max))
    }))
}

/// A delay in milliseconds, as a person reads it.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Delays as a person reads them: "120.3 ms, 80.0 ms, ...".
fn list(delays: impl Iterator<Item = Duration>) -> String {
    delays.map(ms).collect::<Vec<_>>().join(", ")
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = FlakyServer::start().await?;
    println!("JSON-RPC server on {}", server.uri());

    // 1. RandomBackoff in a strategy: 3 retries, each 0.1 s to 0.5 s away.
    let (min, max) = (secs(0.1), secs(0.5));
    let random = random_backoff(3, min, max)?;
    check(
        random_backoff(3, max, min).is_err(),
        "min over max is refused, not a panic at the first retry",
    )?;
    let (first, second): (Vec<Duration>, Vec<Duration>) =
        (random.delays().collect(), random.delays().collect());
    println!(
        "RandomBackoff(3, {}, {}) draws fresh delays for each request: [{}], then [{}]",
        ms(min),
        ms(max),
        list(first.iter().copied()),
        list(second.iter().copied()),
    );
    for drawn in [first, second] {
        check(
            drawn.len() == 3 && drawn.iter().all(|d| (min..=max).contains(d)),
            "3 delays, each in [min, max]",
        )?;
    }
    let (on_retry, seen) = print_and_record_retry("random");
    let client = Client::builder(server.uri())
        .retry(RetryStrategy::new(random).codes([2001]).on_retry(on_retry))
        .build();
    server.script("sum", [Step::error(2001), Step::error(2001)]);
    println!("sum(1, 2) while the server answers 2001 twice:");
    let sum: i64 = client.call("sum", (1, 2)).await?;
    println!("  1 + 2 = {sum}, after {} attempts", server.calls("sum"));
    check(
        sum == 3 && server.calls("sum") == 3,
        "1 + 2 = 3, after 3 attempts",
    )?;
    let waits: Vec<Duration> = retries(&seen).iter().map(|&(_, _, d)| d).collect();
    check(
        waits.len() == 2 && waits.iter().all(|d| (min..=max).contains(d)),
        format_args!("2 retries, each after a wait in [min, max]: {waits:?}"),
    )?;

    // 2. A combinator chain on a built-in: doubling from 100 ms for up to 8 retries,
    // capped at 1 s, then full jitter (each delay uniform in [0, min(nominal, 1 s)), so
    // that delays at the cap stay spread), and no more than 2 s of waiting in all (the
    // delays stop before the sum would pass it).
    let shaped = ExponentialBackoff::doubling(8, Duration::from_millis(100))
        .max_delay(Duration::from_secs(1))
        .jitter(Jitter::full())
        .max_total_delay(Duration::from_secs(2));
    println!(
        "\ndoubling(8, 100 ms).max_delay(1 s).jitter(full).max_total_delay(2 s), three requests:"
    );
    for n in 1..=3 {
        let delays: Vec<Duration> = shaped.delays().collect();
        let cut = match delays.len() {
            8 => "",
            _ => " (the next delay would have passed 2 s)",
        };
        println!(
            "  request {n}: {} retries, waiting [{}], {} in all{cut}",
            delays.len(),
            list(delays.iter().copied()),
            ms(delays.iter().sum::<Duration>()),
        );
        check(
            delays.iter().all(|d| *d <= Duration::from_secs(1))
                && delays.iter().sum::<Duration>() <= Duration::from_secs(2),
            "no delay over 1 s, no more than 2 s in all",
        )?;
    }

    // The same recipe in a call, scaled by `--fast` with one more combinator. Full
    // jitter keeps the first three delays under 700 ms in all, so the 2 s total never
    // cuts the three retries this call needs short.
    let scale = common::time_scale();
    let client = Client::builder(server.uri())
        .retry(
            RetryStrategy::new(shaped.map(move |d| d.mul_f64(scale)))
                .codes([2001])
                .on_retry(print_retry("shaped")),
        )
        .build();
    server.reset();
    server.script(
        "sum",
        [Step::error(2001), Step::error(2001), Step::error(2001)],
    );
    println!("sum(3, 4) on that recipe while the server answers 2001 three times:");
    let sum: i64 = client.call("sum", (3, 4)).await?;
    println!("  3 + 4 = {sum}, after {} attempts", server.calls("sum"));
    check(
        sum == 7 && server.calls("sum") == 4,
        "3 + 4 = 7, after 4 attempts",
    )?;
    Ok(())
}
