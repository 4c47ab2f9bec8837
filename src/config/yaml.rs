//! YAML into the config's serde structs, with every parse-level problem of a file in one run.
//!
//! serde stops at the first unknown key or wrong type, so a file with four wrong keys would need
//! four runs of `check-config`. Here, after the first error, the document is read as a plain tree,
//! the offending key (or list item) is cut out at the error's path (from `serde_path_to_error`),
//! and the tree is deserialized again, until it passes or nothing more can be cut. Every error
//! is reported with its path in the file; the first also with its line and column, which the
//! later ones cannot have (they come from the tree, written back as YAML).
//!
//! The tree ([`Node`]) keeps the document's key order, so that problems come in the file's order,
//! and it is written back as YAML and read by the same deserializer rather than deserialized
//! directly: YAML's scalars are untyped until a field asks (`name: 123` is a string for a
//! `String` field), and a typed tree would turn that into a type error.

use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_path_to_error::Segment;
use std::fmt;

/// Most problems reported from one file; the rest are counted, not shown.
const MAX_PROBLEMS: usize = 100;

/// One parse-level problem: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxProblem {
    /// Path in the file, as the validation problems write it (`groups[0].replicas[1].adress`);
    /// empty for the document itself.
    pub path: String,
    /// Line and column (1-based), when known.
    pub position: Option<(u64, u64)>,
    pub message: String,
}

impl SyntaxProblem {
    /// The problem as a compiler writes it: `file:line:column: path: message`.
    pub fn located_in(&self, origin: &str) -> String {
        match self.position {
            Some((line, column)) => {
                let rest = SyntaxProblem { position: None, ..self.clone() };
                format!("{origin}:{line}:{column}: {rest}")
            }
            None => self.to_string(),
        }
    }
}

impl fmt::Display for SyntaxProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.position {
            write!(f, "line {line}, column {column}: ")?;
        }
        if self.path.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Deserializes `text`, or returns every parse-level problem found in it (at least one).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Vec<SyntaxProblem>> {
    let first = match attempt::<T>(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut problems = vec![first.problem(&[], true)];
    // A document that is not even a YAML tree (bad indentation, duplicate keys, …) has only
    // the one problem to show.
    let Ok(mut tree) = serde_saphyr::from_str::<Node>(text) else {
        return Err(problems);
    };
    let mut removed: Vec<Vec<Segment>> = Vec::new();
    let mut current = first;
    for _ in 0..MAX_PROBLEMS * 2 {
        let Some(cut) = current.cut(&removed) else { break };
        if !remove(&mut tree, &cut) {
            break;
        }
        removed.push(cut);
        let Ok(yaml) = serde_saphyr::to_string(&tree) else { break };
        match attempt::<T>(&yaml) {
            Ok(_) => break,
            Err(next) => {
                // A required key cut out above reads as missing: a consequence, not a problem.
                // One missing right after an unknown key of the same mapping was cut is most
                // likely that key misspelled: said with it, not apart.
                if let Some(field) = next.missing_after_unknown(&removed) {
                    if let Some(last) = problems.last_mut() {
                        last.message.push_str(&format!(" (and `{field}` is missing: misspelled?)"));
                    }
                } else if !next.caused_by(&removed) {
                    let p = next.problem(&removed, false);
                    if !problems.iter().any(|q| q.path == p.path && q.message == p.message) {
                        problems.push(p);
                    }
                }
                current = next;
            }
        }
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    Err(problems)
}

/// One error and where serde was when it happened.
struct Failure {
    path: Vec<Segment>,
    message: String,
    position: Option<(u64, u64)>,
}

fn attempt<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // The path is kept aside and the error itself returned, so that the deserializer stops
    // there (an `Ok` would make it look for the rest of the document).
    let mut path = Vec::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = e.path().iter().cloned().collect();
            e.into_inner()
        })
    })
    .map_err(|e| Failure { path, position: position(&e), message: message(&e) })
}

fn position(e: &serde_saphyr::Error) -> Option<(u64, u64)> {
    e.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()))
}

/// The error's own words, without the position the deserializer appends (reported apart).
fn message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => text[..i].to_owned(),
        _ => text,
    }
}

impl Failure {
    /// The field named in a serde message such as ``unknown field `adress`, expected …``.
    fn field(&self, prefix: &str) -> Option<&str> {
        let rest = self.message.strip_prefix(prefix)?.strip_prefix('`')?;
        rest.split('`').next()
    }

    /// The path of the key this failure is about: for an unknown key, the key itself (serde may
    /// stop at its parent).
    fn key_path(&self) -> Vec<Segment> {
        let mut path = self.path.clone();
        if let Some(field) = self.field("unknown field ")
            && !matches!(path.last(), Some(Segment::Map { key }) if key == field)
        {
            path.push(Segment::Map { key: field.to_owned() });
        }
        path
    }

    /// The problem as the user sees it: its path in the file as written (`removed` are the
    /// cuts made before this failure).
    fn problem(&self, removed: &[Vec<Segment>], with_position: bool) -> SyntaxProblem {
        SyntaxProblem {
            path: render(&original(self.key_path(), removed)),
            position: if with_position { self.position } else { None },
            message: self.message.clone(),
        }
    }

