//! Forwarding of names outside the Mesos domain (behaviour reference §4.6): upstream selection
//! (`resolvers`, longest-suffix `zoneResolvers`, never falling back from a zone to the
//! default list), a pool of forwarder threads fed by the UDP workers through a bounded queue,
//! and a cache of upstream answers.
//!
//! A UDP worker never waits on an upstream: [`Forwarder::udp_query`] either answers at once
//! (a cache hit, SERVFAIL when the queue is full) or moves the query, by value, into the
//! bounded queue and returns. Handing over allocates nothing. The cache lookup on that path
//! takes one shard lock (this is the forward path, not the in-domain hot path). The pool
//! (module `pool`) sends the reply from the worker's own socket, so it leaves from the
//! address the client queried. TCP clients are served on their connection's thread, which
//! may block: [`Forwarder::tcp_query`] exchanges over TCP with the upstreams in order.
//!
//! Replies are relayed as the upstream sent them (flags, rcode, sections, OPT) with the
//! client's ID, TC cleared when `SetTruncateBit` is false, and cut to the client's UDP limit
//! (512 without EDNS, else its size clamped to `[512, ednsUdpSize]`). The only change made to
//! a relayed query besides its ID is its OPT payload size, lowered to that same limit so that
//! the upstream truncates properly.
//!
//! Caching (`cacheSize` entries, 0 disables; module `cache`): positive answers for the
//! smallest TTL of the reply, negative ones (NXDOMAIN, NODATA) for min(SOA TTL, SOA
//! MINIMUM) (RFC 2308), SERVFAIL for [`SERVFAIL_TTL`]; never truncated or signed replies.
//! Hits are served with their TTLs reduced by their age, the client's ID, RD, CD and
//! question spelling, AA clear (cached data is not authoritative), and an OPT of ours when
//! the client sent one.
//!
//! Nothing here panics on any input: replies that do not parse or do not match are counted
//! as upstream errors and ignored.

mod cache;
mod msg;
mod pool;
pub mod stats;
mod upstream;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use parking_lot::RwLock;

use self::cache::{Cache, KEY_MAX};
use self::pool::{Job, MAX_QUERY, Waker};
use self::stats::{ForwardCounters, ForwardMetrics};
use self::upstream::Upstreams;
use crate::config::Config;
use crate::dns::wire::{self, Query, ReplyWriter, flag, rcode};

/// How long a SERVFAIL (from an upstream, or ours after every upstream failed) is cached.
pub const SERVFAIL_TTL: Duration = Duration::from_secs(2);
/// Longest a positive answer is cached, whatever its TTLs say.
pub const MAX_POSITIVE_TTL: u32 = 86_400;
/// Longest a negative answer is cached (RFC 2308 §5 suggests 1–3 hours).
pub const MAX_NEGATIVE_TTL: u32 = 10_800;
/// Largest reply kept in the cache (bounds its memory at `cacheSize` × this).
pub const MAX_CACHED_REPLY: usize = 8192;

/// The forwarding service shared by the workers, the TCP connections and `/metrics`.
#[derive(Debug)]
pub struct Forwarder {
    shared: Arc<Shared>,
    tx: Sender<Job>,
    capacity: usize,
    threads: usize,
}

/// What the workers, the pool threads and the TCP connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The upstream lists, swapped whole by [`Forwarder::reload`]. A query takes the `Arc`
    /// once and keeps it until it is answered, so the upstream indices it holds stay valid.
    upstreams: RwLock<Arc<Upstreams>>,
    cache: Cache,
    counters: ForwardCounters,
    /// The UDP workers' sockets, by worker index.
    sockets: Vec<Arc<UdpSocket>>,
    wakers: Vec<Waker>,
    /// Per-upstream timeout in milliseconds (`timeout`; reloadable).
    timeout_ms: AtomicU64,
    /// `SetTruncateBit` (reloadable).
    set_truncate_bit: AtomicBool,
    edns_udp_size: u16,
}

