//! Unit tests of the zone transfer server: message layout (decoded with hickory), access
//! control, TSIG policy, IXFR from the journal, and the UDP rule. Real-secondary tests (NSD,
//! dig) live in tests/integration/xfr.rs.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::*;
use crate::acl::Cidr;
use crate::config::default_config;
use crate::dns::answer::{AnswerConfig, Scratch, answer};
use crate::mesos::state::State;
use crate::records::generator::{GenConfig, NoHosts, generate};
use crate::snapshot::Snapshot;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn snap(tasks: usize, first_ip: u32, serial: u32) -> Snapshot {
    let tasks: Vec<(usize, u32)> = (0..tasks).map(|i| (i, first_ip + i as u32)).collect();
    snap_from(&tasks, serial)
}

fn xfr(allow: &[&str], keys: Vec<TsigKey>, journal: Option<Arc<Journal>>) -> Xfr {
    let mut c = default_config();
    c.transfer_allow_from = allow.iter().map(|a| Cidr::parse(a).unwrap()).collect();
    c.tsig_keys = keys;
    Xfr::new(&c, journal)
}

/// A query for `name`/`qtype`, with an authority SOA carrying `serial` for IXFR.
fn query(id: u16, name: &str, qtype: u16, ixfr_serial: Option<u32>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    let ns = u16::from(ixfr_serial.is_some());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    m.extend_from_slice(&ns.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    let mut w = [0u8; 255];
    let n = wire::text_to_wire(name.as_bytes(), &mut w).unwrap();
    m.extend_from_slice(&w[..n]);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(serial) = ixfr_serial {
        m.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
        m.extend_from_slice(&serial.to_be_bytes());
        m.extend_from_slice(&[0; 16]);
    }
    m
}

/// Splits length-prefixed messages.
fn frames(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([b[0], b[1]]));
        out.push(b[2..2 + n].to_vec());
        b = &b[2 + n..];
    }
    assert!(b.is_empty());
    out
}

fn run(x: &Xfr, pkt: &[u8], peer: IpAddr, s: Option<&Snapshot>) -> (Outcome, Vec<Message>) {
    let mut out = Vec::new();
    let outcome = x.serve(&mut out, pkt, peer, s).unwrap();
    let msgs = frames(&out)
        .iter()
        .map(|f| {
            assert!(f.len() <= MAX_MESSAGE, "message of {} bytes", f.len());
            Message::from_vec(f).unwrap()
        })
        .collect();
    (outcome, msgs)
}

fn text(r: &hickory_proto::rr::Record) -> String {
    format!("{} {} {}", r.name, r.record_type(), r.data)
}

fn soa_serial(r: &hickory_proto::rr::Record) -> u32 {
    match &r.data {
        RData::SOA(s) => s.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

#[test]
fn serials_compare_in_sequence_space() {
    assert!(serial_ge(5, 5));
    assert!(serial_ge(6, 5));
    assert!(!serial_ge(5, 6));
    assert!(serial_ge(1, u32::MAX), "wrapped");
    assert!(!serial_ge(u32::MAX, 1));
}

#[test]
fn axfr_is_soa_ns_every_record_soa_in_compressed_messages() {
    let s = snap(600, 0x0A00_0001, 77);
    let x = xfr(&["127.0.0.0/8"], vec![], None);
    let (outcome, msgs) = run(&x, &query(9, "MESOS.", rtype::AXFR, None), LOCAL, Some(&s));
    assert_eq!(outcome, Outcome::Axfr);
    assert!(
        msgs.len() > 1,
        "a 600-task zone takes several 16 KiB messages"
    );
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.metadata.id, 9);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            m.queries.len(),
            usize::from(i == 0),
            "question in the first only"
        );
    }
    let all: Vec<_> = msgs.iter().flat_map(|m| m.answers.iter()).collect();
    assert_eq!(all.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(all.last().unwrap().record_type(), RecordType::SOA);
    assert_eq!(soa_serial(all[0]), 77);
    assert_eq!(text(all[1]), "mesos. NS ns1.mesos.");
    // Exactly the zone's records, owners in lowercase whatever the question's case.
    let got: BTreeSet<String> = all[2..all.len() - 1].iter().map(|r| text(r)).collect();
    assert_eq!(got.len(), all.len() - 3, "no duplicates");
    let want: BTreeSet<String> = zone_records(&s)
        .map(|(n, r)| match r {
            RecRef::A(ip) => format!("{n} A {ip}"),
            RecRef::Aaaa(ip) => format!("{n} AAAA {ip}"),
            RecRef::Srv(t, p) => format!("{n} SRV 0 1 {p} {t}"),
        })
        .collect();
    assert_eq!(got, want);
    assert!(all.iter().all(|r| r.ttl == 60));
    // Compression: the wire is well under the uncompressed size.
    let mut out = Vec::new();
    x.serve(
        &mut out,
        &query(9, "mesos.", rtype::AXFR, None),
        LOCAL,
        Some(&s),
    )
    .unwrap();
    let uncompressed: usize = zone_records(&s)
        .map(|(n, r)| {
            n.len()
                + 1
                + 10
                + match r {
                    RecRef::A(_) => 4,
                    RecRef::Aaaa(_) => 16,
                    RecRef::Srv(t, _) => 6 + t.len() + 1,
                }
        })
        .sum();
    assert!(
        out.len() * 10 < uncompressed * 7,
        "{} vs {uncompressed}",
        out.len()
    );
}

