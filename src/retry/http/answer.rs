//! What the caller gets back: the server's answer as it came, an answer the layer makes
//! (a batch gathered from several exchanges, a bare status), or the error.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED,
    RETRY_AFTER, TRAILER, TRANSFER_ENCODING,
};
use http::{HeaderValue, StatusCode};
use http_body_util::Full;

use super::future::Failure;
use crate::GaveUp;
use crate::codec::{self, GatheredHead, LatestHint, RawAnswer, RetriedInPart};
use crate::jsonrpc::{BatchResponse, Response};

/// A delay as `Retry-After` delay-seconds, rounded up: a hint read from an HTTP-date
/// is a fractional delay, and a caller told a whole second less would come back before
/// the time the server asked for.
pub(super) fn retry_after_header(delay: Duration) -> HeaderValue {
    let secs = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0));
    HeaderValue::from(secs)
}

/// An answer made by the layer: a status, the server's `Retry-After` (in whole seconds,
/// rounded up) if any, and a body.
fn answer(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
) -> http::Response<Full<Bytes>> {
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Some(delay) = retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, retry_after_header(delay));
    }
    resp
}

/// Whether a batch's answers are those of a batch retried in part, which hold each
/// call's last word: they are answers (200) whatever status the exchange they came from
/// was answered under, since a caller that refuses a non-2xx batch answer as a whole, as
/// jsonrpsee does, would lose the calls that succeeded.
fn retried_in_part(extensions: &http::Extensions) -> bool {
    extensions.get::<RetriedInPart>().is_some()
}

/// Sets an answer's status. A reason phrase hyper kept from the status line it came
/// under (one other than the status's own) goes when the status changes: a server
/// before the caller would send it again, with the wrong status.
fn set_status<B>(resp: &mut http::Response<B>, status: StatusCode) {
    if resp.status() != status {
        *resp.status_mut() = status;
        resp.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
    }
}

/// The head of the last exchange, for a body gathered from several: without the headers
/// that describe its own body (framing, encoding, digests: [`codec::without_body`]) or
/// that version, place or sign it as one representation (`ETag`, `Last-Modified`,
/// `Content-Range`, `Content-Location`, RFC 9421's `Signature` and `Signature-Input`),
/// none of which holds for the gathered body; nor `Trailer`, as trailers are not carried.
fn gathered_head(head: http::response::Parts) -> http::response::Parts {
    let mut head = codec::without_body(head);
    let headers = &mut head.headers;
    for name in [
        ETAG,
        LAST_MODIFIED,
        CONTENT_RANGE,
        CONTENT_LOCATION,
        TRAILER,
    ] {
        headers.remove(name);
    }
    for name in ["signature", "signature-input"] {
        headers.remove(name);
    }
    head
}

/// Writes the server's latest word on time (`None`: it gave none) over an earlier
/// answer's head: its `Retry-After`, and a hint a service below put in its extensions,
/// which a codec above would read beside the header.
fn set_retry_after<B>(resp: &mut http::Response<B>, hint: Option<Duration>) {
    resp.extensions_mut().remove::<codec::RetryAfter>();
    let headers = resp.headers_mut();
    match hint {
        Some(delay) => headers.insert(RETRY_AFTER, retry_after_header(delay)),
        None => headers.remove(RETRY_AFTER),
    };
}

/// A batch answer gathered from several exchanges, as HTTP: the body, under the head of
/// the last exchange that answered (its version and headers, less those that describe
/// its own body); 200 when it holds answers of a batch retried in part, the last answer's
/// status otherwise (a batch sent again whole, with answers no call took from an earlier
/// exchange); and the server's latest `Retry-After`, if any.
fn json_response(extensions: &mut http::Extensions, body: Bytes) -> http::Response<Full<Bytes>> {
    let status = match extensions.get::<StatusCode>() {
        Some(status) if body.is_empty() || !retried_in_part(extensions) => *status,
        _ => StatusCode::OK,
    };
    let mut resp = match extensions.remove::<GatheredHead>() {
        Some(GatheredHead(head)) => http::Response::from_parts(gathered_head(head), ()),
        None => http::Response::new(()),
    };
    set_status(&mut resp, status);
    // The server's latest word on time: that of the head, or that of a later exchange
    // that failed as a whole.
    set_retry_after(&mut resp, extensions.get().map(codec::RetryAfter::delay));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.map(|()| Full::new(body))
}

