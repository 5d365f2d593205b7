//! Headers of one call's own, carried in its extensions.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers for the HTTP requests of one call (or one batch), carried in its extensions:
/// the codec adds them to the headers it sends with every call, replacing any of the
/// same name (one given to [`JsonRpcCodecLayer::header`](super::JsonRpcCodecLayer::header),
/// the `Authorization` made of the URI's credentials), on every attempt a retry layer
/// above sends.
///
/// For what changes from call to call: a trace context (`traceparent`), a tenant, a
/// token of the caller's. As with `header`, `Content-Length` and `Transfer-Encoding`
/// are left out (the HTTP client frames the body the codec makes), and credentials are
/// marked sensitive, as `header` marks them, so the HTTP request's `Debug` does not show
/// them. This type's own `Debug` shows the headers' names only: a credential under a
/// name no rule knows stays out of the logs too. Through
/// [`Client`](crate::Client), [`RequestBuilder::header`](crate::client::RequestBuilder::header)
/// sets them.
///
/// A batch goes in one HTTP request: its headers are those in the batch's own
/// extensions ([`BatchRequest::extensions_mut`](crate::jsonrpc::BatchRequest::extensions_mut)),
/// not in its calls'. At the HTTP level
/// ([`JsonRpcRetryLayer::http`](crate::JsonRpcRetryLayer::http)) the caller's own HTTP
/// request carries its headers, and re-sends keep them; this is not read there.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_jsonrpc_retry::codec::{JsonRpcCodecLayer, RequestHeaders};
/// use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};
/// use tower_jsonrpc_retry::jsonrpc::Request;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_jsonrpc_retry::BoxError> {
/// # let server = tower_jsonrpc_retry::test_util::FlakyServer::start().await?;
/// let http = hyper_util::client::legacy::Client::builder(
///     hyper_util::rt::TokioExecutor::new(),
/// )
/// .build_http();
/// let svc = ServiceBuilder::new()
///     .layer(JsonRpcCodecLayer::new(server.uri()))
///     .service(http);
/// let mut call = Request::new("sum", json!([1, 2])).with_id(1);
/// call.extensions_mut().insert(RequestHeaders::new().with(
///     HeaderName::from_static("traceparent"),
///     HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
/// ));
/// let resp = svc.oneshot(call).await?;
/// assert_eq!(resp.result(), Some(&json!(3)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct RequestHeaders(HeaderMap);

impl RequestHeaders {
    /// No headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::RequestHeaders;
    /// use tower_jsonrpc_retry::http::{HeaderName, HeaderValue};
    ///
    /// let own = RequestHeaders::new();
    /// assert!(own.headers().is_empty());
    /// let tenant = (HeaderName::from_static("x-tenant"), HeaderValue::from_static("acme"));
    /// assert_eq!(own.with(tenant.0, tenant.1).headers().len(), 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header, beside any of the same name given before (as `http`'s request
    /// builder adds one); together they replace the codec's values of that name.
    /// `Content-Length` and `Transfer-Encoding` are left out.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::RequestHeaders;
    /// use tower_jsonrpc_retry::http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
    ///
    /// let baggage = HeaderName::from_static("baggage");
    /// let own = RequestHeaders::new()
    ///     .with(baggage.clone(), HeaderValue::from_static("tenant=acme"))
    ///     .with(baggage.clone(), HeaderValue::from_static("region=eu"))
    ///     .with(CONTENT_LENGTH, HeaderValue::from_static("7"));
    /// assert_eq!(own.headers().get_all(&baggage).iter().count(), 2);
    /// assert!(!own.headers().contains_key(CONTENT_LENGTH));
    /// ```
    #[must_use]
    pub fn with(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.push(&name, value);
        self
    }

    /// Adds `name: value` to the headers of the call or batch these `extensions` are
    /// (the `header` of [`Client`](crate::Client)'s builders).
    pub(crate) fn add_to(extensions: &mut http::Extensions, name: HeaderName, value: HeaderValue) {
        let own = extensions.remove::<Self>().unwrap_or_default();
        extensions.insert(own.with(name, value));
    }

    /// Adds a value beside those of its name, unless it frames the body; marked
    /// sensitive when its name says a credential.
    fn push(&mut self, name: &HeaderName, mut value: HeaderValue) {
        if !super::layer::frames_body(name) {
            super::mark_sensitive(name, &mut value);
            self.0.append(name.clone(), value);
        }
    }

    /// The headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_jsonrpc_retry::codec::RequestHeaders;
    /// use tower_jsonrpc_retry::http::header::{AUTHORIZATION, HeaderValue};
    ///
    /// let token = HeaderValue::from_static("Bearer t0k3n");
    /// let own = RequestHeaders::new().with(AUTHORIZATION, token);
    /// // A credential is marked sensitive, so that no `Debug` output shows it.
    /// assert!(own.headers()[AUTHORIZATION].is_sensitive());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.0
    }

    /// Writes these headers over `headers`: each name's values replace those there.
    pub(super) fn apply(&self, headers: &mut HeaderMap) {
        for name in self.0.keys() {
            headers.remove(name);
        }
        for (name, value) in &self.0 {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// The headers' names, not their values: one may be a credential under a name no rule
/// knows.
impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestHeaders")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl From<HeaderMap> for RequestHeaders {
    /// Takes these headers, every value of each name, less `Content-Length` and
    /// `Transfer-Encoding`, credentials marked sensitive.
    fn from(headers: HeaderMap) -> Self {
        let mut own = Self(HeaderMap::with_capacity(headers.len()));
        for (name, value) in &headers {
            own.push(name, value.clone());
        }
        own
    }
}
