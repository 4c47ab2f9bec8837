//! The `http` prober: blackbox_exporter 0.23's `ProbeHTTP`, on hyper's connection API so that
//! each phase (resolve, connect, tls, processing, transfer) is timed as Go's `httptrace` does.
//!
//! Semantics kept from blackbox_exporter (`prober/http.go`): the target is resolved once with
//! the preferred IP family and its address used for the first request; redirects are followed
//! up to 10 (`probe_http_redirects` counts the redirect responses seen — also 1 when
//! redirects are not followed, as Go's `CheckRedirect` reports it); a redirect that is not
//! followed is the final response, its body not read; phases are summed over the redirects,
//! `transfer` only for the final one; status, header regexes, body regexes, body read, HTTP
//! version, then SSL checks, in that order. Each request uses a new connection (Go reuses a
//! kept-alive one within a redirect chain: only the `connect`/`tls` sums differ).

use super::net::resolve;
use super::record::{ProbeParams, Recorder};
use super::tls::{self, ChainReport};
use crate::config::blackbox::{HttpProbe, Module};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant as Deadline;

/// Redirects followed at most (Go's default, which blackbox_exporter keeps).
const MAX_REDIRECTS: u32 = 10;
/// Most body bytes kept in memory for regexes or decompression when `body_size_limit` is 0.
const BODY_KEEP_CAP: usize = 64 << 20;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// The connection task of a request, stopped when the probe is done (or times out).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

fn phase(rec: &mut Recorder, name: &'static str, seconds: f64) {
    rec.add_labels("probe_http_duration_seconds", vec![("phase", name.to_owned())], seconds);
}

/// One response and how it was obtained.
struct Hop {
    response: hyper::Response<hyper::body::Incoming>,
    tls: Option<ChainReport>,
    response_start: Instant,
    _conn: AbortOnDrop,
}

