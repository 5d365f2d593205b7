//! What the public types promise at compile time: layers, services, futures and errors
//! that can cross threads (`tokio::spawn`, shared clients), and client futures that
//! borrow nothing where the docs say so. A regression here fails to compile.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use tower::Service;
use tower_jsonrpc_retry::client::DefaultStack;
use tower_jsonrpc_retry::codec::{self, JsonRpcCodec, JsonRpcCodecLayer};
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::retry::future::{Delay, ResponseFuture};
use tower_jsonrpc_retry::retry::{HttpRetry, HttpRetryLayer};
use tower_jsonrpc_retry::{
    Client, ClientError, GiveUpEvent, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

fn send_sync<T: Send + Sync>() {}
fn send_only<T: Send>() {}
fn clone<T: Clone>() {}
fn send_sync_static<T: Send + Sync + 'static>(_: &T) {}

type Hyper = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;
type Codec = JsonRpcCodec<Hyper>;

#[test]
fn layers_services_futures_and_errors_cross_threads() {
    send_sync::<JsonRpcRetryLayer>();
    clone::<JsonRpcRetryLayer>();
    send_sync::<JsonRpcCodecLayer>();
    send_sync::<HttpRetryLayer<Full<Bytes>>>();
    send_sync::<DefaultStack>();
    clone::<DefaultStack>();
    send_sync::<HttpRetry<Hyper, Full<Bytes>>>();
    // The retry layer's response future is nameable, and `Send + Sync`.
    send_sync::<ResponseFuture<Codec, Request>>();
    send_sync::<ResponseFuture<Codec, BatchRequest>>();
    send_sync::<<DefaultStack as Service<Request>>::Future>();
    // The HTTP level's future is boxed: `Send`, not `Sync`.
    send_only::<<HttpRetry<Hyper, Full<Bytes>> as Service<http::Request<Full<Bytes>>>>::Future>();
    send_sync::<codec::Error>();
    send_sync::<ClientError>();
    send_sync::<tower_jsonrpc_retry::client::UnsupportedScheme>();
    send_sync::<tower_jsonrpc_retry::client::RpcError>();
    send_sync::<RetryStrategy>();
    send_sync::<Delay>();
    send_sync::<Client>();
    // What hooks are handed can be shared with other threads (the error given up on too).
    send_sync::<GiveUpEvent<'static>>();
    send_sync::<RetryEvent<'static>>();
}

/// Compiled, never run: it would need a runtime and a server. `Sync` too, as their docs
/// say for a stack whose service, future and error are.
#[allow(dead_code)]
fn client_futures(client: &Client) {
    send_sync_static(&client.call::<i64>("m", ()));
    send_sync_static(&client.notify("m", ()));
    send_sync_static(&client.request("m").params(()).send::<i64>());
    send_sync_static(&client.request("m").notify());
    send_sync_static(&client.batch().send());
    send_sync_static(&client.send(Request::new("m", serde_json::json!([])).with_id(1)));
}

/// A task awaiting the HTTP-level layer over hyper-util, with the default error type
/// (`BoxError`), can be spawned: the layer's `Service` impl asks nothing of its error type
/// that rustc cannot prove inside an `async` block (`E: 'static` made this fail with
/// "implementation of `From` is not general enough").
#[allow(dead_code)]
fn http_level_calls_in_spawned_tasks(svc: HttpRetry<Hyper, Full<Bytes>>) {
    use tower::ServiceExt;
    tokio::spawn(async move {
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let _ = svc.clone().oneshot(req).await;
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let _ = svc.oneshot(req).await;
    });
}

/// A task awaiting tower's `Buffer` over the HTTP-level layer can be spawned once the
/// layer's errors have a concrete type (`map_err`), as its docs say. With `BoxError`, rustc
/// cannot prove it `Send`, as for `Buffer` over any service whose error is `BoxError`.
#[allow(dead_code)]
fn http_level_behind_a_buffer_in_spawned_tasks(client: Hyper) {
    use common::CallError;
    use tower::{ServiceBuilder, ServiceExt};

    let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::transient());
    let svc = ServiceBuilder::new()
        .buffer(8)
        .layer(layer.map_err(CallError))
        .service(client);
    tokio::spawn(async move {
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let _ = svc.oneshot(req).await;
    });
}

/// The client's futures have names, so a struct can keep one.
#[allow(dead_code)]
struct Pending {
    call: tower_jsonrpc_retry::client::future::CallFuture<DefaultStack, u64>,
    notification: tower_jsonrpc_retry::client::future::NotifyFuture<DefaultStack>,
    batch: tower_jsonrpc_retry::client::future::BatchFuture<DefaultStack>,
    sent: tower_jsonrpc_retry::client::future::SendFuture<DefaultStack>,
}

#[allow(dead_code)]
fn pending(client: &Client) -> Pending {
    Pending {
        call: client.call("m", ()),
        notification: client.notify("m", ()),
        batch: client.batch().send(),
        sent: client.send(Request::new("m", serde_json::json!([])).with_id(1)),
    }
}

/// The built-ins' cap getter is callable with `BackoffExt` in scope (a glob import, as
/// the docs use): it is not shadowed by the combinator of a similar name.
#[test]
fn the_cap_getter_is_not_shadowed_by_the_combinator() {
    use std::time::Duration;
    use tower_jsonrpc_retry::backoff::*;
    let b = ExponentialBackoff::default().with_max_delay(Duration::from_secs(3));
    assert_eq!(b.cap(), Some(Duration::from_secs(3)));
    assert_eq!(
        FibonacciBackoff::default().cap(),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        PeriodicBackoff::default()
            .max_delay(Duration::ZERO)
            .delays()
            .next(),
        Some(Duration::ZERO)
    );
}

/// A service that is not `Unpin`, with a future that is.
#[derive(Clone)]
struct NotUnpin(std::marker::PhantomPinned);

impl Service<Request> for NotUnpin {
    type Response = tower_jsonrpc_retry::jsonrpc::Response;
    type Error = tower_jsonrpc_retry::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        std::future::ready(Err("unused".into()))
    }
}

impl Service<BatchRequest> for NotUnpin {
    type Response = tower_jsonrpc_retry::jsonrpc::BatchResponse;
    type Error = tower_jsonrpc_retry::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: BatchRequest) -> Self::Future {
        std::future::ready(Err("unused".into()))
    }
}

fn unpin<T: Unpin>(_: &T) {}

/// Compiled, never run: the client's futures are `Unpin` when the service's future is,
/// whatever the service, as their docs say.
#[allow(dead_code)]
fn client_futures_are_unpin_when_the_services_future_is(client: &Client<NotUnpin>) {
    unpin(&client.call::<i64>("m", ()));
    unpin(&client.notify("m", ()));
    unpin(&client.batch().send());
    unpin(&client.send(Request::new("m", serde_json::json!([])).with_id(1)));
}
