//! `Retry-After` parsing: no panic on any string, and delay-seconds read back exactly.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tower_jsonrpc_retry::codec::RetryAfter;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let text = String::from_utf8_lossy(data);
    let parsed = RetryAfter::parse(&text, now);
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(parsed, Some(RetryAfter::new(Duration::from_secs(secs))));
    }
    if let Ok(header) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, header);
        let _ = RetryAfter::from_headers(&headers);
    }
});