pub async fn probe(
    target: &str,
    module: &Module,
    params: &ProbeParams,
    _deadline: Deadline,
    rec: &mut Recorder,
) -> bool {
    let cfg = &module.http;
    for name in [
        "probe_failed_due_to_regex",
        "probe_http_content_length",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_status_code",
        "probe_http_uncompressed_body_length",
        "probe_http_version",
    ] {
        rec.set(name, 0.0);
    }
    let with_scheme = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
    let mut url = match reqwest::Url::parse(&with_scheme) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        Ok(u) => return rec.fail("target", format!("target {target:?} is not an http(s) URL with a host ({u})")),
        Err(e) => return rec.fail("target", format!("could not parse target URL {target:?}: {e}")),
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let (ip, lookup) = match resolve(&host, cfg.preferred_ip_protocol.as_deref(), cfg.ip_protocol_fallback, rec).await {
        Ok(r) => r,
        Err(e) => {
            let took = rec.get("probe_dns_lookup_time_seconds").unwrap_or(0.0);
            phase(rec, "resolve", took);
            return rec.fail("resolve", format!("error resolving target address: {e}"));
        }
    };
    for p in PHASES {
        phase(rec, p, 0.0);
    }
    phase(rec, "resolve", lookup);

    // Headers as configured; `hostname=` sets Host as blackbox_exporter's setHTTPHost does.
    let mut headers: Vec<(String, String)> = cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(h) = &params.hostname {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
        headers.push(("Host".into(), h.clone()));
    }
    let host_header = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).map(|(_, v)| v.clone());
    if let Err(e) = auth_headers(cfg, &mut headers) {
        return rec.fail("request", e);
    }
    if !cfg.compression.is_empty() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept-encoding")) {
        headers.push(("Accept-Encoding".into(), cfg.compression.clone()));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
        headers.push((
            "User-Agent".into(),
            format!("promfed/{} (blackbox_exporter compatible)", env!("CARGO_PKG_VERSION")),
        ));
    }
    let mut method = cfg.method.clone().unwrap_or_else(|| "GET".into());
    let mut body = cfg.body.clone().unwrap_or_default();

    let mut redirects: u32 = 0;
    let mut hop_ip = Some(ip);
    let mut request_errored = false;
    let hop: Hop = loop {
        let h = match request(cfg, &url, hop_ip.take(), &method, &headers, &host_header, &body, rec).await {
            Ok(h) => h,
            Err((reason, message)) => return rec.fail(reason, message),
        };
        let status = h.response.status().as_u16();
        let location =
            h.response.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        rec.log(format!("Received HTTP response: status_code={status}"));
        match location {
            Some(location) if matches!(status, 301 | 302 | 303 | 307 | 308) => {
                redirects += 1;
                rec.log(format!("Received redirect: location={location}"));
                if redirects > MAX_REDIRECTS || !cfg.follows_redirects() {
                    rec.log("Not following redirect");
                    request_errored = true;
                    break h;
                }
                let next = match url.join(&location) {
                    Ok(u) => u,
                    Err(e) => return rec.fail("request", format!("invalid redirect location {location:?}: {e}")),
                };
                // Go's client: 301/302/303 become GET without a body (HEAD stays HEAD).
                if matches!(status, 301..=303) && method != "HEAD" {
                    method = "GET".into();
                    body.clear();
                }
                // The redirect's body is discarded, within the probe's time.
                let mut b = h.response.into_body();
                let mut drained = 0usize;
                while drained < (1 << 20) {
                    match b.frame().await {
                        Some(Ok(f)) => drained += f.data_ref().map_or(0, Bytes::len),
                        _ => break,
                    }
                }
                url = next;
            }
            _ => break h,
        }
    };
    rec.set("probe_http_redirects", f64::from(redirects));

    let status = hop.response.status().as_u16();
    let mut success = if cfg.valid_status_codes.is_empty() {
        let ok = (200..300).contains(&status);
        if !ok {
            rec.fail("http_status", format!("Invalid HTTP response status code {status}, wanted 2xx"));
        }
        ok
    } else {
        let ok = cfg.valid_status_codes.contains(&status);
        if !ok {
            rec.fail(
                "http_status",
                format!("Invalid HTTP response status code {status}, wanted {:?}", cfg.valid_status_codes),
            );
        }
        ok
    };
    let content_length = hop
        .response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(if matches!(status, 204 | 304) { 0.0 } else { -1.0 });
    let version = match hop.response.version() {
        hyper::Version::HTTP_09 => ("HTTP/0.9", 0.9),
        hyper::Version::HTTP_10 => ("HTTP/1.0", 1.0),
        hyper::Version::HTTP_11 => ("HTTP/1.1", 1.1),
        hyper::Version::HTTP_2 => ("HTTP/2.0", 2.0),
        _ => ("HTTP/3.0", 3.0),
    };
    let last_modified = hop
        .response
        .headers()
        .get(hyper::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());

    if !request_errored {
        if success && (!cfg.fail_if_header_matches.is_empty() || !cfg.fail_if_header_not_matches.is_empty()) {
            success = headers_ok(cfg, hop.response.headers(), rec);
            rec.set("probe_failed_due_to_regex", if success { 0.0 } else { 1.0 });
        }
        let wants_regex =
            !cfg.fail_if_body_matches_regexp.is_empty() || !cfg.fail_if_body_not_matches_regexp.is_empty();
        let keep = wants_regex || !cfg.compression.is_empty();
        let limit = cfg.body_size_limit.0 as usize;
        let (raw, read_error) =
            read_body(hop.response.into_body(), keep, if cfg.compression.is_empty() { limit } else { 0 }).await;
        let end = Instant::now();
        let (uncompressed, body_error) = match cfg.compression.as_str() {
            "" | "identity" => (raw, read_error),
            algo => match read_error {
                Some(e) => (raw, Some(e)),
                None => decompress(algo, &raw.bytes, limit).map_or_else(
                    |e| (BodyRead { bytes: Vec::new(), total: 0 }, Some(("decompress", e))),
                    |b| (b, None),
                ),
            },
        };
        if success && wants_regex {
            success = body_ok(cfg, &uncompressed.bytes, rec);
            rec.set("probe_failed_due_to_regex", if success { 0.0 } else { 1.0 });
        }
        if let Some((reason, e)) = body_error {
            rec.log(format!("Failed to read HTTP response body: {e}"));
            if success {
                rec.fail(reason, e);
            }
            success = false;
        }
        rec.set("probe_http_uncompressed_body_length", uncompressed.total as f64);
        phase(rec, "transfer", end.duration_since(hop.response_start).as_secs_f64());
        if let Some(t) = last_modified {
            let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as f64).unwrap_or(0.0);
            rec.set("probe_http_last_modified_timestamp_seconds", secs);
        }
    }
    // Also for a redirect that was not followed (checked against blackbox_exporter 0.23).
    rec.set("probe_http_version", version.1);
    if !cfg.valid_http_versions.is_empty() && !cfg.valid_http_versions.iter().any(|v| v == version.0) {
        rec.fail("http_version", format!("Invalid HTTP version number {}", version.0));
        success = false;
    }

    if let Some(report) = &hop.tls {
        rec.set("probe_http_ssl", 1.0);
        tls::record_metrics(rec, report, true);
        if cfg.fail_if_ssl {
            rec.fail("ssl", "Final request was over SSL");
            success = false;
        }
    } else if cfg.fail_if_not_ssl && success {
        rec.fail("not_ssl", "Final request was not over SSL");
        success = false;
    }
    rec.set("probe_http_status_code", f64::from(status));
    rec.set("probe_http_content_length", content_length);
    success
}

