//! Properties of the retry semantics (lib.rs "Choosing what to retry", "Batches",
//! "`Retry-After`, deadlines and budgets"; retry/mod.rs; `RetryStrategy`'s docs), driven
//! against an in-memory scripted inner service on tokio's paused clock.
//!
//! A generated script says what the server does on each exchange (a success, an error
//! code, a transport failure of some kind, a whole-batch refusal), how long it takes,
//! and the wait hints it gives: a `Retry-After` header on the answer (delay-seconds,
//! huge, or unreadable) and a `backoff_seconds` in each error object's `data` (at its top
//! or under `rate`; negative, fractional, huge); a generated strategy has a periodic
//! backoff, some codes, some error classes, maybe a deadline, maybe a non-idempotent
//! method, maybe a budget and a ceiling on hints (`ZERO` included), and is set on the
//! layer or in the request's extensions (over a layer default that retries everything). Batches
//! mix calls and notifications, and the server may answer their calls in reverse order.
//! Each case runs at one of three levels:
//!
//! - `Direct`: `JsonRpcRetryLayer::new` over a `service_fn` of `jsonrpc::Request` /
//!   `BatchRequest` (not the codec: the layer cuts an attempt a millisecond after the
//!   deadline);
//! - `Codec`: `JsonRpcRetryLayer::new` over `JsonRpcCodec` over an HTTP `service_fn`
//!   (every attempt is cut short at the deadline);
//! - `Http`: `JsonRpcRetryLayer::http` over the same HTTP `service_fn`.
//!
//! and its outcome, attempts and timing are compared with a small reference model of the
//! documented semantics (for a single call, how its retries ended too, as the
//! `on_give_up` hook hears it), besides a few properties checked on their own.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::codec::{JsonRpcCodecLayer, RetryAfter};
use tower_jsonrpc_retry::jsonrpc::{
    BatchRequest, BatchResponse, ErrorObject, Id, Request, Response,
};
use tower_jsonrpc_retry::{
    BoxError, ErrorClass, GiveUpEvent, GiveUpReason, JsonRpcRetryLayer, RetryStrategy,
};

// ---------------------------------------------------------------------------------------
// Scripts and strategies
// ---------------------------------------------------------------------------------------

/// The codes a strategy may list.
const CODES: [i64; 3] = [2001, 2002, -32005];
/// A code no strategy lists.
const UNLISTED: i64 = -32000;
/// The most calls in a batch.
const MAX_CALLS: usize = 4;
/// The method `non_idempotent` names, when the plan has one.
const WRITE: &str = "send";

/// A transport failure's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `ConnectionRefused`: a connect failure.
    Connect,
    /// tower's `Elapsed`.
    Timeout,
    /// `ConnectionReset`.
    Reset,
    /// Something no class matches.
    Other,
}

/// What the server answers one call with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    Code(i64),
}

/// What one exchange does.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Exchange {
    /// A transport failure.
    Fail(Kind),
    /// A whole batch refused with one error object (id null); never for a single call.
    Refuse(i64),
    /// Each call answered: the call with id `j` gets item `j - 1`.
    Items(Vec<Answer>),
}

/// Where an error object's `data` puts Infura's `backoff_seconds`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    /// `{"backoff_seconds": s}`, as Infura documents it.
    Top,
    /// `{"rate": {"backoff_seconds": s}}`, as Infura sends it.
    Rate,
}

/// An error object's `data`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Data {
    /// No `data` member.
    Absent,
    /// `data` without a wait hint.
    Other,
    /// `backoff_seconds` at a place.
    Backoff(Place, f64),
}

impl Data {
    fn json(self) -> Option<Value> {
        match self {
            Data::Absent => None,
            Data::Other => Some(json!({"reason": "busy", "backoff": 9})),
            Data::Backoff(Place::Top, s) => Some(json!({"backoff_seconds": s, "rate": {}})),
            Data::Backoff(Place::Rate, s) => {
                Some(json!({"rate": {"allowed_rps": 1, "backoff_seconds": s}}))
            }
        }
    }

