//! The server handle, its accept loop and its connections.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::body::ResponseBody;
use super::chaos::{Chaos, Fault, LogEntry};
use super::dispatch::{self, CloseConnection, State};
use super::step::Step;

type Shared = Arc<Mutex<State>>;

/// Connections the kernel keeps waiting to be accepted. With tokio's default of 128,
/// a burst of more new connections (a test's 300 callers at once over HTTP/1.1) had the
/// rest dropped and tried again by their clients a second later, a second that a paused
/// clock fills with timeouts. The kernel caps it: Linux at `net.core.somaxconn` (4096 by
/// default since Linux 5.4, 128 before), macOS at `kern.ipc.somaxconn` (128).
const BACKLOG: u32 = 4096;

/// How long the accept loop waits after an error that is not one connection's own (too
/// many open files), unless one of its connections ends first: long enough not to spin,
/// short enough that the server takes the next connection soon after a descriptor is
/// free.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A handler that panicked cannot leave the state half-updated: keep serving.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted JSON-RPC 2.0 server over HTTP/1.1 and HTTP/2 on `127.0.0.1`, for tests.
///
/// It answers every request (whatever its method and path) with JSON-RPC: it has the
/// methods `sum` and `echo` from the start, takes more with [`handle`](Self::handle), and
/// misbehaves on demand: [`script`](Self::script) queues a [`Step`] for each of the next
/// calls of a method. It records every request's headers and body, and counts calls.
///
/// The server runs on the tokio runtime that started it, in spawned tasks (the runtime's
/// I/O and time drivers enabled, as `#[tokio::test]` has them), and waits only on tokio's
/// clock, so it works under a paused clock (`#[tokio::test(start_paused = true)]`). Its
/// clients must not wait on the kernel meanwhile: an HTTP/2 client writes a request's
/// headers and body apart, and without `TCP_NODELAY` the kernel holds the body back until
/// the server acknowledges the headers, tens of milliseconds of real time in which a
/// paused clock runs the client's timeouts out. Set it
/// (`HttpConnector::set_nodelay(true)`; this crate's client does).
///
/// Over HTTP/2, a connection serves at most 200 calls at once (hyper's default; real
/// servers limit theirs too, often to 100–250): a client holds the calls beyond that
/// back until a stream frees, and their attempt timeouts run meanwhile. A test of more
/// callers at once over one HTTP/2 connection may therefore see timeouts, and retries,
/// that no step scripted; over HTTP/1.1 each caller has a connection of its own.
///
/// It lives as long as its handle: dropping the `FlakyServer` aborts the task that accepts
/// connections and, with it, every open connection (they close when the runtime next runs
/// them; [`shutdown`](Self::shutdown) waits for that).
///
/// # Protocol
///
/// - A single request takes the next step queued for its method.
/// - A notification (no `"id"`) takes a step too; when the step is `ok` or `error`, the
///   answer is `204 No Content` with an empty body. HTTP-level steps apply as to a call.
/// - In a batch, each item takes a step from its own method's queue. `ok` and `error`
///   steps make that item's response object; the first item whose step is HTTP-level
///   decides the whole HTTP response instead. The response waits for the longest delay
///   among the items. Notifications get no response object; a batch that gets none at all
///   is answered `204`. Items keep the request order, unless
///   [`reverse_batches`](Self::reverse_batches) reverses it.
/// - A body that is not JSON gets `-32700 Parse error`; an empty batch, or an object that
///   is not a request (no `"jsonrpc": "2.0"`, no string `"method"`, params that are not an
///   array, an object or `null`, an id that is not a number, string or null), gets
///   `-32600 Invalid Request`, with id null. In a batch, such an item gets that response
///   and the other items are answered normally. None of these takes a step.
/// - A method with no handler gets `-32601 Method not found` (on an `ok` step).
/// - `sum` answers the sum of its params' numbers, positional (`[1, 2]`) or named
///   (`{"a": 1, "b": 2}`): integers add up as `i64`, and the sum becomes an `f64` once a
///   float appears or an `i64` would overflow. Params that are missing, not an array or
///   object, or hold a non-number, and a sum that is not finite, get `-32602 Invalid
///   params`. `echo` answers its params unchanged (`null` when there are none).
/// - Response ids are the request ids, read as JSON values: an integer beyond 64 bits
///   comes back as the nearest `f64`.
/// - Over HTTP/1.1 a client that shuts down its writing half is taken as gone (hyper's
///   default): an answer that waits ([`Step::after`], [`Step::timeout`],
///   [`latency`](Self::latency)) is dropped with the connection, as when the client
///   closes it. On Linux the call still counts, and an answer that does not wait goes
///   out; where the shutdown is seen before the request is read (under Wine), the call
///   is not served at all.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use serde_json::{Value, json};
/// use tower_jsonrpc_retry::http;
/// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = FlakyServer::start().await?;
/// server.script("sum", [Step::error(2001)]);
///
/// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let mut results = Vec::new();
/// for _ in 0..2 {
///     let request = http::Request::post(server.uri())
///         .header("content-type", "application/json")
///         .body(Full::from(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7}"#))?;
///     let body = client.request(request).await?.into_body().collect().await?.to_bytes();
///     results.push(serde_json::from_slice::<Value>(&body)?);
/// }
/// assert_eq!(results[0]["error"]["code"], 2001);
/// assert_eq!(results[1], json!({"jsonrpc": "2.0", "result": 3, "id": 7}));
/// assert_eq!(server.calls("sum"), 2);
/// # Ok(())
/// # }
/// ```
pub struct FlakyServer {
    addr: SocketAddr,
    uri: Uri,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FlakyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlakyServer")
            .field("addr", &self.addr)
            .field("state", &*lock(&self.state))
            .finish_non_exhaustive()
    }
}

