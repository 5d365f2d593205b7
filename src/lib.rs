//! JSON-RPC 2.0 over HTTP for tower, with retries that understand JSON-RPC: error codes,
//! transport errors and the server's hints.
//!
//! A JSON-RPC client fails in two ways: the server *answers* with an error object (a
//! code such as `-32005 limit exceeded`), or the *transport* fails (a refused
//! connection, a timeout, a `503`). This crate retries both, by rules you choose, with
//! delays drawn from composable [`backoff`]s, as tower layers that stack onto any HTTP
//! service. Its behaviour matches the retry feature of Python's `pjrpc`, and goes
//! further: partial batch retry, `Retry-After`, deadlines, retry budgets, idempotency
//! safety, seeded jitter and observability.
//!
//! # Contents
//!
//! - [Quick start](#quick-start)
//! - [The stack, with `ServiceBuilder`](#the-stack-with-servicebuilder)
//! - [Choosing a backoff](#choosing-a-backoff)
//! - [Choosing what to retry](#choosing-what-to-retry) (and the
//!   [idempotency warning](#idempotency-never-retry-a-write-blindly))
//! - [Per-request strategies](#per-request-strategies)
//! - [Strategies for methods](#strategies-for-methods)
//! - [Batches](#batches)
//! - [`Retry-After`, deadlines and budgets](#retry-after-deadlines-and-budgets)
//! - [Observability](#observability)
//! - [The HTTP-level layer, for jsonrpsee](#the-http-level-layer-for-jsonrpsee)
//! - [Testing your stack](#testing-your-stack)
//! - [Feature flags](#feature-flags)
//!
//! The runnable examples in `examples/` show each topic against an embedded server:
//! `cargo run --example quickstart` (or `per_request`, `custom_backoff`,
//! `service_builder`, `batch`, `budget`, `client_errors`, `jsonrpsee`, `ethereum`).
//!
//! # Where things are
//!
//! - [`Client`] ([`client`]): the typed client and its ready-made stack. Start here.
//! - [`RetryStrategy`], [`JsonRpcRetryLayer`] ([`retry`]): what to retry and how long
//!   to wait; the layer at the JSON-RPC level, and its form for an HTTP stack
//!   ([`JsonRpcRetryLayer::http`]); the hooks' events.
//! - [`backoff`]: the delays, with jitter and combinators.
//! - [`codec`]: JSON-RPC messages to HTTP and back, over any tower HTTP service.
//! - [`jsonrpc`]: the messages themselves.
//! - `test_util` (feature `test-util`): a scripted loopback server for your tests.
//!
//! # Quick start
//!
//! [`Client::builder`] assembles the recommended stack (retry over the codec, with a
//! per-attempt timeout, over hyper-util's client) with the [`RetryStrategy::transient()`]
//! preset; [`Client::call`] turns a tuple into positional params and the result into any
//! `Deserialize` type. Here the server is a [`FlakyServer`] on
//! loopback (feature `test-util`: see [Testing your stack](#testing-your-stack)); in
//! production, pass your endpoint's URI.
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, RetryStrategy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! server.script("sum", [Step::status(503)]); // the first attempt is refused
//!
//! let client = Client::builder(server.uri())
//!     .attempt_timeout(Duration::from_secs(2))
//!     .retry(RetryStrategy::transient())
//!     .build();
//!
//! let sum: i64 = client.call("sum", (1, 2)).await?;
//! println!("1 + 2 = {sum}");
//! assert_eq!((sum, server.calls("sum")), (3, 2));
//! # Ok(())
//! # }
//! ```
//!
//! # The stack, with `ServiceBuilder`
//!
//! Under [`Client`] is an ordinary tower stack, and you can assemble it yourself to add
//! layers (TLS connectors, concurrency limits, tower-http headers, ...):
//!
//! ```text
//! user code ── jsonrpc::Request (method, params, id, http::Extensions) ──┐
//!                                                                        ▼
//!  JsonRpcRetryLayer   JsonRpcRetry<S>: tower's Retry with a JsonRpcRetryPolicy ◄── RetryStrategy
//!    │   (per-request RetryStrategy override read from request extensions)
//!    ▼
//!  JsonRpcCodecLayer   Request ─► http::Request<Full<Bytes>> (POST, application/json)
//!    │                 http::Response ─► jsonrpc::Response (ids matched, body size limited;
//!    │                   a non-2xx answer with a JSON-RPC body for the call too, its status kept)
//!    │                 other non-2xx status / transport failure ─► codec::Error (kind, status, Retry-After, source)
//!    ▼
//!  any tower HTTP service: hyper_util::client::legacy::Client, optionally under
//!  tower::timeout::TimeoutLayer, ConcurrencyLimitLayer, tower-http layers, ...
//! ```
//!
//! The retry layer decides from what the codec has decoded (code, status, `Retry-After`,
//! error class), so it sits *above* the [`codec`]; HTTP-level layers sit below it, and a
//! timeout there bounds each attempt (every retry gets a fresh one). A timeout below the
//! codec ends when the response head arrives; to bound the body too (a server trickling it
//! byte by byte), use the codec's own
//! [`attempt_timeout`](codec::JsonRpcCodecLayer::attempt_timeout), as [`Client::builder`]
//! does. The order matters: with the codec above the retry layer, or no codec at all, the
//! stack serves no JSON-RPC request, and the compiler says only that a method such as
//! `oneshot` "exists … but its trait bounds were not satisfied" (`JsonRpcCodec<…>:
//! Service<_>`). It says the same of a layer below the retry layer that is not `Clone`, as
//! every attempt goes through a clone of the stack below: tower's `RateLimit` is one; put
//! tower's `Buffer` over it (`.buffer(n)` before `.rate_limit(..)`).
//!
//! ```
//! use std::time::Duration;
//! use hyper_util::client::legacy::Client as HttpClient;
//! use hyper_util::rt::TokioExecutor;
//! use serde_json::json;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
//! use tower_jsonrpc_retry::jsonrpc::Request;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, ErrorClass, JsonRpcRetryLayer, RetryStrategy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! server.script("sum", [Step::timeout(), Step::error(2001)]);
//!
//! let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
//!     .codes([2001])
//!     .retry_on(ErrorClass::Timeout);
//! let svc = ServiceBuilder::new()
//!     .layer(JsonRpcRetryLayer::new(strategy))
//!     // Each attempt gets 200 ms, its answer's body included.
//!     .layer(JsonRpcCodecLayer::new(server.uri()).attempt_timeout(Duration::from_millis(200)))
//!     .service(HttpClient::builder(TokioExecutor::new()).build_http());
//!
//! // As a tower service: JSON-RPC messages in, JSON-RPC messages out.
//! let resp = svc.clone().oneshot(Request::new("sum", json!([1, 2])).with_id(1)).await?;
//! assert_eq!(resp.result(), Some(&json!(3)));
//! assert_eq!(server.calls("sum"), 3); // a timeout, a 2001, a result
//!
//! // Or under the typed client.
//! let client = Client::new(svc);
//! assert_eq!(client.call::<i64>("sum", (3, 4)).await?, 7);
//! # Ok(())
//! # }
//! ```
//!
//! # Choosing a backoff
//!
//! A [`Backoff`](backoff::Backoff) is a recipe: each request draws a fresh iterator of
//! delays from it, and its length is the number of *retries* (at most `1 + attempts`
//! sends; no wait before the first). Delay math saturates and never panics; parameters
//! no delay can come from are refused by fallible constructors. The [`backoff`] module
//! has the full table; in short:
//!
//! | pjrpc, tower, backon | here |
//! |---|---|
//! | pjrpc `PeriodicBackoff(attempts, interval)` | [`PeriodicBackoff::new`](backoff::PeriodicBackoff::new) |
//! | pjrpc `ExponentialBackoff(attempts, base, factor, max_value)` | [`ExponentialBackoff::new`](backoff::ExponentialBackoff::new)`?` + [`with_max_delay`](backoff::ExponentialBackoff::with_max_delay), or [`ExponentialBackoff::doubling`](backoff::ExponentialBackoff::doubling) |
//! | pjrpc `FibonacciBackoff(attempts, multiplier, max_value)` (cap 1 s by default) | [`FibonacciBackoff::new`](backoff::FibonacciBackoff::new) (same 1 s default cap; [`without_max_delay`](backoff::FibonacciBackoff::without_max_delay)) |
//! | pjrpc `jitter=lambda attempt: ...` / `random.gauss(0.5, 0.1)` | [`Jitter::from_fn`](backoff::Jitter::from_fn), [`Jitter::gauss`](backoff::Jitter::gauss) |
//! | pjrpc users' `RandomBackoff(attempts, min, max)` | a few lines with [`backoff::from_fn`] (`examples/custom_backoff.rs`) |
//! | tower `ExponentialBackoffMaker::new(min, max, jitter, rng)` | `ExponentialBackoff::doubling(n, min)` [`.map(..)`](backoff::BackoffExt::map) [`.jitter(..)`](backoff::BackoffExt::jitter) [`.max_delay(max)`](backoff::BackoffExt::max_delay), as in [From tower](backoff#from-tower); every request gets its own jitter |
//! | backon `ConstantBuilder` / `ExponentialBuilder` / `FibonacciBuilder` | [`PeriodicBackoff`](backoff::PeriodicBackoff) / [`ExponentialBackoff`](backoff::ExponentialBackoff) / [`FibonacciBackoff`](backoff::FibonacciBackoff) (backon's jitter and Fibonacci sequence differ: see the [`backoff`] table) |
//! | backon `with_total_delay` | [`max_total_delay`](backoff::BackoffExt::max_total_delay) |
//! | reqwest-retry `ExponentialBackoff::builder().retry_bounds(min, max).build_with_max_retries(n)` | `ExponentialBackoff::doubling(n, min)`[`.with_max_delay(max)`](backoff::ExponentialBackoff::with_max_delay), with the jitter of your choice ([`Jitter::full`](backoff::Jitter::full), say) |
//! | reqwest-retry `build_with_total_retry_duration(t)` | [`RetryStrategy::max_elapsed(t)`](RetryStrategy::max_elapsed): time since the call began, attempts included |
//! | AWS "decorrelated jitter" | [`DecorrelatedJitterBackoff`](backoff::DecorrelatedJitterBackoff) |
//! | gRPC's `× U(0.8, 1.2)` | [`Jitter::proportional(0.2)`](backoff::Jitter::proportional) |
//!
//! Every random source can be [seeded](backoff::Jitter::seeded) for reproducible tests
//! (the spread added to a server's hint too:
//! [`retry_after_spread_seeded`](RetryStrategy::retry_after_spread_seeded)).
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::backoff::{Backoff, BackoffExt, ExponentialBackoff, Jitter, PeriodicBackoff};
//!
//! // pjrpc: PeriodicBackoff(attempts=3, interval=1.0)
//! let periodic = PeriodicBackoff::new(3, Duration::from_secs(1));
//! assert!(periodic.delays().eq([1, 1, 1].map(Duration::from_secs)));
//!
//! // Exponential from 100 ms capped at 1 s, then ±20 % jitter (so delays at the cap stay
//! // spread, 0.8–1.2 s, and callers failing together do not retry together), no more
//! // than 3 s in all.
//! let shaped = ExponentialBackoff::doubling(10, Duration::from_millis(100))
//!     .max_delay(Duration::from_secs(1))
//!     .jitter(Jitter::proportional(0.2)?)
//!     .max_total_delay(Duration::from_secs(3));
//! assert!(shaped.delays().all(|d| d <= Duration::from_millis(1200)));
//! assert!(shaped.delays().sum::<Duration>() <= Duration::from_secs(3));
//! # Ok::<(), tower_jsonrpc_retry::backoff::InvalidBackoff>(())
//! ```
//!
//! # Choosing what to retry
//!
//! A strategy made with [`RetryStrategy::new`] retries nothing until told what to
//! ([`RetryStrategy::default`] is the `transient()` preset, below). A result is retried
//! when any rule matches, no veto does, and a delay is left:
//!
//! | rule | matches |
//! |---|---|
//! | [`codes([..])`](RetryStrategy::codes) | an error response with one of these JSON-RPC codes (pjrpc's `codes=`) |
//! | [`retry_response_if(f)`](RetryStrategy::retry_response_if) | an error response for which `f` is true (a code whose meaning is in its message) |
//! | [`retry_result_if(f)`](RetryStrategy::retry_result_if) | a successful answer for which `f(method, result)` is true (a node that has not seen the block yet answers `null`) |
//! | [`retry_on(ErrorClass::..)`](RetryStrategy::retry_on) | a transport failure of a class: [`Connect`](ErrorClass::Connect), [`Timeout`](ErrorClass::Timeout), [`Reset`](ErrorClass::Reset), or an HTTP [`Status`](ErrorClass::Status) |
//! | [`retry_status_if(f)`](RetryStrategy::retry_status_if) | an answer or an error with an HTTP status for which `f` is true (every 5xx: `\|s\| s.is_server_error()`) |
//! | [`retry_on_error::<E>()`](RetryStrategy::retry_on_error) | an error with an `E` anywhere in its `source()` chain (pjrpc's `exceptions=`) |
//! | [`retry_if(f)`](RetryStrategy::retry_if) | an error for which `f` is true (not an answer, under whatever status) |
//!
//! A veto overrides them all: an error response for which
//! [`never_retry_response_if(f)`](RetryStrategy::never_retry_response_if) is true is
//! final, whatever its code or HTTP status (`nonce too low` under a listed `-32000`).
//!
//! No rule retries a request the codec refused unsent
//! ([`is_invalid_request`](codec::Error::is_invalid_request)), nor one to a URI whose
//! scheme the client's connector does not speak
//! ([`UnsupportedScheme`](client::UnsupportedScheme) in the chain, or hyper-util's
//! `HttpConnector` refusing an `https` URI itself): every attempt would be refused the
//! same way.
//!
//! When retries end, the last error *response* (or a success retried by a result rule or
//! for its status) is returned as `Ok`, and the last transport
//! *error* as `Err`, of the same type and with the same source chain, except for a partly
//! retried batch whose re-send fails: it is returned as `Ok` with every call's latest
//! answer (a call re-sent then has an earlier attempt's answer, and its record says so
//! unless the re-send provably never reached the server:
//! [`GaveUp::last_attempt_unanswered`]). Either records how the retries ended ([`GaveUp`];
//! a [`codec::Error`]'s message then says it). Through [`Client`], [`ClientError::status`]
//! and [`ClientError::retry_after`] give the last answer's failure status and `Retry-After`
//! whether it carried a JSON-RPC error object or not, for a caller that waits itself once
//! retries are over. (For a call of a partly retried batch whose re-send failed without
//! an answer, the status is that of the earlier answer its error came in, and the
//! `Retry-After` the latest one, the failed re-send's included.) Two presets document their choices in tables:
//! [`RetryStrategy::transient()`] (connect, timeout, reset, 429/502/503/504; the default)
//! and [`RetryStrategy::ethereum_rate_limits()`] (providers' rate-limit codes and messages,
//! 429/503, with the write methods marked non-idempotent;
//! [`idempotent`](RetryStrategy::idempotent) unmarks one).
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::backoff::{ExponentialBackoff, Jitter};
//! use tower_jsonrpc_retry::{ErrorClass, RetryStrategy, http};
//!
//! let strategy = RetryStrategy::new(
//!     ExponentialBackoff::new(3, Duration::from_secs(1), 2.0)?.with_jitter(Jitter::full()),
//! )
//! .codes([2001, -32005])
//! .retry_response_if(|e| e.code() == -32000 && e.message().contains("try again"))
//! .retry_on(ErrorClass::Connect)
//! .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
//! .retry_on_error::<tower::timeout::error::Elapsed>()
//! .retry_if(|e| e.to_string().contains("connection closed"))
//! .non_idempotent(["transfer"]);
//! assert!(strategy.can_retry());
//! # Ok::<(), tower_jsonrpc_retry::BoxError>(())
//! ```
//!
//! ## Idempotency: never retry a write blindly
//!
//! **A failed attempt does not prove the server did nothing.** A timeout, a reset
//! connection, a `503` from a proxy or a rate-limit error may all arrive *after* the
//! server applied the call. Retrying a read costs load; retrying a write — a transfer, an
//! `eth_sendRawTransaction`, an insert — can apply it twice.
//!
//! [`non_idempotent([..])`](RetryStrategy::non_idempotent) names the methods that must
//! not run twice. Such a method is retried *only* after an error that proves the server
//! did not run it (when one of the strategy's rules retries it): a connect failure, a
//! request hyper handed back unwritten, an HTTP/2 stream the server refused, or a
//! refusal before the request was handed on ([the list](RetryStrategy::non_idempotent));
//! never after an error response, a status, or a timeout after which the request may
//! have been sent, whatever the strategy's other rules say. Mark every write you send,
//! or give writes [`RetryStrategy::none()`], unless the server deduplicates them (an
//! idempotency key, a nonce it checks). A failure held back so is told from one no rule
//! retries: its give-up reason is [`GiveUpReason::NotIdempotent`], and its message ends
//! `gave up at the first attempt: non-idempotent method`.
//!
//! # Per-request strategies
//!
//! A [`RetryStrategy`] in a request's extensions replaces the stack's default for that
//! request, entirely: the default's codes and errors no longer apply, nor its hooks
//! ([`on_retry`](RetryStrategy::on_retry), [`on_give_up`](RetryStrategy::on_give_up)),
//! its [budget](RetryStrategy::budget), its [deadline](RetryStrategy::max_elapsed) or
//! its [non-idempotent methods](RetryStrategy::non_idempotent): a strategy made afresh
//! for a write retries it like any read (see above). To keep those, build the request's
//! strategy from the default (`default.clone().retry_on(ErrorClass::Timeout)`): a clone
//! shares the hooks and the budget, and keeps the methods (those marked, and those its
//! [strategies for methods](#strategies-for-methods) never retry, held back).
//! [`RetryStrategy::none()`] there turns retries off. With the typed client, use
//! [`RequestBuilder::retry`](client::RequestBuilder::retry). At the HTTP level the
//! strategy is read from the `http::Request`'s extensions, which jsonrpsee's client
//! does not let a caller set: there, give methods their own strategies (below). Under
//! two retry layers in one stack, each reads the request's strategy: its retries
//! multiply (2 retries: up to 9 attempts), and [`RetryStrategy::none()`] turns both
//! off.
//!
//! ```
//! use serde_json::json;
//! use tower::ServiceExt;
//! use tower_jsonrpc_retry::jsonrpc::Request;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, RetryStrategy};
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! let busy = RetryStrategy::new(PeriodicBackoff::new(3, std::time::Duration::from_secs(1)))
//!     .codes([2001]);
//! let client = Client::builder(server.uri()).retry(busy.clone()).build();
//!
//! // As a request extension, on the raw service.
//! server.script("sum", [Step::error(2001)]);
//! let mut req = Request::new("sum", json!([1, 2])).with_id("no-retry");
//! req.extensions_mut().insert(RetryStrategy::none());
//! let resp = client.service().clone().oneshot(req).await?;
//! assert_eq!(resp.error().map(|e| e.code()), Some(2001));
//!
//! // Through the client.
//! server.script("sum", [Step::error(-32000)]);
//! let own = busy.codes([-32000]);
//! let sum: i64 = client.request("sum").params((1, 2)).retry(own).send().await?;
//! assert_eq!(sum, 3);
//! # Ok(())
//! # }
//! ```
//!
//! # Strategies for methods
//!
//! [`RetryStrategy::for_method`] gives the calls of one method a strategy of their own,
//! in the default: a read retried after timeouts too, a slow query given more room, a
//! method never retried. A call's own strategy (in its extensions) still outranks its
//! method's. A batch follows its own strategy or the default (its calls share one
//! backoff), but holds back from re-sends a call whose method's strategy would never
//! send it again (so does a request's own strategy cloned from the default). It is how
//! calls made through jsonrpsee, which carry no strategy of their own, get rules of
//! their own.
//!
//! ```
//! use std::time::Duration;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, RetryStrategy};
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! let busy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1))).codes([2001]);
//! let client = Client::builder(server.uri())
//!     .retry(busy.for_method("sum", RetryStrategy::none()))
//!     .build();
//!
//! server.script("sum", [Step::error(2001)]);
//! server.script("echo", [Step::error(2001)]);
//! assert!(client.call::<i64>("sum", (1, 2)).await.is_err(), "sum: never retried");
//! let echoed: Vec<i64> = client.call("echo", [7]).await?;
//! assert_eq!((echoed, server.calls("echo")), (vec![7], 2), "echo: the default's rules");
//! # Ok(())
//! # }
//! ```
//!
//! # Batches
//!
//! A batch is sent in one HTTP exchange. When some of its calls fail with a retryable
//! error, only those calls are sent again (a smaller batch), with their own ids; the
//! final batch response holds *every* call's response, matched by id, including errors
//! that were not retried or whose retries ran out. A call that must not go again is one
//! whose method is marked [`non_idempotent`](RetryStrategy::non_idempotent) or given a
//! strategy that never retries it (`for_method(m, RetryStrategy::none())`). An error
//! object for the whole batch is every call's answer: the calls it is retryable for are
//! sent again, except those that must not go again, which keep it as their answer
//! (their give-up reason [`NotIdempotent`](GiveUpReason::NotIdempotent)); the server ran
//! none of it, so its notifications go again too, unless their own methods must not
//! (even when no call does: the notifications then go alone). A transport
//! failure (a timeout, a broken connection, a failure status without a JSON-RPC answer)
//! that the rules retry sends the whole batch (or the calls being re-sent) again, since
//! no call was answered, unless a call in it must not go again. Such a batch goes again
//! only after a failure that proves the server did not run it (a connect failure, say);
//! otherwise nothing is sent again, and it ends as it failed, its give-up reason
//! [`NotIdempotent`](GiveUpReason::NotIdempotent) (or `Deadline`, if the deadline had
//! come). So a batch that mixes reads with such a call is not retried after a timeout
//! or a bare `503`: send that call on its own. One strategy decides for the whole
//! batch: the batch's own (in the [`BatchRequest`](jsonrpc::BatchRequest)'s extensions,
//! or [`BatchBuilder::retry`](client::BatchBuilder::retry)), else the stack's default;
//! a strategy in the extensions of a request inside it is not read, nor are the
//! strategies of its methods, except to hold back a call whose method's strategy never
//! retries it. When a retry of a batch refused as a whole leaves a notification that
//! must go at most once unsent, the refusal is kept in
//! [`unmatched`](jsonrpc::BatchResponse::unmatched). Calls that share an id (the codec
//! refuses to send them; a service of your own may not) are retried on transport
//! failures only: which call an answer is for cannot be told. [`Client::batch`] gives a
//! typed handle per call:
//!
//! ```
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, RetryStrategy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! server.script("echo", [Step::error(2001)]);
//! let strategy = RetryStrategy::new(PeriodicBackoff::new(2, std::time::Duration::from_secs(1)))
//!     .codes([2001]);
//! let client = Client::builder(server.uri()).retry(strategy).build();
//!
//! let mut batch = client.batch();
//! let three = batch.call::<i64>("sum", (1, 2));
//! let echoed = batch.call::<Vec<String>>("echo", ("hi",));
//! batch.notify("log", ("batch sent",));
//! let mut results = batch.send().await?;
//!
//! assert_eq!(results.take(three)?, 3);
//! assert_eq!(results.take(echoed)?, ["hi"]);
//! let bodies = server.bodies_json();
//! assert_eq!(bodies[1].as_array().map(Vec::len), Some(1), "only echo was re-sent");
//! # Ok(())
//! # }
//! ```
//!
//! # `Retry-After`, deadlines and budgets
//!
//! - **`Retry-After`.** A server's hint, a `Retry-After` header (seconds or an HTTP
//!   date, on any answer, usually 429 or 503) or Infura's `backoff_seconds` in a retried
//!   error's `data`, or one a rule of yours reads from the answer
//!   ([`retry_after_from`](RetryStrategy::retry_after_from)), or one a service below the
//!   codec puts in the HTTP answer's extensions ([`RetryAfter::new`](codec::RetryAfter::new)):
//!   the largest, raises the next delay to the hint, never beyond
//!   [`retry_after_ceiling`](RetryStrategy::retry_after_ceiling) (default
//!   [`DEFAULT_RETRY_AFTER_CEILING`](retry::DEFAULT_RETRY_AFTER_CEILING), one minute), so
//!   a broken or hostile server cannot park a caller (a spread, below, adds at most its
//!   own length). The hint never shortens a delay,
//!   and does not make anything retryable by itself. Callers told the same wait come
//!   back together, to be limited again together:
//!   [`retry_after_spread`](RetryStrategy::retry_after_spread) adds a random time to a
//!   wait a hint decides.
//! - **Deadlines.** [`max_elapsed`](RetryStrategy::max_elapsed) bounds the whole call,
//!   attempts and waits: no retry is scheduled whose wait would end at or past it, a
//!   retry waiting for the inner service's readiness stops at it (for the codec's error,
//!   `BoxError` and `io::Error`: see [`InspectError::deadline_error`]), and over the
//!   codec every attempt, the first included, is cut short at it. Over a service other
//!   than the codec, or a `Buffer` whose queue holds an attempt before the codec sees it,
//!   the layer drops an attempt still unanswered a millisecond after the deadline (for
//!   the same error types: see [`InspectError::deadline_cut_error`]). An outer retry
//!   layer's deadline bounds the layers inside it too.
//! - **Budgets.** Retries multiply load exactly when a server is struggling: with 3
//!   retries, an outage turns every call into 4. A
//!   [`TpsBudget`](tower::retry::budget::TpsBudget) given to
//!   [`budget`](RetryStrategy::budget) lets retries through only up to a ratio of recent
//!   calls (plus a small reserve); share *one* `Arc` among every client talking to a
//!   service, so that together they cannot amplify its load by more than the budget
//!   (`examples/budget.rs`: 200 failing calls, 800 attempts without a budget, 230 with).
//!   Give it to one retry layer of a stack: a layer inside another deposits once per
//!   attempt of the outer one, so one budget shared by both lets about twice its ratio
//!   through.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use tower::retry::budget::TpsBudget;
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, ErrorClass, RetryStrategy, http};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! server.script("sum", [Step::status(503).retry_after("5")]);
//!
//! // Shared by every client of this service: retries up to 10 % of calls, plus a
//! // reserve of 1 retry per second, over a 10 s window.
//! let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 1, 0.1));
//! let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
//!     .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE))
//!     .retry_after_ceiling(Duration::from_secs(30))
//!     .max_elapsed(Duration::from_secs(20))
//!     .budget(budget);
//! let client = Client::builder(server.uri()).retry(strategy).build();
//!
//! let start = Instant::now();
//! assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
//! assert_eq!(start.elapsed(), Duration::from_secs(5), "the hint raised the 100 ms delay");
//! # Ok(())
//! # }
//! ```
//!
//! # Observability
//!
//! With the `tracing` feature (on by default), every decision is a `debug` event with
//! target `tower_jsonrpc_retry`: `"retrying JSON-RPC request"` (fields `method`, `id`,
//! `batch_len`, `retry`, `reason`, `delay_ms`, `retry_after_ms`) and `"not retrying
//! JSON-RPC request"` (`method`, `id`, `batch_len`, `retries`, `retry_after_ms`, and
//! `reason`: not retryable, a non-idempotent method, attempts exhausted, deadline,
//! budget; for a batch, a call whose answer failed: the first that wanted another retry
//! when a limit or the backoff ended them, or that was held back as non-idempotent, else
//! the first among those sent last, else the first settled earlier). Both say what
//! failed: `code` and `error_message` for an error answer, `status` for a failure status,
//! and `class` and `error` for a transport failure, the error recorded as an error, so
//! that `tracing-subscriber` prints its sources too. A call whose strategy can never
//! retry (`RetryStrategy::none()`, or one with nothing to retry on) is not watched, and
//! makes no event. At the HTTP level, a third event,
//! `"not a JSON-RPC message the layer can retry: sent once, as it came"` (field `why`,
//! which quotes nothing of the body but a repeated id), tells of a body sent once whose
//! answer could not be matched to each call ([`HttpRetry`](retry::HttpRetry) lists
//! them), like the others only where the strategy can retry. Turn them on with a filter
//! such as `RUST_LOG=tower_jsonrpc_retry=debug`. For metrics, or without `tracing`,
//! [`on_retry`](RetryStrategy::on_retry) calls a hook with a [`RetryEvent`] before each
//! retry's wait, and [`on_give_up`](RetryStrategy::on_give_up) one with a
//! [`GiveUpEvent`] (its [`GiveUpReason`]) when a failure is final:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::{RetryEvent, RetryStrategy};
//!
//! let retries = Arc::new(AtomicU64::new(0));
//! let counter = Arc::clone(&retries);
//! let strategy = RetryStrategy::new(PeriodicBackoff::new(3, std::time::Duration::from_secs(1)))
//!     .codes([2001])
//!     .on_retry(move |e: &RetryEvent<'_>| {
//!         counter.fetch_add(1, Ordering::Relaxed);
//!         eprintln!("retry {} of {}: {}, waiting {:?}", e.retry(), e.method(), e.reason(), e.delay());
//!     });
//! # let _ = strategy;
//! ```
//!
//! The code that handles a failure learns the same without a hook: the layer records
//! how the call's retries ended ([`GaveUp`]: the retries made, and the reason) on what
//! it hands back, an error answer's extensions or the codec's error, whose message then
//! says it (`HTTP status 503 Service Unavailable; gave up after 2 retries: attempts
//! exhausted`). Through the client, [`ClientError::gave_up`] reads either.
//!
//! # The HTTP-level layer, for jsonrpsee
//!
//! Some stacks only take HTTP layers: jsonrpsee's `HttpClientBuilder::set_http_middleware`,
//! or a hyper client used directly. [`JsonRpcRetryLayer::http`] gives them the same
//! retries: it buffers each request body, decodes it as JSON-RPC, and runs the very same
//! policy over the codec for every attempt. A single call is sent as the caller's bytes
//! and answered with the server's last HTTP response as it came (status, headers,
//! bytes); a batch's items are sent as the caller's bytes too (a retry may send only
//! some), and its answer is the server's, as it came or, after a partial retry, gathered
//! item by item. Use [`JsonRpcRetryLayer::new`] when you own the stack (no buffering,
//! typed errors, per-request strategies in [`Request`](jsonrpc::Request) extensions, where
//! any caller can set them); use `::http` when the JSON-RPC client is someone else's. Its
//! [`map_err`](retry::HttpRetryLayer::map_err) turns the layer's own errors into the
//! stack's error type:
//!
//! ```
//! use std::time::Duration;
//! use jsonrpsee::core::client::ClientT;
//! use jsonrpsee::core::http_helpers::HttpError;
//! use jsonrpsee::http_client::HttpClientBuilder;
//! use jsonrpsee::http_client::transport::Error as TransportError;
//! use jsonrpsee::rpc_params;
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{JsonRpcRetryLayer, RetryStrategy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! let server = FlakyServer::start().await?;
//! server.script("sum", [Step::error(-32005)]);
//!
//! let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
//!     .codes([-32005]);
//! let layer = JsonRpcRetryLayer::http(strategy)
//!     .attempt_timeout(Duration::from_secs(2))
//!     .map_err(|e| TransportError::Http(HttpError::Stream(e)));
//! let client = HttpClientBuilder::default()
//!     .set_http_middleware(tower::ServiceBuilder::new().layer(layer))
//!     .build(server.uri().to_string())?;
//!
//! let sum: i64 = client.request("sum", rpc_params![1, 2]).await?;
//! assert_eq!((sum, server.calls("sum")), (3, 2));
//! # Ok(())
//! # }
//! ```
//!
//! When the retries end, jsonrpsee returns what the last answer was to it
//! (`tests/jsonrpsee.rs`, `what_jsonrpsee_returns_when_retries_end`):
//!
//! | the last attempt | what jsonrpsee returns |
//! |---|---|
//! | a JSON-RPC error | `Error::Call` with the server's error object |
//! | a failure status, with or without a JSON-RPC error in its body (a 429 or 503 with -32005) | `Error::Transport`, a rejection with that status: jsonrpsee reads the status before the body |
//! | timed out ([`attempt_timeout`](retry::HttpRetryLayer::attempt_timeout)) | `Error::Transport`; tower's `Elapsed` is in its `source()` chain |
//! | a broken connection | `Error::Transport` holding jsonrpsee's backend error as it was (`transport::Error::Http(HttpError::Stream(e))`, `e` hyper-util's error) |
//! | a 2xx answer that is not JSON-RPC | `Error::Transport` holding what `map_err` made of the layer's [`codec::Error`] ([`is_decode`](codec::Error::is_decode)) |
//! | not over when jsonrpsee's own `request_timeout` came | `Error::RequestTimeout`, and nothing more is sent |
//!
//! So set the strategy's [`max_elapsed`](RetryStrategy::max_elapsed) below jsonrpsee's
//! `request_timeout` (60 s by default, as is the ceiling on a `Retry-After`): the layer
//! then gives up first. A wait that would end past the deadline is not started, and
//! jsonrpsee returns the server's last answer (a 429, say) rather than its own timeout;
//! an attempt still running at the deadline is cut short, as a timeout (the
//! `attempt_timeout` row above) that says how the retries ended. jsonrpsee's errors do
//! not carry the answer's extensions, so how the retries ended ([`GaveUp`]) does not
//! reach the caller: an [`on_give_up`](RetryStrategy::on_give_up) hook hears it.
//!
//! A notification's error comes wrapped once more (jsonrpsee 0.26 does so): an
//! `Error::Transport` holding the `Error` above, `Error::RequestTimeout` included
//! (`what_jsonrpsee_returns_for_a_notification_when_retries_end`).
//!
//! The client's type, to name it in a struct, is
//! `HttpClient<RpcLogger<RpcService<HttpRetry<HttpBackend, HttpBody, TransportError>>>>`
//! (jsonrpsee 0.26; [`HttpRetry`](retry::HttpRetry) is this crate's). jsonrpsee does not
//! let a caller put anything in a request's extensions, so every call follows the
//! layer's strategy, or its method's ([`RetryStrategy::for_method`]).
//!
//! # Testing your stack
//!
//! With the `test-util` feature, [`FlakyServer`] is a scripted
//! JSON-RPC server on loopback: queue [`Step`]s per method (error codes,
//! statuses with `Retry-After`, hangs, dropped connections, malformed bodies) and read
//! back what it received. It waits on tokio's clock, so under
//! `#[tokio::test(start_paused = true)]` a test of minutes of backoff runs in
//! milliseconds, and timings can be asserted exactly. Add the crate to your
//! dev-dependencies with `features = ["test-util"]`, and tokio with `features =
//! ["macros", "rt", "test-util"]`: `start_paused` needs tokio's own `test-util`, which
//! this crate's feature of the same name does not turn on.
//!
//! ```
//! use std::time::Duration;
//! use tokio::time::Instant;
//! use tower_jsonrpc_retry::backoff::PeriodicBackoff;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//! use tower_jsonrpc_retry::{Client, ErrorClass, RetryStrategy};
//!
//! # /*
//! #[tokio::test(start_paused = true)]
//! # */
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn busy_then_hanging_server_is_retried() -> Result<(), tower_jsonrpc_retry::BoxError> {
//!     let server = FlakyServer::start().await?;
//!     server.script("sum", [Step::error(2001), Step::timeout()]);
//!     let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(10)))
//!         .codes([2001])
//!         .retry_on(ErrorClass::Timeout);
//!     let client = Client::builder(server.uri())
//!         .attempt_timeout(Duration::from_secs(1))
//!         .retry(strategy)
//!         .build();
//!
//!     let start = Instant::now();
//!     assert_eq!(client.call::<i64>("sum", (1, 2)).await?, 3);
//!     assert_eq!(server.calls("sum"), 3);
//!     // 10 s wait + a 1 s timeout + 10 s wait, on the paused clock: instant in real time.
//!     assert_eq!(start.elapsed(), Duration::from_secs(21));
//!     Ok(())
//! }
//! # fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
//! #     busy_then_hanging_server_is_retried()
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tracing` | yes | `debug` events for every retry decision, target `tower_jsonrpc_retry` |
//! | `http2` | yes | HTTP/2 failures read from h2's error, for stacks that speak HTTP/2: a reset stream, a `GOAWAY` or a protocol error is [`ErrorClass::Reset`], and a stream the server reset with `REFUSED_STREAM` (not processed) before any of its answer came is sent again even for a non-idempotent method; a `GOAWAY` is not taken for proof of that. Without it h2's errors are no class (a connection closed after a `GOAWAY` is still a broken pipe, a reset). And the typed client over HTTP/2, `ClientBuilder::http2` and `http2_prior_knowledge` (their docs say what HTTP/2 changes, for a stack of your own too) |
//! | `test-util` | no | `test_util`: [`FlakyServer`] (HTTP/1.1 and HTTP/2) and [`Step`], for tests, examples and benchmarks |
//! | `rustls` | no | HTTPS for the typed client: `ClientBuilder::build_https` (rustls with its `ring` provider, Mozilla's roots from `webpki-roots`) and `build_https_with` (your own rustls configuration) |
//!
//!
//! # Public dependencies
//!
//! Types of these crates appear in this crate's API, so a release of this crate that
//! moves to a major version of one of them is a breaking release: `http` 1 (re-exported
//! as [`tower_jsonrpc_retry::http`](mod@http), so that you need no dependency of your
//! own in step with this one's), `http-body` 1, `http-body-util` 0.1 and `bytes` 1 (the
//! bodies of the HTTP services), `serde` 1 and `serde_json` 1 (params, results,
//! `Value`), `tower` 0.5, `tower-layer` and `tower-service` 0.3, `hyper-util` 0.1 (in
//! [`client::DefaultStack`]) and `hyper` 1 (`hyper::body::Incoming`, the body of the
//! answers of that stack's HTTP client, as `Client::new`'s docs name it), and with the `rustls` feature `hyper-rustls` 0.27 and
//! `rustls` 0.23 (re-exported as `client::rustls`).
//!
#![cfg_attr(feature = "test-util", doc = "[`FlakyServer`]: test_util::FlakyServer")]
#![cfg_attr(feature = "test-util", doc = "[`Step`]: test_util::Step")]
#![cfg_attr(
    not(feature = "test-util"),
    doc = "[`FlakyServer`]: https://docs.rs/tower-jsonrpc-retry/latest/tower_jsonrpc_retry/test_util/struct.FlakyServer.html"
)]
#![cfg_attr(
    not(feature = "test-util"),
    doc = "[`Step`]: https://docs.rs/tower-jsonrpc-retry/latest/tower_jsonrpc_retry/test_util/struct.Step.html"
)]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// An error type erased behind a box, as tower uses it.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower::ServiceExt;
/// use tower_jsonrpc_retry::BoxError;
/// use tower_jsonrpc_retry::jsonrpc::{Request, Response};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// // A test double for a stack whose connection is refused.
/// let down = tower::service_fn(|_: Request| async {
///     let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
///     Err::<Response, BoxError>(refused.into())
/// });
/// let call = Request::new("eth_chainId", json!([])).with_id(1);
/// let err = down.oneshot(call).await.unwrap_err();
/// assert!(err.is::<std::io::Error>());
/// # Ok(())
/// # }
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub mod backoff;
mod classify;
pub mod client;
pub mod codec;
mod fused;

/// tokio's "far future", about 30 years: `tokio::time::sleep` caps a delay there, and
/// a wait or a deadline this crate sets past it is put there too. (An end near the
/// last `Instant` would overflow in tokio's timer, which rounds a deadline up.)
pub(crate) const FAR_FUTURE: std::time::Duration =
    std::time::Duration::from_secs(86_400 * 365 * 30);
pub mod jsonrpc;
pub mod retry;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

pub use client::{Client, ClientError, ResultMismatch, RpcError};
/// The `http` crate, whose types this crate's API takes and gives (header names and
/// values, status codes, URIs, requests and responses), so that using them needs no
/// dependency of your own in step with this one's.
pub use http;
pub use retry::{
    ErrorClass, GaveUp, GiveUpEvent, GiveUpReason, InspectError, JsonRpcRetry, JsonRpcRetryLayer,
    JsonRpcRetryPolicy, RetryEvent, RetryReason, RetryStrategy,
};

/// The README's Rust blocks, compiled as doctests, so that what a reader copies from it
/// builds (the `sh` and `text` blocks are not Rust).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
