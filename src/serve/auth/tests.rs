use axum::body::Body;
use base64::Engine as _;
use http::Request;
use tower::ServiceExt;

use super::*;
use crate::serve::test_support::test_router;

fn basic() -> AuthSettings {
    AuthSettings::Basic { username: "prom".to_owned(), password: "s3cr:et".to_owned() }
}

fn bearer() -> AuthSettings {
    AuthSettings::Bearer { token: "tok-123".to_owned() }
}

fn basic_header(user: &str, pass: &str) -> String {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {creds}")
}

/// Status and `WWW-Authenticate` of a GET to `path` through `protect(test_router(), auth)`.
async fn call(auth: AuthSettings, path: &str, authorization: Option<&str>) -> (u16, Option<String>) {
    let mut req = Request::get(path);
    if let Some(value) = authorization {
        req = req.header(header::AUTHORIZATION, value);
    }
    let resp = protect(test_router(), auth).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let challenge = resp.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), challenge)
}

const BASIC_CHALLENGE: &str = "Basic realm=\"promfed\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"promfed\"";

#[tokio::test]
async fn basic_auth() {
    let unauthorized = (401, Some(BASIC_CHALLENGE.to_owned()));
    assert_eq!(call(basic(), "/", None).await, unauthorized);
    assert_eq!(call(basic(), "/", Some(&basic_header("prom", "wrong"))).await, unauthorized);
    assert_eq!(call(basic(), "/", Some(&basic_header("other", "s3cr:et"))).await, unauthorized);
    assert_eq!(call(basic(), "/", Some("Basic !!!not-base64")).await, unauthorized);
    assert_eq!(call(basic(), "/", Some("Bearer tok-123")).await, unauthorized);
    // A password containing ':' is split at the first colon only.
    assert_eq!(call(basic(), "/", Some(&basic_header("prom", "s3cr:et"))).await, (200, None));
    // Scheme names are case-insensitive.
    let lower = basic_header("prom", "s3cr:et").replacen("Basic", "basic", 1);
    assert_eq!(call(basic(), "/", Some(&lower)).await, (200, None));
}

#[tokio::test]
async fn bearer_auth() {
    let unauthorized = (401, Some(BEARER_CHALLENGE.to_owned()));
    assert_eq!(call(bearer(), "/", None).await, unauthorized);
    assert_eq!(call(bearer(), "/", Some("Bearer tok-12")).await, unauthorized);
    assert_eq!(call(bearer(), "/", Some("Bearer tok-1234")).await, unauthorized);
    assert_eq!(call(bearer(), "/", Some(&basic_header("prom", "tok-123"))).await, unauthorized);
    assert_eq!(call(bearer(), "/", Some("Bearer tok-123")).await, (200, None));
}

#[tokio::test]
async fn health_paths_stay_open() {
    for auth in [basic(), bearer()] {
        assert_eq!(call(auth.clone(), "/-/healthy", None).await, (200, None));
        // `/-/ready` is not routed by the test router: open means "not 401".
        assert_eq!(call(auth.clone(), "/-/ready", None).await, (404, None));
        assert_eq!(call(auth, "/-/healthy/../", None).await.0, 401);
    }
}

#[tokio::test]
async fn no_auth_leaves_the_router_alone() {
    assert_eq!(call(AuthSettings::None, "/", None).await, (200, None));
}

#[test]
fn debug_hides_secrets() {
    let shown = format!("{:?} {:?}", basic(), bearer());
    assert!(!shown.contains("s3cr") && !shown.contains("tok-123"), "{shown}");
    assert!(shown.contains("prom"), "{shown}");
}
