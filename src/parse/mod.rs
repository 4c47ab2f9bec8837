//! Decoding of scraped exposition bodies into samples.
//!
//! Two formats come back from a Prometheus `/federate`: the text format 0.0.4 ([`text`]) and
//! length-delimited `io.prometheus.client.MetricFamily` protobuf ([`protobuf`]). Both push what
//! they decode into a [`Sink`] so that the caller decides what to keep and nothing is allocated
//! per sample by the parser itself.
//!
//! The text parser is our own: `prometheus-parse` drops every series whose name contains `:`
//! (recording rules, the bulk of typical `/federate` content), mangles label values containing
//! `,` `=` `}` and replaces absent timestamps with "now" (see `../shared/CRATES.md` and the
//! `parse` benchmark, which keeps both side by side).

pub mod proto;
pub mod protobuf;
pub mod sample;
pub mod text;

pub use protobuf::{ProtobufError, parse_protobuf_delimited};
pub use sample::{MetricType, RawLabel, Sink, utf8};
pub use text::{TextError, TextStream, parse_text};
