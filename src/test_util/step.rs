//! What the server does with one call: [`Step`].

use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

/// How long [`Step::timeout`] waits before answering: one hour, far beyond any sensible
/// client timeout.
pub(crate) const TIMEOUT_DELAY: Duration = Duration::from_secs(60 * 60);

/// What [`FlakyServer`](super::FlakyServer) does with one call.
///
/// Queue steps with [`FlakyServer::script`](super::FlakyServer::script); a call whose
/// method has no step queued gets [`Step::ok`].
///
/// Two kinds of step exist:
///
/// - *item-level* steps, [`ok`](Step::ok) and [`error`](Step::error), decide the response
///   object of one call; in a batch, each item gets its own;
/// - *HTTP-level* steps ([`status`](Step::status), [`status_with_error`](Step::status_with_error),
///   [`drop_connection`](Step::drop_connection), [`truncated`](Step::truncated),
///   [`malformed`](Step::malformed), [`oversized`](Step::oversized),
///   [`oversized_chunked`](Step::oversized_chunked), [`trickle`](Step::trickle), [`raw`](Step::raw))
///   decide the whole HTTP response; in a batch, the first item with such a step decides it
///   for all items.
///
/// Any step can wait first ([`after`](Step::after)) and add response headers
/// ([`header`](Step::header), [`retry_after`](Step::retry_after)).
///
/// A builder argument that cannot be used (a status code out of range, a header value with
/// a line break, a body on a `204` or `304`, which hyper would drop, an
/// [`oversized`](Step::oversized) length h2 refuses) does not panic: the step
/// answers `500 Internal Server Error` with a plain-text body that names the problem, so
/// the mistake shows in the test.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::test_util::Step;
///
/// let steps = [
///     Step::timeout(),
///     Step::error(-32005).after(Duration::from_millis(10)),
///     Step::status(429).retry_after("2"),
///     Step::ok(),
/// ];
/// assert_eq!(steps.len(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct Step {
    pub(crate) action: Action,
    pub(crate) delay: Duration,
    pub(crate) headers: HeaderMap,
    /// Why a builder argument was rejected, if one was.
    pub(crate) invalid: Option<String>,
}

/// The response a [`Step`] produces, before its delay and headers.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Ok,
    Error(ErrorSpec),
    Status(StatusCode),
    StatusWithError(StatusCode, ErrorSpec),
    DropConnection,
    Truncated,
    Malformed,
    /// The length, and whether to send it chunked (no `Content-Length`).
    Oversized(u64, bool),
    /// The whole response, one byte per interval.
    Trickle(Duration),
    Raw(StatusCode, Bytes),
}

impl Action {
    /// Whether the action decides the whole HTTP response rather than one item of it.
    pub(crate) fn is_http_level(&self) -> bool {
        !matches!(self, Self::Ok | Self::Error(_))
    }

    /// Whether the response the action makes has the items' own answers for its body.
    pub(crate) fn carries_items(&self) -> bool {
        matches!(
            self,
            Self::Ok | Self::Error(_) | Self::Truncated | Self::Trickle(_)
        )
    }
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ErrorSpec {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl ErrorSpec {
    /// An error with the message the specification gives for `code`, or a generic one.
    pub(crate) fn from_code(code: i64) -> Self {
        Self::new(code, default_message(code), None)
    }

    pub(crate) fn new(code: i64, message: impl Into<String>, data: Option<Value>) -> Self {
        Self {
            code,
            message: message.into(),
            data,
        }
    }
}

/// The message JSON-RPC 2.0 (section 5.1) gives for a reserved code.
fn default_message(code: i64) -> &'static str {
    match code {
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        -32603 => "Internal error",
        -32099..=-32000 => "Server error",
        _ => "Scripted error",
    }
}

/// The first length [`Step::oversized`] refuses: a `Content-Length` of 20 digits, as
/// 10^19 has, is one h2 does not read.
const OVERSIZED_MAX: u64 = 10_000_000_000_000_000_000;

impl Step {
    fn new(action: Action) -> Self {
        Self {
            action,
            delay: Duration::ZERO,
            headers: HeaderMap::new(),
            invalid: None,
        }
    }

    fn with_status<S>(status: S, action: impl FnOnce(StatusCode) -> Action) -> Self
    where
        StatusCode: TryFrom<S>,
    {
        Self::with_status_and_body(status, true, action)
    }

