use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tower::retry::budget::Budget;

use super::event::{GiveUpEvent, RetryEvent};
use crate::backoff::rng::RngSource;
use crate::backoff::{Backoff, BoxBackoff, ExponentialBackoff, Jitter};
use crate::jsonrpc::ErrorObject;

/// The default ceiling on a server's `Retry-After` hint: one minute.
///
/// A hint raises the next delay up to this, never beyond, so a hostile or broken server
/// cannot park a caller for hours (Envoy discards hints above its own ceiling of 300 s;
/// one minute suits calls that a person or a request handler is waiting on).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use tower_jsonrpc_retry::retry::DEFAULT_RETRY_AFTER_CEILING;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{Client, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// // Rate limited once, asked to come back in an hour: the wait is cut to the ceiling.
/// server.script("sum", [Step::status(429).retry_after("3600")]);
/// let (tx, waits) = mpsc::channel();
/// let strategy = RetryStrategy::transient().on_retry(move |e| {
///     let _ = tx.send(e.delay());
/// });
/// let client = Client::builder(server.uri()).retry(strategy).build();
/// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
/// assert_eq!(waits.try_recv()?, DEFAULT_RETRY_AFTER_CEILING);
/// assert_eq!(DEFAULT_RETRY_AFTER_CEILING, Duration::from_secs(60));
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_RETRY_AFTER_CEILING: Duration = Duration::from_secs(60);

/// A kind of transport failure, read from an error's `source()` chain and status.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::{ErrorClass, RetryStrategy, http};
/// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
/// use std::time::Duration;
///
/// let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
///     .retry_on(ErrorClass::Connect)
///     .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
/// # let _ = strategy;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The connection could not be made (refused, unreachable, a name that did not
    /// resolve, as hyper-util's client reports it): the request never left the client,
    /// so even a non-idempotent call is safe to send again. Not included, as they fail
    /// the same way every time: with the `rustls` feature, a TLS failure found by rustls
    /// (an untrusted certificate, a handshake refused), and a URI whose scheme the
    /// connector does not speak
    /// ([`client::UnsupportedScheme`](crate::client::UnsupportedScheme), from
    /// [`Client::builder`](crate::Client::builder)'s connector or a
    /// [`SchemeCheck`](crate::client::SchemeCheck) of your own; or hyper-util's
    /// `HttpConnector`'s own refusal of a scheme but `http`), which no rule retries.
    /// Below an error type that hides hyper-util's error from the `source()` chain
    /// (jsonrpsee's transport error does), only a refused connection or an unavailable
    /// local address is known to be one; other connect failures are then not taken for
    /// it, which keeps non-idempotent calls safe.
    ///
    /// A connection that hangs (a host that drops packets) is one only if the connector
    /// gives up on it first: hyper-util's `HttpConnector` has no connect timeout unless
    /// given one (`set_connect_timeout`, below the attempt timeout, as
    /// [`Client::builder`](crate::Client::builder)'s stack does); otherwise the attempt
    /// timeout ends it, as a [`Timeout`](Self::Timeout).
    Connect,
    /// A timeout ended the attempt: tower's `TimeoutLayer`, tokio's `timeout`, an I/O
    /// `TimedOut`, or hyper's own timers.
    Timeout,
    /// An established connection broke: `ConnectionReset`, `ConnectionAborted`,
    /// `BrokenPipe`, an unexpected end of stream, hyper's incomplete message, or a
    /// request hyper handed back unwritten (a canceled request: its connection closed
    /// before it could be written, so even a non-idempotent call is sent again).
    ///
    /// Over HTTP/2, with the `http2` feature (on by default): a stream the server reset
    /// (`RST_STREAM`), a `GOAWAY`, or a protocol error. A stream the server reset with
    /// `REFUSED_STREAM`, which it did not process, is sent again even for a
    /// non-idempotent call, unless some of its answer had come (a `GOAWAY`'s error does
    /// not say which streams it covered, so it is no such proof). Without the feature
    /// h2's errors are no class (a connection closed after a `GOAWAY` is still a broken
    /// pipe). With or without it, a request hyper failed as its connection's task gone
    /// (the connection ended, by a `GOAWAY`, a close or unanswered pings, while the
    /// request waited there for a free stream) is one too, though no proof it was not
    /// sent.
    Reset,
    /// The server answered with this HTTP status (with or without a JSON-RPC body).
    /// Meant for failure statuses (429, 502, 503, ...): a 2xx answer that decodes never
    /// matches, since it is decided on by its JSON-RPC body (its error codes); a 2xx
    /// status matches only an error that carries it (a 2xx body that failed to decode or
    /// to be read whole; not a content-encoded answer the HTTP-level layer hands back
    /// unread).
    Status(StatusCode),
}

