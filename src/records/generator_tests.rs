//! Record-generation tests. The expected zones are derived by hand from the behaviour
//! reference (§3.7) and the fixture; task hashes were computed independently (Python's
//! hashlib plus a hand-written z-base-32) and are checked against `task_hash` below.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::{HealthFilter, IpSource};

/// The original project's fixture, read from ../shared (never copied into the repo).
#[allow(clippy::print_stderr)] // the skip must be visible in the test output
fn shared_fixture() -> Option<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/mesos-dns/fake.json"
    );
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("skipped: ../shared/fixtures not present");
            None
        }
    }
}

/// A resolver that knows `localhost` only.
struct LocalhostOnly;

impl HostResolver for LocalhostOnly {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        if host == "localhost" {
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        } else {
            Vec::new()
        }
    }
    fn local_addrs(&self) -> Vec<IpAddr> {
        vec![
            "10.9.9.9".parse().expect("ip"),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ]
    }
}

fn gen_config() -> GenConfig {
    GenConfig::defaults_with_listener(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn build(doc: &[u8], cfg: &GenConfig, masters: &[&str]) -> Generated {
    let state = State::from_slice(doc).expect("state parses");
    let masters: Vec<String> = masters.iter().map(|s| s.to_string()).collect();
    generate(&state, cfg, &masters, &LocalhostOnly)
}

/// Sorted copy of every value list, since the original's order within a name is random.
fn sorted(mut r: AxfrRecords) -> AxfrRecords {
    for v in
        r.a.values_mut()
            .chain(r.aaaa.values_mut())
            .chain(r.srv.values_mut())
    {
        v.sort();
    }
    r
}

fn put(map: &mut BTreeMap<String, Vec<String>>, name: &str, values: &[&str]) {
    let entry = map.entry(name.to_owned()).or_default();
    entry.extend(values.iter().map(|v| v.to_string()));
}

const CHR: &str = "chronoswithaspaceandmixedcase-2.0.1";

/// The four A/AAAA names of a task: (arec, canonical) under `<fw>.<d>` and `<fw>.slave.<d>`.
fn task_addrs(
    m: &mut BTreeMap<String, Vec<String>>,
    label: &str,
    canon: &str,
    fw: &str,
    task_ips: &[&str],
    slave_ips: &[&str],
) {
    put(m, &format!("{label}.{fw}.mesos."), task_ips);
    put(m, &format!("{canon}.{fw}.mesos."), task_ips);
    put(m, &format!("{label}.{fw}.slave.mesos."), slave_ips);
    put(m, &format!("{canon}.{fw}.slave.mesos."), slave_ips);
}

/// Resource-port SRVs of a task without DiscoveryInfo name: four names, slave target.
fn resource_srvs(
    m: &mut BTreeMap<String, Vec<String>>,
    label: &str,
    canon: &str,
    fw: &str,
    ports: &[u16],
    with_plain: bool,
) {
    let target = format!("{canon}.{fw}.slave.mesos.");
    let values: Vec<String> = ports.iter().map(|p| format!("{target}:{p}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    for proto in ["tcp", "udp"] {
        put(m, &format!("_{label}._{proto}.{fw}.slave.mesos."), &values);
        if with_plain {
            put(m, &format!("_{label}._{proto}.{fw}.mesos."), &values);
        }
    }
}

/// DiscoveryInfo-port SRVs (tcp http 80, tcp https 443 in the fixture), task target.
fn di_srvs(m: &mut BTreeMap<String, Vec<String>>, label: &str, canon: &str) {
    let t = format!("{canon}.marathon.mesos.");
    put(
        m,
        &format!("_{label}._tcp.marathon.mesos."),
        &[&format!("{t}:80"), &format!("{t}:443")],
    );
    put(
        m,
        &format!("_http._{label}._tcp.marathon.mesos."),
        &[&format!("{t}:80")],
    );
    put(
        m,
        &format!("_https._{label}._tcp.marathon.mesos."),
        &[&format!("{t}:443")],
    );
}

fn expected_fixture_zone() -> AxfrRecords {
    let mut a = BTreeMap::new();
    let mut aaaa = BTreeMap::new();
    let mut srv = BTreeMap::new();
    // Leader, masters (list 1.2.3.5, 1.2.3.4 with the leader second), listener, agents.
    put(&mut a, "leader.mesos.", &["1.2.3.4"]);
    put(&mut a, "master.mesos.", &["1.2.3.4", "1.2.3.5"]);
    put(&mut a, "master0.mesos.", &["1.2.3.5"]);
    put(&mut a, "master1.mesos.", &["1.2.3.4"]);
    put(&mut srv, "_leader._tcp.mesos.", &["leader.mesos.:5050"]);
    put(&mut srv, "_leader._udp.mesos.", &["leader.mesos.:5050"]);
    put(&mut a, "ns1.mesos.", &["127.0.0.1"]);
    put(
        &mut a,
        "slave.mesos.",
        &["1.2.3.10", "1.2.3.11", "1.2.3.12"],
    );
    put(&mut aaaa, "slave.mesos.", &["2001:db8::1"]);
    put(&mut srv, "_slave._tcp.mesos.", &["slave.mesos.:5051"]);
    // Frameworks.
    put(&mut aaaa, "ipv6-framework.mesos.", &["2001:db8::1"]);
    put(
        &mut srv,
        "_framework._tcp.ipv6-framework.mesos.",
        &["ipv6-framework.mesos.:25501"],
    );
    put(&mut a, &format!("{CHR}.mesos."), &["1.2.3.12"]);
    put(
        &mut srv,
        &format!("_framework._tcp.{CHR}.mesos."),
        &[&format!("{CHR}.mesos.:25501")],
    );
    put(&mut a, "nopid.mesos.", &["127.0.0.1"]);
    put(&mut a, "marathon.mesos.", &["1.2.3.11"]);
    put(
        &mut srv,
        "_framework._tcp.marathon.mesos.",
        &["marathon.mesos.:25501"],
    );

    // toy-store: netinfo gives 2 v4 + 1 v6; its agent is IPv6 only.
    let fw = "ipv6-framework";
    for name in ["toy-store", "toy-store-go588-3"] {
        put(
            &mut a,
            &format!("{name}.{fw}.mesos."),
            &["12.0.1.3", "12.0.1.2"],
        );
        put(
            &mut aaaa,
            &format!("{name}.{fw}.mesos."),
            &["fd01:b::1:8000:2"],
        );
        put(
            &mut aaaa,
            &format!("{name}.{fw}.slave.mesos."),
            &["2001:db8::1"],
        );
    }
    resource_srvs(
        &mut srv,
        "toy-store",
        "toy-store-go588-3",
        fw,
        &[31354, 31355],
        true,
    );

    // some-box: no IP source but host.
    task_addrs(
        &mut a,
        "some-box",
        "some-box-h3dyr-0",
        CHR,
        &["1.2.3.11"],
        &["1.2.3.11"],
    );
    resource_srvs(
        &mut srv,
        "some-box",
        "some-box-h3dyr-0",
        CHR,
        &[31354],
        true,
    );

    // liquor.store (DI liquor.store) and non-human-readable-liquor-store (DI liquor.store,
    // another id and agent): the legacy raw pass and the sanitised pass each.
    for label in ["liquor.store", "liquor-store"] {
        let c1 = format!("{label}-4dfjd-0");
        let c2 = format!("{label}-zasmd-1");
        task_addrs(&mut a, label, &c1, "marathon", &["1.2.3.11"], &["1.2.3.11"]);
        task_addrs(&mut a, label, &c2, "marathon", &["1.2.3.12"], &["1.2.3.12"]);
        resource_srvs(&mut srv, label, &c1, "marathon", &[31354, 31355], false);
        resource_srvs(&mut srv, label, &c2, "marathon", &[31737, 31738], false);
        di_srvs(&mut srv, label, &c1);
        di_srvs(&mut srv, label, &c2);
    }
    // big.dog2 has DI name big.dog and the same task id as liquor.store.
    for label in ["big.dog", "big-dog"] {
        let c = format!("{label}-4dfjd-0");
        task_addrs(&mut a, label, &c, "marathon", &["1.2.3.11"], &["1.2.3.11"]);
        resource_srvs(&mut srv, label, &c, "marathon", &[31354, 31355], false);
        di_srvs(&mut srv, label, &c);
    }
    task_addrs(
        &mut a,
        "car-store",
        "car-store-zinaz-0",
        "marathon",
        &["1.2.3.11"],
        &["1.2.3.11"],
    );
    resource_srvs(
        &mut srv,
        "car-store",
        "car-store-zinaz-0",
        "marathon",
        &[31364, 31365],
        true,
    );
    task_addrs(
        &mut a,
        "chronos",
        "chronos-rx8q6-0",
        "marathon",
        &["1.2.3.11"],
        &["1.2.3.11"],
    );
    resource_srvs(
        &mut srv,
        "chronos",
        "chronos-rx8q6-0",
        "marathon",
        &[31332],
        true,
    );
    // nginx: the mesos containerizer label wins over host; no ports.
    task_addrs(
        &mut a,
        "nginx",
        "nginx-6ud99-0",
        "marathon",
        &["10.3.0.3"],
        &["1.2.3.11"],
    );
    task_addrs(
        &mut a,
        "reviewbot",
        "reviewbot-8sq89-1",
        "marathon",
        &["1.2.3.12"],
        &["1.2.3.12"],
    );
    resource_srvs(
        &mut srv,
        "reviewbot",
        "reviewbot-8sq89-1",
        "marathon",
        &[31744],
        true,
    );

    // The dedup rule: a set per (name, type).
    for m in [&mut a, &mut aaaa, &mut srv] {
        for v in m.values_mut() {
            v.sort();
            v.dedup();
        }
    }
    AxfrRecords { a, aaaa, srv }
}

#[test]
fn hashes_used_by_expectations_match() {
    for (id, h) in [
        ("toy-store.b8db9f73-562f-11e4-a088-c20493233aa5", "go588"),
        ("some-box.b8db9f73-562f-11e4-a088-c20493233aa5", "h3dyr"),
        ("liquor-store.b8db9f73-562f-11e4-a088-c20493233aa5", "4dfjd"),
        ("liquor-store.b71166c1-562f-11e4-a088-c20493233aa5", "zasmd"),
        ("car-store.43758382-562f-11e4-a088-c20493233aa5", "zinaz"),
        ("chronos.49b91a9a-3dda-11e4-a088-c20493233aa5", "rx8q6"),
        ("nginx.1bc32344-3dda-11e4-a088-c20493233aa5", "6ud99"),
        ("reviewbot.8c9b3434-615a-11e4-a088-c20493233aa5", "8sq89"),
    ] {
        assert_eq!(task_hash(id), h, "{id}");
    }
}

#[test]
fn fixture_zone_is_exactly_the_mesos_dns_zone() {
    let Some(doc) = shared_fixture() else { return };
    let g = build(&doc, &gen_config(), &["1.2.3.5:5050", "1.2.3.4:5050"]);
    let got = sorted(g.records.axfr_records());
    let want = expected_fixture_zone();
    for (kind, got, want) in [
        ("A", &got.a, &want.a),
        ("AAAA", &got.aaaa, &want.aaaa),
        ("SRV", &got.srv, &want.srv),
    ] {
        for (name, values) in want {
            assert_eq!(got.get(name), Some(values), "{kind} {name}");
        }
        for name in got.keys() {
            assert!(want.contains_key(name), "unexpected {kind} {name}");
        }
    }
    assert_eq!(g.stats.tasks_running, 9);
    assert_eq!(
        g.stats.frameworks_skipped + g.stats.tasks_skipped + g.stats.slaves_skipped,
        0
    );
}

#[test]
fn leader_not_in_masters_list_gets_next_index() {
    let Some(doc) = shared_fixture() else { return };
    let g = build(&doc, &gen_config(), &[]);
    assert_eq!(
        g.records.get("master0.mesos.").map(|r| r.a.clone()),
        Some(vec![[1, 2, 3, 4].into()])
    );
    let g = build(
        &doc,
        &gen_config(),
        &["1.2.3.5:5050", "1.2.3.6:5050", "1.2.3.5:5050"],
    );
    let ip = |n: &str| g.records.get(n).map(|r| r.a.clone()).unwrap_or_default();
    assert_eq!(ip("master0.mesos."), vec![Ipv4Addr::new(1, 2, 3, 5)]);
    assert_eq!(ip("master1.mesos."), vec![Ipv4Addr::new(1, 2, 3, 6)]);
    // The duplicate non-leader entry is skipped entirely; the leader comes after the list.
    assert_eq!(ip("master2.mesos."), vec![Ipv4Addr::new(1, 2, 3, 4)]);
    assert!(g.records.get("master3.mesos.").is_none());
    // The leader listed twice is numbered once.
    let g = build(
        &doc,
        &gen_config(),
        &["1.2.3.4:5050", "1.2.3.4:5050", "1.2.3.7:5050"],
    );
    let ip = |n: &str| g.records.get(n).map(|r| r.a.clone()).unwrap_or_default();
    assert_eq!(ip("master0.mesos."), vec![Ipv4Addr::new(1, 2, 3, 4)]);
    assert_eq!(ip("master1.mesos."), vec![Ipv4Addr::new(1, 2, 3, 7)]);
    assert!(g.records.get("master2.mesos.").is_none());
}

#[test]
fn enumeration_lists_only_records_each_task_added() {
    let Some(doc) = shared_fixture() else { return };
    let g = build(&doc, &gen_config(), &[]);
    let names: Vec<&str> = g
        .enumeration
        .frameworks
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ipv6-framework",
            "chronos with a space AND MIXED CASE-2.0.1",
            "no pid",
            "marathon"
        ]
    );
    let marathon = &g.enumeration.frameworks[3];
    let tasks: Vec<&str> = marathon.tasks.iter().map(|t| t.name.as_str()).collect();
    // poseidon is TASK_KILLED: not listed.
    assert_eq!(
        tasks,
        [
            "liquor.store",
            "big.dog2",
            "non-human-readable-liquor-store",
            "car.store",
            "chronos",
            "nginx",
            "reviewbot"
        ]
    );
    let chronos = &marathon.tasks[4];
    let rendered: Vec<(String, String, RType)> = chronos
        .records
        .iter()
        .map(|r| r.render(&g.records))
        .collect();
    let recs: Vec<(&str, &str, RType)> = rendered
        .iter()
        .map(|(n, h, t)| (n.as_str(), h.as_str(), *t))
        .collect();
    let t = "chronos-rx8q6-0.marathon.slave.mesos.:31332";
    assert_eq!(
        recs,
        [
            ("chronos.marathon.mesos.", "1.2.3.11", RType::A),
            ("chronos-rx8q6-0.marathon.mesos.", "1.2.3.11", RType::A),
            ("chronos.marathon.slave.mesos.", "1.2.3.11", RType::A),
            (
                "chronos-rx8q6-0.marathon.slave.mesos.",
                "1.2.3.11",
                RType::A
            ),
            ("_chronos._tcp.marathon.slave.mesos.", t, RType::Srv),
            ("_chronos._udp.marathon.slave.mesos.", t, RType::Srv),
            ("_chronos._tcp.marathon.mesos.", t, RType::Srv),
            ("_chronos._udp.marathon.mesos.", t, RType::Srv),
        ]
    );
    // The second liquor.store task shares its plain names' values only partly: its first
    // record is the new IP under the legacy arec.
    let second = &marathon.tasks[2];
    let (name, host, _) = second.records[0].render(&g.records);
    assert_eq!(name, "liquor.store.marathon.mesos.");
    assert_eq!(host, "1.2.3.12");
    // big.dog2 has the same id and agent as liquor.store, but new names: all its own.
    assert!(
        marathon.tasks[1]
            .records
            .iter()
            .all(|r| r.render(&g.records).0.contains("big"))
    );
    // The no-pid framework is listed with no tasks.
    assert!(g.enumeration.frameworks[2].tasks.is_empty());
}

#[test]
fn ip_sources_order_picks_first_populated_source() {
    let Some(doc) = shared_fixture() else { return };
    let mut cfg = gen_config();
    cfg.ip_sources = vec![IpSource::Docker, IpSource::Host];
    let g = build(&doc, &cfg, &[]);
    let a = |n: &str| g.records.get(n).map(|r| r.a.clone()).unwrap_or_default();
    // liquor.store's latest TASK_RUNNING status (largest timestamp) has docker IP 10.3.0.1.
    assert_eq!(
        a("liquor-store-4dfjd-0.marathon.mesos."),
        vec![Ipv4Addr::new(10, 3, 0, 1)]
    );
    // toy-store has no docker label: host source, an IPv6-only agent: no A at all.
    assert!(a("toy-store.ipv6-framework.mesos.").is_empty());
    assert_eq!(
        g.records
            .get("toy-store.ipv6-framework.mesos.")
            .map(|r| r.aaaa.clone()),
        Some(vec!["2001:db8::1".parse().expect("v6")])
    );
    cfg.ip_sources = vec![IpSource::Host];
    let g = build(&doc, &cfg, &[]);
    assert_eq!(
        g.records.get("nginx.marathon.mesos.").map(|r| r.a.clone()),
        Some(vec![Ipv4Addr::new(1, 2, 3, 11)])
    );
}

#[test]
fn rfc952_changes_labels_and_framework_names() {
    let Some(doc) = shared_fixture() else { return };
    let mut cfg = gen_config();
    cfg.rule = LabelRule::Rfc952;
    let g = build(&doc, &cfg, &[]);
    assert!(
        g.records
            .get("some-box.chronoswithaspaceandmixe.mesos.")
            .is_some()
    );
    assert!(g.records.get("chronoswithaspaceandmixe.mesos.").is_some());
}

#[test]
fn listener_unspecified_uses_non_loopback_interfaces() {
    let Some(doc) = shared_fixture() else { return };
    let mut cfg = gen_config();
    cfg.listener = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let g = build(&doc, &cfg, &[]);
    assert_eq!(
        g.records.get("ns1.mesos.").map(|r| r.a.clone()),
        Some(vec![Ipv4Addr::new(10, 9, 9, 9)])
    );
    cfg.listener = "::".parse().expect("v6");
    let g = build(&doc, &cfg, &[]);
    assert_eq!(
        g.records.get("ns1.mesos.").map(|r| r.aaaa.clone()),
        Some(vec!["::".parse().expect("v6")])
    );
}

/// A small hand-written state for the tolerance rules (product.md difference 6).
const BAD_INPUT: &str = r#"{
  "leader": "master@10.0.0.5:5050",
  "slaves": [
    {"id": "A-S1", "pid": "slave(1)@10.0.0.11:5051"},
    {"id": "A-S2", "pid": "nonsense"},
    "not an agent"
  ],
  "frameworks": [
    {"name": "badpid", "pid": "scheduler@", "tasks": [
      {"id": "x.1", "name": "x", "slave_id": "A-S1", "state": "TASK_RUNNING"}]},
    {"name": "web", "pid": "scheduler(1)@10.0.0.20:8080", "tasks": [
      {"id": 12, "name": "wrongid", "slave_id": "A-S1", "state": "TASK_RUNNING"},
      {"id": "ok.1", "name": "ok", "slave_id": "A-S1", "state": "TASK_RUNNING",
       "resources": {"ports": "[31000, 31002-31002, z-1]"}},
      {"id": "gone.1", "name": "gone", "slave_id": "A-S2", "state": "TASK_RUNNING"},
      {"id": "sick.1", "name": "sick", "slave_id": "A-S1", "state": "TASK_RUNNING",
       "statuses": [{"state": "TASK_RUNNING", "timestamp": 1, "healthy": true},
                    {"state": "TASK_RUNNING", "timestamp": 2, "healthy": false}]},
      {"id": "empty.1", "name": "$$$", "slave_id": "A-S1", "state": "TASK_RUNNING"},
      7
    ]},
    {"name": "nullpid", "pid": null, "tasks": []}
  ]
}"#;

