//! The refresh thread's CPU priority, and the watchdog that keeps it from starving.
//!
//! A refresh of a large state is heavy (a 100k-task document costs about half a second of one
//! core) and runs on cores that DNS workers also use. At normal priority the kernel's fair
//! scheduler lets a running refresh finish its time slice (milliseconds) before a woken worker
//! gets the core, and that wait lands straight in the tail latency: p99 about 4 ms instead of
//! 0.2 ms with a 100k-task refresh every second
//! (`loadtest/runs/2026-11-25-vm-refresh-p99-final/`).
//! With `refreshPriority: "idle"` (the default) the refresh thread runs under `SCHED_IDLE`, so
//! a worker that wakes takes the core at once.
//!
//! The price of `SCHED_IDLE` is starvation: on a core kept busy by normal threads the refresh
//! gets almost nothing and the records would go stale. So a watchdog thread looks every
//! [`WATCHDOG_TICK`] at the refresh thread's scheduler statistics
//! (`/proc/self/task/TID/schedstat`: time on a CPU, time waiting for one). A refresh that, for
//! [`STARVE_WINDOW`], wanted the CPU most of the time but got almost none of it (see
//! [`starved`]) is raised to normal priority until it ends, and counted; the next refresh
//! starts at idle again. A refresh that is merely slow (sharing its core with busy workers) or
//! waiting for a master is left alone: it is progressing. Without schedstat the watchdog falls
//! back to raising a refresh still running after [`FALLBACK_GRACE`].
//!
//! Raising a thread out of `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least
//! 20 (systemd: `LimitNICE=+0`, as in `contrib/mesos-dns.service`); without either, the failure
//! is logged once and counted.
//!
//! Nothing here is on the query path: the refresh thread touches it twice per refresh, the
//! watchdog ten times a second.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::refresh::RefreshStats;

/// How often the watchdog looks at the refresh thread.
pub const WATCHDOG_TICK: Duration = Duration::from_millis(100);
/// How long a refresh must look starved before it is raised: long enough that a burst of
/// queries does not count, short enough that records are late by about a second at most.
pub const STARVE_WINDOW: Duration = Duration::from_secs(1);
/// Starved means: on a CPU less than this share of the window...
pub const STARVED_CPU_SHARE: f64 = 0.05;
/// ...while waiting in the run queue more than this share of it (so a refresh blocked on the
/// network, which waits for no CPU, is not "starved").
pub const STARVED_WAIT_SHARE: f64 = 0.5;
/// Without `/proc/self/task/TID/schedstat`: raise a refresh still running after this long.
pub const FALLBACK_GRACE: Duration = Duration::from_secs(10);

/// `refreshPriority`: how the refresh thread competes with the DNS workers for a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RefreshPriority {
    /// `SCHED_IDLE`, raised by the watchdog when a refresh runs past its grace (default).
    #[default]
    Idle,
    /// The normal fair-share priority, like every other thread.
    Normal,
}

impl RefreshPriority {
    /// The spelling used in `refreshPriority`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshPriority::Idle => "idle",
            RefreshPriority::Normal => "normal",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<RefreshPriority> {
        match s {
            "idle" => Some(RefreshPriority::Idle),
            "normal" => Some(RefreshPriority::Normal),
            _ => None,
        }
    }
}

/// Whether a refresh thread that, over `window`, ran for `on_cpu` and waited in the run queue
/// for `waiting` is starved.
pub fn starved(window: Duration, on_cpu: Duration, waiting: Duration) -> bool {
    let w = window.as_secs_f64();
    w > 0.0
        && on_cpu.as_secs_f64() < STARVED_CPU_SHARE * w
        && waiting.as_secs_f64() > STARVED_WAIT_SHARE * w
}

/// `(on CPU, waiting for a CPU)` of thread `tid` of this process, from schedstat.
fn sched_times(tid: i32) -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let on_cpu = fields.next()??;
    let waiting = fields.next()??;
    Some((Duration::from_nanos(on_cpu), Duration::from_nanos(waiting)))
}

/// What the watchdog measures over the current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// `busy_since_ms` of the refresh the window belongs to: a new refresh starts a new window.
    refresh: u64,
    started: Instant,
    on_cpu: Duration,
    waiting: Duration,
}

/// Shared by the refresh thread and its watchdog.
#[derive(Debug)]
pub struct PriorityGuard {
    priority: RefreshPriority,
    /// The refresh thread's kernel thread id, 0 until it started: the watchdog changes the
    /// policy of that one thread, not of the whole process.
    tid: AtomicI32,
    /// When the refresh in progress began, in ms since `origin` plus 1 (so 0 means "between
    /// refreshes" without a second flag the watchdog would have to read consistently).
    busy_since_ms: AtomicU64,
    /// The watchdog raised (or failed to raise) the refresh in progress: do not try again, and
    /// go back to idle at the next refresh.
    raised: AtomicBool,
    stop: AtomicBool,
    origin: Instant,
    stats: Arc<RefreshStats>,
    /// The failure to raise is logged once per process, not once per starved refresh.
    raise_failure_logged: AtomicBool,
}

