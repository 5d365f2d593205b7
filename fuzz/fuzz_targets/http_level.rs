//! The HTTP-level layer (`JsonRpcRetryLayer::http`) on any request and response bytes,
//! with a strategy that retries nothing and one that retries: every call ends, without a
//! panic, sends the caller's bytes and hands back the server's (see the properties in
//! `tests/http_level_props/mod.rs`, shared with `tests/proptest_http_level.rs`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/http_level_props/mod.rs"]
mod http_level_props;

use http_level_props::{Case, check};

/// One runtime for every input, on a paused clock: retries and timeouts cost no time.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(check(&Case::read(data)));
});
