//! The arrows of `src/` point one way (issue 15, item 9): every `crate::…` / `super::…` path
//! and every use of a child module, outside tests, goes from a module to one listed *after* it
//! in `lib.rs`'s Layout (wiring at the top, config and the shared model at the bottom), and no
//! two files depend on each other, directly or through others.
//!
//! The paths are read from the source text (comments, strings and `#[cfg(test)]` items left
//! out) and resolved to the file that defines the longest prefix of each; a re-export counts
//! as a dependency of the file that re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/a/b.rs` → `[a, b]`; `src/a/mod.rs` → `[a]`; `src/lib.rs` → `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source with comments and string and char literals blanked, so that braces and paths in
/// them do not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"' | b'#')) && (i == 0 || !is_ident(b[i - 1])) {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\''
            && (b.get(i + 2) == Some(&b'\'') || (b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'')))
        {
            // A char literal ('"', '{', '\n'); lifetimes ('a) are left alone.
            i += if b[i + 1] == b'\\' { 4 } else { 3 };
            out.push_str("' '");
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The code without its `#[cfg(test)]` items (a `mod tests { … }`, a `use`, a `fn`).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        // Up to the end of the item: a `;` before any `{`, or the matching `}`.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The paths of `code` after `prefix` (`crate::`, `super::`), expanding `a::{b, c::d}`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(p) = code[from..].find(prefix) {
        let at = from + p;
        from = at + prefix.len();
        if at > 0 && (is_ident(b[at - 1]) || b[at - 1] == b':') {
            continue;
        }
        let (mut found, _) = path_tree(code, from);
        out.append(&mut found);
    }
    out
}

/// Reads `a::b::{c, d::e}` at `i`: every full path, and where reading stopped.
fn path_tree(code: &str, mut i: usize) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    let mut base = Vec::new();
    loop {
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i > start {
            base.push(code[start..i].to_owned());
        }
        // `prefix::{…}` straight after the prefix, or `a::b::{…}`.
        let group = if base.is_empty() && code[i..].starts_with('{') {
            Some(1)
        } else if code[i..].starts_with("::{") {
            Some(3)
        } else {
            None
        };
        if let Some(skip) = group {
            i += skip;
            let mut all = Vec::new();
            loop {
                while i < b.len() && (b[i] == b' ' || b[i] == b'\n' || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    i += 1;
                    break;
                }
                let (sub, next) = path_tree(code, i);
                for s in sub {
                    let mut p = base.clone();
                    p.extend(s.into_iter().filter(|x| x != "self"));
                    all.push(p);
                }
                // Skip `as name` and anything up to the next `,` or `}` at this level.
                i = next;
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
            }
            return (all, i);
        }
        if code[i..].starts_with("::") && b.get(i + 2).is_some_and(|&c| is_ident(c)) {
            i += 2;
            continue;
        }
        return (vec![base], i);
    }
}

struct Source {
    /// Relative to `src/`.
    files: BTreeMap<String, String>,
    modules: BTreeMap<Vec<String>, String>,
}

impl Source {
    fn read() -> Source {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    files.insert(rel, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let modules = files.keys().map(|rel| (module_of(rel), rel.clone())).collect();
        Source { files, modules }
    }

    /// The file defining the longest prefix of `path`.
    fn resolve(&self, path: &[String]) -> Option<&str> {
        (1..=path.len()).rev().find_map(|n| self.modules.get(&path[..n]).map(String::as_str))
    }

    /// Files that are test code only: declared under `#[cfg(test)]` (`mod tests;`, test helpers).
    fn test_only(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (rel, src) in &self.files {
            let code = code_only(src);
            let mut rest = code.as_str();
            while let Some(at) = rest.find("#[cfg(test)]") {
                let after = rest[at + 12..].trim_start();
                let after = after.strip_prefix("pub ").unwrap_or(after);
                if let Some(name) = after.strip_prefix("mod ") {
                    let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    // `foo.rs` and `foo/mod.rs` both declare `foo/name.rs`.
                    let mut m = module_of(rel);
                    m.push(name);
                    if let Some(f) = self.modules.get(&m) {
                        out.insert(f.clone());
                    }
                }
                rest = &rest[at + 12..];
            }
        }
        out
    }

    /// File → the files it depends on (itself left out).
    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let tests = self.test_only();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, src) in &self.files {
            if rel == "main.rs" || tests.contains(rel) {
                continue;
            }
            let code = without_tests(&code_only(src));
            let me = module_of(rel);
            let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::");
            let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
            for p in paths_after(&code, "super::") {
                let mut up = parent.clone();
                let mut p = p.as_slice();
                while p.first().is_some_and(|s| s == "super") {
                    up.pop();
                    p = &p[1..];
                }
                up.extend(p.iter().cloned());
                targets.push(up);
            }
            // Children declared here and used by name: `mod x;` … `x::f()` / `use x::…`.
            for line in code.lines() {
                let l = line.trim_start();
                let l = l.strip_prefix("pub ").or_else(|| l.strip_prefix("pub(crate) ")).unwrap_or(l);
                if let Some(name) = l.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                    let name = name.trim();
                    let used = code
                        .match_indices(&format!("{name}::"))
                        .any(|(i, _)| i == 0 || !(is_ident(code.as_bytes()[i - 1]) || code.as_bytes()[i - 1] == b':'));
                    if used {
                        let mut child = me.clone();
                        child.push(name.to_owned());
                        targets.push(child);
                    }
                }
            }
            let set = edges.entry(rel.clone()).or_default();
            for t in targets {
                if let Some(f) = self.resolve(&t)
                    && f != rel
                    && !tests.contains(f)
                {
                    set.insert(f.to_owned());
                }
            }
        }
        edges
    }
}

