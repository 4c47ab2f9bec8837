//! The cost of [`RequestTargetRepair`], the reader below hyper that percent-encodes request
//! targets sent unencoded (issue 13): every connection's reads go through it.
//!
//! - `h1_head`: a global Prometheus' `/federate` scrape request (its real head, 226 bytes),
//!   encoded (passed through) and typed unencoded (rewritten); 1000 pipelined on one stream;
//! - `h1_body`: a 4 MiB Remote-Write POST body, through the reader and read directly, to show
//!   bodies cost no copy;
//! - `h2_block`: curl's request header block, passed through (decoded only) and re-encoded.
//!
//! Run: `cargo bench --bench request_target`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promfed::serve::EncodedTargets;
use promfed::serve::request_target::RequestTargetRepair;
use tokio::io::AsyncReadExt;

const SCRAPE_ENCODED: &str = "GET /federate?match%5B%5D=%7Bjob%3D%22node%22%7D HTTP/1.1\r\nHost: promfed:9443\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
const SCRAPE_TYPED: &str = "GET /federate?match[]={job=\"node\"} HTTP/1.1\r\nHost: promfed:9443\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";

/// Reads all of `data` through the repair (or directly), in hyper's 8 KiB-and-up reads.
async fn drain(data: &[u8], repair: bool) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    if repair {
        let mut r = RequestTargetRepair::new(data, EncodedTargets::default());
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                return total;
            }
            total += n;
        }
    }
    let mut r = data;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// 1000 requests from one client on one h2 connection, its encoder indexing as nghttp2's does.
fn h2_connection(path: &[u8]) -> Vec<u8> {
    let mut encoder = loona_hpack::Encoder::new();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    for i in 0..1000u32 {
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"promfed:9443"),
            (b":path", path),
            (b"user-agent", b"curl/7.88.1"),
            (b"accept", b"*/*"),
        ];
        out.extend(frame(0x1, 0x5, 1 + 2 * i, &encoder.encode(fields)));
    }
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut group = c.benchmark_group("request_target/h1_head");
    group.throughput(Throughput::Elements(1000));
    for (name, head) in [("encoded", SCRAPE_ENCODED), ("typed_unencoded", SCRAPE_TYPED)] {
        let stream = head.repeat(1000).into_bytes();
        group.bench_with_input(BenchmarkId::from_parameter(name), &stream, |b, s| {
            b.iter(|| rt.block_on(drain(s, true)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("request_target/h1_body");
    let body = vec![0x5au8; 4 << 20];
    let mut post =
        format!("POST /api/v1/write HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    post.extend_from_slice(&body);
    group.throughput(Throughput::Bytes(post.len() as u64));
    group.bench_function("through_repair", |b| b.iter(|| rt.block_on(drain(&post, true))));
    group.bench_function("direct", |b| b.iter(|| rt.block_on(drain(&post, false))));
    group.finish();

    let mut group = c.benchmark_group("request_target/h2_block");
    group.throughput(Throughput::Elements(1000));
    for (name, path) in
        [("encoded", &b"/federate?match%5B%5D=up"[..]), ("typed_unencoded", b"/federate?match[]={job=\"node\"}")]
    {
        let stream = h2_connection(path);
        group.bench_with_input(BenchmarkId::from_parameter(name), &stream, |b, s| {
            b.iter(|| rt.block_on(drain(s, true)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
