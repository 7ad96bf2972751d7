//! The `mesos-dns` binary: command line (the original's Go-style `-config`, `-version`, `-v`
//! plus GNU spellings), logging, exit codes (0 clean stop, 1 runtime failure, 2 bad config or
//! command line), signals (SIGTERM/SIGINT stop, SIGHUP reloads the config), and the offline
//! modes `--validate`, `--dump-records` and `--demo`. All the work lives in the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mimalloc::MiMalloc;

use mesos_dns::config::{self, Config};
use mesos_dns::mesos::hosts::SystemHosts;
use mesos_dns::mesos::zk::{Detection, Detector, ZkUrl};
use mesos_dns::records::generator::{GenConfig, generate};
use mesos_dns::refresh::fetcher_for;
use mesos_dns::snapshot::{Snapshot, Zone};
use mesos_dns::{logging, process_memory, server};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The demo state: the repo's own small cluster (tests/fixtures/state-small.json).
const DEMO_STATE: &str = include_str!("../tests/fixtures/state-small.json");

/// Command line. Go-style single-dash long flags are rewritten to GNU form before parsing.
#[derive(Debug, Parser)]
#[command(
    name = "mesos-dns",
    about = "DNS service discovery for Apache Mesos",
    disable_version_flag = true
)]
struct Cli {
    /// Path to the JSON config.
    #[arg(long, default_value = "config.json")]
    config: PathBuf,
    /// Print the version and exit.
    #[arg(long)]
    version: bool,
    /// Verbosity: 1 = verbose, 2 = very verbose (every record on each refresh).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    v: u8,
    /// Load and validate the config, print it (secrets masked), and exit 0 or 2.
    #[arg(long)]
    validate: bool,
    /// With --validate: unknown config keys are errors.
    #[arg(long)]
    strict: bool,
    /// Build the records once and print them as JSON (the shape of /v1/axfr), then exit.
    #[arg(long)]
    dump_records: bool,
    /// Read the state document from this file instead of a master.
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// Serve a built-in demo cluster on 127.0.0.1:8053; no Mesos needed.
    #[arg(long)]
    demo: bool,
    /// Number of UDP worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Override the DNS port (0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
    // glog flags the original accepted; ignored.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    logtostderr: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    alsologtostderr: Option<String>,
    #[arg(long, hide = true)]
    log_dir: Option<String>,
    #[arg(long, hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long, hide = true)]
    vmodule: Option<String>,
    #[arg(long, hide = true)]
    log_backtrace_at: Option<String>,
}

/// Long flags that may be spelled with one dash, as Go's flag package allows.
const GO_FLAGS: &[&str] = &[
    "config",
    "version",
    "validate",
    "strict",
    "dump-records",
    "state-file",
    "demo",
    "workers",
    "port",
    "logtostderr",
    "alsologtostderr",
    "log_dir",
    "log-dir",
    "stderrthreshold",
    "vmodule",
    "log_backtrace_at",
    "log-backtrace-at",
    "help",
];

fn go_style_args() -> Vec<String> {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 || a.starts_with("--") || !a.starts_with('-') {
                return a;
            }
            let name = a[1..].split('=').next().unwrap_or("");
            if GO_FLAGS.contains(&name) {
                format!("-{a}")
            } else {
                a
            }
        })
        .map(|a| {
            a.replace("--log_dir", "--log-dir")
                .replace("--log_backtrace_at", "--log-backtrace-at")
        })
        .collect()
}

fn main() -> ExitCode {
    // Before anything large is allocated.
    process_memory::apply();
    let cli = match Cli::try_parse_from(go_style_args()) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.version {
        let _ = writeln!(std::io::stdout(), "{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init(cli.v);
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.validate {
        let _ = writeln!(std::io::stdout(), "{:#}", config.masked_json());
        return ExitCode::SUCCESS;
    }
    let result = if cli.dump_records {
        dump_records(&config)
    } else {
        serve(&config, &cli)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Loads the config (or the demo's), applies command-line overrides, validates.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let (mut config, warnings) = if cli.demo {
        let path = std::env::temp_dir().join(format!("mesos-dns-demo-{}.json", std::process::id()));
        std::fs::write(&path, DEMO_STATE).with_context(|| format!("writing {}", path.display()))?;
        let mut c = config::default_config();
        c.state_file = Some(path);
        c.listener = [127, 0, 0, 1].into();
        c.http_listener = [127, 0, 0, 1].into();
        c.port = 8053;
        c.external_on = false;
        c.refresh_seconds = 5;
        (c, Vec::new())
    } else if let Some(state_file) = &cli.state_file {
        // `--state-file` stands in for masters/zk, so it must be in place before validation.
        let path = config::resolve_path(&cli.config);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            anyhow::anyhow!(
                "missing configuration file: {:?}",
                path.display().to_string()
            )
        })?;
        let mut raw: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "failed to unmarshal config file {:?}",
                path.display().to_string()
            )
        })?;
        if let Some(obj) = raw.as_object_mut() {
            obj.retain(|k, _| !k.eq_ignore_ascii_case("statefile"));
            obj.insert("stateFile".into(), state_file.display().to_string().into());
        }
        config::parse_str(&raw.to_string(), &path)?
    } else {
        config::load(&cli.config)?
    };
    for w in &warnings {
        log::warn!("{w}");
    }
    if cli.validate && cli.strict {
        config::check_strict(&warnings)?;
    }
    if let Some(f) = &cli.state_file {
        config.state_file = Some(f.clone());
    }
    if let Some(n) = cli.workers {
        config.workers = n;
    }
    if let Some(p) = cli.port {
        config.port = p;
    }
    config.validate()?;
    // Certificate, key and IAM files are read and checked now, so a bad one is a config error.
    fetcher_for(&config)?;
    if config.mesos_https_insecure && config.mesos_https_on {
        log::warn!("mesosHTTPSInsecure: the masters' TLS certificates are NOT verified");
    }
    log::debug!("effective config: {}", config.masked_json());
    Ok(config)
}

