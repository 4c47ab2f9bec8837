//! Runs `promfed dashboards lint|plan|apply|pull|provision` ([`crate::dashboards`]): builds the
//! clients from the flags, prints, and decides the exit code. Errors are one line on stderr.

use super::api::{Api, ApiError};
use super::args::{AccessArgs, ClientArgs, DashboardsAction, GrafanaArgs};
use crate::config::file::TlsConfig;
use crate::dashboards::normalize::to_stable_json;
use crate::dashboards::provision::Provision;
use crate::dashboards::sync::{self, Options};
use crate::dashboards::tree::{self, Folder};
use crate::dashboards::{Grafana, Settings, lint, live};
use reqwest::{Method, StatusCode};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code of `plan` when changes are pending (as `terraform plan -detailed-exitcode`).
pub const EXIT_PENDING: u8 = 2;

/// Runs one `promfed dashboards` command.
pub fn run(action: DashboardsAction) -> ExitCode {
    match action {
        DashboardsAction::Lint { paths, alerts, live, access } => run_lint(&paths, &alerts, live.as_deref(), &access),
        DashboardsAction::Plan { dir, grafana, prune } => run_plan(&dir, &grafana, prune),
        DashboardsAction::Apply { dir, grafana, prune, force, message } => {
            run_apply(&dir, &grafana, Options { prune, force, message })
        }
        DashboardsAction::Pull { grafana, uid, dir } => run_pull(&grafana, &uid, &dir),
        DashboardsAction::Provision { out, dashboards_path, url, ca_file, scrape_interval, name, default } => {
            let p = Provision { dashboards_path, url, ca_file, scrape_interval, name, default };
            match p.write(&out) {
                Ok(paths) => {
                    for path in paths {
                        println!("wrote {}", path.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn run_lint(paths: &[PathBuf], alerts: &[PathBuf], live_url: Option<&str>, access: &AccessArgs) -> ExitCode {
    let mut report = match lint::lint(paths, alerts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(url) = live_url {
        let client = ClientArgs { url: url.to_owned(), access: access.clone() };
        let names = runtime().map_err(|e| e.to_string()).and_then(|rt| {
            let api = Api::new(&client).map_err(|e| e.to_string())?;
            rt.block_on(live_names(&api)).map_err(|e| e.to_string())
        });
        match names {
            Ok(names) => report.check_live(&names, url.trim_end_matches('/')),
            Err(e) => return fail(format_args!("--live {url}: {e}")),
        }
    }
    for p in &report.problems {
        println!("{p}");
    }
    let checked = format!(
        "{} file(s) checked{}",
        report.files,
        if live_url.is_some() { format!(", {} metric name(s) looked up", report.metrics.len()) } else { String::new() }
    );
    if report.problems.is_empty() {
        eprintln!("{checked}: no problems");
        ExitCode::SUCCESS
    } else {
        eprintln!("{checked}: {} problem(s)", report.problems.len());
        ExitCode::FAILURE
    }
}

/// The metric names of a Prometheus or a promfed (its label values API; a promfed's own
/// `/metrics` added), or of a promfed older than its query API (its `/metrics` and `/federate`).
async fn live_names(api: &Api) -> Result<BTreeSet<String>, ApiError> {
    let text = "text/plain;version=0.0.4";
    let url = api.url(&["api", "v1", "label", "__name__", "values"]);
    match api.send(Method::GET, url, "application/json", None).await {
        Ok(answer) => {
            let mut names =
                live::from_label_values(&answer.body).map_err(|reason| ApiError::Body { url: answer.url, reason })?;
            // A promfed answers from its groups' history; its own metrics (what its dashboards
            // and alerts use) are on its /metrics, which a Prometheus scrapes.
            if let Ok(metrics) = api.send(Method::GET, api.url(&["metrics"]), text, None).await {
                let text = String::from_utf8_lossy(&metrics.body);
                if text.contains("promfed_build_info") {
                    names.extend(live::from_exposition(&text));
                }
            }
            Ok(names)
        }
        Err(ApiError::Status { status: StatusCode::NOT_FOUND, .. }) => {
            let metrics = api.send(Method::GET, api.url(&["metrics"]), text, None).await?;
            let mut names = live::from_exposition(&String::from_utf8_lossy(&metrics.body));
            let mut federate = api.url(&["federate"]);
            federate.query_pairs_mut().append_pair("match[]", "{__name__=~\".+\"}");
            let merged = api.send(Method::GET, federate, text, None).await?;
            names.extend(live::from_exposition(&String::from_utf8_lossy(&merged.body)));
            Ok(names)
        }
        Err(e) => Err(e),
    }
}

/// The Grafana client of the flags; the token from --token-file, else `GRAFANA_TOKEN`.
fn grafana(args: &GrafanaArgs) -> Result<Grafana, String> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("cannot read --token-file {}: {e}", path.display()))?,
        ),
        None => std::env::var("GRAFANA_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    let settings = Settings {
        url: args.url.clone(),
        token,
        tls: TlsConfig {
            ca_file: args.ca_file.clone(),
            cert_file: None,
            key_file: None,
            server_name: None,
            insecure_skip_verify: args.insecure,
        },
        timeout: args.timeout,
    };
    Grafana::new(&settings).map_err(|e| e.to_string())
}

/// The directory's dashboards; `None` (after printing why) when a file is unusable: applying a
/// partial directory would take the broken file's dashboard for one to prune.
fn load_tree(dir: &Path) -> Option<tree::Tree> {
    match tree::load(dir) {
        Ok(t) if t.problems.is_empty() => Some(t),
        Ok(t) => {
            for p in &t.problems {
                eprintln!("{p}");
            }
            eprintln!(
                "error: {} file(s) of {} are not usable dashboards: nothing done",
                t.problems.len(),
                dir.display()
            );
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

fn run_plan(dir: &Path, args: &GrafanaArgs, prune: bool) -> ExitCode {
    let Some(tree) = load_tree(dir) else { return ExitCode::FAILURE };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        let g = grafana(args)?;
        rt.block_on(async {
            let version = g.health().await.map_err(|e| e.to_string())?;
            let planned = sync::plan(&g, &tree, prune).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((version, planned))
        })
    });
    match result {
        Ok((version, planned)) => {
            println!("{} → Grafana {version} at {}", dir.display(), args.url.trim_end_matches('/'));
            print!("{}", planned.plan.render());
            if planned.plan.pending() > 0 { ExitCode::from(EXIT_PENDING) } else { ExitCode::SUCCESS }
        }
        Err(e) => fail(e),
    }
}

fn run_apply(dir: &Path, args: &GrafanaArgs, options: Options) -> ExitCode {
    let Some(tree) = load_tree(dir) else { return ExitCode::FAILURE };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        let g = grafana(args)?;
        rt.block_on(async {
            let version = g.health().await.map_err(|e| e.to_string())?;
            println!("{} → Grafana {version} at {}", dir.display(), args.url.trim_end_matches('/'));
            let planned = sync::plan(&g, &tree, options.prune).await.map_err(|e| e.to_string())?;
            print!("{}", planned.plan.render());
            Ok::<_, String>(sync::apply(&g, planned, &options).await)
        })
    });
    match result {
        Ok(outcome) => {
            for line in &outcome.done {
                println!("{line}");
            }
            for line in &outcome.failed {
                eprintln!("error: {line}");
            }
            if outcome.done.is_empty() && outcome.failed.is_empty() {
                println!("No changes: Grafana matches {}.", dir.display());
            }
            if outcome.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => fail(e),
    }
}

fn run_pull(args: &GrafanaArgs, uids: &[String], dir: &Path) -> ExitCode {
    // Where the directory already keeps each uid (a broken file elsewhere does not matter here).
    let existing = if dir.exists() {
        match tree::load(dir) {
            Ok(t) => t.dashboards,
            Err(e) => return fail(e),
        }
    } else {
        Vec::new()
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        let g = grafana(args)?;
        let mut failed = false;
        for uid in uids {
            match rt.block_on(g.dashboard(uid)) {
                Ok(Some(stored)) => {
                    let path = match existing.iter().find(|d| &d.uid == uid) {
                        Some(d) => d.path.clone(),
                        None => new_path(dir, uid, &stored.folder_uid, &stored.folder_title),
                    };
                    if let Some(parent) = path.parent()
                        && let Err(e) = std::fs::create_dir_all(parent)
                    {
                        return Err(format!("cannot create {}: {e}", parent.display()));
                    }
                    std::fs::write(&path, to_stable_json(&stored.dashboard))
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    println!("wrote {} ({uid}, version {} in Grafana)", path.display(), stored.version);
                    let folder_dir = path.parent().filter(|p| *p != dir).and_then(Path::file_name);
                    let made_here = folder_dir.map(|n| Folder::from_dir(&n.to_string_lossy()).uid).unwrap_or_default();
                    if made_here != stored.folder_uid {
                        println!(
                            "note: {uid} is in folder {:?} (uid {:?}), not the one apply makes from {}: apply will move it",
                            stored.folder_title,
                            stored.folder_uid,
                            path.parent().unwrap_or(dir).display()
                        );
                    }
                }
                Ok(None) => {
                    eprintln!("error: Grafana at {} has no dashboard with uid {uid:?}", args.url);
                    failed = true;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
        Ok(failed)
    });
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

/// `DIR/<folder dir>/<uid>.json` for a dashboard the directory does not have yet: the existing
/// directory whose folder uid Grafana's folder has, else one named after the folder's title.
fn new_path(dir: &Path, uid: &str, folder_uid: &str, folder_title: &str) -> PathBuf {
    let file = format!("{uid}.json");
    if folder_uid.is_empty() {
        return dir.join(file);
    }
    let existing = std::fs::read_dir(dir).into_iter().flatten().flatten().find(|e| {
        e.file_type().is_ok_and(|t| t.is_dir()) && Folder::from_dir(&e.file_name().to_string_lossy()).uid == folder_uid
    });
    match existing {
        Some(e) => e.path().join(file),
        None => {
            let name: String = folder_title.chars().map(|c| if c == '/' || c == '\\' { '-' } else { c }).collect();
            let name = if name.trim().is_empty() || name.starts_with('.') { folder_uid.to_owned() } else { name };
            dir.join(name).join(file)
        }
    }
}
