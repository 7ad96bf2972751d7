//! UDP workers: `N` OS threads, each owning one `SO_REUSEPORT` socket on `listener:port`,
//! optionally pinned one per core. A worker receives a batch of datagrams, answers each from
//! its cached view of the current snapshot into a buffer it reuses, and sends the replies.
//!
//! The query path takes no lock, performs no heap allocation once the scratch space has grown,
//! and makes no syscall besides receiving and sending (`recvmmsg`/`sendmmsg` on Linux). The
//! one other syscall of the loop is per batch, not per query: a busy worker sleeps
//! `udpCoalesceMicros` before its next receive ([`crate::dns::coalesce`]). A worker shares no
//! written memory with another: its counters are its own cache lines.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::acl::AllowList;
use crate::dns::answer::{AnswerConfig, Disposition, Scratch, Transport, answer};
use crate::dns::batch::{BATCH, Batch};
use crate::dns::coalesce::{Coalescer, precise_sleeps};
use crate::forward::Forwarder;
use crate::metrics::{Counter, WorkerCounters};
use crate::snapshot::{SnapshotHandle, SnapshotReader};

/// Receive buffer per socket: large enough to absorb a load generator's opening burst
/// (the "lost" queries of the performance anchors were receive-buffer overflows).
const SOCKET_RCVBUF: usize = 8 << 20;
/// Send buffer per socket.
const SOCKET_SNDBUF: usize = 4 << 20;
/// How often a blocked worker wakes to look at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// Opens `n` UDP sockets on `addr` with `SO_REUSEPORT`. With port 0, the first socket picks
/// the port and the others join it. Returns the sockets and the bound address.
pub fn bind_udp_group(addr: SocketAddr, n: usize) -> io::Result<(Vec<UdpSocket>, SocketAddr)> {
    let mut sockets = Vec::with_capacity(n);
    let mut bound = addr;
    for _ in 0..n.max(1) {
        let s = Socket::new(Domain::for_address(bound), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_port(true)?;
        s.set_reuse_address(true)?;
        if bound.is_ipv6() {
            s.set_only_v6(false).ok();
        }
        // Best effort: the kernel caps these at net.core.{r,w}mem_max.
        s.set_recv_buffer_size(SOCKET_RCVBUF).ok();
        s.set_send_buffer_size(SOCKET_SNDBUF).ok();
        s.bind(&bound.into())?;
        let sock: UdpSocket = s.into();
        sock.set_read_timeout(Some(SHUTDOWN_POLL))?;
        if bound.port() == 0 {
            bound = sock.local_addr()?;
        }
        sockets.push(sock);
    }
    Ok((sockets, bound))
}

/// Everything a worker thread needs.
pub struct WorkerSpec {
    /// Its socket (shared with the forwarder pool, which sends forwarded replies from it).
    pub socket: Arc<UdpSocket>,
    /// The forwarder, when `externalon` is set.
    pub forwarder: Option<Arc<Forwarder>>,
    /// Snapshot publisher.
    pub handle: Arc<SnapshotHandle>,
    /// Answer settings.
    pub config: AnswerConfig,
    /// `recursionAllowFrom`: who may have queries forwarded (others get REFUSED).
    pub recursion_allow: Arc<AllowList>,
    /// Its counters.
    pub counters: Arc<WorkerCounters>,
    /// Set to stop.
    pub shutdown: Arc<AtomicBool>,
    /// Core to pin to, if any.
    pub core: Option<core_affinity::CoreId>,
    /// Worker index (thread name, shuffle seed).
    pub index: usize,
    /// `udpCoalesceMicros`: how long a busy worker waits before its next receive (0 = never).
    pub coalesce_us: u64,
}

/// Starts one worker thread.
pub fn spawn(spec: WorkerSpec) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("dns-worker-{}", spec.index))
        .spawn(move || run(spec))
}

fn run(spec: WorkerSpec) {
    if let Some(core) = spec.core
        && !core_affinity::set_for_current(core)
    {
        log::warn!("worker {}: could not pin to core {}", spec.index, core.id);
    }
    let mut reader = SnapshotReader::new(spec.handle.clone());
    let mut scratch = Scratch::new(seed(spec.index));
    let mut batch = Batch::new();
    let mut coalescer = Coalescer::new(spec.coalesce_us);
    if !coalescer.wait().is_zero() {
        precise_sleeps();
    }
    let counters = &*spec.counters;
    while !spec.shutdown.load(Ordering::Relaxed) {
        let n = match batch.recv(&spec.socket) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                log::warn!("worker {}: receive failed: {e}", spec.index);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Two vDSO clock reads per batch (no syscall): the latency histogram's input.
        let received_at = Instant::now();
        let snap = reader.get();
        for i in 0..n.min(BATCH) {
            let (query, reply) = batch.slot(i);
            let mut outcome = answer(
                query,
                Transport::Udp,
                snap,
                &spec.config,
                reply,
                &mut scratch,
            );
            if outcome.disposition == Disposition::Forward
                && !spec
                    .recursion_allow
                    .permits_peer(batch.peer(i).map(|p| p.ip()))
            {
                let (query, reply) = batch.slot(i);
                let size = spec.config.edns_udp_size;
                outcome = crate::acl::refused_outcome(query, outcome.qtype, size, reply);
                counters.bump(Counter::RecursionRefused);
            }
            counters.record(&outcome);
            let mut len = outcome.len;
            if outcome.disposition == Disposition::Forward
                && let (Some(fwd), Some(peer)) = (&spec.forwarder, batch.peer(i))
            {
                let (query, reply) = batch.slot(i);
                len = fwd.udp_query(spec.index, query, peer, reply);
            }
            batch.set_reply_len(i, len);
        }
        match batch.send(&spec.socket, n) {
            Ok(sent) => {
                counters.add_slot(Counter::Sent as usize, sent as u64);
            }
            Err(_) => counters.bump(Counter::SendErrors),
        }
        counters.observe_latency(received_at.elapsed(), n as u64);
        if let Some(wait) = coalescer.after_receive(n, BATCH) {
            counters.bump(Counter::CoalesceWaits);
            std::thread::sleep(wait);
        }
    }
}

/// A per-worker seed for the answer shuffle, without a syscall.
fn seed(index: usize) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
