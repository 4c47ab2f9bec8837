//! Helpers of the tests of the repo's dashboards and alert rules (`tests/dashboards_content.rs`,
//! `tests/alerts_promtool.rs`): Grafana variable substitution, PromQL parsing with promql-parser
//! and the metric names an expression reads, and the names promfed really exports, taken from a
//! promfed started in-process.
//!
//! Why both a live promfed and `Metrics::exposed_names`: prometheus-client leaves a family
//! without series out of `/metrics` (not even `# TYPE`), so counters by reason appear only
//! once that reason happened. The live `/metrics` checks that the registered list is what is
//! served (every `promfed_*` series printed is in it) and brings the probe metrics, which are not
//! registered families but the scheduled probes' results.

use super::{TlsFiles, fake_replica, poll};
use promql_parser::parser::{Expr, Function};
use promql_parser::util::{ExprVisitor, walk_expr};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What Grafana's built-in interval variables become before parsing: durations no dashboard
/// writes by hand, so that [`range_functions`] can tell which variable a range came from.
pub const RATE_INTERVAL: &str = "61s";
pub const INTERVAL: &str = "17s";
pub const RANGE: &str = "3607s";

/// Replaces Grafana's variables in `expr` the way Grafana does before sending a query:
/// `$__rate_interval`, `$__interval`, `$__range` (also as `${…}`) by durations, `$__range_s` /
/// `$__interval_ms` / … by numbers, and template variables (`$name`, `${name}`, `${name:fmt}`,
/// `[[name]]`) by `.*` — they are used inside regex matchers. A variable that is neither
/// built-in nor in `defined` is an error (a typo, or a variable the dashboard lacks).
pub fn substitute_grafana_variables(expr: &str, defined: &[String]) -> Result<String, String> {
    let builtin = |name: &str| -> Option<&'static str> {
        Some(match name {
            "__rate_interval" => RATE_INTERVAL,
            "__interval" => INTERVAL,
            "__range" => RANGE,
            "__rate_interval_ms" | "__interval_ms" => "17000",
            "__range_s" => "3607",
            "__range_ms" => "3607000",
            _ => return None,
        })
    };
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        // `[[name]]`, `${name}`, `${name:format}`, `$name`.
        let (name, len) = if let Some(t) = tail.strip_prefix("[[") {
            match t.find("]]") {
                Some(end) if t[..end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && end > 0 => {
                    (&t[..end], end + 4)
                }
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                    continue;
                }
            }
        } else if let Some(t) = tail.strip_prefix("${") {
            let end = t.find('}').ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
            let name = t[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else if let Some(t) = tail.strip_prefix('$') {
            let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(t.len());
            let name = &t[..end];
            // `$1` in a label_replace replacement is PromQL's, not Grafana's.
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = &tail[1..];
                continue;
            }
            (name, end + 1)
        } else {
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        match builtin(name) {
            Some(v) => out.push_str(v),
            None if defined.iter().any(|d| d == name) => out.push_str(".*"),
            None => {
                return Err(format!("${name} is neither a Grafana variable nor one of the dashboard's {defined:?}"));
            }
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `expr` with promql-parser (the same grammar as Prometheus').
pub fn parse_promql(expr: &str) -> Result<Expr, String> {
    promql_parser::parser::parse(expr)
}

struct Collect<F: FnMut(&Expr)>(F);

impl<F: FnMut(&Expr)> ExprVisitor for Collect<F> {
    type Error = ();
    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
        (self.0)(e);
        Ok(true)
    }
}

fn visit(expr: &Expr, f: impl FnMut(&Expr)) {
    let _ = walk_expr(&mut Collect(f), expr);
}

/// The metric names `expr` selects (by name or by an equality matcher on `__name__`); a
/// selector without one (e.g. a regex on `__name__`) is reported as `{…}` so that a test sees it.
pub fn metric_names(expr: &Expr) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    visit(expr, |e| {
        let vs = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return,
        };
        let by_matcher = vs.matchers.matchers.iter().find(|m| {
            m.name == "__name__" && matches!(m.op, promql_parser::label::MatchOp::Equal) && !m.value.is_empty()
        });
        match (&vs.name, by_matcher) {
            (Some(n), _) => names.insert(n.clone()),
            (None, Some(m)) => names.insert(m.value.clone()),
            (None, None) => names.insert(format!("{{{}}}", vs.matchers)),
        };
    });
    names
}

/// Every call of one of `functions` in `expr` with the range of its range-vector argument
/// (`None` when the argument is not a plain matrix selector, e.g. a subquery).
pub fn range_functions(expr: &Expr, functions: &[&str]) -> Vec<(String, Option<Duration>)> {
    let mut out = Vec::new();
    visit(expr, |e| {
        if let Expr::Call(call) = e {
            let Function { name, .. } = &call.func;
            if functions.contains(name) {
                let range = call.args.args.iter().find_map(|a| match a.as_ref() {
                    Expr::MatrixSelector(ms) => Some(ms.range),
                    _ => None,
                });
                out.push(((*name).to_owned(), range));
            }
        }
    });
    out
}

/// A duration as the substitution wrote it, for comparisons with [`range_functions`].
pub fn duration(s: &str) -> Duration {
    promql_parser::util::parse_duration(s).expect("a duration")
}

/// Names (the metric of `label_values(METRIC_OR_SELECTOR, label)`) read by a Grafana
/// Prometheus variable query; `None` for other query kinds.
pub fn label_values_selector(query: &str) -> Option<&str> {
    let inner = query.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    // The label is after the last comma; a selector may contain commas itself.
    Some(match inner.rfind(',') {
        Some(i) if !inner[i..].contains('}') && !inner[i..].contains('"') => inner[..i].trim(),
        _ => inner.trim(),
    })
}

/// The series names promfed exports: every registered family (with its OpenMetrics suffixes,
/// whether or not it has a series yet) and every series name on the `/metrics` of a promfed
/// started with a group (one fake replica), a remote-write destination (a loopback receiver), a
/// remote-write receiver and scheduled probes (one over HTTPS to promfed itself, for the
/// certificate metrics; one to a closed port, for `probe_failure_info`).
///
/// Panics when `/metrics` prints a `promfed_*` series that the registered list lacks.
pub async fn promfed_exported_names() -> BTreeSet<String> {
    promfed::serve::install_crypto_provider();
    let tls = TlsFiles::new();
    let replica = fake_replica(|now_ms| {
        format!("# TYPE up gauge\nup{{job=\"node\",instance=\"n1:9100\"}} 1 {now_ms}\nnode_load1 0.5 {now_ms}\n")
    })
    .await;
    let receiver = remote_write_sink().await;
    // A port bound and released at once: probes to it fail with `connect`.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {tls_server}
data_dir: "{data}"
global: {{scrape_interval: 200ms, scrape_timeout: 150ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - {{url: "http://{receiver}/api/v1/write", name: sink, queue_config: {{batch_send_deadline: 100ms}}}}
remote_write_receiver: {{}}
probes:
  modules:
    https_2xx: {{prober: http, timeout: 2s, http: {{tls_config: {{ca_file: "{ca}"}}}}}}
    http_2xx: {{prober: http, timeout: 2s}}
  scheduled:
    - {{target: "https://127.0.0.1:{port}/-/healthy", module: https_2xx, interval: 1s}}
    - {{target: "http://{closed}/", module: http_2xx, interval: 1s}}
"#,
        tls_server = tls.server_config_yaml(false),
        data = data.path().display(),
        ca = tls.ca().display(),
        port = address.port(),
    );
    let config = promfed::config::parse(&yaml, "content test").expect("the test's config is valid");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let client = tls.client(None);
    let url = format!("https://{address}/metrics");
    let wanted = [
        "promfed_replica_up",
        "promfed_group_failover_active",
        "promfed_replica_newest_sample_timestamp_seconds",
        "promfed_remote_storage_samples_total",
        "promfed_remote_storage_queue_max_bytes",
        "probe_ssl_earliest_cert_expiry",
        "probe_failure_info",
        "probe_http_duration_seconds",
    ];
    let body = poll(
        "promfed's /metrics with every family the test waits for",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let body = client.get(&url).send().await.ok()?.text().await.ok()?;
                let names = sample_names(&body);
                wanted.iter().all(|w| names.contains(*w)).then_some(body)
            }
        },
    )
    .await;
    let registered: BTreeSet<String> = running.metrics.exposed_names().into_iter().collect();
    let served = sample_names(&body);
    let unlisted: Vec<&String> =
        served.iter().filter(|n| n.starts_with("promfed_") && !registered.contains(*n)).collect();
    assert!(unlisted.is_empty(), "/metrics serves {unlisted:?}, which Metrics::exposed_names does not list");
    running.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.wait()).await;
    registered.into_iter().chain(served).collect()
}

/// The series names of a text exposition body.
pub fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// A loopback Remote-Write receiver that accepts everything (204).
async fn remote_write_sink() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new()
        .route("/api/v1/write", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

/// The `## ` headings of docs/runbook.md (its anchors).
pub fn runbook_anchors() -> Vec<String> {
    let runbook = std::fs::read_to_string(repo_root().join("docs/runbook.md")).expect("docs/runbook.md");
    runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(|h| h.trim().to_owned()).collect()
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
