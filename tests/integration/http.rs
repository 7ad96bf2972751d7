//! The HTTP API end to end (behaviour reference §6; product.md: masked secrets, `/health`,
//! `/ready`, `/metrics`), over real HTTP against the running binary fed by the fake master.
//!
//! Requests are written by hand over a std `TcpStream` (harness `http_raw`), so the tests can
//! also send malformed, oversized and stalled requests. Every expected document was derived by
//! hand from the spec and the fixture, never pasted from the server's output: the per-task
//! inputs (label passes, hash, slave tail, IP source, ports, DiscoveryInfo ports) are written
//! out per task below, and [`Model`] expands them with the record-name rules of §3.7 and the
//! enumeration order of §3.8 (new records only, in insertion order). Order inside `/v1/axfr`
//! arrays and of SRV-driven lists is random in the original, so those compare as sets.
//! `/metrics` is read with a small Prometheus text-format parser written here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{
    HttpReply, Q, Server, fake_json, http_raw, read_http_reply, state_small, wait_until,
};

// ---------------------------------------------------------------------------------------
// Helpers.

/// A fake master serving `doc` and a server polling it, ready to answer. `extra` is merged
/// into the config (refreshSeconds defaults to 60: one poll is enough).
fn serve(doc: Value, extra: Value) -> (FakeMaster, Server) {
    let master = FakeMaster::start(Behaviour::Ok(doc));
    let mut config = json!({"masters": [master.hostport()], "refreshSeconds": 60});
    for (k, v) in extra.as_object().expect("object") {
        config[k] = v.clone();
    }
    let server = Server::start(config);
    server.wait_ready("mesos");
    (master, server)
}

fn small() -> Value {
    serde_json::from_str(&state_small()).expect("state-small.json")
}

/// The server still answers a plain request.
fn assert_alive(server: &Server, after: &str) {
    let r = server.http_get("/v1/version");
    assert_eq!(r.status, 200, "server stopped answering after {after}");
}

fn assert_text(r: &HttpReply, status: u16, body: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: status (body {:?})", r.text());
    assert_eq!(r.text(), body, "{what}: body");
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "{what}: content-type {ct}");
}

fn assert_json_reply(r: &HttpReply, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: status (body {:?})", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: content-type"
    );
    r.json()
}

/// Exact equality including key order (both sides keep insertion order).
fn assert_same_json(got: &Value, want: &Value, what: &str) {
    let (g, w) = (
        serde_json::to_string_pretty(got).expect("json"),
        serde_json::to_string_pretty(want).expect("json"),
    );
    if g != w {
        let first = g
            .lines()
            .zip(w.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(g.lines().count().min(w.lines().count()));
        let ctx = |s: &str| -> String {
            s.lines()
                .skip(first.saturating_sub(6))
                .take(14)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{what}: differs at line {first}\n--- got:\n{}\n--- want:\n{}",
            ctx(&g),
            ctx(&w)
        );
    }
}

/// The spec's task hash: SHA-1 of the raw id, z-base-32 (MSB first), first 5 characters.
fn task_hash(id: &str) -> String {
    use sha1::{Digest, Sha1};
    const ALPHABET: &[u8] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let d = Sha1::digest(id.as_bytes());
    let bits = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    (0..5)
        .map(|i| ALPHABET[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// The SOA serial a DNS query reports.
fn dns_serial(server: &Server) -> u32 {
    let m = server.query_udp("mesos.", RecordType::SOA);
    m.authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("SOA in authority")
}

// ---------------------------------------------------------------------------------------
// The expected-record model.

/// One running task as read off the fixture by hand.
struct Task<'a> {
    /// Raw task name (as listed by /v1/enumerate).
    name: &'a str,
    /// Raw task id.
    id: &'a str,
    /// DomainFrag of the framework name.
    fw: &'a str,
    /// Slave tail.
    tail: &'a str,
    /// Label passes in order: `[spec(name)]`, or `[raw DI name, spec(DI name)]`.
    labels: &'a [&'a str],
    /// Has a DiscoveryInfo name (resource-port SRVs only under `.slave`).
    di: bool,
    /// Task IPs from the first populated IP source, in order.
    ips: &'a [&'a str],
    /// The agent's IPs.
    slave_ips: &'a [&'a str],
    /// Resource ports, expanded.
    ports: &'a [u16],
    /// DiscoveryInfo ports: (number, spec(protocol) or "" for both, spec(name)).
    di_ports: &'a [(u16, &'a str, &'a str)],
}

/// The record store of §3.7 (a set per name and type) plus the enumeration it implies.
#[derive(Default)]
struct Model {
    seen: HashSet<(String, &'static str, String)>,
    /// type → name → values.
    zone: BTreeMap<&'static str, BTreeMap<String, BTreeSet<String>>>,
}

fn ip_type(ip: &str) -> &'static str {
    if ip.contains(':') { "AAAA" } else { "A" }
}

impl Model {
    /// Inserts a record; true when new. Product rule: a name with an empty label (from a task
    /// name that sanitises to nothing) is unservable and is not stored.
    fn add(&mut self, name: &str, rtype: &'static str, value: &str) -> bool {
        if name.trim_end_matches('.').split('.').any(str::is_empty) {
            return false;
        }
        if !self.seen.insert((name.to_owned(), rtype, value.to_owned())) {
            return false;
        }
        self.zone
            .entry(rtype)
            .or_default()
            .entry(name.to_owned())
            .or_default()
            .insert(value.to_owned());
        true
    }

    fn add_all(&mut self, rtype: &'static str, name: &str, values: &[&str]) {
        for v in values {
            self.add(name, rtype, v);
        }
    }

