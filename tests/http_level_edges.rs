//! The HTTP-level layer at its edges: a deadline that passed before the call was first
//! polled, a readiness error for a body sent as it came, and a partly retried batch
//! whose last exchange failed as a whole (retried in part or whole, its first answer
//! under 200 or under 429), and a URI whose scheme the connector does not speak.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

const CALL: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
const CALLS: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"sum","params":[3,4],"id":2}]"#;

fn http() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs `body` to the server through the HTTP-level layer over hyper-util's client.
async fn post_through_layer(
    server: &FlakyServer,
    strategy: RetryStrategy,
    body: &'static str,
) -> http::Response<Full<Bytes>> {
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy))
        .service(http());
    let req = http::Request::post(server.uri())
        .body(Full::from(body))
        .unwrap();
    svc.oneshot(req).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_passed_before_the_first_poll_ends_the_call_unsent() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::ok().after(Duration::from_secs(10))]);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(100)))
        .retry_on(ErrorClass::Timeout)
        .max_elapsed(Duration::from_secs(1));
    let mut svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy))
        .service(http());
    let req = http::Request::post(server.uri())
        .body(Full::from(CALL))
        .unwrap();
    let start = Instant::now();
    // The deadline runs from the call, and has passed when the future is first polled.
    let call = svc.ready().await.unwrap().call(req);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let err = call.await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
    assert_eq!(server.calls("sum"), 0, "nothing is sent after the deadline");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// An HTTP service whose first readiness check fails (an open breaker), ready after.
#[derive(Clone, Default)]
struct OpenOnce {
    polls: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Service<http::Request<Full<Bytes>>> for OpenOnce {
    type Response = http::Response<Full<Bytes>>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Poll::Ready(Err(std::io::Error::other("circuit open")));
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Full<Bytes>>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(http::Response::new(Full::from("ok"))))
    }
}

#[tokio::test]
async fn a_readiness_error_is_the_answer_whatever_the_body() {
    for body in [CALL, "not json"] {
        let inner = OpenOnce::default();
        let calls = Arc::clone(&inner.calls);
        let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none());
        let mut svc = tower::Layer::layer(&layer, inner);
        let req = http::Request::post("http://127.0.0.1:1/")
            .body(Full::from(body))
            .unwrap();
        let res: Result<_, BoxError> = svc.ready().await.unwrap().call(req).await;
        assert_eq!(res.unwrap_err().to_string(), "circuit open", "{body}");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{body}: nothing is sent");
    }
}

#[tokio::test(start_paused = true)]
async fn a_partly_retried_batch_whose_last_exchange_fails_keeps_its_answers_and_the_hint() {
    let server = FlakyServer::start().await.unwrap();
    // Call 1 answered, call 2 limited (-32005, retried alone); its re-send gets a 429.
    server.script(
        "sum",
        [
            Step::ok(),
            Step::error(-32005),
            Step::status(429).retry_after("30"),
        ],
    );
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]);
    let resp = post_through_layer(&server, strategy, CALLS).await;
    assert_eq!(server.calls("sum"), 3);
    // The answers gathered are answers (200); the server's last word on time goes with
    // them.
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get(http::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap()),
        Some("30")
    );
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let by_id = |id: i64| items.iter().find(|i| i["id"] == json!(id)).unwrap();
    assert_eq!(by_id(1)["result"], json!(3));
    assert_eq!(by_id(2)["error"]["code"], json!(-32005));
}

