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

    /// The default config's record shaping with the nameserver's own address at `listener`
    /// (the default `0.0.0.0` would take it from the local interfaces): for tests, benches and
    /// tools that need the same zone on every machine.
    pub fn defaults_with_listener(listener: IpAddr) -> GenConfig {
        GenConfig {
            listener,
            ..GenConfig::from_config(&crate::config::default_config())
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
    /// Hash of each name's text, computed once at intern time so the content digest never
    /// rehashes a name per record.
    name_hash: Vec<u64>,
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

/// One record a task added, for `/v1/enumerate`: ids into the [`RecordSet`], rendered to
/// text only when the document is requested (three strings per record cost a fifth of a
/// large refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumRecord {
    /// Id of the owner name.
    pub name: u32,
    /// The value.
    pub value: EnumValue,
}

/// The value of an [`EnumRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumValue {
    /// An A or AAAA value.
    Ip(IpAddr),
    /// An SRV value.
    Srv {
        /// Id of the target name.
        target: u32,
        /// Port.
        port: u16,
    },
}

impl EnumRecord {
    /// The record type.
    pub fn rtype(&self) -> RType {
        match self.value {
            EnumValue::Ip(IpAddr::V4(_)) => RType::A,
            EnumValue::Ip(IpAddr::V6(_)) => RType::Aaaa,
            EnumValue::Srv { .. } => RType::Srv,
        }
    }

    /// `(name, host, rtype)` as the original's API shows them: `host` is the IP, or
    /// `target:port` for SRV.
    pub fn render(&self, records: &RecordSet) -> (String, String, RType) {
        let host = match self.value {
            EnumValue::Ip(ip) => ip.to_string(),
            EnumValue::Srv { target, port } => format!("{}:{port}", records.name(target)),
        };
        (records.name(self.name).to_owned(), host, self.rtype())
    }
}

/// One task in `/v1/enumerate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumTask {
    /// Raw task name.
    pub name: String,
    /// Task id.
    pub id: String,
    /// Records this task newly added.
    pub records: Vec<EnumRecord>,
}

/// One framework in `/v1/enumerate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumFramework {
    /// Its running tasks on known agents.
    pub tasks: Vec<EnumTask>,
    /// Raw framework name.
    pub name: String,
}

/// The `/v1/enumerate` document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enumeration {
    /// Every framework, in state order.
    pub frameworks: Vec<EnumFramework>,
}

impl Enumeration {
    /// A serialisable view in the original's JSON shape:
    /// `{"frameworks":[{"tasks":[{"name","id","records":[{"name","host","rtype"}]}],"name"}]}`.
    pub fn view<'a>(&'a self, records: &'a RecordSet) -> EnumerationView<'a> {
        EnumerationView {
            e: self,
            r: records,
        }
    }
}

/// [`Enumeration`] with the record set that names its ids; see [`Enumeration::view`].
#[derive(Debug, Clone, Copy)]
pub struct EnumerationView<'a> {
    e: &'a Enumeration,
    r: &'a RecordSet,
}

/// Serialises a cloneable iterator as a sequence.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

impl Serialize for EnumerationView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.r;
        let frameworks = Seq(self
            .e
            .frameworks
            .iter()
            .map(move |f| FrameworkView { f, r }));
        let mut st = s.serialize_struct("Enumeration", 1)?;
        st.serialize_field("frameworks", &frameworks)?;
        st.end()
    }
}

struct FrameworkView<'a> {
    f: &'a EnumFramework,
    r: &'a RecordSet,
}

impl Serialize for FrameworkView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.r;
        let tasks = Seq(self.f.tasks.iter().map(move |t| TaskView { t, r }));
        let mut st = s.serialize_struct("EnumFramework", 2)?;
        st.serialize_field("tasks", &tasks)?;
        st.serialize_field("name", &self.f.name)?;
        st.end()
    }
}

struct TaskView<'a> {
    t: &'a EnumTask,
    r: &'a RecordSet,
}

impl Serialize for TaskView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.r;
        let records = Seq(self.t.records.iter().map(move |rec| RecordView { rec, r }));
        let mut st = s.serialize_struct("EnumTask", 3)?;
        st.serialize_field("name", &self.t.name)?;
        st.serialize_field("id", &self.t.id)?;
        st.serialize_field("records", &records)?;
        st.end()
    }
}

struct RecordView<'a> {
    rec: &'a EnumRecord,
    r: &'a RecordSet,
}

impl Serialize for RecordView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (name, host, rtype) = self.rec.render(self.r);
        let mut st = s.serialize_struct("EnumRecord", 3)?;
        st.serialize_field("name", &name)?;
        st.serialize_field("host", &host)?;
        st.serialize_field("rtype", &rtype)?;
        st.end()
    }
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

