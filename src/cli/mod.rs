//! The command line: flags parsed by clap, then each command run with typed errors turned into
//! an exit code in one place.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 usage (clap's own), 64 invalid configuration.

use crate::config;
use crate::demo::{self, DemoOptions};
use crate::run;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for an invalid configuration (EX_USAGE of sysexits.h).
pub const EXIT_CONFIG: u8 = 64;

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
        down_every: std::time::Duration,
        /// For how long it stays down.
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        down_for: std::time::Duration,
        /// Stop by itself after this long (default: run until Ctrl-C).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Probe one target as blackbox_exporter would: exit 0 on success, 1 on failure, 2 on usage errors.
    Probe(crate::sidecar::cli::ProbeArgs),
    /// Run only the `probes:` section of a config file: /probe, scheduled probes, /metrics.
    Sidecar {
        /// The configuration file (its `probes:` section).
        #[arg(long, short = 'c', env = "PROMFED_CONFIG")]
        config: PathBuf,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    config::units::PromDuration::parse(s).map(|d| d.0)
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init_logging(&cli.log);
    match cli.command {
        Command::CheckConfig { file } => match config::load(&file) {
            Ok(c) => {
                for w in &c.warnings {
                    println!("warning: {w}");
                }
                println!("{}: valid ({} group(s))", file.display(), c.groups.len());
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(&e),
        },
        Command::Serve { config } => {
            let c = match config::load(&config) {
                Ok(c) => c,
                Err(e) => return config_failure(&e),
            };
            runtime(async move {
                let running = run::start_from_file(c, None, Some(config)).await?;
                run::run_until_signalled(running).await?;
                Ok(())
            })
        }
        Command::Demo { listen, down_every, down_for, duration } => runtime(async move {
            demo::run(DemoOptions { listen, down_every, down_for, duration, dir: None }).await?;
            Ok(())
        }),
        Command::Probe(args) => crate::sidecar::cli::run(args),
        Command::Sidecar { config } => {
            let probes = match crate::sidecar::config::load_section(&config) {
                Ok(p) => p,
                Err(e) => return config_failure(&e),
            };
            runtime(async move {
                let running = crate::sidecar::run::start(probes, None).await?;
                running.run_until_signalled().await?;
                Ok(())
            })
        }
    }
}

fn config_failure(e: &config::ConfigError) -> ExitCode {
    match e {
        config::ConfigError::Read { .. } => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn runtime(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
