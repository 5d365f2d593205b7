//! A typed client over any JSON-RPC service stack: `call`, `notify`, batches.
//!
//! [`Client`] turns Rust values into [`Request`]s and results back into Rust values;
//! everything else (HTTP, timeouts, retries) is the service stack under it. Build the
//! recommended stack with [`Client::builder`], or bring your own with [`Client::new`].
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::{Client, RetryStrategy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint: http::Uri = "http://127.0.0.1:8545/".parse()?;
//! # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
//! # let endpoint = server.uri();
//! let client = Client::builder(endpoint)
//!     .attempt_timeout(Duration::from_secs(2))
//!     .retry(RetryStrategy::transient())
//!     .build();
//!
//! let sum: i64 = client.call("sum", (1, 2)).await?;
//! client.notify("log", ("computed", sum)).await?;
//!
//! // One call with its own strategy.
//! let sum: i64 = client.request("sum").params((3, 4)).retry(RetryStrategy::none()).send().await?;
//! # let _ = sum;
//! # Ok(())
//! # }
//! ```
//!
//! With the `rustls` feature, `ClientBuilder::build_https` builds the same stack over
//! HTTPS, and the rustls it builds on is re-exported as `client::rustls`, for
//! `build_https_with`'s configuration without a version to match by hand.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::util::Oneshot;
use tower::{ServiceBuilder, ServiceExt};
use tower_service::Service;

use crate::codec::{self, JsonRpcCodec, JsonRpcCodecLayer};
use crate::jsonrpc::{BatchRequest, BatchResponse, ErrorObject, Id, MethodName, Request, Response};
use crate::retry::JsonRpcRetry;
use crate::{GaveUp, InspectError, JsonRpcRetryLayer, RetryStrategy};

mod scheme;

use crate::fused::Fused;
use future::{BatchFuture, BatchState, CallFuture, NotifyFuture, SendFuture};
pub use scheme::{SchemeCheck, UnsupportedScheme};

/// The stack [`Client::builder`] assembles: retry over the codec (with its per-attempt
/// timeout, which bounds the response body too) over hyper-util's client, for `http`
/// URIs.
///
/// The type names hyper-util's client (0.1) and its body, http-body-util's `Full` (0.1)
/// of `bytes` (1), as `HttpsStack` (feature `rustls`) names hyper-rustls's connector
/// (0.27): they are part of this crate's public API, so moving to a new breaking release
/// of any of them is a breaking release of this crate. Code that
/// names neither (`Client` with its default, the futures' `S` left to inference) is not
/// affected.
pub type DefaultStack = StackOver<SchemeCheck<HttpConnector>>;

/// The recommended stack over hyper-util's client with connector `C`.
type StackOver<C> = JsonRpcRetry<JsonRpcCodec<HyperClient<C, Full<Bytes>>>>;

/// The stack [`ClientBuilder::build_https`] assembles: the [`DefaultStack`] with a
/// rustls connector, for `https` and `http` URIs.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub type HttpsStack = StackOver<SchemeCheck<hyper_rustls::HttpsConnector<HttpConnector>>>;

/// Why a call did not produce a value.
///
/// Its `Display` says what failed in a few words, and [`source`](std::error::Error::source)
/// gives the cause (for [`Transport`](Self::Transport), the stack's error: a timeout, a
/// status, a refused connection), as the Rust API guidelines ask: a log line that
/// prints only `{e}` reads "the service stack failed the call". Print the whole chain
/// (anyhow's `{:#}`, or a loop over `source()`), or match on the variant.
///
/// ```
/// use tower_jsonrpc_retry::ClientError;
///
/// /// What to tell the user, and whether trying again later may help.
/// fn explain(err: &ClientError) -> (String, bool) {
///     match err {
///         // The server's answer: its code says whether a later call may succeed.
///         ClientError::Rpc(e) => (format!("the node refused: {}", e.message()), e.code() == -32005),
///         // The stack failed: a refused connection, a timeout, a failure status.
///         ClientError::Transport(e) => {
///             let transient = e.is_connect() || e.is_timeout() || e.is_reset();
///             (format!("could not reach the node: {e}"), transient)
///         }
///         // A bug on this side: the result is not the type asked for, say.
///         other => (format!("client error: {other}"), false),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError<E = codec::Error> {
    /// The server answered with a JSON-RPC error object (with the HTTP answer's failure
    /// status and `Retry-After`, if it had them).
    Rpc(RpcError),
    /// The service stack failed (for the default stack, a [`codec::Error`]).
    Transport(E),
    /// The result did not deserialize into the requested type. serde_json's message
    /// quotes the value it could not take; a message over 1 KiB keeps its beginning and
    /// its end (what was expected), with `…` between.
    Deserialize(serde_json::Error),
    /// The params did not serialize, or not into an array or an object.
    Params(serde_json::Error),
    /// A batch response lacked the item for a call.
    MissingItem(Id),
}

impl<E> ClientError<E> {
    /// The server's answer, if it was a JSON-RPC error object: the object's `code()`,
    /// `message()` and `data()`, with the answer's status, `Retry-After` and how the
    /// retries ended ([`RpcError`]).
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            ClientError::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// The transport error, if the stack failed.
    pub fn transport(&self) -> Option<&E> {
        match self {
            ClientError::Transport(e) => Some(e),
            _ => None,
        }
    }

    /// The server's answer by value ([`RpcError::into_error`] gives its error object), or
    /// the error itself when it is something else: for callers that handle the server's
    /// answer and pass everything else on.
    ///
    /// # Errors
    ///
    /// `self`, when it is not [`Rpc`](Self::Rpc).
    pub fn into_rpc(self) -> Result<RpcError, Self> {
        match self {
            ClientError::Rpc(e) => Ok(e),
            other => Err(other),
        }
    }
}

