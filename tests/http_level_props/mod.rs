//! Properties of the HTTP-level layer (`JsonRpcRetryLayer::http`) on any request and
//! response bytes, shared by `tests/proptest_http_level.rs` and the fuzz target
//! `fuzz/fuzz_targets/http_level.rs` (which includes this file by its path).
//!
//! A [`Case`] is read from any bytes ([`Case::read`]): the caller's body (arbitrary bytes,
//! or calls, notifications and batches assembled from pieces that make the layer's
//! choices interesting: repeated ids, escaped ids, params serde_json cannot build, items
//! that are not calls), cut into chunks, and one scripted answer per attempt (a status,
//! headers, a body in chunks, possibly broken, or the inner service's own error; a body
//! of given bytes, or answers made for the calls the attempt sends, so that batches are
//! retried in part and their answers gathered; its head now and then some seconds late),
//! and now and then small request and response limits, an attempt timeout and a deadline
//! (`max_elapsed`). The case runs through the layer twice, with a strategy that retries nothing and with one
//! that retries (3 retries, no wait, on rate-limit codes, 429, 503, 200 and resets), over
//! an in-memory inner service, on tokio's paused clock. [`check`] holds the documented
//! promises:
//!
//! - every call ends (a call still running after a simulated day is a hang), never
//!   panics, and sends at most `1 + retries` attempts; it ends by the deadline, and ends
//!   on a timeout only when an attempt took the attempt timeout or the deadline came
//!   (an attempt that took the timeout is never the answer);
//! - the first attempt is the caller's request: its method, URI, version, headers and
//!   bytes; a single call and a notification send the caller's bytes and headers on every
//!   attempt; a batch sends the caller's bytes, or an array of some of its items, each
//!   byte for byte, in order;
//! - a body that is not JSON-RPC is sent once, as it came, and its answer comes back as it
//!   came (status, headers, bytes);
//! - a single call's answer is the last attempt's as it came, or, for a 2xx body that does
//!   not answer the call, a decode error (never for a content-encoded body); a
//!   notification's 2xx answer comes back without its body; an inner error comes back as
//!   it was;
//! - a batch's answer from one exchange comes back as it came; gathered from several, it
//!   is a 200 JSON array in which every call has exactly one answer, each item the
//!   server's bytes (or the server's error object around the call's id, for a null-id
//!   error given to a call), with the last exchange's `Retry-After`;
//! - a request body over the request limit is not sent, and the error says so; an
//!   answer's body over the response limit is the layer's error with the answer's
//!   status, except that the answer to a JSON-RPC message under a failure status comes
//!   back as that status, without its body (nor the headers that describe it).
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::Value;
use serde_json::value::RawValue;
use tower::{Layer, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec;
use tower_jsonrpc_retry::jsonrpc::{BatchResponse, DecodeError, Id, Request, Response};
use tower_jsonrpc_retry::{BoxError, ErrorClass, JsonRpcRetryLayer, RetryStrategy};

/// The retries of the retrying strategy.
pub const RETRIES: usize = 3;

// ---------------------------------------------------------------------------------------
// Reading a case from bytes
// ---------------------------------------------------------------------------------------

/// Reads choices off a byte string; zeros once it runs out.
pub struct Reader<'a> {
    data: &'a [u8],
    /// Whether odd pieces (ids, methods and values the layer refuses or cannot build,
    /// items that are not calls) may go into the message being made: in one message of
    /// four, so that most are JSON-RPC.
    odd: bool,
    /// The ids of the request's items, as written: answers mostly answer them.
    ids: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            odd: false,
            ids: Vec::new(),
        }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    /// Up to `max` bytes, as they come.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken.to_vec()
    }

    /// Chunk sizes for a body (empty: one chunk).
    fn chunks(&mut self) -> Vec<usize> {
        let n = self.below(4);
        (0..n).map(|_| self.below(8)).collect()
    }
}

const SPACE: &[&str] = &["", "", "", " ", "\n", " \t\r\n"];
/// Ids a call may have: mostly the usual ones, and some the layer refuses (not integers
/// an `i64` holds) or reads as another (an escaped string).
const IDS: &[&str] = &[
    "1", "2", "3", "1", "2", "3", "\"a\"", "0", "-1", "\"1\"", "null",
];
const ODD_IDS: &[&str] = &[
    "\"\\u0061\"",
    "1.0",
    "-0",
    "1e0",
    "18446744073709551616",
    "9223372036854775807",
    "{}",
];

fn pick_id(r: &mut Reader<'_>) -> &'static str {
    match r.below(8) {
        0 if r.odd => r.pick(ODD_IDS),
        _ => r.pick(IDS),
    }
}

/// Whether to make an odd piece here (one time in `n`, in an odd message).
fn odd(r: &mut Reader<'_>, n: usize) -> bool {
    r.odd && r.below(n) == 0
}

const METHODS: &[&str] = &[
    "\"sum\"",
    "\"sum\"",
    "\"sum\"",
    "\"eth_call\"",
    "\"\\u0073um\"",
    "\"\"",
];
const DEEP: usize = 200;

fn deep() -> String {
    "[".repeat(DEEP) + &"]".repeat(DEEP)
}

/// A JSON value, often one serde_json cannot build.
fn value(r: &mut Reader<'_>) -> String {
    if !odd(r, 2) {
        return r
            .pick(&[
                "[1,2]",
                "{}",
                "[]",
                "{\"a\":[1,{\"b\":null}],\"a\":\"again\"}",
                "[0.1,-0,1E+2,\"\\u00e9\"]",
            ])
            .into();
    }
    match r.below(12) {
        0 => "[1,2]".into(),
        1 => "{}".into(),
        2 => "[]".into(),
        3 => r#"{"a":[1,{"b":null}],"a":"again"}"#.into(),
        4 => deep(),
        5 => "[1e999]".into(),
        6 => "[18446744073709551616]".into(),
        7 => r#"["\ud800"]"#.into(),
        8 => "\"x\"".into(),
        9 => "null".into(),
        10 => "[0.1,-0,1E+2]".into(),
        _ => String::from_utf8_lossy(&r.bytes(6)).into_owned(),
    }
}

fn space(r: &mut Reader<'_>) -> &'static str {
    r.pick(SPACE)
}

/// An item of a request: mostly calls and notifications.
fn request_item(r: &mut Reader<'_>) -> String {
    let s = space(r);
    let kind = if odd(r, 3) {
        30 + r.below(10)
    } else {
        r.below(36)
    };
    match kind {
        0..=29 => {
            let params = match r.below(3) {
                0 => String::new(),
                _ => format!(",{s}\"params\":{s}{}", value(r)),
            };
            let id = match r.below(5) {
                0 => String::new(),
                _ => {
                    let id = pick_id(r);
                    r.ids.push(id);
                    format!(",\"id\":{id}")
                }
            };
            let method = if odd(r, 8) { "5" } else { r.pick(METHODS) };
            match r.below(3) {
                0 => {
                    let id = pick_id(r);
                    r.ids.push(id);
                    format!("{{{s}\"id\":{id}, \"method\":{method}{params},\"jsonrpc\":\"2.0\"}}")
                }
                _ => format!("{{\"jsonrpc\":{s}\"2.0\",\"method\":{method}{params}{id}{s}}}"),
            }
        }
        30..=34 => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"log\",\"params\":{}}}",
            value(r)
        ),
        35 => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"log\",\"params\":{},\"id\":null}}",
            value(r)
        ),
        36 => r
            .pick(&[
                "1",
                "\"x\"",
                "[]",
                "{}",
                "null",
                "{\"jsonrpc\":\"1.0\",\"method\":\"m\",\"id\":1}",
            ])
            .into(),
        37 => r#"{"jsonrpc":"2.0","method":"m","id":1,"$serde_json::private::RawValue":1}"#.into(),
        38 => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":{}}}",
            value(r)
        ),
        _ => String::from_utf8_lossy(&r.bytes(8)).into_owned(),
    }
}

