//! The record generator: one pass over a Mesos state document produces the whole record set
//! of the zone (behaviour reference §3.7) and the enumeration data of `/v1/enumerate` (§3.8).
//!
//! Owns every name pattern and the dedup rule (a set per (name, type)); dedup is a hash-set
//! probe per record, so a build is linear in the number of tasks (the original spent a fifth
//! of its refresh CPU in quadratic collision checks). It never performs I/O itself: host names
//! go through the caller's [`HostResolver`]. Bad input is skipped and counted in [`GenStats`],
//! never fatal and never a panic.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Serialize;

use crate::config::{Config, HealthFilter, IpSource};
use crate::mesos::state::{self, Framework, Lenient, Slave, State, Task};
use crate::records::ip_sources;
use crate::records::labels::{LabelRule, domain_frag, sanitize_label, slave_tail, task_hash};

/// Resolves host names and lists local addresses for the generator. The refresh thread passes
/// the system implementation; tests pass a fixed table, so record generation stays pure.
pub trait HostResolver {
    /// Every v4 and v6 address of `host` (a name that is not an IP literal). Empty when none.
    fn resolve(&self, host: &str) -> Vec<IpAddr>;
    /// Every non-loopback address of every local interface (for listener `0.0.0.0`).
    fn local_addrs(&self) -> Vec<IpAddr>;
}

/// A resolver that knows no names and no interfaces.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHosts;

impl HostResolver for NoHosts {
    fn resolve(&self, _host: &str) -> Vec<IpAddr> {
        Vec::new()
    }
    fn local_addrs(&self) -> Vec<IpAddr> {
        Vec::new()
    }
}

/// The parts of the config that shape records (copied into every snapshot so a later hot
/// reload can change them between builds).
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Lowercase domain without trailing dot.
    pub domain: String,
    /// Label sanitiser.
    pub rule: LabelRule,
    /// Task IP sources in order.
    pub ip_sources: Vec<IpSource>,
    /// Health filter.
    pub health_filter: HealthFilter,
    /// DNS listener address (feeds the SOAMname record).
    pub listener: IpAddr,
    /// SOAMname with its trailing dot.
    pub soa_mname: String,
}

impl GenConfig {
    /// Takes the record-shaping keys from a validated config.
    pub fn from_config(c: &Config) -> GenConfig {
        GenConfig {
            domain: c.domain.clone(),
            rule: if c.enforce_rfc952 {
                LabelRule::Rfc952
            } else {
                LabelRule::Rfc1123
            },
            ip_sources: c.ip_sources.clone(),
            health_filter: c.health_filter,
            listener: c.listener,
            soa_mname: c.soa_mname.clone(),
        }
    }
}

/// Counts of input that was skipped while building. Summed into metrics by the caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GenStats {
    /// Frameworks skipped: not an object, or a bad `pid` (a `frameworks` that is not a list
    /// counts once).
    pub frameworks_skipped: u64,
    /// Tasks skipped: not an object, or a missing/bad `id`, `slave_id` or `state` (a `tasks`
    /// that is not a list counts once).
    pub tasks_skipped: u64,
    /// Agents skipped: not an object, or a bad `id` or `pid` (a `slaves` that is not a list
    /// counts once).
    pub slaves_skipped: u64,
    /// Parts of `resources.ports` strings that did not parse (a `resources` or `ports` of the
    /// wrong type counts once).
    pub bad_port_parts: u64,
    /// Tasks left out by `healthFilter`.
    pub unhealthy_excluded: u64,
    /// Host names that resolved to no address.
    pub unresolved_hosts: u64,
    /// Generated names that are not valid DNS names (e.g. an empty label) and were dropped.
    pub invalid_names: u64,
    /// The leader string was unusable, so no leader/master records were made.
    pub bad_leader: u64,
    /// TASK_RUNNING tasks on a known agent that got records.
    pub tasks_running: u64,
}

/// The type of a record, as named in `/v1/enumerate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Service location.
    #[serde(rename = "SRV")]
    Srv,
}

/// One SRV value: a target name (by id in the record set) and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Srv {
    /// Id of the target name in [`RecordSet::name`].
    pub target: u32,
    /// Port.
    pub port: u16,
}

