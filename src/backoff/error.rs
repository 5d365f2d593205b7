//! The error returned for a parameter no delay can be computed from.

use std::fmt;

/// A backoff parameter was out of range: negative, NaN or infinite where only a finite,
/// non-negative number makes sense, or outside the range its use allows (a proportion
/// above 1, a uniform jitter's upper bound below its lower one).
///
/// Returned by the fallible constructors of this module (for example
/// [`ExponentialBackoff::new`](super::ExponentialBackoff::new) and
/// [`Jitter::gauss`](super::Jitter::gauss)); its `Display` names the parameter, the
/// requirement and the value that broke it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
///
/// let err = ExponentialBackoff::new(3, Duration::from_secs(1), f64::NAN).unwrap_err();
/// assert_eq!(err.parameter(), "factor");
/// assert_eq!(
///     err.to_string(),
///     "invalid backoff: factor must be finite and non-negative, got NaN"
/// );
/// ```
///
/// Two errors are equal when they name the same parameter and requirement and hold the
/// same value, bit for bit: an error holding NaN equals itself, so it can be compared in
/// a test.
///
/// ```
/// use tower_jsonrpc_retry::backoff::Jitter;
///
/// let err = Jitter::gauss(f64::NAN, 0.1).unwrap_err();
/// assert_eq!(err, Jitter::gauss(f64::NAN, 0.1).unwrap_err());
/// assert_ne!(err, Jitter::gauss(f64::INFINITY, 0.1).unwrap_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InvalidBackoff {
    parameter: &'static str,
    requirement: &'static str,
    value: f64,
}

impl InvalidBackoff {
    pub(crate) const fn new(
        parameter: &'static str,
        requirement: &'static str,
        value: f64,
    ) -> Self {
        Self {
            parameter,
            requirement,
            value,
        }
    }

    /// The name of the rejected parameter, as the constructor spells it (`"factor"`,
    /// `"sigma"`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::Jitter;
    ///
    /// assert_eq!(Jitter::gauss(0.5, -1.0).unwrap_err().parameter(), "sigma");
    /// ```
    pub const fn parameter(&self) -> &'static str {
        self.parameter
    }

    /// The rejected value.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::backoff::Jitter;
    ///
    /// assert_eq!(Jitter::proportional(1.5).unwrap_err().value(), 1.5);
    /// ```
    pub const fn value(&self) -> f64 {
        self.value
    }
}

impl PartialEq for InvalidBackoff {
    fn eq(&self, other: &Self) -> bool {
        self.parameter == other.parameter
            && self.requirement == other.requirement
            && self.value.to_bits() == other.value.to_bits()
    }
}

impl Eq for InvalidBackoff {}

impl std::hash::Hash for InvalidBackoff {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parameter.hash(state);
        self.requirement.hash(state);
        self.value.to_bits().hash(state);
    }
}

impl fmt::Display for InvalidBackoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid backoff: {} must be {}, got {:?}",
            self.parameter, self.requirement, self.value
        )
    }
}

impl std::error::Error for InvalidBackoff {}

const FINITE_NON_NEGATIVE: &str = "finite and non-negative";
const FINITE: &str = "finite";
const UNIT_INTERVAL: &str = "within 0..=1";

/// Accepts a finite, non-negative number.
pub(crate) fn finite_non_negative(
    parameter: &'static str,
    value: f64,
) -> Result<f64, InvalidBackoff> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(InvalidBackoff::new(parameter, FINITE_NON_NEGATIVE, value))
    }
}

/// Accepts any finite number, negative included.
pub(crate) fn finite(parameter: &'static str, value: f64) -> Result<f64, InvalidBackoff> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(InvalidBackoff::new(parameter, FINITE, value))
    }
}

/// Accepts a number in `0.0..=1.0`.
pub(crate) fn unit_interval(parameter: &'static str, value: f64) -> Result<f64, InvalidBackoff> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(InvalidBackoff::new(parameter, UNIT_INTERVAL, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_parameter_and_value() {
        assert_eq!(
            finite_non_negative("factor", f64::NAN)
                .unwrap_err()
                .to_string(),
            "invalid backoff: factor must be finite and non-negative, got NaN"
        );
        assert_eq!(
            finite_non_negative("factor", -2.0).unwrap_err().to_string(),
            "invalid backoff: factor must be finite and non-negative, got -2.0"
        );
        assert_eq!(
            finite("mu", f64::INFINITY).unwrap_err().to_string(),
            "invalid backoff: mu must be finite, got inf"
        );
        assert_eq!(
            unit_interval("proportion", 1.5).unwrap_err().to_string(),
            "invalid backoff: proportion must be within 0..=1, got 1.5"
        );
        // A huge value reads as a power of ten, not as its 309 digits.
        assert_eq!(
            unit_interval("proportion", f64::MAX)
                .unwrap_err()
                .to_string(),
            "invalid backoff: proportion must be within 0..=1, got 1.7976931348623157e308"
        );
    }

    #[test]
    fn accepts_good_values() {
        assert_eq!(finite_non_negative("factor", 0.0), Ok(0.0));
        assert_eq!(finite("mu", -0.5), Ok(-0.5));
        assert_eq!(unit_interval("proportion", 1.0), Ok(1.0));
        assert!(unit_interval("proportion", f64::NAN).is_err());
    }
}