impl ErrorClass {
    /// Whether the error (or anything in its chain) is of this class. Status classes
    /// are matched against the status given, since an error alone may not carry one.
    pub(crate) fn matches(
        self,
        err: &(dyn StdError + 'static),
        status: Option<StatusCode>,
    ) -> bool {
        match self {
            ErrorClass::Connect => crate::classify::is_connect(err),
            ErrorClass::Timeout => crate::classify::is_timeout(err),
            ErrorClass::Reset => crate::classify::is_reset(err),
            ErrorClass::Status(s) => status == Some(s),
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Connect => f.write_str("connect"),
            ErrorClass::Timeout => f.write_str("timeout"),
            ErrorClass::Reset => f.write_str("reset"),
            ErrorClass::Status(s) => write!(f, "status {}", s.as_u16()),
        }
    }
}

pub(crate) type ErrorPredicate = Arc<dyn Fn(&(dyn StdError + 'static)) -> bool + Send + Sync>;
pub(crate) type ResponsePredicate = Arc<dyn Fn(&ErrorObject) -> bool + Send + Sync>;
pub(crate) type StatusPredicate = Arc<dyn Fn(StatusCode) -> bool + Send + Sync>;
pub(crate) type ResultPredicate = Arc<dyn Fn(&str, &serde_json::Value) -> bool + Send + Sync>;
pub(crate) type HintReader = Arc<dyn Fn(&ErrorObject) -> Option<Duration> + Send + Sync>;
pub(crate) type OnRetry = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// The hook [`RetryStrategy::on_give_up`] installs.
pub(crate) type OnGiveUp = Arc<dyn Fn(&GiveUpEvent<'_>) + Send + Sync>;

/// One way an error can be matched for a retry.
#[derive(Clone)]
pub(crate) enum ErrorMatcher {
    /// An error of this type anywhere in the chain (the name is for events).
    Type(fn(&(dyn StdError + 'static)) -> bool, &'static str),
    Class(ErrorClass),
    /// A status for which the predicate holds, as [`ErrorClass::Status`] matches one.
    Status(StatusPredicate),
    Predicate(ErrorPredicate),
}

fn chain_has<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    crate::classify::chain(err).any(|e| e.is::<E>())
}

/// Which of a strategy's hooks and budget a default lent it (a strategy for one of its
/// methods that had none of its own): those follow the default's when it sets another.
/// And whether its method's [`non_idempotent`](RetryStrategy::non_idempotent) mark is the
/// default's, which the default's [`idempotent`](RetryStrategy::idempotent) lifts (a mark
/// of its own stays).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lent {
    on_retry: bool,
    on_give_up: bool,
    budget: bool,
    mark: bool,
}

/// Lends a default's hook or budget (`$value`, its `$field`) to each of `$strategies`
/// (strategies for its methods) that has none of its own: none at all, or one lent
/// before. A strategy that keeps its own is not copied.
macro_rules! lend {
    ($strategies:expr, $value:expr, $field:ident) => {
        for strategy in $strategies {
            if strategy.inner.$field.is_none() || strategy.inner.lent.$field {
                let inner = Arc::make_mut(&mut strategy.inner);
                inner.$field = Some(Arc::clone($value));
                inner.lent.$field = true;
            }
        }
    };
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) backoff: Option<BoxBackoff>,
    pub(crate) codes: Vec<i64>,
    pub(crate) response_predicates: Vec<ResponsePredicate>,
    /// Error responses never retried, whatever the rules above or a status say.
    pub(crate) response_vetoes: Vec<ResponsePredicate>,
    /// Successful answers retried ([`retry_result_if`](RetryStrategy::retry_result_if)).
    pub(crate) result_predicates: Vec<ResultPredicate>,
    pub(crate) matchers: Vec<ErrorMatcher>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) retry_after_ceiling: Duration,
    /// At most this is added to a wait a server's hint decided.
    pub(crate) retry_after_spread: Duration,
    /// Where that addition is drawn from: seeded by the seeded presets and
    /// [`retry_after_spread_seeded`](RetryStrategy::retry_after_spread_seeded).
    pub(crate) spread_source: RngSource,
    /// Wait hints read from error answers by the caller's rules
    /// ([`retry_after_from`](RetryStrategy::retry_after_from)).
    pub(crate) hint_readers: Vec<HintReader>,
    pub(crate) budget: Option<Arc<dyn Budget + Send + Sync>>,
    pub(crate) non_idempotent: Vec<Arc<str>>,
    pub(crate) on_retry: Option<OnRetry>,
    pub(crate) on_give_up: Option<OnGiveUp>,
    /// The strategies of [`for_method`](RetryStrategy::for_method), sorted by method.
    pub(crate) methods: Vec<(Arc<str>, RetryStrategy)>,
    /// In a strategy for a method: which of its hooks and budget the default lent it.
    pub(crate) lent: Lent,
    /// In a strategy for a method: its backoff yielded no delay when it was given
    /// ([`for_method`](RetryStrategy::for_method)), so it never sends a call again.
    pub(crate) no_delays: bool,
}

/// What to retry and how long to wait: a backoff, the JSON-RPC codes and transport
/// errors that warrant another attempt, and the limits on the whole call.
///
/// Cheap to clone (its parts are shared) and `Send + Sync`. A strategy set on the
/// layer is the default; one inserted in a request's extensions replaces it entirely
/// for that request (hooks, budget, deadline and the
/// [`non_idempotent`](Self::non_idempotent) methods included: clone the default and add
/// to it to keep them), and [`RetryStrategy::none()`] there disables retries. It
/// governs the call itself: its strategies [`for_method`](Self::for_method), a clone's
/// included, only hold calls back (see there).
///
/// # A new strategy
///
/// [`RetryStrategy::new`] retries nothing until told what to retry: no codes, no
/// errors, no deadline, no budget; `Retry-After` hints are honoured up to
/// [`DEFAULT_RETRY_AFTER_CEILING`]. (`RetryStrategy::default()` is another thing: the
/// [`transient()`](Self::transient) preset, which retries connect failures, timeouts,
/// resets and 429/502/503/504.)
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::RetryStrategy;
/// use tower_jsonrpc_retry::backoff::{Jitter, PeriodicBackoff};
///
/// // pjrpc's `PeriodicBackoff(attempts=3, interval=1.0, jitter=...)` with
/// // `exceptions={TimeoutError}` and `codes={2001}`:
/// let strategy = RetryStrategy::new(
///     PeriodicBackoff::new(3, Duration::from_secs(1)).with_jitter(Jitter::gauss(0.5, 0.1)?),
/// )
/// .codes([2001])
/// .retry_on_error::<tower::timeout::error::Elapsed>()
/// .max_elapsed(Duration::from_secs(10));
/// # let _ = strategy;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RetryStrategy {
    pub(crate) inner: Arc<Inner>,
}

impl RetryStrategy {
    /// The strategy that governs a request: its own, from its extensions, as it is;
    /// else, for a single call (`method`), the default's strategy for that method, if
    /// it has one; else `default`.
    pub(crate) fn for_request<'a>(
        extensions: &'a http::Extensions,
        method: Option<&str>,
        default: &'a RetryStrategy,
    ) -> &'a RetryStrategy {
        match extensions.get::<RetryStrategy>() {
            Some(own) => own,
            None => method
                .and_then(|m| default.method_strategy(m))
                .unwrap_or(default),
        }
    }

    /// The strategy [`for_method`](Self::for_method) gave `method`, if any.
    pub(crate) fn method_strategy(&self, method: &str) -> Option<&RetryStrategy> {
        let methods = &self.inner.methods;
        if methods.is_empty() {
            return None;
        }
        let at = methods.binary_search_by(|(m, _)| (**m).cmp(method)).ok()?;
        methods.get(at).map(|(_, strategy)| strategy)
    }

    /// Whether this strategy has strategies of its own for some methods.
    pub(crate) fn has_method_strategies(&self) -> bool {
        !self.inner.methods.is_empty()
    }

    /// A strategy that waits for the delays of `backoff`, and retries nothing until
    /// codes or errors are added.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// // pjrpc: PeriodicBackoff(attempts=3, interval=0.5), codes={-32005}
    /// let waits = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(500)));
    /// assert!(!waits.can_retry(), "nothing to retry on yet");
    /// assert!(waits.codes([-32005]).can_retry());
    /// ```
    #[must_use]
    pub fn new(backoff: impl Backoff) -> Self {
        Self::from_backoff(Some(BoxBackoff::new(backoff)))
    }

    /// A strategy that never retries. In a request's extensions, it disables retries
    /// for that request, whatever the layer's default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// let once = RetryStrategy::none();
    /// assert!(!once.can_retry());
    /// // For one call, on any stack: `client.request("eth_sendRawTransaction")
    /// //     .params((signed,)).retry(once)`.
    /// ```
    #[must_use]
    pub fn none() -> Self {
        Self::from_backoff(None)
    }

    fn from_backoff(backoff: Option<BoxBackoff>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backoff,
                codes: Vec::new(),
                response_predicates: Vec::new(),
                response_vetoes: Vec::new(),
                result_predicates: Vec::new(),
                matchers: Vec::new(),
                max_elapsed: None,
                retry_after_ceiling: DEFAULT_RETRY_AFTER_CEILING,
                retry_after_spread: Duration::ZERO,
                spread_source: RngSource::unseeded(),
                hint_readers: Vec::new(),
                budget: None,
                non_idempotent: Vec::new(),
                on_retry: None,
                on_give_up: None,
                methods: Vec::new(),
                lent: Lent::default(),
                no_delays: false,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Replaces the backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    ///
    /// // The preset's rules, with five retries from 50 ms instead of its own delays.
    /// let strategy = RetryStrategy::transient()
    ///     .backoff(ExponentialBackoff::doubling(5, Duration::from_millis(50)));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn backoff(self, backoff: impl Backoff) -> Self {
        let backoff = BoxBackoff::new(backoff);
        self.edit(|i| i.backoff = Some(backoff))
    }

    /// Rebuilds the backoff from the current one: to scale or cap a preset's delays
    /// without restating them. A strategy without a backoff ([`none`](Self::none)) is
    /// left as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::BackoffExt;
    ///
    /// // The same preset, a hundred times faster (for a test or a demo).
    /// let fast = RetryStrategy::ethereum_rate_limits().map_backoff(|b| b.map(|d| d / 100));
    /// # let _ = fast;
    /// ```
    #[must_use]
    pub fn map_backoff<B, F>(self, f: F) -> Self
    where
        B: Backoff,
        F: FnOnce(BoxBackoff) -> B,
    {
        match self.inner.backoff.clone() {
            Some(current) => self.backoff(f(current)),
            None => self,
        }
    }

    /// Retries JSON-RPC error responses with these codes (added to those already set).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// // pjrpc: codes={-32005, -32603}; a second call adds to the first.
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
    ///     .codes([-32005])
    ///     .codes([-32603]);
    /// assert!(strategy.can_retry());
    /// ```
    #[must_use]
    pub fn codes(self, codes: impl IntoIterator<Item = i64>) -> Self {
        self.edit(|i| {
            i.codes.extend(codes);
            i.codes.sort_unstable();
            i.codes.dedup();
        })
    }

    /// Retries JSON-RPC error responses for which `f` is true, e.g. a code whose meaning
    /// depends on its message.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // -32000 is a node's catch-all: retried only when the node is behind the caller.
    /// let strategy = RetryStrategy::transient().retry_response_if(|e| {
    ///     e.code() == -32000 && e.message().contains("header not found")
    /// });
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_response_if<F>(self, f: F) -> Self
    where
        F: Fn(&ErrorObject) -> bool + Send + Sync + 'static,
    {
        self.edit(|i| i.response_predicates.push(Arc::new(f)))
    }

    /// Retries successful answers for which `f(method, result)` is true: an answer that
    /// says the server is not there yet rather than what the caller asked, such as a
    /// node behind a load balancer answering `null` for a block or a receipt another node
    /// has already seen. The rule is told the method, so that one strategy can hold rules
    /// for several (in a batch, the batch's strategy decides for every call, and a
    /// strategy [`for_method`](Self::for_method) is not asked there).
    ///
    /// A retried success is a failure like any other: it waits for the backoff (raised
    /// to a `Retry-After` that came with it, up to the ceiling), never for a
    /// non-idempotent method (the server ran the call), and when the retries end,
    /// the last answer comes back as it is, with how the retries ended recorded on it
    /// ([`GaveUp`](crate::GaveUp)). In a batch, only the calls whose result the rule
    /// retries are sent again. Notifications have no result, and are never retried by
    /// it. At the HTTP level, where results are otherwise checked but not built, a
    /// strategy with such a rule (the layer's, one of its strategies for methods, or a
    /// request's own) has every result of its calls built, to be read; a result
    /// serde_json cannot build (a number beyond `f64`, nesting deeper than 128 levels) is
    /// read by no rule, and its bytes go to the caller as before. The rule may be asked
    /// more than once about one answer (a batch's bookkeeping asks again): keep it a
    /// plain function of its arguments.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // A receipt or a block the node behind the balancer has not seen yet: ask again.
    /// let strategy = RetryStrategy::transient().retry_result_if(|method, result| {
    ///     matches!(method, "eth_getTransactionReceipt" | "eth_getBlockByNumber")
    ///         && result.is_null()
    /// });
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_result_if<F>(self, f: F) -> Self
    where
        F: Fn(&str, &serde_json::Value) -> bool + Send + Sync + 'static,
    {
        self.edit(|i| i.result_predicates.push(Arc::new(f)))
    }

    /// Never retries JSON-RPC error responses for which `f` is true, whatever would
    /// otherwise: their code, a [`retry_response_if`](Self::retry_response_if) rule, or
    /// the HTTP status they came with (a gateway's 429 over a batch holding the chain's
    /// answer, say). For answers that are final however they travel: a revert, a
    /// refusal that fails the same way every time. A call given up this way ends "not
    /// retryable".
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // Retry every -32000, except a nonce the node has seen: sending again cannot help.
    /// let strategy = RetryStrategy::transient()
    ///     .codes([-32000])
    ///     .never_retry_response_if(|e| e.message().contains("nonce too low"));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn never_retry_response_if<F>(self, f: F) -> Self
    where
        F: Fn(&ErrorObject) -> bool + Send + Sync + 'static,
    {
        self.edit(|i| i.response_vetoes.push(Arc::new(f)))
    }

    /// Retries errors with an `E` anywhere in their `source()` chain: the analogue of
    /// pjrpc's `exceptions={...}`.
    ///
    /// No rule on errors (this one, [`retry_on`](Self::retry_on),
    /// [`retry_if`](Self::retry_if)) retries a request the codec refused unsent
    /// ([`is_invalid_request`](crate::codec::Error::is_invalid_request): its source a
    /// [`DecodeError`](crate::jsonrpc::DecodeError), or a URI the codec cannot send to),
    /// nor one to a URI whose scheme the connector does not speak
    /// ([`UnsupportedScheme`](crate::client::UnsupportedScheme) in the chain, or
    /// hyper-util's `HttpConnector`'s own refusal): every attempt would be refused the
    /// same way. It ends "not retryable", at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::timeout::error::Elapsed;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// // pjrpc: exceptions={TimeoutError, OSError}
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
    ///     .retry_on_error::<Elapsed>()
    ///     .retry_on_error::<std::io::Error>();
    /// assert!(strategy.can_retry());
    /// ```
    #[must_use]
    pub fn retry_on_error<E: StdError + 'static>(self) -> Self {
        self.edit(|i| {
            i.matchers.push(ErrorMatcher::Type(
                chain_has::<E>,
                std::any::type_name::<E>(),
            ))
        })
    }

    /// Retries errors of this class, and (for [`ErrorClass::Status`]) responses that
    /// came with this HTTP status.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::http::StatusCode;
    /// use tower_jsonrpc_retry::{ErrorClass, RetryStrategy};
    ///
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(200)))
    ///     .retry_on(ErrorClass::Connect)
    ///     .retry_on(ErrorClass::Timeout)
    ///     .retry_on(ErrorClass::Status(StatusCode::SERVICE_UNAVAILABLE));
    /// assert!(strategy.can_retry());
    /// ```
    #[must_use]
    pub fn retry_on(self, class: ErrorClass) -> Self {
        self.edit(|i| i.matchers.push(ErrorMatcher::Class(class)))
    }

    /// Retries answers and errors that came with an HTTP status for which `f` is true,
    /// as [`retry_on`](Self::retry_on)`(ErrorClass::Status(..))` does for one status: a
    /// bare status, and a JSON-RPC answer (an error object, or a result) under it. Each
    /// retry's [reason](crate::RetryReason) is that status's class.
    ///
    /// `f` sees the statuses of failures: a failure status, or a 2xx that came with an
    /// error (a body that failed to decode or to be read whole); a 2xx answer that
    /// decodes is decided on by its JSON-RPC body alone, and a content-encoded 2xx answer
    /// the HTTP-level layer cannot read is no failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// // Every 5xx, as reqwest-retry's default policy retries them (and 429 and 408).
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
    ///     .retry_status_if(|s| s.is_server_error() || matches!(s.as_u16(), 408 | 429));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_status_if<F>(self, f: F) -> Self
    where
        F: Fn(StatusCode) -> bool + Send + Sync + 'static,
    {
        self.edit(|i| i.matchers.push(ErrorMatcher::Status(Arc::new(f))))
    }

    /// Retries errors for which `f` is true; `f` sees the outermost error and can walk
    /// its `source()` chain. It does not see a JSON-RPC answer, under whatever status:
    /// rules on those are [`codes`](Self::codes),
    /// [`retry_response_if`](Self::retry_response_if) and the status rules
    /// ([`retry_on`](Self::retry_on), [`retry_status_if`](Self::retry_status_if)).
    ///
    /// Like every rule on errors, it is not asked about a request refused unsent, nor one
    /// to a URI whose scheme the connector does not speak (see
    /// [`retry_on_error`](Self::retry_on_error)): those are never retried.
    ///
    /// It is asked once, about the outermost error, not about each error of the chain in
    /// turn as [`retry_on_error`](Self::retry_on_error) looks: a predicate that says no
    /// to one kind of error (`|e| !is_fatal(e)`) would otherwise say yes to whatever that
    /// error wraps. To look down the chain, walk it with
    /// [`error_chain`](crate::retry::error_chain), which sees what `retry_on_error` sees
    /// (following `source()` alone would miss an error inside a `std::io::Error`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::timeout::error::Elapsed;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::retry::error_chain;
    ///
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
    ///     .retry_if(|e| error_chain(e).any(|e| e.is::<Elapsed>()));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_if<F>(self, f: F) -> Self
    where
        F: Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
    {
        self.edit(|i| i.matchers.push(ErrorMatcher::Predicate(Arc::new(f))))
    }

    /// Bounds the whole call, attempts and waits included, measured on tokio's clock
    /// from the call: no retry is scheduled whose wait would end at or past it, and over
    /// the [codec](crate::codec::JsonRpcCodec) every attempt, the first included, is cut
    /// short when the deadline comes (its error
    /// [`is_timeout`](crate::codec::Error::is_timeout)). Over another inner service,
    /// which cannot see the deadline (or a `Buffer` over the codec, whose queue holds an
    /// attempt before the codec sees it), the layers drop an attempt still unanswered a
    /// millisecond after the deadline, for inner errors that can say so
    /// ([`InspectError::deadline_cut_error`](crate::InspectError::deadline_cut_error)).
    /// The layers ([`JsonRpcRetryLayer`](crate::JsonRpcRetryLayer), its HTTP-level form)
    /// and [`Client`](crate::Client) bound the first attempt too; the policy alone under
    /// a plain tower `Retry` bounds the retries only (their waits, and over the codec the
    /// retries themselves). Under the layers, a retry that has to wait for the inner
    /// service to be ready (a concurrency limit, a full `Buffer`) stops waiting at the
    /// deadline too, and a retry whose wait ended after it (the
    /// runtime was held up, an [`on_retry`](Self::on_retry) hook took longer than the
    /// time left) is not sent at all (both for inner errors that can say so:
    /// [`InspectError::deadline_error`](crate::InspectError::deadline_error)). A deadline
    /// set by a retry layer further out bounds the waits and attempts of the layers
    /// inside it as well, an HTTP-level layer below the codec included.
    ///
    /// The deadline rides in the request's extensions. A request that a layer below the
    /// retry layer keeps (a recorder, a dead-letter queue) and sends through the stack
    /// again is a new call once its first call's deadline has passed; before that, it
    /// cannot be told from an attempt of a retry layer further out, and keeps that
    /// deadline. To replay such a request at once with time of its own, send a new
    /// [`Request`](crate::jsonrpc::Request) made from its method, params and id.
    ///
    /// "From the call" means from `Service::call`. At the JSON-RPC level, the wait for
    /// readiness before it (`poll_ready`, which `oneshot` and [`Client`](crate::Client)
    /// run first) is the caller's, as with tower's `Timeout`, and is not bounded: to
    /// bound it too, put `load_shed` above the layer (fail at once when the stack is
    /// busy) or wrap the call in `tokio::time::timeout`. The HTTP-level layer is ready
    /// when its inner service is, and waits for it again inside the call, within the
    /// deadline.
    ///
    /// In a test under tokio's paused clock, time moves only while every task waits for
    /// a timer: retries with zero delays against a service that answers at once never
    /// let it move, so the deadline never comes. Give such a test a backoff with a
    /// finite number of retries, or a delay.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tower_jsonrpc_retry::{ErrorClass, RetryStrategy};
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// // However slow the node, the call is over within 5 s.
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(500)))
    ///     .retry_on(ErrorClass::Timeout)
    ///     .max_elapsed(Duration::from_secs(5));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn max_elapsed(self, limit: Duration) -> Self {
        self.edit(|i| i.max_elapsed = Some(limit))
    }

    /// The most a server's wait hint may raise a delay to (a
    /// [`retry_after_spread`](Self::retry_after_spread) adds at most its own length). A
    /// hint is a `Retry-After` header (seconds or an HTTP date), or a number of seconds in
    /// the error object's `data` as Infura sends it (`backoff_seconds`, a JSON number, at
    /// the top of `data` or under `rate`, the top first; a string or a negative number
    /// there is not read), or one a rule of yours reads
    /// ([`retry_after_from`](Self::retry_after_from)), or one a service below the codec
    /// puts in the HTTP answer's extensions
    /// ([`RetryAfter::new`](crate::codec::RetryAfter::new)); the largest wins, and it only
    /// ever lengthens the backoff's delay.
    ///
    /// # Default
    ///
    /// [`DEFAULT_RETRY_AFTER_CEILING`] (60 s). `Duration::ZERO` ignores hints. Above
    /// about 30 years (tokio's far future, the longest wait tokio sets), a wait is that
    /// long, whatever the hint.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // A caller that cannot wait a minute: a server's hint raises a delay to 5 s at most.
    /// let strategy = RetryStrategy::transient().retry_after_ceiling(Duration::from_secs(5));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_after_ceiling(self, ceiling: Duration) -> Self {
        self.edit(|i| i.retry_after_ceiling = ceiling)
    }

    /// Spreads the callers a server's hint sends back at one moment: when a hint (see
    /// [`retry_after_ceiling`](Self::retry_after_ceiling)) decides a wait, that is, is
    /// as long as the backoff's delay or longer, a time drawn at random from
    /// `[0, spread)`, in whole nanoseconds, is added to it.
    ///
    /// A hint tells every caller the server limited the same thing: all wait 5 s, and
    /// all come back in the same instant (at the same second, for an HTTP date), to be
    /// limited again together. The backoff's jitter does not help there, as the hint
    /// overrides its delay. A spread keeps the server's word (no wait is shorter than
    /// its hint) and spreads the return over `spread`.
    ///
    /// The wait may end up to `spread` past the ceiling. Under
    /// [`max_elapsed`](Self::max_elapsed), the draw is held below the time the hint's
    /// wait leaves before the deadline, so the retry it is added to still starts
    /// before it; the time it adds comes out of the call's deadline, though, and a
    /// later retry may no longer fit. The wait the spread adds is in
    /// [`RetryEvent::delay`](crate::RetryEvent::delay).
    ///
    /// Like the backoff, it is the spread of the strategy that governs the call (see
    /// [`for_method`](Self::for_method): a strategy for a method only holds calls back).
    /// Each draw comes from a generator seeded from the thread's, unless the strategy
    /// is seeded: [`transient_seeded`](Self::transient_seeded) and
    /// [`ethereum_rate_limits_seeded`](Self::ethereum_rate_limits_seeded) seed it from
    /// their seed (salted, so that it does not draw the stream their jitter draws),
    /// [`retry_after_spread_seeded`](Self::retry_after_spread_seeded) with one of yours;
    /// this method keeps the seed the strategy has.
    ///
    /// # Default
    ///
    /// `Duration::ZERO`: a hint is waited exactly (or the backoff's delay, when longer).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // Told "Retry-After: 5", callers come back over 5 s to 6 s, not all at 5 s.
    /// let strategy = RetryStrategy::transient().retry_after_spread(Duration::from_secs(1));
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_after_spread(self, spread: Duration) -> Self {
        self.edit(|i| i.retry_after_spread = spread)
    }

    /// [`retry_after_spread`](Self::retry_after_spread), with its draws seeded: the
    /// `n`-th draw of the strategy (clones included, counting across their calls) is
    /// seeded from `(seed, n)`, as a seeded [`Jitter`](crate::backoff::Jitter) seeds its
    /// requests, but from `seed` salted: a jitter seeded with the same number draws
    /// another stream, so that the two do not move together. For tests that assert the
    /// waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// let strategy = RetryStrategy::transient()
    ///     .retry_after_spread_seeded(Duration::from_secs(1), 7);
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_after_spread_seeded(self, spread: Duration, seed: u64) -> Self {
        self.edit(|i| {
            i.retry_after_spread = spread;
            i.spread_source = spread_source(seed);
        })
    }

    /// Reads a server's wait hint from an error answer, where the provider writes one
    /// this crate does not read: in the message's prose ("try again in 4ms"), or in
    /// `data` under a name of its own. Like the hints read without it (see
    /// [`retry_after_ceiling`](Self::retry_after_ceiling)), it only ever lengthens the
    /// backoff's delay, up to the ceiling; the largest hint wins (a reader added to
    /// others, and to the header and `backoff_seconds`). It makes nothing retryable by
    /// itself: the answer must be retried by a rule ([`codes`](Self::codes),
    /// [`retry_response_if`](Self::retry_response_if), a status). It reads at both levels
    /// alike; for a batch, each answer retried, and a refusal of the whole batch. A hint
    /// whose wait would end at or past [`max_elapsed`](Self::max_elapsed) ends the
    /// retries at once ([`GiveUpReason::Deadline`](crate::GiveUpReason::Deadline)). It
    /// is the strategy's own: a
    /// strategy [`for_method`](Self::for_method) does not borrow the default's, and
    /// [`ClientError::wait_hint`](crate::ClientError::wait_hint) reports only the hints
    /// read without it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // A provider that says how long to wait in its error's data: `"retry_in_ms": 250`.
    /// let strategy = RetryStrategy::transient().codes([-32005]).retry_after_from(|e| {
    ///     let millis = e.data()?.get("retry_in_ms")?.as_u64()?;
    ///     Some(Duration::from_millis(millis))
    /// });
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn retry_after_from<F>(self, f: F) -> Self
    where
        F: Fn(&ErrorObject) -> Option<Duration> + Send + Sync + 'static,
    {
        self.edit(|i| i.hint_readers.push(Arc::new(f)))
    }

    /// Shares a retry budget, such as tower's
    /// [`TpsBudget`](tower::retry::budget::TpsBudget): every call deposits, every retry
    /// withdraws, and a retry the budget refuses is not made. A batch counts as one
    /// call, at both levels: it deposits once, and each re-send withdraws once, however
    /// many of its items go again (the budget counts exchanges with the server). (At the
    /// HTTP level a call deposits once its body is read and the service below is ready:
    /// one that ends before, its body refused or its deadline passed, deposits nothing.
    /// A retry layer inside another deposits once per attempt of the outer one.) A retry
    /// is paid for when it is scheduled, before its wait: a call dropped during that wait
    /// has paid for it. One budget shared by all callers bounds how much a retry storm
    /// can amplify load. A budget chosen at run time, an `Arc<dyn Budget + Send + Sync>`,
    /// is taken too.
    ///
    /// On a default with strategies for methods ([`for_method`](Self::for_method)), it
    /// also serves those that have none of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use tower::retry::budget::TpsBudget;
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // Retries of every caller of the stack, together: at most 20 % of the calls of the
    /// // last 10 s, and 10 a second whatever the traffic.
    /// let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2));
    /// let strategy = RetryStrategy::transient().budget(budget);
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn budget<B>(self, budget: Arc<B>) -> Self
    where
        B: Budget + Send + Sync + ?Sized + 'static,
    {
        let budget: Arc<dyn Budget + Send + Sync> = Arc::new(Shared(budget));
        self.edit(|i| {
            lend!(methods(&mut i.methods), &budget, budget);
            i.budget = Some(budget);
            i.lent.budget = false;
        })
    }

    /// Marks methods that must not run twice (e.g. `eth_sendRawTransaction`).
    ///
    /// A marked method is retried only after an error that proves the server did not run
    /// it, and only when one of the strategy's rules retries that error:
    ///
    /// - the connection could not be made ([`ErrorClass::Connect`]; a TLS handshake
    ///   refused counts too, though no [`ErrorClass`] retries it: a rule on its type or
    ///   a predicate may);
    /// - hyper handed the request back unwritten, as when a fresh connection closed
    ///   before it could be written ([`ErrorClass::Reset`]; one that closed while
    ///   hyper-util was still setting it up, before hyper had the request, fails with an
    ///   error that does not say so, and the call is held back: the safe side);
    /// - with the `http2` feature (on by default), the server refused the HTTP/2 stream
    ///   (`REFUSED_STREAM`) before any of its answer came ([`ErrorClass::Reset`]);
    /// - the codec's HTTP service failed to become ready, or tower's `LoadShed` below the
    ///   retry layer refused the request with `Overloaded` (a rule on the error's type).
    ///
    /// Never after an error response, a status, or a timeout after which the request may
    /// have been sent (an attempt timeout is one, even when it ends the call while it
    /// connects; hyper-util's connect timeout is a connect failure). A failure a rule
    /// retries, held back so, ends the call with
    /// [`GiveUpReason::NotIdempotent`](crate::GiveUpReason::NotIdempotent), and its
    /// message says `gave up at the first attempt: non-idempotent method`; one no rule
    /// retries is [`NotRetryable`](crate::GiveUpReason::NotRetryable), as for any method.
    ///
    /// A readiness error of a layer of your own between the retry layer and the codec
    /// is not proof: it reaches the policy as the attempt's error, as it was, with
    /// nothing to say the request stopped there. Put such a layer below the codec,
    /// around its HTTP service, where its readiness error counts.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // Writes of an internal API that must not run twice: retried only after a refused
    /// // connection or the like, never after a timeout.
    /// let strategy =
    ///     RetryStrategy::transient().non_idempotent(["orders.create", "payments.capture"]);
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn non_idempotent<I, M>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: AsRef<str>,
    {
        let methods: Vec<Arc<str>> = methods.into_iter().map(|m| Arc::from(m.as_ref())).collect();
        self.edit(|i| {
            // A method with a strategy of its own stays marked under it.
            for (method, strategy) in &mut i.methods {
                if methods.contains(method) && !strategy.lists_non_idempotent(method) {
                    *strategy = strategy.clone().lend_mark(method);
                }
            }
            i.non_idempotent.extend(methods);
        })
    }

    /// Unmarks methods marked [`non_idempotent`](Self::non_idempotent), a preset's
    /// included: their answers and failures are retried as any other call's.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // A signed transaction sent twice is not applied twice (its nonce is fixed): retry
    /// // it as any other call. The caller then reads a node's "already known" or "nonce
    /// // too low" after a retry as a sign that an earlier send may have gone through.
    /// let strategy = RetryStrategy::ethereum_rate_limits().idempotent(["eth_sendRawTransaction"]);
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn idempotent<I, M>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: AsRef<str>,
    {
        let methods: Vec<M> = methods.into_iter().collect();
        let named = |m: &str| methods.iter().any(|u| u.as_ref() == m);
        self.edit(|i| {
            i.non_idempotent.retain(|m| !named(m));
            // And under a method's strategy of its own, where it was this one's mark.
            for (method, strategy) in &mut i.methods {
                if named(method) && strategy.inner.lent.mark {
                    *strategy = strategy
                        .clone()
                        .idempotent([&**method])
                        .edit(|i| i.lent.mark = false);
                }
            }
        })
    }

    /// Calls `f` before every retry's wait with what is about to happen: the method, id,
    /// retry, reason and delay, and what failed (the server's error object, the status,
    /// or the error). A strategy has one such hook: a second call replaces
    /// the first (call both from one closure to keep both). The wait counts from the
    /// moment the delay was decided, so the time the hook takes comes out of it: a retry
    /// whose wait ends before [`max_elapsed`](Self::max_elapsed) still starts by then,
    /// unless the hook takes longer than the whole delay; one that would start past the
    /// deadline is not sent.
    ///
    /// The hook runs in the call's own future, synchronously: keep it short, and keep it
    /// from panicking. A panic unwinds through the caller's call, which is lost with the
    /// retry (already paid for, if a budget is set).
    ///
    /// On a default with strategies for methods ([`for_method`](Self::for_method)), it
    /// also serves those that have none of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// let strategy = RetryStrategy::transient().on_retry(|e| {
    ///     eprintln!(
    ///         "{} (id {:?}): retry {} after {}, in {:?}",
    ///         e.method(),
    ///         e.id(),
    ///         e.retry(),
    ///         e.reason(),
    ///         e.delay()
    ///     );
    /// });
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn on_retry<F>(self, f: F) -> Self
    where
        F: Fn(&RetryEvent<'_>) + Send + Sync + 'static,
    {
        let hook: OnRetry = Arc::new(f);
        self.edit(|i| {
            lend!(methods(&mut i.methods), &hook, on_retry);
            i.on_retry = Some(hook);
            i.lent.on_retry = false;
        })
    }

    /// Calls `f` when a call's failure is final (the failure the caller gets), with the
    /// method, id, retries made and [why](crate::GiveUpReason): not retryable, held back as
    /// non-idempotent, attempts exhausted, the deadline, the budget. With
    /// [`on_retry`](Self::on_retry), it is what metrics need without `tracing`. A call
    /// whose strategy can never retry ([`can_retry`](Self::can_retry) is false) is not
    /// watched and makes no event. As with `on_retry`, a second call replaces the first,
    /// and the hook runs in the call's future: a panic in it unwinds through the caller's
    /// call. A call whose future is dropped (cancelled, or ended by a timeout above the
    /// layer, as jsonrpsee's `request_timeout`) ends without a failure, and without this
    /// event: count those where they are dropped, or give the strategy a
    /// [`max_elapsed`](Self::max_elapsed) below that timeout, so the layer ends them.
    ///
    /// On a default with strategies for methods ([`for_method`](Self::for_method)), it
    /// also serves those that have none of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// static GAVE_UP: AtomicU64 = AtomicU64::new(0);
    /// let strategy = RetryStrategy::transient().on_give_up(|e| {
    ///     GAVE_UP.fetch_add(1, Ordering::Relaxed);
    ///     eprintln!("{} failed after {} retries: {}", e.method(), e.retries(), e.reason());
    /// });
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn on_give_up<F>(self, f: F) -> Self
    where
        F: Fn(&GiveUpEvent<'_>) + Send + Sync + 'static,
    {
        let hook: OnGiveUp = Arc::new(f);
        self.edit(|i| {
            lend!(methods(&mut i.methods), &hook, on_give_up);
            i.on_give_up = Some(hook);
            i.lent.on_give_up = false;
        })
    }

    /// Gives calls of `method` a strategy of their own: its backoff, rules, deadline,
    /// budget and hooks govern them instead of this one's. For stacks whose requests
    /// cannot carry their own strategy (inside jsonrpsee's HTTP client), and for rules
    /// that belong to a method rather than to one call: a heavy `eth_getLogs` that may
    /// wait longer, a write that is never sent twice. Its deadline replaces this one's
    /// too: `RetryStrategy::none().max_elapsed(limit)` sends a call once, and still cuts
    /// it at `limit`. Hooks ([`on_retry`](Self::on_retry),
    /// [`on_give_up`](Self::on_give_up)) and a [`budget`](Self::budget) it does not have
    /// of its own, it shares with this strategy, whether they are set before or after
    /// (and its calls deposit in that budget, as every call does); those it has, from a
    /// clone of this one say, it keeps. So one `on_give_up` on the default hears the
    /// calls of every method whose strategy has no hook of its own. (A strategy that
    /// never retries, as [`none()`](Self::none), makes no event for its calls; to hear
    /// them, give the method one with no retries to make instead, such as the default
    /// with `PeriodicBackoff::new(0, ..)`: it is held back from a batch's re-sends as
    /// `none()` is. `for_method` learns that from the backoff's
    /// [`delays_hint`](crate::backoff::Backoff::delays_hint), drawing no delays: a
    /// backoff of your own that does not say how many it yields counts as one that
    /// yields some.)
    ///
    /// The strategies of methods are this strategy's when it is a layer's (or a
    /// client's) default:
    ///
    /// - A single call, notification or not, follows its method's strategy, unless it
    ///   carries a strategy of its own in its extensions: that one governs it.
    /// - A batch follows its own strategy or this one (its calls share one backoff and
    ///   one deadline): the strategies of its calls' methods, their backoffs, rules and
    ///   deadlines, are not used there, except to hold calls back (next).
    /// - Wherever a strategy with strategies for methods governs, a call in a batch or a
    ///   single call under a request's own strategy, a call whose method it gives a
    ///   strategy that would never send it again (one that
    ///   [`can_retry`](Self::can_retry) nothing, as [`none()`](Self::none), one whose
    ///   backoff says it yields no delay, as `PeriodicBackoff::new(0, ..)`, or one that
    ///   marks the method [`non_idempotent`](Self::non_idempotent)) is held back from
    ///   re-sends, as if marked non-idempotent (a batch holding it that fails in
    ///   transport, a timeout say, is then not sent again at all, unless the failure
    ///   proves the server never got it: see the crate's [Batches](crate#batches)). So a
    ///   request's strategy cloned from the default keeps the default's writes safe. A method's strategy that retries only
    ///   some failures (`retry_on(ErrorClass::Connect)`, say) holds nothing back: in a
    ///   batch, its calls are re-sent on the batch's rules. For a write, mark the method
    ///   non-idempotent on the default too.
    /// - A second strategy for the same method replaces the first; the strategies that
    ///   `strategy` itself has for methods are dropped (one level, no chains).
    /// - A method this strategy marks [`non_idempotent`](Self::non_idempotent), before
    ///   or after, stays marked under its own strategy, and
    ///   [`idempotent`](Self::idempotent) here lifts that mark there too (before or
    ///   after: unmarked here first, it is not marked there): giving a write a strategy
    ///   of its own does not lift its mark. A mark of the method's own strategy (one
    ///   built from a preset that marks it, say) stays, whatever this one says: lift it
    ///   on that strategy, with `idempotent` there.
    /// - At the HTTP level, a call's deadline counts from the call, as ever. Until its
    ///   body has been read the method is not known, and this strategy's deadline (or
    ///   the request's own strategy's) bounds the read; a single call's method's
    ///   deadline then replaces it, later or earlier, or takes it away.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::backoff::ExponentialBackoff;
    /// use tower_jsonrpc_retry::{ErrorClass, RetryStrategy};
    ///
    /// let base = RetryStrategy::ethereum_rate_limits();
    /// let strategy = base
    ///     .clone()
    ///     // A read: safe to send again after a timeout, which the preset does not retry.
    ///     .for_method("eth_call", base.clone().retry_on(ErrorClass::Timeout))
    ///     // Log queries are slow and rate limited hardest: more retries, further apart.
    ///     .for_method(
    ///         "eth_getLogs",
    ///         base.backoff(ExponentialBackoff::doubling(6, Duration::from_secs(2)))
    ///             .max_elapsed(Duration::from_secs(120)),
    ///     )
    ///     // A trace costs the node too much to run twice: never retried alone, and in a
    ///     // batch sent again only when the server never saw it (as a write is).
    ///     .for_method("debug_traceTransaction", RetryStrategy::none());
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn for_method(self, method: impl AsRef<str>, strategy: RetryStrategy) -> Self {
        let method: Arc<str> = Arc::from(method.as_ref());
        let strategy = if strategy.has_method_strategies() {
            strategy.edit(|i| i.methods.clear())
        } else {
            strategy
        };
        // A backoff with no delays (`PeriodicBackoff::new(0, ..)`) never sends a call
        // again, as `none()` does: learnt once here, from what the backoff knows without
        // drawing (a seeded jitter's first stream is the first request's, and a
        // `from_fn` closure runs at a request's first failure).
        let no_delays = strategy
            .inner
            .backoff
            .as_ref()
            .is_some_and(|b| b.delays_hint().1 == Some(0));
        let strategy = strategy.edit(|i| i.no_delays = no_delays);
        // A method marked here stays marked under its own strategy.
        let mut strategy =
            if self.lists_non_idempotent(&method) && !strategy.lists_non_idempotent(&method) {
                strategy.lend_mark(&method)
            } else {
                strategy
            };
        // Hooks and a budget it does not have of its own, it shares with this one.
        let mine = &self.inner;
        if let Some(hook) = &mine.on_retry {
            lend!([&mut strategy], hook, on_retry);
        }
        if let Some(hook) = &mine.on_give_up {
            lend!([&mut strategy], hook, on_give_up);
        }
        if let Some(budget) = &mine.budget {
            lend!([&mut strategy], budget, budget);
        }
        self.edit(
            |i| match i.methods.binary_search_by(|(m, _)| m.cmp(&method)) {
                Ok(at) => {
                    if let Some(slot) = i.methods.get_mut(at) {
                        slot.1 = strategy;
                    }
                }
                Err(at) => i.methods.insert(at, (method, strategy)),
            },
        )
    }

    /// Whether this strategy can ever retry: it has a backoff and something to retry on.
    /// The backoff's delays are not drawn to find out, so one that yields none
    /// (`PeriodicBackoff::new(0, ..)`) counts as able to retry: its calls are watched,
    /// and a failure it would have retried ends "attempts exhausted" at the first attempt.
    /// It speaks of this strategy alone: the strategies it has
    /// [for methods](Self::for_method) are not asked, so a `none()` default whose methods
    /// have strategies that retry says `false`, and the layer still retries those calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    ///
    /// const BACKOFF: PeriodicBackoff = PeriodicBackoff::new(3, Duration::from_secs(1));
    /// assert!(RetryStrategy::new(BACKOFF).codes([-32005]).can_retry());
    /// assert!(!RetryStrategy::new(BACKOFF).can_retry()); // nothing to retry on
    /// assert!(!RetryStrategy::none().codes([-32005]).can_retry()); // no backoff
    /// // A backoff without delays counts: its calls end "attempts exhausted".
    /// let no_delays = RetryStrategy::new(PeriodicBackoff::new(0, Duration::ZERO));
    /// assert!(no_delays.codes([-32005]).can_retry());
    /// ```
    pub fn can_retry(&self) -> bool {
        let i = &self.inner;
        i.backoff.is_some()
            && !(i.codes.is_empty()
                && i.response_predicates.is_empty()
                && i.result_predicates.is_empty()
                && i.matchers.is_empty())
    }

    /// Warns (a `tracing` event at `WARN`) when a layer is given a strategy that waits
    /// for delays yet retries nothing, and has no strategy for a method that might: a
    /// backoff retries nothing by itself (pjrpc's retries every exception by default),
    /// so its rules were most likely forgotten.
    pub(crate) fn warn_if_it_retries_nothing(&self) {
        #[cfg(feature = "tracing")]
        if self.inner.backoff.is_some() && !self.can_retry() && self.inner.methods.is_empty() {
            tracing::warn!(
                "retry strategy has a backoff but nothing to retry on, so it retries \
                 nothing: add codes, error classes or rules (RetryStrategy::codes, \
                 retry_on, retry_if, ...)"
            );
        }
    }

    /// Whether a rule of this strategy, or of a strategy it has for a method, reads
    /// results ([`retry_result_if`](Self::retry_result_if)).
    pub(crate) fn reads_results(&self) -> bool {
        let i = &self.inner;
        !i.result_predicates.is_empty() || i.methods.iter().any(|(_, s)| s.reads_results())
    }

    /// Whether calls of `method` are held back from a re-send: marked
    /// [`non_idempotent`](Self::non_idempotent) here, or by the strategy this one has
    /// for the method ([`for_method`](Self::for_method)), or given one that never
    /// retries (or has no delays to wait).
    pub(crate) fn is_non_idempotent(&self, method: &str) -> bool {
        self.lists_non_idempotent(method)
            || self.method_strategy(method).is_some_and(|s| {
                s.lists_non_idempotent(method) || !s.can_retry() || s.inner.no_delays
            })
    }

    /// Marks `method` as the default's mark, lent (see [`Lent`]).
    fn lend_mark(self, method: &str) -> Self {
        self.non_idempotent([method]).edit(|i| i.lent.mark = true)
    }

    /// Whether this strategy marks `method` [`non_idempotent`](Self::non_idempotent).
    fn lists_non_idempotent(&self, method: &str) -> bool {
        self.inner.non_idempotent.iter().any(|m| &**m == method)
    }

    /// The preset for transient HTTP failures.
    ///
    /// | setting | value | why |
    /// |---|---|---|
    /// | backoff | exponential, 3 retries (4 attempts in all), 100 ms × 2ⁱ, ±20 % jitter, at most 2 s | gRPC's jitter; one retry more than the AWS SDKs' standard mode (3 attempts, the first included), as a JSON-RPC call is cheap to repeat |
    /// | errors | [`Connect`](ErrorClass::Connect), [`Timeout`](ErrorClass::Timeout), [`Reset`](ErrorClass::Reset) | the connection failed, not the call |
    /// | statuses | 429, 502, 503, 504 | rate limited or a proxy could not reach the server |
    /// | codes | none | a JSON-RPC error is the server's answer |
    ///
    /// Neither 500 nor 408 is retried: a 500 is the server's own failure, which a JSON-RPC
    /// server reports as an error object when the call can be tried again, and a 408 says
    /// the server gave up waiting for the request. reqwest-retry retries both; add them with
    /// [`retry_on`](Self::retry_on)`(ErrorClass::Status(..))` to do the same, or every
    /// 5xx with [`retry_status_if`](Self::retry_status_if)`(|s| s.is_server_error())`.
    ///
    /// # Examples
    ///
    /// ```
    /// let strategy = tower_jsonrpc_retry::RetryStrategy::transient();
    /// assert!(strategy.can_retry());
    /// ```
    #[must_use]
    pub fn transient() -> Self {
        Self::transient_with(Jitter::proportional(0.2).unwrap_or_default())
    }

    /// [`transient()`](Self::transient) with its jitter seeded: the same delays on every
    /// run, for tests that assert them (and a
    /// [`retry_after_spread`](Self::retry_after_spread) added to it draws the same
    /// spreads).
    ///
    /// The requests that share one seeded strategy (clones included) each draw their own
    /// delays. Strategies built separately with the same seed draw the same ones: build
    /// it once and clone it, not once per request, or every request waits in step.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::RetryStrategy;
    ///
    /// // Each request still draws its own delays, the same ones on every run.
    /// let strategy = RetryStrategy::transient_seeded(7);
    /// # let _ = strategy;
    /// ```
    #[must_use]
    pub fn transient_seeded(seed: u64) -> Self {
        Self::transient_with(Jitter::proportional(0.2).unwrap_or_default().seeded(seed))
            .edit(|i| i.spread_source = spread_source(seed))
    }

    fn transient_with(jitter: Jitter) -> Self {
        let backoff = ExponentialBackoff::doubling(3, Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter(jitter);
        let mut s = Self::new(backoff)
            .retry_on(ErrorClass::Connect)
            .retry_on(ErrorClass::Timeout)
            .retry_on(ErrorClass::Reset);
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::GATEWAY_TIMEOUT,
        ] {
            s = s.retry_on(ErrorClass::Status(status));
        }
        s
    }

    /// The preset for Ethereum JSON-RPC providers' rate limits.
    ///
    /// | setting | value | source |
    /// |---|---|---|
    /// | backoff | exponential, 5 retries, 1 s × 2ⁱ (1, 2, 4, 8, 16 s), full jitter | rate limits reset by the second (Alchemy's over 10 s) |
    /// | codes | 429; -32005 (EIP-1474 *limit exceeded*) unless it is a cap on the answer or the request, or a refusal of what was asked ("query returned more than", "too large", "too big", "batch size", "maxbatch", "range limit", "not supported": Infura's `eth_getLogs` result cap, Nethermind's oversized request, Nethermind's and Besu's batch limits, Besu's block range cap, jsonrpsee's refusal of batches), which fails the same way every time | Infura, Alchemy, QuickNode |
    /// | codes by message | -32016 with "rate limit", -32012 with "credits", -32007 with "request limit reached" | provider docs |
    /// | messages | "rate limit", "rate exceeded", "too many requests", "daily request count exceeded", "maximum number of concurrent requests", "header not found" | providers behind load balancers |
    /// | never | a revert or a failed execution, whatever its reason says and whatever status it came with ([`never_retry_response_if`](Self::never_retry_response_if), so a rule you add cannot retry it either): code 3 or a message starting "execution reverted" (geth, Erigon, Besu, anvil), "VM Exception while processing transaction" (Hardhat, Ganache), code -32015 (Nethermind's VM error) | the chain's answer |
    /// | wait hints | besides `Retry-After` and Infura's `backoff_seconds` (every strategy reads those), a wait in the message: "try again in 4ms", "try again in 1.5s" ([`retry_after_from`](Self::retry_after_from)) | providers' rate-limit messages |
    /// | statuses | 429, 503 (not 502 or 504: add them with [`retry_on`](Self::retry_on), or use [`transient()`](Self::transient)) | HTTP rate limiting |
    /// | errors | [`Connect`](ErrorClass::Connect), [`Reset`](ErrorClass::Reset) | never a timeout: a slow `eth_call` is retried by choice only |
    /// | non-idempotent | `eth_sendRawTransaction`, `eth_sendRawTransactionConditional`, `eth_sendRawTransactionSync`, `eth_sendPrivateTransaction`, `eth_sendPrivateRawTransaction`, `eth_sendUserOperation`, `eth_sendTransaction`, `personal_sendTransaction` | a signed transaction sent twice is not applied twice (its nonce is fixed), but a send that succeeded comes back as a false error ("already known", "nonce too low"); one the node signs (`eth_sendTransaction`) may be sent twice |
    ///
    /// It waits at least as long as the provider asks, up to the
    /// [ceiling](Self::retry_after_ceiling): a `Retry-After` header, Infura's
    /// `backoff_seconds` in the error's `data` (as every strategy does), or a wait in the
    /// message's prose (the preset's own rule).
    ///
    /// Unlike alloy's `RetryBackoffLayer`, it reads "credits" and "request limit reached"
    /// only under the codes the providers send them with (above): under any code they
    /// would also match refusals that fail the same way every time ("request limit
    /// exceeded for batch size"); add a rule of your own with
    /// [`retry_response_if`](Self::retry_response_if) on the preset to widen them. Nor
    /// does it retry, as alloy does, the codes 1008 and -32055 (add
    /// them with [`codes`](Self::codes)), a status other than 429 and 503 for carrying a
    /// `Retry-After` (add statuses with [`retry_status_if`](Self::retry_status_if)), or a
    /// rate-limited transaction send (its methods are non-idempotent above: unmark one
    /// with [`idempotent`](Self::idempotent) to retry it). Where alloy spaces retries by
    /// compute units per second (a longer wait when many requests are queued), a
    /// [`budget`](Self::budget) here refuses retries beyond a share of the calls.
    ///
    /// # Examples
    ///
    /// ```
    /// let strategy = tower_jsonrpc_retry::RetryStrategy::ethereum_rate_limits();
    /// assert!(strategy.can_retry());
    /// ```
    #[must_use]
    pub fn ethereum_rate_limits() -> Self {
        Self::ethereum_rate_limits_with(Jitter::full())
    }

    /// [`ethereum_rate_limits()`](Self::ethereum_rate_limits) with its jitter seeded: the
    /// same delays on every run, for tests that assert them (a
    /// [`retry_after_spread`](Self::retry_after_spread) added to it too). As with
    /// [`transient_seeded`](Self::transient_seeded), build it once and clone it: strategies
    /// built separately with one seed draw the same delays.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// # use std::sync::mpsc;
    /// # use serde_json::json;
    /// # use tower::{Layer, ServiceExt};
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Request, Response};
    /// # use tower_jsonrpc_retry::{BoxError, JsonRpcRetryLayer};
    /// # async fn delays(strategy: RetryStrategy) -> Result<Vec<Duration>, BoxError> {
    /// #     let (tx, rx) = mpsc::channel();
    /// #     let strategy = strategy.on_retry(move |e| {
    /// #         let _ = tx.send(e.delay());
    /// #     });
    /// #     let inner = tower::service_fn(|_: Request| async {
    /// #         let limited = ErrorObject::new(429, "rate limited");
    /// #         Ok::<_, BoxError>(Response::failure(1, limited))
    /// #     });
    /// #     let svc = JsonRpcRetryLayer::new(strategy).layer(inner);
    /// #     let call = Request::new("eth_blockNumber", json!([])).with_id(1);
    /// #     svc.oneshot(call).await?;
    /// #     Ok(rx.try_iter().collect())
    /// # }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), BoxError> {
    /// // `delays` sends a call that is rate limited every time, and returns its delays.
    /// let first = delays(RetryStrategy::ethereum_rate_limits_seeded(7)).await?;
    /// let again = delays(RetryStrategy::ethereum_rate_limits_seeded(7)).await?;
    /// let other = delays(RetryStrategy::ethereum_rate_limits_seeded(8)).await?;
    /// assert_eq!(first, again);
    /// assert_ne!(first, other);
    /// // Full jitter: each of the 5 delays is drawn from 0 to 1, 2, 4, 8, 16 s.
    /// let caps = [1, 2, 4, 8, 16].map(Duration::from_secs);
    /// assert_eq!(first.len(), 5);
    /// assert!(first.iter().zip(caps).all(|(delay, cap)| *delay <= cap));
    /// assert!(first.iter().zip(caps).any(|(delay, cap)| *delay < cap));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn ethereum_rate_limits_seeded(seed: u64) -> Self {
        Self::ethereum_rate_limits_with(Jitter::full().seeded(seed))
            .edit(|i| i.spread_source = spread_source(seed))
    }

    fn ethereum_rate_limits_with(jitter: Jitter) -> Self {
        let backoff = ExponentialBackoff::doubling(5, Duration::from_secs(1)).with_jitter(jitter);
        let mut s = Self::new(backoff)
            .codes([429])
            .retry_response_if(is_provider_rate_limit)
            .never_retry_response_if(is_chain_answer)
            .retry_after_from(try_again_in)
            .retry_on(ErrorClass::Connect)
            .retry_on(ErrorClass::Reset)
            .non_idempotent([
                "eth_sendRawTransaction",
                "eth_sendRawTransactionConditional",
                "eth_sendRawTransactionSync",
                "eth_sendPrivateTransaction",
                "eth_sendPrivateRawTransaction",
                "eth_sendUserOperation",
                "eth_sendTransaction",
                "personal_sendTransaction",
            ]);
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            s = s.retry_on(ErrorClass::Status(status));
        }
        s
    }
}

