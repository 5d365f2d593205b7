use std::fmt;
use std::time::Duration;

use http::StatusCode;

use super::RawAnswer;
use crate::BoxError;
use crate::jsonrpc::DecodeError;
use crate::retry::GaveUp;

/// Why the codec could not produce a JSON-RPC response.
///
/// Opaque, with predicates to ask what happened; the underlying error (the inner
/// service's, a [`DecodeError`], a body error) is kept whole in
/// [`source()`](std::error::Error::source), so a hyper-util connect error, a
/// `tower::timeout::error::Elapsed` or an `io::Error` can be found by walking the chain.
///
/// # Examples
///
/// ```
/// # use tower_jsonrpc_retry::codec::Error;
/// fn describe(err: &Error) -> &'static str {
///     if err.is_connect() {
///         "never reached the server"
///     } else if err.is_timeout() {
///         "too slow"
///     } else if err.is_status() {
///         "refused by HTTP status"
///     } else {
///         "other"
///     }
/// }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
    /// The answer a status error came from, kept for the HTTP-level layer.
    raw: Option<RawAnswer>,
    /// The inner service failed before the request was handed to it (its readiness
    /// error, kept for the call): nothing was sent.
    unsent: bool,
    /// The `Content-Encoding` of an answer that could not be decoded: the likely reason.
    coding: Option<http::HeaderValue>,
    /// How the retries of the call ended, when the retry layer gave up on this error.
    gave_up: Option<GaveUp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transport,
    Status,
    Decode,
    BodyTooLarge(usize),
    Body,
    InvalidRequest,
    Timeout,
}

