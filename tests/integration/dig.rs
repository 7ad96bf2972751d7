//! A few queries with the real `dig` (BIND's client) over UDP and TCP, parsing its text
//! output: the server must look right to the tool operators actually use. These tests fail
//! (not skip) when `dig` is missing; scripts/test installs dnsutils.

use serde_json::json;

use crate::harness::{STATE_SMALL, Server, dig};

/// One parsed `dig` reply: status, header flags and the record lines of each section.
#[derive(Debug)]
struct DigReply {
    status: String,
    flags: Vec<String>,
    edns_udp: Option<String>,
    answer: Vec<Vec<String>>,
    authority: Vec<Vec<String>>,
    additional: Vec<Vec<String>>,
    server_line: String,
}

fn parse(out: &str) -> DigReply {
    let mut r = DigReply {
        status: String::new(),
        flags: Vec::new(),
        edns_udp: None,
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        server_line: String::new(),
    };
    let mut section = "";
    for line in out.lines() {
        if let Some(rest) = line.split_once("status: ").map(|(_, s)| s) {
            r.status = rest.split(',').next().unwrap_or("").to_owned();
        } else if let Some(rest) = line.strip_prefix(";; flags: ") {
            let flags = rest.split(';').next().unwrap_or("");
            r.flags = flags.split_whitespace().map(str::to_owned).collect();
        } else if let Some(rest) = line.split_once("udp: ").map(|(_, s)| s) {
            r.edns_udp = Some(rest.trim().to_owned());
        } else if line.starts_with(";; SERVER:") {
            r.server_line = line.to_owned();
        } else if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if line.starts_with(";; ADDITIONAL SECTION") {
            section = "additional";
        } else if line.trim().is_empty() || line.starts_with(';') {
            section = "";
        } else {
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            match section {
                "answer" => r.answer.push(fields),
                "authority" => r.authority.push(fields),
                "additional" => r.additional.push(fields),
                _ => {}
            }
        }
    }
    r
}

fn dig_at(server: &Server, extra: &[&str]) -> DigReply {
    let port = server.udp.port().to_string();
    let mut args = vec!["@127.0.0.1", "-p", &port, "+time=2", "+tries=2"];
    args.extend_from_slice(extra);
    parse(&dig(&args))
}

fn server() -> Server {
    let s = Server::start(json!({"stateFile": STATE_SMALL}));
    s.wait_ready("mesos");
    s
}

#[test]
fn dig_leader_a_over_udp() {
    let s = server();
    let r = dig_at(&s, &["leader.mesos", "A"]);
    assert_eq!(r.status, "NOERROR");
    assert!(
        r.flags.contains(&"aa".to_owned()) && r.flags.contains(&"qr".to_owned()),
        "{r:?}"
    );
    assert_eq!(r.answer, [["leader.mesos.", "60", "IN", "A", "10.0.0.5"]]);
    assert_eq!(
        r.edns_udp.as_deref(),
        Some("1232"),
        "dig sends EDNS; we echo our size"
    );
    assert!(r.server_line.contains("(UDP)"), "{}", r.server_line);
}

#[test]
fn dig_srv_with_glue_over_tcp() {
    let s = server();
    let r = dig_at(&s, &["+tcp", "_web._tcp.marathon.mesos", "SRV"]);
    assert_eq!(r.status, "NOERROR");
    assert!(r.server_line.contains("(TCP)"), "{}", r.server_line);
    let mut srv: Vec<String> = r
        .answer
        .iter()
        .map(|f| {
            assert_eq!(f[0], "_web._tcp.marathon.mesos.");
            assert_eq!(f[3], "SRV");
            f[4..].join(" ")
        })
        .collect();
    srv.sort();
    assert_eq!(
        srv,
        [
            "0 1 31000 web-t8itd-s0.marathon.slave.mesos.",
            "0 1 31001 web-t8itd-s0.marathon.slave.mesos.",
            "0 1 31005 web-t8itd-s0.marathon.slave.mesos.",
            "0 1 31010 web-8o6k5-s1.marathon.slave.mesos.",
        ]
    );
    let mut glue: Vec<String> = r.additional.iter().map(|f| f.join(" ")).collect();
    glue.sort();
    assert_eq!(
        glue,
        [
            "web-8o6k5-s1.marathon.slave.mesos. 60 IN A 10.0.1.11",
            "web-t8itd-s0.marathon.slave.mesos. 60 IN A 10.0.1.10",
        ]
    );
}

#[test]
fn dig_nxdomain_has_soa_in_authority() {
    let s = server();
    for transport in ["+notcp", "+tcp"] {
        let r = dig_at(&s, &[transport, "nothere.mesos", "A"]);
        assert_eq!(r.status, "NXDOMAIN", "{transport}");
        assert!(r.answer.is_empty());
        assert_eq!(r.authority.len(), 1, "{r:?}");
        let soa = &r.authority[0];
        assert_eq!(
            soa[..6],
            [
                "nothere.mesos.",
                "60",
                "IN",
                "SOA",
                "ns1.mesos.",
                "root.ns1.mesos."
            ]
        );
        assert_eq!(
            soa[7..],
            ["60", "600", "86400", "60"],
            "refresh retry expire minimum"
        );
    }
}
