//! Request targets that people type unencoded, made acceptable before hyper parses them.
//!
//! `curl -g 'https://promfed:9443/federate?match[]={job="node"}'` is how runbooks query a
//! Prometheus, and Prometheus (Go's `net/http`) answers it. The `http` crate under hyper and h2
//! refuses a `"`, `<`, `>` or a control byte in a query (and a space, `` ` ``, `<`, `>` in a path)
//! before any handler runs: HTTP/1.1 gets an empty 400, HTTP/2 a stream reset. No setting of
//! hyper, h2 or http relaxes that, so this module sits *below* hyper, on the bytes a client
//! sends, and percent-encodes exactly those bytes of the request target (`%22` for `"` and so
//! on) — the same request after decoding, which is what Go hands its handlers. `#` is encoded
//! too: `http` would silently cut the target there (a fragment), Go keeps it. A target `http`
//! accepts is left as it is, byte for byte.
//!
//! - HTTP/1.x: each request head is read up to its empty line; the request line's target is
//!   rewritten when needed; the body is passed through by its `Content-Length`. A request this
//!   reader cannot frame by itself (`Transfer-Encoding`, `Upgrade`, `CONNECT`, a head over 64 KiB,
//!   anything malformed) is passed through untouched with the rest of the connection, for hyper
//!   to answer as before.
//! - HTTP/2 (the client preface, with or without TLS): frames are passed through as they are,
//!   except header blocks (`HEADERS` + `CONTINUATION`), which are decoded with an HPACK decoder
//!   that mirrors hyper's (the client's dynamic table). Until a `:path` needs encoding, blocks
//!   go through byte for byte; from then on every block of the connection is re-encoded as
//!   literals without indexing (RFC 7541 §6.2.2), so hyper's decoder never needs an entry the
//!   client added after that point. A block that cannot be decoded before then is passed through
//!   with the rest of the connection (hyper will say why); after it, the connection is closed.
//!
//! The response side is never touched. Each rewritten target counts in
//! `promfed_http_request_targets_encoded_total{protocol}`.
//!
//! Specs: RFC 9112 §3 (request line), RFC 9113 §4 and §6.2/§6.10 (frames, header blocks),
//! RFC 7541 (HPACK), RFC 3986 §2.1 (percent-encoding).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A request head longer than this is passed through unread (hyper's own limit answers it).
const MAX_HEAD: usize = 64 * 1024;
/// The largest frame a client may send before hyper's `SETTINGS_MAX_FRAME_SIZE`, which promfed
/// leaves at the default (RFC 9113 §6.5.2); also the size of the frames written when re-encoding.
const MAX_FRAME: usize = 16_384;
/// A header block (all its frames) longer than this is not decoded.
const MAX_BLOCK: usize = 256 * 1024;
/// hyper's (h2's) HPACK table size, `SETTINGS_HEADER_TABLE_SIZE` left at its default.
const HPACK_TABLE_SIZE: usize = 4096;
/// How much is read from the socket at a time when the bytes must be looked at.
const READ_CHUNK: usize = 16 * 1024;

const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

pub use crate::telemetry::EncodedTargets;

/// Bytes `http` accepts unencoded in a path (its `PATH_MAP`, which follows the WHATWG URL
/// path-state set and also lets `"`, `{`, `}` through), ASCII only.
fn path_byte_ok(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E | b'"' | b'{' | b'}')
}

/// Bytes `http` accepts unencoded in a query (its `QUERY_MAP`), ASCII only.
fn query_byte_ok(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E)
}

