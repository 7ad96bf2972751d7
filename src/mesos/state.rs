//! The serde model of a Mesos `/master/state` document: only the fields record generation
//! uses (behaviour reference §3.1); every other field is skipped without being stored.
//!
//! The model is *tolerant* (product.md, difference 6): every field is wrapped in [`Lenient`],
//! which never fails on a value of the wrong JSON type but records it as
//! [`Lenient::Invalid`]. So one framework or task with a bad field is skipped and counted by
//! the generator, and the rest of the document is used. Only a document that is not JSON at all
//! fails to parse. This module must never panic on any input.

use std::fmt;
use std::io::Read;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A field that tolerates any JSON value: absent, `null`, of the wrong type, or valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Lenient<T> {
    /// The key was not present.
    #[default]
    Absent,
    /// The key was present with `null`.
    Null,
    /// The key was present with a value of the wrong type; the value was skipped.
    Invalid,
    /// A value of the expected type.
    Valid(T),
}

impl<T> Lenient<T> {
    /// The value when valid.
    pub fn get(&self) -> Option<&T> {
        match self {
            Lenient::Valid(v) => Some(v),
            _ => None,
        }
    }

    /// True when the key was present but held something unusable (null or wrong type).
    pub fn is_bad(&self) -> bool {
        matches!(self, Lenient::Null | Lenient::Invalid)
    }
}

impl Lenient<String> {
    /// The string when valid, else `""`.
    pub fn as_str(&self) -> &str {
        self.get().map_or("", String::as_str)
    }
}

impl<T> Lenient<Vec<T>> {
    /// The elements when valid, else an empty slice.
    pub fn items(&self) -> &[T] {
        self.get().map_or(&[], Vec::as_slice)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

/// Turns a leaf conversion result into a `Lenient`, dropping the type error.
fn leaf<T, E>(r: Result<T, E>) -> Lenient<T> {
    r.map_or(Lenient::Invalid, Lenient::Valid)
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(de::value::BoolDeserializer::<E>::new(
            v,
        ))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(de::value::I64Deserializer::<E>::new(
            v,
        ))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(de::value::U64Deserializer::<E>::new(
            v,
        ))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(de::value::F64Deserializer::<E>::new(
            v,
        ))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(de::value::StrDeserializer::<E>::new(
            v,
        ))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(leaf(T::deserialize(
            de::value::StringDeserializer::<E>::new(v),
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // A type mismatch is detected before any element is consumed (the target's visitor
        // rejects `visit_seq` at once), so draining the rest keeps the parser in step.
        match T::deserialize(de::value::SeqAccessDeserializer::new(&mut seq)) {
            Ok(v) => Ok(Lenient::Valid(v)),
            Err(_) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient::Invalid)
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match T::deserialize(de::value::MapAccessDeserializer::new(&mut map)) {
            Ok(v) => Ok(Lenient::Valid(v)),
            Err(_) => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient::Invalid)
            }
        }
    }
}

/// A lenient list: each element is itself lenient, so one bad element is kept as
/// `Invalid` (and skipped by the generator) while its siblings are used.
pub type List<T> = Lenient<Vec<Lenient<T>>>;

/// The top-level `/master/state` document.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct State {
    /// `name@host:port` of the leading master.
    pub leader: Lenient<String>,
    /// Active frameworks (completed ones are ignored, as in the original).
    pub frameworks: List<Framework>,
    /// Agents.
    pub slaves: List<Slave>,
}

/// A framework (`frameworks[]`).
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Framework {
    /// Framework name (raw).
    pub name: Lenient<String>,
    /// libprocess UPID `id@host:port`.
    pub pid: Lenient<String>,
    /// Used only when there is no `pid`.
    pub hostname: Lenient<String>,
    /// Active tasks.
    pub tasks: List<Task>,
}

/// A task (`frameworks[].tasks[]`).
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Task {
    /// Task id.
    pub id: Lenient<String>,
    /// Task name (raw).
    pub name: Lenient<String>,
    /// The agent it runs on.
    pub slave_id: Lenient<String>,
    /// e.g. `TASK_RUNNING`.
    pub state: Lenient<String>,
    /// Status updates.
    pub statuses: List<Status>,
    /// Resources; only `ports` is used.
    pub resources: Lenient<Resources>,
    /// DiscoveryInfo.
    pub discovery: Lenient<Discovery>,
}

/// `resources` of a task.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Port ranges, e.g. `"[31000-31001, 31005-31005]"`.
    pub ports: Lenient<String>,
}

