//! blackbox_exporter's modules file (`blackbox.yml`), read unchanged.
//!
//! Field names, defaults and the "unknown field is an error" rule are blackbox_exporter 0.23's
//! (its `CONFIGURATION.md` and `config/config.go`; checked against the Debian 0.23.0 binary with
//! `--config.check`). Regexes are compiled at load, as blackbox_exporter does, so a bad one is a
//! load error naming the module and field. A few fields are accepted but not acted on (`oauth2`,
//! `proxy_url`, `source_ip_address`, `dont_fragment`, `dns_over_tls`, the `grpc` prober): they
//! are listed by [`Modules::unsupported`] so a caller can warn.

use crate::config::units::{ByteSize, PromDuration};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The modules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error("cannot read modules file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("modules file {origin} does not parse: {}", problems.iter().map(|p| p.located_in(origin)).collect::<Vec<_>>().join("; "))]
    Syntax { origin: String, problems: Vec<crate::config::yaml::SyntaxProblem> },
    #[error("modules file {origin}: {}", problems.join("; "))]
    Invalid { origin: String, problems: Vec<String> },
}

/// The whole file: `modules:` and nothing else.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Modules {
    /// The modules by name, as `/probe?module=NAME` selects them.
    #[serde(default)]
    pub modules: BTreeMap<String, Module>,
}

/// One module.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// `http`, `tcp`, `dns`, `icmp` (`grpc` is accepted and fails at probe time).
    #[serde(default)]
    pub prober: String,
    /// Longest a probe may take; the scrape's timeout minus 0.5 s when that is shorter. Unset: 120 s.
    #[serde(default)]
    pub timeout: PromDuration,
    #[serde(default)]
    pub http: HttpProbe,
    #[serde(default)]
    pub tcp: TcpProbe,
    #[serde(default)]
    pub dns: DnsProbe,
    #[serde(default)]
    pub icmp: IcmpProbe,
    #[serde(default)]
    pub grpc: GrpcProbe,
}

fn yes() -> bool {
    true
}

/// A regex compiled at load, kept with its source text for display and serialisation.
#[derive(Clone, Debug)]
pub struct ProbeRegex(pub Regex);

impl<'de> Deserialize<'de> for ProbeRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Regex::new(&s).map(ProbeRegex).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

/// In the config reference: a string (a regular expression).
impl schemars::JsonSchema for ProbeRegex {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Regex".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "regex"})
    }
    fn inline_schema() -> bool {
        true
    }
}

impl Serialize for ProbeRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// Prometheus' client `tls_config` as blackbox_exporter 0.23 takes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeTlsConfig {
    /// Accept any certificate (its dates are still reported).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// CA certificates to verify the target's certificate; the system roots otherwise.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (mTLS).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Name sent as SNI and verified, instead of the target's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// `TLS10`…`TLS13`; TLS 1.0/1.1 are not offered by rustls (TLS12 is the floor either way).
    #[serde(default)]
    pub min_version: Option<String>,
    /// `TLS12` or `TLS13`.
    #[serde(default)]
    pub max_version: Option<String>,
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeBasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// `authorization`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeAuthorization {
    /// Default `Bearer`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// `oauth2` (accepted, not used: see [`Modules::unsupported`]).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub token_url: String,
    #[serde(default)]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(default)]
    pub tls_config: Option<ProbeTlsConfig>,
    #[serde(default)]
    pub proxy_url: Option<String>,
}

/// One `fail_if_header_(not_)matches` entry.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: ProbeRegex,
    /// With `fail_if_header_not_matches`: a missing header does not fail the probe.
    #[serde(default)]
    pub allow_missing: bool,
}

/// `http:`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Accepted status codes; empty means 2xx.
    #[serde(default)]
    pub valid_status_codes: Vec<u16>,
    /// Accepted versions as Go names them: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`. Empty: any.
    #[serde(default)]
    pub valid_http_versions: Vec<String>,
    #[serde(default)]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub skip_resolve_phase_with_proxy: bool,
    /// Deprecated in blackbox_exporter: the opposite of `follow_redirects`.
    #[serde(default)]
    pub no_follow_redirects: Option<bool>,
    #[serde(default)]
    pub fail_if_ssl: bool,
    #[serde(default)]
    pub fail_if_not_ssl: bool,
    /// Default `GET`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub fail_if_body_matches_regexp: Vec<ProbeRegex>,
    #[serde(default)]
    pub fail_if_body_not_matches_regexp: Vec<ProbeRegex>,
    #[serde(default)]
    pub fail_if_header_matches: Vec<HeaderMatch>,
    #[serde(default)]
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    #[serde(default)]
    pub body: Option<String>,
    /// Largest (uncompressed) body read; 0: no limit. More fails the probe.
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// `gzip`, `deflate` or `identity` (`br` is refused at load: not built in).
    #[serde(default)]
    pub compression: String,
    // Prometheus' HTTPClientConfig, inlined as blackbox_exporter does.
    #[serde(default)]
    pub basic_auth: Option<ProbeBasicAuth>,
    #[serde(default)]
    pub authorization: Option<ProbeAuthorization>,
    #[serde(default)]
    pub oauth2: Option<OAuth2>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_config: ProbeTlsConfig,
    #[serde(default)]
    pub proxy_url: Option<String>,
    #[serde(default)]
    pub proxy_connect_header: BTreeMap<String, Vec<String>>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