/// Every value of one owner name, by type, in insertion order.
#[derive(Debug, Default, Clone)]
pub struct RrSet {
    /// A values.
    pub a: Vec<Ipv4Addr>,
    /// AAAA values.
    pub aaaa: Vec<Ipv6Addr>,
    /// SRV values.
    pub srv: Vec<Srv>,
}

impl RrSet {
    /// True when the name has no record of any type (it exists only as an SRV target).
    pub fn is_empty(&self) -> bool {
        self.a.is_empty() && self.aaaa.is_empty() && self.srv.is_empty()
    }
}

/// Dedup key of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ValueKey {
    A(u32, u32),
    Aaaa(u32, u128),
    Srv(u32, u32, u16),
}

/// The zone's records: owner names (fully qualified, trailing dot; lowercase except the
/// original's legacy raw DiscoveryInfo names) with their rrsets.
#[derive(Debug, Default)]
pub struct RecordSet {
    names: Vec<Box<str>>,
    rrsets: Vec<RrSet>,
    index: FxHashMap<Box<str>, u32>,
    /// Order-independent digest of the content, so a refresh that changes nothing keeps the
    /// SOA serial (secondaries then skip the transfer).
    digest: u64,
}

impl RecordSet {
    /// The rrset of an exact owner name (`name` must end with a dot).
    pub fn get(&self, name: &str) -> Option<&RrSet> {
        self.index.get(name).map(|&id| &self.rrsets[id as usize])
    }

    /// The id of an owner name.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The name with this id.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    /// The rrset of the name with this id.
    pub fn rrset(&self, id: u32) -> Option<&RrSet> {
        self.rrsets.get(id as usize)
    }

    /// Every `(name, rrset)`, in insertion order, including target-only names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RrSet)> {
        self.names.iter().map(|n| &**n).zip(self.rrsets.iter())
    }

    /// Number of owner names with at least one record.
    pub fn len(&self) -> usize {
        self.rrsets.iter().filter(|r| !r.is_empty()).count()
    }

    /// True when there is no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record counts by type: (A, AAAA, SRV).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.rrsets.iter().fold((0, 0, 0), |(a, q, s), r| {
            (a + r.a.len(), q + r.aaaa.len(), s + r.srv.len())
        })
    }

    /// The content digest (order-independent).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// `"target:port"` text of an SRV value, as the original's API shows it.
    pub fn srv_text(&self, srv: &Srv) -> String {
        format!("{}:{}", self.name(srv.target), srv.port)
    }

    /// The records in the shape of the original's `/v1/axfr` `Records` object.
    pub fn axfr_records(&self) -> AxfrRecords {
        let mut out = AxfrRecords::default();
        for (name, rr) in self.iter() {
            if !rr.a.is_empty() {
                out.a.insert(
                    name.to_owned(),
                    rr.a.iter().map(|ip| ip.to_string()).collect(),
                );
            }
            if !rr.aaaa.is_empty() {
                out.aaaa.insert(
                    name.to_owned(),
                    rr.aaaa.iter().map(|ip| ip.to_string()).collect(),
                );
            }
            if !rr.srv.is_empty() {
                out.srv.insert(
                    name.to_owned(),
                    rr.srv.iter().map(|s| self.srv_text(s)).collect(),
                );
            }
        }
        out
    }
}

/// The `Records` object of `/v1/axfr` and `--dump-records`.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct AxfrRecords {
    /// A records.
    #[serde(rename = "As")]
    pub a: BTreeMap<String, Vec<String>>,
    /// AAAA records.
    #[serde(rename = "AAAAs")]
    pub aaaa: BTreeMap<String, Vec<String>>,
    /// SRV records.
    #[serde(rename = "SRVs")]
    pub srv: BTreeMap<String, Vec<String>>,
}

/// One record a task added, for `/v1/enumerate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumRecord {
    /// Owner name.
    pub name: String,
    /// IP, or `target:port` for SRV.
    pub host: String,
    /// Type.
    pub rtype: RType,
}

/// One task in `/v1/enumerate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumTask {
    /// Raw task name.
    pub name: String,
    /// Task id.
    pub id: String,
    /// Records this task newly added.
    pub records: Vec<EnumRecord>,
}

