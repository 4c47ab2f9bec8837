//! One probe of one target with one module, producing blackbox_exporter 0.23's metric set.
//!
//! A prober writes into a [`Recorder`]: gauges by name and labels (the same names, labels and
//! meanings as blackbox_exporter), log lines (shown with `debug=true`) and, when it fails, a
//! short reason (`probe_failure_info{reason}`, beyond blackbox_exporter) with a message. [`run`]
//! adds `probe_success` and `probe_duration_seconds` and enforces the timeout: a probe that
//! runs out of time keeps what it recorded so far and fails with reason `timeout`.
//!
//! - [`http`]: HTTP(S) with phase timings, redirects, regexes, TLS details;
//! - [`tcp`]: a connection, optional TLS, `query_response` dialogues with STARTTLS;
//! - [`dns`]: one query over UDP or TCP, rcode and record checks ([`dns::wire`]: the format);
//! - [`icmp`]: one echo request (ping socket, else raw socket);
//! - [`tls`]: a certificate verifier that records the chain, and the `probe_ssl_*` metrics.

pub mod dns;
pub mod http;
pub mod icmp;
pub mod net;
pub mod record;
pub mod tcp;
pub mod tls;

pub use net::{ip_hash, remaining, resolve, split_host_port};
pub use record::{CertReport, ChainReport, Failure, ProbeParams, Recorder, Sample};

use crate::config::blackbox::Module;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

/// The outcome of one probe.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub target: String,
    pub module: String,
    pub prober: String,
    pub success: bool,
    pub duration_seconds: f64,
    /// When it started, seconds since the epoch.
    pub timestamp: f64,
    pub failure: Option<Failure>,
    /// Every gauge, `probe_success` and `probe_duration_seconds` included, sorted as exposed.
    pub samples: Vec<Sample>,
    pub certificates: Option<ChainReport>,
    #[serde(skip)]
    pub log: Vec<String>,
}

/// Probes `target` with `module` within `timeout`.
pub async fn run(
    target: &str,
    module_name: &str,
    module: &Module,
    timeout: Duration,
    params: &ProbeParams,
) -> ProbeResult {
    let timestamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let mut rec = Recorder::new();
    rec.log(format!("Beginning probe: prober={} timeout_seconds={}", module.prober, timeout.as_secs_f64()));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let fut = async {
        match module.prober.as_str() {
            "http" => http::probe(target, module, params, deadline, &mut rec).await,
            "tcp" => tcp::probe(target, module, deadline, &mut rec).await,
            "dns" => dns::probe(target, module, deadline, &mut rec).await,
            "icmp" => icmp::probe(target, module, deadline, &mut rec).await,
            other => rec.fail("unsupported_prober", format!("prober {other:?} is not supported by promfed")),
        }
    };
    let success = match tokio::time::timeout_at(deadline, fut).await {
        Ok(ok) => ok,
        Err(_) => rec.fail("timeout", format!("probe did not finish within {:.3}s", timeout.as_secs_f64())),
    };
    let duration = started.elapsed().as_secs_f64();
    let success = success && rec.failure.is_none();
    if success {
        rec.log(format!("Probe succeeded: duration_seconds={duration}"));
    } else {
        rec.log(format!("Probe failed: duration_seconds={duration}"));
    }
    rec.set("probe_duration_seconds", duration);
    rec.set("probe_success", if success { 1.0 } else { 0.0 });
    if let Some(f) = &rec.failure {
        rec.set_labels("probe_failure_info", vec![("reason", f.reason.to_owned())], 1.0);
    }
    let mut samples = std::mem::take(&mut rec.samples);
    samples.sort_by(|a, b| a.name.cmp(b.name).then_with(|| a.labels.cmp(&b.labels)));
    ProbeResult {
        target: target.to_owned(),
        module: module_name.to_owned(),
        prober: module.prober.clone(),
        success,
        duration_seconds: duration,
        timestamp,
        failure: if success { None } else { rec.failure.take() },
        samples,
        certificates: rec.certificates.take(),
        log: rec.log,
    }
}

