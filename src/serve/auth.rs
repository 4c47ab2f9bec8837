//! Request authentication: HTTP Basic or a bearer token in front of every endpoint.
//!
//! [`protect`] wraps a [`Router`] in an axum middleware
//! (<https://docs.rs/axum/0.8/axum/middleware/fn.from_fn_with_state.html>) that answers
//! `401 Unauthorized` with a `WWW-Authenticate` challenge ([RFC 7617] for Basic, [RFC 6750] for
//! Bearer) when the `Authorization` header is missing or wrong. Secrets are compared in constant time
//! (`subtle`), so response timing does not reveal how many leading bytes of a guess were right; only
//! the length of a mismatching credential can leak, which is accepted practice.
//!
//! `/-/healthy` and `/-/ready` stay open, as in Prometheus: load balancers and Kubernetes probes
//! check them without credentials, and they reveal nothing but liveness.
//!
//! [RFC 7617]: https://www.rfc-editor.org/rfc/rfc7617
//! [RFC 6750]: https://www.rfc-editor.org/rfc/rfc6750

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, StatusCode, header};
use subtle::ConstantTimeEq;

/// Paths served without credentials (health checks of load balancers and orchestrators).
pub const OPEN_PATHS: &[&str] = &["/-/healthy", "/-/ready"];

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "promfed";

/// Which credentials requests must carry.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// No authentication.
    None,
    /// HTTP Basic authentication with one user.
    Basic {
        /// Expected user name.
        username: String,
        /// Expected password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Expected token.
        token: String,
    },
}

// Hand-written so secrets never end up in logs through `{:?}`.
impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Self::Bearer { .. } => f.debug_struct("Bearer").field("token", &"<redacted>").finish(),
        }
    }
}

/// Why a request was refused; the cause is logged at debug, the client only sees 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("request has no authorization header")]
    Missing,
    /// The header does not use the expected scheme or is not decodable.
    #[error("authorization header is malformed or uses another scheme than {expected}")]
    Malformed {
        /// The scheme expected ("Basic" or "Bearer").
        expected: &'static str,
    },
    /// Well-formed but wrong credentials.
    #[error("wrong {expected} credentials")]
    Wrong {
        /// The scheme expected.
        expected: &'static str,
    },
}

/// Returns `router` with every request, except those for [`OPEN_PATHS`], checked against `auth`.
///
/// With [`AuthSettings::None`] the router is returned unchanged. Call this after all routes are
/// added: like any `Router::layer`, the check covers the routes present at that point.
pub fn protect(router: Router, auth: AuthSettings) -> Router {
    if auth == AuthSettings::None {
        return router;
    }
    router.layer(middleware::from_fn_with_state(Arc::new(auth), require_auth))
}

async fn require_auth(State(auth): State<Arc<AuthSettings>>, req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let header = req.headers().get(header::AUTHORIZATION);
    match check(&auth, header) {
        Ok(()) => next.run(req).await,
        Err(err) => {
            tracing::debug!(path = req.uri().path(), reason = %err, "unauthorized request");
            challenge(&auth)
        }
    }
}

fn challenge(auth: &AuthSettings) -> Response {
    let scheme = match auth {
        AuthSettings::Bearer { .. } => "Bearer",
        AuthSettings::Basic { .. } | AuthSettings::None => "Basic",
    };
    let value = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\"")).expect("the challenge is ASCII");
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, value)], "unauthorized\n").into_response()
}

/// Checks an `Authorization` header value against `auth`.
fn check(auth: &AuthSettings, header: Option<&HeaderValue>) -> Result<(), AuthError> {
    let (expected, want_scheme) = match auth {
        AuthSettings::None => return Ok(()),
        AuthSettings::Basic { .. } => ("Basic", "basic"),
        AuthSettings::Bearer { .. } => ("Bearer", "bearer"),
    };
    let header = header.ok_or(AuthError::Missing)?;
    let malformed = AuthError::Malformed { expected };
    let value = header.to_str().map_err(|_| malformed)?;
    let (scheme, credentials) = value.trim().split_once(' ').ok_or(malformed)?;
    // Auth schemes are case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case(want_scheme) {
        return Err(malformed);
    }
    let credentials = credentials.trim_start();
    let ok = match auth {
        AuthSettings::None => unreachable!("returned above"),
        AuthSettings::Bearer { token } => ct_eq(credentials.as_bytes(), token.as_bytes()),
        AuthSettings::Basic { username, password } => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(credentials).map_err(|_| malformed)?;
            // The user name cannot contain ':' (RFC 7617 §2); the password can.
            let colon = decoded.iter().position(|&b| b == b':').ok_or(malformed)?;
            let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
            // `&` rather than `&&`: compare both, so timing does not tell which one was wrong.
            ct_eq(user, username.as_bytes()) & ct_eq(pass, password.as_bytes())
        }
    };
    if ok { Ok(()) } else { Err(AuthError::Wrong { expected }) }
}

fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests;
