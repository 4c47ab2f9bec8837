//! One scrape of one replica: the HTTP request, the bounded body read, gzip, content-type
//! negotiation and parsing into a [`Batch`].
//!
//! Every failure is a [`ScrapeError`] with a short `reason` (a metric label) and a message that
//! names the replica and what was wrong. A body that does not parse to its end fails the whole
//! scrape: a truncated body must not look like "every series vanished".

pub use crate::client::ClientError;
use crate::client::{auth_header, client_tls};
use crate::config::Group;
use crate::parse::{parse_protobuf_delimited, parse_text};
use crate::series::{Batch, BatchBuilder, Identity};
use bytes::Bytes;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

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

/// What a group's scrapers share: the client, the query, the identity rule and the limits.
pub struct GroupClient {
    pub group: String,
    client: reqwest::Client,
    scheme: String,
    path: String,
    query: Vec<(String, String)>,
    auth: Option<HeaderValue>,
    accept: String,
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
        let owner = format!("group {name}");
        let tls = client_tls(&owner, &group.tls)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // Decompression is ours, to bound it (see `decode`).
            .no_gzip()
            .timeout(group.scrape_timeout)
            .connect_timeout(group.scrape_timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("promfed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build { owner: owner.clone(), source })?;
        let auth = auth_header(&owner, &group.auth)?;
        Ok(GroupClient {
            group: name,
            client,
            scheme: group.scheme.clone(),
            path: group.path.clone(),
            query: group.selectors.iter().map(|s| ("match[]".to_owned(), s.clone())).collect(),
            auth,
            accept: group.accept.clone(),
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
            .header(ACCEPT, &self.accept)
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
        if let Some(tls) = find_rustls(s) {
            return ScrapeError::Tls { url, message: tls.to_string() };
        }
        // The innermost cause says the most ("Connection refused").
        message = s.to_string();
        source = s.source();
    }
    if e.is_connect() { ScrapeError::Connect { url, message } } else { ScrapeError::Read { url, message } }
}

/// rustls errors arrive wrapped in (possibly nested) io::Errors, whose `source()` skips the
/// wrapped error itself: look inside them.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    let inner: &(dyn std::error::Error + 'static) = io.get_ref()?;
    find_rustls(inner)
}
