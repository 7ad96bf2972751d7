//! Snapshot build benchmarks over the deterministic synthetic `/master/state` documents of
//! `loadtest/synth_state.rs`, at 1 000, 10 000 and 100 000 running tasks.
//!
//! Each document is generated once, outside the timing loop. Timed per size:
//! - `parse`: [`State::from_slice`];
//! - `parse_reader`: [`State::from_reader`] over the same bytes (the refresh thread's path);
//! - `build`: `from_slice` + [`generate`] + [`Snapshot::new`], in the refresh thread's order
//!   (the parsed `State` is dropped before `Snapshot::new`, and that drop is timed). Dropping
//!   the results is not timed: the refresh thread keeps the snapshot, the handle frees it later.
//!
//! Before timing, the bench re-runs itself once per size in a child process (environment
//! variable [`PEAK_ENV`]) to measure the peak extra memory of one build, two ways:
//! - heap: this binary's global allocator wraps mimalloc (the server's allocator) and, only
//!   while the build runs, tracks the live requested bytes and their maximum. This is the
//!   exact peak of what the build asked for on top of what was already allocated (the
//!   document), without allocator overhead or fragmentation. A `realloc` counts old and new
//!   blocks at once, as a moving reallocation holds both.
//! - RSS: the child resets the kernel's peak-RSS counter (`5` into `/proc/self/clear_refs`)
//!   once the document is in memory, and reports `VmHWM` after the build minus `VmRSS` before
//!   it. This includes the allocator's overhead and the pages it keeps.
//!
//! A last child times one cold 100 000-task build with tracking off, for comparison (a cold
//! build in a fresh process also pays for first-touch page faults).
//!
//! The target is a 100 000-task parse + build under 1 s on one core (the build is
//! single-threaded) with peak extra memory under 3 times the document size.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use mesos_dns::config::Config;
use mesos_dns::mesos::state::State;
use mesos_dns::records::generator::{GenConfig, NoHosts, generate};
use mesos_dns::snapshot::{Snapshot, Zone};
use mimalloc::MiMalloc;

// why: cargo builds bench targets with `cfg(test)`, which pulls in synth_state's unit-test
// module, but `harness = false` drops its `#[test]` functions, leaving their helpers unused.
#[allow(dead_code, unused_imports)]
#[path = "../loadtest/synth_state.rs"]
mod synth_state;

/// Set in the child process: the number of tasks of the build whose memory it measures.
const PEAK_ENV: &str = "MESOS_DNS_BENCH_PEAK_TASKS";
/// Also set in a child: time one cold build with allocation tracking off (no memory figures).
const UNTRACKED_ENV: &str = "MESOS_DNS_BENCH_UNTRACKED";

