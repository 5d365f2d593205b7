//! The fuzz targets' properties (`fuzz/`), as proptest tests that run in CI: decoding never
//! panics, whatever the bytes, and valid messages round-trip.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{Map, Value};
use tower_jsonrpc_retry::codec::RetryAfter;
use tower_jsonrpc_retry::jsonrpc::{
    BatchResponse, DecodeError, ErrorObject, Id, Request, Response,
};

/// JSON values without floats (serde_json may read a float back one ulp off).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        any::<i64>().prop_map(Id::Number),
        ".{0,10}".prop_map(Id::from),
        Just(Id::Null),
    ]
}

fn payload() -> impl Strategy<Value = Result<Value, ErrorObject>> {
    prop_oneof![
        json_value().prop_map(Ok),
        (any::<i64>(), ".{0,16}", prop::option::of(json_value())).prop_map(|(code, msg, data)| {
            let error = ErrorObject::new(code, msg);
            Err(match data {
                Some(data) => error.with_data(data),
                None => error,
            })
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    (id(), payload()).prop_map(|(id, payload)| Response::new(id, payload))
}

/// Bytes that look like JSON-RPC often enough to reach deep into the decoder: a
/// serialized value with a member or two of a response, possibly cut short or altered.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let member = prop_oneof![
        Just(("jsonrpc", Value::from("2.0"))),
        json_value().prop_map(|v| ("jsonrpc", v)),
        json_value().prop_map(|v| ("id", v)),
        json_value().prop_map(|v| ("result", v)),
        json_value().prop_map(|v| ("error", v)),
        (any::<i64>(), json_value())
            .prop_map(|(c, m)| ("error", serde_json::json!({"code": c, "message": m}))),
    ];
    let object = prop::collection::vec(member, 0..5).prop_map(|members| {
        Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    });
    let message = prop_oneof![
        object.clone(),
        prop::collection::vec(object, 0..4).prop_map(Value::Array),
        json_value(),
    ];
    (
        message,
        any::<prop::sample::Index>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(value, cut, alter, byte)| {
            let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
            if alter && !bytes.is_empty() {
                let i = cut.index(bytes.len());
                bytes[i] = byte;
            } else if alter {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// JSON text of an object or a batch of them, written member by member so that it can
/// hold what a JSON tree cannot: a member given twice, a name written with an escape,
/// members JSON-RPC does not define.
fn message_text() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("jsonrpc"),
        Just("method"),
        Just("params"),
        Just("id"),
        Just("result"),
        Just("error"),
        Just("other"),
    ];
    // As text: some of these are JSON that serde_json will not build (a number beyond
    // `f64`, a lone surrogate, deep nesting).
    let value = prop_oneof![
        Just(r#""2.0""#.to_owned()),
        Just(r#""sum""#.to_owned()),
        Just("[1,2]".to_owned()),
        Just(r#"{"code":-32005,"message":"slow down"}"#.to_owned()),
        Just(r#"{"code":1.5,"message":"m"}"#.to_owned()),
        Just("-0".to_owned()),
        Just("1e400".to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just(format!("{}1{}", "[".repeat(130), "]".repeat(130))),
        json_value().prop_map(|v| v.to_string()),
    ];
    let member = (name, value, any::<bool>()).prop_map(|(name, value, escape)| {
        let name = if escape {
            // The first letter as a \u escape: the same name once read.
            let mut chars = name.chars();
            let first = chars.next().map_or(0, u32::from);
            format!("\\u{first:04x}{}", chars.as_str())
        } else {
            name.to_owned()
        };
        format!("\"{name}\":{value}")
    });
    let object = prop::collection::vec(member, 0..6)
        .prop_map(|members| format!("{{{}}}", members.join(",")));
    prop_oneof![
        object.clone(),
        prop::collection::vec(object, 0..4).prop_map(|items| format!("[{}]", items.join(","))),
        // The first member as raw text: `-0`, `1e2`, ` 1 `, big numbers.
        (r#"(-0|1e2|-1|9223372036854775808| 7 |"\\u0032.0"|"2.0" )"#).prop_map(|id| {
            format!(r#"{{"jsonrpc":"2.0","method":"m","id":{id},"result":{id}}}"#)
        }),
    ]
    .prop_map(String::into_bytes)
}

/// What the tree decoders make of `bytes`, as the bytes decoders must too.
fn through_tree<T>(
    bytes: &[u8],
    decode: impl FnOnce(Value) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    decode(serde_json::from_slice(bytes)?)
}

/// Decoded values must be equal, refusals must say the same. One leniency is allowed:
/// the tree decoders refuse JSON they cannot build (a number beyond `f64`, a lone
/// surrogate, deep nesting), which the bytes decoders accept when it sits in a value
/// they do not build. Only on JSON, never on text that is not JSON.
fn same<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    fast: Result<T, DecodeError>,
    tree: Result<T, DecodeError>,
) -> Result<(), TestCaseError> {
    match (fast, tree) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        // The bytes decoders quote a refused id as the message wrote it (`1e2`), the tree
        // decoders as serde_json writes it (`100.0`): the same number.
        (Err(DecodeError::InvalidId(a)), Err(DecodeError::InvalidId(b))) => {
            let read = |text: &str| serde_json::from_str::<Value>(text).ok();
            prop_assert!(read(&a).is_some() && read(&a) == read(&b), "{a} and {b}");
        }
        (Err(a), Err(b)) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Ok(fast), Err(DecodeError::Json(_))) => {
            let grammar = std::str::from_utf8(bytes)
                .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
            prop_assert!(grammar, "bytes decoder {fast:?} on text that is not JSON");
        }
        (a, b) => prop_assert!(false, "bytes decoder {a:?}, tree decoder {b:?}"),
    }
    Ok(())
}

fn expected_ids() -> [Vec<Id>; 4] {
    [
        vec![],
        vec![Id::Number(1)],
        vec![Id::Number(1), Id::from("2"), Id::Null],
        vec![Id::Number(0), Id::Number(1), Id::Number(2), Id::from("a")],
    ]
}

fn decode_everything(bytes: &[u8]) {
    let _ = Response::from_slice(bytes);
    for ids in expected_ids() {
        if let Ok(batch) = BatchResponse::from_slice(bytes, &ids) {
            assert!(batch.items().len() <= ids.len());
            for item in batch.items() {
                assert!(
                    ids.contains(item.id()),
                    "an item answers a call that was made"
                );
            }
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let _ = RetryAfter::parse(&text, SystemTime::now());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn jsonish_bytes_never_panic(bytes in jsonish()) {
        decode_everything(&bytes);
    }

    #[test]
    fn a_valid_response_round_trips(response in response()) {
        let encoded = serde_json::to_vec(&response).unwrap();
        let decoded = Response::from_slice(&encoded).unwrap();
        prop_assert_eq!(&decoded, &response);
        prop_assert_eq!(serde_json::to_vec(&decoded).unwrap(), encoded);
    }

    #[test]
    fn a_valid_batch_round_trips_in_any_order(
        payloads in prop::collection::vec(payload(), 1..8),
        order in any::<u64>(),
    ) {
        let ids: Vec<Id> = (0..payloads.len() as i64).map(Id::Number).collect();
        let responses: Vec<Response> = ids
            .iter()
            .cloned()
            .zip(payloads)
            .map(|(id, payload)| Response::new(id, payload))
            .collect();
        // The server may answer in any order: rotate and reverse.
        let mut sent = responses.clone();
        let len = sent.len();
        sent.rotate_left((order as usize) % len);
        if order % 2 == 1 {
            sent.reverse();
        }
        let encoded = serde_json::to_vec(&sent).unwrap();
        let batch = BatchResponse::from_slice(&encoded, &ids).unwrap();
        prop_assert_eq!(batch.items(), &responses[..], "matched back to call order by id");
        let again = BatchResponse::from_slice(&serde_json::to_vec(&batch).unwrap(), &ids).unwrap();
        prop_assert_eq!(again.items(), batch.items());
    }

    /// The bytes decoders read members straight from the text; they must agree with the
    /// tree decoders (`from_value`) on every message, valid or not.
    #[test]
    fn bytes_and_tree_decoders_agree(bytes in prop_oneof![message_text(), jsonish()]) {
        same(&bytes, Request::from_slice(&bytes), through_tree(&bytes, Request::from_value))?;
        same(&bytes, Response::from_slice(&bytes), through_tree(&bytes, Response::from_value))?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            for ids in expected_ids() {
                same(
                    &bytes,
                    BatchResponse::from_slice(&bytes, &ids).map(|b| b.items().to_vec()),
                    through_tree(&bytes, |v| BatchResponse::from_value(v, &ids)).map(|b| b.items().to_vec()),
                )?;
            }
        }
    }

    #[test]
    fn retry_after_never_panics(text in ".{0,40}") {
        let _ = RetryAfter::parse(&text, SystemTime::now());
    }

    #[test]
    fn retry_after_seconds_read_back_exactly(secs in any::<u64>(), pad in "[ \t]{0,2}") {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let parsed = RetryAfter::parse(&format!("{pad}{secs}{pad}"), now);
        prop_assert_eq!(parsed, Some(RetryAfter::new(Duration::from_secs(secs))));
    }

    #[test]
    fn retry_after_dates_read_back_as_delays(ahead in 0u64..10_000_000, behind in 0u64..10_000_000) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(ahead));
        prop_assert_eq!(RetryAfter::parse(&later, now), Some(RetryAfter::new(Duration::from_secs(ahead))));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(behind));
        prop_assert_eq!(RetryAfter::parse(&earlier, now), Some(RetryAfter::new(Duration::ZERO)));
    }
}

/// Found by review: where the bytes decoder refuses a message for a later reason than
/// the tree decoder (which cannot build a value), the refusal is the tree decoder's.
#[test]
fn a_refusal_is_the_tree_decoders_own() {
    let cases: [&[u8]; 3] = [
        br#"{"jsonrpc":"2.0","result":1e400,"error":{"code":1,"message":"m"},"id":1}"#,
        br#"{"jsonrpc":"1.0","method":"m","params":[1e400]}"#,
        br#"{"jsonrpc":"2.0","method":"\ud800","id":1}"#,
    ];
    for bytes in cases {
        let tree = serde_json::from_slice::<Value>(bytes).map_err(DecodeError::from);
        assert!(tree.is_err(), "serde_json builds none of these");
        assert!(matches!(
            Request::from_slice(bytes),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            Response::from_slice(bytes),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            BatchResponse::from_slice(bytes, &[Id::Number(1)]),
            Err(DecodeError::Json(_))
        ));
    }
}

/// Found by `a_valid_response_round_trips`: `"data": null` used to decode as no `data`
/// at all, so re-encoding dropped the member.
#[test]
fn error_data_null_survives_a_round_trip() {
    let body = br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"m","data":null},"id":1}"#;
    let response = Response::from_slice(body).unwrap();
    assert_eq!(
        response.error().and_then(ErrorObject::data),
        Some(&Value::Null)
    );
    assert_eq!(serde_json::to_vec(&response).unwrap(), body.to_vec());
    let absent = br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"m"},"id":1}"#;
    let response = Response::from_slice(absent).unwrap();
    assert_eq!(response.error().and_then(ErrorObject::data), None);
    assert_eq!(serde_json::to_vec(&response).unwrap(), absent.to_vec());
}

