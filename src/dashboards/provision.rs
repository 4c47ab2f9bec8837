//! `promfed dashboards provision OUT`: Grafana's file provisioning
//! (<https://grafana.com/docs/grafana/latest/administration/provisioning/>) for the dashboards
//! directory and for a Prometheus datasource pointing at promfed, for a Grafana that should
//! read the repo's files itself instead of being written to by `apply`.
//!
//! Two files under `OUT` (Grafana's provisioning directory, e.g. `/etc/grafana/provisioning`):
//! `dashboards/promfed.yaml`, a file provider with `foldersFromFilesStructure` (one Grafana
//! folder per directory, as `apply` makes them), and `datasources/promfed.yaml`, the datasource
//! with `httpMethod: POST`, `timeInterval` (the scrape interval: the shortest step that has a
//! sample) and, with a CA, `tlsAuthWithCACert` and the CA's PEM in `secureJsonData.tlsCACert`.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// What goes into the two files.
#[derive(Clone, Debug)]
pub struct Provision {
    /// Where Grafana reads the dashboards directory from (on Grafana's machine).
    pub dashboards_path: PathBuf,
    /// The datasource's URL.
    pub url: String,
    /// The CA (PEM) that signed the datasource's certificate, read now and embedded.
    pub ca_file: Option<PathBuf>,
    /// Prometheus duration, e.g. `15s`.
    pub scrape_interval: String,
    /// Name and uid of the datasource and name of the dashboards provider.
    pub name: String,
    /// Make it Grafana's default datasource.
    pub default: bool,
}

/// Why the files were not written.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read --ca-file {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--ca-file {} holds no PEM certificate", path.display())]
    NotPem { path: PathBuf },
    #[error("--scrape-interval {0:?} is not a Prometheus duration such as 15s")]
    Interval(String),
    #[error("--url {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode YAML: {0}")]
    Yaml(String),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardsFile {
    api_version: u32,
    providers: Vec<Provider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    name: String,
    org_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    update_interval_seconds: u32,
    options: ProviderOptions,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderOptions {
    path: String,
    folders_from_files_structure: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasourcesFile {
    api_version: u32,
    datasources: Vec<Datasource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Datasource {
    name: String,
    uid: String,
    #[serde(rename = "type")]
    kind: &'static str,
    access: &'static str,
    url: String,
    is_default: bool,
    editable: bool,
    json_data: JsonData,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_json_data: Option<SecureJsonData>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonData {
    http_method: &'static str,
    time_interval: String,
    #[serde(rename = "tlsAuthWithCACert", skip_serializing_if = "std::ops::Not::not")]
    tls_auth_with_ca_cert: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecureJsonData {
    #[serde(rename = "tlsCACert")]
    tls_ca_cert: serde_saphyr::LitString,
}

const HEADER: &str = "# Written by `promfed dashboards provision`: Grafana file provisioning for promfed.\n";

impl Provision {
    /// The two files' paths (under `out`) and texts.
    pub fn render(&self, out: &Path) -> Result<Vec<(PathBuf, String)>, ProvisionError> {
        if !super::variables::is_duration(&self.scrape_interval) {
            return Err(ProvisionError::Interval(self.scrape_interval.clone()));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ProvisionError::Url(self.url.clone()));
        }
        let ca = match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|source| ProvisionError::ReadCa { path: path.clone(), source })?;
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                if CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).next().is_none() {
                    return Err(ProvisionError::NotPem { path: path.clone() });
                }
                Some(pem)
            }
            None => None,
        };
        let dashboards = DashboardsFile {
            api_version: 1,
            providers: vec![Provider {
                name: self.name.clone(),
                org_id: 1,
                kind: "file",
                disable_deletion: false,
                allow_ui_updates: false,
                update_interval_seconds: 30,
                options: ProviderOptions {
                    path: self.dashboards_path.display().to_string(),
                    folders_from_files_structure: true,
                },
            }],
        };
        let datasource = Datasource {
            name: self.name.clone(),
            uid: self.name.clone(),
            kind: "prometheus",
            access: "proxy",
            url: self.url.clone(),
            is_default: self.default,
            editable: false,
            json_data: JsonData {
                http_method: "POST",
                time_interval: self.scrape_interval.clone(),
                tls_auth_with_ca_cert: ca.is_some(),
            },
            secure_json_data: ca.map(|pem| SecureJsonData { tls_ca_cert: serde_saphyr::LitString(pem) }),
        };
        let yaml = |v: &dyn erased::Yaml| v.yaml().map_err(|e| ProvisionError::Yaml(e.to_string()));
        Ok(vec![
            (out.join("dashboards").join(format!("{}.yaml", self.name)), format!("{HEADER}{}", yaml(&dashboards)?)),
            (
                out.join("datasources").join(format!("{}.yaml", self.name)),
                format!("{HEADER}{}", yaml(&DatasourcesFile { api_version: 1, datasources: vec![datasource] })?),
            ),
        ])
    }

    /// Writes the files (their directories created); returns their paths.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>, ProvisionError> {
        let mut written = Vec::new();
        for (path, text) in self.render(out)? {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|source| ProvisionError::Write { path: dir.to_owned(), source })?;
            }
            std::fs::write(&path, text).map_err(|source| ProvisionError::Write { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Serialising two different types through one closure.
mod erased {
    pub trait Yaml {
        fn yaml(&self) -> Result<String, serde_saphyr::SerializeError>;
    }
    impl<T: serde::Serialize> Yaml for T {
        fn yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
            serde_saphyr::to_string(self)
        }
    }
}
