//! The `probes:` section of promfed's config: where the modules come from (a blackbox.yml, or
//! inline in blackbox.yml's shape), and the probes promfed runs on its own schedule.

use super::blackbox::{Module, Modules};
use crate::config::units::PromDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `probes:` as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    /// A blackbox_exporter modules file, read unchanged. Relative to the working directory.
    #[serde(default)]
    pub modules_file: Option<PathBuf>,
    /// Modules written here, in blackbox.yml's shape (`name: {prober: http, ...}`); with
    /// `modules_file` both are used and a name may not be in both.
    #[serde(default)]
    pub modules: BTreeMap<String, Module>,
    /// Subtracted from the scrape's `X-Prometheus-Scrape-Timeout-Seconds` (blackbox_exporter's
    /// `--timeout-offset`).
    #[serde(default = "default_offset")]
    pub timeout_offset: PromDuration,
    /// Where `promfed sidecar` listens (`promfed serve` uses `server.listen_address`).
    #[serde(default = "default_listen")]
    pub listen_address: String,
    /// Probes promfed runs itself, exported on `/metrics` with labels `target` and `module`.
    #[serde(default)]
    pub scheduled: Vec<ScheduledConfig>,
    /// Results kept per scheduled probe for `GET /api/v1/probes`.
    #[serde(default = "default_history")]
    pub history: usize,
}

fn default_offset() -> PromDuration {
    PromDuration(Duration::from_millis(500))
}

fn default_listen() -> String {
    "0.0.0.0:9115".into()
}

fn default_history() -> usize {
    10
}

/// One scheduled probe.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledConfig {
    /// As `/probe?target=` takes it.
    pub target: String,
    /// A module name.
    pub module: String,
    /// How often (default 30s).
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// Longest a probe may take (default: the module's timeout, else the interval, at most).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

fn default_interval() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

/// The checked section.
#[derive(Clone, Debug)]
pub struct Probes {
    pub modules: Modules,
    pub timeout_offset: Duration,
    pub listen: SocketAddr,
    pub scheduled: Vec<Scheduled>,
    pub history: usize,
    /// Loaded but not acted on (see [`Modules::unsupported`]), to warn about.
    pub unsupported: Vec<String>,
}

/// A checked scheduled probe.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub target: String,
    pub module: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl ProbesConfig {
    /// Checks the section; problems as `(path, message)`, all of them.
    pub fn check(&self) -> Result<Probes, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut modules = Modules::default();
        if let Some(f) = &self.modules_file {
            match Modules::load(f) {
                Ok(m) => modules = m,
                Err(e) => problems.push(("probes.modules_file".into(), e.to_string())),
            }
        }
        let inline = Modules { modules: self.modules.clone() };
        for p in inline.problems() {
            problems.push(("probes".into(), p));
        }
        for (name, m) in &self.modules {
            if modules.modules.insert(name.clone(), m.clone()).is_some() {
                problems.push((format!("probes.modules.{name}"), "also defined in modules_file".into()));
            }
        }
        if modules.modules.is_empty() {
            problems.push(("probes".into(), "no module: give modules_file or modules".into()));
        }
        let listen = match crate::config::listen::parse(&self.listen_address) {
            Ok(a) => a,
            Err(e) => {
                problems.push(("probes.listen_address".into(), e));
                SocketAddr::from(([0, 0, 0, 0], 9115))
            }
        };
        let mut scheduled = Vec::new();
        for (i, s) in self.scheduled.iter().enumerate() {
            let p = format!("probes.scheduled[{i}]");
            let Some(m) = modules.modules.get(&s.module) else {
                problems.push((format!("{p}.module"), format!("unknown module {:?}", s.module)));
                continue;
            };
            if s.target.is_empty() {
                problems.push((format!("{p}.target"), "must not be empty".into()));
            }
            if s.interval.0 < Duration::from_secs(1) {
                problems.push((format!("{p}.interval"), "must be at least 1s".into()));
            }
            let module_timeout = if m.timeout.0.is_zero() { s.interval.0 } else { m.timeout.0.min(s.interval.0) };
            scheduled.push(Scheduled {
                target: s.target.clone(),
                module: s.module.clone(),
                interval: s.interval.0,
                timeout: s.timeout.map_or(module_timeout, |t| t.0.min(s.interval.0)),
            });
        }
        if self.history == 0 || self.history > 1000 {
            problems.push(("probes.history".into(), "must be between 1 and 1000".into()));
        }
        if problems.is_empty() {
            let unsupported = modules.unsupported();
            Ok(Probes {
                modules,
                timeout_offset: self.timeout_offset.0,
                listen,
                scheduled,
                history: self.history,
                unsupported,
            })
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_modules_and_schedule() {
        let c: ProbesConfig = serde_saphyr::from_str(
            "{modules: {h: {prober: http, timeout: 5s}}, scheduled: [{target: 'http://127.0.0.1:1/', module: h, interval: 10s}]}",
        )
        .unwrap();
        let p = c.check().unwrap();
        assert_eq!(p.scheduled[0].timeout, Duration::from_secs(5));
        assert_eq!(p.timeout_offset, Duration::from_millis(500));
        let bad: ProbesConfig =
            serde_saphyr::from_str("{modules: {h: {prober: http}}, scheduled: [{target: x, module: nope}]}").unwrap();
        let problems = bad.check().unwrap_err();
        assert_eq!(problems[0].0, "probes.scheduled[0].module");
    }

    #[test]
    fn the_sidecar_runs_probes_dashboards_or_both_but_not_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let path = dir.path().join("promfed.yml");
            std::fs::write(&path, text).unwrap();
            crate::config::load_section(&path)
        };
        let only = load("dashboards: {dir: dashboards, grafana_url: 'https://grafana:3000', token_file: t}\n").unwrap();
        assert!(only.probes.is_none());
        let d = only.dashboards.unwrap();
        assert_eq!(
            (d.interval.0, d.prune, d.listen_address.as_str()),
            (Duration::from_secs(300), false, "0.0.0.0:9115")
        );
        let e = load("groups: []\n").err().unwrap().to_string();
        assert!(e.contains("probes: missing, and so is dashboards"), "{e}");
        let e = load("dashboards: {dir: d, grafana_url: 'grafana:3000', interval: 1s}\n").err().unwrap().to_string();
        assert!(e.contains("dashboards.grafana_url") && e.contains("dashboards.interval: must be at least 10s"), "{e}");
        assert!(load("dashboards: {dir: d, grafana_url: 'http://g', nope: 1}\n").is_err(), "unknown keys are refused");
    }
}
