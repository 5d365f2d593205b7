use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::retry::Retry;
use tower_layer::Layer;
use tower_service::Service;

use super::attempts::Attempts;
use super::future::ResponseFuture;
use super::http::HttpRetryLayer;
use super::inspect::InspectError;
use super::policy::JsonRpcRetryPolicy;
use super::strategy::RetryStrategy;
use crate::codec::{Deadline, DeadlineVoucher};
use crate::fused::Fused;
use crate::jsonrpc::{BatchRequest, BatchResponse, Request, Response};

/// Retries JSON-RPC calls: wraps a service in tower's [`Retry`] with a
/// [`JsonRpcRetryPolicy`] whose default is this strategy (see [`JsonRpcRetry`]).
///
/// It serves [`Request`](crate::jsonrpc::Request) and
/// [`BatchRequest`](crate::jsonrpc::BatchRequest) over any inner service that is `Clone`
/// (tower's `Retry` sends each attempt through a clone; wrap one that is not in tower's
/// `Buffer`) and whose error implements [`InspectError`](crate::InspectError) and is
/// `Send + Sync + 'static`: the [`JsonRpcCodec`](crate::codec::JsonRpcCodec) directly,
/// or layers above it that box their errors.
///
/// Waits run on tokio's clock, so the calls need a tokio runtime with its time driver
/// (`#[tokio::main]` and `#[tokio::test]` have one; a runtime from
/// `tokio::runtime::Builder` needs `enable_time()` or `enable_all()`). Without it, the
/// first wait, before a retry or at a [`max_elapsed`](RetryStrategy::max_elapsed)
/// deadline, panics, as any tokio timer does; so does the
/// [HTTP-level layer](Self::http), and the [codec](crate::codec::JsonRpcCodec) with an
/// attempt timeout, or on a notification whose 2xx answer has a body to drain (it waits
/// 100 ms at most for it).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use serde_json::json;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
/// use tower_jsonrpc_retry::jsonrpc::Request;
/// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let svc = ServiceBuilder::new()
///     .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
///     .layer(
///         JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?)
///             .attempt_timeout(Duration::from_secs(2)),
///     )
///     .service(
///         hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
///             .build_http(),
///     );
/// let answer = svc
///     .oneshot(Request::new("eth_blockNumber", json!([])).with_id(1))
///     .await?;
/// println!("{:?}", answer.result());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct JsonRpcRetryLayer {
    strategy: RetryStrategy,
}

impl JsonRpcRetryLayer {
    /// A layer whose requests follow `strategy` unless they carry their own.
    ///
    /// A strategy that waits for delays yet retries nothing (no codes, error classes or
    /// rules, and no strategies for methods) is most likely one whose rules were
    /// forgotten: with the `tracing` feature, the layer warns of it when made.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    ///
    /// let layer = JsonRpcRetryLayer::new(RetryStrategy::ethereum_rate_limits());
    /// assert!(layer.strategy().can_retry());
    /// ```
    #[must_use]
    pub fn new(strategy: RetryStrategy) -> Self {
        strategy.warn_if_it_retries_nothing();
        Self { strategy }
    }

    /// The same retries at the HTTP level, over any `Service<http::Request<B>>`: for
    /// stacks that only take HTTP layers, such as jsonrpsee's HTTP client. See
    /// [`HttpRetryLayer`]; inside jsonrpsee, give it jsonrpsee's error type with
    /// [`map_err`](HttpRetryLayer::map_err).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower::ServiceBuilder;
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    ///
    /// // Over hyper-util's client as one HTTP layer among others (inside jsonrpsee: see
    /// // the crate docs). `B`, the request body, is what the service below takes.
    /// let svc = ServiceBuilder::new()
    ///     .layer(
    ///         JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient())
    ///             .attempt_timeout(Duration::from_secs(2)),
    ///     )
    ///     .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    /// # let _ = svc;
    /// ```
    #[must_use]
    pub fn http<B>(strategy: RetryStrategy) -> HttpRetryLayer<B> {
        HttpRetryLayer::new(strategy)
    }