impl PriorityGuard {
    /// A guard for a refresh thread running at `priority` every `period`.
    pub fn new(priority: RefreshPriority, stats: Arc<RefreshStats>) -> Arc<PriorityGuard> {
        Arc::new(PriorityGuard {
            priority,
            tid: AtomicI32::new(0),
            busy_since_ms: AtomicU64::new(0),
            raised: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            origin: Instant::now(),
            stats,
            raise_failure_logged: AtomicBool::new(false),
        })
    }

    /// Called once on the refresh thread before its first refresh: records its thread id and
    /// lowers it to `SCHED_IDLE` when asked to.
    pub fn enter(&self) {
        // SAFETY: gettid has no preconditions and cannot fail.
        self.tid.store(unsafe { libc::gettid() }, Ordering::Release);
        if self.priority == RefreshPriority::Idle
            && let Err(e) = set_policy(0, libc::SCHED_IDLE)
        {
            // Lowering one's own priority is always allowed on Linux; a seccomp filter or
            // another kernel could still refuse it. Serving goes on at normal priority.
            log::warn!(
                "refreshPriority idle: cannot lower the refresh thread ({e}); it runs at normal priority"
            );
        }
    }

    /// Called by the refresh thread when a refresh begins.
    pub fn begin(&self) {
        if self.raised.swap(false, Ordering::AcqRel)
            && self.priority == RefreshPriority::Idle
            && let Err(e) = set_policy(0, libc::SCHED_IDLE)
        {
            log::warn!("refreshPriority idle: cannot lower the refresh thread again ({e})");
        }
        self.busy_since_ms.store(self.now_ms(), Ordering::Release);
    }

    /// Milliseconds since `origin`, plus 1 so that a refresh in progress is never 0.
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    /// Called by the refresh thread when a refresh ended (well or not).
    pub fn end(&self) {
        self.busy_since_ms.store(0, Ordering::Release);
    }

    /// Ends the watchdog at its next tick.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// One look of the watchdog, with the window it keeps between looks. Returns whether it
    /// tried to raise the refresh thread.
    fn look(&self, window: &mut Option<Window>) -> bool {
        let since = self.busy_since_ms.load(Ordering::Acquire);
        let tid = self.tid.load(Ordering::Acquire);
        if since == 0 || tid == 0 || self.raised.load(Ordering::Acquire) {
            *window = None;
            return false;
        }
        let now = Instant::now();
        let Some((on_cpu, waiting)) = sched_times(tid) else {
            let running = self.now_ms().saturating_sub(since);
            return running >= FALLBACK_GRACE.as_millis() as u64 && self.raise(running);
        };
        match *window {
            Some(w) if w.refresh == since => {
                let span = now - w.started;
                if span < STARVE_WINDOW {
                    return false;
                }
                let cpu = on_cpu.saturating_sub(w.on_cpu);
                let wait = waiting.saturating_sub(w.waiting);
                if starved(span, cpu, wait) {
                    *window = None;
                    let running = self.now_ms().saturating_sub(since);
                    return self.raise(running);
                }
            }
            _ => {}
        }
        // A new refresh, or a window in which it progressed: measure the next one.
        *window = Some(Window {
            refresh: since,
            started: now,
            on_cpu,
            waiting,
        });
        false
    }

    /// Raises the refresh thread to normal priority for the rest of this refresh.
    fn raise(&self, running_ms: u64) -> bool {
        self.raised.store(true, Ordering::Release);
        let tid = self.tid.load(Ordering::Acquire);
        match set_policy(tid, libc::SCHED_OTHER) {
            Ok(()) => {
                self.stats.priority_raised.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "refresh starved at idle priority ({running_ms} ms so far, a busy core gives \
                     it no CPU): raised to normal priority until it ends"
                );
            }
            Err(e) => {
                self.stats
                    .priority_raise_failed
                    .fetch_add(1, Ordering::Relaxed);
                if !self.raise_failure_logged.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "refresh starved at idle priority ({running_ms} ms so far), and it \
                         cannot be raised ({e}): grant CAP_SYS_NICE or RLIMIT_NICE >= 20 \
                         (systemd LimitNICE=+0), or set refreshPriority to \"normal\""
                    );
                }
            }
        }
        true
    }

    /// Starts the watchdog thread (only needed at idle priority).
    pub fn spawn_watchdog(self: &Arc<Self>) -> io::Result<Option<JoinHandle<()>>> {
        if self.priority != RefreshPriority::Idle {
            return Ok(None);
        }
        let guard = self.clone();
        std::thread::Builder::new()
            .name("refresh-watch".into())
            .spawn(move || {
                let mut window = None;
                while !guard.stop.load(Ordering::Acquire) {
                    std::thread::sleep(WATCHDOG_TICK);
                    guard.look(&mut window);
                }
            })
            .map(Some)
    }
}

