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
        // As written: a port out of range (`:85450`) is shown, not dropped.
        if let Some(port) = written_port(uri) {
            write!(f, ":{port}")?;
        }
        match uri.path_and_query().map(http::uri::PathAndQuery::as_str) {
            None | Some("" | "/") => f.write_str("/"),
            Some(_) => f.write_str("/…"),
        }
    }
}

/// The text after the host's `:` in the URI's authority, as written (`None` without
/// one); `http` reads no port from text that is not a `u16`, and an HTTP client then
/// connects to the scheme's default port.
fn written_port(uri: &Uri) -> Option<&str> {
    let authority = uri.authority()?.as_str();
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    host_and_port
        .strip_prefix(uri.host()?)?
        .strip_prefix(':')
        .filter(|port| !port.is_empty())
}

/// What in a URI's authority no call can be sent as written: a port out of range (or
/// port 0, which no server listens on and a connection to is refused), no host, or a
/// user name that `Authorization: Basic` cannot carry. Found once, when the
/// codec is made, and every call fails with it unsent: an HTTP client would connect to
/// the default port instead (hyper-util's does, with the URI's credentials), or report
/// a name it cannot resolve, or the server would read other credentials than the URI's,
/// and a retry would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthorityFlaw {
    Port(String),
    NoHost,
    /// The user name, decoded, holds a colon (written `%3A`): RFC 7617 does not allow
    /// one, as a server splits the credentials at the first colon.
    ColonInUser,
    /// The user name or the password, decoded, holds a control character (`%0A`):
    /// RFC 7617 does not allow one.
    ControlInCredentials,
}

impl AuthorityFlaw {
    /// A flaw of the credentials, which an `Authorization` header of the caller's makes
    /// moot; the others fail every call.
    pub(super) fn of_credentials(&self) -> bool {
        matches!(self, Self::ColonInUser | Self::ControlInCredentials)
    }

    pub(super) fn of(uri: &Uri) -> Option<Self> {
        match uri.host() {
            None => None,
            Some("") => Some(Self::NoHost),
            Some(_) => written_port(uri)
                .filter(|port| !matches!(port.parse::<u16>(), Ok(1..)))
                .map(|port| Self::Port(port.to_owned())),
        }
    }
}

impl fmt::Display for AuthorityFlaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Port(port) => write!(
                f,
                "the URI's port `{port}` is not a port (a number from 1 to 65535)"
            ),
            Self::NoHost => f.write_str("the URI has no host"),
            Self::ColonInUser => f.write_str(
                "the URI's user name holds a colon (`%3A`), which `Authorization: Basic` \
                 cannot carry: the server would read what follows it as the password",
            ),
            Self::ControlInCredentials => f.write_str(
                "the URI's user name or password holds a control character (such as \
                 `%0A`), which `Authorization: Basic` cannot carry",
            ),
        }
    }
}

impl std::error::Error for AuthorityFlaw {}

/// Marks the values of headers that carry credentials as sensitive, so that `Debug`
/// output shows `Sensitive` instead (and HTTP/2 never indexes them).
pub(super) fn mark_sensitive(name: &http::HeaderName, value: &mut HeaderValue) {
    use http::header::{COOKIE, PROXY_AUTHORIZATION};
    const SECRET_WORDS: [&str; 10] = [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "session",
        "credential",
        "jwt",
        "assertion",
        "dpop",
    ];
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
/// empty one, as curl does; an empty `@` is dropped (`:@`, an empty user with an empty
/// password, is sent). A user name that decodes to one with a colon is no header but
/// [`AuthorityFlaw::ColonInUser`], and credentials with a control character
/// [`AuthorityFlaw::ControlInCredentials`].
pub(super) fn take_user_info(uri: Uri) -> (Uri, Result<Option<HeaderValue>, AuthorityFlaw>) {
    use base64::Engine as _;
    use percent_encoding::percent_decode_str;

    let Some((user_info, host)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) else {
        return (uri, Ok(None));
    };
    let Ok(host) = http::uri::Authority::try_from(host) else {
        return (uri, Ok(None));
    };
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let mut plain: Vec<u8> = percent_decode_str(user).collect();
    let secret: Vec<u8> = percent_decode_str(password).collect();
    let flaw = if plain.contains(&b':') {
        Some(AuthorityFlaw::ColonInUser)
    } else if plain.iter().chain(&secret).any(u8::is_ascii_control) {
        Some(AuthorityFlaw::ControlInCredentials)
    } else {
        None
    };
    let credentials = (!user_info.is_empty() && flaw.is_none()).then(|| {
        plain.push(b':');
        plain.extend(secret);
        let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
        HeaderValue::try_from(format!("Basic {encoded}")).map(|mut value| {
            value.set_sensitive(true);
            value
        })
    });
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(host);
    match (Uri::from_parts(parts), credentials.transpose()) {
        (Ok(stripped), Ok(credentials)) => (stripped, flaw.map_or(Ok(credentials), Err)),
        // Neither can fail (the host is part of a valid URI, base64 is ASCII): the URI
        // stays as it was rather than lose what it says.
        _ => (uri, Ok(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flaw(uri: &str) -> Option<AuthorityFlaw> {
        AuthorityFlaw::of(&uri.parse().expect("a URI `http` accepts"))
    }

    #[test]
    fn a_port_out_of_range_or_no_host_is_a_flaw() {
        for (uri, port) in [
            ("http://127.0.0.1:85450/", "85450"),
            ("http://127.0.0.1:65536/", "65536"),
            ("http://127.0.0.1:-1/", "-1"),
            ("http://[::1]:99999/", "99999"),
            ("http://127.0.0.1:0/", "0"),
            ("http://127.0.0.1:00/", "00"),
            ("http://alice:s3cret@127.0.0.1:85450/", "85450"),
        ] {
            assert_eq!(flaw(uri), Some(AuthorityFlaw::Port(port.into())), "{uri}");
        }
        assert_eq!(flaw("http://:8545/"), Some(AuthorityFlaw::NoHost));
        let message = flaw("http://127.0.0.1:85450/").map(|f| f.to_string());
        assert_eq!(
            message.as_deref(),
            Some("the URI's port `85450` is not a port (a number from 1 to 65535)")
        );
    }

    #[test]
    fn a_uri_an_http_client_can_connect_to_has_no_flaw() {
        for uri in [
            "http://127.0.0.1:8545/",
            "http://127.0.0.1:65535/",
            "http://127.0.0.1/",
            "http://127.0.0.1:/",
            "http://[::1]:8545/",
            "http://[::1]/",
            "http://node.example/rpc?key=a:1",
            "http://u:p@node.example/",
            "/rpc",
        ] {
            assert_eq!(flaw(uri), None, "{uri}");
        }
    }

    #[test]
    fn debug_output_shows_the_port_as_written() {
        let uri: Uri = "http://127.0.0.1:85450/"
            .parse()
            .expect("a URI `http` accepts");
        assert_eq!(format!("{:?}", Redacted(&uri)), "http://127.0.0.1:85450/");
        let uri: Uri = "http://[::1]:8545/rpc"
            .parse()
            .expect("a URI `http` accepts");
        assert_eq!(format!("{:?}", Redacted(&uri)), "http://[::1]:8545/…");
    }
}