/// `--dump-records`: one fetch, one build, JSON on stdout.
fn dump_records(config: &Config) -> anyhow::Result<()> {
    let masters = dump_masters(config)?;
    let fetched = fetcher_for(config)?
        .fetch(&masters)
        .context("fetching state")?;
    let generated = generate(
        &fetched.state,
        &GenConfig::from_config(config),
        &masters,
        &SystemHosts,
    );
    let leader = fetched.state.leader.as_str().to_owned();
    let snap = Snapshot::new(generated, Zone::from_config(config), leader, None);
    let doc = serde_json::json!({
        "TTL": config.ttl,
        "Serial": snap.serial,
        "RefreshSeconds": config.refresh_seconds,
        "Mname": config.soa_mname,
        "Rname": config.soa_rname,
        "Domain": config.domain,
        "Records": snap.records.axfr_records(),
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)?;
    Ok(())
}

/// The masters `--dump-records` fetches from: the configured list, or with `zk` (and no
/// `stateFile`) the list ZooKeeper names, `[leader, others...]`, as the server's first refresh
/// would use it. It waits up to `zkDetectionTimeout` (30 s when that is 0: a one-shot command
/// must end); with no leader by then it falls back to the configured `masters`, if any.
fn dump_masters(config: &Config) -> anyhow::Result<Vec<String>> {
    if config.zk.is_empty() || config.state_file.is_some() {
        return Ok(config.masters.clone());
    }
    let url = ZkUrl::parse(&config.zk).map_err(|e| anyhow::anyhow!("zk: {e}"))?;
    let (tx, rx) = crossbeam_channel::bounded::<Vec<String>>(1);
    let detector = Detector::spawn(
        url,
        Arc::new(Detection::default()),
        Box::new(move |list: &[String]| {
            let _ = tx.try_send(list.to_vec());
            true
        }),
    )
    .context("starting ZooKeeper detection")?;
    let wait = match config.zk_detection_timeout {
        0 => 30,
        s => s,
    };
    let found = rx.recv_timeout(Duration::from_secs(wait));
    detector.stop();
    match found {
        Ok(list) => Ok(list),
        Err(_) if !config.masters.is_empty() => {
            log::warn!(
                "ZooKeeper {} named no leading master within {wait} s; using the masters list",
                config.zk
            );
            Ok(config.masters.clone())
        }
        Err(_) => anyhow::bail!(
            "ZooKeeper {} named no leading master within {wait} s",
            config.zk
        ),
    }
}

/// SIGHUP: re-reads the config file (with the same command-line overrides) and hands it to
/// the server, which applies it or refuses it whole; either way the outcome is logged and
/// counted, and a refused or invalid config leaves the old one in effect.
fn reload(srv: &server::Server, cli: &Cli) {
    if cli.demo {
        log::warn!("SIGHUP: the demo has no config file to reload");
        return;
    }
    log::info!(
        "SIGHUP: reloading {}",
        config::resolve_path(&cli.config).display()
    );
    match load_config(cli) {
        Err(e) => {
            srv.reload_failed();
            log::error!("config reload failed, keeping the old config: {e:#}");
        }
        Ok(new) => match srv.reload(new) {
            Ok(changed) if changed.is_empty() => log::info!("config reloaded: nothing changed"),
            Ok(changed) => log::info!(
                "config reloaded: changed {}; applied now and at the next snapshot (refreshing)",
                changed.join(", ")
            ),
            Err(e) => log::error!("config reload refused, keeping the old config: {e}"),
        },
    }
}

/// Runs the server until SIGTERM or SIGINT; SIGHUP reloads the config.
fn serve(config: &Config, cli: &Cli) -> anyhow::Result<()> {
    let demo = cli.demo;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    // SIGHUP must not kill a resolver (its default action): it reloads the config.
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing signal handlers")?;
    let srv = server::start(config)?;
    let show =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    log::info!(
        "listening dns-udp={} dns-tcp={} http={} domain={}",
        show(srv.dns_udp),
        show(srv.dns_tcp),
        show(srv.http),
        config.domain
    );
    if demo {
        let port = srv.dns_udp.map_or(8053, |a| a.port());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "mesos-dns demo: serving a built-in cluster under .{d}. Try:\n  dig @127.0.0.1 -p {port} leader.{d}\n  dig @127.0.0.1 -p {port} web.marathon.{d}\n  dig @127.0.0.1 -p {port} _web._tcp.marathon.{d} SRV\nStop with Ctrl-C.",
            d = config.domain
        );
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(fatal) = srv.fatal_error() {
            srv.stop();
            anyhow::bail!(fatal);
        }
        if hup.swap(false, Ordering::Relaxed) {
            reload(&srv, cli);
        }
    }
    log::info!("shutting down");
    srv.stop();
    Ok(())
}