/// One framework in `/v1/enumerate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumFramework {
    /// Its running tasks on known agents.
    pub tasks: Vec<EnumTask>,
    /// Raw framework name.
    pub name: String,
}

/// The `/v1/enumerate` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enumeration {
    /// Every framework, in state order.
    pub frameworks: Vec<EnumFramework>,
}

/// The result of one build.
#[derive(Debug, Default)]
pub struct Generated {
    /// The records.
    pub records: RecordSet,
    /// The enumeration data.
    pub enumeration: Enumeration,
    /// What was skipped.
    pub stats: GenStats,
    /// Every (task IP, id of the task's canonical name) pair: the PTR candidates of
    /// [`crate::records::reverse`], used when `ptrOn`.
    pub task_addrs: Vec<(IpAddr, u32)>,
}

/// Accumulates records with dedup per (name, type, value).
struct Builder {
    set: RecordSet,
    seen: FxHashSet<ValueKey>,
    stats: GenStats,
    task_addrs: Vec<(IpAddr, u32)>,
}

impl Builder {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.set.index.get(name) {
            return id;
        }
        let id = self.set.names.len() as u32;
        self.set.names.push(name.into());
        self.set.rrsets.push(RrSet::default());
        self.set.index.insert(name.into(), id);
        id
    }

    /// Inserts one record; returns true when it is new.
    fn insert(&mut self, name: &str, value: Value) -> bool {
        if !valid_name(name) {
            self.stats.invalid_names += 1;
            return false;
        }
        let id = self.intern(name);
        let key = match value {
            Value::Ip(IpAddr::V4(ip)) => ValueKey::A(id, ip.to_bits()),
            Value::Ip(IpAddr::V6(ip)) => ValueKey::Aaaa(id, ip.to_bits()),
            Value::Srv(target, port) => {
                if !valid_name(target) {
                    self.stats.invalid_names += 1;
                    return false;
                }
                ValueKey::Srv(id, self.intern(target), port)
            }
        };
        if !self.seen.insert(key) {
            return false;
        }
        let mut h = FxHasher::default();
        self.set.names[id as usize].hash(&mut h);
        key_value_hash(key, &mut h);
        // Wrapping add is commutative: the digest ignores insertion order.
        self.set.digest = self.set.digest.wrapping_add(h.finish());
        let rr = &mut self.set.rrsets[id as usize];
        match key {
            ValueKey::A(_, ip) => rr.a.push(Ipv4Addr::from_bits(ip)),
            ValueKey::Aaaa(_, ip) => rr.aaaa.push(Ipv6Addr::from_bits(ip)),
            ValueKey::Srv(_, target, port) => rr.srv.push(Srv { target, port }),
        }
        true
    }

    /// Inserts a task record and lists it on the task when new.
    fn insert_task(&mut self, name: &str, value: Value, task: &mut EnumTask) {
        if self.insert(name, value) {
            let (host, rtype) = match value {
                Value::Ip(ip @ IpAddr::V4(_)) => (ip.to_string(), RType::A),
                Value::Ip(ip @ IpAddr::V6(_)) => (ip.to_string(), RType::Aaaa),
                Value::Srv(target, port) => (format!("{target}:{port}"), RType::Srv),
            };
            task.records.push(EnumRecord {
                name: name.to_owned(),
                host,
                rtype,
            });
        }
    }
}

