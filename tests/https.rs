//! The typed client over HTTPS (`rustls` feature): a TLS front on 127.0.0.1, with a
//! self-signed certificate, in front of `FlakyServer`.
#![cfg(feature = "rustls")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tower_jsonrpc_retry::backoff::PeriodicBackoff;
use tower_jsonrpc_retry::client::tls_config;
use tower_jsonrpc_retry::retry::error_chain;
use tower_jsonrpc_retry::test_util::{FlakyServer, Step};
use tower_jsonrpc_retry::{Client, RetryStrategy};

/// Terminates TLS on 127.0.0.1 for `server` with a certificate for that address; returns
/// the front's `https` URI, the roots that trust it, and a count of the connections it
/// accepted.
async fn tls_front(server: &FlakyServer) -> (http::Uri, rustls::RootCertStore, Arc<AtomicUsize>) {
    tls_front_offering(server, &[]).await
}

/// [`tls_front`] choosing among the client's ALPN protocols the first of `alpn` it
/// offers (none: no ALPN, HTTP/1.1). `FlakyServer` behind it tells HTTP/2 by its preface.
async fn tls_front_offering(
    server: &FlakyServer,
    alpn: &[&[u8]],
) -> (http::Uri, rustls::RootCertStore, Arc<AtomicUsize>) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = issued.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(issued.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    let backend = server.addr();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // HTTP/2 frames pass one write at a time (Nagle's algorithm would hold
                // a later one for the peer's delayed acknowledgement).
                let _ = stream.set_nodelay(true);
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(stream).await,
                    TcpStream::connect(backend).await,
                ) else {
                    return;
                };
                let _ = plain.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    (
        format!("https://{front}/").parse().unwrap(),
        roots,
        accepted,
    )
}

#[tokio::test(start_paused = true)]
async fn a_call_and_its_retry_go_over_tls() {
    let server = FlakyServer::start().await.unwrap();
    let (uri, roots, _) = tls_front(&server).await;
    server.script("sum", [Step::error(2001)]);
    let strategy =
        RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(100))).codes([2001]);
    // A configuration naming ALPN protocols is taken too (they are cleared).
    let mut tls = tls_config(roots).unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = Client::builder(uri).retry(strategy).build_https_with(tls);
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    assert_eq!(server.calls("sum"), 2, "error 2001, then the answer");
}

