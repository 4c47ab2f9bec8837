//! Compact series keys: a series' canonical key split into its *schema* (metric name and label
//! names, shared by every series of that shape and interned once per group) and its label
//! *values*, packed in one small byte string per series.
//!
//! The canonical key `name{a="1",b="2"}` (see [`crate::series`]) of a million federated series
//! spends most of its bytes on the metric name and label names, which a few hundred distinct
//! shapes share. Stored as schema id + values, a 140-byte key becomes about 60 bytes: this is
//! what brings 1M merged series under 300 MB (issue 2, `docs/benchmarks.md`).
//!
//! A schema is written as the canonical key with every value emptied, `name{a="",b=""}`; the
//! canonical key is that text with value `i` inserted at the `i`-th "cut" (between the two
//! quotes of `=""`). Values are kept escaped, exactly as they appear in the canonical key, each
//! preceded by its length as a LEB128 varint (one byte below 128), so rendering copies the
//! schema's pieces and the values in turn.

use hashbrown::HashTable;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The shape of a series: metric name and label names (sorted), as `name{a="",b=""}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    text: Box<str>,
    /// Where value `i` goes in `text`: just after the opening quote of its `=""`.
    cuts: Box<[u32]>,
    name_len: u32,
    hash: u64,
}

impl Schema {
    /// Reads a schema text (a canonical key with every label value emptied); only ever called
    /// on text built by [`crate::series`], so the format is known to be well formed.
    pub fn new(text: &str) -> Schema {
        let name_len = text.find('{').unwrap_or(text.len());
        let cuts = memchr::memmem::find_iter(text.as_bytes(), b"=\"\"").map(|i| (i + 2) as u32).collect();
        Schema { text: text.into(), cuts, name_len: name_len as u32, hash: hash_schema(text) }
    }

    /// The schema's text, `name{a="",b=""}`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.cuts.len()
    }

    /// The name of label `i`.
    ///
    /// Names from a protobuf body are not validated, and one containing `=""` or `{` would cut
    /// the schema in odd places: such a name reads back wrong (as it renders wrong) but never
    /// panics.
    pub fn label_name(&self, i: usize) -> &str {
        let end = (self.cuts[i] as usize).saturating_sub(2);
        let start = if i == 0 { self.name_len as usize + 1 } else { self.cuts[i - 1] as usize + 2 };
        self.text.get(start..end).unwrap_or_default()
    }

    /// The position of label `name`, if the schema has it.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        (0..self.cuts.len()).find(|&i| self.label_name(i) == name)
    }

    /// The hash [`hash_values`] seeds with.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The fixed text between values: piece `i` precedes value `i`, the last one closes the key.
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let text = self.text.as_bytes();
        let cuts = &self.cuts;
        (0..=cuts.len()).map(move |i| {
            let start = if i == 0 { 0 } else { cuts[i - 1] as usize };
            let end = cuts.get(i).map_or(text.len(), |&c| c as usize);
            &text[start..end]
        })
    }
}

/// The hash of a schema text.
pub fn hash_schema(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// The hash of a key: its values blob, seeded with its schema's hash.
pub fn hash_values(schema_hash: u64, values: &[u8]) -> u64 {
    xxh3_64_with_seed(values, schema_hash)
}

/// Appends one escaped value to a values blob.
pub fn push_value(blob: &mut Vec<u8>, value: &[u8]) {
    crate::varint::put_varint(blob, value.len() as u64);
    blob.extend_from_slice(value);
}

/// Iterates the escaped values of a values blob.
pub fn values(mut blob: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if blob.is_empty() {
            return None;
        }
        let (len, n) = crate::varint::get_varint(blob);
        let rest = &blob[n..];
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let len = len.min(rest.len());
        let (v, r) = rest.split_at(len);
        blob = r;
        Some(v)
    })
}

/// A series key: a schema and the values blob of one series.
#[derive(Clone, Copy, Debug)]
pub struct KeyRef<'a> {
    pub schema: &'a Schema,
    pub values: &'a [u8],
}

impl<'a> KeyRef<'a> {
    /// The metric name.
    pub fn name(&self) -> &'a str {
        self.schema.name()
    }

    /// The canonical key after the metric name, in pieces: schema piece, value, schema piece, …
    fn rest_chunks(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut values = values(self.values);
        let name_len = self.schema.name_len as usize;
        self.schema.pieces().enumerate().flat_map(move |(i, p)| {
            let v = if i == 0 { None } else { values.next() };
            v.into_iter().chain(std::iter::once(if i == 0 { p.get(name_len..).unwrap_or_default() } else { p }))
        })
    }

    /// Appends the canonical key (`name{a="1",b="2"}`) to `out`.
    #[inline]
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let text = self.schema.text.as_bytes();
        out.reserve(text.len() + self.values.len());
        let mut prev = 0;
        for (&cut, v) in self.schema.cuts.iter().zip(values(self.values)) {
            out.extend_from_slice(&text[prev..cut as usize]);
            out.extend_from_slice(v);
            prev = cut as usize;
        }
        out.extend_from_slice(&text[prev..]);
    }

    /// The `(name, escaped value)` pairs after the metric name, as [`crate::series::labels_of`]
    /// gives them for the canonical key.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let schema = self.schema;
        values(self.values).enumerate().map(move |(i, v)| (schema.label_name(i), as_str(v)))
    }

    /// The escaped value of label `name`, if the key has it.
    pub fn label(&self, name: &str) -> Option<&'a str> {
        let i = self.schema.label_index(name)?;
        values(self.values).nth(i).map(as_str)
    }

    /// The order series are served in, the same as [`crate::series::cmp_keys`] on their
    /// canonical keys: by metric name, then by the rest of the key as text.
    pub fn cmp_key(&self, other: &KeyRef<'_>) -> Ordering {
        if std::ptr::eq(self.schema, other.schema) || self.schema.text == other.schema.text {
            return cmp_values(self.values, other.values);
        }
        match self.name().cmp(other.name()) {
            Ordering::Equal => cmp_chunks(self.rest_chunks(), other.rest_chunks()),
            o => o,
        }
    }

    /// True when both are the same series (whatever group's schema table they come from).
    pub fn same(&self, other: &KeyRef<'_>) -> bool {
        self.values == other.values
            && (std::ptr::eq(self.schema, other.schema) || self.schema.text == other.schema.text)
    }

    /// The hash the group's index uses.
    pub fn hash(&self) -> u64 {
        hash_values(self.schema.hash, self.values)
    }
}

impl PartialEq for KeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl Eq for KeyRef<'_> {}

impl PartialOrd for KeyRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_key(other)
    }
}

impl fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_to(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Values are UTF-8 (they are cut from the escaped text of a `&str`), so this never fails.
fn as_str(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

/// Orders the values of two keys of one schema as their canonical keys order: each value is
/// followed by `"` in the text, which is what a value that is a prefix of the other is
/// compared with.
fn cmp_values(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    for (x, y) in values(a).zip(values(b)) {
        let n = x.len().min(y.len());
        match x[..n].cmp(&y[..n]) {
            Ordering::Equal => {}
            o => return o,
        }
        match x.len().cmp(&y.len()) {
            Ordering::Equal => {}
            Ordering::Less => return b'"'.cmp(&y[n]),
            Ordering::Greater => return x[n].cmp(&b'"'),
        }
    }
    Ordering::Equal
}

/// Compares two keys' texts given as chunk sequences (after the names, which are equal).
fn cmp_chunks<'a, 'b>(mut a: impl Iterator<Item = &'a [u8]>, mut b: impl Iterator<Item = &'b [u8]>) -> Ordering {
    let (mut x, mut y): (&[u8], &[u8]) = (&[], &[]);
    loop {
        while x.is_empty() {
            match a.next() {
                Some(c) => x = c,
                None => break,
            }
        }
        while y.is_empty() {
            match b.next() {
                Some(c) => y = c,
                None => break,
            }
        }
        match (x.is_empty(), y.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let n = x.len().min(y.len());
        match x[..n].cmp(&y[..n]) {
            Ordering::Equal => {}
            o => return o,
        }
        x = &x[n..];
        y = &y[n..];
    }
}

/// Splits a canonical key into its schema text and values blob.
pub fn split(key: &str) -> (String, Vec<u8>) {
    let mut schema = String::with_capacity(key.len());
    let mut blob = Vec::with_capacity(key.len());
    schema.push_str(crate::canonical::name_of(key));
    let mut first = true;
    for (n, v) in crate::canonical::labels_of(key) {
        schema.push(if first { '{' } else { ',' });
        first = false;
        schema.push_str(n);
        schema.push_str("=\"\"");
        push_value(&mut blob, v.as_bytes());
    }
    if !first {
        schema.push('}');
    }
    (schema, blob)
}

/// A group's interned schemas. The table is shared with published snapshots (copied on write
/// when a schema is added while a snapshot holds it); a schema no series uses any more frees its
/// slot for the next new one.
#[derive(Debug, Default)]
pub struct Schemas {
    list: Arc<Vec<Arc<Schema>>>,
    /// Live series per schema id; 0 marks a free slot.
    users: Vec<u32>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl Schemas {
    /// The id of the schema with this text and hash, added if new.
    pub fn intern(&mut self, text: &str, hash: u64) -> u32 {
        let list = &self.list;
        if let Some(&id) = self.index.find(hash, |&i| &*list[i as usize].text == text) {
            return id;
        }
        let schema = Arc::new(Schema::new(text));
        let list = Arc::make_mut(&mut self.list);
        let id = match self.free.pop() {
            Some(id) => {
                list[id as usize] = schema;
                id
            }
            None => {
                list.push(schema);
                self.users.push(0);
                (list.len() - 1) as u32
            }
        };
        let list = &self.list;
        self.index.insert_unique(hash, id, |&i| list[i as usize].hash);
        id
    }

    /// The schema `id`.
    #[inline]
    pub fn get(&self, id: u32) -> &Schema {
        &self.list[id as usize]
    }

    /// One more series uses `id`.
    pub fn acquire(&mut self, id: u32) {
        self.users[id as usize] += 1;
    }

    /// One series less uses `id`; the last one frees it.
    pub fn release(&mut self, id: u32) {
        let users = &mut self.users[id as usize];
        *users -= 1;
        if *users == 0 {
            let hash = self.list[id as usize].hash;
            if let Ok(e) = self.index.find_entry(hash, |&i| i == id) {
                e.remove();
            }
            self.free.push(id);
        }
    }

    /// The table as it is now, for a snapshot.
    pub fn shared(&self) -> Arc<Vec<Arc<Schema>>> {
        self.list.clone()
    }

    /// Number of schemas in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no schema is in use.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::cmp_keys;

    fn key(text: &str) -> (Schema, Vec<u8>) {
        let (s, v) = split(text);
        (Schema::new(&s), v)
    }

    fn text(k: &KeyRef<'_>) -> String {
        let mut out = Vec::new();
        k.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    const KEYS: [&str; 10] = [
        "fo",
        "foo",
        r#"foo{a="1"}"#,
        r#"foo{a="1",b=""}"#,
        r#"foo{a="1 ",b="x"}"#,
        r#"foo{a="10"}"#,
        r#"foo{a="\"q\\",c="}"}"#,
        r#"foo{ab="1"}"#,
        "foo_bar",
        r#"foo_bar{b="2"}"#,
    ];

    #[test]
    fn keys_round_trip_and_read_back() {
        for k in KEYS {
            let (s, v) = key(k);
            let r = KeyRef { schema: &s, values: &v };
            assert_eq!(text(&r), k);
            assert_eq!(r.to_string(), k);
            assert_eq!(r.name(), crate::series::name_of(k));
            assert_eq!(r.labels().collect::<Vec<_>>(), crate::series::labels_of(k).collect::<Vec<_>>());
        }
        let (s, v) = key(r#"m{a="x",b="y\"z"}"#);
        let r = KeyRef { schema: &s, values: &v };
        assert_eq!((r.label("b"), r.label("a"), r.label("c")), (Some(r#"y\"z"#), Some("x"), None));
        assert_eq!((s.label_name(0), s.label_name(1), s.text()), ("a", "b", r#"m{a="",b=""}"#));
    }

    #[test]
    fn long_values_get_longer_length_prefixes() {
        for len in [127, 128, 300, 20_000] {
            let value = "v".repeat(len);
            let mut blob = Vec::new();
            push_value(&mut blob, value.as_bytes());
            push_value(&mut blob, b"next");
            let got: Vec<&[u8]> = values(&blob).collect();
            assert_eq!(got, vec![value.as_bytes(), b"next"]);
        }
    }

    #[test]
    fn order_is_the_canonical_text_order() {
        let parsed: Vec<(Schema, Vec<u8>)> = KEYS.iter().map(|k| key(k)).collect();
        for (i, a) in KEYS.iter().enumerate() {
            for (j, b) in KEYS.iter().enumerate() {
                let ka = KeyRef { schema: &parsed[i].0, values: &parsed[i].1 };
                let kb = KeyRef { schema: &parsed[j].0, values: &parsed[j].1 };
                assert_eq!(ka.cmp_key(&kb), cmp_keys(a, b), "{a} vs {b}");
                assert_eq!(ka.same(&kb), a == b);
            }
        }
    }

    fn text_key(name: &str, labels: &[(usize, String)]) -> String {
        let mut key = name.to_owned();
        let mut labels = labels.to_vec();
        labels.sort();
        labels.dedup_by_key(|l| l.0);
        for (j, (n, v)) in labels.iter().enumerate() {
            key.push(if j == 0 { '{' } else { ',' });
            key.push_str(["x", "xy", "y"][*n]);
            key.push_str("=\"");
            crate::series::escape_label_value(&mut key, v, false);
            key.push('"');
        }
        if !labels.is_empty() {
            key.push('}');
        }
        key
    }

    proptest::proptest! {
        #[test]
        fn order_and_identity_follow_the_text(
            a in (0..3usize, proptest::collection::vec((0..3usize, "[ !#a0\"\\\\]{0,3}"), 0..3)),
            b in (0..3usize, proptest::collection::vec((0..3usize, "[ !#a0\"\\\\]{0,3}"), 0..3)),
        ) {
            let names = ["a", "a_b", "ab"];
            let (ta, tb) = (text_key(names[a.0], &a.1), text_key(names[b.0], &b.1));
            let ((sa, va), (sb, vb)) = (key(&ta), key(&tb));
            let (ka, kb) = (KeyRef { schema: &sa, values: &va }, KeyRef { schema: &sb, values: &vb });
            proptest::prop_assert_eq!(ka.to_string(), ta.clone());
            proptest::prop_assert_eq!(ka.cmp_key(&kb), cmp_keys(&ta, &tb));
            proptest::prop_assert_eq!(ka.same(&kb), ta == tb);
            proptest::prop_assert_eq!(ka.hash() == kb.hash(), ta == tb);
        }
    }

    #[test]
    fn odd_names_from_protobuf_do_not_panic() {
        for text in [r#"m{a=""=""}"#, r#"a=""{b=""}"#, r#"m{é=""é=""}"#, r#"m{=""}"#, "=\"\"", "{", r#"m{a="""#] {
            let s = Schema::new(text);
            let mut blob = Vec::new();
            for _ in 0..s.label_count() {
                push_value(&mut blob, b"v");
            }
            let k = KeyRef { schema: &s, values: &blob };
            let _ = (k.to_string(), k.labels().count(), k.label("a"), k.name());
            let (o, ob) = key(r#"m{a="1"}"#);
            let _ = k.cmp_key(&KeyRef { schema: &o, values: &ob });
        }
    }

    #[test]
    fn schemas_are_interned_and_freed() {
        let mut s = Schemas::default();
        let t = r#"m{a=""}"#;
        let a = s.intern(t, hash_schema(t));
        assert_eq!(s.intern(t, hash_schema(t)), a);
        s.acquire(a);
        let held = s.shared();
        s.release(a);
        assert!(s.is_empty());
        let u = r#"n{b=""}"#;
        let b = s.intern(u, hash_schema(u));
        assert_eq!(b, a, "the free slot is reused");
        assert_eq!(held[a as usize].text(), t, "a snapshot keeps its table");
        assert_eq!(s.get(b).text(), u);
    }
}