/// The UDP reply size limit for query `q`: 512 without EDNS, else its advertised size
/// clamped to `[512, edns_udp_size]`.
pub(crate) fn udp_limit(q: &Query, edns_udp_size: u16) -> usize {
    let min = wire::MIN_UDP_PAYLOAD;
    match q.edns {
        None => usize::from(min),
        Some(e) => usize::from(e.udp_size.clamp(min, edns_udp_size.max(min))),
    }
}

/// The original's reply when a name has no upstream: REFUSED, QR + RD only, question echoed.
pub(crate) fn refused_reply(pkt: &[u8], q: &Query, edns_udp_size: u16, out: &mut [u8]) -> usize {
    let limit = out.len();
    let mut w = ReplyWriter::new(out, limit);
    w.header(q.id, flag::QR | (q.flags & (flag::OPCODE_MASK | flag::RD)));
    w.set_rcode(rcode::REFUSED);
    if w.copy_question(q.question_bytes(pkt)).is_err() {
        return 0;
    }
    if let Some(e) = q.edns {
        let _ = w.opt(edns_udp_size, 0, e.do_bit);
    }
    w.finish()
}

/// Raises the soft open-files limit to the hard one: every query in flight holds a socket.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let old = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max.min(1 << 20);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                log::debug!("open-files limit raised from {old} to {}", lim.rlim_cur);
            }
        }
    }
}

