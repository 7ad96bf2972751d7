//! TSIG (RFC 8945) with HMAC-SHA256 only: the configured keys ([`TsigKey`]), checking a
//! signed request ([`verify`]), signing replies and requests ([`Signer`]), and the unsigned
//! error TSIG of a rejected request ([`append_error`]). Used by the zone transfer path
//! ([`crate::dns::xfr`]) and the NOTIFY sender ([`crate::dns::notify`]).
//!
//! It owns the digest layouts of RFC 8945 §4.3 (request, first reply, later replies of a
//! multi-message transfer) and the error codes. It must never compare MACs in variable time
//! (ring's `hmac::verify` does the comparison), never print a secret (the `Debug` of a key
//! shows its name only), and never panic on any input: every access to a message is
//! bounds-checked. It decides nothing about access policy; the caller does.

use std::fmt;

use ring::hmac;

use crate::dns::wire::{self, MAX_NAME_LEN, class};

/// RR type TSIG.
pub const TSIG: u16 = 250;
/// The only algorithm we accept, as a lowercase name.
pub const ALGORITHM: &str = "hmac-sha256";
/// `hmac-sha256.` in wire form.
const ALGORITHM_WIRE: &[u8] = b"\x0bhmac-sha256\x00";
/// Length of an HMAC-SHA256 MAC. Truncated MACs are refused (BADTRUNC): nothing we talk to
/// needs them.
pub const MAC_LEN: usize = 32;
/// Fudge we sign with: the permitted clock difference, seconds (RFC 8945 §10 suggests 300).
pub const FUDGE: u16 = 300;
/// The RCODE of a TSIG rejection.
pub const NOTAUTH: u8 = 9;

/// TSIG error codes (the TSIG RR's Error field, RFC 8945 §3).
pub mod error {
    /// The MAC does not verify.
    pub const BADSIG: u16 = 16;
    /// Unknown key or algorithm.
    pub const BADKEY: u16 = 17;
    /// Time Signed outside the fudge.
    pub const BADTIME: u16 = 18;
    /// A truncated MAC.
    pub const BADTRUNC: u16 = 22;
}

/// One configured key: a lowercase, dot-terminated name and its secret (HMAC-SHA256).
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    name: String,
    wire: Vec<u8>,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &ALGORITHM)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// A key from its name (any case, trailing dot optional) and raw secret. Errors name
    /// what is wrong, never the secret.
    pub fn new(name: &str, secret: Vec<u8>) -> Result<TsigKey, String> {
        let lower = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        if lower == "." || lower.contains("..") || !lower.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("key name {name:?} is not a domain name"));
        }
        let mut wire = vec![0u8; MAX_NAME_LEN];
        let n = wire::text_to_wire(lower.as_bytes(), &mut wire)
            .ok_or_else(|| format!("key name {name:?} is not a domain name"))?;
        wire.truncate(n);
        if secret.is_empty() {
            return Err(format!("key {name:?}: the secret is empty"));
        }
        Ok(TsigKey {
            name: lower,
            wire,
            secret,
        })
    }

    /// A key as configured: `algorithm` must be `hmac-sha256` (any case), `secret_base64` is
    /// standard base64.
    pub fn parse(name: &str, algorithm: &str, secret_base64: &str) -> Result<TsigKey, String> {
        use base64::Engine as _;
        if !algorithm
            .trim_end_matches('.')
            .eq_ignore_ascii_case(ALGORITHM)
        {
            return Err(format!(
                "key {name:?}: algorithm {algorithm:?} is not supported (only {ALGORITHM})"
            ));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_base64.trim())
            .map_err(|_| format!("key {name:?}: the secret is not base64"))?;
        TsigKey::new(name, secret)
    }

    /// The key name, lowercase with the trailing dot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret in standard base64 (for the inverse of config validation only).
    pub fn secret_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.secret)
    }

    fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.secret)
    }
}

// ---------------------------------------------------------------------------------------------
// Record walking
// ---------------------------------------------------------------------------------------------

/// The fixed fields of one resource record in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RrHeader {
    /// Where the owner name starts.
    pub(crate) start: usize,
    /// TYPE.
    pub(crate) rr_type: u16,
    /// CLASS.
    pub(crate) class: u16,
    /// TTL.
    pub(crate) ttl: u32,
    /// RDATA range.
    pub(crate) rdata: std::ops::Range<usize>,
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(p.get(at..at + 2)?.try_into().ok()?))
}

