//! Reading a message straight from its bytes: the members that JSON-RPC gives a meaning
//! are picked out as raw JSON text, and only those are turned into values.
//!
//! Building a JSON tree of the whole message first (a map with an owned key per member)
//! costs several allocations per message for nothing: the decoders here read messages
//! with the strict rules of [`Request::from_value`](super::Request::from_value) and
//! [`Response::from_value`](super::Response::from_value), and a message they refuse is
//! checked for what a tree would refuse it for ([`fast_with_tree_refusals`]), so every
//! refusal is the tree decoder's own. A property test holds the two paths to the same
//! answers.
//!
//! With one exception, serde_json's own: a tree built from text reads an object whose
//! first member is named `"$serde_json::private::RawValue"` (the private token of its
//! `raw_value` feature) as the JSON its string holds, and refuses it when that is no
//! string of JSON; the decoders here read that name as any other.
//!
//! They accept more in one way, deliberately: a value they do not build (a member that
//! JSON-RPC does not define, the earlier value of a member given twice, and in the
//! HTTP-level layer a single call's params and result) is checked against the JSON
//! grammar only, so serde_json's limits on what it builds (numbers beyond `f64`, its
//! nesting depth) do not refuse the message because of it.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{DecodeError, Id, VERSION, VERSION_NOT_A_STRING};

/// A message as read: an object's members, an array (whose items went to the reader's
/// callback as they were read, see [`read_each`]), or any other JSON value.
pub(crate) enum Shape<'a> {
    Object(Members<'a>),
    Array,
    Other,
}

/// An item of an array: an object's members, or anything else.
pub(crate) enum Item<'a> {
    Object(Members<'a>),
    Other,
}

/// The members JSON-RPC defines, each as its raw JSON text. A member given twice keeps
/// its last value, as a JSON tree does.
#[derive(Default)]
pub(crate) struct Members<'a> {
    pub(crate) jsonrpc: Option<&'a RawValue>,
    pub(crate) method: Option<&'a RawValue>,
    pub(crate) params: Option<&'a RawValue>,
    pub(crate) id: Option<&'a RawValue>,
    pub(crate) result: Option<&'a RawValue>,
    pub(crate) error: Option<&'a RawValue>,
    /// Whether `method` or `id` was given twice: servers differ on which one they read
    /// (serde_json's tree, Go and JavaScript the last, a strict reader refuses the
    /// message).
    pub(crate) repeated: bool,
}

/// What a decoder makes of a message's params or results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Values {
    /// Builds them as JSON values, for the caller to read.
    Build,
    /// Checks them as JSON but builds nothing: a request's params are checked for their
    /// kind and left out, a success's result reads `null`. For the HTTP-level layer,
    /// which hands on the bytes the values came in.
    CheckOnly,
    /// Builds an answer's result where serde_json can, for a retry rule to read it, and
    /// is otherwise as lenient as `CheckOnly`: a result it cannot build (a number beyond
    /// `f64`, nesting past its depth limit) reads `null`, marked
    /// [`ResultUnbuilt`](super::ResultUnbuilt) so that no rule reads it. For the
    /// HTTP-level layer under a strategy with rules on results.
    BuildWhereCan,
}

/// Decodes `bytes` with `fast`. When `fast` refuses them, the refusal returned is the one
/// the tree decoder (`from_value`, on a JSON tree of the whole message) would give:
///
/// - serde_json's own error when it could not build that tree (bytes that are not JSON,
///   a number beyond `f64`, deep nesting);
/// - otherwise `fast`'s refusal, which is the same one: the two read by the same rules
///   in the same order (a property test holds them to it).
///
/// The tree is never built ([`Buildable`] only checks that it could be): for a body of
/// small values (`[1,1,1,…]`) it takes some thirty times the body's size, which a
/// hostile server would otherwise get out of every caller.
pub(crate) fn fast_with_tree_refusals<T>(
    bytes: &[u8],
    fast: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    fast(bytes).map_err(|refused| match serde_json::from_slice::<Buildable>(bytes) {
        Ok(Buildable) => refused,
        Err(e) => e.into(),
    })
}