/// A request body: any bytes, a call, or a batch.
fn request_body(r: &mut Reader<'_>) -> Vec<u8> {
    r.odd = r.below(4) == 0;
    let s = space(r);
    match r.below(10) {
        0 => r.bytes(64),
        1..=3 => format!("{s}{}{s}", request_item(r)).into_bytes(),
        4..=8 => {
            let n = 1 + r.below(5);
            let items: Vec<String> = (0..n).map(|_| request_item(r)).collect();
            let sep = format!("{s},{}", space(r));
            format!("{s}[{}]{s}", items.join(&sep)).into_bytes()
        }
        _ => r
            .pick(&[
                "",
                " ",
                "[]",
                "{}",
                "[1]",
                "null",
                "[{}]",
                "\"x\"",
                "[{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":1}",
            ])
            .as_bytes()
            .to_vec(),
    }
}

/// An item of an answer: an answer to one of the usual ids, often.
fn answer_item(r: &mut Reader<'_>) -> String {
    let id = match r.below(4) {
        0 => pick_id(r),
        _ if r.below(6) == 0 => "null",
        _ if r.ids.is_empty() => pick_id(r),
        _ => {
            let k = r.below(r.ids.len());
            r.ids[k]
        }
    };
    answer_to(r, id)
}

/// An answer to the call with this id (often an error, often one that is retried).
fn answer_to(r: &mut Reader<'_>, id: &str) -> String {
    let code = if odd(r, 2) {
        r.pick(&["1", "3.5", "\"x\""])
    } else {
        r.pick(&["-32005", "-32005", "-32000", "-32601", "-32700"])
    };
    let data = match r.below(3) {
        0 => String::new(),
        _ => format!(",\"data\":{}", value(r)),
    };
    let kind = if odd(r, 3) {
        9 + r.below(2)
    } else {
        r.below(9)
    };
    match kind {
        0..=3 => format!(
            "{{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":{id}}}",
            value(r)
        ),
        4..=8 => format!(
            "{{\"jsonrpc\":\"2.0\",\"error\":{{\"code\":{code},\"message\":\"m\"{data}}},\"id\":{id}}}"
        ),
        9 => format!(
            "{{\"jsonrpc\":\"2.0\",\"result\":1,\"error\":{{\"code\":1,\"message\":\"m\"}},\"id\":{id}}}"
        ),
        _ => String::from_utf8_lossy(&r.bytes(8)).into_owned(),
    }
}

fn answer_body(r: &mut Reader<'_>) -> Vec<u8> {
    r.odd = r.below(4) == 0;
    let s = space(r);
    match r.below(12) {
        0 => r.bytes(64),
        1..=3 => format!("{s}{}{s}", answer_item(r)).into_bytes(),
        4..=5 => {
            let n = r.below(6);
            let items: Vec<String> = (0..n).map(|_| answer_item(r)).collect();
            format!("{s}[{}]{s}", items.join(",")).into_bytes()
        }
        6 => Vec::new(),
        _ => {
            // An answer to every call, in any order, now and then one short or one more.
            let mut ids = r.ids.clone();
            let mut items = Vec::new();
            while !ids.is_empty() {
                let id = ids.remove(r.below(ids.len()));
                // Now and then the server could not read the call's id.
                let id = if r.below(5) == 0 { "null" } else { id };
                items.push(answer_to(r, id));
            }
            match r.below(6) {
                0 if !items.is_empty() => {
                    items.pop();
                }
                1 => items.insert(r.below(items.len() + 1), answer_item(r)),
                _ => {}
            }
            format!("{s}[{}]{s}", items.join(",")).into_bytes()
        }
    }
}

/// One attempt's answer: the inner service's error, or an HTTP answer.
#[derive(Clone, Debug)]
pub enum Answer {
    Fail(std::io::ErrorKind),
    Http(HttpAnswer),
}

#[derive(Clone, Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub content_encoding: Option<&'static str>,
    pub transfer_encoding: bool,
    pub body: Vec<u8>,
    /// Answers made for the calls the attempt sends, in place of `body`: the `k`-th call
    /// (of those with an id) is answered by the `k`-th template (cycling), its `{ID}`
    /// the call's id as the request wrote it; a single call by the first, as an object.
    pub echo: Option<Vec<String>>,
    /// In place of `body` and `echo`, to an attempt that sends two calls or more: geth's
    /// refusal of a batch too large, one `-32600` error under the first call's id.
    pub geth: bool,
    pub chunks: Vec<usize>,
    /// The body breaks after its bytes.
    pub broken: bool,
    /// Seconds before the head comes.
    pub delay: u64,
}

