//! Reading an error's `source()` chain: the one place that knows what the errors of
//! hyper, hyper-util, tower and `std::io` mean for a retry.

use std::error::Error as StdError;
use std::io;

/// The error and every error below it, outermost first. An `io::Error` that wraps
/// another error is followed into it (its own `source()` skips the wrapped error and
/// goes on to that error's source), so hyper-util's connect timeout, an `io::Error`
/// around tokio's `Elapsed`, shows both.
///
/// A chain that comes back on itself (an error type whose `source()` is itself, or an
/// earlier error) is still finite: every error in the loop is yielded at least once,
/// then the walk stops (Brent's cycle detection, on the errors' addresses and types).
pub(crate) fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    // The error the walk is checked against, and how far the walk may go before it is
    // moved up (doubling: Brent).
    let mut mark: &'a (dyn StdError + 'static) = err;
    let (mut power, mut steps) = (1usize, 0usize);
    std::iter::from_fn(move || {
        let current = next?;
        next = below(current).filter(|&below| {
            if std::ptr::eq(below, mark) {
                return false; // the chain came back to an error already seen
            }
            steps += 1;
            if steps == power {
                (mark, power, steps) = (below, power.saturating_mul(2), 0);
            }
            true
        });
        Some(current)
    })
}

fn below<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(wrapped) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        return Some(wrapped as &(dyn StdError + 'static));
    }
    // An h2 error that is an I/O error holds it without giving it as its `source()`:
    // hyper passes such errors on as they are while a body is read (a connection that
    // broke mid-answer), where for the answer's head it makes them `io::Error`s.
    #[cfg(feature = "http2")]
    if let Some(io) = e.downcast_ref::<h2::Error>().and_then(h2::Error::get_io) {
        return Some(io as &(dyn StdError + 'static));
    }
    e.source()
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    err.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// Of class [`ErrorClass::Connect`](crate::ErrorClass::Connect): the connection could
/// not be made, so the request never left the client. A TLS failure (an untrusted
/// certificate, say) is not one, nor a URI whose scheme the client's connector does not
/// speak: each fails the same way every time (where the chain shows the connector's
/// error, [`connection_not_made`] holds for them).
pub(crate) fn is_connect(err: &(dyn StdError + 'static)) -> bool {
    !chain(err).any(fails_every_time) && connection_not_made(err)
}

/// The connection could not be made, whatever the reason (a TLS failure, an unknown
/// scheme included): nothing was written.
fn connection_not_made(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
            || matches!(
                io_kind(e),
                Some(io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable)
            )
    })
}

/// Why the connection could not be made, in a few words for a message: the words agree
/// with [`is_connect`] (`could not connect` exactly when it holds) and name the two
/// failures it leaves out. `None` when a connection was made.
pub(crate) fn connect_failure_words(err: &(dyn StdError + 'static)) -> Option<&'static str> {
    if !connection_not_made(err) {
        return None;
    }
    if chain(err).any(|e| e.is::<crate::client::UnsupportedScheme>()) {
        return Some("unsupported URI scheme");
    }
    if chain(err).any(http_connector_refused) {
        // Its own words (the scheme, or the host) follow in the chain.
        return Some("the connector refused the URI");
    }
    if chain(err).any(fails_every_time) {
        // The rest of `fails_every_time`: rustls's error.
        return Some("TLS handshake failed");
    }
    Some("could not connect")
}

/// A URI whose scheme the client's connector does not speak ([`SchemeCheck`]'s refusal,
/// or hyper-util's `HttpConnector`'s own), anywhere in `err`'s chain: the same URI fails
/// the same way on every attempt, so no rule retries it.
///
/// [`SchemeCheck`]: crate::client::SchemeCheck
pub(crate) fn is_unsupported_scheme(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| e.is::<crate::client::UnsupportedScheme>())
        || (connection_not_made(err) && chain(err).any(http_connector_refused))
}

/// hyper-util's `HttpConnector` refusing a URI before it connects: `https` (or any
/// scheme but `http`), no scheme, no host. Its error type is not public, so it is told
/// by its message, one of three the connector writes and no other error in a chain
/// below hyper-util's (`tests/client.rs` pins the one for a scheme to the hyper-util
/// this crate builds with).
fn http_connector_refused(e: &(dyn StdError + 'static)) -> bool {
    const REFUSALS: [&str; 3] = [
        "invalid URL, scheme is not http",
        "invalid URL, scheme is missing",
        "invalid URL, host is missing",
    ];
    e.source().is_none() && REFUSALS.contains(&e.to_string().as_str())
}

/// A connector's failure that no retry can mend: a URI whose scheme it does not speak,
/// or (with the `rustls` feature) a TLS failure found by rustls.
fn fails_every_time(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "rustls")]
    if e.is::<rustls::Error>() {
        return true;
    }
    e.is::<crate::client::UnsupportedScheme>() || http_connector_refused(e)
}

/// The server provably did not run the request. It never left the client: the
/// connection could not be made, hyper handed the request back unwritten (a request it
/// cancelled: "the message was never even started", as when a fresh connection closed
/// before it could be written), the codec's HTTP service failed before it took the
/// request (its readiness error), or tower's `LoadShed` refused it without calling the
/// service below. Or, with the `http2` feature, the server refused its HTTP/2 stream
/// (`REFUSED_STREAM`) before any of its answer came. The errors after which even a
/// non-idempotent call may be sent again.
///
/// Never once an answer's head has come (the codec's error has its status): the server
/// had the request then, whatever broke after it, a stream reset with `REFUSED_STREAM`
/// in the middle of the body included.
pub(crate) fn provably_not_run(err: &(dyn StdError + 'static)) -> bool {
    let answered = chain(err).any(|e| {
        e.downcast_ref::<crate::codec::Error>()
            .is_some_and(|e| e.status().is_some())
    });
    if answered {
        return false;
    }
    // A connection refused at the TLS handshake never carried the request either,
    // though no retry of the class mends it: a rule on its type may retry it.
    connection_not_made(err)
        || is_shed(err)
        || chain(err).any(|e| {
            e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_canceled)
                || refused_stream(e)
                || e.downcast_ref::<crate::codec::Error>()
                    .is_some_and(crate::codec::Error::unsent)
        })
}

/// tower's `LoadShed` refused the request without calling the service below it.
pub(crate) fn is_shed(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| e.is::<tower::load_shed::error::Overloaded>())
}

/// An HTTP/2 stream the server reset with `REFUSED_STREAM`, which says it did no
/// processing of the request (RFC 9113, 8.7). A `GOAWAY` is no such proof, though its
/// last stream id says which streams the server left alone: its error does not carry
/// that id, and hyper hands it to a request whose stream h2 has already queued to send
/// when it arrives (the connection's error, found as hyper checks the connection again
/// right after opening the stream), a stream the server may then run.
fn refused_stream(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "http2")]
    return e.downcast_ref::<h2::Error>().is_some_and(|h2| {
        h2.is_remote() && h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
    });
    #[cfg(not(feature = "http2"))]
    {
        let _ = e;
        false
    }
}

