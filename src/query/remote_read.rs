//! The remote-read client: a replica's raw samples for some selectors and a time range, through
//! Prometheus' `POST /api/v1/read`.
//!
//! The request asks for `STREAMED_XOR_CHUNKS` first and `SAMPLES` second, as Prometheus' own
//! remote-read client does; Prometheus ≥ 2.13 streams, anything older (or another server)
//! answers samples. A streamed body is a sequence of frames — a uvarint length, the CRC-32C of
//! the message (big-endian), the `ChunkedReadResponse` — read as they arrive, each checked
//! before it is decoded; the chunks hold whole TSDB chunks, so samples outside the asked range
//! are cut here. A samples body is one snappy block, its decoded length checked before it is
//! allocated.
//!
//! Bounded: bytes read per request (`max_bytes`, streamed or compressed, and decompressed),
//! the size of one frame, samples decoded (`max_samples`, Prometheus' limit and message are the
//! caller's). Errors name the replica's URL and what was wrong with the answer.

use super::chunk::{ChunkError, decode_xor};
use super::proto::{ChunkEncoding, ChunkedReadResponse, Query, ReadRequest, ReadResponse, ResponseType};
use crate::client::{ClientError, auth_header, client_tls};
use crate::config::Credentials;
use crate::config::file::TlsConfig;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use std::time::Duration;

/// The media type of a streamed answer.
const STREAMED: &str = "application/x-streamed-protobuf";
/// The largest frame accepted (Prometheus sends about 1 MiB: `remote_read_max_bytes_in_frame`).
const MAX_FRAME: usize = 64 << 20;

/// One series of a replica's answer: its labels as the replica has them (external labels
/// included), and its samples in time order within the asked range.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// What a request — or, through a shared [`Budget`], all requests of one query — may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes of the response body (and, for samples, of it decompressed).
    pub max_bytes: u64,
    /// Samples decoded, over all queries of the request.
    pub max_samples: u64,
}

/// Bytes and samples used so far by the requests sharing it (one query's).
#[derive(Debug, Default)]
pub struct Budget {
    bytes: std::sync::atomic::AtomicU64,
    samples: std::sync::atomic::AtomicU64,
}

impl Budget {
    /// Adds `n` bytes; the total after.
    fn bytes(&self, n: u64) -> u64 {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n
    }

    fn samples(&self, n: u64) -> u64 {
        self.samples.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n
    }
}

/// A replica's answer: per query of the request, its series; and what was left out.
#[derive(Debug, Default)]
pub struct Answer {
    pub results: Vec<Vec<RawSeries>>,
    /// Series or chunks skipped (native histograms, which promfed does not evaluate), said once
    /// each.
    pub skipped: Vec<String>,
    /// `streamed` or `samples`.
    pub response_type: &'static str,
    /// Bytes read from the network.
    pub bytes: u64,
}

/// Why a remote read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("remote read of {url} failed: {source}")]
    Send {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("remote read of {url} answered HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("remote read of {url}: the answer exceeds {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("remote read of {url}: more than {limit} samples")]
    TooManySamples { url: String, limit: u64 },
    #[error("remote read of {url}: {what}")]
    Malformed { url: String, what: String },
    #[error("remote read of {url}: {source}")]
    Chunk {
        url: String,
        #[source]
        source: ChunkError,
    },
}

impl ReadError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Send { source, .. } if source.is_timeout() => "timeout",
            ReadError::Send { .. } => "connect",
            ReadError::Status { .. } => "http_status",
            ReadError::TooLarge { .. } => "too_large",
            ReadError::TooManySamples { .. } => "too_many_samples",
            ReadError::Malformed { .. } => "malformed",
            ReadError::Chunk { .. } => "chunk",
        }
    }
}

/// The remote-read client of one group: its scheme, TLS and credentials.
#[derive(Clone, Debug)]
pub struct ReadClient {
    client: reqwest::Client,
    scheme: String,
    auth: Option<HeaderValue>,
}

impl ReadClient {
    /// A client for `owner` (`group eu-west-1`) with the group's `tls_config` and credentials;
    /// `timeout` bounds each request.
    pub fn new(
        owner: &str,
        scheme: &str,
        tls: &TlsConfig,
        auth: &Credentials,
        timeout: Duration,
    ) -> Result<ReadClient, ClientError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(client_tls(owner, tls)?)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(4)
            .user_agent(concat!("promfed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build { owner: owner.to_owned(), source })?;
        Ok(ReadClient { client, scheme: scheme.to_owned(), auth: auth_header(owner, auth)? })
    }

    /// `GET path_and_query` of the replica at `address` as JSON (rules, alerts), with the
    /// group's TLS and credentials.
    pub async fn get_json(&self, address: &str, path_and_query: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}://{address}{path_and_query}", self.scheme);
        let response = self.authorized(self.client.get(&url)).send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body).trim().chars().take(300).collect::<String>();
            return Err(format!("{url} answered HTTP {}: {text}", status.as_u16()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// `req` with the group's `Authorization` header, when it has one.
    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some(auth) => req.header(reqwest::header::AUTHORIZATION, auth.clone()),
            None => req,
        }
    }