#[test]
fn bad_pids_tasks_and_ports_are_skipped_and_counted() {
    let g = build(BAD_INPUT.as_bytes(), &gen_config(), &[]);
    let s = g.stats;
    assert_eq!(s.frameworks_skipped, 2, "badpid and nullpid");
    assert_eq!(s.slaves_skipped, 2, "bad pid and not an object");
    assert_eq!(s.tasks_skipped, 2, "numeric id and not an object");
    assert_eq!(s.bad_port_parts, 2);
    // The good task keeps its good port.
    let srv = g.records.get("_ok._tcp.web.mesos.").expect("ok srv");
    assert_eq!(
        srv.srv.iter().map(|s| s.port).collect::<Vec<_>>(),
        vec![31002]
    );
    // A task on an unknown agent gets nothing; the framework itself is fine.
    assert!(g.records.get("gone.web.mesos.").is_none());
    assert!(g.records.get("web.mesos.").is_some());
    // An empty label cannot make a valid name: dropped and counted, never ".web.mesos.".
    assert!(s.invalid_names > 0);
    assert!(g.records.iter().all(|(n, _)| !n.starts_with('.')));
    // healthFilter off: the unhealthy task is served.
    assert!(g.records.get("sick.web.mesos.").is_some());
}

#[test]
fn health_filter_excludes_tasks_whose_latest_running_status_is_unhealthy() {
    let mut cfg = gen_config();
    cfg.health_filter = HealthFilter::ExcludeUnhealthy;
    let g = build(BAD_INPUT.as_bytes(), &cfg, &[]);
    assert!(g.records.get("sick.web.mesos.").is_none());
    assert!(
        g.records.get("ok.web.mesos.").is_some(),
        "no health check: kept"
    );
    assert_eq!(g.stats.unhealthy_excluded, 1);
}

