//! `promfed dashboards lint|plan|apply|pull|provision` of the real binary, and the sidecar's
//! dashboard sync, against [`FakeGrafana`]: an in-process HTTP server on 127.0.0.1:0 that
//! follows Grafana's documented HTTP API (Grafana cannot be installed here).
//!
//! Checked: plan and its exit codes (0 no change, 2 pending, 1 error), apply (folders from
//! directories, managed tag, message, the version read sent back), idempotence (a second apply
//! changes nothing, plan exits 0), updates shown panel by panel, prune deleting only managed
//! dashboards, 412 version-mismatch (reported with who changed it; `--force` applies over it),
//! 412 name-exists, 401 without or with a wrong token and 403 for a viewer token, pull's
//! normalised JSON round trip, provision's YAML read back, lint of good and bad fixtures (one
//! per rule) and `--live` against a fake Prometheus and a fake promfed, and the repo's own
//! `dashboards/` and `alerts/` when they hold files.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_promfed");
const EDITOR: &str = "editor-token";
const VIEWER: &str = "viewer-token";
const MANAGED: &str = "managed-by:promfed";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dashboards")
}

// ---------------------------------------------------------------------------------------------
// FakeGrafana

/// A dashboard as the fake stores it.
#[derive(Clone, Debug)]
struct StoredDashboard {
    id: u64,
    json: Value,
    version: u64,
    folder_uid: String,
    message: String,
    updated_by: String,
}

#[derive(Default)]
struct GrafanaState {
    dashboards: BTreeMap<String, StoredDashboard>,
    /// uid → (id, title)
    folders: BTreeMap<String, (u64, String)>,
    next_id: u64,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    /// uids whose next GET is followed by an edit "in the UI" by alice (a concurrent change).
    edit_after_get: HashSet<String>,
}

/// A fake Grafana following the documented HTTP API: `GET /api/health`; `GET /api/search`
/// (`type=dash-db`, `tag`, `limit`, `page`); `GET|DELETE /api/dashboards/uid/:uid`;
/// `POST /api/dashboards/db` (200 `{id, uid, url, status, version, slug}`; 412
/// `version-mismatch` when the version sent is not the stored one and `overwrite` is false;
/// 412 `name-exists` when another uid of the folder has the title); `GET|POST /api/folders`
/// (409 on an existing uid). Tokens: `editor-token` may write, `viewer-token` only read (403),
/// no token or another one: 401.
#[derive(Clone)]
struct FakeGrafana {
    url: String,
    state: Arc<Mutex<GrafanaState>>,
}

impl FakeGrafana {
    async fn start() -> FakeGrafana {
        FakeGrafana::start_with(None).await
    }

    /// Over HTTPS with this certificate and key (promfed's own server stack does the TLS).
    async fn start_tls(cert: &Path, key: &Path) -> FakeGrafana {
        FakeGrafana::start_with(Some((cert, key))).await
    }

    async fn start_with(tls: Option<(&Path, &Path)>) -> FakeGrafana {
        let state = Arc::new(Mutex::new(GrafanaState { next_id: 1, ..Default::default() }));
        let app = Router::new()
            .route(
                "/api/health",
                get(|| async { axum::Json(json!({"commit": "fake", "database": "ok", "version": "11.3.0-fake"})) }),
            )
            .route("/api/search", get(search))
            .route("/api/dashboards/db", post(save))
            .route("/api/dashboards/uid/{uid}", get(get_dashboard).delete(delete_dashboard))
            .route("/api/folders", get(list_folders).post(create_folder))
            .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let Some((cert, key)) = tls else {
            tokio::spawn(async move { axum::serve(listener, app).await });
            return FakeGrafana { url: format!("http://{address}"), state };
        };
        promfed::serve::install_crypto_provider();
        let settings = promfed::serve::TlsSettings {
            cert_file: cert.to_owned(),
            key_file: key.to_owned(),
            client_ca_file: None,
            min_version: None,
        };
        let tls = promfed::serve::TlsReloader::load(settings).expect("the fake's TLS");
        let options = promfed::serve::ServeOptions::default();
        let token = tokio_util::sync::CancellationToken::new();
        tokio::spawn(async move { promfed::serve::serve(listener, Some(tls), app, options, token).await });
        FakeGrafana { url: format!("https://{address}"), state }
    }

    fn dashboard(&self, uid: &str) -> Option<StoredDashboard> {
        self.state.lock().unwrap().dashboards.get(uid).cloned()
    }

    fn uids(&self) -> Vec<String> {
        self.state.lock().unwrap().dashboards.keys().cloned().collect()
    }

    fn folders(&self) -> BTreeMap<String, String> {
        self.state.lock().unwrap().folders.iter().map(|(uid, (_, title))| (uid.clone(), title.clone())).collect()
    }

    fn requests(&self, prefix: &str) -> usize {
        self.state.lock().unwrap().requests.iter().filter(|r| r.starts_with(prefix)).count()
    }

