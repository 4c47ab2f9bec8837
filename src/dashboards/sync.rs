//! `plan` and `apply`: the dashboards of a directory against one Grafana.
//!
//! Reading: every dashboard of the directory by uid (`GET /api/dashboards/uid/:uid`) and every
//! dashboard carrying the managed tag (`GET /api/search?tag=managed-by:promfed`). A file whose
//! uid Grafana lacks is a *create*; one that differs ([`super::diff`]), or sits in another
//! folder, or lacks the managed tag (made by hand: apply adopts it), an *update*; a managed
//! dashboard no file has any more, a *delete* (applied only with `--prune`). Dashboards without
//! the tag are never deleted.
//!
//! Writing: folders first (`POST /api/folders` with the directory's stable uid; 409 means it
//! exists), then each dashboard with `overwrite: false` and the version read, so that Grafana
//! refuses (412 `version-mismatch`) a dashboard someone changed since it was read: apply then
//! re-reads it and reports who changed it, and goes on with the others. `--force` retries such a
//! dashboard once with the version just read (the other change is replaced; Grafana keeps it in
//! the dashboard's version history). A title that another dashboard of the folder already has
//! (412 `name-exists`) is reported, never overwritten.

use super::diff::{self, Action, Entry, Plan};
use super::grafana::{FolderCreated, Grafana, GrafanaError, Stored};
use super::normalize::{MANAGED_TAG, for_grafana, normalize};
use super::tree::{Folder, Local, Tree};
use std::collections::{BTreeMap, BTreeSet};

/// How `apply` goes about it.
#[derive(Clone, Debug)]
pub struct Options {
    /// Delete managed dashboards the directory no longer has.
    pub prune: bool,
    /// On a version mismatch, apply over the other change (once).
    pub force: bool,
    /// The version-history message Grafana records (`message`).
    pub message: String,
}

/// A plan with what `apply` needs to carry it out.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    work: Vec<Work>,
}

#[derive(Debug)]
enum Work {
    Save { local: Local, version: Option<u64>, update: bool },
    Delete { uid: String, title: String },
}

/// What `apply` did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One line per change made.
    pub done: Vec<String>,
    /// One line per change that failed.
    pub failed: Vec<String>,
    /// Dashboards left as they were.
    pub unchanged: usize,
}

/// Reads Grafana and compares it with `tree`.
pub async fn plan(grafana: &Grafana, tree: &Tree, prune: bool) -> Result<Planned, GrafanaError> {
    let managed = grafana.search_tagged(MANAGED_TAG).await?;
    let mut plan = Plan { entries: Vec::new(), prune };
    let mut work = Vec::new();
    let mut local_uids = BTreeSet::new();
    for local in &tree.dashboards {
        local_uids.insert(local.uid.clone());
        let stored = grafana.dashboard(&local.uid).await?;
        let folder = local.folder.as_ref().map(|f| f.title.clone()).unwrap_or_default();
        let mut entry = Entry {
            action: Action::Create,
            uid: local.uid.clone(),
            title: local.title.clone(),
            folder,
            file: Some(local.path.display().to_string()),
            details: Vec::new(),
        };
        let version = match &stored {
            None => None,
            Some(s) => {
                entry.details = details(local, s);
                entry.action = if entry.details.is_empty() { Action::Unchanged } else { Action::Update };
                Some(s.version)
            }
        };
        if entry.action != Action::Unchanged {
            work.push(Work::Save { local: local.clone(), version, update: stored.is_some() });
        }
        plan.entries.push(entry);
    }
    let mut orphans: BTreeMap<String, _> = BTreeMap::new();
    for hit in managed {
        if !local_uids.contains(&hit.uid) {
            orphans.insert(hit.uid.clone(), hit);
        }
    }
    for (uid, hit) in orphans {
        plan.entries.push(Entry {
            action: Action::Delete,
            uid: uid.clone(),
            title: hit.title.clone(),
            folder: hit.folder_title.clone(),
            file: None,
            details: Vec::new(),
        });
        if prune {
            work.push(Work::Delete { uid, title: hit.title });
        }
    }
    Ok(Planned { plan, work })
}

/// What makes `stored` differ from `local`: folder, adoption, content.
fn details(local: &Local, stored: &Stored) -> Vec<String> {
    let mut out = Vec::new();
    let want_folder = local.folder.as_ref().map(|f| f.uid.as_str()).unwrap_or_default();
    if stored.folder_uid != want_folder {
        let from =
            if stored.folder_uid.is_empty() { "root folder".to_owned() } else { format!("{:?}", stored.folder_title) };
        let to = local.folder.as_ref().map_or_else(|| "root folder".to_owned(), |f| format!("{:?}", f.title));
        out.push(format!("folder: {from} → {to}"));
    }
    let tagged =
        stored.dashboard.get("tags").and_then(|t| t.as_array()).is_some_and(|t| t.iter().any(|x| x == MANAGED_TAG));
    if !tagged {
        out.push(format!("tags: {MANAGED_TAG} added (made outside promfed: apply adopts it)"));
    }
    if stored.provisioned {
        out.push("provisioned from files in Grafana: Grafana refuses API changes to it".to_owned());
    }
    out.extend(diff::changes(&normalize(&stored.dashboard), &normalize(&local.json)));
    out
}

