//! The typed client over loopback, built by `Client::builder` and over a custom stack.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::jsonrpc::Id;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{Client, ClientError, ErrorClass, GiveUpReason, RetryStrategy};

fn client(server: &FlakyServer, strategy: RetryStrategy) -> Client {
    Client::builder(server.uri())
        .attempt_timeout(Duration::from_millis(200))
        .retry(strategy)
        .build()
}

fn periodic(attempts: usize) -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(attempts, Duration::from_secs(1)))
}

#[tokio::test(start_paused = true)]
async fn call_with_positional_and_named_params() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);

    #[derive(Serialize)]
    struct Terms {
        a: i64,
        b: i64,
    }
    let sum: i64 = client.call("sum", Terms { a: 4, b: 5 }).await.unwrap();
    assert_eq!(sum, 9);
    let bodies = server.bodies_json();
    assert_eq!(
        bodies[0],
        json!({"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1})
    );
    assert_eq!(
        bodies[1],
        json!({"jsonrpc": "2.0", "method": "sum", "params": {"a": 4, "b": 5}, "id": 2})
    );
}

#[tokio::test(start_paused = true)]
async fn ids_are_counted_across_clones_or_generated() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let other = client.clone();
    let _: i64 = client.call("sum", (1,)).await.unwrap();
    let _: i64 = other.call("sum", (1,)).await.unwrap();
    let custom = client.clone().with_id_generator(|| Id::from("fixed"));
    let _: i64 = custom.call("sum", (1,)).await.unwrap();
    let ids: Vec<_> = server
        .bodies_json()
        .iter()
        .map(|b| b["id"].clone())
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!("fixed")]);
}

#[tokio::test(start_paused = true)]
async fn notify_sends_no_id() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    client.notify("log", ("started",)).await.unwrap();
    client.notify("log", ()).await.unwrap();
    assert_eq!(
        server.bodies_json(),
        [
            json!({"jsonrpc": "2.0", "method": "log", "params": ["started"]}),
            json!({"jsonrpc": "2.0", "method": "log"}),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn typed_errors() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());

    server.script(
        "sum",
        [Step::error_with(2001, "busy", Some(json!({"retry": true})))],
    );
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let rpc = err.rpc().expect("a JSON-RPC error object");
    assert_eq!(
        (rpc.code(), rpc.message(), rpc.data()),
        (2001, "busy", Some(&json!({"retry": true})))
    );

    let err = client.call::<String>("sum", (1, 2)).await.unwrap_err();
    assert!(matches!(err, ClientError::Deserialize(_)), "{err:?}");

    server.script("sum", [Step::status(500)]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert_eq!(
        transport.status(),
        Some(http::StatusCode::INTERNAL_SERVER_ERROR)
    );

    let err = client.call::<i64>("sum", 5).await.unwrap_err();
    assert!(matches!(err, ClientError::Params(_)), "{err:?}");
    assert_eq!(
        server.calls("sum"),
        3,
        "bad params are refused before sending"
    );
}

#[tokio::test(start_paused = true)]
async fn default_strategy_and_per_call_strategy() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(
        &server,
        periodic(3).codes([2001]).retry_on(ErrorClass::Timeout),
    );
    server.script("sum", [Step::timeout(), Step::error(2001)]);
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!((sum, server.calls("sum")), (3, 3));

    server.script("sum", [Step::error(2001)]);
    let err = client
        .request("sum")
        .params((1, 2))
        .retry(RetryStrategy::none())
        .send::<i64>()
        .await
        .unwrap_err();
    assert_eq!(err.rpc().map(|e| e.code()), Some(2001));
    assert_eq!(server.calls("sum"), 4);

    let sum: i64 = client
        .request("sum")
        .params((2, 2))
        .id("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(sum, 4);
    assert_eq!(server.bodies_json().last().unwrap()["id"], json!("mine"));
}

#[tokio::test(start_paused = true)]
async fn batch_with_typed_items() {
    let server = FlakyServer::start().await.unwrap();
    server.reverse_batches(true);
    server.script("echo", [Step::error(2001)]);
    let client = client(&server, periodic(2).codes([2001]));
    let mut batch = client.batch();
    let three = batch.call::<i64>("sum", (1, 2));
    let echoed = batch.call::<Vec<String>>("echo", ("hi",));
    let wrong = batch.call::<String>("sum", (1, 1));
    batch.notify("log", ("batch",));
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(three).unwrap(), 3);
    assert_eq!(results.take(echoed).unwrap(), ["hi"]);
    assert!(matches!(
        results.take(wrong),
        Err(ClientError::Deserialize(_))
    ));
    assert_eq!(
        server.http_requests(),
        2,
        "the failed echo item was retried alone"
    );
    assert_eq!(server.bodies_json()[1].as_array().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn batch_with_its_own_strategy_and_bad_params() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(2001)]);
    let client = client(&server, periodic(2).codes([2001]));
    let mut batch = client.batch();
    let item = batch.call::<i64>("sum", (1, 2));
    let batch = batch.retry(RetryStrategy::none());
    let mut results = batch.send().await.unwrap();
    assert_eq!(
        results.take(item).unwrap_err().rpc().map(|e| e.code()),
        Some(2001)
    );

    let mut batch = client.batch();
    let _ = batch.call::<i64>("sum", "not structured");
    assert!(matches!(batch.send().await, Err(ClientError::Params(_))));
    assert_eq!(server.http_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn into_rpc_separates_the_servers_answer() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(2001), Step::status(500)]);
    let client = client(&server, RetryStrategy::none());
    let rpc = client
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err()
        .into_rpc()
        .unwrap();
    assert_eq!(rpc.code(), 2001);
    let other = client
        .call::<i64>("sum", (1, 2))
        .await
        .unwrap_err()
        .into_rpc()
        .unwrap_err();
    assert!(other.transport().is_some_and(|t| t.is_status()));
}

