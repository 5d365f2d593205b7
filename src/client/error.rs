//! What a call of the [`Client`](super::Client) fails with.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::codec;
use crate::jsonrpc::{ErrorObject, Id, Response};
use crate::{GaveUp, InspectError};

/// Why a call did not produce a value.
///
/// Its `Display` says what failed in a few words, and [`source`](std::error::Error::source)
/// gives the cause (for [`Transport`](Self::Transport), the stack's error: a timeout, a
/// status, a refused connection), as the Rust API guidelines ask: a log line that
/// prints only `{e}` reads "the service stack failed the call". Print the whole chain
/// (anyhow's `{:#}`, or a loop over `source()`), or match on the variant.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::ClientError;
///
/// /// What to tell the user, and whether trying again later may help.
/// fn explain(err: &ClientError) -> (String, bool) {
///     match err {
///         // The server's answer: its code says whether a later call may succeed.
///         ClientError::Rpc(e) => (format!("the node refused: {}", e.message()), e.code() == -32005),
///         // The stack failed: a refused connection, a timeout, a failure status (a
///         // rate limit, or a node or gateway failing for now).
///         ClientError::Transport(e) => {
///             let busy = e.status().is_some_and(|s| s == 429 || s.is_server_error());
///             let transient = e.is_connect() || e.is_timeout() || e.is_reset() || busy;
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
    /// The result did not deserialize into the requested type. It is kept, as it came
    /// ([`ResultMismatch::result`]): a call that ran (a write's transaction hash) is not
    /// lost to a mis-declared type. serde_json's message, its `source()`, quotes the
    /// value it could not take, escaped as an error object's message is shown; one over
    /// 1 KiB so shown keeps its beginning and its end (what was expected), with `…`
    /// between, 1 KiB in all.
    ///
    /// The answer is read into the type after the retries, so this is never retried: to
    /// ask again for a result a node has not got yet (a `null` receipt), call with an
    /// `Option<R>` and give the strategy a rule on results
    /// ([`RetryStrategy::retry_result_if`](crate::RetryStrategy::retry_result_if)).
    Deserialize(ResultMismatch),
    /// The params did not serialize, or not into an array or an object.
    Params(serde_json::Error),
    /// A batch response lacked the item for a call: the handle was taken already or
    /// belongs to another batch (whatever its call's id), or a stack of your own gave a
    /// batch answer without it.
    /// (The codec never does: a batch answer missing a call's item is refused whole, as
    /// [`DecodeError::MissingItems`](crate::jsonrpc::DecodeError::MissingItems) in
    /// [`Transport`](Self::Transport).)
    MissingItem(Id),
}

