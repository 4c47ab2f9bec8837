//! The HTTP client of the on-call commands: talks to a running promfed's API with the TLS and
//! credentials of [`ClientArgs`] (through [`crate::client`], as promfed talks to its replicas),
//! and turns every way a request can fail into one line an on-call person can act on
//! (connection refused, TLS, timeout, 401 …).

use super::args::ClientArgs;
use crate::client::{ClientError, auth_header, client_tls};
use crate::config::Credentials;
use crate::config::file::TlsConfig;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a request to promfed did not give an answer to work with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid --url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read {flag} {}: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("TLS with {url} failed: {reason}{hint}")]
    Tls { url: String, reason: String, hint: &'static str },
    #[error("{url} did not answer within {timeout:?} (--timeout)")]
    Timeout { url: String, timeout: Duration },
    #[error(
        "{url}: no TLS there, {authority} answers plain HTTP: use --url http://{authority} (promfed serves TLS only with server.tls_server_config)"
    )]
    PlainHttp { url: String, authority: String },
    #[error("{method} {url}: {status}{}{hint}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status { method: Method, url: String, status: StatusCode, message: Option<String>, hint: &'static str },
    #[error("{url}: unexpected answer: {reason}")]
    Body { url: String, reason: String },
}

/// A client of one promfed.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    auth: Option<HeaderValue>,
    timeout: Duration,
    /// A client certificate is presented (mTLS).
    client_cert: bool,
}

/// A 2xx answer: the URL asked, the content type and the body.
#[derive(Debug)]
pub struct Answer {
    pub url: String,
    pub content_type: String,
    pub body: bytes::Bytes,
}

/// The envelope of promfed's JSON answers (Prometheus' API shape).
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    // A missing `Option` field is `None` without `#[serde(default)]` (which would want `T: Default`).
    data: Option<T>,
    error: Option<String>,
}

impl Api {
    /// Builds the client (reads the CA, client certificate and secret files now).
    pub fn new(args: &ClientArgs) -> Result<Api, ApiError> {
        let bad_url = |reason: &str| ApiError::Url { url: args.url.clone(), reason: reason.to_owned() };
        let base = Url::parse(&args.url).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url("not an http:// or https:// URL"));
        }
        crate::serve::install_crypto_provider();
        let tls = TlsConfig {
            ca_file: args.access.ca_file.clone(),
            cert_file: args.access.cert_file.clone(),
            key_file: args.access.key_file.clone(),
            server_name: None,
            insecure_skip_verify: args.access.insecure,
        };
        let owner = "promfed client";
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(client_tls(owner, &tls)?)
            .timeout(args.access.timeout)
            .connect_timeout(args.access.timeout)
            .user_agent(concat!("promfed-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build { owner: owner.to_owned(), source })?;
        let credentials =
            match (&args.access.basic_auth_user, &args.access.basic_auth_password_file, &args.access.bearer_token_file)
            {
                (Some(user), Some(file), _) => Credentials::Basic {
                    username: user.clone(),
                    password: read_secret("--basic-auth-password-file", file)?,
                },
                (_, _, Some(file)) => Credentials::Header {
                    scheme: "Bearer".to_owned(),
                    credentials: read_secret("--bearer-token-file", file)?,
                },
                _ => Credentials::None,
            };
        let auth = auth_header(owner, &credentials)?;
        Ok(Api { http, base, auth, timeout: args.access.timeout, client_cert: args.access.cert_file.is_some() })
    }

    /// The base URL, as given.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` below the base URL (each segment percent-encoded: a group named
    /// `push/eu` stays one segment).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request and returns the answer when its status is 2xx.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        accept: &'static str,
        body: Option<String>,
    ) -> Result<Answer, ApiError> {
        let shown = url.to_string();
        let mut request = self.http.request(method.clone(), url).header(ACCEPT, accept);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let failure = self.failure(&shown, &e);
                return Err(match failure {
                    ApiError::Timeout { .. } | ApiError::Tls { .. } | ApiError::Unreachable { .. } => {
                        self.plain_http_instead(&shown).await.unwrap_or(failure)
                    }
                    other => other,
                });
            }
        };
        let status = response.status();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = response.bytes().await.map_err(|e| self.failure(&shown, &e))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Envelope<serde_json::Value>>(&body)
                .ok()
                .and_then(|e| e.error)
                .or_else(|| Some(String::from_utf8_lossy(&body).trim().to_owned()).filter(|m| !m.is_empty()));
            let hint = match status {
                StatusCode::UNAUTHORIZED if self.auth.is_none() => {
                    " (promfed wants credentials: --basic-auth-user with --basic-auth-password-file, or --bearer-token-file)"
                }
                StatusCode::UNAUTHORIZED => " (promfed refused these credentials)",
                _ => "",
            };
            return Err(ApiError::Status { method, url: shown, status, message, hint });
        }
        Ok(Answer { url: shown, content_type, body })
    }

    /// `method` on the API path `segments`, the `data` of the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<String>,
    ) -> Result<T, ApiError> {
        let answer = self.send(method, self.url(segments), "application/json", body).await?;
        let envelope: Envelope<T> = serde_json::from_slice(&answer.body)
            .map_err(|e| ApiError::Body { url: answer.url.clone(), reason: format!("not the JSON expected: {e}") })?;
        envelope.data.ok_or_else(|| ApiError::Body { url: answer.url, reason: "no `data` in the answer".into() })
    }

    /// After an `https://` request failed: whether the server answers plain HTTP instead (a
    /// promfed without `server.tls_server_config`, as the CLI's default `https://` URL meets it
    /// out of the box), said as the error to show.
    async fn plain_http_instead(&self, url: &str) -> Option<ApiError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.base.scheme() != "https" {
            return None;
        }
        let host = self.base.host_str()?;
        let port = self.base.port_or_known_default()?;
        let authority = match self.base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let probe = async {
            let mut stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await.ok()?;
            let head = format!("GET /-/healthy HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.ok()?;
            let mut start = [0u8; 5];
            stream.read_exact(&mut start).await.ok()?;
            (&start == b"HTTP/").then_some(())
        };
        tokio::time::timeout(Duration::from_secs(2), probe).await.ok().flatten()?;
        Some(ApiError::PlainHttp { url: url.to_owned(), authority })
    }

    /// Names the reason a request failed, from the innermost cause that says something.
    fn failure(&self, url: &str, e: &reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout { url: url.to_owned(), timeout: self.timeout };
        }
        let causes = causes(e);
        for c in &causes {
            if let Some(tls) = c.downcast_ref::<rustls::Error>() {
                return tls_failure(url, tls);
            }
        }
        let io_kind = causes.iter().rev().find_map(|c| c.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
        // The outermost error is reqwest's "error sending request for url (…)": the URL is said
        // already.
        let text = chain(causes.get(1..).filter(|c| !c.is_empty()).unwrap_or(&causes));
        // A TLS 1.3 server refuses a client certificate after the handshake: the client may see
        // the connection close, be reset or break its pipe before it reads the server's alert,
        // or read the alert only as the connection's error (hyper's, not a rustls::Error).
        let maybe_mtls = url.starts_with("https:")
            && !self.client_cert
            && (matches!(io_kind, Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe))
                || ["connection closed", "CertificateRequired", "broken pipe"].iter().any(|t| text.contains(t)));
        const MTLS_HINT: &str = " (promfed may require a client certificate: --cert-file and --key-file)";
        let reason = match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused (is promfed running there?)".to_owned(),
            Some(std::io::ErrorKind::ConnectionReset) if maybe_mtls => format!("connection reset{MTLS_HINT}"),
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
            _ if text.contains("invalid HTTP version parsed") && url.starts_with("http:") => {
                format!("{text} (is promfed serving HTTPS? then use an https:// URL)")
            }
            _ if maybe_mtls => format!("{text}{MTLS_HINT}"),
            _ => text,
        };
        ApiError::Unreachable { url: url.to_owned(), reason }
    }
}