#[test]
fn unusable_leader_makes_no_leader_records() {
    for leader in ["nobody", "master@host.example:5050", "master@1.2.3.4"] {
        let doc = format!(r#"{{"leader": "{leader}", "frameworks": [], "slaves": []}}"#);
        let g = build(doc.as_bytes(), &gen_config(), &[]);
        assert!(g.records.get("leader.mesos.").is_none(), "{leader}");
        assert_eq!(g.stats.bad_leader, 1);
    }
}

#[test]
fn digest_ignores_order_and_sees_changes() {
    let Some(doc) = shared_fixture() else { return };
    let g1 = build(&doc, &gen_config(), &["1.2.3.4:5050"]);
    let g2 = build(&doc, &gen_config(), &["1.2.3.4:5050"]);
    assert_eq!(g1.records.digest(), g2.records.digest());
    let g3 = build(&doc, &gen_config(), &["1.2.3.4:5050", "1.2.3.9:5050"]);
    assert_ne!(g1.records.digest(), g3.records.digest());
}

/// A state of `tasks` tasks of one app `web` spread over `agents` agents, each task listed
/// `copies` times.
fn one_app_state(tasks: usize, agents: usize, copies: usize) -> String {
    let slaves: Vec<String> = (0..agents)
        .map(|i| {
            format!(r#"{{"id": "S{i}", "hostname": "h{i}", "pid": "slave(1)@10.0.1.{i}:5051"}}"#)
        })
        .collect();
    let mut list = Vec::new();
    for t in 0..tasks {
        for _ in 0..copies {
            list.push(format!(
                r#"{{"id": "web.{t}", "name": "web", "slave_id": "S{}", "state": "TASK_RUNNING",
                    "resources": {{"ports": "[31000-31000]"}}}}"#,
                t % agents
            ));
        }
    }
    format!(
        r#"{{"leader": "master@10.0.0.5:5050", "slaves": [{}],
            "frameworks": [{{"name": "mar", "pid": "scheduler(1)@10.0.0.20:8080", "tasks": [{}]}}]}}"#,
        slaves.join(","),
        list.join(",")
    )
}

