//! What `dashboards lint` found: problems by file and place, and the metrics the files use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// One problem, printed `file: place: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// `panel "Title"`, `variable "group"`, `group "g": alert "A"`; empty for the whole file.
    pub place: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.place, self.message)
        }
    }
}

/// Everything lint found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Metric name → where it is used first (`(file, place)`), for `--live`.
    pub metrics: BTreeMap<String, (String, String)>,
    /// Names that recording rules of the linted files define.
    pub recorded: BTreeSet<String>,
    /// Values substituted for variables outside strings: never checked as metric names.
    pub variable_values: BTreeSet<String>,
    /// Files read.
    pub files: usize,
    /// uid → file that has it, across every path linted.
    pub(super) uids: HashMap<String, String>,
}

impl Report {
    pub(super) fn problem(&mut self, file: &str, place: &str, message: impl Into<String>) {
        self.problems.push(Problem { file: file.to_owned(), place: place.to_owned(), message: message.into() });
    }

    pub(super) fn uses(&mut self, metric: &str, file: &str, place: &str) {
        self.metrics.entry(metric.to_owned()).or_insert_with(|| (file.to_owned(), place.to_owned()));
    }

    /// After a live check: a problem for every metric used that `known` (the names the live
    /// server has) lacks, unless a linted recording rule defines it.
    pub fn check_live(&mut self, known: &BTreeSet<String>, url: &str) {
        let builtin = ["ALERTS", "ALERTS_FOR_STATE"];
        let missing: Vec<(String, (String, String))> = self
            .metrics
            .iter()
            .filter(|(m, _)| {
                !known.contains(*m)
                    && !self.recorded.contains(*m)
                    && !self.variable_values.contains(*m)
                    && !builtin.contains(&m.as_str())
            })
            .map(|(m, at)| (m.clone(), at.clone()))
            .collect();
        for (metric, (file, place)) in missing {
            self.problem(&file, &place, format!("metric {metric:?} is not known to {url} (no series of that name)"));
        }
    }
}
