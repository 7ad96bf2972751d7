//! What keeps a refresh from delaying the workers, end to end on the real binary:
//! `refreshPriority` (the refresh thread runs under `SCHED_IDLE` by default, read back from
//! `/proc/PID/task/TID/stat`, at normal priority when configured, and a refresh starved by a
//! core kept busy by normal-priority threads is raised by the watchdog and lands instead of
//! waiting for minutes), the process's opt-out of transparent huge pages, and memory a
//! refresh frees kept for the next one instead of faulted in again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, state_small, try_metric as metric, wait_until};

const SCHED_OTHER: i64 = 0;
const SCHED_IDLE: i64 = 5;

/// `(tid, comm, policy)` of every thread of `pid`.
fn threads(pid: u32) -> Vec<(i32, String, i64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let entry = entry.expect("entry");
        let tid: i32 = entry.file_name().to_string_lossy().parse().expect("tid");
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `tid (comm) state ...`: comm may hold spaces, so split after the last ')'.
        let open = stat.find('(').expect("(");
        let close = stat.rfind(')').expect(")");
        let comm = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // proc(5): field 41 is `policy`; fields[0] is field 3.
        let policy = fields[41 - 3].parse().expect("policy");
        out.push((tid, comm, policy));
    }
    out
}

fn policy_of(pid: u32, comm: &str) -> Option<i64> {
    threads(pid)
        .into_iter()
        .find(|(_, c, _)| c == comm)
        .map(|(_, _, p)| p)
}

/// The repo's small cluster written to `dir/state.json`.
fn small_state_file(dir: &Path) -> PathBuf {
    let state = dir.join("state.json");
    std::fs::write(&state, state_small()).expect("write state");
    state
}

fn state_file_config(path: &Path, extra: Value) -> Value {
    let mut c = json!({
        "stateFile": path,
        "refreshSeconds": 1,
        "httpon": true,
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

#[test]
fn refresh_thread_is_idle_by_default_with_a_watchdog_and_normal_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = small_state_file(dir.path());

    let idle = Server::start(state_file_config(&state, json!({})));
    idle.wait_ready("mesos");
    let pid = idle.pid();
    assert_eq!(
        policy_of(pid, "refresh"),
        Some(SCHED_IDLE),
        "{:?}",
        threads(pid)
    );
    assert!(
        policy_of(pid, "refresh-watch").is_some(),
        "no watchdog thread: {:?}",
        threads(pid)
    );
    // Nothing else is lowered: the workers keep the normal policy.
    let workers: Vec<i64> = threads(pid)
        .into_iter()
        .filter(|(_, c, _)| c.starts_with("dns-worker"))
        .map(|(_, _, p)| p)
        .collect();
    assert!(!workers.is_empty());
    assert!(workers.iter().all(|p| *p == SCHED_OTHER), "{workers:?}");
    let config = idle.http_get("/v1/config").json();
    assert_eq!(config["RefreshPriority"], "idle");

    let normal = Server::start(state_file_config(
        &state,
        json!({"refreshPriority": "normal"}),
    ));
    normal.wait_ready("mesos");
    let pid = normal.pid();
    assert_eq!(policy_of(pid, "refresh"), Some(SCHED_OTHER));
    assert_eq!(policy_of(pid, "refresh-watch"), None);
    assert_eq!(
        normal.http_get("/v1/config").json()["RefreshPriority"],
        "normal"
    );
}

/// Pins every thread of `pid` to `cpu`.
fn pin_process(pid: u32, cpu: usize) {
    for (tid, _, _) in threads(pid) {
        pin_thread(tid, cpu);
    }
}

fn pin_thread(tid: i32, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only
    // read/write that set, which lives across the calls.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The highest CPU this process may run on.
fn some_cpu() -> usize {
    // SAFETY: as in `pin_thread`; sched_getaffinity fills the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (0..libc::CPU_SETSIZE as usize)
            .rev()
            .find(|&c| libc::CPU_ISSET(c, &set))
            .expect("some CPU")
    }
}

/// Normal-priority busy threads pinned to `cpu`, stopped on drop (and after `limit` anyway).
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(cpu: usize, n: usize, limit: Duration) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    pin_thread(unsafe { libc::gettid() }, cpu);
                    let started = Instant::now();
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                        }
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A synthetic state of `tasks` tasks written by the repo's generator.
fn generated_state(dir: &Path, tasks: u32, seed: u32) -> PathBuf {
    let path = dir.join(format!("state-{tasks}-{seed}.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_mesos-dns-gen-state"))
        .args(["--tasks", &tasks.to_string(), "--seed", &seed.to_string()])
        .arg("--out")
        .arg(&path)
        .status()
        .expect("run mesos-dns-gen-state");
    assert!(status.success());
    path
}

#[test]
fn regression_idle_refresh_starved_by_a_busy_core_is_raised_and_lands() {
    // A refresh of 3k tasks needs a few hundred ms of CPU in a debug build. Under SCHED_IDLE
    // beside two busy normal-priority threads on the same core it would get a fraction of a
    // percent of that core (minutes per refresh); the watchdog sees it starved within a few
    // of its 1 s windows and raises it.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = generated_state(dir.path(), 3_000, 1);
    let server = Server::start(state_file_config(&state, json!({})));
    server.wait_ready("mesos");
    let cpu = some_cpu();
    pin_process(server.pid(), cpu);
    let ok = |s: &Server| metric(s, "mesos_dns_refresh_total{result=\"ok\"}").unwrap_or(0.0);
    let raised = |s: &Server, r: &str| {
        metric(
            s,
            &format!("mesos_dns_refresh_priority_raises_total{{result=\"{r}\"}}"),
        )
        .expect("raises metric")
    };
    assert_eq!(raised(&server, "ok") + raised(&server, "failed"), 0.0);

    let hogs = Hogs::start(cpu, 2, Duration::from_secs(40));
    let before = ok(&server);
    let acted = wait_until(Duration::from_secs(15), || {
        raised(&server, "ok") + raised(&server, "failed") >= 1.0
    });
    assert!(
        acted,
        "the watchdog never acted; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    if raised(&server, "failed") >= 1.0 && raised(&server, "ok") == 0.0 {
        drop(hogs);
        assert_eq!(server.count_stderr("cannot be raised"), 1);
        // Why: without CAP_SYS_NICE the raise is refused (and that was checked); say so.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped the landing check: this process may not raise a thread's priority");
        }
        return;
    }
    // Raised refreshes land while the hogs keep the core busy.
    let landed = wait_until(Duration::from_secs(20), || ok(&server) >= before + 2.0);
    let raised_ok = raised(&server, "ok");
    drop(hogs);
    assert!(
        landed,
        "refreshes did not land under load (ok {before} -> {}); stderr:\n{}",
        ok(&server),
        server.stderr_lines().join("\n")
    );
    assert!(raised_ok >= 1.0);
    assert!(server.count_stderr("raised to normal priority until it ends") >= 1);
    // Each refresh starts at idle again.
    assert!(wait_until(Duration::from_secs(5), || {
        policy_of(server.pid(), "refresh") == Some(SCHED_IDLE)
    }));
}

