//! Answers to requests: what each must look like, and how an HTTP answer becomes a
//! JSON-RPC response or batch (or the codec's error).

use bytes::Bytes;
use http::header::CONTENT_ENCODING;
use serde_json::Value;
use serde_json::value::RawValue;

use super::raw::{array_items, value_bytes, with_id};
use super::{Error, RawAnswer, RawItem, RetryAfter, without_body};
use crate::GaveUp;
use crate::jsonrpc::members::{self, Shape, Values};
use crate::jsonrpc::{BatchResponse, DecodeError, Id, Response};

/// What the answer to a request must look like, and whether the codec keeps it.
#[derive(Debug)]
pub(super) struct Expected {
    pub(super) awaited: Awaited,
    /// Whether to keep the answer ([`keep_raw`](super::Config::keep_raw)): for a
    /// notification, its head.
    pub(super) keep_raw: bool,
    /// What to build of the answer's values: nothing when the answer is kept, unless a
    /// rule of the strategy reads results
    /// ([`RetryStrategy::retry_result_if`](crate::RetryStrategy::retry_result_if)).
    pub(super) values: Values,
}

/// The message an answer is awaited for.
#[derive(Debug)]
pub(super) enum Awaited {
    Notification,
    /// A call, with its id.
    Single(Id),
    /// A batch, with the ids of its calls.
    Batch(Vec<Id>),
}

/// Records what the HTTP exchange says beyond the body: a non-2xx status, a Retry-After,
/// and how the retries of an HTTP-level retry layer below ended.
/// Returns the hint, for a batch's items.
fn record_exchange(
    extensions: &mut http::Extensions,
    parts: &http::response::Parts,
) -> Option<RetryAfter> {
    if !parts.status.is_success() {
        extensions.insert(parts.status);
    }
    let hint = RetryAfter::of_answer(parts);
    if let Some(hint) = hint {
        extensions.insert(hint);
    }
    if let Some(gave_up) = parts.extensions.get::<GaveUp>() {
        extensions.insert(*gave_up);
    }
    hint
}

/// [`record_exchange`] for a batch's answers, on the batch and on each of its items: each
/// came with this status and hint too, a null-id error no call took included, so that a
/// retry rule on the status applies to batch items as it does to single responses, and
/// a caller told a call's error is told the answer's `Retry-After` with it.
fn record_batch_exchange(batch: &mut BatchResponse, parts: &http::response::Parts) {
    let hint = record_exchange(batch.extensions_mut(), parts);
    let failed = (!parts.status.is_success()).then_some(parts.status);
    if failed.is_some() || hint.is_some() {
        let (items, unmatched) = batch.items_and_unmatched_mut();
        for item in items.iter_mut().chain(unmatched) {
            if let Some(status) = failed {
                item.extensions_mut().insert(status);
            }
            if let Some(hint) = hint {
                item.extensions_mut().insert(hint);
            }
        }
    }
}

pub(super) fn status_error(parts: &http::response::Parts) -> Error {
    with_gave_up(Error::from_status(parts.status, retry_after(parts)), parts)
}

/// `err`, with how the retries of an HTTP-level retry layer below ended, if it gave up
/// on the answer.
fn with_gave_up(mut err: Error, parts: &http::response::Parts) -> Error {
    if let Some(gave_up) = parts.extensions.get::<GaveUp>() {
        err.set_gave_up(*gave_up);
    }
    err
}

/// The answer's `Retry-After`, as a delay.
fn retry_after(parts: &http::response::Parts) -> Option<std::time::Duration> {
    RetryAfter::of_answer(parts).map(|r| r.delay())
}

/// A non-2xx answer that is not a JSON-RPC answer to the call: a status error, with the
/// answer itself kept when the codec keeps raw answers.
fn status_answer(parts: http::response::Parts, body: Bytes, keep_raw: bool) -> Error {
    let err = status_error(&parts);
    keeping_raw(err, keep_raw, parts, body)
}

/// An answer whose body could not be read as JSON-RPC. When the codec keeps raw
/// answers and the body is content-encoded (the caller asked for gzip, say, and can read
/// it), the answer is kept with the error, to be handed back as it came.
fn decode_failure(
    e: DecodeError,
    parts: http::response::Parts,
    body: Bytes,
    keep_raw: bool,
) -> Error {
    let mut err = with_gave_up(Error::decode(e, parts.status, retry_after(&parts)), &parts);
    let coding = parts
        .headers
        .get(CONTENT_ENCODING)
        .filter(|coding| !coding.as_bytes().eq_ignore_ascii_case(b"identity"));
    let encoded = coding.is_some();
    if let Some(coding) = coding {
        // What the caller would look for first: the JSON error says only where the
        // bytes went wrong.
        err = err.with_coding(coding.clone());
    }
    keeping_raw(err, keep_raw && encoded, parts, body)
}

