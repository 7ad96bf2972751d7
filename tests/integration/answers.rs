//! The answer rules (behaviour reference §4 plus product.md's differences), checked end to end
//! against the real binary fed by a fake master.
//!
//! Two tables, one per fixture, each row a question as sent and the full expected reply: rcode,
//! AA/RA/TC, the answer rrset (a sorted set of owner, type, rdata text), the authority records
//! (type and owner, in order) and the additional glue. Every expected value was derived by hand
//! from the spec and the fixture (task hashes with the spec's SHA-1/z-base-32 rule, slave tails,
//! IP-source order), never pasted from the server's output. Each table runs over UDP, UDP with
//! EDNS and TCP. The rules a table cannot express (raw header tricks, EDNS versions,
//! truncation, shuffling) have their own tests below.

use std::collections::BTreeSet;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{Q, QR, RD, Server, Transport, a_values, fake_json, state_small};

use RecordType::{A, AAAA, ANY, DS, MX, NS, SOA, SRV, TXT};

/// (owner, type, rdata text).
type Rr = (String, RecordType, String);

/// Expected SOA contents (serial is checked to be non-zero only).
#[derive(Debug, Clone)]
struct SoaExp {
    mname: &'static str,
    rname: &'static str,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

/// What every row of a table shares.
#[derive(Debug, Clone)]
struct Ctx {
    ttl: u32,
    ra: bool,
    soa: SoaExp,
}

/// One row: a question as sent and the whole expected reply.
#[derive(Debug, Clone)]
struct Row {
    qname: String,
    qtype: RecordType,
    rcode: ResponseCode,
    aa: bool,
    /// None: the table's `recurseon`.
    ra: Option<bool>,
    tc: bool,
    answer: Vec<Rr>,
    /// (type, owner) in order.
    authority: Vec<(RecordType, String)>,
    /// (owner, type, allowed values): exactly one such record each.
    glue: Vec<(String, RecordType, Vec<String>)>,
}

fn row(qname: &str, qtype: RecordType) -> Row {
    Row {
        qname: qname.to_owned(),
        qtype,
        rcode: ResponseCode::NoError,
        aa: true,
        ra: None,
        tc: false,
        answer: Vec::new(),
        authority: Vec::new(),
        glue: Vec::new(),
    }
}

impl Row {
    fn a(mut self, owner: &str, ips: &[&str]) -> Row {
        for ip in ips {
            self.answer.push((owner.to_owned(), A, (*ip).to_owned()));
        }
        self
    }

    fn aaaa(mut self, owner: &str, ips: &[&str]) -> Row {
        for ip in ips {
            self.answer.push((owner.to_owned(), AAAA, (*ip).to_owned()));
        }
        self
    }

    /// SRV answers `0 1 <port> <target>` owned by the question name as sent.
    fn srv(mut self, targets: &[(u16, &str)]) -> Row {
        for (port, target) in targets {
            let owner = self.qname.clone();
            self.answer
                .push((owner, SRV, format!("0 1 {port} {target}")));
        }
        self
    }

    fn glue_a(mut self, owner: &str, one_of: &[&str]) -> Row {
        let allowed = one_of.iter().map(|s| (*s).to_owned()).collect();
        self.glue.push((owner.to_owned(), A, allowed));
        self
    }

    fn glue_aaaa(mut self, owner: &str, one_of: &[&str]) -> Row {
        let allowed = one_of.iter().map(|s| (*s).to_owned()).collect();
        self.glue.push((owner.to_owned(), AAAA, allowed));
        self
    }

    /// Authority records of these types, owned by the question name as sent.
    fn auth(mut self, types: &[RecordType]) -> Row {
        for t in types {
            self.authority.push((*t, self.qname.clone()));
        }
        self
    }

    /// NXDOMAIN with the SOA in authority.
    fn nx(mut self) -> Row {
        self.rcode = ResponseCode::NXDomain;
        self.auth(&[SOA])
    }

    /// NOERROR, no answers, SOA in authority.
    fn nodata(self) -> Row {
        self.auth(&[SOA])
    }

    /// REFUSED with QR + RD only.
    fn refused(mut self) -> Row {
        self.rcode = ResponseCode::Refused;
        self.aa = false;
        self.ra = Some(false);
        self
    }
}

/// How a table row is sent.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Udp,
    UdpEdns,
    Tcp,
}

const MODES: [Mode; 3] = [Mode::Udp, Mode::UdpEdns, Mode::Tcp];

fn send(server: &Server, mode: Mode, q: Q) -> Message {
    match mode {
        Mode::Udp => server.query(Transport::Udp, &q),
        Mode::UdpEdns => server.query(Transport::Udp, &q.edns(4096)),
        Mode::Tcp => server.query(Transport::Tcp, &q),
    }
}

fn rr_text(r: &hickory_proto::rr::Record) -> Rr {
    (r.name.to_string(), r.record_type(), r.data.to_string())
}

