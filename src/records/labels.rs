//! Label rules of Mesos-DNS (behaviour reference §3.2, §3.7): the RFC 1123 and RFC 952
//! sanitisers, DomainFrag for framework names, the z-base-32 SHA-1 task hash and the slave
//! tail. Pure functions with byte-exact compatibility with the original; never panic.

use sha1::{Digest, Sha1};

/// Which sanitiser to run (`enforceRFC952`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelRule {
    /// RFC 1123: at most 63 bytes, no leading `-`.
    Rfc1123,
    /// RFC 952: at most 24 bytes, no leading `-` or digit.
    Rfc952,
}

impl LabelRule {
    /// Maximum label length for this rule.
    fn max_len(self) -> usize {
        match self {
            LabelRule::Rfc1123 => 63,
            LabelRule::Rfc952 => 24,
        }
    }

    /// The "left cutset" trimmed from the front of a label.
    fn trims_front(self, b: u8) -> bool {
        match self {
            LabelRule::Rfc1123 => b == b'-',
            LabelRule::Rfc952 => b == b'-' || b.is_ascii_digit(),
        }
    }
}

/// Sanitises one label: the original's `spec` function. May return an empty string.
pub fn sanitize_label(input: &str, rule: LabelRule) -> String {
    // Step 1: map bytes; everything but [A-Za-z0-9._-] is deleted.
    let mapped: Vec<u8> = input
        .bytes()
        .filter_map(|b| match b {
            b'A'..=b'Z' => Some(b.to_ascii_lowercase()),
            b'a'..=b'z' | b'0'..=b'9' => Some(b),
            b'-' | b'.' | b'_' => Some(b'-'),
            _ => None,
        })
        .collect();
    // Step 2: trim the left cutset.
    let start = mapped
        .iter()
        .position(|&b| !rule.trims_front(b))
        .unwrap_or(mapped.len());
    let label = &mapped[start..];
    let max = rule.max_len();
    // Step 3: cut to max and trim trailing dashes.
    let cut = label.len().min(max);
    let mut out: Vec<u8> = label[..cut].to_vec();
    while out.last() == Some(&b'-') {
        out.pop();
    }
    // Step 4: backfill from after the cut when dashes were trimmed inside it.
    if out.len() < cut {
        let rest = &label[cut..];
        let rest_start = rest.iter().position(|&b| b != b'-').unwrap_or(rest.len());
        let room = max - out.len();
        let fill = &rest[rest_start..];
        out.extend_from_slice(&fill[..fill.len().min(room)]);
    }
    // Only ASCII bytes survive step 1, so this cannot fail.
    String::from_utf8(out).unwrap_or_default()
}

/// DomainFrag: splits on `.`, sanitises each part, drops empty parts, rejoins with `.`.
pub fn domain_frag(input: &str, rule: LabelRule) -> String {
    let mut out = String::with_capacity(input.len());
    for part in input.split('.') {
        let label = sanitize_label(part, rule);
        if label.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&label);
    }
    out
}

/// z-base-32 alphabet used by the original's task hash.
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// The 5-character task hash: z-base-32 of SHA-1(task id), first 5 characters.
pub fn task_hash(task_id: &str) -> String {
    let digest = Sha1::digest(task_id.as_bytes());
    // 5 characters × 5 bits = 25 bits, MSB first: the first 4 bytes are enough.
    let word = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..5)
        .map(|i| ZBASE32[((word >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// The slave tail: the part of the slave id after the last `-`, lowercased.
pub fn slave_tail(slave_id: &str) -> String {
    slave_id
        .rsplit('-')
        .next()
        .unwrap_or(slave_id)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1123: LabelRule = LabelRule::Rfc1123;
    const R952: LabelRule = LabelRule::Rfc952;

    #[test]
    fn rfc1123_vectors() {
        let s = format!("hello{}f", "-".repeat(56));
        assert_eq!(sanitize_label(&s, R1123), s);
        assert_eq!(
            sanitize_label(
                "fd%gsf---gs7-f$gs--d7fddg123456789012345678901234567890123456789-123",
                R1123
            ),
            "fdgsf---gs7-fgs--d7fddg1234567890123456789012345678901234567891"
        );
    }

    #[test]
    fn rfc952_vectors() {
        assert_eq!(sanitize_label("4abc123", R952), "abc123");
        assert_eq!(
            sanitize_label("89fdgsf---gs7-fgs--d7fddg-123", R952),
            "fdgsf---gs7-fgs--d7fddg1"
        );
        let s = format!("hello{}f", "-".repeat(58));
        assert_eq!(sanitize_label(&s, R952), "hellof");
        assert_eq!(
            sanitize_label("chronos with a space AND MIXED CASE-2.0.1", R952),
            "chronoswithaspaceandmixe"
        );
    }

    #[test]
    fn vectors_for_both_rules() {
        for rule in [R1123, R952] {
            assert_eq!(sanitize_label("a.b.c.d.e", rule), "a-b-c-d-e");
            assert_eq!(sanitize_label("---a---b", rule), "a---b");
            assert_eq!(sanitize_label("-", rule), "");
        }
    }

    #[test]
    fn backfill_is_not_retrimmed() {
        // 62 'a', then "-" at position 62 (cut), then "b-": the backfill appends "b".
        let s = format!("{}--b-", "a".repeat(62));
        assert_eq!(sanitize_label(&s, R1123), format!("{}b", "a".repeat(62)));
        // Room for two: the fragment "b-" is appended as is and ends with '-'.
        let s = format!("{}---b-c", "a".repeat(61));
        assert_eq!(sanitize_label(&s, R1123), format!("{}b-", "a".repeat(61)));
    }

    #[test]
    fn domain_frag_examples() {
        assert_eq!(
            domain_frag("marathon-0.6.0-dev", R1123),
            "marathon-0.6.0-dev"
        );
        assert_eq!(
            domain_frag("chronos with a space AND MIXED CASE-2.0.1", R1123),
            "chronoswithaspaceandmixedcase-2.0.1"
        );
        assert_eq!(domain_frag("no pid", R1123), "nopid");
        assert_eq!(domain_frag("(@ host . com", R1123), "host.com");
        assert_eq!(domain_frag("marathon-0.6.0-dev", R952), "marathon-0.dev");
        assert_eq!(
            domain_frag("chronos with a space AND MIXED CASE-2.0.1", R952),
            "chronoswithaspaceandmixe"
        );
    }

    #[test]
    fn hash_and_tail() {
        assert_eq!(task_hash("test"), "iffe9");
        assert_eq!(task_hash("test").len(), 5);
        assert_eq!(slave_tail("20140803-194712-3041283216-5050-2116-S3"), "s3");
        assert_eq!(slave_tail("20140803-125133-3041283216-5050-2410-0"), "0");
        assert_eq!(slave_tail("nodash"), "nodash");
    }
}
