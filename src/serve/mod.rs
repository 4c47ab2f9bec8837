//! Serving promfed over HTTP(S), independent of the endpoints it serves.
//!
//! The endpoints (`/federate`, the API, health) are an axum `Router` built elsewhere; this module
//! puts it on the network:
//! - [`app`]: the endpoints themselves (`/federate`, `/metrics`, health, status and leader API);
//! - [`state`]: what the endpoints share: state, errors, Prometheus' JSON envelope;
//! - [`status`]: Prometheus' status endpoints (`status/config`, `status/flags`, `targets`);
//! - [`tls`]: certificate, key and client-CA files turned into a rustls config, hot-reloaded on change;
//! - [`listener`]: the accept loop — connection cap, TLS handshake, HTTP/1.1 + h2, graceful drain;
//! - [`request_target`]: request targets sent unencoded (`?match[]={job="node"}`) percent-encoded
//!   below hyper, over HTTP/1.1 and h2, so they are answered as Prometheus answers them;
//! - [`auth`]: Basic or bearer authentication in front of the router, health paths left open.

pub mod app;
pub mod auth;
pub mod listener;
pub mod request_target;
pub mod state;
pub mod status;
pub mod tls;

#[cfg(test)]
mod test_support;

pub use auth::{AuthError, AuthSettings, OPEN_PATHS, protect};
pub use listener::{ServeOptions, serve};
pub use request_target::EncodedTargets;
pub use tls::{TlsError, TlsReloader, TlsSettings, TlsVersion, install_crypto_provider};