/// Hashes the value part of a key, with the target by name so ids do not matter.
fn key_value_hash(key: ValueKey, h: &mut FxHasher) {
    match key {
        ValueKey::A(_, ip) => (1u8, ip).hash(h),
        ValueKey::Aaaa(_, ip) => (2u8, ip).hash(h),
        ValueKey::Srv(_, target, port) => (3u8, target, port).hash(h),
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Ip(IpAddr),
    Srv(&'a str, u16),
}

/// A name we can serve: ends with a dot, no empty label, labels ≤ 63, total ≤ 253 chars.
fn valid_name(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    !body.is_empty() && body.len() <= 253 && body.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// Builds the record set of `state`. `masters` is the current masters list (§5.1).
pub fn generate(
    state: &State,
    cfg: &GenConfig,
    masters: &[String],
    hosts: &dyn HostResolver,
) -> Generated {
    let mut b = Builder {
        set: RecordSet::default(),
        seen: FxHashSet::default(),
        stats: GenStats::default(),
        task_addrs: Vec::new(),
    };
    let domain = cfg.domain.as_str();
    let mut host_cache: FxHashMap<String, Vec<IpAddr>> = FxHashMap::default();
    let mut lookup = |host: &str, stats: &mut GenStats| -> Vec<IpAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return vec![ip];
        }
        if let Some(ips) = host_cache.get(host) {
            return ips.clone();
        }
        let ips = hosts.resolve(host);
        if ips.is_empty() {
            stats.unresolved_hosts += 1;
        }
        host_cache.insert(host.to_owned(), ips.clone());
        ips
    };

    // Agents: slave.<d> A/AAAA and _slave._tcp.<d> SRV; remember each agent's IPs.
    let mut slave_ips: FxHashMap<&str, Vec<IpAddr>> = FxHashMap::default();
    let slave_name = format!("slave.{domain}.");
    let slave_srv = format!("_slave._tcp.{domain}.");
    b.stats.slaves_skipped += u64::from(state.slaves.is_bad());
    for slave in state.slaves.items() {
        let Some((id, host, port)) = slave_parts(slave) else {
            b.stats.slaves_skipped += 1;
            continue;
        };
        let ips = lookup(host, &mut b.stats);
        for &ip in &ips {
            b.insert(&slave_name, Value::Ip(ip));
        }
        b.insert(&slave_srv, Value::Srv(&slave_name, port));
        slave_ips.insert(id, ips);
    }

    // The SOAMname ("listener") record.
    let listener_ips: Vec<IpAddr> = if cfg.listener == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        hosts
            .local_addrs()
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect()
    } else {
        vec![cfg.listener]
    };
    for ip in listener_ips {
        b.insert(&cfg.soa_mname, Value::Ip(ip));
    }

    master_records(&mut b, domain, masters, state.leader.as_str());

    // Frameworks: <fw>.<d> A/AAAA and _framework._tcp.<fw>.<d> SRV.
    let mut fw_ok: Vec<Option<String>> = Vec::with_capacity(state.frameworks.items().len());
    b.stats.frameworks_skipped += u64::from(state.frameworks.is_bad());
    for fw in state.frameworks.items() {
        let Some(fw) = fw.get() else {
            b.stats.frameworks_skipped += 1;
            fw_ok.push(None);
            continue;
        };
        let (host, port) = match &fw.pid {
            Lenient::Absent => (fw.hostname.as_str(), None),
            Lenient::Valid(pid) => match state::parse_upid(pid) {
                Some(u) => (u.host, Some(u.port)),
                None => {
                    b.stats.frameworks_skipped += 1;
                    fw_ok.push(None);
                    continue;
                }
            },
            Lenient::Null | Lenient::Invalid => {
                b.stats.frameworks_skipped += 1;
                fw_ok.push(None);
                continue;
            }
        };
        let fname = domain_frag(fw.name.as_str(), cfg.rule);
        fw_ok.push(Some(fname.clone()));
        if host.is_empty() {
            continue;
        }
        let a = format!("{fname}.{domain}.");
        for ip in lookup(host, &mut b.stats) {
            b.insert(&a, Value::Ip(ip));
        }
        if let Some(port) = port {
            b.insert(&format!("_framework._tcp.{a}"), Value::Srv(&a, port));
        }
    }

    // Tasks.
    let mut enumeration = Enumeration::default();
    let mut ips = Vec::new();
    for (fw, fname) in state.frameworks.items().iter().zip(&fw_ok) {
        let (Some(fw), Some(fname)) = (fw.get(), fname) else {
            continue;
        };
        let mut efw = EnumFramework {
            tasks: Vec::new(),
            name: fw.name.as_str().to_owned(),
        };
        framework_tasks(&mut b, cfg, fw, fname, &slave_ips, &mut ips, &mut efw);
        enumeration.frameworks.push(efw);
    }

    Generated {
        records: b.set,
        enumeration,
        stats: b.stats,
        task_addrs: b.task_addrs,
    }
}

/// `(id, host, port)` of an agent with a usable id and pid.
fn slave_parts(slave: &Lenient<Slave>) -> Option<(&str, &str, u16)> {
    let slave = slave.get()?;
    let id = slave.id.get().filter(|id| !id.is_empty())?;
    let pid = state::parse_upid(slave.pid.get()?)?;
    Some((id, pid.host, pid.port))
}

