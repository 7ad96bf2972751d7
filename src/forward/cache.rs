//! The cache of upstream replies (`cacheSize` entries, 0 disables), keyed by (lowercased
//! qname, qtype, qclass, DO bit).
//!
//! It owns storage, expiry and eviction; what may be stored and for how long is decided by
//! the caller ([`super::Forwarder`]). Entries hold the reply without its OPT record and are
//! served with ages subtracted from their TTLs by the caller.
//!
//! The cache is split into shards, each a `parking_lot` mutex around a small CLOCK map (a
//! hash → slot index plus a ring of slots with a "referenced" bit), so workers rarely
//! contend. **It takes a lock**: it is on the forward path, not the in-domain hot path, and a
//! lookup holds its shard only to copy one reply out. A lookup never allocates; an insert
//! reuses the evicted slot's buffers and allocates only while a shard fills up. It never
//! panics and never blocks on anything but a shard lock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::stats::CacheMetrics;
use crate::dns::wire::MAX_NAME_LEN;

/// Longest key: a wire name, qtype, qclass and the DO bit.
pub(crate) const KEY_MAX: usize = MAX_NAME_LEN + 5;
/// Most shards (fewer when `cacheSize` is small, so that every shard has room).
const MAX_SHARDS: usize = 32;

/// One shard on cache lines of its own.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// A sharded, bounded cache of DNS replies.
pub(crate) struct Cache {
    shards: Box<[Padded]>,
    hasher: std::collections::hash_map::RandomState,
    capacity: usize,
    /// Counted outside the shards because lookups of a disabled cache take no lock.
    disabled_misses: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cache({} entries max)", self.capacity)
    }
}

struct Shard {
    map: FxHashMap<u64, u32>,
    slots: Vec<Slot>,
    cap: usize,
    hand: usize,
    hits: u64,
    misses: u64,
    evictions: u64,
    inserts: u64,
}

struct Slot {
    hash: u64,
    key: Vec<u8>,
    msg: Vec<u8>,
    stored: Instant,
    expires: Instant,
    referenced: bool,
}

/// A hit: the reply's length in the caller's buffer and its age in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) len: usize,
    pub(crate) age: u32,
}

/// Writes the cache key of a question into `out`: the lowercased wire name, qtype, qclass
/// and the DO bit. Returns its length (0 if `out` is too small).
pub(crate) fn make_key(
    qname: &[u8],
    qtype: u16,
    qclass: u16,
    do_bit: bool,
    out: &mut [u8; KEY_MAX],
) -> usize {
    let n = qname.len();
    let Some(dst) = out.get_mut(..n) else {
        return 0;
    };
    dst.copy_from_slice(qname);
    dst.make_ascii_lowercase();
    let Some(tail) = out.get_mut(n..n + 5) else {
        return 0;
    };
    let [t0, t1] = qtype.to_be_bytes();
    let [c0, c1] = qclass.to_be_bytes();
    tail.copy_from_slice(&[t0, t1, c0, c1, u8::from(do_bit)]);
    n + 5
}

impl Cache {
    /// A cache of at most `capacity` entries (0: every lookup misses, nothing is stored).
    pub(crate) fn new(capacity: usize) -> Cache {
        let n = capacity.clamp(1, MAX_SHARDS);
        let shards = (0..n)
            .map(|i| {
                // Spread the capacity exactly: the first `capacity % n` shards get one more.
                let cap = capacity / n + usize::from(i < capacity % n);
                Padded(Mutex::new(Shard {
                    map: FxHashMap::default(),
                    slots: Vec::new(),
                    cap,
                    hand: 0,
                    hits: 0,
                    misses: 0,
                    evictions: 0,
                    inserts: 0,
                }))
            })
            .collect();
        Cache {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            capacity,
            disabled_misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> (u64, &Mutex<Shard>) {
        let h = self.hasher.hash_one(key);
        // The high bits pick the shard; the map uses the whole hash.
        let i = ((h >> 40) as usize) % self.shards.len().max(1);
        let shard = match self.shards.get(i) {
            Some(s) => &s.0,
            None => &self.shards[0].0,
        };
        (h, shard)
    }

    /// Drops every entry (hot reload changed the upstreams); counters are kept.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.0.lock();
            s.map.clear();
            s.slots.clear();
            s.hand = 0;
        }
    }

