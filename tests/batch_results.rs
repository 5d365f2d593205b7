//! `BatchResults::take` with calls that share an id (a fixed id generator over a stack
//! without the codec's duplicate check): each handle gets its own call's answer, in any
//! take order, whether the answers come one per call in call order or not (one left
//! out, one sent last).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::json;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{JsonRpcCodec, JsonRpcCodecLayer};
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, ErrorObject, Id, Request, Response,
};
use tower_jsonrpc_retry::{Client, JsonRpcRetry, JsonRpcRetryLayer, RetryStrategy};
use tower_service::Service;

/// Echoes each call's method under its id, in call order, except that it answers
/// nothing to method "dropped" and sends the answer to method "last" after all the
/// others (a server free to order its answers).
#[derive(Clone)]
struct Skewed;

impl Service<Request> for Skewed {
    type Response = Response;
    type Error = Infallible;
    type Future = Ready<Result<Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request) -> Self::Future {
        ready(Ok(Response::success(
            req.id().cloned().unwrap_or(Id::Null),
            json!(req.method()),
        )))
    }
}

impl Service<BatchRequest> for Skewed {
    type Response = BatchResponse;
    type Error = Infallible;
    type Future = Ready<Result<BatchResponse, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, batch: BatchRequest) -> Self::Future {
        let answer = |r: &Request| Some(Response::success(r.id()?.clone(), json!(r.method())));
        let calls = batch.requests().iter();
        let mut items: Vec<Response> = calls
            .clone()
            .filter(|r| r.method() != "dropped" && r.method() != "last")
            .filter_map(answer)
            .collect();
        items.extend(calls.filter(|r| r.method() == "last").filter_map(answer));
        ready(Ok(BatchResponse::new(items)))
    }
}

/// Ids "other", then "fixed" for every later call.
fn client() -> Client<Skewed> {
    let n = Arc::new(AtomicUsize::new(0));
    Client::new(Skewed).with_id_generator(move || {
        if n.fetch_add(1, Ordering::Relaxed) == 0 {
            Id::from("other")
        } else {
            Id::from("fixed")
        }
    })
}

/// One answer left out: the calls after it, sharing an id, still get their own answers
/// when taken in call order (as before the index lookup).
#[tokio::test]
async fn a_dropped_answer_does_not_shift_calls_sharing_an_id() {
    let client = client();
    let mut batch = client.batch();
    let dropped = batch.call::<String>("dropped", ());
    let a = batch.call::<String>("a", ());
    let b = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert!(results.take(dropped).is_err());
    assert_eq!(results.take(a).unwrap(), "a");
    assert_eq!(results.take(b).unwrap(), "b");
}

/// Answers out of call order: calls sharing an id, taken in call order, still get their
/// own answers (as before the index lookup).
#[tokio::test]
async fn reordered_answers_do_not_swap_calls_sharing_an_id() {
    let client = client();
    let mut batch = client.batch();
    let last = batch.call::<String>("last", ());
    let a = batch.call::<String>("a", ());
    let b = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(last).unwrap(), "last");
    assert_eq!(results.take(a).unwrap(), "a");
    assert_eq!(results.take(b).unwrap(), "b");
}

/// Answers out of call order, to calls sharing an id: a call whose result is not of its
/// type keeps its answer, and the next call sharing the id still gets its own (it was
/// handed the first call's again, and its own was never handed out); taken in any order.
#[tokio::test]
async fn a_result_of_the_wrong_type_leaves_the_next_call_sharing_its_id_its_own_answer() {
    let client = client();
    let mut batch = client.batch();
    let last = batch.call::<String>("last", ());
    let a = batch.call::<u64>("a", ());
    let b = batch.call::<String>("b", ());
    let c = batch.call::<String>("c", ());
    let mut results = batch.send().await.unwrap();
    assert!(results.take(a).is_err(), "a string, not a u64");
    assert_eq!(results.take(c).unwrap(), "c");
    assert_eq!(results.take(b).unwrap(), "b");
    assert_eq!(results.take(last).unwrap(), "last");
    let left: Vec<_> = results.into_responses();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].result(), Some(&json!("a")), "the answer stays a's");
}

