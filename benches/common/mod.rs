//! Pieces shared by the bench binaries (included with `#[path]`, not a bench itself).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::json;
use tower::retry::Policy;
use tower::{Service, service_fn};
use tower_jsonrpc_retry::RetryStrategy;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::{Request, Response};

/// Whether `BENCH_QUICK` asks for the short smoke-test run.
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The error type of the in-memory inner services (what the codec fails with).
pub type InnerError = tower_jsonrpc_retry::codec::Error;

/// tower's smallest retry policy: clone the request, never retry. The baseline that any
/// retrying layer pays at least.
#[derive(Clone, Copy, Debug)]
pub struct CloneNoRetry;

impl<Req: Clone, Res, E> Policy<Req, Res, E> for CloneNoRetry {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// tower's smallest policy that holds shared configuration, as any configurable policy
/// does: like [`CloneNoRetry`], plus an `Arc` cloned into every call's future (tower's
/// `Retry` clones the policy per call). Separates what sharing configuration costs from
/// what the JSON-RPC policy does.
#[derive(Clone, Debug, Default)]
pub struct CloneNoRetryArc(pub std::sync::Arc<u64>);

impl<Req: Clone, Res, E> Policy<Req, Res, E> for CloneNoRetryArc {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// The default strategy of the benches: three retries a second apart, on -32005.
pub fn default_strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1))).codes([-32005])
}

/// The same with zero delay, for the retry path.
pub fn zero_delay_strategy() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO)).codes([-32005])
}

/// A `sum` call with id 1.
pub fn sum_request() -> Request {
    Request::new("sum", json!([1, 2])).with_id(1)
}

/// The same call carrying its own strategy in its extensions.
pub fn sum_request_with_strategy() -> Request {
    let mut req = sum_request();
    req.extensions_mut().insert(
        RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100))).codes([-32000]),
    );
    req
}

/// An in-memory inner service answering every request with a clone of `response`.
pub fn answering(
    response: Response,
) -> impl Service<
    Request,
    Response = Response,
    Error = InnerError,
    Future = impl Future<Output = Result<Response, InnerError>>,
> + Clone {
    service_fn(move |_req: Request| {
        let response = response.clone();
        async move { Ok::<_, InnerError>(response) }
    })
}

/// Polls a future once, expecting it to be ready (in-memory services always are).
pub fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory call was not ready at once"),
    }
}

/// One call through `svc`: `poll_ready`, then `call`, polled to completion at once.
pub fn call_now<S>(svc: &mut S, req: Request) -> Result<Response, S::Error>
where
    S: Service<Request, Response = Response>,
{
    match svc.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => panic!("an in-memory service was not ready"),
    }
    now(svc.call(req))
}

/// The median of some numbers (sorted in place).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A line of `/proc/self/status` (e.g. `VmRSS`), in KiB.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The in-memory HTTP body of the HTTP-level benches.
pub type HttpBody = http_body_util::Full<bytes::Bytes>;

/// The request of the HTTP-level benches, and the answer of [`http_answering`].
pub const HTTP_REQUEST: &[u8] = br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
pub const HTTP_ANSWER: &[u8] = br#"{"jsonrpc":"2.0","result":3,"id":1}"#;

/// An in-memory HTTP service answering every request with [`HTTP_ANSWER`].
pub fn http_answering() -> impl Service<
    http::Request<HttpBody>,
    Response = http::Response<HttpBody>,
    Error = std::io::Error,
    Future = impl Future<Output = Result<http::Response<HttpBody>, std::io::Error>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(|_req: http::Request<HttpBody>| async {
        Ok(http::Response::new(HttpBody::new(
            bytes::Bytes::from_static(HTTP_ANSWER),
        )))
    })
}

