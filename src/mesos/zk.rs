//! ZooKeeper leader detection (behaviour reference §5.1–5.2) on its own thread, with a minimal
//! synchronous ZooKeeper client for the few requests it needs.
//!
//! The detector connects to one of the `zk://` hosts, lists the children of the znode path with
//! a watch, and reads the `json.info_*` nodes (else the pre-0.24 protobuf `info_*` nodes). The
//! leader is the node with the lowest sequence number; its address comes from the MasterInfo
//! JSON `address.ip`/`address.port` (falling back to `hostname`), or for protobuf from
//! `address` or the packed `ip` (host byte order) and `port` (field 3, default 5050). The masters
//! list handed to the refresh thread is `[leader, every other registered master]`; a change is
//! sent at once, so the refresh that follows uses it. A watch event, every new session and a
//! re-list every few seconds (safety net) all re-read the children.
//!
//! When ZooKeeper goes away the detector reconnects with exponential backoff (0.1 s up to 5 s),
//! round-robin over the hosts, with a fresh session each time; meanwhile the refresh thread keeps
//! polling the last masters list and the last good records stay served.
//!
//! `zkDetectionTimeout`: if no leader was **ever** found within that many seconds of start, the
//! process logs `master detection timed out after Ns` and exits 1 (0 disables it; see
//! [`Detection::timed_out`]). DELIBERATE DIFFERENCE from the original, which also exits when a
//! leader is lost for that long: once a leader has been found, losing ZooKeeper (or every
//! master's znode) never exits the process; it keeps serving and keeps the last masters list,
//! because a DNS server that stops answering during a ZooKeeper outage turns one outage into two.
//!
//! Why not the `zookeeper` crate (0.8, sync): reading its source showed that `connect` unwraps
//! an immediate connect error on the caller's thread (a panic for an unroutable address), its
//! reconnect loop spins on such errors, its I/O thread `panic!`s on a malformed reply, a request
//! to a server that accepts but never answers blocks forever (no request timeout, and no ping
//! while a request is in flight), it logs every reconnect through our logger, and it does not
//! re-arm watches after a reconnect. A detector only reads and needs no session continuity, so
//! the subset here (connect, auth, getChildren with watch, getData, ping, watch events over
//! jute framing) is small, has a deadline on every read, and fits the one-thread model. The
//! integration tests register masters with the `zookeeper` crate as an independent client.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Session timeout asked of the server (it clamps to 2–20 × its tickTime).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP connect and handshake deadline per server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Re-list the children this often even without a watch event.
const RELIST_EVERY: Duration = Duration::from_secs(3);
/// At most one masters list per this interval goes to the refresh thread (behaviour reference
/// §5.1: the original rate-limits leader changes to one per second). A flapping ZooKeeper
/// then costs one refresh per second, not one per event; the newest list always wins.
const MIN_HANDOVER_INTERVAL: Duration = Duration::from_secs(1);
/// How often the loop looks at the stop flag while idle.
const TICK: Duration = Duration::from_millis(200);
/// Reconnect backoff: first and largest delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Largest frame accepted from the server (its own jute.maxbuffer default is 1 MiB).
const MAX_FRAME: usize = 4 << 20;
/// Port used when a `zk://` host has none.
const DEFAULT_ZK_PORT: u16 = 2181;

// ZooKeeper opcodes and special xids.
const OP_GET_DATA: i32 = 4;
const OP_GET_CHILDREN: i32 = 8;
const OP_PING: i32 = 11;
const OP_AUTH: i32 = 100;
const XID_WATCH: i32 = -1;
const XID_PING: i32 = -2;
const XID_AUTH: i32 = -4;
/// Server error codes the detector tells apart.
const ERR_NO_NODE: i32 = -101;

/// What the detector currently knows, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DetectionState {
    /// Static `masters` list (no ZooKeeper).
    Static = 0,
    /// ZooKeeper configured, no session yet.
    Connecting = 1,
    /// In session, a leader is registered.
    Connected = 2,
    /// In session, no master is registered.
    NoLeader = 3,
    /// The session was lost; reconnecting.
    Disconnected = 4,
}

impl DetectionState {
    /// Every state, for exporting all of them.
    pub const ALL: [DetectionState; 5] = [
        DetectionState::Static,
        DetectionState::Connecting,
        DetectionState::Connected,
        DetectionState::NoLeader,
        DetectionState::Disconnected,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionState::Static => "static",
            DetectionState::Connecting => "connecting",
            DetectionState::Connected => "connected",
            DetectionState::NoLeader => "no_leader",
            DetectionState::Disconnected => "disconnected",
        }
    }

    fn from_u8(v: u8) -> DetectionState {
        Self::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(DetectionState::Static)
    }
}

