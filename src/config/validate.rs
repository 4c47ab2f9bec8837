//! Turns a [`FileConfig`] into a checked [`Config`], collecting *every* problem with its field
//! path and value before failing, and the risky-but-legal settings as warnings.

use super::discovery::{Ec2SdConfig, FileSdConfig};
use super::file::{Authorization, BasicAuth, FileConfig, RemoteWriteConfig, TlsConfig};
use super::target::{ReplicaSpec, Role};
use super::units::PromDuration;
use crate::relabel::Rule;
use crate::selector::SelectorSet;
use crate::series::is_label_name;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `groups[1].replicas[0].address`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// How promfed authenticates a caller or an upstream.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    /// An `Authorization: <scheme> <credentials>` header (`Bearer` by default).
    Header {
        scheme: String,
        credentials: String,
    },
}

/// Server TLS files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    /// True for `min_version: TLS13`.
    pub tls13_only: bool,
}

/// The checked server settings.
#[derive(Clone, Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub tls: Option<ServerTls>,
    pub auth: Credentials,
    pub max_connections: usize,
}

/// The checked settings of one group.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub scheme: String,
    pub path: String,
    pub selectors: Vec<String>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub lookback: Duration,
    pub hold_down: u32,
    pub replica_labels: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub honor_labels: bool,
    pub tls: TlsConfig,
    pub auth: Credentials,
    pub body_size_limit: u64,
    pub decompressed_size_limit: u64,
    /// The `Accept` header sent to the replicas, from `scrape_protocols`.
    pub accept: String,
    pub replicas: Vec<ReplicaSpec>,
    pub file_sd: Vec<FileSdConfig>,
    pub ec2_sd: Vec<Ec2SdConfig>,
    pub relabel: Vec<Rule>,
    /// A template whose discovery yields many groups (see `discover_groups`).
    pub discover_groups: bool,
}

