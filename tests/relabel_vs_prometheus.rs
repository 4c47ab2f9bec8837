//! Our `relabel_configs` implementation cross-checked against real Prometheus 2.42 (Debian's
//! `/usr/bin/prometheus`) computing the same thing.
//!
//! Fifteen targets are written as a `file_sd_configs` JSON file. Several scrape jobs read that
//! file, each with its own `relabel_configs` (together: every action, and the examples of
//! Prometheus' configuration documentation). Prometheus relabels them; we read its
//! `/api/v1/targets?state=any` and, for every target of every job, run our
//! `promfed::relabel::relabel` on the label set Prometheus relabeled, with the same
//! YAML rule list parsed by `serde_saphyr`. Then:
//!
//! - Prometheus dropped the target ⇔ ours returns `None`;
//! - for a kept target, Prometheus' final `labels` equal ours after the post-relabeling steps
//!   Prometheus applies (see [`finish_like_prometheus`]), and its `scrapeUrl` is built from our
//!   `__scheme__`, `__address__` and `__metrics_path__`.
//!
//! The input is not taken from each job's `discoveredLabels`: Prometheus 2.42's `relabel.Process`
//! writes its result into the array of the label set it was given, which is also the one kept as
//! the target's discovered labels, so after rules that change labels the API shows a mix (seen
//! here: active targets without `job`, dropped ones with `__tmp_hash`). Instead a control job
//! without `relabel_configs` reports the uncorrupted discovered labels, the test checks that its
//! own reconstruction of every target's input ([`discovered`]) equals them exactly, and uses that
//! reconstruction (with each job's `job`). Targets are matched by their unique `name` label
//! (active) or its absence (dropped; the totals are checked).
//!
//! Every target address is on loopback at a closed port; with a 1h scrape interval Prometheus
//! does not even try to scrape most of them, and nothing needs a scrape to succeed.
//!
//! A second test, [`refusals_match_promtool`], gives single rules to Prometheus 2.42's
//! `promtool check config` and to our config checks, and compares what each refuses.
//!
//! Without `prometheus` installed the tests are skipped with a notice, unless `CI` is set, where
//! they fail.

mod common;

use common::Prometheus;
use promfed::relabel::{Labels, RelabelConfig, Rule, relabel};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One file-SD target: its address and its own labels (one target group each).
struct Target {
    address: &'static str,
    labels: &'static [(&'static str, &'static str)],
}

