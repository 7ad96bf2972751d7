//! The test harness: starts the real `mesos-dns` binary from a JSON config in a temporary
//! directory, waits for its `listening` log line, and talks to it over real loopback sockets.
//!
//! Queries are built byte by byte here (so a test controls every header bit, class and EDNS
//! field, including values a DNS library would normalise away) and replies are decoded with
//! hickory-proto. Every wait is bounded: a hung server fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::Value;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mesos-dns");

/// The original project's fixture; tests that use it skip when `../shared` is absent.
pub(crate) const FAKE_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/mesos-dns/fake.json"
);

/// The repo's own fixture (see tests/fixtures/README.md).
pub(crate) const STATE_SMALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/state-small.json"
);

/// How long a server may take to log its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-attempt UDP reply timeout.
const UDP_TIMEOUT: Duration = Duration::from_secs(2);
/// UDP attempts before giving up.
const UDP_ATTEMPTS: usize = 3;

/// Reads fake.json, or prints a skip notice and returns None when `../shared` is absent.
pub(crate) fn fake_json() -> Option<String> {
    match std::fs::read_to_string(FAKE_JSON) {
        Ok(s) => Some(s),
        Err(_) => {
            // Why: the fixture lives outside the repo; a visible notice beats a silent pass.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: ../shared not present");
            }
            None
        }
    }
}