    /// The hint in ns (decide::data_hint's docs, lib.rs "`Retry-After`, deadlines and
    /// budgets"): a number of seconds; a negative one is no hint; one too large for a
    /// `Duration` waits the ceiling (here: saturates, and the ceiling clamps it).
    fn hint_ns(self) -> Option<u64> {
        match self {
            Data::Backoff(_, s) if s >= 0.0 => Some((s * 1e9).round() as u64),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Step {
    /// How long the exchange takes, in ms.
    ms: u64,
    exchange: Exchange,
    /// The answer's `Retry-After` header (never on a transport failure).
    retry_after: Option<&'static str>,
    /// Each error object's `data`: the call with id `j` gets item `j - 1`; a whole-batch
    /// refusal gets item 0.
    data: [Data; MAX_CALLS],
}

impl Step {
    /// The `data` of the error object the call with this id gets, if it gets one.
    fn data(&self, id: i64) -> Data {
        match item_answer(&self.exchange, id) {
            Answer::Ok => Data::Absent,
            Answer::Code(_) => self.data[self.data_index(id)],
        }
    }

    fn data_index(&self, id: i64) -> usize {
        match self.exchange {
            Exchange::Refuse(_) => 0,
            _ => (id - 1) as usize,
        }
    }

    /// The refusal's `data`.
    fn refusal_data(&self) -> Data {
        self.data[0]
    }

    /// The header's hint in ns: delay-seconds (too large for a `u64` saturates); a
    /// negative or fractional number or anything else is no hint (`RetryAfter::parse`).
    fn header_ns(&self) -> Option<u64> {
        let value = self.retry_after?.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(
            value
                .parse::<u64>()
                .map_or(u64::MAX, |s| s.saturating_mul(1_000_000_000)),
        )
    }
}

/// What the server does once its script has run out: answers everything at once.
fn default_step() -> Step {
    Step {
        ms: 0,
        exchange: Exchange::Items(vec![Answer::Ok; MAX_CALLS]),
        retry_after: None,
        data: [Data::Absent; MAX_CALLS],
    }
}

/// A strategy's parameters.
#[derive(Clone, Debug)]
struct Plan {
    retries: usize,
    interval_ms: u64,
    codes: Vec<i64>,
    classes: Vec<Kind>,
    max_elapsed_ms: Option<u64>,
    /// Whether `WRITE` is marked non-idempotent.
    non_idempotent: bool,
    /// A budget that lets this many retries through, if any.
    budget: Option<usize>,
    /// Whether the strategy goes in the request's extensions (over a layer whose default
    /// is [`noisy_default`]) rather than on the layer.
    per_request: bool,
    /// The `retry_after_ceiling`, if set (else the default, one minute).
    ceiling_ms: Option<u64>,
}

/// A budget that lets a fixed number of retries through.
#[derive(Debug)]
struct Allow(std::sync::atomic::AtomicUsize);

impl tower::retry::budget::Budget for Allow {
    fn deposit(&self) {}

    fn withdraw(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The layer's default when a request carries its own strategy: it retries everything,
/// quickly, under a short deadline, and marks every method non-idempotent, so that any
/// of it leaking into a request with its own strategy shows.
fn noisy_default() -> RetryStrategy {
    RetryStrategy::new(PeriodicBackoff::new(6, Duration::from_millis(7)))
        .codes(CODES.iter().copied().chain([UNLISTED]))
        .retry_on(ErrorClass::Connect)
        .retry_on(ErrorClass::Timeout)
        .retry_on(ErrorClass::Reset)
        .retry_if(|_| true)
        .max_elapsed(Duration::from_millis(333))
        .non_idempotent(["sum", WRITE])
}

impl Plan {
    fn strategy(&self) -> RetryStrategy {
        self.strategy_holding(false)
    }

    /// The plan's strategy; with `by_method`, a non-idempotent `WRITE` is held back by a
    /// strategy for it that never retries (`RetryStrategy::for_method`), which a batch
    /// heeds as it heeds the mark.
    fn strategy_holding(&self, by_method: bool) -> RetryStrategy {
        let mut s = RetryStrategy::new(PeriodicBackoff::new(
            self.retries,
            Duration::from_millis(self.interval_ms),
        ))
        .codes(self.codes.iter().copied());
        for kind in &self.classes {
            s = s.retry_on(match kind {
                Kind::Connect => ErrorClass::Connect,
                Kind::Timeout => ErrorClass::Timeout,
                Kind::Reset => ErrorClass::Reset,
                Kind::Other => unreachable!("no class matches it"),
            });
        }
        if let Some(ms) = self.max_elapsed_ms {
            s = s.max_elapsed(Duration::from_millis(ms));
        }
        if self.non_idempotent {
            s = if by_method {
                s.for_method(WRITE, RetryStrategy::none())
            } else {
                s.non_idempotent([WRITE])
            };
        }
        if let Some(n) = self.budget {
            s = s.budget(Arc::new(Allow(n.into())));
        }
        if let Some(ms) = self.ceiling_ms {
            s = s.retry_after_ceiling(Duration::from_millis(ms));
        }
        s
    }

    /// The layer's strategy, and the one for the batch's extensions (see
    /// [`strategy_holding`](Self::strategy_holding) for `by_method`).
    fn placed(&self, by_method: bool) -> (RetryStrategy, Option<RetryStrategy>) {
        if self.per_request {
            (noisy_default(), Some(self.strategy_holding(by_method)))
        } else {
            (self.strategy_holding(by_method), None)
        }
    }

    /// The layer's strategy and the request's own, for a single call of `method`, with
    /// `hear` on each. With `by_method`, the plan's strategy is the default's strategy
    /// for `method` (`RetryStrategy::for_method`) over a noisy default that does not
    /// mark `method` non-idempotent, or, with
    /// `per_request` too, the request's own over a noisy strategy for `method`. Without
    /// it, a noisy strategy for the other method is added to the default, the plan's or
    /// the noisy one. Any of the noisy ones leaking into the call shows.
    fn placed_for(
        &self,
        method: &str,
        by_method: bool,
        hear: impl Fn(RetryStrategy) -> RetryStrategy,
    ) -> (RetryStrategy, Option<RetryStrategy>) {
        let other = if method == WRITE { "sum" } else { WRITE };
        let noisy = || hear(noisy_default());
        // A default's mark would hold under the method's strategy: none for `method`.
        let unmarked = || hear(noisy_default().idempotent([method]));
        match (self.per_request, by_method) {
            (false, false) => (hear(self.strategy()).for_method(other, noisy()), None),
            (false, true) => (unmarked().for_method(method, hear(self.strategy())), None),
            (true, false) => (
                noisy().for_method(other, noisy()),
                Some(hear(self.strategy())),
            ),
            (true, true) => (
                noisy().for_method(method, noisy()),
                Some(hear(self.strategy())),
            ),
        }
    }

    /// How many retries the backoff and the budget allow together.
    fn max_retries(&self) -> usize {
        self.budget.map_or(self.retries, |b| b.min(self.retries))
    }

    fn is_non_idempotent(&self, method: &str) -> bool {
        self.non_idempotent && method == WRITE
    }

    /// Whether an answer to a call of `method` is retried (delays permitting).
    fn retries_answer(&self, method: &str, answer: Answer) -> bool {
        match answer {
            Answer::Ok => false,
            Answer::Code(c) => !self.is_non_idempotent(method) && self.codes.contains(&c),
        }
    }

    /// Whether a transport failure is retried (delays permitting), for a request with a
    /// non-idempotent method in it or not: only after a connect failure then.
    fn retries_failure(&self, non_idempotent: bool, kind: Kind) -> bool {
        (!non_idempotent || kind == Kind::Connect) && self.classes.contains(&kind)
    }

    /// The wait before a retry, in ms, given the server's hint in ns (the larger of the
    /// header's and the data's): the backoff's delay raised to the hint, never shortened,
    /// the hint clamped to the ceiling (`ZERO` ignores hints): `retry_after_ceiling`'s
    /// docs, lib.rs "`Retry-After`, deadlines and budgets", retry/mod.rs step 2. A wait
    /// is slept on tokio's clock, whose timer fires on whole milliseconds (a fraction of
    /// one is rounded up): that is the wait the deadline must leave room for.
    fn delay(&self, hint_ns: Option<u64>) -> u64 {
        let ceiling = self.ceiling_ms.map_or(
            tower_jsonrpc_retry::retry::DEFAULT_RETRY_AFTER_CEILING.as_nanos() as u64,
            |ms| ms * 1_000_000,
        );
        let hint_ms = hint_ns.map_or(0, |h| h.min(ceiling).div_ceil(1_000_000));
        self.interval_ms.max(hint_ms)
    }

    /// Whether a retry may be scheduled at `t` ms after a wait of `delay` ms: the wait
    /// must end before the deadline (retry/mod.rs step 3: "a wait that would end at or
    /// past `max_elapsed` is not started").
    fn wait_fits(&self, t: u64, delay: u64) -> bool {
        self.max_elapsed_ms
            .is_none_or(|deadline| t.saturating_add(delay) < deadline)
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Connect),
        Just(Kind::Timeout),
        Just(Kind::Reset),
        Just(Kind::Other),
    ]
}

fn code() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![CODES[0], CODES[1], CODES[2], UNLISTED])
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![2 => Just(Answer::Ok), 3 => code().prop_map(Answer::Code)]
}

fn step_ms() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![0u64, 50, 100, 200, 500, 5000])
}

