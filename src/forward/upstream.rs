//! Upstream selection and per-upstream health (behaviour reference §4.6).
//!
//! Owns the upstream lists: `resolvers` (the default list) and one list per `zoneResolvers`
//! zone, chosen by the longest zone that is a label suffix of the query name, **never falling
//! back from a zone's list to the default list**. Each distinct address has one health record
//! and one set of counters shared by every list that names it and every thread.
//!
//! Health: after [`DOWN_AFTER`] consecutive timeouts an upstream is tried last for
//! [`DOWN_FOR`]; any answer restores it. Only atomics are touched when counting; selection
//! takes no lock and never allocates. It never sends anything itself.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::stats::{Histogram, UpstreamMetrics};

/// Consecutive timeouts after which an upstream is tried last.
pub(crate) const DOWN_AFTER: u32 = 3;
/// How long an upstream that keeps timing out is tried last.
pub(crate) const DOWN_FOR: Duration = Duration::from_secs(30);
/// Most upstreams tried for one query (longer lists are cut).
pub(crate) const MAX_TRIES: usize = 16;

/// One upstream address with its health and counters.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    queries: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    consecutive_timeouts: AtomicU32,
    /// Milliseconds since [`Upstreams::epoch`] until which it is tried last (0: healthy).
    down_until_ms: AtomicU64,
    marked_down: AtomicBool,
    latency: Histogram,
}

/// Every upstream list of the configuration.
#[derive(Debug)]
pub(crate) struct Upstreams {
    all: Vec<Upstream>,
    default_list: Vec<usize>,
    /// Zone in lowercase wire form (with the root label) → list.
    zones: FxHashMap<Vec<u8>, Vec<usize>>,
    epoch: Instant,
    /// The configuration these lists were built from, for [`Self::configured_as`].
    source: (Vec<SocketAddr>, BTreeMap<String, Vec<SocketAddr>>),
}

/// The upstreams to try for one query, best first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Order {
    idx: [u16; MAX_TRIES],
    len: u8,
}

impl Order {
    /// The `i`-th upstream to try (an index for [`Upstreams::get`]).
    pub(crate) fn get(&self, i: usize) -> Option<usize> {
        if i < usize::from(self.len) {
            self.idx.get(i).map(|&x| usize::from(x))
        } else {
            None
        }
    }

    /// How many upstreams to try.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }
}

/// Dotted zone (lowercase, no trailing dot) → wire form with the root label.
fn zone_wire(zone: &str) -> Vec<u8> {
    let mut w = Vec::with_capacity(zone.len() + 2);
    for label in zone.split('.').filter(|l| !l.is_empty()) {
        w.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        w.extend_from_slice(label.as_bytes().get(..63).unwrap_or(label.as_bytes()));
    }
    w.push(0);
    w
}

impl Upstreams {
    /// Builds the lists; the same address in several lists shares one health record.
    pub(crate) fn new(
        resolvers: &[SocketAddr],
        zone_resolvers: &BTreeMap<String, Vec<SocketAddr>>,
    ) -> Upstreams {
        let mut all: Vec<Upstream> = Vec::new();
        let mut index: HashMap<SocketAddr, usize> = HashMap::new();
        let mut list = |addrs: &[SocketAddr]| -> Vec<usize> {
            addrs
                .iter()
                .map(|&addr| {
                    *index.entry(addr).or_insert_with(|| {
                        all.push(Upstream::new(addr));
                        all.len() - 1
                    })
                })
                .collect()
        };
        let default_list = list(resolvers);
        let zones = zone_resolvers
            .iter()
            .map(|(zone, addrs)| (zone_wire(&zone.to_ascii_lowercase()), list(addrs)))
            .collect();
        Upstreams {
            all,
            default_list,
            zones,
            epoch: Instant::now(),
            source: (resolvers.to_vec(), zone_resolvers.clone()),
        }
    }

    /// True when these lists were built from exactly this configuration.
    pub(crate) fn configured_as(
        &self,
        resolvers: &[SocketAddr],
        zone_resolvers: &BTreeMap<String, Vec<SocketAddr>>,
    ) -> bool {
        self.source.0 == resolvers && self.source.1 == *zone_resolvers
    }

    /// The list for a query name in lowercase wire form: the longest `zoneResolvers` zone
    /// that is a label suffix of it, else the default list.
    pub(crate) fn select(&self, qname_lower: &[u8]) -> &[usize] {
        if !self.zones.is_empty() {
            let mut p = 0usize;
            while let Some(&l) = qname_lower.get(p) {
                if let Some(list) = qname_lower.get(p..).and_then(|s| self.zones.get(s)) {
                    return list;
                }
                if l == 0 {
                    break;
                }
                p += 1 + usize::from(l);
            }
        }
        &self.default_list
    }

    /// The order to try `list` in: healthy upstreams in configured order, then those marked
    /// down (also in configured order).
    pub(crate) fn order(&self, list: &[usize], now: Instant) -> Order {
        let now_ms = self.ms(now);
        let mut o = Order {
            idx: [0; MAX_TRIES],
            len: 0,
        };
        for want_down in [false, true] {
            for &i in list {
                let down = self.all.get(i).is_some_and(|u| u.is_down(now_ms));
                if down != want_down {
                    continue;
                }
                if let (Some(slot), Ok(v)) = (o.idx.get_mut(usize::from(o.len)), u16::try_from(i)) {
                    *slot = v;
                    o.len += 1;
                }
            }
        }
        o
    }

