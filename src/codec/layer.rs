use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tower_layer::Layer;

use super::{Config, JsonRpcCodec};

/// Applies [`JsonRpcCodec`] to a service: JSON-RPC messages in, HTTP requests out.
///
/// # Examples
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
/// use tower_jsonrpc_retry::http;
///
/// let codec = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?)
///     .header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t0ken"))
///     .response_limit(1024 * 1024);
/// # let http = tower::service_fn(|_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// # });
/// let svc = ServiceBuilder::new().layer(codec).service(http);
/// # let _ = svc;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct JsonRpcCodecLayer {
    config: Arc<Config>,
}

impl JsonRpcCodecLayer {
    /// POSTs to `uri`, with the default body limit ([`DEFAULT_BODY_LIMIT`](super::DEFAULT_BODY_LIMIT)).
    ///
    /// User information in `uri` (`http://user:password@host/`, percent-escapes
    /// decoded) is taken out of it and sent as an `Authorization: Basic` header instead,
    /// marked sensitive; hyper would send neither. A [`header`](Self::header) set
    /// afterwards replaces it. A URI without a scheme and host (`/rpc`) is sent as it is,
    /// for an inner service that takes one (hyper-util's client does not). A URI whose
    /// host is empty (`http://:8545/`) or whose port is out of range
    /// (`http://127.0.0.1:85450/`) or 0 fails every call unsent, with an error that
    /// [`is_invalid_request`](super::Error::is_invalid_request) and says why: an HTTP
    /// client would connect to the scheme's default port instead. So does a user name
    /// with a colon (`http://a%3Ab:pw@host/`), or a user name or password with a control
    /// character (`%0A`), unless a `header` gives `Authorization` (or, for one call, its
    /// [`RequestHeaders`](super::RequestHeaders)): Basic authentication cannot carry them
    /// (RFC 7617), and the server would take what follows the colon for the password.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    ///
    /// let layer = JsonRpcCodecLayer::new("http://alice:s%40cret@127.0.0.1:8545/".parse()?);
    /// // Neither the URI nor the header shows the password.
    /// assert!(!format!("{layer:?}").contains("cret"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(uri: Uri) -> Self {
        Self {
            config: Arc::new(Config::new(uri)),
        }
    }

    /// Adds a header to every HTTP request (e.g. `Authorization`), replacing one of the
    /// same name.
    ///
    /// The values of `Authorization`, `Proxy-Authorization`, `Cookie` and of headers
    /// whose name holds `key`, `token`, `secret`, `auth`, `password`, `session`,
    /// `credential`, `jwt`, `assertion` or `dpop` (Cloudflare Access's and Google IAP's
    /// JWT assertions, RFC 9449's proofs) are
    /// marked sensitive, so `Debug` output (of this layer, the codec, a
    /// [`ClientBuilder`](crate::client::ClientBuilder)) never shows them. The URI is shown
    /// there without its path and query, where API keys often sit.
    ///
    /// `Content-Length` and `Transfer-Encoding` are not taken: the codec makes each
    /// request's body and the HTTP client frames it (hyper would trust a length given
    /// here, and cut the body short, or wait for bytes that never come).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    /// use tower_jsonrpc_retry::http::HeaderValue;
    /// use tower_jsonrpc_retry::http::header::AUTHORIZATION;
    ///
    /// let layer = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse().unwrap())
    ///     .header(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
    /// assert!(!format!("{layer:?}").contains("s3cret"));
    /// ```
    #[must_use]
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        if frames_body(&name) {
            return self;
        }
        super::mark_sensitive(&name, &mut value);
        Arc::make_mut(&mut self.config).headers.insert(name, value);
        self
    }

    /// Adds these headers to every HTTP request, credentials marked sensitive as
    /// [`header`](Self::header) marks them, and the body's framing left out as it does.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    /// use tower_jsonrpc_retry::http::{HeaderMap, HeaderValue};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-api-key", HeaderValue::from_static("k3y"));
    /// headers.insert("x-tenant", HeaderValue::from_static("acme"));
    /// let layer =
    ///     JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse().unwrap()).headers(headers);
    /// assert!(!format!("{layer:?}").contains("k3y"), "a key is marked sensitive");
    /// ```
    #[must_use]
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let mut last = None;
        // `into_iter` names a header at its first value only: that value replaces the
        // header's, the ones after it are added (as `HeaderMap::extend` does).
        for (name, mut value) in headers {
            match name {
                Some(name) if frames_body(&name) => last = None,
                Some(name) => {
                    super::mark_sensitive(&name, &mut value);
                    config.headers.insert(name.clone(), value);
                    last = Some(name);
                }
                None => {
                    if let Some(name) = &last {
                        super::mark_sensitive(name, &mut value);
                        config.headers.append(name.clone(), value);
                    }
                }
            }
        }
        self
    }

    /// The largest response body read, in bytes; a larger one is an error, detected
    /// while streaming, before it is all buffered (except under a 2xx answer to a
    /// notification or a batch of notifications only, which were delivered: see the
    /// [module docs](super)).
    ///
    /// A body is read into memory whole, so the limit also bounds what one answer holds.
    /// A limit raised as far as `usize::MAX` stays safe against a server that lies about
    /// its length: at most 16 MiB of a declared `Content-Length` is reserved
    /// before the bytes arrive, and past that the buffer grows with what was received.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    ///
    /// // `eth_getLogs` over a wide range can answer with more than the 10 MiB default.
    /// let layer = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse().unwrap())
    ///     .response_limit(64 * 1024 * 1024);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn response_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).response_limit = bytes;
        self
    }
}

