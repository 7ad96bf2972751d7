//! Zone transfers against a real secondary: Debian's `nsd`, configured as a secondary of our
//! server on loopback (its own config, pid, state and log files in a temporary directory),
//! plus `dig` as a transfer client for the access-control and TSIG checks.
//!
//! Each test starts our binary fed by the fake master (or the repo's small fixture), with
//! `transferAllowFrom` and `notifyTargets` pointing at NSD, and checks what NSD then serves.
//! `nsd` and `dig` must be installed; without them these tests fail (`scripts/test`
//! installs nsd and dnsutils). Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::{Value, json};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{
    Q, Server, Transport, free_loopback_port as free_port, metric, nsd_binary, state_small,
    udp_exchange, wait_until,
};

/// Base64 of the test TSIG secret (any 32 bytes).
const SECRET: &str = "bWVzb3MtZG5zLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmc=";
/// Another valid secret, for the wrong-key checks.
const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";
const KEY_NAME: &str = "xfr-key.";

/// A running `nsd -d` holding zone `mesos` as a secondary of our server; killed on drop.
struct Secondary {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Secondary {
    /// Starts nsd on `port`, secondary of `primary` (our TCP address), with the TSIG key
    /// (name, base64 secret) for both transfers and NOTIFY when given.
    fn start(port: u16, primary: SocketAddr, key: Option<(&str, &str)>) -> Secondary {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = write_nsd_conf(dir.path(), port, primary, key);
        let child = Command::new(nsd_binary())
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nsd");
        let mut s = Secondary {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            dir,
        };
        let probe = Q::new("mesos.", RecordType::SOA).to_bytes();
        let up = wait_until(Duration::from_secs(10), || {
            matches!(s.child.try_wait(), Ok(Some(_)))
                || udp_exchange(s.addr, &probe, Duration::from_millis(500)).is_some()
        });
        assert!(
            up && matches!(s.child.try_wait(), Ok(None)),
            "nsd did not start; its log:\n{}",
            s.log()
        );
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nsd.log")).unwrap_or_default()
    }

    /// The zone's serial as nsd serves it (None while it has no zone).
    fn serial(&self) -> Option<u32> {
        let reply = udp_exchange(
            self.addr,
            &Q::new("mesos.", RecordType::SOA).to_bytes(),
            Duration::from_millis(500),
        )?;
        let m = Message::from_vec(&reply).ok()?;
        m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }

    /// Waits up to `timeout` for nsd to serve `serial`; panics with its log otherwise.
    fn wait_serial(&self, serial: u32, timeout: Duration) {
        let ok = wait_until(timeout, || self.serial() == Some(serial));
        assert!(
            ok,
            "nsd serves serial {:?}, not {serial}, after {timeout:?}; its log:\n{}",
            self.serial(),
            self.log()
        );
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_nsd_conf(
    dir: &Path,
    port: u16,
    primary: SocketAddr,
    key: Option<(&str, &str)>,
) -> PathBuf {
    let d = dir.display();
    let mut conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  \
         zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  database: \"\"\n  logfile: \"{d}/nsd.log\"\n  \
         verbosity: 2\n  rrl-ratelimit: 0\n  server-count: 1\n  hide-version: yes\n\
         remote-control:\n  control-enable: no\n"
    );
    let acl_key = match key {
        Some((name, secret)) => {
            conf.push_str(&format!(
                "key:\n  name: \"{name}\"\n  algorithm: hmac-sha256\n  secret: \"{secret}\"\n"
            ));
            name.to_owned()
        }
        None => "NOKEY".to_owned(),
    };
    let p = primary.port();
    conf.push_str(&format!(
        "zone:\n  name: mesos\n  request-xfr: 127.0.0.1@{p} {acl_key}\n  \
         allow-notify: 127.0.0.1 {acl_key}\n"
    ));
    let path = dir.join("nsd.conf");
    std::fs::write(&path, conf).expect("write nsd.conf");
    path
}

/// A whole AXFR from `addr` (our server), decoded: every record of every message, and the
/// number of messages. Panics unless it ends with the second SOA.
fn axfr(addr: SocketAddr) -> (Vec<Record>, usize) {
    let q = Q::new("mesos.", RecordType::AXFR);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let pkt = q.to_bytes();
    let mut framed = (pkt.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&pkt);
    s.write_all(&framed).expect("write");
    let (mut records, mut messages, mut soas) = (Vec::new(), 0, 0);
    while soas < 2 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("read length");
        let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut m).expect("read message");
        let m = Message::from_vec(&m).expect("decode");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        messages += 1;
        for r in m.answers {
            soas += usize::from(r.record_type() == RecordType::SOA);
            records.push(r);
        }
    }
    (records, messages)
}

