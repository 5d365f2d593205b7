//! Delay arithmetic that never panics, overflows or yields infinity.
//!
//! Delays are computed in `f64` seconds and converted back here, once, so every
//! built-in backoff and combinator shares one definition of "saturating".

use std::time::Duration;

/// Converts seconds to a `Duration`: NaN and negative values become zero, values too
/// large for a `Duration` (infinity included) become `Duration::MAX`.
pub(crate) fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// Clamps seconds into `0.0..=f64::MAX`, NaN to zero: finite, so a later product is
/// never infinity times zero, yet not cut at `Duration::MAX`, so a jitter added to a
/// value past it works on the value itself (`1e301 s - 1e300 s` is still past it).
pub(crate) fn clamp_secs(secs: f64) -> f64 {
    if secs.is_nan() {
        0.0
    } else {
        secs.clamp(0.0, f64::MAX)
    }
}

/// Applies an optional cap.
pub(crate) fn cap(delay: Duration, max: Option<Duration>) -> Duration {
    match max {
        Some(max) => delay.min(max),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_saturates() {
        assert_eq!(secs_to_duration(f64::NAN), Duration::ZERO);
        assert_eq!(secs_to_duration(-1.0), Duration::ZERO);
        assert_eq!(secs_to_duration(f64::NEG_INFINITY), Duration::ZERO);
        assert_eq!(secs_to_duration(f64::INFINITY), Duration::MAX);
        assert_eq!(secs_to_duration(1e300), Duration::MAX);
        assert_eq!(secs_to_duration(Duration::MAX.as_secs_f64()), Duration::MAX);
        assert_eq!(secs_to_duration(f64::MAX), Duration::MAX);
        assert_eq!(secs_to_duration(1.5), Duration::from_millis(1500));
        assert_eq!(secs_to_duration(0.1), Duration::from_millis(100));
        assert_eq!(secs_to_duration(0.1 * 3.0), Duration::from_millis(300));
    }

    #[test]
    fn clamp_keeps_products_finite() {
        assert_eq!(clamp_secs(f64::NAN), 0.0);
        assert_eq!(clamp_secs(f64::INFINITY), f64::MAX);
        assert_eq!(clamp_secs(-3.0), 0.0);
        assert_eq!(clamp_secs(2.5), 2.5);
    }
}
