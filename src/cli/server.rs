//! The commands that run promfed itself: `serve`, `check-config`, `demo` and `sidecar`.

use super::exit::EXIT_CONFIG;
use crate::config;
use crate::demo::{self, DemoOptions};
use crate::run;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `promfed check-config [--syntax-only] FILE`.
pub fn check_config(file: &Path, syntax_only: bool) -> ExitCode {
    let checked = if syntax_only { config::load_syntax(file) } else { config::load(file) };
    match checked {
        Ok(c) => {
            for w in &c.warnings {
                println!("warning: {w}");
            }
            let files =
                if syntax_only { " (--syntax-only: certificates, keys and secret files were not read)" } else { "" };
            println!("{}: valid ({} group(s)){files}", file.display(), c.groups.len());
            ExitCode::SUCCESS
        }
        Err(e) => config_failure(&e),
    }
}

/// `promfed serve --config FILE`: runs until SIGTERM or SIGINT.
pub fn serve(config: PathBuf, listen: Option<String>, flags: std::collections::BTreeMap<String, String>) -> ExitCode {
    let mut c = match config::load(&config) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    c.flags = flags;
    // `--web.listen-address` over the file's `server.listen_address` (kept over reloads: the
    // listener is bound here, the file's address is not used).
    let listen = match listen.as_deref().map(config::listen::parse).transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --web.listen-address: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    runtime(async move {
        let listener = match listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| run::StartError::Listen { address, source })?,
            ),
            None => None,
        };
        let running = run::start_from_file(c, listener, Some(config)).await?;
        run::run_until_signalled(running).await?;
        Ok(())
    })
}

/// `promfed demo`.
pub fn demo(options: DemoOptions) -> ExitCode {
    runtime(async move {
        demo::run(options).await?;
        Ok(())
    })
}

/// `promfed sidecar --config FILE`: only the `probes:` and `dashboards:` sections, until
/// SIGTERM or SIGINT.
pub fn sidecar(config: PathBuf) -> ExitCode {
    let sections = match crate::config::load_section(&config) {
        Ok(s) => s,
        Err(e) => return config_failure(&e),
    };
    runtime(async move {
        let running = crate::run::sidecar::start_sections(sections, None).await?;
        running.run_until_signalled().await?;
        Ok(())
    })
}

/// Every config failure, a file that cannot be read included, is the configuration's (64).
fn config_failure(e: &config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
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