    /// The default strategy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    ///
    /// assert!(JsonRpcRetryLayer::default().strategy().can_retry()); // `transient()`
    /// let layer = JsonRpcRetryLayer::new(RetryStrategy::none());
    /// assert!(!layer.strategy().can_retry());
    /// ```
    pub fn strategy(&self) -> &RetryStrategy {
        &self.strategy
    }
}

impl Default for JsonRpcRetryLayer {
    /// A layer with [`RetryStrategy::default()`], the [`transient()`](RetryStrategy::transient) preset.
    fn default() -> Self {
        Self::new(RetryStrategy::default())
    }
}

impl<S> Layer<S> for JsonRpcRetryLayer {
    type Service = JsonRpcRetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonRpcRetry::new(self.strategy.clone(), inner)
    }
}

/// The service of [`JsonRpcRetryLayer`]: tower's [`Retry`] with a [`JsonRpcRetryPolicy`].
///
/// Before handing a call to tower's `Retry`, it puts the call's deadline
/// ([`max_elapsed`](RetryStrategy::max_elapsed)) in the request's extensions, so that
/// over the [codec](crate::codec::JsonRpcCodec) the first attempt ends at it, as the
/// retries do. (tower's policy sees only a shared reference to the first request, so it
/// cannot do this itself.)
///
/// tower's `Retry` waits for the inner service's readiness before each retry, without
/// a bound, and returns a readiness error as it is, without asking its policy. Here the
/// inner service is wrapped so that readiness is part of the attempt: a readiness error
/// is returned by that attempt, for the policy to decide on (a partly retried batch
/// keeps the answers it gathered), and a retry still waiting at the call's deadline
/// fails then (with [`InspectError::deadline_error`](crate::InspectError::deadline_error)).
/// An attempt handed to the inner service and still unanswered a millisecond after the
/// deadline is dropped, and fails with
/// [`InspectError::deadline_cut_error`](crate::InspectError::deadline_cut_error): so the
/// call ends at its deadline whatever is below (over the codec, which cuts its own
/// exchange at the deadline, this is only a backstop).
///
/// Its response future, [`ResponseFuture`](super::future::ResponseFuture), is tower's own
/// `Retry` future, which stays pending if polled again after its output, as the crate's
/// other futures do (tower's would poll the last attempt's future again).
///
/// It serves both [`Request`] and [`BatchRequest`], as the
/// [codec](crate::codec::JsonRpcCodec) does.
///
/// # Examples
///
/// Where the call does not name the request type (`ready()` before `call`, or a
/// `Buffer` or `BoxCloneService` made from the stack), name it:
///
/// ```
/// use tower::{Layer, Service, ServiceExt};
/// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
/// use tower_jsonrpc_retry::jsonrpc::Request;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// server.script("sum", [Step::status(503)]);
/// let client = hyper_util::client::legacy::Client::builder(
///     hyper_util::rt::TokioExecutor::new(),
/// )
/// .build_http();
/// let mut svc = JsonRpcRetryLayer::new(RetryStrategy::transient())
///     .layer(JsonRpcCodecLayer::new(server.uri()).layer(client));
///
/// // `svc.ready()` alone would not say which of its two `Service` impls to use.
/// let ready = ServiceExt::<Request>::ready(&mut svc).await?;
/// let resp = ready.call(Request::new("sum", serde_json::json!([1, 2])).with_id(1)).await?;
/// assert_eq!(resp.result(), Some(&serde_json::json!(3)));
/// assert_eq!(server.calls("sum"), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JsonRpcRetry<S> {
    retry: Retry<JsonRpcRetryPolicy, Attempts<S>>,
    /// The default strategy's deadline, kept apart so that a call need not look into
    /// the strategy.
    max_elapsed: Option<Duration>,
    /// The default strategy, when it has strategies for methods (whose deadlines a
    /// call of theirs takes); `None` otherwise, so that cloning the service copies no
    /// `Arc` for it.
    by_method: Option<RetryStrategy>,
}

