//! Configuration: the YAML file ([`file`]), Prometheus-style units ([`units`]) and the checks
//! that turn it into a runnable [`Config`] ([`validate`]).

pub mod blackbox;
pub mod dashboards;
pub mod discovery;
pub mod file;
pub mod listen;
pub mod pem;
pub mod probes;
pub mod receiver;
pub mod reference;
pub mod shown;
pub mod target;
pub mod units;
pub mod validate;
pub mod yaml;

pub use file::FileConfig;
pub use validate::{
    Config, Credentials, Group, HaTracker, Problem, Query, Receiver, RemoteWrite, Server, ServerTls, validate,
    validate_syntax,
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
    /// Unknown keys and wrong types: every one of the file, with its path.
    #[error("config file {path} does not parse ({} problem(s)):\n{}", problems.len(), problems.iter().map(|p| format!("  - {}", p.located_in(path))).collect::<Vec<_>>().join("\n"))]
    Syntax { path: String, problems: Vec<yaml::SyntaxProblem> },
    #[error("config file {path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<Problem> },
}

/// Parses YAML text (`origin` names it in errors) into a checked config.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let file = parse_file(text, origin)?;
    validate(&file).map_err(|problems| ConfigError::Invalid { path: origin.to_owned(), problems })
}

/// Parses YAML text (`origin` names it in errors) without checking what it says.
pub fn parse_file(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    yaml::from_str(text).map_err(|problems| ConfigError::Syntax { path: origin.to_owned(), problems })
}

/// Reads the config file at `path` and parses it, without checking what it says.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: origin.clone(), source })?;
    parse_file(&text, &origin)
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: origin.clone(), source })?;
    parse(&text, &origin)
}

#[cfg(test)]
mod tests;