#[test]
fn duplicate_records_are_dropped_in_small_and_large_rrsets_alike() {
    // Rrsets below SCAN_DEDUP_MAX values are deduplicated by a scan, larger ones by a set
    // that takes over their values when they reach it: 40 tasks on 20 agents give the app
    // name 20 A values and 40 SRV values, and listing every task three times adds nothing.
    let once = build(one_app_state(40, 20, 1).as_bytes(), &gen_config(), &[]);
    let thrice = build(one_app_state(40, 20, 3).as_bytes(), &gen_config(), &[]);
    let app = thrice.records.get("web.mar.mesos.").expect("app name");
    assert_eq!(app.a.len(), 20, "{:?}", app.a);
    let srv = thrice.records.get("_web._tcp.mar.mesos.").expect("app srv");
    assert_eq!(srv.srv.len(), 40);
    // The test must cross the scan limit (checked at compile time).
    const _: () = assert!(SCAN_DEDUP_MAX < 20);
    // A small rrset: one task's own name holds its agent's address once.
    let small = build(one_app_state(3, 20, 3).as_bytes(), &gen_config(), &[]);
    assert_eq!(small.records.get("web.mar.mesos.").expect("app").a.len(), 3);
    assert_eq!(
        sorted(once.records.axfr_records()),
        sorted(thrice.records.axfr_records())
    );
    assert_eq!(once.records.digest(), thrice.records.digest());
    assert_eq!(once.records.counts(), thrice.records.counts());
}