/// Rcode and sorted answer records (`name type rdata`, lowercase, TTL left out) of a TCP
/// query for `name`. The query is built from the name's raw labels: hickory's text form
/// escapes some characters (a leading `-`) that must not reach the wire as backslashes.
fn answer_set(addr: SocketAddr, name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>) {
    answer_set_name(addr, &Name::from_ascii(name).expect("name"), qtype)
}

fn answer_set_name(
    addr: SocketAddr,
    name: &Name,
    qtype: RecordType,
) -> (ResponseCode, Vec<String>) {
    Client::new(addr).answer_set(name, qtype)
}

/// A DNS-over-TCP client that keeps its connection for many queries (a fresh connection per
/// query costs more than the query) and reconnects when the server closed it.
struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    fn exchange(&mut self, pkt: &[u8]) -> Option<Vec<u8>> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.set_nodelay(true).ok()?;
            self.conn = Some(s);
        }
        let s = self.conn.as_mut()?;
        let mut framed = u16::try_from(pkt.len()).ok()?.to_be_bytes().to_vec();
        framed.extend_from_slice(pkt);
        let reply = (|| {
            s.write_all(&framed).ok()?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).ok()?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut reply).ok()?;
            Some(reply)
        })();
        if reply.is_none() {
            self.conn = None;
        }
        reply
    }

    /// Rcode and sorted answer records of a query for `name` (built from its raw labels).
    fn answer_set(&mut self, name: &Name, qtype: RecordType) -> (ResponseCode, Vec<String>) {
        let q = Q::new(".", qtype);
        let id = q.id;
        let mut pkt = q.to_bytes();
        // Replace the placeholder question name (the root) with the raw labels.
        let mut wire = Vec::new();
        for label in name.iter() {
            wire.push(u8::try_from(label.len()).expect("label"));
            wire.extend_from_slice(label);
        }
        wire.push(0);
        pkt.splice(12..13, wire);
        // nsd restarts its server processes after each transfer, which resets connections
        // open at that moment: try again a few times.
        let reply = (0..5)
            .find_map(|_| {
                let r = self.exchange(&pkt);
                if r.is_none() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                r
            })
            .unwrap_or_else(|| panic!("no TCP reply from {} for {name} {qtype}", self.addr));
        let m = Message::from_vec(&reply).expect("decode");
        assert_eq!(m.metadata.id, id);
        let mut v: Vec<String> = m
            .answers
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data).to_lowercase())
            .collect();
        v.sort();
        (m.metadata.response_code, v)
    }
}

/// Like the harness's `mini_state`, but each task id is derived from its name only, so that
/// removing one task leaves the others' names (their id hashes) unchanged.
fn mini_state(tasks: &[(&str, &str)]) -> Value {
    let mut doc = crate::harness::mini_state(tasks);
    for t in doc["frameworks"][0]["tasks"]
        .as_array_mut()
        .expect("tasks")
        .iter_mut()
    {
        t["id"] = json!(format!("{}.stable", t["name"].as_str().expect("name")));
    }
    doc
}

/// Our server, fed by `master`, allowing transfers from loopback and notifying `nsd_port`.
fn primary(master: &FakeMaster, nsd_port: u16, extra: Value) -> Server {
    let mut config = json!({
        "masters": [master.hostport()],
        "refreshSeconds": 1,
        "transferAllowFrom": ["127.0.0.0/8"],
        "notifyTargets": [format!("127.0.0.1:{nsd_port}")],
    });
    for (k, v) in extra.as_object().expect("object") {
        config[k] = v.clone();
    }
    let s = Server::start(config);
    s.wait_ready("mesos");
    s
}

/// The serial we serve (our SOA answer carries the SOA in the authority section, as the
/// original's did).
fn our_serial(server: &Server) -> u32 {
    let m = server.query_udp("mesos.", RecordType::SOA);
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .expect("an SOA in our reply")
}