/// The origin-form target (`/path?query`) with every byte `http` would refuse or cut percent-
/// encoded, or `None` when `target` needs nothing (or is not origin-form: `*`, absolute-form).
///
/// Bytes of 0x80 and above are kept when the whole target is UTF-8 (as `http` keeps them) and
/// encoded otherwise. `%` itself is never encoded: `%22` already sent stays `%22`.
pub fn encode_target(target: &[u8]) -> Option<Vec<u8>> {
    if target.first() != Some(&b'/') {
        return None;
    }
    let utf8 = std::str::from_utf8(target).is_ok();
    let mut in_query = false;
    let keep = |b: u8, in_query: bool| {
        if b >= 0x80 {
            utf8
        } else if in_query {
            query_byte_ok(b)
        } else {
            path_byte_ok(b) || b == b'?'
        }
    };
    let needs = target.iter().any(|&b| {
        let ok = keep(b, in_query);
        in_query |= b == b'?';
        !ok
    });
    if !needs {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(target.len() + 16);
    let mut in_query = false;
    for &b in target {
        if keep(b, in_query) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
        }
        in_query |= b == b'?';
    }
    Some(out)
}

/// What the reader is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first bytes: the HTTP/2 preface or an HTTP/1.x request?
    Detect,
    /// Reading an HTTP/1.x request head.
    H1Head,
    /// Passing this many HTTP/1.x body bytes through, then the next head.
    H1Body(u64),
    /// Reading an HTTP/2 frame header (and, for header frames, the frame).
    H2Frame,
    /// Passing this many payload bytes of an HTTP/2 frame through, then the next frame.
    H2Payload(u64),
    /// Everything from here on goes through untouched.
    Passthrough,
}

/// A header block being collected from its frames.
#[derive(Debug, Default)]
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    /// The frames as received.
    raw: Vec<u8>,
    /// The HPACK fragments, concatenated.
    fragment: Vec<u8>,
}

/// The HTTP/2 side: the mirror of hyper's HPACK decoder, and whether blocks are re-encoded.
struct H2 {
    decoder: loona_hpack::Decoder<'static>,
    reencode: bool,
    block: Option<Block>,
}

/// A connection's stream whose reads come out with request targets made acceptable to hyper.
pub struct RequestTargetRepair<S> {
    inner: S,
    state: State,
    /// Read from `inner`, not looked at yet.
    input: BytesMut,
    /// Looked at, waiting to be read by hyper.
    output: BytesMut,
    /// Where the search for the end of the current HTTP/1.x head resumes.
    head_scan: usize,
    h2: Option<Box<H2>>,
    eof: bool,
    counters: EncodedTargets,
}

impl<S> RequestTargetRepair<S> {
    pub fn new(inner: S, counters: EncodedTargets) -> Self {
        RequestTargetRepair {
            inner,
            state: State::Detect,
            input: BytesMut::new(),
            output: BytesMut::new(),
            head_scan: 0,
            h2: None,
            eof: false,
            counters,
        }
    }

    /// Moves what can be decided from `input` to `output`. Returns once more input is needed (or
    /// `input` is empty). An error closes the connection.
    fn process(&mut self) -> io::Result<()> {
        loop {
            let progressed = match self.state {
                State::Passthrough => {
                    let all = self.input.split();
                    self.output.unsplit(all);
                    false
                }
                State::H1Body(0) => {
                    self.state = State::H1Head;
                    true
                }
                State::H2Payload(0) => {
                    self.state = State::H2Frame;
                    true
                }
                State::H1Body(n) | State::H2Payload(n) => {
                    let take = (self.input.len() as u64).min(n) as usize;
                    let chunk = self.input.split_to(take);
                    self.output.unsplit(chunk);
                    self.state = match self.state {
                        State::H1Body(_) => State::H1Body(n - take as u64),
                        _ => State::H2Payload(n - take as u64),
                    };
                    take > 0
                }
                State::Detect => self.detect(),
                State::H1Head => self.h1_head(),
                State::H2Frame => self.h2_frame()?,
            };
            if !progressed || self.input.is_empty() && !matches!(self.state, State::H1Body(0) | State::H2Payload(0)) {
                return Ok(());
            }
        }
    }

