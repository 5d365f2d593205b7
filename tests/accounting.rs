//! Retry accounting under concurrency, at both levels: budget deposits and withdrawals,
//! give-up events, concurrency-limit permits, deadlines and readiness.

mod common;

use common::{TestBody, watched};
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
use tower_jsonrpc_retry::{GiveUpReason, JsonRpcRetryLayer, RetryStrategy};

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

/// How [`Mem`] answers a call, given how many times it saw that id before.
type Answer = dyn Fn(&Value, usize) -> Value + Send + Sync;

/// An HTTP service in memory: answers each JSON-RPC call in the body by `answer(call,
/// n)` (n: how many times a call with this id was seen before), after `delay`.
#[derive(Clone)]
struct Mem {
    http_calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Value>>>,
    delay: Duration,
    answer: Arc<Answer>,
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

/// A batch whose three calls fail once: one deposit, one withdrawal, at both levels
/// (`RetryStrategy::budget`: a batch counts as one call, each re-send as one retry).
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

/// At the HTTP level over a concurrency limit of one: a call dropped while its body is
/// uploaded, while it waits to retry, or while an attempt is in flight gives the permit
/// back, sends nothing more and takes nothing more from the budget.
#[tokio::test(start_paused = true)]
async fn http_level_dropped_calls_give_their_permit_back() {
    let mut mem = Mem::new(flaky(1));
    mem.delay = secs(0.5);
    let budget = Counting::roomy();
    let (strategy, retries, give_ups) = watched(
        RetryStrategy::new(PeriodicBackoff::new(3, secs(10.0)))
            .codes([2001])
            .budget(budget.clone()),
    );
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http::<TestBody>(strategy))
        .concurrency_limit(1)
        .service(mem.clone());
    let body = |b: TestBody| http::Request::post("http://127.0.0.1:1/").body(b).unwrap();

    // 1. Dropped mid-upload (it holds the permit meanwhile).
    let upload = tokio::spawn(svc.clone().oneshot(body(TestBody::Stalled)));
    tokio::time::sleep(secs(1.0)).await;
    upload.abort();
    let _ = upload.await;
    assert_eq!(mem.calls(), 0);
    assert_eq!(budget.counts(), (0, 0, 0));

    // 2. Dropped while waiting 10 s to retry.
    let waiting = tokio::spawn(
        svc.clone()
            .oneshot(body(TestBody::from(CALL.as_bytes().to_vec()))),
    );
    tokio::time::sleep(secs(1.0)).await;
    assert_eq!(mem.calls(), 1);
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    waiting.abort();
    let _ = waiting.await;

    // 3. Dropped mid-attempt.
    let in_flight = tokio::spawn(
        svc.clone().oneshot(body(TestBody::from(
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7}"#
                .as_bytes()
                .to_vec(),
        ))),
    );
    tokio::time::sleep(secs(0.1)).await;
    assert_eq!(mem.calls(), 2);
    in_flight.abort();
    let _ = in_flight.await;

    tokio::time::sleep(secs(3600.0)).await;
    assert_eq!(mem.calls(), 2, "nothing more sent");
    assert_eq!(budget.counts(), (2, 1, 0));
    assert_eq!(retries.load(Ordering::SeqCst), 1);
    assert!(give_ups.lock().unwrap().is_empty());

    // The permit is free: a call goes through at once (id 9 fails once, then succeeds).
    let resp = tokio::time::timeout(
        secs(11.0),
        svc.clone().oneshot(body(TestBody::from(
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":9}"#
                .as_bytes()
                .to_vec(),
        ))),
    )
    .await
    .expect("the permit was given back")
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mem.calls(), 4);
    assert_eq!(budget.counts(), (3, 2, 0));
}

/// A budget that allows `n` withdrawals, and counts deposits.
#[derive(Debug)]
struct Allow {
    left: AtomicUsize,
    deposits: AtomicUsize,
    asked: AtomicUsize,
}

