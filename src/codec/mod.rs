//! JSON-RPC over HTTP: JSON-RPC messages to HTTP requests, and HTTP responses back.
//!
//! The codec is a tower service over any HTTP service that is `Clone` (hyper-util's
//! client, and what tower's and tower-http's layers make of it).
//!
//! [`JsonRpcCodec`] serves [`Request`] and [`BatchRequest`]. It POSTs `application/json`
//! to one URI and decodes what comes back:
//!
//! | HTTP answer | result |
//! |---|---|
//! | 2xx, a response whose id is the request's, or an error with a null id (the server could not read the id) | `Ok(Response)` |
//! | 2xx, a response with another id, or not JSON-RPC | `Err`, [`Error::is_decode`] |
//! | 2xx or 204 to a notification | `Ok(Response)` with a null id and a null result (the body is not decoded; up to 64 KiB of it is read and thrown away, waiting 100 ms at most, so that the connection can be used again) |
//! | 2xx to a batch | `Ok(BatchResponse)`, items matched by id in any order; a missing, repeated or unknown id is a decode error (but, when no call's id is null, errors with a null id, items whose id the server could not read, answer the unanswered calls in order when there are exactly as many, and are kept in [`unmatched`](crate::jsonrpc::BatchResponse::unmatched) when every call is answered; a result with a null id, a JSON-RPC 1.0 answer to a notification, is passed over; and geth's refusal of a batch too large, one `-32600` error under the first call's id, is every call's [`batch_error`](crate::jsonrpc::BatchResponse::batch_error) when the batch holds two calls or more, notifications not counted: to a batch of one call, it is that call's answer; and a single object under the id of a batch's only call, as servers that unwrap an answer array of one item send it, is that call's answer) |
//! | 2xx to a batch of notifications only | `Ok(BatchResponse)` with no items; the body is read only for a refusal (an error with a null id: the batch's error, or kept in [`unmatched`](crate::jsonrpc::BatchResponse::unmatched)), and one that is not JSON-RPC, breaks off, passes the limit or outlasts the attempt is delivered all the same, as for a single notification |
//! | non-2xx whose body is a JSON-RPC response to the request (its id, or a null id with an error), not to a single notification | that response, with the [`StatusCode`](http::StatusCode) in its extensions |
//! | non-2xx otherwise (also a single answer to another call, to a batch (unless it answers the batch's only call, under its id), any answer to a single notification, and a body over the limit) | `Err`, [`Error::is_status`], with [`Error::status`] and [`Error::retry_after`] |
//! | 2xx, body over the limit | `Err`, [`Error::is_body_too_large`], found from the body's declared length (a `Content-Length`) or while streaming |
//! | the body breaks off, whatever the status (not the body of a 2xx answer to a notification or a batch of notifications only, which is delivered) | `Err`, [`Error::is_body`], with [`Error::status`] and [`Error::retry_after`] |
//! | the inner service fails | `Err`, [`Error::is_transport`], the inner error in `source()` |
//! | the codec's [`attempt_timeout`](JsonRpcCodecLayer::attempt_timeout) runs out (head or body; not the body of a 2xx answer to a notification or a batch of notifications only, which is delivered) | `Err`, [`Error::is_timeout`], tower's `Elapsed` in `source()` |
//! | (an empty batch, two calls with one id, params that are not an array or an object, a URI that names no host, a port out of range or credentials Basic authentication cannot carry (a user name with a colon, a control character), or, in [`Client`](crate::Client)'s stacks, a URI without scheme and host: never sent) | `Err`, [`Error::is_invalid_request`] |
//!
//! A body that starts with a UTF-8 byte order mark, which RFC 8259 forbids a sender to
//! add and lets a reader pass over, is read as the JSON after it (a PHP server whose
//! source file starts with one sends it first); the HTTP-level layer hands back an
//! answer as it came, mark included, but a batch answer it gathers from several
//! exchanges is made of items, without it.
//!
//! A `Retry-After` header, on any answer, is recorded as [`RetryAfter`] in the
//! response's extensions (a batch's and each of its items', those in
//! [`unmatched`](crate::jsonrpc::BatchResponse::unmatched) included, and in
//! [`Error::retry_after`]); so is a failure status. The request's extensions are moved
//! onto the HTTP request, so HTTP-level layers can read per-request settings.
//!
//! ```
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use serde_json::json;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
//! use tower_jsonrpc_retry::http;
//! use tower_jsonrpc_retry::jsonrpc::Request;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let endpoint: http::Uri = "http://127.0.0.1:8545/".parse()?;
//! # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
//! # let endpoint = server.uri();
//! let http = Client::builder(TokioExecutor::new()).build_http();
//! let svc = ServiceBuilder::new()
//!     .layer(JsonRpcCodecLayer::new(endpoint))
//!     .service(http);
//! let resp = svc.oneshot(Request::new("sum", json!([1, 2])).with_id(1)).await?;
//! assert_eq!(resp.result(), Some(&json!(3)));
//! # Ok(())
//! # }
//! ```
//!
//! # A header for one call
//!
//! The codec's [`header`](JsonRpcCodecLayer::header) goes on every request. A header
//! for one call (a trace context, a tenant) goes in the call's extensions as
//! [`RequestHeaders`], which the codec writes on every attempt a retry layer above
//! sends (its `Authorization` also lets a URI whose user name the codec refuses be
//! used for that call, which a header written further down cannot). Any other value in
//! the extensions reaches the HTTP request too, so a layer below the codec can make a
//! header of it:
//!
//! ```
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use serde_json::json;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
//! use tower_jsonrpc_retry::http;
//! use tower_jsonrpc_retry::jsonrpc::Request;
//!
//! /// The trace id of one call.
//! #[derive(Clone)]
//! struct TraceId(http::HeaderValue);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
//! # let endpoint = server.uri();
//! let svc = ServiceBuilder::new()
//!     .layer(JsonRpcCodecLayer::new(endpoint))
//!     .map_request(|mut req: http::Request<_>| {
//!         if let Some(TraceId(id)) = req.extensions().get::<TraceId>().cloned() {
//!             req.headers_mut().insert("x-trace-id", id);
//!         }
//!         req
//!     })
//!     .service(Client::builder(TokioExecutor::new()).build_http());
//! let mut call = Request::new("sum", json!([1, 2])).with_id(1);
//! call.extensions_mut().insert(TraceId(http::HeaderValue::from_static("4bf92f35")));
//! let resp = svc.oneshot(call).await?;
//! assert_eq!(resp.result(), Some(&json!(3)));
//! # Ok(())
//! # }
//! ```

