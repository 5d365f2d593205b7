use std::collections::HashMap;
use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::members::{self, Members, Shape, Values};
use super::{DecodeError, ErrorObject, Id, VERSION};

/// Marks an answer whose result was checked as JSON but could not be built
/// ([`Values::BuildWhereCan`]): it reads `null`, and no rule on results reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResultUnbuilt;

/// A JSON-RPC response: an id and exactly one of a result or an error object.
///
/// Facts about the HTTP exchange that carried it sit in [`extensions`](Self::extensions):
/// the codec records a non-2xx [`http::StatusCode`] and a
/// [`RetryAfter`](crate::codec::RetryAfter) hint there.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
///
/// let ok = Response::success(1, json!(3));
/// assert_eq!(ok.result(), Some(&json!(3)));
///
/// let err = Response::failure(2, ErrorObject::new(2001, "busy"));
/// assert_eq!(err.error().map(|e| e.code()), Some(2001));
/// assert!(err.into_result().is_err());
/// ```
#[derive(Clone)]
pub struct Response {
    id: Id,
    payload: Result<Value, ErrorObject>,
    extensions: http::Extensions,
}

impl Response {
    /// A successful response.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// let resp = Response::success(1, json!("0x1"));
    /// assert_eq!(
    ///     serde_json::to_value(&resp)?,
    ///     json!({"jsonrpc": "2.0", "result": "0x1", "id": 1}),
    /// );
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn success(id: impl Into<Id>, result: Value) -> Self {
        Self::new(id, Ok(result))
    }

    /// A failed response.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// let busy = ErrorObject::new(-32005, "limit exceeded");
    /// let resp = Response::failure(7, busy.clone());
    /// assert_eq!((resp.result(), resp.error()), (None, Some(&busy)));
    /// ```
    pub fn failure(id: impl Into<Id>, error: ErrorObject) -> Self {
        Self::new(id, Err(error))
    }

    /// A response from its parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// // A test double's script: over the limit once, then the result.
    /// let script = [Err(ErrorObject::new(-32005, "limit exceeded")), Ok(json!("0x1"))];
    /// let answers = script.map(|outcome| Response::new(1, outcome));
    /// assert!(answers[0].is_error());
    /// assert_eq!(answers[1].result(), Some(&json!("0x1")));
    /// ```
    pub fn new(id: impl Into<Id>, payload: Result<Value, ErrorObject>) -> Self {
        Self {
            id: id.into(),
            payload,
            extensions: http::Extensions::new(),
        }
    }

    /// The id of the request this answers.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{Request, Response};
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id("c-1");
    /// let answer = br#"{"jsonrpc": "2.0", "result": "0x1", "id": "c-1"}"#;
    /// let resp = Response::from_slice(answer)?;
    /// assert_eq!(Some(resp.id()), call.id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The result, if the call succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// let resp = Response::success(1, json!({"number": "0x10", "hash": "0xab"}));
    /// assert_eq!(resp.result().and_then(|block| block["number"].as_str()), Some("0x10"));
    /// ```
    pub fn result(&self) -> Option<&Value> {
        self.payload.as_ref().ok()
    }

    /// The error object, if the call failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// let resp = Response::failure(1, ErrorObject::new(-32000, "header not found"));
    /// assert_eq!(resp.error().map(ErrorObject::message), Some("header not found"));
    /// ```
    pub fn error(&self) -> Option<&ErrorObject> {
        self.payload.as_ref().err()
    }

    /// Whether the call failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// assert!(Response::failure(1, ErrorObject::new(-32005, "busy")).is_error());
    /// // A null result is a success.
    /// assert!(!Response::success(2, json!(null)).is_error());
    /// ```
    pub fn is_error(&self) -> bool {
        self.payload.is_err()
    }

    /// The payload, by reference.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// assert_eq!(Response::success(1, json!(3)).payload(), Ok(&json!(3)));
    /// let busy = Response::failure(2, ErrorObject::new(-32005, "limit exceeded"));
    /// assert_eq!(busy.payload().map_err(ErrorObject::code), Err(-32005));
    /// ```
    pub fn payload(&self) -> Result<&Value, &ErrorObject> {
        self.payload.as_ref()
    }

    /// The result or the error object.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let resp = Response::success(1, json!("0x1"));
    /// let chain_id = resp.into_result()?; // an `ErrorObject` is an `Error`
    /// assert_eq!(chain_id, "0x1");
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_result(self) -> Result<Value, ErrorObject> {
        self.payload
    }

