//! A typed client over any JSON-RPC service stack: `call`, `notify`, batches.
//!
//! [`Client`] turns Rust values into [`Request`]s and results back into Rust values;
//! everything else (HTTP, timeouts, retries) is the service stack under it. Build the
//! recommended stack with [`Client::builder`], or bring your own with [`Client::new`].
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::{Client, RetryStrategy, http};
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

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_service::Service;

use crate::RetryStrategy;
use crate::codec::{JsonRpcCodec, RequestHeaders};
use crate::jsonrpc::{BatchRequest, BatchResponse, Id, MethodName, Request, Response};
use crate::retry::JsonRpcRetry;

mod batch;
mod builder;
mod error;
mod resend;
mod scheme;

use crate::fused::Fused;
pub use batch::{BatchBuilder, BatchItem, BatchResults};
use batch::{BatchSerial, batch_results};
#[cfg(feature = "rustls")]
pub use builder::tls_config;
pub use builder::{ClientBuilder, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT};
use error::to_value;
pub use error::{ClientError, ResultMismatch, RpcError};
use future::{CallFuture, NotifyFuture, SendFuture};
pub use resend::{ResendCancelled, Resending};
pub use scheme::{SchemeCheck, UnsupportedScheme};

/// The rustls this crate builds on, for [`build_https_with`](ClientBuilder::build_https_with)'s
/// configuration and [`tls_config`]'s roots without a version to match by hand.
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub use rustls;

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
///
/// # Examples
///
/// The recommended stack, taken out to go under a layer of your own:
///
/// ```
/// use tower::limit::ConcurrencyLimit;
/// use tower_jsonrpc_retry::Client;
/// use tower_jsonrpc_retry::client::DefaultStack;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// let stack: DefaultStack = Client::builder(server.uri()).build().service().clone();
/// // At most 8 calls at a time (a batch counts as one), a permit held through retries.
/// let client = Client::new(ConcurrencyLimit::new(stack, 8));
/// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
/// # Ok(())
/// # }
/// ```
pub type DefaultStack = StackOver<SchemeCheck<HttpConnector>>;

/// The recommended stack over hyper-util's client with connector `C`.
type StackOver<C> = JsonRpcRetry<JsonRpcCodec<ResendCancelled<HyperClient<C, Full<Bytes>>>>>;

/// The stack [`ClientBuilder::build_https`] assembles: the [`DefaultStack`] with a
/// rustls connector, for `https` and `http` URIs.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::Client;
/// use tower_jsonrpc_retry::client::HttpsStack;
///
/// /// A service's handle on its node, kept by name.
/// struct Node {
///     rpc: Client<HttpsStack>,
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// let node = Node { rpc: Client::builder(server.uri()).build_https()? };
/// assert_eq!(node.rpc.call::<i64>("sum", (1, 2)).await?, 3);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub type HttpsStack = StackOver<SchemeCheck<hyper_rustls::HttpsConnector<HttpConnector>>>;

type IdGenerator = Arc<dyn Fn() -> Id + Send + Sync>;