/// serde_json builds a JSON object whose first member is named
/// `"$serde_json::private::RawValue"` (its `raw_value` feature's private token) as the
/// value the member's string holds, and refuses it when that is no string of JSON. The
/// bytes decoders read the name as any other: the one place where they and a tree built
/// with `serde_json::from_slice` differ on JSON the tree can be built from.
#[test]
fn serde_jsons_raw_value_token_is_an_ordinary_member_name() {
    let wrapped =
        br#"{"$serde_json::private::RawValue":"{\"jsonrpc\":\"2.0\",\"result\":7,\"id\":1}"}"#;
    let tree = serde_json::from_slice::<Value>(wrapped).map_err(DecodeError::from);
    assert_eq!(
        tree.and_then(Response::from_value)
            .ok()
            .map(|r| r.id().clone()),
        Some(Id::Number(1)),
        "serde_json unwraps the token's string (if this fails, the exception is gone)"
    );
    assert!(matches!(
        Response::from_slice(wrapped),
        Err(DecodeError::Invalid("response has no id"))
    ));

    // A tree of this cannot be built; the bytes decoders never build the member.
    let member =
        br#"[{"jsonrpc":"2.0","result":1,"id":9,"x":{"$serde_json::private::RawValue":5}}]"#;
    assert!(serde_json::from_slice::<Value>(member).is_err());
    assert!(matches!(
        BatchResponse::from_slice(member, &[Id::Number(1)]),
        Err(DecodeError::UnexpectedItem(Id::Number(9)))
    ));
}
