//! Prometheus relabeling (`relabel_configs`) of discovered targets, with Prometheus' semantics:
//! every action (`replace`, `keep`, `drop`, `keepequal`, `dropequal`, `hashmod`, `labelmap`,
//! `labeldrop`, `labelkeep`, `lowercase`, `uppercase`), fully anchored regexes, `$1` / `${name}`
//! expansion (Go's `Regexp.Expand` rules, which Rust's `Captures::expand` shares), `separator` and
//! `modulus`. Reference: <https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config>
//! and Prometheus' `model/relabel/relabel.go`.

use crate::series::is_label_name;
use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A target's labels.
pub type Labels = BTreeMap<String, String>;

/// One relabel rule as written in the config.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
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
    /// Anchored at both ends, as in Prometheus; `(.*)` when not given.
    #[serde(default)]
    pub regex: Option<String>,
    /// For `hashmod`.
    #[serde(default)]
    pub modulus: Option<u64>,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

fn default_separator() -> String {
    DEFAULT_SEPARATOR.into()
}
fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.into()
}

/// The relabel actions; in the config in any case (`Replace`, `HASHMOD`), as Prometheus takes
/// them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
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

impl Action {
    /// The action's name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    /// Any case, as Prometheus' `Action.UnmarshalYAML` (which lowercases first).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.to_lowercase();
        [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ]
        .into_iter()
        .find(|a| a.as_str() == lower)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

/// Prometheus' `relabelTarget`: a label name in which `$1`, `$name` and `${name}` may stand for
/// parts (Go's `\w` is ASCII), the form `replace`'s target_label and `labelmap`'s replacement
/// must have.
static RELABEL_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$").expect("valid regex")
});

impl RelabelConfig {
    /// Problems with this rule, as Prometheus 2.42's `relabel.Config.Validate` finds them
    /// (field name, message naming the value): what each action requires, and the fields it
    /// does not take. One check is stricter: `hashmod`, `lowercase`, `uppercase`, `keepequal`
    /// and `dropequal` want a plain label name as target_label (Prometheus 2.42 also takes a
    /// `$1` template there, then writes a label literally named `$1`).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let a = self.action;
        let name = a.as_str();
        if let Some(r) = &self.regex
            && let Err(e) = Regex::new(&format!("^(?:{r})$"))
        {
            p.push(("regex", format!("{r:?} is not a valid regex: {e}")));
        }
        let target = self.target_label.as_deref().unwrap_or("");
        let writes = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if writes && target.is_empty() {
            p.push(("target_label", format!("action {name} needs a target_label")));
        } else if a == Action::Replace && !RELABEL_TARGET.is_match(target) {
            p.push((
                "target_label",
                format!("{target:?} is not a label name (with $1 or ${{name}} parts) for action {name}"),
            ));
        } else if writes && a != Action::Replace && !is_label_name(target.as_bytes()) {
            p.push(("target_label", format!("{target:?} is not a valid label name for action {name}")));
        }
        if a == Action::HashMod && self.modulus.is_none_or(|m| m == 0) {
            p.push(("modulus", "action hashmod needs a modulus greater than 0".to_owned()));
        }
        if a == Action::LabelMap && !RELABEL_TARGET.is_match(&self.replacement) {
            p.push((
                "replacement",
                format!("{:?} is not a label name (with $1 or ${{name}} parts) for action {name}", self.replacement),
            ));
        }
        if matches!(a, Action::Lowercase | Action::Uppercase) && self.replacement != DEFAULT_REPLACEMENT {
            p.push(("replacement", format!("{:?} cannot be set for action {name}", self.replacement)));
        }
        let only = match a {
            Action::KeepEqual | Action::DropEqual => "source_labels and target_label",
            Action::LabelDrop | Action::LabelKeep => "regex",
            _ => return p,
        };
        let mut refuse = |field: &'static str, value: String| {
            p.push((field, format!("{value} cannot be set for action {name}, which takes only {only}")));
        };
        if matches!(a, Action::LabelDrop | Action::LabelKeep) {
            if !self.source_labels.is_empty() {
                refuse("source_labels", format!("{:?}", self.source_labels));
            }
            if !target.is_empty() {
                refuse("target_label", format!("{target:?}"));
            }
        } else if let Some(r) = &self.regex {
            // Prometheus 2.42 refuses any regex given here, even the default one.
            refuse("regex", format!("{r:?}"));
        }
        if let Some(m) = self.modulus.filter(|m| *m != 0) {
            refuse("modulus", m.to_string());
        }
        if self.separator != DEFAULT_SEPARATOR {
            refuse("separator", format!("{:?}", self.separator));
        }
        if self.replacement != DEFAULT_REPLACEMENT {
            refuse("replacement", format!("{:?}", self.replacement));
        }
        p
    }
}

/// A checked rule, regex compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    config: RelabelConfig,
    regex: Regex,
}