impl<E: InspectError> ClientError<E> {
    /// The failure status of the HTTP answer, whether it carried a JSON-RPC error object
    /// ([`Rpc`](Self::Rpc)) or not ([`Transport`](Self::Transport)): a 429 is a 429
    /// however the server wrote its body. `None` for a 2xx answer, or no answer.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            ClientError::Rpc(e) => e.status(),
            // A decode error keeps its 2xx status: not a failure status.
            ClientError::Transport(e) => e.status().filter(|s| !s.is_success()),
            _ => None,
        }
    }

    /// The HTTP answer's `Retry-After`, as a delay, whether it carried a JSON-RPC error
    /// object or not: for a caller whose retries are over, or who waits itself. (For a
    /// call of a batch whose re-send failed, the failed exchange's: the server's latest
    /// word on time, as [`RpcError::retry_after`] says.)
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Rpc(e) => e.retry_after(),
            ClientError::Transport(e) => e.retry_after(),
            _ => None,
        }
    }

    /// How the retries of the call ended, when the retry layer gave up on this failure:
    /// the retries made, and why there was no further one ([`GaveUp`]), for the
    /// server's answer ([`RpcError::gave_up`]) or the stack's error (found in its chain,
    /// [`GaveUp::find`]). A batch whose send failed has the batch's; a call of a batch,
    /// its own (see [`GaveUp`]). `None` when the layer made no decision on it: params
    /// that did not serialize, a result that did not deserialize, a strategy that never
    /// retries.
    ///
    /// ```
    /// use tower_jsonrpc_retry::{ClientError, GiveUpReason};
    ///
    /// fn worth_alerting(err: &ClientError) -> bool {
    ///     // Ran out of time or budget: the server is struggling, not the request wrong.
    ///     err.gave_up().is_some_and(|g| {
    ///         matches!(g.reason(), GiveUpReason::Deadline | GiveUpReason::Budget)
    ///     })
    /// }
    /// # let _ = worth_alerting;
    /// ```
    pub fn gave_up(&self) -> Option<GaveUp> {
        match self {
            ClientError::Rpc(e) => e.gave_up(),
            ClientError::Transport(e) => GaveUp::find(e.as_error()),
            _ => None,
        }
    }
}

/// A JSON-RPC error object a call was answered with, and what the HTTP answer that
/// carried it said.
///
/// That is its status, if it was not a 2xx, and its `Retry-After` (the
/// server's latest word on time, [`retry_after`](Self::retry_after) says which). A 429 with a
/// JSON-RPC error body (as rate-limiting providers send) keeps its hint here, as a bare
/// 429 keeps it in the [`codec::Error`]; [`ClientError::retry_after`] reads either.
///
/// Its `Display` is the error object's, followed, as a [`codec::Error`]'s message is, by
/// how the retries ended when retries were made or a limit stopped the first
/// (`JSON-RPC error -32005: limit exceeded; gave up after 2 retries: attempts
/// exhausted`). Two are equal when their error objects and their answers' facts are:
/// compare [`error()`](Self::error) for the object alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    error: ErrorObject,
    facts: Facts,
}

/// What the layers below recorded about the answer an error object came in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Facts {
    status: Option<http::StatusCode>,
    retry_after: Option<Duration>,
    gave_up: Option<GaveUp>,
}

impl RpcError {
    /// The error object, with the facts about its answer ([`facts`](Self::facts)).
    fn answered(error: ErrorObject, facts: Facts) -> Self {
        Self { error, facts }
    }

    /// The facts about an answer recorded in its extensions: by the codec, its failure
    /// status and its `Retry-After`; by the retry layer, how it gave up.
    fn facts(extensions: &http::Extensions) -> Facts {
        Facts {
            status: extensions.get::<http::StatusCode>().copied(),
            retry_after: extensions.get::<codec::RetryAfter>().map(|r| r.delay()),
            gave_up: extensions.get::<GaveUp>().copied(),
        }
    }

    /// The error code.
    pub fn code(&self) -> i64 {
        self.error.code()
    }

    /// The error message.
    pub fn message(&self) -> &str {
        self.error.message()
    }

    /// The error's `data`, if any.
    pub fn data(&self) -> Option<&Value> {
        self.error.data()
    }

    /// The error object.
    pub fn error(&self) -> &ErrorObject {
        &self.error
    }

    /// The error object, by value.
    pub fn into_error(self) -> ErrorObject {
        self.error
    }

    /// The status of the HTTP answer that carried it, if it was not a 2xx.
    pub fn status(&self) -> Option<http::StatusCode> {
        self.facts.status
    }

    /// The `Retry-After` of the HTTP answer that carried it, as a delay; for a call of a
    /// batch whose re-send then failed as a whole (a 429, a reset), the failed
    /// exchange's, or none if it had none: the server's latest word on when to come
    /// back, while [`status`](Self::status) stays that of the answer the error came in.
    pub fn retry_after(&self) -> Option<Duration> {
        self.facts.retry_after
    }

    /// How the retries of the call ended, if the retry layer gave up on this answer: the
    /// retries made, and why there was no further one ([`GaveUp`]; for a call of a batch,
    /// the call's own). `None` without a retry layer, or with one whose strategy never
    /// retries.
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.facts.gave_up
    }
}

/// An error object with no HTTP answer to speak of.
impl From<ErrorObject> for RpcError {
    fn from(error: ErrorObject) -> Self {
        Self::answered(error, Facts::default())
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)?;
        GaveUp::fmt_news(self.facts.gave_up, f)
    }
}

/// As [`ErrorObject`] is: the error object is the error itself.
impl std::error::Error for RpcError {}

impl<E: fmt::Display> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Rpc(e) => fmt::Display::fmt(e, f),
            // The transport error itself is the source: its message is not repeated.
            ClientError::Transport(_) => f.write_str("the service stack failed the call"),
            ClientError::Deserialize(_) => f.write_str("result does not match the expected type"),
            // Serializing failed, or gave a scalar: `source()` says which.
            ClientError::Params(_) => {
                f.write_str("params could not be sent as a JSON array or object")
            }
            ClientError::MissingItem(id) => write!(f, "batch response has no item for id {id}"),
        }
    }
}

/// For any transport error the retry stack takes ([`InspectError`]): the codec's own, and
/// [`BoxError`](crate::BoxError), which tower layers such as `TimeoutLayer` turn errors
/// into (a boxed error is not itself a `std::error::Error`). A transport error of your
/// own gets this by implementing [`InspectError::as_error`].
impl<E> std::error::Error for ClientError<E>
where
    E: InspectError + fmt::Debug + fmt::Display,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The error object is the error itself, shown by `Display` (its message up to
            // 1 KiB; `rpc()` has it whole).
            ClientError::Rpc(_) => None,
            ClientError::Transport(e) => Some(e.as_error()),
            ClientError::Deserialize(e) | ClientError::Params(e) => Some(e),
            ClientError::MissingItem(_) => None,
        }
    }
}

type IdGenerator = Arc<dyn Fn() -> Id + Send + Sync>;

