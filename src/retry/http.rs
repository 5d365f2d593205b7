//! The same retries for raw HTTP stacks: a layer over any `Service<http::Request<B>>`.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use super::event::{AttemptFailure, GiveUpEvent, GiveUpReason, announce_give_up, named_call};
use super::layer::JsonRpcRetry;
use super::strategy::RetryStrategy;
use crate::BoxError;
use crate::codec::{
    self, DEFAULT_BODY_LIMIT, Deadline, DeadlineVoucher, JsonRpcCodec, JsonRpcCodecLayer, Origin,
    RawAnswer,
};
use crate::fused::Fused;
use crate::jsonrpc::Request;

mod answer;
mod future;
mod message;

use answer::{answer_error, batch_answer, raw_response, single_answer};
pub use future::HttpRetryFuture;
use future::{Failure, elapsed};
use message::{FirstByte, Message, parse, request_too_large};

/// Retries JSON-RPC over HTTP at the HTTP level, for stacks that only take HTTP layers.
///
/// For jsonrpsee's `HttpClientBuilder::set_http_middleware` (the crate docs show it),
/// or a `hyper` client used directly:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower::{Layer, ServiceExt};
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer, RetryStrategy, http};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// let server = FlakyServer::start().await?;
/// server.script("sum", [Step::status(503)]);
///
/// let hyper = hyper_util::client::legacy::Client::builder(
///     hyper_util::rt::TokioExecutor::new(),
/// )
/// .build_http::<Full<Bytes>>();
/// let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient())
///     .attempt_timeout(Duration::from_secs(2))
///     .layer(hyper);
///
/// let request = http::Request::post(server.uri())
///     .header(http::header::CONTENT_TYPE, "application/json")
///     .body(Full::from(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#))?;
/// let answer = svc.oneshot(request).await?;
/// assert_eq!(answer.status(), http::StatusCode::OK);
/// let body = answer.into_body().collect().await?.to_bytes(); // the server's bytes
/// let body: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(body["result"], 3);
/// assert_eq!(server.calls("sum"), 2);
/// # Ok(())
/// # }
/// ```
///
/// Made by [`JsonRpcRetryLayer::http`](crate::JsonRpcRetryLayer::http). Each request's
/// body is read once (up to a limit) and decoded as a JSON-RPC request or batch; from
/// there the very same machinery as the JSON-RPC layer decides and retries — the
/// [`JsonRpcRetryPolicy`](crate::JsonRpcRetryPolicy) under tower's `Retry`, over the
/// [`JsonRpcCodec`] — with every attempt sent to the inner service with the original
/// method, URI, version and headers, and a body of the same type rebuilt from the
/// buffered bytes. The final
/// answer is handed back as an `http::Response<Full<Bytes>>` (its status kept), so the
/// caller reads the body as before. A per-request [`RetryStrategy`] is read from the
/// `http::Request`'s extensions; where a client gives its requests none (jsonrpsee's), a
/// method's strategy ([`RetryStrategy::for_method`]) gives its calls rules of their own.
///
/// # What is sent, and what comes back
///
/// - **A single call**: every attempt sends the caller's bytes unchanged. The answer is
///   the last attempt's HTTP answer as it came: its status, its headers (rate-limit
///   headers included) and its bytes, whether it carries a JSON-RPC body or is a bare
///   non-2xx status. The body comes whole, so it goes without `Transfer-Encoding` (and
///   a `Content-Length` sent beside that, which the chunked framing overrode) and
///   without `Trailer`.
/// - **A notification** is sent the same way, and its answer comes back with the
///   server's status and headers. The body of a 2xx answer, empty by the specification,
///   is not handed back: up to 64 KiB of it is read and thrown away, waiting 100 ms at
///   most, so that the connection can be used again; the headers that describe that
///   body (`Content-Length`, `Transfer-Encoding`, `Content-Encoding`, the digest
///   headers) go with it.
/// - **A batch answered in one exchange** is sent as the caller's bytes (all its items go:
///   the first attempt, or a retry of every item), and its answer comes back as it came.
///   (After a retry of every item, answers no call took in an earlier exchange, if
///   any, follow its items, in a body the layer writes as for a batch retried in part,
///   under the same head, but with the last answer's status, 200 for any 2xx.)
///   A 2xx answer that does not answer each call once, by id (a missing, repeated or
///   unknown id, which a client left to itself might pair with the wrong call), is the
///   layer's decode error, as over the codec; geth's refusal of a batch too large (one
///   `-32600` error under the first call's id) is read as every call's, as there too.
/// - **A batch retried in part**: a retry that sends only some items sends a new array of
///   those items' own bytes, without the caller's digest headers (`Content-Digest`,
///   `Repr-Digest`, `Digest` and `Content-MD5`), which the new body would not match; a
///   signature over the body in another header cannot hold for it either, and a server
///   that keeps an `Idempotency-Key` (the IETF draft) answers the key sent again with
///   another body with a refusal (422) or with the whole batch's stored answer, whose
///   ids the re-send did not carry (a decode error): send such a batch without the key,
///   or with no rule on codes its items carry alone. The answer is gathered from every
///   exchange into one array of the items as the server wrote them:
///   - a null-id error the layer gives a call (by elimination, or as the error that
///     refused the whole batch, geth's too for the calls it does not name) is written
///     anew with that call's id, around the server's error object as it wrote it;
///   - the answers no call took go last, every exchange's, with the refusal of the whole
///     batch when a retry did not send a non-idempotent notification of it again (as
///     the server wrote it, or for geth's, its error object under a null id: not a
///     second answer to the call it names, unless that call's own id is null);
///   - its status is 200, whatever status the exchanges were answered under: every
///     call's failure is in the body, and a caller that refuses a non-2xx batch answer
///     as a whole, as jsonrpsee does, would otherwise lose the calls that succeeded
///     (a reason phrase hyper kept from the status line it replaces goes with it);
///   - it goes under the head of the last exchange that answered: its HTTP version, its
///     extensions (less a reason phrase for a status replaced and a wait hint the
///     layer's `Retry-After` replaces) and its headers (a request id, rate-limit
///     headers), less those that describe that exchange's own body (`Content-Length`,
///     `Transfer-Encoding`, `Content-Encoding`, the digest headers) or that version,
///     place or sign it (`ETag`, `Last-Modified`, `Content-Range`, `Content-Location`,
///     `Signature`, `Signature-Input`), and `Trailer`; with `Content-Type:
///     application/json`;
///   - it carries the last exchange's `Retry-After`, in delay-seconds (rounded up from
///     an HTTP-date).
/// - **A retried batch whose last exchange failed as a whole** (a 429 without a JSON-RPC
///   answer, say): the answers gathered before come back as they would have (under 200
///   if the batch was retried in part), with that exchange's `Retry-After` (none for a
///   bare status without one, the server's word), or, after a failure that is no word
///   of the server's on time (an answer that is not JSON-RPC, a broken body, a timeout),
///   what is left now of the `Retry-After` before it, counted from when it came; and
///   the record in the response's extensions says that the last attempt went
///   unanswered, unless it provably never reached the server
///   ([`last_attempt_unanswered`](crate::GaveUp::last_attempt_unanswered)).
/// - **A body that is not JSON-RPC** is sent once, untouched, within the same limits,
///   attempt timeout and deadline. So is a message whose answer the layer could not
///   match to each call, whatever the strategy says: an id other than a string, null or
///   an integer within `i64` (`1.5`, `1e2`, `18446744073709551615`; see
///   [`Id`](crate::jsonrpc::Id)), a batch with an item that is not a request object, or
///   with two calls of one id. And a call that gives its `method` or its `id` twice:
///   servers differ on which one they read, so which method would run again, and
///   under which id the answer comes, is not known. No hook hears of it, as no retry was decided; with the
///   `tracing` feature, a debug event says why it went once (when the strategy can
///   retry at all; quoting nothing of the body but a repeated id).
///
/// Results are checked as JSON but not built, unless a strategy has a rule on them
/// ([`RetryStrategy::retry_result_if`]): then built where serde_json can hold them, and
/// one it cannot hold is read by no rule. Error `data` is built for the response
/// rules to read when serde_json can hold it, and left out of the decision when it
/// cannot (a number beyond `f64`, deep nesting); either way the answer goes through as
/// the server's bytes.
///
/// A 2xx answer whose body is content-encoded (the caller asked for gzip, say) cannot be
/// read by the layer, so no rule applies to it (not one on decode errors or statuses
/// either: it is the server's answer, not a failure), no hook hears of it and no
/// [`GaveUp`](crate::GaveUp) is recorded on it: it comes back as it came, for the caller
/// to decode. (An encoded answer under a failure status is decided on by its status.)
/// A batch sent again after an answer, whose answer the layer gathers with the ones
/// kept, goes with `Accept-Encoding: identity` in place of the caller's: an answer the
/// layer could not read could not be gathered, and the server's answers in it would be
/// lost (one encoded anyway is a decode error, for the rules to decide on). The
/// gathered answer is not encoded either.
///
/// Trailers are not carried, either way: the request is sent from its buffered bytes,
/// and the answer handed back as `Full<Bytes>` (JSON-RPC over HTTP does not use them),
/// without a `Trailer` header announcing any.
///
/// # Errors
///
/// The output error type is `E`, [`BoxError`] unless [`map_err`](Self::map_err) names
/// another: the inner error of the last attempt is returned as it was (through
/// `E: From` the inner error), and an error found by the layer itself (a body over the
/// limit, a response that is not JSON-RPC) is turned into `E` by the function given to
/// `map_err`. A stack that names its error type needs `map_err` to give it that type:
/// **inside jsonrpsee it is required**,
/// `.map_err(|e| TransportError::Http(HttpError::Stream(e)))` (see the example in the
/// crate docs); without it, jsonrpsee's `build` fails to compile with a bound on
/// `RpcLogger`/`RpcServiceT` that names the error type
/// (`Error = jsonrpsee::…::transport::Error`), not this layer.
///
/// # What the inner service must be
///
/// - `Clone + Send + 'static`, with a `Send` future: each attempt goes through a clone,
///   from the call's boxed future. hyper-util's client and jsonrpsee's transport are;
///   wrap one that is not `Clone` in tower's `Buffer` (whose error then needs the next
///   point).
/// - Its request body `B` is built from the buffered bytes: `B: From<Vec<u8>>`, as
///   `Full<Bytes>` and jsonrpsee's body are (a `String` or a boxed body is not). The
///   caller's request has that body type too: a proxy forwarding hyper's `Incoming`,
///   which cannot be built from bytes, first collects it into a `Full<Bytes>`.
/// - Its error is a `std::error::Error`, returned as it was: hyper-util's and
///   jsonrpsee's are. Layers that box their errors (tower's `TimeoutLayer`, `Buffer`)
///   give a `BoxError`, which is not one: put them above this layer, use
///   [`attempt_timeout`](Self::attempt_timeout) for a timeout per attempt, or turn the
///   boxed error into one below the layer (`.map_err(std::io::Error::other)`; a timeout
///   in it is still recognised: [`ErrorClass`](crate::ErrorClass) and
///   [`retry_on_error`](crate::RetryStrategy::retry_on_error) look inside an
///   `io::Error`, as [`error_chain`](crate::retry::error_chain) does).
/// - Inside jsonrpsee, `E` is jsonrpsee's `transport::Error`: use `attempt_timeout`
///   there, not a tower `TimeoutLayer` below this layer. Its error would have to become a
///   `transport::Error`, and those variants are transparent (their `source()` skips the
///   error they hold), so tower's `Elapsed` put straight into `HttpError::Stream` drops
///   out of the chain and the attempt's timeout is not retried as one. If a boxing layer
///   must sit below, put the boxed error in a wrapper of your own whose `source()` is the
///   boxed error, and that wrapper into `HttpError::Stream`.
pub struct HttpRetryLayer<B, E = BoxError> {
    strategy: RetryStrategy,
    attempt_timeout: Option<Duration>,
    request_limit: usize,
    response_limit: usize,
    map_err: fn(BoxError) -> E,
    _body: PhantomData<fn(B)>,
}