fn be32(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the record at `pos`; `None` if it runs past the end or its name is malformed.
pub(crate) fn read_rr(msg: &[u8], pos: usize) -> Option<RrHeader> {
    let mut name = [0u8; MAX_NAME_LEN];
    let (p, _) = wire::read_name(msg, pos, &mut name).ok()?;
    let rr_type = be16(msg, p)?;
    let class = be16(msg, p + 2)?;
    let ttl = be32(msg, p + 4)?;
    let len = usize::from(be16(msg, p + 8)?);
    let start = p + 10;
    (start + len <= msg.len()).then_some(RrHeader {
        start: pos,
        rr_type,
        class,
        ttl,
        rdata: start..start + len,
    })
}

/// Position after the question section (QDCOUNT questions from offset 12).
pub(crate) fn after_questions(msg: &[u8]) -> Option<usize> {
    let qd = be16(msg, 4)?;
    let mut pos = wire::HEADER_LEN;
    let mut name = [0u8; MAX_NAME_LEN];
    for _ in 0..qd {
        let (p, _) = wire::read_name(msg, pos, &mut name).ok()?;
        pos = p + 4;
    }
    (pos <= msg.len()).then_some(pos)
}

/// Every record of every section after the question, in order (answer, authority,
/// additional); `None` if one is malformed.
pub(crate) fn records(msg: &[u8]) -> Option<Vec<RrHeader>> {
    let total = u32::from(be16(msg, 6)?) + u32::from(be16(msg, 8)?) + u32::from(be16(msg, 10)?);
    let mut pos = after_questions(msg)?;
    let mut out = Vec::new();
    for _ in 0..total {
        let rr = read_rr(msg, pos)?;
        pos = rr.rdata.end;
        out.push(rr);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Verifying a request
// ---------------------------------------------------------------------------------------------

/// The TSIG RDATA fields (RFC 8945 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TsigRdata {
    /// Key name, lowercase uncompressed wire form.
    key_wire: Vec<u8>,
    /// Algorithm name, lowercase uncompressed wire form.
    alg_wire: Vec<u8>,
    time_signed: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
}

/// A rejected TSIG: answer with RCODE NOTAUTH and [`append_error`] (or, for BADTIME, a
/// signed reply through [`Rejection::signer`]).
#[derive(Debug, Clone)]
pub struct Rejection<'k> {
    /// The TSIG error code ([`error`]).
    pub error: u16,
    key_wire: Vec<u8>,
    alg_wire: Vec<u8>,
    time_signed: u64,
    fudge: u16,
    /// For BADTIME (the MAC verified): sign the error reply with this, at
    /// [`Rejection::time_signed`] with our time as other data ([`time_other`]).
    pub signer: Option<Signer<'k>>,
}

impl Rejection<'_> {
    /// The request's Time Signed (a BADTIME reply echoes it).
    pub fn time_signed(&self) -> u64 {
        self.time_signed
    }
}