/// Discovered targets. Their labels exercise: values with `:` and `/`, upper case (also
/// non-ASCII: final sigma, `ß`, dotted `İ`, ligatures, Greek letters with ypogegrammeni), empty values, `__meta_x_tag_*` names to labelmap
/// (one with an upper-case suffix), a `want`/`have` pair for keepequal/dropequal (equal, differing,
/// one side missing, both empty), and many different addresses (IPv4 loopback with and without
/// a port, `localhost`, IPv6 loopback) for hashmod and the address rewrite. Every target has a
/// unique `name`, which no job removes, so no two targets of one job end with the same label set
/// (Prometheus would keep only one of them).
const TARGETS: &[Target] = &[
    Target {
        address: "127.0.0.1:1",
        labels: &[
            ("name", "t01"),
            ("env", "Prod"),
            ("path", "/api/v1/query"),
            ("url", "http://a.example:8080/metrics"),
            ("region", "eu-west-1"),
            ("port", "17"),
            ("__meta_x_tag_Name", "Web-1"),
            ("__meta_x_tag_team", "sre"),
            ("want", "a"),
            ("have", "a"),
        ],
    },
    Target {
        address: "127.0.0.2:2",
        labels: &[
            ("name", "t02"),
            ("env", "STAGING"),
            ("path", "/"),
            ("region", "us-east-1"),
            ("port", "18"),
            ("__meta_x_tag_Name", "DB/Primary"),
            ("__meta_x_tag_team", "dba"),
            ("want", "a"),
            ("have", "b"),
        ],
    },
    Target {
        address: "127.0.0.3:3",
        labels: &[
            ("name", "t03"),
            ("env", "dev"),
            ("region", "eu-west-1"),
            ("__meta_x_tag_Name", ""),
            ("want", ""),
            ("have", ""),
        ],
    },
    Target {
        // No port: Prometheus 2.42 appends the scheme's default port after relabeling.
        address: "127.0.0.4",
        labels: &[("name", "t04"), ("env", ""), ("want", "x"), ("__meta_x_tag_team", "drop-me")],
    },
    Target {
        address: "localhost:5",
        labels: &[
            ("name", "t05"),
            ("env", "ΟΔΟΣ"),
            ("url", "https://b.example/x/y?z=1"),
            ("__meta_x_tag_Name", "Straße"),
            ("have", "x"),
        ],
    },
    Target {
        // IPv6: the documented `([^:]+)(?::\d+)?` address rewrite does not match it.
        address: "[::1]:6",
        labels: &[("name", "t06"), ("env", "İzmir"), ("region", "ap-south-1"), ("__meta_x_tag_Name", "Ω-node")],
    },
    Target {
        address: "127.0.0.7:7",
        labels: &[
            ("name", "t07"),
            ("env", "Prod"),
            ("path", "/federate"),
            ("port", "19"),
            ("__meta_x_tag_Name", "UPPER_CASE"),
            ("__meta_x_tag_Cost_Center", "CC:42/eu"),
            ("want", "same:value/1"),
            ("have", "same:value/1"),
        ],
    },
    Target {
        address: "127.0.0.8:8",
        labels: &[("name", "t08"), ("env", "prod"), ("__meta_x_tag_team", "sre"), ("want", "A"), ("have", "a")],
    },
    Target { address: "127.0.0.9:9", labels: &[("name", "t09"), ("env", "dev"), ("region", "")] },
    Target {
        address: "127.0.0.10:10",
        labels: &[("name", "t10"), ("env", "MiXeD"), ("__meta_x_tag_Name", "x:y:z"), ("tmp_scratch", "1")],
    },
    Target {
        address: "127.0.0.11:11",
        labels: &[("name", "t11"), ("instance", "preset-instance"), ("env", "qa"), ("want", "1"), ("have", "1")],
    },
    Target {
        address: "127.0.0.12:12",
        labels: &[("name", "t12"), ("env", "Prod"), ("region", "eu-central-1"), ("__meta_x_tag_Name", "ᾳᾀᾈǅ ﬁ ΐ Σ")],
    },
    Target {
        address: "127.0.0.13:13",
        labels: &[("name", "t13"), ("env", "staging"), ("__meta_x_tag_team", "drop-me"), ("port", "1")],
    },
    Target {
        address: "127.0.0.14:14",
        labels: &[("name", "t14"), ("path", "/a/b/c"), ("__meta_x_tag_Name", "web-14"), ("want", "q")],
    },
    Target { address: "127.0.0.15:15", labels: &[("name", "t15"), ("env", "DEV"), ("have", "q")] },
];