/// A `Retry-After` value, on about a third of the answers: delay-seconds (one beyond
/// `u64` included), or one that is not delay-seconds and so no hint. (One `select`, not
/// `prop::option` over a union: a union forks an RNG for each arm before the one it
/// picks, which, for every step, doubled the test's time.)
fn retry_after() -> impl Strategy<Value = Option<&'static str>> {
    let values = [
        "0",
        "1",
        "2",
        " 3 ",
        "5",
        "120",
        "99999999999999999999999",
        "-1",
        "1.5",
        "soon",
    ];
    let none = std::iter::repeat_n(None, 2 * values.len());
    prop::sample::select(none.chain(values.map(Some)).collect::<Vec<_>>())
}

/// An error object's `data`, from one `select` (see [`retry_after`]): a wait hint three
/// times in five, at either place, of many sizes (some not a whole number of
/// milliseconds); `Absent` first, for shrinking.
fn data() -> impl Strategy<Value = Data> {
    let secs = [
        -2.0, -0.25, 0.0, 0.0004, 0.001, 0.05, 0.0995, 0.2495, 0.3, 1.0, 1.5, 2.0, 2.4995, 4.0,
        75.0, 1e10, 1e300,
    ];
    let hints = secs
        .iter()
        .flat_map(|&s| [Data::Backoff(Place::Top, s), Data::Backoff(Place::Rate, s)]);
    let others = [Data::Absent, Data::Other]
        .into_iter()
        .cycle()
        .take(secs.len() * 4 / 3);
    prop::sample::select(others.chain(hints).collect::<Vec<_>>())
}

fn step(exchange: impl Strategy<Value = Exchange>) -> impl Strategy<Value = Step> {
    (
        step_ms(),
        exchange,
        retry_after(),
        prop::array::uniform4(data()),
    )
        .prop_map(|(ms, exchange, retry_after, data)| Step {
            ms,
            exchange,
            retry_after,
            data,
        })
}

/// A single call's step: an answer or a transport failure.
fn single_step() -> impl Strategy<Value = Step> {
    step(prop_oneof![
        3 => answer().prop_map(|a| Exchange::Items(vec![a])),
        2 => kind().prop_map(Exchange::Fail),
    ])
}

/// A batch exchange's step: answers per call, a refusal, or a transport failure.
fn batch_step() -> impl Strategy<Value = Step> {
    step(prop_oneof![
        4 => prop::collection::vec(answer(), MAX_CALLS).prop_map(Exchange::Items),
        1 => code().prop_map(Exchange::Refuse),
        2 => kind().prop_map(Exchange::Fail),
    ])
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        0usize..5,
        prop::sample::select(vec![0u64, 100, 250, 1000]),
        prop::sample::subsequence(CODES.to_vec(), 0..=CODES.len()),
        prop::sample::subsequence(vec![Kind::Connect, Kind::Timeout, Kind::Reset], 0..=3),
        prop::option::of(prop::sample::select(vec![
            0u64, 50, 100, 250, 300, 500, 1000, 2500, 4000, 10_000,
        ])),
        any::<bool>(),
        prop::option::of(0usize..4),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![
            0u64, 1, 250, 1000, 1500, 3000, 3_600_000,
        ])),
    )
        .prop_map(
            |(
                retries,
                interval_ms,
                codes,
                classes,
                max_elapsed_ms,
                non_idempotent,
                budget,
                per_request,
                ceiling_ms,
            )| Plan {
                retries,
                interval_ms,
                codes,
                classes,
                max_elapsed_ms,
                non_idempotent,
                budget,
                per_request,
                ceiling_ms,
            },
        )
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["sum", WRITE])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Direct,
    Codec,
    Http,
}

impl Level {
    /// When an attempt that would end at `ends` is cut short by the deadline, if it is:
    /// at the deadline over the codec; over another service, a millisecond after it, by
    /// the layer itself. Either way an answer that comes at that moment is still the
    /// answer (the exchange is polled before the timer, as in tower's `Timeout`).
    fn cut(self, deadline: u64, ends: u64) -> Option<u64> {
        match self {
            Level::Direct => (ends > deadline + 1).then_some(deadline + 1),
            Level::Codec | Level::Http => (ends > deadline).then_some(deadline),
        }
    }
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Direct), Just(Level::Codec), Just(Level::Http)]
}

// ---------------------------------------------------------------------------------------
// The scripted server
// ---------------------------------------------------------------------------------------

/// A transport failure the script made, on exchange `exchange`.
#[derive(Debug)]
struct Scripted {
    exchange: usize,
    kind: Kind,
    source: Box<dyn StdError + Send + Sync>,
}

impl Scripted {
    fn new(exchange: usize, kind: Kind) -> Self {
        use std::io::{Error, ErrorKind};
        let source: Box<dyn StdError + Send + Sync> = match kind {
            Kind::Connect => Box::new(Error::new(ErrorKind::ConnectionRefused, "refused")),
            Kind::Timeout => Box::new(tower::timeout::error::Elapsed::new()),
            Kind::Reset => Box::new(Error::new(ErrorKind::ConnectionReset, "reset")),
            Kind::Other => Box::new(Error::other("boom")),
        };
        Self {
            exchange,
            kind,
            source,
        }
    }
}

impl fmt::Display for Scripted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scripted {:?} on exchange {}", self.kind, self.exchange)
    }
}

