//! The endpoint's URI: credentials in it sent as `Authorization: Basic`, and kept out of
//! `Debug` output.

use std::fmt;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Uri};

/// A URI for `Debug` output, without what often holds a credential: user information,
/// and the path and query (an API key, as in `https://mainnet.infura.io/v3/<key>`),
/// shown as `/…` unless the path is `/` alone.
pub(super) struct Redacted<'a>(pub(super) &'a Uri);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(host) = uri.host() {
            f.write_str(host)?;
        }
        if let Some(port) = uri.port_u16() {
            write!(f, ":{port}")?;
        }
        match uri.path_and_query().map(http::uri::PathAndQuery::as_str) {
            None | Some("" | "/") => f.write_str("/"),
            Some(_) => f.write_str("/…"),
        }
    }
}

/// Marks the values of headers that carry credentials as sensitive, so that `Debug`
/// output shows `Sensitive` instead (and HTTP/2 never indexes them).
pub(super) fn mark_sensitive(name: &http::HeaderName, value: &mut HeaderValue) {
    use http::header::{COOKIE, PROXY_AUTHORIZATION};
    const SECRET_WORDS: [&str; 6] = ["key", "token", "secret", "auth", "password", "session"];
    if [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(name)
        || SECRET_WORDS.iter().any(|word| name.as_str().contains(word))
    {
        value.set_sensitive(true);
    }
}

/// The URI without its user information, and that information as the value of an
/// `Authorization: Basic` header (RFC 7617), marked sensitive: hyper sends neither the
/// user information nor a header made of it, so without this a server that wants the
/// credentials written in the URI (`http://user:password@host/`) would refuse every call
/// with 401, and nothing would say why. Percent-escapes in it are decoded first (RFC 3986
/// 3.2.1: `%40` for an `@` in a password). A user without a password is sent with an
/// empty one, as curl does; an empty `@` is dropped.
pub(super) fn take_user_info(uri: Uri) -> (Uri, Option<HeaderValue>) {
    use base64::Engine as _;
    use percent_encoding::percent_decode_str;

    let Some((user_info, host)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) else {
        return (uri, None);
    };
    let Ok(host) = http::uri::Authority::try_from(host) else {
        return (uri, None);
    };
    let credentials = (!user_info.is_empty()).then(|| {
        let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
        let mut plain: Vec<u8> = percent_decode_str(user).collect();
        plain.push(b':');
        plain.extend(percent_decode_str(password));
        let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
        HeaderValue::try_from(format!("Basic {encoded}")).map(|mut value| {
            value.set_sensitive(true);
            value
        })
    });
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(host);
    match (Uri::from_parts(parts), credentials.transpose()) {
        (Ok(stripped), Ok(credentials)) => (stripped, credentials),
        // Neither can fail (the host is part of a valid URI, base64 is ASCII): the URI
        // stays as it was rather than lose what it says.
        _ => (uri, None),
    }
}
