//! `promfed demo`: the whole thing on one machine with nothing installed.
//!
//! Two synthetic Prometheus replicas (`a` primary, `b` secondary) serve `/federate` on loopback
//! with realistic series — node_exporter-like counters and gauges, a recording rule whose name
//! has colons, the replica label and slightly different timestamps per replica, as a real HA pair
//! has. promfed federates them over HTTPS with a freshly made self-signed certificate. On a cycle
//! the primary is stopped (its port refuses connections, as a dead Prometheus does) and started
//! again, so failover, fill and the hold-down return show in the log and in the status API.

use crate::clock::now_ms;
use crate::config::{self, Config};
use crate::run;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings of the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where promfed listens.
    pub listen: SocketAddr,
    /// How often the primary is taken down.
    pub down_every: Duration,
    /// For how long.
    pub down_for: Duration,
    /// Stop by itself after this long (None: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Where the certificate is written (a temp dir by default).
    pub dir: Option<PathBuf>,
}

/// Failures of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start a synthetic replica: {0}")]
    Replica(#[source] std::io::Error),
    #[error("cannot write the demo certificate: {0}")]
    Certificate(String),
    #[error("demo config is invalid (a bug): {0}")]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Start(#[from] run::StartError),
    #[error(transparent)]
    Run(#[from] run::RunError),
}

/// One synthetic replica's view of the world.
#[derive(Clone)]
struct Replica {
    name: &'static str,
    /// Its scrape phase: the timestamps it reports lag "now" by this much, modulo 5 s.
    phase_ms: i64,
}

const HOSTS: usize = 8;
const INTERVAL_MS: i64 = 5000;

/// The `/federate` body a replica would serve at `now_ms`.
fn federate_body(r: &Replica, now_ms: i64) -> String {
    // Each replica scraped the targets at its own phase; the sample timestamp is that time.
    let ts = (now_ms - r.phase_ms).div_euclid(INTERVAL_MS) * INTERVAL_MS + r.phase_ms;
    let secs = ts as f64 / 1000.0;
    let ext = format!("cluster=\"demo\",replica=\"{}\"", r.name);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("# TYPE up untyped\n");
    for h in 0..HOSTS {
        let _ = writeln!(out, "up{{instance=\"host-{h}:9100\",job=\"node\",{ext}}} 1 {ts}");
    }
    out.push_str("# TYPE node_cpu_seconds_total untyped\n");
    for h in 0..HOSTS {
        for cpu in 0..2 {
            for (mode, share) in [("idle", 0.8), ("system", 0.05), ("user", 0.15)] {
                let v = secs * share * (1.0 + h as f64 / 10.0);
                let _ = writeln!(
                    out,
                    "node_cpu_seconds_total{{cpu=\"{cpu}\",instance=\"host-{h}:9100\",job=\"node\",mode=\"{mode}\",{ext}}} {v:.3} {ts}"
                );
            }
        }
    }
    out.push_str("# TYPE node_memory_MemAvailable_bytes untyped\n");
    for h in 0..HOSTS {
        let v = 4e9 + 1e8 * ((secs / 60.0) + h as f64).sin();
        let _ = writeln!(
            out,
            "node_memory_MemAvailable_bytes{{instance=\"host-{h}:9100\",job=\"node\",{ext}}} {v:.0} {ts}"
        );
    }
    out.push_str("# TYPE http_requests_total untyped\n");
    for h in 0..HOSTS {
        for (code, rate) in [("200", 50.0), ("500", 0.5)] {
            let v = (secs * rate).floor();
            let _ = writeln!(
                out,
                "http_requests_total{{code=\"{code}\",handler=\"/api\",instance=\"host-{h}:8080\",job=\"api\",{ext}}} {v} {ts}"
            );
        }
    }
    out.push_str("# TYPE instance:node_cpu_utilisation:rate1m untyped\n");
    for h in 0..HOSTS {
        let v = 0.2 + 0.01 * h as f64;
        let _ = writeln!(
            out,
            "instance:node_cpu_utilisation:rate1m{{instance=\"host-{h}:9100\",job=\"node\",{ext}}} {v} {ts}"
        );
    }
    out
}

fn replica_router(r: Replica) -> Router {
    Router::new()
        .route(
            "/federate",
            get(|State(r): State<Arc<Replica>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], federate_body(&r, now_ms()))
                    .into_response()
            }),
        )
        .with_state(Arc::new(r))
}

/// Serves a replica on `addr` until `token` is cancelled.
async fn serve_replica(listener: TcpListener, r: Replica, token: CancellationToken) {
    let _ = axum::serve(listener, replica_router(r)).with_graceful_shutdown(token.cancelled_owned()).await;
}

