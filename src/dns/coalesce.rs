//! Receive coalescing: when a UDP worker is busy, it waits a moment before its next receive so
//! that queries gather into one larger batch (the software form of a NIC's interrupt
//! coalescing, `ethtool -C rx-usecs`).
//!
//! Why: on a loaded server most of the cost per query is the kernel's, and a good part of it
//! is wake-ups on both ends. A worker that blocks in `recvmmsg` as soon as it has drained its
//! socket is woken again by the next query (a cross-CPU wake-up the sender pays for), and it
//! sends its replies in many small bursts, each of which wakes the client's receiving thread
//! again. Waiting [`Coalescer::wait`] (`udpCoalesceMicros`) once the worker is busy lets the
//! senders run without waking anyone, and turns many small reply bursts into a few large
//! ones. Measured on the 2-core VM (`loadtest/runs/2026-12-02-vm-coalesce-explore/`): dnsperf's
//! own context switches per query fell from 0.14 to 0.05-0.07, its peak rose by 5-10% over
//! the same server without coalescing, and the server's own CPU per query at the peak fell.
//!
//! The rule is conservative so that a lightly loaded server hardly ever waits: a worker starts
//! to wait only after [`STREAK`] receives in a row that each brought at least [`MIN_BATCH`]
//! datagrams, and never after a full batch (more is already queued). At 40k queries per second
//! a receive brings about 3 datagrams, and the worker waited 78 times in 10 s (400,000
//! queries). Once it waits, it goes on waiting while each receive brings at least
//! [`KEEP_BATCH`]: a wait of 100 µs at 150k queries per second gathers about 15, right at
//! [`MIN_BATCH`], so without this hysteresis a worker at the peak left coalescing at every dip
//! (it waited after 58-61% of its receives there, with it after 72-74%). The price under
//! load is at most the wait in added latency for the queries that arrive during it (the p50 at
//! 80k queries per second went from 60 to 68 µs).
//!
//! [`Coalescer`] is pure decision logic (no clock, no syscall, no allocation); the worker does
//! the sleeping, after [`precise_sleeps`] set its thread's timer slack once at start.

use std::time::Duration;

/// A receive that brings at least this many datagrams counts as "busy". Below it, the worker
/// is keeping up and waiting would only add latency.
pub const MIN_BATCH: usize = 16;
/// Busy receives in a row before the worker starts to wait: one busy receive after a stall (a
/// refresh, a scheduling hiccup) must not add a wait on top of the delay it already had.
pub const STREAK: u32 = 2;
/// A worker that waits goes on waiting while each receive brings at least this many: half of
/// [`MIN_BATCH`], so that it stops only when the load has clearly fallen (below about 8 queries
/// per wait, 80k queries per second with the default 100 µs), not at every dip.
pub const KEEP_BATCH: usize = MIN_BATCH / 2;
/// The longest wait `udpCoalesceMicros` accepts: beyond a millisecond the added latency is of
/// the order of a datacenter round trip, for no further gain (the runs show none past 400 µs).
pub const MAX_WAIT_US: u64 = 1_000;

/// One worker's coalescing state (per worker, never shared).
#[derive(Debug, Clone)]
pub struct Coalescer {
    /// The wait before a receive once busy; zero turns coalescing off.
    wait: Duration,
    /// Busy receives in a row so far (a receive counts as busy with [`MIN_BATCH`] datagrams, or
    /// [`KEEP_BATCH`] once the streak is long enough to wait).
    streak: u32,
}

impl Coalescer {
    /// A coalescer that waits `wait_us` microseconds (0 = never), capped at [`MAX_WAIT_US`].
    pub fn new(wait_us: u64) -> Coalescer {
        Coalescer {
            wait: Duration::from_micros(wait_us.min(MAX_WAIT_US)),
            streak: 0,
        }
    }

