//! From discovered targets (label sets) to a group's replicas: relabel, then read the address,
//! the replica name and the role from well-known labels.
//!
//! The convention (overridable with `relabel_configs`, which run first):
//! - address: `__address__`;
//! - role: the first non-empty of `__federation_role__`, `__meta_ec2_tag_federation_role` (the
//!   EC2 tag `federation-role`) and `federation_role`; it must be `primary` or `secondary` —
//!   a target without a valid role is reported, never guessed;
//! - name: the first non-empty of `__federation_replica__`, `__meta_ec2_instance_id` and
//!   `__address__`.

use crate::relabel::{Labels, Rule, relabel};
use serde::Serialize;

/// The role a replica plays in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    #[default]
    Secondary,
}

impl std::fmt::Display for Role {
    /// As configured and as logged: `primary`, `secondary`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        })
    }
}

/// A replica as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSpec {
    pub name: String,
    pub role: Role,
    pub address: String,
}

/// Labels read for the role, in order.
pub const ROLE_LABELS: [&str; 3] = ["__federation_role__", "__meta_ec2_tag_federation_role", "federation_role"];
/// Labels read for the group name of a `discover_groups` template, in order (the EC2 tag
/// `federation-group` is the second).
pub const GROUP_LABELS: [&str; 3] = ["__federation_group__", "__meta_ec2_tag_federation_group", "federation_group"];
/// Labels read for the replica name, in order.
pub const NAME_LABELS: [&str; 3] = ["__federation_replica__", "__meta_ec2_instance_id", "__address__"];

/// A discovered target that could not become a replica, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub address: String,
    pub reason: String,
}

fn first<'a>(labels: &'a Labels, names: &[&str]) -> Option<&'a str> {
    names.iter().filter_map(|n| labels.get(*n)).map(String::as_str).find(|v| !v.is_empty())
}

/// Relabels `targets` and turns the survivors into replicas.
pub fn replicas(targets: &[Labels], rules: &[Rule]) -> (Vec<ReplicaSpec>, Vec<Rejected>) {
    let relabeled: Vec<Labels> = targets.iter().filter_map(|t| relabel(t, rules)).collect();
    to_replicas(&relabeled)
}

/// Per group name: its replicas and the targets rejected in it.
pub type ByGroup = std::collections::BTreeMap<String, (Vec<ReplicaSpec>, Vec<Rejected>)>;

/// Relabels `targets` and splits them into groups by [`GROUP_LABELS`]: per group its replicas
/// and rejections, plus the targets that name no group.
pub fn replicas_by_group(targets: &[Labels], rules: &[Rule]) -> (ByGroup, Vec<Rejected>) {
    let mut groups: std::collections::BTreeMap<String, Vec<Labels>> = Default::default();
    let mut ungrouped = Vec::new();
    for l in targets.iter().filter_map(|t| relabel(t, rules)) {
        match first(&l, &GROUP_LABELS) {
            Some(g) => groups.entry(g.to_owned()).or_default().push(l),
            None => ungrouped.push(Rejected {
                address: l.get("__address__").cloned().unwrap_or_default(),
                reason: format!("no group label (one of {GROUP_LABELS:?})"),
            }),
        }
    }
    (groups.into_iter().map(|(g, ts)| (g, to_replicas(&ts))).collect(), ungrouped)
}

fn to_replicas(relabeled: &[Labels]) -> (Vec<ReplicaSpec>, Vec<Rejected>) {
    let mut out: Vec<ReplicaSpec> = Vec::new();
    let mut rejected = Vec::new();
    for l in relabeled {
        let address = l.get("__address__").cloned().unwrap_or_default();
        let l = l.clone();
        if address.is_empty() {
            rejected.push(Rejected { address, reason: "no __address__ after relabeling".into() });
            continue;
        }
        let role = match first(&l, &ROLE_LABELS) {
            Some("primary") => Role::Primary,
            Some("secondary") => Role::Secondary,
            Some(other) => {
                rejected.push(Rejected { address, reason: format!("role {other:?} is not primary or secondary") });
                continue;
            }
            None => {
                rejected.push(Rejected { address, reason: format!("no role label (one of {ROLE_LABELS:?})") });
                continue;
            }
        };
        let name = first(&l, &NAME_LABELS).unwrap_or(&address).to_owned();
        if out.iter().any(|r| r.name == name) {
            rejected.push(Rejected { address, reason: format!("replica name {name:?} found twice") });
            continue;
        }
        out.push(ReplicaSpec { name, role, address });
    }
    (out, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::RelabelConfig;

    fn t(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn roles_names_and_rejections() {
        let targets = vec![
            t(&[
                ("__address__", "10.0.1.5:9090"),
                ("__meta_ec2_tag_federation_role", "primary"),
                ("__meta_ec2_instance_id", "i-1"),
            ]),
            t(&[("__address__", "10.0.2.5:9090"), ("federation_role", "secondary")]),
            t(&[("__address__", "10.0.3.5:9090"), ("federation_role", "tertiary")]),
            t(&[("__address__", "10.0.4.5:9090")]),
        ];
        let (ok, bad) = replicas(&targets, &[]);
        assert_eq!(
            ok,
            vec![
                ReplicaSpec { name: "i-1".into(), role: Role::Primary, address: "10.0.1.5:9090".into() },
                ReplicaSpec { name: "10.0.2.5:9090".into(), role: Role::Secondary, address: "10.0.2.5:9090".into() },
            ]
        );
        assert_eq!(bad.len(), 2);
        assert!(bad[0].reason.contains("\"tertiary\" is not primary or secondary"));
        assert!(bad[1].reason.contains("no role label"));
    }

    #[test]
    fn relabeling_runs_first() {
        let rule = |y: &str| Rule::new(serde_saphyr::from_str::<RelabelConfig>(y).unwrap()).unwrap();
        let rules = vec![
            rule("{source_labels: [__meta_ec2_tag_test_port], target_label: __address__, replacement: '127.0.0.1:$1'}"),
            rule("{source_labels: [env], regex: staging, action: drop}"),
        ];
        let targets = vec![
            t(&[
                ("__address__", "10.0.1.5:9090"),
                ("__meta_ec2_tag_test_port", "19090"),
                ("federation_role", "primary"),
            ]),
            t(&[("__address__", "10.0.9.9:9090"), ("env", "staging"), ("federation_role", "primary")]),
        ];
        let (ok, bad) = replicas(&targets, &rules);
        assert!(bad.is_empty());
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].address, "127.0.0.1:19090");
    }
}
