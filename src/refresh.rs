//! The refresh thread: every `refreshSeconds` it fetches the state (masters or `stateFile`),
//! builds the next [`Snapshot`] off to the side and publishes it with epoch + 1.
//!
//! A failed fetch or build never replaces a good snapshot: the last good records keep being
//! served, the failure is counted by kind and logged once per distinct error (and once more
//! on recovery). This thread is the only one that does network I/O towards the masters or
//! name lookups for records; it never touches a DNS socket. With `zk`, the ZooKeeper detector
//! ([`crate::mesos::zk`]) sends each new masters list as [`Command::Masters`]; the thread
//! switches to it and refreshes at once. A hot reload (SIGHUP) arrives as
//! [`Command::Reload`]: the new record-shaping and fetch settings replace the old ones between
//! two refreshes, and the thread refreshes at once, so the next snapshot carries them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::config::Config;
use crate::mesos::fetch::{FetchError, Fetcher, SetupError};
use crate::mesos::hosts::SystemHosts;
use crate::mesos::zk::Detection;
use crate::records::generator::{GenConfig, HostResolver, generate};
use crate::refresh_priority::{PriorityGuard, RefreshPriority};
use crate::snapshot::{Snapshot, SnapshotHandle, Zone, unix_now};

/// Counters of the refresh thread, read by metrics and `/ready`.
#[derive(Debug, Default)]
pub struct RefreshStats {
    /// Successful refreshes.
    pub ok: AtomicU64,
    /// Failed refreshes.
    pub failed: AtomicU64,
    /// Size in bytes of the last good state document.
    pub state_bytes: AtomicU64,
    /// Duration of the last good refresh (fetch + build + publish), microseconds.
    pub last_duration_us: AtomicU64,
    /// Unix time of the last good refresh, 0 before the first.
    pub last_ok_unix: AtomicU64,
    /// Failures by kind (`FetchError::kind`).
    pub failures_by_kind: Mutex<Vec<(&'static str, u64)>>,
    /// The last error text, empty after a success.
    pub last_error: Mutex<String>,
    /// Leader detection status (ZooKeeper or static).
    pub detection: Arc<Detection>,
    /// Config reloads applied (SIGHUP).
    pub reloads_ok: AtomicU64,
    /// Config reloads refused (invalid config, or a key that needs a restart).
    pub reloads_failed: AtomicU64,
    /// Refreshes the watchdog raised from idle to normal priority (starved by a busy core).
    pub priority_raised: AtomicU64,
    /// Raises the kernel refused (no CAP_SYS_NICE and a low RLIMIT_NICE).
    pub priority_raise_failed: AtomicU64,
}

impl RefreshStats {
    fn count_failure(&self, kind: &'static str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut by_kind = self.failures_by_kind.lock();
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => by_kind.push((kind, 1)),
        }
    }
}

/// Messages to the refresh thread.
#[derive(Debug, Clone)]
pub enum Command {
    /// Refresh now.
    RefreshNow,
    /// Use this masters list (leader first) from now on, and refresh now.
    Masters(Vec<String>),
    /// Hot reload: use these settings from now on, and refresh now.
    Reload(Box<Reload>),
    /// Stop the thread.
    Stop,
}

/// The settings a hot reload hands to the refresh thread, all taken from one validated config.
#[derive(Debug, Clone)]
pub struct Reload {
    /// Record shaping.
    pub gen_config: GenConfig,
    /// Zone parameters (TTL, SOA, `ptrOn`, ...).
    pub zone: Zone,
    /// The state source (masters or `stateFile`, TLS, auth, limits).
    pub fetcher: Fetcher,
    /// The new masters list; `None` keeps the current one (with `zk`, the detector owns it).
    pub masters: Option<Vec<String>>,
    /// `refreshSeconds`.
    pub period: Duration,
}

impl Reload {
    /// The reload settings of a validated config (reads its certificate, key and IAM files).
    pub fn from_config(config: &Config) -> Result<Reload, SetupError> {
        let zk_owns_masters = !config.zk.is_empty() && config.state_file.is_none();
        Ok(Reload {
            gen_config: GenConfig::from_config(config),
            zone: Zone::from_config(config),
            fetcher: fetcher_for(config)?,
            masters: (!zk_owns_masters).then(|| initial_masters(config)),
            period: Duration::from_secs(config.refresh_seconds.max(1)),
        })
    }
}

/// Everything one refresh needs.
pub struct Refresher {
    fetcher: Fetcher,
    gen_config: GenConfig,
    zone: Zone,
    masters: Vec<String>,
    /// With `zk` and no static masters: skip polls until the detector names a master.
    wait_for_masters: bool,
    hosts: Box<dyn HostResolver + Send>,
    handle: Arc<SnapshotHandle>,
    stats: Arc<RefreshStats>,
    last_logged_error: Option<String>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("masters", &self.masters)
            .finish_non_exhaustive()
    }
}