impl StdError for Scripted {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// One exchange as the server saw it: when it began (ms since the call) and the ids sent.
type Sent = (u64, Vec<i64>);

/// The script and what the server received.
struct Server {
    steps: Vec<Step>,
    /// Whether a batch's answers come in the reverse order of its calls.
    reverse: bool,
    sent: Mutex<Vec<Sent>>,
    start: Instant,
}

impl Server {
    fn new(steps: Vec<Step>, reverse: bool) -> Arc<Self> {
        Arc::new(Self {
            steps,
            reverse,
            sent: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }

    /// Records an exchange (when the inner service is called) and gives its step.
    /// The order the server answers a batch's calls in.
    fn order(&self, ids: &[i64]) -> Vec<i64> {
        let mut ids = ids.to_vec();
        if self.reverse {
            ids.reverse();
        }
        ids
    }

    fn exchange(&self, ids: Vec<i64>) -> (usize, Step) {
        let mut sent = self.sent.lock().unwrap();
        let i = sent.len();
        let at = self.start.elapsed();
        assert_eq!(at.subsec_nanos() % 1_000_000, 0, "whole ms: {at:?}");
        sent.push((at.as_millis() as u64, ids));
        (i, self.steps.get(i).cloned().unwrap_or_else(default_step))
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

/// A batch item's key: its position, from 1, in its params (a call's id is its key).
fn key(req: &Request) -> i64 {
    req.params().and_then(|p| p[0].as_i64()).expect("a key")
}

fn id_num(id: &Id) -> i64 {
    match id {
        Id::Number(n) => *n,
        other => panic!("ids are numbers here: {other:?}"),
    }
}

fn item_answer(exchange: &Exchange, id: i64) -> Answer {
    match exchange {
        Exchange::Items(items) => items[(id - 1) as usize],
        Exchange::Refuse(code) => Answer::Code(*code),
        Exchange::Fail(_) => unreachable!(),
    }
}

/// An error object on exchange `i`: its message names `i`.
fn error_json(code: i64, i: usize, data: Data) -> Value {
    let mut error = json!({"code": code, "message": format!("exchange {i}")});
    if let Some(data) = data.json() {
        error["data"] = data;
    }
    error
}

/// The JSON of an answer on exchange `i`: a result naming `i`, or an error object.
fn answer_json(id: i64, step: &Step, i: usize) -> Value {
    match item_answer(&step.exchange, id) {
        Answer::Ok => json!({"jsonrpc": "2.0", "id": id, "result": i}),
        Answer::Code(c) => {
            json!({"jsonrpc": "2.0", "id": id, "error": error_json(c, i, step.data(id))})
        }
    }
}

fn refusal_json(code: i64, i: usize, data: Data) -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": error_json(code, i, data)})
}

fn answer_response(id: i64, step: &Step, i: usize) -> Response {
    match item_answer(&step.exchange, id) {
        Answer::Ok => Response::success(id, json!(i)),
        Answer::Code(c) => {
            let mut error = ErrorObject::new(c, format!("exchange {i}"));
            if let Some(data) = step.data(id).json() {
                error = error.with_data(data);
            }
            Response::failure(id, error)
        }
    }
}

/// The step's `Retry-After` as the codec records it in an answer's extensions.
fn record_retry_after(extensions: &mut http::Extensions, step: &Step) {
    if let Some(hint) = step
        .retry_after
        .and_then(|value| RetryAfter::parse(value, SystemTime::now()))
    {
        extensions.insert(hint);
    }
}

async fn pause(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The inner service for single calls, not the codec.
fn direct_single(
    server: Arc<Server>,
) -> impl tower::Service<Request, Response = Response, Error = BoxError, Future: Send> + Clone + Send
{
    tower::service_fn(move |req: Request| {
        let id = id_num(req.id().expect("a call"));
        let (i, step) = server.exchange(vec![id]);
        async move {
            pause(step.ms).await;
            match step.exchange {
                Exchange::Fail(kind) => Err(Box::new(Scripted::new(i, kind)) as BoxError),
                _ => {
                    let mut resp = answer_response(id, &step, i);
                    record_retry_after(resp.extensions_mut(), &step);
                    Ok(resp)
                }
            }
        }
    })
}

/// The inner service for batches, not the codec.
fn direct_batch(
    server: Arc<Server>,
) -> impl tower::Service<BatchRequest, Response = BatchResponse, Error = BoxError, Future: Send>
+ Clone
+ Send {
    tower::service_fn(move |batch: BatchRequest| {
        let keys: Vec<i64> = batch.requests().iter().map(key).collect();
        let ids: Vec<i64> = batch.ids().map(id_num).collect();
        let (i, step) = server.exchange(keys);
        let order = server.order(&ids);
        async move {
            pause(step.ms).await;
            let mut resp = match step.exchange {
                Exchange::Fail(kind) => return Err(Box::new(Scripted::new(i, kind)) as BoxError),
                Exchange::Refuse(code) => {
                    let expected: Vec<Id> = ids.iter().map(|&id| Id::Number(id)).collect();
                    BatchResponse::from_value(refusal_json(code, i, step.refusal_data()), &expected)
                        .expect("a whole-batch refusal")
                }
                _ => BatchResponse::new(
                    order
                        .iter()
                        .map(|&id| answer_response(id, &step, i))
                        .collect(),
                ),
            };
            record_retry_after(resp.extensions_mut(), &step);
            Ok(resp)
        }
    })
}

/// A `Full` body's bytes, now (it has them all).
fn body_now(body: Full<Bytes>) -> Bytes {
    let mut collect = std::pin::pin!(body.collect());
    match collect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(collected)) => collected.to_bytes(),
        _ => unreachable!("a Full body is ready"),
    }
}

/// The scripted server over HTTP: a single call or a batch in, JSON out, 200 always.
fn http_server(
    server: Arc<Server>,
) -> impl tower::Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = Scripted,
    Future: Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let body: Value = serde_json::from_slice(&body_now(req.into_body())).expect("JSON");
        let (batch, keys, ids): (bool, Vec<i64>, Vec<i64>) = match &body {
            Value::Array(items) => (
                true,
                items
                    .iter()
                    .map(|r| r["params"][0].as_i64().unwrap())
                    .collect(),
                items.iter().filter_map(|r| r.get("id")?.as_i64()).collect(),
            ),
            single => {
                let id = single["id"].as_i64().unwrap();
                (false, vec![id], vec![id])
            }
        };
        let (i, step) = server.exchange(keys);
        let order = server.order(&ids);
        async move {
            pause(step.ms).await;
            let answer = match step.exchange {
                Exchange::Fail(kind) => return Err(Scripted::new(i, kind)),
                Exchange::Refuse(code) => refusal_json(code, i, step.refusal_data()),
                // Nothing to answer: an empty body, as the specification has it.
                _ if ids.is_empty() => Value::Null,
                _ if batch => {
                    Value::Array(order.iter().map(|&id| answer_json(id, &step, i)).collect())
                }
                _ => answer_json(ids[0], &step, i),
            };
            let mut resp = http::Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json");
            if let Some(value) = step.retry_after {
                resp = resp.header(http::header::RETRY_AFTER, value);
            }
            Ok(resp
                .body(Full::new(match answer {
                    Value::Null => Bytes::new(),
                    answer => Bytes::from(serde_json::to_vec(&answer).unwrap()),
                }))
                .unwrap())
        }
    })
}

