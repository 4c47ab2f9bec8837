//! TLS for probes: a rustls client config from a module's `tls_config` whose certificate
//! verifier *records* the chain the server presented — so certificate dates are known even when
//! the certificate is expired, untrusted or for another name (blackbox_exporter reports nothing
//! then; its users ask for it) — and the `probe_ssl_*` / `probe_tls_version_info` metrics.
//!
//! `probe_ssl_last_chain_expiry_timestamp_seconds` is blackbox_exporter's "earliest expiry of the
//! verified chain": Go's verified chain ends at the trust anchor, so when the anchor comes from
//! `ca_file` its date is included. Without verification (`insecure_skip_verify`) Go has no
//! verified chain and reports the zero time, −62135596800; promfed reports the same so that
//! existing alerts behave the same.

use super::record::Recorder;
use crate::config::blackbox::ProbeTlsConfig;
use crate::trust::AnchorVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use std::sync::{Arc, Mutex};
use x509_parser::prelude::*;

pub use super::record::GO_ZERO_TIME;

pub use super::record::{CertReport, ChainReport};

/// What the verifier saw, shared with the prober.
#[derive(Debug, Default)]
pub struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verified: bool,
    error: Option<String>,
}

/// A verifier that records the presented chain and defers to webpki (or to nothing with
/// `insecure_skip_verify`).
#[derive(Debug)]
struct Recording {
    inner: Option<AnchorVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: Arc<Mutex<Seen>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Ok(ServerCertVerified::assertion()),
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
            seen.verified = result.is_ok() && self.inner.is_some();
            seen.error = result.as_ref().err().map(|e| e.to_string());
        }
        result
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config for one probe, with what its verifier records.
pub struct ProbeTls {
    pub config: Arc<rustls::ClientConfig>,
    seen: Arc<Mutex<Seen>>,
    /// The `ca_file` certificates: the anchors a verified chain ends with.
    anchors: Vec<CertificateDer<'static>>,
}

/// Builds the client config of `tls` offering `alpn`.
pub fn client_config(tls: &ProbeTlsConfig, alpn: &[&[u8]]) -> Result<ProbeTls, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut anchors = Vec::new();
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read ca_file {}: {e}", ca.display()))?;
        anchors = crate::trust::parse_anchors(&pem);
        if anchors.is_empty() {
            return Err(format!("ca_file {} holds no usable certificate", ca.display()));
        }
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        match (tls.min_version.as_deref(), tls.max_version.as_deref()) {
            (Some("TLS13"), _) => vec![&rustls::version::TLS13],
            (_, Some("TLS12" | "TLS11" | "TLS10")) => vec![&rustls::version::TLS12],
            _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        };
    let inner = if tls.insecure_skip_verify {
        None
    } else {
        Some(AnchorVerifier::new(anchors.clone(), None, provider.clone()).map_err(|e| format!("TLS verifier: {e}"))?)
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Arc::new(Recording { inner, provider: provider.clone(), seen: seen.clone() });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).map_err(|e| format!("cannot read cert_file {}: {e}", cert.display()))?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
            let key_pem = std::fs::read(key).map_err(|e| format!("cannot read key_file {}: {e}", key.display()))?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|_| format!("key_file {} holds no usable private key", key.display()))?;
            builder.with_client_auth_cert(certs, key_der).map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(ProbeTls { config: Arc::new(config), seen, anchors })
}

/// The name to send as SNI and verify: `server_name`, else `host`.
pub fn server_name(tls: &ProbeTlsConfig, host: &str) -> Result<ServerName<'static>, String> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned()).map_err(|_| format!("invalid TLS server name {name:?}"))
}

