//! Batches through the [`Client`](super::Client): built, sent, and read back by item.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use tower_service::Service;

use super::future::{BatchFuture, BatchState};
use super::{ClientError, IdGenerator, ResultMismatch, RpcError, to_params, to_value};
use crate::RetryStrategy;
use crate::codec;
use crate::fused::Fused;
use crate::jsonrpc::{BatchRequest, BatchResponse, ErrorObject, Id, MethodName, Request, Response};

/// A handle to one call of a batch, to take its typed result from [`BatchResults`].
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::client::BatchItem;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
/// // A call per pair, in one batch; each handle takes its own result.
/// let pairs = [(1, 2), (3, 4), (5, 6)];
/// let mut batch = client.batch();
/// let items: Vec<BatchItem<i64>> = pairs.iter().map(|p| batch.call("sum", p)).collect();
/// let mut results = batch.send().await?;
/// let sums = items.into_iter().map(|item| results.take(item));
/// assert_eq!(sums.collect::<Result<Vec<_>, _>>()?, [3, 7, 11]);
/// # Ok(())
/// # }
/// ```
pub struct BatchItem<R> {
    id: Id,
    /// Where its answer is: a batch's answers come in call order, one per call.
    index: usize,
    /// The batch it belongs to: two clients (or one id generator of your own) can give
    /// calls of two batches the same id, and a handle must not take another's answer.
    batch: BatchSerial,
    _result: PhantomData<fn() -> R>,
}

/// Which batch of this process a handle belongs to; drawn once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchSerial(u64);

impl BatchSerial {
    fn next() -> Self {
        // Only distinctness matters, not the order; 2^64 batches do not wrap in practice.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Whatever `R` is: the handle holds only the call's id.
impl<R> fmt::Debug for BatchItem<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchItem").field("id", &self.id).finish()
    }
}

/// A batch being filled; see [`Client::batch`](super::Client::batch).
///
/// Its settings for the whole batch ([`retry`](Self::retry), [`header`](Self::header),
/// [`extension`](Self::extension)) take the builder and give it back, to chain on
/// `client.batch()`; [`call`](Self::call) and [`notify`](Self::notify) add to it in
/// place, a call giving back the handle its result is taken with.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
/// use tower_jsonrpc_retry::RetryStrategy;
///
/// let mut batch = client.batch().retry(RetryStrategy::transient());
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
/// It owns a clone of the client's service, so a batch being filled is `Send` whenever
/// the service is, and its sending whenever the service, its future and its error are.
#[must_use = "a batch builder sends nothing until `send` is called"]
pub struct BatchBuilder<S> {
    service: S,
    ids: IdGenerator,
    batch: BatchRequest,
    /// The first params that are not JSON-RPC params: the batch fails unsent.
    error: Option<serde_json::Error>,
    /// Calls added so far: the next call's index among the answers.
    calls: usize,
    serial: BatchSerial,
}

impl<S> BatchBuilder<S> {
    /// An empty batch, sent through `service`, its calls' ids drawn from `ids`.
    pub(super) fn new(service: S, ids: IdGenerator) -> Self {
        Self {
            service,
            ids,
            batch: BatchRequest::default(),
            error: None,
            calls: 0,
            serial: BatchSerial::next(),
        }
    }
}

impl<S> fmt::Debug for BatchBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("requests", &Named(&self.batch))
            .finish_non_exhaustive()
    }
}

/// A batch's requests by method and id, as [`RequestBuilder`](super::RequestBuilder)
/// shows its own: params may hold a secret or a signed transaction, not for the logs.
struct Named<'a>(&'a BatchRequest);

