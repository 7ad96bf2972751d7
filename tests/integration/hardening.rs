//! Hardening (issue 8), end to end against the real binary on loopback: malformed packets over
//! UDP (each answered with the right rcode or dropped, counted by kind, with a valid query
//! answered correctly right after each one), 10,000 pseudo-random packets with the counters
//! adding up, bad TCP framing, the TCP limits (`tcpIdleTimeoutSeconds`, trickling and
//! slow-reading clients, `tcpMaxConnections`), `httpMaxConnections`, a state document with
//! fields of the wrong type (used, bad parts skipped and counted) or a numeric leader
//! (rejected, last good kept), an upstream that answers garbage, and `recursionAllowFrom`.
//!
//! The other fault cases live with their areas: master failures in `refresh`, upstream down
//! and the forward queue in `forward`, slow HTTP clients and the default HTTP cap in `http`.
//! Every wait is bounded, every test takes well under 30 s.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A as ARecord;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{Value, json};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{
    Q, QR, RD, Server, Transport, a_values, encode_name, http_raw, mini_state, tcp_exchange,
    wait_until,
};

use RecordType::{A, SRV};

/// The in-domain name every "good" query asks for, and its address.
const GOOD: &str = "web.marathon.mesos.";
const GOOD_IP: &str = "10.1.0.1";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A state file in a temporary directory, rewritten atomically.
struct StateFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl StateFile {
    fn new(doc: &Value) -> StateFile {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile {
            path: dir.path().join("state.json"),
            _dir: dir,
        };
        f.write(doc);
        f
    }

    fn write(&self, doc: &Value) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(doc).expect("json")).expect("write state");
        std::fs::rename(&tmp, &self.path).expect("rename state");
    }
}

/// A server reading `state` (refreshSeconds 1), with `extra` config keys, once it serves.
fn start(state: &StateFile, extra: Value) -> Server {
    let mut config = json!({"stateFile": state.path, "refreshSeconds": 1});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    let server = Server::start(config);
    server.wait_ready("mesos");
    server
}

/// The usual small server: `web.marathon.mesos.` A 10.1.0.1.
fn small(extra: Value) -> (StateFile, Server) {
    let state = StateFile::new(&mini_state(&[("web", GOOD_IP)]));
    let server = start(&state, extra);
    (state, server)
}

/// Every sample of `/metrics`, by series exactly as rendered (`name{labels}`).
struct Metrics(HashMap<String, f64>);

impl Metrics {
    fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    }
}

fn scrape(server: &Server) -> Metrics {
    let r = server.http_get("/metrics");
    assert_eq!(r.status, 200, "/metrics");
    Metrics(
        r.text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect(),
    )
}

fn malformed(kind: &str) -> String {
    format!("mesos_dns_malformed_total{{kind=\"{kind}\"}}")
}

const RECEIVED: &str = "mesos_dns_packets_received_total";
const SENT: &str = "mesos_dns_replies_sent_total";
const DROPPED: &str = "mesos_dns_dropped_total";

/// Checks that `msg` is the correct answer to the good query.
fn assert_good(msg: &Message, after: &str) {
    assert_eq!(
        msg.metadata.response_code,
        ResponseCode::NoError,
        "good query after {after}"
    );
    assert_eq!(a_values(msg), [GOOD_IP], "good query after {after}");
}

/// A good query over a fresh TCP connection, checked.
fn assert_tcp_alive(server: &Server, after: &str) {
    assert_good(&server.query_tcp(GOOD, A), after);
}

/// Sends `bad`, then a good query, from one fresh socket; checks the good query's answer and
/// returns every datagram that arrived before it (the replies to `bad`: the same socket always
/// reaches the same worker, which answers in order).
fn bad_then_good(server: &Server, bad: &[u8], what: &str) -> Vec<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.udp).expect("connect");
    let mut good = Q::new(GOOD, A);
    if bad.len() >= 2 && bad[..2] == good.id.to_be_bytes() {
        good.id ^= 0x8000;
    }
    sock.send(bad).expect("send bad");
    sock.send(&good.to_bytes()).expect("send good");
    let mut before = Vec::new();
    let mut buf = vec![0u8; 65535];
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply to the good query after {what}");
        sock.set_read_timeout(Some(left)).expect("timeout");
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no reply to the good query after {what}: {e}"));
        if n >= 2 && buf[..2] == good.id.to_be_bytes() {
            let msg = Message::from_vec(&buf[..n]).expect("decodable good reply");
            assert_good(&msg, what);
            return before;
        }
        before.push(buf[..n].to_vec());
    }
}

/// A header: ID, flags, QD/AN/NS/AR counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut p = Vec::with_capacity(512);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p
}

