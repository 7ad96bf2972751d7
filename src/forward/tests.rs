//! In-process tests of the forwarder: fake upstreams on loopback sockets (UDP and TCP),
//! a "worker" socket the pool replies from, and a client socket that receives the replies.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

/// What a fake upstream does with one query: the datagrams to send back.
type Behaviour = Arc<dyn Fn(&Message, &[u8]) -> Vec<Vec<u8>> + Send + Sync>;

struct FakeUpstream {
    addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A UDP upstream on loopback (and a TCP one on the same port when `tcp`).
fn fake_upstream(tcp: bool, behaviour: Behaviour) -> FakeUpstream {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, st2, b2) = (seen.clone(), stop.clone(), behaviour.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !st2.load(Ordering::Relaxed) {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            s2.fetch_add(1, Ordering::Relaxed);
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            for d in b2(&m, &buf[..n]) {
                let _ = sock.send_to(&d, peer);
            }
        }
    });
    if tcp {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        let (s3, st3) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st3.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if c.read_exact(&mut q).is_err() {
                    continue;
                }
                s3.fetch_add(1, Ordering::Relaxed);
                let Ok(m) = Message::from_vec(&q) else {
                    continue;
                };
                if let Some(d) = behaviour(&m, &q).into_iter().last() {
                    let mut framed = (d.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&d);
                    let _ = c.write_all(&framed);
                }
            }
        });
    }
    FakeUpstream { addr, seen, stop }
}

/// Answers every query with A 192.0.2.<n> (TTL 300), flags AA.
fn answer_a(n: u8) -> Behaviour {
    Arc::new(move |q: &Message, _| {
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.authoritative = true;
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.add_query(q.queries[0].clone());
        r.add_answer(Record::from_rdata(
            q.queries[0].name().clone(),
            300,
            RData::A(A::new(192, 0, 2, n)),
        ));
        vec![r.to_vec().unwrap()]
    })
}

struct Rig {
    fwd: Arc<Forwarder>,
    client: UdpSocket,
    _worker: Arc<UdpSocket>,
}

fn rig(config: &Config) -> Rig {
    let worker = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let fwd = Forwarder::start(config, vec![worker.clone()]).unwrap();
    Rig {
        fwd,
        client,
        _worker: worker,
    }
}

fn config(resolvers: &[SocketAddr]) -> Config {
    Config {
        resolvers: resolvers.to_vec(),
        timeout_seconds: 1,
        ..Config::default()
    }
}

fn query(id: u16, name: &str, rt: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rt));
    m.to_vec().unwrap()
}

impl Rig {
    /// Sends `q` through `udp_query`; returns the reply, immediate or relayed.
    fn ask(&self, q: &[u8]) -> (Message, bool) {
        let mut out = vec![0u8; 65535];
        let peer = self.client.local_addr().unwrap();
        let n = self.fwd.udp_query(0, q, peer, &mut out);
        if n > 0 {
            return (Message::from_vec(&out[..n]).unwrap(), true);
        }
        let mut buf = [0u8; 65535];
        let n = self.client.recv(&mut buf).expect("a relayed reply");
        (Message::from_vec(&buf[..n]).unwrap(), false)
    }
}

#[test]
fn relays_then_answers_from_cache() {
    let up = fake_upstream(false, answer_a(7));
    let r = rig(&config(&[up.addr]));
    let (m, immediate) = r.ask(&query(0x1111, "www.example.org.", RecordType::A));
    assert!(!immediate);
    assert_eq!(m.metadata.id, 0x1111);
    assert!(m.metadata.authoritative, "flags relayed as is");
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 7)));
    // Same name, other case and ID: from the cache, with the client's spelling.
    let (m, immediate) = r.ask(&query(0x2222, "WWW.Example.ORG.", RecordType::A));
    assert!(immediate, "a cache hit is answered by the worker");
    assert_eq!(m.metadata.id, 0x2222);
    assert!(!m.metadata.authoritative);
    assert_eq!(m.queries[0].name().to_string(), "WWW.Example.ORG.");
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 7)));
    assert!(m.answers[0].ttl <= 300 && m.answers[0].ttl >= 299);
    assert_eq!(up.seen.load(Ordering::Relaxed), 1);
    let fm = r.fwd.metrics();
    assert_eq!((fm.cache.hits, fm.cache.inserts, fm.relayed), (1, 1, 1));
    assert_eq!(fm.upstreams[0].queries, 1);
    assert_eq!(fm.upstreams[0].latency.count, 1);
}

#[test]
fn garbage_is_ignored_and_counted() {
    // First a datagram with a wrong ID and one that is junk, then the real reply.
    let good = answer_a(9);
    let up = fake_upstream(
        false,
        Arc::new(move |q: &Message, raw: &[u8]| {
            let mut wrong = good(q, raw).remove(0);
            wrong[0] ^= 0xff;
            vec![wrong, vec![0xde, 0xad], good(q, raw).remove(0)]
        }),
    );
    let r = rig(&config(&[up.addr]));
    let (m, _) = r.ask(&query(5, "x.example.org.", RecordType::A));
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 9)));
    assert_eq!(r.fwd.metrics().upstreams[0].errors, 2);
}

