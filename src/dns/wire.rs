//! DNS wire format for the query hot path. This module owns the byte-level protocol: the
//! constants (rtypes, classes, rcodes, opcodes, header flags) and every size bound with its
//! reason; [`parse_query`], which turns a received packet into a fixed-size, `Copy`
//! [`Query`] (header, the single question, the EDNS(0) OPT record); name conversion between
//! wire and dotted text form ([`name_to_text_lower`], [`text_to_wire`], [`read_name`]); and
//! writing replies into a caller-provided buffer with [`ReplyWriter`] (name compression,
//! section counts, a size limit with roll-back) and [`write_error_reply`].
//!
//! It decides nothing about *what* to answer (record lookup, rcode choice, truncation policy:
//! that is the caller's job) and depends on nothing else in the crate. It **never allocates,
//! never panics on any input** (every packet access is bounds-checked through `get`, every
//! loop is bounded by the packet length or a fixed hop count) and uses no `unsafe`.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// Resource record types (RFC 1035 §3.2.2 and later RFCs).
pub mod rtype {
    /// IPv4 host address (RFC 1035).
    pub const A: u16 = 1;
    /// Authoritative name server (RFC 1035).
    pub const NS: u16 = 2;
    /// Canonical name (RFC 1035).
    pub const CNAME: u16 = 5;
    /// Start of authority (RFC 1035).
    pub const SOA: u16 = 6;
    /// Domain name pointer (RFC 1035).
    pub const PTR: u16 = 12;
    /// Mail exchange (RFC 1035).
    pub const MX: u16 = 15;
    /// Text strings (RFC 1035).
    pub const TXT: u16 = 16;
    /// IPv6 host address (RFC 3596).
    pub const AAAA: u16 = 28;
    /// Service location (RFC 2782).
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo-record (RFC 6891).
    pub const OPT: u16 = 41;
    /// Delegation signer (RFC 4034).
    pub const DS: u16 = 43;
    /// Incremental zone transfer (RFC 1995).
    pub const IXFR: u16 = 251;
    /// Full zone transfer (RFC 5936).
    pub const AXFR: u16 = 252;
    /// Any type, QTYPE only (RFC 1035, RFC 8482).
    pub const ANY: u16 = 255;
}

/// Classes (RFC 1035 §3.2.4).
pub mod class {
    /// Internet.
    pub const IN: u16 = 1;
    /// Chaos.
    pub const CH: u16 = 3;
    /// Hesiod.
    pub const HS: u16 = 4;
    /// NONE (RFC 2136).
    pub const NONE: u16 = 254;
    /// Any class, QCLASS only.
    pub const ANY: u16 = 255;
}

/// Response codes. Values above 15 are extended (RFC 6891): the low 4 bits go in the header,
/// the high 8 bits in the OPT record's TTL.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error: the server could not interpret the query.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented (for example an opcode other than QUERY).
    pub const NOTIMP: u8 = 4;
    /// Refused by policy.
    pub const REFUSED: u8 = 5;
    /// Unsupported EDNS version (extended rcode, RFC 6891 §6.1.3).
    pub const BADVERS: u8 = 16;
}

/// Opcodes (header bits 11..=14).
pub mod opcode {
    /// Standard query.
    pub const QUERY: u8 = 0;
    /// Inverse query (obsolete, RFC 3425).
    pub const IQUERY: u8 = 1;
    /// Server status request.
    pub const STATUS: u8 = 2;
    /// Zone change notification (RFC 1996).
    pub const NOTIFY: u8 = 4;
    /// Dynamic update (RFC 2136).
    pub const UPDATE: u8 = 5;
}

/// Bits of the 16-bit header flags word (the second header field).
pub mod flag {
    /// Response (set) or query (clear).
    pub const QR: u16 = 0x8000;
    /// The opcode field, 4 bits.
    pub const OPCODE_MASK: u16 = 0x7800;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
    /// Authentic data (RFC 4035).
    pub const AD: u16 = 0x0020;
    /// Checking disabled (RFC 4035).
    pub const CD: u16 = 0x0010;
    /// The (low 4 bits of the) response code.
    pub const RCODE_MASK: u16 = 0x000F;
}

/// Longest name in wire form, length octets and the root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4): a length octet has 6 usable bits, the top two mark
/// pointers (`11`) and the reserved/extended label types (`01`, `10`).
pub const MAX_LABEL_LEN: usize = 63;
/// Size of the fixed message header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Largest DNS message (TCP length prefix is 16 bits; RFC 1035 §4.2.2).
pub const MAX_MESSAGE_LEN: usize = 65535;
/// Largest payload a UDP datagram can carry over IPv4 (65535 − 20 IP − 8 UDP); the upper
/// clamp for an EDNS size and a sufficient receive buffer for any query.
pub const MAX_UDP_PAYLOAD: u16 = 65507;
/// Every resolver accepts a 512-byte UDP reply (RFC 1035 §4.2.1); smaller EDNS sizes are
/// treated as 512 (RFC 6891 §6.2.5).
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// Our default advertised EDNS payload size: avoids IP fragmentation on common paths (DNS
/// flag day 2020).
pub const DEFAULT_EDNS_UDP_SIZE: u16 = 1232;
/// Most compression pointers followed while reading one name. A 255-octet name has at most
/// 127 labels, and a sane encoder uses at most one pointer per label; since pointers must also
/// go strictly backwards, loops are impossible and this only bounds the work per name.
pub const MAX_POINTER_HOPS: usize = 127;
/// Largest offset a compression pointer can hold (14 bits).
pub const MAX_POINTER_OFFSET: usize = 0x3FFF;
/// Size of an OPT record without options: root owner (1) + type, class, TTL, RDLENGTH (10).
pub const OPT_RR_LEN: usize = 11;
/// Entries in the [`ReplyWriter`] compression table: the question's labels plus ~25 distinct
/// SRV targets, more than fit in a 1232-byte reply anyway.
pub const COMPRESSION_SLOTS: usize = 32;

// ---------------------------------------------------------------------------------------------
// Small byte helpers (bounds-checked, never panic)
// ---------------------------------------------------------------------------------------------

/// Big-endian u16 at `at`, `None` past the end.
#[inline]
pub(crate) fn be16(p: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = p.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

/// Big-endian u32 at `at`, `None` past the end.
#[inline]
pub(crate) fn be32(p: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = p.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Length of the well-formed, uncompressed wire name that fills all of `w`, or `None`.
fn wire_name_len(w: &[u8]) -> Option<usize> {
    if w.len() > MAX_NAME_LEN {
        return None;
    }
    let mut p = 0usize;
    loop {
        let l = usize::from(*w.get(p)?);
        if l > MAX_LABEL_LEN {
            return None;
        }
        p = p.checked_add(1 + l)?;
        if l == 0 {
            return (p == w.len()).then_some(p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Why a packet could not be parsed. [`ParseError::rcode`] says how to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Shorter than the 12-byte header: dropped.
    TooShort,
    /// QR is set (a response, not a query): dropped, so we never loop with another server.
    Response,
    /// Opcode other than QUERY: NOTIMP.
    Opcode,
    /// QDCOUNT is not 1: FORMERR.
    QdCount,
    /// The question or a record runs past the end of the packet: FORMERR.
    Truncated,
    /// A length octet of a reserved/extended label type (64..=191), which also covers any
    /// label longer than 63: FORMERR.
    BadLabel,
    /// A name longer than 255 octets in wire form: FORMERR.
    NameTooLong,
    /// A compression pointer in the question name; a query has nothing before its question to
    /// point at, so any pointer there is refused: FORMERR.
    QnamePointer,
    /// ([`read_name`] only) a pointer to a later offset: FORMERR.
    ForwardPointer,
    /// ([`read_name`] only) a pointer back into the labels being read: FORMERR.
    PointerLoop,
    /// ([`read_name`] only) more than [`MAX_POINTER_HOPS`] pointers: FORMERR.
    TooManyHops,
    /// More than one OPT record (RFC 6891 §6.1.1): FORMERR.
    DuplicateOpt,
    /// An OPT record whose owner is not the root: FORMERR.
    OptOwner,
    /// OPT RDATA past the end of the packet, or options that do not tile it: FORMERR.
    OptRdata,
}

impl ParseError {
    /// Every kind, in [`ParseError::index`] order (for per-kind counter arrays).
    pub const ALL: [ParseError; 14] = [
        ParseError::TooShort,
        ParseError::Response,
        ParseError::Opcode,
        ParseError::QdCount,
        ParseError::Truncated,
        ParseError::BadLabel,
        ParseError::NameTooLong,
        ParseError::QnamePointer,
        ParseError::ForwardPointer,
        ParseError::PointerLoop,
        ParseError::TooManyHops,
        ParseError::DuplicateOpt,
        ParseError::OptOwner,
        ParseError::OptRdata,
    ];

    /// The rcode to answer with, or `None` to drop the packet silently.
    pub fn rcode(self) -> Option<u8> {
        match self {
            ParseError::TooShort | ParseError::Response => None,
            ParseError::Opcode => Some(rcode::NOTIMP),
            _ => Some(rcode::FORMERR),
        }
    }

    /// A stable snake_case name for metrics and logs.
    pub fn counter_name(self) -> &'static str {
        match self {
            ParseError::TooShort => "too_short",
            ParseError::Response => "response",
            ParseError::Opcode => "opcode",
            ParseError::QdCount => "qdcount",
            ParseError::Truncated => "truncated",
            ParseError::BadLabel => "bad_label",
            ParseError::NameTooLong => "name_too_long",
            ParseError::QnamePointer => "qname_pointer",
            ParseError::ForwardPointer => "forward_pointer",
            ParseError::PointerLoop => "pointer_loop",
            ParseError::TooManyHops => "too_many_hops",
            ParseError::DuplicateOpt => "duplicate_opt",
            ParseError::OptOwner => "opt_owner",
            ParseError::OptRdata => "opt_rdata",
        }
    }

    /// Dense index `0..ParseError::ALL.len()`, for a per-kind counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.counter_name())
    }
}

impl std::error::Error for ParseError {}

/// EDNS(0) information from a query's OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// Advertised UDP payload size, as sent (the caller clamps it).
    pub udp_size: u16,
    /// EDNS version; anything but 0 must be answered with [`rcode::BADVERS`].
    pub version: u8,
    /// The DO (DNSSEC OK) bit.
    pub do_bit: bool,
}

/// A parsed query. Plain data, no heap: it can be copied and kept past the packet buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// Message ID.
    pub id: u16,
    /// The raw header flags word (see [`flag`]).
    pub flags: u16,
    /// Opcode (always [`opcode::QUERY`] after a successful parse).
    pub opcode: u8,
    /// Recursion desired.
    pub rd: bool,
    /// Checking disabled.
    pub cd: bool,
    /// QDCOUNT (always 1 after a successful parse).
    pub qdcount: u16,
    /// ANCOUNT.
    pub ancount: u16,
    /// NSCOUNT.
    pub nscount: u16,
    /// ARCOUNT.
    pub arcount: u16,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record, if the query had one.
    pub edns: Option<Edns>,
    qname: [u8; MAX_NAME_LEN],
    qname_len: u8,
    question_start: u16,
    question_end: u16,
}

impl Query {
    /// The question name, uncompressed wire form, original case.
    pub fn qname(&self) -> &[u8] {
        self.qname.get(..usize::from(self.qname_len)).unwrap_or(&[])
    }

    /// Where the question (name, type, class) lies in the parsed packet.
    pub fn question_range(&self) -> std::ops::Range<usize> {
        usize::from(self.question_start)..usize::from(self.question_end)
    }

    /// The question bytes of `pkt` (the packet this query was parsed from), for
    /// [`ReplyWriter::copy_question`]; empty if `pkt` is too short.
    pub fn question_bytes<'p>(&self, pkt: &'p [u8]) -> &'p [u8] {
        pkt.get(self.question_range()).unwrap_or(&[])
    }

    /// Reply flags copied from the query: QR set, the opcode, RD and CD; everything else
    /// (AA, RA, TC, rcode) clear.
    pub fn reply_flags(&self) -> u16 {
        flag::QR | (self.flags & (flag::OPCODE_MASK | flag::RD | flag::CD))
    }
}

