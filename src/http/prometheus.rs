//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the per-worker DNS
//! counters summed at scrape time, the refresh counters, gauges read off the current
//! snapshot, and the forward path's queue, cache and per-upstream counters. Runs on an HTTP
//! thread; reads only atomics and the published snapshot, except the forward cache's
//! counters, read under each shard's lock for a moment.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::dns::wire::ParseError;
use crate::forward::stats::{ForwardMetrics, HistogramMetrics, LATENCY_BOUNDS_US};
use crate::http::api::ApiState;
use crate::metrics::Counter;
use crate::snapshot::{Snapshot, unix_now};

/// Writes one metric family header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes a family with one unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Leader detection: state (one series per state, 1 for the current one), detected leader,
/// leader changes and ZooKeeper sessions.
fn render_detection(out: &mut String, d: &crate::mesos::zk::Detection) {
    use crate::mesos::zk::DetectionState;
    family(
        out,
        "mesos_dns_masters_detection_state",
        "gauge",
        "Leader detection state (static masters list, or ZooKeeper).",
    );
    let now = d.state();
    for s in DetectionState::ALL {
        let _ = writeln!(
            out,
            "mesos_dns_masters_detection_state{{state=\"{}\"}} {}",
            s.as_str(),
            u8::from(s == now)
        );
    }
    let leader = d.leader();
    if !leader.is_empty() {
        family(
            out,
            "mesos_dns_detected_leader_info",
            "gauge",
            "The leading master detected in ZooKeeper.",
        );
        let _ = writeln!(
            out,
            "mesos_dns_detected_leader_info{{leader=\"{}\"}} 1",
            esc(&leader)
        );
    }
    family(
        out,
        "mesos_dns_leader_changes_total",
        "counter",
        "Leader changes detected in ZooKeeper (the first detection counts).",
    );
    let _ = writeln!(
        out,
        "mesos_dns_leader_changes_total {}",
        d.leader_changes.load(Ordering::Relaxed)
    );
    family(
        out,
        "mesos_dns_zk_sessions_total",
        "counter",
        "ZooKeeper sessions established (more than one means reconnects).",
    );
    let _ = writeln!(
        out,
        "mesos_dns_zk_sessions_total {}",
        d.sessions.load(Ordering::Relaxed)
    );
}

