use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::members::{self, Members, Shape, Values};
use super::{DecodeError, Id, VERSION};

/// A method name: borrowed for `'static` names, shared otherwise, so cloning never copies it.
#[derive(Clone)]
enum Method {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Method {
    fn as_str(&self) -> &str {
        match self {
            Method::Static(s) => s,
            Method::Shared(s) => s,
        }
    }
}

/// A JSON-RPC request, or a notification when it has no id.
///
/// Cloning is cheap: the method name and the params are shared, not copied, because a
/// retry layer clones the request before every attempt. Per-request settings, such as a
/// [`RetryStrategy`](crate::RetryStrategy), travel in [`extensions`](Request::extensions);
/// the codec hands them on to the HTTP request.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower_jsonrpc_retry::jsonrpc::{Id, Request};
///
/// let call = Request::new("sum", json!([1, 2])).with_id(1);
/// assert_eq!(call.id(), Some(&Id::Number(1)));
/// assert!(!call.is_notification());
///
/// let note = Request::new("log", json!({"line": "started"}));
/// assert!(note.is_notification());
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    params: Option<Arc<Value>>,
    id: Option<Id>,
    extensions: http::Extensions,
}

/// Params that are neither an array nor an object.
const PARAMS_KIND: DecodeError = DecodeError::Invalid("params must be an array or an object");

