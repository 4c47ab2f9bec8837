//! A client of Grafana's HTTP API, the parts dashboards-as-code needs
//! (<https://grafana.com/docs/grafana/latest/developers/http_api/>): `GET /api/health`,
//! `GET /api/search?type=dash-db&tag=…`, `GET|DELETE /api/dashboards/uid/:uid`,
//! `POST /api/dashboards/db`, `GET|POST /api/folders`. A service-account token is sent as
//! `Authorization: Bearer …`. Every failure becomes one line that says what to do (a 401 names
//! the token, a 403 the role, a 412 which conflict it is).

use crate::client::{ClientError, client_tls};
use crate::config::file::TlsConfig;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How to reach Grafana.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: String,
    /// The service-account token; `None`: anonymous (Grafana will most likely answer 401).
    pub token: Option<String>,
    pub tls: TlsConfig,
    pub timeout: Duration,
}

/// Why a Grafana request did not give an answer to work with.
#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    #[error("invalid Grafana URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot reach Grafana at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Grafana did not answer {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{method} {url}: {status}{}{hint}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status { method: Method, url: String, status: StatusCode, message: Option<String>, hint: &'static str },
    /// 412 `version-mismatch`: the dashboard changed in Grafana since its version was read.
    #[error("dashboard {uid:?} changed in Grafana since it was read (412 version-mismatch: {message})")]
    VersionMismatch { uid: String, message: String },
    /// 412 `name-exists`: another dashboard of the folder has this title.
    #[error(
        "dashboard {uid:?}: another dashboard titled {title:?} already exists in that folder (412 name-exists: {message}); \
         rename one of them, or delete the other one in Grafana"
    )]
    NameExists { uid: String, title: String, message: String },
    #[error("{url}: unexpected answer: {reason}")]
    Body { url: String, reason: String },
}

/// A dashboard as `GET /api/dashboards/uid/:uid` returns it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub dashboard: Value,
    pub version: u64,
    /// Empty: the root folder.
    pub folder_uid: String,
    pub folder_title: String,
    pub updated_by: Option<String>,
    pub updated: Option<String>,
    pub provisioned: bool,
}

/// One hit of `GET /api/search`.
#[derive(Clone, Debug, Deserialize)]
pub struct Hit {
    pub uid: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, rename = "folderUid")]
    pub folder_uid: String,
    #[serde(default, rename = "folderTitle")]
    pub folder_title: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A folder of `GET /api/folders`.
#[derive(Clone, Debug, Deserialize)]
pub struct FolderInfo {
    pub uid: String,
    #[serde(default)]
    pub title: String,
}

/// The 200 answer of `POST /api/dashboards/db`.
#[derive(Clone, Debug, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub id: u64,
    pub uid: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub status: String,
    pub version: u64,
    #[serde(default)]
    pub slug: String,
}

/// What `POST /api/folders` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderCreated {
    Created,
    /// 409: a folder with this uid (or, in some Grafana versions, this title) exists already.
    Exists,
}

/// A Grafana.
#[derive(Debug)]
pub struct Grafana {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

/// Page size of searches and folder lists (Grafana's maximum for search is 5000).
const PAGE: usize = 1000;

impl Grafana {
    /// Builds the client (reads the CA and certificate files now).
    pub fn new(settings: &Settings) -> Result<Grafana, GrafanaError> {
        let bad = |reason: &str| GrafanaError::Url { url: settings.url.clone(), reason: reason.to_owned() };
        let base = Url::parse(&settings.url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad("not an http:// or https:// URL"));
        }
        crate::trust::install_crypto_provider();
        let owner = "grafana client";
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(client_tls(owner, &settings.tls)?)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("promfed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build { owner: owner.to_owned(), source })?;
        let auth = match &settings.token {
            Some(token) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| ClientError::Header { owner: owner.to_owned() })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Grafana { http, base, auth, timeout: settings.timeout })
    }