/// A single call's answer: the server's last answer as it came.
pub(super) fn single_answer<SE>(
    mut resp: Response,
) -> Result<http::Response<Full<Bytes>>, Failure<SE>> {
    match resp.extensions_mut().remove::<RawAnswer>() {
        Some(raw) => Ok(with_gave_up(
            raw_response(raw),
            resp.extensions().get().copied(),
        )),
        // The codec keeps every answer it decodes for this layer; the response itself
        // has no result to hand on.
        None => Err(Failure::Layer("the server's answer was not kept".into())),
    }
}

/// A batch's answer. From one exchange: its answer as it came, but for its status (200
/// once the batch was retried in part) and, after a later exchange that failed as a
/// whole, its `Retry-After` (that exchange's, or else what is left of the latest one
/// before it). Gathered from several: the items made
/// into one array, each as the server's bytes, under the last answering exchange's head.
pub(super) fn batch_answer(mut resp: BatchResponse) -> http::Response<Full<Bytes>> {
    let gave_up = resp.extensions().get().copied();
    if let Some(raw) = resp.extensions_mut().remove::<RawAnswer>() {
        let mut answer = with_gave_up(raw_response(raw), gave_up);
        if retried_in_part(resp.extensions()) {
            set_status(&mut answer, StatusCode::OK);
        }
        // A later exchange that failed as a whole: the last word on time, or what is
        // left of the one before it.
        if let Some(LatestHint(hint)) = resp.extensions().get().copied() {
            set_retry_after(&mut answer, hint);
        }
        return answer;
    }
    // Answers no call took (a null id, the server could not read an item) go last, so
    // nothing the server said is dropped.
    let answers = resp.items().iter().chain(resp.unmatched());
    let body = if resp.items().is_empty() && resp.unmatched().is_empty() {
        Bytes::new()
    } else {
        codec::splice(answers.map(|r| (r, r.extensions())))
    };
    with_gave_up(json_response(resp.extensions_mut(), body), gave_up)
}

/// The server's answer as it came, its body now whole: no longer chunked, so without
/// `Transfer-Encoding`, and, where that framed it, without a `Content-Length` sent beside
/// it (which the framing overrode, and which need not be the body's length); nor with
/// `Trailer`, as trailers are not carried.
pub(super) fn raw_response(raw: RawAnswer) -> http::Response<Full<Bytes>> {
    let RawAnswer { mut head, body } = raw;
    if head.headers.remove(TRANSFER_ENCODING).is_some() {
        head.headers.remove(CONTENT_LENGTH);
    }
    head.headers.remove(TRAILER);
    http::Response::from_parts(head, Full::new(body))
}

/// The answer, with how the retries of its call ended if the retry policy gave up on it.
fn with_gave_up(
    mut resp: http::Response<Full<Bytes>>,
    gave_up: Option<GaveUp>,
) -> http::Response<Full<Bytes>> {
    if let Some(gave_up) = gave_up {
        resp.extensions_mut().insert(gave_up);
    }
    resp
}

/// The stack's error as the caller's: an answer the codec kept (a single call's bare
/// non-2xx status) comes back as it came, another status answer becomes that status
/// again, the inner service's own error comes back as it was, anything else is the
/// layer's own (for `map_err`).
pub(super) fn answer_error<SE>(
    mut err: codec::Error,
) -> Result<http::Response<Full<Bytes>>, Failure<SE>>
where
    SE: std::error::Error + Send + Sync + 'static,
{
    let gave_up = err.gave_up();
    if let Some(raw) = err.take_raw() {
        return Ok(with_gave_up(raw_response(raw), gave_up));
    }
    if let (true, Some(status)) = (err.is_status(), err.status()) {
        let answer = answer(status, err.retry_after(), Bytes::new());
        return Ok(with_gave_up(answer, gave_up));
    }
    if !err.is_transport() {
        return Err(Failure::Layer(Box::new(err)));
    }
    match err.into_source().map(|source| source.downcast::<SE>()) {
        Some(Ok(own)) => Err(Failure::Inner(*own)),
        Some(Err(other)) => Err(Failure::Layer(other)),
        None => Err(Failure::Layer("transport error without a cause".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_written_by_the_layer_is_rounded_up() {
        let secs = |d| retry_after_header(d).to_str().map(str::to_owned).ok();
        assert_eq!(secs(Duration::ZERO).as_deref(), Some("0"));
        assert_eq!(secs(Duration::from_millis(1)).as_deref(), Some("1"));
        assert_eq!(secs(Duration::from_millis(1500)).as_deref(), Some("2"));
        assert_eq!(secs(Duration::from_secs(30)).as_deref(), Some("30"));
        assert_eq!(
            secs(Duration::MAX).as_deref(),
            Some(u64::MAX.to_string().as_str())
        );
    }
}