/// A JSON-RPC client over a service stack `S`.
///
/// Cheap to clone; clones share the stack's configuration and the id counter. Each call
/// runs on a clone of the service, so calls can run concurrently.
///
/// A call gives the typed result, or a [`ClientError`]: the server's error object once
/// the strategy stops retrying ([`ClientError::rpc`]), or the stack's error. A request
/// can carry a strategy of its own ([`Client::request`]):
///
/// ```
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
/// use tower_jsonrpc_retry::{Client, RetryStrategy};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// let client = Client::builder(server.uri()).build();
///
/// // -32000 is no transient failure: the default strategy hands it back at once.
/// server.script("sum", [Step::error(-32000)]);
/// let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
/// assert_eq!(err.rpc().map(|e| e.code()), Some(-32000));
///
/// // This call retries -32000 itself: up to twice, 10 ms apart.
/// server.script("sum", [Step::error(-32000)]);
/// let patient = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(10)))
///     .codes([-32000]);
/// let sum: i64 = client.request("sum").params((1, 2)).retry(patient).send().await?;
/// // One attempt for the first call, two for this one.
/// assert_eq!((sum, server.calls("sum")), (3, 3));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client<S = DefaultStack> {
    service: S,
    ids: IdGenerator,
}

impl<S> fmt::Debug for Client<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for the recommended stack on hyper-util's client, POSTing to `uri`.
    ///
    /// Credentials in the URI (`http://user:password@host/`) are sent as an
    /// `Authorization: Basic` header, as [`JsonRpcCodecLayer::new`] does.
    pub fn builder(uri: Uri) -> ClientBuilder {
        ClientBuilder::new(uri)
    }
}

/// The next id of a counter shared by a client's clones, from 1.
fn counter() -> IdGenerator {
    let next = Arc::new(AtomicI64::new(1));
    Arc::new(move || Id::Number(next.fetch_add(1, Ordering::Relaxed)))
}

/// Params as JSON: an array or an object; `()`, or anything else that serializes to
/// `null` (`None`), means none.
fn to_params(params: impl Serialize) -> Result<Value, serde_json::Error> {
    // The error names what was given, not its value: a scalar given as params is often
    // a secret or a signed transaction (`hash` for `(hash,)`), not for the logs.
    let given = match serde_json::to_value(params)? {
        v @ (Value::Array(_) | Value::Object(_) | Value::Null) => return Ok(v),
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
    };
    Err(serde::ser::Error::custom(format_args!(
        "expected an array or an object, got {given} (one positional param is a one-element tuple: `(x,)`)"
    )))
}

fn to_value<R: DeserializeOwned, E>(response: Response) -> Result<R, ClientError<E>> {
    // What the answer said, read before the response is taken apart.
    let facts = RpcError::facts(response.extensions());
    let result = response
        .into_result()
        .map_err(|error| ClientError::Rpc(RpcError::answered(error, facts)))?;
    serde_json::from_value(result).map_err(|e| ClientError::Deserialize(shortened(e)))
}

/// serde_json's message quotes whole the value it could not take (`invalid type:
/// string "…", expected u64`): at most 1 KiB of it is kept, as an error object's message
/// is shown, so that a server's megabyte does not end up in every log line of the
/// error's chain. Its beginning and its end are kept (the end says what was expected).
fn shortened(e: serde_json::Error) -> serde_json::Error {
    const TAIL: usize = 128;
    let message = e.to_string();
    if message.len() <= crate::jsonrpc::MESSAGE_SHOWN {
        return e;
    }
    let mut tail = message.len() - TAIL;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    let head = crate::jsonrpc::cut(&message, crate::jsonrpc::MESSAGE_SHOWN - TAIL);
    serde::de::Error::custom(format_args!("{head}{}", message.get(tail..).unwrap_or("")))
}

impl<S, E> Client<S>
where
    S: Service<Request, Response = Response, Error = E> + Clone,
{
    /// A client over any service that takes [`Request`]s, with ids counted from 1.
    ///
    /// [`batch`](Self::batch) needs a service that takes [`BatchRequest`]s too, which
    /// tower's type-erasing wrappers (`BoxCloneService`, `BoxCloneSyncService`, `Buffer`)
    /// do not: each serves one request type. To name a stack of your own and keep
    /// batches, box it below the codec, where there is one request type, the HTTP
    /// request: `JsonRpcRetry<JsonRpcCodec<BoxCloneSyncService<http::Request<Full<Bytes>>,
    /// http::Response<Incoming>, E>>>`, with a concrete error type `E` (with `BoxError`
    /// there, rustc cannot prove a call's future `Send` for `tokio::spawn`).
    pub fn new(service: S) -> Self {
        Self {
            service,
            ids: counter(),
        }
    }

    /// Uses `f` to make the id of every call.
    #[must_use]
    pub fn with_id_generator<F>(mut self, f: F) -> Self
    where
        F: Fn() -> Id + Send + Sync + 'static,
    {
        self.ids = Arc::new(f);
        self
    }

    /// The service stack.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// Calls `method` with `params` (a tuple for positional params, a struct or map for
    /// named ones, `()` for none) and deserializes the result into `R`.
    ///
    /// `method` is a [`MethodName`]: a literal, a `String`, or `&String`; a `&str`
    /// borrowed for less than `'static` does not compile as it is ("borrowed data
    /// escapes"), and goes as `method.to_owned()`.
    ///
    /// One positional param is a one-element tuple, `(hash,)`: `hash` alone is a scalar,
    /// which JSON-RPC does not take as params, so the call fails unsent with
    /// [`ClientError::Params`].
    ///
    /// `()` leaves the `params` member out, as JSON-RPC allows, and so does anything else
    /// that serializes to `null` (`None::<T>`, a unit struct); for a server that wants
    /// `"params": []` (some Ethereum gateways do), give an empty array: `[(); 0]`.
    ///
    /// The result is a [`serde_json::Value`] first, with its limits (see
    /// [`jsonrpc`](crate::jsonrpc)): an integer beyond 64 bits arrives as the nearest
    /// `f64`, so `R = u128` fails on one and `R = serde_json::Number` rounds it. Servers
    /// that send such numbers as strings (Ethereum's hex quantities) are not affected.
    ///
    /// The future ([`CallFuture`]) owns a clone of the service and the request and
    /// borrows nothing, so it can be spawned or stored; it is `Send` whenever the
    /// service and its future are (a `BoxCloneService` too, which is not `Sync`).
    pub fn call<R: DeserializeOwned>(
        &self,
        method: impl Into<MethodName>,
        params: impl Serialize,
    ) -> CallFuture<S, R> {
        self.request(method).params(params).send()
    }

    /// Sends a notification: no id, no response. Errors are the transport's, or
    /// [`Params`](ClientError::Params) for params that are not an array or an object
    /// (then nothing is sent). The future ([`NotifyFuture`]) borrows nothing.
    pub fn notify(&self, method: impl Into<MethodName>, params: impl Serialize) -> NotifyFuture<S> {
        self.request(method).params(params).notify()
    }

    /// A request to configure before sending: params, its own retry strategy, its id.
    pub fn request(&self, method: impl Into<MethodName>) -> RequestBuilder<'_, S> {
        RequestBuilder {
            client: self,
            method: method.into(),
            params: Ok(Value::Null),
            id: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Sends a request as it is and returns the response as it came: an error answer is
    /// an `Ok` [`Response`], and a failure is the stack's own error, not a
    /// [`ClientError`].
    ///
    /// The future ([`SendFuture`]) borrows nothing: it owns a clone of the service.
    pub fn send(&self, request: Request) -> SendFuture<S> {
        SendFuture {
            future: Fused::new(self.service.clone().oneshot(request)),
        }
    }
}

impl<S, E> Client<S>
where
    S: Service<Request, Response = Response, Error = E>
        + Service<BatchRequest, Response = BatchResponse, Error = E>
        + Clone,
{
    /// A batch to fill with calls and notifications, sent in one HTTP exchange.
    pub fn batch(&self) -> BatchBuilder<S> {
        BatchBuilder {
            service: self.service.clone(),
            ids: Arc::clone(&self.ids),
            batch: BatchRequest::default(),
            error: None,
            calls: 0,
        }
    }
}

/// A request being configured; see [`Client::request`].
#[must_use = "a request builder sends nothing until `send` or `notify` is called"]
pub struct RequestBuilder<'a, S> {
    client: &'a Client<S>,
    method: MethodName,
    /// The params, or why they are not JSON-RPC params.
    params: Result<Value, serde_json::Error>,
    id: Option<Id>,
    extensions: http::Extensions,
}

