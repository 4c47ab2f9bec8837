//! Grafana's variables in a PromQL target, replaced by values that keep the query valid, so
//! that the query can be parsed as Prometheus would receive it.
//!
//! Syntaxes: `$name`, `${name}`, `${name:format}`, `${name.field}` and the deprecated
//! `[[name]]` ([Grafana's variable syntax](https://grafana.com/docs/grafana/latest/dashboards/variables/variable-syntax/)).
//! The value depends on where the variable stands: inside a string it is the variable's
//! current (or first) value, escaped; inside `[…]` or after `offset` it is a duration; elsewhere
//! an identifier or number. Global variables get typical values; `$__rate_interval`,
//! `$__interval` and `$__range` in a range get odd *sentinel* durations, so that the parsed
//! query still tells which of them a range was written with ([`range_name`]).

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// `$__rate_interval` in a range.
pub const RATE_INTERVAL: Duration = Duration::from_millis(60_013);
/// `$__interval` in a range.
pub const INTERVAL: Duration = Duration::from_millis(15_017);
/// `$__range` in a range.
pub const RANGE: Duration = Duration::from_millis(3_600_007);

/// Stands for a variable whose value is unknown, outside strings and ranges.
pub const PLACEHOLDER: &str = "grafana_variable";

/// The name a sentinel range was written with, if it is one.
pub fn range_name(d: Duration) -> Option<&'static str> {
    match d {
        RATE_INTERVAL => Some("$__rate_interval"),
        INTERVAL => Some("$__interval"),
        RANGE => Some("$__range"),
        _ => None,
    }
}

/// The template variables of a dashboard: name → a value to substitute, when one is known.
#[derive(Debug, Default)]
pub struct Variables {
    values: HashMap<String, Option<String>>,
}

/// A target after substitution.
#[derive(Debug, Default, PartialEq)]
pub struct Expanded {
    pub text: String,
    /// Values put outside strings (a variable used as a metric name, say): not metric names
    /// of the dashboard's own.
    pub bare_values: BTreeSet<String>,
    /// Variables used that the dashboard does not define, in order of use.
    pub undefined: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    String(char),
    Range,
    Offset,
    Bare,
}

impl Variables {
    /// The variables of `dashboard.templating.list`.
    pub fn of(dashboard: &Value) -> Variables {
        let mut values = HashMap::new();
        let list = dashboard.pointer("/templating/list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for var in list {
            let Some(name) = var.get("name").and_then(Value::as_str) else { continue };
            values.insert(name.to_owned(), value_of(var));
        }
        Variables { values }
    }

    /// Whether the dashboard defines `name`.
    pub fn defines(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `expr` with every variable replaced.
    pub fn expand(&self, expr: &str) -> Expanded {
        let mut out = Expanded::default();
        let mut i = 0;
        let mut quote: Option<char> = None;
        let mut depth = 0usize;
        while i < expr.len() {
            let c = expr[i..].chars().next().unwrap_or(' ');
            if let Some(q) = quote {
                if c == '\\' && q != '`' {
                    let next = expr[i + 1..].chars().next().map_or(0, char::len_utf8);
                    out.text.push_str(&expr[i..i + 1 + next]);
                    i += 1 + next;
                    continue;
                }
                if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '"' | '\'' | '`' => quote = Some(c),
                    '[' if !expr[i..].starts_with("[[") => depth += 1,
                    ']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            if let Some((name, len)) = variable_at(&expr[i..]) {
                let context = match quote {
                    Some(q) => Context::String(q),
                    None if depth > 0 => Context::Range,
                    None if preceding_word(&expr[..i]) == "offset" => Context::Offset,
                    None => Context::Bare,
                };
                self.substitute(name, context, &mut out);
                i += len;
                continue;
            }
            // `[[`…`]]` that is not a variable is left to the parser to refuse.
            out.text.push(c);
            i += c.len_utf8();
        }
        out
    }

    fn substitute(&self, name: &str, context: Context, out: &mut Expanded) {
        let known = self.values.get(name);
        let global = name.starts_with("__");
        if known.is_none() && !global {
            // `$1` in a `label_replace` replacement: Grafana leaves an unknown variable as it is.
            if name.bytes().all(|b| b.is_ascii_digit()) {
                out.text.push('$');
                out.text.push_str(name);
                return;
            }
            if !out.undefined.iter().any(|u| u == name) {
                out.undefined.push(name.to_owned());
            }
        }
        let value: Option<&str> = known.and_then(Option::as_deref);
        let text = match context {
            Context::Range | Context::Offset => match name {
                "__rate_interval" => format_ms(RATE_INTERVAL),
                "__interval" => format_ms(INTERVAL),
                "__range" => format_ms(RANGE),
                _ => value.filter(|v| is_duration(v)).unwrap_or("5m").to_owned(),
            },
            Context::String(q) => {
                let v = global_value(name).or(value).unwrap_or(PLACEHOLDER);
                let mut escaped = String::new();
                for ch in v.chars() {
                    if (ch == q || ch == '\\') && q != '`' {
                        escaped.push('\\');
                    }
                    escaped.push(ch);
                }
                escaped
            }
            Context::Bare => {
                let v = match global_value(name) {
                    Some(g) => g.to_owned(),
                    None => {
                        value.filter(|v| is_identifier(v) || v.parse::<f64>().is_ok()).unwrap_or(PLACEHOLDER).to_owned()
                    }
                };
                out.bare_values.insert(v.clone());
                v
            }
        };
        out.text.push_str(&text);
    }
}

/// Values of Grafana's global variables outside ranges (numbers, or a duration's text).
fn global_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "__rate_interval" => "1m",
        "__interval" => "15s",
        "__range" => "1h",
        "__interval_ms" => "15000",
        "__range_s" => "3600",
        "__range_ms" => "3600000",
        "__from" => "1700000000000",
        "__to" => "1700003600000",
        _ if name.starts_with("__") => PLACEHOLDER,
        _ => return None,
    })
}

