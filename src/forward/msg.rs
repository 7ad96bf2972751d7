//! Byte-level work on whole DNS messages for the forward path: walking the records of an
//! upstream reply (compressed names skipped, never followed), checking that a reply answers
//! the question we sent, working out how long a reply may be cached (RFC 1035, RFC 2308),
//! ageing TTLs, stripping and re-appending the OPT record, and cutting a reply down to a
//! client's size limit at a record boundary.
//!
//! Upstream replies are untrusted input: every function here is bounds-checked, bounded by
//! the message length, never allocates and **never panics**. A malformed message is reported
//! as `None` (or left unchanged) and the caller treats it as garbage. It decides nothing about
//! policy (which upstream, what to cache): that is the caller's job.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::ops::Range;

use crate::dns::wire::{self, HEADER_LEN, MAX_NAME_LEN, be16, be32, flag, rcode, rtype};

/// Offset of QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT in the header.
const COUNT_AT: [usize; 4] = [4, 6, 8, 10];
/// RR type of TSIG (RFC 8945): a signed reply is never cached (the signature covers its ID).
const TSIG: u16 = 250;
/// RR type of SIG(0) (RFC 2931).
const SIG: u16 = 24;
/// Size of an SOA's fixed RDATA tail (serial, refresh, retry, expire, minimum).
const SOA_TAIL: usize = 20;

