use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Id;

/// A JSON-RPC error object: the `error` member of a failed response.
///
/// Deserialized as [`Response::from_value`](super::Response::from_value) reads one: only
/// from a JSON object (not from an array of its fields), a member given twice keeping
/// its last value.
///
/// Its `Display` shows the message up to 1 KiB, its control characters escaped (`\n`,
/// `\u{1b}`), and Unicode's line separators and marks that reorder text too: a
/// server's line break cannot forge a log line, nor its escape sequence recolour a
/// terminal. (A backslash it wrote is not doubled, so `\n` may be either: `Debug`
/// tells them apart.) [`message`](Self::message) has it as sent.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
///
/// let err = ErrorObject::new(ErrorObject::METHOD_NOT_FOUND, "Method not found");
/// assert_eq!(err.code(), -32601);
/// assert!(ErrorObject::new(-32005, "limit exceeded").is_server_error());
/// ```
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ErrorObject {
    code: i64,
    message: String,
    /// `None` when the member is absent; `Some(Value::Null)` when the server sent
    /// `"data": null`, so that decoding and encoding keep the message as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

/// The members of an error object, read from a JSON object.
#[derive(Deserialize)]
struct Fields {
    code: i64,
    message: String,
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
}

impl<'de> Deserialize<'de> for ErrorObject {
    /// Through a JSON tree, so that only an object is read (serde's derive would also
    /// read an array of the fields) and a member given twice keeps its last value, as
    /// in a response.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_object(value).map_err(serde::de::Error::custom)
    }
}