impl<B, E> Clone for HttpRetryLayer<B, E> {
    fn clone(&self) -> Self {
        Self {
            strategy: self.strategy.clone(),
            attempt_timeout: self.attempt_timeout,
            request_limit: self.request_limit,
            response_limit: self.response_limit,
            map_err: self.map_err,
            _body: PhantomData,
        }
    }
}

impl<B, E> fmt::Debug for HttpRetryLayer<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRetryLayer")
            .field("strategy", &self.strategy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("request_limit", &self.request_limit)
            .field("response_limit", &self.response_limit)
            .finish_non_exhaustive()
    }
}

fn identity(e: BoxError) -> BoxError {
    e
}

impl<B> HttpRetryLayer<B> {
    /// A layer whose requests follow `strategy` unless they carry their own; the same
    /// as [`JsonRpcRetryLayer::http`](crate::JsonRpcRetryLayer::http). It warns of a
    /// strategy that retries nothing, as
    /// [`JsonRpcRetryLayer::new`](crate::JsonRpcRetryLayer::new) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::retry::HttpRetryLayer;
    ///
    /// let strategy = RetryStrategy::ethereum_rate_limits();
    /// let layer = HttpRetryLayer::<Full<Bytes>>::new(strategy);
    /// assert!(layer.strategy().can_retry());
    /// ```
    #[must_use]
    pub fn new(strategy: RetryStrategy) -> Self {
        strategy.warn_if_it_retries_nothing();
        Self {
            strategy,
            attempt_timeout: None,
            request_limit: DEFAULT_BODY_LIMIT,
            response_limit: DEFAULT_BODY_LIMIT,
            map_err: identity,
            _body: PhantomData,
        }
    }
}