fn tls_failure(url: &str, e: &rustls::Error) -> ApiError {
    use rustls::{AlertDescription, CertificateError};
    let hint = match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            " (give the CA that signed promfed's certificate with --ca-file, or --insecure to diagnose)"
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            " (promfed's certificate has expired: see docs/runbook.md#certificate-expiring)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the certificate does not name the host of --url)",
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired | AlertDescription::BadCertificate)
        | rustls::Error::AlertReceived(AlertDescription::UnknownCA) => {
            " (promfed wants a client certificate from its CA: --cert-file and --key-file)"
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            " (is promfed serving plain HTTP? then use an http:// URL)"
        }
        _ => "",
    };
    ApiError::Tls { url: url.to_owned(), reason: e.to_string(), hint }
}

/// An error and its causes, outermost first. `io::Error::source` skips the error an
/// `io::Error` wraps (it returns that error's source): step into it with `get_ref` instead.
fn causes<'a>(e: &'a (dyn std::error::Error + 'static)) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(c) = next.take() {
        out.push(c);
        next = match c.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// The causes on one line, each said once (reqwest repeats its inner errors' text).
fn chain(causes: &[&(dyn std::error::Error + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in causes {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn read_secret(flag: &'static str, path: &Path) -> Result<String, ApiError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| ApiError::Read { flag, path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Api {
        Api::new(&ClientArgs { url: url.to_owned(), ..api_args() }).unwrap()
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_each_segment() {
        assert_eq!(
            api("https://p:9443").url(&["api", "v1", "leader", "eu"]).as_str(),
            "https://p:9443/api/v1/leader/eu"
        );
        assert_eq!(
            api("https://p/promfed/").url(&["api", "v1", "leader", "push/eu west"]).as_str(),
            "https://p/promfed/api/v1/leader/push%2Feu%20west"
        );
        assert_eq!(api("http://p:1/x?y=1").url(&["federate"]).as_str(), "http://p:1/x/federate");
    }

    #[test]
    fn bad_urls_are_named() {
        for url in ["127.0.0.1:9443", "ftp://p", "nothing"] {
            let args = ClientArgs { url: url.to_owned(), ..api_args() };
            let e = Api::new(&args).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid --url {url:?}")), "{e}");
        }
    }

    fn api_args() -> ClientArgs {
        ClientArgs {
            url: String::new(),
            access: crate::cli::args::AccessArgs { timeout: Duration::from_secs(1), ..Default::default() },
        }
    }
}
