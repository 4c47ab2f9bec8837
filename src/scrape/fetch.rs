//! One scrape of one replica: the HTTP request, the bounded body read, gzip, content-type
//! negotiation and parsing into a [`Batch`].
//!
//! Every failure is a [`ScrapeError`] with a short `reason` (a metric label) and a message that
//! names the replica and what was wrong. A body that does not parse to its end fails the whole
//! scrape: a truncated body must not look like "every series vanished".

use crate::config::{Credentials, Group};
use crate::parse::{parse_protobuf_delimited, parse_text};
use crate::series::{Batch, BatchBuilder, Identity};
use bytes::Bytes;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// What promfed asks a replica for: text first, protobuf as the fallback.
///
/// Our text parser borrows from the body, while the protobuf path decodes each `MetricFamily`
/// into owned prost structs (two `String`s per label): decoding is 2-3x slower and, at 1M series,
/// leaves ~230 MB of fragmented glibc heap resident (see docs/benchmarks.md, "Memory").
pub const ACCEPT_HEADER: &str = "text/plain;version=0.0.4;q=0.7,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.3";

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("scrape of {url} failed: cannot connect: {message}")]
    Connect { url: String, message: String },
    #[error("scrape of {url} failed: TLS: {message}")]
    Tls { url: String, message: String },
    #[error("scrape of {url} failed: timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("scrape of {url} failed: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("scrape of {url} failed: body exceeds {limit} bytes")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("scrape of {url} failed: decompressed body exceeds {limit} bytes")]
    DecompressedTooLarge { url: String, limit: u64 },
    #[error("scrape of {url} failed: cannot decompress gzip body: {source}")]
    Decompress {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scrape of {url} failed: unsupported content type {content_type:?}")]
    ContentType { url: String, content_type: String },
    #[error("scrape of {url} failed: unsupported content encoding {encoding:?}")]
    ContentEncoding { url: String, encoding: String },
    #[error("scrape of {url} failed: reading body: {message}")]
    Read { url: String, message: String },
    #[error("scrape of {url} failed: text body does not parse: {source}")]
    ParseText {
        url: String,
        #[source]
        source: crate::parse::TextError,
    },
    #[error("scrape of {url} failed: protobuf body does not parse: {source}")]
    ParseProtobuf {
        url: String,
        #[source]
        source: crate::parse::ProtobufError,
    },
}

impl ScrapeError {
    /// A short reason for the `reason` label of `promfed_scrape_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Connect { .. } => "connect",
            ScrapeError::Tls { .. } => "tls",
            ScrapeError::Timeout { .. } => "timeout",
            ScrapeError::Status { .. } => "http_status",
            ScrapeError::BodyTooLarge { .. } => "body_too_large",
            ScrapeError::DecompressedTooLarge { .. } => "decompressed_too_large",
            ScrapeError::Decompress { .. } => "decompress",
            ScrapeError::ContentType { .. } => "content_type",
            ScrapeError::ContentEncoding { .. } => "content_encoding",
            ScrapeError::Read { .. } => "read",
            ScrapeError::ParseText { .. } | ScrapeError::ParseProtobuf { .. } => "parse",
        }
    }
}

/// Building the HTTP client of a group failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("group {group}: cannot read {path}: {source}")]
    Read {
        group: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("group {group}: {path} holds no usable PEM {what}")]
    Pem { group: String, path: String, what: &'static str },
    #[error("group {group}: TLS settings rejected: {source}")]
    Rustls {
        group: String,
        #[source]
        source: rustls::Error,
    },
    #[error("group {group}: invalid credentials header value")]
    Header { group: String },
    #[error("group {group}: cannot build HTTP client: {source}")]
    Build {
        group: String,
        #[source]
        source: reqwest::Error,
    },
}

/// What a group's scrapers share: the client, the query, the identity rule and the limits.
pub struct GroupClient {
    pub group: String,
    client: reqwest::Client,
    scheme: String,
    path: String,
    query: Vec<(String, String)>,
    auth: Option<HeaderValue>,
    timeout: Duration,
    body_limit: u64,
    decompressed_limit: u64,
    pub identity: Arc<Identity>,
}

