//! Reading a config file: parsed with every syntax problem at once, then checked.

use super::file::FileConfig;
use super::validate::{Config, Problem, validate};
use super::yaml;
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
    load_with(path, validate)
}

/// Reads and checks the config file at `path` without reading the files it names
/// (`check-config --syntax-only`, [`super::validate_syntax`]).
pub fn load_syntax(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, super::validate::validate_syntax)
}

fn load_with(path: &Path, check: fn(&FileConfig) -> Result<Config, Vec<Problem>>) -> Result<Config, ConfigError> {
    let file = read_file(path)?;
    check(&file).map_err(|problems| ConfigError::Invalid { path: path.display().to_string(), problems })
}

/// What `promfed sidecar` runs: the probes, the dashboard sync, or both.
pub struct Sections {
    pub probes: Option<super::probes::Probes>,
    pub dashboards: Option<super::dashboards::DashboardsConfig>,
}

/// Reads the `probes:` and `dashboards:` sections of a promfed config file for `promfed
/// sidecar` (at least one is needed); the other sections are parsed (unknown keys are still
/// errors) but not checked.
pub fn load_section(path: &Path) -> Result<Sections, ConfigError> {
    let origin = path.display().to_string();
    let file = read_file(path)?;
    let mut problems = Vec::new();
    if file.probes.is_none() && file.dashboards.is_none() {
        problems.push(Problem {
            path: "probes".into(),
            message: "missing, and so is dashboards: the sidecar runs these sections".into(),
        });
    }
    let probes = match file.probes.map(|p| p.check()).transpose() {
        Ok(p) => p,
        Err(found) => {
            problems.extend(found.into_iter().map(|(path, message)| Problem { path, message }));
            None
        }
    };
    if let Some(d) = &file.dashboards {
        problems.extend(d.problems().into_iter().map(|(path, message)| Problem { path, message }));
    }
    if problems.is_empty() {
        Ok(Sections { probes, dashboards: file.dashboards })
    } else {
        Err(ConfigError::Invalid { path: origin, problems })
    }
}