/// A JSON-RPC client over a service stack `S`.
///
/// Cheap to clone; clones share the stack's configuration and the id counter. Each call
/// runs on a clone of the service, so calls can run concurrently.
///
/// A call gives the typed result, or a [`ClientError`]: the server's error object once
/// the strategy stops retrying ([`ClientError::rpc`]), or the stack's error.
///
/// # Examples
///
/// A call under the default strategy, then one with a strategy of its own
/// ([`Client::request`]):
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
    /// Credentials in the URI (`http://user:password@host/`) are sent as an `Authorization:
    /// Basic` header, as [`JsonRpcCodecLayer::new`](crate::codec::JsonRpcCodecLayer::new)
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri())
    ///     .retry(RetryStrategy::transient().max_elapsed(Duration::from_secs(30)))
    ///     .attempt_timeout(Duration::from_secs(5))
    ///     .build();
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// A stack of your own, here the retry layer and the codec over hyper-util's client:
    ///
    /// ```
    /// use hyper_util::client::legacy::Client as HttpClient;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower::ServiceBuilder;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    /// use tower_jsonrpc_retry::{Client, JsonRpcRetryLayer, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let http = HttpClient::builder(TokioExecutor::new()).build_http();
    /// let stack = ServiceBuilder::new()
    ///     .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
    ///     .layer(JsonRpcCodecLayer::new(server.uri()))
    ///     .service(http);
    /// let client = Client::new(stack);
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(service: S) -> Self {
        Self {
            service,
            ids: counter(),
        }
    }

    /// Uses `f` to make the id of every call. A batch needs a distinct id for each of
    /// its calls: one with two calls of the same id fails unsent, in
    /// [`ClientError::Transport`] (a [`codec::Error`](crate::codec::Error) for which
    /// [`is_invalid_request`](crate::codec::Error::is_invalid_request) holds, its
    /// [`DuplicateId`](crate::jsonrpc::DecodeError::DuplicateId) naming the id).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::jsonrpc::Id;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// // String ids with a prefix of this process's own, for the server's logs.
    /// let next = AtomicU64::new(1);
    /// let client = Client::builder(server.uri())
    ///     .build()
    ///     .with_id_generator(move || {
    ///         Id::from(format!("worker-7/{}", next.fetch_add(1, Ordering::Relaxed)))
    ///     });
    /// let _: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(server.bodies_json()[0]["id"], "worker-7/1");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_id_generator<F>(mut self, f: F) -> Self
    where
        F: Fn() -> Id + Send + Sync + 'static,
    {
        self.ids = Arc::new(f);
        self
    }

    /// The service stack.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// let client = Client::builder("http://ada:s3cret@127.0.0.1:8545/".parse()?).build();
    /// // The retry layer, over the codec: the endpoint, its credentials sent as a header.
    /// assert_eq!(client.service().get_ref().uri(), "http://127.0.0.1:8545/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// For the same reason `R = Box<serde_json::value::RawValue>` gets the result written
    /// anew from that value, not the server's text: its spaces dropped, such integers
    /// rounded, its object members sorted (unless serde_json's `preserve_order` feature is
    /// on in the build).
    ///
    /// A result is the call's value whatever the HTTP status it came under. The retry layer
    /// counts a result under a status its strategy retries (a `503`) as a failure and asks
    /// again (unless the method is held back as non-idempotent); when the retries end on
    /// one, the last answer's result is returned. [`send`](Self::send) shows such an answer
    /// whole: its [`StatusCode`](http::StatusCode) and how the retries ended
    /// ([`GaveUp`](crate::GaveUp)) are in its extensions.
    ///
    /// The future ([`CallFuture`]) owns a clone of the service and the request and
    /// borrows nothing, so it can be spawned or stored; it is `Send` whenever the
    /// service, its future and its error are (a `BoxCloneService` too, which is not
    /// `Sync`).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde::Deserialize;
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::Client;
    ///
    /// #[derive(Deserialize)]
    /// struct Account {
    ///     name: String,
    ///     balance: u64,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// // Positional params: a tuple. The test server's `sum` adds them.
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// // Named params: a struct or a map. Its `echo` answers with the params it was sent.
    /// let account: Account = client
    ///     .call("echo", json!({"name": "ada", "balance": 7}))
    ///     .await?;
    /// assert_eq!((sum, account.name.as_str(), account.balance), (3, "ada", 7));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// client.notify("sum", (1, 2)).await?;
    /// assert_eq!(server.bodies_json()[0].get("id"), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn notify(&self, method: impl Into<MethodName>, params: impl Serialize) -> NotifyFuture<S> {
        self.request(method).params(params).notify()
    }

    /// A request to configure before sending: params, its own retry strategy, its id, and
    /// values in its extensions for the layers below.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::test_util::Step;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// server.script("sum", [Step::error(-32000)]);
    /// // This call alone retries -32000, once, after 10 ms; its id is its own.
    /// let once = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10)))
    ///     .codes([-32000]);
    /// let sum: i64 = client
    ///     .request("sum")
    ///     .params((1, 2))
    ///     .retry(once)
    ///     .id("sum-1")
    ///     .send()
    ///     .await?;
    /// assert_eq!((sum, server.calls("sum")), (3, 2));
    /// # Ok(())
    /// # }
    /// ```
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
    /// [`ClientError`]. A notification has no answer to return: taken by the server, it
    /// comes back as the codec makes it, a null id and a null result (see
    /// [`codec`](crate::codec)'s table).
    ///
    /// The future ([`SendFuture`]) borrows nothing: it owns a clone of the service.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    /// use tower_jsonrpc_retry::test_util::Step;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// server.script("sum", [Step::error(-32602)]);
    /// let answer = client.send(Request::new("sum", json!([1, 2])).with_id(1)).await?;
    /// // The error answer as it came, with its code, message and data.
    /// assert_eq!(answer.error().map(|e| e.code()), Some(-32602));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// let mut batch = client.batch();
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// let seven = batch.call::<i64>("sum", (3, 4));
    /// let mut results = batch.send().await?;
    /// assert_eq!((results.take(three)?, results.take(seven)?), (3, 7));
    /// assert_eq!(server.http_requests(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch(&self) -> BatchBuilder<S> {
        BatchBuilder::new(self.service.clone(), Arc::clone(&self.ids))
    }
}