/// A task status update.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// e.g. `TASK_RUNNING`.
    pub state: Lenient<String>,
    /// Seconds since the epoch, fractional.
    pub timestamp: Lenient<f64>,
    /// Labels (docker / mesos containerizer IPs live here).
    pub labels: List<Label>,
    /// Network information.
    pub container_status: Lenient<ContainerStatus>,
    /// Result of the task's health check, when it has one.
    pub healthy: Lenient<bool>,
}

/// A key/value label.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Label {
    /// Key.
    pub key: Lenient<String>,
    /// Value.
    pub value: Lenient<String>,
}

/// `container_status` of a status.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    /// Network infos, in order.
    pub network_infos: List<NetworkInfo>,
}

/// One `network_infos[]` entry.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    /// Mesos >= 0.26: every address.
    pub ip_addresses: List<IpAddress>,
    /// Mesos 0.25: a single address.
    pub ip_address: Lenient<String>,
}

/// One `ip_addresses[]` entry.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    /// The address text.
    pub ip_address: Lenient<String>,
}

/// DiscoveryInfo of a task.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Discovery {
    /// The service name; when non-empty it replaces the task name in records.
    pub name: Lenient<String>,
    /// Named ports.
    pub ports: Lenient<DiscoveryPorts>,
}

/// `discovery.ports`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts {
    /// The ports.
    pub ports: List<DiscoveryPort>,
}

/// One DiscoveryInfo port.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DiscoveryPort {
    /// Port number.
    pub number: Lenient<u16>,
    /// Protocol, e.g. `tcp`; empty means both tcp and udp.
    pub protocol: Lenient<String>,
    /// Optional port name.
    pub name: Lenient<String>,
}

/// An agent (`slaves[]`).
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Slave {
    /// Agent id.
    pub id: Lenient<String>,
    /// `slave(1)@ip:port`.
    pub pid: Lenient<String>,
    /// Not used for records (as in the original); kept for diagnostics.
    pub hostname: Lenient<String>,
}

/// Why a state document could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not JSON, or not a JSON object at the top level.
    #[error("state document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The `leader` field is missing or empty.
    #[error("fetched state does not contain leader information")]
    NoLeader,
}

impl State {
    /// Parses a document from bytes.
    ///
    /// Why the UTF-8 check first: `from_slice` validates every string it returns, one call
    /// each, which was 7% of a 100k-task refresh; one check of the whole document costs a
    /// tenth of that, and `from_str` then skips the per-string checks. A document with bytes
    /// that are not UTF-8 (even in a field we skip) is parsed by `from_slice` as before.
    pub fn from_slice(bytes: &[u8]) -> Result<State, StateError> {
        let state: State = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text)?,
            Err(_) => serde_json::from_slice(bytes)?,
        };
        state.check_leader()
    }

    /// Parses a document from a reader without holding the raw text in memory.
    pub fn from_reader<R: Read>(reader: R) -> Result<State, StateError> {
        let state: State = serde_json::from_reader(std::io::BufReader::new(reader))?;
        state.check_leader()
    }

    fn check_leader(self) -> Result<State, StateError> {
        if self.leader.as_str().is_empty() {
            return Err(StateError::NoLeader);
        }
        Ok(self)
    }
}

/// A parsed libprocess UPID `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid<'a> {
    /// The part before `@`.
    pub id: &'a str,
    /// Host without IPv6 brackets.
    pub host: &'a str,
    /// Port.
    pub port: u16,
}

/// Parses `id@host:port` (IPv6 hosts in brackets). `None` when malformed.
pub fn parse_upid(pid: &str) -> Option<Upid<'_>> {
    let (id, hostport) = pid.split_once('@')?;
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return None;
    }
    Some(Upid { id, host, port })
}

/// Splits `host:port` or `[v6]:port`. `None` when malformed.
pub fn split_host_port(hostport: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = hostport.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    Some((host, port.parse().ok()?))
}

/// Result of parsing a `resources.ports` string.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// Every port in range order.
    pub ports: Vec<u16>,
    /// Parts that did not parse (no `-`, non-numeric, reversed) and were skipped.
    pub bad_parts: usize,
}

/// Bound on the ports one range may expand to, so a hostile `[1-65535]` per task cannot
/// blow up the zone: 65536 is every port, so nothing legitimate is cut.
const MAX_PORTS_PER_TASK: usize = 65_536;

