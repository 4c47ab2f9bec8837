//! A Remote-Write 1.0 load generator, for comparing receivers (promfed, Prometheus 2.42 with
//! `--web.enable-remote-write-receiver`, VictoriaMetrics) with the same payloads; driven by
//! `benches/peers/remote_write_receive.sh`. Not a criterion bench (`harness = false`): it runs
//! against a URL and prints one `RESULT` line.
//!
//! ```sh
//! cargo bench --no-default-features --bench rw_load -- --url http://127.0.0.1:9090/api/v1/write \
//!     --seconds 20 --concurrency 4 --series 10000 --samples-per-request 500 --pid <receiver pid>
//! ```
//!
//! Payloads look like what an HA Prometheus pushes: ten metric names, ten labels per series
//! (`__name__`, the external labels `__replica__` and `cluster`, then `cpu`, `instance`, `job`,
//! `mode`, `namespace`, `node`, `pod`), one sample per series per round. A round's timestamp is
//! the wall clock in milliseconds, at least 1 ms after the previous round's: every receiver
//! accepts every sample (per series in order, never in the future, never older than a
//! lookback), as it would from a Prometheus scraping very often.
//! Each request is a `WriteRequest` of `--samples-per-request` series, encoded once with prost
//! (`promfed::remote::proto`); per round only the sample bytes are patched in place and the body
//! is snappy-compressed again.
//!
//! Connection `k` of `--concurrency` sends the requests (chunks of series) `k`, `k + N`, ... one
//! after the other, round after round, over one HTTP/1.1 keep-alive connection: a series always
//! goes through the same connection, so its samples arrive in order (as Prometheus' shards do).
//! `--warmup-rounds` rounds (series creation) are sent first and not measured. The measured
//! window stops at `--seconds` or `--max-samples`, whichever comes first. With `--pid`, the
//! receiver's CPU time (utime + stime from `/proc/<pid>/stat`) is read at both ends of the
//! window and again `--settle-seconds` later (work a receiver defers past the window, such as
//! background merges, is counted in the second figure), and its peak RSS (`VmHWM`) at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use promfed::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message as _;