#[test]
fn silent_upstream_then_next_one() {
    let hole = fake_upstream(false, Arc::new(|_: &Message, _: &[u8]| vec![]));
    let up = fake_upstream(false, answer_a(3));
    let r = rig(&config(&[hole.addr, up.addr]));
    let t0 = Instant::now();
    let (m, _) = r.ask(&query(6, "y.example.org.", RecordType::A));
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 3)));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3));
    let fm = r.fwd.metrics();
    assert_eq!((fm.upstreams[0].timeouts, fm.upstreams[1].queries), (1, 1));
}

#[test]
fn all_fail_servfail_in_time() {
    let hole = fake_upstream(false, Arc::new(|_: &Message, _: &[u8]| vec![]));
    let r = rig(&config(&[hole.addr]));
    let t0 = Instant::now();
    let (m, _) = r.ask(&query(8, "z.example.org.", RecordType::AAAA));
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries[0].name().to_string(), "z.example.org.");
    assert_eq!(r.fwd.metrics().all_failed, 1);
}

#[test]
fn zone_never_falls_back_to_default() {
    let default_up = fake_upstream(false, answer_a(1));
    let hole = fake_upstream(false, Arc::new(|_: &Message, _: &[u8]| vec![]));
    let mut zones = BTreeMap::new();
    zones.insert("corp.test".to_string(), vec![hole.addr]);
    let r = rig(&Config {
        zone_resolvers: zones,
        ..config(&[default_up.addr])
    });
    let (m, _) = r.ask(&query(9, "a.corp.test.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(default_up.seen.load(Ordering::Relaxed), 0);
    assert_eq!(hole.seen.load(Ordering::Relaxed), 1);
    let (m, _) = r.ask(&query(10, "a.other.test.", RecordType::A));
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 1)));
}

#[test]
fn queue_full_is_servfail_at_once() {
    let hole = fake_upstream(false, Arc::new(|_: &Message, _: &[u8]| vec![]));
    let r = rig(&Config {
        forwarders: 1,
        forward_queue: 1,
        ..config(&[hole.addr])
    });
    let peer = r.client.local_addr().unwrap();
    let mut out = vec![0u8; 4096];
    let mut immediate = 0;
    for i in 0..200u16 {
        let q = query(i, &format!("n{i}.example.org."), RecordType::A);
        let n = r.fwd.udp_query(0, &q, peer, &mut out);
        if n > 0 {
            let m = Message::from_vec(&out[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            assert_eq!(m.metadata.id, i);
            immediate += 1;
        }
    }
    assert!(immediate > 0);
    assert_eq!(r.fwd.metrics().queue_full, immediate);
}

#[test]
fn tcp_queries_go_over_tcp() {
    let up = fake_upstream(true, answer_a(4));
    let r = rig(&config(&[up.addr]));
    let q = query(0x3333, "t.example.org.", RecordType::A);
    let mut out = vec![0u8; 65535];
    let n = r.fwd.tcp_query(&q, &mut out);
    let m = Message::from_vec(&out[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x3333);
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 4)));
    assert_eq!(r.fwd.metrics().tcp, 1);
    // Now cached: the UDP path answers it without the upstream.
    let (m, immediate) = r.ask(&query(0x4444, "t.example.org.", RecordType::A));
    assert!(immediate);
    assert_eq!(m.answers[0].data, RData::A(A::new(192, 0, 2, 4)));
}

#[test]
fn udp_reply_is_cut_to_the_client_limit() {
    // 60 A records: about 1 KiB, more than 512.
    let up = fake_upstream(
        false,
        Arc::new(|q: &Message, _: &[u8]| {
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.add_query(q.queries[0].clone());
            for i in 0..60 {
                r.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::A(A::new(10, 0, 0, i)),
                ));
            }
            vec![r.to_vec().unwrap()]
        }),
    );
    let r = rig(&config(&[up.addr]));
    let (m, _) = r.ask(&query(11, "big.example.org.", RecordType::A));
    assert!(m.metadata.truncation);
    assert!(!m.answers.is_empty() && m.answers.len() < 60);
    // From the cache (it was stored whole): cut the same way, TC set.
    let (m, immediate) = r.ask(&query(12, "big.example.org.", RecordType::A));
    assert!(immediate && m.metadata.truncation);
    // Over TCP the whole answer, from the cache.
    let mut out = vec![0u8; 65535];
    let n = r
        .fwd
        .tcp_query(&query(13, "big.example.org.", RecordType::A), &mut out);
    let m = Message::from_vec(&out[..n]).unwrap();
    assert_eq!(m.answers.len(), 60);
    assert!(!m.metadata.truncation);
}

#[test]
fn no_upstreams_is_refused() {
    let r = rig(&config(&[]));
    let (m, _) = r.ask(&query(14, "a.example.org.", RecordType::A));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.metadata.recursion_desired && !m.metadata.recursion_available);
}