#[test]
fn valid_name_needs_a_final_dot_non_empty_labels_of_at_most_63_and_253_in_all() {
    let l63 = "a".repeat(63);
    let l64 = "a".repeat(64);
    // 4 labels of 62 plus dots: 4*62 + 3 = 251; with "xy" 254 > 253.
    let l62 = "b".repeat(62);
    let long_ok = format!("{l62}.{l62}.{l62}.{l62}.x.");
    let long_bad = format!("{l62}.{l62}.{l62}.{l62}.xy.");
    let cases: &[(&str, bool)] = &[
        ("a.mesos.", true),
        ("a.", true),
        ("-8sw6z-s0.marathon.mesos.", true),
        ("a.mesos", false),
        (".", false),
        ("", false),
        (".a.mesos.", false),
        ("a..mesos.", false),
        ("a.mesos..", false),
        (&format!("{l63}.mesos."), true),
        (&format!("{l64}.mesos."), false),
        (&long_ok, true),
        (&long_bad, false),
    ];
    for &(name, want) in cases {
        assert_eq!(valid_name(name), want, "{name:?}");
    }
}

/// A name that is no valid DNS name is counted once per record it would have carried, however
/// the generator interns it: a task whose label sanitises to nothing, with two IPs of its
/// own and one agent IP, loses its plain A name twice (".web.mesos.", once per task IP) and
/// its plain agent A name once (".web.slave.mesos."); its canonical names keep their records.
#[test]
fn regression_invalid_names_are_counted_per_record_not_per_name() {
    let doc = r#"{
      "leader": "master@10.0.0.5:5050",
      "slaves": [{"id": "S1", "pid": "slave(1)@10.0.1.10:5051"}],
      "frameworks": [{"name": "web", "pid": "scheduler(1)@10.0.0.20:8080", "tasks": [
        {"id": "e.1", "name": "$$$", "slave_id": "S1", "state": "TASK_RUNNING",
         "statuses": [{"state": "TASK_RUNNING", "timestamp": 1, "container_status":
           {"network_infos": [{"ip_addresses": [
             {"ip_address": "10.9.0.1"}, {"ip_address": "10.9.0.2"}]}]}}]}
      ]}]
    }"#;
    let g = build(doc.as_bytes(), &gen_config(), &[]);
    assert_eq!(g.stats.invalid_names, 3);
    let canonical: Vec<_> = g
        .records
        .iter()
        .filter(|(n, rr)| n.ends_with(".web.mesos.") && n.starts_with('-') && !rr.a.is_empty())
        .collect();
    assert_eq!(canonical.len(), 1, "{canonical:?}");
    assert_eq!(canonical[0].1.a.len(), 2);
}