impl<E> ClientError<E> {
    /// The server's answer, if it was a JSON-RPC error object: the object's `code()`,
    /// `message()` and `data()`, with the answer's status, `Retry-After` and how the
    /// retries ended ([`RpcError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A test double of a node over its limit: it answers every call with -32005.
    /// let node = tower::service_fn(|req: Request| async move {
    ///     let id = req.id().cloned().unwrap_or(Id::Null);
    ///     let error = ErrorObject::new(-32005, "limit exceeded");
    ///     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// });
    /// let err = Client::new(node).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// assert_eq!(err.rpc().map(|e| e.message()), Some("limit exceeded"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            ClientError::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// The transport error, if the stack failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{Client, http};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Below the codec, an HTTP service down for maintenance: a 503, no JSON-RPC answer.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     http::Response::builder().status(503).body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let err = Client::new(codec).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// assert!(err.transport().is_some_and(|e| e.is_status()));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(-32005, "limit exceeded");
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// // The node answers -32005: its error object is handed on, anything else passed up.
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let object: ErrorObject = match err.into_rpc() {
    ///     Ok(rpc) => rpc.into_error(),
    ///     Err(other) => return Err(other.into()),
    /// };
    /// assert_eq!(object.code(), -32005);
    /// # Ok(())
    /// # }
    /// ```
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
    /// however the server wrote its error. `None` for a 2xx answer, or no answer. (A
    /// result under a failure status is no error: see [`Client::call`](crate::Client::call).)
    /// For an error object, the status of the answer it came in: in a partly retried
    /// batch whose re-send failed unanswered (a 503 without a JSON-RPC body, say), an
    /// earlier answer's, while [`retry_after`](Self::retry_after) is the latest hint.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{Client, http};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A rate limit written both ways: a 429 and a JSON-RPC error.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let body = r#"{"jsonrpc": "2.0", "id": 1,
    ///         "error": {"code": -32005, "message": "limit exceeded"}}"#;
    ///     http::Response::builder().status(429).body(body.to_owned())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let err = Client::new(codec).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// assert_eq!(err.rpc().map(|e| e.code()), Some(-32005));
    /// assert_eq!(err.status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
    /// # Ok(())
    /// # }
    /// ```
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
    /// word on time, as [`RpcError::retry_after`] says.) The delay counts from when that
    /// answer came: for a call of a batch settled in an earlier exchange, the waits
    /// since then have used some of it. The header only (or a hint a service below put
    /// beside it, [`RetryAfter::new`](crate::codec::RetryAfter::new)): a wait a provider
    /// writes in the error object's `data` instead (Infura's `backoff_seconds`, which the
    /// retry layer honours too) is in [`wait_hint`](Self::wait_hint).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{Client, http};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A bare 503 that says when to come back.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     http::Response::builder()
    ///         .status(503)
    ///         .header("retry-after", "120")
    ///         .body(String::new())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let err = Client::new(codec).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Rpc(e) => e.retry_after(),
            ClientError::Transport(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The server's wait hint, as the retry layer reads one: the
    /// [`Retry-After`](Self::retry_after), or, on an error object, a wait in its `data`
    /// (Infura's `backoff_seconds`), the larger of the two ([`RpcError::wait_hint`]);
    /// not held to any ceiling. Hints a strategy's own rules read
    /// ([`retry_after_from`](crate::RetryStrategy::retry_after_from)) are not among them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{Client, http};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Infura's way: a wait in the error's `data`, beside a shorter `Retry-After`.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let body = r#"{"jsonrpc": "2.0", "id": 1, "error": {"code": -32005,
    ///         "message": "limit exceeded", "data": {"backoff_seconds": 2}}}"#;
    ///     http::Response::builder().header("retry-after", "1").body(body.to_owned())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let err = Client::new(codec).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    /// assert_eq!(err.wait_hint(), Some(Duration::from_secs(2)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_hint(&self) -> Option<Duration> {
        match self {
            ClientError::Rpc(e) => e.wait_hint(),
            other => other.retry_after(),
        }
    }

    /// How the retries of the call ended, when the retry layer gave up on this failure:
    /// the retries made, and why there was no further one ([`GaveUp`]), for the
    /// server's answer ([`RpcError::gave_up`]) or the stack's error (found in its chain,
    /// [`GaveUp::find`]). A batch whose send failed has the batch's; a call of a batch,
    /// its own (see [`GaveUp`]). `None` when the layer made no decision on it: params
    /// that did not serialize, a result that did not deserialize, a strategy that never
    /// retries. `None` too when the stack's error cannot hold the record: tower's
    /// `Elapsed`, from a `TimeoutLayer` between the retry layer and the codec, is one
    /// ([`InspectError::record_give_up`] says which errors hold it), while the timeout of
    /// the codec's own [`attempt_timeout`](crate::codec::JsonRpcCodecLayer::attempt_timeout)
    /// is a `codec::Error`, which holds it.
    ///
    /// # Examples
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
///
/// # Examples
///
/// A test double makes one from an error object alone:
///
/// ```
/// use tower_jsonrpc_retry::client::RpcError;
/// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
///
/// let err = RpcError::from(ErrorObject::new(-32005, "limit exceeded"));
/// assert_eq!(err.to_string(), "JSON-RPC error -32005: limit exceeded");
/// assert_eq!((err.status(), err.retry_after(), err.gave_up()), (None, None, None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    error: ErrorObject,
    facts: Facts,
}

/// What the layers below recorded about the answer an error object came in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Facts {
    status: Option<http::StatusCode>,
    retry_after: Option<Duration>,
    gave_up: Option<GaveUp>,
}