impl HttpAnswer {
    /// An answer with this status and body, at once, whole, and nothing else.
    pub fn plain(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            retry_after: None,
            content_encoding: None,
            transfer_encoding: false,
            body,
            echo: None,
            geth: false,
            chunks: Vec::new(),
            broken: false,
            delay: 0,
        }
    }

    /// The answer's head, as the inner service gives it for attempt `i`.
    fn headers(&self, i: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert("x-attempt", HeaderValue::from(i));
        // A header of the body: the layer keeps it on an answer it hands back as it
        // came, and drops it from the head of one it gathers.
        h.insert("content-digest", HeaderValue::from(i));
        if let Some(v) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
        }
        if let Some(v) = self.content_encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(v));
        }
        if self.transfer_encoding {
            h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        } else {
            h.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        h
    }

    /// The answer to an attempt that sent `request`: `body`, or the answers `echo` makes.
    fn for_request(&self, request: &[u8]) -> HttpAnswer {
        let mut made = self.clone();
        let id_of = |item: &str| {
            serde_json::from_str::<BTreeMap<String, &RawValue>>(item)
                .ok()
                .and_then(|m| m.get("id").map(|id| id.get().to_owned()))
        };
        let text = String::from_utf8_lossy(request);
        if self.geth {
            let items = serde_json::from_str::<Vec<&RawValue>>(&text).unwrap_or_default();
            let ids: Vec<String> = items.iter().filter_map(|i| id_of(i.get())).collect();
            if let [first, _, ..] = &ids[..] {
                made.echo = None;
                made.body = format!(
                    r#"[{{"jsonrpc":"2.0","error":{{"code":-32600,"message":"batch too large","data":1e400}},"id":{first}}}]"#
                )
                .into_bytes();
                return made;
            }
        }
        let Some(templates) = made.echo.take() else {
            return made;
        };
        let answer = |k: usize, id: &str| templates[k % templates.len()].replace("{ID}", id);
        made.body = match serde_json::from_str::<Vec<&RawValue>>(&text) {
            Ok(items) => {
                let ids: Vec<String> = items.iter().filter_map(|i| id_of(i.get())).collect();
                let answers: Vec<String> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, id)| answer(k, id))
                    .collect();
                match answers.is_empty() {
                    true => Vec::new(),
                    false => format!("[{}]", answers.join(",")).into_bytes(),
                }
            }
            Err(_) => id_of(&text).map_or_else(Vec::new, |id| answer(0, &id).into_bytes()),
        };
        if self.content_encoding == Some("gzip") {
            made.body.splice(0..0, [0x1f, 0x8b]);
        }
        made
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the body is content-encoded (the layer cannot read it).
    fn encoded(&self) -> bool {
        self.content_encoding
            .is_some_and(|c| !c.eq_ignore_ascii_case("identity"))
    }
}

fn answer(r: &mut Reader<'_>) -> Answer {
    if r.below(10) == 0 {
        let kind = r.pick(&[
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::Other,
        ]);
        return Answer::Fail(kind);
    }
    let status = match r.below(16) {
        0..=7 => 200,
        8 => 204,
        9 => 429,
        10 => 503,
        11 => 500,
        12 => 400,
        13 => 202,
        14 => 429,
        _ => 100 + (usize::from(r.byte()) * 4 + r.below(4)) as u16 % 900,
    };
    let retry_after = match r.below(6) {
        0 => Some(r.pick(&[
            "0",
            "1",
            "30",
            "-1",
            "abc",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "99999999999999999999",
        ])),
        _ => None,
    };
    let content_encoding = match r.below(8) {
        0 => Some("gzip"),
        1 => Some("identity"),
        _ => None,
    };
    let transfer_encoding = r.below(4) == 0;
    let echo = match r.below(2) {
        0 => {
            r.odd = r.below(4) == 0;
            let n = 1 + r.below(4);
            // Now and then the server could not read a call's id.
            let id = |r: &mut Reader<'_>| if r.below(5) == 0 { "null" } else { "{ID}" };
            Some(
                (0..n)
                    .map(|_| {
                        let id = id(r);
                        answer_to(r, id)
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    let mut body = answer_body(r);
    if content_encoding == Some("gzip") {
        // As gzip begins (so never JSON): the layer cannot read it.
        body.splice(0..0, [0x1f, 0x8b]);
    }
    let chunks = r.chunks();
    let broken = r.below(16) == 0;
    let delay = r.pick(&[0, 0, 0, 0, 1, 3]);
    let geth = r.below(8) == 0;
    Answer::Http(HttpAnswer {
        status,
        retry_after,
        content_encoding,
        transfer_encoding,
        body,
        echo,
        geth,
        chunks,
        broken,
        delay,
    })
}

/// A call of the layer: the caller's request and the inner service's answers.
#[derive(Clone, Debug)]
pub struct Case {
    pub request: Vec<u8>,
    pub request_chunks: Vec<usize>,
    /// The caller's body breaks after its bytes.
    pub request_broken: bool,
    pub accept_gzip: bool,
    pub content_length: bool,
    /// The layer's `request_limit` and `response_limit`, when small.
    pub request_limit: Option<usize>,
    pub response_limit: Option<usize>,
    /// The layer's `attempt_timeout`, and the strategies' `max_elapsed`, in seconds.
    pub attempt_timeout: Option<u64>,
    pub deadline: Option<u64>,
    /// Attempt `i` is answered by `answers[min(i, len - 1)]`; never empty.
    pub answers: Vec<Answer>,
}

impl Case {
    /// The caller's `request`, sent whole with the layer's defaults, and the answers.
    pub fn plain(request: Vec<u8>, answers: Vec<Answer>) -> Self {
        Self {
            request,
            request_chunks: Vec::new(),
            request_broken: false,
            accept_gzip: false,
            content_length: false,
            request_limit: None,
            response_limit: None,
            attempt_timeout: None,
            deadline: None,
            answers,
        }
    }

    pub fn read(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let request = request_body(&mut r);
        let request_chunks = r.chunks();
        let request_broken = r.below(32) == 0;
        let accept_gzip = r.below(3) == 0;
        let content_length = r.below(2) == 0;
        let request_limit = (r.below(8) == 0).then(|| r.below(128));
        let response_limit = (r.below(4) == 0).then(|| 16 + r.below(64));
        let attempt_timeout = (r.below(3) == 0).then_some(2);
        let deadline = (r.below(4) == 0).then(|| r.below(8) as u64);
        let n = 1 + r.below(RETRIES + 1);
        let answers = (0..n).map(|_| answer(&mut r)).collect();
        Self {
            request,
            request_chunks,
            request_broken,
            accept_gzip,
            content_length,
            request_limit,
            response_limit,
            attempt_timeout,
            deadline,
            answers,
        }
    }

    /// Whether an answer's body is over the layer's response limit.
    fn over(&self, a: &HttpAnswer) -> bool {
        self.response_limit
            .is_some_and(|limit| a.body.len() > limit)
    }

    fn answer(&self, i: usize) -> &Answer {
        &self.answers[i.min(self.answers.len() - 1)]
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert("x-signature", HeaderValue::from_static("sig"));
        if self.accept_gzip {
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if self.content_length {
            h.insert(CONTENT_LENGTH, HeaderValue::from(self.request.len()));
        }
        h
    }
}

// ---------------------------------------------------------------------------------------
// Bodies and the inner service
// ---------------------------------------------------------------------------------------

/// A body in chunks, optionally breaking at its end.
#[derive(Debug, Default)]
pub struct Chunked {
    chunks: VecDeque<Bytes>,
    broken: bool,
}

impl Chunked {
    fn new(bytes: &[u8], sizes: &[usize], broken: bool) -> Self {
        let mut chunks = VecDeque::new();
        let mut rest = bytes;
        for &size in sizes {
            let (chunk, more) = rest.split_at(size.min(rest.len()));
            chunks.push_back(Bytes::copy_from_slice(chunk));
            rest = more;
        }
        chunks.push_back(Bytes::copy_from_slice(rest));
        Self { chunks, broken }
    }
}

impl From<Vec<u8>> for Chunked {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            chunks: VecDeque::from([Bytes::from(bytes)]),
            broken: false,
        }
    }
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if std::mem::take(&mut self.broken) {
            return Poll::Ready(Some(Err(std::io::Error::other("the body broke"))));
        }
        Poll::Ready(None)
    }
}

/// An attempt as the inner service saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub uri: http::Uri,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The answer it got.
    pub answer: Answer,
}

// ---------------------------------------------------------------------------------------
// What the caller's body is, read independently of the layer
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Class {
    /// Not JSON-RPC: sent once, as it came.
    Other,
    /// A call, with its id.
    Single(Id),
    Notification,
    /// A batch: each item's bytes, and its call's id.
    Batch(Vec<(Bytes, Option<Id>)>),
    /// JSON serde_json cannot build (deep nesting, a number beyond `f64`): the layer
    /// may read it as JSON-RPC where a tree could not; only what holds either way is
    /// checked.
    Unknown,
}

fn classify(bytes: &Bytes) -> Class {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(_) => {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Class::Unknown,
                Err(_) => Class::Other,
            };
        }
    };
    match value {
        Value::Object(_) => match Request::from_value(value) {
            Ok(req) => match req.id() {
                Some(id) => Class::Single(id.clone()),
                None => Class::Notification,
            },
            Err(_) => Class::Other,
        },
        Value::Array(items) if !items.is_empty() => {
            let mut ids = Vec::new();
            for item in items {
                match Request::from_value(item) {
                    Ok(req) => ids.push(req.id().cloned()),
                    Err(_) => return Class::Other,
                }
            }
            let mut called: Vec<&Id> = ids.iter().flatten().collect();
            called.sort();
            if called.windows(2).any(|w| w[0] == w[1]) {
                return Class::Other;
            }
            let raw: Vec<&RawValue> = serde_json::from_slice(bytes).expect("an array");
            let own = raw.iter().map(|r| bytes.slice_ref(r.get().as_bytes()));
            Class::Batch(own.zip(ids).collect())
        }
        _ => Class::Other,
    }
}

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------