/// Scrape jobs and their `relabel_configs` (a YAML block sequence, indented by 6 spaces when it
/// is embedded in prometheus.yml; parsed as is by our side).
const JOBS: &[(&str, &str)] = &[
    (
        // `replace`: the documented address rewrites, `$1` versus `${1}x`, separators, named
        // groups, `$0`, a target_label built from `$1` (valid and invalid results), an empty
        // result deleting a label, a regex that does not match, the default regex and
        // replacement, and setting `instance` so Prometheus does not default it.
        "replace",
        r#"
- source_labels: [__address__]
  regex: '([^:]+)(?::\d+)?'
  target_label: __tmp_host
  replacement: '${1}:80'
- source_labels: [__address__, port]
  regex: '([^:]+)(?::\d+)?;(\d+)'
  target_label: __address__
  replacement: '$1:$2'
- source_labels: [env]
  target_label: plain_dollar
  replacement: '$1x'
- source_labels: [env]
  target_label: braced
  replacement: '${1}x'
- source_labels: [region, name]
  separator: /
  target_label: region_name
- source_labels: [url]
  regex: '(?P<scheme>https?)://(?P<host>[^:/]+)(?::\d+)?(/.*)'
  target_label: url_parts
  replacement: '${host} ${scheme} $3'
- source_labels: [env]
  regex: '(.+)'
  target_label: 'env_$1'
  replacement: 'yes'
- source_labels: [path]
  regex: '(.*)'
  target_label: 'path_$1'
  replacement: invalid-name-so-skipped
- source_labels: [env]
  regex: dev
  target_label: env
  replacement: ''
- source_labels: [env]
  regex: 'nomatch'
  target_label: env
  replacement: changed
- source_labels: [name]
  regex: 't0[1-3]'
  target_label: instance
  replacement: 'inst-$0'
- source_labels: [path]
  target_label: copied_path
- target_label: static
  replacement: fixed:value/1
"#,
    ),
    (
        // The documented replace example with the address rewritten to port 80 (closed on
        // loopback: a scrape, if one falls within the test's few seconds, just fails).
        "docs_address",
        r#"
- source_labels: [__address__]
  regex: '([^:]+)(?::\d+)?'
  target_label: __address__
  replacement: '${1}:80'
- source_labels: [__meta_x_tag_Name]
  regex: '(.+)'
  target_label: host_name
"#,
    ),
    (
        // `keep` and `drop`: anchored regexes, alternation, a missing label as "", multiple
        // source labels with a separator.
        "keep_drop",
        r#"
- source_labels: [__meta_x_tag_team]
  regex: drop-me
  action: drop
- source_labels: [env, __address__]
  regex: '(?i:prod|dev|staging|);127\.0\.0\.\d+(:\d+)?'
  action: keep
- source_labels: [env]
  regex: 'pro'
  action: drop
"#,
    ),
    ("keepequal", "\n- source_labels: [want]\n  target_label: have\n  action: keepequal\n"),
    ("dropequal", "\n- source_labels: [want]\n  target_label: have\n  action: dropequal\n"),
    (
        // `hashmod` as documented for sharding (modulus 4 into a temporary label, then keep one
        // shard), plus a visible hash of two labels so every target's value is compared.
        "hashmod",
        r#"
- source_labels: [__address__, name]
  separator: '|'
  modulus: 1000
  target_label: shard1000
  action: hashmod
- source_labels: [__address__]
  modulus: 4
  target_label: __tmp_hash
  action: hashmod
- source_labels: [__tmp_hash]
  target_label: shard4
- source_labels: [__tmp_hash]
  regex: ^1$
  action: keep
"#,
    ),
    (
        "hashmod_all",
        r#"
- source_labels: [__address__]
  modulus: 4
  target_label: shard
  action: hashmod
- source_labels: [url, env]
  modulus: 7
  target_label: shard7
  action: hashmod
"#,
    ),
    (
        // `labelmap` (the documented `__meta_..._(.+)` form and a replacement with two groups),
        // `labeldrop` and `labelkeep` (which must keep `__address__`).
        "labelmap",
        r#"
- regex: '__meta_x_tag_(.+)'
  action: labelmap
- regex: '__meta_x_(tag)_(Name)'
  replacement: '${2}_${1}x'
  action: labelmap
- regex: 'tmp_.*|url|region'
  action: labeldrop
- regex: '__.*|job|instance|name|Name|team|Cost_Center|Name_tagx|env|want'
  action: labelkeep
"#,
    ),
    (
        // `lowercase` and `uppercase` (Prometheus 2.36+): ASCII and non-ASCII values, several
        // source labels, a missing source label (an empty result).
        "case",
        r#"
- source_labels: [env]
  target_label: env_lower
  action: lowercase
- source_labels: [__meta_x_tag_Name]
  target_label: name_upper
  action: uppercase
- source_labels: [__meta_x_tag_Name]
  target_label: name_lower
  action: lowercase
- source_labels: [region, env]
  separator: ':'
  target_label: region_env_upper
  action: uppercase
- source_labels: [env]
  target_label: env
  action: lowercase
- source_labels: [does_not_exist]
  target_label: region
  action: uppercase
"#,
    ),
];