/// [`fast_with_tree_refusals`], for a server's answers: bytes with a lone UTF-16
/// surrogate escaped in a string (`"\ud83d"` with no low half after it: valid JSON,
/// which JavaScript's `JSON.stringify` writes for a string cut in the middle of an
/// emoji, and which serde_json cannot hold in a `String`) are read again with each such
/// escape read as U+FFFD, the replacement character, before they are refused: a
/// server's error object or result is not lost to a cut reason string.
pub(crate) fn answer_with_tree_refusals<T>(
    bytes: &[u8],
    fast: impl Fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    fast_with_tree_refusals(bytes, &fast).or_else(|refused| match mend_lone_surrogates(bytes) {
        Some(mended) => fast(&mended).map_err(|_| refused),
        None => Err(refused),
    })
}

/// `bytes` with each `\u` escape of a lone UTF-16 surrogate (a high half not followed
/// by an escaped low half, or a low half alone) made `\ufffd`, of the same length; `None`
/// when there is none.
pub(crate) fn mend_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    /// The code unit of the `\uXXXX` escape at `at`, if there is one.
    fn unit_at(bytes: &[u8], at: usize) -> Option<u16> {
        let escape = bytes.get(at..at.checked_add(6)?)?;
        let digits = escape.strip_prefix(b"\\u")?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
    let mut mended: Option<Vec<u8>> = None;
    let mut at = 0;
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        at += found;
        let lone = match unit_at(bytes, at) {
            // A pair: both halves kept.
            Some(0xD800..=0xDBFF) if matches!(unit_at(bytes, at + 6), Some(0xDC00..=0xDFFF)) => {
                at += 12;
                continue;
            }
            Some(0xD800..=0xDFFF) => true,
            Some(_) => false,
            // An escape of one character (`\\` included), or no escape at all.
            None => {
                at += 2;
                continue;
            }
        };
        if lone {
            let out = mended.get_or_insert_with(|| bytes.to_vec());
            if let Some(digits) = out.get_mut(at + 2..at + 6) {
                digits.copy_from_slice(b"fffd");
            }
        }
        at += 6;
    }
    mended
}

/// Reads the shape of a message, an array's items passed over; fails only on bytes
/// that are not JSON.
pub(crate) fn read(bytes: &[u8]) -> Result<Shape<'_>, DecodeError> {
    read_each(bytes, |_| Ok(()))
}

/// Reads the shape of a message, handing an array's items to `each` one by one as they
/// are read, none kept: the first refusal of `each` ends the reading and is the answer,
/// so a hostile array of millions of items costs no memory. Otherwise fails only on
/// bytes that are not JSON.
pub(crate) fn read_each<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(Item<'a>) -> Result<(), DecodeError>,
) -> Result<Shape<'a>, DecodeError> {
    // Checked as a whole first: skipping a member does not look into its strings, and
    // text that is not UTF-8 is not JSON, wherever it is.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DecodeError::Json(de::Error::custom(format_args!(
            "invalid UTF-8 at byte {}",
            e.valid_up_to()
        )))
    })?;
    let mut refused = None;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = ShapeSeed {
        each: &mut each,
        refused: &mut refused,
    };
    let read = de::DeserializeSeed::deserialize(seed, &mut deserializer)
        .and_then(|shape| deserializer.end().map(|()| shape));
    match (read, refused) {
        (_, Some(refusal)) => Err(refusal),
        (Ok(shape), None) => Ok(shape),
        (Err(e), None) => Err(e.into()),
    }
}

/// Reads a [`Shape`], handing an array's items to `each`; a refusal of `each` is kept in
/// `refused` (serde_json's own error, which ends the reading, says only that).
struct ShapeSeed<'s, F> {
    each: &'s mut F,
    refused: &'s mut Option<DecodeError>,
}

/// A member's value, built as a JSON tree.
pub(crate) fn value(raw: &RawValue) -> Result<Value, DecodeError> {
    Ok(serde_json::from_str(raw.get())?)
}

/// A JSON string's text; `None` for anything else.
pub(crate) fn string(raw: &RawValue) -> Option<Arc<str>> {
    // Borrowed when the string has no escapes, the usual case.
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Some(Arc::from(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Arc::from),
    }
}

/// The `"jsonrpc"` member of an answer: absent (a JSON-RPC 1.0 server's answer), or
/// `"2.0"`.
pub(crate) fn answer_version(raw: Option<&RawValue>) -> Result<(), DecodeError> {
    match raw {
        None => Ok(()),
        Some(_) => version(raw),
    }
}

