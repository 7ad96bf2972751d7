//! The answer rules (behaviour reference §4, with product.md's differences): one query packet
//! plus the current [`Snapshot`] become one reply, written into the caller's buffer.
//!
//! Owns AA/RA, SOA and NS in the authority section with the question as owner, NXDOMAIN
//! versus NODATA, the empty-SRV rule, ANY, `.*` stripping, the case rules, shuffling, SRV glue,
//! truncation (drop additionals, then answers from the end; TC per `SetTruncateBit`), EDNS(0)
//! (OPT echo with our payload size, BADVERS), SERVFAIL before the first snapshot and REFUSED
//! outside the domain. AXFR/IXFR over UDP follow [`crate::dns::xfr::answer_udp`]. Never allocates once its [`Scratch`] has grown to the largest answer
//! seen, never locks, never panics on any input.
//!
//! With `ptrOn`, reverse names that have a PTR in the snapshot are answered here too (see
//! `answer_reverse`); other reverse names are outside the domain like any other name.

use crate::dns::wire::{
    self, Mark, Name, ParseError, Query, ReplyWriter, Section, Soa, WriteError, flag, rcode, rtype,
};
use crate::records::generator::RrSet;
use crate::snapshot::Snapshot;

/// How the query arrived: it sets the reply size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 without EDNS, else the client's size clamped to [512, ednsUdpSize].
    Udp,
    /// TCP: 65535.
    Tcp,
}

/// Server-wide settings the answer path needs when there is no snapshot yet.
#[derive(Debug, Clone)]
pub struct AnswerConfig {
    /// Lowercase domain without trailing dot.
    pub domain: String,
    /// `ednsUdpSize`: what we advertise and the most we send over UDP.
    pub edns_udp_size: u16,
    /// `recurseon`, for replies made without a snapshot.
    pub recurse_on: bool,
    /// `externalon`: names outside the domain go to the forwarder instead of REFUSED.
    pub forward: bool,
}

/// What happened to a query, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answered from the snapshot.
    Authoritative,
    /// In the domain, but no snapshot is loaded yet: SERVFAIL.
    NotReady,
    /// Outside the domain and not forwarded: REFUSED.
    Refused,
    /// Outside the domain, for the forwarder: nothing was written, the caller hands it on.
    Forward,
    /// The packet could not be parsed (FORMERR, NOTIMP, or dropped).
    Malformed(ParseError),
    /// EDNS version other than 0.
    BadVersion,
}

/// The result of [`answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Reply length in the output buffer; 0 means send nothing.
    pub len: usize,
    /// The reply's rcode (extended rcodes included).
    pub rcode: u8,
    /// The query's QTYPE (0 when it could not be parsed).
    pub qtype: u16,
    /// Whether TC was set.
    pub truncated: bool,
    /// What happened.
    pub disposition: Disposition,
}

/// Per-worker scratch space, reused across queries so the answer path does not allocate.
#[derive(Debug)]
pub struct Scratch {
    /// Answer order after shuffling: indices into the combined SRV/A/AAAA list.
    order: Vec<u32>,
    /// (mark, size) after each written answer, for truncation.
    marks: Vec<(Mark, usize)>,
    /// Distinct SRV targets already given glue.
    glue: Vec<u32>,
    /// xorshift state for the shuffle and the glue pick.
    rng: u64,
}