/// A request being configured; see [`Client::request`].
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::client::{DefaultStack, RequestBuilder};
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{Client, RetryStrategy};
///
/// /// Sends a write once: a retry could apply it twice.
/// fn once(write: RequestBuilder<'_, DefaultStack>) -> RequestBuilder<'_, DefaultStack> {
///     write.retry(RetryStrategy::none())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// server.script("sum", [Step::status(503)]);
/// let client = Client::builder(server.uri()).build();
/// assert!(once(client.request("sum").params((1, 2))).send::<i64>().await.is_err());
/// assert_eq!(server.calls("sum"), 1);
/// # Ok(())
/// # }
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use serde::Serialize;
    /// use tower_jsonrpc_retry::Client;
    ///
    /// #[derive(Serialize)]
    /// struct Range {
    ///     from: u64,
    ///     to: u64,
    /// }
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?).build();
    /// let positional = client.request("eth_getBalance").params(("0xab5801a7", "latest"));
    /// let named = client.request("logs").params(Range { from: 1, to: 9 });
    /// let none = client.request("eth_blockNumber").params(());
    /// # let _ = (positional, named, none);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn params(mut self, params: impl Serialize) -> Self {
        self.params = to_params(params);
        self
    }

    /// Gives this request its own retry strategy, replacing the stack's default entirely,
    /// its hooks, budget, deadline and non-idempotent methods included (build it from a
    /// clone of the default to keep them: one made afresh marks no method
    /// non-idempotent). It governs the call, whatever its method: its strategies for
    /// methods ([`for_method`](crate::RetryStrategy::for_method)), a clone's included,
    /// only hold calls back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// let default = RetryStrategy::transient();
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .retry(default.clone())
    ///     .build();
    /// // The default's rules and hooks, with a deadline of its own for this call.
    /// let quick = client
    ///     .request("eth_blockNumber")
    ///     .retry(default.max_elapsed(Duration::from_secs(2)));
    /// # let _ = quick;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, strategy: RetryStrategy) -> Self {
        self.extensions.insert(strategy);
        self
    }

    /// Sets the id instead of taking the client's next one.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?).build();
    /// let call = client.request("eth_chainId").id("chain-id-1");
    /// # let _ = call;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(mut self, id: impl Into<Id>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a header to this call's HTTP requests (every attempt): a trace context, a
    /// tenant, a token of the caller's. Given twice, a name has both values, which
    /// replace those the client sends with every call under that name. It rides in the
    /// request's extensions as [`RequestHeaders`], which the codec reads (see there:
    /// `Content-Length` and `Transfer-Encoding` are left out, credentials marked
    /// sensitive).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// let sum: i64 = client
    ///     .request("sum")
    ///     .params((1, 2))
    ///     .header(
    ///         HeaderName::from_static("x-tenant"),
    ///         HeaderValue::from_static("acme"),
    ///     )
    ///     .send()
    ///     .await?;
    /// assert_eq!(sum, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        RequestHeaders::add_to(&mut self.extensions, name, value);
        self
    }

    /// Adds a value to the request's extensions, for the layers below. The codec moves
    /// them onto every attempt's HTTP request, where a layer of yours reads them.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// /// A tenant, for a layer below the codec to route or meter by.
    /// #[derive(Clone)]
    /// struct Tenant(&'static str);
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?).build();
    /// let call = client.request("eth_blockNumber").extension(Tenant("acme"));
    /// # let _ = call;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// let echoed: Vec<String> = client.request("echo").params(("hi",)).send().await?;
    /// assert_eq!(echoed, ["hi"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send<R: DeserializeOwned>(self) -> CallFuture<S, R> {
        let service = self.client.service.clone();
        CallFuture {
            state: Exchange::start(service, self.build(false)),
            _result: PhantomData,
        }
    }

    /// Sends it as a notification: without an id, so one set with [`id`](Self::id) is
    /// not sent (a notification is a request with no id).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).build();
    /// client.request("log").params(("started",)).notify().await?;
    /// assert_eq!(server.calls("log"), 1);
    /// # Ok(())
    /// # }
    /// ```
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

/// The client's futures: of a call, a notification and a batch, and of the connection
/// a [`SchemeCheck`] makes.
pub mod future {
    use std::fmt;
    use std::future::Future;
    use std::marker::PhantomData;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use pin_project_lite::pin_project;
    use serde::de::DeserializeOwned;
    use tower::util::Oneshot;
    use tower_service::Service;

