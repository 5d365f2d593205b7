use std::fmt;
use std::time::Duration;

use super::strategy::{ErrorClass, RetryStrategy};
use crate::jsonrpc::{ErrorObject, Id, Request};

/// Why an attempt is retried.
///
/// # Examples
///
/// ```
/// # use std::sync::mpsc;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{Client, RetryReason, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// let limited = Step::error_with(-32016, "rate limit reached", None);
/// server.script("sum", [Step::error(-32005), limited]);
/// let (tx, rx) = mpsc::channel();
/// let strategy = RetryStrategy::transient()
///     .codes([-32005])
///     .retry_response_if(|e| e.message().contains("rate limit"))
///     .on_retry(move |e| { let _ = tx.send(e.reason()); });
/// let client = Client::builder(server.uri()).retry(strategy).build();
/// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
/// let reasons: Vec<RetryReason> = rx.try_iter().collect();
/// assert_eq!(reasons[0], RetryReason::Code(-32005));
/// assert_eq!(reasons[1], RetryReason::ResponsePredicate(-32016));
/// assert_eq!(reasons[1].to_string(), "response rule, code -32016");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// A JSON-RPC error response with this code, listed in
    /// [`codes`](RetryStrategy::codes).
    Code(i64),
    /// A JSON-RPC error response, with this code, that a
    /// [`retry_response_if`](RetryStrategy::retry_response_if) rule matched (its code
    /// not listed).
    ResponsePredicate(i64),
    /// A transport failure or HTTP status of this class.
    Class(ErrorClass),
    /// An error of this type was found in the `source()` chain: its name as
    /// `std::any::type_name` gives it, for display only (not stable across compilers).
    Error(&'static str),
    /// A [`retry_if`](RetryStrategy::retry_if) predicate matched.
    Predicate,
    /// A successful answer that a [`retry_result_if`](RetryStrategy::retry_result_if)
    /// rule matched.
    Result,
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::Code(code) => write!(f, "code {code}"),
            RetryReason::ResponsePredicate(code) => write!(f, "response rule, code {code}"),
            RetryReason::Class(class) => fmt::Display::fmt(class, f),
            RetryReason::Error(name) => write!(f, "error {name}"),
            RetryReason::Predicate => f.write_str("predicate"),
            RetryReason::Result => f.write_str("result rule"),
        }
    }
}

/// Why a failed attempt is final, as given to [`RetryStrategy::on_give_up`] and to
/// `tracing`, and recorded on the failure ([`GaveUp`]).
///
/// # Examples
///
/// ```
/// # use std::sync::mpsc;
/// # use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
/// use tower_jsonrpc_retry::test_util::FlakyServer;
/// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// let (tx, rx) = mpsc::channel();
/// let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(10)))
///     .codes([-32005])
///     .non_idempotent(["eth_sendRawTransaction"])
///     .on_give_up(move |e| { let _ = tx.send(e.reason()); });
/// let client = Client::builder(server.uri()).retry(strategy).build();
/// for method in ["eth_call", "eth_sendRawTransaction"] {
///     server.handle(method, |_| Err((-32005, "limit exceeded".into()))); // every time
///     assert!(client.call::<String>(method, ()).await.is_err());
/// }
/// let reasons: Vec<GiveUpReason> = rx.try_iter().collect();
/// assert_eq!(reasons, [GiveUpReason::Exhausted, GiveUpReason::NotIdempotent]);
/// assert_eq!(reasons[1].to_string(), "non-idempotent method");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The strategy does not retry this failure.
    NotRetryable,
    /// The strategy retries this failure, but not for this method: it is marked
    /// [`non_idempotent`](RetryStrategy::non_idempotent), and the server may have run
    /// the call (it answered it, or the failure does not prove the request never reached
    /// it).
    NotIdempotent,
    /// The backoff has no delay left.
    Exhausted,
    /// The call's deadline ([`max_elapsed`](RetryStrategy::max_elapsed)): the next wait
    /// would end at or past it, or the attempt was cut short at it.
    Deadline,
    /// The retry budget refused a withdrawal.
    Budget,
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUpReason::NotRetryable => "not retryable",
            GiveUpReason::NotIdempotent => "non-idempotent method",
            GiveUpReason::Exhausted => "attempts exhausted",
            GiveUpReason::Deadline => "deadline",
            GiveUpReason::Budget => "budget exhausted",
        })
    }
}

/// A retry about to happen, as given to [`RetryStrategy::on_retry`] and to `tracing`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::{RetryEvent, RetryStrategy};
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
///
/// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
///     .codes([2001])
///     .on_retry(|e: &RetryEvent<'_>| {
///         println!(
///             "retry #{} of {} after {}: waiting {:?}",
///             e.retry(),
///             e.method(),
///             e.reason(),
///             e.delay()
///         );
///     });
/// # let _ = strategy;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RetryEvent<'a> {
    pub(crate) method: &'a str,
    pub(crate) id: Option<&'a Id>,
    pub(crate) batch_len: Option<usize>,
    pub(crate) retry: u32,
    pub(crate) reason: RetryReason,
    pub(crate) delay: Duration,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) failure: AttemptFailure<'a>,
}

/// What an attempt ended in, for the events: an answer's error object and failure
/// status, or an error (with the failure status it came with).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttemptFailure<'a> {
    pub(crate) error_object: Option<&'a ErrorObject>,
    pub(crate) status: Option<http::StatusCode>,
    pub(crate) error: Option<&'a (dyn std::error::Error + Send + Sync + 'static)>,
}

