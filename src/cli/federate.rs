//! `promfed federate`: fetch `/federate` from a running promfed with the given `match[]`
//! selectors and print what it serves, decoded by promfed's own parsers: a count, then one line
//! per series in promfed's order (by name, then labels), value and time.

use super::api::{Api, ApiError};
use super::args::FederateFormat;
use super::table::{age, rfc3339_ms};
use crate::parse::{parse_protobuf_delimited, parse_text};
use crate::render::{PROTOBUF_CONTENT_TYPE, write_value};
use crate::series::{BatchBuilder, Identity, cmp_keys};
use reqwest::Method;

/// One served series.
#[derive(Debug, PartialEq)]
pub struct Line {
    pub key: String,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Fetches and decodes; returns the series sorted, and what to print above them.
pub async fn fetch(api: &Api, selectors: &[String], format: FederateFormat) -> Result<(String, Vec<Line>), ApiError> {
    let mut url = api.url(&["federate"]);
    url.query_pairs_mut().extend_pairs(selectors.iter().map(|s| ("match[]", s)));
    let accept = match format {
        FederateFormat::Text => "text/plain;version=0.0.4",
        FederateFormat::Protobuf => PROTOBUF_CONTENT_TYPE,
    };
    let answer = api.send(Method::GET, url, accept, None).await?;
    let protobuf = answer.content_type.starts_with("application/vnd.google.protobuf");
    let lines = decode(&answer.body, protobuf).map_err(|reason| ApiError::Body { url: answer.url.clone(), reason })?;
    let header = format!(
        "{} series from {} ({}, {} bytes)",
        lines.len(),
        answer.url,
        if protobuf { "protobuf" } else { "text" },
        answer.body.len()
    );
    Ok((header, lines))
}

/// Decodes a body, sorted as promfed serves series.
pub fn decode(body: &[u8], protobuf: bool) -> Result<Vec<Line>, String> {
    let identity = Identity::default();
    let mut builder = BatchBuilder::new(&identity, body.len());
    if protobuf {
        parse_protobuf_delimited(body, &mut builder).map_err(|e| format!("protobuf body does not parse: {e}"))?;
    } else {
        parse_text(body, &mut builder).map_err(|e| format!("text body does not parse: {e}"))?;
    }
    let batch = builder.finish();
    let mut lines: Vec<Line> = batch
        .entries()
        .iter()
        .map(|e| Line { key: batch.key(e), value: e.value, timestamp_ms: e.timestamp_ms })
        .collect();
    lines.sort_by(|a, b| cmp_keys(&a.key, &b.key));
    Ok(lines)
}

/// The lines as printed: series, value, and time with its age at `now_ms`.
pub fn render(header: &str, lines: &[Line], now_ms: i64) -> String {
    let mut out = format!("{header}\n");
    let width = lines.iter().map(|l| l.key.chars().count()).max().unwrap_or(0).min(100);
    let values: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut v = Vec::new();
            write_value(&mut v, l.value);
            String::from_utf8_lossy(&v).into_owned()
        })
        .collect();
    let value_width = values.iter().map(String::len).max().unwrap_or(0);
    for (l, value) in lines.iter().zip(values) {
        let line = match l.timestamp_ms {
            Some(t) => format!("{:<width$}  {value:<value_width$}  {} ({})", l.key, rfc3339_ms(t), age(t, now_ms)),
            None => format!("{:<width$}  {value}", l.key),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_sorted_by_name_then_labels_with_value_and_time() {
        let body = b"# TYPE up untyped\nup{job=\"b\",instance=\"x\"} 1 1795329252345\nup{instance=\"a\",job=\"a\"} 0 1795329251000\n\
                     go_goroutines 42\nnode_temp{zone=\"z\"} +Inf 1795329252000\n";
        let lines = decode(body, false).unwrap();
        let text = render("4 series", &lines, 1_795_329_253_345);
        assert_eq!(
            text,
            "4 series
go_goroutines             42
node_temp{zone=\"z\"}       +Inf  2026-11-22T06:34:12.000Z (1s ago)
up{instance=\"a\",job=\"a\"}  0     2026-11-22T06:34:11.000Z (2s ago)
up{instance=\"x\",job=\"b\"}  1     2026-11-22T06:34:12.345Z (1s ago)
"
        );
        assert!(decode(b"up{", false).unwrap_err().starts_with("text body does not parse"));
    }
}