/// A successful scrape.
#[derive(Debug)]
pub struct Scraped {
    pub batch: Batch,
    /// Bytes after decompression.
    pub bytes: u64,
    /// Samples dropped for an invalid label set.
    pub rejected: u64,
}

impl GroupClient {
    /// Builds the client of `group` (TLS files are read now).
    pub fn new(group: &Group) -> Result<GroupClient, ClientError> {
        let name = group.name.clone();
        let tls = client_tls(group)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // Decompression is ours, to bound it (see `decode`).
            .no_gzip()
            .timeout(group.scrape_timeout)
            .connect_timeout(group.scrape_timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("promfed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build { group: name.clone(), source })?;
        let auth = match &group.auth {
            Credentials::None => None,
            Credentials::Basic { username, password } => {
                use base64::Engine;
                let v = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                Some(
                    HeaderValue::from_str(&format!("Basic {v}"))
                        .map_err(|_| ClientError::Header { group: name.clone() })?,
                )
            }
            Credentials::Header { scheme, credentials } => Some(
                HeaderValue::from_str(&format!("{scheme} {credentials}"))
                    .map_err(|_| ClientError::Header { group: name.clone() })?,
            ),
        };
        let mut auth = auth;
        if let Some(a) = &mut auth {
            a.set_sensitive(true);
        }
        Ok(GroupClient {
            group: name,
            client,
            scheme: group.scheme.clone(),
            path: group.path.clone(),
            query: group.selectors.iter().map(|s| ("match[]".to_owned(), s.clone())).collect(),
            auth,
            timeout: group.scrape_timeout,
            body_limit: group.body_size_limit,
            decompressed_limit: group.decompressed_size_limit,
            identity: Arc::new(Identity::new(group.replica_labels.clone(), group.labels.clone(), group.honor_labels)),
        })
    }

    /// The URL scraped for a replica at `address`.
    pub fn url(&self, address: &str) -> String {
        format!("{}://{}{}", self.scheme, address, self.path)
    }

    /// Scrapes the replica at `address` once.
    pub async fn scrape(&self, address: &str) -> Result<Scraped, ScrapeError> {
        let url = self.url(address);
        let full = reqwest::Url::parse_with_params(&url, &self.query)
            .map_err(|e| ScrapeError::Connect { url: url.clone(), message: format!("invalid URL: {e}") })?;
        let mut req = self
            .client
            .get(full)
            .header(ACCEPT, ACCEPT_HEADER)
            .header(ACCEPT_ENCODING, "gzip")
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", self.timeout.as_secs_f64()));
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let mut resp = req.send().await.map_err(|e| classify(&url, self.timeout, e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ScrapeError::Status { url, status: status.as_u16() });
        }
        let header = |name| resp.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let encoding = header(CONTENT_ENCODING).unwrap_or_default();
        if resp.content_length().is_some_and(|n| n > self.body_limit) {
            return Err(ScrapeError::BodyTooLarge { url, limit: self.body_limit });
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| match classify(&url, self.timeout, e) {
            ScrapeError::Connect { url, message } => ScrapeError::Read { url, message },
            other => other,
        })? {
            if body.len() as u64 + chunk.len() as u64 > self.body_limit {
                return Err(ScrapeError::BodyTooLarge { url, limit: self.body_limit });
            }
            body.extend_from_slice(&chunk);
        }
        let identity = self.identity.clone();
        let limit = self.decompressed_limit;
        // Decompression and parsing are CPU work: keep them off the async workers.
        let decoded = tokio::task::spawn_blocking(move || {
            decode(&url, Bytes::from(body), &encoding, &content_type, limit, &identity)
        })
        .await;
        match decoded {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Decompresses (bounded) and parses a body. Public for tests and benchmarks.
pub fn decode(
    url: &str,
    body: Bytes,
    encoding: &str,
    content_type: &str,
    decompressed_limit: u64,
    identity: &Identity,
) -> Result<Scraped, ScrapeError> {
    let body: Bytes = match encoding.trim() {
        "" | "identity" => {
            if body.len() as u64 > decompressed_limit {
                return Err(ScrapeError::DecompressedTooLarge { url: url.to_owned(), limit: decompressed_limit });
            }
            body
        }
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity((body.len() * 4).min(decompressed_limit as usize));
            let mut dec = flate2::read::GzDecoder::new(&body[..]).take(decompressed_limit + 1);
            dec.read_to_end(&mut out).map_err(|source| ScrapeError::Decompress { url: url.to_owned(), source })?;
            if out.len() as u64 > decompressed_limit {
                return Err(ScrapeError::DecompressedTooLarge { url: url.to_owned(), limit: decompressed_limit });
            }
            Bytes::from(out)
        }
        other => return Err(ScrapeError::ContentEncoding { url: url.to_owned(), encoding: other.to_owned() }),
    };
    let mut builder = BatchBuilder::new(identity, body.len());
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_delimited_proto = media == "application/vnd.google.protobuf"
        && content_type.contains("io.prometheus.client.MetricFamily")
        && content_type.contains("encoding=delimited");
    if is_delimited_proto {
        parse_protobuf_delimited(&body, &mut builder)
            .map_err(|source| ScrapeError::ParseProtobuf { url: url.to_owned(), source })?;
    } else if media == "text/plain" || media.is_empty() {
        // An empty content type is read as text, as Prometheus does.
        parse_text(&body, &mut builder).map_err(|source| ScrapeError::ParseText { url: url.to_owned(), source })?;
    } else {
        return Err(ScrapeError::ContentType { url: url.to_owned(), content_type: content_type.to_owned() });
    }
    let rejected = builder.rejected;
    Ok(Scraped { batch: builder.finish(), bytes: body.len() as u64, rejected })
}

fn classify(url: &str, timeout: Duration, e: reqwest::Error) -> ScrapeError {
    let url = url.to_owned();
    if e.is_timeout() {
        return ScrapeError::Timeout { url, timeout };
    }
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    let mut message = e.to_string();
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return ScrapeError::Tls { url, message: s.to_string() };
        }
        // The innermost cause says the most ("Connection refused").
        message = s.to_string();
        source = s.source();
    }
    if e.is_connect() { ScrapeError::Connect { url, message } } else { ScrapeError::Read { url, message } }
}

fn read(group: &str, path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        group: group.to_owned(),
        path: path.display().to_string(),
        source,
    })
}

