//! File-based discovery (`file_sd_configs`), Prometheus' format: JSON or YAML files holding a
//! list of `{targets: [host:port, …], labels: {…}}`, named by glob patterns, re-read when they
//! change (checked every few seconds) and on `refresh_interval`. A Terraform or Ansible run
//! simply writes such a file.
//!
//! As in Prometheus, each target gets `__address__` and `__meta_filepath`; a file that cannot be
//! read or parsed keeps the targets it had last time (the error is logged and counted), so a
//! half-written file never empties a group.

use super::source::{Announcer, Discoverer, DiscoveryFuture, TargetSet};
use crate::config::Group;
use crate::relabel::Labels;
use crate::telemetry::{MechanismLabels, Metrics};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::config::discovery::FileSdConfig;

/// A target group as written in a file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FileTargetGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reading a target file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("cannot read target file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("target file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("target file {path} has an unknown extension (want .json, .yml or .yaml)")]
    Extension { path: String },
}

/// Parses one target file into labelled targets.
pub fn read_file(path: &Path) -> Result<Vec<Labels>, FileSdError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileSdError::Read { path: shown.clone(), source })?;
    let groups: Vec<FileTargetGroup> = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text)
            .map_err(|e| FileSdError::Parse { path: shown.clone(), message: e.to_string() })?,
        Some("yml" | "yaml") => serde_saphyr::from_str(&text)
            .map_err(|e| FileSdError::Parse { path: shown.clone(), message: e.to_string() })?,
        _ => return Err(FileSdError::Extension { path: shown }),
    };
    let mut out = Vec::new();
    for g in groups {
        // As in Prometheus, a label with an empty value is no label.
        let group_labels: BTreeMap<String, String> = g.labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        for t in g.targets {
            let mut labels = group_labels.clone();
            labels.insert("__address__".into(), t);
            labels.insert("__meta_filepath".into(), shown.clone());
            out.push(labels);
        }
    }
    Ok(out)
}

/// The files the patterns name now, sorted.
pub fn expand(patterns: &[String]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        patterns.iter().filter_map(|p| glob::glob(p).ok()).flat_map(|paths| paths.filter_map(Result::ok)).collect();
    files.sort();
    files.dedup();
    files
}

/// Reads the files of one config, remembering per file the last good content and the
/// modification time it was read at.
#[derive(Debug, Default)]
pub struct FileWatcher {
    patterns: Vec<String>,
    seen: BTreeMap<PathBuf, (Option<SystemTime>, Vec<Labels>)>,
}

/// What a refresh found.
#[derive(Debug, Default)]
pub struct Refresh {
    /// Every target of every file (last good content for files that failed now).
    pub targets: Vec<Labels>,
    /// True when something differs from the previous refresh.
    pub changed: bool,
    /// Files that could not be read or parsed this time.
    pub errors: Vec<FileSdError>,
}

impl FileWatcher {
    /// A watcher of these glob patterns.
    pub fn new(patterns: Vec<String>) -> Self {
        FileWatcher { patterns, seen: BTreeMap::new() }
    }

    /// Re-reads the files whose modification time changed (all of them when `force`).
    pub fn refresh(&mut self, force: bool) -> Refresh {
        let files = expand(&self.patterns);
        let mut r = Refresh::default();
        let before = self.seen.len();
        self.seen.retain(|p, _| files.contains(p));
        r.changed = self.seen.len() != before;
        for f in files {
            let mtime = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
            let known = self.seen.get(&f);
            if !force && known.is_some_and(|(t, _)| *t == mtime && mtime.is_some()) {
                continue;
            }
            match read_file(&f) {
                Ok(targets) => {
                    if known.is_none_or(|(_, old)| *old != targets) {
                        r.changed = true;
                    }
                    self.seen.insert(f, (mtime, targets));
                }
                Err(e) => r.errors.push(e),
            }
        }
        r.targets = self.seen.values().flat_map(|(_, t)| t.iter().cloned()).collect();
        r
    }
}

