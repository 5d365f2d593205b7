//! A request that hyper-util's pool cancelled before it had a connection, sent again at
//! once: over HTTP/2, the calls waiting for a connection wait on the one call opening it,
//! and when that call is dropped (its caller gave up), the pool cancels them all.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper_util::client::legacy::pool;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::fused::Fused;

/// How many times one request is sent again after a cancelled wait for a connection.
/// Each needs the call opening the connection it waited for to be dropped meanwhile (or
/// that connection to fail: the request sent again then opens one itself, and its own
/// failure is the one the retry layer sees).
const RESENDS: u8 = 3;

/// HTTP client `S` (hyper-util's), sending again at once a request that its pool
/// cancelled while it waited for a connection.
///
/// Over HTTP/2, calls share a connection, and while it is being opened, every call
/// waits on the call that opens it: hyper-util ties the connection to that call's
/// future. When that call is dropped (its caller gave up, a `select!` chose another
/// branch), hyper-util cancels the others too, each with a connect error, "request was
/// canceled" (hyperium/hyper#3199). Nothing failed for them and nothing was sent, so
/// this service sends each again, up to three times, without waiting: a retry layer
/// above would take it for a connect failure and wait out a backoff delay, draw on the
/// budget and report a retry, and a strategy that does not retry connect failures
/// would fail the call.
///
/// [`ClientBuilder`](super::ClientBuilder)'s client has it below the codec when it
/// speaks HTTP/2
#[cfg_attr(
    feature = "http2",
    doc = "([`http2`](super::ClientBuilder::http2), \
           [`http2_prior_knowledge`](super::ClientBuilder::http2_prior_knowledge))."
)]
#[cfg_attr(
    not(feature = "http2"),
    doc = "(`http2` and `http2_prior_knowledge`, feature `http2`)."
)]
/// For a stack of your own over hyper-util's client with HTTP/2, put it right above the
/// client:
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower_jsonrpc_retry::client::ResendCancelled;
///
/// let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
///     .http2_only(true)
///     .build_http();
/// let http = ResendCancelled::new(http);
/// # let _ = http;
/// ```
///
/// The failed exchange is dropped before the service is made ready to send again, so
/// what it held is free for the next sending (a `ConcurrencyLimit`'s permit below, say).
///
/// Each request is cloned before it is sent, for the second sending: a `Clone` body
/// (the codec's `Full<Bytes>` is, a reference count) and the head, whose header map
/// allocates, as does its extensions map when the call carries any (its own strategy,
/// its own headers, a retry layer's deadline).
/// [`ResendCancelled::disabled`] passes requests through instead, for an HTTP/1.1
/// client, whose calls never wait on one another's connection.
#[derive(Debug, Clone)]
pub struct ResendCancelled<S> {
    inner: S,
    enabled: bool,
}

impl<S> ResendCancelled<S> {
    /// `inner`, sending again what its pool cancelled before it had a connection.
    ///
    /// # Examples
    ///
    /// Any other failure comes back as it is, the request sent once:
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::client::ResendCancelled;
    /// use tower_jsonrpc_retry::http;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sent = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&sent);
    /// let refused = service_fn(move |_: http::Request<Full<Bytes>>| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    ///     let err = Error::from(ErrorKind::ConnectionRefused);
    ///     async { Err::<http::Response<()>, _>(err) }
    /// });
    /// let request = http::Request::new(Full::from("{}"));
    /// let err = ResendCancelled::new(refused).oneshot(request).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    /// assert_eq!(sent.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            enabled: true,
        }
    }

    /// `inner` with requests passed through, never cloned nor sent again.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::client::ResendCancelled;
    /// use tower_jsonrpc_retry::http;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // An HTTP/1.1 client's stand-in, which answers 204.
    /// let http = service_fn(|_: http::Request<Full<Bytes>>| async {
    ///     http::Response::builder().status(204).body(())
    /// });
    /// let request = http::Request::new(Full::from("{}"));
    /// let answer = ResendCancelled::disabled(http).oneshot(request).await?;
    /// assert_eq!(answer.status(), http::StatusCode::NO_CONTENT);
    /// # Ok(())
    /// # }
    /// ```
    pub fn disabled(inner: S) -> Self {
        Self {
            inner,
            enabled: false,
        }
    }
}

