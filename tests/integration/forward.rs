//! Forwarding end to end (behaviour reference §4.6, product.md's forward cache): the real
//! binary in front of a real upstream DNS server, Debian's `nsd`, run on loopback with small
//! zones written by each test.
//!
//! Checked: answers, rcodes and flags relayed as the upstream sent them; `zoneResolvers`
//! routing with no fallback to the default list; SERVFAIL within `timeout` + 1 s when the
//! upstream is gone while in-domain names keep answering fast; answers (positive and
//! negative) served from the cache after the upstream stopped, with aged TTLs; SERVFAIL at
//! once when the forward queue is full, counted in `/metrics`; TCP clients forwarded over TCP.
//!
//! `nsd` must be installed (`scripts/test` installs it); without it these tests fail.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::harness::{
    Q, Server, Transport, a_values, free_loopback_port as free_port, metric, mini_state,
    nsd_binary, udp_exchange, wait_until,
};

/// The test zone served by the first upstream.
const EXAMPLE_ZONE: &str = "\
$ORIGIN example.test.
$TTL 300
@     IN SOA ns1.example.test. admin.example.test. 7 3600 600 86400 30
@     IN NS  ns1.example.test.
ns1   IN A   192.0.2.53
www   IN A   192.0.2.1
www   IN AAAA 2001:db8::1
txt   IN TXT \"hello world\"
@     IN MX  10 mail.example.test.
mail  IN A   192.0.2.25
";

/// The same zone with other data, served by the default upstream in the routing test: an
/// answer from it proves a zone name went to the wrong list.
const EXAMPLE_ZONE_WRONG: &str = "\
$ORIGIN example.test.
$TTL 300
@     IN SOA ns1.example.test. admin.example.test. 1 3600 600 86400 30
@     IN NS  ns1.example.test.
ns1   IN A   198.51.100.53
www   IN A   198.51.100.1
mail  IN A   198.51.100.25
";

/// A zone for the default list.
const OTHER_ZONE: &str = "\
$ORIGIN other.test.
$TTL 120
@     IN SOA ns1.other.test. admin.other.test. 1 3600 600 86400 60
@     IN NS  ns1.other.test.
ns1   IN A   203.0.113.53
www   IN A   203.0.113.1
";

/// A running `nsd` on loopback; killed on drop.
struct Nsd {
    child: Option<Child>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nsd {
    /// Starts `nsd -d` serving `zones` (name, zone file text) on a free port, retrying with
    /// another port when it does not come up; panics after a few tries.
    fn start(zones: &[(&str, &str)]) -> Nsd {
        let bin = nsd_binary();
        let mut last_err = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let conf = write_nsd_conf(dir.path(), port, zones);
            let mut child = Command::new(&bin)
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let probe = Q::new(zones[0].0, RecordType::SOA);
            let up = wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
                    || udp_exchange(addr, &probe.to_bytes(), Duration::from_millis(200)).is_some()
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Nsd {
                    child: Some(child),
                    addr,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            last_err = err;
        }
        panic!("nsd did not start; its last stderr:\n{last_err}");
    }

    /// Stops it, and waits (bounded) until nothing answers on its port any more: nsd's
    /// server processes exit shortly after their parent.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            let probe = Q::new("example.test.", RecordType::SOA).to_bytes();
            let gone = wait_until(Duration::from_secs(5), || {
                udp_exchange(self.addr, &probe, Duration::from_millis(100)).is_none()
            });
            assert!(
                gone,
                "nsd still answers on {} after it was killed",
                self.addr
            );
        }
    }

    /// The address as a `resolvers` entry.
    fn resolver(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        // No waiting or asserting here: this may run while a test is already failing.
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_nsd_conf(dir: &Path, port: u16, zones: &[(&str, &str)]) -> PathBuf {
    let d = dir.display();
    let mut conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  \
         zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  database: \"\"\n  verbosity: 0\n  \
         rrl-ratelimit: 0\n  server-count: 1\n  hide-version: yes\n\
         remote-control:\n  control-enable: no\n"
    );
    for (name, text) in zones {
        let file = format!("{name}.zone");
        std::fs::write(dir.join(&file), text).expect("write zone");
        conf.push_str(&format!("zone:\n  name: {name}\n  zonefile: \"{file}\"\n"));
    }
    let path = dir.join("nsd.conf");
    std::fs::write(&path, conf).expect("write nsd.conf");
    path
}

