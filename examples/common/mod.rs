//! Shared by the examples: the time scale and a printer for retries.
#![allow(dead_code)]

use std::time::Duration;

use tower_jsonrpc_retry::{BoxError, RetryEvent};

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
            "  [{label}] retry {} of {} (id {}): {} -> waiting {:.2?}",
            e.attempt(),
            e.method(),
            e.id()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
            e.reason(),
            e.delay(),
        );
    }
}

/// What the example shows, checked: an `Err` (and so a non-zero exit, as CI runs the
/// examples) when `holds` is false, so an example never prints a claim that did not
/// happen.
pub(crate) fn check(holds: bool, claim: impl std::fmt::Display) -> Result<(), BoxError> {
    if holds {
        Ok(())
    } else {
        Err(format!("the example's claim does not hold: {claim}").into())
    }
}
