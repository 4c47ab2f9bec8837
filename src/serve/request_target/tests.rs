use super::*;
use tokio::io::AsyncReadExt;

/// A client that sends `data` at most `chunk` bytes per read.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.data.len() - self.at).min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What hyper reads when the client sends `data`, `chunk` bytes at a time, into reads of
/// `read_size` bytes; and the counters after.
async fn through(data: &[u8], chunk: usize, read_size: usize) -> io::Result<(Vec<u8>, EncodedTargets)> {
    let counters = EncodedTargets::default();
    let mut stream = RequestTargetRepair::new(Trickle { data: data.to_vec(), at: 0, chunk }, counters.clone());
    let mut out = Vec::new();
    let mut buf = vec![0; read_size];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok((out, counters));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// [`through`] with several chunk and read sizes, all of which must give the same bytes.
async fn through_all(data: &[u8]) -> (Vec<u8>, u64, u64) {
    let (want, counters) = through(data, data.len().max(1), 64 * 1024).await.expect("reads");
    for (chunk, read_size) in [(1, 7), (3, 1), (5, 64 * 1024), (4096, 100)] {
        let (got, _) = through(data, chunk, read_size).await.expect("reads");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "chunk {chunk}, reads of {read_size}"
        );
    }
    (want, counters.http1.get(), counters.h2.get())
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 3 <= s.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&s[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// encode_target, checked against the `http` crate itself

#[test]
fn every_byte_http_refuses_is_encoded_and_every_byte_it_keeps_is_left() {
    let mut checked = 0;
    for b in 0u8..=255 {
        for (prefix, suffix) in [(&b"/a"[..], &b"b?x=1"[..]), (b"/p?x=", b"y"), (b"/", b""), (b"/?", b"")] {
            let mut target = prefix.to_vec();
            target.push(b);
            target.extend_from_slice(suffix);
            let accepted =
                http::uri::PathAndQuery::try_from(target.as_slice()).is_ok_and(|pq| pq.as_str().len() == target.len());
            match encode_target(&target) {
                None => assert!(accepted, "byte {b:#04x} in {:?}: http refuses or cuts it, left as it is", target),
                Some(encoded) => {
                    assert!(!accepted, "byte {b:#04x} in {target:?}: http takes it, yet it was encoded");
                    let pq = http::uri::PathAndQuery::try_from(encoded.as_slice())
                        .unwrap_or_else(|e| panic!("{encoded:?} (from byte {b:#04x}): {e}"));
                    assert_eq!(pq.as_str().as_bytes(), encoded.as_slice(), "nothing cut");
                    assert_eq!(percent_decode(&encoded), target, "the same bytes once decoded");
                    let split = |t: &[u8]| t.iter().position(|&c| c == b'?');
                    assert_eq!(split(&encoded).is_some(), split(&target).is_some(), "the query starts where it did");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 256 * 4);
}

#[test]
fn the_runbook_query_is_encoded_as_curl_would_without_g() {
    let encoded = encode_target(br#"/federate?match[]={job="node"}"#).expect("needs encoding");
    assert_eq!(String::from_utf8(encoded).unwrap(), "/federate?match[]={job=%22node%22}");
    let encoded = encode_target(br#"/api/v1/series?match[]=up{job="a b"}#x"#).expect("needs encoding");
    assert_eq!(String::from_utf8(encoded).unwrap(), "/api/v1/series?match[]=up{job=%22a%20b%22}%23x");
    // UTF-8 stays, a stray high byte does not, `%` is never touched.
    assert_eq!(encode_target("/x?l=\"é\"".as_bytes()).unwrap(), "/x?l=%22é%22".as_bytes());
    assert_eq!(encode_target(b"/x?l=\xff%22").unwrap(), b"/x?l=%FF%22");
    assert_eq!(encode_target(b"/federate?match%5B%5D=%7Bjob%3D%22node%22%7D"), None);
    assert_eq!(encode_target(b"*"), None);
    assert_eq!(encode_target(b"http://h/x?\"\""), None, "absolute-form is left to hyper");
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.x

#[tokio::test]
async fn pipelined_requests_are_each_rewritten_and_bodies_never() {
    let body = b"GET /in-body?\"x\" HTTP/1.1\r\n\r\n";
    let mut sent = Vec::new();
    sent.extend_from_slice(
        format!("POST /api/v1/write?a=\"b\" HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
    );
    sent.extend_from_slice(body);
    sent.extend_from_slice(b"\r\nGET /federate?match[]={job=\"node\"} HTTP/1.1\r\nHost: h\r\n\r\n");
    sent.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    sent.extend_from_slice(b"GET /bare?lf=\"1\" HTTP/1.1\nHost: h\n\n");
    sent.extend_from_slice(b"GET /federate?match[]={job=\"a\", instance=\"b\"} HTTP/1.0\r\n\r\n");
    let (got, http1, h2) = through_all(&sent).await;
    let mut want = Vec::new();
    want.extend_from_slice(
        format!("POST /api/v1/write?a=%22b%22 HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len())
            .as_bytes(),
    );
    want.extend_from_slice(body);
    want.extend_from_slice(b"\r\nGET /federate?match[]={job=%22node%22} HTTP/1.1\r\nHost: h\r\n\r\n");
    want.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    want.extend_from_slice(b"GET /bare?lf=%221%22 HTTP/1.1\nHost: h\n\n");
    want.extend_from_slice(b"GET /federate?match[]={job=%22a%22,%20instance=%22b%22} HTTP/1.0\r\n\r\n");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    assert_eq!((http1, h2), (4, 0));
}

#[tokio::test]
async fn framing_it_does_not_follow_passes_the_rest_through_untouched() {
    for first in [
        "POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\n\r\n",
        "POST /w HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /w HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "GET /a b c\r\n\r\n",
    ] {
        let sent = format!("{first}GET /x?\"y\" HTTP/1.1\r\n\r\n");
        let (got, http1, _) = through_all(sent.as_bytes()).await;
        assert_eq!(String::from_utf8_lossy(&got), sent, "after {first:?}");
        assert_eq!(http1, 0);
    }
    // A head that never ends within 64 KiB: passed through as it came.
    let mut sent = b"GET /x?\"y\" HTTP/1.1\r\n".to_vec();
    while sent.len() <= MAX_HEAD + 10 {
        sent.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (got, counters) = through(&sent, 4096, 8192).await.expect("reads");
    assert_eq!(got, sent);
    assert_eq!(counters.http1.get(), 0);
}

#[tokio::test]
async fn a_request_cut_short_is_passed_on_as_it_came() {
    for sent in [
        &b"GET /x?\"y\" HTTP/1.1\r\nHost"[..],
        b"PRI * HTTP/2.0\r\n",
        b"POST /w HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
    ] {
        let (got, counters) = through(sent, 2, 100).await.expect("reads");
        assert_eq!(got, sent);
        assert_eq!(counters.http1.get(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/2

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_frame_header(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out.to_vec()
}

fn request_fields(path: &[u8]) -> Vec<(&[u8], &[u8])> {
    vec![
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"promfed:9443"),
        (b":path", path),
        (b"user-agent", b"curl/7.88.1"),
        (b"x-scope", b"team-a"),
    ]
}

/// A frame read back: kind, flags, stream, the fields of the block it ends, its payload if not
/// a header frame.
type ReadFrame = (u8, u8, u32, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

/// The frames in `bytes` (after the preface), and each header block decoded as hyper would.
fn read_frames(bytes: &[u8]) -> Vec<ReadFrame> {
    assert!(bytes.starts_with(H2_PREFACE));
    let mut rest = &bytes[H2_PREFACE.len()..];
    let mut decoder = loona_hpack::Decoder::new();
    let mut out = Vec::new();
    let mut block = Vec::new();
    while !rest.is_empty() {
        let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        let payload = &rest[9..9 + len];
        assert!(len <= MAX_FRAME, "frames fit hyper's SETTINGS_MAX_FRAME_SIZE");
        rest = &rest[9 + len..];
        if kind == FRAME_HEADERS || kind == FRAME_CONTINUATION {
            let mut p = payload;
            let mut pad = 0;
            if kind == FRAME_HEADERS && flags & FLAG_PADDED != 0 {
                pad = usize::from(p[0]);
                p = &p[1..];
            }
            if kind == FRAME_HEADERS && flags & FLAG_PRIORITY != 0 {
                p = &p[5..];
            }
            block.extend_from_slice(&p[..p.len() - pad]);
            if flags & FLAG_END_HEADERS != 0 {
                let fields = decoder.decode(&block).expect("hyper's decoder reads every block");
                block.clear();
                out.push((kind, flags, stream, fields, Vec::new()));
            } else {
                out.push((kind, flags, stream, Vec::new(), Vec::new()));
            }
        } else {
            out.push((kind, flags, stream, Vec::new(), payload.to_vec()));
        }
    }
    out
}

fn path_of(fields: &[(Vec<u8>, Vec<u8>)]) -> String {
    let (_, v) = fields.iter().find(|(n, _)| n == b":path").expect(":path");
    String::from_utf8(v.clone()).unwrap()
}

#[tokio::test]
async fn h2_blocks_pass_as_they_are_until_a_path_needs_encoding_then_all_are_literals() {
    // The client's encoder indexes what it sends (as curl's nghttp2 does): the third request
    // refers to dynamic-table entries the first one added.
    let mut client = loona_hpack::Encoder::new();
    let mut sent = H2_PREFACE.to_vec();
    sent.extend(frame(0x4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff])); // SETTINGS
    let first = client.encode(request_fields(b"/federate?match%5B%5D=up"));
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, &first));
    let clean_prefix = sent.len();
    // A POST whose block is padded, with a priority, split over a CONTINUATION; then its DATA.
    let second = client.encode(request_fields(br#"/api/v1/write?x="y""#));
    let mut payload = vec![3u8];
    payload.extend_from_slice(&[0, 0, 0, 0, 15]);
    payload.extend_from_slice(&second[..4]);
    payload.extend_from_slice(&[0, 0, 0]);
    sent.extend(frame(FRAME_HEADERS, FLAG_PADDED | FLAG_PRIORITY, 3, &payload));
    sent.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, &second[4..]));
    sent.extend(frame(0x0, FLAG_END_STREAM, 3, b"HEADERS-looking \x00\x00\x01 body"));
    let third = client.encode(request_fields(b"/federate?match%5B%5D=up"));
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 5, &third));
    let long_value = vec![b'v'; 20_000];
    let mut fourth = request_fields(br#"/federate?match[]={job="node"}"#);
    fourth.push((b"x-long", &long_value));
    let fourth = client.encode(fourth);
    sent.extend(frame(FRAME_HEADERS, 0, 7, &fourth[..MAX_FRAME]));
    sent.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 7, &fourth[MAX_FRAME..]));

    let (got, http1, h2) = through_all(&sent).await;
    assert_eq!((http1, h2), (0, 2));
    assert_eq!(got[..clean_prefix], sent[..clean_prefix], "before any repair, bytes go as they came");
    let frames = read_frames(&got);
    let blocks: Vec<_> = frames.iter().filter(|f| !f.3.is_empty()).collect();
    assert_eq!(blocks.len(), 4);
    assert_eq!(path_of(&blocks[0].3), "/federate?match%5B%5D=up");
    assert_eq!(path_of(&blocks[1].3), "/api/v1/write?x=%22y%22");
    assert_eq!(path_of(&blocks[2].3), "/federate?match%5B%5D=up");
    assert_eq!(path_of(&blocks[3].3), "/federate?match[]={job=%22node%22}");
    for (i, b) in blocks.iter().enumerate() {
        let names: Vec<_> = b.3.iter().map(|(n, _)| String::from_utf8_lossy(n).into_owned()).collect();
        assert_eq!(&names[..6], [":method", ":scheme", ":authority", ":path", "user-agent", "x-scope"], "block {i}");
        assert_eq!(b.3[5].1, b"team-a");
    }
    assert_eq!(blocks[3].3[6].1, long_value);
    // Stream ids, END_STREAM and the priority kept; the DATA frame untouched.
    assert_eq!(blocks.iter().map(|b| b.2).collect::<Vec<_>>(), [1, 3, 5, 7]);
    assert_eq!(blocks[1].1 & (FLAG_END_STREAM | FLAG_PRIORITY), FLAG_PRIORITY);
    assert_eq!(blocks[2].1 & FLAG_END_STREAM, FLAG_END_STREAM);
    let data = frames.iter().find(|f| f.0 == 0x0).expect("DATA");
    assert_eq!(data.4, b"HEADERS-looking \x00\x00\x01 body");
}

#[tokio::test]
async fn an_undecodable_block_before_any_repair_goes_through_for_hyper_to_refuse() {
    let mut sent = H2_PREFACE.to_vec();
    sent.extend(frame(0x4, 0, 0, &[]));
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &[0xff, 0xff, 0xff, 0xff, 0x0f])); // index out of range
    let mut client = loona_hpack::Encoder::new();
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 3, &client.encode(request_fields(b"/x?\"y\""))));
    let (got, _, h2) = through_all(&sent).await;
    assert_eq!(got, sent);
    assert_eq!(h2, 0);
}

#[tokio::test]
async fn an_undecodable_block_after_a_repair_closes_the_connection() {
    let mut client = loona_hpack::Encoder::new();
    let mut sent = H2_PREFACE.to_vec();
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &client.encode(request_fields(b"/x?\"y\""))));
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 3, &[0xff, 0xff, 0xff, 0xff, 0x0f]));
    let err = through(&sent, sent.len(), 1 << 16).await.expect_err("the connection is closed");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // A frame that is not CONTINUATION inside a block, after a repair: closed too.
    let mut client = loona_hpack::Encoder::new();
    let mut sent = H2_PREFACE.to_vec();
    sent.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &client.encode(request_fields(b"/x?\"y\""))));
    sent.extend(frame(FRAME_HEADERS, 0, 3, &client.encode(request_fields(b"/z"))));
    sent.extend(frame(0x0, 0, 3, b"x"));
    assert!(through(&sent, 5, 1 << 16).await.is_err());
}
