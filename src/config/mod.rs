//! Configuration: the YAML file ([`file`], with its sections in [`http`], [`discovery`],
//! [`probes`], [`blackbox`], [`dashboards`]), Prometheus-style units ([`units`]), the checks
//! that turn it into a runnable [`Config`] ([`validate`]), and reading it ([`load`], [`yaml`]).
//! Every config type of promfed is here, below everything that uses it; the reference
//! (`docs/configuration.md`) is generated from them ([`reference`]).

pub mod blackbox;
pub mod dashboards;
pub mod discovery;
pub mod file;
pub mod http;
pub mod listen;
pub mod load;
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

pub use load::{ConfigError, Sections, load, load_section, load_syntax, parse, parse_file, read_file};

#[cfg(test)]
mod tests;