/// `err`, with the answer it came from kept when `keep` (for the HTTP-level layer).
fn keeping_raw(err: Error, keep: bool, head: http::response::Parts, body: Bytes) -> Error {
    if keep {
        err.with_raw(RawAnswer { head, body })
    } else {
        err
    }
}

/// An answer's JSON text: its body less a UTF-8 byte order mark before it, which RFC
/// 8259 (section 8.1) forbids a sender to add and lets a reader pass over, as the codec
/// does (a PHP server whose source file starts with one sends it first). The answer
/// kept for the HTTP-level layer keeps it.
fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

pub(super) fn decode_single(
    expected: Expected,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<Response, Error> {
    let Expected {
        awaited,
        keep_raw,
        values,
    } = expected;
    let expected_id = match awaited {
        Awaited::Single(id) => id,
        Awaited::Notification if parts.status.is_success() => {
            let mut response = Response::new(Id::Null, Ok(Value::Null));
            record_exchange(response.extensions_mut(), &parts);
            if keep_raw {
                // The answer's head as it came; its body, empty by the specification,
                // is not kept.
                response.extensions_mut().insert(RawAnswer {
                    head: without_body(parts),
                    body: Bytes::new(),
                });
            }
            return Ok(response);
        }
        Awaited::Notification => return Err(status_answer(parts, body, keep_raw)),
        Awaited::Batch(_) => return Err(status_error(&parts)),
    };
    let json = without_bom(&body);
    let decoded = if crate::jsonrpc::is_blank(json) {
        Err(DecodeError::EmptyBody)
    } else {
        Response::from_single_answer(json, values)
    };
    let mut response = match decoded {
        Ok(response) => response,
        Err(_) if !parts.status.is_success() => {
            return Err(status_answer(parts, body, keep_raw));
        }
        Err(e) => return Err(decode_failure(e, parts, body, keep_raw)),
    };
    // The specification lets a server that could not read the id answer an error with a
    // null id; anything else must be the id that was sent.
    let answers =
        response.id() == &expected_id || (response.id() == &Id::Null && response.is_error());
    if !answers && !parts.status.is_success() {
        // Not an answer to this call, under a failure status: the status is the answer.
        return Err(status_answer(parts, body, keep_raw));
    }
    if !answers {
        let found = response.id().clone();
        let mismatch = DecodeError::IdMismatch {
            expected: expected_id,
            found,
        };
        let err = Error::decode(mismatch, parts.status, retry_after(&parts));
        return Err(with_gave_up(err, &parts));
    }
    record_exchange(response.extensions_mut(), &parts);
    if keep_raw {
        response
            .extensions_mut()
            .insert(RawAnswer { head: parts, body });
    }
    Ok(response)
}

pub(super) fn decode_batch(
    expected: Expected,
    parts: http::response::Parts,
    body: Bytes,
) -> Result<BatchResponse, Error> {
    let Expected {
        awaited: Awaited::Batch(ids),
        keep_raw,
        values,
    } = expected
    else {
        return Err(status_error(&parts));
    };
    if ids.is_empty() && parts.status.is_success() {
        // Only notifications: nothing to answer, unless the server refused the batch as
        // a whole (an error with a null id, as a rate limiter answers) or some of its
        // notifications (null-id errors in an array: it could not read them), which is
        // kept for the caller as in a batch with calls; anything else in the body is
        // passed over.
        let mut batch = BatchResponse::from_answer(without_bom(&body), &ids, values)
            .ok()
            .filter(|batch| batch.batch_error().is_some() || !batch.unmatched().is_empty())
            .unwrap_or_default();
        record_batch_exchange(&mut batch, &parts);
        if keep_raw {
            batch
                .extensions_mut()
                .insert(RawAnswer { head: parts, body });
        }
        return Ok(batch);
    }
    // Only notifications, under a failure status: an error for the whole batch (a null
    // id) answers it; anything else (an empty body, `[]`, errors for single items) is no
    // JSON-RPC answer to a batch of notifications, so the status is.
    let read = BatchResponse::from_answer(without_bom(&body), &ids, values);
    if ids.is_empty()
        && !read
            .as_ref()
            .is_ok_and(|batch| batch.batch_error().is_some())
    {
        return Err(status_answer(parts, body, keep_raw));
    }
    let mut batch = match read {
        Ok(batch) => batch,
        // Under a failure status, a body that does not answer the batch (a gateway's own
        // error to some other call, say) leaves the status as the answer.
        Err(_) if !parts.status.is_success() => return Err(status_answer(parts, body, keep_raw)),
        Err(e) => return Err(decode_failure(e, parts, body, keep_raw)),
    };
    record_batch_exchange(&mut batch, &parts);
    if keep_raw {
        keep_items(&mut batch, &body);
        batch
            .extensions_mut()
            .insert(RawAnswer { head: parts, body });
    }
    Ok(batch)
}

/// Gives each item of `batch` its own bytes from the answer's `body` ([`RawItem`]), so a
/// batch answer gathered from several exchanges is still made of the server's bytes. A
/// null-id error that answers a call (by elimination, or as the error that refused the
/// whole batch, geth's for the calls it does not name) is written anew with that call's
/// id around the server's error object, as it wrote it; one that no call took keeps its
/// bytes. An answer to a call sent with a null id keeps its bytes like any other. Items
/// are read as the decoder reads them (a lone surrogate escape mended).
fn keep_items(batch: &mut BatchResponse, body: &Bytes) {
    let body = &body.slice_ref(without_bom(body));
    let Some(items) = array_items(body) else {
        if batch.batch_error().is_none() {
            // The answer to a batch's only call, unwrapped by the server: the object is
            // that call's own bytes.
            if let (Some(own), [item]) = (value_bytes(body), batch.items_mut().as_mut_slice()) {
                item.extensions_mut().insert(RawItem(own));
            }
            return;
        }
        // One error object refused the whole batch: every call carries it.
        if let Some((_, Some(error))) = id_and_error(body) {
            for item in batch.items_mut() {
                let own = with_id(&error, item.id());
                item.extensions_mut().insert(RawItem(own));
            }
        }
        return;
    };
    let position = batch.positions();
    // The null-id errors no call took by its id, in the server's order: the batch's
    // decoder gives them, in that order, to the calls left unanswered (in call order),
    // and the rest are unmatched.
    let mut orphans = Vec::new();
    // geth's refusal of the whole batch, one error under the first call's id: the calls
    // it does not name carry its error object too.
    let refusal = match items.as_slice() {
        [only] if batch.batch_error().is_some() => id_and_error(only).and_then(|(_, e)| e),
        _ => None,
    };
    for own in items {
        let Some((Some(id), error)) = id_and_error(&own) else {
            continue;
        };
        match position
            .get(&id)
            .and_then(|&i| batch.items_mut().get_mut(i))
        {
            Some(item) => {
                item.extensions_mut().insert(RawItem(own));
            }
            None => {
                if let (Id::Null, Some(error)) = (id, error) {
                    orphans.push((own, error));
                }
            }
        }
    }
    let mut orphans = orphans.into_iter();
    for item in batch.items_mut() {
        if item.extensions().get::<RawItem>().is_none() {
            if let Some(error) = orphans.next().map(|(_, e)| e).or_else(|| refusal.clone()) {
                let own = with_id(&error, item.id());
                item.extensions_mut().insert(RawItem(own));
            }
        }
    }
    for (item, (own, _)) in batch.unmatched_mut().iter_mut().zip(orphans) {
        item.extensions_mut().insert(RawItem(own));
    }
}

/// An answer's id (`None` when it has none, or one that is no JSON-RPC id) and its error
/// object as the server wrote it (a slice of `own`; a `null` error beside a result, a
/// JSON-RPC 1.0 server's success, is none); `None` when `own` is not an object. Read as
/// the decoder reads it: when `own` or its id does not read as it is, through the copy
/// with each lone surrogate escape mended, which has the same length, so that what is
/// found in the copy is at the same place in `own`.
fn id_and_error(own: &Bytes) -> Option<(Option<Id>, Option<Bytes>)> {
    let read = |bytes: &[u8]| {
        let Ok(Shape::Object(found)) = members::read(bytes) else {
            return None;
        };
        let id = found.id.map(members::id);
        let (_, error) = members::outcome(found.result, found.error);
        let at = |raw: &RawValue| {
            let start = raw
                .get()
                .as_ptr()
                .addr()
                .checked_sub(bytes.as_ptr().addr())?;
            own.get(start..start.checked_add(raw.get().len())?)
                .map(|error| own.slice_ref(error))
        };
        Some((id, error.and_then(at)))
    };
    let as_is = read(own);
    let (id, error) = match as_is {
        // Not read, or an id not read (a lone surrogate in a string id): the decoder
        // read the mended copy, if there is one.
        None | Some((Some(Err(_)), _)) => match members::mend_lone_surrogates(own) {
            Some(mended) => read(&mended)?,
            None => as_is?,
        },
        Some(read) => read,
    };
    Some((id.and_then(Result::ok), error))
}

/// The refusal of a whole batch as an answer of its own, for the gathered answer's
/// unmatched items: the answer as the server wrote it when it is one error object, and
/// that error object under a null id when it is geth's array of one error under the
/// first call's id (which a later answer of that call would otherwise repeat); without a
/// byte order mark before it, which would not be JSON inside the gathered array.
pub(crate) fn refusal_item(body: &Bytes) -> Option<Bytes> {
    let body = &body.slice_ref(without_bom(body));
    match array_items(body) {
        None => Some(body.clone()),
        Some(items) => match items.as_slice() {
            [only] => id_and_error(only)
                .and_then(|(_, error)| error)
                .map(|error| with_id(&error, &Id::Null)),
            _ => None,
        },
    }
}