impl<S> fmt::Debug for RequestBuilder<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S, E> RequestBuilder<'_, S>
where
    S: Service<Request, Response = Response, Error = E> + Clone,
{
    /// Sets the params: a tuple (positional), a struct or map (named), `()` (none).
    pub fn params(mut self, params: impl Serialize) -> Self {
        self.params = to_params(params);
        self
    }

    /// Gives this request its own retry strategy, replacing the stack's default entirely,
    /// its hooks, budget, deadline and non-idempotent methods included (build it from a
    /// clone of the default to keep them: one made afresh marks no method
    /// non-idempotent).
    pub fn retry(mut self, strategy: RetryStrategy) -> Self {
        self.extensions.insert(strategy);
        self
    }

    /// Sets the id instead of taking the client's next one.
    pub fn id(mut self, id: impl Into<Id>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a value to the request's extensions, for the layers below.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    fn build(self, notification: bool) -> Result<Request, ClientError<E>> {
        let mut req = Request::new(self.method, self.params.map_err(ClientError::Params)?);
        if !notification {
            req = req.with_id(self.id.unwrap_or_else(|| (self.client.ids)()));
        }
        *req.extensions_mut() = self.extensions;
        Ok(req)
    }

    /// Sends the call and deserializes its result. The future borrows nothing (not the
    /// client): it owns a clone of the service and the request.
    pub fn send<R: DeserializeOwned>(self) -> CallFuture<S, R> {
        let service = self.client.service.clone();
        CallFuture {
            state: Exchange::start(service, self.build(false)),
            _result: PhantomData,
        }
    }

    /// Sends it as a notification: without an id, so one set with [`id`](Self::id) is
    /// not sent (a notification is a request with no id).
    pub fn notify(self) -> NotifyFuture<S> {
        let service = self.client.service.clone();
        NotifyFuture {
            state: Exchange::start(service, self.build(true)),
        }
    }
}

pin_project! {
    /// One request on its way: sent on the call's own clone of the service, or refused
    /// before it was sent (its params did not serialize).
    #[project = ExchangeProj]
    enum Exchange<S>
    where
        S: Service<Request>,
    {
        Sent { #[pin] future: Fused<Oneshot<S, Request>> },
        Refused { error: Option<ClientError<S::Error>> },
    }
}

impl<S: Service<Request>> Exchange<S> {
    fn start(service: S, request: Result<Request, ClientError<S::Error>>) -> Self {
        match request {
            Ok(request) => Exchange::Sent {
                future: Fused::new(service.oneshot(request)),
            },
            Err(error) => Exchange::Refused { error: Some(error) },
        }
    }
}

impl<S: Service<Request, Response = Response>> Future for Exchange<S> {
    type Output = Result<Response, ClientError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ExchangeProj::Sent { future } => future.poll(cx).map_err(ClientError::Transport),
            ExchangeProj::Refused { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after it was ready: there is nothing more to give.
                None => Poll::Pending,
            },
        }
    }
}

/// A handle to one call of a batch, to take its typed result from [`BatchResults`].
pub struct BatchItem<R> {
    id: Id,
    /// Where its answer is: a batch's answers come in call order, one per call.
    index: usize,
    _result: PhantomData<fn() -> R>,
}

/// Whatever `R` is: the handle holds only the call's id.
impl<R> fmt::Debug for BatchItem<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchItem").field("id", &self.id).finish()
    }
}

/// A batch being filled; see [`Client::batch`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
/// let mut batch = client.batch();
/// let three = batch.call::<i64>("sum", (1, 2));
/// let echoed = batch.call::<Vec<String>>("echo", ("hi",));
/// batch.notify("log", ("batch sent",));
/// let mut results = batch.send().await?;
/// assert_eq!(results.take(three)?, 3);
/// assert_eq!(results.take(echoed)?, ["hi"]);
/// # Ok(())
/// # }
/// ```
///
/// It owns a clone of the client's service, so a batch being filled and its sending are
/// `Send` whenever the service is.
#[must_use = "a batch builder sends nothing until `send` is called"]
pub struct BatchBuilder<S> {
    service: S,
    ids: IdGenerator,
    batch: BatchRequest,
    /// The first params that are not JSON-RPC params: the batch fails unsent.
    error: Option<serde_json::Error>,
    /// Calls added so far: the next call's index among the answers.
    calls: usize,
}