    /// As [`with_status`](Self::with_status), for an action whose response has a body
    /// unless `empty`.
    fn with_status_and_body<S>(
        status: S,
        empty: bool,
        action: impl FnOnce(StatusCode) -> Action,
    ) -> Self
    where
        StatusCode: TryFrom<S>,
    {
        let why = match StatusCode::try_from(status) {
            // An informational status cannot end an exchange: hyper would send an empty
            // 500 in its place.
            Ok(status) if status.is_informational() => {
                "an informational (1xx) status cannot be a final answer"
            }
            // hyper sends a 204 or a 304 without its body, whatever the body.
            Ok(status @ (StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)) if !empty => {
                if status == StatusCode::NO_CONTENT {
                    "a 204 response cannot have a body: hyper would send it without one"
                } else {
                    "a 304 response cannot have a body: hyper would send it without one"
                }
            }
            Ok(status) => return Self::new(action(status)),
            Err(_) => "invalid HTTP status code",
        };
        let mut step = Self::new(action(StatusCode::INTERNAL_SERVER_ERROR));
        step.invalid = Some(why.to_owned());
        step
    }

    /// Answer with the method handler's result (or its error, or `-32601 Method not found`
    /// when the method has no handler). What a call gets when nothing is scripted.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::ok();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn ok() -> Self {
        Self::new(Action::Ok)
    }

    /// Answer with a JSON-RPC error object with this `code`, in an HTTP 200 response. The
    /// message is the one the specification gives for reserved codes (`-32601` →
    /// `"Method not found"`, `-32099..=-32000` → `"Server error"`), otherwise
    /// `"Scripted error"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::error(2001);
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn error(code: i64) -> Self {
        Self::new(Action::Error(ErrorSpec::from_code(code)))
    }

    /// Answer with a JSON-RPC error object with this code, message and optional `data`, in
    /// an HTTP 200 response.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::error_with(-32005, "limit exceeded", Some(json!({"backoff_seconds": 2})));
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn error_with(code: i64, message: impl Into<String>, data: Option<Value>) -> Self {
        Self::new(Action::Error(ErrorSpec::new(code, message, data)))
    }

    /// Answer with this HTTP status (a [`StatusCode`] or a `u16`) and an empty body.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::http::StatusCode;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let a = Step::status(503);
    /// let b = Step::status(StatusCode::TOO_MANY_REQUESTS).retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
    /// # let _ = (a, b);
    /// ```
    #[must_use]
    pub fn status<S>(status: S) -> Self
    where
        StatusCode: TryFrom<S>,
    {
        Self::with_status(status, Action::Status)
    }

    /// Answer with this HTTP status and a body that is a valid JSON-RPC error response with
    /// this `code`, as some providers send with `429`. For a single call, the response `id`
    /// is the call's; for a batch, the body is one error object with `id` null (a batch-level
    /// error). A `204` or `304` cannot carry that body: the step answers `500` (see [`Step`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::status_with_error(429, -32005).retry_after("1");
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn status_with_error<S>(status: S, code: i64) -> Self
    where
        StatusCode: TryFrom<S>,
    {
        Self::with_status_and_body(status, false, |status| {
            Action::StatusWithError(status, ErrorSpec::from_code(code))
        })
    }

    /// Wait `delay` on the tokio clock, then answer as [`Step::ok`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::delay(Duration::from_millis(250));
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn delay(delay: Duration) -> Self {
        Self::ok().after(delay)
    }

