//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the per-worker DNS
//! counters summed at scrape time, the refresh counters, and gauges read off the current
//! snapshot. Runs on an HTTP thread; reads only atomics and the published snapshot.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::dns::wire::ParseError;
use crate::http::api::ApiState;
use crate::metrics::Counter;
use crate::snapshot::{Snapshot, unix_now};

/// Writes one metric family header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every metric.
pub fn render(state: &ApiState, snap: Option<&Snapshot>) -> String {
    let m = &*state.metrics;
    let mut out = String::with_capacity(4096);

    family(
        &mut out,
        "mesos_dns_packets_received_total",
        "counter",
        "DNS packets received (UDP and TCP).",
    );
    let _ = writeln!(
        out,
        "mesos_dns_packets_received_total {}",
        m.total(Counter::Received)
    );
    family(
        &mut out,
        "mesos_dns_replies_sent_total",
        "counter",
        "DNS replies sent.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_replies_sent_total {}",
        m.total(Counter::Sent)
    );
    family(
        &mut out,
        "mesos_dns_dropped_total",
        "counter",
        "Packets dropped without a reply.",
    );
    let _ = writeln!(out, "mesos_dns_dropped_total {}", m.total(Counter::Dropped));
    family(
        &mut out,
        "mesos_dns_truncated_total",
        "counter",
        "Replies sent with TC set.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_truncated_total {}",
        m.total(Counter::Truncated)
    );
    family(
        &mut out,
        "mesos_dns_send_errors_total",
        "counter",
        "Failed sends.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_send_errors_total {}",
        m.total(Counter::SendErrors)
    );
    family(
        &mut out,
        "mesos_dns_tcp_queries_total",
        "counter",
        "Queries received over TCP.",
    );
    let _ = writeln!(out, "mesos_dns_tcp_queries_total {}", m.total(Counter::Tcp));
    family(
        &mut out,
        "mesos_dns_tcp_rejected_total",
        "counter",
        "TCP connections closed at the connection cap.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_tcp_rejected_total {}",
        m.total(Counter::TcpRejected)
    );

    family(
        &mut out,
        "mesos_dns_queries_total",
        "counter",
        "Queries by outcome.",
    );
    for (label, c) in [
        ("authoritative", Counter::Authoritative),
        ("not_ready", Counter::NotReady),
        ("refused", Counter::Refused),
        ("forwarded", Counter::Forwarded),
        ("malformed", Counter::Malformed),
        ("bad_version", Counter::BadVersion),
    ] {
        let _ = writeln!(
            out,
            "mesos_dns_queries_total{{outcome=\"{label}\"}} {}",
            m.total(c)
        );
    }
    family(
        &mut out,
        "mesos_dns_responses_total",
        "counter",
        "Replies by rcode.",
    );
    for (label, c) in [
        ("NOERROR", Counter::RcodeNoError),
        ("FORMERR", Counter::RcodeFormErr),
        ("SERVFAIL", Counter::RcodeServFail),
        ("NXDOMAIN", Counter::RcodeNxDomain),
        ("NOTIMP", Counter::RcodeNotImp),
        ("REFUSED", Counter::RcodeRefused),
        ("BADVERS", Counter::RcodeBadVers),
    ] {
        let _ = writeln!(
            out,
            "mesos_dns_responses_total{{rcode=\"{label}\"}} {}",
            m.total(c)
        );
    }
    family(
        &mut out,
        "mesos_dns_queries_by_qtype_total",
        "counter",
        "Answered queries by QTYPE.",
    );
    for (label, c) in [
        ("A", Counter::QtypeA),
        ("AAAA", Counter::QtypeAaaa),
        ("SRV", Counter::QtypeSrv),
        ("SOA", Counter::QtypeSoa),
        ("NS", Counter::QtypeNs),
        ("ANY", Counter::QtypeAny),
        ("other", Counter::QtypeOther),
    ] {
        let _ = writeln!(
            out,
            "mesos_dns_queries_by_qtype_total{{qtype=\"{label}\"}} {}",
            m.total(c)
        );
    }
    family(
        &mut out,
        "mesos_dns_malformed_total",
        "counter",
        "Malformed packets by kind.",
    );
    for e in ParseError::ALL {
        let n = m.total_slot(Counter::PARSE_BASE + e.index());
        let _ = writeln!(
            out,
            "mesos_dns_malformed_total{{kind=\"{}\"}} {n}",
            e.counter_name()
        );
    }

    let r = &*state.refresh;
    family(
        &mut out,
        "mesos_dns_refresh_total",
        "counter",
        "State refreshes by result.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_refresh_total{{result=\"ok\"}} {}",
        r.ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "mesos_dns_refresh_total{{result=\"failed\"}} {}",
        r.failed.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "mesos_dns_refresh_failures_total",
        "counter",
        "Failed refreshes by kind.",
    );
    for (kind, n) in r.failures_by_kind.lock().iter() {
        let _ = writeln!(
            out,
            "mesos_dns_refresh_failures_total{{kind=\"{kind}\"}} {n}"
        );
    }
    family(
        &mut out,
        "mesos_dns_refresh_duration_seconds",
        "gauge",
        "Duration of the last good refresh.",
    );
    let us = r.last_duration_us.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "mesos_dns_refresh_duration_seconds {}",
        us as f64 / 1e6
    );
    family(
        &mut out,
        "mesos_dns_state_bytes",
        "gauge",
        "Size of the last good state document.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_state_bytes {}",
        r.state_bytes.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "mesos_dns_seconds_since_last_good_refresh",
        "gauge",
        "Age of the served records; -1 before the first load.",
    );
    let last = r.last_ok_unix.load(Ordering::Relaxed);
    let age = if last == 0 {
        -1
    } else {
        unix_now().saturating_sub(last) as i64
    };
    let _ = writeln!(out, "mesos_dns_seconds_since_last_good_refresh {age}");

    family(
        &mut out,
        "mesos_dns_snapshot_epoch",
        "gauge",
        "Publish counter of the served snapshot (0 = none).",
    );
    let _ = writeln!(
        out,
        "mesos_dns_snapshot_epoch {}",
        snap.map_or(0, |s| s.epoch)
    );
    family(
        &mut out,
        "mesos_dns_soa_serial",
        "gauge",
        "SOA serial of the served snapshot.",
    );
    let _ = writeln!(out, "mesos_dns_soa_serial {}", snap.map_or(0, |s| s.serial));
    family(
        &mut out,
        "mesos_dns_records",
        "gauge",
        "Records in the served snapshot by type.",
    );
    let (a, aaaa, srv) = snap.map_or((0, 0, 0), |s| s.records.counts());
    for (t, n) in [("A", a), ("AAAA", aaaa), ("SRV", srv)] {
        let _ = writeln!(out, "mesos_dns_records{{type=\"{t}\"}} {n}");
    }
    family(
        &mut out,
        "mesos_dns_state_skipped",
        "gauge",
        "Input skipped while building the served snapshot.",
    );
    if let Some(s) = snap {
        let st = &s.stats;
        for (what, n) in [
            ("frameworks", st.frameworks_skipped),
            ("tasks", st.tasks_skipped),
            ("agents", st.slaves_skipped),
            ("port_parts", st.bad_port_parts),
            ("invalid_names", st.invalid_names),
            ("unresolved_hosts", st.unresolved_hosts),
            ("unhealthy_tasks", st.unhealthy_excluded),
        ] {
            let _ = writeln!(out, "mesos_dns_state_skipped{{what=\"{what}\"}} {n}");
        }
        family(
            &mut out,
            "mesos_dns_tasks_running",
            "gauge",
            "Running tasks with records.",
        );
        let _ = writeln!(out, "mesos_dns_tasks_running {}", st.tasks_running);
        family(
            &mut out,
            "mesos_dns_leader_info",
            "gauge",
            "The leader named by the served state.",
        );
        let _ = writeln!(
            out,
            "mesos_dns_leader_info{{leader=\"{}\"}} 1",
            esc(&s.leader)
        );
    }

    let h = &state.http;
    family(
        &mut out,
        "mesos_dns_http_requests_total",
        "counter",
        "HTTP requests answered.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_http_requests_total {}",
        h.requests.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "mesos_dns_http_bad_requests_total",
        "counter",
        "HTTP requests refused as malformed, oversized or slow.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_http_bad_requests_total {}",
        h.bad_requests.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "mesos_dns_http_overloaded_total",
        "counter",
        "HTTP connections refused with 503.",
    );
    let _ = writeln!(
        out,
        "mesos_dns_http_overloaded_total {}",
        h.overloaded.load(Ordering::Relaxed)
    );
    out
}
