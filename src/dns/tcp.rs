//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): a listener on the same address as the UDP
//! workers, 2-byte length framing, several queries per connection, an idle timeout, and a cap
//! on concurrent connections. Answers come from the same snapshot as UDP.
//!
//! Each connection gets a thread with its own buffers (TCP is the slow path; UDP workers never
//! wait on it). A connection beyond the cap (`tcpMaxConnections`) is closed at once and
//! counted; a client that does not complete a query within the idle timeout
//! (`tcpIdleTimeoutSeconds`; trickling bytes does not extend it) or stops reading its replies
//! is dropped, so no thread is held forever.
//! AXFR/IXFR queries for the domain are handed to [`crate::dns::xfr`] on the same thread.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::acl::AllowList;
use crate::dns::answer::{AnswerConfig, Disposition, Scratch, Transport, answer};
use crate::dns::xfr::Xfr;
use crate::forward::Forwarder;
use crate::metrics::{Counter, Registry, WorkerCounters};
use crate::snapshot::{SnapshotHandle, SnapshotReader};

/// TCP limits: `tcpMaxConnections` and `tcpIdleTimeoutSeconds`.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Most concurrent connections; more are closed at once.
    pub max_connections: usize,
    /// A connection idle (no complete query, or a reply not taken) this long is closed.
    pub idle_timeout: Duration,
}

impl TcpLimits {
    /// The limits a validated config sets.
    pub fn from_config(c: &crate::config::Config) -> TcpLimits {
        TcpLimits {
            max_connections: c.tcp_max_connections,
            idle_timeout: Duration::from_secs(c.tcp_idle_timeout_seconds),
        }
    }
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 256,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Binds the TCP listener.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    let l: TcpListener = s.into();
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Starts the accept loop; `xfr` answers the zone transfer queries; clients outside
/// `recursion_allow` get REFUSED for names the forwarder would have taken.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    listener: TcpListener,
    handle: Arc<SnapshotHandle>,
    config: AnswerConfig,
    limits: TcpLimits,
    metrics: Arc<Registry>,
    forwarder: Option<Arc<Forwarder>>,
    xfr: Arc<Xfr>,
    recursion_allow: Arc<AllowList>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("dns-tcp".into())
        .spawn(move || {
            let counters = metrics.new_shared_block();
            while !shutdown.load(Ordering::Relaxed) {
                let (stream, peer) = match listener.accept() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(e) => {
                        log::warn!("tcp accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if active.load(Ordering::Acquire) >= limits.max_connections {
                    counters.bump(Counter::TcpRejected);
                    drop(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::AcqRel);
                let allow = recursion_allow.clone();
                let (handle, config, counters, active, shutdown, forwarder, xfr) = (
                    handle.clone(),
                    config.clone(),
                    counters.clone(),
                    active.clone(),
                    shutdown.clone(),
                    forwarder.clone(),
                    xfr.clone(),
                );
                let spawned = std::thread::Builder::new()
                    .name("dns-tcp-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(
                            stream,
                            peer,
                            handle,
                            &config,
                            limits,
                            &counters,
                            forwarder.as_deref(),
                            &xfr,
                            &allow,
                            &shutdown,
                        ) {
                            log::debug!("tcp connection from {peer}: {e}");
                        }
                        active.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    log::warn!("tcp: could not start a connection thread");
                }
            }
        })
}

/// A shuffle seed per connection: a process-wide counter mixed with the clock. A fixed seed
/// gave every connection the same first answer order, and most TCP clients send one query
/// per connection.
fn connection_seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Fills `buf` before `deadline`. A per-read timeout alone restarts with every byte, so a
/// client trickling one byte at a time could hold a connection (and its thread) for hours.
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` within `limit`. The per-write timeout restarts whenever the kernel takes
/// a few bytes, so a client that never reads could hold the connection for as long as its
/// buffers keep growing; the reply as a whole must be taken in time. Leaves the write timeout
/// at `limit` (zone transfers rely on it).
fn write_by(stream: &mut TcpStream, buf: &[u8], limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut sent = 0;
    let mut shortened = false;
    let result = loop {
        if sent == buf.len() {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(io::ErrorKind::TimedOut.into());
        }
        if sent > 0 {
            // The first write has the full limit already (set when the connection started).
            stream.set_write_timeout(Some(left))?;
            shortened = true;
        }
        match stream.write(&buf[sent..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(k) => sent += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if shortened {
        stream.set_write_timeout(Some(limit))?;
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    handle: Arc<SnapshotHandle>,
    config: &AnswerConfig,
    limits: TcpLimits,
    counters: &WorkerCounters,
    forwarder: Option<&Forwarder>,
    xfr: &Xfr,
    recursion_allow: &AllowList,
    shutdown: &AtomicBool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(limits.idle_timeout))?;
    stream.set_write_timeout(Some(limits.idle_timeout))?;
    stream.set_nodelay(true).ok();
    let mut reader = SnapshotReader::new(handle);
    let mut scratch = Scratch::new(connection_seed());
    let mut query = vec![0u8; 65_535];
    let mut reply = vec![0u8; 65_537];
    loop {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The whole query (prefix and message) must arrive within the idle timeout.
        let deadline = Instant::now() + limits.idle_timeout;
        let mut len = [0u8; 2];
        match read_by(&mut stream, &mut len, deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let n = usize::from(u16::from_be_bytes(len));
        read_by(&mut stream, &mut query[..n], deadline)?;
        if xfr.is_transfer(&query[..n]) {
            counters.bump(Counter::Tcp);
            let mut out = io::BufWriter::with_capacity(1 << 16, &stream);
            xfr.serve(&mut out, &query[..n], peer.ip(), reader.get())?;
            continue;
        }
        let (head, body) = reply.split_at_mut(2);
        let mut outcome = answer(
            &query[..n],
            Transport::Tcp,
            reader.get(),
            config,
            body,
            &mut scratch,
        );
        if outcome.disposition == Disposition::Forward && !recursion_allow.permits(peer.ip()) {
            let size = config.edns_udp_size;
            outcome = crate::acl::refused_outcome(&query[..n], outcome.qtype, size, body);
            counters.bump(Counter::RecursionRefused);
        }
        counters.bump(Counter::Tcp);
        counters.record(&outcome);
        if outcome.disposition == Disposition::Forward {
            outcome.len = forwarder.map_or(0, |f| f.tcp_query(&query[..n], body));
        }
        if outcome.len == 0 {
            // A packet we drop over UDP ends the connection over TCP: the stream is suspect.
            return Ok(());
        }
        head.copy_from_slice(&(outcome.len as u16).to_be_bytes());
        write_by(&mut stream, &reply[..2 + outcome.len], limits.idle_timeout)?;
        counters.bump(Counter::Sent);
    }
}