/// Builds the fetcher for a config (reads the certificate, key and IAM files).
pub fn fetcher_for(config: &Config) -> Result<Fetcher, SetupError> {
    Fetcher::new(config)
}

/// The initial masters list (§5.1): the configured `masters`, or with `zk` `["", masters...]`
/// (leader unknown).
pub fn initial_masters(config: &Config) -> Vec<String> {
    if config.zk.is_empty() || config.state_file.is_some() {
        config.masters.clone()
    } else {
        std::iter::once(String::new())
            .chain(config.masters.iter().cloned())
            .collect()
    }
}

impl Refresher {
    /// A refresher for `config`, publishing into `handle`.
    pub fn new(
        config: &Config,
        handle: Arc<SnapshotHandle>,
        stats: Arc<RefreshStats>,
    ) -> Result<Self, SetupError> {
        let masters = initial_masters(config);
        Ok(Refresher {
            fetcher: fetcher_for(config)?,
            gen_config: GenConfig::from_config(config),
            zone: Zone::from_config(config),
            wait_for_masters: config.state_file.is_none() && masters.iter().all(String::is_empty),
            masters,
            hosts: Box::new(SystemHosts),
            handle,
            stats,
            last_logged_error: None,
        })
    }

    /// Switches to a new masters list (leader first).
    pub fn set_masters(&mut self, masters: Vec<String>) {
        if masters.iter().any(|m| !m.is_empty()) {
            self.wait_for_masters = false;
        }
        self.masters = masters;
    }

    /// Applies a hot reload; the next refresh uses the new settings.
    pub fn apply(&mut self, r: Reload) {
        self.fetcher = r.fetcher;
        self.gen_config = r.gen_config;
        self.zone = r.zone;
        if let Some(masters) = r.masters {
            self.wait_for_masters =
                self.fetcher.state_file.is_none() && masters.iter().all(String::is_empty);
            self.masters = masters;
        }
    }

    /// The masters list in use.
    pub fn masters(&self) -> &[String] {
        &self.masters
    }

    /// One refresh: fetch, build, publish. On failure the current snapshot stays.
    pub fn refresh_once(&mut self) -> Result<(), FetchError> {
        if self.wait_for_masters {
            // ZooKeeper has not named a master yet: nothing to poll, and not a failure.
            log::debug!("refresh skipped: waiting for ZooKeeper to name a master");
            return Ok(());
        }
        let started = Instant::now();
        let result = self.fetcher.fetch(&self.masters);
        match result {
            Ok(fetched) => {
                let generated = generate(
                    &fetched.state,
                    &self.gen_config,
                    &self.masters,
                    &*self.hosts,
                );
                let leader = fetched.state.leader.as_str().to_owned();
                drop(fetched.state);
                let prev = self.handle.current();
                let prev_stats = prev.as_ref().map(|p| p.stats);
                let snap = Snapshot::new(generated, self.zone.clone(), leader, prev.as_deref());
                drop(prev);
                let s = &snap.stats;
                let skipped = s.frameworks_skipped + s.tasks_skipped + s.slaves_skipped;
                // Logged when the picture changes, not on every poll of the same bad state.
                let changed = prev_stats.is_none_or(|p| p != *s);
                if changed && skipped + s.bad_port_parts + s.invalid_names > 0 {
                    log::warn!(
                        "state from {}: skipped {} frameworks, {} tasks, {} agents, {} port parts, {} invalid names",
                        fetched.source,
                        s.frameworks_skipped,
                        s.tasks_skipped,
                        s.slaves_skipped,
                        s.bad_port_parts,
                        s.invalid_names
                    );
                }
                let (a, aaaa, srv) = snap.records.counts();
                log::debug!(
                    "snapshot epoch {} serial {}: {a} A, {aaaa} AAAA, {srv} SRV from {} ({} bytes)",
                    snap.epoch,
                    snap.serial,
                    fetched.source,
                    fetched.bytes
                );
                if log::log_enabled!(log::Level::Trace) {
                    // The original's -v=2: every record on each refresh.
                    for (name, rr) in snap.records.iter() {
                        for ip in &rr.a {
                            log::trace!("[A]\t{name}: {ip}");
                        }
                        for ip in &rr.aaaa {
                            log::trace!("[AAAA]\t{name}: {ip}");
                        }
                        for s in &rr.srv {
                            log::trace!("[SRV]\t{name}: {}", snap.records.srv_text(s));
                        }
                    }
                }
                self.handle.publish(snap);
                let st = &self.stats;
                st.ok.fetch_add(1, Ordering::Relaxed);
                st.state_bytes.store(fetched.bytes, Ordering::Relaxed);
                st.last_duration_us
                    .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                st.last_ok_unix.store(unix_now(), Ordering::Relaxed);
                st.last_error.lock().clear();
                if self.last_logged_error.take().is_some() {
                    log::info!("state refresh recovered: serving fresh records again");
                }
                Ok(())
            }
            Err(e) => {
                self.stats.count_failure(e.kind());
                let text = e.to_string();
                if self.last_logged_error.as_deref() != Some(text.as_str()) {
                    log::error!(
                        "state refresh failed ({}): {text}; keeping the last good records",
                        e.kind()
                    );
                    self.last_logged_error = Some(text.clone());
                }
                *self.stats.last_error.lock() = text;
                Err(e)
            }
        }
    }
}