    /// Expands one task (§3.7) and returns its `/v1/enumerate` entry (§3.8).
    fn task(&mut self, t: &Task<'_>) -> Value {
        let d = ".mesos.";
        let h = task_hash(t.id);
        let mut recs: Vec<Value> = Vec::new();
        let mut push = |m: &mut Model, name: String, rtype: &'static str, host: String| {
            if m.add(&name, rtype, &host) {
                recs.push(json!({"name": name, "host": host, "rtype": rtype}));
            }
        };
        for label in t.labels {
            let canonical = format!("{label}-{h}-{}.{}", t.tail, t.fw);
            let arec = format!("{label}.{}", t.fw);
            for ip in t.ips {
                push(self, format!("{arec}{d}"), ip_type(ip), (*ip).to_owned());
                push(
                    self,
                    format!("{canonical}{d}"),
                    ip_type(ip),
                    (*ip).to_owned(),
                );
            }
            for ip in t.slave_ips {
                push(
                    self,
                    format!("{arec}.slave{d}"),
                    ip_type(ip),
                    (*ip).to_owned(),
                );
                push(
                    self,
                    format!("{canonical}.slave{d}"),
                    ip_type(ip),
                    (*ip).to_owned(),
                );
            }
            for port in t.ports {
                let target = format!("{canonical}.slave{d}:{port}");
                let mut names = vec![
                    format!("_{label}._tcp.{}.slave{d}", t.fw),
                    format!("_{label}._udp.{}.slave{d}", t.fw),
                ];
                if !t.di {
                    names.push(format!("_{label}._tcp.{}{d}", t.fw));
                    names.push(format!("_{label}._udp.{}{d}", t.fw));
                }
                for n in names {
                    push(self, n, "SRV", target.clone());
                }
            }
            for (number, proto, pname) in t.di_ports {
                let target = format!("{canonical}{d}:{number}");
                let protos: &[&str] = if proto.is_empty() {
                    &["tcp", "udp"]
                } else {
                    std::slice::from_ref(proto)
                };
                let mut names: Vec<String> = protos
                    .iter()
                    .map(|p| format!("_{label}._{p}.{}{d}", t.fw))
                    .collect();
                if !pname.is_empty() {
                    let named: Vec<String> =
                        names.iter().map(|n| format!("_{pname}.{n}")).collect();
                    names.extend(named);
                }
                for n in names {
                    push(self, n, "SRV", target.clone());
                }
            }
        }
        json!({"name": t.name, "id": t.id, "records": recs})
    }

    /// The `Records` object of `/v1/axfr` as sets.
    fn records(&self, rtype: &str) -> BTreeMap<String, BTreeSet<String>> {
        self.zone.get(rtype).cloned().unwrap_or_default()
    }
}

/// One of `As`, `AAAAs`, `SRVs` of a `/v1/axfr` reply as sets; panics on duplicates.
fn axfr_group(axfr: &Value, key: &str) -> BTreeMap<String, BTreeSet<String>> {
    let obj = axfr["Records"][key]
        .as_object()
        .unwrap_or_else(|| panic!("Records.{key} is not an object"));
    obj.iter()
        .map(|(name, values)| {
            let list: Vec<String> = values
                .as_array()
                .unwrap_or_else(|| panic!("{key}[{name}] not an array"))
                .iter()
                .map(|v| v.as_str().expect("string value").to_owned())
                .collect();
            let set: BTreeSet<String> = list.iter().cloned().collect();
            assert_eq!(
                set.len(),
                list.len(),
                "{key}[{name}] has duplicates: {list:?}"
            );
            (name.clone(), set)
        })
        .collect()
}

