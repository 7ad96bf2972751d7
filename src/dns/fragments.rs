//! Precomputed reply fragments, built once per snapshot: the fixed head of every answer
//! record (owner, TYPE, CLASS, TTL, and for SRV the priority and weight), so that an answer
//! record is written as three copies: the head, the value (an address, or an SRV port) and,
//! for SRV, the target's wire form from [`crate::snapshot::WireNames`]; and the SOA's MNAME
//! and RNAME in wire form, for the authority section of NXDOMAIN, NODATA, SOA and NS replies.
//!
//! The owner in every head is the 2-byte pointer `0xC00C` to the question name (offset 12,
//! right after the header): SRV answers are always owned by the question, and A/AAAA answers
//! are whenever the question is lowercase and has no `.*` (the common case;
//! [`crate::dns::answer`] writes the others through the generic writer). TTL and SRV weight
//! are the snapshot's zone values, fixed for its lifetime.
//!
//! Why heads and not whole records per name: a per-record arena was built and measured
//! (`loadtest/runs/2026-11-25-vm-fragments-arena/`). It made 100k-task refreshes 15% slower
//! and the snapshot 76 MiB larger, for no gain on A replies and 13-17% on three-target SRV
//! replies, which these heads give too.
//!
//! Never allocates after the build; plain data read by every worker.

use crate::dns::wire::{class, rtype};

/// A record head: owner pointer (2), TYPE, CLASS, TTL, RDLENGTH (filled by the writer).
const HEAD_LEN: usize = 2 + 2 + 2 + 4 + 2;
/// The owner: a compression pointer to the question name at offset 12.
const QUESTION_POINTER: [u8; 2] = [0xC0, 12];

/// The fragments of one snapshot's replies (see the module doc).
#[derive(Debug)]
pub struct ReplyFragments {
    a: [u8; HEAD_LEN],
    aaaa: [u8; HEAD_LEN],
    /// The head plus the SRV RDATA before the port: priority 0, then the zone's weight.
    srv: [u8; HEAD_LEN + 4],
    /// Empty when the configured name is no valid DNS name: the writer then refuses it, as
    /// it refused the text.
    mname: Box<[u8]>,
    rname: Box<[u8]>,
}

impl ReplyFragments {
    /// The fragments of a zone with this `ttl`, SRV `weight`, and SOA `mname` and `rname`
    /// (dotted text).
    pub fn new(ttl: u32, weight: u16, mname: &str, rname: &str) -> ReplyFragments {
        let wire = |text: &str| {
            let mut buf = [0u8; crate::dns::wire::MAX_NAME_LEN];
            crate::dns::wire::text_to_wire(text.as_bytes(), &mut buf)
                .and_then(|n| buf.get(..n))
                .map_or_else(Box::default, Box::from)
        };
        let head = |rr_type: u16| {
            let mut h = [0u8; HEAD_LEN];
            h[..2].copy_from_slice(&QUESTION_POINTER);
            h[2..4].copy_from_slice(&rr_type.to_be_bytes());
            h[4..6].copy_from_slice(&class::IN.to_be_bytes());
            h[6..10].copy_from_slice(&ttl.to_be_bytes());
            h
        };
        let mut srv = [0u8; HEAD_LEN + 4];
        srv[..HEAD_LEN].copy_from_slice(&head(rtype::SRV));
        srv[HEAD_LEN + 2..].copy_from_slice(&weight.to_be_bytes());
        ReplyFragments {
            a: head(rtype::A),
            aaaa: head(rtype::AAAA),
            srv,
            mname: wire(mname),
            rname: wire(rname),
        }
    }

    /// The SOA MNAME (also the NS target) in wire form.
    pub fn mname(&self) -> &[u8] {
        &self.mname
    }

    /// The SOA RNAME in wire form.
    pub fn rname(&self) -> &[u8] {
        &self.rname
    }

    /// Head of an A answer owned by the question.
    pub fn a(&self) -> &[u8] {
        &self.a
    }

    /// Head of an AAAA answer owned by the question.
    pub fn aaaa(&self) -> &[u8] {
        &self.aaaa
    }

