//! Series identity: the canonical key of a series and the batch of samples one scrape yields.
//!
//! A series' identity is its label set *without* the replica labels, plus the group's added
//! labels. Its canonical form is the string written in the text exposition format:
//! `name{a="1",b="2"}` with labels sorted by name and values escaped as Prometheus escapes them
//! (`\\`, `\"`, `\n`). That string defines identity, order ([`cmp_keys`]) and what is rendered
//! into `/federate`; batches and the store keep it split in two ([`crate::key`]): the schema
//! (`name{a="",b=""}`, shared by every series of that shape) and the escaped values, so that a
//! series' labels cost about 60 bytes instead of 140, whatever the number of replicas.

use crate::parse::{MetricType, RawLabel, Sink};

/// How a series behaves when its source replica changes (see `merge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Kind {
    /// Monotonic: a switch of source must not look like a reset.
    Counter,
    /// Anything else: values are passed through.
    #[default]
    Gauge,
}

/// Decides whether the sample `name` behaves like a counter, given the family it was declared in.
///
/// Prometheus' `/federate` declares every family `untyped`, so the name suffix decides there:
/// `_total`, `_count`, `_sum` and `_bucket` are counters (as `rate()` users assume).
pub fn kind_of(name: &str, family: Option<(&str, MetricType)>) -> Kind {
    let suffix_rule = || {
        if ["_total", "_count", "_sum", "_bucket"].iter().any(|s| name.ends_with(s)) {
            Kind::Counter
        } else {
            Kind::Gauge
        }
    };
    let Some((fam, t)) = family else {
        return suffix_rule();
    };
    let rest = match name.strip_prefix(fam) {
        Some(rest) => rest,
        None => return suffix_rule(),
    };
    match (t, rest) {
        (MetricType::Counter, "" | "_total") => Kind::Counter,
        (MetricType::Gauge, "") => Kind::Gauge,
        (MetricType::Histogram, "_bucket" | "_count" | "_sum") => Kind::Counter,
        (MetricType::Summary, "_count" | "_sum") => Kind::Counter,
        (MetricType::Summary, "") => Kind::Gauge,
        (MetricType::GaugeHistogram | MetricType::Info | MetricType::StateSet, _) => Kind::Gauge,
        _ => suffix_rule(),
    }
}

/// The type written on the `# TYPE` line of a rendered series: the declared type when the sample
/// name is the family name and the type is a simple one, otherwise `untyped` (as Prometheus'
/// own `/federate` does for everything).
pub fn render_type_of(name: &str, family: Option<(&str, MetricType)>) -> MetricType {
    match family {
        Some((fam, t @ (MetricType::Counter | MetricType::Gauge))) if fam == name => t,
        _ => MetricType::Untyped,
    }
}

/// A valid label name, `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus' data model).
pub fn is_label_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A valid metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Appends `value` to `out`, escaped for a text-format label value.
///
/// `escaped` says `value` is already the raw text between quotes (from our text parser); then
/// only its escapes are normalised: `\\`, `\"` and `\n` stay, any other `\x` is a literal
/// backslash followed by `x` (that is how Prometheus' own lexer reads it) and is written `\\x`.
pub fn escape_label_value(out: &mut String, value: &str, escaped: bool) {
    let bytes = value.as_bytes();
    if !needs_escape(bytes) {
        out.push_str(value);
        return;
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escaped => match chars.peek() {
                Some(&n @ ('\\' | '"' | 'n')) => {
                    chars.next();
                    out.push('\\');
                    out.push(n);
                }
                _ => out.push_str("\\\\"),
            },
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Whether a value holds a byte the text format escapes (`\\`, `"`, newline).
///
/// Without an early exit, so that the compiler vectorises it: values are short, and the
/// scan with three branches a byte took 12 % of the receiver's CPU (`perf`).
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b == b'\\') | (b == b'"') | (b == b'\n'))
}

/// Appends `value` to a values blob (its length, then [`escape_label_value`] of it).
fn push_escaped_value(out: &mut Vec<u8>, value: &str, escaped: bool) {
    let bytes = value.as_bytes();
    if !needs_escape(bytes) {
        crate::key::push_value(out, bytes);
        return;
    }
    let mut s = String::new();
    escape_label_value(&mut s, value, escaped);
    crate::key::push_value(out, s.as_bytes());
}