/// The file-SD JSON: one group per target.
fn file_sd_json() -> String {
    let groups: Vec<Value> = TARGETS
        .iter()
        .map(|t| {
            let labels: BTreeMap<&str, &str> = t.labels.iter().copied().collect();
            json!({"targets": [t.address], "labels": labels})
        })
        .collect();
    serde_json::to_string_pretty(&groups).expect("JSON")
}

fn prometheus_config() -> String {
    let mut s = String::from("global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n");
    s.push_str(&format!("  - job_name: {CONTROL_JOB}\n    file_sd_configs:\n      - files: [targets.json]\n"));
    for (job, rules) in JOBS {
        s.push_str(&format!(
            "  - job_name: {job}\n    file_sd_configs:\n      - files: [targets.json]\n        refresh_interval: 5m\n    relabel_configs:\n"
        ));
        for line in rules.lines().filter(|l| !l.trim().is_empty()) {
            s.push_str(&format!("      {line}\n"));
        }
    }
    s
}

fn rules_of(job: &str, yaml: &str) -> Vec<Rule> {
    let configs: Vec<RelabelConfig> =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("job {job}: rules do not parse: {e}"));
    configs.into_iter().map(|c| Rule::new(c).unwrap_or_else(|e| panic!("job {job}: {e}"))).collect()
}

/// Whether an address already has a port: Go's `net.SplitHostPort` succeeds on it.
fn has_port(address: &str) -> bool {
    match address.strip_prefix('[') {
        Some(rest) => rest.split_once(']').is_some_and(|(_, after)| after.starts_with(':')),
        None => address.matches(':').count() == 1,
    }
}

/// What Prometheus 2.42 does to a kept target's labels after `relabel_configs`
/// (`scrape.PopulateLabels`), and what its API shows of them:
///
/// 1. an `__address__` without a port gets the scheme's default one (`:80` for `http`; 2.42 has
///    no `no-default-scrape-port` flag yet);
/// 2. `__meta_*` labels are deleted;
/// 3. `instance` is set to `__address__` (as completed in 1) when it is absent or empty
///    ("After relabeling, the instance label is set to the value of `__address__` by default
///    if it was not set during relabeling");
/// 4. the API's `labels` leave out every label starting with `__` (they are not part of the
///    target's series).
///
/// Returns those labels and the scrape URL Prometheus would use.
fn finish_like_prometheus(mut labels: Labels) -> (Labels, String) {
    let scheme = labels.get("__scheme__").cloned().unwrap_or_default();
    let mut address = labels.get("__address__").cloned().unwrap_or_default();
    if !has_port(&address) {
        address.push_str(if scheme == "https" { ":443" } else { ":80" });
        labels.insert("__address__".into(), address.clone());
    }
    if labels.get("instance").is_none_or(String::is_empty) {
        labels.insert("instance".into(), address.clone());
    }
    let url = format!("{scheme}://{address}{}", labels.get("__metrics_path__").map_or("", String::as_str));
    labels.retain(|k, _| !k.starts_with("__"));
    (labels, url)
}

fn labels_of(v: &Value) -> Labels {
    v.as_object()
        .unwrap_or_else(|| panic!("not a label object: {v}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value is a string").to_owned()))
        .collect()
}

/// What `/api/v1/targets?state=any` says, once it lists all `TARGETS.len() * JOBS.len()`
/// targets (active or dropped). Bounded: 30s.
struct Listing {
    /// Active targets by job (`scrapePool`) and `name` label: final labels and scrape URL.
    active: BTreeMap<(String, String), (Labels, String)>,
    /// `discoveredLabels` of all active targets, to count how many 2.42 shows corrupted.
    active_discovered: Vec<Labels>,
    /// `discoveredLabels` of every active target of the control job (no relabeling).
    control_discovered: Vec<Labels>,
    dropped: usize,
}