mod decode;
mod error;
pub mod future;
mod layer;
mod marks;
mod raw;
mod request_headers;
mod retry_after;
mod uri;

pub use error::Error;
pub use layer::JsonRpcCodecLayer;
pub use request_headers::RequestHeaders;
pub use retry_after::RetryAfter;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use crate::BoxError;
use crate::jsonrpc::members::Values;
use crate::jsonrpc::{BatchRequest, BatchResponse, DecodeError, Id, Request, Response};
pub(crate) use decode::refusal_item;
use decode::status_error;
use decode::{Awaited, Expected, decode_batch, decode_single};
use future::{Decode, ResponseFuture};
pub(crate) use marks::{
    Deadline, DeadlineVoucher, GatheredHead, Gathering, LatestHint, Origin, RawAnswer, RawItem,
    RetriedInPart,
};
pub(crate) use raw::{array_items, splice};
use uri::{Redacted, mark_sensitive, take_user_info};

/// The default largest response body: 10 MiB, enough for large `eth_getLogs` answers
/// while a hostile server cannot make a caller buffer without bound.
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
/// use tower_jsonrpc_retry::codec::DEFAULT_BODY_LIMIT;
///
/// // An answer one byte over the limit: refused by its declared length, unread.
/// let http = service_fn(|_: http::Request<_>| async {
///     Ok::<_, Infallible>(http::Response::new(" ".repeat(DEFAULT_BODY_LIMIT + 1)))
/// });
/// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
/// let call = Request::new("eth_getLogs", json!([{"fromBlock": "0x0"}])).with_id(1);
/// let err = codec.oneshot(call).await.unwrap_err();
/// assert!(err.is_body_too_large());
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

