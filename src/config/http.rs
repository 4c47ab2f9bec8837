//! How promfed authenticates to an HTTP server and checks it, Prometheus' shapes: `tls_config`,
//! `basic_auth`, `authorization` (replicas, remote-write destinations, Grafana).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Upstream TLS (Prometheus `tls_config`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA to verify the replicas' certificates; the system roots otherwise.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mTLS to the replicas.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Name to verify the replicas' certificates against instead of the address' host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Do not verify the replicas' certificates (dangerous; warned about at start).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// HTTP basic auth; exactly one of `password` and `password_file`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// An `Authorization` header; exactly one of `credentials` and `credentials_file`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme; `Bearer` by default.
    #[serde(default = "default_auth_type", rename = "type")]
    pub auth_type: String,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".into()
}