/// The repo's small fixture as text.
pub(crate) fn state_small() -> String {
    std::fs::read_to_string(STATE_SMALL).expect("tests/fixtures/state-small.json")
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `mesos-dns` child process; killed on drop.
pub(crate) struct Server {
    child: Child,
    /// DNS over UDP.
    pub(crate) udp: SocketAddr,
    /// DNS over TCP.
    pub(crate) tcp: SocketAddr,
    /// The HTTP API (None when `httpon` is false).
    pub(crate) http: Option<SocketAddr>,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// Writes `config` into `dir` with the harness defaults forced (port 0, loopback listeners,
/// `externalon` false unless given) and returns the path.
pub(crate) fn write_config(dir: &Path, mut config: Value) -> PathBuf {
    let obj = config
        .as_object_mut()
        .expect("config must be a JSON object");
    obj.insert("port".into(), 0.into());
    obj.insert("listener".into(), "127.0.0.1".into());
    obj.insert("httpport".into(), 0.into());
    obj.insert("httplistener".into(), "127.0.0.1".into());
    obj.entry("externalon").or_insert(false.into());
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write config");
    path
}

impl Server {
    /// Starts the binary with `-config <file>`; panics (with its stderr) if it does not log
    /// `listening` within 10 s.
    pub(crate) fn start(config: Value) -> Server {
        Server::start_with_args(config, &[])
    }

    /// Like [`Server::start`] with extra command-line arguments before `-config`.
    pub(crate) fn start_with_args(config: Value, args: &[&str]) -> Server {
        Server::launch(config, |path| {
            let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            v.push("-config".into());
            v.push(path.display().to_string());
            v
        })
    }

    /// Like [`Server::start`] with extra environment variables.
    pub(crate) fn start_with_env(config: Value, env: &[(&str, &str)]) -> Server {
        Server::launch_with_env(config, env, |path| {
            vec!["-config".into(), path.display().to_string()]
        })
    }

    /// Writes the config, then runs the binary with the arguments `make_args` builds from the
    /// config path.
    pub(crate) fn launch(config: Value, make_args: impl FnOnce(&Path) -> Vec<String>) -> Server {
        Server::launch_with_env(config, &[], make_args)
    }

    fn launch_with_env(
        config: Value,
        env: &[(&str, &str)],
        make_args: impl FnOnce(&Path) -> Vec<String>,
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = write_config(dir.path(), config);
        let mut child = Command::new(BIN)
            .args(make_args(&config_path))
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mesos-dns");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("stderr lock").push(line);
            }
        });
        let mut addrs = None;
        let started = wait_until(START_TIMEOUT, || {
            addrs = stderr
                .lock()
                .expect("stderr lock")
                .iter()
                .find_map(|l| parse_listening(l));
            addrs.is_some() || matches!(child.try_wait(), Ok(Some(_)))
        });
        let Some((udp, tcp, http)) = addrs else {
            let status = child.try_wait();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mesos-dns did not log `listening` (started={started}, exit={status:?}); stderr:\n{}",
                stderr.lock().expect("stderr lock").join("\n")
            );
        };
        Server {
            child,
            udp,
            tcp,
            http,
            stderr,
            _dir: dir,
        }
    }

    /// Every stderr line so far.
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// How many stderr lines so far contain `needle`.
    pub(crate) fn count_stderr(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .expect("stderr lock")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The process id (for signals).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// A plain UDP query (RD set, no EDNS, IN class, random ID).
    pub(crate) fn query_udp(&self, name: &str, qtype: RecordType) -> Message {
        self.query(Transport::Udp, &Q::new(name, qtype))
    }

    /// A plain TCP query.
    pub(crate) fn query_tcp(&self, name: &str, qtype: RecordType) -> Message {
        self.query(Transport::Tcp, &Q::new(name, qtype))
    }

    /// Sends `q` over `transport`, checks the reply ID, decodes it.
    pub(crate) fn query(&self, transport: Transport, q: &Q) -> Message {
        let bytes = self.exchange(transport, q);
        let msg = Message::from_vec(&bytes)
            .unwrap_or_else(|e| panic!("undecodable reply to {q:?}: {e}; bytes {bytes:02x?}"));
        assert_eq!(msg.metadata.id, q.id, "reply ID must echo the query ID");
        msg
    }

    /// Sends `q` over `transport` and returns the raw reply bytes.
    pub(crate) fn exchange(&self, transport: Transport, q: &Q) -> Vec<u8> {
        let pkt = q.to_bytes();
        match transport {
            Transport::Udp => self
                .send_raw_udp(&pkt)
                .unwrap_or_else(|| panic!("no UDP reply to {q:?}")),
            Transport::Tcp => self.send_raw_tcp(&pkt),
        }
    }

    /// Sends raw bytes over UDP and waits (2 s per attempt, 3 attempts) for a reply with the
    /// same ID; None if none came.
    pub(crate) fn send_raw_udp(&self, pkt: &[u8]) -> Option<Vec<u8>> {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.connect(self.udp).expect("connect udp");
        sock.set_read_timeout(Some(UDP_TIMEOUT)).expect("timeout");
        let mut buf = vec![0u8; 65535];
        for _ in 0..UDP_ATTEMPTS {
            sock.send(pkt).expect("send udp");
            let deadline = Instant::now() + UDP_TIMEOUT;
            while Instant::now() < deadline {
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 2 && pkt.len() >= 2 && buf[..2] == pkt[..2] => {
                        return Some(buf[..n].to_vec());
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        None
    }

    /// Sends `bad` then a valid query from the same UDP socket, and returns every datagram
    /// received within the next 2 s (a reply to the valid query ends the wait early, after a
    /// short grace period for stragglers). The server's workers read one socket each in
    /// order, so if the first datagram back is the valid query's reply, `bad` got none.
    pub(crate) fn send_bad_then_good_udp(&self, bad: &[u8], good: &Q) -> Vec<Vec<u8>> {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        sock.connect(self.udp).expect("connect udp");
        sock.send(bad).expect("send bad");
        sock.send(&good.to_bytes()).expect("send good");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65535];
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut grace_until = None;
        loop {
            let now = Instant::now();
            let until = grace_until.unwrap_or(deadline).min(deadline);
            if now >= until {
                break;
            }
            sock.set_read_timeout(Some(until - now)).expect("timeout");
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let is_good = n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == good.id;
                    got.push(buf[..n].to_vec());
                    if is_good && grace_until.is_none() {
                        grace_until = Some(Instant::now() + Duration::from_millis(200));
                    }
                }
                Err(_) => break,
            }
        }
        got
    }

    /// Sends one length-prefixed message over a fresh TCP connection and reads one reply.
    pub(crate) fn send_raw_tcp(&self, pkt: &[u8]) -> Vec<u8> {
        tcp_exchange(self.tcp, pkt)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One DNS message over a fresh TCP connection (2 s timeouts).
pub(crate) fn tcp_exchange(addr: SocketAddr, pkt: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect tcp");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let len = u16::try_from(pkt.len()).expect("query too long");
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(pkt);
    s.write_all(&framed).expect("write tcp");
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("read tcp length");
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut reply).expect("read tcp reply");
    reply
}

/// Parses `listening dns-udp=A dns-tcp=B http=C ...` (`http=off` gives None).
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr, Option<SocketAddr>)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |key: &str| -> Option<SocketAddr> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    Some((field("dns-udp=")?, field("dns-tcp=")?, field("http=")))
}

