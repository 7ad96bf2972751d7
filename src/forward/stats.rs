//! Counters of the forward path and the plain-data views of them that `/metrics` renders:
//! a fixed-bucket latency histogram, the forwarder-wide counters, and the snapshot types
//! ([`ForwardMetrics`], [`UpstreamMetrics`], [`CacheMetrics`], [`HistogramMetrics`]).
//!
//! Everything here is atomics written with relaxed adds by the few forward-path threads;
//! nothing here takes a lock or allocates when counting. It never formats output (that is
//! `http::prometheus`'s job).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the `+Inf` bucket is implicit).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// A latency histogram with the fixed [`LATENCY_BOUNDS_US`] buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per-bucket (non-cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// A plain copy, with cumulative bucket counts as Prometheus wants them.
    pub fn snapshot(&self) -> HistogramMetrics {
        let mut cumulative = [0u64; LATENCY_BOUNDS_US.len() + 1];
        let mut acc = 0u64;
        for (c, b) in cumulative.iter_mut().zip(&self.buckets) {
            acc = acc.wrapping_add(b.load(Ordering::Relaxed));
            *c = acc;
        }
        HistogramMetrics {
            cumulative,
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            count: acc,
        }
    }
}

/// A histogram read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramMetrics {
    /// Cumulative counts per bucket of [`LATENCY_BOUNDS_US`], then `+Inf`.
    pub cumulative: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

/// Forwarder-wide counters (the per-upstream ones live with each upstream).
#[derive(Debug, Default)]
pub struct ForwardCounters {
    /// Queries answered SERVFAIL at once because the queue was full.
    pub queue_full: AtomicU64,
    /// Queries answered SERVFAIL because they were larger than a queue slot.
    pub too_large: AtomicU64,
    /// Replies relayed from an upstream (UDP and TCP clients).
    pub relayed: AtomicU64,
    /// SERVFAIL because every upstream of the list failed.
    pub all_failed: AtomicU64,
    /// REFUSED because the name's upstream list is empty.
    pub no_upstream: AtomicU64,
    /// Replies from the pool that could not be sent to the client.
    pub send_errors: AtomicU64,
    /// Queries in flight towards an upstream right now (gauge).
    pub in_flight: AtomicU64,
    /// Queries forwarded for TCP clients.
    pub tcp: AtomicU64,
    /// Time from the hand-over by a worker (or a TCP thread) to the reply: upstream answers
    /// and SERVFAILs after every upstream failed.
    pub latency: Histogram,
}

/// What `/metrics` shows about the forward path.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardMetrics {
    /// Jobs waiting in the queue.
    pub queue_depth: u64,
    /// The queue's capacity (`forwardQueue`).
    pub queue_capacity: u64,
    /// Forwarder threads.
    pub threads: u64,
    /// Queries waiting on an upstream.
    pub in_flight: u64,
    /// See [`ForwardCounters::queue_full`].
    pub queue_full: u64,
    /// See [`ForwardCounters::too_large`].
    pub too_large: u64,
    /// See [`ForwardCounters::relayed`].
    pub relayed: u64,
    /// See [`ForwardCounters::all_failed`].
    pub all_failed: u64,
    /// See [`ForwardCounters::no_upstream`].
    pub no_upstream: u64,
    /// See [`ForwardCounters::send_errors`].
    pub send_errors: u64,
    /// See [`ForwardCounters::tcp`].
    pub tcp: u64,
    /// See [`ForwardCounters::latency`].
    pub latency: HistogramMetrics,
    /// The cache.
    pub cache: CacheMetrics,
    /// Each distinct upstream address, in configuration order.
    pub upstreams: Vec<UpstreamMetrics>,
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheMetrics {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing fresh.
    pub misses: u64,
    /// Fresh entries pushed out to make room.
    pub evictions: u64,
    /// Replies stored.
    pub inserts: u64,
    /// Entries held now (fresh or expired).
    pub entries: u64,
    /// `cacheSize`.
    pub capacity: u64,
}

/// One upstream's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamMetrics {
    /// `ip:port`.
    pub addr: String,
    /// Exchanges started.
    pub queries: u64,
    /// Socket errors, refused connections and garbage replies.
    pub errors: u64,
    /// Exchanges that got no usable reply within `timeout`.
    pub timeouts: u64,
    /// Currently tried last after repeated timeouts.
    pub down: bool,
    /// Round-trip time of the exchanges that got an answer.
    pub latency: HistogramMetrics,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_micros(700));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[LATENCY_BOUNDS_US.len() - 1], 2);
        assert_eq!(s.cumulative[LATENCY_BOUNDS_US.len()], 3);
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 60.0008).abs() < 1e-9);
    }
}
