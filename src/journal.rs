//! The zone as secondaries see it, and a journal of its recent differences for IXFR
//! (RFC 1995).
//!
//! [`zone_records`] decides which records of a [`Snapshot`] are part of the transferred zone:
//! owners at or below the domain, in lowercase (the original's legacy raw DiscoveryInfo names
//! keep their case in the record set; no query can reach them, since lookups are lowercased,
//! so they are left out). [`Journal::record`] runs as a publish hook on the refresh thread:
//! when the serial moves it diffs the replaced and the new snapshot (two hash sets, linear)
//! and keeps the last [`MAX_DELTAS`] deltas within a size budget; [`Journal::changes`]
//! condenses a chain of them into one deletion list and one addition list.
//!
//! It never holds a snapshot (only the differences), never runs on a query path (the lock is
//! taken by the refresh thread once per publish and by a transfer once per IXFR), and does
//! no I/O.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashSet;

use crate::snapshot::{Snapshot, in_domain};

/// Deltas kept: a secondary more than this many serials behind gets the whole zone.
pub const MAX_DELTAS: usize = 16;
/// The journal's record budget is the zone's record count, but at least this: a delta larger
/// than the zone is worth less than an AXFR anyway.
const MIN_BUDGET: usize = 4096;

/// One record's data, borrowed from a snapshot. TTL, class, SRV priority and weight are
/// zone-wide, so they are not part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecRef<'a> {
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// SRV: target name and port.
    Srv(&'a str, u16),
}

/// One record's data, owned (kept in the journal).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecData {
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// SRV: target name and port.
    Srv(Box<str>, u16),
}

impl RecData {
    /// The borrowed form.
    pub fn as_ref(&self) -> RecRef<'_> {
        match self {
            RecData::A(ip) => RecRef::A(*ip),
            RecData::Aaaa(ip) => RecRef::Aaaa(*ip),
            RecData::Srv(t, p) => RecRef::Srv(t, *p),
        }
    }
}

impl From<RecRef<'_>> for RecData {
    fn from(r: RecRef<'_>) -> RecData {
        match r {
            RecRef::A(ip) => RecData::A(ip),
            RecRef::Aaaa(ip) => RecData::Aaaa(ip),
            RecRef::Srv(t, p) => RecData::Srv(t.into(), p),
        }
    }
}

/// One owned record: owner name (lowercase, dot-terminated) and data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rec {
    /// Owner name.
    pub name: Box<str>,
    /// Data.
    pub data: RecData,
}

/// True when `name` belongs in the transferred zone of `domain`.
pub fn transferable(name: &str, domain: &str) -> bool {
    in_domain(name, domain) && !name.bytes().any(|b| b.is_ascii_uppercase())
}

/// Every record of the transferred zone (apex SOA and NS excluded: they are synthesised
/// from the zone parameters), in the record set's order.
pub fn zone_records(snap: &Snapshot) -> impl Iterator<Item = (&str, RecRef<'_>)> {
    let domain = snap.zone.domain.as_str();
    snap.records
        .iter()
        .filter(move |(name, rr)| !rr.is_empty() && transferable(name, domain))
        .flat_map(move |(name, rr)| {
            let a = rr.a.iter().map(move |&ip| (name, RecRef::A(ip)));
            let aaaa = rr.aaaa.iter().map(move |&ip| (name, RecRef::Aaaa(ip)));
            let srv = rr
                .srv
                .iter()
                .map(move |s| (name, RecRef::Srv(snap.records.name(s.target), s.port)));
            a.chain(aaaa).chain(srv)
        })
}

/// The difference between two consecutive serials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Serial before.
    pub from: u32,
    /// Serial after.
    pub to: u32,
    /// Records removed.
    pub deleted: Vec<Rec>,
    /// Records added.
    pub added: Vec<Rec>,
}

impl Delta {
    fn len(&self) -> usize {
        self.deleted.len() + self.added.len()
    }
}

/// Net changes from one serial to another: what [`Journal::changes`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Records to delete, sorted.
    pub deleted: Vec<Rec>,
    /// Records to add, sorted.
    pub added: Vec<Rec>,
}