/// Renders every metric.
pub fn render(state: &ApiState, snap: Option<&Snapshot>) -> String {
    let m = &*state.metrics;
    let mut out = String::with_capacity(4096);

    single(
        &mut out,
        "mesos_dns_packets_received_total",
        "counter",
        "DNS packets received (UDP and TCP).",
        m.total(Counter::Received),
    );
    single(
        &mut out,
        "mesos_dns_replies_sent_total",
        "counter",
        "DNS replies sent.",
        m.total(Counter::Sent),
    );
    single(
        &mut out,
        "mesos_dns_dropped_total",
        "counter",
        "Packets dropped without a reply.",
        m.total(Counter::Dropped),
    );
    single(
        &mut out,
        "mesos_dns_truncated_total",
        "counter",
        "Replies sent with TC set.",
        m.total(Counter::Truncated),
    );
    single(
        &mut out,
        "mesos_dns_send_errors_total",
        "counter",
        "Failed sends.",
        m.total(Counter::SendErrors),
    );
    single(
        &mut out,
        "mesos_dns_tcp_queries_total",
        "counter",
        "Queries received over TCP.",
        m.total(Counter::Tcp),
    );
    single(
        &mut out,
        "mesos_dns_tcp_rejected_total",
        "counter",
        "TCP connections closed at the connection cap.",
        m.total(Counter::TcpRejected),
    );
    single(
        &mut out,
        "mesos_dns_recursion_refused_total",
        "counter",
        "Queries outside the domain REFUSED because the client is not in recursionAllowFrom.",
        m.total(Counter::RecursionRefused),
    );
    single(
        &mut out,
        "mesos_dns_udp_coalesce_waits_total",
        "counter",
        "Times a busy UDP worker waited udpCoalesceMicros before its next receive.",
        m.total(Counter::CoalesceWaits),
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
    render_latency(&mut out, m);

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
        "mesos_dns_refresh_priority_raises_total",
        "counter",
        "Refreshes at refreshPriority idle that ran past their grace (a busy core starved \
         them) and were raised to normal priority (ok) or could not be (failed).",
    );
    for (result, n) in [
        ("ok", &r.priority_raised),
        ("failed", &r.priority_raise_failed),
    ] {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "mesos_dns_refresh_priority_raises_total{{result=\"{result}\"}} {n}"
        );
    }
    single(
        &mut out,
        "mesos_dns_state_bytes",
        "gauge",
        "Size of the last good state document.",
        r.state_bytes.load(Ordering::Relaxed),
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
    render_detection(&mut out, &r.detection);
    family(
        &mut out,
        "mesos_dns_config_reloads_total",
        "counter",
        "Config reloads on SIGHUP: applied (ok) or refused, keeping the old config (failed).",
    );
    for (result, n) in [("ok", &r.reloads_ok), ("failed", &r.reloads_failed)] {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "mesos_dns_config_reloads_total{{result=\"{result}\"}} {n}"
        );
    }

    single(
        &mut out,
        "mesos_dns_snapshot_epoch",
        "gauge",
        "Publish counter of the served snapshot (0 = none).",
        snap.map_or(0, |s| s.epoch),
    );
    single(
        &mut out,
        "mesos_dns_soa_serial",
        "gauge",
        "SOA serial of the served snapshot.",
        snap.map_or(0, |s| s.serial),
    );
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
    single(
        &mut out,
        "mesos_dns_ptr_records",
        "gauge",
        "PTR records (ptrOn) in the served snapshot.",
        snap.map_or(0, |s| s.reverse.len()),
    );
    single(
        &mut out,
        "mesos_dns_ptr_ambiguous_ips",
        "gauge",
        "Task or agent IPs with several candidate names, left without a PTR (ptrOn).",
        snap.map_or(0, |s| s.reverse.ambiguous()),
    );
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
        single(
            &mut out,
            "mesos_dns_tasks_running",
            "gauge",
            "Running tasks with records.",
            st.tasks_running,
        );
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

    if let Some(f) = &state.forwarder {
        render_forward(&mut out, &f.metrics());
    }

    let h = &state.http;
    single(
        &mut out,
        "mesos_dns_http_requests_total",
        "counter",
        "HTTP requests answered.",
        h.requests.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "mesos_dns_http_bad_requests_total",
        "counter",
        "HTTP requests refused as malformed, oversized or slow.",
        h.bad_requests.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "mesos_dns_http_overloaded_total",
        "counter",
        "HTTP connections refused with 503.",
        h.overloaded.load(Ordering::Relaxed),
    );
    crate::dns::xfr::render_metrics(&mut out);
    out
}

/// Writes the buckets, sum and count of one histogram series; `labels` is empty or ends
/// with a comma (`upstream="x",`).
fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramMetrics) {
    for (i, n) in h.cumulative.iter().enumerate() {
        match LATENCY_BOUNDS_US.get(i) {
            Some(&us) => {
                let le = us as f64 / 1e6;
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {n}");
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {n}");
            }
        }
    }
    let labels = labels.trim_end_matches(',');
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// The forward path: queue, pool, cache and per-upstream counters.
/// The local answer-latency histogram (UDP workers: receive to send, per batch, per query).
fn render_latency(out: &mut String, m: &crate::metrics::Registry) {
    use crate::metrics::{LATENCY_BASE, LATENCY_BUCKETS_US, LATENCY_COUNT, LATENCY_SUM_NS};
    let name = "mesos_dns_local_answer_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from receiving a UDP batch to sending its replies, counted per query.",
    );
    let mut cumulative = 0u64;
    for (i, le) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += m.total_slot(LATENCY_BASE + i);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *le as f64 / 1e6
        );
    }
    cumulative += m.total_slot(LATENCY_BASE + LATENCY_BUCKETS_US.len());
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(
        out,
        "{name}_sum {}",
        m.total_slot(LATENCY_SUM_NS) as f64 / 1e9
    );
    let _ = writeln!(out, "{name}_count {}", m.total_slot(LATENCY_COUNT));
}