async fn list_targets(prom: &Prometheus) -> Listing {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let url = format!("{}/api/v1/targets?state=any", prom.url());
    let expected = TARGETS.len() * (JOBS.len() + 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(resp) = client.get(&url).send().await
            && let Ok(body) = resp.json::<Value>().await
        {
            let active_targets = body["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
            let dropped = body["data"]["droppedTargets"].as_array().map_or(0, Vec::len);
            if active_targets.len() + dropped == expected {
                let mut listing = Listing {
                    active: BTreeMap::new(),
                    active_discovered: Vec::new(),
                    control_discovered: Vec::new(),
                    dropped,
                };
                for t in &active_targets {
                    let job = t["scrapePool"].as_str().expect("scrapePool").to_owned();
                    let labels = labels_of(&t["labels"]);
                    let scrape_url = t["scrapeUrl"].as_str().expect("scrapeUrl").to_owned();
                    let discovered = labels_of(&t["discoveredLabels"]);
                    if job == CONTROL_JOB {
                        listing.control_discovered.push(discovered.clone());
                    }
                    listing.active_discovered.push(discovered);
                    let name = labels.get("name").cloned().unwrap_or_else(|| panic!("no name label: {t}"));
                    let previous = listing.active.insert((job, name), (labels, scrape_url));
                    assert!(previous.is_none(), "two active targets with one job and name: {t}");
                }
                return listing;
            }
            last = format!("{} active + {dropped} dropped", active_targets.len());
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Prometheus did not list {expected} targets within 30s ({last}); log:\n{}", prom.log_tail(30));
}

/// A job without `relabel_configs`: its targets' `discoveredLabels` are exactly what every job
/// relabels (they differ only in `job`).
const CONTROL_JOB: &str = "control";

/// The label set Prometheus hands to `relabel_configs` for `target` in `job`: the target's
/// labels without the empty ones (Prometheus treats an empty value as absent), `__address__`,
/// file SD's `__meta_filepath`, and the scrape config's `job`, `__scheme__`,
/// `__metrics_path__`, `__scrape_interval__` and `__scrape_timeout__`. Checked against the
/// control job's `discoveredLabels`.
fn discovered(target: &Target, job: &str, filepath: &str) -> Labels {
    let mut labels: Labels =
        target.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in [
        ("__address__", target.address),
        ("__meta_filepath", filepath),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("__scrape_interval__", "1h"),
        ("__scrape_timeout__", "10s"),
        ("job", job),
    ] {
        labels.insert(k.into(), v.into());
    }
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabeling_matches_prometheus() {
    let Some(binary) = common::prometheus_binary() else { return };
    let started = Instant::now();
    let rules: BTreeMap<&str, Vec<Rule>> = JOBS.iter().map(|(job, yaml)| (*job, rules_of(job, yaml))).collect();
    let prom = Prometheus::start(&binary, "relabel", &prometheus_config(), &[("targets.json", &file_sd_json())]).await;
    let listing = list_targets(&prom).await;

    // Our reconstruction of the input must be exactly Prometheus' discovered labels.
    let mut control = listing.control_discovered.clone();
    control.sort_by(|a, b| a["name"].cmp(&b["name"]));
    assert_eq!(control.len(), TARGETS.len(), "every control target is active");
    let filepath = control[0]["__meta_filepath"].clone();
    assert!(filepath.ends_with("/targets.json"), "{filepath}");
    let ours: Vec<Labels> = TARGETS.iter().map(|t| discovered(t, CONTROL_JOB, &filepath)).collect();
    assert_eq!(control, ours, "Prometheus' discovered labels differ from the input we relabel");

    let mut mismatches = Vec::new();
    let (mut kept, mut dropped) = (0, 0);
    for (job, job_rules) in &rules {
        for target in TARGETS {
            let input = discovered(target, job, &filepath);
            let name = input["name"].clone();
            let theirs = listing.active.get(&(job.to_string(), name.clone()));
            match (theirs, relabel(&input, job_rules)) {
                (None, None) => dropped += 1,
                (Some((labels, scrape_url)), Some(ours)) => {
                    kept += 1;
                    let (ours, our_url) = finish_like_prometheus(ours);
                    if &ours != labels || &our_url != scrape_url {
                        mismatches.push(format!(
                            "job {job}, target {name}:\n  prometheus: {labels:?} {scrape_url}\n  ours:       {ours:?} {our_url}"
                        ));
                    }
                }
                (None, Some(ours)) => {
                    mismatches.push(format!("job {job}, target {name}: Prometheus dropped it, ours kept {ours:?}"))
                }
                (Some((labels, _)), None) => {
                    mismatches.push(format!("job {job}, target {name}: Prometheus kept {labels:?}, ours dropped it"))
                }
            }
        }
    }
    let rule_count: usize = rules.values().map(Vec::len).sum();
    let inputs: Vec<Labels> =
        JOBS.iter().flat_map(|(job, _)| TARGETS.iter().map(|t| discovered(t, job, &filepath))).collect();
    let relabeled: Vec<&Labels> =
        listing.active_discovered.iter().filter(|d| d.get("job").map(String::as_str) != Some(CONTROL_JOB)).collect();
    let corrupted = relabeled.iter().filter(|d| !inputs.contains(d)).count();
    eprintln!(
        "Prometheus 2.42 shows altered discoveredLabels for {corrupted} of {} active relabeled targets",
        relabeled.len()
    );
    eprintln!(
        "compared {} (job, target) pairs ({} targets x {} jobs, {rule_count} rules): {kept} kept and {dropped} dropped by both, {} mismatches; {:.1?}",
        TARGETS.len() * JOBS.len(),
        TARGETS.len(),
        JOBS.len(),
        mismatches.len(),
        started.elapsed()
    );
    assert!(mismatches.is_empty(), "{} mismatches with Prometheus:\n{}", mismatches.len(), mismatches.join("\n"));
    // Whatever Prometheus did not list as active it listed as dropped.
    assert_eq!(listing.dropped, dropped, "Prometheus' dropped targets");
    // Both outcomes must have been exercised for the comparison to mean something.
    assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}");
}

/// Single rules (flow YAML) that `promtool check config` and our checks must judge alike: every
/// action's required fields, the fields each action refuses, target_label and labelmap
/// replacement patterns (`$1`, `${name}`), the action in any case.
const RULE_CHECKS: &[&str] = &[
    "{action: Replace, source_labels: [a], target_label: b}",
    "{action: HASHMOD, source_labels: [a], target_label: b, modulus: 2}",
    "{action: LabelMap, regex: 'x_(.*)'}",
    "{action: bogus}",
    "{action: ''}",
    "{source_labels: [a], target_label: b}",
    "{action: replace, source_labels: [a]}",
    "{action: replace, source_labels: [a], target_label: ''}",
    "{action: replace, source_labels: [a], target_label: 1abc}",
    "{action: replace, source_labels: [a], target_label: a-b}",
    "{action: replace, source_labels: [a], target_label: '$1'}",
    "{action: replace, source_labels: [a], target_label: '${1}'}",
    "{action: replace, source_labels: [a], target_label: 'x_${name}_y'}",
    "{action: replace, source_labels: [a], target_label: '$'}",
    "{action: replace, source_labels: [a], target_label: 'a$-'}",
    "{action: replace, source_labels: [a], target_label: '${1}-x'}",
    "{action: replace, source_labels: [a], target_label: b, regex: '('}",
    "{action: labelmap, regex: '(.*)', replacement: a-b}",
    "{action: labelmap, regex: '(.*)', replacement: '$1'}",
    "{action: labelmap, regex: '(.*)', replacement: ''}",
    "{action: labelmap, regex: '(.*)', replacement: 'x_${1}'}",
    "{action: labelmap, regex: '(.*)', replacement: 1x}",
    "{action: labeldrop, regex: x, source_labels: [a]}",
    "{action: labeldrop, regex: x, target_label: a}",
    "{action: labeldrop, regex: x, modulus: 3}",
    "{action: labeldrop, regex: x, separator: ','}",
    "{action: labeldrop, regex: x, separator: ';'}",
    "{action: labeldrop, regex: x, replacement: y}",
    "{action: labeldrop, regex: x, replacement: '$1'}",
    "{action: labelkeep, regex: '__.*', modulus: 0}",
    "{action: keepequal, source_labels: [a], target_label: b, regex: x}",
    "{action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}",
    "{action: keepequal, source_labels: [a], target_label: b, modulus: 2}",
    "{action: keepequal, source_labels: [a], target_label: b, separator: ','}",
    "{action: keepequal, source_labels: [a], target_label: b}",
    "{action: dropequal, source_labels: [a], target_label: b, replacement: x}",
    "{action: dropequal, source_labels: [a], target_label: b}",
    "{action: dropequal, source_labels: [a]}",
    "{action: dropequal, source_labels: [a], target_label: a-b}",
    "{action: lowercase, source_labels: [a]}",
    "{action: lowercase, source_labels: [a], target_label: a-b}",
    "{action: lowercase, source_labels: [a], target_label: b, replacement: x}",
    "{action: uppercase, source_labels: [a], target_label: b, regex: x}",
    "{action: uppercase, source_labels: [a], target_label: b}",
    "{action: hashmod, source_labels: [a], target_label: '$1', modulus: 2}",
    "{action: hashmod, source_labels: [a], target_label: b}",
    "{action: hashmod, source_labels: [a], target_label: b, modulus: 0}",
    "{action: keep, source_labels: [a], target_label: a-b}",
    "{action: drop, source_labels: [a], regex: x, replacement: zz, modulus: 4}",
    "{action: keep}",
];

/// Rules where we knowingly differ from Prometheus 2.42, and why; checked to still differ.
const RULE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "{action: lowercase, source_labels: [a], target_label: '$1'}",
        "2.42 takes a $1 template as target_label here but does not expand it: it writes a label named `$1`",
    ),
    (
        "{action: labeldrop, regex: x, source_labels: []}",
        "2.42 refuses an explicitly empty source_labels (a Go nil-versus-empty check); we read it as absent",
    ),
];

/// `promtool` beside the `prometheus` binary (Debian's package has both), or on `PATH`.
fn promtool() -> Option<std::path::PathBuf> {
    let prometheus = common::prometheus_binary()?;
    let beside = prometheus.with_file_name("promtool");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("promtool")).find(|p| p.is_file()))
}