/// The diff of two snapshots' transferred zones: (deleted, added), each sorted. Linear in
/// the two sizes.
pub fn diff(old: &Snapshot, new: &Snapshot) -> (Vec<Rec>, Vec<Rec>) {
    let old_set: FxHashSet<(&str, RecRef<'_>)> = zone_records(old).collect();
    let new_set: FxHashSet<(&str, RecRef<'_>)> = zone_records(new).collect();
    let owned = |&(name, r): &(&str, RecRef<'_>)| Rec {
        name: name.into(),
        data: r.into(),
    };
    let mut deleted: Vec<Rec> = old_set.difference(&new_set).map(owned).collect();
    let mut added: Vec<Rec> = new_set.difference(&old_set).map(owned).collect();
    deleted.sort_unstable();
    added.sort_unstable();
    (deleted, added)
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; `deltas[i].to == deltas[i + 1].from`.
    deltas: VecDeque<Arc<Delta>>,
    /// Records held by all deltas.
    records: usize,
    /// The newest serial seen (the end of the chain), 0 before the first publish.
    serial: u32,
}

/// The recent deltas. Shared by the refresh thread (writer) and the TCP transfer threads.
#[derive(Debug)]
pub struct Journal {
    max_deltas: usize,
    inner: Mutex<Inner>,
    /// Signalled after each [`Journal::record`]: a transfer that saw a snapshot newer than
    /// the journal (the diff runs after readers can see the snapshot) waits on it.
    recorded: Condvar,
}

/// How long [`Journal::changes`] waits for the publish hook to record a snapshot it was
/// asked about (the diff of a 10k-task zone takes well under a second).
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for Journal {
    fn default() -> Self {
        Journal::new(MAX_DELTAS)
    }
}

impl Journal {
    /// A journal keeping at most `max_deltas` deltas.
    pub fn new(max_deltas: usize) -> Journal {
        Journal {
            max_deltas,
            inner: Mutex::new(Inner::default()),
            recorded: Condvar::new(),
        }
    }

    /// The publish hook: records the delta from `old` to `new` when the serial moved. Runs
    /// on the publishing thread; the diff is computed outside the lock.
    pub fn record(&self, old: Option<&Snapshot>, new: &Snapshot) {
        let Some(old) = old.filter(|o| o.zone.domain == new.zone.domain) else {
            let mut inner = self.inner.lock();
            *inner = Inner {
                serial: new.serial,
                ..Inner::default()
            };
            self.recorded.notify_all();
            return;
        };
        if old.serial == new.serial {
            return;
        }
        let started = std::time::Instant::now();
        let (deleted, added) = diff(old, new);
        log::debug!(
            "journal: serial {} -> {}: {} deleted, {} added, diffed in {:?}",
            old.serial,
            new.serial,
            deleted.len(),
            added.len(),
            started.elapsed()
        );
        let delta = Arc::new(Delta {
            from: old.serial,
            to: new.serial,
            deleted,
            added,
        });
        let budget = new.records.len().max(MIN_BUDGET);
        let mut inner = self.inner.lock();
        if inner.serial != old.serial {
            // A publish we did not see (cannot happen with one publisher): restart the chain.
            inner.deltas.clear();
            inner.records = 0;
        }
        inner.serial = new.serial;
        inner.records += delta.len();
        inner.deltas.push_back(delta);
        while inner.deltas.len() > self.max_deltas
            || (inner.records > budget && inner.deltas.len() > 1)
        {
            if let Some(d) = inner.deltas.pop_front() {
                inner.records -= d.len();
            }
        }
        if inner.records > budget {
            // One delta larger than the zone: an AXFR is smaller, keep nothing.
            inner.deltas.clear();
            inner.records = 0;
        }
        drop(inner);
        self.recorded.notify_all();
    }

    /// The condensed changes from serial `from` to serial `to`, or `None` when the journal
    /// does not hold that whole chain (the client is too far behind, or `to` is not the
    /// newest serial). When `to` is newer than the journal (its snapshot is published and
    /// being diffed), waits up to 5 s for it.
    pub fn changes(&self, from: u32, to: u32) -> Option<Changes> {
        let chain: Vec<Arc<Delta>> = {
            let mut inner = self.inner.lock();
            let deadline = std::time::Instant::now() + CATCH_UP;
            while inner.serial != to && crate::dns::xfr::serial_ge(to, inner.serial) {
                if self.recorded.wait_until(&mut inner, deadline).timed_out() {
                    break;
                }
            }
            if inner.serial != to {
                return None;
            }
            let start = inner.deltas.iter().position(|d| d.from == from)?;
            inner.deltas.iter().skip(start).cloned().collect()
        };
        if let [one] = chain.as_slice() {
            return Some(Changes {
                deleted: one.deleted.clone(),
                added: one.added.clone(),
            });
        }
        // Compose: a record added then deleted (or deleted then re-added) cancels out.
        let mut deleted: FxHashSet<Rec> = FxHashSet::default();
        let mut added: FxHashSet<Rec> = FxHashSet::default();
        for d in &chain {
            for r in &d.deleted {
                if !added.remove(r) {
                    deleted.insert(r.clone());
                }
            }
            for r in &d.added {
                if !deleted.remove(r) {
                    added.insert(r.clone());
                }
            }
        }
        let mut deleted: Vec<Rec> = deleted.into_iter().collect();
        let mut added: Vec<Rec> = added.into_iter().collect();
        deleted.sort_unstable();
        added.sort_unstable();
        Some(Changes { deleted, added })
    }

    /// (deltas held, records held, newest serial), for tests and logs.
    pub fn stats(&self) -> (usize, usize, u32) {
        let inner = self.inner.lock();
        (inner.deltas.len(), inner.records, inner.serial)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::default_config;
    use crate::mesos::state::State;
    use crate::records::generator::{GenConfig, NoHosts, generate};
    use crate::snapshot::Zone;

    /// A snapshot of one agent and one running task per `(name, ip)`; a name starting with
    /// an uppercase letter is also its DiscoveryInfo name (a legacy raw record).
    fn snap(tasks: &[(&str, &str)], serial: u32, mname: &str) -> Snapshot {
        let tasks: Vec<serde_json::Value> = tasks
            .iter()
            .enumerate()
            .map(|(i, (name, ip))| {
                let mut t = serde_json::json!({
                    "id": format!("{name}.{i}"), "name": name, "slave_id": "S0",
                    "state": "TASK_RUNNING", "resources": {"ports": "[31000-31000]"},
                    "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0, "labels": [
                        {"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": ip}]}]
                });
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    t["discovery"] = serde_json::json!({"name": name});
                }
                t
            })
            .collect();
        let doc = serde_json::json!({
            "leader": "master@10.9.0.9:5050",
            "frameworks": [{"name": "marathon", "pid": "scheduler(1)@10.9.0.1:8080", "tasks": tasks}],
            "slaves": [{"id": "S0", "pid": "slave(1)@10.9.1.1:5051"}]
        });
        let state = State::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let cfg = GenConfig {
            soa_mname: mname.into(),
            ..GenConfig::defaults_with_listener(IpAddr::V4(Ipv4Addr::LOCALHOST))
        };
        let generated = generate(&state, &cfg, &[], &NoHosts);
        let mut s = Snapshot::new(
            generated,
            Zone::from_config(&default_config()),
            String::new(),
            None,
        );
        s.serial = serial;
        s
    }

    fn rec_a(name: &str, ip: &str) -> Rec {
        Rec {
            name: name.into(),
            data: RecData::A(ip.parse().unwrap()),
        }
    }

    #[test]
    fn zone_records_skip_foreign_and_uppercase_owners() {
        let s = snap(
            &[("web", "10.0.0.1"), ("Legacy", "10.0.0.2")],
            1,
            "ns1.example.",
        );
        // The record set has both kinds; the transferred zone has neither.
        assert!(s.records.get("ns1.example.").is_some());
        assert!(s.records.get("Legacy.marathon.mesos.").is_some());
        let got: Vec<_> = zone_records(&s).collect();
        assert!(got.contains(&(
            "web.marathon.mesos.",
            RecRef::A("10.0.0.1".parse().unwrap())
        )));
        assert!(got.contains(&(
            "legacy.marathon.mesos.",
            RecRef::A("10.0.0.2".parse().unwrap())
        )));
        assert!(got.iter().all(|(n, _)| transferable(n, "mesos")));
        assert!(
            !got.iter()
                .any(|(n, _)| *n == "ns1.example." || n.contains('L'))
        );
        let srv_targets: Vec<&str> = got
            .iter()
            .filter_map(|(_, r)| match r {
                RecRef::Srv(t, _) => Some(*t),
                _ => None,
            })
            .collect();
        assert!(srv_targets.contains(&"slave.mesos."));
    }

    #[test]
    fn diff_and_condensed_chain() {
        let j = Journal::new(3);
        let m = "ns1.mesos.";
        let s1 = snap(&[("a", "10.0.0.1"), ("b", "10.0.0.2")], 10, m);
        let s2 = snap(&[("a", "10.0.0.1"), ("c", "10.0.0.3")], 11, m);
        let s3 = snap(&[("b", "10.0.0.2"), ("c", "10.0.0.3")], 12, m);
        j.record(None, &s1);
        j.record(Some(&s1), &s2);
        let c = j.changes(10, 11).unwrap();
        assert!(c.deleted.contains(&rec_a("b.marathon.mesos.", "10.0.0.2")));
        assert!(c.added.contains(&rec_a("c.marathon.mesos.", "10.0.0.3")));
        assert!(
            !c.added
                .iter()
                .chain(&c.deleted)
                .any(|r| &*r.name == "a.marathon.mesos.")
        );
        // Same serial: nothing recorded.
        j.record(Some(&s2), &s2);
        j.record(Some(&s2), &s3);
        // The condensed chain 10 → 12 is exactly the direct diff (b's removal and return
        // cancel out).
        let (deleted, added) = diff(&s1, &s3);
        assert_eq!(j.changes(10, 12).unwrap(), Changes { deleted, added });
        let (deleted, added) = diff(&s2, &s3);
        assert_eq!(j.changes(11, 12).unwrap(), Changes { deleted, added });
        // Unknown start, or an end that is not the newest serial: no answer.
        assert!(j.changes(9, 12).is_none());
        assert!(j.changes(10, 11).is_none());
        assert_eq!(j.stats().0, 2);
    }

    #[test]
    fn changes_wait_for_a_snapshot_being_recorded() {
        let j = Arc::new(Journal::new(4));
        let m = "ns1.mesos.";
        let s1 = snap(&[("a", "10.0.0.1")], 10, m);
        let s2 = snap(&[("a", "10.0.0.2")], 11, m);
        j.record(None, &s1);
        // A transfer sees serial 11 published while the hook is still diffing it.
        let writer = {
            let j = j.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                j.record(Some(&s1), &s2);
            })
        };
        let started = std::time::Instant::now();
        let c = j.changes(10, 11).expect("waited for the hook");
        assert!(started.elapsed() >= std::time::Duration::from_millis(150));
        assert!(c.added.contains(&rec_a("a.marathon.mesos.", "10.0.0.2")));
        writer.join().unwrap();
    }

    #[test]
    fn keeps_at_most_max_deltas() {
        let j = Journal::new(2);
        let snaps: Vec<Snapshot> = (0..5u8)
            .map(|i| {
                snap(
                    &[("a", &format!("10.0.0.{i}"))],
                    100 + u32::from(i),
                    "ns1.mesos.",
                )
            })
            .collect();
        j.record(None, &snaps[0]);
        for w in snaps.windows(2) {
            j.record(Some(&w[0]), &w[1]);
        }
        let (n, _, serial) = j.stats();
        assert_eq!((n, serial), (2, 104));
        assert!(j.changes(101, 104).is_none());
        let (deleted, added) = diff(&snaps[2], &snaps[4]);
        assert!(deleted.contains(&rec_a("a.marathon.mesos.", "10.0.0.2")));
        assert_eq!(j.changes(102, 104).unwrap(), Changes { deleted, added });
        // A new domain restarts the chain.
        let mut other = snap(&[("a", "10.0.0.9")], 200, "ns1.mesos.");
        other.zone.domain = "dc".into();
        j.record(Some(&snaps[4]), &other);
        assert_eq!(j.stats(), (0, 0, 200));
    }
}