/// The top-level modules in the order of `lib.rs`'s Layout.
fn layout() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

fn top(rel: &str) -> String {
    module_of(rel).first().cloned().unwrap_or_else(|| "lib".into())
}

#[test]
fn every_import_points_down_the_layout() {
    let source = Source::read();
    let order = layout();
    let declared: BTreeSet<String> =
        source.files.keys().map(|f| top(f)).filter(|m| m != "lib" && m != "main").collect();
    let listed: BTreeSet<String> = order.iter().cloned().collect();
    assert_eq!(declared, listed, "lib.rs's Layout must list every top-level module, once");
    assert_eq!(order.len(), listed.len(), "a module listed twice in the Layout");
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut wrong = Vec::new();
    for (from, tos) in source.edges() {
        for to in tos {
            let (a, b) = (top(&from), top(&to));
            if a == b || a == "lib" {
                continue;
            }
            if rank(&b) < rank(&a) {
                wrong.push(format!("{from} -> {to} ({a} is below {b} in the Layout)"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports pointing up the Layout:\n  {}", wrong.join("\n  "));
}

#[test]
fn no_two_files_depend_on_each_other() {
    let edges = Source::read().edges();
    // Depth-first search with colours; a grey node reached again closes a cycle.
    let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
    let mut cycles = Vec::new();
    fn visit<'a>(
        n: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        colour.insert(n, 1);
        stack.push(n);
        for m in edges.get(n).into_iter().flatten() {
            match colour.get(m.as_str()) {
                None => visit(m, edges, colour, stack, cycles),
                Some(1) => {
                    let from = stack.iter().position(|s| *s == m).unwrap();
                    let mut cycle: Vec<&str> = stack[from..].to_vec();
                    cycle.push(m);
                    cycles.push(cycle.join(" -> "));
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(n, 2);
    }
    for n in edges.keys() {
        if !colour.contains_key(n.as_str()) {
            visit(n, &edges, &mut colour, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "files that depend on each other:\n  {}", cycles.join("\n  "));
}

/// The reader itself: a test that cannot see paths would pass on anything.
#[test]
fn the_reader_finds_paths_and_skips_comments_strings_and_tests() {
    let code = code_only(
        "use crate::a::{b, c::d as e};\nuse super::{x, y::z};\n// crate::nope\nlet s = \"crate::nope2\";\nsuper::f::g();\n#[cfg(test)]\nmod tests { use crate::hidden; }\n",
    );
    let code = without_tests(&code);
    let found = paths_after(&code, "crate::");
    assert_eq!(found, vec![vec!["a".to_owned(), "b".to_owned()], vec!["a".to_owned(), "c".to_owned(), "d".to_owned()]]);
    let sup = paths_after(&code, "super::");
    assert_eq!(
        sup,
        vec![vec!["x".to_owned()], vec!["y".to_owned(), "z".to_owned()], vec!["f".to_owned(), "g".to_owned()]]
    );
    let source = Source::read();
    let edges = source.edges();
    assert!(
        edges["run/mod.rs"].contains("serve/mod.rs") || edges["run/mod.rs"].iter().any(|f| f.starts_with("serve/"))
    );
    assert!(edges["config/validate.rs"].contains("config/file.rs"), "{:?}", edges["config/validate.rs"]);
}