    use super::{BatchResults, BatchSerial, ClientError, Exchange, batch_results, to_value};
    use crate::fused::Fused;
    use crate::jsonrpc::{BatchRequest, BatchResponse, Id, Request, Response};

    pub use super::scheme::Connecting;

    pin_project! {
        /// The future of [`Client::call`](super::Client::call) and
        /// [`RequestBuilder::send`](super::RequestBuilder::send): the call's result,
        /// deserialized into `R`.
        ///
        /// It owns a clone of the service and the request, so it borrows nothing: it can
        /// be spawned, or kept in a struct by name. It is `Send` and `Sync` when `S`, its
        /// future and its error are; it is `Unpin` when the service's future is, which the
        /// [`DefaultStack`](super::DefaultStack)'s is not: pin it (`Box::pin`,
        /// `std::pin::pin!`) to poll it by hand or to `select!` on it across loop turns.
        ///
        /// # Examples
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
        /// The future of [`Client::notify`](super::Client::notify) and
        /// [`RequestBuilder::notify`](super::RequestBuilder::notify). Like [`CallFuture`],
        /// it borrows nothing, and has the same auto traits.
        ///
        /// # Examples
        ///
        /// ```
        /// use tower_jsonrpc_retry::Client;
        /// use tower_jsonrpc_retry::client::DefaultStack;
        /// use tower_jsonrpc_retry::client::future::NotifyFuture;
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
        /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
        /// let client = Client::builder(server.uri()).build();
        /// // Notifications made now, and sent in order later.
        /// let pending: Vec<NotifyFuture<DefaultStack>> = ["started", "ready"]
        ///     .into_iter()
        ///     .map(|step| client.notify("log", (step,)))
        ///     .collect();
        /// for notification in pending {
        ///     notification.await?;
        /// }
        /// assert_eq!(server.calls("log"), 2);
        /// # Ok(())
        /// # }
        /// ```
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
        /// The future of [`Client::send`](super::Client::send): the response as it came,
        /// or the stack's error. Like [`CallFuture`], it borrows nothing, and has the
        /// same auto traits.
        ///
        /// # Examples
        ///
        /// ```
        /// use serde_json::json;
        /// use tower_jsonrpc_retry::Client;
        /// use tower_jsonrpc_retry::client::DefaultStack;
        /// use tower_jsonrpc_retry::client::future::SendFuture;
        /// use tower_jsonrpc_retry::jsonrpc::Request;
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
        /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
        /// let client = Client::builder(server.uri()).build();
        /// let call = Request::new("sum", json!([1, 2])).with_id(1);
        /// let sending: SendFuture<DefaultStack> = client.send(call);
        /// // It borrows nothing: it can run as a task of its own.
        /// let answer = tokio::spawn(sending).await??;
        /// assert_eq!(answer.result(), Some(&json!(3)));
        /// # Ok(())
        /// # }
        /// ```
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
        /// The future of [`BatchBuilder::send`](super::BatchBuilder::send): the batch's
        /// results. Like [`CallFuture`], it owns a clone of the service and the batch and
        /// borrows nothing, so it can be spawned or kept in a struct by name; it is `Send`
        /// and `Sync` when the service, its future and its error are, and `Unpin` when the
        /// service's future is.
        ///
        /// # Examples
        ///
        /// ```
        /// use tower_jsonrpc_retry::Client;
        /// use tower_jsonrpc_retry::client::DefaultStack;
        /// use tower_jsonrpc_retry::client::future::BatchFuture;
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
        /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
        /// let client = Client::builder(server.uri()).build();
        /// let mut batch = client.batch();
        /// let three = batch.call::<i64>("sum", (1, 2));
        /// let sending: BatchFuture<DefaultStack> = batch.send();
        /// // It borrows nothing: it can run as a task of its own.
        /// let mut results = tokio::spawn(sending).await??;
        /// assert_eq!(results.take(three)?, 3);
        /// # Ok(())
        /// # }
        /// ```
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
            Sent {
                #[pin] future: Fused<Oneshot<S, BatchRequest>>,
                calls: Vec<Id>,
                serial: BatchSerial,
            },
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
                BatchStateProj::Sent {
                    future,
                    calls,
                    serial,
                } => {
                    let response = std::task::ready!(future.poll(cx));
                    Poll::Ready(batch_results(
                        response.map_err(ClientError::Transport)?,
                        calls,
                        *serial,
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