impl<B> Default for HttpRetryLayer<B> {
    /// A layer with [`RetryStrategy::default()`], the [`transient()`](RetryStrategy::transient) preset.
    fn default() -> Self {
        Self::new(RetryStrategy::default())
    }
}

impl<B, E> HttpRetryLayer<B, E> {
    /// The strategy of requests that carry none of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    ///
    /// type Body = http_body_util::Full<bytes::Bytes>;
    /// let layer = JsonRpcRetryLayer::http::<Body>(RetryStrategy::none())
    ///     .attempt_timeout(Duration::from_secs(2));
    /// assert!(!layer.strategy().can_retry()); // each call is sent once, within 2 s
    /// ```
    pub fn strategy(&self) -> &RetryStrategy {
        &self.strategy
    }

    /// Turns the errors the layer finds itself into the error type `E2` of the stack.
    ///
    /// `f` is a function: a variant or constructor (`MyError::Stream`), a `fn` item, or
    /// a closure that captures nothing. It is kept as a `fn` pointer, so that the layer
    /// stays a type you can name (`HttpRetryLayer<B, E2>`, in a struct field or a type
    /// alias); for context of your own in the error, map it in a layer above, tower's
    /// `MapErr` (`ServiceBuilder::map_err`).
    ///
    /// A concrete error type here is also what lets a task that awaits tower's `Buffer`
    /// over this layer be spawned: with the default, `BoxError`, rustc cannot prove such
    /// a task `Send` ("implementation of `From` is not general enough"), as for `Buffer`
    /// over any service whose error is `BoxError`.
    ///
    /// `E2` is the error of the whole service, so it takes the inner service's errors
    /// too, which pass through unchanged (`E2: From<S::Error>`): over hyper-util's client,
    /// a type with `From<hyper_util::client::legacy::Error>`, such as a wrapper of a
    /// `BoxError` (`std::io::Error` has no such `From`).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer, RetryStrategy};
    ///
    /// #[derive(Debug)]
    /// enum MyError { Stream(BoxError) }
    ///
    /// type Body = http_body_util::Full<bytes::Bytes>;
    /// let layer = JsonRpcRetryLayer::http::<Body>(RetryStrategy::transient()).map_err(MyError::Stream);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn map_err<E2>(self, f: fn(BoxError) -> E2) -> HttpRetryLayer<B, E2> {
        HttpRetryLayer {
            strategy: self.strategy,
            attempt_timeout: self.attempt_timeout,
            request_limit: self.request_limit,
            response_limit: self.response_limit,
            map_err: f,
            _body: PhantomData,
        }
    }

    /// How long one attempt may take; a retry gets a fresh timeout. Timeouts are
    /// classified as [`ErrorClass::Timeout`](crate::ErrorClass::Timeout); but a 2xx
    /// answer to a notification, or to a batch of notifications only, whose body
    /// outlasts it comes back as that 2xx, without its body (the notifications were
    /// delivered).
    ///
    /// Reading the caller's request body, before the first attempt, is bounded by it
    /// too: a body that stalls fails the call with tower's `Elapsed`, not retried (the
    /// bytes to resend were never whole), and told to
    /// [`on_give_up`](RetryStrategy::on_give_up) as
    /// [`NotRetryable`](crate::GiveUpReason::NotRetryable), as a body over the
    /// [`request_limit`](Self::request_limit) is.
    ///
    /// Zero does not mean no limit: every attempt is then cut at once, a timeout, unless
    /// its answer is there at its first poll (a service in the same process), as with
    /// tower's `Timeout`. For no limit, leave it unset.
    ///
    /// # Default
    ///
    /// None: the stack's own timeouts apply (jsonrpsee's `request_timeout` bounds the
    /// whole call, retries included).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::{http, JsonRpcRetryLayer, RetryStrategy};
    /// # use std::convert::Infallible;
    /// # use std::sync::Arc;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let calls = Arc::new(AtomicUsize::new(0));
    /// # let seen = Arc::clone(&calls);
    /// # let node = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
    /// #     let first = seen.fetch_add(1, Ordering::Relaxed) == 0;
    /// #     async move {
    /// #         if first {
    /// #             std::future::pending::<()>().await;
    /// #         }
    /// #         let body = r#"{"jsonrpc":"2.0","result":"0x1","id":1}"#;
    /// #         let body = Full::new(Bytes::from(body));
    /// #         Ok::<_, Infallible>(http::Response::new(body))
    /// #     }
    /// # });
    /// // `node` leaves the first attempt unanswered, and answers the second.
    /// let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient())
    ///     .attempt_timeout(Duration::from_secs(2))
    ///     .layer(node);
    /// let call = r#"{"jsonrpc":"2.0","method":"eth_chainId","id":1}"#;
    /// let answer = svc.oneshot(http::Request::post("/").body(Full::from(call))?).await?;
    /// assert_eq!(answer.status(), http::StatusCode::OK);
    /// # assert_eq!(calls.load(Ordering::Relaxed), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The largest request body buffered, in bytes. A larger one is not sent: the call
    /// fails with "request body larger than the limit of N bytes" (through
    /// [`map_err`](Self::map_err)), http-body-util's `LengthLimitError` as its source.
    ///
    /// # Default
    ///
    /// [`DEFAULT_BODY_LIMIT`] (10 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    /// use tower_jsonrpc_retry::{http, JsonRpcRetryLayer, RetryStrategy};
    /// # use std::convert::Infallible;
    /// # use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let body = Full::<Bytes>::from(r#"{"jsonrpc":"2.0","result":"0x1","id":1}"#);
    /// #     Ok::<_, Infallible>(http::Response::new(body))
    /// # });
    /// let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient())
    ///     .request_limit(64)
    ///     .layer(node);
    /// let data = "0x".to_owned() + &"00".repeat(64);
    /// let call = serde_json::to_vec(&Request::new("eth_call", json!([data])).with_id(1))?;
    /// let request = http::Request::post("/").body(Full::from(call))?;
    /// let err = svc.oneshot(request).await.unwrap_err();
    /// assert_eq!(err.to_string(), "request body larger than the limit of 64 bytes");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn request_limit(mut self, bytes: usize) -> Self {
        self.request_limit = bytes;
        self
    }

    /// The largest response body buffered, in bytes. An answer over it comes back as:
    ///
    /// - the answer to a JSON-RPC message under a failure status: that status, without
    ///   its body;
    /// - a 2xx answer to a notification or a batch of notifications only: that 2xx,
    ///   without its body (the notifications were delivered);
    /// - the answer to a partly retried batch's re-send: the answers gathered before;
    /// - any other: none; the call fails with a [`codec::Error`] for which
    ///   [`is_body_too_large`](codec::Error::is_body_too_large) holds (through
    ///   [`map_err`](Self::map_err)), with the answer's status and `Retry-After`.
    ///
    /// # Default
    ///
    /// [`DEFAULT_BODY_LIMIT`] (10 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::{codec, http, JsonRpcRetryLayer, RetryStrategy};
    /// # use std::convert::Infallible;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let logs = "0".repeat(2048);
    /// #     let body = format!(r#"{{"jsonrpc":"2.0","result":"0x{logs}","id":1}}"#);
    /// #     Ok::<_, Infallible>(http::Response::new(Full::<Bytes>::from(body)))
    /// # });
    /// // `node` answers with 2 KiB.
    /// let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient())
    ///     .response_limit(1024)
    ///     .layer(node);
    /// let call = r#"{"jsonrpc":"2.0","method":"eth_getLogs","params":[{}],"id":1}"#;
    /// let request = http::Request::post("/").body(Full::from(call))?;
    /// let err = svc.oneshot(request).await.unwrap_err();
    /// let err = err.downcast_ref::<codec::Error>().expect("the layer's own error");
    /// assert!(err.is_body_too_large());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.response_limit = bytes;
        self
    }
}

