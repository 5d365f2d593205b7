//! Every example of the JSON-RPC 2.0 specification, encoded and decoded.

use serde_json::{Value, json};
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, DecodeError, ErrorObject, Id, Request, Response,
};

fn roundtrip_request(text: &str) -> Request {
    let req = Request::from_slice(text.as_bytes()).unwrap();
    let expected: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        expected,
        "re-encoding {text}"
    );
    req
}

fn response(text: &str) -> Response {
    let resp = Response::from_slice(text.as_bytes()).unwrap();
    let expected: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        expected,
        "re-encoding {text}"
    );
    resp
}

#[test]
fn positional_parameters() {
    let req = roundtrip_request(
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#,
    );
    assert_eq!(req.method(), "subtract");
    assert_eq!(req.params(), Some(&json!([42, 23])));
    assert_eq!(req.id(), Some(&Id::Number(1)));
    let resp = response(r#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#);
    assert_eq!(resp.result(), Some(&json!(19)));

    let req = roundtrip_request(
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#,
    );
    assert_eq!(req.id(), Some(&Id::Number(2)));
    let resp = response(r#"{"jsonrpc": "2.0", "result": -19, "id": 2}"#);
    assert_eq!(resp.result(), Some(&json!(-19)));
}

#[test]
fn named_parameters() {
    let req = roundtrip_request(
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
    );
    assert_eq!(
        req.params(),
        Some(&json!({"subtrahend": 23, "minuend": 42}))
    );
    assert_eq!(
        response(r#"{"jsonrpc": "2.0", "result": 19, "id": 3}"#).id(),
        &Id::Number(3)
    );
    roundtrip_request(
        r#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
    );
}

#[test]
fn notifications() {
    let note =
        roundtrip_request(r#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#);
    assert!(note.is_notification());
    let note = roundtrip_request(r#"{"jsonrpc": "2.0", "method": "foobar"}"#);
    assert!(note.is_notification());
    assert_eq!(note.params(), None);
}

#[test]
fn method_not_found() {
    let resp = response(
        r#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#,
    );
    assert_eq!(resp.id(), &Id::from("1"));
    let err = resp.error().unwrap();
    assert_eq!(err.code(), ErrorObject::METHOD_NOT_FOUND);
    assert_eq!(err.message(), "Method not found");
    assert_eq!(err.data(), None);
}

#[test]
fn invalid_json() {
    let sent = r#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#;
    assert!(matches!(
        Request::from_slice(sent.as_bytes()),
        Err(DecodeError::Json(_))
    ));
    let resp = response(
        r#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#,
    );
    assert_eq!(resp.id(), &Id::Null);
    assert_eq!(resp.error().unwrap().code(), ErrorObject::PARSE_ERROR);
}

#[test]
fn invalid_request_object() {
    let sent = r#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#;
    assert!(matches!(
        Request::from_slice(sent.as_bytes()),
        Err(DecodeError::Invalid(_))
    ));
    let resp = response(
        r#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#,
    );
    assert_eq!(resp.error().unwrap().code(), ErrorObject::INVALID_REQUEST);
}

#[test]
fn batch_invalid_json_is_answered_with_one_error() {
    let body =
        br#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#;
    let ids = [Id::from("1"), Id::from("2")];
    let batch = BatchResponse::from_slice(body, &ids).unwrap();
    assert_eq!(
        batch.batch_error().unwrap().code(),
        ErrorObject::PARSE_ERROR
    );
    assert_eq!(batch.items().len(), 2);
    for (item, id) in batch.items().iter().zip(&ids) {
        assert_eq!(item.id(), id);
        assert_eq!(item.error().unwrap().code(), -32700);
    }
}

#[test]
fn empty_batch() {
    let sent: Vec<Value> = serde_json::from_str("[]").unwrap();
    assert!(sent.is_empty());
    assert!(BatchRequest::new(vec![]).is_empty());
    let body = br#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#;
    let batch = BatchResponse::from_slice(body, &[]).unwrap();
    assert_eq!(
        batch.batch_error().unwrap().code(),
        ErrorObject::INVALID_REQUEST
    );
    assert!(batch.items().is_empty());
}

#[test]
fn invalid_batch_items() {
    for item in ["1", "2", "3"] {
        assert!(matches!(
            Request::from_slice(item.as_bytes()),
            Err(DecodeError::NotAnObject)
        ));
    }
    let body = br#"[
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
    ]"#;
    let batch = BatchResponse::from_slice(body, &[]).unwrap();
    assert!(batch.items().is_empty());
    assert_eq!(batch.unmatched().len(), 3);
}

#[test]
fn mixed_batch() {
    let sent = r#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"#;
    let items: Vec<Value> = serde_json::from_str(sent).unwrap();
    let decoded: Vec<_> = items.into_iter().map(Request::from_value).collect();
    assert!(matches!(decoded[3], Err(DecodeError::Version(None))));
    let batch: BatchRequest = decoded.into_iter().filter_map(Result::ok).collect();
    assert_eq!(batch.len(), 5);
    let ids: Vec<Id> = batch.ids().cloned().collect();
    assert_eq!(ids, ["1", "2", "5", "9"].map(Id::from));

    let body = br#"[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]"#;
    let resp = BatchResponse::from_slice(body, &ids).unwrap();
    let got: Vec<_> = resp
        .items()
        .iter()
        .map(|r| (r.id().clone(), r.payload().cloned().map_err(|e| e.code())))
        .collect();
    assert_eq!(
        got,
        [
            (Id::from("1"), Ok(json!(7))),
            (Id::from("2"), Ok(json!(19))),
            (Id::from("5"), Err(-32601)),
            (Id::from("9"), Ok(json!(["hello", 5]))),
        ]
    );
    assert_eq!(resp.unmatched().len(), 1);
    // Written back, the null-id error follows the answers, and reads back as it was.
    let written = serde_json::to_vec(&resp).unwrap();
    let items: Vec<Value> = serde_json::from_slice(&written).unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items[4]["id"], Value::Null);
    assert_eq!(BatchResponse::from_slice(&written, &ids).unwrap(), resp);
}

#[test]
fn all_notification_batch() {
    let sent = r#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#;
    let items: Vec<Value> = serde_json::from_str(sent).unwrap();
    let batch: BatchRequest = items
        .into_iter()
        .map(|v| Request::from_value(v).unwrap())
        .collect();
    assert_eq!(batch.ids().count(), 0);
    assert_eq!(
        serde_json::to_value(&batch).unwrap(),
        serde_json::from_str::<Value>(sent).unwrap()
    );
    let resp = BatchResponse::from_slice(b"", &[]).unwrap();
    assert!(resp.items().is_empty());
}

/// Answers as JSON-RPC 1.0 servers write them (Bitcoin Core before version 28, its
/// forks): no `jsonrpc` member, and `result` and `error` both present, one `null`. Read
/// alike from bytes and from a tree, single and in a batch; whitespace around a `null`
/// changes nothing.
#[test]
fn json_rpc_1_0_answers_are_read() {
    let success = [
        r#"{"result": 19, "error": null, "id": 1}"#,
        r#"{"result":19,"error" :  null ,"id":1}"#,
        r#"{"error": null, "result": 19, "id": 1}"#,
        r#"{"result": 19, "id": 1}"#,
        r#"{"jsonrpc": "2.0", "result": 19, "error": null, "id": 1}"#,
    ];
    for text in success {
        let tree: Value = serde_json::from_str(text).unwrap();
        for resp in [
            Response::from_slice(text.as_bytes()),
            Response::from_value(tree),
        ] {
            let resp = resp.unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(resp.result(), Some(&json!(19)), "{text}");
            assert_eq!(resp.id(), &Id::Number(1), "{text}");
        }
    }
    let failure = r#"{"result": null, "error": {"code": -8, "message": "Block height out of range"}, "id": "a"}"#;
    let tree: Value = serde_json::from_str(failure).unwrap();
    for resp in [
        Response::from_slice(failure.as_bytes()),
        Response::from_value(tree),
    ] {
        let resp = resp.unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(-8));
        assert_eq!(resp.id(), &Id::from("a"));
    }
    // Both `null`: a success whose result is `null`.
    let both = Response::from_slice(br#"{"result": null, "error": null, "id": 1}"#).unwrap();
    assert_eq!(both.result(), Some(&Value::Null));

    let body = br#"[{"result": 3, "error": null, "id": 1},
        {"result": null, "error": {"code": -5, "message": "No such transaction"}, "id": 2}]"#;
    let batch = BatchResponse::from_slice(body, &[Id::Number(1), Id::Number(2)]).unwrap();
    let results: Vec<_> = batch
        .items()
        .iter()
        .map(|r| (r.result().cloned(), r.error().map(|e| e.code())))
        .collect();
    assert_eq!(results, [(Some(json!(3)), None), (None, Some(-5))]);

    // Such a server answers a notification too, with a null id: passed over.
    let body = br#"[{"result": 3, "error": null, "id": 1},
        {"result": null, "error": null, "id": null}]"#;
    let batch = BatchResponse::from_slice(body, &[Id::Number(1)]).unwrap();
    assert_eq!(batch.items().len(), 1);
    assert_eq!(batch.items()[0].result(), Some(&json!(3)));
    assert!(batch.unmatched().is_empty());
    // A null-id success is no answer to a call: the call is still missing.
    let body = br#"[{"result": 3, "error": null, "id": null}]"#;
    assert!(matches!(
        BatchResponse::from_slice(body, &[Id::Number(1)]),
        Err(DecodeError::MissingItems(_))
    ));

    // The version, when given, is still checked; neither of two non-null members wins.
    for (text, why) in [
        (
            r#"{"jsonrpc": "1.0", "result": 19, "error": null, "id": 1}"#,
            "version",
        ),
        (
            r#"{"result": 19, "error": {"code": 1, "message": "m"}, "id": 1}"#,
            "both",
        ),
    ] {
        let err = Response::from_slice(text.as_bytes()).unwrap_err();
        let expected = match why {
            "version" => matches!(err, DecodeError::Version(Some(_))),
            _ => matches!(err, DecodeError::ResultAndError),
        };
        assert!(expected, "{text}: {err:?}");
    }
}

/// `"params": null` reads as no params (jsonrpsee's client writes it for a notification
/// without params), from bytes and from a tree; other non-structured params are refused.
#[test]
fn null_params_read_as_none() {
    let text = r#"{"jsonrpc": "2.0", "method": "ping", "params": null}"#;
    let tree: Value = serde_json::from_str(text).unwrap();
    for req in [
        Request::from_slice(text.as_bytes()),
        Request::from_value(tree),
    ] {
        let req = req.unwrap();
        assert_eq!(req.method(), "ping");
        assert_eq!(req.params(), None);
        assert!(req.is_notification());
    }
    for params in ["1", r#""a""#, "true"] {
        let text = format!(r#"{{"jsonrpc": "2.0", "method": "m", "params": {params}, "id": 1}}"#);
        assert!(
            matches!(
                Request::from_slice(text.as_bytes()),
                Err(DecodeError::Invalid(_))
            ),
            "{text}"
        );
    }
}

#[test]
#[allow(clippy::type_complexity)]
fn strict_decoding() {
    type Check = fn(&DecodeError) -> bool;
    let cases: &[(&str, Check)] = &[
        // No version is a JSON-RPC 1.0 answer (`json_rpc_1_0_answers_are_read`), but
        // the rest is still checked.
        (r#"{"result": 1}"#, |e| matches!(e, DecodeError::Invalid(_))),
        (r#"{"error": "rate limited", "id": 1}"#, |e| {
            matches!(e, DecodeError::Invalid(_))
        }),
        (r#"{"error": null, "id": 1}"#, |e| {
            matches!(e, DecodeError::MissingResult)
        }),
        (r#"{"jsonrpc": "1.0", "result": 1, "id": 1}"#, |e| {
            matches!(e, DecodeError::Version(Some(_)))
        }),
        (r#"{"jsonrpc": 2.0, "result": 1, "id": 1}"#, |e| {
            matches!(e, DecodeError::Invalid(_))
                && e.to_string() == r#"invalid message: "jsonrpc" is not the string "2.0""#
        }),
        (r#"{"jsonrpc": "2.0", "id": 1}"#, |e| {
            matches!(e, DecodeError::MissingResult)
        }),
        (
            r#"{"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "x"}, "id": 1}"#,
            |e| matches!(e, DecodeError::ResultAndError),
        ),
        (r#"{"jsonrpc": "2.0", "result": 1}"#, |e| {
            matches!(e, DecodeError::Invalid(_))
        }),
        (r#"{"jsonrpc": "2.0", "result": 1, "id": 1.5}"#, |e| {
            matches!(e, DecodeError::InvalidId(_))
        }),
        // `Id`'s docs: written with a fraction or an exponent, even a whole one.
        (r#"{"jsonrpc": "2.0", "result": 1, "id": 1.0}"#, |e| {
            matches!(e, DecodeError::InvalidId(_))
        }),
        (r#"{"jsonrpc": "2.0", "result": 1, "id": 1e0}"#, |e| {
            matches!(e, DecodeError::InvalidId(_))
        }),
        (r#"{"jsonrpc": "2.0", "result": 1, "id": [1]}"#, |e| {
            matches!(e, DecodeError::InvalidId(_))
        }),
        (
            r#"{"jsonrpc": "2.0", "error": {"code": "x", "message": "x"}, "id": 1}"#,
            |e| matches!(e, DecodeError::Invalid(_)),
        ),
        (
            r#"{"jsonrpc": "2.0", "error": {"message": "x"}, "id": 1}"#,
            |e| matches!(e, DecodeError::Invalid(_)),
        ),
        (r#"[1]"#, |e| matches!(e, DecodeError::NotAnObject)),
        ("\u{0}\u{ff}", |e| matches!(e, DecodeError::Json(_))),
    ];
    for (text, check) in cases {
        let err = Response::from_slice(text.as_bytes()).unwrap_err();
        assert!(check(&err), "{text}: {err:?}");
        assert!(!err.to_string().is_empty());
    }
    assert!(Response::from_slice(&[0xff, 0xfe]).is_err());
    // A null result is a result.
    let resp = Response::from_slice(br#"{"jsonrpc": "2.0", "result": null, "id": 1}"#).unwrap();
    assert_eq!(resp.result(), Some(&Value::Null));
}

