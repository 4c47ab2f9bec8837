//! promfed's `/probe` side by side with the real blackbox_exporter 0.23 (Debian's
//! `prometheus-blackbox-exporter`): the same blackbox.yml, the same loopback targets — HTTP(S)
//! servers with certificates expiring at known dates, a redirect chain, regex cases, 200/404/500,
//! a TCP banner service, an in-process DNS server, ICMP to 127.0.0.1 — and the metrics compared:
//! names, label sets and values exactly, except durations (within a tolerance) and what promfed
//! adds on purpose (`probe_failure_info`, certificate expiry of a failed handshake).
//!
//! Also: `/probe`'s error statuses and `debug=true`, scheduled probes on `/metrics` and
//! `/api/v1/probes`, and the `promfed probe` command's exit codes and `--json`.

mod common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use common::{ChildGuard, blackbox_exporter_binary, free_port};
use promfed::dns as wire;
use promfed::run::sidecar;
use promfed::sidecar::ProbesConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Known dates (seconds since the epoch) of the test certificates.
const CA_NOT_AFTER: i64 = 1_893_456_000; // 2030-01-01
const LEAF_NOT_AFTER: i64 = 1_843_430_400; // 2028-06-01
const EXPIRED_NOT_AFTER: i64 = 1_577_836_800; // 2020-01-01

fn ymd(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).expect("date")
}

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("promfed-probes-").tempdir().expect("temp dir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name.push(DnType::CommonName, "probe test CA");
        ca.distinguished_name.push(DnType::OrganizationName, "promfed");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_before = ymd(1_577_836_800 - 86_400 * 365);
        ca.not_after = ymd(CA_NOT_AFTER);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
        for (name, not_before, not_after) in
            [("good", 1_700_000_000, LEAF_NOT_AFTER), ("expired", 1_546_300_800, EXPIRED_NOT_AFTER)]
        {
            let mut p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
            p.distinguished_name.push(DnType::CommonName, format!("{name} server"));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.not_before = ymd(not_before);
            p.not_after = ymd(not_after);
            let key = KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, &ca).expect("sign");
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).expect("write");
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).expect("write");
        }
        // Issue 13: made by the openssl command line as people make them (CA:TRUE, self-signed),
        // named for 127.0.0.1 only; `ossl_other` is another such certificate nobody trusts here.
        common::openssl_self_signed(dir.path(), "ossl", "IP:127.0.0.1");
        common::openssl_self_signed(dir.path(), "ossl_other", "IP:127.0.0.1");
        Certs { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }
}

/// The HTTP test application.
fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "hello world" }))
        .route("/404", get(|| async { (StatusCode::NOT_FOUND, "not here") }))
        .route("/500", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }))
        .route("/header", get(|| async { ([("X-Test", "foo")], "with header") }))
        .route("/echo", any(|body: String| async move { format!("got {body}") }))
        .route(
            "/auth",
            get(|h: HeaderMap| async move {
                // u:p
                if h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Basic dTpw") {
                    (StatusCode::OK, "welcome").into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "who?").into_response()
                }
            }),
        )
        .route(
            "/redirect/{n}",
            get(|axum::extract::Path(n): axum::extract::Path<u32>| async move {
                let to = if n == 0 { "/ok".to_owned() } else { format!("/redirect/{}", n - 1) };
                (StatusCode::FOUND, [("Location", to)], "moved").into_response()
            }),
        )
}

async fn serve_app(tls: Option<(String, String)>, token: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    let tls = tls.map(|(cert, key)| {
        promfed::serve::TlsReloader::load(promfed::serve::TlsSettings {
            cert_file: cert.into(),
            key_file: key.into(),
            client_ca_file: None,
            min_version: None,
        })
        .expect("server TLS")
    });
    let t = token.clone();
    tokio::spawn(async move {
        let _ = promfed::serve::serve(listener, tls, app(), promfed::serve::ServeOptions::default(), t).await;
    });
    address
}

