//! JSON-RPC 2.0 messages: requests, responses, error objects and batches.
//!
//! Decoding is strict, with allowances for what real peers write: a request needs
//! `"jsonrpc": "2.0"` (its `"params": null` reads as no params, as jsonrpsee's client
//! writes a notification without params), a response carries exactly one of `result`
//! and `error`, and every violation is a [`DecodeError`], never a panic. A response may
//! also be written as JSON-RPC 1.0 servers write theirs, as Bitcoin Core did before
//! version 28 and its forks (Litecoin, Dogecoin, Dash) still do: without the
//! `"jsonrpc"` member (a member other than `"2.0"` is still refused), and with both
//! `result` and `error`, one of them `null` (`{"result": 19, "error": null, "id": 1}`),
//! and in a batch its answer to a notification, a success with a null id, is passed
//! over. A server that writes such answers is still sent JSON-RPC 2.0, which those
//! servers take; and the id, the error object's shape and the rest are checked as
//! strictly, so an answer that is not JSON-RPC is still told apart (a proxy's
//! `{"error": "rate limited"}` has no id, and an error that is no object).
//!
//! Params, results and error data are held as [`serde_json::Value`]s, so they share its
//! limits: an integer beyond `u64`/`i64` is held as the nearest `f64`, and a number
//! beyond `f64` (`1e400`) makes the message undecodable (send and receive such numbers
//! as strings, as Ethereum's hex quantities are). So does nesting past serde_json's
//! limit, which counts the message's own levels too: params and a result (a batch's
//! too) hold at most 127 levels of arrays and objects, an error's `data` 126. The
//! HTTP-level layer, which checks results and error data as JSON and passes the bytes
//! on without building them, is not affected by either. A float is read as
//! the nearest `f64`, so every `f64` a server writes comes back as itself (serde_json's
//! `float_roundtrip`, which this crate turns on). A string of a server's answer with a
//! lone UTF-16 surrogate escaped in it (`"\ud83d"`, which JavaScript writes for a string
//! cut in the middle of an emoji, and a Rust `String` cannot hold) reads with U+FFFD,
//! the replacement character, in its place; a request's is refused.
//!
//! ```
//! use serde_json::json;
//! use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
//!
//! let req = Request::new("subtract", json!([42, 23])).with_id(1);
//! assert_eq!(
//!     serde_json::to_value(&req)?,
//!     json!({"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}),
//! );
//!
//! let resp = Response::from_slice(br#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#)?;
//! assert_eq!(resp.id(), &Id::Number(1));
//! assert_eq!(resp.result(), Some(&json!(19)));
//!
//! let resp = Response::from_slice(br#"{"jsonrpc": "2.0", "result": 94.32936168408645, "id": 1}"#)?;
//! assert_eq!(resp.result().and_then(|r| r.as_f64()), Some(94.32936168408645));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod error;
mod id;
pub(crate) mod members;
mod request;
mod response;

pub use batch::{BatchRequest, BatchResponse};
pub use error::{DecodeError, ErrorObject};
pub(crate) use error::{MESSAGE_SHOWN, cut, must_escape};
pub use id::Id;
pub use request::{MethodName, Request};
pub use response::Response;
pub(crate) use response::ResultUnbuilt;

use serde_json::{Map, Value};

/// The protocol version every message carries.
pub(crate) const VERSION: &str = "2.0";

/// Why a `"jsonrpc"` member that is not a string is refused: the number `2.0` is a
/// mistake some servers make, and "unsupported version 2.0" would point away from it.
pub(crate) const VERSION_NOT_A_STRING: &str = "\"jsonrpc\" is not the string \"2.0\"";

/// Whether a body holds nothing but JSON's whitespace (space, tab, line feed, carriage
/// return): an empty answer. Not `u8::is_ascii_whitespace`, which takes a form feed
/// too, and a form feed is no JSON.
pub(crate) fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().copied().all(is_whitespace)
}

/// Whether a byte is JSON's whitespace: space, tab, line feed or carriage return.
pub(crate) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Checks the `"jsonrpc"` member of a decoded answer: absent (a JSON-RPC 1.0 server's
/// answer), or `"2.0"`.
fn check_answer_version(obj: &Map<String, Value>) -> Result<(), DecodeError> {
    match obj.get("jsonrpc") {
        None => Ok(()),
        Some(_) => check_version(obj),
    }
}

/// Checks the `"jsonrpc"` member of a decoded object.
fn check_version(obj: &Map<String, Value>) -> Result<(), DecodeError> {
    match obj.get("jsonrpc") {
        Some(Value::String(v)) if v == VERSION => Ok(()),
        Some(Value::String(other)) => Err(DecodeError::Version(Some(other.clone()))),
        Some(_) => Err(DecodeError::Invalid(VERSION_NOT_A_STRING)),
        None => Err(DecodeError::Version(None)),
    }
}