impl Error {
    fn new(kind: Kind, source: Option<BoxError>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                status: None,
                retry_after: None,
                source,
                raw: None,
                unsent: false,
                coding: None,
                gave_up: None,
            }),
        }
    }

    pub(crate) fn transport(source: impl Into<BoxError>) -> Self {
        Self::new(Kind::Transport, Some(source.into()))
    }

    /// The inner service's readiness error, kept for the call it fails: a transport
    /// error for which nothing was sent, so even a non-idempotent call may go again.
    pub(crate) fn not_ready(source: impl Into<BoxError>) -> Self {
        let mut err = Self::transport(source);
        err.inner.unsent = true;
        err
    }

    /// Whether nothing was sent: the inner service failed before it took the request.
    pub(crate) fn unsent(&self) -> bool {
        self.inner.unsent
    }

    pub(crate) fn from_status(status: StatusCode, retry_after: Option<Duration>) -> Self {
        let mut err = Self::new(Kind::Status, None);
        err.inner.status = Some(status);
        err.inner.retry_after = retry_after;
        err
    }

    /// Records the status and `Retry-After` of the answer this error came with.
    pub(crate) fn with_status(mut self, status: StatusCode, retry_after: Option<Duration>) -> Self {
        self.inner.status = Some(status);
        self.inner.retry_after = retry_after;
        self
    }

    /// Keeps the answer this error came from.
    pub(crate) fn with_raw(mut self, raw: RawAnswer) -> Self {
        self.inner.raw = Some(raw);
        self
    }

    /// The answer this error came from, if it was kept.
    pub(crate) fn take_raw(&mut self) -> Option<RawAnswer> {
        self.inner.raw.take()
    }

    /// A 2xx answer kept for the HTTP-level layer because it could not be read (it is
    /// content-encoded): not a failure, but an answer only the caller can read, handed
    /// back as it came.
    pub(crate) fn is_unread_answer(&self) -> bool {
        self.inner.kind == Kind::Decode && self.inner.raw.is_some()
    }

    /// The answer's body is not a JSON-RPC answer to the request; its status and
    /// `Retry-After` are kept (a hint on any answer is the server's word).
    pub(crate) fn decode(
        source: DecodeError,
        status: StatusCode,
        retry_after: Option<Duration>,
    ) -> Self {
        let mut err = Self::new(Kind::Decode, Some(Box::new(source)));
        err.inner.status = Some(status);
        err.inner.retry_after = retry_after;
        err
    }

    /// Records the content coding of the answer a decode error came from.
    pub(crate) fn with_coding(mut self, coding: http::HeaderValue) -> Self {
        self.inner.coding = Some(coding);
        self
    }

    pub(crate) fn body(source: BoxError, limit: usize) -> Self {
        if source.is::<http_body_util::LengthLimitError>() {
            Self::new(Kind::BodyTooLarge(limit), Some(source))
        } else {
            Self::new(Kind::Body, Some(source))
        }
    }

    pub(crate) fn invalid_request(source: DecodeError) -> Self {
        Self::new(Kind::InvalidRequest, Some(Box::new(source)))
    }

    /// The codec's URI has no scheme and host (`localhost:8545`, `/rpc`), and its HTTP
    /// client needs them: its own refusal would not say why.
    pub(crate) fn relative_uri() -> Self {
        Self::new(
            Kind::InvalidRequest,
            Some(Box::new(crate::client::UnsupportedScheme::missing())),
        )
    }

    /// The codec's URI names no host or a port out of range, which no HTTP client can
    /// connect to as written, or a user name Basic authentication cannot carry.
    pub(super) fn bad_authority(flaw: super::uri::AuthorityFlaw) -> Self {
        Self::new(Kind::InvalidRequest, Some(Box::new(flaw)))
    }

    /// The codec's own timeout ran out; `source()` is tower's `Elapsed`, as for a
    /// `TimeoutLayer`.
    pub(crate) fn timeout() -> Self {
        Self::new(
            Kind::Timeout,
            Some(Box::new(tower::timeout::error::Elapsed::new())),
        )
    }

    /// The call's deadline came before an attempt was sent (a retry's readiness wait
    /// ended by it, or a retry that would have started past it): a timeout for which
    /// nothing was sent, so the server provably did not run that attempt.
    pub(crate) fn deadline() -> Self {
        let mut err = Self::timeout();
        err.inner.unsent = true;
        err
    }

    /// A body whose declared length is over the limit: refused unread, with the same
    /// source as one found over it while streaming.
    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(Kind::BodyTooLarge(limit), Some(length_limit_error()))
    }

    /// The inner service failed: the HTTP exchange did not complete.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jsonrpc_retry::BoxError;
    ///
    /// // An HTTP client that fails in a way of its own: a proxy that refused the tunnel.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     Err::<http::Response<String>, _>(BoxError::from("tunnel refused"))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_transport());
    /// assert!(!err.is_connect() && !err.is_timeout() && !err.is_reset());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_transport(&self) -> bool {
        self.inner.kind == Kind::Transport
    }

    /// The connection could not be made, so the request never left the client.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io;
    ///
    /// // An HTTP client whose connection is refused.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    ///     Err::<http::Response<String>, _>(refused)
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_transport() && err.is_connect());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_connect(&self) -> bool {
        self.is_transport() && self.source_matches(crate::classify::is_connect)
    }

    /// A timeout ended the exchange: the codec's own
    /// ([`JsonRpcCodecLayer::attempt_timeout`](super::JsonRpcCodecLayer::attempt_timeout)),
    /// or one below it (tower's `TimeoutLayer`, an I/O timeout, hyper's own timers).
    ///
    /// tower-http's timeouts are not among them: its `ResponseBodyTimeoutLayer`'s error
    /// is a body error ([`is_body`](Self::is_body)), and its `TimeoutLayer` answers with
    /// a `408` of its own, which reads as the server's. For a timeout the retry rules
    /// know, use the codec's `attempt_timeout` (it bounds the body too) or tower's.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tower::Layer;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    ///
    /// // An HTTP service that never answers, under a codec that waits 2 s at most.
    /// let http = service_fn(|_: http::Request<_>| {
    ///     std::future::pending::<Result<http::Response<String>, Infallible>>()
    /// });
    /// let codec = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?)
    ///     .attempt_timeout(Duration::from_secs(2))
    ///     .layer(http);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.source_matches(crate::classify::is_timeout)
    }

    /// An established connection broke ([`ErrorClass::Reset`](crate::ErrorClass::Reset)):
    /// reset, aborted, closed mid-message (an answer's body cut short included), or, with
    /// the `http2` feature, an HTTP/2 stream or connection ended by the protocol.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io;
    ///
    /// // An HTTP client whose connection the server reset.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    ///     Err::<http::Response<String>, _>(reset)
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_transport() && err.is_reset());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_reset(&self) -> bool {
        self.source_matches(crate::classify::is_reset)
    }

    /// The server answered with a non-2xx status and no JSON-RPC response in the body.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A proxy in front of the node: a 502 and a page of HTML.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let page = "<html><body>502 Bad Gateway</body></html>".to_owned();
    ///     http::Response::builder().status(502).body(page)
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_status());
    /// assert_eq!(err.status(), Some(http::StatusCode::BAD_GATEWAY));
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_status(&self) -> bool {
        self.inner.kind == Kind::Status
    }

    /// The HTTP status, when the server sent one.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A 200 whose body is no JSON-RPC answer: the status is kept all the same.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     Ok::<_, Infallible>(http::Response::new("<html>maintenance</html>".to_owned()))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_decode());
    /// assert_eq!(err.status(), Some(http::StatusCode::OK));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The server's `Retry-After` hint, as a delay from the moment it was read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// // Rate limited: a 429 that says when to come back.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let limited = http::Response::builder().status(429).header("retry-after", "30");
    ///     limited.body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The body is not a valid JSON-RPC response to the request that was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A 200 with a body that is not JSON at all.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     Ok::<_, Infallible>(http::Response::new("OK".to_owned()))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_decode() && !err.is_status());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_decode(&self) -> bool {
        self.inner.kind == Kind::Decode
    }

    /// The decoding failure: why the answer was refused when
    /// [`is_decode`](Self::is_decode), or why the request was when
    /// [`is_invalid_request`](Self::is_invalid_request) for the request itself (an
    /// empty batch, two calls with one id, params that are not an array or an object);
    /// `None` otherwise, a refused URI included (one that names no host or a port out of
    /// range, and one without scheme and host, whose
    /// [`UnsupportedScheme`](crate::client::UnsupportedScheme) is the `source()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Id};
    ///
    /// // A server that answers call 1 with the answer to call 2.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let answer = r#"{"jsonrpc": "2.0", "id": 2, "result": 3}"#.to_owned();
    ///     Ok::<_, Infallible>(http::Response::new(answer))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// let mismatch = err.decode_error().and_then(|e| match e {
    ///     DecodeError::IdMismatch { expected, found, .. } => Some((expected, found)),
    ///     _ => None,
    /// });
    /// assert_eq!(mismatch, Some((&Id::Number(1), &Id::Number(2))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn decode_error(&self) -> Option<&DecodeError> {
        self.inner.source.as_ref()?.downcast_ref()
    }

    /// The response body was larger than the codec's limit.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower::Layer;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    ///
    /// // A 2 KiB answer, to a codec that reads 1 KiB at most.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     Ok::<_, Infallible>(http::Response::new(" ".repeat(2048)))
    /// });
    /// let codec = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?)
    ///     .response_limit(1024)
    ///     .layer(http);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_body_too_large());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.inner.kind, Kind::BodyTooLarge(_))
    }

    /// The request cannot be sent as it is (an empty batch, two calls with one id,
    /// params that are not an array or an object), the URI names no host or a port out of
    /// range (`http://127.0.0.1:85450/`) or credentials Basic authentication cannot carry
    /// (a user name with a colon, `a%3Ab`, or a control character), or, in
    /// [`Client`](crate::Client)'s stacks, the URI is not absolute (no scheme and host:
    /// [`UnsupportedScheme`](crate::client::UnsupportedScheme) in `source()`); nothing
    /// was sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let http = service_fn(|_: http::Request<_>| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// // One positional param is `["0xab58"]`: a bare string is not params.
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("eth_getBalance", json!("0xab58")).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_invalid_request());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_invalid_request(&self) -> bool {
        self.inner.kind == Kind::InvalidRequest
    }

    /// The response body could not be read to its end (the connection broke mid-body).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use std::pin::Pin;
    /// # use std::task::{Context, Poll};
    /// # use http_body::Frame;
    /// /// A body whose connection breaks before its first byte.
    /// struct BrokenOff;
    /// # impl http_body::Body for BrokenOff {
    /// #     type Data = bytes::Bytes;
    /// #     type Error = std::io::Error;
    /// #     fn poll_frame(
    /// #         self: Pin<&mut Self>,
    /// #         _: &mut Context<'_>,
    /// #     ) -> Poll<Option<Result<Frame<bytes::Bytes>, std::io::Error>>> {
    /// #         Poll::Ready(Some(Err(std::io::Error::other("connection lost"))))
    /// #     }
    /// # }
    ///
    /// // A 200 whose body breaks off.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     Ok::<_, Infallible>(http::Response::new(BrokenOff))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// assert!(err.is_body());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_body(&self) -> bool {
        self.inner.kind == Kind::Body
    }

    /// How the retries of its call ended, when the retry layer gave up on this error:
    /// the retries made, and why there was no further one. Its message then says it too
    /// (when retries were made, or a limit stopped the first).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::{ErrorClass, GiveUpReason, JsonRpcRetry, RetryStrategy};
    ///
    /// // Always a 503, retried once.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     http::Response::builder().status(503).body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let backoff = PeriodicBackoff::new(1, Duration::from_millis(10));
    /// let strategy = RetryStrategy::new(backoff)
    ///     .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    /// let stack = JsonRpcRetry::new(strategy, codec);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = stack.oneshot(call).await.unwrap_err();
    /// let gave_up = err.gave_up().ok_or("no record")?;
    /// assert_eq!((gave_up.retries(), gave_up.reason()), (1, GiveUpReason::Exhausted));
    /// assert!(err.to_string().ends_with("gave up after 1 retry: attempts exhausted"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.inner.gave_up
    }

    /// Records how the retries of its call ended (over a record a retry layer further in
    /// made: [`GaveUp::over`]).
    pub(crate) fn set_gave_up(&mut self, gave_up: GaveUp) {
        self.inner.gave_up = Some(gave_up.over(self.inner.gave_up));
    }

    /// The underlying error, by value: for a transport error, the inner service's own
    /// error (boxed), which can be downcast back to its type.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io;
    ///
    /// // An HTTP client whose connection is refused: its `io::Error`, boxed.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    ///     Err::<http::Response<String>, _>(refused)
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let call = Request::new("sum", json!([1, 2])).with_id(1);
    /// let err = codec.oneshot(call).await.unwrap_err();
    /// let source = err.into_source().ok_or("no source")?;
    /// let io: Box<io::Error> = source.downcast().map_err(|_| "not an io::Error")?;
    /// assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_source(self) -> Option<BoxError> {
        self.inner.source
    }

    fn source_matches(&self, f: fn(&(dyn std::error::Error + 'static)) -> bool) -> bool {
        self.inner.source.as_deref().is_some_and(|e| f(e))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(retry_after) = self.inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        if let Some(coding) = &self.inner.coding {
            d.field("content_encoding", coding);
        }
        if let Some(gave_up) = &self.inner.gave_up {
            d.field("gave_up", gave_up);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

/// What failed, in a few words (a transport error names its class: `HTTP request
/// failed: could not connect`, `…: unsupported URI scheme`, `…: the connector refused
/// the URI` (hyper-util's `HttpConnector` given an `https` URI), `…: TLS handshake failed`,
/// `…: timed out`, `…: the connection broke`, or `…: not sent` for a request the
/// service below never took when no other class says more); an error that came after a
/// failure status (a body that broke off or ran out of time under a 503) names that
/// status too, and one the retry layer gave up on after retries, or at a limit, says
/// how its retries ended: `HTTP status 503 Service Unavailable; gave up after 2
/// retries: attempts exhausted`.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_kind(f)?;
        match self.inner.status {
            Some(status) if !status.is_success() && self.inner.kind != Kind::Status => {
                write!(f, " (HTTP status {})", StatusText(status))
            }
            _ => Ok(()),
        }?;
        GaveUp::fmt_news(self.inner.gave_up, f)
    }
}

impl Error {
    /// A timeout or a broken connection in a few words, for the message.
    fn broken_words(&self) -> Option<&'static str> {
        if self.is_timeout() {
            Some("timed out")
        } else if self.is_reset() {
            Some("the connection broke")
        } else {
            None
        }
    }

    fn fmt_kind(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            Kind::Transport => {
                f.write_str("HTTP request failed")?;
                // The class in a word or two, for a log line that prints only this
                // message; the chain still has the cause.
                let source = self.inner.source.as_deref();
                let class = source
                    .and_then(|e| crate::classify::connect_failure_words(e))
                    .or_else(|| self.broken_words())
                    // The HTTP service's readiness error, or tower's `LoadShed`.
                    .or_else(|| {
                        let unsent =
                            self.inner.unsent || self.source_matches(crate::classify::is_shed);
                        unsent.then_some("not sent")
                    });
                match class {
                    Some(class) => write!(f, ": {class}"),
                    None => Ok(()),
                }
            }
            Kind::Status => match self.inner.status {
                Some(status) => write!(f, "HTTP status {}", StatusText(status)),
                None => f.write_str("HTTP status error"),
            },
            Kind::Decode => match &self.inner.coding {
                Some(coding) => write!(
                    f,
                    "invalid JSON-RPC response: its body is content-encoded ({}), and the \
                     codec reads bodies as they come (put a decompression layer, such as \
                     tower-http's `DecompressionLayer`, under it)",
                    crate::jsonrpc::cut(String::from_utf8_lossy(coding.as_bytes()), 64),
                ),
                None => f.write_str("invalid JSON-RPC response"),
            },
            Kind::BodyTooLarge(limit) => {
                write!(f, "response body larger than the limit of {limit} bytes")
            }
            Kind::Body => {
                f.write_str("response body could not be read")?;
                // As for a transport failure: the class, for a log line of this alone.
                match self.broken_words() {
                    Some(why) => write!(f, ": {why}"),
                    None => Ok(()),
                }
            }
            Kind::InvalidRequest => f.write_str("invalid request, not sent"),
            Kind::Timeout => f.write_str("JSON-RPC exchange timed out"),
        }
    }
}

