//! Configuration: the YAML file ([`file`]), Prometheus-style units ([`units`]) and the checks
//! that turn it into a runnable [`Config`] ([`validate`]).

pub mod file;
pub mod listen;
pub mod units;
pub mod validate;

pub use file::FileConfig;
pub use validate::{
    Config, Credentials, Group, HaTracker, Problem, Query, Receiver, RemoteWrite, Server, ServerTls, validate,
};

use std::path::Path;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<Problem> },
}

/// Parses YAML text (`origin` names it in errors) into a checked config.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let file: FileConfig = serde_saphyr::from_str(text)
        .map_err(|e| ConfigError::Syntax { path: origin.to_owned(), message: e.to_string() })?;
    validate(&file).map_err(|problems| ConfigError::Invalid { path: origin.to_owned(), problems })
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: origin.clone(), source })?;
    parse(&text, &origin)
}

#[cfg(test)]
mod tests;
