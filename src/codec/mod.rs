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
//! | 2xx to a batch | `Ok(BatchResponse)`, items matched by id in any order; a missing, repeated or unknown id is a decode error |
//! | 2xx to a batch of notifications only | `Ok(BatchResponse)` with no items; the body is read only for a refusal (an error with a null id: the batch's error, or kept in [`unmatched`](crate::jsonrpc::BatchResponse::unmatched)), and one that is not JSON-RPC, breaks off, passes the limit or outlasts the attempt is delivered all the same, as for a single notification |
//! | non-2xx whose body is a JSON-RPC response to the request (its id, or a null id with an error) | that response, with the [`StatusCode`](http::StatusCode) in its extensions |
//! | non-2xx otherwise (also a single answer to another call, to a batch, and a body over the limit) | `Err`, [`Error::is_status`], with [`Error::status`] and [`Error::retry_after`] |
//! | 2xx, body over the limit | `Err`, [`Error::is_body_too_large`], found while streaming |
//! | the inner service fails | `Err`, [`Error::is_transport`], the inner error in `source()` |
//! | the codec's [`attempt_timeout`](JsonRpcCodecLayer::attempt_timeout) runs out (head or body; not the body of a 2xx answer to a notification or a batch of notifications only, which is delivered) | `Err`, [`Error::is_timeout`], tower's `Elapsed` in `source()` |
//! | (an empty batch, two calls with one id, params that are not an array or an object, or, in [`Client`](crate::Client)'s stacks, a URI without scheme and host: never sent) | `Err`, [`Error::is_invalid_request`] |
//!
//! A `Retry-After` header, on any answer, is recorded as [`RetryAfter`] in the
//! response's extensions (a batch's and each of its items', and in
//! [`Error::retry_after`]). The request's extensions are
//! moved onto the HTTP request, so HTTP-level layers can read per-request settings.
//!
//! ```
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use serde_json::json;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
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

mod error;
pub mod future;
mod layer;
mod retry_after;

pub use error::Error;
pub use layer::JsonRpcCodecLayer;
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
use serde_json::Value;
use serde_json::value::RawValue;
use tower_service::Service;

use crate::BoxError;
use crate::GaveUp;
use crate::jsonrpc::members::{self, Shape};
use crate::jsonrpc::{BatchRequest, BatchResponse, DecodeError, Id, Request, Response};
use future::{Decode, ResponseFuture};

/// The default largest response body: 10 MiB, enough for large `eth_getLogs` answers
/// while a hostile server cannot make a caller buffer without bound.
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

#[derive(Clone)]
struct Config {
    uri: Uri,
    headers: HeaderMap,
    response_limit: usize,
    attempt_timeout: Option<Duration>,
    /// Keep a single response's head and body bytes in its extensions ([`RawAnswer`]),
    /// for the HTTP-level retry layer, which hands them on unchanged. The response's
    /// result is then not built (it reads `null`): no retry decision reads a result, and
    /// the caller gets the bytes.
    keep_raw: bool,
    /// Refuse to send without a scheme and host in the URI, for an inner HTTP client
    /// that needs them (hyper-util's, in [`Client`](crate::Client)'s stacks): it would
    /// refuse such a request itself, with a message that does not say why.
    absolute_uri: bool,
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

/// A URI for `Debug` output, without what often holds a credential: user information,
/// and the path and query (an API key, as in `https://mainnet.infura.io/v3/<key>`),
/// shown as `/…` unless the path is `/` alone.
struct Redacted<'a>(&'a Uri);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(host) = uri.host() {
            f.write_str(host)?;
        }
        if let Some(port) = uri.port_u16() {
            write!(f, ":{port}")?;
        }
        match uri.path_and_query().map(http::uri::PathAndQuery::as_str) {
            None | Some("" | "/") => f.write_str("/"),
            Some(_) => f.write_str("/…"),
        }
    }
}