#[tokio::test(start_paused = true)]
async fn an_untrusted_certificate_is_refused_and_nothing_reaches_the_server() {
    let server = FlakyServer::start().await.unwrap();
    let (uri, _, accepted) = tls_front(&server).await;
    // Mozilla's roots do not trust a self-signed certificate; the refusal is final, not
    // a connect failure to retry.
    let client = Client::builder(uri)
        .retry(RetryStrategy::transient())
        .build_https()
        .unwrap();
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let chain: Vec<String> =
        std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .map(ToString::to_string)
        .collect();
    assert!(
        chain.iter().any(|m| m.contains("certificate")),
        "{chain:#?}"
    );
    let transport = err.transport().unwrap();
    assert!(!transport.is_connect(), "{err:?}");
    assert_eq!(
        transport.to_string(),
        "HTTP request failed: TLS handshake failed"
    );
    assert_eq!(server.http_requests(), 0);
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "one handshake, not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn the_https_client_speaks_plain_http_too() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(server.uri())
        .retry(RetryStrategy::none())
        .build_https()
        .unwrap();
    let sum: i64 = client.call("sum", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
}

#[tokio::test(start_paused = true)]
async fn the_https_client_refuses_other_schemes_at_once() {
    let server = FlakyServer::start().await.unwrap();
    let client = Client::builder(format!("ws://{}/", server.addr()).parse().unwrap())
        .retry(
            RetryStrategy::new(PeriodicBackoff::new(3, Duration::from_secs(1)))
                .retry_on(tower_jsonrpc_retry::ErrorClass::Connect),
        )
        .build_https()
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no backoff waited");
    assert!(!err.transport().unwrap().is_connect());
    assert_eq!(
        err.transport().unwrap().to_string(),
        "HTTP request failed: unsupported URI scheme"
    );
    let refused = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .find_map(|e| e.downcast_ref::<tower_jsonrpc_retry::client::UnsupportedScheme>())
    .expect("the refusal is in the chain");
    assert_eq!(refused.scheme(), Some("ws"));
    assert_eq!(
        refused.to_string(),
        "the URI's scheme is `ws`, and this client speaks `http` and `https` only"
    );
    assert_eq!(server.connections(), 0, "nothing reached the server");
}

/// A TLS handshake rustls refused carried no request: no class retries it (it fails the
/// same way every time), but a rule on its type does, for a non-idempotent method too,
/// as for any connect failure.
#[tokio::test(start_paused = true)]
async fn a_refused_handshake_is_sent_again_for_a_write_when_a_rule_on_its_type_retries_it() {
    let server = FlakyServer::start().await.unwrap();
    let (uri, _roots, accepted) = tls_front(&server).await; // not among webpki's roots
    let strategy = RetryStrategy::new(PeriodicBackoff::new(2, Duration::from_millis(10)))
        .retry_on_error::<rustls::Error>()
        .non_idempotent(["send"]);
    let client = Client::builder(uri).retry(strategy).build_https().unwrap();
    assert!(client.call::<i64>("sum", (1, 2)).await.is_err());
    let read = accepted.swap(0, Ordering::SeqCst);
    assert!(client.call::<i64>("send", (1, 2)).await.is_err());
    let write = accepted.load(Ordering::SeqCst);
    assert_eq!(server.http_requests(), 0);
    assert_eq!((read, write), (3, 3));
}

/// `http2` offers HTTP/2 with ALPN: taken where the server takes it, HTTP/1.1 where it
/// offers none; with prior knowledge, a server that does not take `h2` fails the call.
#[cfg(feature = "http2")]
#[tokio::test(start_paused = true)]
async fn http2_is_offered_over_tls_and_spoken_where_the_server_takes_it() {
    use http::Version;
    for (alpn, version) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Version::HTTP_2),
        (&[b"http/1.1".as_slice()][..], Version::HTTP_11),
        (&[][..], Version::HTTP_11),
    ] {
        let server = FlakyServer::start().await.unwrap();
        let (uri, roots, _) = tls_front_offering(&server, alpn).await;
        let client = Client::builder(uri)
            .http2()
            .build_https_with(tls_config(roots).unwrap());
        let sums = [
            client.call::<i64>("sum", (1, 2)),
            client.call("sum", (2, 2)),
        ];
        let [a, b] = sums;
        assert_eq!((a.await.unwrap(), b.await.unwrap()), (3, 4));
        assert_eq!(server.versions(), [version; 2], "{alpn:?}");
    }

    // Without `http2`, the client offers nothing and speaks HTTP/1.1.
    let server = FlakyServer::start().await.unwrap();
    let (uri, roots, _) = tls_front_offering(&server, &[b"h2", b"http/1.1"]).await;
    let client = Client::builder(uri).build_https_with(tls_config(roots).unwrap());
    assert_eq!(client.call::<i64>("sum", (1, 2)).await.unwrap(), 3);
    assert_eq!(server.versions(), [Version::HTTP_11]);

    // Prior knowledge offers `h2` alone: a server that takes only HTTP/1.1 refuses the
    // handshake (no protocol in common), a failure retrying does not mend, so
    // `transient()` does not retry it; nothing reaches the server.
    let server = FlakyServer::start().await.unwrap();
    let (uri, roots, accepted) = tls_front_offering(&server, &[b"http/1.1"]).await;
    let client = Client::builder(uri)
        .http2_prior_knowledge()
        .build_https_with(tls_config(roots).unwrap());
    let err = client.call::<i64>("sum", (1, 2)).await.unwrap_err();
    let chain: Vec<String> = error_chain(&err).map(ToString::to_string).collect();
    assert!(
        chain.iter().any(|e| e.contains("NoApplicationProtocol")),
        "{chain:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not retried");
    assert_eq!(server.http_requests(), 0);
}
