//! Runs the on-call commands (`status`, `leader`, `federate`): builds the client from the
//! common flags, asks promfed, prints, and decides the exit code. A failed request is one line
//! on stderr and exit 1.

use super::api::{Api, ApiError};
use super::args::{ClientArgs, FederateFormat, LeaderAction};
use super::{federate, leader, status, table};
use crate::clock::now_ms;
use std::process::ExitCode;

/// `promfed status [--json]`: 0 when every group has a healthy leader, 1 otherwise.
pub fn status(client: &ClientArgs, json: bool) -> ExitCode {
    request(client, |api| async move {
        let (groups, clusters) = status::fetch(&api).await?;
        let url = api.base().as_str().trim_end_matches('/').to_owned();
        let parsed = status::parse(&url, &groups, &clusters)?;
        let verdict = parsed.verdict();
        if json {
            let out = serde_json::json!({"url": url, "groups": groups, "ha_clusters": clusters});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            for line in &verdict {
                eprintln!("{line}");
            }
        } else {
            print!("{}", parsed.render(&url, now_ms(), table::stdout_colour()));
        }
        Ok(if verdict.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `promfed leader pin|unpin`.
pub fn leader(action: &LeaderAction) -> ExitCode {
    let (client, group, replica) = match action {
        LeaderAction::Pin { client, group, replica } => (client, group, Some(replica)),
        LeaderAction::Unpin { client, group } => (client, group, None),
    };
    request(client, |api| async move {
        let out = match replica {
            Some(replica) => leader::pin(&api, group, replica).await?,
            None => leader::unpin(&api, group).await?,
        };
        print!("{out}");
        Ok(ExitCode::SUCCESS)
    })
}

/// `promfed federate --match …`.
pub fn federate(client: &ClientArgs, selectors: &[String], format: FederateFormat) -> ExitCode {
    request(client, |api| async move {
        let (header, lines) = federate::fetch(&api, selectors, format).await?;
        print!("{}", federate::render(&header, &lines, now_ms()));
        Ok(ExitCode::SUCCESS)
    })
}

/// Builds the client and runs `f` on a small runtime; an error is one line on stderr, exit 1.
fn request<F, Fut>(client: &ClientArgs, f: F) -> ExitCode
where
    F: FnOnce(Api) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, ApiError>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = Api::new(client).and_then(|api| rt.block_on(f(api)));
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}
