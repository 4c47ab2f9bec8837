//! Prometheus relabeling (`relabel_configs`) of discovered targets, with Prometheus' semantics:
//! every action (`replace`, `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`,
//! `labeldrop`, `labelkeep`, `lowercase`, `uppercase`), fully anchored regexes, `$1` / `${name}`
//! expansion (Go's `Regexp.Expand` rules, which Rust's `Captures::expand` shares), `separator` and
//! `modulus`. Reference: <https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config>
//! and Prometheus' `model/relabel/relabel.go`.

use crate::series::is_label_name;
use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A target's labels.
pub type Labels = BTreeMap<String, String>;

/// One relabel rule as written in the config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`; compared by
    /// `keepequal`/`dropequal`. May use `$1` in `replace`.
    #[serde(default)]
    pub target_label: Option<String>,
    /// Anchored at both ends, as in Prometheus.
    #[serde(default = "default_regex")]
    pub regex: String,
    /// For `hashmod`.
    #[serde(default)]
    pub modulus: Option<u64>,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

fn default_separator() -> String {
    ";".into()
}
fn default_regex() -> String {
    "(.*)".into()
}
fn default_replacement() -> String {
    "$1".into()
}

/// The relabel actions.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

/// A checked rule, regex compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    config: RelabelConfig,
    regex: Regex,
}

impl Rule {
    /// Checks a rule; the error says what is wrong (the caller adds the field path).
    pub fn new(config: RelabelConfig) -> Result<Rule, String> {
        let regex = Regex::new(&format!("^(?:{})$", config.regex))
            .map_err(|e| format!("invalid regex {:?}: {e}", config.regex))?;
        let needs_target = matches!(
            config.action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        match &config.target_label {
            None if needs_target => return Err(format!("action {:?} needs target_label", config.action)),
            Some(t) if config.action != Action::Replace && !is_label_name(t.as_bytes()) => {
                return Err(format!("{t:?} is not a valid target_label"));
            }
            _ => {}
        }
        if config.action == Action::HashMod && config.modulus.is_none_or(|m| m == 0) {
            return Err("action hashmod needs a modulus greater than 0".into());
        }
        if matches!(config.action, Action::LabelDrop | Action::LabelKeep) && !config.source_labels.is_empty() {
            return Err(format!("action {:?} takes no source_labels", config.action));
        }
        Ok(Rule { config, regex })
    }
}

/// Applies rules in order; `None` when a rule drops the target.
pub fn relabel(labels: &Labels, rules: &[Rule]) -> Option<Labels> {
    let mut ls = labels.clone();
    for rule in rules {
        if !apply(&mut ls, rule) {
            return None;
        }
    }
    Some(ls)
}

/// The last 8 bytes of the MD5 of `s`, big-endian: Prometheus' `sum64(md5.Sum(...))` (its loop
/// shifts the first 8 bytes out of a 64-bit word).
fn hash_md5(s: &str) -> u64 {
    let digest = Md5::digest(s.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(last)
}

/// Sets a label as Prometheus' `labels.Builder.Set` does: an empty value deletes it (an empty
/// label is an absent one).
fn set(ls: &mut Labels, name: String, value: String) {
    if value.is_empty() {
        ls.remove(&name);
    } else {
        ls.insert(name, value);
    }
}

/// Go's `strings.ToLower`: each character by its simple (one-to-one) Unicode mapping, without
/// context. Rust's `str::to_lowercase` differs on a final `Σ` (`ς`, Go: `σ`) and on `İ`
/// (`i̇`, Go: `i`); `char::to_lowercase` is one character for all but `İ`, whose simple
/// mapping is the first of its two.
fn go_to_lower(s: &str) -> String {
    s.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect()
}

/// Go's `strings.ToUpper`: each character by its simple Unicode mapping. Where the full mapping
/// (Rust's) is several characters (`ß` → `SS`, `ﬁ` → `FI`, ...) the simple mapping is none, so
/// the character stays, except for the Greek small letters with ypogegrammeni, which map to
/// their titlecase form (`ᾀ` → `ᾈ`, `ᾳ` → `ᾼ`).
fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => match c {
                    '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => {
                        char::from_u32(c as u32 + 8).unwrap_or(c)
                    }
                    '\u{1FB3}' | '\u{1FC3}' | '\u{1FF3}' => char::from_u32(c as u32 + 9).unwrap_or(c),
                    _ => c,
                },
            }
        })
        .collect()
}

