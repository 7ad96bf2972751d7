//! The forwarder threads: each takes jobs (whole UDP queries, by value) from the shared
//! bounded queue and keeps up to [`MAX_IN_FLIGHT`] of them in flight at once.
//!
//! For each job a thread picks the upstream list and order ([`super::upstream`]), then per
//! attempt opens a fresh UDP socket bound to port 0 (a random source port from the kernel),
//! connects it to the upstream and sends the client's query with a new random ID. It waits
//! with `poll(2)` on every in-flight socket plus a wake-up socket that workers signal when it
//! is parked, so one slow upstream never holds the others up. A reply is accepted only from
//! the upstream's address (the socket is connected), with our ID and the question we sent;
//! anything else is counted as an upstream error and ignored. A timeout or an error moves on
//! to the next upstream; when every one failed the client gets SERVFAIL.
//!
//! Replies go out from the socket of the worker that received the query. This module never
//! answers a query by itself beyond relaying and SERVFAIL/REFUSED, never blocks on one
//! upstream, and never panics on any reply.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use socket2::{Domain, Protocol, Socket, Type};

use super::cache::KEY_MAX;
use super::upstream::{Order, Upstreams};
use super::{Shared, msg};
use crate::dns::wire::{self, rcode};

/// Largest query a job carries: the workers' receive buffer (a longer datagram is cut there).
pub(crate) const MAX_QUERY: usize = 4096;
/// Most queries one forwarder thread keeps in flight; beyond that it leaves jobs queued.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;
/// Longest a forwarder sleeps without looking at the queue's state (shutdown is noticed
/// through the queue disconnecting).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Largest upstream reply over UDP.
const RECV_BUF: usize = 65_535;

/// A UDP query handed from a worker to the pool. Fixed size, moved by value through the
/// bounded queue: handing over allocates nothing.
pub(crate) struct Job {
    /// The worker whose socket received the query (and sends the reply).
    pub(crate) worker: usize,
    /// The client.
    pub(crate) peer: SocketAddr,
    /// When the worker handed it over.
    pub(crate) received: Instant,
    /// Bytes used in `query`.
    pub(crate) len: usize,
    /// The query as received.
    pub(crate) query: [u8; MAX_QUERY],
}

/// A forwarder thread's wake-up line: a worker that queued a job writes a byte when the
/// thread said it is about to sleep in `poll`.
#[derive(Debug)]
pub(crate) struct Waker {
    parked: AtomicBool,
    tx: UnixDatagram,
    rx: UnixDatagram,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let (tx, rx) = UnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Waker {
            parked: AtomicBool::new(false),
            tx,
            rx,
        })
    }

    /// Wakes the thread if it is parked; returns whether it was. The caller has queued a
    /// job and issued a SeqCst fence, the thread sets `parked` and fences before it looks at
    /// the queue: one of the two always sees the other.
    pub(crate) fn wake(&self) -> bool {
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::SeqCst) {
            // A full socket buffer means a wake-up is already pending.
            let _ = self.tx.send(&[1]);
            return true;
        }
        false
    }

    fn drain(&self) {
        let mut b = [0u8; 64];
        while self.rx.recv(&mut b).is_ok() {}
    }
}

/// A small fast PRNG (wyrand) for upstream message IDs, reseeded from the standard
/// library's per-process random keys every 4096 draws.
pub(crate) struct Rng {
    s: u64,
    left: u32,
}

