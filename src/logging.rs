//! A minimal stderr logger for the `log` facade: `LEVEL target: message` lines with a UTC
//! timestamp. The level comes from `-v` (0 = info, 1 = debug, 2 = trace) unless `RUST_LOG`
//! names one (`error`, `warn`, `info`, `debug`, `trace`, `off`). Never used on the query path.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, millis) = (now.as_secs(), now.subsec_millis());
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{h:02}:{m:02}:{s:02}.{millis:03} {:<5} {}",
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger. `verbosity` is the `-v` value; `RUST_LOG` wins when it parses.
pub fn init(verbosity: u8) {
    let from_flag = match verbosity {
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<log::LevelFilter>().ok())
        .unwrap_or(from_flag);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