/// What [`verify`] found.
#[derive(Debug)]
pub enum Check<'k> {
    /// The message carries no TSIG record.
    Unsigned,
    /// The MAC verified with this key: sign the replies with the [`Signer`].
    Valid(Signer<'k>),
    /// A TSIG that does not verify (unknown key, bad MAC, bad time, truncated MAC).
    Rejected(Rejection<'k>),
    /// A malformed message or TSIG (not the last record, bad class, bad RDATA): FORMERR.
    Malformed,
}

/// Lowercases an uncompressed wire name in place (length octets are below 64 and never
/// ASCII uppercase letters, so a plain lowercase is right).
fn lower(mut w: Vec<u8>) -> Vec<u8> {
    w.make_ascii_lowercase();
    w
}

fn read_wire_name(msg: &[u8], pos: usize) -> Option<(usize, Vec<u8>)> {
    let mut name = [0u8; MAX_NAME_LEN];
    let (p, n) = wire::read_name(msg, pos, &mut name).ok()?;
    Some((p, lower(name.get(..n)?.to_vec())))
}

fn parse_rdata(msg: &[u8], rr: &RrHeader, key_wire: Vec<u8>) -> Option<TsigRdata> {
    let (p, alg_wire) = read_wire_name(msg, rr.rdata.start)?;
    let end = rr.rdata.end;
    let time_hi = u64::from(be16(msg, p)?);
    let time_lo = u64::from(be32(msg, p + 2)?);
    let fudge = be16(msg, p + 6)?;
    let mac_len = usize::from(be16(msg, p + 8)?);
    let mac = msg.get(p + 10..p + 10 + mac_len)?.to_vec();
    let q = p + 10 + mac_len;
    let original_id = be16(msg, q)?;
    let err = be16(msg, q + 2)?;
    let other_len = usize::from(be16(msg, q + 4)?);
    let other = msg.get(q + 6..q + 6 + other_len)?.to_vec();
    (q + 6 + other_len == end).then_some(TsigRdata {
        key_wire,
        alg_wire,
        time_signed: (time_hi << 32) | time_lo,
        fudge,
        mac,
        original_id,
        error: err,
        other,
    })
}

/// The TSIG variables of RFC 8945 §4.3.3 (key name, class, TTL, algorithm, time, fudge,
/// error, other).
fn variables(out: &mut Vec<u8>, key_wire: &[u8], time: u64, fudge: u16, err: u16, other: &[u8]) {
    out.extend_from_slice(key_wire);
    out.extend_from_slice(&class::ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(ALGORITHM_WIRE);
    timers(out, time, fudge);
    out.extend_from_slice(&err.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

fn timers(out: &mut Vec<u8>, time: u64, fudge: u16) {
    out.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
    out.extend_from_slice(&(time as u32).to_be_bytes());
    out.extend_from_slice(&fudge.to_be_bytes());
}

/// Checks the TSIG of a request (`msg`, a whole message) against `keys` at unix time `now`.
pub fn verify<'k>(msg: &[u8], keys: &'k [TsigKey], now: u64) -> Check<'k> {
    let Some(rrs) = records(msg) else {
        return Check::Malformed;
    };
    let Some(pos) = rrs.iter().position(|r| r.rr_type == TSIG) else {
        return Check::Unsigned;
    };
    // The TSIG must be the last record, in the additional section (RFC 8945 §5.1).
    let arcount = usize::from(be16(msg, 10).unwrap_or(0));
    if pos + 1 != rrs.len() || arcount == 0 {
        return Check::Malformed;
    }
    let rr = rrs[pos].clone();
    if rr.class != class::ANY || rr.ttl != 0 {
        return Check::Malformed;
    }
    let Some((_, key_wire)) = read_wire_name(msg, rr.start) else {
        return Check::Malformed;
    };
    let Some(t) = parse_rdata(msg, &rr, key_wire) else {
        return Check::Malformed;
    };
    let reject = |error, signer| {
        Check::Rejected(Rejection {
            error,
            key_wire: t.key_wire.clone(),
            alg_wire: t.alg_wire.clone(),
            time_signed: t.time_signed,
            fudge: t.fudge,
            signer,
        })
    };
    let key = keys.iter().find(|k| k.wire == t.key_wire);
    let Some(key) = key.filter(|_| t.alg_wire == ALGORITHM_WIRE) else {
        return reject(error::BADKEY, None);
    };
    // RFC 8945 §5.2.2.1: a MAC shorter than 10 octets or half the hash is a FORMERR, a
    // longer one than the hash too; a permitted truncation we refuse by policy.
    if t.mac.len() > MAC_LEN || t.mac.len() < MAC_LEN / 2 {
        return Check::Malformed;
    }
    if t.mac.len() < MAC_LEN {
        return reject(error::BADTRUNC, None);
    }
    let mut data = Vec::with_capacity(rr.start + 128);
    data.extend_from_slice(msg.get(..rr.start).unwrap_or(&[]));
    if data.len() < wire::HEADER_LEN {
        return Check::Malformed;
    }
    data[0..2].copy_from_slice(&t.original_id.to_be_bytes());
    data[10..12].copy_from_slice(&((arcount - 1) as u16).to_be_bytes());
    variables(
        &mut data,
        &t.key_wire,
        t.time_signed,
        t.fudge,
        t.error,
        &t.other,
    );
    if hmac::verify(&key.hmac_key(), &data, &t.mac).is_err() {
        return reject(error::BADSIG, None);
    }
    let signer = Signer {
        key,
        prior_mac: t.mac.clone(),
        replies: 0,
    };
    if now.abs_diff(t.time_signed) > u64::from(t.fudge) {
        return reject(error::BADTIME, Some(signer));
    }
    Check::Valid(signer)
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// Signs a sequence of messages with one key: the replies to a verified request (each
/// digest chained to the previous MAC, RFC 8945 §5.3.1), or a request of our own.
#[derive(Clone)]
pub struct Signer<'k> {
    key: &'k TsigKey,
    /// MAC of the request (before the first reply), then of the last reply signed; empty
    /// when signing a request.
    prior_mac: Vec<u8>,
    replies: u32,
}

impl fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key.name)
            .field("replies", &self.replies)
            .finish_non_exhaustive()
    }
}