/// Shared detection status: written by the detector thread, read by `/metrics` and `main`.
#[derive(Debug, Default)]
pub struct Detection {
    state: AtomicU8,
    leader: Mutex<String>,
    found: AtomicBool,
    /// Leader changes seen (the first detection counts).
    pub leader_changes: AtomicU64,
    /// ZooKeeper sessions established (more than one means reconnects).
    pub sessions: AtomicU64,
}

impl Detection {
    /// The current state.
    pub fn state(&self) -> DetectionState {
        DetectionState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Sets the state.
    pub fn set_state(&self, s: DetectionState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// The detected leader `host:port`, empty when none was found yet.
    pub fn leader(&self) -> String {
        self.leader.lock().clone()
    }

    /// Whether a leader was ever found.
    pub fn leader_found(&self) -> bool {
        self.found.load(Ordering::Relaxed)
    }

    /// `zkDetectionTimeout`: true when `timeout_secs` > 0, no leader was ever found and that
    /// long has passed since `started`.
    pub fn timed_out(&self, started: Instant, timeout_secs: u64) -> bool {
        timeout_secs > 0
            && !self.leader_found()
            && started.elapsed() >= Duration::from_secs(timeout_secs)
    }

    fn set_leader(&self, leader: &str) {
        *self.leader.lock() = leader.to_owned();
        self.found.store(true, Ordering::Relaxed);
    }
}

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port` entries (port 2181 added when missing).
    pub hosts: Vec<String>,
    /// The znode path, e.g. `/mesos` (no trailing slash).
    pub path: String,
    /// `user:pass` from the userinfo, sent as a `digest` auth packet.
    pub auth: Option<String>,
}

impl ZkUrl {
    /// Parses `zk://[user:pass@]host[:port][,host[:port]...]/path`.
    pub fn parse(url: &str) -> Result<ZkUrl, String> {
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| "the scheme must be zk://".to_string())?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err("missing znode path".into()),
        };
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err("missing znode path".into());
        }
        let (auth, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()).filter(|u| !u.is_empty()), h),
            None => (None, authority),
        };
        let hosts: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                let has_port = if h.starts_with('[') {
                    h.contains("]:")
                } else {
                    h.contains(':')
                };
                if has_port {
                    h.to_owned()
                } else {
                    format!("{h}:{DEFAULT_ZK_PORT}")
                }
            })
            .collect();
        if hosts.is_empty() {
            return Err("no hosts".into());
        }
        Ok(ZkUrl {
            hosts,
            path: path.to_owned(),
            auth,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Jute encoding (ZooKeeper's wire format: big-endian ints, length-prefixed strings/buffers).

fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_i32(b, i32::try_from(v.len()).unwrap_or(i32::MAX));
    b.extend_from_slice(v);
}

/// A bounds-checked reader over a reply.
struct Jute<'a> {
    buf: &'a [u8],
}

fn proto_err(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("ZooKeeper protocol: {what}"),
    )
}

