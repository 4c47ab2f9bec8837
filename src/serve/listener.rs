//! The accept loop that serves an axum [`Router`] over plain HTTP or TLS.
//!
//! `axum::serve` has no TLS, so this module owns the loop (the shape of hyper-util's
//! `server_graceful` example, <https://github.com/hyperium/hyper-util/blob/master/examples/server_graceful.rs>,
//! and of mini-redis' `server.rs`):
//!
//! - a [`Semaphore`] caps open connections; the permit is taken *before* `accept`, so at the cap new
//!   clients wait in the kernel backlog instead of costing a task and a file descriptor each;
//! - the TLS handshake runs in the connection's own task (a slow client never stalls the loop), with
//!   the configuration current *at accept time* ([`TlsReloader::current`]) and a timeout;
//! - each connection is served by `hyper_util::server::conn::auto::Builder`, which speaks HTTP/1.1
//!   and h2 (chosen by ALPN or the h2 preface, <https://docs.rs/hyper-util/0.1/hyper_util/server/conn/auto/>),
//!   with the router adapted by `TowerToHyperService` and the peer address inserted as
//!   [`ConnectInfo<SocketAddr>`] (what `into_make_service_with_connect_info` would do);
//! - on shutdown the loop stops accepting, [`GracefulShutdown`] asks every connection to finish its
//!   in-flight requests (HTTP/1.1 closes after the current response, h2 sends GOAWAY), and whatever
//!   is still open after `grace_period` is dropped.
//!
//! Below hyper, each connection's reads go through [`RequestTargetRepair`], which percent-encodes
//! the bytes of a request target that hyper would refuse (`curl -g '…?match[]={job="node"}'`).
//!
//! Accept errors (`EMFILE`, `ECONNABORTED`, ...) are transient by nature: they are logged and retried
//! after a short pause, never returned. Handshake failures are the client's problem: logged at debug
//! and counted in [`TlsReloader::handshake_failures_total`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::request_target::{EncodedTargets, RequestTargetRepair};
use super::tls::TlsReloader;

/// How long to pause after a failed `accept` before trying again (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; further clients wait in the listen backlog. Default 1024; 0 is
    /// taken as 1.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake. Default 10s.
    pub tls_handshake_timeout: Duration,
    /// Time in-flight requests get to finish after shutdown before connections are dropped. Default 10s.
    pub grace_period: Duration,
    /// Counts the request targets [`RequestTargetRepair`] percent-encoded.
    pub encoded_targets: EncodedTargets,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            grace_period: Duration::from_secs(10),
            encoded_targets: EncodedTargets::default(),
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is set) until `shutdown` is cancelled, then drains.
///
/// Returns once every connection has finished or `opts.grace_period` has passed after shutdown.
/// The only error is failing to read the listener's local address at start; failed accepts,
/// handshakes and connections are logged and never end the loop.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    app: Router,
    opts: ServeOptions,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(%local, tls = tls.is_some(), "listening");

    let limit = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let tracker = TaskTracker::new();
    // Cancelled when the grace period is over: connections still open then are dropped.
    let hard_stop = CancellationToken::new();

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%local, error = %err, "accept failed, retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            },
        };
        // The watcher is taken here, not in the task, so a shutdown signalled before the task first
        // runs is still seen by the connection.
        let conn = Connection {
            stream,
            peer,
            tls: tls.clone(),
            app: app.clone(),
            handshake_timeout: opts.tls_handshake_timeout,
            encoded_targets: opts.encoded_targets.clone(),
            watcher: graceful.watcher(),
            shutdown: shutdown.clone(),
            _permit: permit,
        };
        let hard_stop = hard_stop.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = conn.run() => {}
                () = hard_stop.cancelled() => {
                    tracing::debug!(%peer, "connection dropped at the end of the grace period");
                }
            }
        });
    }

    // Stop accepting at once: new clients are refused, not left waiting in the backlog.
    drop(listener);
    tracker.close();
    let open = graceful.count();
    tracing::info!(%local, open, grace_period = ?opts.grace_period, "shutting down, draining connections");
    if tokio::time::timeout(opts.grace_period, graceful.shutdown()).await.is_err() {
        tracing::warn!(%local, "grace period over, dropping the remaining connections");
    }
    hard_stop.cancel();
    tracker.wait().await;
    tracing::info!(%local, "stopped");
    Ok(())
}

/// The first byte of a TLS record carrying a handshake message (a ClientHello): an HTTP request
/// starts with a method's letter.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A TLS alert record: fatal (2), protocol_version (70), record version TLS 1.0 as clients
/// accept before a version is agreed.
const TLS_PROTOCOL_VERSION_ALERT: [u8; 7] = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];

/// One accepted connection, owned by its task.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    app: Router,
    handshake_timeout: Duration,
    encoded_targets: EncodedTargets,
    watcher: Watcher,
    shutdown: CancellationToken,
    /// Released when the connection ends, letting the loop accept another.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self) {
        let Connection { stream, peer, tls, app, handshake_timeout, encoded_targets, watcher, shutdown, _permit } =
            self;
        // Responses are small and often latency-bound (health checks, API calls): don't wait for Nagle.
        let _ = stream.set_nodelay(true);
        let Some(reloader) = tls else {
            // A TLS client at a plain-HTTP listener (the CLI's default URL is https://): its
            // ClientHello would sit in hyper's request parser until someone timed out. It is
            // refused at once with a TLS alert (protocol_version) instead, so the client fails
            // fast and can say what to use (`promfed status` then names the http:// URL).
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(handshake_timeout, stream.peek(&mut first)).await;
            if matches!(peeked, Ok(Ok(1))) && first[0] == TLS_HANDSHAKE_RECORD {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let _ = stream.write_all(&TLS_PROTOCOL_VERSION_ALERT).await;
                let _ = stream.shutdown().await;
                tracing::debug!(%peer, "TLS handshake at a plain-HTTP listener: refused with an alert");
                return;
            }
            serve_connection(stream, encoded_targets, peer, app, watcher).await;
            return;
        };

        // The config current now: a reload applies to this and later connections, never to
        // connections already established.
        let acceptor = TlsAcceptor::from(reloader.current());
        let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
        let stream = tokio::select! {
            // A half-open handshake is not worth draining.
            () = shutdown.cancelled() => return,
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    reloader.record_handshake_failure();
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_elapsed) => {
                    reloader.record_handshake_failure();
                    tracing::debug!(%peer, timeout = ?handshake_timeout, "TLS handshake timed out");
                    return;
                }
            },
        };
        serve_connection(stream, encoded_targets, peer, app, watcher).await;
    }
}

/// Serves one connection, plain or TLS: its reads through [`RequestTargetRepair`], then hyper.
async fn serve_connection<S>(
    stream: S,
    encoded_targets: EncodedTargets,
    peer: SocketAddr,
    app: Router,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let stream = RequestTargetRepair::new(stream, encoded_targets);
    let service = app.map_request(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let service = TowerToHyperService::new(service);
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(err) = watcher.watch(conn).await {
        // Resets, clients closing mid-request, h2 protocol errors: normal on the internet.
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests;
