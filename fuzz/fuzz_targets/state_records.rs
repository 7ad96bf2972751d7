//! Fuzzes the state-document parser and the record generator: any bytes as a
//! `/master/state` body. Parsing may fail with an error, never panic; a parsed document always
//! builds a snapshot whose names are valid DNS names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns::mesos::state::State;
use mesos_dns::records::generator::{GenConfig, NoHosts, generate};
use mesos_dns::records::labels::LabelRule;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = State::from_slice(data) else { return };
    for rule in [LabelRule::Rfc1123, LabelRule::Rfc952] {
        let cfg = GenConfig {
            domain: "mesos".into(),
            rule,
            ip_sources: vec![
                mesos_dns::config::IpSource::NetInfo,
                mesos_dns::config::IpSource::Docker,
                mesos_dns::config::IpSource::Mesos,
                mesos_dns::config::IpSource::Host,
            ],
            health_filter: mesos_dns::config::HealthFilter::ExcludeUnhealthy,
            listener: [127, 0, 0, 1].into(),
            soa_mname: "ns1.mesos.".into(),
        };
        let masters = vec!["127.0.0.1:5050".to_string(), "garbage".to_string()];
        let g = generate(&state, &cfg, &masters, &NoHosts);
        for (name, _) in g.records.iter() {
            assert!(name.ends_with('.'), "{name:?}");
            assert!(!name.starts_with('.'), "{name:?}");
            assert!(!name.contains(".."), "{name:?}");
        }
    }
});
