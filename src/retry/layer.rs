use tower::retry::Retry;
use tower_layer::Layer;

use super::policy::JsonRpcRetryPolicy;
use super::strategy::RetryStrategy;

/// Retries JSON-RPC calls: wraps a service in tower's [`Retry`] with a
/// [`JsonRpcRetryPolicy`] whose default is this strategy.
///
/// It serves [`Request`](crate::jsonrpc::Request) and
/// [`BatchRequest`](crate::jsonrpc::BatchRequest) over any inner service whose error
/// implements [`InspectError`](crate::InspectError): the
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
    pub fn new(strategy: RetryStrategy) -> Self {
        Self { strategy }
    }

    /// The default strategy.
    pub fn strategy(&self) -> &RetryStrategy {
        &self.strategy
    }
}

impl<S> Layer<S> for JsonRpcRetryLayer {
    type Service = Retry<JsonRpcRetryPolicy, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(JsonRpcRetryPolicy::new(self.strategy.clone()), inner)
    }
}
