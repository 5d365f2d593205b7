use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// A server's `Retry-After` hint, recorded in a response's extensions.
///
/// Read from the header in either of its forms (RFC 9110): delay-seconds, or an
/// HTTP-date, turned into a delay from the moment it is read (the codec reads it once
/// the body is in; a date in the past is a delay of zero). Anything else is ignored,
/// a date before 1970 included (httpdate reads none).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_jsonrpc_retry::codec::RetryAfter;
/// use tower_jsonrpc_retry::http;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::RETRY_AFTER, "120".parse()?);
/// assert_eq!(RetryAfter::from_headers(&headers), Some(RetryAfter::new(Duration::from_secs(120))));
///
/// headers.insert(http::header::RETRY_AFTER, "soon".parse()?);
/// assert_eq!(RetryAfter::from_headers(&headers), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(Duration);

impl RetryAfter {
    /// A hint of `delay`: for a service below the retry layer that learns the server's
    /// wait some other way (a vendor's rate-limit header, say), and for tests. Put in
    /// the extensions of an `http::Response` below the codec (or below
    /// [`JsonRpcRetryLayer::http`](crate::JsonRpcRetryLayer::http)), it is honoured as
    /// the server's own (within the strategy's ceiling), and beside a `Retry-After`
    /// header the longer of the two counts. Put in those of a
    /// [`jsonrpc::Response`](crate::jsonrpc::Response) between the retry layer and the
    /// codec, it replaces the hint the codec read from the header, which sits in the
    /// same place: keep the longer yourself to honour both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::ServiceBuilder;
    /// use tower_jsonrpc_retry::codec::RetryAfter;
    /// use tower_jsonrpc_retry::http;
    ///
    /// // Below the codec: a server that says when its window reopens in its own header.
    /// let reset = |mut resp: http::Response<String>| {
    ///     let secs = resp.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok());
    ///     if let Some(secs) = secs.and_then(|s| s.parse().ok()) {
    ///         resp.extensions_mut().insert(RetryAfter::new(Duration::from_secs(secs)));
    ///     }
    ///     resp
    /// };
    /// # let http = tower::service_fn(|_: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let http = ServiceBuilder::new().map_response(reset).service(http);
    /// # let _ = http;
    /// ```
    pub const fn new(delay: Duration) -> Self {
        Self(delay)
    }

    /// The hint of an HTTP answer: the longer of its `Retry-After` headers' and one a
    /// service below put in its extensions.
    pub(crate) fn of_answer(parts: &http::response::Parts) -> Option<Self> {
        let given = parts.extensions.get::<Self>().copied();
        Self::from_headers(&parts.headers)
            .into_iter()
            .chain(given)
            .max_by_key(Self::delay)
    }

    /// Reads the hint from response headers; `None` when absent or unreadable.
    ///
    /// A header given more than once (a proxy's and the origin's, say) gives the longest
    /// readable wait of them: the one that keeps every party that asked waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jsonrpc_retry::codec::RetryAfter;
    /// use tower_jsonrpc_retry::http::{HeaderMap, HeaderValue, header::RETRY_AFTER};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.append(RETRY_AFTER, HeaderValue::from_static("5")); // the origin's
    /// headers.append(RETRY_AFTER, HeaderValue::from_static("30")); // a proxy's
    /// let hint = RetryAfter::from_headers(&headers);
    /// assert_eq!(hint.map(|h| h.delay()), Some(Duration::from_secs(30)));
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(http::header::RETRY_AFTER).iter().peekable();
        values.peek()?;
        let now = SystemTime::now();
        values
            .filter_map(|value| Self::parse(value.to_str().ok()?, now))
            .max_by_key(Self::delay)
    }

    /// Parses a header value, with `now` as the reference for HTTP-dates.
    ///
    /// Delay-seconds too large for a `u64` saturate (a caller clamps them to its own
    /// ceiling); negative or fractional numbers and unknown forms are `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_jsonrpc_retry::codec::RetryAfter;
    ///
    /// // 2015-10-21 07:28:00 GMT.
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    /// let hint = RetryAfter::parse("Wed, 21 Oct 2015 07:28:30 GMT", now);
    /// assert_eq!(hint, Some(RetryAfter::new(Duration::from_secs(30))));
    /// assert_eq!(RetryAfter::parse("1.5", now), None);
    /// ```
    pub fn parse(value: &str, now: SystemTime) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            let secs = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(Self(Duration::from_secs(secs)));
        }
        let date = httpdate::parse_http_date(value).ok()?;
        Some(Self(date.duration_since(now).unwrap_or(Duration::ZERO)))
    }

    /// The delay the server asked for.
    ///
    /// # Examples
    ///
    /// The codec records the hint of every answer in the response's extensions:
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use std::time::Duration;
    /// # use serde_json::json;
    /// # use tower::{ServiceExt, service_fn};
    /// # use tower_jsonrpc_retry::codec::{JsonRpcCodec, RetryAfter};
    /// # use tower_jsonrpc_retry::http;
    /// # use tower_jsonrpc_retry::jsonrpc::Request;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // An error answer that says when to come back.
    /// let http = service_fn(|_: http::Request<_>| async {
    ///     let body = r#"{"jsonrpc": "2.0", "id": 1,
    ///         "error": {"code": -32005, "message": "limit exceeded"}}"#;
    ///     http::Response::builder().header("retry-after", "2").body(body.to_owned())
    /// });
    /// let codec = JsonRpcCodec::new(http, "http://127.0.0.1:8545/".parse()?);
    /// let answer = codec.oneshot(Request::new("sum", json!([1, 2])).with_id(1)).await?;
    /// let hint = answer.extensions().get::<RetryAfter>().map(RetryAfter::delay);
    /// assert_eq!(hint, Some(Duration::from_secs(2)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn delay(&self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 GMT
        let p = |v| RetryAfter::parse(v, now).map(|r| r.0);
        assert_eq!(p("0"), Some(Duration::ZERO));
        assert_eq!(p(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(
            p("999999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            p("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("-5"), None);
        assert_eq!(p("1.5"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("tomorrow"), None);
    }

    #[test]
    fn the_longest_readable_of_several_lines() {
        let hint = |lines: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static(line),
                );
            }
            RetryAfter::from_headers(&headers).map(|r| r.0)
        };
        assert_eq!(hint(&[]), None);
        assert_eq!(hint(&["soon"]), None);
        assert_eq!(hint(&["soon", "5"]), Some(Duration::from_secs(5)));
        assert_eq!(hint(&["5", "30", "2"]), Some(Duration::from_secs(30)));
        assert_eq!(hint(&["7", "-1"]), Some(Duration::from_secs(7)));
    }
}