impl<S> fmt::Debug for BatchBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl<S, E> BatchBuilder<S>
where
    S: Service<Request, Response = Response, Error = E>
        + Service<BatchRequest, Response = BatchResponse, Error = E>
        + Clone,
{
    fn push(&mut self, method: MethodName, params: impl Serialize, id: Option<Id>) {
        match to_params(params) {
            Ok(params) => {
                let req = Request::new(method, params);
                self.batch.push(match id {
                    Some(id) => req.with_id(id),
                    None => req,
                });
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Adds a call whose result is an `R`.
    pub fn call<R: DeserializeOwned>(
        &mut self,
        method: impl Into<MethodName>,
        params: impl Serialize,
    ) -> BatchItem<R> {
        let id = (self.ids)();
        self.push(method.into(), params, Some(id.clone()));
        let index = self.calls;
        self.calls += 1;
        BatchItem {
            id,
            index,
            _result: PhantomData,
        }
    }

    /// Adds a notification.
    pub fn notify(&mut self, method: impl Into<MethodName>, params: impl Serialize) {
        self.push(method.into(), params, None);
    }

    /// Gives the whole batch its own retry strategy, replacing the stack's default
    /// entirely, as [`RequestBuilder::retry`] does (its non-idempotent methods
    /// included). One strategy decides for the whole batch: there is no strategy per
    /// call of a batch.
    pub fn retry(&mut self, strategy: RetryStrategy) -> &mut Self {
        self.batch.extensions_mut().insert(strategy);
        self
    }

    /// Adds a value to the batch's extensions, for the layers below (a tenant, a
    /// tracing context), as [`RequestBuilder::extension`] does for one request: the codec
    /// moves it onto every attempt's HTTP request, a re-send of some calls included.
    pub fn extension<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> &mut Self {
        self.batch.extensions_mut().insert(value);
        self
    }

    /// Sends the batch; each call's result is then taken with its [`BatchItem`]. A batch
    /// with nothing in it (built from a list that happened to be empty) sends nothing
    /// and has no results: JSON-RPC makes an empty batch invalid. A batch of
    /// notifications only that the server refuses as a whole (an error with a null id)
    /// is [`ClientError::Rpc`] with that error (one notification refused under a failure
    /// status is a transport error; under a 2xx its body is not decoded); in a batch with
    /// calls, each call's result carries the refusal. An error with a null id that no
    /// call took (the server could not read a notification) is kept in
    /// [`BatchResults::unmatched`], and so is a refusal after which a retry sent the
    /// calls again but not a non-idempotent notification: the server never ran it.
    ///
    /// The future ([`BatchFuture`]) owns the batch and a clone of the service, and
    /// borrows nothing.
    pub fn send(self) -> BatchFuture<S> {
        let state = match (self.error, self.batch.is_empty()) {
            (Some(e), _) => BatchState::Done {
                result: Some(Err(ClientError::Params(e))),
            },
            (None, true) => BatchState::Done {
                result: Some(Ok(BatchResults::new(Vec::new(), Vec::new(), &[]))),
            },
            (None, false) => BatchState::Sent {
                calls: self.batch.ids().cloned().collect(),
                future: Fused::new(self.service.oneshot(self.batch)),
            },
        };
        BatchFuture { state }
    }
}

/// A batch's answer as its results for the `calls` sent (in call order).
fn batch_results<E>(
    mut response: BatchResponse,
    calls: &[Id],
) -> Result<BatchResults<E>, ClientError<E>> {
    // A batch of notifications refused as a whole has no call to carry the refusal.
    if response.items().is_empty() {
        if let Some(error) = response.batch_error() {
            let facts = RpcError::facts(response.extensions());
            let error = RpcError::answered(error.clone(), facts);
            return Err(ClientError::Rpc(error));
        }
    }
    let unmatched = response.take_unmatched();
    Ok(BatchResults::new(response.into_items(), unmatched, calls))
}

/// The answers to a batch, taken one call at a time with its [`BatchItem`].
pub struct BatchResults<E = codec::Error> {
    /// In call order; `None` once taken.
    items: Vec<Option<Response>>,
    /// For answers that are not one per call in call order (a service that reorders
    /// or drops them): where to find them by id.
    out_of_place: Option<ById>,
    /// Error answers with a null id that no call took ([`BatchResponse::unmatched`]).
    unmatched: Vec<Response>,
    _error: PhantomData<fn() -> E>,
}

/// Answers found by id: each id's first answer not taken yet, and for each answer the
/// next one with the same id, so that calls sharing an id take them in call order; and
/// the calls' ids in call order, to hand back what is left in that order.
struct ById {
    first: std::collections::HashMap<Id, usize>,
    next_same: Vec<Option<usize>>,
    calls: Vec<Id>,
}

impl ById {
    fn new(items: &[Response], calls: &[Id]) -> Self {
        let mut first = std::collections::HashMap::with_capacity(items.len());
        let mut next_same = vec![None; items.len()];
        // Backwards, so the first answer of an id ends in the map, chained to the rest.
        for (i, item) in items.iter().enumerate().rev() {
            if let Some(slot) = next_same.get_mut(i) {
                *slot = first.insert(item.id().clone(), i);
            }
        }
        Self {
            first,
            next_same,
            calls: calls.to_vec(),
        }
    }

    /// Where the next answer with this id is, taking it.
    fn take(&mut self, id: &Id) -> Option<usize> {
        let found = self.first.remove(id)?;
        if let Some(next) = self.next_same.get(found).copied().flatten() {
            self.first.insert(id.clone(), next);
        }
        Some(found)
    }
}

impl<E> fmt::Debug for BatchResults<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchResults")
            .field("items", &self.items.iter().flatten().collect::<Vec<_>>())
            .field("unmatched", &self.unmatched)
            .finish()
    }
}

impl<E> BatchResults<E> {
    fn new(items: Vec<Response>, unmatched: Vec<Response>, calls: &[Id]) -> Self {
        let in_place =
            items.len() == calls.len() && items.iter().zip(calls).all(|(r, id)| r.id() == id);
        let out_of_place = (!in_place).then(|| ById::new(&items, calls));
        Self {
            items: items.into_iter().map(Some).collect(),
            out_of_place,
            unmatched,
            _error: PhantomData,
        }
    }

    /// Error answers with a null id that no call of the batch took: the server could
    /// not read some item of the batch (a notification, say), and every call was
    /// answered anyway; or its refusal of the whole batch, when a retry sent the calls
    /// again but not a non-idempotent notification. Also at the end of
    /// [`into_responses`](Self::into_responses).
    pub fn unmatched(&self) -> &[Response] {
        &self.unmatched
    }

    /// The typed result of one call.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rpc`] when the server answered the call with an error object,
    /// [`ClientError::Deserialize`] when its result is not an `R`, and
    /// [`ClientError::MissingItem`] when the batch's answer has no item for it (or it
    /// was taken already).
    pub fn take<R: DeserializeOwned>(&mut self, item: BatchItem<R>) -> Result<R, ClientError<E>> {
        let answers = |r: &Option<Response>| r.as_ref().is_some_and(|r| r.id() == &item.id);
        let at = match &mut self.out_of_place {
            // Answers out of place: by id, in call order for calls sharing one.
            Some(by_id) => by_id.take(&item.id),
            // One answer per call, in call order: its own slot (a scan only for a handle
            // from another batch).
            None => match self.items.get(item.index) {
                Some(slot) if answers(slot) => Some(item.index),
                _ => self.items.iter().position(answers),
            },
        };
        let response = at
            .and_then(|i| self.items.get_mut(i))
            .and_then(Option::take)
            .ok_or(ClientError::MissingItem(item.id))?;
        to_value(response)
    }

    /// The responses not taken yet, in call order (then any answer to no call of the
    /// batch, in the order the service gave them, and then the
    /// [`unmatched`](Self::unmatched) errors).
    pub fn into_responses(mut self) -> Vec<Response> {
        // Answers out of place: each call's first, found by id.
        let mut responses = Vec::with_capacity(self.items.len() + self.unmatched.len());
        if let Some(mut by_id) = self.out_of_place.take() {
            for id in std::mem::take(&mut by_id.calls) {
                let found = by_id.take(&id).and_then(|i| self.items.get_mut(i));
                if let Some(response) = found.and_then(Option::take) {
                    responses.push(response);
                }
            }
        }
        // Then whatever is left, in the order it came, and the unmatched errors.
        responses.extend(self.items.into_iter().flatten());
        responses.extend(self.unmatched);
        responses
    }
}

/// Assembles the recommended stack.
///
/// That is [`JsonRpcRetryLayer`] over [`JsonRpcCodecLayer`] (with a per-attempt
/// [`attempt_timeout`](JsonRpcCodecLayer::attempt_timeout) that covers the response body
/// too) over hyper-util's client, with `TCP_NODELAY`.
///
/// # Default
///
/// | setting | default | why |
/// |---|---|---|
/// | [`attempt_timeout`](Self::attempt_timeout) | [`DEFAULT_ATTEMPT_TIMEOUT`] (10 s) | a hung connection ends and can be retried |
/// | retry strategy | [`RetryStrategy::transient()`] | connect, timeout, reset, 429/502/503/504 |
/// | [`response_limit`](Self::response_limit) | [`codec::DEFAULT_BODY_LIMIT`] (10 MiB) | |
/// | HTTP version | HTTP/1.1 | a timed-out attempt closes its connection, so its retry never goes out on the connection that timed out; `ClientBuilder::http2` (feature `http2`) says what HTTP/2 does instead |
/// | deadline for the whole call | none | set one on the strategy, [`max_elapsed`](RetryStrategy::max_elapsed): without it, a call with `transient()` may take its 4 attempts of up to 10 s each and 3 waits, each raised up to 60 s by a server's `Retry-After` (the [ceiling](RetryStrategy::retry_after_ceiling)), 3 min 40 s in all |
///
/// [`build`](Self::build) speaks plain HTTP; with the `rustls` feature,
/// `build_https` speaks HTTPS too. For anything else (another TLS
/// connector, concurrency limits, tower-http layers), assemble
/// the stack with `ServiceBuilder` and pass it to [`Client::new`].
#[derive(Debug, Clone)]
#[must_use = "a client builder makes no client until `build` is called"]
pub struct ClientBuilder {
    /// The codec layer, its attempt timeout included (so that `Debug` shows the one
    /// the client will use).
    codec: JsonRpcCodecLayer,
    strategy: RetryStrategy,
    /// HTTP/2, when asked for: offered over HTTPS, or spoken from the first byte.
    #[cfg(feature = "http2")]
    http2: Option<Http2>,
}

/// How [`ClientBuilder`]'s client speaks HTTP/2, when it does.
#[cfg(feature = "http2")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Http2 {
    /// Offered with ALPN over HTTPS, beside HTTP/1.1; the server chooses.
    Offered,
    /// Spoken on every connection, from its first byte.
    PriorKnowledge,
}