/// Which DNS transport a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// UDP (512-byte limit without EDNS).
    Udp,
    /// TCP with the 2-byte length prefix.
    Tcp,
}

/// EDNS fields of a query's OPT record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdnsQ {
    /// Advertised UDP payload size (sent as is, even below 512).
    pub(crate) udp_size: u16,
    /// EDNS version.
    pub(crate) version: u8,
    /// DO bit.
    pub(crate) do_bit: bool,
}

/// A query, encoded by hand so any field can be set.
#[derive(Debug, Clone)]
pub(crate) struct Q {
    /// Message ID.
    pub(crate) id: u16,
    /// The whole flags word (QR, opcode, RD, ...).
    pub(crate) flags: u16,
    /// Question name, dotted; sent with its case as given.
    pub(crate) name: String,
    /// QTYPE.
    pub(crate) qtype: u16,
    /// QCLASS.
    pub(crate) qclass: u16,
    /// OPT record, if any.
    pub(crate) edns: Option<EdnsQ>,
}

/// RD flag.
pub(crate) const RD: u16 = 0x0100;
/// QR flag.
pub(crate) const QR: u16 = 0x8000;

impl Q {
    /// An IN-class query with RD set and a fresh pseudo-random ID.
    pub(crate) fn new(name: &str, qtype: RecordType) -> Q {
        Q {
            id: next_id(),
            flags: RD,
            name: name.to_owned(),
            qtype: u16::from(qtype),
            qclass: 1,
            edns: None,
        }
    }

    /// With an OPT record (version 0, no DO) advertising `udp_size`.
    pub(crate) fn edns(mut self, udp_size: u16) -> Q {
        self.edns = Some(EdnsQ {
            udp_size,
            version: 0,
            do_bit: false,
        });
        self
    }

    /// The wire form.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64);
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&self.flags.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        p.extend_from_slice(&encode_name(&self.name));
        p.extend_from_slice(&self.qtype.to_be_bytes());
        p.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(e) = self.edns {
            p.push(0);
            p.extend_from_slice(&41u16.to_be_bytes());
            p.extend_from_slice(&e.udp_size.to_be_bytes());
            p.push(0);
            p.push(e.version);
            p.push(if e.do_bit { 0x80 } else { 0 });
            p.push(0);
            p.extend_from_slice(&0u16.to_be_bytes());
        }
        p
    }
}

/// Dotted name → wire labels (no compression).
pub(crate) fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(u8::try_from(label.len()).expect("label too long"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A pseudo-random message ID (distinct across calls in this process).
fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    ((n.wrapping_mul(40_503).wrapping_add(seed)) & 0xffff) as u16
}

/// Runs the real `dig` with `args`; fails the test with a clear message if dig is missing.
pub(crate) fn dig(args: &[&str]) -> String {
    let out = Command::new("dig").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `dig` ({e}): install dnsutils (scripts/test does this) to run the dig tests"
        )
    });
    assert!(
        out.status.success(),
        "dig {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("dig output is UTF-8")
}

/// A small generated Mesos state: one framework `marathon` (pid on 10.9.0.1), one agent
/// `S0` on 10.9.1.1:5051 and one TASK_RUNNING task per `(name, ip)` with a Mesos-containerizer
/// IP label (so `<name>.marathon.mesos.` A is that IP) and ports `[31000-31000]`.
pub(crate) fn mini_state(tasks: &[(&str, &str)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| {
            serde_json::json!({
                "id": format!("{name}.task-{i}"),
                "name": name,
                "slave_id": "mini-S0",
                "state": "TASK_RUNNING",
                "resources": {"ports": "[31000-31000]"},
                "statuses": [{
                    "state": "TASK_RUNNING",
                    "timestamp": 1.0,
                    "labels": [{"key": "MesosContainerizer.NetworkSettings.IPAddress", "value": ip}]
                }]
            })
        })
        .collect();
    serde_json::json!({
        "leader": "master@10.9.0.9:5050",
        "frameworks": [{"name": "marathon", "pid": "scheduler(1)@10.9.0.1:8080", "tasks": tasks}],
        "slaves": [{"id": "mini-S0", "pid": "slave(1)@10.9.1.1:5051"}]
    })
}

