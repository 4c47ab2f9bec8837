//! Helpers shared by the integration tests: a throw-away PKI, HTTPS clients, free loopback ports,
//! real Prometheus processes that are killed when dropped (also when a test panics), bounded
//! polling, and parsing of `/federate` bodies into comparable series maps.
//!
//! Every address is on 127.0.0.1; every wait has a deadline and an iteration cap.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod content;
#[cfg(feature = "ec2")]
pub mod moto;
pub mod raw_http;
pub mod vm;

use promfed::parse::{parse_protobuf_delimited, parse_text};
use promfed::series::{BatchBuilder, Identity};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Sends promfed's log to the test's captured output (shown when a test fails).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new("promfed=info"))
        .try_init();
}

/// Wall-clock time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// Wall-clock time in seconds since the epoch, as Prometheus' API takes it.
pub fn now_secs() -> f64 {
    now_ms() as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Prometheus binary

/// The `prometheus` binary, or `None` (with a printed notice) when it is not installed.
///
/// `$PROMETHEUS` names the binary to use (another version, or a missing path to check the
/// skip); otherwise `prometheus` is looked up on `PATH`, then at Debian's `/usr/bin/prometheus`.
/// Under CI (`CI` set) a missing binary is a failure, not a skip: a green run must mean the
/// end-to-end tests ran.
pub fn prometheus_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("PROMETHEUS") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|p| p.join("prometheus")).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/prometheus")])
            .collect(),
    };
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but `prometheus` is not installed (apt-get install prometheus): this test must run in CI"
            );
        }
        eprintln!("SKIPPED: `prometheus` is not installed (apt-get install prometheus); with CI set this fails");
    }
    found
}

/// Debian's `promtool` (from the `prometheus` package), or `None` (with a printed notice) when it
/// is not installed. `$PROMTOOL` names another binary. Under CI a missing binary is a failure,
/// as for [`prometheus_binary`].
pub fn promtool_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("PROMTOOL") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|p| p.join("promtool")).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/promtool")])
            .collect(),
    };
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `promtool` is not installed (apt-get install prometheus): this test must run in CI");
        }
        eprintln!("SKIPPED: `promtool` is not installed (apt-get install prometheus); with CI set this fails");
    }
    found
}

/// Debian's `prometheus-blackbox-exporter` (0.23), or `None` (with a printed notice) when it is
/// not installed. `$BLACKBOX_EXPORTER` names another binary. Under CI a missing binary is a
/// failure, as for [`prometheus_binary`].
pub fn blackbox_exporter_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("BLACKBOX_EXPORTER") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .flat_map(|p| [p.join("prometheus-blackbox-exporter"), p.join("blackbox_exporter")])
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/prometheus-blackbox-exporter")])
            .collect(),
    };
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but blackbox_exporter is not installed (apt-get install prometheus-blackbox-exporter): \
                 this test must run in CI"
            );
        }
        eprintln!(
            "SKIPPED: blackbox_exporter is not installed (apt-get install prometheus-blackbox-exporter); with CI set this fails"
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process killed (SIGKILL) and reaped when dropped, including during a panic's unwind.
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard { child }
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // `Child::kill` is SIGKILL on Unix; `wait` reaps it so no zombie is left behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0 and released). Someone else
/// may take it before it is used: callers retry on "address already in use".
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("local addr").port()
}

/// Why a Prometheus did not come up.
#[derive(Debug)]
pub enum StartFailure {
    /// Its port was taken between [`free_port`] and its bind.
    PortInUse,
    Other(String),
}

/// One real Prometheus server on 127.0.0.1 with its own temporary directory (config, rule
/// files, TSDB, log). Dropping it kills the process and removes the directory.
pub struct Prometheus {
    pub name: String,
    pub port: u16,
    binary: PathBuf,
    /// Command-line flags beyond the ones every test needs.
    args: Vec<String>,
    /// Served over HTTPS (a `--web.config.file` with this certificate and key).
    tls: bool,
    child: Option<ChildGuard>,
    // Declared after `child` so the process is gone before its directory is removed.
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Writes `config` as `prometheus.yml` and each `(name, contents)` of `files` beside it
    /// (`config` refers to them by name), starts Prometheus on a free port, and waits for
    /// `/-/ready`. Retries with another port when the chosen one was taken meanwhile.
    pub async fn start(binary: &Path, name: &str, config: &str, files: &[(&str, &str)]) -> Prometheus {
        Self::start_with_args(binary, name, config, files, &[]).await
    }

    /// [`Prometheus::start`] with more flags, e.g. `--web.enable-remote-write-receiver`.
    pub async fn start_with_args(
        binary: &Path,
        name: &str,
        config: &str,
        files: &[(&str, &str)],
        args: &[&str],
    ) -> Prometheus {
        Self::start_full(binary, name, config, files, args, None).await
    }

