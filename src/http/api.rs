//! Routes of the HTTP API: the original's `/v1/...` endpoints with their paths, JSON shapes,
//! key names and status codes (behaviour reference §6), plus `/metrics`, `/health` and
//! `/ready`. Pure functions of the published snapshot and the counters; no I/O here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::http::HttpStats;
use crate::metrics::Registry;
use crate::refresh::RefreshStats;
use crate::snapshot::{Snapshot, SnapshotHandle, unix_now};

/// Everything the routes read.
#[derive(Debug)]
pub struct ApiState {
    /// Snapshot publisher.
    pub handle: Arc<SnapshotHandle>,
    /// The effective config; a hot reload swaps it (read it with [`ApiState::config`]).
    pub config: RwLock<Arc<Config>>,
    /// DNS counters.
    pub metrics: Arc<Registry>,
    /// Refresh counters.
    pub refresh: Arc<RefreshStats>,
    /// HTTP counters.
    pub http: HttpStats,
    /// Version string.
    pub version: &'static str,
    /// The forwarder (for its metrics), when DNS and `externalon` are on.
    pub forwarder: Option<Arc<crate::forward::Forwarder>>,
}

impl ApiState {
    /// The effective config (the newest after a hot reload).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    /// A `200 application/json` reply, indented with one space per level like go-restful.
    fn json<T: Serialize>(value: &T) -> Response {
        let mut body = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut body, fmt);
        if value.serialize(&mut ser).is_err() {
            return Response::text(500, "500: Internal Server Error");
        }
        Response {
            status: 200,
            content_type: "application/json",
            body,
        }
    }
}

/// Longest path we route; longer ones get 414 (no name is this long).
const MAX_PATH: usize = 2048;

/// True when the Accept header allows JSON (absent, `*/*`, `application/*`, `application/json`).
fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        matches!(media, "" | "*/*" | "application/*" | "application/json")
    })
}

/// Dispatches one request. `method` is `GET` for HEAD too.
pub fn route(state: &ApiState, method: &str, path: &str, accept: Option<&str>) -> Response {
    if path.len() > MAX_PATH {
        return Response::text(414, "414: URI Too Long");
    }
    let path = path.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    enum Route<'a> {
        Version,
        Config,
        Hosts(&'a str),
        HostPorts,
        Services(&'a str),
        Enumerate,
        Axfr,
        Metrics,
        Health,
        Ready,
    }
    let r = match segments.as_slice() {
        ["v1", "version"] => Route::Version,
        ["v1", "config"] => Route::Config,
        ["v1", "hosts", host] if !host.is_empty() => Route::Hosts(host),
        ["v1", "hosts", host, "ports"] if !host.is_empty() => Route::HostPorts,
        ["v1", "services", svc] if !svc.is_empty() => Route::Services(svc),
        ["v1", "enumerate"] if state.config().enumeration_on => Route::Enumerate,
        ["v1", "axfr"] if state.config().enumeration_on => Route::Axfr,
        ["metrics"] => Route::Metrics,
        ["health"] => Route::Health,
        ["ready"] => Route::Ready,
        _ => return Response::text(404, "404: Page Not Found"),
    };
    if method != "GET" {
        return Response::text(405, "405: Method Not Allowed");
    }
    let is_v1 = !matches!(r, Route::Metrics | Route::Health | Route::Ready);
    if is_v1 && !accepts_json(accept) {
        return Response::text(406, "406: Not Acceptable");
    }
    let snap = state.handle.current();
    match r {
        Route::Version => Response::json(&json!({
            "Service": "Mesos-DNS",
            "URL": "https://github.com/mesosphere/mesos-dns",
            "Version": state.version,
        })),
        Route::Config => {
            let mut v = state.config().masked_json();
            if let (Some(s), Some(obj)) = (&snap, v.as_object_mut()) {
                obj.insert("SOASerial".into(), s.serial.into());
            }
            Response::json(&v)
        }
        Route::HostPorts => Response::text(501, "To be implemented..."),
        Route::Metrics => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: crate::http::prometheus::render(state, snap.as_deref()).into_bytes(),
        },
        Route::Health => Response::text(200, "ok\n"),
        Route::Ready => ready(state, snap.as_deref()),
        Route::Hosts(host) => with_snapshot(snap.as_deref(), |s| Response::json(&hosts(s, host))),
        Route::Services(svc) => {
            with_snapshot(snap.as_deref(), |s| Response::json(&services(s, svc)))
        }
        Route::Enumerate => with_snapshot(snap.as_deref(), |s| {
            Response::json(&s.enumeration.view(&s.records))
        }),
        Route::Axfr => with_snapshot(snap.as_deref(), |s| Response::json(&axfr(state, s))),
    }
}