#[test]
fn batch_matching_errors() {
    let ids = [Id::Number(1), Id::Number(2)];
    let one = br#"[{"jsonrpc": "2.0", "result": 1, "id": 1}]"#;
    match BatchResponse::from_slice(one, &ids) {
        Err(DecodeError::MissingItems(missing)) => assert_eq!(missing, [Id::Number(2)]),
        other => panic!("{other:?}"),
    }
    let dup =
        br#"[{"jsonrpc": "2.0", "result": 1, "id": 1}, {"jsonrpc": "2.0", "result": 1, "id": 1}]"#;
    assert!(matches!(
        BatchResponse::from_slice(dup, &ids),
        Err(DecodeError::UnexpectedItem(Id::Number(1)))
    ));
    let other = br#"[{"jsonrpc": "2.0", "result": 1, "id": 7}]"#;
    assert!(matches!(
        BatchResponse::from_slice(other, &ids),
        Err(DecodeError::UnexpectedItem(Id::Number(7)))
    ));
    let success = br#"{"jsonrpc": "2.0", "result": 1, "id": 1}"#;
    assert!(matches!(
        BatchResponse::from_slice(success, &ids),
        Err(DecodeError::ShapeMismatch)
    ));
    assert!(matches!(
        BatchResponse::from_slice(b"  ", &ids),
        Err(DecodeError::EmptyBody)
    ));
    // Any order: matched by id.
    let reversed = br#"[{"jsonrpc": "2.0", "result": "b", "id": 2}, {"jsonrpc": "2.0", "result": "a", "id": 1}]"#;
    let batch = BatchResponse::from_slice(reversed, &ids).unwrap();
    assert_eq!(batch.items()[0].result(), Some(&json!("a")));
    assert_eq!(
        batch.get(&Id::Number(2)).unwrap().result(),
        Some(&json!("b"))
    );
}