    /// [`Prometheus::start_with_args`] serving HTTPS with `tls` = (certificate, key) files.
    pub async fn start_full(
        binary: &Path,
        name: &str,
        config: &str,
        files: &[(&str, &str)],
        args: &[&str],
        tls: Option<(&Path, &Path)>,
    ) -> Prometheus {
        let dir = tempfile::Builder::new().prefix(&format!("promfed-e2e-{name}-")).tempdir().expect("temp dir");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for (file, contents) in files {
            std::fs::write(dir.path().join(file), contents).expect("write a Prometheus file");
        }
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let mut p = Prometheus {
            name: name.to_owned(),
            port: 0,
            binary: binary.to_owned(),
            args,
            tls: false,
            child: None,
            dir,
        };
        if let Some((cert, key)) = tls {
            let web =
                format!("tls_server_config: {{cert_file: \"{}\", key_file: \"{}\"}}\n", cert.display(), key.display());
            std::fs::write(p.dir.path().join("web.yml"), web).expect("write web.yml");
            p.args.push("--web.config.file=web.yml".into());
            p.tls = true;
        }
        p.start_on_a_free_port().await;
        p
    }

    /// [`Prometheus::start`] with its storage first filled by `promtool tsdb
    /// create-blocks-from openmetrics` from `openmetrics` (a body ending in `# EOF`): hours of
    /// history in seconds. Samples must lie within the last hour (the retention these
    /// processes run with).
    pub async fn start_backfilled(binary: &Path, name: &str, config: &str, openmetrics: &str) -> Prometheus {
        let dir = tempfile::Builder::new().prefix(&format!("promfed-e2e-{name}-")).tempdir().expect("temp dir");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let input = dir.path().join("backfill.om");
        std::fs::write(&input, openmetrics).expect("write the OpenMetrics input");
        let promtool = promtool_binary().expect("promtool comes with prometheus");
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(dir.path().join("data"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool tsdb create-blocks-from openmetrics failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut p = Prometheus {
            name: name.to_owned(),
            port: 0,
            binary: binary.to_owned(),
            args: Vec::new(),
            tls: false,
            child: None,
            dir,
        };
        p.start_on_a_free_port().await;
        p
    }

    async fn start_on_a_free_port(&mut self) {
        let p = self;
        let name = p.name.clone();
        for attempt in 1..=5 {
            p.port = free_port();
            match p.launch().await {
                Ok(()) => return,
                Err(StartFailure::PortInUse) => eprintln!("{name}: port {} was taken (attempt {attempt})", p.port),
                Err(StartFailure::Other(e)) => panic!("{name} did not start: {e}"),
            }
        }
        panic!("{name}: no free port after 5 attempts");
    }

    /// Starts it again after [`Prometheus::kill`], on the same port and with the same storage.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        for attempt in 1..=10 {
            match self.launch().await {
                Ok(()) => return,
                Err(StartFailure::PortInUse) => {
                    eprintln!("{}: port {} still in use (attempt {attempt}); retrying", self.name, self.port);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(StartFailure::Other(e)) => panic!("{} did not restart: {e}", self.name),
            }
        }
        panic!("{}: could not restart on port {}", self.name, self.port);
    }

    /// SIGKILLs the process (as a crash would) and reaps it.
    pub fn kill(&mut self) {
        drop(self.child.take());
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let Ok(f) = std::fs::File::open(self.log_path()) else { return String::new() };
        let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    async fn launch(&mut self) -> Result<(), StartFailure> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| StartFailure::Other(format!("log file: {e}")))?;
        let log_size_before = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(&self.binary)
            .arg(format!("--config.file={}", self.dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", self.dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--log.level=info")
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| StartFailure::Other(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| StartFailure::Other(format!("spawn {}: {e}", self.binary.display())))?;
        self.child = Some(ChildGuard::new(child));
        // Readiness only: the certificate itself is what the tests check, elsewhere.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .tls_danger_accept_invalid_certs(self.tls)
            .build()
            .expect("client");
        let ready = format!("{}/-/ready", self.url());
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..600 {
            if Instant::now() > deadline {
                break;
            }
            if self.child.as_mut().is_some_and(ChildGuard::exited) {
                self.child = None;
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let this_run = log.get(log_size_before as usize..).unwrap_or(&log);
                if this_run.contains("address already in use") {
                    return Err(StartFailure::PortInUse);
                }
                return Err(StartFailure::Other(format!("exited early; log:\n{}", self.log_tail(30))));
            }
            if let Ok(r) = client.get(&ready).send().await
                && r.status() == 200
            {
                eprintln!(
                    "{} ready on {} (pid {})",
                    self.name,
                    self.url(),
                    self.child.as_ref().map_or(0, ChildGuard::id)
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child = None;
        Err(StartFailure::Other(format!("not ready within 30s; log:\n{}", self.log_tail(30))))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- last lines of {}'s log ---\n{}\n---", self.name, self.log_tail(15));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus HTTP API

/// A small client of Prometheus' HTTP API.
pub struct PromApi {
    pub base: String,
    client: reqwest::Client,
}

impl PromApi {
    pub fn new(base: String) -> Self {
        PromApi { base, client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client") }
    }

    async fn get_json(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let url = format!("{}{path}?{query}", self.base);
        let resp = self.client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {status}: not JSON ({e}): {body}"));
        assert_eq!(json["status"], "success", "GET {url}: {status}: {body}");
        json["data"]["result"].clone()
    }

    /// `/api/v1/query` at now: the `result` array.
    pub async fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let v = self.get_json("/api/v1/query", &[("query", q)]).await;
        v.as_array().cloned().unwrap_or_else(|| panic!("query {q}: result is not an array: {v}"))
    }

    /// `/api/v1/query_range`: the `result` array (a matrix).
    pub async fn query_range(&self, q: &str, start: f64, end: f64, step: f64) -> Vec<serde_json::Value> {
        let (start, end, step) = (format!("{start:.3}"), format!("{end:.3}"), format!("{step}"));
        let v = self
            .get_json("/api/v1/query_range", &[("query", q), ("start", &start), ("end", &end), ("step", &step)])
            .await;
        v.as_array().cloned().unwrap_or_else(|| panic!("query_range {q}: result is not an array: {v}"))
    }

    /// A sample line of the server's own `/metrics` (the value of the first series named `name`).
    pub async fn self_metric(&self, name: &str) -> Option<f64> {
        let body = self.client.get(format!("{}/metrics", self.base)).send().await.ok()?.text().await.ok()?;
        metric_value(&body, name, &[])
    }
}

/// The `(timestamp, value)` pairs of one series of a matrix or range-vector result.
pub fn samples_of(series: &serde_json::Value) -> Vec<(f64, f64)> {
    series["values"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|p| {
                    let t = p[0].as_f64().expect("sample timestamp");
                    let v: f64 = p[1].as_str().expect("sample value").parse().expect("numeric value");
                    (t, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the first sample of `name` whose labels include every pair of `labels`, in a
/// text or OpenMetrics exposition body.
pub fn metric_value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labelset, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let (ls, v) = r.split_once("} ")?;
                (ls, v)
            }
            None => ("", rest.strip_prefix(' ')?),
        };
        labels.iter().all(|(k, v)| labelset.contains(&format!("{k}=\"{v}\""))).then_some(())?;
        value.split_whitespace().next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------------------------
// Bounded polling

/// Polls `check` every `every` until it returns `Some`, for at most `timeout` (and at most
/// `timeout / every + 1` attempts); panics naming `what` otherwise.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let attempts = (timeout.as_millis() / every.as_millis().max(1)) as usize + 1;
    for _ in 0..attempts {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(every).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A certificate and its key, both PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A throw-away CA issuing server and client certificates valid for `localhost` and the IP
/// `127.0.0.1` (an IP SAN: Prometheus, like any Go client, checks it).
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA") }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn server(&self, cn: &str) -> Pem {
        self.leaf(cn, ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client(&self, cn: &str) -> Pem {
        self.leaf(cn, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, cn: &str, usage: ExtendedKeyUsagePurpose) -> Pem {
        // rcgen turns a name that parses as an IP address into an IP SAN.
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("sign leaf");
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// `openssl req -x509 -newkey rsa:2048 -nodes -keyout STEM.key -out STEM.pem -subj /CN=x -addext
/// "subjectAltName=SAN"` in `dir`, as users make certificates for a Prometheus web config (a
/// self-signed certificate with `CA:TRUE`, issue 13). Returns (certificate, key).
pub fn openssl_self_signed(dir: &Path, stem: &str, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=x", "-addext", &format!("subjectAltName={san}")])
        .output()
        .expect("the openssl command line is needed (tests/run-all.sh installs it)");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// promfed's server certificate, key and CA written to a temporary directory.
pub struct TlsFiles {
    pub pki: Pki,
    pub dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn new() -> Self {
        let pki = Pki::new("promfed e2e CA");
        let server = pki.server("promfed");
        let dir = tempfile::Builder::new().prefix("promfed-e2e-tls-").tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).expect("write ca");
        std::fs::write(dir.path().join("server.pem"), &server.cert).expect("write cert");
        std::fs::write(dir.path().join("server.key"), &server.key).expect("write key");
        TlsFiles { pki, dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The `server.tls_server_config` block of a promfed config, in YAML flow style.
    pub fn server_config_yaml(&self, client_ca: bool) -> String {
        let mut s = format!("{{cert_file: \"{}\", key_file: \"{}\"", self.cert().display(), self.key().display());
        if client_ca {
            s.push_str(&format!(", client_ca_file: \"{}\"", self.ca().display()));
        }
        s.push('}');
        s
    }

    /// An HTTPS client trusting only this CA, presenting `identity` when given.
    pub fn client(&self, identity: Option<&Pem>) -> reqwest::Client {
        promfed::serve::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(self.pki.ca_pem().as_bytes()).expect("CA certificate");
        let mut builder = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(10));
        if let Some(id) = identity {
            let pem = format!("{}{}", id.cert, id.key);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("client identity"));
        }
        builder.build().expect("HTTPS client")
    }
}

// ---------------------------------------------------------------------------------------------
// /federate bodies

/// One series' sample as read from a `/federate` body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// The series of a text body keyed by promfed's canonical key with the labels `drop` removed.
pub fn text_series(body: &[u8], drop: &[&str]) -> BTreeMap<String, Sample> {
    let identity = Identity::new(drop.iter().map(|s| (*s).to_owned()).collect(), vec![], true);
    let mut builder = BatchBuilder::new(&identity, body.len());
    parse_text(body, &mut builder).expect("text body parses");
    collect(builder)
}

/// Like [`text_series`] for a length-delimited protobuf body.
pub fn protobuf_series(body: &[u8], drop: &[&str]) -> BTreeMap<String, Sample> {
    let identity = Identity::new(drop.iter().map(|s| (*s).to_owned()).collect(), vec![], true);
    let mut builder = BatchBuilder::new(&identity, body.len());
    parse_protobuf_delimited(body, &mut builder).expect("protobuf body parses");
    collect(builder)
}

fn collect(builder: BatchBuilder<'_>) -> BTreeMap<String, Sample> {
    let batch = builder.finish();
    batch
        .entries()
        .iter()
        .map(|e| (batch.key(e).to_owned(), Sample { value: e.value, timestamp_ms: e.timestamp_ms }))
        .collect()
}

/// A readable summary of how two key sets differ (at most `n` keys of each side).
pub fn key_diff<V>(left: &BTreeMap<String, V>, right: &BTreeMap<String, V>, n: usize) -> String {
    let only_left: Vec<&String> = left.keys().filter(|k| !right.contains_key(*k)).take(n).collect();
    let only_right: Vec<&String> = right.keys().filter(|k| !left.contains_key(*k)).take(n).collect();
    format!("only left ({} total): {only_left:#?}\nonly right: {only_right:#?}", left.len())
}

/// An in-process HTTP server on loopback answering `GET path` with a text-format body that
/// `body` makes at each request (a synthetic exporter, or a fake replica's `/federate`).
/// Stopped when dropped, unless detached.
pub struct TextServer {
    pub address: std::net::SocketAddr,
    stop: Option<CancellationToken>,
}

impl TextServer {
    pub async fn start(path: &'static str, body: impl Fn() -> String + Clone + Send + Sync + 'static) -> Self {
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("address");
        let app = axum::Router::new().route(
            path,
            axum::routing::get(move || {
                let body = body.clone();
                async move {
                    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body())
                        .into_response()
                }
            }),
        );
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        TextServer { address, stop: Some(stop) }
    }

    /// Keeps the server running until the test's runtime ends; returns its address.
    pub fn detach(mut self) -> std::net::SocketAddr {
        self.stop = None;
        self.address
    }
}

impl Drop for TextServer {
    fn drop(&mut self) {
        if let Some(stop) = &self.stop {
            stop.cancel();
        }
    }
}

/// A fake replica: `/federate` serving `body(now_ms)`, for as long as the test runs.
pub async fn fake_replica(body: impl Fn(u128) -> String + Clone + Send + Sync + 'static) -> std::net::SocketAddr {
    TextServer::start("/federate", move || {
        body(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis())
    })
    .await
    .detach()
}

/// promfed started from `yaml` (listening on 127.0.0.1:0 over plain HTTP), with its base URL.
pub async fn start_promfed(yaml: &str, name: &str) -> (promfed::run::Running, String) {
    let config = promfed::config::parse(yaml, name).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let base = format!("http://{}", running.address);
    (running, base)
}

/// Waits (15 s at most) until the `data` of promfed's `/api/v1/status/groups` at `base`
/// satisfies `ready`.
pub async fn wait_for_groups(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) {
    poll(what, Duration::from_secs(15), Duration::from_millis(100), || async {
        let s: serde_json::Value =
            client.get(format!("{base}/api/v1/status/groups")).send().await.ok()?.json().await.ok()?;
        ready(&s["data"]).then_some(())
    })
    .await;
}
