//! The connector check of [`ClientBuilder`](super::ClientBuilder)'s stacks: a URI whose
//! scheme the connector cannot speak fails at once, as a mistake to fix rather than a
//! connection to retry.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Uri;
use http::uri::Scheme;
use tower_service::Service;

use crate::BoxError;

/// Connector `C` behind a check of the URI's scheme.
///
/// It is the connector of [`Client::builder`](crate::Client::builder)'s stacks, and one
/// for a stack of your own over hyper-util's client ([`http`](Self::http),
/// [`http_or_https`](Self::http_or_https)).
///
/// [`build`](super::ClientBuilder::build)'s connector speaks `http` only, and
#[cfg_attr(
    feature = "rustls",
    doc = "[`build_https`](super::ClientBuilder::build_https)'s"
)]
#[cfg_attr(not(feature = "rustls"), doc = "`build_https`'s (feature `rustls`)")]
/// `http` and `https`. A URI with
/// any other scheme (an `https` URI given to `build`'s client, or `ws://`) fails before
/// any connection is tried, with [`UnsupportedScheme`] in the error's chain. hyper-util
/// reports it as a connect error, as it reports its own refusal of a scheme, but no
/// [`RetryStrategy`](crate::RetryStrategy) treats it as one
/// ([`ErrorClass::Connect`](crate::ErrorClass::Connect) does not match it) and no rule
/// retries it, a catch-all [`retry_if`](crate::RetryStrategy::retry_if) included: the
/// same URI would fail the same way on every retry.
///
/// # Examples
///
/// ```
/// use std::future::ready;
/// use tower::{ServiceExt, service_fn};
/// use tower_jsonrpc_retry::BoxError;
/// use tower_jsonrpc_retry::client::{SchemeCheck, UnsupportedScheme};
/// use tower_jsonrpc_retry::http::Uri;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// // A stand-in for a connector, behind the check.
/// let connector = service_fn(|_: Uri| ready(Ok::<_, BoxError>("a connection")));
/// let check = SchemeCheck::http(connector);
/// let http = check.clone().oneshot(Uri::from_static("http://127.0.0.1:8545/")).await?;
/// let ws = check.oneshot(Uri::from_static("ws://127.0.0.1:8545/")).await.unwrap_err();
/// assert_eq!(http, "a connection");
/// assert!(ws.is::<UnsupportedScheme>());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SchemeCheck<C> {
    inner: C,
    https: bool,
}

impl<C> SchemeCheck<C> {
    /// `inner` for `http` URIs only, as [`build`](super::ClientBuilder::build) uses
    /// hyper-util's `HttpConnector`: for a stack of your own over hyper-util's client.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::{Client, connect::HttpConnector};
    /// use hyper_util::rt::TokioExecutor;
    /// use tower_jsonrpc_retry::client::SchemeCheck;
    ///
    /// let connector = SchemeCheck::http(HttpConnector::new());
    /// let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    /// # let _ = http;
    /// ```
    pub fn http(inner: C) -> Self {
        Self {
            inner,
            https: false,
        }
    }

    /// `inner` for `http` and `https` URIs, as
    #[cfg_attr(
        feature = "rustls",
        doc = "[`build_https`](super::ClientBuilder::build_https)"
    )]
    #[cfg_attr(not(feature = "rustls"), doc = "`build_https` (feature `rustls`)")]
    /// uses hyper-rustls' connector.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::future::ready;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::BoxError;
    /// # use tower_jsonrpc_retry::client::SchemeCheck;
    /// # use tower_jsonrpc_retry::http::Uri;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// // A stand-in for a TLS connector, which speaks both.
    /// let tls = service_fn(|uri: Uri| {
    ///     let encrypted = uri.scheme_str() == Some("https");
    ///     ready(Ok::<_, BoxError>(encrypted))
    /// });
    /// let check = SchemeCheck::http_or_https(tls);
    /// let encrypted = check.oneshot(Uri::from_static("https://127.0.0.1:8545/")).await?;
    /// assert!(encrypted);
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_or_https(inner: C) -> Self {
        Self { inner, https: true }
    }

    fn speaks(&self, scheme: Option<&Scheme>) -> bool {
        scheme == Some(&Scheme::HTTP) || (self.https && scheme == Some(&Scheme::HTTPS))
    }
}

impl<C> Service<Uri> for SchemeCheck<C>
where
    C: Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Unpin,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Connecting<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let state = if self.speaks(uri.scheme()) {
            State::Connecting(self.inner.call(uri))
        } else {
            State::Refused(UnsupportedScheme {
                scheme: uri.scheme_str().map(str::to_owned),
                https_available: self.https,
            })
        };
        Connecting { state }
    }
}

/// The future of [`SchemeCheck`]'s connection: the inner connector's, or the refusal.
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Connecting<F> {
    state: State<F>,
}