/// A revert or a failed execution: the chain's answer, whatever words its reason uses
/// and whatever status it came with.
fn is_chain_answer(err: &ErrorObject) -> bool {
    let message = err.message().to_ascii_lowercase();
    matches!(err.code(), 3 | -32015)
        || message.starts_with("execution reverted")
        || message.contains("vm exception while processing transaction")
}

/// A wait in a rate-limit message's prose: "try again in 4ms", "try again in 1.5s"
/// (a decimal number of milliseconds or seconds, the unit written short or in full,
/// right after the number or a space later, whatever follows it).
fn try_again_in(err: &ErrorObject) -> Option<Duration> {
    let message = err.message().to_ascii_lowercase();
    let (_, after) = message.split_once("try again in ")?;
    let number_len = after
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(after.len());
    let (number, rest) = after.split_at(number_len);
    let number: f64 = number.parse().ok()?;
    let unit = rest
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    let secs = match unit {
        "ms" | "millisecond" | "milliseconds" => number / 1000.0,
        "s" | "sec" | "secs" | "second" | "seconds" => number,
        _ => return None,
    };
    // A number too large for a `Duration` is the longest wait: the ceiling holds it.
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The message-qualified rate-limit answers of Ethereum providers (a revert is vetoed
/// before this is asked: [`is_chain_answer`]).
fn is_provider_rate_limit(err: &ErrorObject) -> bool {
    let message = err.message().to_ascii_lowercase();
    let qualified = match err.code() {
        // Not Infura's `eth_getLogs` result cap, an oversized request or answer
        // (Nethermind's "too large"; "too big", as jsonrpsee words it under codes of its
        // own), a batch over the node's limit (Nethermind's "Batch size limit exceeded"
        // and "MaxBatchResponseBodySize", Besu's "exceeds max batch size"), Besu's block
        // range cap ("exceeds maximum RPC range limit") or jsonrpsee's refusal of
        // batches (reth's and Substrate's server: "Batched requests are not supported by
        // this server") under the same code: they fail the same way every time.
        -32005 => {
            !(message.contains("query returned more than")
                || message.contains("too large")
                || message.contains("too big")
                || message.contains("batch size")
                || message.contains("maxbatch")
                || message.contains("range limit")
                || message.contains("not supported"))
        }
        -32016 => message.contains("rate limit"),
        -32012 => message.contains("credits"),
        -32007 => message.contains("request limit reached"),
        _ => false,
    };
    qualified
        || [
            "rate limit",
            "rate exceeded",
            "too many requests",
            "daily request count exceeded",
            "maximum number of concurrent requests",
            "header not found",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// A budget behind the caller's `Arc`, whatever its type (a `dyn Budget` included).
struct Shared<B: ?Sized>(Arc<B>);

impl<B: Budget + ?Sized> Budget for Shared<B> {
    fn deposit(&self) {
        self.0.deposit();
    }

    fn withdraw(&self) -> bool {
        self.0.withdraw()
    }
}

impl Default for RetryStrategy {
    /// [`RetryStrategy::transient()`].
    fn default() -> Self {
        Self::transient()
    }
}

/// The strategies of methods, to change.
fn methods(methods: &mut [(Arc<str>, RetryStrategy)]) -> impl Iterator<Item = &mut RetryStrategy> {
    methods.iter_mut().map(|(_, strategy)| strategy)
}

/// The strategies of methods, shown as a map from method to strategy.
struct MethodStrategies<'a>(&'a [(Arc<str>, RetryStrategy)]);

impl fmt::Debug for MethodStrategies<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(m, s)| (m, s)))
            .finish()
    }
}