    /// Facts about the exchange, and user data: the codec records the answer's failure
    /// status ([`http::StatusCode`], when not a 2xx) and its
    /// [`RetryAfter`](crate::codec::RetryAfter), the retry layer how its retries ended
    /// ([`GaveUp`](crate::GaveUp)), each read with `extensions().get::<T>()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use serde_json::json;
    /// use tower::{Layer, ServiceExt};
    /// use tower_jsonrpc_retry::backoff::PeriodicBackoff;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Request, Response};
    /// use tower_jsonrpc_retry::{GaveUp, GiveUpReason, JsonRpcRetryLayer, RetryStrategy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # let node = tower::service_fn(|_: Request| async {
    /// #     let busy = ErrorObject::new(-32005, "limit exceeded");
    /// #     Ok::<_, tower_jsonrpc_retry::BoxError>(Response::failure(1, busy))
    /// # });
    /// // `node` is over its limit, every time.
    /// let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_secs(1)))
    ///     .codes([-32005]);
    /// let svc = JsonRpcRetryLayer::new(strategy).layer(node);
    /// let resp = svc.oneshot(Request::new("eth_call", json!([])).with_id(1)).await?;
    /// let gave_up = resp.extensions().get::<GaveUp>().map(|g| (g.retries(), g.reason()));
    /// assert_eq!(gave_up, Some((2, GiveUpReason::Exhausted)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Facts about the exchange, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::http::StatusCode;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Response};
    ///
    /// // A test double's answer, as the codec hands back one that came with a 503.
    /// let mut resp = Response::failure(1, ErrorObject::new(-32000, "no upstream"));
    /// resp.extensions_mut().insert(StatusCode::SERVICE_UNAVAILABLE);
    /// let status = resp.extensions().get::<StatusCode>();
    /// assert_eq!(status, Some(&StatusCode::SERVICE_UNAVAILABLE));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Reads a response from a JSON value, strictly, but as a JSON-RPC 1.0 server
    /// writes one too (see the [module docs](super)): without a `jsonrpc` member, and
    /// with a `null` `error` beside a result, or a `null` `result` beside an error.
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Response;
    ///
    /// // Bitcoin Core before version 28.
    /// let ok = Response::from_value(json!({"result": 840000, "error": null, "id": 1}))?;
    /// assert_eq!(ok.result(), Some(&json!(840000)));
    /// let err = json!({"result": null, "error": {"code": -8, "message": "out of range"}, "id": 2});
    /// assert_eq!(Response::from_value(err)?.error().map(|e| e.code()), Some(-8));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the first rule the message breaks: not an object, a
    /// `jsonrpc` member other than `"2.0"`, a missing or invalid id
    /// ([`Id::from_value`]), an error object of the wrong shape, both `result` and
    /// `error` (neither `null`), or neither.
    pub fn from_value(value: Value) -> Result<Self, DecodeError> {
        let Value::Object(mut obj) = value else {
            return Err(DecodeError::NotAnObject);
        };
        super::check_answer_version(&obj)?;
        let id = match obj.get("id") {
            Some(v) => Id::from_value(v)?,
            None => return Err(DecodeError::Invalid("response has no id")),
        };
        let outcome = match (obj.remove("result"), obj.remove("error")) {
            (Some(result), Some(Value::Null)) => (Some(result), None),
            (Some(Value::Null), Some(error)) => (None, Some(error)),
            (None, Some(Value::Null)) => (None, None),
            other => other,
        };
        let payload = match outcome {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(error_object(error)?),
            (Some(_), Some(_)) => return Err(DecodeError::ResultAndError),
            (None, None) => return Err(DecodeError::MissingResult),
        };
        Ok(Self::new(id, payload))
    }