/// A TCP service sending a banner, then answering `OK <line>` to one line.
async fn banner_server(token: &CancellationToken) -> SocketAddr {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    let t = token.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = tokio::select! { _ = t.cancelled() => return, r = listener.accept() => match r { Ok(c) => c, Err(_) => return } };
            tokio::spawn(async move {
                let _ = s.write_all(b"SSH-2.0-promfed-test\r\n").await;
                let (r, mut w) = s.split();
                let mut line = String::new();
                let read = tokio::time::timeout(Duration::from_secs(5), BufReader::new(r).read_line(&mut line)).await;
                if matches!(read, Ok(Ok(n)) if n > 0) {
                    let _ = w.write_all(format!("OK {}\n", line.trim_end()).as_bytes()).await;
                }
            });
        }
    });
    address
}

fn rr(name: &str, t: u16, ttl: u32, data: &str) -> wire::Record {
    wire::Record { name: name.into(), rr_type: t, class: 1, ttl, data: String::new(), raw: wire::rdata(t, data) }
}

/// The zone of the test DNS server.
fn answer(query: &wire::Message) -> Vec<u8> {
    let Some((name, qtype, _)) = &query.question else { return wire::encode_response(query, 1, [&[], &[], &[]]) };
    let soa = rr("example.com.", 6, 300, "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300");
    let ns = rr("example.com.", 2, 300, "ns1.example.com.");
    let glue = rr("ns1.example.com.", 1, 300, "127.0.0.53");
    match (name.as_str(), *qtype) {
        ("example.com.", 1 | 255) => wire::encode_response(
            query,
            0,
            [&[rr("example.com.", 1, 300, "127.0.0.1"), rr("example.com.", 1, 300, "127.0.0.2")], &[ns], &[glue]],
        ),
        ("example.com.", 15) => {
            wire::encode_response(query, 0, [&[rr("example.com.", 15, 60, "10 mail.example.com.")], &[], &[]])
        }
        ("example.com.", 6) => wire::encode_response(query, 0, [&[soa], &[], &[]]),
        ("example.com.", 16) => {
            wire::encode_response(query, 0, [&[rr("example.com.", 16, 60, "v=spf1 -all")], &[], &[]])
        }
        _ => wire::encode_response(query, 3, [&[], &[soa], &[]]),
    }
}

/// A DNS server on one loopback port, UDP and TCP.
async fn dns_server(token: &CancellationToken) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let address = udp.local_addr().expect("addr");
        let Ok(tcp) = tokio::net::TcpListener::bind(address).await else { continue };
        let t = token.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = tokio::select! { _ = t.cancelled() => return, r = udp.recv_from(&mut buf) => match r { Ok(v) => v, Err(_) => continue } };
                if let Ok(q) = wire::decode(&buf[..n]) {
                    let _ = udp.send_to(&answer(&q), from).await;
                }
            }
        });
        let t = token.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tokio::select! { _ = t.cancelled() => return, r = tcp.accept() => match r { Ok(c) => c, Err(_) => return } };
                tokio::spawn(async move {
                    let Ok(len) = s.read_u16().await else { return };
                    let mut q = vec![0u8; len as usize];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    if let Ok(q) = wire::decode(&q) {
                        let a = answer(&q);
                        let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&a);
                        let _ = s.write_all(&framed).await;
                    }
                });
            }
        });
        return address;
    }
    panic!("no port free for both UDP and TCP");
}