fn assert_same_sets(
    got: &BTreeMap<String, BTreeSet<String>>,
    want: &BTreeMap<String, BTreeSet<String>>,
    what: &str,
) {
    let mut problems = Vec::new();
    for (name, w) in want {
        match got.get(name) {
            None => problems.push(format!("missing {name} {w:?}")),
            Some(g) if g != w => problems.push(format!("{name}: got {g:?}, want {w:?}")),
            Some(_) => {}
        }
    }
    for (name, g) in got {
        if !want.contains_key(name) {
            problems.push(format!("unexpected {name} {g:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The records state-small.json gives (config below: IPSources netinfo, docker, mesos, host;
/// listener 127.0.0.1; the fake master is the leader and the only listed master) and its
/// enumeration.
fn state_small_model(master_port: u16) -> (Model, Value) {
    let mut m = Model::default();
    // Infrastructure (§3.7): agents, SOAMname, leader/masters, frameworks.
    m.add_all(
        "A",
        "slave.mesos.",
        &["10.0.1.10", "10.0.1.11", "10.0.1.13"],
    );
    m.add_all("AAAA", "slave.mesos.", &["fd00::1:12"]);
    m.add_all("SRV", "_slave._tcp.mesos.", &["slave.mesos.:5051"]);
    m.add_all("A", "ns1.mesos.", &["127.0.0.1"]);
    for n in ["leader.mesos.", "master.mesos.", "master0.mesos."] {
        m.add_all("A", n, &["127.0.0.1"]);
    }
    let leader_srv = format!("leader.mesos.:{master_port}");
    m.add_all("SRV", "_leader._tcp.mesos.", &[&leader_srv]);
    m.add_all("SRV", "_leader._udp.mesos.", &[&leader_srv]);
    let chronos = "chronoswithaspaceandmixedcase-2.0.1";
    for (fw, ip, port) in [
        ("marathon", "10.0.0.11", Some(8080)),
        (chronos, "10.0.0.12", Some(4400)),
        ("ipv6-framework", "fd00::10", Some(25501)),
        ("nopid", "10.0.0.14", None),
        // "bad-pid" (pid "nonsense") is skipped entirely (product.md 6).
        ("spark.cluster-1.2", "10.0.0.16", Some(7077)),
    ] {
        let a = format!("{fw}.mesos.");
        m.add(&a, ip_type(ip), ip);
        if let Some(p) = port {
            m.add(&format!("_framework._tcp.{a}"), "SRV", &format!("{a}:{p}"));
        }
    }

    let (s0, s1, s2) = (["10.0.1.10"], ["10.0.1.11"], ["fd00::1:12"]);
    let gw_ports = [(80, "tcp", "http"), (443, "tcp", "https")];
    let mut marathon = Vec::new();
    for t in [
        // Host IPs: no container info.
        Task {
            name: "web",
            id: "web.1a2b3c4d-0001-11ee-8000-0a0000000001",
            fw: "marathon",
            tail: "s0",
            labels: &["web"],
            di: false,
            ips: &s0,
            slave_ips: &s0,
            ports: &[31000, 31001, 31005],
            di_ports: &[],
        },
        Task {
            name: "web",
            id: "web.1a2b3c4d-0002-11ee-8000-0a0000000002",
            fw: "marathon",
            tail: "s1",
            labels: &["web"],
            di: false,
            ips: &s1,
            slave_ips: &s1,
            ports: &[31010],
            di_ports: &[],
        },
        // netinfo: both network_infos, in order, v4 and v6.
        Task {
            name: "db.primary",
            id: "db-primary.1a2b3c4d-0003-11ee-8000-0a0000000003",
            fw: "marathon",
            tail: "s0",
            labels: &["db-primary"],
            di: false,
            ips: &["10.0.2.1", "10.0.2.2", "fd00::2:2"],
            slave_ips: &s0,
            ports: &[31020],
            di_ports: &[],
        },
        // docker: the latest TASK_RUNNING status (ts 1705313100.25).
        Task {
            name: "cache",
            id: "cache.1a2b3c4d-0004-11ee-8000-0a0000000004",
            fw: "marathon",
            tail: "s1",
            labels: &["cache"],
            di: false,
            ips: &["10.0.3.2"],
            slave_ips: &s1,
            ports: &[31030, 31031],
            di_ports: &[],
        },
        // mesos label; ports "[]".
        Task {
            name: "queue",
            id: "queue.1a2b3c4d-0005-11ee-8000-0a0000000005",
            fw: "marathon",
            tail: "s0",
            labels: &["queue"],
            di: false,
            ips: &["10.0.4.1"],
            slave_ips: &s0,
            ports: &[],
            di_ports: &[],
        },
        Task {
            name: "api.gateway2",
            id: "api-gateway.1a2b3c4d-0006-11ee-8000-0a0000000006",
            fw: "marathon",
            tail: "s1",
            labels: &["api.gateway", "api-gateway"],
            di: true,
            ips: &["10.0.3.5"],
            slave_ips: &s1,
            ports: &[31040, 31041],
            di_ports: &gw_ports,
        },
        Task {
            name: "api-gateway-canary",
            id: "api-gateway.1a2b3c4d-0007-11ee-8000-0a0000000007",
            fw: "marathon",
            tail: "s0",
            labels: &["api.gateway", "api-gateway"],
            di: true,
            ips: &["10.0.3.6"],
            slave_ips: &s0,
            ports: &[31042, 31043],
            di_ports: &gw_ports,
        },
        // Raw DI name kept with its case; empty protocol gives tcp and udp.
        Task {
            name: "metrics",
            id: "metrics.1a2b3c4d-0008-11ee-8000-0a0000000008",
            fw: "marathon",
            tail: "s1",
            labels: &["Metrics.Collector", "metrics-collector"],
            di: true,
            ips: &s1,
            slave_ips: &s1,
            ports: &[31050],
            di_ports: &[(9100, "", "prom"), (8125, "udp", "")],
        },
        // "billing" is TASK_KILLED: nothing. "$$$" sanitises to "".
        Task {
            name: "$$$",
            id: "dollars.1a2b3c4d-0010-11ee-8000-0a0000000010",
            fw: "marathon",
            tail: "s0",
            labels: &[""],
            di: false,
            ips: &s0,
            slave_ips: &s0,
            ports: &[31060],
            di_ports: &[],
        },
        // "31000" has no "-": skipped, the rest kept (product.md 6).
        Task {
            name: "ports-bad",
            id: "ports-bad.1a2b3c4d-0011-11ee-8000-0a0000000011",
            fw: "marathon",
            tail: "s1",
            labels: &["ports-bad"],
            di: false,
            ips: &s1,
            slave_ips: &s1,
            ports: &[31002, 31003],
            di_ports: &[],
        },
        // healthy:false is ignored (healthFilter off).
        Task {
            name: "health",
            id: "health.1a2b3c4d-0012-11ee-8000-0a0000000012",
            fw: "marathon",
            tail: "s0",
            labels: &["health"],
            di: false,
            ips: &s0,
            slave_ips: &s0,
            ports: &[31070],
            di_ports: &[],
        },
        // Mesos 0.25 `ip_address`.
        Task {
            name: "legacy-netinfo",
            id: "legacy-netinfo.1a2b3c4d-0013-11ee-8000-0a0000000013",
            fw: "marathon",
            tail: "s1",
            labels: &["legacy-netinfo"],
            di: false,
            ips: &["10.0.5.2"],
            slave_ips: &s1,
            ports: &[31075],
            di_ports: &[],
        },
        // "orphan" (unknown agent) and "staging" get nothing.
    ] {
        marathon.push(m.task(&t));
    }
    let nightly = m.task(&Task {
        name: "nightly-report",
        id: "ct:1705312813000:0:nightly-report",
        fw: chronos,
        tail: "s1",
        labels: &["nightly-report"],
        di: false,
        ips: &s1,
        slave_ips: &s1,
        ports: &[31090],
        di_ports: &[],
    });
    let v6 = m.task(&Task {
        name: "v6-svc",
        id: "v6-svc.1a2b3c4d-0016-11ee-8000-0a0000000016",
        fw: "ipv6-framework",
        tail: "s2",
        labels: &["v6-svc"],
        di: false,
        ips: &["fd00::3:1"],
        slave_ips: &s2,
        ports: &[31100],
        di_ports: &[],
    });
    let worker = m.task(&Task {
        name: "worker",
        id: "worker.1a2b3c4d-0017-11ee-8000-0a0000000017",
        fw: "nopid",
        tail: "s0",
        labels: &["worker"],
        di: false,
        ips: &s0,
        slave_ips: &s0,
        ports: &[31110],
        di_ports: &[],
    });
    let enumeration = json!({"frameworks": [
        {"tasks": marathon, "name": "marathon"},
        {"tasks": [nightly], "name": "chronos with a space AND MIXED CASE-2.0.1"},
        {"tasks": [v6], "name": "ipv6-framework"},
        {"tasks": [worker], "name": "no pid"},
        {"tasks": [], "name": "Spark.Cluster-1.2"},
    ]});
    (m, enumeration)
}

/// The config the state-small tests run with.
fn small_config() -> Value {
    json!({
        "ttl": 45,
        "IPSources": ["netinfo", "docker", "mesos", "host"],
        "mesosAuthentication": "basic",
        "mesosCredentials": {"principal": "dns-reader", "secret": "hunter2-not-for-http"},
    })
}

// ---------------------------------------------------------------------------------------
// Endpoints, exact.

#[test]
fn task_hash_matches_the_spec_vector() {
    assert_eq!(task_hash("test"), "iffe9");
}

#[test]
fn version_is_exact_and_pretty_printed() {
    let (_master, server) = serve(small(), json!({}));
    let r = server.http_get("/v1/version");
    let v = assert_json_reply(&r, "/v1/version");
    let want = json!({
        "Service": "Mesos-DNS",
        "URL": "https://github.com/mesosphere/mesos-dns",
        "Version": env!("CARGO_PKG_VERSION"),
    });
    assert_same_json(&v, &want, "/v1/version");
    // go-restful indents with one space per level.
    assert!(
        r.text()
            .starts_with("{\n \"Service\": \"Mesos-DNS\",\n \"URL\": "),
        "not one-space indented: {:?}",
        r.text()
    );
}

#[test]
fn config_has_the_originals_keys_in_order_and_masks_the_secret() {
    let (master, server) = serve(small(), small_config());
    let r = server.http_get("/v1/config");
    let c = assert_json_reply(&r, "/v1/config");
    assert!(
        !r.text().contains("hunter2"),
        "the secret leaked: {}",
        r.text()
    );
    let serial = dns_serial(&server);
    let file = c["File"].as_str().expect("File").to_owned();
    assert!(
        file.starts_with('/') && file.ends_with("/config.json"),
        "File {file}"
    );
    // §6 order and §2.1 defaults, with the harness's forced port 0 / loopback listeners and
    // externalon false.
    let want = json!({
        "RefreshSeconds": 60,
        "Port": 0,
        "Timeout": 5,
        "StateTimeoutSeconds": 300,
        "ZkDetectionTimeout": 30,
        "HttpPort": 0,
        "TTL": 45,
        "SRVRecordDefaultWeight": 1,
        "SOASerial": serial,
        "SOARefresh": 60,
        "SOARetry": 600,
        "SOAExpire": 86400,
        "SOAMinttl": 60,
        "SOAMname": "ns1.mesos.",
        "SOARname": "root.ns1.mesos.",
        "Masters": [master.hostport()],
        "ZoneResolvers": {},
        "Resolvers": ["8.8.8.8"],
        "IPSources": ["netinfo", "docker", "mesos", "host"],
        "Zk": "",
        "Domain": "mesos",
        "File": file,
        "Listener": "127.0.0.1",
        "HTTPListener": "127.0.0.1",
        "RecurseOn": true,
        "DnsOn": true,
        "HttpOn": true,
        "ExternalOn": false,
        "EnforceRFC952": false,
        "SetTruncateBit": true,
        "EnumerationOn": true,
        "MesosHTTPSOn": false,
        "CACertFile": "",
        "CertFile": "",
        "KeyFile": "",
        "MesosCredentials": {"Principal": "dns-reader", "Secret": "******"},
        "IAMConfigFile": "",
        "MesosAuthentication": "basic",
    });
    let obj = c.as_object().expect("object");
    let n = want.as_object().expect("object").len();
    // The original's keys come first, in order; this product's additions follow.
    let head: serde_json::Map<String, Value> = obj
        .iter()
        .take(n)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_same_json(&Value::Object(head), &want, "/v1/config");
    assert_eq!(c["MaxStalenessSeconds"], 0, "product key");
    // The live serial is the one the AXFR view shows too.
    let axfr = server.http_get("/v1/axfr").json();
    assert_eq!(axfr["Serial"], serial);
}

#[test]
fn hosts_lookups_normalise_and_miss_with_the_empty_item() {
    let (_master, server) = serve(small(), small_config());
    let empty = json!([{"host": "", "ip": ""}]);
    let items = |path: &str| -> Vec<(String, String)> {
        let v = assert_json_reply(&server.http_get(path), path);
        v.as_array()
            .unwrap_or_else(|| panic!("{path}: not an array"))
            .iter()
            .map(|i| {
                let keys: Vec<&String> = i.as_object().expect("object").keys().collect();
                assert_eq!(keys, ["host", "ip"], "{path}: item keys");
                (
                    i["host"].as_str().expect("host").to_owned(),
                    i["ip"].as_str().expect("ip").to_owned(),
                )
            })
            .collect()
    };
    // A values first (any order among them), then AAAA values.
    let check = |path: &str, host: &str, a: &[&str], aaaa: &[&str]| {
        let got = items(path);
        assert_eq!(got.len(), a.len() + aaaa.len(), "{path}: {got:?}");
        assert!(got.iter().all(|(h, _)| h == host), "{path}: {got:?}");
        let ga: BTreeSet<&str> = got[..a.len()].iter().map(|(_, ip)| ip.as_str()).collect();
        let g6: BTreeSet<&str> = got[a.len()..].iter().map(|(_, ip)| ip.as_str()).collect();
        assert_eq!(ga, a.iter().copied().collect(), "{path}: A group");
        assert_eq!(g6, aaaa.iter().copied().collect(), "{path}: AAAA group");
    };
    let db = "db-primary.marathon.mesos.";
    check(
        "/v1/hosts/db-primary.marathon.mesos",
        db,
        &["10.0.2.1", "10.0.2.2"],
        &["fd00::2:2"],
    );
    check(
        "/v1/hosts/db-primary.marathon.mesos.",
        db,
        &["10.0.2.1", "10.0.2.2"],
        &["fd00::2:2"],
    );
    check(
        "/v1/hosts/DB-Primary.*.Marathon.MESOS",
        db,
        &["10.0.2.1", "10.0.2.2"],
        &["fd00::2:2"],
    );
    check(
        "/v1/hosts/slave.mesos",
        "slave.mesos.",
        &["10.0.1.10", "10.0.1.11", "10.0.1.13"],
        &["fd00::1:12"],
    );
    check(
        "/v1/hosts/ipv6-framework.mesos",
        "ipv6-framework.mesos.",
        &[],
        &["fd00::10"],
    );
    check(
        "/v1/hosts/web.marathon.mesos",
        "web.marathon.mesos.",
        &["10.0.1.10", "10.0.1.11"],
        &[],
    );
    check(
        "/v1/hosts/metrics-collector.marathon.mesos",
        "metrics-collector.marathon.mesos.",
        &["10.0.1.11"],
        &[],
    );
    check(
        "/v1/hosts/leader.mesos?x=1",
        "leader.mesos.",
        &["127.0.0.1"],
        &[],
    );
    // Misses: 200 with one all-empty item. The raw DI name is stored with its uppercase and
    // lookups are lowercased, so it never matches; names outside the domain miss too.
    for path in [
        "/v1/hosts/nothere.mesos",
        "/v1/hosts/Metrics.Collector.marathon.mesos",
        "/v1/hosts/marathon.slave.mesos",
        "/v1/hosts/example.com",
    ] {
        let v = assert_json_reply(&server.http_get(path), path);
        assert_same_json(&v, &empty, path);
    }
    let r = server.http_get("/v1/hosts/leader.mesos/ports");
    assert_text(&r, 501, "To be implemented...", "/v1/hosts/{host}/ports");
}

#[test]
fn services_list_each_srv_with_its_targets_addresses() {
    let (_master, server) = serve(small(), small_config());
    let get = |path: &str| -> Vec<(String, String, String, String)> {
        let v = assert_json_reply(&server.http_get(path), path);
        v.as_array()
            .unwrap_or_else(|| panic!("{path}: not an array"))
            .iter()
            .map(|i| {
                let keys: Vec<&String> = i.as_object().expect("object").keys().collect();
                assert_eq!(keys, ["service", "host", "ip", "port"], "{path}: item keys");
                let s = |k: &str| i[k].as_str().expect("string").to_owned();
                (s("service"), s("host"), s("ip"), s("port"))
            })
            .collect()
    };
    let sorted = |mut v: Vec<(String, String, String, String)>| {
        v.sort();
        v
    };
    let item = |svc: &str, host: &str, ip: &str, port: u16| {
        (
            svc.to_owned(),
            host.to_owned(),
            ip.to_owned(),
            port.to_string(),
        )
    };
    let w1 = format!(
        "web-{}-s0.marathon.slave.mesos.",
        task_hash("web.1a2b3c4d-0001-11ee-8000-0a0000000001")
    );
    let w2 = format!(
        "web-{}-s1.marathon.slave.mesos.",
        task_hash("web.1a2b3c4d-0002-11ee-8000-0a0000000002")
    );
    for raw in ["_web._tcp.marathon.mesos", "_WEB._tcp.*.marathon.mesos."] {
        let want = sorted(vec![
            item(raw, &w1, "10.0.1.10", 31000),
            item(raw, &w1, "10.0.1.10", 31001),
            item(raw, &w1, "10.0.1.10", 31005),
            item(raw, &w2, "10.0.1.11", 31010),
        ]);
        assert_eq!(sorted(get(&format!("/v1/services/{raw}"))), want, "{raw}");
    }
    // DI ports target the non-slave canonical name: the task's own IP.
    let g6 = format!(
        "api-gateway-{}-s1.marathon.mesos.",
        task_hash("api-gateway.1a2b3c4d-0006-11ee-8000-0a0000000006")
    );
    let g7 = format!(
        "api-gateway-{}-s0.marathon.mesos.",
        task_hash("api-gateway.1a2b3c4d-0007-11ee-8000-0a0000000007")
    );
    let svc = "_http._api-gateway._tcp.marathon.mesos";
    assert_eq!(
        sorted(get(&format!("/v1/services/{svc}"))),
        sorted(vec![
            item(svc, &g6, "10.0.3.5", 80),
            item(svc, &g7, "10.0.3.6", 80)
        ])
    );
    let svc = "_api-gateway._tcp.marathon.mesos";
    assert_eq!(
        sorted(get(&format!("/v1/services/{svc}"))),
        sorted(vec![
            item(svc, &g6, "10.0.3.5", 80),
            item(svc, &g6, "10.0.3.5", 443),
            item(svc, &g7, "10.0.3.6", 80),
            item(svc, &g7, "10.0.3.6", 443),
        ])
    );
    // A target with A and AAAA: one item with an A, then one with the AAAA.
    let svc = "_slave._tcp.mesos";
    let got = get(&format!("/v1/services/{svc}"));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        ["10.0.1.10", "10.0.1.11", "10.0.1.13"].contains(&got[0].2.as_str()),
        "{got:?}"
    );
    assert_eq!(got[0], item(svc, "slave.mesos.", &got[0].2, 5051));
    assert_eq!(got[1], item(svc, "slave.mesos.", "fd00::1:12", 5051));
    // An IPv6-only target: just the AAAA item.
    let svc = "_v6-svc._tcp.ipv6-framework.mesos";
    let v6 = format!(
        "v6-svc-{}-s2.ipv6-framework.slave.mesos.",
        task_hash("v6-svc.1a2b3c4d-0016-11ee-8000-0a0000000016")
    );
    assert_eq!(
        get(&format!("/v1/services/{svc}")),
        vec![item(svc, &v6, "fd00::1:12", 31100)]
    );
    // Misses.
    let empty = json!([{"service": "", "host": "", "ip": "", "port": ""}]);
    for path in [
        "/v1/services/_nothere._tcp.marathon.mesos",
        "/v1/services/web.marathon.mesos",
        "/v1/services/_queue._tcp.marathon.mesos",
    ] {
        let v = assert_json_reply(&server.http_get(path), path);
        assert_same_json(&v, &empty, path);
    }
}

#[test]
fn enumerate_and_axfr_for_state_small() {
    let (master, server) = serve(small(), small_config());
    let (model, want_enum) = state_small_model(master.addr().port());
    let got = assert_json_reply(&server.http_get("/v1/enumerate"), "/v1/enumerate");
    assert_same_json(&got, &want_enum, "/v1/enumerate (state-small)");
    check_axfr(&server, &model, 45, &[]);
}

/// `/v1/axfr`: header fields exact, records as sets. `loose` names are checked by the caller
/// (environment-dependent lookups) and skipped here.
fn check_axfr(server: &Server, model: &Model, ttl: u32, loose: &[&str]) -> Value {
    let axfr = assert_json_reply(&server.http_get("/v1/axfr"), "/v1/axfr");
    let keys: Vec<&String> = axfr.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "TTL",
            "Serial",
            "RefreshSeconds",
            "Mname",
            "Rname",
            "Domain",
            "Records"
        ]
    );
    let rkeys: Vec<&String> = axfr["Records"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(rkeys, ["As", "AAAAs", "SRVs"]);
    assert_eq!(axfr["TTL"], ttl);
    assert_eq!(axfr["Serial"], dns_serial(server));
    assert_eq!(axfr["RefreshSeconds"], 60);
    assert_eq!(axfr["Mname"], "ns1.mesos.");
    assert_eq!(axfr["Rname"], "root.ns1.mesos.");
    assert_eq!(axfr["Domain"], "mesos");
    for (key, rtype) in [("As", "A"), ("AAAAs", "AAAA"), ("SRVs", "SRV")] {
        let mut got = axfr_group(&axfr, key);
        for n in loose {
            got.remove(*n);
        }
        assert_same_sets(&got, &model.records(rtype), &format!("/v1/axfr {key}"));
    }
    axfr
}

#[test]
fn enumerate_and_axfr_for_fake_json() {
    let Some(text) = fake_json() else { return };
    let doc: Value = serde_json::from_str(&text).expect("fake.json");
    let (master, server) = serve(doc, json!({}));
    let mut m = Model::default();
    m.add_all("A", "slave.mesos.", &["1.2.3.10", "1.2.3.11", "1.2.3.12"]);
    m.add_all("AAAA", "slave.mesos.", &["2001:db8::1"]);
    m.add_all("SRV", "_slave._tcp.mesos.", &["slave.mesos.:5051"]);
    m.add_all("A", "ns1.mesos.", &["127.0.0.1"]);
    for n in ["leader.mesos.", "master.mesos.", "master0.mesos."] {
        m.add_all("A", n, &["127.0.0.1"]);
    }
    let leader_srv = format!("leader.mesos.:{}", master.addr().port());
    m.add_all("SRV", "_leader._tcp.mesos.", &[&leader_srv]);
    m.add_all("SRV", "_leader._udp.mesos.", &[&leader_srv]);
    let chronos = "chronoswithaspaceandmixedcase-2.0.1";
    for (fw, ip) in [
        ("ipv6-framework", "2001:db8::1"),
        (chronos, "1.2.3.12"),
        ("marathon", "1.2.3.11"),
    ] {
        let a = format!("{fw}.mesos.");
        m.add(&a, ip_type(ip), ip);
        m.add(
            &format!("_framework._tcp.{a}"),
            "SRV",
            &format!("{a}:25501"),
        );
    }
    // "no pid" has hostname localhost: nopid.mesos. comes from the host's resolver.
    let (a11, a12) = (["1.2.3.11"], ["1.2.3.12"]);
    let di = [(80, "tcp", "http"), (443, "tcp", "https")];
    let toy = m.task(&Task {
        name: "toy-store",
        id: "toy-store.b8db9f73-562f-11e4-a088-c20493233aa5",
        fw: "ipv6-framework",
        tail: "3",
        labels: &["toy-store"],
        di: false,
        ips: &["12.0.1.3", "12.0.1.2", "fd01:b::1:8000:2"],
        slave_ips: &["2001:db8::1"],
        ports: &[31354, 31355],
        di_ports: &[],
    });
    let some_box = m.task(&Task {
        name: "some-box",
        id: "some-box.b8db9f73-562f-11e4-a088-c20493233aa5",
        fw: chronos,
        tail: "0",
        labels: &["some-box"],
        di: false,
        ips: &a11,
        slave_ips: &a11,
        ports: &[31354],
        di_ports: &[],
    });
    // poseidon is TASK_KILLED. IPSources default (netinfo, mesos, host): the Docker labels
    // are not a source, so the DI tasks use their agent's IP.
    let mut marathon = Vec::new();
    for t in [
        Task {
            name: "liquor.store",
            id: "liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "0",
            labels: &["liquor.store", "liquor-store"],
            di: true,
            ips: &a11,
            slave_ips: &a11,
            ports: &[31354, 31355],
            di_ports: &di,
        },
        Task {
            name: "big.dog2",
            id: "liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "0",
            labels: &["big.dog", "big-dog"],
            di: true,
            ips: &a11,
            slave_ips: &a11,
            ports: &[31354, 31355],
            di_ports: &di,
        },
        Task {
            name: "non-human-readable-liquor-store",
            id: "liquor-store.b71166c1-562f-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "1",
            labels: &["liquor.store", "liquor-store"],
            di: true,
            ips: &a12,
            slave_ips: &a12,
            ports: &[31737, 31738],
            di_ports: &di,
        },
        Task {
            name: "car.store",
            id: "car-store.43758382-562f-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "0",
            labels: &["car-store"],
            di: false,
            ips: &a11,
            slave_ips: &a11,
            ports: &[31364, 31365],
            di_ports: &[],
        },
        Task {
            name: "chronos",
            id: "chronos.49b91a9a-3dda-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "0",
            labels: &["chronos"],
            di: false,
            ips: &a11,
            slave_ips: &a11,
            ports: &[31332],
            di_ports: &[],
        },
        Task {
            name: "nginx",
            id: "nginx.1bc32344-3dda-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "0",
            labels: &["nginx"],
            di: false,
            ips: &["10.3.0.3"],
            slave_ips: &a11,
            ports: &[],
            di_ports: &[],
        },
        Task {
            name: "reviewbot",
            id: "reviewbot.8c9b3434-615a-11e4-a088-c20493233aa5",
            fw: "marathon",
            tail: "1",
            labels: &["reviewbot"],
            di: false,
            ips: &a12,
            slave_ips: &a12,
            ports: &[31744],
            di_ports: &[],
        },
    ] {
        marathon.push(m.task(&t));
    }
    let want_enum = json!({"frameworks": [
        {"tasks": [toy], "name": "ipv6-framework"},
        {"tasks": [some_box], "name": "chronos with a space AND MIXED CASE-2.0.1"},
        {"tasks": [], "name": "no pid"},
        {"tasks": marathon, "name": "marathon"},
    ]});
    let got = assert_json_reply(&server.http_get("/v1/enumerate"), "/v1/enumerate");
    assert_same_json(&got, &want_enum, "/v1/enumerate (fake.json)");
    let axfr = check_axfr(&server, &m, 60, &["nopid.mesos."]);
    assert_eq!(axfr["Records"]["As"]["nopid.mesos."], json!(["127.0.0.1"]));
    let v6 = &axfr["Records"]["AAAAs"]["nopid.mesos."];
    assert!(v6.is_null() || *v6 == json!(["::1"]), "nopid AAAA {v6}");
}

#[test]
fn enumeration_off_hides_enumerate_and_axfr() {
    let (_master, server) = serve(small(), json!({"EnumerationOn": false}));
    for path in ["/v1/enumerate", "/v1/axfr"] {
        assert_text(
            &server.http_get(path),
            404,
            "404: Page Not Found",
            "EnumerationOn false",
        );
    }
    assert_eq!(server.http_get("/v1/config").json()["EnumerationOn"], false);
    assert_alive(&server, "enumeration off");
}

// ---------------------------------------------------------------------------------------
// Error codes and abuse.

#[test]
fn error_codes_and_bad_requests_never_stop_the_server() {
    let (_master, server) = serve(small(), json!({}));
    let addr = server.http_addr();

    for path in [
        "/nope",
        "/v1",
        "/v1/",
        "/v1/versions",
        "/v1/hosts/",
        "/v1/services/",
        "/v1/hosts//ports",
        "/v1/version/x",
    ] {
        assert_text(&server.http_get(path), 404, "404: Page Not Found", path);
        assert_alive(&server, path);
    }
    for (method, path) in [
        ("POST", "/v1/version"),
        ("PUT", "/v1/config"),
        ("DELETE", "/v1/hosts/leader.mesos"),
        ("PATCH", "/v1/services/_leader._tcp.mesos"),
        ("POST", "/v1/axfr"),
        ("OPTIONS", "/v1/enumerate"),
    ] {
        let r = server.http(method, path, &[]);
        assert_text(
            &r,
            405,
            "405: Method Not Allowed",
            &format!("{method} {path}"),
        );
        assert_alive(&server, method);
    }
    // A POST with a body.
    let r = http_raw(
        addr,
        b"POST /v1/config HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n",
        Duration::from_secs(10),
    )
    .expect("reply");
    assert_text(&r, 405, "405: Method Not Allowed", "POST with body");

    // Accept.
    for path in ["/v1/version", "/v1/hosts/leader.mesos", "/v1/config"] {
        let r = server.http("GET", path, &[("Accept", "text/html")]);
        assert_text(&r, 406, "406: Not Acceptable", path);
        for accept in [
            None,
            Some("*/*"),
            Some("application/json"),
            Some("text/html, application/json;q=0.9"),
        ] {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
            let r = server.http("GET", path, &headers);
            assert_eq!(r.status, 200, "{path} Accept {accept:?}");
        }
    }

    // HEAD: the GET head without the body.
    let get = server.http_get("/v1/version");
    let head = server.http("HEAD", "/v1/version", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD body {:?}", head.text());
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );

    // HTTP/1.0 works.
    let r = http_raw(
        addr,
        b"GET /health HTTP/1.0\r\n\r\n",
        Duration::from_secs(10),
    )
    .expect("reply");
    assert_eq!(r.status, 200);

    // A head over 8 KiB.
    let pad = "a".repeat(9000);
    let r = server.http("GET", "/v1/version", &[("X-Pad", &pad)]);
    assert_eq!(r.status, 431, "8 KiB head: {:?}", r.text());
    assert_alive(&server, "a huge head");
    // 32 headers are fine (Host and Connection are two of them), 33 are not.
    let many: Vec<(String, String)> = (0..31)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(
        server.http("GET", "/v1/version", &refs[..30]).status,
        200,
        "32 headers"
    );
    let r = server.http("GET", "/v1/version", &refs);
    assert_eq!(r.status, 431, "33 headers: {:?}", r.text());
    assert_alive(&server, "too many headers");

    // Garbage.
    for bytes in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /v1/version HTTP/9.9\r\n\r\n",
        b"\x00\x00\x00\x00\r\n\r\n",
    ] {
        let r = http_raw(addr, bytes, Duration::from_secs(10)).expect("reply to garbage");
        assert_eq!(r.status, 400, "{bytes:?}: {:?}", r.text());
        assert_alive(&server, "garbage");
    }
    // Garbage then the client closes its side: still 400, not a hang.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"\x01\x02\x03 no newline").expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let r = read_http_reply(&mut s, Duration::from_secs(10)).expect("reply");
    assert_eq!(r.status, 400);

    // A very long path (the head still fits in 8 KiB).
    let long = format!("/v1/hosts/{}.mesos", "a".repeat(4000));
    let req = format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(req.as_bytes()).expect("write");
    let r = read_http_reply(&mut s, Duration::from_secs(10)).expect("reply");
    assert_eq!(r.status, 414, "long path: {:?}", r.text());
    assert_alive(&server, "a long path");

    // The status line carries the right reason phrase.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = std::io::Read::read_to_end(&mut s, &mut raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 414 URI Too Long\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(60)])
    );
}

#[test]
fn slow_clients_get_408_and_do_not_block_others() {
    let (_master, server) = serve(small(), json!({}));
    let addr = server.http_addr();
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /v1/ver").expect("write");
        stalled.push(s);
    }
    // One that connects and never writes.
    stalled.push(TcpStream::connect(addr).expect("connect"));
    std::thread::sleep(Duration::from_millis(200));
    // Meanwhile a normal request is answered at once.
    let t = Instant::now();
    let r = http_raw(
        addr,
        b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .expect("reply");
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a normal request waited {:?} behind stalled clients",
        t.elapsed()
    );
    for (i, mut s) in stalled.into_iter().enumerate() {
        let r = read_http_reply(&mut s, Duration::from_secs(9)).expect("408 reply");
        assert_eq!(r.status, 408, "stalled client {i}: {:?}", r.text());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
            "408 after {waited:?}"
        );
    }
    assert_alive(&server, "slow clients");
}