#[derive(Clone)]
struct Config {
    uri: Uri,
    headers: HeaderMap,
    response_limit: usize,
    attempt_timeout: Option<Duration>,
    /// Keep a single response's head and body bytes in its extensions ([`RawAnswer`]),
    /// for the HTTP-level retry layer, which hands them on unchanged. The response's
    /// result is then not built (it reads `null`), unless the strategy reads results
    /// ([`build_results`](Self::build_results), or a request's own strategy): the caller
    /// gets the bytes.
    keep_raw: bool,
    /// Build results even when the answer is kept: the HTTP-level layer's strategy has
    /// rules on them ([`RetryStrategy::retry_result_if`](crate::RetryStrategy::retry_result_if)).
    build_results: bool,
    /// Refuse to send without a scheme and host in the URI, for an inner HTTP client
    /// that needs them (hyper-util's, in [`Client`](crate::Client)'s stacks): it would
    /// refuse such a request itself, with a message that does not say why.
    absolute_uri: bool,
    /// Why the URI's authority cannot be connected to, if it cannot.
    authority_flaw: Option<uri::AuthorityFlaw>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("uri", &Redacted(&self.uri))
            .field("headers", &self.headers)
            .field("response_limit", &self.response_limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// What the decoders make of results: the codec that keeps an answer's bytes for the
    /// HTTP-level layer builds none, unless a retry rule reads them (the layer's
    /// strategy's, or the request's own).
    fn values(&self, extensions: &http::Extensions) -> Values {
        let reads = || {
            extensions
                .get::<crate::RetryStrategy>()
                .is_some_and(crate::RetryStrategy::reads_results)
        };
        if !self.keep_raw {
            Values::Build
        } else if self.build_results || reads() {
            Values::BuildWhereCan
        } else {
            Values::CheckOnly
        }
    }

    /// The flaw that fails a call with these extensions; credentials the URI cannot give
    /// matter no more once an `Authorization` header of the caller's (the codec's, or
    /// the call's own) replaces them.
    fn authority_flaw(&self, extensions: &http::Extensions) -> Option<&uri::AuthorityFlaw> {
        let authorized = || {
            self.headers.contains_key(AUTHORIZATION)
                || extensions
                    .get::<RequestHeaders>()
                    .is_some_and(|own| own.headers().contains_key(AUTHORIZATION))
        };
        self.authority_flaw
            .as_ref()
            .filter(|flaw| !flaw.of_credentials() || !authorized())
    }

    fn new(uri: Uri) -> Self {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let (uri, credentials) = take_user_info(uri);
        let user_flaw = match credentials {
            Ok(credentials) => {
                if let Some(credentials) = credentials {
                    headers.insert(AUTHORIZATION, credentials);
                }
                None
            }
            Err(flaw) => Some(flaw),
        };
        Self {
            authority_flaw: uri::AuthorityFlaw::of(&uri).or(user_flaw),
            uri,
            headers,
            response_limit: DEFAULT_BODY_LIMIT,
            attempt_timeout: None,
            keep_raw: false,
            build_results: false,
            absolute_uri: false,
        }
    }
}

/// An answer's head for a body that is not handed on: the headers that describe that
/// body go with it.
pub(crate) fn without_body(mut head: http::response::Parts) -> http::response::Parts {
    forget_body(&mut head.headers);
    head.headers.remove(CONTENT_ENCODING);
    head
}

/// Removes the headers that describe a body other than the one that will go with them:
/// its framing (`Content-Length`, `Transfer-Encoding`) and its digests (RFC 9530's
/// `Content-Digest` and `Repr-Digest`, and the older `Digest` and `Content-MD5`), which
/// go with the bytes they were computed over, not with a body made anew or left out.
fn forget_body(headers: &mut HeaderMap) {
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING] {
        headers.remove(name);
    }
    for digest in ["content-digest", "repr-digest", "digest", "content-md5"] {
        headers.remove(digest);
    }
}