/// An answer's `result` and `error` members, a `null` one beside the other dropped, as
/// a JSON-RPC 1.0 server writes them (`"error": null` beside a result, `"result": null`
/// beside an error). Both `null` is a success whose result is `null`.
pub(crate) fn outcome<'a>(
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
) -> (Option<&'a RawValue>, Option<&'a RawValue>) {
    let is_null = |raw: &RawValue| raw.get() == "null";
    match (result, error) {
        (Some(result), Some(error)) if is_null(error) => (Some(result), None),
        (Some(result), Some(error)) if is_null(result) => (None, Some(error)),
        (None, Some(error)) if is_null(error) => (None, None),
        other => other,
    }
}

pub(crate) fn version(raw: Option<&RawValue>) -> Result<(), DecodeError> {
    let raw = raw.ok_or(DecodeError::Version(None))?;
    if raw.get() == "\"2.0\"" {
        return Ok(());
    }
    match value(raw)? {
        Value::String(v) if v == VERSION => Ok(()),
        Value::String(other) => Err(DecodeError::Version(Some(other))),
        _ => Err(DecodeError::Invalid(VERSION_NOT_A_STRING)),
    }
}

pub(crate) fn id(raw: &RawValue) -> Result<Id, DecodeError> {
    let text = raw.get();
    // Plain non-negative integers, the usual ids, without a tree. (`-0` and the like
    // take the tree's path, which reads them as floats.)
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Id::Number(n));
        }
    }
    if text == "null" {
        return Ok(Id::Null);
    }
    // Refused, it is quoted as written (`1e20`, not serde_json's `1e+20`).
    Id::from_value(&value(raw)?).map_err(|refused| match refused {
        DecodeError::InvalidId(_) => DecodeError::InvalidId(text.to_owned()),
        other => other,
    })
}

