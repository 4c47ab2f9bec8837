//! The command line as clap parses it: every command, its flags and their help. Nothing here
//! does anything; [`super::run`] turns a parsed [`Cli`] into work and an exit code.

use crate::config;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// promfed: federate Prometheus HA pairs into one deduplicated, gap-free view.
#[derive(Debug, Parser)]
#[command(name = "promfed", version, long_version = crate::build::LONG_VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Only log messages with the given severity or above, as Prometheus' `--log.level`.
    #[arg(long = "log.level", global = true, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Output format of log messages, as Prometheus' `--log.format` (colour never: lines stay
    /// greppable in a journal or a file).
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
    /// Log filter directives (RUST_LOG syntax) after the level, e.g. `promfed::query=debug`.
    #[arg(long, global = true, env = "PROMFED_LOG")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The level as a filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=info message="…" key=value`, as Prometheus' default (which says `msg`).
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scrape, merge and serve the groups of a config file.
    Serve {
        /// The configuration file.
        #[arg(long, short = 'c', env = "PROMFED_CONFIG")]
        config: PathBuf,
        /// Where to listen, over `server.listen_address` (`:9443`, `localhost:9443`, `ip:port`).
        #[arg(long = "web.listen-address")]
        listen: Option<String>,
    },
    /// Check a configuration file: exit 0 when valid, 64 with every problem otherwise (a file
    /// that cannot be read included).
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
        /// Check the file alone, not the certificates, keys and secret files it names (as
        /// promtool's `check config --syntax-only`): for a config written for another machine.
        #[arg(long)]
        syntax_only: bool,
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
    Probe(super::probe::ProbeArgs),
    /// Run only the `probes:` and `dashboards:` sections of a config file: /probe, scheduled
    /// probes, /metrics, and the dashboards sync to Grafana every interval.
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
    /// Dashboards as code: lint, plan, apply, pull and provision Grafana dashboards.
    Dashboards {
        #[command(subcommand)]
        action: DashboardsAction,
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
    #[command(flatten)]
    pub access: AccessArgs,
}

/// TLS and credentials towards a promfed (or a Prometheus: `dashboards lint --live`).
#[derive(Clone, Debug, Default, Args)]
pub struct AccessArgs {
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

/// `promfed dashboards …`.
#[derive(Debug, Subcommand)]
pub enum DashboardsAction {
    /// Check dashboards (`*.json`) and Prometheus rule files (`*.yml`, `*.yaml`).
    ///
    /// Prints one line per problem (`file: panel "title": problem`); exit 0 when there is
    /// none, 1 otherwise. With --live URL every metric named must exist on that promfed or
    /// Prometheus (TLS and credentials from the same flags as `promfed status`).
    Lint {
        /// Directories or files to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Also check the rule files of DIR (repeatable).
        #[arg(long, value_name = "DIR")]
        alerts: Vec<PathBuf>,
        /// Check that every metric named exists on this promfed or Prometheus.
        #[arg(long, value_name = "URL")]
        live: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Show what `apply` would change in Grafana, dashboard by dashboard.
    ///
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 on an error.
    Plan {
        /// The dashboards directory (one subdirectory per Grafana folder).
        dir: PathBuf,
        #[command(flatten)]
        grafana: GrafanaArgs,
        /// Count deletions of managed dashboards no longer in DIR as pending (as `apply --prune`).
        #[arg(long)]
        prune: bool,
    },
    /// Create and update Grafana's dashboards (and folders) from DIR.
    ///
    /// Every dashboard written carries the tag `managed-by:promfed`; --prune deletes the tagged
    /// ones that DIR no longer has, never others. Exit 0 when everything was applied, 1 otherwise.
    Apply {
        /// The dashboards directory (one subdirectory per Grafana folder).
        dir: PathBuf,
        #[command(flatten)]
        grafana: GrafanaArgs,
        /// Delete managed dashboards that DIR no longer has.
        #[arg(long)]
        prune: bool,
        /// Replace a dashboard that someone changed in Grafana since it was read (412
        /// version-mismatch) instead of reporting it.
        #[arg(long)]
        force: bool,
        /// The message Grafana records in each dashboard's version history.
        #[arg(long, short = 'm', default_value = "promfed dashboards apply")]
        message: String,
    },
    /// Write Grafana's dashboards as normalised JSON into DIR (sorted keys, no id/version).
    ///
    /// A dashboard goes over the file that has its uid, else into DIR/<folder>/<uid>.json.
    Pull {
        #[command(flatten)]
        grafana: GrafanaArgs,
        /// The dashboard's uid (repeatable).
        #[arg(long, required = true)]
        uid: Vec<String>,
        /// The dashboards directory.
        dir: PathBuf,
    },
    /// Write Grafana file-provisioning YAML for the dashboards directory and a promfed
    /// datasource into OUT (`OUT/dashboards/NAME.yaml`, `OUT/datasources/NAME.yaml`).
    Provision {
        /// Grafana's provisioning directory, e.g. /etc/grafana/provisioning.
        out: PathBuf,
        /// Where Grafana finds the dashboards directory.
        #[arg(long, value_name = "PATH", default_value = "/var/lib/grafana/dashboards/promfed")]
        dashboards_path: PathBuf,
        /// The datasource's URL.
        #[arg(long, default_value = "https://promfed:9443")]
        url: String,
        /// CA certificate (PEM) of the datasource's server certificate, embedded in the YAML.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// The datasource's scrape interval (Grafana's `timeInterval`).
        #[arg(long, default_value = "15s")]
        scrape_interval: String,
        /// Name and uid of the datasource, name of the dashboards provider and of the files.
        #[arg(long, default_value = "promfed")]
        name: String,
        /// Make the datasource Grafana's default one.
        #[arg(long)]
        default: bool,
    },
}

/// How `promfed dashboards plan|apply|pull` reach Grafana.
#[derive(Clone, Debug, Args)]
pub struct GrafanaArgs {
    /// Grafana's base URL, e.g. https://grafana.example:3000.
    #[arg(long = "grafana", value_name = "URL", env = "GRAFANA_URL")]
    pub url: String,
    /// File holding a Grafana service-account token (default: the GRAFANA_TOKEN environment
    /// variable).
    #[arg(long, value_name = "FILE", env = "GRAFANA_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) of Grafana's certificate; the system roots otherwise.
    #[arg(long = "grafana-ca-file", value_name = "FILE", env = "GRAFANA_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify Grafana's certificate (to diagnose only).
    #[arg(long = "grafana-insecure", conflicts_with = "ca_file")]
    pub insecure: bool,
    /// How long one request to Grafana may take (Prometheus duration).
    #[arg(long = "grafana-timeout", default_value = "10s", value_parser = parse_duration)]
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
                assert_eq!(client.access.timeout, Duration::from_secs(10));
            }
            other => panic!("{other:?}"),
        }
    }
}
