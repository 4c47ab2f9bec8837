//! The command line as clap parses it: every command, its flags and their help. Nothing here
//! does anything; [`super::run`] turns a parsed [`Cli`] into work and an exit code.

use crate::config;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// promfed: federate Prometheus HA pairs into one deduplicated, gap-free view.
#[derive(Debug, Parser)]
#[command(name = "promfed", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log filter (RUST_LOG syntax), e.g. `info`, `promfed=debug`.
    #[arg(long, global = true, env = "PROMFED_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scrape, merge and serve the groups of a config file.
    Serve {
        /// The configuration file.
        #[arg(long, short = 'c', env = "PROMFED_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file: exit 0 when valid, 64 with every problem otherwise.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Run promfed against two embedded synthetic replicas, nothing installed.
    Demo {
        /// Where promfed listens.
        #[arg(long, default_value = "127.0.0.1:9443")]
        listen: SocketAddr,
        /// How often the primary is taken down (Prometheus duration).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        down_every: Duration,
        /// For how long it stays down.
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        down_for: Duration,
        /// Stop by itself after this long (default: run until Ctrl-C).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Probe one target as blackbox_exporter would: exit 0 on success, 1 on failure, 2 on usage errors.
    Probe(crate::sidecar::cli::ProbeArgs),
    /// Run only the `probes:` section of a config file: /probe, scheduled probes, /metrics.
    Sidecar {
        /// The configuration file (its `probes:` section).
        #[arg(long, short = 'c', env = "PROMFED_CONFIG")]
        config: PathBuf,
    },
    /// Show a running promfed's groups, replicas, leaders, pins, last errors and problems.
    ///
    /// Exit 0 when every group has a healthy leader, 1 when a group is down or promfed cannot
    /// be asked (the reason on one line), 2 on a usage error.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the status API's JSON (`{"url", "groups", "ha_clusters"}`) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Pin or unpin the leader of a group (maintenance on a replica).
    Leader {
        #[command(subcommand)]
        action: LeaderAction,
    },
    /// Fetch `/federate` from a running promfed and print the series, sorted, one per line.
    Federate {
        #[command(flatten)]
        client: ClientArgs,
        /// A series selector (`match[]`), e.g. `up` or `{job="node"}`; repeat for a union.
        #[arg(long = "match", value_name = "SELECTOR", required = true)]
        selectors: Vec<String>,
        /// The exposition format to ask for.
        #[arg(long, value_enum, default_value_t = FederateFormat::Text)]
        format: FederateFormat,
    },
    /// Print a completion script for SHELL, e.g. `promfed completions bash > /etc/bash_completion.d/promfed`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `promfed leader …`.
#[derive(Debug, Subcommand)]
pub enum LeaderAction {
    /// Make REPLICA the group's preferred leader; a healthy replica leads at once.
    ///
    /// Exit 1 with promfed's message when the group or the replica does not exist.
    Pin {
        #[command(flatten)]
        client: ClientArgs,
        /// The group, as `promfed status` names it.
        group: String,
        /// The replica of that group that should lead.
        replica: String,
    },
    /// Remove a group's pin: the configured preference applies again (the primary leads again
    /// after `hold_down` good scrapes).
    Unpin {
        #[command(flatten)]
        client: ClientArgs,
        /// The group, as `promfed status` names it.
        group: String,
    },
}

/// The format `promfed federate` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FederateFormat {
    /// Prometheus text format 0.0.4.
    Text,
    /// Length-delimited protobuf (`io.prometheus.client.MetricFamily`).
    Protobuf,
}

/// How the on-call commands reach a running promfed: its URL, TLS and credentials.
#[derive(Clone, Debug, Args)]
pub struct ClientArgs {
    /// promfed's base URL.
    #[arg(long, env = "PROMFED_URL", default_value = "https://127.0.0.1:9443")]
    pub url: String,
    /// CA certificate(s) (PEM) that signed promfed's certificate; the system roots otherwise.
    #[arg(long, value_name = "FILE", env = "PROMFED_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify promfed's certificate (to diagnose only).
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure: bool,
    /// Client certificate (PEM) for mTLS, with --key-file.
    #[arg(long, value_name = "FILE", requires = "key_file", env = "PROMFED_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(long, value_name = "FILE", requires = "cert_file", env = "PROMFED_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// User for HTTP basic auth, with --basic-auth-password-file.
    #[arg(long, value_name = "USER", requires = "basic_auth_password_file", env = "PROMFED_BASIC_AUTH_USER")]
    pub basic_auth_user: Option<String>,
    /// File holding the basic-auth password (a trailing newline is ignored).
    #[arg(long, value_name = "FILE", requires = "basic_auth_user", env = "PROMFED_BASIC_AUTH_PASSWORD_FILE")]
    pub basic_auth_password_file: Option<PathBuf>,
    /// File holding a bearer token (`Authorization: Bearer …`; a trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "basic_auth_user", env = "PROMFED_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// How long a request may take, connecting included (Prometheus duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    config::units::PromDuration::parse(s).map(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_flags_that_need_each_other_are_usage_errors_alone() {
        for args in [
            &["promfed", "status", "--cert-file", "c.pem"][..],
            &["promfed", "status", "--basic-auth-user", "u"],
            &[
                "promfed",
                "status",
                "--basic-auth-user",
                "u",
                "--basic-auth-password-file",
                "p",
                "--bearer-token-file",
                "t",
            ],
            &["promfed", "status", "--insecure", "--ca-file", "ca.pem"],
            &["promfed", "federate"],
            &["promfed", "leader", "pin", "g"],
            &["promfed", "status", "--timeout", "soon"],
        ] {
            let e = Cli::try_parse_from(args).expect_err(&args.join(" "));
            assert_eq!(e.exit_code(), 2, "{}: {e}", args.join(" "));
        }
        let cli = Cli::try_parse_from(["promfed", "leader", "pin", "--url", "https://p:1", "eu", "b"]).unwrap();
        match cli.command {
            Command::Leader { action: LeaderAction::Pin { client, group, replica } } => {
                assert_eq!((client.url.as_str(), group.as_str(), replica.as_str()), ("https://p:1", "eu", "b"));
                assert_eq!(client.timeout, Duration::from_secs(10));
            }
            other => panic!("{other:?}"),
        }
    }
}