    /// Reads a response from JSON bytes: the same rules as
    /// [`from_value`](Self::from_value), without building a JSON tree of the message.
    ///
    /// # Errors
    ///
    /// As [`from_value`](Self::from_value), and [`DecodeError::Json`] for bytes that
    /// are not JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Response};
    ///
    /// // A proxy's refusal is no JSON-RPC answer: it has no id.
    /// let err = Response::from_slice(br#"{"error": "rate limited"}"#).unwrap_err();
    /// assert!(matches!(err, DecodeError::Invalid(_)));
    /// assert_eq!(err.to_string(), "invalid message: response has no id");
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let fast = |bytes: &[u8]| match members::read(bytes)? {
            Shape::Object(members) => Self::read_members(&members, Values::Build),
            Shape::Array | Shape::Other => Err(DecodeError::NotAnObject),
        };
        members::answer_with_tree_refusals(bytes, fast)
    }

    /// Reads the answer to a single call: like [`from_slice`](Self::from_slice), but a
    /// batch answer is a [`DecodeError::ShapeMismatch`]. With [`Values::CheckOnly`], a
    /// success's result is checked as JSON but not built: it reads `null`.
    pub(crate) fn from_single_answer(bytes: &[u8], values: Values) -> Result<Self, DecodeError> {
        let fast = |bytes: &[u8]| match members::read(bytes)? {
            Shape::Object(members) => Self::read_members(&members, values),
            Shape::Array => Err(DecodeError::ShapeMismatch),
            Shape::Other => Err(DecodeError::NotAnObject),
        };
        members::answer_with_tree_refusals(bytes, fast)
    }

    /// The checks of [`from_value`](Self::from_value), in its order. With
    /// [`Values::CheckOnly`], a success's result is checked as JSON but not built (it
    /// reads `null`), and an error's members other than `code` and `message` that serde_json
    /// cannot build (a number beyond `f64`, nesting past its depth limit) are left out:
    /// the caller keeps the bytes.
    pub(crate) fn read_members(m: &Members<'_>, values: Values) -> Result<Self, DecodeError> {
        members::answer_version(m.jsonrpc)?;
        let id = match m.id {
            Some(raw) => members::id(raw)?,
            None => return Err(DecodeError::Invalid("response has no id")),
        };
        let mut unbuilt = false;
        let payload = match members::outcome(m.result, m.error) {
            (Some(result), None) if values == Values::Build => Ok(members::value(result)?),
            (Some(result), None) if values == Values::BuildWhereCan => Ok(members::value(result)
                .unwrap_or_else(|_| {
                    unbuilt = true;
                    Value::Null
                })),
            (Some(_), None) => Ok(Value::Null),
            // Through a tree, as `from_value` does: the error object's own rules (a
            // member given twice keeps the last) are the tree's.
            (None, Some(error)) => Err(match members::value(error) {
                Ok(tree) => error_object(tree)?,
                Err(_) if values != Values::Build => error_object_without_data(error)?,
                Err(e) => return Err(e),
            }),
            (Some(_), Some(_)) => return Err(DecodeError::ResultAndError),
            (None, None) => return Err(DecodeError::MissingResult),
        };
        let mut response = Self::new(id, payload);
        if unbuilt {
            response.extensions_mut().insert(ResultUnbuilt);
        }
        Ok(response)
    }
}

/// The `error` member as an error object: a JSON object with an integer code and a
/// message.
fn error_object(value: Value) -> Result<ErrorObject, DecodeError> {
    ErrorObject::from_object(value).map_err(|_| {
        DecodeError::Invalid("error must be an object with an integer code and a message")
    })
}

/// The `error` member as an error object when it cannot be built whole: each member
/// built on its own, a member given twice keeping the last (as in a tree), and any
/// member but `code` and `message` that cannot be built left out (`data`, or one the
/// specification does not define and the error object ignores).
fn error_object_without_data(raw: &RawValue) -> Result<ErrorObject, DecodeError> {
    let found: HashMap<String, &RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        DecodeError::Invalid("error must be an object with an integer code and a message")
    })?;
    let mut object = serde_json::Map::new();
    for (name, raw) in found {
        match members::value(raw) {
            Ok(value) => {
                object.insert(name, value);
            }
            Err(_) if name != "code" && name != "message" => {}
            Err(e) => return Err(e),
        }
    }
    error_object(Value::Object(object))
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("id", &self.id)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Response {
    /// Responses are equal when their messages are: extensions are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.payload == other.payload
    }
}

impl Eq for Response {}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Response", 3)?;
        s.serialize_field("jsonrpc", VERSION)?;
        match &self.payload {
            Ok(result) => s.serialize_field("result", result)?,
            Err(error) => s.serialize_field("error", error)?,
        }
        s.serialize_field("id", &self.id)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Response::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn responses_are_equal_when_id_and_payload_both_are() {
        let ok = Response::success(1, json!(3));
        assert_eq!(ok, Response::success(1, json!(3)));
        assert_ne!(ok, Response::success(2, json!(3)));
        assert_ne!(ok, Response::success(1, json!(4)));
    }

    #[test]
    fn an_error_serde_json_cannot_build_is_read_without_its_data_only_unbuilt() {
        let body =
            br#"{"jsonrpc":"2.0","error":{"code":-32005,"message":"slow","data":1e400},"id":1}"#;
        assert!(matches!(
            Response::from_single_answer(body, Values::Build),
            Err(DecodeError::Json(_))
        ));
        let read = Response::from_single_answer(body, Values::CheckOnly).unwrap();
        let err = read.error().unwrap();
        assert_eq!((err.code(), err.message()), (-32005, "slow"));
        assert_eq!(err.data(), None);
        // The code and the message themselves cannot be left out.
        for body in [
            &br#"{"jsonrpc":"2.0","error":{"code":1e400,"message":"slow","data":1e400},"id":1}"#[..],
            br#"{"jsonrpc":"2.0","error":{"code":1,"message":1e400,"data":1e400},"id":1}"#,
        ] {
            assert!(matches!(
                Response::from_single_answer(body, Values::CheckOnly),
                Err(DecodeError::Json(_))
            ));
        }
    }
}
