//! Where a group's replicas are found, as written: Prometheus' `ec2_sd_configs` and
//! `file_sd_configs` entries ([`crate::discovery`] runs them).

use super::units::PromDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One `ec2_sd_configs` entry (Prometheus' fields).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ec2SdConfig {
    /// The AWS region. When empty: `AWS_REGION` / `AWS_DEFAULT_REGION`, else the `region` of the
    /// profile (`profile`, else `AWS_PROFILE`, else `default`), else EC2 instance metadata —
    /// found when discovery starts (Prometheus asks instance metadata only).
    #[serde(default)]
    pub region: Option<String>,
    /// A custom endpoint (e.g. a VPC endpoint, or an EC2 emulator in tests).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Static credentials; both or neither.
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    /// A named profile of the AWS config files.
    #[serde(default)]
    pub profile: Option<String>,
    /// A role to assume for the calls.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// How often instances are listed.
    #[serde(default = "default_refresh")]
    pub refresh_interval: PromDuration,
    /// The port of `__address__`.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `DescribeInstances` filters, e.g. `{name: "tag:federation-group", values: [eu-west-1]}`.
    #[serde(default)]
    pub filters: Vec<Ec2Filter>,
    /// Instances per `DescribeInstances` page (5 to 1000; not a Prometheus field).
    #[serde(default = "default_page_size")]
    pub page_size: i32,
}

/// A `DescribeInstances` filter.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ec2Filter {
    pub name: String,
    pub values: Vec<String>,
}

fn default_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
fn default_port() -> u16 {
    80
}
fn default_page_size() -> i32 {
    1000
}

impl Ec2SdConfig {
    /// Problems with this entry (field name, message). A missing region is not one: it may come
    /// from the profile or instance metadata, known only when discovery starts.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.access_key.is_some() != self.secret_key.is_some() {
            p.push(("access_key", "access_key and secret_key go together".to_owned()));
        }
        if self.refresh_interval.0.is_zero() {
            p.push(("refresh_interval", "must be more than 0".to_owned()));
        }
        if self.port == 0 {
            p.push(("port", "must be more than 0".to_owned()));
        }
        if !(5..=1000).contains(&self.page_size) {
            p.push(("page_size", format!("{} is not between 5 and 1000", self.page_size)));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            p.push(("endpoint", format!("{e:?} is not an http(s) URL")));
        }
        if !cfg!(feature = "ec2") {
            p.push(("", "this promfed was built without the `ec2` feature".to_owned()));
        }
        p
    }
}

/// One `file_sd_configs` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Glob patterns of target files (`*.json`, `*.yml`, `*.yaml`).
    pub files: Vec<String>,
    /// Re-read every file this often even without a change.
    #[serde(default = "default_file_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_file_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}
