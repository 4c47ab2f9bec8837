//! Resident memory of one group holding N merged series (100k and 1M), read from
//! `/proc/self/status` (VmRSS now, VmHWM the peak).
//!
//! Each N runs in a child process of its own (this binary re-executed with `--series N`) so
//! that one size's allocations do not colour the other's numbers. The child:
//! 1. builds a group of two replicas (`a` primary, `b`);
//! 2. for `ROUNDS` rounds, makes each replica's `/federate` body (protobuf, what promfed asks a
//!    Prometheus for first; or text with `--text`), decodes it into a batch, drops the body and
//!    applies the batch — after the first round every series exists and every round brings
//!    newer samples;
//! 3. publishes a snapshot (the served entries), then renders the full text body and its gzip
//!    as the first `/federate` after a merge does (both stay cached in the snapshot).
//!
//! Bytes per series are (RSS at a phase − RSS at start) / N. The goal (issue) is ≤ 300 MB RSS
//! holding 1M merged series.
//!
//! Run: `cargo bench --bench memory` (release build, about a minute).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use common::{PROTOBUF, TEXT};
use promfed::merge::Snapshot;
use promfed::render::federate_body;
use promfed::selector::SelectorSet;

const ROUNDS: u64 = 4;
const MB: f64 = 1_000_000.0;

/// The system allocator, counting the bytes it has handed out and not yet got back: the live
/// heap, to tell what the program holds from what glibc keeps resident after frees.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            PEAK.fetch_max(LIVE.fetch_add(layout.size(), Relaxed) + layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            PEAK.fetch_max(LIVE.fetch_add(new_size, Relaxed) + new_size, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `(VmRSS, VmHWM)` in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One measured phase, printed by the child as a tab-separated line the parent reads back.
fn phase(n: usize, name: &str, base: u64) {
    let (now, peak) = rss();
    let (live, live_peak) = (LIVE.load(Relaxed), PEAK.load(Relaxed));
    println!("PHASE\t{n}\t{name}\t{now}\t{peak}\t{live}\t{live_peak}\t{}", now.saturating_sub(base) as f64 / n as f64);
}

/// Gives glibc's free heap pages back to the kernel, to show how much of the RSS is memory the
/// allocator keeps after frees rather than memory the program holds.
#[cfg(target_env = "gnu")]
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only releases free memory; no Rust invariant is involved.
    unsafe { malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
fn trim() {}

fn child(n: usize, text: bool) {
    let id = common::identity();
    let (base, _) = rss();
    phase(n, "start", base);
    let mut g = common::group();
    for round in 0..ROUNDS {
        for (replica, skew) in [("a", 0), ("b", 1200)] {
            let batch = if text {
                common::decode_batch(Bytes::from(common::text_body(n, replica, round, skew, true)), TEXT, &id)
            } else {
                common::decode_batch(Bytes::from(common::protobuf_body(n, replica, round, skew)), PROTOBUF, &id)
            };
            let started = common::T0_MS + round as i64 * 5000 + skew;
            g.apply(common::outcome(replica, started, batch), started + 100);
        }
        if round == 0 {
            phase(n, "group, after round 1", base);
        }
    }
    assert_eq!(g.series_count(), n);
    phase(n, &format!("group, steady (after round {ROUNDS})"), base);
    trim();
    phase(n, "group, steady, after malloc_trim(0)", base);

    let now = common::now_after(ROUNDS);
    let group = g.snapshot(now);
    assert_eq!(group.entries.len(), n);
    let snapshot = Snapshot::new(vec![Arc::new(group)], true, 1);
    phase(n, "+ snapshot entries", base);

    let raw = vec![r#"{__name__=~".+"}"#.to_owned()];
    let selectors = SelectorSet::parse(raw.iter().map(String::as_str)).unwrap();
    // What a global Prometheus asks for (it sends Accept-Encoding: gzip): rendered straight
    // into the compressor, the plain body never exists.
    let gz = federate_body(&snapshot, &selectors, &raw, false, true);
    phase(n, &format!("+ cached gzip body ({:.0} MB)", gz.bytes.len() as f64 / MB), base);
    let text = federate_body(&snapshot, &selectors, &raw, false, false);
    phase(n, &format!("+ cached text body too ({:.0} MB)", text.bytes.len() as f64 / MB), base);
    drop((text, gz, snapshot));
    std::hint::black_box(&g);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--series") {
        child(args[i + 1].parse().expect("--series N"), args.iter().any(|a| a == "--text"));
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("memory: one group, 2 replicas, {ROUNDS} rounds of scrapes of each, glibc malloc\n");
    println!(
        "| series | scraped as | phase | VmRSS MB | VmHWM MB | live heap MB | peak heap MB | RSS bytes/series over start |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|");
    // Protobuf is what promfed's Accept header asks a replica for first; the text run shows the
    // same series scraped as text.
    for (n, format) in [(100_000usize, "protobuf"), (1_000_000, "protobuf"), (1_000_000, "text")] {
        let mut cmd = Command::new(&exe);
        cmd.args(["--series", &n.to_string()]);
        if format == "text" {
            cmd.arg("--text");
        }
        let out = cmd.output().expect("child runs");
        assert!(out.status.success(), "child for {n} failed: {}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.first() != Some(&"PHASE") {
                continue;
            }
            let mb = |s: &str| s.parse::<f64>().unwrap_or(0.0) / MB;
            let per: f64 = f[7].parse().unwrap_or(0.0);
            println!(
                "| {} | {format} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                f[1],
                f[2],
                mb(f[3]),
                mb(f[4]),
                mb(f[5]),
                mb(f[6]),
                per
            );
        }
    }
    println!("\ngoal: <= 300 MB RSS holding 1M merged series (see the 1M 'group, steady' and snapshot rows)");
}
