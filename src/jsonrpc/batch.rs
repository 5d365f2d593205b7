use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::members::{self, Item, Shape, Values};
use super::{DecodeError, ErrorObject, Id, Request, Response};

/// A batch of requests and notifications, sent in one HTTP exchange.
///
/// Like [`Request`], a batch carries [`extensions`](Self::extensions) for per-batch
/// settings.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Id, Request};
///
/// let batch = BatchRequest::new(vec![
///     Request::new("sum", json!([1, 2, 4])).with_id(1),
///     Request::new("notify_hello", json!([7])),
///     Request::new("get_data", json!(null)).with_id("9"),
/// ]);
/// assert_eq!(batch.ids().collect::<Vec<_>>(), [&Id::Number(1), &Id::from("9")]);
/// ```
#[derive(Clone, Default)]
pub struct BatchRequest {
    requests: Vec<Request>,
    extensions: http::Extensions,
}

impl BatchRequest {
    /// A batch of these requests, in this order.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let batch = BatchRequest::new(vec![call]);
    /// // A batch goes as a JSON array.
    /// assert_eq!(
    ///     serde_json::to_value(&batch)?,
    ///     json!([{"jsonrpc": "2.0", "method": "eth_chainId", "params": [], "id": 1}]),
    /// );
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn new(requests: Vec<Request>) -> Self {
        Self {
            requests,
            extensions: http::Extensions::new(),
        }
    }

    /// Appends a request.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let mut batch = BatchRequest::default();
    /// batch.push(Request::new("eth_blockNumber", json!([])).with_id(1));
    /// batch.push(Request::new("eth_gasPrice", json!([])).with_id(2));
    /// assert_eq!(batch.requests()[1].method(), "eth_gasPrice");
    /// ```
    pub fn push(&mut self, request: Request) {
        self.requests.push(request);
    }

    /// The requests, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let batch: BatchRequest = [
    ///     Request::new("eth_chainId", json!([])).with_id(1),
    ///     Request::new("log", json!(["started"])),
    /// ]
    /// .into_iter()
    /// .collect();
    /// let notifications = batch.requests().iter().filter(|r| r.is_notification()).count();
    /// assert_eq!(notifications, 1);
    /// ```
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// An iterator over the requests, in order (as `for request in &batch`).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let batch = BatchRequest::new(vec![
    ///     Request::new("eth_blockNumber", json!([])).with_id(1),
    ///     Request::new("eth_chainId", json!([])).with_id(2),
    /// ]);
    /// let methods: Vec<&str> = batch.iter().map(|request| request.method()).collect();
    /// assert_eq!(methods, ["eth_blockNumber", "eth_chainId"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Request> {
        self.requests.iter()
    }

    /// The requests, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Id, Request};
    ///
    /// let mut batch: BatchRequest = ["eth_chainId", "eth_blockNumber"]
    ///     .into_iter()
    ///     .map(|method| Request::new(method, json!([])))
    ///     .collect();
    /// // Numbers the calls.
    /// for (request, n) in batch.requests_mut().iter_mut().zip(1..) {
    ///     request.set_id(Some(Id::Number(n)));
    /// }
    /// assert_eq!(batch.ids().collect::<Vec<_>>(), [&Id::Number(1), &Id::Number(2)]);
    /// ```
    pub fn requests_mut(&mut self) -> &mut Vec<Request> {
        &mut self.requests
    }

    /// The requests, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let batch = BatchRequest::new(vec![call.clone()]);
    /// assert_eq!(batch.into_requests(), [call]);
    /// ```
    pub fn into_requests(self) -> Vec<Request> {
        self.requests
    }

    /// The ids of the calls, in order (notifications have none).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, Id, Request};
    ///
    /// let batch = BatchRequest::new(vec![
    ///     Request::new("eth_chainId", json!([])).with_id(1),
    ///     Request::new("log", json!(["started"])),
    /// ]);
    /// // The ids the answer must match.
    /// let expected: Vec<Id> = batch.ids().cloned().collect();
    /// let body = br#"[{"jsonrpc": "2.0", "result": "0x1", "id": 1}]"#;
    /// let answers = BatchResponse::from_slice(body, &expected)?;
    /// assert_eq!(answers.items().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.requests.iter().filter_map(Request::id)
    }

    /// The number of requests.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let mut batch = BatchRequest::new(vec![call]);
    /// batch.push(Request::new("log", json!(["started"])));
    /// assert_eq!(batch.len(), 2); // notifications count too
    /// ```
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether the batch holds no request.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::BatchRequest;
    ///
    /// // The codec refuses to send it: the specification allows no empty batch.
    /// let batch = BatchRequest::default();
    /// assert!(batch.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Per-batch settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::codec::RequestHeaders;
    /// use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let acme = HeaderValue::from_static("acme");
    /// let tenant = HeaderName::from_static("x-tenant");
    /// let mut batch = BatchRequest::new(vec![Request::new("log", json!(["started"]))]);
    /// // Sent with the batch's HTTP request.
    /// batch.extensions_mut().insert(RequestHeaders::new().with(tenant, acme.clone()));
    /// let own = batch.extensions().get::<RequestHeaders>().map(RequestHeaders::headers);
    /// assert_eq!(own.and_then(|headers| headers.get("x-tenant")), Some(&acme));
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// Per-batch settings, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::RetryStrategy;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// let mut sends = BatchRequest::new(vec![
    ///     Request::new("eth_sendRawTransaction", json!(["0x02f8"])).with_id(1),
    /// ]);
    /// // Sent once, whatever the retry layer's own strategy.
    /// sends.extensions_mut().insert(RetryStrategy::none());
    /// let strategy = sends.extensions().get::<RetryStrategy>();
    /// assert_eq!(strategy.map(RetryStrategy::can_retry), Some(false));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Takes the extensions out, leaving none behind.
    pub(crate) fn take_extensions(&mut self) -> http::Extensions {
        std::mem::take(&mut self.extensions)
    }
}