fn client_tls(group: &Group) -> Result<rustls::ClientConfig, ClientError> {
    let name = &group.name;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &group.tls.ca_file {
        Some(ca) => {
            let pem = read(name, ca)?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ClientError::Pem {
                    group: name.clone(),
                    path: ca.display().to_string(),
                    what: "certificate",
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| ClientError::Rustls { group: name.clone(), source })?;
    let verifier: Arc<dyn ServerCertVerifier> = if group.tls.insecure_skip_verify {
        Arc::new(NoVerify(provider.clone()))
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ClientError::Rustls { group: name.clone(), source: rustls::Error::General(e.to_string()) })?;
        match &group.tls.server_name {
            Some(n) => {
                let server_name = ServerName::try_from(n.clone()).map_err(|_| ClientError::Rustls {
                    group: name.clone(),
                    source: rustls::Error::General(format!("invalid server_name {n:?}")),
                })?;
                Arc::new(OverrideName { inner, name: server_name })
            }
            None => inner,
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (&group.tls.cert_file, &group.tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = read(name, cert)?;
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
            if certs.is_empty() {
                return Err(ClientError::Pem {
                    group: name.clone(),
                    path: cert.display().to_string(),
                    what: "certificate",
                });
            }
            let key_pem = read(name, key)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| ClientError::Pem {
                group: name.clone(),
                path: key.display().to_string(),
                what: "private key",
            })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|source| ClientError::Rustls { group: name.clone(), source })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies the certificate against a configured name instead of the address' host
/// (`tls_config.server_name`).
#[derive(Debug)]
struct OverrideName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for OverrideName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
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