/// Copies the uncompressed name at `pos` into `out`; any pointer is [`ParseError::QnamePointer`].
/// Returns (position after the name, wire length).
fn read_qname(
    pkt: &[u8],
    mut pos: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), ParseError> {
    let mut len = 0usize;
    loop {
        let l = *pkt.get(pos).ok_or(ParseError::Truncated)?;
        match l & 0xC0 {
            0x00 => {}
            0xC0 => return Err(ParseError::QnamePointer),
            _ => return Err(ParseError::BadLabel),
        }
        let step = 1 + usize::from(l);
        let new_len = len + step;
        if new_len > MAX_NAME_LEN {
            return Err(ParseError::NameTooLong);
        }
        let label = pkt.get(pos..pos + step).ok_or(ParseError::Truncated)?;
        out.get_mut(len..new_len)
            .ok_or(ParseError::NameTooLong)?
            .copy_from_slice(label);
        len = new_len;
        pos += step;
        if l == 0 {
            return Ok((pos, len));
        }
    }
}

/// Skips a (possibly compressed) name in a record without following pointers.
/// Returns (position after the name, whether the name is exactly the root).
fn skip_name(pkt: &[u8], start: usize) -> Result<(usize, bool), ParseError> {
    let mut pos = start;
    let mut len = 0usize;
    loop {
        let l = *pkt.get(pos).ok_or(ParseError::Truncated)?;
        match l & 0xC0 {
            0x00 => {}
            0xC0 => {
                pkt.get(pos + 1).ok_or(ParseError::Truncated)?;
                return Ok((pos + 2, false));
            }
            _ => return Err(ParseError::BadLabel),
        }
        if l == 0 {
            return Ok((pos + 1, pos == start));
        }
        let step = 1 + usize::from(l);
        len += step;
        // Inline labels plus at least the root or a pointer must fit in 255.
        if len >= MAX_NAME_LEN {
            return Err(ParseError::NameTooLong);
        }
        pos += step;
    }
}

/// Reads the possibly compressed name at `pos` of the whole message `msg` into `out`
/// (uncompressed wire form). Pointers must go strictly before every position read so far for
/// this name (so loops are impossible), at most [`MAX_POINTER_HOPS`] of them.
/// Returns (position in `msg` after the name, wire length in `out`).
pub fn read_name(
    msg: &[u8],
    pos: usize,
    out: &mut [u8; MAX_NAME_LEN],
) -> Result<(usize, usize), ParseError> {
    let mut cur = pos;
    let mut lowest = pos;
    let mut end: Option<usize> = None;
    let mut hops = 0usize;
    let mut len = 0usize;
    loop {
        let l = *msg.get(cur).ok_or(ParseError::Truncated)?;
        match l & 0xC0 {
            0x00 => {
                let step = 1 + usize::from(l);
                let new_len = len + step;
                if new_len > MAX_NAME_LEN {
                    return Err(ParseError::NameTooLong);
                }
                let label = msg.get(cur..cur + step).ok_or(ParseError::Truncated)?;
                out.get_mut(len..new_len)
                    .ok_or(ParseError::NameTooLong)?
                    .copy_from_slice(label);
                len = new_len;
                cur += step;
                if l == 0 {
                    return Ok((end.unwrap_or(cur), len));
                }
            }
            0xC0 => {
                let lo = *msg.get(cur + 1).ok_or(ParseError::Truncated)?;
                let target = (usize::from(l & 0x3F) << 8) | usize::from(lo);
                if target > cur {
                    return Err(ParseError::ForwardPointer);
                }
                if target >= lowest {
                    return Err(ParseError::PointerLoop);
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(ParseError::TooManyHops);
                }
                if end.is_none() {
                    end = Some(cur + 2);
                }
                lowest = target;
                cur = target;
            }
            _ => return Err(ParseError::BadLabel),
        }
    }
}

/// Parses a query packet: header, the single question (name copied, original case, no
/// compression allowed), then skips the answer and authority records and scans the additional
/// section for the OPT record. Bytes after the last counted record are ignored.
///
/// Check order: length and QR (dropped), opcode (NOTIMP), QDCOUNT, question, records.
/// An EDNS version other than 0 is not an error here: it is reported in [`Edns::version`].
pub fn parse_query(pkt: &[u8]) -> Result<Query, ParseError> {
    if pkt.len() < HEADER_LEN {
        return Err(ParseError::TooShort);
    }
    let h = |at| be16(pkt, at).ok_or(ParseError::TooShort);
    let id = h(0)?;
    let flags = h(2)?;
    let qdcount = h(4)?;
    let ancount = h(6)?;
    let nscount = h(8)?;
    let arcount = h(10)?;
    if flags & flag::QR != 0 {
        return Err(ParseError::Response);
    }
    // The mask leaves 4 bits, so the cast is lossless.
    let op = ((flags & flag::OPCODE_MASK) >> 11) as u8;
    if op != opcode::QUERY {
        return Err(ParseError::Opcode);
    }
    if qdcount != 1 {
        return Err(ParseError::QdCount);
    }

    let mut qname = [0u8; MAX_NAME_LEN];
    let (after_name, qname_len) = read_qname(pkt, HEADER_LEN, &mut qname)?;
    let qtype = be16(pkt, after_name).ok_or(ParseError::Truncated)?;
    let qclass = be16(pkt, after_name + 2).ok_or(ParseError::Truncated)?;
    let question_end = after_name + 4;
    let mut pos = question_end;

    // Answer and authority: skip. Every record consumes at least 11 bytes, so the loop is
    // bounded by the packet length whatever the counts say.
    for _ in 0..(u32::from(ancount) + u32::from(nscount)) {
        let (p, _) = skip_name(pkt, pos)?;
        let rdlen = be16(pkt, p + 8).ok_or(ParseError::Truncated)?;
        pos = p + 10 + usize::from(rdlen);
        if pos > pkt.len() {
            return Err(ParseError::Truncated);
        }
    }

    let mut edns = None;
    for _ in 0..arcount {
        let (p, is_root) = skip_name(pkt, pos)?;
        let rr_type = be16(pkt, p).ok_or(ParseError::Truncated)?;
        let rr_class = be16(pkt, p + 2).ok_or(ParseError::Truncated)?;
        let ttl = be32(pkt, p + 4).ok_or(ParseError::Truncated)?;
        let rdlen = be16(pkt, p + 8).ok_or(ParseError::Truncated)?;
        let rd_start = p + 10;
        let rd_end = rd_start + usize::from(rdlen);
        if rr_type == rtype::OPT {
            if !is_root {
                return Err(ParseError::OptOwner);
            }
            if edns.is_some() {
                return Err(ParseError::DuplicateOpt);
            }
            let rdata = pkt.get(rd_start..rd_end).ok_or(ParseError::OptRdata)?;
            check_opt_options(rdata)?;
            let [_ext_rcode, version, flags_hi, _flags_lo] = ttl.to_be_bytes();
            edns = Some(Edns {
                udp_size: rr_class,
                version,
                do_bit: flags_hi & 0x80 != 0,
            });
        } else if rd_end > pkt.len() {
            return Err(ParseError::Truncated);
        }
        pos = rd_end;
    }

    // The question starts at 12 and is at most 259 bytes long, so both fit in u16.
    let question_end = u16::try_from(question_end).map_err(|_| ParseError::NameTooLong)?;
    Ok(Query {
        id,
        flags,
        opcode: op,
        rd: flags & flag::RD != 0,
        cd: flags & flag::CD != 0,
        qdcount,
        ancount,
        nscount,
        arcount,
        qtype,
        qclass,
        edns,
        qname,
        qname_len: u8::try_from(qname_len).map_err(|_| ParseError::NameTooLong)?,
        question_start: HEADER_LEN as u16,
        question_end,
    })
}

/// OPT RDATA is a sequence of {code u16, length u16, data}; it must tile the RDATA exactly.
fn check_opt_options(mut rdata: &[u8]) -> Result<(), ParseError> {
    while !rdata.is_empty() {
        let len = be16(rdata, 2).ok_or(ParseError::OptRdata)?;
        rdata = rdata
            .get(4 + usize::from(len)..)
            .ok_or(ParseError::OptRdata)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Name conversion
// ---------------------------------------------------------------------------------------------

/// Converts an uncompressed wire name into lowercase dotted text with a trailing dot (the root
/// is `"."`). Returns the text length, or `None` if the name is malformed or a label holds a
/// `'.'` or a byte outside printable ASCII (`0x21..=0x7E`): such names never match a record.
pub fn name_to_text_lower(wire_name: &[u8], out: &mut [u8; 256]) -> Option<usize> {
    wire_name_len(wire_name)?;
    let mut p = 0usize;
    let mut o = 0usize;
    loop {
        let l = usize::from(*wire_name.get(p)?);
        if l == 0 {
            if o == 0 {
                *out.get_mut(0)? = b'.';
                return Some(1);
            }
            return Some(o);
        }
        for &b in wire_name.get(p + 1..p + 1 + l)? {
            if b == b'.' || !b.is_ascii_graphic() {
                return None;
            }
            *out.get_mut(o)? = b.to_ascii_lowercase();
            o += 1;
        }
        *out.get_mut(o)? = b'.';
        o += 1;
        p += 1 + l;
    }
}

/// Converts a dotted name (trailing dot optional; `"."` or `""` is the root; no `\` escapes)
/// into uncompressed wire form in `out`, case preserved. Returns the wire length, or `None`
/// for an empty label, a label over 63 bytes, a name over 255 bytes, or `out` too small.
pub fn text_to_wire(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let body = if text == b"." {
        &[][..]
    } else {
        text.strip_suffix(b".").unwrap_or(text)
    };
    let mut o = 0usize;
    if !body.is_empty() {
        for label in body.split(|&b| b == b'.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return None;
            }
            let end = o + 1 + label.len();
            // Keep room for the root octet.
            if end >= MAX_NAME_LEN {
                return None;
            }
            // Label length ≤ 63, so the cast is lossless.
            *out.get_mut(o)? = label.len() as u8;
            out.get_mut(o + 1..end)?.copy_from_slice(label);
            o = end;
        }
    }
    *out.get_mut(o)? = 0;
    Some(o + 1)
}

// ---------------------------------------------------------------------------------------------
// Reply writing
// ---------------------------------------------------------------------------------------------

/// Why an append failed. The buffer is left exactly as before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The record does not fit within the limit (the caller truncates).
    Full,
    /// A name is malformed (bad wire form, bad text, or [`Name::Question`] with no question).
    BadName,
    /// Sections must be written in order: question, answer, authority, additional.
    OutOfOrder,
}