/// Checks one row over one transport; returns the mismatches (empty when it passes).
fn check_row(server: &Server, mode: Mode, ctx: &Ctx, row: &Row) -> Vec<String> {
    let msg = send(server, mode, Q::new(&row.qname, row.qtype));
    let mut bad = Vec::new();
    let mut expect = |what: &str, ok: bool, got: String| {
        if !ok {
            bad.push(format!("{what}: got {got}"));
        }
    };
    let m = &msg.metadata;
    expect(
        "QR",
        m.message_type == MessageType::Response,
        format!("{:?}", m.message_type),
    );
    expect(
        "rcode",
        m.response_code == row.rcode,
        format!("{:?}, want {:?}", m.response_code, row.rcode),
    );
    expect(
        "AA",
        m.authoritative == row.aa,
        format!("{}", m.authoritative),
    );
    let ra = row.ra.unwrap_or(ctx.ra);
    expect(
        "RA",
        m.recursion_available == ra,
        format!("{}", m.recursion_available),
    );
    expect("TC", m.truncation == row.tc, format!("{}", m.truncation));
    expect("RD echoed", m.recursion_desired, "false".into());
    let q0 = msg.queries.first().map(|q| q.name.to_string());
    expect(
        "question echoed as sent",
        q0.as_deref() == Some(row.qname.as_str()),
        format!("{q0:?}"),
    );

    let got: BTreeSet<Rr> = msg.answers.iter().map(rr_text).collect();
    let want: BTreeSet<Rr> = row.answer.iter().cloned().collect();
    expect(
        "answer set",
        got == want,
        format!("{got:?}\n    want {want:?}"),
    );
    expect(
        "answer count",
        msg.answers.len() == row.answer.len(),
        format!("{}", msg.answers.len()),
    );

    let auth: Vec<(RecordType, String)> = msg
        .authorities
        .iter()
        .map(|r| (r.record_type(), r.name.to_string()))
        .collect();
    expect(
        "authority",
        auth == row.authority,
        format!("{auth:?}, want {:?}", row.authority),
    );
    for r in &msg.authorities {
        match &r.data {
            RData::SOA(soa) => {
                let s = &ctx.soa;
                let ok = soa.mname.to_string() == s.mname
                    && soa.rname.to_string() == s.rname
                    && soa.refresh == s.refresh as i32
                    && soa.retry == s.retry as i32
                    && soa.expire == s.expire as i32
                    && soa.minimum == s.minimum
                    && soa.serial > 0;
                expect("SOA rdata", ok, format!("{soa}, want {s:?}"));
            }
            RData::NS(ns) => {
                expect(
                    "NS rdata",
                    ns.0.to_string() == ctx.soa.mname,
                    ns.0.to_string(),
                );
            }
            other => expect("authority type", false, format!("{other:?}")),
        }
    }

    let glue: Vec<Rr> = msg.additionals.iter().map(rr_text).collect();
    expect(
        "glue count",
        glue.len() == row.glue.len(),
        format!("{glue:?}, want {:?}", row.glue),
    );
    for (owner, t, allowed) in &row.glue {
        let matching: Vec<&Rr> = glue.iter().filter(|g| &g.0 == owner && g.1 == *t).collect();
        let ok = matching.len() == 1 && allowed.contains(&matching[0].2);
        expect(
            &format!("glue {owner} {t}"),
            ok,
            format!("{matching:?}, want one of {allowed:?}"),
        );
    }

    let all = msg
        .answers
        .iter()
        .chain(&msg.authorities)
        .chain(&msg.additionals);
    for r in all {
        expect("TTL", r.ttl == ctx.ttl, format!("{} on {}", r.ttl, r.name));
    }
    match mode {
        Mode::UdpEdns => {
            let size = msg.edns.as_ref().map(|e| e.max_payload());
            expect(
                "OPT echoed with our size",
                size == Some(1232),
                format!("{size:?}"),
            );
        }
        Mode::Udp | Mode::Tcp => expect("no OPT", msg.edns.is_none(), format!("{:?}", msg.edns)),
    }
    bad
}

