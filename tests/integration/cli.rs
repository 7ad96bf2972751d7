//! The command line (behaviour reference §1.1, product.md exit codes): `-version`, config
//! errors (exit 2, naming the path or the key and value), unknown flags, `--validate` with the
//! secret masked, `--dump-records` in the `/v1/axfr` shape, Go-style `-flag=value` spellings,
//! and a clean exit 0 on SIGTERM/SIGINT.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType::A;
use serde_json::{Value, json};

use crate::harness::{BIN, STATE_SMALL, Server, a_values, fake_json, write_config};

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mesos-dns")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_flag_prints_version_and_exits_0() {
    for flag in ["-version", "--version"] {
        let out = run(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            text(&out.stdout),
            format!("{}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn missing_config_file_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope").join("config.json");
    let out = run(&["-config", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(path.to_str().expect("utf-8")),
        "path named: {err}"
    );
    assert!(err.contains("missing configuration file"), "{err}");
}

#[test]
fn bad_config_value_exits_2_naming_key_and_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        json!({"masters": ["127.0.0.1:5050"], "IPSources": ["x"]}),
    );
    let out = run(&["-config", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("IPSources") && err.contains("\"x\""),
        "key and value named: {err}"
    );
}

#[test]
fn unknown_flag_exits_2() {
    for flag in ["--no-such-flag", "-no-such-flag"] {
        let out = run(&[flag]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert!(!out.stderr.is_empty(), "{flag}: usage or error on stderr");
    }
}

#[test]
fn validate_prints_the_config_with_the_secret_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        json!({
            "masters": ["127.0.0.1:5050"],
            "mesosAuthentication": "basic",
            "mesosCredentials": {"principal": "ops", "secret": "hunter2-very-secret"},
            "ttl": 42,
        }),
    );
    let out = run(&["--validate", "-config", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("hunter2"), "secret leaked: {stdout}");
    assert!(
        !text(&out.stderr).contains("hunter2"),
        "secret leaked on stderr"
    );
    let doc: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(doc["MesosCredentials"]["Principal"], "ops");
    assert_eq!(doc["MesosCredentials"]["Secret"], "******");
    assert_eq!(doc["TTL"], 42);
    assert_eq!(doc["Masters"], json!(["127.0.0.1:5050"]));
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

fn dump(state: &str, config: Value) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), config);
    let out = run(&[
        "--dump-records",
        "--state-file",
        state,
        "-config",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn dump_records_prints_fake_json_zone_in_axfr_shape() {
    let Some(_) = fake_json() else { return };
    let doc = dump(
        crate::harness::FAKE_JSON,
        json!({"masters": ["1.2.3.4:5050"]}),
    );
    assert_eq!(doc["Domain"], "mesos");
    assert_eq!(doc["Mname"], "ns1.mesos.");
    assert_eq!(doc["Rname"], "root.ns1.mesos.");
    assert_eq!(doc["TTL"], 60);
    let r = &doc["Records"];
    assert_eq!(sorted(&r["As"]["leader.mesos."]), ["1.2.3.4"]);
    assert_eq!(sorted(&r["As"]["master.mesos."]), ["1.2.3.4"]);
    assert_eq!(sorted(&r["As"]["master0.mesos."]), ["1.2.3.4"]);
    assert_eq!(sorted(&r["As"]["ns1.mesos."]), ["127.0.0.1"]);
    assert_eq!(
        sorted(&r["As"]["liquor-store.marathon.mesos."]),
        ["1.2.3.11", "1.2.3.12"]
    );
    assert_eq!(
        sorted(&r["As"]["slave.mesos."]),
        ["1.2.3.10", "1.2.3.11", "1.2.3.12"]
    );
    assert_eq!(sorted(&r["AAAAs"]["slave.mesos."]), ["2001:db8::1"]);
    assert_eq!(
        sorted(&r["AAAAs"]["toy-store.ipv6-framework.mesos."]),
        ["fd01:b::1:8000:2"]
    );
    assert_eq!(
        sorted(&r["SRVs"]["_leader._tcp.mesos."]),
        ["leader.mesos.:5050"]
    );
    assert_eq!(
        sorted(&r["SRVs"]["_slave._tcp.mesos."]),
        ["slave.mesos.:5051"]
    );
    assert_eq!(
        sorted(&r["SRVs"]["_liquor-store._tcp.marathon.mesos."]),
        [
            "liquor-store-4dfjd-0.marathon.mesos.:443",
            "liquor-store-4dfjd-0.marathon.mesos.:80",
            "liquor-store-zasmd-1.marathon.mesos.:443",
            "liquor-store-zasmd-1.marathon.mesos.:80",
        ]
    );
    assert!(
        r["As"].get("poseidon.marathon.mesos.").is_none(),
        "killed task"
    );
}

#[test]
fn dump_records_of_state_small_lists_every_record_type() {
    let doc = dump(STATE_SMALL, json!({"masters": ["10.0.0.5:5050"]}));
    let r = &doc["Records"];
    assert_eq!(sorted(&r["As"]["leader.mesos."]), ["10.0.0.5"]);
    assert_eq!(sorted(&r["As"]["master0.mesos."]), ["10.0.0.5"]);
    assert_eq!(
        sorted(&r["As"]["web.marathon.mesos."]),
        ["10.0.1.10", "10.0.1.11"]
    );
    assert_eq!(sorted(&r["AAAAs"]["ipv6-framework.mesos."]), ["fd00::10"]);
    assert_eq!(
        sorted(&r["SRVs"]["_framework._tcp.ipv6-framework.mesos."]),
        ["ipv6-framework.mesos.:25501"]
    );
    let names: BTreeSet<&String> = r["As"].as_object().expect("As").keys().collect();
    assert!(
        names.iter().all(|n| n.ends_with('.')),
        "fully qualified names"
    );
}

#[test]
fn go_style_config_equals_and_v_equals_1_work() {
    let server = Server::launch(json!({"stateFile": STATE_SMALL}), |path| {
        vec!["-v=1".into(), format!("-config={}", path.display())]
    });
    server.wait_ready("mesos");
    assert_eq!(
        a_values(&server.query_udp("leader.mesos.", A)),
        ["10.0.0.5"]
    );
    assert!(
        server.count_stderr("DEBUG") > 0,
        "-v=1 turns on verbose logs; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    let quiet = Server::start(json!({"stateFile": STATE_SMALL}));
    quiet.wait_ready("mesos");
    assert_eq!(quiet.count_stderr("DEBUG"), 0, "no verbose logs without -v");
}

#[test]
fn sigterm_and_sigint_exit_0_within_2_seconds() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(json!({"stateFile": STATE_SMALL}));
        server.wait_ready("mesos");
        let pid = libc::pid_t::try_from(server.pid()).expect("pid fits");
        let sent = Instant::now();
        // SAFETY: kill(2) with a pid of a child we spawned and still own; no memory involved.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill failed");
        let status = server.wait_exit(Duration::from_secs(2));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "signal {signal}: exit within 2 s with status 0 (took {:?})",
            sent.elapsed()
        );
    }
}

#[test]
fn sigterm_exits_promptly_while_a_state_fetch_hangs() {
    use crate::fake_master::{Behaviour, FakeMaster};
    let master = FakeMaster::start(Behaviour::Ok(crate::harness::mini_state(&[(
        "web", "10.1.0.1",
    )])));
    let mut server = Server::start(json!({
        "masters": [master.hostport()],
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 20,
    }));
    server.wait_ready("mesos");
    let base = master.requests();
    master.set(Behaviour::Hang);
    assert!(
        master.wait_requests(base, 1, Duration::from_secs(3)),
        "no hanging poll"
    );
    let pid = libc::pid_t::try_from(server.pid()).expect("pid fits");
    // SAFETY: kill(2) with a pid of a child we spawned and still own; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = server.wait_exit(Duration::from_secs(2));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "a hung master must not delay shutdown"
    );
}