/// Marks the values of headers that carry credentials as sensitive, so that `Debug`
/// output shows `Sensitive` instead (and HTTP/2 never indexes them).
fn mark_sensitive(name: &http::HeaderName, value: &mut HeaderValue) {
    use http::header::{COOKIE, PROXY_AUTHORIZATION};
    const SECRET_WORDS: [&str; 6] = ["key", "token", "secret", "auth", "password", "session"];
    if [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(name)
        || SECRET_WORDS.iter().any(|word| name.as_str().contains(word))
    {
        value.set_sensitive(true);
    }
}

impl Config {
    fn new(uri: Uri) -> Self {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let (uri, credentials) = take_user_info(uri);
        if let Some(credentials) = credentials {
            headers.insert(AUTHORIZATION, credentials);
        }
        Self {
            uri,
            headers,
            response_limit: DEFAULT_BODY_LIMIT,
            attempt_timeout: None,
            keep_raw: false,
            absolute_uri: false,
        }
    }
}

/// The URI without its user information, and that information as the value of an
/// `Authorization: Basic` header (RFC 7617), marked sensitive: hyper sends neither the
/// user information nor a header made of it, so without this a server that wants the
/// credentials written in the URI (`http://user:password@host/`) would refuse every call
/// with 401, and nothing would say why. Percent-escapes in it are decoded first (RFC 3986
/// 3.2.1: `%40` for an `@` in a password). A user without a password is sent with an
/// empty one, as curl does; an empty `@` is dropped.
fn take_user_info(uri: Uri) -> (Uri, Option<HeaderValue>) {
    use base64::Engine as _;
    use percent_encoding::percent_decode_str;

    let Some((user_info, host)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) else {
        return (uri, None);
    };
    let Ok(host) = http::uri::Authority::try_from(host) else {
        return (uri, None);
    };
    let credentials = (!user_info.is_empty()).then(|| {
        let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
        let mut plain: Vec<u8> = percent_decode_str(user).collect();
        plain.push(b':');
        plain.extend(percent_decode_str(password));
        let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
        HeaderValue::try_from(format!("Basic {encoded}")).map(|mut value| {
            value.set_sensitive(true);
            value
        })
    });
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(host);
    match (Uri::from_parts(parts), credentials.transpose()) {
        (Ok(stripped), Ok(credentials)) => (stripped, credentials),
        // Neither can fail (the host is part of a valid URI, base64 is ASCII): the URI
        // stays as it was rather than lose what it says.
        _ => (uri, None),
    }
}

/// The `Retry-After` of an exchange that failed as a whole after a batch had gathered
/// answers (`None`: it had none): the server's latest word on time, which replaces the
/// one in the head of an answer kept as it came.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LatestHint(pub(crate) Option<std::time::Duration>);

/// The HTTP answer a single response was decoded from, kept when [`Config::keep_raw`]
/// is set.
#[derive(Clone, Debug)]
pub(crate) struct RawAnswer {
    pub(crate) head: http::response::Parts,
    pub(crate) body: Bytes,
}

/// A batch item's own bytes, as the caller sent it or as the server answered it. The
/// HTTP-level layer puts them in each request's extensions, and a codec that keeps raw
/// answers in each answered item's, so that an item goes on byte for byte even when the
/// batch around it is made anew (serde_json would, for one, turn an integer beyond 64
/// bits into a float).
#[derive(Clone, Debug)]
pub(crate) struct RawItem(pub(crate) Bytes);

/// The head of an HTTP request that the HTTP-level retry layer took apart, set on the
/// codec that serves it (each call has its own clone of the stack): every attempt is
/// sent with this head instead of the codec's own and, while it sends the whole message,
/// with the caller's bytes instead of a fresh encoding.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: http::Version,
    pub(crate) headers: HeaderMap,
    /// The caller's bytes: every attempt of a single call sends them as they are, and so
    /// does every attempt of a batch that sends all its [`items`](Self::items); a retry
    /// that narrows a batch sends those items' own bytes in a new array.
    pub(crate) body: Bytes,
    /// For a batch, how many items the caller's bytes hold; `None` for a single call.
    pub(crate) items: Option<usize>,
}

/// Marks a batch attempt whose answer will be gathered with answers already kept (a
/// re-send after an answered exchange), set by the policy. The HTTP-level layer must read
/// that answer to merge it, so such an attempt asks for it unencoded
/// (`Accept-Encoding: identity`) when the caller's head asked for an encoding: an answer
/// the layer cannot read could not be merged, and the server's answers in it would be
/// lost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gathering;

/// When the whole call must be over: set by [`JsonRpcRetry`](crate::retry::JsonRpcRetry)
/// on a call whose strategy has [`max_elapsed`](crate::RetryStrategy::max_elapsed) (and
/// by the policy on the copies it keeps for retries), read by the codec to bound each
/// attempt to what is left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(pub(crate) tokio::time::Instant);

