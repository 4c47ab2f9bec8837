//! The `tcp` prober: blackbox_exporter 0.23's `ProbeTCP`. Connect (TLS from the start with
//! `tls: true`), then each `query_response` step: read lines until `expect` matches (`${1}` of
//! `send` expands its groups), send a line, upgrade to TLS with `starttls`.
//!
//! Lines are split as Go's `bufio.Scanner` does (`\n`, a trailing `\r` dropped), at most
//! 64 KiB each.

use super::net::{resolve, split_host_port};
use super::record::Recorder;
use super::tls::{self, ChainReport};
use crate::config::blackbox::Module;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant as Deadline;

/// Longest line read (Go's `bufio.MaxScanTokenSize`).
const MAX_LINE: usize = 64 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub async fn probe(target: &str, module: &Module, _deadline: Deadline, rec: &mut Recorder) -> bool {
    let cfg = &module.tcp;
    rec.set("probe_failed_due_to_regex", 0.0);
    let Some((host, port)) = split_host_port(target) else {
        return rec.fail("target", format!("target {target:?} is not host:port"));
    };
    let (ip, _) = match resolve(host, cfg.preferred_ip_protocol.as_deref(), cfg.ip_protocol_fallback, rec).await {
        Ok(r) => r,
        Err(e) => return rec.fail("resolve", format!("error resolving target address: {e}")),
    };
    let addr = SocketAddr::new(ip, port);
    rec.log(format!("Dialing TCP {}: address={addr}", if cfg.tls { "with TLS" } else { "without TLS" }));
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return rec.fail("connect", format!("Error dialing TCP {addr}: {e}")),
    };
    let mut conn: Box<dyn Io> = if cfg.tls {
        match upgrade(module, host, tcp, rec).await {
            Ok((s, report)) => {
                tls::record_metrics(rec, &report, true);
                s
            }
            Err(()) => return false,
        }
    } else {
        Box::new(tcp)
    };
    rec.log("Successfully dialed");
    // Bytes read past the last line, as Go's one `bufio.Scanner` per connection keeps them.
    let mut pending = Vec::new();
    for (i, qr) in cfg.query_response.iter().enumerate() {
        rec.log(format!("Processing query response entry {i}"));
        let mut send = qr.send.clone().unwrap_or_default();
        if let Some(expect) = &qr.expect {
            let mut matched = None;
            let mut last = String::new();
            loop {
                let line = match read_line(&mut conn, &mut pending).await {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) => return rec.fail("read", format!("Error reading from connection: {e}")),
                };
                last = String::from_utf8_lossy(&line).into_owned();
                rec.log(format!("Read line: {last}"));
                if let Some(caps) = expect.0.captures(&last) {
                    let mut expanded = String::new();
                    caps.expand(&send, &mut expanded);
                    matched = Some(expanded);
                    break;
                }
            }
            match matched {
                Some(expanded) => {
                    rec.log(format!("Regexp matched: regexp={} line={last}", expect.0));
                    rec.set("probe_failed_due_to_regex", 0.0);
                    send = expanded;
                }
                None => {
                    rec.set("probe_failed_due_to_regex", 1.0);
                    return rec
                        .fail("expect_regex", format!("Regexp did not match: regexp={} line={last:?}", expect.0));
                }
            }
        }
        if !send.is_empty() {
            rec.log(format!("Sending line: {send}"));
            if let Err(e) = conn.write_all(format!("{send}\n").as_bytes()).await {
                return rec.fail("send", format!("Failed to send: {e}"));
            }
        }
        if qr.starttls {
            match upgrade(module, host, conn, rec).await {
                Ok((s, report)) => {
                    // blackbox_exporter 0.23 registers only these two after STARTTLS.
                    if let Some(t) = report.earliest_expiry() {
                        rec.set("probe_ssl_earliest_cert_expiry", t as f64);
                    }
                    rec.set("probe_ssl_last_chain_expiry_timestamp_seconds", report.last_chain_expiry());
                    conn = s;
                    pending.clear();
                }
                Err(()) => return false,
            }
        }
    }
    true
}

async fn upgrade<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    module: &Module,
    host: &str,
    stream: S,
    rec: &mut Recorder,
) -> Result<(Box<dyn Io>, ChainReport), ()> {
    let cfg = &module.tcp;
    let probe_tls = match tls::client_config(&cfg.tls_config, &[]) {
        Ok(t) => t,
        Err(e) => {
            rec.fail("tls", e);
            return Err(());
        }
    };
    let name = match tls::server_name(&cfg.tls_config, host) {
        Ok(n) => n,
        Err(e) => {
            rec.fail("tls", e);
            return Err(());
        }
    };
    let (result, report) = tls::handshake(&probe_tls, name, stream).await;
    match result {
        Ok(s) => {
            rec.log("TLS Handshake (client) succeeded.");
            let report = report.unwrap_or_default();
            rec.certificates = Some(report.clone());
            Ok((Box::new(s), report))
        }
        Err(e) => {
            if let Some(r) = report {
                tls::record_failed_handshake(rec, &r);
                rec.certificates = Some(r);
            }
            rec.fail("tls", format!("TLS Handshake (client) failed: {e}"));
            Err(())
        }
    }
}

/// The next line (without `\n` and a trailing `\r`), `None` at the end of the stream (a last
/// line without `\n` is still a line, as for Go's scanner).
async fn read_line(conn: &mut Box<dyn Io>, pending: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = pending.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
        if pending.len() > MAX_LINE {
            return Err(std::io::Error::other("token too long"));
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            if pending.is_empty() {
                return Ok(None);
            }
            let mut line = std::mem::take(pending);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
        pending.extend_from_slice(&buf[..n]);
    }
}
