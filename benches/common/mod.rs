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