    fn detect(&mut self) -> bool {
        let n = self.input.len().min(H2_PREFACE.len());
        if self.input[..n] != H2_PREFACE[..n] {
            self.state = State::H1Head;
            return true;
        }
        if n < H2_PREFACE.len() {
            return false;
        }
        let preface = self.input.split_to(n);
        self.output.unsplit(preface);
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(HPACK_TABLE_SIZE);
        self.h2 = Some(Box::new(H2 { decoder, reencode: false, block: None }));
        self.state = State::H2Frame;
        true
    }

    /// One HTTP/1.x request head, when it is all there.
    fn h1_head(&mut self) -> bool {
        // Empty lines before a request line are allowed (RFC 9112 §2.2); they go as they are.
        let blank = self.input.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        if blank > 0 {
            let lines = self.input.split_to(blank);
            self.output.extend_from_slice(&lines);
            self.head_scan = 0;
            return true;
        }
        // The head ends with an empty line: "\n\n" or "\n\r\n" (hyper accepts bare LF too).
        let Some(end) = find_head_end(&self.input, self.head_scan.saturating_sub(2)) else {
            self.head_scan = self.input.len();
            if self.input.len() > MAX_HEAD {
                self.state = State::Passthrough;
                return true;
            }
            return false;
        };
        self.head_scan = 0;
        let head = self.input.split_to(end);
        match rewrite_request_line(&head) {
            Some(rewritten) => {
                self.counters.http1.inc();
                self.state = h1_framing(&rewritten);
                self.output.extend_from_slice(&rewritten);
            }
            None => {
                self.state = h1_framing(&head);
                self.output.unsplit(head);
            }
        }
        true
    }

    /// One HTTP/2 frame header; a header frame is collected whole, anything else streamed.
    fn h2_frame(&mut self) -> io::Result<bool> {
        if self.input.len() < 9 {
            return Ok(false);
        }
        let len = (usize::from(self.input[0]) << 16) | (usize::from(self.input[1]) << 8) | usize::from(self.input[2]);
        let kind = self.input[3];
        let h2 = self.h2.as_mut().expect("HTTP/2 state is set with the preface");
        let header_frame = kind == FRAME_HEADERS || kind == FRAME_CONTINUATION;
        let in_block = h2.block.is_some();
        if !header_frame && !in_block {
            let header = self.input.split_to(9);
            self.output.unsplit(header);
            self.state = State::H2Payload(len as u64);
            return Ok(true);
        }
        // Within a block only CONTINUATION of the same stream may come (RFC 9113 §6.10).
        let stream = u32::from_be_bytes([self.input[5], self.input[6], self.input[7], self.input[8]]) & 0x7FFF_FFFF;
        let fits = len <= MAX_FRAME && h2.block.as_ref().map_or(0, |b| b.raw.len()) + 9 + len <= MAX_BLOCK;
        let expected = if in_block {
            kind == FRAME_CONTINUATION && h2.block.as_ref().is_some_and(|b| b.stream == stream)
        } else {
            kind == FRAME_HEADERS
        };
        if !fits || !expected {
            return self.h2_give_up("a header block this reader does not follow").map(|()| true);
        }
        if self.input.len() < 9 + len {
            return Ok(false);
        }
        let frame = self.input.split_to(9 + len);
        let flags = frame[4];
        let mut block = h2.block.take().unwrap_or_default();
        // The frame joins what is held back before it is looked at: giving up passes it on too.
        block.raw.extend_from_slice(&frame);
        let fragment = if kind == FRAME_HEADERS {
            match headers_payload(&frame[9..], flags) {
                Ok((priority, fragment)) => {
                    block.stream = stream;
                    block.end_stream = flags & FLAG_END_STREAM != 0;
                    block.priority = priority;
                    fragment
                }
                Err(why) => {
                    h2.block = Some(block);
                    return self.h2_give_up(why).map(|()| true);
                }
            }
        } else {
            &frame[9..]
        };
        block.fragment.extend_from_slice(fragment);
        if flags & FLAG_END_HEADERS == 0 {
            h2.block = Some(block);
            return Ok(true);
        }
        self.h2_block(block)?;
        Ok(true)
    }

