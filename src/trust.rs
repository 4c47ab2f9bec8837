//! Server-certificate trust for every client promfed runs (scrapes, Remote-Write, Grafana, the
//! on-call CLI, probes): webpki's path validation against the configured `ca_file`, plus one rule
//! Go's `crypto/x509` has and webpki lacks.
//!
//! `openssl req -x509 … -subj /CN=x -addext subjectAltName=IP:127.0.0.1` — the usual way to make
//! a certificate for a Prometheus web config — writes a self-signed certificate with `CA:TRUE`.
//! Given as `ca_file` for a server presenting that same certificate, Go (Prometheus,
//! blackbox_exporter, promtool) accepts it: a leaf that is itself in the root pool is its own
//! verified chain. webpki refuses it (`CaUsedAsEndEntity`). So when webpki refuses a leaf that is
//! byte-for-byte one of the configured anchors, the leaf is checked as Go checks it — validity
//! dates, the name (subject alternative names only, as Go since 1.15), and the extended key usage
//! (server authentication, when the extension is present) — and accepted if those pass. Nothing else
//! is loosened: any other certificate goes through webpki alone (issue 13).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// webpki, with Go's "the leaf is a configured anchor" rule and an optional name override
/// (`tls_config.server_name`).
#[derive(Debug)]
pub struct AnchorVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// The `ca_file` certificates (empty with the system roots: no leaf is one of those).
    anchors: Vec<CertificateDer<'static>>,
    name_override: Option<ServerName<'static>>,
}

impl AnchorVerifier {
    /// Verifies against `anchors` (the certificates of `ca_file`), or against the web PKI roots
    /// when `anchors` is empty.
    pub fn new(
        anchors: Vec<CertificateDer<'static>>,
        name_override: Option<ServerName<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        if anchors.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            let (added, _) = roots.add_parsable_certificates(anchors.iter().cloned());
            if added == 0 {
                return Err(rustls::Error::General("no usable CA certificate".into()));
            }
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(AnchorVerifier { inner, anchors, name_override })
    }
}

/// The certificates of a `ca_file` that can serve as trust anchors (empty: none can).
pub fn parse_anchors(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(|c| rustls::RootCertStore::empty().add(c.clone()).is_ok())
        .collect()
}

/// Go's checks of a leaf that is itself a trust anchor: dates, name, extended key usage.
fn check_anchor_leaf(leaf: &CertificateDer<'_>, name: &ServerName<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    use x509_parser::prelude::*;
    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|_| bad(CertificateError::BadEncoding))?;
    let now_secs = now.as_secs() as i64;
    let validity = cert.validity();
    if now_secs < validity.not_before.timestamp() {
        return Err(bad(CertificateError::NotValidYet));
    }
    if now_secs > validity.not_after.timestamp() {
        return Err(bad(CertificateError::Expired));
    }
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !(eku.value.any || eku.value.server_auth)
    {
        return Err(bad(CertificateError::InvalidPurpose));
    }
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_name(&parsed, name)
}

impl ServerCertVerifier for AnchorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.name_override.as_ref().unwrap_or(server_name);
        match self.inner.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Ok(v) => Ok(v),
            Err(_) if self.anchors.iter().any(|a| a.as_ref() == end_entity.as_ref()) => {
                // The leaf is trusted by configuration; webpki's reason (often
                // `CaUsedAsEndEntity`) gives way to Go's checks, whose own failure is reported.
                check_anchor_leaf(end_entity, name, now).map(|()| ServerCertVerified::assertion())
            }
            // A CA certificate that is not configured: Go's "signed by unknown authority".
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(o)))
                if matches!(o.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
            }
            Err(e) => Err(e),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Installs aws-lc-rs as the process-wide default rustls crypto provider.
///
/// rustls panics at first use when more than one provider is compiled in and none was chosen, so
/// `main` (and tests that use HTTP clients) call this at start-up. Calling it again, or after someone
/// else installed a provider, is harmless.
pub fn install_crypto_provider() {
    // `install_default` fails only when a provider is already installed: exactly the idempotence we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests;