/// Each message of `err`'s `source()` chain, outermost first.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    std::iter::successors(Some(err), |e| e.source())
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn errors_do_not_repeat_their_source() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    server.script("sum", [Step::error(2001), Step::status(500)]);
    let rpc = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(
        chain(&rpc).len(),
        1,
        "the error object is the error: {:?}",
        chain(&rpc)
    );
    let transport = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let messages = chain(&transport);
    assert!(transport.transport().is_some_and(|e| e.is_status()));
    for pair in messages.windows(2) {
        if let [outer, inner] = pair {
            assert!(!outer.contains(inner.as_str()), "{messages:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_over_a_stack_that_boxes_errors_works_with_question_mark()
-> Result<(), tower_jsonrpc_retry::BoxError> {
    let server = FlakyServer::start().await?;
    // A timeout above the codec boxes its errors: `ClientError<BoxError>` is an error.
    let stack = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(
            RetryStrategy::none(),
        ))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)))
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        );
    let client = Client::new(stack);
    let sum: i64 = client.call("sum", (1, 2)).await?;
    assert_eq!(sum, 3);
    server.script("sum", [Step::timeout()]);
    let err = client
        .call::<i64>("sum", (1, 2))
        .await
        .map_err(tower_jsonrpc_retry::BoxError::from);
    let err = err.unwrap_err();
    assert!(
        chain(&*err).iter().any(|m| m.contains("timed out")),
        "{:?}",
        chain(&*err)
    );
    Ok(())
}

/// `call` and `notify` futures own what they need: spawned, they finish after the
/// client that made them is gone.
#[tokio::test(start_paused = true)]
async fn call_futures_outlive_the_client() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let call = tokio::spawn(client.call::<i64>("sum", (1, 2)));
    let notification = tokio::spawn(client.notify("log", ("spawned",)));
    let refused = tokio::spawn(client.notify("log", 5));
    drop(client);
    assert_eq!(call.await.unwrap().unwrap(), 3);
    notification.await.unwrap().unwrap();
    let err = refused.await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::Params(_)), "{err:?}");
    assert_eq!(server.http_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn notify_with_scalar_params_sends_nothing() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let err = client.notify("log", 5).await.unwrap_err();
    assert!(matches!(err, ClientError::Params(_)), "{err:?}");
    assert_eq!(server.http_requests(), 0);
}

/// A partly retried batch whose re-send would start past the deadline does not send it,
/// and the calls it held do not say their last attempt may have run: nothing was sent
/// (the deadline's error is marked unsent). They said so before, when the late re-send
/// still went out.
#[tokio::test(start_paused = true)]
async fn a_late_re_send_not_sent_is_not_reported_unanswered() {
    let server = FlakyServer::start().await.unwrap();
    server.script("transfer", [Step::error(-32005), Step::error(-32005)]);
    let strategy = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1)))
        .codes([-32005])
        .max_elapsed(Duration::from_millis(1500));
    let client = Client::builder(server.uri()).retry(strategy).build();
    let task = tokio::spawn(async move {
        let mut batch = client.batch();
        let sum = batch.call::<i64>("sum", (1, 2));
        let transfer = batch.call::<u64>("transfer", (1,));
        let mut results = batch.send().await.unwrap();
        assert_eq!(results.take(sum).unwrap(), 3);
        results.take(transfer).unwrap_err()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The runtime held up for 1.2 s: the wait, due to end at 1 s, ends at 1.7 s.
    tokio::time::advance(Duration::from_millis(1200)).await;
    let err = task.await.unwrap();
    assert_eq!(server.calls("transfer"), 1, "the re-send was not sent");
    assert_eq!(err.rpc().map(|e| e.code()), Some(-32005), "{err}");
    let gave_up = err.gave_up().expect("the give-up is recorded");
    assert!(!gave_up.last_attempt_unanswered(), "{err}");
}

/// A result taken as the wrong type stays in the results: a call that ran (a
/// transaction sent, say) does not lose what it returned to a mis-declared type. With
/// the server's answers in call order and out of it (the codec puts them in call order;
/// `tests/batch_results.rs` takes one out of order, from a stack without the codec).
#[tokio::test(start_paused = true)]
async fn a_result_of_the_wrong_type_stays_in_the_results() {
    for reversed in [false, true] {
        let server = FlakyServer::start().await.unwrap();
        if reversed {
            server.script(
                "sum",
                [Step::raw(
                    200,
                    r#"[{"jsonrpc":"2.0","result":"ok","id":2},{"jsonrpc":"2.0","result":"0xabc","id":1}]"#,
                )],
            );
        } else {
            server.handle("sum", |_| Ok(json!("0xabc")));
            server.handle("echo", |_| Ok(json!("ok")));
        }
        let client = client(&server, RetryStrategy::none());
        let mut batch = client.batch();
        let sent = batch.call::<u64>("sum", ("0xsigned",));
        let other = batch.call::<String>("echo", ("ok",));
        let mut results = batch.send().await.unwrap();
        let err = results.take(sent).unwrap_err();
        match &err {
            ClientError::Deserialize(m) => assert_eq!(m.result(), &json!("0xabc")),
            other => panic!("{other:?}"),
        }
        assert_eq!(results.take(other).unwrap(), "ok");
        let left = results.into_responses();
        assert_eq!(left.len(), 1, "reversed {reversed}: {left:?}");
        assert_eq!(left[0].result(), Some(&json!("0xabc")));
        assert_eq!(left[0].id(), &Id::from(1));
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_batch_sends_nothing_and_has_no_results() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let results = client.batch().send().await.unwrap();
    assert!(results.into_responses().is_empty());
    assert_eq!(server.http_requests(), 0);
}

/// `ClientError` over the error types test doubles use is an error too (compiles or not).
#[test]
fn client_errors_over_plain_error_types_are_errors() {
    fn is_error<T: std::error::Error>() {}
    is_error::<ClientError<std::convert::Infallible>>();
    is_error::<ClientError<std::io::Error>>();
    is_error::<ClientError<tower_jsonrpc_retry::BoxError>>();
}

/// The builder's headers go on every request: one set with `header` (replacing), more
/// with `headers` (appending). A one-shot HTTP/1.1 server on 127.0.0.1 reads the head.
#[tokio::test]
async fn builder_headers_go_on_every_request() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: http::Uri = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&seen).to_lowercase()
    });
    let mut more = http::HeaderMap::new();
    more.insert("x-team", http::HeaderValue::from_static("blue"));
    let client = Client::builder(uri)
        .header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer a"),
        )
        .header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer b"),
        )
        .headers(more)
        .build();
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    let head = server.await.unwrap();
    assert!(head.contains("authorization: bearer b\r\n"), "{head}");
    assert!(!head.contains("bearer a"), "{head}");
    assert!(head.contains("x-team: blue\r\n"), "{head}");
}