/// A batch sent through the HTTP-level layer (retrying -32005 once a second, `retries`
/// times) to a service answering each exchange with the next step of `script`: a status
/// and a body. What comes back, and the bodies each exchange sent.
async fn scripted(
    batch: &'static str,
    retries: usize,
    script: &[(u16, &'static str)],
) -> (http::Response<Full<Bytes>>, Vec<Bytes>) {
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&sent);
    let script: Arc<[(u16, &'static str)]> = script.into();
    let inner = tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let seen = Arc::clone(&seen);
        let script = Arc::clone(&script);
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let n = {
                let mut seen = seen.lock().unwrap();
                seen.push(body);
                seen.len() - 1
            };
            let (status, body) = script[n];
            let resp = http::Response::builder()
                .status(status)
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(retries, Duration::from_secs(1))).codes([-32005]);
    let layer = JsonRpcRetryLayer::http::<Full<Bytes>>(strategy);
    let req = http::Request::post("http://127.0.0.1:1/")
        .body(Full::from(batch))
        .unwrap();
    let resp = tower::Layer::layer(&layer, inner)
        .oneshot(req)
        .await
        .unwrap();
    let sent = sent.lock().unwrap().clone();
    (resp, sent)
}

/// A batch's first exchange answered `first` (a status and a body), its re-send then
/// failing as a whole with `then`: what comes back, and how many exchanges there were.
async fn answered_then_failed(
    batch: &'static str,
    first: (u16, &'static str),
    then: u16,
) -> (http::Response<Full<Bytes>>, usize) {
    let (resp, sent) = scripted(batch, 1, &[first, (then, "")]).await;
    (resp, sent.len())
}

const BOTH_LIMITED: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;

#[tokio::test(start_paused = true)]
async fn a_batch_sent_again_whole_keeps_its_last_status_beside_earlier_unread_items() {
    // Both calls limited, and an item the server could not read: an answer no call
    // took, which the batch's answer keeps after the last exchange's items.
    const AND_UNREAD: &str = r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2},{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse"},"id":null}]"#;
    let last_answered: &[(u16, &'static str)] = &[(200, AND_UNREAD), (429, BOTH_LIMITED)];
    let last_failed: &[(u16, &'static str)] = &[(200, AND_UNREAD), (429, BOTH_LIMITED), (502, "")];
    for (retries, script) in [(1, last_answered), (2, last_failed)] {
        let (resp, sent) = scripted(CALLS, retries, script).await;
        assert!(
            sent.iter().all(|body| body == CALLS),
            "sent whole: {sent:?}"
        );
        // Sent whole each time, the batch's answer is the 429's: not a 200 the layer
        // made because an earlier exchange had something to add.
        assert_eq!(resp.status(), 429, "{} exchanges", sent.len());
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[2]["error"]["code"], -32700);
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_retried_in_part_whose_last_answer_came_under_429_or_202_is_a_200() {
    // A call and a notification, which ran: the call alone is sent again, and its last
    // answer comes under another status than 200.
    const CALL_AND_NOTIFICATION: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"log","params":[]}]"#;
    const CALL_LIMITED: &str =
        r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":1}]"#;
    const CALL_ANSWERED: &str = r#"[{"jsonrpc":"2.0","result":3,"id":1}]"#;
    for last in [(429, CALL_LIMITED), (202, CALL_ANSWERED)] {
        let (resp, sent) = scripted(CALL_AND_NOTIFICATION, 1, &[(200, CALL_LIMITED), last]).await;
        assert_eq!(sent[1], format!("[{CALL}]"), "the call alone");
        assert_eq!(resp.status(), 200, "a batch retried in part: {last:?}");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, last.1, "the call's last answer");
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_retried_in_part_is_a_200_a_batch_sent_again_whole_keeps_its_status() {
    // A gateway's 429 over the node's answers: call 1 answered, call 2 limited.
    let one_limited = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
    for (answer, status) in [(one_limited, 200), (BOTH_LIMITED, 429)] {
        // Call 2 sent again alone, or both: the re-send gets a bare 502.
        let (resp, exchanges) = answered_then_failed(CALLS, (429, answer), 502).await;
        assert_eq!(exchanges, 2, "{answer}");
        // Call 1's result is an answer: a caller that refuses a non-2xx batch as a
        // whole (jsonrpsee) must not lose it because call 2's re-send failed. Without
        // one, the batch's answer is the server's, status included.
        assert_eq!(resp.status(), status, "{answer}");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, answer.as_bytes());
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_retried_in_part_whose_answers_are_gathered_is_a_200_after_a_429() {
    // Call 1 answered, call 2 limited; call 2 alone limited again under 429: the
    // answer is gathered from both exchanges, the layer writing the body.
    const ONE_LIMITED: &str = r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
    const TWO_LIMITED: &str =
        r#"[{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited"},"id":2}]"#;
    let (resp, sent) = scripted(CALLS, 1, &[(200, ONE_LIMITED), (429, TWO_LIMITED)]).await;
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[1], CALLS, "call 2 alone");
    assert_eq!(resp.status(), 200, "a batch retried in part");
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<Value> = serde_json::from_slice(&got).unwrap();
    assert_eq!(items[0]["result"], 3);
    assert_eq!(items[1]["error"]["code"], -32005);
}

const REFUSED: &str =
    r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited","data":1e400},"id":null}"#;

#[tokio::test(start_paused = true)]
async fn a_refused_batch_whose_re_send_fails_comes_back_as_the_server_refused_it() {
    let notifications = r#"[{"jsonrpc":"2.0","method":"log","params":["a"]},{"jsonrpc":"2.0","method":"log","params":["b"]}]"#;
    for (batch, then) in [(CALLS, 429), (notifications, 503)] {
        for refused_under in [200, 429] {
            let (resp, exchanges) =
                answered_then_failed(batch, (refused_under, REFUSED), then).await;
            assert_eq!(exchanges, 2, "refused, then sent again once");
            // The refusal as the server wrote it (its `data` beyond serde_json
            // included) and under its status, not an empty 200, nor a 200 for a 429,
            // that would read as accepted.
            assert_eq!(resp.status(), refused_under, "{batch}");
            let got = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(got, REFUSED.as_bytes(), "{batch}");
        }
    }
}

/// A batch refused as a whole, whose non-idempotent notification the retry does not
/// send again: the call's later answer comes back with the refusal, as the server wrote
/// it, after it, so the caller sees that the notification was never run.
#[tokio::test(start_paused = true)]
async fn a_refusal_a_retry_leaves_a_notification_under_comes_back_with_the_answers() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::raw(200, REFUSED)]);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100)))
        .codes([-32005])
        .non_idempotent(["send"]);
    let body = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1},{"jsonrpc":"2.0","method":"send","params":["tx"]}]"#;
    let resp = post_through_layer(&server, strategy, body).await;
    assert_eq!((server.calls("sum"), server.calls("send")), (2, 1));
    assert_eq!(resp.status(), http::StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&got).unwrap();
    let items: Vec<&str> = items.iter().map(|item| item.get()).collect();
    let [answer, refusal] = items[..] else {
        panic!("{items:?}")
    };
    let answer: Value = serde_json::from_str(answer).unwrap();
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": 3, "id": 1}));
    assert_eq!(refusal, REFUSED, "the refusal, byte for byte");
}

