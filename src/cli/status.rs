//! `promfed status`: a running promfed's groups, replicas, leaders, pins, last errors, rejected
//! targets and problems, plus the Remote-Write HA clusters when its receiver is on, as tables.
//!
//! The views below read the status API's JSON leniently (missing fields take defaults, unknown
//! ones are ignored) rather than sharing the server's types: an on-call person's CLI is not
//! always the version of the promfed it asks.

use super::api::{Api, ApiError};
use super::table::{Cell, Table, Tone, age, seconds};
use crate::merge::group::push::PUSH_ADDRESS;
use crate::remote::receive::PUSH_GROUP;
use reqwest::{Method, StatusCode};
use serde::Deserialize;

/// A group as `GET /api/v1/status/groups` shows it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupView {
    pub name: String,
    pub leader: Option<String>,
    pub preferred: Option<String>,
    pub pinned: Option<String>,
    pub down: bool,
    pub failovers: u64,
    pub series: u64,
    pub replicas: Vec<ReplicaView>,
    pub rejected_targets: Vec<String>,
    pub problems: Vec<String>,
}

/// A replica of a [`GroupView`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplicaView {
    pub name: String,
    pub role: String,
    pub address: String,
    pub healthy: Option<bool>,
    pub consecutive_good_scrapes: u64,
    pub last_scrape_ms: Option<i64>,
    pub last_duration_seconds: Option<f64>,
    pub last_error: Option<String>,
    pub last_samples: u64,
    pub newest_sample_ms: Option<i64>,
}

/// A Remote-Write HA cluster as `GET /api/v1/status/ha` shows it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClusterView {
    pub cluster: String,
    pub elected: String,
    pub elected_at_ms: i64,
    pub last_received_ms: i64,
    pub failovers: u64,
}

impl GroupView {
    /// A group fed by Remote-Write pushes (`push`, `push/<cluster>`): its replicas are the
    /// pushing ones and its leader the elected one (none for pushes without a replica label).
    /// Whether pushes still arrive shows in the HA table, not as a scrape health.
    pub fn is_pushed(&self) -> bool {
        let named = self.name == PUSH_GROUP || self.name.strip_prefix(PUSH_GROUP).is_some_and(|r| r.starts_with('/'));
        match self.replicas.as_slice() {
            [] => named,
            replicas => replicas.iter().all(|r| r.address == PUSH_ADDRESS),
        }
    }

    fn replica(&self, name: &str) -> Option<&ReplicaView> {
        self.replicas.iter().find(|r| r.name == name)
    }

    /// Why this group has no healthy leader, or `None` when it has one (or is pushed).
    pub fn unhealthy(&self) -> Option<String> {
        if self.is_pushed() {
            return None;
        }
        if self.replicas.is_empty() {
            return Some("no replicas (discovery lists none)".to_owned());
        }
        if self.down {
            return Some("every replica's last scrape failed".to_owned());
        }
        let Some(leader) = &self.leader else {
            return Some("no leader".to_owned());
        };
        match self.replica(leader).map(|r| r.healthy) {
            Some(Some(true)) => None,
            Some(None) => Some(format!("leader {leader} has not been scraped yet")),
            Some(Some(false)) => Some(format!("leader {leader} is unhealthy")),
            None => Some(format!("leader {leader} is not among its replicas")),
        }
    }

    fn state(&self) -> Cell {
        match (self.is_pushed(), self.unhealthy()) {
            (true, _) => Cell::new("pushed", Tone::Good),
            (false, None) if self.replicas.iter().any(|r| r.healthy != Some(true)) => Cell::new("degraded", Tone::Warn),
            (false, None) => Cell::new("ok", Tone::Good),
            (false, Some(_)) => Cell::new("DOWN", Tone::Bad),
        }
    }
}

/// What `promfed status` fetched.
#[derive(Debug)]
pub struct Status {
    pub groups: Vec<GroupView>,
    pub clusters: Vec<ClusterView>,
}

impl Status {
    /// One line per group without a healthy leader; empty when all is well.
    pub fn verdict(&self) -> Vec<String> {
        self.groups.iter().filter_map(|g| g.unhealthy().map(|why| format!("group {} is DOWN: {why}", g.name))).collect()
    }