fn run_table(server: &Server, ctx: &Ctx, rows: &[Row]) {
    let mut failures = Vec::new();
    for mode in MODES {
        for r in rows {
            let bad = check_row(server, mode, ctx, r);
            if !bad.is_empty() {
                failures.push(format!(
                    "{mode:?} {} {}:\n  {}",
                    r.qname,
                    r.qtype,
                    bad.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} row failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A fake master serving `doc` and a server polling it (refreshSeconds 60: one poll is enough),
/// ready to answer.
fn serve(doc: Value, mut config: Value) -> (FakeMaster, Server) {
    let master = FakeMaster::start(Behaviour::Ok(doc));
    config["masters"] = json!([master.hostport()]);
    config
        .as_object_mut()
        .expect("object")
        .entry("refreshSeconds")
        .or_insert(json!(60));
    let domain = config["domain"].as_str().unwrap_or("mesos").to_lowercase();
    let server = Server::start(config);
    server.wait_ready(&domain);
    (master, server)
}

#[test]
fn fake_json_table_over_udp_edns_and_tcp() {
    let Some(text) = fake_json() else { return };
    let doc: Value = serde_json::from_str(&text).expect("fake.json");
    let (master, server) = serve(
        doc,
        json!({
            "ttl": 17,
            "SOAMinttl": 33,
            "SOARefresh": 61,
            "SOARetry": 601,
            "SOAExpire": 86401,
        }),
    );
    let ctx = Ctx {
        ttl: 17,
        ra: true,
        soa: SoaExp {
            mname: "ns1.mesos.",
            rname: "root.ns1.mesos.",
            refresh: 61,
            retry: 601,
            expire: 86401,
            minimum: 33,
        },
    };
    // The fake master reports itself as the leader (127.0.0.1:<its port>), and the masters
    // list is just that address, so it is master0 and there is no master1.
    let port = master.addr().port();
    let slave_a = ["1.2.3.10", "1.2.3.11", "1.2.3.12"];
    let ls4 = "liquor-store-4dfjd-0.marathon.mesos.";
    let lsz = "liquor-store-zasmd-1.marathon.mesos.";
    let ls4s = "liquor-store-4dfjd-0.marathon.slave.mesos.";
    let lszs = "liquor-store-zasmd-1.marathon.slave.mesos.";
    let toy_slave = "toy-store-go588-3.ipv6-framework.slave.mesos.";
    let chronos_fw = "chronoswithaspaceandmixedcase-2.0.1.mesos.";
    let rows = vec![
        // Leader, masters, agents, frameworks, the SOAMname record.
        row("leader.mesos.", A).a("leader.mesos.", &["127.0.0.1"]),
        row("leader.mesos.", AAAA).nodata(),
        row("master.mesos.", A).a("master.mesos.", &["127.0.0.1"]),
        row("master0.mesos.", A).a("master0.mesos.", &["127.0.0.1"]),
        row("master1.mesos.", A).nx(),
        row("_leader._tcp.mesos.", SRV)
            .srv(&[(port, "leader.mesos.")])
            .glue_a("leader.mesos.", &["127.0.0.1"]),
        row("_leader._udp.mesos.", SRV)
            .srv(&[(port, "leader.mesos.")])
            .glue_a("leader.mesos.", &["127.0.0.1"]),
        row("slave.mesos.", A).a("slave.mesos.", &slave_a),
        row("slave.mesos.", AAAA).aaaa("slave.mesos.", &["2001:db8::1"]),
        // One record for all agents (same port), glue: one A of three, the one AAAA.
        row("_slave._tcp.mesos.", SRV)
            .srv(&[(5051, "slave.mesos.")])
            .glue_a("slave.mesos.", &slave_a)
            .glue_aaaa("slave.mesos.", &["2001:db8::1"]),
        row("_slave._udp.mesos.", SRV),
        row("_slave._tcp.mesos.", A).nodata(),
        row("marathon.mesos.", A).a("marathon.mesos.", &["1.2.3.11"]),
        row("_framework._tcp.marathon.mesos.", SRV)
            .srv(&[(25501, "marathon.mesos.")])
            .glue_a("marathon.mesos.", &["1.2.3.11"]),
        row("ipv6-framework.mesos.", AAAA).aaaa("ipv6-framework.mesos.", &["2001:db8::1"]),
        row("ipv6-framework.mesos.", A).nodata(),
        row("_framework._tcp.ipv6-framework.mesos.", SRV)
            .srv(&[(25501, "ipv6-framework.mesos.")])
            .glue_aaaa("ipv6-framework.mesos.", &["2001:db8::1"]),
        row(chronos_fw, A).a(chronos_fw, &["1.2.3.12"]),
        row("ns1.mesos.", A).a("ns1.mesos.", &["127.0.0.1"]),
        // Tasks with DiscoveryInfo "liquor.store" on two agents (IPSources has no docker: host).
        row("liquor-store.marathon.mesos.", A)
            .a("liquor-store.marathon.mesos.", &["1.2.3.11", "1.2.3.12"]),
        row("LiQuOr-StOrE.marathon.mesos.", A)
            .a("liquor-store.marathon.mesos.", &["1.2.3.11", "1.2.3.12"]),
        row("liquor-store.*.marathon.mesos.", A)
            .a("liquor-store.marathon.mesos.", &["1.2.3.11", "1.2.3.12"]),
        row("liquor-store.marathon.mesos.", AAAA).nodata(),
        // "*." has no ".*" substring: not stripped, and there are no wildcards.
        row("*.marathon.mesos.", A).nx(),
        row("liquor-store.marathon.mesos.", TXT).nodata(),
        row("liquor-store.marathon.mesos.", MX).nodata(),
        row("liquor.store.marathon.mesos.", A)
            .a("liquor.store.marathon.mesos.", &["1.2.3.11", "1.2.3.12"]),
        row(ls4, A).a(ls4, &["1.2.3.11"]),
        row(lszs, A).a(lszs, &["1.2.3.12"]),
        row("liquor-store.marathon.slave.mesos.", A).a(
            "liquor-store.marathon.slave.mesos.",
            &["1.2.3.11", "1.2.3.12"],
        ),
        row("_liquor-store._tcp.marathon.mesos.", SRV)
            .srv(&[(80, ls4), (443, ls4), (80, lsz), (443, lsz)])
            .glue_a(ls4, &["1.2.3.11"])
            .glue_a(lsz, &["1.2.3.12"]),
        row("_LiQuOr-StOrE._TcP.marathon.mesos.", SRV)
            .srv(&[(80, ls4), (443, ls4), (80, lsz), (443, lsz)])
            .glue_a(ls4, &["1.2.3.11"])
            .glue_a(lsz, &["1.2.3.12"]),
        row("_liquor-store._tcp.*.marathon.mesos.", SRV)
            .srv(&[(80, ls4), (443, ls4), (80, lsz), (443, lsz)])
            .glue_a(ls4, &["1.2.3.11"])
            .glue_a(lsz, &["1.2.3.12"]),
        row("_http._liquor-store._tcp.marathon.mesos.", SRV)
            .srv(&[(80, ls4), (80, lsz)])
            .glue_a(ls4, &["1.2.3.11"])
            .glue_a(lsz, &["1.2.3.12"]),
        // DI ports are tcp only; resource ports of DI tasks live only under .slave.
        row("_liquor-store._udp.marathon.mesos.", SRV),
        row("_liquor-store._tcp.marathon.slave.mesos.", SRV)
            .srv(&[(31354, ls4s), (31355, ls4s), (31737, lszs), (31738, lszs)])
            .glue_a(ls4s, &["1.2.3.11"])
            .glue_a(lszs, &["1.2.3.12"]),
        // Task "big.dog2" with DI name "big.dog": raw legacy and sanitised names, not big-dog2.
        row("big.dog.marathon.mesos.", A).a("big.dog.marathon.mesos.", &["1.2.3.11"]),
        row("big-dog.marathon.mesos.", A).a("big-dog.marathon.mesos.", &["1.2.3.11"]),
        row("big-dog2.marathon.mesos.", A).nx(),
        // IPv6 framework: netinfo gives 2 A + 1 AAAA; .slave names use the IPv6 agent.
        row("toy-store.ipv6-framework.mesos.", A)
            .a("toy-store.ipv6-framework.mesos.", &["12.0.1.3", "12.0.1.2"]),
        row("toy-store.ipv6-framework.mesos.", AAAA)
            .aaaa("toy-store.ipv6-framework.mesos.", &["fd01:b::1:8000:2"]),
        row("toy-store.ipv6-framework.mesos.", ANY)
            .a("toy-store.ipv6-framework.mesos.", &["12.0.1.3", "12.0.1.2"])
            .aaaa("toy-store.ipv6-framework.mesos.", &["fd01:b::1:8000:2"])
            .auth(&[NS, SOA]),
        row("toy-store-go588-3.ipv6-framework.mesos.", A).a(
            "toy-store-go588-3.ipv6-framework.mesos.",
            &["12.0.1.3", "12.0.1.2"],
        ),
        row("toy-store.ipv6-framework.slave.mesos.", AAAA)
            .aaaa("toy-store.ipv6-framework.slave.mesos.", &["2001:db8::1"]),
        row("toy-store.ipv6-framework.slave.mesos.", A).nodata(),
        row("_toy-store._tcp.ipv6-framework.mesos.", SRV)
            .srv(&[(31354, toy_slave), (31355, toy_slave)])
            .glue_aaaa(toy_slave, &["2001:db8::1"]),
        // Framework name sanitised per RFC 1123 (dots kept).
        row("some-box.chronoswithaspaceandmixedcase-2.0.1.mesos.", A).a(
            "some-box.chronoswithaspaceandmixedcase-2.0.1.mesos.",
            &["1.2.3.11"],
        ),
        row(
            "_some-box._tcp.chronoswithaspaceandmixedcase-2.0.1.mesos.",
            SRV,
        )
        .srv(&[(
            31354,
            "some-box-h3dyr-0.chronoswithaspaceandmixedcase-2.0.1.slave.mesos.",
        )])
        .glue_a(
            "some-box-h3dyr-0.chronoswithaspaceandmixedcase-2.0.1.slave.mesos.",
            &["1.2.3.11"],
        ),
        // Plain tasks.
        row("chronos.marathon.mesos.", A).a("chronos.marathon.mesos.", &["1.2.3.11"]),
        row("chronos-rx8q6-0.marathon.mesos.", A)
            .a("chronos-rx8q6-0.marathon.mesos.", &["1.2.3.11"]),
        row("_chronos._tcp.marathon.mesos.", SRV)
            .srv(&[(31332, "chronos-rx8q6-0.marathon.slave.mesos.")])
            .glue_a("chronos-rx8q6-0.marathon.slave.mesos.", &["1.2.3.11"]),
        row("nginx.marathon.mesos.", A).a("nginx.marathon.mesos.", &["10.3.0.3"]),
        row("nginx-6ud99-0.marathon.slave.mesos.", A)
            .a("nginx-6ud99-0.marathon.slave.mesos.", &["1.2.3.11"]),
        row("_nginx._tcp.marathon.mesos.", SRV),
        row("reviewbot-8sq89-1.marathon.mesos.", A)
            .a("reviewbot-8sq89-1.marathon.mesos.", &["1.2.3.12"]),
        row("_reviewbot._udp.marathon.mesos.", SRV)
            .srv(&[(31744, "reviewbot-8sq89-1.marathon.slave.mesos.")])
            .glue_a("reviewbot-8sq89-1.marathon.slave.mesos.", &["1.2.3.12"]),
        row("car-store-zinaz-0.marathon.mesos.", A)
            .a("car-store-zinaz-0.marathon.mesos.", &["1.2.3.11"]),
        row("_car-store._udp.marathon.mesos.", SRV)
            .srv(&[
                (31364, "car-store-zinaz-0.marathon.slave.mesos."),
                (31365, "car-store-zinaz-0.marathon.slave.mesos."),
            ])
            .glue_a("car-store-zinaz-0.marathon.slave.mesos.", &["1.2.3.11"]),
        row("car.store.marathon.mesos.", A).nx(),
        row("poseidon.marathon.mesos.", A).nx(),
        // Missing names, apex, empty non-terminals, SOA/NS/ANY/DS.
        row("missing.mesos.", A).nx(),
        row("missing.mesos.", TXT).nx(),
        row("missing.mesos.", SRV),
        row("missing.mesos.", SOA).auth(&[SOA]),
        row("missing.mesos.", NS).auth(&[NS]),
        row("missing.mesos.", ANY).nx().auth_reset(&[NS, SOA, SOA]),
        row("mesos.", A).nx(),
        row("mesos.", SOA).auth(&[SOA]),
        row("MESOS.", SOA).auth(&[SOA]),
        row("mesos.", NS).auth(&[NS]),
        row("LiQuOr-StOrE.marathon.mesos.", SOA).auth(&[SOA]),
        row("marathon.slave.mesos.", A).nx(),
        row("slave.mesos.", ANY)
            .a("slave.mesos.", &slave_a)
            .aaaa("slave.mesos.", &["2001:db8::1"])
            .auth(&[NS, SOA]),
        row("_slave._tcp.mesos.", ANY)
            .srv(&[(5051, "slave.mesos.")])
            .glue_a("slave.mesos.", &slave_a)
            .glue_aaaa("slave.mesos.", &["2001:db8::1"])
            .auth(&[NS, SOA]),
        row("liquor-store.marathon.mesos.", DS).nodata(),
        row("missing.mesos.", DS).nx(),
        // Outside the domain with externalon false.
        row("example.com.", A).refused(),
        row("mesos.example.com.", SRV).refused(),
    ];
    run_table(&server, &ctx, &rows);
}

impl Row {
    /// Replaces the authority list (owner = question name).
    fn auth_reset(mut self, types: &[RecordType]) -> Row {
        self.authority.clear();
        self.auth(types)
    }
}

/// state-small.json hashes (spec §3.7: first 5 z-base-32 chars of SHA-1 of the task id),
/// computed by hand with an independent implementation, checked against `hash("test")=iffe9`.
const WEB_S0: &str = "web-t8itd-s0.marathon.slave.mesos.";
const WEB_S1: &str = "web-8o6k5-s1.marathon.slave.mesos.";
const GW_S1: &str = "api-gateway-fgu9i-s1.marathon.mesos.";
const GW_S0: &str = "api-gateway-6r7bs-s0.marathon.mesos.";
const GW_S1_SLAVE: &str = "api-gateway-fgu9i-s1.marathon.slave.mesos.";
const GW_S0_SLAVE: &str = "api-gateway-6r7bs-s0.marathon.slave.mesos.";
const METRICS: &str = "metrics-collector-4pesm-s1.marathon.mesos.";
const PORTS_BAD: &str = "ports-bad-ggcjc-s1.marathon.slave.mesos.";
const NIGHTLY: &str = "nightly-report-rhn6h-s1.chronoswithaspaceandmixedcase-2.0.1.mesos.";
const V6_SVC: &str = "v6-svc-zxu4w-s2.ipv6-framework.mesos.";
const DB: &str = "db-primary-qbob6-s0.marathon.mesos.";

#[test]
fn state_small_table_with_recurseon_false() {
    let doc: Value = serde_json::from_str(&state_small()).expect("state-small.json");
    let (_master, server) = serve(
        doc,
        json!({
            "recurseon": false,
            "IPSources": ["netinfo", "docker", "mesos", "host"],
        }),
    );
    let ctx = Ctx {
        ttl: 60,
        ra: false,
        soa: SoaExp {
            mname: "ns1.mesos.",
            rname: "root.ns1.mesos.",
            refresh: 60,
            retry: 600,
            expire: 86400,
            minimum: 60,
        },
    };
    let agents_a = ["10.0.1.10", "10.0.1.11", "10.0.1.13"];
    let rows = vec![
        row("slave.mesos.", A).a("slave.mesos.", &agents_a),
        row("slave.mesos.", AAAA).aaaa("slave.mesos.", &["fd00::1:12"]),
        row("_slave._tcp.mesos.", SRV)
            .srv(&[(5051, "slave.mesos.")])
            .glue_a("slave.mesos.", &agents_a)
            .glue_aaaa("slave.mesos.", &["fd00::1:12"]),
        // Two tasks with one name: both agent IPs (host source).
        row("web.marathon.mesos.", A).a("web.marathon.mesos.", &["10.0.1.10", "10.0.1.11"]),
        row("_web._tcp.marathon.mesos.", SRV)
            .srv(&[
                (31000, WEB_S0),
                (31001, WEB_S0),
                (31005, WEB_S0),
                (31010, WEB_S1),
            ])
            .glue_a(WEB_S0, &["10.0.1.10"])
            .glue_a(WEB_S1, &["10.0.1.11"]),
        // network_infos with several IPs, v4 and v6.
        row("db-primary.marathon.mesos.", A)
            .a("db-primary.marathon.mesos.", &["10.0.2.1", "10.0.2.2"]),
        row("db-primary.marathon.mesos.", AAAA).aaaa("db-primary.marathon.mesos.", &["fd00::2:2"]),
        row(DB, ANY)
            .a(DB, &["10.0.2.1", "10.0.2.2"])
            .aaaa(DB, &["fd00::2:2"])
            .auth(&[NS, SOA]),
        // IPv6-only task on the IPv6 agent.
        row("v6-svc.ipv6-framework.mesos.", AAAA)
            .aaaa("v6-svc.ipv6-framework.mesos.", &["fd00::3:1"]),
        row("v6-svc.ipv6-framework.mesos.", A).nodata(),
        row(V6_SVC, AAAA).aaaa(V6_SVC, &["fd00::3:1"]),
        row("v6-svc.ipv6-framework.slave.mesos.", AAAA)
            .aaaa("v6-svc.ipv6-framework.slave.mesos.", &["fd00::1:12"]),
        row("legacy-netinfo.marathon.mesos.", A).a("legacy-netinfo.marathon.mesos.", &["10.0.5.2"]),
        // Docker label of the latest TASK_RUNNING status.
        row("cache.marathon.mesos.", A).a("cache.marathon.mesos.", &["10.0.3.2"]),
        row("queue.marathon.mesos.", A).a("queue.marathon.mesos.", &["10.0.4.1"]),
        row("_queue._tcp.marathon.mesos.", SRV),
        // DiscoveryInfo "api.gateway" on two tasks.
        row("api-gateway.marathon.mesos.", A)
            .a("api-gateway.marathon.mesos.", &["10.0.3.5", "10.0.3.6"]),
        row("api.gateway.marathon.mesos.", A)
            .a("api.gateway.marathon.mesos.", &["10.0.3.5", "10.0.3.6"]),
        row("api-gateway2.marathon.mesos.", A).nx(),
        row("api-gateway-canary.marathon.mesos.", A).nx(),
        row("_http._api-gateway._tcp.marathon.mesos.", SRV)
            .srv(&[(80, GW_S1), (80, GW_S0)])
            .glue_a(GW_S1, &["10.0.3.5"])
            .glue_a(GW_S0, &["10.0.3.6"]),
        row("_api-gateway._tcp.marathon.mesos.", SRV)
            .srv(&[(80, GW_S1), (443, GW_S1), (80, GW_S0), (443, GW_S0)])
            .glue_a(GW_S1, &["10.0.3.5"])
            .glue_a(GW_S0, &["10.0.3.6"]),
        row("_api-gateway._tcp.marathon.slave.mesos.", SRV)
            .srv(&[
                (31040, GW_S1_SLAVE),
                (31041, GW_S1_SLAVE),
                (31042, GW_S0_SLAVE),
                (31043, GW_S0_SLAVE),
            ])
            .glue_a(GW_S1_SLAVE, &["10.0.1.11"])
            .glue_a(GW_S0_SLAVE, &["10.0.1.10"]),
        // DI with uppercase raw name: the legacy name is unreachable; empty protocol → both.
        row("metrics.collector.marathon.mesos.", A).nx(),
        row("Metrics.Collector.marathon.mesos.", A).nx(),
        row("metrics.marathon.mesos.", A).nx(),
        row("_metrics-collector._tcp.marathon.mesos.", SRV)
            .srv(&[(9100, METRICS)])
            .glue_a(METRICS, &["10.0.1.11"]),
        row("_metrics-collector._udp.marathon.mesos.", SRV)
            .srv(&[(9100, METRICS), (8125, METRICS)])
            .glue_a(METRICS, &["10.0.1.11"]),
        row("_prom._metrics-collector._udp.marathon.mesos.", SRV)
            .srv(&[(9100, METRICS)])
            .glue_a(METRICS, &["10.0.1.11"]),
        // Non-running tasks, unknown agent: nothing.
        row("billing.marathon.mesos.", A).nx(),
        row("staging.marathon.mesos.", A).nx(),
        row("orphan.marathon.mesos.", A).nx(),
        // Bad port part skipped, the rest kept.
        row("_ports-bad._tcp.marathon.mesos.", SRV)
            .srv(&[(31002, PORTS_BAD), (31003, PORTS_BAD)])
            .glue_a(PORTS_BAD, &["10.0.1.11"]),
        row("health.marathon.mesos.", A).a("health.marathon.mesos.", &["10.0.1.10"]),
        // Chronos-style id; sanitised framework name.
        row(NIGHTLY, A).a(NIGHTLY, &["10.0.1.11"]),
        row(
            "nightly-report-old.chronoswithaspaceandmixedcase-2.0.1.mesos.",
            A,
        )
        .nx(),
        row("chronoswithaspaceandmixedcase-2.0.1.mesos.", A)
            .a("chronoswithaspaceandmixedcase-2.0.1.mesos.", &["10.0.0.12"]),
        row("ipv6-framework.mesos.", AAAA).aaaa("ipv6-framework.mesos.", &["fd00::10"]),
        row("nopid.mesos.", A).a("nopid.mesos.", &["10.0.0.14"]),
        row("_framework._tcp.nopid.mesos.", SRV),
        row("worker.nopid.mesos.", A).a("worker.nopid.mesos.", &["10.0.1.10"]),
        row("spark.cluster-1.2.mesos.", A).a("spark.cluster-1.2.mesos.", &["10.0.0.16"]),
        row("_framework._tcp.spark.cluster-1.2.mesos.", SRV)
            .srv(&[(7077, "spark.cluster-1.2.mesos.")])
            .glue_a("spark.cluster-1.2.mesos.", &["10.0.0.16"]),
        // Bad framework pid: that framework is skipped, the rest served (product.md §6).
        row("lost-soul.bad-pid.mesos.", A).nx(),
        row("gone-framework.mesos.", A).nx(),
        row("mesos.", NS).auth(&[NS]),
        row("nope.mesos.", ANY).nx().auth_reset(&[NS, SOA, SOA]),
        row("example.com.", A).refused(),
    ];
    run_table(&server, &ctx, &rows);
}

/// A server on state-small with the given extra config.
fn small_server(config: Value) -> (FakeMaster, Server) {
    let doc: Value = serde_json::from_str(&state_small()).expect("state-small.json");
    serve(doc, config)
}

#[test]
fn soa_fields_come_from_config_and_minimum_is_soaminttl_not_ttl() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (_m, server) = small_server(json!({
        "ttl": 17,
        "SOAMinttl": 33,
        "SOARefresh": 61,
        "SOARetry": 601,
        "SOAExpire": 86401,
        "SOAMname": "ns9.example.",
        "SOARname": "hostmaster@example.org",
    }));
    let msg = server.query_udp("mesos.", SOA);
    assert!(msg.answers.is_empty(), "SOA goes in authority, not answer");
    assert_eq!(msg.authorities.len(), 1);
    let r = &msg.authorities[0];
    assert_eq!(r.ttl, 17, "SOA record TTL is ttl");
    let RData::SOA(soa) = &r.data else {
        panic!("not an SOA: {r}")
    };
    assert_eq!(soa.mname.to_string(), "ns9.example.");
    assert_eq!(soa.rname.to_string(), "hostmaster.example.org.");
    assert_eq!((soa.refresh, soa.retry, soa.expire), (61, 601, 86401));
    assert_eq!(
        soa.minimum, 33,
        "MINIMUM is SOAMinttl (product.md 3), not ttl"
    );
    let after = before + 60;
    assert!(
        u64::from(soa.serial) + 5 >= before && u64::from(soa.serial) <= after,
        "serial {} is the unix time of the last reload (test started at {before})",
        soa.serial
    );
    let ns = server.query_udp("web.marathon.mesos.", NS);
    let RData::NS(target) = &ns.authorities[0].data else {
        panic!("not an NS")
    };
    assert_eq!(target.0.to_string(), "ns9.example.");
}

#[test]
fn edns_query_gets_opt_with_configured_udp_size_and_plain_query_gets_none() {
    let (_m, server) = small_server(json!({"ednsUdpSize": 1400}));
    let with = server.query(Transport::Udp, &Q::new("web.marathon.mesos.", A).edns(4096));
    let edns = with.edns.as_ref().expect("OPT echoed");
    assert_eq!(
        edns.max_payload(),
        1400,
        "our ednsUdpSize, not the client's"
    );
    assert_eq!(edns.version(), 0);
    let without = server.query_udp("web.marathon.mesos.", A);
    assert!(without.edns.is_none(), "no OPT without one in the query");
    let tcp = server.query(Transport::Tcp, &Q::new("web.marathon.mesos.", A).edns(1232));
    assert_eq!(tcp.edns.map(|e| e.max_payload()), Some(1400));
}

#[test]
fn edns_version_1_gets_badvers_with_opt() {
    let (_m, server) = small_server(json!({}));
    for name in ["web.marathon.mesos.", "example.com."] {
        let mut q = Q::new(name, A).edns(1232);
        if let Some(e) = q.edns.as_mut() {
            e.version = 1;
        }
        let msg = server.query(Transport::Udp, &q);
        // hickory decodes extended rcode 16 as BADSIG (same number); compare the number.
        assert_eq!(
            u16::from(msg.metadata.response_code),
            16,
            "BADVERS for {name}"
        );
        let edns = msg.edns.as_ref().expect("BADVERS comes in an OPT");
        assert_eq!(edns.version(), 0, "we answer with the version we support");
        assert!(msg.answers.is_empty());
    }
}

#[test]
fn ds_for_in_domain_name_is_answered_locally_with_soa() {
    let (_m, server) = small_server(json!({}));
    let msg = server.query_udp("web.marathon.mesos.", DS);
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
    assert_eq!(msg.authorities.len(), 1);
    assert_eq!(msg.authorities[0].record_type(), SOA);
    let nx = server.query_udp("nothing-here.mesos.", DS);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.metadata.authoritative);
    assert_eq!(nx.authorities[0].record_type(), SOA);
}

#[test]
fn ch_class_query_is_answered_like_in() {
    let (_m, server) = small_server(json!({}));
    let mut q = Q::new("web.marathon.mesos.", A);
    q.qclass = 3;
    for transport in [Transport::Udp, Transport::Tcp] {
        let msg = server.query(transport, &q);
        assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
        assert!(msg.metadata.authoritative);
        assert_eq!(
            u16::from(msg.queries[0].query_class),
            3,
            "question echoed as sent"
        );
        assert_eq!(a_values(&msg), ["10.0.1.10", "10.0.1.11"]);
    }
}

#[test]
fn outside_domain_is_refused_with_qr_and_rd_only() {
    let (_m, server) = small_server(json!({}));
    for transport in [Transport::Udp, Transport::Tcp] {
        let q = Q::new("example.com.", A);
        let raw = server.exchange(transport, &q);
        let flags = u16::from_be_bytes([raw[2], raw[3]]);
        assert_eq!(
            flags,
            QR | RD | 5,
            "QR + RD + REFUSED, no AA, no RA: {flags:#06x}"
        );
        let mut q = Q::new("example.com.", A);
        q.flags = 0;
        let raw = server.exchange(transport, &q);
        assert_eq!(
            u16::from_be_bytes([raw[2], raw[3]]),
            QR | 5,
            "RD copied, not forced"
        );
    }
}

/// A header with `flags` and the given counts, then the rest.
fn raw_packet(id: u16, flags: u16, qdcount: u16, rest: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [id, flags, qdcount, 0, 0, 0] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.extend_from_slice(rest);
    p
}

fn question(name: &str) -> Vec<u8> {
    let mut q = crate::harness::encode_name(name);
    q.extend_from_slice(&1u16.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

#[test]
fn opcodes_status_notify_update_get_notimp() {
    let (_m, server) = small_server(json!({}));
    for (opcode, id) in [(2u16, 0x0202), (4, 0x0404), (5, 0x0505)] {
        let pkt = raw_packet(id, opcode << 11, 1, &question("web.marathon.mesos."));
        let reply = server.send_raw_udp(&pkt).expect("a reply");
        let msg = Message::from_vec(&reply).expect("decodable");
        assert_eq!(msg.metadata.id, id);
        assert_eq!(
            msg.metadata.response_code,
            ResponseCode::NotImp,
            "opcode {opcode}"
        );
        assert_eq!(msg.metadata.message_type, MessageType::Response);
        let tcp = Message::from_vec(&server.send_raw_tcp(&pkt)).expect("decodable");
        assert_eq!(
            tcp.metadata.response_code,
            ResponseCode::NotImp,
            "opcode {opcode} tcp"
        );
    }
}

#[test]
fn qdcount_0_or_2_gets_formerr() {
    let (_m, server) = small_server(json!({}));
    let zero = raw_packet(0x0a0a, RD, 0, &[]);
    let mut two_q = question("web.marathon.mesos.");
    two_q.extend_from_slice(&question("slave.mesos."));
    let two = raw_packet(0x0b0b, RD, 2, &two_q);
    for pkt in [zero, two] {
        let reply = server.send_raw_udp(&pkt).expect("a reply");
        assert_eq!(reply[..2], pkt[..2], "ID echoed");
        assert_eq!(reply[2] & 0x80, 0x80, "QR set");
        assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
        assert!(reply.len() >= 12);
    }
}

#[test]
fn short_packet_or_qr_set_gets_no_reply_and_server_keeps_answering() {
    let (_m, server) = small_server(json!({}));
    let short = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0];
    let response = raw_packet(0x2222, QR | RD, 1, &question("web.marathon.mesos."));
    for bad in [short, response] {
        let good = Q::new("web.marathon.mesos.", A);
        let got = server.send_bad_then_good_udp(&bad, &good);
        assert_eq!(
            got.len(),
            1,
            "exactly one reply (to the valid query): {got:02x?}"
        );
        assert_eq!(
            got[0][..2],
            good.id.to_be_bytes(),
            "the reply is the valid query's"
        );
        let msg = Message::from_vec(&got[0]).expect("decodable");
        assert_eq!(a_values(&msg), ["10.0.1.10", "10.0.1.11"]);
    }
    assert_eq!(
        a_values(&server.query_tcp("web.marathon.mesos.", A)),
        ["10.0.1.10", "10.0.1.11"]
    );
}

#[test]
fn answers_are_shuffled() {
    let (_m, server) = small_server(json!({}));
    let mut orders = BTreeSet::new();
    for _ in 0..50 {
        let msg = server.query_udp("slave.mesos.", A);
        let order: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(order.len(), 3);
        orders.insert(order);
    }
    assert!(orders.len() > 1, "50 replies all in one order: {orders:?}");
}

/// A state where `_big._tcp.marathon.mesos.` has `n` SRV targets (one task each, one agent).
fn many_targets_state(n: usize) -> Value {
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("big.{i:04}-0000-0000-0000-000000000000"),
                "name": "big",
                "slave_id": "trunc-S0",
                "state": "TASK_RUNNING",
                "resources": {"ports": format!("[{p}-{p}]", p = 31000 + i)},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}]
            })
        })
        .collect();
    json!({
        "leader": "master@10.9.0.9:5050",
        "frameworks": [{"name": "marathon", "pid": "scheduler(1)@10.9.0.1:8080", "tasks": tasks}],
        "slaves": [{"id": "trunc-S0", "pid": "slave(1)@10.9.1.1:5051"}]
    })
}