impl RpcError {
    /// The error object, with the facts about its answer ([`facts`](Self::facts)).
    pub(super) fn answered(error: ErrorObject, facts: Facts) -> Self {
        Self { error, facts }
    }

    /// The facts about an answer recorded in its extensions: by the codec, its failure
    /// status and its `Retry-After`; by the retry layer, how it gave up.
    pub(super) fn facts(extensions: &http::Extensions) -> Facts {
        Facts {
            status: extensions.get::<http::StatusCode>().copied(),
            retry_after: extensions.get::<codec::RetryAfter>().map(|r| r.delay()),
            gave_up: extensions.get::<GaveUp>().copied(),
        }
    }

    /// The error code.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(-32005, "limit exceeded");
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// // The node answers: -32005, limit exceeded.
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.code(), -32005);
    /// # Ok(())
    /// # }
    /// ```
    pub fn code(&self) -> i64 {
        self.error.code()
    }

    /// The error message.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(3, "execution reverted: not owner")
    /// #         .with_data(serde_json::json!("0x08c379a0"));
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// // The node answers that the contract reverted the call.
    /// let err = client.call::<String>("eth_call", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.message(), "execution reverted: not owner");
    /// # Ok(())
    /// # }
    /// ```
    pub fn message(&self) -> &str {
        self.error.message()
    }

    /// The error's `data`, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(3, "execution reverted: not owner")
    /// #         .with_data(serde_json::json!("0x08c379a0"));
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// // The node answers that the contract reverted the call, with the revert data.
    /// let err = client.call::<String>("eth_call", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.data().and_then(|d| d.as_str()), Some("0x08c379a0"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn data(&self) -> Option<&Value> {
        self.error.data()
    }

    /// The error object.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(-32601, "method not found");
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// // The node answers: no such method.
    /// let err = client.call::<u64>("eth_blobBaseFee", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.error(), &ErrorObject::new(-32601, "method not found"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn error(&self) -> &ErrorObject {
        &self.error
    }

    /// The error object, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::Client;
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let error = ErrorObject::new(-32005, "limit exceeded");
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # }));
    /// # use tower_jsonrpc_retry::client::RpcError;
    /// // The node answers -32005 to both: keep the error objects, drop the rest.
    /// let failures = [
    ///     client.call::<u64>("eth_blockNumber", ()).await.unwrap_err(),
    ///     client.call::<u64>("eth_chainId", ()).await.unwrap_err(),
    /// ];
    /// let objects: Vec<ErrorObject> = failures
    ///     .into_iter()
    ///     .filter_map(|e| e.into_rpc().ok().map(RpcError::into_error))
    ///     .collect();
    /// assert!(objects.iter().all(|o| o.code() == -32005));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_error(self) -> ErrorObject {
        self.error
    }

    /// The status of the HTTP answer that carried it, if it was not a 2xx.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// use tower_jsonrpc_retry::{Client, http};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // A gateway whose node is down: a 503, with a JSON-RPC error in the body.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let body = r#"{"jsonrpc": "2.0", "id": 1,
    ///         "error": {"code": -32000, "message": "no backend available"}}"#;
    ///     http::Response::builder().status(503).body(body.to_owned())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let err = Client::new(codec).call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<http::StatusCode> {
        self.facts.status
    }

    /// The `Retry-After` of the HTTP answer that carried it, as a delay; for a call of a
    /// batch whose re-send then failed as a whole (a 429, a reset), the failed
    /// exchange's, or none if it had none: the server's latest word on when to come
    /// back, while [`status`](Self::status) stays that of the answer the error came in.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_jsonrpc_retry::codec::JsonRpcCodec;
    /// # use tower_jsonrpc_retry::{Client, http};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let http = tower::service_fn(|_: http::Request<_>| async {
    /// #     let body = r#"{"jsonrpc": "2.0", "id": 1,
    /// #         "error": {"code": -32005, "message": "limit exceeded"}}"#;
    /// #     let limited = http::Response::builder().status(429);
    /// #     limited.header("retry-after", "30").body(body.to_owned())
    /// # });
    /// # let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// # let client = Client::new(codec);
    /// // The node answers a 429 with `Retry-After: 30` and a JSON-RPC error.
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let rpc = err.rpc().ok_or("not an error answer")?;
    /// assert_eq!(rpc.retry_after(), Some(Duration::from_secs(30)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.facts.retry_after
    }

    /// The server's wait hint, as the retry layer reads one: the
    /// [`Retry-After`](Self::retry_after), or a wait in the error object's `data`
    /// (Infura's `backoff_seconds`, at the top of `data` or under `rate`), the larger of
    /// the two; not held to any ceiling. For a caller who waits itself once the retries
    /// are over. Hints a strategy's own rules read
    /// ([`retry_after_from`](crate::RetryStrategy::retry_after_from)) are not among them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::client::RpcError;
    /// use tower_jsonrpc_retry::jsonrpc::ErrorObject;
    ///
    /// let data = serde_json::json!({"rate": {"backoff_seconds": 2.5}});
    /// let err = RpcError::from(ErrorObject::new(-32005, "limit exceeded").with_data(data));
    /// assert_eq!(err.retry_after(), None);
    /// assert_eq!(err.wait_hint(), Some(Duration::from_millis(2500)));
    /// ```
    pub fn wait_hint(&self) -> Option<Duration> {
        let data = crate::retry::data_hint(&self.error);
        self.facts.retry_after.max(data)
    }

    /// How the retries of the call ended, if the retry layer gave up on this answer: the
    /// retries made, and why there was no further one ([`GaveUp`]; for a call of a batch,
    /// the call's own). `None` without a retry layer, or with one whose strategy never
    /// retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::service_fn;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, JsonRpcRetry, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let node = service_fn(|req: Request| async move {
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     let error = ErrorObject::new(-32005, "limit exceeded");
    /// #     Ok::<_, std::convert::Infallible>(Response::failure(id, error))
    /// # });
    /// // A node that answers -32005 every time, retried twice.
    /// let backoff = PeriodicBackoff::new(2, Duration::from_millis(10));
    /// let strategy = RetryStrategy::new(backoff).codes([-32005]);
    /// let client = Client::new(JsonRpcRetry::new(strategy, node));
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let gave_up = err.rpc().and_then(|e| e.gave_up()).ok_or("no record")?;
    /// assert_eq!((gave_up.retries(), gave_up.reason()), (2, GiveUpReason::Exhausted));
    /// assert!(err.to_string().ends_with("; gave up after 2 retries: attempts exhausted"));
    /// # Ok(())
    /// # }
    /// ```
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
            ClientError::Deserialize(e) => fmt::Display::fmt(e, f),
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
            // serde_json's error, not the mismatch, which says what this says.
            ClientError::Deserialize(e) => Some(&e.error),
            ClientError::Params(e) => Some(e),
            ClientError::MissingItem(_) => None,
        }
    }
}

