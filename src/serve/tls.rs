//! TLS settings for the listener and their hot reload.
//!
//! [`TlsReloader`] turns a certificate, a private key and optionally a client CA (the `tls_server_config`
//! shape of the Prometheus web config: `cert_file`, `key_file`, `client_ca_file`, `min_version`) into a
//! [`rustls::ServerConfig`] and publishes it through an [`ArcSwap`]. The accept loop
//! ([`super::listener`]) takes [`TlsReloader::current`] for every new connection, so a rotated
//! certificate applies to new connections while established ones keep the session they negotiated —
//! nothing is restarted, nothing is dropped. This is the "swap an `Arc<ServerConfig>`" approach the
//! rustls docs describe for changing configuration (`ServerConfig` is immutable once shared: see
//! <https://docs.rs/rustls/0.23/rustls/server/struct.ServerConfig.html>); swapping the whole config,
//! rather than only a `ResolvesServerCert`, also picks up a rotated client CA.
//!
//! Rotation is detected by [`TlsReloader::watch`], which polls the files' metadata instead of using
//! inotify: Kubernetes secrets and cert-manager rotate files by swapping a `..data` symlink, which
//! file-change notifications on the target paths do not reliably report, and a poll every few seconds
//! costs nothing. A failed reload (half-written files, a key that does not match its certificate)
//! keeps the previous config, so a bad rotation degrades to "old certificate" instead of "no TLS".
//!
//! Client certificates (mTLS) are verified with rustls' `WebPkiClientVerifier`
//! (<https://docs.rs/rustls/0.23/rustls/server/struct.WebPkiClientVerifier.html>). ALPN offers
//! `h2` and `http/1.1`, which the `hyper_util` auto connection builder then serves.
//!
//! The crypto provider (aws-lc-rs) is passed explicitly to every rustls builder here, so this module
//! does not depend on process-wide state; [`install_crypto_provider`] exists for the rest of the
//! process (HTTP clients) and is called from `main` and the tests.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

/// Minimum TLS protocol version, spelled as in the Prometheus web config (`min_version`).
///
/// Prometheus also accepts `TLS10` and `TLS11`; rustls implements neither, so they are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the Prometheus default).
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "TLS13")]
    Tls13,
}

impl FromStr for TlsVersion {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            other => Err(TlsError::UnsupportedVersion { value: other.to_owned() }),
        }
    }
}