/// `build`'s promise: a URI that is not `http`, or has no scheme at all, fails every call
/// at once with `UnsupportedScheme` in the chain, without a retry and without a
/// connection: the address is a server of the test's own, which sees nothing.
#[tokio::test(start_paused = true)]
async fn a_uri_without_a_scheme_fails_at_once_with_unsupported_scheme() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.addr().to_string().parse().unwrap()).build();
    let start = tokio::time::Instant::now();
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no retry waited for");
    assert_eq!(server.connections(), 0);
    let mut chain = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    });
    let why = chain
        .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::client::UnsupportedScheme>())
        .unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(why.scheme(), None);
    assert_eq!(
        why.to_string(),
        "the URI is not absolute (it needs a scheme and a host, as `http://127.0.0.1:8545/`; \
         `127.0.0.1:8545` alone has no scheme)"
    );
}

#[test]
fn batch_items_are_debug_whatever_their_result_type() {
    /// Deserializable, but not `Debug`.
    #[derive(serde::Deserialize)]
    struct Opaque {}
    // Building a batch needs no runtime; the default stack serves both request types.
    let client = Client::builder("http://127.0.0.1:1/".parse().unwrap()).build();
    let item = client.batch().call::<Opaque>("m", ());
    assert!(
        format!("{item:?}").starts_with("BatchItem { id: "),
        "{item:?}"
    );
}

/// A batch of notifications that the server refuses as a whole (an error object with a
/// null id, under 503) is a failure, as the same refusal of one notification is: the
/// client must not report it as sent.
#[tokio::test(start_paused = true)]
async fn a_batch_of_notifications_refused_as_a_whole_is_an_error_from_the_client() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());

    server.script("log", [Step::status_with_error(503, -32005)]);
    let single = client.notify("log", ("a",)).await;
    assert!(single.is_err(), "one refused notification: {single:?}");

    server.script("log", [Step::status_with_error(503, -32005)]);
    let mut batch = client.batch();
    batch.notify("log", ("a",));
    batch.notify("log", ("b",));
    let refused = batch.send().await;
    assert!(
        matches!(&refused, Err(ClientError::Rpc(e)) if e.code() == -32005),
        "the refusal is lost: {refused:?}"
    );

    // Under 200 too: the codec reads the refusal (and the retry layer acts on it).
    let refusal = r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limit"},"id":null}"#;
    server.script("log", [Step::raw(200, refusal)]);
    let mut batch = client.batch();
    batch.notify("log", ("a",));
    let refused = batch.send().await;
    assert!(
        matches!(&refused, Err(ClientError::Rpc(e)) if e.code() == -32005),
        "the refusal is lost: {refused:?}"
    );
}

/// A null-id error that answers no call (the server could not read a notification of
/// the batch, and answered every call) reaches the caller: through `unmatched()` and at
/// the end of `into_responses()`, as it does through the codec's `BatchResponse`.
#[tokio::test(start_paused = true)]
async fn a_batch_answers_null_id_error_that_no_call_took_is_kept() {
    let server = FlakyServer::start().await.unwrap();
    let answer = r#"[{"jsonrpc":"2.0","result":3,"id":1},
        {"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}]"#;
    for into_responses in [false, true] {
        // A new client each time: its first call has id 1, as the answer says.
        let client = client(&server, RetryStrategy::none());
        server.script("sum", [Step::raw(200, answer)]);
        let mut batch = client.batch();
        let sum = batch.call::<i64>("sum", (1, 2));
        batch.notify("log", ("a",));
        let mut results = batch.send().await.expect("answered");
        let codes = |responses: &[tower_jsonrpc_retry::jsonrpc::Response]| -> Vec<Option<i64>> {
            responses
                .iter()
                .map(|r| r.error().map(|e| e.code()))
                .collect()
        };
        assert_eq!(codes(results.unmatched()), [Some(-32600)], "{results:?}");
        assert!(format!("{results:?}").contains("-32600"), "{results:?}");
        if into_responses {
            let responses = results.into_responses();
            assert_eq!(codes(&responses), [None, Some(-32600)]);
            assert_eq!(responses[0].result(), Some(&json!(3)));
        } else {
            assert_eq!(results.take(sum).expect("the call's result"), 3);
            assert_eq!(codes(&results.into_responses()), [Some(-32600)]);
        }
    }
}

/// A 429 with `Retry-After` tells the caller the same status and hint whether its body
/// is a JSON-RPC error object (`ClientError::Rpc`) or not (`ClientError::Transport`), for
/// a call and for a call of a batch: a caller whose retries are over reads when to come
/// back. Before, an error object dropped both.
#[tokio::test(start_paused = true)]
async fn a_429s_status_and_hint_reach_the_caller_whatever_its_body() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let limited = || Step::status_with_error(429, -32005).retry_after("7");
    let told = |err: &ClientError| (err.status().map(|s| s.as_u16()), err.retry_after());
    let expected = (Some(429), Some(Duration::from_secs(7)));

    server.script("sum", [limited()]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Rpc(e) if e.code() == -32005),
        "{err:?}"
    );
    assert_eq!(told(&err), expected);

    server.script("sum", [Step::status(429).retry_after("7")]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert!(matches!(&err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(told(&err), expected);

    server.script("sum", [limited(), Step::ok()]);
    let mut batch = client.batch();
    let first = batch.call::<i64>("sum", (1, 2));
    let second = batch.call::<i64>("sum", (3, 4));
    let mut results = batch.send().await.unwrap();
    for item in [first, second] {
        let err = results.take(item).unwrap_err();
        assert!(
            matches!(&err, ClientError::Rpc(e) if e.code() == -32005),
            "{err:?}"
        );
        assert_eq!(told(&err), expected);
    }

    // A batch of notifications refused as a whole: the refusal, with its facts.
    server.script("log", [limited()]);
    let mut batch = client.batch();
    batch.notify("log", ("a",));
    let err = batch.send().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Rpc(e) if e.code() == -32005),
        "{err:?}"
    );
    assert_eq!(told(&err), expected);

    // A 2xx answer has no failure status to tell, with an error object or without.
    server.script("sum", [Step::error(-32005)]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(told(&err), (None, None));
    server.script("sum", [Step::raw(200, "not json")]);
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert!(matches!(&err, ClientError::Transport(_)), "{err:?}");
    assert_eq!(told(&err), (None, None));
}

/// A call of a batch whose re-send fails (a 429 saying when to come back) keeps its last
/// answer, and is told the server's latest word on time with it, not its older answer's.
#[tokio::test(start_paused = true)]
async fn a_batch_call_whose_re_send_fails_is_told_the_latest_retry_after() {
    let server = FlakyServer::start().await.unwrap();
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(100))).codes([-32005]);
    let client = client(&server, strategy);
    server.script(
        "sum",
        [
            Step::ok(),
            Step::error(-32005),
            Step::status(429).retry_after("30"),
        ],
    );
    let mut batch = client.batch();
    let first = batch.call::<i64>("sum", (1, 2));
    let second = batch.call::<i64>("sum", (3, 4));
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(first).unwrap(), 3);
    let err = results.take(second).unwrap_err();
    assert!(
        matches!(&err, ClientError::Rpc(e) if e.code() == -32005),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(server.calls("sum"), 3);
}