/// leader/master/masterN records (§3.7), following the original's numbering exactly.
fn master_records(b: &mut Builder, domain: &str, masters: &[String], leader: &str) {
    let Some((_, leader_addr)) = leader.split_once('@') else {
        b.stats.bad_leader += 1;
        return;
    };
    let Some((host, port)) = state::split_host_port(leader_addr) else {
        b.stats.bad_leader += 1;
        return;
    };
    // The original panicked on a non-IP leader host; we make no leader records instead.
    let Ok(ip) = host.parse::<IpAddr>() else {
        b.stats.bad_leader += 1;
        return;
    };
    let master = format!("master.{domain}.");
    let leader_name = format!("leader.{domain}.");
    b.insert(&leader_name, Value::Ip(ip));
    b.insert(&master, Value::Ip(ip));
    b.insert(
        &format!("_leader._tcp.{domain}."),
        Value::Srv(&leader_name, port),
    );
    b.insert(
        &format!("_leader._udp.{domain}."),
        Value::Srv(&leader_name, port),
    );

    let mut leader_numbered = false;
    let mut idx = 0usize;
    for m in masters {
        let Some((mhost, _)) = state::split_host_port(m) else {
            continue;
        };
        let Ok(mip) = mhost.parse::<IpAddr>() else {
            continue;
        };
        if m.as_str() != leader_addr {
            // A master whose IP is already under master.<d> is a duplicate: skipped entirely.
            if !b.insert(&master, Value::Ip(mip)) {
                continue;
            }
        } else if leader_numbered {
            continue;
        }
        b.insert(&format!("master{idx}.{domain}."), Value::Ip(mip));
        if m.as_str() == leader_addr {
            leader_numbered = true;
        }
        idx += 1;
    }
    if !leader_numbered {
        b.insert(&format!("master{idx}.{domain}."), Value::Ip(ip));
    }
}

fn framework_tasks(
    b: &mut Builder,
    cfg: &GenConfig,
    fw: &Framework,
    fname: &str,
    slave_ips: &FxHashMap<&str, Vec<IpAddr>>,
    ips: &mut Vec<IpAddr>,
    efw: &mut EnumFramework,
) {
    b.stats.tasks_skipped += u64::from(fw.tasks.is_bad());
    for task in fw.tasks.items() {
        let Some(task) = task.get() else {
            b.stats.tasks_skipped += 1;
            continue;
        };
        let (Some(id), Some(slave_id), Some(state)) =
            (task.id.get(), task.slave_id.get(), task.state.get())
        else {
            b.stats.tasks_skipped += 1;
            continue;
        };
        let Some(sips) = slave_ips.get(slave_id.as_str()) else {
            continue;
        };
        if state != "TASK_RUNNING" {
            continue;
        }
        if cfg.health_filter == HealthFilter::ExcludeUnhealthy
            && ip_sources::latest_running_status(task)
                .is_some_and(|s| s.healthy.get() == Some(&false))
        {
            b.stats.unhealthy_excluded += 1;
            continue;
        }
        b.stats.tasks_running += 1;
        ip_sources::task_ips(task, &cfg.ip_sources, sips, ips);
        let mut etask = EnumTask {
            name: task.name.as_str().to_owned(),
            id: id.clone(),
            records: Vec::new(),
        };
        let ctx = TaskCtx {
            domain: &cfg.domain,
            fname,
            hash: task_hash(id),
            tail: slave_tail(slave_id),
            task_ips: ips,
            slave_ips: sips,
            rule: cfg.rule,
        };
        let bad_ports = match &task.resources {
            Lenient::Valid(r) => r.ports.is_bad(),
            other => other.is_bad(),
        };
        b.stats.bad_port_parts += u64::from(bad_ports);
        let ports = task
            .resources
            .get()
            .map(|r| state::parse_ports(r.ports.as_str()));
        if let Some(p) = &ports {
            b.stats.bad_port_parts += p.bad_parts as u64;
        }
        let ports: &[u16] = ports.as_ref().map_or(&[], |p| &p.ports);
        let canonical = match discovery_name(task) {
            Some(di_name) => {
                // The original's LEGACY pass with the raw name, then the sanitised one.
                task_context_records(b, &ctx, di_name, task, ports, true, &mut etask);
                let label = sanitize_label(di_name, cfg.rule);
                task_context_records(b, &ctx, &label, task, ports, true, &mut etask)
            }
            None => {
                let label = sanitize_label(task.name.as_str(), cfg.rule);
                task_context_records(b, &ctx, &label, task, ports, false, &mut etask)
            }
        };
        // PTR candidates: the sanitised canonical name, for each of the task's own IPs.
        if let Some(id) = canonical {
            b.task_addrs.extend(ctx.task_ips.iter().map(|&ip| (ip, id)));
        }
        efw.tasks.push(etask);
    }
}