impl<'a> Jute<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(proto_err("short reply"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i32(&mut self) -> io::Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> io::Result<i64> {
        let hi = self.i32()?;
        let lo = self.i32()?;
        Ok((i64::from(hi) << 32) | i64::from(lo as u32))
    }

    /// A buffer or string; `-1` (null) reads as empty.
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(&[]);
        }
        self.take(n as usize)
    }

    fn string(&mut self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// A failed request: the server's error code, or a connection problem.
#[derive(Debug, thiserror::Error)]
enum ZkError {
    #[error("ZooKeeper error code {0}")]
    Server(i32),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One ZooKeeper session over one TCP connection, driven synchronously by one thread.
struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    xid: i32,
    /// Negotiated session timeout.
    session: Duration,
    last_recv: Instant,
    last_sent: Instant,
    /// A watch event arrived since the flag was last cleared.
    watch_fired: bool,
}

impl Conn {
    /// Connects to `addr` and opens a fresh session (no session resumption: the detector only
    /// reads, so a new session plus a re-list is all a reconnect needs).
    fn connect(addr: SocketAddr, auth: Option<&str>) -> Result<Conn, ZkError> {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        let _ = stream.set_nodelay(true);
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        let now = Instant::now();
        let mut conn = Conn {
            stream,
            rbuf: Vec::new(),
            xid: 0,
            session: SESSION_TIMEOUT,
            last_recv: now,
            last_sent: now,
            watch_fired: false,
        };
        // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
        let mut req = Vec::with_capacity(48);
        put_i32(&mut req, 0);
        put_i64(&mut req, 0);
        put_i32(
            &mut req,
            i32::try_from(SESSION_TIMEOUT.as_millis()).unwrap_or(i32::MAX),
        );
        put_i64(&mut req, 0);
        put_bytes(&mut req, &[0u8; 16]);
        req.push(0);
        conn.send_frame(&req)?;
        let frame = conn
            .read_frame(Instant::now() + CONNECT_TIMEOUT)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no handshake reply"))?;
        let mut r = Jute { buf: &frame };
        let _version = r.i32()?;
        let timeout_ms = r.i32()?;
        let _session_id = r.i64()?;
        if timeout_ms <= 0 {
            return Err(proto_err("session refused").into());
        }
        conn.session = Duration::from_millis(timeout_ms as u64);
        if let Some(userinfo) = auth {
            // AuthPacket: type, scheme, auth. A bad digest makes the server close the session.
            let mut pkt = Vec::new();
            put_i32(&mut pkt, XID_AUTH);
            put_i32(&mut pkt, OP_AUTH);
            put_i32(&mut pkt, 0);
            put_bytes(&mut pkt, b"digest");
            put_bytes(&mut pkt, userinfo.as_bytes());
            conn.send_frame(&pkt)?;
        }
        Ok(conn)
    }

    /// Silence longer than this means the server is gone.
    fn dead_after(&self) -> Duration {
        self.session * 2 / 3
    }

    fn send_frame(&mut self, body: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(body.len() + 4);
        put_bytes(&mut out, body);
        self.stream.write_all(&out)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Reads one complete frame, or None if `deadline` passes first. Partial frames stay in
    /// the buffer across calls, so a timeout never loses bytes.
    fn read_frame(&mut self, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.rbuf.len() >= 4 {
                let n =
                    i32::from_be_bytes([self.rbuf[0], self.rbuf[1], self.rbuf[2], self.rbuf[3]]);
                if n < 0 || n as usize > MAX_FRAME {
                    return Err(proto_err("bad frame length"));
                }
                let n = n as usize;
                if self.rbuf.len() >= 4 + n {
                    let frame = self.rbuf[4..4 + n].to_vec();
                    self.rbuf.drain(..4 + n);
                    self.last_recv = Instant::now();
                    return Ok(Some(frame));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "ZooKeeper closed the connection",
                    ));
                }
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Handles a frame that is not the reply being waited for; returns its xid and error.
    fn note_frame(&mut self, frame: &[u8]) -> io::Result<(i32, i32)> {
        let mut r = Jute { buf: frame };
        let xid = r.i32()?;
        let _zxid = r.i64()?;
        let err = r.i32()?;
        if xid == XID_WATCH {
            // WatcherEvent: type, state, path. Any event on our path means "re-list".
            self.watch_fired = true;
        }
        if xid == XID_AUTH && err != 0 {
            return Err(proto_err("ZooKeeper refused the zk:// credentials"));
        }
        Ok((xid, err))
    }

    /// Reads and handles frames until `until`, or until a watch fires.
    fn pump(&mut self, until: Instant) -> io::Result<()> {
        while !self.watch_fired {
            match self.read_frame(until)? {
                Some(frame) => {
                    self.note_frame(&frame)?;
                }
                None => break,
            }
        }
        if self.last_recv.elapsed() > self.dead_after() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "ZooKeeper stopped answering",
            ));
        }
        Ok(())
    }

    fn ping(&mut self) -> io::Result<()> {
        let mut pkt = Vec::with_capacity(8);
        put_i32(&mut pkt, XID_PING);
        put_i32(&mut pkt, OP_PING);
        self.send_frame(&pkt)
    }

    /// Sends a request and waits (bounded) for its reply body.
    fn call(&mut self, op: i32, body: &[u8]) -> Result<Vec<u8>, ZkError> {
        self.xid = self.xid.wrapping_add(1).max(1);
        let xid = self.xid;
        let mut pkt = Vec::with_capacity(body.len() + 8);
        put_i32(&mut pkt, xid);
        put_i32(&mut pkt, op);
        pkt.extend_from_slice(body);
        self.send_frame(&pkt)?;
        let deadline = Instant::now() + self.dead_after();
        loop {
            let frame = self.read_frame(deadline)?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::TimedOut, "ZooKeeper request timed out")
            })?;
            let (rxid, err) = self.note_frame(&frame)?;
            if rxid == xid {
                if err != 0 {
                    return Err(ZkError::Server(err));
                }
                return Ok(frame[16..].to_vec());
            }
        }
    }

    /// `getChildren(path, watch)`.
    fn children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ZkError> {
        let mut body = Vec::new();
        put_bytes(&mut body, path.as_bytes());
        body.push(u8::from(watch));
        let reply = self.call(OP_GET_CHILDREN, &body)?;
        let mut r = Jute { buf: &reply };
        let n = r.i32()?;
        let mut out = Vec::with_capacity(n.clamp(0, 1024) as usize);
        for _ in 0..n.max(0) {
            out.push(r.string()?);
        }
        Ok(out)
    }

    /// `getData(path, no watch)`.
    fn data(&mut self, path: &str) -> Result<Vec<u8>, ZkError> {
        let mut body = Vec::new();
        put_bytes(&mut body, path.as_bytes());
        body.push(0);
        let reply = self.call(OP_GET_DATA, &body)?;
        Ok(Jute { buf: &reply }.bytes()?.to_vec())
    }
}