/// Two calls of a batch share an id (a fixed id generator over a stack without the
/// codec's duplicate check): both answers are in `BatchResults`, and each `take` gets
/// one, in call order.
#[tokio::test]
async fn batch_items_sharing_an_id_each_take_their_answer() {
    let client = Client::new(Skewed).with_id_generator(|| Id::from("fixed"));
    let mut batch = client.batch();
    let first = batch.call::<String>("a", ());
    let second = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(first).unwrap(), "a");
    let b = results.take(second);
    assert!(matches!(&b, Ok(m) if m == "b"), "{b:?}");
    assert!(results.into_responses().is_empty());
}

/// Each handle takes its own call's answer, whatever the order of the takes (calls that
/// share an id included).
#[tokio::test]
async fn a_batch_handle_gets_its_own_calls_answer_whatever_the_take_order() {
    let client = Client::new(Skewed).with_id_generator(|| Id::from("fixed"));
    let mut batch = client.batch();
    let first = batch.call::<String>("a", ());
    let second = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(second).unwrap(), "b");
    assert_eq!(results.take(first).unwrap(), "a");
}

/// Two clients (or one id generator of the user's) give calls of two batches the same
/// id: a handle from one batch takes nothing from the other's results, in call order or
/// not, and the answer stays for the handle it belongs to.
#[tokio::test]
async fn a_handle_from_another_batch_sharing_its_id_takes_nothing() {
    for method in ["a", "last"] {
        // Each counts its ids from 0, as two clients of the crate count theirs from 1.
        let counting = || {
            let n = Arc::new(AtomicUsize::new(0));
            Client::new(Skewed)
                .with_id_generator(move || Id::from(n.fetch_add(1, Ordering::Relaxed) as i64))
        };
        let (reads, writes) = (counting(), counting());
        let mut theirs = reads.batch();
        let stranger = theirs.call::<String>("stranger", ());
        let mut batch = writes.batch();
        let own = batch.call::<String>(method, ());
        let _also = batch.call::<String>("b", ());
        let mut results = batch.send().await.unwrap();
        let taken = results.take(stranger);
        assert!(
            matches!(&taken, Err(tower_jsonrpc_retry::ClientError::MissingItem(id)) if id == &Id::from(0)),
            "{method}: {taken:?}"
        );
        assert_eq!(results.take(own).unwrap(), method);
    }
}

/// Answers out of call order, none taken: `into_responses` gives them in call order,
/// as it says, not in the order the service sent them.
#[tokio::test]
async fn untaken_responses_come_back_in_call_order() {
    let client = Client::new(Skewed);
    let mut batch = client.batch();
    let _last = batch.call::<String>("last", ());
    let _a = batch.call::<String>("a", ());
    batch.notify("note", ());
    let b = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(b).unwrap(), "b");
    let methods: Vec<_> = results
        .into_responses()
        .into_iter()
        .map(|r| r.into_result().unwrap())
        .collect();
    assert_eq!(methods, [json!("last"), json!("a")]);
}

/// A result taken as the wrong type stays its call's, out of call order too:
/// `into_responses` still gives it in call order (it came after the others before).
#[tokio::test]
async fn a_result_of_the_wrong_type_keeps_its_place_out_of_call_order() {
    let client = Client::new(Skewed);
    let mut batch = client.batch();
    let last = batch.call::<u64>("last", ());
    let _a = batch.call::<String>("a", ());
    let _b = batch.call::<String>("b", ());
    let mut results = batch.send().await.unwrap();
    assert!(results.take(last).is_err(), "a string, not a u64");
    let methods: Vec<_> = results
        .into_responses()
        .into_iter()
        .map(|r| r.into_result().unwrap())
        .collect();
    assert_eq!(methods, [json!("last"), json!("a"), json!("b")]);
}

/// Answers each call of a batch with its method, except the first call of the first
/// exchange, which gets -32005 (a rate limit a strategy retries).
fn limited_once(batch: &BatchRequest, first_exchange: bool) -> BatchResponse {
    let items = batch
        .requests()
        .iter()
        .filter_map(|r| r.id().map(|id| (id.clone(), r.method())))
        .enumerate()
        .map(|(i, (id, method))| match (first_exchange, i) {
            (true, 0) => Response::failure(id, ErrorObject::new(-32005, "limited")),
            _ => Response::success(id, json!(method)),
        })
        .collect();
    BatchResponse::new(items)
}

