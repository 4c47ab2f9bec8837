//! Text exposition format 0.0.4 parser (placeholder until the real parser lands).

use super::Sink;

/// A text body that could not be parsed, with the 1-based line where it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct TextError {
    pub line: usize,
    pub kind: TextErrorKind,
}

/// What was wrong on the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextErrorKind {
    #[error("not implemented")]
    Unimplemented,
}

/// Parses a whole text-format body into `sink`.
pub fn parse_text(_body: &[u8], _sink: &mut impl Sink) -> Result<(), TextError> {
    Err(TextError { line: 0, kind: TextErrorKind::Unimplemented })
}