#[inline]
fn put16(m: &mut [u8], at: usize, v: u16) {
    if let Some(b) = m.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// The message ID, 0 when too short.
pub(crate) fn id(m: &[u8]) -> u16 {
    be16(m, 0).unwrap_or(0)
}

/// Sets the message ID (no-op on a message shorter than a header).
pub(crate) fn set_id(m: &mut [u8], id: u16) {
    put16(m, 0, id);
}

/// The flags word, 0 when too short.
pub(crate) fn flags(m: &[u8]) -> u16 {
    be16(m, 2).unwrap_or(0)
}

/// Replaces the flags word.
pub(crate) fn set_flags(m: &mut [u8], f: u16) {
    put16(m, 2, f);
}

/// Clears TC.
pub(crate) fn clear_tc(m: &mut [u8]) {
    set_flags(m, flags(m) & !flag::TC);
}

/// Count number `i` (0 = QD, 1 = AN, 2 = NS, 3 = AR).
fn count(m: &[u8], i: usize) -> u16 {
    COUNT_AT.get(i).and_then(|&at| be16(m, at)).unwrap_or(0)
}

fn set_count(m: &mut [u8], i: usize, v: u16) {
    if let Some(&at) = COUNT_AT.get(i) {
        put16(m, at, v);
    }
}

/// Skips a possibly compressed name at `pos`; returns the position after it. Pointers are
/// not followed (only their two bytes are consumed); reserved label types are an error.
fn skip_name(m: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let l = *m.get(pos)?;
        match l & 0xC0 {
            0x00 => {
                pos = pos.checked_add(1 + usize::from(l))?;
                if l == 0 {
                    return (pos <= m.len()).then_some(pos);
                }
                if pos - start > MAX_NAME_LEN {
                    return None;
                }
            }
            0xC0 => {
                m.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Where the question section ends (12 when QDCOUNT is 0); `None` for QDCOUNT > 1 or a
/// question running past the end.
fn question_end(m: &[u8]) -> Option<usize> {
    if m.len() < HEADER_LEN {
        return None;
    }
    match count(m, 0) {
        0 => Some(HEADER_LEN),
        1 => {
            let p = skip_name(m, HEADER_LEN)?.checked_add(4)?;
            (p <= m.len()).then_some(p)
        }
        _ => None,
    }
}

/// One resource record's position in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rr {
    /// Section: 0 answer, 1 authority, 2 additional.
    pub(crate) section: u8,
    /// First byte (the owner name).
    pub(crate) start: usize,
    /// TYPE.
    pub(crate) rtype: u16,
    /// Where the 2-byte CLASS field is.
    pub(crate) class_at: usize,
    /// TTL.
    pub(crate) ttl: u32,
    /// RDATA.
    pub(crate) rdata: (usize, usize),
}

impl Rr {
    /// Where the 4-byte TTL field is.
    fn ttl_at(&self) -> usize {
        self.class_at + 2
    }

    /// One past the last byte.
    pub(crate) fn end(&self) -> usize {
        self.rdata.1
    }
}

/// A position in the records of a message that does not borrow it, so the message can be
/// changed between steps. Stops (returns `None`) at the first malformed record;
/// [`Cursor::failed`] then tells the difference from a clean end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    pos: usize,
    section: u8,
    left: u16,
    failed: bool,
}

impl Cursor {
    /// Starts after the question; `None` if the header or question is malformed.
    pub(crate) fn new(m: &[u8]) -> Option<Cursor> {
        Some(Cursor {
            pos: question_end(m)?,
            section: 0,
            left: count(m, 1),
            failed: false,
        })
    }

    /// Whether the walk stopped on a malformed record.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Where the next record would start (after the last one read).
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next record of `m` (the message this cursor was made for).
    pub(crate) fn next_in(&mut self, m: &[u8]) -> Option<Rr> {
        if self.failed {
            return None;
        }
        while self.left == 0 {
            if self.section >= 2 {
                return None;
            }
            self.section += 1;
            self.left = count(m, usize::from(self.section) + 1);
        }
        match read_rr(m, self.pos, self.section) {
            Some(rr) => {
                self.left -= 1;
                self.pos = rr.end();
                Some(rr)
            }
            None => {
                self.failed = true;
                None
            }
        }
    }
}

fn read_rr(m: &[u8], pos: usize, section: u8) -> Option<Rr> {
    let name_end = skip_name(m, pos)?;
    let rr_type = be16(m, name_end)?;
    let ttl = be32(m, name_end + 4)?;
    let rdlen = usize::from(be16(m, name_end + 8)?);
    let rd_start = name_end + 10;
    let rd_end = rd_start + rdlen;
    if rd_end > m.len() {
        return None;
    }
    Some(Rr {
        section,
        start: pos,
        rtype: rr_type,
        class_at: name_end + 2,
        ttl,
        rdata: (rd_start, rd_end),
    })
}

/// Iterates the answer, authority and additional records of a message (a [`Cursor`] that
/// borrows it).
pub(crate) struct Records<'m> {
    m: &'m [u8],
    cur: Cursor,
}

impl<'m> Records<'m> {
    /// Starts after the question; `None` if the header or question is malformed.
    pub(crate) fn new(m: &'m [u8]) -> Option<Records<'m>> {
        Some(Records {
            m,
            cur: Cursor::new(m)?,
        })
    }

    /// Whether iteration stopped on a malformed record.
    pub(crate) fn failed(&self) -> bool {
        self.cur.failed()
    }

    /// Where the next record would start.
    pub(crate) fn pos(&self) -> usize {
        self.cur.pos()
    }
}

impl Iterator for Records<'_> {
    type Item = Rr;

    fn next(&mut self) -> Option<Rr> {
        self.cur.next_in(self.m)
    }
}

/// Whether `reply` is a well-formed answer to our question: QR set, ID `want_id`, and a
/// question equal to (`qname_lower`, `qtype`, `qclass`) with the name compared
/// case-insensitively. A reply without a question is accepted only with an error rcode
/// (some servers send FORMERR/REFUSED that way); every record must parse.
pub(crate) fn answers(
    reply: &[u8],
    want_id: u16,
    qname_lower: &[u8],
    qtype: u16,
    qclass: u16,
) -> bool {
    if reply.len() < HEADER_LEN || id(reply) != want_id {
        return false;
    }
    let f = flags(reply);
    if f & flag::QR == 0 {
        return false;
    }
    match count(reply, 0) {
        0 => {
            if f & flag::RCODE_MASK == u16::from(rcode::NOERROR) {
                return false;
            }
        }
        1 => {
            let mut name = [0u8; MAX_NAME_LEN];
            let Ok((after, n)) = wire::read_name(reply, HEADER_LEN, &mut name) else {
                return false;
            };
            let Some(got) = name.get(..n) else {
                return false;
            };
            if !got.eq_ignore_ascii_case(qname_lower)
                || be16(reply, after) != Some(qtype)
                || be16(reply, after + 2) != Some(qclass)
            {
                return false;
            }
        }
        _ => return false,
    }
    let Some(mut recs) = Records::new(reply) else {
        return false;
    };
    recs.by_ref().for_each(drop);
    !recs.failed()
}

/// What a walk over a whole reply found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The header rcode (low 4 bits).
    pub(crate) rcode: u8,
    /// TC was set.
    pub(crate) truncated: bool,
    /// ANCOUNT.
    pub(crate) answers: u16,
    /// Smallest TTL over every record but OPT (`u32::MAX` when there is none).
    pub(crate) min_ttl: u32,
    /// min(SOA TTL, SOA MINIMUM) of the first SOA in the authority section (RFC 2308 §5).
    pub(crate) negative_ttl: Option<u32>,
    /// The OPT record, when it is the very last record of the message.
    pub(crate) opt_last: Option<(usize, usize)>,
    /// An OPT record somewhere else than last.
    pub(crate) opt_elsewhere: bool,
    /// A TSIG or SIG(0) record (the reply is bound to its exchange).
    pub(crate) signed: bool,
    /// End of the last record (trailing bytes beyond it are ignored).
    pub(crate) end: usize,
}