impl Drop for FlakyServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FlakyServer {
    /// Binds `127.0.0.1` on a free port and starts serving on the current tokio runtime.
    ///
    /// Each connection speaks HTTP/1.1 with keep-alive, or HTTP/2 when it opens with
    /// HTTP/2's preface: a client with prior knowledge over plain TCP (h2c), or HTTP/2 that
    /// a TLS front in a test negotiated with ALPN and passes on. Over HTTP/2 the connection
    /// stays open when a step drops it or cuts a body short, and the other calls on it go
    /// on: for a dropped connection the server resets that one stream (`RST_STREAM` with
    /// `INTERNAL_ERROR`); a body cut short ends its stream short of its `Content-Length`,
    /// which the client resets ([`Step::truncated`]).
    ///
    /// New connections wait for the server in a backlog of up to 4,096, or the kernel's
    /// cap if lower: Linux's `net.core.somaxconn` (4,096 by default since Linux 5.4, 128
    /// before), macOS's `kern.ipc.somaxconn` (128). A burst of more new connections at
    /// once than that has the rest dropped, and their clients try again a second later,
    /// a second in which a paused clock runs their timeouts out.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (as `tokio::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert!(server.addr().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start() -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
        let listener = socket.listen(BACKLOG)?;
        let addr = listener.local_addr()?;
        let uri = Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query("/")
            .build()
            .map_err(io::Error::other)?;
        let state = Arc::new(Mutex::new(State::new()));
        let (stop, stopped) = oneshot::channel();
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state), stopped));
        Ok(Self {
            addr,
            uri,
            state,
            stop: Some(stop),
            accept,
        })
    }

    /// The URI to send requests to: `http://127.0.0.1:PORT/`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert_eq!(server.uri().to_string(), format!("http://{}/", server.addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn uri(&self) -> Uri {
        self.uri.clone()
    }

    /// The address the server listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// let stream = tokio::net::TcpStream::connect(server.addr()).await?;
    /// # drop(stream);
    /// # Ok(())
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a method, or replaces one (`sum` and `echo` included). The handler gets the
    /// call's params (`null` when it has none) and returns a result, or an error code and
    /// message. It runs on the server's task: keep it quick and never block. A handler
    /// that panics ends the exchange without an answer, as a connection dropped on
    /// purpose does (over HTTP/1.1 the connection closes, over HTTP/2 the stream is
    /// reset, with `CANCEL` where [`Step::drop_connection`](super::Step::drop_connection)
    /// resets with `INTERNAL_ERROR`: both read as
    /// [`ErrorClass::Reset`](crate::ErrorClass::Reset)); the server goes on serving other
    /// connections and streams.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::Value;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.handle("mul", |params: &Value| {
    ///     let numbers = params.as_array().ok_or((-32602, "expected an array".to_owned()))?;
    ///     let product = numbers.iter().filter_map(Value::as_i64).product::<i64>();
    ///     Ok(Value::from(product))
    /// });
    /// # Ok(())
    /// # }
    /// ```
    pub fn handle<F>(&self, method: impl Into<String>, handler: F)
    where
        F: Fn(&Value) -> Result<Value, (i64, String)> + Send + Sync + 'static,
    {
        lock(&self.state)
            .handlers
            .insert(method.into(), Arc::new(handler));
    }

    /// Queues steps for the next calls of `method`, after any already queued. Each call
    /// (batch items and notifications included) takes one; once the queue is empty, calls
    /// get [`Step::ok`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::timeout(), Step::error(2001), Step::ok()]);
    /// server.script("sum", [Step::status(503)]); // the fourth call
    /// # Ok(())
    /// # }
    /// ```
    pub fn script(&self, method: impl Into<String>, steps: impl IntoIterator<Item = Step>) {
        lock(&self.state)
            .scripts
            .entry(method.into())
            .or_default()
            .extend(steps);
    }

    /// How many of the steps queued for `method` no call has taken yet. Ask with the name
    /// given to [`script`](Self::script) (one constant for both): a retry that never
    /// came, or calls made under another name (a misspelling on either side), leave
    /// steps behind, while the name that was called has none queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.script("summ", [Step::error(2001)]); // misspelled
    /// // ... calls of "sum" ...
    /// assert_eq!(server.unused("summ"), 1); // the script did not run
    /// assert_eq!(server.unused("sum"), 0); // and this would not tell
    /// # Ok(())
    /// # }
    /// ```
    pub fn unused(&self, method: &str) -> usize {
        lock(&self.state)
            .scripts
            .get(method)
            .map_or(0, |steps| steps.len())
    }

    /// How many calls of `method` arrived, batch items and notifications included: every
    /// attempt counts, whatever its step. A call is counted when it takes its step, before
    /// any delay; one whose connection a chaos [`Fault::DropBeforeRead`](super::Fault)
    /// closed before its body was read never arrived, and is not (it counts in
    /// [`http_requests`](Self::http_requests)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert_eq!(server.calls("sum"), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn calls(&self, method: &str) -> usize {
        lock(&self.state).calls.get(method).copied().unwrap_or(0)
    }

    /// How many HTTP requests arrived (a batch is one).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert_eq!(server.http_requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_requests(&self) -> usize {
        lock(&self.state).http_requests
    }

    /// Every request body received, in the order their reading ended. A body is recorded
    /// as soon as it has been read, before anything else happens to it (even if the step
    /// then drops the connection). [`headers`](Self::headers) are recorded as each head
    /// comes, so with requests in flight together `bodies()[i]` need not be the body of
    /// `headers()[i]`: tell them apart by their contents (a call's id, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert!(server.bodies().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn bodies(&self) -> Vec<Bytes> {
        lock(&self.state).bodies.clone()
    }

    /// The headers of every HTTP request received, in order of arrival (one for each of
    /// [`http_requests`](Self::http_requests), read before the body): to check what a
    /// client sends, an `Authorization` header say.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::Client;
    /// use tower_jsonrpc_retry::http::{HeaderValue, header::AUTHORIZATION};
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = FlakyServer::start().await?;
    /// let client = Client::builder(server.uri())
    ///     .header(AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"))
    ///     .build();
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// assert_eq!(server.headers()[0][AUTHORIZATION], "Bearer t0ken");
    /// # Ok(())
    /// # }
    /// ```
    pub fn headers(&self) -> Vec<http::HeaderMap> {
        lock(&self.state).headers.clone()
    }

    /// The HTTP version of every HTTP request received, in order of arrival (one for each
    /// of [`http_requests`](Self::http_requests)): to check which protocol a client
    /// speaks. The server speaks HTTP/1.1 and HTTP/2 (see [`start`](Self::start)).
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
    /// let client = Client::builder(server.uri()).build();
    /// let sum: i64 = client.call("sum", (1, 2)).await?;
    /// assert_eq!(sum, 3);
    /// assert_eq!(server.versions(), [Version::HTTP_11]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn versions(&self) -> Vec<http::Version> {
        lock(&self.state).versions.clone()
    }

    /// Every request body received, parsed as JSON; [`Value::Null`] for a body that is not
    /// JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert!(server.bodies_json().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn bodies_json(&self) -> Vec<Value> {
        self.bodies()
            .iter()
            .map(|body| serde_json::from_slice(body).unwrap_or(Value::Null))
            .collect()
    }

    /// Whether to reverse the order of the response objects of a batch (off at start), so
    /// that a client must match them to its requests by id.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.reverse_batches(true);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reverse_batches(&self, reverse: bool) {
        lock(&self.state).reverse_batches = reverse;
    }

    /// Delays every answer by `latency` (zero at start), on top of any step's own delay:
    /// a stand-in for the round trip to a remote node, for examples and benchmarks that
    /// should not run at loopback speed. [`reset`](Self::reset) keeps it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.latency(Duration::from_millis(1)); // a node on the same network
    /// # Ok(())
    /// # }
    /// ```
    pub fn latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Turns on seeded random faults for every call that has no step scripted (replacing
    /// any earlier [`Chaos`]). [`reset`](Self::reset) turns them off.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{Chaos, FlakyServer, Fault};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.chaos(Chaos::new(1).rate(Fault::Code(-32005), 0.05).rate(Fault::Status(503), 0.05));
    /// # Ok(())
    /// # }
    /// ```
    pub fn chaos(&self, chaos: Chaos) {
        let mut state = lock(&self.state);
        state.chaos = Some(chaos.start());
        state.chaos_changes += 1;
    }

    /// What the server did with every call it received, in order of arrival (of its
    /// body, read whole; of its head, for a request not read): one entry per call (batch
    /// items and notifications included), one per request it did not read
    /// ([`Fault::DropBeforeRead`]) and one per request or batch item that was not a valid
    /// request. Each says which fault [`Chaos`] injected, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower_jsonrpc_retry::http;
    /// use tower_jsonrpc_retry::jsonrpc::Id;
    /// use tower_jsonrpc_retry::test_util::{Chaos, FlakyServer, Fault};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = FlakyServer::start().await?;
    /// server.chaos(Chaos::new(3).rate(Fault::Code(-32005), 1.0));
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    /// let request = http::Request::post(server.uri())
    ///     .body(Full::from(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":9}"#))?;
    /// client.request(request).await?;
    ///
    /// let log = server.log();
    /// assert_eq!(log[0].method.as_deref(), Some("sum"));
    /// assert_eq!(log[0].id, Some(Id::Number(9)));
    /// assert_eq!(log[0].fault, Some(Fault::Code(-32005)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.state).log.clone()
    }

    /// How many connections are open (idle keep-alive connections included).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert_eq!(server.connections(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// How many requests are being read or answered right now: a request counts from
    /// its arrival until its response is handed to hyper, or until the server drops it
    /// (its connection closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// assert_eq!(server.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn in_flight(&self) -> usize {
        lock(&self.state).in_flight
    }

    /// Forgets the queued steps, the chaos, the counters, the log and the recorded bodies
    /// and headers. Methods and [`reverse_batches`](Self::reverse_batches) stay as they
    /// are. Requests already being answered keep the steps they took; one whose body was
    /// still being read is counted, recorded and answered after the reset, in full.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// server.script("sum", [Step::error(2001)]);
    /// assert_eq!(server.unused("sum"), 1);
    /// server.reset(); // the next `sum` call gets `Step::ok()`
    /// assert_eq!(server.unused("sum"), 0);
    /// assert_eq!(server.http_requests(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reset(&self) {
        let mut state = lock(&self.state);
        state.scripts.clear();
        state.calls.clear();
        state.http_requests = 0;
        state.bodies.clear();
        state.headers.clear();
        state.versions.clear();
        state.resets += 1;
        state.chaos = None;
        state.chaos_changes += 1;
        state.log.clear();
    }

    /// Stops the server and waits until its listener and all its connections are closed.
    /// Dropping the server stops it too, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::test_util::FlakyServer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = FlakyServer::start().await?;
    /// let addr = server.addr();
    /// server.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the accept loop has ended already.
            let _ = stop.send(());
        }
        // Ends with the loop's return, or with a cancellation if the loop was aborted.
        let _ = (&mut self.accept).await;
    }
}

