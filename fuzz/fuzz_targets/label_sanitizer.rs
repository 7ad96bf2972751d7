//! Fuzzes both label sanitisers and DomainFrag: the result is always a valid label (or
//! dotted name) or nothing: only `[a-z0-9-]`, within the length bound, never starting with
//! `-` (nor a digit under RFC 952).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_dns::records::labels::{LabelRule, domain_frag, sanitize_label};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (rule, max) in [(LabelRule::Rfc1123, 63), (LabelRule::Rfc952, 24)] {
        let l = sanitize_label(&text, rule);
        assert!(l.len() <= max, "{l:?}");
        assert!(l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{l:?}");
        assert!(!l.starts_with('-'), "{l:?}");
        if rule == LabelRule::Rfc952 {
            assert!(!l.starts_with(|c: char| c.is_ascii_digit()), "{l:?}");
        }
        let f = domain_frag(&text, rule);
        for part in f.split('.').filter(|p| !f.is_empty() || !p.is_empty()) {
            assert!(!part.is_empty() && part.len() <= max, "{f:?}");
        }
    }
});
