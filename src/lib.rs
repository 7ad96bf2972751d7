//! # mesos-dns
//!
//! A drop-in replacement for Mesos-DNS: it polls the leading Mesos master for
//! `/master/state`, turns running tasks, frameworks, agents and masters into DNS records under
//! a domain (default `mesos`) and answers queries for them authoritatively.
//!
//! ## Module map
//! - [`config`]: raw `config.json` (case-insensitive Mesos-DNS keys) → validated [`config::Config`].
//! - [`mesos`]: everything that talks to or models the masters; knows nothing of DNS.
//!   - [`mesos::state`]: the tolerant serde model of `/master/state`.
//!   - [`mesos::fetch`] (+ [`mesos::tls`], [`mesos::auth`]): the masters-list fetch over HTTP(S).
//!   - [`mesos::zk`]: ZooKeeper leader detection on its own thread.
//! - [`records`]: pure `(state, config) → record set`; no I/O.
//!   - [`records::labels`]: RFC 1123 / RFC 952 sanitisers, DomainFrag, the task hash.
//!   - [`records::ip_sources`]: netinfo / docker / mesos / host task IPs.
//!   - [`records::generator`]: every name pattern, and the enumeration data.
//!   - [`records::reverse`]: the PTR index (`ptrOn`): one name per IP, or none.
//! - [`snapshot`]: the immutable, epoch-versioned [`snapshot::Snapshot`] the workers answer
//!   from, and the lock-free publish/read handle.
//! - [`dns`]: the wire format ([`dns::wire`]), the answer rules ([`dns::answer`]) with the
//!   reply parts precomputed per snapshot ([`dns::fragments`]), the UDP workers
//!   ([`dns::worker`], batched I/O in [`dns::batch`], receive coalescing under load in
//!   [`dns::coalesce`]) and DNS over TCP ([`dns::tcp`]); zone
//!   transfers ([`dns::xfr`], TSIG in [`dns::tsig`]) and NOTIFY ([`dns::notify`]).
//! - [`journal`]: the transferred zone's records and the recent differences IXFR answers from.
//! - [`forward`]: names outside the domain: upstream selection, forwarder pool, cache.
//! - [`acl`]: client allow-lists by prefix (`recursionAllowFrom`), checked before forwarding.
//! - [`refresh`]: the refresh thread: fetch → build → publish; keeps the last good snapshot.
//!   [`refresh_priority`]: it runs at `SCHED_IDLE` so a woken worker always gets the core,
//!   with a watchdog that raises a starved refresh.
//! - [`reload`]: hot reload (SIGHUP): which config keys apply live, which need a restart.
//! - [`http`]: the read-only HTTP API (`/v1/...`), `/metrics`, `/health`, `/ready`.
//! - [`metrics`]: per-thread counters, summed when read.
//! - [`server`]: binds the sockets and starts every thread; [`logging`]: the stderr logger.
//! - [`process_memory`]: the process's memory policy (no THP, freed memory kept), set by `main`.
//!
//! ## Threads and data flow
//!
//! ```text
//!   masters / stateFile
//!          │  HTTP(S) GET /master/state (ureq); leader list from the zk-detector thread
//!          ▼
//!   ┌────────────────┐  build next Snapshot off to the side, at SCHED_IDLE
//!   │ refresh thread │──────────────────────────────┐   (refresh-watch raises it
//!   └────────────────┘                              ▼    if a busy core starves it)
//!                                    SnapshotHandle (epoch + Arc<Snapshot>)
//!                                 ┌─────────┬─────────┴──────┬──────────┐
//!                                 ▼         ▼                ▼          ▼
//!                            worker 0   worker N-1      TCP listener   HTTP API
//!                          (UDP socket, SO_REUSEPORT, pinned, reused buffers)
//! ```
//!
//! Workers never block, lock or allocate per query: they read the snapshot through a cached
//! `Arc` that is refreshed only when the published epoch moves.

pub mod acl;
pub mod config;
pub mod dns;
pub mod forward;
pub mod http;
pub mod journal;
pub mod logging;
pub mod mesos;
pub mod metrics;
pub mod process_memory;
pub mod records;
pub mod refresh;
pub mod refresh_priority;
pub mod reload;
pub mod server;
pub mod snapshot;