    /// The URL read for a replica at `address`.
    pub fn url(&self, address: &str) -> String {
        format!("{}://{address}/api/v1/read", self.scheme)
    }

    /// Reads `queries` from the replica at `address`, streamed chunks preferred, within
    /// `limits` for this request alone.
    pub async fn read(&self, address: &str, queries: &[Query], limits: Limits) -> Result<Answer, ReadError> {
        self.read_as(address, queries, limits, &[ResponseType::StreamedXorChunks, ResponseType::Samples]).await
    }

    /// [`ReadClient::read`] accepting only `types`, in preference order.
    pub async fn read_as(
        &self,
        address: &str,
        queries: &[Query],
        limits: Limits,
        types: &[ResponseType],
    ) -> Result<Answer, ReadError> {
        self.read_within(address, queries, limits, types, &Budget::default()).await
    }

    /// [`ReadClient::read`] with `limits` counted over every request sharing `budget`.
    pub async fn read_shared(
        &self,
        address: &str,
        queries: &[Query],
        limits: Limits,
        budget: &Budget,
    ) -> Result<Answer, ReadError> {
        self.read_within(address, queries, limits, &[ResponseType::StreamedXorChunks, ResponseType::Samples], budget)
            .await
    }

    async fn read_within(
        &self,
        address: &str,
        queries: &[Query],
        limits: Limits,
        types: &[ResponseType],
        budget: &Budget,
    ) -> Result<Answer, ReadError> {
        let url = self.url(address);
        let request = ReadRequest {
            queries: queries.to_vec(),
            accepted_response_types: types.iter().map(|t| *t as i32).collect(),
        };
        let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).map_err(|e| {
            ReadError::Malformed { url: url.clone(), what: format!("cannot compress the request: {e}") }
        })?;
        let req = self
            .client
            .post(&url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .body(body);
        let mut response =
            self.authorized(req).send().await.map_err(|source| ReadError::Send { url: url.clone(), source })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let body = text.trim().chars().take(300).collect();
            return Err(ReadError::Status { url, status: status.as_u16(), body });
        }
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with(STREAMED));
        let mut decoder = Decoder::new(url.clone(), queries, limits, budget);
        let mut buf: Vec<u8> = Vec::new();
        let mut bytes = 0u64;
        loop {
            let chunk = response.chunk().await.map_err(|source| ReadError::Send { url: url.clone(), source })?;
            let Some(chunk) = chunk else { break };
            bytes += chunk.len() as u64;
            if budget.bytes(chunk.len() as u64) > limits.max_bytes {
                return Err(ReadError::TooLarge { url, limit: limits.max_bytes });
            }
            buf.extend_from_slice(&chunk);
            if streamed {
                let used = decoder.frames(&buf)?;
                buf.drain(..used);
            }
        }
        let mut answer = if streamed {
            if !buf.is_empty() {
                return Err(ReadError::Malformed {
                    url,
                    what: format!("the stream ends inside a frame ({} bytes left)", buf.len()),
                });
            }
            decoder.finish()
        } else {
            decoder.samples(&buf)?
        };
        answer.bytes = bytes;
        Ok(answer)
    }
}

/// Turns response bytes into series, within the limits.
struct Decoder<'q> {
    url: String,
    queries: &'q [Query],
    limits: Limits,
    budget: &'q Budget,
    results: Vec<Vec<RawSeries>>,
    skipped: Vec<String>,
    samples: u64,
}

impl<'q> Decoder<'q> {
    fn new(url: String, queries: &'q [Query], limits: Limits, budget: &'q Budget) -> Self {
        Decoder {
            url,
            queries,
            limits,
            budget,
            results: vec![Vec::new(); queries.len()],
            skipped: Vec::new(),
            samples: 0,
        }
    }

    fn malformed(&self, what: impl Into<String>) -> ReadError {
        ReadError::Malformed { url: self.url.clone(), what: what.into() }
    }

    fn count(&mut self, n: usize) -> Result<(), ReadError> {
        self.samples += n as u64;
        if self.budget.samples(n as u64) > self.limits.max_samples {
            return Err(ReadError::TooManySamples { url: self.url.clone(), limit: self.limits.max_samples });
        }
        Ok(())
    }