impl fmt::Debug for BatchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.requests).finish()
    }
}

impl Serialize for BatchRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.requests.serialize(serializer)
    }
}

impl FromIterator<Request> for BatchRequest {
    fn from_iter<T: IntoIterator<Item = Request>>(iter: T) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

impl Extend<Request> for BatchRequest {
    fn extend<T: IntoIterator<Item = Request>>(&mut self, iter: T) {
        self.requests.extend(iter);
    }
}

impl IntoIterator for BatchRequest {
    type Item = Request;
    type IntoIter = std::vec::IntoIter<Request>;

    /// The requests, by value, in order.
    fn into_iter(self) -> Self::IntoIter {
        self.requests.into_iter()
    }
}

impl<'a> IntoIterator for &'a BatchRequest {
    type Item = &'a Request;
    type IntoIter = std::slice::Iter<'a, Request>;

    /// The requests, in order ([`iter`](BatchRequest::iter)).
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for BatchRequest {
    /// Batches are equal when their requests are, in the same order: extensions are not
    /// compared.
    fn eq(&self, other: &Self) -> bool {
        self.requests == other.requests
    }
}

impl Eq for BatchRequest {}

/// The answers to a batch: one [`Response`] per call, in the order of the calls, whatever
/// order the server sent them in.
///
/// When the server rejects the whole batch with a single error object (its id null, as
/// the specification has it), that error is kept as [`batch_error`](Self::batch_error)
/// and every call's item carries a copy of it. A single object under the id of a
/// batch's only call is that call's answer: some servers unwrap an answer array of one
/// item, and a retry that narrows a batch to one call sends such a batch. Any other
/// single object answers one call, not the batch, and is refused as
/// [`DecodeError::ShapeMismatch`]. geth's
/// refusal of a batch over its size limit, an array of one `-32600` error ("batch too
/// large") under the first call's id, answering two calls or more, is read as a refusal
/// of the whole batch too.
///
/// # Examples
///
/// ```
/// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Id};
///
/// let body = br#"[
///     {"jsonrpc": "2.0", "result": 7, "id": "1"},
///     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"}
/// ]"#;
/// let ids = [Id::from("5"), Id::from("1")];
/// let batch = BatchResponse::from_slice(body, &ids)?;
/// assert_eq!(batch.items()[0].error().map(|e| e.code()), Some(-32601));
/// assert_eq!(batch.items()[1].result(), Some(&serde_json::json!(7)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct BatchResponse {
    items: Vec<Response>,
    batch_error: Option<ErrorObject>,
    unmatched: Vec<Response>,
    extensions: http::Extensions,
}

impl BatchResponse {
    /// A batch response holding these items.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use serde_json::json;
    /// use tower::{ServiceExt, service_fn};
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, BatchResponse, Request, Response};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// // A test double: every call's answer is 0.
    /// let node = service_fn(|batch: BatchRequest| async move {
    ///     let items = batch.ids().map(|id| Response::success(id.clone(), json!(0)));
    ///     Ok::<_, Infallible>(BatchResponse::new(items.collect()))
    /// });
    /// let batch = (1..=3).map(|n| Request::new("eth_getBalance", json!([])).with_id(n));
    /// let answers = node.oneshot(batch.collect()).await?;
    /// assert_eq!(answers.items().len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(items: Vec<Response>) -> Self {
        Self {
            items,
            batch_error: None,
            unmatched: Vec::new(),
            extensions: http::Extensions::new(),
        }
    }

    /// The answers, in the order of the calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Response};
    ///
    /// let answers = BatchResponse::new(vec![
    ///     Response::success(1, json!("0x10")),
    ///     Response::success(2, json!("0x11")),
    /// ]);
    /// let results: Vec<_> = answers.items().iter().filter_map(Response::result).collect();
    /// assert_eq!(results, [&json!("0x10"), &json!("0x11")]);
    /// ```
    pub fn items(&self) -> &[Response] {
        &self.items
    }

    /// An iterator over the answers, in the order of the calls (as `for answer in
    /// &answers`).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, ErrorObject, Response};
    ///
    /// let answers = BatchResponse::new(vec![
    ///     Response::success(1, json!("0x10")),
    ///     Response::failure(2, ErrorObject::new(-32005, "limit exceeded")),
    /// ]);
    /// assert_eq!(answers.iter().filter(|answer| answer.is_error()).count(), 1);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Response> {
        self.items.iter()
    }

    /// The answers, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, ErrorObject, Response};
    ///
    /// let mut answers = BatchResponse::new(vec![
    ///     Response::success(1, json!("0x10")),
    ///     Response::failure(2, ErrorObject::new(-32000, "header not found")),
    /// ]);
    /// answers.items_mut().retain(|answer| !answer.is_error());
    /// assert_eq!(answers.items().len(), 1);
    /// ```
    pub fn items_mut(&mut self) -> &mut Vec<Response> {
        &mut self.items
    }

    /// The answers, by value.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, ErrorObject, Response};
    ///
    /// let answers = BatchResponse::new(vec![
    ///     Response::success(1, json!(7)),
    ///     Response::failure(2, ErrorObject::new(-32601, "Method not found")),
    /// ]);
    /// // Every result, or the first error.
    /// let results: Result<Vec<_>, ErrorObject> =
    ///     answers.into_items().into_iter().map(Response::into_result).collect();
    /// assert_eq!(results.map_err(|e| e.code()), Err(-32601));
    /// ```
    pub fn into_items(self) -> Vec<Response> {
        self.items
    }

    /// The answer to the call with this id.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Id, Response};
    ///
    /// let body = br#"[
    ///     {"jsonrpc": "2.0", "result": "0x1", "id": "chain"},
    ///     {"jsonrpc": "2.0", "result": "0x10", "id": "head"}
    /// ]"#;
    /// let calls = [Id::from("head"), Id::from("chain")];
    /// let answers = BatchResponse::from_slice(body, &calls)?;
    /// let head = answers.get(&Id::from("head")).and_then(Response::result);
    /// assert_eq!(head, Some(&json!("0x10")));
    /// assert!(answers.get(&Id::from("gas")).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, id: &Id) -> Option<&Response> {
        self.items.iter().find(|r| r.id() == id)
    }

    /// The answers by id (the first item of an id, as [`get`](Self::get) finds it), for
    /// callers that look up many ids: one pass, then a lookup each.
    pub(crate) fn by_id(&self) -> HashMap<&Id, &Response> {
        let mut index = HashMap::with_capacity(self.items.len());
        for item in &self.items {
            index.entry(item.id()).or_insert(item);
        }
        index
    }

    /// Where each id's answer is (the first item of an id, as [`get`](Self::get) finds
    /// it), for callers that change many items by id: one pass, then a lookup each.
    pub(crate) fn positions(&self) -> HashMap<Id, usize> {
        let mut position = HashMap::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            position.entry(item.id().clone()).or_insert(i);
        }
        position
    }

    /// The error object the server answered the whole batch with, if it did; every
    /// call's item then carries it. After a retry that re-sent only some of the calls,
    /// the later exchange's refusal when the earlier one was a refusal of the whole batch
    /// too (the calls sent last carry this one; a call not sent again keeps the earlier
    /// refusal), and `None` when the other calls kept answers of their own.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Id};
    ///
    /// // A single error object with a null id: the whole batch refused.
    /// let body = br#"{
    ///     "jsonrpc": "2.0",
    ///     "error": {"code": -32005, "message": "limit exceeded"},
    ///     "id": null
    /// }"#;
    /// let answers = BatchResponse::from_slice(body, &[Id::Number(1), Id::Number(2)])?;
    /// assert_eq!(answers.batch_error().map(|e| e.code()), Some(-32005));
    /// assert!(answers.iter().all(|item| item.error() == answers.batch_error()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch_error(&self) -> Option<&ErrorObject> {
        self.batch_error.as_ref()
    }

    /// Error items with a null id that no call was left to take: the server could not
    /// read some item of the batch, and every call was answered anyway. After a retry
    /// that re-sent some of the calls, those of every exchange, in the order they came;
    /// and the server's refusal of a whole batch, when the retry did not send some
    /// notification of it again (its method is non-idempotent), so that the calls' later
    /// answers do not hide that the server never ran it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, Id};
    ///
    /// // The call is answered, and an item the server could not read refused.
    /// let body = br#"[
    ///     {"jsonrpc": "2.0", "result": 3, "id": 1},
    ///     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"},
    ///      "id": null}
    /// ]"#;
    /// let answers = BatchResponse::from_slice(body, &[Id::Number(1)])?;
    /// assert_eq!(answers.items().len(), 1);
    /// assert_eq!(answers.unmatched()[0].error().map(|e| e.code()), Some(-32600));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unmatched(&self) -> &[Response] {
        &self.unmatched
    }

    /// The unmatched error items, mutably.
    pub(crate) fn unmatched_mut(&mut self) -> &mut [Response] {
        &mut self.unmatched
    }

    /// The answers to the calls and those no call took, both mutably.
    pub(crate) fn items_and_unmatched_mut(&mut self) -> (&mut [Response], &mut [Response]) {
        (&mut self.items, &mut self.unmatched)
    }

    /// Forgets the batch-level error: the gathered answers of a batch whose
    /// notifications an earlier exchange delivered are no refusal of the whole batch, and
    /// the latest exchange's refusal (as a codec kept it) is not the whole answer either.
    pub(crate) fn not_refused_whole(&mut self) {
        if self.batch_error.take().is_some() {
            self.gathered_from_several();
        }
    }

    /// Adds an error item no call took.
    pub(crate) fn push_unmatched(&mut self, item: Response) {
        self.unmatched.push(item);
    }

    /// The unmatched error items, taken out.
    pub(crate) fn take_unmatched(&mut self) -> Vec<Response> {
        std::mem::take(&mut self.unmatched)
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
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_jsonrpc_retry::codec::{JsonRpcCodecLayer, RetryAfter};
    /// use tower_jsonrpc_retry::http::{self, StatusCode};
    /// use tower_jsonrpc_retry::jsonrpc::{BatchRequest, Request};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
    /// # type Body = http_body_util::Full<bytes::Bytes>;
    /// # let http = tower::service_fn(|_: http::Request<Body>| async {
    /// #     let body = r#"{"jsonrpc": "2.0", "id": null,
    /// #         "error": {"code": -32005, "message": "limit exceeded"}}"#;
    /// #     let answer = http::Response::builder().status(429).header("retry-after", "7");
    /// #     answer.body(body.to_owned())
    /// # });
    /// let svc = ServiceBuilder::new()
    ///     .layer(JsonRpcCodecLayer::new("http://127.0.0.1:8545/".parse()?))
    ///     .service(http); // answers 429, `Retry-After: 7` and a refusal of the batch
    /// let call = Request::new("eth_chainId", json!([])).with_id(1);
    /// let answers = svc.oneshot(BatchRequest::new(vec![call])).await?;
    /// let status = answers.extensions().get::<StatusCode>();
    /// assert_eq!(status, Some(&StatusCode::TOO_MANY_REQUESTS));
    /// let hint = answers.extensions().get::<RetryAfter>().map(RetryAfter::delay);
    /// assert_eq!(hint, Some(Duration::from_secs(7)));
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
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::codec::RetryAfter;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, ErrorObject, Response};
    ///
    /// // A test double's answer, with a hint where the codec puts a `Retry-After`.
    /// let limited = ErrorObject::new(-32005, "limit exceeded");
    /// let mut answers = BatchResponse::new(vec![Response::failure(1, limited)]);
    /// let hint = RetryAfter::new(Duration::from_secs(2));
    /// answers.extensions_mut().insert(hint);
    /// assert_eq!(answers.extensions().get::<RetryAfter>(), Some(&hint));
    /// ```
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }

    /// Takes in the answers of a later exchange that re-sent some of the calls: their
    /// items replace the ones with the same ids (keeping the order of the first answer),
    /// its unmatched items follow the earlier ones (each is something a server said that
    /// no later answer replaces), and what describes the exchange (extensions) is the
    /// later exchange's. Its batch-level error is kept only when it answered every call,
    /// or the earlier answer was a refusal of the whole batch too: a refusal of some
    /// calls' re-send, the others answered, is not one of the whole batch.
    pub(crate) fn merge(&mut self, newer: BatchResponse) {
        let BatchResponse {
            items,
            batch_error,
            unmatched,
            extensions,
        } = newer;
        // A lookup per newer item, not a scan, so that retrying most of a large batch
        // stays linear.
        let position = self.positions();
        let mut replaced = 0;
        for item in items {
            if let Some(slot) = position.get(item.id()).and_then(|&i| self.items.get_mut(i)) {
                *slot = item;
                replaced += 1;
            }
        }
        // A refusal of every call still unsettled is one of the whole batch only if the
        // others were refused so too.
        let whole = replaced == self.items.len() || self.batch_error.is_some();
        self.batch_error = batch_error.filter(|_| whole);
        let earlier_unmatched = !self.unmatched.is_empty();
        self.unmatched.extend(unmatched);
        self.extensions = extensions;
        if replaced < self.items.len() || earlier_unmatched {
            self.gathered_from_several();
        }
    }

    /// Marks the answers as gathered from several exchanges: the latest exchange's
    /// answer, if a codec kept it, is not the whole answer, but its head still says how
    /// the server answered last.
    fn gathered_from_several(&mut self) {
        if let Some(raw) = self.extensions.remove::<crate::codec::RawAnswer>() {
            self.extensions.insert(crate::codec::GatheredHead(raw.head));
        }
    }

    /// Reads the answers to calls with the `expected` ids (in call order) from JSON bytes.
    ///
    /// Items are matched by id; an id answered twice, an id not asked for, or an id left
    /// unanswered is an error. Error items with a null id (the server could not read an
    /// item's id), when no call's id is null, answer the unanswered calls in order when
    /// there are exactly as many; when every call is answered they are kept in
    /// [`unmatched`](Self::unmatched).
    /// A success with a null id, when no call has that id, is passed over: a JSON-RPC 1.0
    /// server's answer to a notification (Bitcoin Core before version 28 answers every
    /// item, and reads a missing id as null). An empty body (or one of JSON's whitespace
    /// only) is an error unless no answer is expected. A single object instead of an
    /// array is read as [`BatchResponse`] says: a refusal of the whole batch, or the
    /// answer to a batch of one call.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`]: bytes that are not JSON, an item that breaks the rules of
    /// [`Response::from_value`], or answers that do not match the calls as above.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, DecodeError, Id};
    ///
    /// let body = br#"[{"jsonrpc": "2.0", "result": 7, "id": 1}]"#;
    /// let calls = [Id::Number(1), Id::Number(2)];
    /// let err = BatchResponse::from_slice(body, &calls).unwrap_err();
    /// assert!(matches!(err, DecodeError::MissingItems(ids) if ids == [Id::Number(2)]));
    /// // A batch of notifications only may be answered with nothing.
    /// let answers = BatchResponse::from_slice(b"", &[])?;
    /// assert!(answers.items().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(bytes: &[u8], expected: &[Id]) -> Result<Self, DecodeError> {
        Self::from_answer(bytes, expected, Values::Build)
    }

    /// [`from_slice`](Self::from_slice), with each item read as
    /// [`Response::read_members`] reads it with `values`: with [`Values::CheckOnly`],
    /// results are checked as JSON but not built, for a caller that keeps the answer's
    /// bytes.
    pub(crate) fn from_answer(
        bytes: &[u8],
        expected: &[Id],
        values: Values,
    ) -> Result<Self, DecodeError> {
        if super::is_blank(bytes) {
            return if expected.is_empty() {
                Ok(Self::default())
            } else {
                Err(DecodeError::EmptyBody)
            };
        }
        let fast = |bytes: &[u8]| {
            // Each item matched as it is read: a hostile answer of millions of items is
            // refused at the first one that answers no call, without keeping them.
            let mut matcher = Matcher::new(expected);
            let shape = members::read_each(bytes, |item| {
                matcher.push(match item {
                    Item::Object(members) => Response::read_members(&members, values),
                    Item::Other => Err(DecodeError::NotAnObject),
                })
            })?;
            match shape {
                Shape::Array => matcher.finish(),
                Shape::Object(members) => {
                    Self::from_object(Response::read_members(&members, values)?, expected)
                }
                Shape::Other => Err(DecodeError::NotAnObject),
            }
        };
        members::answer_with_tree_refusals(bytes, fast)
    }

    /// Reads the answers to calls with the `expected` ids (in call order) from a JSON value.
    ///
    /// # Errors
    ///
    /// As [`from_slice`](Self::from_slice).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use tower_jsonrpc_retry::jsonrpc::{BatchResponse, DecodeError, Id, Response};
    ///
    /// let value = json!([{"jsonrpc": "2.0", "result": "0x1", "id": 1}]);
    /// let answers = BatchResponse::from_value(value, &[Id::Number(1)])?;
    /// let result = answers.get(&Id::Number(1)).and_then(Response::result);
    /// assert_eq!(result, Some(&json!("0x1")));
    /// // To a batch of two calls, a single answer answers one call, not the batch.
    /// let single = json!({"jsonrpc": "2.0", "result": "0x1", "id": 1});
    /// let err = BatchResponse::from_value(single.clone(), &[Id::Number(1), Id::Number(2)]);
    /// assert!(matches!(err, Err(DecodeError::ShapeMismatch)));
    /// // To a batch of that one call, it is the answer (a server that unwraps one item).
    /// let answers = BatchResponse::from_value(single, &[Id::Number(1)])?;
    /// assert_eq!(answers.items().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_value(value: Value, expected: &[Id]) -> Result<Self, DecodeError> {
        match value {
            Value::Array(items) => {
                Self::from_items(items.into_iter().map(Response::from_value), expected)
            }
            obj @ Value::Object(_) => Self::from_object(Response::from_value(obj)?, expected),
            _ => Err(DecodeError::NotAnObject),
        }
    }

    /// Matches decoded items to the calls, in the order the server sent them.
    fn from_items(
        items: impl Iterator<Item = Result<Response, DecodeError>>,
        expected: &[Id],
    ) -> Result<Self, DecodeError> {
        let mut matcher = Matcher::new(expected);
        for item in items {
            matcher.push(item)?;
        }
        matcher.finish()
    }
    /// A single object answering a batch: an error with a null id refuses the whole
    /// batch (every call gets a copy); an object under the id of a batch's only call is
    /// that call's answer (a server that unwraps an answer array of one item).
    fn from_object(response: Response, expected: &[Id]) -> Result<Self, DecodeError> {
        if response.id() == &Id::Null {
            // A batch is refused as a whole with a null id; a success with a null id
            // answers only a batch whose only call has that id.
            if let Some(error) = response.error() {
                return Ok(Self::refused(error, expected));
            }
        }
        match expected {
            [only] if response.id() == only => Ok(Self {
                items: vec![response],
                ..Self::default()
            }),
            // An object with another id answers one call: it must not become every
            // call's answer, nor one call's among several.
            _ => Err(DecodeError::ShapeMismatch),
        }
    }

    /// The batch refused as a whole with `error`: every call gets a copy.
    fn refused(error: &ErrorObject, expected: &[Id]) -> Self {
        let items = expected
            .iter()
            .map(|id| Response::failure(id.clone(), error.clone()))
            .collect();
        Self {
            items,
            batch_error: Some(error.clone()),
            unmatched: Vec::new(),
            extensions: http::Extensions::new(),
        }
    }
}

