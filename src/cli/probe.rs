//! `promfed probe KIND TARGET`: one probe from the command line, as `/probe` would run it,
//! printed for people (phase timings, certificate dates, why it failed) or as JSON.
//!
//! Exit codes: 0 the probe succeeded, 1 it failed, 2 usage (unknown module, a module of another
//! prober), 64 an invalid `--config` file.

use super::exit::EXIT_CONFIG;
use crate::config::blackbox::{Module, Modules};
use crate::sidecar::probe::{self, ProbeParams, ProbeResult};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The prober of `promfed probe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeKind {
    Http,
    Tcp,
    Dns,
    Icmp,
    /// A TCP connection with TLS from the start (certificate checks).
    Tls,
}

/// Arguments of `promfed probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The prober.
    #[arg(value_enum)]
    pub kind: ProbeKind,
    /// What to probe, as `/probe?target=` takes it: a URL (http), host:port (tcp, tls),
    /// host[:port] (dns: the server), host (icmp).
    pub target: String,
    /// A module of `--config` instead of the prober's defaults.
    #[arg(long, requires = "config")]
    pub module: Option<String>,
    /// A blackbox.yml, or a promfed config with a `probes:` section.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Longest the probe may take (default: the module's timeout, else 10s).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Print the result as JSON (every metric, the failure, the certificates).
    #[arg(long)]
    pub json: bool,
    /// Do not verify the target's certificate (its dates are still shown).
    #[arg(long)]
    pub insecure: bool,
    /// CA certificates to verify the target's certificate with.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// dns: the name to ask for (required for dns without --module).
    #[arg(long)]
    pub query_name: Option<String>,
    /// dns: the record type (default ANY).
    #[arg(long)]
    pub query_type: Option<String>,
    /// dns: ask over TCP instead of UDP.
    #[arg(long)]
    pub dns_tcp: bool,
    /// Preferred IP family: ip4 or ip6 (default ip6, falling back to the other).
    #[arg(long, value_parser = ["ip4", "ip6"])]
    pub ip_protocol: Option<String>,
    /// http: the Host header (and TLS server name), as `/probe?hostname=`.
    #[arg(long)]
    pub hostname: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::units::PromDuration::parse(s).map(|d| d.0)
}

/// Modules from a blackbox.yml or from a promfed config's `probes:` section.
fn load_modules(path: &Path) -> Result<Modules, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match Modules::parse(&text, &path.display().to_string()) {
        Ok(m) => Ok(m),
        Err(blackbox_err) => {
            // A promfed config: only its `probes:` section matters here.
            let file: crate::config::FileConfig =
                serde_saphyr::from_str(&text).map_err(|_| blackbox_err.to_string())?;
            let Some(p) = file.probes else { return Err(blackbox_err.to_string()) };
            let checked = p
                .check()
                .map_err(|problems| problems.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; "))?;
            Ok(checked.modules)
        }
    }
}

fn default_module(kind: ProbeKind) -> Module {
    let prober = match kind {
        ProbeKind::Http => "http",
        ProbeKind::Tcp | ProbeKind::Tls => "tcp",
        ProbeKind::Dns => "dns",
        ProbeKind::Icmp => "icmp",
    };
    let mut m = Module { prober: prober.into(), ..Module::default() };
    m.tcp.tls = kind == ProbeKind::Tls;
    m
}