// ---------------------------------------------------------------------------------------------
// MasterInfo decoding and leader choice.

/// `host:port`, with IPv6 literals in brackets.
fn join_host_port(host: &str, port: u64) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Mesos stores `MasterInfo.ip` as the `in_addr` bytes read as a host-order (little-endian on
/// every platform Mesos runs on) uint32.
fn packed_ip(ip: u32) -> String {
    std::net::Ipv4Addr::from(ip.to_le_bytes()).to_string()
}

/// The master address from a `json.info_*` node (Mesos ≥ 0.24).
pub fn master_from_json(data: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let str_of = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let top_port = v.get("port").and_then(serde_json::Value::as_u64);
    if let Some(addr) = v.get("address") {
        let port = addr
            .get("port")
            .and_then(serde_json::Value::as_u64)
            .or(top_port)
            .unwrap_or(5050);
        if let Some(host) = str_of(addr, "ip").or_else(|| str_of(addr, "hostname")) {
            return Some(join_host_port(&host, port));
        }
    }
    let port = top_port.unwrap_or(5050);
    if let Some(host) = str_of(&v, "hostname") {
        return Some(join_host_port(&host, port));
    }
    let ip = v.get("ip").and_then(serde_json::Value::as_u64)?;
    Some(join_host_port(&packed_ip(u32::try_from(ip).ok()?), port))
}

/// Reads a protobuf varint.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Walks the fields of one protobuf message: `(field number, varint value, bytes value)`.
fn pb_fields(mut buf: &[u8]) -> Option<Vec<(u64, u64, &[u8])>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, varint(&mut buf)?, &[][..])),
            1 => buf = buf.get(8..)?,
            2 => {
                let n = usize::try_from(varint(&mut buf)?).ok()?;
                let (v, rest) = (buf.get(..n)?, buf.get(n..)?);
                out.push((field, 0, v));
                buf = rest;
            }
            5 => buf = buf.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

/// The master address from a protobuf `info_*` node (Mesos < 0.24): `address` (field 7:
/// hostname 1, ip 2, port 3) when present, else the packed `ip` (field 2) and `port` (field 3,
/// default 5050).
pub fn master_from_protobuf(data: &[u8]) -> Option<String> {
    let fields = pb_fields(data)?;
    if let Some((_, _, addr)) = fields.iter().find(|(f, _, _)| *f == 7) {
        let a = pb_fields(addr)?;
        let s = |n: u64| {
            a.iter()
                .find(|(f, _, b)| *f == n && !b.is_empty())
                .map(|(_, _, b)| String::from_utf8_lossy(b).into_owned())
        };
        let port = a
            .iter()
            .find(|(f, _, _)| *f == 3)
            .map_or(5050, |(_, v, _)| *v);
        if let Some(host) = s(2).or_else(|| s(1)) {
            return Some(join_host_port(&host, port));
        }
    }
    let ip = fields
        .iter()
        .find(|(f, _, _)| *f == 2)
        .map(|(_, v, _)| *v)?;
    let port = fields
        .iter()
        .find(|(f, _, _)| *f == 3)
        .map_or(5050, |(_, v, _)| *v);
    Some(join_host_port(&packed_ip(u32::try_from(ip).ok()?), port))
}

/// The master nodes among `children`, lowest sequence first: the `json.info_*` ones, or if
/// there are none the protobuf `info_*` ones. The bool is true for JSON.
pub fn master_nodes(children: &[String]) -> (Vec<String>, bool) {
    let pick = |prefix: &str| {
        let mut v: Vec<(i64, &String)> = children
            .iter()
            .filter_map(|c| {
                let seq = c.strip_prefix(prefix)?;
                seq.parse::<i64>().ok().map(|n| (n, c))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, c)| c.clone()).collect::<Vec<_>>()
    };
    let json = pick("json.info_");
    if json.is_empty() {
        (pick("info_"), false)
    } else {
        (json, true)
    }
}

