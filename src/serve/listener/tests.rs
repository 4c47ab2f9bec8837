use std::time::Duration;

use tokio::net::TcpStream;

use super::*;
use crate::serve::test_support::{
    CertDir, HttpConn, Pem, Pki, client_config, eventually, peer_cert, start, test_router, tls_connect,
    write_atomically,
};
use crate::serve::tls::{TlsSettings, TlsVersion, install_crypto_provider};

/// A PKI, files holding the server certificate `promfed-a` (returned as the third element), and a
/// reloader serving it.
fn tls_setup() -> (Pki, CertDir, Pem, Arc<TlsReloader>) {
    let pki = Pki::new("test CA");
    let cert = pki.server("promfed-a", 1);
    let dir = CertDir::new(&cert, &pki.ca_pem());
    let reloader = TlsReloader::load(dir.settings()).unwrap();
    (pki, dir, cert, reloader)
}

#[tokio::test]
async fn https_with_trusted_ca_over_h2() {
    install_crypto_provider();
    let (pki, _dir, _cert, reloader) = tls_setup();
    let server = start(Some(reloader), test_router(), ServeOptions::default()).await;

    let ca = reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let resp = client.get(format!("https://127.0.0.1:{}/", server.addr.port())).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(resp.text().await.unwrap(), "ok");

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_http_and_connect_info() {
    install_crypto_provider();
    let server = start(None, test_router(), ServeOptions::default()).await;
    let mut conn = HttpConn::new(TcpStream::connect(server.addr).await.unwrap());
    let local = conn.stream.local_addr().unwrap();

    let resp = conn.get("/", &[]).await.unwrap();
    assert_eq!((resp.status, resp.body.as_str()), (200, "ok"));
    let resp = conn.get("/peer", &[]).await.unwrap();
    assert_eq!(resp.body, local.to_string());

    // And through a real client.
    let body = reqwest::get(format!("http://{}/", server.addr)).await.unwrap().text().await.unwrap();
    assert_eq!(body, "ok");

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

/// Rotates the files, reloads with `reload`, and checks that the connection opened before the
/// rotation still works while a new one gets the new certificate.
async fn reload_keeps_connections(use_watcher: bool) {
    let (pki, dir, old, reloader) = tls_setup();
    let server = start(Some(reloader.clone()), test_router(), ServeOptions::default()).await;
    let config = client_config(&pki.ca_pem(), None);

    let stream = tls_connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(peer_cert(&stream), old.der());
    let mut existing = HttpConn::new(stream);
    let local = existing.stream.get_ref().0.local_addr().unwrap();
    assert_eq!(existing.get("/", &[]).await.unwrap().status, 200);

    let new = pki.server("promfed-rotated", 2);
    dir.rotate(&new);
    let stop = CancellationToken::new();
    if use_watcher {
        tokio::spawn(reloader.clone().watch(Duration::from_millis(20), stop.clone()));
        eventually("the watcher to reload", || reloader.reloads_total() == 1).await;
    } else {
        assert!(reloader.reload().unwrap());
    }

    // Same TCP connection (the server sees the same client port), still served.
    let resp = existing.get("/peer", &[]).await.unwrap();
    assert_eq!((resp.status, resp.body), (200, local.to_string()));
    assert_eq!(peer_cert(&existing.stream), old.der());

    let fresh = tls_connect(server.addr, config).await.unwrap();
    assert_eq!(peer_cert(&fresh), new.der());
    assert_eq!(HttpConn::new(fresh).get("/", &[]).await.unwrap().status, 200);

    stop.cancel();
    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn reload_applies_to_new_connections_without_dropping_existing() {
    reload_keeps_connections(false).await;
}

#[tokio::test]
async fn watcher_reload_applies_to_new_connections_without_dropping_existing() {
    reload_keeps_connections(true).await;
}

#[tokio::test]
async fn failed_reload_keeps_serving_the_old_certificate() {
    let (pki, dir, old, reloader) = tls_setup();
    let server = start(Some(reloader.clone()), test_router(), ServeOptions::default()).await;

    let new = pki.server("promfed-rotated", 2);
    write_atomically(&dir.path("cert.pem"), &new.cert); // key left as the old one: mismatch
    assert!(matches!(reloader.reload(), Err(crate::serve::TlsError::KeyMismatch { .. })));
    write_atomically(&dir.path("key.pem"), "-----BEGIN PRIVATE KEY-----\n");
    assert!(reloader.reload().is_err());
    assert_eq!(reloader.reload_failures_total(), 2);

    let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), None)).await.unwrap();
    assert_eq!(peer_cert(&stream), old.der());
    assert_eq!(HttpConn::new(stream).get("/", &[]).await.unwrap().status, 200);

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new("test CA");
    let dir = CertDir::new(&pki.server("promfed-a", 1), &pki.ca_pem());
    let reloader = TlsReloader::load(dir.mtls_settings()).unwrap();
    let server = start(Some(reloader.clone()), test_router(), ServeOptions::default()).await;

    // No client certificate: with TLS 1.3 the client may believe the handshake done; the server's
    // alert then surfaces on the first read.
    let refused = async {
        let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), None)).await?;
        HttpConn::new(stream).get("/", &[]).await
    };
    assert!(refused.await.is_err());
    eventually("the failure to be counted", || reloader.handshake_failures_total() == 1).await;

    // A certificate from another CA is refused too.
    let stranger = Pki::new("other CA").client("mallory");
    let refused = async {
        let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), Some(&stranger))).await?;
        HttpConn::new(stream).get("/", &[]).await
    };
    assert!(refused.await.is_err());
    eventually("the failure to be counted", || reloader.handshake_failures_total() == 2).await;

    let client = pki.client("prometheus");
    let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), Some(&client))).await.unwrap();
    let resp = HttpConn::new(stream).get("/", &[]).await.unwrap();
    assert_eq!((resp.status, resp.body.as_str()), (200, "ok"));

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn min_version_tls13_refuses_tls12_clients() {
    let pki = Pki::new("test CA");
    let dir = CertDir::new(&pki.server("promfed-a", 1), &pki.ca_pem());
    let settings = TlsSettings { min_version: Some(TlsVersion::Tls13), ..dir.settings() };
    let server = start(Some(TlsReloader::load(settings).unwrap()), test_router(), ServeOptions::default()).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::pem::PemObject::from_pem_slice(pki.ca_pem().as_bytes()).unwrap()).unwrap();
    let tls12_only =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    assert!(tls_connect(server.addr, Arc::new(tls12_only)).await.is_err());
    assert!(tls_connect(server.addr, client_config(&pki.ca_pem(), None)).await.is_ok());

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn stalled_handshake_times_out_and_the_loop_goes_on() {
    let (pki, _dir, _cert, reloader) = tls_setup();
    let opts = ServeOptions { tls_handshake_timeout: Duration::from_millis(100), ..ServeOptions::default() };
    let server = start(Some(reloader.clone()), test_router(), opts).await;

    let _silent = TcpStream::connect(server.addr).await.unwrap();
    eventually("the timeout to be counted", || reloader.handshake_failures_total() == 1).await;
    let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), None)).await.unwrap();
    assert_eq!(HttpConn::new(stream).get("/", &[]).await.unwrap().status, 200);

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    let (pki, _dir, _cert, reloader) = tls_setup();
    let server = start(Some(reloader), test_router(), ServeOptions::default()).await;

    let stream = tls_connect(server.addr, client_config(&pki.ca_pem(), None)).await.unwrap();
    let mut slow = HttpConn::new(stream);
    slow.send("/slow", &[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // the handler is sleeping now
    server.shutdown.cancel();

    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "connections after shutdown must be refused");

    let resp = slow.recv().await.unwrap();
    assert_eq!((resp.status, resp.body.as_str()), (200, "slow"));
    assert!(resp.head.contains("connection: close"), "{}", resp.head);
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once drained")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn grace_period_bounds_the_drain() {
    let app = test_router().route("/forever", axum::routing::get(std::future::pending::<&'static str>));
    let opts = ServeOptions { grace_period: Duration::from_millis(200), ..ServeOptions::default() };
    let server = start(None, app, opts).await;
    let mut conn = HttpConn::new(TcpStream::connect(server.addr).await.unwrap());
    conn.send("/forever", &[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = std::time::Instant::now();
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.task).await.unwrap().unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(conn.recv().await.is_err(), "the stuck connection is dropped");
}

#[tokio::test]
async fn connection_limit_makes_the_next_client_wait() {
    let opts = ServeOptions { max_connections: 1, ..ServeOptions::default() };
    let server = start(None, test_router(), opts).await;

    let mut first = HttpConn::new(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(first.get("/", &[]).await.unwrap().status, 200);

    // The kernel completes the TCP handshake (backlog), but nobody accepts it yet.
    let mut second = HttpConn::new(TcpStream::connect(server.addr).await.unwrap());
    second.send("/", &[]).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.recv()).await;
    assert!(waited.is_err(), "second connection served while the first is open");

    drop(first);
    let resp = tokio::time::timeout(Duration::from_secs(5), second.recv())
        .await
        .expect("second connection served once the first closed")
        .unwrap();
    assert_eq!(resp.status, 200);

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}