/// Runs `promfed probe`.
pub fn run(args: ProbeArgs) -> ExitCode {
    let (name, mut module) = match (&args.module, &args.config) {
        (Some(name), Some(config)) => {
            let modules = match load_modules(config) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let Some(m) = modules.modules.get(name) else {
                eprintln!(
                    "error: no module {name:?} in {} (modules: {:?})",
                    config.display(),
                    modules.modules.keys().collect::<Vec<_>>()
                );
                return ExitCode::from(2);
            };
            (name.clone(), m.clone())
        }
        _ => (format!("{:?}", args.kind).to_lowercase(), default_module(args.kind)),
    };
    let expected = default_module(args.kind).prober;
    if module.prober != expected {
        eprintln!("error: module {name:?} uses prober {:?}, not {expected}", module.prober);
        return ExitCode::from(2);
    }
    if args.kind == ProbeKind::Tls {
        module.tcp.tls = true;
    }
    for tls in [&mut module.http.tls_config, &mut module.tcp.tls_config] {
        if args.insecure {
            tls.insecure_skip_verify = true;
        }
        if let Some(ca) = &args.ca_file {
            tls.ca_file = Some(ca.clone());
        }
    }
    if let Some(q) = &args.query_name {
        module.dns.query_name = q.clone();
    }
    if let Some(q) = &args.query_type {
        if crate::dns::rr_type(q).is_none() {
            eprintln!("error: --query-type {q:?} is not a DNS record type");
            return ExitCode::from(2);
        }
        module.dns.query_type = Some(q.clone());
    }
    if args.dns_tcp {
        module.dns.transport_protocol = Some("tcp".into());
    }
    if module.prober == "dns" && module.dns.query_name.is_empty() {
        eprintln!("error: dns needs --query-name (or a --module that has one)");
        return ExitCode::from(2);
    }
    if let Some(p) = &args.ip_protocol {
        for slot in [
            &mut module.http.preferred_ip_protocol,
            &mut module.tcp.preferred_ip_protocol,
            &mut module.dns.preferred_ip_protocol,
            &mut module.icmp.preferred_ip_protocol,
        ] {
            *slot = Some(p.clone());
        }
    }
    let timeout =
        args.timeout.unwrap_or(if module.timeout.0.is_zero() { Duration::from_secs(10) } else { module.timeout.0 });
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::trust::install_crypto_provider();
    let params = ProbeParams { hostname: args.hostname.clone() };
    let result = rt.block_on(probe::run(&args.target, &name, &module, timeout, &params));
    if args.json {
        match serde_json::to_string_pretty(&result) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        print!("{}", human(&result));
    }
    if result.success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn date(secs: i64) -> String {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.map(httpdate::fmt_http_date).unwrap_or_else(|| secs.to_string())
}

fn relative(secs: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let d = secs - now;
    let days = d.abs() as f64 / 86400.0;
    if d >= 0 { format!("in {days:.1} days") } else { format!("EXPIRED {days:.1} days ago") }
}

/// The result for people.
pub fn human(r: &ProbeResult) -> String {
    let mut o = String::new();
    let verdict = if r.success { "SUCCESS".to_owned() } else { "FAILED".to_owned() };
    let _ = writeln!(o, "{} probe of {} (module {}): {verdict}", r.prober, r.target, r.module);
    if let Some(f) = &r.failure {
        let _ = writeln!(o, "  reason        {}: {}", f.reason, f.message);
    }
    let _ = writeln!(o, "  duration      {:.6}s", r.duration_seconds);
    if let (Some(p), Some(t)) = (r.value("probe_ip_protocol"), r.value("probe_dns_lookup_time_seconds")) {
        let _ = writeln!(o, "  address       IPv{p}, looked up in {t:.6}s");
    }
    let phases: Vec<String> = r
        .samples
        .iter()
        .filter(|s| s.name.ends_with("_duration_seconds") && s.name != "probe_duration_seconds")
        .filter_map(|s| s.labels.iter().find(|(k, _)| *k == "phase").map(|(_, v)| format!("{v} {:.6}s", s.value)))
        .collect();
    if !phases.is_empty() {
        let _ = writeln!(o, "  phases        {}", phases.join("  "));
    }
    if let Some(code) = r.value("probe_http_status_code") {
        let _ = writeln!(
            o,
            "  http          status {code}, version {}, content length {}, body {} bytes, redirects {}, ssl {}",
            r.value("probe_http_version").unwrap_or(0.0),
            r.value("probe_http_content_length").unwrap_or(0.0),
            r.value("probe_http_uncompressed_body_length").unwrap_or(0.0),
            r.value("probe_http_redirects").unwrap_or(0.0),
            if r.value("probe_http_ssl") == Some(1.0) { "yes" } else { "no" },
        );
    }
    if let Some(n) = r.value("probe_dns_answer_rrs") {
        let _ = writeln!(
            o,
            "  dns           answered {}, {n} answer, {} authority, {} additional records",
            if r.value("probe_dns_query_succeeded") == Some(1.0) { "yes" } else { "no" },
            r.value("probe_dns_authority_rrs").unwrap_or(0.0),
            r.value("probe_dns_additional_rrs").unwrap_or(0.0),
        );
    }
    if let Some(h) = r.value("probe_icmp_reply_hop_limit") {
        let _ = writeln!(o, "  icmp          reply hop limit {h}");
    }
    if let Some(c) = &r.certificates {
        if let Some(v) = &c.version {
            let _ = writeln!(o, "  tls           {v} {}", c.cipher.as_deref().unwrap_or(""));
        }
        let _ = writeln!(
            o,
            "  verification  {}",
            match (&c.verify_error, c.verified_chain.is_empty()) {
                (Some(e), _) => format!("FAILED: {e}"),
                (None, true) => "not verified (insecure)".into(),
                (None, false) => "ok".into(),
            }
        );
        for (i, cert) in c.presented.iter().enumerate() {
            let _ = writeln!(
                o,
                "  certificate {i} {} (issuer {})\n                valid {} to {} ({}){}",
                cert.subject,
                cert.issuer,
                date(cert.not_before),
                date(cert.not_after),
                relative(cert.not_after),
                if cert.dns_names.is_empty() { String::new() } else { format!(", DNS {}", cert.dns_names.join(",")) }
            );
        }
    }
    o
}
