//! One scrape of one replica: the HTTP request, the bounded body read, gzip, content-type
//! negotiation and parsing into a [`Batch`].
//!
//! Every failure is a [`ScrapeError`] with a short `reason` (a metric label) and a message that
//! names the replica and what was wrong. A body that does not parse to its end fails the whole
//! scrape: a truncated body must not look like "every series vanished".

pub use crate::client::ClientError;
use crate::client::{auth_header, client_tls};
use crate::config::Group;
use crate::parse::{TextStream, parse_protobuf_delimited, parse_text};
use crate::series::{Batch, BatchBuilder, Identity};
use bytes::Bytes;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use std::io::{Read, Write as _};
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
        let Some(gzip) = gzipped(&encoding) else {
            return Err(ScrapeError::ContentEncoding { url, encoding: encoding.trim().to_owned() });
        };
        if is_text(&media_type(&content_type)) {
            return self.scrape_text(url, resp, gzip).await;
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

/// Chunks of a body in flight between the reader and the parser: a few, so that reading and
/// parsing overlap while the memory held stays small.
const CHUNKS_IN_FLIGHT: usize = 8;

impl GroupClient {
    /// Reads a text body and parses it as it arrives, on the blocking pool: the whole body is
    /// never held (174 MB for a million series, and its page faults were a fifth of a scrape's
    /// CPU), only the batch it becomes. Limits, errors and results are those of [`decode`].
    async fn scrape_text(&self, url: String, mut resp: reqwest::Response, gzip: bool) -> Result<Scraped, ScrapeError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let identity = self.identity.clone();
        let limit = self.decompressed_limit;
        let hint = (resp.content_length().unwrap_or(0) as usize).saturating_mul(if gzip { 8 } else { 1 });
        let parser_url = url.clone();
        let parser =
            tokio::task::spawn_blocking(move || parse_text_chunks(&parser_url, rx, gzip, limit, hint, &identity));
        let mut read = 0u64;
        let outcome = loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break Ok(()),
                Err(e) => {
                    break Err(match classify(&url, self.timeout, e) {
                        ScrapeError::Connect { url, message } => ScrapeError::Read { url, message },
                        other => other,
                    });
                }
            };
            read += chunk.len() as u64;
            if read > self.body_limit {
                break Err(ScrapeError::BodyTooLarge { url: url.clone(), limit: self.body_limit });
            }
            if tx.send(chunk).await.is_err() {
                // The parser stopped on an error: it is the answer.
                break Ok(());
            }
        };
        drop(tx);
        let parsed = match parser.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        // A read that failed half-way must not look like a body that ended there.
        outcome?;
        parsed
    }
}

/// The parser's side of [`GroupClient::scrape_text`]: decompresses (bounded) and parses the
/// chunks until the reader closes the channel.
fn parse_text_chunks(
    url: &str,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    gzip: bool,
    limit: u64,
    hint: usize,
    identity: &Identity,
) -> Result<Scraped, ScrapeError> {
    let mut feed = Feed {
        url,
        builder: BatchBuilder::new(identity, hint.min(limit as usize)),
        stream: TextStream::default(),
        bytes: 0,
        limit,
        failed: None,
    };
    if gzip {
        let mut decoder = flate2::write::GzDecoder::new(&mut feed);
        let mut result = Ok(());
        while let Some(chunk) = rx.blocking_recv() {
            result = decoder.write_all(&chunk);
            if result.is_err() {
                break;
            }
        }
        let result = result.and_then(|()| decoder.try_finish());
        drop(decoder);
        if let Some(e) = feed.failed.take() {
            return Err(e);
        }
        result.map_err(|source| ScrapeError::Decompress { url: url.to_owned(), source })?;
    } else {
        while let Some(chunk) = rx.blocking_recv() {
            feed.push(&chunk)?;
        }
    }
    let Feed { builder, stream, bytes, .. } = feed;
    stream.finish().map_err(|source| ScrapeError::ParseText { url: url.to_owned(), source })?;
    let rejected = builder.rejected;
    Ok(Scraped { batch: builder.finish(), bytes, rejected })
}

/// Decompressed text on its way into the parser, counted against the limit.
struct Feed<'a> {
    url: &'a str,
    builder: BatchBuilder<'a>,
    stream: TextStream,
    bytes: u64,
    limit: u64,
    /// Why the parse stopped, when the gzip decoder is the caller (it only passes on an
    /// `io::Error`).
    failed: Option<ScrapeError>,
}

impl Feed<'_> {
    fn push(&mut self, text: &[u8]) -> Result<(), ScrapeError> {
        self.bytes += text.len() as u64;
        if self.bytes > self.limit {
            return Err(ScrapeError::DecompressedTooLarge { url: self.url.to_owned(), limit: self.limit });
        }
        self.stream
            .feed(text, &mut self.builder)
            .map_err(|source| ScrapeError::ParseText { url: self.url.to_owned(), source })
    }
}