/// Compares label names (or other short byte strings) with an inlined loop: they are a few
/// bytes long and mostly differ early, and a call to memcmp for each took 5-7 % of the
/// receiver's CPU (`perf`, `benches/peers/remote_write_receive.sh`).
#[inline]
pub fn cmp_short(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

#[inline]
fn name_before(a: &str, b: &str) -> bool {
    cmp_short(a.as_bytes(), b.as_bytes()).is_lt()
}

/// Reverses [`escape_label_value`] for a canonical value.
pub fn unescape_label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains('\\') {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

pub use crate::canonical::{LabelIter, cmp_keys, labels_of, name_of, split_key};

/// How a group turns an upstream label set into a series identity.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// Label names removed from every series (the replica labels).
    pub drop: Vec<String>,
    /// Labels added to every series, sorted by name.
    pub add: Vec<(String, String)>,
    /// When true (the default) a label the upstream already has wins over an added one; when
    /// false the added one wins and the upstream's is kept as `exported_<name>` (Prometheus'
    /// `honor_labels` semantics).
    pub honor_labels: bool,
}

impl Identity {
    /// Builds an identity rule; `add` is sorted here.
    pub fn new(drop: Vec<String>, mut add: Vec<(String, String)>, honor_labels: bool) -> Self {
        add.sort();
        Identity { drop, add, honor_labels }
    }
}

/// One sample of a [`Batch`]; its key lives in the batch's arenas.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The key's hash ([`crate::key::hash_values`]), as the group's index uses it.
    pub hash: u64,
    schema: u32,
    values_start: u32,
    values_len: u32,
    pub timestamp_ms: Option<i64>,
    pub value: f64,
    pub kind: Kind,
    pub render_type: MetricType,
}

/// A schema of a [`Batch`]: where its text is in the batch's schema arena, and its hash.
#[derive(Clone, Copy, Debug)]
struct BatchSchema {
    start: u32,
    len: u32,
    hash: u64,
}

/// The samples of one successful scrape, keyed canonically.
///
/// Keys are split as [`crate::key`] stores them: schemas (metric name and label names) written
/// once per run of samples that share one, and values packed in one arena, so that a scrape of
/// a million series costs a handful of allocations, not a million.
#[derive(Debug, Default)]
pub struct Batch {
    schema_text: String,
    schemas: Vec<BatchSchema>,
    values: Vec<u8>,
    entries: Vec<Entry>,
}

impl Batch {
    /// The entries, in body order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The canonical key of `entry` (`name{a="1",b="2"}`).
    pub fn key(&self, entry: &Entry) -> String {
        let schema = crate::key::Schema::new(self.schema_text(entry));
        let key = crate::key::KeyRef { schema: &schema, values: self.values(entry) };
        let mut out = Vec::new();
        key.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The schema text of `entry`'s key (`name{a="",b=""}`).
    pub fn schema_text(&self, entry: &Entry) -> &str {
        let s = &self.schemas[entry.schema as usize];
        &self.schema_text[s.start as usize..(s.start + s.len) as usize]
    }

    /// The position of `entry`'s schema among the batch's schemas (equal positions, equal
    /// schemas), and that schema's hash.
    pub fn schema_of(&self, entry: &Entry) -> (usize, u64) {
        (entry.schema as usize, self.schemas[entry.schema as usize].hash)
    }

    /// Number of schemas in the batch (an upper bound of [`Batch::schema_of`] positions).
    pub fn schema_count(&self) -> usize {
        self.schemas.len()
    }

    /// The values blob of `entry`'s key.
    pub fn values(&self, entry: &Entry) -> &[u8] {
        &self.values[entry.values_start as usize..(entry.values_start + entry.values_len) as usize]
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the scrape returned no sample.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Writes a schema text over the previous one: while the pieces agree with what is there, it
/// only compares (most samples have their predecessor's metric name and label names), and
/// writes from the first difference on. Hand-written for the hot path: building the schema
/// anew for every sample and then comparing it with the previous one cost twice the work.
struct Rewrite<'s> {
    text: &'s mut String,
    pos: usize,
    diverged: bool,
}

impl<'s> Rewrite<'s> {
    fn new(text: &'s mut String) -> Self {
        Rewrite { text, pos: 0, diverged: false }
    }

    #[inline]
    fn piece(&mut self, piece: &str) {
        if !self.diverged {
            let end = self.pos + piece.len();
            if self.text.as_bytes().get(self.pos..end).is_some_and(|b| cmp_short(b, piece.as_bytes()).is_eq()) {
                self.pos = end;
                return;
            }
            // `pos` ends a piece that matched, so it is a char boundary.
            self.text.truncate(self.pos);
            self.diverged = true;
        }
        self.text.push_str(piece);
        self.pos += piece.len();
    }

    /// Cuts what is left of the previous text; true when the text is the same as before.
    fn finish(self) -> bool {
        let same = !self.diverged && self.pos == self.text.len();
        self.text.truncate(self.pos);
        same
    }
}

/// A [`Sink`] that builds a [`Batch`] under an [`Identity`].
pub struct BatchBuilder<'i> {
    identity: &'i Identity,
    batch: Batch,
    family: Option<(String, MetricType)>,
    scratch: Vec<(usize, bool)>,
    schema: String,
    /// Samples whose label set was rejected (e.g. a label repeated), counted, not stored.
    pub rejected: u64,
}

impl<'i> BatchBuilder<'i> {
    /// A builder for bodies of roughly `size_hint` bytes.
    pub fn new(identity: &'i Identity, size_hint: usize) -> Self {
        BatchBuilder {
            identity,
            batch: Batch {
                schema_text: String::new(),
                schemas: Vec::new(),
                values: Vec::with_capacity(size_hint / 2),
                entries: Vec::with_capacity(size_hint / 128),
            },
            family: None,
            scratch: Vec::new(),
            schema: String::new(),
            rejected: 0,
        }
    }