#[derive(Parser, Debug)]
#[command(about = "Remote-Write 1.0 load generator")]
struct Args {
    /// The receiver's write endpoint, e.g. http://127.0.0.1:9090/api/v1/write.
    #[arg(long)]
    url: String,
    /// Length of the measured window (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Distinct series; each gets one sample per round.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Series (= samples) per request, like Prometheus' `max_samples_per_send`.
    #[arg(long, default_value_t = 500)]
    samples_per_request: usize,
    /// Stop the measured window after this many accepted samples.
    #[arg(long, default_value_t = 500_000_000)]
    max_samples: u64,
    /// Rounds sent before measuring (the first one creates the series).
    #[arg(long, default_value_t = 2)]
    warmup_rounds: u64,
    /// The receiver's process id, to read its CPU time and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// After the window, wait this long and read the receiver's CPU time again: work it defers
    /// (flushes, merges of parts, compaction) is counted too.
    #[arg(long, default_value_t = 5.0)]
    settle_seconds: f64,
    /// Value of the `__replica__` label.
    #[arg(long, default_value = "a")]
    replica: String,
    /// Value of the `cluster` label.
    #[arg(long, default_value = "eu-west-1")]
    cluster: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const NAMES: [&str; 10] = [
    "apiserver_request_duration_seconds_bucket",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "http_requests_total",
    "kube_pod_container_status_restarts_total",
    "node_cpu_seconds_total",
    "node_filesystem_avail_bytes",
    "node_network_receive_bytes_total",
    "process_resident_memory_bytes",
    "up",
];
const JOBS: [&str; 3] = ["node-exporter", "kubelet", "kube-state-metrics"];
const MODES: [&str; 5] = ["idle", "user", "system", "iowait", "steal"];
const NAMESPACES: [&str; 6] = ["default", "kube-system", "monitoring", "payments", "search", "checkout"];

/// Bytes of a timestamp's varint for every timestamp used (ms since the epoch from 2^35, about
/// 1971, to 2^42, about 2109): the patched samples keep the template's length.
const TS_VARINT: usize = 6;

/// Labels of series `i`, sorted by name as the spec requires.
fn labels(i: usize, args: &Args) -> Vec<Label> {
    let host = i / 40;
    let pairs = [
        ("__name__", NAMES[i % NAMES.len()].to_owned()),
        ("__replica__", args.replica.clone()),
        ("cluster", args.cluster.clone()),
        ("cpu", (i / 10 % 16).to_string()),
        ("instance", format!("10.{}.{}.{}:9100", (host >> 16) & 255, (host >> 8) & 255, host & 255)),
        ("job", JOBS[i / 10 % JOBS.len()].to_owned()),
        ("mode", MODES[i / 10 % MODES.len()].to_owned()),
        ("namespace", NAMESPACES[i / 7 % NAMESPACES.len()].to_owned()),
        (
            "node",
            format!("ip-10-{}-{}-{}.eu-west-1.compute.internal", (host >> 16) & 255, (host >> 8) & 255, host & 255),
        ),
        ("pod", format!("app-{:x}-{:05}", (i * 7919) & 0xffff, i)),
    ];
    pairs.into_iter().map(|(n, v)| Label { name: n.to_owned(), value: v }).collect()
}

/// Value of series `i` at round `round`: counters grow, gauges move a little.
fn value(i: usize, round: u64) -> f64 {
    if NAMES[i % NAMES.len()].ends_with("_total") {
        (i as f64) * 10.0 + round as f64 * 3.0
    } else {
        ((i * 31 + round as usize) % 1000) as f64 / 8.0
    }
}

/// One request's series, encoded once; [`Chunk::body`] patches the samples of a round.
struct Chunk {
    raw: Vec<u8>,
    /// Per series: its index and where its sample's value (8 bytes, then `0x10` and the
    /// timestamp varint) starts in `raw`.
    samples: Vec<(usize, usize)>,
}

impl Chunk {
    fn new(series: std::ops::Range<usize>, args: &Args, t0: i64) -> Chunk {
        let timeseries: Vec<TimeSeries> = series
            .clone()
            .map(|i| TimeSeries {
                labels: labels(i, args),
                // A non-zero value so that prost writes the field (proto3 leaves defaults out).
                samples: vec![Sample { value: 1.5, timestamp: t0 }],
                exemplars: vec![],
            })
            .collect();
        let req = WriteRequest { timeseries, metadata: vec![] };
        let raw = req.encode_to_vec();
        // Each TimeSeries ends with its one sample: ... 0x09 <8 bytes value> 0x10 <ts varint>.
        let mut samples = Vec::with_capacity(series.len());
        let mut pos = 0;
        for (i, ts) in series.zip(&req.timeseries) {
            let len = ts.encoded_len();
            pos += 1 + prost::encoding::encoded_len_varint(len as u64) + len;
            let at = pos - TS_VARINT - 1 - 8;
            assert_eq!((raw[at - 1], raw[at + 8]), (0x09, 0x10), "sample layout of series {i}");
            samples.push((i, at));
        }
        assert_eq!(pos, raw.len());
        Chunk { raw, samples }
    }

    /// The snappy body of round `round` (timestamp `ts`).
    fn body(&mut self, round: u64, ts: i64) -> Bytes {
        let mut varint = Vec::with_capacity(10);
        prost::encoding::encode_varint(ts as u64, &mut varint);
        assert_eq!(varint.len(), TS_VARINT, "timestamp {ts} outside the patched range");
        for &(i, at) in &self.samples {
            self.raw[at..at + 8].copy_from_slice(&value(i, round).to_le_bytes());
            self.raw[at + 9..at + 9 + TS_VARINT].copy_from_slice(&varint);
        }
        Bytes::from(snap::raw::Encoder::new().compress_vec(&self.raw).expect("snappy"))
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, tick: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start with field 3, the state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / tick)
}

/// A field of `/proc/<pid>/status` in MB (`VmHWM`, `VmRSS`).
fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn clock_tick() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Default)]
struct Counts {
    samples: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    warmup_errors: AtomicU64,
    warmup_samples: AtomicU64,
}