/// Two calls, `a` and `b`, that share the id `"fixed"`.
fn sharing_an_id() -> BatchRequest {
    BatchRequest::new(vec![
        Request::new("a", json!([])).with_id("fixed"),
        Request::new("b", json!([])).with_id("fixed"),
    ])
}

/// Calls that share an id (a service without the codec, which refuses such a batch):
/// an answer cannot be told to be one call's and not the other's, so no answer decides
/// a retry. Before, both calls were sent again (the one that succeeded ran twice), and
/// both new answers went into the first call's place.
#[tokio::test(start_paused = true)]
async fn calls_sharing_an_id_are_not_retried_on_their_answers() {
    let exchanges = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&exchanges);
    let service = tower::service_fn(move |batch: BatchRequest| {
        let first_exchange = count.fetch_add(1, Ordering::SeqCst) == 0;
        ready(Ok::<_, Infallible>(limited_once(&batch, first_exchange)))
    });
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1))).codes([-32005]);
    let svc = JsonRpcRetryLayer::new(strategy).layer(service);
    let resp = ServiceExt::<BatchRequest>::oneshot(svc, sharing_an_id())
        .await
        .unwrap();
    assert_eq!(exchanges.load(Ordering::SeqCst), 1, "nothing is sent again");
    let answers: Vec<_> = resp
        .items()
        .iter()
        .map(|r| r.payload().map_err(|e| e.code()).cloned())
        .collect();
    assert_eq!(answers, [Err(-32005), Ok(json!("b"))], "as they came");
}

/// lib.rs "Batches": calls that share an id are not retried on their answers, but a
/// transport failure (nothing answered) still sends the batch again, whole.
#[tokio::test(start_paused = true)]
async fn calls_sharing_an_id_are_retried_on_a_transport_failure() {
    let exchanges = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&exchanges);
    let service = tower::service_fn(move |batch: BatchRequest| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        ready(if n == 0 {
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        } else {
            let items = batch
                .requests()
                .iter()
                .map(|r| Response::success(r.id().unwrap().clone(), json!(r.method())))
                .collect();
            Ok(BatchResponse::new(items))
        })
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
        .retry_on(tower_jsonrpc_retry::ErrorClass::Reset);
    let svc = JsonRpcRetryLayer::new(strategy).layer(service);
    let resp = ServiceExt::<BatchRequest>::oneshot(svc, sharing_an_id())
        .await
        .unwrap();
    assert_eq!(exchanges.load(Ordering::SeqCst), 2);
    let methods: Vec<_> = resp.items().iter().map(|r| r.result().cloned()).collect();
    assert_eq!(methods, [Some(json!("a")), Some(json!("b"))]);
}

/// `batch_error` means the whole batch was refused and every call carries the refusal:
/// after a partial retry whose re-send of some calls is refused as a whole, it is not
/// set, as the other calls keep the answers they had.
#[tokio::test(start_paused = true)]
async fn a_refused_re_send_of_some_calls_is_no_batch_error() {
    use bytes::Bytes;
    use http_body_util::Full;
    let exchanges = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&exchanges);
    let http = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        let body: &'static [u8] = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            LIMITED_2.as_bytes()
        } else {
            br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"refused"},"id":null}"#
        };
        ready(Ok::<_, Infallible>(http::Response::new(Full::new(
            Bytes::from_static(body),
        ))))
    });
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100))).codes([-32005]);
    let (resp, _) = two_sums(strategy, http).await;
    assert_eq!(exchanges.load(Ordering::SeqCst), 2);
    assert_eq!(resp.batch_error(), None);
    let answers: Vec<_> = resp
        .items()
        .iter()
        .map(|r| (r.result().cloned(), r.error().map(|e| e.code())))
        .collect();
    assert_eq!(answers, [(Some(json!(10)), None), (None, Some(-32000))]);
}