impl Forwarder {
    /// Starts the forwarder pool for `config`. `sockets` are the UDP workers' sockets, by
    /// worker index: replies to UDP clients are sent from the socket the query arrived on.
    pub fn start(config: &Config, sockets: Vec<Arc<UdpSocket>>) -> io::Result<Arc<Forwarder>> {
        raise_nofile_limit();
        let threads = config.forwarders.max(1);
        let capacity = config.forward_queue.max(1);
        let wakers = (0..threads)
            .map(|_| Waker::new())
            .collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            upstreams: RwLock::new(Arc::new(Upstreams::new(
                &config.resolvers,
                &config.zone_resolvers,
            ))),
            cache: Cache::new(config.cache_size),
            counters: ForwardCounters::default(),
            sockets,
            wakers,
            timeout_ms: AtomicU64::new(timeout_ms(config)),
            set_truncate_bit: AtomicBool::new(config.set_truncate_bit),
            edns_udp_size: config.edns_udp_size,
        });
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        for me in 0..threads {
            // Detached: a thread ends when every sender is gone and its work is done.
            pool::spawn(shared.clone(), rx.clone(), me)?;
        }
        log::info!(
            "forwarding: {threads} forwarder threads, queue {capacity}, cache {} entries, \
             {} default upstreams, {} zones",
            config.cache_size,
            config.resolvers.len(),
            config.zone_resolvers.len()
        );
        Ok(Arc::new(Forwarder {
            shared,
            tx,
            capacity,
            threads,
        }))
    }

    /// Hot reload: takes `resolvers`, `zoneResolvers`, `timeout` and `SetTruncateBit` from
    /// `config`. New upstream lists replace the old ones whole (queries in flight finish on
    /// the lists they started with; per-upstream counters start again) and empty the cache,
    /// whose answers came from the old routes. Unchanged lists are kept with their health.
    pub fn reload(&self, config: &Config) {
        let sh = &*self.shared;
        sh.timeout_ms.store(timeout_ms(config), Ordering::Relaxed);
        sh.set_truncate_bit
            .store(config.set_truncate_bit, Ordering::Relaxed);
        let same = sh
            .upstreams()
            .configured_as(&config.resolvers, &config.zone_resolvers);
        if !same {
            let new = Upstreams::new(&config.resolvers, &config.zone_resolvers);
            *sh.upstreams.write() = Arc::new(new);
            sh.cache.clear();
            log::info!(
                "forwarding: now {} default upstreams, {} zones; cache emptied",
                config.resolvers.len(),
                config.zone_resolvers.len()
            );
        }
    }

    /// A UDP query outside the domain from `peer`, received on worker `worker`'s socket.
    /// Returns the length of a reply written into `reply` to send at once, or 0 when the query
    /// was handed to the pool (which then replies from the worker's socket itself).
    pub fn udp_query(
        &self,
        worker: usize,
        query: &[u8],
        peer: SocketAddr,
        reply: &mut [u8],
    ) -> usize {
        let sh = &*self.shared;
        let Ok(q) = wire::parse_query(query) else {
            // `answer` already replied to (or dropped) anything unparsable.
            return 0;
        };
        let mut key = [0u8; KEY_MAX];
        let key_len = key_of(&q, &mut key);
        let key = key.get(..key_len).unwrap_or(&[]);
        let limit = udp_limit(&q, sh.edns_udp_size);
        if let Some(n) = sh.serve_cached(query, &q, key, limit, reply) {
            return n;
        }
        if query.len() > MAX_QUERY {
            sh.counters.too_large.fetch_add(1, Ordering::Relaxed);
            return servfail(query, &q, sh.edns_udp_size, reply);
        }
        let mut job = Job {
            worker,
            peer,
            received: Instant::now(),
            len: query.len(),
            query: [0; MAX_QUERY],
        };
        if let Some(dst) = job.query.get_mut(..query.len()) {
            dst.copy_from_slice(query);
        }
        match self.tx.try_send(job) {
            Ok(()) => {
                fence(Ordering::SeqCst);
                for w in &sh.wakers {
                    if w.wake() {
                        break;
                    }
                }
                0
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                sh.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                servfail(query, &q, sh.edns_udp_size, reply)
            }
        }
    }

    /// A TCP query outside the domain: blocks this connection's thread until the reply (from
    /// the cache or an upstream over TCP) is written into `reply`; returns its length.
    pub fn tcp_query(&self, query: &[u8], reply: &mut [u8]) -> usize {
        let sh = &*self.shared;
        let Ok(q) = wire::parse_query(query) else {
            return 0;
        };
        let mut key = [0u8; KEY_MAX];
        let key_len = key_of(&q, &mut key);
        let key = key.get(..key_len).unwrap_or(&[]);
        if let Some(n) = sh.serve_cached(query, &q, key, wire::MAX_MESSAGE_LEN, reply) {
            return n;
        }
        let received = Instant::now();
        sh.counters.tcp.fetch_add(1, Ordering::Relaxed);
        let qname_len = q.qname().len();
        let qname = key.get(..qname_len).unwrap_or(&[]);
        let upstreams = sh.upstreams();
        let list = upstreams.select(qname);
        if list.is_empty() {
            sh.counters.no_upstream.fetch_add(1, Ordering::Relaxed);
            return refused_reply(query, &q, sh.edns_udp_size, reply);
        }
        let order = upstreams.order(list, received);
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        framed.extend_from_slice(query);
        let mut rng = pool::Rng::new();
        for i in 0..order.len() {
            let Some((up, u)) = order
                .get(i)
                .and_then(|up| upstreams.get(up).map(|u| (up, u)))
            else {
                continue;
            };
            let id = rng.id();
            if let Some(b) = framed.get_mut(2..4) {
                b.copy_from_slice(&id.to_be_bytes());
            }
            upstreams.sent(up);
            let started = Instant::now();
            match tcp_exchange(u.addr, &framed, sh.timeout(), reply) {
                Ok(n) => {
                    let got = reply.get(..n).unwrap_or(&[]);
                    if !msg::answers(got, id, qname, q.qtype, q.qclass) {
                        log::debug!("upstream {} (tcp): reply does not match", u.addr);
                        upstreams.error(up);
                        continue;
                    }
                    let now = Instant::now();
                    upstreams.answered(up, now.saturating_duration_since(started));
                    sh.counters.relayed.fetch_add(1, Ordering::Relaxed);
                    sh.counters.latency.observe(received.elapsed());
                    return sh.relay(key, reply, n, None, q.id, now);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    log::debug!("upstream {} (tcp): {e}", u.addr);
                    upstreams.timed_out(up, Instant::now());
                }
                Err(e) => {
                    log::debug!("upstream {} (tcp): {e}", u.addr);
                    upstreams.error(up);
                }
            }
        }
        sh.counters.all_failed.fetch_add(1, Ordering::Relaxed);
        sh.counters.latency.observe(received.elapsed());
        let n = servfail(query, &q, sh.edns_udp_size, reply);
        sh.store(key, reply.get(..n).unwrap_or(&[]), Instant::now());
        n
    }

    /// The forward path's counters, read now.
    pub fn metrics(&self) -> ForwardMetrics {
        let sh = &*self.shared;
        let c = &sh.counters;
        let now = Instant::now();
        ForwardMetrics {
            queue_depth: self.tx.len() as u64,
            queue_capacity: self.capacity as u64,
            threads: self.threads as u64,
            in_flight: c.in_flight.load(Ordering::Relaxed),
            queue_full: c.queue_full.load(Ordering::Relaxed),
            too_large: c.too_large.load(Ordering::Relaxed),
            relayed: c.relayed.load(Ordering::Relaxed),
            all_failed: c.all_failed.load(Ordering::Relaxed),
            no_upstream: c.no_upstream.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
            tcp: c.tcp.load(Ordering::Relaxed),
            latency: c.latency.snapshot(),
            cache: sh.cache.metrics(),
            upstreams: sh.upstreams().metrics(now),
        }
    }
}