/// A tower service for JSON-RPC [`Request`]s and [`BatchRequest`]s over an HTTP service.
///
/// See the [module docs](self) for how answers are decoded, and [`JsonRpcCodecLayer`] to
/// build one in a `ServiceBuilder`. `poll_ready` waits for the inner service's; an error it
/// reports there is returned by the next call instead, as a transport error, so that a
/// retry policy above sees it like any other failed attempt (tower's `Retry` would
/// otherwise return a readiness error without asking its policy, and a partly retried batch
/// would lose the answers it had gathered). A caller that polls the codec ready and then
/// makes no call (a `select!` that gave up) leaves that error to its next call; marked
/// unsent, it is one a retry may send again. The inner instance that reported it is let go
/// at once for a clone, as tower's contract asks: it may hold what it reserved (a
/// `ConcurrencyLimit` permit) and may not be polled again. The same goes for the instance
/// made ready for a message the codec refuses unsent (scalar params, an empty batch, a
/// repeated id, a URI no client can send to), which would otherwise hold what it reserved
/// for as long as its caller keeps it. So the inner service is `Clone`, as every retrying
/// stack needs it to be. A service that is not can go behind tower's `Buffer`, whose worker
/// ends at the first readiness error of the service it holds: then every call fails from
/// there on, so a service that fails readiness and recovers (tower's `Reconnect`) is better
/// made `Clone` with a handle of its own per clone.
///
/// Being a `Service` of two request types, it needs the type named where a call does not
/// give it, as in `ServiceExt::<Request>::ready(&mut svc)`: see
/// [`JsonRpcRetry`](crate::JsonRpcRetry)'s example.
///
/// # Panics
///
/// With an [attempt timeout](JsonRpcCodecLayer::attempt_timeout), `call` starts a tokio
/// timer, which panics outside a tokio runtime with its time driver, as tower's
/// `Timeout` does; so does the wait for the body of a notification's 2xx answer (100 ms
/// at most), when polled.
///
/// # Examples
///
/// Driven by hand, as tower's services are: made ready, then called.
///
/// ```
/// # use std::convert::Infallible;
/// # use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tower::{Service, ServiceExt, service_fn};
/// use tower_jsonrpc_retry::codec::JsonRpcCodec;
/// use tower_jsonrpc_retry::http;
/// use tower_jsonrpc_retry::jsonrpc::Request;
///
/// // An HTTP service that answers call 1 with 3.
/// let http = service_fn(|_: http::Request<_>| async {
///     let answer = r#"{"jsonrpc": "2.0", "id": 1, "result": 3}"#.to_owned();
///     Ok::<_, Infallible>(http::Response::new(answer))
/// });
/// let mut codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
/// let ready = ServiceExt::<Request>::ready(&mut codec).await?;
/// let answer = ready.call(Request::new("sum", json!([1, 2])).with_id(1)).await?;
/// assert_eq!(answer.result(), Some(&json!(3)));
/// # Ok(())
/// # }
/// ```
pub struct JsonRpcCodec<S> {
    inner: S,
    config: Arc<Config>,
    origin: Option<Arc<Origin>>,
    /// The error the inner service's `poll_ready` reported, for the next call.
    not_ready: Option<Error>,
}

impl<S: Clone> Clone for JsonRpcCodec<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            origin: self.origin.clone(),
            not_ready: None,
        }
    }
}