/// The error of a batch refused for its size as geth refuses one: over its limit
/// (`--rpc.batch-request-limit`), it answers with an array of one `-32600` error
/// ("batch too large") under the first call's id, there being no other way to refuse a
/// batch as a whole than a null id, which it does not use. Read so only when it is the
/// whole answer to two calls or more: a call's own `-32600` comes beside the others'
/// answers.
fn refused_as_too_large<'r>(
    slots: &'r [Option<Response>],
    orphans: &[Response],
) -> Option<&'r ErrorObject> {
    let [Some(first), rest @ ..] = slots else {
        return None;
    };
    let error = first.error()?;
    let alone = !rest.is_empty() && rest.iter().all(Option::is_none) && orphans.is_empty();
    (alone && error.code() == ErrorObject::INVALID_REQUEST).then_some(error)
}

/// Matches a batch answer's items to the calls, one item at a time, in the order the
/// server sent them.
struct Matcher<'a> {
    expected: &'a [Id],
    position: HashMap<&'a Id, usize>,
    slots: Vec<Option<Response>>,
    orphans: Vec<Response>,
}

impl<'a> Matcher<'a> {
    fn new(expected: &'a [Id]) -> Self {
        Self {
            expected,
            position: expected.iter().enumerate().map(|(i, id)| (id, i)).collect(),
            slots: expected.iter().map(|_| None).collect(),
            orphans: Vec::new(),
        }
    }