/// The cache key of `q`.
fn key_of(q: &Query, out: &mut [u8; KEY_MAX]) -> usize {
    cache::make_key(
        q.qname(),
        q.qtype,
        q.qclass,
        q.edns.is_some_and(|e| e.do_bit),
        out,
    )
}

/// SERVFAIL for `q`, question echoed, OPT when the query had one.
fn servfail(pkt: &[u8], q: &Query, edns_udp_size: u16, out: &mut [u8]) -> usize {
    wire::write_error_reply_edns(pkt, Some(q), rcode::SERVFAIL, edns_udp_size, out)
}

/// One DNS exchange over a fresh TCP connection (`framed` carries the length prefix); the
/// whole exchange must finish within `timeout`. Returns the reply's length in `out`.
fn tcp_exchange(
    addr: SocketAddr,
    framed: &[u8],
    timeout: Duration,
    out: &mut [u8],
) -> io::Result<usize> {
    let deadline = Instant::now() + timeout;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "exchange timed out",
            ))
        } else {
            Ok(d)
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true).ok();
    s.set_write_timeout(Some(left()?))?;
    s.write_all(framed)?;
    let mut len = [0u8; 2];
    s.set_read_timeout(Some(left()?))?;
    s.read_exact(&mut len)?;
    let n = usize::from(u16::from_be_bytes(len));
    let dst = out
        .get_mut(..n)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "reply too long"))?;
    let mut got = 0;
    while got < n {
        s.set_read_timeout(Some(left()?))?;
        let Some(rest) = dst.get_mut(got..) else {
            break;
        };
        match s.read(rest) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `timeout` in milliseconds (0 means the default of 5 s).
fn timeout_ms(config: &Config) -> u64 {
    let secs = if config.timeout_seconds == 0 {
        5
    } else {
        config.timeout_seconds
    };
    secs.saturating_mul(1000)
}

impl Shared {
    /// The current upstream lists.
    pub(crate) fn upstreams(&self) -> Arc<Upstreams> {
        self.upstreams.read().clone()
    }

    /// The per-upstream timeout.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// `SetTruncateBit`.
    fn truncate_bit(&self) -> bool {
        self.set_truncate_bit.load(Ordering::Relaxed)
    }

    /// Sends a reply from worker `worker`'s socket.
    fn send_udp(&self, worker: usize, peer: SocketAddr, reply: &[u8]) {
        if reply.is_empty() {
            return;
        }
        let sent = self.sockets.get(worker).map(|s| s.send_to(reply, peer));
        if !matches!(sent, Some(Ok(_))) {
            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Answers `q` (from packet `pkt`) from the cache into `out`, within `limit` bytes.
    fn serve_cached(
        &self,
        pkt: &[u8],
        q: &Query,
        key: &[u8],
        limit: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        let hit = self.cache.lookup(key, Instant::now(), out)?;
        let n = hit.len;
        let msg_buf = out.get_mut(..n)?;
        // The client's question spelling (0x20 case randomisation), ID, RD and CD.
        let question = q.question_bytes(pkt);
        let range = msg::question_range(msg_buf)?;
        let dst = msg_buf.get_mut(range)?;
        if dst.len() != question.len() {
            return None;
        }
        dst.copy_from_slice(question);
        msg::set_id(msg_buf, q.id);
        let f = msg::flags(msg_buf) & !(flag::RD | flag::CD | flag::AA | flag::TC);
        msg::set_flags(msg_buf, f | (q.flags & (flag::RD | flag::CD)));
        msg::age_ttls(msg_buf, hit.age);
        let opt = if q.edns.is_some() {
            wire::OPT_RR_LEN
        } else {
            0
        };
        let cut = msg::truncate(out, n, limit.saturating_sub(opt));
        if cut < n && self.truncate_bit() {
            msg::set_flags(out, msg::flags(out) | flag::TC);
        }
        let len = match q.edns {
            Some(e) => msg::append_opt(out, cut, self.edns_udp_size, e.do_bit),
            None => cut,
        };
        Some(len)
    }

    /// An upstream's verified reply `buf[..n]` for the query with cache key `key`: caches
    /// it, then makes it the client's (ID, TC policy, size `limit` for UDP). Returns the
    /// length to send.
    fn relay(
        &self,
        key: &[u8],
        buf: &mut [u8],
        n: usize,
        limit: Option<usize>,
        client_id: u16,
        now: Instant,
    ) -> usize {
        let n = n.min(buf.len());
        self.store(key, buf.get(..n).unwrap_or(&[]), now);
        msg::set_id(buf, client_id);
        if !self.truncate_bit() {
            msg::clear_tc(buf);
        }
        match limit {
            Some(limit) if n > limit => self.fit(buf, n, limit),
            _ => n,
        }
    }

    /// Cuts an upstream reply down to `limit` bytes, keeping its OPT record when it is last.
    fn fit(&self, buf: &mut [u8], n: usize, limit: usize) -> usize {
        let mut opt = [0u8; 512];
        let mut opt_len = 0usize;
        let mut len = n;
        if let Some(s) = buf.get(..n).and_then(msg::summarize)
            && let Some((start, end)) = s.opt_last
            && !s.opt_elsewhere
            && end - start <= opt.len()
            && end - start < limit
            && let (Some(src), Some(dst)) = (buf.get(start..end), opt.get_mut(..end - start))
        {
            dst.copy_from_slice(src);
            opt_len = end - start;
            if let Some(cut) = msg::strip_opt(buf, n, &s) {
                len = cut;
            } else {
                opt_len = 0;
            }
        }
        let cut = msg::truncate(buf, len, limit - opt_len);
        let cut = if opt_len > 0 {
            msg::append_raw_rr(buf, cut, opt.get(..opt_len).unwrap_or(&[]))
        } else {
            cut
        };
        if self.truncate_bit() {
            msg::set_flags(buf, msg::flags(buf) | flag::TC);
        }
        cut
    }

    /// Caches `reply` under `key` when the policy allows (see the module doc).
    fn store(&self, key: &[u8], reply: &[u8], now: Instant) {
        if key.is_empty() || reply.len() > MAX_CACHED_REPLY {
            return;
        }
        let Some(s) = msg::summarize(reply) else {
            return;
        };
        let Some(ttl) = cache_ttl(&s) else { return };
        let mut copy = [0u8; MAX_CACHED_REPLY];
        let Some(dst) = copy.get_mut(..reply.len()) else {
            return;
        };
        dst.copy_from_slice(reply);
        let Some(len) = msg::strip_opt(&mut copy, reply.len(), &s) else {
            return;
        };
        msg::set_id(&mut copy, 0);
        self.cache
            .insert(key, copy.get(..len).unwrap_or(&[]), ttl, now);
    }
}

/// How long a reply may be cached, or `None` when it must not be.
fn cache_ttl(s: &msg::Summary) -> Option<Duration> {
    if s.truncated || s.signed || s.opt_elsewhere {
        return None;
    }
    let secs = match s.rcode {
        rcode::NOERROR if s.answers > 0 => s.min_ttl.min(MAX_POSITIVE_TTL),
        rcode::NOERROR | rcode::NXDOMAIN => s.negative_ttl?.min(MAX_NEGATIVE_TTL),
        rcode::SERVFAIL => return Some(SERVFAIL_TTL),
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
}

#[cfg(test)]
mod tests;