/// The stack of the tests below: the retry layer (`retries` retries on -32005, `log`
/// non-idempotent when `hold_log`), `layers` times over, over the codec over an HTTP
/// service answering its exchanges in turn with `bodies` (the last one again after
/// them); with the bodies each exchange sent.
async fn exchanged(
    bodies: &'static [&'static str],
    retries: usize,
    layers: usize,
    hold_log: bool,
    batch: Vec<Request>,
) -> (BatchResponse, Vec<serde_json::Value>) {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::sync::Mutex;
    use tower::util::BoxCloneSyncService;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sent);
    let http = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let seen = Arc::clone(&seen);
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(serde_json::from_slice(&body).unwrap());
                seen.len() - 1
            };
            let answer = bodies[n.min(bodies.len() - 1)];
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                answer.as_bytes(),
            ))))
        }
    });
    let mut strategy =
        RetryStrategy::new(PeriodicBackoff::new(retries, Duration::from_millis(100)))
            .codes([-32005]);
    if hold_log {
        strategy = strategy.non_idempotent(["log"]);
    }
    let mut svc: BoxCloneSyncService<BatchRequest, BatchResponse, tower_jsonrpc_retry::BoxError> =
        BoxCloneSyncService::new(tower::util::MapErr::new(
            retrying(strategy.clone(), http),
            |e: tower_jsonrpc_retry::codec::Error| -> tower_jsonrpc_retry::BoxError { e.into() },
        ));
    for _ in 1..layers {
        svc = BoxCloneSyncService::new(JsonRpcRetryLayer::new(strategy.clone()).layer(svc));
    }
    let resp = svc.oneshot(BatchRequest::new(batch)).await.unwrap();
    let sent = sent.lock().unwrap().clone();
    (resp, sent)
}

const ANSWERED: &str = r#"[{"jsonrpc":"2.0","result":1,"id":1}]"#;

/// The batch of the tests below: a call of `sum`, id 1, and a notification of `log`.
fn batch() -> Vec<Request> {
    vec![
        Request::new("sum", json!([1])).with_id(1),
        Request::new("log", json!(["x"])),
    ]
}

/// How many times the exchanges sent `log`.
fn logs_sent(sent: &[serde_json::Value]) -> usize {
    sent.iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        .filter(|r| r["method"] == "log")
        .count()
}

/// Call 1 answered, call 2 rate limited.
const LIMITED_2: &str = r#"[{"jsonrpc":"2.0","result":10,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;

const LIMITED_1: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}]"#;
const REFUSED: &str = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":null}"#;

/// A batch whose first exchange the server answered, its notification run, and whose
/// re-send of every call (here its one call) is then refused as a whole: that refusal is
/// not the whole batch's (`batch_error`), as the server ran the notification. Under a
/// second retry layer, which reads a `batch_error` as a refusal of everything, the
/// notification is then neither sent again (it ran) nor reported as never run.
#[tokio::test(start_paused = true)]
async fn a_refused_re_send_of_every_call_after_a_notification_ran_is_no_batch_error() {
    let (resp, sent) = exchanged(&[LIMITED_1, REFUSED], 1, 1, false, batch()).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].as_array().map(Vec::len),
        Some(1),
        "the call alone: {sent:?}"
    );
    assert_eq!(resp.batch_error(), None);
    assert_eq!(resp.items()[0].error().map(ErrorObject::code), Some(-32005));

    for hold_log in [false, true] {
        let (resp, sent) =
            exchanged(&[LIMITED_1, REFUSED, ANSWERED], 1, 2, hold_log, batch()).await;
        assert_eq!(logs_sent(&sent), 1, "the notification ran once: {sent:?}");
        assert!(resp.unmatched().is_empty(), "{:?}", resp.unmatched());
        assert_eq!(resp.items()[0].result(), Some(&json!(1)));
    }
}

/// Under two retry layers, a non-idempotent notification the inner layer held back
/// after a refusal of the whole batch (and reported so, in `unmatched`) is reported once,
/// not again by the outer layer, which reads the inner layer's last refusal as the
/// batch's: whether the server's refusals are the same or differ (a rate limiter's
/// count in `data`).
#[tokio::test(start_paused = true)]
async fn a_held_back_notification_is_reported_once_under_two_layers() {
    const REFUSED_AGAIN: &str = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited","data":{"current_rps":13.3}},"id":null}"#;
    for again in [REFUSED, REFUSED_AGAIN] {
        let bodies: &'static [&'static str] = match again {
            REFUSED => &[REFUSED, LIMITED_1, REFUSED, ANSWERED],
            _ => &[REFUSED, LIMITED_1, REFUSED_AGAIN, ANSWERED],
        };
        let (resp, sent) = exchanged(bodies, 2, 2, true, batch()).await;
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert_eq!(
            logs_sent(&sent),
            1,
            "held back after the first refusal: {sent:?}"
        );
        assert_eq!(resp.items()[0].result(), Some(&json!(1)));
        assert_eq!(resp.unmatched().len(), 1, "{:?}", resp.unmatched());
        assert_eq!(
            resp.unmatched()[0].error().map(ErrorObject::code),
            Some(-32005)
        );
    }
}