/// The DiscoveryInfo name when the task has one that is non-empty.
fn discovery_name(task: &Task) -> Option<&str> {
    task.discovery
        .get()
        .map(|d| d.name.as_str())
        .filter(|n| !n.is_empty())
}

struct TaskCtx<'a> {
    domain: &'a str,
    fname: &'a str,
    hash: String,
    tail: String,
    task_ips: &'a [IpAddr],
    slave_ips: &'a [IpAddr],
    rule: LabelRule,
}

fn task_context_records(
    b: &mut Builder,
    ctx: &TaskCtx<'_>,
    label: &str,
    task: &Task,
    ports: &[u16],
    has_di: bool,
    etask: &mut EnumTask,
) -> Option<u32> {
    let (d, fname) = (ctx.domain, ctx.fname);
    let arec = format!("{label}.{fname}.{d}.");
    let canonical = format!("{label}-{}-{}.{fname}.{d}.", ctx.hash, ctx.tail);
    let slave_arec = format!("{label}.{fname}.slave.{d}.");
    let slave_canonical = format!("{label}-{}-{}.{fname}.slave.{d}.", ctx.hash, ctx.tail);

    for &ip in ctx.task_ips {
        b.insert_task(&arec, Value::Ip(ip), etask);
        b.insert_task(&canonical, Value::Ip(ip), etask);
    }
    // The canonical name's id when it carries the task's IPs (the reverse index's candidate).
    let canonical_id = if ctx.task_ips.is_empty() {
        None
    } else {
        b.set.id(&canonical)
    };
    for &ip in ctx.slave_ips {
        b.insert_task(&slave_arec, Value::Ip(ip), etask);
        b.insert_task(&slave_canonical, Value::Ip(ip), etask);
    }

    // SRV from resource ports, targeting the agent's canonical name.
    let names = [
        format!("_{label}._tcp.{fname}.slave.{d}."),
        format!("_{label}._udp.{fname}.slave.{d}."),
        format!("_{label}._tcp.{fname}.{d}."),
        format!("_{label}._udp.{fname}.{d}."),
    ];
    let with_plain = if has_di { 2 } else { 4 };
    for &port in ports {
        for name in &names[..with_plain] {
            b.insert_task(name, Value::Srv(&slave_canonical, port), etask);
        }
    }

    if !has_di {
        return canonical_id;
    }
    // SRV from DiscoveryInfo ports, targeting the task's canonical name.
    let di_ports = task
        .discovery
        .get()
        .and_then(|d| d.ports.get())
        .map_or(&[][..], |p| p.ports.items());
    for port in di_ports.iter().filter_map(Lenient::get) {
        let Some(&number) = port.number.get() else {
            continue;
        };
        let proto = sanitize_label(port.protocol.as_str(), ctx.rule);
        let port_name = sanitize_label(port.name.as_str(), ctx.rule);
        let protos: &[&str] = if proto.is_empty() {
            &["tcp", "udp"]
        } else {
            &[&proto]
        };
        // Every protocol's plain name, then every protocol's `_portname.` name (§3.8).
        for p in protos {
            let plain = format!("_{label}._{p}.{fname}.{d}.");
            b.insert_task(&plain, Value::Srv(&canonical, number), etask);
        }
        if !port_name.is_empty() {
            for p in protos {
                let named = format!("_{port_name}._{label}._{p}.{fname}.{d}.");
                b.insert_task(&named, Value::Srv(&canonical, number), etask);
            }
        }
    }
    canonical_id
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