/// Space a TSIG RR signed with `key` takes, with room for a BADTIME's 6 octets of other data.
pub fn rr_len(key: &TsigKey) -> usize {
    key.wire.len() + 10 + ALGORITHM_WIRE.len() + 10 + MAC_LEN + 6 + 6
}

impl<'k> Signer<'k> {
    /// A signer for a request of our own (a NOTIFY): no prior MAC.
    pub fn request(key: &'k TsigKey) -> Signer<'k> {
        Signer {
            key,
            prior_mac: Vec::new(),
            replies: 0,
        }
    }

    /// The key.
    pub fn key(&self) -> &'k TsigKey {
        self.key
    }

    /// Appends a TSIG RR to the complete message `msg` (header included, counts final) and
    /// bumps its ARCOUNT. The first call after [`verify`] covers the request MAC and all TSIG
    /// variables; later calls the prior MAC and the timers only. `now` is the Time Signed;
    /// `err` and `other` are for a BADTIME reply (the request's time, other = our time).
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64, err: u16, other: &[u8]) {
        let mut data = Vec::with_capacity(msg.len() + MAC_LEN + 64);
        let is_request = self.prior_mac.is_empty() && self.replies == 0;
        if !is_request {
            data.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.prior_mac);
        }
        data.extend_from_slice(msg);
        if self.replies == 0 {
            variables(&mut data, &self.key.wire, now, FUDGE, err, other);
        } else {
            timers(&mut data, now, FUDGE);
        }
        let tag = hmac::sign(&self.key.hmac_key(), &data);
        let mac = tag.as_ref();
        let id = be16(msg, 0).unwrap_or(0);
        append_rr(
            msg,
            &self.key.wire,
            ALGORITHM_WIRE,
            now,
            FUDGE,
            mac,
            id,
            err,
            other,
        );
        self.prior_mac = mac.to_vec();
        self.replies += 1;
    }
}

/// Appends the unsigned TSIG RR of a BADKEY / BADSIG / BADTRUNC reply (MAC size 0, the
/// request's key, algorithm and times echoed, RFC 8945 §5.3.2) and bumps ARCOUNT.
pub fn append_error(msg: &mut Vec<u8>, r: &Rejection<'_>) {
    let id = be16(msg, 0).unwrap_or(0);
    append_rr(
        msg,
        &r.key_wire,
        &r.alg_wire,
        r.time_signed,
        r.fudge,
        &[],
        id,
        r.error,
        &[],
    );
}

/// Our time as the 6-octet Other Data of a BADTIME reply.
pub fn time_other(now: u64) -> [u8; 6] {
    let mut o = [0u8; 6];
    o[..2].copy_from_slice(&((now >> 32) as u16).to_be_bytes());
    o[2..].copy_from_slice(&(now as u32).to_be_bytes());
    o
}

