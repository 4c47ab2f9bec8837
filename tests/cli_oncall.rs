//! The on-call commands of the real `promfed` binary (`status`, `leader pin|unpin`, `federate`,
//! `completions`, `--help`) against a promfed started in-process over TLS on 127.0.0.1:0, in
//! front of fake replicas (in-process `/federate` servers) and, for a group that is down,
//! replicas on closed loopback ports.
//!
//! Checked: the tables and exit codes (0 healthy, 1 down or unreachable, 2 usage), `--json`
//! against the API, pins seen through the API, the server's message on an unknown group, the
//! series `federate` prints against what `/federate` serves, and TLS, mTLS, basic auth and
//! bearer tokens each with the one-line reason a failure gives.

mod common;

use common::{Pem, TlsFiles, fake_replica, now_ms, poll, text_series};
use promfed::run::Running;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_promfed");

/// promfed started in-process with TLS.
struct Harness {
    tls: TlsFiles,
    running: Running,
    base: String,
    client: reqwest::Client,
    /// Where secret files and the like go.
    dir: tempfile::TempDir,
}

/// What goes into the config besides the listener and its certificate.
#[derive(Default)]
struct Setup {
    /// Lines under `server:` (indented two spaces).
    server: String,
    /// Require client certificates from the test CA.
    mtls: bool,
    /// The rest of the config: `groups:`, `remote_write_receiver:`.
    rest: String,
}

/// One series per instance of the replica `name`, every sample stamped `ts`.
fn replica_body(name: &str, ts: i64) -> String {
    let mut body = String::from("# TYPE up untyped\n");
    for instance in ["h1:9100", "h2:9100", "h3:9100"] {
        body.push_str(&format!("up{{instance=\"{instance}\",job=\"node\",replica=\"{name}\"}} 1 {ts}\n"));
    }
    body.push_str(&format!("node_load1{{instance=\"h1:9100\",job=\"node\",replica=\"{name}\"}} 0.25 {ts}\n"));
    body
}

/// The `groups:` section of a pair `pair` of fake replicas a (primary) and b (secondary), and
/// optionally a group `dead` whose two replicas are on closed ports.
async fn groups(dead: bool) -> String {
    let ts = now_ms() - 1000;
    let a = fake_replica(move |_| replica_body("a", ts)).await;
    let b = fake_replica(move |_| replica_body("b", ts)).await;
    let mut yaml = format!(
        "groups:\n  - name: pair\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    replicas:\n      \
         - {{name: a, role: primary, address: \"{a}\"}}\n      - {{name: b, role: secondary, address: \"{b}\"}}\n"
    );
    if dead {
        yaml.push_str(&format!(
            "  - name: dead\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    replicas:\n      \
             - {{name: x, role: primary, address: \"127.0.0.1:{}\"}}\n      \
             - {{name: y, role: secondary, address: \"127.0.0.1:{}\"}}\n",
            closed_port(),
            closed_port()
        ));
    }
    yaml
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    common::free_port()
}

