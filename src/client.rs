//! HTTP clients to upstreams (replicas, remote-write receivers): TLS from a Prometheus
//! `tls_config` (CA, client certificate, `server_name`, `insecure_skip_verify`) and the
//! `Authorization` header from `basic_auth` / `authorization`.

use crate::config::Credentials;
use crate::config::file::TlsConfig;
use crate::trust::AnchorVerifier;
use reqwest::header::HeaderValue;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// Building an HTTP client failed; `owner` names who it is for (`group eu`, `remote_write vm`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{owner}: cannot read {path}: {source}")]
    Read {
        owner: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{owner}: {path} holds no usable PEM {what}")]
    Pem { owner: String, path: String, what: &'static str },
    #[error("{owner}: TLS settings rejected: {source}")]
    Rustls {
        owner: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{owner}: invalid credentials header value")]
    Header { owner: String },
    #[error("{owner}: cannot build HTTP client: {source}")]
    Build {
        owner: String,
        #[source]
        source: reqwest::Error,
    },
}

/// The `Authorization` header for `auth` (marked sensitive: never logged), if any.
pub fn auth_header(owner: &str, auth: &Credentials) -> Result<Option<HeaderValue>, ClientError> {
    let value = match auth {
        Credentials::None => return Ok(None),
        Credentials::Basic { username, password } => {
            use base64::Engine;
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            format!("Basic {v}")
        }
        Credentials::Header { scheme, credentials } => format!("{scheme} {credentials}"),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| ClientError::Header { owner: owner.to_owned() })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

fn read(owner: &str, path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        owner: owner.to_owned(),
        path: path.display().to_string(),
        source,
    })
}

pub fn client_tls(owner: &str, tls: &TlsConfig) -> Result<rustls::ClientConfig, ClientError> {
    let name = owner;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut anchors = Vec::new();
    if let Some(ca) = &tls.ca_file {
        anchors = crate::trust::parse_anchors(&read(name, ca)?);
        if anchors.is_empty() {
            return Err(ClientError::Pem {
                owner: name.to_owned(),
                path: ca.display().to_string(),
                what: "certificate",
            });
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| ClientError::Rustls { owner: name.to_owned(), source })?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(NoVerify(provider.clone()))
    } else {
        let name_override = match &tls.server_name {
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| ClientError::Rustls {
                owner: name.to_owned(),
                source: rustls::Error::General(format!("invalid server_name {n:?}")),
            })?),
            None => None,
        };
        Arc::new(
            AnchorVerifier::new(anchors, name_override, provider.clone())
                .map_err(|source| ClientError::Rustls { owner: name.to_owned(), source })?,
        )
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = read(name, cert)?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
            if certs.is_empty() {
                return Err(ClientError::Pem {
                    owner: name.to_owned(),
                    path: cert.display().to_string(),
                    what: "certificate",
                });
            }
            let key_pem = read(name, key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| ClientError::Pem {
                owner: name.to_owned(),
                path: key.display().to_string(),
                what: "private key",
            })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|source| ClientError::Rustls { owner: name.to_owned(), source })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecure_skip_verify: true`: accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