/// A state file with one task (`web.marathon.mesos.` A 10.1.2.3), for in-domain queries.
struct StateFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn state_file() -> StateFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, mini_state(&[("web", "10.1.2.3")]).to_string()).expect("write state");
    StateFile { path, _dir: dir }
}

/// A forwarding server (externalon, timeout 1 s) in front of `resolvers`, with `extra` keys.
fn forwarding_server(state: &StateFile, resolvers: &[String], extra: Value) -> Server {
    let mut config = json!({
        "stateFile": state.path,
        "externalon": true,
        "resolvers": resolvers,
        "timeout": 1,
    });
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    let server = Server::start(config);
    assert!(
        wait_until(Duration::from_secs(10), || {
            a_values(&server.query_udp("web.marathon.mesos.", RecordType::A)) == ["10.1.2.3"]
        }),
        "the state file was not loaded"
    );
    server
}

/// The answer section as sorted "TYPE rdata" strings.
fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

/// (type, owner, ttl) of the authority section.
fn authority(m: &Message) -> Vec<(RecordType, String, u32)> {
    m.authorities
        .iter()
        .map(|r| (r.record_type(), r.name.to_string(), r.ttl))
        .collect()
}

#[test]
fn forward_relays_answers_rcodes_and_flags() {
    let nsd = Nsd::start(&[("example.test", EXAMPLE_ZONE)]);
    let state = state_file();
    let server = forwarding_server(&state, &[nsd.resolver()], json!({}));

    let m = server.query_udp("www.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative, "AA of nsd's reply is relayed");
    assert!(
        !m.metadata.recursion_available,
        "nsd sets no RA, none is added"
    );
    assert_eq!(answers(&m), ["A 192.0.2.1"]);
    assert_eq!(m.answers[0].ttl, 300);

    let m = server.query_udp("www.example.test.", RecordType::AAAA);
    assert_eq!(answers(&m), ["AAAA 2001:db8::1"]);
    let m = server.query_udp("txt.example.test.", RecordType::TXT);
    assert_eq!(answers(&m), ["TXT hello world"]);
    let m = server.query_udp("example.test.", RecordType::MX);
    assert_eq!(answers(&m), ["MX 10 mail.example.test."]);

    // NXDOMAIN with nsd's SOA: min(SOA TTL, MINIMUM) = 30.
    let m = server.query_udp("nope.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative && m.answers.is_empty());
    assert_eq!(
        authority(&m),
        [(RecordType::SOA, "example.test.".to_owned(), 30)]
    );
    // NODATA: NOERROR, no answer, the SOA.
    let m = server.query_udp("www.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(authority(&m)[0].0, RecordType::SOA);

    // The relay is transparent: the same records as asking nsd directly, and nsd's OPT
    // comes back to an EDNS query.
    let q = Q::new("mail.example.test.", RecordType::A).edns(1232);
    let direct = Message::from_vec(
        &udp_exchange(nsd.addr, &q.to_bytes(), Duration::from_secs(2)).expect("nsd answers"),
    )
    .expect("decode");
    let relayed = server.query(Transport::Udp, &q);
    assert_eq!(answers(&relayed), answers(&direct));
    assert_eq!(
        relayed.metadata.authoritative,
        direct.metadata.authoritative
    );
    assert!(relayed.edns.is_some(), "an EDNS query gets an OPT back");

    // In-domain names are still ours.
    assert_eq!(
        a_values(&server.query_udp("web.marathon.mesos.", RecordType::A)),
        ["10.1.2.3"]
    );
}

#[test]
fn forward_zone_resolvers_route_by_zone_without_fallback() {
    let mut zone_up = Nsd::start(&[("example.test", EXAMPLE_ZONE)]);
    let default_up = Nsd::start(&[
        ("example.test", EXAMPLE_ZONE_WRONG),
        ("other.test", OTHER_ZONE),
    ]);
    let state = state_file();
    let server = forwarding_server(
        &state,
        &[default_up.resolver()],
        json!({"zoneResolvers": {"example.test": [zone_up.resolver()]}}),
    );
    assert_eq!(
        a_values(&server.query_udp("www.example.test.", RecordType::A)),
        ["192.0.2.1"],
        "a name under the zone goes to the zone's upstream"
    );
    assert_eq!(
        a_values(&server.query_udp("www.other.test.", RecordType::A)),
        ["203.0.113.1"],
        "other names go to the default list"
    );
    // With the zone's only upstream gone, a zone name is SERVFAIL: never sent to the
    // default list (which would answer 198.51.100.25).
    zone_up.stop();
    let m = server.query_udp("mail.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries[0].name().to_string(), "mail.example.test.");
}

#[test]
fn forward_upstream_down_servfail_in_time_while_domain_answers_fast() {
    // A black hole: a bound UDP socket that never answers.
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let state = state_file();
    let server = forwarding_server(
        &state,
        &[hole.local_addr().expect("addr").to_string()],
        json!({}),
    );
    let udp = server.udp;
    let forwarded = std::thread::spawn(move || {
        let t0 = Instant::now();
        let q = Q::new("slow.example.test.", RecordType::A);
        let reply = udp_exchange(udp, &q.to_bytes(), Duration::from_secs(5));
        (t0.elapsed(), reply)
    });
    // Meanwhile in-domain queries answer at full speed: none waits for the upstream's
    // 1 s timeout (the median is checked loosely, for busy CI machines).
    let t0 = Instant::now();
    let mut times = Vec::new();
    while t0.elapsed() < Duration::from_millis(800) {
        let t = Instant::now();
        let m = server.query_udp("web.marathon.mesos.", RecordType::A);
        times.push(t.elapsed());
        assert_eq!(a_values(&m), ["10.1.2.3"]);
    }
    times.sort();
    let (median, slowest) = (times[times.len() / 2], times[times.len() - 1]);
    assert!(
        times.len() > 10,
        "only {} in-domain answers in 800 ms",
        times.len()
    );
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "an in-domain query took {slowest:?} while an upstream was hanging"
    );
    let (took, reply) = forwarded.join().expect("join");
    let m = Message::from_vec(&reply.expect("a SERVFAIL, not silence")).expect("decode");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries[0].name().to_string(), "slow.example.test.");
    assert!(
        took < Duration::from_secs(2),
        "SERVFAIL after {took:?} (timeout 1 s)"
    );
    assert!(
        took >= Duration::from_millis(900),
        "SERVFAIL before the timeout: {took:?}"
    );
    let series = format!(
        "mesos_dns_upstream_timeouts_total{{upstream=\"{}\"}}",
        hole.local_addr().expect("addr")
    );
    assert_eq!(metric(&server, &series), 1.0);
    assert_eq!(
        metric(
            &server,
            "mesos_dns_forward_replies_total{source=\"servfail_all_failed\"}"
        ),
        1.0
    );

    // An upstream that was stopped (its port closed) fails as fast.
    let mut nsd = Nsd::start(&[("example.test", EXAMPLE_ZONE)]);
    let server2 = forwarding_server(&state, &[nsd.resolver()], json!({}));
    nsd.stop();
    let t0 = Instant::now();
    let m = server2.query_udp("www.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn forward_cache_answers_after_upstream_stops_with_aged_ttls() {
    let mut nsd = Nsd::start(&[("example.test", EXAMPLE_ZONE)]);
    let state = state_file();
    let server = forwarding_server(&state, &[nsd.resolver()], json!({}));
    let first_a = server.query_udp("www.example.test.", RecordType::A);
    let first_txt = server.query_udp("txt.example.test.", RecordType::TXT);
    assert_eq!(first_a.answers[0].ttl, 300);
    nsd.stop();
    std::thread::sleep(Duration::from_millis(1100));
    let m = server.query_udp("www.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), answers(&first_a));
    let ttl = m.answers[0].ttl;
    assert!((295..300).contains(&ttl), "TTL {ttl} not aged by ~1 s");
    let m = server.query_udp("txt.example.test.", RecordType::TXT);
    assert_eq!(answers(&m), answers(&first_txt));
    // The same name over TCP, from the cache too.
    let m = server.query_tcp("WWW.example.TEST.", RecordType::A);
    assert_eq!(answers(&m), answers(&first_a));
    assert_eq!(m.queries[0].name().to_string(), "WWW.example.TEST.");
    assert!(metric(&server, "mesos_dns_cache_hits_total") >= 3.0);
    assert!(metric(&server, "mesos_dns_cache_inserts_total") >= 2.0);
    // Never asked: SERVFAIL (the upstream is gone).
    let m = server.query_udp("mail.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn forward_negative_answers_are_cached() {
    let mut nsd = Nsd::start(&[("example.test", EXAMPLE_ZONE)]);
    let state = state_file();
    let server = forwarding_server(&state, &[nsd.resolver()], json!({}));
    let nx = server.query_udp("nope.example.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let nodata = server.query_udp("www.example.test.", RecordType::MX);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    nsd.stop();
    std::thread::sleep(Duration::from_millis(1100));
    let m = server.query_udp("nope.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let auth = authority(&m);
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].0, RecordType::SOA);
    assert!(
        (25..30).contains(&auth[0].2),
        "SOA TTL {} not aged",
        auth[0].2
    );
    let m = server.query_udp("www.example.test.", RecordType::MX);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(authority(&m)[0].0, RecordType::SOA);
}

#[test]
fn forward_queue_full_is_servfail_at_once_and_counted() {
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let state = state_file();
    let server = forwarding_server(
        &state,
        &[hole.local_addr().expect("addr").to_string()],
        json!({"forwarders": 1, "forwardQueue": 1, "timeout": 5}),
    );
    // More distinct names than one forwarder keeps in flight plus the queue: some must be
    // refused at once.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.udp).expect("connect");
    let total: u16 = 1500;
    for i in 0..total {
        let mut q = Q::new(&format!("n{i}.burst.test."), RecordType::A);
        q.id = i;
        sock.send(&q.to_bytes()).expect("send");
    }
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let mut buf = vec![0u8; 4096];
    let mut servfail = 0u32;
    while let Ok(n) = sock.recv(&mut buf) {
        let m = Message::from_vec(&buf[..n]).expect("decode");
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        servfail += 1;
    }
    assert!(servfail > 0, "no SERVFAIL within 1.5 s (timeout is 5 s)");
    let counted = metric(&server, "mesos_dns_forward_queue_full_total");
    assert!(
        counted >= f64::from(servfail),
        "{counted} counted, {servfail} seen"
    );
    assert_eq!(metric(&server, "mesos_dns_forward_queue_capacity"), 1.0);
}

#[test]
fn forward_tcp_clients_go_over_tcp_and_truncation_is_relayed() {
    // 40 A records: more than 512 bytes.
    let mut zone = EXAMPLE_ZONE.to_owned();
    for i in 1..=40 {
        zone.push_str(&format!("big   IN A   10.0.0.{i}\n"));
    }
    let nsd = Nsd::start(&[("example.test", &zone)]);
    let state = state_file();
    let server = forwarding_server(&state, &[nsd.resolver()], json!({}));
    // UDP without EDNS: nsd truncates; the TC reply is relayed (and not cached).
    let m = server.query_udp("big.example.test.", RecordType::A);
    assert!(m.metadata.truncation, "TC relayed");
    assert!(m.answers.len() < 40);
    // TCP: forwarded over TCP, the whole answer.
    let m = server.query_tcp("big.example.test.", RecordType::A);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
    assert!(m.metadata.authoritative);
    assert!(metric(&server, "mesos_dns_forward_tcp_total") >= 1.0);
    // A TCP answer to a name nobody asked over UDP.
    let m = server.query_tcp("www.example.test.", RecordType::AAAA);
    assert_eq!(answers(&m), ["AAAA 2001:db8::1"]);

    // SetTruncateBit false: TC cleared on relayed replies too (nsd's truncated reply is
    // otherwise relayed as is: it carries no answers).
    let server = forwarding_server(&state, &[nsd.resolver()], json!({"SetTruncateBit": false}));
    let m = server.query_udp("big.example.test.", RecordType::A);
    assert!(!m.metadata.truncation, "TC must be cleared");
    assert!(m.metadata.authoritative);
}
