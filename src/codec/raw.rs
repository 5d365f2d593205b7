//! A batch's items as their own bytes: split out of an array, and spliced back into one,
//! so that an item goes on as it was written (see [`RawItem`]).

use bytes::Bytes;
use serde_json::value::RawValue;

use super::RawItem;
use crate::jsonrpc::Id;

/// A batch's items as a JSON array: an item that carries its own bytes ([`RawItem`]) is
/// written as those bytes, any other is serialized.
pub(crate) fn splice<'a, T: serde::Serialize + 'a>(
    items: impl Iterator<Item = (&'a T, &'a http::Extensions)>,
) -> Bytes {
    let mut out = Vec::with_capacity(2 + 64 * items.size_hint().0);
    out.push(b'[');
    for (i, (item, extensions)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match extensions.get::<RawItem>() {
            Some(RawItem(raw)) => out.extend_from_slice(raw),
            // Messages hold only JSON values and strings, which always serialize.
            None => serde_json::to_writer(&mut out, item).unwrap_or_default(),
        }
    }
    out.push(b']');
    Bytes::from(out)
}

/// An error answer with this id around an error object's bytes as the server wrote them.
pub(super) fn with_id(error: &[u8], id: &Id) -> Bytes {
    let mut out = Vec::with_capacity(error.len() + 48);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","error":"#);
    out.extend_from_slice(error);
    out.extend_from_slice(br#","id":"#);
    // An id is a number, a string or null, which always serialize.
    serde_json::to_writer(&mut out, id).unwrap_or_default();
    out.push(b'}');
    Bytes::from(out)
}

/// The items of a JSON array, each as its own bytes (slices of `body`, not copies);
/// `None` if `body` is not a JSON array.
pub(crate) fn array_items(body: &Bytes) -> Option<Vec<Bytes>> {
    let items = serde_json::from_slice::<Vec<&RawValue>>(body).ok()?;
    Some(
        items
            .into_iter()
            .map(|raw| body.slice_ref(raw.get().as_bytes()))
            .collect(),
    )
}

/// A JSON value's own bytes, without the whitespace around it (a slice of `body`, not a
/// copy); `None` if `body` is not JSON.
pub(crate) fn value_bytes(body: &Bytes) -> Option<Bytes> {
    let raw = serde_json::from_slice::<&RawValue>(body).ok()?;
    Some(body.slice_ref(raw.get().as_bytes()))
}