/// Every owner name of our zone (plus one that does not exist): the A, AAAA and SRV answers
/// from us and from nsd must be the same. One rule of the original differs from standard
/// DNS on purpose: an SRV query for a missing name gets NOERROR from us, NXDOMAIN from nsd.
fn assert_same_answers(server: &Server, nsd: &Secondary) -> usize {
    let (records, _) = axfr(server.tcp);
    let mut names: Vec<Name> = records.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    names.push(Name::from_ascii("no-such-task.marathon.mesos.").expect("name"));
    let (mut us, mut them) = (Client::new(server.tcp), Client::new(nsd.addr));
    for name in &names {
        for t in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
            let ours = us.answer_set(name, t);
            let theirs = them.answer_set(name, t);
            let srv_rule = t == RecordType::SRV
                && ours == (ResponseCode::NoError, vec![])
                && theirs == (ResponseCode::NXDomain, vec![]);
            if name.is_root() || srv_rule {
                continue;
            }
            if name.num_labels() == 1 {
                // The apex: only the answer sets are comparable (we synthesise SOA/NS).
                assert_eq!(ours.1, theirs.1, "{name} {t}");
                continue;
            }
            assert_eq!(ours, theirs, "{name} {t}: ours vs nsd");
        }
    }
    names.len()
}

#[test]
fn nsd_secondary_serves_the_fixture_exactly_as_we_do() {
    let doc: Value = serde_json::from_str(&state_small()).expect("fixture");
    let master = FakeMaster::start(Behaviour::Ok(doc));
    let port = free_port();
    let server = primary(&master, port, json!({}));
    let serial = our_serial(&server);
    let nsd = Secondary::start(port, server.tcp, None);
    nsd.wait_serial(serial, Duration::from_secs(10));
    let n = assert_same_answers(&server, &nsd);
    assert!(n > 10, "the fixture has more than {n} names");
    assert!(metric(&server, "mesos_dns_xfr_total{type=\"axfr\"}") >= 1.0);
}

#[test]
fn notify_brings_a_change_to_nsd_by_ixfr_within_seconds() {
    let tasks: Vec<(String, String)> = (0..20)
        .map(|i| (format!("web-{i}"), format!("10.20.0.{}", i + 1)))
        .collect();
    let refs: Vec<(&str, &str)> = tasks
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&refs)));
    let port = free_port();
    let server = primary(&master, port, json!({}));
    let nsd = Secondary::start(port, server.tcp, None);
    nsd.wait_serial(our_serial(&server), Duration::from_secs(10));
    let ixfr_before = metric(&server, "mesos_dns_xfr_total{type=\"ixfr\"}");

    // web-0 goes away, web-new appears.
    let mut changed = refs[1..].to_vec();
    changed.push(("web-new", "10.20.1.1"));
    let started = Instant::now();
    master.set(Behaviour::Ok(mini_state(&changed)));
    let seen = wait_until(Duration::from_secs(5), || {
        answer_set(nsd.addr, "web-new.marathon.mesos.", RecordType::A).1
            == ["web-new.marathon.mesos. a 10.20.1.1"]
    });
    let took = started.elapsed();
    assert!(
        seen,
        "nsd did not pick up the change in 5 s; its log:\n{}",
        nsd.log()
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("state change -> nsd answers the new record: {took:?}");
    }
    assert_eq!(
        answer_set(nsd.addr, "web-0.marathon.mesos.", RecordType::A).0,
        ResponseCode::NXDomain
    );
    assert!(
        metric(&server, "mesos_dns_xfr_total{type=\"ixfr\"}") > ixfr_before,
        "the change came by IXFR; nsd log:\n{}\nour log:\n{}",
        nsd.log(),
        server.stderr_lines().join("\n")
    );
    assert!(metric(&server, "mesos_dns_notify_total{result=\"acked\"}") >= 1.0);
    assert_same_answers(&server, &nsd);
}