    /// A dashboard made by a person in Grafana's UI (no managed tag), as Grafana stores it.
    fn insert_by_hand(&self, uid: &str, title: &str, folder_uid: &str) {
        let mut s = self.state.lock().unwrap();
        let id = s.next_id;
        s.next_id += 1;
        let json = json!({"id": id, "uid": uid, "title": title, "version": 3, "iteration": 1_700_000_000_000u64,
                          "tags": ["hand-made"], "schemaVersion": 39, "panels": [{"id": 1, "type": "text", "title": "Notes"}]});
        s.dashboards.insert(
            uid.to_owned(),
            StoredDashboard {
                id,
                json,
                version: 3,
                folder_uid: folder_uid.to_owned(),
                message: String::new(),
                updated_by: "bob".into(),
            },
        );
    }

    /// After the next read of `uid`, alice changes it in the UI.
    fn edit_after_next_get(&self, uid: &str) {
        self.state.lock().unwrap().edit_after_get.insert(uid.to_owned());
    }
}

type Shared = State<Arc<Mutex<GrafanaState>>>;

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn auth(State(state): Shared, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    state.lock().unwrap().requests.push(format!("{method} {path}"));
    if path == "/api/health" {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    match token.as_deref() {
        None => error(StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"})),
        Some(EDITOR) => next.run(request).await,
        Some(VIEWER) if method == Method::GET => next.run(request).await,
        Some(VIEWER) => error(
            StatusCode::FORBIDDEN,
            json!({"message": "You'll need additional permissions to perform this action. Permissions needed: dashboards:write"}),
        ),
        Some(_) => error(StatusCode::UNAUTHORIZED, json!({"message": "invalid API key"})),
    }
}

fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_owned()
}

async fn search(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let s = state.lock().unwrap();
    if q.get("type").is_some_and(|t| t != "dash-db") {
        return axum::Json(json!([])).into_response();
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(1000);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let hits: Vec<Value> = s
        .dashboards
        .iter()
        .filter(|(_, d)| {
            q.get("tag")
                .is_none_or(|tag| d.json["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == tag.as_str())))
        })
        .skip((page - 1) * limit)
        .take(limit)
        .map(|(uid, d)| {
            let title = d.json["title"].as_str().unwrap_or_default();
            let folder_title = s.folders.get(&d.folder_uid).map(|f| f.1.clone()).unwrap_or_default();
            json!({"id": d.id, "uid": uid, "title": title, "uri": format!("db/{}", slug(title)),
                   "url": format!("/d/{uid}/{}", slug(title)), "slug": "", "type": "dash-db",
                   "tags": d.json["tags"], "isStarred": false, "folderUid": d.folder_uid, "folderTitle": folder_title})
        })
        .collect();
    axum::Json(Value::Array(hits)).into_response()
}

async fn get_dashboard(State(state): Shared, UrlPath(uid): UrlPath<String>) -> Response {
    let mut s = state.lock().unwrap();
    let Some(d) = s.dashboards.get(&uid).cloned() else {
        return error(StatusCode::NOT_FOUND, json!({"message": "Dashboard not found"}));
    };
    let (folder_id, folder_title) = s.folders.get(&d.folder_uid).cloned().unwrap_or((0, String::new()));
    let title = d.json["title"].as_str().unwrap_or_default().to_owned();
    let body = json!({"dashboard": d.json, "meta": {
        "type": "db", "canSave": true, "canEdit": true, "slug": slug(&title), "url": format!("/d/{uid}/{}", slug(&title)),
        "folderId": folder_id, "folderUid": d.folder_uid, "folderTitle": folder_title, "provisioned": false,
        "updatedBy": d.updated_by, "updated": "2026-11-02T10:00:00Z", "version": d.version}});
    if s.edit_after_get.remove(&uid) {
        let e = s.dashboards.get_mut(&uid).unwrap();
        e.version += 1;
        e.json["version"] = json!(e.version);
        e.json["description"] = json!("edited in the UI");
        e.updated_by = "alice".into();
    }
    axum::Json(body).into_response()
}

async fn delete_dashboard(State(state): Shared, UrlPath(uid): UrlPath<String>) -> Response {
    match state.lock().unwrap().dashboards.remove(&uid) {
        Some(d) => {
            let title = d.json["title"].as_str().unwrap_or_default().to_owned();
            axum::Json(json!({"title": title, "message": format!("Dashboard {title} deleted"), "id": d.id}))
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, json!({"message": "Dashboard not found"})),
    }
}

async fn save(State(state): Shared, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, json!({"message": "bad request data"}));
    };
    let mut s = state.lock().unwrap();
    let mut dashboard = body["dashboard"].clone();
    let title = dashboard["title"].as_str().unwrap_or_default().to_owned();
    if title.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"message": "Dashboard title cannot be empty", "status": "empty-name"}),
        );
    }
    let folder_uid = body["folderUid"].as_str().unwrap_or_default().to_owned();
    if !folder_uid.is_empty() && !s.folders.contains_key(&folder_uid) {
        return error(StatusCode::BAD_REQUEST, json!({"message": "folder not found", "status": "not-found"}));
    }
    let overwrite = body["overwrite"].as_bool().unwrap_or(false);
    let uid = match dashboard["uid"].as_str() {
        Some(u) if !u.is_empty() => u.to_owned(),
        _ => format!("gen{}", s.next_id),
    };
    let sent_version = dashboard["version"].as_u64().unwrap_or(0);
    let existing = s.dashboards.get(&uid).cloned();
    if let Some(e) = &existing
        && e.version != sent_version
        && !overwrite
    {
        return error(
            StatusCode::PRECONDITION_FAILED,
            json!({"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}),
        );
    }
    let clash = s.dashboards.iter().any(|(other, d)| {
        *other != uid
            && d.folder_uid == folder_uid
            && d.json["title"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(&title))
    });
    if clash && !overwrite {
        return error(
            StatusCode::PRECONDITION_FAILED,
            json!({"message": "A dashboard with the same name in the folder already exists", "status": "name-exists"}),
        );
    }
    let id = existing.as_ref().map_or_else(
        || {
            s.next_id += 1;
            s.next_id - 1
        },
        |e| e.id,
    );
    let version = existing.as_ref().map_or(1, |e| e.version + 1);
    dashboard["id"] = json!(id);
    dashboard["uid"] = json!(uid);
    dashboard["version"] = json!(version);
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    s.dashboards.insert(
        uid.clone(),
        StoredDashboard { id, json: dashboard, version, folder_uid, message, updated_by: "sa-promfed".into() },
    );
    let slug = slug(&title);
    axum::Json(json!({"id": id, "uid": uid, "url": format!("/d/{uid}/{slug}"), "status": "success", "version": version, "slug": slug}))
        .into_response()
}

async fn list_folders(State(state): Shared) -> Response {
    let s = state.lock().unwrap();
    let list: Vec<Value> =
        s.folders.iter().map(|(uid, (id, title))| json!({"id": id, "uid": uid, "title": title})).collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn create_folder(State(state): Shared, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(uid), Some(title)) = (body["uid"].as_str(), body["title"].as_str()) else {
        return error(StatusCode::BAD_REQUEST, json!({"message": "bad request data"}));
    };
    let mut s = state.lock().unwrap();
    if s.folders.contains_key(uid) {
        return error(StatusCode::CONFLICT, json!({"message": "a folder with the same uid already exists"}));
    }
    let id = s.next_id;
    s.next_id += 1;
    s.folders.insert(uid.to_owned(), (id, title.to_owned()));
    axum::Json(json!({"id": id, "uid": uid, "title": title, "url": format!("/dashboards/f/{uid}/"), "version": 1}))
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Running the binary

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `promfed ARGS` with `GRAFANA_TOKEN` set to `token` (unset when `None`), off the runtime.
async fn promfed(args: &[&str], token: Option<&str>) -> Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let token = token.map(str::to_owned);
    let out: Output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(&args)
            .env_remove("GRAFANA_TOKEN")
            .env_remove("GRAFANA_URL")
            .env_remove("GRAFANA_TOKEN_FILE")
            .env("NO_COLOR", "1");
        if let Some(t) = token {
            cmd.env("GRAFANA_TOKEN", t);
        }
        cmd.output().expect("run promfed")
    })
    .await
    .expect("join");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A copy of the good fixtures (dashboards only) to change freely.