/// A question for `name` (wire form given), type A, class IN.
fn question_wire(name: &[u8]) -> Vec<u8> {
    let mut q = name.to_vec();
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

/// An OPT record with `owner`, payload 1232, `version`, and `rdlen` / `rdata` as given.
fn opt(owner: &[u8], version: u8, rdlen: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&41u16.to_be_bytes());
    r.extend_from_slice(&1232u16.to_be_bytes());
    r.extend_from_slice(&[0, version, 0, 0]);
    r.extend_from_slice(&rdlen.to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

/// A wire name of labels with these lengths (filled with `a`), then `mesos`, then the root.
fn long_name(labels: &[usize]) -> Vec<u8> {
    let mut n = Vec::new();
    for &l in labels {
        n.push(u8::try_from(l).expect("label length"));
        n.extend(std::iter::repeat_n(b'a', l));
    }
    n.extend_from_slice(&encode_name("mesos."));
    n
}

/// xorshift64: the deterministic source of every "random" byte here.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }
}

/// What a malformed packet must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// No reply; counted under this kind and in `mesos_dns_dropped_total`.
    Dropped(&'static str),
    /// A reply with this (4-bit) rcode; counted under this kind.
    Rcode(u8, &'static str),
}

// ---------------------------------------------------------------------------------------------
// Malformed packets over UDP
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_udp_packets_get_their_rcode_or_are_dropped_and_are_counted() {
    let (_state, server) = small(json!({}));
    let good_question = question_wire(&encode_name(GOOD));
    let valid = {
        let mut p = header(0x1001, RD, [1, 0, 0, 0]);
        p.extend_from_slice(&good_question);
        p
    };
    let with_question = |id: u16, counts: [u16; 4], rest: &[u8]| {
        let mut p = header(id, RD, counts);
        p.extend_from_slice(&good_question);
        p.extend_from_slice(rest);
        p
    };
    let mut cases: Vec<(String, Vec<u8>, Expect)> = Vec::new();
    for n in 0..12 {
        cases.push((
            format!("{n}-byte header"),
            valid[..n].to_vec(),
            Expect::Dropped("too_short"),
        ));
    }
    let formerr = |kind| Expect::Rcode(1, kind);
    cases.push((
        "QDCOUNT 0".into(),
        header(0x2000, RD, [0, 0, 0, 0]),
        formerr("qdcount"),
    ));
    let mut two = header(0x2002, RD, [2, 0, 0, 0]);
    two.extend_from_slice(&good_question);
    two.extend_from_slice(&question_wire(&encode_name("slave.mesos.")));
    cases.push(("QDCOUNT 2".into(), two, formerr("qdcount")));
    let mut looped = header(0x2003, RD, [1, 0, 0, 0]);
    looped.extend_from_slice(&question_wire(&[0xC0, 12]));
    cases.push(("pointer to itself".into(), looped, formerr("qname_pointer")));
    let mut forward = header(0x2004, RD, [1, 0, 0, 0]);
    forward.extend_from_slice(&question_wire(&[0xC0, 18]));
    forward.extend_from_slice(&encode_name(GOOD));
    cases.push(("forward pointer".into(), forward, formerr("qname_pointer")));
    let mut label64 = header(0x2005, RD, [1, 0, 0, 0]);
    label64.extend_from_slice(&question_wire(&long_name(&[64])));
    cases.push(("label of 64".into(), label64, formerr("bad_label")));
    let mut ext_label = header(0x2006, RD, [1, 0, 0, 0]);
    ext_label.extend_from_slice(&question_wire(&[0x80, 0]));
    cases.push(("label type 0b10".into(), ext_label, formerr("bad_label")));
    let mut n256 = header(0x2007, RD, [1, 0, 0, 0]);
    let name256 = long_name(&[63, 63, 63, 56]);
    assert_eq!(name256.len(), 256);
    n256.extend_from_slice(&question_wire(&name256));
    cases.push(("name of 256".into(), n256, formerr("name_too_long")));
    let mut n320 = header(0x2008, RD, [1, 0, 0, 0]);
    n320.extend_from_slice(&question_wire(&long_name(&[63; 5])));
    cases.push(("name of 326".into(), n320, formerr("name_too_long")));
    let mut cut = header(0x2009, RD, [1, 0, 0, 0]);
    cut.extend_from_slice(&encode_name(GOOD));
    cut.push(0);
    cases.push(("question cut short".into(), cut, formerr("truncated")));
    cases.push((
        "ANCOUNT past the end".into(),
        with_question(0x200a, [1, 2, 0, 0], &[]),
        formerr("truncated"),
    ));
    let root_opt = opt(&[0], 0, 0, &[]);
    cases.push((
        "two OPT records".into(),
        with_question(0x200b, [1, 0, 0, 2], &[root_opt.clone(), root_opt].concat()),
        formerr("duplicate_opt"),
    ));
    cases.push((
        "OPT owned by a.".into(),
        with_question(0x200c, [1, 0, 0, 1], &opt(&[1, b'a', 0], 0, 0, &[])),
        formerr("opt_owner"),
    ));
    cases.push((
        "OPT RDATA cut short".into(),
        with_question(0x200d, [1, 0, 0, 1], &opt(&[0], 0, 10, &[0, 10, 0, 6])),
        formerr("opt_rdata"),
    ));
    cases.push((
        "OPT options not tiling".into(),
        with_question(0x200e, [1, 0, 0, 1], &opt(&[0], 0, 5, &[0, 10, 0, 4, 9])),
        formerr("opt_rdata"),
    ));
    for op in 1..16u16 {
        let mut p = header(0x3000 + op, RD | (op << 11), [1, 0, 0, 0]);
        p.extend_from_slice(&good_question);
        cases.push((format!("opcode {op}"), p, Expect::Rcode(4, "opcode")));
    }
    let mut response = header(0x3100, QR | RD, [1, 0, 0, 0]);
    response.extend_from_slice(&good_question);
    cases.push(("QR set".into(), response, Expect::Dropped("response")));

    let first = scrape(&server);
    for (what, pkt, expect) in &cases {
        let before = scrape(&server);
        let replies = bad_then_good(&server, pkt, what);
        let after = scrape(&server);
        let delta = |series: &str| after.get(series) - before.get(series);
        match *expect {
            Expect::Dropped(kind) => {
                assert!(
                    replies.is_empty(),
                    "{what}: expected no reply, got {replies:02x?}"
                );
                assert_eq!(delta(DROPPED), 1.0, "{what}: dropped counted");
                assert_eq!(delta(&malformed(kind)), 1.0, "{what}: kind {kind}");
            }
            Expect::Rcode(rc, kind) => {
                assert_eq!(replies.len(), 1, "{what}: one reply, got {replies:02x?}");
                let r = &replies[0];
                assert!(r.len() >= 12, "{what}: short reply {r:02x?}");
                assert_eq!(r[..2], pkt[..2], "{what}: ID echoed");
                assert_eq!(r[2] & 0x80, 0x80, "{what}: QR set");
                assert_eq!(r[3] & 0x0f, rc, "{what}: rcode");
                assert_eq!(r[2] & 0x78, pkt[2] & 0x78, "{what}: opcode echoed");
                assert_eq!(delta(DROPPED), 0.0, "{what}: not dropped");
                assert_eq!(delta(&malformed(kind)), 1.0, "{what}: kind {kind}");
            }
        }
    }

    // Valid edge cases in the same run: a 255-octet name (NXDOMAIN), opcode 0 (answered),
    // EDNS version 1 (BADVERS, an extended rcode: 0 in the header, 1 in the OPT).
    let mut n255 = header(0x4000, RD, [1, 0, 0, 0]);
    n255.extend_from_slice(&question_wire(&long_name(&[63, 63, 63, 55])));
    let r = bad_then_good(&server, &n255, "255-octet name");
    let m = Message::from_vec(&r[0]).expect("decodable");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let r = bad_then_good(&server, &valid, "opcode 0");
    assert_good(
        &Message::from_vec(&r[0]).expect("decodable"),
        "opcode 0 itself",
    );
    let before = scrape(&server);
    let badvers = with_question(0x4001, [1, 0, 0, 1], &opt(&[0], 1, 0, &[]));
    let r = bad_then_good(&server, &badvers, "EDNS version 1");
    assert_eq!(r.len(), 1);
    let m = Message::from_vec(&r[0]).expect("decodable");
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    let after = scrape(&server);
    let outcome = "mesos_dns_queries_total{outcome=\"bad_version\"}";
    assert_eq!(after.get(outcome) - before.get(outcome), 1.0);

    // Every packet is accounted for: received = replies sent + dropped.
    let last = scrape(&server);
    let received = last.get(RECEIVED) - first.get(RECEIVED);
    let sent = last.get(SENT) - first.get(SENT);
    let dropped = last.get(DROPPED) - first.get(DROPPED);
    assert_eq!(received, 2.0 * (cases.len() as f64 + 3.0));
    assert_eq!(
        received,
        sent + dropped,
        "received {received} sent {sent} dropped {dropped}"
    );
    assert_eq!(dropped, 13.0, "12 short headers and QR set");
}

#[test]
fn ten_thousand_garbage_packets_no_crash_and_counters_add_up() {
    let (_state, mut server) = small(json!({}));
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let seeds: Vec<Vec<u8>> = vec![
        Q::new(GOOD, A).to_bytes(),
        Q::new("_web._tcp.marathon.mesos.", SRV)
            .edns(4096)
            .to_bytes(),
        Q::new("example.com.", A).to_bytes(),
    ];
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.udp).expect("connect");
    let before = scrape(&server);
    let (chunks, per_chunk) = (200, 50);
    let mut replies = 0u64;
    let mut buf = vec![0u8; 65535];
    for chunk in 0..chunks {
        let good = Q::new(GOOD, A);
        for i in 0..per_chunk {
            let mut pkt = Vec::with_capacity(512);
            if i % 2 == 0 {
                // Pure garbage, a plausible header (QR clear, QDCOUNT 1) half of the time.
                for _ in 0..rng.below(300) {
                    pkt.push(rng.byte());
                }
                if i % 4 == 0 && pkt.len() >= 12 {
                    pkt[2] &= 0x07;
                    pkt[4..6].copy_from_slice(&[0, 1]);
                    pkt[6] = 0;
                    pkt[8] = 0;
                    pkt[10] = 0;
                }
            } else {
                // A valid query with a few bytes changed, sometimes cut short.
                pkt.extend_from_slice(&seeds[rng.below(seeds.len())]);
                for _ in 0..=rng.below(4) {
                    let at = rng.below(pkt.len());
                    pkt[at] = rng.byte();
                }
                if rng.below(4) == 0 {
                    pkt.truncate(rng.below(pkt.len()));
                }
            }
            if pkt.len() >= 2 && pkt[..2] == good.id.to_be_bytes() {
                pkt[0] ^= 0xff;
            }
            sock.send(&pkt).expect("send garbage");
        }
        sock.send(&good.to_bytes()).expect("send good");
        // Everything sent before the good query is answered (or dropped) before it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "chunk {chunk}: no reply to the good query");
            sock.set_read_timeout(Some(left)).expect("timeout");
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("chunk {chunk}: no reply to the good query: {e}"));
            if n >= 2 && buf[..2] == good.id.to_be_bytes() {
                let msg = Message::from_vec(&buf[..n]).expect("decodable good reply");
                assert_good(&msg, &format!("garbage chunk {chunk}"));
                break;
            }
            replies += 1;
        }
    }
    assert!(
        server.wait_exit(Duration::from_millis(1)).is_none(),
        "the server died"
    );
    assert_tcp_alive(&server, "garbage");
    let sent_total = chunks * (per_chunk + 1);
    assert!(
        wait_until(Duration::from_secs(2), || {
            let m = scrape(&server);
            m.get(SENT) - before.get(SENT) == (replies + chunks as u64) as f64 + 1.0
        }),
        "replies sent must match replies received"
    );
    let after = scrape(&server);
    let d = |s: &str| after.get(s) - before.get(s);
    // One TCP query (assert_tcp_alive) besides the UDP packets.
    assert_eq!(
        d(RECEIVED),
        sent_total as f64 + 1.0,
        "every packet received"
    );
    assert_eq!(
        d(RECEIVED),
        d(SENT) + d(DROPPED),
        "received = answered + dropped"
    );
    let kinds: f64 = [
        "too_short",
        "response",
        "opcode",
        "qdcount",
        "truncated",
        "bad_label",
        "name_too_long",
        "qname_pointer",
        "duplicate_opt",
        "opt_owner",
        "opt_rdata",
    ]
    .iter()
    .map(|k| d(&malformed(k)))
    .sum();
    assert!(kinds > 2000.0, "malformed kinds counted: {kinds}");
    assert!(d(DROPPED) > 0.0 && d(SENT) > 5000.0);
}

