//! The dashboards directory as the repo keeps it: `DIR/<folder>/<name>.json`, one directory
//! level per Grafana folder (files directly in `DIR` go to Grafana's root, "Dashboards"), as
//! Grafana's file provisioning with `foldersFromFilesStructure` reads the same tree.
//!
//! A folder's uid is derived from its directory name, stably, so that every promfed (and every
//! run) creates and finds the same folder: `pf-<slug>-<8 hex digits of the name's xxh3>`.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// A Grafana folder made from a directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Folder {
    pub uid: String,
    /// The directory name, as written.
    pub title: String,
}

impl Folder {
    /// The folder of directory `name`.
    pub fn from_dir(name: &str) -> Folder {
        Folder { uid: folder_uid(name), title: name.to_owned() }
    }
}

/// One dashboard file.
#[derive(Clone, Debug)]
pub struct Local {
    /// As found under the root given (root included), for messages.
    pub path: PathBuf,
    /// `None`: Grafana's root folder.
    pub folder: Option<Folder>,
    pub uid: String,
    pub title: String,
    /// The file's JSON, as written.
    pub json: Value,
}

/// The dashboards of a directory and what kept some of them out.
#[derive(Debug, Default)]
pub struct Tree {
    pub dashboards: Vec<Local>,
    /// `file: problem`, for files that are not usable dashboards.
    pub problems: Vec<String>,
}

/// The directory cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct TreeError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Grafana's limit on a uid's length.
pub const MAX_UID_LEN: usize = 40;

/// The uid of the folder made from directory `name`: readable, at most 40 characters of
/// `[a-z0-9-]`, and different for names that differ only in case or punctuation.
pub fn folder_uid(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(26).collect();
    let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as u32;
    format!("pf-{}-{hash:08x}", slug.trim_end_matches('-'))
}

/// Whether `uid` is one Grafana accepts: 1 to 40 of `[A-Za-z0-9_-]`.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Files under `root` (a directory, or one file) whose extension is one of `extensions`,
/// sorted, hidden entries skipped; with the directory depth of each below `root`.
pub fn files(root: &Path, extensions: &[&str]) -> Result<Vec<(PathBuf, usize)>, TreeError> {
    let meta = std::fs::metadata(root).map_err(|source| TreeError { path: root.to_owned(), source })?;
    if meta.is_file() {
        return Ok(vec![(root.to_owned(), 0)]);
    }
    let mut out = Vec::new();
    walk(root, 0, extensions, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, extensions: &[&str], out: &mut Vec<(PathBuf, usize)>) -> Result<(), TreeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TreeError { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| TreeError { path: dir.to_owned(), source })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(|source| TreeError { path: path.clone(), source })?;
        if file_type.is_dir() || (file_type.is_symlink() && path.is_dir()) {
            walk(&path, depth + 1, extensions, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)) {
            out.push((path, depth));
        }
    }
    Ok(())
}

/// Reads every `*.json` under `root`. A file that is not a dashboard with a valid uid and a
/// title, or whose uid another file has already, is a problem and left out.
pub fn load(root: &Path) -> Result<Tree, TreeError> {
    let mut tree = Tree::default();
    let mut seen: std::collections::HashMap<String, PathBuf> = Default::default();
    for (path, depth) in files(root, &["json"])? {
        let shown = path.display().to_string();
        if depth > 1 {
            tree.problems.push(format!(
                "{shown}: nested folders are not supported: keep dashboards at most one directory below {}",
                root.display()
            ));
            continue;
        }
        let json = match read_json(&path) {
            Ok(v) => v,
            Err(e) => {
                tree.problems.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let uid = json.get("uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let title = json.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !json.is_object() {
            tree.problems.push(format!("{shown}: not a dashboard (a JSON object)"));
            continue;
        }
        if !valid_uid(&uid) {
            tree.problems.push(format!("{shown}: {}", uid_problem(&uid)));
            continue;
        }
        if title.trim().is_empty() {
            tree.problems.push(format!("{shown}: dashboard has no title"));
            continue;
        }
        if let Some(first) = seen.get(&uid) {
            tree.problems.push(format!("{shown}: uid {uid:?} is also the uid of {}", first.display()));
            continue;
        }
        seen.insert(uid.clone(), path.clone());
        let folder = (depth == 1)
            .then(|| path.parent().and_then(Path::file_name).map(|n| Folder::from_dir(&n.to_string_lossy())))
            .flatten();
        tree.dashboards.push(Local { path, folder, uid, title, json });
    }
    Ok(tree)
}

/// What is wrong with a uid that [`valid_uid`] refuses.
pub fn uid_problem(uid: &str) -> String {
    if uid.is_empty() {
        "dashboard has no uid: give it one (Grafana would invent a new one on every apply)".to_owned()
    } else if uid.len() > MAX_UID_LEN {
        format!("uid {uid:?} is longer than Grafana's {MAX_UID_LEN} characters")
    } else {
        format!("uid {uid:?} may hold only letters, digits, '-' and '_'")
    }
}

/// A file's JSON, or why not.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_uids_are_stable_valid_and_distinct() {
        let a = folder_uid("promfed");
        assert_eq!(a, folder_uid("promfed"));
        assert!(a.starts_with("pf-promfed-") && valid_uid(&a), "{a}");
        assert_ne!(folder_uid("Remote Write"), folder_uid("remote-write"));
        let long = folder_uid(&"Very Long Folder Name Of Dashboards ".repeat(4));
        assert!(valid_uid(&long) && long.len() <= MAX_UID_LEN, "{long}");
        assert!(valid_uid(&folder_uid("Überwachung / Ops")));
    }

    #[test]
    fn uids_grafana_would_refuse() {
        assert!(valid_uid("promfed-overview_1"));
        for bad in ["", "a b", "x/y", &"a".repeat(41)] {
            assert!(!valid_uid(bad), "{bad}");
        }
    }

    #[test]
    fn load_reads_folders_and_refuses_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("root.json", r#"{"uid": "r", "title": "Root"}"#);
        write("ops/a.json", r#"{"uid": "a", "title": "A"}"#);
        write("ops/dup.json", r#"{"uid": "a", "title": "Again"}"#);
        write("ops/broken.json", "{");
        write("ops/README.md", "not a dashboard");
        write("ops/deeper/x.json", r#"{"uid": "x", "title": "X"}"#);
        write(".hidden/y.json", r#"{"uid": "y", "title": "Y"}"#);
        let tree = load(dir.path()).unwrap();
        let got: Vec<(&str, Option<&str>)> =
            tree.dashboards.iter().map(|d| (d.uid.as_str(), d.folder.as_ref().map(|f| f.title.as_str()))).collect();
        assert_eq!(got, [("a", Some("ops")), ("r", None)]);
        assert_eq!(tree.problems.len(), 3, "{:#?}", tree.problems);
        assert!(tree.problems.iter().any(|p| p.contains("broken.json: invalid JSON")));
        assert!(tree.problems.iter().any(|p| p.contains("dup.json: uid \"a\" is also the uid of")));
        assert!(tree.problems.iter().any(|p| p.contains("x.json: nested folders")));
    }
}