#[test]
fn cloning_a_request_shares_its_params() {
    let req = Request::new("big", json!({"blob": "x".repeat(1024)})).with_id(1);
    let copy = req.clone();
    assert!(std::ptr::eq(req.params().unwrap(), copy.params().unwrap()));
    assert_eq!(req, copy);
}

/// A response read from bytes, and from the JSON tree of the same bytes: the two
/// decoders must agree.
fn both_ways(body: &[u8]) -> [Result<Response, DecodeError>; 2] {
    let tree = serde_json::from_slice(body).expect("JSON");
    [Response::from_slice(body), Response::from_value(tree)]
}

#[test]
fn an_error_member_given_as_an_array_is_refused() {
    // serde would read the error object's fields from an array; the specification says
    // the error is an object.
    let body = br#"{"jsonrpc":"2.0","error":[-32000,"boom",{"x":1}],"id":1}"#;
    for read in both_ways(body) {
        assert!(matches!(read, Err(DecodeError::Invalid(_))), "{read:?}");
    }
}

#[test]
fn an_error_object_deserializes_only_from_an_object_as_a_response_reads_it() {
    // Its own `Deserialize` is as strict as the response decoder: an array of the
    // fields is no error object.
    let array = serde_json::from_value::<ErrorObject>(json!([-32000, "boom", {"x": 1}]));
    assert!(array.is_err(), "{array:?}");
    let short = serde_json::from_str::<ErrorObject>(r#"[-32000, "boom"]"#);
    assert!(short.is_err(), "{short:?}");
    // A member given twice keeps its last value, as in a response.
    let twice = r#"{"code":-32000,"message":"m","data":1,"data":2}"#;
    let direct = serde_json::from_str::<ErrorObject>(twice).unwrap();
    let body = format!(r#"{{"jsonrpc":"2.0","error":{twice},"id":1}}"#);
    let in_response = Response::from_slice(body.as_bytes()).unwrap();
    assert_eq!(Some(&direct), in_response.error());
    assert_eq!(direct.data(), Some(&json!(2)));
    // What it reads is unchanged: `data: null` is kept, and absent is absent.
    let null = serde_json::from_str::<ErrorObject>(r#"{"code":1,"message":"m","data":null}"#);
    assert_eq!(null.unwrap().data(), Some(&Value::Null));
    let none = serde_json::from_str::<ErrorObject>(r#"{"code":1,"message":"m"}"#).unwrap();
    assert_eq!(none, ErrorObject::new(1, "m"));
}

#[test]
fn a_body_of_a_form_feed_is_not_empty_but_not_json() {
    // JSON's whitespace is space, tab, line feed and carriage return; a form feed is
    // none of them, so such a body is neither empty nor a JSON message.
    let ff = BatchResponse::from_slice(b"\x0c", &[]);
    assert!(matches!(ff, Err(DecodeError::Json(_))), "{ff:?}");
    let ff = BatchResponse::from_slice(b" \x0c\n", &[Id::Number(1)]);
    assert!(matches!(ff, Err(DecodeError::Json(_))), "{ff:?}");
    // JSON's own whitespace is still an empty body.
    let blank = BatchResponse::from_slice(b" \t\r\n", &[Id::Number(1)]);
    assert!(matches!(blank, Err(DecodeError::EmptyBody)), "{blank:?}");
    assert!(BatchResponse::from_slice(b" \t\r\n", &[]).is_ok());
}

#[test]
fn a_single_error_with_an_id_is_not_a_batch_level_error() {
    let ids = [Id::Number(1), Id::Number(2)];
    let body = br#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"x"},"id":1}"#;
    // Not every call's answer: it answers call 1 only.
    assert!(matches!(
        BatchResponse::from_slice(body, &ids),
        Err(DecodeError::ShapeMismatch)
    ));
    let null = br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"x"},"id":null}"#;
    let whole = BatchResponse::from_slice(null, &ids).unwrap();
    assert_eq!(whole.batch_error().map(ErrorObject::code), Some(-32600));
    assert_eq!(whole.items().len(), 2);
}

/// A string cut in the middle of an emoji, as JavaScript's `JSON.stringify` writes it (a
/// lone surrogate: valid JSON that serde_json cannot hold in a `String`), reads as U+FFFD
/// in a server's answer: an error object keeps its code, and one such item does not cost
/// a batch its other answers. A request stays refused.
#[test]
fn a_lone_surrogate_in_an_answer_reads_as_the_replacement_character() {
    use tower_jsonrpc_retry::jsonrpc::{BatchResponse, DecodeError, Id, Request, Response};
    let error = br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"execution reverted: \ud83d"},"id":1}"#;
    let resp = Response::from_slice(error).unwrap();
    let object = resp.error().unwrap();
    assert_eq!(
        (object.code(), object.message()),
        (-32000, "execution reverted: \u{fffd}")
    );
    let batch = br#"[{"jsonrpc":"2.0","result":"cut \udc00 low","id":1},{"jsonrpc":"2.0","result":"\ud83d\ude00","id":2}]"#;
    let resp = BatchResponse::from_slice(batch, &[Id::from(1), Id::from(2)]).unwrap();
    let results: Vec<_> = resp.items().iter().map(|r| r.result().cloned()).collect();
    assert_eq!(
        results,
        [
            Some(serde_json::json!("cut \u{fffd} low")),
            Some(serde_json::json!("\u{1f600}"))
        ]
    );
    let request = br#"{"jsonrpc":"2.0","method":"\ud800","id":1}"#;
    assert!(matches!(
        Request::from_slice(request),
        Err(DecodeError::Json(_))
    ));
}