fn good_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&fixtures().join("good"), dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixtures") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else if entry.path().extension().is_some_and(|e| e == "json") {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).expect("encode")).expect("write");
}

fn folder_uid(name: &str) -> String {
    promfed::dashboards::tree::folder_uid(name)
}

async fn plan(g: &FakeGrafana, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["dashboards", "plan", dir.to_str().unwrap(), "--grafana", &g.url];
    args.extend_from_slice(extra);
    promfed(&args, Some(EDITOR)).await
}

async fn apply(g: &FakeGrafana, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["dashboards", "apply", dir.to_str().unwrap(), "--grafana", &g.url];
    args.extend_from_slice(extra);
    promfed(&args, Some(EDITOR)).await
}

// ---------------------------------------------------------------------------------------------
// plan / apply

/// Issue 13: a Grafana whose certificate was made by `openssl req -x509 …` (self-signed,
/// CA:TRUE), that same file given as `--grafana-ca-file`: accepted, as Go's clients accept it;
/// another such certificate as the CA: refused, naming the certificate problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_with_an_openssl_self_signed_certificate() {
    let pki = tempfile::tempdir().expect("temp dir");
    let (cert, key) = common::openssl_self_signed(pki.path(), "grafana", "IP:127.0.0.1");
    let (other, _) = common::openssl_self_signed(pki.path(), "other", "IP:127.0.0.1");
    let g = FakeGrafana::start_tls(&cert, &key).await;
    assert!(g.url.starts_with("https://127.0.0.1:"), "{}", g.url);
    let dir = good_copy();
    let run = plan(&g, dir.path(), &["--grafana-ca-file", cert.to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "changes pending, Grafana reached: {run:?}");
    let run = apply(&g, dir.path(), &["--grafana-ca-file", cert.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!g.uids().is_empty());
    let run = plan(&g, dir.path(), &["--grafana-ca-file", cert.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "nothing left to change: {run:?}");
    let run = plan(&g, dir.path(), &["--grafana-ca-file", other.to_str().unwrap()]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("certificate"), "the reason names the certificate: {run:?}");
    let run = plan(&g, dir.path(), &[]).await;
    assert_eq!(run.code, 1, "the system roots do not know it: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_and_a_second_apply_changes_nothing() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();

    let first = plan(&g, dir.path(), &[]).await;
    assert_eq!(first.code, 2, "{first:?}");
    assert!(
        first.stdout.contains("+ create    pf-test-overview \"promfed test / Overview\" in folder \"promfed\""),
        "{first:?}"
    );
    assert!(first.stdout.contains("+ create    pf-test-home \"promfed test / Home\" in root folder"), "{first:?}");
    assert!(first.stdout.contains("Plan: 4 to create, 0 to update, 0 to delete, 0 unchanged."), "{first:?}");
    assert_eq!(g.requests("POST"), 0, "plan writes nothing");

    let applied = apply(&g, dir.path(), &["--message", "from CI run 42"]).await;
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(applied.stdout.contains("created folder \"promfed\""), "{applied:?}");
    assert!(applied.stdout.contains("created pf-test-probes \"promfed test / Probes\" (version 1)"), "{applied:?}");
    let folders = g.folders();
    assert_eq!(folders.get(&folder_uid("promfed")).map(String::as_str), Some("promfed"));
    assert_eq!(folders.get(&folder_uid("probes")).map(String::as_str), Some("probes"));
    assert_eq!(g.uids(), ["pf-test-home", "pf-test-overview", "pf-test-probes", "pf-test-remote-write"]);
    let overview = g.dashboard("pf-test-overview").unwrap();
    assert_eq!(overview.folder_uid, folder_uid("promfed"));
    assert_eq!(overview.message, "from CI run 42");
    assert_eq!(overview.json["tags"], json!(["promfed", MANAGED]));
    assert_eq!(g.dashboard("pf-test-home").unwrap().folder_uid, "", "a file directly in DIR goes to the root folder");

    let again = plan(&g, dir.path(), &[]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("Plan: 0 to create, 0 to update, 0 to delete, 4 unchanged."), "{again:?}");
    let posts = g.requests("POST /api/dashboards/db");
    let second = apply(&g, dir.path(), &[]).await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stdout.contains("No changes"), "{second:?}");
    assert_eq!(g.requests("POST /api/dashboards/db"), posts, "an unchanged dashboard is not saved again");
    assert_eq!(g.dashboard("pf-test-overview").unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_shown_panel_by_panel_and_saved_with_the_version_read() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    assert_eq!(apply(&g, dir.path(), &[]).await.code, 0);
    let file = dir.path().join("promfed/overview.json");
    edit_json(&file, |d| {
        d["panels"][0]["targets"][0]["expr"] = json!("sum by (group) (promfed_replica_up)");
        d["panels"][2]["panels"][1]["fieldConfig"]["defaults"]["unit"] = json!("ms");
        d["refresh"] = json!("1m");
    });
    // Moving a dashboard to another folder is an update too.
    std::fs::create_dir(dir.path().join("moved")).unwrap();
    std::fs::rename(dir.path().join("probes/probes.json"), dir.path().join("moved/probes.json")).unwrap();

    let p = plan(&g, dir.path(), &[]).await;
    assert_eq!(p.code, 2, "{p:?}");
    for line in [
        "~ update    pf-test-overview \"promfed test / Overview\" in folder \"promfed\"",
        "    panel \"Replicas up\": targets[0].expr: \"sum by (group) (promfed_replica_up{group=~\\\"$group\\\"})\" → \"sum by (group) (promfed_replica_up)\"",
        "    panel \"Scrape duration\": fieldConfig.defaults.unit: \"s\" → \"ms\"",
        "    refresh: \"30s\" → \"1m\"",
        "~ update    pf-test-probes \"promfed test / Probes\" in folder \"moved\"",
        "    folder: \"probes\" → \"moved\"",
        "= unchanged pf-test-home",
        "Plan: 0 to create, 2 to update, 0 to delete, 2 unchanged.",
    ] {
        assert!(p.stdout.contains(line), "missing {line:?} in {p:?}");
    }
    let a = apply(&g, dir.path(), &[]).await;
    assert_eq!(a.code, 0, "{a:?}");
    assert!(a.stdout.contains("updated pf-test-overview \"promfed test / Overview\" (version 1 → version 2)"), "{a:?}");
    let stored = g.dashboard("pf-test-overview").unwrap();
    assert_eq!(stored.json["refresh"], "1m");
    assert_eq!(g.dashboard("pf-test-probes").unwrap().folder_uid, folder_uid("moved"));
    assert_eq!(plan(&g, dir.path(), &[]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_dashboards_promfed_manages() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    assert_eq!(apply(&g, dir.path(), &[]).await.code, 0);
    g.insert_by_hand("by-hand", "Made in the UI", "");
    std::fs::remove_file(dir.path().join("probes/probes.json")).unwrap();

    let p = plan(&g, dir.path(), &[]).await;
    assert_eq!(p.code, 0, "without --prune a deletion is not pending: {p:?}");
    assert!(p.stdout.contains("- delete    pf-test-probes \"promfed test / Probes\" in folder \"probes\" (managed by promfed, not in the directory; kept: --prune deletes it)"), "{p:?}");
    assert!(p.stdout.contains("1 to delete with --prune"), "{p:?}");
    assert!(!p.stdout.contains("by-hand"), "a dashboard without the managed tag is not promfed's: {p:?}");
    assert_eq!(plan(&g, dir.path(), &["--prune"]).await.code, 2);

    let kept = apply(&g, dir.path(), &[]).await;
    assert_eq!(kept.code, 0, "{kept:?}");
    assert!(g.dashboard("pf-test-probes").is_some(), "apply without --prune deletes nothing");

    let pruned = apply(&g, dir.path(), &["--prune"]).await;
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(pruned.stdout.contains("deleted pf-test-probes \"promfed test / Probes\""), "{pruned:?}");
    assert_eq!(g.uids(), ["by-hand", "pf-test-home", "pf-test-overview", "pf-test-remote-write"]);
    assert_eq!(plan(&g, dir.path(), &["--prune"]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_stops_apply_before_anything_is_written() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    assert_eq!(apply(&g, dir.path(), &[]).await.code, 0);
    std::fs::write(dir.path().join("probes/probes.json"), "{\"uid\": ").unwrap();
    let before = g.requests("");
    let r = apply(&g, dir.path(), &["--prune"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("probes.json: invalid JSON"), "{r:?}");
    assert!(r.stderr.contains("nothing done"), "{r:?}");
    assert_eq!(g.requests(""), before, "Grafana is not even asked");
    assert!(g.dashboard("pf-test-probes").is_some(), "not pruned for being unreadable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_change_is_reported_and_force_applies_over_it() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    assert_eq!(apply(&g, dir.path(), &[]).await.code, 0);
    edit_json(&dir.path().join("home.json"), |d| d["refresh"] = json!("5m"));

    g.edit_after_next_get("pf-test-home");
    let r = apply(&g, dir.path(), &[]).await;
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stderr.lines().find(|l| l.contains("pf-test-home")).unwrap_or_default();
    for part in [
        "not saved: changed in Grafana since it was read",
        "version 1 when read",
        "now version 2, saved by alice",
        "412 version-mismatch",
        "--force",
    ] {
        assert!(line.contains(part), "missing {part:?} in {line:?}");
    }
    let stored = g.dashboard("pf-test-home").unwrap();
    assert_eq!(stored.json["description"], "edited in the UI", "alice's change is kept");
    assert_eq!(stored.json["refresh"], "30s");

    // plan shows what alice did (her field would go) and the file's change.
    let p = plan(&g, dir.path(), &[]).await;
    assert!(p.stdout.contains("description: removed (was \"edited in the UI\")"), "{p:?}");

    g.edit_after_next_get("pf-test-home");
    let forced = apply(&g, dir.path(), &["--force"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(forced.stdout.contains("--force: applying over it"), "{forced:?}");
    let stored = g.dashboard("pf-test-home").unwrap();
    assert_eq!((stored.json["refresh"].as_str(), stored.version), (Some("5m"), 4));
    assert!(stored.json.get("description").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_another_dashboard_has_is_reported_not_overwritten() {
    let g = FakeGrafana::start().await;
    g.insert_by_hand("someone-elses", "promfed test / Home", "");
    let dir = good_copy();
    let r = apply(&g, dir.path(), &[]).await;
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stderr.lines().find(|l| l.contains("name-exists")).unwrap_or_default();
    assert!(line.contains("home.json: not saved: dashboard \"pf-test-home\": another dashboard titled \"promfed test / Home\" already exists in that folder"), "{r:?}");
    assert_eq!(g.dashboard("someone-elses").unwrap().json["title"], "promfed test / Home");
    assert!(g.dashboard("pf-test-home").is_none());
    assert!(g.dashboard("pf-test-overview").is_some(), "the other dashboards are applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_made_by_hand_with_the_same_uid_is_adopted() {
    let g = FakeGrafana::start().await;
    g.insert_by_hand("pf-test-home", "Old home", "");
    let dir = good_copy();
    let p = plan(&g, dir.path(), &[]).await;
    assert!(p.stdout.contains("tags: managed-by:promfed added (made outside promfed: apply adopts it)"), "{p:?}");
    assert!(p.stdout.contains("title: \"Old home\" → \"promfed test / Home\""), "{p:?}");
    let a = apply(&g, dir.path(), &[]).await;
    assert_eq!(a.code, 0, "{a:?}");
    assert!(a.stdout.contains("updated pf-test-home \"promfed test / Home\" (version 3 → version 4)"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_say_what_to_do() {
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    let d = dir.path().to_str().unwrap();

    let none = promfed(&["dashboards", "plan", d, "--grafana", &g.url], None).await;
    assert_eq!(none.code, 1, "{none:?}");
    assert!(none.stderr.contains("401 Unauthorized: Unauthorized (Grafana wants a service-account token: --token-file FILE or the GRAFANA_TOKEN environment variable)"), "{none:?}");

    let wrong = promfed(&["dashboards", "apply", d, "--grafana", &g.url], Some("stolen")).await;
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(wrong.stderr.contains("401 Unauthorized: invalid API key (Grafana refused the token"), "{wrong:?}");

    let token_file = dir.path().join("viewer.token");
    std::fs::write(&token_file, format!("{VIEWER}\n")).unwrap();
    let tf = token_file.to_str().unwrap();
    let viewer_plan =
        promfed(&["dashboards", "plan", d, "--grafana", &g.url, "--token-file", tf], Some("ignored")).await;
    assert_eq!(viewer_plan.code, 2, "a viewer may plan: {viewer_plan:?}");
    let viewer = promfed(&["dashboards", "apply", d, "--grafana", &g.url, "--token-file", tf], None).await;
    assert_eq!(viewer.code, 1, "{viewer:?}");
    assert!(viewer.stderr.contains("403 Forbidden"), "{viewer:?}");
    assert!(viewer.stderr.contains("give it the Editor role"), "{viewer:?}");
    assert!(g.uids().is_empty());

    let unreachable = promfed(
        &["dashboards", "plan", d, "--grafana", &format!("http://127.0.0.1:{}", common::free_port())],
        Some(EDITOR),
    )
    .await;
    assert_eq!(unreachable.code, 1, "{unreachable:?}");
    assert!(unreachable.stderr.contains("connection refused (is Grafana running there?)"), "{unreachable:?}");
}

// ---------------------------------------------------------------------------------------------
// pull

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_writes_the_repos_form_byte_for_byte() {
    let g = FakeGrafana::start().await;
    let good = fixtures().join("good");
    assert_eq!(apply(&g, &good, &[]).await.code, 0);

    // Into an empty directory: DIR/<folder>/<uid>.json, identical to the (canonical) fixture.
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let r = promfed(
        &["dashboards", "pull", "--grafana", &g.url, "--uid", "pf-test-overview", "--uid", "pf-test-home", o],
        Some(EDITOR),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let pulled = std::fs::read_to_string(out.path().join("promfed/pf-test-overview.json")).unwrap();
    assert_eq!(pulled, std::fs::read_to_string(good.join("promfed/overview.json")).unwrap());
    assert_eq!(
        std::fs::read_to_string(out.path().join("pf-test-home.json")).unwrap(),
        std::fs::read_to_string(good.join("home.json")).unwrap()
    );
    // And into the repo's own copy: over the file that has the uid, unchanged.
    let dir = good_copy();
    let r = promfed(
        &["dashboards", "pull", "--grafana", &g.url, "--uid", "pf-test-probes", dir.path().to_str().unwrap()],
        Some(EDITOR),
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("wrote {}", dir.path().join("probes/probes.json").display())), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("probes/probes.json")).unwrap(),
        std::fs::read_to_string(good.join("probes/probes.json")).unwrap()
    );

    // A dashboard made in the UI: no id, version, iteration; sorted keys, two-space indent.
    g.insert_by_hand("by-hand", "Made in the UI", &folder_uid("promfed"));
    let r = promfed(&["dashboards", "pull", "--grafana", &g.url, "--uid", "by-hand", o], Some(EDITOR)).await;
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(out.path().join("promfed/by-hand.json")).unwrap();
    assert_eq!(
        text,
        "{\n  \"panels\": [\n    {\n      \"id\": 1,\n      \"title\": \"Notes\",\n      \"type\": \"text\"\n    }\n  ],\n  \
         \"schemaVersion\": 39,\n  \"tags\": [\n    \"hand-made\"\n  ],\n  \"title\": \"Made in the UI\",\n  \"uid\": \"by-hand\"\n}\n"
    );
    let missing = promfed(&["dashboards", "pull", "--grafana", &g.url, "--uid", "nope", o], Some(EDITOR)).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("has no dashboard with uid \"nope\""), "{missing:?}");
}

// ---------------------------------------------------------------------------------------------
// provision

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_writes_yaml_that_reads_back() {
    let out = tempfile::tempdir().unwrap();
    let ca = common::Pki::new("provision test CA").ca_pem();
    let ca_file = out.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let o = out.path().join("provisioning");
    let r = promfed(
        &[
            "dashboards",
            "provision",
            o.to_str().unwrap(),
            "--url",
            "https://promfed.example:9443",
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--scrape-interval",
            "30s",
            "--dashboards-path",
            "/srv/promfed/dashboards",
            "--default",
        ],
        None,
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let read = |rel: &str| -> Value { serde_saphyr::from_str(&std::fs::read_to_string(o.join(rel)).unwrap()).unwrap() };
    let dashboards = read("dashboards/promfed.yaml");
    assert_eq!(dashboards["apiVersion"], 1);
    let provider = &dashboards["providers"][0];
    assert_eq!((provider["name"].as_str(), provider["type"].as_str()), (Some("promfed"), Some("file")));
    assert_eq!(provider["options"], json!({"path": "/srv/promfed/dashboards", "foldersFromFilesStructure": true}));
    assert!(provider.get("folder").is_none(), "Grafana refuses folder with foldersFromFilesStructure");
    let ds = &read("datasources/promfed.yaml")["datasources"][0];
    assert_eq!(ds["type"], "prometheus");
    assert_eq!(ds["url"], "https://promfed.example:9443");
    assert_eq!(ds["isDefault"], true);
    assert_eq!(ds["jsonData"], json!({"httpMethod": "POST", "timeInterval": "30s", "tlsAuthWithCACert": true}));
    assert_eq!(ds["secureJsonData"]["tlsCACert"].as_str().map(str::trim), Some(ca.trim()));

    let bad =
        promfed(&["dashboards", "provision", o.to_str().unwrap(), "--ca-file", "/nonexistent/ca.pem"], None).await;
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("cannot read --ca-file /nonexistent/ca.pem"), "{bad:?}");
}

// ---------------------------------------------------------------------------------------------
// lint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_passes_the_good_fixtures_and_names_each_bad_one() {
    let good = promfed(&["dashboards", "lint", fixtures().join("good").to_str().unwrap()], None).await;
    assert_eq!(good.code, 0, "{good:?}");
    assert!(good.stderr.contains("5 file(s) checked: no problems"), "{good:?}");

    let bad_dir = fixtures().join("bad");
    let r = promfed(&["dashboards", "lint", bad_dir.to_str().unwrap()], None).await;
    assert_eq!(r.code, 1, "{r:?}");
    let d = bad_dir.display();
    let expected = [
        format!("{d}/bad-rules.yml: group \"bad\": alert \"NoParse\": expr does not parse: unclosed left parenthesis"),
        format!("{d}/bad-rules.yml: group \"bad\": alert \"NoSeverity\": no `severity` label"),
        format!("{d}/bad-rules.yml: group \"bad\": alert \"NoSeverity\": no `runbook_url` annotation"),
        format!(
            "{d}/duplicate-uid.json: uid \"bad-duplicate-uid\" is also the uid of {d}/duplicate-uid-copy.json: uids must be unique"
        ),
        format!(
            "{d}/hardcoded-datasource.json: panel \"Groups up\": datasource \"P1809F7CD0C75ACF3\" is hard-coded: use ${{datasource}}"
        ),
        format!("{d}/instance-id.json: \"id\": 42 belongs to one Grafana install: remove it (pull drops it)"),
        format!("{d}/invalid-json.json: invalid JSON: EOF while parsing a value at line 2 column 0"),
        format!(
            "{d}/no-datasource-variable.json: no datasource variable: add a templating variable of type \"datasource\" with query \"prometheus\" (named datasource) and use ${{datasource}} in every panel"
        ),
        format!("{d}/no-panel-title.json: panel #1: panel has no title"),
        format!("{d}/no-uid.json: dashboard has no uid: give it one (Grafana would invent a new one on every apply)"),
        format!(
            "{d}/no-unit.json: panel \"Groups up\": no unit: set fieldConfig.defaults.unit (e.g. \"short\", \"s\", \"bytes\", \"percentunit\", \"none\")"
        ),
        format!("{d}/parse-error.json: panel \"Groups up\": target A: query does not parse: unclosed left parenthesis"),
        format!("{d}/rate-interval.json: panel \"Groups up\": target A: rate() over [5m]: use [$__rate_interval]"),
        format!(
            "{d}/undefined-variable.json: panel \"Groups up\": target A: variable $cluster is not defined in the dashboard's templating"
        ),
    ];
    let got: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(got, expected, "{r:?}");
    assert!(r.stderr.contains("13 file(s) checked: 14 problem(s)"), "{r:?}");

    // --alerts adds rule files only; a missing path is an error, not a pass.
    let alerts = promfed(
        &[
            "dashboards",
            "lint",
            fixtures().join("good/home.json").to_str().unwrap(),
            "--alerts",
            bad_dir.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(alerts.code, 1, "{alerts:?}");
    assert_eq!(alerts.stdout.lines().count(), 3, "{alerts:?}");
    let missing = promfed(&["dashboards", "lint", "/nonexistent/dashboards"], None).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("cannot read /nonexistent/dashboards"), "{missing:?}");
}

/// A server answering `routes` (path → (content type, body)), 404 otherwise; requires
/// `Authorization: Bearer <token>` when `token` is given.
async fn fake_server(routes: Vec<(&'static str, &'static str, String)>, token: Option<&'static str>) -> String {
    let routes = Arc::new(routes);
    let app = Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri| {
        let routes = routes.clone();
        async move {
            if let Some(t) = token
                && headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {t}"))
            {
                return (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            }
            match routes.iter().find(|(p, _, _)| *p == uri.path()) {
                Some((_, ct, body)) => ([("content-type", *ct)], body.clone()).into_response(),
                None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_live_looks_up_every_metric_name() {
    let good = fixtures().join("good");
    let g = good.to_str().unwrap();
    // A Prometheus lacking two of the names (the recording rule's own name counts as known).
    let names = json!({"status": "success", "data": [
        "promfed_group_up", "promfed_replica_up", "promfed_group_failovers_total", "promfed_scrape_errors_total",
        "promfed_scrape_duration_seconds", "promfed_remote_storage_samples_pending",
        "promfed_remote_storage_highest_timestamp_in_seconds", "promfed_remote_storage_queue_highest_sent_timestamp_seconds",
        "probe_success"]});
    let prometheus =
        fake_server(vec![("/api/v1/label/__name__/values", "application/json", names.to_string())], Some("secret"))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "secret\n").unwrap();
    let r = promfed(
        &["dashboards", "lint", g, "--live", &prometheus, "--bearer-token-file", token.to_str().unwrap()],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [format!(
            "{g}/probes/probes.json: panel \"Certificate expiry\": target A: metric \"probe_ssl_earliest_cert_expiry\" is not known to {prometheus} (no series of that name)"
        )],
        "{r:?}"
    );
    let unauthorized = promfed(&["dashboards", "lint", g, "--live", &prometheus], None).await;
    assert_eq!(unauthorized.code, 1, "{unauthorized:?}");
    assert!(unauthorized.stderr.contains("401 Unauthorized"), "{unauthorized:?}");

    // A promfed (no query API): its /metrics, declared families included, and /federate.
    let metrics = "# TYPE promfed_group_up gauge\npromfed_group_up{group=\"eu\"} 1\n# TYPE promfed_replica_up gauge\n\
                   # TYPE promfed_group_failovers counter\n# TYPE promfed_scrape_errors counter\n\
                   # TYPE promfed_scrape_duration_seconds gauge\n# TYPE promfed_remote_storage_samples_pending gauge\n\
                   # TYPE promfed_remote_storage_highest_timestamp_in_seconds gauge\n\
                   # TYPE promfed_remote_storage_queue_highest_sent_timestamp_seconds gauge\n\
                   probe_success{module=\"http_2xx\",target=\"x\"} 1\n# EOF\n";
    let federate = "probe_ssl_earliest_cert_expiry{instance=\"a\"} 1.9e9 1700000000000\n";
    let promfed_url = fake_server(
        vec![
            ("/metrics", "application/openmetrics-text; version=1.0.0", metrics.to_owned()),
            ("/federate", "text/plain; version=0.0.4", federate.to_owned()),
        ],
        None,
    )
    .await;
    let r = promfed(&["dashboards", "lint", g, "--live", &promfed_url], None).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("metric name(s) looked up"), "{r:?}");
}

/// The repo's own dashboards and alerts (written on another branch) must pass lint once they
/// exist; until then there is nothing to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repos_dashboards_and_alerts_pass_lint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let has_files = |dir: &str, ext: &[&str]| {
        promfed::dashboards::tree::files(&root.join(dir), ext).map(|f| !f.is_empty()).unwrap_or(false)
    };
    let mut args = vec!["dashboards".to_owned(), "lint".to_owned()];
    if has_files("dashboards", &["json"]) {
        args.push(root.join("dashboards").display().to_string());
    }
    if has_files("alerts", &["yml", "yaml"]) {
        args.push("--alerts".into());
        args.push(root.join("alerts").display().to_string());
    }
    if args.len() == 2 {
        eprintln!("dashboards/ and alerts/ hold no dashboard or rule file yet: nothing to lint");
        return;
    }
    if args.len() == 4 && args[2] == "--alerts" {
        // lint needs one PATH: give the alerts directory itself.
        args.remove(2);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = promfed(&args, None).await;
    assert_eq!(r.code, 0, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// sidecar

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_applies_every_interval_and_exports_its_success() {
    common::init_tracing();
    let g = FakeGrafana::start().await;
    let dir = good_copy();
    let token = dir.path().join("token");
    std::fs::write(&token, EDITOR).unwrap();
    // Parsed as the config file has it; the 1s interval is below the 10s a config may ask for.
    let yaml = format!(
        "{{dir: \"{}\", grafana_url: \"{}\", token_file: \"{}\", interval: 1s, prune: true}}",
        dir.path().display(),
        g.url,
        token.display()
    );
    let section: promfed::sidecar::dashboards::DashboardsConfig = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(section.problems(), [("dashboards.interval".to_owned(), "must be at least 10s".to_owned())]);
    let sections = promfed::config::Sections { probes: None, dashboards: Some(section) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sidecar = promfed::run::sidecar::start_sections(sections, Some(listener)).await.unwrap();
    let metrics_url = format!("http://{}/metrics", sidecar.address);
    let client = reqwest::Client::new();
    let metric = |body: &str, name: &str| common::metric_value(body, name, &[]);

    let body = common::poll("first sync", Duration::from_secs(10), Duration::from_millis(100), || {
        let (client, url) = (client.clone(), metrics_url.clone());
        async move {
            let body = client.get(&url).send().await.ok()?.text().await.ok()?;
            (metric(&body, "promfed_dashboards_sync_success") == Some(1.0)).then_some(body)
        }
    })
    .await;
    assert!(metric(&body, "promfed_dashboards_sync_last_success_timestamp_seconds").unwrap() > 1.7e9);
    assert_eq!(g.uids().len(), 4);

    // A file removed from the directory is pruned on a later run.
    std::fs::remove_file(dir.path().join("home.json")).unwrap();
    common::poll("prune", Duration::from_secs(10), Duration::from_millis(100), || async {
        g.dashboard("pf-test-home").is_none().then_some(())
    })
    .await;

    // A revoked token: the next run fails and says so in the metric.
    std::fs::write(&token, "revoked").unwrap();
    common::poll("failed sync", Duration::from_secs(10), Duration::from_millis(100), || {
        let (client, url) = (client.clone(), metrics_url.clone());
        async move {
            let body = client.get(&url).send().await.ok()?.text().await.ok()?;
            (metric(&body, "promfed_dashboards_sync_success") == Some(0.0)).then_some(())
        }
    })
    .await;
    sidecar.shutdown();
    sidecar.wait().await.expect("clean stop");
}