impl<S, B, E> Layer<S> for HttpRetryLayer<B, E> {
    type Service = HttpRetry<S, B, E>;

    fn layer(&self, inner: S) -> Self::Service {
        let mut codec = JsonRpcCodecLayer::new(http::Uri::default())
            .response_limit(self.response_limit)
            .keep_raw()
            .build_results(self.strategy.reads_results());
        if let Some(timeout) = self.attempt_timeout {
            codec = codec.attempt_timeout(timeout);
        }
        let codec = codec.layer(Rebody {
            inner,
            _body: PhantomData,
        });
        HttpRetry {
            stack: JsonRpcRetry::new(self.strategy.clone(), codec),
            strategy: self.strategy.clone(),
            request_limit: self.request_limit,
            response_limit: self.response_limit,
            attempt_timeout: self.attempt_timeout,
            map_err: self.map_err,
        }
    }
}

/// The service of [`HttpRetryLayer`].
///
/// # Examples
///
/// The answer comes back as an `http::Response<Full<Bytes>>`, for the caller to read:
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower::{Layer, ServiceExt};
/// use tower_jsonrpc_retry::retry::HttpRetry;
/// use tower_jsonrpc_retry::{http, JsonRpcRetryLayer, RetryStrategy};
/// # use std::convert::Infallible;
/// # use std::sync::Arc;
/// # use std::sync::atomic::{AtomicBool, Ordering};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let down = Arc::new(AtomicBool::new(true));
/// # let node = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
/// #     let status = if down.swap(false, Ordering::Relaxed) { 503 } else { 200 };
/// #     let body = Full::<Bytes>::from(r#"{"jsonrpc":"2.0","result":"0x1","id":1}"#);
/// #     let answer = http::Response::builder().status(status).body(body);
/// #     async move { Ok::<_, Infallible>(answer.unwrap()) }
/// # });
/// // `node` answers 503 first.
/// let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient());
/// let svc: HttpRetry<_, Full<Bytes>> = layer.layer(node);
/// let call = r#"{"jsonrpc":"2.0","method":"eth_chainId","id":1}"#;
/// let answer = svc.oneshot(http::Request::post("/").body(Full::from(call))?).await?;
/// let body = answer.into_body().collect().await?.to_bytes();
/// assert_eq!(body, r#"{"jsonrpc":"2.0","result":"0x1","id":1}"#);
/// # Ok(())
/// # }
/// ```
pub struct HttpRetry<S, B, E = BoxError> {
    stack: Stack<S, B>,
    /// The default strategy, for the events of a call that ends before it is sent.
    strategy: RetryStrategy,
    request_limit: usize,
    response_limit: usize,
    attempt_timeout: Option<Duration>,
    map_err: fn(BoxError) -> E,
}