/// One request on a new connection, its phases added to the gauges.
#[allow(clippy::too_many_arguments)]
async fn request(
    cfg: &HttpProbe,
    url: &reqwest::Url,
    ip: Option<IpAddr>,
    method: &str,
    headers: &[(String, String)],
    host_header: &Option<String>,
    body: &str,
    rec: &mut Recorder,
) -> Result<Hop, (&'static str, String)> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let ip = match ip {
        Some(ip) => ip,
        None => {
            // A redirect's host: resolved as Go's dialer does, the time added to `resolve`.
            let started = Instant::now();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let found = match bare.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => tokio::net::lookup_host((bare, port)).await.ok().and_then(|mut a| a.next()).map(|a| a.ip()),
            };
            phase(rec, "resolve", started.elapsed().as_secs_f64());
            found.ok_or(("resolve", format!("cannot resolve redirect host {bare}")))?
        }
    };
    let addr = SocketAddr::new(ip, port);
    rec.log(format!("Making HTTP request: url={url} address={addr}"));
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.map_err(|e| ("connect", format!("dial tcp {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    phase(rec, "connect", started.elapsed().as_secs_f64());
    let (io, tls_report, h2): (Box<dyn Io>, Option<ChainReport>, bool) = if url.scheme() == "https" {
        let alpn: &[&[u8]] = if cfg.enable_http2 { &[b"h2", b"http/1.1"] } else { &[b"http/1.1"] };
        let probe_tls = tls::client_config(&cfg.tls_config, alpn).map_err(|e| ("tls", e))?;
        // As blackbox_exporter: `server_name`, else the Host header's host, else the URL's.
        let sni_host = host_header
            .as_deref()
            .map(|h| super::net::split_host_port(h).map_or(h, |(h, _)| h).to_owned())
            .unwrap_or_else(|| host.clone());
        let name = tls::server_name(&cfg.tls_config, &sni_host).map_err(|e| ("tls", e))?;
        let tls_started = Instant::now();
        let (stream, report) = tls::handshake(&probe_tls, name, tcp).await;
        phase(rec, "tls", tls_started.elapsed().as_secs_f64());
        match stream {
            Ok(s) => {
                let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
                if let Some(r) = &report {
                    rec.certificates = Some(r.clone());
                }
                (Box::new(s), report, h2)
            }
            Err(e) => {
                if let Some(r) = report {
                    tls::record_failed_handshake(rec, &r);
                    rec.certificates = Some(r);
                }
                return Err(("tls", format!("TLS handshake with {addr} failed: {e}")));
            }
        }
    } else {
        (Box::new(tcp), None, false)
    };
    let got_conn = Instant::now();
    let io = TokioIo::new(io);
    let (mut sender, conn) = if h2 {
        let (s, c) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| ("request", format!("HTTP/2 handshake: {e}")))?;
        (
            Sender::H2(s),
            AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            })),
        )
    } else {
        let (s, c) = http1::handshake(io).await.map_err(|e| ("request", format!("HTTP/1.1 handshake: {e}")))?;
        (
            Sender::H1(s),
            AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            })),
        )
    };
    let authority = host_header.clone().unwrap_or_else(|| url.authority().to_owned());
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let uri = if h2 { format!("{}://{authority}{path}", url.scheme()) } else { path };
    let mut builder = hyper::Request::builder().method(method).uri(&uri);
    if !h2 {
        builder = builder.header(hyper::header::HOST, &authority);
    }
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("host") {
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let req = builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| ("request", format!("invalid request: {e}")))?;
    let response = match &mut sender {
        Sender::H1(s) => s.send_request(req).await,
        Sender::H2(s) => s.send_request(req).await,
    }
    .map_err(|e| ("request", format!("HTTP request to {url} failed: {e}")))?;
    let response_start = Instant::now();
    phase(rec, "processing", response_start.duration_since(got_conn).as_secs_f64());
    Ok(Hop { response, tls: tls_report, response_start, _conn: conn })
}