/// Member names, matched after unescaping, as a JSON tree's keys are.
enum Key {
    Jsonrpc,
    Method,
    Params,
    Id,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "jsonrpc" => Key::Jsonrpc,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "id" => Key::Id,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn members<'de, A: MapAccess<'de>>(mut map: A) -> Result<Members<'de>, A::Error> {
    let mut m = Members::default();
    while let Some(key) = map.next_key::<Key>()? {
        let slot = match key {
            Key::Jsonrpc => &mut m.jsonrpc,
            Key::Method => {
                m.repeated |= m.method.is_some();
                &mut m.method
            }
            Key::Params => &mut m.params,
            Key::Id => {
                m.repeated |= m.id.is_some();
                &mut m.id
            }
            Key::Result => &mut m.result,
            Key::Error => &mut m.error,
            Key::Other => {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
        };
        *slot = Some(map.next_value()?);
    }
    Ok(m)
}

/// Visits any JSON value; `Object` and `Array` say what to do with those two.
macro_rules! other_values {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

impl<'de, F> de::DeserializeSeed<'de> for ShapeSeed<'_, F>
where
    F: FnMut(Item<'de>) -> Result<(), DecodeError>,
{
    type Value = Shape<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F> Visitor<'de> for ShapeSeed<'_, F>
where
    F: FnMut(Item<'de>) -> Result<(), DecodeError>,
{
    type Value = Shape<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    other_values!(Shape::Other);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape<'de>, A::Error> {
        members(map).map(Shape::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape<'de>, A::Error> {
        while let Some(item) = seq.next_element()? {
            if let Err(refusal) = (self.each)(item) {
                *self.refused = Some(refusal);
                return Err(de::Error::custom("an item was refused"));
            }
        }
        Ok(Shape::Array)
    }
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            other_values!(Item::Other);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<'de>, A::Error> {
                members(map).map(Item::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::Other)
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// Any JSON value serde_json can build as a [`Value`], read as a `Value` is read (the
/// same parser calls, so the same refusal, to the byte position, for one it cannot
/// build), without building anything. Except serde_json's `RawValue` token (see the
/// module's documentation): an object named by it is read as any other.
struct Buildable;

impl<'de> Deserialize<'de> for Buildable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BuildableVisitor;
        impl<'de> Visitor<'de> for BuildableVisitor {
            type Value = Buildable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            other_values!(Buildable);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Buildable, A::Error> {
                while seq.next_element::<Buildable>()?.is_some() {}
                Ok(Buildable)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Buildable, A::Error> {
                while map.next_key::<Buildable>()?.is_some() {
                    map.next_value::<Buildable>()?;
                }
                Ok(Buildable)
            }
        }
        deserializer.deserialize_any(BuildableVisitor)
    }
}

#[cfg(test)]
mod tests {

    use super::{Shape, Values, mend_lone_surrogates, read};
    use crate::jsonrpc::{DecodeError, Request, Response};

    #[test]
    fn lone_surrogates_are_mended_and_pairs_kept() {
        let mend = |text: &str| {
            mend_lone_surrogates(text.as_bytes()).map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(mend(r#""\ud83d\ude00""#), None, "a pair");
        assert_eq!(
            mend(r#""a \u00e9 \\ud83d""#),
            None,
            "an escaped backslash, then text"
        );
        assert_eq!(mend(r#""\ud83d""#).as_deref(), Some(r#""\ufffd""#));
        assert_eq!(
            mend(r#""\uDE00 x""#).as_deref(),
            Some(r#""\ufffd x""#),
            "a low half alone"
        );
        assert_eq!(
            mend(r#"["\ud83d\u0041", "\ud83d\ude00", "\\\udc00"]"#).as_deref(),
            Some(r#"["\ufffd\u0041", "\ud83d\ude00", "\\\ufffd"]"#)
        );
        assert_eq!(
            mend(r#""\ud83d\"#).as_deref(),
            Some(r#""\ufffd\"#),
            "cut short"
        );
        assert_eq!(mend(r#""\ud8"#), None, "an escape cut short");
        assert_eq!(mend("\\"), None);
    }

    fn object(bytes: &[u8]) -> super::Members<'_> {
        match read(bytes) {
            Ok(Shape::Object(members)) => members,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn unbuilt_params_are_still_checked_for_their_kind() {
        let ok = br#"{"jsonrpc":"2.0","method":"m","params":[1,{"a":2}],"id":1}"#;
        let req = Request::from_members_unbuilt(&object(ok)).unwrap();
        assert_eq!(req.method(), "m");
        assert_eq!(req.params(), None, "checked, not built");
        let bad = br#"{"jsonrpc":"2.0","method":"m","params":"x","id":1}"#;
        assert!(matches!(
            Request::from_members_unbuilt(&object(bad)),
            Err(DecodeError::Invalid(_))
        ));
        // The same answers as the built path on everything but the params' value.
        assert!(Request::from_members(&object(bad)).is_err());
        assert!(
            Request::from_members(&object(ok))
                .unwrap()
                .params()
                .is_some()
        );
    }

    #[test]
    fn an_unbuilt_result_reads_null_and_errors_are_still_built() {
        let ok = br#"{"jsonrpc":"2.0","result":{"big":[1,2,3]},"id":1}"#;
        let resp = Response::from_single_answer(ok, Values::CheckOnly).unwrap();
        assert_eq!(resp.result(), Some(&serde_json::Value::Null));
        let err = br#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"slow"},"id":1}"#;
        let resp = Response::from_single_answer(err, Values::CheckOnly).unwrap();
        assert_eq!(resp.error().map(|e| e.code()), Some(-32005));
        let both = br#"{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":1}"#;
        assert!(matches!(
            Response::from_single_answer(both, Values::CheckOnly),
            Err(DecodeError::ResultAndError)
        ));
        let batch = br#"[{"jsonrpc":"2.0","result":1,"id":1}]"#;
        assert!(matches!(
            Response::from_single_answer(batch, Values::CheckOnly),
            Err(DecodeError::ShapeMismatch)
        ));
    }

    #[test]
    fn a_version_written_with_an_escape_is_still_2_0() {
        let escaped = br#"{"jsonrpc":"2\u002e0","result":1,"id":1}"#;
        assert_eq!(
            Response::from_slice(escaped).unwrap().result(),
            Some(&1.into())
        );
        let other = br#"{"jsonrpc":"2\u002e1","result":1,"id":1}"#;
        assert!(matches!(
            Response::from_slice(other),
            Err(DecodeError::Version(Some(v))) if v == "2.1"
        ));
    }

    #[test]
    fn text_that_is_not_utf8_is_not_json_even_inside_a_skipped_member() {
        let bytes = b"{\"jsonrpc\":\"2.0\",\"other\":\"\xff\",\"result\":1,\"id\":1}";
        assert!(matches!(
            Response::from_slice(bytes),
            Err(DecodeError::Json(_))
        ));
    }
}