impl Default for HttpProbe {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("the empty http probe parses")
    }
}

impl HttpProbe {
    /// Whether redirects are followed (`no_follow_redirects` wins when given, as in 0.23).
    pub fn follows_redirects(&self) -> bool {
        match self.no_follow_redirects {
            Some(no) => !no,
            None => self.follow_redirects,
        }
    }
}

/// One step of `query_response`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryResponse {
    /// Read lines until one matches; `${1}` in `send` refers to its groups.
    #[serde(default)]
    pub expect: Option<ProbeRegex>,
    /// A line to send (`\n` appended).
    #[serde(default)]
    pub send: Option<String>,
    /// Upgrade the connection to TLS here.
    #[serde(default)]
    pub starttls: bool,
}

/// `tcp:`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    #[serde(default)]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub source_ip_address: Option<String>,
    #[serde(default)]
    pub query_response: Vec<QueryResponse>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub tls_config: ProbeTlsConfig,
}

impl Default for TcpProbe {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("the empty tcp probe parses")
    }
}

/// `validate_*_rrs`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RrValidator {
    /// Fails if any record matches any of these.
    #[serde(default)]
    pub fail_if_matches_regexp: Vec<ProbeRegex>,
    /// Fails if every record matches one of these (and there is a record).
    #[serde(default)]
    pub fail_if_all_match_regexp: Vec<ProbeRegex>,
    /// Fails if some record does not match one of these.
    #[serde(default)]
    pub fail_if_not_matches_regexp: Vec<ProbeRegex>,
    /// Fails if no record matches one of these.
    #[serde(default)]
    pub fail_if_none_matches_regexp: Vec<ProbeRegex>,
}

/// `dns:`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsProbe {
    #[serde(default)]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub source_ip_address: Option<String>,
    /// `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport_protocol: Option<String>,
    #[serde(default)]
    pub dns_over_tls: bool,
    #[serde(default)]
    pub tls_config: ProbeTlsConfig,
    #[serde(default)]
    pub query_name: String,
    /// Default `ANY`.
    #[serde(default)]
    pub query_type: Option<String>,
    /// Default `IN`.
    #[serde(default)]
    pub query_class: Option<String>,
    #[serde(default = "yes")]
    pub recursion_desired: bool,
    /// Default `[NOERROR]`.
    #[serde(default)]
    pub valid_rcodes: Vec<String>,
    #[serde(default)]
    pub validate_answer_rrs: RrValidator,
    #[serde(default)]
    pub validate_authority_rrs: RrValidator,
    #[serde(default)]
    pub validate_additional_rrs: RrValidator,
}

impl Default for DnsProbe {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("the empty dns probe parses")
    }
}

/// `icmp:`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpProbe {
    #[serde(default)]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub source_ip_address: Option<String>,
    #[serde(default)]
    pub dont_fragment: bool,
    /// Bytes of payload after the 8-byte ICMP header (default: a 36-byte payload, as blackbox).
    #[serde(default)]
    pub payload_size: Option<usize>,
    /// Hop limit of the request (default 64, at most 255).
    #[serde(default)]
    pub ttl: Option<u32>,
}

impl Default for IcmpProbe {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("the empty icmp probe parses")
    }
}

/// `grpc:` (accepted so that a blackbox.yml with a gRPC module loads; not probed).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbe {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub tls_config: ProbeTlsConfig,
}

impl Default for GrpcProbe {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("the empty grpc probe parses")
    }
}