#[derive(Debug)]
enum State<F> {
    Connecting(F),
    Refused(UnsupportedScheme),
    /// The output was given: polled again, the future stays pending (the inner one may
    /// not be polled past its end: an `async` block's would panic).
    Done,
}

impl<F, T, E> Future for Connecting<F>
where
    F: Future<Output = Result<T, E>> + Unpin,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let output = match &mut self.state {
            State::Connecting(inner) => ready!(Pin::new(inner).poll(cx)).map_err(Into::into),
            State::Refused(_) | State::Done => {
                match std::mem::replace(&mut self.state, State::Done) {
                    State::Refused(refusal) => Err(refusal.into()),
                    _ => return Poll::Pending,
                }
            }
        };
        self.state = State::Done;
        Poll::Ready(output)
    }
}

/// A URI whose scheme the client's connector does not speak (see [`SchemeCheck`]), or a
/// URI without a scheme, which [`Client::builder`](crate::Client::builder)'s stacks refuse
/// unsent.
///
/// # Examples
///
/// Its message says what to do instead:
///
/// ```
/// # use std::future::ready;
/// # use tower::{ServiceExt, service_fn};
/// # use tower_jsonrpc_retry::BoxError;
/// # use tower_jsonrpc_retry::client::{SchemeCheck, UnsupportedScheme};
/// # use tower_jsonrpc_retry::http::Uri;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// # let connector = service_fn(|_: Uri| ready(Ok::<_, BoxError>(())));
/// // A connector for plain HTTP, given an `https` URI.
/// let check = SchemeCheck::http(connector);
/// let err = check.oneshot(Uri::from_static("https://127.0.0.1:8545/")).await.unwrap_err();
/// let refused = err.downcast_ref::<UnsupportedScheme>().ok_or("another error")?;
/// assert!(refused.to_string().contains("build it with `ClientBuilder::build_https`"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedScheme {
    scheme: Option<String>,
    https_available: bool,
}

impl UnsupportedScheme {
    /// A URI without a scheme, refused by the codec before any HTTP client sees it.
    pub(crate) fn missing() -> Self {
        Self {
            scheme: None,
            https_available: false,
        }
    }

    /// The URI's scheme (`None` for a URI without one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error as _;
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::client::UnsupportedScheme;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // No scheme: the client refuses the call unsent, nothing is connected to.
    /// let client = Client::builder("127.0.0.1:8545".parse()?).build();
    /// let err = client.call::<u64>("eth_blockNumber", ()).await.unwrap_err();
    /// let source = err.transport().and_then(|e| e.source());
    /// let refused = source.and_then(|e| e.downcast_ref::<UnsupportedScheme>());
    /// assert_eq!(refused.map(UnsupportedScheme::scheme), Some(None));
    /// # Ok(())
    /// # }
    /// ```
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }
}

impl fmt::Display for UnsupportedScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.scheme.as_deref(), self.https_available) {
            (Some("https"), false) => f.write_str(
                "the URI's scheme is `https`, and this client speaks plain HTTP: build it \
                 with `ClientBuilder::build_https` (feature `rustls`)",
            ),
            (Some(scheme), false) => write!(
                f,
                "the URI's scheme is `{scheme}`, and this client speaks `http` only"
            ),
            (Some(scheme), true) => write!(
                f,
                "the URI's scheme is `{scheme}`, and this client speaks `http` and `https` only"
            ),
            (None, _) => f.write_str(
                "the URI is not absolute (it needs a scheme and a host, as \
                 `http://127.0.0.1:8545/`; `127.0.0.1:8545` alone has no scheme)",
            ),
        }
    }
}

impl StdError for UnsupportedScheme {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector whose connection is an `async` block, which panics if polled past
    /// its end.
    fn connector() -> SchemeCheck<impl Service<Uri, Response = (), Error = BoxError, Future: Unpin>>
    {
        SchemeCheck::http(tower::service_fn(|_: Uri| {
            Box::pin(async { Ok::<_, BoxError>(()) })
        }))
    }

    /// Polled again after its output (a connection, or the refusal of a scheme), the
    /// future stays pending, as the crate's other futures do.
    #[test]
    fn polled_again_after_its_output_it_stays_pending() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for (uri, refused) in [("http://127.0.0.1:1/", false), ("ws://127.0.0.1:1/", true)] {
            let mut connecting = connector().call(Uri::from_static(uri));
            let first = Pin::new(&mut connecting).poll(&mut cx);
            let Poll::Ready(output) = first else {
                panic!("{uri}: pending")
            };
            let unsupported = output
                .err()
                .is_some_and(|e| e.downcast_ref::<UnsupportedScheme>().is_some());
            assert_eq!(unsupported, refused, "{uri}");
            assert!(
                Pin::new(&mut connecting).poll(&mut cx).is_pending(),
                "{uri}"
            );
        }
    }
}