/// A member that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl ErrorObject {
    /// Invalid JSON was received by the server.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Response};
    ///
    /// // A server that could not read the request cannot say which one it answers.
    /// let resp = Response::from_slice(br#"{
    ///     "jsonrpc": "2.0",
    ///     "error": {"code": -32700, "message": "Parse error"},
    ///     "id": null
    /// }"#)?;
    /// assert_eq!(resp.id(), &Id::Null);
    /// assert_eq!(resp.error().map(ErrorObject::code), Some(ErrorObject::PARSE_ERROR));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, ErrorObject, Id};
    ///
    /// // geth refuses a batch over its limit with one error, under the first call's id.
    /// let body = br#"[{
    ///     "jsonrpc": "2.0",
    ///     "error": {"code": -32600, "message": "batch too large"},
    ///     "id": 1
    /// }]"#;
    /// let answers = BatchResponse::from_slice(body, &[Id::Number(1), Id::Number(2)])?;
    /// let refusal = answers.batch_error().map(ErrorObject::code);
    /// assert_eq!(refusal, Some(ErrorObject::INVALID_REQUEST));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A node without `eth_maxPriorityFeePerGas`: a fixed tip instead.
    /// let resp = Response::failure(1, ErrorObject::new(-32601, "Method not found"));
    /// let tip = match resp.into_result() {
    ///     Ok(tip) => tip,
    ///     Err(e) if e.code() == ErrorObject::METHOD_NOT_FOUND => json!("0x3b9aca00"),
    ///     Err(e) => return Err(e.into()),
    /// };
    /// assert_eq!(tip, "0x3b9aca00");
    /// # Ok(())
    /// # }
    /// ```
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::{Value, json};
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Request, Response};
    ///
    /// // A test double's handler: `sum` takes an array of integers.
    /// fn sum(params: Option<&Value>) -> Result<Value, ErrorObject> {
    ///     let refused = || ErrorObject::new(ErrorObject::INVALID_PARAMS, "not integers");
    ///     let numbers: Vec<i64> = params
    ///         .and_then(|params| serde_json::from_value(params.clone()).ok())
    ///         .ok_or_else(refused)?;
    ///     Ok(numbers.iter().sum::<i64>().into())
    /// }
    /// let call = Request::new("sum", json!(["one", "two"])).with_id(1);
    /// let resp = Response::new(1, sum(call.params()));
    /// assert_eq!(resp.error().map(ErrorObject::code), Some(-32602));
    /// ```
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use serde_json::json;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Request, Response};
    /// use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), BoxError> {
    /// # let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    /// # let node = tower::service_fn(move |_: Request| {
    /// #     let again = failed.swap(true, std::sync::atomic::Ordering::SeqCst);
    /// #     let internal = ErrorObject::new(-32603, "Internal error");
    /// #     let payload = if again { Ok(json!("0x")) } else { Err(internal) };
    /// #     async move { Ok::<_, BoxError>(Response::new(1, payload)) }
    /// # });
    /// // `node` fails its first call with an internal error.
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1)))
    ///     .codes([ErrorObject::INTERNAL_ERROR]);
    /// let svc = JsonRpcRetryLayer::new(strategy).layer(node);
    /// let resp = svc.oneshot(Request::new("eth_call", json!([])).with_id(1)).await?;
    /// assert_eq!(resp.result(), Some(&json!("0x")));
    /// # Ok(())
    /// # }
    /// ```
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Codes reserved for implementation-defined server errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// // EIP-1474's "limit exceeded" lies in it; an application's own code does not.
    /// assert!(ErrorObject::SERVER_ERROR_RANGE.contains(&-32005));
    /// assert!(!ErrorObject::SERVER_ERROR_RANGE.contains(&2001));
    /// ```
    pub const SERVER_ERROR_RANGE: RangeInclusive<i64> = -32099..=-32000;

    /// An error object with a code and a message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// let err = ErrorObject::new(-32005, "limit exceeded");
    /// assert_eq!(err.to_string(), "JSON-RPC error -32005: limit exceeded");
    /// ```
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attaches the optional `data` member.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// // A revert as an Ethereum node reports it: the encoded reason in `data`.
    /// let err = ErrorObject::new(3, "execution reverted").with_data(json!("0x08c379a0"));
    /// assert_eq!(
    ///     serde_json::to_value(&err)?,
    ///     json!({"code": 3, "message": "execution reverted", "data": "0x08c379a0"}),
    /// );
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The error code.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// let error = json!({"code": -32005, "message": "limit exceeded"});
    /// let answer = json!({"jsonrpc": "2.0", "error": error, "id": 1});
    /// let resp = Response::from_value(answer)?;
    /// assert_eq!(resp.error().map(ErrorObject::code), Some(-32005));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The short description the server sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// let err = ErrorObject::new(-32000, "nonce too low\nnext nonce: 7");
    /// assert_eq!(err.message(), "nonce too low\nnext nonce: 7");
    /// // `Display` escapes the line break.
    /// assert_eq!(err.to_string(), r"JSON-RPC error -32000: nonce too low\nnext nonce: 7");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Additional information the server sent, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// let resp = Response::from_slice(br#"{
    ///     "jsonrpc": "2.0",
    ///     "error": {"code": -32005, "message": "rate exceeded",
    ///               "data": {"backoff_seconds": 3}},
    ///     "id": 1
    /// }"#)?;
    /// let data = resp.error().and_then(|e| e.data());
    /// assert_eq!(data.and_then(|d| d["backoff_seconds"].as_u64()), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// Reads an error object from a JSON object; anything else is refused.
    pub(crate) fn from_object(value: Value) -> Result<Self, serde_json::Error> {
        if !value.is_object() {
            return Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Other("a JSON value that is not an object"),
                &"a JSON-RPC error object",
            ));
        }
        let Fields {
            code,
            message,
            data,
        } = Fields::deserialize(value)?;
        Ok(Self {
            code,
            message,
            data,
        })
    }

    /// Whether the code lies in the range the specification reserves for
    /// implementation-defined server errors, -32099..=-32000. Not "any failure of the
    /// server", as `StatusCode::is_server_error` is for HTTP: Ethereum nodes answer most
    /// refusals of a call's content with -32000 ("nonce too low", "insufficient funds"),
    /// which a retry never cures, so a rule retrying on this alone would send them again.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// // geth's "nonce too low" is one, and no retry cures it.
    /// assert!(ErrorObject::new(-32000, "nonce too low").is_server_error());
    /// assert!(!ErrorObject::new(-32601, "Method not found").is_server_error());
    /// ```
    pub fn is_server_error(&self) -> bool {
        Self::SERVER_ERROR_RANGE.contains(&self.code)
    }
}

/// The most of an error object's message that its `Display` shows: a server's words
/// are worth reading whole (a revert reason runs to a few hundred bytes), but a log
/// line should not be megabytes long. [`ErrorObject::message`] has it all.
pub(crate) const MESSAGE_SHOWN: usize = 1024;

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JSON-RPC error {}: ", self.code)?;
        write_cut(f, &self.message, MESSAGE_SHOWN)
    }
}