impl Allow {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(n),
            deposits: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
        })
    }
}

impl Budget for Allow {
    fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::SeqCst);
    }

    fn withdraw(&self) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A batch whose calls 1 and 3 keep failing, with a budget of one retry: one retry of
/// the two, then a give-up for the budget, with every call's latest answer, at both
/// levels.
#[tokio::test(start_paused = true)]
async fn a_budget_exhausted_mid_batch_keeps_every_answer_at_both_levels() {
    for http_level in [false, true] {
        let mem = Mem::new(|call, _| {
            if call["id"] == 2 {
                json!({"jsonrpc":"2.0","result":3,"id":2})
            } else {
                json!({"jsonrpc":"2.0","error":{"code":2001,"message":"busy"},"id":call["id"]})
            }
        });
        let budget = Allow::new(1);
        let (strategy, retries, give_ups) = watched(
            RetryStrategy::new(PeriodicBackoff::new(3, secs(1.0)))
                .codes([2001])
                .budget(budget.clone()),
        );
        let items: Vec<Value> = if http_level {
            let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy).layer(mem.clone());
            let resp = svc.oneshot(http_req(BATCH3)).await.unwrap();
            use http_body_util::BodyExt;
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice(&body).unwrap()
        } else {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy))
                .layer(JsonRpcCodecLayer::new(
                    "http://127.0.0.1:1/".parse().unwrap(),
                ))
                .service(mem.clone());
            let resp = svc.oneshot(batch3()).await.unwrap();
            resp.items()
                .iter()
                .map(|r| serde_json::to_value(r).unwrap())
                .collect()
        };
        let mut ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3], "http_level={http_level}: {items:?}");
        assert_eq!(mem.calls(), 2, "http_level={http_level}");
        assert_eq!(budget.deposits.load(Ordering::SeqCst), 1);
        assert_eq!(budget.asked.load(Ordering::SeqCst), 2);
        assert_eq!(retries.load(Ordering::SeqCst), 1);
        assert_eq!(
            *give_ups.lock().unwrap(),
            [(
                "sum".to_owned(),
                Some("1".to_owned()),
                Some(2),
                1,
                GiveUpReason::Budget
            )],
            "http_level={http_level}"
        );
    }
}

/// A request's own strategy replaces the default's budget and hooks entirely, at both
/// levels: the default's budget sees no deposit, its hooks no event.
#[tokio::test(start_paused = true)]
async fn a_requests_own_strategy_pays_from_its_own_budget_at_both_levels() {
    for http_level in [false, true] {
        let mem = Mem::new(flaky(5));
        let default_budget = Counting::roomy();
        let own_budget = Allow::new(2);
        let (default, default_retries, default_give_ups) = watched(
            RetryStrategy::new(PeriodicBackoff::new(9, secs(1.0)))
                .codes([2001])
                .budget(default_budget.clone()),
        );
        let (own, own_retries, own_give_ups) = watched(
            RetryStrategy::new(PeriodicBackoff::new(9, secs(1.0)))
                .codes([2001])
                .budget(own_budget.clone()),
        );
        if http_level {
            let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(default).layer(mem.clone());
            let mut req = http_req(CALL);
            req.extensions_mut().insert(own);
            let resp = svc.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
        } else {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(default))
                .layer(JsonRpcCodecLayer::new(
                    "http://127.0.0.1:1/".parse().unwrap(),
                ))
                .service(mem.clone());
            let mut req = Request::new("sum", json!([1, 2])).with_id(1);
            req.extensions_mut().insert(own);
            let resp = svc.oneshot(req).await.unwrap();
            assert_eq!(resp.error().map(|e| e.code()), Some(2001));
        }
        assert_eq!(mem.calls(), 3, "http_level={http_level}");
        assert_eq!(default_budget.counts(), (0, 0, 0));
        assert_eq!(default_retries.load(Ordering::SeqCst), 0);
        assert!(default_give_ups.lock().unwrap().is_empty());
        assert_eq!(own_budget.deposits.load(Ordering::SeqCst), 1);
        assert_eq!(own_budget.asked.load(Ordering::SeqCst), 3);
        assert_eq!(own_retries.load(Ordering::SeqCst), 2);
        assert_eq!(
            *own_give_ups.lock().unwrap(),
            [(
                "sum".to_owned(),
                Some("1".to_owned()),
                None,
                2,
                GiveUpReason::Budget
            )]
        );
    }
}