// ---------------------------------------------------------------------------------------------
// The detector thread.

/// Receives each new masters list; returns false if it could not take it now (retried).
pub type OnMasters = Box<dyn FnMut(&[String]) -> bool + Send>;

/// The running detector thread.
#[derive(Debug)]
pub struct Detector {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Detector {
    /// Starts detection for `url`, reporting into `status` and each new list to `on_masters`.
    pub fn spawn(
        url: ZkUrl,
        status: Arc<Detection>,
        on_masters: OnMasters,
    ) -> io::Result<Detector> {
        let stop = Arc::new(AtomicBool::new(false));
        status.set_state(DetectionState::Connecting);
        let mut run = Run::new(url, status, on_masters, stop.clone());
        let join = std::thread::Builder::new()
            .name("zk-detector".into())
            .spawn(move || run.run())?;
        Ok(Detector {
            stop,
            join: Some(join),
        })
    }

    /// Asks the thread to stop; it is not joined (a connect may be in flight).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.join.take());
    }
}

struct Run {
    url: ZkUrl,
    status: Arc<Detection>,
    on_masters: OnMasters,
    stop: Arc<AtomicBool>,
    /// The last list handed over.
    sent: Vec<String>,
    /// A list the refresh thread could not take yet, or that waits for
    /// [`MIN_HANDOVER_INTERVAL`].
    unsent: Option<Vec<String>>,
    /// When the last list was handed over.
    handed_at: Option<Instant>,
    logged_outage: bool,
    logged_no_leader: bool,
    /// Nodes whose data did not parse (logged once each).
    bad_nodes: Vec<String>,
}

impl Run {
    fn new(
        url: ZkUrl,
        status: Arc<Detection>,
        on_masters: OnMasters,
        stop: Arc<AtomicBool>,
    ) -> Run {
        Run {
            url,
            status,
            on_masters,
            stop,
            sent: Vec::new(),
            unsent: None,
            handed_at: None,
            logged_outage: false,
            logged_no_leader: false,
            bad_nodes: Vec::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
        }
    }

    fn resolve(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for h in &self.url.hosts {
            match h.to_socket_addrs() {
                Ok(a) => out.extend(a),
                Err(e) => log::debug!("ZooKeeper host {h}: {e}"),
            }
        }
        out
    }

    fn outage(&mut self, what: &str) {
        let st = if self.status.state() == DetectionState::Connecting {
            DetectionState::Connecting
        } else {
            DetectionState::Disconnected
        };
        self.status.set_state(st);
        if !self.logged_outage {
            self.logged_outage = true;
            let keep = if self.status.leader_found() {
                "; keeping the last masters list and records"
            } else {
                ""
            };
            log::warn!("ZooKeeper {what}; reconnecting with backoff{keep}");
        }
    }