impl Modules {
    /// Parses and checks modules YAML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Modules, ModulesError> {
        let m: Modules = crate::config::yaml::from_str(text)
            .map_err(|problems| ModulesError::Syntax { origin: origin.to_owned(), problems })?;
        let problems = m.problems();
        if problems.is_empty() { Ok(m) } else { Err(ModulesError::Invalid { origin: origin.to_owned(), problems }) }
    }

    /// Reads and checks a `blackbox.yml`.
    pub fn load(path: &Path) -> Result<Modules, ModulesError> {
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ModulesError::Read { path: origin.clone(), source })?;
        Self::parse(&text, &origin)
    }

    /// The checks blackbox_exporter 0.23 makes at load (plus the ones for what promfed cannot
    /// do), every problem at once.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, m) in &self.modules {
            let at = |f: &str| format!("modules.{name}.{f}");
            if m.prober == "dns" && m.dns.query_name.is_empty() {
                p.push(format!("{}: query name must be set for DNS module", at("dns.query_name")));
            }
            if let Some(t) = m.dns.transport_protocol.as_deref()
                && !matches!(t, "udp" | "tcp")
            {
                p.push(format!("{}: {t:?} is not udp or tcp", at("dns.transport_protocol")));
            }
            if let Some(qt) = &m.dns.query_type
                && crate::dns::rr_type(qt).is_none()
            {
                p.push(format!("{}: query type {qt:?} is not valid", at("dns.query_type")));
            }
            if let Some(qc) = &m.dns.query_class
                && crate::dns::class(qc).is_none()
            {
                p.push(format!("{}: query class {qc:?} is not valid", at("dns.query_class")));
            }
            for rc in &m.dns.valid_rcodes {
                if crate::dns::rcode(rc).is_none() {
                    p.push(format!("{}: rcode {rc:?} is not valid", at("dns.valid_rcodes")));
                }
            }
            if let Some(ttl) = m.icmp.ttl
                && ttl > 255
            {
                p.push(format!("{}: \"ttl\" cannot exceed 255", at("icmp.ttl")));
            }
            if !matches!(m.http.compression.as_str(), "" | "gzip" | "deflate" | "identity") {
                p.push(format!(
                    "{}: {:?} is not supported (gzip, deflate, identity)",
                    at("http.compression"),
                    m.http.compression
                ));
            }
            if let Some(b) = &m.http.basic_auth
                && b.password.is_some()
                && b.password_file.is_some()
            {
                p.push(format!(
                    "{}: at most one of basic_auth password & password_file must be configured",
                    at("http")
                ));
            }
            if m.http.bearer_token.is_some() && m.http.bearer_token_file.is_some() {
                p.push(format!("{}: at most one of bearer_token & bearer_token_file must be configured", at("http")));
            }
            if let Some(o) = &m.http.oauth2
                && o.client_secret.is_none()
                && o.client_secret_file.is_none()
            {
                p.push(format!("{}: either oauth2 client_secret or client_secret_file must be configured", at("http")));
            }
            for (f, t) in [("http", &m.http.tls_config), ("tcp", &m.tcp.tls_config), ("dns", &m.dns.tls_config)] {
                for (k, v) in [("min_version", &t.min_version), ("max_version", &t.max_version)] {
                    if let Some(v) = v
                        && !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13")
                    {
                        p.push(format!("{}: unknown TLS version: {v}", at(&format!("{f}.tls_config.{k}"))));
                    }
                }
            }
        }
        p
    }

    /// Settings that load but that promfed does not act on, as `modules.NAME.field` paths.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, m) in &self.modules {
            let mut add = |cond: bool, f: &str| {
                if cond {
                    out.push(format!("modules.{name}.{f}"));
                }
            };
            add(!matches!(m.prober.as_str(), "http" | "tcp" | "dns" | "icmp"), "prober");
            add(m.http.oauth2.is_some(), "http.oauth2");
            add(m.http.proxy_url.is_some(), "http.proxy_url");
            add(m.tcp.source_ip_address.is_some(), "tcp.source_ip_address");
            add(m.dns.source_ip_address.is_some(), "dns.source_ip_address");
            add(m.icmp.source_ip_address.is_some(), "icmp.source_ip_address");
            add(m.dns.dns_over_tls, "dns.dns_over_tls");
            add(m.icmp.dont_fragment, "icmp.dont_fragment");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_example_file_parses() {
        let text = include_str!("../../tests/fixtures/blackbox/debian-example.yml");
        let m = Modules::parse(text, "example").unwrap();
        assert!(m.modules.contains_key("http_2xx"));
        assert_eq!(m.modules["icmp_ttl5"].icmp.ttl, Some(5));
        assert!(m.modules["http_2xx"].http.follows_redirects());
        assert!(m.modules["http_2xx"].http.ip_protocol_fallback);
    }

    #[test]
    fn unknown_fields_and_blackbox_load_errors_are_refused() {
        for bad in [
            "foo: 1\nmodules: {}",
            "modules: {m: {prober: http, foo: 1}}",
            "modules: {m: {prober: http, http: {http_headers: {}}}}",
            "modules: {m: {prober: tcp, tcp: {query_response: [{expect: a, labels: []}]}}}",
            "modules: {m: {prober: http, http: {tls_config: {ca: x}}}}",
        ] {
            assert!(matches!(Modules::parse(bad, "t"), Err(ModulesError::Syntax { .. })), "{bad}");
        }
        for bad in [
            "modules: {m: {prober: dns, dns: {}}}",
            "modules: {m: {prober: icmp, icmp: {ttl: 300}}}",
            "modules: {m: {prober: dns, dns: {query_name: x, query_type: BOGUS}}}",
        ] {
            assert!(matches!(Modules::parse(bad, "t"), Err(ModulesError::Invalid { .. })), "{bad}");
        }
        let e = Modules::parse("modules: {m: {prober: http, http: {fail_if_body_matches_regexp: ['(']}}}", "t");
        assert!(e.unwrap_err().to_string().contains("invalid regex"));
    }

    #[test]
    fn redirect_settings() {
        let m = Modules::parse("modules: {a: {prober: http, http: {no_follow_redirects: true}}, b: {prober: http, http: {follow_redirects: false}}}", "t").unwrap();
        assert!(!m.modules["a"].http.follows_redirects());
        assert!(!m.modules["b"].http.follows_redirects());
    }
}