/// The value a variable would most likely have: its saved current value, else its first
/// option, else (custom, constant, textbox, interval) the first item of its query.
fn value_of(var: &Value) -> Option<String> {
    let usable = |v: &Value| -> Option<String> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.first()?.as_str()?.to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        (!s.is_empty() && s != "$__all" && !s.contains('$')).then_some(s)
    };
    if let Some(v) = var.pointer("/current/value").and_then(usable) {
        return Some(v);
    }
    if let Some(v) = var.pointer("/options/0/value").and_then(usable) {
        return Some(v);
    }
    let kind = var.get("type").and_then(Value::as_str).unwrap_or_default();
    if matches!(kind, "custom" | "constant" | "textbox" | "interval") {
        let query = var.get("query").and_then(Value::as_str).unwrap_or_default();
        let first = query.split(',').next().unwrap_or_default();
        // Custom options may be `text : value`.
        let first = first.rsplit(" : ").next().unwrap_or(first).trim();
        if !first.is_empty() && !first.contains('$') {
            return Some(first.to_owned());
        }
    }
    None
}

/// A variable reference at the start of `s`: its name and the length of the reference.
fn variable_at(s: &str) -> Option<(&str, usize)> {
    let word = |t: &str| t.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    if let Some(rest) = s.strip_prefix("${") {
        let n = word(rest);
        let close = rest.find('}')?;
        let after = &rest[n..close];
        (n > 0 && (after.is_empty() || after.starts_with(':') || after.starts_with('.')))
            .then(|| (&rest[..n], 2 + close + 1))
    } else if let Some(rest) = s.strip_prefix("[[") {
        let n = word(rest);
        let close = rest.find("]]")?;
        let after = &rest[n..close];
        (n > 0 && (after.is_empty() || after.starts_with(':'))).then(|| (&rest[..n], 2 + close + 2))
    } else if let Some(rest) = s.strip_prefix('$') {
        let n = word(rest);
        (n > 0).then(|| (&rest[..n], 1 + n))
    } else {
        None
    }
}

/// The identifier just before `s`'s end (spaces skipped), lower-cased.
fn preceding_word(s: &str) -> String {
    let t = s.trim_end();
    let start = t.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
    t[start..].to_ascii_lowercase()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A Prometheus duration such as `5m` or `1h30m`.
pub fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"].into_iter().find(|u| rest.starts_with(u));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
    }
    true
}

fn format_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Variables {
        Variables::of(&json!({"templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "group", "type": "query", "current": {"text": "eu", "value": "eu-west-1"}},
            {"name": "replica", "type": "query", "current": {"value": ["$__all"]}},
            {"name": "window", "type": "interval", "query": "10m,1h"},
            {"name": "quote", "type": "custom", "query": "a\"b"},
            {"name": "metric", "type": "custom", "query": "One : up, Two : node_load1"},
        ]}}))
    }

    #[test]
    fn variables_in_strings_take_their_value_escaped() {
        let e = vars().expand(r#"up{group="$group", replica=~"${replica:regex}", q="[[quote]]"}"#);
        assert_eq!(e.text, r#"up{group="eu-west-1", replica=~"grafana_variable", q="a\"b"}"#);
        assert!(e.undefined.is_empty() && e.bare_values.is_empty());
    }

    #[test]
    fn ranges_get_sentinels_or_durations() {
        let e = vars().expand("rate(x[$__rate_interval]) + rate(x[${__interval}]) + increase(x[$__range]) + rate(x[$window]) offset $window");
        assert_eq!(e.text, "rate(x[60013ms]) + rate(x[15017ms]) + increase(x[3600007ms]) + rate(x[10m]) offset 10m");
        assert_eq!(range_name(RATE_INTERVAL), Some("$__rate_interval"));
    }

    #[test]
    fn bare_variables_are_identifiers_or_numbers_and_remembered() {
        let e = vars().expand("$metric > $__range_s and $nothing");
        assert_eq!(e.text, "up > 3600 and grafana_variable");
        assert_eq!(e.undefined, ["nothing"]);
        assert!(e.bare_values.contains("up") && e.bare_values.contains(PLACEHOLDER));
    }

    #[test]
    fn label_replace_groups_and_dollar_signs_in_regexes_stay() {
        let e = vars().expand(r#"label_replace(up, "x", "$1", "instance", "(.*):.*$")"#);
        assert_eq!(e.text, r#"label_replace(up, "x", "$1", "instance", "(.*):.*$")"#);
        assert!(e.undefined.is_empty());
    }

    #[test]
    fn durations() {
        for ok in ["5m", "1h30m", "500ms", "2d"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "5", "m", "5 m", "1.5h"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