/// Runs the demo until Ctrl-C (or `duration`).
pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let root = CancellationToken::new();
    let a = Replica { name: "a", phase_ms: 0 };
    let b = Replica { name: "b", phase_ms: 1300 };
    let la = TcpListener::bind("127.0.0.1:0").await.map_err(DemoError::Replica)?;
    let lb = TcpListener::bind("127.0.0.1:0").await.map_err(DemoError::Replica)?;
    let (addr_a, addr_b) = (la.local_addr().map_err(DemoError::Replica)?, lb.local_addr().map_err(DemoError::Replica)?);
    tokio::spawn(serve_replica(lb, b, root.child_token()));

    // The self-signed certificate.
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("promfed-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| DemoError::Certificate(format!("{}: {e}", dir.display())))?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(|e| DemoError::Certificate(e.to_string()))?;
    let (cert_file, key_file) = (dir.join("demo.crt"), dir.join("demo.key"));
    std::fs::write(&cert_file, cert.cert.pem()).map_err(|e| DemoError::Certificate(e.to_string()))?;
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).map_err(|e| DemoError::Certificate(e.to_string()))?;

    let yaml = format!(
        r#"
server:
  listen_address: "{listen}"
  tls_server_config: {{cert_file: "{cert}", key_file: "{key}"}}
groups:
  - name: demo
    scrape_interval: 5s
    scrape_timeout: 4s
    labels: {{federation_group: demo}}
    replicas:
      - {{name: a, role: primary, address: "{addr_a}"}}
      - {{name: b, role: secondary, address: "{addr_b}"}}
"#,
        listen = opts.listen,
        cert = cert_file.display(),
        key = key_file.display(),
    );
    let config: Config = config::parse(&yaml, "embedded demo config")?;
    let running = run::start(config, None).await?;
    let url = format!("https://{}", running.address);
    let ca = cert_file.display();
    println!(
        "\npromfed demo is running: two synthetic replicas (a primary on {addr_a}, b secondary on {addr_b}),\n\
         federated at {url} with a self-signed certificate ({ca}).\n\
         The primary goes down every {every:?} for {down:?}: watch the log and the status API.\n\n\
         Try:\n  \
         curl --cacert {ca} -G --data-urlencode 'match[]={{job=\"node\"}}' {url}/federate\n  \
         curl --cacert {ca} {url}/api/v1/status/groups\n  \
         curl --cacert {ca} {url}/metrics | grep promfed_group\n  \
         curl --cacert {ca} -X POST -d '{{\"replica\":\"b\"}}' {url}/api/v1/leader/demo    # pin b\n  \
         curl --cacert {ca} -X DELETE {url}/api/v1/leader/demo                      # unpin\n\n\
         Ctrl-C stops it.\n",
        every = opts.down_every,
        down = opts.down_for,
    );

    // The primary's life cycle: up, down (port closed), up again on the same port.
    let token = running.token();
    let cycle = {
        let token = token.clone();
        let root = root.clone();
        async move {
            let mut listener = Some(la);
            loop {
                let up = root.child_token();
                let l = match listener.take() {
                    Some(l) => l,
                    None => match TcpListener::bind(addr_a).await {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("demo: cannot restart replica a on {addr_a}: {e}");
                            return;
                        }
                    },
                };
                tracing::info!("demo: replica a is up");
                tokio::spawn(serve_replica(l, a.clone(), up.clone()));
                tokio::select! { _ = token.cancelled() => return, _ = tokio::time::sleep(opts.down_every) => {} }
                tracing::warn!("demo: taking replica a down for {:?}", opts.down_for);
                up.cancel();
                tokio::select! { _ = token.cancelled() => return, _ = tokio::time::sleep(opts.down_for) => {} }
            }
        }
    };
    tokio::spawn(cycle);
    if let Some(d) = opts.duration {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            token.cancel();
        });
    }
    let result = run::run_until_signalled(running).await;
    root.cancel();
    result.map_err(DemoError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_text;
    use crate::series::{BatchBuilder, Identity};

    #[test]
    fn replicas_serve_the_same_series_at_different_timestamps() {
        let id = Identity::new(vec!["replica".into()], vec![], true);
        let parse = |r: &Replica| {
            let body = federate_body(r, 1_800_000_003_000);
            let mut b = BatchBuilder::new(&id, body.len());
            parse_text(body.as_bytes(), &mut b).unwrap();
            let batch = b.finish();
            batch.entries().iter().map(|e| (batch.key(e).to_owned(), e.timestamp_ms.unwrap())).collect::<Vec<_>>()
        };
        let a = parse(&Replica { name: "a", phase_ms: 0 });
        let b = parse(&Replica { name: "b", phase_ms: 1300 });
        assert_eq!(a.len(), b.len());
        assert!(a.len() > 50);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0, "same identity once the replica label is removed");
            assert_ne!(x.1, y.1, "different scrape phase");
        }
    }
}