    /// The tables, as the command prints them.
    pub fn render(&self, url: &str, now_ms: i64, colour: bool) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let down = self.verdict();
        let mut out =
            format!("promfed {url}: {} group(s), {} without a healthy leader\n\n", self.groups.len(), down.len());
        let mut groups = Table::new(vec!["GROUP", "STATE", "LEADER", "PINNED", "PREFERRED", "FAILOVERS", "SERIES"]);
        let mut replicas = Table::new(vec![
            "GROUP",
            "REPLICA",
            "ROLE",
            "ADDRESS",
            "HEALTH",
            "LEADS",
            "GOOD",
            "SCRAPED",
            "TOOK",
            "SAMPLES",
            "NEWEST SAMPLE",
            "LAST ERROR",
        ]);
        let mut problems = Vec::new();
        for g in &self.groups {
            groups.row(vec![
                g.name.clone().into(),
                g.state(),
                opt(&g.leader).into(),
                match &g.pinned {
                    Some(p) => Cell::new(p, Tone::Warn),
                    None => "-".into(),
                },
                opt(&g.preferred).into(),
                g.failovers.to_string().into(),
                g.series.to_string().into(),
            ]);
            for r in &g.replicas {
                let health = match r.healthy {
                    Some(true) => Cell::new("up", Tone::Good),
                    Some(false) => Cell::new("DOWN", Tone::Bad),
                    None => Cell::new("unknown", Tone::Warn),
                };
                let leads = if g.leader.as_deref() == Some(r.name.as_str()) { "*" } else { "" };
                replicas.row(vec![
                    g.name.clone().into(),
                    r.name.clone().into(),
                    r.role.clone().into(),
                    r.address.clone().into(),
                    health,
                    leads.into(),
                    r.consecutive_good_scrapes.to_string().into(),
                    r.last_scrape_ms.map_or_else(|| "never".to_owned(), |t| age(t, now_ms)).into(),
                    r.last_duration_seconds.map_or_else(|| "-".to_owned(), seconds).into(),
                    r.last_samples.to_string().into(),
                    r.newest_sample_ms.map_or_else(|| "-".to_owned(), |t| age(t, now_ms)).into(),
                    match &r.last_error {
                        Some(e) => Cell::new(e, if r.healthy == Some(false) { Tone::Bad } else { Tone::Plain }),
                        None => "-".into(),
                    },
                ]);
            }
            problems.extend(g.problems.iter().map(|p| format!("{}: {p}", g.name)));
            problems.extend(g.rejected_targets.iter().map(|t| format!("{}: rejected target {t}", g.name)));
        }
        out.push_str(&groups.render(colour));
        if !replicas.is_empty() {
            out.push('\n');
            out.push_str(&replicas.render(colour));
        }
        if !problems.is_empty() {
            out.push_str("\nProblems:\n");
            for p in problems {
                out.push_str(&format!("  {p}\n"));
            }
        }
        if !self.clusters.is_empty() {
            let mut clusters = Table::new(vec!["CLUSTER", "ELECTED", "SINCE", "LAST PUSH", "FAILOVERS"]);
            for c in &self.clusters {
                clusters.row(vec![
                    c.cluster.clone().into(),
                    c.elected.clone().into(),
                    age(c.elected_at_ms, now_ms).into(),
                    age(c.last_received_ms, now_ms).into(),
                    c.failovers.to_string().into(),
                ]);
            }
            out.push_str("\nRemote-Write HA clusters:\n");
            out.push_str(&clusters.render(colour));
        }
        if !down.is_empty() {
            out.push('\n');
            for line in &down {
                let line = if colour { format!("\x1b[31;1m{line}\x1b[0m") } else { line.clone() };
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// Fetches both status endpoints as raw JSON (`data` of each). A promfed without the HA
/// endpoint (404) has no HA clusters.
pub async fn fetch(api: &Api) -> Result<(serde_json::Value, serde_json::Value), ApiError> {
    let groups: serde_json::Value = api.json(Method::GET, &["api", "v1", "status", "groups"], None).await?;
    let clusters = match api.json(Method::GET, &["api", "v1", "status", "ha"], None).await {
        Ok(c) => c,
        Err(ApiError::Status { status: StatusCode::NOT_FOUND, .. }) => serde_json::Value::Array(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok((groups, clusters))
}

/// Reads the raw JSON into the views.
pub fn parse(url: &str, groups: &serde_json::Value, clusters: &serde_json::Value) -> Result<Status, ApiError> {
    let body =
        |e: serde_json::Error| ApiError::Body { url: url.to_owned(), reason: format!("unexpected status JSON: {e}") };
    Ok(Status {
        groups: serde_json::from_value(groups.clone()).map_err(body)?,
        clusters: serde_json::from_value(clusters.clone()).map_err(body)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replica(name: &str, healthy: Option<bool>, error: Option<&str>) -> serde_json::Value {
        json!({"name": name, "role": if name == "a" { "primary" } else { "secondary" },
               "address": format!("10.0.0.{}:9090", name.len()), "healthy": healthy,
               "consecutive_good_scrapes": 3, "last_scrape_ms": 99_000, "last_duration_seconds": 0.004,
               "last_error": error, "last_samples": 931, "newest_sample_ms": 98_000})
    }

    fn status(groups: serde_json::Value, clusters: serde_json::Value) -> Status {
        parse("https://p", &groups, &clusters).unwrap()
    }

    #[test]
    fn a_healthy_group_and_a_down_one() {
        let s = status(
            json!([
                {"name": "eu", "leader": "b", "preferred": "a", "pinned": null, "down": false, "failovers": 1,
                 "series": 931, "replicas": [replica("a", Some(false), Some("connect: connection refused")),
                                             replica("b", Some(true), None)],
                 "problems": ["two primaries: a, c; serving from a"], "rejected_targets": ["10.0.0.9:9090: no role"]},
                {"name": "us", "leader": "a", "preferred": "a", "down": true, "failovers": 0, "series": 12,
                 "replicas": [replica("a", Some(false), Some("timeout"))]},
                {"name": "push/k8s", "leader": null, "down": false, "series": 3, "replicas": []},
            ]),
            json!([{"cluster": "k8s", "elected": "p0", "elected_at_ms": 40_000, "last_received_ms": 99_500, "failovers": 2}]),
        );
        assert_eq!(s.verdict(), vec!["group us is DOWN: every replica's last scrape failed"]);
        let text = s.render("https://p", 100_000, false);
        let expected = "\
promfed https://p: 3 group(s), 1 without a healthy leader

GROUP     STATE     LEADER  PINNED  PREFERRED  FAILOVERS  SERIES
eu        degraded  b       -       a          1          931
us        DOWN      a       -       a          0          12
push/k8s  pushed    -       -       -          0          3

GROUP  REPLICA  ROLE       ADDRESS        HEALTH  LEADS  GOOD  SCRAPED  TOOK  SAMPLES  NEWEST SAMPLE  LAST ERROR
eu     a        primary    10.0.0.1:9090  DOWN           3     1s ago   4ms   931      2s ago         connect: connection refused
eu     b        secondary  10.0.0.1:9090  up      *      3     1s ago   4ms   931      2s ago         -
us     a        primary    10.0.0.1:9090  DOWN    *      3     1s ago   4ms   931      2s ago         timeout

Problems:
  eu: two primaries: a, c; serving from a
  eu: rejected target 10.0.0.9:9090: no role

Remote-Write HA clusters:
CLUSTER  ELECTED  SINCE      LAST PUSH  FAILOVERS
k8s      p0       1m00s ago  500ms ago  2

group us is DOWN: every replica's last scrape failed
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn groups_without_a_healthy_leader_are_named_with_the_reason() {
        let one = |g: serde_json::Value| status(json!([g]), json!([])).verdict();
        assert_eq!(
            one(json!({"name": "g", "replicas": []})),
            vec!["group g is DOWN: no replicas (discovery lists none)"]
        );
        assert_eq!(
            one(json!({"name": "g", "leader": "a", "replicas": [replica("a", None, None)]})),
            vec!["group g is DOWN: leader a has not been scraped yet"]
        );
        assert_eq!(
            one(json!({"name": "g", "replicas": [replica("a", Some(true), None)]})),
            vec!["group g is DOWN: no leader"]
        );
        assert!(one(json!({"name": "g", "leader": "a", "replicas": [replica("a", Some(true), None)]})).is_empty());
        assert!(one(json!({"name": "push", "replicas": []})).is_empty());
        let pushing = json!({"name": "p0", "address": "(remote write)", "healthy": true});
        assert!(one(json!({"name": "push", "leader": null, "replicas": [pushing]})).is_empty(), "no election");
        assert!(!one(json!({"name": "pushy", "replicas": []})).is_empty(), "only push and push/… are pushed");
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_default() {
        let s = status(json!([{"name": "g", "a_field_from_a_newer_promfed": 1}]), json!([]));
        assert_eq!(s.groups[0].name, "g");
        assert!(s.groups[0].leader.is_none());
    }
}