const BIG: &str = "_big._tcp.marathon.mesos.";
const BIG_N: usize = 60;

#[test]
fn truncation_udp_without_edns_fits_512_with_tc_no_additionals() {
    let (_m, server) = serve(many_targets_state(BIG_N), json!({}));
    let raw = server.exchange(Transport::Udp, &Q::new(BIG, SRV));
    assert!(
        raw.len() <= 512,
        "UDP reply without EDNS is {} bytes",
        raw.len()
    );
    let msg = Message::from_vec(&raw).expect("decodable");
    assert!(msg.metadata.truncation, "TC set");
    assert!(msg.additionals.is_empty(), "additionals dropped first");
    assert!(
        !msg.answers.is_empty() && msg.answers.len() < BIG_N,
        "some answers dropped from the end: {}",
        msg.answers.len()
    );
    assert!(msg.answers.iter().all(|r| r.record_type() == SRV));

    // The client's EDNS size is clamped to at least 512, and at most our 1232.
    let tiny = server.exchange(Transport::Udp, &Q::new(BIG, SRV).edns(100));
    assert!(
        tiny.len() > 100 && tiny.len() <= 512,
        "EDNS 100 → clamped to 512: {}",
        tiny.len()
    );
    let huge = server.exchange(Transport::Udp, &Q::new(BIG, SRV).edns(65000));
    assert!(
        huge.len() > 512 && huge.len() <= 1232,
        "EDNS 65000 → capped at 1232: {}",
        huge.len()
    );
    let huge = Message::from_vec(&huge).expect("decodable");
    assert!(huge.metadata.truncation);
    assert!(huge.edns.is_some(), "OPT kept in a truncated reply");
}

