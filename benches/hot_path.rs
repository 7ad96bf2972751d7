//! Query hot-path benchmarks: [`answer`] over UDP against a snapshot built from the
//! deterministic 1 000-task synthetic state (`loadtest/synth_state.rs`).
//!
//! The queries are hand-encoded once, before timing, for real names picked from the generated
//! zone: an A hit (a task name with one address), SRV hits with glue (one and three targets),
//! an A hit with EDNS, and an NXDOMAIN; plus `parse_query` alone. Every iteration reuses one
//! 65 535-byte output buffer and one [`Scratch`], as a worker does. Targets: A reply < 150 ns,
//! SRV with glue < 400 ns.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::Criterion;
use mesos_dns::config::Config;
use mesos_dns::dns::answer::{AnswerConfig, Disposition, Scratch, Transport, answer};
use mesos_dns::dns::wire::{self, rcode, rtype};
use mesos_dns::mesos::state::State;
use mesos_dns::records::generator::{GenConfig, NoHosts, generate};
use mesos_dns::snapshot::{Snapshot, Zone};

// why: cargo builds bench targets with `cfg(test)`, which pulls in synth_state's unit-test
// module, but `harness = false` drops its `#[test]` functions, leaving their helpers unused.
#[allow(dead_code, unused_imports)]
#[path = "../loadtest/synth_state.rs"]
mod synth_state;

/// Builds the snapshot of a synthetic state with `tasks` tasks.
fn build_snapshot(tasks: usize) -> Snapshot {
    let doc = synth_state::generate(&synth_state::SynthSpec::with_tasks(tasks));
    let state = State::from_slice(doc.as_bytes()).expect("synthetic state parses");
    let cfg = GenConfig::defaults_with_listener(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let generated = generate(&state, &cfg, &[], &NoHosts);
    let zone = Zone::from_config(&Config::default());
    Snapshot::new(generated, zone, state.leader.as_str().to_owned(), None)
}

/// A standard query (RD set) for `name`, with an OPT record advertising `edns` when given.
fn encode_query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&0x0100u16.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        p.push(u8::try_from(label.len()).expect("label fits"));
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    p
}

/// The first Marathon task name with exactly one A record and nothing else.
fn pick_a_name(snap: &Snapshot) -> String {
    snap.records
        .iter()
        .find(|(n, rr)| {
            n.ends_with(".marathon.mesos.")
                && !n.starts_with('_')
                && rr.a.len() == 1
                && rr.aaaa.is_empty()
                && rr.srv.is_empty()
        })
        .map(|(n, _)| n.to_owned())
        .expect("an A name in the synthetic zone")
}

/// The first Marathon task SRV name (`_app._tcp.marathon.mesos.`) with exactly `n` records
/// whose targets all have an A.
fn pick_srv_name(snap: &Snapshot, n: usize) -> String {
    snap.records
        .iter()
        .find(|(name, rr)| {
            name.strip_suffix("._tcp.marathon.mesos.")
                .is_some_and(|app| app.starts_with('_') && !app.contains('.'))
                && !name.starts_with("_framework.")
                && rr.srv.len() == n
                && rr.a.is_empty()
                && rr.srv.iter().all(|s| {
                    snap.records
                        .rrset(s.target)
                        .is_some_and(|t| !t.a.is_empty())
                })
        })
        .map(|(name, _)| name.to_owned())
        .expect("an SRV name in the synthetic zone")
}

#[allow(clippy::print_stderr)] // why: the bench log records which names were queried
fn main() {
    let snap = build_snapshot(1_000);
    let cfg = AnswerConfig {
        domain: "mesos".into(),
        edns_udp_size: 1232,
        recurse_on: true,
        forward: false,
    };
    let a_name = pick_a_name(&snap);
    let srv1 = pick_srv_name(&snap, 1);
    let srv3 = pick_srv_name(&snap, 3);
    let cases: Vec<(&str, Vec<u8>, u8, u16)> = vec![
        ("a_hit", encode_query(1, &a_name, rtype::A, None), 0, 1),
        (
            "a_hit_edns",
            encode_query(2, &a_name, rtype::A, Some(1232)),
            0,
            1,
        ),
        (
            "srv_hit_glue_1",
            encode_query(3, &srv1, rtype::SRV, None),
            0,
            1,
        ),
        (
            "srv_hit_glue_3",
            encode_query(4, &srv3, rtype::SRV, None),
            0,
            3,
        ),
        (
            "nxdomain",
            encode_query(5, "no-such-task.marathon.mesos.", rtype::A, None),
            rcode::NXDOMAIN,
            0,
        ),
    ];

    let mut out = vec![0u8; wire::MAX_MESSAGE_LEN];
    let mut scratch = Scratch::new(0x9E37_79B9_7F4A_7C15);
    eprintln!(
        "hot_path: 1000-task snapshot, {} owner names; A name {a_name}, SRV names {srv1} / {srv3}",
        snap.records.len()
    );
    // Check each reply once before timing, so the bench measures what it claims to.
    for (label, pkt, want_rcode, want_answers) in &cases {
        let o = answer(
            pkt,
            Transport::Udp,
            Some(&snap),
            &cfg,
            &mut out,
            &mut scratch,
        );
        let ancount = u16::from_be_bytes([out[6], out[7]]);
        let arcount = u16::from_be_bytes([out[10], out[11]]);
        assert_eq!(o.disposition, Disposition::Authoritative, "{label}");
        assert_eq!(o.rcode, *want_rcode, "{label}");
        assert_eq!(ancount, *want_answers, "{label}");
        assert!(!o.truncated, "{label}");
        eprintln!(
            "hot_path: {label}: query {} B, reply {} B, {ancount} answers, {arcount} additionals",
            pkt.len(),
            o.len
        );
    }

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("answer_udp");
        for (label, pkt, _, _) in &cases {
            g.bench_function(*label, |b| {
                b.iter(|| {
                    answer(
                        black_box(pkt),
                        Transport::Udp,
                        Some(&snap),
                        &cfg,
                        &mut out,
                        &mut scratch,
                    )
                    .len
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("parse_query");
        let pkt = &cases[0].1;
        g.bench_function("a_query", |b| {
            b.iter(|| wire::parse_query(black_box(pkt)).map(|q| q.qtype))
        });
        g.finish();
    }
    c.final_summary();
}