/// Walks a whole message; `None` if any part is malformed.
pub(crate) fn summarize(m: &[u8]) -> Option<Summary> {
    let mut recs = Records::new(m)?;
    let f = flags(m);
    let mut s = Summary {
        rcode: (f & flag::RCODE_MASK) as u8,
        truncated: f & flag::TC != 0,
        answers: count(m, 1),
        min_ttl: u32::MAX,
        negative_ttl: None,
        opt_last: None,
        opt_elsewhere: false,
        signed: false,
        end: recs.pos(),
    };
    for rr in recs.by_ref() {
        if s.opt_last.take().is_some() {
            s.opt_elsewhere = true;
        }
        match rr.rtype {
            rtype::OPT => s.opt_last = Some((rr.start, rr.end())),
            TSIG | SIG => s.signed = true,
            _ => {}
        }
        if rr.rtype != rtype::OPT {
            s.min_ttl = s.min_ttl.min(rr.ttl);
        }
        if rr.rtype == rtype::SOA && rr.section == 1 && s.negative_ttl.is_none() {
            let minimum = rr
                .rdata
                .1
                .checked_sub(4)
                .filter(|&at| rr.rdata.1 - rr.rdata.0 >= SOA_TAIL + 2 && at >= rr.rdata.0)
                .and_then(|at| be32(m, at));
            if let Some(minimum) = minimum {
                s.negative_ttl = Some(rr.ttl.min(minimum));
            }
        }
        s.end = rr.end();
    }
    if recs.failed() {
        return None;
    }
    Some(s)
}

/// Subtracts `age` seconds from every TTL but OPT's, stopping at 0 (RFC 1035 §3.2.1,
/// RFC 2308 §5). A malformed message is changed only as far as it could be walked.
pub(crate) fn age_ttls(m: &mut [u8], age: u32) {
    if age == 0 {
        return;
    }
    let Some(mut cur) = Cursor::new(m) else {
        return;
    };
    while let Some(rr) = cur.next_in(m) {
        if rr.rtype != rtype::OPT {
            age_one(m, rr.ttl_at(), age);
        }
    }
}

fn age_one(m: &mut [u8], at: usize, age: u32) {
    if let Some(ttl) = be32(m, at)
        && let Some(b) = m.get_mut(at..at + 4)
    {
        b.copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
    }
}

/// Removes the OPT record when it is the last record of `m[..len]` (ARCOUNT decremented).
/// Returns the new length, or `None` when the message has an OPT elsewhere or is malformed.
pub(crate) fn strip_opt(m: &mut [u8], len: usize, s: &Summary) -> Option<usize> {
    if s.opt_elsewhere || len > m.len() {
        return None;
    }
    match s.opt_last {
        None => Some(s.end.min(len)),
        Some((start, _)) => {
            let ar = count(m, 3);
            set_count(m, 3, ar.checked_sub(1)?);
            Some(start)
        }
    }
}

/// Appends an OPT record (no options) at `len`; returns the new length, or `len` unchanged
/// when it does not fit in `m` or ARCOUNT is saturated.
pub(crate) fn append_opt(m: &mut [u8], len: usize, udp_size: u16, do_bit: bool) -> usize {
    let [hi, lo] = udp_size.to_be_bytes();
    let rr = [
        0,
        0,
        41,
        hi,
        lo,
        0,
        0,
        if do_bit { 0x80 } else { 0 },
        0,
        0,
        0,
    ];
    append_raw_rr(m, len, &rr)
}

/// Appends the bytes of one whole record at `len` and bumps ARCOUNT.
pub(crate) fn append_raw_rr(m: &mut [u8], len: usize, rr: &[u8]) -> usize {
    let ar = count(m, 3);
    let Some(ar1) = ar.checked_add(1) else {
        return len;
    };
    match m.get_mut(len..len + rr.len()) {
        Some(dst) => {
            dst.copy_from_slice(rr);
            set_count(m, 3, ar1);
            len + rr.len()
        }
        None => len,
    }
}

