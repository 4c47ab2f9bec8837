//! VictoriaMetrics (Debian's `victoria-metrics`, single-node) for the remote-write tests: found,
//! started on a loopback port with its own storage directory, killed on drop (its log printed
//! when a test fails), restartable on the same port and storage; raw samples read back through
//! `/api/v1/export`.

use super::{ChildGuard, free_port};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `$VICTORIA_METRICS`, else `victoria-metrics` on `PATH`, else Debian's path. `None` (with a
/// notice) when missing; a failure when `CI` is set.
pub fn binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("VICTORIA_METRICS") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).map(|p| p.join("victoria-metrics")).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/bin/victoria-metrics")])
            .collect(),
    };
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `victoria-metrics` is not installed (apt-get install victoria-metrics)");
        }
        eprintln!(
            "SKIPPED: `victoria-metrics` is not installed (apt-get install victoria-metrics); with CI set this fails"
        );
    }
    found
}

/// One VictoriaMetrics process on 127.0.0.1.
pub struct VictoriaMetrics {
    pub port: u16,
    binary: PathBuf,
    child: Option<ChildGuard>,
    dir: tempfile::TempDir,
}

/// One series as exported: its labels and its raw samples.
pub type Exported = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

impl VictoriaMetrics {
    pub async fn start(binary: &Path) -> VictoriaMetrics {
        let dir = tempfile::Builder::new().prefix("promfed-e2e-vm-").tempdir().expect("temp dir");
        let mut vm = VictoriaMetrics { port: 0, binary: binary.to_owned(), child: None, dir };
        for attempt in 1..=5 {
            vm.port = free_port();
            if vm.launch().await {
                return vm;
            }
            eprintln!("victoria-metrics: port {} not usable (attempt {attempt})", vm.port);
        }
        panic!("victoria-metrics did not start; log:\n{}", vm.log());
    }

    /// Starts it again after [`VictoriaMetrics::kill`], same port and storage.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "victoria-metrics is still running");
        for _ in 0..10 {
            if self.launch().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("victoria-metrics did not restart on port {}; log:\n{}", self.port, self.log());
    }

    /// SIGKILLs it (a crash, or a receiver outage).
    pub fn kill(&mut self) {
        drop(self.child.take());
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("vm.log")
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn launch(&mut self) -> bool {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let child = Command::new(&self.binary)
            .arg(format!("-storageDataPath={}", self.dir.path().join("data").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg("-retentionPeriod=1d")
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        self.child = Some(ChildGuard::new(child));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.as_mut().is_some_and(ChildGuard::exited) {
                self.child = None;
                return false;
            }
            if let Ok(r) = client.get(format!("{}/health", self.url())).send().await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child = None;
        false
    }

    /// Every raw sample of the series matching `selector` (after making recent pushes
    /// searchable), by label set, in timestamp order as stored (duplicates kept).
    pub async fn export(&self, selector: &str) -> Exported {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let flush = client.get(format!("{}/internal/force_flush", self.url())).send().await.expect("force_flush");
        assert!(flush.status().is_success(), "force_flush: {}", flush.status());
        let url = format!("{}/api/v1/export", self.url());
        let body = client
            .get(&url)
            .query(&[("match[]", selector)])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        let mut out = Exported::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("export line {line}: {e}"));
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let ts = v["timestamps"].as_array().expect("timestamps");
            let vals = v["values"].as_array().expect("values");
            let samples = out.entry(labels).or_default();
            for (t, x) in ts.iter().zip(vals) {
                samples.push((t.as_i64().expect("timestamp"), x.as_f64().unwrap_or(f64::NAN)));
            }
        }
        for s in out.values_mut() {
            s.sort_by_key(|&(t, _)| t);
        }
        out
    }
}

impl VictoriaMetrics {
    /// [`VictoriaMetrics::export`] once it stops changing: rows become searchable about a
    /// second after they arrive, so two reads a second apart must agree (bounded: 20 s).
    pub async fn settled_export(&self, selector: &str) -> Exported {
        let total = |e: &Exported| e.values().map(Vec::len).sum::<usize>();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = self.export(selector).await;
        loop {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let next = self.export(selector).await;
            if total(&next) == total(&last) || Instant::now() > deadline {
                return next;
            }
            last = next;
        }
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- last lines of victoria-metrics' log ---\n{}\n---", self.log());
        }
    }
}

/// `vmalert` from Debian's victoria-metrics package, or `None` (with a notice) when it is not
/// installed; under CI a missing binary is a failure.
pub fn vmalert_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|p| p.join("vmalert")).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin/vmalert")])
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `vmalert` is not installed (apt-get install victoria-metrics)");
        }
        eprintln!("SKIPPED: `vmalert` is not installed (apt-get install victoria-metrics); with CI set this fails");
    }
    found
}