/// Carries out `planned`: folders, saves, deletes. Every failure is collected; the others go on.
pub async fn apply(grafana: &Grafana, planned: Planned, options: &Options) -> Outcome {
    let mut outcome = Outcome { unchanged: planned.plan.count(Action::Unchanged), ..Outcome::default() };
    let needed: BTreeSet<Folder> = planned
        .work
        .iter()
        .filter_map(|w| match w {
            Work::Save { local, .. } => local.folder.clone(),
            Work::Delete { .. } => None,
        })
        .collect();
    let mut broken_folders = BTreeSet::new();
    if !needed.is_empty() {
        match grafana.folders().await {
            Ok(existing) => {
                for folder in &needed {
                    if existing.iter().any(|f| f.uid == folder.uid) {
                        continue;
                    }
                    match grafana.create_folder(&folder.uid, &folder.title).await {
                        Ok(FolderCreated::Created) => {
                            outcome.done.push(format!("created folder {:?} (uid {})", folder.title, folder.uid))
                        }
                        Ok(FolderCreated::Exists) => {}
                        Err(e) => {
                            outcome.failed.push(format!("folder {:?}: {e}", folder.title));
                            broken_folders.insert(folder.uid.clone());
                        }
                    }
                }
            }
            Err(e) => {
                outcome.failed.push(format!("cannot list folders: {e}"));
                broken_folders.extend(needed.iter().map(|f| f.uid.clone()));
            }
        }
    }
    for work in planned.work {
        match work {
            Work::Save { local, version, update } => {
                if let Some(f) = local.folder.as_ref().filter(|f| broken_folders.contains(&f.uid)) {
                    outcome.failed.push(format!(
                        "{} {:?}: not saved: its folder {:?} is missing",
                        local.uid, local.title, f.title
                    ));
                    continue;
                }
                save(grafana, &local, version, update, options, &mut outcome).await;
            }
            Work::Delete { uid, title } => match grafana.delete(&uid).await {
                Ok(_) => outcome.done.push(format!("deleted {uid} {title:?}")),
                Err(e) => outcome.failed.push(format!("{uid} {title:?}: not deleted: {e}")),
            },
        }
    }
    outcome
}

async fn save(
    grafana: &Grafana,
    local: &Local,
    version: Option<u64>,
    update: bool,
    options: &Options,
    outcome: &mut Outcome,
) {
    let folder = local.folder.as_ref().map(|f| f.uid.as_str());
    let what = if update { "updated" } else { "created" };
    let result = grafana.save(&for_grafana(&local.json, version), folder, &options.message).await;
    let result = match result {
        Err(GrafanaError::VersionMismatch { .. }) => {
            let now = grafana.dashboard(&local.uid).await;
            let who = match &now {
                Ok(Some(s)) => format!(
                    "now version {}{}{}",
                    s.version,
                    s.updated_by.as_deref().map(|u| format!(", saved by {u}")).unwrap_or_default(),
                    s.updated.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
                ),
                Ok(None) => "deleted since".to_owned(),
                Err(e) => format!("cannot re-read it: {e}"),
            };
            let read = version.map_or_else(|| "absent".to_owned(), |v| format!("version {v}"));
            match (options.force, now) {
                (true, Ok(Some(s))) => {
                    outcome.done.push(format!(
                        "{} {:?}: changed in Grafana since it was read ({read} → {who}); --force: applying over it",
                        local.uid, local.title
                    ));
                    grafana.save(&for_grafana(&local.json, Some(s.version)), folder, &options.message).await
                }
                _ => {
                    outcome.failed.push(format!(
                        "{} {:?}: not saved: changed in Grafana since it was read ({read} when read, {who}) \
                         (412 version-mismatch); run plan to see the change, then apply again, or apply --force to replace it",
                        local.uid, local.title
                    ));
                    return;
                }
            }
        }
        other => other,
    };
    match result {
        Ok(saved) => {
            let from = version.map(|v| format!("version {v} → ")).unwrap_or_default();
            let url = if saved.url.is_empty() { String::new() } else { format!(" {}{}", grafana.base(), saved.url) };
            outcome.done.push(format!("{what} {} {:?} ({from}version {}){url}", local.uid, local.title, saved.version));
        }
        Err(e @ GrafanaError::NameExists { .. }) => {
            outcome.failed.push(format!("{}: not saved: {e}", local.path.display()))
        }
        Err(e) => outcome.failed.push(format!("{} {:?}: not saved: {e}", local.uid, local.title)),
    }
}
