//! One PromQL expression, parsed with promql-parser: the metric names it selects and the ranges
//! its `rate()`, `irate()` and `increase()` calls are taken over.

use promql_parser::label::{METRIC_NAME, MatchOp};
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use std::collections::BTreeSet;
use std::time::Duration;

/// Functions whose range a dashboard should take from `$__rate_interval`.
pub const RATE_FUNCTIONS: [&str; 3] = ["rate", "irate", "increase"];

/// What a parsed expression uses.
#[derive(Debug, Default, PartialEq)]
pub struct Analysis {
    /// Metric names selected literally (`up`, `{__name__="up"}`), not regex selections.
    pub metrics: BTreeSet<String>,
    /// `(function, range)` of each call of a [`RATE_FUNCTIONS`] function over a range
    /// selector or a subquery.
    pub rate_ranges: Vec<(&'static str, Duration)>,
}

/// Parses `expr` and collects what it uses; the parser's message when it does not parse.
pub fn analyse(expr: &str) -> Result<Analysis, String> {
    let parsed = parser::parse(expr)?;
    let mut visitor = Collector::default();
    // The visitor never fails.
    let _ = walk_expr(&mut visitor, &parsed);
    Ok(visitor.0)
}

#[derive(Default)]
struct Collector(Analysis);

impl ExprVisitor for Collector {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs),
            Expr::MatrixSelector(ms) => self.selector(&ms.vs),
            Expr::Call(call) if RATE_FUNCTIONS.contains(&call.func.name) => {
                for arg in &call.args.args {
                    match arg.as_ref() {
                        Expr::MatrixSelector(ms) => self.0.rate_ranges.push((call.func.name, ms.range)),
                        Expr::Subquery(sq) => self.0.rate_ranges.push((call.func.name, sq.range)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

impl Collector {
    fn selector(&mut self, vs: &VectorSelector) {
        if let Some(name) = &vs.name {
            self.0.metrics.insert(name.clone());
        }
        let all = vs.matchers.matchers.iter().chain(vs.matchers.or_matchers.iter().flatten());
        for m in all {
            if m.name == METRIC_NAME && m.op == MatchOp::Equal {
                self.0.metrics.insert(m.value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rate_ranges() {
        let a = analyse(
            r#"sum by (group) (rate(promfed_scrapes_total{job="promfed"}[5m])) / on() group_left {__name__="up"} + increase(x[1h:1m]) + {__name__=~"re.*"}"#,
        )
        .unwrap();
        assert_eq!(a.metrics.iter().map(String::as_str).collect::<Vec<_>>(), ["promfed_scrapes_total", "up", "x"]);
        assert_eq!(a.rate_ranges, [("rate", Duration::from_secs(300)), ("increase", Duration::from_secs(3600))]);
    }

    #[test]
    fn parse_errors_are_the_parsers_message() {
        let e = analyse("sum(rate(x[5m])").unwrap_err();
        assert!(!e.is_empty());
    }
}
