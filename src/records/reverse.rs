//! The reverse index behind `ptrOn`: which `in-addr.arpa.` / `ip6.arpa.` names get a PTR
//! record, and to which name. Built once per snapshot from the generator's output, off the
//! query path, so answering a reverse query is one hash probe with no allocation.
//!
//! **Policy: an IP gets a PTR only when it has exactly one candidate name; an ambiguous IP
//! gets none** (and its reverse queries are forwarded, or REFUSED, like any name we do not
//! own). Candidates come in two tiers, and only the first non-empty tier counts:
//!
//! 1. **Task names.** For each task IP (from `IPSources`), the task's canonical name
//!    `<task>-<hash>-<slave tail>.<framework>.<domain>.` built from the sanitised label.
//!    The short name `<task>.<framework>.<domain>.` is shared by every instance of an app and
//!    the `….slave.<domain>.` names alias the agent's address, so neither is a candidate.
//!    With host networking (IPSources reaching `host`) a task's IP is its agent's IP: one
//!    such task on an agent makes the agent IP point at that task; two make it ambiguous.
//! 2. **Agent names.** An IP under `slave.<domain>.` (an agent's address) with no task
//!    candidate points at `slave.<domain>.`: the one name Mesos-DNS gives agents. Several
//!    agents on one IP still have that single candidate.
//!
//! The generator always lists the task candidates ([`crate::records::generator::Generated`]'s
//! `task_addrs`); [`crate::snapshot::Snapshot::new`] builds the index only with `ptrOn`.
//! Masters, the leader, frameworks and the SOA MNAME record get no PTR: they are not task or
//! agent addresses, and their IPs usually have names of their own in the site's DNS.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::records::generator::RecordSet;

/// Reverse names (lowercase text, trailing dot) → the record-set id of the PTR target.
#[derive(Debug, Default)]
pub struct ReverseIndex {
    map: FxHashMap<Box<str>, u32>,
    /// IPs with several candidate names, left without a PTR.
    ambiguous: usize,
}

/// The candidates seen so far for one IP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Candidate {
    One(u32),
    Many,
}

impl ReverseIndex {
    /// Builds the index. `task_addrs` are the generator's (task IP, canonical name id) pairs;
    /// agent IPs are the A/AAAA values of `slave.<domain>.` in `records`.
    pub fn build(records: &RecordSet, task_addrs: &[(IpAddr, u32)], domain: &str) -> Self {
        let mut by_ip: FxHashMap<IpAddr, Candidate> = FxHashMap::default();
        for &(ip, id) in task_addrs {
            by_ip
                .entry(ip)
                .and_modify(|c| {
                    if *c != Candidate::One(id) {
                        *c = Candidate::Many;
                    }
                })
                .or_insert(Candidate::One(id));
        }
        let slave = format!("slave.{domain}.");
        if let (Some(id), Some(rr)) = (records.id(&slave), records.get(&slave)) {
            let agents = rr.a.iter().map(|&ip| IpAddr::V4(ip));
            for ip in agents.chain(rr.aaaa.iter().map(|&ip| IpAddr::V6(ip))) {
                by_ip.entry(ip).or_insert(Candidate::One(id));
            }
        }
        let mut index = ReverseIndex {
            map: FxHashMap::with_capacity_and_hasher(by_ip.len(), Default::default()),
            ambiguous: 0,
        };
        for (ip, c) in by_ip {
            match c {
                Candidate::One(id) => {
                    index.map.insert(reverse_name(ip).into(), id);
                }
                Candidate::Many => index.ambiguous += 1,
            }
        }
        index
    }

    /// The PTR target's id (see [`RecordSet::name`]) of a lowercase, dot-terminated reverse
    /// name. No allocation.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.map.get(name).copied()
    }

    /// Number of PTR records.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is no PTR record (always so with `ptrOn` false).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// IPs left without a PTR because they have several candidate names.
    pub fn ambiguous(&self) -> usize {
        self.ambiguous
    }

    /// Every (reverse name, target id), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.map.iter().map(|(k, &v)| (&**k, v))
    }
}

/// True when `name` (lowercase, dot-terminated) is under `in-addr.arpa.` or `ip6.arpa.`: a
/// cheap test before probing the index.
pub fn is_reverse_name(name: &str) -> bool {
    name.ends_with(".in-addr.arpa.") || name.ends_with(".ip6.arpa.")
}