/// …but a batch refused as a whole in every exchange (its non-idempotent call settled
/// after the first, the rest re-sent and refused again) keeps `batch_error`: every call
/// carries a refusal, and the server ran nothing.
#[tokio::test(start_paused = true)]
async fn a_batch_refused_whole_in_every_exchange_keeps_its_batch_error() {
    use bytes::Bytes;
    use http_body_util::Full;
    let exchanges = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&exchanges);
    let http = tower::service_fn(move |_: http::Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        ready(Ok::<_, Infallible>(http::Response::new(Full::new(
            Bytes::from_static(
                br#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":null}"#,
            ),
        ))))
    });
    let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100)))
        .codes([-32005])
        .non_idempotent(["send"]);
    let svc = retrying(strategy, http);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1])).with_id(1),
        Request::new("send", json!([2])).with_id(2),
        Request::new("log", json!([3])),
    ]);
    let resp: BatchResponse = svc.oneshot(batch).await.unwrap();
    assert_eq!(exchanges.load(Ordering::SeqCst), 3);
    assert_eq!(resp.batch_error().map(ErrorObject::code), Some(-32005));
    assert!(
        resp.items()
            .iter()
            .all(|r| r.error().map(ErrorObject::code) == Some(-32005))
    );
}

/// An HTTP service ready for its first request only; its readiness fails after (a
/// closed `Buffer`, say), so a re-send provably never reaches the server. Its one answer
/// has call 1's result, call 2 rate limited, and `Retry-After` of its seconds.
#[derive(Clone)]
struct ClosesAfterOne(Arc<AtomicUsize>, &'static str);

impl Service<http::Request<http_body_util::Full<bytes::Bytes>>> for ClosesAfterOne {
    type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
    type Error = std::io::Error;
    type Future = Ready<Result<Self::Response, std::io::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        match self.0.load(Ordering::SeqCst) {
            0 => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(std::io::Error::other("closed"))),
        }
    }
    fn call(&mut self, _: http::Request<http_body_util::Full<bytes::Bytes>>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        let body = LIMITED_2.as_bytes();
        let mut resp =
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(body)));
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static(self.1),
        );
        ready(Ok(resp))
    }
}

/// The retry layer with `strategy` over the codec over `http`, a server the test plays
/// itself (the codec's URI is never dialled).
fn retrying<S>(strategy: RetryStrategy, http: S) -> JsonRpcRetry<JsonRpcCodec<S>> {
    JsonRpcRetryLayer::new(strategy)
        .layer(JsonRpcCodecLayer::new("http://127.0.0.1:1/".parse().unwrap()).layer(http))
}

/// Calls 1 and 2 of `sum` through the retry layer with `strategy` over the codec over
/// `http`: the answers, and how long they took.
async fn two_sums<S, E>(strategy: RetryStrategy, http: S) -> (BatchResponse, Duration)
where
    S: Service<
            http::Request<http_body_util::Full<bytes::Bytes>>,
            Response = http::Response<http_body_util::Full<bytes::Bytes>>,
            Error = E,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let svc = retrying(strategy, http);
    let batch = BatchRequest::new(vec![
        Request::new("sum", json!([1])).with_id(1),
        Request::new("sum", json!([2])).with_id(2),
    ]);
    let start = tokio::time::Instant::now();
    let resp = svc.oneshot(batch).await.unwrap();
    (resp, start.elapsed())
}

