//! Query counters, one block per worker thread, summed only when someone reads them.
//!
//! Each worker owns a [`WorkerCounters`] block aligned to its own cache lines and is its only
//! writer: an increment is a relaxed load plus a relaxed store, never a shared read-modify-write,
//! so workers never contend on a counter (false sharing would cost more than the answer itself).
//! Readers (metrics scrape, logs, tests) sum the blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::dns::answer::{Disposition, Outcome};
use crate::dns::wire::{ParseError, rcode, rtype};

/// Named counter slots. `ParseError` kinds follow at [`Counter::PARSE_BASE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Every packet received.
    Received,
    /// Replies sent.
    Sent,
    /// Packets dropped without a reply (unparsable header, QR set).
    Dropped,
    /// Replies with TC set.
    Truncated,
    /// Send errors.
    SendErrors,
    /// Answered from a snapshot.
    Authoritative,
    /// SERVFAIL because no snapshot is loaded yet.
    NotReady,
    /// REFUSED outside the domain.
    Refused,
    /// FORMERR / NOTIMP / dropped for malformation.
    Malformed,
    /// BADVERS.
    BadVersion,
    /// Queries outside the domain handed to the forwarder.
    Forwarded,
    /// Queries over TCP.
    Tcp,
    /// TCP connections closed at once because the connection cap was reached.
    TcpRejected,
    /// Queries for the forwarder from a client outside `recursionAllowFrom`: REFUSED.
    RecursionRefused,
    /// Waits of a busy UDP worker before its next receive (`udpCoalesceMicros`).
    CoalesceWaits,
    /// rcode NOERROR.
    RcodeNoError,
    /// rcode FORMERR.
    RcodeFormErr,
    /// rcode SERVFAIL.
    RcodeServFail,
    /// rcode NXDOMAIN.
    RcodeNxDomain,
    /// rcode NOTIMP.
    RcodeNotImp,
    /// rcode REFUSED.
    RcodeRefused,
    /// rcode BADVERS.
    RcodeBadVers,
    /// QTYPE A.
    QtypeA,
    /// QTYPE AAAA.
    QtypeAaaa,
    /// QTYPE SRV.
    QtypeSrv,
    /// QTYPE SOA.
    QtypeSoa,
    /// QTYPE NS.
    QtypeNs,
    /// QTYPE ANY.
    QtypeAny,
    /// Any other QTYPE.
    QtypeOther,
}

impl Counter {
    /// First slot of the per-`ParseError` counters.
    pub const PARSE_BASE: usize = Counter::QtypeOther as usize + 1;
    /// Number of slots: named counters, parse errors, then the latency histogram.
    pub const SLOTS: usize = LATENCY_COUNT + 1;
}

/// Upper bounds (µs) of the local answer-latency histogram; a `+Inf` bucket follows. The
/// observation is a batch's time from receive to send, counted once per query in the batch.
pub const LATENCY_BUCKETS_US: [u64; 11] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000,
];
/// First latency slot: one per bucket, then `+Inf`, then the sum (ns) and the count.
pub const LATENCY_BASE: usize = Counter::PARSE_BASE + ParseError::ALL.len();
/// Slot of the latency sum in nanoseconds.
pub const LATENCY_SUM_NS: usize = LATENCY_BASE + LATENCY_BUCKETS_US.len() + 1;
/// Slot of the number of latency observations.
pub const LATENCY_COUNT: usize = LATENCY_SUM_NS + 1;

/// One worker's counters, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerCounters {
    cells: [AtomicU64; Counter::SLOTS],
    /// Several threads write this block (TCP connections): use atomic adds. Worker blocks
    /// have one writer and use a plain load + store.
    shared: bool,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
            shared: false,
        }
    }
}

impl WorkerCounters {
    /// Adds one to slot `i`. Only the owning thread may call this (single writer).
    #[inline]
    pub fn bump_slot(&self, i: usize) {
        if let Some(c) = self.cells.get(i) {
            if self.shared {
                c.fetch_add(1, Ordering::Relaxed);
            } else {
                c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
            }
        }
    }