    /// The base URL, as given.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request; the status and the body (any status), or why there is none.
    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<(StatusCode, Value), GrafanaError> {
        let shown = url.to_string();
        let mut request = self.http.request(method.clone(), url).header(ACCEPT, "application/json");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(|e| self.failure(&shown, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.failure(&shown, &e))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().chars().take(300).collect()))
        };
        Ok((status, value))
    }

    /// Like [`Self::send`], with a non-2xx status made an error.
    async fn ok(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value, GrafanaError> {
        let shown = url.to_string();
        let (status, value) = self.send(method.clone(), url, body).await?;
        if status.is_success() { Ok(value) } else { Err(self.status_error(method, shown, status, &value)) }
    }

    fn status_error(&self, method: Method, url: String, status: StatusCode, body: &Value) -> GrafanaError {
        let message = match body {
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.auth.is_none() => {
                " (Grafana wants a service-account token: --token-file FILE or the GRAFANA_TOKEN environment variable)"
            }
            StatusCode::UNAUTHORIZED => " (Grafana refused the token: expired, revoked, or of another Grafana?)",
            StatusCode::FORBIDDEN => {
                " (the token's service account may not do this: give it the Editor role, or Admin for folders)"
            }
            _ => "",
        };
        GrafanaError::Status { method, url, status, message, hint }
    }

    /// `GET /api/health`: Grafana's version.
    pub async fn health(&self) -> Result<String, GrafanaError> {
        let v = self.ok(Method::GET, self.url(&["api", "health"], &[]), None).await?;
        Ok(v.get("version").and_then(Value::as_str).unwrap_or("unknown version").to_owned())
    }

    /// Every dashboard carrying `tag` (`GET /api/search?type=dash-db&tag=…`, all pages).
    pub async fn search_tagged(&self, tag: &str) -> Result<Vec<Hit>, GrafanaError> {
        let mut out = Vec::new();
        for page in 1.. {
            let (limit, page) = (PAGE.to_string(), page.to_string());
            let url =
                self.url(&["api", "search"], &[("type", "dash-db"), ("tag", tag), ("limit", &limit), ("page", &page)]);
            let shown = url.to_string();
            let v = self.ok(Method::GET, url, None).await?;
            let hits: Vec<Hit> = serde_json::from_value(v)
                .map_err(|e| GrafanaError::Body { url: shown, reason: format!("not a list of search hits: {e}") })?;
            let n = hits.len();
            out.extend(hits);
            if n < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /api/dashboards/uid/:uid`; `None` on 404.
    pub async fn dashboard(&self, uid: &str) -> Result<Option<Stored>, GrafanaError> {
        let url = self.url(&["api", "dashboards", "uid", uid], &[]);
        let shown = url.to_string();
        let (status, v) = self.send(Method::GET, url, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(Method::GET, shown, status, &v));
        }
        let dashboard = v
            .get("dashboard")
            .filter(|d| d.is_object())
            .cloned()
            .ok_or_else(|| GrafanaError::Body { url: shown.clone(), reason: "no `dashboard` object".into() })?;
        let meta = v.get("meta").cloned().unwrap_or(json!({}));
        let text = |k: &str| meta.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let version =
            dashboard.get("version").and_then(Value::as_u64).or_else(|| meta.get("version").and_then(Value::as_u64));
        Ok(Some(Stored {
            version: version.unwrap_or(0),
            folder_uid: text("folderUid").unwrap_or_default(),
            folder_title: text("folderTitle").unwrap_or_default(),
            updated_by: text("updatedBy"),
            updated: text("updated"),
            provisioned: meta.get("provisioned").and_then(Value::as_bool).unwrap_or(false),
            dashboard,
        }))
    }

    /// `POST /api/dashboards/db` with `overwrite: false`: Grafana refuses (412) a stale
    /// `version` and a title another dashboard of the folder has. (`overwrite: true` would also
    /// replace *that other* dashboard, uid included: never sent.)
    pub async fn save(
        &self,
        dashboard: &Value,
        folder_uid: Option<&str>,
        message: &str,
    ) -> Result<Saved, GrafanaError> {
        let uid = dashboard.get("uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let title = dashboard.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut body = json!({"dashboard": dashboard, "message": message, "overwrite": false});
        if let Some(folder) = folder_uid {
            body["folderUid"] = Value::from(folder);
        }
        let url = self.url(&["api", "dashboards", "db"], &[]);
        let shown = url.to_string();
        let (status, v) = self.send(Method::POST, url, Some(&body)).await?;
        if status == StatusCode::PRECONDITION_FAILED {
            let message = v.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
            match v.get("status").and_then(Value::as_str) {
                Some("version-mismatch") => return Err(GrafanaError::VersionMismatch { uid, message }),
                Some("name-exists") => return Err(GrafanaError::NameExists { uid, title, message }),
                _ => {}
            }
        }
        if !status.is_success() {
            return Err(self.status_error(Method::POST, shown, status, &v));
        }
        serde_json::from_value(v)
            .map_err(|e| GrafanaError::Body { url: shown, reason: format!("not the documented save answer: {e}") })
    }

    /// `DELETE /api/dashboards/uid/:uid`; `false` when it was gone already (404).
    pub async fn delete(&self, uid: &str) -> Result<bool, GrafanaError> {
        let url = self.url(&["api", "dashboards", "uid", uid], &[]);
        let shown = url.to_string();
        let (status, v) = self.send(Method::DELETE, url, None).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.status_error(Method::DELETE, shown, s, &v)),
        }
    }

    /// `GET /api/folders`, all pages.
    pub async fn folders(&self) -> Result<Vec<FolderInfo>, GrafanaError> {
        let mut out = Vec::new();
        for page in 1.. {
            let (limit, page) = (PAGE.to_string(), page.to_string());
            let url = self.url(&["api", "folders"], &[("limit", &limit), ("page", &page)]);
            let shown = url.to_string();
            let v = self.ok(Method::GET, url, None).await?;
            let folders: Vec<FolderInfo> = serde_json::from_value(v)
                .map_err(|e| GrafanaError::Body { url: shown, reason: format!("not a list of folders: {e}") })?;
            let n = folders.len();
            out.extend(folders);
            if n < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// `POST /api/folders` `{uid, title}`.
    pub async fn create_folder(&self, uid: &str, title: &str) -> Result<FolderCreated, GrafanaError> {
        let url = self.url(&["api", "folders"], &[]);
        let shown = url.to_string();
        let (status, v) = self.send(Method::POST, url, Some(&json!({"uid": uid, "title": title}))).await?;
        match status {
            s if s.is_success() => Ok(FolderCreated::Created),
            StatusCode::CONFLICT => Ok(FolderCreated::Exists),
            s => Err(self.status_error(Method::POST, shown, s, &v)),
        }
    }

    /// Names why a request failed, from the innermost cause that says something.
    fn failure(&self, url: &str, e: &reqwest::Error) -> GrafanaError {
        if e.is_timeout() {
            return GrafanaError::Timeout { url: url.to_owned(), timeout: self.timeout };
        }
        let mut parts: Vec<String> = Vec::new();
        let mut tls = false;
        let mut refused = false;
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = next {
            tls |= c.downcast_ref::<rustls::Error>().is_some();
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
                tls |= io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            }
            let text = c.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            next = c.source();
            if parts.len() > 16 {
                break;
            }
        }
        // The outermost is reqwest's "error sending request for url (…)": the URL is said already.
        let mut reason = parts.get(1..).filter(|p| !p.is_empty()).unwrap_or(&parts).join(": ");
        if refused {
            reason = "connection refused (is Grafana running there?)".to_owned();
        } else if tls {
            reason.push_str(" (give the CA of Grafana's certificate: --grafana-ca-file, or tls_config.ca_file in the dashboards: section)");
        }
        GrafanaError::Unreachable { url: url.to_owned(), reason }
    }
}