impl AttemptFailure<'_> {
    fn class(&self) -> Option<ErrorClass> {
        let error = self.error?;
        [ErrorClass::Connect, ErrorClass::Timeout, ErrorClass::Reset]
            .into_iter()
            .find(|class| class.matches(error, None))
            .or(self.status.map(ErrorClass::Status))
    }
}

impl<'a> RetryEvent<'a> {
    /// The method of the request (for a batch, of its first call to be re-sent, or of its
    /// first notification when only notifications are).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use serde_json::json;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("eth_getBalance", |_| Ok(json!("0x10")));
    /// server.script("eth_getBalance", [Step::status(502)]); // to the first attempt
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_retry(move |e| { let _ = tx.send(e.method().to_owned()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let balance: String = client.call("eth_getBalance", ("0xab", "latest")).await?;
    /// assert_eq!(balance, "0x10");
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["eth_getBalance"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn method(&self) -> &str {
        self.method
    }

    /// The id of the request, if it is a call.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::jsonrpc::Id;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::drop_connection()]); // the first connection breaks
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_retry(move |e| { let _ = tx.send(e.id().cloned()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let sum: i64 = client.request("sum").params((1, 2)).id("job-42").send().await?;
    /// assert_eq!(sum, 3);
    /// assert_eq!(rx.try_recv()?, Some(Id::from("job-42")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> Option<&Id> {
        self.id
    }

    /// For a batch, how many of its requests are re-sent.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("echo", [Step::error(-32005)]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient().codes([-32005])
    ///     .on_retry(move |e| { let _ = tx.send(e.batch_len()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let mut batch = client.batch();
    /// let sum = batch.call::<i64>("sum", (1, 2));
    /// let echo = batch.call::<Vec<i64>>("echo", [7]);
    /// // `echo` is answered -32005 once: it alone is sent again.
    /// let mut results = batch.send().await?;
    /// assert_eq!((results.take(sum)?, results.take(echo)?), (3, vec![7]));
    /// assert_eq!(rx.try_recv()?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch_len(&self) -> Option<usize> {
        self.batch_len
    }

    /// Which retry this is: 1 for the first retry (the second send). As
    /// [`GiveUpEvent::retries`] and [`GaveUp::retries`] count them.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::error(-32005), Step::error(-32005)]);
    /// let (tx, rx) = mpsc::channel();
    /// let backoff = PeriodicBackoff::new(3, Duration::from_millis(10));
    /// let strategy = RetryStrategy::new(backoff)
    ///     .codes([-32005])
    ///     .on_retry(move |e| { let _ = tx.send(e.retry()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry(&self) -> u32 {
        self.retry
    }

    /// Why the attempt is retried.
    ///
    /// # Examples
    ///
    /// A receipt that is `null` until the node has seen the transaction (here, until the
    /// second call):
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    /// # use std::sync::mpsc;
    /// # use serde_json::{Value, json};
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, RetryReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// let seen = AtomicBool::new(false);
    /// server.handle("eth_getTransactionReceipt", move |_| {
    ///     let mined = seen.swap(true, Relaxed);
    ///     Ok(if mined { json!({"status": "0x1"}) } else { Value::Null })
    /// });
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .retry_result_if(|method, receipt| {
    ///         method == "eth_getTransactionReceipt" && receipt.is_null()
    ///     })
    ///     .on_retry(move |e| { let _ = tx.send(e.reason()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let receipt: Value = client.call("eth_getTransactionReceipt", ("0x5c",)).await?;
    /// assert_eq!(receipt, json!({"status": "0x1"}));
    /// assert_eq!(rx.try_recv()?, RetryReason::Result);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reason(&self) -> RetryReason {
        self.reason
    }

    /// How long the policy waits before the retry.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("eth_blockNumber", |_| Err((-32005, "limit exceeded".into())));
    /// let (tx, rx) = mpsc::channel();
    /// let backoff = ExponentialBackoff::doubling(3, Duration::from_millis(100));
    /// let strategy = RetryStrategy::new(backoff)
    ///     .codes([-32005])
    ///     .on_retry(move |e| { let _ = tx.send(e.delay()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<String>("eth_blockNumber", ()).await.is_err());
    /// let delays: Vec<Duration> = rx.try_iter().collect();
    /// assert_eq!(delays, [100, 200, 400].map(Duration::from_millis));
    /// # Ok(())
    /// # }
    /// ```
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The server's wait hint, when it gave one: its `Retry-After` header, a
    /// `backoff_seconds` in the error's `data` (Infura's), or a wait a
    /// [`retry_after_from`](RetryStrategy::retry_after_from) rule read from the answer
    /// (the Ethereum preset's, in the message), or one a service below the codec put
    /// beside the header ([`RetryAfter::new`](crate::codec::RetryAfter::new)), the
    /// largest (the delay is the larger of the backoff's and the hint, the hint first
    /// clamped to the ceiling). It is the hint as the server gave it, reported even when
    /// the ceiling (zero, say) kept it from raising the delay: compare with
    /// [`delay`](Self::delay).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::status(429).retry_after("3")]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .retry_after_ceiling(Duration::ZERO) // hints are heard, not waited out
    ///     .on_retry(move |e| { let _ = tx.send((e.retry_after(), e.delay())); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// let (retry_after, delay) = rx.try_recv()?;
    /// assert_eq!(retry_after, Some(Duration::from_secs(3)));
    /// assert!(delay < Duration::from_secs(1), "the backoff's own delay");
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The error object of the answer retried, if it was an error answer (for a batch,
    /// the answer of the first call re-sent, else the batch's own error): its code,
    /// message and data, to log what the server said.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{RetryEvent, RetryStrategy};
    ///
    /// let strategy = RetryStrategy::ethereum_rate_limits().on_retry(|e: &RetryEvent<'_>| {
    ///     let method = e.method();
    ///     match (e.error_object(), e.error()) {
    ///         (Some(answer), _) => eprintln!("retrying {method}, answered {answer}"),
    ///         (None, Some(error)) => eprintln!("retrying {method}: {error}"),
    ///         // A failure status, or a success a result rule retried.
    ///         (None, None) => eprintln!("retrying {method}: {}", e.reason()),
    ///     }
    /// });
    /// # let _ = strategy;
    /// ```
    pub fn error_object(&self) -> Option<&'a ErrorObject> {
        self.failure.error_object
    }

    /// The JSON-RPC error code of the answer retried, if it was an error answer
    /// ([`error_object`](Self::error_object)'s).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::error_with(-32016, "rate limit exceeded", None)]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::ethereum_rate_limits()
    ///     .on_retry(move |e| { let _ = tx.send(e.code()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// assert_eq!(rx.try_recv()?, Some(-32016));
    /// # Ok(())
    /// # }
    /// ```
    pub fn code(&self) -> Option<i64> {
        self.failure.error_object.map(ErrorObject::code)
    }

    /// The HTTP status of the answer retried, when it was not a 2xx (a status error, or
    /// a JSON-RPC answer under a failure status).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy, http};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::status(503)]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_retry(move |e| { let _ = tx.send(e.status()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// assert_eq!(rx.try_recv()?, Some(http::StatusCode::SERVICE_UNAVAILABLE));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<http::StatusCode> {
        self.failure.status
    }

    /// The class of the error retried, as [`GiveUpEvent::class`] gives it; `None` for an
    /// answer.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, ErrorClass, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::timeout()]); // the first attempt gets no answer in time
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_retry(move |e| { let _ = tx.send(e.class()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// assert_eq!(rx.try_recv()?, Some(ErrorClass::Timeout));
    /// # Ok(())
    /// # }
    /// ```
    pub fn class(&self) -> Option<ErrorClass> {
        self.failure.class()
    }

    /// The error retried, when the attempt ended in an error rather than an answer:
    /// over the codec, a [`codec::Error`](crate::codec::Error) or the stack's own error
    /// type; its `source()` chain tells what happened.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy, codec};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::drop_connection()]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient().on_retry(move |e| {
    ///     let error = e.error().and_then(|err| err.downcast_ref::<codec::Error>());
    ///     let _ = tx.send(error.map(|err| (err.is_reset(), err.to_string())));
    /// });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
    /// let (reset, message) = rx.try_recv()?.expect("a codec::Error");
    /// assert!(reset);
    /// assert_eq!(message, "HTTP request failed: the connection broke");
    /// # Ok(())
    /// # }
    /// ```
    pub fn error(&self) -> Option<&'a (dyn std::error::Error + Send + Sync + 'static)> {
        self.failure.error
    }
}

/// An error object's message as its `Display` shows it, cut after
/// [`MESSAGE_SHOWN`](crate::jsonrpc::MESSAGE_SHOWN) bytes: a log line should not be as
/// long as a hostile server makes its message.
#[cfg(feature = "tracing")]
fn shown_message(error: &ErrorObject) -> String {
    crate::jsonrpc::cut(error.message(), crate::jsonrpc::MESSAGE_SHOWN)
}

/// The error as `tracing` records one (`record_error`: subscribers such as
/// `tracing-subscriber`'s print its message and its sources).
#[cfg(feature = "tracing")]
fn as_dyn_error<'a>(
    error: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    error
}

/// Reports a retry: a `tracing` event and the strategy's hook.
pub(crate) fn announce_retry(strategy: &RetryStrategy, event: &RetryEvent<'_>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_jsonrpc_retry",
        method = event.method,
        id = event.id.map(tracing::field::display),
        batch_len = event.batch_len,
        retry = event.retry,
        reason = %event.reason,
        delay_ms = millis(event.delay),
        retry_after_ms = event.retry_after.map(millis),
        code = event.code(),
        status = event.failure.status.map(|s| s.as_u16()),
        class = event.class().map(tracing::field::display),
        error_message = event.error_object().map(shown_message),
        error = event.error().map(as_dyn_error),
        "retrying JSON-RPC request"
    );
    if let Some(hook) = &strategy.inner.on_retry {
        hook(event);
    }
}

/// How a call's retries ended, recorded on the failure its caller gets.
///
/// It holds the retries made and why there is no further one. The hooks hear it as it happens
/// ([`RetryStrategy::on_give_up`]); this is for the code that handles the failure, to
/// log or count it without a hook, and to tell a call the server refused at once from
/// one that ran out of retries, time or budget.
///
/// The retry layer records it wherever it announces a give-up (the hook, `tracing`): in
/// the extensions of an answer given up on (an error answer, or a result the strategy
/// retries: [`Response`](crate::jsonrpc::Response), an `http::Response` at the HTTP
/// level), and on a [`codec::Error`](crate::codec::Error) given up on, bare or boxed
/// ([`InspectError::record_give_up`](crate::InspectError::record_give_up)), whose
/// message then says it. [`ClientError::gave_up`](crate::ClientError::gave_up) reads
/// either.
///
/// A batch's answer records the batch's retries in the
/// [`BatchResponse`](crate::jsonrpc::BatchResponse)'s extensions, and each call's failed
/// answer the call's own: a call settled on an answer not retried records the retries
/// made before it, and why it was not retried (not retryable, or held back as
/// non-idempotent); a call that went out in the batch's last exchange went through all
/// of the batch's retries, and records them with the batch's reason (its own, if its
/// answer is not retried). The batch's record has the reason of the call its report
/// names: a call held back, when nothing else ended the retries.
///
/// When a partly retried batch's last re-send fails as a whole (a broken connection, a
/// timeout, a failure status, an answer that cannot be read), each call sent in it keeps
/// the answer it had, from an earlier attempt, so that the calls answered before are not
/// lost. That answer no longer tells what became of the call: the server may have run
/// it in the re-send. So its record says the last attempt went unanswered
/// ([`last_attempt_unanswered`](Self::last_attempt_unanswered)), and so does its message
/// and the whole batch's record; unless the failure proves that the re-send never
/// reached the server (a refused connection, a readiness error below the codec: the
/// same proof a non-idempotent call's retry needs, see
/// [`RetryStrategy::non_idempotent`]), when the answer is still the server's last word.
/// Either way such a call is told the failure's own `Retry-After` (a 429's, say), or
/// else what is left now of the server's latest word on time before it (its answer's,
/// or a later 429's), counted from when that word came: nothing, when the layer waited
/// it out before the re-send, as it does up to its ceiling.
///
/// Under two retry layers, the record is the outer layer's when that layer made
/// retries. When it made none, its one attempt was the inner layer's whole run: the
/// record keeps the inner layer's retries, with the outer layer's reason if that is a
/// limit (the backoff, the deadline, the budget) or if the inner layer's record tells
/// nothing more (it gave up at once, not retryable: the outer layer may know the call
/// was held back as non-idempotent), else the inner layer's. Either way, it says the
/// last attempt went unanswered if the inner layer's record on that answer did. A codec
/// over the HTTP-level layer reads that layer's record off the answers it hands back.
///
/// A call that succeeded has none, nor one whose strategy never retries anything (the
/// layer does not watch it). A result the strategy retries is a failure, and has one
/// when the retries end on it: under a failure status the strategy retries, or one a
/// [`retry_result_if`](RetryStrategy::retry_result_if) rule retries. It is on the
/// [`Response`](crate::jsonrpc::Response)'s extensions
/// ([`Client::call`](crate::Client::call) returns the result alone, as the call's
/// value). At the HTTP level, the inner service's own error comes back as it was, and a
/// call given up before its first attempt (its body too large or too slow to come, the
/// deadline while the service was not ready) fails with an error of its own (tower's
/// `Elapsed`, the body's error, a body over the limit) that holds none: there, the hook
/// alone hears it. (jsonrpsee's client does not show the `http::Response`'s extensions:
/// inside it, only the layer's own errors, a timeout's, say it, in their message.)
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{http, Client, ErrorClass, GiveUpReason, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
///     .codes([-32005])
///     .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
/// let client = Client::builder(server.uri()).retry(strategy).build();
///
/// // The server's answer, the same three times.
/// server.script("eth_blockNumber", std::iter::repeat_n(Step::error(-32005), 3));
/// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
/// let gave_up = err.gave_up().expect("the layer gave up on it");
/// assert_eq!((gave_up.retries(), gave_up.reason()), (2, GiveUpReason::Exhausted));
/// assert_eq!(gave_up.to_string(), "gave up after 2 retries: attempts exhausted");
///
/// // A bare 503, then a code nothing retries: given up at once.
/// server.script("eth_getLogs", [Step::status(503), Step::error(-32602)]);
/// let err = client.call::<Vec<u64>>("eth_getLogs", ()).await.unwrap_err();
/// assert_eq!(err.rpc().map(|e| e.code()), Some(-32602));
/// let gave_up = err.gave_up().unwrap();
/// assert_eq!((gave_up.retries(), gave_up.reason()), (1, GiveUpReason::NotRetryable));
///
/// // An error of the stack says it in its message.
/// server.script("eth_chainId", std::iter::repeat_n(Step::status(503), 3));
/// let err = client.call::<u64>("eth_chainId", ()).await.unwrap_err();
/// assert_eq!(
///     std::error::Error::source(&err).unwrap().to_string(),
///     "HTTP status 503 Service Unavailable; gave up after 2 retries: attempts exhausted",
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GaveUp {
    pub(crate) retries: u32,
    pub(crate) reason: GiveUpReason,
    /// The last attempt got no answer: the one this is on is from an earlier attempt.
    pub(crate) unanswered: bool,
}

impl GaveUp {
    /// A record of retries that ended so: for tests of the code that handles failures.
    ///
    /// # Examples
    ///
    /// A test double's answer, for the code that reads the record:
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    /// use tower_jsonrpc_retry::{GaveUp, GiveUpReason};
    ///
    /// // Whether a failed answer calls for more capacity rather than a fix.
    /// fn starved(answer: &Response) -> bool {
    ///     let gave_up = answer.extensions().get::<GaveUp>();
    ///     gave_up.is_some_and(|g| g.reason() == GiveUpReason::Budget)
    /// }
    ///
    /// let mut answer = Response::failure(1, ErrorObject::new(-32005, "limit exceeded"));
    /// answer.extensions_mut().insert(GaveUp::new(0, GiveUpReason::Budget));
    /// assert!(starved(&answer));
    /// ```
    pub fn new(retries: u32, reason: GiveUpReason) -> Self {
        Self {
            retries,
            reason,
            unanswered: false,
        }
    }

    /// The same record, saying the last attempt went unanswered
    /// ([`last_attempt_unanswered`](Self::last_attempt_unanswered)): for tests of the
    /// code that handles failures.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{GaveUp, GiveUpReason};
    ///
    /// let gave_up = GaveUp::new(1, GiveUpReason::NotRetryable);
    /// let gave_up = gave_up.with_last_attempt_unanswered();
    /// assert!(gave_up.last_attempt_unanswered());
    /// assert_eq!(
    ///     gave_up.to_string(),
    ///     "gave up after 1 retry: not retryable; \
    ///      the last attempt got no answer, this one is from an earlier attempt",
    /// );
    /// ```
    #[must_use]
    pub fn with_last_attempt_unanswered(self) -> Self {
        Self {
            unanswered: true,
            ..self
        }
    }

    /// How many retries were made before the final failure (0: the first attempt was it).
    /// A retry counts once decided, sent or not: one the deadline ended while it waited
    /// for the service to be ready counts (the budget paid for it too).
    ///
    /// # Examples
    ///
    /// On an error answer the layer gave up on:
    ///
    /// ```
    /// # use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, GaveUp, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("eth_call", |_| Err((-32005, "limit exceeded".into()))); // every time
    /// let strategy = RetryStrategy::transient().codes([-32005]);
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// // `send` hands back the answer as it came, an error answer included.
    /// let answer = client.send(Request::new("eth_call", json!([])).with_id(1)).await?;
    /// let gave_up = answer.extensions().get::<GaveUp>().copied();
    /// assert_eq!(gave_up.map(|g| g.retries()), Some(3)); // the preset's 3
    /// # Ok(())
    /// # }
    /// ```
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Why there is no further retry.
    ///
    /// # Examples
    ///
    /// On a call's error, from [`ClientError::gave_up`](crate::ClientError::gave_up):
    ///
    /// ```
    /// use std::sync::Arc;
    /// # use std::time::Duration;
    /// use tower::retry::budget::TpsBudget;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("eth_blockNumber", [Step::error(-32005)]);
    /// // A budget with nothing in it: no retry is ever paid for.
    /// let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.0));
    /// let strategy = RetryStrategy::transient().codes([-32005]).budget(budget);
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let gave_up = err.gave_up().expect("the layer gave up on it");
    /// assert_eq!((gave_up.retries(), gave_up.reason()), (0, GiveUpReason::Budget));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reason(&self) -> GiveUpReason {
        self.reason
    }

    /// Whether the last attempt got no answer, so that the answer this record is on comes
    /// from an earlier one: a call of a partly retried batch whose last re-send failed as a
    /// whole, in a way that does not prove it never reached the server (see [`GaveUp`]).
    /// That answer does not tell what the re-send did: the server may have run the call,
    /// even if the answer says it did not (a rate limit's error, say). Only a batch's
    /// answers have such a record; a single call's failure is always its last attempt's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
    ///     .codes([-32005]);
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    ///
    /// // The transfer is rate limited, then its re-send's answer is cut short.
    /// server.script("transfer", [Step::error(-32005), Step::truncated()]);
    /// let mut batch = client.batch();
    /// let sum = batch.call::<i64>("sum", (1, 2));
    /// let transfer = batch.call::<u64>("transfer", ());
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(sum)?, 3, "the answer kept");
    /// let err = results.take(transfer).unwrap_err();
    /// assert_eq!(err.rpc().map(|e| e.code()), Some(-32005));
    /// let gave_up = err.gave_up().unwrap();
    /// assert_eq!(gave_up.reason(), GiveUpReason::NotRetryable);
    /// assert!(gave_up.last_attempt_unanswered(), "the transfer may have run");
    /// assert!(err.to_string().ends_with(
    ///     "gave up after 1 retry: not retryable; the last attempt got no answer, \
    ///      this one is from an earlier attempt"
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_attempt_unanswered(&self) -> bool {
        self.unanswered
    }

    /// The record on an error, found anywhere in its `source()` chain (on the
    /// [`codec::Error`](crate::codec::Error) given up on; the outermost that has one):
    /// for an error type of a layer above the retry layer, or a boxed one.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::GaveUp;
    ///
    /// fn log(err: &tower_jsonrpc_retry::BoxError) {
    ///     match GaveUp::find(&**err) {
    ///         Some(gave_up) => eprintln!("{err} ({gave_up})"),
    ///         None => eprintln!("{err}"),
    ///     }
    /// }
    /// # log(&"refused".into());
    /// ```
    pub fn find(err: &(dyn std::error::Error + 'static)) -> Option<GaveUp> {
        crate::classify::chain(err)
            .filter_map(|e| e.downcast_ref::<crate::codec::Error>())
            .find_map(crate::codec::Error::gave_up)
    }

    /// Whether an error's message should say it: when retries were made, when a limit
    /// (the deadline, the budget) stopped the first one, or when the answer is not the
    /// last attempt's. A failure nothing retries says nothing more than the failure
    /// itself.
    fn is_news(&self) -> bool {
        self.retries > 0 || self.reason != GiveUpReason::NotRetryable || self.unanswered
    }

    /// Whether a limit ended the retries (the backoff, the deadline, the budget), not what
    /// the rules say of the failure.
    fn is_limit(&self) -> bool {
        matches!(
            self.reason,
            GiveUpReason::Exhausted | GiveUpReason::Deadline | GiveUpReason::Budget
        )
    }

    /// The end of the message of a failure given up on, when there is news in `gave_up`:
    /// `; gave up after 2 retries: deadline`. Nothing otherwise.
    pub(crate) fn fmt_news(gave_up: Option<GaveUp>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match gave_up {
            Some(gave_up) if gave_up.is_news() => write!(f, "; {gave_up}"),
            _ => Ok(()),
        }
    }

    /// What a result records once a retry layer gives up on it with `self`, when it may
    /// hold a record already (a retry layer further in gave up on it first). When the
    /// outer layer made retries, its record. When it made none, its one attempt was the
    /// inner layer's whole run: the inner layer's retries, with the outer layer's reason
    /// if that is a limit (the backoff, the deadline, the budget) or if the inner record
    /// has no news ([`is_news`](Self::is_news)), else the inner layer's. Either way, the
    /// last attempt went unanswered if the inner layer's did: the answer is the one its
    /// run handed back.
    pub(crate) fn over(self, inner: Option<GaveUp>) -> GaveUp {
        // The answer handed back is the inner layer's: if its last attempt went
        // unanswered, so did the call's.
        let unanswered = self.unanswered || inner.is_some_and(|i| i.unanswered);
        match inner {
            Some(inner) if self.retries == 0 => GaveUp {
                retries: inner.retries,
                reason: if self.is_limit() || !inner.is_news() {
                    self.reason
                } else {
                    inner.reason
                },
                unanswered,
            },
            _ => GaveUp { unanswered, ..self },
        }
    }
}

/// `gave up after 2 retries: deadline`; at the first attempt, `gave up at the first
/// attempt: budget exhausted`; when the last attempt went unanswered, `gave up after 1
/// retry: not retryable; the last attempt got no answer, this one is from an earlier
/// attempt`.
impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retries {
            0 => write!(f, "gave up at the first attempt: {}", self.reason)?,
            1 => write!(f, "gave up after 1 retry: {}", self.reason)?,
            n => write!(f, "gave up after {n} retries: {}", self.reason)?,
        }
        if self.unanswered {
            f.write_str("; the last attempt got no answer, this one is from an earlier attempt")?;
        }
        Ok(())
    }
}

/// A call whose last attempt failed and is final, as given to
/// [`RetryStrategy::on_give_up`] and to `tracing`: the failure the caller gets.
///
/// For a batch, the call named is one whose latest answer failed (an error, an answer
/// under a status a rule retries, or a result a rule retries): when the backoff, the
/// deadline or the budget ended the retries, the first that wanted another; otherwise
/// the first held back as non-idempotent ([`GiveUpReason::NotIdempotent`], the reason
/// then), by this exchange or an earlier one (the call the reason is about); if none
/// did, the first among the calls sent last, else the first settled by an earlier
/// exchange. When the batch failed as a whole (a transport failure, a refusal) and was
/// held back, the first non-idempotent call is named (a notification only if no call is
/// one); after any other such failure, the first call sent last.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use tower_jsonrpc_retry::{GiveUpEvent, GiveUpReason, RetryStrategy};
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
///
/// // Count the calls the budget or the deadline stopped, apart from the rest.
/// let cut_short = Arc::new(AtomicU64::new(0));
/// let counter = Arc::clone(&cut_short);
/// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
///     .codes([2001])
///     .on_give_up(move |e: &GiveUpEvent<'_>| {
///         if matches!(e.reason(), GiveUpReason::Budget | GiveUpReason::Deadline) {
///             counter.fetch_add(1, Ordering::Relaxed);
///         }
///     });
/// # let _ = strategy;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GiveUpEvent<'a> {
    pub(crate) method: &'a str,
    pub(crate) id: Option<&'a Id>,
    pub(crate) batch_len: Option<usize>,
    pub(crate) retries: u32,
    pub(crate) reason: GiveUpReason,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) failure: AttemptFailure<'a>,
}

