//! What a prober records as it goes (gauges, a log, the failure, the certificates it saw) and the
//! inputs of a probe beyond its module.

use serde::Serialize;
use std::time::Instant;

/// Go's `time.Time{}.Unix()`: what blackbox_exporter reports for "no verified chain".
pub const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// One gauge value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Why a probe failed, short (a label value) and long (for people).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    /// One of: `resolve`, `connect`, `tls`, `timeout`, `http_status`, `http_version`, `request`,
    /// `body_regex`, `header_regex`, `ssl`, `not_ssl`, `body_read`, `body_too_large`,
    /// `decompress`, `expect_regex`, `send`, `read`, `dns_query`, `dns_rcode`, `dns_rrs`,
    /// `icmp_socket`, `icmp_reply`, `unsupported_prober`, `target`.
    pub reason: &'static str,
    pub message: String,
}

/// What a prober writes as it goes.
#[derive(Debug)]
pub struct Recorder {
    pub(super) samples: Vec<Sample>,
    pub(super) log: Vec<String>,
    pub(super) started: Instant,
    pub(super) failure: Option<Failure>,
    /// Certificate details for people (the CLI), when a TLS handshake was attempted.
    pub certificates: Option<ChainReport>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder { samples: Vec::new(), log: Vec::new(), started: Instant::now(), failure: None, certificates: None }
    }

    /// Sets (or adds) the gauge `name` without labels.
    pub fn set(&mut self, name: &'static str, value: f64) {
        self.set_labels(name, Vec::new(), value);
    }

    /// Sets (or adds) the gauge `name{labels}`.
    pub fn set_labels(&mut self, name: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
        match self.samples.iter_mut().find(|s| s.name == name && s.labels == labels) {
            Some(s) => s.value = value,
            None => self.samples.push(Sample { name, labels, value }),
        }
    }

    /// Adds to a gauge (created at 0).
    pub fn add_labels(&mut self, name: &'static str, labels: Vec<(&'static str, String)>, delta: f64) {
        match self.samples.iter_mut().find(|s| s.name == name && s.labels == labels) {
            Some(s) => s.value += delta,
            None => self.samples.push(Sample { name, labels, value: delta }),
        }
    }

    /// The value of a gauge without labels, if set.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.samples.iter().find(|s| s.name == name && s.labels.is_empty()).map(|s| s.value)
    }

    /// A log line for `debug=true` and the CLI.
    pub fn log(&mut self, msg: impl Into<String>) {
        let at = self.started.elapsed().as_secs_f64();
        self.log.push(format!("{at:>9.6}s {}", msg.into()));
    }

    /// Records why the probe failed (the first reason wins) and returns false, for `return rec.fail(..)`.
    pub fn fail(&mut self, reason: &'static str, message: impl Into<String>) -> bool {
        let message = message.into();
        self.log(format!("probe failed ({reason}): {message}"));
        self.failure.get_or_insert(Failure { reason, message });
        false
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// Extra inputs of a probe beyond the module.
#[derive(Clone, Debug, Default)]
pub struct ProbeParams {
    /// `hostname=` of `/probe`: the HTTP `Host` header and TLS server name.
    pub hostname: Option<String>,
}

/// One certificate, for people and for `probe_ssl_last_chain_info`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CertReport {
    /// As Go's `pkix.Name.String()` prints it (`CN=example.com,O=Example`).
    pub subject: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    pub fingerprint_sha256: String,
}

/// What a handshake showed of the server's certificates.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChainReport {
    /// As presented, leaf first.
    pub presented: Vec<CertReport>,
    /// The chain as verified, up to the trust anchor when it is known (empty: not verified).
    pub verified_chain: Vec<CertReport>,
    /// Why verification failed, if it did.
    pub verify_error: Option<String>,
    /// `TLS 1.2`, `TLS 1.3`, once the handshake completed.
    pub version: Option<String>,
    /// The negotiated cipher suite (IANA name).
    pub cipher: Option<String>,
}

impl ChainReport {
    /// Earliest `notAfter` of the presented certificates.
    pub fn earliest_expiry(&self) -> Option<i64> {
        self.presented.iter().map(|c| c.not_after).min()
    }

    /// blackbox_exporter's last-chain expiry (Go's zero time without a verified chain).
    pub fn last_chain_expiry(&self) -> f64 {
        self.verified_chain.iter().map(|c| c.not_after).min().map_or(GO_ZERO_TIME, |t| t as f64)
    }
}