impl std::io::Write for &mut Feed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The decoder writes what it holds once more when dropped: the first failure stays.
        if self.failed.is_some() {
            return Err(std::io::Error::other("the parse already failed"));
        }
        match self.push(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let message = e.to_string();
                self.failed = Some(e);
                Err(std::io::Error::other(message))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    let body: Bytes = match gzipped(encoding) {
        Some(false) => {
            if body.len() as u64 > decompressed_limit {
                return Err(ScrapeError::DecompressedTooLarge { url: url.to_owned(), limit: decompressed_limit });
            }
            body
        }
        Some(true) => {
            let mut out = Vec::with_capacity((body.len() * 4).min(decompressed_limit as usize));
            let mut dec = flate2::read::GzDecoder::new(&body[..]).take(decompressed_limit + 1);
            dec.read_to_end(&mut out).map_err(|source| ScrapeError::Decompress { url: url.to_owned(), source })?;
            if out.len() as u64 > decompressed_limit {
                return Err(ScrapeError::DecompressedTooLarge { url: url.to_owned(), limit: decompressed_limit });
            }
            Bytes::from(out)
        }
        None => {
            return Err(ScrapeError::ContentEncoding { url: url.to_owned(), encoding: encoding.trim().to_owned() });
        }
    };
    let mut builder = BatchBuilder::new(identity, body.len());
    let media = media_type(content_type);
    let is_delimited_proto = media == "application/vnd.google.protobuf"
        && content_type.contains("io.prometheus.client.MetricFamily")
        && content_type.contains("encoding=delimited");
    if is_delimited_proto {
        parse_protobuf_delimited(&body, &mut builder)
            .map_err(|source| ScrapeError::ParseProtobuf { url: url.to_owned(), source })?;
    } else if is_text(&media) {
        parse_text(&body, &mut builder).map_err(|source| ScrapeError::ParseText { url: url.to_owned(), source })?;
    } else {
        return Err(ScrapeError::ContentType { url: url.to_owned(), content_type: content_type.to_owned() });
    }
    let rejected = builder.rejected;
    Ok(Scraped { batch: builder.finish(), bytes: body.len() as u64, rejected })
}

/// The media type of a `Content-Type`, lowercased, without its parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A text body: `text/plain`, or no content type at all (read as text, as Prometheus does).
fn is_text(media: &str) -> bool {
    media == "text/plain" || media.is_empty()
}

/// Whether a `Content-Encoding` is gzip, or none; `None` for one promfed cannot read.
fn gzipped(encoding: &str) -> Option<bool> {
    match encoding.trim() {
        "" | "identity" => Some(false),
        "gzip" | "x-gzip" => Some(true),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    fn body(lines: usize) -> Vec<u8> {
        (0..lines).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect::<String>().into_bytes()
    }

    fn gzipped(text: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(text).unwrap();
        enc.finish().unwrap()
    }

    /// Runs the parser's side on `data` cut into `chunk`-byte pieces.
    fn parse(data: &[u8], chunk: usize, gzip: bool, limit: u64) -> Result<Scraped, ScrapeError> {
        let (tx, rx) = tokio::sync::mpsc::channel(data.len() / chunk + 2);
        for piece in data.chunks(chunk) {
            tx.try_send(Bytes::copy_from_slice(piece)).unwrap();
        }
        drop(tx);
        let identity = Identity::new(vec![], vec![], true);
        parse_text_chunks("http://r/federate", rx, gzip, limit, 0, &identity)
    }

    #[test]
    fn chunked_text_and_gzip_give_the_whole_batch() {
        let text = body(5000);
        for (data, gzip) in [(text.clone(), false), (gzipped(&text), true)] {
            for chunk in [1, 100, 8192, data.len()] {
                let got = parse(&data, chunk, gzip, u64::MAX).unwrap();
                assert_eq!((got.batch.entries().len(), got.bytes), (5000, text.len() as u64), "chunk {chunk}");
            }
        }
    }

    /// A gzip stream cut anywhere, even where the text inside ends with a whole line (only the
    /// trailer missing), fails the scrape: a partial body must not look like vanished series.
    #[test]
    fn truncated_gzip_fails_wherever_it_is_cut() {
        let data = gzipped(&body(2000));
        for cut in [10, data.len() / 3, data.len() / 2, data.len() - 9, data.len() - 4, data.len() - 1] {
            for chunk in [7, 4096] {
                let err = parse(&data[..cut], chunk, true, u64::MAX).err();
                assert!(
                    matches!(err, Some(ScrapeError::Decompress { .. } | ScrapeError::ParseText { .. })),
                    "cut at {cut} of {}, chunks of {chunk}: {err:?}",
                    data.len()
                );
            }
        }
    }

    #[test]
    fn limits_and_bad_lines_are_named() {
        let text = body(1000);
        let err = parse(&gzipped(&text), 512, true, 1000).unwrap_err();
        assert!(matches!(err, ScrapeError::DecompressedTooLarge { limit: 1000, .. }), "{err}");
        let err = parse(&text, 512, false, 1000).unwrap_err();
        assert!(matches!(err, ScrapeError::DecompressedTooLarge { limit: 1000, .. }), "{err}");
        let mut bad = text.clone();
        bad.extend_from_slice(b"m{i=\"x\" 1\n");
        let whole = parse_text(&bad, &mut BatchBuilder::new(&Identity::new(vec![], vec![], true), 0)).unwrap_err();
        let err = parse(&gzipped(&bad), 64, true, u64::MAX).unwrap_err();
        assert!(err.to_string().contains(&whole.to_string()), "{err} / {whole}");
        assert!(err.to_string().contains("line 1001"), "{err}");
    }
}