/// Cuts `m[..len]` to at most `limit` bytes at a record boundary and returns the new
/// length; messages that fit are left alone. Like the original (§4.4) the whole additional
/// section goes first; when that is not enough, answers are kept from the front as far as
/// they fit and the authority section goes too (dropping answers from the middle of a
/// message would break compression pointers into them). A message whose question alone does
/// not fit is cut to its header. The caller sets TC.
pub(crate) fn truncate(m: &mut [u8], len: usize, limit: usize) -> usize {
    let len = len.min(m.len());
    if len <= limit {
        return len;
    }
    let Some(msg) = m.get(..len) else { return len };
    let Some(qend) = question_end(msg) else {
        return header_only(m, limit);
    };
    if qend > limit {
        return header_only(m, limit);
    }
    // Record boundaries: end of the authority section, and the last answer end that fits.
    let mut authority_end = qend;
    let mut answers_fit = 0u16;
    let mut answers_end = qend;
    if let Some(recs) = Records::new(msg) {
        for rr in recs {
            if rr.section == 2 {
                break;
            }
            authority_end = rr.end();
            if rr.section == 0 && rr.end() <= limit {
                answers_fit += 1;
                answers_end = rr.end();
            }
        }
    }
    if authority_end <= limit {
        set_count(m, 3, 0);
        return authority_end;
    }
    set_count(m, 1, answers_fit);
    set_count(m, 2, 0);
    set_count(m, 3, 0);
    answers_end
}

fn header_only(m: &mut [u8], limit: usize) -> usize {
    if limit < HEADER_LEN || m.len() < HEADER_LEN {
        return 0;
    }
    for i in 0..4 {
        set_count(m, i, 0);
    }
    HEADER_LEN
}

/// Byte range of the OPT record that is last in a *query* (to patch its payload size).
pub(crate) fn query_opt_class_at(m: &[u8]) -> Option<usize> {
    Records::new(m)?
        .filter(|rr| rr.section == 2 && rr.rtype == rtype::OPT)
        .map(|rr| rr.class_at)
        .last()
}

/// Overwrites the 2-byte field at `at` (used for the OPT payload size).
pub(crate) fn patch16(m: &mut [u8], at: usize, v: u16) {
    put16(m, at, v);
}

