//! What this binary is: version, git revision and branch, who built it, when, with which
//! compiler (set by `build.rs`), in the shapes Prometheus reports its own.

use serde::Serialize;

/// The build's facts.
#[derive(Clone, Debug, Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub build_user: &'static str,
    pub build_date: &'static str,
    /// `rustc --version` of the compiler (Prometheus has `goVersion` here).
    pub rust_version: &'static str,
    pub platform: &'static str,
}

/// This binary's.
pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("PROMFED_REVISION"),
    branch: env!("PROMFED_BRANCH"),
    build_user: env!("PROMFED_BUILD_USER"),
    build_date: env!("PROMFED_BUILD_DATE"),
    rust_version: env!("PROMFED_RUSTC_VERSION"),
    platform: env!("PROMFED_PLATFORM"),
};

/// `promfed --version` after clap's `promfed `, laid out as `prometheus --version`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (branch: ",
    env!("PROMFED_BRANCH"),
    ", revision: ",
    env!("PROMFED_REVISION"),
    ")\n  build user:       ",
    env!("PROMFED_BUILD_USER"),
    "\n  build date:       ",
    env!("PROMFED_BUILD_DATE"),
    "\n  rust version:     ",
    env!("PROMFED_RUSTC_VERSION"),
    "\n  platform:         ",
    env!("PROMFED_PLATFORM"),
);

impl BuildInfo {
    /// `data` of `GET /api/v1/status/buildinfo`: Prometheus' fields. `version` is the
    /// Prometheus API promfed answers as (2.42.0), which Grafana reads to choose its queries;
    /// promfed's own version is `promfedVersion` (and `application` names promfed, as Mimir and
    /// Elasticsearch do).
    pub fn api(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "2.42.0",
            "revision": self.revision,
            "branch": self.branch,
            "buildUser": self.build_user,
            "buildDate": self.build_date,
            "goVersion": self.rust_version,
            "application": "promfed",
            "promfedVersion": self.version,
        })
    }
}