impl Rng {
    pub(crate) fn new() -> Rng {
        Rng {
            s: fresh_seed(),
            left: 4096,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.left == 0 {
            self.s ^= fresh_seed();
            self.left = 4096;
        }
        self.left -= 1;
        self.s = self.s.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.s) * u128::from(self.s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    pub(crate) fn id(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }
}

/// 64 random bits: `RandomState` keys come from the OS once per thread, then vary per call.
pub(crate) fn fresh_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((
        Instant::now(),
        std::thread::current().id(),
        std::process::id(),
    ))
}

/// A UDP socket bound to port 0 of `upstream`'s family, connected to it, non-blocking.
pub(crate) fn open_udp(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(
        Domain::for_address(upstream),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    s.set_nonblocking(true)?;
    let any: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    s.bind(&any.into())?;
    s.connect(&upstream.into())?;
    Ok(s.into())
}

/// What a thread knows about a query in flight.
struct InFlight {
    job: Job,
    client_id: u16,
    key: [u8; KEY_MAX],
    key_len: usize,
    qname_len: usize,
    qtype: u16,
    qclass: u16,
    limit: usize,
    /// The upstream lists `order` and `upstream` index into.
    ups: Arc<Upstreams>,
    order: Order,
    /// Index into `order` of the current attempt.
    attempt: usize,
    /// The current attempt's upstream (index for `Upstreams::get`).
    upstream: usize,
    sock: Option<UdpSocket>,
    upstream_id: u16,
    sent: Instant,
    deadline: Instant,
    done: bool,
}

impl InFlight {
    fn qname(&self) -> &[u8] {
        self.key.get(..self.qname_len).unwrap_or(&[])
    }
}

/// Starts forwarder thread `me`.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    rx: Receiver<Job>,
    me: usize,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("dns-forward-{me}"))
        .spawn(move || Runner::new(shared, rx, me).run())
}

struct Runner {
    shared: Arc<Shared>,
    rx: Receiver<Job>,
    me: usize,
    inflight: Vec<InFlight>,
    pfds: Vec<libc::pollfd>,
    /// `pfds[i + 1]` watches `inflight[map[i]]`.
    map: Vec<usize>,
    buf: Box<[u8]>,
    rng: Rng,
}

impl Runner {
    fn new(shared: Arc<Shared>, rx: Receiver<Job>, me: usize) -> Runner {
        Runner {
            shared,
            rx,
            me,
            inflight: Vec::with_capacity(MAX_IN_FLIGHT),
            pfds: Vec::with_capacity(MAX_IN_FLIGHT + 1),
            map: Vec::with_capacity(MAX_IN_FLIGHT),
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            rng: Rng::new(),
        }
    }