/// The reverse name of an IP: `d.c.b.a.in-addr.arpa.` or 32 nibbles then `ip6.arpa.`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut s = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    s.push(char::from(HEX[usize::from(nibble)]));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpSource;
    use crate::mesos::state::State;
    use crate::records::generator::{GenConfig, NoHosts, generate};
    use crate::snapshot::Zone;

    #[test]
    fn reverse_names_follow_rfc_1035_and_3596() {
        assert_eq!(
            reverse_name("10.1.2.3".parse().unwrap()),
            "3.2.1.10.in-addr.arpa."
        );
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
        assert!(is_reverse_name("3.2.1.10.in-addr.arpa."));
        assert!(is_reverse_name("1.0.ip6.arpa."));
        assert!(!is_reverse_name("in-addr.arpa.mesos."));
    }

    fn cfg(ip_sources: Vec<IpSource>) -> GenConfig {
        GenConfig {
            ip_sources,
            ..GenConfig::defaults_with_listener("127.0.0.1".parse().unwrap())
        }
    }

    /// Two agents; web (own IP 10.0.0.5) and db (own IP 10.0.0.6, and a second instance with
    /// the same IP) on agent 1; nothing with a label on agent 2.
    const STATE: &str = r#"{
      "leader": "master@10.0.9.9:5050",
      "frameworks": [{"name": "marathon", "pid": "scheduler(1)@10.0.9.1:8080", "tasks": [
        {"id": "web.1", "name": "web", "slave_id": "S1", "state": "TASK_RUNNING",
         "statuses": [{"state": "TASK_RUNNING", "timestamp": 1, "labels": [
           {"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": "10.0.0.5"}]}]},
        {"id": "db.1", "name": "db", "slave_id": "S1", "state": "TASK_RUNNING",
         "statuses": [{"state": "TASK_RUNNING", "timestamp": 1, "labels": [
           {"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": "10.0.0.6"}]}]},
        {"id": "db.2", "name": "db", "slave_id": "S1", "state": "TASK_RUNNING",
         "statuses": [{"state": "TASK_RUNNING", "timestamp": 1, "labels": [
           {"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": "10.0.0.6"}]}]}
      ]}],
      "slaves": [{"id": "S1", "pid": "slave(1)@10.0.1.1:5051"},
                 {"id": "S2", "pid": "slave(1)@10.0.1.2:5051"}]
    }"#;

    fn index(sources: Vec<IpSource>) -> (ReverseIndex, RecordSet) {
        let state = State::from_slice(STATE.as_bytes()).unwrap();
        let g = generate(&state, &cfg(sources), &[], &NoHosts);
        let idx = ReverseIndex::build(&g.records, &g.task_addrs, "mesos");
        (idx, g.records)
    }

    fn target<'a>(idx: &ReverseIndex, rs: &'a RecordSet, ip: &str) -> Option<&'a str> {
        idx.get(&reverse_name(ip.parse().unwrap()))
            .map(|id| rs.name(id))
    }

    #[test]
    fn unique_ips_point_at_canonical_task_names_and_ambiguous_ones_get_none() {
        let (idx, rs) = index(vec![IpSource::Mesos, IpSource::Host]);
        let web = target(&idx, &rs, "10.0.0.5").expect("web has a PTR");
        assert!(
            web.starts_with("web-") && web.ends_with("-s1.marathon.mesos."),
            "{web}"
        );
        assert_eq!(target(&idx, &rs, "10.0.0.6"), None, "two db tasks share it");
        // Agents: no task on their IP, so the agent name.
        assert_eq!(target(&idx, &rs, "10.0.1.1"), Some("slave.mesos."));
        assert_eq!(target(&idx, &rs, "10.0.1.2"), Some("slave.mesos."));
        assert_eq!(target(&idx, &rs, "10.0.9.9"), None, "masters get none");
        assert_eq!((idx.len(), idx.ambiguous()), (3, 1));
    }

    #[test]
    fn host_networked_tasks_take_over_or_make_the_agent_ip_ambiguous() {
        let (idx, rs) = index(vec![IpSource::Host]);
        // Three tasks on agent S1's IP: ambiguous. S2 has none: the agent name.
        assert_eq!(target(&idx, &rs, "10.0.1.1"), None);
        assert_eq!(target(&idx, &rs, "10.0.1.2"), Some("slave.mesos."));
    }

    #[test]
    fn ptr_off_builds_no_index() {
        let state = State::from_slice(STATE.as_bytes()).unwrap();
        let g = generate(&state, &cfg(vec![IpSource::Host]), &[], &NoHosts);
        let mut c = crate::config::default_config();
        let off = crate::snapshot::Snapshot::new(g, Zone::from_config(&c), String::new(), None);
        assert!(off.reverse.is_empty());
        c.ptr_on = true;
        let g = generate(&state, &cfg(vec![IpSource::Host]), &[], &NoHosts);
        let on = crate::snapshot::Snapshot::new(g, Zone::from_config(&c), String::new(), None);
        assert_eq!(on.reverse.len(), 1, "S2's agent IP");
    }
}