/// The server's wait hint once the retries are over: the larger of `Retry-After` and a
/// wait in the error's `data`, whichever carries it, held to no ceiling.
#[tokio::test(start_paused = true)]
async fn the_wait_hint_is_the_larger_of_header_and_data() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri())
        .retry(RetryStrategy::none())
        .build();
    let data = |secs: u64| Some(json!({"backoff_seconds": secs}));
    let cases = [
        (Step::error_with(-32005, "limit", data(90)), Some(90)),
        (
            Step::error_with(-32005, "limit", data(90)).retry_after("120"),
            Some(120),
        ),
        (
            Step::error_with(-32005, "limit", data(300)).retry_after("120"),
            Some(300),
        ),
        (Step::error(-32005), None),
        (Step::status(503).retry_after("45"), Some(45)),
    ];
    for (step, want) in cases {
        server.script("sum", [step]);
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        assert_eq!(err.wait_hint(), want.map(Duration::from_secs), "{err:?}");
        if let ClientError::Rpc(e) = &err {
            assert_eq!(e.wait_hint(), err.wait_hint());
        }
    }
}

/// `()` leaves `params` out; an empty array sends `"params": []`.
#[tokio::test(start_paused = true)]
async fn unit_params_are_left_out_and_an_empty_array_is_sent() {
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    server.handle("m", |_: &serde_json::Value| Ok(json!(null)));
    let _: serde_json::Value = client.call("m", ()).await.unwrap();
    let _: serde_json::Value = client.call("m", [(); 0]).await.unwrap();
    let bodies = server.bodies_json();
    assert_eq!(bodies[0].get("params"), None, "{}", bodies[0]);
    assert_eq!(bodies[1]["params"], json!([]), "{}", bodies[1]);
}

/// `ClientError::Rpc` shows the error object as its `Display` does: a server's message
/// up to 1 KiB (a megabyte message is not a megabyte log line), while `rpc()` keeps it
/// whole.
#[test]
fn an_rpc_errors_message_is_shown_up_to_a_kibibyte_and_kept_whole() {
    let message = "m".repeat(5000);
    let err: tower_jsonrpc_retry::ClientError = tower_jsonrpc_retry::ClientError::Rpc(
        tower_jsonrpc_retry::jsonrpc::ErrorObject::new(-32000, message.clone()).into(),
    );
    let shown = err.to_string();
    assert_eq!(
        shown,
        format!("JSON-RPC error -32000: {}…", &message[..1024])
    );
    assert_eq!(err.rpc().map(|e| e.message()), Some(message.as_str()));
}

#[test]
fn the_builders_debug_output_shows_the_attempt_timeout_it_will_use() {
    let uri: http::Uri = "http://127.0.0.1:8545/".parse().unwrap();
    for (builder, shown) in [
        (Client::builder(uri.clone()), "attempt_timeout: Some(10s)"),
        (
            Client::builder(uri).attempt_timeout(Duration::from_millis(250)),
            "attempt_timeout: Some(250ms)",
        ),
    ] {
        let debug = format!("{builder:?}");
        assert_eq!(debug.matches("attempt_timeout").count(), 1, "{debug}");
        assert!(debug.contains(shown), "{debug}");
    }
}

/// Params may hold a signed transaction or a secret: the builders' `Debug` output names
/// each request by method and id only (the batch's showed every params).
#[test]
fn the_request_builders_debug_output_leaves_params_out() {
    let client = Client::builder("http://127.0.0.1:8545/".parse().unwrap()).build();
    let mut batch = client.batch();
    let _sent = batch.call::<String>("eth_sendRawTransaction", ("0x02f8SIGNED",));
    batch.notify("login", ("s3cret",));
    let single = client
        .request("eth_sendRawTransaction")
        .params(("0x02f8SIGNED",));
    for debug in [format!("{batch:?}"), format!("{single:?}")] {
        assert!(debug.contains("eth_sendRawTransaction"), "{debug}");
        assert!(!debug.contains("SIGNED"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
    let debug = format!("{batch:?}");
    assert!(debug.contains("\"login\""), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn a_uri_the_plain_http_client_cannot_speak_fails_at_once_and_is_not_retried() {
    let server = FlakyServer::start().await.unwrap();
    let three_retries = || RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)));
    let connect = three_retries().retry_on(ErrorClass::Connect);
    // Not even a rule that retries every error retries it: it would fail the same way.
    let catch_all = three_retries().retry_if(|_| true);
    let https = format!("https://{}/", server.addr());
    let ws = format!("ws://{}/", server.addr());
    for (uri, hint, strategy) in [
        (&https, "build_https", &connect),
        (&ws, "`ws`", &connect),
        (&https, "build_https", &catch_all),
        (&ws, "`ws`", &catch_all),
    ] {
        let client = Client::builder(uri.parse().unwrap())
            .retry(strategy.clone())
            .build();
        let start = tokio::time::Instant::now();
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "{uri}: no backoff waited");
        let gave_up = err.gave_up().expect("the retry layer's record");
        assert_eq!(gave_up.retries(), 0, "{uri}");
        assert_eq!(gave_up.reason(), GiveUpReason::NotRetryable, "{uri}");
        let transport = err.transport().expect("a transport error");
        assert!(!transport.is_connect(), "{uri}: not a connect failure");
        assert_eq!(
            transport.to_string(),
            "HTTP request failed: unsupported URI scheme",
            "{uri}: no connection was tried"
        );
        let messages = chain(&err);
        assert!(
            messages.iter().any(|m| m.contains(hint)),
            "{uri}: {messages:#?}"
        );
        let refused =
            std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::client::UnsupportedScheme>())
            .expect("the refusal is in the chain");
        assert_eq!(refused.scheme(), uri.split(':').next());
    }
    assert_eq!(server.connections(), 0, "nothing reached the server");
}