    /// True when this is a "missing field" for the key cut out last (serde reads in document
    /// order, and every earlier problem was cut: the first failure after a cut is at or after it).
    fn caused_by(&self, removed: &[Vec<Segment>]) -> bool {
        let Some(field) = self.field("missing field ") else { return false };
        let mut missing = self.path.clone();
        missing.push(Segment::Map { key: field.to_owned() });
        removed.last().is_some_and(|r| same(r, &missing))
    }

    /// The field, when this is a "missing field" of the mapping whose unknown key was cut last.
    fn missing_after_unknown(&self, removed: &[Vec<Segment>]) -> Option<&str> {
        let field = self.field("missing field ")?;
        let last = removed.last()?;
        let (Segment::Map { key }, parent) = last.split_last()? else { return None };
        (key != field && same(parent, &self.path)).then_some(field)
    }

    /// What to cut out so that the next attempt gets past this failure: the key itself, or
    /// for a missing key the mapping that needs it. `None` when nothing can be cut.
    fn cut(&self, removed: &[Vec<Segment>]) -> Option<Vec<Segment>> {
        let path = if self.field("missing field ").is_some() { self.path.clone() } else { self.key_path() };
        if path.is_empty() || path.iter().any(|s| matches!(s, Segment::Unknown | Segment::Enum { .. })) {
            return None;
        }
        // The same place failing again right after its cut means the cut did not help: stop.
        if removed.last().is_some_and(|r| same(r, &path)) {
            return None;
        }
        Some(path)
    }
}

/// `path`, taken after the cuts in `removed` (each in the tree as it was then), as it is in the
/// file: a list item cut out shifts the later items down, so their indices go back up.
fn original(mut path: Vec<Segment>, removed: &[Vec<Segment>]) -> Vec<Segment> {
    for cut in removed.iter().rev() {
        let Some((Segment::Seq { index: cut_index }, parent)) = cut.split_last() else { continue };
        if path.len() > parent.len()
            && same(&path[..parent.len()], parent)
            && let Segment::Seq { index } = &mut path[parent.len()]
            && *index >= *cut_index
        {
            *index += 1;
        }
    }
    path
}

fn same(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Seq { index: x }, Segment::Seq { index: y }) => x == y,
            (Segment::Map { key: x }, Segment::Map { key: y }) => x == y,
            _ => false,
        })
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { variant } => out.push_str(&format!("<{variant}>")),
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// Removes the node at `path` from `tree`; false when there is none.
fn remove(tree: &mut Node, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = tree;
    for s in parents {
        let next = match (s, node) {
            (Segment::Seq { index }, Node::Seq(items)) => items.get_mut(*index),
            (Segment::Map { key }, Node::Map(entries)) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Segment::Seq { index }, Node::Seq(items)) if *index < items.len() => {
            // Later items shift down: a later failure's index names the item as it is now.
            items.remove(*index);
            true
        }
        (Segment::Map { key }, Node::Map(entries)) => {
            let before = entries.len();
            entries.retain(|(k, _)| k != key);
            entries.len() < before
        }
        _ => false,
    }
}

/// A YAML document as a plain tree, mappings in the document's order.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Uint(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = a.next_element()? {
                    items.push(n);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = a.next_entry::<String, Node>()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(v) => s.serialize_bool(*v),
            Node::Int(v) => s.serialize_i64(*v),
            Node::Uint(v) => s.serialize_u64(*v),
            Node::Float(v) => s.serialize_f64(*v),
            Node::Str(v) => s.serialize_str(v),
            Node::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Top {
        #[serde(default)]
        name: String,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        address: String,
        #[serde(default)]
        port: u16,
    }

    fn problems(yaml: &str) -> Vec<String> {
        from_str::<Top>(yaml).unwrap_err().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_unknown_key_and_wrong_type_in_one_run() {
        let yaml = "name: 123\nnmae: x\ncount: lots\nitems:\n  - address: a\n    prot: 1\n  - adress: b\n  - address: c\n    port: -1\n";
        let p = problems(yaml);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(p[3].ends_with("(and `address` is missing: misspelled?)"), "{p:#?}");
        assert!(p[0].starts_with("line 2, column 1: nmae: unknown field `nmae`"), "{p:#?}");
        assert!(p[1].starts_with("count: invalid"), "{p:#?}");
        assert!(p[2].starts_with("items[0].prot: unknown field `prot`"), "{p:#?}");
        assert!(p[3].starts_with("items[1].adress: unknown field"), "{p:#?}");
        // items[1] was then cut out for its missing address (not a second problem): the third
        // item is still named by its place in the file.
        assert!(p[4].starts_with("items[2].port: invalid"), "{p:#?}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        other: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        a: u32,
    }

    #[test]
    fn nested_unknown_keys_are_found_where_they_are() {
        let p = from_str::<Outer>("inner:\n  b: 5\nother: x\n").unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("line 2, column 3: inner.b: unknown field `b`"), "{shown:?}");
    }

    #[test]
    fn a_string_field_takes_an_untyped_scalar_as_yaml_does() {
        let t: Top = from_str("name: 123\ncount: 2\n").unwrap();
        assert_eq!((t.name.as_str(), t.count), ("123", 2));
    }

    #[test]
    fn a_document_that_is_not_yaml_has_its_one_problem_with_a_position() {
        let p = from_str::<Top>("name: [1\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0].position.is_some(), "{p:?}");
    }
}