impl Harness {
    async fn start(setup: Setup) -> Harness {
        common::init_tracing();
        let tls = TlsFiles::new();
        let yaml = format!(
            "server:\n  listen_address: \"127.0.0.1:0\"\n  tls_server_config: {}\n{}\n{}",
            tls.server_config_yaml(setup.mtls),
            setup.server,
            setup.rest
        );
        let config = promfed::config::parse(&yaml, "cli_oncall test").expect("valid config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind promfed");
        let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
        let base = format!("https://127.0.0.1:{}", running.address.port());
        let client = if setup.mtls { tls.client(Some(&tls.pki.client("on-call"))) } else { tls.client(None) };
        let dir = tempfile::tempdir().expect("temp dir");
        Harness { tls, running, base, client, dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// `--url` and `--ca-file` for this promfed.
    fn target(&self) -> Vec<String> {
        vec!["--url".into(), self.base.clone(), "--ca-file".into(), path(&self.tls.ca())]
    }

    /// Runs `promfed ARGS… --url … --ca-file …`.
    async fn run(&self, args: &[&str]) -> Out {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.extend(self.target());
        run(all).await
    }

    /// `data` of a GET on the API (as the test's own client sees it).
    async fn api(&self, path: &str, auth: Option<(&str, &str)>) -> serde_json::Value {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some((user, password)) = auth {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{path}");
        let json: serde_json::Value = resp.json().await.expect("JSON");
        json["data"].clone()
    }

    async fn group(&self, name: &str) -> serde_json::Value {
        let groups = self.api("/api/v1/status/groups", None).await;
        groups.as_array().expect("array").iter().find(|g| g["name"] == name).cloned().expect("group listed")
    }

    /// Waits until every replica of `group` has been scraped, successfully or not as `healthy`.
    async fn wait_scraped(&self, group: &str, healthy: bool) {
        poll(&format!("group {group} scraped"), Duration::from_secs(15), Duration::from_millis(100), || async {
            let g = self.group(group).await;
            g["replicas"].as_array()?.iter().all(|r| r["healthy"] == healthy).then_some(())
        })
        .await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// What a run of the binary gave.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary (off the async workers: promfed serves on this runtime), with none of the
/// caller's `PROMFED_*` settings.
async fn run(args: Vec<String>) -> Out {
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(&args).env("PROMFED_LOG", "warn");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PROMFED_") && k != "PROMFED_LOG" {
                cmd.env_remove(k);
            }
        }
        let out = cmd.output().expect("run promfed");
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// The line of `text` that starts with these whitespace-separated words.
fn line<'a>(text: &'a str, words: &[&str]) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().take(words.len()).eq(words.iter().copied()))
        .unwrap_or_else(|| panic!("no line starting with {words:?} in:\n{text}"))
}

// -------------------------------------------------------------------------------------------------
// status

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_healthy_pair_and_exits_0() {
    let h = Harness::start(Setup { rest: groups(false).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let out = h.run(&["status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let text = &out.stdout;
    assert!(text.starts_with(&format!("promfed {}: 1 group(s), 0 without a healthy leader\n", h.base)), "{text}");
    let header = line(text, &["GROUP", "STATE", "LEADER"]);
    let pair = line(text, &["pair", "ok", "a", "-", "a", "0"]);
    // Aligned: each value starts where its header does.
    assert_eq!(pair.find(" a ").map(|i| i + 1), header.find("LEADER"), "{text}");
    let a = line(text, &["pair", "a", "primary"]);
    let b = line(text, &["pair", "b", "secondary"]);
    let replicas_header = line(text, &["GROUP", "REPLICA"]);
    for (row, leads) in [(a, "*"), (b, "")] {
        let at = replicas_header.find("LEADS").expect("LEADS column");
        assert_eq!(row[at..].split_whitespace().next() == Some("*"), leads == "*", "{text}");
        assert!(row.contains(" up "), "{row}");
        assert!(row.trim_end().ends_with(" -"), "no last error: {row}");
    }
    assert!(!text.contains("DOWN") && !text.contains('\x1b'), "no colour when not a terminal: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_1_naming_a_group_whose_replicas_are_down() {
    let h = Harness::start(Setup { rest: groups(true).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    h.wait_scraped("dead", false).await;
    let out = h.run(&["status"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = &out.stdout;
    assert!(text.contains("2 group(s), 1 without a healthy leader"), "{text}");
    line(text, &["pair", "ok"]);
    line(text, &["dead", "DOWN"]);
    for replica in ["x", "y"] {
        let row = line(text, &["dead", replica]);
        assert!(row.contains(" DOWN "), "{row}");
        assert!(row.contains("refused"), "the last error is shown: {row}");
    }
    assert!(text.trim_end().ends_with("group dead is DOWN: every replica's last scrape failed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_is_what_the_api_serves() {
    let h = Harness::start(Setup { rest: groups(true).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    h.wait_scraped("dead", false).await;
    let out = h.run(&["status", "--json"]).await;
    assert_eq!(out.code, Some(1), "a group is down: {out:?}");
    assert!(out.stderr.contains("group dead is DOWN"), "the verdict goes to stderr: {out:?}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
    assert_eq!(json["url"], h.base);
    assert_eq!(json["ha_clusters"], serde_json::json!([]), "no receiver");
    let api = h.api("/api/v1/status/groups", None).await;
    // Times and counters move between the two requests; everything else is the same.
    let stable = |v: &serde_json::Value| {
        let mut v = v.clone();
        for g in v.as_array_mut().expect("groups") {
            for r in g["replicas"].as_array_mut().expect("replicas") {
                for moving in ["consecutive_good_scrapes", "last_scrape_ms", "last_duration_seconds"] {
                    r.as_object_mut().expect("object").remove(moving);
                }
            }
        }
        v
    };
    assert_eq!(stable(&json["groups"]), stable(&api));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_remote_write_ha_clusters() {
    use promfed::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message as _;
    let rest = "remote_write_receiver:\n  ha_tracker: {}\n".to_owned();
    let h = Harness::start(Setup { rest, ..Setup::default() }).await;
    let labels = [("__name__", "up"), ("__replica__", "p0"), ("cluster", "k8s"), ("job", "api")];
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![Sample { value: 1.0, timestamp: now_ms() }],
            exemplars: vec![],
        }],
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).expect("snappy");
    let resp = h
        .client
        .post(format!("{}/api/v1/write", h.base))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status(), 204);

    let out = h.run(&["status"]).await;
    assert_eq!(out.code, Some(0), "a pushed group has no leader to lack: {out:?}");
    line(&out.stdout, &["push/k8s", "pushed"]);
    assert!(out.stdout.contains("Remote-Write HA clusters:"), "{}", out.stdout);
    line(&out.stdout, &["k8s", "p0"]);
    let json: serde_json::Value = serde_json::from_str(&h.run(&["status", "--json"]).await.stdout).expect("JSON");
    assert_eq!(json["ha_clusters"][0]["elected"], "p0");
}

// -------------------------------------------------------------------------------------------------
// leader

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_pin_and_unpin_change_the_leader() {
    let h = Harness::start(Setup { rest: groups(false).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let out = h.run(&["leader", "pin", "pair", "b"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "group pair: pinned b (was none)\ngroup pair: leader b (was a)\n");
    let g = h.group("pair").await;
    assert_eq!((&g["pinned"], &g["leader"]), (&"b".into(), &"b".into()), "{g}");

    let out = h.run(&["leader", "unpin", "pair"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("group pair: pinned none (was b)\n"), "{out:?}");
    assert_eq!(h.group("pair").await["pinned"], serde_json::Value::Null);
    poll("a to lead again", Duration::from_secs(10), Duration::from_millis(100), || async {
        (h.group("pair").await["leader"] == "a").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_pin_of_an_unknown_group_or_replica_exits_1_with_the_message() {
    let h = Harness::start(Setup { rest: groups(false).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let out = h.run(&["leader", "pin", "nope", "b"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("404 Not Found: group \"nope\" does not exist"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
    let out = h.run(&["leader", "pin", "pair", "zz"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("replica \"zz\" is not a member of group \"pair\""), "{out:?}");
    let out = h.run(&["leader", "unpin", "nope"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(h.run(&["leader", "pin", "pair"]).await.code, Some(2), "a missing REPLICA is a usage error");
    let g = h.group("pair").await;
    assert_eq!((&g["pinned"], &g["leader"]), (&serde_json::Value::Null, &"a".into()), "unchanged: {g}");
}

// -------------------------------------------------------------------------------------------------
// federate

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federate_prints_the_served_series_sorted() {
    let h = Harness::start(Setup { rest: groups(false).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let resp = h.client.get(format!("{}/federate?match[]=up&match[]=node_load1", h.base)).send().await.expect("GET");
    let served = text_series(&resp.bytes().await.expect("body"), &[]);
    assert_eq!(served.len(), 4);
    for format in ["text", "protobuf"] {
        let out = h.run(&["federate", "--match", "up", "--match", "node_load1", "--format", format]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        let mut lines = out.stdout.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with(&format!("4 series from {}/federate?match%5B%5D=up", h.base)), "{header}");
        assert!(header.contains(&format!("({format}, ")), "{header}");
        let printed: Vec<(String, f64)> = lines
            .map(|l| {
                let mut words = l.split_whitespace();
                let key = words.next().expect("series").to_owned();
                (key, words.next().expect("value").parse().expect("number"))
            })
            .collect();
        let expected: Vec<(String, f64)> = served.iter().map(|(k, s)| (k.clone(), s.value)).collect();
        assert_eq!(printed, expected, "the served series in promfed's order:\n{}", out.stdout);
    }
    let out = h.run(&["federate", "--match", "up{"]).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("400 Bad Request") && out.stderr.contains("up{"), "{out:?}");
    assert_eq!(h.run(&["federate"]).await.code, Some(2), "--match is required");
}

// -------------------------------------------------------------------------------------------------
// TLS and credentials

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_ca_and_failures_are_one_line() {
    let h = Harness::start(Setup { rest: groups(false).await, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let without_ca = run(vec!["status".into(), "--url".into(), h.base.clone()]).await;
    assert_eq!(without_ca.code, Some(1), "{without_ca:?}");
    assert!(without_ca.stdout.is_empty());
    let err = without_ca.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("TLS with") && err.contains("UnknownIssuer") && err.contains("--ca-file"), "{err}");
    let insecure = run(vec!["status".into(), "--url".into(), h.base.clone(), "--insecure".into()]).await;
    assert_eq!(insecure.code, Some(0), "{insecure:?}");

    let plain = run(vec!["status".into(), "--url".into(), h.base.replace("https:", "http:")]).await;
    assert_eq!(plain.code, Some(1), "{plain:?}");
    assert!(plain.stderr.contains("use an https:// URL"), "{plain:?}");

    let refused = run(vec!["status".into(), "--url".into(), format!("https://127.0.0.1:{}", closed_port())]).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("connection refused"), "{refused:?}");
    assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");

    let missing_ca = h.run(&["status", "--ca-file", "/nonexistent/ca.pem"]).await;
    assert_eq!(missing_ca.code, Some(2), "--ca-file given twice is a usage error: {missing_ca:?}");
    let out =
        run(vec!["status".into(), "--url".into(), h.base.clone(), "--ca-file".into(), "/nonexistent/ca.pem".into()])
            .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("cannot read /nonexistent/ca.pem"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_needs_a_client_certificate() {
    let h = Harness::start(Setup { rest: groups(false).await, mtls: true, ..Setup::default() }).await;
    h.wait_scraped("pair", true).await;
    let out = h.run(&["status"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    // The refusal is a TLS alert, or the connection closing (reset, broken pipe) before the
    // client reads it.
    assert!(out.stderr.contains("--cert-file"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    let id: Pem = h.tls.pki.client("on-call");
    let (cert, key) = (h.write("client.pem", &id.cert), h.write("client.key", &id.key));
    let out = h.run(&["status", "--cert-file", &path(&cert), "--key-file", &path(&key)]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(h.run(&["status", "--cert-file", &path(&cert)]).await.code, Some(2), "--key-file is required too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_flags() {
    let server = "  basic_auth: {username: oncall, password: s3cret}".to_owned();
    let h = Harness::start(Setup { server, rest: groups(false).await, ..Setup::default() }).await;
    poll("pair scraped", Duration::from_secs(15), Duration::from_millis(100), || async {
        let groups = h.api("/api/v1/status/groups", Some(("oncall", "s3cret"))).await;
        (groups[0]["replicas"].as_array()?.iter().all(|r| r["healthy"] == true)).then_some(())
    })
    .await;
    let out = h.run(&["status"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("401 Unauthorized") && out.stderr.contains("--basic-auth-user"), "{out:?}");
    let good = h.write("password", "s3cret\n");
    let wrong = h.write("wrong", "guess");
    let with = |file: &Path| {
        vec![
            "status".to_owned(),
            "--basic-auth-user".into(),
            "oncall".into(),
            "--basic-auth-password-file".into(),
            path(file),
        ]
    };
    let args = with(&good);
    let out = h.run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let args = with(&wrong);
    let out = h.run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("401 Unauthorized") && out.stderr.contains("refused these credentials"), "{out:?}");
    let out = h
        .run(&["leader", "pin", "pair", "b", "--basic-auth-user", "oncall", "--basic-auth-password-file", &path(&good)])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flag() {
    let server = "  authorization: {type: Bearer, credentials: t0ken}".to_owned();
    let h = Harness::start(Setup { server, rest: groups(false).await, ..Setup::default() }).await;
    let token = h.write("token", "t0ken\n");
    poll("pair scraped", Duration::from_secs(15), Duration::from_millis(200), || async {
        let out = h.run(&["status", "--bearer-token-file", &path(&token)]).await;
        (out.code == Some(0)).then_some(())
    })
    .await;
    let out = h.run(&["federate", "--match", "up", "--bearer-token-file", &path(&token)]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("3 series"), "{out:?}");
    assert_eq!(h.run(&["status"]).await.code, Some(1));
}

// -------------------------------------------------------------------------------------------------
// help and completions

#[tokio::test]
async fn every_command_has_help() {
    use clap::CommandFactory;
    fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, path, out);
        }
    }
    let mut commands = vec![vec![]];
    paths(&promfed::cli::Cli::command(), vec![], &mut commands);
    for expected in [&["status"][..], &["leader", "pin"], &["leader", "unpin"], &["federate"], &["completions"]] {
        assert!(commands.iter().any(|c| c == expected), "{expected:?} in {commands:?}");
    }
    for path in commands {
        let mut args = path.clone();
        args.push("--help".into());
        let out = run(args).await;
        assert_eq!(out.code, Some(0), "{path:?}: {out:?}");
        assert!(out.stdout.contains("Usage: promfed"), "{path:?}: {}", out.stdout);
    }
    let out = run(vec!["status".into(), "--help".into()]).await;
    for flag in [
        "--url",
        "--ca-file",
        "--insecure",
        "--cert-file",
        "--key-file",
        "--basic-auth-user",
        "--basic-auth-password-file",
        "--bearer-token-file",
        "--timeout",
        "--json",
        "PROMFED_URL",
    ] {
        assert!(out.stdout.contains(flag), "{flag} in:\n{}", out.stdout);
    }
}

#[tokio::test]
async fn completions_produce_a_script_for_each_shell() {
    let out = run(vec!["completions".into(), "bash".into()]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("_promfed()") && out.stdout.contains("complete -F _promfed"), "{}", out.stdout);
    assert!(out.stdout.contains("--basic-auth-password-file"), "flags are completed");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(vec!["completions".into(), shell.into()]).await;
        assert_eq!(out.code, Some(0), "{shell}: {out:?}");
        assert!(out.stdout.contains("federate"), "{shell}: {}", out.stdout);
    }
    assert_eq!(run(vec!["completions".into(), "tcsh".into()]).await.code, Some(2));
}

// -------------------------------------------------------------------------------------------------
// runbook

/// Alert rules link to the runbook's `##` headings: each anchor listed in its table, and each one
/// the CLI or README points at, must be a heading.
#[test]
fn runbook_anchors_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runbook = std::fs::read_to_string(root.join("docs/runbook.md")).expect("docs/runbook.md");
    let headings: Vec<&str> = runbook.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let mut linked: Vec<String> =
        runbook.split("](#").skip(1).map(|rest| rest.split(')').next().unwrap_or_default().to_owned()).collect();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let api = std::fs::read_to_string(root.join("src/cli/api.rs")).expect("src/cli/api.rs");
    for text in [&readme, &api] {
        linked.extend(
            text.split("runbook.md#")
                .skip(1)
                .map(|rest| rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect::<String>()),
        );
    }
    assert!(linked.len() > 13, "{linked:?}");
    for anchor in &linked {
        assert!(headings.contains(&anchor.as_str()), "#{anchor} is linked but not a heading of docs/runbook.md");
    }
    for required in [
        "replica-down",
        "group-down",
        "failover-stuck",
        "leader-pinned",
        "upstream-stale",
        "discovery-failing",
        "certificate-expiring",
        "replica-certificate-expiring",
        "probe-failing",
        "remote-write-behind",
        "remote-write-failing",
        "remote-write-queue-full",
    ] {
        assert!(headings.contains(&required), "## {required} in docs/runbook.md");
    }
}
