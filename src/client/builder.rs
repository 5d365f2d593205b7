//! [`ClientBuilder`]: the recommended stack, assembled.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;

#[cfg(feature = "rustls")]
use super::HttpsStack;
use super::{Client, ResendCancelled, SchemeCheck, StackOver};
use crate::codec::JsonRpcCodecLayer;
use crate::{JsonRpcRetryLayer, RetryStrategy};

/// Assembles the recommended stack.
///
/// That is [`JsonRpcRetryLayer`] over [`JsonRpcCodecLayer`] (with a per-attempt
/// [`attempt_timeout`](JsonRpcCodecLayer::attempt_timeout) that covers the response body
/// too) over hyper-util's client, with `TCP_NODELAY` and a connect timeout.
///
/// # Default
///
/// | setting | default | why |
/// |---|---|---|
/// | [`attempt_timeout`](Self::attempt_timeout) | [`DEFAULT_ATTEMPT_TIMEOUT`] (10 s) | a hung connection ends and can be retried |
/// | connect timeout | half the attempt timeout (5 s) | a TCP connect not made by then is a connect failure, which even a non-idempotent call is sent again after: the request never left |
/// | retry strategy | [`RetryStrategy::transient()`] | connect, timeout, reset, 429/502/503/504 |
/// | [`response_limit`](Self::response_limit) | [`codec::DEFAULT_BODY_LIMIT`](crate::codec::DEFAULT_BODY_LIMIT) (10 MiB) | |
/// | [`pool_idle_timeout`](Self::pool_idle_timeout) | [`DEFAULT_POOL_IDLE_TIMEOUT`] (90 s) | hyper-util's and reqwest's own: a connection left idle after a burst of calls is closed |
/// | HTTP version | HTTP/1.1 | a timed-out attempt closes its connection, so its retry never goes out on the connection that timed out; `ClientBuilder::http2` (feature `http2`) says what HTTP/2 does instead |
/// | deadline for the whole call | none | set one on the strategy, [`max_elapsed`](RetryStrategy::max_elapsed): without it, a call with `transient()` may take its 4 attempts of up to 10 s each and 3 waits, each raised up to 60 s by a server's `Retry-After` (the [ceiling](RetryStrategy::retry_after_ceiling)), 3 min 40 s in all |
///
/// [`build`](Self::build) speaks plain HTTP; with the `rustls` feature,
/// `build_https` speaks HTTPS too. For anything else (another TLS
/// connector, concurrency limits, tower-http layers), assemble
/// the stack with `ServiceBuilder` and pass it to [`Client::new`].
///
/// # Examples
///
/// One configuration, two clients: one that retries, one that sends each call once.
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
/// use tower_jsonrpc_retry::{Client, RetryStrategy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// let builder = Client::builder(server.uri()).attempt_timeout(Duration::from_secs(2));
/// let patient = builder.clone().build();
/// let once = builder.retry(RetryStrategy::none()).build();
///
/// server.script("sum", [Step::status(503), Step::status(503)]);
/// assert!(once.call::<i64>("sum", (1, 2)).await.is_err());
/// assert_eq!(patient.call::<i64>("sum", (1, 2)).await?, 3);
/// assert_eq!(server.calls("sum"), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a client builder makes no client until `build` is called"]
pub struct ClientBuilder {
    /// The codec layer, its attempt timeout included (so that `Debug` shows the one
    /// the client will use).
    codec: JsonRpcCodecLayer,
    strategy: RetryStrategy,
    pool_idle_timeout: Duration,
    /// HTTP/2, when asked for: offered over HTTPS, or spoken from the first byte.
    #[cfg(feature = "http2")]
    http2: Option<Http2>,
}

/// How [`ClientBuilder`]'s client speaks HTTP/2, when it does.
#[cfg(feature = "http2")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Http2 {
    /// Offered with ALPN over HTTPS, beside HTTP/1.1; the server chooses.
    Offered,
    /// Spoken on every connection, from its first byte.
    PriorKnowledge,
}

/// How long an HTTP/2 connection of [`ClientBuilder`]'s client may stay silent while a
/// call on it is open before it is pinged, and how long the ping may go unanswered
/// before the connection is closed: a quarter of the attempt timeout, at least 1 s (a
/// ping's answer takes a round trip, and a connection closed for a late one fails every
/// call on it) and at most 15 s (see [`ClientBuilder::http2`]).
#[cfg(feature = "http2")]
fn http2_keep_alive(attempt_timeout: Option<Duration>) -> Duration {
    const LEAST: Duration = Duration::from_secs(1);
    const MOST: Duration = Duration::from_secs(15);
    attempt_timeout.map_or(MOST, |t| (t / 4).clamp(LEAST, MOST))
}