// ---------------------------------------------------------------------------------------------
// TCP framing and limits
// ---------------------------------------------------------------------------------------------

/// Reads (and discards) until the server closes `s`; the time it took, or None within `limit`.
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<(Duration, usize)> {
    let t = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        let left = limit.saturating_sub(t.elapsed());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return Some((t.elapsed(), total)),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((t.elapsed(), total));
            }
            Err(_) => return None,
        }
    }
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.tcp, Duration::from_secs(2)).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = u16::try_from(msg.len())
        .expect("frame")
        .to_be_bytes()
        .to_vec();
    f.extend_from_slice(msg);
    f
}

#[test]
fn bad_tcp_frames_are_answered_or_closed_and_tcp_keeps_working() {
    let (_state, server) = small(json!({}));
    // A zero length prefix: an empty message, dropped; the connection is closed.
    let before = scrape(&server);
    let mut s = connect(&server);
    s.write_all(&[0, 0]).expect("write");
    assert!(
        wait_closed(&mut s, Duration::from_secs(3)).is_some(),
        "zero-length frame: connection not closed"
    );
    let after = scrape(&server);
    assert_eq!(
        after.get(&malformed("too_short")) - before.get(&malformed("too_short")),
        1.0
    );
    assert_eq!(after.get(DROPPED) - before.get(DROPPED), 1.0);
    assert_tcp_alive(&server, "zero-length frame");

    // A frame shorter than its prefix, then the client closes its side.
    let mut s = connect(&server);
    s.write_all(&[0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert!(
        wait_closed(&mut s, Duration::from_secs(3)).is_some(),
        "short frame: connection not closed"
    );
    assert_tcp_alive(&server, "short frame");

    // A 65535-byte frame: header, then labels of length 0x41 (reserved type): FORMERR.
    let mut big = header(0x5151, RD, [1, 0, 0, 0]);
    big.resize(65535, 0x41);
    let reply = tcp_exchange(server.tcp, &big);
    assert_eq!(reply[..2], [0x51, 0x51]);
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
    // A 65535-byte valid query: an ordinary question followed by 65k of trailing bytes.
    let mut padded = Q::new(GOOD, A).to_bytes();
    padded.resize(65535, 0xEE);
    let reply = Message::from_vec(&tcp_exchange(server.tcp, &padded)).expect("decodable");
    assert_good(&reply, "a padded 65535-byte query");
    // Random 65535-byte frames, several per connection: a reply or a close, never a crash.
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for _ in 0..4 {
        let junk: Vec<u8> = (0..65535).map(|_| rng.byte()).collect();
        let mut s = connect(&server);
        let mut frames = frame(&junk);
        frames.extend(frame(&junk));
        s.write_all(&frames).expect("write");
        s.shutdown(Shutdown::Write).expect("shutdown");
        assert!(wait_closed(&mut s, Duration::from_secs(5)).is_some());
    }
    assert_tcp_alive(&server, "random 64 KiB frames");
    assert_good(&server.query_udp(GOOD, A), "random 64 KiB frames (UDP)");
}

#[test]
fn tcp_idle_and_trickling_clients_are_closed_after_the_idle_timeout() {
    let (_state, server) = small(json!({"tcpIdleTimeoutSeconds": 1}));
    // Connects and sends nothing.
    let mut idle = connect(&server);
    // Sends half a query, then nothing.
    let mut half = connect(&server);
    let q = frame(&Q::new(GOOD, A).to_bytes());
    half.write_all(&q[..q.len() / 2]).expect("write");
    // Trickles a 300-byte frame one byte every 100 ms (30 s in all): the idle timeout bounds the
    // whole query, not each read.
    let mut trickle = connect(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = trickle.try_clone().expect("clone");
    let stop2 = stop.clone();
    let dribbler = std::thread::spawn(move || {
        let mut f = vec![1u8, 44];
        f.extend(std::iter::repeat_n(7u8, 300));
        for b in f {
            if stop2.load(Ordering::Relaxed) || writer.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let t = Instant::now();
    for (what, s) in [
        ("silent", &mut idle),
        ("half a query", &mut half),
        ("trickling", &mut trickle),
    ] {
        let closed = wait_closed(s, Duration::from_secs(5));
        let waited = t.elapsed();
        assert!(closed.is_some(), "{what}: not closed within 5 s");
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{what}: closed after {waited:?}, want about 1 s"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = dribbler.join();
    // A connection in use is not idle: three queries 600 ms apart on one connection.
    let mut s = connect(&server);
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    for i in 0..3 {
        let q = Q::new(GOOD, A);
        s.write_all(&frame(&q.to_bytes())).expect("write");
        let mut len = [0u8; 2];
        s.read_exact(&mut len)
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).expect("reply");
        assert_good(&Message::from_vec(&buf).expect("decodable"), "kept-alive");
        std::thread::sleep(Duration::from_millis(600));
    }
    assert_tcp_alive(&server, "idle clients");
}

#[test]
fn a_slow_reader_does_not_block_others_and_is_dropped() {
    // 300 tasks behind one name: each SRV reply with glue is several KiB.
    let tasks: Vec<(String, String)> = (0..300)
        .map(|i| {
            (
                "big".to_owned(),
                format!("10.2.{}.{}", i / 250, i % 250 + 1),
            )
        })
        .collect();
    let mut list: Vec<(&str, &str)> = tasks
        .iter()
        .map(|(n, ip)| (n.as_str(), ip.as_str()))
        .collect();
    list.push(("web", GOOD_IP));
    let state = StateFile::new(&mini_state(&list));
    let server = start(&state, json!({"tcpIdleTimeoutSeconds": 1}));
    let q = Q::new("_big._tcp.marathon.mesos.", SRV);
    let one = server.query(Transport::Tcp, &q);
    assert_eq!(one.answers.len(), 300);
    let reply_len = server.exchange(Transport::Tcp, &q).len();
    assert!(reply_len > 8000, "reply of {reply_len} bytes");

    // 2,000 pipelined queries (about 90 KiB), then never read: the replies (tens of MiB) fill
    // both socket buffers and the server's write blocks.
    let mut slow = connect(&server);
    let wanted = 2000;
    let mut pipeline = Vec::new();
    for _ in 0..wanted {
        pipeline.extend(frame(&q.to_bytes()));
    }
    slow.write_all(&pipeline).expect("write pipeline");
    std::thread::sleep(Duration::from_millis(300));
    // Others are served at once meanwhile, over TCP and UDP.
    let t = Instant::now();
    assert_tcp_alive(&server, "a slow reader (meanwhile)");
    assert_good(&server.query_udp(GOOD, A), "a slow reader (meanwhile, UDP)");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "waited {:?}",
        t.elapsed()
    );
    // The reply being written is not taken within the idle timeout: the server gives up and
    // closes (without a deadline for the whole reply it kept going as long as the kernel took
    // a few bytes now and then).
    std::thread::sleep(Duration::from_millis(2200));
    let (_, read) =
        wait_closed(&mut slow, Duration::from_secs(10)).expect("slow reader not dropped");
    assert!(
        read < wanted * reply_len,
        "all {wanted} replies were delivered: the server never gave up ({read} bytes)"
    );
    assert_tcp_alive(&server, "a slow reader");
}

#[test]
fn tcp_connections_over_the_cap_are_closed_at_once_and_counted() {
    let (_state, server) = small(json!({"tcpMaxConnections": 4}));
    // Four connections, each proven accepted by one answered query, then held open.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect(&server);
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.write_all(&frame(&Q::new(GOOD, A).to_bytes()))
            .expect("write");
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("reply");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).expect("reply");
        held.push(s);
    }
    let before = scrape(&server).get("mesos_dns_tcp_rejected_total");
    for i in 0..3 {
        let mut extra = connect(&server);
        let _ = extra.write_all(&frame(&Q::new(GOOD, A).to_bytes()));
        let (waited, read) = wait_closed(&mut extra, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("connection {} over the cap not closed", i + 5));
        assert!(waited < Duration::from_secs(1), "closed after {waited:?}");
        assert_eq!(read, 0, "no reply over the cap");
    }
    let after = scrape(&server).get("mesos_dns_tcp_rejected_total");
    assert_eq!(after - before, 3.0, "rejections counted");
    // UDP is not affected; closing the held connections frees the slots.
    assert_good(&server.query_udp(GOOD, A), "TCP at the cap (UDP)");
    drop(held);
    let mut served = None;
    assert!(
        wait_until(Duration::from_secs(3), || {
            let mut s = connect(&server);
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let _ = s.write_all(&frame(&Q::new(GOOD, A).to_bytes()));
            let mut len = [0u8; 2];
            served = s.read_exact(&mut len).ok();
            served.is_some()
        }),
        "slots did not come back"
    );
    assert_tcp_alive(&server, "the connection cap");
}

// ---------------------------------------------------------------------------------------------
// HTTP limit
// ---------------------------------------------------------------------------------------------

#[test]
fn http_connections_over_http_max_connections_get_503_and_are_counted() {
    let (_state, server) = small(json!({"httpMaxConnections": 3}));
    let config = server.http_get("/v1/config").json();
    assert_eq!(config["HttpMaxConnections"], 3);
    assert_eq!(config["TcpMaxConnections"], 256);
    assert_eq!(config["TcpIdleTimeoutSeconds"], 10);
    let addr = server.http_addr();
    let before = scrape(&server).get("mesos_dns_http_overloaded_total");
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut got = None;
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || {
            got = http_raw(
                addr,
                b"GET /health HTTP/1.1\r\n\r\n",
                Duration::from_secs(2),
            );
            got.as_ref().is_some_and(|r| r.status == 503)
        }),
        "no 503 with 3 idle connections: {got:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    drop(idle);
    assert!(
        wait_until(Duration::from_secs(3), || server.http_get("/health").status
            == 200),
        "slots did not come back"
    );
    let after = scrape(&server).get("mesos_dns_http_overloaded_total");
    assert!(
        after - before >= 1.0,
        "overloaded counted: {before} -> {after}"
    );
    assert_good(&server.query_udp(GOOD, A), "the HTTP cap");
}

// ---------------------------------------------------------------------------------------------
// State documents with the wrong types
// ---------------------------------------------------------------------------------------------

fn skipped(m: &Metrics, what: &str) -> f64 {
    m.get(&format!("mesos_dns_state_skipped{{what=\"{what}\"}}"))
}

#[test]
fn state_with_fields_of_the_wrong_type_is_used_with_the_bad_parts_skipped_and_counted() {
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("web", GOOD_IP)])));
    let mut server = Server::start(json!({
        "masters": [master.hostport()], "refreshSeconds": 1, "stateTimeoutSeconds": 2
    }));
    server.wait_ready("mesos");
    assert_good(&server.query_udp(GOOD, A), "the first state");

    // Valid JSON with a leader, wrong types almost everywhere else.
    let label = "MesosContainerizer.NetworkSettings.IPAddress";
    let doc = json!({
        "frameworks": [
            "marathon",
            17,
            {"name": ["x"], "pid": 5, "tasks": []},
            {"name": "marathon", "pid": "scheduler(1)@10.9.0.1:8080", "tasks": [
                3, "task", [1, 2], null,
                {"id": 5, "name": "bad", "slave_id": "mini-S0", "state": "TASK_RUNNING"},
                {"id": "plain.1", "name": "plain", "slave_id": "mini-S0", "state": "TASK_RUNNING",
                 "resources": {"ports": 31000}, "statuses": {"state": "TASK_RUNNING"},
                 "discovery": "none"},
                {"id": "odd.2", "name": "odd", "slave_id": "mini-S0", "state": "TASK_RUNNING",
                 "resources": {"ports": "[31000-31001, x-y]"},
                 "statuses": [
                     7,
                     {"state": 1, "timestamp": "now", "labels": {"k": "v"},
                      "container_status": [], "healthy": "yes"},
                     {"state": "TASK_RUNNING", "timestamp": 1.0,
                      "labels": [5, {"key": label, "value": "10.1.0.7"}]}
                 ]}
            ]},
            {"name": "chronos", "pid": "scheduler(1)@10.9.0.2:8080", "tasks": "none"}
        ],
        "slaves": [
            {"id": "mini-S0", "pid": "slave(1)@10.9.1.1:5051"},
            "agent",
            {"id": 1, "pid": []},
            {"id": "S1", "pid": "nonsense"}
        ]
    });
    master.set(Behaviour::Ok(doc));
    assert!(
        wait_until(Duration::from_secs(5), || {
            a_values(&server.query_udp("odd.marathon.mesos.", A)) == ["10.1.0.7"]
        }),
        "the document was not used; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    // The good parts are served: the task without usable statuses by its agent's address,
    // the framework with a bad task list, the agent, the leader.
    assert_eq!(
        a_values(&server.query_udp("plain.marathon.mesos.", A)),
        ["10.9.1.1"]
    );
    assert_eq!(
        a_values(&server.query_udp("chronos.mesos.", A)),
        ["10.9.0.2"]
    );
    assert_eq!(a_values(&server.query_udp("slave.mesos.", A)), ["10.9.1.1"]);
    assert_eq!(
        a_values(&server.query_udp("leader.mesos.", A)),
        ["127.0.0.1"]
    );
    let srv = server.query_udp("_odd._tcp.marathon.mesos.", SRV);
    let mut ports: Vec<u16> = srv
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(s.port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [31000, 31001]);
    // The previous state's task is gone: the new document replaced it.
    assert_eq!(
        server.query_udp(GOOD, A).metadata.response_code,
        ResponseCode::NXDomain
    );
    let m = scrape(&server);
    // "marathon", 17, the bad pid; 3, "task", [1, 2], null, the numeric id, chronos's string
    // task list; "agent", the bad id/pid, the bad pid; "x-y" and the numeric ports.
    assert_eq!(skipped(&m, "frameworks"), 3.0);
    assert_eq!(skipped(&m, "tasks"), 6.0);
    assert_eq!(skipped(&m, "agents"), 3.0);
    assert_eq!(skipped(&m, "port_parts"), 2.0);
    assert_eq!(m.get("mesos_dns_refresh_total{result=\"failed\"}"), 0.0);

    // Whole sections of the wrong type: used (leader records), nothing else, counted.
    master.set(Behaviour::Ok(json!({"frameworks": "none", "slaves": 42})));
    assert!(
        wait_until(Duration::from_secs(5), || {
            server
                .query_udp("odd.marathon.mesos.", A)
                .metadata
                .response_code
                == ResponseCode::NXDomain
        }),
        "the second document was not used"
    );
    assert_eq!(
        a_values(&server.query_udp("leader.mesos.", A)),
        ["127.0.0.1"]
    );
    let m = scrape(&server);
    assert_eq!(skipped(&m, "frameworks"), 1.0);
    assert_eq!(skipped(&m, "agents"), 1.0);
    assert_eq!(server.count_stderr("state refresh failed"), 0);
    assert!(server.wait_exit(Duration::from_millis(1)).is_none());
}