/// A result that did not deserialize into the type asked for: the result as the server
/// sent it, and serde_json's error.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower_jsonrpc_retry::{Client, ClientError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// let client = Client::builder(server.uri()).build();
/// // `sum` answers a number, not a string: the number is not lost.
/// match client.call::<String>("sum", (1, 2)).await {
///     Err(ClientError::Deserialize(mismatch)) => assert_eq!(mismatch.result(), &json!(3)),
///     other => panic!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
pub struct ResultMismatch {
    error: serde_json::Error,
    result: Value,
}

impl ResultMismatch {
    pub(super) fn new(error: serde_json::Error, result: Value) -> Self {
        Self {
            error: shortened(error),
            result,
        }
    }

    /// The result, as the server sent it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
    /// # use tower_jsonrpc_retry::{Client, ClientError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     let result = serde_json::json!("0x10");
    /// #     Ok::<_, std::convert::Infallible>(Response::success(id, result))
    /// # }));
    /// // The node answers a hex quantity, `"0x10"`, where a number was expected.
    /// let called = client.call::<u64>("eth_blockNumber", ()).await;
    /// let Err(ClientError::Deserialize(mismatch)) = called else {
    ///     panic!("not a mismatch")
    /// };
    /// assert_eq!(mismatch.result().as_str(), Some("0x10"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn result(&self) -> &Value {
        &self.result
    }

    /// The result, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
    /// # use tower_jsonrpc_retry::{Client, ClientError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     let result = serde_json::json!(
    /// #         "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"
    /// #     );
    /// #     Ok::<_, std::convert::Infallible>(Response::success(id, result))
    /// # }));
    /// // A transaction was sent: its hash is kept, whatever type it was read into.
    /// let sent = client.call::<u64>("eth_sendRawTransaction", ("0x02f8",)).await;
    /// let hash = match sent {
    ///     Err(ClientError::Deserialize(mismatch)) => mismatch.into_result(),
    ///     other => panic!("{other:?}"),
    /// };
    /// assert!(hash.as_str().is_some_and(|h| h.starts_with("0x5c50")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_result(self) -> Value {
        self.result
    }

    /// Why it is not the type asked for: serde_json's error (its message cut to 1 KiB,
    /// what the server wrote in it escaped).
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
    /// # use tower_jsonrpc_retry::{Client, ClientError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     let result = serde_json::json!("0x10");
    /// #     Ok::<_, std::convert::Infallible>(Response::success(id, result))
    /// # }));
    /// // The node answers `"0x10"` where a number was expected.
    /// let called = client.call::<u64>("eth_blockNumber", ()).await;
    /// let Err(ClientError::Deserialize(mismatch)) = called else {
    ///     panic!("not a mismatch")
    /// };
    /// assert!(mismatch.error().is_data());
    /// let message = mismatch.error().to_string();
    /// assert_eq!(message, r#"invalid type: string "0x10", expected u64"#);
    /// # Ok(())
    /// # }
    /// ```
    pub fn error(&self) -> &serde_json::Error {
        &self.error
    }

    /// serde_json's error and the result, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tower_jsonrpc_retry::jsonrpc::{Id, Request, Response};
    /// # use tower_jsonrpc_retry::{Client, ClientError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let client = Client::new(tower::service_fn(|req: Request| async move {
    /// #     let id = req.id().cloned().unwrap_or(Id::Null);
    /// #     let result = serde_json::json!({"number": "0x10"});
    /// #     Ok::<_, std::convert::Infallible>(Response::success(id, result))
    /// # }));
    /// // The node answers an object where a number was expected.
    /// let called = client.call::<u64>("eth_getBlockByNumber", ("latest", false)).await;
    /// let Err(ClientError::Deserialize(mismatch)) = called else {
    ///     panic!("not a mismatch")
    /// };
    /// let (error, block) = mismatch.into_parts();
    /// assert_eq!((error.is_data(), &block["number"]), (true, &serde_json::json!("0x10")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_parts(self) -> (serde_json::Error, Value) {
        (self.error, self.result)
    }
}