impl<S, B> Service<http::Request<B>> for ResendCancelled<S>
where
    S: Service<http::Request<B>> + Clone,
    S::Error: StdError + 'static,
    B: Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Resending<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !self.enabled {
            return Resending {
                future: Fused::new(self.inner.call(req)),
                again: None,
                left: 0,
                readying: false,
            };
        }
        // The service made ready goes with the call, kept for a sending again; the one
        // left here is a fresh clone, made ready for the next call.
        let clone = self.inner.clone();
        let mut svc = std::mem::replace(&mut self.inner, clone);
        let copy = req.clone();
        Resending {
            future: Fused::new(svc.call(req)),
            again: Some((svc, copy)),
            left: RESENDS,
            readying: false,
        }
    }
}

pin_project! {
    /// The future of [`ResendCancelled`]'s call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Resending<S, B>
    where
        S: Service<http::Request<B>>,
    {
        // Fused: a finished exchange is dropped at once, before the service is made
        // ready to send again (what it holds, a `ConcurrencyLimit`'s permit say, may be
        // what readiness waits for), and once the output is given, polling again finds
        // nothing to poll past its end.
        #[pin]
        future: Fused<S::Future>,
        // The service and a copy of the request, for a sending again.
        again: Option<(S, http::Request<B>)>,
        left: u8,
        // `future` is done, and the service is being made ready to send again.
        readying: bool,
    }
}

impl<S, B> std::fmt::Debug for Resending<S, B>
where
    S: Service<http::Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resending")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<S, B> Future for Resending<S, B>
where
    S: Service<http::Request<B>>,
    S::Error: StdError + 'static,
    B: Clone,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            if *this.readying {
                let Some((svc, req)) = this.again.as_mut() else {
                    // Not reached: `readying` is set only with a service kept.
                    *this.readying = false;
                    continue;
                };
                let ready = ready!(svc.poll_ready(cx));
                *this.readying = false;
                if let Err(err) = ready {
                    // The output: nothing is sent again, whenever polled.
                    *this.again = None;
                    return Poll::Ready(Err(err));
                }
                let copy = req.clone();
                this.future.set(Fused::new(svc.call(copy)));
                continue;
            }
            let err = match ready!(this.future.as_mut().poll(cx)) {
                Ok(response) => return Poll::Ready(Ok(response)),
                Err(err) => err,
            };
            if *this.left == 0 || this.again.is_none() || !cancelled_before_a_connection(&err) {
                return Poll::Ready(Err(err));
            }
            *this.left -= 1;
            *this.readying = true;
        }
    }
}