#[test]
fn truncation_over_tcp_gives_the_full_answer_with_glue() {
    let (_m, server) = serve(many_targets_state(BIG_N), json!({}));
    let msg = server.query_tcp(BIG, SRV);
    assert!(!msg.metadata.truncation);
    assert_eq!(msg.answers.len(), BIG_N);
    assert_eq!(
        msg.additionals.len(),
        BIG_N,
        "one A glue per distinct target"
    );
    let ports: BTreeSet<String> = msg
        .answers
        .iter()
        .map(|r| {
            r.data
                .to_string()
                .split(' ')
                .nth(2)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let want: BTreeSet<String> = (0..BIG_N).map(|i| (31000 + i).to_string()).collect();
    assert_eq!(ports, want);
}

#[test]
fn set_truncate_bit_false_clears_tc_but_still_truncates() {
    let (_m, server) = serve(many_targets_state(BIG_N), json!({"SetTruncateBit": false}));
    let raw = server.exchange(Transport::Udp, &Q::new(BIG, SRV));
    assert!(raw.len() <= 512);
    let msg = Message::from_vec(&raw).expect("decodable");
    assert!(
        !msg.metadata.truncation,
        "TC never set with SetTruncateBit false"
    );
    assert!(msg.answers.len() < BIG_N);
    assert!(msg.additionals.is_empty());
}

#[test]
fn answers_carry_configured_ttl_including_glue() {
    let (_m, server) = small_server(json!({"ttl": 17}));
    let msg = server.query_udp("_web._tcp.marathon.mesos.", SRV);
    assert!(!msg.answers.is_empty() && !msg.additionals.is_empty());
    for r in msg.answers.iter().chain(&msg.additionals) {
        assert_eq!(r.ttl, 17, "{r}");
    }
}

/// Regression: every TCP connection seeded its shuffle identically, so clients that open one
/// connection per query (the common case) always saw the same order.
#[test]
fn tcp_connections_do_not_share_one_shuffle_seed() {
    let (_m, server) = small_server(json!({}));
    let mut orders = BTreeSet::new();
    for _ in 0..50 {
        let msg = server.query_tcp("slave.mesos.", A);
        let order: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(order.len(), 3);
        orders.insert(order);
    }
    assert!(
        orders.len() > 1,
        "50 TCP replies all in one order: {orders:?}"
    );
}

#[test]
fn tcp_serves_pipelined_queries_and_queries_split_across_writes() {
    use std::io::{Read, Write};
    let (_m, server) = small_server(json!({}));
    let mut s = std::net::TcpStream::connect(server.tcp).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    let frame = |q: &Q| {
        let b = q.to_bytes();
        let mut f = u16::try_from(b.len()).expect("len").to_be_bytes().to_vec();
        f.extend_from_slice(&b);
        f
    };
    let q1 = Q::new("web.marathon.mesos.", A);
    let q2 = Q::new("slave.mesos.", AAAA);
    let q3 = Q::new("leader.mesos.", A);
    // Two queries in one write.
    let mut both = frame(&q1);
    both.extend_from_slice(&frame(&q2));
    s.write_all(&both).expect("write");
    // A third, dribbled out: length byte by byte, then the message in two pieces.
    let f3 = frame(&q3);
    for chunk in [&f3[..1], &f3[1..2], &f3[2..7], &f3[7..]] {
        s.write_all(chunk).expect("write");
        s.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    let mut read_one = || {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("reply length");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).expect("reply");
        Message::from_vec(&buf).expect("decodable")
    };
    let r1 = read_one();
    let r2 = read_one();
    let r3 = read_one();
    assert_eq!(
        (r1.metadata.id, r2.metadata.id, r3.metadata.id),
        (q1.id, q2.id, q3.id)
    );
    assert_eq!(a_values(&r1), ["10.0.1.10", "10.0.1.11"]);
    assert_eq!(r2.answers[0].data.to_string(), "fd00::1:12");
    assert_eq!(r3.answers.len(), 1, "leader.mesos. A");
}

#[test]
fn servfail_before_first_snapshot_echoes_opt() {
    let master = FakeMaster::start(Behaviour::Status(503, "starting".into()));
    let server = Server::start(json!({"masters": [master.hostport()], "refreshSeconds": 60}));
    let msg = server.query(Transport::Udp, &Q::new("web.marathon.mesos.", A).edns(4096));
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(msg.edns.map(|e| e.max_payload()), Some(1232));
    let plain = server.query_udp("web.marathon.mesos.", A);
    assert_eq!(plain.metadata.response_code, ResponseCode::ServFail);
    assert!(plain.edns.is_none());
}

#[test]
fn custom_domain_is_served_and_other_names_are_refused() {
    let (_m, server) = small_server(json!({"domain": "DC1.Cluster"}));
    let msg = server.query_udp("web.marathon.dc1.cluster.", A);
    assert_eq!(
        msg.metadata.response_code,
        ResponseCode::NoError,
        "domain lowercased"
    );
    assert_eq!(a_values(&msg), ["10.0.1.10", "10.0.1.11"]);
    let upper = server.query_udp("WEB.MARATHON.DC1.CLUSTER.", A);
    assert_eq!(
        upper.answers[0].name.to_string(),
        "web.marathon.dc1.cluster."
    );
    let soa = server.query_udp("dc1.cluster.", SOA);
    assert_eq!(soa.authorities.len(), 1);
    for out in ["web.marathon.mesos.", "cluster.", "xdc1.cluster."] {
        let r = server.query_udp(out, A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{out}");
        assert!(!r.metadata.authoritative, "{out}");
    }
}

#[test]
fn label_containing_a_dot_never_matches_a_dotted_record() {
    let (_m, server) = small_server(json!({}));
    // One label "api.gateway" (a literal dot inside it), then marathon.mesos: not the legacy
    // record api.gateway.marathon.mesos., which has two labels there.
    let mut rest = vec![11u8];
    rest.extend_from_slice(b"api.gateway");
    rest.extend_from_slice(&crate::harness::encode_name("marathon.mesos."));
    rest.extend_from_slice(&1u16.to_be_bytes());
    rest.extend_from_slice(&1u16.to_be_bytes());
    let pkt = raw_packet(0x3131, RD, 1, &rest);
    let reply = server.send_raw_udp(&pkt).expect("a reply");
    let msg = Message::from_vec(&reply).expect("decodable");
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
    assert_eq!(msg.authorities.len(), 1);
}
