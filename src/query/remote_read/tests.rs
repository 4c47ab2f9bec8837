use super::*;
use crate::query::chunk::encode_xor as encode;
use crate::query::proto::{Chunk, ChunkedSeries, Label, QueryResult, Sample, TimeSeries};

fn query(start: i64, end: i64) -> Query {
    Query { start_timestamp_ms: start, end_timestamp_ms: end, matchers: vec![], hints: None }
}

fn labels(name: &str, instance: &str) -> Vec<Label> {
    vec![
        Label { name: "__name__".into(), value: name.into() },
        Label { name: "instance".into(), value: instance.into() },
    ]
}

fn xor_chunk(samples: &[(i64, f64)]) -> Chunk {
    Chunk {
        min_time_ms: samples[0].0,
        max_time_ms: samples[samples.len() - 1].0,
        r#type: ChunkEncoding::Xor as i32,
        data: encode(samples),
    }
}

fn framed(frame: &ChunkedReadResponse) -> Vec<u8> {
    let message = frame.encode_to_vec();
    let mut out = Vec::new();
    let mut len = message.len() as u64;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(&crc32c::crc32c(&message).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

const LIMITS: Limits = Limits { max_bytes: 1 << 30, max_samples: 1_000_000 };

fn decode_stream(queries: &[Query], bytes: &[u8], split: usize, limits: Limits) -> Result<Answer, ReadError> {
    let budget = Budget::default();
    let mut d = Decoder::new("http://r/api/v1/read".into(), queries, limits, &budget);
    // Fed in pieces of `split` bytes, as a network delivers them.
    let mut buf = Vec::new();
    for piece in bytes.chunks(split.max(1)) {
        buf.extend_from_slice(piece);
        let used = d.frames(&buf)?;
        buf.drain(..used);
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    Ok(d.finish())
}

#[test]
fn streamed_frames_in_any_split_give_the_series_cut_to_the_range() {
    let early: Vec<(i64, f64)> = (0..120).map(|i| (i * 15_000, i as f64)).collect();
    let late: Vec<(i64, f64)> = (120..240).map(|i| (i * 15_000, i as f64)).collect();
    let frames = [
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries { labels: labels("up", "a"), chunks: vec![xor_chunk(&early)] }],
            query_index: 0,
        },
        // The same series continues in the next frame, with its labels again.
        ChunkedReadResponse {
            chunked_series: vec![
                ChunkedSeries { labels: labels("up", "a"), chunks: vec![xor_chunk(&late)] },
                ChunkedSeries { labels: labels("up", "b"), chunks: vec![xor_chunk(&early[..3])] },
            ],
            query_index: 0,
        },
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries { labels: labels("other", "a"), chunks: vec![xor_chunk(&late[..2])] }],
            query_index: 1,
        },
    ];
    let bytes: Vec<u8> = frames.iter().flat_map(framed).collect();
    let queries = [query(30_000, 3_000_000), query(0, i64::MAX)];
    for split in [1, 7, 100, bytes.len()] {
        let answer = decode_stream(&queries, &bytes, split, LIMITS).expect("decodes");
        assert_eq!(answer.results[0].len(), 2);
        let a = &answer.results[0][0];
        assert_eq!(a.labels[1].1, "a");
        assert_eq!(a.samples.first().unwrap().0, 30_000, "cut to the start");
        assert_eq!(a.samples.last().unwrap().0, 3_000_000, "cut to the end");
        assert_eq!(a.samples.len(), 199);
        assert_eq!(answer.results[1][0].samples, late[..2].to_vec());
    }
}

#[test]
fn bad_streams_are_errors_naming_what_was_wrong() {
    let frame = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries {
            labels: labels("up", "a"),
            chunks: vec![xor_chunk(&[(1, 1.0), (2, 2.0)])],
        }],
        query_index: 0,
    };
    let good = framed(&frame);
    let queries = [query(0, 10)];
    let err = |bytes: &[u8], limits| decode_stream(&queries, bytes, bytes.len(), limits).unwrap_err().to_string();
    let mut crc = good.clone();
    crc[2] ^= 1;
    assert!(err(&crc, LIMITS).contains("CRC-32C"), "{}", err(&crc, LIMITS));
    // A chunk cut short (its frame's CRC right): the chunk's error, naming the sample.
    let mut cut = frame.clone();
    let data = &mut cut.chunked_series[0].chunks[0].data;
    data.truncate(data.len() - 3);
    let e = err(&framed(&cut), LIMITS);
    assert!(e.contains("XOR chunk ends inside sample"), "{e}");
    let wrong_index = framed(&ChunkedReadResponse { query_index: 3, ..frame.clone() });
    assert!(err(&wrong_index, LIMITS).contains("a frame for query 3 of 1"));
    assert!(err(&[0xff; 12], LIMITS).contains("not a varint"));
    assert!(err(&[0xff, 0xff, 0xff, 0xff, 0x7f], LIMITS).contains("a frame of"));
    let few = Limits { max_bytes: 1 << 20, max_samples: 1 };
    assert!(err(&good, few).contains("more than 1 samples"));
    // A frame cut short is held for more bytes, then reported by `read` as the stream ending
    // inside a frame.
    let budget = Budget::default();
    let mut d = Decoder::new("u".into(), &queries, LIMITS, &budget);
    assert_eq!(d.frames(&good[..good.len() - 1]).unwrap(), 0);
}

#[test]
fn histogram_chunks_are_skipped_and_said() {
    let mut chunk = xor_chunk(&[(1, 1.0)]);
    chunk.r#type = ChunkEncoding::Histogram as i32;
    let frame = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries { labels: labels("h", "a"), chunks: vec![chunk] }],
        query_index: 0,
    };
    let answer = decode_stream(&[query(0, 10)], &framed(&frame), 1000, LIMITS).unwrap();
    assert_eq!(answer.skipped, [r#"a native-histogram chunk of h{instance="a"}"#]);
    assert!(answer.results[0][0].samples.is_empty());
}

#[test]
fn a_samples_answer_is_read_within_its_limits() {
    let response = ReadResponse {
        results: vec![QueryResult {
            timeseries: vec![TimeSeries {
                labels: labels("up", "a"),
                samples: vec![Sample { value: 1.0, timestamp: 5 }, Sample { value: 2.0, timestamp: 3 }],
                exemplars: vec![],
            }],
        }],
    };
    let body = snap::raw::Encoder::new().compress_vec(&response.encode_to_vec()).unwrap();
    let queries = [query(0, 10)];
    let answer = Decoder::new("u".into(), &queries, LIMITS, &Budget::default()).samples(&body).unwrap();
    assert_eq!(answer.results[0][0].samples, [(3, 2.0), (5, 1.0)], "sorted");
    let small = Limits { max_bytes: 10, max_samples: 10 };
    assert!(matches!(
        Decoder::new("u".into(), &queries, small, &Budget::default()).samples(&body),
        Err(ReadError::TooLarge { .. })
    ));
    assert!(Decoder::new("u".into(), &queries, LIMITS, &Budget::default()).samples(b"not snappy").is_err());
    let two = [query(0, 1), query(0, 1)];
    let e = Decoder::new("u".into(), &two, LIMITS, &Budget::default()).samples(&body).unwrap_err();
    assert!(e.to_string().contains("1 results for 2 queries"), "{e}");
}
