//! The caller's request: what its buffered body holds, and why reading it failed.

use std::fmt;

use bytes::Bytes;

use crate::BoxError;
use crate::codec::{self, RawItem};
use crate::jsonrpc::members::{self, Item, Shape};
use crate::jsonrpc::{BatchRequest, DecodeError, Id, Request};

/// What a buffered request body holds.
pub(super) enum Message {
    Single(Request),
    Batch(BatchRequest),
    /// Anything else, sent once as it came.
    Other(SentOnce),
}

/// Why a body is sent once, as it came: it is not a JSON-RPC message whose answer the
/// layer can read for each call. For the `tracing` event that says so.
pub(super) enum SentOnce {
    /// Not JSON, or not a JSON-RPC request (or batch of them), as the decoder says: an
    /// id the answer could not be matched by (`1.5`, beyond `i64`) among them.
    Unread(DecodeError),
    /// JSON, but neither an object nor an array.
    NotAMessage,
    /// An array with no item.
    EmptyBatch,
    /// Two calls of a batch with one id: their answers could not be told apart.
    RepeatedId(Id),
    /// A batch whose items could not be cut out of its bytes (it was read from them,
    /// so this does not happen).
    Unsplit,
}

/// Quotes nothing of the body but an id the batch repeats (ids are in every event):
/// an invalid id or version may hold anything the caller wrote, a credential included.
impl fmt::Display for SentOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SentOnce::Unread(DecodeError::Invalid(what)) => write!(f, "invalid message: {what}"),
            SentOnce::Unread(e) => f.write_str(match e {
                DecodeError::Json(_) => "invalid JSON",
                DecodeError::Version(Some(_)) => "an unsupported \"jsonrpc\" version",
                DecodeError::Version(None) => "missing \"jsonrpc\": \"2.0\"",
                DecodeError::NotAnObject => "message is not a JSON object",
                DecodeError::InvalidId(_) => "invalid id (not a string, a 64-bit integer or null)",
                _ => "not a JSON-RPC request",
            }),
            SentOnce::NotAMessage => f.write_str("neither an object nor an array"),
            SentOnce::EmptyBatch => f.write_str("an empty batch"),
            SentOnce::RepeatedId(id) => write!(f, "two calls of the batch have the id {id}"),
            SentOnce::Unsplit => f.write_str("a batch whose items could not be cut apart"),
        }
    }
}

pub(super) fn parse(bytes: &Bytes) -> Message {
    // A batch's calls, read as they come: the first item that is not a call ends the
    // reading.
    let mut requests = Vec::new();
    let shape = members::read_each(bytes, |item| {
        requests.push(match item {
            Item::Object(members) => Request::from_members_unbuilt(&members)?,
            Item::Other => return Err(DecodeError::NotAnObject),
        });
        Ok(())
    });
    match shape {
        Ok(Shape::Array) if requests.is_empty() => Message::Other(SentOnce::EmptyBatch),
        // Each call of a batch is sent as its own bytes: its params need not be built.
        Ok(Shape::Array) => match with_own_bytes(requests, bytes).map(BatchRequest::new) {
            // Two calls with one id: their answers cannot be told apart, so the batch
            // goes once, as it came, and its answer back the same way.
            Some(batch) => match codec::repeated_id(&batch) {
                Some(id) => Message::Other(SentOnce::RepeatedId(id)),
                None => Message::Batch(batch),
            },
            None => Message::Other(SentOnce::Unsplit),
        },
        // A single call is sent as the caller's bytes: its params need not be built.
        Ok(Shape::Object(members)) => match Request::from_members_unbuilt(&members) {
            Ok(request) => Message::Single(request),
            Err(e) => Message::Other(SentOnce::Unread(e)),
        },
        Ok(Shape::Other) => Message::Other(SentOnce::NotAMessage),
        Err(e) => Message::Other(SentOnce::Unread(e)),
    }
}

/// Gives each request of a batch its own bytes as the caller sent them ([`RawItem`]), so
/// every attempt sends them unchanged, whichever items it re-sends. `None` if the bytes
/// do not split into as many items (they always do when the batch was read from them).
fn with_own_bytes(mut requests: Vec<Request>, bytes: &Bytes) -> Option<Vec<Request>> {
    let items = codec::array_items(bytes)?;
    if items.len() != requests.len() {
        return None;
    }
    for (request, own) in requests.iter_mut().zip(items) {
        request.extensions_mut().insert(RawItem(own));
    }
    Some(requests)
}

/// The first byte of a request body that is not JSON's whitespace, once a frame has
/// held one.
#[derive(Default)]
pub(super) struct FirstByte(std::sync::OnceLock<u8>);

impl FirstByte {
    pub(super) fn note(&self, chunk: &[u8]) {
        if self.0.get().is_none() {
            if let Some(&byte) = chunk.iter().find(|&&b| !crate::jsonrpc::is_whitespace(b)) {
                let _ = self.0.set(byte);
            }
        }
    }

    /// Whether the body so far may be a JSON-RPC message: nothing yet, or an object or
    /// an array after JSON's whitespace.
    pub(super) fn may_be_json_rpc(&self) -> bool {
        self.0
            .get()
            .is_none_or(|first| matches!(first, b'{' | b'['))
    }
}

/// A request body over the layer's limit, said so (`Limited` says only "length limit
/// exceeded", as for a response); its `LengthLimitError` is the source. Any other error
/// reading the body is the body's own.
pub(super) fn request_too_large(err: BoxError, limit: usize) -> BoxError {
    #[derive(Debug)]
    struct RequestTooLarge {
        limit: usize,
        source: BoxError,
    }
    impl fmt::Display for RequestTooLarge {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "request body larger than the limit of {} bytes",
                self.limit
            )
        }
    }
    impl std::error::Error for RequestTooLarge {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.source)
        }
    }
    if err.is::<http_body_util::LengthLimitError>() {
        Box::new(RequestTooLarge { limit, source: err })
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_so_far_may_be_json_rpc_when_it_opens_an_object_or_an_array() {
        let first = |parts: &[&str]| {
            let first = FirstByte::default();
            for part in parts {
                first.note(part.as_bytes());
            }
            first.may_be_json_rpc()
        };
        assert!(first(&[]));
        assert!(first(&["  ", "\n{"]));
        assert!(first(&["["]));
        assert!(!first(&[" ", "PUT /coffee"]));
        assert!(!first(&["\"x\""]));
        assert!(first(&["{", "PUT"]), "the first byte decides");
        // A form feed is no JSON whitespace: the body cannot be a JSON-RPC message.
        assert!(!first(&["\x0c{"]));
    }
}