/// Vouches that a request's [`Deadline`] is the call's under way: set by the retry layer
/// that stamped it, for the next look at it in the same call (the policy's copy for
/// retries, or the JSON-RPC stack under the HTTP-level layer), and taken off before the
/// request goes below the layer. A deadline found past without it is left over from an
/// earlier call; with it, it is this call's, reached a moment ago (on a clock that moved
/// between the two looks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadlineVoucher;

impl Deadline {
    /// Drops a deadline already past, unless a [`DeadlineVoucher`] vouches for it (and
    /// takes the voucher off): it is left over from an earlier call (a request a layer
    /// below kept and sends again), as a live call's deadline is never past when one of
    /// its attempts starts.
    pub(crate) fn drop_stale(extensions: &mut http::Extensions) {
        let vouched = extensions.remove::<DeadlineVoucher>().is_some();
        if !vouched && Self::passed(extensions) {
            extensions.remove::<Deadline>();
        }
    }

    /// Whether the call's deadline, if it has one, is already past (not merely now: an
    /// attempt that starts at its deadline is made, and cut at once).
    pub(crate) fn passed(extensions: &http::Extensions) -> bool {
        extensions
            .get::<Deadline>()
            .is_some_and(|Deadline(at)| *at < tokio::time::Instant::now())
    }

    /// Gives a call this deadline, `limit` from now, unless it already has one as early
    /// (set by a retry layer further out, or for the same call a moment ago); returns
    /// the deadline the call has now.
    pub(crate) fn set(extensions: &mut http::Extensions, limit: Duration) -> Deadline {
        let now = tokio::time::Instant::now();
        // Beyond what `Instant` holds: a time no deadline reaches (about 30 years out,
        // as tokio's own "far future").
        let at = now
            .checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
        match extensions.get::<Deadline>() {
            Some(earlier) if earlier.0 <= at => *earlier,
            _ => {
                extensions.insert(Deadline(at));
                Deadline(at)
            }
        }
    }

    /// What is left before the call's deadline, if it has one.
    pub(crate) fn left(extensions: &http::Extensions) -> Option<Duration> {
        Self::bound(extensions, None)
    }

    /// How long an attempt may take: `timeout`, cut to what is left before the call's
    /// deadline, if it has one.
    pub(crate) fn bound(
        extensions: &http::Extensions,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        match extensions.get::<Deadline>() {
            Some(Deadline(at)) => {
                let left = at.saturating_duration_since(tokio::time::Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        }
    }
}

/// What the answer to a request must look like, and whether the codec keeps it.
#[derive(Debug)]
struct Expected {
    awaited: Awaited,
    /// Whether to keep the answer ([`Config::keep_raw`]): for a notification, its head.
    keep_raw: bool,
}

/// The message an answer is awaited for.
#[derive(Debug)]
enum Awaited {
    Notification,
    /// A call, with its id.
    Single(Id),
    /// A batch, with the ids of its calls.
    Batch(Vec<Id>),
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
/// See the [module docs](self) for how answers are decoded, and [`JsonRpcCodecLayer`]
/// to build one in a `ServiceBuilder`. `poll_ready` waits for the inner service's; an
/// error it reports there is returned by the next call instead, as a transport error,
/// so that a retry policy above sees it like any other failed attempt (tower's `Retry`
/// would otherwise return a readiness error without asking its policy, and a partly
/// retried batch would lose the answers it had gathered). The inner instance that
/// reported it is let go at once for a clone, as tower's contract asks: it may hold
/// what it reserved (a `ConcurrencyLimit` permit) and may not be polled again. So the
/// inner service is `Clone`, as every retrying stack needs it to be. A service that is
/// not can go behind tower's `Buffer`, whose worker ends at the first readiness error of
/// the service it holds: then every call fails from there on, so a service that fails
/// readiness and recovers (tower's `Reconnect`) is better made `Clone` with a handle of
/// its own per clone.
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
    pub fn uri(&self) -> &Uri {
        &self.config.uri
    }

    /// The inner HTTP service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner HTTP service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner HTTP service, by value.
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
            }
        }
        *req.extensions_mut() = extensions;
        req
    }
}