fn blackbox_yml(certs: &Certs) -> String {
    let ca = certs.path("ca.pem");
    let ossl = certs.path("ossl.pem");
    format!(
        r#"modules:
  http_2xx: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4}}}}
  http_ca: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4, tls_config: {{ca_file: "{ca}"}}}}}}
  http_ossl: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4, tls_config: {{ca_file: "{ossl}"}}}}}}
  tcp_ossl: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, tls: true, tls_config: {{ca_file: "{ossl}"}}}}}}
  http_ca_http11: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4, enable_http2: false, tls_config: {{ca_file: "{ca}"}}}}}}
  http_insecure: {{prober: http, timeout: 5s, http: {{preferred_ip_protocol: ip4, tls_config: {{insecure_skip_verify: true}}}}}}
  http_404_ok: {{prober: http, http: {{preferred_ip_protocol: ip4, valid_status_codes: [404]}}}}
  http_no_redirect: {{prober: http, http: {{preferred_ip_protocol: ip4, follow_redirects: false, valid_status_codes: [302]}}}}
  http_no_redirect_old: {{prober: http, http: {{preferred_ip_protocol: ip4, no_follow_redirects: true}}}}
  http_body_match: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_body_matches_regexp: ["hello"]}}}}
  http_body_not_match: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_body_not_matches_regexp: ["hello w.rld"]}}}}
  http_header_match: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_header_matches: [{{header: X-Test, regexp: "fo+"}}]}}}}
  http_header_not_match: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_header_not_matches: [{{header: X-Test, regexp: "bar"}}]}}}}
  http_header_missing: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_header_not_matches: [{{header: X-Missing, regexp: x}}]}}}}
  http_header_missing_ok: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_header_not_matches: [{{header: X-Missing, regexp: x, allow_missing: true}}]}}}}
  http_post: {{prober: http, http: {{preferred_ip_protocol: ip4, method: POST, body: ping, headers: {{Content-Type: text/plain}}, fail_if_body_not_matches_regexp: ["got ping"]}}}}
  http_fail_if_ssl: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_ssl: true, tls_config: {{ca_file: "{ca}"}}}}}}
  http_fail_if_not_ssl: {{prober: http, http: {{preferred_ip_protocol: ip4, fail_if_not_ssl: true}}}}
  http_version_11: {{prober: http, http: {{preferred_ip_protocol: ip4, valid_http_versions: [HTTP/1.1]}}}}
  http_basic: {{prober: http, http: {{preferred_ip_protocol: ip4, basic_auth: {{username: u, password: p}}}}}}
  http_limit: {{prober: http, http: {{preferred_ip_protocol: ip4, body_size_limit: 5B}}}}
  tcp_banner: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, query_response: [{{expect: "^SSH-2.0-(.+)$"}}, {{send: "hello"}}, {{expect: "^OK hello"}}]}}}}
  tcp_banner_bad: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, query_response: [{{expect: "^NOPE"}}]}}}}
  tcp_connect: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4}}}}
  tcp_tls: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, tls: true, tls_config: {{ca_file: "{ca}"}}}}}}
  tcp_tls_insecure: {{prober: tcp, tcp: {{preferred_ip_protocol: ip4, tls: true, tls_config: {{insecure_skip_verify: true}}}}}}
  dns_a: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: A, validate_answer_rrs: {{fail_if_not_matches_regexp: ["example.com.\t300\tIN\tA\t127.0.0.[12]"]}}}}}}
  dns_a_tcp: {{prober: dns, dns: {{preferred_ip_protocol: ip4, transport_protocol: tcp, query_name: example.com, query_type: A}}}}
  dns_mx_fail: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: MX, validate_answer_rrs: {{fail_if_matches_regexp: ["mail"]}}}}}}
  dns_soa: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: SOA}}}}
  dns_txt: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: TXT, validate_answer_rrs: {{fail_if_none_matches_regexp: ["\"v=spf1 -all\""]}}}}}}
  dns_nx: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: nx.example.com, query_type: A}}}}
  dns_nx_ok: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: nx.example.com, query_type: A, valid_rcodes: [NXDOMAIN], validate_authority_rrs: {{fail_if_none_matches_regexp: ["SOA"]}}}}}}
  dns_additional_all: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: A, validate_additional_rrs: {{fail_if_all_match_regexp: ["127.0.0.53"]}}}}}}
  dns_answer_all: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, query_type: A, validate_answer_rrs: {{fail_if_all_match_regexp: ["127.0.0.1$"]}}}}}}
  dns_any: {{prober: dns, dns: {{preferred_ip_protocol: ip4, query_name: example.com, transport_protocol: tcp}}}}
  icmp: {{prober: icmp, timeout: 3s, icmp: {{preferred_ip_protocol: ip4}}}}
"#
    )
}

/// `name{sorted labels}` → value, from a text exposition body.
fn parse_exposition(body: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut pairs = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").expect("label");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(if n == 'n' { '\n' } else { n });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            pairs.push(format!("{}={value:?}", k.trim_start_matches(',')));
            rest = after[end..].trim_start_matches(',');
        }
        pairs.sort();
        let v = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("value"),
        };
        out.insert(format!("{name}{{{}}}", pairs.join(",")), v);
    }
    out
}

