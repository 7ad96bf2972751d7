//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): a listener on the same address as the UDP
//! workers, 2-byte length framing, several queries per connection, an idle timeout, and a cap
//! on concurrent connections. Answers come from the same snapshot as UDP.
//!
//! Each connection gets a thread with its own buffers (TCP is the slow path; UDP workers never
//! wait on it). A connection beyond the cap is closed at once and counted; a client that stops
//! reading or writing is dropped after the idle timeout, so no thread is held forever.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::dns::answer::{AnswerConfig, Disposition, Scratch, Transport, answer};
use crate::forward::Forwarder;
use crate::metrics::{Counter, Registry, WorkerCounters};
use crate::snapshot::{SnapshotHandle, SnapshotReader};

/// TCP limits (configurable from the config's `tcp*` keys in a later change).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Most concurrent connections; more are closed at once.
    pub max_connections: usize,
    /// A connection idle (no complete query, or a reply not taken) this long is closed.
    pub idle_timeout: Duration,
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

/// Starts the accept loop.
pub fn spawn(
    listener: TcpListener,
    handle: Arc<SnapshotHandle>,
    config: AnswerConfig,
    limits: TcpLimits,
    metrics: Arc<Registry>,
    forwarder: Option<Arc<Forwarder>>,
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
                let (handle, config, counters, active, shutdown, forwarder) = (
                    handle.clone(),
                    config.clone(),
                    counters.clone(),
                    active.clone(),
                    shutdown.clone(),
                    forwarder.clone(),
                );
                let spawned = std::thread::Builder::new()
                    .name("dns-tcp-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(
                            stream,
                            handle,
                            &config,
                            limits,
                            &counters,
                            forwarder.as_deref(),
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

fn serve(
    mut stream: TcpStream,
    handle: Arc<SnapshotHandle>,
    config: &AnswerConfig,
    limits: TcpLimits,
    counters: &WorkerCounters,
    forwarder: Option<&Forwarder>,
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
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let n = usize::from(u16::from_be_bytes(len));
        stream.read_exact(&mut query[..n])?;
        let (head, body) = reply.split_at_mut(2);
        let mut outcome = answer(
            &query[..n],
            Transport::Tcp,
            reader.get(),
            config,
            body,
            &mut scratch,
        );
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
        stream.write_all(&reply[..2 + outcome.len])?;
        counters.bump(Counter::Sent);
    }
}