/// `HttpRetryFuture` polled again after it gave its result stays pending instead of
/// resuming the finished `async` block (which would panic), as the crate's other
/// futures do.
#[tokio::test]
async fn the_response_future_polled_after_its_result_is_pending_not_a_panic() {
    use std::future::Future;
    use tower::Layer;
    let inner = tower::service_fn(|_: http::Request<Full<Bytes>>| async {
        Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","result":1,"id":1}"#,
        ))))
    });
    let mut svc = JsonRpcRetryLayer::http::<Full<Bytes>>(RetryStrategy::none()).layer(inner);
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let request = http::Request::post("http://127.0.0.1:1/")
        .body(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","method":"m","params":[],"id":1}"#,
        )))
        .unwrap();
    let mut call = Box::pin(svc.call(request));
    assert!(call.as_mut().await.is_ok());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(call.as_mut().poll(&mut cx).is_pending());
}

/// At the HTTP level too, a batch of notifications only that the server accepted is
/// delivered when its body breaks off, stalls or passes the limit: the 200 comes back,
/// sent once.
#[tokio::test(start_paused = true)]
async fn an_accepted_batch_of_notifications_whose_body_breaks_or_stalls_is_sent_once() {
    const LOGS: &str = r#"[{"jsonrpc":"2.0","method":"log","params":["a"]},{"jsonrpc":"2.0","method":"log","params":["b"]}]"#;
    let steps = [
        Step::truncated(),
        Step::trickle(Duration::from_secs(1)),
        Step::oversized(4096),
        Step::oversized_chunked(4096),
    ];
    for step in steps {
        let server = FlakyServer::start().await.unwrap();
        server.script("log", [step.clone()]);
        let svc = ServiceBuilder::new()
            .layer(
                JsonRpcRetryLayer::http(RetryStrategy::transient_seeded(1))
                    .attempt_timeout(Duration::from_millis(500))
                    .response_limit(1024),
            )
            .service(http());
        let req = http::Request::post(server.uri())
            .body(Full::from(LOGS))
            .unwrap();
        let resp = svc.oneshot(req).await;
        let resp = resp.unwrap_or_else(|e| panic!("{step:?}: {e:?}"));
        assert_eq!(resp.status(), 200, "{step:?}");
        // The body no refusal came whole in is left out, and so is its length.
        assert_eq!(resp.headers().get(http::header::CONTENT_LENGTH), None);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty(), "{step:?}: {body:?}");
        assert_eq!(server.http_requests(), 1, "{step:?}");
    }
}

