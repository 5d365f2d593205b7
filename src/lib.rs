//! JSON-RPC 2.0 over HTTP for tower, with retries that understand JSON-RPC.
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
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub mod backoff;
mod classify;
pub mod client;
pub mod codec;
pub mod jsonrpc;
pub mod retry;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

pub use client::{Client, ClientError};
pub use retry::{
    ErrorClass, InspectError, JsonRpcRetryLayer, JsonRpcRetryPolicy, RetryEvent, RetryReason,
    RetryStrategy,
};
