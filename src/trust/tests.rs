//! The anchor rule with certificates made by the `openssl` command line exactly as users make
//! them (issue 13), and with rcgen for the dates and usages openssl 3.0 cannot set in one line.

use super::*;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::process::Command;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// `openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -subj /CN=x -addext
/// "subjectAltName=IP:127.0.0.1"` in `dir`; `None` (and a note) without openssl outside CI.
pub(crate) fn openssl_self_signed(dir: &Path, san: &str) -> Option<CertificateDer<'static>> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem"])
        .args(["-subj", "/CN=x", "-addext", &format!("subjectAltName={san}")])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("openssl req failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping: openssl not runnable ({e}); tests/run-all.sh installs it");
            return None;
        }
        Err(e) => panic!("openssl is required when CI is set: {e}"),
    }
    let pem = std::fs::read(dir.join("c.pem")).unwrap();
    Some(CertificateDer::from_pem_slice(&pem).unwrap().into_owned())
}

fn ip(s: &str) -> ServerName<'static> {
    ServerName::try_from(s.to_owned()).unwrap()
}

fn verify(v: &AnchorVerifier, leaf: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
    v.verify_server_cert(leaf, &[], &ip(name), &[], UnixTime::now()).map(|_| ())
}

#[test]
fn openssl_self_signed_ca_is_accepted_as_its_own_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cert) = openssl_self_signed(dir.path(), "IP:127.0.0.1") else { return };
    // Without the anchor rule it is refused (webpki says CaUsedAsEndEntity; reported as Go's
    // unknown authority): the reason this module exists.
    let plain =
        AnchorVerifier { anchors: Vec::new(), ..AnchorVerifier::new(vec![cert.clone()], None, provider()).unwrap() };
    let refused = verify(&plain, &cert, "127.0.0.1").unwrap_err();
    assert!(matches!(refused, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), "{refused:?}");

    let v = AnchorVerifier::new(vec![cert.clone()], None, provider()).unwrap();
    verify(&v, &cert, "127.0.0.1").unwrap();
    // The name still counts.
    let wrong = verify(&v, &cert, "127.0.0.2").unwrap_err();
    assert!(
        matches!(
            wrong,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{wrong:?}"
    );
    // A server_name override is what is checked.
    let dns = AnchorVerifier::new(vec![cert.clone()], Some(ip("127.0.0.2")), provider()).unwrap();
    assert!(verify(&dns, &cert, "127.0.0.1").is_err());
}

#[test]
fn another_self_signed_certificate_is_still_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let Some(trusted) = openssl_self_signed(a.path(), "IP:127.0.0.1") else { return };
    let other = openssl_self_signed(b.path(), "IP:127.0.0.1").unwrap();
    let v = AnchorVerifier::new(vec![trusted], None, provider()).unwrap();
    let e = verify(&v, &other, "127.0.0.1").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
}

fn rcgen_ca(edit: impl FnOnce(&mut rcgen::CertificateParams)) -> CertificateDer<'static> {
    let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    edit(&mut p);
    let key = rcgen::KeyPair::generate().unwrap();
    p.self_signed(&key).unwrap().der().clone()
}

#[test]
fn an_anchor_leaf_outside_its_dates_or_purpose_is_refused_with_the_reason() {
    let expired = rcgen_ca(|p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let v = AnchorVerifier::new(vec![expired.clone()], None, provider()).unwrap();
    let e = verify(&v, &expired, "127.0.0.1").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(CertificateError::Expired)), "{e:?}");

    let future = rcgen_ca(|p| {
        p.not_before = rcgen::date_time_ymd(2090, 1, 1);
        p.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    let v = AnchorVerifier::new(vec![future.clone()], None, provider()).unwrap();
    let e = verify(&v, &future, "127.0.0.1").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(CertificateError::NotValidYet)), "{e:?}");

    let client_only = rcgen_ca(|p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]);
    let v = AnchorVerifier::new(vec![client_only.clone()], None, provider()).unwrap();
    let e = verify(&v, &client_only, "127.0.0.1").unwrap_err();
    assert!(matches!(e, rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose)), "{e:?}");

    let fine = rcgen_ca(|p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth]);
    let v = AnchorVerifier::new(vec![fine.clone()], None, provider()).unwrap();
    verify(&v, &fine, "127.0.0.1").unwrap();
}

#[test]
fn a_leaf_signed_by_the_ca_goes_through_webpki_as_before() {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let v = AnchorVerifier::new(vec![ca.der().clone()], None, provider()).unwrap();
    verify(&v, leaf.der(), "127.0.0.1").unwrap();
    // The CA certificate itself, presented as a leaf, has no name for the address: refused.
    assert!(verify(&v, ca.der(), "127.0.0.1").is_err());
}