/// The TCP connector of [`ClientBuilder`]'s stacks: hyper-util's, with `TCP_NODELAY`
/// and a connect timeout of half the attempt timeout.
///
/// An HTTP/2 request goes out as frames written one after another (its headers, then
/// its body), and with Nagle's algorithm on, the body waited for the server to
/// acknowledge the headers, which Linux delays by 40 ms or more: over loopback, a call
/// took about 44 ms instead of well under one.
///
/// A connection that cannot be made often hangs rather than fails: a host that drops
/// packets, a server whose queue of connections is full. Cut by the attempt timeout, it
/// was a timeout, which a non-idempotent call is not sent again after (nor a strategy
/// that retries connect failures alone); cut by the connector first, it is a connect
/// failure, and the request provably never left. Half the attempt timeout leaves the
/// other half to the exchange, and with the default attempt timeout covers the SYN's
/// first two retransmissions (after 1 s and 3 s) for a host of one address (hyper-util
/// shares it among a name's addresses). The name lookup before it is not bounded by it.
fn tcp(attempt_timeout: Option<Duration>) -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout(attempt_timeout));
    tcp
}

/// Half the attempt timeout, if there is one short of tokio's far future and of 2 ms at
/// least. Tokio's timers count whole milliseconds, so below 2 ms half of it would end
/// with it, and the connect timeout, polled first, would make an attempt the attempt
/// timeout cuts a connect failure (sent again even for a non-idempotent call): a zero
/// attempt timeout must cut every attempt as a timeout.
fn connect_timeout(attempt_timeout: Option<Duration>) -> Option<Duration> {
    const LEAST: Duration = Duration::from_millis(2);
    attempt_timeout
        .filter(|t| (LEAST..crate::FAR_FUTURE).contains(t))
        .map(|t| t / 2)
}

