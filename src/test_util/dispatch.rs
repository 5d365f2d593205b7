//! From a request body to a response: parse, take steps, wait, answer.
//!
//! [`plan`] runs under the server's lock and does everything that touches shared state:
//! it parses the body, takes one step per call and counts it. [`answer`] runs without the
//! lock: it waits for the steps' delays, calls the method handlers and builds the response.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Map, Value};

use super::body::ResponseBody;
use super::chaos::{ChaosState, Fault, LogEntry};
use super::methods::{self, MethodResult};
use super::step::{Action, ErrorSpec, Step};
use crate::jsonrpc::Id;

/// A method handler, shared between the server handle and the connections.
pub(crate) type Handler = Arc<dyn Fn(&Value) -> MethodResult + Send + Sync>;

/// The body of [`Step::malformed`].
const MALFORMED: &str = r#"{"jsonrpc": "2.0", "resu"#;

/// The chaos draw made for a request before its body was read, for its first call:
/// `None` when none was made, `Some(None)` when it drew no fault.
pub(crate) type Early = Option<Option<Fault>>;

/// Everything the server remembers; behind one mutex.
pub(crate) struct State {
    pub(crate) handlers: HashMap<String, Handler>,
    pub(crate) scripts: HashMap<String, VecDeque<Step>>,
    pub(crate) calls: HashMap<String, usize>,
    pub(crate) http_requests: usize,
    pub(crate) bodies: Vec<Bytes>,
    /// The headers of every HTTP request, in order of arrival.
    pub(crate) headers: Vec<http::HeaderMap>,
    /// The HTTP version of every HTTP request, in order of arrival.
    pub(crate) versions: Vec<http::Version>,
    /// How many times [`FlakyServer::reset`](super::FlakyServer::reset) ran: a request
    /// whose body was read across one is counted again after it.
    pub(crate) resets: u64,
    /// How many times the chaos was set or turned off: a request whose early draw came
    /// from an earlier chaos draws again, from the chaos there is once its body is read.
    pub(crate) chaos_changes: u64,
    pub(crate) reverse_batches: bool,
    /// Added to every answer's own delay, as a remote server's round trip.
    pub(crate) latency: Duration,
    pub(crate) chaos: Option<ChaosState>,
    pub(crate) log: Vec<LogEntry>,
    pub(crate) connections: usize,
    pub(crate) in_flight: usize,
}

impl State {
    /// A state with the built-in methods `sum` and `echo`, and nothing recorded.
    pub(crate) fn new() -> Self {
        let mut handlers: HashMap<String, Handler> = HashMap::new();
        handlers.insert("sum".to_owned(), Arc::new(methods::sum));
        handlers.insert("echo".to_owned(), Arc::new(methods::echo));
        Self {
            handlers,
            scripts: HashMap::new(),
            calls: HashMap::new(),
            http_requests: 0,
            bodies: Vec::new(),
            headers: Vec::new(),
            versions: Vec::new(),
            resets: 0,
            chaos_changes: 0,
            reverse_batches: false,
            latency: Duration::ZERO,
            chaos: None,
            log: Vec::new(),
            connections: 0,
            in_flight: 0,
        }
    }

    /// Counts a call of `method`, takes its next step and logs it. A scripted step comes
    /// first; else, under chaos, the request's early draw (for its first call) or a fresh
    /// one; else `ok`.
    fn take_step(&mut self, method: &str, id: Option<&Value>, early: &mut Early) -> Step {
        *self.calls.entry(method.to_owned()).or_insert(0) += 1;
        let early = early.take();
        let scripted = self.scripts.get_mut(method).and_then(VecDeque::pop_front);
        let (step, fault) = match scripted {
            Some(step) => (step, None),
            None => {
                let fault = match (early, self.chaos.as_mut()) {
                    (Some(drawn), _) => drawn,
                    (None, Some(chaos)) => chaos.draw(),
                    (None, None) => None,
                };
                // Only a request's first call can be dropped before the read.
                let fault = fault.filter(|f| *f != Fault::DropBeforeRead);
                (fault.map_or_else(Step::ok, Fault::step), fault)
            }
        };
        self.log.push(LogEntry {
            method: Some(method.to_owned()),
            id: id.and_then(|id| Id::from_value(id).ok()),
            fault,
        });
        step
    }

    /// The chaos draw for a request about to be read: `None` when there is no chaos,
    /// `Some(None)` for a draw of no fault.
    pub(crate) fn early_draw(&mut self) -> Early {
        self.chaos.as_mut().map(ChaosState::draw)
    }

