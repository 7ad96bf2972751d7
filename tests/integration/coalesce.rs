//! Receive coalescing of the UDP workers (`udpCoalesceMicros`), against the real binary on
//! loopback: a backlog of queries is answered in full and makes the busy worker wait exactly
//! where the rule says (not after its first, full batch; after the second, busy one), the same
//! backlog with coalescing off never waits, and queries sent one at a time never wait.
//!
//! The backlog is made deterministic by stopping the server (`SIGSTOP`) while the queries are
//! sent: they queue in its socket, and after `SIGCONT` the one worker receives them in batches
//! of 128, then the rest. Every wait is bounded; each test takes about a second.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::harness::{Q, Server, a_values, metric, mini_state, wait_until};

/// The name every query asks for, and its address.
const NAME: &str = "web.marathon.mesos.";
const IP: &str = "10.1.0.1";
/// Queries in the backlog: one full batch of 128 and a busy rest of 22 (at least
/// `coalesce::MIN_BATCH`). Small enough for a socket buffer at Debian's default `rmem_max`.
const BACKLOG: usize = 150;
const WAITS: &str = "mesos_dns_udp_coalesce_waits_total";

/// A one-worker server over a small state, with `udpCoalesceMicros` = `coalesce_us`, once it
/// serves. The state file's directory lives as long as the returned guard.
fn start(coalesce_us: u64) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state: PathBuf = dir.path().join("state.json");
    let doc = serde_json::to_vec(&mini_state(&[("web", IP)])).expect("json");
    std::fs::write(&state, doc).expect("write state");
    let server = Server::start(json!({
        "stateFile": state,
        "refreshSeconds": 3600,
        "workers": 1,
        "httpon": true,
        "udpCoalesceMicros": coalesce_us,
    }));
    server.wait_ready("mesos");
    (dir, server)
}

/// Sends `n` queries with distinct IDs while the server is stopped, lets it go on, and returns
/// the replies (by ID) that arrive within 5 s.
fn backlog(server: &Server, n: usize) -> Vec<Message> {
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client.connect(server.udp).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let pid = i32::try_from(server.pid()).expect("pid");
    // SAFETY: plain kill(2) on the server child we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP");
    // kill(2) returns before the threads stop: a worker still running would take the first
    // queries in a batch of their own.
    assert!(
        wait_until(Duration::from_secs(5), || all_threads_stopped(server.pid())),
        "the server did not stop"
    );
    let mut ids = HashSet::new();
    for i in 0..n {
        let mut q = Q::new(NAME, RecordType::A);
        q.id = u16::try_from(i).expect("id");
        ids.insert(q.id);
        client.send(&q.to_bytes()).expect("send");
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0, "SIGCONT");
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ids.is_empty() && Instant::now() < deadline {
        let Ok(len) = client.recv(&mut buf) else {
            continue;
        };
        let msg = Message::from_vec(&buf[..len]).expect("a reply that parses");
        assert!(ids.remove(&msg.metadata.id), "an unexpected or repeated id");
        replies.push(msg);
    }
    replies
}

/// Whether every thread of process `pid` is in state `T` (stopped), per `/proc`.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // The state follows the parenthesised command name, which may contain spaces.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'))
    })
}

fn assert_all_answered(replies: &[Message]) {
    assert_eq!(
        replies.len(),
        BACKLOG,
        "every query of the backlog answered"
    );
    for r in replies {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_values(r), vec![IP.to_owned()], "id {}", r.metadata.id);
    }
}

#[test]
fn a_backlog_is_answered_in_full_and_the_busy_worker_waits_once() {
    let (_dir, server) = start(100);
    assert_eq!(
        metric(&server, WAITS),
        0.0,
        "the start-up queries came one by one"
    );
    let replies = backlog(&server, BACKLOG);
    assert_all_answered(&replies);
    // 128 (busy, but a full batch: no wait), then 22 (busy twice in a row: wait), then none.
    assert_eq!(metric(&server, WAITS), 1.0);
}

#[test]
fn with_coalescing_off_the_same_backlog_never_waits() {
    let (_dir, server) = start(0);
    let replies = backlog(&server, BACKLOG);
    assert_all_answered(&replies);
    assert_eq!(metric(&server, WAITS), 0.0);
}

#[test]
fn queries_one_at_a_time_never_wait() {
    let (_dir, server) = start(100);
    for _ in 0..300 {
        let reply = server.query_udp(NAME, RecordType::A);
        assert_eq!(a_values(&reply), vec![IP.to_owned()]);
    }
    assert_eq!(metric(&server, WAITS), 0.0);
}