impl ProbeTls {
    /// What the handshake showed; `conn` is the connection once the handshake completed.
    pub fn report(&self, conn: Option<&rustls::ClientConnection>) -> Option<ChainReport> {
        let seen = self.seen.lock().ok()?;
        if seen.chain.is_empty() {
            return None;
        }
        let presented: Vec<CertReport> = seen.chain.iter().filter_map(|c| describe(c)).collect();
        let verified_chain = if seen.verified { verified_chain(&seen.chain, &self.anchors) } else { Vec::new() };
        Some(ChainReport {
            presented,
            verified_chain,
            verify_error: seen.error.clone(),
            version: conn.and_then(|c| c.protocol_version()).map(version_name),
            cipher: conn.and_then(|c| c.negotiated_cipher_suite()).and_then(|s| s.suite().as_str()).map(str::to_owned),
        })
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}

/// Go's verified chain: leaf, then each issuer among the presented certificates and the anchors,
/// ending at a self-signed certificate or an anchor.
fn verified_chain(presented: &[CertificateDer<'static>], anchors: &[CertificateDer<'static>]) -> Vec<CertReport> {
    let pool: Vec<(CertReport, Vec<u8>, Vec<u8>, bool)> = presented
        .iter()
        .map(|c| (c, false))
        .chain(anchors.iter().map(|c| (c, true)))
        .filter_map(|(c, anchor)| {
            let (_, x) = X509Certificate::from_der(c).ok()?;
            Some((describe(c)?, x.subject().as_raw().to_vec(), x.issuer().as_raw().to_vec(), anchor))
        })
        .collect();
    let Some(first) = pool.first() else { return Vec::new() };
    let mut chain = vec![first.0.clone()];
    let (mut issuer, mut subject, mut is_anchor) = (first.2.clone(), first.1.clone(), first.3);
    for _ in 0..10 {
        if is_anchor || issuer == subject {
            break;
        }
        // Prefer an anchor with that subject (Go's chain ends at the root from the pool).
        let next = pool
            .iter()
            .filter(|(_, s, _, _)| *s == issuer)
            .max_by_key(|(_, _, _, anchor)| *anchor)
            .filter(|(r, ..)| !chain.contains(r));
        let Some((r, s, i, a)) = next else { break };
        chain.push(r.clone());
        (issuer, subject, is_anchor) = (i.clone(), s.clone(), *a);
    }
    chain
}

/// Reads one DER certificate.
pub fn describe(der: &CertificateDer<'_>) -> Option<CertReport> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(der.as_ref());
    Some(CertReport {
        subject: go_name(cert.subject()),
        issuer: go_name(cert.issuer()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
        fingerprint_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// A distinguished name as Go's `pkix.Name.String()` prints it: the standard attributes in Go's
/// fixed order, last first (`SERIALNUMBER, CN, OU, O, POSTALCODE, STREET, L, ST, C`), then the
/// others as `OID=value`, RFC 2253 escaping.
fn go_name(name: &X509Name<'_>) -> String {
    // Go's ToRDNSequence order; printed reversed.
    const ORDER: [(&str, &str); 9] = [
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let attrs: Vec<(String, String)> = name
        .iter_attributes()
        .map(|a| (a.attr_type().to_id_string(), a.as_str().map(str::to_owned).unwrap_or_default()))
        .collect();
    let mut seq: Vec<String> = attrs
        .iter()
        .filter(|(oid, _)| !ORDER.iter().any(|(o, _)| o == oid))
        .map(|(oid, v)| format!("{oid}={}", escape_dn(v)))
        .collect();
    for (oid, short) in ORDER {
        for (o, v) in &attrs {
            if o == oid {
                seq.push(format!("{short}={}", escape_dn(v)));
            }
        }
    }
    seq.reverse();
    seq.join(",")
}

fn escape_dn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Records the `probe_ssl_*` and `probe_tls_version_info` metrics of a completed handshake.
pub fn record_metrics(rec: &mut Recorder, report: &ChainReport, with_info: bool) {
    if let Some(t) = report.earliest_expiry() {
        rec.set("probe_ssl_earliest_cert_expiry", t as f64);
    }
    rec.set("probe_ssl_last_chain_expiry_timestamp_seconds", report.last_chain_expiry());
    if let Some(v) = &report.version {
        rec.set_labels("probe_tls_version_info", vec![("version", v.clone())], 1.0);
    }
    if with_info && let Some(leaf) = report.presented.first() {
        rec.set_labels(
            "probe_ssl_last_chain_info",
            vec![
                ("fingerprint_sha256", leaf.fingerprint_sha256.clone()),
                ("issuer", leaf.issuer.clone()),
                ("subject", leaf.subject.clone()),
                ("subjectalternative", leaf.dns_names.join(",")),
            ],
            1.0,
        );
    }
}

/// Beyond blackbox_exporter: a handshake that failed on the certificate still reports its
/// expiry (`probe_ssl_earliest_cert_expiry`), so "expired" and "expires soon" alerts see it.
pub fn record_failed_handshake(rec: &mut Recorder, report: &ChainReport) {
    if let Some(t) = report.earliest_expiry() {
        rec.set("probe_ssl_earliest_cert_expiry", t as f64);
    }
}

/// Connects TLS over `stream`, returning the stream and the report (also when it fails).
pub async fn handshake<S>(
    tls: &ProbeTls,
    name: ServerName<'static>,
    stream: S,
) -> (Result<tokio_rustls::client::TlsStream<S>, String>, Option<ChainReport>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match connector.connect(name, stream).await {
        Ok(s) => {
            let report = tls.report(Some(s.get_ref().1));
            (Ok(s), report)
        }
        Err(e) => (Err(e.to_string()), tls.report(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_like_go() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Org, Inc");
        params.distinguished_name.push(rcgen::DnType::CommonName, "leaf");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let r = describe(cert.der()).unwrap();
        assert_eq!(r.subject, "CN=leaf,O=Org\\, Inc");
        assert_eq!(r.subject, r.issuer);
        assert_eq!(r.dns_names, vec!["a.example".to_owned()]);
        assert_eq!(r.fingerprint_sha256.len(), 64);
    }
}
