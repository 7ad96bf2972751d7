//! ZooKeeper leader detection against a REAL ZooKeeper (Debian's `zookeeper` package, started
//! standalone on a free loopback port with its own data dir; scripts/test installs it):
//! fake masters register `json.info_` ephemeral-sequential znodes with MasterInfo JSON the way
//! Mesos does (through the `zookeeper` crate, an independent client); `leader.mesos` follows a
//! leader change within seconds; with ZooKeeper stopped the records stay served and the process
//! stays up (our deliberate difference: `zkDetectionTimeout` only applies until a leader was
//! found once); after ZooKeeper returns the detector reconnects and sees the next change; with no
//! leader ever, `zkDetectionTimeout` exits 1 with the original's message, and 0 disables it.
//! `--dump-records` with only `zk` set finds the leader the same way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType::A;
use serde_json::json;
use zookeeper::{Acl, CreateMode, WatchedEvent, ZooKeeper, ZooKeeperExt};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{
    BIN, Server, a_values, mini_state, try_metric as metric, wait_until, write_config,
};

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A standalone ZooKeeper server; killed on drop.
struct ZkServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Asks `srvr` and returns whether the server answers with its `Mode:` (it serves sessions).
fn zk_serving(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().any(|l| l.starts_with("Mode:"))
}

impl ZkServer {
    fn start() -> ZkServer {
        let java_ok = Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            java_ok && Path::new(ZK_JAR).exists(),
            "the ZooKeeper tests need java and Debian's `zookeeper` package ({ZK_JAR}); \
             scripts/test installs them (apt-get install zookeeper)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        std::fs::write(
            dir.path().join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,mntr\n",
                data.display()
            ),
        )
        .expect("zoo.cfg");
        let mut zk = ZkServer {
            port,
            dir,
            child: None,
        };
        zk.run();
        zk
    }

    /// Starts the JVM (again, on the same port and data dir) and waits until it serves.
    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("zk.log")).expect("log");
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-cp",
                ZK_JAR,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(self.dir.path().join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn java");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(30), || zk_serving(port)),
            "ZooKeeper did not serve on {port} within 30 s; log:\n{}",
            std::fs::read_to_string(self.dir.path().join("zk.log")).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("zk://127.0.0.1:{}/mesos", self.port)
    }

    /// A client session, usable once this returns (bounded retries).
    fn client(&self) -> ZooKeeper {
        let zk = ZooKeeper::connect(
            &format!("127.0.0.1:{}", self.port),
            Duration::from_secs(30),
            |_: WatchedEvent| {},
        )
        .expect("zk connect");
        // The crate returns before the session exists; a request before that fails at once.
        assert!(
            wait_until(Duration::from_secs(10), || zk.exists("/", false).is_ok()),
            "no ZooKeeper session"
        );
        zk
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registers `master` like a Mesos master does: an ephemeral-sequential `json.info_` node
/// under /mesos holding its MasterInfo JSON. Returns the node path.
fn register(zk: &ZooKeeper, master: &FakeMaster) -> String {
    let addr = master.addr();
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        std::net::IpAddr::V6(_) => 0,
    };
    let info = json!({
        "address": {"hostname": "localhost", "ip": addr.ip().to_string(), "port": addr.port()},
        "hostname": "localhost",
        "id": format!("master-{}", addr.port()),
        "ip": ip,
        "pid": format!("master@{addr}"),
        "port": addr.port(),
        "version": "1.11.0",
    });
    let mut path = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let _ = zk.ensure_path("/mesos");
            path = zk
                .create(
                    "/mesos/json.info_",
                    info.to_string().into_bytes(),
                    Acl::open_unsafe().clone(),
                    CreateMode::EphemeralSequential,
                )
                .ok();
            path.is_some()
        }),
        "cannot register {addr} in ZooKeeper"
    );
    path.expect("path")
}

/// A fake master on `127.0.0.<last>` whose state has one task named `task`, or None when this
/// host has no 127/8 aliases.
fn master_on(last: u8, task: &str) -> Option<FakeMaster> {
    FakeMaster::start_on(
        SocketAddr::from(([127, 0, 0, last], 0)),
        Behaviour::Ok(mini_state(&[(task, "10.4.0.1")])),
    )
    .ok()
}

fn leader_a(server: &Server) -> Vec<String> {
    a_values(&server.query_udp("leader.mesos.", A))
}

fn state_is(server: &Server, state: &str) -> bool {
    metric(
        server,
        &format!("mesos_dns_masters_detection_state{{state=\"{state}\"}}"),
    ) == Some(1.0)
}