impl<S> JsonRpcCodec<S> {
    /// A codec POSTing to `uri` through `inner`.
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
    /// // An HTTP service that answers with the method and URI it was sent.
    /// let http = service_fn(|req: http::Request<_>| async move {
    ///     let seen = format!("{} {}", req.method(), req.uri());
    ///     let answer = json!({"jsonrpc": "2.0", "id": 1, "result": seen});
    ///     Ok::<_, Infallible>(http::Response::new(answer.to_string()))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/rpc".parse()?);
    /// let answer = codec.oneshot(Request::new("sum", json!([1, 2])).with_id(1)).await?;
    /// assert_eq!(answer.result(), Some(&json!("POST http://127.0.0.1:8545/rpc")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(inner: S, uri: Uri) -> Self {
        Self::from_config(inner, Arc::new(Config::new(uri)))
    }

    fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self {
            inner,
            config,
            origin: None,
            not_ready: None,
        }
    }

    /// The inner service's readiness; an error is kept for the next call (see the type's
    /// docs), so readiness itself never fails. The instance that reported it is let go
    /// for a fresh clone, as tower asks (it may hold what it reserved, a
    /// `ConcurrencyLimit` permit, and may not be polled again).
    fn poll_inner_ready<B>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
    where
        S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
        S::Error: Into<BoxError>,
    {
        if self.not_ready.is_none() {
            if let Err(e) = ready!(self.inner.poll_ready(cx)) {
                self.not_ready = Some(Error::not_ready(e));
                self.inner = self.inner.clone();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The inner service's readiness error kept for the next call, taken (for a request
    /// sent past the codec, at the HTTP level).
    pub(crate) fn take_not_ready(&mut self) -> Option<Error> {
        self.not_ready.take()
    }

    /// Sends every request of this codec (a clone made for one call) with `origin`.
    pub(crate) fn set_origin(&mut self, origin: Arc<Origin>) {
        self.origin = Some(origin);
    }

    /// The URI requests are sent to.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::http;
    ///
    /// # let http = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, Infallible>(http::Response::new(String::new()))
    /// # });
    /// let codec = JsonRpcCodec::new(http, "http://ada:s3cret@127.0.0.1:8545/".parse()?);
    /// // The credentials go in an `Authorization` header, not in the URI.
    /// assert_eq!(codec.uri(), "http://127.0.0.1:8545/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uri(&self) -> &Uri {
        &self.config.uri
    }

    /// The inner HTTP service.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower::{Service, ServiceExt};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let http = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
    /// #     let body = if req.uri().path() == "/health" { "ok" } else { "" };
    /// #     Ok::<_, Infallible>(http::Response::new(body.to_owned()))
    /// # });
    /// # let health = || http::Request::get("/health").body(Full::default());
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// // A request that is no JSON-RPC (a health check), on the codec's own HTTP client.
    /// let answer = codec.get_ref().clone().oneshot(health()?).await?;
    /// assert_eq!(answer.into_body(), "ok");
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner HTTP service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower::{Service, ServiceExt};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let http = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
    /// #     let body = if req.uri().path() == "/health" { "ok" } else { "" };
    /// #     Ok::<_, Infallible>(http::Response::new(body.to_owned()))
    /// # });
    /// # let health = || http::Request::get("/health").body(Full::default());
    /// let mut codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// // The codec's own HTTP client, made ready and called in place.
    /// let answer = codec.get_mut().ready().await?.call(health()?).await?;
    /// assert_eq!(answer.into_body(), "ok");
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner HTTP service, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use bytes::Bytes;
    /// # use http_body_util::Full;
    /// # use tower::{Service, ServiceExt};
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::http;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let http = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
    /// #     let body = if req.uri().path() == "/health" { "ok" } else { "" };
    /// #     Ok::<_, Infallible>(http::Response::new(body.to_owned()))
    /// # });
    /// # let health = || http::Request::get("/health").body(Full::default());
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// // The HTTP client back, for requests that are no JSON-RPC.
    /// let http = codec.into_inner();
    /// assert_eq!(http.oneshot(health()?).await?.into_body(), "ok");
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The body of one attempt, and whether it is the caller's own bytes: those of the
    /// [`Origin`] when they are the message to send (a single call, `items` `None`, or a
    /// batch of `items` items), else `encode`'s.
    fn attempt_body(&self, items: Option<usize>, encode: impl FnOnce() -> Bytes) -> (Bytes, bool) {
        match self
            .origin
            .as_deref()
            .filter(|origin| origin.items == items)
        {
            Some(origin) => (origin.body.clone(), true),
            None => (encode(), false),
        }
    }

    /// The HTTP request of one attempt; `callers_bytes` when `body` is the caller's own
    /// (its head's framing, `Content-Length`, still holds).
    fn http_request(
        &self,
        body: Bytes,
        callers_bytes: bool,
        mut extensions: http::Extensions,
    ) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(body));
        let gathering = extensions.remove::<Gathering>().is_some();
        match &self.origin {
            Some(origin) => {
                *req.method_mut() = origin.method.clone();
                *req.uri_mut() = origin.uri.clone();
                *req.version_mut() = origin.version;
                *req.headers_mut() = origin.headers.clone();
                if !callers_bytes {
                    // Encoded afresh: the HTTP client frames the new body itself, and a
                    // digest of the caller's bytes would not match it (a server that
                    // checks one would refuse the re-send).
                    forget_body(req.headers_mut());
                }
                if gathering && req.headers().contains_key(ACCEPT_ENCODING) {
                    req.headers_mut()
                        .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
                }
            }
            None => {
                *req.method_mut() = Method::POST;
                *req.uri_mut() = self.config.uri.clone();
                *req.headers_mut() = self.config.headers.clone();
                if let Some(own) = extensions.get::<RequestHeaders>() {
                    own.apply(req.headers_mut());
                }
            }
        }
        *req.extensions_mut() = extensions;
        req
    }
}