impl Scratch {
    /// Scratch with a seed for the shuffle (any non-zero value).
    pub fn new(seed: u64) -> Scratch {
        Scratch {
            order: Vec::with_capacity(64),
            marks: Vec::with_capacity(64),
            glue: Vec::with_capacity(16),
            rng: seed | 1,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: quality is irrelevant here, speed and no syscalls are what matter.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// Longest lowercase text form of a name: 255 wire octets give at most 254 text bytes.
const TEXT_NAME_MAX: usize = 256;

/// Answers one query packet into `out` (which should hold 65535 bytes).
pub fn answer(
    pkt: &[u8],
    transport: Transport,
    snap: Option<&Snapshot>,
    cfg: &AnswerConfig,
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Outcome {
    let q = match wire::parse_query(pkt) {
        Ok(q) => q,
        Err(e) => {
            let (len, rc) = match e.rcode() {
                Some(rc) => (
                    wire::write_error_reply_edns(pkt, None, rc, cfg.edns_udp_size, out),
                    rc,
                ),
                None => (0, 0),
            };
            return Outcome {
                len,
                rcode: rc,
                qtype: 0,
                truncated: false,
                disposition: Disposition::Malformed(e),
            };
        }
    };
    let simple = |len: usize, rc: u8, disposition| Outcome {
        len,
        rcode: rc,
        qtype: q.qtype,
        truncated: false,
        disposition,
    };
    if let Some(edns) = q.edns
        && edns.version != 0
    {
        let len =
            wire::write_error_reply_edns(pkt, Some(&q), rcode::BADVERS, cfg.edns_udp_size, out);
        return simple(len, rcode::BADVERS, Disposition::BadVersion);
    }

    let mut text = [0u8; TEXT_NAME_MAX];
    let text_len = wire::name_to_text_lower(q.qname(), &mut text);
    // The question as lowercase text: checked as UTF-8 once, and used again as the lookup
    // name unless it holds a '*' (".*" is stripped first; rare).
    let name = text_len.map_or("", |n| as_str(text.get(..n).unwrap_or(&[])));
    let in_domain = match text_len {
        Some(_) => crate::snapshot::in_domain(name, &cfg.domain),
        None => wire_in_domain(q.qname(), cfg.domain.as_bytes()),
    };
    if !in_domain {
        // `ptrOn`: a reverse name with a PTR in the snapshot is ours (see `answer_reverse`).
        if let Some(o) = answer_reverse(pkt, &q, transport, snap, name, cfg, out) {
            return o;
        }
        if cfg.forward {
            return simple(0, rcode::NOERROR, Disposition::Forward);
        }
        // The original's reply when it has no upstream: QR + RD only, question echoed.
        let len = refused_reply(pkt, &q, cfg, out);
        return simple(len, rcode::REFUSED, Disposition::Refused);
    }
    if matches!(q.qtype, rtype::AXFR | rtype::IXFR) {
        // Zone transfers are served over TCP by dns::xfr; this is the UDP rule.
        let (len, rc) = crate::dns::xfr::answer_udp(
            pkt,
            &q,
            transport,
            snap,
            &cfg.domain,
            cfg.edns_udp_size,
            out,
        );
        return simple(len, rc, Disposition::Authoritative);
    }
    let Some(snap) = snap else {
        let len =
            wire::write_error_reply_edns(pkt, Some(&q), rcode::SERVFAIL, cfg.edns_udp_size, out);
        return simple(len, rcode::SERVFAIL, Disposition::NotReady);
    };

    // Lookup name: lowercase, every ".*" removed (a name that cannot be text never matches).
    let lookup: &str = match text_len {
        Some(n) if name.contains('*') => {
            let n = strip_wildcard_dots(&mut text, n);
            as_str(text.get(..n).unwrap_or(&[]))
        }
        _ => name,
    };
    let rrset = if lookup.is_empty() {
        None
    } else {
        snap.lookup(lookup)
    };
    // A/AAAA owners are the lowercased lookup name; when it equals the question byte for
    // byte, a pointer to the question is exact and shorter.
    let owner_is_question = text_len.is_some() && lowercase_equals_question(q.qname(), lookup);
    let ip_owner = if owner_is_question {
        Name::Question
    } else {
        Name::Text(lookup.as_bytes())
    };

    let limit = match transport {
        Transport::Tcp => wire::MAX_MESSAGE_LEN,
        Transport::Udp => match q.edns {
            None => usize::from(wire::MIN_UDP_PAYLOAD),
            Some(e) => usize::from(e.udp_size.clamp(
                wire::MIN_UDP_PAYLOAD,
                cfg.edns_udp_size.max(wire::MIN_UDP_PAYLOAD),
            )),
        },
    };
    write_answer(pkt, &q, snap, rrset, ip_owner, limit, cfg, out, scratch)
}

fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Removes every ".*" substring in place; returns the new length.
fn strip_wildcard_dots(text: &mut [u8; TEXT_NAME_MAX], len: usize) -> usize {
    let mut w = 0;
    let mut r = 0;
    while r < len {
        if text[r] == b'.' && r + 1 < len && text[r + 1] == b'*' {
            r += 2;
            continue;
        }
        text[w] = text[r];
        w += 1;
        r += 1;
    }
    w
}

/// True when the wire `qname` spells `lower` (dotted, lowercase) exactly, case included.
fn lowercase_equals_question(qname: &[u8], lower: &str) -> bool {
    let lower = lower.as_bytes();
    let mut p = 0;
    let mut t = 0;
    while let Some(&l) = qname.get(p) {
        let l = usize::from(l);
        if l == 0 {
            return t == lower.len() || (t == 0 && lower == b".");
        }
        let Some(label) = qname.get(p + 1..p + 1 + l) else {
            return false;
        };
        if lower.get(t..t + l) != Some(label) || lower.get(t + l) != Some(&b'.') {
            return false;
        }
        t += l + 1;
        p += 1 + l;
    }
    false
}

/// Case-insensitive "is `qname` (wire) the domain or below it", for names with odd bytes.
fn wire_in_domain(qname: &[u8], domain: &[u8]) -> bool {
    let mut labels: [(usize, usize); 128] = [(0, 0); 128];
    let mut n = 0;
    let mut p = 0;
    while let Some(&l) = qname.get(p) {
        if l == 0 || n == labels.len() {
            break;
        }
        labels[n] = (p + 1, usize::from(l));
        n += 1;
        p += 1 + usize::from(l);
    }
    let want = domain.split(|&b| b == b'.').count();
    if want > n {
        return false;
    }
    domain
        .split(|&b| b == b'.')
        .zip(&labels[n - want..n])
        .all(|(d, &(s, l))| {
            qname
                .get(s..s + l)
                .is_some_and(|label| label.eq_ignore_ascii_case(d))
        })
}

fn refused_reply(pkt: &[u8], q: &Query, cfg: &AnswerConfig, out: &mut [u8]) -> usize {
    let mut w = ReplyWriter::new(
        out,
        usize::from(wire::MIN_UDP_PAYLOAD.max(cfg.edns_udp_size)),
    );
    w.header(q.id, flag::QR | (q.flags & (flag::OPCODE_MASK | flag::RD)));
    w.set_rcode(rcode::REFUSED);
    if w.copy_question(q.question_bytes(pkt)).is_err() {
        return 0;
    }
    if let Some(e) = q.edns {
        let _ = w.opt(cfg.edns_udp_size, 0, e.do_bit);
    }
    w.finish()
}

/// Which records the answer section takes for a QTYPE.
#[derive(Clone, Copy)]
struct Wanted {
    srv: bool,
    a: bool,
    aaaa: bool,
}

#[allow(clippy::too_many_arguments)]
fn write_answer(
    pkt: &[u8],
    q: &Query,
    snap: &Snapshot,
    rrset: Option<&RrSet>,
    ip_owner: Name<'_>,
    limit: usize,
    cfg: &AnswerConfig,
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Outcome {
    let zone = &snap.zone;
    let mut w = ReplyWriter::new(out, wire::MAX_MESSAGE_LEN);
    let mut flags = q.reply_flags() | flag::AA;
    if zone.recurse_on {
        flags |= flag::RA;
    }
    w.header(q.id, flags);
    if w.copy_question(q.question_bytes(pkt)).is_err() {
        let len =
            wire::write_error_reply_edns(pkt, Some(q), rcode::FORMERR, cfg.edns_udp_size, out);
        return Outcome {
            len,
            rcode: rcode::FORMERR,
            qtype: q.qtype,
            truncated: false,
            disposition: Disposition::Malformed(ParseError::Truncated),
        };
    }
    let question_mark = w.mark();
    let question_size = w.size();
    let wanted = match q.qtype {
        rtype::A => Wanted {
            srv: false,
            a: true,
            aaaa: false,
        },
        rtype::AAAA => Wanted {
            srv: false,
            a: false,
            aaaa: true,
        },
        rtype::SRV => Wanted {
            srv: true,
            a: false,
            aaaa: false,
        },
        rtype::ANY => Wanted {
            srv: true,
            a: true,
            aaaa: true,
        },
        _ => Wanted {
            srv: false,
            a: false,
            aaaa: false,
        },
    };

    // Answer order: a Fisher–Yates shuffle over the combined SRV, A, AAAA list.
    let empty = RrSet::default();
    let rr = rrset.unwrap_or(&empty);
    let n_srv = if wanted.srv { rr.srv.len() } else { 0 };
    let n_a = if wanted.a { rr.a.len() } else { 0 };
    let n_aaaa = if wanted.aaaa { rr.aaaa.len() } else { 0 };
    let total = n_srv + n_a + n_aaaa;
    scratch.order.clear();
    scratch.order.extend(0..total as u32);
    for i in (1..total).rev() {
        let j = scratch.below(i + 1);
        scratch.order.swap(i, j);
    }

    let ttl = zone.ttl;
    scratch.marks.clear();
    let mut overflow = false;
    for k in 0..total {
        let idx = scratch.order[k] as usize;
        // Copied from the snapshot's precomputed heads when the owner is the question (always
        // for SRV); A/AAAA owned by another spelling are written field by field.
        let res = if idx < n_srv {
            let s = rr.srv[idx];
            match snap.wire_names.get(s.target) {
                // A target that is no valid DNS name has no wire form: refused as the writer
                // refuses such a name (the answer stops here, as when the reply is full).
                [] => Err(WriteError::BadName),
                target => w.copy_record(
                    Section::Answer,
                    snap.fragments.srv(),
                    &s.port.to_be_bytes(),
                    target,
                ),
            }
        } else {
            let (v4, v6);
            let (rr_type, head, addr): (u16, &[u8], &[u8]) = if idx < n_srv + n_a {
                v4 = rr.a[idx - n_srv].octets();
                (rtype::A, snap.fragments.a(), &v4)
            } else {
                v6 = rr.aaaa[idx - n_srv - n_a].octets();
                (rtype::AAAA, snap.fragments.aaaa(), &v6)
            };
            match ip_owner {
                Name::Question => w.copy_record(Section::Answer, head, addr, &[]),
                _ => w.rr(Section::Answer, ip_owner, rr_type, ttl, addr),
            }
        };
        if res.is_err() {
            overflow = true;
            break;
        }
        scratch.marks.push((w.mark(), w.size()));
    }
    let answers_end_size = w.size();
    let written = scratch.marks.len();

    // Authority, and the rcode for an empty answer.
    let mut rc = rcode::NOERROR;
    let soa = zone_soa(snap);
    let mut auth = [AuthRr::None; 3];
    match q.qtype {
        rtype::SOA => auth[0] = AuthRr::Soa,
        rtype::NS => auth[0] = AuthRr::Ns,
        rtype::ANY => {
            auth[0] = AuthRr::Ns;
            auth[1] = AuthRr::Soa;
        }
        _ => {}
    }
    if total == 0 && !matches!(q.qtype, rtype::SOA | rtype::NS | rtype::SRV) {
        if rrset.is_none() {
            rc = rcode::NXDOMAIN;
        }
        let free = auth
            .iter()
            .position(|a| matches!(a, AuthRr::None))
            .unwrap_or(2);
        auth[free] = AuthRr::Soa;
    }
    w.set_rcode(rc);
    let auth_ok = write_authority(&mut w, &auth, ttl, &soa);

    // Glue: one A and one AAAA per distinct SRV target, in answer order.
    let before_glue = w.mark();
    let mut fits = auth_ok && !overflow;
    if fits && n_srv > 0 {
        scratch.glue.clear();
        for k in 0..written {
            let idx = scratch.order[k] as usize;
            if idx >= n_srv {
                continue;
            }
            let target = rr.srv[idx].target;
            if scratch.glue.contains(&target) {
                continue;
            }
            scratch.glue.push(target);
            let Some(trr) = snap.records.rrset(target) else {
                continue;
            };
            let tname = Name::Wire(snap.wire_names.get(target));
            if !trr.a.is_empty() {
                let pick = trr.a[scratch.below(trr.a.len())];
                if w.a(Section::Additional, tname, ttl, pick).is_err() {
                    fits = false;
                    break;
                }
            }
            if !trr.aaaa.is_empty() {
                let pick = trr.aaaa[scratch.below(trr.aaaa.len())];
                if w.aaaa(Section::Additional, tname, ttl, pick).is_err() {
                    fits = false;
                    break;
                }
            }
        }
    }
    let opt = q.edns.map(|e| e.do_bit);
    let opt_len = if opt.is_some() { wire::OPT_RR_LEN } else { 0 };
    if fits && w.size() + opt_len <= limit {
        if let Some(do_bit) = opt {
            let _ = w.opt(cfg.edns_udp_size, 0, do_bit);
        }
        let len = w.finish();
        return Outcome {
            len,
            rcode: rc,
            qtype: q.qtype,
            truncated: false,
            disposition: Disposition::Authoritative,
        };
    }

    // Truncation: drop every additional; then answers from the end while the reply is not
    // strictly smaller than the limit (the original's loop condition).
    w.rollback(before_glue);
    let mut keep = written;
    if !(auth_ok && !overflow && w.size() + opt_len < limit) {
        let auth_len = w.size().saturating_sub(answers_end_size);
        loop {
            let base = if keep == 0 {
                None
            } else {
                Some(scratch.marks[keep - 1])
            };
            let base_size = base.map_or(question_size, |(_, s)| s);
            if keep == 0 || base_size + auth_len + opt_len < limit {
                match base {
                    Some((m, _)) => w.rollback(m),
                    None => w.rollback(question_mark),
                }
                if write_authority(&mut w, &auth, ttl, &soa)
                    && (w.size() + opt_len < limit || keep == 0)
                {
                    break;
                }
            }
            if keep == 0 {
                break;
            }
            keep -= 1;
        }
    }
    if zone.set_truncate_bit {
        w.set_tc();
    }
    if let Some(do_bit) = opt {
        let _ = w.opt(cfg.edns_udp_size, 0, do_bit);
    }
    let len = w.finish();
    Outcome {
        len,
        rcode: rc,
        qtype: q.qtype,
        truncated: zone.set_truncate_bit,
        disposition: Disposition::Authoritative,
    }
}

#[derive(Clone, Copy)]
enum AuthRr {
    None,
    Soa,
    Ns,
}

fn write_authority(w: &mut ReplyWriter<'_>, auth: &[AuthRr; 3], ttl: u32, soa: &Soa<'_>) -> bool {
    for a in auth {
        let r = match a {
            AuthRr::None => Ok(()),
            AuthRr::Soa => w.soa(Section::Authority, Name::Question, ttl, soa),
            // The NS target is the SOA MNAME.
            AuthRr::Ns => w.ns(Section::Authority, Name::Question, ttl, soa.mname),
        };
        if r.is_err() {
            return false;
        }
    }
    true
}

/// A reverse name (`in-addr.arpa.` / `ip6.arpa.`) that has a PTR in the snapshot's reverse
/// index: answered authoritatively (AA, RA = `recurseon`). PTR and ANY get the PTR with the
/// zone's TTL; any other type is NODATA with the Mesos zone's SOA in the authority section
/// (owner: the question, TTL `ttl`), the same NODATA rule as in the domain. `None` when the
/// name is not ours (no snapshot, `ptrOn` off, no PTR for it, or a zone transfer): the
/// caller forwards it or says REFUSED. One hash probe, no allocation.
fn answer_reverse(
    pkt: &[u8],
    q: &Query,
    transport: Transport,
    snap: Option<&Snapshot>,
    name: &str,
    cfg: &AnswerConfig,
    out: &mut [u8],
) -> Option<Outcome> {
    let snap = snap?;
    if snap.reverse.is_empty()
        || !crate::records::reverse::is_reverse_name(name)
        || matches!(q.qtype, rtype::AXFR | rtype::IXFR)
    {
        return None;
    }
    let target_id = snap.reverse.get(name)?;
    let mut target = [0u8; wire::MAX_NAME_LEN];
    let target_len = wire::text_to_wire(snap.records.name(target_id).as_bytes(), &mut target)?;
    let zone = &snap.zone;
    let limit = match transport {
        Transport::Tcp => wire::MAX_MESSAGE_LEN,
        Transport::Udp => match q.edns {
            None => usize::from(wire::MIN_UDP_PAYLOAD),
            Some(e) => usize::from(e.udp_size.clamp(
                wire::MIN_UDP_PAYLOAD,
                cfg.edns_udp_size.max(wire::MIN_UDP_PAYLOAD),
            )),
        },
    };
    let mut w = ReplyWriter::new(out, limit);
    if q.edns.is_some() {
        w.reserve_opt();
    }
    let mut flags = q.reply_flags() | flag::AA;
    if zone.recurse_on {
        flags |= flag::RA;
    }
    w.header(q.id, flags);
    w.set_rcode(rcode::NOERROR);
    w.copy_question(q.question_bytes(pkt)).ok()?;
    let written = if matches!(q.qtype, rtype::PTR | rtype::ANY) {
        let rdata = target.get(..target_len).unwrap_or(&[]);
        w.rr(Section::Answer, Name::Question, rtype::PTR, zone.ttl, rdata)
    } else {
        let soa = zone_soa(snap);
        w.soa(Section::Authority, Name::Question, zone.ttl, &soa)
    };
    // One record after a question of at most 255 octets always fits in 512; kept for safety.
    let truncated = written.is_err() && zone.set_truncate_bit;
    if truncated {
        w.set_tc();
    }
    if let Some(e) = q.edns {
        let _ = w.opt(cfg.edns_udp_size, 0, e.do_bit);
    }
    Some(Outcome {
        len: w.finish(),
        rcode: rcode::NOERROR,
        qtype: q.qtype,
        truncated,
        disposition: Disposition::Authoritative,
    })
}

/// The zone's SOA as every reply and transfer writes it: MNAME/RNAME from the snapshot's zone
/// (in the wire form its fragments hold), its serial, and MINIMUM = `SOAMinttl` (product.md;
/// the original used `ttl`).
pub(crate) fn zone_soa(snap: &Snapshot) -> Soa<'_> {
    let zone = &snap.zone;
    Soa {
        mname: Name::Wire(snap.fragments.mname()),
        rname: Name::Wire(snap.fragments.rname()),
        serial: snap.serial,
        refresh: zone.refresh,
        retry: zone.retry,
        expire: zone.expire,
        minimum: zone.minimum,
    }
}