    /// Upstream number `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&Upstream> {
        self.all.get(i)
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// An exchange with upstream `i` starts.
    pub(crate) fn sent(&self, i: usize) {
        if let Some(u) = self.all.get(i) {
            u.queries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Upstream `i` answered after `rtt`.
    pub(crate) fn answered(&self, i: usize, rtt: Duration) {
        if let Some(u) = self.all.get(i) {
            u.latency.observe(rtt);
            if u.consecutive_timeouts.load(Ordering::Relaxed) != 0 {
                u.consecutive_timeouts.store(0, Ordering::Relaxed);
            }
            if u.marked_down.load(Ordering::Relaxed) {
                u.marked_down.store(false, Ordering::Relaxed);
                u.down_until_ms.store(0, Ordering::Relaxed);
                log::info!("upstream {} answers again", u.addr);
            }
        }
    }

    /// Upstream `i` sent garbage, refused the connection or failed a socket call.
    pub(crate) fn error(&self, i: usize) {
        if let Some(u) = self.all.get(i) {
            u.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Upstream `i` did not answer within the timeout.
    pub(crate) fn timed_out(&self, i: usize, now: Instant) {
        let Some(u) = self.all.get(i) else { return };
        u.timeouts.fetch_add(1, Ordering::Relaxed);
        let n = u.consecutive_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= DOWN_AFTER {
            u.consecutive_timeouts.store(0, Ordering::Relaxed);
            let until = self.ms(now + DOWN_FOR).max(1);
            u.down_until_ms.store(until, Ordering::Relaxed);
            if !u.marked_down.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "upstream {}: {n} timeouts in a row, tried last for {}s",
                    u.addr,
                    DOWN_FOR.as_secs()
                );
            }
        }
    }

    /// Counters of every distinct upstream.
    pub(crate) fn metrics(&self, now: Instant) -> Vec<UpstreamMetrics> {
        let now_ms = self.ms(now);
        self.all
            .iter()
            .map(|u| UpstreamMetrics {
                addr: u.addr.to_string(),
                queries: u.queries.load(Ordering::Relaxed),
                errors: u.errors.load(Ordering::Relaxed),
                timeouts: u.timeouts.load(Ordering::Relaxed),
                down: u.is_down(now_ms),
                latency: u.latency.snapshot(),
            })
            .collect()
    }
}

impl Upstream {
    fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            queries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            consecutive_timeouts: AtomicU32::new(0),
            down_until_ms: AtomicU64::new(0),
            marked_down: AtomicBool::new(false),
            latency: Histogram::default(),
        }
    }

    fn is_down(&self, now_ms: u64) -> bool {
        now_ms < self.down_until_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn wire(name: &str) -> Vec<u8> {
        zone_wire(name)
    }

    fn setup() -> Upstreams {
        let mut zones = BTreeMap::new();
        zones.insert("example.test".to_string(), vec![addr("10.0.0.1:53")]);
        zones.insert(
            "consul".to_string(),
            vec![addr("10.0.0.2:8600"), addr("10.0.0.9:53")],
        );
        Upstreams::new(&[addr("10.0.0.9:53"), addr("10.0.0.8:53")], &zones)
    }

    #[test]
    fn longest_suffix_zone_else_default() {
        let u = setup();
        let addrs = |name: &str| -> Vec<SocketAddr> {
            u.select(&wire(name))
                .iter()
                .map(|&i| u.get(i).unwrap().addr)
                .collect()
        };
        assert_eq!(addrs("www.example.test"), vec![addr("10.0.0.1:53")]);
        assert_eq!(addrs("example.test"), vec![addr("10.0.0.1:53")]);
        assert_eq!(
            addrs("web.service.consul"),
            vec![addr("10.0.0.2:8600"), addr("10.0.0.9:53")]
        );
        // Not on a label boundary: the default list.
        assert_eq!(
            addrs("myexample.test"),
            vec![addr("10.0.0.9:53"), addr("10.0.0.8:53")]
        );
        assert_eq!(
            addrs("test"),
            vec![addr("10.0.0.9:53"), addr("10.0.0.8:53")]
        );
        assert_eq!(addrs(""), vec![addr("10.0.0.9:53"), addr("10.0.0.8:53")]);
        // The shared address has one record.
        assert_eq!(u.all.len(), 4);
    }

    #[test]
    fn timeouts_move_an_upstream_last_until_it_answers() {
        let u = setup();
        let list = u.select(&wire("x.org")).to_vec();
        let now = Instant::now();
        let first = |o: Order| u.get(o.get(0).unwrap()).unwrap().addr;
        assert_eq!(first(u.order(&list, now)), addr("10.0.0.9:53"));
        for _ in 0..DOWN_AFTER - 1 {
            u.timed_out(list[0], now);
        }
        assert_eq!(first(u.order(&list, now)), addr("10.0.0.9:53"));
        u.timed_out(list[0], now);
        let o = u.order(&list, now);
        assert_eq!(o.len(), 2);
        assert_eq!(first(o), addr("10.0.0.8:53"));
        assert_eq!(u.get(o.get(1).unwrap()).unwrap().addr, addr("10.0.0.9:53"));
        assert_eq!(o.get(2), None);
        // Back after DOWN_FOR, or at once on an answer.
        assert_eq!(
            first(u.order(&list, now + DOWN_FOR + Duration::from_secs(1))),
            addr("10.0.0.9:53")
        );
        u.answered(list[0], Duration::from_millis(1));
        assert_eq!(first(u.order(&list, now)), addr("10.0.0.9:53"));
        let m = u.metrics(now);
        assert_eq!((m[0].timeouts, m[0].latency.count), (3, 1));
    }
}