    /// A complete header block: decoded, and passed on as it came or re-encoded.
    fn h2_block(&mut self, block: Block) -> io::Result<()> {
        let h2 = self.h2.as_mut().expect("HTTP/2 state");
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let decoded = h2.decoder.decode_with_cb(&block.fragment, |name, value| {
            fields.push((name.into_owned(), value.into_owned()));
        });
        if let Err(err) = decoded {
            tracing::debug!(error = ?err, "HTTP/2 header block not decodable");
            h2.block = Some(block);
            return self.h2_give_up("a header block that does not decode");
        }
        let mut encoded = false;
        for (name, value) in &mut fields {
            if name.as_slice() == b":path"
                && let Some(repaired) = encode_target(value)
            {
                *value = repaired;
                encoded = true;
            }
        }
        if encoded {
            self.counters.h2.inc();
            h2.reencode = true;
        }
        if h2.reencode {
            write_block(&mut self.output, &block, &fields);
        } else {
            self.output.extend_from_slice(&block.raw);
        }
        Ok(())
    }

    /// Stops looking at this connection: what was held back goes on as it came, then all the
    /// rest, for hyper to judge. Once blocks have been re-encoded that is impossible (hyper's
    /// HPACK table lacks what the client added since), and the connection is closed.
    fn h2_give_up(&mut self, why: &'static str) -> io::Result<()> {
        let h2 = self.h2.as_mut().expect("HTTP/2 state");
        if h2.reencode {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("HTTP/2 request with {why}")));
        }
        if let Some(block) = h2.block.take() {
            self.output.extend_from_slice(&block.raw);
        }
        self.state = State::Passthrough;
        Ok(())
    }

    /// How many bytes may be read from the socket straight into the caller's buffer, when nothing
    /// is pending and the next bytes need no look.
    fn direct_limit(&self) -> Option<u64> {
        if !self.input.is_empty() {
            return None;
        }
        match self.state {
            State::Passthrough => Some(u64::MAX),
            State::H1Body(n) | State::H2Payload(n) if n > 0 => Some(n),
            _ => None,
        }
    }

    fn consumed_directly(&mut self, n: usize) {
        self.state = match self.state {
            State::H1Body(left) => State::H1Body(left - n as u64),
            State::H2Payload(left) => State::H2Payload(left - n as u64),
            other => other,
        };
    }
}

/// A HEADERS frame's payload without its padding and priority (RFC 9113 §6.2): the priority
/// fields, and the header block fragment.
fn headers_payload(payload: &[u8], flags: u8) -> Result<(Option<[u8; 5]>, &[u8]), &'static str> {
    let mut p = payload;
    let mut pad = 0;
    if flags & FLAG_PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or("a HEADERS frame too short for its padding")?;
        pad = usize::from(n);
        p = rest;
    }
    let mut priority = None;
    if flags & FLAG_PRIORITY != 0 {
        let (fields, rest) = p.split_first_chunk::<5>().ok_or("a HEADERS frame too short for its priority")?;
        priority = Some(*fields);
        p = rest;
    }
    if pad > p.len() {
        return Err("a HEADERS frame with more padding than payload");
    }
    Ok((priority, &p[..p.len() - pad]))
}

/// The end of a request head (just past its empty line), searched from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(at) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + at;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// The head with its request line's target encoded, or `None` when it needs nothing (or is no
/// request line this reader understands: hyper will answer that).
fn rewrite_request_line(head: &[u8]) -> Option<Vec<u8>> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = head[..line_end].strip_suffix(b"\r").unwrap_or(&head[..line_end]);
    let first = line.iter().position(|&b| b == b' ')?;
    let last = line.iter().rposition(|&b| b == b' ')?;
    if last <= first + 1 {
        return None;
    }
    let (method, target, version) = (&line[..first], &line[first + 1..last], &line[last + 1..]);
    if !version.starts_with(b"HTTP/") || method.is_empty() {
        return None;
    }
    // Spaces inside the target (`{job="a", instance="b"}` typed as is) are encoded as well: the
    // method is the first word and the version the last.
    let target = encode_target(target)?;
    let mut out = Vec::with_capacity(head.len() + target.len());
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(&target);
    out.push(b' ');
    out.extend_from_slice(version);
    out.extend_from_slice(&head[line.len()..]);
    Some(out)
}