/// Over a stack of one's own on hyper-util's plain `HttpConnector` (no `SchemeCheck`),
/// the connector's own refusal of an `https` URI (any scheme but `http`) is not a
/// connect failure either: not retried by any rule, a non-idempotent method's included,
/// and named for what it is. (It was retried as "could not connect", backoff and all.)
#[tokio::test(start_paused = true)]
async fn a_uri_hyper_utils_connector_refuses_is_not_retried_over_a_stack_of_ones_own() {
    let three_retries = || RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)));
    for (uri, said) in [
        ("https://127.0.0.1:1/", "invalid URL, scheme is not http"),
        ("wss://127.0.0.1:1/", "invalid URL, scheme is not http"),
    ] {
        for strategy in [
            three_retries().retry_on(ErrorClass::Connect),
            three_retries().retry_if(|_| true),
            RetryStrategy::transient().non_idempotent(["sum"]),
        ] {
            let http =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            let stack = tower::ServiceBuilder::new()
                .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(strategy))
                .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
                    uri.parse().unwrap(),
                ))
                .service(http);
            let start = tokio::time::Instant::now();
            let err = Client::new(stack)
                .call::<i64>("sum", (1, 2))
                .await
                .unwrap_err();
            assert_eq!(start.elapsed(), Duration::ZERO, "{uri}: no backoff waited");
            let gave_up = err.gave_up().map(|g| (g.retries(), g.reason()));
            assert_eq!(gave_up, Some((0, GiveUpReason::NotRetryable)), "{uri}");
            let transport = err.transport().expect("a transport error");
            assert!(!transport.is_connect(), "{uri}");
            let messages = chain(&err);
            assert_eq!(
                transport.to_string(),
                "HTTP request failed: the connector refused the URI",
                "{uri}: {messages:#?} {err:?}"
            );
            assert!(messages.iter().any(|m| m == said), "{uri}: {messages:#?}");
        }
    }
}

/// lib.rs: `Client::builder`'s stack retries with the `transient()` preset unless told
/// otherwise.
#[tokio::test(start_paused = true)]
async fn the_builders_default_strategy_is_the_transient_preset() {
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::status(503), Step::status(429)]);
    let client = Client::builder(server.uri()).build();
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    assert_eq!(server.calls("sum"), 3);
}

/// The client's futures, polled again after they gave their result, stay pending (as
/// every future of the crate does) instead of polling tower's `Oneshot` or an `async`
/// block past its end, which panics.
#[tokio::test(start_paused = true)]
async fn the_futures_polled_after_their_result_are_pending() {
    use std::future::Future;
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());

    let mut call = Box::pin(client.call::<i64>("sum", (1, 2)));
    assert_eq!(call.as_mut().await.unwrap(), 3);
    assert!(call.as_mut().poll(&mut cx).is_pending(), "CallFuture");

    let mut notification = Box::pin(client.notify("log", (1,)));
    notification.as_mut().await.unwrap();
    assert!(
        notification.as_mut().poll(&mut cx).is_pending(),
        "NotifyFuture"
    );

    let mut batch = client.batch();
    let _sum = batch.call::<i64>("sum", (1, 2));
    let mut sent = Box::pin(batch.send());
    assert!(sent.as_mut().await.is_ok());
    assert!(
        sent.as_mut().poll(&mut cx).is_pending(),
        "BatchBuilder::send"
    );

    let request = tower_jsonrpc_retry::jsonrpc::Request::new("sum", json!([1, 2]));
    let mut raw = Box::pin(client.send(request.with_id(7)));
    assert_eq!(raw.as_mut().await.unwrap().result(), Some(&json!(3)));
    assert!(raw.as_mut().poll(&mut cx).is_pending(), "Client::send");
}

/// `BatchBuilder::send`'s promise, for a batch of notifications only too: null-id errors
/// in an array answer (the server could not read some notifications) are kept in
/// `BatchResults::unmatched`, not dropped.
#[tokio::test(start_paused = true)]
async fn a_batch_of_notifications_only_keeps_the_null_id_errors_it_was_answered_with() {
    const REFUSAL: &str =
        r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#;
    let server = FlakyServer::start().await.unwrap();
    let client = client(&server, RetryStrategy::none());
    server.script("log", [Step::raw(200, format!("[{REFUSAL}]"))]);
    let mut batch = client.batch();
    batch.notify("log", (1,));
    batch.notify("log", (2,));
    let results = batch.send().await.unwrap();
    let codes: Vec<_> = results
        .unmatched()
        .iter()
        .map(|r| r.error().map(|e| e.code()))
        .collect();
    assert_eq!(codes, [Some(-32600)]);
    // An answer with nothing in it for them still leaves nothing.
    server.script("log", [Step::raw(200, "[]")]);
    let mut batch = client.batch();
    batch.notify("log", (1,));
    assert!(batch.send().await.unwrap().unmatched().is_empty());
}

/// serde_json quotes whole the value it could not take: the error's chain, which logs
/// print, cuts it after 1 KiB, as a server's error message is cut.
#[tokio::test(start_paused = true)]
async fn a_result_of_the_wrong_type_is_quoted_in_part() {
    let server = FlakyServer::start().await.unwrap();
    server.handle("big", |_| {
        Ok(serde_json::Value::String("x".repeat(1 << 20)))
    });
    let client = client(&server, RetryStrategy::none());
    let err = client.call::<u64>("big", ()).await.unwrap_err();
    // The result itself is kept whole; `Debug` shows a kibibyte of it.
    let debug = format!("{err:?}");
    assert!(debug.len() < 4096, "{} bytes", debug.len());
    match &err {
        ClientError::Deserialize(m) => assert_eq!(m.result().as_str().map(str::len), Some(1 << 20)),
        other => panic!("{other:?}"),
    }
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.starts_with("invalid type: string \"xxx"), "{source}");
    assert!(source.ends_with("xxx\", expected u64"), "{source}");
    assert!(source.contains("x…x"), "{source}");
    assert!(source.len() <= 1024 + "…".len(), "{}", source.len());
    // serde's message for an unknown variant quotes the server's string as it is: its
    // line break and escape sequence are escaped before the chain shows them.
    #[derive(Debug, serde::Deserialize)]
    enum Status {
        Pending,
    }
    server.handle("status", |_| {
        Ok(json!("x\n2025-01-01 INFO forged \u{1b}[31mred"))
    });
    let err = client.call::<Status>("status", ()).await.unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(!source.contains(['\n', '\u{1b}']), "{source:?}");
    assert!(
        source.contains(r"x\n2025-01-01 INFO forged \u{1b}[31mred"),
        "{source}"
    );
    let ClientError::Deserialize(mismatch) = err else {
        panic!("a mismatch")
    };
    let (_, result) = mismatch.into_parts();
    assert_eq!(result, json!("x\n2025-01-01 INFO forged \u{1b}[31mred"));
    // A short message is serde_json's own, unchanged.
    server.handle("small", |_| Ok(serde_json::Value::String("x".into())));
    let err = client.call::<u64>("small", ()).await.unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, r#"invalid type: string "x", expected u64"#);
}