impl<S, B> JsonRpcCodec<S>
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// POSTs an encoded message; what comes back is decoded by `decode`.
    fn send<T>(
        &mut self,
        (body, callers_bytes): (Bytes, bool),
        mut extensions: http::Extensions,
        expected: Expected,
        decode: Decode<T>,
    ) -> ResponseFuture<S::Future, B, T> {
        let uri = &self.config.uri;
        if self.config.absolute_uri
            && self.origin.is_none()
            && (uri.scheme().is_none() || uri.authority().is_none())
        {
            return ResponseFuture::failed(Error::relative_uri(), decode);
        }
        // A retry layer's deadline for the whole call cuts this attempt short too; it
        // goes no further down than here.
        let timeout = Deadline::bound(&extensions, self.config.attempt_timeout);
        extensions.remove::<Deadline>();
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
            return ResponseFuture::failed(Error::invalid_request(e), decode_single);
        }
        let expected = Expected {
            awaited: match request.id() {
                Some(id) => Awaited::Single(id.clone()),
                None => Awaited::Notification,
            },
            keep_raw: self.config.keep_raw,
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
            return ResponseFuture::failed(
                Error::invalid_request(DecodeError::EmptyBatch),
                decode_batch,
            );
        }
        if let Err(e) = batch.requests().iter().try_for_each(Request::check_params) {
            return ResponseFuture::failed(Error::invalid_request(e), decode_batch);
        }
        if let Some(id) = repeated_id(&batch) {
            return ResponseFuture::failed(
                Error::invalid_request(DecodeError::DuplicateId(id)),
                decode_batch,
            );
        }
        let expected = Expected {
            awaited: Awaited::Batch(batch.ids().cloned().collect()),
            keep_raw: self.config.keep_raw,
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

/// A batch's items as a JSON array: an item that carries its own bytes ([`RawItem`]) is
/// written as those bytes, any other is serialized.
pub(crate) fn splice<'a, T: serde::Serialize + 'a>(
    items: impl Iterator<Item = (&'a T, &'a http::Extensions)>,
) -> Bytes {
    let mut out = Vec::with_capacity(2 + 64 * items.size_hint().0);
    out.push(b'[');
    for (i, (item, extensions)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match extensions.get::<RawItem>() {
            Some(RawItem(raw)) => out.extend_from_slice(raw),
            // Messages hold only JSON values and strings, which always serialize.
            None => serde_json::to_writer(&mut out, item).unwrap_or_default(),
        }
    }
    out.push(b']');
    Bytes::from(out)
}

/// Records what the HTTP exchange says beyond the body: a non-2xx status, a Retry-After,
/// and how the retries of an HTTP-level retry layer below ended.
/// Returns the hint, for a batch's items.
fn record_exchange(
    extensions: &mut http::Extensions,
    parts: &http::response::Parts,
) -> Option<RetryAfter> {
    if !parts.status.is_success() {
        extensions.insert(parts.status);
    }
    let hint = RetryAfter::from_headers(&parts.headers);
    if let Some(hint) = hint {
        extensions.insert(hint);
    }
    if let Some(gave_up) = parts.extensions.get::<GaveUp>() {
        extensions.insert(*gave_up);
    }
    hint
}

fn status_error(parts: &http::response::Parts) -> Error {
    with_gave_up(Error::from_status(parts.status, retry_after(parts)), parts)
}

/// `err`, with how the retries of an HTTP-level retry layer below ended, if it gave up
/// on the answer.
fn with_gave_up(mut err: Error, parts: &http::response::Parts) -> Error {
    if let Some(gave_up) = parts.extensions.get::<GaveUp>() {
        err.set_gave_up(*gave_up);
    }
    err
}

/// The answer's `Retry-After`, as a delay.
fn retry_after(parts: &http::response::Parts) -> Option<std::time::Duration> {
    RetryAfter::from_headers(&parts.headers).map(|r| r.delay())
}

/// A non-2xx answer that is not a JSON-RPC answer to the call: a status error, with the
/// answer itself kept when the codec keeps raw answers.
fn status_answer(parts: http::response::Parts, body: Bytes, keep_raw: bool) -> Error {
    let err = status_error(&parts);
    keeping_raw(err, keep_raw, parts, body)
}

/// An answer whose body could not be read as JSON-RPC. When the codec keeps raw
/// answers and the body is content-encoded (the caller asked for gzip, say, and can read
/// it), the answer is kept with the error, to be handed back as it came.
fn decode_failure(
    e: DecodeError,
    parts: http::response::Parts,
    body: Bytes,
    keep_raw: bool,
) -> Error {
    let mut err = with_gave_up(Error::decode(e, parts.status, retry_after(&parts)), &parts);
    let coding = parts
        .headers
        .get(CONTENT_ENCODING)
        .filter(|coding| !coding.as_bytes().eq_ignore_ascii_case(b"identity"));
    let encoded = coding.is_some();
    if let Some(coding) = coding {
        // What the caller would look for first: the JSON error says only where the
        // bytes went wrong.
        err = err.with_coding(coding.clone());
    }
    keeping_raw(err, keep_raw && encoded, parts, body)
}

/// `err`, with the answer it came from kept when `keep` (for the HTTP-level layer).
fn keeping_raw(err: Error, keep: bool, head: http::response::Parts, body: Bytes) -> Error {
    if keep {
        err.with_raw(RawAnswer { head, body })
    } else {
        err
    }
}

fn decode_single(
    expected: Expected,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<Response, Error> {
    let Expected { awaited, keep_raw } = expected;
    let expected_id = match awaited {
        Awaited::Single(id) => id,
        Awaited::Notification if parts.status.is_success() => {
            let mut response = Response::new(Id::Null, Ok(Value::Null));
            record_exchange(response.extensions_mut(), &parts);
            if keep_raw {
                // The answer's head as it came; its body, empty by the specification,
                // is not kept.
                response.extensions_mut().insert(RawAnswer {
                    head: without_body(parts),
                    body: Bytes::new(),
                });
            }
            return Ok(response);
        }
        Awaited::Notification => return Err(status_answer(parts, body, keep_raw)),
        Awaited::Batch(_) => return Err(status_error(&parts)),
    };
    let decoded = if crate::jsonrpc::is_blank(&body) {
        Err(DecodeError::EmptyBody)
    } else {
        Response::from_single_answer(&body, !keep_raw)
    };
    let mut response = match decoded {
        Ok(response) => response,
        Err(_) if !parts.status.is_success() => {
            return Err(status_answer(parts, body, keep_raw));
        }
        Err(e) => return Err(decode_failure(e, parts, body, keep_raw)),
    };
    // The specification lets a server that could not read the id answer an error with a
    // null id; anything else must be the id that was sent.
    let answers =
        response.id() == &expected_id || (response.id() == &Id::Null && response.is_error());
    if !answers && !parts.status.is_success() {
        // Not an answer to this call, under a failure status: the status is the answer.
        return Err(status_answer(parts, body, keep_raw));
    }
    if !answers {
        let found = response.id().clone();
        return Err(Error::decode(
            DecodeError::IdMismatch {
                expected: expected_id,
                found,
            },
            parts.status,
            retry_after(&parts),
        ));
    }
    record_exchange(response.extensions_mut(), &parts);
    if keep_raw {
        response
            .extensions_mut()
            .insert(RawAnswer { head: parts, body });
    }
    Ok(response)
}

fn decode_batch(
    expected: Expected,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<BatchResponse, Error> {
    let Expected {
        awaited: Awaited::Batch(ids),
        keep_raw,
    } = expected
    else {
        return Err(status_error(&parts));
    };
    if ids.is_empty() && parts.status.is_success() {
        // Only notifications: nothing to answer, unless the server refused the batch as
        // a whole (an error with a null id, as a rate limiter answers) or some of its
        // notifications (null-id errors in an array: it could not read them), which is
        // kept for the caller as in a batch with calls; anything else in the body is
        // passed over.
        let mut batch = BatchResponse::from_answer(&body, &ids, !keep_raw)
            .ok()
            .filter(|batch| batch.batch_error().is_some() || !batch.unmatched().is_empty())
            .unwrap_or_default();
        record_exchange(batch.extensions_mut(), &parts);
        if keep_raw {
            batch
                .extensions_mut()
                .insert(RawAnswer { head: parts, body });
        }
        return Ok(batch);
    }
    // Only notifications, under a failure status: an error for the whole batch (a null
    // id) answers it; anything else (an empty body, `[]`, errors for single items) is no
    // JSON-RPC answer to a batch of notifications, so the status is.
    let read = BatchResponse::from_answer(&body, &ids, !keep_raw);
    if ids.is_empty()
        && !read
            .as_ref()
            .is_ok_and(|batch| batch.batch_error().is_some())
    {
        return Err(status_answer(parts, body, keep_raw));
    }
    let mut batch = match read {
        Ok(batch) => batch,
        // Under a failure status, a body that does not answer the batch (a gateway's own
        // error to some other call, say) leaves the status as the answer.
        Err(_) if !parts.status.is_success() => return Err(status_answer(parts, body, keep_raw)),
        Err(e) => return Err(decode_failure(e, parts, body, keep_raw)),
    };
    let hint = record_exchange(batch.extensions_mut(), &parts);
    // Each item came with this status and hint too: a retry rule on the status applies
    // to batch items as it does to single responses, and a caller told a call's error
    // is told the answer's `Retry-After` with it.
    let failed = (!parts.status.is_success()).then_some(parts.status);
    if failed.is_some() || hint.is_some() {
        for item in batch.items_mut() {
            if let Some(status) = failed {
                item.extensions_mut().insert(status);
            }
            if let Some(hint) = hint {
                item.extensions_mut().insert(hint);
            }
        }
    }
    if keep_raw {
        keep_items(&mut batch, &body);
        batch
            .extensions_mut()
            .insert(RawAnswer { head: parts, body });
    }
    Ok(batch)
}

/// Gives each item of `batch` its own bytes from the answer's `body` ([`RawItem`]), so a
/// batch answer gathered from several exchanges is still made of the server's bytes. A
/// null-id error that answers a call (by elimination, or as the error that refused the
/// whole batch) is written anew with that call's id around the server's error object, as
/// it wrote it; one that no call took keeps its bytes. An answer to a call sent with a
/// null id keeps its bytes like any other.
fn keep_items(batch: &mut BatchResponse, body: &Bytes) {
    let Some(items) = array_items(body) else {
        // One error object refused the whole batch: every call carries it.
        if let Ok(Shape::Object(found)) = members::read(body) {
            if let Some(error) = found.error {
                let error = body.slice_ref(error.get().as_bytes());
                for item in batch.items_mut() {
                    let own = with_id(&error, item.id());
                    item.extensions_mut().insert(RawItem(own));
                }
            }
        }
        return;
    };
    let position = batch.positions();
    // The null-id errors no call took by its id, in the server's order: the batch's
    // decoder gives them, in that order, to the calls left unanswered (in call order),
    // and the rest are unmatched.
    let mut orphans = Vec::new();
    for own in items {
        let Ok(Shape::Object(found)) = members::read(&own) else {
            continue;
        };
        let Some(Ok(id)) = found.id.map(members::id) else {
            continue;
        };
        let error = found.error.map(|e| own.slice_ref(e.get().as_bytes()));
        match position
            .get(&id)
            .and_then(|&i| batch.items_mut().get_mut(i))
        {
            Some(item) => {
                item.extensions_mut().insert(RawItem(own));
            }
            None => {
                if let (Id::Null, Some(error)) = (id, error) {
                    orphans.push((own, error));
                }
            }
        }
    }
    let mut orphans = orphans.into_iter();
    for item in batch.items_mut() {
        if item.extensions().get::<RawItem>().is_none() {
            if let Some((_, error)) = orphans.next() {
                let own = with_id(&error, item.id());
                item.extensions_mut().insert(RawItem(own));
            }
        }
    }
    for (item, (own, _)) in batch.unmatched_mut().iter_mut().zip(orphans) {
        item.extensions_mut().insert(RawItem(own));
    }
}

/// An error answer with this id around an error object's bytes as the server wrote them.
fn with_id(error: &[u8], id: &Id) -> Bytes {
    let mut out = Vec::with_capacity(error.len() + 48);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","error":"#);
    out.extend_from_slice(error);
    out.extend_from_slice(br#","id":"#);
    // An id is a number, a string or null, which always serialize.
    serde_json::to_writer(&mut out, id).unwrap_or_default();
    out.push(b'}');
    Bytes::from(out)
}

/// The items of a JSON array, each as its own bytes (slices of `body`, not copies);
/// `None` if `body` is not a JSON array.
pub(crate) fn array_items(body: &Bytes) -> Option<Vec<Bytes>> {
    let items = serde_json::from_slice::<Vec<&RawValue>>(body).ok()?;
    Some(
        items
            .into_iter()
            .map(|raw| body.slice_ref(raw.get().as_bytes()))
            .collect(),
    )
}