/// Where the listener's certificate, key and (for mTLS) client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the server certificate, followed by any intermediates.
    pub cert_file: PathBuf,
    /// PEM file with the private key of the first certificate in `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file with the CA(s) that sign client certificates. When set, every client must present a
    /// certificate signed by one of them (Prometheus' `RequireAndVerifyClientCert`).
    pub client_ca_file: Option<PathBuf>,
    /// Lowest protocol version accepted; `None` accepts TLS 1.2 and 1.3.
    pub min_version: Option<TlsVersion>,
}

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read (missing, permissions, ...).
    #[error("cannot read {what} file {path}")]
    Read {
        /// Which file: "certificate", "private key" or "client CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("invalid PEM in {what} file {path}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: pem::Error,
    },
    /// A certificate or client CA file holds no `CERTIFICATE` block.
    #[error("no certificate found in {what} file {path}")]
    NoCertificate {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block.
    #[error("no private key found in key file {path}")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds a key the crypto provider cannot use.
    #[error("unsupported private key in key file {path}")]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
    /// The private key is not the key of the first certificate (or the certificate cannot be parsed).
    #[error("private key {key_file} does not match certificate {cert_file}")]
    KeyMismatch {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
        /// What rustls found.
        #[source]
        source: rustls::Error,
    },
    /// A certificate of the client CA file cannot be used as a trust anchor.
    #[error("bad client CA certificate in {path}")]
    BadClientCa {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: BadCaCause,
    },
    /// `min_version` is not one rustls supports.
    #[error("unsupported TLS min_version {value:?} (expected \"TLS12\" or \"TLS13\")")]
    UnsupportedVersion {
        /// The value given.
        value: String,
    },
    /// rustls refused the assembled configuration.
    #[error("cannot build the TLS server configuration")]
    Config(#[source] rustls::Error),
}

/// Why a client CA file was refused (the source of [`TlsError::BadClientCa`]).
#[derive(Debug, thiserror::Error)]
pub enum BadCaCause {
    /// The certificate is not a usable trust anchor.
    #[error(transparent)]
    Anchor(#[from] rustls::Error),
    /// The client verifier could not be built from the anchors.
    #[error(transparent)]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub use crate::trust::install_crypto_provider;

/// The current TLS server configuration, reloadable from its files without restarting the listener.
pub struct TlsReloader {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<ServerConfig>,
    /// What the last reload saw; the mutex also serialises concurrent reloads.
    state: Mutex<Observed>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    handshake_failures: AtomicU64,
}

/// The file stamps and contents a reload worked from.
struct Observed {
    stamps: Vec<Option<FileStamp>>,
    contents: FileContents,
}

/// What identifies a version of a file without reading it: changes when the file is rewritten, or
/// replaced by a rename or a symlink swap (inode).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

#[derive(PartialEq, Eq)]
struct FileContents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl TlsReloader {
    /// Reads the files named by `settings` and builds the first configuration.
    pub fn load(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let stamps = stamp_files(&settings);
        let contents = read_files(&settings)?;
        let config = build_config(&settings, &provider, &contents)?;
        Ok(Arc::new(Self {
            settings,
            provider,
            current: ArcSwap::from_pointee(config),
            state: Mutex::new(Observed { stamps, contents }),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
        }))
    }

    /// The settings this reloader reads.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The configuration new connections should use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Re-reads the files and publishes a new configuration when their contents changed.
    ///
    /// Returns `Ok(true)` when a new configuration was published, `Ok(false)` when the files hold
    /// what is already served. On error the previous configuration stays in place.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Stamp before reading: a write racing with the read changes the stamp again, so the next
        // poll reloads once more instead of missing it.
        state.stamps = stamp_files(&self.settings);
        let result = read_files(&self.settings).and_then(|contents| {
            if contents == state.contents {
                return Ok(None);
            }
            let config = build_config(&self.settings, &self.provider, &contents)?;
            Ok(Some((contents, config)))
        });
        match result {
            Ok(None) => Ok(false),
            Ok(Some((contents, config))) => {
                self.current.store(Arc::new(config));
                state.contents = contents;
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert_file = %self.settings.cert_file.display(), "reloaded TLS certificate");
                Ok(true)
            }
            Err(err) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// Polls the files every `poll` and reloads when one changed, until `shutdown` is cancelled.
    ///
    /// A failed reload is logged and counted once per change of the files, not once per poll.
    pub async fn watch(self: Arc<Self>, poll: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            // File metadata and reads are blocking calls: keep them off the runtime's workers.
            let this = Arc::clone(&self);
            let outcome = tokio::task::spawn_blocking(move || this.reload_if_stamps_changed()).await;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => tracing::warn!(
                    error = %format_chain(&err),
                    "TLS reload failed, still serving the previous certificate"
                ),
                Err(join) => tracing::warn!(error = %join, "TLS reload task failed"),
            }
        }
    }

    fn reload_if_stamps_changed(&self) -> Result<bool, TlsError> {
        let stamps = stamp_files(&self.settings);
        let changed = {
            let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            state.stamps != stamps
        };
        if changed { self.reload() } else { Ok(false) }
    }

    /// Configurations published by [`reload`](Self::reload) since start (the first load not counted).
    pub fn reloads_total(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads that failed and left the previous configuration in place.
    pub fn reload_failures_total(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed or timed out on listeners using this reloader.
    pub fn handshake_failures_total(&self) -> u64 {
        self.handshake_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn record_handshake_failure(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloader")
            .field("settings", &self.settings)
            .field("reloads_total", &self.reloads_total())
            .field("reload_failures_total", &self.reload_failures_total())
            .finish_non_exhaustive()
    }
}

/// `err` and its sources joined with ": ", for one-line log fields.
fn format_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

fn stamp_files(settings: &TlsSettings) -> Vec<Option<FileStamp>> {
    let mut paths = vec![&settings.cert_file, &settings.key_file];
    paths.extend(settings.client_ca_file.as_ref());
    paths.into_iter().map(|path| stamp(path)).collect()
}

fn stamp(path: &Path) -> Option<FileStamp> {
    // `metadata` follows symlinks, so a swapped `..data` link shows up as a new inode.
    let meta = fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

fn read_files(settings: &TlsSettings) -> Result<FileContents, TlsError> {
    let read = |what: &'static str, path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
    };
    Ok(FileContents {
        cert: read("certificate", &settings.cert_file)?,
        key: read("private key", &settings.key_file)?,
        client_ca: match &settings.client_ca_file {
            Some(path) => Some(read("client CA", path)?),
            None => None,
        },
    })
}

fn parse_certs(what: &'static str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|source| TlsError::Pem {
        what,
        path: path.to_owned(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what, path: path.to_owned() });
    }
    Ok(certs)
}

fn build_config(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    contents: &FileContents,
) -> Result<ServerConfig, TlsError> {
    let certs = parse_certs("certificate", &settings.cert_file, &contents.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|err| match err {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: settings.key_file.clone() },
        source => TlsError::Pem { what: "private key", path: settings.key_file.clone(), source },
    })?;

    // Check the pair ourselves so the error names both files; `with_single_cert` would only say
    // "inconsistent keys".
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| TlsError::UnsupportedKey { path: settings.key_file.clone(), source })?;
    match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
        // A provider that cannot derive the public key leaves consistency unknown, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(source) => {
            return Err(TlsError::KeyMismatch {
                cert_file: settings.cert_file.clone(),
                key_file: settings.key_file.clone(),
                source,
            });
        }
    }

    let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(TlsError::Config)?;

    let builder = match (&settings.client_ca_file, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let bad_ca = |source: BadCaCause| TlsError::BadClientCa { path: path.clone(), source };
            let mut roots = RootCertStore::empty();
            for cert in parse_certs("client CA", path, pem)? {
                roots.add(cert).map_err(|e| bad_ca(e.into()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .build()
                .map_err(|e| bad_ca(e.into()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };

    let mut config = builder.with_single_cert(certs, key).map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