/// A stack of one's own, boxed below the codec (as `Client::new` advises), keeps
/// batches and spawns; a batch's extension reaches the HTTP request of every attempt,
/// the re-send of a failed call included.
#[tokio::test(start_paused = true)]
async fn a_stack_boxed_below_the_codec_batches_with_extensions() {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use tower::ServiceBuilder;
    use tower::util::BoxCloneSyncService;
    use tower_jsonrpc_retry::codec::{JsonRpcCodec, JsonRpcCodecLayer};
    use tower_jsonrpc_retry::{JsonRpcRetry, JsonRpcRetryLayer};

    #[derive(Clone, Debug, PartialEq)]
    struct Tenant(&'static str);

    type Boxed = BoxCloneSyncService<
        http::Request<Full<Bytes>>,
        http::Response<Incoming>,
        hyper_util::client::legacy::Error,
    >;
    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::ok(), Step::error(2001)]);
    let seen: Arc<Mutex<Vec<Option<Tenant>>>> = Arc::default();
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let logged = Arc::clone(&seen);
    let boxed: Boxed =
        BoxCloneSyncService::new(tower::service_fn(move |req: http::Request<Full<Bytes>>| {
            logged
                .lock()
                .unwrap()
                .push(req.extensions().get::<Tenant>().cloned());
            hyper.request(req)
        }));
    let retry = RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_secs(1))).codes([2001]);
    let client: Client<JsonRpcRetry<JsonRpcCodec<Boxed>>> = Client::new(
        ServiceBuilder::new()
            .layer(JsonRpcRetryLayer::new(retry))
            .layer(JsonRpcCodecLayer::new(server.uri()))
            .service(boxed),
    );
    let sums = tokio::spawn(async move {
        let mut batch = client.batch().extension(Tenant("b"));
        let one = batch.call::<i64>("sum", (1, 2));
        let two = batch.call::<i64>("sum", (3, 4));
        let mut results = batch.send().await.unwrap();
        (results.take(one).unwrap(), results.take(two).unwrap())
    });
    assert_eq!(sums.await.unwrap(), (3, 7));
    assert_eq!(server.http_requests(), 2);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(Tenant("b")), Some(Tenant("b"))]
    );
}

/// Four calls at once, each answered in 300 ms, so that no connection is free for
/// another call meanwhile: four connections opened.
async fn burst_of_four(server: &FlakyServer, client: &Client) {
    let step = Step::delay(Duration::from_millis(300));
    server.script("sum", std::iter::repeat_n(step, 4));
    let calls: Vec<_> = (0..4)
        .map(|i| tokio::spawn(client.call::<i64>("sum", (i, 1))))
        .collect();
    for (i, call) in (0..4).zip(calls) {
        assert_eq!(call.await.unwrap().unwrap(), i + 1);
    }
}

/// Waits, on the paused clock, up to 1 s for the server to count `open` connections.
async fn until_open(server: &FlakyServer, open: usize) {
    for _ in 0..1000 {
        if server.connections() == open {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(server.connections(), open);
}

/// The ready-made client closes connections left idle in its pool: after a burst that
/// opened one per call, all are still open just before the idle timeout and none
/// within twice it (hyper-util's pool looks for them at that interval), with the default
/// and with a time set; a later call opens a fresh one.
#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_after_the_pool_idle_timeout() {
    use tower_jsonrpc_retry::client::DEFAULT_POOL_IDLE_TIMEOUT;

    let server = FlakyServer::start().await.unwrap();
    for (client, idle) in [
        (
            Client::builder(server.uri()).build(),
            DEFAULT_POOL_IDLE_TIMEOUT,
        ),
        (
            Client::builder(server.uri())
                .pool_idle_timeout(Duration::from_secs(5))
                .build(),
            Duration::from_secs(5),
        ),
    ] {
        burst_of_four(&server, &client).await;
        assert_eq!(server.connections(), 4);
        let start = tokio::time::Instant::now();
        tokio::time::sleep(idle - Duration::from_secs(1)).await;
        assert_eq!(server.connections(), 4, "idle for less than {idle:?}");
        tokio::time::sleep_until(start + 2 * idle).await;
        until_open(&server, 0).await;

        assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
        assert_eq!(server.connections(), 1);
        drop(client);
        until_open(&server, 0).await;
    }
}

/// A TCP proxy on 127.0.0.1 in front of `server`, counting the connections it accepts.
async fn counting_proxy(
    server: &FlakyServer,
) -> (http::Uri, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let upstream = server.addr();
    tokio::spawn(async move {
        while let Ok((mut caller, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut caller, &mut server).await;
                }
            });
        }
    });
    (uri.parse().unwrap(), accepted)
}

/// The default idle timeout is the one documented: a call 75 s after the last goes out
/// on the same connection. (hyper-util's pool drops a connection idle for longer than
/// its timeout when a call takes it out, which the sweep above, running at that same
/// interval, would not show for a shorter default.)
#[tokio::test(start_paused = true)]
async fn a_connection_idle_for_75_s_is_used_again_under_the_default() {
    use std::sync::atomic::Ordering;
    let server = FlakyServer::start().await.unwrap();
    let (uri, accepted) = counting_proxy(&server).await;
    let client = Client::builder(uri).build();
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    tokio::time::sleep(Duration::from_secs(75)).await;
    assert_eq!(client.call::<i64>("sum", (3, 4)).await.unwrap(), 7);
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection");
}

