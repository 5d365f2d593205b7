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
    let ok = |body: &str| {
        Answer::Http(HttpAnswer {
            status: 200,
            retry_after: None,
            content_encoding: None,
            transfer_encoding: false,
            body: body.as_bytes().to_vec(),
            echo: None,
            geth: false,
            chunks: Vec::new(),
            broken: false,
            delay: 0,
        })
    };
    let case = Case {
        request:
            br#"[{"jsonrpc":"2.0","method":"sum","id":1},{"jsonrpc":"2.0","method":"sum","id":2}]"#
                .to_vec(),
        request_chunks: Vec::new(),
        request_broken: false,
        accept_gzip: false,
        content_length: false,
        request_limit: None,
        response_limit: None,
        attempt_timeout: None,
        deadline: None,
        answers: vec![
            ok(
                r#"[{"jsonrpc":"2.0","result":3,"id":1},{"jsonrpc":"2.0","error":{"code":-32005,"message":"m"},"id":2}]"#,
            ),
            ok(r#"[{"jsonrpc":"2.0","result":7,"id":2}]"#),
        ],
    };
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
