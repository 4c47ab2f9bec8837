//! Reading a canonical series key, the text `name{a="1",b="2"}` that [`crate::series`] builds
//! (labels sorted, values escaped as in the text format): its name, its labels, its order.

/// Iterates the `(name, escaped value)` pairs of a canonical key, after the metric name.
///
/// Only ever called on keys [`crate::series`] built, so the format is known to be well formed; a
/// malformed key simply ends the iteration early.
pub fn labels_of(key: &str) -> LabelIter<'_> {
    let rest = match key.find('{') {
        Some(i) => &key[i + 1..],
        None => "",
    };
    LabelIter { rest }
}

/// The metric name of a canonical key.
pub fn name_of(key: &str) -> &str {
    match key.find('{') {
        Some(i) => &key[..i],
        None => key,
    }
}

/// Splits a canonical key into its metric name and the rest (`{...}` or empty).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_at(key.find('{').unwrap_or(key.len()))
}

/// The order series are served in: by metric name, then by labels, so that every metric family
/// is contiguous (plain string order would put `foo_bar{…}` between `foo` and `foo{…}`).
pub fn cmp_keys(a: &str, b: &str) -> std::cmp::Ordering {
    split_key(a).cmp(&split_key(b))
}

/// See [`labels_of`].
pub struct LabelIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let eq = self.rest.find("=\"")?;
        let name = &self.rest[..eq];
        let body = &self.rest[eq + 2..];
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        if i >= bytes.len() {
            self.rest = "";
            return None;
        }
        let value = &body[..i];
        // Skip the closing quote and the following `,` or `}`.
        self.rest = body.get(i + 2..).unwrap_or("");
        Some((name, value))
    }
}