impl<S: fmt::Debug> fmt::Debug for JsonRpcRetry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `by_method` is the policy's default again: shown once, there.
        f.debug_struct("JsonRpcRetry")
            .field("retry", &self.retry)
            .field("max_elapsed", &self.max_elapsed)
            .finish_non_exhaustive()
    }
}

/// Clears what [`JsonRpcRetry::call_with_deadline`] set for one call when dropped, also
/// on an unwind.
struct ClearAfter<'a, S>(&'a mut Retry<JsonRpcRetryPolicy, Attempts<S>>);

impl<S> Drop for ClearAfter<'_, S> {
    fn drop(&mut self) {
        let attempts = self.0.get_mut();
        attempts.deadline = None;
        attempts.sent = false;
    }
}

impl<S> JsonRpcRetry<S> {
    /// Retries calls to `inner` with `strategy` unless they carry their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower::ServiceExt;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    /// use tower_jsonrpc_retry::{JsonRpcRetry, RetryStrategy};
    /// # use std::io;
    /// # use std::sync::{Arc, Mutex};
    /// # use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// # let script = Arc::new(Mutex::new(vec![Err(refused)]));
    /// # let node = tower::service_fn(move |_: Request| {
    /// #     let next = script.lock().unwrap().pop();
    /// #     async move { next.unwrap_or(Ok(Response::success(1, json!("0x1")))) }
    /// # });
    /// // `node` refuses the first connection, then answers.
    /// let svc = JsonRpcRetry::new(RetryStrategy::transient(), node);
    /// let answer = svc.oneshot(Request::new("eth_chainId", json!([])).with_id(1)).await?;
    /// assert_eq!(answer.result(), Some(&json!("0x1")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(strategy: RetryStrategy, inner: S) -> Self {
        Self {
            max_elapsed: strategy.inner.max_elapsed,
            by_method: strategy.has_method_strategies().then(|| strategy.clone()),
            retry: Retry::new(JsonRpcRetryPolicy::new(strategy), Attempts::new(inner)),
        }
    }

    /// The inner service.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    /// use tower_jsonrpc_retry::{JsonRpcRetry, RetryStrategy};
    /// # use tower_jsonrpc_retry::http;
    /// # type Body = http_body_util::Full<bytes::Bytes>;
    /// # let http = tower::service_fn(|_: http::Request<Body>| async {
    /// #     let empty = http_body_util::Empty::<bytes::Bytes>::new();
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(empty))
    /// # });
    ///
    /// let codec = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?).layer(http);
    /// let svc = JsonRpcRetry::new(RetryStrategy::transient(), codec);
    /// assert_eq!(svc.get_ref().uri(), "http://127.0.0.1:8545/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        self.retry.get_ref().get_ref()
    }

    /// The inner service, mutably.
    ///
    /// # Examples
    ///
    /// One attempt straight to the inner service, past the retries:
    ///
    /// ```
    /// use serde_json::json;
    /// use tower::{Service, ServiceExt};
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    /// use tower_jsonrpc_retry::{GaveUp, JsonRpcRetry, RetryStrategy};
    /// # use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let busy = tower::service_fn(|_: Request| async {
    /// #     let busy = ErrorObject::new(-32005, "limit exceeded");
    /// #     Ok::<_, tower_jsonrpc_retry::BoxError>(Response::failure(1, busy))
    /// # });
    /// // `busy` answers -32005 every time.
    /// let mut svc = JsonRpcRetry::new(RetryStrategy::transient().codes([-32005]), busy);
    /// let call = Request::new("eth_call", json!([])).with_id(1);
    /// let answer = svc.get_mut().ready().await?.call(call).await?;
    /// assert_eq!(answer.error().map(|e| e.code()), Some(-32005));
    /// assert!(answer.extensions().get::<GaveUp>().is_none(), "no retries, no record");
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        self.retry.get_mut().get_mut()
    }

    /// The inner service, taken out.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::Layer;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    /// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
    /// # use tower_jsonrpc_retry::http;
    /// # type Body = http_body_util::Full<bytes::Bytes>;
    /// # let http = tower::service_fn(|_: http::Request<Body>| async {
    /// #     let empty = http_body_util::Empty::<bytes::Bytes>::new();
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(empty))
    /// # });
    ///
    /// let svc = JsonRpcRetryLayer::new(RetryStrategy::transient())
    ///     .layer(JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?).layer(http));
    /// let codec = svc.into_inner(); // the stack below the retries
    /// assert_eq!(codec.uri(), "http://127.0.0.1:8545/");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.retry.into_inner().into_inner()
    }

    /// Calls tower's `Retry` with the call's deadline on the service it clones into the
    /// call's future, so that the retries' readiness waits end at it too.
    fn call_with_deadline<R>(
        &mut self,
        req: R,
        deadline: Option<&Deadline>,
    ) -> <Retry<JsonRpcRetryPolicy, Attempts<S>> as Service<R>>::Future
    where
        Retry<JsonRpcRetryPolicy, Attempts<S>>: Service<R>,
    {
        // Cleared after the call however it ends: a panic below, caught by the caller,
        // would leave the deadline on the shared service, to end the next call's
        // readiness wait, and that call, at a deadline not its own.
        let call = ClearAfter(&mut self.retry);
        let attempts = call.0.get_mut();
        attempts.deadline = deadline.map(|d| d.0);
        attempts.sent = false;
        call.0.call(req)
    }

    /// The deadline of the strategy that governs a call (`RetryStrategy::for_request`):
    /// its own, else, for a single call of `method`, its method's, else the default's
    /// (a batch, or at the HTTP level a call whose body has not been read).
    pub(crate) fn limit(
        &self,
        extensions: &http::Extensions,
        method: Option<&str>,
    ) -> Option<Duration> {
        match (extensions.get::<RetryStrategy>(), &self.by_method) {
            (Some(own), _) => own.inner.max_elapsed,
            (None, None) => self.max_elapsed,
            (None, Some(default)) => {
                RetryStrategy::for_request(extensions, method, default)
                    .inner
                    .max_elapsed
            }
        }
    }

    /// Marks a call with the deadline `limit` from now (its strategy's, see
    /// [`limit`](Self::limit)); an earlier deadline already there (a retry layer further
    /// out) stays. Returns the deadline the call has, if any, vouched for
    /// ([`DeadlineVoucher`]) until it goes below this layer, so that the policy's copy
    /// for retries keeps it even if it has passed by the time the copy is made; and the
    /// one it had from further out, if any.
    pub(crate) fn stamp(
        &self,
        extensions: &mut http::Extensions,
        limit: Option<Duration>,
    ) -> Stamped {
        Deadline::drop_stale(extensions);
        let outer = extensions.get::<Deadline>().copied();
        let deadline = match limit {
            Some(limit) => Some(Deadline::set(extensions, limit)),
            None => outer,
        };
        if deadline.is_some() {
            extensions.insert(DeadlineVoucher);
        }
        Stamped { deadline, outer }
    }

    /// At the HTTP level, once the call is known to be a single call of `method`, called
    /// at `called` and stamped ([`stamp`](Self::stamp)) with the default's deadline
    /// before its body was read: its method's deadline instead, counted from the call,
    /// or none; a deadline from further out (`outer`) still stands when earlier.
    pub(crate) fn restamp(
        &self,
        extensions: &mut http::Extensions,
        method: &str,
        called: tokio::time::Instant,
        outer: Option<Deadline>,
    ) {
        if self.by_method.is_none() || extensions.get::<RetryStrategy>().is_some() {
            // The strategy that governs the call is the one it was stamped for.
            return;
        }
        let own = self
            .limit(extensions, Some(method))
            .map(|limit| Deadline::after(called, limit));
        let deadline = match (outer, own) {
            (Some(outer), Some(own)) => Some(if outer.0 <= own.0 { outer } else { own }),
            (outer, own) => outer.or(own),
        };
        match deadline {
            Some(deadline) => {
                extensions.insert(deadline);
                extensions.insert(DeadlineVoucher);
            }
            None => {
                extensions.remove::<Deadline>();
                extensions.remove::<DeadlineVoucher>();
            }
        }
    }
}