/// As derived, but what the server wrote is cut as `Display` cuts it: the message, and
/// the `data`'s JSON text, after 1 KiB each. `{:?}` is what `unwrap`, `expect` and
/// `tracing`'s `?err` print, and a hostile server's megabyte should not reach the logs
/// through it; [`message`](Self::message) and [`data`](Self::data) have it all.
impl fmt::Debug for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorObject")
            .field("code", &self.code)
            .field("message", &DebugCut(&self.message, MESSAGE_SHOWN))
            .field(
                "data",
                &self.data.as_ref().map(|data| ShownCut(data, MESSAGE_SHOWN)),
            )
            .finish()
    }
}

impl std::error::Error for ErrorObject {}

/// Why a message could not be decoded.
///
/// Its `Display` and `Debug` quote what a server sent (a version, an id) only in part,
/// up to 100 bytes, control characters escaped, and list at most ten ids of a batch: a
/// log line is not megabytes long for a hostile server's megabyte id, nor split by its
/// line break.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Response};
///
/// let body = br#"{"jsonrpc": "1.0", "result": 1, "id": 1}"#;
/// let err = Response::from_slice(body).unwrap_err();
/// assert!(matches!(&err, DecodeError::Version(Some(v)) if v == "1.0"));
/// assert_eq!(err.to_string(), r#"unsupported "jsonrpc" version "1.0""#);
/// ```
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not JSON.
    Json(serde_json::Error),
    /// The `"jsonrpc"` member is missing (`None`) or is a string other than `"2.0"` (the
    /// string's contents). A `"jsonrpc"` member that is not a string at all, such as the
    /// number `2.0`, is [`Invalid`](Self::Invalid).
    Version(Option<String>),
    /// The message is not a JSON object (or, for a batch, not an array of them).
    NotAnObject,
    /// A member has the wrong type or is missing.
    Invalid(&'static str),
    /// The id is not a string, an integer or null.
    InvalidId(String),
    /// A response carries neither `result` nor `error`.
    MissingResult,
    /// A response carries both `result` and `error`.
    ResultAndError,
    /// A response answers another request.
    #[non_exhaustive]
    IdMismatch {
        /// The id that was sent.
        expected: Id,
        /// The id that came back.
        found: Id,
    },
    /// A batch response lacks answers for these ids.
    MissingItems(Vec<Id>),
    /// A batch response answers an id that was not sent, or answers one twice.
    UnexpectedItem(Id),
    /// A batch was answered with a single response, or a single request with a batch.
    ShapeMismatch,
    /// A request that expects an answer got an empty body.
    EmptyBody,
    /// A batch request holds no request: the specification does not allow it.
    EmptyBatch,
    /// A batch request gives two calls this id: their answers could not be told apart.
    DuplicateId(Id),
}

/// The most of a value from a message (an id, a version) that an error message quotes:
/// what a server sent can be megabytes long, and a log line should not be.
const QUOTED: usize = 100;

/// The most ids of a batch that an error message lists.
const LISTED: usize = 10;

/// `value`'s text, cut after `limit` bytes as [`write_cut`] cuts it.
pub(crate) fn cut(value: impl fmt::Display, limit: usize) -> String {
    struct CutDisplay<T>(T, usize);
    impl<T: fmt::Display> fmt::Display for CutDisplay<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_cut(f, &self.0, self.1)
        }
    }
    CutDisplay(value, limit).to_string()
}

/// A value from a message in `Debug` output: its own `Debug`, cut after [`QUOTED`] bytes.
struct DebugQuoted<'a, T>(&'a T);

impl<T: fmt::Debug> fmt::Debug for DebugQuoted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        DebugCut(self.0, QUOTED).fmt(f)
    }
}

/// A value in `Debug` output: its own `Debug`, cut after so many bytes.
struct DebugCut<'a, T>(&'a T, usize);

impl<T: fmt::Debug> fmt::Debug for DebugCut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_cut(f, format_args!("{:?}", self.0), self.1)
    }
}

/// A value in `Debug` output as its `Display` shows it (a JSON value as its text), cut
/// after so many bytes.
struct ShownCut<'a, T>(&'a T, usize);

impl<T: fmt::Display> fmt::Debug for ShownCut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_cut(f, self.0, self.1)
    }
}