// Rules of ids, members and batch answers that no test above held.

/// `Id`'s docs: an integer beyond `i64` (such as `18446744073709551615`) is refused,
/// not read as some other id (`u64::MAX` wrapped is `-1`, a call's id).
#[test]
fn an_id_beyond_i64_is_refused_not_wrapped() {
    let body = br#"{"jsonrpc":"2.0","result":1,"id":18446744073709551615}"#;
    for read in both_ways(body) {
        assert!(matches!(read, Err(DecodeError::InvalidId(_))), "{read:?}");
    }
    assert!(Id::from_value(&json!(u64::MAX)).is_err());
    assert!(Id::from_value(&json!(1_u64 << 63)).is_err());
    // Never the answer to the call with id -1.
    let batch = br#"[{"jsonrpc":"2.0","result":1,"id":18446744073709551615}]"#;
    let read = BatchResponse::from_slice(batch, &[Id::Number(-1)]);
    assert!(matches!(read, Err(DecodeError::InvalidId(_))), "{read:?}");
}

/// An id is a string, an integer or null: a boolean is refused, not read as null.
#[test]
fn a_boolean_id_is_refused() {
    for text in ["true", "false"] {
        let body = format!(r#"{{"jsonrpc":"2.0","result":1,"id":{text}}}"#);
        let read = Response::from_slice(body.as_bytes());
        assert!(matches!(read, Err(DecodeError::InvalidId(_))), "{read:?}");
        let call = format!(r#"{{"jsonrpc":"2.0","method":"m","id":{text}}}"#);
        let read = Request::from_slice(call.as_bytes());
        assert!(matches!(read, Err(DecodeError::InvalidId(_))), "{read:?}");
        assert!(Id::from_value(&serde_json::from_str(text).unwrap()).is_err());
    }
}

/// A string id shows quoted and escaped, so that an id holding a quote is told apart.
#[test]
fn a_string_ids_display_escapes_it() {
    assert_eq!(Id::from(r#"a"b"#).to_string(), r#""a\"b""#);
    assert_eq!(Id::from("a\nb").to_string(), r#""a\nb""#);
    let err = DecodeError::UnexpectedItem(Id::from(r#"x" y"#));
    assert_eq!(
        err.to_string(),
        r#"batch response has an unexpected or repeated id "x\" y""#
    );
}

/// A `u64` or `usize` beyond `i64::MAX` is refused, not wrapped to a negative id.
#[test]
fn a_u64_beyond_i64_is_no_id() {
    assert!(Id::try_from(u64::MAX).is_err());
    assert!(Id::try_from(1_u64 << 63).is_err());
    assert_eq!(Id::try_from(i64::MAX as u64), Ok(Id::Number(i64::MAX)));
    assert!(Id::try_from(usize::MAX).is_err());
}

/// A call whose id is null is still a call: its `"id": null` is sent, not left out
/// (which would make it a notification, never answered).
#[test]
fn a_call_with_the_null_id_is_sent_with_it() {
    let call = Request::new("m", json!([])).with_id(Id::Null);
    assert!(!call.is_notification());
    assert_eq!(
        serde_json::to_value(&call).unwrap(),
        json!({"jsonrpc": "2.0", "method": "m", "params": [], "id": null})
    );
}

/// `BatchResponse::from_slice`'s docs: null-id errors answer the unanswered calls in
/// order, the first such error the first unanswered call.
#[test]
fn null_id_errors_fill_the_unanswered_calls_in_call_order() {
    let ids = [Id::Number(1), Id::Number(2), Id::Number(3)];
    let body = br#"[{"jsonrpc":"2.0","result":2,"id":2},
        {"jsonrpc":"2.0","error":{"code":-32700,"message":"first"},"id":null},
        {"jsonrpc":"2.0","error":{"code":-32600,"message":"second"},"id":null}]"#;
    let answer = BatchResponse::from_slice(body, &ids).unwrap();
    let got: Vec<_> = answer
        .iter()
        .map(|r| (r.id().clone(), r.error().map(ErrorObject::message)))
        .collect();
    assert_eq!(
        got,
        [
            (Id::Number(1), Some("first")),
            (Id::Number(2), None),
            (Id::Number(3), Some("second")),
        ]
    );
}

/// A null-id error answers the call whose id is null, before it answers any other:
/// the other call is the one missing, and a second null-id error is that id answered
/// twice.
#[test]
fn a_null_id_error_answers_the_call_with_the_null_id() {
    let ids = [Id::Number(1), Id::Null];
    let one = br#"[{"jsonrpc":"2.0","error":{"code":-32000,"message":"x"},"id":null}]"#;
    match BatchResponse::from_slice(one, &ids) {
        Err(DecodeError::MissingItems(missing)) => assert_eq!(missing, [Id::Number(1)]),
        other => panic!("{other:?}"),
    }
    let ids = [Id::Null, Id::Number(2)];
    let two = br#"[{"jsonrpc":"2.0","error":{"code":-32000,"message":"a"},"id":null},
        {"jsonrpc":"2.0","error":{"code":-32000,"message":"b"},"id":null}]"#;
    let read = BatchResponse::from_slice(two, &ids);
    assert!(
        matches!(read, Err(DecodeError::UnexpectedItem(Id::Null))),
        "{read:?}"
    );
}

/// `BatchResponse`'s `PartialEq` docs: batch-level errors are compared, so a refusal of
/// the whole batch is not equal to the same items answered one by one.
#[test]
fn a_whole_batch_refusal_is_not_equal_to_the_same_items() {
    let ids = [Id::Number(1)];
    let refused = BatchResponse::from_slice(
        br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"no"},"id":null}"#,
        &ids,
    )
    .unwrap();
    assert!(refused.batch_error().is_some());
    let one_by_one = BatchResponse::new(refused.items().to_vec());
    assert_eq!(one_by_one.items(), refused.items());
    assert_ne!(refused, one_by_one);
}

/// `Id`'s docs: `-0` is refused (serde_json reads it as the float `-0.0`), on the fast
/// path as on the tree.
#[test]
fn a_minus_zero_id_is_refused() {
    let body = br#"{"jsonrpc":"2.0","result":1,"id":-0}"#;
    for read in both_ways(body) {
        assert!(matches!(read, Err(DecodeError::InvalidId(_))), "{read:?}");
    }
}

/// `Id`'s docs: a refused numeric id is quoted as the message wrote it (a tree of it
/// would say `1e+20`, `-0.0`); one beyond `f64` is JSON serde_json does not read.
#[test]
fn a_refused_id_is_quoted_as_written() {
    for (id, quoted) in [
        ("1e20", "invalid id 1e20"),
        ("100000000000000000000", "invalid id 100000000000000000000"),
        ("1.0", "invalid id 1.0"),
        ("1E0", "invalid id 1E0"),
        ("-0", "invalid id -0"),
        ("[1, 2]", "invalid id [1, 2]"),
    ] {
        let answer = format!(r#"{{"jsonrpc":"2.0","result":1,"id":{id}}}"#);
        let call = format!(r#"{{"jsonrpc":"2.0","method":"m","id":{id}}}"#);
        let read = Response::from_slice(answer.as_bytes()).unwrap_err();
        assert_eq!(read.to_string(), quoted);
        let read = Request::from_slice(call.as_bytes()).unwrap_err();
        assert_eq!(read.to_string(), quoted);
        let batch = format!("[{answer}]");
        let read = BatchResponse::from_slice(batch.as_bytes(), &[Id::Number(1)]).unwrap_err();
        assert_eq!(read.to_string(), quoted);
    }
    // A JSON tree has lost how the id was written: serde_json writes the number it read
    // (`1e+20` in its recent releases).
    let tree: Value = serde_json::from_str("1e20").unwrap();
    let read = Id::from_value(&tree).unwrap_err();
    assert_eq!(read.to_string(), format!("invalid id {tree}"));
    let body = br#"{"jsonrpc":"2.0","result":1,"id":1e400}"#;
    let read = Response::from_slice(body);
    assert!(matches!(read, Err(DecodeError::Json(_))), "{read:?}");
    assert!(serde_json::from_slice::<Value>(body).is_err());
}

/// A member given twice keeps its last value, as a JSON tree does.
#[test]
fn a_member_given_twice_keeps_its_last_value() {
    let read = Response::from_slice(br#"{"jsonrpc":"2.0","result":1,"result":2,"id":7}"#);
    assert_eq!(read.unwrap().result(), Some(&json!(2)));
    let read = Response::from_slice(br#"{"jsonrpc":"2.0","result":1,"id":7,"id":8}"#);
    assert_eq!(read.unwrap().id(), &Id::Number(8));
}

/// `n` arrays nested around a `1`.
fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

/// The nesting limit the module docs state: serde_json's, which counts the message's
/// own levels, so params and a result hold 127 levels, an error's `data` 126. Held
/// within them, a message reads; one level more, it is undecodable.
#[test]
fn params_and_results_hold_127_levels_and_error_data_126() {
    for (n, reads) in [(127, true), (128, false)] {
        let call = format!(
            r#"{{"jsonrpc":"2.0","method":"m","params":{},"id":1}}"#,
            nested(n)
        );
        assert_eq!(
            Request::from_slice(call.as_bytes()).is_ok(),
            reads,
            "params, {n}"
        );
        let answer = format!(r#"{{"jsonrpc":"2.0","result":{},"id":1}}"#, nested(n));
        assert_eq!(
            Response::from_slice(answer.as_bytes()).is_ok(),
            reads,
            "result, {n}"
        );
        let item = format!(r#"[{answer}]"#);
        let batch = BatchResponse::from_slice(item.as_bytes(), &[Id::Number(1)]);
        assert_eq!(batch.is_ok(), reads, "a batch's result, {n}");
    }
    for (n, reads) in [(126, true), (127, false)] {
        let answer = format!(
            r#"{{"jsonrpc":"2.0","error":{{"code":1,"message":"x","data":{}}},"id":1}}"#,
            nested(n)
        );
        assert_eq!(
            Response::from_slice(answer.as_bytes()).is_ok(),
            reads,
            "data, {n}"
        );
    }
}
