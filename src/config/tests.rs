//! Config parsing and validation: every problem at once, with paths.

use super::*;
use crate::merge::Role;
use std::path::Path;

const MINIMAL: &str = r#"
groups:
  - name: eu-west-1
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:9090"}
      - {name: b, role: secondary, address: "127.0.0.1:9091"}
"#;

#[test]
fn minimal_config_gets_prometheus_defaults() {
    let c = parse(MINIMAL, "test").unwrap();
    let g = &c.groups[0];
    assert_eq!(g.scrape_interval.as_secs(), 15);
    assert_eq!(g.scrape_timeout.as_secs(), 10);
    assert_eq!(g.lookback.as_secs(), 300);
    assert_eq!(g.hold_down, 2);
    assert_eq!(g.path, "/federate");
    assert_eq!(g.selectors, vec![r#"{__name__=~".+"}"#.to_owned()]);
    assert_eq!(g.replica_labels, vec!["replica", "prometheus_replica", "__replica__"]);
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:9443");
    assert!(c.warnings.iter().any(|w| w.path == "server.tls_server_config"), "plain HTTP is warned about");
}

#[test]
fn unknown_keys_are_rejected_with_their_place() {
    let text = MINIMAL.replace("    replicas:", "    scrape_intervall: 5s\n    replicas:");
    let err = parse(&text, "promfed.yml").unwrap_err().to_string();
    assert!(err.contains("scrape_intervall"), "{err}");
    assert!(err.contains("promfed.yml"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
server:
  listen_address: "nowhere"
  basic_auth: {username: u}
groups:
  - name: g
    scheme: ftp
    path: federate
    match: ['rate(x[5m])']
    scrape_interval: 5s
    scrape_timeout: 10s
    labels: {replica: x}
    replicas:
      - {name: a, role: primary, address: "127.0.0.1"}
      - {name: a, role: primary, address: "127.0.0.1:9091"}
  - name: g
    replicas: []
"#;
    let err = parse(text, "t").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "server.listen_address",
        "server.basic_auth",
        "groups[0].scheme",
        "groups[0].path",
        "groups[0].match[0]",
        "groups[0].scrape_timeout",
        "groups[0].labels.replica",
        "groups[0].replicas[0].address",
        "groups[0].replicas[1].name",
        "groups[0].replicas",
        "groups[1].name",
        "groups[1].replicas",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
    let text = err.to_string();
    assert!(text.contains("\"nowhere\" is not a listen address (ip:port, host:port or :port)"), "{text}");
    assert!(text.contains("2 replicas have role primary"), "{text}");
}

#[test]
fn bad_durations_and_sizes_name_the_value() {
    let text = MINIMAL.replace("    replicas:", "    scrape_interval: 5 seconds\n    replicas:");
    let err = parse(&text, "t").unwrap_err().to_string();
    assert!(err.contains("invalid duration \"5 seconds\""), "{err}");
    let text = format!("global: {{body_size_limit: lots}}\n{MINIMAL}");
    let err = parse(&text, "t").unwrap_err().to_string();
    assert!(err.contains("invalid size \"lots\""), "{err}");
}

#[test]
fn secrets_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "s3cret\n").unwrap();
    let text = format!("server:\n  authorization: {{credentials_file: {}}}\n{MINIMAL}", f.display());
    let c = parse(&text, "t").unwrap();
    assert_eq!(c.server.auth, Credentials::Header { scheme: "Bearer".into(), credentials: "s3cret".into() });
    let text = format!("server:\n  authorization: {{credentials_file: {}/missing}}\n{MINIMAL}", dir.path().display());
    let err = parse(&text, "t").unwrap_err().to_string();
    assert!(err.contains("server.authorization.credentials_file: cannot read"), "{err}");
}

#[test]
fn example_configs_in_the_repo_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["deploy", "."] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("promfed") && (name.ends_with(".yml") || name.ends_with(".yaml")) {
                let text = std::fs::read_to_string(&path).unwrap();
                // Example certificate paths may not exist here: only file checks may fail.
                match parse(&text, &name) {
                    Ok(_) => {}
                    Err(ConfigError::Invalid { problems, .. }) => {
                        for p in problems {
                            let without_ec2 = !cfg!(feature = "ec2") && p.message.contains("without the `ec2` feature");
                            assert!(p.message.starts_with("cannot read") || without_ec2, "{name}: {p}");
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 1, "no example config found");
}

#[test]
fn scrape_protocols_set_the_accept_header() {
    let c = parse(MINIMAL, "t").unwrap();
    assert_eq!(
        c.groups[0].accept,
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=1.0,text/plain;version=0.0.4;q=0.7"
    );
    let text = MINIMAL.replace("    replicas:", "    scrape_protocols: [PrometheusText0.0.4]\n    replicas:");
    assert_eq!(parse(&text, "t").unwrap().groups[0].accept, "text/plain;version=0.0.4;q=1.0");
    let text = MINIMAL.replace("    replicas:", "    scrape_protocols: [OpenMetricsText1.0.0]\n    replicas:");
    let err = parse(&text, "t").unwrap_err().to_string();
    assert!(err.contains("groups[0].scrape_protocols[0]: \"OpenMetricsText1.0.0\" is not"), "{err}");
}

#[test]
fn receiver_defaults_and_a_receiver_only_config() {
    let c = parse("remote_write_receiver: {ha_tracker: {}}\n", "test").unwrap();
    assert!(c.groups.is_empty(), "no group is needed when promfed receives pushes");
    let r = c.receiver.unwrap();
    assert_eq!(r.max_body_size, 10 << 20);
    assert_eq!(r.limits, crate::remote::decode::Limits::default());
    assert_eq!(r.lookback.as_secs(), 300);
    let ha = r.ha.unwrap();
    assert_eq!((ha.cluster_label.as_str(), ha.replica_label.as_str()), ("cluster", "__replica__"));
    assert_eq!((ha.settings.update_timeout_ms, ha.settings.failover_timeout_ms), (15_000, 30_000));
    assert_eq!(ha.fill_after, None);
    // Neither groups nor a receiver: nothing to do.
    assert!(parse("server: {}\n", "test").unwrap_err().to_string().contains("no group is configured"));
}

#[test]
fn receiver_problems_are_reported_with_paths() {
    let text = r#"
remote_write_receiver:
  max_body_size: 0
  max_decoded_size: 1KiB
  max_labels_per_series: 0
  ha_tracker:
    cluster_label: "bad-label"
    replica_label: "bad-label"
    update_timeout: 30s
    failover_timeout: 30s
    max_clusters: 0
    unknown_key: 1
"#;
    let err = parse(text, "t.yml").unwrap_err().to_string();
    assert!(err.contains("unknown_key"), "{err}");
    let text = text.replace("    unknown_key: 1\n", "");
    let err = parse(&text, "t.yml").unwrap_err().to_string();
    for want in [
        "remote_write_receiver.max_body_size: must be more than 0",
        "remote_write_receiver.max_labels_per_series: must be more than 0",
        "remote_write_receiver.ha_tracker.cluster_label: \"bad-label\" is not a valid label name",
        "remote_write_receiver.ha_tracker.replica_label: must differ from cluster_label",
        "remote_write_receiver.ha_tracker.failover_timeout: 30s must be longer than update_timeout (30s)",
        "remote_write_receiver.ha_tracker.max_clusters: must be at least 1",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn remote_write_gets_prometheus_defaults_and_a_queue_under_data_dir() {
    let text = format!("{MINIMAL}remote_write:\n  - url: https://mimir:9009/api/v1/push\n");
    let c = parse(&text, "t").unwrap();
    let r = &c.remote_write[0];
    assert_eq!(r.name.len(), 6, "default name: a hash of the URL ({})", r.name);
    assert_eq!(r.queue_dir, std::path::Path::new("data/remote_write").join(&r.name));
    assert_eq!((r.capacity, r.min_shards, r.max_shards, r.max_samples_per_send), (2500, 1, 200, 500));
    assert_eq!(r.batch_send_deadline.as_secs(), 5);
    assert_eq!(r.min_backoff.as_millis(), 30);
    assert_eq!(r.max_backoff.as_secs(), 5);
    assert_eq!(r.timeout.as_secs(), 30);
    assert!(r.retry_on_http_429);
    assert_eq!(r.queue_max_bytes, 1 << 30);
    assert_eq!(r.queue_sync_interval.as_secs(), 1);
}

#[test]
fn remote_write_problems_are_all_reported() {
    let text = format!(
        r#"{MINIMAL}remote_write:
  - url: "ftp://x"
    name: "../escape"
    headers: {{Content-Type: text/plain, "bad header": x}}
    basic_auth: {{username: u, password: p}}
    authorization: {{credentials: t}}
    write_relabel_configs: [{{action: hashmod, source_labels: [a], target_label: b}}]
    queue_config: {{min_shards: 5, max_shards: 2, max_samples_per_send: 0, min_backoff: 1s, max_backoff: 10ms}}
    durable_queue: {{segment_size: 1MiB, max_size: 1MiB}}
  - url: http://a:1/write
    name: same
  - url: http://b:1/write
    name: same
"#
    );
    let err = parse(&text, "t").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "remote_write[0].url",
        "remote_write[0].name",
        "remote_write[0].headers.Content-Type",
        "remote_write[0].headers.bad header",
        "remote_write[0]",
        "remote_write[0].write_relabel_configs[0]",
        "remote_write[0].queue_config.min_shards",
        "remote_write[0].queue_config.max_samples_per_send",
        "remote_write[0].queue_config.max_backoff",
        "remote_write[0].durable_queue.max_size",
        "remote_write[2].name",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
}

#[test]
fn relabel_problems_name_the_rule_field_and_value() {
    let text = MINIMAL.replace(
        "    replicas:",
        r#"    relabel_configs:
      - {action: Keep, source_labels: [env], regex: prod}
      - {action: labeldrop, regex: tmp_.*, separator: ',', replacement: x}
      - {source_labels: [a], target_label: 'a-b'}
      - {action: labelmap, regex: '(.*)', replacement: ''}
      - {action: lowercase, source_labels: [a]}
    replicas:"#,
    );
    let err = parse(&text, "t").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let shown: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    assert_eq!(
        shown,
        [
            "groups[0].relabel_configs[1].separator: \",\" cannot be set for action labeldrop, which takes only regex",
            "groups[0].relabel_configs[1].replacement: \"x\" cannot be set for action labeldrop, which takes only regex",
            "groups[0].relabel_configs[2].target_label: \"a-b\" is not a label name (with $1 or ${name} parts) for action replace",
            "groups[0].relabel_configs[3].replacement: \"\" is not a label name (with $1 or ${name} parts) for action labelmap",
            "groups[0].relabel_configs[4].target_label: action lowercase needs a target_label",
        ],
        "the action in any case; every problem with its rule, field and value"
    );
}

#[test]
fn scrape_timeouts_follow_prometheus_and_problems_are_said_where_written() {
    let with = |global: &str, group: &str| {
        format!(
            "global: {{{global}}}\ngroups:\n  - name: g\n    {group}\n    replicas:\n      - {{name: a, address: \"127.0.0.1:9090\"}}\n"
        )
    };
    // Left out, a group's timeout is the global one capped at its interval (Prometheus).
    let c = parse(&with("", "scrape_interval: 1s"), "t").unwrap();
    assert_eq!(c.groups[0].scrape_timeout, std::time::Duration::from_secs(1));
    let c = parse(&with("scrape_interval: 4s", "labels: {}"), "t").unwrap();
    assert_eq!(c.groups[0].scrape_timeout, std::time::Duration::from_secs(4));
    // Written too long: reported once, under global, in the user's units.
    let err = parse(&with("scrape_interval: 1m, scrape_timeout: 90s", "labels: {}"), "t").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(shown, ["global.scrape_timeout: 1m30s is longer than global.scrape_interval 1m"]);
    let err = parse(&with("", "scrape_interval: 2s\n    scrape_timeout: 2500ms"), "t").unwrap_err();
    assert!(
        err.to_string().contains("groups[0].scrape_timeout: 2s500ms is longer than the group's scrape_interval 2s"),
        "{err}"
    );
}

#[test]
fn every_unknown_key_of_a_file_is_reported_in_one_run_with_the_file_name() {
    let text = "global:\n  scrape_intervall: 5s\nserver:\n  listen: \":9443\"\ngroups:\n  - name: g\n    hold_down: many\n    replicas:\n      - {name: a, adress: \"127.0.0.1:9090\"}\n";
    let err = parse(text, "promfed.yml").unwrap_err();
    let ConfigError::Syntax { problems, .. } = &err else { panic!("{err}") };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["global.scrape_intervall", "server.listen", "groups[0].hold_down", "groups[0].replicas[0].adress"],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("promfed.yml:2:3: global.scrape_intervall: unknown field `scrape_intervall`"), "{text}");
    assert!(!text.contains("<input>"), "{text}");
}

#[test]
fn static_configs_in_prometheus_shape_are_read_by_the_discovery_rules() {
    let text = r#"
groups:
  - name: g
    static_configs:
      - targets: ["prom-a:9090"]
        labels: {federation_role: primary}
      - targets: ["prom-b:9090", "prom-c:9090"]
        labels: {federation_role: secondary}
    relabel_configs:
      - {source_labels: [__address__], regex: "prom-c:.*", action: drop}
      - {source_labels: [__address__], regex: "prom-(.)(:.*)", target_label: __federation_replica__, replacement: "$1"}
"#;
    let c = parse(text, "t").unwrap();
    let got: Vec<(&str, Role, &str)> =
        c.groups[0].replicas.iter().map(|r| (r.name.as_str(), r.role, r.address.as_str())).collect();
    assert_eq!(got, [("a", Role::Primary, "prom-a:9090"), ("b", Role::Secondary, "prom-b:9090")]);

    let bad = r#"
groups:
  - name: g
    replicas: [{name: "x:1", role: primary, address: "x:1"}]
    static_configs:
      - targets: ["x:1", "nohost"]
        labels: {federation_role: primary}
      - targets: ["y:1"]
"#;
    let err = parse(bad, "t").unwrap_err().to_string();
    assert!(err.contains("groups[0].static_configs[0].targets[1]: \"nohost\" is not host:port"), "{err}");
    assert!(err.contains("groups[0].static_configs: target \"y:1\": no role label"), "{err}");
    assert!(err.contains("groups[0].replicas[0].name: \"x:1\" is used by another replica"), "{err}");
    assert!(err.contains("2 replicas have role primary"), "{err}");
}

#[test]
fn a_remote_write_block_copied_from_prometheus_loads_and_names_what_is_ignored() {
    let text = r#"
groups:
  - name: g
    replicas: [{name: a, address: "127.0.0.1:9090"}]
remote_write:
  - url: https://mimir.example/api/v1/push
    remote_timeout: 30s
    send_exemplars: false
    send_native_histograms: true
    sigv4: {region: eu-west-1}
    proxy_url: http://proxy:3128
    follow_redirects: false
    enable_http2: false
    queue_config: {capacity: 10000, max_shards: 50, sample_age_limit: 5m}
    metadata_config: {send: true, send_interval: 30s, max_samples_per_send: 500}
"#;
    let c = parse(text, "t").unwrap();
    let rw = &c.remote_write[0];
    assert_eq!(rw.sample_age_limit, Some(std::time::Duration::from_secs(300)));
    assert_eq!((rw.metadata_interval, rw.metadata_max_per_send), (Some(std::time::Duration::from_secs(30)), 500));
    assert!(!rw.enable_http2 && !rw.follow_redirects);
    let warned: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    for field in ["sigv4", "proxy_url", "send_native_histograms"] {
        assert!(warned.contains(&format!("remote_write[0].{field}").as_str()), "{field} in {warned:?}");
    }
    assert!(!warned.contains(&"remote_write[0].send_exemplars"), "false is what promfed does: {warned:?}");
    // Still refused: what no Prometheus version has.
    let err = parse(&text.replace("sigv4", "sigv5"), "t").unwrap_err().to_string();
    assert!(err.contains("remote_write[0].sigv5: unknown field"), "{err}");
    let c = parse(&text.replace("send: true", "send: false"), "t").unwrap();
    assert_eq!(c.remote_write[0].metadata_interval, None);
}
