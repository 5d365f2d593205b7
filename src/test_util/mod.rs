//! A scripted loopback JSON-RPC server for tests: [`FlakyServer`], driven by [`Step`]s.
//!
//! The server answers JSON-RPC 2.0 over HTTP/1.1 and HTTP/2 on `127.0.0.1`, and fails
//! on demand: error responses, HTTP statuses with `Retry-After`, delays and hangs,
//! dropped connections, truncated, malformed and oversized bodies, or any raw response.
//! It records what it receives, so a test can assert how many attempts a retry policy
//! made and what each one sent. It runs on tokio's clock, so tests can pause time.
//!
//! [`Chaos`] turns on seeded random [`Fault`]s at given rates, and
//! [`FlakyServer::log`] tells, call by call, what the server did ([`LogEntry`]).
//!
//! Available with the `test-util` feature.
//!
//! # Examples
//!
//! A call that fails twice, then succeeds:
//!
//! ```
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower_jsonrpc_retry::http;
//! use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FlakyServer::start().await?;
//! server.script("sum", [Step::status(503).retry_after("1"), Step::timeout()]);
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let call = || {
//!     http::Request::post(server.uri())
//!         .body(Full::from(r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#))
//! };
//!
//! let first = client.request(call()?).await?;
//! assert_eq!(first.status(), 503);
//! assert_eq!(first.headers()["retry-after"], "1");
//!
//! let second = tokio::time::timeout(Duration::from_secs(5), client.request(call()?)).await;
//! assert!(second.is_err(), "the call hangs until the client gives up");
//!
//! let third = client.request(call()?).await?;
//! let body = third.into_body().collect().await?.to_bytes();
//! let answer: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(answer, serde_json::json!({"jsonrpc": "2.0", "result": 3, "id": 1}));
//! assert_eq!(server.calls("sum"), 3);
//! # Ok(())
//! # }
//! ```

mod body;
mod chaos;
mod dispatch;
mod methods;
mod server;
mod step;

pub use chaos::{Chaos, Fault, LogEntry};
pub use server::FlakyServer;
pub use step::Step;