/// As [`ClientError::Deserialize`] says it: what failed, the why in `source()`.
impl fmt::Display for ResultMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("result does not match the expected type")
    }
}

impl std::error::Error for ResultMismatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The result's JSON text is cut after 1 KiB, as an error object's `data` is: `{:?}` is
/// what `unwrap` prints, and a server's megabyte should not reach the logs through it.
impl fmt::Debug for ResultMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultMismatch")
            .field("error", &self.error)
            .field(
                "result",
                &format_args!(
                    "{}",
                    crate::jsonrpc::cut(&self.result, crate::jsonrpc::MESSAGE_SHOWN)
                ),
            )
            .finish()
    }
}

pub(super) fn to_value<R: DeserializeOwned, E>(response: Response) -> Result<R, ClientError<E>> {
    // What the answer said, read before the response is taken apart.
    let facts = RpcError::facts(response.extensions());
    let result = response
        .into_result()
        .map_err(|error| ClientError::Rpc(RpcError::answered(error, facts)))?;
    // Read where it lies, so that the result is still there, whole, when it is no `R`.
    R::deserialize(&result).map_err(|e| ClientError::Deserialize(ResultMismatch::new(e, result)))
}

/// serde_json's message quotes whole the value it could not take (`invalid type:
/// string "…", expected u64`), and some of serde's (`unknown variant`) do not escape it:
/// it is escaped as an error object's message is shown, and when that is over 1 KiB
/// its beginning and its end (what was expected) are kept, 1 KiB in all with the `…`
/// between, so that a server's megabyte does not end up in every log line of the
/// error's chain, nor its line break start a new one.
pub(super) fn shortened(e: serde_json::Error) -> serde_json::Error {
    use crate::jsonrpc::{MESSAGE_SHOWN, cut, must_escape};
    /// The bytes of the end kept, escaped.
    const TAIL: usize = 128;
    let message = e.to_string();
    let escaped = cut(&message, usize::MAX);
    if escaped.len() <= MESSAGE_SHOWN {
        return if escaped == message {
            e
        } else {
            serde::de::Error::custom(escaped)
        };
    }
    // The last characters whose escaped text fits the tail. The head, at most the rest
    // of the escaped text's first kibibyte, ends before them: no text shows twice.
    let (mut start, mut kept) = (message.len(), 0);
    for (at, c) in message.char_indices().rev() {
        let len = if must_escape(c) {
            c.escape_default().count()
        } else {
            c.len_utf8()
        };
        if kept + len > TAIL {
            break;
        }
        (start, kept) = (at, kept + len);
    }
    let head = cut(&message, MESSAGE_SHOWN - TAIL - "…".len());
    let tail = cut(message.get(start..).unwrap_or(""), usize::MAX);
    serde::de::Error::custom(format_args!("{head}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        let error: serde_json::Error = serde::de::Error::custom(text);
        shortened(error).to_string()
    }

    #[test]
    fn a_message_is_escaped_and_cut_with_no_text_twice() {
        assert_eq!(message("short"), "short");
        assert_eq!(message("a\nb"), r"a\nb");
        // Long only once escaped: its beginning and its end, 1 KiB in all.
        let shown = message(&format!("{}expected u64", "\n".repeat(600)));
        assert!(!shown.contains('\n'), "{shown}");
        assert!(
            shown.contains('…') && shown.ends_with(r"\nexpected u64"),
            "{shown}"
        );
        assert!(
            shown.len() <= crate::jsonrpc::MESSAGE_SHOWN,
            "{}",
            shown.len()
        );
        // Escapes in the tail count as what they show: still 1 KiB.
        let shown = message(&format!("{}{}", "x".repeat(2000), "\u{1}".repeat(128)));
        assert!(
            shown.ends_with(r"\u{1}") && !shown.contains('\u{1}'),
            "{shown}"
        );
        assert!(
            shown.len() <= crate::jsonrpc::MESSAGE_SHOWN,
            "{}",
            shown.len()
        );
        // At the boundary, and with characters of several bytes at the cut points.
        for len in [1023, 1024, 1025] {
            let shown = message(&"\n".repeat(len));
            assert!(
                shown.len() <= crate::jsonrpc::MESSAGE_SHOWN,
                "{len}: {}",
                shown.len()
            );
        }
        let shown = message(&"é→\n".repeat(500));
        assert!(
            shown.len() <= crate::jsonrpc::MESSAGE_SHOWN,
            "{}",
            shown.len()
        );
        // Long as it is: its head and its tail, each escaped, nothing twice.
        let long = format!("head\n{}tail\u{1b}", "x".repeat(2000));
        let shown = message(&long);
        assert!(shown.starts_with(r"head\nxxx") && shown.ends_with(r"xxxtail\u{1b}"));
        assert_eq!(shown.matches("head").count(), 1);
        assert!(
            shown.len() <= crate::jsonrpc::MESSAGE_SHOWN,
            "{}",
            shown.len()
        );
    }
}