/// Media types of the scrape protocols promfed reads, by their Prometheus names.
const PROTOCOLS: [(&str, &str); 2] = [
    ("PrometheusProto", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
];

/// The `Accept` header for protocols in preference order (q from 1.0 down, as Prometheus does).
pub fn accept_header(protocols: &[String]) -> String {
    let n = protocols.len();
    protocols
        .iter()
        .enumerate()
        .filter_map(|(i, p)| PROTOCOLS.iter().find(|(name, _)| name == p).map(|(_, media)| (i, media)))
        .map(|(i, media)| format!("{media};q={:.1}", 1.0 - (i as f64) / (n as f64 + 1.0)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The checked query API limits.
#[derive(Clone, Debug)]
pub struct Query {
    pub timeout: Duration,
    pub max_samples: u64,
    pub max_concurrency: usize,
    pub remote_read_concurrency: usize,
    pub max_bytes: u64,
    pub lookback: Duration,
}

/// The checked Remote-Write receiver settings.
#[derive(Clone, Debug)]
pub struct Receiver {
    pub max_body_size: usize,
    pub limits: super::receiver::Limits,
    pub lookback: Duration,
    pub ha: Option<HaTracker>,
}

/// The checked HA tracker settings.
#[derive(Clone, Debug)]
pub struct HaTracker {
    pub cluster_label: String,
    pub replica_label: String,
    pub settings: super::receiver::HaSettings,
    /// `fill_after` when `fill_from_non_elected` is on.
    pub fill_after: Option<Duration>,
}

/// The checked settings of one remote-write destination.
#[derive(Clone, Debug)]
pub struct RemoteWrite {
    pub name: String,
    pub url: String,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub relabel: Vec<Rule>,
    pub tls: TlsConfig,
    pub auth: Credentials,
    pub capacity: usize,
    pub min_shards: usize,
    pub max_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
    /// Samples older than this are not sent (`queue_config.sample_age_limit`; `None`: no limit).
    pub sample_age_limit: Option<Duration>,
    /// Metric metadata (`# TYPE`) sent every this long (`metadata_config`; `None`: not sent).
    pub metadata_interval: Option<Duration>,
    /// Most metadata entries in one request.
    pub metadata_max_per_send: usize,
    pub enable_http2: bool,
    pub follow_redirects: bool,
    /// `<data_dir>/remote_write/<name>`.
    pub queue_dir: PathBuf,
    pub queue_max_bytes: u64,
    pub queue_segment_bytes: u64,
    pub queue_sync_interval: Duration,
}

/// A configuration ready to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: Server,
    pub groups: Vec<Group>,
    pub receiver: Option<Receiver>,
    pub remote_write: Vec<RemoteWrite>,
    /// The `probes:` section, when present.
    pub probes: Option<super::probes::Probes>,
    pub query: Query,
    /// Legal but risky settings, to log at start.
    pub warnings: Vec<Problem>,
    /// The file as written (shown, secrets redacted, by `/api/v1/status/config`).
    pub file: std::sync::Arc<FileConfig>,
    /// The command line's flags, by Prometheus-style name (`/api/v1/status/flags`); set by the
    /// command that starts promfed, kept over reloads.
    pub flags: std::collections::BTreeMap<String, String>,
}

struct Checker {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// False for `check-config --syntax-only`: the files the config names are not read.
    files: bool,
}

impl Checker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem { path: path.into(), message: message.into() });
    }

    /// Reads and parses the PEM certificates of `file` (`path` names it in the config); warns of
    /// any expiring within 30 days.
    fn certificates(&mut self, path: &str, file: &Path) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        if !self.files {
            return None;
        }
        match super::pem::certificates(file, std::time::SystemTime::now()) {
            Ok((certs, findings)) => {
                for e in findings.expiring {
                    self.warn(path, e);
                }
                Some(certs)
            }
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    /// Reads and parses a certificate and its key, and checks that they belong together.
    fn key_pair(&mut self, path: &str, cert_file: &Path, key_file: &Path) {
        let certs = self.certificates(&format!("{path}.cert_file"), cert_file);
        if !self.files {
            return;
        }
        match super::pem::private_key(key_file) {
            Ok(key) => {
                if let Some(certs) = certs
                    && let Err(e) = super::pem::key_matches(&certs, &key)
                {
                    self.problem(format!("{path}.key_file"), format!("{}: {e}", key_file.display()));
                }
            }
            Err(e) => self.problem(format!("{path}.key_file"), e),
        }
    }

    /// Checks the files of a client `tls_config` at `path`.
    fn tls_files(&mut self, path: &str, tls: &TlsConfig) {
        if let Some(ca) = &tls.ca_file {
            self.certificates(&format!("{path}.ca_file"), ca);
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => self.key_pair(path, cert, key),
            (None, None) => {}
            _ => self.problem(path, "cert_file and key_file go together"),
        }
        if tls.insecure_skip_verify {
            self.warn(format!("{path}.insecure_skip_verify"), "the peer's certificates are not verified");
        }
    }

    fn read_secret(&mut self, path: &str, file: &Path) -> String {
        if !self.files {
            return String::new();
        }
        match std::fs::read_to_string(file) {
            Ok(s) => s.trim_end_matches(['\n', '\r']).to_owned(),
            Err(e) => {
                self.problem(path, format!("cannot read {}: {e}", file.display()));
                String::new()
            }
        }
    }

    fn credentials(&mut self, path: &str, basic: &Option<BasicAuth>, authz: &Option<Authorization>) -> Credentials {
        match (basic, authz) {
            (Some(_), Some(_)) => {
                self.problem(path, "basic_auth and authorization are mutually exclusive");
                Credentials::None
            }
            (Some(b), None) => {
                let password = match (&b.password, &b.password_file) {
                    (Some(p), None) => p.clone(),
                    (None, Some(f)) => self.read_secret(&format!("{path}.basic_auth.password_file"), f),
                    _ => {
                        self.problem(
                            format!("{path}.basic_auth"),
                            "exactly one of password and password_file is required",
                        );
                        String::new()
                    }
                };
                if b.username.is_empty() {
                    self.problem(format!("{path}.basic_auth.username"), "must not be empty");
                }
                Credentials::Basic { username: b.username.clone(), password }
            }
            (None, Some(a)) => {
                let credentials = match (&a.credentials, &a.credentials_file) {
                    (Some(c), None) => c.clone(),
                    (None, Some(f)) => self.read_secret(&format!("{path}.authorization.credentials_file"), f),
                    _ => {
                        self.problem(
                            format!("{path}.authorization"),
                            "exactly one of credentials and credentials_file is required",
                        );
                        String::new()
                    }
                };
                if a.auth_type.eq_ignore_ascii_case("basic") {
                    self.problem(format!("{path}.authorization.type"), "use basic_auth for Basic credentials");
                }
                Credentials::Header { scheme: a.auth_type.clone(), credentials }
            }
            (None, None) => Credentials::None,
        }
    }
}

/// Checks `file`, returning the runnable config or every problem found.
pub fn validate(file: &FileConfig) -> Result<Config, Vec<Problem>> {
    check(file, true)
}

/// Checks `file` as [`validate`] does, but without reading the files it names (certificates,
/// keys, password and credential files): `check-config --syntax-only`, for a config written for
/// another machine. What it returns is for looking at, not running (its secrets are empty).
pub fn validate_syntax(file: &FileConfig) -> Result<Config, Vec<Problem>> {
    check(file, false)
}

fn check(file: &FileConfig, files: bool) -> Result<Config, Vec<Problem>> {
    let mut c = Checker { problems: Vec::new(), warnings: Vec::new(), files };
    let g = &file.global;

    // Server.
    let s = &file.server;
    let listen = match super::listen::parse(&s.listen_address) {
        Ok(a) => a,
        Err(e) => {
            c.problem("server.listen_address", e);
            SocketAddr::from(([0, 0, 0, 0], 9443))
        }
    };
    let tls = s.tls_server_config.as_ref().map(|t| {
        c.key_pair("server.tls_server_config", &t.cert_file, &t.key_file);
        if let Some(ca) = &t.client_ca_file {
            c.certificates("server.tls_server_config.client_ca_file", ca);
        }
        let tls13_only = match t.min_version.as_deref() {
            None | Some("TLS12") => false,
            Some("TLS13") => true,
            Some(v) => {
                c.problem("server.tls_server_config.min_version", format!("{v:?} is not TLS12 or TLS13"));
                false
            }
        };
        ServerTls {
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            client_ca_file: t.client_ca_file.clone(),
            tls13_only,
        }
    });
    if tls.is_none() {
        c.warn("server.tls_server_config", "not set: serving plain HTTP");
    }
    let auth = c.credentials("server", &s.basic_auth, &s.authorization);
    if s.max_connections == 0 {
        c.problem("server.max_connections", "must be at least 1");
    }

    // Global defaults.
    for (i, l) in g.replica_labels.iter().enumerate() {
        if !is_label_name(l.as_bytes()) {
            c.problem(format!("global.replica_labels[{i}]"), format!("{l:?} is not a valid label name"));
        }
    }
    if g.scrape_interval.0.is_zero() {
        c.problem("global.scrape_interval", "must be more than 0");
    }
    // Prometheus' rules: a global timeout written longer than the interval is an error; one left
    // out is 10s or the interval, whichever is shorter; a group's left out is the global one,
    // capped at the group's interval.
    let global_timeout = match g.scrape_timeout {
        Some(t) if t.0.is_zero() => {
            c.problem("global.scrape_timeout", "must be more than 0");
            t.0
        }
        Some(t) => {
            if t.0 > g.scrape_interval.0 {
                c.problem(
                    "global.scrape_timeout",
                    format!("{t} is longer than global.scrape_interval {}", g.scrape_interval),
                );
            }
            t.0
        }
        None => super::file::default_scrape_timeout().0.min(g.scrape_interval.0),
    };
    if g.body_size_limit.0 == 0 {
        c.problem("global.body_size_limit", "must be more than 0");
    }
    if g.decompressed_size_limit.0 < g.body_size_limit.0 {
        c.problem("global.decompressed_size_limit", "must be at least body_size_limit");
    }

    let receiver = file.remote_write_receiver.as_ref().map(|r| receiver(&mut c, r, g.lookback_delta.0));
    let mut remote_names = HashSet::new();
    let remote_write: Vec<RemoteWrite> = file
        .remote_write
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rw = remote_write(&mut c, &format!("remote_write[{i}]"), r, &file.data_dir);
            if !remote_names.insert(rw.name.clone()) {
                c.problem(format!("remote_write[{i}].name"), format!("{:?} is used by another destination", rw.name));
            }
            rw
        })
        .collect();

    let probes = file.probes.as_ref().and_then(|p| match p.check() {
        Ok(probes) => {
            for u in &probes.unsupported {
                c.warn(u.clone(), "accepted for blackbox_exporter compatibility but not supported: ignored");
            }
            Some(probes)
        }
        Err(problems) => {
            for (path, message) in problems {
                c.problem(path, message);
            }
            None
        }
    });

    if let Some(d) = &file.dashboards {
        for (path, message) in d.problems() {
            c.problem(path, message);
        }
    }

    // Groups.
    if file.groups.is_empty() && receiver.is_none() && file.probes.is_none() && file.dashboards.is_none() {
        c.problem("groups", "no group is configured (and no remote_write_receiver, probes or dashboards)");
    }
    let mut names = HashSet::new();
    let mut groups = Vec::new();
    for (gi, gc) in file.groups.iter().enumerate() {
        let p = format!("groups[{gi}]");
        if gc.name.is_empty() {
            c.problem(format!("{p}.name"), "must not be empty");
        } else if !names.insert(gc.name.as_str()) {
            c.problem(format!("{p}.name"), format!("{:?} is used by another group", gc.name));
        }
        if gc.scheme != "http" && gc.scheme != "https" {
            c.problem(format!("{p}.scheme"), format!("{:?} is not http or https", gc.scheme));
        }
        if !gc.path.starts_with('/') {
            c.problem(format!("{p}.path"), format!("{:?} must start with /", gc.path));
        }
        let selectors = gc.selectors.clone().unwrap_or_else(|| vec![r#"{__name__=~".+"}"#.to_owned()]);
        if selectors.is_empty() {
            c.problem(format!("{p}.match"), "at least one selector is required");
        }
        for (si, sel) in selectors.iter().enumerate() {
            if let Err(e) = SelectorSet::parse([sel.as_str()]) {
                c.problem(format!("{p}.match[{si}]"), e.to_string());
            }
        }
        let interval = gc.scrape_interval.unwrap_or(g.scrape_interval).0;
        let timeout = gc.scrape_timeout.map_or(global_timeout.min(interval), |t| t.0);
        let lookback = gc.lookback_delta.unwrap_or(g.lookback_delta).0;
        if interval.is_zero() && gc.scrape_interval.is_some() {
            c.problem(format!("{p}.scrape_interval"), "must be more than 0");
        }
        if timeout.is_zero() && gc.scrape_timeout.is_some() {
            c.problem(format!("{p}.scrape_timeout"), "must be more than 0");
        }
        if timeout > interval {
            c.problem(
                format!("{p}.scrape_timeout"),
                format!(
                    "{} is longer than the group's scrape_interval {}",
                    PromDuration(timeout),
                    PromDuration(interval)
                ),
            );
        }
        if lookback < interval * 2 {
            c.warn(
                format!("{p}.lookback_delta"),
                "shorter than two scrape intervals: one missed scrape makes series vanish",
            );
        }
        let replica_labels = gc.replica_labels.clone().unwrap_or_else(|| g.replica_labels.clone());
        for (i, l) in replica_labels.iter().enumerate() {
            if !is_label_name(l.as_bytes()) {
                c.problem(format!("{p}.replica_labels[{i}]"), format!("{l:?} is not a valid label name"));
            }
        }
        for (k, v) in &gc.labels {
            if !is_label_name(k.as_bytes()) || k.starts_with("__") {
                c.problem(format!("{p}.labels.{k}"), format!("{k:?} is not a valid label name"));
            } else if replica_labels.contains(k) {
                c.problem(format!("{p}.labels.{k}"), "is also a replica label, which is removed from every series");
            }
            if v.is_empty() {
                c.problem(format!("{p}.labels.{k}"), "an empty value would remove the label");
            }
        }
        let tls_config = gc.tls_config.clone().unwrap_or_default();
        c.tls_files(&format!("{p}.tls_config"), &tls_config);
        if gc.tls_config.is_some() && gc.scheme == "http" {
            c.warn(format!("{p}.tls_config"), "set, but scheme is http: it is not used");
        }
        let auth = c.credentials(&p, &gc.basic_auth, &gc.authorization);
        let body_size_limit = gc.body_size_limit.unwrap_or(g.body_size_limit).0;
        if body_size_limit == 0 {
            c.problem(format!("{p}.body_size_limit"), "must be more than 0");
        }
        let protocols =
            gc.scrape_protocols.clone().unwrap_or_else(|| PROTOCOLS.iter().map(|(n, _)| (*n).to_owned()).collect());
        if protocols.is_empty() {
            c.problem(format!("{p}.scrape_protocols"), "at least one protocol is required");
        }
        for (i, proto) in protocols.iter().enumerate() {
            if !PROTOCOLS.iter().any(|(n, _)| n == proto) {
                c.problem(
                    format!("{p}.scrape_protocols[{i}]"),
                    format!("{proto:?} is not PrometheusProto or PrometheusText0.0.4"),
                );
            } else if protocols[..i].contains(proto) {
                c.problem(format!("{p}.scrape_protocols[{i}]"), format!("{proto:?} is listed twice"));
            }
        }
        if gc.replicas.is_empty()
            && gc.static_configs.is_empty()
            && gc.file_sd_configs.is_empty()
            && gc.ec2_sd_configs.is_empty()
        {
            c.problem(format!("{p}.replicas"), "no replica is listed and no discovery is configured");
        }
        if gc.discover_groups && gc.file_sd_configs.is_empty() && gc.ec2_sd_configs.is_empty() {
            c.problem(format!("{p}.discover_groups"), "needs ec2_sd_configs or file_sd_configs");
        }
        if gc.discover_groups && !gc.static_configs.is_empty() {
            c.problem(
                format!("{p}.static_configs"),
                "a discover_groups template takes its replicas from discovery only",
            );
        }
        if gc.discover_groups && !gc.replicas.is_empty() {
            c.problem(format!("{p}.replicas"), "a discover_groups template takes its replicas from discovery only");
        }
        if !gc.file_sd_configs.is_empty() && !gc.ec2_sd_configs.is_empty() {
            c.problem(format!("{p}.ec2_sd_configs"), "use either ec2_sd_configs or file_sd_configs in one group");
        }
        for (i, e) in gc.ec2_sd_configs.iter().enumerate() {
            for (field, message) in e.problems() {
                let path = if field.is_empty() {
                    format!("{p}.ec2_sd_configs[{i}]")
                } else {
                    format!("{p}.ec2_sd_configs[{i}].{field}")
                };
                c.problem(path, message);
            }
        }
        for (i, f) in gc.file_sd_configs.iter().enumerate() {
            if f.files.is_empty() {
                c.problem(format!("{p}.file_sd_configs[{i}].files"), "at least one file pattern is required");
            }
            for (j, pattern) in f.files.iter().enumerate() {
                let ok = [".json", ".yml", ".yaml"].iter().any(|e| pattern.ends_with(e));
                if !ok || glob::Pattern::new(pattern).is_err() {
                    c.problem(
                        format!("{p}.file_sd_configs[{i}].files[{j}]"),
                        format!("{pattern:?} must be a glob ending in .json, .yml or .yaml"),
                    );
                }
            }
            if f.refresh_interval.0.is_zero() {
                c.problem(format!("{p}.file_sd_configs[{i}].refresh_interval"), "must be more than 0");
            }
        }
        let mut relabel = Vec::new();
        for (i, r) in gc.relabel_configs.iter().enumerate() {
            let problems = r.problems();
            for (field, message) in &problems {
                c.problem(format!("{p}.relabel_configs[{i}].{field}"), message);
            }
            if problems.is_empty() {
                match Rule::new(r.clone()) {
                    Ok(rule) => relabel.push(rule),
                    Err(e) => c.problem(format!("{p}.relabel_configs[{i}]"), e),
                }
            }
        }
        let from_statics = static_replicas(&mut c, &p, gc, &relabel);
        // Names within static_configs are unique already (the target rule rejects a repeat).
        let mut rnames: HashSet<&str> = from_statics.iter().map(|r| r.name.as_str()).collect();
        let mut primaries = from_statics.iter().filter(|r| r.role == Role::Primary).count();
        for (ri, r) in gc.replicas.iter().enumerate() {
            let rp = format!("{p}.replicas[{ri}]");
            if r.name.is_empty() {
                c.problem(format!("{rp}.name"), "must not be empty");
            } else if !rnames.insert(r.name.as_str()) {
                c.problem(format!("{rp}.name"), format!("{:?} is used by another replica of the group", r.name));
            }
            if !valid_address(&r.address) {
                c.problem(format!("{rp}.address"), format!("{:?} is not host:port", r.address));
            }
            if r.role == Role::Primary {
                primaries += 1;
            }
        }
        if primaries > 1 {
            c.problem(format!("{p}.replicas"), format!("{primaries} replicas have role primary; at most one may"));
        }
        if primaries == 0 && !(gc.replicas.is_empty() && from_statics.is_empty()) {
            c.warn(format!("{p}.replicas"), "no primary: the first listed replica is preferred");
        }
        groups.push(Group {
            name: gc.name.clone(),
            scheme: gc.scheme.clone(),
            path: gc.path.clone(),
            selectors,
            scrape_interval: interval,
            scrape_timeout: timeout,
            lookback,
            hold_down: gc.hold_down.unwrap_or(g.hold_down),
            replica_labels,
            labels: gc.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            honor_labels: gc.honor_labels,
            tls: tls_config,
            auth,
            body_size_limit,
            decompressed_size_limit: g.decompressed_size_limit.0.max(body_size_limit),
            accept: accept_header(&protocols),
            file_sd: gc.file_sd_configs.clone(),
            ec2_sd: gc.ec2_sd_configs.clone(),
            discover_groups: gc.discover_groups,
            relabel,
            replicas: gc
                .replicas
                .iter()
                .map(|r| ReplicaSpec { name: r.name.clone(), role: r.role, address: r.address.clone() })
                .chain(from_statics)
                .collect(),
        });
    }

    let query = query(&mut c, &file.query, g.lookback_delta.0);
    if c.problems.is_empty() {
        Ok(Config {
            server: Server { listen, tls, auth, max_connections: s.max_connections },
            groups,
            receiver,
            remote_write,
            probes,
            query,
            warnings: c.warnings,
            file: std::sync::Arc::new(file.clone()),
            flags: Default::default(),
        })
    } else {
        Err(c.problems)
    }
}

fn query(c: &mut Checker, q: &crate::config::file::QueryConfig, lookback: Duration) -> Query {
    for (field, zero) in [
        ("timeout", q.timeout.0.is_zero()),
        ("max_samples", q.max_samples == 0),
        ("max_concurrency", q.max_concurrency == 0),
        ("remote_read_concurrency", q.remote_read_concurrency == 0),
        ("max_bytes_per_query", q.max_bytes_per_query.0 == 0),
        ("lookback_delta", q.lookback_delta.is_some_and(|d| d.0.is_zero())),
    ] {
        if zero {
            c.problem(format!("query.{field}"), "must be more than 0");
        }
    }
    Query {
        timeout: q.timeout.0,
        max_samples: q.max_samples,
        max_concurrency: q.max_concurrency,
        remote_read_concurrency: q.remote_read_concurrency,
        max_bytes: q.max_bytes_per_query.0,
        lookback: q.lookback_delta.map_or(lookback, |d| d.0),
    }
}

fn receiver(c: &mut Checker, r: &crate::config::file::ReceiverConfig, lookback: Duration) -> Receiver {
    let p = "remote_write_receiver";
    let positive = |c: &mut Checker, field: &str, v: usize| {
        if v == 0 {
            c.problem(format!("{p}.{field}"), "must be more than 0");
        }
    };
    positive(c, "max_body_size", r.max_body_size.0 as usize);
    positive(c, "max_labels_per_series", r.max_labels_per_series);
    positive(c, "max_label_name_length", r.max_label_name_length);
    positive(c, "max_label_value_length", r.max_label_value_length);
    if r.max_decoded_size.0 < r.max_body_size.0 {
        c.problem(format!("{p}.max_decoded_size"), "must be at least max_body_size");
    }
    let lookback = r.lookback_delta.map_or(lookback, |d| d.0);
    if lookback.is_zero() {
        c.problem(format!("{p}.lookback_delta"), "must be more than 0");
    }
    let ha = r.ha_tracker.as_ref().map(|h| {
        let hp = format!("{p}.ha_tracker");
        for (field, label) in [("cluster_label", &h.cluster_label), ("replica_label", &h.replica_label)] {
            if !is_label_name(label.as_bytes()) {
                c.problem(format!("{hp}.{field}"), format!("{label:?} is not a valid label name"));
            }
        }
        if h.cluster_label == h.replica_label {
            c.problem(format!("{hp}.replica_label"), "must differ from cluster_label");
        }
        if h.failover_timeout.0 <= h.update_timeout.0 {
            c.problem(
                format!("{hp}.failover_timeout"),
                format!(
                    "{} must be longer than update_timeout ({}): the elected replica's time is only refreshed that often",
                    h.failover_timeout, h.update_timeout
                ),
            );
        }
        if h.max_clusters == 0 {
            c.problem(format!("{hp}.max_clusters"), "must be at least 1");
        }
        if h.fill_from_non_elected && h.fill_after.0.is_zero() {
            c.problem(format!("{hp}.fill_after"), "must be more than 0");
        }
        HaTracker {
            cluster_label: h.cluster_label.clone(),
            replica_label: h.replica_label.clone(),
            settings: super::receiver::HaSettings {
                update_timeout_ms: h.update_timeout.0.as_millis() as i64,
                failover_timeout_ms: h.failover_timeout.0.as_millis() as i64,
                max_clusters: h.max_clusters,
                forget_after_ms: 1_800_000,
            },
            fill_after: h.fill_from_non_elected.then_some(h.fill_after.0),
        }
    });
    Receiver {
        max_body_size: r.max_body_size.0 as usize,
        limits: super::receiver::Limits {
            max_decoded_bytes: r.max_decoded_size.0 as usize,
            max_labels_per_series: r.max_labels_per_series,
            max_label_name_length: r.max_label_name_length,
            max_label_value_length: r.max_label_value_length,
        },
        lookback,
        ha,
    }
}

/// Headers the protocol sets itself, refused in `headers` (as Prometheus refuses them).
const RESERVED_HEADERS: [&str; 7] = [
    "authorization",
    "content-encoding",
    "content-type",
    "host",
    "user-agent",
    "x-prometheus-remote-write-version",
    "content-length",
];

fn remote_write(c: &mut Checker, p: &str, r: &RemoteWriteConfig, data_dir: &Path) -> RemoteWrite {
    match reqwest::Url::parse(&r.url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(_) => c.problem(format!("{p}.url"), format!("{:?} is not an http or https URL with a host", r.url)),
        Err(e) => c.problem(format!("{p}.url"), format!("{:?} is not a URL: {e}", r.url)),
    }
    let name = match &r.name {
        Some(n) => {
            if n.is_empty()
                || n.starts_with('.')
                || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                c.problem(
                    format!("{p}.name"),
                    format!("{n:?} must be letters, digits, '_', '-' or '.' (it names the queue directory)"),
                );
            }
            n.clone()
        }
        // Prometheus names an unnamed destination by a hash of its config; the URL is enough
        // here, and keeps the queue when other settings change.
        None => format!("{:06x}", xxhash_rust::xxh3::xxh3_64(r.url.as_bytes()) & 0xff_ffff),
    };
    if r.remote_timeout.0.is_zero() {
        c.problem(format!("{p}.remote_timeout"), "must be more than 0");
    }
    let mut headers = Vec::new();
    for (k, v) in &r.headers {
        if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            c.problem(format!("{p}.headers.{k}"), "is set by promfed and cannot be overridden");
        } else if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(v).is_err() {
            c.problem(format!("{p}.headers.{k}"), "is not a valid HTTP header");
        } else {
            headers.push((k.clone(), v.clone()));
        }
    }
    let relabel = r
        .write_relabel_configs
        .iter()
        .enumerate()
        .filter_map(|(i, rc)| match Rule::new(rc.clone()) {
            Ok(rule) => Some(rule),
            Err(e) => {
                c.problem(format!("{p}.write_relabel_configs[{i}]"), e);
                None
            }
        })
        .collect();
    let tls = r.tls_config.clone().unwrap_or_default();
    c.tls_files(&format!("{p}.tls_config"), &tls);
    let auth = c.credentials(p, &r.basic_auth, &r.authorization);
    let q = &r.queue_config;
    let qp = format!("{p}.queue_config");
    for (field, v) in [
        ("capacity", q.capacity),
        ("min_shards", q.min_shards),
        ("max_shards", q.max_shards),
        ("max_samples_per_send", q.max_samples_per_send),
    ] {
        if v == 0 {
            c.problem(format!("{qp}.{field}"), "must be at least 1");
        }
    }
    if q.min_shards > q.max_shards {
        c.problem(format!("{qp}.min_shards"), format!("{} is more than max_shards {}", q.min_shards, q.max_shards));
    }
    if q.capacity < q.max_samples_per_send {
        c.warn(format!("{qp}.capacity"), "less than max_samples_per_send: requests will be smaller than allowed");
    }
    if q.batch_send_deadline.0.is_zero() {
        c.problem(format!("{qp}.batch_send_deadline"), "must be more than 0");
    }
    if q.min_backoff.0.is_zero() {
        c.problem(format!("{qp}.min_backoff"), "must be more than 0");
    }
    if q.max_backoff.0 < q.min_backoff.0 {
        c.problem(format!("{qp}.max_backoff"), format!("{} is less than min_backoff {}", q.max_backoff, q.min_backoff));
    }
    for field in r.not_supported() {
        c.warn(format!("{p}.{field}"), "accepted for Prometheus compatibility but not supported: ignored");
    }
    let mc = &r.metadata_config;
    if mc.send && mc.send_interval.0.is_zero() {
        c.problem(format!("{p}.metadata_config.send_interval"), "must be more than 0");
    }
    if mc.send && mc.max_samples_per_send == 0 {
        c.problem(format!("{p}.metadata_config.max_samples_per_send"), "must be at least 1");
    }
    let d = &r.durable_queue;
    let dp = format!("{p}.durable_queue");
    if d.segment_size.0 < 64 << 10 {
        c.problem(format!("{dp}.segment_size"), "must be at least 64KiB");
    }
    if d.max_size.0 < 2 * d.segment_size.0 {
        c.problem(format!("{dp}.max_size"), format!("must be at least two segments ({} bytes)", 2 * d.segment_size.0));
    }
    RemoteWrite {
        queue_dir: data_dir.join("remote_write").join(&name),
        name,
        url: r.url.clone(),
        timeout: r.remote_timeout.0,
        headers,
        relabel,
        tls,
        auth,
        capacity: q.capacity,
        min_shards: q.min_shards,
        max_shards: q.max_shards,
        max_samples_per_send: q.max_samples_per_send,
        batch_send_deadline: q.batch_send_deadline.0,
        min_backoff: q.min_backoff.0,
        max_backoff: q.max_backoff.0,
        retry_on_http_429: q.retry_on_http_429,
        sample_age_limit: (!q.sample_age_limit.0.is_zero()).then_some(q.sample_age_limit.0),
        metadata_interval: r.metadata_config.send.then_some(r.metadata_config.send_interval.0),
        metadata_max_per_send: r.metadata_config.max_samples_per_send,
        enable_http2: r.enable_http2,
        follow_redirects: r.follow_redirects,
        queue_max_bytes: d.max_size.0,
        queue_segment_bytes: d.segment_size.0,
        queue_sync_interval: d.sync_interval.0,
    }
}

