//! `mesos-dns-gen-state`: writes a deterministic synthetic Mesos `/master/state` document.
//!
//! Usage: `mesos-dns-gen-state --tasks N [--seed S] [--frameworks F] [--agents A]
//! [--kill-every K] [--out FILE]`. With `--kill-every K` every K-th task of each framework is
//! `TASK_KILLED` and everything else is as without it (a changed state for refresh tests).
//! Frameworks and agents default to the ratios of `SynthSpec::with_tasks` (one framework per
//! 200 tasks, one agent per 20 tasks). The document goes to stdout, or to `FILE` with `--out`.
//! Bad arguments and I/O errors are reported on stderr with exit status 2. The same arguments
//! always produce byte-identical output (see `loadtest/synth_state.rs`).

#[path = "synth_state.rs"]
mod synth_state;

use std::io::Write as _;
use std::process::ExitCode;

use synth_state::{SynthSpec, generate};

const USAGE: &str = "usage: mesos-dns-gen-state --tasks N [--seed S] [--frameworks F] \
                     [--agents A] [--kill-every K] [--out FILE]";

/// Parsed command line.
struct Args {
    spec: SynthSpec,
    out: Option<String>,
}

fn parse_num<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a non-negative integer: {value:?}"))
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut tasks: Option<usize> = None;
    let mut seed: Option<u64> = None;
    let mut frameworks: Option<usize> = None;
    let mut agents: Option<usize> = None;
    let mut kill_every: usize = 0;
    let mut out: Option<String> = None;
    while let Some(arg) = argv.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| argv.next());
        match flag.as_str() {
            "--tasks" => tasks = Some(parse_num(&flag, value())?),
            "--seed" => seed = Some(parse_num(&flag, value())?),
            "--frameworks" => frameworks = Some(parse_num(&flag, value())?),
            "--agents" => agents = Some(parse_num(&flag, value())?),
            "--kill-every" => kill_every = parse_num(&flag, value())?,
            "--out" => out = Some(value().ok_or("--out needs a value")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let tasks = tasks.ok_or("--tasks is required")?;
    let mut spec = SynthSpec::with_tasks(tasks);
    spec.kill_every = kill_every;
    if let Some(s) = seed {
        spec.seed = s;
    }
    if let Some(f) = frameworks {
        spec.frameworks = f;
    }
    if let Some(a) = agents {
        spec.agents = a;
    }
    Ok(Some(Args { spec, out }))
}

fn run() -> Result<(), String> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        let mut stdout = std::io::stdout().lock();
        return writeln!(stdout, "{USAGE}").map_err(|e| format!("stdout: {e}"));
    };
    let doc = generate(&args.spec);
    match args.out {
        Some(path) => std::fs::write(&path, doc.as_bytes()).map_err(|e| format!("{path}: {e}")),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(doc.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("stdout: {e}"))
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            let mut stderr = std::io::stderr().lock();
            // Nothing useful can be done if stderr itself is gone.
            let _ = writeln!(stderr, "mesos-dns-gen-state: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