fn auth_headers(cfg: &HttpProbe, headers: &mut Vec<(String, String)>) -> Result<(), String> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map(|s| s.trim().to_owned()).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let value = if let Some(b) = &cfg.basic_auth {
        let password = match (&b.password, &b.password_file) {
            (_, Some(f)) => read(f)?,
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        use base64::Engine;
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", b.username))
        ))
    } else if let Some(a) = &cfg.authorization {
        let credentials = match (&a.credentials, &a.credentials_file) {
            (_, Some(f)) => read(f)?,
            (Some(c), None) => c.clone(),
            (None, None) => String::new(),
        };
        Some(format!("{} {credentials}", a.kind.as_deref().unwrap_or("Bearer")))
    } else if let Some(t) = &cfg.bearer_token {
        Some(format!("Bearer {t}"))
    } else {
        cfg.bearer_token_file.as_deref().map(read).transpose()?.map(|t| format!("Bearer {t}"))
    };
    if let Some(v) = value {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        headers.push(("Authorization".into(), v));
    }
    Ok(())
}

/// blackbox_exporter's `matchRegularExpressionsOnHeaders`: a missing header fails unless
/// `allow_missing`; `fail_if_header_matches` fails when any value matches,
/// `fail_if_header_not_matches` when none does.
fn headers_ok(cfg: &HttpProbe, headers: &hyper::HeaderMap, rec: &mut Recorder) -> bool {
    for (spec, fail_on_match) in cfg
        .fail_if_header_matches
        .iter()
        .map(|s| (s, true))
        .chain(cfg.fail_if_header_not_matches.iter().map(|s| (s, false)))
    {
        let values: Vec<String> = headers
            .get_all(spec.header.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if values.is_empty() {
            if spec.allow_missing {
                continue;
            }
            return rec.fail("header_regex", format!("Missing required header {}", spec.header));
        }
        let any = values.iter().any(|v| spec.regexp.0.is_match(v));
        if fail_on_match && any {
            return rec
                .fail("header_regex", format!("Header {} matched regular expression {}", spec.header, spec.regexp.0));
        }
        if !fail_on_match && !any {
            return rec.fail(
                "header_regex",
                format!("Header {} did not match regular expression {}", spec.header, spec.regexp.0),
            );
        }
    }
    true
}

fn body_ok(cfg: &HttpProbe, body: &[u8], rec: &mut Recorder) -> bool {
    let text = String::from_utf8_lossy(body);
    for re in &cfg.fail_if_body_matches_regexp {
        if re.0.is_match(&text) {
            return rec.fail("body_regex", format!("Body matched regular expression {}", re.0));
        }
    }
    for re in &cfg.fail_if_body_not_matches_regexp {
        if !re.0.is_match(&text) {
            return rec.fail("body_regex", format!("Body did not match regular expression {}", re.0));
        }
    }
    true
}

struct BodyRead {
    /// Kept bytes (when asked to keep), at most [`BODY_KEEP_CAP`].
    bytes: Vec<u8>,
    /// Bytes read in all.
    total: usize,
}

/// Reads a body to its end, keeping it if `keep`; more than `limit` bytes (0: no limit) is an error.
async fn read_body(
    mut body: hyper::body::Incoming,
    keep: bool,
    limit: usize,
) -> (BodyRead, Option<(&'static str, String)>) {
    let mut out = BodyRead { bytes: Vec::new(), total: 0 };
    // Bounded by the probe's timeout (the caller's), and by `limit` or the keep cap in memory.
    loop {
        match body.frame().await {
            None => return (out, None),
            Some(Err(e)) => return (out, Some(("body_read", format!("reading the body: {e}")))),
            Some(Ok(f)) => {
                let Some(data) = f.data_ref() else { continue };
                let mut take = data.len();
                if limit > 0 && out.total + take > limit {
                    take = limit - out.total;
                    out.total += take;
                    if keep {
                        out.bytes.extend_from_slice(&data[..take]);
                    }
                    return (out, Some(("body_too_large", format!("body exceeds body_size_limit of {limit} bytes"))));
                }
                out.total += take;
                if keep {
                    if out.bytes.len() + take > BODY_KEEP_CAP {
                        return (
                            out,
                            Some(("body_too_large", format!("body exceeds {BODY_KEEP_CAP} bytes kept for checks"))),
                        );
                    }
                    out.bytes.extend_from_slice(data);
                }
            }
        }
    }
}

fn decompress(algo: &str, raw: &[u8], limit: usize) -> Result<BodyRead, String> {
    use std::io::Read;
    let cap = if limit > 0 { limit } else { BODY_KEEP_CAP };
    let reader: Box<dyn Read + '_> = match algo {
        "gzip" => Box::new(flate2::read::GzDecoder::new(raw)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(raw)),
        other => return Err(format!("unsupported compression {other}")),
    };
    let mut out = Vec::new();
    let n = reader.take(cap as u64 + 1).read_to_end(&mut out).map_err(|e| format!("{algo}: {e}"))?;
    if n > cap {
        return Err(format!("decompressed body exceeds {cap} bytes"));
    }
    Ok(BodyRead { total: out.len(), bytes: out })
}