#[test]
fn leader_follows_zookeeper_and_survives_a_zookeeper_restart() {
    let mut zk = ZkServer::start();
    let (Some(a), Some(b), Some(c)) = (
        master_on(2, "from-a"),
        master_on(3, "from-b"),
        master_on(4, "from-c"),
    ) else {
        // Why: some sandboxes have no 127.0.0.2-4; say so rather than pass silently.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: cannot bind 127.0.0.2-4 here");
        }
        return;
    };
    let (zka, zkb, zkc) = (zk.client(), zk.client(), zk.client());
    let node_a = register(&zka, &a);
    let _node_b = register(&zkb, &b);
    let _node_c = register(&zkc, &c);

    // Userinfo in the URL is tolerated (sent as a digest auth packet).
    let url = zk.url().replace("zk://", "zk://dns:pw@");
    let server = Server::start(json!({
        "zk": url,
        "zkDetectionTimeout": 2,
        "refreshSeconds": 60,
        "stateTimeoutSeconds": 2,
    }));
    server.wait_ready("mesos");
    assert_eq!(leader_a(&server), ["127.0.0.2"]);
    assert_eq!(
        a_values(&server.query_udp("from-a.marathon.mesos.", A)),
        ["10.4.0.1"]
    );
    assert!(state_is(&server, "connected"));
    assert_eq!(
        metric(
            &server,
            &format!("mesos_dns_detected_leader_info{{leader=\"{}\"}}", a.addr())
        ),
        Some(1.0)
    );

    // The leader's znode goes away: B leads, and with refreshSeconds 60 only the detector
    // can have triggered the refresh.
    let changed = Instant::now();
    zka.delete(&node_a, None).expect("delete A");
    assert!(
        wait_until(Duration::from_secs(3), || leader_a(&server)
            == ["127.0.0.3"]),
        "leader.mesos did not follow the znode change; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    let took = changed.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(server.count_stderr("leading master changed"), 1);

    // ZooKeeper goes away: the records stay, the process stays up past zkDetectionTimeout.
    zk.stop();
    assert!(
        wait_until(Duration::from_secs(5), || state_is(&server, "disconnected")),
        "detection state did not turn disconnected"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leader_a(&server), ["127.0.0.3"]);
    assert_eq!(
        a_values(&server.query_udp("from-b.marathon.mesos.", A)),
        ["10.4.0.1"]
    );
    assert_eq!(server.count_stderr("master detection timed out"), 0);

    // ZooKeeper returns: a new session, and the next change is seen.
    zk.run();
    assert!(
        wait_until(Duration::from_secs(15), || metric(
            &server,
            "mesos_dns_zk_sessions_total"
        )
        .unwrap_or(0.0)
            >= 2.0),
        "no reconnect; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    let admin = zk.client();
    for child in admin.get_children("/mesos", false).expect("children") {
        let _ = admin.delete(&format!("/mesos/{child}"), None);
    }
    let d = master_on(5, "from-d").expect("127.0.0.5");
    register(&admin, &d);
    assert!(
        wait_until(Duration::from_secs(5), || leader_a(&server)
            == ["127.0.0.5"]),
        "leader change after the reconnect not seen; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    assert!(state_is(&server, "connected"));
    drop((zka, zkb, zkc));
}

#[test]
fn detection_timeout_exits_1_without_a_leader_and_0_disables_it() {
    let zk = ZkServer::start();
    let admin = zk.client();
    admin.ensure_path("/mesos").expect("/mesos");
    let started = Instant::now();
    let mut timed = Server::start(json!({"zk": zk.url(), "zkDetectionTimeout": 2}));
    let patient = Server::start(json!({"zk": zk.url(), "zkDetectionTimeout": 0}));
    let status = timed.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "stderr:\n{}",
        timed.stderr_lines().join("\n")
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        timed.count_stderr("master detection timed out after 2s"),
        1,
        "{}",
        timed.stderr_lines().join("\n")
    );
    assert!(state_is(&patient, "no_leader"));
    // With 0 the process keeps running (and serves SERVFAIL for the domain meanwhile).
    let mut patient = patient;
    assert!(patient.wait_exit(Duration::from_secs(1)).is_none());
    assert_eq!(patient.count_stderr("state refresh failed"), 0);
}

/// Runs `mesos-dns --dump-records -config CONFIG`.
fn dump_records(config: &Path) -> std::process::Output {
    Command::new(BIN)
        .arg("--dump-records")
        .arg("-config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mesos-dns")
}

#[test]
fn regression_dump_records_with_only_zk_asks_zookeeper_for_the_leader() {
    // `--dump-records` used to fetch from the configured `masters` only, so a config with
    // nothing but `zk` failed with "no masters".
    let zk = ZkServer::start();
    let Some(master) = master_on(2, "dumped") else {
        // Why: some sandboxes have no 127.0.0.2; say so rather than pass silently.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: cannot bind 127.0.0.2 here");
        }
        return;
    };
    let client = zk.client();
    let _node = register(&client, &master);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        json!({"zk": zk.url(), "zkDetectionTimeout": 20, "stateTimeoutSeconds": 5}),
    );
    let out = dump_records(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let a = &doc["Records"]["As"];
    assert_eq!(a["dumped.marathon.mesos."], json!(["10.4.0.1"]), "{doc}");
    assert_eq!(a["leader.mesos."], json!(["127.0.0.2"]), "{doc}");

    // No leader registered and no masters: a clear error within the timeout, exit 1.
    drop(client);
    let empty = ZkServer::start();
    let config = write_config(
        dir.path(),
        json!({"zk": empty.url(), "zkDetectionTimeout": 2}),
    );
    let started = Instant::now();
    let out = dump_records(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("named no leading master within 2 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}