    /// Head of an SRV answer owned by the question, up to (not including) the port.
    pub fn srv(&self) -> &[u8] {
        &self.srv
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::dns::wire::{Name, ReplyWriter, Section, Srv};

    /// A question for `name` (dotted), as `copy_question` takes it.
    fn question(name: &str) -> Vec<u8> {
        let mut q = Vec::new();
        for label in name.trim_end_matches('.').split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 33, 0, 1]);
        q
    }

    fn wire(name: &str) -> Vec<u8> {
        let mut q = question(name);
        q.truncate(q.len() - 4);
        q
    }

    /// Writing records from the heads gives the very bytes the writer's typed methods give,
    /// including what later names compress to (a glue A owned by the SRV target, and an SOA
    /// whose names share the target's suffix), for several TTLs, weights and targets.
    #[test]
    fn records_from_heads_equal_records_written_field_by_field() {
        let qname = "_web._tcp.marathon.mesos.";
        let targets = [
            "web-1-a1b2c-s0.marathon.mesos.",
            "x.mesos.",
            "other.example.",
        ];
        let mname = wire("ns1.mesos.");
        let rname = wire("root.ns1.mesos.");
        let mut compared = 0;
        for (ttl, weight) in [(60u32, 1u16), (0, 0), (u32::MAX, u16::MAX)] {
            let heads = ReplyFragments::new(ttl, weight, "ns1.mesos.", "root.ns1.mesos.");
            for target in targets {
                let target = wire(target);
                let ip = Ipv4Addr::new(10, 0, 1, 7);
                let ip6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7);
                let (mut by_field, mut by_head) = ([0u8; 512], [0u8; 512]);
                let tail = |w: &mut ReplyWriter<'_>| {
                    w.a(Section::Additional, Name::Wire(&target), ttl, ip)
                        .expect("glue fits");
                    let soa = crate::dns::wire::Soa {
                        mname: Name::Wire(&mname),
                        rname: Name::Wire(&rname),
                        serial: 1,
                        refresh: 2,
                        retry: 3,
                        expire: 4,
                        minimum: 5,
                    };
                    w.soa(Section::Additional, Name::Question, ttl, &soa)
                        .expect("soa fits");
                };

                let mut w = ReplyWriter::new(&mut by_field, 512);
                w.header(7, 0x8400);
                w.copy_question(&question(qname)).expect("question");
                let srv = Srv {
                    priority: 0,
                    weight,
                    port: 31005,
                    target: Name::Wire(&target),
                };
                w.srv(Section::Answer, Name::Question, ttl, &srv)
                    .expect("srv");
                w.a(Section::Answer, Name::Question, ttl, ip).expect("a");
                w.aaaa(Section::Answer, Name::Question, ttl, ip6)
                    .expect("aaaa");
                tail(&mut w);
                let n_field = w.finish();

                let mut w = ReplyWriter::new(&mut by_head, 512);
                w.header(7, 0x8400);
                w.copy_question(&question(qname)).expect("question");
                w.copy_record(
                    Section::Answer,
                    heads.srv(),
                    &31005u16.to_be_bytes(),
                    &target,
                )
                .expect("srv");
                w.copy_record(Section::Answer, heads.a(), &ip.octets(), &[])
                    .expect("a");
                w.copy_record(Section::Answer, heads.aaaa(), &ip6.octets(), &[])
                    .expect("aaaa");
                tail(&mut w);
                let n_head = w.finish();

                assert_eq!(
                    by_head[..n_head],
                    by_field[..n_field],
                    "ttl {ttl} {target:?}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, 9);
    }

    /// The writer refuses a head-written record it cannot vouch for, and leaves the reply as
    /// it was: before the question, with a malformed target, or past the size limit.
    #[test]
    fn copy_record_refuses_bad_input_and_leaves_the_reply_unchanged() {
        let heads = ReplyFragments::new(60, 1, "ns1.mesos.", "root.ns1.mesos.");
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(1, 0x8400);
        assert!(
            w.copy_record(Section::Answer, heads.a(), &[1, 2, 3, 4], &[])
                .is_err()
        );
        w.copy_question(&question("a.mesos.")).expect("question");
        let size = w.size();
        let bad_target = [5, b'a', b'b', 0];
        assert!(
            w.copy_record(Section::Answer, heads.srv(), &[0, 80], &bad_target)
                .is_err()
        );
        assert_eq!(w.size(), size);
        let label = "x".repeat(60);
        let long = wire(&format!("{label}.{label}.{label}.{label}.mesos."));
        let mut written: u16 = 0;
        while w
            .copy_record(Section::Answer, heads.srv(), &[0, 80], &long)
            .is_ok()
        {
            written += 1;
        }
        assert!(written >= 1 && w.size() <= 512, "{written} {}", w.size());
        assert_eq!(w.count(Section::Answer), written);
    }
}
