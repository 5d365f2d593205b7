//! A JSON-RPC call over hyper-util's client, written by hand: the stack's crates, used.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = serde_json::json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1});
    let req =
        http::Request::post("http://127.0.0.1:1/").body(Full::from(serde_json::to_vec(&body)?))?;
    let svc = tower::ServiceBuilder::new()
        .timeout(std::time::Duration::from_secs(1))
        .service(client);
    match tower::ServiceExt::oneshot(svc, req).await {
        Ok(resp) => tracing::info!(bytes = resp.into_body().collect().await?.to_bytes().len()),
        Err(err) => tracing::info!(%err),
    }
    Ok(())
}
