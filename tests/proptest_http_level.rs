//! The HTTP-level layer (`JsonRpcRetryLayer::http`) on any request and response bytes:
//! the properties of `tests/http_level_props/mod.rs`, which the fuzz target
//! `http_level` checks too, run by proptest so that CI holds them.

mod http_level_props;

use http_level_props::{Case, check};
use proptest::prelude::*;

fn run(data: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(check(&Case::read(data)));
}

proptest! {
    // 2,048 cases (about a second in a debug build); `PROPTEST_CASES` asks for more.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2048),
    ))]

    #[test]
    fn the_http_level_keeps_its_promises_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        run(&data);
    }
}

/// The harness reaches a gathered batch answer: a batch whose second call is retried
/// alone.
#[tokio::test(start_paused = true)]
async fn the_harness_gathers_a_partly_retried_batch() {
    use http_level_props::{Answer, HttpAnswer, run};
    let ok = |body: &str| Answer::Http(HttpAnswer::plain(200, body.as_bytes().to_vec()));
    let case = Case::plain(
        br#"[{"jsonrpc":"2.0","method":"sum","id":1},{"jsonrpc":"2.0","method":"sum","id":2}]"#
            .to_vec(),
        vec![
            ok(
                r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"m"},"id":2}]"#,
            ),
            ok(r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#),
        ],
    );
    let (outcome, seen) = run(&case, true).await;
    assert_eq!(seen.len(), 2);
    let (status, headers, body) = outcome.unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["x-attempt"], "1", "the last exchange's head");
    assert!(!headers.contains_key("content-digest"), "{headers:?}");
    assert_eq!(
        body,
        r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","result":7,"id":2}]"#
    );
    check(&case).await;
}

/// What a server answers one call with, in an exchange of a batch's: the templates of
/// [`HttpAnswer::echo`](http_level_props::HttpAnswer), `{ID}` the call's id.
const TEMPLATES: [&str; 6] = [
    r#"{"jsonrpc":"2.0","result":"0x2a","id":{ID}}"#,
    r#"{"jsonrpc":"2.0","result":1e400,"id":{ID}}"#,
    r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"limited","data":1e400},"id":{ID}}"#,
    r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"behind"},"id":{ID}}"#,
    r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no such method"},"id":{ID}}"#,
    r#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"unread id"},"id":null}"#,
];

/// A batch of `calls` calls (ids 1, 2, …, now and then a notification among them) whose
/// exchanges each answer with one of `rounds`: a template per call (cycling), or geth's
/// refusal of the batch.
fn a_batch_exchanged(
    calls: usize,
    with_notification: bool,
    rounds: &[(Vec<usize>, bool, u16)],
) -> Case {
    use http_level_props::{Answer, HttpAnswer};
    let mut items: Vec<String> = (1..=calls)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","method":"sum","params":[{id}],"id":{id}}}"#))
        .collect();
    if with_notification {
        items.insert(
            1,
            r#"{"jsonrpc":"2.0","method":"log","params":["x"]}"#.to_owned(),
        );
    }
    let answers = rounds
        .iter()
        .map(|(templates, geth, status)| {
            Answer::Http(HttpAnswer {
                echo: Some(templates.iter().map(|&t| TEMPLATES[t].to_owned()).collect()),
                geth: *geth,
                ..HttpAnswer::plain(*status, Vec::new())
            })
        })
        .collect();
    Case::plain(format!("[{}]", items.join(",")).into_bytes(), answers)
}

proptest! {
    // Random bytes seldom make a batch every exchange of which answers each call: here
    // every case is one, retried in part or whole, its answer gathered from several
    // exchanges (its items as the server wrote them, numbers beyond serde_json's
    // included), and held to the same properties.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
    ))]

    #[test]
    fn a_batch_gathered_from_several_exchanges_keeps_its_promises(
        calls in 1usize..5,
        with_notification in any::<bool>(),
        rounds in proptest::collection::vec(
            (
                proptest::collection::vec(0usize..TEMPLATES.len(), 1..4),
                proptest::bool::weighted(0.2),
                prop_oneof![4 => Just(200u16), 1 => Just(429u16), 1 => Just(503u16)],
            ),
            1..5,
        ),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(check(&a_batch_exchanged(calls, with_notification, &rounds)));
    }
}
