//! Hot reload (SIGHUP): which config keys may change in a running server and which need a
//! restart. [`crate::server::Server::reload`] applies a new config only when
//! [`restart_keys`] is empty; otherwise it refuses the **whole** change and keeps the old
//! config, so a running server never runs half of a new config.
//!
//! The comparison runs over the effective config as `/v1/config` shows it
//! ([`Config::masked_json`]), one entry per key, so a key this module does not know (one
//! added later) is treated as needing a restart: the safe default. Reloadable keys
//! ([`RELOADABLE`]) are the record-shaping and zone keys (applied at the next snapshot, which
//! the reload triggers at once), the state source (`masters`, `stateFile`, TLS files,
//! authentication, limits, `refreshSeconds`), the forwarder's upstreams and timeout, and what
//! the HTTP API reads per request. Everything that binds a socket, sizes a thread pool or
//! starts a thread (ports, listeners, `dnson`/`httpon`/`externalon`, `workers`,
//! `forwarders`, `forwardQueue`, `cacheSize`, `ednsUdpSize`, `zk`, zone transfer and
//! connection-limit keys) and `domain` (the zone itself, shared by every worker) needs a
//! restart. With `zk`, the detector owns the masters list, so `masters` and `stateFile` need a
//! restart too.

use serde_json::Value;

use crate::config::Config;

/// Keys a reload applies, in config-file spelling (matched case-insensitively against the
/// `/v1/config` field names).
pub const RELOADABLE: &[&str] = &[
    "ttl",
    "SOAMname",
    "SOARname",
    "SOARefresh",
    "SOARetry",
    "SOAExpire",
    "SOAMinttl",
    "recurseon",
    "SetTruncateBit",
    "srvRecordDefaultWeight",
    "enforceRFC952",
    "IPSources",
    "healthFilter",
    "ptrOn",
    "refreshSeconds",
    "stateTimeoutSeconds",
    "stateMaxBytes",
    "masters",
    "stateFile",
    "mesosHTTPSOn",
    "mesosHTTPSInsecure",
    "caCertFile",
    "certFile",
    "keyFile",
    "mesosAuthentication",
    "mesosCredentials",
    "IAMConfigFile",
    "resolvers",
    "zoneResolvers",
    "timeout",
    "EnumerationOn",
    "maxStalenessSeconds",
];

/// Keys that need a restart, in config-file spelling: used to name them in logs.
const RESTART: &[&str] = &[
    "port",
    "listener",
    "httpport",
    "httplistener",
    "dnson",
    "httpon",
    "externalon",
    "domain",
    "zk",
    "zkDetectionTimeout",
    "ednsUdpSize",
    "cacheSize",
    "workers",
    "pinWorkers",
    "udpCoalesceMicros",
    "refreshPriority",
    "forwarders",
    "forwardQueue",
    "transferAllowFrom",
    "notifyTargets",
    "tsigKeys",
    "tcpMaxConnections",
    "tcpIdleTimeoutSeconds",
    "httpMaxConnections",
    "recursionAllowFrom",
];

/// Fields of `/v1/config` that are not settings: the config file's own path, and the serial
/// (a fresh one at every validation).
const IGNORED: &[&str] = &["File", "SOASerial"];

/// The config-file spelling of a `/v1/config` field name (the name itself when unknown).
fn file_key(field: &str) -> String {
    RELOADABLE
        .iter()
        .chain(RESTART)
        .find(|k| k.eq_ignore_ascii_case(field))
        .map_or_else(|| field.to_owned(), |k| (*k).to_owned())
}

/// Every key whose value differs between `old` and `new`, in config-file spelling, in
/// `/v1/config` order. Masked secrets compare as masked, so a change of a secret alone is
/// not listed (it is still applied).
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (old.masked_json(), new.masked_json());
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for (k, v) in &b {
        if !IGNORED.contains(&k.as_str()) && a.get(k) != Some(v) {
            out.push(file_key(k));
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) && !IGNORED.contains(&k.as_str()) {
            out.push(file_key(k));
        }
    }
    // TSIG secrets are masked in `/v1/config` but are not reloadable: compare them directly.
    if old.tsig_keys != new.tsig_keys && !out.iter().any(|k| k == "tsigKeys") {
        out.push("tsigKeys".to_owned());
    }
    out
}

/// The changed keys that a running server cannot apply (empty: the reload may go ahead).
pub fn restart_keys(old: &Config, new: &Config) -> Vec<String> {
    let zk = !old.zk.is_empty();
    changed_keys(old, new)
        .into_iter()
        .filter(|k| {
            let reloadable = RELOADABLE.contains(&k.as_str());
            let zk_owned = zk && (k == "masters" || k == "stateFile");
            !reloadable || zk_owned
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_config;

    fn base() -> Config {
        let mut c = default_config();
        c.masters = vec!["10.0.0.1:5050".into()];
        c.validate().unwrap();
        c
    }

    #[test]
    fn reloadable_changes_need_no_restart() {
        let old = base();
        let mut new = old.clone();
        new.ttl = 5;
        new.ptr_on = true;
        new.resolvers = vec!["10.0.0.53:53".parse().unwrap()];
        new.masters = vec!["10.0.0.2:5050".into()];
        new.soa_serial = old.soa_serial.wrapping_add(7);
        assert_eq!(
            changed_keys(&old, &new),
            ["ttl", "masters", "resolvers", "ptrOn"]
        );
        assert!(restart_keys(&old, &new).is_empty());
    }

    #[test]
    fn binding_keys_need_a_restart_and_are_named() {
        let old = base();
        let mut new = old.clone();
        new.port = 5353;
        new.workers = 3;
        new.ttl = 9;
        assert_eq!(restart_keys(&old, &new), ["port", "workers"]);
        let mut new = old.clone();
        new.domain = "dc1.mesos".into();
        assert_eq!(restart_keys(&old, &new), ["domain"]);
    }

    #[test]
    fn with_zk_the_masters_list_needs_a_restart() {
        let mut old = base();
        old.zk = "zk://10.0.0.9:2181/mesos".into();
        let mut new = old.clone();
        new.masters = vec!["10.0.0.2:5050".into()];
        assert_eq!(restart_keys(&old, &new), ["masters"]);
    }

    #[test]
    fn every_config_field_is_classified() {
        let c = base();
        let Value::Object(m) = c.masked_json() else {
            panic!("an object")
        };
        for k in m.keys() {
            let known = IGNORED.contains(&k.as_str())
                || RELOADABLE
                    .iter()
                    .chain(RESTART)
                    .any(|f| f.eq_ignore_ascii_case(k));
            assert!(
                known,
                "{k}: add it to RELOADABLE or RESTART in src/reload.rs"
            );
        }
    }
}