    /// Copies the fresh entry for `key` into `out`. A miss (or a reply longer than `out`)
    /// returns `None`.
    pub(crate) fn lookup(&self, key: &[u8], now: Instant, out: &mut [u8]) -> Option<Hit> {
        if self.capacity == 0 {
            self.disabled_misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let (h, shard) = self.shard(key);
        let mut s = shard.lock();
        let found = s.map.get(&h).copied().and_then(|i| {
            let slot = s.slots.get_mut(i as usize)?;
            if slot.key != key || slot.expires <= now {
                return None;
            }
            let dst = out.get_mut(..slot.msg.len())?;
            dst.copy_from_slice(&slot.msg);
            slot.referenced = true;
            let age = now.saturating_duration_since(slot.stored).as_secs();
            Some(Hit {
                len: slot.msg.len(),
                age: u32::try_from(age).unwrap_or(u32::MAX),
            })
        });
        match found {
            Some(_) => s.hits += 1,
            None => s.misses += 1,
        }
        found
    }

    /// Stores `msg` under `key` for `ttl`. Replaces an entry with the same key; when the
    /// shard is full, evicts an expired or not recently used entry (CLOCK).
    pub(crate) fn insert(&self, key: &[u8], msg: &[u8], ttl: Duration, now: Instant) {
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let (h, shard) = self.shard(key);
        let mut s = shard.lock();
        let s = &mut *s;
        if s.cap == 0 {
            return;
        }
        let idx = match s.map.get(&h).copied() {
            Some(i) if (i as usize) < s.slots.len() => i as usize,
            _ if s.slots.len() < s.cap => {
                s.slots.push(Slot {
                    hash: h,
                    key: Vec::new(),
                    msg: Vec::new(),
                    stored: now,
                    expires: now,
                    referenced: false,
                });
                s.slots.len() - 1
            }
            _ => {
                let victim = s.victim(now);
                let Some(old) = s.slots.get(victim) else {
                    return;
                };
                if old.expires > now {
                    s.evictions += 1;
                }
                let old_hash = old.hash;
                if s.map.get(&old_hash) == Some(&(victim as u32)) {
                    s.map.remove(&old_hash);
                }
                victim
            }
        };
        let Some(slot) = s.slots.get_mut(idx) else {
            return;
        };
        slot.hash = h;
        slot.key.clear();
        slot.key.extend_from_slice(key);
        slot.msg.clear();
        slot.msg.extend_from_slice(msg);
        slot.stored = now;
        slot.expires = now + ttl;
        slot.referenced = false;
        s.map.insert(h, idx as u32);
        s.inserts += 1;
    }

    /// Counters summed over the shards.
    pub(crate) fn metrics(&self) -> CacheMetrics {
        let mut m = CacheMetrics {
            capacity: self.capacity as u64,
            misses: self.disabled_misses.load(Ordering::Relaxed),
            ..CacheMetrics::default()
        };
        for s in &*self.shards {
            let s = s.0.lock();
            m.hits += s.hits;
            m.misses += s.misses;
            m.evictions += s.evictions;
            m.inserts += s.inserts;
            m.entries += s.map.len() as u64;
        }
        m
    }
}

impl Shard {
    /// The slot to reuse in a full shard: the first expired or unreferenced slot from the
    /// hand on, clearing "referenced" bits on the way (at most two turns).
    fn victim(&mut self, now: Instant) -> usize {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let i = self.hand % n.max(1);
            self.hand = (i + 1) % n.max(1);
            if let Some(slot) = self.slots.get_mut(i) {
                if slot.expires <= now || !slot.referenced {
                    return i;
                }
                slot.referenced = false;
            }
        }
        self.hand % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Vec<u8> {
        let mut k = [0u8; KEY_MAX];
        let mut wire = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            wire.push(l.len() as u8);
            wire.extend_from_slice(l.as_bytes());
        }
        wire.push(0);
        let n = make_key(&wire, 1, 1, false, &mut k);
        k[..n].to_vec()
    }

    #[test]
    fn key_is_lowercase_and_typed() {
        assert_eq!(key("A.Example"), key("a.example"));
        let mut k = [0u8; KEY_MAX];
        let n = make_key(b"\x01A\x00", 28, 1, true, &mut k);
        assert_eq!(&k[..n], b"\x01a\x00\x00\x1c\x00\x01\x01");
    }

    #[test]
    fn hit_miss_expiry() {
        let c = Cache::new(10);
        let t0 = Instant::now();
        let mut out = [0u8; 64];
        assert_eq!(c.lookup(&key("a"), t0, &mut out), None);
        c.insert(&key("a"), b"hello", Duration::from_secs(5), t0);
        let hit = c.lookup(&key("a"), t0 + Duration::from_millis(2500), &mut out);
        assert_eq!(hit, Some(Hit { len: 5, age: 2 }));
        assert_eq!(&out[..5], b"hello");
        assert_eq!(
            c.lookup(&key("a"), t0 + Duration::from_secs(5), &mut out),
            None
        );
        // Too long for the caller's buffer: a miss.
        assert_eq!(c.lookup(&key("a"), t0, &mut out[..3]), None);
        let m = c.metrics();
        assert_eq!((m.hits, m.misses, m.inserts, m.entries), (1, 3, 1, 1));
        // Replace in place.
        c.insert(&key("a"), b"bye", Duration::from_secs(5), t0);
        assert_eq!(c.lookup(&key("a"), t0, &mut out).map(|h| h.len), Some(3));
        assert_eq!(c.metrics().entries, 1);
    }

    #[test]
    fn bounded_with_evictions() {
        let c = Cache::new(50);
        let t0 = Instant::now();
        for i in 0..500 {
            c.insert(&key(&format!("n{i}")), b"x", Duration::from_secs(60), t0);
        }
        let m = c.metrics();
        assert!(m.entries <= 50, "{m:?}");
        assert!(m.evictions >= 450, "{m:?}");
        // A referenced entry survives a sweep that takes unreferenced ones.
        let c = Cache::new(1);
        let mut out = [0u8; 8];
        c.insert(&key("keep"), b"k", Duration::from_secs(60), t0);
        assert!(c.lookup(&key("keep"), t0, &mut out).is_some());
        c.insert(&key("new"), b"n", Duration::from_secs(60), t0);
        assert!(c.lookup(&key("new"), t0, &mut out).is_some());
        assert_eq!(c.metrics().entries, 1);
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let c = Cache::new(0);
        let t0 = Instant::now();
        c.insert(&key("a"), b"x", Duration::from_secs(60), t0);
        let mut out = [0u8; 8];
        assert_eq!(c.lookup(&key("a"), t0, &mut out), None);
        let m = c.metrics();
        assert_eq!((m.entries, m.misses, m.capacity), (0, 1, 0));
    }
}