/// Reply section of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Answer section.
    Answer,
    /// Authority section.
    Authority,
    /// Additional section.
    Additional,
}

impl Section {
    fn index(self) -> usize {
        match self {
            Section::Answer => 1,
            Section::Authority => 2,
            Section::Additional => 3,
        }
    }
}

/// A name to write as an owner or in RDATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name<'n> {
    /// The question name as sent (a 2-byte pointer to offset 12 when compressed).
    Question,
    /// An uncompressed wire name.
    Wire(&'n [u8]),
    /// A dotted text name (see [`text_to_wire`]).
    Text(&'n [u8]),
}

/// SRV RDATA (RFC 2782).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Srv<'n> {
    /// Priority.
    pub priority: u16,
    /// Weight.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host; written uncompressed as RFC 2782 asks, but later names compress to it.
    pub target: Name<'n>,
}

/// SOA RDATA (RFC 1035 §3.3.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Soa<'n> {
    /// Primary name server.
    pub mname: Name<'n>,
    /// Responsible mailbox.
    pub rname: Name<'n>,
    /// Serial.
    pub serial: u32,
    /// Refresh interval.
    pub refresh: u32,
    /// Retry interval.
    pub retry: u32,
    /// Expire limit.
    pub expire: u32,
    /// Minimum / negative-caching TTL.
    pub minimum: u32,
}

/// A position to roll a [`ReplyWriter`] back to (see [`ReplyWriter::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pos: usize,
    counts: [u16; 4],
    section: usize,
    comp_len: usize,
    opt_reserved: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct CompEntry {
    /// Offset of a name (suffix) already written in the buffer.
    off: u16,
    /// Its uncompressed wire length, a cheap pre-filter before comparing.
    len: u8,
}

/// Writes a reply into a caller-provided buffer, without allocating.
///
/// Call [`header`](Self::header), then [`copy_question`](Self::copy_question) or
/// [`question`](Self::question), then records in section order, then
/// [`finish`](Self::finish). Names are compressed (owners, NS and SOA names) against a fixed
/// table of earlier names, matched byte-exactly so the case written is the case given.
/// Every append either writes a whole record within the limit or leaves the buffer unchanged.
pub struct ReplyWriter<'a> {
    buf: &'a mut [u8],
    limit: usize,
    pos: usize,
    id: u16,
    flags: u16,
    counts: [u16; 4],
    section: usize,
    qname_len: usize,
    opt_reserved: bool,
    comp: [CompEntry; COMPRESSION_SLOTS],
    comp_len: usize,
}

impl<'a> ReplyWriter<'a> {
    /// A writer over `buf` whose reply will not exceed `limit` bytes (nor `buf.len()`). The
    /// 12-byte header is always written by [`finish`](Self::finish) when `buf` can hold it;
    /// the limit governs the question and the records.
    pub fn new(buf: &'a mut [u8], limit: usize) -> Self {
        let limit = limit.min(buf.len());
        ReplyWriter {
            buf,
            limit,
            pos: HEADER_LEN,
            id: 0,
            flags: 0,
            counts: [0; 4],
            section: 0,
            qname_len: 0,
            opt_reserved: false,
            comp: [CompEntry::default(); COMPRESSION_SLOTS],
            comp_len: 0,
        }
    }

    /// Sets the ID and the whole flags word (opcode and rcode bits included; see [`flag`] and
    /// [`Query::reply_flags`]).
    pub fn header(&mut self, id: u16, flags: u16) {
        self.id = id;
        self.flags = flags;
    }

    /// Sets TC.
    pub fn set_tc(&mut self) {
        self.flags |= flag::TC;
    }

    /// Clears TC.
    pub fn clear_tc(&mut self) {
        self.flags &= !flag::TC;
    }

    /// Sets the header rcode to the low 4 bits of `rcode`; for an extended rcode pass
    /// `rcode >> 4` to [`opt`](Self::opt).
    pub fn set_rcode(&mut self, rcode: u8) {
        self.flags = (self.flags & !flag::RCODE_MASK) | (u16::from(rcode) & flag::RCODE_MASK);
    }

    /// The flags word as it will be written.
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Bytes written so far, header included.
    pub fn size(&self) -> usize {
        self.pos
    }

    /// Records written so far in `section`.
    pub fn count(&self, section: Section) -> u16 {
        self.counts.get(section.index()).copied().unwrap_or(0)
    }

    /// Keeps [`OPT_RR_LEN`] bytes free: every later append except [`opt`](Self::opt) must fit
    /// in `limit - 11`, so the OPT record always fits after truncation.
    pub fn reserve_opt(&mut self) {
        self.opt_reserved = true;
    }