impl<'a> GiveUpEvent<'a> {
    /// The method of the request (for a batch, of the call named: see above).
    ///
    /// Empty at the HTTP level for a call given up before its body was read whole (a
    /// body over the request limit, one that failed, or an upload cut by the attempt
    /// timeout or the deadline): which call it was is not known, and
    /// [`id`](Self::id) and [`batch_len`](Self::batch_len) are `None`. A metric labelled
    /// by method can count these under a name of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("eth_getLogs", [Step::error(-32602)]); // invalid params: not retried
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send(e.method().to_owned()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<Vec<u64>>("eth_getLogs", ()).await.is_err());
    /// assert_eq!(rx.try_recv()?, "eth_getLogs");
    /// # Ok(())
    /// # }
    /// ```
    pub fn method(&self) -> &str {
        self.method
    }

    /// The id of the request, if it is a call (and known: see [`method`](Self::method)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::jsonrpc::Id;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send(e.id().cloned()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// // The server has no `eth_foo`: -32601 (method not found), which is not retried.
    /// let err = client.request("eth_foo").id(7).send::<u64>().await.unwrap_err();
    /// assert_eq!(err.rpc().map(|e| e.code()), Some(-32601));
    /// assert_eq!(rx.try_recv()?, Some(Id::Number(7)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> Option<&Id> {
        self.id
    }

    /// For a batch, how many of its requests were sent last.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("eth_getLogs", |_| Err((-32005, "limit exceeded".into()))); // always
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient().codes([-32005])
    ///     .on_give_up(move |e| { let _ = tx.send(e.batch_len()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// let mut batch = client.batch();
    /// let sum = batch.call::<i64>("sum", (1, 2));
    /// let logs = [1, 2].map(|block| batch.call::<Vec<u64>>("eth_getLogs", [block]));
    /// let mut results = batch.send().await?;
    /// assert_eq!(results.take(sum)?, 3);
    /// assert!(logs.into_iter().all(|logs| results.take(logs).is_err()));
    /// // The two `eth_getLogs` alone were sent again, each time.
    /// assert_eq!(rx.try_recv()?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn batch_len(&self) -> Option<usize> {
        self.batch_len
    }

    /// How many retries were made before this final failure (0: the first attempt).
    ///
    /// For a batch, the batch's retries, as in the [`GaveUp`] on the whole answer: how
    /// many times some of its calls were sent again. The call named may have failed for
    /// good in an earlier exchange than the last; the [`GaveUp`] on its own answer says
    /// after how many.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", std::iter::repeat_n(Step::status(503), 4));
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send((e.retries(), e.reason())); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<i64>("sum", (1, 2)).await.is_err());
    /// // Four 503s: the first attempt's, and the preset's 3 retries'.
    /// assert_eq!(rx.try_recv()?, (3, GiveUpReason::Exhausted));
    /// assert_eq!(server.calls("sum"), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Why there is no further retry.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("eth_call", |_| Err((-32005, "limit exceeded".into()))); // every time
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(10, Duration::from_secs(1)))
    ///     .codes([-32005])
    ///     .max_elapsed(Duration::from_millis(2500))
    ///     .on_give_up(move |e| { let _ = tx.send((e.reason(), e.retries())); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<String>("eth_call", ()).await.is_err());
    /// // Retried at 1 s and 2 s; a third retry, at 3 s, would be past the deadline.
    /// assert_eq!(rx.try_recv()?, (GiveUpReason::Deadline, 2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reason(&self) -> GiveUpReason {
        self.reason
    }

    /// The server's wait hint on the last attempt's answer, when it gave one, read as
    /// [`RetryEvent::retry_after`] reads it. For a batch, the largest of the whole
    /// answer's (its `Retry-After`) and those of the answers a rule retries, or, when it
    /// retries none, of those held back (a rule retries them, their method is
    /// non-idempotent); for a batch of notifications refused as a whole, the refusal's.
    /// With [`GiveUpReason::Deadline`], a hint that, held to the
    /// [ceiling](RetryStrategy::retry_after_ceiling), is longer than the time left says
    /// that the server's wait, not the backoff's, would have passed the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::time::Duration;
    /// # use serde_json::json;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, GiveUpReason, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// // Infura's hint, in the error's data: wait 30 s, past the deadline.
    /// let hint = Some(json!({"backoff_seconds": 30}));
    /// server.script("eth_call", [Step::error_with(-32005, "limit exceeded", hint)]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .codes([-32005])
    ///     .max_elapsed(Duration::from_secs(5))
    ///     .on_give_up(move |e| { let _ = tx.send((e.reason(), e.retry_after())); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<String>("eth_call", ()).await.is_err());
    /// let (reason, retry_after) = rx.try_recv()?;
    /// assert_eq!(reason, GiveUpReason::Deadline);
    /// assert_eq!(retry_after, Some(Duration::from_secs(30)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The JSON-RPC error code of the answer given up on, if it was an error answer (for
    /// a batch, the named call's, else the batch's own error's): a label for metrics.
    /// `None` with [`status`](Self::status) also `None` is a transport failure (its
    /// [`class`](Self::class), its [`error`](Self::error)), or a successful answer a
    /// [`retry_result_if`](RetryStrategy::retry_result_if) rule retried (no error).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{GiveUpEvent, RetryStrategy};
    ///
    /// let strategy = RetryStrategy::transient().on_give_up(|e: &GiveUpEvent<'_>| {
    ///     let code = e.code().map_or_else(|| "none".to_owned(), |c| c.to_string());
    ///     let status = e.status().map_or(0, |s| s.as_u16());
    ///     eprintln!("gave up: method={} code={code} status={status}", e.method());
    /// });
    /// # let _ = strategy;
    /// ```
    pub fn code(&self) -> Option<i64> {
        self.failure.error_object.map(ErrorObject::code)
    }

    /// The error object of the answer given up on, if it was an error answer (the one
    /// [`code`](Self::code) is read from): its message and data, to log what the server
    /// said.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use serde_json::json;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// let what = Some(json!("missing toBlock"));
    /// server.script("eth_getLogs", [Step::error_with(-32602, "invalid params", what)]);
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send(e.error_object().cloned()); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<Vec<u64>>("eth_getLogs", ()).await.is_err());
    /// let error = rx.try_recv()?.expect("an error answer");
    /// assert_eq!((error.code(), error.message()), (-32602, "invalid params"));
    /// assert_eq!(error.data(), Some(&json!("missing toBlock")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn error_object(&self) -> Option<&'a ErrorObject> {
        self.failure.error_object
    }

    /// The HTTP status of the answer given up on, when it was not a 2xx (a status error,
    /// or a JSON-RPC answer under a failure status).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// use tower_jsonrpc_retry::{Client, RetryStrategy, http};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// let server = FlakyServer::start().await?;
    /// // A 429 with a JSON-RPC error in its body, to every attempt.
    /// server.script("sum", std::iter::repeat_n(Step::status_with_error(429, -32005), 4));
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send((e.status(), e.code())); });
    /// let client = Client::builder(server.uri()).retry(strategy).build();
    /// assert!(client.call::<i64>("sum", (1, 2)).await.is_err());
    /// let (status, code) = rx.try_recv()?;
    /// assert_eq!(status, Some(http::StatusCode::TOO_MANY_REQUESTS));
    /// assert_eq!(code, Some(-32005));
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Option<http::StatusCode> {
        self.failure.status
    }

    /// The class of the error given up on, when the last attempt ended in an error
    /// rather than an answer: [`Connect`](ErrorClass::Connect),
    /// [`Timeout`](ErrorClass::Timeout) or [`Reset`](ErrorClass::Reset) when it is one
    /// (asked in that order), else [`Status`](ErrorClass::Status) when it came with a
    /// failure status; `None` for an answer (see [`code`](Self::code)) and for an error
    /// of none of these (an answer that could not be read: see [`error`](Self::error)).
    /// With the code and the status, a label for metrics by cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{GiveUpEvent, RetryStrategy};
    ///
    /// let strategy = RetryStrategy::transient().on_give_up(|e: &GiveUpEvent<'_>| {
    ///     let cause = match (e.class(), e.code()) {
    ///         (Some(class), _) => class.to_string(), // "timeout", "status 503", ...
    ///         (None, Some(code)) => format!("code {code}"),
    ///         (None, None) => "other".to_owned(),
    ///     };
    ///     eprintln!("gave up on {}: {cause} ({})", e.method(), e.reason());
    /// });
    /// # let _ = strategy;
    /// ```
    pub fn class(&self) -> Option<ErrorClass> {
        self.failure.class()
    }

    /// The error given up on, when the last attempt ended in an error rather than an
    /// answer (the error the caller gets, unless a partly retried batch turns it into
    /// the answers it gathered): over the codec, a [`codec::Error`](crate::codec::Error)
    /// or the stack's own error type; its `source()` chain tells what happened.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io::{self, ErrorKind};
    /// # use std::sync::mpsc;
    /// # use serde_json::json;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::jsonrpc::{Request, Response};
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// // A service that fails every call: a stack whose error type is `io::Error`.
    /// let down = tower::service_fn(|_: Request| async {
    ///     Err::<Response, _>(io::Error::new(ErrorKind::ConnectionRefused, "node down"))
    /// });
    /// let (tx, rx) = mpsc::channel();
    /// let strategy = RetryStrategy::transient()
    ///     .on_give_up(move |e| { let _ = tx.send(e.error().map(ToString::to_string)); });
    /// let svc = JsonRpcRetryLayer::new(strategy).layer(down);
    /// let err = svc.oneshot(Request::new("eth_chainId", json!([])).with_id(1)).await;
    /// // The hook hears the error the caller gets.
    /// assert_eq!(err.unwrap_err().to_string(), "node down");
    /// assert_eq!(rx.try_recv()?, Some("node down".to_owned()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn error(&self) -> Option<&'a (dyn std::error::Error + Send + Sync + 'static)> {
        self.failure.error
    }
}