/// Accepts connections until stopped; the connections live in a `JoinSet`, so they are
/// aborted with it when the loop ends, or when its task is aborted.
async fn accept_loop(listener: TcpListener, state: Shared, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                // A connection reset before it was accepted: take the next one.
                Err(e) if is_per_connection(&e) => {}
                // Anything else, too many open files above all, lasts until something
                // closes: retrying at once would spin, and on a paused clock would keep
                // the runtime from ever idling, so no timeout could fire. Wait for one of
                // the server's connections to end, or a while.
                Err(_) => tokio::select! {
                    _ = &mut stop => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                },
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Whether an accept error concerned one connection only, so the next can be taken at
/// once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Counts something open in the state while it lives: a connection or a request.
struct Open {
    state: Shared,
    counter: fn(&mut State) -> &mut usize,
}

impl Open {
    fn new(state: &Shared, counter: fn(&mut State) -> &mut usize) -> Self {
        *counter(&mut lock(state)) += 1;
        Self {
            state: Arc::clone(state),
            counter,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        let count = (self.counter)(&mut state);
        *count = count.saturating_sub(1);
    }
}

async fn serve_connection(stream: TcpStream, state: Shared) {
    let _open = Open::new(&state, |s| &mut s.connections);
    // Nagle would hold small writes (the first part of a truncated body) back.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| respond(Arc::clone(&state), request));
    // HTTP/1.1 or HTTP/2, told apart by the connection's first bytes (HTTP/2's preface:
    // h2c with prior knowledge, or HTTP/2 that a TLS front negotiated). Errors end the
    // connection, which is all there is to do with them: they are the client going away,
    // or a step closing the connection on purpose (over HTTP/2, the stream: see `Step`).
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(
    state: Shared,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, CloseConnection> {
    let _open = Open::new(&state, |s| &mut s.in_flight);
    let (head, body) = request.into_parts();
    let (mut early, resets, chaos_changes) = {
        let mut state = lock(&state);
        state.http_requests += 1;
        state.headers.push(head.headers.clone());
        state.versions.push(head.version);
        let early = state.early_draw();
        if early == Some(Some(Fault::DropBeforeRead)) {
            state.log_unread(Some(Fault::DropBeforeRead));
            return Err(CloseConnection::ON_PURPOSE);
        }
        (early, state.resets, state.chaos_changes)
    };
    let body = body.collect().await;
    let (plan, latency) = {
        let mut state = lock(&state);
        let Ok(body) = body else {
            return Err(CloseConnection::REQUEST_FAILED);
        };
        if state.resets != resets {
            // `reset` came while the body was read: the request counts after it, as its
            // body and its calls do, so that the records agree.
            state.http_requests += 1;
            state.headers.push(head.headers);
            state.versions.push(head.version);
        }
        if state.chaos_changes != chaos_changes {
            // The chaos changed while the body was read (`reset` turned it off, or
            // `chaos` replaced it): the call draws from the chaos there is now.
            early = None;
        }
        let body = body.to_bytes();
        state.bodies.push(body.clone());
        (dispatch::plan(&mut state, &body, early), state.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = dispatch::answer(plan).await?;
    Ok(if head.version == http::Version::HTTP_2 {
        response.map(ResponseBody::for_http2)
    } else {
        response
    })
}