impl fmt::Debug for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|r| (r.method(), r.id())))
            .finish()
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
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::client::BatchItem;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// let mut batch = client.batch();
    /// // The result's type is the handle's: by turbofish, or by annotation.
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// let echoed: BatchItem<Vec<String>> = batch.call("echo", ("hi",));
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(three)?, 3);
    /// assert_eq!(results.take(echoed)?, ["hi"]);
    /// # Ok(())
    /// # }
    /// ```
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
            batch: self.serial,
            _result: PhantomData,
        }
    }

    /// Adds a notification.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// let mut batch = client.batch();
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// batch.notify("log", ("summing",));
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(three)?, 3);
    /// // Run by the server, in the same HTTP request, and answered with nothing.
    /// assert_eq!((server.calls("log"), server.http_requests()), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn notify(&mut self, method: impl Into<MethodName>, params: impl Serialize) {
        self.push(method.into(), params, None);
    }

    /// Gives the whole batch its own retry strategy, replacing the stack's default
    /// entirely, as [`RequestBuilder::retry`](super::RequestBuilder::retry) does (its
    /// non-idempotent methods included). One strategy decides for the whole batch: there is
    /// no strategy per call of a batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::test_util::Step;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// // The first call fails with -32000, which this batch retries: it alone goes again.
    /// server.script("sum", [Step::error(-32000)]);
    /// let patient = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10)))
    ///     .codes([-32000]);
    /// let mut batch = client.batch().retry(patient);
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// let seven = batch.call::<i64>("sum", (3, 4));
    /// let mut results = batch.send().await?;
    /// assert_eq!((results.take(three)?, results.take(seven)?), (3, 7));
    /// assert_eq!((server.calls("sum"), server.http_requests()), (3, 2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry(mut self, strategy: RetryStrategy) -> Self {
        self.batch.extensions_mut().insert(strategy);
        self
    }

    /// Adds a header to the batch's HTTP requests (every attempt, a re-send of some calls
    /// included), as [`RequestBuilder::header`](super::RequestBuilder::header) does for
    /// one request.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// let tenant = HeaderName::from_static("x-tenant");
    /// let acme = HeaderValue::from_static("acme");
    /// let mut batch = client.batch().header(tenant.clone(), acme);
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// assert_eq!(batch.send().await?.take(three)?, 3);
    /// assert_eq!(server.headers()[0][&tenant], "acme");
    /// # Ok(())
    /// # }
    /// ```
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        codec::RequestHeaders::add_to(self.batch.extensions_mut(), name, value);
        self
    }

    /// Adds a value to the batch's extensions, for the layers below (a tenant, a tracing
    /// context), as [`RequestBuilder::extension`](super::RequestBuilder::extension) does
    /// for one request: the codec moves it onto every attempt's HTTP request, a re-send of
    /// some calls included.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::http;
    ///
    /// /// The tenant a batch is sent for.
    /// #[derive(Clone)]
    /// struct Tenant(&'static str);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Below the codec: an HTTP service that answers call 1 with the tenant it is for.
    /// let http = service_fn(|req: http::Request<_>| async move {
    ///     let tenant = req.extensions().get::<Tenant>().map_or("none", |t| t.0);
    ///     let answer = format!(r#"[{{"jsonrpc":"2.0","id":1,"result":"{tenant}"}}]"#);
    ///     Ok::<_, Infallible>(http::Response::new(answer))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let client = Client::new(codec);
    /// let mut batch = client.batch().extension(Tenant("acme"));
    /// let tenant = batch.call::<String>("whoami", ());
    /// assert_eq!(batch.send().await?.take(tenant)?, "acme");
    /// # Ok(())
    /// # }
    /// ```
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
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
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::Value;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// // A call for each pending transaction: when there is none, nothing is sent.
    /// let pending: Vec<String> = Vec::new();
    /// let mut batch = client.batch();
    /// let mut receipts = Vec::new();
    /// for hash in &pending {
    ///     receipts.push(batch.call::<Value>("eth_getTransactionReceipt", (hash,)));
    /// }
    /// let results = batch.send().await?;
    /// assert!(results.into_responses().is_empty());
    /// assert_eq!(server.http_requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(self) -> BatchFuture<S> {
        let state = match (self.error, self.batch.is_empty()) {
            (Some(e), _) => BatchState::Done {
                result: Some(Err(ClientError::Params(e))),
            },
            (None, true) => BatchState::Done {
                result: Some(Ok(BatchResults::new(
                    Vec::new(),
                    (Vec::new(), None),
                    &[],
                    self.serial,
                ))),
            },
            (None, false) => BatchState::Sent {
                calls: self.batch.ids().cloned().collect(),
                serial: self.serial,
                future: Fused::new(self.service.oneshot(self.batch)),
            },
        };
        BatchFuture { state }
    }
}

/// A batch's answer as its results for the `calls` sent (in call order).
pub(super) fn batch_results<E>(
    mut response: BatchResponse,
    calls: &[Id],
    serial: BatchSerial,
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
    let batch_error = response.batch_error().cloned();
    Ok(BatchResults::new(
        response.into_items(),
        (unmatched, batch_error),
        calls,
        serial,
    ))
}

