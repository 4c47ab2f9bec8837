//! Aligned plain-text tables for the on-call commands, and the small formatters they share
//! (ages, durations, timestamps). Colour only when asked for (a terminal without `NO_COLOR`):
//! widths are measured on the plain text, so colour never shifts a column.

use std::fmt::Write as _;

/// How a cell is emphasised on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

/// One cell: text and tone.
#[derive(Clone, Debug)]
pub struct Cell {
    text: String,
    tone: Tone,
}

impl Cell {
    pub fn new(text: impl Into<String>, tone: Tone) -> Cell {
        Cell { text: text.into(), tone }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell::new(text, Tone::Plain)
    }
}

/// A table: a header and rows, columns separated by two spaces, the last column unpadded (it
/// holds the long free text: errors, messages).
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Table {
        Table { header, rows: Vec::new() }
    }

    pub fn row(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, ANSI-coloured when `colour`.
    pub fn render(&self, colour: bool) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let header = self.header.iter().map(|h| Cell::from(*h));
        for row in std::iter::once(header.collect::<Vec<_>>()).chain(self.rows.iter().cloned()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = if i + 1 < columns { widths[i] - cell.text.chars().count() } else { 0 };
                match (colour, cell.tone) {
                    (false, _) | (true, Tone::Plain) => line.push_str(&cell.text),
                    (true, tone) => {
                        let code = match tone {
                            Tone::Good => "32",
                            Tone::Warn => "33",
                            _ => "31;1",
                        };
                        let _ = write!(line, "\x1b[{code}m{}\x1b[0m", cell.text);
                    }
                }
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Whether to colour what goes to stdout: a terminal, and `NO_COLOR` (no-color.org) unset.
pub fn stdout_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// How long ago `then_ms` was at `now_ms`: `850ms ago`, `12s ago`, `3m05s ago`, `2h10m ago`,
/// `4d3h ago` (`in 2s` for a time ahead of this machine's clock).
pub fn age(then_ms: i64, now_ms: i64) -> String {
    let delta = now_ms - then_ms;
    let span = duration_ms(delta.unsigned_abs());
    if delta < 0 { format!("in {span}") } else { format!("{span} ago") }
}

/// A span of milliseconds, compact: `850ms`, `12s`, `3m05s`, `2h10m`, `4d3h`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// Seconds as a short duration: `4ms`, `1.25s`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 { format!("{:.0}ms", s * 1000.0) } else { format!("{s:.2}s") }
}

pub use crate::clock::rfc3339_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_colour_does_not_shift_them() {
        let mut t = Table::new(vec!["GROUP", "STATE", "ERROR"]);
        t.row(vec!["eu-west-1".into(), Cell::new("ok", Tone::Good), "-".into()]);
        t.row(vec!["us".into(), Cell::new("DOWN", Tone::Bad), "connect: connection refused".into()]);
        let plain = t.render(false);
        assert_eq!(
            plain,
            "GROUP      STATE  ERROR\n\
             eu-west-1  ok     -\n\
             us         DOWN   connect: connection refused\n"
        );
        let coloured = t.render(true);
        assert!(coloured.contains("\x1b[31;1mDOWN\x1b[0m   connect"), "{coloured:?}");
        let stripped = coloured.replace("\x1b[32m", "").replace("\x1b[31;1m", "").replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn ages_and_durations_read_well() {
        assert_eq!(age(1_000, 1_850), "850ms ago");
        assert_eq!(age(0, 12_400), "12s ago");
        assert_eq!(age(0, 185_000), "3m05s ago");
        assert_eq!(age(0, 7_800_000), "2h10m ago");
        assert_eq!(age(0, 4 * 86_400_000 + 3 * 3_600_000), "4d3h ago");
        assert_eq!(age(3_000, 1_000), "in 2s");
        assert_eq!(seconds(0.0042), "4ms");
        assert_eq!(seconds(1.254), "1.25s");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_795_329_252_345), "2026-11-22T06:34:12.345Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