/// An HTTP/2 stream or connection ended by the protocol: a reset stream, a `GOAWAY`, or
/// a protocol error either side found. (h2's I/O errors are read as the `io::Error`s
/// they hold, by [`chain`], and h2's misuse by its caller has no reason: neither is one
/// here.)
fn h2_broke(e: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "http2")]
    return e
        .downcast_ref::<h2::Error>()
        .is_some_and(|h2| h2.reason().is_some());
    #[cfg(not(feature = "http2"))]
    {
        let _ = e;
        false
    }
}

/// A timer ran out: tower's or tokio's timeout, an I/O timeout, or hyper's own.
pub(crate) fn is_timeout(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        e.is::<tower::timeout::error::Elapsed>()
            || e.is::<tokio::time::error::Elapsed>()
            || io_kind(e) == Some(io::ErrorKind::TimedOut)
            || e.downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
    })
}

/// An established connection broke: reset, aborted, closed mid-message, its dispatch
/// task gone, or (with the `http2` feature) an HTTP/2 stream or connection ended by the
/// protocol.
pub(crate) fn is_reset(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        matches!(
            io_kind(e),
            Some(
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            )
        ) || e
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_canceled() || dispatch_gone(h))
            || h2_broke(e)
    })
}

/// hyper's error for a request its connection's task dropped when the connection ended
/// (a `GOAWAY`, a close, keep-alive pings unanswered) while the request waited there: over
/// HTTP/2, the one waiting for a free stream when the server allows no more. A broken
/// connection, but no proof the request was not sent: hyper gives it to a stream h2 may
/// have opened too. hyper names it by its message alone (`tests/http2_client.rs` pins it).
fn dispatch_gone(e: &hyper::Error) -> bool {
    e.is_user() && e.to_string() == "dispatch task is gone"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Marker;

    impl std::fmt::Display for Marker {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("marker")
        }
    }

    impl StdError for Marker {}

    #[test]
    fn the_chain_goes_into_an_io_error_that_wraps_another() {
        // `io::Error::source()` would skip `Marker` itself.
        let err = io::Error::new(io::ErrorKind::TimedOut, Marker);
        assert!(err.source().is_none());
        let found: Vec<String> = chain(&err).map(ToString::to_string).collect();
        assert_eq!(found, ["marker", "marker"]);
        assert!(chain(&err).any(|e| e.is::<Marker>()));
        assert!(is_timeout(&err), "the io::Error's own kind still counts");
    }

    /// Two errors, each the other's source.
    #[derive(Debug)]
    struct Two(bool);

    static FIRST: Two = Two(true);
    static SECOND: Two = Two(false);

    impl std::fmt::Display for Two {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(if self.0 { "first" } else { "second" })
        }
    }

    impl StdError for Two {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(if self.0 { &SECOND } else { &FIRST })
        }
    }

    #[test]
    fn a_chain_that_comes_back_on_itself_ends_having_shown_every_error() {
        let found: Vec<String> = chain(&FIRST).map(ToString::to_string).collect();
        assert_eq!(found, ["first", "second", "first"]);
        let found: Vec<String> = chain(&SECOND).map(ToString::to_string).collect();
        assert_eq!(found, ["second", "first", "second"]);
        assert!(!is_connect(&FIRST) && !is_timeout(&FIRST) && !is_reset(&FIRST));
        assert!(!provably_not_run(&FIRST));
    }
}