/// How long an HTTP/2 connection of [`ClientBuilder`]'s client may stay silent while a
/// call on it is open before it is pinged, and how long the ping may go unanswered
/// before the connection is closed: a quarter of the attempt timeout, at least 1 s (a
/// ping's answer takes a round trip, and a connection closed for a late one fails every
/// call on it) and at most 15 s (see [`ClientBuilder::http2`]).
#[cfg(feature = "http2")]
fn http2_keep_alive(attempt_timeout: Option<Duration>) -> Duration {
    const LEAST: Duration = Duration::from_secs(1);
    const MOST: Duration = Duration::from_secs(15);
    attempt_timeout.map_or(MOST, |t| (t / 4).clamp(LEAST, MOST))
}

/// The TCP connector of [`ClientBuilder`]'s stacks: hyper-util's, with `TCP_NODELAY`.
/// An HTTP/2 request goes out as frames written one after another (its headers, then
/// its body), and with Nagle's algorithm on, the body waited for the server to
/// acknowledge the headers, which Linux delays by 40 ms or more: over loopback, a call
/// took about 44 ms instead of well under one.
fn tcp() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp
}

/// The default time one attempt may take in [`Client::builder`]'s stack: long enough for
/// a slow node's heavy call, and a hung connection still ends, to be retried.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientBuilder {
    fn new(uri: Uri) -> Self {
        Self {
            codec: JsonRpcCodecLayer::new(uri)
                .attempt_timeout(DEFAULT_ATTEMPT_TIMEOUT)
                .absolute_uri(),
            strategy: RetryStrategy::transient(),
            #[cfg(feature = "http2")]
            http2: None,
        }
    }

    /// Sets how long one attempt may take; a retry gets a fresh timeout. The attempt
    /// fails as a timeout ([`ErrorClass::Timeout`](crate::ErrorClass::Timeout)).
    ///
    /// # Default
    ///
    /// [`DEFAULT_ATTEMPT_TIMEOUT`] (10 s).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.codec = self.codec.attempt_timeout(timeout);
        self
    }

    /// Sets the retry strategy of calls that carry none of their own.
    ///
    /// # Default
    ///
    /// [`RetryStrategy::transient()`]: connect failures, timeouts, resets and
    /// 429/502/503/504, three retries.
    pub fn retry(mut self, strategy: RetryStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Adds a header to every HTTP request (e.g. `Authorization`), replacing one of the
    /// same name. Credentials are marked sensitive, as
    /// [`JsonRpcCodecLayer::header`] marks them, so `Debug` output never shows them.
    ///
    /// The types are the `http` crate's, re-exported as [`crate::http`]:
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::{HeaderValue, header::AUTHORIZATION};
    ///
    /// let token = "s3cret";
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .header(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?)
    ///     .header("x-api-key".parse()?, HeaderValue::from_static("k3y"))
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.codec = self.codec.header(name, value);
        self
    }

    /// Adds these headers to every HTTP request, as
    /// [`JsonRpcCodecLayer::headers`] does.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.codec = self.codec.headers(headers);
        self
    }

    /// Sets the largest response body read, in bytes. A larger body under a 2xx fails
    /// the call with a [`codec::Error`] for which
    /// [`is_body_too_large`](codec::Error::is_body_too_large) holds; under a failure
    /// status, the status is the answer (as
    /// [`JsonRpcCodecLayer::response_limit`] says).
    ///
    /// # Default
    ///
    /// [`DEFAULT_BODY_LIMIT`](codec::DEFAULT_BODY_LIMIT) (10 MiB).
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.codec = self.codec.response_limit(bytes);
        self
    }

    /// HTTP/2 where the server offers it: over HTTPS, ALPN offers `h2` beside
    /// `http/1.1` and the server chooses; plain HTTP stays HTTP/1.1. Replaces
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge) (h2c), if called before.
    /// Needs the `http2` feature (on by default).
    ///
    /// The client speaks HTTP/1.1 unless asked, because of what a timeout leaves behind.
    /// Over HTTP/1.1 an attempt that times out closes its connection. Over HTTP/2 it
    /// resets only its stream, and the retry goes out on the same connection: on one
    /// that died silently (a partition, a NAT entry dropped), every retry would wait out
    /// its timeout in turn. So while a call is open, this client pings a connection
    /// silent for a quarter of the [attempt timeout](Self::attempt_timeout) and closes it
    /// when the ping goes unanswered as long again (each wait clamped to 1–15 s; 2.5 s
    /// with the default 10 s): within half the attempt timeout the attempt fails as a
    /// timeout, and its retry opens a new connection. Under a 4 s attempt timeout that
    /// takes 2 s, and under 2 s the retries until then go out on the dead connection. A
    /// slow handler does not close a connection (the server answers pings meanwhile),
    /// but a server that stalls as a whole for that long (a single-threaded one busy
    /// computing) loses it the same way.
    ///
    /// Over HTTP/2 the calls share a connection, and calls beyond the server's limit of
    /// concurrent streams (often 100 to 250) wait for a free one. The first of them in
    /// line may already be in h2's hands (with recent hyper and h2): if it times out or
    /// is dropped meanwhile, it can still be sent once a stream frees. So even a call
    /// that timed out while waiting may run later: for non-idempotent methods, keep
    /// fewer calls in flight than the server's limit. A stream the server refused
    /// (`REFUSED_STREAM`) is sent again even for a non-idempotent method: the server says
    /// it did not process it.
    ///
    /// Its connections set `TCP_NODELAY`, as a stack of your own over HTTP/2 should
    /// (hyper-util's `HttpConnector::set_nodelay(true)`): without it, each call's body
    /// waits for the server's delayed acknowledgement of its headers, 40 ms or more.
    ///
    /// ```no_run
    /// # #[cfg(feature = "rustls")]
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = tower_jsonrpc_retry::Client::builder("https://rpc.example.com/".parse()?)
    ///     .http2()
    ///     .build_https()?;
    /// let block: String = client.call("eth_blockNumber", ()).await?;
    /// # let _ = block;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2(mut self) -> Self {
        self.http2 = Some(Http2::Offered);
        self
    }

    /// HTTP/2 on every connection, from its first byte: for plain HTTP, a server that
    /// speaks h2c; over HTTPS, ALPN offers `h2` alone: a server that picks another
    /// protocol refuses the handshake, and one that negotiates none is spoken HTTP/2
    /// regardless. Otherwise as [`http2`](Self::http2), which it replaces if called
    /// before. Needs the `http2` feature (on by default).
    ///
    /// A plain-HTTP server that speaks HTTP/1.1 only closes the connection on the
    /// preface: the call fails as a broken connection
    /// ([`ErrorClass::Reset`](crate::ErrorClass::Reset)), which strategies that retry
    /// resets (the [`transient`](RetryStrategy::transient) preset) retry to no avail, on
    /// a new connection each time.
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::Version;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).http2_prior_knowledge().build();
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// assert_eq!(server.versions(), [Version::HTTP_2]);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2 = Some(Http2::PriorKnowledge);
        self
    }

    /// The client, over plain HTTP. A URI whose scheme is not `http`, or that has none
    /// (`localhost:8545`), fails every call at once, without a retry, with
    /// [`UnsupportedScheme`] in the error's chain (for `https`, see `build_https`, feature
    /// `rustls`). Needs a tokio runtime when calls are made, not now.
    pub fn build(self) -> Client {
        self.over(SchemeCheck::http(tcp()))
    }

    /// The same client over HTTPS (and plain HTTP), with rustls and the Mozilla root
    /// certificates of `webpki-roots`: what a hosted node's `https://` endpoint needs.
    /// Needs the `rustls` feature. Fails only if rustls cannot be set up (see
    /// [`tls_config`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = tower_jsonrpc_retry::Client::builder("https://rpc.example.com/".parse()?)
    ///     .build_https()?;
    /// let block: String = client.call("eth_blockNumber", ()).await?;
    /// # let _ = block;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn build_https(self) -> Result<Client<HttpsStack>, rustls::Error> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Ok(self.build_https_with(tls_config(roots)?))
    }

    /// [`build_https`](Self::build_https) with your own rustls configuration: your own
    /// root certificates (a private CA), a client certificate. Its ALPN protocols are
    /// replaced: none for HTTP/1.1 alone, the client's own with `http2` or
    /// `http2_prior_knowledge` (feature `http2`). Needs the `rustls` feature.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn build_https_with(self, mut tls: rustls::ClientConfig) -> Client<HttpsStack> {
        // hyper-rustls sets ALPN itself, and refuses (panics on) a configuration that
        // already names protocols.
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let mut tcp = tcp();
        tcp.enforce_http(false);
        #[cfg(feature = "http2")]
        let https = match self.http2 {
            Some(Http2::Offered) => https.enable_all_versions().wrap_connector(tcp),
            Some(Http2::PriorKnowledge) => https.enable_http2().wrap_connector(tcp),
            None => https.enable_http1().wrap_connector(tcp),
        };
        #[cfg(not(feature = "http2"))]
        let https = https.enable_http1().wrap_connector(tcp);
        self.over(SchemeCheck::http_or_https(https))
    }

    /// The recommended stack over hyper-util's client with this connector.
    fn over<C>(self, connector: C) -> Client<StackOver<C>>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        #[allow(unused_mut)]
        let mut http = HyperClient::builder(TokioExecutor::new());
        #[cfg(feature = "http2")]
        if let Some(versions) = self.http2 {
            let keep_alive = http2_keep_alive(self.codec.attempt_timeout_set());
            http.timer(hyper_util::rt::TokioTimer::new())
                .http2_keep_alive_interval(keep_alive)
                .http2_keep_alive_timeout(keep_alive)
                .http2_only(versions == Http2::PriorKnowledge);
        }
        let http = http.build(connector);
        let service = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(self.strategy))
            .layer(self.codec)
            .service(http);
        Client::new(service)
    }
}