/// What follows this head on the connection: its body by `Content-Length`, then the next head;
/// or, when the framing is anything else, everything untouched.
fn h1_framing(head: &[u8]) -> State {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return State::Passthrough,
    }
    if request.method == Some("CONNECT") {
        return State::Passthrough;
    }
    let mut length: Option<u64> = None;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") || h.name.eq_ignore_ascii_case("upgrade") {
            return State::Passthrough;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok()) else {
                return State::Passthrough;
            };
            if length.is_some_and(|l| l != n) {
                return State::Passthrough;
            }
            length = Some(n);
        }
    }
    State::H1Body(length.unwrap_or(0))
}

/// HPACK string literal, no Huffman (RFC 7541 §5.2).
fn put_hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    put_hpack_int(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// HPACK integer with an `n`-bit prefix after the `flags` bits (RFC 7541 §5.1).
fn put_hpack_int(out: &mut Vec<u8>, flags: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The block's fields as literals without indexing, new name (RFC 7541 §6.2.2), in HEADERS and
/// CONTINUATION frames of at most [`MAX_FRAME`] bytes.
fn write_block(out: &mut BytesMut, block: &Block, fields: &[(Vec<u8>, Vec<u8>)]) {
    let mut hpack = Vec::with_capacity(block.fragment.len() + 64);
    for (name, value) in fields {
        hpack.push(0x00);
        put_hpack_string(&mut hpack, name);
        put_hpack_string(&mut hpack, value);
    }
    let first_room = MAX_FRAME - if block.priority.is_some() { 5 } else { 0 };
    let (first, mut rest) = hpack.split_at(hpack.len().min(first_room));
    let mut flags = if block.end_stream { FLAG_END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    let priority = block.priority.as_ref().map_or(&[][..], |p| &p[..]);
    put_frame_header(out, priority.len() + first.len(), FRAME_HEADERS, flags, block.stream);
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rest.len().min(MAX_FRAME));
        let flags = if after.is_empty() { FLAG_END_HEADERS } else { 0 };
        put_frame_header(out, chunk.len(), FRAME_CONTINUATION, flags, block.stream);
        out.extend_from_slice(chunk);
        rest = after;
    }
}

fn put_frame_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream & 0x7FFF_FFFF);
}

impl<S: AsyncRead + Unpin> AsyncRead for RequestTargetRepair<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                if this.output.is_empty() {
                    // Let `input` reuse its allocation rather than share it with a drained view.
                    this.output = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if let Some(limit) = this.direct_limit() {
                // Nothing to look at (bodies, DATA frames, passthrough): no copy.
                if limit >= buf.remaining() as u64 {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let n = buf.filled().len() - before;
                    this.consumed_directly(n);
                    return Poll::Ready(Ok(()));
                }
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit as usize));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                let n = limited.filled().len();
                buf.advance(n);
                this.consumed_directly(n);
                return Poll::Ready(Ok(()));
            }
            if !this.input.is_empty() {
                this.process()?;
                if !this.output.is_empty() || this.direct_limit().is_some() {
                    continue;
                }
            }
            this.input.reserve(READ_CHUNK);
            let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input))?;
            if n == 0 {
                // The client is done: whatever was held back goes as it is, for hyper to judge.
                if let Some(block) = this.h2.as_mut().and_then(|h2| h2.block.take()) {
                    this.output.extend_from_slice(&block.raw);
                }
                let rest = this.input.split();
                this.output.unsplit(rest);
                this.eof = true;
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RequestTargetRepair<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