impl Rule {
    /// Checks a rule; the error lists every problem as `field: message`, `; `-separated
    /// (config validation reports [`RelabelConfig::problems`] one by one instead).
    pub fn new(config: RelabelConfig) -> Result<Rule, String> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(problems.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "));
        }
        let pattern = config.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("regex: {pattern:?}: {e}"))?;
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
        assert!(bad("{action: lowercase}").contains("needs a target_label"));
        assert!(bad("{regex: '(', target_label: x}").contains("not a valid regex"));
        assert!(bad("{action: labeldrop, source_labels: [a], regex: x}").starts_with("source_labels: [\"a\"] cannot"));
        assert!(serde_saphyr::from_str::<RelabelConfig>("{action: explode}").is_err());
    }

    /// What Prometheus 2.42 refuses (`promtool check config`, each case tried), with the field
    /// our message names; `None` where both accept. tests/relabel_vs_prometheus.rs runs the
    /// same kind of table through promtool itself.
    #[test]
    fn checks_follow_prometheus_2_42() {
        let cases: &[(&str, Option<&str>)] = &[
            ("{action: Replace, source_labels: [a], target_label: b}", None),
            ("{action: HASHMOD, source_labels: [a], target_label: b, modulus: 2}", None),
            ("{action: replace, source_labels: [a]}", Some("target_label")),
            ("{action: replace, source_labels: [a], target_label: ''}", Some("target_label")),
            ("{action: replace, source_labels: [a], target_label: 1abc}", Some("target_label")),
            ("{action: replace, source_labels: [a], target_label: a-b}", Some("target_label")),
            ("{action: replace, source_labels: [a], target_label: '$1'}", None),
            ("{action: replace, source_labels: [a], target_label: '${1}'}", None),
            ("{action: replace, source_labels: [a], target_label: 'x_${name}_y'}", None),
            ("{action: replace, source_labels: [a], target_label: '$'}", Some("target_label")),
            ("{action: replace, source_labels: [a], target_label: '${1}-x'}", Some("target_label")),
            ("{action: labelmap, regex: '(.*)', replacement: a-b}", Some("replacement")),
            ("{action: labelmap, regex: '(.*)', replacement: ''}", Some("replacement")),
            ("{action: labelmap, regex: '(.*)', replacement: 1x}", Some("replacement")),
            ("{action: labelmap, regex: '(.*)', replacement: 'x_${1}'}", None),
            ("{action: labeldrop, regex: x, target_label: a}", Some("target_label")),
            ("{action: labeldrop, regex: x, modulus: 3}", Some("modulus")),
            ("{action: labeldrop, regex: x, separator: ','}", Some("separator")),
            ("{action: labeldrop, regex: x, separator: ';'}", None),
            ("{action: labelkeep, regex: x, replacement: y}", Some("replacement")),
            ("{action: labelkeep, regex: x, replacement: '$1'}", None),
            ("{action: keepequal, source_labels: [a], target_label: b, regex: x}", Some("regex")),
            ("{action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}", Some("regex")),
            ("{action: keepequal, source_labels: [a], target_label: b, modulus: 2}", Some("modulus")),
            ("{action: dropequal, source_labels: [a], target_label: b, separator: ','}", Some("separator")),
            ("{action: dropequal, source_labels: [a], target_label: b, replacement: x}", Some("replacement")),
            ("{action: dropequal, source_labels: [a], target_label: b}", None),
            ("{action: dropequal, source_labels: [a], target_label: a-b}", Some("target_label")),
            ("{action: lowercase, source_labels: [a], target_label: a-b}", Some("target_label")),
            ("{action: lowercase, source_labels: [a], target_label: b, replacement: x}", Some("replacement")),
            ("{action: uppercase, source_labels: [a], target_label: b, regex: x}", None),
            ("{action: hashmod, source_labels: [a], target_label: '$1', modulus: 2}", Some("target_label")),
            ("{action: keep, source_labels: [a], target_label: a-b}", None),
            ("{action: drop, source_labels: [a], regex: x, replacement: zz, modulus: 4}", None),
            ("{action: keep}", None),
        ];
        for (yaml, want) in cases {
            let config: RelabelConfig = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            let fields: Vec<&str> = config.problems().iter().map(|(f, _)| *f).collect();
            match want {
                None => assert!(fields.is_empty(), "{yaml}: refused ({:?}), Prometheus takes it", config.problems()),
                Some(field) => assert_eq!(fields, [*field], "{yaml}: {:?}", config.problems()),
            }
        }
        // Messages name the value; every problem of a rule is reported.
        let c: RelabelConfig =
            serde_saphyr::from_str("{action: labeldrop, regex: x, separator: ',', replacement: y}").unwrap();
        let messages: Vec<String> = c.problems().into_iter().map(|(f, m)| format!("{f}: {m}")).collect();
        assert_eq!(
            messages,
            [
                "separator: \",\" cannot be set for action labeldrop, which takes only regex",
                "replacement: \"y\" cannot be set for action labeldrop, which takes only regex",
            ]
        );
        // Unknown actions, in any case, are named as Prometheus names them.
        for yaml in ["{action: bogus}", "{action: ''}"] {
            let e = serde_saphyr::from_str::<RelabelConfig>(yaml).unwrap_err().to_string();
            assert!(e.contains("unknown relabel action"), "{yaml}: {e}");
        }
        assert_eq!(serde_saphyr::from_str::<RelabelConfig>("{action: LabelMap}").unwrap().action, Action::LabelMap);
    }
}