#[test]
fn policy_notauth_refused_servfail() {
    let s = snap(1, 0x0A00_0001, 1);
    let x = xfr(&["10.0.0.0/8"], vec![], None);
    let axfr = query(1, "mesos.", rtype::AXFR, None);
    // Outside transferAllowFrom: one REFUSED message with the question.
    let (o, m) = run(&x, &axfr, LOCAL, Some(&s));
    assert_eq!(o, Outcome::Error(rcode::REFUSED));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].metadata.response_code, ResponseCode::Refused);
    assert_eq!(m[0].queries.len(), 1);
    assert!(m[0].answers.is_empty());
    // Inside: served; below the apex: NOTAUTH; no snapshot yet: SERVFAIL.
    let inside: IpAddr = "10.1.1.1".parse().unwrap();
    assert_eq!(run(&x, &axfr, inside, Some(&s)).0, Outcome::Axfr);
    let (o, m) = run(
        &x,
        &query(1, "a.mesos.", rtype::AXFR, None),
        inside,
        Some(&s),
    );
    assert_eq!(o, Outcome::Error(tsig::NOTAUTH));
    assert_eq!(m[0].metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(
        run(&x, &axfr, inside, None).0,
        Outcome::Error(rcode::SERVFAIL)
    );
    // The default: nobody may transfer.
    let closed = xfr(&[], vec![], None);
    assert_eq!(
        run(&closed, &axfr, LOCAL, Some(&s)).0,
        Outcome::Error(rcode::REFUSED)
    );
    // Which queries belong here at all.
    assert!(x.is_transfer(&axfr));
    assert!(x.is_transfer(&query(1, "x.Mesos.", rtype::IXFR, Some(1))));
    assert!(!x.is_transfer(&query(1, "example.com.", rtype::AXFR, None)));
    assert!(!x.is_transfer(&query(1, "mesos.", rtype::SOA, None)));
}