    /// Logs a request that took no step.
    pub(crate) fn log_unread(&mut self, fault: Option<Fault>) {
        self.log.push(LogEntry {
            method: None,
            id: None,
            fault,
        });
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<&String> = self.handlers.keys().collect();
        methods.sort();
        f.debug_struct("State")
            .field("methods", &methods)
            .field("scripts", &self.scripts)
            .field("calls", &self.calls)
            .field("http_requests", &self.http_requests)
            .field("bodies", &self.bodies.len())
            .field("reverse_batches", &self.reverse_batches)
            .field("chaos", &self.chaos.is_some())
            .field("log", &self.log.len())
            .field("connections", &self.connections)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

/// The error a connection's service returns, which makes hyper close the connection
/// without a response.
#[derive(Debug)]
pub(crate) struct CloseConnection(&'static str);

impl fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CloseConnection {}

impl CloseConnection {
    pub(crate) const ON_PURPOSE: Self = Self("connection dropped on purpose");
    pub(crate) const REQUEST_FAILED: Self = Self("request body could not be read");
}

/// One call (or notification) of a request, with the step it took.
pub(crate) struct Call {
    /// `None` for a notification.
    id: Option<Value>,
    params: Value,
    step: Step,
    handler: Option<Handler>,
}

/// One item of a batch.
pub(crate) enum Item {
    Call(Box<Call>),
    /// Not a valid request object: answered `-32600` with id null, takes no step.
    Invalid,
}

/// What to do with one request body, decided under the lock.
pub(crate) enum Plan {
    /// Answered at once, with no step taken: parse error, invalid request, empty batch.
    Immediate(Value),
    Single(Box<Call>),
    Batch {
        items: Vec<Item>,
        reverse: bool,
    },
}

/// Parses `body`, takes a step for each call in it and counts the calls. `early` is the
/// chaos draw made for the request before it was read; it goes to the first call.
pub(crate) fn plan(state: &mut State, body: &[u8], mut early: Early) -> Plan {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        state.log_unread(None);
        return Plan::Immediate(failure(Value::Null, &ErrorSpec::from_code(-32700)));
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            state.log_unread(None);
            Plan::Immediate(failure(Value::Null, &ErrorSpec::from_code(-32600)))
        }
        Value::Array(items) => Plan::Batch {
            items: items
                .iter()
                .map(|item| {
                    call(state, item, &mut early).map_or(Item::Invalid, |c| Item::Call(Box::new(c)))
                })
                .collect(),
            reverse: state.reverse_batches,
        },
        single => match call(state, &single, &mut early) {
            Some(call) => Plan::Single(Box::new(call)),
            None => Plan::Immediate(failure(Value::Null, &ErrorSpec::from_code(-32600))),
        },
    }
}

/// Reads a request object and takes its step; `None` (logged) if it is not a valid
/// request.
fn call(state: &mut State, value: &Value, early: &mut Early) -> Option<Call> {
    let call = parse_call(state, value, early);
    if call.is_none() {
        state.log_unread(None);
    }
    call
}

fn parse_call(state: &mut State, value: &Value, early: &mut Early) -> Option<Call> {
    let object = value.as_object()?;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    let method = object.get("method").and_then(Value::as_str)?;
    let params = match object.get("params") {
        // `null` as none, as jsonrpsee's server takes it (its client writes it).
        None | Some(Value::Null) => Value::Null,
        Some(params @ (Value::Array(_) | Value::Object(_))) => params.clone(),
        Some(_) => return None,
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id.clone()),
        Some(_) => return None,
    };
    Some(Call {
        step: state.take_step(method, id.as_ref(), early),
        id,
        params,
        handler: state.handlers.get(method).cloned(),
    })
}