impl Request {
    /// A notification of `method` with `params`; give it an id with [`with_id`](Self::with_id)
    /// to make it a call. `Value::Null` params are omitted from the message. The
    /// specification allows an array or an object; the codec refuses to send anything
    /// else ([`Error::is_invalid_request`](crate::codec::Error::is_invalid_request)).
    ///
    /// `method` is a literal, a `String` or `&String`; a `&str` borrowed for less than
    /// `'static` goes as `method.to_owned()` ([`MethodName`] says why).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// // Null params are left out of the message.
    /// let note = Request::new("heartbeat", json!(null));
    /// let expected = json!({"jsonrpc": "2.0", "method": "heartbeat"});
    /// assert_eq!(serde_json::to_value(&note)?, expected);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn new(method: impl Into<MethodName>, params: Value) -> Self {
        Self {
            method: method.into().0,
            params: (!params.is_null()).then(|| Arc::new(params)),
            id: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Sets the id, which makes the request a call that expects a response.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id("req-7");
    /// assert_eq!(serde_json::to_value(&call)?["id"], "req-7");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn with_id(mut self, id: impl Into<Id>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets or clears the id.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// let mut request = Request::new("log", json!(["started"])).with_id(1);
    /// // No answer wanted after all.
    /// request.set_id(None);
    /// assert!(request.is_notification());
    /// ```
    pub fn set_id(&mut self, id: Option<Id>) {
        self.id = id;
    }

    /// The method name.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::BoxError;
    /// use tower_jsonrpc_retry::jsonrpc::{ErrorObject, Id, Request, Response};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// // A test double that knows one method.
    /// let node = service_fn(|call: Request| async move {
    ///     let id = call.id().cloned().unwrap_or(Id::Null);
    ///     Ok::<_, BoxError>(match call.method() {
    ///         "eth_chainId" => Response::success(id, json!("0x1")),
    ///         _ => Response::failure(id, ErrorObject::new(-32601, "Method not found")),
    ///     })
    /// });
    /// let resp = node.oneshot(Request::new("eth_chainId", json!([])).with_id(1)).await?;
    /// assert_eq!(resp.result(), Some(&json!("0x1")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The params, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// let note = Request::new("log", json!({"line": "started"}));
    /// assert_eq!(note.params().and_then(|p| p["line"].as_str()), Some("started"));
    /// ```
    pub fn params(&self) -> Option<&Value> {
        self.params.as_deref()
    }

    /// The id, or `None` for a notification.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{Id, Request};
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id(7);
    /// assert_eq!(call.id(), Some(&Id::Number(7)));
    /// assert_eq!(Request::new("log", json!(["started"])).id(), None);
    /// ```
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// Whether the request is a notification (no id, so no response).
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// let note = Request::from_slice(br#"{"jsonrpc": "2.0", "method": "ping"}"#)?;
    /// assert!(note.is_notification());
    /// // A null id is still an id: the sender waits for an answer.
    /// let null_id = br#"{"jsonrpc": "2.0", "method": "ping", "id": null}"#;
    /// assert!(!Request::from_slice(null_id)?.is_notification());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }

    /// Per-request settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Tenant(&'static str);
    ///
    /// let mut call = Request::new("eth_chainId", json!([])).with_id(1);
    /// call.extensions_mut().insert(Tenant("acme"));
    /// // A clone, such as a retry's, carries them too.
    /// let attempt = call.clone();
    /// assert_eq!(attempt.extensions().get::<Tenant>(), Some(&Tenant("acme")));
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Per-request settings, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::jsonrpc::Request;
    ///
    /// // This call's own strategy, in place of the retry layer's.
    /// let mut call = Request::new("eth_blockNumber", json!([])).with_id(1);
    /// call.extensions_mut().insert(RetryStrategy::transient());
    /// let own = call.extensions().get::<RetryStrategy>();
    /// assert!(own.is_some_and(RetryStrategy::can_retry));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Takes the extensions out, leaving none behind.
    pub(crate) fn take_extensions(&mut self) -> http::Extensions {
        std::mem::take(&mut self.extensions)
    }

    /// Reads a request from a JSON value, strictly, but for one allowance: `"params":
    /// null` reads as no params, as jsonrpsee's client writes a notification without
    /// params (and its server takes it).
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the first rule the message breaks: not an object, a
    /// `jsonrpc` member other than `"2.0"`, a method that is not a string, params that
    /// are neither an array nor an object (nor `null`), an invalid id
    /// ([`Id::from_value`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Request};
    ///
    /// // As jsonrpsee's client writes a notification without params.
    /// let note = json!({"jsonrpc": "2.0", "method": "log", "params": null});
    /// assert_eq!(Request::from_value(note)?.params(), None);
    /// let odd = json!({"jsonrpc": "2.0", "method": "sum", "params": 7, "id": 1});
    /// assert!(matches!(Request::from_value(odd), Err(DecodeError::Invalid(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_value(value: Value) -> Result<Self, DecodeError> {
        let Value::Object(mut obj) = value else {
            return Err(DecodeError::NotAnObject);
        };
        super::check_version(&obj)?;
        let method = match obj.remove("method") {
            Some(Value::String(m)) => Method::Shared(Arc::from(m)),
            _ => return Err(DecodeError::Invalid("method must be a string")),
        };
        let params = match obj.remove("params") {
            None | Some(Value::Null) => None,
            Some(p @ (Value::Array(_) | Value::Object(_))) => Some(Arc::new(p)),
            Some(_) => return Err(PARAMS_KIND),
        };
        let id = obj.get("id").map(Id::from_value).transpose()?;
        Ok(Self {
            method,
            params,
            id,
            extensions: http::Extensions::new(),
        })
    }