    /// The finished batch.
    pub fn finish(self) -> Batch {
        self.batch
    }
}

impl Sink for BatchBuilder<'_> {
    fn family(&mut self, family: &str, metric_type: MetricType) {
        match &mut self.family {
            Some((name, t)) => {
                name.clear();
                name.push_str(family);
                *t = metric_type;
            }
            None => self.family = Some((family.to_owned(), metric_type)),
        }
    }

    fn sample(&mut self, name: &str, labels: &[RawLabel<'_>], value: f64, timestamp_ms: Option<i64>) {
        let identity = self.identity;
        // Sort label positions by name; label sets are small and mostly sorted already
        // (Prometheus appends external labels), so this is an insertion sort in practice.
        self.scratch.clear();
        self.scratch.extend(
            labels
                .iter()
                .enumerate()
                .filter(|(_, l)| l.name != "__name__" && !identity.drop.iter().any(|d| d == l.name))
                .map(|(i, l)| (i, l.escaped)),
        );
        // Remote-write labels arrive sorted (validated) and scraped ones mostly do: one pass
        // tells, and only an unsorted set is sorted and checked for repeated names.
        if !self.scratch.windows(2).all(|w| name_before(labels[w[0].0].name, labels[w[1].0].name)) {
            self.scratch.sort_by(|a, b| labels[a.0].name.cmp(labels[b.0].name));
            if self.scratch.windows(2).any(|w| labels[w[0].0].name == labels[w[1].0].name) {
                self.rejected += 1;
                return;
            }
        }

        let start = self.batch.values.len();
        let mut rewrite = Rewrite::new(&mut self.schema);
        let schema = &mut rewrite;
        let values = &mut self.batch.values;
        schema.piece(name);
        let mut first = true;
        let mut push = |schema: &mut Rewrite<'_>, values: &mut Vec<u8>, n: &str, v: &str, escaped: bool| {
            schema.piece(if first { "{" } else { "," });
            first = false;
            schema.piece(n);
            schema.piece("=\"\"");
            push_escaped_value(values, v, escaped);
        };
        // Merge the sorted upstream labels with the sorted added labels.
        let mut add = identity.add.iter().peekable();
        let mut exported: Vec<(usize, &str)> = Vec::new();
        for &(i, escaped) in &self.scratch {
            let l = &labels[i];
            while let Some((an, av)) = add.peek() {
                if an.as_str() < l.name {
                    push(schema, values, an, av, false);
                    add.next();
                } else {
                    break;
                }
            }
            if let Some((an, av)) = add.peek()
                && an.as_str() == l.name
            {
                add.next();
                if identity.honor_labels {
                    push(schema, values, l.name, l.value, escaped);
                } else {
                    push(schema, values, an, av, false);
                    exported.push((i, an.as_str()));
                }
                continue;
            }
            push(schema, values, l.name, l.value, escaped);
        }
        for (an, av) in add {
            push(schema, values, an, av, false);
        }
        if !first {
            schema.piece("}");
        }
        let mut unchanged = rewrite.finish();
        let schema = &mut self.schema;
        if !exported.is_empty() {
            unchanged = false;
            // Rare (honor_labels: false and a clash): rebuild the key with `exported_` labels
            // in their sorted place.
            let done = crate::key::Schema::new(schema);
            let key = crate::key::KeyRef { schema: &done, values: &values[start..] };
            let mut all: Vec<(String, String)> = key.labels().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            for (i, an) in exported {
                let mut v = String::new();
                escape_label_value(&mut v, labels[i].value, labels[i].escaped);
                all.push((format!("exported_{an}"), v));
            }
            all.sort();
            values.truncate(start);
            schema.clear();
            schema.push_str(name);
            for (j, (n, v)) in all.iter().enumerate() {
                schema.push(if j == 0 { '{' } else { ',' });
                schema.push_str(n);
                schema.push_str("=\"\"");
                crate::key::push_value(values, v.as_bytes());
            }
            schema.push('}');
        }

        // Samples of one family mostly share one schema: keep one copy per run. `self.schema`
        // is the schema of the builder's previous sample, the last one kept.
        let same = !self.batch.schemas.is_empty()
            && (unchanged
                || self.batch.schemas.last().is_some_and(|s| {
                    &self.batch.schema_text[s.start as usize..(s.start + s.len) as usize] == self.schema.as_str()
                }));
        if !same {
            self.batch.schemas.push(BatchSchema {
                start: self.batch.schema_text.len() as u32,
                len: self.schema.len() as u32,
                hash: crate::key::hash_schema(&self.schema),
            });
            self.batch.schema_text.push_str(&self.schema);
        }
        let s = self.batch.schemas.len() - 1;
        let fam = self.family.as_ref().map(|(n, t)| (n.as_str(), *t));
        let values = &self.batch.values[start..];
        self.batch.entries.push(Entry {
            hash: crate::key::hash_values(self.batch.schemas[s].hash, values),
            schema: s as u32,
            values_start: start as u32,
            values_len: values.len() as u32,
            timestamp_ms,
            value,
            kind: kind_of(name, fam),
            render_type: render_type_of(name, fam),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<RawLabel<'a>> {
        pairs.iter().map(|(n, v)| RawLabel { name: n, value: v, escaped: true }).collect()
    }

    /// One builder writes each schema over its previous sample's: every key must be what a
    /// builder of its own gives, through longer, shorter and prefix-sharing schemas, and a run
    /// of samples with one schema shares one schema entry.
    #[test]
    fn schemas_written_over_the_previous_one_give_the_same_keys() {
        let id = Identity::new(vec!["replica".into()], vec![("zone".into(), "z1".into())], false);
        let samples: &[(&str, &[(&str, &str)])] = &[
            ("m", &[("a", "1"), ("b", "2")]),
            ("m", &[("a", "3"), ("b", "4")]),
            ("m", &[("a", "1")]),
            ("m", &[("a", "1"), ("b", "2"), ("c", "3")]),
            ("mm", &[("a", "1")]),
            ("m", &[]),
            ("m", &[("b", "2"), ("a", "1")]),
            ("m", &[("ab", "1")]),
            ("m", &[("a", "1"), ("replica", "x")]),
            ("m", &[("zone", "mine"), ("a", "1")]),
            ("m", &[("zone", "mine"), ("a", "1")]),
            ("", &[]),
            ("m", &[("a", "1"), ("b", "2")]),
        ];
        let mut b = BatchBuilder::new(&id, 0);
        for (name, pairs) in samples {
            b.sample(name, &raw(pairs), 1.0, Some(1));
        }
        let batch = b.finish();
        let got: Vec<String> = batch.entries().iter().map(|e| batch.key(e)).collect();
        let want: Vec<String> = samples.iter().map(|(name, pairs)| build(&id, name, pairs)).collect();
        assert_eq!(got, want);
        let schemas: Vec<usize> = batch.entries().iter().map(|e| batch.schema_of(e).0).collect();
        assert_eq!(schemas[0], schemas[1], "a run of one schema shares its entry");
        assert_ne!(schemas[1], schemas[2]);
        assert!(batch.schema_count() < samples.len());
    }

    fn build(identity: &Identity, name: &str, pairs: &[(&str, &str)]) -> String {
        let mut b = BatchBuilder::new(identity, 0);
        b.sample(name, &raw(pairs), 1.0, Some(1));
        let batch = b.finish();
        batch.key(&batch.entries()[0]).to_owned()
    }

    fn default_identity() -> Identity {
        Identity::new(vec!["replica".into(), "prometheus_replica".into(), "__replica__".into()], vec![], true)
    }

    #[test]
    fn replica_labels_are_dropped_and_labels_sorted() {
        let id = default_identity();
        let key = build(&id, "up", &[("job", "node"), ("instance", "a:1"), ("cluster", "eu"), ("replica", "a")]);
        assert_eq!(key, r#"up{cluster="eu",instance="a:1",job="node"}"#);
        // The other replica's copy of the same series has the same identity.
        let other = build(&id, "up", &[("cluster", "eu"), ("instance", "a:1"), ("job", "node"), ("replica", "b")]);
        assert_eq!(key, other);
    }

    #[test]
    fn no_labels_left_renders_bare_name() {
        let key = build(&default_identity(), "a:b:c", &[("replica", "x")]);
        assert_eq!(key, "a:b:c");
    }

    #[test]
    fn added_labels_merge_in_order_and_honor_upstream() {
        let id = Identity::new(vec!["replica".into()], vec![("federation_group".into(), "eu".into())], true);
        assert_eq!(build(&id, "m", &[("a", "1"), ("z", "2")]), r#"m{a="1",federation_group="eu",z="2"}"#);
        assert_eq!(build(&id, "m", &[("federation_group", "up")]), r#"m{federation_group="up"}"#);
        let id = Identity::new(vec![], vec![("job".into(), "fed".into())], false);
        assert_eq!(build(&id, "m", &[("job", "node")]), r#"m{exported_job="node",job="fed"}"#);
    }

    #[test]
    fn escapes_are_normalised_and_round_trip() {
        let id = default_identity();
        // From text (raw, escaped): `\t` is not an escape, it is a backslash and a t.
        let key = build(&id, "m", &[("a", r#"x\"y\\z\nw\tq"#)]);
        assert_eq!(key, r#"m{a="x\"y\\z\nw\\tq"}"#);
        let (_, v) = labels_of(&key).next().unwrap();
        assert_eq!(unescape_label_value(v), "x\"y\\z\nw\\tq");
        // From protobuf (plain): the same value gives the same key.
        let mut b = BatchBuilder::new(&id, 0);
        b.sample("m", &[RawLabel { name: "a", value: "x\"y\\z\nw\\tq", escaped: false }], 1.0, None);
        let batch = b.finish();
        assert_eq!(batch.key(&batch.entries()[0]), key);
    }

    #[test]
    fn labels_of_reads_back_tricky_values() {
        let key = r#"m{a="}",b="x,y=\"z\"",c=""}"#;
        let got: Vec<_> = labels_of(key).collect();
        assert_eq!(got, vec![("a", "}"), ("b", r#"x,y=\"z\""#), ("c", "")]);
        assert_eq!(name_of(key), "m");
        assert_eq!(labels_of("bare").count(), 0);
    }

    #[test]
    fn families_stay_contiguous_in_key_order() {
        let mut keys = vec![r#"foo{a="1"}"#, "foo_bar", "foo", r#"foo_bar{b="2"}"#, "fo"];
        keys.sort_by(|a, b| cmp_keys(a, b));
        assert_eq!(keys, vec!["fo", "foo", r#"foo{a="1"}"#, "foo_bar", r#"foo_bar{b="2"}"#]);
    }

    #[test]
    fn repeated_label_is_rejected_and_counted() {
        let id = default_identity();
        let mut b = BatchBuilder::new(&id, 0);
        b.sample("m", &raw(&[("a", "1"), ("a", "2")]), 1.0, None);
        assert_eq!(b.rejected, 1);
        assert!(b.finish().is_empty());
    }

    #[test]
    fn kinds_follow_type_then_suffix() {
        assert_eq!(kind_of("http_requests_total", None), Kind::Counter);
        assert_eq!(kind_of("job:http_requests:rate5m", None), Kind::Gauge);
        assert_eq!(kind_of("x_bucket", Some(("x", MetricType::Histogram))), Kind::Counter);
        assert_eq!(kind_of("x", Some(("x", MetricType::Summary))), Kind::Gauge);
        assert_eq!(kind_of("requests", Some(("requests", MetricType::Counter))), Kind::Counter);
        assert_eq!(kind_of("temp_total", Some(("temp_total", MetricType::Gauge))), Kind::Gauge);
        // Federate says untyped: the suffix decides.
        assert_eq!(kind_of("x_count", Some(("x_count", MetricType::Untyped))), Kind::Counter);
    }
}