    /// Takes the next item: an id answered twice or not asked for is refused at once.
    fn push(&mut self, item: Result<Response, DecodeError>) -> Result<(), DecodeError> {
        let response = item?;
        if response.id() == &Id::Null
            && response.is_error()
            && !self.position.contains_key(&Id::Null)
        {
            // A server that could not read an item's id answers with a null id.
            self.orphans.push(response);
            return Ok(());
        }
        if response.id() == &Id::Null && !self.position.contains_key(&Id::Null) {
            // A JSON-RPC 1.0 server's answer to a notification (Bitcoin Core before 28
            // answers every item, and reads a missing id as null): nothing to give.
            return Ok(());
        }
        let slot = self
            .position
            .get(response.id())
            .and_then(|&i| self.slots.get_mut(i))
            .filter(|slot| slot.is_none())
            .ok_or_else(|| DecodeError::UnexpectedItem(response.id().clone()))?;
        *slot = Some(response);
        Ok(())
    }

    /// The answers, once every item is in.
    fn finish(self) -> Result<BatchResponse, DecodeError> {
        let Self {
            expected,
            mut slots,
            orphans,
            ..
        } = self;
        if let Some(error) = refused_as_too_large(&slots, &orphans) {
            return Ok(BatchResponse::refused(error, expected));
        }
        let missing: Vec<usize> = (0..slots.len())
            .filter(|&i| slots.get(i).is_some_and(Option::is_none))
            .collect();
        if !missing.is_empty() && missing.len() != orphans.len() {
            let ids = missing
                .iter()
                .filter_map(|&i| expected.get(i).cloned())
                .collect();
            return Err(DecodeError::MissingItems(ids));
        }
        // As many null-id errors as unanswered calls: each call gets one, in order.
        let mut orphans = orphans.into_iter();
        for i in missing {
            if let (Some(slot), Some(id), Some(orphan)) =
                (slots.get_mut(i), expected.get(i), orphans.next())
            {
                let error = orphan.into_result().err();
                *slot = error.map(|e| Response::failure(id.clone(), e));
            }
        }
        Ok(BatchResponse {
            items: slots.into_iter().flatten().collect(),
            batch_error: None,
            unmatched: orphans.collect(),
            extensions: http::Extensions::new(),
        })
    }
}

