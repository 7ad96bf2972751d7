//! The immutable, epoch-versioned [`Snapshot`] every reader answers from, and the lock-free
//! publish/read pair ([`SnapshotHandle`], [`SnapshotReader`]).
//!
//! A snapshot is never mutated after it is published. The refresh thread builds the next one
//! off to the side and publishes it with epoch + 1.
//!
//! Why an epoch counter plus a per-reader cached `Arc`, and not `arc-swap` or crossbeam-epoch:
//! the query path then costs exactly one `Acquire` load of a cache line that is written only
//! once per refresh, and no atomic read-modify-write at all (an `Arc` clone per query would
//! bounce the reference count's cache line between cores). When the epoch moves, the reader
//! takes a short `parking_lot` mutex to clone the new `Arc`: once per refresh per worker. The
//! handle, not the worker, drops retired snapshots, so a worker never pays for freeing a
//! large record set on its query path.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::config::Config;
use crate::dns::fragments::ReplyFragments;
use crate::records::generator::{Enumeration, GenStats, Generated, RecordSet, RrSet};
use crate::records::reverse::ReverseIndex;

/// Zone-wide parameters copied from the config into each snapshot, so every answer from one
/// snapshot is consistent even if a reload changes the config between refreshes.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase domain without trailing dot (`mesos`).
    pub domain: String,
    /// TTL of every record.
    pub ttl: u32,
    /// SOA MNAME and NS target, with trailing dot.
    pub mname: String,
    /// SOA RNAME, with trailing dot.
    pub rname: String,
    /// SOA REFRESH.
    pub refresh: u32,
    /// SOA RETRY.
    pub retry: u32,
    /// SOA EXPIRE.
    pub expire: u32,
    /// SOA MINIMUM (`SOAMinttl`; the original used `ttl`).
    pub minimum: u32,
    /// WEIGHT of every SRV answer.
    pub srv_weight: u16,
    /// RA bit on in-domain replies.
    pub recurse_on: bool,
    /// Whether TC may be set.
    pub set_truncate_bit: bool,
    /// `ptrOn`: build the reverse index.
    pub ptr_on: bool,
}

impl Zone {
    /// Takes the zone parameters from a validated config.
    pub fn from_config(c: &Config) -> Zone {
        Zone {
            domain: c.domain.clone(),
            ttl: c.ttl,
            mname: c.soa_mname.clone(),
            rname: c.soa_rname.clone(),
            refresh: c.soa_refresh,
            retry: c.soa_retry,
            expire: c.soa_expire,
            minimum: c.soa_minttl,
            srv_weight: c.srv_default_weight,
            recurse_on: c.recurse_on,
            set_truncate_bit: c.set_truncate_bit,
            ptr_on: c.ptr_on,
        }
    }
}

/// One immutable view of the zone.
#[derive(Debug)]
pub struct Snapshot {
    /// Publish counter: 1 for the first snapshot.
    pub epoch: u64,
    /// SOA SERIAL: changes only when the record content changes.
    pub serial: u32,
    /// Unix time (seconds) when this snapshot was built.
    pub built_at: u64,
    /// Zone parameters.
    pub zone: Zone,
    /// The records.
    pub records: RecordSet,
    /// The SRV target names of `records` in wire form, by name id: SRV answers and their glue
    /// owners are copied from here instead of converted from text on every query.
    pub wire_names: WireNames,
    /// The precomputed parts of every reply (answer record heads with the zone's TTL and SRV
    /// weight, the SOA names in wire form): see [`crate::dns::fragments`].
    pub fragments: ReplyFragments,
    /// `/v1/enumerate` data.
    pub enumeration: Enumeration,
    /// What the build skipped.
    pub stats: GenStats,
    /// The `leader` string of the state it was built from.
    pub leader: String,
    /// PTR records (`ptrOn`; empty when off): see [`crate::records::reverse`].
    pub reverse: ReverseIndex,
}

/// The SRV target names of a [`RecordSet`] in DNS wire form (uncompressed labels), one after
/// the other, indexed by name id (other names get an empty slot). Built once per snapshot, off
/// the query path: for 100k tasks about 20 ms and 0.09x the state document.
#[derive(Debug, Default)]
pub struct WireNames {
    bytes: Vec<u8>,
    /// End offset in `bytes` of each name id's wire form (its start is the previous end).
    ends: Vec<u32>,
}