/// The default time one attempt may take in [`Client::builder`]'s stack: long enough for
/// a slow node's heavy call, and a hung connection still ends, to be retried.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::Client;
/// use tower_jsonrpc_retry::client::DEFAULT_ATTEMPT_TIMEOUT;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// let server = FlakyServer::start().await?;
/// // A call that takes 15 s: past the default, so this client waits three times as long.
/// server.script("sum", [Step::delay(Duration::from_secs(15))]);
/// let client = Client::builder(server.uri())
///     .attempt_timeout(3 * DEFAULT_ATTEMPT_TIMEOUT)
///     .build();
/// assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
/// assert_eq!(server.calls("sum"), 1);
/// # Ok(())
/// # }
/// ```
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection of [`Client::builder`]'s stack may stay idle in its pool
/// before it is closed: hyper-util's default, and reqwest's, so that a service moving
/// to this client keeps its connections as long as before.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::Client;
/// use tower_jsonrpc_retry::client::DEFAULT_POOL_IDLE_TIMEOUT;
///
/// // A load balancer before the node drops connections idle for 60 s: close them first.
/// let idle = DEFAULT_POOL_IDLE_TIMEOUT.min(Duration::from_secs(55));
/// assert_eq!(idle, Duration::from_secs(55));
/// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
///     .pool_idle_timeout(idle)
///     .build();
/// # let _ = client;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl ClientBuilder {
    pub(super) fn new(uri: Uri) -> Self {
        Self {
            codec: JsonRpcCodecLayer::new(uri)
                .attempt_timeout(DEFAULT_ATTEMPT_TIMEOUT)
                .absolute_uri(),
            strategy: RetryStrategy::transient(),
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            #[cfg(feature = "http2")]
            http2: None,
        }
    }

    /// Sets how long one attempt may take; a retry gets a fresh timeout. The attempt
    /// fails as a timeout ([`ErrorClass::Timeout`](crate::ErrorClass::Timeout)).
    ///
    /// A new connection whose TCP connect is not made in half this time (from 2 ms of
    /// attempt timeout on: tokio's timers count whole milliseconds; shared among the
    /// addresses the host name resolves to) fails the attempt sooner, as a connect
    /// failure ([`ErrorClass::Connect`](crate::ErrorClass::Connect)): the request never
    /// left, so even a non-idempotent call can be sent again. A name lookup that hangs
    /// before it, or a TLS handshake that hangs after it, still ends as a timeout.
    ///
    /// Zero does not mean no limit: every attempt is then cut at once, a timeout (over
    /// the network no answer is there at an attempt's first poll). For no limit of the
    /// attempt's own, use `Duration::MAX` (the strategy's
    /// [`max_elapsed`](RetryStrategy::max_elapsed) still bounds the call).
    ///
    /// # Default
    ///
    /// [`DEFAULT_ATTEMPT_TIMEOUT`] (10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::Client;
    ///
    /// // A node that answers in milliseconds when well: give up on an attempt after 2 s.
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .attempt_timeout(Duration::from_secs(2))
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.codec = self.codec.attempt_timeout(timeout);
        self
    }

    /// Sets the retry strategy of calls that carry none of their own.
    ///
    /// # Default
    ///
    /// [`RetryStrategy::transient()`]: connect failures, timeouts, resets and
    /// 429/502/503/504, three retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::{Client, RetryStrategy};
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .retry(RetryStrategy::ethereum_rate_limits())
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, strategy: RetryStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Adds a header to every HTTP request (e.g. `Authorization`), replacing one of the
    /// same name. Credentials are marked sensitive, as
    /// [`JsonRpcCodecLayer::header`] marks them, so `Debug` output never shows them.
    /// `Content-Length` and `Transfer-Encoding` are not taken, as there: the client frames
    /// each request's body itself.
    ///
    /// # Examples
    ///
    /// The types are the `http` crate's, re-exported as [`crate::http`]:
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::{HeaderValue, header::AUTHORIZATION};
    ///
    /// let token = "s3cret";
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .header(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?)
    ///     .header("x-api-key".parse()?, HeaderValue::from_static("k3y"))
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.codec = self.codec.header(name, value);
        self
    }

    /// Adds these headers to every HTTP request, as
    /// [`JsonRpcCodecLayer::headers`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::{HeaderMap, HeaderValue};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-api-key", HeaderValue::from_static("k3y"));
    /// headers.insert("x-tenant", HeaderValue::from_static("acme"));
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?).headers(headers).build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.codec = self.codec.headers(headers);
        self
    }

    /// Sets the largest response body read, in bytes. A larger body under a 2xx fails
    /// the call with a [`codec::Error`](crate::codec::Error) for which
    /// [`is_body_too_large`](crate::codec::Error::is_body_too_large) holds; under a failure
    /// status, the status is the answer (as
    /// [`JsonRpcCodecLayer::response_limit`] says).
    ///
    /// # Default
    ///
    /// [`DEFAULT_BODY_LIMIT`](crate::codec::DEFAULT_BODY_LIMIT) (10 MiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .response_limit(64 * 1024 * 1024)
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.codec = self.codec.response_limit(bytes);
        self
    }

    /// Sets how long a connection may stay idle in the pool before the client closes
    /// it. A burst of concurrent calls opens a connection for each (over HTTP/1.1); once
    /// the burst is over, the connections no call reuses within this time are closed,
    /// within about twice this time (hyper-util's pool looks for them at that interval).
    ///
    /// Behind a load balancer or a server that closes idle connections itself (60 s by
    /// default on an AWS load balancer, 75 s in nginx), a shorter time here lets the
    /// client close them first: a call written just as the server closes its connection
    /// may fail as a reset, which is retried ([`RetryStrategy::transient()`] does) only
    /// for a method not marked non-idempotent, as the server may have read it.
    ///
    /// Zero keeps no connection idle: each call, and each retry, opens a new one
    /// (hyper-util's pool would take zero as no timeout at all).
    ///
    /// `Duration::MAX` keeps idle connections until the server closes them, as does any
    /// time from tokio's far future on (about 30 years: hyper-util's pool is then given no
    /// idle timeout, since its clock cannot reach one so far).
    ///
    /// # Default
    ///
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`] (90 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::Client;
    ///
    /// let client = Client::builder("http://127.0.0.1:8545/".parse()?)
    ///     .pool_idle_timeout(Duration::from_secs(50))
    ///     .build();
    /// # let _ = client;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// HTTP/2 where the server offers it: over HTTPS, ALPN offers `h2` beside
    /// `http/1.1` and the server chooses; plain HTTP stays HTTP/1.1. Replaces
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge) (h2c), if called before.
    /// Needs the `http2` feature (on by default).
    ///
    /// The client speaks HTTP/1.1 unless asked, because of what a timeout leaves behind.
    /// Over HTTP/1.1 an attempt that times out closes its connection. Over HTTP/2 it
    /// resets only its stream, and the retry goes out on the same connection: on one
    /// that died silently (a partition, a NAT entry dropped), every retry would wait out
    /// its timeout in turn. So while a call is open, this client pings a connection
    /// silent for a quarter of the [attempt timeout](Self::attempt_timeout) and closes it
    /// when the ping goes unanswered as long again (each wait clamped to 1–15 s; 2.5 s
    /// with the default 10 s): within half the attempt timeout the attempt fails as a
    /// timeout, and its retry opens a new connection. Under a 4 s attempt timeout that
    /// takes 2 s, and under 2 s the retries until then go out on the dead connection. A
    /// slow handler does not close a connection (the server answers pings meanwhile),
    /// but a server that stalls as a whole for that long (a single-threaded one busy
    /// computing) loses it the same way.
    ///
    /// Over HTTP/2 the calls share a connection, and calls beyond the server's limit of
    /// concurrent streams (often 100 to 250) wait for a free one. The first of them in
    /// line may already be in h2's hands (with recent hyper and h2): if it times out or
    /// is dropped meanwhile, it can still be sent once a stream frees. So even a call
    /// that timed out while waiting may run later: for non-idempotent methods, keep
    /// fewer calls in flight than the server's limit. A stream the server refused
    /// (`REFUSED_STREAM`) is sent again even for a non-idempotent method: the server says
    /// it did not process it.
    ///
    /// Its connections set `TCP_NODELAY`, as a stack of your own over HTTP/2 should
    /// (hyper-util's `HttpConnector::set_nodelay(true)`): without it, each call's body
    /// waits for the server's delayed acknowledgement of its headers, 40 ms or more.
    /// While a connection is being opened, the calls waiting for it wait on the call
    /// opening it, and hyper-util cancels them if that call is dropped: the client sends
    /// them again at once ([`ResendCancelled`](super::ResendCancelled)).
    ///
    /// ```no_run
    /// # #[cfg(feature = "rustls")]
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = tower_jsonrpc_retry::Client::builder("https://rpc.example.com/".parse()?)
    ///     .http2()
    ///     .build_https()?;
    /// let block: String = client.call("eth_blockNumber", ()).await?;
    /// # let _ = block;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2(mut self) -> Self {
        self.http2 = Some(Http2::Offered);
        self
    }

    /// HTTP/2 on every connection, from its first byte: for plain HTTP, a server that
    /// speaks h2c; over HTTPS, ALPN offers `h2` alone: a server that picks another
    /// protocol refuses the handshake, and one that negotiates none is spoken HTTP/2
    /// regardless. Otherwise as [`http2`](Self::http2), which it replaces if called
    /// before. Needs the `http2` feature (on by default).
    ///
    /// A plain-HTTP server that speaks HTTP/1.1 only closes the connection on the
    /// preface: the call fails as a broken connection
    /// ([`ErrorClass::Reset`](crate::ErrorClass::Reset)), which strategies that retry
    /// resets (the [`transient`](RetryStrategy::transient) preset) retry to no avail, on
    /// a new connection each time.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::Version;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = FlakyServer::start().await?;
    /// let client = Client::builder(server.uri()).http2_prior_knowledge().build();
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// assert_eq!(server.versions(), [Version::HTTP_2]);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "http2")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2 = Some(Http2::PriorKnowledge);
        self
    }

    /// The client, over plain HTTP. A URI whose scheme is not `http`, or that has none
    /// (`localhost:8545`), fails every call at once, without a retry, with
    /// [`UnsupportedScheme`](super::UnsupportedScheme) in the error's chain (for `https`,
    /// see `build_https`, feature `rustls`). Needs a tokio runtime when calls are made, not
    /// now.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::client::UnsupportedScheme;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("https://127.0.0.1:8545/".parse()?).build();
    /// let err = client.call::<String>("eth_blockNumber", ()).await.unwrap_err();
    /// let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    /// let mut refused = false;
    /// while let Some(e) = source {
    ///     refused |= e.is::<UnsupportedScheme>();
    ///     source = e.source();
    /// }
    /// assert!(refused, "https needs build_https: {err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Client {
        let tcp = tcp(self.codec.attempt_timeout_set());
        self.over(SchemeCheck::http(tcp))
    }

    /// The same client over HTTPS (and plain HTTP), with rustls and the Mozilla root
    /// certificates of `webpki-roots`: what a hosted node's `https://` endpoint needs.
    /// Needs the `rustls` feature. Fails only if rustls cannot be set up (see
    /// [`tls_config`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = tower_jsonrpc_retry::Client::builder("https://rpc.example.com/".parse()?)
    ///     .build_https()?;
    /// let block: String = client.call("eth_blockNumber", ()).await?;
    /// # let _ = block;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn build_https(self) -> Result<Client<HttpsStack>, rustls::Error> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Ok(self.build_https_with(tls_config(roots)?))
    }

    /// [`build_https`](Self::build_https) with your own rustls configuration: your own
    /// root certificates (a private CA), a client certificate. Its ALPN protocols are
    /// replaced: none for HTTP/1.1 alone, the client's own with `http2` or
    /// `http2_prior_knowledge` (feature `http2`). Needs the `rustls` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::client::{rustls, tls_config};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let ca = rcgen::generate_simple_self_signed(vec!["node.internal".to_owned()])?.cert;
    /// // The root of the private CA that signed the node's certificate (DER), and no other.
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(ca.der().clone())?;
    /// let client = Client::builder("https://node.internal:8545/".parse()?)
    ///     .build_https_with(tls_config(roots)?);
    /// // Its calls trust the node's certificate only if that CA signed it.
    /// assert_eq!(client.service().get_ref().uri().scheme_str(), Some("https"));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn build_https_with(self, mut tls: rustls::ClientConfig) -> Client<HttpsStack> {
        // hyper-rustls sets ALPN itself, and refuses (panics on) a configuration that
        // already names protocols.
        tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let mut tcp = tcp(self.codec.attempt_timeout_set());
        tcp.enforce_http(false);
        #[cfg(feature = "http2")]
        let https = match self.http2 {
            Some(Http2::Offered) => https.enable_all_versions().wrap_connector(tcp),
            Some(Http2::PriorKnowledge) => https.enable_http2().wrap_connector(tcp),
            None => https.enable_http1().wrap_connector(tcp),
        };
        #[cfg(not(feature = "http2"))]
        let https = https.enable_http1().wrap_connector(tcp);
        self.over(SchemeCheck::http_or_https(https))
    }

    /// The recommended stack over hyper-util's client with this connector.
    fn over<C>(self, connector: C) -> Client<StackOver<C>>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let mut http = HyperClient::builder(TokioExecutor::new());
        // Without a timer, hyper-util's pool keeps idle connections until the server
        // closes them.
        // A time the pool's clock cannot add (its idle task computes `now + timeout`,
        // and would panic) means never.
        let idle = self.pool_idle_timeout;
        http.pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout((idle < crate::FAR_FUTURE).then_some(idle));
        // hyper-util runs no idle sweep for a zero timeout, which would keep idle
        // connections for ever: zero keeps none instead.
        if idle.is_zero() {
            http.pool_max_idle_per_host(0);
        }
        #[cfg(feature = "http2")]
        if let Some(versions) = self.http2 {
            let keep_alive = http2_keep_alive(self.codec.attempt_timeout_set());
            http.timer(hyper_util::rt::TokioTimer::new())
                .http2_keep_alive_interval(keep_alive)
                .http2_keep_alive_timeout(keep_alive)
                .http2_only(versions == Http2::PriorKnowledge);
        }
        let http = http.build(connector);
        // Over HTTP/2 the calls waiting for a connection wait on the one opening it, and
        // are cancelled with it: they are sent again. Over HTTP/1.1 none waits on another.
        #[cfg(feature = "http2")]
        let http = match self.http2 {
            Some(_) => ResendCancelled::new(http),
            None => ResendCancelled::disabled(http),
        };
        #[cfg(not(feature = "http2"))]
        let http = ResendCancelled::disabled(http);
        let service = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(self.strategy))
            .layer(self.codec)
            .service(http);
        Client::new(service)
    }
}

/// A rustls client configuration trusting `roots`, for
/// [`build_https_with`](ClientBuilder::build_https_with) (a private CA, say).
///
/// It names rustls's `ring` provider explicitly, so that another crate enabling a second
/// provider cannot leave rustls unable to pick one, and its default protocol versions
/// (TLS 1.3 and 1.2). Fails only if the provider does not support them. Needs the
/// `rustls` feature.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::client::{rustls, tls_config};
///
/// # let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?.cert;
/// let mut roots = rustls::RootCertStore::empty();
/// roots.add(ca.der().clone())?; // a private CA's certificate, DER
/// let tls = tls_config(roots)?;
/// // No ALPN protocols: `build_https_with` sets the client's own.
/// assert!(tls.alpn_protocols.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
pub fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