/// Reports that a failed attempt is final: a `tracing` event and the strategy's hook.
pub(crate) fn announce_give_up(strategy: &RetryStrategy, event: &GiveUpEvent<'_>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_jsonrpc_retry",
        method = event.method,
        id = event.id.map(tracing::field::display),
        batch_len = event.batch_len,
        retries = event.retries,
        reason = %event.reason,
        retry_after_ms = event.retry_after.map(millis),
        code = event.code(),
        status = event.failure.status.map(|s| s.as_u16()),
        class = event.class().map(tracing::field::display),
        error_message = event.error_object().map(shown_message),
        error = event.error().map(as_dyn_error),
        "not retrying JSON-RPC request"
    );
    if let Some(hook) = &strategy.inner.on_give_up {
        hook(event);
    }
}

/// The call a batch's events name when no answer names one, among `requests` (a
/// batch's, or those of them a reason is about): the first call, else (notifications
/// only) the first notification.
pub(crate) fn named_call<'a, I>(requests: I) -> Option<&'a Request>
where
    I: IntoIterator<Item = &'a Request>,
    I::IntoIter: Clone,
{
    let mut requests = requests.into_iter();
    requests
        .clone()
        .find(|r| r.id().is_some())
        .or_else(|| requests.next())
}

/// Whole milliseconds for a log field, `u64::MAX` for a delay too long to count so.
#[cfg(feature = "tracing")]
fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use super::*;

    #[test]
    fn millis_saturate_instead_of_wrapping() {
        assert_eq!(millis(Duration::from_millis(1_500)), 1_500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