/// Waits for the steps' delays, then builds the response, or an error that makes hyper
/// close the connection.
pub(crate) async fn answer(plan: Plan) -> Result<Response<ResponseBody>, CloseConnection> {
    match plan {
        Plan::Immediate(value) => Ok(json_response(StatusCode::OK, &value)),
        Plan::Single(call) => {
            sleep(call.step.delay).await;
            answer_single(&call)
        }
        Plan::Batch { items, reverse } => {
            let delay = calls(&items).map(|c| c.step.delay).max();
            sleep(delay.unwrap_or_default()).await;
            answer_batch(&items, reverse)
        }
    }
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

fn calls(items: &[Item]) -> impl Iterator<Item = &Call> + Clone {
    items.iter().filter_map(|item| match item {
        Item::Call(call) => Some(&**call),
        Item::Invalid => None,
    })
}

fn answer_single(call: &Call) -> Result<Response<ResponseBody>, CloseConnection> {
    if let Some(why) = &call.step.invalid {
        return Ok(invalid_step(why));
    }
    let http = if call.step.action.is_http_level() {
        let context = Context {
            id: call.id.clone().unwrap_or(Value::Null),
            batch: false,
            whole: &|| {
                let whole =
                    item_response(call).unwrap_or_else(|| success(Value::Null, Value::Null));
                Bytes::from(whole.to_string())
            },
        };
        http_level(&call.step.action, &context)?
    } else {
        match item_response(call) {
            Some(response) => json_response(StatusCode::OK, &response),
            None => no_content(),
        }
    };
    Ok(with_step_headers(http, [&call.step.headers]))
}

fn answer_batch(items: &[Item], reverse: bool) -> Result<Response<ResponseBody>, CloseConnection> {
    if let Some(why) = calls(items).find_map(|c| c.step.invalid.as_ref()) {
        return Ok(invalid_step(why));
    }
    let responses = || {
        let mut responses: Vec<Value> = items
            .iter()
            .filter_map(|item| match item {
                Item::Call(call) => item_response(call),
                Item::Invalid => Some(failure(Value::Null, &ErrorSpec::from_code(-32600))),
            })
            .collect();
        if reverse {
            responses.reverse();
        }
        responses
    };
    if let Some(decider) = calls(items).find(|c| c.step.action.is_http_level()) {
        let context = Context {
            id: decider.id.clone().unwrap_or(Value::Null),
            batch: true,
            whole: &|| Bytes::from(Value::Array(responses()).to_string()),
        };
        let http = http_level(&decider.step.action, &context)?;
        // A body that carries the items' answers carries their steps' headers too.
        return Ok(if decider.step.action.carries_items() {
            with_step_headers(http, calls(items).map(|c| &c.step.headers))
        } else {
            with_step_headers(http, [&decider.step.headers])
        });
    }
    let responses = responses();
    let http = if responses.is_empty() {
        no_content()
    } else {
        json_response(StatusCode::OK, &Value::Array(responses))
    };
    Ok(with_step_headers(
        http,
        calls(items).map(|c| &c.step.headers),
    ))
}

/// The response object of one call: its step's error, or else its handler's outcome.
/// `None` for a notification, whose handler still runs.
fn item_response(call: &Call) -> Option<Value> {
    let outcome = match &call.step.action {
        Action::Error(error) => Err(error.clone()),
        _ => match &call.handler {
            Some(handler) => {
                handler(&call.params).map_err(|(code, message)| ErrorSpec::new(code, message, None))
            }
            None => Err(ErrorSpec::from_code(-32601)),
        },
    };
    let id = call.id.clone()?;
    Some(match outcome {
        Ok(result) => success(id, result),
        Err(error) => failure(id, &error),
    })
}

/// What an HTTP-level step needs to know about the request it answers.
struct Context<'a> {
    /// The id of the call whose step decides (null for a notification).
    id: Value,
    batch: bool,
    /// The body the response would have had without the step (with the handlers of
    /// HTTP-level steps run as if they were `ok`); only [`Step::truncated`] needs it.
    whole: &'a dyn Fn() -> Bytes,
}