/// The `Retry-After` on call 2's answer, rate limited (-32005), and on the whole batch.
fn limited_hints(resp: &BatchResponse) -> (Option<Duration>, Option<Duration>) {
    use tower_jsonrpc_retry::codec::RetryAfter;
    let limited = &resp.items()[1];
    assert_eq!(limited.error().map(ErrorObject::code), Some(-32005));
    let hint = |e: &http::Extensions| e.get::<RetryAfter>().map(RetryAfter::delay);
    (hint(limited.extensions()), hint(resp.extensions()))
}

/// A call told to come back in 30 s whose re-send never reached the server keeps the
/// server's answer as its last word (`last_attempt_unanswered` false), but not the wait
/// the server gave with it: the layer waited it out before that re-send, so a caller
/// told it again would wait twice. Told 120 s under a ceiling of 5 s, the layer waited
/// 5 s, and the caller is told the 115 s left.
#[tokio::test(start_paused = true)]
async fn a_re_send_that_never_left_tells_what_is_left_of_the_servers_wait() {
    use tower_jsonrpc_retry::GaveUp;
    for (told, ceiling, waited, left) in [("30", 60, 30, None), ("120", 5, 5, Some(115))] {
        let http = ClosesAfterOne(Arc::default(), told);
        let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
            .codes([-32005])
            .retry_after_ceiling(Duration::from_secs(ceiling));
        let (resp, took) = two_sums(strategy, http.clone()).await;
        assert_eq!(took, Duration::from_secs(waited));
        assert_eq!(
            http.0.load(Ordering::SeqCst),
            1,
            "the re-send never went out"
        );
        let record = resp.items()[1]
            .extensions()
            .get::<GaveUp>()
            .copied()
            .unwrap();
        assert!(!record.last_attempt_unanswered(), "{record:?}");
        let left = left.map(Duration::from_secs);
        assert_eq!(limited_hints(&resp), (left, left), "told {told}");
    }
}

/// What an exchange of [`Scripted`] does.
#[derive(Clone, Copy, Debug)]
enum Exchange {
    /// Call 1 answered, call 2 rate limited (-32005), with this `Retry-After`.
    Limited(&'static str),
    /// A bare 429 with this `Retry-After`.
    TooMany(&'static str),
    /// After this many seconds, an I/O error (the re-send may have reached the server).
    Fails(u64),
}

/// An HTTP service doing its exchanges in turn, the last one again after them.
#[derive(Clone)]
struct Scripted(Arc<AtomicUsize>, &'static [Exchange]);

impl Service<http::Request<http_body_util::Full<bytes::Bytes>>> for Scripted {
    type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, std::io::Error>> + Send>,
    >;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<http_body_util::Full<bytes::Bytes>>) -> Self::Future {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let exchange = self.1[n.min(self.1.len() - 1)];
        Box::pin(async move {
            let answer = |status: u16, body: &'static str, told: &'static str| {
                let mut resp = http::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(body.as_bytes()),
                ));
                *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                resp.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static(told),
                );
                resp
            };
            match exchange {
                Exchange::Limited(told) => Ok(answer(200, LIMITED_2, told)),
                Exchange::TooMany(told) => Ok(answer(429, "", told)),
                Exchange::Fails(secs) => {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    Err(std::io::Error::other("reset"))
                }
            }
        })
    }
}

