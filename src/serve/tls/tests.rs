use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::serve::test_support::{CertDir, Pki, eventually, write_atomically};

fn setup() -> (Pki, CertDir) {
    let pki = Pki::new("test CA");
    let dir = CertDir::new(&pki.server("promfed-a", 1), &pki.ca_pem());
    (pki, dir)
}

#[test]
fn load_builds_config_with_alpn() {
    let (_pki, dir) = setup();
    let reloader = TlsReloader::load(dir.settings()).unwrap();
    assert_eq!(reloader.current().alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(reloader.reloads_total(), 0);
}

#[test]
fn missing_file_is_named() {
    let (_pki, dir) = setup();
    let mut settings = dir.settings();
    settings.key_file = dir.path("nope.pem");
    let err = TlsReloader::load(settings).unwrap_err();
    assert!(matches!(err, TlsError::Read { what: "private key", .. }), "{err:?}");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

#[test]
fn cert_file_without_certificate() {
    let (pki, dir) = setup();
    // A key where the certificate should be.
    std::fs::write(dir.path("cert.pem"), pki.server("x", 2).key).unwrap();
    let err = TlsReloader::load(dir.settings()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { what: "certificate", .. }), "{err:?}");
    assert!(err.to_string().contains("cert.pem"), "{err}");
}

#[test]
fn key_file_without_key() {
    let (pki, dir) = setup();
    std::fs::write(dir.path("key.pem"), pki.ca_pem()).unwrap();
    let err = TlsReloader::load(dir.settings()).unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("no private key found in key file {}", dir.path("key.pem").display()));
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let (pki, dir) = setup();
    std::fs::write(dir.path("key.pem"), pki.server("other", 2).key).unwrap();
    let err = TlsReloader::load(dir.settings()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("key.pem") && msg.contains("cert.pem"), "{msg}");
}

#[test]
fn bad_client_ca() {
    let (_pki, dir) = setup();
    // Valid PEM framing around bytes that are not a certificate.
    std::fs::write(dir.path("ca.pem"), "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n")
        .unwrap();
    let err = TlsReloader::load(dir.mtls_settings()).unwrap_err();
    assert!(matches!(err, TlsError::BadClientCa { .. }), "{err:?}");
    assert!(err.to_string().contains("ca.pem"), "{err}");

    std::fs::write(dir.path("ca.pem"), "not pem at all\n").unwrap();
    let err = TlsReloader::load(dir.mtls_settings()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { what: "client CA", .. }), "{err:?}");
}

#[test]
fn tls_version_names() {
    assert_eq!("TLS12".parse::<TlsVersion>().unwrap(), TlsVersion::Tls12);
    assert_eq!("TLS13".parse::<TlsVersion>().unwrap(), TlsVersion::Tls13);
    let err = "TLS11".parse::<TlsVersion>().unwrap_err();
    assert!(err.to_string().contains("\"TLS11\""), "{err}");
}

#[test]
fn reload_publishes_only_on_change_and_keeps_old_config_on_error() {
    let (pki, dir) = setup();
    let reloader = TlsReloader::load(dir.settings()).unwrap();
    let first = reloader.current();

    assert!(!reloader.reload().unwrap(), "unchanged files must not publish");
    assert!(Arc::ptr_eq(&first, &reloader.current()));

    dir.rotate(&pki.server("promfed-b", 2));
    assert!(reloader.reload().unwrap());
    let second = reloader.current();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(reloader.reloads_total(), 1);

    // A key that does not match: error, previous config kept, failure counted.
    write_atomically(&dir.path("key.pem"), &pki.server("other", 3).key);
    let err = reloader.reload().unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert!(Arc::ptr_eq(&second, &reloader.current()));
    assert_eq!(reloader.reload_failures_total(), 1);
    assert_eq!(reloader.reloads_total(), 1);
}

#[tokio::test]
async fn watch_reloads_on_change_and_counts_a_bad_rotation_once() {
    let (pki, dir) = setup();
    let reloader = TlsReloader::load(dir.settings()).unwrap();
    let first = reloader.current();
    let stop = CancellationToken::new();
    let watcher = tokio::spawn(Arc::clone(&reloader).watch(Duration::from_millis(20), stop.clone()));

    dir.rotate(&pki.server("promfed-rotated", 2));
    eventually("the watcher to reload", || reloader.reloads_total() == 1).await;
    assert!(!Arc::ptr_eq(&first, &reloader.current()));

    let good = reloader.current();
    write_atomically(&dir.path("cert.pem"), "garbage\n");
    eventually("the watcher to fail", || reloader.reload_failures_total() == 1).await;
    // Several polls later the same broken files have not been retried.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(reloader.reload_failures_total(), 1);
    assert!(Arc::ptr_eq(&good, &reloader.current()));

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher).await.unwrap().unwrap();
}