/// The rustls this crate builds on, for [`build_https_with`](ClientBuilder::build_https_with)'s
/// configuration and [`tls_config`]'s roots without a version to match by hand.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use rustls;

/// A rustls client configuration trusting `roots`, for
/// [`build_https_with`](ClientBuilder::build_https_with) (a private CA, say).
///
/// It names rustls's `ring` provider explicitly, so that another crate enabling a second
/// provider cannot leave rustls unable to pick one, and its default protocol versions
/// (TLS 1.3 and 1.2). Fails only if the provider does not support them. Needs the
/// `rustls` feature.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The client's futures: of a call, a notification and a batch, and of the connection
/// a [`SchemeCheck`] makes.
pub mod future {
    use super::*;

    pub use super::scheme::Connecting;

    pin_project! {
        /// The future of [`Client::call`] and [`RequestBuilder::send`]: the call's result,
        /// deserialized into `R`.
        ///
        /// It owns a clone of the service and the request, so it borrows nothing: it can
        /// be spawned, or kept in a struct by name. It is `Send` and `Sync` when `S`, its
        /// future and its error are; it is `Unpin` when the service's future is, which the
        /// [`DefaultStack`]'s is not: pin it (`Box::pin`, `std::pin::pin!`) to poll it by
        /// hand or to `select!` on it across loop turns.
        ///
        /// ```
        /// use tower_jsonrpc_retry::Client;
        /// use tower_jsonrpc_retry::client::DefaultStack;
        /// use tower_jsonrpc_retry::client::future::CallFuture;
        ///
        /// struct Pending {
        ///     block: CallFuture<DefaultStack, String>,
        /// }
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
        /// # server.handle("eth_blockNumber", |_| Ok(serde_json::json!("0x10")));
        /// # let client = Client::builder(server.uri()).build();
        /// let pending = Pending { block: client.call("eth_blockNumber", ()) };
        /// let block: String = pending.block.await?;
        /// assert_eq!(block, "0x10");
        /// # Ok(())
        /// # }
        /// ```
        #[must_use = "futures do nothing unless you `.await` or poll them"]
        pub struct CallFuture<S, R>
        where
            S: Service<Request>,
        {
            #[pin]
            pub(super) state: Exchange<S>,
            pub(super) _result: PhantomData<fn() -> R>,
        }
    }