impl ProbeResult {
    /// The value of a gauge without labels, if present.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples.iter().find(|s| s.name == name && s.labels.is_empty()).map(|s| s.value)
    }
}

/// HELP text of each metric, blackbox_exporter's wording.
pub fn help(name: &str) -> &'static str {
    match name {
        "probe_success" => "Displays whether or not the probe was a success",
        "probe_duration_seconds" => "Returns how long the probe took to complete in seconds",
        "probe_failure_info" => "Why the probe failed (promfed; not in blackbox_exporter)",
        "probe_dns_lookup_time_seconds" => "Returns the time taken for probe dns lookup in seconds",
        "probe_ip_protocol" => "Specifies whether probe ip protocol is IP4 or IP6",
        "probe_ip_addr_hash" => "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        "probe_failed_due_to_regex" => "Indicates if probe failed due to regex",
        "probe_http_duration_seconds" => "Duration of http request by phase, summed over all redirects",
        "probe_http_content_length" => "Length of http content response",
        "probe_http_uncompressed_body_length" => "Length of uncompressed response body",
        "probe_http_redirects" => "The number of redirects",
        "probe_http_ssl" => "Indicates if SSL was used for the final redirect",
        "probe_http_status_code" => "Response HTTP status code",
        "probe_http_version" => "Returns the version of HTTP of the probe response",
        "probe_http_last_modified_timestamp_seconds" => "Returns the Last-Modified HTTP response header in unixtime",
        "probe_ssl_earliest_cert_expiry" => "Returns last SSL chain expiry in unixtime",
        "probe_ssl_last_chain_expiry_timestamp_seconds" => "Returns last SSL chain expiry in timestamp",
        "probe_ssl_last_chain_info" => "Contains SSL leaf certificate information",
        "probe_tls_version_info" => "Returns the TLS version used or NaN when unknown",
        "probe_dns_duration_seconds" => "Duration of DNS request by phase",
        "probe_dns_answer_rrs" => "Returns number of entries in the answer resource record list",
        "probe_dns_authority_rrs" => "Returns number of entries in the authority resource record list",
        "probe_dns_additional_rrs" => "Returns number of entries in the additional resource record list",
        "probe_dns_query_succeeded" => "Displays whether or not the query was executed successfully",
        "probe_dns_serial" => "Returns the serial number of the zone",
        "probe_icmp_duration_seconds" => "Duration of icmp request by phase",
        "probe_icmp_reply_hop_limit" => "Replied packet hop limit (TTL for ipv4)",
        _ => "",
    }
}

/// Prometheus text format 0.0.4 of `samples` (sorted by name), each family with HELP and TYPE;
/// `extra` labels (e.g. target, module of a scheduled probe) are put first on every series.
pub fn render(samples: &[Sample], extra: &[(&str, &str)], out: &mut String) {
    let mut last: Option<&str> = None;
    for s in samples {
        if last != Some(s.name) {
            let _ = writeln!(out, "# HELP {} {}", s.name, help(s.name));
            let _ = writeln!(out, "# TYPE {} gauge", s.name);
            last = Some(s.name);
        }
        out.push_str(s.name);
        let labels: Vec<(&str, &str)> =
            extra.iter().copied().chain(s.labels.iter().map(|(k, v)| (*k, v.as_str()))).collect();
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        out.push_str(&format_value(s.value));
        out.push('\n');
    }
}

/// A value as Go's `strconv.FormatFloat(v, 'g', -1, 64)` would print it, near enough to read the
/// same: exact integers without a fraction, `NaN`, `+Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        let mut b = ryu::Buffer::new();
        let s = b.format(v);
        s.strip_suffix(".0").unwrap_or(s).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hash_is_blackbox_exporters() {
        // Value printed by blackbox_exporter 0.23 for 127.0.0.1.
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509.0);
    }

    #[test]
    fn values_print_like_go() {
        assert_eq!(format_value(200.0), "200");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(-62135596800.0), "-62135596800");
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("127.0.0.1:53"), Some(("127.0.0.1", 53)));
        assert_eq!(split_host_port("[::1]:53"), Some(("::1", 53)));
        assert_eq!(split_host_port("example.com"), None);
    }
}