/// 200 calls at once on a multi-thread runtime, through a concurrency limit of two below
/// the layer, each failing once: exactly two attempts per call, one deposit and one
/// withdrawal per call, one retry event each and no give-up, at both levels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_a_multi_thread_runtime_are_counted_exactly() {
    const N: usize = 200;
    for http_level in [false, true] {
        let mem = Mem::new(flaky(1));
        // Room for every retry: a reserve larger than the calls.
        let budget = Counting::new(TpsBudget::new(Duration::from_secs(10), 1_000, 1.0));
        let (strategy, retries, give_ups) = watched(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
                .codes([2001])
                .budget(budget.clone())
                .max_elapsed(secs(60.0)),
        );
        let mut tasks = tokio::task::JoinSet::new();
        if http_level {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(strategy))
                .concurrency_limit(2)
                .service(mem.clone());
            for id in 0..N {
                let body =
                    format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":{id}}}"#);
                let svc = svc.clone();
                tasks.spawn(async move {
                    let resp = svc.oneshot(http_req(&body)).await.unwrap();
                    assert_eq!(resp.status(), 200);
                });
            }
        } else {
            let svc = ServiceBuilder::new()
                .layer(JsonRpcRetryLayer::new(strategy))
                .layer(JsonRpcCodecLayer::new(
                    "http://127.0.0.1:1/".parse().unwrap(),
                ))
                .concurrency_limit(2)
                .service(mem.clone());
            for id in 0..N {
                let svc = svc.clone();
                tasks.spawn(async move {
                    let req = Request::new("sum", json!([1, 2])).with_id(id as i64);
                    let resp = svc.oneshot(req).await.unwrap();
                    assert_eq!(resp.result(), Some(&json!(3)));
                });
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(mem.calls(), 2 * N, "http_level={http_level}");
        assert_eq!(budget.counts(), (N, N, 0), "http_level={http_level}");
        assert_eq!(retries.load(Ordering::SeqCst), N);
        assert!(give_ups.lock().unwrap().is_empty());
    }
}

/// lib.rs, "Budgets": one budget given to two retry layers, one inside the other, lets
/// about twice its ratio through, as the inner layer deposits once per attempt of the
/// outer one. 1,000 calls that always fail, 3 retries each at most, a budget of 10 %
/// with no reserve: 1,100 attempts under one layer, 1,200 under two.
#[tokio::test(start_paused = true)]
async fn one_budget_given_to_nested_layers_lets_about_twice_its_ratio_through() {
    let attempts = |nested: bool| async move {
        let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 0, 0.1));
        let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::ZERO))
            .codes([2001])
            .budget(budget);
        let http = Mem::new(flaky(usize::MAX));
        let codec =
            JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap()).layer(http.clone());
        let inner = JsonRpcRetryLayer::new(strategy.clone()).layer(codec);
        for id in 0..1_000 {
            let call = Request::new("sum", json!([1, 2])).with_id(id);
            let answer = if nested {
                JsonRpcRetryLayer::new(strategy.clone())
                    .layer(inner.clone())
                    .oneshot(call)
                    .await
            } else {
                inner.clone().oneshot(call).await
            };
            assert!(answer.unwrap().is_error());
        }
        http.calls()
    };
    assert_eq!(attempts(false).await, 1_100);
    assert_eq!(attempts(true).await, 1_200);
}
