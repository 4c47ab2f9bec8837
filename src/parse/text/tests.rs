use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Snippet, TextError, TextErrorKind, TextStream, parse_text};
use crate::parse::{MetricType, RawLabel, Sink};

/// Records what a parser pushes, as one readable line per event, for golden comparisons.
#[derive(Debug, Default)]
pub(crate) struct Collect {
    pub events: Vec<String>,
    pub samples: usize,
    pub families: usize,
    /// `name{sorted labels}` of every sample, with text escapes undone.
    pub series: BTreeSet<String>,
}

impl Sink for Collect {
    fn family(&mut self, family: &str, metric_type: MetricType) {
        self.families += 1;
        self.events.push(format!("TYPE {family} {}", metric_type.as_str()));
    }

    fn sample(&mut self, name: &str, labels: &[RawLabel<'_>], value: f64, timestamp_ms: Option<i64>) {
        self.samples += 1;
        let mut line = format!("{name}{{");
        for (i, l) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let mark = if l.escaped { "" } else { "!" };
            write!(line, "{sep}{}{mark}=\"{}\"", l.name, l.value).unwrap();
        }
        write!(line, "}} {value:?}").unwrap();
        if let Some(ts) = timestamp_ms {
            write!(line, " @{ts}").unwrap();
        }
        self.events.push(line);

        let mut sorted: Vec<(String, String)> = labels
            .iter()
            .map(|l| {
                let value = if l.escaped { unescape(l.value) } else { l.value.to_owned() };
                (l.name.to_owned(), value)
            })
            .collect();
        sorted.sort();
        self.series.insert(format!("{name}{sorted:?}"));
    }
}

/// Prometheus' label value unescaping: `\\`, `\"`, `\n`; other pairs stay as they are.
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse(body: &str) -> Result<Collect, TextError> {
    let mut sink = Collect::default();
    parse_text(body.as_bytes(), &mut sink)?;
    Ok(sink)
}

/// Parses `body` and compares the events with `want` (one per line), printing both on mismatch.
#[track_caller]
fn golden(body: &str, want: &str) {
    let got = parse(body).unwrap_or_else(|e| panic!("{e}\nbody:\n{body}")).events.join("\n");
    let want = want.trim().lines().map(str::trim).collect::<Vec<_>>().join("\n");
    assert!(got == want, "events differ\n--- got\n{got}\n--- want\n{want}\n--- body\n{body}");
}

#[track_caller]
fn fails(body: &str, line: usize, kind: TextErrorKind) {
    match parse(body) {
        Ok(sink) => panic!("parsed, expected line {line}: {kind}\n{:#?}", sink.events),
        Err(e) => assert_eq!(e, TextError { line, kind }, "body: {body:?}"),
    }
}

