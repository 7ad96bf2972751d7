//! Process assembly: binds the DNS sockets at once (product.md difference 1: in-domain queries
//! get SERVFAIL until the first snapshot, rather than a closed port), starts the UDP workers,
//! the TCP listener and the refresh thread, and stops them on request.
//!
//! Owns thread start-up order and the worker count / pinning policy; holds no query logic.
//! With `zk` it also starts the ZooKeeper detector, which feeds the refresh thread, and
//! reports a fatal `zkDetectionTimeout` through [`Server::fatal_error`]. With
//! `transferAllowFrom` / `notifyTargets` it hooks the IXFR journal and the NOTIFY thread onto
//! the snapshot handle before the first publish. [`Server::reload`] applies a hot reload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::acl::AllowList;
use crate::config::Config;
use crate::dns::answer::AnswerConfig;
use crate::dns::xfr::Xfr;
use crate::dns::{notify, tcp, worker};
use crate::forward::Forwarder;
use crate::http::api::ApiState;
use crate::http::{HttpServer, HttpStats};
use crate::journal::Journal;
use crate::mesos::zk::{Detector, ZkUrl};
use crate::metrics::Registry;
use crate::refresh::{Command, RefreshStats, RefreshThread, Refresher, Reload};
use crate::snapshot::SnapshotHandle;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The masters client cannot be set up (certificate, key or IAM file).
    #[error(transparent)]
    Masters(#[from] crate::mesos::fetch::SetupError),
    /// The `zk` URL cannot be used.
    #[error("zk: {0}")]
    Zk(String),
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Bound UDP address (None when `dnson` is false).
    pub dns_udp: Option<SocketAddr>,
    /// Bound TCP address.
    pub dns_tcp: Option<SocketAddr>,
    /// Bound HTTP address (None when `httpon` is false).
    pub http: Option<SocketAddr>,
    /// Snapshot publisher.
    pub handle: Arc<SnapshotHandle>,
    /// Query counters.
    pub metrics: Arc<Registry>,
    /// Refresh counters.
    pub refresh_stats: Arc<RefreshStats>,
    shutdown: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    http_server: Option<HttpServer>,
    refresh: Option<RefreshThread>,
    detector: Option<Detector>,
    started: Instant,
    zk_detection_timeout: u64,
    /// Hot reload: the config in effect, the HTTP API's copy and the forwarder.
    live: Mutex<Config>,
    api: Option<Arc<ApiState>>,
    forwarder: Option<Arc<Forwarder>>,
}

/// Why [`Server::reload`] refused a new config (the old one stays in effect).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Keys that cannot change without a restart.
    #[error("changing {} needs a restart", .0.join(", "))]
    NeedsRestart(Vec<String>),
    /// The masters client cannot be set up (certificate, key or IAM file).
    #[error(transparent)]
    Masters(#[from] crate::mesos::fetch::SetupError),
    /// The refresh thread is gone or its queue is full.
    #[error("the refresh thread does not take commands")]
    RefreshBusy,
}