#[test]
fn state_whose_leader_is_a_number_is_rejected_and_the_last_good_kept() {
    let state = StateFile::new(&mini_state(&[("web", GOOD_IP)]));
    let server = start(&state, json!({}));
    let mut bad = mini_state(&[("web", "10.1.0.99")]);
    bad["leader"] = json!(5050);
    state.write(&bad);
    assert!(
        wait_until(Duration::from_secs(5), || server
            .count_stderr("state refresh failed")
            >= 1),
        "not rejected; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    let failed = server
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("state refresh failed"));
    assert!(
        failed.as_deref().is_some_and(|l| l.contains("no_leader")),
        "failure kind named: {failed:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_good(&server.query_udp(GOOD, A), "a numeric leader");
    let m = scrape(&server);
    assert!(m.get("mesos_dns_refresh_failures_total{kind=\"no_leader\"}") >= 1.0);
    assert_eq!(
        server.count_stderr("state refresh failed"),
        1,
        "logged once"
    );
    state.write(&mini_state(&[("web", "10.1.0.2")]));
    assert!(
        wait_until(Duration::from_secs(5), || {
            a_values(&server.query_udp(GOOD, A)) == ["10.1.0.2"]
        }),
        "no recovery"
    );
}

// ---------------------------------------------------------------------------------------------
// Upstreams: garbage, and recursionAllowFrom
// ---------------------------------------------------------------------------------------------

/// A fake upstream on 127.0.0.1 answering each datagram with what `reply` makes of it.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Reply = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>> + Send>;

impl Upstream {
    fn start(mut reply: Reply) -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
        let addr = sock.local_addr().expect("addr");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                seen2.fetch_add(1, Ordering::Relaxed);
                for d in reply(&buf[..n]) {
                    let _ = sock.send_to(&d, peer);
                }
            }
        });
        Upstream {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A forwarding server (externalon, timeout 1 s) in front of `upstream`.
fn forwarding(state: &StateFile, upstream: &Upstream, extra: Value) -> Server {
    let mut config = json!({
        "externalon": true,
        "resolvers": [upstream.addr.to_string()],
        "timeout": 1,
    });
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    start(state, config)
}

#[test]
fn upstream_answering_garbage_gives_servfail_in_time_and_is_counted() {
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    let upstream = Upstream::start(Box::new(move |q: &[u8]| {
        // Pure noise, then noise behind the right ID, then a header-only "reply".
        let noise: Vec<u8> = (0..40).map(|_| rng.byte()).collect();
        let mut with_id = q[..2.min(q.len())].to_vec();
        with_id.extend((0..60).map(|_| rng.byte()));
        let mut header_only = q[..12.min(q.len())].to_vec();
        if header_only.len() > 2 {
            header_only[2] |= 0x80;
        }
        vec![noise, with_id, header_only]
    }));
    let state = StateFile::new(&mini_state(&[("web", GOOD_IP)]));
    let server = forwarding(&state, &upstream, json!({}));
    let done = Arc::new(AtomicBool::new(false));
    // In-domain queries keep being answered at once while the forwarded one waits.
    let udp = server.udp;
    let done2 = done.clone();
    let prober = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.connect(udp).expect("connect");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let mut worst = Duration::ZERO;
        let mut buf = [0u8; 512];
        while !done2.load(Ordering::Relaxed) {
            let q = Q::new(GOOD, A);
            let t = Instant::now();
            sock.send(&q.to_bytes()).expect("send");
            let n = sock
                .recv(&mut buf)
                .expect("in-domain reply while forwarding");
            worst = worst.max(t.elapsed());
            let m = Message::from_vec(&buf[..n]).expect("decodable");
            assert_good(&m, "a forwarded query pending");
            std::thread::sleep(Duration::from_millis(50));
        }
        worst
    });
    let t = Instant::now();
    let m = server.query_udp("www.example.test.", A);
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let worst = prober.join().expect("prober");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        took < Duration::from_secs(2),
        "SERVFAIL after {took:?}, timeout is 1 s"
    );
    assert!(
        worst < Duration::from_millis(300),
        "in-domain reply took {worst:?}"
    );
    assert!(upstream.seen() >= 1);
    let metrics = scrape(&server);
    let errors = metrics.get(&format!(
        "mesos_dns_upstream_errors_total{{upstream=\"{}\"}}",
        upstream.addr
    ));
    assert!(
        errors >= 3.0,
        "garbage datagrams counted as errors: {errors}"
    );
    assert!(metrics.get("mesos_dns_forward_replies_total{source=\"servfail_all_failed\"}") >= 1.0);
    assert_eq!(
        metrics.get("mesos_dns_forward_replies_total{source=\"upstream\"}"),
        0.0
    );
    assert_good(&server.query_udp(GOOD, A), "an upstream answering garbage");
}