/// Under a strategy with a rule on results, the HTTP level still hands on answers whose
/// result or error data serde_json cannot build (a number beyond `f64`, nesting deeper
/// than its limit), as it does without one: the bytes, unchanged. And such a result is
/// read by no rule, not as the `null` it would otherwise read as.
#[tokio::test(start_paused = true)]
async fn a_result_rule_keeps_unbuildable_answers_passing_unchanged() {
    let deep = (0..100).fold("1".to_owned(), |inner, _| {
        format!(r#"{{"calls":[{inner}]}}"#)
    });
    let answers = [
        format!(r#"{{"jsonrpc":"2.0","result":{deep},"id":1}}"#),
        r#"{"jsonrpc":"2.0","result":1e400,"id":1}"#.to_owned(),
        r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"x","data":1e400},"id":1}"#.to_owned(),
        format!(
            r#"[{{"jsonrpc":"2.0","result":{deep},"id":1}},{{"jsonrpc":"2.0","result":2,"id":2}}]"#
        ),
    ];
    let any_null = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
        .retry_result_if(|_, result| result.is_null());
    for answer in &answers {
        let server = FlakyServer::start().await.unwrap();
        server.script(
            "trace",
            std::iter::repeat_n(Step::raw(200, answer.clone()), 4),
        );
        let call = r#"{"jsonrpc":"2.0","method":"trace","params":["0x1"],"id":1}"#;
        let body = if answer.starts_with('[') {
            format!(r#"[{call},{}]"#, call.replace(r#""id":1"#, r#""id":2"#))
        } else {
            call.to_owned()
        };
        let svc = ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::http::<Full<Bytes>>(any_null.clone()))
            .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
        let req = http::Request::post(server.uri())
            .body(Full::from(body))
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, Bytes::from(answer.clone()));
        assert_eq!(server.http_requests(), 1, "{answer:.60}: not read as null");
    }
}

/// A URI whose scheme the connector does not speak is retried by no rule at the HTTP
/// level either, a catch-all predicate's included: a call, a non-idempotent call, a
/// batch and a notification each fail at once, unsent, and end "not retryable".
#[tokio::test(start_paused = true)]
async fn an_unsupported_scheme_is_retried_by_no_rule_at_the_http_level() {
    use std::sync::Mutex;
    use tower_jsonrpc_retry::GiveUpReason;
    use tower_jsonrpc_retry::client::{SchemeCheck, UnsupportedScheme};

    let server = FlakyServer::start().await.unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let hear = Arc::clone(&heard);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
        .retry_if(|_| true)
        .non_idempotent(["send"])
        .on_give_up(move |e| hear.lock().unwrap().push((e.retries(), e.reason())));
    let connector = SchemeCheck::http(hyper_util::client::legacy::connect::HttpConnector::new());
    let svc = ServiceBuilder::new()
        .layer(JsonRpcRetryLayer::http(strategy))
        .service(Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector));
    let https = format!("https://{}/", server.addr());
    let start = Instant::now();
    for body in [
        CALL,
        r#"{"jsonrpc":"2.0","method":"send","params":[],"id":1}"#,
        CALLS,
        r#"{"jsonrpc":"2.0","method":"note"}"#,
    ] {
        let req = http::Request::post(&https).body(Full::from(body)).unwrap();
        let err: BoxError = svc.clone().oneshot(req).await.unwrap_err();
        let refused =
            tower_jsonrpc_retry::retry::error_chain(&*err).any(|e| e.is::<UnsupportedScheme>());
        assert!(refused, "{body}: {err:?}");
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "no backoff waited");
    assert_eq!(
        *heard.lock().unwrap(),
        [(0, GiveUpReason::NotRetryable); 4],
        "each ended at once, not retryable"
    );
    assert_eq!(server.connections(), 0);
}

/// A call that gives its `method` or its `id` twice goes once, as it came: servers
/// differ on which one they read (serde_json's tree, Go and JavaScript the last, a strict
/// reader refuses the message), so the layer cannot know which method would run again
/// (a non-idempotent one, held back by its name, might be the one the server reads) nor
/// which id the answer comes under. The same call written once is retried.
#[tokio::test(start_paused = true)]
async fn a_call_giving_its_method_or_id_twice_goes_once_as_it_came() {
    const ONCE: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;
    const METHOD_TWICE: &str =
        r#"{"jsonrpc":"2.0","method":"transfer","method":"sum","params":[1,2],"id":1}"#;
    const ID_TWICE: &str = r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7,"id":1}"#;
    const IN_A_BATCH: &str = r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":7,"id":1}]"#;
    let strategy = || {
        RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_millis(10)))
            .codes([-32005])
            .non_idempotent(["transfer"])
    };
    for (body, sent) in [(ONCE, 4), (METHOD_TWICE, 1), (ID_TWICE, 1), (IN_A_BATCH, 1)] {
        let server = FlakyServer::start().await.unwrap();
        server.script("sum", std::iter::repeat_n(Step::error(-32005), 4));
        let resp = post_through_layer(&server, strategy(), body).await;
        assert_eq!(server.calls("sum"), sent, "{body}");
        let answer = resp.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        let error = if body.starts_with('[') {
            &answer[0]["error"]
        } else {
            &answer["error"]
        };
        assert_eq!(
            error["code"],
            json!(-32005),
            "{body}: the server's answer as it came"
        );
    }
}