/// What a seeded strategy's spread seed is salted with: "spread" in ASCII.
const SPREAD_SALT: u64 = 0x7370_7265_6164;

/// The source of a seeded strategy's spreads: its seed, salted, so that the `n`-th spread
/// does not draw the stream the `n`-th request's jitter draws.
fn spread_source(seed: u64) -> RngSource {
    RngSource::seeded(seed ^ SPREAD_SALT)
}

impl fmt::Debug for RetryStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let matchers: Vec<String> = i
            .matchers
            .iter()
            .map(|m| match m {
                ErrorMatcher::Type(_, name) => (*name).to_owned(),
                ErrorMatcher::Class(c) => c.to_string(),
                ErrorMatcher::Status(_) => "status predicate".to_owned(),
                ErrorMatcher::Predicate(_) => "predicate".to_owned(),
            })
            .collect();
        f.debug_struct("RetryStrategy")
            .field("backoff", &i.backoff)
            .field("codes", &i.codes)
            .field("response_predicates", &i.response_predicates.len())
            .field("result_predicates", &i.result_predicates.len())
            .field("errors", &matchers)
            .field("max_elapsed", &i.max_elapsed)
            .field("retry_after_ceiling", &i.retry_after_ceiling)
            .field("retry_after_spread", &i.retry_after_spread)
            // The seed as given, not salted.
            .field(
                "spread_seed",
                &i.spread_source.seed().map(|s| s ^ SPREAD_SALT),
            )
            .field("hint_readers", &i.hint_readers.len())
            .field("budget", &i.budget.is_some())
            .field("non_idempotent", &i.non_idempotent)
            .field("on_retry", &i.on_retry.is_some())
            .field("on_give_up", &i.on_give_up.is_some())
            .field("methods", &MethodStrategies(&i.methods))
            .finish()
    }
}