    fn run(&mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut next = 0usize;
        while !self.stopped() {
            self.flush();
            let addrs = self.resolve();
            if addrs.is_empty() {
                self.outage(&format!("hosts {:?} do not resolve", self.url.hosts));
                self.sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            let addr = addrs[next % addrs.len()];
            next = next.wrapping_add(1);
            match Conn::connect(addr, self.url.auth.as_deref()) {
                Ok(conn) => {
                    backoff = BACKOFF_MIN;
                    self.status.sessions.fetch_add(1, Ordering::Relaxed);
                    log::info!(
                        "ZooKeeper session with {addr} (timeout {} ms); watching {}",
                        conn.session.as_millis(),
                        self.url.path
                    );
                    self.logged_outage = false;
                    if let Err(e) = self.session(conn) {
                        self.outage(&format!("session with {addr} lost: {e}"));
                    }
                }
                Err(e) => {
                    self.outage(&format!("{addr}: {e}"));
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Runs one session until it fails or the detector stops.
    fn session(&mut self, mut conn: Conn) -> Result<(), ZkError> {
        let mut relist_at = Instant::now();
        let ping_every = conn.session / 3;
        while !self.stopped() {
            let now = Instant::now();
            if conn.watch_fired || now >= relist_at {
                conn.watch_fired = false;
                self.list(&mut conn)?;
                relist_at = Instant::now() + RELIST_EVERY;
            }
            self.flush();
            if conn.last_sent.elapsed() >= ping_every {
                conn.ping()?;
            }
            let until = (Instant::now() + TICK)
                .min(relist_at)
                .min(conn.last_sent + ping_every);
            conn.pump(until)?;
        }
        Ok(())
    }

    /// Lists the masters and publishes the result.
    fn list(&mut self, conn: &mut Conn) -> Result<(), ZkError> {
        let path = self.url.path.clone();
        let children = match conn.children(&path, true) {
            Ok(c) => c,
            Err(ZkError::Server(ERR_NO_NODE)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let (nodes, json) = master_nodes(&children);
        let mut masters: Vec<String> = Vec::with_capacity(nodes.len());
        for node in nodes {
            let data = match conn.data(&format!("{path}/{node}")) {
                Ok(d) => d,
                // Deleted between the list and the read: the watch has fired already.
                Err(ZkError::Server(ERR_NO_NODE)) => continue,
                Err(e) => return Err(e),
            };
            let addr = if json {
                master_from_json(&data)
            } else {
                master_from_protobuf(&data)
            };
            match addr {
                Some(a) if !masters.contains(&a) => masters.push(a),
                Some(_) => {}
                None if !self.bad_nodes.contains(&node) => {
                    log::warn!("ZooKeeper {path}/{node}: no master address in its MasterInfo");
                    self.bad_nodes.push(node);
                }
                None => {}
            }
        }
        self.publish(masters);
        Ok(())
    }

    fn publish(&mut self, masters: Vec<String>) {
        if masters.is_empty() {
            self.status.set_state(DetectionState::NoLeader);
            if !self.logged_no_leader {
                self.logged_no_leader = true;
                let keep = if self.status.leader_found() {
                    "; keeping the last masters list"
                } else {
                    ""
                };
                log::warn!("ZooKeeper {}: no master registered{keep}", self.url.path);
            }
            return;
        }
        self.logged_no_leader = false;
        self.status.set_state(DetectionState::Connected);
        let leader = masters[0].clone();
        let previous = self.status.leader();
        if leader != previous {
            self.status.leader_changes.fetch_add(1, Ordering::Relaxed);
            self.status.set_leader(&leader);
            if previous.is_empty() {
                log::info!("leading master detected: {leader} (masters {masters:?})");
            } else {
                log::info!("leading master changed: {previous} -> {leader} (masters {masters:?})");
            }
        }
        if masters != self.sent {
            self.sent = masters.clone();
            self.unsent = Some(masters);
            self.flush();
        }
    }

    /// Hands a pending list to the refresh thread, at most once per
    /// [`MIN_HANDOVER_INTERVAL`]; a list held back goes at a later call (the session loop
    /// calls this at least every [`TICK`]).
    fn flush(&mut self) {
        let Some(list) = self.unsent.take() else {
            return;
        };
        let too_soon = self
            .handed_at
            .is_some_and(|at| at.elapsed() < MIN_HANDOVER_INTERVAL);
        if too_soon || !(self.on_masters)(&list) {
            self.unsent = Some(list);
            return;
        }
        self.handed_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zk_url_parses_hosts_path_and_userinfo() {
        let u = ZkUrl::parse("zk://10.0.0.1:2181,10.0.0.2/mesos").expect("ok");
        assert_eq!(u.hosts, ["10.0.0.1:2181", "10.0.0.2:2181"]);
        assert_eq!(u.path, "/mesos");
        assert_eq!(u.auth, None);
        let u = ZkUrl::parse("zk://user:pw@[::1]:2182,[::2]/a/b/").expect("ok");
        assert_eq!(u.hosts, ["[::1]:2182", "[::2]:2181"]);
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.auth.as_deref(), Some("user:pw"));
        assert!(ZkUrl::parse("http://h/mesos").is_err());
        assert!(ZkUrl::parse("zk://h").is_err());
        assert!(ZkUrl::parse("zk://h/").is_err());
        assert!(ZkUrl::parse("zk:///mesos").is_err());
    }

    #[test]
    fn leader_is_lowest_sequence_json_node_else_protobuf() {
        let c = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (n, json) = master_nodes(&c(&[
            "json.info_0000000012",
            "info_0000000001",
            "log_replicas",
            "json.info_0000000003",
            "json.info_0000000100",
        ]));
        assert!(json);
        assert_eq!(
            n,
            [
                "json.info_0000000003",
                "json.info_0000000012",
                "json.info_0000000100"
            ]
        );
        let (n, json) = master_nodes(&c(&["info_0000000007", "info_0000000002", "x"]));
        assert!(!json);
        assert_eq!(n, ["info_0000000002", "info_0000000007"]);
        assert!(master_nodes(&c(&["log_replicas"])).0.is_empty());
    }

    #[test]
    fn master_address_from_json_info() {
        let real = br#"{"address":{"hostname":"m1.example","ip":"10.0.0.11","port":5050},
            "hostname":"m1.example","id":"x","ip":184549386,"pid":"master@10.0.0.11:5050",
            "port":5050,"version":"1.11.0"}"#;
        assert_eq!(master_from_json(real).as_deref(), Some("10.0.0.11:5050"));
        assert_eq!(
            master_from_json(br#"{"address":{"hostname":"m2","port":5051}}"#).as_deref(),
            Some("m2:5051")
        );
        assert_eq!(
            master_from_json(br#"{"hostname":"m3","port":5052}"#).as_deref(),
            Some("m3:5052")
        );
        assert_eq!(
            master_from_json(br#"{"address":{"ip":"fd00::1","port":5050}}"#).as_deref(),
            Some("[fd00::1]:5050")
        );
        // Packed ip: 10.0.0.11 as in_addr bytes read little-endian.
        let packed = u32::from_le_bytes([10, 0, 0, 11]);
        assert_eq!(
            master_from_json(format!(r#"{{"ip":{packed},"port":5050}}"#).as_bytes()).as_deref(),
            Some("10.0.0.11:5050")
        );
        assert_eq!(master_from_json(b"not json"), None);
        assert_eq!(master_from_json(b"{}"), None);
    }

    fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn pb_field_varint(out: &mut Vec<u8>, field: u64, v: u64) {
        pb_varint(out, field << 3);
        pb_varint(out, v);
    }

    fn pb_field_bytes(out: &mut Vec<u8>, field: u64, v: &[u8]) {
        pb_varint(out, (field << 3) | 2);
        pb_varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }

    #[test]
    fn master_address_from_protobuf_info() {
        // MasterInfo { id=1 "x", ip=2 packed, port=3, pid=4, hostname=5 }.
        let mut m = Vec::new();
        pb_field_bytes(&mut m, 1, b"id-1");
        pb_field_varint(&mut m, 2, u64::from(u32::from_le_bytes([10, 1, 2, 3])));
        pb_field_varint(&mut m, 3, 5051);
        pb_field_bytes(&mut m, 4, b"master@10.1.2.3:5051");
        pb_field_bytes(&mut m, 5, b"m.example");
        assert_eq!(master_from_protobuf(&m).as_deref(), Some("10.1.2.3:5051"));
        // No port field: 5050.
        let mut m = Vec::new();
        pb_field_bytes(&mut m, 1, b"id-2");
        pb_field_varint(&mut m, 2, u64::from(u32::from_le_bytes([192, 168, 0, 1])));
        assert_eq!(
            master_from_protobuf(&m).as_deref(),
            Some("192.168.0.1:5050")
        );
        // With an Address message (field 7): it wins.
        let mut a = Vec::new();
        pb_field_bytes(&mut a, 1, b"m.example");
        pb_field_bytes(&mut a, 2, b"10.9.9.9");
        pb_field_varint(&mut a, 3, 5055);
        pb_field_bytes(&mut m, 7, &a);
        assert_eq!(master_from_protobuf(&m).as_deref(), Some("10.9.9.9:5055"));
        assert_eq!(master_from_protobuf(&[0xff]), None);
    }

    #[test]
    fn detection_timeout_applies_only_until_a_leader_is_found() {
        let d = Detection::default();
        let long_ago = Instant::now() - Duration::from_secs(5);
        assert!(d.timed_out(long_ago, 2));
        assert!(!d.timed_out(long_ago, 0), "0 disables");
        assert!(!d.timed_out(Instant::now(), 2));
        d.set_leader("10.0.0.1:5050");
        assert!(!d.timed_out(long_ago, 2), "a leader was found once");
    }

    /// A fake ZooKeeper server speaking just enough protocol for one session.
    fn fake_zk(
        children: Vec<&'static str>,
        data: Vec<(&'static str, Vec<u8>)>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<i32>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut ops = Vec::new();
            let read_frame = |s: &mut TcpStream| -> Option<Vec<u8>> {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).ok()?;
                let mut b = vec![0u8; i32::from_be_bytes(len) as usize];
                s.read_exact(&mut b).ok()?;
                Some(b)
            };
            let _connect = read_frame(&mut s).expect("connect req");
            let mut resp = Vec::new();
            put_i32(&mut resp, 0);
            put_i32(&mut resp, 6000);
            put_i64(&mut resp, 42);
            put_bytes(&mut resp, &[0; 16]);
            let mut framed = Vec::new();
            put_bytes(&mut framed, &resp);
            s.write_all(&framed).expect("write");
            while let Some(req) = read_frame(&mut s) {
                let mut r = Jute { buf: &req };
                let xid = r.i32().expect("xid");
                let op = r.i32().expect("op");
                ops.push(op);
                let mut body = Vec::new();
                put_i32(&mut body, xid);
                put_i64(&mut body, 1);
                match op {
                    OP_GET_CHILDREN => {
                        put_i32(&mut body, 0);
                        put_i32(&mut body, children.len() as i32);
                        for c in &children {
                            put_bytes(&mut body, c.as_bytes());
                        }
                    }
                    OP_GET_DATA => {
                        let path = r.string().expect("path");
                        match data.iter().find(|(n, _)| path.ends_with(n)) {
                            Some((_, d)) => {
                                put_i32(&mut body, 0);
                                put_bytes(&mut body, d);
                                body.extend_from_slice(&[0u8; 68]);
                            }
                            None => put_i32(&mut body, ERR_NO_NODE),
                        }
                    }
                    _ => put_i32(&mut body, 0),
                }
                let mut framed = Vec::new();
                put_bytes(&mut framed, &body);
                if s.write_all(&framed).is_err() {
                    break;
                }
                if ops.len() >= 4 {
                    break;
                }
            }
            ops
        });
        (addr, t)
    }

    #[test]
    fn client_lists_reads_and_publishes_leader_first() {
        let (addr, server) = fake_zk(
            vec!["json.info_0000000002", "json.info_0000000001", "other"],
            vec![
                (
                    "json.info_0000000001",
                    br#"{"address":{"ip":"10.0.0.1","port":5050}}"#.to_vec(),
                ),
                (
                    "json.info_0000000002",
                    br#"{"address":{"ip":"10.0.0.2","port":5050}}"#.to_vec(),
                ),
            ],
        );
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let status = Arc::new(Detection::default());
        let mut run = Run::new(
            ZkUrl::parse(&format!("zk://{addr}/mesos")).expect("url"),
            status.clone(),
            Box::new(move |l: &[String]| {
                sink.lock().push(l.to_vec());
                true
            }),
            Arc::new(AtomicBool::new(false)),
        );
        let mut conn = Conn::connect(addr, None).expect("connect");
        assert_eq!(conn.session, Duration::from_millis(6000));
        run.list(&mut conn).expect("list");
        assert_eq!(
            *got.lock(),
            [vec!["10.0.0.1:5050".to_owned(), "10.0.0.2:5050".to_owned()]]
        );
        assert_eq!(status.state(), DetectionState::Connected);
        assert_eq!(status.leader(), "10.0.0.1:5050");
        // The same list again is not re-sent.
        run.list(&mut conn).ok();
        assert_eq!(got.lock().len(), 1);
        drop(conn);
        let ops = server.join().expect("server");
        assert_eq!(&ops[..3], [OP_GET_CHILDREN, OP_GET_DATA, OP_GET_DATA]);
    }

    #[test]
    fn leader_changes_reach_the_refresh_thread_at_most_once_a_second_newest_first() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let mut run = Run::new(
            ZkUrl::parse("zk://127.0.0.1:1/mesos").expect("url"),
            Arc::new(Detection::default()),
            Box::new(move |l: &[String]| {
                sink.lock().push(l.to_vec());
                true
            }),
            Arc::new(AtomicBool::new(false)),
        );
        let list = |leader: &str| vec![leader.to_owned(), "10.0.0.9:5050".to_owned()];
        // The first leader goes at once.
        run.publish(list("10.0.0.1:5050"));
        assert_eq!(got.lock().len(), 1);
        // Two more changes within the second: held back, the newest kept.
        run.publish(list("10.0.0.2:5050"));
        run.publish(list("10.0.0.3:5050"));
        run.flush();
        assert_eq!(got.lock().len(), 1);
        assert_eq!(
            run.status.leader(),
            "10.0.0.3:5050",
            "status follows at once"
        );
        // A second after the last hand-over, the newest list goes.
        run.handed_at = Some(Instant::now() - MIN_HANDOVER_INTERVAL);
        run.flush();
        assert_eq!(*got.lock(), [list("10.0.0.1:5050"), list("10.0.0.3:5050")]);
        // Nothing pending: nothing more is sent.
        run.handed_at = Some(Instant::now() - MIN_HANDOVER_INTERVAL);
        run.flush();
        assert_eq!(got.lock().len(), 2);
    }
}