/// `pool_idle_timeout(Duration::ZERO)` keeps no connection idle: after a burst, none is
/// left open (hyper-util's pool, given zero, sweeps never, and kept all four for ever),
/// and a call after a call opens a connection of its own.
#[tokio::test(start_paused = true)]
async fn a_zero_pool_idle_timeout_keeps_no_connection_idle() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri())
        .pool_idle_timeout(Duration::ZERO)
        .build();
    burst_of_four(&server, &client).await;
    until_open(&server, 0).await;
    assert_eq!(server.connections(), 0, "idle connections kept");
    for i in 0..2 {
        assert_eq!(client.call::<i64>("sum", (i, 2)).await.unwrap(), i + 2);
        until_open(&server, 0).await;
        assert_eq!(server.connections(), 0, "call {i}: its connection kept");
    }
}

/// A port out of range (`:85450`, a typo for 8545) or port 0, an empty host or a user
/// name Basic authentication cannot carry fails every call at once, unsent and not
/// retried, saying why. Before, `http` read no port from an out-of-range one and
/// hyper-util connected to port 80, `Authorization` from the URI's user info included
/// (and retried its refusal as a connect failure); port 0 was refused and retried the
/// same way; an empty host was a DNS failure, retried too.
#[tokio::test(start_paused = true)]
async fn a_uri_no_call_can_be_sent_to_fails_at_once_unsent() {
    for (uri, why) in [
        (
            "http://alice:s3cret@127.0.0.1:85450/",
            "the URI's port `85450` is not a port (a number from 1 to 65535)",
        ),
        ("http://:8545/", "the URI has no host"),
        (
            "http://127.0.0.1:0/",
            "the URI's port `0` is not a port (a number from 1 to 65535)",
        ),
        (
            "http://a%3Ab:pw@127.0.0.1:8545/",
            "the URI's user name holds a colon (`%3A`), which `Authorization: Basic` \
             cannot carry: the server would read what follows it as the password",
        ),
    ] {
        let client = Client::builder(uri.parse().unwrap()).build();
        let start = tokio::time::Instant::now();
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "{uri}: no retry waited for"
        );
        let codec = match &err {
            ClientError::Transport(codec) => codec,
            other => panic!("{uri}: {other:?}"),
        };
        assert!(codec.is_invalid_request(), "{uri}: {codec:?}");
        let gave_up = err.gave_up().map(|g| (g.retries(), g.reason()));
        assert_eq!(gave_up, Some((0, GiveUpReason::NotRetryable)), "{uri}");
        let chain: Vec<String> =
            std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .map(ToString::to_string)
            .collect();
        assert!(chain.iter().any(|m| m == why), "{uri}: {chain:#?}");
        assert!(
            format!("{client:?}").contains(&uri[uri.len() - 7..]),
            "{client:?}"
        );
    }
}

/// `pool_idle_timeout(Duration::MAX)` keeps idle connections and panics nowhere: before,
/// hyper-util's idle task added it to its clock's now and panicked in the background
/// (the call itself succeeded). Such a panic is caught by tokio, so a panic hook notes
/// it; the test then holds a connection idle for ten years of the paused clock.
#[tokio::test(start_paused = true)]
async fn a_pool_idle_timeout_past_the_clock_keeps_connections_and_panics_nowhere() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static OVERFLOWED: AtomicBool = AtomicBool::new(false);
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let chained = std::sync::Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if info.to_string().contains("overflow") {
            OVERFLOWED.store(true, Ordering::SeqCst);
        }
        chained(info);
    }));

    let server = FlakyServer::start().await.unwrap();
    for idle in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let client = Client::builder(server.uri())
            .pool_idle_timeout(idle)
            .build();
        assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
        // Let the pool's tasks run, then leave the connection idle a long while.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_secs(86_400 * 365 * 10)).await;
        assert_eq!(server.connections(), 1, "{idle:?}: still open");
        assert_eq!(client.call::<i64>("sum", (2, 2)).await.unwrap(), 4);
        assert_eq!(server.connections(), 1, "{idle:?}: reused");
        drop(client);
        until_open(&server, 0).await;
    }
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    assert!(!OVERFLOWED.load(Ordering::SeqCst), "a task panicked");
}

/// `call`'s docs: a result is the call's value whatever the status it came under. The
/// default strategy retries a `503` however its body reads, and when the retries end
/// on one, its result is returned; `send` shows the status and the record. A status
/// no rule retries is asked once.
#[tokio::test(start_paused = true)]
async fn a_result_under_a_failure_status_is_the_value_and_send_shows_the_status() {
    use tower_jsonrpc_retry::GaveUp;
    use tower_jsonrpc_retry::jsonrpc::Request;

    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri()).build();
    let result = r#"{"jsonrpc":"2.0","result":3,"id":1}"#;
    let four = || std::iter::repeat_n(Step::raw(503, result), 4);
    // The body's id is the call's.
    let call_with_id_1 = || client.request("sum").params((1, 2)).id(1).send::<i64>();

    server.script("sum", four());
    let sum = call_with_id_1().await.unwrap();
    assert_eq!(
        (sum, server.calls("sum")),
        (3, 4),
        "3 retries, then the value"
    );

    server.script("sum", four());
    let answer = client
        .send(Request::new("sum", json!([1, 2])).with_id(1))
        .await
        .unwrap();
    assert_eq!((answer.result(), server.calls("sum")), (Some(&json!(3)), 8));
    assert_eq!(
        answer.extensions().get::<http::StatusCode>(),
        Some(&http::StatusCode::SERVICE_UNAVAILABLE)
    );
    let gave_up = answer.extensions().get::<GaveUp>().expect("the record");
    assert_eq!(
        (gave_up.retries(), gave_up.reason()),
        (3, GiveUpReason::Exhausted)
    );

    server.script("sum", [Step::raw(500, result)]);
    let sum = call_with_id_1().await.unwrap();
    assert_eq!((sum, server.calls("sum")), (3, 9), "no rule retries a 500");
}