/// Parses `"[31000-31001, 31005-31005]"` (behaviour §3.1, product.md difference 6).
pub fn parse_ports(s: &str) -> Ports {
    let mut out = Ports::default();
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    for part in inner.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let range = part.split_once('-').and_then(|(lo, hi)| {
            let lo: u16 = lo.trim().parse().ok()?;
            let hi: u16 = hi.trim().parse().ok()?;
            (lo <= hi).then_some((lo, hi))
        });
        match range {
            Some((lo, hi)) => {
                for p in lo..=hi {
                    if out.ports.len() >= MAX_PORTS_PER_TASK {
                        break;
                    }
                    out.ports.push(p);
                }
            }
            None => out.bad_parts += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_are_invalid_not_fatal() {
        let doc = r#"{"leader":"m@1.2.3.4:5050","frameworks":[
            7,
            {"name":"ok","tasks":[{"id":1,"name":"a"},{"id":"t","name":"b","statuses":"x"}]},
            {"name":{"x":[1,2]},"pid":null}
        ],"slaves":{"not":"a list"}}"#;
        let s = State::from_slice(doc.as_bytes()).expect("tolerant parse");
        let fws = s.frameworks.items();
        assert_eq!(fws.len(), 3);
        assert_eq!(fws[0], Lenient::Invalid);
        let fw = fws[1].get().expect("second framework valid");
        let tasks = fw.tasks.items();
        assert_eq!(tasks[0].get().expect("task").id, Lenient::Invalid);
        assert_eq!(tasks[1].get().expect("task").statuses, Lenient::Invalid);
        let fw3 = fws[2].get().expect("third framework still a map");
        assert_eq!(fw3.name, Lenient::Invalid);
        assert_eq!(fw3.pid, Lenient::Null);
        assert_eq!(s.slaves, Lenient::Invalid);
    }

    /// The UTF-8 check before parsing must not make a document fail that parsed before: bytes
    /// that are not UTF-8 in a field the model skips are still skipped, and the same document
    /// in UTF-8 gives the same state.
    #[test]
    fn non_utf8_bytes_in_a_skipped_field_do_not_reject_the_document() {
        let doc = |note: &[u8]| {
            let mut d = br#"{"leader":"m@1.2.3.4:5050","note":"caf"#.to_vec();
            d.extend_from_slice(note);
            d.extend_from_slice(br#"","frameworks":[{"name":"fw","tasks":[{"id":"t"}]}]}"#);
            d
        };
        // "café" in Latin-1: 0xE9 alone is no UTF-8.
        let raw = doc(&[0xE9]);
        assert!(std::str::from_utf8(&raw).is_err());
        let from_raw = State::from_slice(&raw).expect("non-UTF-8 in a skipped field parses");
        let from_utf8 = State::from_slice(&doc(b"e")).expect("UTF-8 document parses");
        assert_eq!(from_raw, from_utf8);
        assert_eq!(from_raw.frameworks.items().len(), 1);
    }

    #[test]
    fn not_json_and_missing_leader_fail() {
        assert!(matches!(
            State::from_slice(b"<html>"),
            Err(StateError::Json(_))
        ));
        assert!(matches!(
            State::from_slice(b"{\"frameworks\":[]"),
            Err(StateError::Json(_))
        ));
        assert!(matches!(
            State::from_slice(b"{}"),
            Err(StateError::NoLeader)
        ));
        assert!(matches!(
            State::from_slice(b"{\"leader\":\"\"}"),
            Err(StateError::NoLeader)
        ));
        assert!(matches!(
            State::from_slice(b"[1]"),
            Err(StateError::NoLeader)
        ));
    }

    #[test]
    fn upid_parsing() {
        let u = parse_upid("scheduler(1)@[2001:db8::1]:25501").expect("v6 upid");
        assert_eq!(
            (u.id, u.host, u.port),
            ("scheduler(1)", "2001:db8::1", 25501)
        );
        let u = parse_upid("slave(1)@1.2.3.10:5051").expect("v4 upid");
        assert_eq!((u.host, u.port), ("1.2.3.10", 5051));
        for bad in [
            "",
            "nonsense",
            "a@",
            "a@host",
            "a@host:",
            "a@:5",
            "a@h:99999",
            "a@::1:5",
        ] {
            assert_eq!(parse_upid(bad), None, "{bad}");
        }
    }

    #[test]
    fn ports_strings() {
        assert_eq!(parse_ports("").ports, Vec::<u16>::new());
        assert_eq!(parse_ports("[]").ports, Vec::<u16>::new());
        assert_eq!(
            parse_ports("[31000-31001, 31005-31005]").ports,
            vec![31000, 31001, 31005]
        );
        // The original panicked on a part without '-'; we skip it and count it.
        let p = parse_ports("[31000, 31002-31003, x-y, 9-1]");
        assert_eq!(p.ports, vec![31002, 31003]);
        assert_eq!(p.bad_parts, 3);
        assert_eq!(parse_ports("[0-65535]").ports.len(), 65_536);
    }
}