    fn run(mut self) {
        loop {
            // Take what the queue holds, up to the in-flight cap.
            let mut disconnected = false;
            while self.inflight.len() < MAX_IN_FLIGHT {
                match self.rx.try_recv() {
                    Ok(job) => self.begin(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if disconnected && self.inflight.is_empty() {
                return;
            }
            let now = Instant::now();
            self.expire(now);
            self.sweep();
            self.wait(now);
            self.sweep();
        }
    }

    /// Moves attempts past their deadline on to the next upstream (or SERVFAIL).
    fn expire(&mut self, now: Instant) {
        for i in 0..self.inflight.len() {
            let Some(f) = self.inflight.get(i) else {
                continue;
            };
            if f.done || f.deadline > now {
                continue;
            }
            f.ups.timed_out(f.upstream, now);
            self.next_attempt(i);
        }
    }

    /// Sleeps in `poll` until a reply, a deadline, or a wake-up; then reads every socket
    /// that is ready.
    fn wait(&mut self, now: Instant) {
        let can_take = self.inflight.len() < MAX_IN_FLIGHT;
        let next_deadline = self
            .inflight
            .iter()
            .filter(|f| !f.done)
            .map(|f| f.deadline)
            .min();
        let mut timeout = next_deadline.map_or(IDLE_POLL, |d| {
            d.saturating_duration_since(now).min(IDLE_POLL)
        });
        let waker = self.shared.wakers.get(self.me);
        if let Some(w) = waker
            && can_take
        {
            w.parked.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !self.rx.is_empty() {
                w.parked.store(false, Ordering::Relaxed);
                timeout = Duration::ZERO;
            }
        }
        self.pfds.clear();
        self.map.clear();
        self.pfds.push(libc::pollfd {
            fd: waker.map_or(-1, |w| w.rx.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        });
        for (i, f) in self.inflight.iter().enumerate() {
            if let (false, Some(s)) = (f.done, &f.sock) {
                self.pfds.push(libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                self.map.push(i);
            }
        }
        // Round up so that a deadline a fraction of a millisecond away is not a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfds` is a live, initialised slice of `pollfd` and its length is passed
        // with it; the kernel writes only `revents` within it.
        let ready =
            unsafe { libc::poll(self.pfds.as_mut_ptr(), self.pfds.len() as libc::nfds_t, ms) };
        if let Some(w) = waker {
            w.parked.store(false, Ordering::Relaxed);
        }
        if ready <= 0 {
            return;
        }
        if self.pfds.first().is_some_and(|p| p.revents != 0)
            && let Some(w) = waker
        {
            w.drain();
        }
        for k in 0..self.map.len() {
            let ready = self.pfds.get(k + 1).is_some_and(|p| p.revents != 0);
            if let (true, Some(&i)) = (ready, self.map.get(k)) {
                self.read(i);
            }
        }
    }

    /// Drops finished entries (by swapping in the last one: an entry is a few KiB, and
    /// shifting the whole table on every completion would cost more than the exchange).
    fn sweep(&mut self) {
        let before = self.inflight.len();
        for i in (0..before).rev() {
            if self.inflight.get(i).is_some_and(|f| f.done) {
                self.inflight.swap_remove(i);
            }
        }
        let removed = (before - self.inflight.len()) as u64;
        if removed > 0 {
            self.shared
                .counters
                .in_flight
                .fetch_sub(removed, Ordering::Relaxed);
        }
    }

    /// Takes a new job: answers it at once when it cannot be forwarded, else sends it.
    fn begin(&mut self, mut job: Job) {
        let len = job.len.min(MAX_QUERY);
        let Some(pkt) = job.query.get(..len) else {
            return;
        };
        let Ok(q) = wire::parse_query(pkt) else {
            return;
        };
        let sh = &*self.shared;
        let mut key = [0u8; KEY_MAX];
        let key_len = super::cache::make_key(
            q.qname(),
            q.qtype,
            q.qclass,
            q.edns.is_some_and(|e| e.do_bit),
            &mut key,
        );
        let qname_len = q.qname().len();
        let ups = sh.upstreams();
        let list = ups.select(key.get(..qname_len).unwrap_or(&[]));
        if list.is_empty() {
            sh.counters.no_upstream.fetch_add(1, Ordering::Relaxed);
            let n = super::refused_reply(pkt, &q, sh.edns_udp_size, &mut self.buf);
            let reply = self.buf.get(..n).unwrap_or(&[]);
            sh.send_udp(job.worker, job.peer, reply);
            return;
        }
        let now = Instant::now();
        let order = ups.order(list, now);
        let limit = super::udp_limit(&q, sh.edns_udp_size);
        // Ask the upstream for no more than we can pass on, so it truncates properly.
        if let Some(at) = msg::query_opt_class_at(pkt) {
            msg::patch16(&mut job.query, at, limit as u16);
        }
        self.inflight.push(InFlight {
            job,
            client_id: q.id,
            key,
            key_len,
            qname_len,
            qtype: q.qtype,
            qclass: q.qclass,
            limit,
            ups: ups.clone(),
            order,
            attempt: 0,
            upstream: usize::MAX,
            sock: None,
            upstream_id: 0,
            sent: now,
            deadline: now,
            done: false,
        });
        sh.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let i = self.inflight.len() - 1;
        self.send_from(i, 0);
    }

    /// Gives up on the current attempt of entry `i` and tries the next upstream.
    fn next_attempt(&mut self, i: usize) {
        let Some(f) = self.inflight.get_mut(i) else {
            return;
        };
        f.sock = None;
        let next = f.attempt + 1;
        self.send_from(i, next);
    }

    /// Sends entry `i` to the upstreams of its order from position `from` on, stopping at
    /// the first successful send; SERVFAIL when none is left.
    fn send_from(&mut self, i: usize, from: usize) {
        let sh = &*self.shared;
        let Some(f) = self.inflight.get_mut(i) else {
            return;
        };
        let mut attempt = from;
        while let Some(up) = f.order.get(attempt) {
            let Some(u) = f.ups.get(up) else {
                attempt += 1;
                continue;
            };
            let id = self.rng.id();
            msg::set_id(&mut f.job.query, id);
            let pkt = f.job.query.get(..f.job.len).unwrap_or(&[]);
            f.ups.sent(up);
            let sent = open_udp(u.addr).and_then(|s| s.send(pkt).map(|_| s));
            match sent {
                Ok(sock) => {
                    let now = Instant::now();
                    f.attempt = attempt;
                    f.upstream = up;
                    f.upstream_id = id;
                    f.sock = Some(sock);
                    f.sent = now;
                    f.deadline = now + sh.timeout();
                    return;
                }
                Err(e) => {
                    log::debug!("upstream {}: send failed: {e}", u.addr);
                    f.ups.error(up);
                    attempt += 1;
                }
            }
        }
        self.fail(i);
    }

    /// Every upstream failed: SERVFAIL with the question echoed.
    fn fail(&mut self, i: usize) {
        let sh = &*self.shared;
        let Some(f) = self.inflight.get_mut(i) else {
            return;
        };
        f.done = true;
        f.sock = None;
        sh.counters.all_failed.fetch_add(1, Ordering::Relaxed);
        msg::set_id(&mut f.job.query, f.client_id);
        let pkt = f.job.query.get(..f.job.len).unwrap_or(&[]);
        let Ok(q) = wire::parse_query(pkt) else {
            return;
        };
        let n = wire::write_error_reply_edns(
            pkt,
            Some(&q),
            rcode::SERVFAIL,
            sh.edns_udp_size,
            &mut self.buf,
        );
        let reply = self.buf.get(..n).unwrap_or(&[]);
        sh.store(f.key.get(..f.key_len).unwrap_or(&[]), reply, Instant::now());
        sh.counters.latency.observe(f.job.received.elapsed());
        sh.send_udp(f.job.worker, f.job.peer, reply);
    }

    /// Reads what entry `i`'s socket holds.
    fn read(&mut self, i: usize) {
        loop {
            let Some(f) = self.inflight.get_mut(i) else {
                return;
            };
            let Some(sock) = &f.sock else { return };
            match sock.recv(&mut self.buf) {
                Ok(n) => {
                    let reply = self.buf.get(..n).unwrap_or(&[]);
                    if msg::answers(reply, f.upstream_id, f.qname(), f.qtype, f.qclass) {
                        self.relay(i, n);
                        return;
                    }
                    log::debug!("upstream reply ignored (does not match the query)");
                    f.ups.error(f.upstream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Typically ICMP port unreachable: the upstream is not listening.
                    log::debug!("upstream exchange failed: {e}");
                    f.ups.error(f.upstream);
                    self.next_attempt(i);
                    return;
                }
            }
        }
    }

    /// Entry `i` got its answer in `buf[..n]`: cache it, relay it to the client.
    fn relay(&mut self, i: usize, n: usize) {
        let sh = &*self.shared;
        let Some(f) = self.inflight.get_mut(i) else {
            return;
        };
        f.done = true;
        f.sock = None;
        let now = Instant::now();
        f.ups
            .answered(f.upstream, now.saturating_duration_since(f.sent));
        let key = f.key.get(..f.key_len).unwrap_or(&[]);
        let n = sh.relay(key, &mut self.buf, n, Some(f.limit), f.client_id, now);
        let reply = self.buf.get(..n).unwrap_or(&[]);
        sh.counters.relayed.fetch_add(1, Ordering::Relaxed);
        sh.counters.latency.observe(f.job.received.elapsed());
        sh.send_udp(f.job.worker, f.job.peer, reply);
    }
}