    /// The configured wait (zero when off).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Called after each receive of `received` datagrams out of a batch of `capacity`: how long
    /// to wait before the next receive, if at all.
    #[inline]
    pub fn after_receive(&mut self, received: usize, capacity: usize) -> Option<Duration> {
        let busy = if self.streak >= STREAK {
            KEEP_BATCH
        } else {
            MIN_BATCH
        };
        if received >= busy {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.streak = 0;
        }
        let wait = self.streak >= STREAK && received < capacity;
        (wait && !self.wait.is_zero()).then_some(self.wait)
    }
}

/// Sets the calling thread's timer slack to 1 µs, so that a coalescing wait of 100 µs is not
/// stretched by the default 50 µs slack (`prctl(PR_SET_TIMERSLACK)`, per thread). Best effort:
/// on failure the waits are only less precise.
#[cfg(target_os = "linux")]
pub fn precise_sleeps() {
    let (slack_ns, unused) = (1_000 as libc::c_ulong, 0 as libc::c_ulong);
    // SAFETY: PR_SET_TIMERSLACK takes integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns, unused, unused, unused) };
    if rc != 0 {
        log::debug!("PR_SET_TIMERSLACK: {}", std::io::Error::last_os_error());
    }
}

/// Elsewhere the default timer slack stays.
#[cfg(not(target_os = "linux"))]
pub fn precise_sleeps() {}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 128;

    #[test]
    fn a_lightly_loaded_worker_never_waits() {
        let mut c = Coalescer::new(100);
        for n in [1, 3, 2, MIN_BATCH - 1, 1, 7, MIN_BATCH - 1, MIN_BATCH - 1] {
            assert_eq!(c.after_receive(n, CAP), None, "after a receive of {n}");
        }
    }

    #[test]
    fn one_busy_receive_after_a_stall_does_not_wait_two_in_a_row_do() {
        let mut c = Coalescer::new(100);
        assert_eq!(c.after_receive(2, CAP), None);
        assert_eq!(c.after_receive(40, CAP), None, "the first busy receive");
        assert_eq!(c.after_receive(1, CAP), None, "the streak is broken");
        assert_eq!(c.after_receive(MIN_BATCH, CAP), None);
        assert_eq!(
            c.after_receive(MIN_BATCH, CAP),
            Some(Duration::from_micros(100)),
            "the second busy receive in a row"
        );
        assert_eq!(c.after_receive(60, CAP), Some(Duration::from_micros(100)));
        assert_eq!(c.after_receive(3, CAP), None, "load fell: no more waits");
    }

    #[test]
    fn once_waiting_it_goes_on_down_to_keep_batch_and_stops_below() {
        let mut c = Coalescer::new(100);
        assert_eq!(c.after_receive(MIN_BATCH, CAP), None);
        assert!(c.after_receive(MIN_BATCH, CAP).is_some(), "coalescing");
        for n in [KEEP_BATCH, MIN_BATCH - 1, KEEP_BATCH, 30] {
            assert!(
                c.after_receive(n, CAP).is_some(),
                "stays after a receive of {n}"
            );
        }
        assert_eq!(c.after_receive(KEEP_BATCH - 1, CAP), None, "the load fell");
        assert_eq!(
            c.after_receive(KEEP_BATCH, CAP),
            None,
            "back in the idle state, KEEP_BATCH is not busy"
        );
        assert_eq!(c.after_receive(MIN_BATCH - 1, CAP), None);
    }

    #[test]
    fn a_full_batch_is_followed_at_once_by_the_next_receive() {
        let mut c = Coalescer::new(100);
        assert_eq!(c.after_receive(CAP, CAP), None);
        assert_eq!(c.after_receive(CAP, CAP), None, "more is already queued");
        assert_eq!(
            c.after_receive(CAP - 1, CAP),
            Some(Duration::from_micros(100))
        );
    }

    #[test]
    fn zero_turns_it_off_and_the_wait_is_capped() {
        let mut off = Coalescer::new(0);
        for _ in 0..5 {
            assert_eq!(off.after_receive(64, CAP), None);
        }
        let capped = Coalescer::new(50_000);
        assert_eq!(capped.wait(), Duration::from_micros(MAX_WAIT_US));
    }
}