/// The strategies a case runs with: none, and 3 retries without waiting; both with the
/// case's deadline, if it has one.
pub fn strategy(retrying: bool, deadline: Option<u64>) -> RetryStrategy {
    let strategy = match retrying {
        false => RetryStrategy::none(),
        true => RetryStrategy::new(PeriodicBackoff::new(RETRIES, Duration::ZERO))
            .codes([-32005, -32000, -32600])
            .retry_on(ErrorClass::Status(StatusCode::TOO_MANY_REQUESTS))
            .retry_on(ErrorClass::Status(StatusCode::SERVICE_UNAVAILABLE))
            .retry_on(ErrorClass::Status(StatusCode::OK))
            .retry_on(ErrorClass::Reset)
            .retry_on(ErrorClass::Timeout),
    };
    match deadline {
        Some(secs) => strategy.max_elapsed(Duration::from_secs(secs)),
        None => strategy,
    }
}

/// What the layer answered: a status, headers and bytes, or an error.
type Outcome = Result<(StatusCode, HeaderMap, Bytes), BoxError>;

/// Runs `case` through the layer (with [`strategy`]`(retrying)`) on a paused clock; the
/// outcome and every attempt the inner service saw. Panics if the call hangs.
pub async fn run(case: &Case, retrying: bool) -> (Outcome, Vec<Seen>) {
    let (outcome, seen, _) = run_timed(case, retrying).await;
    (outcome, seen)
}

/// [`run`], and how long the call took on tokio's clock.
pub async fn run_timed(case: &Case, retrying: bool) -> (Outcome, Vec<Seen>, Duration) {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = Arc::clone(&seen);
    let answers = case.answers.clone();
    let inner = tower::service_fn(move |req: http::Request<Chunked>| {
        let log = Arc::clone(&log);
        let answers = answers.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .expect("the layer's body never breaks")
                .to_bytes();
            let (i, answer) = {
                let mut log = log.lock().unwrap();
                let i = log.len();
                let answer = match &answers[i.min(answers.len() - 1)] {
                    Answer::Http(a) => Answer::Http(a.for_request(&body)),
                    fail => fail.clone(),
                };
                log.push(Seen {
                    method: parts.method,
                    uri: parts.uri,
                    version: parts.version,
                    headers: parts.headers,
                    body,
                    answer: answer.clone(),
                });
                (i, answer)
            };
            if let Answer::Http(a) = &answer {
                tokio::time::sleep(Duration::from_secs(a.delay)).await;
            }
            match &answer {
                Answer::Fail(kind) => Err(std::io::Error::new(*kind, "the inner service failed")),
                Answer::Http(a) => {
                    let mut resp = http::Response::new(Chunked::new(&a.body, &a.chunks, a.broken));
                    *resp.status_mut() = StatusCode::from_u16(a.status).unwrap();
                    *resp.headers_mut() = a.headers(i);
                    Ok(resp)
                }
            }
        }
    });
    let mut layer = JsonRpcRetryLayer::http::<Chunked>(strategy(retrying, case.deadline));
    if let Some(secs) = case.attempt_timeout {
        layer = layer.attempt_timeout(Duration::from_secs(secs));
    }
    if let Some(limit) = case.request_limit {
        layer = layer.request_limit(limit);
    }
    if let Some(limit) = case.response_limit {
        layer = layer.response_limit(limit);
    }
    let svc = layer.layer(inner);
    let mut req = http::Request::new(Chunked::new(
        &case.request,
        &case.request_chunks,
        case.request_broken,
    ));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = "http://127.0.0.1:1/rpc?key=k".parse().unwrap();
    *req.headers_mut() = case.headers();
    let call = async {
        let resp = svc.oneshot(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| match e {})?.to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    let start = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(86_400), call)
        .await
        .expect("the call hangs");
    let elapsed = start.elapsed();
    let seen = seen.lock().unwrap().clone();
    (outcome, seen, elapsed)
}