/// What [`JsonRpcRetry::stamp`] gave a call: its deadline, and the one it had from a
/// layer further out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamped {
    pub(crate) deadline: Option<Deadline>,
    pub(crate) outer: Option<Deadline>,
}

impl<S> Service<Request> for JsonRpcRetry<S>
where
    S: Service<Request, Response = Response> + Clone,
    S::Error: InspectError + Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request>::poll_ready(&mut self.retry, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let limit = self.limit(request.extensions(), Some(request.method()));
        let deadline = self.stamp(request.extensions_mut(), limit).deadline;
        ResponseFuture {
            inner: Fused::new(self.call_with_deadline(request, deadline.as_ref())),
        }
    }
}

impl<S> Service<BatchRequest> for JsonRpcRetry<S>
where
    S: Service<BatchRequest, Response = BatchResponse> + Clone,
    S::Error: InspectError + Send + Sync + 'static,
{
    type Response = BatchResponse;
    type Error = S::Error;
    type Future = ResponseFuture<S, BatchRequest>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<BatchRequest>::poll_ready(&mut self.retry, cx)
    }

    fn call(&mut self, mut batch: BatchRequest) -> Self::Future {
        let limit = self.limit(batch.extensions(), None);
        let deadline = self.stamp(batch.extensions_mut(), limit).deadline;
        ResponseFuture {
            inner: Fused::new(self.call_with_deadline(batch, deadline.as_ref())),
        }
    }
}

