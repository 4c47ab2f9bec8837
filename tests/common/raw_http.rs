//! Requests written byte for byte, as `curl -g` sends a URL it was told not to touch: HTTP/1.1
//! request lines and HTTP/2 frames (HPACK by loona-hpack, which indexes what it sends as
//! nghttp2 does), over plain TCP or TLS with ALPN. No HTTP library is involved on the client
//! side, because every one of them refuses to send such a target.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status, header fields (lowercase names), body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection to `address`; over TLS trusting `ca` and offering `alpn` when `ca` is set.
pub async fn connect(address: &str, ca: Option<&Path>, alpn: &[u8]) -> Box<dyn Io> {
    let tcp = TcpStream::connect(address).await.expect("connect");
    let Some(ca) = ca else { return Box::new(tcp) };
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name").to_owned();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn), "ALPN chose the protocol asked for");
    Box::new(tls)
}

/// `GET target` over HTTP/1.1, the target written as it is; the connection closed after.
pub async fn h1_get(io: &mut dyn Io, target: &str, extra_headers: &str) -> RawResponse {
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}Connection: close\r\n\r\n");
    io.write_all(request.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut raw))
        .await
        .expect("the response within 10 s")
        .ok(); // a TLS close without close_notify is still the end of the response
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no response head for {target}: {:?}", String::from_utf8_lossy(&raw));
    });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    RawResponse { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HTTP/2 client connection that sends `:path` values as given.
pub struct H2Client {
    io: Box<dyn Io>,
    encoder: loona_hpack::Encoder<'static>,
    decoder: loona_hpack::Decoder<'static>,
    next_stream: u32,
    authority: String,
}

/// How a request on an HTTP/2 connection ended.
#[derive(Debug)]
pub enum H2Outcome {
    Response(RawResponse),
    /// The server reset the stream with this error code (1 = PROTOCOL_ERROR).
    Reset(u32),
}

impl H2Client {
    /// Sends the preface and settings (a large window, so responses need no WINDOW_UPDATE).
    pub async fn start(mut io: Box<dyn Io>, authority: &str) -> H2Client {
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(0x4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff])); // INITIAL_WINDOW_SIZE
        hello.extend(frame(0x8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes())); // connection window
        io.write_all(&hello).await.expect("write preface");
        H2Client {
            io,
            encoder: loona_hpack::Encoder::new(),
            decoder: loona_hpack::Decoder::new(),
            next_stream: 1,
            authority: authority.to_owned(),
        }
    }

    /// `GET path` on a new stream; reads frames until that stream ends.
    pub async fn get(&mut self, path: &str, extra: &[(&str, &str)]) -> H2Outcome {
        let stream = self.next_stream;
        self.next_stream += 2;
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", self.authority.as_bytes()),
            (b":path", path.as_bytes()),
            (b"user-agent", b"curl/7.88.1"),
            (b"accept", b"*/*"),
        ];
        fields.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let block = self.encoder.encode(fields);
        self.io.write_all(&frame(0x1, 0x4 | 0x1, stream, &block)).await.expect("write HEADERS");
        let read = tokio::time::timeout(Duration::from_secs(10), self.read_until_end(stream));
        read.await.unwrap_or_else(|_| panic!("stream {stream} ({path}) did not end within 10 s"))
    }

    async fn read_until_end(&mut self, stream: u32) -> H2Outcome {
        let mut status = None;
        let mut headers = Vec::new();
        let mut body = Vec::new();
        let mut block = Vec::new();
        loop {
            let mut head = [0u8; 9];
            self.io.read_exact(&mut head).await.expect("a frame header");
            let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0; len];
            self.io.read_exact(&mut payload).await.expect("a frame payload");
            match kind {
                0x4 if flags & 0x1 == 0 => {
                    self.io.write_all(&frame(0x4, 0x1, 0, &[])).await.expect("SETTINGS ACK");
                }
                0x7 => panic!("GOAWAY: {:?}", String::from_utf8_lossy(payload.get(8..).unwrap_or_default())),
                0x3 if id == stream => {
                    return H2Outcome::Reset(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
                }
                0x1 | 0x9 if id == stream => {
                    let mut p = &payload[..];
                    let mut pad = 0;
                    if kind == 0x1 && flags & 0x8 != 0 {
                        pad = usize::from(p[0]);
                        p = &p[1..];
                    }
                    if kind == 0x1 && flags & 0x20 != 0 {
                        p = &p[5..];
                    }
                    block.extend_from_slice(&p[..p.len() - pad]);
                    if flags & 0x4 != 0 {
                        for (n, v) in self.decoder.decode(&block).expect("response headers decode") {
                            let (n, v) =
                                (String::from_utf8_lossy(&n).into_owned(), String::from_utf8_lossy(&v).into_owned());
                            if n == ":status" {
                                status = v.parse().ok();
                            } else {
                                headers.push((n, v));
                            }
                        }
                        block.clear();
                    }
                    if flags & 0x1 != 0 {
                        break;
                    }
                }
                0x0 if id == stream => {
                    let mut p = &payload[..];
                    let mut pad = 0;
                    if flags & 0x8 != 0 {
                        pad = usize::from(p[0]);
                        p = &p[1..];
                    }
                    body.extend_from_slice(&p[..p.len() - pad]);
                    if flags & 0x1 != 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        H2Outcome::Response(RawResponse { status: status.expect(":status"), headers, body })
    }
}