fn snippet(s: &str) -> Snippet {
    Snippet::new(s.as_bytes())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---- real captures -------------------------------------------------------------------------
//
// Expected counts were taken independently with grep, e.g. for the federate capture:
//   grep -vc '^#' federate_prometheus_2.42.txt   -> 940 (no blank lines: grep -c '^$' -> 0)
//   grep -c '^# TYPE' federate_prometheus_2.42.txt -> 497

fn parse_fixture(name: &str) -> Collect {
    let mut sink = Collect::default();
    parse_text(&fixture(name), &mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
    sink
}

#[test]
fn federate_capture() {
    let sink = parse_fixture("federate_prometheus_2.42.txt");
    assert_eq!(sink.samples, 940);
    assert_eq!(sink.families, 497);
    // The two recording rules of tests/fixtures/rules.yml: the reason we have our own parser.
    for name in ["instance:node_cpu_seconds:rate1m{", "job:scrape_duration_seconds:max{"] {
        assert!(sink.events.iter().any(|e| e.starts_with(name)), "{name} missing");
    }
    // /federate always sets timestamps and the external labels.
    let samples: Vec<_> = sink.events.iter().filter(|e| !e.starts_with("TYPE ")).collect();
    assert!(samples.iter().all(|e| e.contains(" @") && e.contains("replica=\"a\"")));
    assert_eq!(sink.series.len(), 940, "series are unique");
}

#[test]
fn node_exporter_capture() {
    // grep -vc '^#' -> 502 samples; grep -c '^# TYPE' -> 283; grep -c '^# HELP' -> 283.
    let sink = parse_fixture("node_exporter_1.5.txt");
    assert_eq!(sink.samples, 502);
    assert_eq!(sink.families, 283);
    assert!(sink.events.contains(&"TYPE go_gc_duration_seconds summary".to_owned()));
    // No timestamps on a direct scrape.
    assert!(sink.events.iter().all(|e| !e.contains(" @")));
}

#[test]
fn prometheus_self_capture() {
    // grep -vc '^#' -> 442 samples; grep -c '^# TYPE' -> 211.
    let sink = parse_fixture("prometheus_2.42_self.txt");
    assert_eq!(sink.samples, 442);
    assert_eq!(sink.families, 211);
    assert!(sink.events.iter().any(|e| e.contains("NaN")), "summary quantiles without data are NaN");
}

#[test]
fn truncated_fixture_fails_before_the_sink() {
    let body = fixture("federate_prometheus_2.42.txt");
    let mut cut = body.len() / 2;
    while body[cut - 1] == b'\n' {
        cut += 1;
    }
    let half = &body[..cut];
    let newlines = half.iter().filter(|&&b| b == b'\n').count();
    let mut sink = Collect::default();
    let err = parse_text(half, &mut sink).unwrap_err();
    assert_eq!(err, TextError { line: newlines + 1, kind: TextErrorKind::Truncated });
    assert_eq!(err.to_string(), format!("line {}: truncated: last line has no newline", newlines + 1));
    assert!(sink.events.is_empty(), "nothing of a truncated body reaches the sink");
}

// ---- golden cases --------------------------------------------------------------------------

#[test]
fn empty_and_blank_bodies() {
    golden("", "");
    golden("\n\n  \t \n", "");
    golden("# just a comment\n#\n# EOF\n", "");
}

#[test]
fn escapes_are_kept_raw() {
    golden(
        r#"m{a="q\"uote",b="back\\slash",c="new\nline",d="tab\tx",e="ü\é"} 1
"#,
        r#"m{a="q\"uote",b="back\\slash",c="new\nline",d="tab\tx",e="ü\é"} 1.0"#,
    );
    assert_eq!(unescape(r#"q\"uote\\ \n \t"#), "q\"uote\\ \n \\t");
}

#[test]
fn special_values() {
    golden(
        "a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf -infinity\ng +INF\nh 1e-5\ni -0.5E+3\nj .5\nk 5.\nl 0\n",
        "a{} NaN
         b{} inf
         c{} -inf
         d{} inf
         e{} NaN
         f{} -inf
         g{} inf
         h{} 1e-5
         i{} -500.0
         j{} 0.5
         k{} 5.0
         l{} 0.0",
    );
}

#[test]
fn timestamps() {
    golden(
        "a 1 1795314944783\nb 2\nc 3 -1000\nd 4 0\ne 5 -9223372036854775808\n",
        "a{} 1.0 @1795314944783
         b{} 2.0
         c{} 3.0 @-1000
         d{} 4.0 @0
         e{} 5.0 @-9223372036854775808",
    );
}

#[test]
fn whitespace_and_trailing_comma() {
    golden(
        "  m { a = \"1\" ,\tb=\"2\", } \t 7 \t 100 \t\nn{a=\"1\",}8\n\tp{}  9\nq 10\t\n",
        r#"m{a="1",b="2"} 7.0 @100
           n{a="1"} 8.0
           p{} 9.0
           q{} 10.0"#,
    );
}

#[test]
fn names_with_colons_and_duplicates() {
    golden(
        "instance:node_cpu_seconds:rate1m{mode=\"idle\"} 0.9\n:x 1\n_y{a=\"1\",a=\"2\"} 2\n",
        r#"instance:node_cpu_seconds:rate1m{mode="idle"} 0.9
           :x{} 1.0
           _y{a="1",a="2"} 2.0"#,
    );
}

#[test]
fn help_type_histogram_summary() {
    golden(
        r#"# HELP h A histogram with \\ and \n escapes and "quotes".
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="+Inf"} 3
h_sum 4.5
h_count 3
# HELP s
# HELP s	 tabbed help
#	TYPE	s	summary
s{quantile="0.99"} NaN
s_sum 0
s_count 0
# TYPE u untyped
# TYPE k unknown
# TYPE g   gauge  
#TYPE ignored nonsense
# TYPEfoo ignored
# HELPER ignored
# EOF
"#,
        r#"TYPE h histogram
           h_bucket{le="0.5"} 1.0
           h_bucket{le="+Inf"} 3.0
           h_sum{} 4.5
           h_count{} 3.0
           TYPE s summary
           s{quantile="0.99"} NaN
           s_sum{} 0.0
           s_count{} 0.0
           TYPE u untyped
           TYPE k untyped
           TYPE g gauge"#,
    );
}

// ---- errors --------------------------------------------------------------------------------

#[test]
fn errors_carry_the_line_and_what_was_wrong() {
    use TextErrorKind::*;
    let ok = "# TYPE a gauge\na 1\n";
    let cases: Vec<(String, usize, TextErrorKind)> = vec![
        (format!("{ok}a{{1x=\"1\"}} 1\n"), 3, InvalidLabelName),
        (format!("{ok}a{{x-y=\"1\"}} 1\n"), 3, InvalidLabelName),
        (format!("{ok}a{{x \"1\"}} 1\n"), 3, ExpectedEquals),
        (format!("{ok}a{{x=1}} 1\n"), 3, ExpectedQuote),
        (format!("{ok}a{{x=\"1\" y=\"2\"}} 1\n"), 3, ExpectedCommaOrBrace),
        (format!("{ok}a{{x=\"1\",,}} 1\n"), 3, InvalidLabelName),
        (format!("{ok}a{{x=\"1\"\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a{{x=\"1\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a{{x=\"1\\\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a{{x=\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a{{x\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a{{\n"), 3, UnexpectedEndOfLine),
        (format!("{ok}a abc\n"), 3, InvalidValue(snippet("abc"))),
        (format!("{ok}a\n"), 3, MissingValue),
        (format!("{ok}a{{}}\n"), 3, MissingValue),
        (format!("{ok}a{{}}   \n"), 3, MissingValue),
        (format!("{ok}a 1e400\n"), 3, InvalidValue(snippet("1e400"))),
        (format!("{ok}a +nan\n"), 3, InvalidValue(snippet("+nan"))),
        (format!("{ok}a 0x1p3\n"), 3, InvalidValue(snippet("0x1p3"))),
        (format!("{ok}a 1_000\n"), 3, InvalidValue(snippet("1_000"))),
        (format!("{ok}a 1\r\n"), 3, InvalidValue(snippet("1\r"))),
        (format!("{ok}a 1 1.5\n"), 3, InvalidTimestamp(snippet("1.5"))),
        (format!("{ok}a 1 +5\n"), 3, InvalidTimestamp(snippet("+5"))),
        (format!("{ok}a 1 -\n"), 3, InvalidTimestamp(snippet("-"))),
        (format!("{ok}a 1 9223372036854775808\n"), 3, InvalidTimestamp(snippet("9223372036854775808"))),
        (format!("{ok}a 1 2 3\n"), 3, TrailingText(snippet("3"))),
        (format!("{ok}1a 1\n"), 3, InvalidMetricName),
        (format!("{ok}a-b 1\n"), 3, InvalidMetricName),
        (format!("{ok}{{a=\"1\"}} 1\n"), 3, InvalidMetricName),
        (format!("{ok}# TYPE 1a gauge\n"), 3, InvalidMetricName),
        (format!("{ok}# HELP a-b text\n"), 3, InvalidMetricName),
        (format!("{ok}# TYPE a \n"), 3, MissingType),
        (format!("{ok}# TYPE a gauges\n"), 3, UnknownType(snippet("gauges"))),
        (format!("{ok}# TYPE a counter extra\n"), 3, UnknownType(snippet("counter extra"))),
        (format!("{ok}\n\na{{x=\"\u{e9}\"}} 1\nb abc\n"), 6, InvalidValue(snippet("abc"))),
        (format!("{ok}a 1\nb 2"), 4, Truncated),
    ];
    for (body, line, kind) in cases {
        fails(&body, line, kind);
    }
    // Invalid UTF-8 needs bytes that a &str cannot hold.
    let body = b"a 1\nb{x=\"ok\"} 1\nc{x=\"\xff\xfe\"} 1\n";
    let err = parse_text(body, &mut Collect::default()).unwrap_err();
    assert_eq!(err, TextError { line: 3, kind: InvalidUtf8 });
    let err = parse_text(b"\xffd 1\n", &mut Collect::default()).unwrap_err();
    assert_eq!(err, TextError { line: 1, kind: InvalidMetricName });
}

#[test]
fn error_messages_read_well() {
    let cases = [
        ("a 1\nb{1=\"x\"} 2\n", "line 2: invalid label name"),
        ("a 1\nb 2\nc 3\nd 4\ne 5\nf 6\ng abc\n", "line 7: invalid value \"abc\""),
        ("a 1\nb 2\nc{x=\"1\",\n", "line 3: unexpected end of line inside label set"),
        ("# TYPE a nope\n", "line 1: unknown metric type \"nope\""),
        ("a 1 2 x\n", "line 1: unexpected text after timestamp \"x\""),
        ("a 1", "line 1: truncated: last line has no newline"),
    ];
    for (body, want) in cases {
        assert_eq!(parse(body).err().map(|e| e.to_string()).as_deref(), Some(want), "{body:?}");
    }
    let long = format!("a {}x\n", "9".repeat(100));
    let msg = parse(&long).unwrap_err().to_string();
    assert!(msg.len() < 80 && msg.ends_with("…\""), "snippets are short: {msg}");
}

#[test]
fn huge_garbage_line_fails_fast() {
    const SIZE: usize = 10 << 20;
    let mut rng = fastrand::Rng::with_seed(42);
    let random: Vec<u8> = (0..SIZE).map(|_| rng.u8(..)).map(|b| if b == b'\n' { b'x' } else { b }).collect();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("random", random.clone()),
        ("one long name", vec![b'a'; SIZE]),
        ("one long value", [b"a ".as_slice(), &vec![b'9'; SIZE]].concat()),
        ("one long label value", [b"a{b=\"".as_slice(), &vec![b'\\'; SIZE]].concat()),
        ("blanks", [b"a".as_slice(), &vec![b' '; SIZE]].concat()),
    ];
    for (what, mut body) in bodies {
        body.push(b'\n');
        let start = Instant::now();
        let err = parse_text(&body, &mut Collect::default());
        assert!(matches!(err, Err(TextError { line: 1, .. })), "{what}: {err:?}");
        // Not a speed test (benches/parse.rs is): a parser that goes back over the line would
        // take hours on 10 MiB; linear takes well under a second, so a loaded CI machine that
        // is 30x slower still passes.
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: took {:?} (quadratic?)", start.elapsed());
        // Without the final newline it is a truncated body.
        body.pop();
        let err = parse_text(&body, &mut Collect::default()).unwrap_err();
        assert_eq!(err.kind, TextErrorKind::Truncated, "{what}");
    }
}

/// Feeds `body` to a [`TextStream`] in chunks of the given sizes (cycled).
fn parse_streamed(body: &[u8], sizes: &[usize]) -> Result<Collect, TextError> {
    let mut sink = Collect::default();
    let mut stream = TextStream::default();
    let mut rest = body;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        stream.feed(chunk, &mut sink)?;
        rest = tail;
    }
    stream.finish()?;
    Ok(sink)
}

/// The scraper parses bodies as they arrive: every way of cutting a real capture into chunks
/// gives what the whole-body parse gives, and a truncated body still fails.
#[test]
fn streamed_chunks_parse_like_the_whole_body() {
    for name in ["federate_prometheus_2.42.txt", "node_exporter_1.5.txt"] {
        let body = fixture(name);
        let whole = parse_fixture(name).events;
        for sizes in [&[1][..], &[7, 300], &[4096], &[65536, 3], &[body.len()]] {
            let streamed = parse_streamed(&body, sizes).unwrap_or_else(|e| panic!("{name} {sizes:?}: {e}"));
            assert!(streamed.events == whole, "{name} in chunks of {sizes:?}");
        }
        let cut = &body[..body.len() - 2];
        for sizes in [&[1][..], &[4096]] {
            let err = parse_streamed(cut, sizes).expect_err("a truncated body fails");
            assert_eq!(err.kind, TextErrorKind::Truncated);
            assert_eq!(err, parse_text(cut, &mut Collect::default()).unwrap_err(), "same line as the whole-body parse");
        }
    }
}

proptest! {
    /// Same events, or the same error at the same line, however the body is cut.
    #[test]
    fn streamed_equals_whole(body in "([a-z_:]{0,6}[{}=\",# \t\\\\\n.eE+-]?[0-9]{0,3}){0,40}\n?", sizes in proptest::collection::vec(1usize..40, 1..6)) {
        let whole = parse(&body).map(|c| c.events);
        let streamed = parse_streamed(body.as_bytes(), &sizes).map(|c| c.events);
        if body.is_empty() || body.ends_with('\n') {
            prop_assert_eq!(whole, streamed);
        } else {
            // The whole-body parse refuses a truncated body before parsing; the stream may
            // meet a bad line first. Either way: refused.
            prop_assert!(streamed.is_err());
        }
    }

    #[test]
    fn never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_text(&body, &mut Collect::default());
    }

    #[test]
    fn never_panics_on_near_valid_text(body in "([a-z_:]{0,6}[{}=\",# \t\\\\\n.eE+-]?[0-9]{0,3}){0,40}\n?") {
        let _ = parse_text(body.as_bytes(), &mut Collect::default());
    }

    #[test]
    fn value_and_timestamp_round_trip(v in any::<f64>(), ts in any::<i64>()) {
        let body = format!("m{{a=\"b\"}} {v:?} {ts}\n");
        let mut sink = Collect::default();
        parse_text(body.as_bytes(), &mut sink).unwrap();
        prop_assert_eq!(sink.samples, 1);
        let line = &sink.events[0];
        let want = format!("m{{a=\"b\"}} {v:?} @{ts}");
        prop_assert_eq!(line, &want);
    }
}
