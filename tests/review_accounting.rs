//! Retry accounting under concurrency, at both levels: budget deposits and withdrawals,
//! give-up events, concurrency-limit permits, deadlines and readiness.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::JsonRpcCodecLayer;
use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
use tower_jsonrpc_retry::{
    GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryEvent, RetryStrategy,
};

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

/// An HTTP service in memory: answers each JSON-RPC call in the body by `answer(call,
/// n)` (n: how many times a call with this id was seen before), after `delay`.
#[derive(Clone)]
struct Mem {
    http_calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Value>>>,
    delay: Duration,
    answer: Arc<dyn Fn(&Value, usize) -> Value + Send + Sync>,
}

impl Mem {
    fn new(answer: impl Fn(&Value, usize) -> Value + Send + Sync + 'static) -> Self {
        Self {
            http_calls: Arc::default(),
            seen: Arc::default(),
            delay: Duration::ZERO,
            answer: Arc::new(answer),
        }
    }

    fn calls(&self) -> usize {
        self.http_calls.load(Ordering::SeqCst)
    }
}

/// Fails every call `fails` times with 2001, then answers 3.
fn flaky(fails: usize) -> impl Fn(&Value, usize) -> Value + Send + Sync + 'static {
    move |call, n| {
        if n < fails {
            json!({"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":call["id"]})
        } else {
            json!({"jsonrpc":"2.0","result":3,"id":call["id"]})
        }
    }
}

impl<B> Service<http::Request<B>> for Mem
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use http_body_util::BodyExt;
        self.http_calls.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        Box::pin(async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let value: Value = serde_json::from_slice(&body).unwrap();
            let answer_one = |call: &Value| {
                let mut seen = this.seen.lock().unwrap();
                let n = seen.iter().filter(|c| c["id"] == call["id"]).count();
                seen.push(call.clone());
                (this.answer)(call, n)
            };
            let out = match &value {
                Value::Array(calls) => Value::Array(calls.iter().map(answer_one).collect()),
                call => answer_one(call),
            };
            tokio::time::sleep(this.delay).await;
            Ok(http::Response::new(Full::new(Bytes::from(out.to_string()))))
        })
    }
}

/// A budget that counts deposits, withdrawals and refusals.
#[derive(Debug)]
struct Counting {
    inner: TpsBudget,
    deposits: AtomicUsize,
    withdrawals: AtomicUsize,
    refusals: AtomicUsize,
}

impl Counting {
    fn new(inner: TpsBudget) -> Arc<Self> {
        Arc::new(Self {
            inner,
            deposits: AtomicUsize::new(0),
            withdrawals: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
        })
    }

    fn roomy() -> Arc<Self> {
        Self::new(TpsBudget::new(Duration::from_secs(10), 100, 1.0))
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.deposits.load(Ordering::SeqCst),
            self.withdrawals.load(Ordering::SeqCst),
            self.refusals.load(Ordering::SeqCst),
        )
    }
}

impl Budget for Counting {
    fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::SeqCst);
        self.inner.deposit();
    }

    fn withdraw(&self) -> bool {
        let ok = self.inner.withdraw();
        if ok {
            self.withdrawals.fetch_add(1, Ordering::SeqCst);
        } else {
            self.refusals.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }
}

/// (method, id, batch_len, retries, reason) of every give-up.
type GiveUps = Arc<Mutex<Vec<(String, Option<String>, Option<usize>, u32, GiveUpReason)>>>;

fn watched(strategy: RetryStrategy) -> (RetryStrategy, Arc<AtomicUsize>, GiveUps) {
    let retries = Arc::new(AtomicUsize::new(0));
    let give_ups: GiveUps = Arc::default();
    let (r, g) = (Arc::clone(&retries), Arc::clone(&give_ups));
    let strategy = strategy
        .on_retry(move |_: &RetryEvent<'_>| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .on_give_up(move |e: &GiveUpEvent<'_>| {
            g.lock().unwrap().push((
                e.method().to_owned(),
                e.id().map(ToString::to_string),
                e.batch_len(),
                e.retries(),
                e.reason(),
            ));
        });
    (strategy, retries, give_ups)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn http_req(body: &str) -> http::Request<Full<Bytes>> {
    http::Request::post("http://127.0.0.1:1/")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

fn batch3() -> BatchRequest {
    BatchRequest::new(
        (1..=3)
            .map(|id| Request::new("sum", json!([1, 2])).with_id(id))
            .collect(),
    )
}

const BATCH3: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":2},{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":3}]"#;

/// A batch whose three calls fail once: one deposit, one withdrawal, at both levels.
#[tokio::test(start_paused = true)]
async fn a_batch_pays_once_per_exchange_at_both_levels() {
    for http_level in [false, true] {
        let mem = Mem::new(flaky(1));
        let budget = Counting::roomy();
        let (strategy, retries, give_ups) = watched(
            RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
                .codes([2001])
                .budget(budget.clone()),
        );
        if http_level {
            let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(mem.clone());
            let resp = svc.oneshot(http_req(BATCH3)).await.unwrap();
            assert_eq!(resp.status(), 200);
        } else {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy))
                .layer(JsonRpcCodecLayer::new(
                    "http://127.0.0.1:1/".parse().unwrap(),
                ))
                .service(mem.clone());
            let resp = svc.oneshot(batch3()).await.unwrap();
            assert!(resp.items().iter().all(|r| r.result() == Some(&json!(3))));
        }
        assert_eq!(mem.calls(), 2, "http_level={http_level}");
        assert_eq!(budget.counts(), (1, 1, 0), "http_level={http_level}");
        assert_eq!(retries.load(Ordering::SeqCst), 1);
        assert!(give_ups.lock().unwrap().is_empty());
    }
}

/// At the HTTP level, a call whose body came whole but whose inner service stayed busy
/// until the deadline gives up naming its call, as any JSON-RPC call given up does.
#[tokio::test(start_paused = true)]
async fn http_level_give_up_while_waiting_for_readiness_names_the_call() {
    let mut mem = Mem::new(flaky(0));
    mem.delay = secs(100.0);
    let (strategy, retries, give_ups) = watched(
        RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
            .codes([2001])
            .max_elapsed(secs(1.0)),
    );
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
        .concurrency_limit(1)
        .service(mem.clone());
    // A call with no deadline takes the only permit for 100 s.
    let mut hog = http_req(CALL);
    hog.extensions_mut().insert(RetryStrategy::none());
    let _hog = tokio::spawn(svc.clone().oneshot(hog));
    tokio::task::yield_now().await;
    assert_eq!(mem.calls(), 1);

    let err = svc.clone().call(http_req(CALL)).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert_eq!(mem.calls(), 1);
    assert_eq!(retries.load(Ordering::SeqCst), 0);
    assert_eq!(
        *give_ups.lock().unwrap(),
        [(
            "sum".to_owned(),
            Some("1".to_owned()),
            None,
            0,
            GiveUpReason::Deadline
        )]
    );
}