impl fmt::Debug for BatchResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchResponse")
            .field("items", &self.items)
            .field("batch_error", &self.batch_error)
            .field("unmatched", &self.unmatched)
            .finish_non_exhaustive()
    }
}

impl IntoIterator for BatchResponse {
    type Item = Response;
    type IntoIter = std::vec::IntoIter<Response>;

    /// The answers, by value, in the order of the calls ([`into_items`](Self::into_items)).
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a BatchResponse {
    type Item = &'a Response;
    type IntoIter = std::slice::Iter<'a, Response>;

    /// The answers, in the order of the calls ([`iter`](BatchResponse::iter)).
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for BatchResponse {
    /// Batch answers are equal when their answers, their batch-level errors and their
    /// unmatched items are: extensions are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
            && self.batch_error == other.batch_error
            && self.unmatched == other.unmatched
    }
}

impl Eq for BatchResponse {}

/// A JSON array of the answers, in the order of the calls, then the
/// [`unmatched`](BatchResponse::unmatched) error items: what the HTTP-level layer hands
/// back for a batch it gathered, and what [`from_slice`](BatchResponse::from_slice) with
/// the same calls reads back as these answers. A [`batch_error`](BatchResponse::batch_error)
/// is written as each call's copy of it, and so reads back: as each call's error, with
/// no `batch_error` (the server's one error object is not written).
impl Serialize for BatchResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().chain(&self.unmatched))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_batchs_requests_and_answers_by_value_and_mutably() {
        let calls = vec![
            Request::new("a", json!([])).with_id(1),
            Request::new("b", json!([])).with_id(2),
        ];
        let batch = BatchRequest::new(calls.clone());
        assert_eq!(batch.into_requests(), calls);