/// Rrsets (of one name and type) with fewer values than this are checked for a duplicate by
/// scanning them; larger ones through [`Builder::seen`]. Why: nearly every name holds one or
/// two values, and a scan of those is a few compares in a cache line already being written,
/// where a hash set of every record in the zone (1.3M for 100k tasks) cost a cache miss per
/// record: 17% of a 100k-task build. A name with thousands of values (one app's many
/// instances) still costs one hash probe per value, not a scan.
const SCAN_DEDUP_MAX: usize = 8;

/// Accumulates records with dedup per (name, type, value).
struct Builder {
    set: RecordSet,
    /// Every value of the rrsets that reached [`SCAN_DEDUP_MAX`] values; smaller rrsets are
    /// not in it.
    seen: FxHashSet<ValueKey>,
    stats: GenStats,
    task_addrs: Vec<(IpAddr, u32)>,
}

impl Builder {
    /// The id of `name`, adding it when new (after checking it is a name we can serve, once
    /// per name rather than once per record).
    fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.set.index.get(name) {
            return Some(id);
        }
        if !valid_name(name) {
            self.stats.invalid_names += 1;
            return None;
        }
        let id = self.set.names.len() as u32;
        let mut h = FxHasher::default();
        name.hash(&mut h);
        self.set.name_hash.push(h.finish());
        self.set.names.push(name.into());
        self.set.rrsets.push(RrSet::default());
        self.set.index.insert(name.into(), id);
        Some(id)
    }

    /// [`intern`](Self::intern) for a name about to get `uses` records: an invalid name is
    /// counted once per record it would have had, as interning it per record counted it.
    fn intern_for(&mut self, name: &str, uses: usize) -> Option<u32> {
        let id = self.intern(name);
        if id.is_none() {
            self.stats.invalid_names += uses.saturating_sub(1) as u64;
        }
        id
    }

    /// Inserts one record; returns its key when it is new.
    fn insert(&mut self, name: &str, value: Value) -> Option<ValueKey> {
        let id = self.intern(name)?;
        self.insert_at(id, value)
    }

    /// Inserts one record of the interned name `id`; returns its key when it is new.
    fn insert_at(&mut self, id: u32, value: Value) -> Option<ValueKey> {
        let key = match value {
            Value::Ip(IpAddr::V4(ip)) => ValueKey::A(id, ip.to_bits()),
            Value::Ip(IpAddr::V6(ip)) => ValueKey::Aaaa(id, ip.to_bits()),
            Value::Srv(target, port) => ValueKey::Srv(id, self.intern(target)?, port),
            Value::SrvId(target, port) => ValueKey::Srv(id, target, port),
        };
        if !self.is_new(key) {
            return None;
        }
        // Names enter the digest by their text hash, so it does not depend on id order.
        let hashes = &self.set.name_hash;
        let mut h = FxHasher::default();
        h.write_u64(hashes[id as usize]);
        match key {
            ValueKey::A(_, ip) => (1u8, ip).hash(&mut h),
            ValueKey::Aaaa(_, ip) => (2u8, ip).hash(&mut h),
            ValueKey::Srv(_, target, port) => (3u8, hashes[target as usize], port).hash(&mut h),
        }
        // Wrapping add is commutative: the digest ignores insertion order.
        self.set.digest = self.set.digest.wrapping_add(h.finish());
        let rr = &mut self.set.rrsets[id as usize];
        match key {
            ValueKey::A(_, ip) => rr.a.push(Ipv4Addr::from_bits(ip)),
            ValueKey::Aaaa(_, ip) => rr.aaaa.push(Ipv6Addr::from_bits(ip)),
            ValueKey::Srv(_, target, port) => rr.srv.push(Srv { target, port }),
        }
        Some(key)
    }

    /// True when `key`'s value is not yet in its rrset (see [`SCAN_DEDUP_MAX`]).
    fn is_new(&mut self, key: ValueKey) -> bool {
        let (ValueKey::A(id, _) | ValueKey::Aaaa(id, _) | ValueKey::Srv(id, _, _)) = key;
        let rr = &self.set.rrsets[id as usize];
        let len = match key {
            ValueKey::A(..) => rr.a.len(),
            ValueKey::Aaaa(..) => rr.aaaa.len(),
            ValueKey::Srv(..) => rr.srv.len(),
        };
        if len < SCAN_DEDUP_MAX {
            return match key {
                ValueKey::A(_, ip) => !rr.a.iter().any(|a| a.to_bits() == ip),
                ValueKey::Aaaa(_, ip) => !rr.aaaa.iter().any(|a| a.to_bits() == ip),
                ValueKey::Srv(_, target, port) => {
                    !rr.srv.iter().any(|s| s.target == target && s.port == port)
                }
            };
        }
        if len == SCAN_DEDUP_MAX {
            // The rrset outgrows the scan: from now on `seen` holds all its values. (Repeated
            // while duplicates keep it at this size; inserting a value twice is harmless.)
            match key {
                ValueKey::A(..) => {
                    let values = rr.a.iter().map(|a| ValueKey::A(id, a.to_bits()));
                    self.seen.extend(values);
                }
                ValueKey::Aaaa(..) => {
                    let values = rr.aaaa.iter().map(|a| ValueKey::Aaaa(id, a.to_bits()));
                    self.seen.extend(values);
                }
                ValueKey::Srv(..) => {
                    let values = rr.srv.iter().map(|s| ValueKey::Srv(id, s.target, s.port));
                    self.seen.extend(values);
                }
            }
        }
        self.seen.insert(key)
    }

    /// Inserts a task record and lists it on the task when new.
    fn insert_task(&mut self, name: &str, value: Value, task: &mut EnumTask) {
        let id = self.intern(name);
        self.insert_task_at(id, value, task);
    }

    /// Inserts each of `ips` under the names `plain` and `canonical`, in that order per IP,
    /// interning each name once for all its values, and only when it gets one (a name with no
    /// record must not enter the set). Returns the canonical name's id.
    fn insert_task_ips(
        &mut self,
        plain: &str,
        canonical: &str,
        ips: &[IpAddr],
        task: &mut EnumTask,
    ) -> Option<u32> {
        if ips.is_empty() {
            return None;
        }
        let plain = self.intern_for(plain, ips.len());
        let canonical = self.intern_for(canonical, ips.len());
        for &ip in ips {
            self.insert_task_at(plain, Value::Ip(ip), task);
            self.insert_task_at(canonical, Value::Ip(ip), task);
        }
        canonical
    }

    /// [`insert_task`](Self::insert_task) for a name interned already (`None`: it was invalid,
    /// and counted).
    fn insert_task_at(&mut self, id: Option<u32>, value: Value, task: &mut EnumTask) {
        let Some(id) = id else { return };
        if let Some(key) = self.insert_at(id, value) {
            let (name, value) = match key {
                ValueKey::A(id, ip) => (id, EnumValue::Ip(IpAddr::V4(Ipv4Addr::from_bits(ip)))),
                ValueKey::Aaaa(id, ip) => (id, EnumValue::Ip(IpAddr::V6(Ipv6Addr::from_bits(ip)))),
                ValueKey::Srv(id, target, port) => (id, EnumValue::Srv { target, port }),
            };
            task.records.push(EnumRecord { name, value });
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Ip(IpAddr),
    Srv(&'a str, u16),
    /// An SRV value whose target was interned already (a task's targets are reused per port).
    SrvId(u32, u16),
}

/// Reused name buffers for one task's records: one set of allocations per build instead of
/// about eight `format!` strings per task.
#[derive(Default)]
struct NameBufs {
    arec: String,
    canonical: String,
    slave_arec: String,
    slave_canonical: String,
    srv: [String; 4],
    di: String,
}

/// Replaces the contents of `buf` with `parts` joined. Why not `format_args!`: the formatting
/// machinery cost about 5% of a 100k-task build, for what is only a concatenation.
fn set_name(buf: &mut String, parts: &[&str]) {
    buf.clear();
    for p in parts {
        buf.push_str(p);
    }
}

/// A name we can serve: ends with a dot, no empty label, labels ≤ 63, total ≤ 253 chars.
/// One pass over the bytes: `split('.')` cost 4% of a build, as this runs once per new name.
fn valid_name(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    if body.is_empty() || body.len() > 253 {
        return false;
    }
    let mut label = 0usize;
    for &b in body.as_bytes() {
        if b == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else {
            label += 1;
            if label > 63 {
                return false;
            }
        }
    }
    label > 0
}

/// Builds the record set of `state`. `masters` is the current masters list (§5.1).
pub fn generate(
    state: &State,
    cfg: &GenConfig,
    masters: &[String],
    hosts: &dyn HostResolver,
) -> Generated {
    // Sized up front from the task count: growing the name tables (rehashing) cost a sixth
    // of a large build. About 3 distinct names per task in real states.
    let tasks: usize = state
        .frameworks
        .items()
        .iter()
        .filter_map(Lenient::get)
        .map(|f| f.tasks.items().len())
        .sum();
    let names = tasks * 3 + state.slaves.items().len() + 64;
    let mut set = RecordSet::default();
    set.names.reserve(names);
    set.name_hash.reserve(names);
    set.rrsets.reserve(names);
    set.index.reserve(names);
    let mut b = Builder {
        set,
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
    let mut bufs = NameBufs::default();
    for (fw, fname) in state.frameworks.items().iter().zip(&fw_ok) {
        let (Some(fw), Some(fname)) = (fw.get(), fname) else {
            continue;
        };
        let mut efw = EnumFramework {
            tasks: Vec::new(),
            name: fw.name.as_str().to_owned(),
        };
        framework_tasks(
            &mut b, cfg, fw, fname, &slave_ips, &mut ips, &mut bufs, &mut efw,
        );
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
            if b.insert(&master, Value::Ip(mip)).is_none() {
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

#[allow(clippy::too_many_arguments)]
fn framework_tasks(
    b: &mut Builder,
    cfg: &GenConfig,
    fw: &Framework,
    fname: &str,
    slave_ips: &FxHashMap<&str, Vec<IpAddr>>,
    ips: &mut Vec<IpAddr>,
    bufs: &mut NameBufs,
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
                task_context_records(b, &ctx, di_name, task, ports, true, bufs, &mut etask);
                let label = sanitize_label(di_name, cfg.rule);
                task_context_records(b, &ctx, &label, task, ports, true, bufs, &mut etask)
            }
            None => {
                let label = sanitize_label(task.name.as_str(), cfg.rule);
                task_context_records(b, &ctx, &label, task, ports, false, bufs, &mut etask)
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

#[allow(clippy::too_many_arguments)]
fn task_context_records(
    b: &mut Builder,
    ctx: &TaskCtx<'_>,
    label: &str,
    task: &Task,
    ports: &[u16],
    has_di: bool,
    n: &mut NameBufs,
    etask: &mut EnumTask,
) -> Option<u32> {
    let (d, fname, hash, tail) = (ctx.domain, ctx.fname, &ctx.hash, &ctx.tail);
    let (hash, tail) = (hash.as_str(), tail.as_str());
    set_name(&mut n.arec, &[label, ".", fname, ".", d, "."]);
    set_name(
        &mut n.canonical,
        &[label, "-", hash, "-", tail, ".", fname, ".", d, "."],
    );
    set_name(&mut n.slave_arec, &[label, ".", fname, ".slave.", d, "."]);
    set_name(
        &mut n.slave_canonical,
        &[label, "-", hash, "-", tail, ".", fname, ".slave.", d, "."],
    );

    // The canonical name's id when it carries the task's IPs (the reverse index's candidate).
    let canonical_id = b.insert_task_ips(&n.arec, &n.canonical, ctx.task_ips, etask);
    b.insert_task_ips(&n.slave_arec, &n.slave_canonical, ctx.slave_ips, etask);

    // SRV from resource ports, targeting the agent's canonical name.
    if !ports.is_empty() {
        set_name(
            &mut n.srv[0],
            &["_", label, "._tcp.", fname, ".slave.", d, "."],
        );
        set_name(
            &mut n.srv[1],
            &["_", label, "._udp.", fname, ".slave.", d, "."],
        );
        set_name(&mut n.srv[2], &["_", label, "._tcp.", fname, ".", d, "."]);
        set_name(&mut n.srv[3], &["_", label, "._udp.", fname, ".", d, "."]);
        if let Some(target) = b.intern(&n.slave_canonical) {
            let with_plain = if has_di { 2 } else { 4 };
            let mut ids = [None; 4];
            for (id, name) in ids.iter_mut().zip(&n.srv[..with_plain]) {
                *id = b.intern_for(name, ports.len());
            }
            for &port in ports {
                for &id in &ids[..with_plain] {
                    b.insert_task_at(id, Value::SrvId(target, port), etask);
                }
            }
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
    if di_ports.is_empty() {
        return canonical_id;
    }
    let Some(target) = b.intern(&n.canonical) else {
        return canonical_id;
    };
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
            set_name(&mut n.di, &["_", label, "._", p, ".", fname, ".", d, "."]);
            b.insert_task(&n.di, Value::SrvId(target, number), etask);
        }
        if !port_name.is_empty() {
            for p in protos {
                set_name(
                    &mut n.di,
                    &[
                        "_", &port_name, "._", label, "._", p, ".", fname, ".", d, ".",
                    ],
                );
                b.insert_task(&n.di, Value::SrvId(target, number), etask);
            }
        }
    }
    canonical_id
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
