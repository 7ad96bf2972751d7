//! Fuzzes the config loader: any text as `config.json`. It returns a config or an error that
//! names the problem; it never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = mesos_dns::config::parse_str(text, Path::new("/fuzz/config.json"));
});