    /// Adds `n` to slot `i` (single writer, like [`WorkerCounters::bump_slot`]).
    #[inline]
    pub fn add_slot(&self, i: usize, n: u64) {
        if let Some(c) = self.cells.get(i) {
            if self.shared {
                c.fetch_add(n, Ordering::Relaxed);
            } else {
                c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
        }
    }

    /// Records `queries` answers that took `elapsed` from receive to send (one batch).
    #[inline]
    pub fn observe_latency(&self, elapsed: std::time::Duration, queries: u64) {
        let us = elapsed.as_micros() as u64;
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.add_slot(LATENCY_BASE + bucket, queries);
        self.add_slot(
            LATENCY_SUM_NS,
            (elapsed.as_nanos() as u64).saturating_mul(queries),
        );
        self.add_slot(LATENCY_COUNT, queries);
    }

    /// Adds one to a named counter.
    #[inline]
    pub fn bump(&self, c: Counter) {
        self.bump_slot(c as usize);
    }

    /// Reads slot `i`.
    pub fn get_slot(&self, i: usize) -> u64 {
        self.cells.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one answered (or dropped) query.
    #[inline]
    pub fn record(&self, o: &Outcome) {
        self.bump(Counter::Received);
        match o.disposition {
            Disposition::Authoritative => self.bump(Counter::Authoritative),
            Disposition::NotReady => self.bump(Counter::NotReady),
            Disposition::Refused => self.bump(Counter::Refused),
            Disposition::BadVersion => self.bump(Counter::BadVersion),
            Disposition::Forward => {
                // The forwarder counts what becomes of it (cache hit, upstream, SERVFAIL).
                self.bump(Counter::Forwarded);
                return;
            }
            Disposition::Malformed(e) => {
                self.bump(Counter::Malformed);
                self.bump_slot(Counter::PARSE_BASE + e.index());
            }
        }
        if o.len == 0 {
            self.bump(Counter::Dropped);
            return;
        }
        if o.truncated {
            self.bump(Counter::Truncated);
        }
        self.bump(match o.rcode {
            rcode::NOERROR => Counter::RcodeNoError,
            rcode::FORMERR => Counter::RcodeFormErr,
            rcode::SERVFAIL => Counter::RcodeServFail,
            rcode::NXDOMAIN => Counter::RcodeNxDomain,
            rcode::NOTIMP => Counter::RcodeNotImp,
            rcode::REFUSED => Counter::RcodeRefused,
            _ => Counter::RcodeBadVers,
        });
        if !matches!(o.disposition, Disposition::Malformed(_)) {
            self.bump(match o.qtype {
                rtype::A => Counter::QtypeA,
                rtype::AAAA => Counter::QtypeAaaa,
                rtype::SRV => Counter::QtypeSrv,
                rtype::SOA => Counter::QtypeSoa,
                rtype::NS => Counter::QtypeNs,
                rtype::ANY => Counter::QtypeAny,
                _ => Counter::QtypeOther,
            });
        }
    }
}

/// Every counter block of the process.
#[derive(Debug, Default)]
pub struct Registry {
    blocks: Mutex<Vec<Arc<WorkerCounters>>>,
}

impl Registry {
    /// A new block for one thread (worker or TCP connection pool).
    pub fn new_block(&self) -> Arc<WorkerCounters> {
        let b = Arc::new(WorkerCounters::default());
        self.blocks.lock().push(b.clone());
        b
    }

    /// A block written by several threads (atomic adds): for slow paths such as TCP.
    pub fn new_shared_block(&self) -> Arc<WorkerCounters> {
        let b = Arc::new(WorkerCounters {
            shared: true,
            ..WorkerCounters::default()
        });
        self.blocks.lock().push(b.clone());
        b
    }

    /// The sum of one counter over every block.
    pub fn total(&self, c: Counter) -> u64 {
        self.total_slot(c as usize)
    }

    /// The sum of one slot over every block.
    pub fn total_slot(&self, i: usize) -> u64 {
        self.blocks.lock().iter().map(|b| b.get_slot(i)).sum()
    }
}