fn with_snapshot(snap: Option<&Snapshot>, f: impl FnOnce(&Snapshot) -> Response) -> Response {
    match snap {
        Some(s) => f(s),
        None => Response::text(503, "503: no Mesos state loaded yet"),
    }
}

/// `/ready`: a snapshot is loaded and, with `maxStalenessSeconds`, recent enough.
fn ready(state: &ApiState, snap: Option<&Snapshot>) -> Response {
    let Some(_) = snap else {
        let err = state.refresh.last_error.lock().clone();
        let why = if err.is_empty() {
            "no state loaded yet".to_owned()
        } else {
            format!("no state loaded yet: {err}")
        };
        return Response::text(503, &format!("not ready: {why}\n"));
    };
    let max = state.config().max_staleness_seconds;
    let last_ok = state.refresh.last_ok_unix.load(Ordering::Relaxed);
    let age = unix_now().saturating_sub(last_ok);
    if max > 0 && age > max {
        return Response::text(
            503,
            &format!("not ready: last good refresh {age}s ago (maxStalenessSeconds {max})\n"),
        );
    }
    Response::text(200, "ready\n")
}

/// The original's name normalisation: lowercase, every ".*" removed, a trailing dot.
fn normalise(name: &str) -> String {
    let mut n = name.to_ascii_lowercase().replace(".*", "");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

#[derive(Serialize)]
struct HostItem {
    host: String,
    ip: String,
}

fn hosts(snap: &Snapshot, host: &str) -> Vec<HostItem> {
    let name = normalise(host);
    let items: Vec<HostItem> = snap
        .addresses(&name)
        .into_iter()
        .map(|ip| HostItem {
            host: name.clone(),
            ip: ip.to_string(),
        })
        .collect();
    if items.is_empty() {
        vec![HostItem {
            host: String::new(),
            ip: String::new(),
        }]
    } else {
        items
    }
}

#[derive(Serialize)]
struct ServiceItem {
    service: String,
    host: String,
    ip: String,
    port: String,
}

fn services(snap: &Snapshot, service: &str) -> Vec<ServiceItem> {
    let name = normalise(service);
    let mut items = Vec::new();
    if let Some(rr) = snap.lookup(&name) {
        for srv in &rr.srv {
            let target = snap.records.name(srv.target);
            let Some(trr) = snap.lookup(target) else {
                continue;
            };
            let mut push = |ip: String| {
                items.push(ServiceItem {
                    service: service.to_owned(),
                    host: target.to_owned(),
                    ip,
                    port: srv.port.to_string(),
                })
            };
            if let Some(a) = trr.a.first() {
                push(a.to_string());
            }
            if let Some(aaaa) = trr.aaaa.first() {
                push(aaaa.to_string());
            }
        }
    }
    if items.is_empty() {
        items.push(ServiceItem {
            service: String::new(),
            host: String::new(),
            ip: String::new(),
            port: String::new(),
        });
    }
    items
}

fn axfr(state: &ApiState, snap: &Snapshot) -> Value {
    json!({
        "TTL": snap.zone.ttl,
        "Serial": snap.serial,
        "RefreshSeconds": state.config().refresh_seconds,
        "Mname": snap.zone.mname,
        "Rname": snap.zone.rname,
        "Domain": snap.zone.domain,
        "Records": snap.records.axfr_records(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_rules() {
        assert!(accepts_json(None));
        assert!(accepts_json(Some("*/*")));
        assert!(accepts_json(Some("application/json")));
        assert!(accepts_json(Some("text/html, application/json;q=0.9")));
        assert!(!accepts_json(Some("text/html")));
    }

    #[test]
    fn names_are_normalised_like_the_original() {
        assert_eq!(
            normalise("Chronos.*.Marathon.mesos"),
            "chronos.marathon.mesos."
        );
        assert_eq!(normalise("leader.mesos."), "leader.mesos.");
    }
}
