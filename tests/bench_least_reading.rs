//! The yardstick of BENCHMARKS.md's row 7, `least_reading` in `benches/common`: true
//! exactly when the answer is a success to the call, as its doc says.

#[path = "../benches/common/mod.rs"]
mod common;

use http::StatusCode;

const CALL: &[u8] = br#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#;

#[test]
fn a_success_reads_as_one_whatever_its_result() {
    for answer in [
        r#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        r#"{"jsonrpc":"2.0","result":null,"id":1}"#,
        r#"{"jsonrpc":"2.0","result":{"a":[1]},"id":1}"#,
    ] {
        assert!(
            common::least_reading(CALL, StatusCode::OK, answer.as_bytes()),
            "{answer}"
        );
    }
}

#[test]
fn anything_else_does_not() {
    for (status, answer) in [
        (
            StatusCode::OK,
            r#"{"jsonrpc":"2.0","error":{"code":1,"message":"m"},"id":1}"#,
        ),
        (StatusCode::OK, r#"{"jsonrpc":"2.0","id":1}"#),
        (StatusCode::OK, r#"{"jsonrpc":"1.0","result":3,"id":1}"#),
        (StatusCode::OK, r#"{"jsonrpc":"2.0","result":3,"id":2}"#),
        (StatusCode::OK, "<html>"),
        (
            StatusCode::BAD_GATEWAY,
            r#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        ),
    ] {
        assert!(
            !common::least_reading(CALL, status, answer.as_bytes()),
            "{status} {answer}"
        );
    }
}