/// An upstream answering every A query with 192.0.2.7.
fn proper_upstream() -> Upstream {
    Upstream::start(Box::new(|raw: &[u8]| {
        let Ok(q) = Message::from_vec(raw) else {
            return vec![];
        };
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.metadata.recursion_available = true;
        let Some(question) = q.queries.first().cloned() else {
            return vec![];
        };
        r.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(ARecord::new(192, 0, 2, 7)),
        ));
        r.add_query(question);
        vec![r.to_vec().expect("encode")]
    }))
}

#[test]
fn recursion_allow_from_refuses_clients_outside_and_forwards_for_those_inside() {
    let upstream = proper_upstream();
    let state = StateFile::new(&mini_state(&[("web", GOOD_IP)]));

    let closed = forwarding(
        &state,
        &upstream,
        json!({"recursionAllowFrom": ["10.0.0.0/8"]}),
    );
    for transport in [Transport::Udp, Transport::Tcp] {
        let q = Q::new("www.example.test.", A).edns(1232);
        let m = closed.query(transport, &q);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::Refused,
            "{transport:?}"
        );
        assert!(m.answers.is_empty());
        assert_eq!(m.queries.len(), 1, "question echoed");
        assert!(m.edns.is_some(), "OPT echoed");
        // In-domain names are answered whoever asks.
        assert_good(
            &closed.query(transport, &Q::new(GOOD, A)),
            "a refused recursion",
        );
    }
    assert_eq!(upstream.seen(), 0, "nothing reached the upstream");
    let m = scrape(&closed);
    assert_eq!(m.get("mesos_dns_recursion_refused_total"), 2.0);
    assert_eq!(m.get("mesos_dns_responses_total{rcode=\"REFUSED\"}"), 2.0);
    let config = closed.http_get("/v1/config").json();
    assert_eq!(config["RecursionAllowFrom"], json!(["10.0.0.0/8"]));
    drop(closed);

    let open = forwarding(
        &state,
        &upstream,
        json!({"recursionAllowFrom": ["10.0.0.0/8", "127.0.0.0/8"]}),
    );
    let m = open.query_udp("www.example.test.", A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_values(&m), ["192.0.2.7"]);
    assert_eq!(upstream.seen(), 1);
    assert_eq!(scrape(&open).get("mesos_dns_recursion_refused_total"), 0.0);
}