    /// Reads a request from JSON bytes: the same rules as
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
    /// use tower_jsonrpc_retry::jsonrpc::{DecodeError, Id, Request};
    ///
    /// let body = br#"{"jsonrpc": "2.0", "method": "ping", "id": 3}"#;
    /// let call = Request::from_slice(body)?;
    /// assert_eq!((call.method(), call.id()), ("ping", Some(&Id::Number(3))));
    /// let cut_off = Request::from_slice(br#"{"jsonrpc": "2.0""#);
    /// assert!(matches!(cut_off, Err(DecodeError::Json(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let fast = |bytes: &[u8]| match members::read(bytes)? {
            Shape::Object(members) => Self::from_members(&members),
            Shape::Array | Shape::Other => Err(DecodeError::NotAnObject),
        };
        members::fast_with_tree_refusals(bytes, fast)
    }

    /// The checks of [`from_value`](Self::from_value), in its order.
    pub(crate) fn from_members(m: &Members<'_>) -> Result<Self, DecodeError> {
        Self::read_members(m, Values::Build)
    }

    /// A request read only to be sent as its own bytes: the same checks, but the params
    /// are checked for their kind and not built (the request has none). One that gives
    /// its `method` or its `id` twice is refused: which of them the server reads, and so
    /// which method it runs or which id it answers under, is not known.
    pub(crate) fn from_members_unbuilt(m: &Members<'_>) -> Result<Self, DecodeError> {
        if m.repeated {
            return Err(DecodeError::Invalid("\"method\" or \"id\" given twice"));
        }
        Self::read_members(m, Values::CheckOnly)
    }

    /// Checks the params against the specification (an array or an object), which
    /// [`new`](Self::new) does not: the codec refuses to send a request that fails it.
    pub(crate) fn check_params(&self) -> Result<(), DecodeError> {
        match self.params() {
            Some(params) if !params.is_array() && !params.is_object() => Err(PARAMS_KIND),
            _ => Ok(()),
        }
    }

    fn read_members(m: &Members<'_>, values: Values) -> Result<Self, DecodeError> {
        members::version(m.jsonrpc)?;
        let method = m
            .method
            .and_then(members::string)
            .ok_or(DecodeError::Invalid("method must be a string"))?;
        let params = match m.params {
            // `null` as none: jsonrpsee's client writes it for a notification without
            // params.
            None => None,
            Some(raw) if raw.get() == "null" => None,
            // Raw JSON text starts with its value's first character.
            Some(raw) if values == Values::CheckOnly => match raw.get().as_bytes().first() {
                Some(b'[' | b'{') => None,
                _ => return Err(PARAMS_KIND),
            },
            Some(raw) => match members::value(raw)? {
                p @ (Value::Array(_) | Value::Object(_)) => Some(Arc::new(p)),
                _ => return Err(PARAMS_KIND),
            },
        };
        let id = m.id.map(members::id).transpose()?;
        Ok(Self {
            method: Method::Shared(method),
            params,
            id,
            extensions: http::Extensions::new(),
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("params", &self.params)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Request {
    /// Requests are equal when their messages are: extensions are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.method() == other.method() && self.params == other.params && self.id == other.id
    }
}

impl Eq for Request {}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 2 + usize::from(self.params.is_some()) + usize::from(self.id.is_some());
        let mut s = serializer.serialize_struct("Request", len)?;
        s.serialize_field("jsonrpc", VERSION)?;
        s.serialize_field("method", self.method())?;
        if let Some(params) = &self.params {
            s.serialize_field("params", params.as_ref())?;
        }
        if let Some(id) = &self.id {
            s.serialize_field("id", id)?;
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Request::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A method name for [`Request::new`] and the [`Client`](crate::Client)'s calls: a
/// `&'static str` is kept as it is (no allocation per call), an owned string is shared.
///
/// A name borrowed for less than `'static` is copied once: pass `&name` for a
/// `String` you keep, or `name.to_owned()` for any `&str`. (A borrowed `&str` is not
/// taken as it is, so that a literal costs no allocation.) A `String` in a `static` goes
/// as `NAME.as_str()`, kept as it is; `NAME.as_ref()` leaves its type open, and does not
/// compile.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower_jsonrpc_retry::jsonrpc::Request;
///
/// let namespace = "eth";
/// let method = format!("{namespace}_blockNumber");
/// let by_ref = Request::new(&method, json!([]));
/// let copied = Request::new(method.as_str().to_owned(), json!([]));
/// let moved = Request::new(method, json!([]));
/// assert_eq!(by_ref.method(), "eth_blockNumber");
/// assert_eq!(by_ref, copied);
/// assert_eq!(copied, moved);
/// ```
#[derive(Clone)]
pub struct MethodName(Method);

impl MethodName {
    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::MethodName;
    ///
    /// // A method named in configuration, read at run time.
    /// let configured = String::from("eth_chainId");
    /// assert_eq!(MethodName::from(configured).as_str(), "eth_chainId");
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for MethodName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for MethodName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// Names are equal when their text is, however each is held.
impl PartialEq for MethodName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for MethodName {}

impl PartialEq<str> for MethodName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MethodName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<MethodName> for str {
    fn eq(&self, other: &MethodName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<MethodName> for &str {
    fn eq(&self, other: &MethodName) -> bool {
        *self == other.as_str()
    }
}

/// Names are ordered as their text is.
impl PartialOrd for MethodName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MethodName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for MethodName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl From<&'static str> for MethodName {
    fn from(s: &'static str) -> Self {
        MethodName(Method::Static(s))
    }
}

impl From<String> for MethodName {
    fn from(s: String) -> Self {
        MethodName(Method::Shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for MethodName {
    fn from(s: Arc<str>) -> Self {
        MethodName(Method::Shared(s))
    }
}

impl From<&String> for MethodName {
    fn from(s: &String) -> Self {
        MethodName(Method::Shared(Arc::from(s.as_str())))
    }
}

impl From<Box<str>> for MethodName {
    fn from(s: Box<str>) -> Self {
        MethodName(Method::Shared(Arc::from(s)))
    }
}

impl From<Cow<'static, str>> for MethodName {
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => MethodName::from(s),
            Cow::Owned(s) => MethodName::from(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_are_equal_when_method_params_and_id_all_are() {
        let call = Request::new("sum", json!([1, 2])).with_id(1);
        assert_eq!(call, Request::new("sum", json!([1, 2])).with_id(1));
        assert_ne!(call, Request::new("sub", json!([1, 2])).with_id(1));
        assert_ne!(call, Request::new("sum", json!([2, 1])).with_id(1));
        assert_ne!(call, Request::new("sum", json!([1, 2])).with_id(2));
        assert_ne!(call, Request::new("sum", json!([1, 2])));
    }

    #[test]
    fn method_names_compare_and_hash_as_their_text() {
        use std::collections::HashSet;
        let literal = MethodName::from("eth_call");
        let shared = MethodName::from(String::from("eth_call"));
        assert_eq!(literal, shared);
        assert_eq!(literal, "eth_call");
        assert_eq!("eth_call", literal);
        let mut sorted = vec![MethodName::from(String::from("eth_send")), literal.clone()];
        sorted.sort();
        assert_eq!(sorted, ["eth_call", "eth_send"]);
        assert_ne!(literal, MethodName::from("eth_send"));
        assert_eq!(shared.as_str(), "eth_call");
        assert_eq!(shared.to_string(), "eth_call");
        assert_eq!(AsRef::<str>::as_ref(&shared), "eth_call");
        let names: HashSet<MethodName> = [literal, shared].into_iter().collect();
        assert_eq!(names.len(), 1);
        assert!(names.contains("eth_call"), "looked up by a borrowed name");
    }

    #[test]
    fn set_id_makes_and_unmakes_a_call() {
        let mut req = Request::new("log", json!([]));
        req.set_id(Some(Id::from(7)));
        assert_eq!(req.id(), Some(&Id::Number(7)));
        req.set_id(None);
        assert!(req.is_notification());
    }

    #[test]
    fn debug_shows_the_message() {
        let shown = format!("{:?}", Request::new("sum", json!([1])).with_id(3));
        assert!(shown.starts_with("Request {"), "{shown}");
        for part in ["method: \"sum\"", "Number(1)", "Number(3)"] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        assert_eq!(format!("{:?}", MethodName::from("sum")), "\"sum\"");
    }
}