/// The answers to a batch, taken one call at a time with its [`BatchItem`].
///
/// # Examples
///
/// Each call's result is its own: one call's error answer leaves the others' results.
///
/// ```
/// use tower_jsonrpc_retry::client::BatchResults;
/// use tower_jsonrpc_retry::test_util::Step;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
/// server.script("sum", [Step::error(-32000)]);
/// let mut batch = client.batch();
/// let failed = batch.call::<i64>("sum", (1, 2));
/// let seven = batch.call::<i64>("sum", (3, 4));
/// let mut results: BatchResults = batch.send().await?;
/// let err = results.take(failed).unwrap_err();
/// assert_eq!(err.rpc().map(|e| e.code()), Some(-32000));
/// assert_eq!(results.take(seven)?, 7);
/// # Ok(())
/// # }
/// ```
pub struct BatchResults<E = codec::Error> {
    /// In call order; `None` once taken.
    items: Vec<Option<Response>>,
    /// For answers that are not one per call in call order (a service that reorders
    /// or drops them): where to find them by id.
    out_of_place: Option<ById>,
    /// Error answers with a null id that no call took ([`BatchResponse::unmatched`]).
    unmatched: Vec<Response>,
    /// The refusal of the whole batch ([`BatchResponse::batch_error`]).
    batch_error: Option<ErrorObject>,
    /// The batch these answer: a handle from another batch takes nothing here.
    serial: BatchSerial,
    _error: PhantomData<fn() -> E>,
}

/// Answers found by id: each call's answer, worked out once (calls sharing an id take
/// that id's answers in call order, whatever becomes of the answers taken before).
struct ById {
    /// For each call, in call order, where its answer is.
    of_call: Vec<Option<usize>>,
}

impl ById {
    fn new(items: &[Response], calls: &[Id]) -> Self {
        let mut first = std::collections::HashMap::with_capacity(items.len());
        let mut next_same = vec![None; items.len()];
        // Backwards, so the first answer of an id ends in the map, chained to the rest.
        for (i, item) in items.iter().enumerate().rev() {
            if let Some(slot) = next_same.get_mut(i) {
                *slot = first.insert(item.id(), i);
            }
        }
        let of_call = calls
            .iter()
            .map(|id| {
                let found = first.remove(id)?;
                if let Some(next) = next_same.get(found).copied().flatten() {
                    first.insert(id, next);
                }
                Some(found)
            })
            .collect();
        Self { of_call }
    }

    /// Where the answer to the call at `index` (in call order) is.
    fn of_call(&self, index: usize) -> Option<usize> {
        self.of_call.get(index).copied().flatten()
    }
}

impl<E> fmt::Debug for BatchResults<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchResults")
            .field("items", &self.items.iter().flatten().collect::<Vec<_>>())
            .field("unmatched", &self.unmatched)
            .field("batch_error", &self.batch_error)
            .finish()
    }
}

impl<E> BatchResults<E> {
    /// `left`: the answers no call took, and the refusal of the whole batch.
    fn new(
        items: Vec<Response>,
        left: (Vec<Response>, Option<ErrorObject>),
        calls: &[Id],
        serial: BatchSerial,
    ) -> Self {
        let (unmatched, batch_error) = left;
        let in_place =
            items.len() == calls.len() && items.iter().zip(calls).all(|(r, id)| r.id() == id);
        let out_of_place = (!in_place).then(|| ById::new(&items, calls));
        Self {
            items: items.into_iter().map(Some).collect(),
            out_of_place,
            unmatched,
            batch_error,
            serial,
            _error: PhantomData,
        }
    }