/// As derived, but each value a server sent is cut as `Display` cuts it.
impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => f.debug_tuple("Json").field(e).finish(),
            DecodeError::Version(v) => f
                .debug_tuple("Version")
                .field(&v.as_ref().map(DebugQuoted))
                .finish(),
            DecodeError::NotAnObject => f.write_str("NotAnObject"),
            DecodeError::Invalid(what) => f.debug_tuple("Invalid").field(what).finish(),
            DecodeError::InvalidId(v) => f.debug_tuple("InvalidId").field(&DebugQuoted(v)).finish(),
            DecodeError::MissingResult => f.write_str("MissingResult"),
            DecodeError::ResultAndError => f.write_str("ResultAndError"),
            DecodeError::IdMismatch { expected, found } => f
                .debug_struct("IdMismatch")
                .field("expected", &DebugQuoted(expected))
                .field("found", &DebugQuoted(found))
                .finish(),
            DecodeError::MissingItems(ids) => {
                f.write_str("MissingItems(")?;
                let mut list = f.debug_list();
                list.entries(ids.iter().take(LISTED).map(DebugQuoted));
                if ids.len() > LISTED {
                    list.entry(&format_args!("... ({} in all)", ids.len()));
                }
                list.finish()?;
                f.write_str(")")
            }
            DecodeError::UnexpectedItem(id) => f
                .debug_tuple("UnexpectedItem")
                .field(&DebugQuoted(id))
                .finish(),
            DecodeError::ShapeMismatch => f.write_str("ShapeMismatch"),
            DecodeError::EmptyBody => f.write_str("EmptyBody"),
            DecodeError::EmptyBatch => f.write_str("EmptyBatch"),
            DecodeError::DuplicateId(id) => f
                .debug_tuple("DuplicateId")
                .field(&DebugQuoted(id))
                .finish(),
        }
    }
}

/// Writes `value`, cut after [`QUOTED`] bytes.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: impl fmt::Display) -> fmt::Result {
    write_cut(f, value, QUOTED)
}

/// Writes `value`, cut after `limit` bytes (on a character boundary) with an ellipsis,
/// and with its control characters, Unicode's line and paragraph separators and its
/// marks that reorder text escaped as Rust writes them (`\n`, `\u{1b}`, `\u{2028}`):
/// what a server sent must not start a new line in a log, move a terminal's cursor, or
/// show its text in another order than it is.
fn write_cut(f: &mut fmt::Formatter<'_>, value: impl fmt::Display, limit: usize) -> fmt::Result {
    struct CuttingWriter<'a, 'b> {
        f: &'a mut fmt::Formatter<'b>,
        left: usize,
        cut: bool,
    }
    impl CuttingWriter<'_, '_> {
        /// Writes `s` whole if it fits, or as much of it as does, on a character
        /// boundary; `false` once cut.
        fn fit(&mut self, s: &str) -> Result<bool, fmt::Error> {
            if s.len() <= self.left {
                self.left -= s.len();
                self.f.write_str(s)?;
                return Ok(true);
            }
            let mut end = self.left;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.cut = true;
            self.left = 0;
            self.f.write_str(s.get(..end).unwrap_or_default())?;
            Ok(false)
        }
    }
    impl fmt::Write for CuttingWriter<'_, '_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut rest = s;
            while !self.cut {
                let Some(at) = rest.find(must_escape) else {
                    self.fit(rest)?;
                    break;
                };
                let (plain, control) = rest.split_at(at);
                let mut chars = control.chars();
                let escaped = chars.next().map(char::escape_default).into_iter().flatten();
                // An escape is not split: it goes whole, or the cut comes before it.
                let escaped: String = escaped.collect();
                if !self.fit(plain)? || escaped.len() > self.left {
                    self.cut = true;
                    break;
                }
                self.fit(&escaped)?;
                rest = chars.as_str();
            }
            Ok(())
        }
    }
    let mut cut = CuttingWriter {
        f,
        left: limit,
        cut: false,
    };
    fmt::write(&mut cut, format_args!("{value}"))?;
    if cut.cut {
        cut.f.write_str("…")?;
    }
    Ok(())
}