/// How often target files are checked for a change (a changed modification time), whatever
/// `refresh_interval` says; a shorter `refresh_interval` checks more often.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Discovers a group's replicas (or a template's groups) from target files.
pub struct FileDiscoverer {
    group: String,
    configs: Vec<FileSdConfig>,
    announcer: Announcer,
    metrics: Arc<Metrics>,
}

impl FileDiscoverer {
    /// A discoverer for the group (or `discover_groups` template) of `announcer`.
    pub fn new(announcer: Announcer, metrics: Arc<Metrics>) -> Self {
        let config: &Group = announcer.config();
        FileDiscoverer { group: config.name.clone(), configs: config.file_sd.clone(), announcer, metrics }
    }
}

impl Discoverer for FileDiscoverer {
    fn run(self: Box<Self>, tx: mpsc::Sender<TargetSet>, shutdown: CancellationToken) -> DiscoveryFuture {
        Box::pin(async move {
            let mut this = *self;
            let check = this.configs.iter().map(|c| c.refresh_interval.0).fold(CHECK_EVERY, Duration::min);
            let mut watchers: Vec<(FileWatcher, Duration, std::time::Instant)> = this
                .configs
                .iter()
                .map(|c| (FileWatcher::new(c.files.clone()), c.refresh_interval.0, std::time::Instant::now()))
                .collect();
            let mechanism = MechanismLabels { mechanism: "file".into() };
            let mut ticker = tokio::time::interval(check);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let mut targets = Vec::new();
                let mut failed = false;
                for (w, refresh, last_full) in &mut watchers {
                    let force = last_full.elapsed() >= *refresh;
                    if force {
                        *last_full = std::time::Instant::now();
                    }
                    let r = w.refresh(force);
                    for e in &r.errors {
                        failed = true;
                        tracing::warn!(group = %this.group, "file discovery: {e}; keeping the last good targets");
                    }
                    targets.extend(r.targets);
                }
                super::source::record_refresh(&this.metrics, &mechanism, failed);
                if !this.announcer.announce(&targets, !failed, "file", &tx).await {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_yaml_like_prometheus() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["10.0.1.5:9090", "10.0.2.5:9090"], "labels": {"federation_role": "primary", "empty": ""}}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yml"),
            "- targets: ['127.0.0.1:9091']\n  labels: {federation_role: secondary}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "nothing").unwrap();
        let mut w = FileWatcher::new(vec![
            format!("{}/*.json", dir.path().display()),
            format!("{}/*.yml", dir.path().display()),
        ]);
        let r = w.refresh(false);
        assert!(r.changed && r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.targets.len(), 3);
        let t = &r.targets[2];
        assert_eq!(t["__address__"], "127.0.0.1:9091");
        assert_eq!(t["federation_role"], "secondary");
        assert!(t["__meta_filepath"].ends_with("b.yml"));
        assert!(!r.targets[0].contains_key("empty"), "an empty value is no label, as in Prometheus");
        // Nothing changed: nothing re-read, nothing reported.
        assert!(!w.refresh(false).changed);
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_targets() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.json");
        std::fs::write(&f, r#"[{"targets": ["127.0.0.1:1"]}]"#).unwrap();
        let mut w = FileWatcher::new(vec![f.display().to_string()]);
        assert_eq!(w.refresh(false).targets.len(), 1);
        std::fs::write(&f, r#"[{"targets": ["127.0.0.1:1""#).unwrap();
        let r = w.refresh(true);
        assert_eq!(r.targets.len(), 1, "last good content kept");
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].to_string().contains("t.json is not valid"), "{}", r.errors[0]);
        // Unknown keys are errors, as in Prometheus.
        std::fs::write(&f, r#"[{"targets": ["127.0.0.1:2"], "labelz": {}}]"#).unwrap();
        assert_eq!(w.refresh(true).errors.len(), 1);
        // A removed file removes its targets.
        std::fs::remove_file(&f).unwrap();
        let r = w.refresh(false);
        assert!(r.changed);
        assert!(r.targets.is_empty());
    }
}
