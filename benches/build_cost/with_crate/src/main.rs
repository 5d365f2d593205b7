//! The same call through this crate's typed client (its default stack: codec, retry
//! layer, hyper-util's client).

use tower_jsonrpc_retry::{Client, RetryStrategy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::builder("http://127.0.0.1:1/".parse()?)
        .retry(RetryStrategy::transient())
        .build();
    match client.call::<u64>("sum", serde_json::json!([1, 2])).await {
        Ok(sum) => tracing::info!(sum),
        Err(err) => tracing::info!(%err),
    }
    Ok(())
}