/// The range of the question bytes (name, type, class) of a one-question message.
pub(crate) fn question_range(m: &[u8]) -> Option<Range<usize>> {
    (count(m, 0) == 1).then_some(HEADER_LEN..question_end(m)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, SOA, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn reply(answers: usize, soa: Option<(u32, u32)>, additional: usize, opt: bool) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m.add_query(Query::query(name("WwW.Example.Test."), RecordType::A));
        for i in 0..answers {
            m.add_answer(Record::from_rdata(
                name("www.example.test."),
                300 - i as u32,
                RData::A(A::new(192, 0, 2, i as u8)),
            ));
        }
        if let Some((ttl, minimum)) = soa {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(Record::from_rdata(
                name("example.test."),
                ttl,
                RData::SOA(SOA::new(
                    name("ns1.example.test."),
                    name("admin.example.test."),
                    1,
                    3600,
                    600,
                    86400,
                    minimum,
                )),
            ));
        }
        for i in 0..additional {
            m.add_additional(Record::from_rdata(
                name(&format!("extra{i}.example.test.")),
                1000,
                RData::TXT(TXT::new(vec!["x".repeat(100)])),
            ));
        }
        if opt {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_checks_id_qr_and_question() {
        let r = reply(2, None, 0, true);
        assert!(answers(&r, 0x4242, b"\x03www\x07example\x04test\x00", 1, 1));
        assert!(!answers(
            &r,
            0x4243,
            b"\x03www\x07example\x04test\x00",
            1,
            1
        ));
        assert!(!answers(
            &r,
            0x4242,
            b"\x03xxx\x07example\x04test\x00",
            1,
            1
        ));
        assert!(!answers(
            &r,
            0x4242,
            b"\x03www\x07example\x04test\x00",
            28,
            1
        ));
        assert!(!answers(
            &r,
            0x4242,
            b"\x03www\x07example\x04test\x00",
            1,
            3
        ));
        let mut q = r.clone();
        q[2] &= 0x7f;
        assert!(!answers(
            &q,
            0x4242,
            b"\x03www\x07example\x04test\x00",
            1,
            1
        ));
        // Cut short: a record runs past the end.
        assert!(!answers(
            &r[..r.len() - 3],
            0x4242,
            b"\x03www\x07example\x04test\x00",
            1,
            1
        ));
    }

    #[test]
    fn summary_ttls_and_opt() {
        let r = reply(3, None, 1, true);
        let s = summarize(&r).unwrap();
        assert_eq!((s.rcode, s.answers, s.min_ttl), (0, 3, 298));
        assert!(s.opt_last.is_some() && !s.opt_elsewhere && !s.signed);
        assert_eq!(s.end, r.len());
        let r = reply(0, Some((300, 30)), 0, false);
        let s = summarize(&r).unwrap();
        assert_eq!((s.rcode, s.negative_ttl), (3, Some(30)));
        let r = reply(0, Some((20, 30)), 0, false);
        assert_eq!(summarize(&r).unwrap().negative_ttl, Some(20));
    }

    #[test]
    fn strip_age_and_reappend() {
        let mut r = reply(2, None, 0, true);
        r.resize(r.len() + 64, 0);
        let len = r.len() - 64;
        let s = summarize(&r[..len]).unwrap();
        let n = strip_opt(&mut r, len, &s).unwrap();
        age_ttls(&mut r[..n], 100);
        let n = append_opt(&mut r, n, 1400, true);
        let m = Message::from_vec(&r[..n]).unwrap();
        assert_eq!(m.answers[0].ttl, 200);
        assert_eq!(m.answers[1].ttl, 199);
        assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1400);
        assert!(m.edns.unwrap().flags().dnssec_ok);
        // Ageing past the TTL stops at 0.
        age_ttls(&mut r[..n], 1000);
        let m = Message::from_vec(&r[..n]).unwrap();
        assert_eq!(m.answers[0].ttl, 0);
    }

    #[test]
    fn age_many_records() {
        let mut r = reply(100, None, 0, false);
        age_ttls(&mut r, 5);
        let m = Message::from_vec(&r).unwrap();
        for (i, a) in m.answers.iter().enumerate() {
            assert_eq!(a.ttl, 295 - i as u32);
        }
    }

    #[test]
    fn truncate_drops_additional_then_answers() {
        let mut r = reply(10, Some((60, 60)), 5, false);
        let len = r.len();
        assert_eq!(truncate(&mut r, len, len), len);
        // Room for everything but the additional section.
        let mut r2 = r.clone();
        let n = truncate(&mut r2, len, len - 1);
        let m = Message::from_vec(&r2[..n]).unwrap();
        assert_eq!(
            (m.answers.len(), m.authorities.len(), m.additionals.len()),
            (10, 1, 0)
        );
        // Room for the question and a few answers only.
        let mut r3 = r.clone();
        let n = truncate(&mut r3, len, 100);
        assert!(n <= 100);
        let m = Message::from_vec(&r3[..n]).unwrap();
        assert!(!m.answers.is_empty() && m.answers.len() < 10);
        assert!(m.authorities.is_empty());
        // Not even the question.
        let mut r4 = r.clone();
        assert_eq!(truncate(&mut r4, len, 20), 12);
        assert!(Message::from_vec(&r4[..12]).unwrap().queries.is_empty());
        assert_eq!(truncate(&mut r4, len, 5), 0);
    }

    #[test]
    fn query_opt_is_found() {
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(name("a.b."), RecordType::A));
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
        let mut q = m.to_vec().unwrap();
        let at = query_opt_class_at(&q).unwrap();
        patch16(&mut q, at, 1232);
        let p = wire::parse_query(&q).unwrap();
        assert_eq!(p.edns.unwrap().udp_size, 1232);
        assert_eq!(question_range(&q), Some(12..12 + 5 + 4));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [reply(3, None, 2, true), reply(0, Some((60, 30)), 0, true)];
        let mut buf = vec![0u8; 2048];
        for i in 0..50_000 {
            let r = next();
            let mut pkt: Vec<u8> = if i % 2 == 0 {
                (0..r % 200).map(|_| next() as u8).collect()
            } else {
                let mut p = seeds[(r % 2) as usize].clone();
                for _ in 0..(1 + (r >> 8) % 4) {
                    let at = (next() as usize) % p.len();
                    p[at] = next() as u8;
                }
                if (r >> 16) % 4 == 0 {
                    p.truncate((next() as usize) % p.len());
                }
                p
            };
            let len = pkt.len();
            let _ = answers(&pkt, 0x4242, b"\x01a\x00", 1, 1);
            let s = summarize(&pkt);
            age_ttls(&mut pkt, 7);
            let _ = query_opt_class_at(&pkt);
            let _ = question_range(&pkt);
            buf[..len].copy_from_slice(&pkt);
            if let Some(s) = s {
                let n = strip_opt(&mut buf, len, &s).unwrap_or(len);
                let n = append_opt(&mut buf, n, 512, false);
                let _ = truncate(&mut buf, n, 64);
            }
            let _ = truncate(&mut buf, len, (r % 300) as usize);
        }
    }
}
