//! Shared by the examples: the time scale and a printer for retries.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_jsonrpc_retry::{BoxError, RetryEvent, RetryReason};

/// `--fast` (as CI runs the examples) divides every delay by 100; without it the
/// examples wait as a real client would.
pub(crate) fn time_scale() -> f64 {
    if std::env::args().any(|a| a == "--fast") {
        0.01
    } else {
        1.0
    }
}

/// A delay in seconds, scaled.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s * time_scale())
}

/// Prints a retry as a person reads it.
pub(crate) fn print_retry(label: &'static str) -> impl Fn(&RetryEvent<'_>) + Send + Sync + 'static {
    move |e| {
        println!(
            "  [{label}] {} (id {}): retry {} after {}, waiting {:.2?}",
            e.method(),
            e.id()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
            e.retry(),
            e.reason(),
            e.delay(),
        );
    }
}

/// The retries a hook saw, in order: which retry, why, and the wait before it.
pub(crate) type Retries = Arc<Mutex<Vec<(u32, RetryReason, Duration)>>>;

/// [`print_retry`], also recording every retry, so that the example can check the
/// reasons and waits it prints.
pub(crate) fn print_and_record_retry(
    label: &'static str,
) -> (impl Fn(&RetryEvent<'_>) + Send + Sync + 'static, Retries) {
    let seen = Retries::default();
    let record = Arc::clone(&seen);
    let print = print_retry(label);
    let hook = move |e: &RetryEvent<'_>| {
        print(e);
        if let Ok(mut seen) = record.lock() {
            seen.push((e.retry(), e.reason(), e.delay()));
        }
    };
    (hook, seen)
}

/// The retries recorded so far, as a list.
pub(crate) fn retries(seen: &Retries) -> Vec<(u32, RetryReason, Duration)> {
    seen.lock().map(|seen| seen.clone()).unwrap_or_default()
}

/// What the example shows, checked: an `Err` (and so a non-zero exit, as CI runs the
/// examples) when `holds` is false, so an example never ends well after printing a
/// claim that did not hold.
pub(crate) fn check(holds: bool, claim: impl std::fmt::Display) -> Result<(), BoxError> {
    if holds {
        Ok(())
    } else {
        Err(format!("the example's claim does not hold: {claim}").into())
    }
}