/// Number of worker threads: `workers`, or one per available core.
pub fn worker_count(config: &Config) -> usize {
    if config.workers > 0 {
        config.workers
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Starts every part of the server for `config`.
pub fn start(config: &Config) -> Result<Server, StartError> {
    let handle = SnapshotHandle::new();
    let metrics = Arc::new(Registry::default());
    let refresh_stats = Arc::new(RefreshStats::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let answer_cfg = AnswerConfig {
        domain: config.domain.clone(),
        edns_udp_size: config.edns_udp_size,
        recurse_on: config.recurse_on,
        forward: config.external_on,
    };

    let recursion_allow = Arc::new(AllowList::new(config.recursion_allow_from.clone()));

    let mut workers = Vec::new();
    let (mut dns_udp, mut dns_tcp) = (None, None);
    let mut forwarder = None;
    if config.dns_on {
        let n = worker_count(config);
        let (sockets, udp_addr, listener) =
            bind_dns(SocketAddr::new(config.listener, config.port), n)?;
        let sockets: Vec<Arc<std::net::UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
        if config.external_on {
            forwarder = Some(Forwarder::start(config, sockets.clone())?);
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pin = config.pin_workers.unwrap_or(n <= cores.len()) && !cores.is_empty();
        for (index, socket) in sockets.into_iter().enumerate() {
            let spec = worker::WorkerSpec {
                socket,
                forwarder: forwarder.clone(),
                handle: handle.clone(),
                config: answer_cfg.clone(),
                recursion_allow: recursion_allow.clone(),
                counters: metrics.new_block(),
                shutdown: shutdown.clone(),
                core: pin.then(|| cores[index % cores.len()]),
                index,
                coalesce_us: config.udp_coalesce_us,
            };
            workers.push(worker::spawn(spec)?);
        }
        let tcp_addr = listener.local_addr()?;
        // Zone transfers: the IXFR journal (only when someone may transfer) and the NOTIFY
        // thread, both fed by publish hooks, journal first.
        let journal = (!config.transfer_allow_from.is_empty()).then(Arc::<Journal>::default);
        if let Some(j) = journal.clone() {
            handle.on_publish(Box::new(move |old, new| j.record(old, new)));
        }
        if !config.notify_targets.is_empty() {
            let key = config.tsig_keys.first().cloned();
            let (n, join) = notify::spawn(config.notify_targets.clone(), key, shutdown.clone())?;
            handle.on_publish(Box::new(move |old, new| n.published(old, new)));
            workers.push(join);
        }
        workers.push(tcp::spawn(
            listener,
            handle.clone(),
            answer_cfg,
            tcp::TcpLimits::from_config(config),
            metrics.clone(),
            forwarder.clone(),
            Arc::new(Xfr::new(config, journal)),
            recursion_allow,
            shutdown.clone(),
        )?);
        log::info!(
            "{n} UDP workers{}",
            if pin { ", pinned one per core" } else { "" }
        );
        dns_udp = Some(udp_addr);
        dns_tcp = Some(tcp_addr);
    }

    let mut http_server = None;
    let mut api = None;
    if config.http_on {
        let addr = SocketAddr::new(config.http_listener, config.http_port);
        let state = Arc::new(ApiState {
            handle: handle.clone(),
            config: RwLock::new(Arc::new(config.clone())),
            metrics: metrics.clone(),
            refresh: refresh_stats.clone(),
            http: HttpStats::default(),
            version: env!("CARGO_PKG_VERSION"),
            forwarder: forwarder.clone(),
        });
        api = Some(state.clone());
        let srv = HttpServer::start(addr, state, shutdown.clone()).map_err(|source| {
            StartError::Bind {
                what: "HTTP",
                addr,
                source,
            }
        })?;
        http_server = Some(srv);
    }

    let started = Instant::now();
    let refresher = Refresher::new(config, handle.clone(), refresh_stats.clone())?;
    let refresh = RefreshThread::spawn(
        refresher,
        Duration::from_secs(config.refresh_seconds.max(1)),
        config.refresh_priority,
    )?;
    let detector = if config.zk.is_empty() || config.state_file.is_some() {
        None
    } else {
        let url = ZkUrl::parse(&config.zk).map_err(StartError::Zk)?;
        let commands = refresh.commands.clone();
        let on_masters = Box::new(move |list: &[String]| {
            match commands.try_send(Command::Masters(list.to_vec())) {
                Ok(()) | Err(crossbeam_channel::TrySendError::Disconnected(_)) => true,
                Err(crossbeam_channel::TrySendError::Full(_)) => false,
            }
        });
        Some(Detector::spawn(
            url,
            refresh_stats.detection.clone(),
            on_masters,
        )?)
    };

    Ok(Server {
        dns_udp,
        dns_tcp,
        http: http_server.as_ref().map(|h| h.addr),
        http_server,
        handle,
        metrics,
        refresh_stats,
        shutdown,
        workers,
        refresh: Some(refresh),
        detector,
        started,
        zk_detection_timeout: config.zk_detection_timeout,
        live: Mutex::new(config.clone()),
        api,
        forwarder,
    })
}

/// Binds the UDP group and a TCP listener on the same port. With port 0 the UDP group picks
/// a port; if TCP cannot have the same one, try again with a fresh port.
fn bind_dns(
    addr: SocketAddr,
    n: usize,
) -> Result<(Vec<std::net::UdpSocket>, SocketAddr, std::net::TcpListener), StartError> {
    let mut last = None;
    for _ in 0..16 {
        let (sockets, udp_addr) =
            worker::bind_udp_group(addr, n).map_err(|source| StartError::Bind {
                what: "DNS over UDP",
                addr,
                source,
            })?;
        match tcp::bind(udp_addr) {
            Ok(l) => return Ok((sockets, udp_addr, l)),
            Err(source) if addr.port() == 0 => last = Some(source),
            Err(source) => {
                return Err(StartError::Bind {
                    what: "DNS over TCP",
                    addr: udp_addr,
                    source,
                });
            }
        }
    }
    let source = last.unwrap_or_else(|| std::io::Error::other("no free port"));
    Err(StartError::Bind {
        what: "DNS over TCP",
        addr,
        source,
    })
}

impl Server {
    /// A condition that must end the process (exit 1): `zkDetectionTimeout` passed with no
    /// leader ever found. Polled by `main`.
    pub fn fatal_error(&self) -> Option<String> {
        let timed_out = self.detector.is_some()
            && self
                .refresh_stats
                .detection
                .timed_out(self.started, self.zk_detection_timeout);
        timed_out.then(|| {
            format!(
                "master detection timed out after {}s",
                self.zk_detection_timeout
            )
        })
    }

    /// Hot reload (SIGHUP) with `new`, a validated config: refused whole, keeping the old
    /// config, when a key that needs a restart changed ([`crate::reload`]); else the
    /// forwarder and `/v1/config` switch at once, and the refresh thread takes the record,
    /// zone and fetch settings and refreshes at once, so the next snapshot carries them.
    /// Returns the changed keys. Counted in `mesos_dns_config_reloads_total`.
    pub fn reload(&self, new: Config) -> Result<Vec<String>, ReloadError> {
        let result = self.try_reload(new);
        let counter = match result {
            Ok(_) => &self.refresh_stats.reloads_ok,
            Err(_) => &self.refresh_stats.reloads_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Counts a reload that failed before [`Server::reload`] (the file did not validate).
    pub fn reload_failed(&self) {
        self.refresh_stats
            .reloads_failed
            .fetch_add(1, Ordering::Relaxed);
    }

    fn try_reload(&self, new: Config) -> Result<Vec<String>, ReloadError> {
        let mut live = self.live.lock();
        let restart = crate::reload::restart_keys(&live, &new);
        if !restart.is_empty() {
            return Err(ReloadError::NeedsRestart(restart));
        }
        let changed = crate::reload::changed_keys(&live, &new);
        let settings = Reload::from_config(&new)?;
        let commands = &self
            .refresh
            .as_ref()
            .ok_or(ReloadError::RefreshBusy)?
            .commands;
        commands
            .try_send(Command::Reload(Box::new(settings)))
            .map_err(|_| ReloadError::RefreshBusy)?;
        if let Some(f) = &self.forwarder {
            f.reload(&new);
        }
        if let Some(api) = &self.api {
            *api.config.write() = Arc::new(new.clone());
        }
        *live = new;
        Ok(changed)
    }

    /// Stops the threads: workers finish their current batch and exit.
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(d) = self.detector.take() {
            d.stop();
        }
        if let Some(r) = self.refresh.take() {
            r.stop();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(h) = self.http_server.take() {
            h.join();
        }
    }
}