/// `RequestBuilder::header` and `BatchBuilder::header`: the call's own header goes on
/// every attempt, a batch's on the re-send of its failed call too; a name given twice
/// has both values.
#[tokio::test(start_paused = true)]
async fn a_calls_own_header_goes_with_every_attempt() {
    use std::sync::{Arc, Mutex};
    use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};

    let server = FlakyServer::start().await.unwrap();
    server.script("sum", [Step::error(-32005), Step::ok()]);
    let seen: Arc<Mutex<Vec<Option<HeaderValue>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(1, Duration::from_millis(10))).codes([-32005]);
    let stack = tower::ServiceBuilder::new()
        .layer(tower_jsonrpc_retry::JsonRpcRetryLayer::new(strategy))
        .layer(tower_jsonrpc_retry::codec::JsonRpcCodecLayer::new(
            server.uri(),
        ))
        .map_request(move |req: http::Request<_>| {
            let tenant = req.headers().get("x-tenant").cloned();
            log.lock().unwrap().push(tenant);
            req
        })
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        );
    let client = Client::new(stack);
    let tenant = HeaderName::from_static("x-tenant");
    let sum: i64 = client
        .request("sum")
        .params((1, 2))
        .header(tenant.clone(), HeaderValue::from_static("a"))
        .header(tenant.clone(), HeaderValue::from_static("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(sum, 3);
    // Given twice, both values go (the map records the first of them).
    let (a, acme) = (
        Some(HeaderValue::from_static("a")),
        Some(HeaderValue::from_static("acme")),
    );
    assert_eq!(*seen.lock().unwrap(), [a.clone(), a]);

    seen.lock().unwrap().clear();
    server.script("sum", [Step::ok(), Step::error(-32005), Step::ok()]);
    let mut batch = client.batch();
    let first = batch.call::<i64>("sum", (1, 2));
    let second = batch.call::<i64>("sum", (3, 4));
    let batch = batch.header(tenant, HeaderValue::from_static("acme"));
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(first).unwrap(), 3);
    assert_eq!(results.take(second).unwrap(), 7);
    assert_eq!(
        *seen.lock().unwrap(),
        [acme.clone(), acme],
        "the re-send too"
    );
    // A call without one sends none.
    seen.lock().unwrap().clear();
    let _: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [None]);
}

/// `ClientError::status`'s docs: in a partly retried batch whose re-send failed without
/// an answer, a call's error keeps the status of the answer it came in (here a 2xx:
/// none), while `retry_after` is the failed re-send's hint.
#[tokio::test(start_paused = true)]
async fn a_failed_re_sends_hint_is_told_beside_the_earlier_answers_status() {
    let server = FlakyServer::start().await.unwrap();
    server.script(
        "sum",
        [Step::error(2001), Step::status(503).retry_after("5")],
    );
    let strategy = periodic(1)
        .codes([2001])
        .retry_on(ErrorClass::Status(http::StatusCode::SERVICE_UNAVAILABLE));
    let client = client(&server, strategy);
    let mut batch = client.batch();
    let sum = batch.call::<i64>("sum", (1, 2));
    let echo = batch.call::<serde_json::Value>("echo", ("x",));
    let mut results = batch.send().await.unwrap();
    assert_eq!(results.take(echo).unwrap(), json!(["x"]));
    let err = results.take(sum).unwrap_err();
    assert_eq!(err.rpc().map(|e| e.error().code()), Some(2001), "{err}");
    assert_eq!(err.status(), None, "the 2001 came under a 200");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(
        err.gave_up().map(|g| g.last_attempt_unanswered()),
        Some(true)
    );
}

/// A listener on 127.0.0.1 that accepts nothing, its queue of connections full: a
/// connection to it hangs (the kernel drops the SYN), as to a host that drops packets.
/// Returns its address, and what must be kept for it to stay so. Linux's behaviour: other
/// systems may refuse the connection instead.
#[cfg(target_os = "linux")]
async fn queue_full() -> (
    std::net::SocketAddr,
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    // A loopback connection is made, or refused, before `connect` returns; one that
    // the paused clock's second passes is one the kernel holds back.
    loop {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the queue never filled");
    }
    (addr, listener, queued)
}

/// A connection that hangs is cut at half the attempt timeout, as a connect failure:
/// the request never left, so a non-idempotent call is sent again. Before, the
/// attempt timeout cut it, as a timeout, and the call was not retried.
#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_connection_that_hangs_is_a_connect_failure_even_a_write_is_retried_after() {
    let (addr, _listener, _queued) = queue_full().await;
    let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_secs(1)))
        .retry_on(ErrorClass::Connect)
        .non_idempotent(["eth_sendRawTransaction"]);
    let client = Client::builder(format!("http://{addr}/").parse().unwrap())
        .attempt_timeout(Duration::from_secs(4))
        .retry(strategy)
        .build();
    let start = tokio::time::Instant::now();
    let err = client
        .call::<String>("eth_sendRawTransaction", ("0x02f8",))
        .await
        .unwrap_err();
    let transport = err.transport().expect("a transport error");
    assert!(transport.is_connect(), "{transport:?}");
    let gave_up = err.gave_up().map(|g| (g.retries(), g.reason()));
    assert_eq!(gave_up, Some((2, GiveUpReason::Exhausted)), "{err:?}");
    // Three attempts of 2 s (half the attempt timeout), two waits of 1 s.
    assert_eq!(start.elapsed(), Duration::from_secs(8));
}

/// An attempt timeout of zero (or of 1 ms, the timers' tick) cuts every attempt as a
/// timeout: there is no connect timeout of half of it to end with it and make the
/// attempt a connect failure (which even a non-idempotent call is sent again after).
#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_zero_attempt_timeout_cuts_each_attempt_as_a_timeout() {
    let (addr, _listener, _queued) = queue_full().await;
    let server = FlakyServer::start().await.unwrap();
    let uris = [server.uri(), format!("http://{addr}/").parse().unwrap()];
    for (uri, timeout) in uris.into_iter().zip([0, 1].map(Duration::from_millis)) {
        let strategy = RetryStrategy::transient().non_idempotent(["sum"]);
        let client = Client::builder(uri)
            .attempt_timeout(timeout)
            .retry(strategy)
            .build();
        let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
        let transport = err.transport().expect("a transport error");
        assert!(
            transport.is_timeout() && !transport.is_connect(),
            "{timeout:?}: {transport:?}"
        );
        let gave_up = err.gave_up().map(|g| (g.retries(), g.reason()));
        assert_eq!(gave_up, Some((0, GiveUpReason::NotIdempotent)), "{err:?}");
    }
}
