//! Length-delimited `io.prometheus.client.MetricFamily` decoder (placeholder).

use super::Sink;

/// A protobuf body that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protobuf message {index} at byte {offset}: {kind}")]
pub struct ProtobufError {
    /// 0-based index of the MetricFamily message that failed.
    pub index: usize,
    /// Byte offset in the body where that message starts.
    pub offset: usize,
    pub kind: ProtobufErrorKind,
}

/// What was wrong with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufErrorKind {
    #[error("not implemented")]
    Unimplemented,
}

/// Decodes a whole length-delimited protobuf body into `sink`.
pub fn parse_protobuf_delimited(_body: &[u8], _sink: &mut impl Sink) -> Result<(), ProtobufError> {
    Err(ProtobufError { index: 0, offset: 0, kind: ProtobufErrorKind::Unimplemented })
}
