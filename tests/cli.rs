//! The `promfed` binary itself: exit codes, `check-config`, `serve` with SIGHUP certificate
//! reload and SIGTERM shutdown, and the `demo` command.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_promfed");

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([format!("-{sig}"), child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GROUPS: &str = r#"
groups:
  - name: g
    replicas:
      - {name: a, role: primary, address: "127.0.0.1:1"}
      - {name: b, role: secondary, address: "127.0.0.1:2"}
"#;

#[test]
fn check_config_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yml", GROUPS);
    let out = Command::new(BIN).args(["check-config"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 group(s))"));

    let bad = write(dir.path(), "bad.yml", &GROUPS.replace("127.0.0.1:1", "nohost").replace("name: b", "name: a"));
    let out = Command::new(BIN).args(["check-config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("groups[0].replicas[0].address: \"nohost\" is not host:port"), "{err}");
    assert!(err.contains("groups[0].replicas[1].name"), "every problem at once: {err}");

    let out = Command::new(BIN).args(["check-config", "/nonexistent/promfed.yml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent/promfed.yml"));

    // The quick tour's first command: the example's certificates are for the machine it is
    // deployed on; --syntax-only checks the rest.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/promfed.yml");
    let out = Command::new(BIN).args(["check-config", "--syntax-only"]).arg(&example).output().unwrap();
    if cfg!(feature = "ec2") {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    } else {
        // The example's third group discovers its replicas on EC2.
        assert!(String::from_utf8_lossy(&out.stderr).contains("built without the `ec2` feature"));
    }
    let out = Command::new(BIN).args(["check-config"]).arg(&example).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("server.tls_server_config.cert_file: cannot read /etc/promfed/tls/server.crt"), "{err}");
}

#[test]
fn check_config_parses_certificates_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
    write(dir.path(), "a.crt", &a.cert.pem());
    write(dir.path(), "a.key", &a.signing_key.serialize_pem());
    write(dir.path(), "b.key", &b.signing_key.serialize_pem());
    let config = |cert: &str, key: &str| {
        let text = format!(
            "server:\n  tls_server_config: {{cert_file: {}, key_file: {}}}\n{GROUPS}",
            dir.path().join(cert).display(),
            dir.path().join(key).display()
        );
        let file = write(dir.path(), "p.yml", &text);
        let out = Command::new(BIN).arg("check-config").arg(&file).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(config("a.crt", "a.key").0, Some(0));
    let (code, err) = config("p.yml", "a.key");
    assert_eq!(code, Some(64));
    assert!(err.contains("server.tls_server_config.cert_file:") && err.contains("no PEM certificate"), "{err}");
    let (code, err) = config("a.crt", "b.key");
    assert_eq!(code, Some(64));
    assert!(
        err.contains("server.tls_server_config.key_file:") && err.contains("not the key of the certificate"),
        "{err}"
    );
    let (code, err) = config("a.crt", "a.crt");
    assert_eq!(code, Some(64));
    assert!(err.contains("no PEM private key"), "{err}");
}

#[test]
fn usage_errors_exit_2_and_help_works() {
    let out = Command::new(BIN).args(["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).args(["--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "check-config", "demo"] {
        assert!(help.contains(cmd), "{help}");
    }
}

fn cert(dir: &Path, name: &str, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let c = params.signed_by(&key, issuer).unwrap();
    let der = c.der().to_vec();
    (write(dir, &format!("{name}.crt"), &c.pem()), write(dir, &format!("{name}.key"), &key.serialize_pem()), der)
}

/// The DER of the certificate the server presents.
async fn served_cert(port: u16, ca_pem: &str) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn serve_reloads_its_certificate_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let (crt, key, first) = cert(dir.path(), "first", &issuer);
    let port = free_port();
    let config = format!(
        "server:\n  listen_address: 127.0.0.1:{port}\n  tls_server_config: {{cert_file: {}, key_file: {}}}\n{GROUPS}",
        crt.display(),
        key.display()
    );
    let cfg = write(dir.path(), "promfed.yml", &config);
    let mut child = Guard(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "promfed did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served_cert(port, &ca_pem).await, first);

    // Rotate to a new certificate and send SIGHUP; the file watcher polls every 5 s, so a new
    // certificate within one second is SIGHUP's doing (the test fails if SIGHUP is ignored,
    // unless the poll happens to land in that second).
    let (crt2, key2, second) = cert(dir.path(), "second", &issuer);
    std::fs::rename(&crt2, &crt).unwrap();
    std::fs::rename(&key2, &key).unwrap();
    signal(&child.0, "HUP");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if served_cert(port, &ca_pem).await == second {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload the certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&child.0, "TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "promfed did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut log).unwrap();
    let log = log.replace('\u{1b}', "");
    assert!(log.contains("SIGHUP"), "{log}");
    assert!(log.contains("configuration reloaded"), "SIGHUP re-reads the config file too: {log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
}

#[tokio::test]
async fn demo_serves_the_merged_view_over_https() {
    let mut child = Guard(
        Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--duration", "20s"])
            .env("PROMFED_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The banner names the URL and the certificate.
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let mut ca = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while url.is_none() || ca.is_none() {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("demo banner");
        if let Some(rest) = line.strip_prefix("federated at ") {
            let (u, c) = rest.split_once(" with a self-signed certificate (").unwrap();
            url = Some(u.to_owned());
            ca = Some(c.trim_end_matches(").").to_owned());
        }
    }
    let (url, ca) = (url.unwrap(), ca.unwrap());
    let ca_pem = std::fs::read(&ca).unwrap();
    promfed::serve::install_crypto_provider();
    let client =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).unwrap()]).build().unwrap();
    // Wait (bounded) for the first merge, then check the view.
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let r = client.get(format!("{url}/federate")).query(&[("match[]", "{job=\"node\"}")]).send().await.unwrap();
        if r.status() == 200 {
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "demo never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(body.contains("node_cpu_seconds_total{"), "{body}");
    assert!(body.contains("instance:node_cpu_utilisation:rate1m{"), "{body}");
    assert!(!body.contains("replica="), "replica label removed: {body}");
    let status: serde_json::Value =
        client.get(format!("{url}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["data"][0]["name"], "demo");
    assert_eq!(status["data"][0]["replicas"].as_array().unwrap().len(), 2);
    // The demo has no file to reload: said as what to do, not as a server error.
    let r = client.post(format!("{url}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("promfed serve --config FILE"), "{text}");
}

/// `--version` as `prometheus --version` lays it out: version, branch, revision, build user
/// and date, compiler, platform.
#[test]
fn version_says_what_was_built_from_what_and_by_whom() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("promfed {} (branch: ", env!("CARGO_PKG_VERSION"))), "{text}");
    for line in ["revision: ", "build user:", "build date:", "rust version:     rustc ", "platform:"] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

/// Logs as Prometheus writes them (issue 15): logfmt by default, JSON on request, never a
/// colour code on a pipe, words lower-case, `--log.level` obeyed.
#[test]
fn logs_are_logfmt_or_json_and_never_coloured() {
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--duration", "2s"])
            .args(args)
            .env_remove("PROMFED_LOG")
            .env_remove("RUST_LOG")
            .output()
            .expect("demo runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).expect("UTF-8")
    };
    let logfmt = run(&[]);
    assert!(!logfmt.contains('\x1b'), "no ANSI codes on a pipe: {logfmt}");
    let lines: Vec<&str> = logfmt.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "the demo logs at info");
    for line in &lines {
        assert!(line.starts_with("ts=") && line.contains(" level="), "logfmt: {line}");
    }
    let scrape_loop = lines.iter().find(|l| l.contains("starting scrape loop")).expect("a scrape loop starts");
    assert!(scrape_loop.contains("group=demo") && scrape_loop.contains("role=primary"), "{scrape_loop}");

    let json = run(&["--log.format", "json"]);
    let mut roles = Vec::new();
    for line in json.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        if let Some(role) = v["role"].as_str() {
            roles.push(role.to_owned());
        }
    }
    assert!(roles.iter().any(|r| r == "primary") && roles.iter().any(|r| r == "secondary"), "{json}");

    let quiet = run(&["--log.level", "warn"]);
    assert!(!quiet.contains("starting scrape loop"), "info lines left out at warn: {quiet}");
    let filtered = run(&["--log.level", "warn", "--log", "promfed::scrape=info"]);
    assert!(filtered.contains("starting scrape loop"), "--log adds directives after the level: {filtered}");
}

/// Listen addresses as Prometheus takes them (issue 15): `:port` and `host:port` in the file,
/// `serve --web.listen-address` over it.
#[test]
fn listen_addresses_in_prometheus_forms() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = |port: u16| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return true;
                }
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (file_port, flag_port) = (free_port(), free_port());
    for listen in [format!(":{file_port}"), format!("localhost:{file_port}")] {
        let config = write(dir.path(), "p.yml", &format!("server: {{listen_address: \"{listen}\"}}\n{GROUPS}"));
        let out = Command::new(BIN).arg("check-config").arg(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{listen}: {}", String::from_utf8_lossy(&out.stderr));
        let child =
            Guard(Command::new(BIN).arg("serve").arg("--config").arg(&config).stderr(Stdio::null()).spawn().unwrap());
        assert!(healthy(file_port), "serving on {listen}");
        drop(child);
    }
    let config = write(dir.path(), "p.yml", &format!("server: {{listen_address: \":{file_port}\"}}\n{GROUPS}"));
    let child = Guard(
        Command::new(BIN)
            .args(["serve", "--web.listen-address", &format!("localhost:{flag_port}"), "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(healthy(flag_port), "the flag's address is served");
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(), "the file's is not");
    // The CLI's default is https://; this promfed serves plain HTTP: the CLI says so and what to set.
    // The listener refuses the TLS handshake at once (an alert), so the CLI does not wait for its
    // --timeout before saying so.
    let url = format!("https://127.0.0.1:{flag_port}");
    let started = Instant::now();
    let out = Command::new(BIN).args(["status", "--url", &url, "--timeout", "30s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("answers plain HTTP: use --url http://127.0.0.1:{flag_port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "answered without waiting for the 30s timeout: {err}");
    drop(child);
    let out =
        Command::new(BIN).args(["serve", "--web.listen-address", "nowhere", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--web.listen-address: \"nowhere\" is not a listen address"));
}