impl<S, B> HttpRetry<S, B> {
    /// `inner` behind the HTTP-level retries, as [`HttpRetryLayer::new`] with `strategy`
    /// would wrap it, the layer's defaults included; build the layer for its other
    /// settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::ServiceExt;
    /// use tower_jsonrpc_retry::retry::HttpRetry;
    /// use tower_jsonrpc_retry::{http, RetryStrategy};
    /// # use std::convert::Infallible;
    /// # use std::sync::Arc;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let calls = Arc::new(AtomicUsize::new(0));
    /// # let seen = Arc::clone(&calls);
    /// # let node = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
    /// #     let first = seen.fetch_add(1, Ordering::Relaxed) == 0;
    /// #     let status = if first { 502 } else { 200 };
    /// #     let body = Full::<Bytes>::from(r#"{"jsonrpc":"2.0","result":"0x1","id":1}"#);
    /// #     let answer = http::Response::builder().status(status).body(body);
    /// #     async move { Ok::<_, Infallible>(answer.unwrap()) }
    /// # });
    /// // `node` answers 502 (a proxy that lost its backend), then the result; `calls`
    /// // counts what it is sent.
    /// let svc = HttpRetry::<_, Full<Bytes>>::new(RetryStrategy::transient(), node);
    /// let call = r#"{"jsonrpc":"2.0","method":"eth_chainId","id":1}"#;
    /// let answer = svc.oneshot(http::Request::post("/").body(Full::from(call))?).await?;
    /// assert_eq!(answer.status(), http::StatusCode::OK);
    /// assert_eq!(calls.load(Ordering::Relaxed), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(strategy: RetryStrategy, inner: S) -> Self {
        HttpRetryLayer::new(strategy).layer(inner)
    }
}

impl<S, B, E> HttpRetry<S, B, E> {
    /// The inner HTTP service.
    ///
    /// # Examples
    ///
    /// The inner service, for a request the retries should not see:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::ServiceExt;
    /// use tower_jsonrpc_retry::retry::HttpRetry;
    /// use tower_jsonrpc_retry::{http, RetryStrategy};
    /// # use std::convert::Infallible;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
    /// #     let status = if req.uri().path() == "/health" { 200 } else { 404 };
    /// #     let empty = Full::new(Bytes::new());
    /// #     let answer = http::Response::builder().status(status).body(empty);
    /// #     Ok::<_, Infallible>(answer.unwrap())
    /// # });
    /// // `node` also serves `GET /health`.
    /// let svc = HttpRetry::<_, Full<Bytes>>::new(RetryStrategy::transient(), node);
    /// let health = http::Request::get("/health").body(Full::default())?;
    /// let answer = svc.get_ref().clone().oneshot(health).await?;
    /// assert_eq!(answer.status(), http::StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stack.get_ref().get_ref().inner
    }

    /// The inner HTTP service, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{Service, ServiceExt};
    /// use tower_jsonrpc_retry::retry::HttpRetry;
    /// use tower_jsonrpc_retry::{http, RetryStrategy};
    /// # use std::convert::Infallible;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let empty = Full::new(Bytes::new());
    /// #     let answer = http::Response::builder().status(503).body(empty);
    /// #     Ok::<_, Infallible>(answer.unwrap())
    /// # });
    /// // `node` answers 503 to everything.
    /// let mut svc = HttpRetry::<_, Full<Bytes>>::new(RetryStrategy::transient(), node);
    /// // One attempt, in place, without the retries.
    /// let call = r#"{"jsonrpc":"2.0","method":"eth_chainId","id":1}"#;
    /// let call = http::Request::post("/").body(Full::from(call))?;
    /// let answer = svc.get_mut().ready().await?.call(call).await?;
    /// assert_eq!(answer.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stack.get_mut().get_mut().inner
    }

    /// The inner HTTP service, taken out.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::ServiceExt;
    /// use tower_jsonrpc_retry::retry::HttpRetry;
    /// use tower_jsonrpc_retry::{http, RetryStrategy};
    /// # use std::convert::Infallible;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
    /// #     let empty = Full::new(Bytes::new());
    /// #     let answer = http::Response::builder().status(503).body(empty);
    /// #     Ok::<_, Infallible>(answer.unwrap())
    /// # });
    /// let svc = HttpRetry::<_, Full<Bytes>>::new(RetryStrategy::transient(), node);
    /// // The stack without its retries: a 503 comes back from the first attempt.
    /// let node = svc.into_inner();
    /// let call = r#"{"jsonrpc":"2.0","method":"eth_chainId","id":1}"#;
    /// let answer = node.oneshot(http::Request::post("/").body(Full::from(call))?).await?;
    /// assert_eq!(answer.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> S {
        self.stack.into_inner().into_inner().inner
    }
}