struct Shared {
    args: Args,
    client: reqwest::Client,
    counts: Counts,
    stop: AtomicBool,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Sends one body; true if the receiver answered 2xx.
    async fn send(&self, body: Bytes) -> bool {
        let result = self
            .client
            .post(&self.args.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await;
        let error = match result {
            Ok(resp) => {
                let status = resp.status();
                // Read the body to the end so that the connection is reused.
                let text = resp.bytes().await.unwrap_or_default();
                if status.is_success() {
                    return true;
                }
                format!("HTTP {}: {}", status.as_u16(), String::from_utf8_lossy(&text[..text.len().min(300)]).trim())
            }
            Err(e) => format!("{e:?}"),
        };
        let mut first = self.first_error.lock().expect("not poisoned");
        if first.is_none() {
            eprintln!("rw_load: first error: {error}");
            *first = Some(error);
        }
        false
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

/// The timestamp of the next round: now, and at least 1 ms after the previous one.
fn next_ts(previous: i64) -> i64 {
    now_ms().max(previous + 1)
}

/// Connection `k`: its chunks, round after round.
async fn connection(
    shared: Arc<Shared>,
    mut chunks: Vec<Chunk>,
    warmed: Arc<tokio::sync::Barrier>,
    mut go: tokio::sync::watch::Receiver<Option<Instant>>,
) {
    let a = &shared.args;
    let c = &shared.counts;
    let warmup_until = Instant::now() + Duration::from_secs_f64(a.seconds.max(30.0));
    let mut round = 0u64;
    let mut ts = 0;
    while round < a.warmup_rounds && Instant::now() < warmup_until {
        ts = next_ts(ts);
        for chunk in &mut chunks {
            if shared.send(chunk.body(round, ts)).await {
                c.warmup_samples.fetch_add(chunk.samples.len() as u64, Ordering::Relaxed);
            } else {
                c.warmup_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        round += 1;
    }
    warmed.wait().await;
    let Ok(start) = go.wait_for(Option::is_some).await.map(|s| s.expect("is some")) else { return };
    let deadline = start + Duration::from_secs_f64(a.seconds);
    'rounds: loop {
        ts = next_ts(ts);
        for chunk in &mut chunks {
            if shared.stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                break 'rounds;
            }
            let n = chunk.samples.len() as u64;
            let body = chunk.body(round, ts);
            c.requests.fetch_add(1, Ordering::Relaxed);
            if shared.send(body).await {
                if c.samples.fetch_add(n, Ordering::Relaxed) + n >= a.max_samples {
                    shared.stop.store(true, Ordering::Relaxed);
                }
            } else {
                c.errors.fetch_add(1, Ordering::Relaxed);
                // A refusing or dead receiver: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        round += 1;
    }
}

fn main() {
    let args = Args::parse();
    assert!(args.concurrency > 0 && args.series > 0 && args.samples_per_request > 0, "sizes must be positive");
    assert!(args.seconds > 0.0 && args.seconds <= 3600.0, "--seconds must be in (0, 3600]");
    let tick = clock_tick();
    let t0 = now_ms();

    let started = Instant::now();
    let spr = args.samples_per_request;
    let n_chunks = args.series.div_ceil(spr);
    let mut per_conn: Vec<Vec<Chunk>> = (0..args.concurrency).map(|_| Vec::new()).collect();
    let (mut raw_bytes, mut snappy_bytes) = (0usize, 0usize);
    for c in 0..n_chunks {
        let range = c * spr..((c + 1) * spr).min(args.series);
        let mut chunk = Chunk::new(range, &args, t0);
        raw_bytes += chunk.raw.len();
        snappy_bytes += chunk.body(0, t0).len();
        per_conn[c % args.concurrency].push(chunk);
    }
    let per_conn: Vec<Vec<Chunk>> = per_conn.into_iter().filter(|c| !c.is_empty()).collect();
    let conns = per_conn.len();
    eprintln!(
        "rw_load: {} series in {n_chunks} requests of {spr} per round over {conns} connections; \
         a round is {:.1} KB snappy ({:.1} KB raw): {:.1} bytes/sample on the wire; encoded in {:.2} s",
        args.series,
        snappy_bytes as f64 / 1000.0,
        raw_bytes as f64 / 1000.0,
        snappy_bytes as f64 / args.series as f64,
        started.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(30))
        .user_agent("promfed-rw-load/0.1")
        .build()
        .expect("client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let shared = Arc::new(Shared {
        args,
        client,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
        first_error: std::sync::Mutex::new(None),
    });
    let s = shared.clone();
    let result = rt.block_on(async move {
        let warmed = Arc::new(tokio::sync::Barrier::new(conns + 1));
        let (go, go_rx) = tokio::sync::watch::channel(None);
        let mut tasks = tokio::task::JoinSet::new();
        for chunks in per_conn {
            tasks.spawn(connection(s.clone(), chunks, warmed.clone(), go_rx.clone()));
        }
        // Every connection has sent its warm-up rounds: read the counters, then start them.
        warmed.wait().await;
        let a = &s.args;
        let cpu0 = a.pid.and_then(|p| cpu_seconds(p, tick));
        let self0 = cpu_seconds(std::process::id(), tick);
        let t_start = Instant::now();
        go.send_replace(Some(t_start));
        while tasks.join_next().await.is_some() {}
        let elapsed = t_start.elapsed().as_secs_f64();
        let cpu1 = a.pid.and_then(|p| cpu_seconds(p, tick));
        let self1 = cpu_seconds(std::process::id(), tick);
        tokio::time::sleep(Duration::from_secs_f64(a.settle_seconds.clamp(0.0, 60.0))).await;
        let cpu2 = a.pid.and_then(|p| cpu_seconds(p, tick));
        let hwm = a.pid.and_then(|p| status_mb(p, "VmHWM"));
        let delta = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| y - x);
        (elapsed, delta(cpu0, cpu1), delta(cpu0, cpu2), delta(self0, self1), hwm)
    });
    let (elapsed, cpu, cpu_settled, self_cpu, hwm) = result;
    let c = &shared.counts;
    let samples = c.samples.load(Ordering::Relaxed);
    let fmt = |v: Option<f64>, p: usize| v.map_or("na".to_owned(), |v| format!("{v:.p$}"));
    println!(
        "RESULT samples={samples} requests={} errors={} warmup_samples={} warmup_errors={} seconds={elapsed:.3} \
         samples_per_sec={:.0} receiver_cpu_seconds={} receiver_cpu_seconds_settled={} \
         samples_per_cpu_second={} samples_per_cpu_second_settled={} receiver_vmhwm_mb={} \
         loadgen_cpu_seconds={} bytes_per_sample={:.2}",
        c.requests.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.warmup_samples.load(Ordering::Relaxed),
        c.warmup_errors.load(Ordering::Relaxed),
        samples as f64 / elapsed,
        fmt(cpu, 2),
        fmt(cpu_settled, 2),
        fmt(cpu.filter(|&x| x > 0.0).map(|x| samples as f64 / x), 0),
        fmt(cpu_settled.filter(|&x| x > 0.0).map(|x| samples as f64 / x), 0),
        fmt(hwm, 1),
        fmt(self_cpu, 2),
        snappy_bytes as f64 / shared.args.series as f64,
    );
}