#[allow(clippy::too_many_arguments)]
fn append_rr(
    msg: &mut Vec<u8>,
    key_wire: &[u8],
    alg_wire: &[u8],
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    err: u16,
    other: &[u8],
) {
    msg.extend_from_slice(key_wire);
    msg.extend_from_slice(&TSIG.to_be_bytes());
    msg.extend_from_slice(&class::ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = alg_wire.len() + 10 + mac.len() + 6 + other.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(alg_wire);
    timers(msg, time, fudge);
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&original_id.to_be_bytes());
    msg.extend_from_slice(&err.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    if let Some(ar) = msg.get_mut(10..12) {
        let n = u16::from_be_bytes([ar[0], ar[1]]).wrapping_add(1);
        ar.copy_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &[u8]) -> TsigKey {
        TsigKey::new(name, secret.to_vec()).unwrap()
    }

    /// A minimal AXFR query for `mesos.`.
    fn query(id: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x05mesos\x00\x00\xfc\x00\x01");
        m
    }

    #[test]
    fn parse_checks_algorithm_base64_and_name() {
        let k = TsigKey::parse("Xfr-Key.", "HMAC-SHA256", "c2VjcmV0").unwrap();
        assert_eq!(k.name(), "xfr-key.");
        assert_eq!(k.secret_base64(), "c2VjcmV0");
        assert!(!format!("{k:?}").contains("secret\""));
        assert!(TsigKey::parse("k", "hmac-md5", "c2VjcmV0").is_err());
        let e = TsigKey::parse("k", "hmac-sha256", "not base64!").unwrap_err();
        assert!(e.contains("not base64") && !e.contains("not base64!\""));
        assert!(TsigKey::parse("k", "hmac-sha256", "").is_err());
        assert!(TsigKey::parse("a..b", "hmac-sha256", "c2VjcmV0").is_err());
        assert!(TsigKey::parse("", "hmac-sha256", "c2VjcmV0").is_err());
    }

    #[test]
    fn signed_request_verifies_and_tampering_is_caught() {
        let keys = [key("other.", b"zzz"), key("xfr.", b"0123456789abcdef")];
        let mut q = query(0x1234);
        Signer::request(&keys[1]).sign(&mut q, 1_000_000, 0, &[]);
        assert_eq!(be16(&q, 10), Some(1));
        match verify(&q, &keys, 1_000_100) {
            Check::Valid(s) => assert_eq!(s.key().name(), "xfr."),
            other => panic!("{other:?}"),
        }
        // Unsigned.
        assert!(matches!(verify(&query(1), &keys, 0), Check::Unsigned));
        // A flipped bit in the question: BADSIG.
        let mut bad = q.clone();
        bad[14] ^= 0x20;
        assert!(
            matches!(verify(&bad, &keys, 1_000_000), Check::Rejected(r) if r.error == error::BADSIG)
        );
        // Same name, other secret: BADSIG; unknown name: BADKEY.
        let wrong = [key("xfr.", b"wrong")];
        assert!(
            matches!(verify(&q, &wrong, 1_000_000), Check::Rejected(r) if r.error == error::BADSIG)
        );
        let unknown = [key("nope.", b"0123456789abcdef")];
        assert!(
            matches!(verify(&q, &unknown, 1_000_000), Check::Rejected(r) if r.error == error::BADKEY)
        );
        // Outside the fudge: BADTIME, with a signer for the error reply.
        match verify(&q, &keys, 1_000_000 + 301) {
            Check::Rejected(r) => {
                assert_eq!(r.error, error::BADTIME);
                assert!(r.signer.is_some());
            }
            other => panic!("{other:?}"),
        }
        // Cut short: malformed.
        assert!(matches!(
            verify(&q[..q.len() - 3], &keys, 1_000_000),
            Check::Malformed
        ));
    }

    #[test]
    fn reply_chain_verifies_like_a_client_would() {
        // Client side: sign a request, then check the server's two replies the way RFC 8945
        // §5.3.1 says a client does.
        let k = key("xfr.", b"secret-secret");
        let keys = [k.clone()];
        let mut q = query(7);
        Signer::request(&k).sign(&mut q, 500, 0, &[]);
        let Check::Valid(mut server) = verify(&q, &keys, 500) else {
            panic!("request must verify")
        };
        let request_mac = {
            let rrs = records(&q).unwrap();
            let t = parse_rdata(&q, rrs.last().unwrap(), Vec::new()).unwrap();
            t.mac
        };
        let mut prior = request_mac;
        for (i, body) in [b"first".as_slice(), b"second".as_slice()]
            .into_iter()
            .enumerate()
        {
            let mut reply = query(7);
            reply[2] |= 0x80;
            reply.extend_from_slice(body); // opaque trailing bytes: covered by the MAC
            let unsigned = reply.clone();
            server.sign(&mut reply, 501, 0, &[]);
            let tsig_start = unsigned.len();
            let rr = read_rr(&reply, tsig_start).unwrap();
            let t = parse_rdata(&reply, &rr, k.wire.clone()).unwrap();
            let mut data = (prior.len() as u16).to_be_bytes().to_vec();
            data.extend_from_slice(&prior);
            data.extend_from_slice(&unsigned);
            if i == 0 {
                variables(&mut data, &k.wire, 501, FUDGE, 0, &[]);
            } else {
                timers(&mut data, 501, FUDGE);
            }
            hmac::verify(&k.hmac_key(), &data, &t.mac).expect("reply MAC");
            assert_eq!(t.original_id, 7);
            prior = t.mac;
        }
    }

    #[test]
    fn error_tsig_is_unsigned_and_echoes_the_request() {
        let k = key("xfr.", b"s");
        let mut q = query(9);
        Signer::request(&k).sign(&mut q, 42, 0, &[]);
        let other = [key("xfr.", b"t")];
        let Check::Rejected(r) = verify(&q, &other, 42) else {
            panic!()
        };
        let mut reply = query(9);
        append_error(&mut reply, &r);
        let rrs = records(&reply).unwrap();
        let t = parse_rdata(&reply, &rrs[0], Vec::new()).unwrap();
        assert_eq!(
            (t.error, t.mac.len(), t.time_signed),
            (error::BADSIG, 0, 42)
        );
        assert_eq!(time_other(0x0001_0000_0002), [0, 1, 0, 0, 0, 2]);
    }
}