/// Whether `promtool check config` accepts a scrape config with this one rule, and its output.
fn promtool_accepts(promtool: &std::path::Path, dir: &std::path::Path, rule: &str) -> (bool, String) {
    let file = dir.join("prometheus.yml");
    let config = format!(
        "scrape_configs:\n  - job_name: x\n    static_configs: [{{targets: ['127.0.0.1:1']}}]\n    relabel_configs:\n      - {rule}\n"
    );
    std::fs::write(&file, config).expect("write config");
    let out =
        std::process::Command::new(promtool).arg("check").arg("config").arg(&file).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.lines().filter(|l| l.contains("FAILED")).collect::<Vec<_>>().join(" "))
}

/// What our config checks say of the rule: `Ok` or the problems.
fn ours_accepts(rule: &str) -> Result<(), String> {
    let c: RelabelConfig = serde_saphyr::from_str(rule).map_err(|e| e.to_string())?;
    let problems = c.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))
    }
}

#[test]
fn refusals_match_promtool() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mismatches = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for rule in RULE_CHECKS {
        let (theirs, why) = promtool_accepts(&promtool, dir.path(), rule);
        let ours = ours_accepts(rule);
        if theirs != ours.is_ok() {
            mismatches.push(format!("{rule}\n  promtool: {}\n  ours:     {ours:?}", if theirs { "ok" } else { &why }));
        }
        if theirs {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    for (rule, why) in RULE_DIFFERENCES {
        let (theirs, _) = promtool_accepts(&promtool, dir.path(), rule);
        assert_ne!(theirs, ours_accepts(rule).is_ok(), "{rule} no longer differs ({why}): update RULE_DIFFERENCES");
    }
    eprintln!(
        "{} rules: promtool accepted {accepted}, refused {refused}; {} mismatches",
        RULE_CHECKS.len(),
        mismatches.len()
    );
    assert!(mismatches.is_empty(), "{} rules judged differently:\n{}", mismatches.len(), mismatches.join("\n"));
    assert!(accepted > 10 && refused > 10);
}