#[test]
fn tsig_required_when_keys_are_configured() {
    let s = snap(300, 0x0A00_0001, 5);
    let key = TsigKey::new("xfr.", b"0123456789abcdef".to_vec()).unwrap();
    let x = xfr(&["127.0.0.1"], vec![key.clone()], None);
    let unsigned = query(3, "mesos.", rtype::AXFR, None);
    assert_eq!(
        run(&x, &unsigned, LOCAL, Some(&s)).0,
        Outcome::Error(rcode::REFUSED)
    );
    // Signed with the right key: every message carries a TSIG.
    let mut signed = unsigned.clone();
    Signer::request(&key).sign(&mut signed, unix_now(), 0, &[]);
    let mut out = Vec::new();
    assert_eq!(
        x.serve(&mut out, &signed, LOCAL, Some(&s)).unwrap(),
        Outcome::Axfr
    );
    let f = frames(&out);
    assert!(f.len() > 1);
    for m in &f {
        assert_eq!(u16::from_be_bytes([m[10], m[11]]), 1, "ARCOUNT: the TSIG");
        let rrs = tsig::records(m).unwrap();
        assert_eq!(rrs.last().unwrap().rr_type, tsig::TSIG);
    }
    // Wrong secret: NOTAUTH, and the TSIG says BADSIG.
    let wrong = TsigKey::new("xfr.", b"not the secret".to_vec()).unwrap();
    let mut bad = unsigned.clone();
    Signer::request(&wrong).sign(&mut bad, unix_now(), 0, &[]);
    let mut out = Vec::new();
    assert_eq!(
        x.serve(&mut out, &bad, LOCAL, Some(&s)).unwrap(),
        Outcome::Error(tsig::NOTAUTH)
    );
    let f = frames(&out);
    assert_eq!(f.len(), 1);
    let rr = tsig::records(&f[0]).unwrap().pop().unwrap();
    let rd = &f[0][rr.rdata.clone()];
    // algorithm name (13) + time (6) + fudge (2) + MAC size 0 + original id, then the error.
    assert_eq!(&rd[19..23], &[1, 44, 0, 0]);
    assert_eq!(u16::from_be_bytes([rd[25], rd[26]]), tsig::error::BADSIG);
    // Outside the allowed addresses, even a good signature is refused.
    let elsewhere: IpAddr = "192.0.2.1".parse().unwrap();
    let mut out = Vec::new();
    assert_eq!(
        x.serve(&mut out, &signed, elsewhere, Some(&s)).unwrap(),
        Outcome::Error(rcode::REFUSED)
    );
}

#[test]
fn ixfr_condensed_current_and_full() {
    let journal = Arc::new(Journal::default());
    let s1 = snap(50, 0x0A00_0001, 100);
    // Ten tasks change address.
    // Ten of the fifty tasks change address.
    let moved: Vec<(usize, u32)> = (0..50)
        .map(|i| (i, if i < 10 { 0x0B00_0001 } else { 0x0A00_0001 } + i as u32))
        .collect();
    let s2 = snap_from(&moved, 101);
    journal.record(None, &s1);
    journal.record(Some(&s1), &s2);
    let x = xfr(&["127.0.0.0/8"], vec![], Some(journal.clone()));

    // From 100: SOA 101, SOA 100, deletions, SOA 101, additions, SOA 101.
    let (o, msgs) = run(
        &x,
        &query(4, "mesos.", rtype::IXFR, Some(100)),
        LOCAL,
        Some(&s2),
    );
    assert_eq!(o, Outcome::Ixfr);
    let all: Vec<_> = msgs.iter().flat_map(|m| m.answers.iter()).collect();
    let soas: Vec<(usize, u32)> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.record_type() == RecordType::SOA)
        .map(|(i, r)| (i, soa_serial(r)))
        .collect();
    assert_eq!(soas.len(), 4);
    assert_eq!(
        (soas[0], soas[1].1, soas[2].1, soas[3]),
        ((0, 101), 100, 101, (all.len() - 1, 101))
    );
    let (deleted, added) = crate::journal::diff(&s1, &s2);
    assert_eq!(soas[2].0 - soas[1].0 - 1, deleted.len());
    assert_eq!(soas[3].0 - soas[2].0 - 1, added.len());
    assert!(!added.is_empty() && !deleted.is_empty());
    let (_, full) = run(&x, &query(4, "mesos.", rtype::AXFR, None), LOCAL, Some(&s2));
    let full_len: usize = full.iter().map(|m| m.answers.len()).sum();
    assert!(all.len() < full_len);

    // Current (or newer) client: the SOA alone.
    for serial in [101, 102] {
        let (o, msgs) = run(
            &x,
            &query(5, "mesos.", rtype::IXFR, Some(serial)),
            LOCAL,
            Some(&s2),
        );
        assert_eq!(o, Outcome::IxfrCurrent);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].answers.len(), 1);
        assert_eq!(soa_serial(&msgs[0].answers[0]), 101);
    }
    // Unknown serial: the whole zone in IXFR form (SOA, NS, ..., SOA).
    let (o, msgs) = run(
        &x,
        &query(6, "mesos.", rtype::IXFR, Some(7)),
        LOCAL,
        Some(&s2),
    );
    assert_eq!(o, Outcome::IxfrFull);
    let all: Vec<_> = msgs.iter().flat_map(|m| m.answers.iter()).collect();
    assert_eq!(all.len(), full_len);
    assert_eq!(all[1].record_type(), RecordType::NS);
    // No journal: always the whole zone. No SOA in the query: FORMERR.
    let nojournal = xfr(&["127.0.0.0/8"], vec![], None);
    let (o, _) = run(
        &nojournal,
        &query(6, "mesos.", rtype::IXFR, Some(100)),
        LOCAL,
        Some(&s2),
    );
    assert_eq!(o, Outcome::IxfrFull);
    let (o, _) = run(&x, &query(6, "mesos.", rtype::IXFR, None), LOCAL, Some(&s2));
    assert_eq!(o, Outcome::Error(rcode::FORMERR));
}