// ---------------------------------------------------------------------------------------
// What the caller sees
// ---------------------------------------------------------------------------------------

/// A failure as the caller sees it: its kind, and the exchange that made it (`None` for
/// the codec's own timeout at the deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failure {
    kind: Kind,
    exchange: Option<usize>,
}

fn failure(err: &(dyn StdError + 'static)) -> Failure {
    let chain = || std::iter::successors(Some(err), |&e| e.source());
    if let Some(s) = chain().find_map(|e| e.downcast_ref::<Scripted>()) {
        return Failure {
            kind: s.kind,
            exchange: Some(s.exchange),
        };
    }
    let cut = chain().any(|e| {
        e.is::<tower::timeout::error::Elapsed>()
            || e.downcast_ref::<tower_jsonrpc_retry::codec::Error>()
                .is_some_and(|c| c.is_timeout())
    });
    assert!(cut, "an error the script did not make: {err:?}");
    Failure {
        kind: Kind::Timeout,
        exchange: None,
    }
}

/// An answer as the caller sees it, with the exchange that gave it.
fn seen_answer(resp: &Response) -> (Answer, usize) {
    match resp.payload() {
        Ok(result) => (Answer::Ok, result.as_u64().expect("the exchange") as usize),
        Err(e) => {
            let i = e
                .message()
                .strip_prefix("exchange ")
                .and_then(|i| i.parse().ok())
                .expect("the exchange");
            (Answer::Code(e.code()), i)
        }
    }
}

type SingleSeen = Result<(Answer, usize), Failure>;

/// A batch's answer: each item's id, answer and exchange, in order, and the batch error.
type BatchAnswer = (Vec<(i64, Answer, usize)>, Option<i64>);
type BatchSeen = Result<BatchAnswer, Failure>;

fn seen_batch(resp: &BatchResponse) -> BatchAnswer {
    let items = resp
        .items()
        .iter()
        .map(|r| {
            let (answer, i) = seen_answer(r);
            (id_num(r.id()), answer, i)
        })
        .collect();
    (items, resp.batch_error().map(ErrorObject::code))
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(f)
}

fn http_request<T: serde::Serialize>(message: &T) -> http::Request<Full<Bytes>> {
    http::Request::post("http://rpc.test/")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(message).unwrap())))
        .unwrap()
}

fn codec_layer() -> JsonRpcCodecLayer {
    JsonRpcCodecLayer::new(http::Uri::from_static("http://rpc.test/"))
}

/// What a run gives: what the caller saw, what the server received, the time it took (ms).
struct Run<T> {
    seen: T,
    sent: Vec<Sent>,
    elapsed: u64,
}

fn ms_of(d: Duration) -> u64 {
    assert_eq!(d.subsec_nanos() % 1_000_000, 0, "whole ms: {d:?}");
    d.as_millis() as u64
}

/// How a call's retries ended, as the `on_give_up` hook hears it: the retries made, and
/// why there was no further one.
type Ended = (u32, GiveUpReason);

/// A single call through the layer at `level`, with what the `on_give_up` hook heard (on
/// the layer's default and on the request's own strategy alike: the default's must hear
/// nothing when the request has its own).
fn call_single(
    level: Level,
    plan: &Plan,
    method: &str,
    by_method: bool,
    steps: Vec<Step>,
) -> (Run<SingleSeen>, Vec<Ended>) {
    let heard: Arc<Mutex<Vec<Ended>>> = Arc::default();
    let hear = |strategy: RetryStrategy| {
        let heard = Arc::clone(&heard);
        strategy.on_give_up(move |e: &GiveUpEvent<'_>| {
            heard.lock().unwrap().push((e.retries(), e.reason()));
        })
    };
    let run = run(async {
        let server = Server::new(steps, false);
        let mut request = Request::new(method.to_owned(), json!([1, 2])).with_id(1);
        let (default, own) = plan.placed_for(method, by_method, hear);
        let layer = JsonRpcRetryLayer::new(default.clone());
        if let Some(own) = own.clone() {
            request.extensions_mut().insert(own);
        }
        let start = Instant::now();
        let seen = match level {
            Level::Direct => {
                let svc = layer.layer(direct_single(server.clone()));
                match svc.oneshot(request).await {
                    Ok(resp) => Ok(seen_answer(&resp)),
                    Err(e) => Err(failure(&*e)),
                }
            }
            Level::Codec => {
                let svc = ServiceBuilder::new()
                    .layer(layer)
                    .layer(codec_layer())
                    .service(http_server(server.clone()));
                match svc.oneshot(request).await {
                    Ok(resp) => Ok(seen_answer(&resp)),
                    Err(e) => Err(failure(&e)),
                }
            }
            Level::Http => {
                let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(default)
                    .layer(http_server(server.clone()));
                let mut request = http_request(&request);
                if let Some(own) = own {
                    request.extensions_mut().insert(own);
                }
                match svc.oneshot(request).await {
                    Ok(resp) => {
                        assert_eq!(resp.status(), 200);
                        let body = body_now(resp.into_body());
                        Ok(seen_answer(&Response::from_slice(&body).expect("JSON-RPC")))
                    }
                    Err(e) => Err(failure(&*e)),
                }
            }
        };
        Run {
            seen,
            sent: server.sent(),
            elapsed: ms_of(start.elapsed()),
        }
    });
    let heard = heard.lock().unwrap().clone();
    (run, heard)
}