impl<S: Clone, B, E> Clone for HttpRetry<S, B, E> {
    fn clone(&self) -> Self {
        Self {
            stack: self.stack.clone(),
            strategy: self.strategy.clone(),
            request_limit: self.request_limit,
            response_limit: self.response_limit,
            attempt_timeout: self.attempt_timeout,
            map_err: self.map_err,
        }
    }
}

impl<S: fmt::Debug, B, E> fmt::Debug for HttpRetry<S, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRetry")
            .field("stack", &self.stack)
            .field("request_limit", &self.request_limit)
            .finish_non_exhaustive()
    }
}

/// Hands each attempt the codec builds (already with the caller's head, see [`Origin`])
/// to the inner service, with the body type it takes.
pub(crate) struct Rebody<S, B> {
    inner: S,
    _body: PhantomData<fn(B)>,
}

impl<S: Clone, B> Clone for Rebody<S, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _body: PhantomData,
        }
    }
}

impl<S: fmt::Debug, B> fmt::Debug for Rebody<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rebody")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, B> Service<http::Request<Full<Bytes>>> for Rebody<S, B>
where
    S: Service<http::Request<B>>,
    B: From<Vec<u8>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Full<Bytes>>) -> Self::Future {
        let (parts, body) = req.into_parts();
        self.inner
            .call(http::Request::from_parts(parts, B::from(full_bytes(body))))
    }
}

/// The bytes of a `Full` body: one chunk, already in memory, so polling never waits.
fn full_bytes(mut body: Full<Bytes>) -> Vec<u8> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().map(|b| b.to_vec()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

impl<S, B, RB, E> Service<http::Request<B>> for HttpRetry<S, B, E>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::error::Error + Send + Sync + 'static,
    B: Body + From<Vec<u8>> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
    E: From<S::Error>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = E;
    type Future = HttpRetryFuture<S::Error, E>;

    /// Ready when the inner service is: its back-pressure (a concurrency limit, a full
    /// pool) reaches the layers above, such as `load_shed`. The call takes the service
    /// made ready here.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The codec keeps an inner readiness error for the call, so this never fails.
        Service::<Request>::poll_ready(&mut self.stack, cx).map_err(|e| (self.map_err)(Box::new(e)))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The deadline runs from the call, before the body is read: until the body says
        // which method it calls, the default's (or the request's own strategy's).
        let limit = self.stack.limit(req.extensions(), None);
        let outer = self.stack.stamp(req.extensions_mut(), limit).outer;
        let called = tokio::time::Instant::now();
        let strategy = self.strategy.clone();
        // The service made ready goes with this call; the one left here is made ready anew.
        let clone = self.stack.clone();
        let mut stack = std::mem::replace(&mut self.stack, clone);
        let limit = self.request_limit;
        let response_limit = self.response_limit;
        let attempt_timeout = self.attempt_timeout;
        let map_err = self.map_err;
        let call = Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes =
                read_request(body, &parts.extensions, limit, attempt_timeout, &strategy).await?;
            let message = parse(&bytes);
            if let Message::Single(request) = &message {
                stack.restamp(&mut parts.extensions, request.method(), called, outer);
            }
            let ext = &parts.extensions;
            ready_before_deadline(&mut stack, ext, called, &strategy, &message).await?;
            match message {
                Message::Other(why) => {
                    // Only for a call the layer watches, as its other events.
                    #[cfg(feature = "tracing")]
                    if RetryStrategy::for_request(ext, None, &strategy).can_retry() {
                        tracing::debug!(
                            target: "tower_jsonrpc_retry",
                            why = %why,
                            "not a JSON-RPC message the layer can retry: sent once, as it came"
                        );
                    }
                    #[cfg(not(feature = "tracing"))]
                    let _ = why;
                    send_as_it_came(stack, parts, bytes, response_limit, attempt_timeout).await
                }
                Message::Single(mut request) => {
                    // The request was read without its params (`from_members_unbuilt`):
                    // every attempt must send the caller's bytes, given here.
                    *request.extensions_mut() = take_head(&mut stack, parts, bytes, None);
                    match stack.oneshot(request).await {
                        Ok(resp) => single_answer(resp),
                        Err(err) => answer_error(err),
                    }
                }
                Message::Batch(mut batch) => {
                    let items = Some(batch.len());
                    *batch.extensions_mut() = take_head(&mut stack, parts, bytes, items);
                    match stack.oneshot(batch).await {
                        Ok(resp) => Ok(batch_answer(resp)),
                        Err(err) => answer_error(err),
                    }
                }
            }
        });
        HttpRetryFuture {
            call: Fused::new(call),
            from_inner: E::from,
            map_err,
        }
    }
}