        let mut answer = BatchResponse::new(vec![Response::success(1, json!(1))]);
        answer.items_mut().push(Response::success(2, json!(2)));
        assert_eq!(answer.items().len(), 2);
        assert_eq!(
            answer.get(&Id::Number(2)),
            Some(&Response::success(2, json!(2)))
        );
    }

    #[test]
    fn batches_iterate_extend_and_compare_as_their_items() {
        let a = Request::new("a", json!([])).with_id(1);
        let b = Request::new("b", json!([]));
        let mut batch: BatchRequest = [a.clone()].into_iter().collect();
        batch.extend([b.clone()]);
        assert_eq!((&batch).into_iter().collect::<Vec<_>>(), [&a, &b]);
        let mut tagged = batch.clone();
        tagged.extensions_mut().insert(5_u8);
        assert_eq!(tagged, batch, "extensions are not compared");
        assert_ne!(batch, BatchRequest::new(vec![b.clone(), a.clone()]));
        assert_eq!(batch.into_iter().collect::<Vec<_>>(), [a, b]);

        let ok = Response::success(1, json!(1));
        let answer = BatchResponse::new(vec![ok.clone()]);
        assert_eq!((&answer).into_iter().collect::<Vec<_>>(), [&ok]);
        let refused = BatchResponse::from_slice(
            br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"no"},"id":null}"#,
            &[Id::Number(1)],
        )
        .unwrap();
        assert_ne!(refused, answer);
        let mut with_orphan = answer.clone();
        with_orphan.push_unmatched(Response::failure(Id::Null, ErrorObject::new(-1, "x")));
        assert_ne!(with_orphan, answer);
        assert_eq!(answer.into_iter().collect::<Vec<_>>(), [ok]);
    }

    /// geth's refusal of a batch over its limit, one `-32600` under the first call's id,
    /// is the refusal of the whole batch; the same error beside other answers, another
    /// code alone, or the answer to a batch of one call, is not.
    #[test]
    fn a_lone_invalid_request_under_the_first_id_refuses_the_batch() {
        let ids = [Id::Number(1), Id::Number(2), Id::Number(3)];
        let too_large = br#"[{"jsonrpc":"2.0","id":1,
            "error":{"code":-32600,"message":"batch too large"}}]"#;
        let answer = BatchResponse::from_slice(too_large, &ids).unwrap();
        assert_eq!(
            answer.batch_error().map(ErrorObject::message),
            Some("batch too large")
        );
        let items: Vec<_> = answer
            .iter()
            .map(|r| (r.id().clone(), r.error().map(ErrorObject::code)))
            .collect();
        let refused: Vec<_> = ids.iter().map(|id| (id.clone(), Some(-32600))).collect();
        assert_eq!(items, refused);

        let alone = BatchResponse::from_slice(too_large, &ids[..1]).unwrap();
        assert_eq!(alone.batch_error(), None);
        let beside = br#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"bad"}},
            {"jsonrpc":"2.0","id":2,"result":2},{"jsonrpc":"2.0","id":3,"result":3}]"#;
        assert_eq!(
            BatchResponse::from_slice(beside, &ids)
                .unwrap()
                .batch_error(),
            None
        );
        for lone in [
            &br#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}]"#[..],
            br#"[{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"x"}}]"#,
            br#"[{"jsonrpc":"2.0","id":1,"result":1}]"#,
        ] {
            assert!(
                matches!(
                    BatchResponse::from_slice(lone, &ids),
                    Err(DecodeError::MissingItems(_))
                ),
                "{}",
                String::from_utf8_lossy(lone)
            );
        }
    }

    /// Beside a null-id error for another item, a `-32600` under the first call's id is
    /// that call's answer, not a refusal of the batch: the other call keeps its own.
    #[test]
    fn a_lone_invalid_request_beside_a_null_id_error_refuses_one_call() {
        let ids = [Id::Number(1), Id::Number(2)];
        let body = br#"[{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"bad"}},
            {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}]"#;
        let answer = BatchResponse::from_slice(body, &ids).unwrap();
        assert_eq!(answer.batch_error(), None);
        let codes: Vec<_> = answer
            .iter()
            .map(|r| r.error().map(ErrorObject::code))
            .collect();
        assert_eq!(codes, [Some(-32600), Some(-32700)]);
    }

    #[test]
    fn debug_shows_the_calls_and_the_answers() {
        let batch = BatchRequest::new(vec![Request::new("a", json!([])).with_id(1)]);
        let shown = format!("{batch:?}");
        assert!(shown.starts_with("[Request {"), "{shown}");
        let bytes = br#"[{"jsonrpc":"2.0","result":1,"id":1},
            {"jsonrpc":"2.0","error":{"code":-32600,"message":"bad"},"id":null}]"#;
        let answer = BatchResponse::from_slice(bytes, &[Id::Number(1)]).unwrap();
        let shown = format!("{answer:?}");
        assert!(shown.starts_with("BatchResponse {"), "{shown}");
        for part in [
            "items: [Response",
            "Number(1)",
            "unmatched: [Response",
            "-32600",
        ] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
    }
}
