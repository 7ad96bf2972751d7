//! Process assembly: binds the DNS sockets at once (product.md difference 1: in-domain queries
//! get SERVFAIL until the first snapshot, rather than a closed port), starts the UDP workers,
//! the TCP listener and the refresh thread, and stops them on request.
//!
//! Owns thread start-up order and the worker count / pinning policy; holds no query logic.
//! With `zk` it also starts the ZooKeeper detector, which feeds the refresh thread, and
//! reports a fatal `zkDetectionTimeout` through [`Server::fatal_error`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dns::answer::AnswerConfig;
use crate::dns::{tcp, worker};
use crate::forward::Forwarder;
use crate::http::api::ApiState;
use crate::http::{HttpServer, HttpStats};
use crate::mesos::zk::{Detector, ZkUrl};
use crate::metrics::Registry;
use crate::refresh::{Command, RefreshStats, RefreshThread, Refresher};
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
                counters: metrics.new_block(),
                shutdown: shutdown.clone(),
                core: pin.then(|| cores[index % cores.len()]),
                index,
            };
            workers.push(worker::spawn(spec)?);
        }
        let tcp_addr = listener.local_addr()?;
        workers.push(tcp::spawn(
            listener,
            handle.clone(),
            answer_cfg,
            tcp::TcpLimits::default(),
            metrics.clone(),
            forwarder.clone(),
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
    if config.http_on {
        let addr = SocketAddr::new(config.http_listener, config.http_port);
        let state = Arc::new(ApiState {
            handle: handle.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            refresh: refresh_stats.clone(),
            http: HttpStats::default(),
            version: env!("CARGO_PKG_VERSION"),
            forwarder,
        });
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