/// `sched_setscheduler(tid, policy)` with priority 0 (`tid` 0: the calling thread).
fn set_policy(tid: i32, policy: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; the kernel only reads it.
    match unsafe { libc::sched_setscheduler(tid, policy, &param) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of_this_thread() -> i32 {
        // SAFETY: no preconditions.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn starved_means_no_cpu_while_wanting_it() {
        let ms = Duration::from_millis;
        let w = ms(1000);
        // Beside busy normal threads at SCHED_IDLE: 3 ms of CPU, 990 ms waiting.
        assert!(starved(w, ms(3), ms(990)));
        // Sharing a core with a worker at 40% load: slow, not starved.
        assert!(!starved(w, ms(600), ms(400)));
        // Waiting for a master over the network: no CPU, and no wait for one either.
        assert!(!starved(w, ms(1), ms(2)));
        // Just at the bounds: 5% CPU is enough, waiting exactly half is not starved.
        assert!(!starved(w, ms(50), ms(900)));
        assert!(!starved(w, ms(10), ms(500)));
        assert!(!starved(Duration::ZERO, ms(0), ms(0)));
    }

    #[test]
    fn schedstat_of_this_thread_moves_with_work() {
        // SAFETY: no preconditions.
        let tid = unsafe { libc::gettid() };
        let Some((cpu0, _)) = sched_times(tid) else {
            // Why: a kernel without CONFIG_SCHED_INFO has no schedstat; say so, do not fail.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: no /proc/self/task/TID/schedstat on this kernel");
            }
            return;
        };
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (cpu1, _) = sched_times(tid).expect("schedstat");
        assert!(cpu1 > cpu0, "{cpu0:?} -> {cpu1:?}");
    }

    #[test]
    fn parse_round_trips_and_rejects_other_words() {
        for p in [RefreshPriority::Idle, RefreshPriority::Normal] {
            assert_eq!(RefreshPriority::parse(p.as_str()), Some(p));
        }
        assert_eq!(RefreshPriority::parse("low"), None);
        assert_eq!(RefreshPriority::parse("Idle"), None);
    }

    #[test]
    fn idle_guard_lowers_the_thread_and_a_late_refresh_is_raised_then_lowered_again() {
        let stats = Arc::new(RefreshStats::default());
        let guard = PriorityGuard::new(RefreshPriority::Idle, stats.clone());
        let g = guard.clone();
        let seen = std::thread::spawn(move || {
            g.enter();
            let at_enter = policy_of_this_thread();
            g.begin();
            // What the watchdog does when it finds the refresh starved.
            let tried = g.raise(1000);
            let after_check = policy_of_this_thread();
            // Once raised, the watchdog leaves this refresh alone.
            let tried_twice = g.look(&mut None);
            g.end();
            g.begin();
            let next_refresh = policy_of_this_thread();
            g.end();
            (at_enter, tried, after_check, tried_twice, next_refresh)
        })
        .join()
        .unwrap();
        let (at_enter, tried, after_check, tried_twice, next_refresh) = seen;
        assert_eq!(at_enter, libc::SCHED_IDLE);
        assert!(tried);
        assert!(!tried_twice, "one raise per refresh");
        let raised = stats.priority_raised.load(Ordering::Relaxed);
        let failed = stats.priority_raise_failed.load(Ordering::Relaxed);
        assert_eq!(raised + failed, 1);
        if raised == 1 {
            assert_eq!(after_check, libc::SCHED_OTHER);
        } else {
            // Without CAP_SYS_NICE the kernel refuses; the thread stays idle.
            assert_eq!(after_check, libc::SCHED_IDLE);
        }
        assert_eq!(
            next_refresh,
            libc::SCHED_IDLE,
            "each refresh starts at idle again"
        );
    }

    #[test]
    fn a_refresh_that_progresses_is_left_alone() {
        let stats = Arc::new(RefreshStats::default());
        let guard = PriorityGuard::new(RefreshPriority::Idle, stats.clone());
        let g = guard.clone();
        let (tried, window_kept) = std::thread::spawn(move || {
            g.enter();
            g.begin();
            let mut window = None;
            let mut tried = g.look(&mut window);
            // Work (at idle priority, but with a CPU to spare) for longer than the window.
            let started = Instant::now();
            let mut x = 0u64;
            while started.elapsed() < STARVE_WINDOW + Duration::from_millis(100) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            tried |= g.look(&mut window);
            let kept = window.is_some();
            g.end();
            // Between refreshes nothing is raised, and the window is dropped.
            tried |= g.look(&mut window);
            (tried, kept && window.is_none())
        })
        .join()
        .unwrap();
        assert!(!tried);
        assert!(window_kept);
        assert_eq!(stats.priority_raised.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn normal_guard_changes_nothing_and_needs_no_watchdog() {
        let stats = Arc::new(RefreshStats::default());
        let guard = PriorityGuard::new(RefreshPriority::Normal, stats);
        let g = guard.clone();
        let policy = std::thread::spawn(move || {
            g.enter();
            g.begin();
            policy_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_OTHER);
        assert!(guard.spawn_watchdog().unwrap().is_none());
    }
}