fn apply(ls: &mut Labels, rule: &Rule) -> bool {
    let c = &rule.config;
    let value = c.source_labels.iter().map(|l| ls.get(l).map(String::as_str).unwrap_or("")).collect::<Vec<_>>();
    let value = value.join(&c.separator);
    let target = c.target_label.as_deref().unwrap_or("");
    match c.action {
        Action::Keep => rule.regex.is_match(&value),
        Action::Drop => !rule.regex.is_match(&value),
        Action::KeepEqual => ls.get(target).map(String::as_str).unwrap_or("") == value,
        Action::DropEqual => ls.get(target).map(String::as_str).unwrap_or("") != value,
        Action::Replace => {
            let Some(caps) = rule.regex.captures(&value) else {
                return true;
            };
            let mut name = String::new();
            caps.expand(target, &mut name);
            if !is_label_name(name.as_bytes()) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&c.replacement, &mut res);
            set(ls, name, res);
            true
        }
        Action::Lowercase => {
            set(ls, target.to_owned(), go_to_lower(&value));
            true
        }
        Action::Uppercase => {
            set(ls, target.to_owned(), go_to_upper(&value));
            true
        }
        Action::HashMod => {
            let m = hash_md5(&value) % c.modulus.unwrap_or(1);
            ls.insert(target.to_owned(), m.to_string());
            true
        }
        Action::LabelMap => {
            let mapped: Vec<(String, String)> = ls
                .iter()
                .filter(|(k, _)| rule.regex.is_match(k))
                .map(|(k, v)| (rule.regex.replace(k, c.replacement.as_str()).into_owned(), v.clone()))
                .collect();
            for (k, v) in mapped {
                set(ls, k, v);
            }
            true
        }
        Action::LabelDrop => {
            ls.retain(|k, _| !rule.regex.is_match(k));
            true
        }
        Action::LabelKeep => {
            ls.retain(|k, _| rule.regex.is_match(k));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        Rule::new(serde_saphyr::from_str(yaml).unwrap()).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn run(pairs: &[(&str, &str)], rules: &[&str]) -> Option<Labels> {
        let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
        relabel(&labels(pairs), &rules)
    }

    #[test]
    fn replace_with_captures_defaults_and_named_groups() {
        // Rewriting the address to loopback from a tag: what the EC2 tests do.
        let out = run(
            &[("__address__", "10.0.1.5:9090"), ("__meta_ec2_tag_test_port", "19090")],
            &["{source_labels: [__meta_ec2_tag_test_port], target_label: __address__, replacement: '127.0.0.1:$1'}"],
        )
        .unwrap();
        assert_eq!(out["__address__"], "127.0.0.1:19090");
        // Separator, a regex that does not match (no change), ${name}, $1 in target_label.
        let out = run(
            &[("a", "x"), ("b", "y")],
            &[
                "{source_labels: [a, b], separator: '-', target_label: ab}",
                "{source_labels: [a], regex: 'nomatch', target_label: a, replacement: changed}",
                "{source_labels: [b], regex: '(?P<v>y)', target_label: named, replacement: '${v}!'}",
                "{source_labels: [a], regex: '(.*)', target_label: 'dyn_$1', replacement: v}",
            ],
        )
        .unwrap();
        assert_eq!(out["ab"], "x-y");
        assert_eq!(out["a"], "x");
        assert_eq!(out["named"], "y!");
        assert_eq!(out["dyn_x"], "v");
        // An empty replacement removes the label; anchoring: 'x' does not match 'xx'.
        let out = run(&[("a", "xx")], &["{source_labels: [a], regex: 'x', target_label: a, replacement: ''}"]).unwrap();
        assert_eq!(out["a"], "xx");
        let out =
            run(&[("a", "xx")], &["{source_labels: [a], regex: 'x+', target_label: a, replacement: ''}"]).unwrap();
        assert!(!out.contains_key("a"));
        // Go's $1x means group "1x" (empty), as Prometheus documents: use ${1}x.
        let out = run(&[("a", "v")], &["{source_labels: [a], target_label: b, replacement: '${1}x'}"]).unwrap();
        assert_eq!(out["b"], "vx");
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let t = &[("job", "node"), ("env", "prod"), ("same", "prod")];
        assert!(run(t, &["{source_labels: [job], regex: 'node|api', action: keep}"]).is_some());
        assert!(run(t, &["{source_labels: [job], regex: 'api', action: keep}"]).is_none());
        assert!(run(t, &["{source_labels: [env], regex: 'prod', action: drop}"]).is_none());
        assert!(run(t, &["{source_labels: [env], regex: 'pro', action: drop}"]).is_some(), "anchored");
        assert!(run(t, &["{source_labels: [env], target_label: same, action: keepequal}"]).is_some());
        assert!(run(t, &["{source_labels: [job], target_label: same, action: keepequal}"]).is_none());
        assert!(run(t, &["{source_labels: [env], target_label: same, action: dropequal}"]).is_none());
        // A missing source label is the empty string.
        assert!(run(t, &["{source_labels: [missing], regex: '', action: keep}"]).is_some());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus' algorithm: the last 8 bytes of MD5, big-endian, modulo m.
        let out = run(
            &[("__address__", "foo")],
            &["{source_labels: [__address__], target_label: shard, modulus: 8, action: hashmod}"],
        )
        .unwrap();
        let expected = {
            let d = Md5::digest(b"foo");
            u64::from_be_bytes(d[8..16].try_into().unwrap()) % 8
        };
        assert_eq!(out["shard"], expected.to_string());
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8 (checked with Python's hashlib).
        assert_eq!(hash_md5("foo"), 0xedef_654f_ccc4_a4d8);
        assert_eq!(out["shard"], (0xedef_654f_ccc4_a4d8u64 % 8).to_string());
    }

    #[test]
    fn label_map_drop_keep_and_case() {
        let t = &[("__meta_ec2_tag_Name", "prom-1"), ("__meta_ec2_tag_team", "sre"), ("keepme", "1")];
        let out = run(t, &["{regex: '__meta_ec2_tag_(.+)', action: labelmap}"]).unwrap();
        assert_eq!(out["Name"], "prom-1");
        assert_eq!(out["team"], "sre");
        assert_eq!(out["__meta_ec2_tag_team"], "sre", "labelmap copies, the source stays");
        let out = run(t, &["{regex: '__meta_.*', action: labeldrop}"]).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), vec!["keepme"]);
        let out = run(t, &["{regex: '__meta_ec2_tag_.*', action: labelkeep}"]).unwrap();
        assert_eq!(out.len(), 2);
        let out = run(
            t,
            &[
                "{source_labels: [__meta_ec2_tag_Name], target_label: lower, action: lowercase}",
                "{source_labels: [__meta_ec2_tag_team], target_label: upper, action: uppercase}",
            ],
        )
        .unwrap();
        assert_eq!((out["lower"].as_str(), out["upper"].as_str()), ("prom-1", "SRE"));
    }

    #[test]
    fn case_actions_match_go_and_an_empty_result_deletes() {
        // Found by tests/relabel_vs_prometheus.rs against Prometheus 2.42: Go's strings.ToLower
        // and ToUpper use simple one-to-one mappings; an empty value deletes the label.
        let t = &[("a", "ΟΔΟΣ İzmir"), ("b", "Straße ﬁ ᾳᾀᾈ ǅ"), ("old", "x")];
        let out = run(
            t,
            &[
                "{source_labels: [a], target_label: lower, action: lowercase}",
                "{source_labels: [b], target_label: upper, action: uppercase}",
                "{source_labels: [missing], target_label: old, action: uppercase}",
                "{source_labels: [missing], target_label: new, action: lowercase}",
            ],
        )
        .unwrap();
        assert_eq!(out["lower"], "οδοσ izmir");
        assert_eq!(out["upper"], "STRAßE ﬁ ᾼᾈᾈ Ǆ");
        assert!(!out.contains_key("old") && !out.contains_key("new"), "{out:?}");
        // labelmap of an empty value does not create an empty label either.
        let out = run(&[("__meta_x_e", ""), ("__meta_x_f", "1")], &["{regex: '__meta_x_(.+)', action: labelmap}"]);
        assert_eq!(out.unwrap().get("e"), None);
    }

    #[test]
    fn invalid_rules_are_explained() {
        let bad = |yaml: &str| Rule::new(serde_saphyr::from_str(yaml).unwrap()).unwrap_err();
        assert!(bad("{action: hashmod, target_label: x}").contains("modulus"));
        assert!(bad("{action: lowercase}").contains("needs target_label"));
        assert!(bad("{regex: '('}").contains("invalid regex"));
        assert!(bad("{action: labeldrop, source_labels: [a], regex: x}").contains("no source_labels"));
        assert!(serde_saphyr::from_str::<RelabelConfig>("{action: explode}").is_err());
    }
}