/// The stack under the HTTP-level layer: the JSON-RPC-level retries, over the codec,
/// over the inner HTTP service.
type Stack<S, B> = JsonRpcRetry<JsonRpcCodec<Rebody<S, B>>>;

/// Reads the caller's request body whole, within `limit` bytes, and within the call's
/// deadline and the attempt's timeout (a whole one of its own, before the first
/// attempt's): without them a body that stalls, with no deadline, would hold the call
/// for ever. A body that fails sends nothing, and nothing again (the bytes to send never
/// came whole); when it may have been a JSON-RPC call, the call is reported given up.
async fn read_request<B, SE>(
    body: B,
    extensions: &http::Extensions,
    limit: usize,
    attempt_timeout: Option<Duration>,
    strategy: &RetryStrategy,
) -> Result<Bytes, Failure<SE>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    // When the upload fails, its first byte that is not whitespace tells whether it was
    // a JSON-RPC call that was given up: noted from every frame before `Limited` sees it
    // (a frame over the limit goes no further).
    let first = FirstByte::default();
    let noted = &first;
    let body = body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            noted.note(data.chunk());
        }
        frame
    });
    let read = codec::future::read_body(body, limit);
    let read = match Deadline::bound(extensions, attempt_timeout) {
        Some(bound) => match tokio::time::timeout(bound, read).await {
            Ok(read) => read,
            Err(_) => {
                if first.may_be_json_rpc() {
                    // The call's deadline ended it, or the attempt's own timeout: no
                    // retry either way. (Whether the deadline has come, asked now: the
                    // clock moved on since the bound was read.)
                    let now = tokio::time::Instant::now();
                    let reason = if extensions
                        .get::<Deadline>()
                        .is_some_and(|deadline| deadline.reached(now))
                    {
                        GiveUpReason::Deadline
                    } else {
                        GiveUpReason::NotRetryable
                    };
                    let elapsed = tower::timeout::error::Elapsed::new();
                    give_up_unsent(strategy, extensions, None, reason, &elapsed);
                }
                return Err(elapsed());
            }
        },
        None => read.await,
    };
    read.map_err(|e| {
        // Over the limit, or the body broke.
        let err = request_too_large(e, limit);
        if first.may_be_json_rpc() {
            let reason = GiveUpReason::NotRetryable;
            give_up_unsent(strategy, extensions, None, reason, &*err);
        }
        Failure::Layer(err)
    })
}

/// Waits, within the call's deadline, for the call's own clone of the stack to be ready
/// (a call made without `poll_ready`, a limit taken meanwhile): a service never ready
/// cannot hold the call past it. A deadline that comes meanwhile, or came while the body
/// was read (or before the call's future was first polled), ends the call, known by now
/// as `message`: nothing is sent after it. (A deadline no later than the call itself,
/// `max_elapsed(ZERO)`, leaves one attempt, cut at once unless its answer is there at
/// once, as over the codec.)
async fn ready_before_deadline<S, B, SE>(
    stack: &mut Stack<S, B>,
    extensions: &http::Extensions,
    called: tokio::time::Instant,
    strategy: &RetryStrategy,
    message: &Message,
) -> Result<(), Failure<SE>>
where
    Stack<S, B>: Service<Request>,
{
    // Never an error: the codec keeps one for the call.
    let ready = std::future::poll_fn(|cx| Service::<Request>::poll_ready(stack, cx));
    match Deadline::left(extensions) {
        Some(left) => {
            if tokio::time::timeout(left, ready).await.is_err() {
                give_up_at_deadline(strategy, extensions, message);
                return Err(elapsed());
            }
        }
        None => {
            let _ = ready.await;
        }
    }
    let came = Deadline::passed(extensions)
        && extensions
            .get::<Deadline>()
            .is_some_and(|Deadline(at)| *at > called);
    if came {
        give_up_at_deadline(strategy, extensions, message);
        return Err(elapsed());
    }
    Ok(())
}

/// Sends a body that is not JSON-RPC once, as it came, within the same limits and bounds
/// as an attempt (the response limit, the attempt's timeout, the call's deadline): the
/// server's answer as it came, its body read whole.
async fn send_as_it_came<S, B, RB>(
    stack: Stack<S, B>,
    mut parts: http::request::Parts,
    bytes: Bytes,
    response_limit: usize,
    attempt_timeout: Option<Duration>,
) -> Result<http::Response<Full<Bytes>>, Failure<S::Error>>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Error: std::error::Error + Send + Sync + 'static,
    B: From<Vec<u8>>,
    RB: Body,
    RB::Error: Into<BoxError>,
{
    let timeout = Deadline::bound(&parts.extensions, attempt_timeout);
    let mut codec = stack.into_inner();
    // The inner service refused readiness: that error, not a request.
    if let Some(err) = codec.take_not_ready() {
        return answer_error(err);
    }
    let inner = codec.into_inner().inner;
    let exchange = async {
        // Below the layer, the deadline is no longer vouched for.
        parts.extensions.remove::<DeadlineVoucher>();
        let req = http::Request::from_parts(parts, B::from(bytes.to_vec()));
        let (head, body) = inner
            .oneshot(req)
            .await
            .map_err(Failure::Inner)?
            .into_parts();
        // An unreadable body keeps what the head said, as the codec's errors do: the
        // status (a 503's body over the limit is still a 503) and the server's hint.
        let status = head.status;
        let hint = codec::RetryAfter::of_answer(&head).map(|h| h.delay());
        let body = codec::future::read_body(body, response_limit)
            .await
            .map_err(|e| {
                let err = codec::Error::body(e, response_limit);
                Failure::Layer(Box::new(err.with_status(status, hint)))
            })?;
        Ok(raw_response(RawAnswer { head, body }))
    };
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(elapsed())),
        None => exchange.await,
    }
}