fn http_level(
    action: &Action,
    context: &Context,
) -> Result<Response<ResponseBody>, CloseConnection> {
    Ok(match action {
        // Item-level steps are answered by the caller; this arm keeps the match total.
        Action::Ok | Action::Error(_) => {
            with_status(StatusCode::OK, ResponseBody::full((context.whole)()))
        }
        Action::Status(status) => with_status(*status, ResponseBody::empty()),
        Action::StatusWithError(status, error) => {
            let id = if context.batch {
                Value::Null
            } else {
                context.id.clone()
            };
            json_response(*status, &failure(id, error))
        }
        Action::DropConnection => return Err(CloseConnection::ON_PURPOSE),
        Action::Truncated => {
            let mut response =
                with_status(StatusCode::OK, ResponseBody::truncated((context.whole)()));
            set_json(response.headers_mut());
            response
        }
        Action::Malformed => {
            let mut response = with_status(StatusCode::OK, ResponseBody::full(MALFORMED));
            set_json(response.headers_mut());
            response
        }
        Action::Trickle(interval) => {
            let mut response = with_status(
                StatusCode::OK,
                ResponseBody::trickle((context.whole)(), *interval),
            );
            set_json(response.headers_mut());
            response
        }
        Action::Oversized(len, chunked) => {
            let (open, close) = if context.batch { ("[", "]") } else { ("", "") };
            let prefix = format!(r#"{open}{{"jsonrpc":"2.0","result":""#);
            let suffix = format!(r#"","id":{}}}{close}"#, context.id);
            let body = ResponseBody::oversized(*len, Bytes::from(prefix), Bytes::from(suffix))
                .chunked(*chunked);
            let mut response = with_status(StatusCode::OK, body);
            set_json(response.headers_mut());
            response
        }
        Action::Raw(status, body) => with_status(*status, ResponseBody::full(body.clone())),
    })
}

fn success(id: Value, result: Value) -> Value {
    let mut object = Map::new();
    object.insert("jsonrpc".to_owned(), Value::from("2.0"));
    object.insert("result".to_owned(), result);
    object.insert("id".to_owned(), id);
    Value::Object(object)
}

fn failure(id: Value, error: &ErrorSpec) -> Value {
    let mut inner = Map::new();
    inner.insert("code".to_owned(), Value::from(error.code));
    inner.insert("message".to_owned(), Value::from(error.message.as_str()));
    if let Some(data) = &error.data {
        inner.insert("data".to_owned(), data.clone());
    }
    let mut object = Map::new();
    object.insert("jsonrpc".to_owned(), Value::from("2.0"));
    object.insert("error".to_owned(), Value::Object(inner));
    object.insert("id".to_owned(), id);
    Value::Object(object)
}

fn with_status(status: StatusCode, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

fn set_json(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
}

fn json_response(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let mut response = with_status(status, ResponseBody::full(value.to_string()));
    set_json(response.headers_mut());
    response
}

fn no_content() -> Response<ResponseBody> {
    with_status(StatusCode::NO_CONTENT, ResponseBody::empty())
}

fn invalid_step(why: &str) -> Response<ResponseBody> {
    let mut response = with_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        ResponseBody::full(format!("FlakyServer: the scripted step is unusable: {why}")),
    );
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `response` with the steps' own headers added; or, when one of them is a
/// `content-length` that is not the body's length or comes with a `transfer-encoding`, the
/// 500 of an unusable step: hyper sets that header from a body of known length, and
/// panics (in debug builds, as tests run) in the connection's task when a step's header
/// claims another length. Neither version sends both headers as written: over HTTP/1.1
/// hyper refuses such a head for a body (the client got no answer at all) and drops the
/// length for an empty one; HTTP/2 has no `transfer-encoding`. The step is refused on
/// both versions, so that it answers alike.
fn with_step_headers<'a>(
    mut response: Response<ResponseBody>,
    extra: impl IntoIterator<Item = &'a HeaderMap> + Clone,
) -> Response<ResponseBody> {
    if let Some(why) = content_length_conflict(&response, extra.clone()) {
        return invalid_step(&why);
    }
    for headers in extra {
        append_headers(response.headers_mut(), headers);
    }
    response
}

/// Why a step's own `content-length` cannot be sent with `response`'s body, if it cannot:
/// a length other than the body's (or not a plain decimal number), any length on a body
/// sent chunked, without one ([`Step::oversized_chunked`](super::Step::oversized_chunked)),
/// or any length beside a step's `transfer-encoding`.
fn content_length_conflict<'a>(
    response: &Response<ResponseBody>,
    extra: impl IntoIterator<Item = &'a HeaderMap> + Clone,
) -> Option<String> {
    let length = http_body::Body::size_hint(response.body()).exact();
    let lengths: Vec<&HeaderValue> = extra
        .clone()
        .into_iter()
        .flat_map(|headers| headers.get_all(CONTENT_LENGTH))
        .collect();
    let coding = extra
        .into_iter()
        .find_map(|headers| headers.get(TRANSFER_ENCODING));
    if let (Some(coding), Some(value)) = (coding, lengths.first()) {
        return Some(format!(
            "a content-length header of {value:?} beside a transfer-encoding of {coding:?} \
             (no answer carries both as written: hyper's HTTP/1.1 refuses the head or drops \
             the length, and HTTP/2 drops the transfer-encoding)"
        ));
    }
    lengths
        .into_iter()
        .find(|value| {
            let claimed = value
                .to_str()
                .ok()
                // Spaces around the number too: HTTP/1.1 clients trim them, HTTP/2 ones
                // reset the stream.
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            claimed.is_none() || claimed != length
        })
        .map(|value| match length {
            Some(length) => format!(
                "a content-length header of {value:?} is not the body's {length} bytes in plain digits \
                 (the server sets content-length itself; Step::truncated sends less than it announces)"
            ),
            None => format!(
                "a content-length header of {value:?} on a body sent chunked, without a length"
            ),
        })
}

fn append_headers(target: &mut HeaderMap, extra: &HeaderMap) {
    for (name, value) in extra {
        target.append(name, value.clone());
    }
}
