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
use crate::codec::Deadline;
use crate::jsonrpc::{BatchRequest, BatchResponse, Request, Response};

/// Retries JSON-RPC calls: wraps a service in tower's [`Retry`] with a
/// [`JsonRpcRetryPolicy`] whose default is this strategy (see [`JsonRpcRetry`]).
///
/// It serves [`Request`](crate::jsonrpc::Request) and
/// [`BatchRequest`](crate::jsonrpc::BatchRequest) over any inner service whose error
/// implements [`InspectError`](crate::InspectError) and is `Send + Sync + 'static`: the
/// [`JsonRpcCodec`](crate::codec::JsonRpcCodec) directly, or layers above it that box
/// their errors.
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
/// use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
///
/// let svc = ServiceBuilder::new()
///     .layer(JsonRpcRetryLayer::new(RetryStrategy::transient()))
///     .layer(JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?))
///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)))
///     .service(
///         hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
///             .build_http::<http_body_util::Full<bytes::Bytes>>(),
///     );
/// # let _ = svc;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct JsonRpcRetryLayer {
    strategy: RetryStrategy,
}

impl JsonRpcRetryLayer {
    /// A layer whose requests follow `strategy` unless they carry their own.
    #[must_use]
    pub fn new(strategy: RetryStrategy) -> Self {
        Self { strategy }
    }

    /// The same retries at the HTTP level, over any `Service<http::Request<B>>`: for
    /// stacks that only take HTTP layers, such as jsonrpsee's HTTP client. See
    /// [`HttpRetryLayer`].
    #[must_use]
    pub fn http<B>(strategy: RetryStrategy) -> HttpRetryLayer<B> {
        HttpRetryLayer::new(strategy)
    }

    /// The default strategy.
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

/// The service of [`JsonRpcRetryLayer`]: tower's [`Retry`] with a [`JsonRpcRetryPolicy`],
/// which first gives each call with a deadline
/// ([`max_elapsed`](RetryStrategy::max_elapsed)) that deadline, so that over the
/// [codec](crate::codec::JsonRpcCodec) the first attempt ends at it too, as the retries
/// do. (tower hands its policy only a shared reference to the request that goes first.)
///
/// tower's `Retry` waits for the inner service's readiness before each retry, without
/// a bound, and returns a readiness error as it is, without asking its policy. Here the
/// inner service is wrapped so that readiness is part of the attempt: a readiness error
/// is returned by that attempt, for the policy to decide on (a partly retried batch
/// keeps the answers it gathered), and a retry still waiting at the call's deadline
/// fails then (with [`InspectError::deadline_passed`](crate::InspectError::deadline_passed)).
///
/// Its response future, [`ResponseFuture`](super::future::ResponseFuture), is tower's own
/// `Retry` future.
#[derive(Clone, Debug)]
pub struct JsonRpcRetry<S> {
    retry: Retry<JsonRpcRetryPolicy, Attempts<S>>,
    /// The default strategy's deadline, kept apart so that a call need not look into
    /// the strategy.
    max_elapsed: Option<Duration>,
}

impl<S> JsonRpcRetry<S> {
    /// Retries calls to `inner` with `strategy` unless they carry their own.
    pub fn new(strategy: RetryStrategy, inner: S) -> Self {
        Self {
            max_elapsed: strategy.inner.max_elapsed,
            retry: Retry::new(JsonRpcRetryPolicy::new(strategy), Attempts::new(inner)),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        self.retry.get_ref().get_ref()
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        self.retry.get_mut().get_mut()
    }

    /// The inner service, taken out.
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
        self.retry.get_mut().deadline = deadline.map(|d| d.0);
        let future = self.retry.call(req);
        self.retry.get_mut().deadline = None;
        future
    }

    /// Marks a call whose strategy (its own, or the default) has a deadline with it;
    /// an earlier deadline already there (a retry layer further out) stays. Returns the
    /// deadline the call has, if any.
    pub(crate) fn stamp(&self, extensions: &mut http::Extensions) -> Option<Deadline> {
        Deadline::drop_stale(extensions);
        let limit = match extensions.get::<RetryStrategy>() {
            Some(own) => own.inner.max_elapsed,
            None => self.max_elapsed,
        };
        match limit {
            Some(limit) => Some(Deadline::set(extensions, limit)),
            None => extensions.get::<Deadline>().copied(),
        }
    }
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
        let deadline = self.stamp(request.extensions_mut());
        ResponseFuture {
            inner: self.call_with_deadline(request, deadline.as_ref()),
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
        let deadline = self.stamp(batch.extensions_mut());
        ResponseFuture {
            inner: self.call_with_deadline(batch, deadline.as_ref()),
        }
    }
}