    impl<S, R> Future for CallFuture<S, R>
    where
        S: Service<Request, Response = Response>,
        R: DeserializeOwned,
    {
        type Output = Result<R, ClientError<S::Error>>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.project()
                .state
                .poll(cx)
                .map(|response| to_value(response?))
        }
    }

    impl<S: Service<Request>, R> fmt::Debug for CallFuture<S, R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CallFuture").finish_non_exhaustive()
        }
    }

    pin_project! {
        /// The future of [`Client::notify`] and [`RequestBuilder::notify`]. Like
        /// [`CallFuture`], it borrows nothing, and has the same auto traits.
        #[must_use = "futures do nothing unless you `.await` or poll them"]
        pub struct NotifyFuture<S>
        where
            S: Service<Request>,
        {
            #[pin]
            pub(super) state: Exchange<S>,
        }
    }

    impl<S> Future for NotifyFuture<S>
    where
        S: Service<Request, Response = Response>,
    {
        type Output = Result<(), ClientError<S::Error>>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.project()
                .state
                .poll(cx)
                .map(|response| response.map(drop))
        }
    }

    impl<S: Service<Request>> fmt::Debug for NotifyFuture<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("NotifyFuture").finish_non_exhaustive()
        }
    }

    pin_project! {
        /// The future of [`Client::send`]: the response as it came, or the stack's error.
        /// Like [`CallFuture`], it borrows nothing, and has the same auto traits.
        #[must_use = "futures do nothing unless you `.await` or poll them"]
        pub struct SendFuture<S>
        where
            S: Service<Request>,
        {
            #[pin]
            pub(super) future: Fused<Oneshot<S, Request>>,
        }
    }

    impl<S> Future for SendFuture<S>
    where
        S: Service<Request>,
    {
        type Output = Result<S::Response, S::Error>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.project().future.poll(cx)
        }
    }

    impl<S: Service<Request>> fmt::Debug for SendFuture<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SendFuture").finish_non_exhaustive()
        }
    }

    pin_project! {
        /// The future of [`BatchBuilder::send`]: the batch's results. Like [`CallFuture`],
        /// it owns a clone of the service and the batch and borrows nothing, so it can be
        /// spawned or kept in a struct by name; it is `Send` and `Sync` when the service,
        /// its future and its error are, and `Unpin` when the service's future is.
        #[must_use = "futures do nothing unless you `.await` or poll them"]
        pub struct BatchFuture<S>
        where
            S: Service<BatchRequest>,
        {
            #[pin]
            pub(super) state: BatchState<S>,
        }
    }

    pin_project! {
        #[project = BatchStateProj]
        pub(super) enum BatchState<S>
        where
            S: Service<BatchRequest>,
        {
            Sent { #[pin] future: Fused<Oneshot<S, BatchRequest>>, calls: Vec<Id> },
            /// Refused before it was sent, or empty: the result, taken when given.
            Done { result: Option<Result<BatchResults<S::Error>, ClientError<S::Error>>> },
        }
    }

    impl<S> Future for BatchFuture<S>
    where
        S: Service<BatchRequest, Response = BatchResponse>,
    {
        type Output = Result<BatchResults<S::Error>, ClientError<S::Error>>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match self.project().state.project() {
                BatchStateProj::Sent { future, calls } => {
                    let response = std::task::ready!(future.poll(cx));
                    Poll::Ready(batch_results(
                        response.map_err(ClientError::Transport)?,
                        calls,
                    ))
                }
                BatchStateProj::Done { result } => match result.take() {
                    Some(result) => Poll::Ready(result),
                    // Polled again after it was ready: there is nothing more to give.
                    None => Poll::Pending,
                },
            }
        }
    }

    impl<S: Service<BatchRequest>> fmt::Debug for BatchFuture<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("BatchFuture").finish_non_exhaustive()
        }
    }
}