/// A certificate's notAfter in seconds since the epoch, as `openssl x509 -enddate` prints it.
fn openssl_not_after(pem: &str) -> f64 {
    let out = Command::new("openssl").args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", pem]).output();
    let out = out.expect("openssl x509");
    assert!(out.status.success(), "openssl x509: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let date = text.trim().strip_prefix("notAfter=").expect("notAfter=");
    // "2027-12-03 06:20:00Z"
    let n: Vec<i32> = date.trim_end_matches('Z').split(['-', ' ', ':']).map(|f| f.parse().expect("a number")).collect();
    let month = time::Month::try_from(n[1] as u8).expect("month");
    let day = time::Date::from_calendar_date(n[0], month, n[2] as u8).expect("date");
    let at = day.with_hms(n[3] as u8, n[4] as u8, n[5] as u8).expect("time");
    at.assume_utc().unix_timestamp() as f64
}

fn is_duration(key: &str) -> bool {
    key.contains("duration_seconds") || key.starts_with("probe_dns_lookup_time_seconds")
}

struct BlackboxProcess {
    port: u16,
    _child: ChildGuard,
}

async fn start_blackbox(binary: &Path, config: &Path) -> BlackboxProcess {
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let port = free_port();
        let log_path = config.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn blackbox_exporter");
        let mut guard = ChildGuard::new(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        for _ in 0..150 {
            if guard.exited() || Instant::now() > deadline {
                break;
            }
            if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/-/healthy")).send().await
                && r.status() == 200
            {
                return BlackboxProcess { port, _child: guard };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("blackbox_exporter log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    }
    panic!("blackbox_exporter did not start");
}

async fn get_probe(client: &reqwest::Client, base: &str, module: &str, target: &str) -> (u16, String) {
    let r = client
        .get(format!("{base}/probe"))
        .query(&[("module", module), ("target", target)])
        .header("X-Prometheus-Scrape-Timeout-Seconds", "10")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/probe {module} {target}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// Everything the comparison needs, started once.
struct Setup {
    certs: Certs,
    token: CancellationToken,
    http: SocketAddr,
    https: SocketAddr,
    expired: SocketAddr,
    /// Presenting the openssl self-signed `ossl.pem` and `ossl_other.pem`.
    ossl: SocketAddr,
    ossl_other: SocketAddr,
    banner: SocketAddr,
    dns: SocketAddr,
    config: std::path::PathBuf,
}

async fn setup() -> Setup {
    promfed::serve::install_crypto_provider();
    let certs = Certs::new();
    let token = CancellationToken::new();
    let http = serve_app(None, &token).await;
    let https = serve_app(Some((certs.path("good.pem"), certs.path("good.key"))), &token).await;
    let expired = serve_app(Some((certs.path("expired.pem"), certs.path("expired.key"))), &token).await;
    let ossl = serve_app(Some((certs.path("ossl.pem"), certs.path("ossl.key"))), &token).await;
    let ossl_other = serve_app(Some((certs.path("ossl_other.pem"), certs.path("ossl_other.key"))), &token).await;
    let banner = banner_server(&token).await;
    let dns = dns_server(&token).await;
    let config = certs.dir.path().join("blackbox.yml");
    std::fs::write(&config, blackbox_yml(&certs)).expect("write blackbox.yml");
    Setup { certs, token, http, https, expired, ossl, ossl_other, banner, dns, config }
}

async fn start_promfed(config: &Path, extra: &str) -> sidecar::RunningSidecar {
    let section: ProbesConfig =
        serde_saphyr::from_str(&format!("{{modules_file: \"{}\"{extra}}}", config.display())).expect("probes section");
    let probes = section.check().expect("valid probes section");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    sidecar::start(probes, Some(listener)).await.expect("sidecar")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_metrics_as_blackbox_exporter() {
    let Some(binary) = blackbox_exporter_binary() else { return };
    let s = setup().await;
    let bb = start_blackbox(&binary, &s.config).await;
    let promfed = start_promfed(&s.config, "").await;
    let (h, hs, ex) = (s.http, s.https, s.expired);
    let cases: Vec<(&str, String)> = vec![
        ("http_2xx", format!("http://{h}/ok")),
        ("http_2xx", format!("http://{h}/404")),
        ("http_2xx", format!("http://{h}/500")),
        ("http_2xx", format!("http://127.0.0.1:{}/ok", free_port())),
        ("http_404_ok", format!("http://{h}/404")),
        ("http_2xx", format!("http://{h}/redirect/3")),
        ("http_2xx", format!("http://{h}/redirect/12")),
        ("http_no_redirect", format!("http://{h}/redirect/1")),
        ("http_no_redirect_old", format!("http://{h}/redirect/1")),
        ("http_body_match", format!("http://{h}/ok")),
        ("http_body_not_match", format!("http://{h}/ok")),
        ("http_body_not_match", format!("http://{h}/404")),
        ("http_header_match", format!("http://{h}/header")),
        ("http_header_not_match", format!("http://{h}/header")),
        ("http_header_missing", format!("http://{h}/header")),
        ("http_header_missing_ok", format!("http://{h}/header")),
        ("http_post", format!("http://{h}/echo")),
        ("http_fail_if_not_ssl", format!("http://{h}/ok")),
        ("http_version_11", format!("http://{h}/ok")),
        ("http_basic", format!("http://{h}/auth")),
        ("http_2xx", format!("http://{h}/auth")),
        ("http_limit", format!("http://{h}/ok")),
        ("http_ca", format!("https://{hs}/ok")),
        ("http_ca_http11", format!("https://{hs}/ok")),
        ("http_ca", format!("https://localhost:{}/redirect/2", hs.port())),
        ("http_fail_if_ssl", format!("https://{hs}/ok")),
        ("http_insecure", format!("https://{ex}/ok")),
        ("http_ca", format!("https://{ex}/ok")),
        ("http_2xx", format!("https://{hs}/ok")),
        // openssl's self-signed CA:TRUE certificate as its own ca_file: accepted, as Go does; the
        // same certificate under a name it does not carry, and another self-signed one, refused.
        ("http_ossl", format!("https://{}/ok", s.ossl)),
        ("http_ossl", format!("https://localhost:{}/ok", s.ossl.port())),
        ("http_ossl", format!("https://{}/ok", s.ossl_other)),
        ("tcp_ossl", s.ossl.to_string()),
        ("tcp_ossl", format!("localhost:{}", s.ossl.port())),
        ("tcp_ossl", s.ossl_other.to_string()),
        ("tcp_banner", s.banner.to_string()),
        ("tcp_banner_bad", s.banner.to_string()),
        ("tcp_connect", format!("127.0.0.1:{}", free_port())),
        ("tcp_tls", hs.to_string()),
        ("tcp_tls_insecure", ex.to_string()),
        ("tcp_tls", ex.to_string()),
        ("dns_a", s.dns.to_string()),
        ("dns_a_tcp", s.dns.to_string()),
        ("dns_mx_fail", s.dns.to_string()),
        ("dns_soa", s.dns.to_string()),
        ("dns_txt", s.dns.to_string()),
        ("dns_nx", s.dns.to_string()),
        ("dns_nx_ok", s.dns.to_string()),
        ("dns_additional_all", s.dns.to_string()),
        ("dns_answer_all", s.dns.to_string()),
        ("dns_any", s.dns.to_string()),
        ("dns_a", format!("127.0.0.1:{}", free_port())),
        ("http_2xx", format!("http://{h}/ok?x=1")),
        ("icmp", "127.0.0.1".to_owned()),
    ];
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let bb_base = format!("http://127.0.0.1:{}", bb.port);
    let pf_base = format!("http://{}", promfed.address);
    let mut problems = Vec::new();
    let mut compared = 0;
    for (module, target) in &cases {
        let (bs, bbody) = get_probe(&client, &bb_base, module, target).await;
        let (ps, pbody) = get_probe(&client, &pf_base, module, target).await;
        let case = format!("{module} {target}");
        if bs != ps {
            problems.push(format!("{case}: status blackbox {bs}, promfed {ps}"));
            continue;
        }
        let (b, p) = (parse_exposition(&bbody), parse_exposition(&pbody));
        let failed = p.get("probe_success{}") == Some(&0.0);
        for (k, bv) in &b {
            let Some(pv) = p.get(k) else {
                problems.push(format!("{case}: {k} missing in promfed (blackbox: {bv})"));
                continue;
            };
            compared += 1;
            let same = if is_duration(k) {
                (pv - bv).abs() < 1.0 && *pv >= 0.0
            } else {
                pv == bv || (pv.is_nan() && bv.is_nan())
            };
            if !same {
                problems.push(format!("{case}: {k}: blackbox {bv}, promfed {pv}"));
            }
        }
        for (k, pv) in &p {
            if b.contains_key(k) {
                continue;
            }
            // What promfed adds on purpose: why it failed, and the expiry of a certificate that
            // failed verification.
            let intended = k.starts_with("probe_failure_info{") || (failed && k == "probe_ssl_earliest_cert_expiry{}");
            if !intended {
                problems.push(format!("{case}: {k} = {pv} only in promfed"));
            }
        }
        if failed != (b.get("probe_success{}") == Some(&0.0))
            || (failed && !p.keys().any(|k| k.starts_with("probe_failure_info{")))
        {
            problems.push(format!("{case}: failure without probe_failure_info"));
        }
    }
    // The certificates' known dates, as both report them.
    let (_, body) = get_probe(&client, &pf_base, "http_ca", &format!("https://{hs}/ok")).await;
    let m = parse_exposition(&body);
    assert_eq!(m.get("probe_ssl_earliest_cert_expiry{}"), Some(&(LEAF_NOT_AFTER as f64)));
    assert_eq!(m.get("probe_ssl_last_chain_expiry_timestamp_seconds{}"), Some(&(LEAF_NOT_AFTER as f64)));
    let (_, body) = get_probe(&client, &pf_base, "http_ca", &format!("https://{ex}/ok")).await;
    let m = parse_exposition(&body);
    assert_eq!(m.get("probe_ssl_earliest_cert_expiry{}"), Some(&(EXPIRED_NOT_AFTER as f64)), "{body}");
    // The openssl certificate: accepted, its expiry reported as blackbox_exporter reports it
    // (compared above) and as the file says.
    let not_after = openssl_not_after(&s.certs.path("ossl.pem"));
    for (module, target) in [("http_ossl", format!("https://{}/ok", s.ossl)), ("tcp_ossl", s.ossl.to_string())] {
        let (_, body) = get_probe(&client, &pf_base, module, &target).await;
        let m = parse_exposition(&body);
        assert_eq!(m.get("probe_success{}"), Some(&1.0), "{module} {target}: {body}");
        assert_eq!(m.get("probe_ssl_last_chain_expiry_timestamp_seconds{}"), Some(&not_after), "{body}");
        assert_eq!(m.get("probe_ssl_earliest_cert_expiry{}"), Some(&not_after), "{body}");
    }
    for target in [format!("https://localhost:{}/ok", s.ossl.port()), format!("https://{}/ok", s.ossl_other)] {
        let (_, body) = get_probe(&client, &pf_base, "http_ossl", &target).await;
        assert!(body.contains("probe_success 0"), "{target}: {body}");
    }
    eprintln!("{} cases, {compared} series compared, {} differences", cases.len(), problems.len());
    assert!(problems.is_empty(), "differences from blackbox_exporter:\n{}", problems.join("\n"));
    promfed.shutdown();
    s.token.cancel();
    let _ = s.certs;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_statuses_match_blackbox_exporter() {
    let Some(binary) = blackbox_exporter_binary() else { return };
    let s = setup().await;
    let bb = start_blackbox(&binary, &s.config).await;
    let promfed = start_promfed(&s.config, "").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let h = s.http;
    for (query, header) in [
        (format!("target=http://{h}/ok&module=nope"), None),
        ("module=http_2xx".to_owned(), None),
        (format!("target=http://{h}/ok"), None),
        (format!("target=http://{h}/404&module=http_2xx"), None),
        (format!("target=http://{h}/ok&module=http_2xx"), Some("abc")),
    ] {
        let mut statuses = Vec::new();
        for base in [format!("http://127.0.0.1:{}", bb.port), format!("http://{}", promfed.address)] {
            let mut req = client.get(format!("{base}/probe?{query}"));
            if let Some(v) = header {
                req = req.header("X-Prometheus-Scrape-Timeout-Seconds", v);
            }
            let r = req.send().await.expect("probe");
            statuses.push((r.status().as_u16(), r.text().await.expect("body").lines().next().unwrap_or("").to_owned()));
        }
        assert_eq!(statuses[0].0, statuses[1].0, "{query}: {statuses:?}");
        if statuses[0].0 == 400 {
            assert_eq!(statuses[0].1, statuses[1].1, "{query}");
        }
    }
    // debug=true: the log, the metrics, the module.
    let r = client
        .get(format!("http://{}/probe?target=http://{h}/404&module=http_2xx&debug=true", promfed.address))
        .send()
        .await
        .expect("debug");
    let body = r.text().await.expect("body");
    assert!(body.starts_with("Logs for the probe:"), "{body}");
    assert!(body.contains("Invalid HTTP response status code 404"), "{body}");
    assert!(body.contains("Metrics that would have been returned:") && body.contains("probe_http_status_code 404"));
    assert!(body.contains("Module configuration:"));
    // The scrape timeout minus 0.5 s bounds a probe of a silent server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let started = Instant::now();
    let r = client
        .get(format!("http://{}/probe?target=http://{silent_addr}/&module=http_2xx", promfed.address))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "1.5")
        .send()
        .await
        .expect("probe");
    let took = started.elapsed();
    let body = r.text().await.expect("body");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "{took:?}");
    assert!(body.contains("probe_success 0") && body.contains("probe_failure_info{reason=\"timeout\"} 1"), "{body}");
    drop(silent);
    promfed.shutdown();
    s.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_probes_on_metrics_and_status() {
    let s = setup().await;
    let extra = format!(
        ", scheduled: [{{target: 'http://{}/ok', module: http_2xx, interval: 1s}}, {{target: 'http://{}/500', module: http_2xx, interval: 1s}}], history: 3",
        s.http, s.http
    );
    let promfed = start_promfed(&s.config, &extra).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let base = format!("http://{}", promfed.address);
    let body =
        common::poll("scheduled probes to run 4 times", Duration::from_secs(15), Duration::from_millis(200), || {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let status: serde_json::Value =
                    client.get(format!("{base}/api/v1/probes")).send().await.ok()?.json().await.ok()?;
                let full =
                    status["data"].as_array()?.iter().all(|p| p["history"].as_array().is_some_and(|h| h.len() == 3));
                full.then_some(status)
            }
        })
        .await;
    let probes = body["data"].as_array().expect("array");
    assert_eq!(probes[0]["history"][0]["success"], true);
    assert_eq!(probes[1]["history"][0]["success"], false);
    assert_eq!(probes[1]["history"][0]["failure"]["reason"], "http_status");
    assert_eq!(probes[1]["history"][0]["status_code"], 500.0);
    let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("body");
    let ok = format!("probe_success{{module=\"http_2xx\",target=\"http://{}/ok\"}} 1", s.http);
    let bad = format!("probe_success{{module=\"http_2xx\",target=\"http://{}/500\"}} 0", s.http);
    assert!(metrics.contains(&ok) && metrics.contains(&bad), "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
    assert_eq!(metrics.matches("# TYPE probe_success gauge").count(), 1);
    let healthy = client.get(format!("{base}/-/healthy")).send().await.expect("healthy");
    assert_eq!(healthy.status(), 200);
    promfed.shutdown();
    tokio::time::timeout(Duration::from_secs(15), promfed.wait()).await.expect("stops in time").expect("clean stop");
    s.token.cancel();
}

fn promfed_cli(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_promfed")).args(args).stdin(Stdio::null()).output().expect("run promfed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_command_exit_codes_and_json() {
    let s = setup().await;
    let config = s.config.display().to_string();
    let ok = format!("http://{}/ok", s.http);
    let (code, out, err) = promfed_cli(&["probe", "http", &ok]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS") && out.contains("status 200") && out.contains("phases"), "{out}");

    let (code, out, _) = promfed_cli(&["probe", "http", &format!("http://{}/404", s.http)]);
    assert_eq!(code, 1);
    assert!(out.contains("http_status: Invalid HTTP response status code 404"), "{out}");

    // Certificate dates, also of an expired certificate that fails verification.
    let ca = s.certs.path("ca.pem");
    let (code, out, _) = promfed_cli(&["probe", "tls", &s.expired.to_string(), "--ca-file", &ca]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("EXPIRED") && out.contains("Wed, 01 Jan 2020 00:00:00 GMT"), "{out}");
    let (code, out, _) = promfed_cli(&["probe", "tls", &s.https.to_string(), "--ca-file", &ca, "--json"]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(json["success"], true);
    assert_eq!(json["certificates"]["presented"][0]["not_after"], LEAF_NOT_AFTER);
    assert!(
        json["samples"].as_array().expect("samples").iter().any(|m| m["name"]
            == "probe_ssl_last_chain_expiry_timestamp_seconds"
            && m["value"] == LEAF_NOT_AFTER as f64)
    );

    // Issue 13: openssl's self-signed certificate as --ca-file.
    let ossl = s.certs.path("ossl.pem");
    let (code, out, _) = promfed_cli(&["probe", "http", &format!("https://{}/ok", s.ossl), "--ca-file", &ossl]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = promfed_cli(&["probe", "tls", &s.ossl_other.to_string(), "--ca-file", &ossl]);
    assert_eq!(code, 1, "{out}");

    let (code, out, _) =
        promfed_cli(&["probe", "dns", &s.dns.to_string(), "--module", "dns_a", "--config", &config, "--json"]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["module"], "dns_a");
    let (code, out, _) =
        promfed_cli(&["probe", "tcp", &s.banner.to_string(), "--module", "tcp_banner_bad", "-c", &config, "--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(json["failure"]["reason"], "expect_regex");
    let (code, _, _) = promfed_cli(&["probe", "icmp", "127.0.0.1"]);
    assert_eq!(code, 0);

    // Usage errors: 2.
    assert_eq!(promfed_cli(&["probe", "gopher", &ok]).0, 2);
    assert_eq!(promfed_cli(&["probe", "http"]).0, 2);
    assert_eq!(promfed_cli(&["probe", "http", &ok, "--module", "x"]).0, 2, "--module needs --config");
    assert_eq!(promfed_cli(&["probe", "http", &ok, "--module", "nope", "-c", &config]).0, 2);
    assert_eq!(promfed_cli(&["probe", "tcp", &ok, "--module", "http_2xx", "-c", &config]).0, 2);
    assert_eq!(promfed_cli(&["probe", "dns", "127.0.0.1"]).0, 2, "dns without a query name");
    s.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_probe_and_exports_scheduled_probes() {
    let s = setup().await;
    let yaml = format!(
        "probes:\n  modules_file: \"{}\"\n  scheduled: [{{target: 'http://{}/ok', module: http_2xx, interval: 1s}}]\n",
        s.config.display(),
        s.http
    );
    let config = promfed::config::parse(&yaml, "test").expect("a config with only probes is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("start");
    let base = format!("http://{}", running.address);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let (status, body) = get_probe(&client, &base, "http_2xx", &format!("http://{}/404", s.http)).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("probe_http_status_code 404") && body.contains("probe_failure_info{reason=\"http_status\"} 1")
    );
    // Issue 13: a target typed unencoded, over plain HTTP/1.1 and h2 (prior knowledge).
    let typed = format!("/probe?module=http_2xx&target=http://{}/ok?q=\"1\"", s.http);
    let address = running.address.to_string();
    let mut io = common::raw_http::connect(&address, None, b"").await;
    let resp = common::raw_http::h1_get(&mut *io, &typed, "").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("probe_success 1"), "{}", resp.text());
    let io = common::raw_http::connect(&address, None, b"").await;
    let mut h2 = common::raw_http::H2Client::start(io, &address).await;
    let common::raw_http::H2Outcome::Response(resp) = h2.get(&typed, &[]).await else { panic!("stream reset") };
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains("probe_success 1"), "{}", resp.text());
    let want = format!("probe_success{{module=\"http_2xx\",target=\"http://{}/ok\"}} 1", s.http);
    common::poll("the scheduled probe on /metrics", Duration::from_secs(10), Duration::from_millis(200), || {
        let (client, base, want) = (client.clone(), base.clone(), want.clone());
        async move {
            client.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?.contains(&want).then_some(())
        }
    })
    .await;
    running.shutdown();
    tokio::time::timeout(Duration::from_secs(15), running.wait()).await.expect("stops in time").expect("clean stop");
    s.token.cancel();
}