/// A status as a message shows it: its code, and its reason where it has a standard one
/// (`503 Service Unavailable`, but `522`, where `StatusCode`'s own `Display` would add
/// `<unknown status code>` for the codes of proxies and CDNs).
struct StatusText(StatusCode);

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.canonical_reason() {
            Some(reason) => write!(f, "{} {reason}", self.0.as_u16()),
            None => write!(f, "{}", self.0.as_u16()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}

/// http-body-util's `LengthLimitError`, which has no constructor of its own: the one its
/// `Limited` gives for a byte over a limit of none (in memory, so polling never waits).
fn length_limit_error() -> BoxError {
    use http_body::Body;
    let mut over = http_body_util::Limited::new(http_body_util::Full::new(&b" "[..]), 0);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(&mut over).poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Err(e))) => e,
        _ => "length limit exceeded".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind answers its own predicate and no other.
    #[test]
    fn each_kind_answers_one_predicate() {
        let io = std::io::Error::other("broke");
        let cases: [(Error, &str); 7] = [
            (Error::transport(io), "transport"),
            (Error::from_status(StatusCode::BAD_GATEWAY, None), "status"),
            (
                Error::decode(DecodeError::EmptyBody, StatusCode::OK, None),
                "decode",
            ),
            (Error::body_too_large(8), "too large"),
            (Error::body("cut".into(), 8), "body"),
            (Error::invalid_request(DecodeError::EmptyBatch), "invalid"),
            (Error::timeout(), "timeout"),
        ];
        for (err, kind) in cases {
            let answers = [
                ("transport", err.is_transport()),
                ("status", err.is_status()),
                ("decode", err.is_decode()),
                ("too large", err.is_body_too_large()),
                ("body", err.is_body()),
                ("invalid", err.is_invalid_request()),
                ("timeout", err.is_timeout()),
            ];
            for (name, answer) in answers {
                assert_eq!(answer, name == kind, "{kind}: is {name}? {err:?}");
            }
        }
    }
}