#[cfg(test)]
mod deadline_voucher {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::json;
    use tower::{Layer, ServiceExt};

    use crate::backoff::PeriodicBackoff;
    use crate::codec::{Deadline, DeadlineVoucher};
    use crate::jsonrpc::{BatchRequest, BatchResponse, Request, Response};
    use crate::{BoxError, JsonRpcRetryLayer, RetryStrategy};

    fn strategy() -> RetryStrategy {
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10)))
            .max_elapsed(Duration::from_secs(1))
    }

    /// Whether each request that reached the inner service had a deadline, and a
    /// voucher for it.
    type Seen = Arc<Mutex<Vec<(bool, bool)>>>;

    fn look(seen: &Seen, extensions: &http::Extensions) {
        let deadline = extensions.get::<Deadline>().is_some();
        let vouched = extensions.get::<DeadlineVoucher>().is_some();
        seen.lock().unwrap().push((deadline, vouched));
    }

    #[tokio::test(start_paused = true)]
    async fn a_past_deadline_is_kept_only_when_vouched_for() {
        let mut extensions = http::Extensions::new();
        Deadline::set(&mut extensions, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        let mut vouched = extensions.clone();
        vouched.insert(DeadlineVoucher);
        Deadline::drop_stale(&mut vouched);
        assert!(vouched.get::<Deadline>().is_some(), "this call's, reached");
        assert!(
            vouched.get::<DeadlineVoucher>().is_none(),
            "a voucher serves one look"
        );
        Deadline::drop_stale(&mut extensions);
        assert!(extensions.get::<Deadline>().is_none(), "an earlier call's");
    }

    /// What a layer below keeps (and may send again long after) carries the deadline
    /// but no voucher for it, single calls and batches alike.
    #[tokio::test(start_paused = true)]
    async fn no_voucher_goes_below_the_layer() {
        let seen = Seen::default();
        let layer = JsonRpcRetryLayer::new(strategy());

        let log = Arc::clone(&seen);
        let single = layer.layer(tower::service_fn(move |req: Request| {
            look(&log, req.extensions());
            async { Ok::<_, BoxError>(Response::success(1, json!(3))) }
        }));
        let req = Request::new("sum", json!([1, 2])).with_id(1);
        single.oneshot(req).await.unwrap();

        let log = Arc::clone(&seen);
        let batch = layer.layer(tower::service_fn(move |req: BatchRequest| {
            look(&log, req.extensions());
            async { Ok::<_, BoxError>(BatchResponse::new(vec![Response::success(1, json!(3))])) }
        }));
        let req = BatchRequest::new(vec![Request::new("sum", json!([1, 2])).with_id(1)]);
        batch.oneshot(req).await.unwrap();

        assert_eq!(*seen.lock().unwrap(), [(true, false), (true, false)]);
    }

    /// The policy's copy for retries keeps the deadline the layer vouched for, even if
    /// it passed before the copy was made: the call gives up at its deadline instead of
    /// retrying under a fresh one.
    #[tokio::test(start_paused = true)]
    async fn the_copy_for_retries_keeps_a_vouched_deadline_reached() {
        let calls = Arc::new(Mutex::new(0));
        let count = Arc::clone(&calls);
        let svc = JsonRpcRetryLayer::new(strategy().codes([2001])).layer(tower::service_fn(
            move |req: Request| {
                *count.lock().unwrap() += 1;
                let id = req.id().cloned().unwrap_or(crate::jsonrpc::Id::Null);
                let busy = crate::jsonrpc::ErrorObject::new(2001, "busy");
                async move { Ok::<_, BoxError>(Response::failure(id, busy)) }
            },
        ));
        let mut req = Request::new("sum", json!([1, 2])).with_id(1);
        Deadline::set(req.extensions_mut(), Duration::from_secs(1));
        req.extensions_mut().insert(DeadlineVoucher);
        tokio::time::advance(Duration::from_secs(2)).await;
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(2001));
        assert_eq!(*calls.lock().unwrap(), 1, "no retry past the deadline");
    }

    /// The JSON-RPC stack under the HTTP-level layer takes the deadline the HTTP-level
    /// layer stamped as this call's, even if it passed between the two looks (here, by
    /// the time the stack is called at all), rather than starting a fresh one.
    #[tokio::test(start_paused = true)]
    async fn a_vouched_deadline_reached_is_not_replaced_by_a_fresh_one() {
        let seen: Arc<Mutex<Vec<Option<Deadline>>>> = Arc::default();
        let log = Arc::clone(&seen);
        let svc =
            JsonRpcRetryLayer::new(strategy()).layer(tower::service_fn(move |req: Request| {
                log.lock()
                    .unwrap()
                    .push(req.extensions().get::<Deadline>().copied());
                async { Ok::<_, BoxError>(Response::success(1, json!(3))) }
            }));
        for vouched in [true, false] {
            let mut req = Request::new("sum", json!([1, 2])).with_id(1);
            let Deadline(at) = Deadline::set(req.extensions_mut(), Duration::from_secs(1));
            if vouched {
                req.extensions_mut().insert(DeadlineVoucher);
            }
            tokio::time::advance(Duration::from_secs(2)).await;
            svc.clone().oneshot(req).await.unwrap();
            let sent = seen.lock().unwrap().pop().flatten().map(|Deadline(at)| at);
            if vouched {
                assert_eq!(sent, Some(at), "the call's own deadline");
            } else {
                let fresh = tokio::time::Instant::now() + Duration::from_secs(1);
                assert_eq!(sent, Some(fresh), "an earlier call's: a fresh one");
            }
        }
    }
}