/// The replicas of a group's `static_configs`: each target with its entry's labels and
/// `__address__`, relabeled and read as discovered targets are (one rule for every source); a
/// target that cannot become a replica is a problem here, where it is written.
fn static_replicas(c: &mut Checker, p: &str, gc: &super::file::GroupConfig, relabel: &[Rule]) -> Vec<ReplicaSpec> {
    let mut targets = Vec::new();
    for (si, sc) in gc.static_configs.iter().enumerate() {
        let sp = format!("{p}.static_configs[{si}]");
        if sc.targets.is_empty() {
            c.problem(format!("{sp}.targets"), "at least one target is required");
        }
        for name in sc.labels.keys() {
            if !is_label_name(name.as_bytes()) {
                c.problem(format!("{sp}.labels.{name}"), format!("{name:?} is not a valid label name"));
            }
        }
        for (ti, t) in sc.targets.iter().enumerate() {
            if !valid_address(t) {
                c.problem(format!("{sp}.targets[{ti}]"), format!("{t:?} is not host:port"));
                continue;
            }
            let mut labels = sc.labels.clone();
            labels.insert("__address__".to_owned(), t.clone());
            targets.push(labels);
        }
    }
    let (replicas, rejected) = crate::config::target::replicas(&targets, relabel);
    for r in rejected {
        c.problem(format!("{p}.static_configs"), format!("target {:?}: {}", r.address, r.reason));
    }
    replicas
}

/// `host:port` with a non-empty host and a numeric port (IPv6 hosts in brackets).
fn valid_address(a: &str) -> bool {
    let Some((host, port)) = a.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
}