    /// Wait one hour, then answer as [`Step::ok`]: the call hangs until the client gives up.
    /// Meant for client timeouts (`tower::timeout`, `tokio::time::timeout`): under tokio's
    /// paused clock, the client's timer fires first and the test does not wait. When the
    /// client gives up, it closes the connection (over HTTP/2, resets the stream), and the
    /// server drops the pending answer.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::timeout();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn timeout() -> Self {
        Self::delay(TIMEOUT_DELAY)
    }

    /// Read the request, then close the connection without sending any response.
    ///
    /// A hyper-util legacy client sees an error whose `is_connect()` is `false`, with a
    /// `hyper::Error` in its source chain whose `is_incomplete_message()` is `true`
    /// ("connection closed before message completed").
    ///
    /// Over HTTP/2 the server resets the request's stream instead (`RST_STREAM` with
    /// `INTERNAL_ERROR`) and the connection stays open for other calls: the client's
    /// error has h2's reset in its chain.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::drop_connection();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn drop_connection() -> Self {
        Self::new(Action::DropConnection)
    }

    /// Answer `200` with a `Content-Length` of the full response, send the first half of the
    /// body, then close the connection. (For a notification, the full response is a null
    /// result with a null id; for a batch of notifications only, `[]`.)
    ///
    /// The response head arrives, so a hyper-util client's request succeeds; reading the
    /// body then fails with a `hyper::Error` ("error reading a body from connection") none
    /// of whose predicates (`is_incomplete_message()`, `is_closed()`, …) is `true`, whose
    /// `source()` is an [`std::io::Error`] of kind `UnexpectedEof` ("end of file before
    /// message length reached").
    ///
    /// Over HTTP/2 the head and the first half are sent, then the stream ends, short of
    /// its `Content-Length`: the client's HTTP/2 layer finds the mismatch and resets the
    /// stream (`PROTOCOL_ERROR`), so reading the body fails with an `h2::Error` of that
    /// reason, on every runtime (the head always arrives first); the connection stays
    /// open for other calls. Up to a point: h2's client closes a connection on which it
    /// reset more than 1,024 streams itself (its default `max_local_error_reset_streams`),
    /// with a `GOAWAY` (`ENHANCE_YOUR_CALM`) that fails every call open on it, so a test
    /// of more truncated answers than that over one connection sees that failure too.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::truncated();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn truncated() -> Self {
        Self::new(Action::Truncated)
    }

    /// Answer `200` with `Content-Type: application/json` and a body that is not JSON:
    /// `{"jsonrpc": "2.0", "resu`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::malformed();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn malformed() -> Self {
        Self::new(Action::Malformed)
    }

    /// Answer `200` with `Content-Type: application/json` and a body of exactly `len` bytes,
    /// streamed in chunks of 16 KiB (never held in memory at once).
    ///
    /// The body is a valid JSON-RPC response whose result is a string of `x`, padded to
    /// `len`: `{"jsonrpc":"2.0","result":"xxx…","id":1}` (wrapped in `[…]` for a batch).
    /// When `len` is too small for that, the body is cut to `len` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::oversized(64 * 1024 * 1024);
    /// # let _ = step;
    /// ```
    ///
    /// A `len` of 10^19 or more answers `500` (see [`Step`]), over HTTP/1.1 and HTTP/2
    /// alike: h2 refuses a `Content-Length` of 20 digits, so over HTTP/2 the head itself
    /// would fail before any body limit is reached (hyper's HTTP/1.1 client reads one up
    /// to `u64::MAX - 2`, but a script should not mean one thing on one version and
    /// another on the other); [`oversized_chunked`](Step::oversized_chunked) has no such
    /// bound.
    #[must_use]
    pub fn oversized(len: u64) -> Self {
        let mut step = Self::new(Action::Oversized(len, false));
        if len >= OVERSIZED_MAX {
            step.invalid = Some(format!(
                "a Content-Length of {len} is one h2 does not read (the most is {}): \
                 use Step::oversized_chunked for an endless body",
                OVERSIZED_MAX - 1
            ));
        }
        step
    }

    /// As [`Step::oversized`], but with no `Content-Length`: the body goes out chunked
    /// (over HTTP/1.1), so a client learns its size only by reading it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::oversized_chunked(1 << 30);
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn oversized_chunked(len: u64) -> Self {
        Self::new(Action::Oversized(len, true))
    }

    /// Answer `200` with the response [`Step::ok`] would give, with its `Content-Length`,
    /// but send the body one byte per `interval` (on tokio's clock): a server that
    /// trickles, which only a timeout around the whole body read can end. (A notification,
    /// which `Step::ok` answers with no body, gets a body all the same, a null result with
    /// a null id, so that there is something to trickle; a batch of notifications only
    /// gets `[]`.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::trickle(Duration::from_secs(1));
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn trickle(interval: Duration) -> Self {
        Self::new(Action::Trickle(interval))
    }

    /// Answer with exactly this status and body, with no headers but those added with
    /// [`header`](Step::header) (and `content-length` and `date`, which hyper sets). For hostile-server
    /// tests: a wrong `"jsonrpc"` version, a mismatched id, both `result` and `error`,
    /// non-UTF-8 bytes, … A `204` or `304` can only go out with an empty body (hyper would
    /// drop any other): with one, the step answers `500` (see [`Step`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::raw(200, r#"{"jsonrpc":"1.0","result":3,"id":1}"#)
    ///     .header("content-type", "application/json");
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn raw<S>(status: S, body: impl Into<Bytes>) -> Self
    where
        StatusCode: TryFrom<S>,
    {
        let body = body.into();
        Self::with_status_and_body(status, body.is_empty(), |status| Action::Raw(status, body))
    }

    /// Wait `delay` on the tokio clock before doing this step (replacing any earlier delay).
    /// In a batch, the response waits for the longest delay among its items.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::status(503).after(Duration::from_secs(2));
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Add a header to the response (appended, so a name can repeat, and the server's own,
    /// such as `content-type: application/json`, stay: [`raw`](Step::raw) sends only the
    /// step's). Headers of an HTTP-level step go on the response it decides; headers of
    /// item-level steps go on the response they are part of (in a batch an HTTP-level
    /// step decides, when its body carries the items' answers:
    /// [`truncated`](Step::truncated), [`trickle`](Step::trickle)), and so do those of
    /// the other items' steps, whatever those steps are. A name or value that is not a
    /// valid header makes the step answer `500` (see [`Step`]), and so does a
    /// `content-length` that is not the body's length in plain digits (spaces around it
    /// included: HTTP/2 clients reset the stream on them), comes with a body sent
    /// chunked, [`oversized_chunked`](Step::oversized_chunked), or comes with a
    /// `transfer-encoding` header (the server sets it from the body, and no answer
    /// carries both as written, on either HTTP version; [`truncated`](Step::truncated)
    /// sends less than it announces).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let step = Step::status(503).header("x-ratelimit-reset", "1700000000");
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(_), _) => self.invalid = Some("invalid header name".to_owned()),
            (_, Err(_)) => self.invalid = Some("invalid header value".to_owned()),
        }
        self
    }

    /// Add a `Retry-After` header with this raw value: delay-seconds (`"2"`), an HTTP-date
    /// (`"Wed, 21 Oct 2015 07:28:00 GMT"`) or anything else (`"soon"`), sent as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::Step;
    /// let seconds = Step::status(429).retry_after("2");
    /// let garbage = Step::status(503).retry_after("-1.5e3");
    /// # let _ = (seconds, garbage);
    /// ```
    #[must_use]
    pub fn retry_after<V>(self, value: V) -> Self
    where
        HeaderValue: TryFrom<V>,
    {
        self.header(RETRY_AFTER, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_accepts_u16_and_status_code() {
        assert!(matches!(Step::status(429).action, Action::Status(s) if s == 429));
        assert!(matches!(
            Step::status(StatusCode::BAD_GATEWAY).action,
            Action::Status(StatusCode::BAD_GATEWAY)
        ));
    }

    #[test]
    fn invalid_arguments_are_recorded_not_panicked_on() {
        let step = Step::status(1000u16);
        assert_eq!(step.invalid.as_deref(), Some("invalid HTTP status code"));
        for informational in [100u16, 103, 199] {
            let step = Step::raw(informational, "x");
            assert!(
                step.invalid
                    .as_deref()
                    .is_some_and(|why| why.contains("1xx")),
                "{informational}"
            );
        }
        let step = Step::ok().retry_after("a\nb");
        assert_eq!(step.invalid.as_deref(), Some("invalid header value"));
        let step = Step::ok().header("bad name", "v");
        assert_eq!(step.invalid.as_deref(), Some("invalid header name"));
    }

    #[test]
    fn headers_append() {
        let step = Step::ok().retry_after("1").retry_after(2u64);
        let values: Vec<_> = step.headers.get_all(RETRY_AFTER).iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn default_messages() {
        assert_eq!(
            Step::error(-32601).action_error().message,
            "Method not found"
        );
        assert_eq!(Step::error(-32042).action_error().message, "Server error");
        assert_eq!(Step::error(2001).action_error().message, "Scripted error");
    }

    impl Step {
        fn action_error(&self) -> &ErrorSpec {
            match &self.action {
                Action::Error(e) => e,
                other => panic!("not an error step: {other:?}"),
            }
        }
    }
}