/// Runs `case` with both strategies and checks every property; panics on a violation.
pub async fn check(case: &Case) {
    for retrying in [false, true] {
        let (outcome, seen, elapsed) = run_timed(case, retrying).await;
        // The answers as the attempts got them (those made for what they sent).
        let mut answered = case.clone();
        if !seen.is_empty() {
            answered.answers = seen.iter().map(|s| s.answer.clone()).collect();
        }
        check_run(&answered, retrying, &outcome, &seen, elapsed);
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The headers of an answer as it came (the layer drops `Transfer-Encoding` only: its
/// body is now whole).
fn as_it_came(a: &HttpAnswer, i: usize) -> HeaderMap {
    let mut h = a.headers(i);
    h.remove(TRANSFER_ENCODING);
    h
}

/// The outcome is answer `i` as it came.
fn assert_as_it_came(outcome: &Outcome, case: &Case, i: usize, ctx: &str) {
    let Answer::Http(a) = case.answer(i) else {
        panic!("{ctx}: attempt {i} has no HTTP answer");
    };
    match outcome {
        Ok((status, headers, body)) => {
            assert_eq!(status.as_u16(), a.status, "{ctx}: status");
            assert_eq!(headers, &as_it_came(a, i), "{ctx}: headers");
            assert_eq!(show(body), show(&a.body), "{ctx}: body");
        }
        Err(e) => panic!("{ctx}: attempt {i}'s answer as it came expected, got {e:?}"),
    }
}

/// The error is the inner service's own, of this kind.
fn assert_inner(outcome: &Outcome, kind: std::io::ErrorKind, ctx: &str) {
    match outcome {
        Err(e) => {
            let io = e
                .downcast_ref::<std::io::Error>()
                .unwrap_or_else(|| panic!("{ctx}: the inner error expected, got {e:?}"));
            assert_eq!(io.kind(), kind, "{ctx}");
            assert_eq!(io.to_string(), "the inner service failed", "{ctx}");
        }
        Ok(_) => panic!("{ctx}: the inner error expected, got an answer"),
    }
}

/// A single call's 2xx answer the layer refused: the tree decoder must not read it as the
/// call's answer.
fn assert_refusal_is_right(body: &[u8], id: &Id, ctx: &str) {
    if let Ok(resp) = Response::from_slice(body) {
        let answers = resp.id() == id || (resp.id() == &Id::Null && resp.is_error());
        assert!(
            !answers,
            "{ctx}: an answer to the call was refused: {}",
            show(body)
        );
    }
}

fn check_run(case: &Case, retrying: bool, outcome: &Outcome, seen: &[Seen], elapsed: Duration) {
    let request = Bytes::from(case.request.clone());
    let class = classify(&request);
    let ctx = format!(
        "retrying: {retrying}; {class:?}; request {:?}; {} attempts; outcome {:?}",
        show(&request),
        seen.len(),
        outcome.as_ref().map(|(s, _, b)| (s, show(b)))
    );
    let ctx = ctx.as_str();
    let most = if retrying { 1 + RETRIES } else { 1 };
    assert!(seen.len() <= most, "{ctx}: too many attempts");
    let timed_out = outcome.as_ref().is_err_and(|e| {
        e.is::<tower::timeout::error::Elapsed>()
            || e.downcast_ref::<codec::Error>()
                .is_some_and(codec::Error::is_timeout)
    });
    // The deadline bounds the whole call.
    if let Some(secs) = case.deadline {
        assert!(elapsed <= Duration::from_secs(secs), "{ctx}: {elapsed:?}");
    }
    if let Some(limit) = case.request_limit.filter(|&l| case.request.len() > l) {
        assert!(seen.is_empty(), "{ctx}: a body over the limit is sent");
        let err = outcome
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{ctx}: no error"));
        let said = format!("request body larger than the limit of {limit} bytes");
        assert_eq!(err.to_string(), said, "{ctx}");
        return;
    }
    if case.request_broken {
        assert!(seen.is_empty(), "{ctx}: a body that broke is sent");
        let err = outcome
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{ctx}: no error"));
        assert!(
            err.to_string().contains("the body broke"),
            "{ctx}: the body's own error expected: {err:?}"
        );
        return;
    }
    if seen.is_empty() && timed_out && case.deadline == Some(0) {
        // A deadline no later than the call: its one attempt is cut at once (its future
        // never polled, which is where the inner service here reads the request).
        return;
    }
    assert!(!seen.is_empty(), "{ctx}: nothing sent");
    // The first attempt is the caller's request.
    let first = &seen[0];
    assert_eq!(first.method, http::Method::POST, "{ctx}");
    assert_eq!(first.uri, "http://127.0.0.1:1/rpc?key=k", "{ctx}");
    assert_eq!(first.version, http::Version::HTTP_11, "{ctx}");
    assert_eq!(
        first.headers,
        case.headers(),
        "{ctx}: the first attempt's headers"
    );
    assert_eq!(
        show(&first.body),
        show(&request),
        "{ctx}: the first attempt's bytes"
    );
    for s in seen {
        assert_eq!(
            (&s.method, &s.uri, s.version),
            (&first.method, &first.uri, first.version),
            "{ctx}"
        );
    }
    let last = seen.len() - 1;
    // `HTTP_LEVEL_STATS=1` prints what each run was, to see what the cases reach.
    if std::env::var_os("HTTP_LEVEL_STATS").is_some() {
        let name = format!("{class:?}");
        let name = name.split('(').next().unwrap_or("");
        let gathered = outcome
            .as_ref()
            .is_ok_and(|(_, h, b)| !h.contains_key("content-digest") && !b.is_empty());
        eprintln!(
            "STAT {name} retrying={retrying} attempts={} ok={} gathered={gathered} {}",
            seen.len(),
            outcome.is_ok(),
            show(&request)
        );
    }
    // A timeout ends a call only when an attempt took the attempt timeout or the call
    // reached its deadline; an attempt that took the attempt timeout cannot be answered.
    let slow = |a: &Answer| match (a, case.attempt_timeout) {
        (Answer::Http(a), Some(timeout)) => a.delay >= timeout,
        _ => false,
    };
    let at_deadline = case
        .deadline
        .is_some_and(|secs| elapsed >= Duration::from_secs(secs));
    if timed_out {
        assert!(
            slow(case.answer(last)) || at_deadline,
            "{ctx}: a timeout after {elapsed:?}"
        );
        return;
    }
    let gathered = matches!(class, Class::Batch(_) | Class::Unknown) && seen.len() > 1;
    assert!(
        !slow(case.answer(last)) || gathered,
        "{ctx}: an attempt past its timeout answered"
    );
    match class {
        Class::Other => {
            assert_eq!(seen.len(), 1, "{ctx}: not JSON-RPC is sent once");
            match case.answer(0) {
                Answer::Http(a) if case.over(a) => assert_over_limit(outcome, a, false, ctx),
                _ => passed_through(outcome, case, 0, ctx),
            }
        }
        Class::Single(ref id) => {
            every_attempt_is_the_callers(case, seen, ctx);
            match case.answer(last) {
                Answer::Fail(kind) => assert_inner(outcome, *kind, ctx),
                Answer::Http(a) if case.over(a) => assert_over_limit(outcome, a, true, ctx),
                Answer::Http(a) if a.broken => assert!(outcome.is_err(), "{ctx}: a broken body"),
                Answer::Http(a) if !a.is_success() || a.encoded() => {
                    assert_as_it_came(outcome, case, last, ctx)
                }
                Answer::Http(a) => match outcome {
                    Ok(_) => {
                        assert_as_it_came(outcome, case, last, ctx);
                        if let Ok(resp) = Response::from_slice(&a.body) {
                            let answers =
                                resp.id() == id || (resp.id() == &Id::Null && resp.is_error());
                            assert!(answers, "{ctx}: an answer to another call was taken");
                        }
                    }
                    Err(e) => {
                        let decode = e
                            .downcast_ref::<codec::Error>()
                            .and_then(codec::Error::decode_error)
                            .unwrap_or_else(|| panic!("{ctx}: a decode error expected: {e:?}"));
                        let _: &DecodeError = decode;
                        assert_refusal_is_right(&a.body, id, ctx);
                    }
                },
            }
            if retrying && seen.len() < most && case.deadline.is_none() {
                // A 429 or 503 answered last would have been retried.
                if let Answer::Http(a) = case.answer(last) {
                    assert!(
                        !matches!(a.status, 429 | 503),
                        "{ctx}: a retryable status ended the call"
                    );
                }
            }
        }
        Class::Notification => {
            every_attempt_is_the_callers(case, seen, ctx);
            match case.answer(last) {
                Answer::Fail(kind) => assert_inner(outcome, *kind, ctx),
                // Its head, without the body (not read).
                Answer::Http(a) if a.is_success() => assert_delivered(outcome, a, last, ctx),
                Answer::Http(a) if case.over(a) => assert_over_limit(outcome, a, true, ctx),
                Answer::Http(a) if a.broken => assert!(outcome.is_err(), "{ctx}: a broken body"),
                Answer::Http(_) => assert_as_it_came(outcome, case, last, ctx),
            }
        }
        Class::Batch(ref items) => {
            for (i, s) in seen.iter().enumerate().skip(1) {
                a_batch_attempt(case, items, s, ctx, i);
            }
            if seen.len() == 1 {
                let Answer::Http(a) = case.answer(0) else {
                    let Answer::Fail(kind) = case.answer(0) else {
                        unreachable!()
                    };
                    return assert_inner(outcome, *kind, ctx);
                };
                let ids: Vec<Id> = items.iter().filter_map(|(_, id)| id.clone()).collect();
                if ids.is_empty() && a.is_success() && (case.over(a) || a.broken) {
                    // Notifications only, accepted: delivered as a single notification
                    // is, its head without the body no refusal came whole in.
                    return assert_delivered(outcome, a, 0, ctx);
                }
                if case.over(a) {
                    return assert_over_limit(outcome, a, true, ctx);
                }
                if a.broken {
                    return assert!(outcome.is_err(), "{ctx}: a broken body");
                }
                if !a.is_success() || a.encoded() || ids.is_empty() {
                    return assert_as_it_came(outcome, case, 0, ctx);
                }
                match outcome {
                    Ok(_) => {
                        assert_as_it_came(outcome, case, 0, ctx);
                        if let Err(e) = BatchResponse::from_slice(&a.body, &ids) {
                            assert!(
                                matches!(e, DecodeError::Json(_)),
                                "{ctx}: the tree decoder refuses the answer taken: {e:?}"
                            );
                        }
                    }
                    Err(e) => {
                        assert!(
                            e.downcast_ref::<codec::Error>()
                                .is_some_and(codec::Error::is_decode),
                            "{ctx}: a decode error expected: {e:?}"
                        );
                        assert!(
                            BatchResponse::from_slice(&a.body, &ids).is_err(),
                            "{ctx}: the tree decoder reads the answer refused"
                        );
                    }
                }
            } else if let Ok(got) = outcome {
                // The last exchange may have been cut (its attempt timeout, the deadline).
                let cut = slow(case.answer(last)) || at_deadline;
                a_gathered_answer(case, items, seen, got, cut, ctx);
            }
        }
        Class::Unknown => {
            // Sent as it came whatever the layer read it as, and if once, answered as it
            // came (unless the layer read it as a call and refused the answer).
            every_attempt_is_the_callers_or_items(case, seen, ctx);
            if let (1, Ok((status, _, body)), Answer::Http(a)) =
                (seen.len(), outcome, case.answer(0))
            {
                assert_eq!(status.as_u16(), a.status, "{ctx}");
                assert!(body.is_empty() || body[..] == a.body[..], "{ctx}");
            }
        }
    }
}

/// An answer whose body is over the response limit: the layer's error, with the
/// answer's status; but the answer to a JSON-RPC message under a failure status comes
/// back as that status, without its body (with its `Retry-After`).
fn assert_over_limit(outcome: &Outcome, a: &HttpAnswer, json_rpc: bool, ctx: &str) {
    if json_rpc && !a.is_success() {
        let (status, headers, body) = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{ctx}: the status expected, got {e:?}"));
        assert_eq!(status.as_u16(), a.status, "{ctx}");
        assert!(body.is_empty(), "{ctx}");
        // No header describes the body left out.
        for name in [CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING] {
            let said = headers.get(&name);
            assert!(said.is_none_or(|v| v == "0"), "{ctx}: {name}: {said:?}");
        }
        // The server's `Retry-After`, as it came or as the layer writes it.
        let told = headers.get(RETRY_AFTER).map(|v| v.to_str().unwrap_or("?"));
        match a.retry_after {
            Some(v @ ("0" | "1" | "30")) => assert_eq!(told, Some(v), "{ctx}"),
            None => assert_eq!(told, None, "{ctx}"),
            Some(v @ ("-1" | "abc")) => assert!(told.is_none_or(|t| t == v), "{ctx}"),
            Some(_) => assert!(told.is_some(), "{ctx}"),
        }
        return;
    }
    let err = outcome
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("{ctx}: a body over the limit was taken"));
    let err = err
        .downcast_ref::<codec::Error>()
        .unwrap_or_else(|| panic!("{ctx}: a codec error expected: {err:?}"));
    assert!(err.is_body_too_large(), "{ctx}: {err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(a.status), "{ctx}");
}

/// A body sent once, as it came: its answer comes back as it came.
fn passed_through(outcome: &Outcome, case: &Case, i: usize, ctx: &str) {
    match case.answer(i) {
        Answer::Fail(kind) => assert_inner(outcome, *kind, ctx),
        Answer::Http(a) if a.broken => {
            let err = outcome
                .as_ref()
                .err()
                .unwrap_or_else(|| panic!("{ctx}: no error"));
            let err = err
                .downcast_ref::<codec::Error>()
                .unwrap_or_else(|| panic!("{ctx}: a codec error expected: {err:?}"));
            assert_eq!(err.status().map(|s| s.as_u16()), Some(a.status), "{ctx}");
        }
        Answer::Http(_) => assert_as_it_came(outcome, case, i, ctx),
    }
}

fn every_attempt_is_the_callers(case: &Case, seen: &[Seen], ctx: &str) {
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(
            show(&s.body),
            show(&case.request),
            "{ctx}: attempt {i}'s bytes"
        );
        assert_eq!(s.headers, case.headers(), "{ctx}: attempt {i}'s headers");
    }
}

fn every_attempt_is_the_callers_or_items(case: &Case, seen: &[Seen], ctx: &str) {
    let request = Bytes::from(case.request.clone());
    let items: Vec<(Bytes, Option<Id>)> = serde_json::from_slice::<Vec<&RawValue>>(&request)
        .map(|raw| {
            raw.iter()
                .map(|r| (request.slice_ref(r.get().as_bytes()), None))
                .collect()
        })
        .unwrap_or_default();
    for (i, s) in seen.iter().enumerate().skip(1) {
        a_batch_attempt(case, &items, s, ctx, i);
    }
}

/// A later attempt of a batch: the caller's bytes and head, or some of its items, each
/// as the caller wrote it, in order, in a new array (framed anew, and asking for an
/// unencoded answer).
fn a_batch_attempt(case: &Case, items: &[(Bytes, Option<Id>)], s: &Seen, ctx: &str, i: usize) {
    if s.body == case.request {
        let mut head = case.headers();
        if case.accept_gzip
            && s.headers.get(ACCEPT_ENCODING) == Some(&HeaderValue::from_static("identity"))
        {
            head.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        assert_eq!(s.headers, head, "{ctx}: attempt {i}'s headers");
        return;
    }
    let mut head = case.headers();
    head.remove(CONTENT_LENGTH);
    if case.accept_gzip {
        head.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    assert_eq!(s.headers, head, "{ctx}: attempt {i}'s headers");
    // "[" item ("," item)* "]", items in the caller's order, none twice.
    let body = &s.body[..];
    assert!(
        body.starts_with(b"[") && body.ends_with(b"]"),
        "{ctx}: attempt {i}: {}",
        show(body)
    );
    let mut rest = &body[1..body.len() - 1];
    let mut next = 0;
    let mut sent = 0;
    while !rest.is_empty() {
        if sent > 0 {
            assert!(rest.starts_with(b","), "{ctx}: attempt {i}: {}", show(body));
            rest = &rest[1..];
        }
        let found = (next..items.len()).find(|&k| rest.starts_with(&items[k].0));
        let k = found.unwrap_or_else(|| {
            panic!(
                "{ctx}: attempt {i} sends an item not the caller's: {}",
                show(body)
            )
        });
        rest = &rest[items[k].0.len()..];
        next = k + 1;
        sent += 1;
    }
    assert!(
        sent > 0 && sent < items.len(),
        "{ctx}: attempt {i} narrows to {sent} items"
    );
}

/// A 2xx answer to notifications, delivered: its head without the headers of the body
/// left out, and no body.
fn assert_delivered(outcome: &Outcome, a: &HttpAnswer, attempt: usize, ctx: &str) {
    let mut head = as_it_came(a, attempt);
    head.remove(CONTENT_LENGTH);
    head.remove(CONTENT_ENCODING);
    head.remove("content-digest");
    match outcome {
        Ok((status, headers, body)) => {
            assert_eq!(status.as_u16(), a.status, "{ctx}");
            assert_eq!(headers, &head, "{ctx}");
            assert!(body.is_empty(), "{ctx}");
        }
        Err(e) => panic!("{ctx}: delivered notifications failed: {e:?}"),
    }
}

/// The seconds a `Retry-After` the cases give asks for (a date in the past: none;
/// beyond `u64`: `u64::MAX`); `None` for one that is not a hint.
fn hint_secs(value: &str) -> Option<u64> {
    match value {
        "-1" | "abc" => None,
        "99999999999999999999" => Some(u64::MAX),
        _ => Some(value.parse().unwrap_or(0)),
    }
}

/// A batch answer after several attempts: the last exchange's as it came, an earlier
/// one's when a later one failed as a whole, or the items gathered into a JSON array
/// with one answer per call, each the server's bytes; under 200 if the batch was
/// retried in part.
fn a_gathered_answer(
    case: &Case,
    items: &[(Bytes, Option<Id>)],
    seen: &[Seen],
    got: &(StatusCode, HeaderMap, Bytes),
    last_cut: bool,
    ctx: &str,
) {
    let last = seen.len() - 1;
    let (status, headers, body) = got;
    // A later attempt that sent a narrower array: the batch was retried in part, and
    // its answer is a 200 whatever status the answer it hands back came under.
    let in_part = seen[1..].iter().any(|s| s.body != case.request);
    let attempt: Option<usize> = headers
        .get("x-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    // One exchange's answer as it came keeps the header of its body; a gathered one
    // has the head of an exchange that answered, without it.
    let whole = headers.contains_key("content-digest");
    if let Some(i) = attempt {
        let Answer::Http(a) = case.answer(i) else {
            panic!("{ctx}")
        };
        assert!(i <= last, "{ctx}");
        let notifications_only = items.iter().all(|(_, id)| id.is_none());
        if notifications_only && a.is_success() && (case.over(a) || a.broken) {
            // Accepted: delivered, without the body no refusal came whole in.
            assert!(body.is_empty(), "{ctx}: attempt {i}'s body");
            assert_eq!(status.as_u16(), a.status, "{ctx}");
            assert_eq!(headers.get(CONTENT_LENGTH), None, "{ctx}");
            return;
        }
        if case.over(a) {
            return assert_over_limit(&Ok(got.clone()), a, true, ctx);
        }
        if whole {
            // The last one's, as it came (its Retry-After may be a later failure's).
            assert_eq!(show(body), show(&a.body), "{ctx}: attempt {i}'s body");
            if in_part {
                assert_eq!(*status, StatusCode::OK, "{ctx}: attempt {i}'s answers");
            } else {
                assert_eq!(status.as_u16(), a.status, "{ctx}");
            }
            return;
        }
    }
    // Gathered: under the head of a re-send's answer (the first exchange's would say the
    // answer was not gathered), without the headers of that exchange's own body.
    assert!(
        attempt.is_some_and(|i| i >= 1) && !whole,
        "{ctx}: a gathered answer has the head of a re-send that answered"
    );
    for name in [CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING] {
        assert!(
            !headers.contains_key(&name),
            "{ctx}: {name} on a gathered answer"
        );
    }
    assert_eq!(
        headers.get(CONTENT_TYPE),
        Some(&HeaderValue::from_static("application/json")),
        "{ctx}"
    );
    if body.is_empty() {
        return;
    }
    if in_part {
        assert_eq!(*status, StatusCode::OK, "{ctx}: a gathered answer");
    } else {
        // Sent whole each time: the status of an answer it came under (a 2xx one's as
        // 200, the layer writing the body). Which answer's, the model does not work out
        // (the last that a later failure as a whole left standing):
        // `tests/http_level_edges.rs` pins it.
        let mut statuses = seen.iter().filter_map(|s| match &s.answer {
            Answer::Http(a) if a.is_success() => Some(200),
            Answer::Http(a) => Some(a.status),
            Answer::Fail(_) => None,
        });
        assert!(statuses.any(|a| a == status.as_u16()), "{ctx}: sent whole");
    }
    // The last exchange's Retry-After, in delay-seconds (none if it was cut). Without
    // one, when that exchange failed as a whole (the head is an earlier exchange's),
    // what is left of an earlier exchange's, the server's latest word on time: no more
    // than the longest an earlier exchange gave, and none if none did.
    if let (Answer::Http(a), false) = (case.answer(last), last_cut) {
        let told = headers.get(RETRY_AFTER).map(|v| v.to_str().unwrap_or("?"));
        let longest_before = (0..last)
            .filter_map(|i| match case.answer(i) {
                Answer::Http(a) => a.retry_after.and_then(hint_secs),
                Answer::Fail(_) => None,
            })
            .max();
        let failed_as_a_whole = attempt != Some(last);
        match a.retry_after {
            Some(v @ ("0" | "1" | "30")) => assert_eq!(told, Some(v), "{ctx}"),
            None | Some("-1" | "abc") if failed_as_a_whole => {
                let told = told.map(|v| v.parse::<u64>().expect("delay-seconds"));
                assert!(
                    told.is_none_or(|t| longest_before.is_some_and(|most| t <= most)),
                    "{ctx}: told {told:?}, the longest earlier hint {longest_before:?}"
                );
            }
            None | Some("-1" | "abc") => assert_eq!(told, None, "{ctx}"),
            Some(_) => assert!(told.is_some(), "{ctx}"),
        }
    }
    let answered: Vec<&RawValue> = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{ctx}: a gathered answer is no JSON array: {e}"));
    // Every item as some exchange's server wrote it, or an error given a call's id.
    let server_items: Vec<Bytes> = case
        .answers
        .iter()
        .filter_map(|a| match a {
            Answer::Http(a) => Some(Bytes::from(a.body.clone())),
            Answer::Fail(_) => None,
        })
        .flat_map(|b| {
            serde_json::from_slice::<Vec<&RawValue>>(&b)
                .map(|raw| {
                    raw.iter()
                        .map(|r| b.slice_ref(r.get().as_bytes()))
                        .collect::<Vec<_>>()
                })
                // Not an array: the body as one item, without the whitespace around it
                // (the answer to a batch's only call, unwrapped).
                .unwrap_or_else(|_| match serde_json::from_slice::<&RawValue>(&b) {
                    Ok(raw) => vec![b.slice_ref(raw.get().as_bytes())],
                    Err(_) => vec![b.clone()],
                })
        })
        .collect();
    // The error objects of the server's null-id errors, as it wrote them: a call given
    // one by elimination gets it with its own id, the error object byte for byte; and
    // of geth's refusals, an array of one error, which every call it refused carries.
    let error_of = |item: &[u8], refusal: bool| {
        serde_json::from_slice::<BTreeMap<String, &RawValue>>(item)
            .ok()
            .and_then(|m| {
                let null_id = m.get("id").is_some_and(|id| id.get() == "null");
                m.get("error")
                    .filter(|_| null_id || refusal)
                    .map(|e| e.get().to_owned())
            })
    };
    let mut server_errors: Vec<String> = server_items
        .iter()
        .filter_map(|item| error_of(item, false))
        .collect();
    server_errors.extend(case.answers.iter().filter_map(|a| match a {
        Answer::Http(a) => match serde_json::from_slice::<Vec<&RawValue>>(&a.body).ok()?[..] {
            [only] => error_of(only.get().as_bytes(), true),
            _ => None,
        },
        Answer::Fail(_) => None,
    }));
    let mut ids = Vec::new();
    for item in &answered {
        let text = item.get().as_bytes();
        let own = server_items.iter().any(|s| s == text);
        // Members as raw text: a result serde_json cannot build is still read past.
        let members: Option<BTreeMap<String, &RawValue>> = serde_json::from_str(item.get()).ok();
        let id = members
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(|id| serde_json::from_str::<Value>(id.get()).ok())
            .and_then(|id| Id::from_value(&id).ok());
        if !own {
            let error = members
                .as_ref()
                .and_then(|m| m.get("error"))
                .map(|e| e.get());
            assert!(
                error.is_some_and(|e| server_errors.iter().any(|s| s == e)),
                "{ctx}: an item the server never wrote: {}",
                item.get()
            );
            // (Unless a call has the null id: written anew, it answers that call.)
            let null_call = items.iter().any(|(_, id)| *id == Some(Id::Null));
            assert!(
                null_call || id != Some(Id::Null),
                "{ctx}: a null-id error written anew: {}",
                item.get()
            );
        }
        ids.push(id);
    }
    for (_, id) in items {
        if let Some(id) = id {
            let n = ids
                .iter()
                .filter(|found| found.as_ref() == Some(id))
                .count();
            // A call with a null id may see null-id errors no call took after its own.
            let right = n == 1 || (*id == Id::Null && n > 1);
            assert!(
                right,
                "{ctx}: call {id:?} answered {n} times in {}",
                show(body)
            );
        }
    }
}