/// The running refresh thread.
#[derive(Debug)]
pub struct RefreshThread {
    /// Sends commands to the thread.
    pub commands: Sender<Command>,
    join: JoinHandle<()>,
    guard: Arc<PriorityGuard>,
}

impl RefreshThread {
    /// Starts the thread at `priority` (and its watchdog, see [`crate::refresh_priority`]);
    /// it refreshes at once, then every `period`.
    pub fn spawn(
        mut refresher: Refresher,
        mut period: Duration,
        priority: RefreshPriority,
    ) -> std::io::Result<RefreshThread> {
        let (tx, rx): (Sender<Command>, Receiver<Command>) = crossbeam_channel::bounded(16);
        let guard = PriorityGuard::new(priority, refresher.stats.clone());
        let g = guard.clone();
        let join = std::thread::Builder::new()
            .name("refresh".into())
            .spawn(move || {
                g.enter();
                // The watchdog ends with this thread, however it returns.
                struct StopOnExit(Arc<PriorityGuard>);
                impl Drop for StopOnExit {
                    fn drop(&mut self) {
                        self.0.stop();
                    }
                }
                let _stop = StopOnExit(g.clone());
                loop {
                    g.begin();
                    let _ = refresher.refresh_once();
                    g.end();
                    match rx.recv_timeout(period) {
                        Ok(Command::RefreshNow) | Err(RecvTimeoutError::Timeout) => {}
                        Ok(Command::Masters(mut list)) => {
                            // Only the newest list matters if several queued up.
                            while let Ok(cmd) = rx.try_recv() {
                                match cmd {
                                    Command::Masters(l) => list = l,
                                    Command::RefreshNow => {}
                                    Command::Reload(r) => {
                                        period = r.period;
                                        refresher.apply(*r);
                                    }
                                    Command::Stop => return,
                                }
                            }
                            log::debug!("masters list from ZooKeeper: {list:?}");
                            refresher.set_masters(list);
                        }
                        Ok(Command::Reload(r)) => {
                            log::debug!("applying the reloaded config; refreshing now");
                            period = r.period;
                            refresher.apply(*r);
                        }
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    refresher.handle.collect_retired();
                }
            })?;
        if let Err(e) = guard.spawn_watchdog() {
            guard.stop();
            let _ = tx.send(Command::Stop);
            return Err(e);
        }
        Ok(RefreshThread {
            commands: tx,
            join,
            guard,
        })
    }

    /// Asks the thread to stop. It is not joined: a fetch in flight may take up to
    /// `stateTimeoutSeconds`, and shutdown must not wait for a master.
    pub fn stop(self) {
        self.guard.stop();
        let _ = self.commands.send(Command::Stop);
        drop(self.join);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_masters_list_has_an_unknown_leader_first_with_zk() {
        let mut c = crate::config::default_config();
        c.masters = vec!["10.0.0.1:5050".into()];
        assert_eq!(initial_masters(&c), ["10.0.0.1:5050"]);
        c.zk = "zk://10.0.0.9:2181/mesos".into();
        assert_eq!(initial_masters(&c), ["", "10.0.0.1:5050"]);
        c.state_file = Some("/tmp/x.json".into());
        assert_eq!(initial_masters(&c), ["10.0.0.1:5050"]);
    }

    #[test]
    fn with_zk_and_no_static_masters_polls_wait_for_the_detector() {
        let mut c = crate::config::default_config();
        c.zk = "zk://10.0.0.9:2181/mesos".into();
        c.state_timeout_seconds = 2;
        let stats = Arc::new(RefreshStats::default());
        let mut r = Refresher::new(&c, SnapshotHandle::new(), stats.clone()).expect("refresher");
        assert!(r.refresh_once().is_ok());
        assert_eq!(
            stats.failed.load(Ordering::Relaxed),
            0,
            "waiting is not a failure"
        );
        r.set_masters(vec!["127.0.0.1:1".into()]);
        assert!(r.refresh_once().is_err(), "now it polls");
        assert_eq!(r.masters(), ["127.0.0.1:1"]);
    }
}
