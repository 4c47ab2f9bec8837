//! Test helpers for the serving layer: a throw-away PKI made with rcgen, a raw TLS client that can
//! show the certificate a server presented, a minimal HTTP/1.1 client that keeps one connection
//! open across requests (what the reload tests need to prove a connection survived), and a server
//! started on `127.0.0.1:0`.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use super::listener::{ServeOptions, serve};
use super::tls::{TlsReloader, TlsSettings};

/// A certificate and its key, both PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl Pem {
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()
    }
}

/// A CA that issues server and client certificates.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self, cn: &str, serial: u64) -> Pem {
        self.leaf(cn, serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate.
    pub fn client(&self, cn: &str) -> Pem {
        self.leaf(cn, 1000, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, cn: &str, serial: u64, usage: ExtendedKeyUsagePurpose) -> Pem {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(serial.into());
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// Writes `contents` to `path` the way rotations should: a temporary file renamed over the target.
pub fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A directory holding `cert.pem`, `key.pem` and `ca.pem`.
pub struct CertDir {
    pub dir: tempfile::TempDir,
}

impl CertDir {
    pub fn new(server: &Pem, ca_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let this = Self { dir };
        this.rotate(server);
        std::fs::write(this.path("ca.pem"), ca_pem).unwrap();
        this
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn rotate(&self, server: &Pem) {
        write_atomically(&self.path("cert.pem"), &server.cert);
        write_atomically(&self.path("key.pem"), &server.key);
    }

    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert_file: self.path("cert.pem"),
            key_file: self.path("key.pem"),
            client_ca_file: None,
            min_version: None,
        }
    }

    pub fn mtls_settings(&self) -> TlsSettings {
        TlsSettings { client_ca_file: Some(self.path("ca.pem")), ..self.settings() }
    }
}

/// A client config trusting `ca_pem`, presenting `identity` when given, speaking HTTP/1.1.
pub fn client_config(ca_pem: &str, identity: Option<&Pem>) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.der()], PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects to `addr` over TLS, verifying the server as `127.0.0.1`.
pub async fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// The end-entity certificate the server presented on `stream`.
pub fn peer_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, conn) = stream.get_ref();
    conn.peer_certificates().unwrap()[0].clone().into_owned()
}

/// A response read by [`HttpConn`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One HTTP/1.1 keep-alive connection over any stream; enough HTTP for tests (Content-Length bodies).
pub struct HttpConn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpConn<S> {
    pub fn new(stream: S) -> Self {
        Self { stream, buf: Vec::new() }
    }

    /// Sends a GET without waiting for the answer.
    pub async fn send(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<()> {
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).await?;
        self.stream.flush().await
    }

    /// Reads one response.
    pub async fn recv(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().unwrap())
            })
            .expect("test responses have a content-length");
        while self.buf.len() < head_end + len {
            self.fill().await?;
        }
        let body = String::from_utf8(self.buf[head_end..head_end + len].to_vec()).unwrap();
        self.buf.drain(..head_end + len);
        Ok(Response { status, head, body })
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        self.send(path, headers).await?;
        self.recv().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// `/` answers "ok", `/peer` the client address seen by the server, `/slow` "slow" after 300ms,
/// `/-/healthy` "healthy".
pub fn test_router() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .route("/-/healthy", get(|| async { "healthy" }))
}

/// A server started on `127.0.0.1:0`.
pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<io::Result<()>>,
}

pub async fn start(tls: Option<Arc<TlsReloader>>, app: Router, opts: ServeOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, tls, app, opts, shutdown.clone()));
    Server { addr, shutdown, task }
}

/// Polls `cond` every 10ms for up to 5s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