/// Whether `err` is hyper-util's pool cancelling a wait for a connection: the request
/// was never written.
fn cancelled_before_a_connection(err: &(dyn StdError + 'static)) -> bool {
    std::iter::successors(Some(err), |&e| e.source()).any(|e| {
        matches!(
            e.downcast_ref::<pool::Error>(),
            Some(pool::Error::CheckoutNoLongerWanted)
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::ServiceExt;

    use super::*;

    /// An HTTP client's error with hyper-util's pool error as its source, as hyper-util's
    /// own is.
    #[derive(Debug)]
    struct Failed(Option<pool::Error>);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl StdError for Failed {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.0.as_ref().map(|e| e as _)
        }
    }

    /// A client whose first `cancelled` calls are cancelled by its pool, and whose
    /// calls after those fail with `then` (none: answered).
    fn client(
        cancelled: usize,
        then: Option<fn() -> Failed>,
    ) -> (
        impl Service<http::Request<&'static str>, Response = &'static str, Error = Failed, Future: Send>
        + Clone,
        Arc<AtomicUsize>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let svc = tower::service_fn(move |req: http::Request<&'static str>| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let body = *req.body();
            std::future::ready(match then {
                _ if n < cancelled => Err(Failed(Some(pool::Error::CheckoutNoLongerWanted))),
                Some(error) => Err(error()),
                None => Ok(body),
            })
        });
        (svc, calls)
    }

    fn req() -> http::Request<&'static str> {
        http::Request::new("the body")
    }

    #[tokio::test]
    async fn a_cancelled_wait_is_sent_again_up_to_three_times() {
        let (svc, calls) = client(3, None);
        let answer = ResendCancelled::new(svc).oneshot(req()).await;
        assert_eq!(answer.ok(), Some("the body"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let (svc, calls) = client(9, None);
        let err = ResendCancelled::new(svc).oneshot(req()).await.err();
        assert!(matches!(err, Some(Failed(Some(_)))));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "three times, then the error"
        );
    }

    /// The finished exchange holds what the service below handed it (here the only
    /// permit of a `ConcurrencyLimit`): it is dropped before the service is made ready
    /// to send again, which would otherwise wait for that permit for ever.
    #[tokio::test(start_paused = true)]
    async fn a_finished_exchange_lets_go_before_the_request_is_sent_again() {
        let (svc, calls) = client(1, None);
        let limited = tower::limit::ConcurrencyLimit::new(svc, 1);
        let sent = ResendCancelled::new(limited).oneshot(req());
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), sent).await;
        assert_eq!(answer.ok().and_then(Result::ok), Some("the body"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Polled again after its output, the future stays pending rather than poll the
    /// exchange's future past its end (`std::future::Ready`'s, here, would panic).
    #[test]
    fn polled_again_after_its_output_it_stays_pending() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let failed: fn() -> Failed = || Failed(None);
        for (cancelled, then) in [(0, None), (9, None), (0, Some(failed))] {
            let (svc, _) = client(cancelled, then);
            for mut svc in [
                ResendCancelled::new(svc.clone()),
                ResendCancelled::disabled(svc),
            ] {
                let mut future = std::pin::pin!(svc.call(req()));
                assert!(future.as_mut().poll(&mut cx).is_ready());
                assert!(future.as_mut().poll(&mut cx).is_pending());
            }
        }
    }

    /// A client whose pool cancels the first call, and which is not ready to send it
    /// again: `poll_ready` fails after the first time.
    #[derive(Clone, Default)]
    struct FailsToReady {
        readied: Arc<AtomicUsize>,
        calls: Arc<AtomicUsize>,
    }

    impl Service<http::Request<&'static str>> for FailsToReady {
        type Response = &'static str;
        type Error = Failed;
        type Future = std::future::Ready<Result<&'static str, Failed>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failed>> {
            match self.readied.fetch_add(1, Ordering::SeqCst) {
                0 => Poll::Ready(Ok(())),
                _ => Poll::Ready(Err(Failed(None))),
            }
        }

        fn call(&mut self, _: http::Request<&'static str>) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err(Failed(Some(pool::Error::CheckoutNoLongerWanted))))
        }
    }

    /// The readiness error before a sending again is the output; polled again, the
    /// future neither makes the service ready again nor sends the request.
    #[test]
    fn a_readiness_error_before_sending_again_is_the_end() {
        let inner = FailsToReady::default();
        let mut svc = ResendCancelled::new(inner.clone());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_ready());
        let mut future = std::pin::pin!(svc.call(req()));
        let first = future.as_mut().poll(&mut cx);
        assert!(matches!(first, Poll::Ready(Err(Failed(None)))), "{first:?}");
        for _ in 0..3 {
            assert!(future.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1, "sent once");
        assert_eq!(inner.readied.load(Ordering::SeqCst), 2, "made ready twice");
    }

    #[tokio::test]
    async fn other_errors_and_a_disabled_service_send_once() {
        let (svc, calls) = client(0, Some(|| Failed(None)));
        let err = ResendCancelled::new(svc).oneshot(req()).await.err();
        assert!(matches!(err, Some(Failed(None))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let (svc, calls) = client(1, None);
        let err = ResendCancelled::disabled(svc).oneshot(req()).await.err();
        assert!(matches!(err, Some(Failed(Some(_)))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