/// One HTTP call of [`HTTP_REQUEST`] through `svc`, and its answer's body read, polled to
/// completion at once; the body's length.
pub fn http_call_now<S, RB>(svc: &mut S) -> usize
where
    S: Service<http::Request<HttpBody>, Response = http::Response<RB>>,
    S::Error: std::fmt::Debug,
    RB: http_body::Body,
    RB::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt;
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        svc.poll_ready(&mut cx).is_ready(),
        "in-memory services are ready"
    );
    let req = http::Request::post("http://127.0.0.1:1/")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(HttpBody::new(bytes::Bytes::from_static(HTTP_REQUEST)))
        .expect("a valid request");
    let resp = now(svc.call(req)).expect("an in-memory answer");
    let body = now(resp.into_body().collect()).expect("a full body");
    body.to_bytes().len()
}

/// An HTTP middleware that buffers the request body and the response body and does
/// nothing else: what any layer that replays requests and reads answers pays at least,
/// the floor the HTTP-level layer is compared with. `stream_err` turns a body error into
/// the inner service's error type. With `read`, it also reads both bodies with it, and
/// panics if `read` finds the call did not succeed (see [`least_reading`]).
pub struct BufferOnly<S, E> {
    pub inner: S,
    pub stream_err: fn(tower_jsonrpc_retry::BoxError) -> E,
    pub read: Option<Read>,
}

/// Reads a request's and its answer's bytes (and the answer's status); true when the
/// call succeeded.
pub type Read = fn(&[u8], http::StatusCode, &[u8]) -> bool;

/// The least a layer that decides on JSON-RPC answers must read, as a yardstick for the
/// HTTP-level layer: the request's id; the answer's version and id, and whether it holds
/// a result and no error. Nothing is built and nothing decided, and it is not a correct
/// decoder (it does not read batches, nor compare ids as JSON-RPC does): true when the
/// answer is a success to the call.
pub fn least_reading(request: &[u8], status: http::StatusCode, answer: &[u8]) -> bool {
    use serde::Deserialize;
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;
    /// Whether a member is there, whatever its value: `Option` would read a `null`
    /// result, a success, as no result.
    #[derive(Default)]
    struct Present(bool);
    impl<'de> Deserialize<'de> for Present {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            IgnoredAny::deserialize(d).map(|_| Self(true))
        }
    }
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        id: &'a RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        jsonrpc: &'a str,
        #[serde(borrow)]
        id: &'a RawValue,
        #[serde(default)]
        result: Present,
        error: Option<IgnoredAny>,
    }
    let (Ok(call), Ok(answer)) = (
        serde_json::from_slice::<Call<'_>>(request),
        serde_json::from_slice::<Answer<'_>>(answer),
    ) else {
        return false;
    };
    status.is_success()
        && answer.jsonrpc == "2.0"
        && answer.result.0
        && answer.error.is_none()
        && answer.id.get() == call.id.get()
}

impl<S: Clone, E> Clone for BufferOnly<S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            stream_err: self.stream_err,
            read: self.read,
        }
    }
}

impl<S, B, RB, E> Service<http::Request<B>> for BufferOnly<S, E>
where
    S: Service<http::Request<B>, Response = http::Response<RB>, Error = E> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + From<Vec<u8>> + Send + 'static,
    B::Data: Send,
    B::Error: Into<tower_jsonrpc_retry::BoxError>,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<tower_jsonrpc_retry::BoxError>,
    E: 'static,
{
    type Response = http::Response<HttpBody>;
    type Error = E;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, E>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use http_body_util::{BodyExt, Limited};
        use tower::ServiceExt;
        let inner = self.inner.clone();
        let stream_err = self.stream_err;
        let read = self.read;
        let limit = tower_jsonrpc_retry::codec::DEFAULT_BODY_LIMIT;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let request = Limited::new(body, limit)
                .collect()
                .await
                .map_err(stream_err)?
                .to_bytes();
            let body = B::from(request.to_vec());
            let (head, body) = inner
                .oneshot(http::Request::from_parts(parts, body))
                .await?
                .into_parts();
            let answer = Limited::new(body, limit)
                .collect()
                .await
                .map_err(stream_err)?
                .to_bytes();
            if let Some(read) = read {
                assert!(read(&request, head.status, &answer), "not a success");
            }
            Ok(http::Response::from_parts(head, HttpBody::new(answer)))
        })
    }
}