    /// Error answers with a null id that no call of the batch took: the server could
    /// not read some item of the batch (a notification, say), and every call was
    /// answered anyway; or its refusal of the whole batch, when a retry sent the calls
    /// again but not a non-idempotent notification. Also at the end of
    /// [`into_responses`](Self::into_responses).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::http;
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A server that answers the call, and could not read the notification.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let answer = r#"[{"jsonrpc": "2.0", "id": 1, "result": 3},
    ///         {"jsonrpc": "2.0", "id": null,
    ///          "error": {"code": -32600, "message": "Invalid Request"}}]"#;
    ///     Ok::<_, Infallible>(http::Response::new(answer.to_owned()))
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let client = Client::new(codec);
    /// let mut batch = client.batch();
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// batch.notify("log", ("summed",));
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(three)?, 3);
    /// let refused: Vec<_> = results.unmatched().iter().map(|r| r.error()).collect();
    /// assert_eq!(refused, [Some(&ErrorObject::new(-32600, "Invalid Request"))]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn unmatched(&self) -> &[Response] {
        &self.unmatched
    }

    /// The error object the server refused the whole batch with, if it did (under a null
    /// id, or geth's refusal of a batch too large: see
    /// [`BatchResponse`](crate::jsonrpc::BatchResponse)): it ran none of the batch,
    /// notifications included, and every call's answer is a copy of it. After a retry that re-sent only some calls, as
    /// [`BatchResponse::batch_error`] says: `None` once other calls kept answers of their
    /// own.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// // The whole batch refused: a 429 with one -32005 error, its id null.
    /// server.script("sum", [Step::status_with_error(429, -32005)]);
    /// let client = Client::builder(server.uri()).retry(RetryStrategy::none()).build();
    /// let mut batch = client.batch();
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// batch.notify("log", ("summed",));
    /// let mut results = batch.send().await?;
    /// // The notification did not run either.
    /// assert_eq!(results.batch_error().map(|e| e.code()), Some(-32005));
    /// assert_eq!(results.take(three).unwrap_err().rpc().map(|e| e.code()), Some(-32005));
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch_error(&self) -> Option<&ErrorObject> {
        self.batch_error.as_ref()
    }

    /// The typed result of one call.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rpc`] when the server answered the call with an error object,
    /// [`ClientError::Deserialize`] when its result is not an `R` (the answer stays, for
    /// [`into_responses`](Self::into_responses): a mis-declared result type does not
    /// lose what a call that ran returned), and [`ClientError::MissingItem`] when the
    /// batch's answer has no item for it (or it was taken already).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::ClientError;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// let mut batch = client.batch();
    /// let three = batch.call::<String>("sum", (1, 2)); // a number, not a string
    /// let mut results = batch.send().await?;
    /// assert!(matches!(results.take(three), Err(ClientError::Deserialize(_))));
    /// // The answer stays: the call ran, and what it returned is not lost.
    /// assert_eq!(results.into_responses()[0].result(), Some(&json!(3)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn take<R: DeserializeOwned>(&mut self, item: BatchItem<R>) -> Result<R, ClientError<E>> {
        // Ids are not unique across batches (two clients each count from 1).
        if item.batch != self.serial {
            return Err(ClientError::MissingItem(item.id));
        }
        let answers = |r: &Option<Response>| r.as_ref().is_some_and(|r| r.id() == &item.id);
        let at = match &self.out_of_place {
            // Answers out of place: by id, in call order for calls sharing one.
            Some(by_id) => by_id.of_call(item.index),
            // One answer per call, in call order: its own slot, unless taken already.
            None => Some(item.index).filter(|&i| self.items.get(i).is_some_and(answers)),
        };
        let Some(slot) = at.and_then(|i| self.items.get_mut(i)) else {
            return Err(ClientError::MissingItem(item.id));
        };
        // A result is read where it lies, and taken only once it is an `R`.
        if let Some(result) = slot.as_ref().and_then(Response::result) {
            return match R::deserialize(result) {
                Ok(value) => {
                    *slot = None;
                    Ok(value)
                }
                // The answer stays the call's, for `into_responses`; the error has a copy.
                Err(e) => Err(ClientError::Deserialize(ResultMismatch::new(
                    e,
                    result.clone(),
                ))),
            };
        }
        let response = slot.take().ok_or(ClientError::MissingItem(item.id))?;
        to_value(response)
    }

    /// The responses not taken yet, in call order (then any answer to no call of the
    /// batch, in the order the service gave them, and then the
    /// [`unmatched`](Self::unmatched) errors).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
    /// # let client = tower_jsonrpc_retry::Client::builder(server.uri()).build();
    /// let mut batch = client.batch();
    /// let three = batch.call::<i64>("sum", (1, 2));
    /// let _seven = batch.call::<i64>("sum", (3, 4));
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(three)?, 3);
    /// // The rest, as they came: here the second call's answer.
    /// let rest = results.into_responses();
    /// assert_eq!(rest.iter().map(|r| r.result()).collect::<Vec<_>>(), [Some(&json!(7))]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_responses(mut self) -> Vec<Response> {
        // Answers out of place: each call's first, found by id.
        let mut responses = Vec::with_capacity(self.items.len() + self.unmatched.len());
        if let Some(by_id) = self.out_of_place.take() {
            for at in by_id.of_call.into_iter().flatten() {
                if let Some(response) = self.items.get_mut(at).and_then(Option::take) {
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