#[test]
fn regression_server_opts_out_of_transparent_huge_pages() {
    // Huge-page faults and compaction during a large refresh stalled the workers
    // (loadtest/runs/2026-11-25-vm-thp/): the server turns THP off for itself at start.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = small_state_file(dir.path());
    let server = Server::start(state_file_config(&state, json!({})));
    server.wait_ready("mesos");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("THP_enabled in /proc/PID/status (Linux >= 3.15)");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}

/// Minor page faults of the refresh thread of `pid` so far (`/proc/PID/task/TID/stat` field
/// 10). That thread's own: the test's HTTP polling starts a thread per request in the server,
/// and their stacks fault too.
fn minor_faults(pid: u32) -> u64 {
    let (tid, _, _) = threads(pid)
        .into_iter()
        .find(|(_, c, _)| c == "refresh")
        .expect("refresh thread");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).expect("stat");
    let close = stat.rfind(')').expect(")");
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    fields[10 - 3].parse().expect("minflt")
}

/// Minor page faults the refresh thread of `server` took over three refreshes, after eight to
/// warm up (the heap reaches its working size over the first few).
fn faults_over_three_refreshes(server: &Server) -> u64 {
    let ok = |s: &Server| metric(s, "mesos_dns_refresh_total{result=\"ok\"}").unwrap_or(0.0);
    assert!(
        wait_until(Duration::from_secs(90), || ok(server) >= 8.0),
        "no eighth refresh; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    let (before, at) = (minor_faults(server.pid()), ok(server));
    assert!(wait_until(Duration::from_secs(60), || ok(server) >= at + 3.0));
    minor_faults(server.pid()) - before
}

#[test]
fn regression_each_refresh_faulted_its_memory_in_again() {
    // The allocator returned the memory a refresh freed (the old snapshot, the parsed state)
    // to the kernel after 1 s, and the next refresh faulted it in again page by page; the
    // madvise and the faults were the largest cause of late worker wake-ups beside a large
    // refresh (loadtest/runs/2026-11-25-vm-purge/). The server now keeps it for reuse. The
    // control run returns freed memory at once (MIMALLOC_PURGE_DELAY=0, which the server
    // leaves alone), so the same three refreshes must fault in far more.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = generated_state(dir.path(), 2_000, 1);
    let doc_pages = std::fs::metadata(&state).expect("state size").len() / 4096;
    let kept = Server::start(state_file_config(&state, json!({})));
    kept.wait_ready("mesos");
    let kept_faults = faults_over_three_refreshes(&kept);
    drop(kept);
    let returned = Server::start_with_env(
        state_file_config(&state, json!({})),
        &[("MIMALLOC_PURGE_DELAY", "0")],
    );
    returned.wait_ready("mesos");
    let returned_faults = faults_over_three_refreshes(&returned);
    // A 4k-task state, release build: about 150 faults per refresh kept, 11,000 returned.
    assert!(
        kept_faults * 5 < returned_faults,
        "three refreshes of a {doc_pages}-page state faulted in {kept_faults} pages, against \
         {returned_faults} when the allocator returns freed memory at once"
    );
    assert!(
        returned_faults > 2 * doc_pages,
        "the control faulted in only {returned_faults} pages for a {doc_pages}-page state: \
         the comparison above proves nothing"
    );
}