/// A batch whose last re-send fails without a wait hint of its own tells its calls sent
/// last, and the whole batch, what is left now of the server's latest word on time: the
/// answer's, or a later 429's; counted from when it came, the re-sends' own time
/// included; none once it has run out.
#[tokio::test(start_paused = true)]
async fn a_failed_last_re_send_tells_what_is_left_of_the_servers_latest_word() {
    use Exchange::{Fails, Limited, TooMany};
    let cases: [(&'static [Exchange], u64, Option<u64>); 5] = [
        // Told 120 s; 5 s waited (the ceiling), then a failure: 115 s left.
        (&[Limited("120"), Fails(0)], 5_000, Some(115_000)),
        // …then another 0.1 s and a failure: 114.9 s.
        (&[Limited("120"), Fails(0), Fails(0)], 5_100, Some(114_900)),
        // A re-send that took 30 s before it failed: 85 s.
        (&[Limited("120"), Fails(30)], 35_000, Some(85_000)),
        // A 429 telling 300 s at 5 s, the last failure at 10 s: 295 s of the 429's.
        (
            &[Limited("120"), TooMany("300"), Fails(0)],
            10_000,
            Some(295_000),
        ),
        // A 429 telling 1 s, waited out: none, not what is left of the older 120 s.
        (&[Limited("120"), TooMany("1"), Fails(0)], 6_000, None),
    ];
    for (exchanges, took, left) in cases {
        let http = Scripted(Arc::default(), exchanges);
        let strategy = RetryStrategy::new(PeriodicBackoff::new(
            exchanges.len() - 1,
            Duration::from_millis(100),
        ))
        .codes([-32005])
        .retry_status_if(|s| s == http::StatusCode::TOO_MANY_REQUESTS)
        .retry_if(|_| true)
        .retry_after_ceiling(Duration::from_secs(5));
        let (resp, elapsed) = two_sums(strategy, http.clone()).await;
        assert_eq!(elapsed, Duration::from_millis(took), "{exchanges:?}");
        assert_eq!(http.0.load(Ordering::SeqCst), exchanges.len());
        let left = left.map(Duration::from_millis);
        assert_eq!(limited_hints(&resp), (left, left), "{exchanges:?}");
    }
}

/// Call 1 rate limited, call 2 answered.
const LIMITED_FIRST: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1},{"jsonrpc":"2.0","result":20,"id":2}]"#;
/// The answer to call 1 as a server that unwraps an answer array of one item sends it.
const UNWRAPPED: &str = r#"{"jsonrpc":"2.0","result":10,"id":1}"#;

/// A retry that narrows a batch to its one failed call sends a batch of one; a server
/// that answers such a batch with a bare object under that call's id has answered the
/// call: its answer replaces the earlier error, and the retries end there.
#[tokio::test(start_paused = true)]
async fn an_unwrapped_answer_to_a_re_send_of_one_call_is_that_calls_answer() {
    let two = vec![
        Request::new("sum", json!([1])).with_id(1),
        Request::new("sum", json!([2])).with_id(2),
    ];
    let (resp, sent) = exchanged(&[LIMITED_FIRST, UNWRAPPED], 3, 1, false, two).await;
    assert_eq!(sent.len(), 2, "one re-send, answered");
    assert_eq!(
        sent[1].as_array().map(Vec::len),
        Some(1),
        "a batch of one call"
    );
    let answers: Vec<_> = resp.items().iter().map(|r| r.result().cloned()).collect();
    assert_eq!(answers, [Some(json!(10)), Some(json!(20))]);
    let gave_up = |r: &Response| {
        r.extensions()
            .get::<tower_jsonrpc_retry::GaveUp>()
            .is_some()
    };
    assert!(!resp.items().iter().any(gave_up));
}

/// A bare object under the id of a batch's only call answers it also under a failure
/// status (the codec's table: a non-2xx answer to the request is that answer, with its
/// status), and also when that id is null (a success: an error with a null id refuses
/// the whole batch, which for one call comes to the same answer).
#[tokio::test(start_paused = true)]
async fn a_bare_object_answers_a_batch_of_one_call_under_a_429_and_under_a_null_id() {
    let limited = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}"#;
    let http = tower::service_fn(
        move |_: http::Request<http_body_util::Full<bytes::Bytes>>| {
            let answer = http::Response::builder()
                .status(429)
                .body(limited.to_owned())
                .unwrap();
            std::future::ready(Ok::<_, Infallible>(answer))
        },
    );
    let codec = JsonRpcCodec::new(http, "http://127.0.0.1:1/".parse().unwrap());
    let batch = BatchRequest::new(vec![Request::new("sum", json!([1])).with_id(1)]);
    let resp = codec.oneshot(batch).await.unwrap();
    assert_eq!(resp.items()[0].error().map(ErrorObject::code), Some(-32005));
    let status = resp.extensions().get::<http::StatusCode>();
    assert_eq!(status, Some(&http::StatusCode::TOO_MANY_REQUESTS));

    let by_null = json!({"jsonrpc": "2.0", "result": 1, "id": null});
    let read = BatchResponse::from_value(by_null.clone(), &[Id::Null]).unwrap();
    assert_eq!(read.items()[0].result(), Some(&json!(1)));
    // Not to a batch of another call.
    assert!(BatchResponse::from_value(by_null, &[Id::Number(1)]).is_err());
}
