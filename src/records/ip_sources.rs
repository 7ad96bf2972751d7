//! Task IP sources (behaviour reference §3.4): `netinfo`, `docker`, `mesos` and `host`, tried
//! in the configured order; the task's IPs are *all* the IPs of the first source that yields
//! at least one parseable address (§3.6, the original's master branch). Pure; never panics.

use std::net::IpAddr;

use crate::config::IpSource;
use crate::mesos::state::{Lenient, Status, Task};

/// Label key of the Docker containerizer's IP.
const DOCKER_IP_LABEL: &str = "Docker.NetworkSettings.IPAddress";
/// Label key of the Mesos containerizer's IP.
const MESOS_IP_LABEL: &str = "MesosContainerizer.NetworkSettings.IPAddress";

/// The status with `state == TASK_RUNNING` and the largest timestamp (ties: the earliest).
pub fn latest_running_status(task: &Task) -> Option<&Status> {
    let mut best: Option<(&Status, f64)> = None;
    for status in task.statuses.items().iter().filter_map(Lenient::get) {
        if status.state.as_str() != "TASK_RUNNING" {
            continue;
        }
        let ts = status.timestamp.get().copied().unwrap_or(f64::NEG_INFINITY);
        match best {
            Some((_, best_ts)) if ts <= best_ts => {}
            _ => best = Some((status, ts)),
        }
    }
    best.map(|(s, _)| s)
}

/// Appends to `out` the IPs of `task` from the first populated source. `slave_ips` are the
/// IPs of the task's agent (the `host` source). `out` is cleared first.
pub fn task_ips(task: &Task, sources: &[IpSource], slave_ips: &[IpAddr], out: &mut Vec<IpAddr>) {
    out.clear();
    let status = latest_running_status(task);
    for source in sources {
        match source {
            IpSource::Host => out.extend_from_slice(slave_ips),
            IpSource::NetInfo => {
                if let Some(cs) = status.and_then(|s| s.container_status.get()) {
                    for ni in cs.network_infos.items().iter().filter_map(Lenient::get) {
                        let addrs = ni.ip_addresses.items();
                        if addrs.is_empty() {
                            push_parsed(ni.ip_address.as_str(), out);
                        } else {
                            for a in addrs.iter().filter_map(Lenient::get) {
                                push_parsed(a.ip_address.as_str(), out);
                            }
                        }
                    }
                }
            }
            IpSource::Docker => labels_with_key(status, DOCKER_IP_LABEL, out),
            IpSource::Mesos => labels_with_key(status, MESOS_IP_LABEL, out),
        }
        if !out.is_empty() {
            return;
        }
    }
}

fn labels_with_key(status: Option<&Status>, key: &str, out: &mut Vec<IpAddr>) {
    let Some(status) = status else { return };
    for label in status.labels.items().iter().filter_map(Lenient::get) {
        if label.key.as_str() == key {
            push_parsed(label.value.as_str(), out);
        }
    }
}

fn push_parsed(text: &str, out: &mut Vec<IpAddr>) {
    if let Ok(ip) = text.parse::<IpAddr>() {
        out.push(ip);
    }
}