/// The sizes benchmarked, in running tasks.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The server's allocator, with live/peak byte tracking that costs one relaxed load per call
/// while it is off (so the timed runs are not skewed).
struct PeakAlloc;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grow(bytes: usize) {
    if TRACKING.load(Ordering::Relaxed) {
        let bytes = bytes as isize;
        let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn shrink(bytes: usize) {
    if TRACKING.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to mimalloc; the bookkeeping only touches atomics
// and never allocates.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed through unchanged.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed through unchanged.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed through unchanged.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

/// The record-shaping config of the benchmark (the server's defaults, listener 127.0.0.1).
fn gen_config() -> GenConfig {
    GenConfig::defaults_with_listener(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// What the refresh thread does after the fetch: generate, drop the state, wrap.
fn build_from(state: State, cfg: &GenConfig, zone: &Zone) -> Snapshot {
    let generated = generate(&state, cfg, &[], &NoHosts);
    let leader = state.leader.as_str().to_owned();
    drop(state);
    Snapshot::new(generated, zone.clone(), leader, None)
}

/// Parse + generate + wrap, from the document bytes.
fn build(doc: &[u8], cfg: &GenConfig, zone: &Zone) -> Snapshot {
    let state = State::from_slice(doc).expect("synthetic state parses");
    build_from(state, cfg, zone)
}

/// A `/proc/self/status` field in kB, or 0 when unavailable.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Child process: one build of `tasks` tasks, memory measured as described in the crate doc.
#[allow(clippy::print_stdout)] // why: the child's report is read by the parent from stdout
fn peak_child(tasks: usize, track: bool) {
    let doc = synth_state::generate(&synth_state::SynthSpec::with_tasks(tasks)).into_bytes();
    let cfg = gen_config();
    let zone = Zone::from_config(&Config::default());
    let rss_before_kb = status_kb("VmRSS");
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();

    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    TRACKING.store(track, Ordering::SeqCst);
    let t0 = Instant::now();
    let state = State::from_slice(&doc).expect("synthetic state parses");
    let t_parse = t0.elapsed();
    let state_heap = LIVE.load(Ordering::SeqCst);
    let generated = generate(&state, &cfg, &[], &NoHosts);
    let t_generate = t0.elapsed();
    let leader = state.leader.as_str().to_owned();
    drop(state);
    let t_drop = t0.elapsed();
    let snap = Snapshot::new(generated, zone, leader, None);
    let t_total = t0.elapsed();
    TRACKING.store(false, Ordering::SeqCst);
    let peak = PEAK.load(Ordering::SeqCst);
    let retained = LIVE.load(Ordering::SeqCst);
    let hwm_kb = status_kb("VmHWM");

    let doc_len = doc.len() as f64;
    let times = format!(
        "parse {:.0}, generate {:.0}, drop State {:.0}, Snapshot::new {:.0}",
        ms(t_parse),
        ms(t_generate),
        ms(t_drop),
        ms(t_total),
    );
    if !track {
        println!("cold {tasks} tasks: one cold build, tracking off (cumulative ms): {times}");
        drop(black_box(snap));
        return;
    }
    let rss_extra = hwm_kb.saturating_sub(rss_before_kb) as f64 * 1024.0;
    println!(
        "peak {tasks} tasks: document {} bytes ({:.1} MiB), {} owner names; one cold build, \
         tracking on (cumulative ms): {times}",
        doc.len(),
        mib(doc_len),
        snap.records.len(),
    );
    println!(
        "peak {tasks} tasks: heap peak extra {} bytes ({:.1} MiB, {:.2}x document); parsed \
         State {:.1} MiB ({:.2}x); snapshot retained {:.1} MiB ({:.2}x)",
        peak,
        mib(peak as f64),
        peak as f64 / doc_len,
        mib(state_heap as f64),
        state_heap as f64 / doc_len,
        mib(retained as f64),
        retained as f64 / doc_len,
    );
    println!(
        "peak {tasks} tasks: RSS peak extra {:.1} MiB ({:.2}x document) [VmRSS before {} kB, \
         VmHWM after {} kB, peak counter reset: {}]",
        mib(rss_extra),
        rss_extra / doc_len,
        rss_before_kb,
        hwm_kb,
        if hwm_reset {
            "yes"
        } else {
            "NO, so the figure includes generating the document"
        },
    );
    drop(black_box(snap));
}

/// Runs [`peak_child`] in a fresh process per size, so earlier runs do not pollute the RSS.
#[allow(clippy::print_stderr)] // why: the memory figures are part of the bench log
fn measure_peaks() {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("peak memory: cannot find own executable: {e}");
            return;
        }
    };
    // The tracked runs, then one untracked 100k run to show what the tracking costs.
    let runs = SIZES.iter().map(|&n| (n, true)).chain([(100_000, false)]);
    for (tasks, track) in runs {
        let mut cmd = Command::new(&exe);
        cmd.env(PEAK_ENV, tasks.to_string());
        if !track {
            cmd.env(UNTRACKED_ENV, "1");
        }
        match cmd.output() {
            Ok(o) if o.status.success() => {
                eprint!("{}", String::from_utf8_lossy(&o.stdout));
            }
            Ok(o) => eprintln!(
                "peak memory {tasks}: child failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("peak memory {tasks}: cannot run child: {e}"),
        }
    }
}

#[allow(clippy::print_stderr)] // why: the document sizes are part of the bench log
fn main() {
    if let Some(tasks) = std::env::var(PEAK_ENV).ok().and_then(|v| v.parse().ok()) {
        peak_child(tasks, std::env::var_os(UNTRACKED_ENV).is_none());
        return;
    }
    measure_peaks();

    let cfg = gen_config();
    let zone = Zone::from_config(&Config::default());
    let docs: Vec<(usize, Vec<u8>)> = SIZES
        .iter()
        .map(|&n| {
            let doc = synth_state::generate(&synth_state::SynthSpec::with_tasks(n)).into_bytes();
            eprintln!("state document, {n} tasks: {} bytes", doc.len());
            (n, doc)
        })
        .collect();

    let mut c = Criterion::default().configure_from_args();
    for (name, kind) in [("parse", 0), ("parse_reader", 1), ("build", 2)] {
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        for (tasks, doc) in &docs {
            g.throughput(Throughput::Bytes(doc.len() as u64));
            if *tasks >= 100_000 {
                // 0.2 to 1.2 s per iteration: ten samples of a few iterations each (at least
                // one), which keeps the three 100k benches near 40 s together.
                g.sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(12));
            } else if *tasks >= 10_000 {
                g.sampling_mode(SamplingMode::Flat)
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(3));
            } else {
                g.sampling_mode(SamplingMode::Auto)
                    .warm_up_time(Duration::from_secs(1))
                    .measurement_time(Duration::from_secs(3));
            }
            g.bench_with_input(BenchmarkId::from_parameter(tasks), doc, |b, doc| {
                // Per-iteration batches keep every drop outside the timed region.
                match kind {
                    0 => b.iter_batched(
                        || (),
                        |()| State::from_slice(black_box(doc)).expect("parses"),
                        BatchSize::PerIteration,
                    ),
                    1 => b.iter_batched(
                        || (),
                        |()| State::from_reader(black_box(doc.as_slice())).expect("parses"),
                        BatchSize::PerIteration,
                    ),
                    _ => b.iter_batched(
                        || (),
                        |()| build(black_box(doc), &cfg, &zone),
                        BatchSize::PerIteration,
                    ),
                }
            });
        }
        g.finish();
    }
    c.final_summary();
}