fn call_batch(
    level: Level,
    plan: &Plan,
    methods: &[(&str, bool)],
    steps: Vec<Step>,
    reverse: bool,
    by_method: bool,
) -> Run<BatchSeen> {
    run(async {
        let server = Server::new(steps, reverse);
        let mut batch: BatchRequest = methods
            .iter()
            .enumerate()
            .map(|(j, &(m, call))| {
                let key = j as i64 + 1;
                let request = Request::new(m.to_string(), json!([key]));
                if call { request.with_id(key) } else { request }
            })
            .collect();
        let expected: Vec<Id> = batch.ids().cloned().collect();
        let (default, own) = plan.placed(by_method);
        let layer = JsonRpcRetryLayer::new(default.clone());
        if let Some(own) = own.clone() {
            batch.extensions_mut().insert(own);
        }
        let start = Instant::now();
        let seen = match level {
            Level::Direct => {
                let svc = layer.layer(direct_batch(server.clone()));
                match svc.oneshot(batch).await {
                    Ok(resp) => Ok(seen_batch(&resp)),
                    Err(e) => Err(failure(&*e)),
                }
            }
            Level::Codec => {
                let svc = ServiceBuilder::new()
                    .layer(layer)
                    .layer(codec_layer())
                    .service(http_server(server.clone()));
                match svc.oneshot(batch).await {
                    Ok(resp) => Ok(seen_batch(&resp)),
                    Err(e) => Err(failure(&e)),
                }
            }
            Level::Http => {
                let svc = JsonRpcRetryLayer::http::<Full<Bytes>>(default)
                    .layer(http_server(server.clone()));
                let mut request = http_request(&batch);
                if let Some(own) = own {
                    request.extensions_mut().insert(own);
                }
                match svc.oneshot(request).await {
                    Ok(resp) => {
                        assert_eq!(resp.status(), 200);
                        let body = body_now(resp.into_body());
                        let resp = BatchResponse::from_slice(&body, &expected).expect("JSON-RPC");
                        // The HTTP answer is one exchange's body as it came, or the items
                        // gathered into one array: its batch error is not compared.
                        Ok((seen_batch(&resp).0, None))
                    }
                    Err(e) => Err(failure(&*e)),
                }
            }
        };
        Run {
            seen,
            sent: server.sent(),
            elapsed: ms_of(start.elapsed()),
        }
    })
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// An attempt's outcome in the model: the step's, unless the codec cuts it at the
/// deadline (a timeout of its own, `None` for its exchange); and when it ends.
fn attempt(
    level: Level,
    plan: &Plan,
    t: u64,
    step: &Step,
    i: usize,
) -> (Option<Kind>, Option<usize>, u64) {
    match plan
        .max_elapsed_ms
        .and_then(|deadline| level.cut(deadline, t + step.ms))
    {
        Some(cut) => (Some(Kind::Timeout), None, cut.max(t)),
        None => match step.exchange {
            Exchange::Fail(kind) => (Some(kind), Some(i), t + step.ms),
            _ => (None, Some(i), t + step.ms),
        },
    }
}

/// The documented semantics for a single call: a success ends the call; a result a
/// rule matches is retried while the backoff has a delay and the wait (raised to the
/// answer's hint, the larger of its `Retry-After` and its error's `data`, up to the
/// ceiling) ends before the deadline; then the last error response is `Ok`, the last
/// transport error `Err`. A transport failure (and an attempt the codec cuts at the
/// deadline) carries no hint.
///
/// And how the retries ended (`GiveUpReason`'s docs, `RetryStrategy::non_idempotent`):
/// nothing for a success, or for a strategy that can never retry (no code, no class);
/// for a failure no rule retries, `Deadline` if it is a timeout at or past the deadline,
/// else `NotIdempotent` if a rule would retry it but the method is non-idempotent and
/// the failure is no connect failure, else `NotRetryable`; for one a rule retries, the
/// first limit in the order they are checked: the deadline already come, the backoff
/// out of delays, a wait that would not end before the deadline, the budget.
fn model_single(
    level: Level,
    plan: &Plan,
    method: &str,
    script: &[Step],
) -> (Run<SingleSeen>, Option<Ended>) {
    let watched = !(plan.codes.is_empty() && plan.classes.is_empty());
    let reached = |t: u64| plan.max_elapsed_ms.is_some_and(|deadline| t >= deadline);
    let mut t = 0;
    let mut sent = Vec::new();
    let mut retries = 0;
    loop {
        let i = sent.len();
        let step = script.get(i).cloned().unwrap_or_else(default_step);
        sent.push((t, vec![1]));
        let (failed, exchange, end) = attempt(level, plan, t, &step, i);
        t = end;
        let (seen, retryable, held_back, hint) = match failed {
            Some(kind) => (
                Err(Failure { kind, exchange }),
                plan.retries_failure(plan.is_non_idempotent(method), kind),
                plan.retries_failure(false, kind),
                None,
            ),
            None => {
                let answer = item_answer(&step.exchange, 1);
                let hint = step.header_ns().max(step.data(1).hint_ns());
                let any_method = matches!(answer, Answer::Code(c) if plan.codes.contains(&c));
                (
                    Ok((answer, i)),
                    plan.retries_answer(method, answer),
                    any_method,
                    hint,
                )
            }
        };
        let delay = plan.delay(hint);
        let retries_made = u32::try_from(retries).unwrap();
        let ended = if !retryable {
            let reason = if failed == Some(Kind::Timeout) && reached(t) {
                GiveUpReason::Deadline
            } else if held_back {
                GiveUpReason::NotIdempotent
            } else {
                GiveUpReason::NotRetryable
            };
            let success = matches!(seen, Ok((Answer::Ok, _)));
            Some((!success).then_some((retries_made, reason)))
        } else if reached(t) {
            Some(Some((retries_made, GiveUpReason::Deadline)))
        } else if retries == plan.retries {
            Some(Some((retries_made, GiveUpReason::Exhausted)))
        } else if !plan.wait_fits(t, delay) {
            Some(Some((retries_made, GiveUpReason::Deadline)))
        } else if plan.budget == Some(retries) {
            Some(Some((retries_made, GiveUpReason::Budget)))
        } else {
            None
        };
        if let Some(ended) = ended {
            let run = Run {
                seen,
                sent,
                elapsed: t,
            };
            return (run, ended.filter(|_| watched));
        }
        t += delay;
        retries += 1;
    }
}

/// The documented semantics for a batch: calls whose latest answer a rule matches are
/// sent again (alone); a transport failure re-sends what was sent; a whole-batch refusal
/// also re-sends the notifications that went with it (unless non-idempotent; a batch of
/// notifications only is retried by the refusal, unless one is non-idempotent); at the
/// end every call has its latest answer, as `Ok` even when the last re-send failed in
/// transport after a partial retry. The wait is raised to the exchange's `Retry-After`
/// and the largest `data` hint among the calls being retried (the refusal's, for a batch
/// of notifications only refused as a whole), up to the ceiling (lib.rs "`Retry-After`,
/// deadlines and budgets"; `RetryStrategy::retry_after_ceiling`).
fn model_batch(
    level: Level,
    plan: &Plan,
    items: &[(&str, bool)],
    script: &[Step],
) -> Run<BatchSeen> {
    let method = |key: i64| items[(key - 1) as usize].0;
    let is_call = |key: i64| items[(key - 1) as usize].1;
    let mut pending: Vec<i64> = (1..=items.len() as i64).collect();
    let mut answers: BTreeMap<i64, (Answer, usize)> = BTreeMap::new();
    // What the answer reports as the whole batch's refusal: the latest exchange's, when
    // it refused every call, or when the one before was such a refusal too (a re-send
    // of some calls refused, the others answered, is none); never once an exchange that
    // was not refused carried a notification, which the server then ran.
    let mut batch_error = None;
    let mut delivered = false;
    let mut gathered = false;
    let mut t = 0;
    let mut sent = Vec::new();
    let mut retries = 0;
    let answer = |answers: &BTreeMap<i64, (Answer, usize)>, refusal: Option<i64>| {
        let items = answers.iter().map(|(&id, &(a, i))| (id, a, i)).collect();
        Ok((items, refusal))
    };
    loop {
        let i = sent.len();
        let step = script.get(i).cloned().unwrap_or_else(default_step);
        sent.push((t, pending.clone()));
        let (failed, exchange, end) = attempt(level, plan, t, &step, i);
        t = end;
        let gives_up = |delay| !(retries < plan.max_retries() && plan.wait_fits(t, delay));
        let any_write = pending.iter().any(|&k| plan.is_non_idempotent(method(k)));
        let delay = match failed {
            Some(kind) => {
                let delay = plan.delay(None);
                if gives_up(delay) || !plan.retries_failure(any_write, kind) {
                    let seen = if gathered {
                        answer(&answers, batch_error)
                    } else {
                        Err(Failure { kind, exchange })
                    };
                    return Run {
                        seen,
                        sent,
                        elapsed: t,
                    };
                }
                delay
            }
            None => {
                let refusal = match step.exchange {
                    Exchange::Refuse(code) => Some(code),
                    _ => None,
                };
                let every_call_sent = (1..=items.len() as i64)
                    .filter(|&k| is_call(k))
                    .all(|k| pending.contains(&k));
                batch_error =
                    refusal.filter(|_| !delivered && (every_call_sent || batch_error.is_some()));
                for &id in pending.iter().filter(|&&k| is_call(k)) {
                    answers.insert(id, (item_answer(&step.exchange, id), i));
                }
                let calls_again = pending
                    .iter()
                    .any(|&k| is_call(k) && plan.retries_answer(method(k), answers[&k].0));
                let (retried, data_hint) = match refusal {
                    // Notifications only, refused as a whole: the refusal decides, and
                    // its hint counts.
                    Some(code) if !pending.iter().any(|&k| is_call(k)) => (
                        !any_write && plan.codes.contains(&code),
                        step.refusal_data().hint_ns(),
                    ),
                    // Refused as a whole, no call going again: the notifications that
                    // may go again are retried by the refusal, as if alone.
                    Some(code)
                        if !calls_again
                            && pending
                                .iter()
                                .any(|&k| !is_call(k) && !plan.is_non_idempotent(method(k))) =>
                    {
                        (plan.codes.contains(&code), step.refusal_data().hint_ns())
                    }
                    // The largest hint among the calls being retried.
                    _ => (
                        calls_again,
                        pending
                            .iter()
                            .filter(|&&k| {
                                is_call(k) && plan.retries_answer(method(k), answers[&k].0)
                            })
                            .filter_map(|&k| step.data(k).hint_ns())
                            .max(),
                    ),
                };
                let delay = plan.delay(step.header_ns().max(data_hint));
                if gives_up(delay) || !retried {
                    return Run {
                        seen: answer(&answers, batch_error),
                        sent,
                        elapsed: t,
                    };
                }
                delivered |= refusal.is_none() && pending.iter().any(|&k| !is_call(k));
                pending.retain(|&k| {
                    if is_call(k) {
                        plan.retries_answer(method(k), answers[&k].0)
                    } else {
                        refusal.is_some() && !plan.is_non_idempotent(method(k))
                    }
                });
                gathered = true;
                delay
            }
        };
        t += delay;
        retries += 1;
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Property 1, checked on its own: the bounds any run keeps.
fn check_bounds(
    level: Level,
    plan: &Plan,
    sent: &[Sent],
    elapsed: u64,
) -> Result<(), TestCaseError> {
    prop_assert!(!sent.is_empty(), "at least one attempt");
    prop_assert!(
        sent.len() <= 1 + plan.max_retries(),
        "{} attempts for {} retries (budget {:?})",
        sent.len(),
        plan.retries,
        plan.budget
    );
    if let Some(deadline) = plan.max_elapsed_ms {
        // Every retry starts before the deadline.
        for (at, _) in &sent[1..] {
            prop_assert!(
                *at < deadline,
                "a retry started at {at} ms, deadline {deadline} ms"
            );
        }
        // Cut at the deadline, or a millisecond after it over another service.
        let bound = level.cut(deadline, u64::MAX).unwrap_or(deadline);
        prop_assert!(
            elapsed <= bound,
            "{elapsed} ms past a {deadline} ms deadline"
        );
    }
    Ok(())
}

/// Property 1 for a non-idempotent method: sent again only after a connect failure.
fn check_non_idempotent_single(
    plan: &Plan,
    method: &str,
    script: &[Step],
    sent: &[Sent],
) -> Result<(), TestCaseError> {
    if plan.is_non_idempotent(method) {
        for (i, step) in script.iter().enumerate().take(sent.len() - 1) {
            prop_assert_eq!(
                &step.exchange,
                &Exchange::Fail(Kind::Connect),
                "attempt {} of a non-idempotent call was retried",
                i
            );
        }
    }
    Ok(())
}

/// Property 3, checked on its own against the server's record.
fn check_batch(
    level: Level,
    plan: &Plan,
    items: &[(&str, bool)],
    script: &[Step],
    run: &Run<BatchSeen>,
) -> Result<(), TestCaseError> {
    let method = |key: i64| items[(key - 1) as usize].0;
    let is_call = |key: i64| items[(key - 1) as usize].1;
    let all: Vec<i64> = (1..=items.len() as i64).collect();
    let calls: Vec<i64> = all.iter().copied().filter(|&k| is_call(k)).collect();
    let step = |i: usize| script.get(i).cloned().unwrap_or_else(default_step);
    prop_assert_eq!(&run.sent[0].1, &all, "the first attempt sends everything");
    // The latest answer the server gave each call (over the whole run).
    let mut latest: BTreeMap<i64, (Answer, usize)> = BTreeMap::new();
    for (i, (_, keys)) in run.sent.iter().enumerate() {
        let exchange = step(i).exchange;
        if let Some((_, next)) = run.sent.get(i + 1) {
            match &exchange {
                Exchange::Fail(kind) => {
                    prop_assert_eq!(next, keys, "a transport failure re-sends what was sent");
                    if keys.iter().any(|&k| plan.is_non_idempotent(method(k))) {
                        prop_assert_eq!(*kind, Kind::Connect, "a write re-sent after {:?}", kind);
                    }
                }
                answered => {
                    for &k in next {
                        prop_assert!(keys.contains(&k), "item {} re-sent, but it was not sent", k);
                        prop_assert!(
                            is_call(k) || matches!(answered, Exchange::Refuse(_)),
                            "notification {} re-sent, but the batch was not refused",
                            k
                        );
                        prop_assert!(
                            !(plan.is_non_idempotent(method(k))),
                            "write {} re-sent after the server saw it",
                            k
                        );
                        if is_call(k) {
                            let answer = item_answer(answered, k);
                            prop_assert!(
                                answer != Answer::Ok,
                                "call {} re-sent after a success",
                                k
                            );
                            prop_assert!(
                                plan.retries_answer(method(k), answer),
                                "call {} ({}) re-sent after {:?}, which no rule retries",
                                k,
                                method(k),
                                answer
                            );
                        }
                    }
                }
            }
        }
        // An exchange the codec cut short at the deadline gave no answer.
        let cut = plan
            .max_elapsed_ms
            .is_some_and(|deadline| level.cut(deadline, run.sent[i].0 + step(i).ms).is_some());
        if !matches!(exchange, Exchange::Fail(_)) && !cut {
            for &k in keys.iter().filter(|&&k| is_call(k)) {
                latest.insert(k, (item_answer(&exchange, k), i));
            }
        }
    }
    // Every call answered once, with the latest answer the server gave it; in call
    // order over the codec, which puts them so (a service that is not the codec gives
    // its own order, which answers keep).
    if let Ok((answers, _)) = &run.seen {
        let mut ids: Vec<i64> = answers.iter().map(|(id, _, _)| *id).collect();
        if level == Level::Direct {
            ids.sort_unstable();
        }
        prop_assert_eq!(&ids, &calls, "one item per call, in call order");
        for (id, answer, i) in answers {
            let answered = (*answer, *i);
            prop_assert_eq!(Some(&answered), latest.get(id), "call {}'s answer", id);
        }
    }
    Ok(())
}

fn single_script() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(single_step(), 0..7)
}

fn batch_script() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(batch_step(), 0..7)
}

/// A batch's items: each a method, and whether it is a call (else a notification).
fn batch_items() -> impl Strategy<Value = Vec<(&'static str, bool)>> {
    prop::collection::vec((method(), prop::bool::weighted(0.75)), 1..=MAX_CALLS)
}

/// 64 cases, or `PROPTEST_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Properties 1 and 2 for a single call, at each level.
    #[test]
    fn single_call_follows_the_model(
        level in level(),
        plan in plan(),
        method in method(),
        by_method in any::<bool>(),
        script in single_script(),
    ) {
        let (got, heard) = call_single(level, &plan, method, by_method, script.clone());
        check_bounds(level, &plan, &got.sent, got.elapsed)?;
        check_non_idempotent_single(&plan, method, &script, &got.sent)?;
        let (want, ended) = model_single(level, &plan, method, &script);
        prop_assert_eq!(&got.sent, &want.sent, "attempts and their start times (ms)");
        prop_assert_eq!(&got.seen, &want.seen, "the outcome");
        prop_assert_eq!(got.elapsed, want.elapsed, "the time taken (ms)");
        prop_assert_eq!(heard.as_slice(), ended.as_slice(), "how the retries ended");
    }

    /// Properties 1, 2 and 3 for a batch, at each level.
    #[test]
    fn batch_follows_the_model(
        level in level(),
        plan in plan(),
        items in batch_items(),
        script in batch_script(),
        reverse in any::<bool>(),
        by_method in any::<bool>(),
    ) {
        let mut got = call_batch(level, &plan, &items, script.clone(), reverse, by_method);
        check_bounds(level, &plan, &got.sent, got.elapsed)?;
        check_batch(level, &plan, &items, &script, &got)?;
        if let Ok((items, _)) = &mut got.seen {
            // Keyed by id (the model's order).
            items.sort_unstable_by_key(|(id, _, _)| *id);
        }
        let mut want = model_batch(level, &plan, &items, &script);
        if level == Level::Http {
            // Not compared at this level (see `call_batch`).
            if let Ok((_, refusal)) = &mut want.seen {
                *refusal = None;
            }
        }
        prop_assert_eq!(&got.sent, &want.sent, "exchanges, their start times (ms) and ids");
        prop_assert_eq!(&got.seen, &want.seen, "the outcome");
        prop_assert_eq!(got.elapsed, want.elapsed, "the time taken (ms)");
    }
}