/// Runs `dig` with `args` and returns its stdout, whatever its exit status.
fn dig_out(args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `dig` ({e}): scripts/test installs dnsutils"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig AXFR mesos` against `server`, with `extra` arguments.
fn dig_axfr(server: &Server, extra: &[&str]) -> String {
    let port = server.tcp.port().to_string();
    let mut args = vec![
        "-p",
        &port,
        "@127.0.0.1",
        "mesos.",
        "AXFR",
        "+time=3",
        "+tries=1",
    ];
    args.extend_from_slice(extra);
    dig_out(&args)
}

/// SOA records in dig's output (2 for a complete transfer).
fn soa_lines(out: &str) -> usize {
    out.lines()
        .filter(|l| !l.starts_with(';') && l.split_whitespace().nth(3) == Some("SOA"))
        .count()
}

#[test]
fn transfer_from_outside_transfer_allow_from_is_refused() {
    let state = mini_state(&[("web", "10.20.0.1")]);
    let master = FakeMaster::start(Behaviour::Ok(state));
    let port = free_port();
    let server = primary(&master, port, json!({"transferAllowFrom": ["10.0.0.0/8"]}));
    let reply = server.query(Transport::Tcp, &Q::new("mesos.", RecordType::AXFR));
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(reply.answers.is_empty());
    let reply = server.query(Transport::Tcp, &Q::new("mesos.", RecordType::IXFR));
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let out = dig_axfr(&server, &[]);
    assert!(out.contains("Transfer failed"), "{out}");
    assert_eq!(soa_lines(&out), 0, "{out}");
    assert!(metric(&server, "mesos_dns_xfr_refused_total{reason=\"acl\"}") >= 3.0);
    // AXFR over UDP: NOTIMP, as NSD answers.
    let reply = server.query_udp("mesos.", RecordType::AXFR);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    // Without transferAllowFrom, nobody may transfer.
    let closed = Server::start(json!({"masters": [master.hostport()]}));
    closed.wait_ready("mesos");
    let reply = closed.query(Transport::Tcp, &Q::new("mesos.", RecordType::AXFR));
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn tsig_wrong_key_is_refused_right_key_transfers_and_nsd_uses_it() {
    // Enough tasks for several signed messages.
    let tasks: Vec<(String, String)> = (0..400)
        .map(|i| {
            (
                format!("svc-{i}"),
                format!("10.30.{}.{}", i / 200, i % 200 + 1),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = tasks
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&refs)));
    let port = free_port();
    let keys =
        json!({"tsigKeys": [{"name": KEY_NAME, "algorithm": "hmac-sha256", "secret": SECRET}]});
    let server = primary(&master, port, keys);

    let wrong = format!("hmac-sha256:{KEY_NAME}:{WRONG_SECRET}");
    let out = dig_axfr(&server, &["-y", &wrong]);
    assert_eq!(soa_lines(&out), 0, "wrong secret must not transfer:\n{out}");
    let wrong_name = format!("hmac-sha256:other-key.:{SECRET}");
    let out = dig_axfr(&server, &["-y", &wrong_name]);
    assert_eq!(soa_lines(&out), 0, "unknown key must not transfer:\n{out}");
    let out = dig_axfr(&server, &[]);
    assert_eq!(soa_lines(&out), 0, "unsigned must not transfer:\n{out}");
    assert!(metric(&server, "mesos_dns_xfr_refused_total{reason=\"tsig\"}") >= 3.0);

    let right = format!("hmac-sha256:{KEY_NAME}:{SECRET}");
    let out = dig_axfr(&server, &["-y", &right]);
    assert_eq!(soa_lines(&out), 2, "right secret transfers:\n{out}");
    assert!(!out.contains("failed"), "{out}");
    let messages: usize = out
        .lines()
        .find_map(|l| {
            l.split("(messages ")
                .nth(1)?
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no XFR size line:\n{out}"));
    assert!(
        messages > 1,
        "every one of several messages verified by dig:\n{out}"
    );

    // nsd with the key: signed transfer, signed NOTIFY; then a change arrives by IXFR.
    let nsd = Secondary::start(port, server.tcp, Some((KEY_NAME, SECRET)));
    nsd.wait_serial(our_serial(&server), Duration::from_secs(10));
    let mut changed = refs[1..].to_vec();
    changed.push(("svc-new", "10.30.9.9"));
    master.set(Behaviour::Ok(mini_state(&changed)));
    let seen = wait_until(Duration::from_secs(5), || {
        answer_set(nsd.addr, "svc-new.marathon.mesos.", RecordType::A).1
            == ["svc-new.marathon.mesos. a 10.30.9.9"]
    });
    assert!(
        seen,
        "nsd (TSIG) missed the change; its log:\n{}",
        nsd.log()
    );
    assert!(!nsd.log().contains("bad tsig"), "{}", nsd.log());
}