fn render_forward(out: &mut String, f: &ForwardMetrics) {
    for (name, kind, help, v) in [
        (
            "mesos_dns_forward_queue_depth",
            "gauge",
            "Forwarded queries waiting in the queue to the forwarder pool.",
            f.queue_depth,
        ),
        (
            "mesos_dns_forward_queue_capacity",
            "gauge",
            "Capacity of the forward queue (forwardQueue).",
            f.queue_capacity,
        ),
        (
            "mesos_dns_forward_threads",
            "gauge",
            "Forwarder threads (forwarders).",
            f.threads,
        ),
        (
            "mesos_dns_forward_in_flight",
            "gauge",
            "Forwarded queries waiting on an upstream.",
            f.in_flight,
        ),
        (
            "mesos_dns_forward_queue_full_total",
            "counter",
            "Forwarded queries answered SERVFAIL at once because the queue was full.",
            f.queue_full,
        ),
        (
            "mesos_dns_forward_too_large_total",
            "counter",
            "Forwarded queries answered SERVFAIL because they exceed a queue slot.",
            f.too_large,
        ),
        (
            "mesos_dns_forward_send_errors_total",
            "counter",
            "Forwarded replies that could not be sent to the client.",
            f.send_errors,
        ),
        (
            "mesos_dns_forward_tcp_total",
            "counter",
            "Queries forwarded over TCP for TCP clients (cache misses).",
            f.tcp,
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        out,
        "mesos_dns_forward_replies_total",
        "counter",
        "Replies to forwarded queries by source (cache hits are mesos_dns_cache_hits_total).",
    );
    for (label, v) in [
        ("upstream", f.relayed),
        ("servfail_all_failed", f.all_failed),
        ("servfail_queue_full", f.queue_full),
        ("refused_no_upstream", f.no_upstream),
    ] {
        let _ = writeln!(
            out,
            "mesos_dns_forward_replies_total{{source=\"{label}\"}} {v}"
        );
    }
    family(
        out,
        "mesos_dns_forward_latency_seconds",
        "histogram",
        "Time from hand-over to the forwarder to the reply (cache misses only).",
    );
    histogram(out, "mesos_dns_forward_latency_seconds", "", &f.latency);

    let c = &f.cache;
    for (name, kind, help, v) in [
        (
            "mesos_dns_cache_hits_total",
            "counter",
            "Forwarded queries answered from the cache.",
            c.hits,
        ),
        (
            "mesos_dns_cache_misses_total",
            "counter",
            "Cache lookups that found no fresh entry.",
            c.misses,
        ),
        (
            "mesos_dns_cache_evictions_total",
            "counter",
            "Fresh cache entries evicted to make room.",
            c.evictions,
        ),
        (
            "mesos_dns_cache_inserts_total",
            "counter",
            "Upstream replies stored in the cache.",
            c.inserts,
        ),
        (
            "mesos_dns_cache_entries",
            "gauge",
            "Entries held in the cache.",
            c.entries,
        ),
        (
            "mesos_dns_cache_capacity",
            "gauge",
            "Cache capacity in entries (cacheSize).",
            c.capacity,
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }

    type Pick = fn(&crate::forward::stats::UpstreamMetrics) -> u64;
    let per_upstream: [(&str, &str, &str, Pick); 4] = [
        (
            "mesos_dns_upstream_queries_total",
            "counter",
            "Exchanges started with each upstream.",
            |u| u.queries,
        ),
        (
            "mesos_dns_upstream_errors_total",
            "counter",
            "Socket errors, refused connections and unusable replies per upstream.",
            |u| u.errors,
        ),
        (
            "mesos_dns_upstream_timeouts_total",
            "counter",
            "Exchanges without a usable reply within the timeout per upstream.",
            |u| u.timeouts,
        ),
        (
            "mesos_dns_upstream_down",
            "gauge",
            "1 while an upstream is tried last after repeated timeouts.",
            |u| u64::from(u.down),
        ),
    ];
    for (name, kind, help, pick) in per_upstream {
        family(out, name, kind, help);
        for u in &f.upstreams {
            let _ = writeln!(out, "{name}{{upstream=\"{}\"}} {}", esc(&u.addr), pick(u));
        }
    }
    family(
        out,
        "mesos_dns_upstream_latency_seconds",
        "histogram",
        "Round-trip time of answered exchanges per upstream.",
    );
    for u in &f.upstreams {
        let labels = format!("upstream=\"{}\",", esc(&u.addr));
        histogram(
            out,
            "mesos_dns_upstream_latency_seconds",
            &labels,
            &u.latency,
        );
    }
}