/// One agent, one framework, one running task `task-<i>` at `ip` per `(i, ip)`.
fn snap_from(tasks: &[(usize, u32)], serial: u32) -> Snapshot {
    let tasks: Vec<serde_json::Value> = tasks
        .iter()
        .map(|&(i, ip)| {
            serde_json::json!({
                "id": format!("task-{i}.{i}"), "name": format!("task-{i}"), "slave_id": "S0",
                "state": "TASK_RUNNING", "resources": {"ports": "[31000-31001]"},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0, "labels": [
                    {"key": "MesosContainerizer.NetworkSettings.IPAddress",
                     "value": Ipv4Addr::from_bits(ip).to_string()}]}]
            })
        })
        .collect();
    let doc = serde_json::json!({
        "leader": "master@10.9.0.9:5050",
        "frameworks": [{"name": "marathon", "pid": "scheduler(1)@10.9.0.1:8080", "tasks": tasks}],
        "slaves": [{"id": "S0", "pid": "slave(1)@10.9.1.1:5051"}]
    });
    let state = State::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let cfg = GenConfig::defaults_with_listener(LOCAL);
    let mut s = Snapshot::new(
        generate(&state, &cfg, &[], &NoHosts),
        Zone::from_config(&default_config()),
        String::new(),
        None,
    );
    s.serial = serial;
    s
}

#[test]
fn udp_rule_notimp_for_axfr_soa_for_ixfr() {
    let s = snap(1, 0x0A00_0001, 42);
    let cfg = AnswerConfig {
        domain: "mesos".into(),
        edns_udp_size: 1232,
        recurse_on: true,
        forward: false,
    };
    let mut out = vec![0u8; 65535];
    let mut scratch = Scratch::new(1);
    let mut ask = |pkt: &[u8], t: Transport, s: Option<&Snapshot>| {
        let o = answer(pkt, t, s, &cfg, &mut out, &mut scratch);
        Message::from_vec(&out[..o.len]).unwrap()
    };
    let m = ask(
        &query(1, "mesos.", rtype::AXFR, None),
        Transport::Udp,
        Some(&s),
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
    let m = ask(
        &query(2, "Mesos.", rtype::IXFR, Some(1)),
        Transport::Udp,
        Some(&s),
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(soa_serial(&m.answers[0]), 42);
    let m = ask(
        &query(3, "a.mesos.", rtype::IXFR, Some(1)),
        Transport::Udp,
        Some(&s),
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    let m = ask(
        &query(4, "mesos.", rtype::IXFR, Some(1)),
        Transport::Udp,
        None,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = ask(
        &query(5, "mesos.", rtype::AXFR, None),
        Transport::Tcp,
        Some(&s),
    );
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn notify_message_layout() {
    let z = Zone::from_config(&default_config());
    let m = Message::from_vec(&notify_message(&z, 1234, 77)).unwrap();
    assert_eq!(m.metadata.id, 77);
    assert!(m.metadata.authoritative);
    assert_eq!(u8::from(m.metadata.op_code), wire::opcode::NOTIFY);
    assert_eq!(m.queries[0].query_type(), RecordType::SOA);
    assert_eq!(m.queries[0].name().to_string(), "mesos.");
    assert_eq!(soa_serial(&m.answers[0]), 1234);
    let mut metrics = String::new();
    render_metrics(&mut metrics);
    assert!(metrics.contains("mesos_dns_xfr_total{type=\"axfr\"}"));
    assert!(metrics.contains("mesos_dns_notify_total{result=\"acked\"}"));
}
