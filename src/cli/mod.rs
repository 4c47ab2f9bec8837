//! The command line: flags parsed by clap ([`args`]), then each command run with typed errors
//! turned into an exit code in one place.
//!
//! - [`args`]: every command and flag, with the help text users see;
//! - [`server`]: `serve`, `check-config`, `demo`, `sidecar`;
//! - [`probe`]: `promfed probe KIND TARGET`, one blackbox-style probe printed for people or as JSON;
//! - [`exit`]: the exit codes;
//! - [`oncall`]: `status`, `leader pin|unpin`, `federate`, against a running promfed through
//!   [`api`] (TLS, credentials, one-line failure reasons), printed with [`status`],
//!   [`leader`], [`federate`] and [`table`];
//! - [`dashboards`]: `dashboards lint|plan|apply|pull|provision` ([`crate::dashboards`]);
//! - `completions SHELL`: clap_complete's scripts.
//!
//! Exit codes: 0 ok, 1 runtime failure (for `status`: a group without a healthy leader; for
//! `dashboards lint`: a problem found), 2 usage (clap's own; also `dashboards plan` with
//! changes pending), 64 invalid configuration.

pub mod api;
pub mod args;
pub mod dashboards;
pub mod exit;
pub mod federate;
pub mod leader;
pub mod oncall;
pub mod probe;
pub mod server;
pub mod status;
pub mod table;

pub use args::{AccessArgs, Cli, ClientArgs, Command, DashboardsAction, FederateFormat, GrafanaArgs, LeaderAction};

use std::process::ExitCode;

pub use exit::EXIT_CONFIG;

/// Runs the parsed command line and returns the process exit code. (A dispatch, kept here
/// rather than in a file of its own: it is the one place that maps commands to their runners.)
pub fn run(cli: Cli) -> ExitCode {
    let filter = match &cli.log {
        Some(directives) if !directives.trim().is_empty() => format!("{},{directives}", cli.log_level.directive()),
        _ => cli.log_level.directive().to_owned(),
    };
    crate::telemetry::init_logging(&filter, cli.log_format == args::LogFormat::Json);
    let mut flags = std::collections::BTreeMap::new();
    {
        use clap::ValueEnum;
        let name = |v: Option<clap::builder::PossibleValue>| v.map(|v| v.get_name().to_owned()).unwrap_or_default();
        flags.insert("log.level".to_owned(), name(cli.log_level.to_possible_value()));
        flags.insert("log.format".to_owned(), name(cli.log_format.to_possible_value()));
        flags.insert("log".to_owned(), cli.log.clone().unwrap_or_default());
    }
    match cli.command {
        Command::CheckConfig { file, syntax_only } => server::check_config(&file, syntax_only),
        Command::Serve { config, listen } => {
            // As Prometheus' /api/v1/status/flags names them, every flag with its value.
            flags.insert("config.file".to_owned(), config.display().to_string());
            flags.insert("web.listen-address".to_owned(), listen.clone().unwrap_or_default());
            server::serve(config, listen, flags)
        }
        Command::Demo { listen, down_every, down_for, duration } => {
            server::demo(crate::demo::DemoOptions { listen, down_every, down_for, duration, dir: None })
        }
        Command::Probe(args) => probe::run(args),
        Command::Sidecar { config } => server::sidecar(config),
        Command::Status { client, json } => oncall::status(&client, json),
        Command::Leader { action } => oncall::leader(&action),
        Command::Federate { client, selectors, format } => oncall::federate(&client, &selectors, format),
        Command::Dashboards { action } => dashboards::run(action),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "promfed", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}