/// Gives the call's own clone of the stack the request's head and bytes (for a batch,
/// of `items` items) to send its attempts with; returns the request's extensions.
fn take_head<S, B>(
    stack: &mut Stack<S, B>,
    parts: http::request::Parts,
    body: Bytes,
    items: Option<usize>,
) -> http::Extensions {
    stack.get_mut().set_origin(Arc::new(Origin {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body,
        items,
    }));
    parts.extensions
}

/// Reports a JSON-RPC call that the deadline ended before it was sent (the inner service
/// not ready in time, or the deadline passed while its body was read).
fn give_up_at_deadline(default: &RetryStrategy, extensions: &http::Extensions, message: &Message) {
    // The error the caller gets.
    let elapsed = tower::timeout::error::Elapsed::new();
    give_up_unsent(
        default,
        extensions,
        Some(message),
        GiveUpReason::Deadline,
        &elapsed,
    );
}

/// Reports a JSON-RPC call that ended before anything was sent, with `error` (the one the
/// caller gets), as the policy reports one it ends: for the strategy that governs it, if
/// that strategy can retry at all; for `message`, or, when the body never came whole
/// (`None`), for a call not known.
fn give_up_unsent(
    default: &RetryStrategy,
    extensions: &http::Extensions,
    message: Option<&Message>,
    reason: GiveUpReason,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) {
    let method = match message {
        Some(Message::Single(request)) => Some(request.method()),
        _ => None,
    };
    let strategy = RetryStrategy::for_request(extensions, method, default);
    if !strategy.can_retry() {
        return;
    }
    let (call, batch_len) = match message {
        Some(Message::Other(_)) => return,
        Some(Message::Single(request)) => (Some(request), None),
        Some(Message::Batch(batch)) => (named_call(batch.requests()), Some(batch.len())),
        // The body never came whole: which call it was is not known.
        None => (None, None),
    };
    let event = GiveUpEvent {
        method: call.map_or("", Request::method),
        id: call.and_then(Request::id),
        batch_len,
        retries: 0,
        reason,
        retry_after: None,
        failure: AttemptFailure {
            error: Some(error),
            ..AttemptFailure::default()
        },
    };
    announce_give_up(strategy, &event);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that is not JSON-RPC goes to the inner service as it came, with the
    /// call's deadline but no voucher for it: kept there and sent again later, it is a
    /// new call.
    #[tokio::test(start_paused = true)]
    async fn a_body_sent_as_it_came_carries_no_voucher_below_the_layer() {
        let seen: Arc<std::sync::Mutex<Vec<(bool, bool)>>> = Arc::default();
        let log = Arc::clone(&seen);
        let inner = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
            let extensions = req.extensions();
            let looked = (
                extensions.get::<Deadline>().is_some(),
                extensions.get::<DeadlineVoucher>().is_some(),
            );
            log.lock().unwrap_or_else(|e| e.into_inner()).push(looked);
            let ok = http::Response::new(Full::new(Bytes::from_static(b"ok")));
            async { Ok::<_, std::io::Error>(ok) }
        });
        let strategy = RetryStrategy::new(crate::backoff::PeriodicBackoff::new(
            1,
            Duration::from_millis(10),
        ))
        .max_elapsed(Duration::from_secs(1));
        let svc = HttpRetryLayer::<Full<Bytes>>::new(strategy).layer(inner);
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::from("not json"))
            .unwrap_or_default();
        let res: Result<_, BoxError> = svc.oneshot(req).await;
        assert!(res.is_ok());
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(*seen, [(true, false)]);
    }

    /// `HttpRetry::new` wraps a service as the layer with the same strategy does: a
    /// listed code is retried, and the caller gets the last answer's bytes.
    #[tokio::test(start_paused = true)]
    async fn new_retries_as_the_layer_does() {
        let sends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&sends);
        let inner = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body: &'static [u8] = if n == 0 {
                br#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"busy"},"id":1}"#
            } else {
                br#"{"jsonrpc":"2.0","result":7,"id":1}"#
            };
            let res = http::Response::new(Full::new(Bytes::from_static(body)));
            async move { Ok::<_, std::io::Error>(res) }
        });
        let strategy = RetryStrategy::new(crate::backoff::PeriodicBackoff::new(
            3,
            Duration::from_millis(10),
        ))
        .codes([-32005]);
        let svc = HttpRetry::new(strategy, inner);
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::from(r#"{"jsonrpc":"2.0","method":"m","id":1}"#))
            .unwrap_or_default();
        let res: Result<_, BoxError> = svc.oneshot(req).await;
        let body = match res {
            Ok(res) => res.into_body().collect().await.map(|b| b.to_bytes()),
            Err(e) => panic!("the call failed: {e}"),
        };
        assert_eq!(
            body.ok().as_deref(),
            Some(&br#"{"jsonrpc":"2.0","result":7,"id":1}"#[..])
        );
        assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