    /// The current position, to [`rollback`](Self::rollback) to later.
    pub fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            counts: self.counts,
            section: self.section,
            comp_len: self.comp_len,
            opt_reserved: self.opt_reserved,
        }
    }

    /// Removes everything written after `mark` (records, counts, compression entries). A mark
    /// beyond the current position (taken before an earlier rollback) is ignored.
    pub fn rollback(&mut self, mark: Mark) {
        if mark.pos > self.pos {
            return;
        }
        self.pos = mark.pos;
        self.counts = mark.counts;
        self.section = mark.section;
        self.comp_len = mark.comp_len.min(self.comp_len);
        self.opt_reserved = mark.opt_reserved;
        if self.counts.first().copied().unwrap_or(0) == 0 {
            self.qname_len = 0;
        }
    }

    /// Writes the header (ID, flags, counts) and returns the reply length (0 if the buffer
    /// cannot even hold a header).
    pub fn finish(self) -> usize {
        let [qd, an, ns, ar] = self.counts;
        let mut h = [0u8; HEADER_LEN];
        for (i, v) in [self.id, self.flags, qd, an, ns, ar]
            .into_iter()
            .enumerate()
        {
            if let Some(dst) = h.get_mut(2 * i..2 * i + 2) {
                dst.copy_from_slice(&v.to_be_bytes());
            }
        }
        match self.buf.get_mut(..HEADER_LEN) {
            Some(dst) => {
                dst.copy_from_slice(&h);
                self.pos
            }
            None => 0,
        }
    }

    /// Copies a question (uncompressed name, QTYPE, QCLASS) verbatim, for example
    /// [`Query::question_bytes`]. Must come first and only once.
    pub fn copy_question(&mut self, question: &[u8]) -> Result<(), WriteError> {
        if self.pos != HEADER_LEN || self.section != 0 || self.counts[0] != 0 {
            return Err(WriteError::OutOfOrder);
        }
        let name_len = question
            .len()
            .checked_sub(4)
            .and_then(|n| question.get(..n))
            .and_then(wire_name_len)
            .ok_or(WriteError::BadName)?;
        let m = self.mark();
        if let Err(e) = self.put(question) {
            self.rollback(m);
            return Err(e);
        }
        if let Some(name) = question.get(..name_len) {
            self.register_labels(HEADER_LEN, name, name_len);
        }
        self.qname_len = name_len;
        self.counts[0] = 1;
        Ok(())
    }

    /// Writes the question of `q` (its name, QTYPE and QCLASS): the same bytes as
    /// [`copy_question`](Self::copy_question) with [`Query::question_bytes`].
    pub fn question(&mut self, q: &Query) -> Result<(), WriteError> {
        let mut tmp = [0u8; MAX_NAME_LEN + 4];
        let n = q.qname().len();
        tmp.get_mut(..n)
            .ok_or(WriteError::BadName)?
            .copy_from_slice(q.qname());
        tmp.get_mut(n..n + 4)
            .ok_or(WriteError::BadName)?
            .copy_from_slice(&((u32::from(q.qtype) << 16) | u32::from(q.qclass)).to_be_bytes());
        self.copy_question(tmp.get(..n + 4).ok_or(WriteError::BadName)?)
    }

    /// Appends an A record.
    pub fn a(
        &mut self,
        section: Section,
        owner: Name<'_>,
        ttl: u32,
        addr: Ipv4Addr,
    ) -> Result<(), WriteError> {
        self.record(section, owner, rtype::A, ttl, |w| w.put(&addr.octets()))
    }

    /// Appends an AAAA record.
    pub fn aaaa(
        &mut self,
        section: Section,
        owner: Name<'_>,
        ttl: u32,
        addr: Ipv6Addr,
    ) -> Result<(), WriteError> {
        self.record(section, owner, rtype::AAAA, ttl, |w| w.put(&addr.octets()))
    }

    /// Appends an SRV record; the target is written uncompressed (RFC 2782) and registered
    /// for compression of later names (typically the glue A/AAAA owners).
    pub fn srv(
        &mut self,
        section: Section,
        owner: Name<'_>,
        ttl: u32,
        srv: &Srv<'_>,
    ) -> Result<(), WriteError> {
        self.record(section, owner, rtype::SRV, ttl, |w| {
            w.put(&srv.priority.to_be_bytes())?;
            w.put(&srv.weight.to_be_bytes())?;
            w.put(&srv.port.to_be_bytes())?;
            w.write_name(srv.target, false)
        })
    }

    /// Appends an NS record (target compressed).
    pub fn ns(
        &mut self,
        section: Section,
        owner: Name<'_>,
        ttl: u32,
        target: Name<'_>,
    ) -> Result<(), WriteError> {
        self.record(section, owner, rtype::NS, ttl, |w| {
            w.write_name(target, true)
        })
    }

    /// Appends an SOA record (MNAME and RNAME compressed).
    pub fn soa(
        &mut self,
        section: Section,
        owner: Name<'_>,
        ttl: u32,
        soa: &Soa<'_>,
    ) -> Result<(), WriteError> {
        self.record(section, owner, rtype::SOA, ttl, |w| {
            w.write_name(soa.mname, true)?;
            w.write_name(soa.rname, true)?;
            for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                w.put(&v.to_be_bytes())?;
            }
            Ok(())
        })
    }

    /// Appends a record of any type with opaque RDATA (class IN).
    pub fn rr(
        &mut self,
        section: Section,
        owner: Name<'_>,
        rr_type: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), WriteError> {
        self.record(section, owner, rr_type, ttl, |w| w.put(rdata))
    }

    /// Appends one record from precomputed parts ([`crate::dns::fragments::ReplyFragments`]):
    /// `head` is the owner (a pointer to the question name), TYPE, CLASS, TTL, RDLENGTH (any
    /// value; it is set here) and any fixed leading RDATA; then `value`; then `name`, an
    /// uncompressed wire name ending the RDATA (an SRV target, or empty), which is checked and
    /// registered so later names compress to it, as [`srv`](Self::srv) does with its target.
    /// The same bytes as the typed methods, without their per-field work.
    pub fn copy_record(
        &mut self,
        section: Section,
        head: &[u8],
        value: &[u8],
        name: &[u8],
    ) -> Result<(), WriteError> {
        /// Offset of RDLENGTH in a head whose owner is a 2-byte pointer.
        const RDLEN_AT: usize = 10;
        let idx = section.index();
        if idx < self.section {
            return Err(WriteError::OutOfOrder);
        }
        let owner_is_question = head.get(..2) == Some(&[0xC0, HEADER_LEN as u8][..]);
        if self.qname_len == 0 || !owner_is_question || head.len() < RDLEN_AT + 2 {
            return Err(WriteError::BadName);
        }
        if !name.is_empty() {
            wire_name_len(name).ok_or(WriteError::BadName)?;
        }
        let rdata_len = head.len() - (RDLEN_AT + 2) + value.len() + name.len();
        let rdlen = u16::try_from(rdata_len).map_err(|_| WriteError::Full)?;
        let base = self.pos;
        let end = base + head.len() + value.len() + name.len();
        if end > self.cap() {
            return Err(WriteError::Full);
        }
        let dst = self.buf.get_mut(base..end).ok_or(WriteError::Full)?;
        let (h, rest) = dst.split_at_mut(head.len());
        h.copy_from_slice(head);
        h.get_mut(RDLEN_AT..RDLEN_AT + 2)
            .ok_or(WriteError::BadName)?
            .copy_from_slice(&rdlen.to_be_bytes());
        let (v, n) = rest.split_at_mut(value.len());
        v.copy_from_slice(value);
        n.copy_from_slice(name);
        self.count_one(idx)?;
        self.pos = end;
        self.register_labels(end - name.len(), name, name.len());
        Ok(())
    }

    /// Appends the OPT record (additional section, EDNS version 0, no options): our UDP
    /// payload size, the high 8 bits of an extended rcode, and the DO bit. It may use the
    /// space kept by [`reserve_opt`](Self::reserve_opt).
    pub fn opt(
        &mut self,
        udp_size: u16,
        rcode_high_bits: u8,
        do_bit: bool,
    ) -> Result<(), WriteError> {
        let idx = Section::Additional.index();
        if idx < self.section {
            return Err(WriteError::OutOfOrder);
        }
        let m = self.mark();
        self.opt_reserved = false;
        let [s_hi, s_lo] = udp_size.to_be_bytes();
        let do_flag = if do_bit { 0x80 } else { 0 };
        let rr = [0, 0, 41, s_hi, s_lo, rcode_high_bits, 0, do_flag, 0, 0, 0];
        let r = self.put(&rr).and_then(|()| self.count_one(idx));
        if r.is_err() {
            self.rollback(m);
        }
        r
    }

    // ----- internals -----

    fn cap(&self) -> usize {
        if self.opt_reserved {
            self.limit.saturating_sub(OPT_RR_LEN)
        } else {
            self.limit
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(WriteError::Full)?;
        if end > self.cap() {
            return Err(WriteError::Full);
        }
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WriteError::Full)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn count_one(&mut self, idx: usize) -> Result<(), WriteError> {
        let c = self.counts.get_mut(idx).ok_or(WriteError::OutOfOrder)?;
        *c = c.checked_add(1).ok_or(WriteError::Full)?;
        self.section = idx;
        Ok(())
    }

    fn record(
        &mut self,
        section: Section,
        owner: Name<'_>,
        rr_type: u16,
        ttl: u32,
        rdata: impl FnOnce(&mut Self) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let idx = section.index();
        if idx < self.section {
            return Err(WriteError::OutOfOrder);
        }
        let m = self.mark();
        let r = self.record_inner(idx, owner, rr_type, ttl, rdata);
        if r.is_err() {
            self.rollback(m);
        }
        r
    }

    fn record_inner(
        &mut self,
        idx: usize,
        owner: Name<'_>,
        rr_type: u16,
        ttl: u32,
        rdata: impl FnOnce(&mut Self) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        self.write_name(owner, true)?;
        self.put(&rr_type.to_be_bytes())?;
        self.put(&class::IN.to_be_bytes())?;
        self.put(&ttl.to_be_bytes())?;
        self.put(&[0, 0])?;
        let rd_start = self.pos;
        rdata(self)?;
        let rdlen = u16::try_from(self.pos - rd_start).map_err(|_| WriteError::Full)?;
        self.buf
            .get_mut(rd_start - 2..rd_start)
            .ok_or(WriteError::Full)?
            .copy_from_slice(&rdlen.to_be_bytes());
        self.count_one(idx)
    }

    fn write_name(&mut self, name: Name<'_>, compress: bool) -> Result<(), WriteError> {
        let mut tmp = [0u8; MAX_NAME_LEN];
        let wire: &[u8] = match name {
            Name::Question => {
                if self.qname_len == 0 {
                    return Err(WriteError::BadName);
                }
                if compress {
                    return self.put(&[0xC0, HEADER_LEN as u8]);
                }
                let src = self
                    .buf
                    .get(HEADER_LEN..HEADER_LEN + self.qname_len)
                    .ok_or(WriteError::BadName)?;
                let dst = tmp.get_mut(..src.len()).ok_or(WriteError::BadName)?;
                dst.copy_from_slice(src);
                &*dst
            }
            Name::Wire(w) => {
                wire_name_len(w).ok_or(WriteError::BadName)?;
                w
            }
            Name::Text(t) => {
                let n = text_to_wire(t, &mut tmp).ok_or(WriteError::BadName)?;
                tmp.get(..n).ok_or(WriteError::BadName)?
            }
        };
        self.write_wire(wire, compress)
    }

    /// Writes a validated uncompressed name, as a literal prefix plus a pointer to the
    /// longest suffix already in the table when `compress`, and registers the literal labels.
    fn write_wire(&mut self, w: &[u8], compress: bool) -> Result<(), WriteError> {
        let mut lit_end = w.len();
        let mut ptr = None;
        if compress {
            let mut s = 0usize;
            while let Some(&l) = w.get(s) {
                if l == 0 {
                    break;
                }
                let suffix = w.get(s..).unwrap_or(&[]);
                if let Some(off) = self.find(suffix) {
                    ptr = Some(off);
                    lit_end = s;
                    break;
                }
                s += 1 + usize::from(l);
            }
        }
        let base = self.pos;
        self.put(w.get(..lit_end).ok_or(WriteError::BadName)?)?;
        if let Some(off) = ptr {
            self.put(&(0xC000 | off).to_be_bytes())?;
        }
        self.register_labels(base, w, lit_end);
        Ok(())
    }

    /// Registers every suffix of the uncompressed name `w` (written at `base`) that starts
    /// before `lit_end`, that is, whose first label was written literally.
    fn register_labels(&mut self, base: usize, w: &[u8], lit_end: usize) {
        let mut s = 0usize;
        while s < lit_end {
            let Some(&l) = w.get(s) else { return };
            if l == 0 {
                return;
            }
            self.register(base + s, w.get(s..).unwrap_or(&[]));
            s += 1 + usize::from(l);
        }
    }

    /// Remembers that the name `suffix` (uncompressed) starts at buffer offset `off`.
    fn register(&mut self, off: usize, suffix: &[u8]) {
        let (Ok(off16), Ok(len)) = (u16::try_from(off), u8::try_from(suffix.len())) else {
            return;
        };
        if off > MAX_POINTER_OFFSET || suffix.len() <= 1 {
            return;
        }
        if let Some(slot) = self.comp.get_mut(self.comp_len) {
            *slot = CompEntry { off: off16, len };
            self.comp_len += 1;
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.comp
            .get(..self.comp_len)?
            .iter()
            .find(|e| usize::from(e.len) == suffix.len() && self.name_at_equals(e.off, suffix))
            .map(|e| e.off)
    }

    /// Whether the (possibly compressed) name at `off` in the buffer is byte-equal to `want`.
    fn name_at_equals(&self, off: u16, want: &[u8]) -> bool {
        let mut p = usize::from(off);
        let mut i = 0usize;
        let mut hops = 0usize;
        loop {
            let Some(&b) = self.buf.get(p) else {
                return false;
            };
            if b & 0xC0 == 0xC0 {
                let Some(&lo) = self.buf.get(p + 1) else {
                    return false;
                };
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return false;
                }
                p = (usize::from(b & 0x3F) << 8) | usize::from(lo);
                continue;
            }
            let step = 1 + usize::from(b);
            match (self.buf.get(p..p + step), want.get(i..i + step)) {
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
            i += step;
            p += step;
            if b == 0 {
                return i == want.len();
            }
        }
    }
}

/// Writes an error reply (FORMERR, NOTIMP, REFUSED, SERVFAIL...) for `query_pkt` into `out`
/// and returns its length (0 if `out` is shorter than a header). The ID, opcode, RD and CD
/// come from `q`, or from the raw packet when it could not be parsed; the question is echoed
/// when `q` is given (header only otherwise). When `q` is given and had EDNS, or `rcode` is
/// extended (> 15), an OPT advertising [`DEFAULT_EDNS_UDP_SIZE`] is added; use
/// [`write_error_reply_edns`] to advertise another size.
pub fn write_error_reply(query_pkt: &[u8], q: Option<&Query>, rcode: u8, out: &mut [u8]) -> usize {
    write_error_reply_edns(query_pkt, q, rcode, DEFAULT_EDNS_UDP_SIZE, out)
}

/// [`write_error_reply`] with the UDP payload size to advertise in the OPT record.
pub fn write_error_reply_edns(
    query_pkt: &[u8],
    q: Option<&Query>,
    rcode: u8,
    udp_size: u16,
    out: &mut [u8],
) -> usize {
    let id = q.map(|q| q.id).or_else(|| be16(query_pkt, 0)).unwrap_or(0);
    let qflags = q
        .map(|q| q.flags)
        .or_else(|| be16(query_pkt, 2))
        .unwrap_or(0);
    let flags = flag::QR
        | (qflags & (flag::OPCODE_MASK | flag::RD | flag::CD))
        | (u16::from(rcode) & flag::RCODE_MASK);
    let limit = out.len();
    let mut w = ReplyWriter::new(out, limit);
    w.header(id, flags);
    if let Some(q) = q {
        // A question that does not fit is simply left out.
        let _ = w.question(q);
        if q.edns.is_some() || rcode > 15 {
            let do_bit = q.edns.is_some_and(|e| e.do_bit);
            let _ = w.opt(udp_size, rcode >> 4, do_bit);
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{
        Edns as HEdns, Message, MessageType, OpCode, Query as HQuery, ResponseCode,
    };
    use hickory_proto::rr::rdata::{A as HA, AAAA as HAAAA};
    use hickory_proto::rr::{DNSClass, Name as HName, RData, Record, RecordType};

    // ----- helpers -----

    fn hname(s: &str) -> HName {
        HName::from_ascii(s).unwrap()
    }

    /// A query built by hickory: id 0x1234, RD set, optional EDNS (size, DO, version).
    fn hquery(name: &str, rt: RecordType, edns: Option<(u16, bool, u8)>) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(hname(name), rt));
        if let Some((size, do_bit, version)) = edns {
            let mut e = HEdns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(do_bit);
            e.set_version(version);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn wire(text: &str) -> Vec<u8> {
        let mut out = [0u8; MAX_NAME_LEN];
        let n = text_to_wire(text.as_bytes(), &mut out).unwrap();
        out[..n].to_vec()
    }

    /// A hand-made packet: header with the given counts, then `body` verbatim.
    fn raw(flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xAB, 0xCD];
        p.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            p.extend_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(body);
        p
    }

    /// Question "a.mesos." A IN.
    fn question_body() -> Vec<u8> {
        let mut b = wire("a.mesos.");
        b.extend_from_slice(&[0, 1, 0, 1]);
        b
    }

    /// An OPT RR with the given owner bytes, size 4096 and RDATA.
    fn opt_rr(owner: &[u8], rdlen: u16, rdata: &[u8]) -> Vec<u8> {
        let mut b = owner.to_vec();
        b.extend_from_slice(&[0, 41, 0x10, 0x00, 0, 0, 0x80, 0]);
        b.extend_from_slice(&rdlen.to_be_bytes());
        b.extend_from_slice(rdata);
        b
    }

    fn decode(buf: &[u8]) -> Message {
        Message::from_vec(buf).unwrap()
    }

    fn parsed(pkt: &[u8]) -> Query {
        parse_query(pkt).unwrap()
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    // ----- parse_query: good input -----

    #[test]
    fn parse_hickory_query_without_edns() {
        let pkt = hquery("Foo.Marathon.Mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        assert_eq!(q.id, 0x1234);
        assert!(q.rd && !q.cd);
        assert_eq!(q.opcode, opcode::QUERY);
        assert_eq!((q.qdcount, q.ancount, q.nscount, q.arcount), (1, 0, 0, 0));
        assert_eq!(q.qtype, rtype::A);
        assert_eq!(q.qclass, class::IN);
        assert_eq!(q.edns, None);
        assert_eq!(q.qname(), &wire("Foo.Marathon.Mesos.")[..]);
        assert_eq!(q.question_range(), 12..pkt.len());
        assert_eq!(q.question_bytes(&pkt), &pkt[12..]);
        assert_eq!(q.reply_flags(), flag::QR | flag::RD);
    }

    #[test]
    fn parse_hickory_query_with_edns_and_do() {
        let pkt = hquery(
            "_web._tcp.marathon.mesos.",
            RecordType::SRV,
            Some((4096, true, 0)),
        );
        let q = parsed(&pkt);
        assert_eq!(q.qtype, rtype::SRV);
        assert_eq!(q.arcount, 1);
        let e = q.edns.unwrap();
        assert_eq!((e.udp_size, e.version, e.do_bit), (4096, 0, true));
        // The question range stops before the OPT record.
        assert_eq!(q.question_range().end, 12 + q.qname().len() + 4);
    }

    #[test]
    fn parse_hickory_query_with_edns_no_do_and_version_1() {
        let q = parsed(&hquery(
            "a.mesos.",
            RecordType::AAAA,
            Some((1232, false, 0)),
        ));
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 1232,
                version: 0,
                do_bit: false
            })
        );
        let q = parsed(&hquery(
            "a.mesos.",
            RecordType::AAAA,
            Some((1232, false, 1)),
        ));
        assert_eq!(q.edns.unwrap().version, 1);
    }

    #[test]
    fn parse_mixed_case_preserved_and_lowered() {
        let pkt = hquery("WeB-1.MaRaThOn.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        assert_eq!(q.qname(), &wire("WeB-1.MaRaThOn.mesos.")[..]);
        let mut text = [0u8; 256];
        let n = name_to_text_lower(q.qname(), &mut text).unwrap();
        assert_eq!(&text[..n], b"web-1.marathon.mesos.");
    }

    #[test]
    fn parse_root_question_and_cd_bit() {
        let pkt = raw(flag::CD, [1, 0, 0, 0], &[0, 0, 2, 0, 1]);
        let q = parsed(&pkt);
        assert_eq!(q.qname(), &[0]);
        assert!(q.cd && !q.rd);
        assert_eq!(q.qtype, rtype::NS);
        assert_eq!(q.reply_flags(), flag::QR | flag::CD);
    }

    #[test]
    fn parse_skips_answer_and_authority_records() {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(HQuery::query(hname("x.mesos."), RecordType::A));
        m.add_answer(Record::from_rdata(
            hname("x.mesos."),
            60,
            RData::A(HA::new(1, 2, 3, 4)),
        ));
        m.add_authority(Record::from_rdata(
            hname("y.x.mesos."),
            60,
            RData::AAAA(HAAAA::new(1, 2, 3, 4, 5, 6, 7, 8)),
        ));
        let mut e = HEdns::new();
        e.set_max_payload(2048);
        m.set_edns(e);
        let pkt = m.to_vec().unwrap();
        let q = parsed(&pkt);
        assert_eq!((q.ancount, q.nscount, q.arcount), (1, 1, 1));
        assert_eq!(q.edns.unwrap().udp_size, 2048);
    }

    #[test]
    fn parse_opt_with_options_and_trailing_garbage() {
        // A cookie option (code 10, 8 bytes), then garbage after the last record.
        let mut rdata = vec![0, 10, 0, 8];
        rdata.extend_from_slice(&[1; 8]);
        let mut body = question_body();
        body.extend(opt_rr(&[0], 12, &rdata));
        body.extend_from_slice(b"garbage");
        let q = parsed(&raw(0, [1, 0, 0, 1], &body));
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                do_bit: true
            })
        );
    }

    #[test]
    fn parse_additional_non_opt_records_are_skipped() {
        // A TSIG-like record (type 250) with a compressed owner before the OPT.
        let mut body = question_body();
        body.extend_from_slice(&[0xC0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
        body.extend(opt_rr(&[0], 0, &[]));
        let q = parsed(&raw(0, [1, 0, 0, 2], &body));
        assert!(q.edns.is_some());
    }

    // ----- parse_query: every error path -----

    #[test]
    fn err_short_packet_is_dropped() {
        for len in 0..HEADER_LEN {
            let e = parse_query(&vec![0u8; len]).unwrap_err();
            assert_eq!(e, ParseError::TooShort);
            assert_eq!(e.rcode(), None);
        }
    }

    #[test]
    fn err_qr_set_is_dropped() {
        let e = parse_query(&raw(flag::QR, [1, 0, 0, 0], &question_body())).unwrap_err();
        assert_eq!(e, ParseError::Response);
        assert_eq!(e.rcode(), None);
    }

    #[test]
    fn err_opcode_is_notimp() {
        let e = parse_query(&raw(2 << 11, [1, 0, 0, 0], &question_body())).unwrap_err();
        assert_eq!(e, ParseError::Opcode);
        assert_eq!(e.rcode(), Some(rcode::NOTIMP));
    }

    #[test]
    fn err_qdcount_0_and_2_are_formerr() {
        let e = parse_query(&raw(0, [0, 0, 0, 0], &[])).unwrap_err();
        assert_eq!((e, e.rcode()), (ParseError::QdCount, Some(rcode::FORMERR)));
        let mut body = question_body();
        body.extend(question_body());
        let e = parse_query(&raw(0, [2, 0, 0, 0], &body)).unwrap_err();
        assert_eq!((e, e.rcode()), (ParseError::QdCount, Some(rcode::FORMERR)));
    }

    #[test]
    fn err_label_64() {
        let mut body = vec![64];
        body.extend_from_slice(&[b'a'; 64]);
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let e = parse_query(&raw(0, [1, 0, 0, 0], &body)).unwrap_err();
        assert_eq!((e, e.rcode()), (ParseError::BadLabel, Some(rcode::FORMERR)));
        // A 63-byte label is fine.
        let mut body = vec![63];
        body.extend_from_slice(&[b'a'; 63]);
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(parse_query(&raw(0, [1, 0, 0, 0], &body)).is_ok());
    }

    #[test]
    fn err_name_over_255() {
        // 4 labels of 63 = 256 bytes, plus the root: 257.
        let mut body = Vec::new();
        for _ in 0..4 {
            body.push(63);
            body.extend_from_slice(&[b'x'; 63]);
        }
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let e = parse_query(&raw(0, [1, 0, 0, 0], &body)).unwrap_err();
        assert_eq!(
            (e, e.rcode()),
            (ParseError::NameTooLong, Some(rcode::FORMERR))
        );
        // Exactly 255 (3×64 + 62 + root) parses.
        let mut body = Vec::new();
        for _ in 0..3 {
            body.push(63);
            body.extend_from_slice(&[b'x'; 63]);
        }
        body.push(61);
        body.extend_from_slice(&[b'y'; 61]);
        body.extend_from_slice(&[0, 0, 1, 0, 1]);
        let q = parsed(&raw(0, [1, 0, 0, 0], &body));
        assert_eq!(q.qname().len(), 255);
    }

    #[test]
    fn err_pointer_loop_and_forward_pointer_in_question() {
        // Pointer to itself.
        let e = parse_query(&raw(0, [1, 0, 0, 0], &[0xC0, 12, 0, 1, 0, 1])).unwrap_err();
        assert_eq!(
            (e, e.rcode()),
            (ParseError::QnamePointer, Some(rcode::FORMERR))
        );
        // Label then a pointer back to the start of the name (a loop).
        let e = parse_query(&raw(0, [1, 0, 0, 0], &[1, b'a', 0xC0, 12, 0, 1, 0, 1])).unwrap_err();
        assert_eq!(e, ParseError::QnamePointer);
        // Forward pointer.
        let e = parse_query(&raw(0, [1, 0, 0, 0], &[0xC0, 40, 0, 1, 0, 1, 0, 0])).unwrap_err();
        assert_eq!(e, ParseError::QnamePointer);
    }

    #[test]
    fn err_truncated_question_and_records() {
        let q = question_body();
        for cut in 0..q.len() {
            let e = parse_query(&raw(0, [1, 0, 0, 0], &q[..cut])).unwrap_err();
            assert_eq!(
                (e, e.rcode()),
                (ParseError::Truncated, Some(rcode::FORMERR)),
                "cut {cut}"
            );
        }
        // ARCOUNT 1 with nothing after the question.
        assert_eq!(
            parse_query(&raw(0, [1, 0, 0, 1], &q)),
            Err(ParseError::Truncated)
        );
        // ANCOUNT 1 whose RDATA runs past the end.
        let mut body = q.clone();
        body.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2]);
        assert_eq!(
            parse_query(&raw(0, [1, 1, 0, 0], &body)),
            Err(ParseError::Truncated)
        );
    }

    #[test]
    fn err_two_opt() {
        let mut body = question_body();
        body.extend(opt_rr(&[0], 0, &[]));
        body.extend(opt_rr(&[0], 0, &[]));
        let e = parse_query(&raw(0, [1, 0, 0, 2], &body)).unwrap_err();
        assert_eq!(
            (e, e.rcode()),
            (ParseError::DuplicateOpt, Some(rcode::FORMERR))
        );
    }

    #[test]
    fn err_opt_non_root_owner() {
        let mut body = question_body();
        body.extend(opt_rr(&wire("x."), 0, &[]));
        assert_eq!(
            parse_query(&raw(0, [1, 0, 0, 1], &body)),
            Err(ParseError::OptOwner)
        );
        // A pointer owner is not the root either.
        let mut body = question_body();
        body.extend(opt_rr(&[0xC0, 12], 0, &[]));
        assert_eq!(
            parse_query(&raw(0, [1, 0, 0, 1], &body)),
            Err(ParseError::OptOwner)
        );
    }

    #[test]
    fn err_truncated_opt_rdata() {
        let mut body = question_body();
        body.extend(opt_rr(&[0], 10, &[0, 10, 0, 2]));
        let e = parse_query(&raw(0, [1, 0, 0, 1], &body)).unwrap_err();
        assert_eq!((e, e.rcode()), (ParseError::OptRdata, Some(rcode::FORMERR)));
        // Options that do not tile the RDATA.
        let mut body = question_body();
        body.extend(opt_rr(&[0], 6, &[0, 10, 0, 8, 1, 2]));
        assert_eq!(
            parse_query(&raw(0, [1, 0, 0, 1], &body)),
            Err(ParseError::OptRdata)
        );
    }

    #[test]
    fn parse_error_metadata_is_consistent() {
        let mut names = Vec::new();
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.to_string(), e.counter_name());
            names.push(e.counter_name());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ParseError::ALL.len());
    }

    // ----- read_name -----

    #[test]
    fn read_name_follows_backward_pointers() {
        // At 12: "mesos."; at 19: "a" + pointer to 12; at 23: "b" + pointer to 19.
        let mut msg = vec![0u8; 12];
        msg.extend(wire("mesos."));
        msg.extend_from_slice(&[1, b'a', 0xC0, 12]);
        msg.extend_from_slice(&[1, b'B', 0xC0, 19]);
        let mut out = [0u8; MAX_NAME_LEN];
        let (end, len) = read_name(&msg, 23, &mut out).unwrap();
        assert_eq!(end, 27);
        assert_eq!(&out[..len], &wire("B.a.mesos.")[..]);
        let (end, len) = read_name(&msg, 12, &mut out).unwrap();
        assert_eq!((end, &out[..len]), (19, &wire("mesos.")[..]));
    }

    #[test]
    fn read_name_rejects_loops_forward_pointers_and_long_chains() {
        let mut out = [0u8; MAX_NAME_LEN];
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 12]);
        assert_eq!(read_name(&msg, 12, &mut out), Err(ParseError::PointerLoop));
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[1, b'a', 0xC0, 12]);
        assert_eq!(read_name(&msg, 12, &mut out), Err(ParseError::PointerLoop));
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            read_name(&msg, 12, &mut out),
            Err(ParseError::ForwardPointer)
        );
        // Two pointers at each other: 14 -> 12 is backwards, then 12 -> 14 is forward.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 14, 0xC0, 12]);
        assert_eq!(
            read_name(&msg, 14, &mut out),
            Err(ParseError::ForwardPointer)
        );
        // A chain of pointers, each to the previous one, ending at a root at 12.
        let mut msg = vec![0u8; 12];
        msg.push(0);
        let mut last = 12u16;
        for _ in 0..200 {
            let here = u16::try_from(msg.len()).unwrap();
            msg.extend_from_slice(&(0xC000 | last).to_be_bytes());
            last = here;
        }
        // 127 hops are fine, 128 are not.
        let at127 = 13 + 2 * 126;
        assert_eq!(read_name(&msg, at127, &mut out).map(|r| r.1), Ok(1));
        assert_eq!(
            read_name(&msg, at127 + 2, &mut out),
            Err(ParseError::TooManyHops)
        );
    }

    #[test]
    fn read_name_rejects_overlong_expansion() {
        // 5 copies of a 63-byte label reachable only through pointers: > 255 expanded.
        let mut msg = vec![0u8; 12];
        msg.push(0);
        let mut prev = 12u16;
        for _ in 0..5 {
            let here = u16::try_from(msg.len()).unwrap();
            msg.push(63);
            msg.extend_from_slice(&[b'z'; 63]);
            msg.extend_from_slice(&(0xC000 | prev).to_be_bytes());
            prev = here;
        }
        let mut out = [0u8; MAX_NAME_LEN];
        assert_eq!(
            read_name(&msg, usize::from(prev), &mut out),
            Err(ParseError::NameTooLong)
        );
    }

    // ----- name conversion -----

    #[test]
    fn name_to_text_lower_cases() {
        let mut out = [0u8; 256];
        let n = name_to_text_lower(&[0], &mut out).unwrap();
        assert_eq!(&out[..n], b".");
        let n = name_to_text_lower(&wire("Foo.BAR."), &mut out).unwrap();
        assert_eq!(&out[..n], b"foo.bar.");
        assert_eq!(
            name_to_text_lower(&[3, b'a', b'.', b'b', 0], &mut out),
            None
        );
        assert_eq!(
            name_to_text_lower(&[3, b'a', b' ', b'b', 0], &mut out),
            None
        );
        assert_eq!(name_to_text_lower(&[1, 0x7F, 0], &mut out), None);
        assert_eq!(name_to_text_lower(&[1, 0xC3, 0], &mut out), None);
        // Malformed: missing root, trailing bytes, pointer, empty.
        assert_eq!(name_to_text_lower(&[1, b'a'], &mut out), None);
        assert_eq!(name_to_text_lower(&[1, b'a', 0, 0], &mut out), None);
        assert_eq!(name_to_text_lower(&[0xC0, 12], &mut out), None);
        assert_eq!(name_to_text_lower(&[], &mut out), None);
        // A maximal name (255 wire bytes) gives 254 text bytes.
        let mut w = Vec::new();
        for _ in 0..127 {
            w.extend_from_slice(&[1, b'Q']);
        }
        w.push(0);
        assert_eq!(w.len(), 255);
        let n = name_to_text_lower(&w, &mut out).unwrap();
        assert_eq!(n, 254);
        assert!(out[..n].chunks(2).all(|c| c == b"q."));
    }

    #[test]
    fn text_to_wire_cases() {
        let mut out = [0u8; 300];
        assert_eq!(text_to_wire(b".", &mut out), Some(1));
        assert_eq!(out[0], 0);
        assert_eq!(text_to_wire(b"", &mut out), Some(1));
        let n = text_to_wire(b"Web.mesos.", &mut out).unwrap();
        assert_eq!(&out[..n], b"\x03Web\x05mesos\x00");
        let n2 = text_to_wire(b"Web.mesos", &mut out).unwrap();
        assert_eq!(n, n2);
        assert_eq!(text_to_wire(b"a..b", &mut out), None);
        assert_eq!(text_to_wire(b".a", &mut out), None);
        assert_eq!(text_to_wire(b"a..", &mut out), None);
        assert_eq!(text_to_wire(&[b'a'; 64], &mut out), None);
        assert!(text_to_wire(&[b'a'; 63], &mut out).is_some());
        // 127 one-byte labels = 255 wire bytes; 128 is too long.
        let t127 = "q.".repeat(127);
        assert_eq!(text_to_wire(t127.as_bytes(), &mut out), Some(255));
        let t128 = "q.".repeat(128);
        assert_eq!(text_to_wire(t128.as_bytes(), &mut out), None);
        // Output buffer too small.
        let mut small = [0u8; 5];
        assert_eq!(text_to_wire(b"abcd.e", &mut small), None);
        // Round trip.
        let mut text = [0u8; 256];
        let n = text_to_wire(b"A-1.b_2.mesos.", &mut out).unwrap();
        let t = name_to_text_lower(&out[..n], &mut text).unwrap();
        assert_eq!(&text[..t], b"a-1.b_2.mesos.");
    }

    // ----- ReplyWriter, decoded by hickory -----

    #[test]
    fn reply_a_and_aaaa_answers() {
        let pkt = hquery("Web.Marathon.Mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags() | flag::AA | flag::RA);
        w.copy_question(q.question_bytes(&pkt)).unwrap();
        w.a(
            Section::Answer,
            Name::Question,
            60,
            Ipv4Addr::new(10, 0, 0, 1),
        )
        .unwrap();
        let lower = wire("web.marathon.mesos.");
        w.a(
            Section::Answer,
            Name::Wire(&lower),
            60,
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .unwrap();
        w.aaaa(
            Section::Answer,
            Name::Wire(&lower),
            30,
            "fd00::1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(w.count(Section::Answer), 3);
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert!(m.metadata.authoritative && m.metadata.recursion_desired);
        assert!(m.metadata.recursion_available && !m.metadata.truncation);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.queries[0].name.eq_case(&hname("Web.Marathon.Mesos.")));
        assert_eq!(m.answers.len(), 3);
        assert!(m.answers[0].name.eq_case(&hname("Web.Marathon.Mesos.")));
        assert!(m.answers[1].name.eq_case(&hname("web.marathon.mesos.")));
        assert!(m.answers[2].name.eq_case(&hname("web.marathon.mesos.")));
        assert_eq!(m.answers[0].data, RData::A(HA::new(10, 0, 0, 1)));
        assert_eq!(m.answers[1].data, RData::A(HA::new(10, 0, 0, 2)));
        assert_eq!(
            m.answers[2].data,
            RData::AAAA(HAAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))
        );
        assert_eq!((m.answers[0].ttl, m.answers[2].ttl), (60, 30));
        assert_eq!(m.answers[0].dns_class, DNSClass::IN);
        // Sizes: owner pointer 2 + fixed 10 + 4. Compression is byte-exact and the case
        // differs in every label, so the lowercase owner is written in full (20 bytes); the
        // AAAA owner then compresses to it (2 bytes).
        let q_len = q.question_bytes(&pkt).len();
        assert_eq!(n, 12 + q_len + 16 + (20 + 14) + (2 + 10 + 16));
    }

    #[test]
    fn reply_owner_compresses_to_question_suffix() {
        let pkt = hquery("foo.marathon.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags());
        w.question(&q).unwrap();
        let before = w.size();
        w.a(
            Section::Answer,
            Name::Text(b"other.marathon.mesos."),
            5,
            Ipv4Addr::LOCALHOST,
        )
        .unwrap();
        // "\x05other" + pointer.
        assert_eq!(w.size() - before, 6 + 2 + 10 + 4);
        let before = w.size();
        w.a(
            Section::Answer,
            Name::Text(b"mesos"),
            5,
            Ipv4Addr::LOCALHOST,
        )
        .unwrap();
        assert_eq!(w.size() - before, 2 + 10 + 4);
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert!(m.answers[0].name.eq_case(&hname("other.marathon.mesos.")));
        assert!(m.answers[1].name.eq_case(&hname("mesos.")));
    }

    #[test]
    fn reply_srv_with_glue_compresses_to_targets() {
        let pkt = hquery("_web._tcp.marathon.mesos.", RecordType::SRV, None);
        let q = parsed(&pkt);
        let mut buf = [0u8; 1232];
        let mut w = ReplyWriter::new(&mut buf, 1232);
        w.header(q.id, q.reply_flags() | flag::AA);
        w.copy_question(q.question_bytes(&pkt)).unwrap();
        let targets = [
            "web-a.marathon.mesos.",
            "web-b.marathon.mesos.",
            "web-c.marathon.mesos.",
        ];
        for (i, t) in targets.iter().enumerate() {
            let srv = Srv {
                priority: 0,
                weight: 1,
                port: 31000 + u16::try_from(i).unwrap(),
                target: Name::Text(t.as_bytes()),
            };
            w.srv(Section::Answer, Name::Question, 60, &srv).unwrap();
        }
        for (i, t) in targets.iter().enumerate() {
            let before = w.size();
            let ip = Ipv4Addr::new(10, 0, 0, u8::try_from(i).unwrap());
            w.a(Section::Additional, Name::Text(t.as_bytes()), 60, ip)
                .unwrap();
            // The glue owner is a single pointer to the SRV target.
            assert_eq!(w.size() - before, 2 + 10 + 4);
        }
        let n = w.finish();
        // SRV targets are written in full (RFC 2782): the literal bytes are in the reply.
        let lit = wire("web-b.marathon.mesos.");
        assert!(buf[..n].windows(lit.len()).any(|x| x == &lit[..]));
        let m = decode(&buf[..n]);
        assert_eq!((m.answers.len(), m.additionals.len()), (3, 3));
        for (i, t) in targets.iter().enumerate() {
            let RData::SRV(srv) = &m.answers[i].data else {
                panic!("not SRV")
            };
            assert!(srv.target.eq_case(&hname(t)));
            assert_eq!((srv.priority, srv.weight), (0, 1));
            assert_eq!(srv.port, 31000 + u16::try_from(i).unwrap());
            assert!(
                m.answers[i]
                    .name
                    .eq_case(&hname("_web._tcp.marathon.mesos."))
            );
            assert!(m.additionals[i].name.eq_case(&hname(t)));
        }
    }

    #[test]
    fn reply_soa_and_ns_in_authority_with_nxdomain() {
        let pkt = hquery("Missing.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags() | flag::AA);
        w.set_rcode(rcode::NXDOMAIN);
        w.question(&q).unwrap();
        w.ns(
            Section::Authority,
            Name::Question,
            60,
            Name::Text(b"ns1.mesos."),
        )
        .unwrap();
        let soa = Soa {
            mname: Name::Text(b"ns1.mesos."),
            rname: Name::Text(b"root.ns1.mesos."),
            serial: 1_700_000_000,
            refresh: 60,
            retry: 600,
            expire: 86400,
            minimum: 60,
        };
        w.soa(Section::Authority, Name::Question, 60, &soa).unwrap();
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 2);
        let RData::NS(ns) = &m.authorities[0].data else {
            panic!("not NS")
        };
        assert!(ns.0.eq_case(&hname("ns1.mesos.")));
        let RData::SOA(s) = &m.authorities[1].data else {
            panic!("not SOA")
        };
        assert!(m.authorities[1].name.eq_case(&hname("Missing.mesos.")));
        assert!(s.mname.eq_case(&hname("ns1.mesos.")));
        assert!(s.rname.eq_case(&hname("root.ns1.mesos.")));
        assert_eq!(s.serial, 1_700_000_000);
        assert_eq!(
            (s.refresh, s.retry, s.expire, s.minimum),
            (60, 600, 86400, 60)
        );
        // The SOA mname compressed to the NS target: 2 bytes; rname "\x04root" + pointer.
        let soa_rdlen = 2 + 5 + 2 + 20;
        let ns_len = 2 + 10 + 4 + 2; // "\x03ns1" + pointer to "mesos." of the question.
        assert_eq!(
            n,
            12 + q.question_bytes(&pkt).len() + ns_len + 12 + soa_rdlen
        );
    }

    #[test]
    fn reply_opt_and_badvers() {
        let pkt = hquery("a.mesos.", RecordType::A, Some((4096, true, 1)));
        let q = parsed(&pkt);
        let e = q.edns.unwrap();
        assert_ne!(e.version, 0);
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags());
        w.set_rcode(rcode::BADVERS);
        w.question(&q).unwrap();
        w.opt(1232, rcode::BADVERS >> 4, e.do_bit).unwrap();
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert_eq!(
            u16::from(m.metadata.response_code),
            u16::from(rcode::BADVERS)
        );
        let edns = m.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(edns.version(), 0);
        assert!(edns.flags().dnssec_ok);
    }

    #[test]
    fn reply_limit_leaves_buffer_unchanged_and_tc() {
        let pkt = hquery("a.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        let qlen = q.question_bytes(&pkt).len();
        // Room for exactly 3 A records of 16 bytes, plus 5 spare bytes.
        let limit = 12 + qlen + 3 * 16 + 5;
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, limit);
        w.header(q.id, q.reply_flags() | flag::AA);
        w.copy_question(q.question_bytes(&pkt)).unwrap();
        let mut written = 0;
        for i in 0..10u8 {
            let before = w.size();
            match w.a(
                Section::Answer,
                Name::Question,
                60,
                Ipv4Addr::new(10, 0, 0, i),
            ) {
                Ok(()) => written += 1,
                Err(e) => {
                    assert_eq!(e, WriteError::Full);
                    assert_eq!(w.size(), before);
                    w.set_tc();
                    break;
                }
            }
        }
        assert_eq!(written, 3);
        // A longer owner does not fit either; the shorter SOA does not fit too.
        assert_eq!(
            w.a(
                Section::Additional,
                Name::Text(b"x.y.z."),
                1,
                Ipv4Addr::LOCALHOST
            ),
            Err(WriteError::Full)
        );
        assert_eq!(w.count(Section::Additional), 0);
        let n = w.finish();
        assert_eq!(n, limit - 5);
        let m = decode(&buf[..n]);
        assert!(m.metadata.truncation);
        assert_eq!(m.answers.len(), 3);
        assert!(m.additionals.is_empty());
    }

    #[test]
    fn reply_mark_rollback_and_rewrite() {
        let pkt = hquery("svc.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags());
        w.question(&q).unwrap();
        w.a(
            Section::Answer,
            Name::Question,
            60,
            Ipv4Addr::new(1, 1, 1, 1),
        )
        .unwrap();
        let m1 = w.mark();
        w.a(
            Section::Answer,
            Name::Text(b"zz.mesos."),
            60,
            Ipv4Addr::new(2, 2, 2, 2),
        )
        .unwrap();
        w.a(
            Section::Additional,
            Name::Text(b"zz.mesos."),
            60,
            Ipv4Addr::new(3, 3, 3, 3),
        )
        .unwrap();
        w.rollback(m1);
        assert_eq!(w.mark(), m1);
        // Authority may be written again after rolling back the additional section; the
        // "zz" compression entry is gone, so this name is written in full again.
        let before = w.size();
        w.a(
            Section::Authority,
            Name::Text(b"zz.mesos."),
            60,
            Ipv4Addr::new(4, 4, 4, 4),
        )
        .unwrap();
        assert_eq!(w.size() - before, 3 + 2 + 10 + 4);
        // A stale mark (beyond the current position) is ignored.
        let stale = w.mark();
        w.rollback(m1);
        w.rollback(stale);
        assert_eq!(w.mark(), m1);
        w.ns(
            Section::Authority,
            Name::Question,
            60,
            Name::Text(b"ns.mesos."),
        )
        .unwrap();
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert_eq!(
            (m.answers.len(), m.authorities.len(), m.additionals.len()),
            (1, 1, 0)
        );
        assert_eq!(m.answers[0].data, RData::A(HA::new(1, 1, 1, 1)));
        let RData::NS(ns) = &m.authorities[0].data else {
            panic!("not NS")
        };
        assert!(ns.0.eq_case(&hname("ns.mesos.")));
    }

    #[test]
    fn reply_order_and_name_errors_leave_buffer_unchanged() {
        let mut buf = [0u8; 512];
        let mut w = ReplyWriter::new(&mut buf, 512);
        // No question yet: Name::Question is a bad name.
        assert_eq!(
            w.a(Section::Answer, Name::Question, 1, Ipv4Addr::LOCALHOST),
            Err(WriteError::BadName)
        );
        assert_eq!(w.size(), HEADER_LEN);
        assert_eq!(
            w.copy_question(&[1, b'a', 0, 0, 1]),
            Err(WriteError::BadName)
        );
        assert_eq!(
            w.copy_question(&[1, b'a', 0, 0, 1, 0, 1, 9]),
            Err(WriteError::BadName)
        );
        assert_eq!(
            w.copy_question(&[0xC0, 12, 0, 1, 0, 1]),
            Err(WriteError::BadName)
        );
        w.copy_question(&[1, b'a', 0, 0, 1, 0, 1]).unwrap();
        assert_eq!(
            w.copy_question(&[1, b'a', 0, 0, 1, 0, 1]),
            Err(WriteError::OutOfOrder)
        );
        w.a(Section::Additional, Name::Question, 1, Ipv4Addr::LOCALHOST)
            .unwrap();
        let size = w.size();
        assert_eq!(
            w.a(Section::Answer, Name::Question, 1, Ipv4Addr::LOCALHOST),
            Err(WriteError::OutOfOrder)
        );
        assert_eq!(
            w.a(
                Section::Additional,
                Name::Wire(&[2, b'a']),
                1,
                Ipv4Addr::LOCALHOST
            ),
            Err(WriteError::BadName)
        );
        assert_eq!(
            w.a(
                Section::Additional,
                Name::Text(b"a..b"),
                1,
                Ipv4Addr::LOCALHOST
            ),
            Err(WriteError::BadName)
        );
        let srv = Srv {
            priority: 0,
            weight: 0,
            port: 1,
            target: Name::Wire(&[70]),
        };
        assert_eq!(
            w.srv(Section::Additional, Name::Question, 1, &srv),
            Err(WriteError::BadName)
        );
        assert_eq!(w.size(), size);
        assert_eq!(w.count(Section::Additional), 1);
        let n = w.finish();
        let m = decode(&buf[..n]);
        assert_eq!(m.additionals.len(), 1);
        assert_eq!(m.queries.len(), 1);
    }

    #[test]
    fn reply_reserve_opt_keeps_room_for_opt() {
        let pkt = hquery("a.mesos.", RecordType::A, Some((512, false, 0)));
        let q = parsed(&pkt);
        let mut buf = [0u8; 4096];
        let mut w = ReplyWriter::new(&mut buf, 512);
        w.header(q.id, q.reply_flags());
        w.reserve_opt();
        w.question(&q).unwrap();
        let mut i = 0u32;
        while w
            .a(Section::Answer, Name::Question, 60, Ipv4Addr::from(i))
            .is_ok()
        {
            i += 1;
        }
        w.set_tc();
        assert!(w.size() <= 512 - OPT_RR_LEN);
        w.opt(1232, 0, false).unwrap();
        // Once the OPT is written the reservation is gone, and nothing else fits either way.
        let n = w.finish();
        assert!(n <= 512);
        let m = decode(&buf[..n]);
        assert_eq!(m.answers.len(), usize::try_from(i).unwrap());
        assert!(m.metadata.truncation);
        assert_eq!(m.edns.unwrap().max_payload(), 1232);
    }

    #[test]
    fn reply_question_matches_copy_question_and_srv_to_question() {
        let pkt = hquery("MiXeD.mesos.", RecordType::SRV, Some((1232, false, 0)));
        let q = parsed(&pkt);
        let mut b1 = [0u8; 512];
        let mut b2 = [0u8; 512];
        let mut w1 = ReplyWriter::new(&mut b1, 512);
        w1.question(&q).unwrap();
        let mut w2 = ReplyWriter::new(&mut b2, 512);
        w2.copy_question(q.question_bytes(&pkt)).unwrap();
        // SRV whose target is the question name itself: written in full, not a pointer.
        let srv = Srv {
            priority: 1,
            weight: 2,
            port: 3,
            target: Name::Question,
        };
        w2.srv(Section::Answer, Name::Question, 60, &srv).unwrap();
        let n1 = w1.finish();
        let n2 = w2.finish();
        assert_eq!(b1[12..n1], b2[12..n1]);
        assert_eq!(n2, n1 + 2 + 10 + 6 + q.qname().len());
        let m = decode(&b2[..n2]);
        let RData::SRV(s) = &m.answers[0].data else {
            panic!("not SRV")
        };
        assert!(s.target.eq_case(&hname("MiXeD.mesos.")));
    }

    #[test]
    fn reply_many_targets_beyond_table_and_pointer_range() {
        // More distinct names than compression slots, and offsets past 0x3FFF, which can
        // never be pointer targets: hickory must still decode every name.
        let pkt = hquery("_x._tcp.marathon.mesos.", RecordType::SRV, None);
        let q = parsed(&pkt);
        let mut buf = vec![0u8; MAX_MESSAGE_LEN];
        let mut w = ReplyWriter::new(&mut buf, MAX_MESSAGE_LEN);
        w.header(q.id, q.reply_flags());
        w.question(&q).unwrap();
        let names: Vec<String> = (0..500)
            .map(|i| format!("task-{i:04}-with-a-long-label.marathon.mesos."))
            .collect();
        for t in &names {
            let srv = Srv {
                priority: 0,
                weight: 0,
                port: 80,
                target: Name::Text(t.as_bytes()),
            };
            w.srv(Section::Answer, Name::Question, 60, &srv).unwrap();
        }
        for (i, t) in names.iter().enumerate() {
            let ip = Ipv4Addr::from(u32::try_from(i).unwrap());
            w.a(Section::Additional, Name::Text(t.as_bytes()), 60, ip)
                .unwrap();
        }
        let n = w.finish();
        assert!(n > MAX_POINTER_OFFSET);
        let m = decode(&buf[..n]);
        assert_eq!((m.answers.len(), m.additionals.len()), (500, 500));
        for (i, t) in names.iter().enumerate() {
            let RData::SRV(s) = &m.answers[i].data else {
                panic!("not SRV")
            };
            assert!(s.target.eq_case(&hname(t)));
            assert!(m.additionals[i].name.eq_case(&hname(t)));
        }
    }

    #[test]
    fn reply_tiny_buffers_never_panic() {
        let pkt = hquery("a.mesos.", RecordType::A, None);
        let q = parsed(&pkt);
        for size in 0..40 {
            let mut buf = vec![0u8; size];
            let mut w = ReplyWriter::new(&mut buf, 512);
            w.header(1, flag::QR);
            let _ = w.question(&q);
            let _ = w.a(Section::Answer, Name::Question, 1, Ipv4Addr::LOCALHOST);
            let _ = w.opt(512, 0, false);
            let n = w.finish();
            assert!(n <= size);
            if size < HEADER_LEN {
                assert_eq!(n, 0);
            } else {
                decode(&buf[..n]);
            }
        }
    }

    // ----- write_error_reply -----

    #[test]
    fn error_reply_header_only_for_unparsable() {
        let pkt = raw(flag::RD, [0, 0, 0, 0], &[]);
        let e = parse_query(&pkt).unwrap_err();
        let mut out = [0u8; 512];
        let n = write_error_reply(&pkt, None, e.rcode().unwrap(), &mut out);
        assert_eq!(n, HEADER_LEN);
        let m = decode(&out[..n]);
        assert_eq!(m.metadata.id, 0xABCD);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.metadata.recursion_desired && !m.metadata.authoritative);
        assert!(m.queries.is_empty());
        // NOTIMP keeps the opcode.
        let pkt = raw(2 << 11, [1, 0, 0, 0], &question_body());
        let e = parse_query(&pkt).unwrap_err();
        let n = write_error_reply(&pkt, None, e.rcode().unwrap(), &mut out);
        assert_eq!(
            u16::from_be_bytes([out[2], out[3]]),
            flag::QR | (2 << 11) | 4
        );
        assert_eq!(n, HEADER_LEN);
        // Shorter than a header: the ID bytes that exist are used, nothing panics.
        assert_eq!(
            write_error_reply(&[0x12], None, rcode::FORMERR, &mut out),
            HEADER_LEN
        );
        assert_eq!(
            write_error_reply(&pkt, None, rcode::FORMERR, &mut out[..11]),
            0
        );
    }

    #[test]
    fn error_reply_echoes_question_and_edns() {
        let pkt = hquery("Up.Stream.example.", RecordType::A, None);
        let q = parsed(&pkt);
        let mut out = [0u8; 512];
        let n = write_error_reply(&pkt, Some(&q), rcode::REFUSED, &mut out);
        let m = decode(&out[..n]);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(m.metadata.recursion_desired);
        assert!(!m.metadata.authoritative && !m.metadata.recursion_available);
        assert!(m.queries[0].name.eq_case(&hname("Up.Stream.example.")));
        assert!(m.edns.is_none());
        assert_eq!(&out[12..n], q.question_bytes(&pkt));

        let pkt = hquery("a.mesos.", RecordType::A, Some((4096, true, 0)));
        let q = parsed(&pkt);
        let n = write_error_reply_edns(&pkt, Some(&q), rcode::SERVFAIL, 1400, &mut out);
        let m = decode(&out[..n]);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        let e = m.edns.unwrap();
        assert_eq!(e.max_payload(), 1400);
        assert!(e.flags().dnssec_ok);

        let pkt = hquery("a.mesos.", RecordType::A, Some((4096, false, 3)));
        let q = parsed(&pkt);
        let n = write_error_reply(&pkt, Some(&q), rcode::BADVERS, &mut out);
        let m = decode(&out[..n]);
        assert_eq!(
            u16::from(m.metadata.response_code),
            u16::from(rcode::BADVERS)
        );
        assert_eq!(m.edns.unwrap().max_payload(), DEFAULT_EDNS_UDP_SIZE);

        // A 12-byte buffer holds the header only.
        let n = write_error_reply(&pkt, Some(&q), rcode::SERVFAIL, &mut out[..12]);
        assert_eq!(n, 12);
        assert!(decode(&out[..n]).queries.is_empty());
    }

    // ----- robustness -----

    /// Everything a caller may do with a packet, on arbitrary bytes.
    fn exercise(pkt: &[u8], out: &mut [u8]) -> Result<(), ParseError> {
        let mut name = [0u8; MAX_NAME_LEN];
        let mut text = [0u8; 256];
        for pos in [0, 12, pkt.len() / 2] {
            let _ = read_name(pkt, pos, &mut name);
        }
        let _ = name_to_text_lower(pkt.get(12..).unwrap_or(&[]), &mut text);
        let _ = text_to_wire(pkt, &mut name);
        match parse_query(pkt) {
            Ok(q) => {
                let _ = name_to_text_lower(q.qname(), &mut text);
                let limit = usize::from(pkt.first().copied().unwrap_or(0)) * 4;
                let mut w = ReplyWriter::new(out, limit);
                w.header(q.id, q.reply_flags());
                let _ = w.copy_question(q.question_bytes(pkt));
                let _ = w.a(Section::Answer, Name::Question, 1, Ipv4Addr::LOCALHOST);
                let _ = w.a(
                    Section::Answer,
                    Name::Wire(q.qname()),
                    1,
                    Ipv4Addr::LOCALHOST,
                );
                let srv = Srv {
                    priority: 0,
                    weight: 0,
                    port: 0,
                    target: Name::Wire(pkt.get(12..).unwrap_or(&[])),
                };
                let _ = w.srv(Section::Answer, Name::Text(pkt), 1, &srv);
                let _ = w.opt(512, 0, true);
                let n = w.finish();
                if n > 0 {
                    Message::from_vec(&out[..n]).unwrap();
                }
                let _ = write_error_reply(pkt, Some(&q), rcode::SERVFAIL, out);
                Ok(())
            }
            Err(e) => {
                if let Some(rc) = e.rcode() {
                    let n = write_error_reply(pkt, None, rc, out);
                    assert_eq!(n, HEADER_LEN);
                }
                Err(e)
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut out = vec![0u8; 1024];
        let seeds = [
            hquery("a.b.mesos.", RecordType::A, None),
            hquery(
                "_x._tcp.marathon.mesos.",
                RecordType::SRV,
                Some((4096, true, 0)),
            ),
            {
                let mut body = question_body();
                body.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
                body.extend(opt_rr(&[0], 4, &[0, 10, 0, 0]));
                raw(0, [1, 1, 0, 1], &body)
            },
        ];
        let mut pkt = Vec::with_capacity(1024);
        let mut ok = 0u32;
        let mut kinds = [0u32; ParseError::ALL.len()];
        for i in 0..100_000u32 {
            pkt.clear();
            let r = rng.next();
            if i.is_multiple_of(2) {
                // Pure garbage, with a sane-ish header half of the time.
                let len = usize::try_from(r % 300).unwrap();
                for _ in 0..len {
                    pkt.push(rng.next() as u8);
                }
                if i.is_multiple_of(4) && pkt.len() >= 12 {
                    pkt[2] &= 0x07; // QR clear, opcode QUERY
                    pkt[4] = 0;
                    pkt[5] = 1;
                    pkt[6] = 0;
                    pkt[8] = 0;
                    pkt[10] = 0;
                }
            } else {
                // A valid query with a few bytes mutated, or cut short.
                let seed = &seeds[usize::try_from(r % 3).unwrap()];
                pkt.extend_from_slice(seed);
                for _ in 0..(1 + (r >> 8) % 4) {
                    let at = usize::try_from(rng.next()).unwrap() % pkt.len();
                    pkt[at] = rng.next() as u8;
                }
                if (r >> 16).is_multiple_of(4) {
                    let cut = usize::try_from(rng.next()).unwrap() % pkt.len();
                    pkt.truncate(cut);
                }
            }
            match exercise(&pkt, &mut out) {
                Ok(()) => ok += 1,
                Err(e) => kinds[e.index()] += 1,
            }
        }
        // The mix reaches both the success path and most error kinds.
        assert!(ok > 5_000, "only {ok} parsed");
        let seen = kinds.iter().filter(|&&k| k > 0).count();
        assert!(seen >= 8, "error kinds seen: {kinds:?}");
    }
}
