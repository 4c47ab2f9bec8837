//! `match[]` selectors of `/federate`, parsed with promql-parser and matched against canonical
//! series keys.
//!
//! Prometheus' `/federate` accepts only plain vector selectors; promql-parser also accepts
//! `offset`, `@`, ranges, functions and `or` matchers, which are rejected here with a message.

use crate::key::KeyRef;
use crate::series::{labels_of, name_of, unescape_label_value};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr};

/// A `match[]` value that is not a plain vector selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid match[] selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

/// One parsed `match[]`: a conjunction of label matchers.
#[derive(Debug, Clone)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses one `match[]` value.
    pub fn parse(input: &str) -> Result<Selector, SelectorError> {
        let err = |reason: String| SelectorError { selector: input.to_owned(), reason };
        let expr = parser::parse(input).map_err(err)?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(err("only a vector selector such as {job=\"node\"} is allowed".into()));
        };
        if vs.offset.is_some() {
            return Err(err("offset is not allowed".into()));
        }
        if vs.at.is_some() {
            return Err(err("@ is not allowed".into()));
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err(err("\"or\" between matchers is not allowed".into()));
        }
        let mut matchers = vs.matchers.matchers;
        // `up{...}` gives the name separately; `{__name__="up"}` already is a matcher.
        if let Some(name) = vs.name
            && !matchers.iter().any(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal) && m.value == name)
        {
            matchers.push(Matcher::new(MatchOp::Equal, "__name__", &name));
        }
        if matchers.iter().all(|m| m.is_match("")) {
            return Err(err("vector selector must contain at least one non-empty matcher".into()));
        }
        Ok(Selector { matchers })
    }

    /// True when every series matches (e.g. `{__name__=~".+"}`): lets `/federate` serve its
    /// cached full body.
    pub fn matches_everything(&self) -> bool {
        self.matchers.iter().all(|m| {
            m.name == "__name__"
                && matches!(&m.op, MatchOp::Re(r) if [".+", ".*"].iter().any(|p| r.as_str() == format!("^(?:{p})$")))
        })
    }

    /// True when the series with this canonical key matches.
    pub fn matches(&self, key: &str) -> bool {
        self.matchers.iter().all(|m| {
            if m.name == "__name__" {
                return m.is_match(name_of(key));
            }
            let value = labels_of(key).find(|(n, _)| *n == m.name).map(|(_, v)| v).unwrap_or("");
            m.is_match(&unescape_label_value(value))
        })
    }

    /// True when the series with this key matches (as [`Selector::matches`] on its text).
    pub fn matches_key(&self, key: &KeyRef<'_>) -> bool {
        self.matchers.iter().all(|m| {
            if m.name == "__name__" {
                return m.is_match(key.name());
            }
            m.is_match(&unescape_label_value(key.label(&m.name).unwrap_or("")))
        })
    }
}

/// Several `match[]` values: a series matches when any of them does (a union).
#[derive(Debug, Clone, Default)]
pub struct SelectorSet {
    selectors: Vec<Selector>,
}

impl SelectorSet {
    /// Parses every value; the first bad one is the error.
    pub fn parse<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Result<SelectorSet, SelectorError> {
        let selectors = inputs.into_iter().map(Selector::parse).collect::<Result<Vec<_>, _>>()?;
        Ok(SelectorSet { selectors })
    }

    /// True when there is no selector at all.
    pub fn is_empty(&self) -> bool {
        self.selectors.is_empty()
    }

    /// True when one of the selectors matches every series.
    pub fn matches_everything(&self) -> bool {
        self.selectors.iter().any(Selector::matches_everything)
    }

    /// True when a series with this key matches one of the selectors.
    pub fn matches(&self, key: &str) -> bool {
        self.selectors.iter().any(|s| s.matches(key))
    }

    /// True when a series with this key matches one of the selectors.
    pub fn matches_key(&self, key: &KeyRef<'_>) -> bool {
        self.selectors.iter().any(|s| s.matches_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sel: &str, key: &str) -> bool {
        let selector = Selector::parse(sel).unwrap();
        let (schema, values) = crate::key::split(key);
        let schema = crate::key::Schema::new(&schema);
        let compact = selector.matches_key(&KeyRef { schema: &schema, values: &values });
        assert_eq!(selector.matches(key), compact, "{sel} on {key}: text and compact keys agree");
        compact
    }

    #[test]
    fn matches_names_labels_and_anchored_regexes() {
        let key = r#"node_cpu_seconds_total{cpu="0",instance="a:9100",mode="idle"}"#;
        assert!(m("node_cpu_seconds_total", key));
        assert!(m(r#"{__name__=~"node_.*"}"#, key));
        assert!(!m(r#"{__name__=~"cpu"}"#, key), "regexes are anchored");
        assert!(m(r#"{mode="idle",cpu!="1"}"#, key));
        assert!(!m(r#"{mode=~"id"}"#, key));
        assert!(m(r#"{__name__=~".+",missing=""}"#, key), "a missing label is the empty string");
        assert!(m(r#"{job!~"x.*", mode="idle"}"#, key));
        assert!(m(r#"{"node_cpu_seconds_total"}"#, key), "quoted name in braces");
        assert!(m("job:up:sum", "job:up:sum"), "recording-rule names");
    }

    #[test]
    fn matching_uses_unescaped_values() {
        let key = r#"m{path="a\"b\\c\nd"}"#;
        assert!(m("{path=\"a\\\"b\\\\c\\nd\"}", key));
        // As in Prometheus 2.42 (Go RE2), `.` does not match a newline unless (?s) says so.
        assert!(!m(r#"{path=~"a.b.c.d"}"#, key));
        assert!(m(r#"{path=~"(?s)a.b.c.d"}"#, key));
    }

    #[test]
    fn rejects_what_federate_rejects() {
        for bad in [
            "rate(x[5m])",
            "x[5m]",
            "x offset 5m",
            "x @ 100",
            "sum(x)",
            r#"{job=""}"#,
            r#"{job=~".*"}"#,
            "{",
            "x or y",
            r#"{a="1" or b="2"}"#,
            "",
        ] {
            let e = Selector::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("invalid match[] selector"), "{e}");
        }
    }

    #[test]
    fn union_and_match_all() {
        let set = SelectorSet::parse([r#"{job="a"}"#, "up"]).unwrap();
        assert!(set.matches(r#"up{job="b"}"#));
        assert!(set.matches(r#"x{job="a"}"#));
        assert!(!set.matches(r#"x{job="b"}"#));
        assert!(!set.matches_everything());
        assert!(SelectorSet::parse([r#"{__name__=~".+"}"#]).unwrap().matches_everything());
    }
}
