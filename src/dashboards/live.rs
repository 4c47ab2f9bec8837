//! The metric names a running Prometheus or promfed has, for `lint --live`.
//!
//! A Prometheus — and a promfed, through its query API over the groups' history — answers
//! `GET /api/v1/label/__name__/values`. A promfed's own metrics (self-metrics and scheduled
//! probes, the ones its dashboards and alerts use) are added from its `/metrics`; a server
//! without the query API (an older promfed) is read from `/metrics` and `/federate`. In
//! `/metrics` a family declared by `# TYPE` also counts before it has a sample (a counter of
//! errors that never happened), with the sample names its type gives it.

use serde::Deserialize;
use std::collections::BTreeSet;

/// Names from a `/api/v1/label/__name__/values` answer.
pub fn from_label_values(body: &[u8]) -> Result<BTreeSet<String>, String> {
    #[derive(Deserialize)]
    struct Answer {
        status: String,
        #[serde(default)]
        data: Vec<String>,
        #[serde(default)]
        error: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("not a Prometheus API answer: {e}"))?;
    if a.status != "success" {
        return Err(a.error.unwrap_or(a.status));
    }
    Ok(a.data.into_iter().collect())
}

/// Names in Prometheus text or OpenMetrics exposition: every sample's, and every `# TYPE`'d
/// family's sample names.
pub fn from_exposition(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
            let suffixes: &[&str] = match kind {
                "counter" => &["", "_total", "_created"],
                "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"],
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for s in suffixes {
                out.insert(format!("{name}{s}"));
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        if end > 0 {
            out.insert(line[..end].to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_include_declared_families() {
        let text = "# HELP promfed_scrape_errors Failed scrapes\n# TYPE promfed_scrape_errors counter\n\
                    # TYPE promfed_merge_duration_seconds histogram\n\
                    promfed_merge_duration_seconds_bucket{le=\"+Inf\"} 1\n\
                    up{job=\"a\"} 1 1700000000000\n# EOF\n";
        let names = from_exposition(text);
        for n in [
            "promfed_scrape_errors_total",
            "promfed_merge_duration_seconds_bucket",
            "promfed_merge_duration_seconds_count",
            "up",
        ] {
            assert!(names.contains(n), "{n}: {names:?}");
        }
    }

    #[test]
    fn label_values_answers() {
        let names = from_label_values(br#"{"status":"success","data":["up","promfed_replica_up"]}"#).unwrap();
        assert_eq!(names.len(), 2);
        assert!(from_label_values(br#"{"status":"error","error":"bad"}"#).unwrap_err().contains("bad"));
    }
}