#[test]
fn connections_beyond_the_cap_get_503_and_slots_come_back() {
    let (_master, server) = serve(small(), json!({}));
    let addr = server.http_addr();
    let cap = mesos_dns::http::MAX_CONNS;
    let idle: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // Every slot is taken (the acceptor polls every 20 ms): the next client is refused at once.
    let mut refused = None;
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || {
            let r = http_raw(
                addr,
                b"GET /health HTTP/1.1\r\n\r\n",
                Duration::from_secs(3),
            );
            let full = r.as_ref().is_some_and(|r| r.status == 503);
            refused = r;
            full
        }),
        "no 503 with {cap} idle connections open: {refused:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_text(
        refused.as_ref().expect("reply"),
        503,
        "503: Service Unavailable",
        "over the cap",
    );
    // Closing them frees the slots long before the head deadline.
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(3), || server.http_get("/health").status
            == 200),
        "slots did not come back"
    );
    let overloaded = scrape(&server).get("mesos_dns_http_overloaded_total", &[]);
    assert!(overloaded >= 1.0, "overloaded {overloaded}");
}

// ---------------------------------------------------------------------------------------
// /metrics.

/// A sample's labels, sorted by name.
type Labels = Vec<(String, String)>;

/// A parsed exposition: sample value by (name, sorted labels).
struct Scrape {
    samples: HashMap<(String, Labels), f64>,
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        *self
            .samples
            .get(&(name.to_owned(), l))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{a="x",b="y"}` (after the name); returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !is_metric_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or }".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// The Prometheus text format (0.0.4): HELP/TYPE comments and `name{labels} value [ts]`
/// samples. Checks every sample's family has a TYPE line that came first, TYPE appears once
/// per family, labels parse, values are numbers, and no series repeats.
fn parse_prometheus(text: &str) -> Result<Scrape, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut parts = c.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| at("TYPE without name".into()))?;
                    let kind = parts.next().unwrap_or("").trim();
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("bad type {kind:?}")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("second TYPE line".into()));
                    }
                }
                Some("HELP") => {
                    let name = parts.next().ok_or_else(|| at("HELP without name".into()))?;
                    if !is_metric_name(name) {
                        return Err(at("bad HELP name".into()));
                    }
                }
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at("bad metric name".into()));
        }
        let (mut labels, rest) = parse_labels(&line[name_end..]).map_err(at)?;
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| {
                let base = name.strip_suffix(suf)?;
                matches!(
                    types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                )
                .then_some(base)
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .ok_or_else(|| at(format!("no TYPE line for family {family}")))?;
        if kind == "histogram"
            && name.ends_with("_bucket")
            && !labels.iter().any(|(k, _)| k == "le")
        {
            return Err(at("bucket without le".into()));
        }
        if kind == "counter" && value < 0.0 {
            return Err(at("negative counter".into()));
        }
        labels.sort();
        if samples.insert((name.to_owned(), labels), value).is_some() {
            return Err(at("duplicate series".into()));
        }
    }
    Ok(Scrape { samples })
}

fn scrape(server: &Server) -> Scrape {
    let r = server.http_get("/metrics");
    assert_eq!(r.status, 200, "/metrics: {:?}", r.text());
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "/metrics content-type {ct}");
    parse_prometheus(&r.text()).unwrap_or_else(|e| panic!("/metrics does not parse: {e}"))
}

#[test]
fn prometheus_parser_rejects_what_it_should() {
    assert!(parse_prometheus("# TYPE a counter\na 1\n").is_ok());
    assert!(parse_prometheus("a 1\n").is_err(), "no TYPE");
    assert!(parse_prometheus("# TYPE a counter\na{x=\"1} 1\n").is_err());
    assert!(parse_prometheus("# TYPE a counter\na one\n").is_err());
    assert!(parse_prometheus("# TYPE a counter\na 1\na 2\n").is_err());
    let s = parse_prometheus(
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n",
    )
    .expect("histogram");
    assert_eq!(s.get("h_count", &[]), 2.0);
    assert_eq!(s.get("h_bucket", &[("le", "+Inf")]), 2.0);
}

#[test]
fn metrics_parse_and_move_with_queries() {
    let (_master, server) = serve(small(), small_config());
    let before = scrape(&server);
    let qa = [("qtype", "A")];
    let (nx, noerr) = ([("rcode", "NXDOMAIN")], [("rcode", "NOERROR")]);
    for _ in 0..3 {
        let m = server.query_udp("web.marathon.mesos.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
    for _ in 0..2 {
        let m = server.query_udp("nothere.marathon.mesos.", RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    let q0 = before.get("mesos_dns_queries_by_qtype_total", &qa);
    assert!(
        wait_until(Duration::from_secs(3), || {
            scrape(&server).get("mesos_dns_queries_by_qtype_total", &qa) >= q0 + 5.0
        }),
        "qtype A did not grow by 5"
    );
    let after = scrape(&server);
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(delta("mesos_dns_queries_by_qtype_total", &qa), 5.0);
    assert_eq!(delta("mesos_dns_responses_total", &nx), 2.0);
    assert_eq!(delta("mesos_dns_responses_total", &noerr), 3.0);
    // The local answer-latency histogram saw those 5 answers, and its buckets are cumulative.
    let lat = "mesos_dns_local_answer_duration_seconds";
    assert_eq!(delta(&format!("{lat}_count"), &[]), 5.0);
    assert_eq!(
        after.get(&format!("{lat}_bucket"), &[("le", "+Inf")]),
        after.get(&format!("{lat}_count"), &[])
    );
    assert!(
        after.get(&format!("{lat}_bucket"), &[("le", "0.00001")])
            <= after.get(&format!("{lat}_bucket"), &[("le", "0.05")])
    );
    assert!(delta(&format!("{lat}_sum"), &[]) > 0.0);

    // A datagram too short for a header moves the malformed counter.
    let short = [("kind", "too_short")];
    let m0 = after.get("mesos_dns_malformed_total", &short);
    let _ =
        server.send_bad_then_good_udp(&[1, 2, 3, 4, 5], &Q::new("leader.mesos.", RecordType::A));
    assert!(
        wait_until(Duration::from_secs(3), || {
            scrape(&server).get("mesos_dns_malformed_total", &short) >= m0 + 1.0
        }),
        "mesos_dns_malformed_total{{kind=\"too_short\"}} did not move"
    );

    // Snapshot gauges agree with /v1/axfr.
    let s = scrape(&server);
    assert!(s.get("mesos_dns_snapshot_epoch", &[]) >= 1.0);
    assert!(s.get("mesos_dns_refresh_total", &[("result", "ok")]) >= 1.0);
    let axfr = server.http_get("/v1/axfr").json();
    for (key, t) in [("As", "A"), ("AAAAs", "AAAA"), ("SRVs", "SRV")] {
        let n: usize = axfr["Records"][key]
            .as_object()
            .expect("object")
            .values()
            .map(|v| v.as_array().expect("array").len())
            .sum();
        assert_eq!(
            s.get("mesos_dns_records", &[("type", t)]),
            n as f64,
            "records {t}"
        );
    }
    assert_eq!(
        s.get("mesos_dns_soa_serial", &[]),
        f64::from(dns_serial(&server))
    );
}

// ---------------------------------------------------------------------------------------
// /health and /ready.

fn ready_config(master: &FakeMaster, extra: Value) -> Value {
    let mut c =
        json!({"masters": [master.hostport()], "refreshSeconds": 1, "stateTimeoutSeconds": 2});
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

#[test]
fn ready_waits_for_the_first_load_and_failures_are_counted() {
    let master = FakeMaster::start(Behaviour::Status(500, "not yet".into()));
    let server = Server::start(ready_config(&master, json!({})));
    assert!(
        master.wait_requests(0, 1, Duration::from_secs(5)),
        "no poll"
    );
    assert_text(
        &server.http_get("/health"),
        200,
        "ok\n",
        "/health before load",
    );
    let r = server.http_get("/ready");
    assert_eq!(r.status, 503, "/ready before the first load");
    assert!(
        r.text().contains("not ready") && r.text().contains("no state loaded"),
        "{:?}",
        r.text()
    );
    // Data endpoints need a snapshot; the static ones do not.
    assert_eq!(server.http_get("/v1/version").status, 200);
    assert_eq!(server.http_get("/v1/hosts/leader.mesos").status, 503);
    // Failed polls are counted while the master keeps failing.
    let f0 = scrape(&server).get("mesos_dns_refresh_total", &[("result", "failed")]);
    assert!(f0 >= 1.0, "failed refreshes {f0}");
    let polls = master.requests();
    assert!(master.wait_requests(polls, 2, Duration::from_secs(5)));
    assert!(
        wait_until(Duration::from_secs(3), || scrape(&server)
            .get("mesos_dns_refresh_total", &[("result", "failed")])
            > f0),
        "refresh failures did not grow"
    );
    assert_eq!(scrape(&server).get("mesos_dns_snapshot_epoch", &[]), 0.0);

    master.set(Behaviour::Ok(small()));
    assert!(
        wait_until(Duration::from_secs(5), || server.http_get("/ready").status
            == 200),
        "/ready never turned 200"
    );
    assert_text(
        &server.http_get("/ready"),
        200,
        "ready\n",
        "/ready after load",
    );
    assert_text(
        &server.http_get("/health"),
        200,
        "ok\n",
        "/health after load",
    );
    assert!(scrape(&server).get("mesos_dns_snapshot_epoch", &[]) >= 1.0);
}

#[test]
fn ready_turns_stale_without_good_refreshes_and_recovers() {
    let master = FakeMaster::start(Behaviour::Ok(small()));
    let server = Server::start(ready_config(&master, json!({"maxStalenessSeconds": 2})));
    server.wait_ready("mesos");
    assert!(wait_until(Duration::from_secs(3), || server
        .http_get("/ready")
        .status
        == 200));
    master.set(Behaviour::Status(500, "boom".into()));
    let failing_since = Instant::now();
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(8), || {
            let r = server.http_get("/ready");
            let stale = r.status == 503;
            last = Some(r);
            stale
        }),
        "/ready stayed 200 with a failing master"
    );
    let waited = failing_since.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "stale after only {waited:?}"
    );
    let body = last.expect("reply").text();
    assert!(
        body.contains("s ago") && body.contains("maxStalenessSeconds 2"),
        "reason should name the age: {body:?}"
    );
    // Still serving the last good records meanwhile; /health unaffected.
    assert_eq!(server.http_get("/health").status, 200);
    assert_eq!(server.http_get("/v1/hosts/leader.mesos").status, 200);
    let age = scrape(&server).get("mesos_dns_seconds_since_last_good_refresh", &[]);
    assert!(age >= 2.0, "age gauge {age}");

    master.set(Behaviour::Ok(small()));
    assert!(
        wait_until(Duration::from_secs(5), || server.http_get("/ready").status
            == 200),
        "/ready did not recover"
    );
}

#[test]
fn regression_reply_is_not_cut_by_a_reset_when_the_request_body_was_not_read() {
    // A request with a body we never read: closing the socket with those bytes unread made
    // the kernel send a reset and drop the part of the reply still in our send buffer. The
    // client's small receive buffer keeps most of the reply there until it reads.
    let (_master, server) = serve(small(), json!({}));
    let addr = server.http_addr();
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    sock.connect_timeout(&addr.into(), Duration::from_secs(2))
        .expect("connect");
    let mut stream: TcpStream = sock.into();
    let body = vec![b'a'; 200_000];
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = writer.set_write_timeout(Some(Duration::from_secs(3)));
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    // Let the server answer and close before we read a byte.
    std::thread::sleep(Duration::from_millis(300));
    let reply = read_http_reply(&mut stream, Duration::from_secs(5)).expect("a reply");
    sender.join().expect("sender");
    assert_eq!(reply.status, 200);
    let declared: usize = reply
        .header("content-length")
        .expect("Content-Length")
        .parse()
        .expect("number");
    assert!(
        declared > 8192,
        "the reply must not fit the client's buffer: {declared}"
    );
    assert_eq!(reply.body.len(), declared, "the reply was cut");
}