/// A character [`write_cut`] escapes: a control character (`\n`, ESC), a line or
/// paragraph separator (U+2028, U+2029: a line break to JavaScript's log viewers), or a
/// bidirectional mark or override (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
/// U+2069).
pub(crate) fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Messages quote what a server sent ([`Version`](Self::Version), an id) only in part,
/// up to 100 bytes, and list at most ten ids of a batch.
impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(_) => f.write_str("invalid JSON"),
            DecodeError::Version(Some(v)) => {
                f.write_str("unsupported \"jsonrpc\" version \"")?;
                write_quoted(f, v)?;
                f.write_str("\"")
            }
            DecodeError::Version(None) => f.write_str("missing \"jsonrpc\": \"2.0\""),
            DecodeError::NotAnObject => f.write_str("message is not a JSON object"),
            DecodeError::Invalid(what) => write!(f, "invalid message: {what}"),
            DecodeError::InvalidId(v) => {
                f.write_str("invalid id ")?;
                write_quoted(f, v)
            }
            DecodeError::MissingResult => f.write_str("response has neither result nor error"),
            DecodeError::ResultAndError => f.write_str("response has both result and error"),
            DecodeError::IdMismatch { expected, found } => {
                f.write_str("response id ")?;
                write_quoted(f, found)?;
                f.write_str(" does not match request id ")?;
                write_quoted(f, expected)
            }
            DecodeError::MissingItems(ids) => {
                f.write_str("batch response misses ids")?;
                for id in ids.iter().take(LISTED) {
                    f.write_str(" ")?;
                    write_quoted(f, id)?;
                }
                if ids.len() > LISTED {
                    write!(f, " ... ({} in all)", ids.len())?;
                }
                Ok(())
            }
            DecodeError::UnexpectedItem(id) => {
                f.write_str("batch response has an unexpected or repeated id ")?;
                write_quoted(f, id)
            }
            DecodeError::ShapeMismatch => {
                f.write_str("response shape (single or batch) does not match the request")
            }
            DecodeError::EmptyBody => f.write_str("empty response body"),
            DecodeError::EmptyBatch => f.write_str("empty batch"),
            DecodeError::DuplicateId(id) => {
                f.write_str("two calls of the batch have the id ")?;
                write_quoted(f, id)
            }
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError::Json(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_objects_message_is_shown_up_to_a_kibibyte() {
        let reason = "execution reverted: ".to_owned() + &"x".repeat(300);
        let shown = ErrorObject::new(3, reason.clone()).to_string();
        assert_eq!(shown, format!("JSON-RPC error 3: {reason}"));
        let flood = ErrorObject::new(-32000, "y".repeat(1_000_000));
        let shown = flood.to_string();
        assert_eq!(
            shown.len(),
            "JSON-RPC error -32000: ".len() + 1024 + "…".len()
        );
        assert!(shown.ends_with("y…"), "{shown}");
        assert_eq!(flood.message().len(), 1_000_000);
    }

    #[test]
    fn debug_cuts_what_a_server_sent_as_display_does() {
        let small = DecodeError::IdMismatch {
            expected: Id::Number(1),
            found: Id::String("a".into()),
        };
        assert_eq!(
            format!("{small:?}"),
            r#"IdMismatch { expected: Number(1), found: String("a") }"#
        );
        assert_eq!(
            format!("{:?}", DecodeError::Version(Some("1.0".into()))),
            r#"Version(Some("1.0"))"#
        );
        let huge = "y".repeat(1 << 20);
        for e in [
            DecodeError::InvalidId(huge.clone()),
            DecodeError::Version(Some(huge.clone())),
            DecodeError::UnexpectedItem(Id::String(huge.clone().into())),
            DecodeError::DuplicateId(Id::String(huge.clone().into())),
        ] {
            let shown = format!("{e:?}");
            assert!(shown.len() < QUOTED + 40, "{}", shown.len());
            assert!(shown.contains("yyy…"), "{shown}");
        }
        let ids: Vec<Id> = (0..1000).map(Id::Number).collect();
        assert_eq!(
            format!("{:?}", DecodeError::MissingItems(ids)),
            "MissingItems([Number(0), Number(1), Number(2), Number(3), Number(4), Number(5), \
             Number(6), Number(7), Number(8), Number(9), ... (1000 in all)])"
        );
    }

    #[test]
    fn a_long_value_is_cut_on_a_character_boundary() {
        let short = DecodeError::InvalidId("[1]".to_owned());
        assert_eq!(short.to_string(), "invalid id [1]");
        // 'é' is two bytes: the cut after 100 bytes falls inside the 51st.
        let long = DecodeError::Version(Some(format!("x{}", "é".repeat(60))));
        assert_eq!(
            long.to_string(),
            format!("unsupported \"jsonrpc\" version \"x{}…\"", "é".repeat(49))
        );
        let exactly = DecodeError::InvalidId("y".repeat(QUOTED));
        assert_eq!(
            exactly.to_string(),
            format!("invalid id {}", "y".repeat(QUOTED))
        );
    }

    #[test]
    fn a_value_written_in_pieces_is_cut_after_the_same_bytes() {
        // A string id's `Debug` writes its opening quote, then the text: 1 + 99 bytes.
        let long = Id::String("z".repeat(150).into());
        let err = DecodeError::UnexpectedItem(long);
        assert_eq!(
            err.to_string(),
            format!(
                "batch response has an unexpected or repeated id \"{}…",
                "z".repeat(QUOTED - 1)
            )
        );
    }

    /// A server's line break or terminal escape is shown escaped, never written: it
    /// would forge a log line, or recolour a terminal.
    #[test]
    fn control_characters_a_server_sent_are_escaped() {
        let message = "reverted\nINFO forged \u{1b}[31mred\tend";
        assert_eq!(
            ErrorObject::new(3, message).to_string(),
            r"JSON-RPC error 3: reverted\nINFO forged \u{1b}[31mred\tend"
        );
        let version = DecodeError::Version(Some("2.0\r\nX".to_owned()));
        assert_eq!(
            version.to_string(),
            r#"unsupported "jsonrpc" version "2.0\r\nX""#
        );
        let id = DecodeError::InvalidId("[1,\n2]".to_owned());
        assert_eq!(id.to_string(), r"invalid id [1,\n2]");
        assert_eq!(cut("a\u{0}b\u{7f}", 100), r"a\u{0}b\u{7f}");
        // Printable text other than ASCII is written as it is; separators and marks that
        // reorder text are not.
        assert_eq!(cut("délai → 5 s", 100), "délai → 5 s");
        assert_eq!(
            cut("a\u{2028}b\u{202e}c\u{2066}d\u{61c}e", 100),
            r"a\u{2028}b\u{202e}c\u{2066}d\u{61c}e"
        );
        // An escape is cut whole: before it, when it does not fit.
        assert_eq!(cut("abc\ndef", 4), "abc…");
        assert_eq!(cut("abc\ndef", 5), r"abc\n…");
        assert_eq!(cut("abc\n", 5), r"abc\n");
    }

    #[test]
    fn a_batch_lists_ten_missing_ids_and_counts_the_rest() {
        let ids = |n: i64| (1..=n).map(Id::Number).collect::<Vec<_>>();
        assert_eq!(
            DecodeError::MissingItems(ids(LISTED as i64)).to_string(),
            "batch response misses ids 1 2 3 4 5 6 7 8 9 10"
        );
        assert_eq!(
            DecodeError::MissingItems(ids(11)).to_string(),
            "batch response misses ids 1 2 3 4 5 6 7 8 9 10 ... (11 in all)"
        );
    }

    #[test]
    fn only_invalid_json_has_a_source() {
        use std::error::Error as _;
        let json = serde_json::from_str::<Value>("{").unwrap_err();
        let shown = json.to_string();
        let err = DecodeError::from(json);
        assert_eq!(err.source().map(ToString::to_string), Some(shown));
        assert!(DecodeError::EmptyBody.source().is_none());
    }

    #[test]
    fn the_specifications_codes_and_the_server_error_range() {
        assert_eq!(
            [
                ErrorObject::PARSE_ERROR,
                ErrorObject::INVALID_REQUEST,
                ErrorObject::METHOD_NOT_FOUND,
                ErrorObject::INVALID_PARAMS,
                ErrorObject::INTERNAL_ERROR,
            ],
            [-32700, -32600, -32601, -32602, -32603]
        );
        for (code, server) in [
            (-32100, false),
            (-32099, true),
            (-32050, true),
            (-32000, true),
            (-31999, false),
            (ErrorObject::INTERNAL_ERROR, false),
        ] {
            assert_eq!(
                ErrorObject::new(code, "").is_server_error(),
                server,
                "{code}"
            );
        }
    }
}