/// The A values (as text, sorted) of a reply's answer section.
pub(crate) fn a_values(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.data.to_string())
        .collect();
    v.sort();
    v
}

impl Server {
    /// Waits (up to 10 s) until the first snapshot is served: `leader.<domain>.` A no longer
    /// gets SERVFAIL. Panics with the server's stderr otherwise.
    pub(crate) fn wait_ready(&self, domain: &str) {
        let name = format!("leader.{domain}.");
        let ready = wait_until(Duration::from_secs(10), || {
            self.query_udp(&name, RecordType::A).metadata.response_code
                != hickory_proto::op::ResponseCode::ServFail
        });
        assert!(
            ready,
            "no snapshot within 10 s; stderr:\n{}",
            self.stderr_lines().join("\n")
        );
    }
}

/// One HTTP reply as read off the wire.
#[derive(Debug, Clone)]
pub(crate) struct HttpReply {
    /// Status code of the status line.
    pub(crate) status: u16,
    /// Header fields in order, names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (everything after the head until the server closed).
    pub(crate) body: Vec<u8>,
}

impl HttpReply {
    /// The first header named `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (key order kept); panics with the body otherwise.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply body is not JSON ({e}): {}", self.text()))
    }
}

/// Writes `request` as is to a fresh connection to `addr`, then reads until the server closes
/// (at most `timeout`) and parses the reply. None when no complete status line came back.
/// A connection reset after some bytes arrived still parses what was read.
pub(crate) fn http_raw(addr: SocketAddr, request: &[u8], timeout: Duration) -> Option<HttpReply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect http");
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    // A server may answer (and close) before it read everything; ignore write errors.
    let _ = s.write_all(request);
    read_http_reply(&mut s, timeout)
}

/// Reads one reply from `s` until EOF, reset or `timeout`, and parses it.
pub(crate) fn read_http_reply(s: &mut TcpStream, timeout: Duration) -> Option<HttpReply> {
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        s.set_read_timeout(Some(deadline - now)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_http_reply(&raw)
}

/// Splits a raw reply into status, headers and body.
fn parse_http_reply(raw: &[u8]) -> Option<HttpReply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(HttpReply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

impl Server {
    /// The HTTP address; panics when HTTP is off.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http.expect("the server logged http=off")
    }

    /// `method path` with `headers` over a fresh connection (HTTP/1.1, `Host` and
    /// `Connection: close` added); panics when no reply comes within 10 s.
    pub(crate) fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.http_addr()
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        http_raw(self.http_addr(), req.as_bytes(), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no HTTP reply to {method} {path}"))
    }

    /// `GET path` with no extra headers.
    pub(crate) fn http_get(&self, path: &str) -> HttpReply {
        self.http("GET", path, &[])
    }
}

/// Where `nsd` may live besides `$PATH` (root's sbin directories).
const NSD_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The `nsd` binary (a real upstream or secondary for the forward and xfr tests). Panics with
/// the fix when it is missing: a test that needs it must fail, never pass silently.
pub(crate) fn nsd_binary() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(NSD_DIRS.iter().map(std::path::PathBuf::from))
        .map(|d| d.join("nsd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`nsd` is not installed: scripts/test installs nsd (apt-get install -y nsd)")
        })
}

/// A port free for both UDP and TCP on 127.0.0.1 at the time of the call.
pub(crate) fn free_loopback_port() -> u16 {
    for _ in 0..50 {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// The value of the `/metrics` sample `series` (name with labels, exactly as rendered), if the
/// page has it.
pub(crate) fn try_metric(server: &Server, series: &str) -> Option<f64> {
    let text = server.http_get("/metrics").text();
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Like [`try_metric`], for a sample that must be there (panics with the whole page if not).
pub(crate) fn metric(server: &Server, series: &str) -> f64 {
    try_metric(server, series).unwrap_or_else(|| {
        panic!(
            "no {series} in /metrics:\n{}",
            server.http_get("/metrics").text()
        )
    })
}

/// One UDP exchange with `addr`; the reply with the query's ID, or None within `timeout`.
pub(crate) fn udp_exchange(addr: SocketAddr, pkt: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.connect(addr).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.send(pkt).ok()?;
    let mut buf = vec![0u8; 65535];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match s.recv(&mut buf) {
            Ok(n) if n >= 2 && buf[..2] == pkt[..2] => return Some(buf[..n].to_vec()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}