impl WireNames {
    fn build(records: &RecordSet) -> WireNames {
        let count = records.iter().count();
        let mut is_target = vec![false; count];
        for (_, rr) in records.iter() {
            for srv in &rr.srv {
                if let Some(t) = is_target.get_mut(srv.target as usize) {
                    *t = true;
                }
            }
        }
        let mut names = WireNames {
            bytes: Vec::new(),
            ends: Vec::with_capacity(count),
        };
        let mut tmp = [0u8; crate::dns::wire::MAX_NAME_LEN];
        for ((name, _), target) in records.iter().zip(is_target) {
            // A name that is not a valid DNS name gets an empty slot too, which the writer
            // refuses like the text it replaces.
            if target && let Some(n) = crate::dns::wire::text_to_wire(name.as_bytes(), &mut tmp) {
                names.bytes.extend_from_slice(&tmp[..n]);
            }
            names.ends.push(names.bytes.len() as u32);
        }
        names.bytes.shrink_to_fit();
        names
    }

    /// The wire form of name `id` (empty for a name that is no SRV target, an invalid name or
    /// an unknown id).
    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes.get(start as usize..end as usize).unwrap_or(&[])
    }
}

/// Current unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Snapshot {
    /// Wraps a build result. `prev` is the snapshot it replaces: the serial is kept when the
    /// content is unchanged, else it becomes the current unix time (kept increasing).
    pub fn new(generated: Generated, zone: Zone, leader: String, prev: Option<&Snapshot>) -> Self {
        let now = unix_now();
        let serial = match prev {
            Some(p) if p.records.digest() == generated.records.digest() => p.serial,
            Some(p) => (now as u32).max(p.serial.wrapping_add(1)),
            None => now as u32,
        };
        let reverse = if zone.ptr_on {
            ReverseIndex::build(&generated.records, &generated.task_addrs, &zone.domain)
        } else {
            ReverseIndex::default()
        };
        let wire_names = WireNames::build(&generated.records);
        let fragments = ReplyFragments::new(zone.ttl, zone.srv_weight, &zone.mname, &zone.rname);
        Snapshot {
            epoch: prev.map_or(1, |p| p.epoch + 1),
            serial,
            built_at: now,
            zone,
            wire_names,
            fragments,
            records: generated.records,
            enumeration: generated.enumeration,
            stats: generated.stats,
            leader,
            reverse,
        }
    }

    /// The rrset of a lowercase, dot-terminated name, if it has any record.
    pub fn lookup(&self, name: &str) -> Option<&RrSet> {
        self.records.get(name).filter(|r| !r.is_empty())
    }

    /// True when `name` (lowercase, dot-terminated) is the domain or below it.
    pub fn in_domain(&self, name: &str) -> bool {
        in_domain(name, &self.zone.domain)
    }

    /// All A and AAAA values of a name, A first (the order `/v1/hosts` uses).
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        self.lookup(name).map_or_else(Vec::new, |rr| {
            rr.a.iter()
                .map(|&ip| IpAddr::V4(ip))
                .chain(rr.aaaa.iter().map(|&ip| IpAddr::V6(ip)))
                .collect()
        })
    }
}

/// True when the lowercase, dot-terminated `name` is `domain.` or ends with `.domain.`.
pub fn in_domain(name: &str, domain: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    match body.strip_suffix(domain) {
        Some("") => true,
        Some(rest) => rest.ends_with('.'),
        None => false,
    }
}

/// The publishing side, shared by the refresh thread and every reader.
#[derive(Debug, Default)]
pub struct SnapshotHandle {
    /// Epoch of `current`; 0 until the first publish. Written once per refresh.
    epoch: AtomicU64,
    current: Mutex<Option<Arc<Snapshot>>>,
    /// Replaced snapshots, dropped by the publisher once no reader holds them, so the memory
    /// of a large zone is never freed on a worker's query path.
    retired: Mutex<Vec<Arc<Snapshot>>>,
    /// Run after each publish (the IXFR journal, the NOTIFY sender): see [`Self::on_publish`].
    hooks: PublishHooks,
}

/// A publish hook: `(replaced, new)`, run on the publishing thread once readers see `new`.
pub type PublishHook = Box<dyn Fn(Option<&Snapshot>, &Snapshot) + Send + Sync>;

#[derive(Default)]
struct PublishHooks(Mutex<Vec<PublishHook>>);

impl std::fmt::Debug for PublishHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublishHooks({})", self.0.lock().len())
    }
}