    /// Decodes the complete frames at the start of `buf`; returns how many bytes they took.
    fn frames(&mut self, buf: &[u8]) -> Result<usize, ReadError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let Some((len, varint_len)) = uvarint(rest) else {
                if rest.len() >= 10 {
                    return Err(self.malformed("a frame length that is not a varint"));
                }
                return Ok(at);
            };
            if len > MAX_FRAME as u64 {
                return Err(self.malformed(format!("a frame of {len} bytes (at most {MAX_FRAME})")));
            }
            let total = varint_len + 4 + len as usize;
            if rest.len() < total {
                return Ok(at);
            }
            let crc = u32::from_be_bytes(rest[varint_len..varint_len + 4].try_into().expect("four bytes"));
            let message = &rest[varint_len + 4..total];
            if crc32c::crc32c(message) != crc {
                return Err(self.malformed("a frame whose CRC-32C does not match"));
            }
            let frame = ChunkedReadResponse::decode(message)
                .map_err(|e| self.malformed(format!("a frame that is not a ChunkedReadResponse: {e}")))?;
            self.frame(frame)?;
            at += total;
        }
    }

    fn frame(&mut self, frame: ChunkedReadResponse) -> Result<(), ReadError> {
        let index = usize::try_from(frame.query_index).ok().filter(|&i| i < self.queries.len()).ok_or_else(|| {
            self.malformed(format!("a frame for query {} of {}", frame.query_index, self.queries.len()))
        })?;
        let (start, end) = (self.queries[index].start_timestamp_ms, self.queries[index].end_timestamp_ms);
        for series in frame.chunked_series {
            let labels: Vec<(String, String)> = series.labels.into_iter().map(|l| (l.name, l.value)).collect();
            // Room for every chunk's samples at once (each XOR chunk starts with its count).
            let room: usize = series
                .chunks
                .iter()
                .map(|c| c.data.get(..2).map_or(0, |b| usize::from(b[0]) << 8 | usize::from(b[1])))
                .sum();
            let mut samples = Vec::with_capacity(room);
            for chunk in &series.chunks {
                if chunk.r#type != ChunkEncoding::Xor as i32 {
                    let what = format!("a native-histogram chunk of {}", describe(&labels));
                    if !self.skipped.contains(&what) {
                        self.skipped.push(what);
                    }
                    continue;
                }
                if chunk.max_time_ms < start || chunk.min_time_ms > end {
                    continue;
                }
                let before = samples.len();
                decode_xor(&chunk.data, &mut samples)
                    .map_err(|source| ReadError::Chunk { url: self.url.clone(), source })?;
                let n = samples.len() - before;
                self.count(n)?;
            }
            samples.retain(|&(t, _)| t >= start && t <= end);
            let results = &mut self.results[index];
            // A series longer than a frame comes back in several, each with its labels.
            match results.last_mut() {
                Some(last) if last.labels == labels => last.samples.extend(samples),
                _ => results.push(RawSeries { labels, samples }),
            }
        }
        Ok(())
    }

    fn finish(self) -> Answer {
        let mut results = self.results;
        for series in results.iter_mut().flatten() {
            // Chunks come in time order and do not overlap; make sure of it cheaply.
            if !series.samples.windows(2).all(|w| w[0].0 < w[1].0) {
                series.samples.sort_by_key(|s| s.0);
                series.samples.dedup_by_key(|s| s.0);
            }
        }
        Answer { results, skipped: self.skipped, response_type: "streamed", bytes: 0 }
    }

    /// A `SAMPLES` answer: one snappy block of a `ReadResponse`.
    fn samples(mut self, body: &[u8]) -> Result<Answer, ReadError> {
        let len = snap::raw::decompress_len(body).map_err(|e| self.malformed(format!("not snappy: {e}")))?;
        if len as u64 > self.limits.max_bytes {
            return Err(ReadError::TooLarge { url: self.url.clone(), limit: self.limits.max_bytes });
        }
        let raw =
            snap::raw::Decoder::new().decompress_vec(body).map_err(|e| self.malformed(format!("not snappy: {e}")))?;
        let response =
            ReadResponse::decode(raw.as_slice()).map_err(|e| self.malformed(format!("not a ReadResponse: {e}")))?;
        if response.results.len() != self.queries.len() {
            return Err(self.malformed(format!(
                "{} results for {} queries",
                response.results.len(),
                self.queries.len()
            )));
        }
        let mut results = Vec::with_capacity(response.results.len());
        for result in response.results {
            let mut series = Vec::with_capacity(result.timeseries.len());
            for ts in result.timeseries {
                self.count(ts.samples.len())?;
                let labels = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                let mut samples: Vec<(i64, f64)> = ts.samples.into_iter().map(|s| (s.timestamp, s.value)).collect();
                if !samples.windows(2).all(|w| w[0].0 < w[1].0) {
                    samples.sort_by_key(|s| s.0);
                    samples.dedup_by_key(|s| s.0);
                }
                series.push(RawSeries { labels, samples });
            }
            results.push(series);
        }
        Ok(Answer { results, skipped: self.skipped, response_type: "samples", bytes: 0 })
    }
}

/// `name{a="b"}` for messages.
fn describe(labels: &[(String, String)]) -> String {
    let name = labels.iter().find(|(n, _)| n == "__name__").map_or("", |(_, v)| v.as_str());
    let rest: Vec<String> = labels.iter().filter(|(n, _)| n != "__name__").map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// A uvarint at the start of `buf` and its length; `None` when incomplete or longer than 10 bytes.
fn uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut out = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        out |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((out, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests;