impl JsonRpcCodecLayer {
    /// Refuses, unsent, to send to a URI without scheme and host, for an HTTP client
    /// that needs them ([`Client`](crate::Client)'s stacks).
    pub(crate) fn absolute_uri(mut self) -> Self {
        Arc::make_mut(&mut self.config).absolute_uri = true;
        self
    }

    /// Keeps each single response's body bytes in its extensions.
    pub(crate) fn keep_raw(mut self) -> Self {
        Arc::make_mut(&mut self.config).keep_raw = true;
        self
    }

    /// Builds results even when keeping the answer's bytes: a retry rule reads them.
    pub(crate) fn build_results(mut self, build: bool) -> Self {
        Arc::make_mut(&mut self.config).build_results = build;
        self
    }

    /// Bounds each exchange, from sending the request to the last byte of the response
    /// body. A timeout under the codec (tower's `TimeoutLayer` around the HTTP client)
    /// ends when the response head arrives, so it cannot stop a body that trickles in;
    /// this one can. When it runs out the error [`is_timeout`](super::Error::is_timeout),
    /// with tower's `Elapsed` as its source; but a 2xx answer to a notification, or to a
    /// batch of notifications only, whose body outlasts it is delivered.
    ///
    /// Zero does not mean no limit: every attempt is then cut at once, a timeout, unless
    /// its answer is there at its first poll (a service in the same process), as with
    /// tower's `Timeout`. For no limit, leave it unset.
    ///
    /// # Default
    ///
    /// None: only the timeouts of the stack below apply.
    ///
    /// # Panics
    ///
    /// The codec's `call` then starts a tokio timer: outside a tokio runtime with its
    /// time driver it panics, as tower's `Timeout` does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
    ///
    /// // Each attempt, head and body, within 2 s; a retry gets 2 s of its own.
    /// let layer = JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse().unwrap())
    ///     .attempt_timeout(Duration::from_secs(2));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).attempt_timeout = Some(timeout);
        self
    }

    /// The attempt timeout set, if any.
    pub(crate) fn attempt_timeout_set(&self) -> Option<Duration> {
        self.config.attempt_timeout
    }
}

impl<S> Layer<S> for JsonRpcCodecLayer {
    type Service = JsonRpcCodec<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonRpcCodec::from_config(inner, self.config.clone())
    }
}

/// Whether a header frames the body (`Content-Length`, `Transfer-Encoding`): the HTTP
/// client's to set, for the body the codec makes.
pub(super) fn frames_body(name: &HeaderName) -> bool {
    name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING
}
