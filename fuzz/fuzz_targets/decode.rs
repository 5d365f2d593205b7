//! Response and request decoding: no panic on any bytes, a decoded response round-trips,
//! and the bytes decoders (`from_slice`) agree with the tree decoders (`from_value`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_jsonrpc_retry::jsonrpc::{BatchResponse, DecodeError, Id, Request, Response};

/// Whether the response holds no float: serde_json (without `float_roundtrip`) may read a
/// float back one ulp off, which is serde_json's documented trade-off, not this crate's.
fn exact(response: &Response) -> bool {
    fn no_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => !n.is_f64(),
            Value::Array(items) => items.iter().all(no_float),
            Value::Object(map) => map.values().all(no_float),
            _ => true,
        }
    }
    match response.payload() {
        Ok(result) => no_float(result),
        Err(error) => error.data().is_none_or(no_float),
    }
}

/// The bytes decoder's answer must be the tree decoder's: equal values, the same
/// refusal (a refused id quoted as written by the one and as serde_json writes it by
/// the other: the same JSON value). Only JSON that serde_json cannot build (a number
/// beyond `f64`, a lone surrogate, deep nesting) may be accepted by the bytes decoder
/// where the tree refuses.
fn agree<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    fast: Result<T, DecodeError>,
    tree: impl FnOnce(Value) -> Result<T, DecodeError>,
) {
    let tree = serde_json::from_slice(data)
        .map_err(DecodeError::from)
        .and_then(tree);
    match (fast, tree) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(DecodeError::InvalidId(a)), Err(DecodeError::InvalidId(b))) => {
            let read = |text: &str| serde_json::from_str::<Value>(text).ok();
            assert!(read(&a).is_some() && read(&a) == read(&b), "{a} and {b}");
        }
        (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Ok(_), Err(DecodeError::Json(_))) => {
            let text = std::str::from_utf8(data).expect("accepted text is UTF-8");
            serde_json::from_str::<serde::de::IgnoredAny>(text).expect("accepted text is JSON");
        }
        (a, b) => panic!("bytes decoder {a:?}, tree decoder {b:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    agree(data, Request::from_slice(data), Request::from_value);
    agree(data, Response::from_slice(data), Response::from_value);
    if let Some(response) = Response::from_slice(data).ok().filter(exact) {
        // decode → encode → decode gives the same message, and the same bytes.
        let encoded = serde_json::to_vec(&response).expect("a response always serializes");
        let again = Response::from_slice(&encoded).expect("an encoded response decodes");
        assert_eq!(response, again);
        assert_eq!(encoded, serde_json::to_vec(&again).expect("serializes"));
    }
    let expected: [&[Id]; 4] = [
        &[],
        &[Id::Number(1)],
        &[Id::Number(1), Id::from("2"), Id::Null],
        &[Id::Number(0), Id::Number(1), Id::Number(2), Id::from("a")],
    ];
    for ids in expected {
        if !data.iter().all(u8::is_ascii_whitespace) {
            agree(
                data,
                BatchResponse::from_slice(data, ids).map(|b| b.items().to_vec()),
                |v| BatchResponse::from_value(v, ids).map(|b| b.items().to_vec()),
            );
        }
        if let Ok(batch) = BatchResponse::from_slice(data, ids) {
            let exact = batch.items().iter().all(exact);
            assert!(batch.items().len() <= ids.len());
            let encoded = serde_json::to_vec(&batch).expect("a batch always serializes");
            // Items come back in call order, one per answered id.
            let answered: Vec<Id> = batch.items().iter().map(|r| r.id().clone()).collect();
            if exact && !answered.is_empty() && batch.batch_error().is_none() && batch.unmatched().is_empty() {
                let again = BatchResponse::from_slice(&encoded, &answered)
                    .expect("an encoded batch decodes");
                assert_eq!(batch.items(), again.items());
            }
        }
    }
});