impl SnapshotHandle {
    /// A handle with no snapshot yet.
    pub fn new() -> Arc<SnapshotHandle> {
        Arc::new(SnapshotHandle::default())
    }

    /// Publishes `snap`; readers see it at their next query.
    pub fn publish(&self, snap: Snapshot) {
        let epoch = snap.epoch;
        let snap = Arc::new(snap);
        let old = self.current.lock().replace(snap.clone());
        self.epoch.store(epoch, Ordering::Release);
        for hook in self.hooks.0.lock().iter() {
            hook(old.as_deref(), &snap);
        }
        drop(snap);
        let mut retired = self.retired.lock();
        if let Some(old) = old {
            retired.push(old);
        }
        self.collect(&mut retired);
    }

    /// Adds a hook run after every later publish, in the order added.
    pub fn on_publish(&self, hook: PublishHook) {
        self.hooks.0.lock().push(hook);
    }

    /// Drops retired snapshots that no reader holds any more. Called on every publish; the
    /// refresh thread may also call it between publishes.
    pub fn collect_retired(&self) {
        let mut retired = self.retired.lock();
        self.collect(&mut retired);
    }

    fn collect(&self, retired: &mut Vec<Arc<Snapshot>>) {
        retired.retain(|s| Arc::strong_count(s) > 1);
    }

    /// The current snapshot (a clone of the `Arc`): for the slow paths (HTTP, TCP, refresh).
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.lock().clone()
    }

    /// The current epoch (0 before the first publish).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// A reader's cached view: one per worker thread.
#[derive(Debug)]
pub struct SnapshotReader {
    handle: Arc<SnapshotHandle>,
    epoch: u64,
    cached: Option<Arc<Snapshot>>,
}

impl SnapshotReader {
    /// A reader of `handle`.
    pub fn new(handle: Arc<SnapshotHandle>) -> SnapshotReader {
        SnapshotReader {
            handle,
            epoch: 0,
            cached: None,
        }
    }

    /// The newest published snapshot, or `None` before the first publish. Lock-free unless
    /// the epoch moved since the last call.
    pub fn get(&mut self) -> Option<&Snapshot> {
        let epoch = self.handle.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            // Swap first, drop the old Arc after: the handle's retired list still holds it,
            // so this drop only decrements a count and never frees the zone here.
            let new = self.handle.current.lock().clone();
            self.epoch = new.as_ref().map_or(0, |s| s.epoch);
            drop(std::mem::replace(&mut self.cached, new));
        }
        self.cached.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_hold_every_srv_target_by_id_and_nothing_else() {
        use crate::mesos::state::State;
        use crate::records::generator::{GenConfig, NoHosts, generate};
        let state =
            State::from_slice(include_bytes!("../tests/fixtures/state-small.json")).expect("state");
        let config = crate::config::default_config();
        let g = generate(&state, &GenConfig::from_config(&config), &[], &NoHosts);
        let snap = Snapshot::new(g, Zone::from_config(&config), String::new(), None);
        let targets: std::collections::HashSet<u32> = snap
            .records
            .iter()
            .flat_map(|(_, rr)| rr.srv.iter().map(|s| s.target))
            .collect();
        let mut checked = 0;
        let mut buf = [0u8; crate::dns::wire::MAX_NAME_LEN];
        for (id, (name, _)) in snap.records.iter().enumerate() {
            let id = id as u32;
            let want = match crate::dns::wire::text_to_wire(name.as_bytes(), &mut buf) {
                Some(n) if targets.contains(&id) => &buf[..n],
                _ => &[][..],
            };
            assert_eq!(snap.wire_names.get(id), want, "{name}");
            checked += usize::from(!want.is_empty());
        }
        assert!(checked >= 10, "{checked} SRV targets");
        let past = snap.records.iter().count() as u32;
        assert_eq!(
            snap.wire_names.get(past),
            &[] as &[u8],
            "an unknown id is empty"
        );
    }

    #[test]
    fn in_domain_matches_label_boundaries() {
        assert!(in_domain("mesos.", "mesos"));
        assert!(in_domain("a.b.mesos.", "mesos"));
        assert!(!in_domain("amesos.", "mesos"));
        assert!(!in_domain("mesos.com.", "mesos"));
        assert!(in_domain("x.dc.mesos.", "dc.mesos"));
        assert!(!in_domain("x.acdc.mesos.", "dc.mesos"));
        assert!(!in_domain("mesos", "mesos"));
    }
}
