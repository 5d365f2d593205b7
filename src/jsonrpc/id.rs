use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::DecodeError;

/// A request identifier: a number, a string, or null.
///
/// Numbers are integers that fit an `i64`: the specification advises against fractional
/// ids, and a message whose id is written with a fraction or an exponent (`1.5`, and
/// `1.0` or `1e0` too, which a call with id `1` does not match), or is an integer
/// beyond `i64` (such as `18446744073709551615`), is refused by the decoder with
/// [`DecodeError::InvalidId`], which quotes the id as the message wrote it (when read
/// from bytes, `from_slice`; from a JSON tree, as serde_json writes it); give such
/// ids as strings. So is `-0`, which serde_json reads as the float `-0.0`. An id beyond
/// what an `f64` holds (`1e400`) is refused earlier, as JSON serde_json does not read:
/// [`DecodeError::Json`]. Strings are shared, so cloning an `Id` never allocates.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::jsonrpc::Id;
///
/// assert_eq!(Id::from(7), Id::Number(7));
/// assert_eq!(Id::from("a").to_string(), "\"a\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// A numeric id.
    Number(i64),
    /// A string id.
    String(Arc<str>),
    /// The null id, used by servers that could not read the request's id.
    Null,
}

impl Id {
    /// Reads an id from a JSON value.
    ///
    /// # Errors
    ///
    /// [`DecodeError::InvalidId`] for anything but a string, null, or an integer
    /// written without a fraction or an exponent that fits an `i64`. It quotes the value
    /// as serde_json writes it (`1e20` as `1e+20`), where the decoders of messages quote
    /// the id as the message wrote it.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Id};
    ///
    /// assert_eq!(Id::from_value(&json!("a1"))?, Id::from("a1"));
    /// assert_eq!(Id::from_value(&json!(null))?, Id::Null);
    /// // A float is no id, even a whole one.
    /// let err = Id::from_value(&json!(1.0)).unwrap_err();
    /// assert!(matches!(err, DecodeError::InvalidId(quoted) if quoted == "1.0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::Null => Ok(Id::Null),
            Value::String(s) => Ok(Id::String(Arc::from(s.as_str()))),
            Value::Number(n) => n
                .as_i64()
                .map(Id::Number)
                .ok_or_else(|| DecodeError::InvalidId(value.to_string())),
            other => Err(DecodeError::InvalidId(other.to_string())),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Number(n)
    }
}

impl From<i32> for Id {
    fn from(n: i32) -> Self {
        Id::Number(n.into())
    }
}

impl From<u32> for Id {
    fn from(n: u32) -> Self {
        Id::Number(n.into())
    }
}

/// A `u64` (a counter, say) beyond `i64::MAX` is no JSON-RPC id this crate sends: it is
/// refused, with the standard library's error for the same conversion to `i64`.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::jsonrpc::Id;
///
/// assert_eq!(Id::try_from(7_u64), Ok(Id::Number(7)));
/// assert!(Id::try_from(u64::MAX).is_err());
/// ```
impl TryFrom<u64> for Id {
    type Error = std::num::TryFromIntError;

    fn try_from(n: u64) -> Result<Self, Self::Error> {
        i64::try_from(n).map(Id::Number)
    }
}

/// As for a `u64`: a `usize` beyond `i64::MAX` is refused.
impl TryFrom<usize> for Id {
    type Error = std::num::TryFromIntError;

    fn try_from(n: usize) -> Result<Self, Self::Error> {
        i64::try_from(n).map(Id::Number)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::String(Arc::from(s))
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::String(Arc::from(s))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Number(n) => serializer.serialize_i64(*n),
            Id::String(s) => serializer.serialize_str(s),
            Id::Null => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Id::from_value(&value).map_err(serde::de::Error::custom)
    }
}