impl<S, B> JsonRpcCodec<S>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Refuses a message unsent. The inner service was made ready for it and may hold
    /// what it reserved (a `ConcurrencyLimit` permit, a `Buffer` slot) until it is
    /// called: it is let go for a fresh clone, as after a readiness error. Kept, it held
    /// that slot for as long as its caller kept it (a `Buffer`'s worker, until the next
    /// call came), and another call's retry could wait for the slot all that time.
    fn refuse<T>(&mut self, error: Error, decode: Decode<T>) -> ResponseFuture<S::Future, B, T> {
        self.inner = self.inner.clone();
        ResponseFuture::failed(error, decode)
    }

    /// POSTs an encoded message; what comes back is decoded by `decode`.
    fn send<T>(
        &mut self,
        (body, callers_bytes): (Bytes, bool),
        mut extensions: http::Extensions,
        expected: Expected,
        decode: Decode<T>,
    ) -> ResponseFuture<S::Future, B, T> {
        if self.origin.is_none() {
            let uri = &self.config.uri;
            if self.config.absolute_uri && (uri.scheme().is_none() || uri.authority().is_none()) {
                return self.refuse(Error::relative_uri(), decode);
            }
            if let Some(flaw) = self.config.authority_flaw(&extensions) {
                let error = Error::bad_authority(flaw.clone());
                return self.refuse(error, decode);
            }
        }
        // A retry layer's deadline for the whole call cuts this attempt short too, and
        // goes on down with it: an HTTP-level retry layer below starts no wait past it.
        // Not vouched for below (a deadline that came as a first attempt under
        // `max_elapsed(ZERO)` was sent): a request a service below keeps and sends again
        // later is a new call once the deadline has passed.
        let timeout = Deadline::bound(&extensions, self.config.attempt_timeout);
        extensions.remove::<DeadlineVoucher>();
        let fut = self
            .inner
            .call(self.http_request(body, callers_bytes, extensions));
        ResponseFuture::new(fut, expected, self.config.response_limit, timeout, decode)
    }
}

impl<S> fmt::Debug for JsonRpcCodec<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonRpcCodec")
            .field("inner", &self.inner)
            .field("uri", &Redacted(&self.config.uri))
            .field("response_limit", &self.config.response_limit)
            .finish()
    }
}

impl<S, B> Service<Request> for JsonRpcCodec<S>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B, Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_inner_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(err) = self.not_ready.take() {
            return ResponseFuture::failed(err, decode_single);
        }
        if let Err(e) = request.check_params() {
            return self.refuse(Error::invalid_request(e), decode_single);
        }
        let expected = Expected {
            awaited: match request.id() {
                Some(id) => Awaited::Single(id.clone()),
                None => Awaited::Notification,
            },
            keep_raw: self.config.keep_raw,
            values: self.config.values(request.extensions()),
        };
        let extensions = request.take_extensions();
        let body = self.attempt_body(None, || encode(&request));
        self.send(body, extensions, expected, decode_single)
    }
}

impl<S, B> Service<BatchRequest> for JsonRpcCodec<S>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = BatchResponse;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B, BatchResponse>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_inner_ready(cx)
    }

    fn call(&mut self, mut batch: BatchRequest) -> Self::Future {
        if let Some(err) = self.not_ready.take() {
            return ResponseFuture::failed(err, decode_batch);
        }
        if batch.is_empty() {
            // The specification makes an empty batch invalid: refuse it unsent.
            return self.refuse(
                Error::invalid_request(DecodeError::EmptyBatch),
                decode_batch,
            );
        }
        if let Err(e) = batch.requests().iter().try_for_each(Request::check_params) {
            return self.refuse(Error::invalid_request(e), decode_batch);
        }
        if let Some(id) = repeated_id(&batch) {
            let error = Error::invalid_request(DecodeError::DuplicateId(id));
            return self.refuse(error, decode_batch);
        }
        let expected = Expected {
            awaited: Awaited::Batch(batch.ids().cloned().collect()),
            keep_raw: self.config.keep_raw,
            values: self.config.values(batch.extensions()),
        };
        let extensions = batch.take_extensions();
        let body = self.attempt_body(Some(batch.len()), || {
            splice(batch.requests().iter().map(|r| (r, r.extensions())))
        });
        self.send(body, extensions, expected, decode_batch)
    }
}

/// Serializes a message; requests hold only JSON values and strings, which always serialize.
fn encode<T: serde::Serialize>(message: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

/// An id two calls of `batch` share, if any: their answers could not be told apart, so
/// the batch is not sent.
pub(crate) fn repeated_id(batch: &BatchRequest) -> Option<Id> {
    let mut ids: Vec<&Id> = batch.ids().collect();
    ids.sort_unstable();
    ids.windows(2).find_map(|pair| match pair {
        [a, b] if a == b => Some((*a).clone()),
        _ => None,
    })
}
